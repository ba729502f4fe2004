"""The DVR controller with real recorders and files: automatic start/stop,
manual control, capture gaps, retention on an injected free-space figure,
disk full and recovery. Frames carry synthetic capture times, so the tests
run faster than real time; every file is decoded afterwards."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rtclean.config import RecordConfig
from rtclean.frames import PASS, Decision, DetectResult, Frame, Processed
from rtclean.record.dvr import AutoTrigger, Dvr
from rtclean.record.sidecar import read_sidecar
from tests.helpers import count_frames

W, H, FPS = 160, 120, 25.0
MiB = 1024 * 1024


def wait_until(cond, limit_s: float = 20.0) -> None:
    deadline = time.monotonic() + limit_s
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


class Feed:
    """Processed frames at 25 fps of synthetic time, signal on or off."""

    def __init__(self, dvr: Dvr, t0: float = 1000.0) -> None:
        self.dvr, self.t0, self.i, self.skipped = dvr, t0, 0, 0.0

    @property
    def t(self) -> float:  # computed, not accumulated: no float drift
        return self.t0 + self.i / FPS + self.skipped

    @t.setter
    def t(self, value: float) -> None:
        self.skipped += value - self.t

    def run(self, seconds: float, signal: bool = True) -> None:
        for _ in range(round(seconds * FPS)):
            ramp = (np.arange(W) + 3 * self.i) % 256
            img = np.repeat(np.repeat(ramp.astype(np.uint8)[None, :, None], H, axis=0), 3, axis=2)
            p = Processed(Frame(self.i, self.t, img, self.i / FPS), img, DetectResult(0.1),
                          Decision(breakup=not signal, no_signal=not signal), PASS)
            self.dvr.frame(p)
            self.i += 1

    def gap(self, seconds: float) -> None:
        """No frames at all (capture stalled): the pipeline calls gap()."""
        self.skipped += seconds
        self.dvr.gap(self.t)


def make_cfg(tmp_path: Path, **kw) -> RecordConfig:
    base = dict(dir=str(tmp_path / "rec"), segment_s=60.0, queue_s=30.0, start_after_s=1.0,
                stop_after_s=2.0, min_free_mb=0, mp4=False)
    base.update(kw)
    return replace(RecordConfig(), **base)


def clean_segments(d: Path) -> list[Path]:
    return sorted(d.glob("*.clean.ts")) + sorted(d.glob("*.clean.mp4"))


def test_auto_trigger_debounces():
    a = AutoTrigger(start_after_s=1.0, stop_after_s=2.0)
    assert not a.update(0.0, True) and not a.update(0.9, True) and a.update(1.0, True)
    assert a.update(1.5, False) and a.update(3.4, False)  # lost 1.9 s: still recording
    assert a.update(3.5, True)  # signal back: the loss timer resets
    assert a.update(4.0, False) and not a.update(6.0, False)
    assert not a.update(6.5, True) and a.update(7.5, True)


def test_auto_start_stop_and_resume_in_a_new_segment(tmp_path):
    cfg = make_cfg(tmp_path)
    dvr = Dvr(cfg, FPS, (W, H))
    feed = Feed(dvr)
    try:
        assert dvr.state == "waiting"
        feed.run(0.96)  # 24 frames: not yet 1 s of signal
        assert dvr.state == "waiting" and not clean_segments(Path(cfg.dir))
        feed.run(2.0)  # recording from 1 s of signal on
        assert dvr.state == "recording"
        feed.run(1.0, signal=False)  # snow: still recorded (stop_after_s = 2)
        feed.run(1.0)
        feed.run(3.0, signal=False)  # lost for 3 s: stops after 2
        assert dvr.state == "waiting"
        feed.run(0.5)
        assert dvr.state == "waiting"
        feed.run(1.0)
        assert dvr.state == "recording"
    finally:
        dvr.close()
    segs = clean_segments(Path(cfg.dir))
    assert len(segs) == 2
    first = read_sidecar(str(segs[0]).replace(".clean.ts", ".clean.jsonl"))
    idx = [r["index"] for r in first]
    # 1 s of signal (frames 0-24) waited; recorded from frame 25 to 2 s into the loss.
    assert idx[0] == 25 and idx == list(range(25, idx[-1] + 1))
    assert idx[-1] == 124 + 50 - 1  # loss began at frame 124; 2 s later (frame 174) it stops
    assert count_frames(segs[0]) == len(idx) == count_frames(str(segs[0]).replace("clean", "raw"))
    second = read_sidecar(str(segs[1]).replace(".clean.ts", ".clean.jsonl"))
    assert count_frames(segs[1]) == len(second) > 0
    assert second[0]["pts"] == 0.0  # a new segment starts its own clock


def test_capture_gap_closes_the_segment_and_resumes_in_a_new_one(tmp_path):
    cfg = make_cfg(tmp_path, start_after_s=0.0, stop_after_s=10.0)
    dvr = Dvr(cfg, FPS, (W, H))
    feed = Feed(dvr)
    try:
        feed.run(2.0)
        first = dvr.status()["clean"]
        wait_until(lambda: dvr.status()["clean"] is not None)
        feed.gap(3.0)  # card unplugged for 3 s: shorter than stop_after_s
        # The segment is finished (fsynced) without waiting for more frames.
        wait_until(lambda: dvr.status()["clean"] is None)
        assert dvr.state == "recording"
        feed.run(1.0)
    finally:
        dvr.close()
    segs = clean_segments(Path(cfg.dir))
    assert len(segs) == 2 and (first is None or Path(first) == segs[0])
    assert [count_frames(s) for s in segs] == [50, 25]
    assert [count_frames(str(s).replace("clean", "raw")) for s in segs] == [50, 25]


def test_manual_start_and_stop(tmp_path):
    cfg = make_cfg(tmp_path, auto=False)
    dvr = Dvr(cfg, FPS, (W, H))
    feed = Feed(dvr)
    try:
        feed.run(1.0)
        assert dvr.state == "off" and not dvr.manual
        dvr.set_manual(True)
        feed.run(1.0, signal=False)  # a manual start records even without signal
        assert dvr.state == "recording" and dvr.manual
        dvr.set_manual(False)
        feed.run(1.0)
        assert dvr.state == "off" and not dvr.manual
    finally:
        dvr.close()
    (seg,) = clean_segments(Path(cfg.dir))
    assert count_frames(seg) == 25


def test_manual_stop_in_auto_mode_holds_until_the_flight_ends(tmp_path):
    cfg = make_cfg(tmp_path, start_after_s=0.0, stop_after_s=1.0)
    dvr = Dvr(cfg, FPS, (W, H))
    feed = Feed(dvr)
    try:
        feed.run(1.0)
        assert dvr.state == "recording"
        dvr.set_manual(False)
        feed.run(2.0)
        assert dvr.state == "waiting" and dvr.manual  # held off by hand
        feed.run(1.5, signal=False)  # the flight ends...
        assert not dvr.manual
        feed.run(1.0)  # ...and the next one records by itself
        assert dvr.state == "recording"
    finally:
        dvr.close()
    assert [count_frames(s) for s in clean_segments(Path(cfg.dir))] == [25, 25]


class VirtualDisk:
    """Free space = capacity - bytes in the directory: a small filesystem."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity

    def __call__(self, d: Path) -> int:
        used = sum(e.stat().st_size for e in os.scandir(d) if e.is_file())
        return max(0, self.capacity - used)


