"""The demo loop: a procedural FPV flight through the physical analog channel.

The analog chain (``rtclean.sim.analog``) costs ~0.3 s per frame, far from
the 25-30 fps a live demo needs, so an 8 s loop per standard is rendered once
and shipped in ``rtclean/sim/assets/`` with its exact per-frame labels; the
demo source replays it (``source.demo.channel: analog``). Re-render after
changing the simulator or a recipe:

    python -m rtclean.sim.demo_clip            # both standards, ~2-3 min
    python -m rtclean.sim.demo_clip --standard pal --out /tmp/x

``demo_<std>.mkv``: H.264, CRF with a VBV cap (the sparklies are single-pixel
streaks and must survive the encoder; snow is incompressible, hence the cap
that keeps each file near 5 MB). ``demo_<std>.jsonl``: one row per frame, the
BreakupLabel measured against the 60 dB reference (``BreakupLabel.to_dict``)
plus the link's mean and minimum CNR and the RSSI shown on the OSD.

The link follows a scripted CNR (``Recipe.script``, keyframes in seconds)
with Rician fast fading on top, so one loop walks the whole ladder: clean,
sparklies, snow, colour loss, tearing, roll, no signal, recovery, clean. The
untouched frames are not shipped: ``Loop.scene`` re-renders them from the
recipe's scene seed (the camera's view before the transmitter, OSD included).
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from rtclean.errors import SourceError
from rtclean.sim.analog.link import THRESHOLD_DB, _ar1
from rtclean.sim.breakup import BreakupLabel

ASSETS = Path(__file__).resolve().parent / "assets"
CRF = 21
MAXRATE_KBPS = 5200  # VBV cap: 8 s x 5.2 Mbit/s ~ 5.2 MB per file


@dataclass(frozen=True, slots=True)
class Recipe:
    standard: str
    seconds: float
    scene_seed: int  # DemoFeed seed of the procedural flight (content + OSD)
    link_seed: int  # channel noise and fast fading
    profile: str  # receiver behaviour on signal loss
    script: tuple[tuple[float, float], ...]  # (seconds, mean CNR dB) keyframes, linear in between
    fade_k_db: float = 10.0  # Rician K of the fast fading: dips of a few dB inside a frame
    warmup: int = 3  # frames rendered and dropped first (flywheels, colour killer settle)


# Keyframes: clean -> slowly below the FM threshold (~10 dB): sparklies ->
# snow, colour flicker, colour killer (5-7 dB) -> sync errors (tearing) ->
# deep dropout (no signal) -> recovery, rolling while the vertical
# oscillator pulls in -> clean again before the loop wraps.
_SCRIPT = ((0.0, 30.0), (1.0, 30.0), (1.6, 12.0), (2.3, 9.0), (2.8, 7.0), (3.2, 5.5), (3.9, 5.0),
           (4.3, 3.0), (4.6, 1.0), (4.8, -6.0), (5.5, -6.0), (5.8, 12.0), (6.3, 30.0), (8.0, 30.0))

RECIPES = {
    "pal": Recipe("pal", 8.0, scene_seed=1, link_seed=11, profile="blue", script=_SCRIPT),
    "ntsc": Recipe("ntsc", 8.0, scene_seed=2, link_seed=12, profile="static", script=_SCRIPT),
}


@dataclass(frozen=True, slots=True)
class LoopLink:
    """The link during one frame of the loop (``SimFrame.link`` on replay)."""

    mean_db: float
    min_db: float
    rssi: int
    threshold_db: float = THRESHOLD_DB

    @property
    def below(self) -> bool:
        return self.min_db < self.threshold_db


def rssi_of(cnr_db: float) -> int:
    """OSD RSSI (0-99) for a mean CNR: 0 at -6 dB, 90 at 30 dB."""
    return int(np.clip(round(2.5 * (cnr_db + 6.0)), 0, 99))


def paths(standard: str, root: Path = ASSETS) -> tuple[Path, Path]:
    return root / f"demo_{standard}.mkv", root / f"demo_{standard}.jsonl"


def cnr_lines(recipe: Recipe, fps: float, lines: int) -> Iterator[np.ndarray]:
    """Per-line CNR (dB) of successive frames, warm-up frames first: the
    scripted mean plus Rician fast fading (8 ms coherence, as in LinkProcess)."""
    rng = np.random.default_rng([recipe.link_seed, 5802])
    kt = np.array([k[0] for k in recipe.script])
    kv = np.array([k[1] for k in recipe.script])
    dt = 1.0 / (fps * lines)
    k = 10 ** (recipe.fade_k_db / 10)
    fade = complex(rng.normal() + 1j * rng.normal()) * math.sqrt(0.5)
    total = recipe.warmup + int(round(recipe.seconds * fps))
    for i in range(total):
        t = (max(i - recipe.warmup, 0) * lines + np.arange(lines)) * dt
        fd = _ar1(rng, fade, math.exp(-dt / 0.008), lines, complex_=True)
        fade = complex(fd[-1])
        rice = np.abs(math.sqrt(k / (k + 1)) + fd * math.sqrt(1 / (k + 1))) ** 2
        yield np.interp(t, kt, kv) + 10 * np.log10(np.maximum(rice, 1e-4))


def scenes(recipe: Recipe, width: int = 0) -> Iterator[np.ndarray]:
    """The loop's untouched frames (warm-up frames first), OSD RSSI following
    the scripted link; ``width`` as DemoFeed's (0 = the standard's size)."""
    from rtclean.sim.analog.standards import get_standard
    from rtclean.sim.feed import DemoFeed

    std = get_standard(recipe.standard)
    feed = DemoFeed(recipe.standard, seed=recipe.scene_seed, breakup=0.0, width=width)
    for c in cnr_lines(recipe, std.fps, std.lines):
        yield feed.next_scene(rssi_of(float(c.mean())))


class _Writer:
    """H.264 (libx264) in Matroska via PyAV."""

    def __init__(self, path: Path, width: int, height: int, fps: float) -> None:
        import av

        self.av = av
        self.c = av.open(str(path), "w")
        rate = Fraction(fps).limit_denominator(1001)
        self.s = self.c.add_stream("libx264", rate=rate)
        self.s.width, self.s.height, self.s.pix_fmt = width, height, "yuv420p"
        self.s.options = {"crf": str(CRF), "preset": "slow", "maxrate": f"{MAXRATE_KBPS}k",
                          "bufsize": f"{2 * MAXRATE_KBPS}k"}

    def write(self, bgr: np.ndarray) -> None:
        frame = self.av.VideoFrame.from_ndarray(bgr, format="bgr24")
        for pkt in self.s.encode(frame):
            self.c.mux(pkt)

    def close(self) -> None:
        for pkt in self.s.encode():
            self.c.mux(pkt)
        self.c.close()


def render(recipe: Recipe, root: Path = ASSETS) -> tuple[Path, Path]:
    """Render one standard's loop into ``root`` (video + labels)."""
    from rtclean.sim.analog import AnalogChannel

    ch = AnalogChannel(recipe.standard, seed=recipe.link_seed, profile=recipe.profile)
    std = ch.std
    root.mkdir(parents=True, exist_ok=True)
    video, labels = paths(recipe.standard, root)
    writer = _Writer(video, std.width, std.height, std.fps)
    try:
        with labels.open("w", encoding="utf-8") as out:
            frames = zip(scenes(recipe), cnr_lines(recipe, std.fps, std.lines))
            for i, (scene, cnr) in enumerate(frames):
                res = ch.render(scene, cnr)
                if i < recipe.warmup:
                    continue
                writer.write(res.image)
                row = {"index": i - recipe.warmup, **res.label.to_dict(),
                       "cnr_db": round(float(cnr.mean()), 2), "cnr_min_db": round(float(cnr.min()), 2),
                       "rssi": rssi_of(float(cnr.mean()))}
                out.write(json.dumps(row) + "\n")
    finally:
        writer.close()
    return video, labels


