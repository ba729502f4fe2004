"""Repair of broken frames: flow-based prediction, hold, signal lost."""

from rtclean.repair.flow import FlowEstimator
from rtclean.repair.repairer import REPAIR_FLOW, Repairer

__all__ = ["FlowEstimator", "Repairer", "REPAIR_FLOW"]
