"""The live view's HTTP server: aiohttp on its own thread and event loop.

Endpoints (DESIGN.md "HTTP (live view server)"):

    GET /                      the live page (static/index.html)
    GET /static/...            the page's CSS and JS
    GET /stream/clean.mjpg     multipart/x-mixed-replace JPEG stream, also raw.mjpg
    GET /stream/clean.fmp4     the recorder's H.264 as framed fMP4 messages (feed.py), also
                               raw.fmp4; 404 when live.video is mjpeg, 503 while not recording
    GET /snapshot/clean.jpg    the newest frame as one JPEG (503 before the first), also raw.jpg
    GET /api/status            status() + {"live": hub.stats()} as JSON
    GET /metrics               the same numbers in Prometheus text format
    GET /healthz               200 {"ok": true} while healthy(), else 503
    GET /stream.sdp            the RTP output's session description (404 when RTP output is off)
    GET /recordings            the recordings browser (static/recordings.html)
    GET /api/timeline          breakup scores of the last minutes, binned (?seconds=&bins=)
    POST /api/record           {"on": bool}: start/stop recording (token)
    POST /api/tag              {"on": bool}: the repaired-frame tag on the live view (token)
    POST /api/auth             200 when the token is right (the page's unlock check)
    recordings: see recordings_api.py; the token rules: see auth.py

Every stream client gets the hub's single latest JPEG, so clients share one
encode per frame. New JPEGs are announced from the hub's thread with
call_soon_threadsafe; the loop then hands the JPEG, framed once as a multipart
part, to every client of the stream in one pass (``_fan_out``): one
transport write per client, no coroutine woken per client and frame. A client
whose previous picture is still queued in user space (its socket buffer is
full) skips the new one, so a slow client's backlog is bounded by its socket
buffer, never a frame queue, and it is dropped when it stays blocked for
``stall_s``. Snapshots wait on a per-stream asyncio.Event, replaced and set on
every new JPEG.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
import socket
import threading
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from rtclean.config import LiveConfig
from rtclean.errors import RtcleanError, listen_error
from rtclean.live import auth, metrics, system
from rtclean.live.auth import json_error
from rtclean.live.feed import FeedMessage, end_message
from rtclean.live.hub import STREAMS, LiveHub, LiveJpeg
from rtclean.live.recordings_api import RecordingsApi, read_json

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
BOUNDARY = "rtcleanframe"
# Kernel send buffer of a stream connection. The default autotunes up to 4 MB
# on Linux, which for a client on a slow link means seconds of old frames
# queued in the kernel; 128 KiB (the kernel doubles it) holds a few 720x576
# JPEGs and still covers the bandwidth-delay product of a LAN or Wi-Fi link.
STREAM_SNDBUF = 128 * 1024
FEED_TYPE = "application/vnd.rtclean.fmp4-feed"  # framed messages, not a plain MP4 (feed.py)
FEED_CHECK_S = 0.5  # how often an H.264 client's handler checks that the feed still runs
NO_CACHE = {"Cache-Control": "no-store, no-cache, must-revalidate", "Pragma": "no-cache"}


def _jsonable(v):
    """Status values as JSON: numpy scalars to Python, NaN/inf to null, paths to str."""
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (bool, int, str)) or v is None:
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if hasattr(v, "item") and getattr(v, "shape", None) == ():  # numpy scalar
        return _jsonable(v.item())
    return str(v)


class _Viewer:
    """One MJPEG client: where its parts go and how far it got."""

    __slots__ = ("transport", "chunked", "done", "seq", "blocked_since", "remote")

    def __init__(self, transport: asyncio.Transport, chunked: bool, done: asyncio.Future, remote) -> None:
        self.transport = transport
        self.chunked = chunked  # HTTP/1.1 streams are chunked: each part is framed as one chunk
        self.done = done  # resolved when the stream ends (client gone, stalled, server stopping)
        self.seq = 0  # sequence number of the last JPEG written
        self.blocked_since: float | None = None  # loop time a part was first skipped for a full buffer
        self.remote = remote

    def end(self) -> None:
        if not self.done.done():
            self.done.set_result(None)


class _FeedViewer(_Viewer):
    """One H.264 client: frames must arrive in order, so after a skipped one
    it waits for the next keyframe."""

    __slots__ = ("need_key", "head")

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.need_key = False
        self.head = 0  # version of the C/I messages this client has


class LiveServer:
    def __init__(self, cfg: LiveConfig, hub: LiveHub, status: Callable[[], dict],
                 healthy: Callable[[], bool], *, control=None, stall_s: float = 20.0,
                 feeds: dict | None = None) -> None:
        """``control``: the LivePipeline (``set_recording(on)``, ``library``);
        None disables the recording controls (503) and the recordings list.
        ``stall_s``: a stream client whose socket accepted nothing for this
        long is disconnected, so a dead peer cannot hold a client slot."""
        self.cfg = cfg
        self.hub = hub
        self.status = status
        self.healthy = healthy
        self.control = control
        self.cpu = system.CpuUse()
        self._bytes_seen: dict[str, int] = {}  # recording file -> largest size seen (bytes counter)
        # (stream, chunked) -> its latest JPEG and that JPEG framed as a multipart part
        self._parts: dict[tuple[str, bool], tuple[LiveJpeg, bytes]] = {}
        self._viewers: dict[str, set[_Viewer]] = {name: set() for name in STREAMS}
        # stream -> VideoFeed (live/feed.py), and each feed's H.264 clients
        self.feeds = dict(feeds or {})
        self._feed_viewers: dict[str, set[_FeedViewer]] = {name: set() for name in STREAMS}
        self._feed_listeners = {name: functools.partial(self._on_feed, name) for name in self.feeds}
        self.stall_s = stall_s
        self.idle_check_s = 5.0  # how often an idle stream checks that its client is still there
        self.url = ""
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._events: dict[str, asyncio.Event] = {}
        self._stopping = False
        self._stream_clients = 0  # touched only on the event loop
        self._started = threading.Event()
        self._start_error: BaseException | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start listening; returns once the socket accepts connections."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._thread_main, name="rtclean-live-http", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._start_error is not None:
            self._thread.join(timeout=2)
            self._thread = None
            err = self._start_error
            if isinstance(err, OSError):
                raise listen_error("live view", self.cfg.host, self.cfg.port, err) from None
            raise RtcleanError(f"live view: cannot start: {err}") from None
        self.hub.add_listener(self._on_jpeg)
        for name, fn in self._feed_listeners.items():
            self.feeds[name].add_listener(fn)
        log.info("live view at %s", self.url)

    def stop(self) -> None:
        """Close the socket and end open streams (within about two seconds)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        self.hub.remove_listener(self._on_jpeg)
        for name, fn in self._feed_listeners.items():
            self.feeds[name].remove_listener(fn)
        try:
            fut = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
            fut.result(timeout=5)
        except Exception:  # the loop died already: nothing left to close
            log.warning("live view: unclean shutdown", exc_info=True)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        self._thread = None

    def _thread_main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._listen())
        except BaseException as e:  # reported to start() on the caller's thread
            self._start_error = e
            if self._runner is not None:
                loop.run_until_complete(self._runner.cleanup())
            loop.close()
            self._started.set()
            return
        self._started.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    async def _listen(self) -> None:
        self._events = {name: asyncio.Event() for name in STREAMS}
        app = web.Application()
        app.router.add_get("/", self._index)
        # No HEAD for streams: a HEAD response has no body to stream into.
        app.router.add_get("/stream/{name:clean|raw}.mjpg", self._stream, allow_head=False)
        app.router.add_get("/stream/{name:clean|raw}.fmp4", self._video, allow_head=False)
        app.router.add_get("/snapshot/{name:clean|raw}.jpg", self._snapshot)
        app.router.add_get("/api/status", self._status)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/stream.sdp", self._sdp)
        app.router.add_get("/recordings", self._recordings_page)
        app.router.add_get("/api/timeline", self._timeline)
        app.router.add_post("/api/record", self._record)
        app.router.add_post("/api/tag", self._tag)
        app.router.add_post("/api/auth", self._auth)
        RecordingsApi(lambda: getattr(self.control, "library", None), self._refuse).add_routes(app)
        app.router.add_static("/static/", STATIC_DIR, follow_symlinks=False)
        # Short shutdown timeout: a stream stuck writing to a dead client is
        # cancelled instead of holding stop() for aiohttp's default 60 s.
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.cfg.host, self.cfg.port)
        await site.start()
        addr = self._runner.addresses[0]
        host, self.port = addr[0], addr[1]
        self.url = f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    async def _shutdown(self) -> None:
        self._stopping = True
        for name in STREAMS:  # wake snapshot waiters and end every stream
            self._wake(name)
            for v in (*self._viewers[name], *self._feed_viewers[name]):
                v.end()
        if self._runner is not None:
            await self._runner.cleanup()

    # ------------------------------------------------------------------ hub -> loop

    def _on_jpeg(self, stream: str) -> None:
        """Hub listener, runs on the JPEG thread: only schedule the wake-up."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self._wake, stream)
        except RuntimeError:  # loop closed between the check and the call
            pass

    def _wake(self, stream: str) -> None:
        # Replace, then set: waiters hold the old event; later waiters get a fresh one.
        ev = self._events[stream]
        self._events[stream] = asyncio.Event()
        ev.set()
        if self._viewers[stream]:
            self._fan_out(stream)

    def _fan_out(self, stream: str) -> None:
        """Write the stream's latest JPEG to every client that lacks it (loop thread).

        Plain transport writes: the part's bytes are shared, a client costs one
        write call. A client whose earlier part still sits in user space (the
        kernel buffer is full: it reads slower than we send) is skipped this
        time and gets a newer picture once it drained; blocked for longer than
        ``stall_s`` it is disconnected, so a dead peer cannot hold a slot.
        """
        jpeg = self.hub.latest(stream)
        if jpeg is None or self._stopping:
            return
        now = self._loop.time()
        for v in tuple(self._viewers[stream]):
            if v.seq >= jpeg.seq:
                continue
            t = v.transport
            if t.is_closing():
                v.end()
                continue
            if self._full(v, now, stream, "stream"):
                continue
            t.write(self._part(stream, jpeg, v.chunked))
            v.seq = jpeg.seq

    def _on_feed(self, stream: str, msg: FeedMessage) -> None:
        """Feed listener, runs on the recorder thread: hand off if anyone watches."""
        loop = self._loop
        if not self._feed_viewers[stream] or loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self._feed_send, stream, msg)
        except RuntimeError:  # loop closed between the check and the call
            pass

    def _feed_send(self, stream: str, msg: FeedMessage) -> None:
        """Write one frame message to every H.264 client of ``stream`` (loop thread).

        Unlike a JPEG, a frame cannot be skipped alone: a client whose socket
        is full (or that missed a frame) skips to the next keyframe, so a slow
        phone loses the rest of a second of video, never the live edge.
        """
        if self._stopping:
            return
        now = self._loop.time()
        for v in tuple(self._feed_viewers[stream]):
            if v.seq >= msg.seq:
                continue  # it got this frame when it joined
            t = v.transport
            if t.is_closing():
                v.end()
                continue
            if self._full(v, now, stream, "H.264"):
                v.need_key = True  # this frame is lost to it: resume at a keyframe
                continue
            if msg.seq != v.seq + 1:
                v.need_key = True
            if v.need_key and not msg.key:
                continue
            v.need_key = False
            pieces = [msg.data]
            if v.head != msg.head:  # first frame, or the encoder's parameters changed
                head, v.head = self.feeds[stream].head()
                pieces = [*head, msg.data]
            self._write_chunk(t, v.chunked, b"".join(pieces))
            v.seq = msg.seq

    def _full(self, v: _Viewer, now: float, stream: str, what: str) -> bool:
        """True while the client's previous write still waits in user space
        (its socket buffer is full: it reads slower than we send); a client
        blocked for longer than ``stall_s`` is disconnected, so a dead peer
        cannot hold a slot."""
        if not v.transport.get_write_buffer_size():
            v.blocked_since = None
            return False
        if v.blocked_since is None:
            v.blocked_since = now
        elif now - v.blocked_since > self.stall_s:
            log.info("live view: dropping %s %s client %s: it read nothing for %.0f s",
                     stream, what, v.remote, self.stall_s)
            v.transport.abort()
            v.end()
        return True

    @staticmethod
    def _write_chunk(transport: asyncio.Transport, chunked: bool, data: bytes) -> None:
        transport.write(b"".join((f"{len(data):X}\r\n".encode(), data, b"\r\n")) if chunked else data)

    async def _newer(self, stream: str, after_seq: int, timeout: float | None = None) -> LiveJpeg | None:
        """The stream's latest JPEG once its seq is above ``after_seq``; None on stop/timeout."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not self._stopping:
            jpeg = self.hub.latest(stream)
            if jpeg is not None and jpeg.seq > after_seq:
                return jpeg
            # No await between the check above and taking the event: a wake-up
            # scheduled after the check sets this very event.
            ev = self._events[stream]
            wait = 5.0 if deadline is None else deadline - loop.time()
            if wait <= 0:
                return None
            try:
                # asyncio.timeout, not wait_for: wait_for wraps the wait in a new Task.
                async with asyncio.timeout(min(wait, 5.0)):
                    await ev.wait()
            except TimeoutError:
                pass
        return None

    # ------------------------------------------------------------------ handlers

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC_DIR / "index.html", headers=NO_CACHE)

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if self._stream_clients >= self.cfg.max_clients:
            return web.Response(status=503, text=f"too many live clients (max {self.cfg.max_clients})\n",
                                headers={"Retry-After": "5"})
        resp = web.StreamResponse(headers={
            "Content-Type": f"multipart/x-mixed-replace; boundary={BOUNDARY}", **NO_CACHE})
        sock = request.transport.get_extra_info("socket") if request.transport else None
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, STREAM_SNDBUF)
        self._stream_clients += 1
        self.hub.attach(name)
        viewer = None
        if request.version >= (1, 1):
            # Chunked, as aiohttp would choose anyway; asked for explicitly so
            # resp.chunked says how _fan_out must frame the parts it writes.
            resp.enable_chunked_encoding()
        try:
            await resp.prepare(request)  # a StreamResponse sends its headers here
            transport = request.transport
            if transport is None or transport.is_closing():
                return resp
            viewer = _Viewer(transport, resp.chunked, asyncio.get_running_loop().create_future(), request.remote)
            self._viewers[name].add(viewer)
            self._fan_out(name)  # the latest JPEG at once, if there is one
            while not viewer.done.done():
                # A bounded wait so a client that left while no frames came
                # (no signal) frees its slot instead of lingering.
                await asyncio.wait((viewer.done,), timeout=self.idle_check_s)
                if transport.is_closing():
                    break
            if self._stopping and not transport.is_closing():
                await resp.write(f"--{BOUNDARY}--\r\n".encode())
        except ConnectionError:  # the client went away
            pass
        finally:
            if viewer is not None:
                viewer.end()
                self._viewers[name].discard(viewer)
            self.hub.detach(name)
            self._stream_clients -= 1
        return resp

    async def _video(self, request: web.Request) -> web.StreamResponse:
        """The H.264 feed of a recorded stream (feed.py's message format)."""
        name = request.match_info["name"]
        feed = self.feeds.get(name)
        if feed is None:
            why = ("live.video is mjpeg" if self.cfg.video == "mjpeg" else
                   "that stream is not recorded without delay (record.enabled, record.raw/clean, "
                   "record.lookahead_ms)")
            return web.Response(status=404, text=f"no H.264 feed of the {name} stream: {why}; "
                                                 f"use /stream/{name}.mjpg\n", headers=NO_CACHE)
        why = feed.unavailable()
        if why is not None:
            return web.Response(status=503, text=f"the {name} H.264 feed is off ({why}); "
                                                 f"use /stream/{name}.mjpg\n",
                                headers={"Retry-After": "2", **NO_CACHE})
        if self._stream_clients >= self.cfg.max_clients:
            return web.Response(status=503, text=f"too many live clients (max {self.cfg.max_clients})\n",
                                headers={"Retry-After": "5"})
        resp = web.StreamResponse(headers={"Content-Type": FEED_TYPE, **NO_CACHE})
        sock = request.transport.get_extra_info("socket") if request.transport else None
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, STREAM_SNDBUF)
            # One small message per frame: send each at once (Nagle would hold it).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if request.version >= (1, 1):
            resp.enable_chunked_encoding()
        self._stream_clients += 1
        viewer = None
        try:
            await resp.prepare(request)
            transport = request.transport
            if transport is None or transport.is_closing():
                return resp
            viewer = _FeedViewer(transport, resp.chunked, asyncio.get_running_loop().create_future(),
                                 request.remote)
            first, viewer.seq, viewer.head = feed.join()
            viewer.need_key = not first  # no keyframe to start from yet: wait for one
            if first:
                self._write_chunk(transport, resp.chunked, b"".join(first))
            self._feed_viewers[name].add(viewer)
            while not viewer.done.done():
                await asyncio.wait((viewer.done,), timeout=FEED_CHECK_S)
                if transport.is_closing():
                    break
                why = None if viewer.done.done() else feed.unavailable()
                if why is not None:
                    # Recording stopped (by hand, no signal, disk full) or the
                    # encoder fell behind: say so, and the page goes on with MJPEG.
                    self._write_chunk(transport, resp.chunked, end_message(why))
                    break
            if self._stopping and not transport.is_closing():
                self._write_chunk(transport, resp.chunked, end_message("server stopping"))
        except ConnectionError:
            pass
        finally:
            if viewer is not None:
                viewer.end()
                self._feed_viewers[name].discard(viewer)
            self._stream_clients -= 1
        return resp

    def video_stats(self) -> dict:
        """Per H.264 feed: running or not, its clients, frames, capture-to-fragment latency."""
        return {"mode": self.cfg.video,
                "streams": {name: {**feed.stats(), "clients": len(self._feed_viewers[name])}
                            for name, feed in self.feeds.items()}}

    def _part(self, stream: str, jpeg: LiveJpeg, chunked: bool) -> bytes:
        """The multipart part of ``jpeg``, built once and shared by every
        client of the stream (the loop thread is the only caller); framed as
        one HTTP chunk for chunked (HTTP/1.1) responses, since the parts go
        straight to the transport."""
        cached = self._parts.get((stream, chunked))
        if cached is not None and cached[0] is jpeg:
            return cached[1]
        head = (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                f"Content-Length: {len(jpeg.data)}\r\n"
                f"X-Frame-Seq: {jpeg.seq}\r\nX-Frame-Index: {jpeg.index}\r\n\r\n").encode()
        size = len(head) + len(jpeg.data) + 2
        pieces = (head, jpeg.data, b"\r\n")
        if chunked:
            pieces = (f"{size:X}\r\n".encode(), *pieces, b"\r\n")
        part = b"".join(pieces)
        self._parts[(stream, chunked)] = (jpeg, part)
        return part

    async def _snapshot(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        target = self.hub.request_snapshot(name)
        if target == 0:
            return web.Response(status=503, text="no frame yet\n", headers=NO_CACHE)
        jpeg = await self._newer(name, target - 1, timeout=2.0) or self.hub.latest(name)
        if jpeg is None:
            return web.Response(status=503, text="no frame yet\n", headers=NO_CACHE)
        return web.Response(body=jpeg.data, content_type="image/jpeg",
                            headers={**NO_CACHE, "X-Frame-Seq": str(jpeg.seq),
                                     "X-Frame-Index": str(jpeg.index)})

    def _full_status(self) -> dict:
        status = dict(self.status())
        status["live"] = self.hub.stats()
        status["live"]["video"] = self.video_stats()
        status["counts"] = self.hub.counters()
        rec = status.get("recording") or {}
        free = rec.get("free_mb")
        if free is None and rec.get("dir"):
            free = system.disk_free_mb(rec["dir"])
        status["system"] = {"cpu_temp_c": system.cpu_temp_c(), "disk_free_mb": free,
                            "cpu_percent": self.cpu.percent()}
        status["controls"] = {"token_set": bool(self.cfg.token),
                              "recording": callable(getattr(self.control, "set_recording", None)),
                              "recordings": getattr(self.control, "library", None) is not None}
        return status

    def _recording_bytes(self, status: dict) -> int:
        """Bytes written to recording files since start, as a counter: the
        largest size seen of every file the recorders reported, so a file
        deleted by retention later does not make the counter go down."""
        streams = (status.get("recording") or {}).get("streams") or {}
        for st in streams.values():
            if not isinstance(st, dict):
                continue
            paths = [st.get("current"), *(st.get("segments") or [])]
            for path in paths:
                if not path:
                    continue
                try:
                    size = Path(path).stat().st_size
                except OSError:
                    continue
                key = str(path)
                if size > self._bytes_seen.get(key, 0):
                    self._bytes_seen[key] = size
        return sum(self._bytes_seen.values())

    async def _status(self, request: web.Request) -> web.Response:
        body = json.dumps(_jsonable(self._full_status()), allow_nan=False)
        return web.Response(text=body, content_type="application/json", headers=NO_CACHE)

    async def _metrics(self, request: web.Request) -> web.Response:
        status = self._full_status()
        counts = status["counts"]
        frames = status.get("frames") or {}
        # "counts" is rendered below as labelled counters; flattening it too
        # would repeat the same numbers as gauges under other names.
        parts = [
            metrics.render({k: v for k, v in status.items() if k != "counts"}),
            metrics.render_counter("rtclean_frames_total", "frames by stage (in: captured, out: processed)",
                                   {k: v for k, v in frames.items() if isinstance(v, int)}, "stage"),
            metrics.render_counter("rtclean_breakup_frames_total", "frames the detector decided broken",
                                   counts["breakup_frames"]),
            metrics.render_counter("rtclean_actions_total", "frames by repair action (pass, repair:<kind>, hold, lost)",
                                   counts["actions"], "action"),
            metrics.render_counter("rtclean_dropped_frames_total", "frames dropped per queue",
                                   {k: v for k, v in (status.get("drops") or {}).items() if isinstance(v, int)},
                                   "queue"),
            metrics.render_counter("rtclean_source_reconnects_total", "capture reopen attempts",
                                   int(status.get("reconnects") or 0)),
            metrics.render_counter("rtclean_recording_written_bytes_total", "bytes written to recording files",
                                   self._recording_bytes(status)),
            self.hub.frame_latency.render(),
            self.hub.live_latency.render(),
            self.hub.score.render(),
        ]
        text = "".join(parts)
        return web.Response(body=text.encode(), headers={"Content-Type": metrics.CONTENT_TYPE, **NO_CACHE})

    async def _healthz(self, request: web.Request) -> web.Response:
        ok = bool(self.healthy())
        return web.json_response({"ok": ok}, status=200 if ok else 503, headers=NO_CACHE)

    async def _sdp(self, request: web.Request) -> web.Response:
        rtp = getattr(self.control, "rtp", None)
        if rtp is None:
            return web.Response(status=404, text="RTP output is off (rtp.enabled: false, or it failed to start)\n")
        return web.Response(text=rtp.sdp(), content_type="application/sdp", headers=NO_CACHE)

    async def _recordings_page(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC_DIR / "recordings.html", headers=NO_CACHE)

    async def _timeline(self, request: web.Request) -> web.Response:
        try:
            seconds = float(request.query.get("seconds", self.cfg.timeline_s))
            bins = int(request.query.get("bins", 300))
        except ValueError:
            return json_error(400, "seconds and bins must be numbers")
        if not (math.isfinite(seconds) and seconds > 0 and bins > 0):
            return json_error(400, "seconds and bins must be positive")
        import time

        data = self.hub.timeline.binned(time.monotonic(), seconds, bins)
        return web.json_response(data, headers=NO_CACHE)

    # ------------------------------------------------------------------ controls (token)

    def _refuse(self, request: web.Request) -> web.Response | None:
        return auth.refuse(self.cfg.token, request)

    async def _on_flag(self, request: web.Request) -> bool | web.Response:
        denied = self._refuse(request)
        if denied is not None:
            return denied
        body = await read_json(request)
        if isinstance(body, web.Response):
            return body
        on = body.get("on")
        if not isinstance(on, bool):
            return json_error(400, 'body must be {"on": true} or {"on": false}')
        return on

    async def _auth(self, request: web.Request) -> web.Response:
        denied = self._refuse(request)
        return denied or web.json_response({"ok": True}, headers=NO_CACHE)

    async def _record(self, request: web.Request) -> web.Response:
        on = await self._on_flag(request)
        if isinstance(on, web.Response):
            return on
        setter = getattr(self.control, "set_recording", None)
        if not callable(setter):
            return json_error(503, "recording control is not available in this run")
        try:
            # set_recording only flips a flag for the processing thread; run it
            # off the loop anyway so a slow implementation never stalls streams.
            await asyncio.get_running_loop().run_in_executor(None, setter, on)
        except RtcleanError as e:
            return json_error(409, str(e))
        log.info("recording %s from the web page (%s)", "started" if on else "stopped", request.remote)
        rec = _jsonable((self.status() or {}).get("recording"))
        return web.json_response({"ok": True, "on": on, "recording": rec}, headers=NO_CACHE)

    async def _tag(self, request: web.Request) -> web.Response:
        on = await self._on_flag(request)
        if isinstance(on, web.Response):
            return on
        self.hub.mark_repaired = on
        return web.json_response({"ok": True, "on": on}, headers=NO_CACHE)
