"""Write goggle-DVR-like files (AVI/MJPEG, MP4, MOV, TS, with or without a
sound track) from BGR frames.

Used by ``rtclean bench`` (the offline cleaner's speed on a 720x576 25 fps
recording) and by the tests: the cleaner must read what goggles write, so
its inputs are made the way goggles make them, not with rtclean's own
VideoWriter. The codecs per container follow common goggles: MJPEG + PCM
in AVI (analog goggles' DVR), H.264 + AAC in MP4/MOV, H.264 + MP2 in
MPEG-TS (receiver modules that record transport streams).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from rtclean.errors import RtcleanError

# extension -> (video codec, pixel format, audio codec, audio sample format)
_LAYOUT: dict[str, tuple[str, str, str, str]] = {
    ".avi": ("mjpeg", "yuvj420p", "pcm_s16le", "s16"),
    ".mp4": ("libx264", "yuv420p", "aac", "fltp"),
    ".mov": ("libx264", "yuv420p", "aac", "fltp"),
    ".ts": ("libx264", "yuv420p", "mp2", "s16"),
    ".mkv": ("libx264", "yuv420p", "aac", "fltp"),
}

AUDIO_RATE = 48000


def tone(seconds: float, rate: int = AUDIO_RATE, hz: float = 440.0) -> np.ndarray:
    """A mono sine whose pitch glides with time, as float32 in [-0.5, 0.5]:
    any shift or loss of audio shows up when the tracks are compared."""
    t = np.arange(int(round(seconds * rate)), dtype=np.float64) / rate
    return (0.5 * np.sin(2 * np.pi * (hz + 40.0 * t) * t)).astype(np.float32)


def write_dvr_file(path: str | Path, frames: list[np.ndarray], fps: float | Fraction = 25,
                   audio: bool = True) -> Path:
    """Encode ``frames`` (HxWx3 BGR uint8) into ``path``; the container and
    codecs follow the extension (see ``_LAYOUT``)."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in _LAYOUT:
        raise RtcleanError(f"{path}: no DVR layout for {ext or '(none)'}")
    if not frames:
        raise RtcleanError(f"{path}: no frames to write")
    vcodec, pix_fmt, acodec, afmt = _LAYOUT[ext]
    rate = Fraction(fps).limit_denominator(1001)
    h, w = frames[0].shape[:2]
    with av.open(str(path), mode="w") as out:
        vs = out.add_stream(vcodec, rate=rate)
        vs.width, vs.height, vs.pix_fmt = w, h, pix_fmt
        vs.codec_context.thread_count = 1
        if vcodec == "libx264":
            vs.codec_context.options = {"preset": "ultrafast", "crf": "18"}
            vs.codec_context.gop_size = 25
        else:
            vs.codec_context.options = {"qscale": "3"}
        a_s = None
        if audio:
            a_s = out.add_stream(acodec, rate=AUDIO_RATE, layout="mono")
            a_s.format = afmt
        for i, img in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="bgr24")
            frame.pts = i
            frame.time_base = 1 / rate
            out.mux(vs.encode(frame))
        out.mux(vs.encode(None))
        if a_s is not None:
            _write_audio(out, a_s, len(frames) / float(rate), afmt)
    return path


def _write_audio(out, stream, seconds: float, fmt: str) -> None:
    samples = tone(seconds)
    chunk = stream.codec_context.frame_size or 1024
    for start in range(0, len(samples), chunk):
        part = samples[start:start + chunk]
        data = part if fmt == "fltp" else (part * 32767).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(data[None, :], format=fmt, layout="mono")
        frame.sample_rate = AUDIO_RATE
        frame.pts = start
        frame.time_base = Fraction(1, AUDIO_RATE)
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))
