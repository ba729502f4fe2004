"""Mix a noisy broken frame with its prediction, weighted by their own errors.

Snow (thermal noise at low signal) leaves the picture under it intact: the
raw frame is truth + noise, and the noise is independent from line to line
(each line is a different moment of the FM signal) while the picture is
smooth vertically. So the vertical second difference of the raw frame,
(L-1) - 2 L + (L+1), measures the noise: its mean square is 6 x the noise
variance, and real picture adds little (measured on the 11 clips at
720x576: 0-9 grey levels squared on the clean truth, against 650-6,500 for
snow, and within 15 % of the true raw error of every snow frame).

With that raw error R and the difference D = MSE(raw - prediction) = R + E
(independent errors add), the prediction's own error is E = D - R, and the
best linear mix of the two pictures takes the prediction with weight
R / (R + E) = R / D. A good prediction (E << R) is then used almost whole;
a stale one (a scene change inside the gap: E >> R) gives way to the noisy
but right raw frame; in between the mix is better than either (temporal
denoising). Weights are per band (the noise and the prediction's quality
vary down the picture), interpolated between band centres so no seam shows.

Only for damage that is noise on top of the picture: the caller rules out
roll, colour loss and tearing (there the raw error is a displacement or lost
chroma, which the vertical difference does not see). Pictures that are all
noise (receiver static) or empty (blue/black screen) have no picture under
the noise to keep: ``raw_has_picture`` refuses those.
"""

from __future__ import annotations

import cv2
import numpy as np

from rtclean.repair.scratch import buffer

# Below this raw share (1 - prediction weight) on every line the mix is not
# worth it: the prediction is used whole.
MIN_RAW_SHARE = 0.05
# Cap on the prediction's weight in a frame the detector calls torn (with
# no band damaged enough to localise: localise._mixable). A tear's error is
# a sideways displacement, not noise: its roughness overstates it (tennis
# 9, the torn bands: 1,122 / 288 / 184 against a true error of 879 / 243 /
# 103) and it is correlated with the prediction's (both err at the edges
# that move: offline, 558 of the 879), so R / D overshoots (0.99 where the
# best weight was 0.31). At 0.5 the mix is the two pictures' average,
# which can only lose to raw when E + 2 cov > 3 R.
TORN_MAX_WEIGHT = 0.5
# When the prediction's weight stays below this on every line, the raw
# frame is kept whole (localise.KEEP). The prediction is then at least 4x
# worse than the raw damage everywhere (typically a scene change inside
# the gap: bikes_cuts 48, prediction 7.7 dB against raw 18.8 dB), and
# the mix could gain at most -10 log10(1 - w) = 1 dB even if the two
# errors were independent. They are not there: clipped snow follows the
# scene's brightness, so R / D overshoots and the mix lost 0.14 dB to raw.
# Measured on the eval's 262 frames: 0.13 is the least that fixes that
# frame; 0.2 costs seven others 0.01-0.32 dB (the small gains they lose);
# 0.3 costs foliage 9 1.9 dB.
KEEP_RAW_BELOW = 0.2
# The raw frame has a picture under its noise when its variance exceeds the
# noise's by this factor (static: ~1; snow over real content: 1.5-30).
PICTURE_RATIO = 1.5


# Noise is measured on every SAMPLE_STEP-th line (it is the same statistic
# everywhere in a band; a quarter of the lines costs a quarter of the time).
SAMPLE_STEP = 4
# The blend applies the per-line weights in blocks of this many lines (see blend).
BLEND_LINES = 8


def noise_rows(raw: np.ndarray, step: int = SAMPLE_STEP) -> tuple[np.ndarray, np.ndarray]:
    """(line numbers, noise variance estimate on each): the vertical second
    difference ((L-1) - 2L + (L+1))^2 / 6, mean over pixels and channels,
    on every ``step``-th line.

    Computed as |L - round((L-1 + L+1) / 2)|, all uint8: (2L - up - dn)^2 =
    4 (L - mean)^2, so the figure is 4/6 of its mean square. Mixed-type
    OpenCV arithmetic (uint8 in, int16 out) is not vectorised and cost 4x
    as much; the rounding adds < 0.1 grey levels squared, and the same to
    the prediction's figure that is taken off."""
    h = raw.shape[0]
    if h < 3:
        return np.zeros(1, np.int64), np.zeros(1, np.float32)
    mid = raw[1:h - 1:step]
    n = mid.shape[0]
    width = mid[0].size
    up = raw[0:h - 2:step][:n].reshape(n, width)  # row-strided views: no copies
    dn = raw[2:h:step][:n].reshape(n, width)
    a = cv2.addWeighted(up, 0.5, dn, 0.5, 0.0, dst=buffer("mix_mean", (n, width)))
    cv2.absdiff(a, mid.reshape(n, width), dst=a)
    sq = cv2.reduce(a, 1, cv2.REDUCE_SUM2, dtype=cv2.CV_32F).ravel()
    return np.arange(1, h - 1, step)[:n], sq * (4.0 / (6.0 * width))


