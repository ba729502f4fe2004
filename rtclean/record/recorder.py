"""One DVR stream (raw or clean): a bounded queue and an encoder thread.

``submit()`` only puts the frame into a ``DropOldestQueue`` bounded in seconds
of video, so a slow encoder or disk loses the oldest queued frames (counted)
and never delays capture or the live view. Every frame that leaves the queue
is written. Segment boundaries come from the shared ``SegmentClock`` (the key
passed with each frame); each segment is a new MPEG-TS file with a new encoder,
so it starts with a keyframe and stands alone.

``finish()`` closes the current segment without closing the recorder (a
signal dropout, recording stopped by hand or by a full disk): it travels
through the same queue, so every frame submitted before it lands in the old
segment. ``on_finished(path)`` is called from the encoder thread with each
finished (fsynced) segment file, e.g. to remux it for browsers.

The clean stream may be delayed by ``record.lookahead_ms`` on this thread
(lookahead.py): short breakup runs are then written interpolated from both
sides instead of the live extrapolation; ``finish()`` and ``close()`` write
what the window holds first.

If the encoder thread fails (disk full, directory gone, bad frame), the error
is kept in ``error``, logged once, and the recorder stops accepting frames:
later submits are counted as dropped, and the pipeline reports the error.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from rtclean.config import RecordConfig, RepairConfig
from rtclean.errors import RtcleanError
from rtclean.frames import PASS, Processed
from rtclean.mailbox import DropOldestQueue
from rtclean.record.lookahead import CleanLookahead
from rtclean.record.segments import SegmentKey
from rtclean.record.sidecar import Sidecar
from rtclean.record.writer import VideoWriter
from rtclean.stats import Window

if TYPE_CHECKING:
    from rtclean.live.feed import VideoFeed

log = logging.getLogger(__name__)

STREAMS = ("raw", "clean")

# One x264 thread per recorder: with two recorders that is two of the Pi 4's
# four cores, leaving two for capture, detection, repair and the live view.
# At 720x576 one ultrafast thread encodes a frame in ~3 ms on x86, a wide
# margin under the 40 ms of a PAL frame for the Pi's slower cores (not yet
# measured on a Pi: if it falls short, use codec h264_v4l2m2m), and
# zerolatency's sliced threads would only trade CPU for a latency the DVR
# does not need. PyAV releases the GIL inside the encoder, so the thread
# does not stall the live path.
ENCODER_THREADS = 1


class Recorder:
    def __init__(self, stream: str, cfg: RecordConfig, fps: float,
                 size: tuple[int, int], on_finished: Callable[[Path], None] | None = None,
                 repair: RepairConfig | None = None, feed: VideoFeed | None = None) -> None:
        """``repair``: the repair settings the look-ahead re-repairs with
        (clean stream, ``cfg.lookahead_ms`` > 0); defaults without it.
        ``feed``: the live view's H.264 feed, given every encoded packet."""
        if stream not in STREAMS:
            raise ValueError(f"stream must be one of {STREAMS}, got {stream!r}")
        if not fps or fps <= 0:
            raise RtcleanError(f"{stream} recorder: frame rate must be positive, got {fps}")
        self.stream = stream
        self.cfg = cfg
        self.fps = float(fps)
        self.size = (int(size[0]), int(size[1]))
        self._queue: DropOldestQueue[tuple[Processed, SegmentKey]] = DropOldestQueue(
            max(1, round(cfg.queue_s * self.fps)))
        self._thread: threading.Thread | None = None
        self._writer: VideoWriter | None = None
        self._sidecar: Sidecar | None = None
        self._key: SegmentKey | None = None
        self._segments: list[str] = []
        self._current: str | None = None
        self._discarded = 0  # queued frames thrown away after an error
        self.frames_written = 0
        self.error: str | None = None
        self.encode_ms = Window(500)
        self.on_finished = on_finished
        self.feed = feed
        # (capture time, action) of frames handed to the encoder whose packet
        # has not come out yet: H.264 without B-frames gives one packet per
        # frame, in order.
        self._pending: deque[tuple[float, str]] = deque(maxlen=64)
        self._feed_failed = False
        self.lookahead = (CleanLookahead(cfg.lookahead_ms / 1000.0, repair)
                          if stream == "clean" and cfg.lookahead_ms > 0 else None)

    # ------------------------------------------------------------ producer side

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name=f"rtclean-record-{self.stream}",
                                        daemon=True)
        self._thread.start()

    def submit(self, p: Processed, key: SegmentKey) -> None:
        """Queue one frame; never blocks. After an error the (closed) queue
        counts the frame as dropped instead."""
        self._queue.put((p, key))

    def finish(self) -> None:
        """Close the current segment once the frames queued before this call
        are written. Frames after it must carry a new segment key (a finished
        file is never reopened). Never blocks."""
        self._queue.put((None, None))

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, finish and fsync the current segment."""
        self._queue.close()
        if self._thread is None:
            return
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("%s recorder: still writing after %.1f s; %d frames queued",
                        self.stream, timeout, len(self._queue))

    @property
    def accepting(self) -> bool:
        return not self._queue.closed

    def stats(self) -> dict:
        return {
            "stream": self.stream,
            "frames_written": self.frames_written,
            "dropped": self._queue.dropped + self._discarded,
            "segments": list(self._segments),
            "current": self._current,
            "error": self.error,
            "queue": len(self._queue),
            "queue_max": self._queue.max_items,
            "high_water": self._queue.high_water,
            "encode_ms": self.encode_ms.summary(),
            "lookahead": None if self.lookahead is None else {
                "held": self.lookahead.held, "reinterpolated": self.lookahead.reinterpolated},
        }

    # ------------------------------------------------------------ encoder thread

    def _run(self) -> None:
        _lower_priority()
        try:
            while (item := self._queue.get()) is not None:
                if item[0] is None:  # finish() marker
                    self._release(self.lookahead.flush() if self.lookahead else [])
                    self._finish_segment()
                elif self.lookahead is not None:
                    self._release(self.lookahead.push(*item))
                else:
                    self._write(*item)
            if self.lookahead is not None:  # closed: write what the window holds
                self._release(self.lookahead.flush())
        except Exception as e:  # noqa: BLE001 - any failure must be kept and shown
            self.error = str(e) if isinstance(e, RtcleanError) else f"{type(e).__name__}: {e}"
            log.error("%s recorder stopped: %s", self.stream, self.error)
            self._queue.close()  # from now on submit() counts frames as dropped
            self._discarded += 1  # the frame that failed
            if self.lookahead is not None:  # frames the window held are lost too
                self._discarded += self.lookahead.held
            while (left := self._queue.get(timeout=0)) is not None:
                self._discarded += left[0] is not None  # finish() markers are not frames
        finally:
            try:
                self._finish_segment()
            except Exception as e:  # noqa: BLE001 - keep the first error, report this one
                if self.error is None:
                    self.error = str(e) if isinstance(e, RtcleanError) else f"{type(e).__name__}: {e}"
                    log.error("%s recorder: could not finish the segment: %s", self.stream, self.error)
                else:
                    log.warning("%s recorder: could not finish the segment either: %s", self.stream, e)

    def _release(self, items: list[tuple[Processed, SegmentKey]]) -> None:
        for p, key in items:
            self._write(p, key)

    def _write(self, p: Processed, key: SegmentKey) -> None:
        if key != self._key:
            self._finish_segment()
            self._open_segment(key)
        image = p.frame.image if self.stream == "raw" else p.clean
        # Time from the segment's first capture, shared by raw and clean, so
        # drops show as gaps and the two files line up frame for frame.
        pts = max(0.0, p.frame.t - key.start)
        t0 = time.perf_counter()
        if self.feed is not None:
            self._pending.append((p.frame.t, p.action))
        self._writer.write(image, pts)
        self.encode_ms.add((time.perf_counter() - t0) * 1e3)
        if self._sidecar is not None:
            self._sidecar.write(p, pts)
        self.frames_written += 1

    def _open_writer(self, path: Path) -> VideoWriter:
        c = self.cfg
        self._pending.clear()  # a new encoder: nothing of the old one is pending
        return VideoWriter(path, self.size[0], self.size[1], self.fps, codec=c.codec,
                           crf=c.crf, preset=c.preset, bitrate_kbps=c.bitrate_kbps,
                           threads=ENCODER_THREADS, overwrite=False,
                           on_packet=self._on_packet if self.feed is not None else None)

    def _on_packet(self, data: bytes, pts_s: float, key: bool) -> None:
        """An encoded packet (encoder thread): on to the live view's feed.
        The live view must never stop the recording: a failure is logged once."""
        t, action = self._pending.popleft() if self._pending else (time.monotonic(), PASS)
        try:
            w, h = self.size
            self.feed.push(data, key, t, action, (w + w % 2, h + h % 2))
        except Exception:  # noqa: BLE001
            if not self._feed_failed:
                self._feed_failed = True
                log.exception("%s recorder: live H.264 feed failed; recording goes on", self.stream)

    def _open_segment(self, key: SegmentKey) -> None:
        path = Path(f"{key.base}.{self.stream}.ts")
        self._key = key
        self._writer = self._open_writer(path)
        self._current = str(path)
        if self.stream == "clean" and self.cfg.sidecar:
            self._sidecar = Sidecar(f"{key.base}.clean.jsonl")
        log.info("%s recorder: new segment %s", self.stream, path)

    def _finish_segment(self) -> None:
        writer, sidecar = self._writer, self._sidecar
        self._writer = self._sidecar = None
        try:
            if sidecar is not None:
                sidecar.close()
        finally:
            if writer is not None:
                try:
                    writer.close()  # flushes the encoder and fsyncs the file
                    self._segments.append(str(writer.path))
                    # Called before _current is cleared, so the segment is
                    # never seen as neither being written nor queued for the
                    # hook (retention must not delete it in between).
                    if self.on_finished is not None:
                        try:
                            self.on_finished(writer.path)
                        except Exception as e:  # noqa: BLE001 - a follow-up job must not stop recording
                            log.warning("%s recorder: after-segment hook failed: %s", self.stream, e)
                finally:
                    self._current = None
                    self._key = None  # a finished segment is never reopened


# Encoders yield the CPU to the live path: their queue holds seconds of video,
# the live view has one frame period. Measured on the 2-core development
# machine (pre-rendered 720x576 frames at 25 fps, both streams recorded): live
# latency median 3.6-3.9 ms with nice +10 against 4.3-5.7 ms without.
ENCODER_NICE = 10


def _lower_priority() -> None:
    """Raise this thread's nice value (Linux schedules threads individually;
    raising niceness needs no privilege). Best effort elsewhere."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), ENCODER_NICE)
    except (AttributeError, OSError) as e:
        log.debug("cannot lower encoder thread priority: %s", e)
