"""The breakup CNN (Keras). Imported only by training: TensorFlow is an
optional extra and never touches the live path.

Input: [1, H, W, C], the detector's preprocessing (rtclean/detect/tflite.py):
luma of the current frame (channel 0) and the previous one (channel 1),
each with its fields stacked: rows 0 .. H/2-1 are the even (top) field,
rows H/2 .. H-1 the odd (bottom) field, both covering the whole picture
height; with preprocessing version 3 (C = 4) channels 2 and 3 are the
line-impulse planes of the current and previous frame, stacked the same
way. Default 96 wide x 128 tall: 64 rows per field (4.5 picture lines per
row) keep single-line FM clicks at a fifth of their contrast, where 48 rows
(96x72 per field pair) lose more of it; 96 columns are enough for tear shifts
(10-135 px at 720 -> 1.3-18 columns). About 6.5 M multiply-adds.

Band mapping: picture band b (of 16, top to bottom, as BreakupLabel.bands:
lines [b*h/16, (b+1)*h/16) of BOTH fields) is input rows
[b*H/32, (b+1)*H/32) of the top half AND the same rows of the bottom half.
The backbone brings the height to 32 rows (H/4), so feature row r < 16 is
band r of the even field and row 16 + r band r of the odd field. The band
head scores every (field, band) row, then takes the max over the two fields
(a band is damaged when either field is): a Reshape to [2, 16] and a max
pool, builtin int8 ops. Outputs, both sigmoid (LOGISTIC):
``frame`` [1, 1] and ``bands`` [1, 16].

Only Conv2D, DepthwiseConv2D, ReLU, MaxPool/AvgPool, Reshape, Concatenate,
Dense and Logistic: all builtin int8 TFLite ops that the Edge TPU compiler
maps.
"""

from __future__ import annotations

DEFAULT_SIZE = (96, 128)  # (W, H)
FEATURE_ROWS_PER_FIELD = 16
FRAME_DROPOUT = 0.3


def build_model(h: int = DEFAULT_SIZE[1], w: int = DEFAULT_SIZE[0], channels: int = 2, batch_size: int | None = None,
                export: bool = False):
    """The Keras model; ``batch_size=1`` and ``export=True`` for export (a
    fixed batch keeps Reshape static: no SHAPE/PACK/STRIDED_SLICE ops in the
    TFLite graph).

    The two width-only steps (blocks b3 and b4) are depthwise convolutions
    with strides (1, 2). TensorFlow's own CPU kernel takes equal strides
    only; the oneDNN one, which TensorFlow turns on by default on some x86
    CPUs and not on others (AMD EPYC here), takes any. So for training each
    is a stride-1 convolution whose every other column is kept (the columns
    the strided one computes: 'same' padding with stride 2 pads only on the
    right, so output column j is centred on input column 2j + 1), and the
    export model has the strided convolution itself, with the same weights,
    a DEPTHWISE_CONV_2D for the Edge TPU."""
    import keras
    from keras import layers

    class OddColumns(layers.Layer):
        """Columns 1, 3, 5, ... (no weights)."""

        def call(self, x):
            return x[:, :, 1::2, :]

        def compute_output_shape(self, shape):
            return (shape[0], shape[1], None if shape[2] is None else shape[2] // 2, shape[3])

    if h % 128 or w % 16:
        # /4 leaves 16 rows per field (one per band) at H = 128, 32 at 256 (pooled to 16)
        raise ValueError(f"model input must be a multiple of 16 wide and of 128 tall, got {w}x{h}")
    inp = keras.Input((h, w, channels), batch_size=batch_size, name="frames")

    def sep(x, filters, strides, name):
        if strides == (1, 2) and not export:  # (see above)
            x = layers.DepthwiseConv2D(3, strides=1, padding="same", use_bias=False, name=f"{name}_dw")(x)
            x = OddColumns(name=f"{name}_odd_columns")(x)
        else:
            x = layers.DepthwiseConv2D(3, strides=strides, padding="same", use_bias=False, name=f"{name}_dw")(x)
        x = layers.BatchNormalization(name=f"{name}_dwbn")(x)
        x = layers.ReLU(6.0, name=f"{name}_dwrelu")(x)
        x = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_pw")(x)
        x = layers.BatchNormalization(name=f"{name}_pwbn")(x)
        return layers.ReLU(6.0, name=f"{name}_relu")(x)

    x = layers.Conv2D(16, 3, strides=2, padding="same", use_bias=False, name="stem")(inp)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(6.0, name="stem_relu")(x)
    x = sep(x, 32, 1, "b1")
    x = sep(x, 48, 2, "b2")  # H/4: 16 rows per field, one per band at H = 128
    rows = h // 4
    # then only the width shrinks: band rows keep their resolution
    x = sep(x, 64, (1, 2), "b3")
    x = sep(x, 64, (1, 2), "b4")
    fw = w // 16
    # with another H the rows are pooled (or kept) to 16 per field first
    per_field = rows // 2
    if per_field != FEATURE_ROWS_PER_FIELD:
        k = per_field // FEATURE_ROWS_PER_FIELD
        xb = layers.MaxPooling2D((k, 1), name="band_rows")(x)
    else:
        xb = x
    b = layers.Conv2D(32, 1, activation="relu", name="band_feat")(xb)
    b = layers.Conv2D(1, 1, name="band_logit")(b)  # [32, fw, 1]
    b = layers.MaxPooling2D((1, fw), name="band_across")(b)  # [32, 1, 1]
    b = layers.Reshape((2, FEATURE_ROWS_PER_FIELD, 1), name="band_fields")(b)
    b = layers.MaxPooling2D((2, 1), name="band_either_field")(b)  # [1, 16, 1]
    b = layers.Reshape((FEATURE_ROWS_PER_FIELD,), name="band_flat")(b)
    bands = layers.Activation("sigmoid", name="bands")(b)

    gmax = layers.MaxPooling2D((rows, fw), name="frame_max")(x)
    gavg = layers.AveragePooling2D((rows, fw), name="frame_avg")(x)
    f = layers.Concatenate(name="frame_pool")([gmax, gavg])
    f = layers.Reshape((128,), name="frame_flat")(f)
    # dropout against memorising scenes (training only: no op in the export)
    f = layers.Dropout(FRAME_DROPOUT, name="frame_dropout")(f)
    f = layers.Dense(32, activation="relu", name="frame_fc")(f)
    f = layers.Dense(1, name="frame_logit")(f)
    frame = layers.Activation("sigmoid", name="frame")(f)
    return keras.Model(inp, {"frame": frame, "bands": bands}, name="rtclean_breakup")
