"""The live view's H.264 feed: the DVR encoder's packets, re-wrapped for browsers.

While a stream is recorded its frames are already H.264-encoded, once, by
the recorder. ``VideoFeed.push()`` (called on the recorder thread with every
packet) turns each packet into one fragmented-MP4 fragment (fmp4.py) and
frames it as a message; the server sends the messages to every client of
``/stream/<name>.fmp4``. So a browser that plays it costs rtclean no encode
at all (an MJPEG client costs one JPEG per frame) and gets a fifth of the
bytes: 2-5 Mbit/s instead of ~20 at 720x576 and 25 fps, which matters on a
Pi's Wi-Fi hotspot with several phones.

Messages, in order, each a 14-byte header and a body::

    u32  length of what follows (10 + len(body)), big-endian
    u8   kind: "C" config (JSON: codec, width, height, fps), "I" init
         segment (ftyp+moov), "F" one frame (moof+mdat), "E" end (JSON:
         reason; the page falls back to MJPEG)
    u8   tag of the frame: 0 passed, 1 REPAIRED, 2 HOLD, 3 LOST (as the
         MJPEG stream's on-picture tag; the page draws it over the video)
    f64  the frame's media time in seconds (its decode and presentation
         time: no B-frames), big-endian
    body

A new client gets C, I and the frames since the last keyframe, so it shows a
picture at once; then every frame as it is encoded. Media time is counted in
frame periods, not capture times: the track has no gaps for the browser to
stall on, and a dropped frame only shifts it by one period, which the page's
live-edge tracking absorbs.

The feed carries what the recorder writes: none while recording is off, and
the clean stream is delayed by ``record.lookahead_ms`` (the pipeline does not
offer it then). When the encoder falls behind (``LATE_S``) the feed is off
too: its viewers go back to MJPEG, which stays live.
"""

from __future__ import annotations

import json
import logging
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from rtclean.live import fmp4
from rtclean.live.hub import tag_for
from rtclean.stats import Window

log = logging.getLogger(__name__)

_HEADER = struct.Struct(">IBBd")
TAG_CODES = {None: 0, "REPAIRED": 1, "HOLD": 2, "LOST": 3}
# No packet for this long: the feed is off (recording stopped, no signal).
# Longer than a segment switch (the finished file is fsynced first, which on
# an SD card can take a second) so a new segment does not end the clients'
# streams; the page itself switches to MJPEG as soon as the status says
# recording stopped.
STALE_S = 3.0
# The recorder's packets come out this long after capture, or later: the
# encoder cannot keep up (an overloaded Pi; its queue holds seconds of
# video). The H.264 viewers would watch the past, so the feed is declared off
# and the page goes back to MJPEG, which stays live. A segment switch's fsync
# delays a few frames by far less.
LATE_S = 1.0
# A keyframe interval longer than this many frames (a hardware encoder's
# long GOP) is not kept whole for joining clients; they wait for the next.
MAX_GOP = 300
NAL_IDR = 5


def message(kind: str, body: bytes, tag: int = 0, media_time: float = 0.0) -> bytes:
    return _HEADER.pack(_HEADER.size - 4 + len(body), ord(kind), tag, media_time) + body


def end_message(reason: str) -> bytes:
    return message("E", json.dumps({"reason": reason}).encode())


@dataclass(frozen=True, slots=True)
class FeedMessage:
    """One framed frame message, shared by every client."""

    seq: int  # 1, 2, ... per feed
    key: bool  # a keyframe: a client that skipped frames may resume here
    data: bytes
    head: int  # version of the C and I messages this frame needs (see head())


