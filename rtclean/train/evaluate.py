"""``rtclean eval detect``: detectors side by side on labelled frames.

Metrics are plain numpy (no sklearn at run time); the report is JSON plus
an HTML page with inline SVG plots (rtclean/train/report.py).
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rtclean.detect.repeat import RepeatedFrame
from rtclean.errors import RtcleanError

log = logging.getLogger(__name__)


def confusion(y: np.ndarray, pred: np.ndarray) -> dict[str, int]:
    y = np.asarray(y, bool)
    pred = np.asarray(pred, bool)
    return {"tp": int((y & pred).sum()), "fp": int((~y & pred).sum()),
            "tn": int((~y & ~pred).sum()), "fn": int((y & ~pred).sum())}


def _ratio(a: int, b: int) -> float | None:
    return a / b if b else None


def summary(y: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    """Precision, recall, F1, FPR (None where undefined), confusion matrix
    and ROC AUC of ``scores`` against ``y`` at ``threshold`` (score >= t is
    positive, as the pipeline decides)."""
    y = np.asarray(y, bool)
    scores = np.asarray(scores, np.float64)
    c = confusion(y, scores >= threshold)
    precision = _ratio(c["tp"], c["tp"] + c["fp"])
    recall = _ratio(c["tp"], c["tp"] + c["fn"])
    f1 = (2 * precision * recall / (precision + recall)) if precision and recall else (
        0.0 if precision is not None and recall is not None else None)
    return {"n": int(y.size), "positives": int(y.sum()), "negatives": int((~y).sum()), "threshold": threshold,
            "precision": precision, "recall": recall, "f1": f1, "fpr": _ratio(c["fp"], c["fp"] + c["tn"]),
            "confusion": c, "roc_auc": roc_auc(y, scores)}


def roc_auc(y: np.ndarray, scores: np.ndarray) -> float | None:
    """Probability that a random positive outscores a random negative (ties
    count half): the Mann-Whitney U statistic with average ranks."""
    y = np.asarray(y, bool)
    s = np.asarray(scores, np.float64)
    npos, nneg = int(y.sum()), int((~y).sum())
    if npos == 0 or nneg == 0:
        return None
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    ranks = np.empty(len(s), np.float64)
    # average rank over each run of tied scores
    starts = np.r_[0, np.nonzero(np.diff(sorted_s))[0] + 1]
    ends = np.r_[starts[1:], len(s)]
    avg = (starts + ends - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(avg, ends - starts)
    u = ranks[y].sum() - npos * (npos + 1) / 2.0
    return float(u / (npos * nneg))


def roc_curve(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds), thresholds falling; starts at (0, 0)."""
    y = np.asarray(y, bool)
    s = np.asarray(scores, np.float64)
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]  # last index of each distinct score
    tp = np.cumsum(y)[last]
    fp = np.cumsum(~y)[last]
    npos, nneg = max(int(y.sum()), 1), max(int((~y).sum()), 1)
    return np.r_[0.0, fp / nneg], np.r_[0.0, tp / npos], np.r_[np.inf, s[last]]


def pick_threshold(y: np.ndarray, scores: np.ndarray, max_fpr: float = 0.005,
                   lo: float = 0.05, hi: float = 0.95) -> float:
    """The lowest threshold (most recall) whose false-positive rate on
    ``y``/``scores`` stays at or under ``max_fpr``, within [lo, hi]; 0.5
    when there are no negatives to measure it on."""
    y = np.asarray(y, bool)
    neg = np.sort(np.asarray(scores, np.float64)[~y])[::-1]
    if neg.size == 0:
        return 0.5
    allowed = int(np.floor(max_fpr * neg.size))  # negatives that may score at or above t
    # just above the (allowed+1)-th highest negative score
    t = float(np.nextafter(neg[allowed], 1.0)) if allowed < neg.size else lo
    return float(np.clip(t, lo, hi))


# --------------------------------------------------------------------------- evaluation runs
#
# Every detector sees exactly the same frames in the same run. Labelled
# folders are frame pairs: each detector is reset, shown the previous frame,
# then scored on the frame (the classical detector's running levels then
# come from one frame only: it is built for streams, which the simulated
# clips give it). Simulated clips and untouched clips are streams: frames go
# through every detector in order, as on the live path.

