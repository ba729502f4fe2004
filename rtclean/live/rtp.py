"""The clean feed as H.264 over RTP/UDP, for ground-control software.

QGroundControl, VLC, ffplay and GStreamer can all show an RTP/H.264 stream;
the session description (SDP) they need is served at ``GET /stream.sdp`` and,
with ``rtp.sdp_file``, written to a file.

The processing thread only calls ``send(p)``: the frame goes into a
latest-only ``Mailbox`` and the call returns, so a slow encoder or a dead
network can never delay the live path; frames the encoder was too slow for
are counted in ``dropped`` (and in /metrics as the ``rtp`` queue's drops).

The encoder thread converts BGR to I420 with OpenCV (BT.601 limited range,
as the recorder does), encodes with libx264 ultrafast/zerolatency (no
B-frames, no look-ahead: each frame's packets leave as soon as it is encoded)
or the Pi's h264_v4l2m2m, and hands the packets to FFmpeg's RTP muxer
(RFC 6184 packetisation: single NAL units and FU-A fragments up to
``rtp.mtu`` bytes) through PyAV. The RTP muxer does not ask for global
headers, so the encoder repeats SPS/PPS in-band before every keyframe: a
receiver that starts late (or loses packets) can decode from the next
keyframe, at most ``rtp.gop`` frames away. Timestamps are capture times on
the 90 kHz RTP clock, so frames the mailbox or ``rtp.fps`` skipped show as
gaps, not as a faster clock.

UDP has no connection: nothing here can tell whether anyone receives. Send
errors (no route to the host, network down) are counted and logged once per
streak, and sending goes on; a name that does not resolve or an encoder that
cannot start fails ``start()`` with one line, and the pipeline carries on
without RTP output.
"""

from __future__ import annotations

import base64
import collections
import ipaddress
import logging
import os
import socket
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2

from rtclean.config import RtpConfig
from rtclean.errors import RtcleanError
from rtclean.frames import Processed
from rtclean.mailbox import MailboxWorker
from rtclean.stats import Window

log = logging.getLogger(__name__)

RTP_CLOCK = 90000  # the RTP clock rate of video payloads (RFC 6184)
PAYLOAD_TYPE = 96  # FFmpeg's RTP muxer uses the first dynamic payload type
# Below the processing thread (which must never wait for this one), above the
# recorders (their queues hold seconds of video; this output is live).
RTP_NICE = 5
SENT_LOG = 512  # frames whose send times are kept, for latency measurements


