// The labelling page: shows the first frame of the server's queue, sends one
// request per decision and re-renders from the state the server returns.
// Actions go through one promise chain so fast key presses are applied in
// order, each to the frame that is current when its turn comes.
"use strict";

const COLOURS = ["#ff5c5c", "#3ddc84", "#4fd1c5", "#f5a524", "#a78bfa", "#f472b6", "#60a5fa", "#facc15", "#94a3b8"];
const $ = (id) => document.getElementById(id);
let S = null;            // the last state from the server
let chain = Promise.resolve();
let showingPrev = false;
const preloaded = new Map();

function colour(cls) {
  const i = S ? S.classes.findIndex((c) => c.name === cls) : -1;
  return COLOURS[(i < 0 ? 8 : i) % COLOURS.length];
}

function imgUrl(name, opts = {}) {
  const base = "/img/" + (opts.cls ? encodeURIComponent(opts.cls) + "/" : "") + encodeURIComponent(name);
  const q = [];
  if (opts.w) q.push("w=" + opts.w);
  if (opts.prev) q.push("prev=1");
  return q.length ? base + "?" + q.join("&") : base;
}

let toastTimer = 0;
function toast(msg) {
  const t = $("toast");
  t.textContent = msg;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, 3500);
}

async function api(path, body) {
  const opts = body === undefined ? { method: path === "/api/state" ? "GET" : "POST" }
    : { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const r = await fetch(path, opts);
  const data = await r.json().catch(() => ({ error: r.statusText }));
  if (!r.ok) throw new Error(data.error || r.statusText);
  return data;
}

function thumb(name, cls) {
  const d = document.createElement("div");
  d.className = "thumb";
  d.title = cls ? `${name} → ${cls}` : name;
  const img = document.createElement("img");
  img.loading = "lazy";
  img.src = imgUrl(name, { w: 256, cls });
  d.appendChild(img);
  if (cls) {
    const tag = document.createElement("div");
    tag.className = "tag";
    tag.textContent = cls;
    d.style.setProperty("--c", colour(cls));
    d.appendChild(tag);
  }
  return d;
}

function render(s) {
  S = s;
  const current = s.queue[0] || "";
  document.body.dataset.current = current;
  document.body.dataset.labelled = s.labelled;
  $("folder").textContent = s.folder;
  $("progress-text").textContent = `${s.labelled} / ${s.total} labelled`;
  $("fill").style.width = (s.total ? (100 * s.labelled) / s.total : 0) + "%";

  const box = $("classes");
  box.textContent = "";
  s.classes.forEach((c) => {
    const b = document.createElement("button");
    b.className = "cls";
    b.dataset.cls = c.name;
    b.style.setProperty("--c", colour(c.name));
    b.innerHTML = `<span><div class="label"></div><div class="count"></div></span><span class="keys"></span>`;
    b.querySelector(".label").textContent = c.name;
    b.querySelector(".count").textContent = `${c.count} frame${c.count === 1 ? "" : "s"}`;
    const keys = b.querySelector(".keys");
    c.keys.forEach((k) => { const e = document.createElement("kbd"); e.textContent = k; keys.appendChild(e); });
    b.addEventListener("click", () => act(() => labelCurrent(c.name)));
    box.appendChild(b);
  });

  $("undo").disabled = !s.can_undo;
  $("skip").disabled = !current;
  $("prev-hint").hidden = !s.current_has_prev;
  $("done").hidden = !!current;
  $("done-text").textContent = s.classes.map((c) => `${c.name}: ${c.count}`).join(" · ");
  $("name").textContent = current;
  $("left").textContent = current ? `${s.unlabelled} to go` : "";
  const frame = $("frame");
  if (current) {
    showingPrev = false;
    $("prev-badge").hidden = true;
    const url = imgUrl(current);
    if (frame.getAttribute("src") !== url) frame.src = url;
    frame.hidden = false;
  } else {
    frame.removeAttribute("src");
    frame.hidden = true;
  }

  const next = $("next");
  next.textContent = "";
  s.queue.slice(1, 9).forEach((n) => next.appendChild(thumb(n)));
  const recent = $("recent");
  recent.textContent = "";
  s.recent.forEach((r) => recent.appendChild(thumb(r.name, r.class)));

  // Full-size preloading of the next frames keeps labelling instant.
  s.queue.slice(1, 4).forEach((n) => {
    if (!preloaded.has(n)) { const i = new Image(); i.src = imgUrl(n); preloaded.set(n, i); }
  });
  if (preloaded.size > 64) preloaded.clear();
  document.body.dataset.ready = "1";
}

function flash(cls) {
  const box = $("frame-box");
  box.style.setProperty("--flash", colour(cls));
  box.classList.add("flash");
  setTimeout(() => box.classList.remove("flash"), 180);
}

async function labelCurrent(cls) {
  const name = S && S.queue[0];
  if (!name) return;
  flash(cls);
  render(await api("/api/label", { name, class: cls }));
}

async function skipCurrent() {
  const name = S && S.queue[0];
  if (name) render(await api("/api/skip", { name }));
}

async function undo() {
  render(await api("/api/undo", {}));
}

function act(fn) {
  chain = chain.then(fn).catch(async (e) => {
    toast(e.message);
    try { render(await api("/api/state")); } catch (_) { /* server gone: keep the page */ }
  });
  return chain;
}

function setPrev(on) {
  if (!S || !S.queue[0] || !S.current_has_prev || on === showingPrev) return;
  showingPrev = on;
  $("frame").src = imgUrl(S.queue[0], { prev: on });
  $("prev-badge").hidden = !on;
}

document.addEventListener("keydown", (ev) => {
  if (!S || ev.altKey || ev.metaKey) return;
  const key = ev.key.toLowerCase();
  if ((ev.ctrlKey && key === "z") || (!ev.ctrlKey && key === "u")) {
    ev.preventDefault();
    act(undo);
    return;
  }
  if (ev.ctrlKey) return;
  if (key === "s" || ev.key === "ArrowRight") { ev.preventDefault(); act(skipCurrent); return; }
  if (key === "p") { ev.preventDefault(); setPrev(true); return; }
  const cls = S.classes.find((c) => c.keys.includes(key));
  if (cls) { ev.preventDefault(); act(() => labelCurrent(cls.name)); }
});
document.addEventListener("keyup", (ev) => { if (ev.key.toLowerCase() === "p") setPrev(false); });
$("skip").addEventListener("click", () => act(skipCurrent));
$("undo").addEventListener("click", () => act(undo));

act(async () => render(await api("/api/state")));
