// The latent map: the dataset's encodings as dots coloured by style, the built-in grooves
// labelled, and on top what the view is doing (endpoints, the straight path, where α is).

export const STYLE_COLORS = [
  "#4fb3ff", "#ff8a3d", "#7bd88f", "#ff5d73", "#b692ff", "#f5d547", "#38d6c4", "#f28fad",
  "#c9a66b", "#5ec8f2", "#e07a5f", "#9ad1d4", "#ffd166", "#06d6a0", "#ef476f", "#8ecae6",
  "#cdb4db", "#a3b18a",
];

const HIT_PX = 14; // how close a click must be to a built-in's dot to pick it

export class LatentMap {
  constructor(canvas, tip) {
    this.canvas = canvas;
    this.tip = tip;
    this.data = null;
    this.overlay = {};
    this.hover = null;
    this.layer = document.createElement("canvas");
    this.onPick = () => {};
    canvas.addEventListener("mousemove", (e) => this.move(e));
    canvas.addEventListener("mouseleave", () => {
      this.hover = null;
      this.tip.hidden = true;
      this.draw();
    });
    canvas.addEventListener("click", (e) => this.click(e));
    new ResizeObserver(() => {
      this.layerKey = null;
      this.draw();
    }).observe(canvas);
  }

  setData(data) {
    this.data = data;
    this.layerKey = null;
    this.canvas.dataset.points = String(data.points.length);
    this.canvas.dataset.builtins = String(data.builtins.length);
    this.draw();
  }

  setOverlay(o) {
    this.overlay = o || {};
    this.draw();
  }

  // Equal scales on both axes: distances and straight lines on the map stay honest.
  frame() {
    const w = this.canvas.clientWidth;
    const h = this.canvas.clientHeight;
    const [x0, y0, x1, y1] = this.data ? this.data.bounds : [-1, -1, 1, 1];
    const dx = Math.max(x1 - x0, 1e-6);
    const dy = Math.max(y1 - y0, 1e-6);
    const m = 28;
    const s = Math.min((w - 2 * m) / dx, (h - 2 * m) / dy);
    const cx = (x0 + x1) / 2;
    const cy = (y0 + y1) / 2;
    return { w, h, s, cx, cy };
  }

  toPx(p, f = this.frame()) {
    return [f.w / 2 + (p[0] - f.cx) * f.s, f.h / 2 - (p[1] - f.cy) * f.s];
  }

  fromPx(x, y, f = this.frame()) {
    return [f.cx + (x - f.w / 2) / f.s, f.cy - (y - f.h / 2) / f.s];
  }

  nearestBuiltin(x, y) {
    if (!this.data) return null;
    const f = this.frame();
    let best = null;
    let bd = HIT_PX;
    for (const b of this.data.builtins) {
      const [px, py] = this.toPx(b.point, f);
      const d = Math.hypot(px - x, py - y);
      if (d < bd) {
        bd = d;
        best = b;
      }
    }
    return best;
  }

