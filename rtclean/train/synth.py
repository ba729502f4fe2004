"""Labelled breakup frames generated from real clips (``rtclean dataset synth``).

Layout written to ``out`` (the same class-folder convention users follow with
``dataset sample`` + ``dataset label``, so training treats both alike)::

    out/breakup/NAME.png     frames the simulator broke (visibly, see below)
    out/clean/NAME.png       untouched frames
    out/.prev/NAME.png       the frame the receiver delivered just before NAME
                             (the model's second input)
    out/labels.jsonl         one JSON object per written frame (ground truth)

Full frames are stored (720x576 PAL or 720x480 NTSC, lossless PNG at the
fastest compression level) rather than the model's low-resolution view, so a
model of another input size or kind can be trained from the same set.

Which frames count as breakup (``frame_class``): the simulator's labels are
exact (lines that differ from the untouched frame), so a label can say
"broken" for damage nobody can see: a repeated frame of a static scene, a
single click line. The rule, used by training and evaluation alike:

- clean: no breakup kind, or a kind that changed no line at all;
- breakup: a kind that changed at least ``MIN_DAMAGED_LINES`` of the lines
  (1%: 6 lines at 576, 5 at 480; the mildest sparklies the link model makes
  hit 20 or more lines, so only near-invisible damage falls below);
- anything between: ambiguous, not written (counted in the summary);
- ``frozen`` (the capture card repeating its last frame) is not written
  either: it is the no-signal check's business (byte-identical repeats,
  rtclean/detect/nosignal.py), and a frame-pair CNN taught that "identical
  to the previous frame" is breakup would fire on static compressed scenes.
"""

from __future__ import annotations

import inspect
import itertools
import json
import logging
import math
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from rtclean.errors import ConfigError, RtcleanError

log = logging.getLogger(__name__)

MIN_DAMAGED_LINES = 0.01
LEFT_TO_NOSIGNAL = frozenset({"frozen"})
VIDEO_EXTS = frozenset({".mp4", ".mkv", ".avi", ".mov", ".ts", ".m4v", ".webm", ".mpg", ".mpeg"})
CLASSES = ("breakup", "clean")
PNG_FAST = [cv2.IMWRITE_PNG_COMPRESSION, 1]
DVR_CODECS = ("mjpeg", "h264", "mix")


def frame_class(kind: str | None, damaged_lines: float) -> str | None:
    """'breakup', 'clean', or None (ambiguous / left to the no-signal check)."""
    if kind is None or damaged_lines <= 0.0:
        return "clean"
    if kind in LEFT_TO_NOSIGNAL:
        return None
    return "breakup" if damaged_lines >= MIN_DAMAGED_LINES else None


