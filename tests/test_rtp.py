"""RTP/H.264 output on loopback: a real encoder and UDP socket, received by
FFmpeg's own RTP demuxer (from the SDP, as ffplay/VLC do) and by the
marker-bit receiver the bench uses; decoded pictures are compared with the
frames that were sent."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import av
import numpy as np
import pytest

from rtclean import config
from rtclean.config import RtpConfig
from rtclean.errors import ConfigError, RtcleanError
from rtclean.live.rtp import RtpOutput, split_annexb
from rtclean.live.rtp_receiver import RtpReceiver, depacketize
from tests.helpers import psnr
from tests.test_live import gradient, processed

W, H = 320, 240


def free_udp_port() -> int:
    """An even UDP port whose neighbour (RTCP) is free too."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1] & ~1
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a, \
                    socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
    raise RuntimeError("no free UDP port pair")


def send_frames(out: RtpOutput, n: int, start: int = 0, fps: float = 25.0) -> list[np.ndarray]:
    sent = []
    t0 = time.monotonic()
    for i in range(start, start + n):
        img = gradient(i, W, H)
        sent.append(img)
        out.send(processed(i, img))
        time.sleep(max(0.0, t0 + (i - start + 1) / fps - time.monotonic()))
    return sent


def best_match(img: np.ndarray, sent: list[np.ndarray]) -> tuple[int, float, float]:
    """(index of the sent frame most like ``img``, its PSNR, the runner-up's PSNR)."""
    scores = [psnr(img, s) for s in sent]
    order = np.argsort(scores)[::-1]
    return int(order[0]), scores[order[0]], scores[order[1]]


class SdpReader(threading.Thread):
    """FFmpeg's RTP demuxer opening the SDP file, decoding in a thread."""

    def __init__(self, sdp: Path, want: int) -> None:
        super().__init__(daemon=True)
        self.sdp, self.want = sdp, want
        self.frames: list[np.ndarray] = []
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            with av.open(str(self.sdp), format="sdp", timeout=10,
                         options={"protocol_whitelist": "file,udp,rtp", "reorder_queue_size": "0"}) as c:
                for f in c.decode(video=0):
                    self.frames.append(f.to_ndarray(format="bgr24"))
                    if len(self.frames) >= self.want:
                        break
        except BaseException as e:  # reported by the test
            self.error = e


def test_ffmpeg_receives_the_clean_frames_from_the_sdp(tmp_path):
    port = free_udp_port()
    sdp = tmp_path / "stream.sdp"
    out = RtpOutput(RtpConfig(enabled=True, host="127.0.0.1", port=port, bitrate_kbps=3000, gop=10,
                              sdp_file=str(sdp)), 25.0, (W, H))
    out.start()
    try:
        text = sdp.read_text()
        assert f"m=video {port} RTP/AVP 96" in text and "a=rtpmap:96 H264/90000" in text
        reader = SdpReader(sdp, want=20)
        time.sleep(0.5)  # the reader binds its socket
        sent = send_frames(out, 60)
        reader.join(timeout=15)
        assert reader.error is None, reader.error
        assert len(reader.frames) >= 20
        matched = []
        for img in reader.frames:
            assert img.shape == (H, W, 3)
            assert img.std() > 20  # a picture, not a flat field
            k, best, second = best_match(img, sent)
            assert best > 25, best  # the frame that was sent...
            assert best > second + 8, (best, second)  # ...and not its neighbour
            matched.append(k)
        assert matched == sorted(matched) and len(set(matched)) == len(matched)
        # The SDP carries the parameter sets once the first keyframe went out.
        text = sdp.read_text()
        assert "sprop-parameter-sets=" in text and "profile-level-id=42" in text
        st = out.stats()
        assert st["sent"] == 60 and st["dropped"] == 0 and st["send_errors"] == 0
        assert st["keyframes"] >= 6  # gop 10
    finally:
        out.close()


def test_a_receiver_that_joins_late_decodes_from_the_next_keyframe(tmp_path):
    port = free_udp_port()
    out = RtpOutput(RtpConfig(enabled=True, host="127.0.0.1", port=port, gop=10), 25.0, (W, H))
    out.start()
    try:
        send_frames(out, 25)  # nobody listens: SPS/PPS of the first keyframe are gone
        sdp = tmp_path / "late.sdp"
        sdp.write_text(out.sdp().replace("sprop-parameter-sets", "x-ignored"))  # in-band headers only
        reader = SdpReader(sdp, want=10)
        time.sleep(0.5)
        sent = send_frames(out, 40, start=25)
        reader.join(timeout=15)
        assert reader.error is None, reader.error
        assert len(reader.frames) >= 10
        for img in reader.frames:
            _, best, _ = best_match(img, sent)
            assert best > 25
    finally:
        out.close()


