"""`rtclean train` end to end on a tiny synthesised dataset: Keras training,
int8 + float32 export, checks with the real ai-edge-litert interpreter and
the live TFLiteDetector. Needs the [train] extra (TensorFlow); the error
paths and the no-TensorFlow CLI tests run without it."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rtclean.train.synth import synth_dataset

HAVE_TF = importlib.util.find_spec("tensorflow") is not None
needs_tf = pytest.mark.skipif(not HAVE_TF, reason="TensorFlow not importable (install the [train] extra)")


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory, clips_dir) -> Path:
    out = tmp_path_factory.mktemp("tinyset")
    synth_dataset([str(clips_dir / "carphone_176x144.mp4"), str(clips_dir / "bag_handheld_480x360.avi"),
                   str(clips_dir / "cup_handheld_640x480.mp4")], str(out), 36, seed=3, breakup=0.5)
    return out


@needs_tf
@pytest.mark.slow
def test_train_exports_int8_model_that_the_detector_runs(tiny_set, tmp_path, rtclean_cmd):
    out = tmp_path / "m" / "tiny.tflite"
    proc = subprocess.run(rtclean_cmd + ["train", "--data", str(tiny_set), "--out", str(out), "--epochs", "2",
                                         "--val-split", "0.5", "-q"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert out.is_file() and out.with_suffix(".f32.tflite").is_file()
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["classes"] == ["clean", "breakup"] and card["positive_class"] == "breakup"
    assert card["input"] == [1, 128, 96, 2] and card["bands"] == 16 and 0.0 < card["threshold"] < 1.0
    assert card["validation"]["frames"] > 0 and "int8" in card["validation"]
    # validation AUC is tracked per epoch and the best epoch's weights are kept
    epochs = [h for h in card["history"] if "epoch" in h]
    assert all("val_auc" in h for h in epochs)
    best = [h for h in card["history"] if "best_epoch" in h]
    assert len(best) == 1 and best[0]["best_val_auc"] == max(h["val_auc"] for h in epochs)
    # int8 reproduces Keras through the live detector class (preprocessing included)
    assert card["export_check"]["max_abs_diff_frame"] < 0.05
    assert card["export_check"]["scores_in_range"]

    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interp = Interpreter(model_path=str(out),
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interp.allocate_tensors()
    ins, outs = interp.get_input_details(), interp.get_output_details()
    assert [np.dtype(t["dtype"]) for t in ins + outs] == [np.int8] * 3
    assert sorted(int(np.prod(o["shape"])) for o in outs) == [1, 16]
    ops = {op["op_name"] for op in interp._get_ops_details()}
    allowed = {"CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "AVERAGE_POOL_2D", "RESHAPE", "CONCATENATION",
               "FULLY_CONNECTED", "LOGISTIC", "QUANTIZE", "DEQUANTIZE"}
    assert ops <= allowed, ops - allowed
    assert not any(np.dtype(t["dtype"]) == np.float32 for t in interp.get_tensor_details())

    from rtclean.detect.tflite import TFLiteDetector
    from rtclean.train import data

    det = TFLiteDetector(out)
    ds = data.load_index([str(tiny_set)])
    for s in ds.samples[:6]:
        cur, prev = data.load_pair(s)
        det.reset()
        det.detect(prev)
        res = det.detect(cur)
        assert 0.0 <= res.score <= 1.0 and res.bands.shape == (16,)
        assert np.all((res.bands >= 0) & (res.bands <= 1))
    # the float32 model follows the same contract
    f32 = TFLiteDetector(out.with_suffix(".f32.tflite"))
    assert 0.0 <= f32.detect(cur).score <= 1.0


@pytest.mark.parametrize("layout", ["empty", "one_class"])
def test_train_rejects_unusable_dataset_with_one_line(tmp_path, rtclean_cmd, layout):
    root = tmp_path / "ds"
    root.mkdir()
    if layout == "one_class":
        (root / "breakup").mkdir()
        (root / "breakup" / "x.png").write_bytes(b"not read before the class check")
    proc = subprocess.run(rtclean_cmd + ["train", "--data", str(root), "--out", str(tmp_path / "m.tflite")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"rtclean: {root}: expected two class folders")


def test_help_does_not_import_tensorflow():
    code = ("import sys; from rtclean.cli import build_parser; build_parser(); "
            "print('tensorflow' in sys.modules or 'keras' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "False"


def test_train_without_tensorflow_says_how_to_install(tiny_set, tmp_path):
    """With TensorFlow hidden (a meta-path finder that refuses it) the
    command ends with the one install line."""
    code = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] in ('tensorflow', 'keras'):\n"
        "            raise ImportError('blocked for the test')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from rtclean.cli import main\n"
        f"sys.exit(main(['train', '--data', {str(tiny_set)!r}, '--out', {str(tmp_path / 'm.tflite')!r}]))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip() == "rtclean: training needs TensorFlow: pip install 'rtclean[train]'"


def test_variety_adds_content_passes_in_the_clip_split_group(tmp_path, clips_dir):
    from rtclean.train.synth import Variety

    out = tmp_path / "v"
    synth_dataset([str(clips_dir / "carphone_176x144.mp4")], str(out), 24, seed=4, breakup=0.5,
                  variety=Variety(passes=2, demo=1, compress=1.0))
    rows = [json.loads(line) for line in (out / "labels.jsonl").read_text().splitlines()]
    names = [Path(r["file"]).name for r in rows]
    assert any(n.startswith("carphone_176x144_s") for n in names)  # pass 0: the clip as is
    assert any(n.startswith("carphone_176x144_v1_") for n in names)  # pass 1: varied content
    assert any(n.startswith("demo_s") for n in names)  # procedural scenery
    groups = {r["clip"] for r in rows}
    # every pass of a clip stays in the clip's group, so validation never sees its content
    assert groups == {"carphone_176x144.mp4"} | {r["clip"] for r in rows if Path(r["file"]).name.startswith("demo_s")}
    import cv2

    p0 = next(out / r["file"] for r in rows if Path(r["file"]).name.startswith("carphone_176x144_s"))
    p1 = next(out / r["file"] for r in rows if Path(r["file"]).name.startswith("carphone_176x144_v1_"))
    a, b = cv2.imread(str(p0)), cv2.imread(str(p1))
    assert a.shape == b.shape and float(np.mean(np.abs(a.astype(int) - b.astype(int)))) > 5


def test_one_clip_in_two_folders_stays_on_one_side_of_the_split(tmp_path):
    # A clip's frames spread over two data folders (say its DVR copy in a
    # second synth run) form one split group, so validation never holds a
    # clip that training saw.
    from rtclean.train import data, trainer

    _two_folder_set(tmp_path)
    ds = data.load_index([str(tmp_path / "a"), str(tmp_path / "b")])
    assert {s.group for s in ds.samples} == {"c1.mp4", "c2.mp4", "c3.mp4", "c4.mp4"}
    for seed in range(4):
        train, val = trainer.split(ds, 0.25, seed)
        seen = {ds.samples[i].group for i in train}
        held = {ds.samples[i].group for i in val}
        assert len(held) == 1 and not seen & held


def _two_folder_set(root: Path) -> None:
    """Folders a and b, each with clips c1-c4.mp4, three frames per class."""
    import cv2

    rng = np.random.default_rng(0)
    for folder in ("a", "b"):
        rows = []
        for cls in ("breakup", "clean"):
            (root / folder / cls).mkdir(parents=True)
            for clip in ("c1.mp4", "c2.mp4", "c3.mp4", "c4.mp4"):
                for k in range(3):
                    name = f"{cls}/{folder}_{clip[:2]}_{k}.png"
                    cv2.imwrite(str(root / folder / name), rng.integers(0, 255, (16, 16, 3), np.uint8))
                    rows.append(json.dumps({"file": name, "class": cls, "clip": clip}))
        (root / folder / "labels.jsonl").write_text("\n".join(rows) + "\n")


def test_a_one_class_folder_joins_a_two_class_set(tmp_path):
    # A folder of hard negatives (clean only) beside a labelled set: the
    # folders together hold both classes, so the set is usable; alone it is not.
    from rtclean.train import data

    _two_folder_set(tmp_path)
    shutil.rmtree(tmp_path / "b" / "breakup")
    ds = data.load_index([str(tmp_path / "a"), str(tmp_path / "b")])
    assert ds.classes == ("clean", "breakup")
    from_b = [s for s in ds.samples if s.path.parent.parent.name == "b"]
    assert len(from_b) == 12 and all(s.label == 0 for s in from_b)
    assert sum(s.label for s in ds.samples) == 12 and len(ds.samples) == 36
    with pytest.raises(data.DatasetError, match=r"/b: expected two class folders .* found 1 \(clean\)"):
        data.load_index([str(tmp_path / "b")])
    # both folders one-class, same class: still one class in all
    shutil.rmtree(tmp_path / "a" / "breakup")
    with pytest.raises(data.DatasetError, match=r"the dataset folders together: .* found 1 \(clean\)"):
        data.load_index([str(tmp_path / "a"), str(tmp_path / "b")])
    # three class names across the folders
    (tmp_path / "c" / "ko").mkdir(parents=True)
    shutil.copy(from_b[0].path, tmp_path / "c" / "ko" / "x.png")
    (tmp_path / "c" / "ok").mkdir()
    shutil.copy(from_b[0].path, tmp_path / "c" / "ok" / "x.png")
    with pytest.raises(data.DatasetError, match=r"hold 3 class folders, expected the same two in each"):
        data.load_index([str(tmp_path / "a"), str(tmp_path / "c")])


def test_val_clips_pin_the_validation_split(tmp_path):
    # --val-clips: exactly the named clips, from every folder, whatever the seed
    from rtclean.errors import RtcleanError
    from rtclean.train import data, trainer

    _two_folder_set(tmp_path)
    ds = data.load_index([str(tmp_path / "a"), str(tmp_path / "b")])
    for seed in range(3):
        train, val = trainer.split(ds, 0.2, seed, clips=["c2", "c4.mp4"])
        assert {ds.samples[i].group for i in val} == {"c2.mp4", "c4.mp4"}
        assert {ds.samples[i].group for i in train} == {"c1.mp4", "c3.mp4"}
        assert len(val) == 24 and len(train) == 24
    with pytest.raises(RtcleanError, match=r"--val-clips c9: no clip of that name in the data \(clips: c1.mp4"):
        trainer.split(ds, 0.2, 0, clips=["c2", "c9"])
    with pytest.raises(RtcleanError, match="both classes outside the validation split"):
        trainer.split(ds, 0.2, 0, clips=["c1", "c2", "c3", "c4"])


def test_train_cli_val_clips_unknown_is_one_line(tiny_set, tmp_path, rtclean_cmd):
    proc = subprocess.run(rtclean_cmd + ["train", "--data", str(tiny_set), "--out", str(tmp_path / "m.tflite"),
                                         "--val-clips", "nosuch_clip", "-q"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 1 and "--val-clips nosuch_clip: no clip of that name" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "m.tflite").exists()


@pytest.mark.parametrize("bad", [dict(passes=0), dict(demo=-1), dict(compress=1.5)])
def test_variety_rejects_bad_settings(tmp_path, clips_dir, bad):
    from rtclean.errors import RtcleanError
    from rtclean.train.synth import Variety

    with pytest.raises(RtcleanError, match="bad variety settings"):
        synth_dataset([str(clips_dir / "carphone_176x144.mp4")], str(tmp_path), 4, seed=1, variety=Variety(**bad))


def test_augment_keeps_pairs_coherent_and_fakes_scene_cuts():
    from rtclean.train.trainer import CUT_SHARE, _augment

    rng = np.random.default_rng(0)
    n = 400
    base = rng.random((n, 16, 12, 1), dtype=np.float32)
    x = np.concatenate([base, base], axis=-1)  # previous frame == current frame
    out = _augment(x, np.random.default_rng(1))
    assert out.shape == x.shape and out.dtype == np.float32 and out.min() >= 0 and out.max() <= 1
    diff = np.abs(out[..., 0] - out[..., 1]).mean(axis=(1, 2))
    cuts = diff > 0.1  # noise alone keeps a pair within a few hundredths
    assert abs(cuts.mean() - CUT_SHARE) < 0.06
    # photometric changes are the same on both frames of a pair that was not cut
    assert np.all(diff[~cuts] < 0.03)


def test_synth_dvr_stores_frames_as_a_goggle_dvr(tmp_path, clips_dir, rtclean_cmd):
    """`dataset synth --dvr 1`: every pass is stored as MJPEG after the
    simulator (frame and previous frame), with the quality in the labels;
    the same seed without --dvr gives the same labels on uncompressed frames."""
    import cv2

    runs = {}
    for name, extra in (("plain", []), ("dvr", ["--dvr", "1"])):
        out = tmp_path / name
        proc = subprocess.run(rtclean_cmd + ["dataset", "synth", "--clips", str(clips_dir / "carphone_176x144.mp4"),
                                             "--out", str(out), "--frames", "12", "--seed", "5", "--sim", "image",
                                             "-q", *extra], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        runs[name] = [json.loads(line) for line in (out / "labels.jsonl").read_text().splitlines()]
    plain, dvr = runs["plain"], runs["dvr"]
    assert [(r["file"], r["class"], r["kind"]) for r in plain] == [(r["file"], r["class"], r["kind"]) for r in dvr]
    assert all(35 <= r["dvr_jpeg_quality"] <= 90 for r in dvr) and not any("dvr_jpeg_quality" in r for r in plain)
    q = dvr[0]["dvr_jpeg_quality"]
    for r in dvr[:4]:
        for rel in (r["file"], ".prev/" + Path(r["file"]).name):
            a = cv2.imread(str(tmp_path / "plain" / rel))
            b = cv2.imread(str(tmp_path / "dvr" / rel))
            assert a.shape == b.shape and not np.array_equal(a, b)
            # what a JPEG at that quality makes of the plain frame, to the grey level
            ok, buf = cv2.imencode(".jpg", a, [cv2.IMWRITE_JPEG_QUALITY, q])
            assert np.abs(cv2.imdecode(buf, cv2.IMREAD_COLOR).astype(int) - b.astype(int)).max() <= 1


def test_synth_interlaced_weaves_the_content(tmp_path, clips_dir, rtclean_cmd):
    """`dataset synth --interlaced 1`: every pass's content is woven as an
    interlaced camera gives it before the simulator, and the labels say so;
    the clean frames of a fast pan read as combed to the classical detector,
    those of the plain run do not."""
    import cv2

    from rtclean.detect.classical import COMBED, ClassicalDetector

    combs, runs = {}, {}
    for name, extra in (("plain", []), ("woven", ["--interlaced", "1"])):
        out = tmp_path / name
        proc = subprocess.run(rtclean_cmd + ["dataset", "synth", "--clips", str(clips_dir / "tennis_fastpan_854x480.mkv"),
                                             "--out", str(out), "--frames", "16", "--seed", "5", "--sim", "image",
                                             "--breakup", "0.2", "-q", *extra], capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 0, proc.stderr
        runs[name] = [json.loads(line) for line in (out / "labels.jsonl").read_text().splitlines()]
        clean = [r for r in runs[name] if r["class"] == "clean"]
        assert len(clean) >= 4
        combs[name] = [ClassicalDetector().detect(cv2.imread(str(out / r["file"]))).features["comb"] for r in clean]
    assert all(r.get("interlaced") is True for r in runs["woven"])
    assert not any("interlaced" in r for r in runs["plain"])
    assert np.median(combs["woven"]) > COMBED > max(combs["plain"]), combs
    proc = subprocess.run(rtclean_cmd + ["dataset", "synth", "--clips", str(clips_dir / "carphone_176x144.mp4"),
                                         "--out", str(tmp_path / "bad"), "--interlaced", "1.5"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--interlaced" in proc.stderr


def _train_one_epoch(rtclean_cmd, data, out, preprocess: int) -> dict:
    """`rtclean train` for one epoch with the given preprocessing; its card."""
    proc = subprocess.run(rtclean_cmd + ["train", "--data", str(data), "--out", str(out), "--epochs", "1",
                                         "--val-split", "0.5", "--preprocess", str(preprocess), "-q"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(out.with_suffix(".json").read_text())


@needs_tf
@pytest.mark.slow
def test_train_with_preprocessing_version_2(tiny_set, tmp_path, rtclean_cmd):
    """`--preprocess 2`: the card says so and the live detector class, which
    reads the card, reproduces the Keras scores through that preprocessing."""
    out = tmp_path / "v2.tflite"
    card = _train_one_epoch(rtclean_cmd, tiny_set, out, preprocess=2)
    assert card["preprocess_version"] == 2 and "v2" in card["preprocess"]
    assert card["export_check"]["max_abs_diff_frame"] < 0.05
    from rtclean.detect.tflite import TFLiteDetector

    assert TFLiteDetector(out).preprocess_version == 2


@needs_tf
@pytest.mark.slow
def test_train_with_preprocessing_version_3(tiny_set, tmp_path, rtclean_cmd):
    """`--preprocess 3`: a 4-channel model (luma and impulse of the current
    and previous frames) whose card says version 3; the live detector class
    reads the card, builds the impulse planes itself and reproduces the
    Keras scores."""
    out = tmp_path / "v3.tflite"
    card = _train_one_epoch(rtclean_cmd, tiny_set, out, preprocess=3)
    assert card["preprocess_version"] == 3 and "v3" in card["preprocess"]
    assert card["input"] == [1, 128, 96, 4] and len(card["channels"]) == 4
    assert card["export_check"]["frames"] > 0 and card["export_check"]["max_abs_diff_frame"] < 0.05
    from rtclean.detect.tflite import TFLiteDetector

    det = TFLiteDetector(out)
    assert det.preprocess_version == 3
    res = det.detect(np.full((576, 720, 3), 90, np.uint8))
    assert 0.0 <= res.score <= 1.0 and res.bands.shape == (16,)


def test_augment_scales_the_impulse_planes_by_the_gain_only():
    """Channels 2 and 3 (version 3's impulse planes) are contrasts: no
    offset, gamma or noise, only the pair's gain, so a zero impulse stays
    zero; a faked scene cut swaps the previous impulse plane with the
    previous luma."""
    from rtclean.train.trainer import CUT_SHARE, _augment

    rng = np.random.default_rng(0)
    n = 400
    luma = rng.random((n, 16, 12, 1), dtype=np.float32)
    imp = np.zeros((n, 16, 12, 1), np.float32)
    imp[:, 5, 3] = 0.2
    imp[: n // 2, 9, 9] = 0.5  # half the samples have a second impulse: cuts can bring or drop it
    out = _augment(np.concatenate([luma, luma, imp, imp], -1), np.random.default_rng(1))
    assert out.shape == (n, 16, 12, 4)
    assert np.all(out[..., 2][imp[..., 0] == 0] == 0)
    assert np.all((out[:, 5, 3, 2] >= 0.2 * 0.8 - 1e-6) & (out[:, 5, 3, 2] <= 0.2 * 1.2 + 1e-6))
    assert out[:, 5, 3, 2].std() > 0.01  # the gain varies per pair
    cuts = np.abs(out[..., 0] - out[..., 1]).mean(axis=(1, 2)) > 0.1
    assert abs(cuts.mean() - CUT_SHARE) < 0.06
    # uncut pairs: the previous impulse plane is the current one's (same gain)
    np.testing.assert_allclose(out[~cuts, ..., 3], out[~cuts, ..., 2], atol=1e-6)
    swapped = (out[..., 9, 9, 2] > 0) != (out[..., 9, 9, 3] > 0)
    assert swapped.any() and np.all(cuts[swapped])


@needs_tf
@pytest.mark.slow
def test_training_graph_computes_what_the_exported_model_does(tmp_path):
    """The training graph runs each width-only depthwise step as a stride-1
    convolution with its odd columns kept (TensorFlow's own kernel takes no
    strides (1, 2)); the exported model has the strided convolution with the
    same weights. With random weights, batch-norm statistics included, both
    give the same frame and band scores (float32 export, a real
    interpreter)."""
    from ai_edge_litert.interpreter import Interpreter

    from rtclean.train.export import to_float32
    from rtclean.train.model import build_model

    h, w, c = 128, 32, 4
    train_model = build_model(h, w, c)
    assert any(layer.name.endswith("_odd_columns") for layer in train_model.layers)
    rng = np.random.default_rng(7)
    weights = [rng.normal(0.0, 0.3, x.shape).astype(np.float32) for x in train_model.get_weights()]
    # batch-norm variances must stay positive
    weights = [np.abs(x) + 0.5 if "variance" in v.path else x for x, v in zip(weights, train_model.weights)]
    train_model.set_weights(weights)
    path = tmp_path / "m.f32.tflite"
    path.write_bytes(to_float32(train_model, tmp_path))
    interp = Interpreter(model_path=str(path), num_threads=1)
    interp.allocate_tensors()
    x = rng.uniform(-1.0, 1.0, (3, h, w, c)).astype(np.float32)
    outs = {int(np.prod(o["shape"])): o["index"] for o in interp.get_output_details()}
    for i in range(len(x)):
        interp.set_tensor(interp.get_input_details()[0]["index"], x[i:i + 1])
        interp.invoke()
        keras_out = train_model(x[i:i + 1], training=False)
        np.testing.assert_allclose(interp.get_tensor(outs[1]).ravel(), np.asarray(keras_out["frame"]).ravel(),
                                   atol=1e-4)
        np.testing.assert_allclose(interp.get_tensor(outs[16]).ravel(), np.asarray(keras_out["bands"]).ravel(),
                                   atol=1e-4)
