"""USB analog capture cards through OpenCV's V4L2 backend.

Thin adapter: everything device-specific is the OpenCV property calls below.
Unverified here (no /dev/video* on the development machines): the property
values a given card accepts; the code checks what the driver reports back and
logs any difference instead of assuming the request was honoured.
"""

from __future__ import annotations

import logging
import time

import cv2
import numpy as np

from rtclean.config import V4l2Config
from rtclean.errors import SourceError
from rtclean.sources.base import Source

log = logging.getLogger(__name__)


def device_arg(device: str) -> int | str:
    """'/dev/video2' and '2' both work; OpenCV wants an index or a path."""
    return int(device) if device.isdigit() else device


class V4l2Source(Source):
    name = "v4l2"
    live = True

    def __init__(self, cfg: V4l2Config) -> None:
        super().__init__()
        self.cfg = cfg
        self._cap: cv2.VideoCapture | None = None
        self._t0 = 0.0

    def open(self) -> None:
        dev = device_arg(self.cfg.device)
        if isinstance(dev, str):
            import os

            if not os.path.exists(dev):
                raise SourceError(f"capture device {dev} not found (is the capture card plugged in?)")
        cap = cv2.VideoCapture(dev, cv2.CAP_V4L2)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"capture device {self.cfg.device}: cannot open with V4L2 "
                              "(in use by another program, or no permission: is the user in the 'video' group?)")
        cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*self.cfg.fourcc))
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.cfg.width)
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.cfg.height)
        cap.set(cv2.CAP_PROP_FPS, self.cfg.fps)
        # One driver buffer: otherwise the card queues several frames and the
        # picture we process is already 100+ ms old.
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        w = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        h = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = cap.get(cv2.CAP_PROP_FPS) or self.cfg.fps
        if (w, h) != (self.cfg.width, self.cfg.height):
            log.warning("capture device %s gives %dx%d, not the configured %dx%d",
                        self.cfg.device, w, h, self.cfg.width, self.cfg.height)
        self.size = (w, h)
        self.fps = float(fps)
        self._cap = cap
        self._t0 = time.monotonic()

    def read(self) -> tuple[np.ndarray, float] | None:
        if self._cap is None:
            raise SourceError("capture device not open")
        ok, image = self._cap.read()
        if not ok or image is None:
            raise SourceError(f"capture device {self.cfg.device}: read failed (card unplugged?)")
        return image, time.monotonic() - self._t0

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
