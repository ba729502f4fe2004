"""Optical flow at low resolution, applied at full resolution.

DIS optical flow (ULTRAFAST preset) costs ~0.3 ms at 180x144 but ~7 ms at
720x576 (DESIGN.md), so flow is always estimated on a small grey copy and
only the final ``cv2.remap`` runs at full size. The flow of a camera pan or a
moving object is smooth, so upscaling a coarse field loses little; the fine
texture comes from the full-resolution source picture being warped.

Conventions: ``flow(a, b)`` is defined on a's pixel grid and points into b:
``a(x) ~= b(x + flow(x))``. ``warp(img, flow, s)`` is a backward warp,
``out(x) = img(x + s * flow(x))``. So ``warp(last, flow(last, prev), s)``
moves ``last`` *s* frame intervals further along the motion from prev to
last: the constant-velocity extrapolation the repairer needs.
"""

from __future__ import annotations

import cv2
import numpy as np

from rtclean.errors import RtcleanError


# Forward-backward inconsistency (small-image pixels) is turned into a blend
# confidence exp(-inc^2 / (2 * 5^2)). Measured on tennis/bag/foliage/cup at
# alpha 0.5: a strict sigma (1 px) cost up to 0.3 dB, sigma 5 matches plain
# time weighting on those clips while still handing disoccluded areas (a
# pixel of a that is not in b, inconsistency >> 5 px) to the other frame.
_INC_K = 1.0 / (2 * 5.0 ** 2)
# Mean absolute grey error (0..255, at flow resolution) above which a flow
# does not explain the pair it was computed from: a scene cut or garbage.
# Measured: ordinary motion on the real clips stays <= 16 (p99 <= 9.4), the
# five hard cuts in bikes_cuts give 46..76.
RESIDUAL_MAX = 24.0


