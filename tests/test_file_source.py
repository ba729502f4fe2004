"""The file source on every real clip: complete, ordered, paced when asked."""

from __future__ import annotations

import time

import pytest

from rtclean.errors import SourceError
from rtclean.sources.file import FileSource
from tests.conftest import CLIP_NAMES
from tests.helpers import ffprobe



@pytest.mark.parametrize("name", CLIP_NAMES)
def test_every_clip_decodes_completely(clips_dir, name):
    src = FileSource(clips_dir / name)
    src.open()
    n, last = 0, -1.0
    while (item := src.read()) is not None:
        image, pts = item
        assert image.shape == (src.size[1], src.size[0], 3)
        assert pts > last
        last = pts
        n += 1
    src.close()
    assert not src.truncated
    probe = ffprobe(clips_dir / name)
    if probe is not None:
        assert n == int(probe["nb_read_frames"])
        num, den = map(int, probe["r_frame_rate"].split("/"))
        assert abs(src.fps - num / den) < 1e-3


def test_realtime_pacing(clips_dir):
    src = FileSource(clips_dir / "carphone_176x144.mp4", realtime=True)
    src.open()
    t0 = time.monotonic()
    for _ in range(30):
        src.read()
    elapsed = time.monotonic() - t0
    src.close()
    # 30 frames at 29.97 fps: the 30th is due after 29 frame periods.
    assert elapsed >= 29 / 29.97 - 0.02


def test_loop_restarts_with_increasing_pts(clips_dir):
    src = FileSource(clips_dir / "walk_pan_720x480.mkv", loop=True)
    src.open()
    pts = [src.read()[1] for _ in range(100)]
    src.close()
    assert all(b > a for a, b in zip(pts, pts[1:]))


def test_errors(tmp_path):
    with pytest.raises(SourceError, match="no such file"):
        FileSource(tmp_path / "none.mp4").open()
    with pytest.raises(SourceError, match="is a directory"):
        FileSource(tmp_path).open()
    (tmp_path / "audio.txt").write_text("hello")
    with pytest.raises(SourceError, match="cannot read video"):
        FileSource(tmp_path / "audio.txt").open()


def test_truncated_detected(tmp_path, clips_dir):
    data = (clips_dir / "walk_pan_720x480.mkv").read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) // 2])
    src = FileSource(cut)
    src.open()
    n = 0
    while src.read() is not None:
        n += 1
    assert 5 < n < 47 and src.truncated and "truncated" in src.truncation
