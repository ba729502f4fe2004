"""Procedural countryside seen from a flying FPV camera.

The ground is one seamless (periodic) texture rendered once per seed: fields
with crop rows, hedges, roads, woods, houses, modulated by fractal noise. A
frame is drawn as two fields, each one ``warpPerspective`` of that texture at
half height (the ground plane is a homography away from each field), then
the sky (bands parallel to the horizon) and a distant treeline are filled as
polygons. The treeline also hides the far ground, where the texture would
alias into shimmering speckle that a detector could mistake for breakup.

The camera path is smooth but lively: cruising with coordinated banked
turns, changes of speed and height, and sudden snap turns (the fast moves a
repair must survive), integrated at field rate so the two fields of a frame
really show two instants.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

TEX_SIZE = 2048  # texels per side of the periodic ground tile
TEXEL_M = 0.25  # metres per texel: the tile is 512 m wide
GRAVITY = 9.81
HORIZON_FAR_M = 220.0  # ground farther than this is hidden behind the treeline
MIP_SPLITS_M = (90.0, 30.0)  # beyond 90 m: 1/4-size texture, 30-90 m: 1/2 size
TEX_PAD = int(HORIZON_FAR_M / TEXEL_M) + 24  # texels of periodic margin around the tile


# --------------------------------------------------------------------------- texture


def _wrap_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth periodic noise in [-1, 1]: a random grid upsampled with wrap-around
    padding so the tile's opposite edges match."""
    grid = rng.standard_normal((cells, cells)).astype(np.float32)
    pad = 2
    grid = np.pad(grid, pad, mode="wrap")
    cell = size // cells
    big = cv2.resize(grid, ((cells + 2 * pad) * cell,) * 2, interpolation=cv2.INTER_CUBIC)
    out = big[pad * cell: pad * cell + size, pad * cell: pad * cell + size]
    return np.clip(out / 2.0, -1, 1)


def _fractal(rng: np.random.Generator, size: int, octaves=(4, 8, 16, 32, 64, 128, 256)) -> np.ndarray:
    acc = np.zeros((size, size), np.float32)
    total = 0.0
    for cells in octaves:
        amp = (cells / octaves[0]) ** -0.7
        acc += amp * _wrap_noise(rng, size, cells)
        total += amp
    return acc / total


def _wrapped(img: np.ndarray, fn, pad: int = 8) -> np.ndarray:
    """Apply a local filter to a periodic image (OpenCV filters have no wrap border)."""
    widths = ((pad, pad), (pad, pad)) + ((0, 0),) * (img.ndim - 2)
    out = fn(np.pad(img, widths, mode="wrap"))
    return np.ascontiguousarray(out[pad:-pad, pad:-pad])


def _copies(x: float, y: float, size: int, margin: float):
    """(x, y) and its periodic copies that may show inside the tile."""
    xs = [x] + ([x + size] if x < margin else []) + ([x - size] if x > size - margin else [])
    ys = [y] + ([y + size] if y < margin else []) + ([y - size] if y > size - margin else [])
    return [(a, b) for a in xs for b in ys]


# Field colours (BGR): meadow, crop, wheat, ploughed soil, pale grass, rapeseed.
_FIELD_COLOURS = np.array([
    [60, 140, 90], [40, 110, 60], [90, 175, 200], [60, 95, 125],
    [95, 165, 130], [50, 190, 200], [55, 125, 75], [80, 120, 140],
], np.float32)
_ROW_DIRS = [(1, 0), (0, 1), (1, 1), (1, -1), (2, 1), (1, 2), (2, -1), (1, -2)]


def make_texture(seed: int, size: int = TEX_SIZE) -> np.ndarray:
    """The periodic ground texture (size x size BGR uint8) for ``seed``."""
    return _make_texture_cached(int(seed), int(size)).copy()


