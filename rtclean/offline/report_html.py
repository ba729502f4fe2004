"""The per-file HTML report of `rtclean clean`: one self-contained page
(inline SVG and data-URI JPEGs, no scripts, nothing fetched) that a pilot can
open from the output folder or mail around.

- timeline: the detector's breakup score per frame, the threshold, and the
  replaced (or dropped) ranges shaded by what was done;
- the replaced ranges as a table (frames, times, action);
- before/after thumbnails of an even spread of those ranges.
"""

from __future__ import annotations

import base64
import html
from itertools import groupby
from pathlib import Path

from rtclean.errors import RtcleanError
from rtclean.offline.thumbs import Thumb

_W, _H = 960, 160  # timeline plot size in SVG units
_COLOURS = {"repair": "#3c8dde", "hold": "#e0a030", "lost": "#d04040", "drop": "#d04040"}


def ranges(frames: list[dict]) -> list[dict]:
    """Runs of consecutive frames whose action is not ``pass``."""
    out = []
    for replaced, group in groupby(frames, key=lambda f: f["action"] != "pass"):
        run = list(group)
        if replaced:
            actions = sorted({f["action"] for f in run})
            out.append({"first": run[0]["index"], "last": run[-1]["index"], "frames": len(run),
                        "t0": run[0]["t"], "t1": run[-1]["t"], "actions": actions})
    return out


def _timeline(frames: list[dict], runs: list[dict], threshold: float | None) -> str:
    n = max(len(frames), 1)
    sx = _W / n
    parts = [f'<svg id="timeline" viewBox="0 0 {_W} {_H}" width="100%" preserveAspectRatio="none" '
             f'role="img" aria-label="breakup score per frame">',
             f'<rect width="{_W}" height="{_H}" fill="#fafafa"/>']
    for r in runs:
        kind = r["actions"][0].split(":")[0]
        parts.append(f'<rect class="range" x="{r["first"] * sx:.2f}" y="0" width="{max(r["frames"] * sx, 1):.2f}" '
                     f'height="{_H}" fill="{_COLOURS.get(kind, "#999")}" opacity="0.25">'
                     f'<title>frames {r["first"]}-{r["last"]}: {", ".join(r["actions"])}</title></rect>')
    if threshold is not None:
        y = _H * (1 - threshold)
        parts.append(f'<line x1="0" x2="{_W}" y1="{y:.1f}" y2="{y:.1f}" stroke="#888" stroke-dasharray="4 4"/>')
    pts = " ".join(f"{(i + 0.5) * sx:.2f},{_H * (1 - f['score']):.2f}" for i, f in enumerate(frames))
    parts.append(f'<polyline id="score" fill="none" stroke="#222" stroke-width="1" points="{pts}"/>')
    parts.append("</svg>")
    return "".join(parts)


def _img(data: bytes | None, alt: str) -> str:
    if data is None:
        return '<div class="none">dropped</div>'
    return f'<img alt="{alt}" src="data:image/jpeg;base64,{base64.b64encode(data).decode()}">'


def render(report: dict, thumbs: list[Thumb], threshold: float | None = None) -> str:
    frames = report["frames"]
    runs = ranges(frames)
    e = html.escape
    name = Path(report["input"]).name
    facts = [f"{report['width']}x{report['height']} at {report['fps']:g} fps",
             f"{len(frames)} frames", f"{report['replaced']} {'dropped' if report['mode'] == 'drop' else 'replaced'}",
             f"mode {report['mode']}", f"detector {report['detector']}",
             f"audio {report.get('audio') or 'none'}", f"{report['seconds']:.1f} s"]
    if report.get("truncated"):
        facts.append("TRUNCATED: " + report["truncation"])
    rows = "".join(f'<tr><td>{r["first"]}</td><td>{r["last"]}</td><td>{r["frames"]}</td>'
                   f'<td>{r["t0"]:.2f}</td><td>{r["t1"]:.2f}</td><td>{e(", ".join(r["actions"]))}</td></tr>'
                   for r in runs)
    cards = "".join(f'<figure class="thumb"><figcaption>frames {t.first}-{t.last} (shown: {t.index})</figcaption>'
                    f'<div class="pair">{_img(t.before, f"before {t.index}")}{_img(t.after, f"after {t.index}")}'
                    f'</div></figure>' for t in thumbs)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>rtclean: {e(name)}</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 2px 8px; text-align: right; }}
.thumb {{ display: inline-block; margin: 0 1em 1em 0; }} .pair img, .none {{ width: 240px; margin-right: 4px; }}
.none {{ display: inline-block; height: 60px; background: #eee; text-align: center; line-height: 60px; }}
</style></head><body>
<h1>{e(name)}</h1>
<p id="facts">{e(" · ".join(facts))}</p>
<p>{e(report['input'])} → {e(report['output'])}</p>
<h2>Breakup score</h2>
{_timeline(frames, runs, threshold)}
<p>Black: score per frame (0 bottom, 1 top); dashed: decision threshold; shaded: replaced or dropped frames.</p>
<h2>Replaced ranges ({len(runs)})</h2>
<table id="ranges"><tr><th>first</th><th>last</th><th>frames</th><th>from s</th><th>to s</th><th>action</th></tr>
{rows}</table>
<h2>Before / after</h2>
<p>Left: the input frame; right: what the output shows (middle frame of each range).</p>
<div id="thumbs">{cards or "<p>nothing replaced</p>"}</div>
</body></html>
"""


def write_html(path: str | Path, report: dict, thumbs: list[Thumb], threshold: float | None = None) -> None:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(render(report, thumbs, threshold), encoding="utf-8")
        tmp.replace(path)
    except OSError as e:
        raise RtcleanError(f"{path}: cannot write ({e.strerror or e})") from None
