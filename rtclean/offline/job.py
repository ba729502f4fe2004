"""Clean one video file: decode → detect/decide/repair (the live per-frame
path) → look-ahead interpolation → optional frame-rate conversion → encode,
then put the input's sound track back and write the reports.

``clean_one`` is what every form of ``rtclean clean`` runs per file, in the
CLI process for one file or in a worker process of a batch. It is written
for the worker: plain arguments that pickle, progress through a callback,
and every user-facing failure an RtcleanError (one line per file).

Timing: frames are written at their input presentation times, moved so the
file starts at 0 (the same shift is applied to the audio), so frame count,
timestamps and duration match the input. ``--mode drop`` writes the kept
frames back to back at the input rate (a time-lapse has no gaps to keep) and
no sound. ``--fps F`` writes a regular 1/F grid instead.
"""

from __future__ import annotations

import copy
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from rtclean.config import Config
from rtclean.errors import RtcleanError
from rtclean.frames import PASS, Frame, Processed
from rtclean.offline.files import REPORT_VERSION, file_frames, report_row, write_json
from rtclean.offline.roi import Roi

log = logging.getLogger(__name__)

MODES = ("repair", "drop")
DROP = "drop"  # report action of a frame left out in drop mode


@dataclass(slots=True)
class CleanOptions:
    live: bool = False  # causal repair only (what the live view shows)
    lossless: bool = False  # FFV1 in Matroska
    mode: str = "repair"  # "repair": same frames, broken ones replaced; "drop": broken ones left out
    roi: Roi | None = None  # classify only this region
    fps: float | None = None  # output frame rate (interpolated up-conversion); None: the input's
    audio: bool = True  # keep the input's sound track
    report_json: Path | None = None
    report_html: Path | None = None
    encoder_threads: int = 1  # the cores this job may use: the encoder's threads, parallel detect


ProgressFn = Callable[[int, int], None]  # (frames done, frames expected or 0)


