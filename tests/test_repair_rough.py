"""Suspect bands whose raw lines are as smooth as a clean picture are kept
raw (localise.ROUGH_MARGIN): real footage, simulator damage, exact truth."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from rtclean.frames import DetectResult
from rtclean.repair import bands, localise
from rtclean.sim.breakup import inject
from tests.helpers import decode_frames, psnr

FEATS = {"tear": 1.0, "roll": 0.0, "colour_loss": 0.0}


@pytest.fixture(scope="module")
def foliage(clips_dir):
    return [cv2.resize(f, (720, 576)) for f in decode_frames(Path(clips_dir) / "foliage_pan_720x480.mkv")[:12]]


def locally_poor(good: np.ndarray, stale: np.ndarray, band: int) -> np.ndarray:
    """A prediction that is good except over one band (a stale picture there:
    the extrapolation failed locally, as on carphone 61)."""
    pred = good.copy()
    rows = bands.band_rows(np.arange(16) == band, good.shape[0])
    pred[rows] = stale[rows]
    return pred


def test_roughness_separates_damaged_from_intact_bands(foliage):
    truth, pred = foliage[8], foliage[7]  # the previous frame of a pan as prediction
    # damaged bands stand far out of the margin (foliage: 56-2,900) ...
    for kind, seed in (("tear", 11), ("tear", 12), ("snow", 13), ("sparklies", 14)):
        raw, label = inject(truth, kind, 0.6, np.random.default_rng(seed))
        ex = localise.rough_excess(raw, pred, np.ones(16, bool))
        hit = label.bands > 0.3
        assert hit.any()
        assert ex[hit].min() > 10 * localise.ROUGH_MARGIN, (kind, ex, label.bands)
    # ... while an undamaged picture of dense foliage stays under it almost
    # everywhere (a band over it is merely judged as before the check)
    ex = localise.rough_excess(truth, pred, np.ones(16, bool))
    assert np.count_nonzero(ex <= localise.ROUGH_MARGIN) >= 14, ex
    # only the bands asked for are measured
    some = np.zeros(16, bool)
    some[[2, 9]] = True
    assert np.array_equal(localise.rough_excess(truth, pred, some)[~some], np.zeros(14, np.float32))


def test_an_intact_flagged_band_with_a_poor_prediction_stays_raw(foliage):
    truth = foliage[8]
    wins = 0
    for seed in (11, 12, 13):
        raw, label = inject(truth, "tear", 0.6, np.random.default_rng(seed))
        torn = label.bands > 0.3
        clear = np.nonzero(label.bands == 0)[0]
        fp = int(clear[len(clear) // 2])  # a detector false positive on an intact band
        hot = (torn | (np.arange(16) == fp)).astype(np.float32)
        pred = locally_poor(foliage[7], foliage[0], fp)
        res = DetectResult(1.0, hot, None, FEATS)
        p = localise.plan(res, 0.5, 0.6)
        if p.kind != localise.BAND or np.count_nonzero(p.intact) < localise.MIN_INTACT:
            continue
        assert p.rough_check
        checked = localise.apply(p, raw, pred, 8)
        unchecked = localise.apply(localise.Plan(p.kind, p.damaged, intact=p.intact, torn=p.torn), raw, pred, 8)
        rows = bands.band_rows(np.arange(16) == fp, raw.shape[0])
        # without the check the poor band replaces the intact raw lines
        assert not np.array_equal(unchecked[rows], raw[rows])
        # with it the band's own lines are kept, bit-identical ...
        assert np.array_equal(checked[rows], raw[rows])
        # ... while the torn bands are still repaired
        trows = bands.band_rows(torn, raw.shape[0])
        assert psnr(checked[trows], truth[trows]) > psnr(raw[trows], truth[trows]) + 3
        assert psnr(checked, truth) > psnr(unchecked, truth) + 0.5
        assert psnr(checked, truth) > psnr(raw, truth)
        wins += 1
    assert wins >= 2


def test_colour_loss_is_not_judged_by_roughness(foliage):
    # a grey band is smooth but wrong: with colour loss reported the band
    # check alone decides, and a good prediction replaces the band
    truth = foliage[8]
    raw, label = inject(truth, "colour_loss", 0.8, np.random.default_rng(5))
    hit = np.zeros(16, bool)
    hit[6] = True
    raw = np.where(bands.band_rows(hit, raw.shape[0])[:, None, None], raw, truth)
    res = DetectResult(1.0, hit.astype(np.float32), None, {**FEATS, "tear": 0.0, "colour_loss": 1.0})
    p = localise.plan(res, 0.5, 0.6)
    assert p.kind == localise.BAND and not p.rough_check
    out = localise.apply(p, raw, truth, 8)
    rows = bands.band_rows(hit, raw.shape[0])
    assert np.array_equal(out[rows], truth[rows])
