"""Pixel repair of FM clicks ("sparklies"): replace only the streak pixels.

A frame with a few dozen clicks is mostly real picture: a click is a short
bright (or dark) streak on one line, so replacing even one band of it throws
away far more real pixels than the damage covers. Here the streak pixels are
found at full resolution (a pixel standing out above or below both its
same-field neighbours, lines L-2 and L+2, and both other-field neighbours,
L-1 and L+1, by more than ``LEVEL``: scene detail is at least two lines tall,
a click is one) and grown along the line to cover the fading tail; only those
pixels come from the prediction.
"""

from __future__ import annotations

import cv2
import numpy as np

from rtclean.repair.scratch import buffer

LEVEL = 40  # grey levels a click pixel stands out of all four neighbour lines
# Tails fade over up to ~20 px at 720 wide; clicks are one line tall.
_GROW = cv2.getStructuringElement(cv2.MORPH_RECT, (15, 1))
# A mask pixel is replaced where it differs from the prediction by more than
# this many times the prediction's RMS error outside the clicks, and never
# for less than PRED_MIN grey levels. Measured on foliage with a prediction
# of another scene: 1.5 keeps the repair 1.2 dB above replacing the whole
# mask; with a good prediction it costs < 0.1 dB against the whole mask
# (2.5 cost 1 dB there).
PRED_SIGMAS = 1.5
PRED_MIN = 16
# The lines-next-door estimate replaces the prediction only when its error
# outside the clicks is this many times smaller: outside the mask it is
# judged on pixels that by construction match their neighbour lines, while
# the mask also catches thin horizontal picture detail, which the vertical
# mean erases and a prediction keeps (sharp CCTV footage: 2.5-5 dB lost at
# a ratio of 1.7-2).
SPATIAL_MARGIN = 2.5


def _peaks(a: np.ndarray, up: np.ndarray, dn: np.ndarray) -> np.ndarray:
    pos = cv2.min(cv2.subtract(a, up), cv2.subtract(a, dn))
    neg = cv2.min(cv2.subtract(up, a), cv2.subtract(dn, a))
    return cv2.max(pos, neg)


def click_mask(image: np.ndarray) -> np.ndarray:
    """uint8 mask (255 = click pixel, tails included) at full resolution."""
    g = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    h = g.shape[0]
    mask = np.zeros_like(g)
    if h < 5:
        return mask
    mid = g[2:-2]
    stand = cv2.min(_peaks(mid, g[:-4], g[4:]), _peaks(mid, g[1:-3], g[3:-1]))
    mask[2:-2] = cv2.compare(stand, LEVEL, cv2.CMP_GT)
    return cv2.dilate(mask, _GROW)


def repair_clicks(raw: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, float]:
    """(copy of ``raw`` with its click pixels from ``pred``, share of pixels replaced).

    Only mask pixels that differ from the prediction by more than the
    prediction's own error explains are replaced: outside the clicks, raw ~
    truth, so the RMS grey difference raw - prediction there is that error.
    A poor prediction (fast motion, a long gap) then replaces only the click
    cores, which stand far out of any plausible picture, and keeps the
    fading tails, which are closer to the truth than the prediction is.
    """
    m = click_mask(raw)
    outside = cv2.bitwise_not(m, dst=buffer("click_outside", m.shape))
    n_out = max(cv2.countNonZero(outside), 1)
    # Two candidate sources for the click pixels, each judged by how well it
    # reproduces the raw picture outside the clicks (raw ~ truth there):
    # the prediction, and the mean of the lines above and below (a click is
    # one line tall, so its neighbours in the other field are intact). A
    # stale prediction (a scene change inside a long gap) loses to the
    # lines next door.
    src = pred
    d, rms = _grey_diff(raw, pred, outside, n_out, "click_diff")
    if raw.shape[0] >= 3:
        spatial = vertical_mean(raw)
        ds, rms_s = _grey_diff(raw, spatial, outside, n_out, "click_sdiff")
        if SPATIAL_MARGIN * rms_s < rms:
            src, d, rms = spatial, ds, rms_s
    cv2.bitwise_and(m, cv2.compare(d, max(PRED_MIN, PRED_SIGMAS * rms), cv2.CMP_GT, dst=outside), dst=m)
    out = raw.copy()
    cv2.copyTo(src, m, out)
    return out, cv2.countNonZero(m) / m.size


def vertical_mean(raw: np.ndarray) -> np.ndarray:
    """Each line replaced by the mean of the lines above and below (edge
    lines by their one neighbour); a reused buffer."""
    out = buffer("click_vmean", raw.shape)
    cv2.addWeighted(raw[:-2], 0.5, raw[2:], 0.5, 0.0, dst=out[1:-1])
    out[0], out[-1] = raw[1], raw[-2]
    return out


def _grey_diff(raw: np.ndarray, other: np.ndarray, outside: np.ndarray, n_out: int,
               name: str) -> tuple[np.ndarray, float]:
    """(grey |raw - other|, its RMS outside the click mask)."""
    d = cv2.cvtColor(cv2.absdiff(raw, other, dst=buffer(name, raw.shape)), cv2.COLOR_BGR2GRAY,
                     dst=buffer(name + "_grey", raw.shape[:2]))
    return d, float(cv2.norm(d, cv2.NORM_L2, outside)) / n_out ** 0.5
