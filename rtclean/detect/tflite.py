"""Breakup detector backed by a TFLite model (CPU or Coral Edge TPU).

Model contract - what a trained ``breakup.tflite`` must look like
-----------------------------------------------------------------
Input: one tensor of shape ``[1, H, W, C]``, dtype float32 or int8. H, W and
C are read from the model; C is 1 (current frame), 2 (current, previous)
or 4 (preprocessing version 3 only: current and previous luma, current and
previous impulse).

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
   Version 3 has version 2's luma (the BGR columns sampled first, which
   gives the same values for less work) plus an impulse plane per frame
   (``ImpulseWorkspace``, channels 2 and 3): per field, how far each line stands out of both
   its same-field neighbours, bright or dark, in Y, Cr or Cb (the largest),
   MAX-pooled (not averaged) to H/2 rows. Line averaging divides a faint
   one-line click by 2.25 before the network sees it; the max keeps its
   full contrast, and scene edges (which differ from one neighbour only)
   give nothing. The previous frame's impulse plane goes in too: a click
   is fresh (FM noise is incoherent in time), a thin horizontal line of
   the scene (court lines, fences, text) is there in both frames. The
   shipped model is version 3 (models/breakup.md): it finds far more faint
   clicks than version 2 but alone also fires on some real clean frames
   (fast pans over fine texture), so its card asks for the ``agree`` fusion
   rule (rtclean/detect/fused.py; docs/training.md, "Recipe I", "Fusion
   with K2").
3. values scaled to [0, 1] (Y / 255).
4. C >= 2: channel 0 is the current frame, channel 1 the previous one
   (the current frame again for the first frame after ``reset()``); C == 4:
   channels 2 and 3 the impulse planes of the current and previous frame.
5. int8 input: ``q = round(x / scale) + zero_point`` with the input
   tensor's quantisation, clipped to [-128, 127]. With rtclean's own input
   quantisation (scale 1/255, zero point -128) that is exactly the uint8
   plane minus 128, which the detector feeds without a float round trip.

Outputs: a frame score (one element, e.g. shape [1, 1] or [1]), a sigmoid
probability of breakup, and optionally band scores of shape ``[1, nbands]``
(nbands > 1), top to bottom of the picture. The outputs are told apart by
size. int8 outputs are dequantised with their scale / zero point. Scores are
clipped to [0, 1]; band scores are resampled to ``NBANDS`` bands when the
model has another count. A model without band output gets the frame score
for every band (the repair then treats the whole frame as damaged).

Anything else (not 4-D input, H not even, C not 1, 2 or 4, C == 4 without
version 3 or the reverse, another dtype, no one-element output) is a
ModelError with one line.

Calibration: a model's own operating threshold (chosen at training time for
a low false-positive rate, e.g. 0.95) is read from the JSON card beside it
(``NAME.json``, key ``threshold``, written by ``rtclean train``) and mapped to
0.5 by ``calibrate``, so ``detect.threshold`` means the same for every
detector. The raw model output is kept in ``features["model_score"]``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from rtclean.detect.base import Detector
from rtclean.detect.runtime import load_model
from rtclean.errors import ModelError
from rtclean.frames import DetectResult

log = logging.getLogger(__name__)

NBANDS = 16
PREPROCESS_VERSIONS = (1, 2, 3)
CHANNELS_V3 = 4  # luma and impulse planes of the current and the previous frame


def _sample_columns(image: np.ndarray, w: int) -> np.ndarray:
    """W columns of the frame, nearest (versions 2 and 3)."""
    if image.shape[1] == w:
        return image
    return cv2.resize(image, (w, image.shape[0]), interpolation=cv2.INTER_NEAREST)


def _luma(y: np.ndarray, h: int, w: int) -> np.ndarray:
    """Fields stacked, lines INTER_AREA-averaged: H x W uint8."""
    half = h // 2
    out = np.empty((h, w), np.uint8)
    cv2.resize(y[0::2], (w, half), dst=out[:half], interpolation=cv2.INTER_AREA)
    cv2.resize(y[1::2], (w, h - half), dst=out[half:], interpolation=cv2.INTER_AREA)
    return out


def _to_unit(plane: np.ndarray) -> np.ndarray:
    """uint8 plane -> float32 in [0, 1] (the model's scale)."""
    out = np.empty(plane.shape, np.float32)
    np.multiply(plane, 1 / 255, out=out, casting="unsafe")  # in float64, as version 1 always did
    return out


def _luma_u8(image: np.ndarray, h: int, w: int, version: int) -> np.ndarray:
    if version >= 2 and image.ndim == 3:
        image = _sample_columns(image, w)  # per-pixel conversion commutes with sampling: 7.5x less work
    y = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    if version >= 2:
        y = _sample_columns(y, w)
    return _luma(y, h, w)


def preprocess(image: np.ndarray, h: int, w: int, version: int = 1) -> np.ndarray:
    """BGR frame -> H x W float32 luma in [0, 1], fields stacked (see module doc).
    Version 3's luma plane is version 2's."""
    return _to_unit(_luma_u8(image, h, w, version))


_KERNEL_3COLS = np.ones((1, 3), np.uint8)


class ImpulseWorkspace:
    """Version 3's impulse plane (see ``impulse``) with its scratch buffers
    kept between frames: the same cv2 operations on freshly allocated
    165 KB arrays cost 7x more (page faults on every new buffer) than the
    arithmetic. One per detector (not thread-safe)."""

    def __init__(self) -> None:
        self._shape: tuple[int, int, int] | None = None

    def _alloc(self, rows: int, cols: int, h: int) -> None:
        self._shape = (rows, cols, h)
        self._a, self._b, self._c, self._d = (np.empty((rows - 4, cols), np.uint8) for _ in range(4))
        self._imp = np.zeros((rows, cols), np.uint8)  # lines 0, 1 and the last two stay 0
        self._chmax = np.empty((rows, cols), np.uint8)
        self._pool = [np.empty(((rows - f + 1) // 2, cols // 3), np.uint8) for f in (0, 1)]
        half = h // 2
        n = [len(range(f, rows, 2)) for f in (0, 1)]
        # output row i of a field pools its lines floor(i * n / rows) .. + ceil(n / rows) - 1:
        # every line lands in some row (288 -> 128: 3 lines from every 2.25th)
        self._idx = [np.minimum((np.arange(r) * nf) // r, nf - 1) for nf, r in zip(n, (half, h - half))]
        self._kernels = [np.ones((-(-nf // r), 1), np.uint8) for nf, r in zip(n, (half, h - half))]

    def compute(self, bgr: np.ndarray, h: int) -> np.ndarray:
        """H x W uint8 from the W column-sampled BGR frame."""
        rows, w = bgr.shape[:2]
        out = np.zeros((h, w), np.uint8)
        if rows < 5:  # no line has two same-field neighbours
            return out
        plane = cv2.cvtColor(bgr, cv2.COLOR_BGR2YCrCb).reshape(rows, -1)  # lines as rows: Y, Cr, Cb at once
        if self._shape != (rows, plane.shape[1], h):
            self._alloc(rows, plane.shape[1], h)
        # how far each line stands out of BOTH same-field neighbours (two
        # frame lines up and down), bright or dark: a scene edge steps away
        # from one neighbour only and gives 0; a one-line click its contrast
        mid, up, down = plane[2:-2], plane[:-4], plane[4:]
        a, b, c, d = self._a, self._b, self._c, self._d
        cv2.subtract(mid, up, dst=a)  # uint8: saturates at 0
        cv2.subtract(mid, down, dst=b)
        cv2.min(a, b, dst=a)  # brighter than both
        cv2.subtract(up, mid, dst=c)
        cv2.subtract(down, mid, dst=d)
        cv2.min(c, d, dst=c)  # darker than both
        cv2.max(a, c, dst=self._imp[2:-2])
        # the largest of Y, Cr, Cb per pixel (numpy's max over a 3-long axis is 20x slower)
        cv2.dilate(self._imp, _KERNEL_3COLS, dst=self._chmax, anchor=(0, 0))
        per_pixel = self._chmax[:, ::3]
        half = h // 2
        for f, (lo, hi) in enumerate(((0, half), (half, h))):
            field = per_pixel[f::2]
            if field.shape[0] > hi - lo:
                # MAX-pool lines (the kernel's anchor at its top): averaging would
                # divide a one-line click by 2.25
                field = cv2.dilate(field, self._kernels[f], dst=self._pool[f], anchor=(0, 0),
                                   borderType=cv2.BORDER_REPLICATE)
            np.take(field, self._idx[f], axis=0, out=out[lo:hi])
        return out


def impulse(image: np.ndarray, h: int, w: int, workspace: ImpulseWorkspace | None = None) -> np.ndarray:
    """Version 3's extra plane: H x W float32 in [0, 1], fields stacked like
    the luma. Per field, the same-field line impulse of Y, Cr and Cb (the
    largest of the three: an FM click is a bright, dark or coloured dash on
    one line), on the W sampled columns, MAX-pooled to H/2 rows."""
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return _to_unit((workspace or ImpulseWorkspace()).compute(_sample_columns(image, w), h))


def planes_u8(image: np.ndarray, h: int, w: int, version: int = 1,
              workspace: ImpulseWorkspace | None = None) -> list[np.ndarray]:
    """The planes one frame contributes, uint8 (x 255 of the model's scale):
    [luma] (versions 1, 2) or [luma, impulse] (version 3, the columns
    sampled once for both)."""
    if version != 3:
        return [_luma_u8(image, h, w, version)]
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    bgr = _sample_columns(image, w)
    return [_luma(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), h, w), (workspace or ImpulseWorkspace()).compute(bgr, h)]


def frame_planes(image: np.ndarray, h: int, w: int, version: int = 1,
                 workspace: ImpulseWorkspace | None = None) -> list[np.ndarray]:
    """``planes_u8`` as float32 in [0, 1]: what training feeds the model."""
    return [_to_unit(p) for p in planes_u8(image, h, w, version, workspace)]


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


@dataclass(frozen=True)
class Fusion:
    """How ``FusedDetector`` combines this model with the classical detector
    (the card's ``fusion`` object; rtclean.detect.fused explains the rules)."""

    rule: str = "or"
    classical_score: float = 0.0
    classical_runs: float = 0.0


FUSION_RULES = ("or", "agree")


def card_fusion(model_path: str | Path) -> Fusion:
    """The fusion rule in the model's card; plain ``or`` without one."""
    card, doc = _card(model_path)
    spec = (doc or {}).get("fusion")
    if spec is None:
        return Fusion()
    try:
        rule = spec["rule"]
        if rule not in FUSION_RULES:
            raise ValueError(f"rule {rule!r} is not one of {', '.join(FUSION_RULES)}")
        if rule == "or":
            return Fusion()
        f = Fusion(rule, float(spec["classical_score"]), float(spec["classical_runs"]))
    except (ValueError, TypeError, KeyError) as e:
        raise ModelError(f"{card}: unreadable fusion rule ({e})") from None
    if not 0.0 < f.classical_score < 0.5 or f.classical_runs < 1:
        raise ModelError(f"{card}: fusion needs 0 < classical_score < 0.5 and classical_runs >= 1")
    return f


def card_companion(model_path: str | Path) -> Path | None:
    """The companion model named in the card (``"companion": {"model":
    "NAME.tflite"}``, a path beside the card), None without one. A companion
    is a second model whose score counts on its own, without the classical
    detector's agreement (rtclean.detect.fused)."""
    card, doc = _card(model_path)
    spec = (doc or {}).get("companion")
    if spec is None:
        return None
    name = spec.get("model") if isinstance(spec, dict) else None
    if not isinstance(name, str) or not name or Path(name).name != name:
        raise ModelError(f"{card}: companion must be {{\"model\": \"FILE.tflite\"}} (a file beside the card), "
                         f"got {spec!r}")
    path = card.parent / name
    if path.resolve() == Path(model_path).resolve():
        raise ModelError(f"{card}: a model cannot be its own companion")
    return path


@dataclass(frozen=True)
class CompanionAgree:
    """How the companion's score depends on the classical detector's fresh
    click runs along a line (its ``click_runs`` feature; the card's
    ``companion.agree``; rtclean.detect.fused): it counts from ``score``
    (calibrated, below 0.5) instead of 0.5 where the classical detector saw
    at least ``click_runs`` of them, and not at all where it saw fewer than
    ``needs_runs`` (card key ``needs_click_runs``, default 0: everywhere)."""

    score: float
    click_runs: float
    needs_runs: float = 0.0


def card_companion_agree(model_path: str | Path) -> CompanionAgree | None:
    """The companion's agreement rule in the card of ``model_path``, None
    without one (the companion then counts at its own threshold only)."""
    card, doc = _card(model_path)
    spec = (doc or {}).get("companion")
    if not isinstance(spec, dict) or spec.get("agree") is None:
        return None
    try:
        agree = spec["agree"]
        a = CompanionAgree(float(agree["score"]), float(agree["click_runs"]),
                           float(agree.get("needs_click_runs", 0.0)))
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise ModelError(f"{card}: unreadable companion agree rule (needs score and click_runs: {e})") from None
    if not 0.0 < a.score < 0.5 or a.click_runs < 1:
        raise ModelError(f"{card}: companion agree needs 0 < score < 0.5 and click_runs >= 1, "
                         f"got score {a.score}, click_runs {a.click_runs}")
    if not 0.0 <= a.needs_runs <= a.click_runs:
        raise ModelError(f"{card}: companion agree needs_click_runs must be in [0, click_runs], "
                         f"got {a.needs_runs}")
    return a


def card_float32(model_path: str | Path) -> Path | None:
    """The float32 twin the card of an int8 model names (``"float32_model":
    "NAME.f32.tflite"``, a file beside the card, as ``rtclean train`` writes
    it), None without one. The twin shares the int8 file's card."""
    card, doc = _card(model_path)
    name = (doc or {}).get("float32_model")
    if name is None:
        return None
    if not isinstance(name, str) or not name or Path(name).name != name:
        raise ModelError(f"{card}: float32_model must be a file name beside the card, got {name!r}")
    return card.parent / name


def load_variant(model_path: str | Path, precision: str, delegate: str = "cpu",
                 num_threads: int = 1) -> "TFLiteDetector":
    """``model_path`` itself (``precision`` "int8") or the float32 twin its
    card names ("float32"; rtclean.detect.precision). A card without a twin
    or a missing twin file is a one-line ModelError."""
    if precision == "int8":
        return TFLiteDetector(model_path, delegate, num_threads)
    twin = card_float32(model_path)
    if twin is None:
        raise ModelError(f"{model_path}: its card names no float32 file (float32_model)")
    if not twin.is_file():
        raise ModelError(f"{twin}: float32 file named in the card is missing")
    return TFLiteDetector(twin, delegate, num_threads, card=model_path)


def load_companion(model_path: str | Path, delegate: str = "cpu", num_threads: int = 1,
                   precision: str = "int8") -> "TFLiteDetector | None":
    """The companion the card of ``model_path`` names, loaded (its float32
    twin with ``precision`` "float32"); None when the card names none. A bad
    entry, a missing file or a model that does not load is a one-line
    ModelError (callers decide whether that is fatal)."""
    path = card_companion(model_path)
    if path is None:
        return None
    if not path.is_file():
        raise ModelError(f"{path}: companion model named in the card is missing")
    return load_variant(path, precision, delegate, num_threads)


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
                 threshold: float | None = None, preprocess_version: int | None = None,
                 card: str | Path | None = None) -> None:
        # ``card``: the model whose JSON card describes this file, when it is
        # not the file's own (the float32 twin of an int8 model shares its card)
        self.card_path = Path(model_path if card is None else card)
        self.threshold = card_threshold(self.card_path) if threshold is None else float(threshold)
        self.preprocess_version = card_preprocess(self.card_path) if preprocess_version is None \
            else int(preprocess_version)
        loaded = load_model(model_path, delegate, num_threads)
        self.runtime = loaded.runtime
        self.delegate = loaded.delegate
        self.model_path = Path(model_path)
        self._interp = loaded.interpreter
        self._setup_io()
        self._prev: list[np.ndarray] | None = None  # the previous frame's input planes, as fed
        self._workspace = ImpulseWorkspace()
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
        if self._c not in (1, 2, CHANNELS_V3) or self._h < 2 or self._h % 2 or self._w < 1:
            raise ModelError(f"{where}: model input [1, H, W, C] needs even H and C in (1, 2, {CHANNELS_V3}), "
                             f"got {shape}")
        if (self._c == CHANNELS_V3) != (self.preprocess_version == 3):
            raise ModelError(f"{where}: preprocessing version {self.preprocess_version} does not fit a "
                             f"{self._c}-channel input (version 3 is exactly {CHANNELS_V3} channels)")
        self._in_dtype = np.dtype(inp["dtype"]).type
        if self._in_dtype not in (np.float32, np.int8):
            raise ModelError(f"{where}: model input must be float32 or int8, got {np.dtype(inp['dtype']).name}")
        self._in_index = inp["index"]
        self._in_scale, self._in_zero = inp["quantization"]
        if self._in_dtype is np.int8 and not self._in_scale:
            raise ModelError(f"{where}: int8 model input has no quantisation scale")
        # rtclean's exporter calibrates the input to exactly [0, 1] (scale
        # 1/255, zero point -128): then round(v / 255 / scale) - 128 is v - 128
        self._u8_is_int8 = (self._in_dtype is np.int8 and abs(self._in_scale * 255 - 1) < 1e-6
                            and self._in_zero == -128)
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

    @property
    def precision(self) -> str:
        """"int8" or "float32": the file's input type (rtclean.detect.precision)."""
        return "int8" if self._in_dtype is np.int8 else "float32"

    @property
    def is_twin(self) -> bool:
        """Whether this file runs under another file's card: the float32
        twin of an int8 model (``load_variant``)."""
        return self.card_path != self.model_path

    def input_key(self) -> tuple[int, int, int]:
        """What the uint8 planes depend on: two models with the same key can
        share one ``planes`` call (FusedDetector with a companion)."""
        return self._h, self._w, self.preprocess_version

    def planes(self, image: np.ndarray) -> list[np.ndarray]:
        """The frame's uint8 input planes (``planes_u8``), before quantisation."""
        return planes_u8(image, self._h, self._w, self.preprocess_version, self._workspace)

    def detect(self, image: np.ndarray) -> DetectResult:
        return self.infer(self.planes(image))

    def infer(self, planes: list[np.ndarray]) -> DetectResult:
        """Run the model on one frame's ``planes`` (and the previous frame's,
        kept from the last call). The planes are not modified."""
        # quantised once: the next frame reuses them as its previous
        if self._u8_is_int8:  # q = v - 128 exactly, no float round trip
            planes = [(p ^ 0x80).view(np.int8) for p in planes]
        elif self._in_dtype is np.int8:
            planes = [self._quantise(_to_unit(p)) for p in planes]
        else:
            planes = [_to_unit(p) for p in planes]
        prev = self._prev if self._prev is not None else planes
        self._buf[0, :, :, 0] = planes[0]
        if self._c >= 2:
            self._buf[0, :, :, 1] = prev[0]
        if self._c == CHANNELS_V3:
            self._buf[0, :, :, 2] = planes[1]
            self._buf[0, :, :, 3] = prev[1]
        self._prev = planes
        self._interp.set_tensor(self._in_index, self._buf)
        self._interp.invoke()
        raw = float(np.clip(self._read(self._frame_out)[0], 0.0, 1.0))
        score = float(calibrate(raw, self.threshold))
        if self._band_out is not None:
            bands = calibrate(np.clip(resample_bands(self._read(self._band_out)), 0.0, 1.0), self.threshold)
        else:
            bands = np.full(NBANDS, score, np.float32)
        return DetectResult(score=score, bands=bands, features={"model_score": raw})

    def _quantise(self, plane: np.ndarray) -> np.ndarray:
        return np.clip(np.rint(plane / self._in_scale) + self._in_zero, -128, 127).astype(np.int8)

    def reset(self) -> None:
        self._prev = None

    def invoke_ms(self, runs: int = 15, warmup: int = 3) -> float:
        """Median milliseconds of one model run (the interpreter alone, on a
        blank input), for choosing between a model's int8 and float32 files
        (rtclean.detect.precision). Leaves the detector's state as it was:
        ``infer`` rewrites the whole input buffer on every call."""
        self._buf[...] = 0
        self._interp.set_tensor(self._in_index, self._buf)
        times = []
        for i in range(warmup + runs):
            t0 = time.perf_counter()
            self._interp.invoke()
            if i >= warmup:
                times.append(time.perf_counter() - t0)
        return float(np.median(times)) * 1e3
