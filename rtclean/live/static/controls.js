// Shared by the live page and the recordings page: the control token (kept in
// this browser's localStorage, sent as a header so other sites cannot forge
// requests), JSON calls that report refusals, and a small toast.
"use strict";

window.rtclean = (() => {
  const KEY = "rtclean.token";

  function token() {
    try { return localStorage.getItem(KEY) || ""; } catch (e) { return ""; }
  }

  function setToken(t) {
    try {
      if (t) localStorage.setItem(KEY, t); else localStorage.removeItem(KEY);
    } catch (e) { /* private mode: the token lasts for this page only */ }
    memo = t || "";
  }
  let memo = token();

  // {ok, status, data}; never throws, so callers show data.error on failure.
  async function api(method, url, body) {
    const headers = {};
    if (memo) headers["X-Rtclean-Token"] = memo;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    try {
      const r = await fetch(url, { method, headers, cache: "no-store",
        body: body === undefined ? undefined : JSON.stringify(body) });
      let data = {};
      try { data = await r.json(); } catch (e) { data = { error: `HTTP ${r.status}` }; }
      return { ok: r.ok, status: r.status, data };
    } catch (e) {
      return { ok: false, status: 0, data: { error: "rtclean is not reachable" } };
    }
  }

  let toastTimer = null;
  function toast(msg, bad = true) {
    const el = document.getElementById("toast");
    if (!el) return;
    el.textContent = msg;
    el.classList.toggle("bad", bad);
    el.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { el.hidden = true; }, 4000);
  }

  // Report a refused control in words the user can act on.
  function explain(res) {
    if (res.status === 401) return "Enter the control token (Unlock) first.";
    return res.data.error || `failed (HTTP ${res.status})`;
  }

  function wireUnlock(onChange) {
    const dlg = document.getElementById("unlock-dialog");
    const btn = document.getElementById("unlock");
    const input = document.getElementById("token-input");
    if (!dlg || !btn) return;
    const label = () => { btn.textContent = memo ? "Unlocked" : "Unlock"; btn.classList.toggle("on", !!memo); };
    label();
    btn.addEventListener("click", () => {
      input.value = memo;
      if (dlg.showModal) dlg.showModal(); else dlg.setAttribute("open", "");
    });
    document.getElementById("token-forget").addEventListener("click", () => {
      setToken(""); label(); dlg.close(); onChange && onChange();
    });
    document.getElementById("unlock-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      setToken(input.value.trim());
      dlg.close();
      label();
      if (memo) {
        const res = await api("POST", "/api/auth");
        if (!res.ok) { toast(explain(res)); setToken(""); label(); } else toast("Controls unlocked", false);
      }
      onChange && onChange();
    });
  }

  return { token: () => memo, setToken, api, toast, explain, wireUnlock };
})();
