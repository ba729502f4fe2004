"""The offline cleaner's small parts on their own: ROI band mapping, the
frame-rate conversion grid, report ranges."""

from __future__ import annotations

import numpy as np
import pytest

from rtclean.errors import RtcleanError
from rtclean.frames import DetectResult
from rtclean.offline.report_html import ranges
from rtclean.offline.roi import Roi, RoiDetector, map_bands
from rtclean.offline.upconvert import FrameRateConverter


def test_roi_bands_land_on_the_full_pictures_lines():
    # Region = lower half of a 576-line picture: its 16 bands cover full bands 8..15.
    roi = Roi(0, 288, 720, 288)
    crop = np.zeros(16, np.float32)
    crop[0], crop[15] = 0.9, 0.4  # top of the region, bottom of the region
    full = map_bands(crop, roi, 576)
    assert full[8] == pytest.approx(0.9) and full[15] == pytest.approx(0.4)
    assert not full[:8].any() and not full[9:15].any()


def test_roi_detector_sees_only_the_region():
    seen = []

    class Probe:
        name = "probe"

        def detect(self, image):
            seen.append(image.copy())
            return DetectResult(score=float(image.mean()) / 255, bands=np.ones(16, np.float32))

        def reset(self):
            pass

    image = np.zeros((576, 720, 3), np.uint8)
    image[100:200, 50:150] = 255
    det = RoiDetector(Probe(), Roi(50, 100, 100, 100))
    r = det.detect(image)
    assert seen[0].shape == (100, 100, 3) and r.score == 1.0
    assert r.bands[:2].sum() == 0 and r.bands[2:6].all() and r.bands[6:].sum() == 0  # rows 100..199 of 576
    for text in ("1,2,3", "a,b,c,d", "0,0,4,4", "-1,0,100,100"):
        with pytest.raises(RtcleanError):
            Roi.parse(text)
    with pytest.raises(RtcleanError, match="outside the 720x576 picture"):
        Roi(700, 0, 100, 100).check((720, 576), "x.avi")


def test_frame_rate_grid_25_to_60():
    calls = []

    def interp(a, b, alpha):
        calls.append(alpha)
        return np.full_like(a, int(round(a[0, 0, 0] + alpha * (int(b[0, 0, 0]) - int(a[0, 0, 0])))))

    conv = FrameRateConverter(interp, 60)
    out = []
    for i in range(25):  # one second at 25 fps; pixel value = 10 * frame number
        out += conv.push(np.full((2, 2, 3), 10 * i, np.uint8), 3.0 + i / 25)
    out += conv.flush(1 / 25)
    assert len(out) == 60  # the same duration at 60 fps
    times = np.array([t for _, t in out])
    assert np.allclose(times, 3.0 + np.arange(60) / 60)
    # Output k shows input time k * 25 / 60: value 10 * that, within rounding.
    values = np.array([im[0, 0, 0] for im, _ in out[:58]], float)
    assert np.abs(values - 10 * np.arange(58) * 25 / 60).max() <= 0.5
    assert all(0 < a < 1 for a in calls) and conv.interpolated == len(calls)
    assert sum(1 for k in range(58) if (k * 25) % 60 == 0) == 58 - len(calls)  # grid hits taken as they are


def test_report_ranges():
    acts = ["pass", "repair:interp", "repair:interp", "pass", "hold", "lost", "pass"]
    frames = [{"index": i, "t": i / 25, "action": a} for i, a in enumerate(acts)]
    assert [(r["first"], r["last"], r["actions"]) for r in ranges(frames)] == [
        (1, 2, ["repair:interp"]), (4, 5, ["hold", "lost"])]
