// rtclean H.264 live player: plays /stream/<name>.fmp4 (the DVR encoder's own
// packets, re-wrapped by the server as fragmented MP4, one fragment a frame)
// through Media Source Extensions, and keeps the picture at the live edge.
// Message format: rtclean/live/feed.py. The page (app.js) starts with MJPEG
// and switches to this player while the stream is being recorded.
"use strict";

(() => {
  const MS = window.ManagedMediaSource || window.MediaSource;
  const TAGS = [null, "REPAIRED", "HOLD", "LOST"];
  // Live edge: when the picture falls more than LAG_MAX_S behind the newest
  // frame (a stall, a tab in the background), jump to LAG_TARGET_S behind it;
  // between LAG_SLOW_S and LAG_MAX_S play a little faster until back (each
  // stall waiting for a frame would otherwise add to the delay for good).
  // A little slack keeps the decoder fed without waiting on every frame.
  const LAG_MAX_S = 0.5;
  const LAG_SLOW_S = 0.12;
  const LAG_TARGET_S = 0.06;
  const CATCH_UP_RATE = 1.25;
  const KEEP_S = 6; // seconds of video kept in the buffer behind the live edge

  function supported() {
    return !!MS && typeof fetch === "function" && typeof ReadableStream === "function";
  }

  function concat(a, b) {
    if (!a.length) return b;
    const out = new Uint8Array(a.length + b.length);
    out.set(a, 0);
    out.set(b, a.length);
    return out;
  }

  class FeedPlayer {
    // hooks: onPlaying() once the first frame shows, onEnd(reason) when the
    // feed stops or fails (the page goes back to MJPEG), onTag(tag|null) per
    // frame shown (where requestVideoFrameCallback exists).
    constructor(name, video, hooks) {
      this.name = name;
      this.video = video;
      this.hooks = hooks || {};
      this.queue = [];
      this.sb = null;
      this.stopped = false;
      this.playing = false;
      this.tags = new Map(); // media time (ms) -> tag code
      this.arrived = new Map(); // media time (ms) -> performance.now() when the frame arrived
      this.lags = []; // arrival -> shown, ms (last 250 frames)
      this.shown = 0;
      this.jumps = 0;
    }

    start() {
      const v = this.video;
      this.abort = new AbortController();
      this.ms = new MS();
      v.disableRemotePlayback = true; // ManagedMediaSource (iOS) plays only then
      v.muted = true;
      v.playsInline = true;
      this.url = URL.createObjectURL(this.ms);
      v.src = this.url;
      this.ms.addEventListener("sourceopen", () => this._read(), { once: true });
      v.addEventListener("playing", () => this._playing(), { once: true });
      if (v.requestVideoFrameCallback) v.requestVideoFrameCallback((now, meta) => this._frame(now, meta));
    }

    stop() {
      if (this.stopped) return;
      this.stopped = true;
      try { this.abort.abort(); } catch (e) { /* already done */ }
      this.video.pause();
      this.video.removeAttribute("src");
      this.video.load();
      URL.revokeObjectURL(this.url);
    }

    stats() {
      const s = [...this.lags].sort((a, b) => a - b);
      const q = (p) => (s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))] : null);
      const b = this.video.buffered;
      return { shown: this.shown, jumps: this.jumps, lag_median_ms: q(0.5), lag_p99_ms: q(0.99),
        behind_s: b.length ? b.end(b.length - 1) - this.video.currentTime : null };
    }

    _fail(reason) {
      if (this.stopped) return;
      this.stop();
      if (this.hooks.onEnd) this.hooks.onEnd(reason);
    }

    async _read() {
      try {
        const r = await fetch(`/stream/${this.name}.fmp4?c=${Date.now()}`,
          { signal: this.abort.signal, cache: "no-store" });
        if (!r.ok) throw new Error(`HTTP ${r.status}`);
        const reader = r.body.getReader();
        let buf = new Uint8Array(0);
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf = this._parse(concat(buf, value));
        }
        this._fail("the stream ended");
      } catch (e) {
        this._fail(String((e && e.message) || e));
      }
    }

    // Split the byte stream into messages: u32 length, u8 kind, u8 tag,
    // f64 media time, body. Returns the incomplete rest.
    _parse(buf) {
      let off = 0;
      const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
      while (buf.length - off >= 4) {
        const n = dv.getUint32(off);
        if (buf.length - off < 4 + n) break;
        const kind = String.fromCharCode(buf[off + 4]), tag = buf[off + 5], t = dv.getFloat64(off + 6);
        // slice() copies: the body outlives this chunk in the append queue.
        this._message(kind, tag, t, buf.slice(off + 14, off + 4 + n));
        off += 4 + n;
      }
      return buf.slice(off);
    }

    _message(kind, tag, t, body) {
      if (kind === "C") {
        const cfg = JSON.parse(new TextDecoder().decode(body));
        const type = `video/mp4; codecs="${cfg.codec}"`;
        if (this.sb) return; // new parameters of the same codec: the init segment follows
        if (!MS.isTypeSupported(type)) throw new Error(`this browser cannot play ${cfg.codec}`);
        this.sb = this.ms.addSourceBuffer(type);
        this.sb.mode = "segments";
        this.sb.addEventListener("updateend", () => this._pump());
        this.sb.addEventListener("error", () => this._fail("the browser refused the video"));
      } else if (kind === "I" || kind === "F") {
        if (kind === "F") {
          const ms = Math.round(t * 1000);
          this.tags.set(ms, tag);
          this.arrived.set(ms, performance.now());
          if (this.tags.size > 500) this._forget(ms - 10000);
        }
        this.queue.push(body);
        this._pump();
      } else if (kind === "E") {
        let reason = "the stream ended";
        try { reason = JSON.parse(new TextDecoder().decode(body)).reason || reason; } catch (e) { /* keep */ }
        throw new Error(reason);
      }
    }

    _forget(before) {
      for (const k of this.tags.keys()) { if (k < before) this.tags.delete(k); else break; }
      for (const k of this.arrived.keys()) { if (k < before) this.arrived.delete(k); else break; }
    }

    _pump() {
      const sb = this.sb;
      if (this.stopped || !sb || sb.updating) return;
      if (this.queue.length) {
        // Everything that queued while the buffer was busy goes in one append.
        const parts = this.queue.splice(0);
        let data = parts[0];
        if (parts.length > 1) {
          data = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
          let o = 0;
          for (const p of parts) { data.set(p, o); o += p.length; }
        }
        try {
          sb.appendBuffer(data);
        } catch (e) {
          this._fail(`append failed: ${e.name || e}`);
        }
        return;
      }
      this._chase();
    }

    _chase() {
      const v = this.video, b = v.buffered;
      if (!b.length) return;
      const start = b.start(b.length - 1), end = b.end(b.length - 1);
      const lag = end - v.currentTime;
      if (v.currentTime < start || lag > LAG_MAX_S) {
        v.currentTime = Math.max(start, end - LAG_TARGET_S);
        this.jumps += 1;
      } else {
        const rate = lag > LAG_SLOW_S ? CATCH_UP_RATE : lag < LAG_TARGET_S ? 1 : v.playbackRate;
        if (v.playbackRate !== rate) v.playbackRate = rate;
      }
      if (v.paused) v.play().catch(() => { /* autoplay refused: the page shows MJPEG meanwhile */ });
      // Drop what lies well behind the live edge, so memory stays bounded.
      if (end - b.start(0) > 2 * KEEP_S && !this.sb.updating) {
        try { this.sb.remove(0, end - KEEP_S); } catch (e) { /* retried next time */ }
      }
    }

    _playing() {
      if (this.playing || this.stopped) return;
      this.playing = true;
      if (this.hooks.onPlaying) this.hooks.onPlaying();
    }

    _frame(now, meta) {
      if (this.stopped) return;
      const ms = Math.round(meta.mediaTime * 1000);
      this.shown += 1;
      const arrived = this.arrived.get(ms);
      if (arrived !== undefined) {
        this.lags.push(Math.max(0, now - arrived));
        if (this.lags.length > 250) this.lags.shift();
      }
      this._playing();
      if (this.hooks.onTag) this.hooks.onTag(TAGS[this.tags.get(ms) || 0] || null);
      this.video.requestVideoFrameCallback((n, m) => this._frame(n, m));
    }
  }

  window.rtcleanFeed = { supported, FeedPlayer };
})();
