"""record.lookahead_ms: the clean DVR stream gets bidirectional interpolation
for short breakup runs while the live path stays causal. End to end: a real
LivePipeline on a paced in-memory source of real footage with simulated
breakup, the DVR files decoded with PyAV and compared with the simulator's
truth."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from rtclean import config
from rtclean.pipeline import LivePipeline
from rtclean.record.sidecar import read_sidecar
from rtclean.sim.breakup import inject
from rtclean.sources.base import Source
from tests.helpers import decode_frames, psnr

W, H, FPS = 720, 576, 25.0
N = 36
GAP = (18, 19, 20)  # a short run: ends within the window
TAIL = (33, 34, 35)  # still open when the source ends: flushed at stop


class PacedFrames(Source):
    """Frames from memory at the capture rate; not live, so the pipeline's
    blocking inbox loses none of them (runs are comparable frame by frame)."""

    name = "paced"
    live = False

    def __init__(self, frames: list[np.ndarray]) -> None:
        super().__init__()
        self.frames, self.fps, self.size = frames, FPS, (W, H)
        self._i, self._t0 = 0, 0.0

    def open(self) -> None:
        self._i, self._t0 = 0, time.monotonic()

    def read(self):
        if self._i >= len(self.frames):
            return None
        wait = self._t0 + self._i / self.fps - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        self._i += 1
        return self.frames[self._i - 1], (self._i - 1) / self.fps

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def footage(clips_dir) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(broken frames, truth): a real pan with heavy snow on GAP and TAIL."""
    from tests.helpers import decode_frames as dec

    truth = [cv2.resize(f, (W, H), interpolation=cv2.INTER_AREA)
             for f in dec(Path(clips_dir) / "walk_pan_720x480.mkv")[:N]]
    rng = np.random.default_rng(7)
    broken = [inject(f, "snow", 1.0, rng)[0] if i in GAP + TAIL else f for i, f in enumerate(truth)]
    return broken, truth


def record(tmp_path: Path, frames: list[np.ndarray], lookahead_ms: float | None) -> dict:
    cfg = config.Config()
    cfg.record.dir = str(tmp_path)
    cfg.record.start_after_s = 0.0
    cfg.record.min_free_mb = 0
    cfg.record.mp4 = False
    cfg.record.crf = 10  # encoding loss well below the differences measured
    cfg.live.enabled = False
    cfg.detect.detector = "classical"
    if lookahead_ms is not None:
        cfg.record.lookahead_ms = lookahead_ms
    pipe = LivePipeline(cfg, PacedFrames(frames))
    live: dict[int, tuple[str, np.ndarray]] = {}
    pipe.consumers.append(lambda p: live.__setitem__(p.frame.index, (p.action, p.clean.copy())))
    status = pipe.run()
    (clean_ts,) = sorted(tmp_path.glob("*.clean.ts"))
    (raw_ts,) = sorted(tmp_path.glob("*.raw.ts"))
    return {"clean": decode_frames(clean_ts), "raw": decode_frames(raw_ts),
            "rows": read_sidecar(clean_ts.with_suffix(".jsonl")), "live": live, "status": status,
            "clean_ts": clean_ts, "raw_ts": raw_ts}


def pts(path: Path) -> list[float]:
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return [float(f.pts * s.time_base) for f in c.decode(s)]


@pytest.fixture(scope="module")
def runs(footage, tmp_path_factory):
    broken, _ = footage
    return {"on": record(tmp_path_factory.mktemp("on"), broken, 1000.0),
            "off": record(tmp_path_factory.mktemp("off"), broken, None)}


def test_short_gap_is_written_interpolated(runs, footage):
    _, truth = footage
    on = runs["on"]
    rows = {r["index"]: r for r in on["rows"]}
    gains = []
    for i in GAP:
        live_action, live_pic = on["live"][i]
        assert live_action == "repair:flow", f"frame {i}: {live_action}"  # causal extrapolation live
        # the file says what it shows: the interpolation between both sides
        assert rows[i]["action"] == "repair:interp", rows[i]
        gains.append(psnr(on["clean"][i], truth[i]) - psnr(live_pic, truth[i]))
    # closer to the truth than the live repair on every frame (the written
    # frames even carry the encoder's loss), clearly so on average: the
    # later in the run, the more extrapolation drifts
    assert min(gains) > 0 and np.mean(gains) > 1.0, gains
    assert on["status"]["recording"]["streams"]["clean"]["lookahead"]["reinterpolated"] >= len(GAP)


def test_frame_count_timestamps_and_stop_flush(runs):
    on = runs["on"]
    # every frame written once, the open run at the end included (flushed at stop)
    assert len(on["clean"]) == len(on["raw"]) == N
    assert [r["index"] for r in on["rows"]] == list(range(N))
    # the tail run never closed: written as the live path repaired it
    for i in TAIL:
        assert on["rows"][i]["action"] == on["live"][i][0]
        assert psnr(on["clean"][i], on["live"][i][1]) > 35  # encoder loss only (chroma 4:2:0)
    # timestamps: the clean file's frames sit where the raw file's do, and the
    # sidecar's pts are the file's
    assert pts(on["clean_ts"]) == pytest.approx(pts(on["raw_ts"]), abs=1e-3)
    assert [r["pts"] for r in on["rows"]] == pytest.approx(pts(on["clean_ts"]), abs=2e-3)


def test_off_by_default_writes_the_live_repair(runs):
    assert config.Config().record.lookahead_ms == 0
    off = runs["off"]
    assert off["status"]["recording"]["streams"]["clean"]["lookahead"] is None
    assert len(off["clean"]) == N
    for r in off["rows"]:
        action, pic = off["live"][r["index"]]
        assert r["action"] == action
        assert psnr(off["clean"][r["index"]], pic) > 35
