"""Keep the sound track of a cleaned DVR file.

The cleaned video is encoded to a temporary file first; this module then
writes the final file from that video and the input's audio packets. Audio
packets are copied as they are (no re-encoding, no quality loss) whenever the
output container accepts the codec; only when it does not (PCM in MP4 or
MPEG-TS, say) is the track re-encoded to a codec that container takes, and
the report says so.

Timing: every timestamp is moved by the same ``shift`` (the input's start
time, so the output starts at 0 like the video writer's), which keeps audio
and video exactly as much in sync as they were in the input. The whole track
is kept, except for a truncated input whose video stopped decoding early:
there audio after the last video frame (``until``) is left out, so the
output does not run on with sound over no picture.
"""

from __future__ import annotations

import heapq
import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from rtclean.errors import RtcleanError

log = logging.getLogger(__name__)

# Muxer options per container (the same reasons as the DVR writer's:
# MPEG-TS without max_delay would move every timestamp by 0.7-1.4 s).
_MUX_OPTIONS = {".ts": {"max_delay": "0"}}
# Audio codecs copied as they are into each container. A muxer does not
# always refuse what it cannot carry: MPEG-TS takes PCM without a word and
# stores it as an unreadable data stream. So copying is limited to what each
# container is known to carry and players read; anything else is re-encoded.
_COPY_OK = {
    ".ts": {"aac", "mp2", "mp3", "ac3", "eac3"},
    ".mp4": {"aac", "mp3", "mp2", "ac3", "eac3", "alac", "opus", "flac"},
    ".mov": {"aac", "mp3", "mp2", "ac3", "alac", "pcm_s16le", "pcm_s16be", "pcm_s24le", "pcm_u8",
             "pcm_f32le", "adpcm_ima_qt"},
    ".avi": {"pcm_s16le", "pcm_u8", "pcm_s24le", "mp3", "mp2", "ac3", "aac", "adpcm_ima_wav", "adpcm_ms"},
    ".mkv": None,  # Matroska carries every common audio codec
}
# Standard channel layout per channel count (goggles record mono or stereo).
_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 6: "5.1"}
# Codec a track is re-encoded to when the container refuses the original.
_FALLBACK = {".avi": ("pcm_s16le", "s16"), ".mp4": ("aac", "fltp"), ".mov": ("aac", "fltp"),
             ".ts": ("aac", "fltp"), ".mkv": ("aac", "fltp")}


@dataclass(slots=True)
class AudioInfo:
    """What the input's first audio track is, and where its times start."""

    codec: str
    shift: float  # seconds to subtract from every input time (container start)


def probe(path: str | Path) -> tuple[AudioInfo | None, float, float]:
    """(audio track or None, the container's start time and duration in
    seconds; 0 where unknown)."""
    try:
        with av.open(str(path)) as c:
            start = (c.start_time or 0) / 1e6
            duration = (c.duration or 0) / 1e6
            if not c.streams.audio:
                return None, start, duration
            return AudioInfo(c.streams.audio[0].codec_context.name, start), start, duration
    except (av.FFmpegError, OSError):
        return None, 0.0, 0.0  # the video source reports unreadable files itself


def _packets(container, stream, shift_ticks: int = 0, end: Fraction | None = None):
    """Demux ``stream``'s packets in order, moved by ``shift_ticks`` and cut at
    ``end`` seconds; yields (time in seconds, packet). Stops quietly where a
    truncated file stops."""
    try:
        for pkt in container.demux(stream):
            if pkt.size == 0 or pkt.dts is None and pkt.pts is None:
                continue  # demuxer flush packet
            if pkt.pts is not None:
                pkt.pts -= shift_ticks
            if pkt.dts is not None:
                pkt.dts -= shift_ticks
            t = (pkt.dts if pkt.dts is not None else pkt.pts) * pkt.time_base
            if end is not None and pkt.pts is not None and pkt.pts * pkt.time_base >= end:
                return
            yield t, pkt
    except (av.FFmpegError, ValueError) as e:
        log.debug("%s: demuxing stopped (%s)", container.name, e)


