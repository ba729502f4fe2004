"""Decider hysteresis and the no-signal check (blue / black / frozen)."""

from __future__ import annotations

import av
import numpy as np
import pytest

from rtclean.config import DetectConfig
from rtclean.detect.decide import Decider
from rtclean.detect.nosignal import NoSignalCheck
from rtclean.frames import DetectResult

FPS = 25.0


def run(decider: Decider, scores, no_signal=None):
    out = []
    for i, s in enumerate(scores):
        ns = no_signal[i] if no_signal else None
        out.append(decider.update(DetectResult(score=s, no_signal=ns), t=100.0 + i / FPS))
    return out


def test_threshold_and_release_with_clean_frames():
    d = Decider(DetectConfig(threshold=0.5, release=0.35, clean_frames=2), FPS)
    scores = [0.1, 0.6, 0.45, 0.3, 0.4, 0.2, 0.1, 0.1]
    got = [x.breakup for x in run(d, scores)]
    # 0.45: under threshold but not below release -> stays broken;
    # 0.3 first clean, 0.4 resets the count, 0.2 first, 0.1 second -> clean.
    assert got == [False, True, True, True, True, True, False, False]


def test_single_clean_frame_ends_a_run_with_clean_frames_1():
    d = Decider(DetectConfig(threshold=0.5, release=0.35, clean_frames=1), FPS)
    assert [x.breakup for x in run(d, [0.9, 0.1, 0.9, 0.49, 0.2])] == [True, False, True, True, False]


def test_frame_between_broken_frames_just_under_threshold_stays_broken():
    d = Decider(DetectConfig(threshold=0.5, release=0.35, clean_frames=3), FPS)
    assert [x.breakup for x in run(d, [0.8, 0.34, 0.8])] == [True, True, True]


def test_run_ms_counts_from_the_run_start_and_resets():
    d = Decider(DetectConfig(threshold=0.5, release=0.35, clean_frames=1), FPS)
    out = run(d, [0.0, 0.9, 0.9, 0.9, 0.0, 0.9])
    assert [round(x.run_ms) for x in out] == [0, 0, 40, 80, 0, 0]


def test_no_signal_forces_broken_and_flags_it():
    d = Decider(DetectConfig(threshold=0.5, release=0.35, clean_frames=1), FPS)
    out = run(d, [0.0, 0.0, 0.0, 0.0], no_signal=[None, "blue", "blue", None])
    assert [(x.breakup, x.no_signal) for x in out] == [(False, False), (True, True), (True, True),
                                                        (False, False)]
    assert out[2].run_ms == pytest.approx(40.0)


def test_no_frames_state():
    d = Decider(DetectConfig(clean_frames=1), FPS)
    assert d.stalled(now=0.0, stall_s=2.0)  # nothing ever arrived
    d.update(DetectResult(score=0.0), t=10.0)
    assert not d.stalled(now=11.0, stall_s=2.0)
    assert d.stalled(now=12.5, stall_s=2.0)
    dec = d.no_frames(12.5)
    assert dec.breakup and dec.no_signal
    assert dec.run_ms == pytest.approx((12.5 - 10.04) * 1000)
    # frames come back clean: the run ends
    assert not d.update(DetectResult(score=0.0), t=12.6).breakup


# --------------------------------------------------------------- no-signal check


def test_blue_and_black_screens():
    chk = NoSignalCheck(frozen_frames=12)
    rng = np.random.default_rng(1)
    blue = np.zeros((576, 720, 3), np.uint8)
    blue[..., 0] = 200
    blue = np.clip(blue + rng.normal(0, 4, blue.shape), 0, 255).astype(np.uint8)
    blue[40:70, 50:300] = 255  # receiver text on the blue screen
    assert chk.check(blue) == "blue"
    black = np.clip(rng.normal(8, 3, (480, 720, 3)), 0, 255).astype(np.uint8)
    assert chk.check(black) == "black"
    dark_scene = np.clip(rng.normal(40, 20, (480, 720, 3)), 0, 255).astype(np.uint8)
    assert chk.check(dark_scene) is None
    sky = np.zeros((144, 176, 3), np.uint8)
    sky[:] = (230, 180, 120)  # bright blue sky is not a blue screen
    assert chk.check(sky) is None


def test_frozen_after_n_identical_frames_and_noise_breaks_it():
    chk = NoSignalCheck(frozen_frames=5)
    rng = np.random.default_rng(2)
    img = rng.integers(0, 255, (576, 720, 3), dtype=np.uint8)
    got = [chk.check(img) for _ in range(6)]
    assert got == [None, None, None, None, "frozen", "frozen"]
    noisy = np.clip(img + rng.normal(0, 2, img.shape), 0, 255).astype(np.uint8)
    assert chk.check(noisy) is None
    chk.reset()
    assert chk.check(img) is None


@pytest.mark.parametrize("name", ["carphone_compressed_176x144.mp4", "cup_handheld_640x480.mp4",
                                  "box_handheld_640x480.mp4", "vtest_static_768x576.avi"])
def test_real_clips_are_never_no_signal(clips_dir, name):
    chk = NoSignalCheck(frozen_frames=DetectConfig().frozen_frames)
    with av.open(str(clips_dir / name)) as c:
        flags = [chk.check(f.to_ndarray(format="bgr24")) for f in c.decode(video=0)]
    assert len(flags) > 50
    assert [f for f in flags if f is not None] == []