CNR_BINS_DB = (-np.inf, 6.0, 9.0, 12.0, 15.0, np.inf)
MARGIN_BINS = (-np.inf, -1.5, -1.0, -0.5, 0.0, 0.5, np.inf)  # image simulator link margin
# Damaged-line share of breakup frames (the simulators' ground truth; a
# frame counts as breakup from 1 %): the faintest frames, a few lines of
# clicks or grain, are where detectors part, and a recall figure means
# little without knowing how many of them a set holds.
DAMAGE_BINS = (-np.inf, 0.025, 0.1, 0.5, np.inf)
HIST_BINS = 20
ROC_POINTS = 200


@dataclass(slots=True)
class Scores:
    """Per-frame ground truth and scores of every detector for one set."""

    y: list[bool] = field(default_factory=list)
    kind: list[str | None] = field(default_factory=list)
    cnr_db: list[float | None] = field(default_factory=list)
    margin: list[float | None] = field(default_factory=list)
    damage: list[float | None] = field(default_factory=list)  # damaged-line share of breakup frames, when known
    scores: dict[str, list[float]] = field(default_factory=dict)

    def add(self, y: bool, kind: str | None, cnr_db, margin, scores: dict[str, float],
            damage: float | None = None) -> None:
        self.y.append(bool(y))
        self.kind.append(kind if y else None)
        self.cnr_db.append(cnr_db)
        self.margin.append(margin)
        self.damage.append(float(damage) if y and damage is not None else None)
        for name, s in scores.items():
            self.scores.setdefault(name, []).append(float(s))

    def extend(self, other: "Scores") -> None:
        self.y += other.y
        self.kind += other.kind
        self.cnr_db += other.cnr_db
        self.margin += other.margin
        self.damage += other.damage
        for name, s in other.scores.items():
            self.scores.setdefault(name, []).extend(s)


@dataclass(slots=True)
class EvalDetector:
    name: str
    detector: object  # rtclean.detect.base.Detector
    threshold: float
    source: str  # model path or "classical"
    times_ms: list[float] = field(default_factory=list)
    # the pipeline's no-signal check (blue/black/frozen screens), for the row
    # that scores what `rtclean detect` decides per frame
    nosignal: object | None = None
    # the pipeline's decision over time (rtclean.detect.decide.Decider): its
    # verdict on the last frame scored is ``decided``, reported as the extra
    # row NAME_decided (the `breakup` flag `rtclean detect` writes)
    decider: object | None = None
    decided: float = 0.0
    _t: float = 0.0
    repeat: RepeatedFrame = field(default_factory=RepeatedFrame)

    def score(self, image: np.ndarray) -> float:
        t0 = time.perf_counter()
        result = self.repeat.verdict(image) if self.nosignal is not None else None
        if result is None:
            result = self.detector.detect(image)
            if self.nosignal is not None:  # the `rtclean detect` row: a repeated frame keeps its verdict
                self.repeat.remember(image, result)
        s = result.score
        if self.nosignal is not None and self.nosignal.check(image) is not None:
            s = 1.0
        self.times_ms.append((time.perf_counter() - t0) * 1000.0)
        if self.decider is not None:
            from rtclean.frames import DetectResult

            self.decided = float(self.decider.update(DetectResult(score=float(s)), self._t).breakup)
            self._t += 1.0 / DECIDE_FPS
        return float(s)

    def reset(self) -> None:
        self.detector.reset()
        self.repeat.reset()
        if self.nosignal is not None:
            self.nosignal.reset()
        if self.decider is not None:
            self.decider.reset()
            self._t = 0.0


DECIDED = "_decided"
DECIDE_FPS = 25.0  # only the run length (for SIGNAL LOST) depends on it, not the verdicts


def _rows(dets: list[EvalDetector], image: np.ndarray) -> dict[str, float]:
    """Every detector's score of one frame, plus the decided rows."""
    row = {d.name: d.score(image) for d in dets}
    row.update({d.name + DECIDED: d.decided for d in dets if d.decider is not None})
    return row


def _names(dets: list[EvalDetector]) -> list[tuple[str, float]]:
    """(row name, threshold) of every reported row: the detectors, then the
    decided rows (0/1 verdicts, threshold 0.5)."""
    return [(d.name, d.threshold) for d in dets] + [(d.name + DECIDED, 0.5) for d in dets if d.decider is not None]


