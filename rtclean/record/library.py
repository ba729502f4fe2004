"""The recordings on disk, as recordings: list, look up, delete, keep.

One recording is every file of one segment base name in the recordings
directory::

    20261122-140305-000.raw.ts      raw stream (in progress, or not yet remuxed)
    20261122-140305-000.clean.ts    clean stream
    20261122-140305-000.raw.mp4     raw stream remuxed for browsers (finished)
    20261122-140305-000.clean.mp4
    20261122-140305-000.clean.jsonl per-frame sidecar
    20261122-140305-000.keep        empty marker: retention never deletes it

Names come from web requests (recordings browser, downloads, delete), so
``get``/``file``/``delete``/``set_keep`` accept only plain base names and
every path they return is checked to resolve inside the directory: a
symlink or a crafted name cannot reach another file.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rtclean.errors import RtcleanError
from rtclean.record.sidecar import read_sidecar

log = logging.getLogger(__name__)

# File kind -> suffix after the base name. The order is the listing order.
KINDS: dict[str, str] = {
    "raw": ".raw.ts",
    "clean": ".clean.ts",
    "raw.mp4": ".raw.mp4",
    "clean.mp4": ".clean.mp4",
    "sidecar": ".clean.jsonl",
}
VIDEO_KINDS = ("raw", "clean", "raw.mp4", "clean.mp4")
KEEP_SUFFIX = ".keep"
# Letters, digits, '-' and '_': no dot (the kind follows the first dot), no
# separator, no NUL, so a base name can never climb out of the directory.
_BASE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


@dataclass
class Recording:
    name: str
    started: float  # epoch s: mtime of the first file written (the Pi's clock may be wrong)
    files: dict[str, Path]
    size_bytes: int
    duration_s: float | None
    keep: bool
    active: bool  # being written (or finalized) right now
    breakup: dict | None = field(default=None)  # sidecar summary


def check_name(name: str) -> str:
    """``name`` if it is a plain base name, else ValueError."""
    if not isinstance(name, str) or not _BASE.fullmatch(name):
        raise ValueError(f"not a recording name: {name!r}")
    return name


class RecordingLibrary:
    def __init__(self, directory: str | os.PathLike,
                 active: Callable[[], set[str]] = lambda: set()) -> None:
        self.directory = Path(directory)
        self._active = active
        self._lock = threading.Lock()
        # Sidecar summaries by (path, size, mtime): listing stays cheap when
        # the page refreshes while hours of recordings sit in the directory.
        self._summaries: dict[tuple[str, int, int], tuple[dict, float | None]] = {}

    # ------------------------------------------------------------------ reading

    def _scan(self) -> dict[str, dict[str, os.DirEntry]]:
        """base name -> {kind or 'keep': entry}, for bases with a video file."""
        groups: dict[str, dict[str, os.DirEntry]] = {}
        try:
            entries = list(os.scandir(self.directory))
        except FileNotFoundError:
            return {}
        for e in entries:
            base, dot, rest = e.name.partition(".")
            if not dot or not _BASE.fullmatch(base):
                continue
            suffix = "." + rest
            kind = "keep" if suffix == KEEP_SUFFIX else next(
                (k for k, s in KINDS.items() if s == suffix), None)
            if kind is not None and e.is_file(follow_symlinks=False):
                groups.setdefault(base, {})[kind] = e
        return {b: g for b, g in groups.items() if any(k in g for k in VIDEO_KINDS)}

    def _build(self, name: str, entries: dict[str, os.DirEntry], active: set[str]) -> Recording:
        files, size, mtimes = {}, 0, []
        for kind in KINDS:
            e = entries.get(kind)
            if e is None:
                continue
            try:
                st = e.stat(follow_symlinks=False)
            except FileNotFoundError:  # deleted (or remuxed) while listing
                continue
            files[kind] = Path(e.path)
            size += st.st_size
            mtimes.append(st.st_mtime)
        breakup, duration = None, None
        if "sidecar" in files:
            breakup, duration = self._summary(files["sidecar"])
        return Recording(name=name, started=min(mtimes) if mtimes else 0.0, files=files,
                         size_bytes=size, duration_s=duration, keep="keep" in entries,
                         active=name in active, breakup=breakup)

    def _summary(self, path: Path) -> tuple[dict | None, float | None]:
        try:
            st = path.stat()
        except FileNotFoundError:
            return None, None
        key = (str(path), st.st_size, st.st_mtime_ns)
        with self._lock:
            if key in self._summaries:
                return self._summaries[key]
        rows = read_sidecar(path)
        actions: dict[str, int] = {}
        for r in rows:
            a = str(r.get("action", "pass")).split(":", 1)[0]
            if a != "pass":
                actions[a] = actions.get(a, 0) + 1
        summary = {"frames": len(rows),
                   "breakup_frames": sum(bool(r.get("breakup")) for r in rows),
                   "replaced": actions}
        duration = None
        if rows:
            pts = [float(r.get("pts", 0.0)) for r in rows]
            # The last frame lasts one frame period (median spacing).
            step = sorted(b - a for a, b in zip(pts, pts[1:]))[(len(pts) - 1) // 2] if len(pts) > 1 else 0.0
            duration = round(pts[-1] - pts[0] + step, 3)
        with self._lock:
            if len(self._summaries) > 4096:
                self._summaries.clear()
            self._summaries[key] = (summary, duration)
        return summary, duration

    def list(self) -> list[Recording]:
        """Every recording, newest first."""
        active = set(self._active())
        recs = [self._build(name, entries, active) for name, entries in self._scan().items()]
        recs.sort(key=lambda r: (r.started, r.name), reverse=True)
        return recs

    def get(self, name: str) -> Recording:
        check_name(name)
        entries = self._scan().get(name)
        if entries is None:
            raise KeyError(name)
        return self._build(name, entries, set(self._active()))

    def file(self, name: str, kind: str) -> Path:
        """The path of one file of a recording, resolved and inside the directory."""
        rec = self.get(name)
        if kind not in rec.files:
            raise KeyError(f"{name}: no {kind} file")
        path = rec.files[kind].resolve()
        if not path.is_relative_to(self.directory.resolve()) or not path.is_file():
            raise KeyError(f"{name}: no {kind} file")
        return path

    # ------------------------------------------------------------------ changing

    def delete(self, name: str) -> None:
        rec = self.get(name)
        if rec.active:
            raise RtcleanError(f"recording {name} is being written: stop recording first")
        for path in [*rec.files.values(), self.directory / (name + KEEP_SUFFIX)]:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
        log.info("deleted recording %s (%.1f MB)", name, rec.size_bytes / 1e6)

    def set_keep(self, name: str, keep: bool) -> None:
        self.get(name)  # KeyError / ValueError first
        marker = self.directory / (name + KEEP_SUFFIX)
        if keep:
            marker.touch(exist_ok=True)
        else:
            marker.unlink(missing_ok=True)
