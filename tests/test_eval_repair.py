"""`rtclean eval repair` end to end on two real clips (few frames): the JSON
report's structure and figures, the HTML page in headless Chromium, the crops."""

from __future__ import annotations

import json
import shutil
import subprocess

import cv2
import pytest

from rtclean.repair.evaluate import METHODS


@pytest.fixture(scope="module")
def report(clips_dir, rtclean_cmd, tmp_path_factory):
    out = tmp_path_factory.mktemp("evalrepair")
    r = subprocess.run(rtclean_cmd + ["eval", "repair", "--clips", str(clips_dir / "foliage_pan_720x480.mkv"),
                                      str(clips_dir / "tennis_fastpan_854x480.mkv"), "--frames", "40",
                                      "--out", str(out), "-q"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "report:" in r.stdout and "live_vs_raw_moving_db" in r.stdout
    return out, json.loads((out / "report.json").read_text())


def test_report_scores_every_method_per_gap_and_motion(report):
    _, rep = report
    s = rep["summary"]
    assert rep["clips"] == ["foliage_pan_720x480.mkv", "tennis_fastpan_854x480.mkv"]
    assert s["all"]["frames"] == len(rep["frames"]) > 5
    assert set(s["by_gap"]) == {"1", "2", "3-5", "6-12", "13+"}
    assert set(s["by_motion"]) == {"static", "slow", "fast"}
    assert sum(g["frames"] for g in s["by_gap"].values()) == s["all"]["frames"]
    for row in rep["frames"]:
        assert set(row["psnr"]) == set(METHODS) == set(row["ssim"])
        assert all(0 < v <= 99 for v in row["psnr"].values())
        assert all(-1 <= v <= 1 for v in row["ssim"].values())
        assert row["kind"] is not None  # only broken frames are scored
    # both panning clips move: every scored frame has motion
    assert s["moving"]["frames"] == s["all"]["frames"]
    # the repair beats the broken frames and the old blend on this content
    p = s["moving"]["psnr"]
    assert p["live"] > p["raw"] and p["offline"] > p["blend"] and p["offline"] >= p["live"] - 0.5
    for name in ("live_vs_raw_moving_db", "offline_vs_blend_moving_db", "live_frames_worse_than_raw"):
        t = s["targets"][name]
        assert {"value", "target", "met"} <= set(t)
    # SIGNAL LOST frames (policy, not repair) are counted apart from repaired ones
    for side in ("live", "offline"):
        t = s["targets"][f"{side}_frames_worse_than_raw"]
        lost = [r for r in rep["frames"] if r[f"{side}_action"] == "lost"]
        rest = [r for r in rep["frames"] if r[f"{side}_action"] != "lost"]
        assert t["lost_frames"] == len(lost) and t["repaired_frames"] == len(rest)
        assert t["value"] == sum(r["psnr"][side] < r["psnr"]["raw"] for r in rest)
        assert t["lost_frames_worse_than_raw"] == sum(r["psnr"][side] < r["psnr"]["raw"] for r in lost)


def test_html_report_renders_with_crops(report):
    out, rep = report
    crops = sorted((out / "crops").glob("*.jpg"))
    assert crops
    img = cv2.imread(str(crops[0]))
    assert img is not None and img.shape[1] == 6 * 320  # raw hold blend live offline truth
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium not installed")
    dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
                          (out / "report.html").as_uri()], capture_output=True, text=True, timeout=120).stdout
    assert "rtclean eval repair" in dom and "by gap length" in dom and "by motion class" in dom
    assert dom.count("<img") == len(crops)
    assert f"{rep['summary']['all']['frames']} broken frames scored" in dom


def test_bad_clip_path_is_one_clear_line(rtclean_cmd, tmp_path):
    r = subprocess.run(rtclean_cmd + ["eval", "repair", "--clips", str(tmp_path / "nope.mp4"), "--out",
                                      str(tmp_path / "o")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [f"rtclean: {tmp_path / 'nope.mp4'}: no such clip or folder"]
