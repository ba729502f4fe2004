"""A minimal RTP/H.264 receiver (RFC 6184) for measuring the RTP output.

Ground-control software (QGroundControl through GStreamer's rtph264depay)
treats a packet with the RTP marker bit as the end of a picture and decodes
at once. FFmpeg's own RTP demuxer (ffplay, ``av.open(sdp)``) instead waits
for the next picture's first packet before it releases a frame, one frame
period later. This receiver does what the marker-bit receivers do, so the
bench can measure what rtclean adds (encode, packetise, send, receive,
decode) without FFmpeg's extra frame; the tests check the stream with
FFmpeg's demuxer too.

Single NAL unit packets, STAP-A aggregates and FU-A fragments are understood;
a picture with a sequence-number gap is dropped (counted in ``lost``) and the
decoder resynchronises at the next keyframe.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from dataclasses import dataclass

import av
import numpy as np

START = b"\x00\x00\x00\x01"


@dataclass(frozen=True, slots=True)
class Received:
    rtp_ts: int  # RTP timestamp of the picture (90 kHz, random base chosen by the sender)
    t_done: float  # monotonic time the picture was decoded
    image: np.ndarray | None  # BGR, when the receiver keeps pictures


def depacketize(payload: bytes, fu: bytearray) -> bytes:
    """Annex B bytes carried by one RTP payload; FU-A fragments are gathered
    in ``fu`` and returned whole with the last fragment."""
    if not payload:
        return b""
    kind = payload[0] & 0x1F
    if 1 <= kind <= 23:
        return START + payload
    if kind == 24:  # STAP-A: [header][size16][nal][size16][nal]...
        out, i = bytearray(), 1
        while i + 2 <= len(payload):
            (n,) = struct.unpack_from("!H", payload, i)
            out += START + payload[i + 2:i + 2 + n]
            i += 2 + n
        return bytes(out)
    if kind == 28 and len(payload) >= 2:  # FU-A: indicator, header (S, E, type), fragment
        start, end = payload[1] & 0x80, payload[1] & 0x40
        if start:
            fu.clear()
            fu += START + bytes([(payload[0] & 0xE0) | (payload[1] & 0x1F)])
        elif not fu:
            return b""  # a fragment without its start: lost
        fu += payload[2:]
        if end:
            nal = bytes(fu)
            fu.clear()
            return nal
    return b""


class RtpReceiver:
    """Listen on ``host:port``, decode every complete picture; call ``close()``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, keep_images: bool = False) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind((host, port))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.keep_images = keep_images
        self.frames: list[Received] = []
        self.packets = 0
        self.lost = 0  # pictures dropped for a gap in sequence numbers
        self.first_ts: int | None = None
        self._decoder = av.CodecContext.create("h264", "r")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rtp-receiver", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()

    def _run(self) -> None:
        au, fu = bytearray(), bytearray()
        expect_seq: int | None = None
        broken = False
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if len(data) < 12 or data[0] >> 6 != 2:
                continue
            self.packets += 1
            cc, marker = data[0] & 0x0F, data[1] & 0x80
            seq, ts = struct.unpack_from("!HI", data, 2)
            if self.first_ts is None:
                self.first_ts = ts
            if expect_seq is not None and seq != expect_seq:
                broken = True
            expect_seq = (seq + 1) & 0xFFFF
            start = 12 + 4 * cc
            if data[0] & 0x10:  # header extension: skip it
                (words,) = struct.unpack_from("!H", data, start + 2)
                start += 4 + 4 * words
            au += depacketize(data[start:], fu)
            if not marker:
                continue
            if broken:
                self.lost += 1
            elif au:
                for frame in self._decoder.decode(av.Packet(bytes(au))):
                    image = frame.to_ndarray(format="bgr24") if self.keep_images else None
                    self.frames.append(Received(ts, time.monotonic(), image))
            au.clear()
            fu.clear()
            broken = False

    def wait_frames(self, n: int, timeout: float) -> bool:
        """Wait until ``n`` pictures were decoded (False on timeout)."""
        end = time.monotonic() + timeout
        while len(self.frames) < n and time.monotonic() < end:
            time.sleep(0.02)
        return len(self.frames) >= n
