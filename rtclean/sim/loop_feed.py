"""Replay of the pre-rendered analog demo loop (``rtclean.sim.demo_clip``).

``LoopFeed.next()`` gives the receiver's picture decoded from the shipped
H.264 file, the loop's exact label for that frame (from the JSONL rendered
with it), the link during the frame, and the untouched frame re-rendered from
the recipe's scene seed. The loop repeats endlessly; indices and pts keep
counting across repeats.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from rtclean.errors import SourceError
from rtclean.sim.demo_clip import ASSETS, RECIPES, load_labels, paths, scenes
from rtclean.sim.feed import SimFrame, _standard

log = logging.getLogger(__name__)


class LoopFeed:
    def __init__(self, standard: str = "pal", width: int = 0, root: Path = ASSETS) -> None:
        import av

        self._av = av
        std = _standard(standard)
        if width and not 64 <= width <= 4096:
            raise SourceError(f"demo: width must be 0 (standard size) or in [64, 4096], got {width}")
        self.recipe = RECIPES[std.name]
        self.video, labels = paths(std.name, Path(root))
        if not self.video.is_file() or not labels.is_file():
            raise SourceError(f"demo: the analog demo loop {self.video} is missing "
                              "(render it with: python -m rtclean.sim.demo_clip)")
        self.frames = load_labels(labels)
        self.fps = std.fps
        w = int(width) or std.width
        h = std.height if w == std.width else max(2, int(round(std.height * w / std.width / 2)) * 2)
        self.size = (w, h)
        self._native = (std.width, std.height)
        self.index = 0
        self._pics: Iterator[np.ndarray] | None = None
        self._scenes: Iterator[np.ndarray] | None = None
        self._container = None
        self._restart()

    @property
    def length(self) -> int:
        return len(self.frames)

    def _restart(self) -> None:
        self.close()
        try:
            self._container = self._av.open(str(self.video))
            stream = self._container.streams.video[0]
            if (stream.codec_context.width, stream.codec_context.height) != self._native:
                raise SourceError(f"demo: {self.video} is {stream.codec_context.width}x"
                                  f"{stream.codec_context.height}, expected {self._native[0]}x{self._native[1]}")
        except self._av.error.FFmpegError as e:
            raise SourceError(f"demo: cannot open the demo loop {self.video}: {e}") from None
        self._pics = (f.to_ndarray(format="bgr24") for f in self._container.decode(video=0))
        sc = scenes(self.recipe, self.size[0] if self.size != self._native else 0)
        for _ in range(self.recipe.warmup):  # the rendered loop starts after the warm-up frames
            next(sc)
        self._scenes = sc

    def next(self) -> SimFrame:
        k = self.index % self.length
        if k == 0 and self.index:
            self._restart()
        try:
            image = next(self._pics)
        except StopIteration:
            raise SourceError(f"demo: {self.video} has {k} frames but its labels list {self.length}") from None
        except self._av.error.FFmpegError as e:
            raise SourceError(f"demo: cannot decode the demo loop {self.video}: {e}") from None
        if self.size != self._native:
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        info = self.frames[k]
        truth = next(self._scenes)
        f = SimFrame(image, truth, info.label, self.index, self.index / self.fps, info.link)
        self.index += 1
        return f

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
