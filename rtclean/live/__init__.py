"""Live view: LiveHub (one JPEG per frame, shared by all clients), the aiohttp
server with MJPEG streams, status and metrics, and the page in static/."""

from rtclean.live.hub import LiveHub, LiveJpeg
from rtclean.live.server import LiveServer

__all__ = ["LiveHub", "LiveJpeg", "LiveServer"]
