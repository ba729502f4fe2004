"""DemoSource: the simulated feed behind the Source interface, paced in real time."""

from __future__ import annotations

import time

import numpy as np
import pytest

from rtclean.config import DemoConfig, SourceConfig
from rtclean.errors import SourceError
from rtclean.sources import make_source
from rtclean.sources.demo import DemoSource


def test_duration_ends_the_stream_and_last_is_ground_truth():
    src = DemoSource(DemoConfig(realtime=False, breakup=0.5, seed=3), duration_s=2.0)
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
