"""The 5.8 GHz FM link at complex baseband: transmitter, channel, receiver IF
and FM discriminator.

Parameters (typical of analog FPV video transmitters and receivers):
- pre-emphasis: a first-order shelf, zeros/poles at 0.6 / 2.4 MHz (+12 dB
  HF boost, close to CCIR 405-1), unity at the 1.2 MHz crossover; the
  receiver de-emphasis is its exact inverse;
- deviation: 8 MHz peak-to-peak for sync tip to peak white at the crossover
  frequency (so +-4 MHz around the carrier; LF content deviates less);
- IF filter: flat to +-7.5 MHz, raised-cosine skirts to +-10.5 MHz, i.e. 18
  MHz noise bandwidth (Carson: 2 x (4 + 5) MHz);
- CNR is carrier power over noise power in that 18 MHz.

Simulation rate: 27 MHz complex (twice the 13.5 MHz composite rate) covers
the IF filter's full +-10.5 MHz, so the carrier and the noise in the IF band
are represented exactly, without scaling the deviation: click statistics and
the FM threshold (about 10 dB CNR here) are those of the real link.

Fading is modelled as the carrier amplitude against a constant noise floor;
the phase-difference discriminator is blind to a slowly varying real gain,
so the received signal is simulated as ``s_filtered + n_filtered / A(t)`` with
A changing per line (64 us, far slower than the IF filter's ~100 ns impulse
response): the filtered signal is then shared with the high-CNR reference
pass, which saves an FFT.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from rtclean.sim.analog.standards import FS, AnalogStandard

FS_RF = 2 * FS  # complex baseband rate
DEV_PP = 8.0e6  # peak-to-peak deviation (Hz), sync tip to peak white
PE_F1, PE_F2 = 0.6e6, 2.4e6  # pre-emphasis zero / pole
IF_FLAT, IF_EDGE = 7.5e6, 10.5e6


def _preemph(f: np.ndarray) -> np.ndarray:
    h = (1 + 1j * f / PE_F1) / (1 + 1j * f / PE_F2)
    fc = np.sqrt(PE_F1 * PE_F2)
    g = abs((1 + 1j * fc / PE_F1) / (1 + 1j * fc / PE_F2))
    return h / g


def _video_lpf(f: np.ndarray, bw: float) -> np.ndarray:
    """Flat to 0.9 bw, cosine roll-off to 1.25 bw (a video low-pass)."""
    x = np.clip((np.abs(f) - 0.9 * bw) / (0.35 * bw), 0, 1)
    return 0.5 + 0.5 * np.cos(np.pi * x)


@dataclass(frozen=True, slots=True)
class RfFilters:
    tx: np.ndarray  # (N13//2+1,) complex64: video LPF x pre-emphasis on the composite's rfft
    if_h: np.ndarray  # (N27,) float32: IF filter on the fft of the carrier
    band: np.ndarray  # indices of the FFT bins inside the IF filter
    noise_scale: float  # white-noise std per bin giving unit noise power after the IF filter
    rx: np.ndarray  # (N13//2+1,) complex64: de-emphasis x video LPF x volts-per-rad/sample
    freqs_rf: np.ndarray  # (N27,) float32 Hz


@functools.lru_cache(maxsize=2)
def filters(std: AnalogStandard) -> RfFilters:
    n13 = std.samples
    n27 = 2 * n13
    f13 = np.fft.rfftfreq(n13, 1 / FS)
    tx = (_video_lpf(f13, std.video_bw) * _preemph(f13)).astype(np.complex64)
    f27 = np.fft.fftfreq(n27, 1 / FS_RF)
    x = np.clip((np.abs(f27) - IF_FLAT) / (IF_EDGE - IF_FLAT), 0, 1)
    if_h = (0.5 + 0.5 * np.cos(np.pi * x)).astype(np.float32)
    band = np.nonzero(if_h > 0)[0]
    noise_scale = float(n27 / np.sqrt(np.sum(if_h.astype(np.float64) ** 2)))
    kdev = DEV_PP / (std.white - std.sync)  # Hz per volt
    # discriminator output in rad/sample at 27 MHz -> volts
    volts = FS_RF / (2 * np.pi) / kdev
    rx = (_video_lpf(f13, std.video_bw) / _preemph(f13) * volts).astype(np.complex64)
    return RfFilters(tx, if_h, band, noise_scale, rx, f27.astype(np.float32))


def modulate(comp: np.ndarray, std: AnalogStandard) -> np.ndarray:
    """Composite (13.5 MHz real) -> spectrum of the FM carrier at 27 MHz complex
    baseband (unit amplitude), before the channel."""
    flt = filters(std)
    n13 = comp.size
    centre = 0.5 * (std.sync + std.white)
    spec = np.fft.rfft(comp - centre) * flt.tx
    # zero-padded inverse: band-limited interpolation to 27 MHz (x2 for irfft's 1/n)
    x = np.fft.irfft(spec, n=2 * n13) * 2.0
    kdev = DEV_PP / (std.white - std.sync)
    dphi = x * (2 * np.pi * kdev / FS_RF)
    phase = np.cumsum(dphi, dtype=np.float64)
    phase = np.mod(phase, 2 * np.pi)
    carrier = np.empty(phase.size, np.complex64)
    carrier.real = np.cos(phase)
    carrier.imag = np.sin(phase)
    return np.fft.fft(carrier)


def echo_response(std: AnalogStandard, amp: float, delay_s: float, phase: float) -> np.ndarray:
    """Two-ray multipath: the direct path plus an echo ``amp`` times as strong,
    ``delay_s`` later, at carrier phase ``phase``."""
    f = filters(std).freqs_rf
    return (1 + amp * np.exp(1j * (phase - 2 * np.pi * f * delay_s))).astype(np.complex64)


def if_filter(carrier_spec: np.ndarray, std: AnalogStandard, echo: np.ndarray | None = None) -> np.ndarray:
    """The received carrier after the IF filter (time domain, complex64)."""
    h = filters(std).if_h
    spec = carrier_spec * h if echo is None else carrier_spec * (h * echo)
    return np.fft.ifft(spec).astype(np.complex64, copy=False)


def if_noise(std: AnalogStandard, rng: np.random.Generator) -> np.ndarray:
    """Receiver noise after the IF filter, unit power (complex64)."""
    flt = filters(std)
    n27 = flt.if_h.size
    nb = flt.band.size
    spec = np.zeros(n27, np.complex64)
    w = rng.standard_normal(2 * nb, dtype=np.float32).view(np.complex64)
    spec[flt.band] = w * (flt.if_h[flt.band] * np.float32(flt.noise_scale * np.sqrt(0.5)))
    return np.fft.ifft(spec).astype(np.complex64, copy=False)


def discriminate(rx: np.ndarray, std: AnalogStandard) -> np.ndarray:
    """Phase-difference FM discriminator, de-emphasis and video low-pass.

    Returns the rfft (13.5 MHz grid, N13//2+1 bins) of the recovered composite
    in volts. Below threshold the noise phasor now and then encircles the
    origin and the phase difference jumps by 2 pi: those are the FM clicks.
    """
    flt = filters(std)
    prod = rx * np.conj(np.roll(rx, 1))
    dphi = np.angle(prod).astype(np.float32)
    spec = np.fft.rfft(dphi)
    n13 = std.samples
    # keep the 0-6.75 MHz bins; 0.5: the composite is half as long as the 27 MHz stream
    out = spec[:n13 // 2 + 1] * (flt.rx * np.float32(0.5))
    out[0] += 0.5 * (std.sync + std.white) * n13  # the deviation is centred between sync tip and white
    return out
