// The blend pad: four corner grooves (built-ins or map points) and a puck between them. The
// puck's latent code is the bilinear blend of the corners' codes, as /api/blend computes it
// (rows go from the top corners to the bottom ones, columns from left to right); the groove
// decoded there loops while you drag, so you hear it change. Behind the puck, faint grids
// show the blend at 5 x 5 points.

import { download, latest, post } from "./api.js";
import { DRUM_COLORS, drawGrid, fillGrooveSelect, nice } from "./grid.js";

const $ = (id) => document.getElementById(id);
const lerp = (a, b, t) => a.map((x, i) => (1 - t) * x + t * b[i]);
export const CORNER_COLORS = ["#ff8a3d", "#38d6c4", "#b48cff", "#f5d547"];
const PREVIEW = 5; // the blend grid behind the puck

export class Pad {
  constructor(app) {
    this.app = app;
    this.corners = [null, null, null, null]; // {label, z, point, builtin}
    this.active = 0; // the corner a map click fills
    this.u = 0.5;
    this.v = 0.5;
    this.cur = null;
    this.curPoint = null;
    this.blend = null;
    this.decodes = 0; // decodes done (the tests watch it)
    this.dragging = false;
    this.canvas = $("pad");
    this.decodeLatest = latest(() => this.decode());
    this.blendLatest = latest(() => this.fetchBlend());
  }

  async init() {
    const names = this.app.grooves.map((g) => g.name);
    const boxes = [...document.querySelectorAll("#view-pad .corner")];
    boxes.forEach((box, i) => {
      const sel = box.querySelector("select");
      fillGrooveSelect(sel, names, "(map point)");
      sel.addEventListener("change", () => sel.value && this.setCorner(i, this.builtinEnd(sel.value)));
      box.addEventListener("pointerdown", () => this.setActive(i));
    });
    const want = ["rock", "funk", "jazz_ride", "bossa_nova"];
    const picks = want.map((n, i) => (names.includes(n) ? n : names[i % names.length]));
    picks.forEach((n, i) => this.setCorner(i, this.builtinEnd(n), false));
    this.setActive(0);
    const c = this.canvas;
    c.addEventListener("pointerdown", (e) => {
      this.dragging = true;
      c.setPointerCapture(e.pointerId);
      this.fromEvent(e);
    });
    c.addEventListener("pointermove", (e) => this.dragging && this.fromEvent(e));
    const end = (e) => {
      this.dragging = false;
      if (c.hasPointerCapture(e.pointerId)) c.releasePointerCapture(e.pointerId);
    };
    c.addEventListener("pointerup", end);
    c.addEventListener("pointercancel", end);
    new ResizeObserver(() => this.draw()).observe(c);
    $("pad-play").addEventListener("click", () => this.play());
    $("pad-stop").addEventListener("click", () => this.app.player.stop());
    $("pad-dl").addEventListener("click", () => this.downloadGroove());
    $("pad-tempo").addEventListener("change", () => this.decodeLatest());
    $("pad-tempo").value = String(Math.round(this.app.grooves.find((g) => g.name === picks[0]).groove.tempo));
    await Promise.all([this.fetchBlend(), this.decode()]);
  }

  tempo() {
    const t = Number($("pad-tempo").value);
    return t >= 40 && t <= 240 ? t : 120;
  }

  builtinEnd(name) {
    const g = this.app.grooves.find((x) => x.name === name);
    return { label: name, z: g.z, point: g.point, builtin: name };
  }

  setActive(i) {
    this.active = i;
    document.querySelectorAll("#view-pad .corner").forEach((el, j) => el.classList.toggle("active", j === i));
  }

  setCorner(i, end, refresh = true) {
    this.corners[i] = end;
    const sel = document.querySelector(`#view-pad .corner[data-corner="${i}"] select`);
    sel.value = end.builtin || "";
    sel.title = nice(end.label);
    if (!end.builtin) sel.options[0].textContent = nice(end.label);
    if (refresh) {
      this.blendLatest();
      this.decodeLatest();
    }
    this.updateMap();
  }

  // Map clicks fill the active corner, then move on to the next one.
  async pick(sel) {
    const i = this.active;
    if (sel.name) {
      this.setCorner(i, this.builtinEnd(sel.name));
    } else {
      try {
        const r = await post("/api/decode", { point: sel.point, tempo: this.tempo() });
        const label = `map (${sel.point[0].toFixed(2)}, ${sel.point[1].toFixed(2)})`;
        this.setCorner(i, { label, z: r.z, point: r.point });
      } catch (err) {
        this.app.toast(err.message);
        return;
      }
    }
    this.setActive((i + 1) % 4);
  }

  // The latent code under the puck: top edge corner 1 -> 2, bottom edge 3 -> 4.
  zAt(u, v) {
    const [a, b, c, d] = this.corners.map((x) => x.z);
    return lerp(lerp(a, c, v), lerp(b, d, v), u);
  }

  geom() {
    const w = this.canvas.clientWidth;
    const h = this.canvas.clientHeight;
    // Cell centres of the preview grid sit at u, v = 0, 1/4, ..., 1.
    const cw = w / PREVIEW;
    const ch = h / PREVIEW;
    return { w, h, cw, ch, x0: cw / 2, y0: ch / 2, iw: w - cw, ih: h - ch };
  }

  toPx(u, v, g = this.geom()) {
    return [g.x0 + u * g.iw, g.y0 + v * g.ih];
  }

  fromEvent(e) {
    const r = this.canvas.getBoundingClientRect();
    const g = this.geom();
    this.setPuck((e.clientX - r.left - g.x0) / g.iw, (e.clientY - r.top - g.y0) / g.ih);
  }

