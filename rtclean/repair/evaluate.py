"""`rtclean eval repair`: repaired frames against the exact ground truth.

Real clips get simulated breakup (rtclean.sim.feed.degrade, at an analog
frame size); the untouched clip is the truth. Which frames are broken comes
from the simulator's labels (the decision is the detector issue's business;
here the question is how good the replacement is), and *where* a frame is
damaged comes from the classical detector by default (``localise="detector"``,
what the live path really has) or from the labels (``"truth"``, the upper
bound of the field/band levels).

Every broken frame with a clean frame before and after its gap is scored,
PSNR (BGR) and SSIM (grey, 11x11 Gaussian window), by:

    raw            the broken frame as received (no repair)
    hold           the last clean frame
    blend          time-weighted average of the clean frames before and after
                   the gap (the original dvr-breakup-cleaner)
    live           rtclean's causal repair (Repairer: field/band/flow/hold)
    live_full      the same with no localisation (whole-frame prediction)
    offline        rtclean's look-ahead repair (Lookahead: field/band/interp)
    offline_full   the same with no localisation (whole interpolated frame)

grouped by gap length and by motion class (ground-truth flow between the
true frame and the one before, median magnitude in pixels per frame).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import av
import cv2
import numpy as np

from rtclean.config import RepairConfig
from rtclean.detect.classical import ClassicalDetector
from rtclean.errors import RtcleanError
from rtclean.frames import LOST, Decision, DetectResult, Frame, Processed
from rtclean.offline.lookahead import Lookahead
from rtclean.repair.flow import FlowEstimator
from rtclean.repair.repairer import Repairer

log = logging.getLogger(__name__)

METHODS = ("raw", "hold", "blend", "live", "live_full", "offline", "offline_full")
VIDEO_EXT = {".mp4", ".avi", ".mkv", ".mov", ".ts", ".m4v"}
GAP_CLASSES = ((1, 1, "1"), (2, 2, "2"), (3, 5, "3-5"), (6, 12, "6-12"), (13, 10 ** 9, "13+"))
# Motion classes by the true median flow (full-resolution px per frame).
STATIC_PX = 0.5
FAST_PX = 4.0


@dataclass
class EvalOptions:
    clips: list[str]
    out: str
    frames: int = 100  # frames per clip
    max_clips: int = 0  # 0 = every clip found
    seed: int = 31
    breakup: float = 0.35
    size: tuple[int, int] = (720, 576)
    fps: float = 25.0
    localise: str = "detector"  # "detector" or "truth"
    repair: RepairConfig = field(default_factory=RepairConfig)


# --------------------------------------------------------------------------- metrics


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean(cv2.absdiff(a, b).astype(np.float32) ** 2))
    return 99.0 if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of the grey pictures (Wang et al. 2004 constants)."""
    x = cv2.cvtColor(a, cv2.COLOR_BGR2GRAY).astype(np.float32)
    y = cv2.cvtColor(b, cv2.COLOR_BGR2GRAY).astype(np.float32)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def g(z):
        return cv2.GaussianBlur(z, (11, 11), 1.5)

    mx, my = g(x), g(y)
    sxx, syy, sxy = g(x * x) - mx * mx, g(y * y) - my * my, g(x * y) - mx * my
    m = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return float(m.mean())


def motion_px(est: FlowEstimator, prev: np.ndarray, cur: np.ndarray) -> float:
    """Median true motion between two frames, full-resolution px per frame."""
    f = est.flow(est.small(prev), est.small(cur))
    return float(np.median(np.linalg.norm(f, axis=2))) * cur.shape[1] / f.shape[1]


def motion_class(px: float) -> str:
    return "static" if px < STATIC_PX else "slow" if px < FAST_PX else "fast"


def gap_class(n: int) -> str:
    for lo, hi, name in GAP_CLASSES:
        if lo <= n <= hi:
            return name
    return GAP_CLASSES[-1][2]


# --------------------------------------------------------------------------- clips


