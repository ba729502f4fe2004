"""The status dict as Prometheus text exposition format (version 0.0.4).

The status dict is flattened generically, so a field added to the pipeline's
status appears in /metrics without touching this file:

- nested keys join with "_" under the prefix ``rtclean``
  ({"frames": {"in": 5}} -> ``rtclean_frames_in_total 5``);
- booleans become 0/1, None, strings and other non-numbers are skipped;
- a list of numbers becomes one series per element with an ``index`` label;
- an integer under a key that counts events (frames, drops, repairs, ...) is a
  counter (name suffixed ``_total`` as Prometheus expects); everything else,
  including every float, is a gauge.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

PREFIX = "rtclean"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Key names whose integer values only ever grow. A word anywhere in the key
# path makes the value a counter ("drops.input", "live.streams.raw.encodes").
COUNTER_WORDS = frozenset({
    "frames", "repairs", "drops", "dropped", "encodes", "shared", "skipped", "published",
    "count", "errors", "restarts", "reconnects", "segments", "written", "bytes_total",
})

_BAD_CHARS = re.compile(r"[^a-zA-Z0-9_]")


@dataclass(frozen=True, slots=True)
class Sample:
    name: str  # full metric name, e.g. rtclean_frames_in_total
    kind: str  # "counter" or "gauge"
    value: float
    path: str  # dotted key path in the status dict, for the HELP line
    labels: tuple[tuple[str, str], ...] = ()


def _clean_key(key: object) -> str:
    part = _BAD_CHARS.sub("_", str(key)).strip("_")
    return part or "_"


def _number(v: object) -> float | None:
    """The value as a float, or None when it is not a finite number."""
    if isinstance(v, bool):
        return 1.0 if v else 0.0
    if isinstance(v, (int, float)):
        f = float(v)
    elif hasattr(v, "dtype") and getattr(v, "shape", None) == ():  # numpy scalar
        try:
            f = float(v)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return None
    else:
        return None
    return f if math.isfinite(f) else None


def _is_counter(path: tuple[str, ...], v: object) -> bool:
    if isinstance(v, bool) or not isinstance(v, int):
        return False
    return any(p.lower() in COUNTER_WORDS for p in path)


def flatten(status: Mapping, prefix: str = PREFIX) -> list[Sample]:
    """Every numeric leaf of ``status`` as a Sample, in the dict's order."""
    out: list[Sample] = []
    seen: set[str] = set()

    def walk(node: object, path: tuple[str, ...]) -> None:
        if isinstance(node, Mapping):
            for k, v in node.items():
                walk(v, path + (_clean_key(k),))
            return
        if isinstance(node, (list, tuple)):
            for i, v in enumerate(node):
                value = _number(v)
                if value is not None:
                    add(path, v, value, (("index", str(i)),))
            return
        value = _number(node)
        if value is not None:
            add(path, node, value, ())

    def add(path: tuple[str, ...], raw: object, value: float, labels: tuple) -> None:
        if not path:
            return
        kind = "counter" if _is_counter(path, raw) else "gauge"
        name = "_".join((prefix,) + path)
        if kind == "counter" and not name.endswith("_total"):
            name += "_total"
        if name[0].isdigit():
            name = "_" + name
        key = name + repr(labels)
        if key in seen:  # two keys that clean to the same name: keep the first
            return
        seen.add(key)
        out.append(Sample(name, kind, value, ".".join(path), labels))

    walk(status, ())
    return out


def _fmt(value: float) -> str:
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def _label_value(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _lines(samples: list[Sample]) -> Iterator[str]:
    described: set[str] = set()
    for s in samples:
        if s.name not in described:
            described.add(s.name)
            yield f"# HELP {s.name} rtclean status field {s.path}"
            yield f"# TYPE {s.name} {s.kind}"
        if s.labels:
            labels = ",".join(f'{k}="{_label_value(v)}"' for k, v in s.labels)
            yield f"{s.name}{{{labels}}} {_fmt(s.value)}"
        else:
            yield f"{s.name} {_fmt(s.value)}"


def render(status: Mapping, prefix: str = PREFIX) -> str:
    """Prometheus text for ``status``; ends with a newline as the format requires."""
    samples = flatten(status, prefix)
    # Series of one metric must be adjacent in the exposition format; flatten
    # keeps list elements together already, sorting by first appearance is stable.
    order: dict[str, int] = {}
    for s in samples:
        order.setdefault(s.name, len(order))
    samples.sort(key=lambda s: order[s.name])
    return "\n".join(_lines(samples)) + "\n"


# ----------------------------------------------------------------------------- histograms and labelled counters

class Histogram:
    """A Prometheus histogram: cumulative bucket counts, sum and count.

    ``observe`` is one bisect and three additions under a lock, cheap enough
    for every frame; ``snapshot`` copies under the same lock so a scrape sees
    ``+Inf`` bucket == count, as the format requires.
    """

    def __init__(self, name: str, help_text: str, buckets: tuple[float, ...]) -> None:
        import bisect
        import threading

        if list(buckets) != sorted(set(buckets)):
            raise ValueError("histogram buckets must be strictly increasing")
        self.name = name
        self.help = help_text
        self.buckets = tuple(float(b) for b in buckets)
        self._counts = [0] * (len(self.buckets) + 1)  # last: above every bound (+Inf only)
        self._sum = 0.0
        self._bisect = bisect.bisect_left
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        # bisect_left: a value equal to a bound belongs to that bucket (le = "less or equal").
        i = self._bisect(self.buckets, value)
        with self._lock:
            self._counts[i] += 1
            self._sum += value

    def snapshot(self) -> tuple[list[tuple[float, int]], float, int]:
        """([(upper bound, cumulative count)], sum, count)."""
        with self._lock:
            counts, total = list(self._counts), self._sum
        cum, out = 0, []
        for bound, c in zip(self.buckets, counts):
            cum += c
            out.append((bound, cum))
        count = cum + counts[-1]
        return out, total, count

    def render(self) -> str:
        buckets, total, count = self.snapshot()
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        for bound, cum in buckets:
            lines.append(f'{self.name}_bucket{{le="{_fmt(bound)}"}} {cum}')
        lines.append(f'{self.name}_bucket{{le="+Inf"}} {count}')
        lines.append(f"{self.name}_sum {_fmt(float(total))}")
        lines.append(f"{self.name}_count {count}")
        return "\n".join(lines) + "\n"


def render_counter(name: str, help_text: str, values: Mapping[str, int | float] | int | float,
                   label: str = "") -> str:
    """One counter family: a single value, or one series per ``label`` value."""
    if not name.endswith("_total"):
        raise ValueError(f"counter {name} must end in _total")
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} counter"]
    if isinstance(values, Mapping):
        for key, v in values.items():
            lines.append(f'{name}{{{label}="{_label_value(str(key))}"}} {_fmt(float(v))}')
    else:
        lines.append(f"{name} {_fmt(float(values))}")
    return "\n".join(lines) + "\n"
