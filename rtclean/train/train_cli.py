"""``rtclean train`` and ``rtclean eval detect``.

Nothing heavy is imported here: ``rtclean --help`` must not load
TensorFlow, and training imports it only when it runs.
"""

from __future__ import annotations

import argparse
import json
import logging

log = logging.getLogger(__name__)


def _logging(args: argparse.Namespace) -> None:
    from rtclean.cli import _setup_logging

    _setup_logging("debug" if args.verbose else "warning" if args.quiet else "info")


def cmd_train(args: argparse.Namespace) -> int:
    from rtclean.train.trainer import TrainOptions, parse_size, train

    _logging(args)
    opts = TrainOptions(data=args.data, out=args.out, epochs=args.epochs, seed=args.seed,
                        size=parse_size(args.size), val_split=args.val_split, preprocess=args.preprocess,
                        val_clips=args.val_clips)
    card = train(opts)
    val = card["validation"].get("int8") or {}
    def pct(v):
        return "n/a" if v is None else f"{100 * v:.2f}%"
    print(f"{args.out}: classes {card['classes']}, input {card['input_size']}, threshold {card['threshold']}; "
          f"validation ({card['validation']['frames']} frames) recall {pct(val.get('recall'))}, "
          f"FPR {pct(val.get('fpr'))}; int8 vs Keras max |diff| {card['export_check']['max_abs_diff_frame']:.4f}")
    return 0


def cmd_eval_detect(args: argparse.Namespace) -> int:
    from rtclean.train.evaluate import run_eval
    from rtclean.train.synth import parse_dvr_size

    _logging(args)
    report = run_eval(args.data or [], args.clips or [], args.model, args.out, frames=args.frames,
                      seed=args.seed, standard=args.standard, breakup=args.breakup, sim=args.sim,
                      dvr_quality=args.dvr, dvr_kbps=args.dvr_h264, interlaced=args.interlaced,
                      precision=args.precision, dvr_size=parse_dvr_size(args.dvr_size) if args.dvr_size else None,
                      comb=args.comb)
    for name, s in report["sets"].items():
        for det, r in s["detectors"].items():
            rec = "n/a" if r["recall"] is None else f"{100 * r['recall']:.2f}%"
            fpr = "n/a" if r["fpr"] is None else f"{100 * r['fpr']:.2f}%"
            auc = "n/a" if r["roc_auc"] is None else f"{r['roc_auc']:.4f}"
            print(f"{name} {det}: recall {rec}, FPR {fpr}, AUC {auc} ({s['frames']} frames)")
    if "untouched" in report:
        print("untouched clips false positives: " + json.dumps(report["untouched"]["false_positives"]))
    print(f"report: {args.out}/report.html")
    return 0


def register(sub, common) -> None:
    """Add this module's sub-commands to the `rtclean` parser."""
    t = sub.add_parser("train", help="train a two-class frame model (needs the [train] extra)")
    common(t)
    t.add_argument("--data", nargs="+", required=True, metavar="DIR",
                   help="dataset folders, each with two class folders (e.g. breakup/ and clean/), or one "
                        "of them when the folders together hold both")
    t.add_argument("--out", required=True, metavar="NAME.tflite",
                   help="int8 model; NAME.f32.tflite and NAME.json are written beside it")
    t.add_argument("--epochs", type=int, default=8)
    t.add_argument("--seed", type=int, default=1)
    t.add_argument("--size", default="96x128", metavar="WxH", help="model input (fields stacked), default 96x128")
    t.add_argument("--preprocess", type=int, choices=(1, 2, 3), default=1,
                   help="input preprocessing version (rtclean/detect/tflite.py): 2 samples columns, "
                        "about 1 ms faster per frame; 3 adds a line-impulse channel (default 1)")
    t.add_argument("--val-split", type=float, default=0.2, metavar="F",
                   help="share of frames (whole clips when labels.jsonl says which) held out for validation")
    t.add_argument("--val-clips", nargs="+", metavar="CLIP",
                   help="hold out exactly these clips (labels.jsonl 'clip', with or without the extension) "
                        "for validation, in every data folder; replaces --val-split")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("eval", help="evaluate detectors")
    esub = e.add_subparsers(dest="eval_command", required=True)
    d = esub.add_parser("detect", help="TFLite model and classical detector side by side: report.json + report.html")
    common(d)
    d.add_argument("--data", nargs="+", metavar="DIR", help="labelled folders (class folders, labels.jsonl)")
    d.add_argument("--clips", nargs="+", metavar="PATH",
                   help="clips (or folders of clips): simulated breakup on the fly, and each untouched")
    d.add_argument("--model", metavar="PATH", help="TFLite model (default: only the classical detector)")
    d.add_argument("--out", required=True, metavar="REPORT_DIR")
    d.add_argument("--frames", type=int, default=250, help="simulated frames per clip")
    d.add_argument("--seed", type=int, default=77, help="simulation seed (use one not used in training)")
    d.add_argument("--standard", choices=("pal", "ntsc"), default="pal")
    d.add_argument("--breakup", type=float, default=0.5, help="share of simulated frames with breakup")
    d.add_argument("--sim", choices=("analog", "image"), default="image", help="simulator")
    d.add_argument("--dvr", type=int, default=0, metavar="Q",
                   help="store the simulated frames as an MJPEG DVR would (JPEG quality Q, 4:2:0) before "
                        "detecting: breakup as recorded files show it (default 0: as captured)")
    d.add_argument("--dvr-h264", type=int, default=0, metavar="KBPS",
                   help="store the simulated frames as an H.264 DVR stream at KBPS kbit/s (low-latency libx264, "
                        "keyframe every 25 frames) before detecting (default 0: off)")
    d.add_argument("--interlaced", action="store_true",
                   help="weave the clips' frames as an interlaced camera with motion gives them (even lines "
                        "from frame t, odd lines from t + 1), for the simulated set and the untouched check")
    d.add_argument("--dvr-size", metavar="WxH",
                   help="scale the simulated frames (and the untouched clips) to the size a DVR records at, "
                        "e.g. 640x480, before --dvr / --dvr-h264 coding: a PAL frame's 576 lines on 480 "
                        "spread each click over two lines")
    d.add_argument("--comb", action="store_true",
                   help="--sim analog --standard ntsc: the capture card combs chroma over two lines, as capture "
                        "chips do, instead of a notch decoder's line-by-line chroma")
    d.add_argument("--precision", choices=("int8", "float32"), default="int8",
                   help="run the model's int8 file (default) or the float32 twin its card names "
                        "(`detect.precision` picks between them at run time)")
    d.set_defaults(func=cmd_eval_detect)
    __import__("rtclean.repair.eval_cli", fromlist=["register"]).register(esub, common)  # `eval repair`
