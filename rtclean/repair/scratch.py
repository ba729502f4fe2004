"""Reusable per-thread work buffers for the per-frame repair code.

A fresh numpy/OpenCV array of a few hundred kB is not free: glibc hands
large blocks out with mmap, and every first touch of each 4 kB page is a
page fault. Measured at 720x576 on this machine: field repair with fresh
temporaries took ~1,200 page faults and ~3.7 ms of CPU per call, the same
code writing into reused buffers ~1 ms. So the repair levels keep their
temporaries here, one set per thread (the live pipeline and the offline
workers each run repair on their own thread), and only the picture they
return is a new array.
"""

from __future__ import annotations

import threading

import numpy as np

_local = threading.local()


def buffer(name: str, shape: tuple[int, ...], dtype=np.uint8) -> np.ndarray:
    """A C-contiguous array of ``shape`` whose contents are undefined, reused
    between calls with the same ``name`` on this thread. Callers must be done
    with the previous array of that name before asking again."""
    bufs: dict[str, np.ndarray] = _local.__dict__.setdefault("bufs", {})
    b = bufs.get(name)
    dt = np.dtype(dtype)
    # Keep the largest leading dimension seen: the number of lines to repair
    # changes from frame to frame, the width does not.
    if b is None or b.dtype != dt or b.shape[1:] != tuple(shape[1:]) or b.shape[0] < shape[0]:
        b = np.empty(shape, dt)
        bufs[name] = b
    return b[:shape[0]]