def scene_rows(pred: np.ndarray, ref: np.ndarray | None) -> np.ndarray:
    """The picture's own vertical detail on noise_rows' lines, to take off
    the raw frame's figure (it is in there too, and matters on lightly
    damaged frames, where the noise is small and the detail is not).

    The prediction has the scene's detail and no noise, but it was
    resampled (bilinear warp, or a blend of two warps offline), which
    smooths it: on the eval's mixed frames its figure was 10-50 % below the
    truth's on moving scenes (walk_pan 30: 12.9 against 17.0 live, 9.5
    offline), so the noise of a 42.5 dB raw frame came out at 3x its true
    error and the mix took too much of a 22-25 dB prediction. A clean
    frame as captured was not resampled (walk_pan: 16.0). Per line the
    larger of the two figures is taken: the reference was not resampled,
    the prediction is at the right place (the two agree on a still scene;
    resampling only lowers the prediction's)."""
    rp = noise_rows(pred)[1]
    if ref is None or ref.shape != pred.shape:
        return rp
    return np.maximum(rp, noise_rows(ref)[1])


def raw_has_picture(raw: np.ndarray, noise: float) -> bool:
    """True when the raw frame's variance is clearly more than its noise:
    there is a picture under the noise (not static, not a flat screen)."""
    _, sd = cv2.meanStdDev(raw[::SAMPLE_STEP])  # a quarter of the lines is plenty
    var = float(np.mean(sd.ravel() ** 2))
    return var > PICTURE_RATIO * noise and var > 25.0


def mix_weights(raw: np.ndarray, pred: np.ndarray, d_lines: np.ndarray,
                n_bands: int = 16, ref: np.ndarray | None = None,
                max_weight: float = 1.0) -> np.ndarray | None:
    """Per line weight of the prediction (1 = prediction, 0 = raw), or None
    when the raw frame has no picture to keep or would contribute too
    little to matter. ``d_lines``: per line MSE raw - prediction
    (localise.line_mse). ``ref``: a clean frame as captured (the one the
    prediction was made from), the scene's detail before resampling.
    ``max_weight``: cap on the prediction's weight (TORN_MAX_WEIGHT for a
    torn frame)."""
    h = raw.shape[0]
    rows, r = noise_rows(raw)
    if not raw_has_picture(raw, float(r.mean())):
        return None
    r = np.maximum(r - scene_rows(pred, ref), 0.0)
    n = max(1, min(n_bands, h))
    band = np.minimum(np.arange(h) * n // h, n - 1)
    count = np.bincount(band, None, n)
    rband = band[rows]
    rb = np.bincount(rband, r, n) / np.maximum(np.bincount(rband, None, n), 1)
    db = np.bincount(band, d_lines, n) / count
    wb = np.clip(rb / np.maximum(db, 1e-6), 0.0, max_weight)
    centres = (np.bincount(band, np.arange(h), n) / count)
    w = np.interp(np.arange(h), centres, wb).astype(np.float32)
    if float((1.0 - w).max()) < MIN_RAW_SHARE:
        return None
    return w


def blend(raw: np.ndarray, pred: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """A new picture: raw * (1 - w) + pred * w, ``w`` per line, applied in
    blocks of BLEND_LINES lines (weight of the block's middle line).

    The weights vary slowly (interpolated between band centres 36 lines
    apart at 576 lines), so 8-line steps are below a grey level's worth of
    mixing difference in most frames, and a fixed 72 addWeighted calls cost
    0.3 ms against 1.4 ms for OpenCV's per-pixel-weight blendLinear (two
    float weight maps to fill, then a scalar loop)."""
    h = raw.shape[0]
    out = np.empty_like(raw)
    starts = np.arange(0, h, BLEND_LINES)
    wb = np.asarray(weights, np.float64)[np.minimum(starts + BLEND_LINES // 2, h - 1)]
    for a, wv in zip(starts.tolist(), wb.tolist()):
        b = a + BLEND_LINES
        cv2.addWeighted(raw[a:b], 1.0 - wv, pred[a:b], wv, 0.0, dst=out[a:b])
    return out
