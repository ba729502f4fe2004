"""Un-shift torn bands: the least invented repair for tearing.

A sync error (tearing) does not destroy a line's picture: the line starts
late or early, so its raw pixels are the true ones moved sideways, by a
shift that jumps at the tear and then drifts back (jitter plus the sync
PLL's exponential pull). Replacing such a band with the prediction throws
the real picture away; moving each line back keeps it, and only the few
pixels pushed out of the picture (and the blanking smear at the edge) need
the prediction.

The shift of each line is found against the prediction (the best guess of
where the picture should be): horizontal gradients of the grey lines (so
brightness and the dark blanking edge do not pull the match), at half
width, correlated for every lag at once with an FFT, the correlation
summed with the same field's neighbour lines (a tear can hit one field
only, and the shift of adjacent lines of a field is close), the peak
refined to sub-pixel. Whether the un-shifted band is then used is the
caller's decision (localise.unshift_torn_bands: only when the prediction
is poor, and a band the un-shift leaves rougher vertically than its raw
lines falls back to raw or the prediction).
"""

from __future__ import annotations

import cv2
import numpy as np

# Largest shift searched, as a share of the width (sync tears seen on the
# simulator and real receivers stay well under a fifth of the line).
MAX_SHIFT = 0.2
# Same-field neighbour lines whose correlation is added to a line's (two
# above, two below, at one line of the other field in between).
_SMOOTH = np.array([1.0, 0.0, 2.0, 0.0, 1.0], np.float32).reshape(5, 1) / 4.0
# Lines moved by less than this (pixels) are left as they are: resampling
# a line that was not torn only blurs it.
MIN_SHIFT = 1.0
# Columns at each side of an un-shifted line taken from the prediction:
# the blanking smear next to where the torn line started.
EDGE = 4


def line_shifts(raw: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Per line of ``raw`` (n lines, BGR uint8), the sideways shift in pixels
    s such that raw[x + s] ~ ref[x] (float32, full-width pixels)."""
    n, w = raw.shape[:2]
    half = max(w // 2, 2)

    def grad(img: np.ndarray) -> np.ndarray:
        g = cv2.resize(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), (half, n), interpolation=cv2.INTER_AREA)
        return np.diff(g.astype(np.float32), axis=1)

    a, b = grad(raw), grad(ref)
    m = max(1, int(MAX_SHIFT * half))
    nfft = 1 << int(np.ceil(np.log2(a.shape[1] + m + 1)))
    corr = np.fft.irfft(np.fft.rfft(a, nfft) * np.conj(np.fft.rfft(b, nfft)), nfft)
    # lags -m..m: corr[k] = sum_x a[x + k] b[x] (negative lags wrap to the end)
    lags = np.ascontiguousarray(np.concatenate([corr[:, nfft - m:], corr[:, :m + 1]], axis=1), np.float32)
    if n >= 5:
        lags = cv2.filter2D(lags, -1, _SMOOTH, borderType=cv2.BORDER_REFLECT)
    k = np.argmax(lags, axis=1)
    rows = np.arange(n)
    # parabola through the peak and its two neighbours
    kc = np.clip(k, 1, 2 * m - 1)
    y0, y1, y2 = lags[rows, kc - 1], lags[rows, kc], lags[rows, kc + 1]
    den = y0 - 2.0 * y1 + y2
    frac = np.where((k == kc) & (den < 0), 0.5 * (y0 - y2) / np.where(den < 0, den, -1.0), 0.0)
    return ((k - m + np.clip(frac, -0.5, 0.5)) * (w / half)).astype(np.float32)


def unshift(raw: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """``raw`` lines (n, w, 3) moved back by their estimated shifts; pixels
    whose source falls outside the line (or within EDGE of its ends) come
    from ``pred``. A new array."""
    n, w = raw.shape[:2]
    s = line_shifts(raw, pred)
    s[np.abs(s) < MIN_SHIFT] = 0.0
    xs = np.arange(w, dtype=np.float32)
    map_x = xs[None, :] + s[:, None]
    map_y = np.repeat(np.arange(n, dtype=np.float32)[:, None], w, 1)
    out = cv2.remap(raw, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    # unshifted lines keep their pixels; shifted ones lose what came from
    # beyond the line or from its blanking edges
    lost = (s[:, None] != 0.0) & ((map_x < EDGE) | (map_x > w - 1 - EDGE))
    out[lost] = pred[lost]
    return out
