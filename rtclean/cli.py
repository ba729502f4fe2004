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
    pipeline = LivePipeline(cfg, source, duration_s=args.duration, wait_for_source=args.wait_for_source)
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
    from rtclean.offline.commands import run_clean

    cfg = _config(args)
    _setup_logging(_level(args, cfg, batch=True))
    return run_clean(args, cfg)  # single file or batch; exit status as _truncated()


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


def cmd_check(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rtclean.service.check import FAIL, run_check

    cfg = _config(args)  # an invalid config already exits 2 here, naming the key
    _setup_logging("warning")
    findings = run_check(cfg, args.config, Path(__file__).resolve().parent.parent)
    print("rtclean check:")
    for f in findings:
        print(f.line())
    failed = [f for f in findings if f.level == FAIL]
    print(f"{len(failed)} problem(s) found" if failed else "ready")
    return 1 if failed else 0


def cmd_soak(args: argparse.Namespace) -> int:
    from rtclean.service.soak import format_soak, run_soak

    cfg = _config(args)
    _setup_logging(_level(args, cfg, batch=True))
    result = run_soak(cfg, args.minutes, sample_s=args.sample_s, keep_dir=args.keep)
    print(json.dumps(result, indent=1) if args.json else format_soak(result))
    return 0


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
    r.add_argument("--wait-for-source", action="store_true",
                   help="a capture device missing at start is retried (NO SIGNAL meanwhile) instead of "
                        "failing: what the systemd service uses")
    r.set_defaults(func=cmd_run)

    d = sub.add_parser("detect", help="score every frame of a video file for breakup")
    common(d)
    d.add_argument("input", help="video file")
    d.add_argument("--json", metavar="OUT.json", help="write per-frame scores here")
    d.set_defaults(func=cmd_detect)

    c = sub.add_parser("clean", help="repair the breakup in video files (several in parallel)")
    common(c)
    from rtclean.offline.commands import add_clean_arguments, register_interpolate

    add_clean_arguments(c)
    c.set_defaults(func=cmd_clean)
    register_interpolate(sub, common)

    b = sub.add_parser("bench", help="measure per-stage speed and live latency at 720x576")
    common(b)
    b.add_argument("--json", action="store_true", help="print JSON")
    b.add_argument("--frames", type=int, default=300, help="frames per stage measurement")
    b.add_argument("--live-seconds", type=float, default=8.0, help="duration of the live-path run")
    b.set_defaults(func=cmd_bench)

    k = sub.add_parser("check", help="check config, model, runtime, capture device and free space")
    common(k)
    k.add_argument("--demo", action="store_true", help="check with the built-in simulated feed as the source")
    k.set_defaults(func=cmd_check)

    so = sub.add_parser("soak", help="run the demo while recording for N minutes: RSS, drops, latency, files")
    common(so)
    so.add_argument("--minutes", type=float, default=30.0, help="how long (default 30)")
    so.add_argument("--sample-s", type=float, default=10.0, help="RSS sampling period in seconds")
    so.add_argument("--keep", metavar="DIR", help="record into DIR and keep the files (default: a temporary directory)")
    so.add_argument("--json", action="store_true", help="print JSON")
    so.set_defaults(func=cmd_soak)

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
