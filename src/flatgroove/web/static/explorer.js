// The explorer: two grooves A and B, the straight latent path between them, the groove at
// any α on it; heard through Web Audio and exported as MIDI (no live engine involved).

import { download, latest, post, upload } from "./api.js";
import { drawGrid, fillGrooveSelect, nice } from "./grid.js";

const lerp = (a, b, t) => a.map((x, i) => (1 - t) * x + t * b[i]);

function slerp(a, b, t) {
  const na = Math.hypot(...a);
  const nb = Math.hypot(...b);
  const dot = a.reduce((s, x, i) => s + x * b[i], 0);
  const cos = Math.max(-1, Math.min(1, dot / Math.max(na * nb, 1e-12)));
  const om = Math.acos(cos);
  if (om < 1e-6) return lerp(a, b, t);
  const s = Math.sin(om);
  return a.map((x, i) => (Math.sin((1 - t) * om) * x + Math.sin(t * om) * b[i]) / s);
}

const $ = (id) => document.getElementById(id);

export class Explorer {
  constructor(app) {
    this.app = app;
    this.a = null; // {label, groove, z, point}
    this.b = null;
    this.alpha = 0.5;
    this.cur = null;
    this.curPoint = null;
    this.path = null;
    this.pathCells = [];
    this.tempoTouched = false;
    this.playing = null; // "groove" | "path"
    this.decodeLatest = latest((z) => this.decode(z));
    this.pathLatest = latest(() => this.fetchPath());
  }

  async init() {
    const names = this.app.grooves.map((g) => g.name);
    for (const id of ["a-select", "b-select"]) {
      fillGrooveSelect($(id), names, "(other)");
    }
    $("a-select").addEventListener("change", (e) => this.setBuiltin("a", e.target.value));
    $("b-select").addEventListener("change", (e) => this.setBuiltin("b", e.target.value));
    $("a-file").addEventListener("change", (e) => this.upload(e.target));
    $("b-sample").addEventListener("click", () => this.sample());
    $("temperature").addEventListener("input", (e) => {
      $("temperature-val").textContent = Number(e.target.value).toFixed(2);
    });
    $("alpha").addEventListener("input", (e) => this.setAlpha(Number(e.target.value)));
    $("tempo").addEventListener("change", () => {
      this.tempoTouched = true;
      this.refreshCur();
    });
    $("path-steps").addEventListener("change", () => this.pathLatest());
    $("path-method").addEventListener("change", () => {
      this.pathLatest();
      this.refreshCur();
    });
    $("play").addEventListener("click", () => this.playGroove());
    $("play-path").addEventListener("click", () => this.playPath());
    $("stop").addEventListener("click", () => this.app.player.stop());
    $("dl-groove").addEventListener("click", () => this.downloadGroove());
    $("dl-path").addEventListener("click", () => this.downloadPath());
    const first = names.includes("rock") ? "rock" : names[0];
    const second = names.includes("funk") ? "funk" : names[1] || names[0];
    this.setEnd("a", this.builtinEnd(first), false);
    this.setEnd("b", this.builtinEnd(second), false);
    await Promise.all([this.fetchPath(), this.decode(this.zAt(this.alpha))]);
  }

  tempo() {
    const t = Number($("tempo").value);
    return t >= 40 && t <= 240 ? t : 120;
  }

  zAt(t) {
    const f = $("path-method").value === "slerp" ? slerp : lerp;
    return f(this.a.z, this.b.z, t);
  }

  builtinEnd(name) {
    const g = this.app.grooves.find((x) => x.name === name);
    return { label: name, groove: g.groove, z: g.z, point: g.point, builtin: name };
  }

  setBuiltin(which, name) {
    if (name) this.setEnd(which, this.builtinEnd(name));
  }

  // Map clicks: a built-in groove, or any point (decoded there).
  async pick(sel, e) {
    const which = e && e.shiftKey ? "a" : "b";
    if (sel.name) {
      this.setEnd(which, this.builtinEnd(sel.name));
      return;
    }
    try {
      const r = await post("/api/decode", { point: sel.point, tempo: this.tempo() });
      const label = `map (${sel.point[0].toFixed(2)}, ${sel.point[1].toFixed(2)})`;
      r.groove.name = label;
      this.setEnd(which, { label, groove: r.groove, z: r.z, point: r.point });
    } catch (err) {
      this.app.toast(err.message);
    }
  }

  async upload(input) {
    const file = input.files && input.files[0];
    input.value = "";
    if (!file) return;
    try {
      const r = await upload("/api/encode/midi", file, { bar: 0 });
      this.setEnd("a", { label: r.groove.name, groove: r.groove, z: r.z, point: r.point });
      this.app.toast(`${file.name}: ${r.bars} bars of drums; encoded bars 1-2`, "info");
    } catch (err) {
      this.app.toast(`${file.name}: ${err.message}`);
    }
  }

  async sample() {
    try {
      const seed = Math.floor(Math.random() * 2 ** 31);
      const temperature = Number($("temperature").value);
      const r = await post("/api/sample", { n: 1, seed, tempo: this.tempo(), temperature });
      const g = r.grooves[0];
      g.name = `${g.name} (temp ${temperature.toFixed(2)})`;
      this.setEnd("b", { label: g.name, groove: g, z: r.z[0], point: r.points[0] });
    } catch (err) {
      this.app.toast(err.message);
    }
  }

