"""Dataset folders for frame classifiers, and sampling frames from videos.

Folder convention (what `rtclean dataset sample` writes, `rtclean dataset
label` sorts and training reads):

    DIR/
      <stem>_<frameindex:06d>.png   frames still to be labelled
      breakup/  clean/              one folder per class (any two or more names;
                                    the class names ARE the folder names)
      .prev/<same name>.png         each frame's previous frame (the breakup
                                    model's second input); stays here when the
                                    frame is moved into a class folder
      .sources.json                 which video each name stem came from

Hidden entries (starting with ".") are never frames or classes. Frames are
never overwritten: a re-run adds the names it has not written yet, wherever
they are now (still unlabelled or already in a class folder).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import av
import cv2
import numpy as np

from rtclean.errors import RtcleanError, SourceError
from rtclean.sources.file import FileSource

log = logging.getLogger(__name__)

DEFAULT_CLASSES = ("breakup", "clean")
PREV_DIR = ".prev"
SOURCES_FILE = ".sources.json"
# What the labelling page shows and training reads (all decodable by OpenCV
# and displayable by browsers); sample itself writes PNG only (lossless).
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
VIDEO_EXTS = (".avi", ".mp4", ".mkv", ".mov", ".ts", ".m2ts", ".mts", ".webm", ".m4v", ".mpg", ".mpeg",
              ".flv", ".3gp", ".wmv", ".h264", ".h265")
MAX_CLASSES = 9  # one digit key each on the labelling page
DEFAULT_EVERY = 10
_CLASS_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,39}$")


class DatasetError(RtcleanError):
    """A dataset folder or its options are unusable."""


# --------------------------------------------------------------------------- folders


def parse_classes(text: str | Iterable[str]) -> tuple[str, ...]:
    """``"breakup,clean"`` -> ("breakup", "clean"), validated as folder names."""
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text)]
    names = [n for n in names if n]
    if len(names) < 2:
        raise DatasetError(f"--classes {','.join(names) or text!r}: give at least two class names, "
                           "e.g. breakup,clean")
    if len(names) > MAX_CLASSES:
        raise DatasetError(f"--classes: at most {MAX_CLASSES} classes (one digit key each), got {len(names)}")
    for n in names:
        if not _CLASS_RE.match(n):
            raise DatasetError(f"--classes: {n!r} is not a usable folder name (letters, digits, '_' "
                               "and '-', starting with a letter or digit)")
    if len({n.lower() for n in names}) != len(names):
        raise DatasetError(f"--classes {','.join(names)}: names repeat")
    return tuple(names)


def is_image_name(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTS)


def class_folders(root: str | Path) -> list[str]:
    """The class names of a dataset folder: its visible sub-folders, sorted."""
    root = Path(root)
    try:
        return sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    except FileNotFoundError:
        raise DatasetError(f"{root}: no such folder") from None
    except NotADirectoryError:
        raise DatasetError(f"{root}: is a file, not a dataset folder") from None


def image_names(folder: str | Path) -> list[str]:
    """Image files directly in ``folder`` (not in sub-folders), sorted by name."""
    try:
        return sorted(e.name for e in os.scandir(folder) if is_image_name(e.name) and e.is_file())
    except FileNotFoundError:
        return []


# --------------------------------------------------------------------------- sampling


@dataclass
class VideoResult:
    path: str
    written: int = 0
    skipped: int = 0  # sampled frames whose file name existed already
    frames: int = 0  # frames decoded
    error: str = ""  # the video could not be read at all
    warning: str = ""  # read up to a damaged or cut-off tail


@dataclass
class SampleReport:
    out: Path
    classes: tuple[str, ...]
    videos: list[VideoResult] = field(default_factory=list)

    @property
    def written(self) -> int:
        return sum(v.written for v in self.videos)

    @property
    def skipped(self) -> int:
        return sum(v.skipped for v in self.videos)

    @property
    def failed(self) -> list[VideoResult]:
        return [v for v in self.videos if v.error]

    @property
    def truncated(self) -> list[VideoResult]:
        return [v for v in self.videos if v.warning]

    def summary(self) -> str:
        ok = len(self.videos) - len(self.failed)
        text = (f"{self.out}: {self.written} new frames from {ok} of {len(self.videos)} videos"
                f" ({self.skipped} already there)")
        if self.failed:
            text += f", {len(self.failed)} failed"
        if self.truncated:
            text += f", {len(self.truncated)} truncated"
        return text + f"; classes {', '.join(self.classes)}"


def sample_indices(n_frames: int, *, every: int | None = None, count: int | None = None) -> np.ndarray:
    """Frame indices to keep: every N-th from the first, or ``count`` spread
    evenly from the first to the last frame (all of them when count >= n)."""
    if n_frames <= 0:
        return np.zeros(0, dtype=np.int64)
    if count is not None:
        if count >= n_frames:
            return np.arange(n_frames, dtype=np.int64)
        return np.unique(np.round(np.linspace(0, n_frames - 1, count)).astype(np.int64))
    step = every or DEFAULT_EVERY
    return np.arange(0, n_frames, step, dtype=np.int64)


def expand_videos(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given; a folder stands for the video files directly inside it."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in VIDEO_EXTS))
        else:
            out.append(p)
    return out


def count_packets(path: Path) -> int:
    """Video frames in a file by demuxing only (no decoding): one packet per
    frame for every DVR codec, and far cheaper than a decode pass. A damaged
    tail stops the count where demuxing stops."""
    n = 0
    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                return 0
            for pkt in c.demux(c.streams.video[0]):
                if pkt.size:
                    n += 1
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError):
        pass
    return n


class _StemRegistry:
    """Maps name stems to the video they came from (DIR/.sources.json), so two
    DVR files both called DVR0001.avi in different folders get different names,
    also across runs, while re-running on the same file reuses its stem."""

    def __init__(self, out: Path) -> None:
        self.path = out / SOURCES_FILE
        self.map: dict[str, str] = {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if isinstance(data, dict):
                self.map = {str(k): str(v) for k, v in data.items()}
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as e:
            log.warning("%s unreadable (%s): starting a new one", self.path, e)

    def stem_for(self, video: Path) -> str:
        key = str(video.resolve())
        base = re.sub(r"[^A-Za-z0-9_\-]+", "-", video.stem).strip("-.") or "video"
        stem, n = base, 1
        while stem in self.map and self.map[stem] != key:
            n += 1
            stem = f"{base}-{n}"
        if self.map.get(stem) != key:
            self.map[stem] = key
            self._save()
        return stem

    def _save(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self.map, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self.path)


def write_new(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` only if nothing is there; False if it was.
    The file appears complete or not at all (temporary file + link)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    try:
        os.link(tmp, path)  # atomic, and fails instead of overwriting
        return True
    except FileExistsError:
        return False
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
            raise
        # No hard links (FAT/exFAT on an SD card): check, then rename.
        if path.exists():
            return False
        os.replace(tmp, path)
        return True
    finally:
        tmp.unlink(missing_ok=True)


def _png(image: np.ndarray) -> bytes:
    # Level 1: 28 ms per 720x480 frame vs 41 ms at OpenCV's default 3, for
    # files only ~3% larger (camera noise hardly compresses either way).
    ok, buf = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise DatasetError("PNG encoding failed")
    return buf.tobytes()


def _existing_names(out: Path) -> set[str]:
    """Every frame name already in the dataset, labelled or not."""
    names = set(image_names(out))
    for cls in class_folders(out):
        names.update(image_names(out / cls))
    return names


def prepare_folder(out: str | Path, classes: Iterable[str]) -> Path:
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for cls in classes:
            (out / cls).mkdir(exist_ok=True)
        (out / PREV_DIR).mkdir(exist_ok=True)
    except FileExistsError as e:
        raise DatasetError(f"{e.filename}: exists and is not a folder") from None
    except OSError as e:
        raise DatasetError(f"cannot create {e.filename or out}: {e.strerror or e}") from None
    return out


def sample_video(video: Path, out: Path, stem: str, indices: np.ndarray | None, every: int | None,
                 existing: set[str]) -> VideoResult:
    """Write the chosen frames of one video (and their previous frames)."""
    res = VideoResult(str(video))
    src = FileSource(video, realtime=False)
    try:
        src.open()
    except SourceError as e:
        res.error = str(e)
        return res
    wanted = None if indices is None else set(indices.tolist())
    last = -1 if indices is None or not len(indices) else int(indices[-1])
    prev: np.ndarray | None = None
    try:
        i = 0
        while True:
            item = src.read()
            if item is None:
                break
            image = item[0]
            keep = (i % every == 0) if wanted is None else (i in wanted)
            if keep:
                name = f"{stem}_{i:06d}.png"
                if name in existing:
                    res.skipped += 1
                else:
                    # The companion first: a frame that is visible in DIR always has its .prev.
                    if prev is not None:
                        write_new(out / PREV_DIR / name, _png(prev))
                    if write_new(out / name, _png(image)):
                        res.written += 1
                    else:
                        res.skipped += 1
                    existing.add(name)
            prev = image
            i += 1
            if wanted is not None and i > last:
                break  # nothing more to keep: do not decode the rest
        res.frames = i
    except OSError as e:
        raise DatasetError(f"cannot write into {out}: {e.strerror or e}") from None
    finally:
        src.close()
    if src.truncated:
        res.warning = src.truncation
    return res


def sample_videos(videos: Iterable[str | Path], out: str | Path, *, every: int | None = None,
                  count: int | None = None, classes: Iterable[str] = DEFAULT_CLASSES,
                  on_video: Callable[[VideoResult], None] | None = None) -> SampleReport:
    """Sample frames of ``videos`` into the dataset folder ``out``.

    ``every``: every N-th frame (default 10); ``count``: N frames spread
    evenly over each video. A video that cannot be read is reported in its
    VideoResult and the others go on; only an unwritable ``out`` raises.
    """
    if every is not None and count is not None:
        raise DatasetError("give --every or --count, not both")
    if every is not None and every < 1:
        raise DatasetError(f"--every {every}: must be 1 or more")
    if count is not None and count < 1:
        raise DatasetError(f"--count {count}: must be 1 or more")
    classes = parse_classes(classes)
    files = expand_videos(videos)
    if not files:
        raise DatasetError("no video files given (a folder given contains none)")
    out = prepare_folder(out, classes)
    report = SampleReport(out, classes)
    existing = _existing_names(out)
    stems = _StemRegistry(out)
    for video in files:
        if not video.is_file():
            res = VideoResult(str(video), error=f"{video}: no such file" if not video.exists()
                              else f"{video}: not a regular file")
        else:
            indices = None
            if count is not None:
                indices = sample_indices(count_packets(video), count=count)
            try:
                stem = stems.stem_for(video)
            except OSError as e:
                raise DatasetError(f"cannot write into {out}: {e.strerror or e}") from None
            # An unreadable file gets its one-line reason from FileSource.open.
            res = sample_video(video, out, stem, indices, every or DEFAULT_EVERY, existing)
        report.videos.append(res)
        if on_video is not None:
            on_video(res)
    return report
