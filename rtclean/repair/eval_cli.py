"""`rtclean eval repair` (registered under the `eval` command of train_cli)."""

from __future__ import annotations

import argparse


def cmd_eval_repair(args: argparse.Namespace) -> int:
    from rtclean.cli import _config, _level, _setup_logging
    from rtclean.repair.evaluate import EvalOptions, run_eval

    cfg = _config(args)
    _setup_logging("info" if not args.quiet and not args.verbose else _level(args, cfg))
    opts = EvalOptions(clips=args.clips, out=args.out, frames=args.frames, max_clips=args.max_clips,
                       seed=args.seed, breakup=args.breakup, localise=args.localise, repair=cfg.repair)
    report = run_eval(opts)
    s = report["summary"]
    mv = s["moving"]["psnr"]
    print(f"{s['all']['frames']} broken frames ({s['moving']['frames']} with motion) in "
          f"{len(report['clips'])} clips; PSNR dB on moving frames: "
          + ", ".join(f"{m} {mv[m]:.2f}" for m in report["methods"] if mv[m] is not None))
    for name, t in s["targets"].items():
        value = t.get("value", t.get("gain_db"))
        lost = (f"; SIGNAL LOST frames apart: {t['lost_frames_worse_than_raw']} of {t['lost_frames']} worse"
                if "lost_frames" in t else "")
        print(f"  {name}: {value} ({'met' if t['met'] else 'NOT met'}{lost})")
    print(f"report: {args.out}/report.html")
    return 0


def register(esub, common) -> None:
    """Add `repair` to the `eval` sub-commands."""
    r = esub.add_parser("repair", help="repair quality on simulated breakup over real clips: report.json + report.html")
    common(r)
    r.add_argument("--clips", nargs="+", required=True, metavar="PATH", help="clips or folders of clips")
    r.add_argument("--out", required=True, metavar="REPORT_DIR")
    r.add_argument("--frames", type=int, default=100, help="frames per clip (default 100)")
    r.add_argument("--max-clips", type=int, default=0, metavar="N", help="only the first N clips (0 = all)")
    r.add_argument("--seed", type=int, default=31, help="simulation seed")
    r.add_argument("--breakup", type=float, default=0.35, help="share of simulated frames with breakup")
    r.add_argument("--localise", choices=("detector", "truth"), default="detector",
                   help="where the damage is: the classical detector's bands/fields, or the simulator's labels")
    r.set_defaults(func=cmd_eval_repair)
