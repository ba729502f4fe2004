"""Web control safety, recordings API, timeline and metrics of the live
server: a real LiveServer with a real RecordingLibrary over real files in a
temporary directory, driven by a real HTTP client."""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from rtclean.config import Config, LiveConfig
from rtclean.errors import RtcleanError
from rtclean.live.hub import LiveHub
from rtclean.live.server import LiveServer
from rtclean.record.library import RecordingLibrary
from rtclean.sources.base import Source
from test_live import Feeder, gradient, parse_prometheus, status_of, wait_until

TOKEN = "s3cret-token"


class Control:
    """What LiveServer needs of the pipeline: set_recording() and library."""

    def __init__(self, directory: Path) -> None:
        self.calls: list[bool] = []
        self.active: set[str] = set()
        self.library = RecordingLibrary(directory, active=lambda: set(self.active))

    def set_recording(self, on: bool) -> None:
        self.calls.append(on)


class Server:
    def __init__(self, tmp_path: Path, token: str = TOKEN, control: bool = True, feed: bool = True) -> None:
        self.dir = tmp_path / "rec"
        self.dir.mkdir(exist_ok=True)
        self.cfg = LiveConfig(host="127.0.0.1", port=0, token=token, max_clients=2)
        self.hub = LiveHub(self.cfg)
        self.control = Control(self.dir) if control else None
        self.state: dict = {"healthy": True}
        self.server = LiveServer(self.cfg, self.hub, status=lambda: status_of(self.state, self.hub),
                                 healthy=lambda: True, control=self.control)
        self.hub.start()
        self.server.start()
        self.feeder = Feeder(self.hub) if feed else None
        if self.feeder:
            self.feeder.start()

    def request(self, method: str, path: str, body: object = None, headers: dict | None = None,
                raw_body: bytes | None = None) -> tuple[int, dict, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)
        try:
            data = raw_body if raw_body is not None else (None if body is None else json.dumps(body).encode())
            conn.request(method, path, body=data, headers=headers or {})
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()

    def close(self) -> None:
        if self.feeder:
            self.feeder.stop()
        self.server.stop()
        self.hub.close()


