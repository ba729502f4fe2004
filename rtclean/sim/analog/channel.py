"""One frame through the whole analog chain, with its high-CNR reference.

    BGR -> composite (encode) -> pre-emphasis, FM (rf.modulate)
        -> multipath echo, IF filter, noise at the frame's per-line CNR
        -> FM discriminator, de-emphasis (rf.discriminate)
        -> receiver + capture card (decode.Decoder) -> BGR

The reference is the same content through the same chain at 60 dB CNR (same
noise realisation, scaled down), decoded by a second decoder that never
loses lock; the degraded output is compared with it, not with the input, so
the composite round trip itself (luma/chroma band limits, cross-colour) is
not counted as damage.

Input frames of another size are scaled to cover the standard's frame and
centre-cropped (``rtclean.sim.feed.fit_frame``, as ``degrade`` does).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np

from rtclean.errors import RtcleanError
from rtclean.sim.analog import rf
from rtclean.sim.analog.decode import PROFILES, Decoder
from rtclean.sim.analog.encode import encode
from rtclean.sim.analog.labels import measure
from rtclean.sim.analog.link import LinkFrame, LinkProcess
from rtclean.sim.analog.standards import get_standard
from rtclean.sim.breakup import BreakupLabel
from rtclean.sim.feed import SimFrame, fit_frame

log = logging.getLogger(__name__)

REFERENCE_CNR_DB = 60.0


@dataclass(slots=True, eq=False)
class AnalogResult:
    image: np.ndarray  # degraded BGR uint8 (height, width, 3)
    reference: np.ndarray  # the high-CNR pass (ground truth)
    label: BreakupLabel
    line_damage: np.ndarray  # (height,) float32 in [0, 1], per output row
    line_damaged: np.ndarray  # (height,) bool: rows counted as damaged in the label
    line_shift: np.ndarray  # (height,) float32: sideways displacement of each row vs the reference (px)
    field_damage: tuple[float, float]  # damaged share of field 1 (rows 0,2,..) and field 2 rows
    cnr_db: float  # mean CNR over the frame
    cnr_lines: np.ndarray  # (lines,) CNR per stream line (dB)
    v_offset: tuple[int, int]  # vertical offset per field (lines): non-zero = rolled/jumped
    colour: tuple[bool, bool]  # per field: chroma passed the colour killer
    burst_coherence: tuple[float, float]
    sync_ok: float  # share of lines with a valid sync edge
    no_signal: bool


class AnalogChannel:
    """A transmitter, a 5.8 GHz FM link and a receiver + capture card.

    ``render`` is stateful (flywheels, colour killer, last frame), so feed it
    consecutive frames; the same seed and the same calls give the same output.
    ``echo``: relative amplitude of a multipath echo (0 = none) arriving
    ``echo_delay`` seconds after the direct path. ``comb``: an NTSC capture
    decoder that combs chroma over two lines instead of a notch decoder's
    line-by-line chroma (``decode``; PAL's delay line does it always).
    """

    def __init__(self, standard: str = "pal", seed: int = 0, profile: str = "static",
                 echo: float = 0.0, echo_delay: float = 0.25e-6, comb: bool = False) -> None:
        if profile not in PROFILES:
            raise RtcleanError(f"analog: unknown receiver profile {profile!r} (expected one of: {', '.join(PROFILES)})")
        if not 0.0 <= echo < 1.0:
            raise RtcleanError(f"analog: echo amplitude must be in [0, 1), got {echo}")
        self.std = get_standard(standard)
        self.profile = profile
        self.rng = np.random.default_rng([int(seed), 5800])
        self.echo = float(echo)
        self.echo_delay = float(echo_delay)
        self.rx = Decoder(self.std, profile, comb)
        self.ref_rx = Decoder(self.std, "static", comb)  # the same card: its own decoding is not damage
        self.frame_no = 0

    @property
    def size(self) -> tuple[int, int]:
        return self.std.width, self.std.height

    def _cnr(self, cnr_db) -> np.ndarray:
        lines = self.std.lines
        c = np.asarray(cnr_db, np.float64)
        if c.ndim == 0:
            c = np.full(lines, float(c))
        if c.shape != (lines,) or not np.all(np.isfinite(c)):
            raise RtcleanError(f"analog: cnr_db must be a finite number or {lines} values (one per line)")
        return c

    def render(self, frame_bgr: np.ndarray, cnr_db) -> AnalogResult:
        if (not isinstance(frame_bgr, np.ndarray) or frame_bgr.dtype != np.uint8 or frame_bgr.ndim != 3
                or frame_bgr.shape[2] != 3):
            raise RtcleanError("analog: expected an HxWx3 uint8 BGR frame")
        std = self.std
        cnr = self._cnr(cnr_db)
        frame = frame_bgr
        if frame.shape[:2] != (std.height, std.width):
            frame = fit_frame(frame, (std.width, std.height))
        comp = encode(frame, std, self.frame_no)
        self.frame_no += 1
        carrier = rf.modulate(comp, std)
        sig_ref = rf.if_filter(carrier, std)
        sig = sig_ref
        if self.echo > 0:
            phase = float(self.rng.uniform(0, 2 * np.pi))
            sig = rf.if_filter(carrier, std, rf.echo_response(std, self.echo, self.echo_delay, phase))
        noise = rf.if_noise(std, self.rng)
        # noise amplitude per line relative to the (unit) carrier: 10^(-CNR/20)
        amp = np.repeat((10.0 ** (-cnr / 20.0)).astype(np.float32), 2 * std.spl)
        rx = sig + noise * amp
        ref_in = sig_ref + noise * np.float32(10.0 ** (-REFERENCE_CNR_DB / 20.0))
        out = self.rx.decode(rf.discriminate(rx, std))
        ref = self.ref_rx.decode(rf.discriminate(ref_in, std))
        shift, rolled = displacement(out.row_pos, ref.row_pos, self.std.spl, self.std.samples)
        killed = not (out.colour[0] and out.colour[1])
        m = measure(out.image, ref.image, shift, rolled, killed, out.no_signal, self.profile)
        return AnalogResult(out.image, ref.image, m.label, m.line_damage, m.line_damaged, m.line_shift,
                            m.field_damage, float(cnr.mean()), cnr.astype(np.float32), out.v_off, out.colour,
                            out.burst_coherence, float(out.sync_ok.mean()), out.no_signal)


def displacement(row_pos: np.ndarray, ref_pos: np.ndarray, spl: int, samples: int) -> tuple[np.ndarray, bool]:
    """Sideways shift of each output row against the reference (pixels) and
    whether the picture is rolled: the rows show other lines of the stream
    than the reference's. Judged from where each row was taken, not from the
    decoder's offsets: a decoder that re-based its line counter shows the
    right lines whatever its internal offsets say. A row hunting for sync
    may jump up to half a line sideways, so a frame counts as rolled when a
    quarter of its rows or more are a whole line or more away."""
    d = (row_pos - ref_pos + samples / 2) % samples - samples / 2
    lines = np.rint(d / spl)
    rolled = bool((lines != 0).mean() >= 0.25)
    shift = np.zeros_like(d) if rolled else d - lines * spl
    return shift, rolled


def degrade_analog(frames: Iterable[np.ndarray], seed: int = 1, breakup: float = 0.3, standard: str = "pal",
                   profile: str = "static", echo: float = 0.0, comb: bool = False) -> Iterator[SimFrame]:
    """Real frames through the analog chain with a time-varying link.

    Yields ``SimFrame(image=degraded, truth=high-CNR reference, label,
    index, pts, link=LinkFrame)``; ``link.result`` carries the full
    ``AnalogResult`` (per-line and per-field figures)."""
    chan = AnalogChannel(standard, seed, profile, echo, comb=comb)
    std = chan.std
    proc = LinkProcess(seed, breakup, std.fps, lines=std.lines)
    for i, frame in enumerate(frames):
        if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise RtcleanError(f"degrade_analog: frame {i} is not an HxWx3 uint8 BGR image")
        lf = proc.next()
        res = chan.render(frame, lf.cnr_db)
        lf.result = res
        yield SimFrame(res.image, res.reference, res.label, i, i / std.fps, lf)