  setEnd(which, end, refresh = true) {
    this[which] = end;
    $(`${which}-name`).textContent = nice(end.label);
    $(`${which}-name`).title = end.label;
    $(`${which}-select`).value = end.builtin || "";
    drawGrid($(`grid-${which}`), end.groove);
    if (which === "a" && !this.tempoTouched && end.groove) {
      $("tempo").value = Math.round(end.groove.tempo);
    }
    this.updateMap();
    if (refresh) {
      this.pathLatest();
      this.refreshCur();
    }
  }

  setAlpha(t) {
    this.alpha = Math.max(0, Math.min(1, t));
    $("alpha").value = String(this.alpha);
    $("alpha-val").textContent = this.alpha.toFixed(2);
    $("cur-title").textContent = `Groove at α = ${this.alpha.toFixed(2)}`;
    this.refreshCur();
  }

  refreshCur() {
    if (this.a && this.b) this.decodeLatest(this.zAt(this.alpha));
  }

  async decode(z) {
    try {
      const r = await post("/api/decode", { z, tempo: this.tempo() });
      r.groove.name = `${nice(this.a.label)} → ${nice(this.b.label)} at α ${this.alpha.toFixed(2)}`;
      this.cur = r.groove;
      this.curPoint = r.point;
      const n = r.groove.hits.flat().reduce((s, x) => s + x, 0);
      $("cur-stats").textContent = `${n} hits · ${Math.round(r.groove.tempo)} BPM`;
      this.drawCur(-1);
      this.markPathCell();
      this.updateMap();
    } catch (err) {
      this.app.toast(err.message);
    }
  }

  drawCur(step) {
    drawGrid($("grid-cur"), this.cur, { playStep: step });
  }

  async fetchPath() {
    if (!this.a || !this.b) return;
    const steps = Number($("path-steps").value);
    const tempo = this.tempo();
    try {
      const r = await post("/api/interpolate", {
        a: { z: this.a.z, tempo },
        b: { z: this.b.z, tempo },
        steps,
        method: $("path-method").value,
      });
      this.path = r;
      this.renderPath();
      this.updateMap();
    } catch (err) {
      this.app.toast(err.message);
    }
  }

  renderPath() {
    const strip = $("path-strip");
    strip.innerHTML = "";
    this.pathCells = [];
    const n = this.path.grooves.length;
    this.path.grooves.forEach((g, i) => {
      const t = n > 1 ? i / (n - 1) : 0;
      const cell = document.createElement("div");
      cell.className = "cell";
      cell.title = `α = ${t.toFixed(2)}: click to hear it`;
      const cv = document.createElement("canvas");
      cv.className = "grid";
      const cap = document.createElement("div");
      cap.className = "cap";
      const hits = g.hits.flat().reduce((s, x) => s + x, 0);
      cap.innerHTML = `<span>α ${t.toFixed(2)}</span><span>${hits} hits</span>`;
      cell.append(cv, cap);
      cell.addEventListener("click", () => this.setAlpha(t));
      strip.appendChild(cell);
      this.pathCells.push({ cell, cv, g, t });
    });
    requestAnimationFrame(() => {
      for (const c of this.pathCells) drawGrid(c.cv, c.g, { labels: false });
    });
    this.markPathCell();
  }

  markPathCell() {
    for (const c of this.pathCells) c.cell.classList.toggle("sel", Math.abs(c.t - this.alpha) < 1e-6);
  }

  updateMap() {
    if (this.app.view !== "explore") return;
    const markers = [];
    if (this.curPoint) markers.push({ point: this.curPoint, color: "#e9e6df", size: 6, fill: false });
    if (this.a) markers.push({ point: this.a.point, color: "#ff8a3d", label: "A", fill: true });
    if (this.b) markers.push({ point: this.b.point, color: "#38d6c4", label: "B", fill: true, shape: "diamond" });
    if (this.playPoint) markers.push({ point: this.playPoint, color: "#f5d547", size: 7, fill: true });
    this.app.map.setOverlay({
      path: this.a && this.b ? { from: this.a.point, to: this.b.point, points: this.path ? this.path.points : [] } : null,
      markers,
      highlight: [this.a && this.a.builtin, this.b && this.b.builtin].filter(Boolean),
    });
  }

  playGroove() {
    if (!this.cur) return;
    this.app.player.start({
      groove: () => this.cur,
      tempo: () => this.tempo(),
      onStep: (c, s) => this.drawCur(s),
    });
  }

  playPath() {
    if (!this.path) return;
    const gs = this.path.grooves;
    this.app.player.start({
      groove: (c) => (c < gs.length ? gs[c] : null),
      tempo: () => this.tempo(),
      onStep: (c, s) => {
        this.pathCells.forEach((pc, i) => {
          pc.cell.classList.toggle("playing", i === c);
          drawGrid(pc.cv, pc.g, { labels: false, playStep: i === c ? s : -1 });
        });
        this.playPoint = c >= 0 && c < gs.length ? this.path.points[c] : null;
        this.updateMap();
      },
    });
  }

  fileStem() {
    const clean = (s) => nice(s).replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^-+|-+$/g, "");
    return `${clean(this.a.label)}_to_${clean(this.b.label)}`;
  }

  async downloadGroove() {
    if (!this.cur) return;
    const name = `${this.fileStem()}_a${Math.round(this.alpha * 100)}`;
    try {
      await download("/api/midi", { grooves: [this.cur], tempo: this.tempo(), filename: name }, `${name}.mid`);
    } catch (err) {
      this.app.toast(err.message);
    }
  }

  async downloadPath() {
    if (!this.path) return;
    const name = `${this.fileStem()}_path`;
    try {
      await download("/api/midi", { grooves: this.path.grooves, tempo: this.tempo(), filename: name }, `${name}.mid`);
    } catch (err) {
      this.app.toast(err.message);
    }
  }
}
