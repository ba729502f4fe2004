"""The one small interface every capture source implements."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class Source(ABC):
    """A producer of BGR frames.

    ``read()`` blocks until the next picture is available and returns
    ``(image, pts)`` where ``image`` is HxWx3 BGR uint8 and ``pts`` the media
    time in seconds from the start; it returns None at the end of the stream
    (files, demo with a duration) and raises SourceError on a fault. The
    capture loop stamps each picture with time.monotonic() right after read()
    returns: that is the frame's capture time.
    """

    name: str = "source"
    live: bool = True  # paced by the hardware or a clock (False: as fast as possible)

    def __init__(self) -> None:
        self.fps: float = 25.0  # nominal rate, known after open()
        self.size: tuple[int, int] = (0, 0)  # (width, height), known after open()

    @abstractmethod
    def open(self) -> None:
        """Acquire the device or file; raise SourceError with one clear line."""

    @abstractmethod
    def read(self) -> tuple[np.ndarray, float] | None:
        """Next (image, pts) or None at the end of the stream."""

    def close(self) -> None:
        """Release the device or file (idempotent)."""

    def __enter__(self) -> "Source":
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()