class FlowEstimator:
    """Low-resolution DIS flow plus full-resolution warping and blending."""

    def __init__(self, width: int) -> None:
        if width < 16:
            raise RtcleanError(f"flow width must be at least 16 px, got {width}")
        self.width = int(width)
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        # Base sampling grids (x, y per pixel), built once per image size:
        # a new one per warp would cost about as much as the remap itself.
        self._grids: dict[tuple[int, int], np.ndarray] = {}
        # Flows of the last interpolated pair: a gap of n frames between the
        # same two clean frames needs them n times (keyed on the arrays).
        self._pair: tuple[np.ndarray, np.ndarray, tuple] | None = None

    # ------------------------------------------------------------------ basics

    def small_size(self, w: int, h: int) -> tuple[int, int]:
        """(width, height) of the low-resolution copy of a w x h picture."""
        sw = min(self.width, w)
        return sw, max(8, round(h * sw / w))

    def small(self, image: np.ndarray) -> np.ndarray:
        """Grey low-resolution copy (uint8) used for flow and residuals."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise RtcleanError(f"expected an HxWx3 uint8 BGR image, got shape {image.shape} {image.dtype}")
        h, w = image.shape[:2]
        sw, sh = self.small_size(w, h)
        # Grey first, shrink second: measured 0.24 ms vs 0.44 ms the other
        # way round at 720x576 (the area filter on one channel is the cost).
        # INTER_AREA averages, which also suppresses sparkle noise.
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        return cv2.resize(grey, (sw, sh), interpolation=cv2.INTER_AREA)

    def flow(self, a_small: np.ndarray, b_small: np.ndarray) -> np.ndarray:
        """HxWx2 float32 flow on a's grid pointing into b (low resolution)."""
        if a_small.shape != b_small.shape:
            raise RtcleanError(f"flow needs two pictures of one size, got {a_small.shape} and {b_small.shape}")
        return self._dis.calc(a_small, b_small, None)

    def _grid(self, w: int, h: int) -> np.ndarray:
        g = self._grids.get((w, h))
        if g is None:
            xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
            g = np.dstack([xs, ys])
            self._grids[(w, h)] = g
        return g

    def _full_map(self, flow_small: np.ndarray, w: int, h: int, scale: float) -> np.ndarray:
        """Absolute sampling map at full size for ``x + scale * flow(x)``."""
        fh, fw = flow_small.shape[:2]
        # Scale the small field (cheap) rather than the full one: flow values
        # are in small-image pixels, so they grow by the size ratio too.
        k = np.array([scale * w / fw, scale * h / fh], dtype=np.float32)
        big = cv2.resize(flow_small * k, (w, h), interpolation=cv2.INTER_LINEAR)
        return cv2.add(big, self._grid(w, h), dst=big)

    def warp(self, image_full: np.ndarray, flow_small: np.ndarray, scale: float) -> np.ndarray:
        """Backward-warp ``image_full`` by the upscaled flow times ``scale``.

        Returns a new array; the border is replicated so pixels pulled in
        from outside the picture repeat the edge instead of turning black.
        """
        h, w = image_full.shape[:2]
        m = self._full_map(flow_small, w, h, scale)
        return cv2.remap(image_full, m, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def residual(self, a_small: np.ndarray, b_small: np.ndarray, flow: np.ndarray) -> float:
        """Mean absolute grey error (0..255) between a and b warped onto a.

        Small when the flow explains b (pan, moving objects); large when it
        cannot (scene cut, picture garbage), which is when extrapolating
        would smear instead of predict.
        """
        h, w = a_small.shape[:2]
        m = cv2.add(flow, self._grid(w, h))
        back = cv2.remap(b_small, m, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return float(cv2.norm(a_small, back, cv2.NORM_L1)) / a_small.size

    # ------------------------------------------------------------ interpolation

    def _pair_flows(self, a_full: np.ndarray, b_full: np.ndarray) -> tuple:
        """(small a, small b, flow a->b, flow b->a, is_cut), cached per pair."""
        hit = self._pair
        if hit is not None and hit[0] is a_full and hit[1] is b_full:
            return hit[2]
        sa, sb = self.small(a_full), self.small(b_full)
        f_ab = self.flow(sa, sb)
        f_ba = self.flow(sb, sa)
        cut = min(self.residual(sa, sb, f_ab), self.residual(sb, sa, f_ba)) > RESIDUAL_MAX
        out = (sa, sb, f_ab, f_ba, cut)
        self._pair = (a_full, b_full, out)
        return out

    def is_cut(self, a_full: np.ndarray, b_full: np.ndarray) -> bool:
        """True when no flow explains b from a (scene cut, or garbage)."""
        return self._pair_flows(a_full, b_full)[4]

    def interpolate(self, a_full: np.ndarray, b_full: np.ndarray, alpha: float) -> np.ndarray:
        """The picture at time ``alpha`` (0 = a, 1 = b) between two clean frames.

        Flows a->b and b->a give two estimates of the flow from time alpha
        back to each frame (the quadratic combination of both directions
        keeps the estimate right near either end); each frame is warped to
        time alpha and the two are blended, weighted by temporal closeness
        and by forward-backward consistency, so a pixel that is occluded in
        one frame comes from the other one.
        """
        if a_full.shape != b_full.shape:
            raise RtcleanError(f"interpolate needs two pictures of one size, got {a_full.shape} and {b_full.shape}")
        if not 0.0 <= alpha <= 1.0:
            raise RtcleanError(f"interpolate alpha must be in [0, 1], got {alpha}")
        sa, sb, f_ab, f_ba, cut = self._pair_flows(a_full, b_full)
        t = float(alpha)
        if cut:
            # No motion links the two pictures (scene cut): a cross-fade or a
            # warp would smear both scenes; show the nearer one instead.
            return (a_full if t < 0.5 else b_full).copy()
        f_ta = -(1 - t) * t * f_ab + t * t * f_ba
        f_tb = (1 - t) * (1 - t) * f_ab - t * (1 - t) * f_ba

        # Forward-backward inconsistency on each frame's own grid (small res):
        # |f_ab(x) + f_ba(x + f_ab(x))| is ~0 where a's pixel is visible in b.
        sh, sw = sa.shape
        grid = self._grid(sw, sh)
        inc_a = np.linalg.norm(f_ab + cv2.remap(f_ba, grid + f_ab, None, cv2.INTER_LINEAR,
                                                borderMode=cv2.BORDER_REPLICATE), axis=2)
        inc_b = np.linalg.norm(f_ba + cv2.remap(f_ab, grid + f_ba, None, cv2.INTER_LINEAR,
                                                borderMode=cv2.BORDER_REPLICATE), axis=2)
        # Carry each confidence to time alpha along the same flow as its picture.
        conf_a = cv2.remap(np.exp(-inc_a * inc_a * _INC_K).astype(np.float32), grid + f_ta, None,
                           cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        conf_b = cv2.remap(np.exp(-inc_b * inc_b * _INC_K).astype(np.float32), grid + f_tb, None,
                           cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        wa = (1 - t) * conf_a + 1e-3 * (1 - t)
        wb = t * conf_b + 1e-3 * t
        wa_n = (wa / (wa + wb)).astype(np.float32)

        h, w = a_full.shape[:2]
        warped_a = self.warp(a_full, f_ta, 1.0)
        warped_b = self.warp(b_full, f_tb, 1.0)
        weight_a = cv2.resize(wa_n, (w, h), interpolation=cv2.INTER_LINEAR)
        # blendLinear mixes the uint8 pictures with per-pixel float weights in
        # one pass: no full-size float copies of the pictures.
        return cv2.blendLinear(warped_a, warped_b, weight_a, 1.0 - weight_a)
