"""Before/after thumbnails of the replaced ranges, for the HTML report.

For every run of replaced (or dropped) frames the middle frame is kept as a
small JPEG pair: the input picture and what the output shows. Only small
copies are kept (a few kB each), so a long flight costs little memory; the
report shows an even spread of at most ``limit`` ranges.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

THUMB_WIDTH = 240


@dataclass(slots=True)
class Thumb:
    first: int  # frame range [first, last] the thumbnail stands for
    last: int
    index: int  # the frame shown
    before: bytes  # JPEG of the input frame
    after: bytes | None  # JPEG of the output frame (None: the frame was dropped)


def _small(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    return cv2.resize(image, (THUMB_WIDTH, max(1, round(h * THUMB_WIDTH / w))), interpolation=cv2.INTER_AREA)


def _jpeg(image: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()


class Thumbnails:
    def __init__(self) -> None:
        self._run: list[tuple[int, np.ndarray, np.ndarray | None]] = []  # small copies
        self.ranges: list[Thumb] = []

    def add(self, index: int, before: np.ndarray, after: np.ndarray | None, replaced: bool) -> None:
        if replaced:
            # Full-size copies would cost ~1 MB per frame of a long gap: keep
            # the small ones, encode only the chosen one when the run ends.
            self._run.append((index, _small(before), None if after is None else _small(after)))
        elif self._run:
            self._close()

    def _close(self) -> None:
        index, before, after = self._run[len(self._run) // 2]
        self.ranges.append(Thumb(self._run[0][0], self._run[-1][0], index, _jpeg(before),
                                 None if after is None else _jpeg(after)))
        self._run = []

    def pick(self, limit: int = 12) -> list[Thumb]:
        """At most ``limit`` ranges, evenly spread over the file."""
        if self._run:
            self._close()
        n = len(self.ranges)
        if n <= limit:
            return list(self.ranges)
        return [self.ranges[round(i * (n - 1) / (limit - 1))] for i in range(limit)]
