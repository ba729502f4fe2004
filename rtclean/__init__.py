"""rtclean: real-time cleaning of analog FPV video.

The package is laid out along the data flow:

    sources/  capture (V4L2, picamera2, file, built-in demo feed)
    detect/   breakup scoring (classical, TFLite) and the temporal decision
    repair/   motion-compensated substitution, hold and signal-lost policy
    record/   segmented crash-safe H.264 DVR of the raw and cleaned streams
    live/     the web view (MJPEG) and status API
    service/  systemd integration
    sim/      the simulated FPV feed and breakup generator
    offline/  `rtclean detect` / `rtclean clean` on files

The per-frame path lives in one place: rtclean.pipeline.FrameProcessor.
"""

__version__ = "0.1.0"
