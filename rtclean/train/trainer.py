"""``rtclean train``: class folders -> Keras CNN -> int8 + float32 TFLite,
with a JSON sidecar and an export check through the live detector class.

The validation split is made by clip (labels.jsonl ``clip``; each frame is
its own group without labels) so neighbouring, near-identical frames of one
clip never sit on both sides and flatter the metrics.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rtclean.detect.tflite import PREPROCESS_VERSIONS
from rtclean.errors import RtcleanError
from rtclean.train import data
from rtclean.train import evaluate as metrics

log = logging.getLogger(__name__)

TF_MISSING = "training needs TensorFlow: pip install 'rtclean[train]'"
BATCH = 32
BAND_LOSS_WEIGHT = 0.5
MAX_FPR = 0.005  # issue 3's target false-positive rate, used to pick the threshold
VERIFY_PAIRS = 16


@dataclass(slots=True)
class TrainOptions:
    data: list[str]
    out: str
    epochs: int = 8
    seed: int = 1
    size: tuple[int, int] = (96, 128)  # (W, H)
    val_split: float = 0.2
    preprocess: int = data.PREPROCESS_VERSION  # rtclean/detect/tflite.py preprocessing version
    lr: float = 2e-3
    val_clips: list[str] | None = None  # these clips are the validation split (val_split is then unused)


def import_tf():
    """TensorFlow, or one clear line."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow as tf  # noqa: F401
        import keras  # noqa: F401
    except ImportError:
        raise RtcleanError(TF_MISSING) from None
    return tf


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise RtcleanError(f"--size {text}: expected WxH, e.g. 96x128") from None
    if w < 16 or w % 16 or h < 128 or h % 128:
        raise RtcleanError(f"--size {text}: width must be a multiple of 16 and height a multiple of 128")
    return w, h


def split(ds: data.Dataset, frac: float, seed: int,
          clips: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val): whole groups go to validation until ``frac`` of
    the frames is reached; both classes must stay in training. With
    ``clips``, exactly those groups are the validation split: a threshold
    picked on clips chosen for being unlike the training ones, and the same
    clips from one run to the next however many folders are added."""
    if not 0.0 <= frac < 1.0:
        raise RtcleanError(f"--val-split must be in [0, 1), got {frac}")
    by_group: dict[str, list[int]] = {}
    for i, s in enumerate(ds.samples):
        by_group.setdefault(s.group, []).append(i)
    n = len(ds.samples)
    y = ds.labels
    if clips:
        return _split_by_name(by_group, n, y, clips)
    groups = sorted(by_group)
    rng = np.random.default_rng(seed)
    rng.shuffle(groups)
    val: list[int] = []
    if frac > 0 and len(groups) > 1:
        for g in groups:
            if len(val) >= frac * n:
                break
            if len(val) + len(by_group[g]) <= max(frac * n * 1.5, 1):
                val.extend(by_group[g])
    is_val = np.zeros(n, bool)
    is_val[val] = True
    if frac > 0 and (not is_val.any() or len(set(y[~is_val])) < 2):
        # too few groups for a grouped split: a random split of frames
        is_val = rng.random(n) < frac
    if len(set(y[~is_val])) < 2:
        raise RtcleanError("training needs frames of both classes outside the validation split")
    return np.nonzero(~is_val)[0], np.nonzero(is_val)[0]


def _split_by_name(by_group: dict[str, list[int]], n: int, y: np.ndarray,
                   clips: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The ``--val-clips`` split: a name matches a group (labels.jsonl
    ``clip``) whole or without its extension, so ``box_handheld_640x480``
    names every frame made from box_handheld_640x480.mp4."""
    is_val = np.zeros(n, bool)
    for name in clips:
        hit = [g for g in by_group if name in (g, Path(g).stem)]
        if not hit:
            known = ", ".join(sorted(by_group)[:12]) + (" ..." if len(by_group) > 12 else "")
            raise RtcleanError(f"--val-clips {name}: no clip of that name in the data (clips: {known})")
        for g in hit:
            is_val[by_group[g]] = True
    if len(set(y[is_val])) < 2:
        raise RtcleanError(f"--val-clips {' '.join(clips)}: the validation split needs frames of both classes")
    if len(set(y[~is_val])) < 2:
        raise RtcleanError("training needs frames of both classes outside the validation split")
    return np.nonzero(~is_val)[0], np.nonzero(is_val)[0]


