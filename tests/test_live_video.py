"""The live view's H.264 feed: the recorder's own packets as fragmented MP4
(rtclean/live/fmp4.py, feed.py) and /stream/<name>.fmp4 (server.py).

Everything is checked against real parts: x264 packets from the recorder's
VideoWriter, fragments decoded by FFmpeg (PyAV), a real pipeline on a real
socket read by a real HTTP client."""

from __future__ import annotations

import asyncio
import http.client
import io
import json
import socket
import struct
import threading
import time

import aiohttp
import av
import numpy as np
import pytest

from rtclean.config import Config
from rtclean.frames import HOLD, LOST, PASS, REPAIR_KEEP
from rtclean.live import fmp4
from rtclean.live.feed import STALE_S, TAG_CODES, VideoFeed, end_message, message
from rtclean.live.hub import tag_for
from rtclean.record.recorder import Recorder
from rtclean.record.writer import VideoWriter
from tests.helpers import decode_frames, read_jsonl
from tests.test_live import wait_until


def clip_frames(clips_dir, name="box_handheld_640x480.mp4", n=40) -> list[np.ndarray]:
    out = []
    with av.open(str(clips_dir / name)) as c:
        for f in c.decode(video=0):
            out.append(f.to_ndarray(format="bgr24"))
            if len(out) == n:
                break
    return out


def parse(data: bytes) -> tuple[list[tuple[str, int, float, bytes]], bytes]:
    """Messages of the feed format (feed.py) and the incomplete rest."""
    msgs, off = [], 0
    while len(data) - off >= 4:
        (n,) = struct.unpack_from(">I", data, off)
        if len(data) - off < 4 + n:
            break
        kind, tag, t = struct.unpack_from(">BBd", data, off + 4)
        msgs.append((chr(kind), tag, t, data[off + 14:off + 4 + n]))
        off += 4 + n
    return msgs, data[off:]


def frag_info(body: bytes) -> tuple[int, bool]:
    """(mfhd sequence number, sync sample) of a one-sample fragment."""
    i = body.index(b"mfhd")
    seq = struct.unpack_from(">I", body, i + 8)[0]
    j = body.index(b"trun")
    size = struct.unpack_from(">I", body, j - 4)[0]
    flags = struct.unpack_from(">I", body, j - 4 + size - 4)[0]
    return seq, flags == 0x02000000


def record_through_feed(path, frames, actions=None, gop=None):
    feed = VideoFeed("clean", 25.0)
    got = []
    feed.add_listener(got.append)
    h, w = frames[0].shape[:2]
    pending = list(actions or [PASS] * len(frames))

    def on_packet(data, pts_s, key):
        feed.push(data, key, time.monotonic(), pending.pop(0), (w + w % 2, h + h % 2))

    with VideoWriter(path, w, h, 25.0, gop=gop, on_packet=on_packet) as wr:
        for i, im in enumerate(frames):
            wr.write(im, i / 25)
    return feed, got


# ----------------------------------------------------------------------------- fMP4 and the feed


def test_fragments_decode_to_exactly_the_recorded_pictures(tmp_path, clips_dir):
    frames = clip_frames(clips_dir, n=60)
    actions = [PASS, "repair:flow", HOLD, LOST, REPAIR_KEEP] * 12
    feed, got = record_through_feed(tmp_path / "a.ts", frames, actions)
    head, version = feed.head()
    msgs = parse(b"".join(head) + b"".join(m.data for m in got))[0]
    assert [m[0] for m in msgs[:3]] == ["C", "I", "F"] and len(msgs) == 62
    config = json.loads(msgs[0][3])
    assert config == {"codec": "avc1.42c01e", "width": 640, "height": 480, "fps": 25.0}
    # The recorder's libx264 settings give constrained baseline, level 3.0: what MSE takes everywhere.
    stream = b"".join(m[3] for m in msgs[1:])
    with av.open(io.BytesIO(stream)) as c:
        live = [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]
    recorded = decode_frames(tmp_path / "a.ts")
    assert len(live) == len(recorded) == 60
    assert all(np.array_equal(a, b) for a, b in zip(live, recorded)), "the feed's pictures differ from the DVR's"
    # Per frame: its tag, a media time one frame period after the last, a sync flag on keyframes only.
    assert [m[1] for m in msgs[2:]] == [TAG_CODES[tag_for(a)] for a in actions]
    assert [m[1] for m in msgs[2:7]] == [0, 1, 2, 3, 0]
    assert [round(m[2] * 25, 6) for m in msgs[2:]] == list(range(60))
    keys = [frag_info(m[3])[1] for m in msgs[2:]]
    assert keys[0] and keys[25] and sum(keys) == 3  # the writer's GOP is one second
    assert [frag_info(m[3])[0] for m in msgs[2:]] == list(range(1, 61))


