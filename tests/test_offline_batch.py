"""`rtclean clean FILE|DIR... -o OUTDIR`: goggle DVR formats with sound, the
batch's error handling, drop mode, --roi, the HTML report, the progress bar
and --fps. Inputs are made the way goggles make them (PyAV and the ffmpeg
CLI, not rtclean's writer); outputs are read back with PyAV and ffprobe."""

from __future__ import annotations

import base64
import json
import os
import pty
import re
import shutil
import subprocess
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from rtclean.offline.dvrsample import write_dvr_file
from tests.helpers import decode_frames, psnr

FPS = 25


def run(rtclean_cmd, *argv, timeout=300):
    r = subprocess.run(rtclean_cmd + [str(a) for a in argv], capture_output=True, text=True, timeout=timeout)
    r.stderr = ours(r.stderr)
    return r


def ours(stderr: str) -> str:
    """stderr without the TFLite runtime's own notice, which its C++ code
    prints when a model loads ("INFO: Created TensorFlow Lite XNNPACK
    delegate for CPU."): not rtclean's output."""
    return "".join(ln for ln in stderr.splitlines(keepends=True)
                   if not ln.startswith("INFO: Created TensorFlow Lite"))


@pytest.fixture(scope="module")
def broken_frames(clips_dir) -> list[np.ndarray]:
    """Real footage (walk_pan, 720x480) with simulated breakup, 40 frames."""
    from rtclean.sim.feed import degrade

    src = decode_frames(clips_dir / "walk_pan_720x480.mkv")[:40]
    sims = list(degrade(src, seed=6, breakup=0.35, fps=FPS))
    assert any(s.label.kind for s in sims) and any(not s.label.kind for s in sims)
    return [s.image for s in sims]


@pytest.fixture(scope="module")
def dvr_dir(tmp_path_factory, broken_frames) -> Path:
    """One file per goggle DVR format, each with a sound track; the MPEG-TS
    one is made by the ffmpeg CLI from the AVI (H.264 + AAC)."""
    d = tmp_path_factory.mktemp("dvr")
    for ext in (".avi", ".mp4", ".mov"):
        write_dvr_file(d / f"flight{ext}", broken_frames, FPS, audio=True)
    if shutil.which("ffmpeg"):
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(d / "flight.avi"), "-c:v", "libx264",
                        "-preset", "ultrafast", "-c:a", "aac", "-f", "mpegts", str(d / "flight_ff.ts")], check=True)
    else:
        write_dvr_file(d / "flight_ff.ts", broken_frames, FPS, audio=True)
    return d


def frame_times(path: Path) -> list[float]:
    """Presentation time of every video frame as ffprobe (not our code) sees it."""
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "frame=best_effort_timestamp_time", "-of", "csv=p=0", str(path)],
                         capture_output=True, text=True, check=True).stdout
    return [float(x.strip(",")) for x in out.split() if x.strip(",") not in ("", "N/A")]


def start_time(path: Path) -> float:
    with av.open(str(path)) as c:
        return (c.start_time or 0) / 1e6


def audio_of(path: Path) -> tuple[str, int, np.ndarray] | None:
    with av.open(str(path)) as c:
        if not c.streams.audio:
            return None
        s = c.streams.audio[0]
        data = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(s)])
        return s.codec_context.name, s.codec_context.sample_rate, data


@pytest.fixture(scope="module")
def batch_run(tmp_path_factory, rtclean_cmd, dvr_dir):
    out = tmp_path_factory.mktemp("out")
    r = run(rtclean_cmd, "clean", dvr_dir, "-o", out, "--jobs", "2")
    return r, out


