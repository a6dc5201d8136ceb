// The jam view: the live engine's state streamed over a WebSocket (bar, mode, α, target,
// the grooves), and the page's controls sent back on the same socket. "Listen" plays the
// session's notes through the synth, delayed by a small fixed buffer so they stay in time.

import { drawGrid } from "./grid.js";

const $ = (id) => document.getElementById(id);
const nice = (name) => (name || "").replaceAll("_", " ");
const LISTEN_DELAY = 0.18; // seconds of buffer between the server's clock and the speakers

export class JamView {
  constructor(app) {
    this.app = app;
    this.ws = null;
    this.active = false;
    this.state = null;
    this.viewSeq = -1;
    this.listening = false;
    this.offset = null;
    this.late = 0;
    this.dragUntil = 0;
    this.sendTimer = null;
    this.pendingAlpha = null;
    this.received = 0;
    this.retry = 500;
  }

  init() {
    const sel = $("jam-drummer");
    for (const g of this.app.grooves) {
      const o = document.createElement("option");
      o.value = g.name;
      o.textContent = nice(g.name);
      sel.appendChild(o);
    }
    sel.addEventListener("change", () => this.send({ type: "drummer", name: sel.value }));
    $("jam-alpha").addEventListener("input", (e) => {
      this.dragUntil = performance.now() + 600;
      $("jam-alpha-val").textContent = Number(e.target.value).toFixed(2);
      this.sendAlpha(Number(e.target.value));
    });
    for (const b of document.querySelectorAll("#jam-modes button")) {
      b.addEventListener("click", () => this.send({ type: "mode", value: b.dataset.mode }));
    }
    $("jam-capture").addEventListener("click", () => this.send({ type: "capture" }));
    $("jam-sample").addEventListener("click", () => this.send({ type: "sample" }));
    $("jam-hold").addEventListener("click", () => this.send({ type: "hold" }));
    $("jam-bpm-in").addEventListener("change", (e) => {
      const v = Number(e.target.value);
      if (v >= 40 && v <= 240) this.send({ type: "bpm", value: v });
    });
    $("jam-listen").addEventListener("click", () => this.toggleListen());
    this.renderChips([]);
    drawGrid($("grid-drummer"), null);
    drawGrid($("grid-machine"), null);
  }

  activate() {
    this.active = true;
    this.connect();
    this.updateMap();
  }

  deactivate() {
    this.active = false;
    if (this.listening) this.toggleListen();
    if (this.ws) this.ws.close();
    this.ws = null;
  }

  connect() {
    if (!this.active || (this.ws && this.ws.readyState <= 1)) return;
    const proto = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${proto}://${location.host}/ws/jam`);
    this.ws = ws;
    ws.onopen = () => {
      this.retry = 500;
      $("jam-conn").textContent = "● live";
      $("jam-conn").classList.add("live");
    };
    ws.onmessage = (e) => this.onMessage(JSON.parse(e.data));
    ws.onclose = () => {
      $("jam-conn").textContent = "○ offline";
      $("jam-conn").classList.remove("live");
      if (this.ws === ws) this.ws = null;
      if (this.active) {
        setTimeout(() => this.connect(), this.retry);
        this.retry = Math.min(this.retry * 2, 5000);
      }
    };
  }

  send(msg) {
    if (this.ws && this.ws.readyState === 1) this.ws.send(JSON.stringify(msg));
    else this.app.toast("the jam is not connected");
  }

  // At most ~20 α messages a second while dragging; the last value always goes out.
  sendAlpha(v) {
    this.pendingAlpha = v;
    if (this.sendTimer) return;
    this.send({ type: "a", value: v });
    this.pendingAlpha = null;
    this.sendTimer = setTimeout(() => {
      this.sendTimer = null;
      if (this.pendingAlpha !== null) this.sendAlpha(this.pendingAlpha);
    }, 50);
  }

  onMessage(m) {
    if (m.type === "error") {
      this.app.toast(m.detail);
      return;
    }
    if (m.type !== "state") return;
    this.received += 1;
    this.state = m;
    if (m.error && m.error !== this.lastError) this.app.toast(`jam: ${m.error}`);
    this.lastError = m.error;
    if (this.listening && m.notes && m.notes.length) this.play(m);
    else if (this.listening && this.offset === null && m.t !== undefined) this.sync(m.t);
    this.render(m);
  }

  sync(t) {
    const ctx = this.app.player.ensure();
    this.offset = ctx.currentTime - t + LISTEN_DELAY;
    this.late = 0;
  }

