"""CSI capture (an HDMI/composite-to-CSI bridge) through picamera2.

picamera2 and libcamera come from the Raspberry Pi OS archive and cannot be
installed from PyPI, so they are imported only when this source is chosen.
Unverified here: everything past the import (no Pi on the development machines).
"""

from __future__ import annotations

import time

import numpy as np

from rtclean.config import Picamera2Config
from rtclean.errors import SourceError
from rtclean.sources.base import Source


class Picamera2Source(Source):
    name = "picamera2"
    live = True

    def __init__(self, cfg: Picamera2Config) -> None:
        super().__init__()
        self.cfg = cfg
        self._cam = None
        self._t0 = 0.0

    def open(self) -> None:
        try:
            from picamera2 import Picamera2  # noqa: PLC0415 - optional, Pi only
        except ImportError:
            raise SourceError(
                "source.kind is picamera2 but picamera2 is not installed: on Raspberry Pi OS run "
                "'sudo apt install python3-picamera2' and use a venv made with --system-site-packages"
            ) from None
        try:
            cam = Picamera2()
            config = cam.create_video_configuration(
                main={"size": (self.cfg.width, self.cfg.height), "format": "RGB888"},
                controls={"FrameRate": self.cfg.fps},
                buffer_count=2,  # few buffers: fresh frames over smoothness
            )
            cam.configure(config)
            cam.start()
        except Exception as e:  # libcamera raises many types; report one line
            raise SourceError(f"picamera2: cannot start the camera ({e})") from None
        self._cam = cam
        self.size = (self.cfg.width, self.cfg.height)
        self.fps = self.cfg.fps
        self._t0 = time.monotonic()

    def read(self) -> tuple[np.ndarray, float] | None:
        if self._cam is None:
            raise SourceError("picamera2 source not open")
        try:
            # picamera2's "RGB888" is laid out B, G, R in memory: OpenCV's BGR.
            image = self._cam.capture_array("main")
        except Exception as e:
            raise SourceError(f"picamera2: capture failed ({e})") from None
        return np.ascontiguousarray(image[:, :, :3]), time.monotonic() - self._t0

    def close(self) -> None:
        if self._cam is not None:
            try:
                self._cam.stop()
                self._cam.close()
            finally:
                self._cam = None
