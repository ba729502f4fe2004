"""The repair hierarchy on real footage with exact ground truth: every finer
level (pixels, field, band) beats the whole-frame prediction where it
applies, the OSD survives the warp, scene cuts are not smeared, and the
offline look-ahead uses the same levels."""

from __future__ import annotations

import av
import cv2
import numpy as np
import pytest

from rtclean import frames
from rtclean.config import RepairConfig
from rtclean.detect.classical import ClassicalDetector
from rtclean.frames import Decision, DetectResult, Frame, Processed
from rtclean.offline.lookahead import INTERP, Lookahead
from rtclean.repair import bands as band_repair
from rtclean.repair import clicks, field, localise
from rtclean.repair.flow import FlowEstimator
from rtclean.repair.repairer import REPAIR_BAND, REPAIR_FIELD, REPAIR_FLOW, REPAIR_PIXELS, Repairer
from rtclean.sim.breakup import inject
from rtclean.sim.osd import Osd

FPS = 25.0
CLEAN = Decision(breakup=False)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float32) - b.astype(np.float32)) ** 2))
    return 10 * np.log10(255.0 ** 2 / max(mse, 1e-6))


def decode(path, n: int, size=(720, 576)) -> list[np.ndarray]:
    out = []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            out.append(cv2.resize(f.to_ndarray(format="bgr24"), size, interpolation=cv2.INTER_AREA))
            if len(out) >= n:
                break
    return out


@pytest.fixture(scope="module")
def foliage(clips_dir):
    return decode(clips_dir / "foliage_pan_720x480.mkv", 40)


@pytest.fixture(scope="module")
def bikes(clips_dir):
    return decode(clips_dir / "bikes_cuts_640x272.mp4", 250, (640, 272))


def truth_result(label) -> DetectResult:
    """What a perfect detector would say (the simulator's exact labels)."""
    # label bands are damaged-line fractions (<= 0.5 when one field is hit):
    # any damaged line makes the band damaged
    return DetectResult(1.0, (label.bands > 0).astype(np.float32), None, {}, np.array(label.fields, np.float32))


def repaired(fr, k: int, image: np.ndarray, result: DetectResult, cfg: RepairConfig | None = None):
    """Frames k-2, k-1 clean, then ``image`` (frame k broken) through a Repairer."""
    rep = Repairer(cfg or RepairConfig(), FPS)
    for i in (k - 2, k - 1):
        rep.process(Frame(i, i / FPS, fr[i]), CLEAN, DetectResult(0.0))
    return rep.process(Frame(k, k / FPS, image), Decision(True, run_ms=40.0), result)


def full_frame(fr, k, image):
    return repaired(fr, k, image, DetectResult(1.0))  # no bands: the whole prediction


# --------------------------------------------------------------- levels


@pytest.mark.parametrize("kind", ["snow", "tear", "colour_loss"])
def test_field_repair_beats_full_frame(foliage, kind):
    rng = np.random.default_rng(5)
    gains = []
    for k in range(2, len(foliage), 4):
        image, label = inject(foliage[k], kind, 0.8, rng, field=k % 2)
        out, action = repaired(foliage, k, image, truth_result(label))
        assert action == REPAIR_FIELD
        # the clean field is the frame's own: untouched
        assert np.array_equal(out[1 - k % 2::2], foliage[k][1 - k % 2::2])
        full, faction = full_frame(foliage, k, image)
        assert faction == REPAIR_FLOW
        gains.append(psnr(out, foliage[k]) - psnr(full, foliage[k]))
    print(f"\nfield repair vs full frame ({kind}): median {np.median(gains):+.2f} dB, worst {min(gains):+.2f} dB")
    assert np.median(gains) > 2.0
    assert min(gains) > 0.0