  play(m) {
    const ctx = this.app.player.ensure();
    if (this.offset === null) this.sync(m.t);
    for (const [t, drum, vel] of m.notes) {
      const at = t + this.offset;
      if (at < ctx.currentTime - 0.03) {
        // Late: drop it, and after a run of late notes take a new sync point.
        this.late += 1;
        if (this.late > 6) this.sync(m.t);
        continue;
      }
      this.late = 0;
      this.app.player.hit(drum, at, vel / 127);
    }
  }

  toggleListen() {
    this.listening = !this.listening;
    this.offset = null;
    const b = $("jam-listen");
    b.setAttribute("aria-pressed", String(this.listening));
    b.textContent = this.listening ? "♫ Listening" : "♫ Listen";
    if (this.listening) {
      this.app.player.stop();
      this.app.player.ensure();
    }
  }

  render(m) {
    if (m.bar === undefined) return;
    $("jam-bar").textContent = m.bar >= 0 ? String(m.bar + 1) : "–";
    $("jam-bpm").textContent = Math.round(m.bpm);
    $("jam-role").textContent = [m.mode + (m.pending_mode ? ` → ${m.pending_mode}` : ""), m.role, m.hold ? "HOLD" : ""]
      .filter(Boolean).join(" · ");
    const beat = m.beat !== null && m.beat >= 0 ? Math.floor(m.beat) % 4 : -1;
    document.querySelectorAll("#jam-beats i").forEach((el, i) => {
      el.classList.toggle("on", i === beat);
      el.classList.toggle("one", i === 0);
    });
    if (performance.now() > this.dragUntil) {
      $("jam-alpha").value = String(m.a);
      $("jam-alpha-val").textContent = m.a.toFixed(2);
    }
    for (const b of document.querySelectorAll("#jam-modes button")) {
      b.classList.toggle("active", b.dataset.mode === m.mode);
      b.classList.toggle("pending", b.dataset.mode === m.pending_mode);
    }
    $("jam-hold").classList.toggle("on", m.hold);
    if (document.activeElement !== $("jam-drummer")) $("jam-drummer").value = m.drummer_name;
    if (document.activeElement !== $("jam-bpm-in")) $("jam-bpm-in").value = Math.round(m.bpm);
    this.renderChips(m.bank, m.target);
    if (m.view_seq !== this.viewSeq) {
      this.viewSeq = m.view_seq;
      drawGrid($("grid-drummer"), m.drummer);
      $("jam-d-name").textContent = m.drummer ? `${nice(m.drummer_name)} · ${m.drummer.name}` : "";
    }
    // The machine's grid shows which of its two bars sounds now (redrawn every update).
    drawGrid($("grid-machine"), m.machine, { half: m.plays ? m.half : null, dim: !m.plays });
    $("jam-m-name").textContent = m.machine ? `→ ${nice(m.target)}${m.ready_beats !== null ? ` · ready ${m.ready_beats.toFixed(1)} beats early` : ""}` : "silent";
    $("jam-log").textContent = (m.log || []).join("\n");
    this.updateMap();
  }

  renderChips(bank, active) {
    const names = [...new Set([...(bank || []), ...this.app.grooves.map((g) => g.name)])];
    const box = $("jam-targets");
    const key = names.join("|") + "#" + active;
    if (box.dataset.key === key) return;
    box.dataset.key = key;
    box.innerHTML = "";
    for (const n of names) {
      const c = document.createElement("button");
      c.className = "chip" + (n === active ? " active" : "");
      c.textContent = nice(n);
      c.addEventListener("click", () => this.send({ type: "target", name: n }));
      box.appendChild(c);
    }
  }

  pick(sel) {
    if (sel.name) this.send({ type: "target", name: sel.name });
    else this.send({ type: "target", point: sel.point });
  }

  updateMap() {
    if (this.app.view !== "jam") return;
    const m = this.state;
    const p = (m && m.points) || {};
    const markers = [];
    let path = null;
    if (p.drummer && p.target) {
      path = { from: p.drummer, to: p.target, points: [] };
      const a = m.a;
      markers.push({ point: [(1 - a) * p.drummer[0] + a * p.target[0], (1 - a) * p.drummer[1] + a * p.target[1]],
        color: "#e9e6df", size: 5, fill: false });
    }
    if (p.drummer) markers.push({ point: p.drummer, color: "#ff8a3d", label: "D", fill: true });
    if (p.target) markers.push({ point: p.target, color: "#38d6c4", label: "T", fill: true, shape: "diamond" });
    if (p.machine) markers.push({ point: p.machine, color: "#f5d547", label: "M", fill: true });
    const tgt = m && this.app.grooves.some((g) => g.name === m.target) ? [m.target] : [];
    this.app.map.setOverlay({ path, markers, highlight: tgt });
  }
}
