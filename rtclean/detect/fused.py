"""The default detector: the classical signal-quality detector and the TFLite
model together.

Why both: on held-out simulated breakup the two miss different frames (the
classical detector is strong on tearing, colour loss and rolling, which the
luma-only models barely see; a model catches faint sparklies the classical
thresholds let through). The classical detector runs first and the model
second; together they cost the sum of both.

How they are combined is the model's own choice, read from its card
(``fusion`` in ``NAME.json``, ``card_fusion``), because it depends on how
often the model fires on real clean video:

- ``or`` (no ``fusion`` key): broken when either says so. For a model that
  never fires on real clean frames (recipe G).
- ``agree``: broken when the classical detector says so, or when the model
  says so AND the classical detector has seen some evidence of its own: a
  sub-threshold score of at least ``classical_score`` or at least
  ``classical_runs`` fresh one-line streak runs. A model that sees faint
  clicks also fires on fine horizontal scene texture (fast pans over clay,
  gravel; native-size frames), where the classical detector, which compares
  against the scene's own running level, sees nothing at all (score 0);
  both limits sit above anything it gives on the training clips' real clean
  frames (docs/training.md, "Fusion with K2"). The streak runs do not count
  on a combed frame (the classical ``comb`` feature above ``COMBED``): when
  the two fields were taken at different instants (an interlaced camera
  with motion), every thin horizontal line of the scene is a one-line
  streak in the woven frame, and the model, trained on fields of one
  instant, scores such frames as breakup (0.56-0.99 on a fast pan woven
  from consecutive frames; docs/training.md, "Combing").

A model's card may also name a **companion** (``"companion": {"model":
"NAME.tflite"}``, ``card_companion``): a second model whose score counts on
its own, whatever the classical detector says, merged by OR after the rule
above. Why: the shipped pair (models/breakup.md) is a sensitive model that
needs the classical detector's agreement on real clean video and a
stricter one, trained with analog-simulator data, DVR copies and real
clean frames as negatives, that never fired on real clean frames; the
stricter one finds the faint sparklies of DVR-stored frames, where the
classical detector gives no evidence at all, so the agreement rule could
never use the first model there (docs/training.md, "Recipe K"). When both
models take the same input (size and preprocessing version) the frame is
preprocessed once for both.

The companion entry may carry its own agreement (``"agree": {"score": S,
"click_runs": N}``, ``card_companion_agree``): on a frame where the
classical detector saw at least N fresh click runs along a line (its
``click_runs`` feature, below its own ramp), the companion's score counts
from S instead of 0.5 (``load_fused`` reads it; a bad entry is left out
with a warning, and the companion counts at 0.5 only). Why: on DVR-stored
sparklies the JPEG or H.264 coding halves a click's contrast and wipes out
the chroma dashes, so both the classical detector and the companion end
just under their thresholds on the same frames (companion 0.40-0.50 with
3-10 click runs); on real clean frames the two rarely rise together
(docs/training.md, "The companion's agreement"). Not on a combed frame,
for the reason given under ``agree``. The same entry may say how many
fresh click runs the companion needs to count at all
(``"needs_click_runs": 1`` in the shipped card): a frame with none is one
in which the classical detector saw no one-field streak anywhere, and
there the companion's votes were false alarms (the bars of an OSD's
artificial horizon, which move every frame but are drawn in both fields,
and a few frames of fast motion) or whole-picture events: blue screens,
which the no-signal check flags beside this detector, and a full-snow
frame (docs/training.md, "The companion needs a fresh click run").

With ``parallel`` (``detect.parallel``, on where there is more than one
core) the classical detector runs on a second thread while the calling
thread preprocesses the frame and runs the models: the same work, less
time per frame. The two halves share nothing but the (read-only) frame;
OpenCV and the TFLite invoke release the GIL for most of their time. The
classical half is the longer one (6.5 ms against 4 ms here): one frame of
the bench took 11.5 ms one after the other and 7.6 ms in parallel, median
(docs/performance.md, twenty-first session).

Scores are combined after calibration: every TFLiteDetector maps its own
operating threshold to 0.5 (see ``calibrate``), the classical detector's
threshold is 0.5 by construction, so ``detect.threshold`` keeps one meaning.
Under ``agree`` the model's score counts only on frames with agreement.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from rtclean.detect.base import Detector
from rtclean.detect.classical import COMBED, ClassicalDetector
from rtclean.detect.tflite import CompanionAgree, Fusion, TFLiteDetector, calibrate, card_fusion
from rtclean.frames import DetectResult


class FusedDetector(Detector):
    name = "fused"

    def __init__(self, model: TFLiteDetector, classical: ClassicalDetector | None = None,
                 fusion: Fusion | None = None, companion: TFLiteDetector | None = None,
                 companion_agree: CompanionAgree | None = None, parallel: bool = False) -> None:
        self.model = model
        self.classical = classical or ClassicalDetector()
        self.fusion = card_fusion(model.card_path) if fusion is None else fusion
        self.companion = companion
        self.companion_agree = companion_agree  # load_fused reads it from the card
        self._shared_planes = companion is not None and companion.input_key() == model.input_key()
        self.runtime = model.runtime
        self.delegate = model.delegate
        self.precision = model.precision
        self.model_path = model.model_path
        # one thread for the classical half (see the module doc); its idle
        # thread ends when the detector is collected
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="rtclean-classical") if parallel else None

    @property
    def parallel(self) -> bool:
        return self._pool is not None

    def _agrees(self, c: DetectResult) -> bool:
        f = self.fusion
        if f.rule == "or":
            return True
        if c.score >= f.classical_score:
            return True
        return (float(c.features.get("runs", 0.0)) >= f.classical_runs
                and float(c.features.get("comb", 0.0)) < COMBED)

    def _models(self, image: np.ndarray) -> tuple[DetectResult, DetectResult | None]:
        planes = self.model.planes(image)
        m = self.model.infer(planes)
        if self.companion is None:
            return m, None
        return m, self.companion.infer(planes) if self._shared_planes else self.companion.detect(image)

    def detect(self, image: np.ndarray) -> DetectResult:
        if self._pool is None:
            c = self.classical.detect(image)
            m, s = self._models(image)
        else:
            pending: Future = self._pool.submit(self.classical.detect, image)
            try:
                m, s = self._models(image)
            finally:  # the classical half never runs on into the next frame; its error is raised here
                c = pending.result()
        agree = self._agrees(c)
        if agree:
            score = max(c.score, m.score)
            bands = c.bands if m.bands is None else np.maximum(c.bands, m.bands)
        else:
            score, bands = c.score, c.bands
        features = dict(c.features)
        features.update(m.features)
        features["classical_score"] = c.score
        features["model_calibrated"] = m.score
        features["fusion_agree"] = float(agree)
        if s is not None:
            s_score, s_bands = s.score, s.bands
            a = self.companion_agree
            runs = c.features.get("click_runs", 0.0)
            helped = (a is not None and s_score < 0.5 and runs >= a.click_runs
                      and c.features.get("comb", 0.0) < COMBED)  # (combing makes click runs too)
            if helped:  # its score counts from a.score: a.score maps to 0.5 (monotonic)
                s_score, s_bands = float(calibrate(s_score, a.score)), calibrate(s_bands, a.score)
            counts = a is None or runs >= a.needs_runs
            if counts:
                score = max(score, s_score)
                bands = np.maximum(bands, s_bands)
            features["companion_score"] = s.features["model_score"]
            features["companion_calibrated"] = s.score
            features["companion_agree"] = float(helped)
            features["companion_counts"] = float(counts)
        return DetectResult(score=score, bands=bands, features=features, fields=c.fields)

    def reset(self) -> None:
        self.classical.reset()
        self.model.reset()
        if self.companion is not None:
            self.companion.reset()
