"""`rtclean clean FILE|DIR... -o OUTDIR`: many DVR files, several at a time.

Each file is cleaned in its own worker process (decode, detect, repair and
encode are CPU-bound and hold the GIL for much of their time, so threads
would not scale). At most ``jobs`` run at once; the default is one per core,
capped at 4 (a Pi 4 or a laptop). One process per file, not a pool: a worker
that dies (FFmpeg crashing on a mangled file) costs only its own file, and
Ctrl-C can stop every worker at once. Workers are forked from a forkserver
that has already imported the heavy modules, so starting one is cheap.

Every file ends in exactly one line: the summary on stdout, or
``rtclean: <why>`` on stderr when it failed; a truncated file adds
``rtclean: warning: ...``. The other files of the batch always complete.
Exit status: 1 if any file failed, else 3 if any was truncated, else 0
(the single-file form keeps exactly the same meaning).

Outputs: ``OUTDIR/<name>`` with the input's container (a directory argument
keeps its tree below OUTDIR), plus ``<name>.report.json`` (DESIGN.md format)
and ``<name>.report.html`` beside each (``flight.avi.report.json``).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import signal
import sys
import threading
from dataclasses import dataclass, replace
from pathlib import Path

from rtclean.config import Config
from rtclean.errors import RtcleanError
from rtclean.offline.job import CleanOptions, clean_one, remove_partial
from rtclean.offline.progress import ProgressBar

log = logging.getLogger(__name__)

# Containers rtclean reads when it scans a directory, and what each is written as.
VIDEO_EXTS = {".avi": ".avi", ".mp4": ".mp4", ".mov": ".mov", ".ts": ".ts", ".mkv": ".mkv",
              ".m4v": ".mp4", ".mts": ".ts", ".m2ts": ".ts"}
EXIT_FAILED, EXIT_TRUNCATED = 1, 3


def default_jobs() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def cores_per_job(workers: int) -> int:
    """The cores each of ``workers`` jobs may use (``CleanOptions.encoder_threads``):
    those the workers leave idle go to the encoder and to a second detect
    thread (one file on two cores)."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))


@dataclass(slots=True)
class Job:
    id: int
    input: Path
    output: Path
    options: CleanOptions


@dataclass(slots=True)
class JobResult:
    id: int
    input: str
    output: str
    error: str | None = None  # one line when the file failed
    truncation: str | None = None
    frames: int = 0
    replaced: int = 0
    output_frames: int = 0
    seconds: float = 0.0
    mode: str = ""
    exit_code: int = 0  # the error's exit status (2: configuration)


# --------------------------------------------------------------------------- planning


def is_single_form(inputs: list[str], output: str) -> bool:
    """``clean INPUT -o OUTPUT.ext``: one file and an output file name (the
    DESIGN.md form). Anything else names an output directory."""
    out = Path(output)
    return (len(inputs) == 1 and not Path(inputs[0]).is_dir() and not out.is_dir()
            and out.suffix.lower() in VIDEO_EXTS)


def plan(inputs: list[str], outdir: Path, opts: CleanOptions) -> list[Job]:
    """One job per video file. A directory contributes every video file below
    it (sorted), written to the same relative path under ``outdir``."""
    pairs: list[tuple[Path, Path]] = []
    for arg in inputs:
        p = Path(arg)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in VIDEO_EXTS
                           and not f.name.startswith("."))
            if not found:
                raise RtcleanError(f"{p}: no video files ({', '.join(sorted(VIDEO_EXTS))}) in this directory")
            pairs += [(f, outdir / f.relative_to(p)) for f in found]
        else:
            pairs.append((p, outdir / p.name))  # a missing file fails as its own job
    jobs, seen = [], {}
    for i, (src, dst) in enumerate(pairs):
        ext = ".mkv" if opts.lossless else VIDEO_EXTS.get(dst.suffix.lower(), ".mp4")
        dst = dst.with_suffix(ext)
        key = dst.resolve()
        if key in seen:
            raise RtcleanError(f"{src} and {seen[key]} would both be written to {dst}; "
                               "clean them into different output directories")
        seen[key] = src
        o = replace(opts, report_json=dst.with_name(dst.name + ".report.json"),
                    report_html=dst.with_name(dst.name + ".report.html"))
        jobs.append(Job(i, src, dst, o))
    return jobs


# --------------------------------------------------------------------------- one job


def run_job(cfg: Config, job: Job, progress=None) -> JobResult:
    """Clean one file; every failure becomes one line in the result."""
    res = JobResult(job.id, str(job.input), str(job.output))
    try:
        report = clean_one(cfg, job.input, job.output, job.options, progress)
    except RtcleanError as e:
        res.error, res.exit_code = str(e), e.exit_code
        return res
    except Exception as e:  # a bug or an FFmpeg failure we did not foresee: still one line
        log.debug("%s failed", job.input, exc_info=True)
        res.error, res.exit_code = f"{job.input}: cleaning failed ({type(e).__name__}: {e})", EXIT_FAILED
        return res
    res.truncation = report.get("truncation")
    res.frames = len(report["frames"])
    res.replaced = report["replaced"]
    res.output_frames = report["output_frames"]
    res.seconds = report["seconds"]
    res.mode = report["mode"]
    return res


