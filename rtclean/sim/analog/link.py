"""Time-varying carrier-to-noise ratio of a 5.8 GHz FPV link, per video line.

CNR (dB) = offset + shadowing + fast fading + dropouts:
- shadowing: slow Gaussian (AR(1), 1.5 s correlation, 4 dB spread): range,
  trees, antenna orientation;
- fast fading: Rician (K = 6 dB, 8 ms coherence): multipath as the quad moves
  and banks; its nulls are short and deep, so one field or a band of lines
  breaks while the rest of the frame is clean;
- dropouts: Poisson (about one per 8 s), 0.3-2.5 s long, 12-30 dB deep, with
  80 ms ramps: a building or hill in the way;
- offset: per block of 20 s, set so that ``breakup`` of the block's frames
  have their lowest CNR below ``threshold_db`` (10 dB, where FM clicks
  start), so the knob is roughly the share of frames with breakup.

The AR(1) processes run at line rate, vectorised per frame with the closed
form x_n = a^n (x_0 + sum_k a^-k e_k) (a^-625 stays small for these time
constants).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rtclean.errors import RtcleanError

THRESHOLD_DB = 10.0
BLOCK_S = 20.0
CNR_MIN, CNR_MAX = -6.0, 45.0


@dataclass(slots=True, eq=False)
class LinkFrame:
    """The link during one frame."""

    cnr_db: np.ndarray  # (lines,) per stream line
    mean_db: float
    min_db: float
    threshold_db: float
    dropout: bool  # inside a deep dropout
    result: Any = field(default=None)  # set by degrade_analog: the frame's AnalogResult

    @property
    def below(self) -> bool:
        return self.min_db < self.threshold_db


def _ar1(rng: np.random.Generator, x0: complex | float, a: float, n: int, complex_: bool = False) -> np.ndarray:
    e = rng.standard_normal((n, 2) if complex_ else n)
    if complex_:
        e = (e[:, 0] + 1j * e[:, 1]) * math.sqrt(0.5)
    e = e * math.sqrt(1 - a * a)
    k = np.arange(1, n + 1)
    return a ** k * (x0 + np.cumsum(e * a ** (-k)))


class LinkProcess:
    """Per-line CNR arrays for successive frames, reproducible from ``seed``."""

    def __init__(self, seed: int = 1, breakup: float = 0.3, fps: float = 25.0, lines: int = 625,
                 threshold_db: float = THRESHOLD_DB) -> None:
        if not 0.0 <= breakup <= 1.0:
            raise RtcleanError(f"link: breakup share must be in [0, 1], got {breakup}")
        if not fps > 0:
            raise RtcleanError(f"link: fps must be positive, got {fps}")
        self.breakup = float(breakup)
        self.fps = float(fps)
        self.lines = int(lines)
        self.threshold_db = float(threshold_db)
        self.dt = 1.0 / (self.fps * self.lines)
        self._rng = np.random.default_rng([int(seed), 5801])
        self._shadow = float(self._rng.normal())
        self._fade = complex(self._rng.normal() + 1j * self._rng.normal()) * math.sqrt(0.5)
        self._drop_t = 0.0  # seconds into the current dropout (or < 0: none)
        self._drop_len = 0.0
        self._drop_depth = 0.0
        self._drop_t = -1.0
        self._block: list[tuple[np.ndarray, bool]] = []

    def _raw_frame(self) -> tuple[np.ndarray, bool]:
        n, dt, rng = self.lines, self.dt, self._rng
        sh = _ar1(rng, self._shadow, math.exp(-dt / 1.5), n)
        self._shadow = float(sh[-1])
        fd = _ar1(rng, self._fade, math.exp(-dt / 0.008), n, complex_=True)
        self._fade = complex(fd[-1])
        k = 10 ** (6 / 10)
        rice = np.abs(math.sqrt(k / (k + 1)) + fd * math.sqrt(1 / (k + 1))) ** 2
        cnr = 4.0 * sh + 10 * np.log10(np.maximum(rice, 1e-4))
        t = np.arange(n) * dt
        in_drop = False
        if self._drop_t < 0 and rng.random() < n * dt / 8.0:
            self._drop_t = 0.0
            self._drop_len = float(rng.uniform(0.3, 2.5))
            self._drop_depth = float(rng.uniform(12, 30))
        if self._drop_t >= 0:
            tt = self._drop_t + t
            ramp = np.clip(np.minimum(tt, self._drop_len - tt) / 0.08, 0, 1)
            cnr = cnr - self._drop_depth * ramp
            in_drop = True
            self._drop_t += n * dt
            if self._drop_t > self._drop_len:
                self._drop_t = -1.0
        return cnr, in_drop

    def _fill(self) -> None:
        nb = max(10, int(round(BLOCK_S * self.fps)))
        raw = [self._raw_frame() for _ in range(nb)]
        mins = np.array([c.min() for c, _ in raw])
        if self.breakup <= 0:
            off = self.threshold_db + 3.0 - mins.min()
        elif self.breakup >= 1:
            off = self.threshold_db - 3.0 - mins.max()
        else:
            off = self.threshold_db - float(np.quantile(mins, self.breakup))
        self._block = [(np.clip(c + off, CNR_MIN, CNR_MAX), d) for c, d in raw]
        self._block.reverse()

    def next(self) -> LinkFrame:
        if not self._block:
            self._fill()
        c, d = self._block.pop()
        return LinkFrame(c.astype(np.float32), float(c.mean()), float(c.min()), self.threshold_db, d)
