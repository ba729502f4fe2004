"""`rtclean clean --fps F`: frame-rate conversion of the cleaned stream.

Output frames fall on a regular grid of 1/F seconds starting at the first
frame. Each one is interpolated between the two cleaned frames around its
time with the project's bidirectional flow (``FlowEstimator.interpolate``),
so a 25 fps DVR file becomes smooth 60 fps video instead of a 2-3 pull-down
judder. A grid time that coincides with a source frame takes that frame
as is. The last frame is held for its own duration, so the output lasts as
long as the input (and the sound track still fits).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Interpolate = Callable[[np.ndarray, np.ndarray, float], np.ndarray]

# Grid times within this fraction of a frame interval of a source frame take
# that frame: interpolating at alpha 0.001 costs a flow pair and changes nothing.
_SNAP = 1e-3


class FrameRateConverter:
    def __init__(self, interpolate: Interpolate, out_fps: float) -> None:
        if not out_fps > 0:
            raise ValueError(f"output frame rate must be positive, got {out_fps}")
        self._interpolate = interpolate
        self.out_fps = float(out_fps)
        self._prev: tuple[np.ndarray, float] | None = None
        self._t_first: float | None = None
        self._k = 0  # next output frame number
        self.interpolated = 0  # output frames that are not a source frame

    def _t(self, k: int) -> float:
        return self._t_first + k / self.out_fps

    def push(self, image: np.ndarray, t: float) -> list[tuple[np.ndarray, float]]:
        """A cleaned frame at media time ``t`` (seconds, rising); returns the
        output frames (picture, media time) now complete."""
        if self._prev is None:
            self._prev, self._t_first = (image, t), t
            return []
        a, ta = self._prev
        out = []
        span = t - ta
        while span > 0 and self._t(self._k) < t - _SNAP * span:
            alpha = (self._t(self._k) - ta) / span
            if alpha <= _SNAP:
                out.append((a, self._t(self._k)))
            else:
                out.append((self._interpolate(a, image, float(alpha)), self._t(self._k)))
                self.interpolated += 1
            self._k += 1
        self._prev = (image, t)
        return out

    def flush(self, frame_period: float) -> list[tuple[np.ndarray, float]]:
        """End of stream: hold the last frame until it has lasted
        ``frame_period`` (one source frame interval)."""
        if self._prev is None:
            return []
        image, t = self._prev
        end = t + frame_period
        out = []
        while self._t(self._k) < end - _SNAP * frame_period:
            out.append((image, self._t(self._k)))
            self._k += 1
        return out
