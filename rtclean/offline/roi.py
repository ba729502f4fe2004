"""`--roi x,y,w,h`: classify only a region of the picture.

A time-lapse camera or a recording with a fixed border (goggle UI, black
bars) should be judged on the part that matters. The detector is wrapped so
it sees only the crop; the repair still works on the whole frame. Band
scores come back in the crop's coordinates and are mapped onto the full
picture's bands (bands outside the region score 0), so band repair replaces
the right lines.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rtclean.detect.base import Detector
from rtclean.errors import RtcleanError
from rtclean.frames import DetectResult


@dataclass(frozen=True, slots=True)
class Roi:
    x: int
    y: int
    w: int
    h: int

    @classmethod
    def parse(cls, text: str) -> Roi:
        parts = [p.strip() for p in text.split(",")]
        try:
            x, y, w, h = (int(p) for p in parts)
        except ValueError:
            raise RtcleanError(f"--roi {text}: expected x,y,w,h in pixels, e.g. --roi 0,40,720,496") from None
        if x < 0 or y < 0 or w < 8 or h < 8:
            raise RtcleanError(f"--roi {text}: x and y must be >= 0, w and h at least 8 pixels")
        return cls(x, y, w, h)

    def check(self, size: tuple[int, int], where: str) -> None:
        """Fail (one line) when the region does not lie inside a w x h picture."""
        w, h = size
        if self.x + self.w > w or self.y + self.h > h:
            raise RtcleanError(f"{where}: --roi {self} lies outside the {w}x{h} picture")

    def __str__(self) -> str:
        return f"{self.x},{self.y},{self.w},{self.h}"


def map_bands(bands: np.ndarray, roi: Roi, height: int) -> np.ndarray:
    """Band scores of the crop -> the same number of bands over the full
    height: each full band takes the highest score of the crop bands that
    overlap it."""
    n = len(bands)
    # Row span of every crop band, in full-picture rows.
    edges = roi.y + np.arange(n + 1) * roi.h / n
    lo = np.floor(edges[:-1] * n / height).astype(int)
    hi = np.minimum(np.ceil(edges[1:] * n / height).astype(int) - 1, n - 1)
    out = np.zeros(n, np.float32)
    for i in range(n):  # n = 16 bands per frame: not a per-pixel loop
        out[lo[i]:hi[i] + 1] = np.maximum(out[lo[i]:hi[i] + 1], bands[i])
    return out


class RoiDetector(Detector):
    """Runs ``inner`` on the region only."""

    def __init__(self, inner: Detector, roi: Roi) -> None:
        self.inner = inner
        self.roi = roi
        self.name = f"{inner.name} roi {roi}"
        # describe_detector() names the TFLite runtime when there is one.
        self.runtime = getattr(inner, "runtime", None)
        self.precision = getattr(inner, "precision", None)

    def detect(self, image: np.ndarray) -> DetectResult:
        r = self.roi
        result = self.inner.detect(image[r.y:r.y + r.h, r.x:r.x + r.w])
        if result.bands is not None and len(result.bands):
            result.bands = map_bands(np.asarray(result.bands, np.float32), r, image.shape[0])
        return result

    def reset(self) -> None:
        self.inner.reset()
