"""The live page in a real browser: headless Chromium renders the MJPEG
stream and the status tiles filled by the page's JavaScript."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from test_live import make_live  # noqa: F401  (fixture)

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="Debian's chromium (/usr/bin/chromium) is not installed")


def chromium(tmp_path: Path, url: str, *extra: str, size: str = "1280,800") -> str:
    """Run headless Chromium on ``url``; returns its stdout (the DOM with --dump-dom)."""
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", f"--window-size={size}",
           # Virtual time lets the page run its 1 s status poll a few times.
           "--virtual-time-budget=3000", *extra, url]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


def saturated_share(png: Path) -> float:
    """Share of the screenshot in strongly saturated, bright colours: the test
    feed is a colour gradient, the page chrome is dark grey."""
    img = cv2.imread(str(png), cv2.IMREAD_COLOR)
    assert img is not None, "no screenshot written"
    hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)
    return float(np.mean((hsv[..., 1] > 120) & (hsv[..., 2] > 120)))


def live_with_frames(make_live):
    live = make_live(w=720, h=576)
    live.state["size"] = [720, 576]
    live.state["recording"] = True
    return live


def test_page_renders_the_clean_stream(make_live, tmp_path):
    live = live_with_frames(make_live)
    png = tmp_path / "page.png"
    chromium(tmp_path, live.server.url + "/", f"--screenshot={png}")
    img = cv2.imread(str(png), cv2.IMREAD_COLOR)
    assert img.shape[:2] == (800, 1280)
    assert saturated_share(png) > 0.2, "the live image is not on the page"
    # The video area (left part, below the header) is not uniform.
    assert img[80:600, 60:800].std() > 30
    st = live.hub.stats()["streams"]
    # Only the visible feed is streamed, so only it was encoded.
    assert st["clean"]["encodes"] > 0
    assert st["raw"]["encodes"] == st["raw"]["shared"] == 0


def test_side_by_side_streams_both_feeds(make_live, tmp_path):
    live = live_with_frames(make_live)
    png = tmp_path / "side.png"
    chromium(tmp_path, live.server.url + "/#side", f"--screenshot={png}")
    st = live.hub.stats()["streams"]
    # Both streams got pictures; a passed frame's JPEG is made once and
    # shared (its clean picture is its raw picture), so count both ways.
    assert st["clean"]["encodes"] > 0
    assert st["raw"]["encodes"] + st["raw"]["shared"] > 0
    img = cv2.imread(str(png), cv2.IMREAD_COLOR)
    hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)
    colourful = (hsv[..., 1] > 120) & (hsv[..., 2] > 120)
    cols = colourful[60:500].mean(axis=0)
    # Two pictures side by side: colour on both halves of the video column.
    assert cols[40:420].mean() > 0.3 and cols[480:880].mean() > 0.3


def test_status_tiles_are_filled_by_the_script(make_live, tmp_path):
    live = live_with_frames(make_live)
    dom = chromium(tmp_path, live.server.url + "/", "--dump-dom")
    assert 'data-filled="1"' in dom, "the status poll never rendered"
    assert 'data-state="running"' in dom

    def tile(key: str) -> str:
        m = re.search(rf'data-k="{re.escape(key)}">([^<]*)<', dom)
        assert m, f"no element for {key}"
        return m.group(1)

    assert tile("state") == "Running"
    assert tile("fps.in") == "25.0" and tile("fps.out") == "24.5"
    assert tile("latency.p50_ms") == "12.5" and tile("latency.p99_ms") == "–"
    assert tile("breakup_rate") == "2.0%"
    assert tile("repairs.total") == "4"
    assert tile("recording.active") == "On" and tile("recording.file") == "clean-0001.ts"
    assert "720×576" in tile("source")
    frames_in = int(re.match(r"([\d,]+) in", tile("frames")).group(1).replace(",", ""))
    assert frames_in > 0
    assert re.search(r'id="rec-badge"[^>]*>', dom) and not re.search(r'id="rec-badge"[^>]*hidden', dom)
