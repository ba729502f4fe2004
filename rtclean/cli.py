"""The `rtclean` command.

Every user-facing failure is an RtcleanError: printed as one line
``rtclean: <message>`` with its exit status (2 for configuration errors, so
systemd's RestartPreventExitStatus=2 stops a restart loop on a bad config).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from rtclean import __version__
from rtclean.config import Config, load, set_option
from rtclean.errors import ConfigError, RtcleanError

log = logging.getLogger("rtclean")


def _setup_logging(level: str) -> None:
    # Under systemd the journal adds its own timestamps.
    fmt = "%(levelname)s %(name)s: %(message)s" if os.environ.get("JOURNAL_STREAM") \
        else "%(asctime)s %(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=getattr(logging, level.upper()), format=fmt, stream=sys.stderr, force=True)
    # PyAV/FFmpeg chatter (e.g. "non-intra slice in an IDR NAL unit") is not ours to report.
    logging.getLogger("libav").setLevel(logging.ERROR)


def _config(args: argparse.Namespace) -> Config:
    cfg = load(getattr(args, "config", None))
    if getattr(args, "demo", False):
        cfg.source.kind = "demo"
    for item in getattr(args, "set", None) or []:
        if "=" not in item:
            raise ConfigError(f"--set {item}: expected KEY=VALUE, e.g. --set record.segment_s=30")
        key, value = item.split("=", 1)
        set_option(cfg, key.strip(), value)
    return cfg


def _level(args: argparse.Namespace, cfg: Config, batch: bool = False) -> str:
    """The service logs at the configured level; the file commands (batch)
    say only what went wrong unless asked for more with -v."""
    if getattr(args, "verbose", False):
        return "debug"
    if getattr(args, "quiet", False) or (batch and cfg.log_level in ("debug", "info")):
        return "warning"
    return cfg.log_level


# --------------------------------------------------------------------------- commands


def cmd_run(args: argparse.Namespace) -> int:
    cfg = _config(args)  # validate before importing the heavy parts
    _setup_logging(_level(args, cfg))
    from rtclean.pipeline import LivePipeline
    from rtclean.sources import make_source

    source = make_source(cfg.source, duration_s=None)
    pipeline = LivePipeline(cfg, source, duration_s=args.duration)
    pipeline.install_signal_handlers()
    status = pipeline.run()
    log.info("done: %d frames in, %d out, drops %s, repairs %s",
             status["frames"]["in"], status["frames"]["out"], status["drops"], status["repairs"])
    if args.status_json:
        with open(args.status_json, "w", encoding="utf-8") as f:
            json.dump(status, f, indent=1)
    return 0


def cmd_detect(args: argparse.Namespace) -> int:
    from rtclean.offline.files import detect_file

    cfg = _config(args)
    _setup_logging(_level(args, cfg, batch=True))
    report = detect_file(cfg, args.input, args.json)
    n = len(report["frames"])
    broken = sum(f["breakup"] for f in report["frames"])
    print(f"{args.input}: {n} frames, {broken} breakup ({report['detector']})")
    return _truncated(report)


def cmd_clean(args: argparse.Namespace) -> int:
    from rtclean.offline.files import clean_file

    cfg = _config(args)
    _setup_logging(_level(args, cfg, batch=True))
    report = clean_file(cfg, args.input, args.output, live=args.live, lossless=args.lossless,
                        report_path=args.report)
    print(f"{args.output}: {len(report['frames'])} frames, {report['replaced']} replaced "
          f"in {report['seconds']:.1f} s")
    return _truncated(report)


EXIT_TRUNCATED = 3


def _truncated(report: dict) -> int:
    """A truncated input is processed up to where it ends (nothing is lost),
    but the caller is told: one line and exit status 3."""
    if not report.get("truncated"):
        return 0
    print(f"rtclean: warning: {report['truncation']}; output covers the "
          f"{len(report['frames'])} frames that decoded", file=sys.stderr)
    return EXIT_TRUNCATED


def cmd_bench(args: argparse.Namespace) -> int:
    from rtclean.bench import run_bench

    cfg = _config(args)
    _setup_logging("warning")
    result = run_bench(cfg, frames=args.frames, live_seconds=args.live_seconds)
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        from rtclean.bench import format_table

        print(format_table(result))
    return 0


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rtclean", description="Real-time cleaning of analog FPV video.")
    p.add_argument("--version", action="version", version=f"rtclean {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--config", "-c", metavar="PATH", help="YAML configuration (default: built-in defaults)")
        sp.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="override one option, e.g. --set repair.max_hold_ms=500 (repeatable)")
        sp.add_argument("--verbose", "-v", action="store_true", help="debug logging")
        sp.add_argument("--quiet", "-q", action="store_true", help="warnings and errors only")

    r = sub.add_parser("run", help="run the live pipeline (capture, clean, view, record)")
    common(r)
    r.add_argument("--demo", action="store_true", help="use the built-in simulated FPV feed")
    r.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    r.add_argument("--status-json", metavar="PATH", help="write the final status here on exit")
    r.set_defaults(func=cmd_run)

    d = sub.add_parser("detect", help="score every frame of a video file for breakup")
    common(d)
    d.add_argument("input", help="video file")
    d.add_argument("--json", metavar="OUT.json", help="write per-frame scores here")
    d.set_defaults(func=cmd_detect)

    c = sub.add_parser("clean", help="repair the breakup in a video file")
    common(c)
    c.add_argument("input", help="video file")
    c.add_argument("-o", "--output", required=True, help="output video file")
    c.add_argument("--live", action="store_true", help="use only past frames (what the live view shows)")
    c.add_argument("--lossless", action="store_true", help="write FFV1 in Matroska (exact pixels)")
    c.add_argument("--report", metavar="R.json", help="write the per-frame report here")
    c.set_defaults(func=cmd_clean)

    b = sub.add_parser("bench", help="measure per-stage speed and live latency at 720x576")
    common(b)
    b.add_argument("--json", action="store_true", help="print JSON")
    b.add_argument("--frames", type=int, default=300, help="frames per stage measurement")
    b.add_argument("--live-seconds", type=float, default=8.0, help="duration of the live-path run")
    b.set_defaults(func=cmd_bench)

    # Dataset, training and evaluation tools register their own sub-commands
    # (their heavy imports, TensorFlow included, happen only when run).
    from rtclean.train import dataset_cli, train_cli

    dataset_cli.register(sub, common)
    train_cli.register(sub, common)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except RtcleanError as e:
        print(f"rtclean: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