@functools.lru_cache(maxsize=2)
def _make_texture_cached(seed: int, size: int) -> np.ndarray:
    rng = np.random.default_rng([seed, 101])
    s = size
    # Fields: a jittered periodic grid of quads, each with a colour and crop
    # rows whose direction makes them periodic over the tile.
    k = 7
    step = s / k
    jitter = rng.uniform(-0.28, 0.28, (k, k, 2)) * step
    labels = np.zeros((s, s), np.uint8)
    for i in range(k):
        for j in range(k):
            def vtx(a, b):
                return np.array([a * step, b * step]) + jitter[a % k, b % k]
            quad = np.array([vtx(i, j), vtx(i + 1, j), vtx(i + 1, j + 1), vtx(i, j + 1)])
            lab = (i * k + j) % 255 + 1
            for dx in (-s, 0, s):
                for dy in (-s, 0, s):
                    pts = np.round(quad + [dx, dy]).astype(np.int32)
                    cv2.fillPoly(labels, [pts], int(lab))
    n_lab = 256
    colour = _FIELD_COLOURS[rng.integers(0, len(_FIELD_COLOURS), n_lab)]
    colour *= rng.uniform(0.85, 1.15, (n_lab, 1)).astype(np.float32)
    dirs = np.array(_ROW_DIRS)[rng.integers(0, len(_ROW_DIRS), n_lab)]
    spacing = rng.uniform(7, 18, n_lab)  # texels between crop rows (2-4.5 m)
    reps = np.round(s / (spacing * np.hypot(dirs[:, 0], dirs[:, 1])))
    row_amp = rng.uniform(0.0, 0.22, n_lab) * (rng.random(n_lab) < 0.7)
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
    fa = (dirs[:, 0] * reps).astype(np.float32)[labels]
    fb = (dirs[:, 1] * reps).astype(np.float32)[labels]
    rows = np.sin((xx * fa + yy * fb) * np.float32(2 * np.pi / s))
    del xx, yy, fa, fb
    shade = 1.0 + row_amp.astype(np.float32)[labels] * rows
    del rows
    noise = _fractal(rng, s)
    fine = _wrap_noise(rng, s, 512)
    shade *= 1.0 + 0.28 * noise + 0.07 * fine
    img = colour[labels] * shade[..., None]
    del shade
    img = np.clip(img, 0, 255).astype(np.uint8)

    # Hedges and tracks along field borders: strong edges the optical flow can hold.
    edge = (labels != np.roll(labels, 1, 0)) | (labels != np.roll(labels, 1, 1))
    edge = _wrapped(edge.astype(np.uint8), lambda a: cv2.dilate(a, np.ones((5, 5), np.uint8))) > 0
    hedge = np.array([30, 70, 40], np.float32) * (1 + 0.3 * noise[edge, None])
    img[edge] = np.clip(hedge, 0, 255).astype(np.uint8)

    # Roads: periodic meandering polylines, light grey with a darker verge.
    for _ in range(3):
        horizontal = rng.random() < 0.5
        n = 9
        t = np.linspace(0, s, n)
        off = rng.uniform(0, s) + np.cumsum(rng.uniform(-60, 60, n))
        off[-1] = off[0]
        pts = np.stack([t, off], 1) if horizontal else np.stack([off, t], 1)
        for dx in (-s, 0, s):
            for dy in (-s, 0, s):
                p = np.round(pts + [dx, dy]).astype(np.int32)
                cv2.polylines(img, [p], False, (70, 85, 95), 22, cv2.LINE_AA)
                cv2.polylines(img, [p], False, (150, 155, 160), 14, cv2.LINE_AA)

    # Woods (clusters) and single trees, each with a shadow to the lower right.
    trees = []
    for _ in range(14):
        cx, cy = rng.uniform(0, s, 2)
        rad = rng.uniform(40, 150)
        m = int(rad * rad / 90)
        r = rad * np.sqrt(rng.random(m))
        a = rng.uniform(0, 2 * np.pi, m)
        trees += list(zip((cx + r * np.cos(a)) % s, (cy + r * np.sin(a)) % s))
    trees += list(zip(rng.uniform(0, s, 500), rng.uniform(0, s, 500)))
    tree_r = rng.uniform(6, 15, len(trees))
    tree_c = rng.uniform(0.6, 1.2, len(trees))
    for (x, y), r in zip(trees, tree_r):
        for px, py in _copies(x, y, s, 40):
            cv2.circle(img, (int(px + r * 0.35), int(py + r * 0.3)), int(r), (25, 45, 30), -1, cv2.LINE_AA)
    for (x, y), r, c in zip(trees, tree_r, tree_c):
        col = (int(35 * c), int(95 * c), int(50 * c))
        hi = (int(55 * c), int(130 * c), int(75 * c))
        for px, py in _copies(x, y, s, 40):
            cv2.circle(img, (int(px), int(py)), int(r), col, -1, cv2.LINE_AA)
            for _ in range(3):  # a lumpy, lit canopy rather than a disc
                ox, oy = rng.uniform(-0.5, 0.3, 2) * r
                cv2.circle(img, (int(px + ox), int(py + oy)), max(2, int(r * rng.uniform(0.25, 0.5))), hi, -1,
                           cv2.LINE_AA)

    # Houses: rotated boxes with a shadow, a roof and a ridge line.
    for _ in range(40):
        cx, cy = rng.uniform(0, s, 2)
        w, h = rng.uniform(30, 70), rng.uniform(24, 44)
        ang = rng.uniform(0, 180)
        roof = [(60, 70, 170), (90, 90, 100), (50, 60, 120), (130, 130, 135)][rng.integers(0, 4)]
        for px, py in _copies(cx, cy, s, 80):
            shadow = cv2.boxPoints(((px + 8, py + 7), (w, h), ang)).astype(np.int32)
            box = cv2.boxPoints(((px, py), (w, h), ang)).astype(np.int32)
            cv2.fillPoly(img, [shadow], (25, 35, 30), cv2.LINE_AA)
            cv2.fillPoly(img, [box], roof, cv2.LINE_AA)
            c = math.cos(math.radians(ang)) * w / 2
            d = math.sin(math.radians(ang)) * w / 2
            cv2.line(img, (int(px - c), int(py - d)), (int(px + c), int(py + d)),
                     tuple(int(v * 0.7) for v in roof), 2, cv2.LINE_AA)

    # A small analog camera resolves ~500 TV lines: soften slightly (also
    # tames aliasing in the distance).
    return _wrapped(img, lambda a: cv2.GaussianBlur(a, (0, 0), 0.8))


