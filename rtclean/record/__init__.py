"""Segmented, crash-safe H.264 DVR of the raw and cleaned streams.

- ``SegmentClock`` / ``SegmentKey``: one shared decision per frame of which
  segment it belongs to, and the segment's file base name.
- ``VideoWriter``: one PyAV file (MPEG-TS H.264 for recordings, FFV1/MKV lossless).
- ``Recorder``: a drop-oldest queue bounded in seconds + an encoder thread.
- ``Sidecar``: per-frame JSON lines beside each clean segment.
"""

from rtclean.record.recorder import Recorder
from rtclean.record.segments import SegmentClock, SegmentKey
from rtclean.record.sidecar import Sidecar, read_sidecar
from rtclean.record.writer import VideoWriter

__all__ = ["Recorder", "SegmentClock", "SegmentKey", "Sidecar", "VideoWriter", "read_sidecar"]
