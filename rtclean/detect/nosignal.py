"""Is the picture video at all? Blue screen, black screen, frozen capture.

When the link is lost a receiver shows a solid blue or black screen, and
some capture cards keep repeating the last frame they had. All three are
seen on a coarse subsample (about 48 x 64 pixels) so the check costs a few
microseconds per frame.

Frozen: a live analog picture is never identical twice (there is always
noise), while a card that repeats its buffer delivers byte-identical
frames. A compressed file can repeat a frame or two on a static scene
(measured on the real clips: at most 2 consecutive near-identical frames,
the heavily compressed carphone clip has 13 in a row that differ by less
than 0.5 grey level on average but never by less than 0.17), hence
"near-identical" is a mean absolute difference below ``FROZEN_MAD`` and a
run of ``frozen_frames`` of them is needed.
"""

from __future__ import annotations

import numpy as np

SAMPLE_ROWS = 48
SAMPLE_COLS = 64
FROZEN_MAD = 0.1  # mean |difference| in grey levels on the subsample
BLUE_SHARE = 0.85  # share of sampled pixels that must be blue (an OSD may remain)
BLACK_SHARE = 0.97  # share of sampled pixels that must be near black
BLACK_LEVEL = 32  # luma-ish level below which a pixel counts as black


class NoSignalCheck:
    def __init__(self, frozen_frames: int) -> None:
        if frozen_frames < 2:
            raise ValueError("frozen_frames must be at least 2")
        self.frozen_frames = frozen_frames
        self._prev: np.ndarray | None = None
        self._same = 0  # consecutive frames near-identical to their predecessor

    def reset(self) -> None:
        self._prev = None
        self._same = 0

    def check(self, image: np.ndarray) -> str | None:
        """"blue", "black", "frozen" or None (the picture looks like video)."""
        h, w = image.shape[:2]
        s = image[:: max(1, h // SAMPLE_ROWS), :: max(1, w // SAMPLE_COLS)].astype(np.int16)
        if self._prev is not None and self._prev.shape == s.shape:
            mad = np.abs(s - self._prev).mean()
            self._same = self._same + 1 if mad < FROZEN_MAD else 0
        else:
            self._same = 0
        self._prev = s
        if s.ndim == 3:
            b, g, r = s[..., 0], s[..., 1], s[..., 2]
            blue = (b > 90) & (b > g + 50) & (b > r + 50)
            if blue.mean() >= BLUE_SHARE:
                return "blue"
            dark = (b < BLACK_LEVEL) & (g < BLACK_LEVEL) & (r < BLACK_LEVEL)
        else:
            dark = s < BLACK_LEVEL
        if dark.mean() >= BLACK_SHARE:
            return "black"
        # n identical frames = n - 1 identical pairs
        if self._same >= self.frozen_frames - 1:
            return "frozen"
        return None