# --------------------------------------------------------------------------- camera path


@dataclass(slots=True)
class Pose:
    x: float  # metres east (wrapped to the tile)
    y: float  # metres north (wrapped to the tile)
    alt: float  # metres above ground
    yaw: float  # heading, radians, counter-clockwise from east
    pitch: float  # camera look angle, radians (negative = down)
    roll: float  # bank, radians (positive = right wing down)
    speed: float  # m/s


class CameraPath:
    """A reproducible FPV flight, stepped once per field."""

    def __init__(self, seed: int, field_dt: float) -> None:
        self.dt = field_dt
        rng = np.random.default_rng([seed, 202])
        self._rng = rng
        self._ph = rng.uniform(0, 2 * np.pi, 12)
        self.t = 0.0
        self.x, self.y = rng.uniform(0, TEX_SIZE * TEXEL_M, 2)
        self.yaw = rng.uniform(0, 2 * np.pi)
        self._burst_left = 0.0  # seconds left in the current snap turn
        self._burst_len = 1.0
        self._burst_rate = 0.0
        self._pose = self._make_pose(0.0)

    def _make_pose(self, yaw_rate: float) -> Pose:
        t, ph = self.t, self._ph
        speed = 15 + 7 * math.sin(0.23 * t + ph[0]) + 4 * math.sin(0.61 * t + ph[1])
        speed = max(4.0, speed)
        alt = 17 + 8 * math.sin(0.09 * t + ph[2]) + 4 * math.sin(0.31 * t + ph[3])
        alt = max(5.0, alt)
        # Coordinated turn: bank = atan(v * yaw rate / g), plus prop-wash wobble.
        roll = math.atan(speed * yaw_rate / GRAVITY)
        roll = max(-1.0, min(1.0, roll)) + 0.03 * math.sin(17.0 * t + ph[4]) + 0.02 * math.sin(29.0 * t + ph[5])
        # Faster flight tilts the quad (and the camera) further down.
        pitch = -math.radians(12 + 0.7 * speed) + 0.04 * math.sin(0.5 * t + ph[6]) + 0.01 * math.sin(23.0 * t + ph[7])
        return Pose(self.x, self.y, alt, self.yaw, pitch, roll, speed)

    def step(self) -> Pose:
        """Advance one field and return the pose at the new time."""
        dt, t, ph = self.dt, self.t, self._ph
        yaw_rate = 0.35 * math.sin(0.21 * t + ph[8]) + 0.22 * math.sin(0.57 * t + ph[9])
        if self._burst_left <= 0 and self._rng.random() < dt / 9.0:  # a snap turn every ~9 s
            self._burst_len = self._burst_left = self._rng.uniform(0.7, 1.4)
            self._burst_rate = self._rng.choice([-1, 1]) * self._rng.uniform(1.8, 3.2)
        if self._burst_left > 0:
            phase = 1 - self._burst_left / self._burst_len
            yaw_rate += self._burst_rate * math.sin(math.pi * phase) ** 2
            self._burst_left -= dt
        self.yaw = (self.yaw + yaw_rate * dt) % (2 * math.pi)
        speed = self._pose.speed
        tile = TEX_SIZE * TEXEL_M
        self.x = (self.x + speed * math.cos(self.yaw) * dt) % tile
        self.y = (self.y + speed * math.sin(self.yaw) * dt) % tile
        self.t = t + dt
        self._pose = self._make_pose(yaw_rate)
        return self._pose

    @property
    def pose(self) -> Pose:
        return self._pose


