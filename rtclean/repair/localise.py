"""Choose the least invented pixels: field, band or whole-frame repair.

Given what the detector said about a broken frame (per-band scores, and per
field scores when it gives them) and a motion-compensated prediction of the
whole frame (extrapolated live, interpolated offline), build the repaired
picture from as many of the frame's own pixels as can be trusted:

0. pixels: the detector's cues say the damage is FM clicks only (no snow,
   tearing, colour loss or roll) -> only the click streaks are replaced
   (clicks.py): a few hundred pixels instead of whole bands;
1. field: one field is damaged, the other clean -> rebuild the damaged
   field's lines (only within the damaged bands when those are known) from
   the clean field, helped by the prediction where it agrees (field.py);
2. band: some bands are damaged, most are not -> only those bands come from
   the prediction, with feathered seams (bands.py); in a torn frame with a
   poor prediction, from the band's own lines moved back sideways (tear.py);
3. mix: the damage is everywhere but is noise on top of the picture (snow),
   or the detector found no damaged band at all -> raw and prediction mixed
   line by line, each weighted by the other's estimated error (mix.py): a
   stale prediction gives way to the noisy but right raw frame;
4. full: otherwise -> the whole prediction.

Before pixels or bands are replaced, the prediction is checked against the
frame's own intact picture (``apply``): many broken frames are only lightly
damaged (a few sparkly lines, one torn band), and a prediction that is itself
poor (fast or jerky motion, a long gap, a scene change the flow missed)
would make them worse. Over the intact bands, raw ~ truth, so the mean
squared difference raw - prediction there estimates the prediction's own
error E. In a suspect band, the difference D is raw error + prediction error
(independent), so the raw band is the better picture when D < 2 E: such a
band is kept. Tearing, or a prediction poor only locally, defeats that
test (a displacement is not noise it can weigh), so a band is also kept
when its raw lines are no rougher vertically than the prediction's
(ROUGH_MARGIN): a clean picture's lines continue each other, damaged ones
do not. Click pixels are replaced only where they stand out of the
prediction by more than the prediction's own error can explain. Only run-time
information is used (detector bands, the two pictures).

The same rules serve the live repairer and the offline look-ahead, so both
report the same kinds ("repair:field", "repair:band", and the caller's own
kind for a whole frame).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from rtclean.frames import DetectResult
from rtclean.repair import bands as band_repair
from rtclean.repair import clicks
from rtclean.repair import field as field_repair
from rtclean.repair import mix, tear
from rtclean.repair.scratch import buffer

PIXELS = "pixels"
FIELD = "field"
BAND = "band"
MIX = "mix"
KEEP = "keep"  # the raw frame as it is: every prediction is far worse (mix.KEEP_RAW_BELOW)
FULL = "full"

# A field whose score is below this share of the band threshold counts as
# clean: field repair trusts its pixels completely, so the bar is higher
# than for "not broken enough to replace".
CLEAN_FIELD_SHARE = 0.5
# Detector features (ClassicalDetector) that say "something besides clicks":
# above these, pixel repair is not enough.
_NOT_CLICKS = {"noise_excess": 4.5, "tear": 0.3, "colour_loss": 0.0, "roll": 0.0}
# Detector features above which the raw error is not noise the vertical
# difference can measure (mix.py): a rolled or torn picture, lost chroma.
_NOT_NOISE = {"roll": 0.0, "colour_loss": 0.0}
_NOT_NOISE_HOT = {"tear": 0.3}  # ... and tearing, when some band is damaged
# Damaged bands grow by one band on each side: breakup does not end on the
# detector's band edges, and a leftover torn line next to a repaired band is
# more visible than a few predicted lines of an intact one.
GROW = 1
# A suspect band is replaced only when its raw - prediction difference (MSE)
# is above this multiple of the prediction's error measured on intact bands:
# 2 = where the raw band's own error would exceed the prediction's.
KEEP_RATIO = 2.0
# Torn bands (the detector's tear feature) are un-shifted rather than
# replaced when the prediction's error on the intact bands is above this
# MSE (under ~28 dB): the un-shifted raw band's own error (residual line
# jitter, edges filled from the prediction) measured 20-1,000 on the 11
# clips, so it loses to near-perfect predictions (static scenes) and wins
# on poor ones (fast or jerky motion, long gaps): per band, +1.5 dB mean
# over 61 torn bands against replacing them, live. The un-shifted band's
# agreement with the prediction says nothing here: the shift is fitted to
# the prediction, so a good match is partly made by the fit.
UNSHIFT_MIN_ERR = 100.0
# The un-shifted band's roughness is read on every line: a tear in one
# field un-shifted well or badly shows differently on the lines of each
# field (every 2nd line, foliage 24 read 317 on one field's lines and 172
# on the other's, raw 216), so one field alone misjudges it.
UNSHIFT_ROUGH_STEP = 1
# ... and the un-shift counts as failed when that roughness is above this
# multiple of the raw band's. A partly torn band whose un-shift fixed the
# torn lines and misplaced a few intact ones reads a little rougher than
# raw and is still far better than either (foliage 24: 1.13x, MSE 469 against raw
# 1,733 and prediction 1,546); failed un-shifts read 3-50x (bag_handheld
# 77/88). Measured with the prediction as the only fallback: 1.2 and 1.5
# the same but for cup_handheld 38 (-0.6 dB at 1.5); 1.0 lost foliage 24
# (-2.3 dB).
UNSHIFT_ROUGH_RATIO = 1.2
# Intact bands needed to measure the prediction's error; fewer and the
# check is skipped (the detector's bands are trusted as they are).
MIN_INTACT = 3
# A suspect band whose raw lines are no rougher vertically than the
# prediction's (mix.noise_rows: the vertical second difference, raw minus
# prediction, mean over the band) by more than this is kept raw, whatever
# its raw - prediction difference: its lines are consistent with a clean
# picture, so that difference is the prediction's own error. Snow, clicks
# and tearing all raise it (a torn line no longer continues its
# neighbours; the jitter of a tear differs from line to line and field to
# field): measured on the 11 clips, intact bands -1..2, damaged bands 5-60
# (tears 5-32, snow hundreds). Where the detector's grown band or a
# missed-intact band is replaced because the prediction is poor there
# (carphone 61: 17.8 dB extrapolation over an intact band, D/E 2.06), this
# keeps it. A prediction blurrier than the truth raises the figure a
# little on intact bands (walk_pan: up to 2), hence the margin.
ROUGH_MARGIN = 3.0
# Roughness is read on every ROUGH_STEP-th line of the candidate bands
# (every 4th line lost one of the gains on the 11 clips).
ROUGH_STEP = 2
# Detector features above which damage is not visible as roughness: a
# rolled picture and lost chroma are smooth but wrong.
_NOT_ROUGH = {"roll": 0.0, "colour_loss": 0.0}


@dataclass(frozen=True, slots=True)
class Plan:
    kind: str  # PIXELS, FIELD, BAND, MIX, KEEP or FULL
    damaged: np.ndarray | None = None  # bool per band (FIELD and BAND)
    field: int | None = None  # damaged field (FIELD): 0 even lines, 1 odd lines
    intact: np.ndarray | None = None  # bool per band: clearly undamaged (BAND)
    mixable: bool = False  # FULL: the damage is noise on the picture (see _mixable)
    weights: np.ndarray | None = None  # MIX: per line weight of the prediction
    torn: bool = False  # the detector saw tearing: BAND, try un-shifting bands (tear.py); MIX, cap the weight
    rough_check: bool = False  # BAND: damage shows as roughness, smooth raw bands are kept (ROUGH_MARGIN)


def plan(result: DetectResult, band_threshold: float, band_max_share: float) -> Plan:
    """What to replace in a frame the decision called broken."""
    feats = result.features
    if feats and all(k in feats for k in _NOT_CLICKS) and feats.get("clicks", 0.0) > 0 \
            and all(feats[k] <= v for k, v in _NOT_CLICKS.items()):
        return Plan(PIXELS)
    bands = result.bands
    if bands is None or len(bands) == 0:
        return Plan(FULL, mixable=_mixable(result, hot=True))
    hot = np.asarray(bands, np.float32) >= band_threshold
    if not hot.any():
        # Broken by the decision (hysteresis, a whole-frame cue) but no band
        # says where: the damage is light or spread thinly. (Keeping the
        # bands that match the prediction here was tried: on the 11 clips it
        # cost 1.3 dB offline.) The mix weighs the whole raw frame against
        # the prediction instead (refine).
        return Plan(FULL, mixable=_mixable(result, hot=False), torn=_torn(result))
    grown = hot.copy()
    for k in range(1, GROW + 1):
        grown[k:] |= hot[:-k]
        grown[:-k] |= hot[k:]
    fields = result.fields
    if fields is not None and len(fields) == 2:
        f = np.asarray(fields, np.float32)
        bad = int(np.argmax(f))
        if f[bad] >= band_threshold and f[1 - bad] < CLEAN_FIELD_SHARE * band_threshold:
            return Plan(FIELD, grown, bad)
    intact = (np.asarray(bands, np.float32) < CLEAN_FIELD_SHARE * band_threshold) & ~grown
    if grown.mean() > band_max_share:
        # Widespread damage: the whole prediction, except bands whose own
        # picture proves better than it (apply; needs intact bands to judge).
        return Plan(FULL, ~intact, intact=intact, mixable=_mixable(result, hot=True), torn=_torn(result),
                    rough_check=_rough_visible(result))
    return Plan(BAND, grown, intact=intact, torn=_torn(result), rough_check=_rough_visible(result))


def _torn(result: DetectResult) -> bool:
    return float((result.features or {}).get("tear", 0.0)) > _NOT_CLICKS["tear"]


def _rough_visible(result: DetectResult) -> bool:
    """The detector gives its features and none says roll or colour loss
    (or no signal): the damage it saw raises the raw lines' vertical
    roughness, so a band without excess roughness is intact."""
    feats = result.features
    if result.no_signal or not feats:
        return False
    return all(float(feats.get(k, 0.0)) <= v for k, v in _NOT_ROUGH.items())


def _mixable(result: DetectResult, hot: bool) -> bool:
    """The raw frame's error is noise on the picture (mix.py can weigh it):
    the detector gives its features and none says roll or colour loss (nor
    tearing, when some band is damaged: a band torn below the threshold is
    a few shifted lines, raw is still the better picture there)."""
    feats = result.features
    if result.no_signal or not feats:
        return False
    rules = {**_NOT_NOISE, **(_NOT_NOISE_HOT if hot else {})}
    return all(float(feats.get(k, 0.0)) <= v for k, v in rules.items())


def line_mse(raw: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Per picture line: mean squared difference raw - pred over pixels and
    colour channels (float32, one value per line). Colour matters: a frame
    that lost its chroma has the right grey levels."""
    h = raw.shape[0]
    d = cv2.absdiff(raw, pred, dst=buffer("line_diff", raw.shape))
    sq = cv2.reduce(d.reshape(h, -1), 1, cv2.REDUCE_SUM2, dtype=cv2.CV_32F)
    return sq.ravel() / float(d[0].size)