def test_a_joining_client_starts_at_the_last_keyframe(tmp_path, clips_dir):
    frames = clip_frames(clips_dir, n=33)
    feed, got = record_through_feed(tmp_path / "a.ts", frames)
    first, last_seq, version = feed.join()
    msgs = parse(b"".join(first))[0]
    assert [m[0] for m in msgs] == ["C", "I"] + ["F"] * 8  # frames 26..33, the GOP so far
    assert last_seq == 33 and version == 1
    assert frag_info(msgs[2][3]) == (26, True)
    with av.open(io.BytesIO(b"".join(m[3] for m in msgs[1:]))) as c:
        assert sum(1 for _ in c.decode(video=0)) == 8
    assert feed.available() and feed.frames == 33


def test_new_encoder_parameters_bring_a_new_head(tmp_path, clips_dir):
    feed = VideoFeed("raw", 25.0)
    heads = []
    for size in ((640, 480), (320, 240)):
        frames = [np.ascontiguousarray(im[:size[1], :size[0]]) for im in clip_frames(clips_dir, n=5)]
        with VideoWriter(tmp_path / f"{size[0]}.ts", *size, 25.0,
                         on_packet=lambda d, p, k, s=size: feed.push(d, k, time.monotonic(), PASS, s)) as wr:
            for i, im in enumerate(frames):
                wr.write(im, i / 25)
        heads.append(feed.head())
    assert heads[0][1] == 1 and heads[1][1] == 2
    configs = [json.loads(parse(h[0])[0][0][3]) for h, _ in heads]
    assert [(c["width"], c["height"]) for c in configs] == [(640, 480), (320, 240)]
    assert feed.frames == 10


def test_message_layout_and_annexb_split():
    m = message("F", b"body", tag=1, media_time=1.5)
    assert m == struct.pack(">IBBd", 14, ord("F"), 1, 1.5) + b"body"
    e = parse(end_message("recording stopped"))[0][0]
    assert e[0] == "E" and json.loads(e[3]) == {"reason": "recording stopped"}
    # 3- and 4-byte start codes, and a NAL unit that holds 00 00 03 (emulation prevention).
    stream = b"\x00\x00\x00\x01\x67\x42\xc0\x1e" + b"\x00\x00\x01\x68\xce" + b"\x00\x00\x01\x65\x00\x00\x03\x01\x88"
    assert fmp4.split_annexb(stream) == [b"\x67\x42\xc0\x1e", b"\x68\xce", b"\x65\x00\x00\x03\x01\x88"]
    assert fmp4.sample(fmp4.split_annexb(stream)) == b"\x00\x00\x00\x06\x65\x00\x00\x03\x01\x88"


def test_packets_before_the_first_keyframe_are_not_sent():
    feed = VideoFeed("clean", 25.0)
    feed.push(b"\x00\x00\x01\x41\x9a\x00", False, time.monotonic(), PASS, (64, 48))
    assert feed.skipped == 1 and feed.frames == 0 and not feed.available()
    assert feed.join() == ([], 0, 0)


# ----------------------------------------------------------------------------- over HTTP, from a running pipeline


class Running:
    """A real LivePipeline on a paced replay of simulated breakup, recording."""

    def __init__(self, tmp_path, recorder_cls=None, **sets) -> None:
        from rtclean.pipeline import LivePipeline
        from rtclean.sim.feed import render_clip
        from rtclean.sources.replay import ReplaySource

        cfg = Config()
        cfg.detect.detector = "classical"
        cfg.record.dir = str(tmp_path)
        cfg.record.start_after_s = 0.0
        cfg.live.host, cfg.live.port = "127.0.0.1", 0
        for k, v in sets.items():
            section, key = k.split("__")
            setattr(getattr(cfg, section), key, v)
        self.cfg = cfg
        frames = [f.image for f in render_clip(50, seed=3, breakup=0.4)]
        self.pipe = LivePipeline(cfg, ReplaySource(frames, 25.0, duration_s=None),
                                 **({"recorder_cls": recorder_cls} if recorder_cls else {}))
        self.thread = threading.Thread(target=self.pipe.run, daemon=True)
        self.thread.start()
        end = time.monotonic() + 30
        while not (self.pipe.server is not None and self.pipe.server.port):
            assert time.monotonic() < end, "the live view did not start"
            time.sleep(0.05)
        self.port = self.pipe.server.port

    def wait(self, cond, timeout=15.0, what="condition"):
        wait_until(cond, timeout, what)

    def status(self) -> dict:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        conn.request("GET", "/api/status")
        return json.loads(conn.getresponse().read())

    def close(self) -> None:
        self.pipe.stop()
        self.thread.join(timeout=20)


