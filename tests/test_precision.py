"""The int8 file or its float32 twin (rtclean.detect.precision): the twin
runs under the int8 file's card, decides as it does, and ``auto`` keeps the
twin only when it is clearly faster. Real interpreters, the shipped files
and real frames."""

from __future__ import annotations

import json
import logging
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from make_tiny_model import write_model  # noqa: E402

from rtclean import config  # noqa: E402
from rtclean.config import DetectConfig  # noqa: E402
from rtclean.detect import load_fused, make_detector  # noqa: E402
from rtclean.detect.classical import ClassicalDetector  # noqa: E402
from rtclean.detect.precision import FLOAT32_SHARE, keep_float32, load_detector  # noqa: E402
from rtclean.detect.tflite import TFLiteDetector, card_float32, load_companion, load_variant  # noqa: E402
from rtclean.errors import ConfigError, ModelError  # noqa: E402
from rtclean.sim.breakup import inject  # noqa: E402
from rtclean.train.synth import dvr_roundtrip, read_frames  # noqa: E402

SHIPPED = Path(__file__).resolve().parents[1] / "models" / "breakup.tflite"


def test_float32_twin_runs_under_the_int8_card():
    card = json.loads(SHIPPED.with_suffix(".json").read_text())
    twin = load_variant(SHIPPED, "float32")
    assert twin.model_path == SHIPPED.with_name(card["float32_model"]) and twin.card_path == SHIPPED
    assert twin.precision == "float32" and twin._in_dtype is np.float32
    assert twin.threshold == card["threshold"] and twin.preprocess_version == card["preprocess_version"]
    assert load_variant(SHIPPED, "int8").precision == "int8"
    companion = load_companion(SHIPPED, precision="float32")
    assert companion.model_path.name == "breakup_solo.f32.tflite" and companion.precision == "float32"
    assert companion.threshold == json.loads(SHIPPED.with_name("breakup_solo.json").read_text())["threshold"]
    pair = load_fused(SHIPPED, precision="float32")
    assert pair.precision == "float32" and pair.companion.precision == "float32"
    assert pair.fusion.rule == "agree"  # the int8 card's rule, not plain OR for a file without a card


def test_twin_decides_as_the_int8_file_does(clips_dir):
    """The pair through its float32 files against its int8 files, on faint
    sparklies (severity 0.1) every other frame of two held-out clips stored
    as an MJPEG DVR does, where the models find what the classical detector
    cannot: the calibrated scores stay close, neither flags a clean frame,
    and the verdicts agree on all but at most one frame (measured: all 96;
    27 of 47 broken frames for both, 17 for the classical detector alone)."""
    pairs = {p: load_fused(SHIPPED, precision=p) for p in ("int8", "float32")}
    classical = ClassicalDetector()
    verdicts = {p: [] for p in (*pairs, "classical")}
    gaps = []
    for name in ("walk_pan_720x480.mkv", "cup_handheld_640x480.mp4"):
        rng = np.random.default_rng(4)
        for det in (*pairs.values(), classical):
            det.reset()
        for i, frame in enumerate(read_frames(clips_dir / name, 48)):
            broken = i % 2 == 1
            image = dvr_roundtrip(inject(frame, "sparklies", 0.1, rng)[0] if broken else frame, 60)
            r = {p: det.detect(image) for p, det in pairs.items()}
            for p in pairs:
                verdicts[p].append((broken, r[p].score >= 0.5))
            verdicts["classical"].append((broken, classical.detect(image).score >= 0.5))
            gaps.append(abs(r["int8"].features["model_calibrated"] - r["float32"].features["model_calibrated"]))
    found = {p: sum(hit for broken, hit in v if broken) for p, v in verdicts.items()}
    for p, v in verdicts.items():
        assert not any(hit for broken, hit in v if not broken), p
    assert min(found["int8"], found["float32"]) >= found["classical"] + 6, found
    same = sum(a == b for a, b in zip(verdicts["int8"], verdicts["float32"]))
    assert same >= len(verdicts["int8"]) - 1
    assert np.median(gaps) < 0.02 and max(gaps) < 0.2


@pytest.mark.parametrize("t_int8, t_f32, kept", [(2.0, 1.2, True), (0.3, 0.5, False), (1.0, 0.9, False),
                                                  (1.0, FLOAT32_SHARE * 0.99, True)])
def test_auto_keeps_the_twin_only_when_clearly_faster(t_int8, t_f32, kept):
    assert keep_float32(t_int8, t_f32) is kept


