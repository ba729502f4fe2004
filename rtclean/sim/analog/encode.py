"""Composite encoding: a BGR frame -> one frame of composite video samples.

Luma Y (BT.601 weights) and the colour differences U = 0.493 (B - Y),
V = 0.877 (R - Y) are made from the frame; U and V are band-limited to about
1.3 MHz and quadrature-modulated on the subcarrier:

    chroma = U sin(wt) + s V cos(wt)

with s = +1 for NTSC and s = +-1 alternating line by line for PAL (the V
switch). The burst sits on the back porch: 180 degrees (-U) for NTSC, 135/225
degrees (-U +- V, swinging with the V switch) for PAL. The subcarrier phase
runs on absolute time across frames, so PAL shows its 4-frame (8-field) and
NTSC its 2-frame colour sequence, as a real encoder does.

Field 1 is carried on output rows 0, 2, 4, ... and field 2 on rows 1, 3, ...
"""

from __future__ import annotations

import numpy as np

from rtclean.sim.analog.standards import FS, AnalogStandard, templates

# 1-2-1 binomial taps applied three times: about 1.3-1.5 MHz at 13.5 MHz sampling
_CHROMA_PASSES = 3


def _lowpass_rows(a: np.ndarray) -> np.ndarray:
    """Band-limit along each row (chroma bandwidth), edge-replicating."""
    for _ in range(_CHROMA_PASSES):
        p = np.concatenate([a[:, :1], a, a[:, -1:]], axis=1)
        a = 0.25 * p[:, :-2] + 0.5 * p[:, 1:-1] + 0.25 * p[:, 2:]
        p = np.concatenate([a[:, :2], a, a[:, -2:]], axis=1)
        a = 0.25 * p[:, :-4] + 0.5 * p[:, 2:-2] + 0.25 * p[:, 4:]
    return a


def v_switch(std: AnalogStandard, first_line: int) -> np.ndarray:
    """Per stream line of the frame starting at absolute line ``first_line``: +1/-1 (PAL), +1 (NTSC)."""
    if not std.pal:
        return np.ones(std.lines, np.float32)
    n = first_line + np.arange(std.lines)
    return np.where(n % 2 == 0, 1.0, -1.0).astype(np.float32)


def encode(bgr: np.ndarray, std: AnalogStandard, frame_no: int) -> np.ndarray:
    """Composite samples (flat float32, ``std.samples`` long) of one frame.

    ``bgr``: (std.height, std.width, 3) uint8. ``frame_no``: the frame's index
    in the stream (sets the subcarrier phase and the PAL V-switch sequence).
    """
    t = templates(std)
    comp = t.base.copy()
    f = bgr.astype(np.float32) * (1.0 / 255.0)
    b, g, r = f[..., 0], f[..., 1], f[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    amp = std.white - std.black
    u = _lowpass_rows(0.493 * (b - y)) * amp
    v = _lowpass_rows(0.877 * (r - y)) * amp
    first_line = frame_no * std.lines
    sw = v_switch(std, first_line)
    w = 2 * np.pi * std.fsc / FS
    n0 = float(frame_no) * std.samples
    # carrier e^{jwt} on absolute sample time, separable into line x pixel phasors
    line_ph = np.exp(1j * ((w * (n0 + np.arange(std.lines) * std.spl)) % (2 * np.pi))).astype(np.complex64)
    rows = t.row_line
    pix_ph = np.exp(1j * w * (std.act0 + np.arange(std.width))).astype(np.complex64)
    # chroma = Re{(s V - j U) e^{jwt}} = U sin wt + s V cos wt
    cbase = (sw[rows, None] * v - 1j * u).astype(np.complex64)
    chroma = (cbase * line_ph[rows, None] * pix_ph[None, :]).real
    video = (std.black + amp * y + chroma) * t.window[None, :]
    if t.half_video.any():  # the half line before a vertical sync carries picture in its first half only
        stop = std.spl // 2 - std.act0 - 8
        video[t.half_video, stop:] = 0.0
    comp[rows, std.act0:std.act0 + std.width] = video
    # colour burst: sin^2-shaped envelope, -U (+- V for PAL)
    bl = np.nonzero(t.burst_lines)[0]
    k = np.arange(std.burst_len)
    env = np.sin(np.pi * (k + 0.5) / std.burst_len) ** 2
    bu = -std.burst_amp * (np.sqrt(0.5) if std.pal else 1.0)
    bv = std.burst_amp * np.sqrt(0.5) if std.pal else 0.0
    bph = np.exp(1j * w * (std.burst_start + k)).astype(np.complex64)
    bc = (sw[bl, None] * bv - 1j * bu) * line_ph[bl, None] * bph[None, :]
    comp[bl, std.burst_start:std.burst_start + std.burst_len] = (bc.real * env).astype(np.float32)
    return comp.reshape(-1)