  pos(e) {
    const r = this.canvas.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top];
  }

  move(e) {
    const [x, y] = this.pos(e);
    const b = this.nearestBuiltin(x, y);
    this.hover = b ? b.name : null;
    this.canvas.style.cursor = b ? "pointer" : "crosshair";
    const p = this.fromPx(x, y);
    this.tip.hidden = false;
    this.tip.textContent = b ? b.name.replaceAll("_", " ") : `(${p[0].toFixed(2)}, ${p[1].toFixed(2)})`;
    this.tip.style.left = `${x + 14}px`;
    this.tip.style.top = `${y + 10}px`;
    this.draw();
  }

  click(e) {
    const [x, y] = this.pos(e);
    const b = this.nearestBuiltin(x, y);
    if (b) this.onPick({ name: b.name, point: b.point }, e);
    else this.onPick({ point: this.fromPx(x, y) }, e);
  }

  size() {
    const dpr = window.devicePixelRatio || 1;
    const w = this.canvas.clientWidth;
    const h = this.canvas.clientHeight;
    for (const c of [this.canvas, this.layer]) {
      if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
        c.width = Math.round(w * dpr);
        c.height = Math.round(h * dpr);
      }
    }
    return dpr;
  }

  // The dataset dots change only with the data or the size: drawn once into a layer.
  drawLayer(dpr, f) {
    const key = `${this.layer.width}x${this.layer.height}:${this.data ? this.data.points.length : 0}`;
    if (key === this.layerKey) return;
    this.layerKey = key;
    const ctx = this.layer.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, f.w, f.h);
    // A quiet grid with the origin's axes.
    ctx.strokeStyle = "rgba(255,255,255,0.045)";
    ctx.lineWidth = 1;
    const step = niceStep(f.w / f.s / 8);
    const [gx0, gy1] = this.fromPx(0, 0, f);
    const [gx1, gy0] = this.fromPx(f.w, f.h, f);
    for (let gx = Math.ceil(gx0 / step) * step; gx <= gx1; gx += step) {
      const [px] = this.toPx([gx, 0], f);
      ctx.beginPath();
      ctx.moveTo(Math.round(px) + 0.5, 0);
      ctx.lineTo(Math.round(px) + 0.5, f.h);
      ctx.stroke();
    }
    for (let gy = Math.ceil(gy0 / step) * step; gy <= gy1; gy += step) {
      const [, py] = this.toPx([0, gy], f);
      ctx.beginPath();
      ctx.moveTo(0, Math.round(py) + 0.5);
      ctx.lineTo(f.w, Math.round(py) + 0.5);
      ctx.stroke();
    }
    if (!this.data) return;
    ctx.font = "11px ui-monospace, 'DejaVu Sans Mono', monospace";
    ctx.fillStyle = "rgba(141,147,161,0.8)";
    const [ax, ay] = this.data.method === "pca" ? ["PC 1", "PC 2"] : ["z₁", "z₂"];
    ctx.fillText(`${ax} →`, f.w - 52, f.h - 10);
    ctx.save();
    ctx.translate(14, 56);
    ctx.rotate(-Math.PI / 2);
    ctx.fillText(`${ay} →`, 0, 0);
    ctx.restore();
    const r = this.data.points.length > 2000 ? 1.7 : 2.3;
    ctx.globalAlpha = 0.55;
    for (let i = 0; i < this.data.points.length; i++) {
      const [px, py] = this.toPx(this.data.points[i], f);
      ctx.fillStyle = STYLE_COLORS[this.data.styles[i] % STYLE_COLORS.length];
      ctx.beginPath();
      ctx.arc(px, py, r, 0, 2 * Math.PI);
      ctx.fill();
    }
    ctx.globalAlpha = 1;
  }

  draw() {
    if (!this.canvas.clientWidth) return;
    const dpr = this.size();
    const f = this.frame();
    this.drawLayer(dpr, f);
    const ctx = this.canvas.getContext("2d");
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    ctx.drawImage(this.layer, 0, 0);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const o = this.overlay;
    // The straight path between the two ends, with its sample points.
    if (o.path && o.path.from && o.path.to) {
      const [ax, ay] = this.toPx(o.path.from, f);
      const [bx, by] = this.toPx(o.path.to, f);
      ctx.strokeStyle = "rgba(233,230,223,0.75)";
      ctx.lineWidth = 2;
      ctx.setLineDash([6, 5]);
      ctx.beginPath();
      ctx.moveTo(ax, ay);
      ctx.lineTo(bx, by);
      ctx.stroke();
      ctx.setLineDash([]);
      for (const p of o.path.points || []) {
        const [px, py] = this.toPx(p, f);
        ctx.fillStyle = "rgba(233,230,223,0.9)";
        ctx.beginPath();
        ctx.arc(px, py, 2.6, 0, 2 * Math.PI);
        ctx.fill();
      }
    }
    if (this.data) {
      ctx.font = "600 11.5px system-ui, -apple-system, 'Segoe UI', sans-serif";
      ctx.textBaseline = "middle";
      const placed = [];
      const dots = this.data.builtins.map((b) => [b, ...this.toPx(b.point, f)]);
      for (const [b, px, py] of dots) {
        const hot = this.hover === b.name || (o.highlight || []).includes(b.name);
        ctx.fillStyle = hot ? "#ffffff" : "#15171c";
        ctx.strokeStyle = hot ? "#ffffff" : "rgba(233,230,223,0.9)";
        ctx.lineWidth = 2;
        ctx.beginPath();
        ctx.arc(px, py, hot ? 6 : 4.5, 0, 2 * Math.PI);
        ctx.fill();
        ctx.stroke();
      }
      // Labels where they overlap neither another label nor a dot: try around the dot.
      for (const [b, px, py] of dots) {
        const hot = this.hover === b.name || (o.highlight || []).includes(b.name);
        const label = b.name.replaceAll("_", " ");
        const tw = ctx.measureText(label).width;
        const spots = [[9, 0], [-tw - 9, 0], [6, -15], [6, 15], [-tw - 6, -15], [-tw - 6, 15],
          [-tw / 2, -17], [-tw / 2, 17], [14, -30], [14, 30], [-tw - 14, -30], [-tw - 14, 30],
          [24, -46], [24, 46], [-tw - 24, -46], [-tw - 24, 46]];
        let best = null;
        for (const [dx, dy] of spots) {
          const r = [px + dx - 3, py + dy - 8, tw + 6, 16];
          if (r[0] < 0 || r[0] + r[2] > f.w || r[1] < 0 || r[1] + r[3] > f.h) continue;
          const clash = placed.some((q) => overlap(r, q))
            || dots.some(([, qx, qy]) => overlap(r, [qx - 5, qy - 5, 10, 10]));
          if (!clash) {
            best = r;
            break;
          }
        }
        if (!best) best = [px + 6, py - 8 + 15, tw + 6, 16];
        placed.push(best);
        const far = Math.abs(best[1] + 8 - py) > 20;
        if (far) {
          // A label moved away from its dot keeps a thin line to it.
          const lx = best[0] + 3 > px ? best[0] : best[0] + best[2];
          ctx.strokeStyle = "rgba(233,230,223,0.4)";
          ctx.lineWidth = 1;
          ctx.beginPath();
          ctx.moveTo(px, py);
          ctx.lineTo(lx, best[1] + 8);
          ctx.stroke();
        }
        ctx.fillStyle = "rgba(15,17,21,0.72)";
        ctx.fillRect(best[0], best[1], best[2], best[3]);
        ctx.fillStyle = hot ? "#ffffff" : "rgba(233,230,223,0.92)";
        ctx.fillText(label, best[0] + 3, best[1] + 8);
      }
    }
    for (const m of o.markers || []) {
      if (!m.point) continue;
      const [px, py] = this.toPx(m.point, f);
      marker(ctx, px, py, m);
    }
  }
}

function marker(ctx, x, y, m) {
  const r = m.size || 8;
  ctx.lineWidth = 2.5;
  ctx.strokeStyle = m.color;
  ctx.fillStyle = m.fill ? m.color : "rgba(15,17,21,0.85)";
  ctx.beginPath();
  if (m.shape === "diamond") {
    ctx.moveTo(x, y - r - 1);
    ctx.lineTo(x + r + 1, y);
    ctx.lineTo(x, y + r + 1);
    ctx.lineTo(x - r - 1, y);
    ctx.closePath();
  } else {
    ctx.arc(x, y, r, 0, 2 * Math.PI);
  }
  ctx.fill();
  ctx.stroke();
  if (m.label) {
    ctx.font = "700 10px system-ui, sans-serif";
    ctx.fillStyle = m.fill ? "#15171c" : m.color;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillText(m.label, x, y + 0.5);
    ctx.textAlign = "start";
  }
}

function overlap(a, b) {
  return a[0] < b[0] + b[2] && b[0] < a[0] + a[2] && a[1] < b[1] + b[3] && b[1] < a[1] + a[3];
}

function niceStep(raw) {
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const k of [1, 2, 5, 10]) if (k * p >= raw) return k * p;
  return 10 * p;
}
