"""Learn the static on-screen display from clean frames and keep it sharp.

An FPV OSD (voltage, timer, RSSI, crosshair) is drawn by the camera or the
flight controller on top of the scene and does not move with it. Warping a
frame along the scene's motion drags those letters along (and smears them,
since the flow near them is the scene's). So the repair pastes the OSD back
from the last clean frame after warping.

Which pixels are OSD is learned from the clean frames, at full resolution:
per pixel, a counter of consecutive clean frames in which it did not change
(saturating at 255, reset to 0 by any change). OSD pixels are those that
stayed put for ``min_frames`` clean frames *and* sit on strong local detail
(letters have a white fill and a black outline); flat stable areas (sky)
are left to the warp, where they change nothing either way. Digits that
change (the timer) reset their counters and are warped like the scene:
pasting a stale digit would be a lie.

Cost on the clean path: one grey conversion, one absdiff, two saturating
OpenCV ops per frame (~0.3 ms at 720x576). The mask itself is built only
when a repair needs it.
"""

from __future__ import annotations

import cv2
import numpy as np

# Grey levels within which a pixel counts as unchanged between clean frames
# (compression and sensor noise stay well inside this on an OSD).
STABLE_LEVEL = 10
# Morphological gradient (3x3, grey levels) that marks OSD detail.
DETAIL_LEVEL = 60
_K3 = cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3))


class OsdModel:
    def __init__(self, min_frames: int) -> None:
        self.min_frames = int(min_frames)
        self.reset()

    def reset(self) -> None:
        self._prev: np.ndarray | None = None
        self._count: np.ndarray | None = None
        self._mask: np.ndarray | None = None  # cached until the next update

    def update(self, image: np.ndarray) -> None:
        """Learn from one clean frame."""
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        if self._prev is None or self._prev.shape != grey.shape:
            self._prev = grey
            self._count = np.zeros(grey.shape, np.uint8)
            self._mask = None
            return
        same = cv2.compare(cv2.absdiff(grey, self._prev), STABLE_LEVEL, cv2.CMP_LE)  # 255 / 0
        cv2.add(self._count, 1, dst=self._count)  # saturates at 255
        cv2.bitwise_and(self._count, same, dst=self._count)  # a change resets the counter
        self._prev = grey
        self._mask = None

    def mask(self) -> np.ndarray | None:
        """uint8 mask (255 = OSD) at full resolution, or None when nothing
        has been stable long enough (or too little was seen)."""
        if self._count is None or self.min_frames <= 0:
            return None
        if self._mask is None:
            stable = cv2.compare(self._count, self.min_frames, cv2.CMP_GE)
            detail = cv2.compare(cv2.morphologyEx(self._prev, cv2.MORPH_GRADIENT, _K3), DETAIL_LEVEL, cv2.CMP_GE)
            m = cv2.bitwise_and(stable, detail)
            # Letters are a few pixels wide: close the gaps between the edge
            # pixels so the fill comes along, then keep it to stable pixels.
            m = cv2.bitwise_and(cv2.dilate(m, _K3), stable)
            self._mask = m if cv2.countNonZero(m) else np.zeros(0, np.uint8)
        return self._mask if self._mask.size else None

    def paste(self, out: np.ndarray, source: np.ndarray) -> np.ndarray:
        """Copy the OSD pixels of ``source`` (a clean frame) into ``out`` in place."""
        m = self.mask()
        if m is not None and m.shape == out.shape[:2] and source.shape == out.shape:
            cv2.copyTo(source, m, out)
        return out