def list_clips(paths: list[str]) -> list[Path]:
    """Video files given directly or found (not recursively) in folders."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.suffix.lower() in VIDEO_EXTS and f.is_file())
            if not found:
                raise RtcleanError(f"{p}: no video files in this folder")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            raise RtcleanError(f"{p}: no such file or folder")
    if not out:
        raise RtcleanError("no clips given")
    return out


def read_frames(path: Path, n: int | None = None, loop: bool = False) -> Iterator[np.ndarray]:
    """Decoded BGR frames of a clip (``n`` at most; looped to reach ``n``)."""
    from rtclean.sources.file import FileSource

    src = FileSource(path, loop=loop)
    src.open()
    try:
        count = 0
        while n is None or count < n:
            item = src.read()
            if item is None:
                break
            yield item[0]
            count += 1
    finally:
        src.close()


def standard_size(standard: str) -> tuple[int, int] | None:
    """(w, h) of a video standard's analog frame; None for an unknown one
    (``simulate`` says so)."""
    from rtclean.sim.feed import STANDARDS

    std = STANDARDS.get(standard)
    return (std.width, std.height) if std is not None else None


def interlace(frames: Iterator[np.ndarray], size: tuple[int, int] | None = None) -> Iterator[np.ndarray]:
    """Frames as an interlaced camera gives them: even lines from frame t,
    odd lines from frame t + 1 (one frame fewer than given). Analog FPV
    cameras are often interlaced, and with motion every moving edge is
    combed; the simulators take both fields at one instant. Consecutive
    frames of a 25-30 fps clip are twice a field period apart, so the
    combing is that of twice the clip's motion: a hard case.

    ``size`` (w, h) fits each frame to the analog frame first (as the
    simulators do), so the weave is on the picture's own lines; without it
    the frames keep their size."""
    from rtclean.sim.feed import fit_frame

    prev = None
    for f in frames:
        if size is not None:
            f = fit_frame(f, size)
        if prev is not None:
            if f.shape != prev.shape:
                raise RtcleanError(f"cannot interlace frames of different sizes {prev.shape} and {f.shape}")
            woven = prev.copy()
            woven[1::2] = f[1::2]
            yield woven
        prev = f


@dataclass(slots=True)
class SimSettings:
    standard: str = "pal"
    breakup: float = 0.5
    sim: str = "image"


def check_comb(standard: str, sim: str) -> None:
    """A comb decoder is an option of the analog simulator's NTSC only
    (``--comb`` of `dataset synth` and `eval detect`)."""
    if str(standard).lower() != "ntsc" or sim != "analog":
        raise ConfigError(f"--comb: a comb decoder is an option of the analog simulator's NTSC (--sim analog "
                          f"--standard ntsc; PAL's decoder always averages two lines), not of --sim {sim} "
                          f"--standard {standard}")


def simulate(frames, seed: int, settings: SimSettings, comb: bool = False):
    """SimFrames of ``frames`` through the chosen simulator. 'analog' (the
    physical channel simulator) is imported only when asked for; ``comb``:
    its NTSC capture card combs chroma (see ``Variety.comb``)."""
    from rtclean.sim.feed import STANDARDS, degrade, fit_frame

    std = STANDARDS.get(settings.standard)
    if std is None:
        raise RtcleanError(f"unknown video standard {settings.standard!r} (expected pal or ntsc)")
    size = (std.width, std.height)
    if settings.sim == "image":
        return degrade(frames, seed=seed, breakup=settings.breakup, fps=std.fps, size=size)
    if settings.sim == "analog":
        try:
            from rtclean.sim.analog import degrade_analog
        except ImportError as e:
            raise RtcleanError(f"the analog simulator is not available ({e}); use --sim image") from None
        fitted = (fit_frame(f, size) for f in frames)
        kwargs = {}
        prof = inspect.signature(degrade_analog).parameters.get("profile")
        if prof is not None and prof.default is inspect.Parameter.empty:
            kwargs["profile"] = None  # the simulator's default receiver profile
        if comb:
            kwargs["comb"] = True
        return degrade_analog(fitted, seed, settings.breakup, settings.standard, **kwargs)
    raise RtcleanError(f"unknown simulator {settings.sim!r} (expected analog or image)")


def link_figures(sf) -> dict:
    """CNR (dB) when the simulator knows it, and the image simulator's link
    margin (quality of the worse field minus the breakup threshold: < 0 breaks)."""
    out: dict = {"cnr_db": None, "link_margin": None}
    for src in (sf, sf.link, sf.label):
        v = getattr(src, "cnr_db", None) if src is not None else None
        if v is not None:
            out["cnr_db"] = round(float(np.min(v)), 2)
            break
    quality = getattr(sf.link, "quality", None)
    threshold = getattr(sf.link, "threshold", None)
    if quality is not None and threshold is not None and math.isfinite(threshold):
        out["link_margin"] = round(float(min(quality) - threshold), 3)
    return out


def dvr_scale(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The frame as a DVR that records at a fixed ``size`` (W, H) stores it,
    before its coding: resized with area averaging. Goggle DVRs often record
    640x480 or 720x480 whatever the standard, so a PAL frame's 576 lines go
    onto 480: each recorded line mixes 1.2 lines, and a one-line click is
    spread over two at lower contrast, in both fields."""
    w, h = size
    if image.shape[1] == w and image.shape[0] == h:
        return image
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)


