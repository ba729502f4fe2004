"""Which of a model's two files runs: the int8 file or its float32 twin.

``rtclean train`` exports both (``NAME.tflite``, full-integer int8, and
``NAME.f32.tflite``), and the int8 file's card names the twin
(``float32_model``). The twin runs under the int8 file's card: the same
threshold, preprocessing, fusion rule and companion (``load_variant``).

Why a choice: the faster file depends on the CPU, not on the model. int8 is
the file for the Edge TPU and for the Pi's ARM cores, where the runtime's
int8 kernels are the quick ones, and it was 0.28 ms per run on the Intel
machines of the earlier sessions (AVX-512 VNNI). On an AMD EPYC with AVX2
only the same int8 file takes 1.8-2.1 ms and the float32 twin 1.05-1.3 ms
(docs/performance.md). The decisions are the same within measurement: over
the held-out sets and 2634 real frames the shipped pair through either file
differs by one frame each way (docs/training.md, "int8 or float32").

``detect.precision``:
- ``int8``: the int8 file (the only one an Edge TPU runs);
- ``float32``: the twin; a card without one is a ModelError;
- ``auto`` (default): both are loaded and timed at start-up (a few dozen
  runs on a blank input, about 0.1 s), and the twin is kept only when it
  takes under ``FLOAT32_SHARE`` of the int8 file's time, so on a machine
  where the two are close the int8 file, on which the card's threshold was
  chosen, stays. The Edge TPU delegate and a card without a twin mean int8.
  The choice and both times are logged at INFO.
"""

from __future__ import annotations

import logging
from pathlib import Path

from rtclean.detect.tflite import TFLiteDetector, card_float32, load_variant
from rtclean.errors import ModelError

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "int8", "float32")
FLOAT32_SHARE = 0.85
ROUNDS = 2  # timings alternate between the files: a burst of load hits both


def load_detector(path: str | Path, precision: str = "auto", delegate: str = "cpu",
                  num_threads: int = 1) -> TFLiteDetector:
    """The detector for the model at ``path`` in ``precision`` (see above)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "auto":
        return load_variant(path, precision, delegate, num_threads)
    first = TFLiteDetector(path, delegate, num_threads)
    if delegate != "cpu":
        return first
    try:
        twin = card_float32(path)
        if twin is None or first.precision != "int8" or not twin.is_file():
            return first
        second = load_variant(path, "float32", delegate, num_threads)
    except ModelError as e:  # the int8 file works: a broken twin only loses the choice
        log.warning("detector: float32 twin of %s left out (%s)", Path(path).name, e)
        return first
    times = {first: [], second: []}
    for _ in range(ROUNDS):
        for det in times:
            times[det].append(det.invoke_ms())
    t_int8, t_f32 = min(times[first]), min(times[second])
    chosen = second if keep_float32(t_int8, t_f32) else first
    log.info("detector: %s chosen (detect.precision: auto; one run %.2f ms int8, %.2f ms float32)",
             chosen.model_path.name, t_int8, t_f32)
    return chosen


def keep_float32(t_int8: float, t_f32: float) -> bool:
    """``auto``'s rule: the twin only when it takes under ``FLOAT32_SHARE``
    of the int8 file's time."""
    return t_f32 < FLOAT32_SHARE * t_int8
