"""`rtclean detect` and `rtclean clean` on video files.

Both decode with the file source (as fast as possible), run the same
FrameProcessor as the live pipeline, and write the JSON formats fixed in
DESIGN.md (outside evaluation tools read them: keep them stable).
Frame times are the file's presentation times, not wall-clock capture times,
so hysteresis and hold limits mean the same thing as in the live feed.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from rtclean.config import Config
from rtclean.errors import RtcleanError
from rtclean.frames import Frame, Processed
from rtclean.offline.lookahead import Lookahead
from rtclean.pipeline import FrameProcessor, describe_detector
from rtclean.sources.file import FileSource

log = logging.getLogger(__name__)

REPORT_VERSION = 1


def _frames(src: FileSource):
    index = 0
    while True:
        item = src.read()
        if item is None:
            return
        image, pts = item
        # Media time stands in for capture time: monotonic within a file.
        yield Frame(index=index, t=pts, image=image, pts=pts)
        index += 1


def _row(p: Processed) -> dict:
    """One frame of a report (DESIGN.md format)."""
    return {"index": p.frame.index, "t": round(p.frame.pts, 6),
            "score": round(float(min(max(p.result.score, 0.0), 1.0)), 5),
            "breakup": bool(p.decision.breakup)}


def _finish(report: dict, src: FileSource, path: str | Path | None) -> dict:
    if src.truncated:
        report["truncated"] = True
        report["truncation"] = src.truncation
    if path is not None:
        _write_json(path, report)
    return report


def _write_json(path: str | Path, data: dict) -> None:
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
        for frame in _frames(src):
            frames.append(_row(proc.process(frame)))
    finally:
        src.close()
    report = {"fps": float(src.fps), "width": src.size[0], "height": src.size[1],
              "detector": describe_detector(proc.detector), "frames": frames}
    return _finish(report, src, json_out)


def clean_file(cfg: Config, path: str | Path, out: str | Path, *, live: bool = False,
               lossless: bool = False, report_path: str | Path | None = None) -> dict:
    from rtclean.record.writer import VideoWriter
    from rtclean.repair.flow import FlowEstimator

    out = Path(out)
    if lossless and out.suffix.lower() != ".mkv":
        raise RtcleanError(f"{out}: --lossless writes FFV1 in Matroska; use an .mkv output name")
    if Path(path).resolve() == out.resolve():
        raise RtcleanError(f"{out}: output would overwrite the input")
    src = FileSource(path, realtime=False)
    src.open()
    t_start = time.perf_counter()
    rows: list[dict] = []
    replaced = 0
    try:
        proc = FrameProcessor(cfg, src.fps)
        w, h = src.size
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            writer = VideoWriter(out, w, h, src.rate, lossless=lossless, crf=cfg.record.crf,
                                 preset=cfg.record.preset)
        except OSError as e:
            raise RtcleanError(f"{out}: cannot write ({e.strerror or e})") from None
        ahead = None
        if not live and cfg.repair.enabled:
            flow = FlowEstimator(cfg.repair.flow_width)
            ahead = Lookahead(flow.interpolate, max_gap_s=cfg.repair.max_hold_ms / 1000.0)

        def emit(done: list[Processed]) -> None:
            nonlocal replaced
            for p in done:
                writer.write(p.clean)
                replaced += p.action != "pass"
                rows.append({**_row(p), "action": p.action})

        try:
            for frame in _frames(src):
                p = proc.process(frame)
                emit(ahead.push(p) if ahead else [p])
            if ahead:
                emit(ahead.flush())
        finally:
            writer.close()
    finally:
        src.close()
    seconds = time.perf_counter() - t_start
    report = {"version": REPORT_VERSION, "input": str(path), "output": str(out),
              "fps": float(src.fps), "width": src.size[0], "height": src.size[1],
              "detector": describe_detector(proc.detector), "mode": "live" if live else "lookahead",
              "frames": rows, "replaced": replaced, "seconds": round(seconds, 3)}
    return _finish(report, src, report_path)
