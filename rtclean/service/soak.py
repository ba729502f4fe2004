"""`rtclean soak --minutes N`: the whole service on the demo feed for N
minutes, recording, with its resident memory sampled as it runs.

It answers "can this run all day": RSS over time (growth after warm-up),
frames in/out, every drop counter, capture-to-clean latency percentiles
over the whole run (not only the last seconds), and the files the DVR wrote
(segments, MP4 remuxes, bytes). Not a CI test: a benchmark whose figures go
into docs/service.md.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
from copy import deepcopy
from pathlib import Path

from rtclean.config import Config
from rtclean.stats import Window

log = logging.getLogger(__name__)

WARM_UP_S = 30.0  # RSS growth is measured from here: allocators and caches settle first


def rss_mb() -> float:
    """Resident set size of this process (Linux /proc)."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def run_soak(cfg: Config, minutes: float, sample_s: float = 10.0, keep_dir: str | None = None) -> dict:
    from rtclean.pipeline import LivePipeline
    from rtclean.sources.demo import DemoSource

    seconds = minutes * 60.0
    c = deepcopy(cfg)
    c.source.kind = "demo"
    c.source.demo.realtime = True
    c.record.enabled = True
    c.record.start_after_s = 0.0
    c.live.host, c.live.port = "127.0.0.1", 0  # the web view runs, on a free port
    tmp = None
    if keep_dir:
        c.record.dir = keep_dir
    else:
        tmp = tempfile.mkdtemp(prefix="rtclean-soak-")
        c.record.dir = tmp
    pipe = LivePipeline(c, DemoSource(c.source.demo), duration_s=seconds)
    # Every latency sample of the run, not the last thousand.
    pipe.latency = Window(int(seconds * 30) + 1000)
    samples: list[dict] = []
    done = threading.Event()
    t0 = time.monotonic()

    def sampler() -> None:
        while True:
            s = pipe.status() if pipe.processor is not None else None
            samples.append({"t_s": round(time.monotonic() - t0, 1), "rss_mb": round(rss_mb(), 1),
                            "frames_in": s["frames"]["in"] if s else 0,
                            "recording": s["recording"]["state"] if s else "starting"})
            if done.wait(sample_s):
                break

    th = threading.Thread(target=sampler, name="rtclean-soak-sampler", daemon=True)
    th.start()
    try:
        status = pipe.run()
    finally:
        done.set()
        th.join(5)
    samples.append({"t_s": round(time.monotonic() - t0, 1), "rss_mb": round(rss_mb(), 1),
                    "frames_in": status["frames"]["in"], "recording": "stopped"})
    files = [p for p in Path(c.record.dir).iterdir() if p.is_file()]
    after = [s["rss_mb"] for s in samples if s["t_s"] >= min(WARM_UP_S, seconds / 2)]
    lat = pipe.latency.summary()
    streams = status["recording"]["streams"]
    result = {
        "minutes": minutes,
        "wall_s": round(time.monotonic() - t0, 1),
        "frames": status["frames"],
        "fps_in": round(status["frames"]["in"] / max(seconds, 1e-9), 2),
        "drops": status["drops"],
        "latency": {"median_ms": lat["median_ms"], "p99_ms": lat["p99_ms"], "count": lat["count"]},
        "rss_mb": {"start": after[0] if after else None, "end": after[-1] if after else None,
                   "max": max(after) if after else None,
                   "growth": round(after[-1] - after[0], 1) if after else None},
        "rss_samples": [[s["t_s"], s["rss_mb"]] for s in samples],
        "files": {"count": len(files), "bytes": sum(p.stat().st_size for p in files),
                  "mp4": sum(p.suffix == ".mp4" for p in files), "ts": sum(p.suffix == ".ts" for p in files),
                  "segments": {k: len(v["segments"]) for k, v in streams.items()}},
        "recorder_errors": {k: v["error"] for k, v in streams.items() if v["error"]},
        "dir": c.record.dir if keep_dir else None,
    }
    if tmp is not None:
        shutil.rmtree(tmp, ignore_errors=True)
    return result


def format_soak(r: dict) -> str:
    d = r["drops"]
    lines = [
        f"soak: {r['minutes']:g} min of the demo feed, recording both streams",
        f"  frames     in {r['frames']['in']}, out {r['frames']['out']} ({r['fps_in']:.2f} fps)",
        f"  drops      input {d['input']}, live {d['live']}, raw recorder {d['raw']}, clean recorder {d['clean']}",
        f"  latency    median {r['latency']['median_ms']} ms, p99 {r['latency']['p99_ms']} ms "
        f"({r['latency']['count']} frames)",
        f"  RSS        {r['rss_mb']['start']} MB after warm-up -> {r['rss_mb']['end']} MB "
        f"(growth {r['rss_mb']['growth']} MB, max {r['rss_mb']['max']} MB)",
        f"  files      {r['files']['count']} ({r['files']['mp4']} MP4, {r['files']['ts']} TS), "
        f"{r['files']['bytes'] / 1e6:.1f} MB, segments {r['files']['segments']}",
        "  RSS over time (s: MB): " + ", ".join(f"{t:g}: {m:g}" for t, m in r["rss_samples"]),
    ]
    if r["recorder_errors"]:
        lines.append(f"  recorder errors: {r['recorder_errors']}")
    return "\n".join(lines)