def parse_dvr_size(text: str) -> tuple[int, int]:
    """``WxH`` of ``--dvr-size``: even, 32-4096 each (an H.264 DVR needs even sizes)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise RtcleanError(f"--dvr-size {text}: expected WxH, e.g. 640x480") from None
    if not (32 <= w <= 4096 and 32 <= h <= 4096) or w % 2 or h % 2:
        raise RtcleanError(f"--dvr-size {text}: width and height must be even, 32-4096")
    return w, h


def dvr_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
    """The frame as a goggle's MJPEG DVR stores it: JPEG at ``quality``,
    4:2:0 chroma (single-line colour detail is halved vertically)."""
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RtcleanError("JPEG encoding failed (DVR round trip)")
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


class H264Dvr:
    """A goggle's H.264 DVR as a stream: each frame is encoded (libx264 at
    ``kbps``, keyframe every ``gop`` frames) and decoded at once. Low-latency
    settings (no B-frames, no rate look-ahead) as a goggle's hardware encoder
    works, so breakup meets inter prediction and rate control as in a
    recorded MP4: a sparkle burst is softened (more than by MJPEG q 90),
    costs bits the rate control takes from the picture around it, and
    leaves a trace in the following frames. One instance per clip; its
    state is the stream (frames must come in order)."""

    def __init__(self, kbps: int, gop: int = 25, preset: str = "veryfast") -> None:
        if not 100 <= int(kbps) <= 100_000:
            raise RtcleanError(f"H.264 DVR bitrate must be 100-100000 kbit/s, got {kbps}")
        self.kbps, self.gop, self.preset = int(kbps), max(1, int(gop)), preset
        self._enc = self._dec = None
        self._pts = 0

    def _open(self, width: int, height: int) -> None:
        import av  # only needed here: runs without DVR simulation do not load FFmpeg

        if width % 2 or height % 2:
            raise RtcleanError(f"H.264 DVR simulation needs an even frame size, got {width}x{height}")
        enc = av.CodecContext.create("libx264", "w")
        enc.width, enc.height, enc.pix_fmt = width, height, "yuv420p"
        enc.time_base, enc.framerate = Fraction(1, 25), Fraction(25, 1)
        enc.bit_rate = self.kbps * 1000
        enc.options = {"preset": self.preset, "tune": "zerolatency", "g": str(self.gop), "bf": "0"}
        enc.open()
        self._enc, self._dec = enc, av.CodecContext.create("h264", "r")

    def __call__(self, image: np.ndarray) -> np.ndarray:
        import av

        if self._enc is None:
            self._open(image.shape[1], image.shape[0])
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24").reformat(format="yuv420p")
        frame.pts = self._pts
        self._pts += 1
        out = [f for p in self._enc.encode(frame) for f in self._dec.decode(p)]
        if len(out) != 1:  # zerolatency gives one packet, and so one picture, per frame
            raise RtcleanError(f"H.264 DVR simulation: {len(out)} pictures for one frame")
        return out[0].to_ndarray(format="bgr24")


def dvr_store(codec: str, rng: np.random.Generator, quality: int):
    """The per-frame store of one simulated DVR stream: MJPEG at ``quality``
    or H.264 at a bitrate and GOP drawn from ``rng`` (1-6 Mbit/s for the
    simulator's 720x576 / 720x480, keyframes every 12-60 frames, as goggle
    recorders vary). Returns (store,
    the settings for the label record)."""
    if codec == "h264":
        kbps, gop = int(rng.integers(1000, 6001)), int(rng.integers(12, 61))
        return H264Dvr(kbps, gop), {"dvr_h264_kbps": kbps, "dvr_h264_gop": gop}
    return (lambda image: dvr_roundtrip(image, quality)), {"dvr_jpeg_quality": quality}


def _scaled(store, size: tuple[int, int]):
    """A DVR store that records at ``size`` (``dvr_scale`` before the coding)."""
    return lambda image: store(dvr_scale(image, size))


def label_record(sf, name: str, cls: str, clip: str, seed: int) -> dict:
    lab = sf.label
    rec = {"file": f"{cls}/{name}", "class": cls, **lab.to_dict(), "clip": clip, "seed": seed, "index": sf.index}
    rec.update(link_figures(sf))
    return rec


@dataclass(slots=True)
class Variety:
    """More content from the same clips (docs/training.md): with only a few
    clips a model learns the scenes instead of the breakup.

    passes:   times each clip is used; pass 0 is the clip as is, every further
              pass a fixed random crop (45-100% of each side), mirror and
              level change, so the content differs but stays temporally
              coherent (the previous-frame input still matches its motion).
    demo:     extra passes of clean procedural FPV scenery (DemoFeed truth
              frames, OSD included), each its own seed and split group.
    compress: share of passes whose content is JPEG round-tripped (quality
              15-70) before the simulator: clean AND broken frames then carry
              blocking, so compression is no cue for breakup.
    dvr:      share of passes whose simulated frames (and previous frames)
              are stored as a goggle DVR would after the simulator: breakup
              as recorded files show it.
    dvr_codec: that DVR's codec: "mjpeg" (JPEG quality 35-90, 4:2:0),
              "h264" (a stream at 1-6 Mbit/s, see H264Dvr) or "mix" (each
              DVR pass one of the two, even odds).
    interlaced: share of passes whose content is woven as an interlaced
              camera gives it (``interlace``) before the simulator: combed
              clean and broken frames, so combing is no cue for breakup.
    dvr_sizes: the sizes (W, H) a DVR pass may record at, one drawn per
              pass (``None``: as captured); empty, every DVR records as
              captured. Goggle DVRs often record 640x480 or 720x480 whatever
              the standard (``dvr_scale``), which no detector sees in data
              made at the simulator's own size.
    speeds:   content speed-ups, one drawn per pass (1: as recorded): the
              clip played K times as fast (every K-th frame), so frame and
              previous frame are K frames apart. FPV footage moves much faster
              than most clips, and a model that never saw fast motion learns
              that a large change from the previous frame means breakup.
    osd:      share of clip passes with a flight controller's OSD drawn over
              the content before the simulator (as the flight controller
              inserts it before the transmitter), artificial horizon
              included. The horizon's bars are short white dashes with a
              black outline that move every frame as the craft turns: clicks
              that are not breakup, and a model that never saw them takes
              them for sparklies. (Demo passes always carry their own OSD.)
    comb:     share of passes (analog simulator, NTSC) decoded by a capture
              card that combs chroma over two lines instead of a notch
              decoder (``rtclean.sim.analog.decode``): capture chips comb
              NTSC, and a notch decoder's line-by-line colour grain near
              the FM threshold is its worst case, not the common one.
    """
    passes: int = 1
    demo: int = 0
    compress: float = 0.0
    dvr: float = 0.0
    dvr_codec: str = "mjpeg"
    interlaced: float = 0.0
    dvr_sizes: tuple[tuple[int, int] | None, ...] = ()
    speeds: tuple[int, ...] = ()
    osd: float = 0.0
    comb: float = 0.0


MAX_SPEED = 16  # beyond this, consecutive frames of most clips share little content


def _vary(frames: Iterator[np.ndarray], rng: np.random.Generator, identity: bool,
          jpeg: int | None) -> Iterator[np.ndarray]:
    """One pass's fixed content transform applied to every frame."""
    fy, fx = rng.uniform(0.45, 1.0, 2)
    oy, ox = rng.uniform(0.0, 1.0, 2)
    flip = bool(rng.random() < 0.5)
    gain, gamma = rng.uniform(0.75, 1.2), rng.uniform(0.7, 1.4)
    lut = np.clip(255.0 * (np.arange(256) / 255.0) ** gamma * gain, 0, 255).astype(np.uint8)
    for f in frames:
        if not identity:
            h, w = f.shape[:2]
            ch, cw = max(16, int(h * fy)), max(16, int(w * fx))
            y0, x0 = int((h - ch) * oy), int((w - cw) * ox)
            f = f[y0:y0 + ch, x0:x0 + cw]
            if flip:
                f = f[:, ::-1]
            f = cv2.LUT(np.ascontiguousarray(f), lut)
        if jpeg is not None:
            ok, buf = cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, jpeg])
            if ok:
                f = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        yield f