CUT_SHARE = 0.15  # pairs whose previous frame is swapped for another shot's (scene cuts are not breakup)
NOISE_MAX = 0.01  # luma noise sigma at model resolution, well below the mildest snow
WEIGHT_DECAY = 1e-4
PATIENCE = 6  # epochs without a better validation AUC before training stops
PREPROCESS_TEXT = {
    1: "luma, fields stacked (even lines on top), INTER_AREA, /255 (rtclean.detect.tflite.preprocess, v1)",
    2: "luma, W columns sampled (nearest), fields stacked (even lines on top), lines INTER_AREA, /255 "
       "(rtclean.detect.tflite.preprocess, v2)",
    3: "v2 luma of both frames, then both frames' same-field line impulse (max of Y, Cr, Cb; "
       "fields stacked, lines MAX-pooled), /255 (rtclean.detect.tflite.frame_planes, v3)",
}
CHANNEL_NAMES = {2: ["current frame", "previous frame"],
                 4: ["current frame", "previous frame", "current frame line impulse", "previous frame line impulse"]}
THRESHOLD_CAP = 0.99  # highest threshold picked: confident models need more than the 0.95 default


def _augment(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Photometric jitter the same on both frames of a pair (capture cards
    and cameras differ in level and gamma; breakup does not depend on it),
    weak independent noise, and scene cuts: the previous frame replaced by
    another sample's, with the label kept, so a change of shot is never
    evidence of breakup (the untouched clips include hard cuts). Impulse
    planes (channels 2 and 3, version 3) are contrasts: they take the gain
    only, and no noise (noise at model resolution is not what noise does to
    them); a cut swaps the previous frame's impulse plane with its luma."""
    n = len(x)
    gain = rng.uniform(0.8, 1.2, (n, 1, 1, 1)).astype(np.float32)
    off = rng.uniform(-0.08, 0.08, (n, 1, 1, 1)).astype(np.float32)
    gamma = rng.uniform(0.75, 1.33, (n, 1, 1, 1)).astype(np.float32)
    out = np.power(np.clip(x[..., :2], 1e-6, 1.0), gamma) * gain + off
    imp = x[..., 2:] * gain  # empty unless version 3
    if x.shape[-1] >= 2 and n > 1:
        cut = np.nonzero(rng.random(n) < CUT_SHARE)[0]
        if len(cut):
            donor = (cut + rng.integers(1, n, len(cut))) % n
            out[cut, ..., 1] = out[donor, ..., 1]
            if imp.shape[-1] == 2:
                imp[cut, ..., 1] = imp[donor, ..., 1]
    sigma = rng.uniform(0.0, NOISE_MAX, (n, 1, 1, 1)).astype(np.float32)
    out += rng.standard_normal(out.shape, dtype=np.float32) * sigma
    if imp.shape[-1]:
        out = np.concatenate([out, imp], -1)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def fit(model, arrays: dict, train_idx: np.ndarray, epochs: int, seed: int, lr: float,
        val_idx: np.ndarray | None = None, patience: int = PATIENCE) -> list[dict]:
    """Train; with validation frames, the weights of the epoch with the best
    validation ROC AUC are kept and training stops after ``patience``
    epochs without improvement (the first model overfit after a few epochs)."""
    import tensorflow as tf

    y = arrays["y"]
    pos = float(y[train_idx].mean())
    # balance the classes: each contributes half of the frame loss
    cw = np.where(y > 0.5, 0.5 / max(pos, 1e-6), 0.5 / max(1 - pos, 1e-6)).astype(np.float32)
    steps = max(1, int(np.ceil(len(train_idx) / BATCH)))
    sched = tf.keras.optimizers.schedules.CosineDecay(lr, decay_steps=steps * max(epochs, 1), alpha=0.05)
    opt = tf.keras.optimizers.AdamW(sched, weight_decay=WEIGHT_DECAY)
    bce = tf.keras.losses.BinaryCrossentropy(reduction="none")

    @tf.function
    def step(xb, yb, wb, bb, bwb):
        with tf.GradientTape() as tape:
            out = model(xb, training=True)
            lf = tf.reduce_sum(bce(yb[:, None], out["frame"]) * wb) / tf.reduce_sum(wb)
            lb_each = tf.keras.losses.binary_crossentropy(bb[..., None], out["bands"][..., None])
            lb = tf.reduce_sum(tf.reduce_mean(lb_each, -1) * bwb) / tf.maximum(tf.reduce_sum(bwb), 1.0)
            loss = lf + BAND_LOSS_WEIGHT * lb
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return lf, lb

    rng = np.random.default_rng(seed)
    history = []
    best = None  # (val AUC, epoch, weights)
    for ep in range(epochs):
        t0 = time.monotonic()
        order = rng.permutation(train_idx)
        lfs, lbs = [], []
        for k in range(0, len(order), BATCH):
            b = np.sort(order[k:k + BATCH])
            lf, lb = step(_augment(arrays["x"][b], rng), y[b], cw[b], arrays["bands"][b], arrays["band_weight"][b])
            lfs.append(float(lf))
            lbs.append(float(lb))
        rec = {"epoch": ep + 1, "frame_loss": float(np.mean(lfs)), "band_loss": float(np.mean(lbs)),
               "seconds": round(time.monotonic() - t0, 2)}
        if val_idx is not None and len(val_idx) and len(set(y[val_idx] > 0.5)) == 2:
            yv = y[val_idx] > 0.5
            scores = predict_keras(model, arrays["x"][val_idx])
            rec["val_auc"] = metrics.roc_auc(yv, scores)
            rec["val_recall_at_fpr"] = metrics.summary(yv, scores, metrics.pick_threshold(yv, scores, MAX_FPR))["recall"]
        history.append(rec)
        log.info("epoch %d/%d: frame loss %.4f, band loss %.4f, val AUC %s, val recall at FPR %.1f%% %s (%.1f s)",
                 ep + 1, epochs, rec["frame_loss"], rec["band_loss"], rec.get("val_auc"), MAX_FPR * 100,
                 rec.get("val_recall_at_fpr"), rec["seconds"])
        if "val_auc" in rec:
            if best is None or rec["val_auc"] > best[0]:
                best = (rec["val_auc"], ep + 1, [w.copy() for w in model.get_weights()])
            elif ep + 1 - best[1] >= patience:
                log.info("early stop: no better validation AUC since epoch %d", best[1])
                break
    if best is not None:
        model.set_weights(best[2])
        log.info("kept the weights of epoch %d (validation AUC %.4f)", best[1], best[0])
        history.append({"best_epoch": best[1], "best_val_auc": best[0]})
    return history


def predict_keras(model, x: np.ndarray) -> np.ndarray:
    out = []
    for k in range(0, len(x), 128):
        out.append(np.asarray(model(x[k:k + 128], training=False)["frame"]).ravel())
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def predict_tflite(path: str | Path, x: np.ndarray) -> np.ndarray:
    """Frame scores of a .tflite model on preprocessed inputs (quantised as
    TFLiteDetector does)."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path), num_threads=1)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    frame_out = next(o for o in interp.get_output_details() if int(np.prod(o["shape"])) == 1)
    scale, zero = inp["quantization"]
    o_scale, o_zero = frame_out["quantization"]
    scores = np.empty(len(x), np.float32)
    for i in range(len(x)):
        v = x[i:i + 1]
        if np.dtype(inp["dtype"]) == np.int8:
            v = np.clip(np.rint(v / scale) + zero, -128, 127).astype(np.int8)
        interp.set_tensor(inp["index"], v)
        interp.invoke()
        raw = interp.get_tensor(frame_out["index"]).ravel()[0]
        scores[i] = (float(raw) - o_zero) * o_scale if o_scale else float(raw)
    return np.clip(scores, 0.0, 1.0)


def train(opts: TrainOptions) -> dict:
    """Train, export and verify; returns the sidecar contents."""
    out = Path(opts.out)
    if out.suffix != ".tflite":
        raise RtcleanError(f"--out {out}: expected a NAME.tflite path")
    ds = data.load_index(opts.data)  # before TensorFlow: bad folders fail fast
    if opts.epochs < 1:
        raise RtcleanError(f"--epochs must be at least 1, got {opts.epochs}")
    train_idx, val_idx = split(ds, opts.val_split, opts.seed, opts.val_clips)  # a bad --val-clips fails fast too
    tf = import_tf()
    from rtclean.train import export
    from rtclean.train.model import build_model

    tf.keras.utils.set_random_seed(opts.seed)
    w, h = opts.size
    t0 = time.monotonic()
    if opts.preprocess not in PREPROCESS_VERSIONS:
        raise RtcleanError(f"--preprocess must be one of {PREPROCESS_VERSIONS}, got {opts.preprocess}")
    arrays = data.load_arrays(ds, h, w, version=opts.preprocess)
    t_load = time.monotonic() - t0
    log.info("dataset: %d frames (%d %s), %d for training, %d for validation; loaded in %.1f s",
             len(ds.samples), int(ds.labels.sum()), ds.classes[1], len(train_idx), len(val_idx), t_load)
    model = build_model(h, w, data.channels_for(opts.preprocess))
    t1 = time.monotonic()
    history = fit(model, arrays, train_idx, opts.epochs, opts.seed, opts.lr, val_idx)
    t_train = time.monotonic() - t1

    out.parent.mkdir(parents=True, exist_ok=True)
    f32_path = out.with_suffix(".f32.tflite")
    with tempfile.TemporaryDirectory(prefix="rtclean-export-") as tmp:
        f32_path.write_bytes(export.to_float32(model, Path(tmp) / "f32"))
        out.write_bytes(export.to_int8(model, arrays["x"][train_idx], Path(tmp) / "int8", opts.seed))
    info = export.check_int8(out)

    y = arrays["y"]
    val_report: dict = {"frames": int(len(val_idx))}
    threshold = 0.5
    if len(val_idx):
        k_scores = predict_keras(model, arrays["x"][val_idx])
        q_scores = predict_tflite(out, arrays["x"][val_idx])
        yv = y[val_idx] > 0.5
        threshold = metrics.pick_threshold(yv, q_scores, MAX_FPR, hi=THRESHOLD_CAP)
        val_report.update(keras=metrics.summary(yv, k_scores, 0.5), int8=metrics.summary(yv, q_scores, threshold),
                          int8_at_0_5=metrics.summary(yv, q_scores, 0.5))
    rng = np.random.default_rng(opts.seed)
    pick = rng.choice(len(ds.samples), min(VERIFY_PAIRS, len(ds.samples)), replace=False)
    verify = export.compare_with_detector(model, out, [data.load_pair(ds.samples[i]) for i in sorted(pick)],
                                          opts.preprocess)

    sidecar = {
        "model": out.name, "float32_model": f32_path.name, "classes": list(ds.classes),
        "positive_class": ds.classes[1], "input": info["input"], "input_size": f"{w}x{h}",
        "channels": CHANNEL_NAMES[data.channels_for(opts.preprocess)], "preprocess_version": opts.preprocess,
        "preprocess": PREPROCESS_TEXT[opts.preprocess],
        "bands": 16, "band_order": "picture bands top to bottom, each the max over both fields",
        "threshold": round(float(threshold), 4), "threshold_rule": f"lowest with validation FPR <= {MAX_FPR}",
        "ops": info["ops"], "validation": val_report, "export_check": verify, "history": history,
        "train_frames": int(len(train_idx)), "seconds": {"load": round(t_load, 1), "train": round(t_train, 1)},
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "data": [str(Path(d).resolve()) for d in opts.data], "seed": opts.seed, "epochs": opts.epochs,
        "validation_clips": sorted({ds.samples[i].group for i in val_idx}) if opts.val_clips else None,
        "tensorflow": tf.__version__,
    }
    with open(out.with_suffix(".json"), "w", encoding="utf-8") as f:
        json.dump(sidecar, f, indent=1)
    return sidecar