@pytest.fixture
def make_server(tmp_path):
    made: list[Server] = []

    def make(**kw) -> Server:
        s = Server(tmp_path, **kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def auth(token: str = TOKEN) -> dict:
    return {"X-Rtclean-Token": token}


def add_recording(d: Path, name: str, mtime: float, size: int = 5000, mp4: bool = True) -> dict[str, bytes]:
    """A recording's files with random bytes (the server serves bytes; it never decodes)."""
    rng = np.random.default_rng(abs(hash(name)) % 2**32)
    out = {}
    kinds = {"raw": ".raw.ts", "clean": ".clean.ts"}
    if mp4:
        kinds["clean.mp4"] = ".clean.mp4"
    for kind, suffix in kinds.items():
        data = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        p = d / (name + suffix)
        p.write_bytes(data)
        os.utime(p, (mtime, mtime))
        out[kind] = data
    return out


# ----------------------------------------------------------------------------- token rules


def test_controls_disabled_without_a_configured_token(make_server):
    s = make_server(token="")
    for path, body in (("/api/record", {"on": True}), ("/api/tag", {"on": False}), ("/api/auth", None)):
        status, headers, data = s.request("POST", path, body, auth("anything"))
        assert status == 403, path
        assert headers["content-type"].startswith("application/json")
        assert "live.token" in json.loads(data)["error"]
    assert s.control.calls == [] and s.hub.mark_repaired is True


def test_missing_token_is_401_and_wrong_token_403(make_server):
    s = make_server()
    status, headers, data = s.request("POST", "/api/record", {"on": True})
    assert status == 401 and "X-Rtclean-Token" in json.loads(data)["error"]
    assert headers["www-authenticate"].startswith("Bearer")
    status, _, data = s.request("POST", "/api/record", {"on": True}, auth("wrong"))
    assert status == 403 and json.loads(data) == {"error": "wrong token"}
    # A token differing only in its last character, and an empty header.
    assert s.request("POST", "/api/record", {"on": True}, auth(TOKEN[:-1] + "X"))[0] == 403
    assert s.request("POST", "/api/record", {"on": True}, auth(""))[0] == 403
    assert s.control.calls == []


def test_right_token_starts_and_stops_recording(make_server):
    s = make_server()
    status, _, data = s.request("POST", "/api/record", {"on": True}, auth())
    assert status == 200 and json.loads(data)["on"] is True
    status, _, _ = s.request("POST", "/api/record", {"on": False}, {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200
    assert s.control.calls == [True, False]
    assert s.request("POST", "/api/auth", None, auth())[0] == 200


@pytest.mark.parametrize("body", [b"", b"not json", b"[1]", b'{"on": "yes"}', b'{"on": 1}', b"{}"])
def test_bad_control_body_is_400(make_server, body):
    s = make_server()
    status, _, data = s.request("POST", "/api/record", raw_body=body,
                                headers={**auth(), "Content-Type": "application/json"})
    assert status == 400 and "error" in json.loads(data)
    assert s.control.calls == []


def test_controls_without_a_pipeline_are_503(make_server):
    s = make_server(control=False)
    status, _, data = s.request("POST", "/api/record", {"on": True}, auth())
    assert status == 503 and "not available" in json.loads(data)["error"]
    status, _, data = s.request("GET", "/api/recordings")
    assert status == 503 and "error" in json.loads(data)


def test_state_changing_methods_refuse_get(make_server):
    s = make_server()
    assert s.request("GET", "/api/record")[0] == 405
    assert s.request("GET", "/api/tag")[0] == 405


def test_tag_toggle_changes_the_live_picture(make_server):
    from rtclean.frames import REPAIR
    from test_live import processed

    s = make_server(feed=False)
    img = gradient(1)
    p = processed(0, img, action=REPAIR)
    assert not np.array_equal(s.hub.render_clean(p), img)  # tagged
    status, _, data = s.request("POST", "/api/tag", {"on": False}, auth())
    assert status == 200 and json.loads(data) == {"ok": True, "on": False}
    assert s.hub.mark_repaired is False and np.array_equal(s.hub.render_clean(p), img)
    st = json.loads(s.request("GET", "/api/status")[2])
    assert st["live"]["mark_repaired"] is False and st["controls"]["token_set"] is True


# ----------------------------------------------------------------------------- recordings


def test_recordings_list_newest_first_with_sizes(make_server):
    s = make_server(feed=False)
    add_recording(s.dir, "20260101-100000-000", 1_767_261_600, size=1000)
    add_recording(s.dir, "20260102-090000-000", 1_767_344_400, size=2000, mp4=False)
    (s.dir / "20260101-100000-000.keep").touch()
    (s.dir / "notes.txt").write_text("not a recording")
    status, _, data = s.request("GET", "/api/recordings")
    assert status == 200
    body = json.loads(data)
    recs = body["recordings"]
    assert [r["name"] for r in recs] == ["20260102-090000-000", "20260101-100000-000"]
    assert recs[0]["size_bytes"] == 4000 and recs[1]["size_bytes"] == 3000
    assert recs[1]["keep"] is True and recs[0]["keep"] is False
    assert recs[1]["play"] == "/recordings/20260101-100000-000/clean.mp4" and recs[0]["play"] is None
    assert recs[1]["started_iso"] == "2026-01-01T10:00:00+00:00"
    assert body["free_mb"] > 0


def test_download_is_the_exact_file_with_ranges(make_server):
    s = make_server(feed=False)
    files = add_recording(s.dir, "20260101-100000-000", 1_767_261_600, size=300_000)
    for kind, data in files.items():
        status, headers, body = s.request("GET", f"/recordings/20260101-100000-000/{kind}?download=1")
        assert status == 200 and body == data, kind
        assert headers["content-disposition"].startswith("attachment")
    status, headers, body = s.request("GET", "/recordings/20260101-100000-000/clean.mp4",
                                      headers={"Range": "bytes=1000-1999"})
    assert status == 206 and body == files["clean.mp4"][1000:2000]
    assert headers["content-type"] == "video/mp4"
    assert s.request("GET", "/recordings/20260101-100000-000/raw.mp4")[0] == 404
    assert s.request("GET", "/recordings/20260199-000000-000/raw")[0] == 404


@pytest.mark.parametrize("path", [
    "/recordings/../raw",
    "/recordings/..%2F..%2Fetc%2Fpasswd/raw",
    "/recordings/%2E%2E/raw",
    "/recordings/20260101-100000-000/..%2F..%2F..%2Fetc%2Fpasswd",
    "/recordings/20260101-100000-000/%2E%2E",
    "/recordings/.hidden/raw",
    "/recordings/a%00b/raw",
    "/recordings/20260101-100000-000.raw.ts/raw",
    "/static/../../../../etc/passwd",
    "/static/%2E%2E/%2E%2E/%2E%2E/etc/passwd",
])
def test_path_traversal_is_refused(make_server, path):
    s = make_server(feed=False)
    add_recording(s.dir, "20260101-100000-000", 1_767_261_600)
    (s.dir.parent / "secret.txt").write_text("SECRET")
    status, _, body = s.request("GET", path)
    assert status in (400, 403, 404), (path, status)
    assert b"root:" not in body and b"SECRET" not in body


def test_symlink_out_of_the_directory_is_not_served(make_server):
    s = make_server(feed=False)
    secret = s.dir.parent / "secret.bin"
    secret.write_bytes(b"SECRET" * 100)
    add_recording(s.dir, "20260101-100000-000", 1_767_261_600)
    (s.dir / "20260101-100000-000.clean.mp4").unlink()
    (s.dir / "20260101-100000-000.clean.mp4").symlink_to(secret)
    status, _, body = s.request("GET", "/recordings/20260101-100000-000/clean.mp4")
    assert status == 404 and b"SECRET" not in body


def test_delete_and_keep_need_the_token(make_server):
    s = make_server(feed=False)
    add_recording(s.dir, "20260101-100000-000", 1_767_261_600)
    name = "20260101-100000-000"
    assert s.request("DELETE", f"/api/recordings/{name}")[0] == 401
    assert s.request("DELETE", f"/api/recordings/{name}", headers=auth("nope"))[0] == 403
    assert s.request("POST", f"/api/recordings/{name}/keep", {"keep": True})[0] == 401
    assert len(list(s.dir.iterdir())) == 3  # nothing touched

    assert s.request("POST", f"/api/recordings/{name}/keep", {"keep": True}, auth())[0] == 200
    assert (s.dir / f"{name}.keep").exists()
    status, _, data = s.request("DELETE", f"/api/recordings/{name}", headers=auth())
    assert status == 409 and "keep" in json.loads(data)["error"]
    assert s.request("POST", f"/api/recordings/{name}/keep", {"keep": False}, auth())[0] == 200
    assert not (s.dir / f"{name}.keep").exists()

    s.control.active = {name}
    status, _, data = s.request("DELETE", f"/api/recordings/{name}", headers=auth())
    assert status == 409 and "recorded" in json.loads(data)["error"]
    s.control.active = set()
    status, _, data = s.request("DELETE", f"/api/recordings/{name}", headers=auth())
    assert status == 200 and json.loads(data)["deleted"] == name
    assert list(s.dir.iterdir()) == []
    assert s.request("DELETE", f"/api/recordings/{name}", headers=auth())[0] == 404
    assert s.request("DELETE", "/api/recordings/..", headers=auth())[0] in (400, 404)


def test_delete_disabled_without_token_config(make_server):
    s = make_server(token="", feed=False)
    add_recording(s.dir, "20260101-100000-000", 1_767_261_600)
    status, _, data = s.request("DELETE", "/api/recordings/20260101-100000-000", headers=auth("x"))
    assert status == 403 and "live.token" in json.loads(data)["error"]
    assert len(list(s.dir.iterdir())) == 3


# ----------------------------------------------------------------------------- timeline, metrics, status


def test_timeline_bins_the_frames_published(make_server):
    s = make_server()
    wait_until(lambda: s.hub.published >= 30, what="frames")
    status, _, data = s.request("GET", "/api/timeline?seconds=10&bins=20")
    assert status == 200
    tl = json.loads(data)
    assert tl["bins"] == 20 and len(tl["score"]) == 20 and len(tl["breakup"]) == 20
    assert tl["frames"] == sum(tl["count"]) >= 25
    assert tl["score"][-1] == 0.0 and tl["score"][0] is None  # the feeder's frames score 0; older bins empty
    assert s.request("GET", "/api/timeline?seconds=abc")[0] == 400
    assert s.request("GET", "/api/timeline?bins=0")[0] == 400


def test_timeline_marks_breakup_share_and_max_score():
    from rtclean.live.timeline import Timeline

    tl = Timeline(60)
    for i in range(100):  # 4 s at 25 fps; frames 50-59 broken with score 0.9
        broken = 50 <= i < 60
        tl.add(i * 0.04, 0.9 if broken else 0.1, broken, broken, False)
    out = tl.binned(now=4.0, seconds=4.0, bins=4)
    assert out["count"] == [24, 25, 25, 25]  # t=0 lies outside (t0, now]; t=1.0 opens bin 1
    assert out["score"] == [0.1, 0.1, 0.9, 0.1]
    assert out["breakup"] == [0.0, 0.0, 0.4, 0.0]


def test_metrics_histograms_and_counters_grow_while_frames_flow(make_server):
    s = make_server()
    wait_until(lambda: s.hub.published >= 5, what="frames")
    m1 = parse_prometheus(s.request("GET", "/metrics")[2].decode())
    n1 = s.hub.published
    wait_until(lambda: s.hub.published >= n1 + 10, what="more frames")
    m2 = parse_prometheus(s.request("GET", "/metrics")[2].decode())
    for name in ("rtclean_frame_latency_seconds", "rtclean_breakup_score", "rtclean_live_latency_seconds"):
        assert m2[name]["type"] == "histogram"
    assert m2["rtclean_frame_latency_seconds"]["count"] > m1["rtclean_frame_latency_seconds"]["count"] >= 5
    assert m2["rtclean_breakup_score"]["count"] > m1["rtclean_breakup_score"]["count"]
    assert m2["rtclean_actions_total"]["type"] == "counter"
    passes = dict(m2["rtclean_actions_total"]["samples"])['action="pass"']
    assert passes > dict(m1["rtclean_actions_total"]["samples"])['action="pass"']
    frames_in = dict(m2["rtclean_frames_total"]["samples"])['stage="in"']
    assert frames_in > dict(m1["rtclean_frames_total"]["samples"])['stage="in"']
    for name in ("rtclean_breakup_frames_total", "rtclean_dropped_frames_total",
                 "rtclean_source_reconnects_total", "rtclean_recording_written_bytes_total"):
        assert m2[name]["type"] == "counter", name


def test_status_has_system_figures(make_server):
    s = make_server(feed=False)
    st = json.loads(s.request("GET", "/api/status")[2])
    assert set(st["system"]) == {"cpu_temp_c", "disk_free_mb", "cpu_percent"}
    assert st["controls"] == {"token_set": True, "recording": True, "recordings": True}


def test_cpu_temp_reads_the_cpu_zone(tmp_path):
    from rtclean.live.system import cpu_temp_c

    for i, (kind, milli) in enumerate([("acpitz", "30000"), ("cpu-thermal", "61234")]):
        z = tmp_path / f"thermal_zone{i}"
        z.mkdir()
        (z / "type").write_text(kind + "\n")
        (z / "temp").write_text(milli + "\n")
    assert cpu_temp_c(tmp_path) == 61.2
    assert cpu_temp_c(tmp_path / "none") is None


# ----------------------------------------------------------------------------- /healthz on a real pipeline


class StallingSource(Source):
    """Delivers frames at 25 fps, then stops delivering without failing, like
    a capture card that hangs: read() blocks until the test releases it."""

    name = "stalling"

    def __init__(self, frames: int) -> None:
        super().__init__()
        self.frames = frames
        self.i = 0
        self.release = threading.Event()

    def open(self) -> None:
        self.size = (320, 240)

    def read(self):
        if self.i >= self.frames:
            self.release.wait()
            return None
        time.sleep(0.04)
        self.i += 1
        return gradient(self.i), self.i / 25

    def close(self) -> None:
        self.release.set()


def test_healthz_503_when_the_source_stalls(tmp_path):
    from rtclean.pipeline import LivePipeline

    cfg = Config()
    cfg.record.enabled = False
    cfg.live.host, cfg.live.port = "127.0.0.1", 0
    cfg.source.stall_s = 0.5
    cfg.detect.detector = "classical"
    src = StallingSource(frames=40)
    pipe = LivePipeline(cfg, src)
    t = threading.Thread(target=pipe.run, daemon=True)
    t.start()
    try:
        wait_until(lambda: pipe.server is not None and pipe.server.port, what="server")
        url_port = pipe.server.port

        def health() -> int:
            conn = http.client.HTTPConnection("127.0.0.1", url_port, timeout=5)
            conn.request("GET", "/healthz")
            return conn.getresponse().status

        wait_until(lambda: src.i >= 10, what="frames flowing")
        assert health() == 200
        wait_until(lambda: health() == 503, timeout=15, what="/healthz 503 after the stall")
        st = json.loads(_get(url_port, "/api/status"))
        assert st["state"] == "no_signal"
    finally:
        pipe.stop()
        src.release.set()
        t.join(timeout=15)


def _get(port: int, path: str) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", path)
    return conn.getresponse().read()


def test_live_server_takes_control_keyword():
    # The pipeline constructs LiveServer(cfg.live, hub, status, healthy, control=pipeline).
    hub = LiveHub(LiveConfig())
    srv = LiveServer(LiveConfig(), hub, dict, lambda: True, control=None)
    assert srv.control is None
    with pytest.raises(RtcleanError):
        LiveServer(LiveConfig(host="256.1.1.1", port=0), hub, dict, lambda: True).start()
