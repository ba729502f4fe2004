"""The live pipeline end to end, as a user runs it: a real `rtclean run`
process, its real web server, its real recordings decoded afterwards."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from rtclean import config
from rtclean.errors import SourceError
from rtclean.pipeline import LivePipeline
from rtclean.sources.base import Source
from rtclean.sources.file import FileSource
from tests.helpers import count_frames, ffprobe, read_jsonl


def write_cfg(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "cfg.yaml"
    p.write_text(text)
    return p


DEMO_CFG = """
source: {{kind: demo, demo: {{standard: pal, seed: 3, breakup: 0.3}}}}
record: {{dir: {rec}, segment_s: {seg}, start_after_s: 0, mp4: false}}
live: {{host: 127.0.0.1, port: 0}}
"""


def start_run(rtclean_cmd, cfg: Path, *extra: str, env=None) -> tuple[subprocess.Popen, str]:
    """Start `rtclean run` and return it with its live view URL (read from its log)."""
    proc = subprocess.Popen(rtclean_cmd + ["run", "--config", str(cfg), *extra],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                            env={**os.environ, **(env or {})})
    url = None
    t_end = time.monotonic() + 60
    lines = []
    while time.monotonic() < t_end:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        m = re.search(r"live view at (http://\S+)", line)
        if m:
            url = m.group(1)
            break
    assert url, "no live view URL in the log:\n" + "".join(lines)
    return proc, url


def read_mjpeg(url: str, n: int) -> list[np.ndarray]:
    """Parse a multipart/x-mixed-replace stream with a real HTTP client."""
    frames = []
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.headers.get_content_type() == "multipart/x-mixed-replace"
        buf = b""
        while len(frames) < n:
            buf += r.read1(65536)
            start = buf.find(b"\xff\xd8")
            end = buf.find(b"\xff\xd9", start + 2)
            if start >= 0 and end > start:
                img = cv2.imdecode(np.frombuffer(buf[start:end + 2], np.uint8), cv2.IMREAD_COLOR)
                assert img is not None
                frames.append(img)
                buf = buf[end + 2:]
    return frames


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def segments(rec: Path, stream: str) -> list[Path]:
    return sorted(rec.glob(f"*.{stream}.ts"))


def test_demo_end_to_end(tmp_path, rtclean_cmd):
    rec = tmp_path / "rec"
    cfg = write_cfg(tmp_path, DEMO_CFG.format(rec=rec, seg=2))
    status_file = tmp_path / "status.json"
    proc, url = start_run(rtclean_cmd, cfg, "--duration", "7", "--status-json", str(status_file))
    try:
        frames = read_mjpeg(url + "/stream/clean.mjpg", 5)
        assert frames[0].shape == (576, 720, 3)
        assert not np.array_equal(frames[0], frames[-1])  # the picture moves
        raw = read_mjpeg(url + "/stream/raw.mjpg", 2)
        assert raw[0].shape == (576, 720, 3)
        s1 = get_json(url + "/api/status")
        time.sleep(1.0)
        s2 = get_json(url + "/api/status")
        assert s2["frames"]["in"] > s1["frames"]["in"] > 0
        assert s2["recording"]["active"] is True
        with urllib.request.urlopen(url + "/healthz", timeout=5) as r:
            assert r.status == 200
    finally:
        assert proc.wait(timeout=60) == 0, proc.stderr.read()
    status = json.loads(status_file.read_text())
    n_in = status["frames"]["in"]
    drops = status["drops"]
    assert n_in >= 7 * 25 * 0.9  # real time at 25 fps
    assert drops["raw"] == 0 and drops["clean"] == 0  # the target: no recorder drops

    raw_segs, clean_segs = segments(rec, "raw"), segments(rec, "clean")
    assert len(raw_segs) >= 3 and [p.name.replace(".raw.", ".") for p in raw_segs] == \
        [p.name.replace(".clean.", ".") for p in clean_segs]
    raw_total = sum(count_frames(p) for p in raw_segs)
    clean_total = sum(count_frames(p) for p in clean_segs)
    assert raw_total == n_in - drops["input"] - drops["raw"]
    assert clean_total == n_in - drops["input"] - drops["clean"]
    # Each clean segment has one sidecar line per frame, and raw covers the same frames.
    all_rows = []
    for seg in clean_segs:
        rows = read_jsonl(seg.with_suffix("").with_suffix(".clean.jsonl"))
        assert len(rows) == count_frames(seg) == count_frames(seg.with_name(seg.name.replace(".clean.", ".raw.")))
        all_rows += rows
    idx = [r["index"] for r in all_rows]
    assert idx == sorted(idx) and len(set(idx)) == len(idx)
    assert {"index", "t", "score", "breakup", "action"} <= set(all_rows[0])
    actions = {r["action"] for r in all_rows}
    assert "pass" in actions and actions - {"pass"}, "demo with breakup 0.3 should need repairs"
    probe = ffprobe(clean_segs[0])
    if probe is not None:
        assert probe["codec_name"] == "h264" and (probe["width"], probe["height"]) == (720, 576)


def test_file_source_end_to_end(tmp_path, clips_dir):
    clip = clips_dir / "carphone_176x144.mp4"
    cfg = config.Config()
    cfg.source.kind = "file"
    cfg.source.file.path = str(clip)
    cfg.source.file.realtime = True
    cfg.record.dir = str(tmp_path / "rec")
    cfg.record.segment_s = 2.0
    cfg.record.start_after_s = 0.0  # record from the first frame
    cfg.record.mp4 = False
    cfg.live.enabled = False
    src = FileSource(clip, realtime=True)
    status = LivePipeline(cfg, src).run()
    n_in = status["frames"]["in"]
    assert n_in == 120
    for stream in ("raw", "clean"):
        segs = segments(tmp_path / "rec", stream)
        assert len(segs) >= 2
        total = sum(count_frames(p) for p in segs)
        assert total == n_in - status["drops"]["input"] - status["drops"][stream]
    # The raw recording is the input: decoded frames match the clip's frames.
    first = cv2.VideoCapture(str(clip)).read()[1]
    import av

    with av.open(str(segments(tmp_path / "rec", "raw")[0])) as c:
        got = next(c.decode(video=0)).to_ndarray(format="bgr24")
    assert got.shape == first.shape
    assert np.mean(np.abs(got.astype(int) - first.astype(int))) < 6


def test_sd_notify_ready_status_watchdog(tmp_path, rtclean_cmd, clips_dir):
    sock_path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    sock.settimeout(0.5)
    # Real footage looped at its own rate, like a capture card.
    cfg = write_cfg(tmp_path, f"""
