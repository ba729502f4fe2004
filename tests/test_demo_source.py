"""DemoSource: the simulated feed behind the Source interface, paced in real
time: the shipped analog-channel loop (default) and the live image-domain
simulator."""

from __future__ import annotations

import itertools
import json
import subprocess
import time

import av
import numpy as np
import pytest

from helpers import psnr, read_jsonl
from rtclean.config import DemoConfig, SourceConfig
from rtclean.errors import SourceError
from rtclean.sim.demo_clip import paths
from rtclean.sim.loop_feed import LoopFeed
from rtclean.sources import make_source
from rtclean.sources.demo import DemoSource


def test_duration_ends_the_stream_and_last_is_ground_truth():
    src = DemoSource(DemoConfig(channel="image", realtime=False, breakup=0.5, seed=3), duration_s=2.0)
    with src:
        assert src.size == (720, 576) and src.fps == 25.0
        got = []
        while (item := src.read()) is not None:
            image, pts = item
            assert image is src.last.image and pts == src.last.pts
            got.append(src.last)
    assert len(got) == 50
    assert [f.index for f in got] == list(range(50))
    assert any(f.label.kind for f in got)
    for f in got:
        if f.label.kind is None:
            assert np.array_equal(f.image, f.truth)


def test_ntsc_and_width_from_config():
    cfg = SourceConfig(kind="demo", demo=DemoConfig(standard="ntsc", width=360, realtime=False))
    src = make_source(cfg, duration_s=0.2)
    assert isinstance(src, DemoSource) and src.name == "demo" and not src.live
    with src:
        image, _ = src.read()
        assert image.shape == (240, 360, 3) and src.fps == pytest.approx(29.97, abs=0.01)


def test_realtime_paces_at_the_frame_rate():
    src = DemoSource(DemoConfig(realtime=True, breakup=0.15), duration_s=1.0)
    assert src.live
    with src:
        t0 = time.monotonic()
        n = 0
        while src.read() is not None:
            n += 1
        took = time.monotonic() - t0
    assert n == 25
    # frame 24 is due 0.96 s after the start: paced, not as fast as possible
    assert took >= 0.9


def test_read_before_open_is_a_clear_error():
    with pytest.raises(SourceError, match="not open"):
        DemoSource(DemoConfig()).read()


@pytest.mark.parametrize("standard,size,fps", [("pal", (720, 576), 25.0), ("ntsc", (720, 480), 30000 / 1001)])
def test_analog_loop_frames_and_labels_match_the_shipped_files(standard, size, fps):
    video, labels = paths(standard)
    rows = read_jsonl(labels)
    n = len(rows)
    assert n == round(8 * fps)
    src = DemoSource(DemoConfig(standard=standard, channel="analog", realtime=False), duration_s=(n + 3) / fps)
    got = []
    with src:
        assert src.size == size and src.fps == pytest.approx(fps)
        while (item := src.read()) is not None:
            image, pts = item
            assert image is src.last.image and image.shape == (size[1], size[0], 3)
            assert src.last.truth.shape == image.shape
            got.append((image, src.last))
    assert len(got) == n + 3
    assert [f.index for _, f in got] == list(range(n + 3))
    for k, (image, f) in enumerate(got):
        row = rows[k % n]
        assert f.label.to_dict() == {key: row[key] for key in f.label.to_dict()}
        assert f.link.mean_db == row["cnr_db"] and f.link.min_db == row["cnr_min_db"]
    # the pictures are the shipped video's, in order, and the loop wraps to its first frame
    with av.open(str(video)) as c:
        shipped = [f.to_ndarray(format="bgr24") for f in itertools.islice(c.decode(video=0), 3)]
    for k in range(3):
        assert np.array_equal(got[k][0], shipped[k])
        assert np.array_equal(got[n + k][0], shipped[k])
        assert np.array_equal(got[n + k][1].truth, got[k][1].truth)


@pytest.mark.parametrize("standard", ["pal", "ntsc"])
def test_analog_loop_walks_the_ladder_and_clean_frames_are_clean(standard):
    feed = LoopFeed(standard)
    frames = [feed.next() for _ in range(feed.length)]
    feed.close()
    kinds = [f.label.kind for f in frames]
    # below the threshold: sparklies first, then the heavier effects, signal loss, recovery
    first_broken = next(k for k in kinds if k)
    assert first_broken == "sparklies"
    for k in ("sparklies", "snow", "colour_loss", "tear", "roll", "blue" if standard == "pal" else "static"):
        assert k in kinds, (k, sorted(set(map(str, kinds))))
    assert kinds[0] is None and kinds[-1] is None  # the loop wraps clean to clean
    lost = [i for i, f in enumerate(frames) if f.label.no_signal]
    assert lost and all(k is None for k in kinds[lost[-1] + 30:])  # recovered
    for f in frames:
        if f.link.min_db > 20:  # a strong link: nothing broken, and the picture is the scene
            assert not f.label.broken, (f.index, f.label.kind)
            assert psnr(f.image[:-2, 16:-16], f.truth[:-2, 16:-16]) > 24
        if f.label.no_signal and standard == "pal":  # the blue-screen receiver
            assert (np.abs(f.image.astype(int) - (200, 40, 12)) <= 6).all(axis=2).mean() > 0.95


def test_missing_loop_is_a_clear_error(tmp_path):
    with pytest.raises(SourceError, match="demo_clip"):
        LoopFeed("pal", root=tmp_path)
    (tmp_path / "demo_pal.mkv").write_bytes(b"not a video")
    (tmp_path / "demo_pal.jsonl").write_text('{"index": 0}\n')
    with pytest.raises(SourceError, match="labels"):
        LoopFeed("pal", root=tmp_path)


def test_run_demo_uses_the_analog_loop(tmp_path, rtclean_cmd):
    status = tmp_path / "status.json"
    r = subprocess.run(rtclean_cmd + ["run", "--demo", "--duration", "3", "--set", "live.enabled=false",
                                      "--set", f"record.dir={tmp_path / 'rec'}", "--status-json", str(status)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "analog channel loop" in r.stderr + r.stdout
    st = json.loads(status.read_text())
    assert st["frames"]["in"] > 0
