"""A ring buffer of per-frame breakup scores for the page's timeline.

The processing thread appends one entry per frame (three array stores, no
allocation); the server reads a binned summary on request. Binning happens
at read time with numpy, so the per-frame cost does not depend on how the
page draws it, and the page gets a few hundred numbers instead of every
frame of the last minutes.
"""

from __future__ import annotations

import math
import threading

import numpy as np

# Entries kept: enough for the configured span at 60 frames/s (NTSC fields
# delivered as frames are the fastest analog source).
MAX_FPS = 60
BREAKUP, REPLACED, NO_SIGNAL = 1, 2, 4  # flag bits


class Timeline:
    def __init__(self, span_s: float) -> None:
        self.span_s = float(span_s)
        n = int(math.ceil(self.span_s * MAX_FPS))
        self._t = np.zeros(n, np.float64)
        self._score = np.zeros(n, np.float32)
        self._flags = np.zeros(n, np.uint8)
        self._n = 0
        # Held only for the three stores or one copy: a reader never sees a
        # half-written entry, and the writer never waits on binning.
        self._lock = threading.Lock()

    def add(self, t: float, score: float, breakup: bool, replaced: bool, no_signal: bool) -> None:
        flags = (BREAKUP if breakup else 0) | (REPLACED if replaced else 0) | (NO_SIGNAL if no_signal else 0)
        with self._lock:
            i = self._n % len(self._t)
            self._t[i] = t
            self._score[i] = score
            self._flags[i] = flags
            self._n += 1

    def __len__(self) -> int:
        return min(self._n, len(self._t))

    def _snapshot(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with self._lock:
            n = min(self._n, len(self._t))
            return self._t[:n].copy(), self._score[:n].copy(), self._flags[:n].copy()

    def binned(self, now: float, seconds: float, bins: int) -> dict:
        """The last ``seconds`` before ``now`` in ``bins`` equal bins, oldest first.

        Per bin: the highest score (a one-frame burst must stay visible when
        zoomed out), the share of frames decided broken, and the frame count;
        a bin without frames has None (a gap: no signal or not started).
        """
        seconds = min(max(seconds, 1.0), self.span_s)
        bins = max(1, min(int(bins), 2000))
        t, score, flags = self._snapshot()
        t0 = now - seconds
        keep = (t > t0) & (t <= now)
        t, score, flags = t[keep], score[keep], flags[keep]
        idx = np.minimum(((t - t0) / seconds * bins).astype(np.int64), bins - 1)
        count = np.bincount(idx, minlength=bins)
        top = np.full(bins, -1.0, np.float64)
        np.maximum.at(top, idx, score.astype(np.float64))
        broken = np.bincount(idx, weights=(flags & BREAKUP) > 0, minlength=bins)
        lost = np.bincount(idx, weights=(flags & NO_SIGNAL) > 0, minlength=bins)
        has = count > 0
        share = np.divide(broken, count, out=np.zeros(bins), where=has)
        lost_share = np.divide(lost, count, out=np.zeros(bins), where=has)

        def col(a: np.ndarray, digits: int) -> list:
            return [round(float(v), digits) if h else None for v, h in zip(a, has)]

        return {"seconds": seconds, "bins": bins, "bin_s": seconds / bins,
                "frames": int(count.sum()),
                "score": col(top, 3), "breakup": col(share, 3), "no_signal": col(lost_share, 3),
                "count": count.tolist()}
