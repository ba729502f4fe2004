"""Live view: a real LiveHub and LiveServer on an ephemeral port, real frames
published from a feeder thread, real HTTP clients parsing the MJPEG stream."""

from __future__ import annotations

import http.client
import json
import math
import re
import socket
import threading
import time
from dataclasses import dataclass, field

import cv2
import numpy as np
import pytest

from rtclean.config import LiveConfig
from rtclean.errors import RtcleanError
from rtclean.frames import HOLD, LOST, PASS, REPAIR, REPAIR_KEEP, Decision, DetectResult, Frame, Processed
from rtclean.live import metrics
from rtclean.live.hub import STREAMS, LiveHub, LiveJpeg, draw_tag, tag_for
from rtclean.live.server import BOUNDARY, LiveServer

from helpers import psnr

# ----------------------------------------------------------------------------- frames


def gradient(i: int, w: int = 320, h: int = 240, noise: bool = False) -> np.ndarray:
    """A moving colour gradient with a bright bar: every frame differs."""
    x = np.arange(w, dtype=np.int32)[None, :]
    y = np.arange(h, dtype=np.int32)[:, None]
    img = np.empty((h, w, 3), np.uint8)
    img[..., 0] = (x + 5 * i) % 256
    img[..., 1] = (y + 3 * i) % 256
    img[..., 2] = ((x + y) // 2 + 7 * i) % 256
    bar = (i * 6) % w
    img[:, bar:bar + 12] = 255
    if noise:  # makes JPEGs big (~100 KB+), to fill socket buffers quickly
        rng = np.random.default_rng(i)
        img = cv2.add(img, rng.integers(0, 60, img.shape, dtype=np.uint8))
    return img


def processed(i: int, image: np.ndarray, action: str = PASS, clean: np.ndarray | None = None) -> Processed:
    frame = Frame(index=i, t=time.monotonic(), image=image, pts=i / 25)
    return Processed(frame=frame, clean=image if clean is None else clean,
                     result=DetectResult(score=0.0), decision=Decision(breakup=action != PASS),
                     action=action, t_done=time.monotonic())


class Feeder(threading.Thread):
    """Publishes frames at about 25 fps, like the processing thread."""

    def __init__(self, hub: LiveHub, w: int = 320, h: int = 240, noise: bool = False) -> None:
        super().__init__(daemon=True)
        self.hub, self.w, self.h, self.noise = hub, w, h, noise
        self.count = 0
        self.stop_event = threading.Event()

    def run(self) -> None:
        i = 0
        while not self.stop_event.wait(0.04):
            self.hub.publish(processed(i, gradient(i, self.w, self.h, self.noise)))
            i += 1
            self.count = i

    def stop(self) -> None:
        self.stop_event.set()
        self.join(timeout=5)


@dataclass
class Live:
    server: LiveServer
    hub: LiveHub
    feeder: Feeder | None
    state: dict = field(default_factory=dict)

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        return self.server.port


def status_of(live_state: dict, hub: LiveHub) -> dict:
    """A status dict shaped like the pipeline's, fed by the real hub counters."""
    n = hub.published
    return {
        "state": "running" if n else "no_signal",
        "source": {"kind": "demo", "size": live_state.get("size", [320, 240]), "fps": 25.0},
        "detector": "classical",
        "frames": {"in": n, "out": n},
        "fps": {"in": 25.0, "out": 24.5},
        "breakup_rate": 0.02,
        "repairs": {"repair": 3, "hold": 1, "lost": 0},
        "drops": {"input": 0, "live": hub.stats()["dropped"], "raw": 0, "clean": 0},
        "latency": {"p50_ms": 12.5, "p99_ms": None},
        "stages": {"detect": {"median_ms": 1.5, "p99_ms": 3.0}},
        "recording": {"active": live_state.get("recording", False), "raw": None,
                      "clean": "/rec/clean-0001.ts", "dir": "recordings"},
        "uptime_s": 12.0,
    }


@pytest.fixture
def make_live():
    made: list[Live] = []

    def make(feed: bool = True, noise: bool = False, w: int = 320, h: int = 240, stall_s: float = 20.0,
             **cfg_kw) -> Live:
        cfg = LiveConfig(host="127.0.0.1", port=0, **cfg_kw)
        hub = LiveHub(cfg)
        state = {"healthy": True}
        server = LiveServer(cfg, hub, status=lambda: status_of(state, hub),
                            healthy=lambda: state["healthy"], stall_s=stall_s)
        hub.start()
        server.start()
        feeder = Feeder(hub, w, h, noise) if feed else None
        live = Live(server, hub, feeder, state)
        made.append(live)
        if feeder:
            feeder.start()
        return live

    yield make
    for live in made:
        if live.feeder:
            live.feeder.stop()
        live.server.stop()
        live.hub.close()


# ----------------------------------------------------------------------------- HTTP helpers


def get(live: Live, path: str, method: str = "GET") -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection(live.host, live.port, timeout=10)
    try:
        conn.request(method, path)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


class MjpegReader:
    """Parses a multipart/x-mixed-replace stream part by part."""

    def __init__(self, live: Live, path: str, rcvbuf: int | None = None) -> None:
        self.conn = http.client.HTTPConnection(live.host, live.port, timeout=10)
        if rcvbuf is not None:
            # A small receive buffer, set before connecting so TCP honours it,
            # makes a client that stops reading back-pressure the server quickly.
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.settimeout(10)
            sock.connect((live.host, live.port))
            self.conn.sock = sock
        self.conn.request("GET", path)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.content_type = self.resp.getheader("Content-Type", "")

    def part(self) -> tuple[dict, bytes] | None:
        """The next (headers, body); None at the closing boundary or EOF."""
        while True:
            line = self.resp.readline()
            if not line:
                return None
            line = line.strip()
            if line == f"--{BOUNDARY}--".encode():
                return None
            if line == f"--{BOUNDARY}".encode():
                break
            assert line == b"", f"unexpected line between parts: {line[:80]!r}"
        headers = {}
        while (line := self.resp.readline().strip()):
            k, v = line.decode().split(":", 1)
            headers[k.strip().lower()] = v.strip()
        body = self.resp.read(int(headers["content-length"]))
        assert len(body) == int(headers["content-length"])
        return headers, body

    def frame(self) -> tuple[int, np.ndarray]:
        p = self.part()
        assert p is not None, "stream ended"
        headers, body = p
        assert headers["content-type"] == "image/jpeg"
        img = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
        assert img is not None, "part is not a decodable JPEG"
        return int(headers["x-frame-seq"]), img

    def close(self) -> None:
        self.conn.close()


def wait_until(cond, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


# ----------------------------------------------------------------------------- streams


def test_clean_stream_delivers_changing_jpegs(make_live):
    live = make_live()
    r = MjpegReader(live, "/stream/clean.mjpg")
    try:
        assert r.status == 200
        assert r.content_type == f"multipart/x-mixed-replace; boundary={BOUNDARY}"
        frames = [r.frame() for _ in range(6)]
    finally:
        r.close()
    seqs = [s for s, _ in frames]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), "each part is a newer frame"
    for _, img in frames:
        assert img.shape == (240, 320, 3)
    diffs = [np.abs(a.astype(int) - b.astype(int)).mean() for (_, a), (_, b) in zip(frames, frames[1:])]
    assert min(diffs) > 1.0, f"content must change between frames, got mean abs diffs {diffs}"
    # The JPEG is the published picture: compare with the frame it came from.
    seq, img = frames[-1]
    expect = gradient(seq - 1)
    assert np.abs(img.astype(int) - expect.astype(int)).mean() < 6


def test_raw_stream_is_the_input_picture(make_live):
    live = make_live(feed=False)
    r = MjpegReader(live, "/stream/raw.mjpg")
    try:
        wait_until(lambda: live.hub.clients("raw") == 1, what="raw client attached")
        raw = gradient(3)
        clean = np.full_like(raw, 90)
        live.hub.publish(processed(0, raw, clean=clean))
        _, img = r.frame()
    finally:
        r.close()
    assert np.abs(img.astype(int) - raw.astype(int)).mean() < 6
    assert np.abs(img.astype(int) - clean.astype(int)).mean() > 20


def test_two_clients_share_one_encode_per_frame(make_live):
    live = make_live()
    got: dict[int, list[int]] = {0: [], 1: []}

    def client(k: int) -> None:
        r = MjpegReader(live, "/stream/clean.mjpg")
        try:
            for _ in range(15):
                got[k].append(r.frame()[0])
        finally:
            r.close()

    threads = [threading.Thread(target=client, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(got[0]) == 15 and len(got[1]) == 15
    # Both clients saw many of the same frames (the shared encode).
    assert len(set(got[0]) & set(got[1])) >= 5
    st = live.hub.stats()
    clean = st["streams"]["clean"]
    assert clean["encodes"] <= st["published"], "one encode per frame, not one per client"
    assert clean["encodes"] >= 15
    # Nobody watched raw: nothing encoded for it, every frame counted as skipped.
    assert st["streams"]["raw"]["encodes"] == 0
    assert st["streams"]["raw"]["skipped"] > 0
    # Each clean encode records one latency sample (read a moment apart: the
    # feeder is still publishing, so the JPEG thread may be one frame ahead).
    assert abs(st["latency"]["count"] - clean["encodes"]) <= 1


def test_slow_client_skips_frames_and_does_not_hold_back_others(make_live):
    live = make_live(noise=True, w=720, h=576)
    slow = MjpegReader(live, "/stream/clean.mjpg", rcvbuf=16384)
    fast = MjpegReader(live, "/stream/clean.mjpg")
    try:
        before, _ = slow.frame()
        # The slow client reads nothing while the fast one keeps reading.
        fast_seqs = []
        t_end = time.monotonic() + 1.0
        while time.monotonic() < t_end:
            fast_seqs.append(fast.frame()[0])
        published_at_resume = live.hub.published
        assert len(set(fast_seqs)) >= 3, f"fast client kept receiving new frames: {fast_seqs}"
        # Resume: whatever was buffered in the socket arrives first, then the
        # newest frame; the frames published meanwhile were skipped, not queued.
        seqs = []
        while not seqs or seqs[-1] < published_at_resume:
            seqs.append(slow.frame()[0])
    finally:
        slow.close()
        fast.close()
    missed = published_at_resume - before
    assert missed >= 10
    assert len(seqs) < missed / 2, f"slow client got {len(seqs)} parts for {missed} frames: it was queued"
    assert max(b - a for a, b in zip([before] + seqs, seqs)) >= 5, f"no frames skipped: {seqs}"
    assert live.hub.stats()["streams"]["clean"]["encodes"] <= live.hub.published


def test_stalled_client_is_dropped_after_stall_timeout(make_live):
    live = make_live(noise=True, w=640, h=480, stall_s=0.5)
    stalled = MjpegReader(live, "/stream/clean.mjpg", rcvbuf=4096)
    try:
        wait_until(lambda: live.hub.clients("clean") == 1, what="client attached")
        wait_until(lambda: live.hub.clients("clean") == 0, timeout=20, what="stalled client dropped")
    finally:
        stalled.close()


def test_client_leaving_while_no_frames_come_frees_its_slot(make_live):
    live = make_live(feed=False)
    live.server.idle_check_s = 0.2
    r = MjpegReader(live, "/stream/clean.mjpg")
    wait_until(lambda: live.hub.clients("clean") == 1, what="client attached")
    r.close()
    wait_until(lambda: live.hub.clients("clean") == 0, what="client slot freed")


def test_max_clients_gives_503_beyond_the_limit(make_live):
    live = make_live(max_clients=2)
    a = MjpegReader(live, "/stream/clean.mjpg")
    b = MjpegReader(live, "/stream/raw.mjpg")
    try:
        a.frame()
        b.frame()
        status, _, body = get(live, "/stream/clean.mjpg")
        assert status == 503 and b"too many" in body
    finally:
        a.close()
        b.close()
    # Slots are freed when clients leave.
    wait_until(lambda: live.hub.clients() == 0, what="clients detached")
    c = MjpegReader(live, "/stream/clean.mjpg")
    try:
        assert c.status == 200
        c.frame()
    finally:
        c.close()


def test_stop_ends_open_streams(make_live):
    live = make_live()
    r = MjpegReader(live, "/stream/clean.mjpg")
    r.frame()
    live.server.stop()
    parts = 0
    while r.part() is not None:  # returns None at the closing boundary / EOF
        parts += 1
        assert parts < 100
    r.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", live.port), timeout=2).close()


# ----------------------------------------------------------------------------- snapshot, tag


def test_snapshot_503_before_frames_then_latest(make_live):
    live = make_live(feed=False)
    status, _, _ = get(live, "/snapshot/clean.jpg")
    assert status == 503
    for i in range(3):
        live.hub.publish(processed(i, gradient(i)))
    wait_until(lambda: live.hub.stats()["streams"]["raw"]["skipped"] + live.hub.stats()["dropped"] >= 3,
               what="frames taken by the JPEG thread")
    # Nobody watches: no encode happened, the snapshot asks for one.
    assert live.hub.stats()["streams"]["clean"]["encodes"] == 0
    for name in ("clean", "raw"):
        status, headers, body = get(live, f"/snapshot/{name}.jpg")
        assert status == 200 and headers["content-type"] == "image/jpeg"
        assert headers["x-frame-seq"] == "3"
        img = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
        assert np.abs(img.astype(int) - gradient(2).astype(int)).mean() < 6


def test_repaired_frame_is_tagged_live_but_clean_array_untouched(make_live):
    live = make_live(feed=False)
    clean = np.full((240, 320, 3), 100, np.uint8)
    before = clean.copy()
    live.hub.publish(processed(0, gradient(0), action="repair:flow", clean=clean))
    status, _, body = get(live, "/snapshot/clean.jpg")
    assert status == 200
    img = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR).astype(int)
    assert np.array_equal(clean, before), "p.clean must not be drawn on"
    corner = np.abs(img[:40, -120:] - 100).mean()
    rest = np.abs(img[80:, :200] - 100).mean()
    assert corner > 20, "tag drawn in the top-right corner"
    assert rest < 3, "nothing drawn elsewhere"


def test_no_tag_when_mark_repaired_is_off(make_live):
    live = make_live(feed=False, mark_repaired=False)
    clean = np.full((240, 320, 3), 100, np.uint8)
    live.hub.publish(processed(0, gradient(0), action=HOLD, clean=clean))
    status, _, body = get(live, "/snapshot/clean.jpg")
    img = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR).astype(int)
    assert status == 200 and np.abs(img - 100).max() < 8


def test_tag_text_per_action_and_copy():
    assert tag_for(PASS) is None
    assert tag_for(REPAIR_KEEP) is None  # the raw frame kept: nothing synthesized
    assert tag_for(REPAIR) == tag_for("repair:band") == "REPAIRED"
    assert tag_for(HOLD) == "HOLD" and tag_for(LOST) == "LOST"
    img = np.zeros((576, 720, 3), np.uint8)
    out = draw_tag(img, "HOLD")
    assert out is not img and not img.any()
    ys, xs = np.nonzero(out.any(axis=2))
    assert xs.min() > 720 / 2 and ys.max() < 576 / 4, "tag stays in the top-right corner"
    assert out[..., 2].max() > 200, "HOLD is red"


def test_hub_publish_never_waits_for_encoding():
    """publish() only replaces the mailbox item: with the JPEG thread not even
    running, thousands of publishes keep one frame, the rest counted dropped."""
    hub = LiveHub(LiveConfig())
    img = gradient(0)
    for i in range(2000):
        hub.publish(processed(i, img))
    st = hub.stats()
    assert st["published"] == 2000 and st["dropped"] == 1999
    hub.close()


# ----------------------------------------------------------------------------- status, metrics, health


def test_api_status_reflects_frames_flowing(make_live):
    live = make_live()
    wait_until(lambda: live.hub.published >= 3, what="frames published")
    s1 = json.loads(get(live, "/api/status")[2])
    wait_until(lambda: live.hub.published >= s1["frames"]["in"] + 5, what="more frames")
    status, headers, body = get(live, "/api/status")
    s2 = json.loads(body)
    assert status == 200 and headers["content-type"].startswith("application/json")
    assert s2["frames"]["in"] > s1["frames"]["in"]
    assert s2["live"]["published"] > s1["live"]["published"]
    assert s2["state"] == "running" and s2["latency"]["p99_ms"] is None
    assert set(s2["live"]["streams"]) == {"clean", "raw"}


_LABELS = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')


def _parse_labels(text: str) -> dict[str, str]:
    """Label pairs, strictly: every character must belong to a pair or a separating comma."""
    out, pos = {}, 0
    while pos < len(text):
        m = _LABELS.match(text, pos)
        assert m, f"bad labels: {text!r}"
        assert m.group(1) not in out, f"duplicate label in {text!r}"
        out[m.group(1)] = m.group(2)
        pos = m.end()
        if pos < len(text):
            assert text[pos] == ",", f"bad labels: {text!r}"
            pos += 1
    return out


def parse_prometheus(text: str) -> dict[str, dict]:
    """Strict parser for the text format (0.0.4).

    Returns {metric family name: {"type", "help", "samples"}}; for counters and
    gauges ``samples`` is [(label string, value)], for histograms the family
    also gets "buckets" [(le, cumulative count)], "sum" and "count". Fails on
    a sample before its TYPE, a family split into two runs, duplicate series,
    buckets not ascending / not cumulative / without +Inf == _count.
    """
    assert text.endswith("\n")
    line_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
    out: dict[str, dict] = {}
    finished: set[str] = set()
    current = None
    series: set[tuple] = set()

    def family_of(name: str) -> str:
        for suffix in ("_bucket", "_sum", "_count"):
            base = name.removesuffix(suffix)
            if base != name and out.get(base, {}).get("type") == "histogram":
                return base
        return name

    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            name, _, rest = line[7:].partition(" ")
            assert re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", name), line
            assert name not in finished, f"{name} described again after other metrics"
            if current is not None and current != name:
                finished.add(current)
            current = name
            entry = out.setdefault(name, {"samples": []})
            if line.startswith("# HELP "):
                entry["help"] = rest
            else:
                assert rest in ("counter", "gauge", "histogram"), line
                assert "type" not in entry, f"duplicate TYPE for {name}"
                assert not entry["samples"], f"TYPE after samples for {name}"
                entry["type"] = rest
                if rest == "counter":
                    assert name.endswith("_total"), f"counter {name} without _total"
            continue
        assert not line.startswith("#"), f"stray comment: {line}"
        m = line_re.match(line)
        assert m, f"not a sample line: {line!r}"
        name, label_text, raw = m.group(1), m.group(2) or "", m.group(3)
        value = float(raw)  # raises on anything that is not a float
        labels = _parse_labels(label_text)
        fam = family_of(name)
        assert fam in out and "type" in out[fam], f"sample before its TYPE line: {line}"
        assert fam == current, f"{fam} samples are not contiguous: {line}"
        key = (name, tuple(sorted(labels.items())))
        assert key not in series, f"duplicate series {line}"
        series.add(key)
        entry = out[fam]
        if entry["type"] == "histogram":
            if name == fam + "_bucket":
                assert set(labels) == {"le"}, line
                entry.setdefault("buckets", []).append((float(labels["le"]), value))
            elif name == fam + "_sum":
                entry["sum"] = value
            elif name == fam + "_count":
                entry["count"] = value
            else:
                raise AssertionError(f"not a histogram series: {line}")
        else:
            assert name == fam, line
            if entry["type"] == "counter":
                assert value >= 0, line
        entry["samples"].append((label_text, value))
    for name, entry in out.items():
        if entry.get("type") == "histogram":
            b = entry["buckets"]
            les = [le for le, _ in b]
            assert les == sorted(les) and len(set(les)) == len(les), f"{name}: buckets not ascending"
            assert les[-1] == math.inf, f"{name}: no +Inf bucket"
            counts = [c for _, c in b]
            assert counts == sorted(counts), f"{name}: buckets not cumulative"
            assert entry["count"] == counts[-1], f"{name}: +Inf bucket != _count"
            assert "sum" in entry, f"{name}: no _sum"
    return out


def test_metrics_endpoint_parses_and_has_the_status_numbers(make_live):
    live = make_live()
    live.state["recording"] = True
    wait_until(lambda: live.hub.published >= 3, what="frames published")
    status, headers, body = get(live, "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
    m = parse_prometheus(body.decode())
    assert m["rtclean_frames_in_total"]["type"] == "counter"
    assert m["rtclean_frames_in_total"]["samples"][0][1] >= 3
    assert m["rtclean_fps_out"]["type"] == "gauge" and m["rtclean_fps_out"]["samples"] == [("", 24.5)]
    assert m["rtclean_recording_active"]["samples"] == [("", 1.0)]
    assert m["rtclean_source_size"]["samples"] == [('index="0"', 320.0), ('index="1"', 240.0)]
    assert m["rtclean_stages_detect_p99_ms"]["samples"] == [("", 3.0)]
    assert m["rtclean_live_streams_raw_skipped_total"]["type"] == "counter"
    assert "rtclean_latency_p99_ms" not in m  # null is skipped
    assert not any("state" == n.removeprefix("rtclean_") for n in m)  # strings are skipped
    for name, entry in m.items():
        assert entry["samples"] and entry["help"], name


def test_metrics_flatten_is_generic():
    status = {"a": {"b-c": 1.5, "ok": False, "n": np.int64(7), "bad": math.nan, "s": "x"},
              "errors": {"x": 4}, "list": [1, "two", 3.0], "none": None, "big": 2**53}
    samples = {(s.name, s.labels): s for s in metrics.flatten(status)}
    assert samples[("rtclean_a_b_c", ())].value == 1.5
    assert samples[("rtclean_a_ok", ())].value == 0.0
    assert samples[("rtclean_a_n", ())].value == 7.0
    assert samples[("rtclean_errors_x_total", ())].kind == "counter"
    assert ("rtclean_list", (("index", "0"),)) in samples and ("rtclean_list", (("index", "2"),)) in samples
    assert len([k for k in samples if k[0] == "rtclean_list"]) == 2
    assert not any("bad" in k[0] or "none" in k[0] or "_s" == k[0][-2:] for k in samples)
    text = metrics.render(status)
    parsed = parse_prometheus(text)
    assert parsed["rtclean_big"]["samples"] == [("", float(2**53))]


def test_healthz_follows_healthy(make_live):
    live = make_live(feed=False)
    status, _, body = get(live, "/healthz")
    assert status == 200 and json.loads(body) == {"ok": True}
    live.state["healthy"] = False
    status, _, body = get(live, "/healthz")
    assert status == 503 and json.loads(body) == {"ok": False}


# ----------------------------------------------------------------------------- page, errors


def test_page_and_static_files_are_served(make_live):
    live = make_live(feed=False)
    status, headers, body = get(live, "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    page = body.decode()
    for ref in re.findall(r'(?:href|src)="(/static/[^"]+)"', page):
        s, _, content = get(live, ref)
        assert s == 200 and content, ref
    assert 'data-mode="side"' in page and 'id="img-clean"' in page
    assert get(live, "/static/../server.py")[0] == 404 or get(live, "/static/../server.py")[0] == 403


def test_unknown_path_404_wrong_method_405(make_live):
    live = make_live(feed=False)
    assert get(live, "/nope")[0] == 404
    assert get(live, "/stream/other.mjpg")[0] == 404
    assert get(live, "/api/status", method="POST")[0] == 405
    assert get(live, "/stream/clean.mjpg", method="HEAD")[0] == 405
    assert get(live, "/healthz", method="HEAD")[0] == 200


def test_malformed_request_gets_4xx_and_server_keeps_serving(make_live):
    live = make_live(feed=False)
    for garbage in (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n",
                    b"GET /healthz HTTP/9.9\r\nHost\r\n\r\n",
                    b"GET / HTTP/1.1\r\nContent-Length: -5\r\n\r\n"):
        with socket.create_connection(("127.0.0.1", live.port), timeout=5) as s:
            s.sendall(garbage)
            reply = s.recv(4096)
        assert re.match(rb"HTTP/1\.[01] 4\d\d", reply), reply[:80]
    assert get(live, "/healthz")[0] == 200


def test_port_in_use_is_one_clear_error():
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    cfg = LiveConfig(host="127.0.0.1", port=port)
    hub = LiveHub(cfg)
    try:
        with pytest.raises(RtcleanError) as e:
            LiveServer(cfg, hub, status=dict, healthy=lambda: True).start()
        assert str(e.value) == f"live view: cannot listen on 127.0.0.1:{port}: address already in use"
    finally:
        busy.close()


def test_bad_host_is_one_clear_error():
    # 192.0.2.1 (TEST-NET-1) is not an address of this machine: bind fails locally.
    cfg = LiveConfig(host="192.0.2.1", port=0)
    with pytest.raises(RtcleanError) as e:
        LiveServer(cfg, LiveHub(cfg), status=dict, healthy=lambda: True).start()
    assert str(e.value) == "live view: cannot listen on 192.0.2.1:0: cannot assign requested address"
    assert "\n" not in str(e.value)


def test_http10_client_gets_unchunked_parts(make_live):
    """HTTP/1.0 has no chunked encoding: the parts go out as they are and the
    stream ends with the connection (the fan-out frames parts per client)."""
    live = make_live()
    with socket.create_connection((live.host, live.port), timeout=10) as s:
        s.sendall(b"GET /stream/clean.mjpg HTTP/1.0\r\nHost: x\r\n\r\n")
        f = s.makefile("rb")
        status = f.readline()
        assert status.startswith(b"HTTP/1.0 200") or status.startswith(b"HTTP/1.1 200"), status
        headers = {}
        while (line := f.readline().strip()):
            k, v = line.decode().split(":", 1)
            headers[k.strip().lower()] = v.strip()
        assert "chunked" not in headers.get("transfer-encoding", "")
        seqs = []
        for _ in range(3):
            assert f.readline().strip() == f"--{BOUNDARY}".encode()
            part = {}
            while (line := f.readline().strip()):
                k, v = line.decode().split(":", 1)
                part[k.strip().lower()] = v.strip()
            body = f.read(int(part["content-length"]))
            assert cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR) is not None
            assert f.readline() == b"\r\n"
            seqs.append(int(part["x-frame-seq"]))
        assert seqs == sorted(seqs) and len(set(seqs)) == 3


def test_side_by_side_shares_the_jpeg_of_a_passed_frame():
    """Both streams watched: a passed frame's clean picture is its raw picture,
    so the second stream reuses the first one's JPEG; a repaired frame's clean
    picture differs and gets its own encode."""
    hub = LiveHub(LiveConfig())
    hub.mark_repaired = False  # compare pictures without the tag
    hub.start()
    try:
        hub.attach("clean")
        hub.attach("raw")
        img = gradient(1, 160, 120)
        fixed = gradient(2, 160, 120)

        def both(seq: int) -> tuple[LiveJpeg, LiveJpeg]:
            wait_until(lambda: all(hub.latest(n) is not None and hub.latest(n).seq == seq for n in STREAMS),
                       what=f"both streams at frame {seq}")
            return hub.latest("clean"), hub.latest("raw")

        hub.publish(processed(0, img))
        clean, raw = both(1)
        assert clean.data == raw.data
        st = hub.stats()["streams"]
        assert st["clean"]["encodes"] + st["raw"]["encodes"] == 1
        assert st["clean"]["shared"] + st["raw"]["shared"] == 1

        hub.publish(processed(1, img, action="repair:flow", clean=fixed))
        clean, raw = both(2)
        assert clean.data != raw.data
        for jpeg, want in ((clean, fixed), (raw, img)):
            got = cv2.imdecode(np.frombuffer(jpeg.data, np.uint8), cv2.IMREAD_COLOR)
            assert psnr(got, want) > 30
        st = hub.stats()["streams"]
        assert st["clean"]["encodes"] + st["raw"]["encodes"] == 3
    finally:
        hub.close()
