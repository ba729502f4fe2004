"""Keep ``record.min_free_mb`` free on the recordings' filesystem.

A thread of its own checks the free space every few seconds and deletes the
oldest finished recordings until enough is free. It never deletes a
recording being written (or waiting to be remuxed) and never one marked
keep. When nothing more can be deleted it raises ``disk_full``; the DVR then
stops recording (the live view carries on) and starts again once the flag
drops, which this thread re-checks on every pass.

Its own thread, because deleting files and asking the filesystem can stall
on a slow SD card, and that must never delay a frame. The free-space figure
comes from a function (``shutil.disk_usage`` by default) so tests can give
a small virtual disk.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

from rtclean.errors import RtcleanError
from rtclean.record.library import RecordingLibrary

log = logging.getLogger(__name__)

MB = 1024 * 1024
FreeBytes = Callable[[Path], int]


def disk_free_bytes(directory: Path) -> int:
    return shutil.disk_usage(directory).free


class Retention:
    def __init__(self, library: RecordingLibrary, min_free_mb: float,
                 free_bytes: FreeBytes = disk_free_bytes, interval_s: float = 2.0) -> None:
        self.library = library
        self.min_free = int(min_free_mb * MB)
        self.free_bytes = free_bytes
        self.interval_s = interval_s
        self.disk_full = False
        self.free_mb: float | None = None
        self.deleted: list[str] = []  # names deleted, oldest first (also logged)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.check()  # know the state before the first frame
        self._thread = threading.Thread(target=self._run, name="rtclean-retention", daemon=True)
        self._thread.start()

    def poke(self) -> None:
        """Check now (e.g. a segment just finished, or a write failed)."""
        self._wake.set()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:  # a deletion stuck on a slow card must not hold shutdown
            self._thread.join(0.5)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval_s)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.check()
            except Exception as e:  # noqa: BLE001 - keep checking; the DVR shows the state
                log.warning("retention check failed: %s", e)

    def _free(self) -> int:
        try:
            free = int(self.free_bytes(self.library.directory))
        except OSError as e:
            raise RtcleanError(f"{self.library.directory}: cannot read free space: {e}") from None
        self.free_mb = round(free / MB, 1)
        return free

    def check(self) -> bool:
        """One pass: delete what is needed; returns (and sets) ``disk_full``."""
        free = self._free()
        if free >= self.min_free:
            if self.disk_full:
                log.info("recordings: %.0f MB free again, recording can resume", free / MB)
            self.disk_full = False
            return False
        # Oldest first; list() is newest first.
        for rec in reversed(self.library.list()):
            if free >= self.min_free:
                break
            if rec.active or rec.keep:
                continue
            try:
                self.library.delete(rec.name)
            except (RtcleanError, KeyError) as e:  # became active, or deleted meanwhile
                log.debug("retention skipped %s: %s", rec.name, e)
                continue
            except OSError as e:
                log.warning("retention: cannot delete %s: %s", rec.name, e)
                continue
            self.deleted.append(rec.name)
            log.info("retention: deleted %s to keep %.0f MB free", rec.name, self.min_free / MB)
            free = self._free()
        full = free < self.min_free
        if full and not self.disk_full:
            log.warning("recordings: only %.0f MB free and nothing more may be deleted "
                        "(record.min_free_mb %d): recording stops until space returns",
                        free / MB, self.min_free // MB)
        elif not full and self.disk_full:
            log.info("recordings: %.0f MB free again, recording can resume", free / MB)
        self.disk_full = full
        return full
