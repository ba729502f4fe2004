"""The offline cleaner's speed, for `rtclean bench` (stage ``offline``).

A 720x576 25 fps goggle recording (MJPEG + PCM in AVI) is made from the
bench's frames and cleaned the way users clean files, decode and encode
included: once as a single file in this process, and as a batch of one
copy per worker (the default worker count) in worker processes. Figures are
"x real time": seconds of video per second of wall time. The CPU time of the
single run is given too (``cpu_x_realtime``, per core): on a busy shared
machine it shows what the cleaner costs when wall time is stretched by
other load.
"""

from __future__ import annotations

import copy
import shutil
import time
from pathlib import Path

import numpy as np

from rtclean.config import Config


def measure_offline(cfg: Config, images: list[np.ndarray], fps: float, tmpdir: str | Path) -> dict:
    from rtclean.offline.batch import cores_per_job, default_jobs, plan, run_batch
    from rtclean.offline.dvrsample import write_dvr_file
    from rtclean.offline.job import CleanOptions, clean_one
    from rtclean.offline.progress import ProgressBar

    cfg = copy.deepcopy(cfg)
    tmp = Path(tmpdir)
    src = write_dvr_file(tmp / "flight.avi", images, fps, audio=True)
    video_s = len(images) / fps

    t0, c0 = time.perf_counter(), time.process_time()
    # the cores shared out as `rtclean clean` does (rtclean.offline.batch.cores_per_job)
    report = clean_one(cfg, src, tmp / "single" / "flight.avi", CleanOptions(encoder_threads=cores_per_job(1)))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0

    jobs_n = default_jobs()
    indir = tmp / "batch_in"
    indir.mkdir()
    for k in range(jobs_n):
        shutil.copy(src, indir / f"flight{k}.avi")
    jobs = plan([str(indir)], tmp / "batch_out", CleanOptions(encoder_threads=cores_per_job(jobs_n)))
    t0 = time.perf_counter()
    results = run_batch(cfg, jobs, jobs_n, ProgressBar(len(jobs), enabled=False), quiet=True)
    batch_wall = time.perf_counter() - t0
    failed = [r.error for r in results if r.error]
    return {"size": [int(images[0].shape[1]), int(images[0].shape[0])], "fps": fps,
            "video_s": round(video_s, 2), "replaced": report["replaced"], "frames": len(images),
            "single": {"seconds": round(wall, 2), "x_realtime": round(video_s / wall, 2),
                       "cpu_s": round(cpu, 2), "cpu_x_realtime": round(video_s / cpu, 2)},
            "batch": {"files": jobs_n, "jobs": jobs_n, "seconds": round(batch_wall, 2),
                      "x_realtime": round(jobs_n * video_s / batch_wall, 2), "failed": failed}}
