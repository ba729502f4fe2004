"""A repeated frame keeps the verdict of the frame it repeats.

Goggle DVRs that record 30 fps from a 25 fps receiver repeat every fifth
frame, and capture cards repeat one when they fall behind. The detectors
look at a frame beside the one before it: breakup is incoherent in time,
and the classical detector only counts clicks that are new. A repeat of a
broken frame is perfectly coherent and has no new clicks, so it was called
clean (measured in the twentieth session: held-out analog seeds 81 and 83
converted to 30 fps by repeating frames, the second copy of a broken frame
scored 0.006-0.024 where the first scored 0.54-0.98).

The repeat is the same picture, so it gets the same verdict, and the
detectors do not run on it (their state stays that of the first copy, which
is what the next frame must be compared with).

"The same picture" is exact: an MJPEG DVR encodes the repeated input to the
same bytes, and a card hands over the same buffer. A tolerance would be
wrong: a few new sparkles on a still scene change few pixels, and they are
the very thing to find. An H.264 DVR's repeat is not exact (the encoder
keeps refining the picture: mean |difference| up to 6-9 grey levels at
1.5-4 Mbit/s, measured) and is scored as a frame of its own.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from rtclean.frames import DetectResult

_STEP = 16  # the coarse first look: every 16th row and column


class RepeatedFrame:
    """Remembers the last frame scored and its result."""

    def __init__(self) -> None:
        self._image: np.ndarray | None = None
        self._coarse: np.ndarray | None = None
        self._result: DetectResult | None = None

    def reset(self) -> None:
        self._image = self._coarse = self._result = None

    def verdict(self, image: np.ndarray) -> DetectResult | None:
        """A copy of the last result when ``image`` repeats the last frame
        pixel for pixel, else None (score it)."""
        last = self._image
        if self._result is None or last is None or image.shape != last.shape:
            return None
        # A source that refills one buffer hands over the memory kept here:
        # then nothing can be told, and the frame is scored afresh.
        if np.may_share_memory(image, last):
            return None
        # the coarse look rules out almost every new frame in microseconds
        # (against a copy: were the kept frame overwritten since, a frame equal
        # to its new contents would fail here)
        if not np.array_equal(image[::_STEP, ::_STEP], self._coarse):
            return None
        if not np.array_equal(image, last):
            return None
        r = self._result
        return dataclasses.replace(r, features=dict(r.features), no_signal=None)

    def remember(self, image: np.ndarray, result: DetectResult) -> None:
        """The frame just scored. Kept by reference (a full copy costs
        0.16 ms per 720x576 frame here); its coarse view is copied."""
        self._image = image
        self._coarse = image[::_STEP, ::_STEP].copy()
        self._result = result
