"""A video file as a source: paced at its native rate (live-like) or as fast
as it decodes (offline).

Decoding goes through PyAV so every container/codec FFmpeg knows works, and a
truncated file (goggles powered off mid-recording) ends cleanly at the last
decodable frame with a warning instead of an exception.
"""

from __future__ import annotations

import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from rtclean.errors import SourceError
from rtclean.sources.base import Source


def probe_rate(stream: av.video.stream.VideoStream) -> Fraction:
    """The stream's frame rate, falling back through the fields containers fill."""
    # guessed_rate is FFmpeg's r_frame_rate (30000/1001 for NTSC material);
    # average_rate can be a ragged figure like 456000/15217 from the timestamps.
    for rate in (stream.guessed_rate, stream.average_rate, stream.base_rate):
        if rate and rate > 0 and rate < 1000:
            return Fraction(rate)
    return Fraction(25)


class FileSource(Source):
    name = "file"

    def __init__(self, path: str | Path, realtime: bool = False, loop: bool = False) -> None:
        super().__init__()
        self.path = Path(path)
        self.live = realtime
        self.loop = loop
        self.rate = Fraction(25)
        self.frames_hint = 0  # frame count from the container, 0 if unknown
        self.truncated = False  # set when decoding stopped on a damaged or missing tail
        self.truncation = ""  # why, in one line, for the caller to report
        self._container = None
        self._iter = None
        self._start = 0.0
        self._n = 0
        self._pts_offset = 0.0
        self._last_pts = 0.0

    def open(self) -> None:
        if not self.path.exists():
            raise SourceError(f"{self.path}: no such file")
        if self.path.is_dir():
            raise SourceError(f"{self.path}: is a directory, not a video file")
        try:
            self._container = av.open(str(self.path), mode="r")
        except (av.FFmpegError, OSError, UnicodeDecodeError) as e:
            raise SourceError(f"{self.path}: cannot read video ({_reason(e)}; the file is damaged, "
                              "cut short before its index, or not a video)") from None
        if not self._container.streams.video:
            self._container.close()
            raise SourceError(f"{self.path}: contains no video stream")
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        self.rate = probe_rate(stream)
        self.fps = float(self.rate)
        self.frames_hint = int(stream.frames or 0)
        self.size = (stream.codec_context.width, stream.codec_context.height)
        self._stream = stream
        self._iter = self._decode()
        self._start = time.monotonic()
        # Decode the first frame now: a file whose header parses but whose
        # data does not decode should fail at open, with one clear line.
        self._first = self._next_image()
        if self._first is None:
            raise SourceError(f"{self.path}: no decodable video frames")

    def _decode(self):
        try:
            for frame in self._container.decode(self._stream):
                yield frame
        except av.EOFError:
            pass
        except (av.FFmpegError, ValueError) as e:
            # Damaged data after some good frames: end the stream here.
            self.truncated = True
            self.truncation = (f"{self.path}: decoding stopped after {self._n} frames ({_reason(e)}); "
                               "the file looks truncated or damaged")
            return
        self._check_complete()

    def _check_complete(self) -> None:
        """A file cut short (goggles powered off) often decodes without an
        error and simply ends early: compare with what the container promised."""
        n = self._n + (1 if self._first is not None else 0)
        duration = (self._container.duration or 0) / 1e6 if self._container else 0.0
        short_count = self.frames_hint > 0 and n < self.frames_hint - 1
        short_time = duration > 0 and self._last_pts + 2.0 / self.fps < duration - 0.5
        if short_count or short_time:
            promised = f"{self.frames_hint} frames" if short_count else f"{duration:.2f} s"
            self.truncated = True
            self.truncation = (f"{self.path}: ends after {n} frames ({self._last_pts:.2f} s) but the "
                               f"container promised {promised}; the file looks truncated")

    def _next_image(self) -> tuple[np.ndarray, float] | None:
        frame = next(self._iter, None)
        if frame is None:
            return None
        image = frame.to_ndarray(format="bgr24")
        if frame.pts is not None and frame.time_base is not None:
            pts = float(frame.pts * frame.time_base)
        else:
            pts = self._n / self.fps
        return image, pts

    def read(self) -> tuple[np.ndarray, float] | None:
        if self._iter is None:
            raise SourceError(f"{self.path}: source not open")
        if self._first is not None:
            item, self._first = self._first, None
        else:
            item = self._next_image()
        if item is None and self.loop and self._n > 0:
            self._restart()
            item = self._next_image()
        if item is None:
            return None
        image, pts = item
        pts += self._pts_offset
        if self._n > 0 and pts <= self._last_pts:
            # Some files (broken B-frame timestamps) go backwards; times must not.
            pts = self._last_pts + 1.0 / self.fps
        self._last_pts = pts
        if self.live:
            # Pace from the first read (not frame to frame) so there is no drift;
            # when decoding is late, deliver at once rather than sleep.
            if self._n == 0:
                self._start = time.monotonic()
            due = self._start + self._n / self.fps
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        self._n += 1
        return image, pts

    def _restart(self) -> None:
        self._pts_offset = self._last_pts + 1.0 / self.fps
        self._container.seek(0)
        self._iter = self._decode()

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
            self._iter = None


def _reason(e: BaseException) -> str:
    text = getattr(e, "strerror", None) or str(e)
    return text.split(": '")[0].strip() or type(e).__name__