def mux_audio(video_path: Path, source: Path, out: Path, info: AudioInfo, until: float | None = None) -> str:
    """Write ``out`` from the video of ``video_path`` and the audio of
    ``source`` (up to ``until`` seconds of output time, None: all of it).
    Returns "copy" or the codec the audio was re-encoded to."""
    end = Fraction(until).limit_denominator(1_000_000) if until is not None else None
    ext = out.suffix.lower()
    allowed = _COPY_OK.get(ext, set())
    codec, fmt = _FALLBACK.get(ext, ("aac", "fltp"))
    if allowed is None or info.codec in allowed:
        try:
            _write(video_path, source, out, info, end, transcode=None)
            return "copy"
        except (av.FFmpegError, ValueError) as e:
            # The muxer refused the codec (it says so on the header write).
            log.info("%s: %s audio cannot be copied into %s (%s); re-encoding to %s",
                     source, info.codec, ext, e, codec)
    else:
        log.info("%s: %s audio does not go into %s; re-encoding to %s", source, info.codec, ext, codec)
    try:
        _write(video_path, source, out, info, end, transcode=(codec, fmt))
    except (av.FFmpegError, ValueError) as e:
        out.unlink(missing_ok=True)
        raise RtcleanError(f"{out}: cannot write the sound track ({e})") from None
    return codec


def _write(video_path: Path, source: Path, out: Path, info: AudioInfo, end: Fraction | None,
           transcode: tuple[str, str] | None) -> None:
    with av.open(str(video_path)) as vin, av.open(str(source)) as ain, \
            av.open(str(out), mode="w", container_options=_MUX_OPTIONS.get(out.suffix.lower(), {})) as dst:
        vs_in, as_in = vin.streams.video[0], ain.streams.audio[0]
        vs_out = dst.add_stream_from_template(vs_in)
        shift_ticks = round(info.shift / as_in.time_base) if as_in.time_base else 0
        video = ((t, 0, i, p) for i, (t, p) in enumerate(_packets(vin, vs_in)))
        if transcode is None:
            as_out = dst.add_stream_from_template(as_in)
            audio = ((t, 1, i, p) for i, (t, p) in enumerate(_packets(ain, as_in, shift_ticks, end)))
        else:
            codec, fmt = transcode
            # The input may have no channel layout (PCM in AVI says only "1
            # channels"): take the standard layout for its channel count.
            as_out = dst.add_stream(codec, rate=as_in.codec_context.sample_rate,
                                    layout=_LAYOUTS.get(as_in.codec_context.channels, "stereo"))
            as_out.format = fmt
            audio = ((t, 1, i, p) for i, (t, p) in enumerate(
                _reencode(ain, as_in, as_out, info.shift, end)))
        out_streams = (vs_out, as_out)
        # Interleave by decode time, as a muxer expects.
        for _, which, _, pkt in heapq.merge(video, audio, key=lambda x: (x[0], x[1], x[2])):
            pkt.stream = out_streams[which]
            dst.mux(pkt)
        if transcode is not None:
            for pkt in as_out.encode(None):
                dst.mux(pkt)


def _reencode(container, stream, out_stream, shift: float, end: Fraction | None):
    """Decode the input track and encode it for ``out_stream``; yields
    (time, packet) like ``_packets``."""
    ctx = out_stream.codec_context
    resampler = av.AudioResampler(format=ctx.format.name, layout=ctx.layout.name, rate=ctx.sample_rate)
    tb = Fraction(1, ctx.sample_rate)
    next_pts = None
    try:
        for frame in container.decode(stream):
            t = float(frame.pts * frame.time_base) - shift if frame.pts is not None else None
            if end is not None and t is not None and t >= end:
                break
            for f in resampler.resample(frame):
                if next_pts is None:
                    next_pts = round((t or 0.0) / tb)
                # Sample counting keeps the encoder's timestamps gap-free.
                f.pts, f.time_base = next_pts, tb
                next_pts += f.samples
                for pkt in out_stream.encode(f):
                    yield pkt.pts * pkt.time_base if pkt.pts is not None else 0, pkt
    except (av.FFmpegError, ValueError) as e:
        log.debug("%s: audio decoding stopped (%s)", container.name, e)
