"""Physically modelled analog FPV video: composite PAL/NTSC over a 5.8 GHz FM
link into a receiver and capture card, with exact ground truth.

``AnalogChannel(standard, seed, profile).render(frame, cnr_db)`` runs one frame
through the chain; ``LinkProcess`` gives per-line CNR over time;
``degrade_analog(frames, ...)`` combines them like ``rtclean.sim.feed.degrade``.
"""

from rtclean.sim.analog.channel import AnalogChannel, AnalogResult, degrade_analog
from rtclean.sim.analog.decode import PROFILES
from rtclean.sim.analog.link import LinkFrame, LinkProcess
from rtclean.sim.analog.standards import NTSC, PAL, AnalogStandard, get_standard

__all__ = ["AnalogChannel", "AnalogResult", "degrade_analog", "LinkProcess", "LinkFrame", "PROFILES",
           "AnalogStandard", "PAL", "NTSC", "get_standard"]
