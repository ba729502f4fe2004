"""`rtclean check`: is this machine ready to run the configured service?

Looks at what a field start needs, in order: the configuration, the
detector (model file, TFLite runtime, Edge TPU delegate), the capture
device, and the recordings directory (writable, free space against
``record.min_free_mb``). Prints one line per finding::

      ok    config     /etc/rtclean/rtclean.yaml
      warn  detector   no model at /opt/rtclean/models/breakup.tflite: classical detector
      FAIL  capture    capture device /dev/video0 not found (is the capture card plugged in?)

and exits 1 when something the service needs is missing (a FAIL), else 0.
A warning is something that works, less well (e.g. the classical detector).
Opening the capture device fails while the service itself holds it: stop
the service first (the message says so).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from rtclean.config import Config
from rtclean.errors import RtcleanError

log = logging.getLogger(__name__)

OK, WARN, FAIL = "ok", "warn", "FAIL"


@dataclass
class Finding:
    level: str  # ok | warn | FAIL
    what: str
    detail: str

    def line(self) -> str:
        return f"  {self.level:<5} {self.what:<10} {self.detail}"


def _check_companion(path: Path, delegate: str, precision: str) -> list[Finding]:
    """The companion model the card names, if any (rtclean.detect.fused):
    without it the detector runs on, a little less sensitive."""
    from rtclean.detect.tflite import card_companion_agree, load_companion

    try:
        det = load_companion(path, delegate, precision=precision)
    except RtcleanError as e:
        return [Finding(WARN, "companion", f"{e} (the first model runs alone)")]
    if det is None:
        return []
    loads = f"{det.model_path} loads with {det.runtime} ({delegate}, {det.precision})"
    try:
        a = card_companion_agree(path)
    except RtcleanError as e:
        return [Finding(WARN, "companion", f"{loads}, but {e} (it counts at its own threshold only)")]
    if a is not None:
        loads += f"; counts from {a.score:g} with {a.click_runs:g}+ fresh click runs (companion.agree)"
        if a.needs_runs > 0:
            loads += f", not at all with fewer than {a.needs_runs:g}"
    return [Finding(OK, "companion", loads)]


def _check_threads(d) -> Finding:
    from rtclean.detect import parallel_detect

    cores = os.cpu_count() or 1
    if parallel_detect(d):
        return Finding(OK, "threads", f"detect on 2 threads, the classical detector beside the models "
                                      f"(detect.parallel; {cores} cores)")
    why = "detect.parallel: false" if not d.parallel else "one core"
    return Finding(OK, "threads", f"detect on 1 thread ({why})")


def check_detector(cfg: Config, root: Path) -> list[Finding]:
    from rtclean.detect import model_path
    from rtclean.detect.runtime import RUNTIMES, _module, probe_delegate

    d = cfg.detect
    out: list[Finding] = []
    runtime = next((label for label, mod in RUNTIMES if _module(mod) is not None), None)
    needs_model = d.detector == "tflite"
    if d.detector == "classical":
        out.append(Finding(OK, "detector", "classical (detect.detector: classical, no model needed)"))
    else:
        path = model_path(d, root)
        if not path.is_file():
            out.append(Finding(FAIL if needs_model else WARN, "model",
                               f"no model at {path}" + ("" if needs_model else ": the classical detector runs")))
        else:
            from rtclean.detect.precision import load_detector

            try:
                det = load_detector(path, d.precision, d.delegate)
                out.append(Finding(OK, "model", f"{det.model_path} loads with {det.runtime} "
                                                f"({d.delegate}, {det.precision}; detect.precision: {d.precision})"))
                if d.detector == "auto":
                    out.extend(_check_companion(path, d.delegate, "float32" if det.is_twin else "int8"))
                    out.append(_check_threads(d))
            except RtcleanError as e:
                out.append(Finding(FAIL if needs_model else WARN, "model",
                                   f"{e}" + ("" if needs_model else " (the classical detector runs)")))
    out.append(Finding(OK if runtime else (FAIL if needs_model else WARN), "runtime",
                       f"TFLite runtime {runtime}" if runtime else "no TFLite runtime (pip install ai-edge-litert)"))
    if d.delegate == "edgetpu":
        if runtime is None:
            out.append(Finding(FAIL, "delegate", "Edge TPU requested but there is no TFLite runtime"))
        else:
            modname = dict(RUNTIMES)[runtime]
            reason = probe_delegate(modname)
            out.append(Finding(OK, "delegate", "Edge TPU (libedgetpu.so.1) loads") if reason is None
                       else Finding(FAIL, "delegate", f"Edge TPU requested: {reason}"))
    else:
        out.append(Finding(OK, "delegate", "cpu"))
    return out


def check_capture(cfg: Config) -> Finding:
    from rtclean.sources import make_source

    kind = cfg.source.kind
    if kind == "demo":
        return Finding(OK, "capture", "demo (the built-in simulated feed)")
    try:
        src = make_source(cfg.source)
        src.open()
    except RtcleanError as e:
        hint = (" (if the service is running it holds the device: stop it first)"
                if kind == "v4l2" and "cannot open" in str(e) else "")
        return Finding(FAIL, "capture", f"{e}{hint}")
    try:
        w, h = src.size
        return Finding(OK, "capture", f"{kind} {getattr(src, 'name', kind)}: {w}x{h} at {src.fps or 0:.2f} fps")
    finally:
        try:
            src.close()
        except Exception as e:  # noqa: BLE001 - the open worked, which is what is checked
            log.debug("close after check: %s", e)


def check_storage(cfg: Config, free_bytes=None) -> list[Finding]:
    from rtclean.record.library import RecordingLibrary
    from rtclean.record.retention import MB, disk_free_bytes
    from rtclean.record.segments import ensure_writable

    r = cfg.record
    if not r.enabled:
        return [Finding(OK, "record", "recording disabled (record.enabled: false)")]
    d = Path(r.dir)
    if d.is_dir():
        try:
            ensure_writable(d)
        except RtcleanError as e:
            return [Finding(FAIL, "storage", str(e))]
        at = d
    else:  # a check changes nothing: the service creates the directory
        at = next((q for q in d.absolute().parents if q.is_dir()), Path("/"))
        if not os.access(at, os.W_OK | os.X_OK):
            return [Finding(FAIL, "storage", f"recording directory {d} does not exist and {at} is not writable")]
    free = (free_bytes or disk_free_bytes)(at) / MB
    recs = RecordingLibrary(d).list()
    deletable = sum(x.size_bytes for x in recs if not x.keep) / MB
    found = f"{d.resolve()}: {free:.0f} MB free, {len(recs)} recordings ({deletable:.0f} MB deletable)"
    if free >= r.min_free_mb:
        return [Finding(OK, "storage", f"{found}; keeps {r.min_free_mb} MB free")]
    if free + deletable >= r.min_free_mb:
        return [Finding(WARN, "storage", f"{found}: below record.min_free_mb {r.min_free_mb}, "
                                         "the oldest recordings will be deleted")]
    return [Finding(FAIL, "storage", f"{found}: below record.min_free_mb {r.min_free_mb} even after "
                                     "deleting every recording not marked keep: nothing would be recorded")]


def run_check(cfg: Config, config_path: str | None, root: Path, free_bytes=None) -> list[Finding]:
    findings = [Finding(OK, "config", f"{config_path} is valid" if config_path else "built-in defaults")]
    findings += check_detector(cfg, root)
    findings.append(check_capture(cfg))
    findings += check_storage(cfg, free_bytes)
    if cfg.live.enabled:
        findings.append(Finding(OK, "live", f"web view will listen on {cfg.live.host}:{cfg.live.port}"))
    return findings
