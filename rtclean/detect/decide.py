"""From per-frame scores to breakup runs: hysteresis over time.

A frame starts (or continues) a breakup run when its score reaches
``threshold`` or the no-signal check fired. Once in a run, frames stay
broken until ``clean_frames`` consecutive frames score below ``release``;
the last of those is the first clean frame again. Why: breakup comes in
bursts, and a frame between two broken frames that scores just under the
threshold is usually damaged too; letting it through would flash a broken
picture in the middle of a repaired stretch. Frames scoring between
``release`` and ``threshold`` inside a run keep the run going.

The default ``clean_frames`` is 2, which also replaces every run's first
clean frame: on simulated breakup, whose clean frames are exactly clean,
that cost 14-22 % of the clean frames (selection data) for 0-8 points of
recall; 1 costs <= 0.44 %, but lets through a missed torn frame between
two broken ones (tests/test_offline.py). Measured in docs/training.md,
"Decision hysteresis"; not changed without real footage to decide on.

``run_ms`` is the time since the run's first frame (capture times), which
the repair stage compares with ``repair.max_hold_ms`` to declare the signal
lost. ``no_frames(t)`` covers the other way a signal is lost: no frame
arrives at all (the caller's watchdog knows ``source.stall_s``).
"""

from __future__ import annotations

from rtclean.config import DetectConfig
from rtclean.frames import Decision, DetectResult


class Decider:
    def __init__(self, cfg: DetectConfig, fps: float) -> None:
        if fps <= 0:
            raise ValueError("fps must be positive")
        self.threshold = cfg.threshold
        self.release = min(cfg.release, cfg.threshold)
        self.clean_frames = cfg.clean_frames
        self.fps = fps
        self.reset()

    def reset(self) -> None:
        self.in_run = False
        self._run_start = 0.0
        self._clean = 0  # consecutive frames below release inside a run
        self.last_t: float | None = None  # capture time of the last frame seen

    def _start(self, t: float) -> None:
        if not self.in_run:
            self.in_run = True
            self._run_start = t
        self._clean = 0

    def update(self, result: DetectResult, t: float) -> Decision:
        self.last_t = t
        no_signal = result.no_signal is not None
        if no_signal or result.score >= self.threshold:
            self._start(t)
        elif self.in_run:
            if result.score < self.release:
                self._clean += 1
                if self._clean >= self.clean_frames:
                    self.in_run = False
                    self._clean = 0
            else:
                self._clean = 0
        if not self.in_run:
            return Decision(breakup=False, no_signal=False, run_ms=0.0)
        return Decision(breakup=True, no_signal=no_signal,
                        run_ms=max(0.0, (t - self._run_start) * 1000.0))

    def stalled(self, now: float, stall_s: float) -> bool:
        """True when no frame has arrived for ``stall_s`` seconds (or none ever)."""
        return self.last_t is None or now - self.last_t >= stall_s

    def no_frames(self, now: float) -> Decision:
        """The decision while frames have stopped arriving: no signal, and the
        run counted from when the next frame was due."""
        due = now if self.last_t is None else self.last_t + 1.0 / self.fps
        if not self.in_run:
            self.in_run = True
            self._run_start = min(due, now)
        self._clean = 0
        return Decision(breakup=True, no_signal=True, run_ms=max(0.0, (now - self._run_start) * 1000.0))
