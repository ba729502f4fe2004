"""One video file written with PyAV: H.264 for recordings, FFV1 for lossless output.

The container follows the file extension. MPEG-TS (.ts) is what the DVR uses:
with ``flush_packets=1`` every encoded frame is handed to the OS as soon as it
is muxed, and a transport stream needs no trailer or index, so a process that
is killed leaves a file that decodes up to its last written frame (DESIGN.md:
measured; MKV lost a frame, fragmented MP4 a fragment, plain MP4 everything).

H.264 in yuv420p needs even width and height. An odd size is padded by one
pixel (the last column/row repeated), so no picture is lost; the file is then
one pixel wider/taller than the input. FFV1 (lossless) has no such limit and
keeps the exact size.

libx264 runs ultrafast/zerolatency (no B-frames, no look-ahead: a frame's
packet is muxed as soon as it is encoded) at constant quality (CRF) with a
VBV cap of 2 x ``bitrate_kbps`` so that full-screen snow cannot outrun an SD
card. The caller sets the encoder's thread count (default 1).

``codec="h264_v4l2m2m"`` selects the Raspberry Pi 4 hardware encoder through
the same code path (bitrate instead of CRF, no x264 options). It cannot be
exercised on the development machine (no /dev/video11 here): it is a thin
option, verified only on hardware.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from rtclean.errors import RtcleanError

log = logging.getLogger(__name__)

# Container per extension; options are muxer (format) options.
_CONTAINERS: dict[str, tuple[str, dict[str, str]]] = {
    # max_delay 0 (ffmpeg -muxdelay 0): no artificial PCR/DTS offset, so pts 0 is t=0;
    # flush_packets: write each packet to the OS immediately (crash safety).
    ".ts": ("mpegts", {"flush_packets": "1", "max_delay": "0"}),
    ".mkv": ("matroska", {}),
    ".mp4": ("mp4", {}),
    ".mov": ("mov", {}),
    ".avi": ("avi", {}),
}

# Fine media clock for H.264: timestamps come from capture times, not frame
# numbers, so drops show as gaps. 90 kHz is MPEG-TS's own clock.
_FINE_TIME_BASE = Fraction(1, 90000)


class VideoWriter:
    """Encode BGR frames into one file; ``frames`` counts what was written."""

    def __init__(self, path: str | os.PathLike, width: int, height: int,
                 fps: float | Fraction, *, codec: str = "libx264", crf: int = 23,
                 preset: str = "ultrafast", bitrate_kbps: int = 4000,
                 gop: int | None = None, lossless: bool = False,
                 options: dict[str, str] | None = None, threads: int = 1,
                 overwrite: bool = True,
                 on_packet: Callable[[bytes, float, bool], None] | None = None) -> None:
        """``on_packet(data, pts_s, key)`` is called with every encoded packet
        once it is muxed (the live view's H.264 feed re-wraps them)."""
        self.path = Path(path)
        self.on_packet = on_packet
        self.width, self.height = int(width), int(height)
        if self.width < 2 or self.height < 2:
            raise RtcleanError(f"{self.path}: cannot record a {width}x{height} picture")
        if not fps or fps <= 0:
            raise RtcleanError(f"{self.path}: frame rate must be positive, got {fps}")
        self.fps = Fraction(fps).limit_denominator(1001) if not isinstance(fps, Fraction) else fps
        self.lossless = lossless
        ext = self.path.suffix.lower()
        if lossless and ext != ".mkv":
            raise RtcleanError(f"{self.path}: lossless output (FFV1) is written as Matroska: use .mkv")
        if ext not in _CONTAINERS:
            raise RtcleanError(f"{self.path}: unknown container extension {ext or '(none)'}"
                               f" (use one of {', '.join(_CONTAINERS)})")
        fmt, fmt_opts = _CONTAINERS[ext]

        if lossless:
            # bgr0 is BGR plus a padding byte: converting bgr24 <-> bgr0 only
            # moves bytes, so decoded pixels equal the input exactly.
            codec, pix_fmt, enc_w, enc_h = "ffv1", "bgr0", self.width, self.height
        else:
            pix_fmt = "yuv420p"
            enc_w, enc_h = self.width + self.width % 2, self.height + self.height % 2
        self.codec = codec
        self.encoded_size = (enc_w, enc_h)
        self._pad = (enc_w - self.width, enc_h - self.height)
        # AVI stores a constant frame rate: its time base must be the frame
        # period, so timestamps are rounded to frame numbers there.
        self._time_base = (Fraction(1) / self.fps) if ext == ".avi" else _FINE_TIME_BASE

        try:
            # FFmpeg opens the file only when the first frame is muxed: create
            # it now so a missing or read-only directory fails here, clearly,
            # and (overwrite=False, the DVR) an existing recording is never
            # replaced. The parent directory is not created: a vanished
            # recording medium must be an error, not a new folder on the SD card.
            with open(self.path, "wb" if overwrite else "xb"):
                pass
            self._container = av.open(str(self.path), mode="w", format=fmt, options=fmt_opts)
        except (OSError, av.error.FFmpegError) as e:
            raise RtcleanError(f"{self.path}: cannot create video file: "
                               f"{getattr(e, 'strerror', None) or e}") from None
        try:
            self._stream = self._add_stream(codec, pix_fmt, enc_w, enc_h, crf, preset,
                                            bitrate_kbps, gop, options or {}, threads)
        except Exception:
            self._container.close()
            self.path.unlink(missing_ok=True)  # nothing was written: leave no empty file
            raise
        self.frames = 0
        self._last_pts = -1
        self._closed = False

    def _add_stream(self, codec, pix_fmt, w, h, crf, preset, bitrate_kbps, gop, options, threads):
        try:
            stream = self._container.add_stream(codec, rate=self.fps)
        except (av.error.FFmpegError, ValueError) as e:
            raise RtcleanError(f"{self.path}: encoder {codec!r} is not available: {e}") from None
        ctx = stream.codec_context
        ctx.width, ctx.height, ctx.pix_fmt = w, h, pix_fmt
        ctx.time_base = self._time_base
        stream.time_base = self._time_base
        ctx.framerate = self.fps
        # Explicit thread count: FFmpeg's default (0 = one per core) would let
        # each of the two recorders take every core the live path needs.
        ctx.thread_count = threads
        opts: dict[str, str] = {}
        if codec == "libx264":
            ctx.gop_size = gop or max(1, round(self.fps))
            # Capped CRF: constant quality normally, but full-screen snow
            # (signal lost) at CRF 23 measured ~50 Mbit/s at 720x576, which an
            # SD card may not sustain; the VBV cap bounds it at 2x bitrate_kbps.
            cap = 2 * int(bitrate_kbps)
            opts = {"preset": preset, "tune": "zerolatency", "crf": str(crf),
                    "maxrate": f"{cap}k", "bufsize": f"{cap}k"}
            # SD video: tag BT.601 limited range so players show the colours
            # that the BGR -> YUV conversion below assumed.
            ctx.color_range = 1
            ctx.colorspace = 6  # SMPTE 170M (BT.601)
        elif codec == "ffv1":
            opts = {"level": "3", "slicecrc": "1"}
            ctx.gop_size = gop or max(1, round(self.fps))
        else:  # hardware or other encoders: bitrate-driven, no x264 options
            ctx.gop_size = gop or max(1, round(self.fps))
            ctx.bit_rate = int(bitrate_kbps) * 1000
        opts.update(options)
        ctx.options = opts
        return stream

    # ------------------------------------------------------------------ writing

    def _to_frame(self, image: np.ndarray) -> av.VideoFrame:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise RtcleanError(f"{self.path}: expected an HxWx3 uint8 BGR image, "
                               f"got shape {image.shape} {image.dtype}")
        h, w = image.shape[:2]
        if (w, h) != (self.width, self.height):
            raise RtcleanError(f"{self.path}: frame is {w}x{h}, the recording is "
                               f"{self.width}x{self.height}")
        if self.lossless:
            return av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
        if self._pad != (0, 0):
            image = cv2.copyMakeBorder(image, 0, self._pad[1], 0, self._pad[0], cv2.BORDER_REPLICATE)
        # OpenCV's BGR -> I420 (BT.601, limited range) is several times faster
        # than swscale's and releases the GIL; the planes go straight to x264.
        yuv = cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420)
        return av.VideoFrame.from_ndarray(yuv, format="yuv420p")

    def write(self, image_bgr: np.ndarray, pts_s: float | None = None) -> None:
        """Encode one frame at ``pts_s`` seconds (None: frame number / fps)."""
        if self._closed:
            raise RtcleanError(f"{self.path}: write after close")
        frame = self._to_frame(image_bgr)
        if pts_s is None:
            pts_s = float(self.frames / self.fps)
        pts = round(pts_s / self._time_base)
        # Timestamps must rise strictly: a repeated or backwards time (clock
        # jitter, rounding on AVI) moves to one tick after the previous frame.
        pts = max(pts, self._last_pts + 1)
        self._last_pts = pts
        frame.pts = pts
        frame.time_base = self._time_base
        try:
            for packet in self._stream.encode(frame):
                self._mux(packet)
        except av.error.FFmpegError as e:
            if self.frames == 0:  # FFmpeg opens the encoder on the first frame
                raise RtcleanError(f"{self.path}: cannot start encoder {self.codec}"
                                   f" (hardware encoder missing?): {e}") from None
            raise RtcleanError(f"{self.path}: encoding failed: {e}") from None
        self.frames += 1

    def _mux(self, packet: av.Packet) -> None:
        tap = self.on_packet
        # Read before mux(): muxing may rescale the packet's timestamps.
        info = (bytes(packet), float(packet.pts * self._time_base), bool(packet.is_keyframe)) if tap else None
        self._container.mux(packet)
        if info is not None:
            tap(*info)

    def close(self, fsync: bool = True) -> None:
        """Flush the encoder, finish the file and (by default) fsync it."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.frames:  # an encoder that never opened has nothing to flush
                for packet in self._stream.encode(None):
                    self._mux(packet)
        finally:
            self._container.close()
        if fsync:
            try:
                fsync_path(self.path)
            except OSError as e:
                raise RtcleanError(f"{self.path}: cannot sync finished file: "
                                   f"{e.strerror or e}") from None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def fsync_path(path: Path) -> None:
    """Force a finished file (and its directory entry) to stable storage."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