def _with_osd(frames: Iterator[np.ndarray], standard: str, seed: int) -> Iterator[np.ndarray]:
    """Frames fitted to the analog frame with an OSD drawn on each, its
    artificial horizon following a random but smooth attitude: banks of up to
    about 55 degrees, pitch within 15 degrees, both changing every frame."""
    from rtclean.sim.feed import STANDARDS, fit_frame
    from rtclean.sim.osd import Osd

    std = STANDARDS[standard]  # (lazy: simulate() has named an unknown standard by now)
    size, fps = (std.width, std.height), std.fps
    rng = np.random.default_rng([seed, 4243])  # its own stream: the pass's draws stay as they were
    osd = Osd(size[0], size[1], seed, horizon=True)
    roll, pitch = rng.uniform(-0.5, 0.5), rng.uniform(-0.1, 0.1)
    rssi = int(rng.integers(40, 100))
    for i, f in enumerate(frames):
        # a mean-reverting walk: lively as a flown craft, never stuck at a limit
        roll = float(np.clip(0.97 * roll + rng.normal(0.0, 0.06), -1.0, 1.0))
        pitch = float(np.clip(0.97 * pitch + rng.normal(0.0, 0.02), -0.26, 0.26))
        f = fit_frame(f, size)
        if not f.flags.writeable or f.base is not None:
            f = f.copy()  # never draw into a decoder's or a cache's buffer
        osd.draw(f, i / fps, rssi, (roll, pitch))
        yield f


