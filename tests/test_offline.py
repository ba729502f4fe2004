"""`rtclean detect`, `rtclean clean` and `rtclean bench`: the formats outside
tools read (DESIGN.md), checked on real files with real decoders."""

from __future__ import annotations

import json
import os
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import decode_frames, ffprobe


@pytest.fixture(scope="module")
def broken_clip(tmp_path_factory, clips_dir) -> tuple[Path, list]:
    """Real footage (walk_pan, 47 frames) with simulated breakup, stored
    losslessly so the test knows exactly what rtclean was given."""
    from rtclean.record.writer import VideoWriter
    from rtclean.sim.feed import degrade

    src = decode_frames(clips_dir / "walk_pan_720x480.mkv")
    sims = list(degrade(src, seed=6, breakup=0.35, fps=29.97))
    path = tmp_path_factory.mktemp("clip") / "broken.mkv"
    w = VideoWriter(path, 720, 480, Fraction(30000, 1001), lossless=True)
    for s in sims:
        w.write(s.image)
    w.close()
    assert any(s.label.kind for s in sims) and any(not s.label.kind for s in sims)
    return path, sims


def run(rtclean_cmd, *argv, timeout=300):
    from tests.test_offline_batch import ours

    r = subprocess.run(rtclean_cmd + [str(a) for a in argv], capture_output=True, text=True, timeout=timeout)
    r.stderr = ours(r.stderr)  # without the TFLite runtime's own notice
    return r


def test_detect_json_format(tmp_path, rtclean_cmd, clips_dir):
    clip = clips_dir / "bag_handheld_480x360.avi"
    out = tmp_path / "d.json"
    r = run(rtclean_cmd, "detect", clip, "--json", out)
    assert r.returncode == 0, r.stderr
    d = json.loads(out.read_text())
    assert set(d) >= {"fps", "width", "height", "detector", "frames"}
    assert (d["width"], d["height"], d["fps"]) == (480, 360, 25.0)
    assert isinstance(d["detector"], str) and d["detector"]
    assert [f["index"] for f in d["frames"]] == list(range(196))
    for f in d["frames"]:
        assert set(f) >= {"index", "t", "score", "breakup"}
        assert 0.0 <= f["score"] <= 1.0 and isinstance(f["breakup"], bool)
    ts = [f["t"] for f in d["frames"]]
    assert ts == sorted(ts) and abs(ts[1] - ts[0] - 0.04) < 1e-6
    assert not any(f["breakup"] for f in d["frames"])  # real footage, no breakup


def test_detect_finds_simulated_breakup(tmp_path, rtclean_cmd, broken_clip):
    path, sims = broken_clip
    out = tmp_path / "d.json"
    assert run(rtclean_cmd, "detect", path, "--json", out).returncode == 0
    frames = json.loads(out.read_text())["frames"]
    assert len(frames) == len(sims)
    severe = [i for i, s in enumerate(sims) if s.label.kind and s.label.severity >= 0.3]
    assert severe
    caught = sum(frames[i]["breakup"] for i in severe)
    assert caught >= 0.9 * len(severe)


def test_clean_keeps_count_size_rate(tmp_path, rtclean_cmd, broken_clip):
    path, sims = broken_clip
    out = tmp_path / "clean.mp4"
    rep = tmp_path / "r.json"
    r = run(rtclean_cmd, "clean", path, "-o", out, "--report", rep)
    assert r.returncode == 0, r.stderr
    probe_in, probe_out = ffprobe(path), ffprobe(out)
    if probe_out is not None:
        assert probe_out["codec_name"] == "h264"
        for k in ("width", "height", "r_frame_rate", "nb_read_frames"):
            assert probe_out[k] == probe_in[k], k
    assert len(decode_frames(out)) == len(sims)
    report = json.loads(rep.read_text())
    assert set(report) >= {"frames", "replaced", "seconds"}
    assert len(report["frames"]) == len(sims)
    for f in report["frames"]:
        assert set(f) >= {"index", "score", "breakup", "action"}
        assert f["action"].split(":")[0] in ("pass", "repair", "hold", "lost")
    assert report["replaced"] == sum(f["action"] != "pass" for f in report["frames"]) > 0
    # With look-ahead, gaps between two clean frames are interpolated.
    assert any(f["action"] == "repair:interp" for f in report["frames"])


def test_clean_lossless_is_exact_where_nothing_was_repaired(tmp_path, rtclean_cmd, broken_clip):
    path, sims = broken_clip
    for mode in ([], ["--live"]):
        out = tmp_path / f"clean{len(mode)}.mkv"
        rep = tmp_path / f"r{len(mode)}.json"
        r = run(rtclean_cmd, "clean", path, "-o", out, "--lossless", "--report", rep, *mode)
        assert r.returncode == 0, r.stderr
        got = decode_frames(out)
        given = decode_frames(path)
        frames = json.loads(rep.read_text())["frames"]
        assert len(got) == len(given) == len(frames)
        passed = [i for i, f in enumerate(frames) if f["action"] == "pass"]
        replaced = [i for i, f in enumerate(frames) if f["action"] != "pass"]
        assert passed and replaced
        for i in passed:
            assert np.array_equal(got[i], given[i]), i
        assert any(not np.array_equal(got[i], given[i]) for i in replaced)
        if mode:
            assert not any(f["action"] == "repair:interp" for f in frames)


