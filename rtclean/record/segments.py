"""Where one recording segment ends and the next begins, and what it is called.

The split is decided once per frame by one ``SegmentClock`` shared by the raw
and the clean recorder, so both streams' segments hold exactly the same frames
even when one recorder drops frames the other keeps.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rtclean.errors import RtcleanError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SegmentKey:
    """Identifies one segment: files are ``<base>.raw.ts``, ``<base>.clean.ts``, ...

    ``start`` is the capture time (monotonic s) of the segment's first frame;
    recorders take timestamps relative to it, so raw and clean agree even when
    one of them dropped that first frame.
    """

    number: int
    base: str
    start: float = field(default=0.0, compare=False)


class SegmentClock:
    """Assigns each frame (by capture time) to a segment of ``segment_s`` seconds."""

    def __init__(self, directory: str | os.PathLike, segment_s: float,
                 wall: Callable[[], float] = time.time) -> None:
        if not segment_s > 0:
            raise RtcleanError(f"segment length must be positive, got {segment_s}")
        self.directory = Path(directory)
        self.segment_s = float(segment_s)
        self._wall = wall
        self._lock = threading.Lock()
        self._start: float | None = None  # capture time of the first frame of segment 0
        self._key: SegmentKey | None = None
        # Names handed out but maybe not on disk yet (the recorders lag behind
        # the clock by up to their queue length).
        self._issued: set[str] = set()
        ensure_writable(self.directory)

    def key(self, frame_t: float) -> SegmentKey:
        """The segment of the frame captured at ``frame_t`` (monotonic seconds)."""
        with self._lock:
            if self._start is None:
                self._start = frame_t
            if self._key is None:
                self._key = self._new(0, frame_t)
            # Segment n covers [start + n*S, start + (n+1)*S); a jump over
            # several periods (capture stalled) opens only the one it lands in.
            n = int((frame_t - self._start) // self.segment_s)
            if n > self._key.number:
                self._key = self._new(n, frame_t)
            return self._key

    def restart(self) -> None:
        """The next frame opens a new segment with a new name (recording
        stopped and started again, or the signal dropped out)."""
        with self._lock:
            self._start = None
            self._key = None

    @property
    def current(self) -> SegmentKey | None:
        return self._key

    def _new(self, number: int, frame_t: float) -> SegmentKey:
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(self._wall()))
        # The Pi's clock can be wrong (no RTC, before NTP): the same stamp may
        # come round again, so bump the counter until no file uses the name.
        counter = 0
        while True:
            base = self.directory / f"{stamp}-{counter:03d}"
            if str(base) not in self._issued and not _base_taken(base):
                break
            counter += 1
        self._issued.add(str(base))
        log.debug("segment %d: %s", number, base)
        return SegmentKey(number=number, base=str(base), start=frame_t)


def _base_taken(base: Path) -> bool:
    prefix = base.name + "."
    try:
        return any(e.name.startswith(prefix) or e.name == base.name
                   for e in os.scandir(base.parent))
    except FileNotFoundError:
        return False


def ensure_writable(directory: Path) -> None:
    """Create ``directory`` if needed and prove a file can be written in it.

    A probe file is used rather than os.access(): root passes every access
    check, yet a read-only mount or a full disk still refuses to write.
    """
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".rtclean-probe-"):
            pass
    except OSError as e:
        reason = e.strerror or str(e)
        raise RtcleanError(f"recording directory {directory} is not writable: {reason}") from None
