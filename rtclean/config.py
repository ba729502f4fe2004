"""Configuration: one typed dataclass per YAML section, validated on load.

An unknown key, a value of the wrong type or out of range raises ConfigError
(exit status 2) naming the key path, the value, what was expected and the
YAML line, e.g.

    config/rtclean.yaml:14: record.segment_s: expected a number in [1, 3600], got 0

The dataclass fields are the single source of truth: their types, defaults
and the ``spec()`` metadata (range, choices) drive validation, so a new
option is one line here.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rtclean.errors import ConfigError


def spec(default: Any, *, lo: float | None = None, hi: float | None = None,
         choices: tuple | None = None, doc: str = "") -> Any:
    """A dataclass field with validation metadata."""
    meta = {"lo": lo, "hi": hi, "choices": choices, "doc": doc}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


# --------------------------------------------------------------------------- sections


@dataclass
class V4l2Config:
    device: str = spec("/dev/video0", doc="V4L2 device node or index")
    width: int = spec(720, lo=16, hi=4096)
    height: int = spec(576, lo=16, hi=4096)
    fps: float = spec(25.0, lo=1, hi=240)
    fourcc: str = spec("YUYV", choices=("YUYV", "MJPG"), doc="pixel format asked of the card")


@dataclass
class Picamera2Config:
    width: int = spec(720, lo=16, hi=4096)
    height: int = spec(576, lo=16, hi=4096)
    fps: float = spec(25.0, lo=1, hi=240)


@dataclass
class FileSourceConfig:
    path: str = spec("", doc="video file to read")
    realtime: bool = spec(True, doc="pace frames at the file's native rate (live-like)")
    loop: bool = spec(False, doc="start again at the end of the file")


@dataclass
class DemoConfig:
    standard: str = spec("pal", choices=("pal", "ntsc"))
    channel: str = spec("analog", choices=("analog", "image"),
                        doc="analog: the shipped loop rendered through the physical FM/composite simulator; "
                            "image: the live image-domain simulator (uses seed and breakup)")
    seed: int = spec(1, lo=0, hi=2**31 - 1, doc="image channel only")
    breakup: float = spec(0.15, lo=0.0, hi=1.0, doc="share of time the link is degraded (image channel only)")
    realtime: bool = spec(True, doc="pace at the standard's frame rate")
    width: int = spec(0, lo=0, hi=4096, doc="0 = the standard's size (720 wide)")


@dataclass
class SourceConfig:
    kind: str = spec("v4l2", choices=("v4l2", "picamera2", "file", "demo"))
    v4l2: V4l2Config = field(default_factory=V4l2Config)
    picamera2: Picamera2Config = field(default_factory=Picamera2Config)
    file: FileSourceConfig = field(default_factory=FileSourceConfig)
    demo: DemoConfig = field(default_factory=DemoConfig)
    stall_s: float = spec(2.0, lo=0.1, hi=60, doc="no frame for this long = no signal")


@dataclass
class DetectConfig:
    detector: str = spec("auto", choices=("auto", "classical", "tflite"),
                         doc="auto: the TFLite model together with the classical detector if the model loads, else classical")
    model: str = spec("models/breakup.tflite", doc="TFLite model (relative to the package root or absolute)")
    delegate: str = spec("cpu", choices=("cpu", "edgetpu"))
    precision: str = spec("auto", choices=("auto", "int8", "float32"),
                          doc="model file: the int8 one, the float32 twin its card names, or auto: the "
                              "twin when it runs clearly faster on this CPU (timed at start-up; the Edge "
                              "TPU takes int8)")
    parallel: bool = spec(True, doc="run the classical detector on a second thread beside the models (the "
                                    "same work, about a third less time per frame; only where there is more "
                                    "than one core)")
    threshold: float = spec(0.5, lo=0.0, hi=1.0, doc="score at or above which a frame is broken")
    release: float = spec(0.35, lo=0.0, hi=1.0, doc="score below which a breakup run may end")
    clean_frames: int = spec(2, lo=1, hi=100, doc="clean frames needed to end a breakup run")
    frozen_frames: int = spec(12, lo=2, hi=1000, doc="identical frames that mean the receiver froze")
    chroma_clicks: bool = spec(True, doc="count coloured single-line dashes, coloured snow and faint clicks "
                                       "on flat ground (a camera through composite video; off for rendered "
                                       "or digital sources)")


@dataclass
class RepairConfig:
    enabled: bool = spec(True)
    max_hold_ms: float = spec(1000.0, lo=0, hi=60000,
                              doc="continuous breakup after which the signal is declared lost")
    on_lost: str = spec("overlay", choices=("overlay", "raw"),
                        doc="overlay: frozen last clean frame + SIGNAL LOST; raw: show the input")
    flow_width: int = spec(180, lo=32, hi=1920, doc="width at which optical flow is computed")
    history: int = spec(3, lo=2, hi=16, doc="clean frames kept for prediction")
    band_threshold: float = spec(0.5, lo=0.0, hi=1.0,
                                 doc="band (or field) score at or above which only that band (field) is replaced")
    band_max_share: float = spec(0.6, lo=0.0, hi=1.0,
                                 doc="share of damaged bands above which the whole frame is replaced")
    feather: int = spec(8, lo=0, hi=64, doc="lines over which a replaced band fades into an intact one")
    osd_frames: int = spec(12, lo=0, hi=255,
                           doc="clean frames a detailed pixel must stay unchanged to count as OSD (0 = off)")


@dataclass
class RecordConfig:
    enabled: bool = spec(True)
    dir: str = spec("recordings", doc="where segments are written")
    raw: bool = spec(True, doc="record the raw input")
    clean: bool = spec(True, doc="record the cleaned output")
    segment_s: float = spec(60.0, lo=1, hi=3600)
    queue_s: float = spec(2.0, lo=0.1, hi=60, doc="recorder queue bound in seconds of video")
    codec: str = spec("libx264", choices=("libx264", "h264_v4l2m2m"))
    crf: int = spec(23, lo=0, hi=51)
    preset: str = spec("ultrafast", choices=("ultrafast", "superfast", "veryfast", "faster", "fast", "medium"))
    bitrate_kbps: int = spec(4000, lo=100, hi=100000,
                             doc="h264_v4l2m2m bitrate; libx264 caps CRF at 2x this (full-screen snow)")
    sidecar: bool = spec(True, doc="per-frame JSON lines beside each clean segment")
    auto: bool = spec(True, doc="start and stop with the video signal; false: only when started by hand")
    start_after_s: float = spec(1.0, lo=0, hi=600, doc="signal present this long before recording starts")
    stop_after_s: float = spec(10.0, lo=0, hi=3600, doc="signal lost this long before recording stops")
    min_free_mb: int = spec(500, lo=0, hi=10_000_000,
                            doc="free space kept by deleting the oldest finished recordings")
    mp4: bool = spec(True, doc="remux each finished segment to MP4 (browser-playable, no re-encode)")
    lookahead_ms: float = spec(0.0, lo=0, hi=2000,
                               doc="delay the clean recording by up to this to interpolate short breakup "
                                   "runs from both sides (0 = off; the live view stays causal)")


@dataclass
class LiveConfig:
    enabled: bool = spec(True)
    host: str = spec("127.0.0.1")
    port: int = spec(8080, lo=0, hi=65535)
    jpeg_quality: int = spec(80, lo=10, hi=100)
    video: str = spec("auto", choices=("auto", "mjpeg"),
                      doc="auto: browsers that can play H.264 get the DVR encoder's stream while "
                          "recording (no encode per viewer), MJPEG otherwise; mjpeg: always MJPEG")
    mark_repaired: bool = spec(True, doc="tag synthesized frames in the live view")
    max_clients: int = spec(16, lo=1, hi=1000, doc="live stream connections served at once (503 beyond)")
    token: str = spec("", doc="secret for state-changing web controls; empty = those controls disabled")
    timeline_s: float = spec(300.0, lo=10, hi=3600, doc="seconds of breakup-score history the page draws")


@dataclass
class DisplayConfig:
    enabled: bool = spec(False, doc="show the clean feed on a local screen (HDMI); needs the [display] extra")
    driver: str = spec("auto", choices=("auto", "kmsdrm", "x11", "wayland", "dummy", "offscreen"),
                       doc="SDL video driver; auto = SDL's choice (KMSDRM on a Pi console)")
    fullscreen: bool = spec(True)
    width: int = spec(0, lo=0, hi=7680, doc="window size when not fullscreen; 0 = the picture's size")
    height: int = spec(0, lo=0, hi=4320)
    status_line: bool = spec(True, doc="fps, breakup rate and recording state along the bottom")
    lost_after_s: float = spec(1.0, lo=0.1, hi=60, doc="no frame for this long = SIGNAL LOST overlay")


@dataclass
class RtpConfig:
    enabled: bool = spec(False, doc="send the clean feed as H.264 over RTP/UDP (ground-control software)")
    host: str = spec("127.0.0.1", doc="receiver address (the GCS machine; a multicast group works too)")
    port: int = spec(5600, lo=1, hi=65534, doc="receiver UDP port for RTP (RTCP goes to port + 1); "
                                              "5600 is QGroundControl's default")
    codec: str = spec("libx264", choices=("libx264", "h264_v4l2m2m"),
                      doc="libx264 (software) | h264_v4l2m2m (Raspberry Pi 4 hardware encoder)")
    bitrate_kbps: int = spec(2000, lo=100, hi=50000, doc="target bitrate (VBV-capped for libx264)")
    gop: int = spec(25, lo=1, hi=600, doc="frames between keyframes; SPS/PPS are repeated with each, "
                                          "so a receiver that joins late waits at most this long")
    fps: float = spec(0.0, lo=0, hi=240, doc="frames per second sent; 0 = every frame of the source")
    mtu: int = spec(1200, lo=300, hi=9000, doc="largest RTP packet in bytes (fits a VPN or Wi-Fi link)")
    sdp_file: str = spec("", doc="also write the session description here (it is always at GET /stream.sdp)")


@dataclass
class Config:
    source: SourceConfig = field(default_factory=SourceConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)
    repair: RepairConfig = field(default_factory=RepairConfig)
    record: RecordConfig = field(default_factory=RecordConfig)
    live: LiveConfig = field(default_factory=LiveConfig)
    display: DisplayConfig = field(default_factory=DisplayConfig)
    rtp: RtpConfig = field(default_factory=RtpConfig)
    log_level: str = spec("info", choices=("debug", "info", "warning", "error"))
    threads: int = spec(1, lo=1, hi=16, doc="OpenCV threads for the per-frame path")


# --------------------------------------------------------------------------- loading


def _where(node: yaml.Node | None, origin: str) -> str:
    if node is None:
        return origin
    return f"{origin}:{node.start_mark.line + 1}"


def _fail(node, origin, path, value, expected) -> ConfigError:
    return ConfigError(f"{_where(node, origin)}: {path}: expected {expected}, got {value!r}")


def _expected(f: dataclasses.Field, typ: type) -> str:
    m = f.metadata
    if m.get("choices"):
        return "one of " + ", ".join(map(str, m["choices"]))
    what = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}[typ]
    if m.get("lo") is not None and m.get("hi") is not None:
        what += f" in [{m['lo']:g}, {m['hi']:g}]"
    return what


def _scalar(f: dataclasses.Field, typ: type, node: yaml.Node, origin: str, path: str) -> Any:
    value = yaml.safe_load(yaml.serialize(node)) if isinstance(node, yaml.ScalarNode) else None
    expected = _expected(f, typ)
    if not isinstance(node, yaml.ScalarNode):
        raise _fail(node, origin, path, "a mapping or list", expected)
    # bool is an int in Python: reject it explicitly for numbers, and reject
    # numbers for bools, so "enabled: 1" or "port: yes" are errors.
    if typ is bool:
        ok = isinstance(value, bool)
    elif typ is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif typ is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    else:  # str: accept any scalar written plainly (device: 0 means "0")
        ok = value is not None and not isinstance(value, bool)
        value = str(value) if ok else value
    if not ok:
        raise _fail(node, origin, path, value, expected)
    m = f.metadata
    if m.get("choices") and value not in m["choices"]:
        raise _fail(node, origin, path, value, expected)
    if m.get("lo") is not None and value < m["lo"] or m.get("hi") is not None and value > m["hi"]:
        raise _fail(node, origin, path, value, expected)
    return value


def _build(cls: type, node: yaml.Node | None, origin: str, prefix: str) -> Any:
    obj = cls()
    if node is None or (isinstance(node, yaml.ScalarNode) and node.value in ("", "~", "null")):
        return obj
    if not isinstance(node, yaml.MappingNode):
        raise ConfigError(f"{_where(node, origin)}: {prefix or 'config'}: expected a mapping of keys")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key_node, val_node in node.value:
        key = key_node.value
        path = f"{prefix}.{key}" if prefix else key
        if key not in fields:
            known = ", ".join(fields)
            raise ConfigError(f"{_where(key_node, origin)}: {path}: unknown key (expected one of: {known})")
        typ = hints[key]
        if dataclasses.is_dataclass(typ):
            setattr(obj, key, _build(typ, val_node, origin, path))
        else:
            setattr(obj, key, _scalar(fields[key], typ, val_node, origin, path))
    return obj


def parse(text: str, origin: str = "<config>") -> Config:
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError(f"{origin}{line}: not valid YAML: {problem}") from None
    return _build(Config, root, origin, "")


def load(path: str | os.PathLike | None) -> Config:
    """Load and validate a YAML file; None gives the defaults."""
    if path is None:
        return Config()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{p}: cannot read config: {e.strerror or e}") from None
    return parse(text, str(p))


def set_option(cfg: Config, dotted: str, raw: str) -> None:
    """Apply a ``--set section.key=value`` override with the same validation."""
    node = yaml.compose(raw if raw != "" else "''")
    parts = dotted.split(".")
    obj: Any = cfg
    for i, part in enumerate(parts):
        hints = typing.get_type_hints(type(obj))
        fields = {f.name: f for f in dataclasses.fields(obj)}
        path = ".".join(parts[: i + 1])
        if part not in fields:
            raise ConfigError(f"--set: {path}: unknown key (expected one of: {', '.join(fields)})")
        typ = hints[part]
        if i == len(parts) - 1:
            if dataclasses.is_dataclass(typ):
                raise ConfigError(f"--set: {path}: is a section, name one of its keys")
            setattr(obj, part, _scalar(fields[part], typ, node, "--set", path))
        else:
            if not dataclasses.is_dataclass(typ):
                raise ConfigError(f"--set: {path}: is not a section")
            obj = getattr(obj, part)


def describe(cls: type = Config, prefix: str = "") -> list[tuple[str, Any, str]]:
    """(key path, default, doc) for every option: used to check the shipped YAML."""
    out = []
    hints = typing.get_type_hints(cls)
    inst = cls()
    for f in dataclasses.fields(cls):
        path = f"{prefix}.{f.name}" if prefix else f.name
        if dataclasses.is_dataclass(hints[f.name]):
            out += describe(hints[f.name], path)
        else:
            out.append((path, getattr(inst, f.name), f.metadata.get("doc", "")))
    return out

