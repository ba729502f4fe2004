"""`rtclean interpolate A.png B.png -n N -o DIR`: N in-between frames.

The same bidirectional flow interpolation that fills gaps in DVR files
(``FlowEstimator.interpolate``), for two stills: frame k of N is the picture
at time k / (N + 1) between A (time 0) and B (time 1). Written as
``DIR/frame_001.png`` ... ``frame_NNN.png`` (lossless, so what is compared is
what was computed).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from rtclean.errors import RtcleanError

MAX_FRAMES = 1000


def read_image(path: str | Path) -> np.ndarray:
    p = Path(path)
    if not p.is_file():
        raise RtcleanError(f"{p}: no such file")
    image = cv2.imread(str(p), cv2.IMREAD_COLOR)
    if image is None:
        raise RtcleanError(f"{p}: cannot read as an image (PNG, JPEG, ...)")
    return image


def interpolate_pair(a: np.ndarray, b: np.ndarray, n: int, flow_width: int) -> list[np.ndarray]:
    """The ``n`` pictures evenly spaced strictly between ``a`` and ``b``."""
    from rtclean.repair.flow import FlowEstimator

    if a.shape != b.shape:
        raise RtcleanError(f"the two pictures differ in size: {a.shape[1]}x{a.shape[0]} and {b.shape[1]}x{b.shape[0]}")
    est = FlowEstimator(flow_width)
    return [est.interpolate(a, b, k / (n + 1)) for k in range(1, n + 1)]


def write_frames(images: list[np.ndarray], outdir: str | Path) -> list[Path]:
    outdir = Path(outdir)
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RtcleanError(f"{outdir}: cannot create directory ({e.strerror or e})") from None
    digits = max(3, len(str(len(images))))
    paths = []
    for k, image in enumerate(images, start=1):
        p = outdir / f"frame_{k:0{digits}d}.png"
        if not cv2.imwrite(str(p), image):
            raise RtcleanError(f"{p}: cannot write")
        paths.append(p)
    return paths


def run(a_path: str, b_path: str, n: int, outdir: str, flow_width: int) -> list[Path]:
    if not 1 <= n <= MAX_FRAMES:
        raise RtcleanError(f"-n {n}: expected 1 to {MAX_FRAMES} frames")
    a, b = read_image(a_path), read_image(b_path)
    return write_frames(interpolate_pair(a, b, n, flow_width), outdir)
