"""report.json + report.html (+ crops/) of `rtclean eval repair`."""

from __future__ import annotations

import html
import json
from pathlib import Path

import cv2
import numpy as np

from rtclean.errors import RtcleanError

CROP = (320, 192)  # w, h of each before/after crop
CROP_METHODS = ("raw", "hold", "blend", "live", "offline", "truth")


def _crop(example: dict) -> np.ndarray:
    """One strip: the same window of every method's picture, side by side,
    centred on the most damaged band."""
    pics = example["pics"]
    h, w = pics["truth"].shape[:2]
    cw, ch = min(CROP[0], w), min(CROP[1], h)
    bands = np.asarray(example["bands"])
    cy = int((np.argmax(bands) + 0.5) * h / len(bands)) if bands.size else h // 2
    y0 = int(np.clip(cy - ch // 2, 0, h - ch))
    x0 = (w - cw) // 2
    tiles = []
    for m in CROP_METHODS:
        tile = pics[m][y0:y0 + ch, x0:x0 + cw].copy()
        cv2.putText(tile, m, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 4, cv2.LINE_AA)
        cv2.putText(tile, m, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(tile)
    return np.hstack(tiles)


def _fmt(v) -> str:
    return "" if v is None else f"{v:.2f}" if isinstance(v, float) else str(v)


def _table(title: str, groups: dict, methods: list[str], metric: str) -> str:
    head = "".join(f"<th>{m}</th>" for m in methods)
    body = []
    for name, g in groups.items():
        vals = g.get(metric, {})
        cells = "".join(f"<td>{_fmt(vals.get(m))}</td>" for m in methods)
        body.append(f"<tr><th>{html.escape(str(name))}</th><td>{g['frames']}</td>{cells}</tr>")
    return (f"<h3>{html.escape(title)}</h3><table><tr><th></th><th>frames</th>{head}</tr>"
            + "".join(body) + "</table>")


def write_report(report: dict, examples: list[dict], out: Path) -> None:
    try:
        (out / "crops").mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RtcleanError(f"{out}: cannot write the report ({e.strerror or e})") from None
    (out / "report.json").write_text(json.dumps(report, indent=1))
    s = report["summary"]
    methods = report["methods"]
    parts = [f"<h1>rtclean eval repair</h1><p>{len(report['clips'])} clips, {report['frames_per_clip']} frames "
             f"each at {report['size'][0]}x{report['size'][1]}, breakup share {report['breakup']}, seed "
             f"{report['seed']}, damage located by the {report['localise']}; "
             f"{s['all']['frames']} broken frames scored in {report['seconds']} s.</p>",
             "<h2>Targets</h2><table><tr><th>target</th><th>measured</th><th>wanted</th><th>met</th></tr>"]
    for name, t in s["targets"].items():
        value = t.get("value", t.get("gain_db"))
        wanted = t.get("target", "> 0 dB")
        parts.append(f"<tr class={'ok' if t['met'] else 'miss'}><td>{name}</td><td>{_fmt(value)}</td>"
                     f"<td>{wanted}</td><td>{'yes' if t['met'] else 'NO'}</td></tr>")
    parts.append("</table>")
    for side in ("live", "offline"):
        t = s["targets"].get(f"{side}_frames_worse_than_raw", {})
        if "lost_frames" in t:
            parts.append(f"<p>{side}: {t['value']} of {t['repaired_frames']} repaired frames worse than raw; "
                         f"SIGNAL LOST frames (policy after max_hold_ms, not a repair) counted apart: "
                         f"{t['lost_frames_worse_than_raw']} of {t['lost_frames']} worse than raw.</p>")
    for metric in ("psnr", "ssim"):
        unit = "dB" if metric == "psnr" else ""
        parts.append(f"<h2>{metric.upper()} {unit} (mean over frames)</h2>")
        parts.append(_table("overall", {"all": s["all"], "moving": s["moving"]}, methods, metric))
        parts.append(_table("by gap length (frames)", s["by_gap"], methods, metric))
        parts.append(_table("by motion class", s["by_motion"], methods, metric))
        parts.append(_table("by live repair kind", s["by_live_action"], methods, metric))
        parts.append(_table("by offline repair kind", s["by_offline_action"], methods, metric))
    parts.append(_table("per clip, PSNR dB", report["per_clip"], methods, "psnr"))
    parts.append("<h2>Before / after</h2>")
    for i, ex in enumerate(examples):
        name = f"crops/{i:03d}.jpg"
        cv2.imwrite(str(out / name), _crop(ex), [cv2.IMWRITE_JPEG_QUALITY, 90])
        r = ex["row"]
        p = r["psnr"]
        parts.append(f"<figure><img src='{name}' alt='crop {i}'><figcaption>{html.escape(r['clip'])} frame "
                     f"{r['index']}: {r['kind']}, gap {r['gap']}, {r['motion']} ({r['motion_px']} px/frame); "
                     f"PSNR raw {p['raw']:.1f}, hold {p['hold']:.1f}, blend {p['blend']:.1f}, "
                     f"live {p['live']:.1f} ({r['live_action']}), offline {p['offline']:.1f} "
                     f"({r['offline_action']})</figcaption></figure>")
    style = ("body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;margin-bottom:1em}"
             "td,th{border:1px solid #bbb;padding:2px 6px;text-align:right}.miss{background:#fdd}"
             ".ok{background:#dfd}img{max-width:100%}")
    (out / "report.html").write_text("<!doctype html><html><head><meta charset='utf-8'><title>rtclean eval repair"
                                     f"</title><style>{style}</style></head><body>{''.join(parts)}</body></html>")
