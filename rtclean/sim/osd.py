"""The FPV on-screen display: white text with a black outline, fixed on the
screen while the scene moves under it (battery voltage, flight timer, RSSI,
current draw, flight mode, a crosshair in the centre), and optionally an
artificial horizon that follows the craft's attitude every frame.

Each element is a small sprite (colour patch + mask) re-rendered only when
its text changes (about once per second), and pasted with a masked copy into
its own rectangle: drawing text every frame would cost more than the scene.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

_FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclass(slots=True)
class Sprite:
    x: int
    y: int
    patch: np.ndarray  # h x w x 3 BGR
    mask: np.ndarray  # h x w x 1 bool

    def paste(self, image: np.ndarray) -> None:
        h, w = self.patch.shape[:2]
        ih, iw = image.shape[:2]
        x0, y0 = max(self.x, 0), max(self.y, 0)
        x1, y1 = min(self.x + w, iw), min(self.y + h, ih)
        if x1 <= x0 or y1 <= y0:
            return
        px, py = x0 - self.x, y0 - self.y
        np.copyto(image[y0:y1, x0:x1], self.patch[py:py + y1 - y0, px:px + x1 - x0],
                  where=self.mask[py:py + y1 - y0, px:px + x1 - x0])


def text_sprite(text: str, x: int, y: int, scale: float, anchor: str = "left") -> Sprite:
    """``text`` in white with a black outline; (x, y) is the baseline start
    (anchor 'left'), centre ('centre') or end ('right')."""
    thick = max(1, round(2 * scale / 0.6))
    outline = thick + max(2, round(3 * scale / 0.6))
    (tw, th), base = cv2.getTextSize(text, _FONT, scale, outline)
    pad = outline
    w, h = tw + 2 * pad, th + base + 2 * pad
    org = (pad, pad + th)
    patch = np.zeros((h, w, 3), np.uint8)
    mask = np.zeros((h, w), np.uint8)
    cv2.putText(mask, text, org, _FONT, scale, 255, outline, cv2.LINE_AA)
    cv2.putText(patch, text, org, _FONT, scale, (255, 255, 255), thick, cv2.LINE_AA)
    if anchor == "centre":
        x -= w // 2
    elif anchor == "right":
        x -= w
    return Sprite(x - pad, y - pad - th, patch, (mask > 96)[..., None])


def crosshair_sprite(cx: int, cy: int, size: int) -> Sprite:
    s = size
    thick = max(2, s // 10)
    edge = thick + 2
    n = 2 * s + 2 * edge + 1
    patch = np.zeros((n, n, 3), np.uint8)
    mask = np.zeros((n, n), np.uint8)
    c = n // 2
    gap = s // 3
    segs = [((c - s, c), (c - gap, c)), ((c + gap, c), (c + s, c)), ((c, c - s // 2), (c, c - gap))]
    for a, b in segs:
        cv2.line(mask, a, b, 255, edge + 2)
        cv2.line(patch, a, b, (255, 255, 255), thick)
    cv2.circle(mask, (c, c), 3, 255, -1)
    cv2.circle(patch, (c, c), 1, (255, 255, 255), -1)
    return Sprite(cx - c, cy - c, patch, (mask > 0)[..., None])


def horizon_bar_sprite(cx: int, cy: int, length: int, scale: float) -> Sprite:
    """One character of the artificial horizon: a short white bar with a
    black outline, centred on (cx, cy). A character OSD draws the horizon
    from a few such characters, each showing its bar at one of several
    heights inside the character cell."""
    thick = max(1, round(2 * scale / 0.6))  # one OSD line: a line of each field
    edge = thick  # the outline: one OSD pixel
    w, h = length + 2 * edge, thick + 2 * edge
    patch = np.zeros((h, w, 3), np.uint8)
    patch[edge:edge + thick, edge:edge + length] = 255
    return Sprite(cx - w // 2, cy - h // 2, patch, np.ones((h, w, 1), bool))


HORIZON_CHARS = 4  # characters each side of the crosshair
HORIZON_STEPS = 9  # bar heights per character row
HORIZON_PITCH_ROWS = 0.25  # character rows the horizon moves per degree of pitch


class Osd:
    """The OSD of one flight; ``draw`` pastes it onto a frame in place.

    ``horizon`` adds the artificial horizon, which moves whenever the
    attitude passed to ``draw`` changes: on a flying craft, every frame. It
    is off by default, so the demo feed's pictures stay as they were."""

    def __init__(self, width: int, height: int, seed: int = 1, horizon: bool = False) -> None:
        self.w, self.h = width, height
        self.horizon = horizon
        self._bars: dict[tuple[int, int], Sprite] = {}
        self.scale = 0.62 * width / 720
        rng = np.random.default_rng([seed, 404])
        self._volts0 = float(rng.uniform(16.2, 16.8))  # a fresh 4S pack
        self._mode = str(rng.choice(["ACRO", "AIR", "ANGLE"]))
        self._cache: dict[str, tuple[str, Sprite]] = {}
        self._cross = crosshair_sprite(width // 2, height // 2, max(8, round(22 * width / 720)))
        self._second = -1
        self._sprites: list[Sprite] = []

    def _sprite(self, key: str, text: str, x: int, y: int, anchor: str = "left") -> Sprite:
        old = self._cache.get(key)
        if old is None or old[0] != text:
            old = (text, text_sprite(text, x, y, self.scale, anchor))
            self._cache[key] = old
        return old[1]

    def update(self, t: float, rssi: int) -> None:
        """Refresh the texts for flight time ``t`` (once per second, as a
        flight controller's OSD does)."""
        sec = int(t)
        if sec == self._second:
            return
        self._second = sec
        w, h = self.w, self.h
        mx, top, bottom = round(0.07 * w), round(0.09 * h), round(0.92 * h)
        volts = self._volts0 - 0.004 * t - 0.05 * np.sin(t * 0.7) ** 2  # sags under throttle
        amps = 9.0 + 6.0 * np.sin(t * 0.7) ** 2
        used = int(t * 3.4)
        self._sprites = [
            self._sprite("volt", f"{volts:4.1f}V", mx, top),
            self._sprite("rssi", f"RSSI {rssi:2d}", w // 2, top, "centre"),
            self._sprite("time", f"{sec // 60:02d}:{sec % 60:02d}", w - mx, top, "right"),
            self._sprite("amps", f"{amps:4.1f}A", mx, bottom),
            self._sprite("mode", self._mode, w // 2, bottom, "centre"),
            self._sprite("mah", f"{used:4d}MAH", w - mx, bottom, "right"),
            self._cross,
        ]

    def horizon_sprites(self, roll: float, pitch: float) -> list[Sprite]:
        """The artificial horizon for a bank of ``roll`` and a nose-up
        ``pitch`` (radians), as a character OSD draws it: one bar per
        character column, its height snapped to the character grid's steps
        (30 columns, 16 rows at 576 lines), centre column left to the
        crosshair. The bars of a level horizon line up; banked, they form a
        staircase."""
        col = self.w / 30
        row = self.h / 16
        step = row / HORIZON_STEPS
        length = max(4, round(0.75 * col))
        slope = math.tan(max(-1.2, min(1.2, roll)))
        centre = self.h / 2 + math.degrees(pitch) * HORIZON_PITCH_ROWS * row  # nose up: the horizon sinks
        out = []
        for k in range(-HORIZON_CHARS, HORIZON_CHARS + 1):
            if k == 0:
                continue
            y = centre - slope * k * col  # right wing down: the picture turns left, its right side rises
            y = round(y / step) * step
            if not row <= y <= self.h - row:
                continue
            cx, cy = round(self.w / 2 + k * col), round(y)
            bar = self._bars.get((cx, cy))
            if bar is None:
                bar = self._bars.setdefault((cx, cy), horizon_bar_sprite(cx, cy, length, self.scale))
            out.append(bar)
        return out

    def draw(self, image: np.ndarray, t: float, rssi: int,
             attitude: tuple[float, float] | None = None) -> None:
        """Paste the OSD for flight time ``t``; ``attitude`` (roll, pitch in
        radians) places the artificial horizon when it is on."""
        self.update(t, rssi)
        sprites = self._sprites
        if self.horizon and attitude is not None:
            sprites = self.horizon_sprites(*attitude) + sprites  # the crosshair over the horizon
        for s in sprites:
            s.paste(image)
