"""Finished MPEG-TS segments remuxed to MP4 for browsers, without re-encoding.

MPEG-TS is what survives a power cut (see writer.py), but browsers do not
play it in a <video> element; MP4 with the index up front ("faststart") they
do. Remuxing copies the H.264 packets into a new container: no decoding, no
encoding, a few tens of milliseconds for a one-minute segment.

The MP4 is written as ``<name>.mp4.part``, fsynced, renamed into place, and
only then is the TS deleted, so a crash at any point leaves one complete
playable copy (a stale ``.part`` is ignored and replaced next time).
The ``Remuxer`` thread runs jobs at a lowered priority; at shutdown it gets
a deadline, and whatever is left stays TS and is remuxed at the next start.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from pathlib import Path

import av

from rtclean.errors import RtcleanError
from rtclean.record.writer import fsync_path

log = logging.getLogger(__name__)


def mp4_path(ts: Path) -> Path:
    return ts.with_suffix(".mp4")


def remux_to_mp4(ts: str | Path, delete_ts: bool = True) -> Path:
    """Copy the video packets of ``ts`` into ``<same name>.mp4``; returns it.

    A TS cut short by a crash remuxes up to its last whole packet.
    """
    ts = Path(ts)
    out = mp4_path(ts)
    part = out.with_name(out.name + ".part")
    part.unlink(missing_ok=True)
    packets = 0
    try:
        with av.open(str(ts), format="mpegts") as src:
            if not src.streams.video:
                raise RtcleanError(f"{ts}: no video stream to remux")
            vin = src.streams.video[0]
            with av.open(str(part), mode="w", format="mp4",
                         options={"movflags": "+faststart"}) as dst:
                vout = dst.add_stream_from_template(vin)
                try:
                    for pkt in src.demux(vin):
                        if pkt.dts is None or pkt.size == 0:  # demuxer's end-of-stream flush
                            continue
                        pkt.stream = vout
                        dst.mux(pkt)
                        packets += 1
                except av.error.InvalidDataError as e:  # a crash-cut tail: keep what came before
                    log.debug("%s: stopped at a damaged packet: %s", ts, e)
        if packets == 0:
            raise RtcleanError(f"{ts}: no complete frame to remux")
        fsync_path(part)
        part.replace(out)
        fsync_path(out)  # the rename (directory entry) is durable too
    except (OSError, av.error.FFmpegError) as e:
        part.unlink(missing_ok=True)
        raise RtcleanError(f"{ts}: cannot remux to MP4: {getattr(e, 'strerror', None) or e}") from None
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    if delete_ts:
        ts.unlink(missing_ok=True)
    return out


class Remuxer:
    """One background thread remuxing finished segments in order."""

    def __init__(self) -> None:
        self._jobs: queue.Queue[Path | None] = queue.Queue()
        self._pending: set[str] = set()  # base names queued or being remuxed
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="rtclean-remux", daemon=True)
        self._stop_by: float | None = None
        self.done = 0
        self.failed = 0
        self._thread.start()

    def submit(self, ts: Path) -> None:
        with self._lock:
            self._pending.add(ts.name.split(".", 1)[0])
        self._jobs.put(ts)

    def pending(self) -> set[str]:
        with self._lock:
            return set(self._pending)

    def close(self, deadline_s: float) -> None:
        """Finish queued jobs for at most ``deadline_s``; the rest stay TS."""
        self._stop_by = time.monotonic() + deadline_s
        self._jobs.put(None)
        self._thread.join(max(0.0, deadline_s) + 0.5)

    def _run(self) -> None:
        from rtclean.record.recorder import _lower_priority

        _lower_priority()
        while (ts := self._jobs.get()) is not None:
            try:
                if self._stop_by is not None and time.monotonic() > self._stop_by:
                    continue  # out of time at shutdown: the next start remuxes it
                if ts.exists():
                    remux_to_mp4(ts)
                    self.done += 1
            except RtcleanError as e:
                self.failed += 1
                log.warning("%s (kept as MPEG-TS)", e)
            finally:
                with self._lock:
                    base = ts.name.split(".", 1)[0]
                    # The other stream of the same segment may still be queued.
                    if not any(j is not None and j.name.startswith(base + ".")
                               for j in list(self._jobs.queue)):
                        self._pending.discard(base)