class VideoFeed:
    def __init__(self, stream: str, fps: float) -> None:
        self.stream = stream
        self.fps = float(fps)
        self.duration = max(1, round(fmp4.TIMESCALE / self.fps))  # ticks per frame
        self._lock = threading.Lock()
        self._params: tuple[bytes, bytes, tuple[int, int]] | None = None
        self._head: list[bytes] = []  # the C and I messages for the current parameters
        self._head_version = 0
        self._gop: list[FeedMessage] = []  # frames since the last keyframe
        self._seq = 0
        self._ticks = 0
        self._listeners: list[Callable[[FeedMessage], None]] = []
        self.last_push = 0.0  # monotonic time of the newest frame
        self.frames = 0
        self.bytes = 0
        self.skipped = 0  # packets before the first keyframe (nothing to decode them against)
        self.latency = Window(500)  # capture -> fragment ready, ms
        self.behind_s = 0.0  # capture -> fragment ready of the newest frame, s

    # ------------------------------------------------------------ recorder thread

    def push(self, data: bytes, key: bool, t_capture: float, action: str, size: tuple[int, int]) -> None:
        """One encoded packet of one frame (Annex B)."""
        units = fmp4.split_annexb(data)
        key = key or any(fmp4.nal_type(u) == NAL_IDR for u in units)
        if key:
            self._update_params(units, size)
        if not self._head:
            self.skipped += 1
            return
        ticks = self._ticks
        self._ticks += self.duration
        body = fmp4.fragment(self._seq + 1, ticks, self.duration, fmp4.sample(units), key)
        msg_data = message("F", body, TAG_CODES[tag_for(action)], ticks / fmp4.TIMESCALE)
        now = time.monotonic()
        with self._lock:
            self._seq += 1
            msg = FeedMessage(self._seq, key, msg_data, self._head_version)
            if key or len(self._gop) >= MAX_GOP:
                self._gop = []
            if key or self._gop:
                self._gop.append(msg)
            self.last_push = now
            self.frames += 1
            self.bytes += len(msg_data)
            listeners = list(self._listeners)
        self.behind_s = now - t_capture
        self.latency.add(self.behind_s * 1000.0)
        for fn in listeners:
            fn(msg)

    def _update_params(self, units: list[bytes], size: tuple[int, int]) -> None:
        sps = next((u for u in units if fmp4.nal_type(u) == fmp4.NAL_SPS), None)
        pps = next((u for u in units if fmp4.nal_type(u) == fmp4.NAL_PPS), None)
        if sps is None or pps is None or len(sps) < 4:
            return  # parameter sets come with the first keyframe; keep the last ones
        params = (sps, pps, (int(size[0]), int(size[1])))
        if params == self._params:
            return
        w, h = params[2]
        config = {"codec": fmp4.codec_string(sps), "width": w, "height": h, "fps": self.fps}
        head = [message("C", json.dumps(config).encode()), message("I", fmp4.init_segment(sps, pps, w, h))]
        with self._lock:
            self._params = params
            self._head = head
            self._head_version += 1
            self._gop = []
        if self.frames:
            log.info("%s live feed: new H.264 parameters (%s)", self.stream, config["codec"])

    # ------------------------------------------------------------ server side

    def add_listener(self, fn: Callable[[FeedMessage], None]) -> None:
        """``fn(msg)`` runs on the recorder thread after each frame: hand off only."""
        with self._lock:
            self._listeners.append(fn)

    def remove_listener(self, fn: Callable[[FeedMessage], None]) -> None:
        with self._lock:
            if fn in self._listeners:
                self._listeners.remove(fn)

    def head(self) -> tuple[list[bytes], int]:
        """The C and I messages a client needs before any frame, and their version."""
        with self._lock:
            return list(self._head), self._head_version

    def join(self) -> tuple[list[bytes], int, int]:
        """What a new client needs first (C, I, the frames since the last
        keyframe; empty when there is no keyframe to start from), the
        sequence number of the last of them and the head version."""
        with self._lock:
            if not self._head or not self._gop:
                return [], self._seq, 0
            return [*self._head, *(m.data for m in self._gop)], self._gop[-1].seq, self._head_version

    def unavailable(self, now: float | None = None) -> str | None:
        """Why the feed cannot be watched now, or None when frames flow in time."""
        now = time.monotonic() if now is None else now
        if not self._head or now - self.last_push >= STALE_S:
            return "recording stopped" if self._head else "not recording"
        if self.behind_s >= LATE_S:
            return f"the recorder is {self.behind_s:.1f} s behind the live picture"
        return None

    def available(self, now: float | None = None) -> bool:
        """Frames are flowing in time: recording is on, the parameters are known
        and the encoder keeps up."""
        return self.unavailable(now) is None

    def stats(self) -> dict:
        params = self._params
        why = self.unavailable()
        return {"available": why is None, "why_not": why, "frames": self.frames, "bytes": self.bytes,
                "codec": fmp4.codec_string(params[0]) if params else None,
                "latency_ms": self.latency.summary()}
