"""Live view: LiveHub (one JPEG per frame, shared by all MJPEG clients),
VideoFeed (the recorders' H.264 re-wrapped as fragmented MP4 for browsers),
the aiohttp server with both streams, status and metrics, and the page in
static/."""

from rtclean.live.hub import LiveHub, LiveJpeg
from rtclean.live.server import LiveServer

__all__ = ["LiveHub", "LiveJpeg", "LiveServer"]