def make_detectors(model: str | None, precision: str = "int8") -> list[EvalDetector]:
    from rtclean.config import Config
    from rtclean.detect.classical import ClassicalDetector

    from rtclean.detect.nosignal import NoSignalCheck

    # Every detector's score is calibrated so that its operating point is
    # 0.5 (TFLiteDetector maps the threshold in the model's card there):
    # one threshold, the configuration's, for all rows.
    from rtclean.detect.decide import Decider

    cfg = Config().detect
    threshold = float(cfg.threshold)
    frozen = cfg.frozen_frames
    out = []
    if model:
        from rtclean.detect import load_fused
        from rtclean.detect.tflite import load_variant

        alone = load_variant(model, precision, num_threads=1)
        out.append(EvalDetector("tflite", alone, threshold, str(alone.model_path)))
        out.append(EvalDetector("classical", ClassicalDetector(), threshold, "classical"))
        fused = load_fused(Path(model), precision=precision)
        pair = f"{fused.model_path} + companion {fused.companion.model_path.name}" if fused.companion is not None \
            else str(fused.model_path)
        out.append(EvalDetector("rtclean", fused, threshold,
                                f"classical + {pair} + no-signal check (what `rtclean detect` scores per frame)",
                                nosignal=NoSignalCheck(frozen), decider=Decider(cfg, DECIDE_FPS)))
    else:
        out.append(EvalDetector("classical", ClassicalDetector(), threshold, "classical"))
        out.append(EvalDetector("rtclean", ClassicalDetector(), threshold,
                                "classical + no-signal check (what `rtclean detect` scores per frame)",
                                nosignal=NoSignalCheck(frozen), decider=Decider(cfg, DECIDE_FPS)))
    return out


def score_folders(dirs: list[str], dets: list[EvalDetector]) -> Scores:
    from rtclean.train import data

    ds = data.load_index(dirs, one_class_ok=True)  # clean frames alone measure false alarms
    sc = Scores()
    for s in ds.samples:
        cur, prev = data.load_pair(s)
        for d in dets:
            d.reset()
            d.score(prev)  # context: the detectors' previous frame, the decision's previous verdict
        row = _rows(dets, cur)
        rec = s.record or {}
        sc.add(bool(s.label), rec.get("kind") or (ds.classes[1] if s.label else None), rec.get("cnr_db"),
               rec.get("link_margin"), row, rec.get("damaged_lines"))
    return sc


def score_sim_clips(clips: list[Path], frames: int, seed: int, dets: list[EvalDetector],
                    standard: str = "pal", breakup: float = 0.5, sim: str = "image",
                    dvr_quality: int = 0, dvr_kbps: int = 0, interlaced: bool = False,
                    dvr_size: tuple[int, int] | None = None, comb: bool = False) -> tuple[Scores, dict]:
    """Every detector on simulated breakup over ``clips`` (``comb``: the
    analog simulator's NTSC capture card combs chroma); with
    ``dvr_quality`` the frames are first stored as an MJPEG DVR would, with
    ``dvr_kbps`` as an H.264 DVR stream at that bitrate (one per clip),
    with ``dvr_size`` (W, H) scaled to the size a DVR records at (before
    its coding, ``dvr_scale``); with ``interlaced`` the content is woven
    from two frames (``interlace``) before the simulator sees it."""
    from rtclean.train.synth import (H264Dvr, SimSettings, dvr_roundtrip, dvr_scale, frame_class, interlace,
                                     link_figures, read_frames, simulate, standard_size)

    settings = SimSettings(standard, breakup, sim)
    sc = Scores()
    skipped = {"ambiguous": 0, "frozen": 0}
    for ci, clip in enumerate(clips):
        for d in dets:
            d.reset()
        h264 = H264Dvr(dvr_kbps) if dvr_kbps else None
        if interlaced:
            content = interlace(read_frames(clip, frames + 1, loop=True), standard_size(standard))
        else:
            content = read_frames(clip, frames, loop=True)
        for sf in simulate(content, seed * 1000 + ci, settings, comb=comb):
            image = dvr_scale(sf.image, dvr_size) if dvr_size else sf.image
            image = h264(image) if h264 else dvr_roundtrip(image, dvr_quality) if dvr_quality else image
            row = _rows(dets, image)  # every frame: detectors keep their context
            cls = frame_class(sf.label.kind, sf.label.damaged_lines)
            if cls is None:
                skipped["frozen" if sf.label.kind == "frozen" else "ambiguous"] += 1
                continue
            fig = link_figures(sf)
            sc.add(cls == "breakup", sf.label.kind, fig["cnr_db"], fig["link_margin"], row, sf.label.damaged_lines)
    return sc, skipped


