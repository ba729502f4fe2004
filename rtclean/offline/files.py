"""`rtclean detect` on video files, and the report helpers `rtclean clean`
(rtclean.offline.job) shares.

Both commands decode with the file source (as fast as possible), run the
same FrameProcessor as the live pipeline, and write the JSON formats fixed in
DESIGN.md (outside evaluation tools read them: keep them stable).
Frame times are the file's presentation times, not wall-clock capture times,
so hysteresis and hold limits mean the same thing as in the live feed.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from rtclean.config import Config
from rtclean.errors import RtcleanError
from rtclean.frames import Frame, Processed
from rtclean.pipeline import FrameProcessor, describe_detector
from rtclean.sources.file import FileSource

log = logging.getLogger(__name__)

REPORT_VERSION = 1


def file_frames(src: FileSource):
    index = 0
    while True:
        item = src.read()
        if item is None:
            return
        image, pts = item
        # Media time stands in for capture time: monotonic within a file.
        yield Frame(index=index, t=pts, image=image, pts=pts)
        index += 1


def report_row(p: Processed) -> dict:
    """One frame of a report (DESIGN.md format)."""
    return {"index": p.frame.index, "t": round(p.frame.pts, 6),
            "score": round(float(min(max(p.result.score, 0.0), 1.0)), 5),
            "breakup": bool(p.decision.breakup)}


def _finish(report: dict, src: FileSource, path: str | Path | None) -> dict:
    if src.truncated:
        report["truncated"] = True
        report["truncation"] = src.truncation
    if path is not None:
        write_json(path, report)
    return report


def write_json(path: str | Path, data: dict) -> None:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        tmp.replace(path)
    except OSError as e:
        raise RtcleanError(f"{path}: cannot write ({e.strerror or e})") from None


def detect_file(cfg: Config, path: str | Path, json_out: str | Path | None) -> dict:
    src = FileSource(path, realtime=False)
    src.open()
    try:
        proc = FrameProcessor(cfg, src.fps)
        frames = []
        for frame in file_frames(src):
            frames.append(report_row(proc.process(frame)))
    finally:
        src.close()
    report = {"fps": float(src.fps), "width": src.size[0], "height": src.size[1],
              "detector": describe_detector(proc.detector), "frames": frames}
    return _finish(report, src, json_out)


def clean_file(cfg: Config, path: str | Path, out: str | Path, *, live: bool = False,
               lossless: bool = False, report_path: str | Path | None = None) -> dict:
    """One file, the single-file form's defaults (kept for callers of the
    original API); see rtclean.offline.job.clean_one for every option."""
    from rtclean.offline.job import CleanOptions, clean_one

    opts = CleanOptions(live=live, lossless=lossless,
                        report_json=Path(report_path) if report_path is not None else None)
    return clean_one(cfg, path, out, opts)
