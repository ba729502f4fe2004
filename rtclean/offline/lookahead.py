"""Look-ahead repair: fill a gap between two clean frames from both sides.

The causal (live) repair can only extrapolate from the past. With the frames
after a gap at hand, each broken frame is predicted by interpolating between
the last clean frame before and the first clean frame after (bidirectional
flow), which is what a DVR file deserves. Frames are held back only while a
gap is open, and never longer than ``max_gap_s`` (beyond that the causal
decision - hold or signal lost - stands, since interpolating across seconds
invents motion).

The interpolated picture then goes through the same repair hierarchy as the
live path (rtclean.repair.localise): a frame with one clean field keeps it
(``repair:field``), a frame with a few damaged bands keeps the others
(``repair:band``), only a frame damaged all over becomes the whole
interpolation (``repair:interp``). The learned OSD is pasted back from the
nearer clean frame.

Scene cut inside a gap (no flow links the two clean frames): nothing is
interpolated. Each broken frame becomes a copy of the side its own intact
bands resemble (the cut may fall anywhere in the gap), or of the nearer one
when no band is intact; the action is ``hold``.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from rtclean.config import RepairConfig
from rtclean.frames import HOLD, PASS, Processed
from rtclean.repair import localise
from rtclean.repair.bands import band_rows
from rtclean.repair.flow import FlowEstimator
from rtclean.repair.osd import OsdModel
from rtclean.repair.repairer import KIND_ACTION

INTERP = "repair:interp"


class Lookahead:
    def __init__(self, interpolate: Callable[[np.ndarray, np.ndarray, float], np.ndarray],
                 max_gap_s: float, cfg: RepairConfig | None = None) -> None:
        self._interpolate = interpolate
        self.max_gap_s = max_gap_s
        self.cfg = cfg if cfg is not None else RepairConfig()
        self._est = FlowEstimator(self.cfg.flow_width)
        self.osd = OsdModel(self.cfg.osd_frames)
        self._last_clean: Processed | None = None
        self._gap: list[Processed] = []

    def push(self, p: Processed) -> list[Processed]:
        """Take the next processed frame; return the frames now final, in order."""
        if p.action == PASS:
            out = self._close_gap(p) if self._gap else []
            self._last_clean = p
            self.osd.update(p.clean)
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

    def reset(self) -> None:
        """Forget the last clean frame and the OSD (a new, unrelated stretch
        of video follows). Call ``flush`` first: held frames are dropped."""
        self._last_clean = None
        self._gap = []
        self.osd.reset()

    def _flush_gap(self) -> list[Processed]:
        out, self._gap = self._gap, []
        return out

    def _close_gap(self, after: Processed) -> list[Processed]:
        before = self._last_clean
        t0, t1 = before.frame.t, after.frame.t
        cut = self._est.is_cut(before.clean, after.clean)
        for g in self._gap:
            alpha = float(np.clip((g.frame.t - t0) / (t1 - t0), 0.0, 1.0)) if t1 > t0 else 0.5
            if cut:
                pred, action = self._side(g, before, after, alpha).copy(), HOLD
            else:
                pred, action = self._interpolate(before.clean, after.clean, alpha), INTERP
                # the OSD does not move with the scene: paste it from the nearer side
                self.osd.paste(pred, (before if alpha < 0.5 else after).clean)
            # The hierarchy keeps what the frame's own picture does better
            # (also across a cut: the chosen side is only a guess).
            g.clean, g.action = pred, action
            if g.frame.image.shape != pred.shape:
                continue
            plan = localise.plan(g.result, self.cfg.band_threshold, self.cfg.band_max_share)
            # the nearer clean frame as captured: the scene's detail before the
            # interpolation's resampling smoothed it (repair/mix.py)
            plan = localise.refine(plan, g.frame.image, pred, (before if alpha < 0.5 else after).clean)
            if plan.kind != localise.FULL:
                g.clean = localise.apply(plan, g.frame.image, pred, self.cfg.feather)
                g.action = KIND_ACTION[plan.kind]
        out, self._gap = self._gap, []
        return out

    def _side(self, g: Processed, before: Processed, after: Processed, alpha: float) -> np.ndarray:
        """Across a cut: the clean frame whose scene the broken frame's own
        intact bands show, else the nearer one in time."""
        bands = g.result.bands
        if bands is not None and len(bands) and g.frame.image.shape == before.clean.shape:
            rows = ~band_rows(np.asarray(bands) >= self.cfg.band_threshold, g.frame.image.shape[0])
            if rows.mean() >= 0.25:  # enough intact picture to judge by
                own = cv2.cvtColor(g.frame.image[rows], cv2.COLOR_BGR2GRAY)
                err = [cv2.norm(own, cv2.cvtColor(c.clean[rows], cv2.COLOR_BGR2GRAY), cv2.NORM_L1)
                       for c in (before, after)]
                return before.clean if err[0] <= err[1] else after.clean
        return before.clean if alpha < 0.5 else after.clean
