"""SIGKILL a real recording process and check what survives on disk.

A child Python process records 720x576 frames at 25 fps with the real
Recorder (MPEG-TS + sidecar) and prints, after each frame it submits, how many
frames the encoder thread has written so far. The parent notes when each line
arrived, kills the child with SIGKILL at a random moment, then decodes the
segment: every frame reported written more than 1 s before the kill must
decode, in order, with the right picture (each frame carries its index as a
row of black/white squares), and the sidecar must list them too.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest

from rtclean.record import read_sidecar

W, H, FPS, BITS, SQUARE = 720, 576, 25.0, 12, 48

CHILD = r"""
import sys, time
from dataclasses import replace
import cv2
import numpy as np
from rtclean.config import RecordConfig
from rtclean.frames import Decision, DetectResult, Frame, Processed
from rtclean.record import Recorder, SegmentClock

W, H, FPS, BITS, SQUARE = 720, 576, 25.0, 12, 48
rng = np.random.default_rng(3)
# Smooth moving scenery: packets of a few KiB, like real SD footage, so a
# muxer or I/O buffer that is not flushed would hold back many frames.
texture = cv2.resize(rng.integers(40, 216, (H // 48, W // 24, 3), dtype=np.uint8), (W * 2, H),
                     interpolation=cv2.INTER_CUBIC)

def picture(i):
    img = np.ascontiguousarray(texture[:, (i * 7) % W:(i * 7) % W + W])
    for b in range(BITS):
        img[:SQUARE, b * SQUARE:(b + 1) * SQUARE] = 255 if (i >> b) & 1 else 0
    return img

cfg = replace(RecordConfig(), dir=sys.argv[1], segment_s=3600.0)
clock = SegmentClock(cfg.dir, cfg.segment_s)
rec = Recorder("clean", cfg, FPS, (W, H))
rec.start()
t0 = time.monotonic()
i = 0
while True:
    delay = t0 + i / FPS - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    t = time.monotonic()
    img = picture(i)
    p = Processed(frame=Frame(i, t, img, i / FPS), clean=img, result=DetectResult(0.0),
                  decision=Decision(False), action="pass")
    rec.submit(p, clock.key(t))
    print(rec.stats()["frames_written"], flush=True)
    i += 1
"""


def read_index(img: np.ndarray) -> int:
    y = img[:SQUARE, : BITS * SQUARE].mean(axis=2)
    squares = y.reshape(SQUARE, BITS, SQUARE).mean(axis=(0, 2))
    return int(sum(1 << b for b, v in enumerate(squares) if v > 128))


def ffprobe_count(path: Path) -> int | None:
    if shutil.which("ffprobe") is None:
        return None
    out = subprocess.run(["ffprobe", "-v", "error", "-f", "mpegts", "-count_frames",
                          "-select_streams", "v:0", "-show_entries", "stream=nb_read_frames",
                          "-of", "json", str(path)], capture_output=True, text=True).stdout
    return int(json.loads(out)["streams"][0]["nb_read_frames"])


def record_and_kill(out_dir: Path, kill_after_s: float) -> tuple[int, int]:
    """(frames written >1 s before the kill, frames written at the kill)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(out_dir)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
    reports: list[tuple[float, int]] = []
    first = threading.Event()

    def reader():
        for line in child.stdout:
            reports.append((time.monotonic(), int(line)))
            if reports[-1][1] > 0:
                first.set()

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    try:
        if not first.wait(60):
            child.kill()
            pytest.fail(f"child never wrote a frame: {child.stderr.read()[-2000:]}")
        time.sleep(kill_after_s)
        killed_at = time.monotonic()
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    th.join(10)
    assert child.returncode == -signal.SIGKILL
    safe = max((n for t, n in reports if t <= killed_at - 1.0), default=0)
    at_kill = max((n for t, n in reports if t <= killed_at), default=0)
    return safe, at_kill


@pytest.mark.timeout(180)
@pytest.mark.parametrize("run", range(3))
def test_sigkill_keeps_every_frame_written_before_the_last_second(tmp_path, run):
    kill_after = random.Random().uniform(1.5, 4.0)
    safe, at_kill = record_and_kill(tmp_path, kill_after)
    assert safe > 0

    (ts,) = tmp_path.glob("*.clean.ts")
    (jsonl,) = tmp_path.glob("*.clean.jsonl")
    with av.open(str(ts), format="mpegts") as c:
        indices = [read_index(f.to_ndarray(format="bgr24")) for f in c.decode(video=0)]
    # Frames come back whole and in order, from the first: no gap, no mix-up.
    assert indices == list(range(len(indices)))
    assert len(indices) >= safe
    probed = ffprobe_count(ts)
    assert probed is None or probed >= safe
    side = [r["index"] for r in read_sidecar(jsonl)]
    assert side[: len(indices)] == indices[: len(side)]
    assert len(side) >= safe
    size = ts.stat().st_size
    print(f"\n{size / max(1, len(indices)) / 1024:.1f} KiB/frame; kill after {kill_after:.2f}s: written >1s before {safe}, written at kill {at_kill}, "
          f"decoded {len(indices)} (PyAV), {probed} (ffprobe), sidecar lines {len(side)}")