def test_field_repair_uses_agreeing_prediction_and_spatial_estimate_alone_beats_hold(foliage):
    spatial_only, with_pred, hold = [], [], []
    est = FlowEstimator(180)
    for k in range(2, len(foliage), 3):
        truth = foliage[k]
        broken = truth.copy()
        broken[0::2] = 0
        pred = est.warp(foliage[k - 1], est.flow(est.small(foliage[k - 1]), est.small(foliage[k - 2])), 1.0)
        spatial_only.append(psnr(field.repair_field(broken, 0), truth))
        with_pred.append(psnr(field.repair_field(broken, 0, pred), truth))
        hold.append(psnr(foliage[k - 1], truth))
    print(f"\nfield: spatial {np.median(spatial_only):.2f} dB, with prediction {np.median(with_pred):.2f} dB, "
          f"hold {np.median(hold):.2f} dB")
    assert np.median(spatial_only) > np.median(hold) + 3.0
    assert np.median(with_pred) > np.median(spatial_only)


def test_band_repair_beats_full_frame_and_keeps_intact_bands(foliage):
    rng = np.random.default_rng(9)
    gains = []
    for k in range(2, len(foliage), 4):
        image, label = inject(foliage[k], "tear", 0.5, rng)
        res = truth_result(label)
        res.fields = None  # band repair, not field repair
        out, action = repaired(foliage, k, image, res)
        if label.bands.astype(bool).mean() > 0.4:
            continue  # too much damage for band repair (whole frame): not this test's case
        assert action == REPAIR_BAND
        # lines far from every damaged band are the frame's own, bit for bit
        p = localise.plan(res, 0.5, 0.6)
        w = band_repair.row_weights(band_repair.band_rows(p.damaged, 576), 8)
        assert np.array_equal(out[w == 0], image[w == 0])
        assert (w == 0).any()
        full, _ = full_frame(foliage, k, image)
        gains.append(psnr(out, foliage[k]) - psnr(full, foliage[k]))
    assert len(gains) >= 4
    print(f"\nband repair vs full frame: median {np.median(gains):+.2f} dB, worst {min(gains):+.2f} dB")
    assert min(gains) > 0.0


def test_feathered_seam_fades_between_prediction_and_frame():
    raw = np.zeros((160, 40, 3), np.uint8)
    pred = np.full_like(raw, 200)
    damaged = np.zeros(16, bool)
    damaged[7] = True  # lines 70..79
    out = band_repair.repair_bands(raw, pred, damaged, feather=4)
    col = out[:, 0, 0].astype(int)
    assert (col[70:80] == 200).all()  # the damaged lines: fully replaced
    assert (col[:65] == 0).all() and (col[85:] == 0).all()  # intact lines: untouched
    assert list(col[65:70]) == sorted(col[65:70]) and 0 < col[66] < col[69] < 200  # ramps up ...
    assert list(col[80:85]) == sorted(col[80:85], reverse=True)  # ... and down


def test_pixel_repair_of_clicks_beats_raw_and_full_frame(foliage):
    rng = np.random.default_rng(3)
    det_plans = []
    for k in range(2, len(foliage), 4):
        image, label = inject(foliage[k], "sparklies", 0.6, rng)
        # the classical detector, as the live path runs it, after a few clean frames
        det = ClassicalDetector()
        for i in range(max(0, k - 6), k):
            det.detect(foliage[i])
        res = det.detect(image)
        out, action = repaired(foliage, k, image, res)
        det_plans.append(action)
        if action != REPAIR_PIXELS:
            continue
        full, _ = full_frame(foliage, k, image)
        t = foliage[k]
        assert psnr(out, t) > psnr(image, t) + 1.0
        assert psnr(out, t) > psnr(full, t) + 1.0
    assert det_plans.count(REPAIR_PIXELS) >= len(det_plans) // 2, det_plans


