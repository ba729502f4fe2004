"""The per-frame path and the live pipeline around it.

``FrameProcessor.process`` is the whole per-frame path, in one place:

    detect → no-signal check → decide (hysteresis) → repair

``LivePipeline`` wires it between a capture thread and the consumers:

    capture thread ──► input queue (2) ──► process (this thread) ──► LiveHub (latest only)
                                                         ├──► extra consumers (``consumers``)
                                                         └──► Dvr: auto start/stop, retention,
                                                               raw + clean Recorder (bounded,
                                                               drop-oldest), MP4 remux

Nothing downstream can block capture: live sources hand frames over through a
drop-oldest queue of two frames. Two, not one: a capture thread that was
descheduled for a moment delivers two frames back to back, and a latest-only
mailbox would lose the first from both recordings; under sustained overload
the queue still adds at most one frame of latency, and the frames it drops are
counted. Non-live sources (a file read as fast as possible) use a small
blocking queue instead, because there waiting costs nothing and losing frames
would.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import signal
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from rtclean.config import Config
from rtclean.detect import make_detector
from rtclean.detect.base import Detector
from rtclean.detect.decide import Decider
from rtclean.detect.nosignal import NoSignalCheck
from rtclean.detect.repeat import RepeatedFrame
from rtclean.errors import RtcleanError, SourceError
from rtclean.frames import LOST, PASS, Decision, DetectResult, Frame, Processed
from rtclean.mailbox import DropOldestQueue
from rtclean.record.library import RecordingLibrary
from rtclean.repair.overlay import slate
from rtclean.repair.repairer import Repairer
from rtclean.service.notify import Notifier
from rtclean.sources.base import Source
from rtclean.stats import Rate, Window

log = logging.getLogger(__name__)

PACKAGE_ROOT = Path(__file__).resolve().parent
INBOX_FRAMES = 2  # see the module docstring


class FrameProcessor:
    """detect → decide → repair for one stream of frames (single thread)."""

    def __init__(self, cfg: Config, fps: float, detector: Detector | None = None) -> None:
        if detector is None:
            dcfg = cfg.detect
            if cfg.source.kind == "demo" and cfg.source.demo.channel == "image" and dcfg.chroma_clicks:
                # rendered scenery never went through a camera or a composite
                # decoder: its hard single-line edges are not clicks (detect/classical.py)
                log.info("detector: chroma and flat-ground clicks off for the image-channel demo (rendered)")
                dcfg = dataclasses.replace(dcfg, chroma_clicks=False)
            detector = make_detector(dcfg, PACKAGE_ROOT.parent)
        self.detector = detector
        self.nosignal = NoSignalCheck(cfg.detect.frozen_frames)
        self.repeat = RepeatedFrame()
        self.decider = Decider(cfg.detect, fps)
        self.repairer = Repairer(cfg.repair, fps)
        self._detect_cfg, self._fps = cfg.detect, fps
        self.stage = {"detect": Window(), "repair": Window(), "process": Window()}

    def process(self, frame: Frame) -> Processed:
        t0 = time.perf_counter()
        # a frame that repeats the last one pixel for pixel keeps its verdict
        # (a DVR's 25 -> 30 fps repeats; rtclean/detect/repeat.py)
        result: DetectResult | None = self.repeat.verdict(frame.image)
        if result is None:
            result = self.detector.detect(frame.image)
            self.repeat.remember(frame.image, result)
        result.no_signal = self.nosignal.check(frame.image)
        t1 = time.perf_counter()
        decision: Decision = self.decider.update(result, frame.t)
        clean, action = self.repairer.process(frame, decision, result)
        t2 = time.perf_counter()
        self.stage["detect"].add((t1 - t0) * 1e3)
        if action != PASS:
            self.stage["repair"].add((t2 - t1) * 1e3)
        self.stage["process"].add((t2 - t0) * 1e3)
        return Processed(frame, clean, result, decision, action, t_done=time.monotonic())

    def reset(self) -> None:
        self.detector.reset()
        self.nosignal.reset()
        self.repeat.reset()
        self.repairer.reset()

    def warm_up(self, size: tuple[int, int]) -> None:
        """Run every stage once on synthetic frames, then forget them: first
        calls allocate buffers and build OpenCV objects (tens of ms), which
        would otherwise land on the first captured frames."""
        w, h = size
        ramp = np.tile(np.linspace(0, 255, w, dtype=np.float32).astype(np.uint8)[None, :, None], (h, 1, 3))
        for i, (image, broken) in enumerate([(ramp, False), (np.roll(ramp, 2, axis=1), False),
                                             (np.roll(ramp, 4, axis=1), True)]):
            frame = Frame(index=i, t=i / 25.0, image=image)
            self.detector.detect(image)
            self.nosignal.check(image)
            self.repairer.process(frame, Decision(breakup=broken, run_ms=40.0 * broken), DetectResult(0.0))
        self.reset()
        self.decider = Decider(self._detect_cfg, self._fps)


class _Counters:
    def __init__(self) -> None:
        self.frames_in = 0
        self.frames_out = 0
        self.breakup_recent: list[bool] = []
        self.actions = {"repair": 0, "hold": 0, "lost": 0}
        self.reconnects = 0

    def count(self, p: Processed) -> None:
        self.frames_out += 1
        self.breakup_recent.append(p.decision.breakup)
        if len(self.breakup_recent) > 250:
            del self.breakup_recent[:50]
        if p.action != PASS:
            key = "repair" if p.action.startswith("repair") else p.action
            self.actions[key] = self.actions.get(key, 0) + 1


class LivePipeline:
    """Capture → process → live view + recorders, until the source ends,
    ``duration_s`` passes or ``stop()`` is called (SIGINT/SIGTERM)."""

    def __init__(self, cfg: Config, source: Source, duration_s: float | None = None,
                 notifier: Notifier | None = None, *, wait_for_source: bool = False,
                 free_bytes=None, recorder_cls=None) -> None:
        """``wait_for_source``: a live source that cannot be opened at start
        (capture card not plugged in yet) is retried with backoff while the
        live view shows NO SIGNAL, instead of failing (the service does this;
        an interactive run fails with one line). ``free_bytes`` (directory ->
        bytes) and ``recorder_cls`` replace the DVR's free-space probe and
        Recorder class: tests give a small virtual disk or a stalling encoder."""
        self.cfg = cfg
        self.source = source
        self.duration_s = duration_s
        self.wait_for_source = wait_for_source
        self.notifier = notifier or Notifier()
        self._stop = threading.Event()
        self._capture_error: BaseException | None = None
        self._capture_done = threading.Event()
        self._last_frame_t = time.monotonic()
        self._last_progress = time.monotonic()
        self.counters = _Counters()
        self.latency = Window()  # capture → processed (clean picture ready for consumers)
        self.rate_in = Rate()
        self.rate_out = Rate()
        self.processor: FrameProcessor | None = None
        self.hub = None
        self.server = None
        self.dvr = None  # rtclean.record.dvr.Dvr when recording is enabled
        self._dvr_options = {k: v for k, v in (("free_bytes", free_bytes), ("recorder_cls", recorder_cls))
                             if v is not None}
        # The recordings browser works even with recording disabled.
        self.library = RecordingLibrary(cfg.record.dir)
        # Extra per-frame consumers (e.g. a local display): called with each
        # Processed frame on the processing thread; they must not block.
        self.consumers: list = []
        self.display = None  # rtclean.display.Display when display.enabled
        self.rtp = None  # rtclean.live.rtp.RtpOutput when rtp.enabled
        self.feeds: dict = {}  # stream -> rtclean.live.feed.VideoFeed (H.264 for browsers)
        self._inbox: DropOldestQueue[Frame] | queue.Queue
        self._t_start = time.monotonic()
        self.state = "starting"

    # ------------------------------------------------------------------ set-up

    def _open(self) -> None:
        try:
            self.source.open()  # SourceError: one clear line, exit 1
        except SourceError as e:
            if not (self.wait_for_source and self.source.live):
                raise
            # The capture thread's reconnect loop keeps trying (read() of an
            # unopened source fails); meanwhile the web view shows NO SIGNAL.
            log.warning("%s; waiting for it", e)
        fps = self.source.fps or 25.0
        w, h = self.source.size if all(self.source.size) else self._nominal_size()
        self._size = (w, h)
        log.info("source %s open: %dx%d at %.3f fps", self.source.name, w, h, fps)
        cv2.setNumThreads(self.cfg.threads)
        self.processor = FrameProcessor(self.cfg, fps)
        self.processor.warm_up((w, h))
        log.info("detector: %s", describe_detector(self.processor.detector))
        self._inbox = DropOldestQueue(INBOX_FRAMES) if self.source.live else queue.Queue(maxsize=4)
        self.feeds = self._make_feeds(fps)
        if self.cfg.record.enabled and (self.cfg.record.raw or self.cfg.record.clean):
            self.dvr = self._make_dvr(fps, (w, h))
            self.library = self.dvr.library
        if self.cfg.live.enabled:
            from rtclean.live.hub import LiveHub
            from rtclean.live.server import LiveServer

            self.hub = LiveHub(self.cfg.live)
            self.hub.start()
            # control=self: the web controls use set_recording() and library.
            self.server = LiveServer(self.cfg.live, self.hub, self.status, self.healthy, control=self,
                                     feeds=self.feeds)
            self.server.start()  # logs "live view at <url>"
        if self.cfg.display.enabled and self.display is None:
            self._open_display()
        if self.cfg.rtp.enabled and self.rtp is None:
            self._open_rtp(fps, (w, h))

    def _make_feeds(self, fps: float) -> dict:
        """The live view's H.264 feeds (live/feed.py): the recorders' packets,
        re-wrapped for browsers, per recorded stream. Not the clean stream
        when its recorder looks ahead: that stream is late by design."""
        c = self.cfg
        if not (c.live.enabled and c.live.video == "auto" and c.record.enabled):
            return {}
        from rtclean.live.feed import VideoFeed

        streams = [s for s in ("clean", "raw") if getattr(c.record, s)
                   and not (s == "clean" and c.record.lookahead_ms > 0)]
        return {s: VideoFeed(s, fps) for s in streams}

    def _make_dvr(self, fps: float, size: tuple[int, int]):
        """The DVR; its recorders get the repair settings, which the clean
        stream's look-ahead (record.lookahead_ms) re-repairs with."""
        import functools

        from rtclean.record.dvr import Dvr
        from rtclean.record.recorder import Recorder

        options = dict(self._dvr_options)
        options["recorder_cls"] = functools.partial(options.get("recorder_cls", Recorder), repair=self.cfg.repair)
        return Dvr(self.cfg.record, fps, size, feeds=self.feeds, **options)

    def _open_display(self) -> None:
        """The HDMI output is optional: without pygame or a screen the
        service still captures, records and serves the web view."""
        from rtclean.display import Display

        display = Display(self.cfg.display, status=self.status)
        if self._attach(display, display.show, "local display"):
            self.display = display

    def _open_rtp(self, fps: float, size: tuple[int, int]) -> None:
        """RTP output is optional like the display: a receiver name that does
        not resolve or a missing encoder is one warning, not a failed start."""
        from rtclean.live.rtp import RtpOutput

        rtp = RtpOutput(self.cfg.rtp, fps, size)
        if self._attach(rtp, rtp.send, "RTP output"):
            self.rtp = rtp

    def _attach(self, output, consume, what: str) -> bool:
        """Start an optional output and feed it every processed frame. A
        failed start is one warning line: the service still captures,
        records and serves the web view."""
        try:
            output.start()
        except RtcleanError as e:
            log.warning("%s; %s off", e, what)
            return False
        self.consumers.append(consume)  # latest-only mailboxes: never block
        return True

    def _nominal_size(self) -> tuple[int, int]:
        """The configured capture size, for a source not open yet."""
        sub = getattr(self.cfg.source, self.cfg.source.kind, None)
        return (getattr(sub, "width", 0) or 720, getattr(sub, "height", 0) or 576)

    def _resize(self, w: int, h: int) -> None:
        """The source opened late with another size than configured: rebuild
        what depends on it (nothing was recorded at the old size)."""
        log.warning("source delivers %dx%d, not the expected %dx%d: adapting", w, h, *self._size)
        self._size = (w, h)
        self.processor.warm_up((w, h))
        if self.dvr is not None:
            self.dvr.close()
            self.dvr = self._make_dvr(self.source.fps or 25.0, (w, h))
            self.library = self.dvr.library

    # ------------------------------------------------------------------ threads

    def _capture(self) -> None:
        """Read the source as fast as it delivers; never wait on consumers
        (live sources). Reconnect a live source that fails mid-stream."""
        index = 0
        backoff = 0.5
        t_end = None if self.duration_s is None else time.monotonic() + self.duration_s
        try:
            while not self._stop.is_set():
                if t_end is not None and time.monotonic() >= t_end:
                    break
                try:
                    item = self.source.read()
                except SourceError as e:
                    if not self.source.live:
                        raise
                    log.warning("%s; reconnecting in %.1f s", e, backoff)
                    self._reconnect(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                if item is None:
                    if getattr(self.source, "truncation", ""):
                        log.warning("%s", self.source.truncation)
                    break
                backoff = 0.5
                image, pts = item
                frame = Frame(index=index, t=time.monotonic(), image=image, pts=pts)
                index += 1
                self.counters.frames_in += 1
                self.rate_in.tick(frame.t)
                self._last_frame_t = frame.t
                if isinstance(self._inbox, DropOldestQueue):
                    self._inbox.put(frame)
                else:
                    while not self._stop.is_set():
                        try:
                            self._inbox.put(frame, timeout=0.2)
                            break
                        except queue.Full:
                            continue
        except BaseException as e:  # re-raised in the main thread
            self._capture_error = e
        finally:
            self._capture_done.set()
            if isinstance(self._inbox, DropOldestQueue):
                self._inbox.close()

    def _reconnect(self, wait: float) -> None:
        self.counters.reconnects += 1
        self._last_progress = time.monotonic()
        try:
            self.source.close()
        except Exception as e:  # a dead device may fail to close too
            log.debug("close after failure: %s", e)
        if self._stop.wait(wait):
            return
        try:
            self.source.open()
            log.info("source %s reopened", self.source.name)
        except SourceError as e:
            log.warning("%s", e)

    def _next_frame(self, timeout: float) -> Frame | None:
        if isinstance(self._inbox, DropOldestQueue):
            return self._inbox.get(timeout)
        try:
            return self._inbox.get(timeout=timeout)
        except queue.Empty:
            return None

    # ------------------------------------------------------------------ main loop

    def run(self) -> dict:
        """Run until done; returns the final status. Worker errors are re-raised here."""
        self._open()
        capture = threading.Thread(target=self._capture, name="capture", daemon=True)
        self._t_start = time.monotonic()
        capture.start()
        self.state = "running"
        self.notifier.ready(f"capturing from {self.source.name}")
        last_notify = 0.0
        stall_s = self.cfg.source.stall_s
        try:
            while True:
                frame = self._next_frame(timeout=min(stall_s, 0.5))
                now = time.monotonic()
                if frame is None:
                    if self._capture_done.is_set() and self._inbox_empty():
                        break
                    if now - self._last_frame_t >= stall_s:
                        self._no_signal()
                else:
                    self._handle(frame)
                if now - last_notify >= 1.0:
                    last_notify = now
                    if self.dvr is not None:
                        self.dvr.tick(now)
                    self._heartbeat()
        except KeyboardInterrupt:
            log.info("interrupted")
        finally:
            self._stop.set()
            # Short: a capture thread stuck in a hung driver is a daemon and
            # must not eat the 5 s that SIGTERM allows for finishing files.
            capture.join(timeout=1)
            self.state = "stopped"
            self.notifier.stopping()
            self._shutdown()
        if self._capture_error is not None:
            raise self._capture_error
        return self.status()

    def _inbox_empty(self) -> bool:
        if isinstance(self._inbox, DropOldestQueue):
            return len(self._inbox) == 0
        return self._inbox.empty()

    def _handle(self, frame: Frame) -> None:
        """One frame through the per-frame path and out to every consumer."""
        h, w = frame.image.shape[:2]
        if (w, h) != self._size:
            self._resize(w, h)
        p = self.processor.process(frame)
        self.state = "no_signal" if p.decision.no_signal else "running"
        if self.dvr is not None:
            self.dvr.frame(p)
        if self.hub is not None:
            self.hub.publish(p)
        for consume in self.consumers:  # extra consumers beside the hub (local display, ...)
            consume(p)
        self.latency.add((p.t_done - frame.t) * 1e3)
        self.counters.count(p)
        self.rate_out.tick(p.t_done)
        self._last_progress = p.t_done

    def _no_signal(self) -> None:
        """No frame for stall_s: the live view says so (nothing is recorded)."""
        self.state = "no_signal"
        if self.dvr is not None:
            self.dvr.gap(time.monotonic())
        if self.hub is None:
            return
        w, h = self.source.size if all(self.source.size) else (720, 576)
        image = slate(w, h)
        t = time.monotonic()
        frame = Frame(index=-1, t=t, image=image, pts=0.0)
        self.hub.publish(Processed(frame, image, DetectResult(score=1.0, no_signal="none"),
                                   Decision(breakup=True, no_signal=True), LOST, t_done=t))

    def _heartbeat(self) -> None:
        # WATCHDOG=1 only while frames (or reconnect attempts) make progress:
        # a wedged pipeline stops petting the watchdog and systemd restarts it.
        if time.monotonic() - self._last_progress < max(2.0, self.cfg.source.stall_s * 2):
            self.notifier.watchdog()
        s = self.status()
        rec = {"recording": "recording", "off": "not recording", "waiting": "waiting for signal to record",
               "disk_full": "DISK FULL, not recording", "error": "recording error"}[s["recording"]["state"]]
        self.notifier.status(f"{s['state']}, {s['fps']['in']:.1f} fps in, "
                             f"breakup {s['breakup_rate'] * 100:.0f}%, {rec}")

    def _shutdown(self) -> None:
        if self.dvr is not None:
            self.dvr.close()  # finish and fsync open segments first: SIGTERM allows 5 s
        if self.display is not None:
            self.display.close()
        if self.rtp is not None:
            self.rtp.close()
        if self.server is not None:
            self.server.stop()
        if self.hub is not None:
            self.hub.close()
        try:
            self.source.close()
        except Exception as e:
            log.debug("source close: %s", e)

    def stop(self) -> None:
        self._stop.set()

    def set_recording(self, on: bool) -> None:
        """Start or stop recording by hand (thread-safe: the web server calls it)."""
        if self.dvr is None:
            raise RtcleanError("recording is disabled (record.enabled: false)" if self.processor
                               else "the pipeline is not running yet")
        self.dvr.set_manual(on)

    def install_signal_handlers(self) -> None:
        def handler(signum, _frame):
            log.info("signal %d: stopping", signum)
            self._stop.set()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    # ------------------------------------------------------------------ status

    def healthy(self) -> bool:
        return time.monotonic() - self._last_progress < max(2.0, self.cfg.source.stall_s * 2)

    def status(self) -> dict:
        c = self.counters
        recent = c.breakup_recent[-100:]
        lat = self.latency.summary()
        dvr = self.dvr.status() if self.dvr is not None else None
        rec_status = dvr["streams"] if dvr else {}
        drops = {"input": int(getattr(getattr(self, "_inbox", None), "dropped", 0)),
                 # live: frames replaced in the hub's mailbox before a JPEG was made
                 "live": int(self.hub.stats()["dropped"]) if self.hub is not None else 0}
        for k in ("raw", "clean"):
            drops[k] = rec_status[k]["dropped"] if k in rec_status else 0
        if self.rtp is not None:  # frames the RTP encoder was too slow for
            drops["rtp"] = self.rtp.dropped
        proc = self.processor
        return {
            "state": self.state,
            "source": {"kind": self.source.name, "size": list(self.source.size), "fps": self.source.fps},
            "detector": describe_detector(proc.detector) if proc else None,
            "frames": {"in": c.frames_in, "out": c.frames_out},
            "fps": {"in": self.rate_in.per_second(), "out": self.rate_out.per_second()},
            "breakup_rate": round(sum(recent) / len(recent), 3) if recent else 0.0,
            "repairs": dict(c.actions),
            "reconnects": c.reconnects,
            "drops": drops,
            "latency": {"p50_ms": lat["median_ms"], "p99_ms": lat["p99_ms"]},
            "stages": {k: w.summary() for k, w in proc.stage.items()} if proc else {},
            "recording": {
                "active": bool(dvr) and dvr["state"] == "recording" and self.state != "stopped",
                "dir": str(Path(self.cfg.record.dir).resolve()),
                "raw": rec_status.get("raw", {}).get("current"),
                "clean": rec_status.get("clean", {}).get("current"),
                "streams": rec_status,
                "state": dvr["state"] if dvr else "off",
                "manual": dvr["manual"] if dvr else False,
                "free_mb": dvr["free_mb"] if dvr else None,
                "error": dvr["error"] if dvr else None,
                "deleted": dvr["deleted"] if dvr else 0,
            },
            "uptime_s": round(time.monotonic() - self._t_start, 1),
            "rtp": self.rtp.stats() if self.rtp is not None else None,
        }


def describe_detector(detector: Detector) -> str:
    runtime = getattr(detector, "runtime", None)
    precision = getattr(detector, "precision", None)
    if not runtime:
        return detector.name
    return f"{detector.name} ({runtime}, {precision})" if precision else f"{detector.name} ({runtime})"
