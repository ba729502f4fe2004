"""Keras model -> TFLite: full-integer int8 (NAME.tflite) and float32
(NAME.f32.tflite), then checks that the int8 file is what the live path needs.

int8: int8 input and outputs, TFLITE_BUILTINS_INT8 only (no float fallback,
no custom or Flex ops), calibrated on frames of the training data, so the
file can go through the Edge TPU compiler as is.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from rtclean.errors import ModelError

log = logging.getLogger(__name__)

REPRESENTATIVE_FRAMES = 200


def _converter(model, workdir: Path):
    """A converter from the model exported as a SavedModel (Keras 3's
    documented path; converting a live concrete function leaves variable
    reads in the graph that the int8 calibrator cannot run)."""
    import tensorflow as tf

    from rtclean.train.model import build_model

    h, w, c = model.input_shape[1:]
    fixed = build_model(h, w, c, batch_size=1, export=True)
    fixed.set_weights(model.get_weights())
    saved = workdir / "saved_model"
    # a fully static signature lets the converter fold the batch size
    # that Keras' Reshape reads at run time (else SHAPE/PACK/STRIDED_SLICE ops)
    spec = tf.TensorSpec([1, h, w, c], tf.float32, name="frames")
    fixed.export(str(saved), format="tf_saved_model", verbose=False, input_signature=[spec])
    return tf.lite.TFLiteConverter.from_saved_model(str(saved))


def to_float32(model, workdir: Path) -> bytes:
    return _converter(model, workdir).convert()


def to_int8(model, calibration: np.ndarray, workdir: Path, seed: int = 0) -> bytes:
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    n = min(len(calibration), REPRESENTATIVE_FRAMES)
    pick = rng.choice(len(calibration), n, replace=False) if len(calibration) > n else np.arange(n)
    # the full [0, 1] range must be seen so the input scale is exactly 1/255:
    # a calibration set without pure white/black would clip them at run time
    extremes = np.stack([np.zeros_like(calibration[0]), np.ones_like(calibration[0])])

    def rep():
        for e in extremes:
            yield [e[None].astype(np.float32)]
        for i in pick:
            yield [calibration[i:i + 1].astype(np.float32)]

    conv = _converter(model, workdir)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return conv.convert()


def _plain_interpreter(path: str | Path):
    """An interpreter without the default (XNNPACK) delegate, which would
    replace the model's ops by one DELEGATE node in the op list."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interp = Interpreter(model_path=str(path),
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interp.allocate_tensors()
    return interp


def op_names(path: str | Path) -> list[str]:
    """The operator names of a .tflite file, via the ai-edge-litert interpreter."""
    return sorted({op["op_name"] for op in _plain_interpreter(path)._get_ops_details()})


def check_int8(path: str | Path) -> dict:
    """Raise ModelError unless the file is a full-integer int8 model of
    builtin ops; return its I/O and op summary."""
    interp = _plain_interpreter(path)
    ins, outs = interp.get_input_details(), interp.get_output_details()
    dtypes = {np.dtype(t["dtype"]).name for t in ins + outs}
    ops = op_names(path)
    bad = [o for o in ops if o in ("CUSTOM", "DELEGATE") or o.startswith("Flex")]
    # no float kernels inside: every op's tensors are int8 (int32 biases, shapes)
    floats = sorted({t["name"] for t in interp.get_tensor_details() if np.dtype(t["dtype"]) == np.float32})
    if floats:
        raise ModelError(f"{path}: int8 export still has float32 tensors ({', '.join(floats[:3])})")
    if dtypes != {"int8"}:
        raise ModelError(f"{path}: int8 export has {sorted(dtypes)} inputs/outputs, expected int8 only")
    if bad:
        raise ModelError(f"{path}: int8 export uses non-builtin ops {bad}")
    return {"ops": ops, "input": [int(s) for s in ins[0]["shape"]],
            "outputs": [[int(s) for s in o["shape"]] for o in outs]}


def compare_with_detector(model, path: str | Path, pairs: list[tuple[np.ndarray, np.ndarray]],
                          version: int = 1) -> dict:
    """Run TFLiteDetector (the live path's class, preprocessing included) on
    (current, previous) BGR frame pairs and compare with the Keras scores."""
    from rtclean.detect.tflite import TFLiteDetector
    from rtclean.train.data import to_input

    det = TFLiteDetector(path, threshold=0.5, preprocess_version=version)  # raw scores (0.5: identity)
    h, w, c = model.input_shape[1:]
    frame_diff, band_diff, scores = [], [], []
    for cur, prev in pairs:
        det.reset()
        det.detect(prev)
        res = det.detect(cur)
        ref = model(to_input(cur, prev, h, w, c, version)[None], training=False)
        k_frame = float(np.asarray(ref["frame"]).ravel()[0])
        k_bands = np.asarray(ref["bands"]).ravel()
        frame_diff.append(abs(res.score - k_frame))
        band_diff.append(float(np.abs(res.bands - k_bands).max()))
        scores.append(res.score)
    return {"frames": len(pairs), "max_abs_diff_frame": float(max(frame_diff, default=0.0)),
            "max_abs_diff_bands": float(max(band_diff, default=0.0)),
            "mean_abs_diff_frame": float(np.mean(frame_diff)) if frame_diff else 0.0,
            "scores_in_range": bool(all(0.0 <= s <= 1.0 for s in scores)), "runtime": det.runtime}