@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="needs ffprobe")
def test_batch_keeps_frames_timestamps_size_and_audio(batch_run, dvr_dir):
    r, out = batch_run
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # not a TTY: no progress bar, nothing went wrong
    inputs = sorted(dvr_dir.iterdir())
    assert len(inputs) == 4
    for src in inputs:
        dst = out / src.name
        assert dst.is_file(), dst
        got, given = decode_frames(dst), decode_frames(src)
        assert len(got) == len(given) == 40, src.name
        assert got[0].shape == given[0].shape == (480, 720, 3)  # never downscaled
        # Timestamps relative to each file's start: same frame times, and so
        # the same place relative to the sound.
        t_in = np.array(frame_times(src)) - start_time(src)
        t_out = np.array(frame_times(dst)) - start_time(dst)
        assert len(t_in) == len(t_out) == 40
        assert np.abs(t_in - t_out).max() < 0.002, (src.name, t_in[:3], t_out[:3])
        # The sound track: copied packet for packet, so it decodes to the same samples.
        a_in, a_out = audio_of(src), audio_of(dst)
        assert a_out is not None, src.name
        assert a_out[:2] == a_in[:2]
        assert len(a_out[2]) == len(a_in[2]) and np.array_equal(a_out[2], a_in[2]), src.name
        report = json.loads((out / f"{src.name}.report.json").read_text())
        assert report["audio"] == "copy"
        assert len(report["frames"]) == report["output_frames"] == 40
        assert report["replaced"] == sum(f["action"] != "pass" for f in report["frames"]) > 0
        assert (out / f"{src.name}.report.html").is_file()
    summary = r.stdout.strip().splitlines()
    assert len(summary) == 5 and summary[-1].startswith("4 of 4 files cleaned")


def test_audio_reencoded_only_where_the_container_refuses_it(tmp_path, rtclean_cmd, broken_frames):
    """PCM (AVI goggles) cannot go into MPEG-TS: the track is re-encoded and
    still covers the whole video."""
    src = write_dvr_file(tmp_path / "pcm.avi", broken_frames[:20], FPS, audio=True)
    out = tmp_path / "pcm.ts"
    rep = tmp_path / "r.json"
    r = run(rtclean_cmd, "clean", src, "-o", out, "--report", rep)
    assert r.returncode == 0, r.stderr
    assert json.loads(rep.read_text())["audio"] == "aac"
    codec, rate, data = audio_of(out)
    assert codec == "aac" and rate == 48000
    assert abs(len(data) / rate - 20 / FPS) < 0.05
    assert len(decode_frames(out)) == 20
    r = run(rtclean_cmd, "clean", src, "-o", tmp_path / "mute.avi", "--report", rep, "--no-audio")
    assert r.returncode == 0, r.stderr
    assert audio_of(tmp_path / "mute.avi") is None and json.loads(rep.read_text())["audio"] is None