source: {{kind: file, file: {{path: {clips_dir / 'walk_pan_720x480.mkv'}, realtime: true, loop: true}}}}
record: {{dir: {tmp_path / 'rec'}, start_after_s: 0}}
live: {{host: 127.0.0.1, port: 0}}
""")
    proc, _ = start_run(rtclean_cmd, cfg, "--duration", "4", env={"NOTIFY_SOCKET": sock_path})
    got = []
    t_end = time.monotonic() + 30
    while time.monotonic() < t_end and proc.poll() is None:
        try:
            got.append(sock.recv(4096).decode())
        except TimeoutError:
            continue
    assert proc.wait(timeout=30) == 0
    sock.close()
    text = "\n".join(got)
    assert "READY=1" in text
    assert "WATCHDOG=1" in text
    assert re.search(r"STATUS=running, \d+\.\d fps in, breakup \d+%, recording", text)
    assert got.index(next(g for g in got if "READY=1" in g)) < got.index("WATCHDOG=1")


@pytest.mark.parametrize("argv, needle", [
    (["run", "--set", "source.kind=v4l2", "--set", "source.v4l2.device=/dev/video97"],
     "capture device /dev/video97 not found"),
    (["run", "--set", "source.kind=picamera2"], "picamera2 is not installed"),
    (["run", "--set", "source.kind=file"], "source.file.path: expected a video file path"),
])
def test_missing_device_one_clear_line(rtclean_cmd, argv, needle):
    r = subprocess.run(rtclean_cmd + argv + ["--set", "live.port=0", "--duration", "2"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    err = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(err) == 1 and needle in err[0] and err[0].startswith("rtclean: "), r.stderr


class ScriptedSource(Source):
    """A live source that follows a script: deliver frames, stall, or fail
    once (a capture card unplugged and plugged back). The pipeline around it
    is what is under test."""

    name = "scripted"
    live = True

    def __init__(self, n: int, stall_at: int | None = None, stall_s: float = 0.0,
                 fail_at: int | None = None) -> None:
        super().__init__()
        self.fps, self.size = 25.0, (160, 120)
        self.n, self.stall_at, self.stall_s, self.fail_at = n, stall_at, stall_s, fail_at
        self.i = 0
        self.opens = 0
        self.failed = False

    def open(self) -> None:
        self.opens += 1

    def read(self):
        if self.i >= self.n:
            return None
        if self.i == self.fail_at and not self.failed:
            self.failed = True
            raise SourceError("scripted: read failed (card unplugged?)")
        if self.i == self.stall_at:
            time.sleep(self.stall_s)
        time.sleep(0.04)
        ramp = (np.arange(160) + 3 * self.i) % 255
        img = np.repeat(np.repeat(ramp.astype(np.uint8)[None, :, None], 120, axis=0), 3, axis=2)
        self.i += 1
        return img, self.i / 25.0


def _quiet_cfg(tmp_path):
    cfg = config.Config()
    cfg.record.dir = str(tmp_path / "rec")
    cfg.record.start_after_s = 0.0
    cfg.record.mp4 = False
    cfg.live.enabled = False
    cfg.source.stall_s = 0.5
    return cfg


def test_stalled_source_reports_no_signal_then_recovers(tmp_path):
    src = ScriptedSource(60, stall_at=20, stall_s=1.5)
    pipe = LivePipeline(_quiet_cfg(tmp_path), src)
    states = []
    t = threading.Thread(target=lambda: [states.append(pipe.state) or time.sleep(0.05) for _ in range(100)],
                         daemon=True)
    t.start()
    status = pipe.run()
    assert "no_signal" in states
    i = states.index("no_signal")
    assert "running" in states[:i] and "running" in states[i:]
    assert status["frames"]["out"] == 60


def test_source_failure_reconnects_and_keeps_recording(tmp_path):
    src = ScriptedSource(50, fail_at=25)
    status = LivePipeline(_quiet_cfg(tmp_path), src).run()
    assert src.opens == 2 and status["reconnects"] == 1
    assert status["frames"]["in"] == status["frames"]["out"] == 50
    total = sum(count_frames(p) for p in segments(tmp_path / "rec", "clean"))
    assert total == 50


def test_warm_up_leaves_no_state_behind():
    """Warm-up runs every stage once, then forgets: the first real broken
    frame finds no clean history (signal lost slate), not the warm-up ramp."""
    from rtclean.frames import LOST, DetectResult, Frame
    from rtclean.pipeline import FrameProcessor

    cfg = config.Config()
    proc = FrameProcessor(cfg, 25.0)
    proc.warm_up((160, 120))
    white = np.full((120, 160, 3), 255, np.uint8)
    result = DetectResult(score=1.0)
    clean, action = proc.repairer.process(Frame(0, 0.0, white), proc.decider.update(result, 0.0), result)
    assert action == LOST
    assert not np.array_equal(clean, white)


def test_replay_source_paces_from_first_read():
    from rtclean.sources.replay import ReplaySource

    frames = [np.full((8, 8, 3), i, np.uint8) for i in range(3)]
    src = ReplaySource(frames, fps=50.0, duration_s=0.2)
    src.open()
    time.sleep(0.3)  # a clock started at open() would now deliver a burst
    t0 = time.monotonic()
    got = []
    while (item := src.read()) is not None:
        got.append(item)
    elapsed = time.monotonic() - t0
    assert len(got) == 10 and [int(im[0, 0, 0]) for im, _ in got[:4]] == [0, 1, 2, 0]
    assert elapsed >= 9 / 50.0 - 0.01


def test_a_repeated_frame_keeps_its_verdict(clips_dir):
    """A DVR recording 30 fps from a 25 fps receiver repeats every fifth
    frame. The detectors compare a frame with the one before, so a repeat of
    a faintly broken frame looks coherent and clean to them; the per-frame
    path gives the repeat the first copy's verdict instead, without running
    them. The frames: held-out analog breakup (seed 81's cup_handheld, whose
    frame 5 has faint sparklies)."""
    from rtclean.frames import Frame
    from rtclean.pipeline import FrameProcessor
    from rtclean.train.synth import SimSettings, frame_class, read_frames, simulate

    sim = list(simulate(read_frames(clips_dir / "cup_handheld_640x480.mp4", 6), 81002,
                        SimSettings("pal", 0.5, "analog")))
    assert frame_class(sim[5].label.kind, sim[5].label.damaged_lines) == "breakup"
    seq = [sf.image for sf in sim] + [sim[5].image.copy()]  # the repeat: same pixels, a new array

    # why: the detector alone calls the repeat clean
    proc = FrameProcessor(config.Config(), 30.0)
    alone = [proc.detector.detect(im).score for im in seq]
    assert alone[5] >= 0.5 and alone[6] < 0.5, alone

    proc = FrameProcessor(config.Config(), 30.0)
    runs = []
    real_detect = proc.detector.detect
    proc.detector.detect = lambda im: (runs.append(1), real_detect(im))[1]  # counts calls only
    out = [proc.process(Frame(i, i / 30.0, im)) for i, im in enumerate(seq)]
    assert out[5].result.score >= 0.5 and out[6].result.score == out[5].result.score
    assert out[6].decision.breakup and len(runs) == len(seq) - 1
    assert out[6].result is not out[5].result and out[6].result.bands is not None


def test_only_an_exact_repeat_counts():
    """A few new sparkles on a still scene change few pixels and are what
    must be found: anything short of pixel-for-pixel is scored afresh, and a
    source that reuses its buffer does not make every frame a repeat."""
    from rtclean.detect.repeat import RepeatedFrame
    from rtclean.frames import DetectResult

    rng = np.random.default_rng(0)
    img = rng.integers(0, 200, (576, 720, 3), np.uint8)
    rep = RepeatedFrame()
    assert rep.verdict(img) is None  # nothing remembered yet
    rep.remember(img, DetectResult(0.7, bands=np.full(16, 0.7, np.float32)))
    same = rep.verdict(img.copy())
    assert same is not None and same.score == 0.7 and same.no_signal is None
    clicked = img.copy()
    clicked[301, 400:430] = 255  # one short click, off the coarse grid
    assert rep.verdict(clicked) is None
    assert rep.verdict(img[:, :-2].copy()) is None  # another size
    img[:] = rng.integers(0, 200, img.shape, np.uint8)  # the buffer reused for a new frame
    assert rep.verdict(img) is None
    # the kept frame overwritten by a source's ring of buffers: a frame equal
    # to the new contents is no repeat of the frame that was scored
    assert rep.verdict(img.copy()) is None
    rep.reset()
    assert rep.verdict(img) is None
