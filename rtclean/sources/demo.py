"""The demo source: the simulated FPV feed (rtclean.sim) as a capture source,
so rtclean runs with no hardware straight after install."""

from __future__ import annotations

import logging
import time

import numpy as np

from rtclean.config import DemoConfig
from rtclean.errors import SourceError
from rtclean.sim.feed import STANDARDS, DemoFeed, SimFrame
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
        self._feed: DemoFeed | None = None
        self._start = 0.0
        self._n = 0

    def open(self) -> None:
        c = self.cfg
        self._feed = DemoFeed(c.standard, seed=c.seed, breakup=c.breakup, width=c.width)
        self.fps = self._feed.fps
        self.size = self._feed.size
        self._n = 0
        self._start = time.monotonic()
        log.info("demo feed: %s %dx%d @ %.2f fps, breakup %.0f%%, seed %d",
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
        self._feed = None