def test_truncated_and_corrupt_files_in_a_batch(tmp_path, rtclean_cmd, broken_frames, dvr_dir):
    d = tmp_path / "in"
    d.mkdir()
    shutil.copy(dvr_dir / "flight.mp4", d / "good.mp4")
    data = (dvr_dir / "flight.avi").read_bytes()
    (d / "cut.avi").write_bytes(data[: len(data) // 2])  # goggles powered off mid-recording
    (d / "corrupt.mov").write_bytes(np.random.default_rng(1).integers(0, 256, 40000, dtype=np.uint8).tobytes())
    out = tmp_path / "out"
    r = run(rtclean_cmd, "clean", d, "-o", out)
    assert r.returncode == 1, r.stderr  # one file failed
    err = r.stderr.strip().splitlines()
    assert len(err) == 2, r.stderr
    corrupt = [ln for ln in err if "corrupt.mov" in ln]
    cut = [ln for ln in err if "cut.avi" in ln]
    assert len(corrupt) == 1 and corrupt[0].startswith("rtclean: ") and "warning" not in corrupt[0]
    assert len(cut) == 1 and cut[0].startswith("rtclean: warning: ") and "truncated" in cut[0]
    # The others completed: the good file whole, the cut one up to where it ends.
    assert len(decode_frames(out / "good.mp4")) == 40
    rep = json.loads((out / "cut.avi.report.json").read_text())
    assert rep["truncated"] is True and 5 < len(rep["frames"]) < 40
    assert len(decode_frames(out / "cut.avi")) == len(rep["frames"])
    assert not (out / "corrupt.mov").exists()
    # Without the corrupt file the batch exits with the truncation status.
    (d / "corrupt.mov").unlink()
    r = run(rtclean_cmd, "clean", d, "-o", tmp_path / "out2")
    assert r.returncode == 3, r.stderr


def test_drop_mode_removes_exactly_the_rejected_frames(tmp_path, rtclean_cmd, broken_frames):
    from rtclean.record.writer import VideoWriter

    src = tmp_path / "timelapse.mkv"
    with VideoWriter(src, 720, 480, FPS, lossless=True) as w:
        for im in broken_frames:
            w.write(im)
    out, rep = tmp_path / "kept.mkv", tmp_path / "r.json"
    r = run(rtclean_cmd, "clean", src, "-o", out, "--mode", "drop", "--lossless", "--report", rep)
    assert r.returncode == 0, r.stderr
    report = json.loads(rep.read_text())
    assert "drop" in (tmp_path / "r.html").read_text()  # the single-file form's HTML beside R.json
    rejected = [f["index"] for f in report["frames"] if f["breakup"]]
    kept = [f["index"] for f in report["frames"] if not f["breakup"]]
    assert rejected and kept and report["mode"] == "drop" and report["dropped"] == len(rejected)
    assert all(f["action"] == ("drop" if f["breakup"] else "pass") for f in report["frames"])
    got = decode_frames(out)
    assert len(got) == len(kept)
    for g, i in zip(got, kept):
        assert np.array_equal(g, broken_frames[i]), i


def test_roi_restricts_classification(tmp_path, rtclean_cmd, clips_dir):
    """Heavy snow only in the bottom rows: with --roi on the top of the
    picture no frame is rejected; without it the snowy ones are."""
    frames = decode_frames(clips_dir / "walk_pan_720x480.mkv")[:24]
    rng = np.random.default_rng(3)
    snowy = set(range(8, 16))
    for i in snowy:
        frames[i][360:] = rng.integers(0, 256, frames[i][360:].shape, dtype=np.uint8)
    src = write_dvr_file(tmp_path / "roi.mp4", frames, FPS, audio=False)
    reports = {}
    for name, extra in (("all", []), ("top", ["--roi", "0,0,720,320"])):
        rep = tmp_path / f"{name}.json"
        r = run(rtclean_cmd, "clean", src, "-o", tmp_path / f"{name}.mp4", "--mode", "drop", "--report", rep, *extra)
        assert r.returncode == 0, r.stderr
        reports[name] = {f["index"] for f in json.loads(rep.read_text())["frames"] if f["breakup"]}
    assert reports["all"] and reports["all"] <= snowy
    assert reports["top"] == set()
    r = run(rtclean_cmd, "clean", src, "-o", tmp_path / "x.mp4", "--roi", "600,0,200,100")
    assert r.returncode == 1 and r.stderr.strip().splitlines() == [
        f"rtclean: {src}: --roi 600,0,200,100 lies outside the 720x480 picture"]
    r = run(rtclean_cmd, "clean", src, "-o", tmp_path / "x.mp4", "--roi", "1,2,3")
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "x,y,w,h" in r.stderr


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="needs Debian's chromium")
def test_html_report_in_a_browser(batch_run, dvr_dir):
    r, out = batch_run
    page = out / "flight.mp4.report.html"
    report = json.loads((out / "flight.mp4.report.json").read_text())
    dom = subprocess.run(["/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu",
                          "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=60).stdout
    assert '<svg id="timeline"' in dom
    points = re.search(r'<polyline id="score"[^>]*points="([^"]*)"', dom).group(1).split()
    assert len(points) == len(report["frames"])
    # One shaded range and one table row per run of replaced frames.
    runs, prev = [], False
    for f in report["frames"]:
        cur = f["action"] != "pass"
        if cur and not prev:
            runs.append(f["index"])
        prev = cur
    assert dom.count('class="range"') == len(runs) > 0
    table = re.search(r'<table id="ranges">(.*?)</table>', dom, re.S).group(1)
    assert table.count("<tr>") == len(runs) + 1
    # Before/after thumbnails: the input frame and the output frame shown.
    imgs = re.findall(r'<img alt="(before|after) (\d+)" src="data:image/jpeg;base64,([^"]+)"', dom)
    assert len(imgs) == 2 * min(len(runs), 12)
    given, got = decode_frames(dvr_dir / "flight.mp4"), decode_frames(out / "flight.mp4")
    for kind, index, data in imgs:
        thumb = cv2.imdecode(np.frombuffer(base64.b64decode(data), np.uint8), cv2.IMREAD_COLOR)
        # The thumbnail resembles its own frame of its own video best.
        scores = [psnr(thumb, cv2.resize(ref, (thumb.shape[1], thumb.shape[0]), interpolation=cv2.INTER_AREA))
                  for ref in (given if kind == "before" else got)]
        # (an interpolated frame may equal its neighbour on a still scene).
        best = int(np.argmax(scores))
        assert (best == int(index) if kind == "before" else abs(best - int(index)) <= 1), (kind, index)
        assert scores[int(index)] > 22, (kind, index)


def test_progress_bar_only_on_a_tty(tmp_path, rtclean_cmd, dvr_dir):
    """Two files on two workers (progress travels from the worker processes)."""
    srcs = [str(dvr_dir / "flight.avi"), str(dvr_dir / "flight.mov")]
    master, slave = pty.openpty()
    p = subprocess.Popen(rtclean_cmd + ["clean", *srcs, "-o", str(tmp_path / "a"), "--jobs", "2"],
                         stdout=subprocess.PIPE, stderr=slave, text=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    p.wait(timeout=300)
    os.close(master)
    tty = ours(b"".join(chunks).decode().replace("\r\n", "\n"))
    assert p.returncode == 0, tty
    assert re.search(r"\r\[[#.]{28}\] +\d+%  files 0/2  \d+ frames", tty), tty
    assert "files 2/2  80 frames" in tty and tty.endswith("\r\x1b[K")  # cleared at the end
    r = run(rtclean_cmd, "clean", srcs[0], "-o", tmp_path / "b.mp4")
    assert r.returncode == 0 and r.stderr == ""


def _pan(clips_dir, n: int, step: float) -> list[np.ndarray]:
    """A camera pan made from one real frame: frame i is the window at x = i * step."""
    big = decode_frames(clips_dir / "foliage_pan_720x480.mkv")[0]
    return [big[40:440, int(round(i * step)):int(round(i * step)) + 480].copy() for i in range(n)]


def test_fps_upconversion_interpolates_between_cleaned_frames(tmp_path, rtclean_cmd, clips_dir):
    # 25 fps, 6 px per frame; at 60 fps output frame k shows x = 2.5 k, an
    # exact crop whenever k is even.
    frames = _pan(clips_dir, 20, 6.0)
    truth = decode_frames(clips_dir / "foliage_pan_720x480.mkv")[0]
    src = write_dvr_file(tmp_path / "pan.mp4", frames, FPS, audio=True)
    out, rep = tmp_path / "pan60.mkv", tmp_path / "r.json"
    r = run(rtclean_cmd, "clean", src, "-o", out, "--fps", "60", "--lossless", "--report", rep)
    assert r.returncode == 0, r.stderr
    report = json.loads(rep.read_text())
    got = decode_frames(out)
    assert len(got) == report["output_frames"] == 48  # 0.8 s at 60 fps
    assert report["output_fps"] == 60.0 and len(report["frames"]) == 20
    with av.open(str(out)) as c:
        assert c.streams.video[0].guessed_rate == 60 and c.streams.audio
    t = np.array(frame_times(out)) - start_time(out)
    assert np.allclose(np.diff(t), 1 / 60, atol=1.5e-3)
    src_frames = decode_frames(src)
    gains = []
    for k in range(2, 46, 2):
        if k % 12 == 0:  # falls on an input frame: that frame, untouched
            assert np.array_equal(got[k], src_frames[k * 25 // 60])
            continue
        x = int(2.5 * k)
        gt = truth[40:440, x:x + 480]
        i, alpha = divmod(k * 25 / 60, 1)
        blend = cv2.addWeighted(src_frames[int(i)], 1 - alpha, src_frames[int(i) + 1], alpha, 0)
        gains.append(psnr(got[k], gt) - psnr(blend, gt))
    assert np.median(gains) > 3.0, gains


def test_interpolate_writes_n_frames_that_beat_a_blend(tmp_path, rtclean_cmd, clips_dir):
    big = decode_frames(clips_dir / "foliage_pan_720x480.mkv")[0]
    a, mid, b = (big[40:440, x:x + 480] for x in (100, 112, 124))
    cv2.imwrite(str(tmp_path / "a.png"), a)
    cv2.imwrite(str(tmp_path / "b.png"), b)
    out = tmp_path / "frames"
    r = run(rtclean_cmd, "interpolate", tmp_path / "a.png", tmp_path / "b.png", "-n", "3", "-o", out)
    assert r.returncode == 0, r.stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == ["frame_001.png", "frame_002.png", "frame_003.png"]
    middle = cv2.imread(str(out / "frame_002.png"))  # time 2/4 = the midpoint
    assert middle.shape == a.shape
    blend = cv2.addWeighted(a, 0.5, b, 0.5, 0)
    assert psnr(middle, mid) > psnr(blend, mid) + 5.0
    # Bad input: one line each.
    cv2.imwrite(str(tmp_path / "small.png"), a[:100, :100])
    for argv in ((tmp_path / "a.png", tmp_path / "small.png"), (tmp_path / "a.png", tmp_path / "missing.png")):
        r = run(rtclean_cmd, "interpolate", *argv, "-n", "2", "-o", tmp_path / "x")
        assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("rtclean: ")


def test_batch_argument_errors(tmp_path, rtclean_cmd, dvr_dir):
    # Two inputs that would land on the same output name.
    d2 = tmp_path / "other"
    d2.mkdir()
    shutil.copy(dvr_dir / "flight.avi", d2 / "flight.avi")
    r = run(rtclean_cmd, "clean", dvr_dir / "flight.avi", d2 / "flight.avi", "-o", tmp_path / "o")
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "both be written" in r.stderr
    r = run(rtclean_cmd, "clean", dvr_dir, "-o", tmp_path / "o", "--report", tmp_path / "r.json")
    assert r.returncode == 1 and "single-file form" in r.stderr
    r = run(rtclean_cmd, "clean", dvr_dir / "flight.avi", "-o", tmp_path / "o.mp4", "--mode", "drop", "--fps", "60")
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def test_a_worker_killed_costs_only_its_file(tmp_path, rtclean_cmd, dvr_dir):
    """SIGKILL one worker process mid-file (what a crash in FFmpeg looks like):
    its file gets one error line, the other file still completes."""
    import signal
    import time

    out = tmp_path / "out"
    p = subprocess.Popen(rtclean_cmd + ["clean", str(dvr_dir / "flight.avi"), str(dvr_dir / "flight.mov"),
                                        "-o", str(out), "--jobs", "2"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    victim = None
    deadline = time.monotonic() + 120
    while victim is None and time.monotonic() < deadline and p.poll() is None:
        # CLI -> forkserver -> workers (the resource tracker has no children).
        for server in _children(p.pid):
            workers = _children(server)
            if workers:
                victim = min(workers)
                break
        time.sleep(0.05)
    assert victim is not None, "no worker process seen"
    os.kill(victim, signal.SIGKILL)
    stdout, stderr = p.communicate(timeout=300)
    stderr = ours(stderr)
    assert p.returncode == 1, stderr
    err = stderr.strip().splitlines()
    assert len(err) == 1 and "worker process died (exit status -9)" in err[0], stderr
    dead = "flight.avi" if "flight.avi" in err[0] else "flight.mov"
    alive = "flight.mov" if dead == "flight.avi" else "flight.avi"
    assert len(decode_frames(out / alive)) == 40
    assert not (out / dead).exists() and not list(out.glob(".*"))  # no half-written file left
    assert "1 of 2 files cleaned" in stdout and "1 failed" in stdout


def test_workers_stop_when_the_cli_is_killed(tmp_path, rtclean_cmd, broken_frames):
    """SIGKILL the CLI mid-batch: its workers stop too (no orphans cleaning
    on) and remove their half-written files."""
    import signal
    import time

    # Files long enough to be mid-way when the CLI dies: a fast machine
    # cleaned both 40-frame files within the half second this test used to
    # wait, and finished outputs are rightly kept.
    src = tmp_path / "in"
    src.mkdir()
    for ext in (".avi", ".mov"):
        write_dvr_file(src / f"flight{ext}", broken_frames * 10, FPS, audio=True)
    out = tmp_path / "out"
    p = subprocess.Popen(rtclean_cmd + ["clean", str(src / "flight.avi"), str(src / "flight.mov"),
                                        "-o", str(out), "--jobs", "2"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: list[int] = []
    deadline = time.monotonic() + 120
    while len(workers) < 2 and time.monotonic() < deadline and p.poll() is None:
        workers = [w for server in _children(p.pid) for w in _children(server)]
        time.sleep(0.05)
    assert len(workers) == 2, "workers not seen"
    while time.monotonic() < deadline and not (out.exists() and any(out.iterdir())):
        time.sleep(0.02)  # until they have started writing
    assert not list(out.glob("*.report.json")), "a file was finished before the kill"
    p.send_signal(signal.SIGKILL)
    p.wait()
    deadline = time.monotonic() + 30
    while any(Path(f"/proc/{w}").exists() for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(Path(f"/proc/{w}").exists() for w in workers), "orphaned workers still running"
    assert not [f for f in out.rglob("*") if f.is_file() and ".report." not in f.name]