def read_ahead(frames: Iterator[Frame], depth: int = 4) -> Iterator[Frame]:
    """Decode on a second thread, ``depth`` frames ahead.

    FFmpeg's decoding and pixel conversion run without the GIL, so a file
    cleaned alone uses a second core for decoding while this thread detects,
    repairs and encodes. In a batch (one worker per core) it costs nothing.
    """
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def produce() -> None:
        try:
            for f in frames:
                while not stop.is_set():
                    try:
                        q.put(f, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(done)
        except BaseException as e:  # handed to the consumer, raised there
            q.put(e)

    t = threading.Thread(target=produce, name="rtclean-decode", daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        t.join()


def video_tmp_path(out: Path) -> Path:
    """Where the video goes before the sound track is muxed in (hidden, beside ``out``)."""
    return out.with_name(f".{out.stem}.video{out.suffix}")


def remove_partial(out: Path) -> None:
    """Remove what a failed or killed clean of ``out`` left behind."""
    for p in (out, video_tmp_path(out)):
        p.unlink(missing_ok=True)


def clean_one(cfg: Config, path: str | Path, out: str | Path, opts: CleanOptions,
              progress: ProgressFn | None = None) -> dict:
    """Clean ``path`` into ``out``; returns the report (DESIGN.md format)."""
    from rtclean.detect import make_detector
    from rtclean.offline import audio
    from rtclean.offline.lookahead import Lookahead
    from rtclean.offline.thumbs import Thumbnails
    from rtclean.offline.upconvert import FrameRateConverter
    from rtclean.pipeline import PACKAGE_ROOT, FrameProcessor, describe_detector
    from rtclean.record.writer import VideoWriter
    from rtclean.repair.flow import FlowEstimator
    from rtclean.sources.file import FileSource

    path, out = Path(path), Path(out)
    drop = opts.mode == DROP
    if opts.mode not in MODES:
        raise RtcleanError(f"--mode {opts.mode}: expected one of {', '.join(MODES)}")
    if opts.lossless and out.suffix.lower() != ".mkv":
        raise RtcleanError(f"{out}: --lossless writes FFV1 in Matroska; use an .mkv output name")
    if drop and opts.fps:
        raise RtcleanError("--mode drop and --fps do not combine: drop mode keeps only accepted frames")
    if path.resolve() == out.resolve():
        raise RtcleanError(f"{out}: output would overwrite the input")
    if drop:
        # Nothing is repaired in drop mode: skip the repair work.
        cfg = copy.deepcopy(cfg)
        cfg.repair.enabled = False

    src = FileSource(path, realtime=False)
    src.open()
    t_start = time.perf_counter()
    try:
        if opts.roi is not None:
            opts.roi.check(src.size, str(path))
        track, start, duration = audio.probe(path)
        keep_audio = opts.audio and track is not None and not drop
        # the cores left to this job (a batch's workers share them out) also
        # decide whether the classical detector gets a thread of its own
        detector = make_detector(cfg.detect, PACKAGE_ROOT.parent, cores=opts.encoder_threads)
        if opts.roi is not None:
            from rtclean.offline.roi import RoiDetector

            detector = RoiDetector(detector, opts.roi)
        proc = FrameProcessor(cfg, src.fps, detector=detector)
        w, h = src.size
        out_rate = src.rate if not opts.fps else opts.fps
        # With a sound track the video goes to a hidden file first; the final
        # file is muxed from it and the input's audio packets.
        video_path = video_tmp_path(out) if keep_audio else out
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RtcleanError(f"{out.parent}: cannot create directory ({e.strerror or e})") from None
        writer = VideoWriter(video_path, w, h, out_rate, lossless=opts.lossless, crf=cfg.record.crf,
                             preset=cfg.record.preset, threads=opts.encoder_threads)
        flow = FlowEstimator(cfg.repair.flow_width)
        ahead = None
        if not opts.live and not drop and cfg.repair.enabled:
            ahead = Lookahead(flow.interpolate, max_gap_s=cfg.repair.max_hold_ms / 1000.0, cfg=cfg.repair)
        fpsconv = FrameRateConverter(flow.interpolate, opts.fps) if opts.fps else None
        thumbs = Thumbnails()
        rows: list[dict] = []
        # For the progress bar; MPEG-TS has no frame count, only a duration.
        expected = src.frames_hint or round(duration * src.fps)
        shift = start
        threshold = cfg.detect.threshold

        def emit(done: list[Processed]) -> None:
            for p in done:
                row = report_row(p)
                if drop:
                    # Per frame, no hysteresis: time-lapse frames are
                    # separate shots, a bad one says nothing about the next.
                    reject = p.result.score >= threshold or p.result.no_signal is not None
                    row["breakup"] = bool(reject)
                    row["action"] = DROP if reject else PASS
                    if not reject:
                        writer.write(p.frame.image)
                    thumbs.add(p.frame.index, p.frame.image, None if reject else p.frame.image, reject)
                else:
                    row["action"] = p.action
                    if fpsconv is not None:
                        for image, t in fpsconv.push(p.clean, p.frame.pts):
                            writer.write(image, max(0.0, t - shift))
                    else:
                        writer.write(p.clean, max(0.0, p.frame.pts - shift))
                    thumbs.add(p.frame.index, p.frame.image, p.clean, p.action != PASS)
                rows.append(row)
                if progress is not None and len(rows) % 10 == 0:
                    progress(len(rows), expected)

        audio_kind = None
        decoded = read_ahead(file_frames(src))
        try:
            try:
                for frame in decoded:
                    p = proc.process(frame)
                    emit(ahead.push(p) if ahead else [p])
                if ahead:
                    emit(ahead.flush())
                if fpsconv is not None:
                    for image, t in fpsconv.flush(1.0 / src.fps):
                        writer.write(image, max(0.0, t - shift))
            finally:
                decoded.close()  # stop the decoding thread before the source closes
                writer.close(fsync=False)
            if keep_audio:
                until = (rows[-1]["t"] - shift + 1.0 / src.fps) if src.truncated and rows else None
                audio_kind = audio.mux_audio(video_path, path, out, track, until)
        except BaseException:
            remove_partial(out)  # a half-written file would pass for a cleaned one
            raise
        finally:
            if keep_audio:
                video_path.unlink(missing_ok=True)
        if progress is not None:
            progress(len(rows), len(rows))
    finally:
        src.close()
    seconds = time.perf_counter() - t_start
    replaced = sum(r["action"] != PASS for r in rows)
    report = {"version": REPORT_VERSION, "input": str(path), "output": str(out),
              "fps": float(src.fps), "width": src.size[0], "height": src.size[1],
              "detector": describe_detector(proc.detector),
              "mode": DROP if drop else ("live" if opts.live else "lookahead"),
              "frames": rows, "replaced": replaced, "seconds": round(seconds, 3),
              "output_frames": writer.frames, "output_fps": float(out_rate),
              "audio": audio_kind}
    if drop:
        report["dropped"] = replaced
    if opts.roi is not None:
        report["roi"] = [opts.roi.x, opts.roi.y, opts.roi.w, opts.roi.h]
    if src.truncated:
        report["truncated"] = True
        report["truncation"] = src.truncation
    if opts.report_json is not None:
        write_json(opts.report_json, report)
    if opts.report_html is not None:
        from rtclean.offline.report_html import write_html

        write_html(opts.report_html, report, thumbs.pick(), threshold=threshold)
    return report
