"""`rtclean check` as a user runs it: a real process, its output and exit status."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from rtclean.config import Config
from rtclean.service.check import FAIL, OK, WARN, check_storage


def run_check(rtclean_cmd, tmp_path: Path, *sets: str) -> subprocess.CompletedProcess:
    argv = rtclean_cmd + ["check", "--set", f"record.dir={tmp_path / 'rec'}"]
    for s in sets:
        argv += ["--set", s]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=tmp_path)


def finding(out: str, what: str) -> str:
    (line,) = [ln for ln in out.splitlines() if ln.split()[1:2] == [what]]
    return line


def test_ready_with_demo_source(rtclean_cmd, tmp_path):
    r = run_check(rtclean_cmd, tmp_path, "source.kind=demo", "detect.detector=classical")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip().endswith("ready")
    assert finding(r.stdout, "capture").split()[0] == OK
    assert "classical" in finding(r.stdout, "detector")
    storage = finding(r.stdout, "storage")
    assert storage.split()[0] == OK and "MB free" in storage
    assert not (tmp_path / "rec").exists()  # checking creates nothing


def test_missing_capture_device_and_model_fail(rtclean_cmd, tmp_path):
    r = run_check(rtclean_cmd, tmp_path, "source.kind=v4l2", "source.v4l2.device=/dev/video97",
                  "detect.detector=tflite", f"detect.model={tmp_path / 'none.tflite'}")
    assert r.returncode == 1
    cap = finding(r.stdout, "capture")
    assert cap.split()[0] == FAIL and "/dev/video97 not found" in cap
    model = finding(r.stdout, "model")
    assert model.split()[0] == FAIL and "none.tflite" in model
    assert "2 problem(s) found" in r.stdout


def test_auto_detector_without_model_is_a_warning(rtclean_cmd, tmp_path):
    r = run_check(rtclean_cmd, tmp_path, "source.kind=demo", f"detect.model={tmp_path / 'none.tflite'}")
    assert r.returncode == 0
    assert finding(r.stdout, "model").split()[0] == WARN


def test_missing_file_source_fails(rtclean_cmd, tmp_path):
    r = run_check(rtclean_cmd, tmp_path, "source.kind=file", f"source.file.path={tmp_path / 'x.mp4'}")
    assert r.returncode == 1 and finding(r.stdout, "capture").split()[0] == FAIL


def test_bad_config_exits_2_naming_the_key(rtclean_cmd, tmp_path):
    r = run_check(rtclean_cmd, tmp_path, "record.min_free_mb=-5")
    assert r.returncode == 2 and "record.min_free_mb" in r.stderr and r.stdout == ""


def test_storage_levels_with_injected_free_space(tmp_path):
    cfg = Config()
    cfg.record.dir = str(tmp_path)
    cfg.record.min_free_mb = 100
    (tmp_path / "20250101-000000-000.clean.mp4").write_bytes(b"\0" * (60 * 1024 * 1024))
    mb = 1024 * 1024
    assert check_storage(cfg, lambda d: 200 * mb)[0].level == OK
    # Below the floor, but deleting the old recording would free enough.
    assert check_storage(cfg, lambda d: 50 * mb)[0].level == WARN
    # Kept recordings cannot be deleted: nothing would be recorded.
    (tmp_path / "20250101-000000-000.keep").touch()
    f = check_storage(cfg, lambda d: 50 * mb)[0]
    assert f.level == FAIL and "nothing would be recorded" in f.detail


def test_shipped_companion_is_checked_and_a_missing_one_warns(rtclean_cmd, tmp_path):
    """The default model's card names a companion: `check` loads it too; a
    copy of the first model without its companion is a warning, not a
    failure (the detector runs on with the first model)."""
    r = run_check(rtclean_cmd, tmp_path, "source.kind=demo")
    assert r.returncode == 0, r.stdout + r.stderr
    comp, model = finding(r.stdout, "companion"), finding(r.stdout, "model")
    # detect.precision: auto runs the int8 files or their float32 twins (rtclean.detect.precision)
    twin = "float32; detect.precision: auto" in model
    assert twin or "int8; detect.precision: auto" in model, model
    solo = "breakup_solo.f32.tflite" if twin else "breakup_solo.tflite"
    assert comp.split()[0] == OK and f"{solo} loads" in comp and "counts from 0.4" in comp
    models = Path(__file__).resolve().parents[1] / "models"
    lone = tmp_path / "lone"
    lone.mkdir()
    for name in ("breakup.tflite", "breakup.json"):
        (lone / name).write_bytes((models / name).read_bytes())
    r = run_check(rtclean_cmd, tmp_path, "source.kind=demo", f"detect.model={lone / 'breakup.tflite'}")
    assert r.returncode == 0, r.stdout + r.stderr
    assert finding(r.stdout, "model").split()[0] == OK
    comp = finding(r.stdout, "companion")
    assert comp.split()[0] == WARN and "missing" in comp
    # a companion whose agreement is unreadable still loads; check says so
    card = json.loads((models / "breakup.json").read_text())
    card["companion"]["agree"] = {"score": 0.7, "click_runs": 3}
    (lone / "breakup.json").write_text(json.dumps(card))
    (lone / "breakup_solo.tflite").write_bytes((models / "breakup_solo.tflite").read_bytes())
    (lone / "breakup_solo.json").write_bytes((models / "breakup_solo.json").read_bytes())
    r = run_check(rtclean_cmd, tmp_path, "source.kind=demo", f"detect.model={lone / 'breakup.tflite'}")
    assert r.returncode == 0, r.stdout + r.stderr
    comp = finding(r.stdout, "companion")
    assert comp.split()[0] == WARN and "0 < score < 0.5" in comp and "own threshold only" in comp


def test_check_says_how_many_threads_detect_uses(rtclean_cmd, tmp_path):
    """detect.parallel (the classical detector on a second thread) needs two
    cores; `check` says which way the default detector will run."""
    import os

    r = run_check(rtclean_cmd, tmp_path, "source.kind=demo")
    threads = finding(r.stdout, "threads")
    if (os.cpu_count() or 1) > 1:
        assert threads.split()[0] == OK and "detect on 2 threads" in threads and "detect.parallel" in threads
    else:
        assert "detect on 1 thread (one core)" in threads
    r = run_check(rtclean_cmd, tmp_path, "source.kind=demo", "detect.parallel=false")
    assert "detect on 1 thread (detect.parallel: false)" in finding(r.stdout, "threads")
