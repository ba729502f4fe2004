"""LiveHub: one JPEG per frame and stream, shared by every live client.

The processing thread calls ``publish()`` for every frame. That only puts the
frame into a ``Mailbox`` (latest item, O(1)) and wakes the JPEG thread, so the
live view can never delay processing: when the JPEG thread is busy, older
frames are replaced and counted as dropped.

The JPEG thread encodes a stream ("clean" or "raw") only while a client
watches it or a snapshot was asked for; the bytes are kept as the stream's
single latest ``LiveJpeg``. Clients (the aiohttp server) read that latest
JPEG whenever they are ready for one, so a slow client skips frames and never
builds a queue: memory is one JPEG per stream whatever the number of clients.

The server is told about new JPEGs through listeners registered with
``add_listener``; they run on the JPEG thread and must only hand off (the
server uses ``loop.call_soon_threadsafe``).

Every published frame also feeds the numbers behind the page and /metrics:
a breakup-score ``Timeline`` (ring buffer), per-action counters and
latency/score histograms; each costs a few array or list stores.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from rtclean.config import LiveConfig
from rtclean.frames import HOLD, LOST, PASS, REPAIR_KEEP, Processed
from rtclean.live.metrics import Histogram
from rtclean.live.timeline import Timeline
from rtclean.mailbox import Mailbox
from rtclean.stats import Window

log = logging.getLogger(__name__)

STREAMS = ("clean", "raw")

# Latency bounds in seconds: 25 fps is 40 ms a frame, so the interesting
# range is a few ms (detector only) to a few frames (a stall).
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.015, 0.02, 0.03, 0.04, 0.06, 0.08, 0.12, 0.2, 0.5, 1.0)
SCORE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


@dataclass(frozen=True, slots=True)
class LiveJpeg:
    """One encoded picture of one stream."""

    seq: int  # publish sequence number of the frame (1 = first frame published)
    index: int  # Frame.index
    t: float  # capture time of the frame (monotonic)
    data: bytes  # the JPEG file
    ready: float  # monotonic time the encode finished


def tag_for(action: str) -> str | None:
    """The on-screen tag for a replaced frame, None for a passed one."""
    if action in (PASS, REPAIR_KEEP):  # a kept raw frame is not synthesized
        return None
    if action == HOLD:
        return "HOLD"
    if action == LOST:
        return "LOST"
    return "REPAIRED"  # "repair" and the finer "repair:<kind>"


# Tag (fill, text) colours, BGR: amber for a synthesized frame, red when the
# picture is held or lost.
_TAG_COLOURS = {"REPAIRED": ((0, 176, 255), (0, 0, 0)),
                "HOLD": ((40, 40, 220), (255, 255, 255)),
                "LOST": ((40, 40, 220), (255, 255, 255))}


def draw_tag(image: np.ndarray, text: str) -> np.ndarray:
    """A copy of ``image`` with a small filled label in the top-right corner.

    Always a copy: the caller's array is shared with the recorders.
    """
    out = image.copy()
    h, w = out.shape[:2]
    # Scale with the picture so the tag reads the same on 360p and 1080p.
    scale = max(0.35, h / 576 * 0.6)
    thick = max(1, round(scale * 2))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    pad = max(3, round(6 * scale))
    x1, y0 = w - pad, pad
    x0, y1 = x1 - tw - 2 * pad, y0 + th + base + 2 * pad
    fill, ink = _TAG_COLOURS.get(text, _TAG_COLOURS["REPAIRED"])
    cv2.rectangle(out, (max(0, x0), y0), (x1, y1), fill, cv2.FILLED)
    cv2.putText(out, text, (x0 + pad, y1 - pad - base), cv2.FONT_HERSHEY_SIMPLEX, scale,
                ink, thick, cv2.LINE_AA)
    return out


class _Stream:
    """State of one stream; mutated by the JPEG thread, read by the server."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.latest: LiveJpeg | None = None
        self.clients = 0
        self.encodes = 0
        self.skipped = 0  # frames not encoded because nobody watched
        self.shared = 0  # JPEGs taken from the other stream: the same picture (a passed frame)
        self.encode_ms = Window(500)
        # A snapshot wants a JPEG of at least this frame sequence number; it is
        # satisfied once ``latest.seq`` reaches it, so there is no flag to race on.
        self.snapshot_seq = 0


