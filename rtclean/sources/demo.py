"""The demo source: a simulated FPV feed as a capture source, so rtclean runs
with no hardware straight after install.

``channel: analog`` (default) replays the loop rendered once through the
physical analog channel simulator (rtclean.sim.demo_clip: composite, FM,
noise, receiver and capture card; ~0.3 s per frame, far from live rate) with
its exact per-frame labels. ``channel: image`` runs the image-domain
simulator live (rtclean.sim.feed), endless and shaped by ``seed`` and
``breakup``, which the fixed analog loop ignores.

Either way ``last`` is the SimFrame of the frame read() returned last: the
label is exact; ``truth`` is the untouched frame (for the analog loop the
camera's view before the transmitter, re-rendered from the recipe's seed, so
even a clean frame differs from it by the composite round trip).
"""

from __future__ import annotations

import logging
import time

import numpy as np

from rtclean.config import DemoConfig
from rtclean.errors import SourceError
from rtclean.sim.feed import STANDARDS, DemoFeed, SimFrame
from rtclean.sim.loop_feed import LoopFeed
from rtclean.sources.base import Source

log = logging.getLogger(__name__)


class DemoSource(Source):
    name = "demo"

    def __init__(self, cfg: DemoConfig, duration_s: float | None = None) -> None:
        super().__init__()
        if duration_s is not None and duration_s < 0:
            raise SourceError(f"demo: duration must be >= 0 seconds, got {duration_s}")
        self.cfg = cfg
        self.duration_s = duration_s
        self.live = cfg.realtime
        std = STANDARDS.get(cfg.standard)
        self.fps = std.fps if std else 25.0
        self.last: SimFrame | None = None  # ground truth of the frame read() returned last
        self._feed: DemoFeed | LoopFeed | None = None
        self._start = 0.0
        self._n = 0

    def open(self) -> None:
        c = self.cfg
        if c.channel == "analog":
            self._feed = LoopFeed(c.standard, width=c.width)
        else:
            self._feed = DemoFeed(c.standard, seed=c.seed, breakup=c.breakup, width=c.width)
        self.fps = self._feed.fps
        self.size = self._feed.size
        self._n = 0
        self._start = time.monotonic()
        if c.channel == "analog":
            log.info("demo feed: %s %dx%d @ %.2f fps, analog channel loop of %d frames (%s)",
                     c.standard.upper(), *self.size, self.fps, self._feed.length, self._feed.video.name)
        else:
            log.info("demo feed: %s %dx%d @ %.2f fps, image channel, breakup %.0f%%, seed %d",
                     c.standard.upper(), *self.size, self.fps, 100 * c.breakup, c.seed)

    def read(self) -> tuple[np.ndarray, float] | None:
        if self._feed is None:
            raise SourceError("demo: source not open")
        if self.duration_s is not None and self._n >= self.duration_s * self.fps - 1e-9:
            return None
        frame = self._feed.next()
        if self._n == 0:
            # The clock starts at the first read, not at open(): the pipeline
            # opens its recorders and web server in between, and a clock that
            # ran meanwhile would deliver the first frames as a burst.
            self._start = time.monotonic()
        if self.live:
            # Frame n is due at start + n / fps: scheduled from the start so
            # errors do not accumulate; a late frame goes out at once.
            delay = self._start + self._n / self.fps - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        self._n += 1
        self.last = frame
        return frame.image, frame.pts

    def close(self) -> None:
        if isinstance(self._feed, LoopFeed):
            self._feed.close()
        self._feed = None
