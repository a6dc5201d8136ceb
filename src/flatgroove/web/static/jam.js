// The jam view: the live engine's state streamed over a WebSocket (bar, mode, α, target,
// the grooves), and the page's controls sent back on the same socket. "Listen" plays the
// session's notes through the synth, delayed by a small fixed buffer so they stay in time.

import { drawGrid } from "./grid.js";
import { saveBytes, writeMidi } from "./midifile.js";

const $ = (id) => document.getElementById(id);
const nice = (name) => (name || "").replaceAll("_", " ");
const LISTEN_DELAY = 0.18; // seconds of buffer between the server's clock and the speakers
const PITCHES = [36, 38, 42, 46, 45, 47, 50, 49, 51]; // General MIDI, one per drum class
const TPQ = 480;

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
    this.rec = null; // the recording in progress: {notes, tempos, markers, start, ...}
    this.lastRecording = null; // {filename, bytes, drummer, machine, bars}: the last file made
    this.tempUntil = 0;
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
    $("jam-record").addEventListener("click", () => this.toggleRecord());
    $("jam-temperature").addEventListener("input", (e) => {
      this.tempUntil = performance.now() + 800;
      const v = Number(e.target.value);
      $("jam-temperature-val").textContent = v.toFixed(2);
      this.send({ type: "temperature", value: v });
    });
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
    if (this.rec) this.toggleRecord();
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
    if (this.rec) this.record(m);
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

  // Recording: the notes streamed with each state ([time, drum, velocity, who]) placed on the
  // session's beat grid (beat = state's beat - (state's time - note's time) * BPM / 60), from
  // the bar line before the press; tempo changes and target/mode changes go in as well.
  toggleRecord() {
    const b = $("jam-record");
    if (!this.rec) {
      if (!this.ws || this.ws.readyState !== 1) {
        this.app.toast("the jam is not connected");
        return;
      }
      this.rec = { notes: [], tempos: [], markers: [], start: null, last: {}, pressed: new Date() };
      b.setAttribute("aria-pressed", "true");
      b.textContent = "■ Stop recording";
      $("jam-rec-info").textContent = "recording from the next update…";
      return;
    }
    const rec = this.rec;
    this.rec = null;
    b.setAttribute("aria-pressed", "false");
    b.textContent = "● Record";
    if (rec.start === null || !rec.notes.length) {
      $("jam-rec-info").textContent = "";
      this.app.toast("nothing recorded yet: no notes arrived", "info");
      return;
    }
    this.saveRecording(rec);
  }

  record(m) {
    const rec = this.rec;
    if (m.beat === null || m.beat === undefined || m.t === undefined || !(m.bpm > 0)) return;
    if (rec.start === null) {
      rec.start = Math.floor(m.beat / 4) * 4; // the bar line at or before the press
      rec.startBar = Math.floor(m.beat / 4) + 1;
    }
    const k = m.bpm / 60;
    if (rec.last.bpm !== m.bpm) rec.tempos.push([Math.max(rec.start, m.beat), m.bpm]);
    if (rec.last.target !== m.target) rec.markers.push([Math.max(rec.start, m.beat), `target ${nice(m.target)}`]);
    if (rec.last.mode !== m.mode) rec.markers.push([Math.max(rec.start, m.beat), `mode ${m.mode}`]);
    rec.last = { bpm: m.bpm, target: m.target, mode: m.mode };
    for (const [t, drum, vel, who] of m.notes || []) {
      const beat = m.beat - (m.t - t) * k;
      if (beat >= rec.start - 1e-6) rec.notes.push([beat, drum, vel, who]);
    }
    const bars = Math.max(0, Math.floor((m.beat - rec.start) / 4));
    $("jam-rec-info").textContent = `● rec ${bars} bar${bars === 1 ? "" : "s"} · ${rec.notes.length} notes`;
  }

  saveRecording(rec) {
    const pitches = (this.app.info && this.app.info.output_pitches) || PITCHES;
    const tick = (beat) => Math.round((beat - rec.start) * TPQ);
    const part = (who) => rec.notes.filter((n) => n[3] === who)
      .map(([beat, drum, vel]) => [tick(beat), pitches[drum], vel, TPQ / 8]);
    const drummer = part("d");
    const machine = part("m");
    // reduce, not Math.max(...): spreading a long jam's notes overflows the stack
    const end = rec.notes.reduce((m, n) => Math.max(m, n[0]), -Infinity);
    const bars = Math.ceil((end - rec.start + 1e-9) / 4);
    const bytes = writeMidi({
      tpq: TPQ,
      title: `flatgroove jam from bar ${rec.startBar}`,
      tempos: rec.tempos.map(([b, bpm]) => [tick(b), bpm]),
      markers: rec.markers.map(([b, s]) => [tick(b), s]),
      tracks: [{ name: "drummer", channel: 9, notes: drummer }, { name: "machine", channel: 9, notes: machine }],
    });
    const d = rec.pressed;
    const p2 = (x) => String(x).padStart(2, "0");
    const filename = `flatgroove-jam-${d.getFullYear()}${p2(d.getMonth() + 1)}${p2(d.getDate())}-${p2(d.getHours())}${p2(d.getMinutes())}${p2(d.getSeconds())}.mid`;
    this.lastRecording = { filename, size: bytes.length, drummer: drummer.length, machine: machine.length,
      bars, startBar: rec.startBar, notes: rec.notes.map((n) => [...n]) };
    saveBytes(bytes, filename);
    $("jam-rec-info").textContent = `saved ${filename} (${bars} bars)`;
    this.app.toast(`recorded ${bars} bars: ${drummer.length} drummer and ${machine.length} machine notes → ${filename}`, "info");
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
    $("jam-bar").textContent = m.bar >= 0 && m.beat !== null ? String(m.bar + 1) : "–";
    this.renderClock(m);
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
    if (m.temperature !== undefined && performance.now() > this.tempUntil) {
      $("jam-temperature").value = String(m.temperature);
      $("jam-temperature-val").textContent = m.temperature.toFixed(2);
    }
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

  // On an external MIDI clock: say whose clock, and while it has not started (or stopped,
  // or was lost) that the jam is waiting for it, silent. The tempo box follows the clock.
  renderClock(m) {
    const box = $("jam-clock");
    const external = m.clock === "external";
    box.hidden = !external;
    $("jam-bpm-in").disabled = external;
    $("jam-bpm-in").title = external ? "the tempo follows the MIDI clock" : "";
    if (!external) return;
    const port = m.clock_port || "a MIDI clock port";
    const waiting = Boolean(m.halt);
    box.classList.toggle("waiting", waiting);
    box.textContent = waiting
      ? `${m.halt} · from ${port} · press play (Start) in the DAW or drum machine; the machine stays silent until then`
      : `▶ following the MIDI clock from ${port} · ${Math.round(m.bpm)} BPM`;
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

  setMode(mode) {
    this.send({ type: "mode", value: mode });
  }

  nudgeAlpha(delta) {
    const cur = Number($("jam-alpha").value); // the engine's α, or the one being sent
    const v = Math.round(Math.max(0, Math.min(1, cur + delta)) * 100) / 100;
    this.dragUntil = performance.now() + 600;
    $("jam-alpha").value = String(v);
    $("jam-alpha-val").textContent = v.toFixed(2);
    this.sendAlpha(v);
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
