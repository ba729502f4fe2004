"""The evaluation report as one self-contained HTML page: tables and plots
drawn as inline SVG (no plotting library at run time)."""

from __future__ import annotations

import html
from pathlib import Path

COLOURS = {"tflite": "#1f6fd1", "classical": "#d1571f"}
POS, NEG = "#c0392b", "#27ae60"
W, H, PAD = 360, 260, 40


def _c(name: str) -> str:
    return COLOURS.get(name, "#555")


def _axes(title: str, xlabel: str, ylabel: str) -> list[str]:
    x0, y0, x1, y1 = PAD, H - PAD, W - 10, 20
    parts = [f'<rect x="{x0}" y="{y1}" width="{x1 - x0}" height="{y0 - y1}" fill="none" stroke="#999"/>',
             f'<text x="{W / 2}" y="14" text-anchor="middle" font-size="13">{html.escape(title)}</text>',
             f'<text x="{W / 2}" y="{H - 6}" text-anchor="middle" font-size="11">{html.escape(xlabel)}</text>',
             f'<text x="12" y="{H / 2}" font-size="11" transform="rotate(-90 12 {H / 2})" '
             f'text-anchor="middle">{html.escape(ylabel)}</text>']
    for t in (0.0, 0.5, 1.0):
        x = x0 + t * (x1 - x0)
        parts.append(f'<text x="{x:.1f}" y="{y0 + 14}" font-size="10" text-anchor="middle">{t:g}</text>')
    return parts


def _xy(fx: float, fy: float) -> tuple[float, float]:
    return PAD + fx * (W - 10 - PAD), (H - PAD) - fy * (H - PAD - 20)


def roc_svg(title: str, detectors: dict) -> str:
    parts = _axes(title, "false-positive rate", "true-positive rate")
    a, b = _xy(0, 0), _xy(1, 1)
    parts.append(f'<line x1="{a[0]}" y1="{a[1]}" x2="{b[0]}" y2="{b[1]}" stroke="#ccc" stroke-dasharray="4"/>')
    for k, (name, res) in enumerate(detectors.items()):
        roc = res.get("roc", {})
        pts = " ".join("%.1f,%.1f" % _xy(x, y) for x, y in zip(roc.get("fpr", []), roc.get("tpr", [])))
        if pts:
            parts.append(f'<polyline class="roc" points="{pts}" fill="none" stroke="{_c(name)}" stroke-width="2"/>')
        auc = res.get("roc_auc")
        label = f"{name} AUC {auc:.4f}" if auc is not None else f"{name} AUC n/a"
        parts.append(f'<text x="{PAD + 90}" y="{H - PAD - 12 - 14 * k}" font-size="11" '
                     f'fill="{_c(name)}">{html.escape(label)}</text>')
    return f'<svg class="plot" xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}">{"".join(parts)}</svg>'


def hist_svg(title: str, res: dict) -> str:
    hist = res.get("histogram", {})
    pos, neg = hist.get("positive", []), hist.get("negative", [])
    parts = _axes(title, "score", "share of class frames")
    n = max(len(pos), 1)
    for counts, colour, off in ((neg, NEG, 0.0), (pos, POS, 0.5)):
        total = max(sum(counts), 1)
        for i, c in enumerate(counts):
            if not c:
                continue
            frac = c / total
            x, y = _xy((i + off * 0.9) / n, frac)
            _, base = _xy(0, 0)
            bw = 0.45 * (W - 10 - PAD) / n
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bw:.1f}" height="{base - y:.1f}" fill="{colour}"/>')
    thr = res.get("threshold")
    if thr is not None:
        (x, yt), (_, yb) = _xy(thr, 1), _xy(thr, 0)
        parts.append(f'<line x1="{x:.1f}" y1="{yt:.1f}" x2="{x:.1f}" y2="{yb:.1f}" stroke="#000" stroke-dasharray="3"/>')
    parts.append(f'<text x="{W - 130}" y="36" font-size="11" fill="{POS}">breakup</text>'
                 f'<text x="{W - 70}" y="36" font-size="11" fill="{NEG}">clean</text>')
    return f'<svg class="plot" xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}">{"".join(parts)}</svg>'


def _pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.2f}%"


def _num(v) -> str:
    return "n/a" if v is None else f"{v:.4f}"


