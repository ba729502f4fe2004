"""HDMI output: the real Display class rendering through pygame/SDL2 with
SDL's dummy driver; the screen is read back from SDL's surface.

Not the offscreen driver: it initialises EGL, which segfaults in a process
that has imported TensorFlow (the tensorflow.lite runtime fallback does, in
the [train] test environment)."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from rtclean.config import DisplayConfig
from rtclean.frames import LOST
from rtclean.repair import overlay

pytest.importorskip("pygame")

from rtclean.display import Display  # noqa: E402
from rtclean.display.display import fit  # noqa: E402
from test_live import gradient, processed  # noqa: E402


def wait_until(cond, timeout=10.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def make_display():
    made = []

    def make(**kw) -> Display:
        cfg = DisplayConfig(enabled=True, driver="dummy", fullscreen=False, **kw)
        d = Display(cfg, status=lambda: {"recording": {"active": True}})
        d.start()
        made.append(d)
        return d

    yield make
    for d in made:
        d.close()


def test_fit_keeps_the_aspect_centred():
    assert fit(720, 576, 1920, 1080) == (285, 0, 1350, 1080)
    assert fit(640, 360, 640, 720) == (0, 180, 640, 360)


def test_renders_the_clean_picture_scaled_to_the_screen(make_display):
    d = make_display(width=360, height=288, status_line=False)
    assert d.size == (360, 288)
    img = gradient(3, 720, 576)
    d.show(processed(0, img))
    wait_until(lambda: d.frames_shown >= 1, what="a frame on screen")
    shot = d.screenshot()
    assert shot.shape == (288, 360, 3)
    want = cv2.cvtColor(cv2.resize(img, (360, 288), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    diff = np.abs(shot.astype(int) - want.astype(int))
    assert diff.mean() < 2.0 and shot.std() > 40


def test_letterboxes_other_aspects_and_draws_the_status_line(make_display):
    d = make_display(width=640, height=288, status_line=True)
    img = gradient(5, 720, 576)
    for i in range(5):
        d.show(processed(i, img))
        time.sleep(0.05)
    wait_until(lambda: d.frames_shown >= 3, what="frames on screen")
    shot = d.screenshot()
    x, y, w, h = fit(720, 576, 640, 288)
    assert (x, w) == (140, 360)
    assert shot[:, :x - 1].max() == 0 and shot[:, x + w + 1:].max() == 0  # black bars
    # The status line: a dark bar at the bottom of the picture with light text in it.
    bar = shot[h - 12:h, x:x + w]
    above = cv2.cvtColor(cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)[h - 12:h]
    assert bar.mean() < above.mean() * 0.6
    assert (bar.max(axis=2) > 200).sum() > 20, "no status text drawn"


def test_signal_lost_overlay_when_frames_stop(make_display):
    d = make_display(width=360, height=288, status_line=False, lost_after_s=0.2)
    img = gradient(7, 360, 288)
    d.show(processed(0, img))
    wait_until(lambda: d.frames_shown >= 1, what="a frame on screen")
    wait_until(lambda: d.lost_shown >= 1, what="the SIGNAL LOST picture")
    shot = d.screenshot()
    want = cv2.cvtColor(overlay.signal_lost(img), cv2.COLOR_BGR2RGB)
    assert np.abs(shot.astype(int) - want.astype(int)).mean() < 2.0
    y0, y1 = overlay.band_rows(360, 288)
    band = shot[y0 + 5:y1 - 5]
    red = (band[..., 0] > 150) & (band[..., 1] < 80) & (band[..., 2] < 80)
    assert red.mean() > 0.4, "no red SIGNAL LOST band"
    # Frames again: the live picture replaces the overlay.
    d.show(processed(1, img))
    wait_until(lambda: d.frames_shown >= 2, what="the next frame")
    shot = d.screenshot()
    assert np.abs(shot.astype(int) - cv2.cvtColor(img, cv2.COLOR_BGR2RGB).astype(int)).mean() < 2.0


def test_no_signal_slate_before_any_frame(make_display):
    d = make_display(width=360, height=288, status_line=False, lost_after_s=0.1)
    wait_until(lambda: d.lost_shown >= 1, what="the NO SIGNAL slate")
    shot = d.screenshot()
    y0, y1 = overlay.band_rows(360, 288)
    assert shot[y0 + 5:y1 - 5, :, 0].mean() > 120 and shot[:y0 - 2].mean() < 40


def test_lost_frames_from_the_pipeline_are_shown_as_they_are(make_display):
    d = make_display(width=360, height=288, status_line=False)
    lost = overlay.signal_lost(gradient(2, 360, 288))
    d.show(processed(0, lost, action=LOST))
    wait_until(lambda: d.frames_shown >= 1, what="a frame on screen")
    shot = d.screenshot()
    assert np.abs(shot.astype(int) - cv2.cvtColor(lost, cv2.COLOR_BGR2RGB).astype(int)).mean() < 2.0


def test_show_never_waits_for_the_screen(make_display):
    d = make_display(width=720, height=576, status_line=True)
    img = gradient(1, 720, 576)
    t0 = time.perf_counter()
    n = 2000
    for i in range(n):
        d.show(processed(i, img))
    per_call_us = (time.perf_counter() - t0) / n * 1e6
    wait_until(lambda: d.frames_shown >= 1, what="a frame on screen")
    # The screen cannot draw 2000 frames in that time: the rest were replaced, not queued.
    assert d.dropped > n // 2 and d.frames_shown + d.dropped <= n


def test_bad_driver_is_one_clear_error():
    from rtclean.errors import RtcleanError

    d = Display(DisplayConfig(enabled=True, driver="wayland", fullscreen=False))
    with pytest.raises(RtcleanError, match="display: cannot open the screen"):
        d.start()


def test_pipeline_drives_the_display(tmp_path):
    """`display.enabled` in the config: the live pipeline opens the display,
    feeds it every processed frame (the clean picture reaches the screen) and
    closes it on shutdown."""
    from rtclean import config
    from rtclean.pipeline import LivePipeline
    from rtclean.sources.replay import ReplaySource

    rng = np.random.default_rng(1)
    frames = [cv2.GaussianBlur(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8), (9, 9), 0)
              for _ in range(4)]
    cfg = config.Config()
    cfg.record.enabled = False
    cfg.live.enabled = False
    cfg.detect.detector = "classical"
    cfg.display.enabled = True
    cfg.display.driver = "dummy"
    cfg.display.fullscreen = False
    cfg.display.status_line = False
    cfg.display.width, cfg.display.height = 320, 240  # the picture's size: no scaling to compare
    pipe = LivePipeline(cfg, ReplaySource(frames, fps=25.0, duration_s=1.5))
    shots = []

    def grab(p):  # runs after the display's show() on the processing thread
        if p.frame.index == 20:
            shots.append((p.clean.copy(), pipe.display.screenshot()))

    pipe.consumers.append(grab)
    status = pipe.run()
    assert status["frames"]["out"] >= 25 and shots
    clean, screen = shots[0]
    assert screen.shape[:2] == clean.shape[:2]
    assert screen.std() > 10  # a picture, not a slate
    # the screen shows a recent clean frame (the display is latest-only, so
    # allow it to be a frame or two behind): one of the four replayed pictures
    bgr = screen[..., ::-1].astype(int)  # screenshots are RGB
    diffs = [np.abs(bgr - f.astype(int)).mean() for f in frames]
    assert min(diffs) < 3.0, diffs
    assert pipe.display._thread is None  # closed on shutdown
