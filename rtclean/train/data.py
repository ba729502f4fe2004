"""Labelled frame folders -> arrays for training and evaluation.

A dataset folder holds two class folders (any names: ``breakup``/``clean``,
``ko``/``ok``, ...) of images, or one of them when the other folders given
with it hold both (a folder of hard negatives, say), optionally ``.prev/NAME`` (the frame before
NAME, the model's second input; the frame itself when absent, as the
detector does on the first frame) and ``labels.jsonl`` (per-frame ground
truth from ``dataset synth``: band maps, kind, CNR). Class names are sorted;
the positive class is ``breakup`` when present, else the second name.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from rtclean.detect.tflite import CHANNELS_V3, ImpulseWorkspace, frame_planes
from rtclean.errors import RtcleanError

log = logging.getLogger(__name__)

IMAGE_EXTS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
N_BANDS = 16
DETECTOR_CLASSES = ("clean", "breakup")
PREPROCESS_VERSION = 1  # default rtclean/detect/tflite.py preprocessing of new models (versions 1, 2, 3)


class DatasetError(RtcleanError):
    """A dataset folder that cannot be used."""


@dataclass(slots=True)
class Sample:
    path: Path
    prev: Path | None
    label: int  # 1 = positive class
    record: dict | None = None  # labels.jsonl entry, when there is one
    group: str = ""  # what must not straddle the train/validation split (the clip)


@dataclass(slots=True)
class Dataset:
    classes: tuple[str, str]  # (negative, positive)
    samples: list[Sample] = field(default_factory=list)

    @property
    def labels(self) -> np.ndarray:
        return np.array([s.label for s in self.samples], np.int32)


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS and p.is_file())


def _class_folders(root: Path) -> list[str]:
    """The class folders of one dataset folder that hold images (sorted)."""
    if not root.is_dir():
        raise DatasetError(f"{root}: no such dataset folder")
    return sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith(".") and _images(d))


def _two_classes_error(where: str, names: list[str]) -> DatasetError:
    found = ", ".join(names) if names else "none"
    return DatasetError(f"{where}: expected two class folders with images (e.g. breakup/ and clean/), "
                        f"found {len(names)} ({found})")


def dataset_classes(roots: list[Path], one_class_ok: bool = False) -> list[str]:
    """The two class names of several dataset folders taken together.

    A folder may hold one class only (a folder of hard negatives beside a
    labelled set is a normal way to build a set), as long as the folders
    together hold exactly two. ``one_class_ok`` (evaluation, where a folder
    of a user's clean DVR frames measures false alarms alone) also takes
    folders that together hold only ``clean/`` or only ``breakup/``.
    """
    per = {root: _class_folders(root) for root in roots}
    for root, names in per.items():
        if not names or len(names) > 2:
            raise _two_classes_error(str(root), names)
    union = sorted({n for names in per.values() for n in names})
    if len(union) == 2:
        return union
    if one_class_ok and len(union) == 1 and union[0] in DETECTOR_CLASSES:
        return sorted(DETECTOR_CLASSES)
    if len(roots) == 1:
        raise _two_classes_error(str(roots[0]), union)
    if len(union) < 2:
        raise _two_classes_error("the dataset folders together", union)
    detail = "; ".join(f"{root}: {', '.join(names)}" for root, names in per.items())
    raise DatasetError(f"the dataset folders together hold {len(union)} class folders, expected the same "
                       f"two in each ({detail})")


def positive_index(names: list[str]) -> int:
    return names.index("breakup") if "breakup" in names else 1


def _labels(root: Path) -> dict[str, dict]:
    path = root / "labels.jsonl"
    if not path.is_file():
        return {}
    out = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                out[Path(rec["file"]).name] = rec
            except (ValueError, KeyError, TypeError):
                raise DatasetError(f"{path}:{n}: not a label record") from None
    return out


def load_index(dirs: list[str], one_class_ok: bool = False) -> Dataset:
    """Every labelled image of the dataset folders (nothing decoded yet)."""
    if not dirs:
        raise DatasetError("no dataset folders given")
    roots = [Path(d) for d in dirs]
    names = dataset_classes(roots, one_class_ok)
    pos = positive_index(names)
    classes = (names[1 - pos], names[pos])
    samples: list[Sample] = []
    for d in roots:
        records = _labels(d)
        for idx, name in enumerate(names):
            if not (d / name).is_dir():
                continue  # a one-class folder (hard negatives, say)
            for img in _images(d / name):
                prev = d / ".prev" / img.name
                rec = records.get(img.name)
                # The clip alone names the group: the same clip in two folders
                # (its DVR copy, its hard negatives) must not straddle the split.
                group = str(rec["clip"]) if rec and rec.get("clip") else f"{d}:{img.stem}"
                samples.append(Sample(img, prev if prev.is_file() else None, int(idx == pos), rec, group))
    return Dataset(classes, samples)


def read_image(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise DatasetError(f"{path}: not a readable image")
    return img


def load_pair(s: Sample) -> tuple[np.ndarray, np.ndarray]:
    cur = read_image(s.path)
    prev = read_image(s.prev) if s.prev is not None else cur
    return cur, prev


def channels_for(version: int) -> int:
    """Model input channels of a preprocessing version: current and previous
    luma, plus both frames' impulse planes for version 3."""
    return CHANNELS_V3 if version == 3 else 2


def to_input(cur: np.ndarray, prev: np.ndarray, h: int, w: int, channels: int = 2,
             version: int = PREPROCESS_VERSION, workspace: ImpulseWorkspace | None = None) -> np.ndarray:
    """The model input for one frame pair, exactly as TFLiteDetector builds it:
    [current luma, previous luma] and for version 3 [current impulse,
    previous impulse] after them."""
    now = frame_planes(cur, h, w, version, workspace)
    planes = now[:1]
    if channels >= 2:
        before = frame_planes(prev, h, w, version, workspace)
        planes.append(before[0])
        if channels == CHANNELS_V3:
            planes += [now[1], before[1]]
    return np.stack(planes, -1)


def band_targets(s: Sample) -> tuple[np.ndarray, float]:
    """(16 per-band targets, weight): a band is damaged when any of its lines
    is (exact simulator labels); weight 0 without a band map. A clean frame
    of a labelled set has all bands clean."""
    if s.record is None or "bands" not in s.record:
        return np.zeros(N_BANDS, np.float32), 0.0
    bands = np.asarray(s.record["bands"], np.float32)
    if bands.size != N_BANDS:
        return np.zeros(N_BANDS, np.float32), 0.0
    return (bands > 0).astype(np.float32) * float(s.label), 1.0


def load_arrays(ds: Dataset, h: int, w: int, channels: int | None = None,
                version: int = PREPROCESS_VERSION) -> dict[str, np.ndarray]:
    """Decode and preprocess every sample: x [N, H, W, C] float32 in [0, 1]
    (C from the preprocessing version unless given),
    y [N], bands [N, 16], band_weight [N]."""
    n = len(ds.samples)
    if n == 0:
        raise DatasetError("the dataset has no images")
    channels = channels_for(version) if channels is None else channels
    ws = ImpulseWorkspace()
    x = np.empty((n, h, w, channels), np.float32)
    bands = np.zeros((n, N_BANDS), np.float32)
    bw = np.zeros(n, np.float32)
    for i, s in enumerate(ds.samples):
        x[i] = to_input(*load_pair(s), h, w, channels, version, ws)
        bands[i], bw[i] = band_targets(s)
    return {"x": x, "y": ds.labels.astype(np.float32), "bands": bands, "band_weight": bw}
