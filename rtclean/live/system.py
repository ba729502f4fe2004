"""Host figures for the status tiles: CPU temperature, free disk, CPU use.

Each is read on request (a few small file reads), never per frame, and is
None where the machine does not offer it (no thermal zone in a container).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

THERMAL_ROOT = Path("/sys/class/thermal")


def cpu_temp_c(root: Path = THERMAL_ROOT) -> float | None:
    """The CPU's temperature in °C: the zone whose type names the CPU or SoC
    (a Pi's "cpu-thermal"), else the first readable zone."""
    zones = sorted(root.glob("thermal_zone*"))
    readings: list[tuple[bool, float]] = []
    for z in zones:
        try:
            milli = int((z / "temp").read_text().strip())
        except (OSError, ValueError):
            continue
        try:
            kind = (z / "type").read_text().strip().lower()
        except OSError:
            kind = ""
        readings.append((any(w in kind for w in ("cpu", "soc", "x86_pkg", "core")), milli / 1000.0))
    if not readings:
        return None
    preferred = [t for is_cpu, t in readings if is_cpu]
    return round((preferred or [readings[0][1]])[0], 1)


def disk_free_mb(path: str | os.PathLike) -> float | None:
    """Free space for unprivileged writers on the filesystem holding ``path``
    (its nearest existing parent: the recordings directory may not exist yet)."""
    p = Path(path).resolve()
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return round(shutil.disk_usage(p).free / 2**20, 1)
    except OSError:
        return None


class CpuUse:
    """This process's CPU use in percent of one core since the previous
    reading at least ``min_interval_s`` ago (several pages poll at once)."""

    def __init__(self, min_interval_s: float = 1.0) -> None:
        self.min_interval_s = min_interval_s
        self._lock = threading.Lock()
        self._t = time.monotonic()
        self._cpu = time.process_time()
        self._value: float | None = None

    def percent(self) -> float | None:
        with self._lock:
            now, cpu = time.monotonic(), time.process_time()
            if now - self._t >= self.min_interval_s:
                self._value = round((cpu - self._cpu) / (now - self._t) * 100.0, 1)
                self._t, self._cpu = now, cpu
            return self._value
