// rtclean live page: the feeds (only the visible ones are streamed, so the
// server encodes nothing nobody looks at), status tiles from /api/status, the
// breakup timeline from /api/timeline, and the token-protected controls
// (recording on/off, repaired-frame tag) through controls.js.
//
// A feed starts as MJPEG (works everywhere, at once). While its stream is
// being recorded and the browser has Media Source Extensions, the page
// switches to the recorder's own H.264 (player.js): no encode on the ground
// station for this viewer and a fifth of the bytes. When recording stops or
// the H.264 feed fails, it goes back to MJPEG.
"use strict";

(() => {
  const MODES = ["clean", "raw", "side"];
  const BLANK = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7";
  const POLL_MS = 1000;
  const TIMELINE_S = 300;
  const TIMELINE_BINS = 300;
  const VIDEO_RETRY_MS = 5000; // after an H.264 feed failed, MJPEG for at least this long
  const rt = window.rtclean;
  const FEED = window.rtcleanFeed;

  const $ = (sel) => document.querySelector(sel);
  const viewer = $("#viewer");
  const imgs = { clean: $("#img-clean"), raw: $("#img-raw") };
  const videos = { clean: $("#vid-clean"), raw: $("#vid-raw") };
  const feeds = { clean: $("#feed-clean"), raw: $("#feed-raw") };
  const retry = { clean: null, raw: null };
  const players = { clean: null, raw: null };
  const videoReady = { clean: false, raw: false }; // the status says the H.264 feed runs
  const videoBlocked = { clean: 0, raw: 0 };
  // ?mjpeg in the address keeps this page on MJPEG (e.g. to compare).
  const videoAllowed = !!(FEED && FEED.supported()) && !new URLSearchParams(location.search).has("mjpeg");
  let markRepaired = true;
  let mode = "clean";
  let started = false;

  // ------------------------------------------------------------------ streams

  function mjpegOn(name) {
    const img = imgs[name];
    if (img.dataset.live === "1") return;
    img.dataset.live = "1";
    // A unique query string so a reconnect never reuses a dead cached response.
    img.src = `/stream/${name}.mjpg?c=${Date.now()}`;
  }

  function mjpegOff(name) {
    const img = imgs[name];
    clearTimeout(retry[name]);
    if (img.dataset.live !== "1") return;
    img.dataset.live = "0";
    img.src = BLANK; // replacing the source closes the MJPEG connection
  }

  const canVideo = (name) => videoAllowed && videoReady[name] && Date.now() >= videoBlocked[name];

  // The H.264 player starts beside the MJPEG image, which stays on screen
  // (and streaming) until the video shows its first frame.
  function videoOn(name) {
    if (players[name]) return;
    const p = new FEED.FeedPlayer(name, videos[name], {
      onPlaying: () => {
        if (players[name] !== p) return;
        feeds[name].dataset.src = "video";
        mjpegOff(name);
      },
      onEnd: () => {
        if (players[name] !== p) return;
        players[name] = null;
        videoBlocked[name] = Date.now() + VIDEO_RETRY_MS;
        videoFallback(name);
      },
      onTag: (tag) => showTag(name, tag),
    });
    players[name] = p;
    p.start();
  }

  function videoOff(name) {
    const p = players[name];
    players[name] = null;
    if (p) p.stop();
    showTag(name, null);
  }

  function videoFallback(name) {
    feeds[name].dataset.src = "mjpeg";
    showTag(name, null);
    if (started && wanted(name)) mjpegOn(name);
  }

  function showTag(name, tag) {
    const el = document.getElementById(`tag-${name}`);
    if (!el) return; // the raw feed is never tagged
    const on = !!tag && markRepaired;
    if (el.hidden === !on && el.dataset.tag === (tag || "")) return;
    el.hidden = !on;
    el.dataset.tag = tag || "";
    el.textContent = tag || "";
  }

  function streamOn(name) {
    if (!players[name] || feeds[name].dataset.src !== "video") mjpegOn(name);
    if (canVideo(name)) videoOn(name);
  }

  function streamOff(name) {
    videoOff(name);
    mjpegOff(name);
    feeds[name].dataset.src = "mjpeg";
  }

  // From each status poll: start the H.264 player where it became
  // available, go back to MJPEG where it stopped.
  function followVideo(s) {
    const v = (s.live && s.live.video && s.live.video.streams) || {};
    const rec = s.recording || {};
    for (const name of Object.keys(videoReady)) {
      videoReady[name] = !!(v[name] && v[name].available) && !!rec.active;
      if (!started || !wanted(name)) continue;
      if (players[name] && !videoReady[name]) {
        videoOff(name);
        videoFallback(name);
      } else if (!players[name] && canVideo(name)) {
        videoOn(name);
      }
    }
  }

  // For tests and curious users: which feed shows what.
  window.rtcleanLive = {
    source: (name) => feeds[name].dataset.src,
    player: (name) => players[name],
  };

  for (const name of Object.keys(imgs)) {
    imgs[name].addEventListener("error", () => {
      if (imgs[name].dataset.live !== "1") return;
      imgs[name].dataset.live = "0";
      clearTimeout(retry[name]);
      retry[name] = setTimeout(() => { if (wanted(name) && feeds[name].dataset.src === "mjpeg") mjpegOn(name); }, 1500);
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
    const vstreams = (s.live && s.live.video && s.live.video.streams) || {};
    const vclean = vstreams.clean || {};
    const vclients = Object.values(vstreams).reduce((a, x) => a + (x.clients || 0), 0);
    const viewers = s.live ? s.live.clients + vclients : undefined;
    const path = vclients && vclean.latency_ms ? `to H.264 ${num(vclean.latency_ms.median_ms)} ms`
      : `to JPEG ${num(live.median_ms)} ms`;
    set("live.latency", `${path} · ${int(viewers)} viewer${viewers === 1 ? "" : "s"}`);

    const rate = typeof s.breakup_rate === "number" ? s.breakup_rate : null;
    set("breakup_rate", rate === null ? "–" : `${(rate * 100).toFixed(1)}%`);
    $("#breakup-meter").style.width = rate === null ? "0" : `${Math.min(100, rate * 100)}%`;
    tone("t-breakup", rate === null ? "" : rate >= 0.25 ? "bad" : rate >= 0.05 ? "warn" : "ok");

    const rep = s.repairs || {};
    set("repairs.total", int(sum(rep)));
    set("repairs", `${int(rep.repair)} repaired · ${int(rep.hold)} held · ${int(rep.lost)} lost`);
    // Repairs by kind: the hub counts every exact action ("repair:flow", ...).
    const acts = (s.counts && s.counts.actions) || {};
    const kinds = Object.entries(acts).filter(([k]) => k.startsWith("repair:"))
      .map(([k, v]) => `${k.slice(7)} ${int(v)}`);
    set("repairs.kinds", kinds.join(" · "));

    const drops = s.drops || {};
    const dropTotal = sum(drops);
    set("drops.total", int(dropTotal));
    set("drops", Object.entries(drops).map(([k, v]) => `${k} ${int(v)}`).join(" · ") || "–");
    tone("t-drops", dropTotal > 0 ? "warn" : "");

    const rec = s.recording || {};
    const recState = rec.state || (rec.active ? "recording" : "off");
    set("recording.active", REC_TEXT[recState] || recState);
    set("recording.file", rec.active ? (base(rec.clean) || base(rec.raw) || rec.dir || "–") : (rec.dir ? `to ${rec.dir}` : "–"));
    tone("t-rec", rec.active ? "bad" : recState === "disk_full" || recState === "error" ? "warn" : "");
    $("#rec-badge").hidden = !rec.active;

    const sys = s.system || {};
    const free = typeof rec.free_mb === "number" ? rec.free_mb : sys.disk_free_mb;
    set("disk.free", typeof free === "number" ? (free >= 1024 ? `${num(free / 1024, 1)} GB` : `${int(free)} MB`) : "–");
    set("disk.dir", rec.dir || "–");
    tone("t-disk", typeof free === "number" && free < 500 ? "warn" : "");
    set("cpu.temp", typeof sys.cpu_temp_c === "number" ? `${num(sys.cpu_temp_c, 1)} °C` : "n/a");
    set("cpu.use", typeof sys.cpu_percent === "number" ? `rtclean ${num(sys.cpu_percent, 0)}% of a core` : "–");
    tone("t-cpu", typeof sys.cpu_temp_c === "number" && sys.cpu_temp_c >= 80 ? "bad"
      : typeof sys.cpu_temp_c === "number" && sys.cpu_temp_c >= 70 ? "warn" : "");

    set("uptime_s", duration(s.uptime_s));
    set("reconnects", `${int(s.reconnects)} reconnect${s.reconnects === 1 ? "" : "s"}`);
    set("detector", s.detector || "–");
    const det = (s.stages && s.stages.detect) || {};
    set("detector.stage", typeof det.median_ms === "number" ? `detect ${num(det.median_ms, 1)} ms median` : "–");

    renderControls(s);
    followVideo(s);

    $("#updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
    document.body.dataset.filled = "1";
  }

  const REC_TEXT = { off: "Off", waiting: "Waiting", recording: "On", disk_full: "Disk full", error: "Error" };

  // ------------------------------------------------------------------ controls

  let lastStatus = null;
  const recBtn = $("#rec-toggle");
  const tagBtn = $("#tag-toggle");

  function renderControls(s) {
    lastStatus = s;
    const c = s.controls || {};
    const rec = s.recording || {};
    const on = !!rec.active || rec.manual === true;
    recBtn.setAttribute("aria-pressed", String(on));
    recBtn.textContent = on ? "Stop recording" : "Record";
    recBtn.disabled = !c.recording;
    const why = !c.token_set ? "disabled: set live.token in the config" : "";
    recBtn.title = why || (c.recording ? "start/stop recording" : "recording is not set up in this run");
    const tag = !!(s.live && s.live.mark_repaired);
    markRepaired = tag;
    if (!tag) showTag("clean", null);
    tagBtn.setAttribute("aria-pressed", String(tag));
    tagBtn.textContent = tag ? "Tag on" : "Tag off";
    tagBtn.disabled = false;
    tagBtn.title = why || "tag repaired frames in the live view";
  }

  recBtn.addEventListener("click", async () => {
    const on = recBtn.getAttribute("aria-pressed") !== "true";
    recBtn.disabled = true;
    const res = await rt.api("POST", "/api/record", { on });
    if (!res.ok) rt.toast(rt.explain(res));
    else rt.toast(on ? "Recording started" : "Recording stopped", false);
    await refresh();
  });

  tagBtn.addEventListener("click", async () => {
    const on = tagBtn.getAttribute("aria-pressed") !== "true";
    const res = await rt.api("POST", "/api/tag", { on });
    if (!res.ok) rt.toast(rt.explain(res));
    await refresh();
  });

  rt.wireUnlock(() => refresh());

  // ------------------------------------------------------------------ timeline

  const canvas = $("#timeline");

  function drawTimeline(tl) {
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(100, canvas.clientWidth), h = canvas.clientHeight || 90;
    if (canvas.width !== Math.round(w * dpr)) { canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr); }
    const g = canvas.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    g.strokeStyle = "#242c39";
    g.lineWidth = 1;
    for (const y of [0.25, 0.5, 0.75]) { g.beginPath(); g.moveTo(0, h * y + 0.5); g.lineTo(w, h * y + 0.5); g.stroke(); }
    const n = tl.bins, bw = w / n;
    for (let i = 0; i < n; i++) {
      const x = i * bw;
      if (tl.no_signal[i] > 0.5) { g.fillStyle = "#3a4150"; g.fillRect(x, 0, Math.ceil(bw), h); continue; }
      if (tl.breakup[i] > 0) {  // share of broken frames: a red band from the top
        g.fillStyle = "rgba(255, 92, 92, 0.35)";
        g.fillRect(x, 0, Math.ceil(bw), h * tl.breakup[i]);
      }
    }
    g.beginPath();
    g.strokeStyle = "#4fd1c5";
    g.lineWidth = 1.5;
    let pen = false;
    for (let i = 0; i < n; i++) {
      const v = tl.score[i];
      if (v === null) { pen = false; continue; }
      const x = i * bw + bw / 2, y = h - v * (h - 2) - 1;
      if (pen) g.lineTo(x, y); else g.moveTo(x, y);
      pen = true;
    }
    g.stroke();
    canvas.dataset.frames = String(tl.frames);
  }

  async function pollTimeline() {
    try {
      const r = await fetch(`/api/timeline?seconds=${TIMELINE_S}&bins=${TIMELINE_BINS}`, { cache: "no-store" });
      if (r.ok) drawTimeline(await r.json());
    } catch (e) { /* shown as offline by the status poll */ }
  }
  set("timeline.span", `${TIMELINE_S / 60} min`);
  set("timeline.left", `–${TIMELINE_S / 60} min`);

  async function refresh() {
    try {
      const r = await fetch("/api/status", { cache: "no-store" });
      if (r.ok) render(await r.json());
    } catch (e) { /* the next poll reports it */ }
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
    await pollTimeline();
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