def resolve(host: str) -> str:
    """``host`` as a numeric address (first IPv4/IPv6 answer); RtcleanError if it does not resolve."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
    except (socket.gaierror, UnicodeError) as e:
        reason = e.strerror if isinstance(e, socket.gaierror) else str(e)
        raise RtcleanError(f"rtp output: rtp.host {host!r} does not resolve ({reason})") from None
    return infos[0][4][0]


def split_annexb(data: bytes) -> list[bytes]:
    """The NAL units of an Annex B byte stream (start codes removed)."""
    out = []
    for chunk in data.split(b"\x00\x00\x01"):
        chunk = chunk.rstrip(b"\x00")  # a 4-byte start code leaves a zero on the previous unit
        if chunk:
            out.append(chunk)
    return out


class RtpOutput(MailboxWorker[tuple[float, Processed]]):
    def __init__(self, cfg: RtpConfig, fps: float, size: tuple[int, int]) -> None:
        """``fps``: the source's frame rate; ``size``: its (width, height)."""
        super().__init__()
        self.cfg = cfg
        self.source_fps = float(fps) if fps and fps > 0 else 25.0
        self.size = (int(size[0]), int(size[1]))
        self.address = ""  # numeric receiver address once started
        self._container = None
        self._stream = None
        self._enc_size = (0, 0)
        self._t0: float | None = None  # capture time of pts 0
        self._last_pts = -1
        self._next_due = -1e18
        self._sps_pps: tuple[bytes, bytes] | None = None
        self._failing = False
        # Counters (written by the encoder thread, read by status()).
        self.frames_in = 0
        self.sent = 0  # frames whose packets all went out
        self.skipped = 0  # left out on purpose to keep to rtp.fps
        self.keyframes = 0
        self.bytes_sent = 0
        self.send_errors = 0  # encoded frames the socket refused (no route, not allowed)
        self.encode_ms = Window(500)
        self.latency = Window(1000)  # hand-off by the pipeline -> last packet handed to the socket, ms
        # (pts, capture time, hand-off time, sent time) of recent frames, for
        # end-to-end measurements by a receiver (bench, tests).
        self.sent_log: collections.deque[tuple[int, float, float, float]] = collections.deque(maxlen=SENT_LOG)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Resolve the receiver, open the UDP socket and the encoder, start
        the thread. RtcleanError (one line) when any of that fails."""
        if self._thread is not None:
            return
        self.address = resolve(self.cfg.host)
        self._open(*self.size)
        if self.cfg.sdp_file:
            path = Path(self.cfg.sdp_file)
            try:
                path.write_text(self.sdp(), encoding="utf-8")
            except OSError as e:
                self._close_container()
                raise RtcleanError(f"rtp output: cannot write rtp.sdp_file {path}: {e.strerror or e}") from None
        self._spawn(self._run, "rtclean-rtp")
        log.info("RTP output: H.264 to %s:%d (%s, %d kbit/s, keyframe every %d frames)",
                 self.cfg.host, self.cfg.port, self.cfg.codec, self.cfg.bitrate_kbps, self.cfg.gop)

    def close(self) -> None:
        super().close()
        self._close_container()

    # ------------------------------------------------------------------ pipeline side

    def send(self, p: Processed) -> None:
        """Hand the newest processed frame to the encoder; never waits."""
        self.frames_in += 1
        self._box.put((time.monotonic(), p))

    # ------------------------------------------------------------------ SDP

    def sdp(self) -> str:
        """The session description a receiver opens (RFC 4566 / RFC 6184)."""
        addr = self.address or self.cfg.host
        ip = ipaddress.ip_address(addr) if _is_ip(addr) else None
        family = "IP6" if ip is not None and ip.version == 6 else "IP4"
        conn = f"c=IN {family} {addr}"
        if ip is not None and ip.is_multicast and family == "IP4":
            conn += "/32"  # IPv4 multicast needs a TTL in the c= line
        fmtp = "packetization-mode=1"
        if self._sps_pps is not None:  # known after the first keyframe; in-band anyway
            sps, pps = self._sps_pps
            fmtp += (f"; profile-level-id={sps[1:4].hex()}; sprop-parameter-sets="
                     f"{base64.b64encode(sps).decode()},{base64.b64encode(pps).decode()}")
        fps = self.cfg.fps or self.source_fps
        return "\r\n".join([
            "v=0", f"o=- 0 0 IN {family} {addr}", "s=rtclean clean feed", conn, "t=0 0",
            f"m=video {self.cfg.port} RTP/AVP {PAYLOAD_TYPE}",
            f"a=rtpmap:{PAYLOAD_TYPE} H264/{RTP_CLOCK}", f"a=fmtp:{PAYLOAD_TYPE} {fmtp}",
            f"a=framerate:{fps:g}", "a=recvonly", ""])

    # ------------------------------------------------------------------ status

    def stats(self) -> dict:
        return {"target": f"{self.cfg.host}:{self.cfg.port}", "codec": self.cfg.codec,
                "frames_in": self.frames_in, "sent": self.sent, "dropped": self.dropped,
                "skipped": self.skipped, "keyframes": self.keyframes, "bytes_sent": self.bytes_sent,
                "send_errors": self.send_errors, "sending": not self._failing,
                "encode_ms": self.encode_ms.summary(), "latency_ms": self.latency.summary()}

    # ------------------------------------------------------------------ encoder thread

    def _open(self, w: int, h: int) -> None:
        """UDP socket (through FFmpeg's rtp:// protocol) and encoder for a w x h picture."""
        cfg = self.cfg
        url = f"rtp://{_url_host(self.address)}:{cfg.port}?pkt_size={cfg.mtu}"
        try:
            container = av.open(url, mode="w", format="rtp")
        except (OSError, av.error.FFmpegError) as e:
            raise RtcleanError(f"rtp output: cannot open {cfg.host}:{cfg.port}: "
                               f"{getattr(e, 'strerror', None) or e}") from None
        enc_w, enc_h = w + w % 2, h + h % 2  # yuv420p needs even sizes: pad one line
        try:
            stream = container.add_stream(cfg.codec, rate=Fraction(self.source_fps).limit_denominator(1001))
            ctx = stream.codec_context
            ctx.width, ctx.height, ctx.pix_fmt = enc_w, enc_h, "yuv420p"
            ctx.time_base = Fraction(1, RTP_CLOCK)
            stream.time_base = Fraction(1, RTP_CLOCK)
            ctx.gop_size = cfg.gop
            ctx.bit_rate = cfg.bitrate_kbps * 1000
            ctx.thread_count = 1  # one core's share at most; 720x576 ultrafast needs ~3 ms a frame
            if cfg.codec == "libx264":
                # VBV of half a second: bounded bursts on the link, still room
                # for a keyframe. scenecut=0 keeps keyframes on the fixed GOP.
                ctx.options = {"preset": "ultrafast", "tune": "zerolatency",
                               "x264-params": (f"keyint={cfg.gop}:min-keyint={cfg.gop}:scenecut=0:"
                                               f"vbv-maxrate={cfg.bitrate_kbps}:"
                                               f"vbv-bufsize={max(1, cfg.bitrate_kbps // 2)}")}
                ctx.color_range = 1
                ctx.colorspace = 6  # SMPTE 170M (BT.601), what the conversion below assumes
            stream.codec_context.open()  # h264_v4l2m2m without its device fails here, not mid-stream
        except (av.error.FFmpegError, ValueError, OSError) as e:
            container.close()
            hint = " (no hardware encoder device here?)" if cfg.codec != "libx264" else ""
            raise RtcleanError(f"rtp output: cannot start encoder {cfg.codec}{hint}: "
                               f"{getattr(e, 'strerror', None) or e}") from None
        self._container, self._stream, self._enc_size = container, stream, (enc_w, enc_h)
        self.size = (w, h)

    def _close_container(self) -> None:
        c, self._container = self._container, None
        if c is not None:
            try:
                c.close()
            except (OSError, av.error.FFmpegError) as e:  # the socket may be gone already
                log.debug("rtp output close: %s", e)

    def _run(self) -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), RTP_NICE)
        except (AttributeError, OSError) as e:
            log.debug("cannot lower the RTP encoder's priority: %s", e)
        while True:
            item = self._box.get(timeout=1.0)
            if item is None:
                if self._closed:
                    return
                continue
            try:
                self._encode(*item)
            except RtcleanError as e:  # e.g. a size change the encoder cannot reopen for
                log.warning("%s; RTP output stopped", e)
                return
            except Exception:  # a bug: keep the pipeline alive, show it in the log
                log.exception("rtp output: encoding failed; RTP output stopped")
                return

    def _due(self, t: float) -> bool:
        """Keep to rtp.fps by leaving frames out evenly (capture times, not counts)."""
        if not self.cfg.fps or self.cfg.fps >= self.source_fps:
            return True
        period = 1.0 / self.cfg.fps
        if t < self._next_due - 0.25 / self.source_fps:  # a quarter frame of jitter allowed
            return False
        # Step the schedule; after a gap (no signal) start it again from now.
        self._next_due = self._next_due + period if t - self._next_due < period else t + period
        return True

    def _encode(self, t_put: float, p: Processed) -> None:
        if not self._due(p.frame.t):
            self.skipped += 1
            return
        image = p.clean
        h, w = image.shape[:2]
        if (w, h) != self.size:
            log.info("rtp output: picture is now %dx%d, restarting the stream", w, h)
            self._close_container()
            self._open(w, h)
        t0 = time.perf_counter()
        if (w, h) != self._enc_size:
            image = cv2.copyMakeBorder(image, 0, self._enc_size[1] - h, 0, self._enc_size[0] - w,
                                       cv2.BORDER_REPLICATE)
        frame = av.VideoFrame.from_ndarray(cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420), format="yuv420p")
        if self._t0 is None:
            self._t0 = p.frame.t
        pts = max(round((p.frame.t - self._t0) * RTP_CLOCK), self._last_pts + 1)
        self._last_pts = pts
        frame.pts = pts
        frame.time_base = self._stream.codec_context.time_base
        try:
            packets = self._stream.encode(frame)
        except av.error.FFmpegError as e:
            raise RtcleanError(f"rtp output: encoder {self.cfg.codec} failed: {e}") from None
        self.encode_ms.add((time.perf_counter() - t0) * 1000.0)
        ok = True
        for packet in packets:
            size = packet.size
            key = packet.is_keyframe
            if key and self._sps_pps is None:
                self._remember_parameter_sets(bytes(packet))
            try:
                self._container.mux(packet)
            except (OSError, av.error.FFmpegError) as e:
                self.send_errors += 1
                ok = False
                if not self._failing:
                    self._failing = True
                    log.warning("rtp output: cannot send to %s:%d: %s (still trying)", self.cfg.host,
                                self.cfg.port, getattr(e, "strerror", None) or e)
                continue
            if self._failing:
                self._failing = False
                log.info("rtp output: sending to %s:%d again", self.cfg.host, self.cfg.port)
            self.bytes_sent += size
            self.keyframes += key
        if not ok:
            return
        now = time.monotonic()
        self.sent += 1  # every packet of the frame was handed to the socket
        self.latency.add((now - t_put) * 1000.0)
        self.sent_log.append((pts, p.frame.t, t_put, now))

    def _remember_parameter_sets(self, data: bytes) -> None:
        """SPS and PPS of the first keyframe, for the SDP's sprop-parameter-sets."""
        nals = {n[0] & 0x1F: n for n in split_annexb(data)}
        if 7 in nals and 8 in nals:
            self._sps_pps = (nals[7], nals[8])
            if self.cfg.sdp_file:  # rewrite with the parameter sets (best effort)
                try:
                    Path(self.cfg.sdp_file).write_text(self.sdp(), encoding="utf-8")
                except OSError as e:
                    log.warning("rtp output: cannot update %s: %s", self.cfg.sdp_file, e.strerror or e)


def _is_ip(s: str) -> bool:
    try:
        ipaddress.ip_address(s)
    except ValueError:
        return False
    return True


def _url_host(addr: str) -> str:
    return f"[{addr}]" if ":" in addr else addr