def find_clips(paths: list[str]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(q for q in p.iterdir() if q.suffix.lower() in VIDEO_EXT)
        elif p.is_file():
            out.append(p)
        else:
            raise RtcleanError(f"{p}: no such clip or folder")
    if not out:
        raise RtcleanError(f"no video clips found in {', '.join(paths)}")
    return out


def decode(path: Path, n: int) -> list[np.ndarray]:
    frames = []
    try:
        with av.open(str(path)) as c:
            for f in c.decode(video=0):
                frames.append(f.to_ndarray(format="bgr24"))
                if len(frames) >= n:
                    break
    except av.FFmpegError as e:
        if not frames:
            raise RtcleanError(f"{path}: cannot decode ({e})") from None
        log.warning("%s: decoding stopped after %d frames (%s)", path, len(frames), e)
    if len(frames) < 3:
        raise RtcleanError(f"{path}: only {len(frames)} frames decoded, need at least 3")
    return frames


# --------------------------------------------------------------------------- one clip


@dataclass
class ClipRun:
    name: str
    rows: list[dict]
    examples: list[dict]  # candidates for before/after crops (pictures kept)


def _strip(r: DetectResult) -> DetectResult:
    """No localisation at all: the whole-frame repair the hierarchy replaces."""
    return DetectResult(r.score, None, r.no_signal, {}, None)


def run_clip(path: Path, opts: EvalOptions, seed: int) -> ClipRun:
    from rtclean.sim.feed import degrade

    sims = list(degrade(decode(path, opts.frames), seed=seed, breakup=opts.breakup, fps=opts.fps,
                        size=opts.size))
    fps = opts.fps
    det = ClassicalDetector()
    est = FlowEstimator(180)
    live, live_full = Repairer(opts.repair, fps), Repairer(opts.repair, fps)
    cfg = opts.repair
    off = Lookahead(FlowEstimator(cfg.flow_width).interpolate, cfg.max_hold_ms / 1000.0, cfg)
    off_full = Lookahead(FlowEstimator(cfg.flow_width).interpolate, cfg.max_hold_ms / 1000.0, cfg)
    outs: dict[str, dict[int, Processed]] = {"live": {}, "live_full": {}, "offline": {}, "offline_full": {}}
    run_start = None
    for i, s in enumerate(sims):
        res = det.detect(s.image)
        if opts.localise == "truth":
            lab = s.label
            # any damaged line makes its band damaged (label bands are line fractions)
            res = DetectResult(res.score, (lab.bands > 0).astype(np.float32), None, res.features,
                               np.array(lab.fields, np.float32))
        broken = s.label.broken
        run_start = (run_start if run_start is not None else i) if broken else None
        dec = Decision(breakup=broken, run_ms=(i - run_start) * 1000.0 / fps if broken else 0.0)
        frame = Frame(i, i / fps, s.image, i / fps)
        for name, rep, la, r in (("live", live, off, res), ("live_full", live_full, off_full, _strip(res))):
            clean, action = rep.process(frame, dec, r)
            p = Processed(frame, clean, r, dec, action)
            outs[name][i] = p
            for q in la.push(Processed(frame, clean, r, dec, action)):
                outs["offline" if name == "live" else "offline_full"][q.frame.index] = q
    for q in off.flush():
        outs["offline"][q.frame.index] = q
    for q in off_full.flush():
        outs["offline_full"][q.frame.index] = q

    broken = np.array([s.label.broken for s in sims])
    rows, examples = [], []
    i = 0
    n = len(sims)
    while i < n:
        if not broken[i]:
            i += 1
            continue
        j = i
        while j < n and broken[j]:
            j += 1
        a, b = i - 1, j  # clean frames around the gap [i, j)
        if a >= 0 and b < n:
            for k in range(i, j):
                rows.append(_score(path.name, sims, outs, k, a, b, j - i, est, examples))
        i = j
    return ClipRun(path.name, rows, examples)


def _score(clip: str, sims, outs, k: int, a: int, b: int, gap: int, est: FlowEstimator,
           examples: list[dict]) -> dict:
    s = sims[k]
    truth = s.truth
    alpha = (k - a) / (b - a)
    pics = {
        "raw": s.image,
        "hold": sims[a].image,
        "blend": cv2.addWeighted(sims[a].image, 1.0 - alpha, sims[b].image, alpha, 0.0),
        "live": outs["live"][k].clean,
        "live_full": outs["live_full"][k].clean,
        "offline": outs["offline"][k].clean,
        "offline_full": outs["offline_full"][k].clean,
    }
    px = motion_px(est, sims[k - 1].truth, truth)
    row = {"clip": clip, "index": k, "kind": s.label.kind, "severity": round(float(s.label.severity), 3),
           "damaged_lines": round(float(s.label.damaged_lines), 3), "gap": gap, "gap_class": gap_class(gap),
           "motion_px": round(px, 2), "motion": motion_class(px),
           "live_action": outs["live"][k].action, "offline_action": outs["offline"][k].action,
           "psnr": {m: round(psnr(p, truth), 3) for m, p in pics.items()},
           "ssim": {m: round(ssim(p, truth), 4) for m, p in pics.items()}}
    examples.append({"row": row, "pics": {**{m: pics[m] for m in ("raw", "hold", "blend", "live", "offline")},
                                          "truth": truth}, "bands": s.label.bands})
    # keep memory bounded: only the few most telling examples per clip
    examples.sort(key=lambda e: e["row"]["psnr"]["offline"] - e["row"]["psnr"]["raw"], reverse=True)
    del examples[3:]
    return row


# --------------------------------------------------------------------------- summary


def _mean(rows: list[dict], metric: str, method: str) -> float | None:
    v = [r[metric][method] for r in rows]
    return round(float(np.mean(v)), 3) if v else None


def summarise(rows: list[dict]) -> dict:
    def table(sel: list[dict]) -> dict:
        return {"frames": len(sel),
                "psnr": {m: _mean(sel, "psnr", m) for m in METHODS},
                "ssim": {m: _mean(sel, "ssim", m) for m in METHODS}}

    moving = [r for r in rows if r["motion"] != "static"]
    out = {
        "all": table(rows),
        "moving": table(moving),
        "by_gap": {g: table([r for r in rows if r["gap_class"] == g]) for _, _, g in GAP_CLASSES},
        "by_motion": {m: table([r for r in rows if r["motion"] == m]) for m in ("static", "slow", "fast")},
        "by_live_action": {a: table([r for r in rows if r["live_action"] == a])
                           for a in sorted({r["live_action"] for r in rows})},
        "by_offline_action": {a: table([r for r in rows if r["offline_action"] == a])
                              for a in sorted({r["offline_action"] for r in rows})},
    }
    out["targets"] = targets(rows, moving, out)
    return out


def targets(rows: list[dict], moving: list[dict], s: dict) -> dict:
    """The issue's targets, each with the measured figure and met/not met."""
    mv = s["moving"]["psnr"]

    def gain(x, y):
        return None if mv[x] is None or mv[y] is None else round(mv[x] - mv[y], 3)

    def local_gain(side: str, kind: str) -> dict:
        sel = [r for r in rows if r[f"{side}_action"] == f"repair:{kind}"]
        g = [r["psnr"][side] - r["psnr"][f"{side}_full"] for r in sel]
        return {"frames": len(sel), "gain_db": round(float(np.mean(g)), 3) if g else None,
                "met": bool(g) and float(np.mean(g)) > 0}

    # SIGNAL LOST frames are policy, not repair (after max_hold_ms the pilot
    # must see that the picture is not live): counted on their own, and
    # left out of the "no repaired frame worse than raw" target.
    def worse(side: str, lost: bool) -> int:
        return sum(r["psnr"][side] < r["psnr"]["raw"] - 1e-9 for r in rows
                   if (r[f"{side}_action"] == LOST) == lost)
    t = {
        "live_vs_raw_moving_db": {"value": gain("live", "raw"), "target": 3.0},
        "live_vs_hold_moving_db": {"value": gain("live", "hold"), "target": 2.0},
        "offline_vs_raw_moving_db": {"value": gain("offline", "raw"), "target": 5.0},
        "offline_vs_blend_moving_db": {"value": gain("offline", "blend"), "target": 3.0},
    }
    for v in t.values():
        v["met"] = v["value"] is not None and v["value"] >= v["target"]
    for side in ("live", "offline"):
        for kind in ("pixels", "field", "band"):
            t[f"{side}_{kind}_vs_full"] = local_gain(side, kind)
    for m in ("live", "offline"):
        n = worse(m, False)
        t[f"{m}_frames_worse_than_raw"] = {
            "value": n, "target": 0, "met": n == 0,
            "repaired_frames": sum(r[f"{m}_action"] != LOST for r in rows),
            "lost_frames": sum(r[f"{m}_action"] == LOST for r in rows),
            "lost_frames_worse_than_raw": worse(m, True)}
    return t


def run_eval(opts: EvalOptions) -> dict:
    if opts.localise not in ("detector", "truth"):
        raise RtcleanError(f"eval repair: localise must be detector or truth, got {opts.localise!r}")
    if opts.frames < 3:
        raise RtcleanError(f"eval repair: --frames must be at least 3, got {opts.frames}")
    clips = find_clips(opts.clips)
    if opts.max_clips:
        clips = clips[:opts.max_clips]
    t0 = time.perf_counter()
    rows: list[dict] = []
    examples: list[dict] = []
    per_clip = {}
    for n, c in enumerate(clips):
        r = run_clip(c, opts, opts.seed + n)  # a different breakup pattern per clip
        log.info("%s: %d broken frames scored", c.name, len(r.rows))
        rows += r.rows
        examples += r.examples
        per_clip[c.name] = summarise(r.rows)["all"] if r.rows else {"frames": 0}
    report = {"version": 1, "clips": [c.name for c in clips], "frames_per_clip": opts.frames,
              "seed": opts.seed, "breakup": opts.breakup, "size": list(opts.size), "localise": opts.localise,
              "methods": list(METHODS), "summary": summarise(rows), "per_clip": per_clip,
              "seconds": round(time.perf_counter() - t0, 1), "frames": rows}
    from rtclean.repair.report import write_report

    write_report(report, examples, Path(opts.out))
    return report