def test_auto_times_both_files_and_logs_the_choice(caplog):
    with caplog.at_level(logging.INFO, logger="rtclean.detect.precision"):
        det = load_detector(SHIPPED, "auto")
    line = next(r.getMessage() for r in caplog.records if "detect.precision: auto" in r.getMessage())
    t_int8 = float(line.split(" ms int8")[0].split()[-1])
    t_f32 = float(line.split(" ms float32")[0].split()[-1])
    assert t_int8 > 0 and t_f32 > 0
    assert det.precision == ("float32" if keep_float32(t_int8, t_f32) else "int8")
    assert f"{det.model_path.name} chosen" in line
    cfg = DetectConfig()
    assert cfg.precision == "auto"
    fused = make_detector(cfg, SHIPPED.parents[1])
    assert fused.precision in ("int8", "float32") and fused.companion.precision == fused.precision


def test_auto_without_a_twin_is_the_file_itself(tmp_path, caplog):
    path = write_model(tmp_path / "m.tflite", dtype="int8")
    path.with_suffix(".json").write_text(json.dumps({"threshold": 0.5}))
    with caplog.at_level(logging.INFO, logger="rtclean.detect.precision"):
        det = load_detector(path, "auto")
    assert det.model_path == path and det.precision == "int8"
    assert not [r for r in caplog.records if "chosen" in r.getMessage()]  # nothing to time


def test_auto_with_a_broken_twin_keeps_the_int8_file(tmp_path, caplog):
    path = write_model(tmp_path / "m.tflite", dtype="int8")
    path.with_suffix(".json").write_text(json.dumps({"threshold": 0.5, "float32_model": "m.f32.tflite"}))
    (tmp_path / "m.f32.tflite").write_bytes(b"garbage!" * 8)
    with caplog.at_level(logging.WARNING):
        det = load_detector(path, "auto")
    assert det.model_path == path
    assert any("float32 twin of m.tflite left out" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("entry, msg", [
    (None, "names no float32 file"),
    ("gone.f32.tflite", "float32 file named in the card is missing"),
    ("../x.tflite", "float32_model must be a file name beside the card"),
    (3, "float32_model must be a file name beside the card"),
])
def test_float32_without_a_usable_twin_is_a_one_line_model_error(tmp_path, entry, msg):
    path = write_model(tmp_path / "m.tflite", dtype="int8")
    doc = {"threshold": 0.5} if entry is None else {"threshold": 0.5, "float32_model": entry}
    path.with_suffix(".json").write_text(json.dumps(doc))
    with pytest.raises(ModelError, match=msg) as ei:
        load_detector(path, "float32")
    assert "\n" not in str(ei.value)


def test_float32_twin_is_found_beside_a_copied_card(tmp_path):
    """A model folder copied elsewhere (as install.sh copies models/) keeps the pair."""
    for name in ("breakup.tflite", "breakup.f32.tflite", "breakup.json"):
        shutil.copy(SHIPPED.with_name(name), tmp_path / name)
    assert card_float32(tmp_path / "breakup.tflite") == tmp_path / "breakup.f32.tflite"
    assert load_detector(tmp_path / "breakup.tflite", "float32").model_path == tmp_path / "breakup.f32.tflite"


def test_timing_leaves_the_detector_as_it_was(clips_dir):
    """``invoke_ms`` runs the interpreter on a blank input between frames:
    the next frame's score (which also reads the previous frame) is what it
    would have been without it."""
    frames = list(read_frames(clips_dir / "cup_handheld_640x480.mp4", 2))
    timed, plain = TFLiteDetector(SHIPPED), TFLiteDetector(SHIPPED)
    timed.detect(frames[0])
    plain.detect(frames[0])
    assert timed.invoke_ms(runs=3, warmup=1) > 0
    assert timed.detect(frames[1]).features == plain.detect(frames[1]).features


def test_bad_precision_is_a_config_error():
    with pytest.raises(ConfigError) as e:
        config.parse("detect:\n  precision: fp16\n", "<t>")
    assert "detect.precision: expected one of auto, int8, float32, got 'fp16'" in str(e.value)
    assert e.value.exit_code == 2


def test_eval_detect_runs_the_file_asked_for():
    """`rtclean eval detect --precision float32` measures the twins, under
    the int8 card; the default stays the int8 files, whatever this CPU."""
    from rtclean.train.evaluate import make_detectors

    for precision, main, solo in (("int8", "breakup.tflite", "breakup_solo.tflite"),
                                  ("float32", "breakup.f32.tflite", "breakup_solo.f32.tflite")):
        rows = {d.name: d for d in make_detectors(str(SHIPPED), precision)}
        assert rows["tflite"].source.endswith(main) and rows["tflite"].detector.precision == precision
        assert f"{main} + companion {solo}" in rows["rtclean"].source
        assert rows["rtclean"].detector.fusion.rule == "agree"
    assert {d.name: d for d in make_detectors(str(SHIPPED))}["rtclean"].detector.precision == "int8"
