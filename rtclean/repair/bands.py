"""Band repair: replace only the damaged horizontal bands, with feathered seams.

The detector scores the picture in horizontal bands (16, top to bottom).
Breakup is line-structured and often local: a torn band, a burst of clicks
over a few lines. Replacing the whole frame with a prediction throws away
the real pixels of every intact band, and even a good prediction is worse
than real pixels. So only the damaged bands get the prediction, and the seam
to an intact band is a short linear cross-fade (``feather`` lines) placed on
the intact side: the damaged lines are always fully replaced, and no hard
edge shows where a predicted band meets a real one.
"""

from __future__ import annotations

import cv2
import numpy as np

from rtclean.errors import RtcleanError


def band_rows(damaged: np.ndarray, height: int) -> np.ndarray:
    """Bool mask over the picture's lines: the lines of the damaged bands."""
    damaged = np.asarray(damaged, bool)
    n = damaged.size
    if n == 0:
        raise RtcleanError("band repair needs at least one band")
    band_of_line = np.minimum(np.arange(height) * n // height, n - 1)
    return damaged[band_of_line]


def row_weights(rows: np.ndarray, feather: int) -> np.ndarray:
    """Per line weight of the prediction: 1 on damaged lines, falling
    linearly to 0 over ``feather`` lines into the intact neighbours."""
    rows = np.asarray(rows, bool)
    w = rows.astype(np.float32)
    if feather <= 0 or rows.all() or not rows.any():
        return w
    # Distance (in lines) from every line to the nearest damaged line.
    dist = cv2.distanceTransform((~rows).astype(np.uint8)[:, None], cv2.DIST_L1, 3).ravel()
    ramp = np.clip(1.0 - dist / (feather + 1.0), 0.0, 1.0).astype(np.float32)
    return np.maximum(w, ramp)


def blend_rows(raw: np.ndarray, pred: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """raw * (1 - w) + pred * w per line. Lines with w = 1 are copied, w = 0
    kept, and only the few seam lines are mixed."""
    if raw.shape != pred.shape:
        raise RtcleanError(f"band repair: prediction {pred.shape} does not match the frame {raw.shape}")
    out = raw.copy()
    full = weights >= 1.0
    out[full] = pred[full]
    seam = np.nonzero((weights > 0.0) & ~full)[0]
    if seam.size:
        a = weights[seam][:, None, None]
        mix = raw[seam].astype(np.float32) * (1.0 - a) + pred[seam].astype(np.float32) * a
        out[seam] = (mix + 0.5).astype(np.uint8)
    return out


def repair_bands(raw: np.ndarray, pred: np.ndarray, damaged: np.ndarray, feather: int) -> np.ndarray:
    """A copy of ``raw`` whose damaged bands come from ``pred``."""
    return blend_rows(raw, pred, row_weights(band_rows(damaged, raw.shape[0]), feather))
