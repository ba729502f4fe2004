"""FusedDetector's fusion rule, read from the model card: real interpreters
(the tiny model of tests/make_tiny_model.py and the shipped model) on real
frames."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from make_tiny_model import write_model  # noqa: E402

from rtclean.detect.classical import ClassicalDetector  # noqa: E402
from rtclean.detect.fused import FusedDetector  # noqa: E402
from rtclean.detect.tflite import Fusion, TFLiteDetector, card_fusion  # noqa: E402
from rtclean.errors import ModelError  # noqa: E402
from rtclean.train.synth import read_frames  # noqa: E402

SHIPPED = Path(__file__).resolve().parents[1] / "models" / "breakup.tflite"
AGREE = {"rule": "agree", "classical_score": 0.1, "classical_runs": 3}


def _card(path: Path, fusion=None) -> None:
    doc = {"threshold": 0.5}
    if fusion is not None:
        doc["fusion"] = fusion
    path.with_suffix(".json").write_text(json.dumps(doc))


def test_card_fusion_defaults_to_or_and_reads_agree(tmp_path):
    path = write_model(tmp_path / "m.tflite")
    assert card_fusion(path) == Fusion("or")  # no card
    _card(path)
    assert card_fusion(path) == Fusion("or")  # card without a rule
    _card(path, AGREE)
    assert card_fusion(path) == Fusion("agree", 0.1, 3)
    assert FusedDetector(TFLiteDetector(path)).fusion == Fusion("agree", 0.1, 3)


@pytest.mark.parametrize("fusion,msg", [
    ({"rule": "and"}, "unreadable fusion rule"),
    ({"rule": "agree", "classical_score": 0.1}, "unreadable fusion rule"),
    ({"rule": "agree", "classical_score": "x", "classical_runs": 3}, "unreadable fusion rule"),
    ({"rule": "agree", "classical_score": 0.6, "classical_runs": 3}, "0 < classical_score < 0.5"),
    ({"rule": "agree", "classical_score": 0.1, "classical_runs": 0}, "classical_runs >= 1"),
])
def test_bad_fusion_rule_is_a_one_line_model_error(tmp_path, fusion, msg):
    path = write_model(tmp_path / "m.tflite")
    _card(path, fusion)
    with pytest.raises(ModelError, match=msg) as ei:
        FusedDetector(TFLiteDetector(path))
    assert "\n" not in str(ei.value)


def test_agree_needs_classical_evidence_or_plain_or_does_not(tmp_path):
    """The tiny model fires on a bright clean frame; the classical detector
    sees nothing there. Plain OR follows the model; 'agree' does not, and
    keeps the model's score in the features."""
    bright = np.full((480, 848, 3), 245, np.uint8)
    plain, agree = write_model(tmp_path / "plain.tflite"), write_model(tmp_path / "agree.tflite")
    _card(agree, AGREE)
    r_or = FusedDetector(TFLiteDetector(plain)).detect(bright)
    r_ag = FusedDetector(TFLiteDetector(agree)).detect(bright)
    c = ClassicalDetector().detect(bright)
    assert c.score < 0.1 and c.features["runs"] < 3
    assert r_or.score > 0.95 and r_or.features["fusion_agree"] == 1.0
    assert r_ag.score == pytest.approx(c.score) and r_ag.features["fusion_agree"] == 0.0
    assert r_ag.features["model_calibrated"] > 0.95
    np.testing.assert_allclose(r_ag.bands, c.bands)


def test_shipped_rule_keeps_fast_pan_texture_clean(clips_dir):
    """tennis_fastpan (held out of training and of choosing the rule): the
    shipped model alone fires on the clay court's one-line streaks under a
    fast pan, the classical detector sees nothing there, and the default
    fused detector flags none of its real frames."""
    model, fused = TFLiteDetector(SHIPPED), FusedDetector(TFLiteDetector(SHIPPED))
    assert fused.fusion.rule == "agree"
    alone = flagged = 0
    for frame in read_frames(clips_dir / "tennis_fastpan_854x480.mkv"):
        alone += model.detect(frame).score >= 0.5
        flagged += fused.detect(frame).score >= 0.5
    assert alone >= 5
    assert flagged == 0
