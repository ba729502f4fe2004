"""Breakup detectors and the factory that picks one from the configuration.

``detect.detector``:
- ``classical``: the signal-quality detector (no model).
- ``tflite``: the TFLite model; failing to load it is a ModelError.
- ``auto`` (default): the classical detector and the TFLite model together
  (``FusedDetector``: combined under the model card's fusion rule, plain OR
  or ``agree``, plus the companion model the card may name; see
  rtclean.detect.fused) if the model file exists
  and a runtime loads it, else classical alone. Which one and why is logged at INFO, so a Pi that quietly
  runs without its model is visible in the log.

``detect.precision`` says which file of the model runs, the int8 one or
its float32 twin (rtclean.detect.precision).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from rtclean.config import DetectConfig
from rtclean.detect.base import Detector
from rtclean.errors import ModelError

log = logging.getLogger(__name__)


def model_path(cfg: DetectConfig, root: Path) -> Path:
    """``detect.model`` as an absolute path. A relative one is looked up under
    ``root`` (the source checkout) and then the working directory (the
    service runs in /opt/rtclean, where install.sh puts models/); the first
    that exists wins, else the one under ``root`` is reported."""
    p = Path(cfg.model).expanduser()
    if p.is_absolute():
        return p
    for base in (Path(root), Path.cwd()):
        if (base / p).is_file():
            return base / p
    return Path(root) / p


def load_fused(path: Path, delegate: str = "cpu", num_threads: int = 1,
               classical: Detector | None = None, precision: str = "int8", parallel: bool = False) -> Detector:
    """The classical detector, the model at ``path`` and the companion its
    card names, fused (rtclean.detect.fused), in ``precision`` (the int8
    files, their float32 twins, or ``auto``: rtclean.detect.precision; the
    companion follows the main model's choice). A companion that cannot be
    used is left out with a warning: the pair's first model still works
    under its own rule. A bad main model is a ModelError. ``parallel``: the
    classical detector on a second thread (FusedDetector)."""
    from rtclean.detect.fused import FusedDetector
    from rtclean.detect.precision import load_detector
    from rtclean.detect.tflite import card_companion_agree, load_companion

    det = load_detector(path, precision, delegate, num_threads)
    agree = None
    try:  # the companion's twin when the main model runs as its twin
        companion = load_companion(path, delegate, num_threads, "float32" if det.is_twin else "int8")
    except ModelError as e:
        companion = None
        log.warning("detector: companion model left out (%s)", e)
    if companion is not None:
        try:
            agree = card_companion_agree(path)
        except ModelError as e:
            log.warning("detector: the companion's agreement left out, it counts at its own threshold (%s)", e)
    return FusedDetector(det, classical, companion=companion, companion_agree=agree, parallel=parallel)


def parallel_detect(cfg: DetectConfig, cores: int | None = None) -> bool:
    """Whether the default detector runs its classical half on a second
    thread: ``detect.parallel`` and at least two cores for this stream
    (``cores``; default all of this machine's)."""
    return cfg.parallel and ((os.cpu_count() or 1) if cores is None else cores) > 1


def make_detector(cfg: DetectConfig, root: Path, cores: int | None = None) -> Detector:
    """The detector ``cfg`` asks for. ``cores``: how many this stream may
    use (default all); ``detect.parallel`` takes effect only with two or
    more (a batch of offline jobs already fills the cores with workers)."""
    from rtclean.detect.classical import ClassicalDetector

    if cfg.detector == "classical":
        log.info("detector: classical (detect.detector: classical)")
        return ClassicalDetector(chroma_clicks=cfg.chroma_clicks)
    from rtclean.detect.precision import load_detector

    path = model_path(cfg, root)
    if cfg.detector == "tflite":
        det = load_detector(path, cfg.precision, cfg.delegate)
        log.info("detector: tflite %s via %s (detect.detector: tflite)", det.model_path, det.runtime)
        return det
    if not path.is_file():
        log.info("detector: classical (auto: no model at %s)", path)
        return ClassicalDetector(chroma_clicks=cfg.chroma_clicks)
    try:
        det = load_fused(path, cfg.delegate, classical=ClassicalDetector(chroma_clicks=cfg.chroma_clicks),
                         precision=cfg.precision, parallel=parallel_detect(cfg, cores))
    except ModelError as e:
        log.warning("detector: classical (auto: model at %s not usable: %s)", path, e)
        return ClassicalDetector(chroma_clicks=cfg.chroma_clicks)
    extra = f" + companion {det.companion.model_path.name}" if det.companion is not None else ""
    log.info("detector: classical + tflite %s%s via %s (auto: model loaded%s)", det.model_path, extra, det.runtime,
             ", classical on a second thread" if det.parallel else "")
    return det


__all__ = ["Detector", "load_fused", "make_detector", "model_path", "parallel_detect"]
