"""A one-line progress bar for `rtclean clean`, on a terminal only.

Drawn on stderr with carriage returns when stderr is a TTY; when it is not
(a log file, a pipe, cron) nothing is drawn at all, so logs stay clean.
Messages printed while the bar is up clear it first and it is redrawn on
the next update.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    def __init__(self, files: int, stream: TextIO | None = None, enabled: bool | None = None,
                 min_interval: float = 0.1) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.files = files
        self.min_interval = min_interval
        self._done: dict[int, int] = {}  # job -> frames done
        self._total: dict[int, int] = {}  # job -> frames expected (0 = unknown)
        self._finished = 0
        self._t0 = time.monotonic()
        self._last_draw = 0.0
        self._shown = False

    def update(self, job: int, done: int, total: int) -> None:
        self._done[job] = done
        if total:
            self._total[job] = max(total, done)
        self._draw()

    def file_done(self, job: int) -> None:
        self._finished += 1
        self._total[job] = self._done.get(job, 0)
        self._draw(force=True)

    def _draw(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last_draw < self.min_interval:
            return
        self._last_draw = now
        done = sum(self._done.values())
        total = sum(self._total.get(j, 0) for j in self._done)
        elapsed = max(now - self._t0, 1e-6)
        fps = done / elapsed
        frac = min(done / total, 1.0) if total else 0.0
        width = 28
        fill = int(frac * width)
        eta = f" ETA {max(total - done, 0) / fps:4.0f} s" if fps > 0 and total else ""
        line = (f"\r[{'#' * fill}{'.' * (width - fill)}] {frac * 100:3.0f}%  files {self._finished}/{self.files}"
                f"  {done} frames  {fps:5.1f} fps{eta}")
        self.stream.write(line + "\x1b[K")
        self.stream.flush()
        self._shown = True

    def clear(self) -> None:
        if self.enabled and self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._shown = False

    def print(self, message: str, stream: TextIO) -> None:
        """Print a whole line without leaving half a bar before it."""
        self.clear()
        print(message, file=stream, flush=True)