class LiveHub:
    def __init__(self, cfg: LiveConfig) -> None:
        self.cfg = cfg
        self._box: Mailbox[tuple[int, Processed]] = Mailbox()
        # Separate wake-up so snapshot requests can wake the thread without
        # putting anything into the mailbox.
        self._wake = threading.Event()
        self._lock = threading.Lock()  # client counts and flags
        self._streams = {name: _Stream(name) for name in STREAMS}
        self._listeners: list[Callable[[str], None]] = []
        self._published = 0
        self._last: tuple[int, Processed] | None = None  # newest frame the JPEG thread took
        # The last picture encoded (seq, the array, its JPEG): a passed frame's
        # clean picture is its raw picture, so with both streams watched (the
        # side-by-side view) the second stream reuses the JPEG.
        self._encoded: tuple[int, np.ndarray, bytes] | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        self.latency = Window(1000)  # capture -> clean JPEG ready, ms
        self.encode_params = [cv2.IMWRITE_JPEG_QUALITY, int(cfg.jpeg_quality)]
        # Switched from the page (token-protected); a copy, so the pipeline's
        # config stays what was loaded.
        self.mark_repaired = bool(cfg.mark_repaired)
        self.timeline = Timeline(cfg.timeline_s)
        self.actions: dict[str, int] = {}  # frames per exact action ("pass", "repair:flow", ...)
        self.breakup_frames = 0  # frames the decision called broken
        self.no_signal_frames = 0
        self.frame_latency = Histogram(
            "rtclean_frame_latency_seconds", "capture to processed frame (detect, decide, repair)",
            LATENCY_BUCKETS)
        self.live_latency = Histogram(
            "rtclean_live_latency_seconds", "capture to clean live JPEG ready for the clients", LATENCY_BUCKETS)
        self.score = Histogram("rtclean_breakup_score", "detector breakup score per frame", SCORE_BUCKETS)

    # ------------------------------------------------------------------ producer side

    def publish(self, p: Processed) -> None:
        """Hand a frame to the live view; never waits on a client.

        The clean stream, the live path itself, is encoded right here in the
        caller's thread while someone watches it: a hand-off to the JPEG
        thread cost 4-5 ms at p99 on a busy 2-core machine (the thread must
        be scheduled and get the GIL), one encode costs ~1.2 ms. The raw
        stream and snapshots stay on the JPEG thread.
        """
        self._published += 1  # only the processing thread writes this
        item = (self._published, p)
        self._count(p)
        with self._lock:
            watched = self._streams["clean"].clients > 0
        if watched:
            try:
                self._encode_stream("clean", item)
            except Exception:  # the live view must never take the pipeline down
                log.exception("live view: JPEG encode failed")
        self._box.put(item)
        self._wake.set()

    def _count(self, p: Processed) -> None:
        """Per-frame numbers for the page and /metrics (processing thread only)."""
        score = float(p.result.score)
        breakup, no_signal = bool(p.decision.breakup), bool(p.decision.no_signal)
        self.actions[p.action] = self.actions.get(p.action, 0) + 1
        self.breakup_frames += breakup
        self.no_signal_frames += no_signal
        self.timeline.add(p.frame.t, score, breakup, p.action != PASS, no_signal)
        self.score.observe(score)
        if p.t_done > 0:
            self.frame_latency.observe(max(0.0, p.t_done - p.frame.t))

    def counters(self) -> dict:
        """Frame counters since start (monotonic), for /metrics and the page."""
        return {"published": self._published, "breakup_frames": self.breakup_frames,
                "no_signal_frames": self.no_signal_frames, "actions": dict(self.actions)}

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="rtclean-live-jpeg", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._closed = True
        self._box.close()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    # ------------------------------------------------------------------ consumer side

    def add_listener(self, fn: Callable[[str], None]) -> None:
        """Call ``fn(stream)`` on the JPEG thread after each new JPEG of a stream."""
        with self._lock:
            self._listeners.append(fn)

    def remove_listener(self, fn: Callable[[str], None]) -> None:
        with self._lock:
            if fn in self._listeners:
                self._listeners.remove(fn)

    def attach(self, stream: str) -> None:
        """A client starts watching ``stream``: encode it from now on."""
        with self._lock:
            self._streams[stream].clients += 1
        self._wake.set()  # encode the newest frame at once instead of waiting for the next

    def detach(self, stream: str) -> None:
        with self._lock:
            s = self._streams[stream]
            s.clients = max(0, s.clients - 1)

    def clients(self, stream: str | None = None) -> int:
        with self._lock:
            if stream is not None:
                return self._streams[stream].clients
            return sum(s.clients for s in self._streams.values())

    def latest(self, stream: str) -> LiveJpeg | None:
        """The newest JPEG of ``stream`` (may be older than the newest frame
        when nobody watches that stream)."""
        return self._streams[stream].latest

    def request_snapshot(self, stream: str) -> int:
        """Ask for a JPEG of the newest frame; returns the sequence number of
        the newest frame published so far (0: none yet). Wait for a JPEG with
        at least that sequence number (listeners are called when it is ready)."""
        target = self._published
        with self._lock:
            s = self._streams[stream]
            s.snapshot_seq = max(s.snapshot_seq, target)
        self._wake.set()
        return target

    @property
    def published(self) -> int:
        return self._published

    def stats(self) -> dict:
        streams = {}
        with self._lock:
            for name, s in self._streams.items():
                latest = s.latest
                streams[name] = {
                    "clients": s.clients,
                    "encodes": s.encodes,
                    "skipped": s.skipped,
                    "shared": s.shared,
                    "encode_ms": s.encode_ms.summary(),
                    "last_seq": latest.seq if latest else 0,
                    "last_bytes": len(latest.data) if latest else 0,
                }
        return {
            "published": self._published,
            # frames replaced in the mailbox before the JPEG thread took them
            "dropped": self._box.dropped,
            "clients": sum(s["clients"] for s in streams.values()),
            "streams": streams,
            "latency": self.latency.summary(),
            "mark_repaired": self.mark_repaired,
        }

    # ------------------------------------------------------------------ rendering

    def render_clean(self, p: Processed) -> np.ndarray:
        """The picture of the clean stream: p.clean, tagged on a copy when replaced."""
        if self.mark_repaired:
            tag = tag_for(p.action)
            if tag is not None:
                return draw_tag(p.clean, tag)
        return p.clean

    def encode(self, image: np.ndarray) -> bytes:
        ok, buf = cv2.imencode(".jpg", image, self.encode_params)
        if not ok:  # only for images OpenCV cannot write (wrong dtype/shape): a bug upstream
            raise ValueError(f"JPEG encode failed for an image of shape {image.shape} {image.dtype}")
        return buf.tobytes()

    # ------------------------------------------------------------------ JPEG thread

    def _run(self) -> None:
        while True:
            self._wake.wait(timeout=1.0)
            # Clear before taking: a publish after this point sets it again.
            self._wake.clear()
            item = self._box.get(timeout=0)
            if item is None and self._closed:
                return
            try:
                if item is not None:
                    self._last = item
                    self._encode_frame(item, fresh=True)
                elif self._last is not None:
                    # Woken by a snapshot request or a new client, no new frame:
                    # encode the newest frame for streams that lack it.
                    self._encode_frame(self._last, fresh=False)
            except Exception:  # keep the live view alive; a bug shows in the log
                log.exception("live view: JPEG encode failed")

    def _encode_frame(self, item: tuple[int, Processed], fresh: bool) -> None:
        seq = item[0]
        for name in STREAMS:
            s = self._streams[name]
            with self._lock:
                have_seq = s.latest.seq if s.latest is not None else 0
                wanted = s.clients > 0 or s.snapshot_seq > have_seq
                if fresh and not wanted:
                    s.skipped += 1
            if wanted and have_seq < seq:
                self._encode_stream(name, item)

    def _encode_stream(self, name: str, item: tuple[int, Processed]) -> None:
        """Encode one stream's picture of ``item`` and publish it as the latest,
        unless a newer one got there first (two threads may encode "clean")."""
        seq, p = item
        s = self._streams[name]
        t0 = time.perf_counter()
        image = self.render_clean(p) if name == "clean" else p.frame.image
        with self._lock:
            done = self._encoded
        shared = done is not None and done[0] == seq and done[1] is image
        if shared:
            data = done[2]
        else:
            data = self.encode(image)
            with self._lock:
                self._encoded = (seq, image, data)
        ready = time.monotonic()
        jpeg = LiveJpeg(seq=seq, index=p.frame.index, t=p.frame.t, data=data, ready=ready)
        with self._lock:
            if s.latest is not None and s.latest.seq >= seq:
                return
            s.latest = jpeg
            if shared:
                s.shared += 1
            else:
                s.encodes += 1
                s.encode_ms.add((time.perf_counter() - t0) * 1000.0)
            if name == "clean":
                self.latency.add((ready - p.frame.t) * 1000.0)
                self.live_latency.observe(max(0.0, ready - p.frame.t))
            listeners = list(self._listeners)
        for fn in listeners:
            fn(name)
