"""Breakup detector backed by a TFLite model (CPU or Coral Edge TPU).

Model contract - what a trained ``breakup.tflite`` must look like
-----------------------------------------------------------------
Input: one tensor of shape ``[1, H, W, C]``, dtype float32 or int8. H, W and
C are read from the model; C is 1 (current frame) or 2 (current, previous).

Preprocessing (``preprocess`` below; training must use the same function).
Its version is the model card's ``preprocess_version`` (1 without a card):

1. luma: BGR -> Y (``cv2.COLOR_BGR2GRAY``).
2. fields stacked: the even lines (top field) are resized to W x H/2 and put
   on top, the odd lines (bottom field) below them, both with INTER_AREA.
   Breakup is line- and field-structured (one field of a frame is often
   hit alone); resizing the interlaced frame as is would average the two
   fields together and blur exactly that structure.
   Version 2 first samples W columns (nearest, as the classical detector's
   view does) and then averages lines only: OpenCV's INTER_AREA over a
   non-integer column ratio (720 -> 96) took two thirds of the detect time,
   and a click streak (8 px or more) keeps its full contrast in the
   sampled column instead of being averaged with its surroundings.
3. values scaled to [0, 1] (Y / 255).
4. C == 2: channel 0 is the current frame, channel 1 the previous one
   (the current frame again for the first frame after ``reset()``).
5. int8 input: ``q = round(x / scale) + zero_point`` with the input
   tensor's quantisation, clipped to [-128, 127].

Outputs: a frame score (one element, e.g. shape [1, 1] or [1]), a sigmoid
probability of breakup, and optionally band scores of shape ``[1, nbands]``
(nbands > 1), top to bottom of the picture. The outputs are told apart by
size. int8 outputs are dequantised with their scale / zero point. Scores are
clipped to [0, 1]; band scores are resampled to ``NBANDS`` bands when the
model has another count. A model without band output gets the frame score
for every band (the repair then treats the whole frame as damaged).

Anything else (not 4-D input, H not even, C not 1 or 2, another dtype, no
one-element output) is a ModelError with one line.

Calibration: a model's own operating threshold (chosen at training time for
a low false-positive rate, e.g. 0.95) is read from the JSON card beside it
(``NAME.json``, key ``threshold``, written by ``rtclean train``) and mapped to
0.5 by ``calibrate``, so ``detect.threshold`` means the same for every
detector. The raw model output is kept in ``features["model_score"]``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import numpy as np

from rtclean.detect.base import Detector
from rtclean.detect.runtime import load_model
from rtclean.errors import ModelError
from rtclean.frames import DetectResult

log = logging.getLogger(__name__)

NBANDS = 16
PREPROCESS_VERSIONS = (1, 2)


def preprocess(image: np.ndarray, h: int, w: int, version: int = 1) -> np.ndarray:
    """BGR frame -> H x W float32 luma in [0, 1], fields stacked (see module doc)."""
    y = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    if version == 2 and y.shape[1] != w:
        y = cv2.resize(y, (w, y.shape[0]), interpolation=cv2.INTER_NEAREST)  # columns only
    half = h // 2
    top = cv2.resize(y[0::2], (w, half), interpolation=cv2.INTER_AREA)
    bottom = cv2.resize(y[1::2], (w, h - half), interpolation=cv2.INTER_AREA)
    out = np.empty((h, w), np.float32)
    np.multiply(top, 1 / 255, out=out[:half], casting="unsafe")
    np.multiply(bottom, 1 / 255, out=out[half:], casting="unsafe")
    return out


def calibrate(x, threshold: float):
    """Piecewise-linear map of [0, threshold] to [0, 0.5] and [threshold, 1]
    to [0.5, 1]: monotonic (ROC unchanged), the model's threshold lands on 0.5."""
    t = min(max(float(threshold), 1e-3), 1 - 1e-3)
    x = np.asarray(x, np.float32)
    return np.where(x < t, x * (0.5 / t), 0.5 + (x - t) * (0.5 / (1 - t))).astype(np.float32)


def _card(model_path: str | Path) -> tuple[Path, dict | None]:
    """The model's JSON card (``NAME.json``) and its contents, None without one."""
    card = Path(model_path).with_suffix(".json")
    if not card.is_file():
        return card, None
    try:
        doc = json.loads(card.read_text(encoding="utf-8"))
    except (ValueError, OSError) as e:
        raise ModelError(f"{card}: unreadable model card ({e})") from None
    if not isinstance(doc, dict):
        raise ModelError(f"{card}: unreadable model card (not a JSON object)")
    return card, doc


def card_threshold(model_path: str | Path) -> float:
    """The operating threshold in the model's JSON card, 0.5 without one."""
    card, doc = _card(model_path)
    if doc is None:
        return 0.5
    try:
        t = float(doc["threshold"])
    except (ValueError, TypeError, KeyError) as e:
        raise ModelError(f"{card}: unreadable model card ({e!r})") from None
    if not 0.0 < t < 1.0:
        raise ModelError(f"{card}: threshold must be in (0, 1), got {t}")
    return t


