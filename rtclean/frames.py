"""Typed records that travel along the pipeline.

Every frame carries its capture time from ``time.monotonic()``; every latency
figure in rtclean is measured from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# What the repair stage did with a frame. DESIGN.md fixes the first four
# (reports and sidecars are read by outside tools); finer kinds are written
# as "repair:<kind>".
PASS = "pass"
REPAIR = "repair"
HOLD = "hold"
LOST = "lost"
# A broken frame the repair left as captured: every prediction it could
# offer was far worse than the damage (rtclean/repair/mix.py,
# KEEP_RAW_BELOW). Not a synthesized picture, so the live view does not
# tag it; it still counts as handled (not PASS) in reports.
REPAIR_KEEP = f"{REPAIR}:keep"


@dataclass(slots=True)
class Frame:
    """One captured picture."""

    index: int  # 0-based, counts every frame the source delivered
    t: float  # capture time, time.monotonic() seconds
    image: np.ndarray  # HxWx3 BGR uint8
    pts: float = 0.0  # media time in seconds from the start of the source


@dataclass(slots=True)
class DetectResult:
    """What a detector says about one frame."""

    score: float  # breakup probability-like score in [0, 1]
    bands: np.ndarray | None = None  # per horizontal band scores in [0, 1], top to bottom
    no_signal: str | None = None  # "blue", "black", "frozen" when the picture is not video
    features: dict[str, float] = field(default_factory=dict)  # for reports and tuning
    # per field scores in [0, 1]: (even lines, odd lines); None when the
    # detector cannot tell the fields apart (field repair is then not tried)
    fields: np.ndarray | None = None


@dataclass(slots=True)
class Decision:
    """The temporal decision for one frame (after hysteresis)."""

    breakup: bool  # replace this frame
    no_signal: bool = False  # receiver shows no video (blue/black/frozen/none)
    run_ms: float = 0.0  # how long the current breakup run has lasted


@dataclass(slots=True)
class Processed:
    """A frame after detect → decide → repair: what every consumer receives."""

    frame: Frame
    clean: np.ndarray  # the picture for the clean stream (no on-screen tags)
    result: DetectResult
    decision: Decision
    action: str  # PASS, REPAIR (or "repair:<kind>"), HOLD, LOST
    t_done: float = 0.0  # monotonic time processing finished

    @property
    def replaced(self) -> bool:
        return self.action != PASS