def score_untouched(clips: list[Path], dets: list[EvalDetector], interlaced: bool = False,
                    dvr_size: tuple[int, int] | None = None) -> dict:
    """False positives on the clips as they are (woven, at their own size,
    with ``interlaced``; scaled to ``dvr_size`` as a DVR records them, not
    coded)."""
    from rtclean.train.synth import dvr_scale, interlace, read_frames

    per_clip = []
    for clip in clips:
        for d in dets:
            d.reset()
        n = 0
        names = _names(dets)
        fp = {name: 0 for name, _ in names}
        for image in (interlace(read_frames(clip)) if interlaced else read_frames(clip)):
            n += 1
            if dvr_size:
                image = dvr_scale(image, dvr_size)
            row = _rows(dets, image)
            for name, t in names:
                fp[name] += row[name] >= t
        per_clip.append({"clip": clip.name, "frames": n, "false_positives": fp})
    total = sum(c["frames"] for c in per_clip)
    totals = {name: sum(c["false_positives"][name] for c in per_clip) for name, _ in _names(dets)}
    return {"clips": per_clip, "frames": total, "false_positives": totals,
            "fp_rate": {k: (v / total if total else None) for k, v in totals.items()}}


def _bins(values: list, edges) -> np.ndarray:
    v = np.array([np.nan if x is None else x for x in values], np.float64)
    idx = np.digitize(v, edges[1:-1])
    idx[np.isnan(v)] = -1
    return idx


def _edge_label(lo: float, hi: float, unit: str) -> str:
    if not np.isfinite(lo):
        return f"< {hi:g}{unit}"
    if not np.isfinite(hi):
        return f">= {lo:g}{unit}"
    return f"{lo:g} .. {hi:g}{unit}"


def analyse(sc: Scores, dets: list[EvalDetector]) -> dict:
    """Metrics of every detector on one set: overall, per kind, per CNR (or
    link margin) range, per damaged-line share (when the labels give it),
    plus ROC points and score histograms for the plots."""
    y = np.array(sc.y, bool)
    out: dict = {"frames": int(y.size), "positives": int(y.sum()), "negatives": int((~y).sum()), "detectors": {}}
    kinds = sorted({k for k in sc.kind if k})
    use_cnr = any(v is not None for v in sc.cnr_db)
    values, edges, unit = (sc.cnr_db, CNR_BINS_DB, " dB") if use_cnr else (sc.margin, MARGIN_BINS, "")
    out["range_axis"] = "cnr_db" if use_cnr else "link_margin"
    bin_idx = _bins(values, edges)
    kind_arr = np.array([k or "" for k in sc.kind])
    damage_idx = _bins(sc.damage, DAMAGE_BINS)  # -1: clean, or not known
    for name, threshold in _names(dets):
        s = np.array(sc.scores.get(name, []), np.float64)
        if s.size != y.size:
            continue
        res = summary(y, s, threshold)
        pred = s >= threshold
        res["per_kind"] = {k: {"frames": int((kind_arr == k).sum()),
                               "recall": float(pred[kind_arr == k].mean())} for k in kinds}
        ranges = []
        for b in range(len(edges) - 1):
            m = bin_idx == b
            if not m.any():
                continue
            pos, neg = m & y, m & ~y
            ranges.append({"range": _edge_label(edges[b], edges[b + 1], unit), "positives": int(pos.sum()),
                           "negatives": int(neg.sum()),
                           "recall": float(pred[pos].mean()) if pos.any() else None,
                           "fpr": float(pred[neg].mean()) if neg.any() else None})
        res["per_range"] = ranges
        res["per_damage"] = [{"range": _edge_label(100 * DAMAGE_BINS[b], 100 * DAMAGE_BINS[b + 1], " %"),
                              "positives": int((damage_idx == b).sum()),
                              "recall": float(pred[damage_idx == b].mean())}
                             for b in range(len(DAMAGE_BINS) - 1) if (damage_idx == b).any()]
        fpr, tpr, _ = roc_curve(y, s) if y.any() and (~y).any() else (np.zeros(0), np.zeros(0), None)
        if fpr.size > ROC_POINTS:
            keep = np.unique(np.linspace(0, fpr.size - 1, ROC_POINTS).round().astype(int))
            fpr, tpr = fpr[keep], tpr[keep]
        res["roc"] = {"fpr": [round(float(v), 5) for v in fpr], "tpr": [round(float(v), 5) for v in tpr]}
        edges_h = np.linspace(0, 1, HIST_BINS + 1)
        res["histogram"] = {"edges": [round(float(e), 3) for e in edges_h],
                            "positive": np.histogram(np.clip(s[y], 0, 1), edges_h)[0].tolist(),
                            "negative": np.histogram(np.clip(s[~y], 0, 1), edges_h)[0].tolist()}
        out["detectors"][name] = res
    return out


