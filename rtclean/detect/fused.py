"""The default detector: the classical signal-quality detector and the TFLite
model together, a frame being broken when either says so.

Why both: on held-out simulated breakup the two miss different frames (the
classical detector is strong on tearing, colour loss and rolling, which the
luma-only model barely sees; the model catches some faint sparklies the
classical thresholds let through), and neither fires on the real clips, so
their union gains recall without false positives (figures in
models/breakup.md). The classical detector runs first and the model second;
together they cost the sum of both (about 1.3 + 1.8 ms per 720x576 frame
here).

Scores are combined after calibration: every TFLiteDetector maps its own
operating threshold to 0.5 (see ``calibrate``), the classical detector's
threshold is 0.5 by construction, so ``detect.threshold`` keeps one meaning.
"""

from __future__ import annotations

import numpy as np

from rtclean.detect.base import Detector
from rtclean.detect.classical import ClassicalDetector
from rtclean.detect.tflite import TFLiteDetector
from rtclean.frames import DetectResult


class FusedDetector(Detector):
    name = "fused"

    def __init__(self, model: TFLiteDetector, classical: ClassicalDetector | None = None) -> None:
        self.model = model
        self.classical = classical or ClassicalDetector()
        self.runtime = model.runtime
        self.delegate = model.delegate
        self.model_path = model.model_path

    def detect(self, image: np.ndarray) -> DetectResult:
        c = self.classical.detect(image)
        m = self.model.detect(image)
        score = max(c.score, m.score)
        bands = c.bands if m.bands is None else np.maximum(c.bands, m.bands)
        features = dict(c.features)
        features.update(m.features)
        features["classical_score"] = c.score
        features["model_calibrated"] = m.score
        return DetectResult(score=score, bands=bands, features=features, fields=c.fields)

    def reset(self) -> None:
        self.classical.reset()
        self.model.reset()