@dataclass(frozen=True, slots=True)
class LoopFrameInfo:
    label: BreakupLabel
    link: LoopLink


def load_labels(path: Path) -> list[LoopFrameInfo]:
    """The per-frame labels and link of a shipped loop, in order."""
    try:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        out = [LoopFrameInfo(BreakupLabel(kind=r["kind"], severity=float(r["severity"]),
                                          damaged_lines=float(r["damaged_lines"]),
                                          bands=np.asarray(r["bands"], dtype=np.float32),
                                          fields=tuple(bool(f) for f in r["fields"]),
                                          no_signal=bool(r["no_signal"])),
                             LoopLink(float(r["cnr_db"]), float(r["cnr_min_db"]), int(r["rssi"])))
               for r in rows]
        if [r["index"] for r in rows] != list(range(len(rows))):
            raise ValueError("frame indices are not 0, 1, 2, ...")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise SourceError(f"demo: cannot read the demo loop's labels {path}: {e}") from None
    if not out:
        raise SourceError(f"demo: the demo loop's labels {path} are empty")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m rtclean.sim.demo_clip",
                                description="Render the demo loops through the analog channel simulator.")
    p.add_argument("--standard", choices=sorted(RECIPES), action="append",
                   help="render only this standard (repeatable; default: all)")
    p.add_argument("--out", type=Path, default=ASSETS, help=f"output folder (default {ASSETS})")
    args = p.parse_args(argv)
    for name in args.standard or sorted(RECIPES):
        video, labels = render(RECIPES[name], args.out)
        kinds: dict[str, int] = {}
        for info in load_labels(labels):
            k = info.label.kind or "clean"
            kinds[k] = kinds.get(k, 0) + 1
        print(f"{video} ({video.stat().st_size / 1e6:.2f} MB), {labels}: {kinds}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
