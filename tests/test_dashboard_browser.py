"""The dashboard and recordings browser in headless Chromium, driven over the
DevTools protocol (aiohttp websocket), against a real `rtclean run --demo`
subprocess: the page is looked at (screenshots), clicked and read back."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import re
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import aiohttp
import cv2
import numpy as np
import pytest

CHROMIUM = Path("/usr/bin/chromium")
TOKEN = "field-token-42"

pytestmark = [pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed"),
              pytest.mark.slow]


# ----------------------------------------------------------------------------- the DevTools protocol


class Page:
    """One browser tab over the DevTools protocol: send commands, await replies."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future] = {}
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            data = json.loads(msg.data)
            fut = self._waiting.pop(data.get("id"), None)
            if fut is not None and not fut.done():
                fut.set_result(data)

    async def send(self, method: str, **params) -> dict:
        i = next(self._ids)
        fut = asyncio.get_running_loop().create_future()
        self._waiting[i] = fut
        await self.ws.send_str(json.dumps({"id": i, "method": method, "params": params}))
        reply = await asyncio.wait_for(fut, 30)
        assert "error" not in reply, f"{method}: {reply['error']}"
        return reply["result"]

    async def js(self, expr: str):
        r = await self.send("Runtime.evaluate", expression=expr, awaitPromise=True, returnByValue=True)
        assert "exceptionDetails" not in r, f"{expr}: {r['exceptionDetails']}"
        return r["result"].get("value")

    async def wait(self, expr: str, timeout: float = 20.0, what: str = ""):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            r = await self.send("Runtime.evaluate", expression=expr, awaitPromise=True, returnByValue=True)
            # An exception (e.g. no body yet while a page loads) counts as "not yet".
            value = None if "exceptionDetails" in r else r["result"].get("value")
            if value:
                return value
            await asyncio.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what or expr}")

    async def goto(self, url: str) -> None:
        await self.send("Page.navigate", url=url)

    async def screenshot(self) -> np.ndarray:
        r = await self.send("Page.captureScreenshot", format="png")
        img = cv2.imdecode(np.frombuffer(base64.b64decode(r["data"]), np.uint8), cv2.IMREAD_COLOR)
        assert img is not None
        return img

    async def rect(self, selector: str) -> tuple[int, int, int, int]:
        r = await self.js(f"(() => {{ const b = document.querySelector({json.dumps(selector)})"
                          ".getBoundingClientRect(); return [b.x, b.y, b.width, b.height]; })()")
        return tuple(int(round(v)) for v in r)

    async def click(self, selector: str) -> None:
        await self.js(f"document.querySelector({json.dumps(selector)}).click()")


