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
CLIPS = Path(os.environ.get("RTCLEAN_CLIPS", ROOT.parent / "shared" / "data" / "clips"))


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