def _demo_frames(seed: int, standard: str, n: int) -> Iterator[np.ndarray]:
    from rtclean.sim.feed import DemoFeed

    feed = DemoFeed(standard, seed, 0.0)
    for _ in range(n):
        yield feed.next().truth


def synth_dataset(clips: list[str], out: str, frames: int, seed: int, standard: str = "pal",
                  breakup: float = 0.5, sim: str = "image", variety: Variety | None = None) -> dict:
    """Write about ``frames`` labelled frames (spread evenly over the clips,
    each clip looped if short) into ``out``. Each clip gets its own seed,
    ``seed * 1000 + clip number``, recorded per frame. ``variety`` adds
    content passes (see Variety); the default is one plain pass per clip."""
    paths = list_clips(clips)
    if frames < 1:
        raise RtcleanError(f"--frames must be at least 1, got {frames}")
    if not 0.0 <= breakup <= 1.0:
        raise RtcleanError(f"--breakup must be in [0, 1], got {breakup}")
    variety = variety or Variety()
    if variety.passes < 1 or variety.demo < 0 or not 0.0 <= variety.compress <= 1.0 \
            or not 0.0 <= variety.dvr <= 1.0 or not 0.0 <= variety.interlaced <= 1.0 \
            or not 0.0 <= variety.osd <= 1.0 or not 0.0 <= variety.comb <= 1.0:
        raise RtcleanError(f"bad variety settings {variety}: passes >= 1, demo >= 0, compress, dvr, interlaced, "
                           "osd and comb in [0, 1]")
    if variety.comb:
        check_comb(standard, sim)
    for size in variety.dvr_sizes:
        if size is not None:
            parse_dvr_size(f"{size[0]}x{size[1]}")  # the CLI's own check, for callers that skip the CLI
    for k in variety.speeds:
        if not isinstance(k, int) or not 1 <= k <= MAX_SPEED:
            raise RtcleanError(f"--speed {k}: expected a whole number from 1 to {MAX_SPEED}")
    if variety.dvr_codec not in DVR_CODECS:
        raise RtcleanError(f"DVR codec must be one of {', '.join(DVR_CODECS)}, got {variety.dvr_codec!r}")
    settings = SimSettings(standard=str(standard).lower(), breakup=float(breakup), sim=sim)
    root = Path(out)
    for d in (root / "breakup", root / "clean", root / ".prev"):
        d.mkdir(parents=True, exist_ok=True)
    # (clip name, stem for file names, split group, seed, content frames factory)
    units = []
    for ci, clip in enumerate(paths):
        for k in range(variety.passes):
            useed = seed * 1000 + ci + 100 * k
            units.append((clip.name, clip.stem if k == 0 else f"{clip.stem}_v{k}", clip.name, useed, clip, k))
    for k in range(variety.demo):
        useed = seed * 1000 + 500 + k
        units.append((f"demo_s{useed}", f"demo_s{useed}", f"demo_s{useed}", useed, None, k))
    per_unit = math.ceil(frames / len(units))
    counts = {"breakup": 0, "clean": 0, "ambiguous": 0, "no_signal_check": 0}
    kinds: dict[str, int] = {}
    t0 = time.monotonic()
    written = 0
    with open(root / "labels.jsonl", "a", encoding="utf-8") as labels:
        for _name, stem, group, clip_seed, clip, k in units:
            rng = np.random.default_rng([clip_seed, 4242])
            jpeg = int(rng.integers(15, 71)) if rng.random() < variety.compress else None
            # drawn after the content's, so datasets without dvr stay as they were
            dvr = int(rng.integers(35, 91)) if variety.dvr and rng.random() < variety.dvr else None
            store, dvr_rec = None, {}
            if dvr is not None:
                codec = variety.dvr_codec
                if codec == "mix":  # drawn only in mix mode: MJPEG-only datasets stay as they were
                    codec = "h264" if rng.random() < 0.5 else "mjpeg"
                store, dvr_rec = dvr_store(codec, rng, dvr)
                if variety.dvr_sizes:  # drawn only when asked for: datasets without it stay as they were
                    size = variety.dvr_sizes[int(rng.integers(len(variety.dvr_sizes)))]
                    if size is not None:
                        store, dvr_rec = _scaled(store, size), {**dvr_rec, "dvr_size": f"{size[0]}x{size[1]}"}
            # drawn last, and only when asked for: datasets without it stay as they were
            woven = bool(variety.interlaced) and rng.random() < variety.interlaced
            # drawn after that, and only when asked for, for the same reason
            speed = int(variety.speeds[int(rng.integers(len(variety.speeds)))]) if variety.speeds else 1
            # and after that, for the same reason; demo content has its own OSD
            osd = clip is not None and bool(variety.osd) and rng.random() < variety.osd
            # and after that, for the same reason
            comb = bool(variety.comb) and rng.random() < variety.comb
            n = per_unit + 1 if woven else per_unit  # (weaving makes one frame fewer)
            if clip is None:
                raw = _demo_frames(clip_seed, settings.standard, n * speed)
            else:
                raw = read_frames(clip, n * speed, loop=True)
            if speed > 1:
                raw = itertools.islice(raw, 0, None, speed)
            content = _vary(raw, rng, clip is None or k == 0, jpeg)
            if woven:
                content = interlace(content, standard_size(settings.standard))
            if osd:
                content = _with_osd(content, settings.standard, clip_seed)
            prev = None
            for sf in simulate(content, clip_seed, settings, comb=comb):
                # every frame goes through the store, written or not: an H.264 DVR is a stream
                cur, before = sf.image if store is None else store(sf.image), prev
                prev = cur
                if written >= frames:
                    break
                cls = frame_class(sf.label.kind, sf.label.damaged_lines)
                if cls is None:
                    key = "no_signal_check" if sf.label.kind in LEFT_TO_NOSIGNAL else "ambiguous"
                    counts[key] += 1
                    continue
                name = f"{stem}_s{clip_seed}_{sf.index:05d}.png"
                if not cv2.imwrite(str(root / cls / name), cur, PNG_FAST) or \
                        not cv2.imwrite(str(root / ".prev" / name), before if before is not None else cur, PNG_FAST):
                    raise RtcleanError(f"{root}: cannot write frames (disk full or not writable?)")
                rec = label_record(sf, name, cls, group, clip_seed)
                rec.update(dvr_rec)
                if woven:
                    rec["interlaced"] = True
                if speed > 1:
                    rec["speed"] = speed
                if osd:
                    rec["osd"] = True
                if comb:
                    rec["comb"] = True
                labels.write(json.dumps(rec) + "\n")
                counts[cls] += 1
                if cls == "breakup":
                    kinds[sf.label.kind] = kinds.get(sf.label.kind, 0) + 1
                written += 1
    dt = time.monotonic() - t0
    summary = (f"{root}: {counts['breakup']} breakup + {counts['clean']} clean frames from {len(paths)} clips "
               f"({len(units)} content passes) "
               f"({settings.sim} simulator, {settings.standard}) in {dt:.1f} s "
               f"({written / max(dt, 1e-9):.1f} frames/s); skipped {counts['ambiguous']} ambiguous and "
               f"{counts['no_signal_check']} frozen")
    log.info(summary)
    return {"summary": summary, "out": str(root), "counts": counts, "kinds": kinds, "clips": [p.name for p in paths],
            "seconds": dt, "frames_per_s": written / max(dt, 1e-9)}