def old_recording(d: Path, name: str, size: int, mtime: float, keep: bool = False) -> None:
    for kind in ("raw.mp4", "clean.mp4"):
        (d / f"{name}.{kind}").write_bytes(b"\0" * (size // 2))
    if keep:
        (d / f"{name}.keep").touch()
    for f in d.glob(name + ".*"):
        os.utime(f, (mtime, mtime))


def test_retention_deletes_oldest_never_kept_never_active_then_disk_full_and_resume(tmp_path):
    d = tmp_path / "rec"
    d.mkdir()
    old_recording(d, "20250101-000000-000", MiB, 1000.0, keep=True)  # oldest, kept
    old_recording(d, "20250101-000100-000", MiB, 2000.0)
    old_recording(d, "20250101-000200-000", MiB, 3000.0)
    disk = VirtualDisk(capacity=3 * MiB + MiB // 2)  # 0.5 MiB free
    cfg = make_cfg(tmp_path, start_after_s=0.0, min_free_mb=1)
    dvr = Dvr(cfg, FPS, (W, H), free_bytes=disk, retention_interval_s=0.05)
    feed = Feed(dvr)
    try:
        # At start: the oldest unkept one goes, which frees enough.
        assert dvr.retention.deleted == ["20250101-000100-000"]
        assert sorted(p.name.split(".")[0] for p in d.glob("*.mp4")) == \
            ["20250101-000000-000"] * 2 + ["20250101-000200-000"] * 2
        feed.run(1.0)
        assert dvr.state == "recording"
        active = dvr.active_names()
        assert len(active) == 1
        # The disk shrinks (other files appear): more must go, but never the
        # kept one or the one being written; then nothing is left to delete.
        disk.capacity = MiB + MiB // 2  # the kept 1 MiB + the active segment leave < 1 MiB free
        wait_until(lambda: dvr.retention.disk_full)
        assert dvr.retention.deleted == ["20250101-000100-000", "20250101-000200-000"]
        assert (d / "20250101-000000-000.keep").exists()
        assert active <= {p.name.split(".")[0] for p in d.iterdir()}
        feed.run(0.2)
        assert dvr.state == "disk_full" and dvr.status()["state"] == "disk_full"
        wait_until(lambda: dvr.status()["clean"] is None)  # segment closed cleanly
        (first,) = active
        # Once finished it is the oldest unkept recording, so it goes too.
        wait_until(lambda: dvr.retention.deleted[-1] == first)
        written = dvr.status()["streams"]["clean"]["frames_written"]
        assert written >= 25
        feed.run(1.0)
        assert dvr.status()["streams"]["clean"]["frames_written"] == written  # nothing recorded
        assert dvr.retention.disk_full  # the kept recording alone is too big
        # Space returns: recording resumes in a new segment.
        disk.capacity = 100 * MiB
        wait_until(lambda: not dvr.retention.disk_full)
        feed.run(1.0)
        assert dvr.state == "recording"
    finally:
        dvr.close()
    (seg,) = sorted(d.glob("*.clean.ts"))
    assert seg.name.split(".")[0] not in dvr.retention.deleted
    assert count_frames(seg) == 25 == count_frames(str(seg).replace("clean", "raw"))
    assert (d / "20250101-000000-000.clean.mp4").exists()  # kept throughout


@pytest.mark.allow_errors  # the failing recorder logs its error once
def test_recorder_failure_is_an_error_state_then_retried(tmp_path):
    from rtclean.errors import RtcleanError
    from rtclean.record.recorder import Recorder

    failures = {"left": 1}

    class Flaky(Recorder):
        def _open_writer(self, path):
            inner = super()._open_writer(path)
            if self.stream == "raw" and failures["left"]:
                failures["left"] -= 1
                real = inner.write

                def write(image, pts_s=None, n=[0]):
                    n[0] += 1
                    if n[0] == 10:
                        raise RtcleanError(f"{path}: No space left on device")
                    real(image, pts_s)

                inner.write = write
            return inner

    cfg = make_cfg(tmp_path, start_after_s=0.0)
    dvr = Dvr(cfg, FPS, (W, H), recorder_cls=Flaky)
    feed = Feed(dvr)
    try:
        feed.run(1.0)
        wait_until(lambda: dvr.recorders.get("raw") is None or dvr.recorders["raw"].error)
        dvr.tick(feed.t)
        assert dvr.state == "error" and "No space left" in dvr.status()["error"]
        feed.run(2.0)  # within the retry delay: not recording
        assert dvr.state == "error"
        feed.t += 5.0  # RETRY_S later
        feed.run(1.0)
        assert dvr.state == "recording" and dvr.status()["error"] is None
    finally:
        dvr.close()
    raws = sorted(Path(cfg.dir).glob("*.raw.ts"))
    assert count_frames(raws[-1]) == 25
    assert dvr.status()["streams"]["raw"]["frames_written"] >= 9 + 25


def test_vanished_recording_medium_is_an_error_not_a_new_folder(tmp_path):
    import shutil

    cfg = make_cfg(tmp_path, start_after_s=0.0, auto=False)
    dvr = Dvr(cfg, FPS, (W, H))
    try:
        shutil.rmtree(cfg.dir)  # the USB disk is pulled before recording starts
        dvr.set_manual(True)
        Feed(dvr).run(0.2)
        assert dvr.state == "error" and "is missing" in dvr.status()["error"]
        assert not Path(cfg.dir).exists()
    finally:
        dvr.close()