  setPuck(u, v) {
    const c = (x) => Math.round(Math.max(0, Math.min(1, x)) * 1000) / 1000;
    this.u = c(u);
    this.v = c(v);
    $("pad-uv").textContent = `${this.u.toFixed(2)}, ${this.v.toFixed(2)}`;
    this.draw();
    this.decodeLatest();
  }

  nudge(du, dv) {
    this.setPuck(this.u + du, this.v + dv);
  }

  async fetchBlend() {
    if (this.corners.some((c) => !c)) return;
    try {
      this.blend = await post("/api/blend", {
        corners: this.corners.map((c) => ({ z: c.z })), grid: PREVIEW, tempo: this.tempo(),
      });
      this.draw();
    } catch (err) {
      this.app.toast(err.message);
    }
  }

  async decode() {
    if (this.corners.some((c) => !c)) return;
    const u = this.u;
    const v = this.v;
    try {
      const r = await post("/api/decode", { z: this.zAt(u, v), tempo: this.tempo() });
      r.groove.name = `pad ${u.toFixed(2)}, ${v.toFixed(2)}`;
      this.cur = r.groove;
      this.curAt = [u, v];
      this.curPoint = r.point;
      this.decodes += 1;
      const n = r.groove.hits.flat().reduce((s, x) => s + x, 0);
      $("pad-stats").textContent = `${n} hits · ${Math.round(r.groove.tempo)} BPM`;
      $("pad-title").textContent = `Groove under the puck (${u.toFixed(2)}, ${v.toFixed(2)})`;
      this.drawCur(-1);
      this.updateMap();
    } catch (err) {
      this.app.toast(err.message);
    }
  }

  drawCur(step) {
    drawGrid($("grid-pad"), this.cur, { playStep: step });
  }

  draw() {
    const c = this.canvas;
    if (!c.clientWidth) return;
    const dpr = window.devicePixelRatio || 1;
    const g = this.geom();
    if (c.width !== Math.round(g.w * dpr) || c.height !== Math.round(g.h * dpr)) {
      c.width = Math.round(g.w * dpr);
      c.height = Math.round(g.h * dpr);
    }
    const ctx = c.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, g.w, g.h);
    // The blend at 5 x 5 points, one faint grid per cell.
    if (this.blend) {
      this.blend.rows.forEach((row, i) => row.forEach((gr, j) => {
        const x = j * g.cw + 4;
        const y = i * g.ch + 4;
        const sw = (g.cw - 8) / 32;
        const sh = (g.ch - 8) / 9;
        ctx.fillStyle = "rgba(255,255,255,0.025)";
        ctx.fillRect(x, y, g.cw - 8, g.ch - 8);
        for (let s = 0; s < 32; s++) {
          for (let d = 0; d < 9; d++) {
            if (!gr.hits[s][d]) continue;
            ctx.globalAlpha = 0.18 + 0.3 * gr.velocities[s][d];
            ctx.fillStyle = DRUM_COLORS[d];
            ctx.fillRect(x + s * sw, y + d * sh, Math.max(1, sw - 0.5), Math.max(1, sh - 0.5));
          }
        }
        ctx.globalAlpha = 1;
      }));
    }
    // The corners.
    ctx.font = "800 12px system-ui, sans-serif";
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    [[0, 0], [1, 0], [0, 1], [1, 1]].forEach(([u, v], i) => {
      const [x, y] = this.toPx(u, v, g);
      ctx.fillStyle = CORNER_COLORS[i];
      ctx.beginPath();
      ctx.arc(x, y, 9, 0, 2 * Math.PI);
      ctx.fill();
      ctx.fillStyle = "#15171c";
      ctx.fillText(String(i + 1), x, y + 0.5);
    });
    // The puck.
    const [px, py] = this.toPx(this.u, this.v, g);
    ctx.strokeStyle = "rgba(233,230,223,0.35)";
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(px, 0);
    ctx.lineTo(px, g.h);
    ctx.moveTo(0, py);
    ctx.lineTo(g.w, py);
    ctx.stroke();
    ctx.fillStyle = "#e9e6df";
    ctx.strokeStyle = "#15171c";
    ctx.lineWidth = 3;
    ctx.beginPath();
    ctx.arc(px, py, 11, 0, 2 * Math.PI);
    ctx.fill();
    ctx.stroke();
    ctx.textAlign = "start";
    c.dataset.puck = `${this.u},${this.v}`;
  }

  updateMap() {
    if (this.app.view !== "pad") return;
    const markers = this.corners.map((c, i) => c && {
      point: c.point, color: CORNER_COLORS[i], label: String(i + 1), fill: true,
    }).filter(Boolean);
    if (this.curPoint) markers.push({ point: this.curPoint, color: "#e9e6df", size: 7, fill: true });
    this.app.map.setOverlay({
      quad: this.corners.map((c) => c && c.point),
      markers,
      highlight: this.corners.map((c) => c && c.builtin).filter(Boolean),
    });
  }

  play() {
    if (!this.cur) return;
    this.app.player.start({
      groove: () => this.cur,
      tempo: () => this.tempo(),
      onStep: (cyc, s) => this.drawCur(s),
    });
  }

  async downloadGroove() {
    if (!this.cur) return;
    const name = `pad_${Math.round(this.u * 100)}_${Math.round(this.v * 100)}`;
    try {
      await download("/api/midi", { grooves: [this.cur], tempo: this.tempo(), filename: name }, `${name}.mid`);
    } catch (err) {
      this.app.toast(err.message);
    }
  }
}