# --------------------------------------------------------------------------- rendering


def _rotation(p: Pose) -> np.ndarray:
    """World (x east, y north, z up) to camera (x right, y down, z forward)."""
    cp, sp = math.cos(p.pitch), math.sin(p.pitch)
    cy, sy = math.cos(p.yaw), math.sin(p.yaw)
    fwd = np.array([cp * cy, cp * sy, sp])
    right0 = np.array([sy, -cy, 0.0])
    down0 = np.cross(fwd, right0)
    cr, sr = math.cos(p.roll), math.sin(p.roll)
    right = cr * right0 - sr * down0
    down = sr * right0 + cr * down0
    return np.stack([right, down, fwd])


def _clip_poly(poly: list, a: float, b: float, c: float) -> list:
    """Sutherland-Hodgman: keep the part of a convex polygon where a*x+b*y+c >= 0."""
    out = []
    n = len(poly)
    for i in range(n):
        p, q = poly[i], poly[(i + 1) % n]
        dp, dq = a * p[0] + b * p[1] + c, a * q[0] + b * q[1] + c
        if dp >= 0:
            out.append(p)
        if (dp >= 0) != (dq >= 0):
            s = dp / (dp - dq)
            out.append((p[0] + s * (q[0] - p[0]), p[1] + s * (q[1] - p[1])))
    return out


# Sky colour by distance above the horizon (fraction of frame width), BGR;
# drawn as many thin bands so the steps stay below the noise of analog video.
_SKY_KEYS = [(0.0, (232, 226, 218)), (0.03, (236, 222, 205)), (0.07, (234, 214, 190)),
        (0.12, (230, 204, 172)), (0.18, (224, 192, 155)), (0.26, (218, 180, 140)),
        (0.36, (212, 170, 128)), (0.5, (206, 160, 116))]
_SKY = [(float(d), tuple(int(np.interp(d, [k[0] for k in _SKY_KEYS], [k[1][c] for k in _SKY_KEYS])) for c in range(3)))
        for d in np.linspace(0, 0.5, 13)]


