"""The labelling page in a real browser: headless Chromium driven over the
DevTools protocol (aiohttp's websocket client, no extra dependency), real
key presses, and the files checked on disk after each one."""

from __future__ import annotations

import asyncio
import base64
import itertools
import subprocess
import time
from pathlib import Path

import aiohttp
import cv2
import pytest

from test_dataset import dataset, label_server, sampled_template  # noqa: F401  (fixtures)

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="Debian's chromium (/usr/bin/chromium) is not installed")

# key -> (code, Windows virtual key code) for Input.dispatchKeyEvent
KEYS = {"1": ("Digit1", 49), "2": ("Digit2", 50), "b": ("KeyB", 66), "c": ("KeyC", 67),
        "u": ("KeyU", 85), "s": ("KeyS", 83), "z": ("KeyZ", 90), "p": ("KeyP", 80)}
CTRL = 2  # CDP modifier bit


class Page:
    """One page target of a headless Chromium, over a flattened CDP session."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, session: str) -> None:
        self.ws = ws
        self.session = session
        self._ids = itertools.count(1000)

    async def send(self, method: str, params: dict | None = None, session: bool = True) -> dict:
        mid = next(self._ids)
        msg = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = self.session
        await self.ws.send_json(msg)
        while True:  # events arrive interleaved with replies: keep only ours
            reply = await self.ws.receive_json(timeout=30)
            if reply.get("id") == mid:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    async def eval(self, expr: str):
        r = await self.send("Runtime.evaluate", {"expression": expr, "returnByValue": True})
        return r["result"].get("value")

    async def key(self, key: str, modifiers: int = 0, up: bool = True) -> None:
        code, vk = KEYS[key]
        down = {"type": "keyDown", "key": key, "code": code, "windowsVirtualKeyCode": vk, "modifiers": modifiers}
        if not modifiers:
            down["text"] = key
        await self.send("Input.dispatchKeyEvent", down)
        if up:
            await self.key_up(key, modifiers)

    async def key_up(self, key: str, modifiers: int = 0) -> None:
        code, vk = KEYS[key]
        await self.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": key, "code": code,
                                                   "windowsVirtualKeyCode": vk, "modifiers": modifiers})


async def until(check, what: str, timeout: float = 15.0):
    """Poll ``check`` (sync or async) until it is truthy; a deadline only guards against hangs."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        v = check()
        if asyncio.iscoroutine(v):
            v = await v
        if v:
            return v
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def launch(tmp_path: Path) -> tuple[subprocess.Popen, str]:
    profile = tmp_path / "profile"
    proc = subprocess.Popen(
        [str(CHROMIUM), "--headless", "--remote-debugging-port=0", "--no-sandbox", "--disable-gpu",
         "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile}", "--window-size=1280,800", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port_file = profile / "DevToolsActivePort"
    for _ in range(600):  # Chromium writes the file once it listens
        if port_file.exists() and len(port_file.read_text().splitlines()) >= 2:
            break
        if proc.poll() is not None:
            raise AssertionError(f"chromium exited with {proc.returncode}")
        time.sleep(0.05)
    else:
        proc.kill()
        raise AssertionError("chromium did not report its DevTools port")
    port, path = port_file.read_text().splitlines()[:2]
    return proc, f"ws://127.0.0.1:{port}{path}"


async def drive(ws_url: str, page_url: str, folder: Path, shot: Path) -> dict:
    names = sorted(p.name for p in folder.glob("*.png"))
    f0, f1, f2, f3 = names[:4]
    result = {}
    async with aiohttp.ClientSession() as s, s.ws_connect(ws_url, max_msg_size=0) as ws:
        browser = Page(ws, "")
        target = (await browser.send("Target.createTarget", {"url": "about:blank"}, session=False))["targetId"]
        sid = (await browser.send("Target.attachToTarget", {"targetId": target, "flatten": True},
                                  session=False))["sessionId"]
        page = Page(ws, sid)
        await page.send("Page.enable")
        await page.send("Emulation.setDeviceMetricsOverride",
                        {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False})
        await page.send("Page.navigate", {"url": page_url})
        await until(lambda: page.eval("document.body && document.body.dataset.ready"), "the page's first state")

        result["keys"] = await page.eval("[...document.querySelectorAll('.cls kbd')].map(k => k.textContent)")
        result["classes"] = await page.eval("[...document.querySelectorAll('.cls .label')].map(k => k.textContent)")
        assert await page.eval("document.body.dataset.current") == f0

        def at(name: str, where: str) -> bool:
            return (folder / where / name).is_file() and sum(
                (folder / w / name).is_file() for w in ("", "breakup", "clean")) == 1

        await page.key("1")
        await until(lambda: at(f0, "breakup"), "1 -> breakup")
        await page.key("c")
        await until(lambda: at(f1, "clean"), "c -> clean")
        await page.key("2")
        await until(lambda: at(f2, "clean"), "2 -> clean")
        await until(lambda: page.eval(f"document.body.dataset.current === '{f3}'"), "the page moving on")
        result["progress_mid"] = await page.eval("document.getElementById('progress-text').textContent")
        result["recent_mid"] = await page.eval("[...document.querySelectorAll('#recent .tag')].map(t => t.textContent)")

        await page.key("u")
        await until(lambda: at(f2, ""), "u: undo of the last label")
        await page.key("z", modifiers=CTRL)
        await until(lambda: at(f1, ""), "Ctrl-Z: undo of the one before")
        assert at(f0, "breakup"), "undo went too far"
        await until(lambda: page.eval(f"document.body.dataset.current === '{f1}'"), "the undone frame shown")

        # Hold p: the previous frame replaces the current one while held.
        await page.key("p", up=False)
        await until(lambda: page.eval("document.getElementById('frame').src.includes('prev=1')"), "p: previous")
        result["prev_badge"] = await page.eval("!document.getElementById('prev-badge').hidden")
        await page.key_up("p")
        await until(lambda: page.eval("!document.getElementById('frame').src.includes('prev=1')"), "p released")

        await page.key("s")  # skip f1: f2 comes next
        await until(lambda: page.eval(f"document.body.dataset.current === '{f2}'"), "s: skip")
        await page.key("b")
        await until(lambda: at(f2, "breakup"), "b -> breakup after a skip")
        assert at(f1, ""), "the skipped frame stays unlabelled"
        # Two presses in quick succession: both land, in order.
        await page.key("2")
        await page.key("1")
        await until(lambda: at(f3, "clean") and at(names[4], "breakup"), "two fast presses")
        await until(lambda: page.eval("document.body.dataset.labelled === '4'"), "the page's count")
        result["progress_end"] = await page.eval("document.getElementById('progress-text').textContent")
        result["buttons"] = await page.eval("[...document.querySelectorAll('.cls .count')].map(t => t.textContent)")
        await until(lambda: page.eval("[...document.images].every(i => i.complete)"), "images loaded")
        shot.write_bytes(base64.b64decode((await page.send("Page.captureScreenshot", {"format": "png"}))["data"]))
        await browser.send("Target.closeTarget", {"targetId": target}, session=False)
    return result


def test_keyboard_flow_moves_files(dataset, tmp_path):
    shot = tmp_path / "label.png"
    proc, ws_url = launch(tmp_path)
    try:
        with label_server(dataset) as url:
            res = asyncio.run(drive(ws_url, url + "/", dataset, shot))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert res["classes"] == ["breakup", "clean"]
    assert res["keys"] == ["1", "b", "2", "c"], "key hints shown on the class buttons"
    assert res["progress_mid"] == "3 / 6 labelled"
    assert res["recent_mid"] == ["clean", "clean", "breakup"]
    assert res["prev_badge"] is True
    assert res["progress_end"] == "4 / 6 labelled"
    assert res["buttons"] == ["3 frames", "1 frame"]
    # Final disk state, independently of the page.
    assert len(list((dataset / "breakup").glob("*.png"))) == 3
    assert len(list((dataset / "clean").glob("*.png"))) == 1
    assert len(list(dataset.glob("*.png"))) == 2
    assert len(list((dataset / ".prev").glob("*.png"))) == 5, ".prev companions never move"

    img = cv2.imread(str(shot), cv2.IMREAD_COLOR)
    assert img is not None and img.shape[:2] == (800, 1280)
    # The large frame: the picture area (left, under the header) is not empty page background.
    frame_area = img[80:560, 150:800]
    assert frame_area.std() > 25
