"""Local display (HDMI) of the clean feed: see display.py."""

from rtclean.display.display import Display

__all__ = ["Display"]