class Browser:
    def __init__(self, tmp: Path) -> None:
        self.proc = subprocess.Popen(
            [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--autoplay-policy=no-user-gesture-required", "--remote-debugging-port=0",
             f"--user-data-dir={tmp / 'profile'}", "--window-size=1280,800", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.ws_url = None
        end = time.monotonic() + 30
        while time.monotonic() < end:
            line = self.proc.stderr.readline()
            m = re.search(r"DevTools listening on (ws://\S+)", line)
            if m:
                self.ws_url = m.group(1)
                break
            if not line and self.proc.poll() is not None:
                break
        assert self.ws_url, "chromium printed no DevTools address"
        threading.Thread(target=lambda: self.proc.stderr.read(), daemon=True).start()

    async def page(self, session: aiohttp.ClientSession) -> Page:
        browser = await session.ws_connect(self.ws_url, max_msg_size=0)
        bp = Page(browser)
        target = await bp.send("Target.createTarget", url="about:blank")
        host = self.ws_url.split("/devtools/")[0]
        ws = await session.ws_connect(f"{host}/devtools/page/{target['targetId']}", max_msg_size=0)
        page = Page(ws)
        await page.send("Page.enable")
        await page.send("Runtime.enable")
        return page

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# ----------------------------------------------------------------------------- the demo service


class Demo:
    def __init__(self, rtclean_cmd: list[str], rec: Path) -> None:
        self.rec = rec
        self.proc = subprocess.Popen(
            rtclean_cmd + ["run", "--demo", "--duration", "120", "--set", "live.host=127.0.0.1",
                           "--set", "live.port=0", "--set", f"live.token={TOKEN}", "--set", f"record.dir={rec}",
                           "--set", "record.auto=false"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.url, self.log = None, []
        end = time.monotonic() + 60
        while time.monotonic() < end:
            line = self.proc.stderr.readline()
            if not line:
                break
            self.log.append(line)
            m = re.search(r"live view at (http://\S+)", line)
            if m:
                self.url = m.group(1)
                break
        assert self.url, "no live view URL in the log:\n" + "".join(self.log)
        # Keep draining the log so the service never blocks on a full pipe.
        threading.Thread(target=lambda: self.log.extend(self.proc.stderr), daemon=True).start()

    def status(self) -> dict:
        with urllib.request.urlopen(self.url + "/api/status", timeout=10) as r:
            return json.loads(r.read())

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture
def demo(rtclean_cmd, tmp_path):
    d = Demo(rtclean_cmd, tmp_path / "rec")
    yield d
    d.close()


@pytest.fixture
def browser(tmp_path):
    b = Browser(tmp_path)
    yield b
    b.close()


def wait_for(cond, timeout=20.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def crop(img: np.ndarray, rect: tuple[int, int, int, int]) -> np.ndarray:
    x, y, w, h = rect
    return img[y + 2:y + h - 2, x + 2:x + w - 2]


async def picture_changes(page, rect, first: np.ndarray, timeout: float = 10.0) -> np.ndarray:
    """A screenshot of ``rect`` that differs from ``first`` (mean |diff| > 2),
    taken 1 s or more later. Not a fixed interval: on a loaded machine the
    demo's frames arrive late, and a picture that never changes still fails."""
    await asyncio.sleep(1.0)
    end = time.monotonic() + timeout
    while True:
        b = crop(await page.screenshot(), rect)
        if np.abs(first.astype(int) - b.astype(int)).mean() > 2 or time.monotonic() > end:
            return b
        await asyncio.sleep(0.5)


# ----------------------------------------------------------------------------- tests


def test_dashboard_live_image_tiles_views_and_recording(demo, browser):
    async def run():
        async with aiohttp.ClientSession() as session:
            page = await browser.page(session)
            await page.goto(demo.url + "/")
            await page.wait("document.body.dataset.filled === '1'", what="status tiles filled")
            await page.wait("document.getElementById('img-clean').naturalWidth === 720", what="live image")

            # Two screenshots a second apart: a real, moving picture.
            rect = await page.rect("#img-clean")
            a = crop(await page.screenshot(), rect)
            t1 = await page.js("[...document.querySelectorAll('[data-k]')].map(e => e.textContent).join('|')")
            b = await picture_changes(page, rect, a)
            t2 = await page.js("[...document.querySelectorAll('[data-k]')].map(e => e.textContent).join('|')")
            assert a.shape[0] > 200 and a.shape[1] > 250
            assert a.std() > 20 and b.std() > 20, "the live image is uniform"
            assert np.abs(a.astype(int) - b.astype(int)).mean() > 2, "the live image does not change"
            frames = [re.search(r"([\d,]+) in · ", t).group(1) for t in (t1, t2)]
            assert frames[0] != frames[1], "the frame counter tile does not change"
            tiles = await page.js("Object.fromEntries([...document.querySelectorAll('[data-k]')]"
                                  ".map(e => [e.dataset.k, e.textContent]))")
            assert tiles["state"] in ("Running", "No signal")
            assert re.fullmatch(r"\d+\.\d", tiles["fps.in"]) and re.fullmatch(r"\d+\.\d", tiles["latency.p99_ms"])
            assert re.fullmatch(r"[\d.]+%", tiles["breakup_rate"])
            assert re.search(r"(GB|MB)$", tiles["disk.free"]) and tiles["detector"] not in ("", "–")
            assert int(await page.wait("Number(document.getElementById('timeline').dataset.frames || 0)",
                                       what="timeline drawn")) > 0

            # Side by side: both feeds stream; the server sees a raw client.
            await page.click('.seg button[data-mode="side"]')
            assert await page.js("document.getElementById('viewer').dataset.mode") == "side"
            await page.wait("document.getElementById('img-raw').naturalWidth === 720", what="raw image")
            wait_for(lambda: demo.status()["live"]["streams"]["raw"]["clients"] >= 1, what="raw client")
            shot = await page.screenshot()
            assert crop(shot, await page.rect("#img-raw")).std() > 20
            await page.click('.seg button[data-mode="raw"]')
            wait_for(lambda: demo.status()["live"]["streams"]["clean"]["clients"] == 0, what="clean closed")
            await page.click('.seg button[data-mode="clean"]')

            # Without the token the Record button is refused with a message.
            await page.click("#rec-toggle")
            await page.wait("!document.getElementById('toast').hidden", what="refusal toast")
            assert "token" in (await page.js("document.getElementById('toast').textContent")).lower()
            assert demo.status()["recording"]["active"] is False

            # Unlock with the token, then start and stop recording from the page.
            await page.click("#unlock")
            await page.js(f"document.getElementById('token-input').value = {json.dumps(TOKEN)}")
            await page.click("#token-save")
            await page.wait("document.getElementById('unlock').textContent === 'Unlocked'", what="unlocked")
            await page.wait("!document.getElementById('rec-toggle').disabled", what="record enabled")
            await page.click("#rec-toggle")
            wait_for(lambda: demo.status()["recording"]["active"], what="recording started")
            await page.wait("document.getElementById('rec-toggle').getAttribute('aria-pressed') === 'true'",
                            what="button shows recording")
            await page.wait("!document.getElementById('rec-badge').hidden", what="REC badge")
            await asyncio.sleep(3.0)
            await page.click("#rec-toggle")
            wait_for(lambda: not demo.status()["recording"]["active"], what="recording stopped")

            # The tag toggle switches the server's flag.
            was = demo.status()["live"]["mark_repaired"]
            await page.click("#tag-toggle")
            wait_for(lambda: demo.status()["live"]["mark_repaired"] is (not was), what="tag toggled")

            # Recordings page: the recording just made, downloads byte-exact, plays.
            def finished() -> list[str]:  # both streams remuxed (the .ts files are gone then)
                return sorted(p.name.split(".")[0] for p in demo.rec.glob("*.clean.mp4")
                              if p.with_name(p.name.replace(".clean.", ".raw.")).exists()
                              and not list(demo.rec.glob(p.name.split(".")[0] + ".*.ts")))

            names = wait_for(finished, timeout=30, what="a finished, remuxed recording")
            name = names[-1]
            await page.goto(demo.url + "/recordings")
            await page.wait("document.body.dataset.loaded === '1'", what="recordings list")
            listed = await page.js("[...document.querySelectorAll('.rec-item')].map(e => e.dataset.name)")
            assert name in listed
            links = await page.js(f"[...document.querySelectorAll('.rec-item[data-name=\"{name}\"] a[data-kind]')]"
                                  ".map(a => [a.dataset.kind, a.href])")
            kinds = dict(links)
            assert {"raw.mp4", "clean.mp4"} <= set(kinds)  # finished segments are remuxed to MP4
            suffix = {"raw": ".raw.ts", "clean": ".clean.ts", "clean.mp4": ".clean.mp4", "raw.mp4": ".raw.mp4",
                      "sidecar": ".clean.jsonl"}
            for kind, href in kinds.items():
                with urllib.request.urlopen(href, timeout=20) as r:
                    body = r.read()
                assert body == (demo.rec / (name + suffix[kind])).read_bytes(), kind
            await page.click(f'.rec-item[data-name="{name}"] [data-act="play"]')
            dims = await page.wait("(() => { const v = document.querySelector('.rec-item video');"
                                   " return v && v.readyState >= 1 ? [v.videoWidth, v.videoHeight, v.duration] : null; })()",
                                   what="video metadata")
            assert dims[0] == 720 and dims[1] == 576 and dims[2] > 1.0

    asyncio.run(run())


def test_dashboard_on_a_phone_screen(demo, browser):
    async def run():
        async with aiohttp.ClientSession() as session:
            page = await browser.page(session)
            await page.send("Emulation.setDeviceMetricsOverride", width=390, height=844, deviceScaleFactor=2,
                            mobile=True)
            await page.goto(demo.url + "/")
            await page.wait("document.body.dataset.filled === '1'", what="status tiles filled")
            await page.wait("document.getElementById('img-clean').naturalWidth === 720", what="live image")
            x, y, w, h = await page.rect("#img-clean")
            assert w >= 360 and y < 120, "the live image is not large at the top"
            assert await page.js("document.documentElement.scrollWidth") <= 390, "the page scrolls sideways"
            # The view buttons are one tap away, below the picture, and big enough to hit.
            bx, by, bw, bh = await page.rect('.seg button[data-mode="side"]')
            assert by > y + h - 5 and bh >= 36 and bw >= 80
            await page.click('.seg button[data-mode="side"]')
            await page.wait("document.getElementById('img-raw').naturalWidth === 720", what="raw image")
            rx, ry, rw, rh = await page.rect("#img-raw")
            assert rw >= 360 and ry >= y + h - 2  # stacked under the clean feed on a phone

    asyncio.run(run())


def post(demo: Demo, path: str, body: dict) -> None:
    req = urllib.request.Request(demo.url + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", "X-Rtclean-Token": TOKEN})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200


def set_recording(demo: Demo, on: bool) -> None:
    post(demo, "/api/record", {"on": on})


def test_dashboard_plays_the_recorders_h264_while_recording_and_mjpeg_otherwise(demo, browser):
    async def run():
        async with aiohttp.ClientSession() as session:
            page = await browser.page(session)
            await page.goto(demo.url + "/")
            await page.wait("document.getElementById('img-clean').naturalWidth === 720", what="MJPEG first")
            assert await page.js("window.rtcleanLive.source('clean')") == "mjpeg"

            # Recording: the page moves to the recorder's H.264 and stops the MJPEG stream.
            set_recording(demo, True)
            await page.wait("window.rtcleanLive.source('clean') === 'video'", timeout=30, what="H.264 playing")
            wait_for(lambda: demo.status()["live"]["video"]["streams"]["clean"]["clients"] == 1, what="H.264 client")
            wait_for(lambda: demo.status()["live"]["streams"]["clean"]["clients"] == 0, what="MJPEG closed")
            encodes = demo.status()["live"]["streams"]["clean"]["encodes"]
            rect = await page.rect("#vid-clean")
            assert rect[2] > 250 and rect[3] > 200
            a = crop(await page.screenshot(), rect)
            b = await picture_changes(page, rect, a)
            assert a.std() > 20 and b.std() > 20, "the H.264 picture is uniform"
            assert np.abs(a.astype(int) - b.astype(int)).mean() > 2, "the H.264 picture does not change"
            # The demo breaks up: replaced frames get the tag over the video.
            await page.wait("!document.getElementById('tag-clean').hidden", timeout=20, what="a tagged frame")
            assert await page.js("document.getElementById('tag-clean').textContent") in ("REPAIRED", "HOLD", "LOST")
            # Tag off (token): the page stops drawing it over the video.
            post(demo, "/api/tag", {"on": False})
            await page.wait("document.getElementById('tag-toggle').getAttribute('aria-pressed') === 'false'",
                            what="page saw the tag off")
            shown = await page.js("new Promise(done => { let n = 0, k = 0; const t = setInterval(() => {"
                                  " n += !document.getElementById('tag-clean').hidden;"
                                  " if (++k === 30) { clearInterval(t); done(n); } }, 100); })")
            assert shown == 0, "the tag stayed on the video after it was switched off"
            post(demo, "/api/tag", {"on": True})
            await page.wait("!document.getElementById('tag-clean').hidden", timeout=20, what="the tag back on")
            stats = await page.js("window.rtcleanLive.player('clean').stats()")
            assert stats["shown"] > 25
            print("H.264 in headless Chromium: arrival to shown", stats)
            # No JPEG was made for this viewer meanwhile.
            assert demo.status()["live"]["streams"]["clean"]["encodes"] == encodes

            # Side by side: both feeds as H.264.
            await page.click('.seg button[data-mode="side"]')
            await page.wait("window.rtcleanLive.source('raw') === 'video'", timeout=30, what="raw H.264")
            assert crop(await page.screenshot(), await page.rect("#vid-raw")).std() > 20
            await page.click('.seg button[data-mode="clean"]')
            wait_for(lambda: demo.status()["live"]["video"]["streams"]["raw"]["clients"] == 0, what="raw closed")

            # ?mjpeg keeps a viewer on MJPEG even while recording.
            await page.goto(demo.url + "/?mjpeg")
            await page.wait("document.getElementById('img-clean').naturalWidth === 720", what="MJPEG on ?mjpeg")
            await page.wait("document.body.dataset.filled === '1'", what="status polled")
            await asyncio.sleep(2.5)  # two more status polls: the page would have switched by now
            assert await page.js("window.rtcleanLive.source('clean')") == "mjpeg"
            assert await page.js("window.rtcleanLive.player('clean')") is None
            await page.goto(demo.url + "/")
            await page.wait("window.rtcleanLive.source('clean') === 'video'", timeout=30, what="H.264 again")

            # Recording stops: back to MJPEG, picture and all.
            set_recording(demo, False)
            await page.wait("window.rtcleanLive.source('clean') === 'mjpeg'", timeout=20, what="back to MJPEG")
            await page.wait("document.getElementById('img-clean').naturalWidth === 720", what="MJPEG image")
            wait_for(lambda: demo.status()["live"]["streams"]["clean"]["clients"] == 1, what="MJPEG client")
            wait_for(lambda: demo.status()["live"]["video"]["streams"]["clean"]["clients"] == 0, what="H.264 closed")
            rect = await page.rect("#img-clean")
            assert crop(await page.screenshot(), rect).std() > 20

    asyncio.run(run())