def _set_html(name: str, s: dict) -> str:
    dets = s.get("detectors", {})
    rows = []
    for d, r in dets.items():
        c = r["confusion"]
        rows.append(f"<tr><td>{html.escape(d)}</td><td>{r['threshold']:.3f}</td><td>{_pct(r['precision'])}</td>"
                    f"<td>{_pct(r['recall'])}</td><td>{_num(r['f1'])}</td><td>{_pct(r['fpr'])}</td>"
                    f"<td>{_num(r['roc_auc'])}</td><td>{c['tp']}</td><td>{c['fp']}</td><td>{c['tn']}</td>"
                    f"<td>{c['fn']}</td></tr>")
    scaled = f"; scaled to {s['dvr_size']} as a DVR records it" if s.get("dvr_size") else ""
    if s.get("comb"):
        scaled += "; NTSC decoded by a capture card that combs chroma"
    out = [f"<h2>{html.escape(name)}</h2><p>{s['frames']} frames: {s['positives']} breakup, "
           f"{s['negatives']} clean{'; content woven as an interlaced camera gives it' if s.get('interlaced') else ''}"
           f"{scaled}</p>",
           "<table><tr><th>detector</th><th>threshold</th><th>precision</th><th>recall</th><th>F1</th>"
           "<th>FPR</th><th>ROC AUC</th><th>TP</th><th>FP</th><th>TN</th><th>FN</th></tr>" + "".join(rows)
           + "</table>"]
    kinds = sorted({k for r in dets.values() for k in r.get("per_kind", {})})
    if kinds:
        head = "".join(f"<th>{html.escape(d)} recall</th>" for d in dets)
        body = "".join(
            f"<tr><td>{html.escape(k)}</td><td>{next(iter(dets.values()))['per_kind'][k]['frames']}</td>"
            + "".join(f"<td>{_pct(r['per_kind'][k]['recall'])}</td>" for r in dets.values()) + "</tr>"
            for k in kinds)
        out.append(f"<h3>per breakup kind</h3><table><tr><th>kind</th><th>frames</th>{head}</tr>{body}</table>")
    first = next(iter(dets.values()), None)
    if first and first.get("per_range"):
        head = "".join(f"<th>{html.escape(d)} recall</th><th>{html.escape(d)} FPR</th>" for d in dets)
        body = ""
        for i, rg in enumerate(first["per_range"]):
            body += (f"<tr><td>{html.escape(rg['range'])}</td><td>{rg['positives']}</td><td>{rg['negatives']}</td>"
                     + "".join(f"<td>{_pct(r['per_range'][i]['recall'])}</td><td>{_pct(r['per_range'][i]['fpr'])}</td>"
                               for r in dets.values()) + "</tr>")
        out.append(f"<h3>per {html.escape(s.get('range_axis', 'range'))} range</h3><table><tr><th>range</th>"
                   f"<th>breakup</th><th>clean</th>{head}</tr>{body}</table>")
    if first and first.get("per_damage"):
        head = "".join(f"<th>{html.escape(d)} recall</th>" for d in dets)
        body = "".join(
            f"<tr><td>{html.escape(rg['range'])}</td><td>{rg['positives']}</td>"
            + "".join(f"<td>{_pct(r['per_damage'][i]['recall'])}</td>" for r in dets.values()) + "</tr>"
            for i, rg in enumerate(first["per_damage"]))
        out.append(f"<h3>per damaged-line share (breakup frames)</h3><table><tr><th>lines damaged</th>"
                   f"<th>breakup</th>{head}</tr>{body}</table>")
    out.append('<div class="plots">' + roc_svg(f"ROC: {name}", dets)
               + "".join(hist_svg(f"{d} scores: {name}", r) for d, r in dets.items()) + "</div>")
    return "".join(out)


def write_html(report: dict, path: str | Path) -> None:
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>rtclean detector evaluation</title>",
             "<style>body{font-family:sans-serif;margin:20px;max-width:1200px}table{border-collapse:collapse;"
             "margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
             "td:first-child{text-align:left}.plots svg{margin:6px}</style></head><body>",
             f"<h1>Detector evaluation</h1><p>{html.escape(report.get('date', ''))}</p><ul>"]
    for d, info in report.get("detectors", {}).items():
        ms = info.get("median_ms_per_frame")
        speed = f", median {ms:.3f} ms per frame" if ms is not None else ""
        parts.append(f"<li>{html.escape(d)}: {html.escape(str(info['source']))}, threshold "
                     f"{info['threshold']:.3f}{speed}</li>")
    parts.append("</ul>")
    for name, s in report.get("sets", {}).items():
        parts.append(_set_html(name, s))
    un = report.get("untouched")
    if un:
        head = "".join(f"<th>{html.escape(d)} FP</th>" for d in un["false_positives"])
        body = "".join(f"<tr><td>{html.escape(c['clip'])}</td><td>{c['frames']}</td>"
                       + "".join(f"<td>{v}</td>" for v in c["false_positives"].values()) + "</tr>"
                       for c in un["clips"])
        total = "".join(f"<td>{un['false_positives'][d]} ({_pct(un['fp_rate'][d])})</td>" for d in un["false_positives"])
        woven = "woven as an interlaced camera gives them; " if un.get("interlaced") else ""
        woven += f"scaled to {un['dvr_size']} as a DVR records them; " if un.get("dvr_size") else ""
        parts.append(f"<h2>untouched clips ({woven}every frame is clean)</h2><table><tr><th>clip</th><th>frames</th>{head}"
                     f"</tr>{body}<tr><th>total</th><td>{un['frames']}</td>{total}</tr></table>")
    parts.append("</body></html>")
    Path(path).write_text("".join(parts), encoding="utf-8")