@pytest.fixture
def running(tmp_path):
    made = []

    def make(recorder_cls=None, **sets):
        r = Running(tmp_path, recorder_cls, **sets)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


def read_feed(port: int, stream: str, seconds: float) -> list:
    """Read /stream/<stream>.fmp4 for ``seconds`` (or until it ends); its messages."""
    async def go() -> bytes:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/stream/{stream}.fmp4") as resp:
                assert resp.status == 200, await resp.text()
                assert resp.headers["Content-Type"] == "application/vnd.rtclean.fmp4-feed"
                data, loop = b"", asyncio.get_running_loop()
                end = loop.time() + seconds
                while (left := end - loop.time()) > 0:
                    try:
                        async with asyncio.timeout(left):
                            chunk = await resp.content.readany()
                    except TimeoutError:
                        break
                    if not chunk:
                        break
                    data += chunk
                return data

    return parse(asyncio.run(go()))[0]


def test_fmp4_stream_plays_the_clean_recording_and_costs_no_jpeg(running):
    r = running()
    r.wait(lambda: r.pipe.feeds["clean"].available(), what="clean feed running")
    box = {}
    reader = threading.Thread(target=lambda: box.setdefault("msgs", read_feed(r.port, "clean", 3.0)))
    reader.start()
    r.wait(lambda: r.status()["live"]["video"]["streams"]["clean"]["clients"] == 1, what="an H.264 client")
    reader.join()
    msgs = box["msgs"]
    st = r.status()["live"]
    # The H.264 client took no JPEG: nobody asked the hub for one.
    assert st["streams"]["clean"]["clients"] == 0 and st["streams"]["clean"]["encodes"] == 0
    assert [m[0] for m in msgs[:3]] == ["C", "I", "F"] and len(msgs) > 50
    seqs = [frag_info(m[3]) for m in msgs if m[0] == "F"]
    assert seqs[0][1], "the first frame a client gets is a keyframe"
    assert [s for s, _ in seqs] == list(range(seqs[0][0], seqs[0][0] + len(seqs))), "frames skipped"
    with av.open(io.BytesIO(b"".join(m[3] for m in msgs[1:]))) as c:
        pictures = [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]
    assert len(pictures) == len(seqs) and pictures[0].shape == (576, 720, 3)
    assert pictures[-1].std() > 20
    # /metrics carries the feed's numbers and still parses.
    from tests.test_live import parse_prometheus

    conn = http.client.HTTPConnection("127.0.0.1", r.port, timeout=5)
    conn.request("GET", "/metrics")
    families = parse_prometheus(conn.getresponse().read().decode())
    frames = [n for n in families if n.startswith("rtclean_live_video") and "frames" in n]
    assert frames, sorted(families)
    r.close()
    # The tags are the recorded actions, frame for frame (the sidecar of the segment).
    lines = [x for p in sorted(r.pipe.library.directory.glob("*.clean.jsonl")) for x in read_jsonl(p)]
    tags = {s: m[1] for (s, _), m in zip(seqs, [m for m in msgs if m[0] == "F"])}
    want = {i + 1: TAG_CODES[tag_for(x["action"])] for i, x in enumerate(lines)}
    assert tags and all(tags[s] == want[s] for s in tags)
    assert any(tags.values()), "no repaired frame in a clip with 40 % breakup"


def test_the_stream_goes_on_across_segment_switches(running):
    r = running(record__segment_s=1.0)
    r.wait(lambda: r.pipe.feeds["clean"].available(), what="clean feed running")
    msgs = read_feed(r.port, "clean", 3.5)
    frames = [m for m in msgs if m[0] == "F"]
    assert "E" not in [m[0] for m in msgs], "a segment switch ended the stream"
    assert [m[0] for m in msgs].count("I") == 1, "same encoder settings: no new init segment"
    seqs = [frag_info(m[3]) for m in frames]
    assert [s for s, _ in seqs] == list(range(seqs[0][0], seqs[0][0] + len(seqs))), "frames lost at a switch"
    assert sum(k for _, k in seqs) >= 3  # each new segment's encoder starts with a keyframe
    times = [m[2] for m in frames]
    assert np.allclose(np.diff(times), 1 / 25), "media time is not continuous across segments"
    with av.open(io.BytesIO(b"".join(m[3] for m in msgs[1:]))) as c:
        assert sum(1 for _ in c.decode(video=0)) == len(frames)
    r.close()
    assert len(list(r.pipe.library.directory.glob("*.clean.*"))) >= 6  # several segments were written