def band_mse(lines: np.ndarray, n: int) -> np.ndarray:
    """Per band mean of per-line values (n bands over the lines)."""
    h = lines.size
    band_of_line = np.minimum(np.arange(h) * n // h, n - 1)
    return np.bincount(band_of_line, lines, n) / np.bincount(band_of_line, None, n)


def keep_better_bands(p: Plan, raw: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """The plan's damaged bands minus those whose raw picture is likely
    better than the prediction (see module doc)."""
    return _judge_bands(p, raw, pred)[0]


def _judge_bands(p: Plan, raw: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, float | None]:
    """(bands to replace, the prediction's error E on the intact bands, or
    None when too few bands are intact to measure it)."""
    damaged = np.asarray(p.damaged, bool)
    if p.intact is None or np.count_nonzero(p.intact) < MIN_INTACT:
        return damaged, None
    mse = band_mse(line_mse(raw, pred), damaged.size)
    err = float(np.median(mse[p.intact]))
    replace = damaged & (mse > KEEP_RATIO * err)
    if p.rough_check and replace.any():
        replace &= rough_excess(raw, pred, replace) > ROUGH_MARGIN
    return replace, err


def rough_excess(raw: np.ndarray, pred: np.ndarray, which: np.ndarray) -> np.ndarray:
    """Per band (``which``: bool per band; 0 for the others): the raw
    lines' vertical roughness minus the prediction's (mix.noise_rows on
    every ROUGH_STEP-th line, mean over the band). ~0 for a band whose raw
    lines are a clean picture, positive for snow, clicks and tearing."""
    return band_roughness(raw, which) - band_roughness(pred, which)


def band_roughness(img: np.ndarray, which: np.ndarray, step: int = ROUGH_STEP) -> np.ndarray:
    """Per band (``which``: bool per band; 0 for the others): the lines'
    vertical roughness (mix.noise_rows on every ``step``-th line, mean over
    the band, the lines just outside it included as neighbours)."""
    which = np.asarray(which, bool)
    n = which.size
    h = img.shape[0]
    out = np.zeros(n, np.float32)
    for b in np.nonzero(which)[0].tolist():  # at most n bands, whole-band slices
        top, end = -(-b * h // n), -(-(b + 1) * h // n)  # the lines with l * n // h == b
        a, z = max(top - 1, 0), min(end + 1, h)
        if z - a < 3:
            continue
        out[b] = float(mix.noise_rows(img[a:z], step)[1].mean())
    return out


def unshift_torn_bands(raw: np.ndarray, pred: np.ndarray, damaged: np.ndarray,
                       intact: np.ndarray | None = None) -> np.ndarray:
    """A copy of ``pred`` whose damaged bands come from the raw lines moved
    back sideways (tear.py): the picture to take a torn frame's damaged
    bands from when the prediction is poor (see UNSHIFT_MIN_ERR). A band
    the un-shift leaves rougher vertically than its raw lines (it did not
    find the tear's shifts) takes its raw lines when they match the
    prediction as well as the nearest ``intact`` bands do, else the
    prediction (``raw_matches_nearby``)."""
    rows = band_repair.band_rows(damaged, raw.shape[0])
    src = pred.copy()
    src[rows] = tear.unshift(raw[rows], pred[rows])
    # Against a prediction poor where the tear is (bag_handheld 77 live:
    # ~18 dB on the torn top half, ~28 dB below) the fitted shifts jump from
    # line to line and the band ends worse than both raw and the prediction.
    rougher = damaged & (band_roughness(src, damaged, UNSHIFT_ROUGH_STEP)
                         > UNSHIFT_ROUGH_RATIO * band_roughness(raw, damaged, UNSHIFT_ROUGH_STEP))
    if rougher.any():
        keep = rougher & raw_matches_nearby(raw, pred, rougher, intact)
        h = raw.shape[0]
        back = band_repair.band_rows(keep, h)
        src[back] = raw[back]
        back = band_repair.band_rows(rougher & ~keep, h)
        src[back] = pred[back]
    return src


def raw_matches_nearby(raw: np.ndarray, pred: np.ndarray, which: np.ndarray,
                       intact: np.ndarray | None) -> np.ndarray:
    """Per band of ``which``: its raw - prediction difference D is at most
    KEEP_RATIO times the smaller D of the nearest intact band above and
    below it, i.e. the band check with the prediction's error measured next
    to the band instead of over the whole frame. Only for bands whose
    un-shift failed: the frame-wide median misjudges a prediction ~18 dB on
    one half and ~28 dB on the other, but as a general band check a local
    estimate lost up to 3.7 dB (docs/repair.md, round 4), and the smaller
    side is taken because the detector's intact bands next to a tear are
    sometimes torn (their D then overstates the prediction's error).
    False where no band is intact."""
    which = np.asarray(which, bool)
    out = np.zeros(which.size, bool)
    if intact is None or not np.any(intact):
        return out
    d = band_mse(line_mse(raw, pred), which.size)
    idx = np.nonzero(np.asarray(intact, bool))[0]
    for b in np.nonzero(which)[0].tolist():  # at most a few bands
        above, below = idx[idx < b], idx[idx > b]
        near = ([above[-1]] if above.size else []) + ([below[0]] if below.size else [])
        out[b] = d[b] <= KEEP_RATIO * float(d[near].min())
    return out


def refine(p: Plan, raw: np.ndarray, pred: np.ndarray, ref: np.ndarray | None = None) -> Plan:
    """A FULL plan with enough intact bands becomes a BAND plan when some of
    its bands' own pictures prove better than the prediction; else a
    mixable FULL plan becomes a MIX plan when the raw frame has a picture
    worth keeping (mix.py), or a KEEP plan when the prediction would get
    too little weight anywhere to be worth its risk
    (mix.KEEP_RAW_BELOW); otherwise ``p`` unchanged. (BAND plans are
    checked band by band in ``apply``.) ``ref``: the clean frame the
    prediction was made from, as captured (mix.scene_rows); None = judge
    the scene's detail by the prediction alone."""
    if p.kind != FULL or raw.shape != pred.shape:
        return p
    if p.intact is not None and np.count_nonzero(p.intact) >= MIN_INTACT:
        damaged = keep_better_bands(p, raw, pred)
        # Only the intact bands better raw: those are the few the prediction
        # was judged by, so that proves nothing; the frame stays whole.
        if not np.array_equal(damaged, p.damaged):
            return Plan(BAND, damaged, intact=p.intact, torn=p.torn, rough_check=p.rough_check)
    if p.mixable:
        w = mix.mix_weights(raw, pred, line_mse(raw, pred), ref=ref,
                            max_weight=mix.TORN_MAX_WEIGHT if p.torn else 1.0)
        if w is not None:
            if float(w.max()) < mix.KEEP_RAW_BELOW:
                return Plan(KEEP)
            return Plan(MIX, weights=w)
    return p


def apply(p: Plan, raw: np.ndarray, pred: np.ndarray, feather: int) -> np.ndarray:
    """The repaired picture for plan ``p`` (a new array unless FULL, which
    returns ``pred`` itself, or KEEP, which returns ``raw`` itself). Call
    ``refine`` first for FULL plans."""
    if p.kind == PIXELS:
        return clicks.repair_clicks(raw, pred)[0]
    if p.kind == FIELD:
        rows = band_repair.band_rows(p.damaged, raw.shape[0])
        return field_repair.repair_field(raw, p.field, pred, rows)
    if p.kind == BAND:
        damaged, err = _judge_bands(p, raw, pred)
        src = pred
        if p.torn and err is not None and err > UNSHIFT_MIN_ERR and damaged.any():
            src = unshift_torn_bands(raw, pred, damaged, p.intact)
        return band_repair.repair_bands(raw, src, damaged, feather)
    if p.kind == MIX:
        return mix.blend(raw, pred, p.weights)
    if p.kind == KEEP:
        return raw
    return pred
