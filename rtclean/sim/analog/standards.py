"""PAL and NTSC composite timing, levels and line structure.

Everything is sampled at 13.5 MHz (ITU-R BT.601): 864 samples per PAL line
(64 us), 858 per NTSC line (63.56 us), so the 720 digital-active pixels are
exactly 720 samples and a frame is a (lines, samples_per_line) array.

Line types (per line, two half-lines each):
  V  video line: hsync, colour burst, active picture
  K  blanked line: hsync and burst, no picture (vertical blanking)
  E  equalising half-line (2.35 us pulse), B broad (serrated vsync) half-line
  VE video first half, equalising second half (the last line before a field's
     vertical sync when the field ends mid-line); EK the converse.
The tables follow BT.470 (625/50) and SMPTE 170M (525/60) line numbering.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from rtclean.errors import RtcleanError

FS = 13.5e6  # composite sample rate (Hz)


@dataclass(frozen=True, slots=True)
class AnalogStandard:
    name: str
    lines: int  # lines per frame
    spl: int  # samples per line at 13.5 MHz
    width: int  # output pixels (720)
    height: int  # output rows (active lines of both fields)
    fps: float
    fsc: float  # colour subcarrier (Hz)
    sync: float  # sync tip level (V, blanking = 0)
    black: float  # black level (V)
    white: float  # peak white (V)
    burst_amp: float  # burst amplitude (V, peak)
    burst_start: int  # samples after the sync's leading edge
    burst_len: int
    sync_len: int  # hsync width (samples)
    eq_len: int  # equalising pulse width
    broad_len: int  # broad pulse low time per half-line
    act0: int  # sample of output pixel 0 after the sync's leading edge
    active: tuple[int, int]  # first/last pixel of the analog active line (outside: blanking)
    video_bw: float  # luma bandwidth (Hz)
    pal: bool
    line_types: tuple[str, ...]  # per line, 1-based numbering shifted to 0-based
    field_lines: tuple[tuple[int, ...], tuple[int, ...]]  # stream lines (0-based) shown on rows 0,2,.. / 1,3,..
    vsync_half: tuple[int, int]  # half-line index (0-based) where each field's broad pulses start

    @property
    def samples(self) -> int:
        return self.lines * self.spl


def _pal_types() -> list[str]:
    t = ["K"] * 626  # 1-based
    for n in (1, 2, 314, 315):
        t[n] = "BB"
    t[3] = "BE"
    for n in (4, 5, 311, 312, 316, 317, 624, 625):
        t[n] = "EE"
    t[313] = "EB"
    t[318] = "EK"
    for n in list(range(23, 311)) + list(range(336, 623)):
        t[n] = "V"
    t[623] = "VE"
    return t[1:]


def _ntsc_types() -> list[str]:
    t = ["K"] * 526
    for n in (1, 2, 3, 7, 8, 9, 264, 265, 270, 271):
        t[n] = "EE"
    for n in (4, 5, 6, 267, 268):
        t[n] = "BB"
    t[266] = "EB"
    t[269] = "BE"
    t[272] = "EK"
    for n in list(range(22, 263)) + list(range(285, 526)):
        t[n] = "V"
    t[263] = "VE"
    return t[1:]


PAL = AnalogStandard(
    name="pal", lines=625, spl=864, width=720, height=576, fps=25.0, fsc=4.43361875e6,
    sync=-0.3, black=0.0, white=0.7, burst_amp=0.15, burst_start=76, burst_len=30,
    sync_len=63, eq_len=32, broad_len=369, act0=133, active=(9, 711), video_bw=5.0e6, pal=True,
    line_types=tuple(_pal_types()),
    field_lines=(tuple(range(22, 310)), tuple(range(335, 623))),  # BT.470 lines 23-310, 336-623
    vsync_half=(0, 625),  # line 1 start; line 313 middle
)

NTSC = AnalogStandard(
    name="ntsc", lines=525, spl=858, width=720, height=480, fps=30000 / 1001, fsc=315e6 / 88,
    sync=-40 / 140, black=7.5 / 140, white=100 / 140, burst_amp=20 / 140, burst_start=72, burst_len=34,
    sync_len=63, eq_len=31, broad_len=366, act0=122, active=(5, 715), video_bw=4.2e6, pal=False,
    line_types=tuple(_ntsc_types()),
    field_lines=(tuple(range(21, 261)), tuple(range(284, 524))),  # SMPTE lines 22-261, 285-524
    vsync_half=(6, 531),  # line 4 start; line 266 middle
)

STANDARDS = {"pal": PAL, "ntsc": NTSC}


def get_standard(name: str) -> AnalogStandard:
    std = STANDARDS.get(str(name).lower())
    if std is None:
        raise RtcleanError(f"analog: unknown video standard {name!r} (expected pal or ntsc)")
    return std


@dataclass(frozen=True, slots=True)
class Templates:
    """Per-standard constant parts of a frame, built once."""

    base: np.ndarray  # (lines, spl) float32: sync pulses and blanking level
    burst_lines: np.ndarray  # (lines,) bool: lines carrying a colour burst
    row_line: np.ndarray  # (height,) int: stream line shown on each output row
    video_lines: np.ndarray  # (height,) same as row_line (lines that carry picture)
    half_video: np.ndarray  # (height,) bool: only the first half of the line carries picture
    window: np.ndarray  # (width,) float32: blanking edges of the active line


@functools.lru_cache(maxsize=2)
def templates(std: AnalogStandard) -> Templates:
    half = std.spl // 2
    base = np.zeros((std.lines, std.spl), np.float32)
    burst = np.zeros(std.lines, bool)
    for i, t in enumerate(std.line_types):
        if t in ("V", "K", "VE"):
            base[i, :std.sync_len] = std.sync
            burst[i] = True
            if t == "VE":
                base[i, half:half + std.eq_len] = std.sync
        else:
            for k, h in enumerate(t):
                o = k * half
                if h == "E":
                    base[i, o:o + std.eq_len] = std.sync
                elif h == "B":
                    base[i, o:o + std.broad_len] = std.sync
                # "K" second half of EK: blanking level
    rows = np.empty(std.height, int)
    rows[0::2] = std.field_lines[0]
    rows[1::2] = std.field_lines[1]
    half_video = np.array([std.line_types[r] == "VE" for r in rows])
    # raised-cosine blanking edges (~0.3 us): a hard edge would ring through the filters
    x = np.arange(std.width, dtype=np.float32)
    a, b = std.active
    ramp = 4.0
    win = np.clip(np.minimum(x - a, b - x) / ramp + 0.5, 0, 1)
    win = (0.5 - 0.5 * np.cos(np.pi * win)).astype(np.float32)
    return Templates(base, burst, rows, rows, half_video, win)