def test_click_mask_finds_streaks_not_scene_detail(foliage):
    rng = np.random.default_rng(4)
    clean_share = cv2.countNonZero(clicks.click_mask(foliage[5])) / (576 * 720)
    image, label = inject(foliage[5], "sparklies", 0.5, rng)
    hit = clicks.click_mask(image) > 0
    damaged = np.any(image != foliage[5], axis=2)
    print(f"\nclick mask: {clean_share:.4%} of a clean frame, covers {hit[damaged].mean():.1%} of damaged pixels")
    assert clean_share < 0.01
    assert hit[damaged].mean() > 0.8


def test_detector_field_scores_name_the_damaged_field(foliage):
    rng = np.random.default_rng(11)
    for kind in ("snow", "colour_loss"):
        for f in (0, 1):
            det = ClassicalDetector()
            for i in range(6):
                det.detect(foliage[i])
            image, _ = inject(foliage[6], kind, 0.7, rng, field=f)
            r = det.detect(image)
            assert r.fields is not None and r.fields.shape == (2,)
            assert r.fields[f] >= 0.5 and r.fields[1 - f] < 0.25, (kind, f, r.fields)
    r = ClassicalDetector().detect(foliage[0])
    assert r.fields is not None and r.fields.max() == 0.0


# --------------------------------------------------------------- OSD


