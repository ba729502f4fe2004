"""Per-frame JSON lines beside each clean segment.

One line per frame written to the clean video, in the same order:

    {"index": 1234, "t": 5321.123456, "pts": 12.34, "score": 0.8123,
     "breakup": true, "no_signal": false, "action": "repair:flow"}

``index`` is the source frame index, ``t`` the capture time (monotonic s),
``pts`` the frame's time in the segment's video (s), so a line maps to a video
frame by order or by pts. Each line is flushed to the OS as it is written, so
after a crash the sidecar is as complete as the MPEG-TS beside it (a SIGKILL
may at worst cut the very last line short; readers skip a line that does not
parse).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from rtclean.errors import RtcleanError
from rtclean.frames import Processed


class Sidecar:
    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        try:
            self._f = open(self.path, "x", encoding="utf-8")  # never overwrite a recording
        except OSError as e:
            raise RtcleanError(f"{self.path}: cannot create sidecar: {e.strerror or e}") from None
        self.lines = 0

    def write(self, p: Processed, pts: float | None = None) -> None:
        """Append the line for ``p``; ``pts`` is its time in the segment video."""
        rec = {
            "index": p.frame.index,
            "t": round(p.frame.t, 6),
            "pts": round(p.frame.pts if pts is None else pts, 6),
            "score": round(float(p.result.score), 4),
            "breakup": bool(p.decision.breakup),
            "no_signal": bool(p.decision.no_signal),
            "action": p.action,
        }
        self._f.write(json.dumps(rec, separators=(",", ":")) + "\n")
        self._f.flush()
        self.lines += 1

    def close(self) -> None:
        if self._f.closed:
            return
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()


def read_sidecar(path: str | os.PathLike) -> list[dict]:
    """The complete lines of a sidecar (a line cut short by a crash is skipped)."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.endswith("\n"):
                break
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out
