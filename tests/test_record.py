"""The DVR: writer, segment clock, sidecar and recorder, checked by decoding
the files they write (PyAV, and ffprobe when installed)."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import threading
import time
from dataclasses import replace
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from rtclean.config import RecordConfig
from rtclean.errors import RtcleanError
from rtclean.frames import PASS, REPAIR, Decision, DetectResult, Frame, Processed
from rtclean.record import Recorder, SegmentClock, SegmentKey, Sidecar, VideoWriter, read_sidecar

FPS = 25.0
W, H = 320, 240


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def clip_frames(clips_dir) -> list[np.ndarray]:
    """60 real frames (jerky handheld outdoor footage), downscaled to keep tests fast."""
    cap = cv2.VideoCapture(str(clips_dir / "bag_handheld_480x360.avi"))
    frames = []
    while len(frames) < 60:
        ok, img = cap.read()
        assert ok, "clip too short"
        frames.append(cv2.resize(img, (W, H), interpolation=cv2.INTER_AREA))
    cap.release()
    return frames


def decode(path: Path) -> list[av.VideoFrame]:
    fmt = "mpegts" if path.suffix == ".ts" else None
    with av.open(str(path), format=fmt) as c:
        return list(c.decode(video=0))


def bgr(frames: list[av.VideoFrame]) -> list[np.ndarray]:
    return [f.to_ndarray(format="bgr24") for f in frames]


def ffprobe_count(path: Path) -> int | None:
    if shutil.which("ffprobe") is None:
        return None
    out = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
                          "-show_entries", "stream=nb_read_frames", "-of", "json", str(path)],
                         capture_output=True, text=True, check=True).stdout
    return int(json.loads(out)["streams"][0]["nb_read_frames"])


def processed(i: int, t: float, raw: np.ndarray, clean: np.ndarray) -> Processed:
    broken = i % 7 == 3
    return Processed(frame=Frame(index=i, t=t, image=raw, pts=i / FPS), clean=clean,
                     result=DetectResult(score=0.9 if broken else 0.1),
                     decision=Decision(breakup=broken), action=REPAIR if broken else PASS)


def cleaned(img: np.ndarray) -> np.ndarray:
    """A visibly different picture for the clean stream (mirrored)."""
    return np.ascontiguousarray(img[:, ::-1])


def wait_until(cond, limit_s: float = 20.0) -> None:
    """Wait for another thread to reach a state (a bound, not a timing check)."""
    deadline = time.monotonic() + limit_s
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def record_cfg(tmp_path: Path, **kw) -> RecordConfig:
    return replace(RecordConfig(), dir=str(tmp_path / "rec"), **kw)


# --------------------------------------------------------------------------- writer


def test_ts_writer_roundtrip_frames_size_quality(tmp_path, clip_frames):
    path = tmp_path / "a.ts"
    with VideoWriter(path, W, H, FPS) as w:
        for i, img in enumerate(clip_frames):
            w.write(img, i / FPS)
    assert w.frames == len(clip_frames)
    frames = decode(path)
    assert len(frames) == len(clip_frames)
    assert ffprobe_count(path) in (None, len(clip_frames))
    assert (frames[0].width, frames[0].height) == (W, H)
    assert frames[0].format.name == "yuv420p"
    psnr = [cv2.PSNR(a, b) for a, b in zip(clip_frames, bgr(frames))]
    assert min(psnr) > 30, psnr
    # The decoded frame i is the written frame i, not a neighbour.
    assert cv2.PSNR(clip_frames[10], bgr(frames)[11]) < psnr[10] - 3
    # Timestamps follow what was given (90 kHz clock), starting at 0.
    times = [float(f.pts * f.time_base) for f in frames]
    assert times == pytest.approx([i / FPS for i in range(len(clip_frames))], abs=1e-4)


@pytest.mark.parametrize("ext", [".mkv", ".mp4", ".avi"])
def test_other_containers_follow_extension(tmp_path, clip_frames, ext):
    path = tmp_path / f"a{ext}"
    with VideoWriter(path, W, H, FPS) as w:
        for img in clip_frames[:20]:
            w.write(img)  # pts from the frame number
    frames = decode(path)
    assert len(frames) == 20
    with av.open(str(path)) as c:
        assert c.streams.video[0].codec_context.name == "h264"
        fmt = c.format.name
    assert {".mkv": "matroska", ".mp4": "mp4", ".avi": "avi"}[ext] in fmt
    assert min(cv2.PSNR(a, b) for a, b in zip(clip_frames, bgr(frames))) > 30


def test_ts_writer_keeps_timestamps_rising_and_gaps(tmp_path, clip_frames):
    path = tmp_path / "t.ts"
    given = [0.0, 0.04, 0.04, 0.03, 0.2, 0.24]  # a repeat, a step back, a gap (drops)
    with VideoWriter(path, W, H, FPS) as w:
        for img, t in zip(clip_frames, given):
            w.write(img, t)
    pts = [f.pts for f in decode(path)]
    assert len(pts) == len(given)
    assert all(b > a for a, b in zip(pts, pts[1:]))
    assert pts[4] == round(0.2 * 90000) and pts[5] == round(0.24 * 90000)


def test_odd_size_is_padded_by_one_pixel(tmp_path, clip_frames):
    img = [f[:239, :319] for f in clip_frames[:10]]  # 319x239
    path = tmp_path / "odd.ts"
    with VideoWriter(path, 319, 239, FPS) as w:
        for f in img:
            w.write(np.ascontiguousarray(f))
    assert w.encoded_size == (320, 240)
    out = bgr(decode(path))
    assert out[0].shape == (240, 320, 3)
    assert min(cv2.PSNR(a, b[:239, :319]) for a, b in zip(img, out)) > 30
    # The padding repeats the last column/row, so the picture edge stays clean.
    assert cv2.PSNR(out[0][:239, 319], out[0][:239, 318]) > 30


def test_lossless_ffv1_roundtrip_is_exact(tmp_path, clip_frames):
    rng = np.random.default_rng(7)
    # Odd size, real content and pure noise (nothing for a lossy codec to hide in).
    imgs = [np.ascontiguousarray(f[:237, :317]) for f in clip_frames[:6]]
    imgs += [rng.integers(0, 256, (237, 317, 3), dtype=np.uint8) for _ in range(4)]
    path = tmp_path / "exact.mkv"
    with VideoWriter(path, 317, 237, FPS, lossless=True) as w:
        for img in imgs:
            w.write(img)
    with av.open(str(path)) as c:
        assert "matroska" in c.format.name
        assert c.streams.video[0].codec_context.name == "ffv1"
    out = bgr(decode(path))
    assert len(out) == len(imgs)
    for a, b in zip(imgs, out):
        assert np.array_equal(a, b)


def test_writer_rejects_bad_input_clearly(tmp_path, clip_frames):
    with pytest.raises(RtcleanError, match="unknown container extension .xyz"):
        VideoWriter(tmp_path / "a.xyz", W, H, FPS)
    with pytest.raises(RtcleanError, match="use .mkv"):
        VideoWriter(tmp_path / "a.ts", W, H, FPS, lossless=True)
    with pytest.raises(RtcleanError, match="not available"):
        VideoWriter(tmp_path / "a.ts", W, H, FPS, codec="no_such_codec")
    with VideoWriter(tmp_path / "b.ts", W, H, FPS) as w:
        with pytest.raises(RtcleanError, match="frame is 160x120, the recording is 320x240"):
            w.write(cv2.resize(clip_frames[0], (160, 120)))


def test_snow_bitrate_is_capped(tmp_path):
    # Full-screen snow (signal lost) is the worst case for the encoder: CRF
    # alone would let the bitrate explode; the VBV cap is 2 x bitrate_kbps.
    rng = np.random.default_rng(1)
    snow = [rng.integers(0, 256, (H, W, 3), dtype=np.uint8) for _ in range(50)]  # 2 s
    sizes = {}
    for kbps in (500, 100_000):
        path = tmp_path / f"snow{kbps}.ts"
        with VideoWriter(path, W, H, FPS, bitrate_kbps=kbps) as w:
            for img in snow:
                w.write(img)
        sizes[kbps] = path.stat().st_size
    assert len(decode(tmp_path / "snow500.ts")) == 50
    capped_bits_per_s = sizes[500] * 8 / 2.0
    # ultrafast on pure noise overshoots the cap (measured ~1.5x incl. TS overhead)
    assert capped_bits_per_s < 2 * 2 * 500_000
    assert sizes[500] < sizes[100_000] / 3


@pytest.mark.skipif(Path("/dev/video11").exists(), reason="a V4L2 M2M encoder is present")
def test_hardware_encoder_missing_is_a_clear_error(tmp_path, clip_frames):
    # h264_v4l2m2m is the Pi 4's encoder; without its device node the option
    # must fail with one line naming the encoder, not a traceback.
    w = VideoWriter(tmp_path / "hw.ts", W, H, FPS, codec="h264_v4l2m2m")
    with pytest.raises(RtcleanError, match="cannot start encoder h264_v4l2m2m"):
        w.write(clip_frames[0])
    w.close()  # closing a writer whose encoder never opened is quiet
    assert w.frames == 0


# --------------------------------------------------------------------------- segment clock


class FixedWall:
    """A wall clock stuck at one second: what a Pi without RTC may report."""

    def __call__(self) -> float:
        return 1_000_000_000.0


def test_segment_clock_splits_at_segment_boundaries(tmp_path):
    clock = SegmentClock(tmp_path / "new" / "dir", 1.0, wall=FixedWall())
    assert (tmp_path / "new" / "dir").is_dir()  # created
    t0 = 5000.0
    keys = [clock.key(t0 + i / FPS) for i in range(60)]
    numbers = [k.number for k in keys]
    assert numbers == [0] * 25 + [1] * 25 + [2] * 10
    assert keys[0].start == t0 and keys[25].start == pytest.approx(t0 + 1.0)
    # A stall: the first frame after it opens the segment it falls in.
    assert clock.key(t0 + 7.5).number == 7
    names = [Path(k.base).name for k in (keys[0], keys[25], keys[50])]
    assert len(set(names)) == 3
    for n in names:
        stamp, counter = n.rsplit("-", 1)
        assert len(stamp) == 15 and stamp[8] == "-" and len(counter) == 3


def test_segment_names_never_reuse_existing_files(tmp_path):
    d = tmp_path / "rec"
    first = SegmentClock(d, 60, wall=FixedWall()).key(1.0)
    Path(first.base + ".raw.ts").write_bytes(b"precious")
    # A restart with the clock at the same (wrong) time must not overwrite it.
    again = SegmentClock(d, 60, wall=FixedWall()).key(1.0)
    assert again.base != first.base
    assert again.base.endswith("-001") and first.base.endswith("-000")
    Path(again.base + ".clean.jsonl").write_text("x")  # any file with the base counts
    third = SegmentClock(d, 60, wall=FixedWall()).key(1.0)
    assert third.base.endswith("-002")
    assert Path(first.base + ".raw.ts").read_bytes() == b"precious"


def test_unwritable_directory_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(RtcleanError) as e:
        SegmentClock(blocker / "rec", 60)
    msg = str(e.value)
    assert "recording directory" in msg and "not writable" in msg and "\n" not in msg


# --------------------------------------------------------------------------- sidecar


def test_sidecar_lines_are_on_disk_before_close(tmp_path, clip_frames):
    path = tmp_path / "s.jsonl"
    sc = Sidecar(path)
    for i in range(3):
        sc.write(processed(i, 10 + i / FPS, clip_frames[0], clip_frames[0]), pts=i / FPS)
    # Flushed as written: another reader sees every line while it is open.
    lines = read_sidecar(path)
    assert [r["index"] for r in lines] == [0, 1, 2]
    assert lines[1] == {"index": 1, "t": 10.04, "pts": 0.04, "score": 0.1, "breakup": False,
                        "no_signal": False, "action": "pass"}
    sc.close()
    with pytest.raises(RtcleanError, match="cannot create sidecar"):
        Sidecar(path)  # never overwrites


# --------------------------------------------------------------------------- recorder


def run_pair(cfg: RecordConfig, frames, clock, t0=100.0, recorder_cls=Recorder):
    raw, clean = (recorder_cls(s, cfg, FPS, (W, H)) for s in ("raw", "clean"))
    raw.start()
    clean.start()
    for i, img in enumerate(frames):
        t = t0 + i / FPS
        p = processed(i, t, img, cleaned(img))
        key = clock.key(t)
        raw.submit(p, key)
        clean.submit(p, key)
    raw.close()
    clean.close()
    return raw, clean


def test_recorder_segments_raw_and_clean_match(tmp_path, clip_frames):
    cfg = record_cfg(tmp_path, segment_s=1.0, queue_s=10.0)  # frames arrive faster than real time
    clock = SegmentClock(cfg.dir, cfg.segment_s)
    raw, clean = run_pair(cfg, clip_frames, clock)
    rs, cs = raw.stats(), clean.stats()
    assert rs["error"] is None and cs["error"] is None
    assert rs["frames_written"] == cs["frames_written"] == 60
    assert rs["dropped"] == cs["dropped"] == 0
    assert rs["current"] is None and cs["current"] is None
    assert len(rs["segments"]) == len(cs["segments"]) == 3
    expected_counts = [25, 25, 10]
    first = 0
    for n, (rpath, cpath) in enumerate(zip(rs["segments"], cs["segments"])):
        rpath, cpath = Path(rpath), Path(cpath)
        base = str(rpath)[: -len(".raw.ts")]
        assert cpath == Path(base + ".clean.ts")
        rframes, cframes = decode(rpath), decode(cpath)
        assert len(rframes) == len(cframes) == expected_counts[n]
        assert ffprobe_count(rpath) in (None, expected_counts[n])
        assert rframes[0].key_frame and cframes[0].key_frame  # each file stands alone
        assert rframes[0].pts == cframes[0].pts == 0
        want = clip_frames[first:first + expected_counts[n]]
        rimgs, cimgs = bgr(rframes), bgr(cframes)
        assert min(cv2.PSNR(a, b) for a, b in zip(want, rimgs)) > 30
        assert min(cv2.PSNR(cleaned(a), b) for a, b in zip(want, cimgs)) > 30
        assert cv2.PSNR(want[0], cimgs[0]) < 30  # the clean file holds p.clean, not the raw
        side = read_sidecar(base + ".clean.jsonl")
        assert [r["index"] for r in side] == list(range(first, first + expected_counts[n]))
        assert side[0]["t"] == pytest.approx(100.0 + first / FPS)
        assert [r["pts"] for r in side] == pytest.approx(
            [float(f.pts * f.time_base) for f in cframes], abs=1e-4)
        assert [(r["breakup"], r["action"]) for r in side] == [
            (True, "repair") if r["index"] % 7 == 3 else (False, "pass") for r in side]
        first += expected_counts[n]
    assert not list(Path(cfg.dir).glob("*.raw.jsonl"))  # only the clean stream has a sidecar


def test_recorder_without_sidecar(tmp_path, clip_frames):
    cfg = record_cfg(tmp_path, sidecar=False)
    clock = SegmentClock(cfg.dir, cfg.segment_s)
    raw, clean = run_pair(cfg, clip_frames[:10], clock)
    assert clean.stats()["frames_written"] == 10
    assert not list(Path(cfg.dir).glob("*.jsonl"))


class GatedWriter:
    """Wraps the real writer; each write waits until the test opens the gate,
    so the encoder is as slow as the test wants."""

    def __init__(self, inner: VideoWriter, gate: threading.Event, entered: threading.Event):
        self.inner, self.gate, self.entered = inner, gate, entered
        self.path = inner.path

    def write(self, image, pts_s=None):
        self.entered.set()
        self.gate.wait()
        self.inner.write(image, pts_s)

    def close(self):
        self.inner.close()


@pytest.mark.timeout(60)  # a blocking submit() would hang here
def test_stalled_encoder_drops_oldest_and_never_blocks_submit(tmp_path, clip_frames):
    gate, entered = threading.Event(), threading.Event()

    class StalledRecorder(Recorder):
        def _open_writer(self, path):
            return GatedWriter(super()._open_writer(path), gate, entered)

    cfg = record_cfg(tmp_path, queue_s=0.2)  # 5 frames at 25 fps
    clock = SegmentClock(cfg.dir, cfg.segment_s)
    rec = StalledRecorder("clean", cfg, FPS, (W, H))
    rec.start()
    key = clock.key(0.0)
    rec.submit(processed(0, 0.0, clip_frames[0], clip_frames[0]), key)
    assert entered.wait(10)  # frame 0 is inside the (stalled) encoder
    # The encoder cannot move until the gate opens, which happens only after
    # every submit returned: a blocking submit would hang this test.
    for i in range(1, 60):
        rec.submit(processed(i, i / FPS, clip_frames[i], clip_frames[i]), clock.key(i / FPS))
    s = rec.stats()
    assert s["queue"] == s["queue_max"] == 5 and s["high_water"] == 5
    assert s["dropped"] == 54
    gate.set()
    rec.close()
    s = rec.stats()
    assert s["frames_written"] == 6 and s["dropped"] == 54
    assert s["frames_written"] + s["dropped"] == 60
    # The oldest were dropped: frame 0 (already taken) and the newest five remain.
    side = read_sidecar(s["segments"][0].replace(".clean.ts", ".clean.jsonl"))
    assert [r["index"] for r in side] == [0, 55, 56, 57, 58, 59]
    frames = decode(Path(s["segments"][0]))
    assert len(frames) == 6
    # Drops show as a time gap in the video.
    assert float(frames[1].pts * frames[1].time_base) == pytest.approx(55 / FPS, abs=1e-4)
    assert cv2.PSNR(clip_frames[57], bgr(frames)[3]) > 30


@pytest.mark.allow_errors
def test_encoder_failure_is_kept_logged_once_and_stops_recording(tmp_path, clip_frames, caplog):
    cfg = record_cfg(tmp_path, segment_s=1.0)
    clock = SegmentClock(cfg.dir, cfg.segment_s)
    rec = Recorder("raw", cfg, FPS, (W, H))
    rec.start()
    # First segment: written normally.
    for i in range(25):
        rec.submit(processed(i, i / FPS, clip_frames[i], clip_frames[i]), clock.key(i / FPS))
    wait_until(lambda: rec.stats()["frames_written"] == 25)
    # The recording medium disappears (USB stick pulled): the segment cannot
    # be finished and the next one cannot be opened.
    shutil.rmtree(cfg.dir)
    with caplog.at_level(logging.ERROR, logger="rtclean"):
        for i in range(25, 60):
            rec.submit(processed(i, i / FPS, clip_frames[i], clip_frames[i]), clock.key(i / FPS))
        rec.close()
    s = rec.stats()
    assert s["error"] and "No such file or directory" in s["error"]
    assert s["error"].startswith(str(Path(cfg.dir)))  # names the file
    assert rec.error == s["error"] and not rec.accepting
    assert s["frames_written"] == 25
    assert s["frames_written"] + s["dropped"] == 60
    rec.submit(processed(60, 60 / FPS, clip_frames[0], clip_frames[0]), clock.key(60 / FPS))
    assert rec.stats()["dropped"] == 36 and rec.stats()["frames_written"] == 25
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "raw recorder stopped" in errors[0].getMessage()


def test_close_drains_queue_and_fsyncs_final_segment(tmp_path, clip_frames):
    cfg = record_cfg(tmp_path, queue_s=10.0)
    clock = SegmentClock(cfg.dir, cfg.segment_s)
    rec = Recorder("raw", cfg, FPS, (W, H))
    # Submitting before start: everything waits in the queue, then is written.
    for i in range(40):
        rec.submit(processed(i, i / FPS, clip_frames[i], clip_frames[i]), clock.key(i / FPS))
    assert rec.stats()["queue"] == 40
    rec.start()
    rec.close()
    s = rec.stats()
    assert s["frames_written"] == 40 and s["queue"] == 0 and len(s["segments"]) == 1
    assert len(decode(Path(s["segments"][0]))) == 40
    assert s["encode_ms"]["count"] == 40


def test_recorder_rejects_unknown_stream():
    with pytest.raises(ValueError):
        Recorder("both", RecordConfig(), FPS, (W, H))


def test_segment_key_equality_ignores_start():
    assert SegmentKey(1, "a", start=1.0) == SegmentKey(1, "a", start=2.0)
    assert SegmentKey(1, "a") != SegmentKey(2, "a")


def test_encoder_threads_yield_to_the_live_path(tmp_path):
    """Recorder threads run at a raised nice value so a busy encoder never
    delays processing or the live view (Linux schedules threads apart)."""
    import os

    from rtclean.record.recorder import ENCODER_NICE

    cfg = RecordConfig(dir=str(tmp_path))
    rec = Recorder("raw", cfg, 25.0, (64, 48))
    rec.start()
    try:
        deadline = time.monotonic() + 5
        while rec._thread.native_id is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)  # the thread lowers its priority as it starts
        nice = os.getpriority(os.PRIO_PROCESS, rec._thread.native_id)
        assert nice == ENCODER_NICE
        assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) < ENCODER_NICE  # only that thread
    finally:
        rec.close()
