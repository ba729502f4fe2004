"""Round-2 repair levels on real footage with exact truth: the noise-weighted
mix of a snowy frame with its prediction, and click pixels from the lines
next door when the prediction is stale."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from rtclean.frames import DetectResult
from rtclean.repair import clicks, localise, mix
from rtclean.sim.breakup import inject
from tests.helpers import decode_frames, psnr


@pytest.fixture(scope="module")
def scenes(clips_dir):
    fol = [cv2.resize(f, (720, 576)) for f in decode_frames(Path(clips_dir) / "foliage_pan_720x480.mkv")[:12]]
    other = cv2.resize(decode_frames(Path(clips_dir) / "bag_handheld_480x360.avi")[0], (720, 576))
    return fol, other


SNOW = DetectResult(1.0, np.ones(16, np.float32), None,
                    {"roll": 0.0, "colour_loss": 0.0, "tear": 0.0, "noise_excess": 15.0, "clicks": 1.0})


def repaired(raw, pred, result=SNOW):
    p = localise.refine(localise.plan(result, 0.5, 0.6), raw, pred)
    return p.kind, localise.apply(p, raw, pred, 8)


def test_noise_estimate_matches_the_true_snow_error(scenes):
    fol, _ = scenes
    raw = inject(fol[5], "snow", 0.5, np.random.default_rng(3))[0]
    true = float(np.mean(cv2.absdiff(raw, fol[5]).astype(np.float32) ** 2))
    est = float(np.mean(mix.noise_rows(raw)[1])) - float(np.mean(mix.noise_rows(fol[5])[1]))
    assert 0.7 * true < est < 1.2 * true


def test_mix_with_a_stale_prediction_keeps_the_raw_picture(scenes):
    fol, other = scenes
    raw = inject(fol[5], "snow", 0.3, np.random.default_rng(4))[0]
    kind, out = repaired(raw, other)  # a prediction of another scene
    assert kind == localise.MIX
    assert psnr(out, fol[5]) > psnr(raw, fol[5]) - 0.3
    assert psnr(out, fol[5]) > psnr(other, fol[5]) + 5


def test_mix_with_a_good_prediction_beats_both(scenes):
    fol, _ = scenes
    raw = inject(fol[5], "snow", 0.25, np.random.default_rng(5))[0]
    pred = fol[3]  # two frames back on a pan: a fair prediction
    kind, out = repaired(raw, pred)
    assert kind == localise.MIX
    assert psnr(out, fol[5]) > max(psnr(raw, fol[5]), psnr(pred, fol[5])) + 0.2


def test_no_mix_for_static_roll_or_a_detector_without_features(scenes):
    fol, _ = scenes
    static = inject(fol[5], "static", 1.0, np.random.default_rng(6))[0]
    assert repaired(static, fol[4])[0] == localise.FULL  # no picture under the noise
    snowy = inject(fol[5], "snow", 0.5, np.random.default_rng(7))[0]
    roll = DetectResult(1.0, np.ones(16, np.float32), None, {**SNOW.features, "roll": 1.0})
    assert repaired(snowy, fol[4], roll)[0] == localise.FULL
    bare = DetectResult(1.0, np.ones(16, np.float32))
    assert repaired(snowy, fol[4], bare)[0] == localise.FULL


def test_clicks_from_the_lines_next_door_when_the_prediction_is_stale(scenes):
    fol, other = scenes
    raw = inject(fol[5], "sparklies", 0.8, np.random.default_rng(8))[0]
    out, share = clicks.repair_clicks(raw, other)
    assert share > 0
    assert psnr(out, fol[5]) > psnr(raw, fol[5]) + 3
    # with a good prediction the prediction is still the source
    good, _ = clicks.repair_clicks(raw, fol[4])
    assert psnr(good, fol[5]) > psnr(raw, fol[5]) + 3


def test_block_blend_follows_the_per_line_weights(scenes):
    # the blend applies the weights in 8-line blocks (the middle line's
    # weight): every pixel is within half a block's weight change of the
    # exact per-line mix (times the raw - prediction difference, plus
    # rounding), and a flat weight is exact
    fol, other = scenes
    raw, pred = fol[5], other
    h = raw.shape[0]
    w = np.interp(np.arange(h), np.linspace(0, h - 1, 16), np.tile([0.1, 0.9], 8)).astype(np.float32)
    exact = raw.astype(np.float32) * (1 - w[:, None, None]) + pred.astype(np.float32) * w[:, None, None]
    out = mix.blend(raw, pred, w)
    assert out.shape == raw.shape and out is not raw
    step = float(np.abs(np.diff(w)).max()) * (mix.BLEND_LINES // 2 + 1)
    bound = step * np.abs(raw.astype(np.float32) - pred) + 1.0
    assert (np.abs(out.astype(np.float32) - exact) <= bound).all()
    flat = mix.blend(raw, pred, np.full(h, 0.25, np.float32))
    ref = cv2.addWeighted(raw, 0.75, pred, 0.25, 0.0)
    assert np.array_equal(flat, ref)
