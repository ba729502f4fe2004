// rtclean recordings browser: the list from /api/recordings grouped by day,
// play (remuxed MP4 in a <video>), download, keep and delete (token).
"use strict";

(() => {
  const rt = window.rtclean;
  const $ = (sel) => document.querySelector(sel);
  const list = $("#list");

  const size = (b) => {
    if (typeof b !== "number") return "–";
    const u = ["B", "KB", "MB", "GB"];
    let i = 0;
    while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; }
    return `${b.toFixed(i ? 1 : 0)} ${u[i]}`;
  };
  const dur = (s) => {
    if (typeof s !== "number") return "–";
    s = Math.round(s);
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  };
  const pct = (v) => (typeof v === "number" ? `${(v * 100).toFixed(1)}%` : "–");

  function el(tag, attrs = {}, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "class") e.className = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const k of kids) if (k !== null && k !== undefined) e.append(k);
    return e;
  }

  // The sidecar summary (rtclean.record.library): frames, breakup_frames,
  // replaced {repair, hold, lost}.
  function breakupText(b) {
    if (!b || typeof b !== "object" || typeof b.frames !== "number" || !b.frames) return null;
    const parts = [`breakup ${pct((b.breakup_frames || 0) / b.frames)}`];
    const rep = b.replaced || {};
    for (const [k, v] of Object.entries(rep)) parts.push(`${v} ${k}`);
    return parts.join(" · ");
  }

  function item(r) {
    const row = el("article", { class: "rec-item", "data-name": r.name });
    const when = new Date(r.started * 1000);
    const title = el("div", { class: "name" }, when.toLocaleTimeString(), " · ", r.name,
      r.active ? el("span", { class: "live-tag" }, "RECORDING") : null,
      r.keep ? el("span", { class: "keep-tag" }, "KEEP") : null);
    const meta = el("div", { class: "meta" },
      el("b", {}, dur(r.duration_s)), " · ", size(r.size_bytes),
      breakupText(r.breakup) ? ` · ${breakupText(r.breakup)}` : "");
    const btns = el("div", { class: "btns" });
    if (r.play) {
      btns.append(el("button", { class: "btn", type: "button", "data-act": "play", onclick: () => {
        const v = row.querySelector("video");
        if (v) { v.remove(); return; }
        row.append(el("video", { src: r.play, controls: "", autoplay: "", playsinline: "", preload: "metadata" }));
      } }, "Play"));
    }
    for (const [kind, f] of Object.entries(r.files)) {
      btns.append(el("a", { class: "btn", href: `${f.url}?download=1`, download: "", "data-kind": kind,
        title: size(f.size) }, kind));
    }
    btns.append(el("button", { class: "btn", type: "button", "data-act": "keep", "aria-pressed": String(r.keep),
      onclick: async () => {
        const res = await rt.api("POST", `/api/recordings/${encodeURIComponent(r.name)}/keep`, { keep: !r.keep });
        if (!res.ok) rt.toast(rt.explain(res)); else load();
      } }, r.keep ? "Unkeep" : "Keep"));
    if (!r.active) {
      btns.append(el("button", { class: "btn danger", type: "button", "data-act": "delete", onclick: async () => {
        if (!confirm(`Delete ${r.name}? This cannot be undone.`)) return;
        const res = await rt.api("DELETE", `/api/recordings/${encodeURIComponent(r.name)}`);
        if (!res.ok) rt.toast(rt.explain(res)); else { rt.toast(`Deleted ${r.name}`, false); load(); }
      } }, "Delete"));
    }
    row.append(el("div", {}, title, meta), btns);
    return row;
  }

  async function load() {
    const res = await rt.api("GET", "/api/recordings");
    if (!res.ok) {
      $("#summary").textContent = res.data.error || `failed (HTTP ${res.status})`;
      document.body.dataset.loaded = "error";
      return;
    }
    const recs = res.data.recordings;
    const total = recs.reduce((a, r) => a + (r.size_bytes || 0), 0);
    $("#summary").textContent = `${recs.length} recording${recs.length === 1 ? "" : "s"} · ${size(total)} in ${res.data.dir}`
      + (typeof res.data.free_mb === "number" ? ` · ${size(res.data.free_mb * 1048576)} free` : "");
    const open = new Set([...list.querySelectorAll("video")].map((v) => v.closest(".rec-item").dataset.name));
    list.replaceChildren();
    if (!recs.length) list.append(el("p", { class: "empty" }, "No recordings yet."));
    let day = null, section = null;
    for (const r of recs) {  // newest first, grouped by local date
      const d = new Date(r.started * 1000).toLocaleDateString(undefined,
        { weekday: "short", year: "numeric", month: "short", day: "numeric" });
      if (d !== day) {
        day = d;
        section = el("section", { class: "day" }, el("h2", {}, d));
        list.append(section);
      }
      const row = item(r);
      section.append(row);
      if (open.has(r.name)) row.querySelector('[data-act="play"]')?.click();
    }
    document.body.dataset.loaded = "1";
  }

  rt.wireUnlock(load);
  load();
  setInterval(() => { if (!list.querySelector("video")) load(); }, 5000);
})();