def test_marker_bit_receiver_times_and_pictures():
    rx = RtpReceiver(keep_images=True)
    out = RtpOutput(RtpConfig(enabled=True, host="127.0.0.1", port=rx.port, mtu=600), 25.0, (W, H))
    out.start()
    try:
        sent = send_frames(out, 30)
        assert rx.wait_frames(30, timeout=10), len(rx.frames)
        assert rx.lost == 0
        assert rx.packets > 30  # mtu 600: pictures are fragmented (FU-A)
        by_pts = {pts: i for i, (pts, *_rest) in enumerate(out.sent_log)}
        for f in rx.frames:
            i = by_pts[(f.rtp_ts - rx.first_ts) & 0xFFFFFFFF]  # the RTP clock maps back to the frame
            assert psnr(f.image, sent[i]) > 25
        # Capture times on the 90 kHz clock: 25 fps is 3600 ticks a frame.
        steps = np.diff([pts for pts, *_ in out.sent_log])
        assert abs(float(np.median(steps)) - 3600) < 400
    finally:
        out.close()
        rx.close()


def test_rtp_fps_leaves_frames_out_evenly():
    rx = RtpReceiver()
    out = RtpOutput(RtpConfig(enabled=True, host="127.0.0.1", port=rx.port, fps=12.5), 25.0, (W, H))
    out.start()
    try:
        send_frames(out, 50)
        time.sleep(0.3)
        st = out.stats()
        assert st["frames_in"] == 50
        assert 23 <= st["sent"] <= 27 and st["sent"] + st["skipped"] + st["dropped"] == 50
        steps = np.diff([pts for pts, *_ in out.sent_log])
        assert abs(float(np.median(steps)) - 7200) < 800  # every other frame
        assert rx.wait_frames(st["sent"] - 1, timeout=5)
    finally:
        out.close()
        rx.close()


def test_send_never_waits_and_counts_drops():
    rx = RtpReceiver()
    out = RtpOutput(RtpConfig(enabled=True, host="127.0.0.1", port=rx.port), 25.0, (720, 576))
    out.start()
    try:
        img = gradient(0, 720, 576)
        for i in range(200):  # far faster than any encoder: most are replaced
            out.send(processed(i, img))
        deadline = time.monotonic() + 10
        while out.sent + out.dropped < 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert out.dropped > 0
        assert out.sent + out.dropped == 200
    finally:
        out.close()
        rx.close()


def test_unresolvable_host_and_missing_encoder_are_one_line():
    with pytest.raises(RtcleanError, match=r"rtp\.host 'no-such-host\.invalid' does not resolve"):
        RtpOutput(RtpConfig(enabled=True, host="no-such-host.invalid"), 25.0, (W, H)).start()
    # The Pi's hardware encoder: there is no /dev/video11 on this machine.
    with pytest.raises(RtcleanError, match="cannot start encoder h264_v4l2m2m") as e:
        RtpOutput(RtpConfig(enabled=True, codec="h264_v4l2m2m"), 25.0, (W, H)).start()
    assert "\n" not in str(e.value)


def test_send_errors_are_counted_and_logged_once(caplog):
    # Broadcast without SO_BROADCAST: every sendto() fails with EACCES.
    out = RtpOutput(RtpConfig(enabled=True, host="255.255.255.255", port=5600), 25.0, (W, H))
    out.start()
    try:
        send_frames(out, 10)
        deadline = time.monotonic() + 5
        while out.send_errors < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert out.send_errors == 10 and out.sent == 0
        warnings = [r for r in caplog.records if "cannot send" in r.getMessage()]
        assert len(warnings) == 1 and "Permission denied" in warnings[0].getMessage()
    finally:
        out.close()


@pytest.mark.parametrize("text, needle", [
    ("rtp:\n  port: 70000\n", "rtp.port: expected an integer in [1, 65534], got 70000"),
    ("rtp:\n  codec: h265\n", "rtp.codec: expected one of libx264, h264_v4l2m2m"),
    ("rtp:\n  bitrate_kbps: 10\n", "rtp.bitrate_kbps: expected an integer in [100, 50000]"),
    ("rtp:\n  gop: 0\n", "rtp.gop: expected an integer in [1, 600]"),
    ("rtp:\n  enabled: 1\n", "rtp.enabled: expected true or false"),
])
def test_bad_rtp_config_names_the_key(text, needle):
    with pytest.raises(ConfigError) as e:
        config.parse(text, "<t>")
    assert needle in str(e.value)


