"""The simulated FPV feed: scenery + OSD + interlacing + link-driven breakup.

``DemoFeed.next()`` gives what a receiver would output (``image``) together
with the untouched frame (``truth``, OSD included) and an exact label. The
two fields of a frame are rendered at two instants, half a frame period
apart (even lines first), as an interlaced camera does.

``degrade()`` applies the same link and breakup to any frames (real clips),
so tests and training get real content with exact ground truth.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import cv2
import numpy as np

from rtclean.errors import RtcleanError
from rtclean.sim.breakup import BreakupLabel, inject
from rtclean.sim.link import LinkModel, LinkState
from rtclean.sim.osd import Osd
from rtclean.sim.scenery import CameraPath, Renderer

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Standard:
    name: str
    width: int
    height: int
    fps: float


STANDARDS = {
    "pal": Standard("pal", 720, 576, 25.0),
    "ntsc": Standard("ntsc", 720, 480, 30000 / 1001),
}


@dataclass(slots=True, eq=False)
class SimFrame:
    image: np.ndarray  # what the receiver outputs (broken or clean); the same array as truth when clean
    truth: np.ndarray  # the untouched frame, OSD included
    label: BreakupLabel
    index: int
    pts: float  # seconds from the start of the feed
    link: Any = None  # the link during this frame: LinkState (image-domain), LinkFrame (analog), LoopLink (demo loop)


def _standard(name: str) -> Standard:
    std = STANDARDS.get(str(name).lower())
    if std is None:
        raise RtcleanError(f"demo: unknown video standard {name!r} (expected pal or ntsc)")
    return std


class _Breaker:
    """Link model + injection, shared by the demo feed and degrade()."""

    def __init__(self, seed: int, breakup: float, fps: float) -> None:
        self.link = LinkModel(seed, breakup, fps)
        self.rng = np.random.default_rng([seed, 606])
        self.prev: np.ndarray | None = None  # last output, for capture cards that freeze

    def apply(self, truth: np.ndarray, state: LinkState) -> tuple[np.ndarray, BreakupLabel]:
        if state.kind is None:
            image, label = truth, BreakupLabel()
        else:
            image, label = inject(truth, state.kind, state.severity, self.rng, field=state.field, prev=self.prev)
        self.prev = image
        return image, label


class DemoFeed:
    """An endless, reproducible FPV flight with link breakup."""

    def __init__(self, standard: str = "pal", seed: int = 1, breakup: float = 0.15, width: int = 0) -> None:
        std = _standard(standard)
        if not 0.0 <= breakup <= 1.0:
            raise RtcleanError(f"demo: breakup share must be in [0, 1], got {breakup}")
        if width and not 64 <= width <= 4096:
            raise RtcleanError(f"demo: width must be 0 (standard size) or in [64, 4096], got {width}")
        w = int(width) or std.width
        h = std.height if w == std.width else max(2, int(round(std.height * w / std.width / 2)) * 2)
        self.standard = std
        self.fps = std.fps
        self.size = (w, h)
        self.seed = int(seed)
        self._renderer = Renderer(self.seed, w, h)
        self._camera = CameraPath(self.seed, 0.5 / std.fps)
        self._osd = Osd(w, h, self.seed)
        self._breaker = _Breaker(self.seed, breakup, std.fps)
        self.index = 0

    def _render(self, rssi: int) -> np.ndarray:
        w, h = self.size
        frame = np.zeros((h, w, 3), np.uint8)  # calloc: free, and deterministic
        # even lines at t, odd lines half a frame period later
        self._renderer.draw_field(frame[0::2], self._camera.pose, 0)
        self._renderer.draw_field(frame[1::2], self._camera.step(), 1)
        self._camera.step()
        self._osd.draw(frame, self.index / self.fps, rssi)
        return frame

    def next_scene(self, rssi: int) -> np.ndarray:
        """The next undegraded frame only (no link, no breakup), with ``rssi``
        on the OSD: the demo loop's content, and its truth on replay."""
        truth = self._render(int(rssi))
        self.index += 1
        return truth

    def next(self) -> SimFrame:
        state = self._breaker.link.next()
        truth = self._render(state.rssi)
        image, label = self._breaker.apply(truth, state)
        f = SimFrame(image, truth, label, self.index, self.index / self.fps, state)
        self.index += 1
        return f

    def __iter__(self) -> Iterator[SimFrame]:
        while True:
            yield self.next()


def render_clip(n: int, standard: str = "pal", seed: int = 1, breakup: float = 0.3) -> list[SimFrame]:
    """``n`` consecutive frames of a demo feed."""
    feed = DemoFeed(standard, seed, breakup)
    return [feed.next() for _ in range(int(n))]


def fit_frame(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scale to cover ``size`` (w, h) and crop the centre: real clips to an
    analog frame size without distorting them."""
    w, h = size
    ih, iw = image.shape[:2]
    s = max(w / iw, h / ih)
    nw, nh = max(w, round(iw * s)), max(h, round(ih * s))
    if (nw, nh) != (iw, ih):
        image = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    x0, y0 = (nw - w) // 2, (nh - h) // 2
    return np.ascontiguousarray(image[y0:y0 + h, x0:x0 + w])


def degrade(frames: Iterable[np.ndarray], seed: int = 1, breakup: float = 0.15, fps: float = 25.0,
            size: tuple[int, int] | None = None) -> Iterator[SimFrame]:
    """Inject link-driven breakup into arbitrary BGR frames (e.g. a decoded
    real clip). ``size`` (w, h), if given, scales and centre-crops every frame
    to it first (e.g. (720, 576)); ``truth`` is then the fitted frame."""
    if not fps > 0:
        raise RtcleanError(f"degrade: fps must be positive, got {fps}")
    breaker = _Breaker(int(seed), breakup, float(fps))
    for i, frame in enumerate(frames):
        if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise RtcleanError(f"degrade: frame {i} is not an HxWx3 uint8 BGR image")
        truth = fit_frame(frame, size) if size else frame
        state = breaker.link.next()
        image, label = breaker.apply(truth, state)
        yield SimFrame(image, truth, label, i, i / fps, state)
