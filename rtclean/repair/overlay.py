"""What the pilot sees when there is no real picture to show.

A frozen picture must never pass for live video: a pilot steering by a
frozen frame crashes. So the frozen frame is dimmed and turned grey (it
still helps to see where the craft was) and a full-width red band with
white "SIGNAL LOST" lettering crosses its middle. The band is rendered once
per frame size and pasted; rows outside the band are exactly ``dim(image)``,
which keeps the overlay cheap and testable.

All functions return new arrays and never touch their input.
"""

from __future__ import annotations

import cv2
import numpy as np

from rtclean import frames
from rtclean.errors import RtcleanError

_RED = (0, 0, 200)  # BGR
_WHITE = (255, 255, 255)
_DIM = 0.35  # brightness kept in the frozen picture
_SLATE_GREY = 24

_FONT = cv2.FONT_HERSHEY_DUPLEX
_bands: dict[tuple[int, int, str], tuple[int, np.ndarray]] = {}
_tags: dict[tuple[int, str], np.ndarray] = {}


def _check(width: int, height: int) -> None:
    if width < 16 or height < 16:
        raise RtcleanError(f"overlay needs a picture of at least 16x16, got {width}x{height}")


def _fit_text(text: str, max_w: float, max_h: float) -> tuple[float, int]:
    """Largest (scale, thickness) for which ``text`` fits in max_w x max_h."""
    (tw, th), _ = cv2.getTextSize(text, _FONT, 1.0, 2)
    scale = min(max_w / tw, max_h / th)
    return scale, max(1, round(scale * 2))


def band_rows(width: int, height: int) -> tuple[int, int]:
    """(first, last+1) picture rows the banner covers at this size."""
    bh = max(24, round(height * 0.22))
    y0 = (height - bh) // 2
    return y0, y0 + bh


def _band(width: int, height: int, text: str) -> tuple[int, np.ndarray]:
    key = (width, height, text)
    hit = _bands.get(key)
    if hit is not None:
        return hit
    y0, y1 = band_rows(width, height)
    bh = y1 - y0
    band = np.empty((bh, width, 3), np.uint8)
    band[:] = _RED
    edge = max(2, bh // 14)  # white rules top and bottom frame the band
    band[:edge] = _WHITE
    band[-edge:] = _WHITE
    scale, thick = _fit_text(text, width * 0.86, bh * 0.55)
    (tw, th), base = cv2.getTextSize(text, _FONT, scale, thick)
    org = ((width - tw) // 2, (bh + th) // 2)
    # A dark outline first so the letters stay readable on any encoder/JPEG.
    cv2.putText(band, text, org, _FONT, scale, (0, 0, 0), thick + max(2, thick // 2), cv2.LINE_AA)
    cv2.putText(band, text, org, _FONT, scale, _WHITE, thick, cv2.LINE_AA)
    _bands[key] = (y0, band)
    return y0, band


def dim(image: np.ndarray) -> np.ndarray:
    """The frozen picture as shown under the banner: grey and dark (new array)."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return cv2.cvtColor(cv2.convertScaleAbs(grey, alpha=_DIM), cv2.COLOR_GRAY2BGR)


def signal_lost(image: np.ndarray) -> np.ndarray:
    """The frozen last clean frame, dimmed, with a SIGNAL LOST banner."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise RtcleanError(f"expected an HxWx3 uint8 BGR image, got shape {image.shape} {image.dtype}")
    h, w = image.shape[:2]
    _check(w, h)
    out = dim(image)
    y0, band = _band(w, h, "SIGNAL LOST")
    out[y0:y0 + band.shape[0]] = band
    return out


def slate(width: int, height: int) -> np.ndarray:
    """No picture has been seen yet: a dark frame with a NO SIGNAL banner."""
    _check(width, height)
    out = np.full((height, width, 3), _SLATE_GREY, np.uint8)
    y0, band = _band(width, height, "NO SIGNAL")
    out[y0:y0 + band.shape[0]] = band
    return out


def _tag(height: int, action: str) -> np.ndarray | None:
    if action == frames.PASS:
        return None
    if action.startswith(frames.REPAIR):
        label, colour = "REPAIRED", (0, 210, 255)  # amber
    elif action == frames.HOLD:
        label, colour = "HOLD", (0, 130, 255)  # orange
    elif action == frames.LOST:
        label, colour = "LOST", (0, 0, 230)  # red
    else:
        raise RtcleanError(f"unknown repair action {action!r}")
    key = (height, label)
    hit = _tags.get(key)
    if hit is not None:
        return hit
    th = max(12, round(height * 0.045))  # text height ~ 26 px at 576 lines
    scale, thick = _fit_text(label, 10_000, th)
    (tw, _), _ = cv2.getTextSize(label, _FONT, scale, thick)
    pad = max(3, th // 3)
    r = th // 2
    patch = np.full((th + 2 * pad, 2 * pad + 2 * r + pad + tw, 3), 16, np.uint8)
    cv2.circle(patch, (pad + r, pad + r), r, colour, -1, cv2.LINE_AA)
    cv2.putText(patch, label, (2 * pad + 2 * r, pad + th), _FONT, scale, colour, thick, cv2.LINE_AA)
    _tags[key] = patch
    return patch


def repaired_tag(image: np.ndarray, action: str) -> np.ndarray:
    """A copy of ``image`` with a small dot + label in the top-right corner
    saying the picture was synthesized (live view only; PASS gets no tag)."""
    out = image.copy()
    patch = _tag(image.shape[0], action)
    if patch is None:
        return out
    h, w = image.shape[:2]
    ph, pw = patch.shape[:2]
    m = max(2, h // 60)
    if ph + m > h or pw + m > w:  # tiny picture: shrink the tag to fit
        s = min((h - m) / ph, (w - m) / pw)
        patch = cv2.resize(patch, (max(1, int(pw * s)), max(1, int(ph * s))), interpolation=cv2.INTER_AREA)
        ph, pw = patch.shape[:2]
    out[m:m + ph, w - m - pw:w - m] = patch
    return out
