"""The radio link over time: which breakup each frame gets.

Signal quality is simulated per video field as a sum of
- slow shadowing (the quad behind trees, range, antenna orientation),
- fast fades (multipath as the quad banks, tens of milliseconds),
- short deep notches (multipath nulls),
- deep dropouts (a building or hill in the way: the link is gone for 0.3-2.5 s).

Breakup happens where quality falls below a threshold. The threshold is set
per block of frames at the quantile that gives the requested breakup share,
so ``breakup=0.15`` means 15% of frames in every block (and so in the long
run), reproducibly from the seed. Below it the damage follows the real order
as quality falls further: sparklies, then snow, then sync trouble (tearing,
colour loss, roll), then no signal (static, blue or black screen, or a
capture card repeating its last frame). Those steps are quantiles of the
frames' quality too, so every run shows the whole ladder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rtclean.errors import RtcleanError

# Share of broken frames on each rung (from the mildest): sparklies, snow, sync, no signal.
LADDER = (("sparklies", 0.40), ("snow", 0.30), ("sync", 0.18), ("no_signal", 0.12))
SYNC_KINDS = (("tear", 0.5), ("colour_loss", 0.3), ("roll", 0.2))
NO_SIGNAL = (("static", 0.35), ("blue", 0.3), ("black", 0.15), ("frozen", 0.2))


@dataclass(frozen=True, slots=True)
class LinkState:
    """The link during one frame."""

    quality: tuple[float, float]  # per field; below ``threshold`` the field breaks
    threshold: float
    kind: str | None  # breakup kind for the frame (None: clean)
    severity: float  # in [0, 1]
    field: int | None  # the only damaged field, or None (both / whole frame)
    rssi: int  # 0-99 for the OSD


def _pick(rng: np.random.Generator, table) -> str:
    names, weights = zip(*table)
    return str(rng.choice(names, p=np.array(weights) / sum(weights)))


class LinkModel:
    """Frame-by-frame link states, reproducible from ``seed``."""

    def __init__(self, seed: int = 1, breakup: float = 0.15, fps: float = 25.0, block_s: float = 6.0) -> None:
        if not 0.0 <= breakup <= 1.0:
            raise RtcleanError(f"link: breakup share must be in [0, 1], got {breakup}")
        if not fps > 0:
            raise RtcleanError(f"link: fps must be positive, got {fps}")
        self.breakup = float(breakup)
        self.fps = float(fps)
        self.block = max(10, int(round(block_s * fps)))
        self._rng = np.random.default_rng([seed, 505])
        self._slow = float(self._rng.normal(0, 1))
        self._fast = 0.0
        self._drop_left = 0  # fields left in the current dropout
        self._drop_len = 1
        self._drop_depth = 0.0
        self._queue: list[LinkState] = []
        self._prev_kind: str | None = None
        self._event_kind: dict[str, str] = {}

    # ------------------------------------------------------------------ quality
    def _quality_block(self, n_fields: int) -> np.ndarray:
        rng = self._rng
        dt = 1.0 / (2 * self.fps)
        a_slow = math.exp(-dt / 1.5)  # shadowing, ~1.5 s correlation
        a_fast = math.exp(-dt / 0.06)  # fading, ~60 ms
        e_slow = rng.normal(0, 1, n_fields) * math.sqrt(1 - a_slow ** 2)
        e_fast = rng.normal(0, 1, n_fields) * math.sqrt(1 - a_fast ** 2)
        q = np.empty(n_fields)
        notch = np.zeros(n_fields)
        starts = np.nonzero(rng.random(n_fields) < 0.6 * dt)[0]  # ~0.6 nulls per second
        for s in starts:
            ln = int(rng.integers(1, 8))
            notch[s:s + ln] += rng.uniform(0.8, 2.2) * np.hanning(ln + 2)[1:-1][: n_fields - s]
        for i in range(n_fields):
            self._slow = a_slow * self._slow + e_slow[i]
            self._fast = a_fast * self._fast + e_fast[i]
            drop = 0.0
            if self._drop_left <= 0 and rng.random() < dt / 12.0:  # a dropout every ~12 s
                self._drop_len = self._drop_left = int(rng.uniform(0.3, 2.5) / dt)
                self._drop_depth = rng.uniform(3.0, 6.0)
            if self._drop_left > 0:
                phase = 1 - self._drop_left / self._drop_len
                drop = self._drop_depth * min(1.0, 4 * math.sin(math.pi * phase))
                self._drop_left -= 1
            q[i] = self._slow + 0.35 * self._fast - notch[i] - drop
        return q

    def _make_block(self) -> None:
        n = self.block
        q = self._quality_block(2 * n).reshape(n, 2)
        worst = q.min(axis=1)
        p = self.breakup
        # Threshold at the p-quantile of the frames' worse field: exactly
        # round(p * n) frames of the block break (ties aside).
        k = int(round(p * n))
        order = np.sort(worst)
        thr = -math.inf if k == 0 else (math.inf if k >= n else float((order[k - 1] + order[k]) / 2))
        # Rungs of the ladder: quantiles among the broken frames.
        cuts, acc = [], 0.0
        for _, share in LADDER[:-1]:
            acc += share
            j = int(round((1 - acc) * k))
            cuts.append(float(order[j - 1] + order[j]) / 2 if 0 < j < n else -math.inf)
        lo = float(order[0]) if n else 0.0
        bounds = [thr] + cuts + [lo - 1e-9]  # upper bound of each rung, then the floor
        span = max(1e-6, (thr if math.isfinite(thr) else float(order[-1])) - lo)
        for qf in q:
            self._queue.append(self._state(qf, thr, bounds, span))

    def _state(self, qf: np.ndarray, thr: float, bounds: list[float], span: float) -> LinkState:
        worst = float(qf.min())
        ref = thr if math.isfinite(thr) else worst + span
        rssi = int(np.clip(round(55 + 40 * math.tanh((worst - ref) / span * 2)), 0, 99))
        if not worst < thr:
            self._prev_kind = None
            return LinkState((float(qf[0]), float(qf[1])), thr, None, 0.0, None, rssi)
        rung = 0
        while rung < len(LADDER) - 1 and worst < bounds[rung + 1]:
            rung += 1
        top, bottom = bounds[rung], bounds[rung + 1]
        if not math.isfinite(top):
            top = worst + span
        sev = float(np.clip((top - worst) / max(top - bottom, 1e-9), 0.0, 1.0))
        name = LADDER[rung][0]
        if name == "sync" or name == "no_signal":
            # one kind per event: a roll or a blue screen lasts while the link is down
            group = SYNC_KINDS if name == "sync" else NO_SIGNAL
            if self._prev_kind not in dict(group):
                self._event_kind[name] = _pick(self._rng, group)
            kind = self._event_kind[name]
            sev = 0.3 + 0.7 * sev if name == "sync" else 1.0
        else:
            kind = name
            sev = 0.1 + 0.9 * sev
        field = None
        if kind in ("sparklies", "snow", "tear", "colour_loss"):
            bad = qf < thr
            if bad.sum() == 1:
                field = int(np.argmax(bad))  # only one field's instant was in a fade
        self._prev_kind = kind
        return LinkState((float(qf[0]), float(qf[1])), thr, kind, sev, field, rssi)

    def next(self) -> LinkState:
        if not self._queue:
            self._make_block()
        return self._queue.pop(0)
