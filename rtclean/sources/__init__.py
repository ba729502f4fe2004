"""Capture sources behind one interface (rtclean.sources.base.Source)."""

from __future__ import annotations

from rtclean.config import SourceConfig
from rtclean.errors import ConfigError
from rtclean.sources.base import Source


def make_source(cfg: SourceConfig, duration_s: float | None = None) -> Source:
    """Build (not open) the configured source. Hardware adapters are imported
    only when chosen so a missing optional package affects only its users."""
    if cfg.kind == "v4l2":
        from rtclean.sources.v4l2 import V4l2Source

        return V4l2Source(cfg.v4l2)
    if cfg.kind == "picamera2":
        from rtclean.sources.picam import Picamera2Source

        return Picamera2Source(cfg.picamera2)
    if cfg.kind == "file":
        from rtclean.sources.file import FileSource

        if not cfg.file.path:
            raise ConfigError("source.file.path: expected a video file path for source.kind file, got ''")
        return FileSource(cfg.file.path, realtime=cfg.file.realtime, loop=cfg.file.loop)
    if cfg.kind == "demo":
        from rtclean.sources.demo import DemoSource

        return DemoSource(cfg.demo, duration_s=duration_s)
    raise ConfigError(f"source.kind: unknown source {cfg.kind!r}")
