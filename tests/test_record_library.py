"""The recordings library (names, files, keep, delete) and the MP4 remux,
on real files written by the real writer and decoded afterwards."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest

from rtclean.errors import RtcleanError
from rtclean.frames import PASS, Decision, DetectResult, Frame, Processed
from rtclean.record import Sidecar, VideoWriter
from rtclean.record.library import RecordingLibrary
from rtclean.record.remux import remux_to_mp4
from tests.helpers import count_frames

W, H, FPS = 160, 120, 25.0


def picture(i: int) -> np.ndarray:
    ramp = (np.arange(W) * 2 + 5 * i) % 256
    return np.repeat(np.repeat(ramp.astype(np.uint8)[None, :, None], H, axis=0), 3, axis=2)


def write_recording(d: Path, name: str, n: int, mtime: float, broken_every: int = 0) -> None:
    """A finished segment as the DVR leaves it: raw + clean TS and a sidecar."""
    side = Sidecar(d / f"{name}.clean.jsonl")
    for stream in ("raw", "clean"):
        with VideoWriter(d / f"{name}.{stream}.ts", W, H, FPS, overwrite=False) as w:
            for i in range(n):
                w.write(picture(i), i / FPS)
    for i in range(n):
        broken = bool(broken_every) and i % broken_every == 0
        img = picture(i)
        side.write(Processed(Frame(i, 100 + i / FPS, img, i / FPS), img, DetectResult(0.9 if broken else 0.1),
                             Decision(breakup=broken), "repair:flow" if broken else PASS), pts=i / FPS)
    side.close()
    for f in d.glob(name + ".*"):
        os.utime(f, (mtime, mtime))


@pytest.fixture
def lib_dir(tmp_path) -> Path:
    d = tmp_path / "rec"
    d.mkdir()
    write_recording(d, "20260101-100000-000", 25, 1_000_000.0, broken_every=5)
    write_recording(d, "20260101-100100-000", 10, 1_000_100.0)
    (d / "notes.txt").write_text("not a recording")
    (d / ".rtclean-probe-x").write_text("")
    return d


def test_list_newest_first_with_summary(lib_dir):
    lib = RecordingLibrary(lib_dir, active=lambda: {"20260101-100100-000"})
    recs = lib.list()
    assert [r.name for r in recs] == ["20260101-100100-000", "20260101-100000-000"]
    new, old = recs
    assert new.active and not old.active and not old.keep
    assert set(old.files) == {"raw", "clean", "sidecar"}
    assert old.size_bytes == sum(p.stat().st_size for p in old.files.values())
    assert old.started == 1_000_000.0
    assert old.duration_s == pytest.approx(1.0)  # 25 frames at 25 fps
    assert old.breakup == {"frames": 25, "breakup_frames": 5, "replaced": {"repair": 5}}
    assert new.breakup["breakup_frames"] == 0 and new.duration_s == pytest.approx(0.4)


@pytest.mark.parametrize("bad", ["../etc", "a/b", "..", ".", "", "x\0y", "20260101-100000-000.raw",
                                 "/abs", "a b"])
def test_bad_names_are_value_errors(lib_dir, bad):
    lib = RecordingLibrary(lib_dir)
    for call in (lambda: lib.get(bad), lambda: lib.file(bad, "raw"), lambda: lib.delete(bad),
                 lambda: lib.set_keep(bad, True)):
        with pytest.raises(ValueError):
            call()


def test_unknown_name_and_kind_are_key_errors(lib_dir):
    lib = RecordingLibrary(lib_dir)
    with pytest.raises(KeyError):
        lib.get("20990101-000000-000")
    with pytest.raises(KeyError):
        lib.file("20260101-100000-000", "clean.mp4")
    with pytest.raises(KeyError):
        lib.file("20260101-100000-000", "../../x")
    path = lib.file("20260101-100000-000", "clean")
    assert path == (lib_dir / "20260101-100000-000.clean.ts").resolve()
    assert count_frames(path) == 25


def test_symlink_out_of_the_directory_is_not_served(lib_dir, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("x")
    (lib_dir / "20260101-120000-000.clean.ts").symlink_to(secret)
    lib = RecordingLibrary(lib_dir)
    assert "20260101-120000-000" not in [r.name for r in lib.list()]
    with pytest.raises(KeyError):
        lib.file("20260101-120000-000", "clean")


def test_keep_and_delete(lib_dir):
    active = {"20260101-100100-000"}
    lib = RecordingLibrary(lib_dir, active=lambda: active)
    lib.set_keep("20260101-100000-000", True)
    assert (lib_dir / "20260101-100000-000.keep").exists()
    assert lib.get("20260101-100000-000").keep
    lib.set_keep("20260101-100000-000", False)
    assert not lib.get("20260101-100000-000").keep
    with pytest.raises(RtcleanError, match="being written"):
        lib.delete("20260101-100100-000")
    assert lib.get("20260101-100100-000")  # untouched
    lib.set_keep("20260101-100000-000", True)
    lib.delete("20260101-100000-000")  # an explicit delete removes a kept one too
    assert not list(lib_dir.glob("20260101-100000-000*"))
    assert (lib_dir / "notes.txt").exists()
    with pytest.raises(KeyError):
        lib.get("20260101-100000-000")


def _top_level_boxes(path: Path) -> list[str]:
    data = path.read_bytes()
    boxes, pos = [], 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if size == 1:
            size = struct.unpack(">Q", data[pos + 8:pos + 16])[0]
        boxes.append(kind.decode("latin-1"))
        if size < 8:
            break
        pos += size
    return boxes


def test_remux_to_faststart_mp4_without_reencoding(lib_dir):
    ts = lib_dir / "20260101-100000-000.clean.ts"
    with av.open(str(ts)) as c:
        ts_packets = [bytes(p) for p in c.demux(video=0) if p.size]
    with av.open(str(ts)) as c:
        ts_pts = [f.pts * f.time_base for f in c.decode(video=0)]
    mp4 = remux_to_mp4(ts)
    assert mp4 == lib_dir / "20260101-100000-000.clean.mp4" and not ts.exists()
    assert not list(lib_dir.glob("*.part"))
    with av.open(str(mp4)) as c:
        assert "mp4" in c.format.name
        assert c.streams.video[0].codec_context.name == "h264"
        mp4_packets = [p for p in c.demux(video=0) if p.size]
    with av.open(str(mp4)) as c:
        frames = list(c.decode(video=0))
    assert len(frames) == 25 == len(mp4_packets)
    # Same timestamps as the TS (so the sidecar's pts still apply).
    assert [f.pts * f.time_base for f in frames] == pytest.approx(ts_pts, abs=1e-3)
    # No re-encoding: the same coded bytes (Annex B start codes -> length prefixes).
    assert sum(len(p) for p in ts_packets) == pytest.approx(sum(p.size for p in mp4_packets), rel=0.02)
    # Browser-friendly: the index (moov) comes before the media data.
    boxes = _top_level_boxes(mp4)
    assert boxes.index("moov") < boxes.index("mdat")
    lib = RecordingLibrary(lib_dir)
    assert set(lib.get("20260101-100000-000").files) == {"raw", "clean.mp4", "sidecar"}
    if shutil.which("ffprobe"):
        out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=format_name",
                              "-of", "csv=p=0", str(mp4)], capture_output=True, text=True, check=True)
        assert "mp4" in out.stdout


def test_remux_of_a_crash_cut_ts_keeps_the_whole_frames(lib_dir):
    ts = lib_dir / "20260101-100000-000.raw.ts"
    size = ts.stat().st_size
    with open(ts, "r+b") as f:  # a power cut in the middle of a packet
        f.truncate(size * 2 // 3 + 77)
    whole = count_frames(ts)
    mp4 = remux_to_mp4(ts)
    assert whole - 1 <= count_frames(mp4) <= whole


def test_remux_of_garbage_is_one_clear_error(tmp_path):
    bad = tmp_path / "x.raw.ts"
    bad.write_bytes(b"\0" * 1000)
    with pytest.raises(RtcleanError, match="cannot remux|no complete frame|no video"):
        remux_to_mp4(bad)
    assert bad.exists() and not list(tmp_path.glob("*.mp4*"))