def test_a_client_that_stops_reading_resumes_at_a_keyframe(running):
    r = running()
    r.wait(lambda: r.pipe.feeds["clean"].available(), what="clean feed running")
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    s.connect(("127.0.0.1", r.port))
    s.sendall(b"GET /stream/clean.fmp4 HTTP/1.0\r\nHost: x\r\n\r\n")
    time.sleep(4.0)  # not reading: the server's buffers fill and it must skip frames
    s.settimeout(1.0)
    data = b""
    end = time.monotonic() + 3.0
    while time.monotonic() < end:
        try:
            chunk = s.recv(65536)
        except TimeoutError:
            continue
        if not chunk:
            break
        data += chunk
    s.close()
    body = data.split(b"\r\n\r\n", 1)[1]  # HTTP/1.0: not chunked
    frames = [frag_info(m[3]) for m in parse(body)[0] if m[0] == "F"]
    gaps = [i for i in range(1, len(frames)) if frames[i][0] != frames[i - 1][0] + 1]
    assert gaps, "the stalled client was sent every frame"
    assert all(frames[i][1] for i in gaps), "after a gap the stream resumed on a non-keyframe"
    assert frames[-1][0] > frames[gaps[0]][0], "the stream did not go on after the gap"


def test_stopping_the_recording_ends_the_stream_with_a_reason(running):
    r = running()
    r.wait(lambda: r.pipe.feeds["clean"].available(), what="clean feed running")
    box = {}
    reader = threading.Thread(target=lambda: box.setdefault("msgs", read_feed(r.port, "raw", STALE_S + 8)))
    reader.start()
    time.sleep(1.0)
    t_stop = time.monotonic()
    r.pipe.set_recording(False)
    reader.join()
    assert time.monotonic() - t_stop < STALE_S + 4, "the stream did not end"
    last = box["msgs"][-1]
    assert last[0] == "E" and json.loads(last[3]) == {"reason": "recording stopped"}
    # While not recording the feed is refused with a pointer to MJPEG.
    r.wait(lambda: not r.status()["live"]["video"]["streams"]["raw"]["available"], what="feed off")
    conn = http.client.HTTPConnection("127.0.0.1", r.port, timeout=10)
    conn.request("GET", "/stream/raw.fmp4")
    resp = conn.getresponse()
    assert resp.status == 503 and b"raw.mjpg" in resp.read()


class SlowRecorder(Recorder):
    """The real recorder, whose encoder (an overloaded Pi) takes 70 ms a
    frame, slower than the 40 ms of a PAL frame, once ``slow`` is set."""

    slow = threading.Event()

    def _open_writer(self, path):
        writer = super()._open_writer(path)
        real = writer.write

        def write(image, pts_s=None):
            if self.slow.is_set() and self.stream == "clean":
                time.sleep(0.07)
            real(image, pts_s)

        writer.write = write
        return writer


def test_a_feed_that_falls_behind_sends_its_viewers_back_to_mjpeg(running):
    SlowRecorder.slow.clear()
    r = running(recorder_cls=SlowRecorder)
    r.wait(lambda: r.pipe.feeds["clean"].available(), what="clean feed running")
    box = {}
    reader = threading.Thread(target=lambda: box.setdefault("msgs", read_feed(r.port, "clean", 15.0)))
    reader.start()
    time.sleep(1.0)
    SlowRecorder.slow.set()
    reader.join()
    SlowRecorder.slow.clear()
    last = box["msgs"][-1]
    assert last[0] == "E", "the stream went on while the recorder fell behind"
    reason = json.loads(last[3])["reason"]
    assert "behind the live picture" in reason, reason
    # The MJPEG path stayed live meanwhile: a frame captured just now comes out at once.
    st = r.status()
    assert st["live"]["video"]["streams"]["clean"]["why_not"].startswith("the recorder is")
    assert st["live"]["video"]["streams"]["raw"]["available"], "the raw stream's encoder kept up"
    assert st["latency"]["p99_ms"] < 1000


def test_no_feed_without_recording_or_with_mjpeg_chosen(running):
    for sets, why in (({"live__video": "mjpeg"}, b"live.video is mjpeg"),
                      ({"record__enabled": False}, b"not recorded"),
                      ({"record__lookahead_ms": 200.0}, b"not recorded without delay")):
        r = running(**sets)
        conn = http.client.HTTPConnection("127.0.0.1", r.port, timeout=10)
        conn.request("GET", "/stream/clean.fmp4")
        resp = conn.getresponse()
        assert resp.status == 404 and why in resp.read(), sets
        r.close()
    # Look-ahead delays only the clean stream: the raw one is still offered.
    assert set(r.pipe.feeds) == {"raw"}


def test_live_video_setting_is_checked():
    from rtclean import config

    with pytest.raises(config.ConfigError, match=r"live.video: expected one of auto, mjpeg"):
        config.parse("live:\n  video: h265\n")
