"""The `rtclean dataset` command group: sample, label, synth.

Heavy imports (PyAV, OpenCV, aiohttp, the simulator) happen only when a
sub-command runs, so `rtclean --help` and the live service stay light.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

EXIT_TRUNCATED = 3  # as `rtclean detect/clean`: processed, but an input was cut short


def _logging(args: argparse.Namespace, default: str = "warning") -> None:
    """Batch commands say only what went wrong unless asked (-v), as detect/clean do."""
    from rtclean.cli import _setup_logging

    _setup_logging("debug" if args.verbose else "warning" if args.quiet else default)


def cmd_sample(args: argparse.Namespace) -> int:
    from rtclean.train.dataset import sample_videos

    _logging(args)

    def on_video(v) -> None:
        # One line per problem, as it happens; the good videos go on.
        if v.error:
            print(f"rtclean: {v.error}", file=sys.stderr, flush=True)
        elif v.warning:
            print(f"rtclean: warning: {v.warning}; sampled the {v.frames} frames that decoded",
                  file=sys.stderr, flush=True)

    report = sample_videos(args.videos, args.out, every=args.every, count=args.count,
                           classes=args.classes, on_video=on_video)
    print(report.summary())
    if report.written and not report.failed:
        print(f"next: rtclean dataset label {args.out}")
    if report.failed:
        return 1
    return EXIT_TRUNCATED if report.truncated else 0


def cmd_label(args: argparse.Namespace) -> int:
    from rtclean.train.label_server import serve

    _logging(args, "info")  # one line per decision: a record of the session
    try:
        asyncio.run(serve(args.dir, args.host, args.port, announce=lambda s: print(s, flush=True)))
    except KeyboardInterrupt:  # a second Ctrl-C during shutdown
        pass
    print("stopped", flush=True)
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from rtclean.errors import RtcleanError
    from rtclean.train.synth import Variety, parse_dvr_size, synth_dataset

    _logging(args)
    sizes = tuple(None if s.lower() == "native" else parse_dvr_size(s) for s in args.dvr_size or ())
    if sizes and not args.dvr:
        raise RtcleanError("--dvr-size sets the size of the DVR passes: give their share with --dvr F too")
    variety = Variety(passes=args.passes, demo=args.demo, compress=args.compress, dvr=args.dvr,
                      dvr_codec=args.dvr_codec, interlaced=args.interlaced, dvr_sizes=sizes,
                      speeds=tuple(args.speed or ()), osd=args.osd, comb=args.comb)
    result = synth_dataset(clips=args.clips, out=args.out, frames=args.frames, seed=args.seed,
                           standard=args.standard, breakup=args.breakup, sim=args.sim, variety=variety)
    print(result["summary"])
    return 0


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{n}: must be 1 or more")
    return n


def _share(text: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number from 0 to 1") from None
    if not 0.0 <= x <= 1.0:
        raise argparse.ArgumentTypeError(f"{x}: must be from 0 to 1")
    return x


def _port(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a port number") from None
    if not 0 <= n <= 65535:
        raise argparse.ArgumentTypeError(f"{n}: ports are 0-65535 (0: any free port)")
    return n


def register(sub, common) -> None:
    """Add this module's sub-commands to the `rtclean` parser."""
    ds = sub.add_parser("dataset", help="make labelled frame datasets (sample, label, synth)",
                        description="Frame datasets for training a two-class frame filter "
                        "(breakup/clean, or any classes of your own).")
    dsub = ds.add_subparsers(dest="dataset_command", required=True, metavar="{sample,label,synth}")

    s = dsub.add_parser("sample", help="extract frames from videos into a folder to label")
    common(s)
    s.add_argument("videos", nargs="+", metavar="VIDEO", help="video files (or folders of them)")
    s.add_argument("--out", required=True, metavar="DIR", help="dataset folder (created if missing)")
    how = s.add_mutually_exclusive_group()
    how.add_argument("--every", type=_positive, metavar="N", help="every N-th frame (default 10)")
    how.add_argument("--count", type=_positive, metavar="N", help="N frames spread evenly over each video")
    s.add_argument("--classes", default="breakup,clean", metavar="A,B",
                   help="class folders to create (default breakup,clean)")
    s.set_defaults(func=cmd_sample)

    lab = dsub.add_parser("label", help="sort a folder's frames into its class folders in the browser")
    common(lab)
    lab.add_argument("dir", metavar="DIR", help="dataset folder (frames + class folders)")
    lab.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    lab.add_argument("--port", type=_port, default=8090, help="port (default 8090; 0: any free port)")
    lab.set_defaults(func=cmd_label)

    sy = dsub.add_parser("synth", help="labelled frames made by the analog simulator from real clips")
    common(sy)
    sy.add_argument("--clips", nargs="+", required=True, metavar="PATH",
                    help="video files or folders of videos (the content)")
    sy.add_argument("--out", required=True, metavar="DIR", help="dataset folder")
    sy.add_argument("--frames", type=_positive, default=200, metavar="N",
                    help="frames in all, spread over the clips and passes (default 200)")
    sy.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    sy.add_argument("--standard", choices=("pal", "ntsc"), default="pal", help="video standard (default pal)")
    sy.add_argument("--breakup", type=_share, default=0.5, metavar="F",
                    help="share of degraded frames (default 0.5)")
    sy.add_argument("--sim", choices=("analog", "image"), default="analog",
                    help="simulator: the analog channel or the image-domain one (default analog)")
    sy.add_argument("--passes", type=_positive, default=1, metavar="K",
                    help="content passes per clip: the clip as is, then random crops/mirrors/levels (default 1)")
    sy.add_argument("--demo", type=int, default=0, metavar="K",
                    help="extra passes of procedural FPV scenery as content (default 0)")
    sy.add_argument("--compress", type=_share, default=0.0, metavar="F",
                    help="share of passes JPEG-compressed before the simulator (default 0)")
    sy.add_argument("--dvr", type=_share, default=0.0, metavar="F",
                    help="share of passes stored as a goggle DVR after the simulator (default 0)")
    sy.add_argument("--dvr-codec", choices=("mjpeg", "h264", "mix"), default="mjpeg",
                    help="that DVR: mjpeg (JPEG 35-90, 4:2:0), h264 (a 1-6 Mbit/s stream, low-latency "
                         "like a goggle's encoder) or mix (each DVR pass one of the two; default mjpeg)")
    sy.add_argument("--dvr-size", nargs="+", metavar="WxH",
                    help="sizes that DVR records at, one drawn per DVR pass; 'native' is the simulator's "
                         "own size (e.g. 640x480 720x480 native: a PAL frame's 576 lines scaled onto 480 "
                         "as many goggles record them; default: native only)")
    sy.add_argument("--interlaced", type=_share, default=0.0, metavar="F",
                    help="share of passes whose content is woven as an interlaced camera gives it (even lines "
                         "from frame t, odd from t + 1) before the simulator (default 0)")
    sy.add_argument("--speed", nargs="+", type=_positive, metavar="K",
                    help="content speed-ups, one drawn per pass: the clip played K times as fast, every K-th "
                         "frame (e.g. 1 2 4 6: FPV moves faster than most clips; default: as recorded)")
    sy.add_argument("--osd", type=_share, default=0.0, metavar="F",
                    help="share of clip passes with a flight controller's OSD drawn over the content, "
                         "artificial horizon included, before the simulator (default 0)")
    sy.add_argument("--comb", type=_share, default=0.0, metavar="F",
                    help="NTSC, analog simulator: share of passes decoded by a capture card that combs chroma "
                         "over two lines, as capture chips do, instead of a notch decoder (default 0)")
    sy.set_defaults(func=cmd_synth)
