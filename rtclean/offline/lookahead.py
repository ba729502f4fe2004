"""Look-ahead repair: fill a gap between two clean frames from both sides.

The causal (live) repair can only extrapolate from the past. With the frames
after a gap at hand, the broken frames are interpolated between the last clean
frame before and the first clean frame after (bidirectional flow), which is
what a DVR file deserves. Frames are held back only while a gap is open, and
never longer than ``max_gap_s`` (beyond that the causal decision - hold or
signal lost - stands, since interpolating across seconds invents motion).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from rtclean.frames import PASS, Processed

INTERP = "repair:interp"


class Lookahead:
    def __init__(self, interpolate: Callable[[np.ndarray, np.ndarray, float], np.ndarray],
                 max_gap_s: float) -> None:
        self._interpolate = interpolate
        self.max_gap_s = max_gap_s
        self._last_clean: Processed | None = None
        self._gap: list[Processed] = []

    def push(self, p: Processed) -> list[Processed]:
        """Take the next processed frame; return the frames now final, in order."""
        if p.action == PASS:
            out = self._close_gap(p) if self._gap else []
            self._last_clean = p
            return out + [p]
        if self._last_clean is None or p.decision.no_signal:
            # Nothing to interpolate from (or the receiver said no signal):
            # the causal decision is final.
            return self._flush_gap() + [p]
        self._gap.append(p)
        if p.frame.t - self._last_clean.frame.t > self.max_gap_s:
            return self._flush_gap()
        return []

    def flush(self) -> list[Processed]:
        """End of stream: gaps with no clean frame after them keep the causal repair."""
        return self._flush_gap()

    def _flush_gap(self) -> list[Processed]:
        out, self._gap = self._gap, []
        return out

    def _close_gap(self, after: Processed) -> list[Processed]:
        before = self._last_clean
        t0, t1 = before.frame.t, after.frame.t
        out = []
        for g in self._gap:
            alpha = (g.frame.t - t0) / (t1 - t0) if t1 > t0 else 0.5
            g.clean = self._interpolate(before.clean, after.clean, float(np.clip(alpha, 0.0, 1.0)))
            g.action = INTERP
            out.append(g)
        self._gap = []
        return out
