"""Evaluation: metrics against hand-computed values, dataset synthesis and
`rtclean eval detect` end to end (real clips, real TFLite interpreter on a
real .tflite file written without TensorFlow, classical detector)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from rtclean.train import data
from rtclean.train.evaluate import confusion, pick_threshold, roc_auc, roc_curve, summary
from rtclean.train.synth import MIN_DAMAGED_LINES, frame_class, synth_dataset

sys.path.insert(0, str(Path(__file__).parent))
from make_tiny_model import write_model  # noqa: E402

Y = np.array([1, 1, 0, 0, 1, 0], bool)
S = np.array([0.9, 0.4, 0.35, 0.1, 0.8, 0.7])


def test_metrics_match_hand_computed_values():
    # at 0.5: predicted [1, 0, 0, 0, 1, 1] -> TP 2 (0.9, 0.8), FN 1 (0.4), FP 1 (0.7), TN 2
    assert confusion(Y, S >= 0.5) == {"tp": 2, "fp": 1, "tn": 2, "fn": 1}
    m = summary(Y, S, 0.5)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["fpr"] == pytest.approx(1 / 3)
    # pairs (pos, neg) ordered right: 0.9 and 0.8 beat all three negatives, 0.4 beats 0.35 and 0.1
    assert m["roc_auc"] == pytest.approx(8 / 9)
    assert summary(Y, S, 0.3)["recall"] == 1.0  # score >= threshold counts as positive


def test_auc_ties_and_degenerate_inputs():
    assert roc_auc(np.array([1, 0], bool), np.array([0.5, 0.5])) == pytest.approx(0.5)
    assert roc_auc(np.array([1, 1, 0], bool), np.array([0.2, 0.6, 0.6])) == pytest.approx(0.25)
    assert roc_auc(np.array([1, 1], bool), np.array([0.2, 0.6])) is None
    assert roc_auc(np.array([0, 1], bool), np.array([0.1, 0.9])) == 1.0
    m = summary(np.array([0, 0], bool), np.array([0.1, 0.9]), 0.5)
    assert m["recall"] is None and m["precision"] == 0.0 and m["fpr"] == 0.5


def test_roc_curve_points():
    fpr, tpr, thr = roc_curve(Y, S)
    # thresholds 0.9, 0.8, 0.7, 0.4, 0.35, 0.1 in turn
    assert fpr.tolist() == pytest.approx([0, 0, 0, 1 / 3, 1 / 3, 2 / 3, 1])
    assert tpr.tolist() == pytest.approx([0, 1 / 3, 2 / 3, 2 / 3, 1, 1, 1])
    assert thr[1] == 0.9
    # the trapezoid area under these points is the rank AUC
    assert np.trapezoid(tpr, fpr) == pytest.approx(roc_auc(Y, S))


def test_pick_threshold_limits_false_positives():
    y = np.r_[np.zeros(400, bool), np.ones(10, bool)]
    s = np.r_[np.linspace(0.0, 0.6, 400), np.full(10, 0.9)]
    t = pick_threshold(y, s, max_fpr=0.005)  # two negatives may score at or above t
    fpr = ((s >= t) & ~y).sum() / 400
    assert fpr <= 0.005 and ((s >= np.nextafter(t, 0) - 0.002) & ~y).sum() >= 2
    assert pick_threshold(np.ones(3, bool), np.ones(3)) == 0.5


def test_frame_class_floor():
    assert frame_class(None, 0.0) == "clean"
    assert frame_class("snow", 0.0) == "clean"  # the kind changed nothing
    assert frame_class("sparklies", MIN_DAMAGED_LINES / 2) is None  # near-invisible: not written
    assert frame_class("sparklies", MIN_DAMAGED_LINES) == "breakup"
    assert frame_class("frozen", 1.0) is None  # the no-signal check's business


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory, clips_dir) -> Path:
    out = tmp_path_factory.mktemp("synth")
    synth_dataset([str(clips_dir / "carphone_176x144.mp4"), str(clips_dir / "bag_handheld_480x360.avi")],
                  str(out), 24, seed=5, standard="pal", breakup=0.5, sim="image")
    return out


def test_synth_writes_class_folders_prev_frames_and_labels(synth_dir):
    recs = [json.loads(line) for line in (synth_dir / "labels.jsonl").read_text().splitlines()]
    assert len(recs) == 24
    classes = {r["class"] for r in recs}
    assert classes == {"breakup", "clean"}
    for r in recs:
        img = synth_dir / r["file"]
        assert img.is_file() and (synth_dir / ".prev" / img.name).is_file()
        assert len(r["bands"]) == 16 and r["clip"] and "seed" in r and "index" in r
        assert frame_class(r["kind"], r["damaged_lines"]) == r["class"]
        assert (r["class"] == "breakup") == (max(r["bands"]) > 0)
    frame = data.read_image(synth_dir / recs[0]["file"])
    assert frame.shape == (576, 720, 3)
    # the .prev of frame i is frame i - 1 as the receiver delivered it
    by_clip = [r for r in recs if r["clip"] == recs[0]["clip"]]
    a, b = by_clip[0], by_clip[1]
    assert b["index"] == a["index"] + 1
    prev_b = data.read_image(synth_dir / ".prev" / Path(b["file"]).name)
    assert np.array_equal(prev_b, data.read_image(synth_dir / a["file"]))


def test_dataset_index_and_errors(synth_dir, tmp_path):
    ds = data.load_index([str(synth_dir)])
    assert ds.classes == ("clean", "breakup")
    assert all(s.prev is not None and s.record is not None for s in ds.samples)
    (tmp_path / "empty").mkdir()
    with pytest.raises(data.DatasetError, match="expected two class folders"):
        data.load_index([str(tmp_path / "empty")])
    one = tmp_path / "one" / "ok"
    one.mkdir(parents=True)
    (one / "a.png").write_bytes((synth_dir / ds.samples[0].path.relative_to(synth_dir)).read_bytes())
    with pytest.raises(data.DatasetError, match=r"found 1 \(ok\)"):
        data.load_index([str(tmp_path / "one")])
    # user classes: sorted, the second is positive when there is no "breakup"
    (tmp_path / "one" / "ko").mkdir()
    (tmp_path / "one" / "ko" / "b.png").write_bytes((one / "a.png").read_bytes())
    user = data.load_index([str(tmp_path / "one")])
    assert user.classes == ("ko", "ok") and [s.label for s in user.samples] == [0, 1]


def test_eval_detect_takes_a_folder_of_clean_frames_alone(synth_dir, tmp_path, rtclean_cmd):
    # A user's clean DVR frames measure false alarms by themselves: FPR is
    # reported, recall and AUC are "n/a" (null), nothing fails. Training
    # still needs both classes, and a lone class of unknown meaning is refused.
    import shutil

    clean = tmp_path / "mine" / "clean"
    clean.mkdir(parents=True)
    for img in sorted((synth_dir / "clean").iterdir())[:6]:
        shutil.copy(img, clean / img.name)
    with pytest.raises(data.DatasetError, match=r"found 1 \(clean\)"):
        data.load_index([str(tmp_path / "mine")])
    ds = data.load_index([str(tmp_path / "mine")], one_class_ok=True)
    assert ds.classes == ("clean", "breakup") and [s.label for s in ds.samples] == [0] * 6
    (tmp_path / "ok" / "ok").mkdir(parents=True)
    shutil.copy(next(clean.iterdir()), tmp_path / "ok" / "ok" / "a.png")
    with pytest.raises(data.DatasetError, match=r"found 1 \(ok\)"):
        data.load_index([str(tmp_path / "ok")], one_class_ok=True)
    out = tmp_path / "report"
    proc = subprocess.run(rtclean_cmd + ["eval", "detect", "--data", str(tmp_path / "mine"), "--out", str(out), "-q"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rep = json.loads((out / "report.json").read_text())
    folders = rep["sets"]["folders"]
    assert folders["positives"] == 0 and folders["negatives"] == 6
    for name, r in folders["detectors"].items():
        assert r["recall"] is None and r["roc_auc"] is None, name
        assert r["fpr"] is not None and r["confusion"]["fp"] + r["confusion"]["tn"] == 6, name
    assert "recall n/a" in proc.stdout and (out / "report.html").stat().st_size > 0


def test_eval_detect_cli_writes_report(synth_dir, clips_dir, tmp_path, rtclean_cmd):
    model = write_model(tmp_path / "tiny.tflite", h=32, w=24, c=2, dtype="int8")
    out = tmp_path / "report"
    proc = subprocess.run(rtclean_cmd + ["eval", "detect", "--data", str(synth_dir), "--clips",
                                         str(clips_dir / "carphone_176x144.mp4"), "--model", str(model),
                                         "--out", str(out), "--frames", "30", "--seed", "9", "-q"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rep = json.loads((out / "report.json").read_text())
    # the model, the classical detector, and what `rtclean detect` scores
    # (both together plus the no-signal check): never below either alone
    # (both together plus the no-signal check), never below either alone;
    # then its verdict over time (rtclean_decided: the `breakup` flag), which
    # keeps every frame at or over the threshold and may add run frames
    assert set(rep["detectors"]) == {"tflite", "classical", "rtclean", "rtclean_decided"}
    for name, st in rep["sets"].items():
        d = st["detectors"]
        assert d["rtclean"]["confusion"]["tp"] >= max(d["tflite"]["confusion"]["tp"], d["classical"]["confusion"]["tp"]), name
        assert d["rtclean"]["confusion"]["fp"] >= max(d["tflite"]["confusion"]["fp"], d["classical"]["confusion"]["fp"]), name
        assert d["rtclean_decided"]["confusion"]["tp"] >= d["rtclean"]["confusion"]["tp"], name
        assert d["rtclean_decided"]["confusion"]["fp"] >= d["rtclean"]["confusion"]["fp"], name
    assert set(rep["sets"]) == {"folders", "simulated", "all"}
    sim = rep["sets"]["simulated"]
    assert sim["frames"] + sum(sim["skipped"].values()) == 30
    for name in ("tflite", "classical"):
        r = rep["sets"]["folders"]["detectors"][name]
        for key in ("precision", "recall", "f1", "roc_auc", "fpr", "confusion", "per_kind", "per_range"):
            assert key in r
        c = r["confusion"]
        assert c["tp"] + c["fn"] == rep["sets"]["folders"]["positives"] == 24 - rep["sets"]["folders"]["negatives"]
        assert rep["detectors"][name]["median_ms_per_frame"] > 0
    assert rep["sets"]["simulated"]["range_axis"] == "link_margin"
    # recall per damaged-line share: the bins split every breakup frame of
    # the simulated and the synthesised sets (their labels give the share)
    for set_name in ("folders", "simulated"):
        st = rep["sets"][set_name]
        for name, r in st["detectors"].items():
            bins = r["per_damage"]
            assert bins and sum(b["positives"] for b in bins) == st["positives"], (set_name, name)
            assert round(sum(b["recall"] * b["positives"] for b in bins)) == r["confusion"]["tp"], (set_name, name)
            assert all(b["range"].endswith("%") for b in bins)
    un = rep["untouched"]
    assert un["frames"] == 120 and un["clips"][0]["clip"] == "carphone_176x144.mp4"
    assert un["false_positives"]["rtclean_decided"] >= un["false_positives"]["rtclean"]
    page = (out / "report.html").read_text()
    assert page.count("<svg") == 3 * (1 + 4)  # ROC + a histogram per row, for each of the three sets
    assert 'class="roc"' in page and "untouched clips" in page
    assert page.count("per damaged-line share") == 3  # folders, simulated, all


def test_eval_detect_needs_something_to_evaluate(tmp_path, rtclean_cmd):
    proc = subprocess.run(rtclean_cmd + ["eval", "detect", "--out", str(tmp_path / "r")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip() == "rtclean: nothing to evaluate: give --data folders and/or --clips"


def test_dvr_roundtrip_halves_single_line_colour(clips_dir):
    """--dvr stores frames as an MJPEG DVR does: 4:2:0 chroma smears a
    one-line colour dash over two lines, which is why recorded files lose
    the chroma click cue that live capture keeps."""
    import cv2

    from rtclean.sim.feed import fit_frame
    from rtclean.train.synth import dvr_roundtrip, read_frames

    img = fit_frame(next(iter(read_frames(clips_dir / "walk_pan_720x480.mkv", 1))), (720, 576))
    ycc = cv2.cvtColor(img, cv2.COLOR_BGR2YCrCb).astype(np.int16)
    ycc[301, 200:260, 1] += 50  # one line, chroma only
    dashed = cv2.cvtColor(np.clip(ycc, 0, 255).astype(np.uint8), cv2.COLOR_YCrCb2BGR)

    def step(im):
        cr = cv2.cvtColor(im, cv2.COLOR_BGR2YCrCb)[:, 200:260, 1].astype(np.float32).mean(axis=1)
        return cr[301] - (cr[299] + cr[303]) / 2  # Cr of the dash line over its same-field neighbours

    assert step(dashed) > 35
    stored = dvr_roundtrip(dashed, 90)
    assert stored.shape == dashed.shape and step(stored) < 0.7 * step(dashed)


def test_eval_detect_dvr_option_is_checked(clips_dir, tmp_path, rtclean_cmd):
    proc = subprocess.run(rtclean_cmd + ["eval", "detect", "--clips", str(clips_dir / "carphone_176x144.mp4"),
                                         "--dvr", "101", "--out", str(tmp_path / "r")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip() == "rtclean: --dvr must be a JPEG quality 1-100 (0: off), got 101"


def test_h264_dvr_is_a_stream_that_softens_sparklies(clips_dir):
    """--dvr-h264 / --dvr-codec h264 store frames as a goggle's H.264 DVR
    does: one picture out per frame in, the clean picture kept (PSNR); a
    one-frame burst of sparklies is softened more than a q90 MJPEG DVR
    softens it, and, the store being a stream, its trace carries into the
    next frame (inter prediction), which a per-frame JPEG never does."""
    from rtclean.errors import RtcleanError
    from rtclean.sim.breakup import inject
    from rtclean.sim.feed import fit_frame
    from rtclean.train.synth import H264Dvr, dvr_roundtrip, read_frames

    frames = [fit_frame(f, (720, 576)) for f in read_frames(clips_dir / "walk_pan_720x480.mkv", 14)]
    broken = inject(frames[12], "sparklies", 0.15, np.random.default_rng(3))[0]
    hit = np.abs(broken.astype(np.int16) - frames[12]).max(axis=2) > 40  # the sparkle pixels
    assert 50 < hit.sum() < 5000
    clean_dvr, broken_dvr = H264Dvr(1500), H264Dvr(1500)
    for i, f in enumerate(frames):
        a = clean_dvr(f)
        b = broken_dvr(broken if i == 12 else f)
        assert a.shape == f.shape and a.dtype == np.uint8
        mse = float(np.mean((a.astype(np.float32) - f) ** 2))
        assert 10 * np.log10(255 ** 2 / mse) > 28, i  # the picture itself survives
        if i == 12:
            amp = {"captured": np.abs(broken.astype(np.int16) - f).max(axis=2)[hit].mean(),
                   "h264": np.abs(b.astype(np.int16) - a).max(axis=2)[hit].mean(),
                   "mjpeg90": np.abs(dvr_roundtrip(broken, 90).astype(np.int16)
                                     - dvr_roundtrip(f, 90)).max(axis=2)[hit].mean()}
        if i == 13:
            assert np.abs(b.astype(np.int16) - a).mean() > 0.1  # frame 13 was the same: the stream remembers
    assert amp["h264"] < 0.9 * amp["captured"] and amp["h264"] < amp["mjpeg90"], amp
    with pytest.raises(RtcleanError, match="even frame size"):
        H264Dvr(2000)(np.zeros((145, 176, 3), np.uint8))
    with pytest.raises(RtcleanError, match="100-100000"):
        H264Dvr(20)


@pytest.mark.parametrize("args,msg", [
    (["--dvr-size", "641x480"], "rtclean: --dvr-size 641x480: width and height must be even, 32-4096"),
    (["--dvr-size", "vga"], "rtclean: --dvr-size vga: expected WxH, e.g. 640x480"),
    (["--dvr-h264", "50"], "rtclean: --dvr-h264 must be a bitrate of 100-100000 kbit/s (0: off), got 50"),
    (["--dvr", "60", "--dvr-h264", "2000"], "rtclean: --dvr and --dvr-h264 exclude each other: one DVR stores "
                                            "the frames"),
])
def test_eval_detect_h264_dvr_option_is_checked(clips_dir, tmp_path, rtclean_cmd, args, msg):
    proc = subprocess.run(rtclean_cmd + ["eval", "detect", "--clips", str(clips_dir / "carphone_176x144.mp4"),
                                         *args, "--out", str(tmp_path / "r")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip() == msg


def test_eval_detect_with_an_h264_dvr(clips_dir, tmp_path, rtclean_cmd):
    """--dvr-h264 runs the detectors on the simulated frames as an H.264
    stream stores them, and the report says so."""
    out = tmp_path / "r"
    proc = subprocess.run(rtclean_cmd + ["eval", "detect", "--clips", str(clips_dir / "carphone_176x144.mp4"),
                                         "--frames", "6", "--dvr-h264", "2000", "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    sim = json.loads((out / "report.json").read_text())["sets"]["simulated"]
    assert sim["dvr_h264_kbps"] == 2000 and sim["dvr_jpeg_quality"] is None
    assert sim["frames"] + sum(sim["skipped"].values()) == 6


class _ColourStandOut:
    """A probe, not a breakup detector: each frame's colour standing out of
    its field's neighbour lines, which a notch decoder's cross-colour makes
    large and a comb cancels (tests/test_sim_analog.py)."""

    def detect(self, image):
        from rtclean.frames import DetectResult

        c = cv2.cvtColor(image, cv2.COLOR_BGR2YCrCb)[:, 12:-12, 1:].astype(np.float32)
        return DetectResult(score=float(np.abs(c[2:-2] - 0.5 * (c[:-4] + c[4:])).mean()))

    def reset(self):
        pass


def test_eval_detect_comb_decodes_the_simulated_ntsc_with_a_comb(clips_dir, tmp_path, rtclean_cmd):
    """--comb: the simulated set goes through the NTSC capture card that
    combs chroma; frames scored in the run show it (foliage's cross-colour
    cancels), the report says so, and with PAL or the image simulator it is
    exit 2 naming --comb."""
    from rtclean.train.evaluate import EvalDetector, score_sim_clips

    clip = clips_dir / "foliage_pan_720x480.mkv"
    means = {}
    for comb in (False, True):
        probe = EvalDetector("probe", _ColourStandOut(), 1e9, "probe")
        sc, _ = score_sim_clips([clip], 3, 7, [probe], "ntsc", 0.0, "analog", comb=comb)
        means[comb] = float(np.mean(sc.scores["probe"]))
    assert means[True] < 0.5 * means[False], means
    out = tmp_path / "r"
    proc = subprocess.run(rtclean_cmd + ["eval", "detect", "--clips", str(clip), "--frames", "2", "--sim", "analog",
                                         "--standard", "ntsc", "--comb", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "report.json").read_text())["sets"]["simulated"]["comb"] is True
    assert "combs chroma" in (out / "report.html").read_text()
    for extra in (["--sim", "analog"], ["--standard", "ntsc"]):
        proc = subprocess.run(rtclean_cmd + ["eval", "detect", "--clips", str(clip), "--frames", "2", "--comb",
                                             *extra, "--out", str(tmp_path / "bad")],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2 and proc.stderr.startswith("rtclean: --comb:"), proc.stderr
        assert "Traceback" not in proc.stderr


def test_interlace_takes_each_field_from_its_own_frame():
    """Even lines from frame t, odd lines from frame t + 1, one frame fewer;
    with a size, each frame is fitted to it before the weave."""
    from rtclean.train.synth import interlace

    frames = [np.full((6, 8, 3), v, np.uint8) for v in (10, 20, 30)]
    woven = list(interlace(iter(frames)))
    assert len(woven) == 2
    assert (woven[0][0::2] == 10).all() and (woven[0][1::2] == 20).all()
    assert (woven[1][0::2] == 20).all() and (woven[1][1::2] == 30).all()
    assert (frames[0] == 10).all()  # the input is not written to
    sized = list(interlace(iter(frames), (16, 12)))
    assert sized[0].shape == (12, 16, 3) and (sized[0][1::2] == 20).all()


def test_woven_real_pan_is_combed(clips_dir):
    """A fast pan woven as an interlaced camera gives it reads as combed to
    the classical detector (its ``comb`` feature over COMBED on most
    frames), the same frames as they are do not."""
    from rtclean.detect.classical import COMBED, ClassicalDetector
    from rtclean.train.synth import interlace, read_frames

    clip = clips_dir / "tennis_fastpan_854x480.mkv"
    combs = {}
    for name, frames in (("as is", read_frames(clip, 24)), ("woven", interlace(read_frames(clip, 25)))):
        det = ClassicalDetector()
        combs[name] = [det.detect(f).features["comb"] for f in frames]
    assert len(combs["woven"]) == 24
    assert max(combs["as is"]) < COMBED / 2
    assert np.median(combs["woven"]) > COMBED


def test_eval_detect_interlaced(clips_dir, tmp_path, rtclean_cmd):
    """--interlaced weaves the simulated set's content and the untouched
    check's frames, and the report says so."""
    out = tmp_path / "r"
    clip = clips_dir / "carphone_176x144.mp4"
    proc = subprocess.run(rtclean_cmd + ["eval", "detect", "--clips", str(clip), "--frames", "6", "--interlaced",
                                         "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "report.json").read_text())
    sim, un = report["sets"]["simulated"], report["untouched"]
    assert sim["interlaced"] is True and un["interlaced"] is True
    assert sim["frames"] + sum(sim["skipped"].values()) == 6
    import av

    with av.open(str(clip)) as c:
        n = sum(1 for _ in c.decode(video=0))
    assert un["frames"] == n - 1
    assert "interlaced camera" in (out / "report.html").read_text()


def test_dvr_scale_spreads_a_pal_click_over_two_lines():
    """A DVR recording 480 lines: a PAL frame's one-line click lands on two
    recorded lines at lower contrast (in both fields); an NTSC frame's 480
    lines only lose columns, and the click stays one line at full contrast."""
    from rtclean.train.synth import dvr_scale

    for h, spread in ((576, True), (480, False)):
        frame = np.full((h, 720, 3), 60, np.uint8)
        frame[301] = 220  # a white click line
        rows = dvr_scale(frame, (640, 480))[:, :, 1].mean(axis=1) - 60
        assert dvr_scale(frame, (720, h)) is frame
        lit = np.flatnonzero(rows > 8)
        if spread:
            assert len(lit) == 2 and lit[1] == lit[0] + 1 and rows.max() < 0.9 * 160, rows[lit]
        else:
            assert list(lit) == [301] and rows[301] > 0.97 * 160


def test_eval_detect_dvr_size(clips_dir, tmp_path, rtclean_cmd):
    """--dvr-size scales the simulated frames and the untouched clips to a
    DVR's recording size (here with MJPEG coding after it); the report says so."""
    out = tmp_path / "r"
    clip = clips_dir / "carphone_176x144.mp4"
    proc = subprocess.run(rtclean_cmd + ["eval", "detect", "--clips", str(clip), "--frames", "6",
                                         "--dvr-size", "160x120", "--dvr", "60", "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "report.json").read_text())
    sim, un = report["sets"]["simulated"], report["untouched"]
    assert sim["dvr_size"] == "160x120" == un["dvr_size"] and sim["dvr_jpeg_quality"] == 60
    assert sim["frames"] + sum(sim["skipped"].values()) == 6 and un["frames"] > 0
    assert "scaled to 160x120 as a DVR records" in (out / "report.html").read_text()
