"""The DVR as the ground station runs it: when to record, where, and what to
do when the disk fills or the signal drops.

``Dvr`` sits on the processing thread (``frame``, ``gap``, ``tick`` are
called from there and only queue work) and owns:

- the shared ``SegmentClock`` and the raw/clean ``Recorder`` threads;
- ``AutoTrigger``: recording starts after ``start_after_s`` of signal and
  stops after ``stop_after_s`` of signal loss (``record.auto``);
- manual start/stop (``set_manual``, from the web server thread);
- a ``Retention`` thread keeping ``min_free_mb`` free, whose ``disk_full``
  flag stops recording until space returns;
- a ``Remuxer`` thread turning finished segments into MP4 (``record.mp4``).

States (``status()["state"]``)::

    off        not recording, and nothing will start it by itself
    waiting    automatic mode, waiting for a steady signal
    recording  segments are being written
    disk_full  recording wanted, but min_free_mb cannot be kept
    error      recording wanted, but the recorders failed (retried)

A capture gap (no frame for ``source.stall_s``: card unplugged, reconnect)
closes the open segment at once; when frames return, recording resumes in
a new segment, so every file is a clean, self-contained piece.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from rtclean.config import RecordConfig
from rtclean.errors import RtcleanError
from rtclean.frames import Processed
from rtclean.record.library import RecordingLibrary
from rtclean.record.recorder import STREAMS, Recorder
from rtclean.record.remux import Remuxer
from rtclean.record.retention import FreeBytes, Retention, disk_free_bytes
from rtclean.record.segments import SegmentClock

log = logging.getLogger(__name__)

RETRY_S = 5.0  # after a recorder failure, wait this long before trying again
CLOSE_DEADLINE_S = 2.5  # of the 5 s a SIGTERM allows: draining the queues and finishing the files
REMUX_DEADLINE_S = 1.5  # ... then remuxing (what is left stays TS, remuxed at the next start)


class AutoTrigger:
    """Signal-present / signal-lost debouncing on capture times (monotonic s)."""

    def __init__(self, start_after_s: float, stop_after_s: float) -> None:
        self.start_after_s = start_after_s
        self.stop_after_s = stop_after_s
        self.active = False
        self._signal_since: float | None = None
        self._lost_since: float | None = None

    def update(self, t: float, signal: bool) -> bool:
        if signal:
            self._lost_since = None
            if self._signal_since is None:
                self._signal_since = t
            if not self.active and t - self._signal_since >= self.start_after_s:
                self.active = True
        else:
            self._signal_since = None
            if self._lost_since is None:
                self._lost_since = t
            if self.active and t - self._lost_since >= self.stop_after_s:
                self.active = False
        return self.active


class Dvr:
    def __init__(self, cfg: RecordConfig, fps: float, size: tuple[int, int], *,
                 free_bytes: FreeBytes = disk_free_bytes,
                 recorder_cls: type[Recorder] = Recorder,
                 retention_interval_s: float = 2.0, feeds: dict | None = None) -> None:
        """``feeds``: stream -> the live view's H.264 feed (live/feed.py) that
        the stream's recorder hands its encoded packets to."""
        self.cfg = cfg
        self.fps, self.size = fps, size
        self.directory = Path(cfg.dir)
        self.segments = SegmentClock(self.directory, cfg.segment_s)  # creates and probes the directory
        self.library = RecordingLibrary(self.directory, active=self.active_names)
        self.retention = Retention(self.library, cfg.min_free_mb, free_bytes, retention_interval_s)
        self.remuxer = Remuxer() if cfg.mp4 else None
        self.auto = AutoTrigger(cfg.start_after_s, cfg.stop_after_s) if cfg.auto else None
        self._recorder_cls = recorder_cls
        self.feeds = dict(feeds or {})
        self._streams = [s for s in STREAMS if getattr(cfg, s)]
        self.recorders: dict[str, Recorder] = {}
        self._lock = threading.Lock()
        self._manual: bool | None = None  # None: follow the automatic trigger
        self._in_segment = False
        self._closed = False
        self.state = "off"
        self.error: str | None = None
        self._error_at = 0.0
        self._retired = {s: {"frames_written": 0, "dropped": 0, "segments": []} for s in STREAMS}
        if self.remuxer is not None:
            self._remux_leftovers()
        self.retention.start()
        self._update_state(time.monotonic())

    # ------------------------------------------------------------ control

    def set_manual(self, on: bool) -> None:
        """Start (True) or stop (False) recording by hand; thread-safe.

        A manual start records until a manual stop, signal or not. A manual
        stop in automatic mode holds until the signal is lost for
        ``stop_after_s`` (the flight is over); the next flight records again.
        """
        with self._lock:
            self._manual = bool(on) if (on or self.auto is not None) else None
        log.info("recording %s by hand", "started" if on else "stopped")

    @property
    def manual(self) -> bool:
        return self._manual is not None

    def wanted(self) -> bool:
        with self._lock:
            manual = self._manual
        if manual is not None:
            return manual
        return self.auto is not None and self.auto.active

    # ------------------------------------------------------------ per frame (processing thread)

    def frame(self, p: Processed) -> None:
        t = p.frame.t
        if self.auto is not None:
            was = self.auto.active
            if not self.auto.update(t, not p.decision.no_signal) and was:
                self._auto_stopped()
        self._update_state(t)
        if self.state != "recording":
            return
        if not self._in_segment:
            self.segments.restart()
            self._in_segment = True
        key = self.segments.key(t)
        for rec in self.recorders.values():
            rec.submit(p, key)

    def gap(self, now: float) -> None:
        """No frame for stall_s: close the segment now (it resumes in a new one)."""
        if self.auto is not None:
            was = self.auto.active
            if not self.auto.update(now, False) and was:
                self._auto_stopped()
        if self._in_segment:
            log.info("capture gap: closing the current segment")
            self._end_segment()
        self._update_state(now)

    def tick(self, now: float) -> None:
        """Once a second: recorder failures, disk full, and state changes."""
        for name, rec in list(self.recorders.items()):
            if rec.error is not None:
                self.error = f"{name} recorder: {rec.error}"
                self._error_at = now
                self._retire_recorders()
                self.retention.poke()  # a write error is often a full disk
                break
        self._update_state(now)

    # ------------------------------------------------------------ state

    def _auto_stopped(self) -> None:
        with self._lock:
            if self._manual is False:  # a manual stop lasts until this flight ends
                self._manual = None

    def _update_state(self, now: float) -> None:
        want = self.wanted() and not self._closed
        if not want:
            new = "waiting" if self.auto is not None and not self._closed else "off"
        elif self.retention.disk_full:
            new = "disk_full"
        elif self.error is not None and now - self._error_at < RETRY_S:
            new = "error"
        else:
            new = "recording"
        if new == "recording" and not self.recorders and not self._start_recorders():
            new = "error"  # could not even start: retried after RETRY_S
        if new != "recording" and self._in_segment:
            self._end_segment()
        if new != self.state:
            log.info("recording: %s -> %s", self.state, new)
            if new == "recording":
                self.error = None
        self.state = new

    def _start_recorders(self) -> bool:
        try:
            # Not recreated: a vanished medium (USB disk pulled) must be an
            # error, not a new folder filling the SD card.
            if not self.directory.is_dir():
                raise RtcleanError(f"recording directory {self.directory} is missing (medium removed?)")
            for s in self._streams:
                extra = {"feed": self.feeds[s]} if s in self.feeds else {}
                rec = self._recorder_cls(s, self.cfg, self.fps, self.size, on_finished=self._finished, **extra)
                rec.start()
                self.recorders[s] = rec
            return True
        except Exception as e:  # noqa: BLE001 - shown as the error state, retried
            self.error = str(e)
            self._error_at = time.monotonic()
            log.warning("recording cannot start: %s", e)
            self._retire_recorders()
            return False

    def _retire_recorders(self) -> None:
        """Drop failed recorders (their threads have ended or are ending);
        their counts live on in the totals."""
        for name, rec in self.recorders.items():
            rec.close(timeout=0.5)
            st = rec.stats()
            r = self._retired[name]
            r["frames_written"] += st["frames_written"]
            r["dropped"] += st["dropped"]
            r["segments"] += st["segments"]
        self.recorders = {}
        self._in_segment = False

    def _end_segment(self) -> None:
        for rec in self.recorders.values():
            rec.finish()
        self._in_segment = False
        self.retention.poke()

    def _finished(self, path: Path) -> None:
        """A segment file is finished and fsynced (encoder thread)."""
        if self.remuxer is not None and path.suffix == ".ts":
            self.remuxer.submit(path)
        self.retention.poke()

    def _remux_leftovers(self) -> None:
        """TS segments from an earlier run (power cut, or no time at shutdown)."""
        for ts in sorted(self.directory.glob("*.ts")):
            mp4 = ts.with_suffix(".mp4")
            if mp4.exists():  # remuxed, but the TS was not yet deleted
                ts.unlink(missing_ok=True)
            else:
                self.remuxer.submit(ts)

    # ------------------------------------------------------------ reporting

    def active_names(self) -> set[str]:
        """Base names being written or waiting to be remuxed: never deleted."""
        names = set()
        for rec in list(self.recorders.values()):
            cur = rec.stats()["current"]
            if cur:
                names.add(Path(cur).name.split(".", 1)[0])
        key = self.segments.current
        if self._in_segment and key is not None:
            names.add(Path(key.base).name)
        if self.remuxer is not None:
            names |= self.remuxer.pending()
        return names

    def stream_stats(self) -> dict[str, dict]:
        out = {}
        for s in self._streams:
            r = self._retired[s]
            st = self.recorders[s].stats() if s in self.recorders else {
                "stream": s, "frames_written": 0, "dropped": 0, "segments": [], "current": None,
                "error": None, "queue": 0, "queue_max": 0, "high_water": 0, "encode_ms": {}}
            st = dict(st)
            st["frames_written"] += r["frames_written"]
            st["dropped"] += r["dropped"]
            st["segments"] = r["segments"] + st["segments"]
            out[s] = st
        return out

    def status(self) -> dict:
        streams = self.stream_stats()
        return {
            "state": self.state,
            "manual": self.manual,
            "free_mb": self.retention.free_mb,
            "error": self.error,
            "raw": streams.get("raw", {}).get("current"),
            "clean": streams.get("clean", {}).get("current"),
            "streams": streams,
            "deleted": len(self.retention.deleted),
            "remuxed": self.remuxer.done if self.remuxer is not None else 0,
        }

    # ------------------------------------------------------------ shutdown

    def close(self) -> None:
        """Finish and fsync open segments, then remux what time allows."""
        self._closed = True
        self.retention.close()
        # The encoders drain in parallel (each thread empties its own queue);
        # one shared deadline keeps a stuck disk within SIGTERM's 5 s.
        deadline = time.monotonic() + CLOSE_DEADLINE_S
        for rec in self.recorders.values():
            rec.close(timeout=max(0.1, deadline - time.monotonic()))
        self._in_segment = False
        self.state = "off"
        if self.remuxer is not None:
            self.remuxer.close(REMUX_DEADLINE_S)