@functools.lru_cache(maxsize=2)
def _padded_texture(seed: int) -> np.ndarray:
    """The tile with a periodic margin wide enough for everything nearer than
    HORIZON_FAR_M, so warps never leave the image."""
    return np.pad(_make_texture_cached(seed, TEX_SIZE), ((TEX_PAD, TEX_PAD), (TEX_PAD, TEX_PAD), (0, 0)), mode="wrap")


@functools.lru_cache(maxsize=4)
def _mip(seed: int, level: int) -> np.ndarray:
    """The padded texture at 1/2**level size."""
    if level == 0:
        return _padded_texture(seed)
    return cv2.resize(_mip(seed, level - 1), None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)


class Renderer:
    """Draws the scene into the fields of a frame."""

    def __init__(self, seed: int, width: int, height: int) -> None:
        self.w, self.h = width, height
        self.texture = _padded_texture(int(seed))
        self._mips = [(self.texture, 1.0), (_mip(int(seed), 1), 0.5), (_mip(int(seed), 2), 0.25)]
        # texel (u, v) of the padded texture -> world metres (x east, y north, z = 0)
        self._tex_to_world = np.array([[TEXEL_M, 0, -TEX_PAD * TEXEL_M],
                                       [0, -TEXEL_M, (TEX_SIZE + TEX_PAD) * TEXEL_M], [0, 0, 1.0]])
        f = 0.55 * width  # ~84 degrees horizontal field of view
        # Analog frames are shown at 4:3 whatever their pixel count: non-square pixels.
        fy = f * height / (width * 3 / 4)
        self.K = np.array([[f, 0, width / 2], [0, fy, height / 2], [0, 0, 1.0]])
        self.Kinv = np.linalg.inv(self.K)
        rng = np.random.default_rng([seed, 303])
        # Treeline heights (degrees above horizon) as a periodic function of azimuth.
        az = np.linspace(0, 2 * np.pi, 241)[:-1]  # 1.5 degree steps
        prof = np.zeros_like(az)
        for k in (2, 3, 5, 9, 17, 31, 57, 101):
            prof += rng.uniform(0.3, 1.0) / k ** 0.6 * np.sin(k * az + rng.uniform(0, 2 * np.pi))
        self._tree_el = np.radians(0.5 + 0.6 * prof / np.abs(prof).max())
        hills = np.zeros_like(az)
        for k in (1, 2, 3, 4, 7):
            hills += rng.uniform(0.5, 1.0) / k * np.sin(k * az + rng.uniform(0, 2 * np.pi))
        self._hill_el = np.radians(1.2 + 1.0 * hills / np.abs(hills).max())
        self._az = az

    def _project_dirs(self, R: np.ndarray, az: np.ndarray, el: np.ndarray) -> np.ndarray:
        d = np.stack([np.cos(az) * np.cos(el), np.sin(az) * np.cos(el), np.sin(el)])
        p = self.K @ (R @ d)
        return (p[:2] / p[2]).T

    def draw_field(self, dst: np.ndarray, pose: Pose, parity: int) -> None:
        """Render the field of the given parity (0 = even lines) into ``dst``
        (a half-height view such as ``frame[parity::2]``)."""
        R = _rotation(pose)
        w = self.w
        hh = dst.shape[0]
        F = np.array([[1, 0, 0], [0, 2, parity], [0, 0, 1.0]])  # field row -> frame row
        to_field = np.array([1.0, 0.5]), np.array([0.0, parity * 0.5])

        # Distant hills and the treeline (upper edge) over the far ground
        # (lower edge: ground HORIZON_FAR_M away), in field coordinates.
        rel = (self._az - pose.yaw + np.pi) % (2 * np.pi) - np.pi
        idx = np.nonzero(np.abs(rel) < math.radians(66))[0]
        idx = idx[np.argsort(rel[idx])]  # left to right, across the 0/2pi seam
        az = self._az[idx]
        far_el = -math.atan(pose.alt / HORIZON_FAR_M)
        lower = self._project_dirs(R, az[::-1], np.full(len(az), far_el)) * to_field[0] - to_field[1]
        # far fields in haze (to just below the horizon), hills, then the treeline
        def edge(el, order=1):
            return self._project_dirs(R, az[::order], el[::order]) * to_field[0] - to_field[1]

        flat = np.ones(len(az))
        ridges = [(edge(-0.002 * flat), lower, (100, 135, 110)),
                  (edge(self._hill_el[idx]), edge(-0.003 * flat, -1), (160, 150, 130)),
                  (edge(self._tree_el[idx]), edge(-0.006 * flat, -1), (70, 100, 75))]

        # Ground: only rows that can show ground nearer than the treeline; the
        # texture is padded so every visible texel is inside it (OpenCV's
        # border handling is ~5x slower than the in-image path).
        inside = (lower[:, 0] > -0.1 * w) & (lower[:, 0] < 1.1 * w)
        top_row = int(np.clip(lower[inside, 1].min() - 2, 0, hh)) if inside.any() else 0
        line = self.Kinv.T @ (R @ np.array([0, 0, 1.0]))
        line = line / math.hypot(line[0], line[1])  # horizon; l . x > 0 above it
        lf = F.T @ line  # in field coordinates, distances still in frame pixels
        if top_row < hh:
            C = np.array([pose.x, pose.y, pose.alt])
            Hg = self.K @ np.column_stack([R[:, 0], R[:, 1], -R @ C]) @ self._tex_to_world
            M = np.linalg.inv(Hg) @ F
            # Mip levels by distance (judged on the centre column): far rows
            # read smaller textures, which cuts their cache misses (the cost
            # of this warp) and damps their aliasing.
            cuts = [top_row]
            for dist in MIP_SPLITS_M:
                y = top_row
                if abs(lf[1]) > 1e-9:
                    below = self.K[1, 1] * pose.alt / dist
                    y = int(np.clip((-below - lf[0] * w / 2 - lf[2]) / lf[1], cuts[-1], hh))
                cuts.append(y)
            cuts.append(hh)
            for level, (r0, r1) in enumerate(zip(cuts[:-1], cuts[1:])):
                if r1 > r0:
                    src, scale = self._mips[len(self._mips) - 1 - level]
                    roi = np.array([[1, 0, 0], [0, 1, r0], [0, 0, 1.0]])
                    # the prefiltered far levels minify: nearest texel is enough there
                    interp = cv2.INTER_LINEAR if scale == 1.0 else cv2.INTER_NEAREST
                    cv2.warpPerspective(src, np.diag([scale, scale, 1.0]) @ M @ roi, (w, r1 - r0), dst=dst[r0:r1],
                                        flags=interp | cv2.WARP_INVERSE_MAP,
                                        borderMode=cv2.BORDER_TRANSPARENT)

        rect = [(0.0, 0.0), (float(w), 0.0), (float(w), float(hh)), (0.0, float(hh))]
        corners = np.array([[0, 0, 1], [w, 0, 1], [w, hh, 1], [0, hh, 1.0]]) @ lf
        dmin, dmax = corners.min(), corners.max()
        for i, (start, col) in enumerate(_SKY):
            a = start * w
            b = _SKY[i + 1][0] * w if i + 1 < len(_SKY) else 1e9
            if b <= dmin or a >= dmax:
                continue  # the band misses this field
            poly = _clip_poly(rect, lf[0], lf[1], lf[2] - a)
            poly = _clip_poly(poly, -lf[0], -lf[1], -(lf[2] - b))
            if len(poly) >= 3:
                cv2.fillPoly(dst, [np.round(np.array(poly) * 16).astype(np.int32)], col, cv2.LINE_8, 4)
        for upper, low, col in ridges:
            pts = np.clip(np.vstack([upper, low]), -4 * w, 4 * w)
            cv2.fillPoly(dst, [np.round(pts * 16).astype(np.int32)], col, cv2.LINE_8, 4)