def run_eval(data_dirs: list[str], clips: list[str], model: str | None, out_dir: str, frames: int = 250,
             seed: int = 77, standard: str = "pal", breakup: float = 0.5, sim: str = "image",
             dvr_quality: int = 0, dvr_kbps: int = 0, interlaced: bool = False, precision: str = "int8",
             dvr_size: tuple[int, int] | None = None, comb: bool = False) -> dict:
    """The whole ``rtclean eval detect`` run; writes report.json and report.html."""
    from rtclean.train.report import write_html
    from rtclean.train.synth import list_clips

    if not data_dirs and not clips:
        raise RtcleanError("nothing to evaluate: give --data folders and/or --clips")
    if frames < 1:
        raise RtcleanError(f"--frames must be at least 1, got {frames}")
    if not 0 <= dvr_quality <= 100:
        raise RtcleanError(f"--dvr must be a JPEG quality 1-100 (0: off), got {dvr_quality}")
    if dvr_kbps and not 100 <= dvr_kbps <= 100_000:
        raise RtcleanError(f"--dvr-h264 must be a bitrate of 100-100000 kbit/s (0: off), got {dvr_kbps}")
    if dvr_kbps and dvr_quality:
        raise RtcleanError("--dvr and --dvr-h264 exclude each other: one DVR stores the frames")
    if comb:
        from rtclean.train.synth import check_comb

        check_comb(standard, sim)
    clip_paths = list_clips(clips) if clips else []
    dets = make_detectors(model, precision)
    t0 = time.monotonic()
    report: dict = {"date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                    "detectors": {d.name: {"source": d.source, "threshold": d.threshold} for d in dets},
                    "sets": {}}
    for d in dets:
        if d.decider is not None:
            report["detectors"][d.name + DECIDED] = {
                "source": f"{d.name} + the decision over time (detect.release, detect.clean_frames): "
                          "the `breakup` flag of `rtclean detect`", "threshold": 0.5}
    combined = Scores()
    if data_dirs:
        sc = score_folders(data_dirs, dets)
        report["sets"]["folders"] = {"data": [str(p) for p in data_dirs], **analyse(sc, dets)}
        combined.extend(sc)
    if clip_paths:
        for d in dets:
            d.times_ms.clear()  # speed is measured on the simulated 720x576 (720x480) streams
        sc, skipped = score_sim_clips(clip_paths, frames, seed, dets, standard, breakup, sim, dvr_quality,
                                       dvr_kbps, interlaced, dvr_size, comb)
        size_text = f"{dvr_size[0]}x{dvr_size[1]}" if dvr_size else None
        report["sets"]["simulated"] = {"clips": [p.name for p in clip_paths], "frames_per_clip": frames,
                                       "seed": seed, "seeds": [seed * 1000 + i for i in range(len(clip_paths))],
                                       "simulator": sim, "standard": standard, "skipped": skipped,
                                       "dvr_jpeg_quality": dvr_quality or None, "dvr_h264_kbps": dvr_kbps or None,
                                       "interlaced": interlaced,
                                       "dvr_size": size_text, "comb": comb,
                                       **analyse(sc, dets)}
        for d in dets:
            report["detectors"][d.name]["median_ms_per_frame"] = round(float(np.median(d.times_ms)), 4) \
                if d.times_ms else None
        combined.extend(sc)
        report["untouched"] = score_untouched(clip_paths, dets, interlaced, dvr_size)
        report["untouched"]["interlaced"] = interlaced
        report["untouched"]["dvr_size"] = size_text
    if data_dirs and clip_paths:
        report["sets"]["all"] = analyse(combined, dets)
    report["seconds"] = round(time.monotonic() - t0, 1)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "report.json", "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)
    write_html(report, out / "report.html")
    return report
