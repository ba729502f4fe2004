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
   the prediction, with feathered seams (bands.py);
3. full: the damage is everywhere, or the detector cannot say where ->
   the whole prediction.

Before pixels or bands are replaced, the prediction is checked against the
frame's own intact picture (``apply``): many broken frames are only lightly
damaged (a few sparkly lines, one torn band), and a prediction that is itself
poor (fast or jerky motion, a long gap, a scene change the flow missed)
would make them worse. Over the intact bands, raw ~ truth, so the mean
squared difference raw - prediction there estimates the prediction's own
error E. In a suspect band, the difference D is raw error + prediction error
(independent), so the raw band is the better picture when D < 2 E: such a
band is kept. Click pixels are replaced only where they stand out of the
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
from rtclean.repair.scratch import buffer

PIXELS = "pixels"
FIELD = "field"
BAND = "band"
FULL = "full"

# A field whose score is below this share of the band threshold counts as
# clean: field repair trusts its pixels completely, so the bar is higher
# than for "not broken enough to replace".
CLEAN_FIELD_SHARE = 0.5
# Detector features (ClassicalDetector) that say "something besides clicks":
# above these, pixel repair is not enough.
_NOT_CLICKS = {"noise_excess": 4.5, "tear": 0.3, "colour_loss": 0.0, "roll": 0.0}
# Damaged bands grow by one band on each side: breakup does not end on the
# detector's band edges, and a leftover torn line next to a repaired band is
# more visible than a few predicted lines of an intact one.
GROW = 1
# A suspect band is replaced only when its raw - prediction difference (MSE)
# is above this multiple of the prediction's error measured on intact bands:
# 2 = where the raw band's own error would exceed the prediction's.
KEEP_RATIO = 2.0
# Intact bands needed to measure the prediction's error; fewer and the
# check is skipped (the detector's bands are trusted as they are).
MIN_INTACT = 3


@dataclass(frozen=True, slots=True)
class Plan:
    kind: str  # PIXELS, FIELD, BAND or FULL
    damaged: np.ndarray | None = None  # bool per band (FIELD and BAND)
    field: int | None = None  # damaged field (FIELD): 0 even lines, 1 odd lines
    intact: np.ndarray | None = None  # bool per band: clearly undamaged (BAND)


def plan(result: DetectResult, band_threshold: float, band_max_share: float) -> Plan:
    """What to replace in a frame the decision called broken."""
    feats = result.features
    if feats and all(k in feats for k in _NOT_CLICKS) and feats.get("clicks", 0.0) > 0 \
            and all(feats[k] <= v for k, v in _NOT_CLICKS.items()):
        return Plan(PIXELS)
    bands = result.bands
    if bands is None or len(bands) == 0:
        return Plan(FULL)
    hot = np.asarray(bands, np.float32) >= band_threshold
    if not hot.any():
        # Broken by the decision (hysteresis, a whole-frame cue) but no band
        # says where: only a whole-frame prediction is safe. (Keeping the
        # bands that match the prediction here was tried: on the 11 clips it
        # cost 1.3 dB offline - light damage spread thinly over every band.)
        return Plan(FULL)
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
        return Plan(FULL, ~intact, intact=intact)
    return Plan(BAND, grown, intact=intact)


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
    damaged = np.asarray(p.damaged, bool)
    if p.intact is None or np.count_nonzero(p.intact) < MIN_INTACT:
        return damaged
    mse = band_mse(line_mse(raw, pred), damaged.size)
    err = float(np.median(mse[p.intact]))
    return damaged & (mse > KEEP_RATIO * err)


def refine(p: Plan, raw: np.ndarray, pred: np.ndarray) -> Plan:
    """A FULL plan with enough intact bands becomes a BAND plan when some of
    its bands' own pictures prove better than the prediction; otherwise
    ``p`` unchanged. (BAND plans are checked band by band in ``apply``.)"""
    if p.kind != FULL or p.intact is None or np.count_nonzero(p.intact) < MIN_INTACT \
            or raw.shape != pred.shape:
        return p
    damaged = keep_better_bands(p, raw, pred)
    if np.array_equal(damaged, p.damaged):
        # Only the intact bands are better raw: those are the few the
        # prediction was judged by; a widespread-damage frame stays whole.
        return p
    return Plan(BAND, damaged)


def apply(p: Plan, raw: np.ndarray, pred: np.ndarray, feather: int) -> np.ndarray:
    """The repaired picture for plan ``p`` (a new array unless FULL, which
    returns ``pred`` itself). Call ``refine`` first for FULL plans."""
    if p.kind == PIXELS:
        return clicks.repair_clicks(raw, pred)[0]
    if p.kind == FIELD:
        rows = band_repair.band_rows(p.damaged, raw.shape[0])
        return field_repair.repair_field(raw, p.field, pred, rows)
    if p.kind == BAND:
        return band_repair.repair_bands(raw, pred, keep_better_bands(p, raw, pred), feather)
    return pred