def card_preprocess(model_path: str | Path) -> int:
    """The preprocessing version in the model's card (1 without one)."""
    card, doc = _card(model_path)
    v = (doc or {}).get("preprocess_version", 1)
    if v not in PREPROCESS_VERSIONS:
        raise ModelError(f"{card}: preprocess_version {v!r} is not one this rtclean knows "
                         f"({', '.join(map(str, PREPROCESS_VERSIONS))})")
    return int(v)


def resample_bands(scores: np.ndarray, n: int = NBANDS) -> np.ndarray:
    """Map model band scores onto ``n`` picture bands (each takes the band
    covering its centre line)."""
    m = scores.size
    if m == n:
        return scores.astype(np.float32)
    idx = ((np.arange(n) + 0.5) * m / n).astype(int)
    return scores[np.minimum(idx, m - 1)].astype(np.float32)


class TFLiteDetector(Detector):
    name = "tflite"

    def __init__(self, model_path: str | Path, delegate: str = "cpu", num_threads: int = 1,
                 threshold: float | None = None, preprocess_version: int | None = None) -> None:
        self.threshold = card_threshold(model_path) if threshold is None else float(threshold)
        self.preprocess_version = card_preprocess(model_path) if preprocess_version is None \
            else int(preprocess_version)
        loaded = load_model(model_path, delegate, num_threads)
        self.runtime = loaded.runtime
        self.delegate = loaded.delegate
        self.model_path = Path(model_path)
        self._interp = loaded.interpreter
        self._setup_io()
        self._prev: np.ndarray | None = None  # the previous frame's input plane, as fed
        log.info("TFLite detector: %s via %s (%s), input %dx%dx%d %s, preprocessing v%d", self.model_path.name,
                 self.runtime, self.delegate, self._w, self._h, self._c, self._in_dtype.__name__,
                 self.preprocess_version)

    def _setup_io(self) -> None:
        where = str(self.model_path)
        ins = self._interp.get_input_details()
        if len(ins) != 1:
            raise ModelError(f"{where}: model must have one input, has {len(ins)}")
        inp = ins[0]
        shape = [int(s) for s in inp["shape"]]
        if len(shape) != 4 or shape[0] != 1:
            raise ModelError(f"{where}: model input must be [1, H, W, C], got {shape}")
        _, self._h, self._w, self._c = shape
        if self._c not in (1, 2) or self._h < 2 or self._h % 2 or self._w < 1:
            raise ModelError(f"{where}: model input [1, H, W, C] needs even H and C in (1, 2), got {shape}")
        self._in_dtype = np.dtype(inp["dtype"]).type
        if self._in_dtype not in (np.float32, np.int8):
            raise ModelError(f"{where}: model input must be float32 or int8, got {np.dtype(inp['dtype']).name}")
        self._in_index = inp["index"]
        self._in_scale, self._in_zero = inp["quantization"]
        if self._in_dtype is np.int8 and not self._in_scale:
            raise ModelError(f"{where}: int8 model input has no quantisation scale")
        self._frame_out = None
        self._band_out = None
        for out in self._interp.get_output_details():
            size = int(np.prod(out["shape"]))
            entry = (out["index"], *out["quantization"], np.dtype(out["dtype"]).type)
            if size == 1 and self._frame_out is None:
                self._frame_out = entry
            elif size > 1 and self._band_out is None:
                self._band_out = entry
        if self._frame_out is None:
            raise ModelError(f"{where}: model has no one-element frame score output")
        self._buf = np.empty((1, self._h, self._w, self._c), self._in_dtype)

    def _read(self, entry) -> np.ndarray:
        index, scale, zero, dtype = entry
        raw = self._interp.get_tensor(index).ravel()
        if dtype is np.int8 or dtype is np.uint8:
            return (raw.astype(np.float32) - zero) * scale
        return raw.astype(np.float32)

    def detect(self, image: np.ndarray) -> DetectResult:
        cur = preprocess(image, self._h, self._w, self.preprocess_version)
        if self._in_dtype is np.int8:  # quantised once: the next frame reuses it as its previous
            cur = np.clip(np.rint(cur / self._in_scale) + self._in_zero, -128, 127).astype(np.int8)
        self._buf[0, :, :, 0] = cur
        if self._c == 2:
            self._buf[0, :, :, 1] = self._prev if self._prev is not None else cur
        self._prev = cur
        self._interp.set_tensor(self._in_index, self._buf)
        self._interp.invoke()
        raw = float(np.clip(self._read(self._frame_out)[0], 0.0, 1.0))
        score = float(calibrate(raw, self.threshold))
        if self._band_out is not None:
            bands = calibrate(np.clip(resample_bands(self._read(self._band_out)), 0.0, 1.0), self.threshold)
        else:
            bands = np.full(NBANDS, score, np.float32)
        return DetectResult(score=score, bands=bands, features={"model_score": raw})

    def reset(self) -> None:
        self._prev = None