def test_clean_lossless_needs_mkv(tmp_path, rtclean_cmd, broken_clip):
    r = run(rtclean_cmd, "clean", broken_clip[0], "-o", tmp_path / "x.mp4", "--lossless")
    assert r.returncode == 1 and r.stderr.strip().splitlines() == [
        f"rtclean: {tmp_path / 'x.mp4'}: --lossless writes FFV1 in Matroska; use an .mkv output name"]


def test_bad_inputs_one_line(tmp_path, rtclean_cmd, clips_dir):
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 50000, dtype=np.uint8).tobytes())
    for argv in (["detect", tmp_path / "missing.mp4"], ["detect", garbage], ["clean", garbage, "-o", tmp_path / "o.mp4"]):
        r = run(rtclean_cmd, *argv)
        assert r.returncode == 1
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("rtclean: "), r.stderr
    assert "no such file" in run(rtclean_cmd, "detect", tmp_path / "missing.mp4").stderr


def test_truncated_video_processed_to_its_end(tmp_path, rtclean_cmd, clips_dir):
    data = (clips_dir / "bag_handheld_480x360.avi").read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    out = tmp_path / "d.json"
    r = run(rtclean_cmd, "detect", cut, "--json", out)
    assert r.returncode == 3
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "truncated" in lines[0] and lines[0].startswith("rtclean: warning: ")
    d = json.loads(out.read_text())
    assert 50 < len(d["frames"]) < 196 and d["truncated"] is True
    r = run(rtclean_cmd, "clean", cut, "-o", tmp_path / "c.mp4")
    assert r.returncode == 3 and len(decode_frames(tmp_path / "c.mp4")) == len(d["frames"])


@pytest.mark.slow
def test_bench_json_format(rtclean_cmd):
    r = run(rtclean_cmd, "bench", "--json", "--frames", "60", "--live-seconds", "3")
    assert r.returncode == 0, r.stderr
    b = json.loads(r.stdout)
    assert b["size"] == [720, 576] and b["threads"] == 1
    for stage in ("detect", "repair", "jpeg", "encode"):
        s = b["stages"][stage]
        assert 0 < s["median_ms"] <= s["p99_ms"]
    assert 0 < b["live_latency"]["median_ms"] <= b["live_latency"]["p99_ms"]
    if (os.cpu_count() or 1) > 1:  # detect.parallel's time, and the live path without it, in the same run
        assert 0 < b["stages"]["detect_parallel"]["median_ms"] <= b["stages"]["detect_parallel"]["p99_ms"]
        assert b["live_one_thread"]["frames_in"] > 0 and b["live_one_thread"]["latency"]["median_ms"] > 0
    for section in (b["live"], b["demo"]):
        assert section["frames_in"] > 0 and set(section["drops"]) == {"input", "live", "raw", "clean"}
    o = b["offline"]  # the offline cleaner on a 720x576 25 fps AVI, decode and encode included
    assert o["size"] == [720, 576] and o["fps"] == 25.0 and o["frames"] == 60
    assert o["single"]["x_realtime"] > 0 and o["single"]["cpu_x_realtime"] > 0
    assert o["batch"]["files"] == o["batch"]["jobs"] >= 1 and o["batch"]["x_realtime"] > 0
    assert o["batch"]["failed"] == []
    c = b["clients"]  # 0 and 4 clients + dashboard alternated, medians; JPEGs only while watched
    from rtclean.bench import CLIENT_PAIRS

    assert c["0"]["runs"] == c["4+dashboard"]["runs"] == CLIENT_PAIRS and c["1"]["runs"] == 1
    assert c["0"]["jpeg_encodes"] == 0 < c["4+dashboard"]["jpeg_encodes"] <= c["4+dashboard"]["frames_in"]
    assert len(c["cpu_vs_0_pairs"]) == CLIENT_PAIRS and c["rise_pct"]["cpu_vs_0"] is not None
    # H.264 clients take the recorder's packets: frames sent, no JPEG made for them.
    h = c["4+dashboard h264"]
    assert h["runs"] == CLIENT_PAIRS and h["jpeg_encodes"] == 0 < h["h264_frames_sent"]
    assert h["h264_p99_ms"] > 0 and len(c["h264_cpu_vs_0_pairs"]) == CLIENT_PAIRS
    assert c["rise_pct"]["h264_cpu_vs_0"] is not None