def _worker(cfg: Config, job: Job, q, log_level: int) -> None:
    """Entry point of a worker process."""
    import cv2

    # The parent handles Ctrl-C (and stops us); no traceback per worker.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # If the parent dies without stopping us (SIGKILL, SIGTERM), nobody
    # collects our output: stop too instead of cleaning on as an orphan.
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with_parent, args=(parent, job.output), daemon=True).start()
    # One OpenCV thread per worker: the workers already fill the cores.
    cv2.setNumThreads(1)
    logging.basicConfig(level=log_level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("libav").setLevel(logging.ERROR)
    res = run_job(cfg, job, lambda done, total: q.put(("progress", job.id, done, total)))
    q.put(("result", job.id, res))


def _exit_with_parent(parent, output: Path) -> None:
    parent.join()  # returns when the parent process is gone
    remove_partial(output)
    os._exit(1)


# --------------------------------------------------------------------------- the batch


def _context():
    try:
        ctx = multiprocessing.get_context("forkserver")
        # Import the heavy modules once in the server; every worker forks from it.
        ctx.set_forkserver_preload(["rtclean.offline.batch", "rtclean.pipeline", "cv2", "av"])
        return ctx
    except ValueError:
        return multiprocessing.get_context("spawn")


def summary_line(r: JobResult) -> str:
    if r.mode == "drop":
        return f"{r.output}: {r.output_frames} frames kept, {r.replaced} dropped in {r.seconds:.1f} s"
    extra = f", written as {r.output_frames} frames" if r.output_frames != r.frames else ""
    return f"{r.output}: {r.frames} frames, {r.replaced} replaced{extra} in {r.seconds:.1f} s"


def run_batch(cfg: Config, jobs: list[Job], workers: int, bar: ProgressBar | None = None,
              quiet: bool = False) -> list[JobResult]:
    """Run ``jobs`` with at most ``workers`` at a time; print one line per
    file as it finishes (unless ``quiet``); return the results in job order."""
    bar = bar or ProgressBar(len(jobs))
    results: dict[int, JobResult] = {}

    def finish(r: JobResult) -> None:
        results[r.id] = r
        bar.file_done(r.id)
        if quiet:
            return
        if r.error:
            bar.print(f"rtclean: {r.error}", sys.stderr)
            return
        bar.print(summary_line(r), sys.stdout)
        if r.truncation:
            bar.print(f"rtclean: warning: {r.truncation}; output covers the {r.frames} frames that decoded",
                      sys.stderr)

    if workers <= 1 or len(jobs) == 1:
        for job in jobs:
            finish(run_job(cfg, job, lambda done, total, i=job.id: bar.update(i, done, total)))
        bar.clear()
        return [results[j.id] for j in jobs]

    ctx = _context()
    q = ctx.Queue()
    pending = list(jobs)
    running: dict[int, multiprocessing.Process] = {}
    level = logging.getLogger("rtclean").getEffectiveLevel()

    def drain(timeout: float) -> None:
        """Handle every message that arrives within ``timeout`` s (then none waiting)."""
        try:
            msg = q.get(timeout=timeout)
            while True:
                if msg[0] == "progress":
                    bar.update(msg[1], msg[2], msg[3])
                else:
                    finish(msg[2])
                    running.pop(msg[1]).join()
                msg = q.get_nowait()
        except queue.Empty:
            pass

    try:
        while pending or running:
            while pending and len(running) < workers:
                job = pending.pop(0)
                p = ctx.Process(target=_worker, args=(cfg, job, q, level), name=f"rtclean-clean-{job.id}")
                p.start()
                running[job.id] = p
            drain(0.2)
            for jid, p in list(running.items()):
                if p.exitcode is not None:
                    # A worker's last message may still be in the pipe when
                    # its exit is seen: read everything before judging.
                    drain(0.5)
                if jid in running and p.exitcode is not None:
                    # Exited without a result (killed, crashed in native code).
                    running.pop(jid)
                    job = jobs[jid]
                    remove_partial(job.output)
                    finish(JobResult(jid, str(job.input), str(job.output),
                                     error=f"{job.input}: worker process died (exit status {p.exitcode})",
                                     exit_code=EXIT_FAILED))
    except BaseException:
        for p in running.values():
            p.terminate()
        for jid, p in running.items():
            p.join()
            remove_partial(jobs[jid].output)
        raise
    finally:
        bar.clear()
    return [results[j.id] for j in jobs]


def exit_status(results: list[JobResult]) -> int:
    if any(r.error for r in results):
        return max(r.exit_code for r in results if r.error)
    if any(r.truncation for r in results):
        return EXIT_TRUNCATED
    return 0

