"""Argument handling of `rtclean clean` and `rtclean interpolate` (the CLI
module only wires them in)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rtclean.config import Config
from rtclean.errors import RtcleanError


def add_clean_arguments(c: argparse.ArgumentParser) -> None:
    c.add_argument("input", nargs="+", help="video files and/or directories of video files")
    c.add_argument("-o", "--output", required=True,
                   help="output directory; or, with one input file, an output file name (e.g. out.mp4)")
    c.add_argument("--live", action="store_true", help="use only past frames (what the live view shows)")
    c.add_argument("--lossless", action="store_true", help="write FFV1 in Matroska (exact pixels)")
    c.add_argument("--report", metavar="R.json",
                   help="single-file form: write the JSON report here (and the HTML report as R.html)")
    c.add_argument("--mode", choices=("repair", "drop"), default="repair",
                   help="repair: replace broken frames (default); drop: keep only accepted frames")
    c.add_argument("--roi", metavar="X,Y,W,H", help="classify only this region of the picture")
    c.add_argument("--fps", type=float, metavar="F",
                   help="write F frames per second, interpolating between cleaned frames (e.g. 60)")
    c.add_argument("--no-audio", action="store_true", help="leave the sound track out")
    c.add_argument("--jobs", "-j", type=int, metavar="N",
                   help="files cleaned at once (default: one per core, at most 4)")


def run_clean(args: argparse.Namespace, cfg: Config) -> int:
    import sys

    from rtclean.offline.batch import Job, cores_per_job, default_jobs, exit_status, is_single_form, plan, run_batch
    from rtclean.offline.job import CleanOptions
    from rtclean.offline.progress import ProgressBar
    from rtclean.offline.roi import Roi

    if args.fps is not None and not 1 <= args.fps <= 240:
        raise RtcleanError(f"--fps {args.fps:g}: expected a frame rate in [1, 240]")
    if args.jobs is not None and args.jobs < 1:
        raise RtcleanError(f"--jobs {args.jobs}: expected at least 1")
    opts = CleanOptions(live=args.live, lossless=args.lossless, mode=args.mode,
                        roi=Roi.parse(args.roi) if args.roi else None, fps=args.fps,
                        audio=not args.no_audio)
    if is_single_form(args.input, args.output):
        out = Path(args.output)
        if args.report:
            rep = Path(args.report)
            opts.report_json, opts.report_html = rep, rep.with_suffix(".html")
        jobs = [Job(0, Path(args.input[0]), out, opts)]
    else:
        if args.report:
            raise RtcleanError("--report is for the single-file form (clean INPUT -o OUTPUT.mp4); "
                               "a batch writes <output name>.report.json and .report.html beside each output")
        outdir = Path(args.output)
        if outdir.exists() and not outdir.is_dir():
            raise RtcleanError(f"{outdir}: exists and is not a directory (several inputs need an output directory)")
        jobs = plan(args.input, outdir, opts)
    workers = min(args.jobs or default_jobs(), len(jobs))
    for job in jobs:
        job.options.encoder_threads = cores_per_job(workers)
    results = run_batch(cfg, jobs, workers, ProgressBar(len(jobs)))
    if len(results) > 1:
        failed = sum(bool(r.error) for r in results)
        cut = sum(bool(r.truncation) for r in results)
        print(f"{len(results) - failed} of {len(results)} files cleaned into {args.output}"
              + (f", {failed} failed" if failed else "") + (f", {cut} truncated" if cut else ""))
    sys.stdout.flush()
    return exit_status(results)


def register_interpolate(sub, common) -> None:
    i = sub.add_parser("interpolate", help="write N frames between two pictures (optical-flow interpolation)")
    common(i)
    i.add_argument("a", metavar="A.png", help="first picture (time 0)")
    i.add_argument("b", metavar="B.png", help="second picture (time 1), same size")
    i.add_argument("-n", type=int, required=True, metavar="N", help="intermediate frames to write")
    i.add_argument("-o", "--output", required=True, metavar="DIR", help="directory for frame_001.png ...")
    i.set_defaults(func=_cmd_interpolate)


def _cmd_interpolate(args: argparse.Namespace) -> int:
    from rtclean.cli import _config, _level, _setup_logging
    from rtclean.offline.interpolate import run

    cfg = _config(args)
    _setup_logging(_level(args, cfg, batch=True))
    paths = run(args.a, args.b, args.n, args.output, cfg.repair.flow_width)
    print(f"{args.output}: {len(paths)} frames between {args.a} and {args.b}")
    return 0