def test_bad_rtp_config_exits_2(rtclean_cmd):
    r = subprocess.run(rtclean_cmd + ["run", "--demo", "--duration", "1", "--set", "rtp.mtu=50"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "rtp.mtu: expected an integer in [300, 9000], got 50" in r.stderr
    assert "Traceback" not in r.stderr


def test_annexb_and_depacketize_roundtrip():
    sps, pps, idr = b"\x67\x42\xc0\x1e\x01", b"\x68\xce\x3c\x80", b"\x65" + bytes(range(256)) * 4
    assert split_annexb(b"\x00\x00\x00\x01" + sps + b"\x00\x00\x01" + pps + b"\x00\x00\x00\x01" + idr) == \
        [sps, pps, idr]
    fu = bytearray()
    # FU-A: indicator keeps F/NRI with type 28, header has S/E and the NAL type.
    body = idr[1:]
    parts = [body[:300], body[300:700], body[700:]]
    out = b""
    for k, part in enumerate(parts):
        head = (0x80 if k == 0 else 0) | (0x40 if k == len(parts) - 1 else 0) | (idr[0] & 0x1F)
        out += depacketize(bytes([(idr[0] & 0xE0) | 28, head]) + part, fu)
    assert out == b"\x00\x00\x00\x01" + idr
    stap = bytes([24]) + len(sps).to_bytes(2, "big") + sps + len(pps).to_bytes(2, "big") + pps
    assert depacketize(stap, bytearray()) == b"\x00\x00\x00\x01" + sps + b"\x00\x00\x00\x01" + pps


# ----------------------------------------------------------------------------- the demo service


def _start_demo(rtclean_cmd, tmp_path, *extra) -> tuple[subprocess.Popen, str, list[str]]:
    proc = subprocess.Popen(
        rtclean_cmd + ["run", "--demo", "--duration", "60", "--set", "live.host=127.0.0.1", "--set", "live.port=0",
                       "--set", "record.enabled=false", "--set", "rtp.enabled=true", *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    log, url = [], None
    end = time.monotonic() + 60
    while time.monotonic() < end:
        line = proc.stderr.readline()
        if not line:
            break
        log.append(line)
        m = re.search(r"live view at (http://\S+)", line)
        if m:
            url = m.group(1)
            break
    assert url, "".join(log)
    threading.Thread(target=lambda: log.extend(proc.stderr), daemon=True).start()
    return proc, url, log


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _wait_frames(url: str) -> int:
    """Frames processed once the pipeline runs (outputs are open by then)."""
    end = time.monotonic() + 30
    while time.monotonic() < end:
        out = json.loads(_get(url + "/api/status")[1])["frames"]["out"]
        if out > 0:
            return out
        time.sleep(0.1)
    raise AssertionError("no frames processed")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_demo_run_sends_rtp_and_serves_the_sdp(rtclean_cmd, tmp_path):
    port = free_udp_port()
    proc, url, log = _start_demo(rtclean_cmd, tmp_path, "--set", f"rtp.port={port}")
    try:
        _wait_frames(url)  # the RTP output opens after the web server
        code, body = _get(url + "/stream.sdp")
        assert code == 200
        sdp = tmp_path / "demo.sdp"
        sdp.write_bytes(body)
        reader = SdpReader(sdp, want=30)
        reader.join(timeout=30)
        assert reader.error is None, reader.error
        assert len(reader.frames) >= 30
        assert all(f.shape == (576, 720, 3) and f.std() > 10 for f in reader.frames)
        assert psnr(reader.frames[0], reader.frames[-1]) < 40  # the picture moves
        status = json.loads(_get(url + "/api/status")[1])
        assert status["rtp"]["sent"] > 30 and status["rtp"]["send_errors"] == 0
        metrics_text = _get(url + "/metrics")[1].decode()
        assert re.search(r'^rtclean_dropped_frames_total\{queue="rtp"\} \d+$', metrics_text, re.M)
        assert re.search(r"^rtclean_rtp_sent \d+", metrics_text, re.M)
    finally:
        _stop(proc)
    assert proc.returncode == 0, "".join(log)


def test_demo_run_keeps_going_when_the_rtp_host_does_not_resolve(rtclean_cmd, tmp_path):
    proc, url, log = _start_demo(rtclean_cmd, tmp_path, "--set", "rtp.host=no-such-host.invalid")
    try:
        first = _wait_frames(url)
        assert _get(url + "/stream.sdp")[0] == 404
        time.sleep(1.0)
        status = json.loads(_get(url + "/api/status")[1])
        assert status["frames"]["out"] > first and status["rtp"] is None
    finally:
        _stop(proc)
    assert proc.returncode == 0
    lines = [ln for ln in log if "rtp" in ln.lower()]
    assert len(lines) == 1 and "no-such-host.invalid" in lines[0] and "RTP output off" in lines[0], log
    assert not any("Traceback" in ln for ln in log)
