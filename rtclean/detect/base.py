"""The one small interface every breakup detector implements."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from rtclean.frames import DetectResult


class Detector(ABC):
    """Scores one BGR frame for analog breakup.

    Detectors may keep state between frames (the previous frame as context)
    and are used by a single thread; ``reset()`` forgets that state (new file,
    source reconnected).
    """

    name: str = "detector"

    @abstractmethod
    def detect(self, image: np.ndarray) -> DetectResult:
        """Score ``image`` (HxWx3 BGR uint8, any size): frame score in [0, 1]
        and, where the detector can, per-band scores top to bottom."""

    def reset(self) -> None:
        """Forget temporal context."""
