"""Ground truth: the degraded output measured against the high-CNR reference.

Per output row, the mean absolute difference (over pixels and channels) and
the number of pixels that differ strongly (an FM click touches only a few
pixels of a line, so a mean alone would miss it). A row is damaged when
either is above what a viewer notices: thresholds were set by looking at
frames across a CNR sweep (see the module's tests): at 20+ dB nothing is
visible and no row passes; a single click streak does.

The kind is the dominant effect, in the order a falling CNR brings them:
no signal > roll > tear > colour_loss > snow > sparklies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rtclean.sim.breakup import BreakupLabel, label_from_lines

ROW_MEAN_DAMAGED = 14.0  # mean |diff| (0-255) over a row
CLICK_LEVEL = 60.0  # a pixel this far from the reference is a click
CLICKS_DAMAGED = 2  # pixels per row
SNOW_MEAN = 18.0  # rows this noisy all over are snow rather than isolated clicks
SHIFT_PX = 3.0  # a row displaced this far sideways is torn
NO_SIGNAL_KIND = {"static": "static", "blue": "blue", "black": "black", "freeze": "frozen"}


@dataclass(slots=True, eq=False)
class Measure:
    label: BreakupLabel
    line_damage: np.ndarray  # (height,) float32 in [0, 1]: row mean |diff| / 32, clipped
    line_damaged: np.ndarray  # (height,) bool
    line_shift: np.ndarray  # (height,) float32: sideways displacement against the reference (px)
    field_damage: tuple[float, float]  # damaged share of each field's rows


def measure(image: np.ndarray, reference: np.ndarray, line_shift: np.ndarray, rolled: bool,
            colour_killed: bool, no_signal: bool, profile: str) -> Measure:
    d = np.abs(image.astype(np.int16) - reference.astype(np.int16)).astype(np.float32).mean(2)
    row_mean = d.mean(1)
    clicks = (d > CLICK_LEVEL).sum(1)
    damaged = (row_mean > ROW_MEAN_DAMAGED) | (clicks >= CLICKS_DAMAGED)
    if no_signal:
        damaged[:] = True
    torn = damaged & (np.abs(line_shift) > SHIFT_PX)
    snowy = damaged & (row_mean > SNOW_MEAN)
    h = image.shape[0]
    nd = int(damaged.sum())
    kind: str | None = None
    if no_signal:
        kind = NO_SIGNAL_KIND[profile]
    elif nd:
        ref_sat = float(np.abs(reference.astype(np.int16)[..., 2] - reference[..., 0]).mean())
        if rolled:
            kind = "roll"
        elif torn.sum() >= 0.15 * h:
            kind = "tear"
        elif colour_killed and ref_sat > 8:
            kind = "colour_loss"
        elif snowy.sum() >= 0.1 * h or (clicks >= CLICKS_DAMAGED).mean() > 0.4:
            kind = "snow"
        else:
            kind = "sparklies"
    frac = nd / h
    sev = 1.0 if no_signal else float(np.clip(0.5 * frac + 0.5 * min(1.0, float(row_mean.mean()) / 30.0)
                                                + (0.3 if kind == "roll" else 0.0), 0, 1))
    if kind is None:
        sev = 0.0
    label = label_from_lines(kind, sev, damaged, no_signal=no_signal)
    fd = (float(damaged[0::2].mean()), float(damaged[1::2].mean()))
    return Measure(label, np.clip(row_mean / 32.0, 0, 1).astype(np.float32), damaged,
                   line_shift.astype(np.float32), fd)
