"""Frames already in memory, delivered at a fixed rate like a capture card.

Used by the benchmark to time rtclean's own live path: a capture card's
read() sleeps in the driver, whereas the demo source spends ~5 ms of CPU per
frame rendering, which no ground station pays.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from rtclean.sources.base import Source


class ReplaySource(Source):
    name = "replay"
    live = True

    def __init__(self, frames: Sequence[np.ndarray], fps: float = 25.0, duration_s: float | None = None) -> None:
        super().__init__()
        if not frames:
            raise ValueError("ReplaySource needs at least one frame")
        self.frames = frames
        self.fps = float(fps)
        h, w = frames[0].shape[:2]
        self.size = (w, h)
        self.duration_s = duration_s
        self._n = 0
        self._start: float | None = None

    def open(self) -> None:
        self._n = 0
        self._start = None

    def read(self) -> tuple[np.ndarray, float] | None:
        if self.duration_s is not None and self._n >= self.duration_s * self.fps:
            return None
        if self._start is None:
            self._start = time.monotonic()
        delay = self._start + self._n / self.fps - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        image = self.frames[self._n % len(self.frames)]
        pts = self._n / self.fps
        self._n += 1
        return image, pts
