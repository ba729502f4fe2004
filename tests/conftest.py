"""Shared fixtures.

- ``clips_dir``: the real footage in ../shared/data/clips (or $RTCLEAN_CLIPS).
- An autouse fixture fails any test during which rtclean logged an ERROR that
  the test did not expect (mark it ``@pytest.mark.allow_errors``), so a broken
  worker thread cannot hide behind a passing assertion.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _find_clips() -> Path:
    """$RTCLEAN_CLIPS, else shared/data/clips beside the checkout, else the
    workspace's copy (a CI clone may live elsewhere)."""
    if os.environ.get("RTCLEAN_CLIPS"):
        return Path(os.environ["RTCLEAN_CLIPS"])
    for cand in (ROOT.parent / "shared" / "data" / "clips", Path("/work/shared/data/clips")):
        if cand.is_dir():
            return cand
    return ROOT.parent / "shared" / "data" / "clips"


CLIPS = _find_clips()
# The real footage (see its MANIFEST.md): none of it has analog breakup.
CLIP_NAMES = ["bag_handheld_480x360.avi", "bikes_cuts_640x272.mp4", "box_handheld_640x480.mp4",
              "carphone_176x144.mp4", "carphone_compressed_176x144.mp4", "cup_handheld_640x480.mp4",
              "foliage_pan_720x480.mkv", "gopro_walk_848x480.mp4", "tennis_fastpan_854x480.mkv",
              "vtest_static_768x576.avi", "walk_pan_720x480.mkv"]


def pytest_configure(config):
    config.addinivalue_line("markers", "allow_errors: the test expects rtclean to log errors")


@pytest.fixture(scope="session")
def clips_dir() -> Path:
    if not CLIPS.is_dir():
        pytest.skip(f"real clips not found at {CLIPS}")
    return CLIPS


@pytest.fixture(scope="session")
def rtclean_cmd() -> list[str]:
    """The CLI as a subprocess command, using this interpreter."""
    return [sys.executable, "-m", "rtclean"]


class _ErrorCatcher(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
def _fail_on_logged_errors(request):
    catcher = _ErrorCatcher()
    logger = logging.getLogger("rtclean")
    logger.addHandler(catcher)
    yield
    logger.removeHandler(catcher)
    if catcher.records and request.node.get_closest_marker("allow_errors") is None:
        msgs = "; ".join(f"{r.name}: {r.getMessage()}" for r in catcher.records[:5])
        pytest.fail(f"rtclean logged errors during the test: {msgs}")
