"""Bounded look-ahead for the recorded clean stream (``record.lookahead_ms``).

The live view must stay causal: a broken frame is shown at once, repaired
by extrapolation from the past. The DVR file is watched later, so it can
wait for the clean frame after a short breakup run and fill the run by
bidirectional interpolation instead (rtclean.offline.lookahead.Lookahead,
the same code as the offline cleaner).

This runs on the clean recorder's encoder thread, never on the live path:
``Processed`` frames arrive in order with their segment key; frames of an
open breakup run are held until

- a clean frame ends the run within the window: the run is re-repaired
  (interpolation through the repair hierarchy) and written;
- the run outlasts the window (``lookahead_ms`` after the last clean
  frame): it is written as the live path repaired it;
- the segment is finished or the recorder closes: it is written as the live
  path repaired it (nothing is lost at stop).

So memory is bounded by the window (at most ``lookahead_ms`` of frames, two
pictures each), a frame reaches the encoder at most the window plus one
frame period late, and every frame is written exactly once, in order, with
its own capture time and segment: frame count and timestamps do not change.
The sidecar line is written from the same ``Processed`` as the picture, so
its ``action`` says what the file shows (``repair:interp``, ...).

Frames are copied (``dataclasses.replace``) before re-repair: the live hub
and other consumers hold the same ``Processed`` objects.
"""

from __future__ import annotations

import dataclasses
from collections import deque

from rtclean.config import RepairConfig
from rtclean.frames import Processed
from rtclean.offline.lookahead import Lookahead
from rtclean.record.segments import SegmentKey
from rtclean.repair.flow import FlowEstimator


class CleanLookahead:
    """Delays a clean stream by up to ``window_s`` to interpolate short gaps."""

    def __init__(self, window_s: float, repair: RepairConfig | None = None) -> None:
        cfg = repair if repair is not None else RepairConfig()
        self.window_s = float(window_s)
        self._ahead = Lookahead(FlowEstimator(cfg.flow_width).interpolate, self.window_s, cfg)
        # Lookahead releases frames exactly once and in the order pushed, so
        # a FIFO pairs each released frame with its segment key (and the
        # live picture, to count the frames whose picture was replaced).
        self._held: deque[tuple[SegmentKey, object]] = deque()
        self.reinterpolated = 0  # frames written with a picture other than the live one

    def push(self, p: Processed, key: SegmentKey) -> list[tuple[Processed, SegmentKey]]:
        """Take the next frame; return the frames now final, with their keys."""
        self._held.append((key, p.clean))
        return self._pair(self._ahead.push(dataclasses.replace(p)))

    def flush(self) -> list[tuple[Processed, SegmentKey]]:
        """Release everything held, as the live path repaired it (segment
        end, recorder close). The next frames start afresh: a new segment
        must not interpolate from a clean frame of the old one."""
        out = self._pair(self._ahead.flush())
        self._ahead.reset()
        return out

    @property
    def held(self) -> int:
        return len(self._held)

    def _pair(self, frames: list[Processed]) -> list[tuple[Processed, SegmentKey]]:
        out = []
        for q in frames:
            key, live_clean = self._held.popleft()
            self.reinterpolated += q.clean is not live_clean
            out.append((q, key))
        return out
