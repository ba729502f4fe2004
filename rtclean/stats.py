"""Latency and rate statistics that are cheap enough for the per-frame path."""

from __future__ import annotations

import threading
import time

import numpy as np


class Window:
    """The last ``n`` samples of one measurement (milliseconds), thread-safe."""

    def __init__(self, n: int = 1000) -> None:
        self._buf = np.zeros(n, dtype=np.float64)
        self._n = 0
        self._lock = threading.Lock()
        self.count = 0
        self.total = 0.0

    def add(self, ms: float) -> None:
        with self._lock:
            self._buf[self._n % len(self._buf)] = ms
            self._n += 1
            self.count += 1
            self.total += ms

    def values(self) -> np.ndarray:
        with self._lock:
            return self._buf[: min(self._n, len(self._buf))].copy()

    def summary(self) -> dict[str, float | None]:
        v = self.values()
        if v.size == 0:
            return {"median_ms": None, "p99_ms": None, "count": self.count}
        return {"median_ms": round(float(np.median(v)), 3),
                "p99_ms": round(float(np.percentile(v, 99)), 3),
                "count": self.count}


class Rate:
    """Events per second over a sliding window of recent event times."""

    def __init__(self, window_s: float = 2.0) -> None:
        self._times: list[float] = []
        self._window = window_s
        self._lock = threading.Lock()

    def tick(self, t: float | None = None) -> None:
        t = time.monotonic() if t is None else t
        with self._lock:
            self._times.append(t)
            cut = t - self._window
            if self._times[0] < cut:
                self._times = [x for x in self._times if x >= cut]

    def per_second(self) -> float:
        now = time.monotonic()
        with self._lock:
            recent = [x for x in self._times if x >= now - self._window]
        if len(recent) < 2:
            return 0.0
        span = max(now - recent[0], 1e-6)
        return round(len(recent) / span, 2)


def percentiles(ms: list[float] | np.ndarray) -> dict[str, float]:
    a = np.asarray(ms, dtype=np.float64)
    return {"median_ms": round(float(np.median(a)), 3), "p99_ms": round(float(np.percentile(a, 99)), 3)}
