"""Finding a TFLite runtime that works, and the Coral Edge TPU delegate.

Runtimes are tried in order: ai_edge_litert (current, numpy 2, Python
3.11-3.13), tflite_runtime (the older Pi wheel), tensorflow.lite. An import
that succeeds proves nothing: tflite-runtime 2.14 imports fine with numpy 2
and breaks at ``Interpreter()``. So a runtime counts only once it has built
an Interpreter for the actual model and allocated its tensors.

The Edge TPU delegate (``libedgetpu.so.1``) is loaded in a child process
first: stock libedgetpu has been reported to segfault with newer runtimes,
and a segfault in the service process would take the whole pipeline down.
``load_delegate`` raises OSError when the library is absent and ValueError
when the delegate fails; both, and a crash, become one clear ModelError line.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rtclean.errors import ModelError

log = logging.getLogger(__name__)

# (label reported to the user, module holding Interpreter and load_delegate)
RUNTIMES: tuple[tuple[str, str], ...] = (
    ("ai_edge_litert", "ai_edge_litert.interpreter"),
    ("tflite_runtime", "tflite_runtime.interpreter"),
    ("tensorflow", "tensorflow.lite"),
)
EDGETPU_LIBRARY = "libedgetpu.so.1"
PROBE_TIMEOUT_S = 30.0


@dataclass
class LoadedModel:
    interpreter: Any  # the runtime's Interpreter, tensors allocated
    runtime: str  # which runtime built it, e.g. "ai_edge_litert"
    delegate: str  # "cpu" or "edgetpu"


def _check_file(path: Path) -> None:
    """Fail early, with a line a user understands, before any runtime sees it."""
    if not path.is_file():
        raise ModelError(f"{path}: model file not found")
    try:
        with path.open("rb") as f:
            head = f.read(8)
    except OSError as e:
        raise ModelError(f"{path}: cannot read model: {e.strerror or e}") from None
    # A TFLite FlatBuffer carries the identifier "TFL3" at bytes 4..8.
    if len(head) < 8 or head[4:8] != b"TFL3":
        raise ModelError(f"{path}: not a TFLite model (no TFL3 FlatBuffer identifier)")


def _module(modname: str):
    try:
        return importlib.import_module(modname)
    except Exception as e:  # ImportError, or a broken wheel failing at import
        log.debug("runtime %s unavailable: %s", modname, e)
        return None


def probe_delegate(modname: str, library: str = EDGETPU_LIBRARY,
                   timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """Load ``library`` as a delegate in a child process.

    Returns None when it loads, else a short reason (absent, failed, crashed).
    """
    code = (
        "import sys\n"
        f"from {modname} import load_delegate\n"
        "try:\n"
        f"    load_delegate({library!r})\n"
        "except OSError as e:\n"
        "    print('absent:', e); sys.exit(3)\n"
        "except ValueError as e:\n"
        "    print('failed:', e); sys.exit(4)\n"
        "except Exception as e:\n"
        "    print('failed:', type(e).__name__, e); sys.exit(4)\n"
    )
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=timeout_s, env={**os.environ, "PYTHONFAULTHANDLER": ""})
    except subprocess.TimeoutExpired:
        return f"loading {library} hung for more than {timeout_s:g} s"
    if proc.returncode == 0:
        return None
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    msg = lines[-1] if lines else ""
    if proc.returncode == 3:
        return f"{library} not found ({msg.removeprefix('absent: ')})"
    if proc.returncode == 4:
        return f"{library} failed to load as a delegate ({msg.removeprefix('failed: ')})"
    if proc.returncode < 0:
        return f"loading {library} crashed the process (signal {-proc.returncode})"
    err = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    return f"loading {library} failed (exit {proc.returncode}: {err[-1] if err else 'no message'})"


def _edgetpu_delegates(label: str, modname: str, mod) -> list:
    reason = probe_delegate(modname)
    if reason is not None:
        raise ModelError(
            f"Edge TPU requested (detect.delegate: edgetpu) but {reason}; install libedgetpu1-std "
            "and plug in the Coral, or set detect.delegate: cpu")
    try:
        return [mod.load_delegate(EDGETPU_LIBRARY)]
    except (OSError, ValueError) as e:  # passed in the child, failed here: still one clear line
        raise ModelError(f"Edge TPU delegate failed to load with {label}: {e}") from None


@contextlib.contextmanager
def _quiet_stderr():
    """The TFLite runtime's C++ side prints "INFO: Created TensorFlow Lite
    XNNPACK delegate for CPU." straight to file descriptor 2 when the
    interpreter is built; on the command line that reads like a second
    message. Hide fd 2 for that moment only (start-up, before any worker
    thread logs); Python exceptions still carry their own text."""
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all (a daemon): nothing to hide
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            sys.stderr.flush()
            os.dup2(null.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def load_model(path: str | os.PathLike, delegate: str = "cpu", num_threads: int = 1) -> LoadedModel:
    """Build an Interpreter for ``path`` with the first runtime that can."""
    path = Path(path)
    _check_file(path)
    errors: list[str] = []
    for label, modname in RUNTIMES:
        mod = _module(modname)
        if mod is None or not hasattr(mod, "Interpreter"):
            continue
        delegates = _edgetpu_delegates(label, modname, mod) if delegate == "edgetpu" else []
        try:
            kwargs: dict[str, Any] = {"model_path": str(path)}
            if delegates:
                kwargs["experimental_delegates"] = delegates
            else:
                kwargs["num_threads"] = num_threads
            with _quiet_stderr():
                interp = mod.Interpreter(**kwargs)
                interp.allocate_tensors()
        except Exception as e:  # numpy-ABI breakage, bad model, missing op: try the next one
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            errors.append(f"{label}: {first}")
            log.debug("runtime %s cannot run %s: %s", label, path, e)
            continue
        return LoadedModel(interp, label, delegate)
    if not errors:
        raise ModelError("no TFLite runtime installed (pip install ai-edge-litert)")
    raise ModelError(f"{path}: cannot load model: {'; '.join(errors)}")
