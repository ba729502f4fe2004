// rtclean live page: MJPEG feeds (only the visible ones are streamed, so the
// server encodes nothing nobody looks at) and status tiles from /api/status.
"use strict";

(() => {
  const MODES = ["clean", "raw", "side"];
  const BLANK = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7";
  const POLL_MS = 1000;

  const $ = (sel) => document.querySelector(sel);
  const viewer = $("#viewer");
  const imgs = { clean: $("#img-clean"), raw: $("#img-raw") };
  const retry = { clean: null, raw: null };
  let mode = "clean";
  let started = false;

  // ------------------------------------------------------------------ streams

  function streamOn(name) {
    const img = imgs[name];
    if (img.dataset.live === "1") return;
    img.dataset.live = "1";
    // A unique query string so a reconnect never reuses a dead cached response.
    img.src = `/stream/${name}.mjpg?c=${Date.now()}`;
  }

  function streamOff(name) {
    const img = imgs[name];
    clearTimeout(retry[name]);
    if (img.dataset.live !== "1") return;
    img.dataset.live = "0";
    img.src = BLANK; // replacing the source closes the MJPEG connection
  }

  for (const name of Object.keys(imgs)) {
    imgs[name].addEventListener("error", () => {
      if (imgs[name].dataset.live !== "1") return;
      imgs[name].dataset.live = "0";
      clearTimeout(retry[name]);
      retry[name] = setTimeout(() => { if (wanted(name)) streamOn(name); }, 1500);
    });
  }

  const wanted = (name) => mode === "side" || mode === name;

  function setMode(m) {
    if (!MODES.includes(m)) m = "clean";
    mode = m;
    viewer.dataset.mode = m;
    for (const b of document.querySelectorAll(".seg button")) {
      b.setAttribute("aria-pressed", String(b.dataset.mode === m));
    }
    $("#snap").href = `/snapshot/${m === "raw" ? "raw" : "clean"}.jpg`;
    try { localStorage.setItem("rtclean.mode", m); } catch (e) { /* private mode */ }
    if (location.hash.slice(1) !== m) history.replaceState(null, "", m === "clean" ? location.pathname : `#${m}`);
    if (!started) return;
    for (const name of Object.keys(imgs)) (wanted(name) ? streamOn : streamOff)(name);
  }

  for (const b of document.querySelectorAll(".seg button")) {
    b.addEventListener("click", () => setMode(b.dataset.mode));
  }
  document.addEventListener("keydown", (e) => {
    if (e.target.closest("input, textarea") || e.ctrlKey || e.metaKey || e.altKey) return;
    const i = ["1", "2", "3"].indexOf(e.key);
    if (i >= 0) setMode(MODES[i]);
    if (e.key === "f") toggleFullscreen();
  });
  window.addEventListener("hashchange", () => setMode(location.hash.slice(1) || "clean"));

  function toggleFullscreen() {
    if (document.fullscreenElement) document.exitFullscreen();
    else if (viewer.requestFullscreen) viewer.requestFullscreen().catch(() => {});
  }
  $("#fullscreen").addEventListener("click", toggleFullscreen);
  viewer.addEventListener("dblclick", toggleFullscreen);

  // ------------------------------------------------------------------ status

  const num = (v, digits = 1) => (typeof v === "number" && isFinite(v) ? v.toFixed(digits) : "–");
  const int = (v) => (typeof v === "number" && isFinite(v) ? Math.round(v).toLocaleString("en") : "–");
  const sum = (o) => Object.values(o || {}).reduce((a, v) => a + (typeof v === "number" ? v : 0), 0);
  const base = (p) => (p ? String(p).split(/[\\/]/).pop() : "");

  function duration(s) {
    if (typeof s !== "number" || !isFinite(s)) return "–";
    s = Math.floor(s);
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    const mm = String(m).padStart(2, "0"), ss = String(sec).padStart(2, "0");
    return h ? `${h}:${mm}:${ss}` : `${m}:${ss}`;
  }

  const STATE_TEXT = { running: "Running", no_signal: "No signal", stopped: "Stopped", offline: "Offline" };

  function set(key, text) {
    for (const el of document.querySelectorAll(`[data-k="${key}"]`)) el.textContent = text;
  }

  function tone(id, cls) {
    const el = document.getElementById(id);
    if (!el) return;
    el.classList.remove("ok", "warn", "bad");
    if (cls) el.classList.add(cls);
  }

  function render(s) {
    const state = s.state || "stopped";
    document.body.dataset.state = state;
    $("#state-pill").textContent = STATE_TEXT[state] || state;
    set("state", STATE_TEXT[state] || state);
    tone("t-signal", state === "running" ? "ok" : state === "no_signal" ? "warn" : "bad");
    const veil = $("#veil");
    veil.hidden = state === "running";
    veil.textContent = state === "no_signal" ? "No signal" : state === "stopped" ? "Stopped" : "";

    const src = s.source || {};
    const size = Array.isArray(src.size) ? src.size : null;
    set("source", [src.kind, size ? `${size[0]}×${size[1]}` : "", src.fps ? `${num(src.fps, 2)} fps` : ""]
      .filter(Boolean).join(" · ") || "–");
    if (size && size[0] > 0 && size[1] > 0) {
      viewer.style.setProperty("--aspect", `${size[0]} / ${size[1]}`);
      viewer.style.setProperty("--ar", String(size[0] / size[1]));
    }

    const fps = s.fps || {};
    set("fps.in", num(fps.in));
    set("fps.out", num(fps.out));
    const frames = s.frames || {};
    set("frames", `${int(frames.in)} in · ${int(frames.out)} out`);

    const lat = s.latency || {};
    set("latency.p50_ms", num(lat.p50_ms));
    set("latency.p99_ms", num(lat.p99_ms));
    const live = (s.live && s.live.latency) || {};
    const viewers = s.live ? s.live.clients : undefined;
    set("live.latency", `to JPEG ${num(live.median_ms)} ms · ${int(viewers)} viewer${viewers === 1 ? "" : "s"}`);

    const rate = typeof s.breakup_rate === "number" ? s.breakup_rate : null;
    set("breakup_rate", rate === null ? "–" : `${(rate * 100).toFixed(1)}%`);
    $("#breakup-meter").style.width = rate === null ? "0" : `${Math.min(100, rate * 100)}%`;
    tone("t-breakup", rate === null ? "" : rate >= 0.25 ? "bad" : rate >= 0.05 ? "warn" : "ok");

    const rep = s.repairs || {};
    set("repairs.total", int(sum(rep)));
    set("repairs", `${int(rep.repair)} repaired · ${int(rep.hold)} held · ${int(rep.lost)} lost`);

    const drops = s.drops || {};
    const dropTotal = sum(drops);
    set("drops.total", int(dropTotal));
    set("drops", Object.entries(drops).map(([k, v]) => `${k} ${int(v)}`).join(" · ") || "–");
    tone("t-drops", dropTotal > 0 ? "warn" : "");

    const rec = s.recording || {};
    set("recording.active", rec.active ? "On" : "Off");
    set("recording.file", rec.active ? (base(rec.clean) || base(rec.raw) || rec.dir || "–") : (rec.dir ? `to ${rec.dir}` : "–"));
    tone("t-rec", rec.active ? "bad" : "");
    $("#rec-badge").hidden = !rec.active;

    set("uptime_s", duration(s.uptime_s));
    set("detector", s.detector ? `detector: ${s.detector}` : "–");

    $("#updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
    document.body.dataset.filled = "1";
  }

  async function poll() {
    try {
      const r = await fetch("/api/status", { cache: "no-store" });
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      render(await r.json());
    } catch (e) {
      document.body.dataset.state = "offline";
      $("#state-pill").textContent = "Offline";
      set("state", "Offline");
      tone("t-signal", "bad");
    }
    setTimeout(poll, POLL_MS);
  }

  // Start the streams after the load event: an MJPEG image never finishes
  // loading, and would otherwise hold the page in the "loading" state.
  function start() {
    started = true;
    setMode(mode);
  }

  setMode(location.hash.slice(1) || (() => { try { return localStorage.getItem("rtclean.mode"); } catch (e) { return null; } })() || "clean");
  poll();
  if (document.readyState === "complete") start();
  else window.addEventListener("load", start);
})();
