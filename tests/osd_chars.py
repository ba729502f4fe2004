"""A character OSD as a MAX7456-style chip draws it, for tests.

The simulator's own OSD (rtclean/sim/osd.py), which training data carries,
draws anti-aliased text. A flight controller's chip draws blocky 12x18-pixel
characters on a 30-column grid, every OSD pixel two capture pixels wide and
its lines the same in both fields, with hard white and black levels. Tests
draw this one so that a detector is checked on an OSD it was not trained on.

Elements as a Betaflight layout shows them: voltage, RSSI, timer, current,
mode, mAh, altitude and speed (changing every two frames, as telemetry
does), a crosshair, and the artificial horizon, which follows a random but
smooth attitude and so moves every frame.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

WHITE, BLACK = 235, 16  # the chip's levels in a BT.601 capture


def _glyph(name: str, cache: dict = {}) -> tuple[np.ndarray, np.ndarray]:  # noqa: B006 (a cache)
    """(white, outline) masks of one 18x12 character; 'bar:K' is a horizon
    character with its bar at height K of 9."""
    if name not in cache:
        cell = np.zeros((18, 12), np.uint8)
        if name.startswith("bar:"):
            y = 1 + 2 * int(name[4:])
            cell[y, :] = 255
        else:
            cv2.putText(cell, name, (1, 14), cv2.FONT_HERSHEY_PLAIN, 0.95, 255, 1, cv2.LINE_8)
        white = cell > 0
        outline = (cv2.dilate(cell, np.ones((3, 3), np.uint8)) > 0) & ~white
        cache[name] = (white, outline)
    return cache[name]


class CharacterOsd:
    """One flight's OSD; ``draw(image, i)`` pastes frame ``i``'s OSD in place."""

    def __init__(self, width: int, height: int, seed: int, horizon: bool = True) -> None:
        self.rows = 16 if height >= 576 else 13
        self.cw, self.ch = 24, 36  # a character in capture pixels: 12 x 2 wide, 18 lines x 2 fields
        self.x0 = (width - 30 * self.cw) // 2
        self.y0 = (height - self.rows * self.ch) // 2
        self.horizon = horizon
        self.rng = np.random.default_rng(seed)
        self.roll = self.pitch = 0.0
        self.amps, self.alt, self.speed = 12.0, 10.0, 40.0

    def _put(self, image: np.ndarray, col: int, row: int, chars: list[str]) -> None:
        for k, name in enumerate(chars):
            if name == " ":
                continue
            white, outline = _glyph(name)
            x, y = self.x0 + (col + k) * self.cw, self.y0 + row * self.ch
            cell = image[y:y + self.ch, x:x + self.cw]
            if cell.shape[:2] != (self.ch, self.cw):
                continue
            cell[np.kron(outline, np.ones((2, 2), bool))] = BLACK
            cell[np.kron(white, np.ones((2, 2), bool))] = WHITE

    def text(self, image: np.ndarray, col: int, row: int, s: str) -> None:
        self._put(image, col, row, list(s))

    def draw(self, image: np.ndarray, i: int, fps: float = 25.0) -> np.ndarray:
        rng, r = self.rng, self.rows
        if i % 2 == 0:  # telemetry
            self.amps = float(np.clip(self.amps + rng.normal(0, 4), 2, 60))
            self.alt = float(max(0.0, self.alt + rng.normal(0, 0.4)))
            self.speed = float(np.clip(self.speed + rng.normal(0, 3), 0, 140))
        sec = int(i / fps)
        self.text(image, 1, 1, f"{16.4 - 0.01 * self.amps:4.1f}V")
        self.text(image, 12, 1, f"RSSI{int(80 + 10 * math.sin(i / 30)):3d}")
        self.text(image, 24, 1, f"{sec // 60:02d}:{sec % 60:02d}")
        self.text(image, 1, r - 2, f"{self.amps:4.1f}A")
        self.text(image, 12, r - 2, "ACRO")
        self.text(image, 23, r - 2, f"{int(i * 1.3):4d}MAH")
        self.text(image, 1, r // 2 + 3, f"{self.alt:4.1f}M")
        self.text(image, 23, r // 2 + 3, f"{int(self.speed):3d}KM/H")
        if self.horizon:
            self.roll = float(np.clip(self.roll + rng.normal(0, 0.06), -0.8, 0.8))
            self.pitch = float(np.clip(self.pitch + rng.normal(0, 0.4), -4, 4))
            for dx in range(-4, 5):
                if dx == 0:
                    continue
                # in ninths of a row: pitch moves the line, roll tilts it
                pos = r // 2 * 9 + 4 + round(2 * (self.pitch + dx * math.tan(self.roll) * 3))
                row, k = divmod(pos, 9)
                if 0 <= row < r:
                    self._put(image, 15 + dx, row, [f"bar:{k}"])
        self.text(image, 14, r // 2, "-+-")
        return image