def with_osd(frames_: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
    """The frames with a fixed FPV OSD on top, and the OSD's pixel mask."""
    osd = Osd(720, 576, seed=2)
    out = []
    for f in frames_:
        g = f.copy()
        osd.draw(g, 0.0, 80)
        out.append(g)
    mask = np.zeros((576, 720), bool)
    for s in osd._sprites:
        h, w = s.patch.shape[:2]
        mask[s.y:s.y + h, s.x:s.x + w] |= s.mask[..., 0]
    return out, mask


@pytest.mark.parametrize("osd_frames,expect_sharp", [(12, True), (0, False)])
def test_osd_stays_where_it_is_when_the_scene_is_warped(foliage, osd_frames, expect_sharp):
    fr, mask = with_osd(foliage)
    rep = Repairer(RepairConfig(osd_frames=osd_frames), FPS)
    for i in range(20):
        rep.process(Frame(i, i / FPS, fr[i]), CLEAN, DetectResult(0.0))
    same = []
    for k in range(20, 24):  # a run of four broken frames: the scene moves on, the OSD must not
        out, action = rep.process(Frame(k, k / FPS, np.zeros_like(fr[k])), Decision(True, run_ms=(k - 19) * 40.0),
                                  DetectResult(1.0))
        assert action == REPAIR_FLOW
        same.append(float(np.all(out == fr[19], axis=2)[mask].mean()))
    print(f"\nOSD pixels equal to the clean frames' OSD (osd_frames={osd_frames}): {same}")
    if expect_sharp:
        assert min(same) > 0.98
    else:
        assert max(same) < 0.7  # the scene's flow drags the OSD along: this is what the model prevents


# --------------------------------------------------------------- offline and cuts


def processed(i: int, image: np.ndarray, action: str, result: DetectResult | None = None) -> Processed:
    broken = action != frames.PASS
    return Processed(Frame(i, i / FPS, image), image, result or DetectResult(float(broken)),
                     Decision(breakup=broken, run_ms=40.0 * broken), action)


def test_lookahead_uses_band_repair_inside_a_gap_and_interpolates_otherwise(foliage):
    rng = np.random.default_rng(12)
    la = Lookahead(FlowEstimator(180).interpolate, 1.0)
    for i in range(10):
        assert [p.frame.index for p in la.push(processed(i, foliage[i], frames.PASS))] == [i]
    torn, label = inject(foliage[10], "tear", 0.3, rng)
    bands = np.zeros(16, np.float32)
    bands[np.nonzero(label.bands)[0]] = 1.0
    assert la.push(processed(10, torn, REPAIR_FLOW, DetectResult(1.0, bands))) == []
    assert la.push(processed(11, np.zeros_like(foliage[11]), REPAIR_FLOW)) == []  # no bands: whole frame
    out = la.push(processed(12, foliage[12], frames.PASS))
    assert [p.frame.index for p in out] == [10, 11, 12]
    assert out[0].action == REPAIR_BAND and out[1].action == INTERP
    far = band_repair.row_weights(band_repair.band_rows(np.convolve(bands > 0, [1, 1, 1], "same") > 0, 576), 8) == 0
    assert np.array_equal(out[0].clean[far], torn[far])
    interp = FlowEstimator(180).interpolate(foliage[9], foliage[12], 2 / 3)
    assert psnr(out[1].clean, foliage[11]) > psnr(interp, foliage[11]) - 0.5
    assert psnr(out[0].clean, foliage[10]) > psnr(FlowEstimator(180).interpolate(foliage[9], foliage[12], 1 / 3),
                                                  foliage[10])


def cut_index(fr) -> int:
    est = FlowEstimator(180)
    for k in range(1, len(fr)):
        if est.is_cut(fr[k - 1], fr[k]):
            return k
    raise AssertionError("no cut found in bikes")


def test_interpolate_across_a_cut_shows_one_scene_not_a_smear(bikes):
    k = cut_index(bikes)
    est = FlowEstimator(180)
    a, b = bikes[k - 1], bikes[k]
    assert np.array_equal(est.interpolate(a, b, 0.3), a)
    assert np.array_equal(est.interpolate(a, b, 0.7), b)
    assert not est.is_cut(bikes[k - 3], bikes[k - 2])


def test_lookahead_gap_across_a_cut_picks_each_frames_own_scene(bikes):
    k = cut_index(bikes)
    # frames k-3 .. k broken (the cut between k-1 and k inside the gap); the
    # top half of each is intact and says which scene the frame belongs to
    la = Lookahead(FlowEstimator(180).interpolate, 1.0)
    la.push(processed(k - 4, bikes[k - 4], frames.PASS))
    bands = np.zeros(16, np.float32)
    bands[8:] = 1.0
    for i in range(k - 3, k + 1):
        img = bikes[i].copy()
        img[136:] = np.random.default_rng(i).integers(0, 256, img[136:].shape, dtype=np.uint8)
        assert la.push(processed(i, img, REPAIR_FLOW, DetectResult(1.0, bands))) == []
    out = la.push(processed(k + 1, bikes[k + 1], frames.PASS))
    gap = out[:-1]
    # the chosen side then goes through the hierarchy like any prediction:
    # the intact top half is kept, the damaged bands come from that side
    assert [p.action for p in gap] == [REPAIR_BAND] * 4
    # k-1 is nearer the clean frame after the gap (alpha 0.6) but shows the
    # old scene: it gets the frame before; k shows the new scene
    for p in gap[:3]:
        assert np.array_equal(p.clean[200:], bikes[k - 4][200:])
    assert np.array_equal(gap[3].clean[200:], bikes[k + 1][200:])
    for p, i in zip(gap, range(k - 3, k + 1)):
        assert np.array_equal(p.clean[:100], bikes[i][:100])  # own intact picture


# --------------------------------------------------------------- keep what is better raw


def mediocre_prediction(truth: np.ndarray, sigma: float = 10.0) -> np.ndarray:
    """A prediction with a plausible error everywhere (as from imperfect flow)."""
    noise = np.random.default_rng(21).normal(0.0, sigma, truth.shape)
    return np.clip(truth + noise, 0, 255).astype(np.uint8)


def test_band_check_keeps_a_lightly_damaged_band_and_replaces_a_destroyed_one(foliage):
    truth = foliage[12]
    raw = truth.copy()
    lines = band_repair.band_rows(np.eye(16, dtype=bool)[5], 576)
    raw[lines] = np.clip(raw[lines].astype(int) + 3, 0, 255).astype(np.uint8)  # light damage: band 5
    raw[band_repair.band_rows(np.eye(16, dtype=bool)[9], 576)] = 0  # destroyed: band 9
    pred = mediocre_prediction(truth)
    damaged = np.zeros(16, bool)
    damaged[[5, 9]] = True
    p = localise.Plan(localise.BAND, damaged, intact=~damaged)
    kept = localise.keep_better_bands(p, raw, pred)
    assert kept[9] and not kept[5] and kept.sum() == 1
    out = localise.apply(p, raw, pred, 8)
    unchecked = band_repair.repair_bands(raw, pred, damaged, 8)
    assert psnr(out, truth) > psnr(unchecked, truth) + 0.5
    assert psnr(out, truth) > psnr(raw, truth)
    # too few intact bands to judge the prediction by: the detector's bands stand
    few = localise.Plan(localise.BAND, damaged, intact=np.eye(16, dtype=bool)[0])
    assert np.array_equal(localise.keep_better_bands(few, raw, pred), damaged)


def test_widespread_damage_keeps_bands_whose_own_picture_is_better(foliage):
    truth = foliage[14]
    raw = truth.copy()
    bands = np.zeros(16, np.float32)
    bands[:11] = 1.0  # grown to 12 of 16 bands: more than band_max_share, a FULL plan
    for b in range(11):
        if b != 3:
            raw[band_repair.band_rows(np.eye(16, dtype=bool)[b], 576)] = 255
    pred = mediocre_prediction(truth)
    p = localise.plan(DetectResult(1.0, bands), 0.5, 0.6)
    assert p.kind == localise.FULL
    r = localise.refine(p, raw, pred)
    assert r.kind == localise.BAND and r.damaged[[0, 1, 2, 4, 10]].all()
    assert not r.damaged[3] and not r.damaged[11]  # undamaged, though the detector said otherwise
    assert psnr(localise.apply(r, raw, pred, 8), truth) > psnr(pred, truth)
    # every suspect band is worse than the prediction: stays the whole prediction
    raw[band_repair.band_rows(np.eye(16, dtype=bool)[[3, 11]].any(axis=0), 576)] = 255
    assert localise.refine(p, raw, pred).kind == localise.FULL


def test_click_repair_with_a_wrong_prediction_keeps_the_tails(foliage, clips_dir):
    rng = np.random.default_rng(8)
    image, _ = inject(foliage[20], "sparklies", 0.6, rng)
    truth = foliage[20]
    wrong = decode(clips_dir / "walk_pan_720x480.mkv", 1)[0]  # another scene (a cut the flow missed)
    for pred, name in ((wrong, "wrong scene"), (foliage[19], "previous frame")):
        out, share = clicks.repair_clicks(image, pred)
        whole_mask = image.copy()
        cv2.copyTo(pred, clicks.click_mask(image), whole_mask)  # every mask pixel replaced
        print(f"\nclicks, {name}: raw {psnr(image, truth):.2f}, checked {psnr(out, truth):.2f}, "
              f"whole mask {psnr(whole_mask, truth):.2f} dB ({share:.3%} replaced)")
        if pred is wrong:
            assert psnr(out, truth) > psnr(whole_mask, truth) + 0.5
        else:
            assert psnr(out, truth) > psnr(whole_mask, truth) - 0.3
            assert psnr(out, truth) > psnr(image, truth) + 3.0


def test_field_repair_outputs_are_independent_of_reused_buffers(foliage):
    a = foliage[3].copy()
    a[0::2] = 0
    first = field.repair_field(a, 0, foliage[2])
    keep = first.copy()
    b = foliage[30].copy()
    b[1::2] = 255
    rows = band_repair.band_rows(np.eye(16, dtype=bool)[4], 576)
    second = field.repair_field(b, 1, foliage[29], rows)
    assert np.array_equal(first, keep)  # the second call did not write into the first result
    assert np.array_equal(second[~rows], b[~rows])  # only the lines asked for
    assert np.array_equal(second[0::2], b[0::2])  # the clean field untouched
    assert not np.array_equal(second[1::2][rows[1::2]], b[1::2][rows[1::2]])
