"""Analog FPV breakup injected into a clean frame, with exact labels.

Each kind imitates what a 5.8 GHz FM link does to composite video as the
carrier-to-noise ratio falls (DESIGN.md): FM clicks ("sparklies"), snow,
sync errors that tear bands sideways, the colour killer, vertical roll, and
the receiver's no-signal pictures. Damage is line-structured and often local
(one field, a band of lines), as on a real capture.

Labels are exact: after injecting, the lines that really differ from the
input are found (only the lines the kind could have touched are compared) and
the label's per-line figures come from them, so "band 3 is clean" means band 3
is bit-identical to the input.

Speed: noise comes from tables built once per frame size and read at random
offsets, and is added with one saturating OpenCV call; no full-frame random
generation per frame.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import cv2
import numpy as np

from rtclean.errors import RtcleanError

KINDS = ("sparklies", "snow", "tear", "colour_loss", "roll", "blue", "black", "static", "frozen")
NO_SIGNAL_KINDS = frozenset({"blue", "black", "static", "frozen"})
N_BANDS = 16
BLUE_BGR = (200, 40, 12)  # the solid blue screen many receivers show without signal


@dataclass(slots=True, eq=False)
class BreakupLabel:
    """Ground truth for one frame."""

    kind: str | None = None  # one of KINDS, None for a clean frame
    severity: float = 0.0  # in [0, 1]
    damaged_lines: float = 0.0  # fraction of the frame's lines that differ from the truth
    bands: np.ndarray = field(default_factory=lambda: np.zeros(N_BANDS, np.float32))  # per band, top to bottom
    fields: tuple[bool, bool] = (False, False)  # (even lines damaged, odd lines damaged)
    no_signal: bool = False  # the receiver shows no video (blue/black/static/frozen)

    @property
    def broken(self) -> bool:
        return self.kind is not None

    def to_dict(self) -> dict:
        return {"kind": self.kind, "severity": round(float(self.severity), 4),
                "damaged_lines": round(float(self.damaged_lines), 4),
                "bands": [round(float(b), 4) for b in self.bands],
                "fields": list(self.fields), "no_signal": self.no_signal}


def label_from_lines(kind: str | None, severity: float, lines: np.ndarray, no_signal: bool = False) -> BreakupLabel:
    """A label from a per-line damage mask (bool, one entry per frame line)."""
    lines = np.asarray(lines, bool)
    h = len(lines)
    edges = np.linspace(0, h, N_BANDS + 1).round().astype(int)
    counts = np.add.reduceat(lines.astype(np.float32), edges[:-1])
    bands = (counts / np.diff(edges)).astype(np.float32)
    return BreakupLabel(kind=kind, severity=float(severity), damaged_lines=float(lines.mean()) if h else 0.0,
                        bands=bands, fields=(bool(lines[0::2].any()), bool(lines[1::2].any())),
                        no_signal=no_signal)


# --------------------------------------------------------------------------- noise tables


@dataclass(slots=True)
class NoiseBank:
    """Pre-rendered noise for one frame size, stored as uint8 around 128.

    colour: luma grain (slightly smeared along the line, as the video
            bandwidth does) plus chroma noise (coarser horizontal blobs: the
            chroma bandwidth is lower), already in BGR.
    luma:   grain only, the same on all channels (for a black-and-white picture).
    static: no-signal noise: coarse, with per-line brightness streaks.
    """

    colour: np.ndarray
    luma: np.ndarray
    static: np.ndarray

    def window(self, table: np.ndarray, rng: np.random.Generator, h: int, w: int) -> np.ndarray:
        oy = int(rng.integers(0, table.shape[0] - h + 1))
        ox = int(rng.integers(0, table.shape[1] - w + 1))
        return table[oy:oy + h, ox:ox + w]


@functools.lru_cache(maxsize=4)
def noise_bank(h: int, w: int) -> NoiseBank:
    rng = np.random.default_rng(9001)  # fixed: the tables are scenery, the offsets carry the randomness
    th, tw = h + h // 2 + 64, w + w // 2 + 64
    y = cv2.GaussianBlur(rng.standard_normal((th, tw)).astype(np.float32), (0, 0), sigmaX=0.7, sigmaY=0.01)
    y *= 1.0 / y.std()
    uv = rng.standard_normal((th, tw, 2)).astype(np.float32)
    uv = cv2.GaussianBlur(uv, (0, 0), sigmaX=3.0, sigmaY=0.01)
    uv *= 1.0 / uv.std()
    u, v = uv[..., 0] * 0.8, uv[..., 1] * 0.8
    bgr = np.stack([y + 2.03 * u, y - 0.39 * u - 0.58 * v, y + 1.14 * v], -1)
    colour = np.clip(128 + 28 * bgr, 0, 255).astype(np.uint8)
    luma = np.repeat(np.clip(128 + 28 * y, 0, 255).astype(np.uint8)[..., None], 3, 2)
    # static: heavier, coarser grain plus line-to-line brightness jumps (no sync, so
    # every line is its own random stretch of demodulated noise)
    g = cv2.GaussianBlur(rng.standard_normal((th, tw)).astype(np.float32), (0, 0), sigmaX=1.3, sigmaY=0.01)
    g = g / g.std() + 0.45 * rng.standard_normal((th, 1)).astype(np.float32)
    c = cv2.GaussianBlur(rng.standard_normal((th, tw, 2)).astype(np.float32), (0, 0), sigmaX=4.0, sigmaY=0.01)
    c *= 0.5 / c.std()
    sb = np.stack([g + 2.03 * c[..., 0], g - 0.39 * c[..., 0] - 0.58 * c[..., 1], g + 1.14 * c[..., 1]], -1)
    static = np.clip(118 + 52 * sb, 0, 255).astype(np.uint8)
    return NoiseBank(colour, luma, static)


def _add_noise(dst: np.ndarray, src: np.ndarray, noise: np.ndarray, amp: float, offset: float = 0.0) -> None:
    """dst = saturate(src + amp * (noise - 128) + offset), one OpenCV pass."""
    k = amp / 28.0  # tables have sd 28 around 128
    cv2.addWeighted(src, 1.0, noise, k, -128.0 * k + offset, dst=dst)


# --------------------------------------------------------------------------- kinds


def _rows(h: int, field: int | None) -> slice:
    return slice(None) if field is None else slice(field, h, 2)


def _sparklies(out: np.ndarray, sev: float, rng: np.random.Generator, field: int | None) -> np.ndarray:
    """FM clicks: short bright (sometimes dark) streaks along single lines,
    a sharp head and a fading tail, some followed by a dark undershoot."""
    h, w = out.shape[:2]
    n = int(4 + 500 * sev ** 1.6)
    sx = w / 720
    if field is None:
        rows = rng.integers(0, h, n)
    else:
        rows = field + 2 * rng.integers(0, (h - field + 1) // 2, n)
    # some clicks hit the next line of the same field too
    twin = rng.random(n) < 0.25
    rows = np.concatenate([rows, np.minimum(rows[twin] + 2, h - 1 - ((h - 1 - rows[twin]) % 2))])
    m = len(rows)
    x0 = rng.integers(0, w, m)
    length = np.clip((3 + rng.exponential(5 + 14 * sev, m)) * sx, 2, 60 * sx).astype(int)
    white = rng.random(m) < 0.78
    gain = rng.uniform(0.55, 1.0, m)
    tail = (rng.random(m) < 0.4) * np.maximum(1, length // 3)
    total = length + tail
    k = np.arange(int(total.max()))
    xs = x0[:, None] + k[None, :]
    valid = (k[None, :] < total[:, None]) & (xs < w)
    # profile: full strength for the first third, then a linear fade; undershoot after
    frac = k[None, :] / np.maximum(length[:, None], 1)
    alpha = np.clip(1.5 * (1 - frac), 0, 1) * gain[:, None]
    under = k[None, :] >= length[:, None]
    target = np.where(white, 255.0, 0.0)[:, None] * np.ones_like(alpha)
    target = np.where(under, 255.0 - target, target)
    alpha = np.where(under, 0.5 * gain[:, None], alpha)
    r = np.broadcast_to(rows[:, None], xs.shape)[valid]
    x = xs[valid]
    a = alpha[valid][:, None]
    tgt = target[valid][:, None]
    tint = rng.normal(0, 18, (m, 3))[np.nonzero(valid)[0]]  # chroma decoder rings on the edges
    pix = out[r, x].astype(np.float32)
    out[r, x] = np.clip(pix + a * (tgt - pix) + a * tint, 0, 255).astype(np.uint8)
    lines = np.zeros(h, bool)
    lines[r] = True
    return lines


def _snow(out, img, sev, rng, field, bank: NoiseBank):
    h, w = out.shape[:2]
    rs = _rows(h, field)
    src, dst = img[rs], out[rs]
    noise = bank.window(bank.colour, rng, dst.shape[0], w)
    # colour flicker: the chroma phase wanders, tinting the whole field
    tint = rng.normal(0, 6 + 14 * sev, 3)
    _add_noise(dst, src, noise, 12 + 60 * sev, 0.0)
    cv2.add(dst, (float(tint[0]), float(tint[1]), float(tint[2]), 0.0), dst=dst)
    lines = np.zeros(h, bool)
    lines[rs] = True
    if sev > 0.3:  # clicks come with the snow
        lines |= _sparklies(out, 0.3 * sev, rng, field)
    return lines


def _tear(out, img, sev, rng, field):
    """Horizontal sync errors: bands of lines start late (or early), shifted
    sideways with jitter and an exponential pull back as the sync PLL
    recovers; the exposed edge shows the smeared, dark blanking."""
    h, w = out.shape[:2]
    sx = w / 720
    lines = np.zeros(h, bool)
    for _ in range(1 + int(rng.random() < sev) + int(sev > 0.6)):
        height = int((6 + rng.uniform(0.3, 1.0) * 160 * sev) * h / 576)
        start = int(rng.integers(0, max(1, h - height)))
        rows = np.arange(start, min(h, start + height))
        if field is not None:
            rows = rows[rows % 2 == field]
        if len(rows) == 0:
            continue
        n = len(rows)
        s0 = rng.choice([-1, 1], p=[0.25, 0.75]) * rng.uniform(10, 25 + 110 * sev) * sx
        decay = rng.uniform(0.15, 1.0) * n
        shift = s0 * np.exp(-np.arange(n) / decay) + np.cumsum(rng.normal(0, 0.6 + 3 * sev, n)) * sx
        shift = np.where(np.abs(shift) < 2, np.sign(s0) * 2, shift).astype(np.float32)
        band = img[rows]
        map_x = (np.arange(w, dtype=np.float32)[None, :] - shift[:, None]).astype(np.float32)
        map_y = np.repeat(np.arange(n, dtype=np.float32)[:, None], w, 1)
        moved = cv2.remap(band, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        # darken the exposed side: a ramp from black to the smeared edge colour
        edge = int(np.ceil(np.abs(shift).max())) + 1
        xs = np.arange(edge, dtype=np.float32)
        if s0 > 0:
            ramp = np.clip(xs[None, :] / np.maximum(shift[:, None], 1), 0, 1) ** 2 * 0.6
            moved[:, :edge] = (moved[:, :edge] * ramp[..., None]).astype(np.uint8)
        else:
            ramp = np.clip((edge - 1 - xs[None, :]) / np.maximum(-shift[:, None], 1), 0, 1) ** 2 * 0.6
            moved[:, w - edge:] = (moved[:, w - edge:] * ramp[..., None]).astype(np.uint8)
        out[rows] = moved
        lines[rows] = True
    return lines


def _colour_loss(out, img, sev, rng, field, bank: NoiseBank):
    """The colour killer: no burst lock, the picture goes black and white,
    with some luma noise (colour is lost at low signal)."""
    h, w = out.shape[:2]
    rs = _rows(h, field)
    gray = cv2.cvtColor(img[rs], cv2.COLOR_BGR2GRAY)
    dst = out[rs]
    cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR, dst=dst)
    _add_noise(dst, dst.copy(), bank.window(bank.luma, rng, dst.shape[0], w), 4 + 22 * sev)
    lines = np.zeros(h, bool)
    lines[rs] = True
    return lines


def _roll(out, img, sev, rng):
    """Vertical sync lost: the picture slides down (or up) and wraps, with the
    black vertical blanking bar where the top of the picture should be."""
    h, w = out.shape[:2]
    off = int(rng.choice([-1, 1]) * (0.08 + 0.85 * sev * rng.uniform(0.5, 1.0)) * h)
    out[:] = np.roll(img, off, axis=0)
    bar = max(4, int(0.075 * h))
    start = off % h
    rows = (start - bar + np.arange(bar)) % h
    out[rows] = 8
    # the equalising pulses show as a darker-than-black stripe with grey flecks
    out[rows[bar // 3: bar // 3 + max(2, bar // 8)]] = 24
    return np.ones(h, bool)


def _static(out, rng, bank: NoiseBank):
    h, w = out.shape[:2]
    out[:] = bank.window(bank.static, rng, h, w)
    return np.ones(h, bool)


# --------------------------------------------------------------------------- entry point


def inject(image: np.ndarray, kind: str, severity: float, rng: np.random.Generator,
           field: int | None = None, prev: np.ndarray | None = None) -> tuple[np.ndarray, BreakupLabel]:
    """Return (broken copy of ``image``, exact label). ``image`` is never modified.

    kind: one of KINDS; severity in [0, 1]; field: 0 (even lines) or 1 (odd
    lines) limits field-local kinds (sparklies, snow, tear, colour_loss) to
    that field; prev: the last frame the capture card delivered ('frozen'
    repeats it; without it the input itself is repeated).
    """
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise RtcleanError("breakup: expected an HxWx3 uint8 BGR image")
    if kind not in KINDS:
        raise RtcleanError(f"breakup: unknown kind {kind!r} (expected one of: {', '.join(KINDS)})")
    if not 0.0 <= severity <= 1.0:
        raise RtcleanError(f"breakup: severity must be in [0, 1], got {severity}")
    if field not in (None, 0, 1):
        raise RtcleanError(f"breakup: field must be 0, 1 or None, got {field!r}")
    h, w = image.shape[:2]
    out = image.copy()
    sev = float(severity)
    bank = noise_bank(h, w) if kind in ("snow", "colour_loss", "static") else None
    if kind == "sparklies":
        touched = _sparklies(out, sev, rng, field)
    elif kind == "snow":
        touched = _snow(out, image, sev, rng, field, bank)
    elif kind == "tear":
        touched = _tear(out, image, sev, rng, field)
    elif kind == "colour_loss":
        touched = _colour_loss(out, image, sev, rng, field, bank)
    elif kind == "roll":
        touched = _roll(out, image, sev, rng)
    elif kind == "blue":
        out[:] = BLUE_BGR
        touched = np.ones(h, bool)
    elif kind == "black":
        out[:] = 6
        touched = np.ones(h, bool)
    elif kind == "static":
        touched = _static(out, rng, bank)
    else:  # frozen
        if prev is not None:
            if prev.shape != image.shape:
                raise RtcleanError("breakup: prev frame has a different size than the image")
            out[:] = prev
        touched = np.ones(h, bool)
    # Exact label: of the lines the kind touched, those that really differ.
    lines = np.zeros(h, bool)
    idx = np.nonzero(touched)[0]
    if len(idx):
        diff = cv2.absdiff(out[idx], image[idx]).reshape(len(idx), -1).max(axis=1)
        lines[idx] = diff > 0
    return out, label_from_lines(kind, sev, lines, no_signal=kind in NO_SIGNAL_KINDS)
