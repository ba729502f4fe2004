"""Build tiny but real .tflite models for the TFLite detector tests.

There is no TensorFlow here. ai-edge-litert ships the TFLite FlatBuffers
schema as Python (``ai_edge_litert.schema_py_generated``) and depends on the
``flatbuffers`` package, so a model can be written with the schema's object
API and run by the real interpreter.

The model follows the detector contract (see rtclean/detect/tflite.py):

    input  [1, H, W, C] luma in [0, 1] (float32, or int8 with scale 1/255, zp -128)
    RESHAPE -> [1, nbands, H/nbands * W * C]
    MEAN over the last axis -> per-band brightness
    (float only) SUB 0.5, MUL gain   so dark bands score low, bright ones high
    LOGISTIC -> band scores [1, nbands]
    REDUCE_MAX over bands -> frame score [1, 1]

so the expected scores can be computed in numpy from the same preprocessing.
"""

from __future__ import annotations

from pathlib import Path

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as S

GAIN = 8.0  # float model: band score = sigmoid(GAIN * (mean - 0.5))


def _quant(scale: float, zero_point: int) -> S.QuantizationParametersT:
    q = S.QuantizationParametersT()
    q.scale = [scale]
    q.zeroPoint = [zero_point]
    return q


def build_model(h: int = 32, w: int = 24, c: int = 1, nbands: int = 16,
                dtype: str = "float32", with_bands: bool = True) -> bytes:
    """Serialized .tflite bytes of the tiny detector model."""
    if h % nbands:
        raise ValueError("h must be a multiple of nbands")
    int8 = dtype == "int8"
    ttype = S.TensorType.INT8 if int8 else S.TensorType.FLOAT32
    model = S.ModelT()
    model.version = 3
    model.description = "rtclean tiny test model"
    model.buffers = [S.BufferT()]  # buffer 0 is the conventional empty buffer
    model.operatorCodes = []
    sg = S.SubGraphT()
    sg.tensors, sg.operators = [], []

    def tensor(name, shape, typ=ttype, data: np.ndarray | None = None, quant=None) -> int:
        t = S.TensorT()
        t.name, t.shape, t.type = name, list(shape), typ
        t.buffer = 0
        if data is not None:
            b = S.BufferT()
            b.data = list(np.ascontiguousarray(data).tobytes())
            model.buffers.append(b)
            t.buffer = len(model.buffers) - 1
        if quant is not None:
            t.quantization = quant
        sg.tensors.append(t)
        return len(sg.tensors) - 1

    def op(code: int, inputs, outputs, opt_type=0, opt=None) -> None:
        codes = [oc.builtinCode for oc in model.operatorCodes]
        if code not in codes:
            oc = S.OperatorCodeT()
            oc.builtinCode = code
            oc.deprecatedBuiltinCode = min(code, 127)
            # int8 kernels are version 2 of these ops; RESHAPE has one version
            oc.version = 2 if int8 and code != S.BuiltinOperator.RESHAPE else 1
            model.operatorCodes.append(oc)
            codes.append(code)
        o = S.OperatorT()
        o.opcodeIndex = codes.index(code)
        o.inputs, o.outputs = list(inputs), list(outputs)
        o.builtinOptionsType, o.builtinOptions = opt_type, opt
        sg.operators.append(o)

    in_q = _quant(1 / 255, -128) if int8 else None
    per_band = h // nbands * w * c
    x = tensor("luma", [1, h, w, c], quant=in_q)
    shape = tensor("shape", [3], S.TensorType.INT32, np.array([1, nbands, per_band], np.int32))
    r = tensor("rows", [1, nbands, per_band], quant=in_q)
    ro = S.ReshapeOptionsT()
    ro.newShape = [1, nbands, per_band]
    op(S.BuiltinOperator.RESHAPE, [x, shape], [r], S.BuiltinOptions.ReshapeOptions, ro)

    axis = tensor("axis2", [1], S.TensorType.INT32, np.array([2], np.int32))
    m = tensor("band_mean", [1, nbands], quant=in_q)
    keep = S.ReducerOptionsT()
    keep.keepDims = False
    op(S.BuiltinOperator.MEAN, [r, axis], [m], S.BuiltinOptions.ReducerOptions, keep)

    if not int8:
        half = tensor("half", [], data=np.array(0.5, np.float32))
        d = tensor("centred", [1, nbands])
        op(S.BuiltinOperator.SUB, [m, half], [d], S.BuiltinOptions.SubOptions, S.SubOptionsT())
        gain = tensor("gain", [], data=np.array(GAIN, np.float32))
        m = tensor("logit", [1, nbands])
        op(S.BuiltinOperator.MUL, [d, gain], [m], S.BuiltinOptions.MulOptions, S.MulOptionsT())

    out_q = _quant(1 / 256, -128) if int8 else None  # TFLite's fixed int8 LOGISTIC output
    bands = tensor("bands", [1, nbands], quant=out_q)
    op(S.BuiltinOperator.LOGISTIC, [m], [bands])
    axis1 = tensor("axis1", [1], S.TensorType.INT32, np.array([1], np.int32))
    frame = tensor("score", [1, 1], quant=out_q)
    keep1 = S.ReducerOptionsT()
    keep1.keepDims = True
    op(S.BuiltinOperator.REDUCE_MAX, [bands, axis1], [frame], S.BuiltinOptions.ReducerOptions, keep1)

    sg.inputs = [x]
    sg.outputs = [frame, bands] if with_bands else [frame]
    sg.name = "main"
    model.subgraphs = [sg]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def write_model(path: Path, **kwargs) -> Path:
    path.write_bytes(build_model(**kwargs))
    return path


def expected_band_scores(luma01_rows: np.ndarray, nbands: int, dtype: str) -> np.ndarray:
    """What the model computes from the preprocessed input (H x W x C, [0, 1])."""
    means = luma01_rows.reshape(nbands, -1).mean(axis=1)
    z = means if dtype == "int8" else GAIN * (means - 0.5)
    return 1 / (1 + np.exp(-z))


if __name__ == "__main__":  # handy for manual checks: python tests/make_tiny_model.py out.tflite
    import sys

    write_model(Path(sys.argv[1]))
