// The latent map: the dataset's encodings as dots coloured by style, the built-in grooves
// labelled, and on top what the view is doing (endpoints, the straight path, where α is).

// Ten colours picked to stay apart on the dark map (CIELAB distance >= 38 between any two,
// >= 65 from the background), times two marks: the ten commonest styles are discs, the next
// ten triangles, so the Groove MIDI Dataset's 18 styles are each one colour-and-shape pair.
export const STYLE_COLORS = [
  "#4ea8ff", "#ff8c1a", "#5fd35f", "#ff4d5e", "#b48cff", "#f2e14c", "#2fd9d0", "#ff8fd0",
  "#b5895b", "#d9d9d9",
];
export const STYLE_SHAPES = ["disc", "triangle"];

export function styleMark(i) {
  const n = STYLE_COLORS.length;
  return { color: STYLE_COLORS[i % n], shape: STYLE_SHAPES[Math.floor(i / n) % STYLE_SHAPES.length] };
}

// A style's mark as a small inline SVG (the legend).
export function markSvg(i, size = 10) {
  const { color, shape } = styleMark(i);
  const h = size / 2;
  const body = shape === "triangle"
    ? `<path d="M${h} 0.5L${size - 0.5} ${size - 1}H0.5Z" fill="${color}"/>`
    : `<circle cx="${h}" cy="${h}" r="${h - 0.5}" fill="${color}"/>`;
  return `<svg width="${size}" height="${size}" viewBox="0 0 ${size} ${size}" aria-hidden="true">${body}</svg>`;
}

function drawMark(ctx, shape, x, y, r) {
  ctx.beginPath();
  if (shape === "triangle") {
    const k = r * 1.35;
    ctx.moveTo(x, y - k);
    ctx.lineTo(x + k * 0.95, y + k * 0.7);
    ctx.lineTo(x - k * 0.95, y + k * 0.7);
    ctx.closePath();
  } else {
    ctx.arc(x, y, r, 0, 2 * Math.PI);
  }
  ctx.fill();
}

const HIT_PX = 14; // how close a click must be to a built-in's dot to pick it
const WINDOW_PX = 6; // how close the pointer must be to a dataset dot to name its window

export class LatentMap {
  constructor(canvas, tip) {
    this.canvas = canvas;
    this.tip = tip;
    this.data = null;
    this.overlay = {};
    this.hover = null;
    this.focusStyle = null; // a style index: the legend isolates it
    this.labels = []; // [{name, rect: [x, y, w, h], dot: [x, y]}]: where the labels went
    this.lastClick = null; // {asked, point, distance, far}: what the last click picked
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
    // What the decoder knows: the dataset's windows, or the built-ins when there is none.
    this.known = data.points.length >= 2 ? data.points : data.builtins.map((b) => b.point);
    this.canvas.dataset.points = String(data.points.length);
    this.canvas.dataset.builtins = String(data.builtins.length);
    this.draw();
  }

  setOverlay(o) {
    this.overlay = o || {};
    this.draw();
  }

  setFocusStyle(i) {
    this.focusStyle = i;
    this.layerKey = null;
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

  // The dataset window under the pointer (within a few pixels), as its index.
  nearestWindow(x, y) {
    if (!this.data || !this.data.points.length) return -1;
    const f = this.frame();
    let best = -1;
    let bd = WINDOW_PX;
    this.data.points.forEach((p, i) => {
      if (this.focusStyle !== null && this.data.styles[i] !== this.focusStyle) return;
      const [px, py] = this.toPx(p, f);
      const d = Math.hypot(px - x, py - y);
      if (d < bd) {
        bd = d;
        best = i;
      }
    });
    return best;
  }

  // "file · style · bars 3-4" for a dataset point.
  describeWindow(i) {
    const d = this.data;
    const w = d.windows;
    const primary = d.style_names[d.styles[i]] || "";
    if (!w) return primary;
    const bar = w.bar[i] + 1;
    return `${w.files[w.file[i]]} · ${w.styles[w.style[i]] || primary} · bars ${bar}-${bar + 1}`;
  }

  // Distance (map units) from p to the nearest point the model knows, and that point.
  dataDistance(p) {
    let best = Infinity;
    let at = null;
    for (const q of this.known || []) {
      const d = Math.hypot(q[0] - p[0], q[1] - p[1]);
      if (d < best) {
        best = d;
        at = q;
      }
    }
    return { distance: best, nearest: at };
  }

  // A click beyond the data's reach is pulled back towards the nearest known point, to the
  // edge of the reach: decoding far outside the data gives rolls and silence, not grooves.
  withinReach(p) {
    const reach = this.data && this.data.reach;
    const { distance, nearest } = this.dataDistance(p);
    if (!reach || !nearest || !(distance > reach)) return { point: p, distance, far: false };
    const k = reach / distance;
    const q = [nearest[0] + (p[0] - nearest[0]) * k, nearest[1] + (p[1] - nearest[1]) * k];
    return { point: q, distance, far: true, reach };
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
    let text;
    let far = false;
    if (b) {
      text = `built-in: ${b.name.replaceAll("_", " ")}`;
    } else {
      const i = this.nearestWindow(x, y);
      if (i >= 0) {
        text = this.describeWindow(i);
      } else {
        const { distance } = this.dataDistance(p);
        const reach = this.data && this.data.reach;
        far = reach > 0 && distance > reach;
        text = `(${p[0].toFixed(2)}, ${p[1].toFixed(2)}) · ${distance.toFixed(2)} from the data`
          + (far ? " — too far: a click goes to the edge of the data" : "");
      }
    }
    this.tip.hidden = false;
    this.tip.textContent = text;
    this.tip.classList.toggle("far", far);
    const right = x > this.canvas.clientWidth * 0.55;
    this.tip.style.left = right ? "" : `${x + 14}px`;
    this.tip.style.right = right ? `${this.canvas.clientWidth - x + 14}px` : "";
    this.tip.style.top = `${y + 10}px`;
    this.draw();
  }

  click(e) {
    const [x, y] = this.pos(e);
    const b = this.nearestBuiltin(x, y);
    if (b) {
      this.lastClick = { asked: b.point, point: b.point, distance: 0, far: false, name: b.name };
      this.onPick({ name: b.name, point: b.point }, e);
      return;
    }
    const asked = this.fromPx(x, y);
    const r = this.withinReach(asked);
    this.lastClick = { asked, ...r };
    this.onPick({ point: r.point, far: r.far ? { distance: r.distance, reach: r.reach } : null }, e);
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

  // The dataset dots change only with the data, the size or the legend's focus: drawn once
  // into a layer, with the built-ins' labels placed at the same time.
  drawLayer(dpr, f) {
    const key = `${this.layer.width}x${this.layer.height}:${this.data ? this.data.points.length : 0}:${this.focusStyle}`;
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
    const r = this.data.points.length > 2000 ? 1.9 : 2.5;
    const focus = this.focusStyle;
    // Isolated style on top, the rest faded behind it.
    const order = [...this.data.points.keys()];
    if (focus !== null) order.sort((i, j) => (this.data.styles[i] === focus) - (this.data.styles[j] === focus));
    for (const i of order) {
      const st = this.data.styles[i];
      const mk = styleMark(st);
      const [px, py] = this.toPx(this.data.points[i], f);
      ctx.globalAlpha = focus === null ? 0.6 : st === focus ? 0.95 : 0.07;
      ctx.fillStyle = mk.color;
      drawMark(ctx, mk.shape, px, py, r);
    }
    ctx.globalAlpha = 1;
    ctx.font = LABEL_FONT;
    this.labels = placeLabels(ctx, this.data.builtins.map((b) => [b.name, ...this.toPx(b.point, f)]), f);
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
    // A quadrilateral (the pad's four corners on the map).
    if (o.quad && o.quad.every(Boolean)) {
      const q = [o.quad[0], o.quad[1], o.quad[3], o.quad[2]].map((p) => this.toPx(p, f));
      ctx.strokeStyle = "rgba(245,213,71,0.6)";
      ctx.fillStyle = "rgba(245,213,71,0.06)";
      ctx.lineWidth = 1.5;
      ctx.setLineDash([4, 4]);
      ctx.beginPath();
      q.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
      ctx.closePath();
      ctx.fill();
      ctx.stroke();
      ctx.setLineDash([]);
    }
    if (this.data) {
      const hot = (n) => this.hover === n || (o.highlight || []).includes(n);
      // Leader lines, then the dots, then the labels on top.
      ctx.strokeStyle = "rgba(233,230,223,0.45)";
      ctx.lineWidth = 1;
      for (const l of this.labels) {
        if (!l.leader) continue;
        ctx.beginPath();
        ctx.moveTo(l.dot[0], l.dot[1]);
        ctx.lineTo(l.leader[0], l.leader[1]);
        ctx.stroke();
      }
      for (const l of this.labels) {
        const h = hot(l.name);
        ctx.fillStyle = h ? "#ffffff" : "#15171c";
        ctx.strokeStyle = h ? "#ffffff" : "rgba(233,230,223,0.9)";
        ctx.lineWidth = 2;
        ctx.beginPath();
        ctx.arc(l.dot[0], l.dot[1], h ? 6 : 4.5, 0, 2 * Math.PI);
        ctx.fill();
        ctx.stroke();
      }
      ctx.font = LABEL_FONT;
      ctx.textBaseline = "middle";
      for (const l of this.labels) {
        const [x, y, w, h] = l.rect;
        ctx.fillStyle = "rgba(15,17,21,0.8)";
        ctx.fillRect(x, y, w, h);
        ctx.fillStyle = hot(l.name) ? "#ffffff" : "rgba(233,230,223,0.92)";
        ctx.fillText(l.text, x + 3, y + h / 2);
      }
    }
    for (const m of o.markers || []) {
      if (!m.point) continue;
      const [px, py] = this.toPx(m.point, f);
      marker(ctx, px, py, m);
    }
  }
}

const LABEL_FONT = "600 11.5px system-ui, -apple-system, 'Segoe UI', sans-serif";

// Built-in labels that overlap neither each other, nor a built-in's dot, nor the canvas edge.
// The most crowded dots choose first; each tries rings of growing radius around its dot in
// twelve directions and keeps the first free spot; a label away from its dot gets a leader
// line. Returns [{name, text, rect, dot, leader}].
function placeLabels(ctx, dots, f) {
  const H = 16;
  const dotBoxes = dots.map(([, x, y]) => [x - 6, y - 6, 12, 12]);
  const crowd = (i) => dots.reduce((n, d, j) => n + (j !== i && Math.hypot(d[1] - dots[i][1], d[2] - dots[i][2]) < 80), 0);
  const order = dots.map((_, i) => i).sort((a, b) => crowd(b) - crowd(a) || a - b);
  const placed = [];
  const out = new Array(dots.length);
  const angles = [0, 180, -30, 30, 150, -150, -60, 60, -120, 120, -90, 90].map((a) => (a * Math.PI) / 180);
  const radii = [8, 22, 38, 56, 78, 104, 134, 168, 206];
  for (const i of order) {
    const [name, px, py] = dots[i];
    const text = name.replaceAll("_", " ");
    const w = ctx.measureText(text).width + 6;
    let best = null;
    let bestBad = Infinity;
    search: for (const r of radii) {
      for (const a of angles) {
        const ax = px + r * Math.cos(a);
        const ay = py + r * Math.sin(a);
        // The label's near edge (or centre, straight up or down) sits at the anchor.
        const c = Math.cos(a);
        const x = Math.abs(c) < 0.2 ? ax - w / 2 : c > 0 ? ax : ax - w;
        const y = Math.abs(c) < 0.2 ? (Math.sin(a) < 0 ? ay - H : ay) : ay - H / 2;
        const rect = [x, y, w, H];
        let bad = 0;
        if (x < 2 || y < 2 || x + w > f.w - 2 || y + H > f.h - 2) bad += 1000;
        for (const q of placed) bad += overlapArea(rect, q);
        for (const q of dotBoxes) bad += overlapArea(rect, q);
        if (bad < bestBad) {
          bestBad = bad;
          best = { rect, r };
        }
        if (bad === 0) break search;
      }
    }
    placed.push(best.rect);
    const [x, y, w2, h] = best.rect;
    // The leader ends at the nearest point of the label's box.
    const lx = Math.max(x, Math.min(px, x + w2));
    const ly = Math.max(y, Math.min(py, y + h));
    out[i] = { name, text, rect: best.rect, dot: [px, py],
      leader: best.r > 8 && Math.hypot(lx - px, ly - py) > 9 ? [lx, ly] : null };
  }
  return out;
}

function overlapArea(a, b) {
  const w = Math.min(a[0] + a[2], b[0] + b[2]) - Math.max(a[0], b[0]);
  const h = Math.min(a[1] + a[3], b[1] + b[3]) - Math.max(a[1], b[1]);
  return w > 0 && h > 0 ? w * h : 0;
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

function niceStep(raw) {
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const k of [1, 2, 5, 10]) if (k * p >= raw) return k * p;
  return 10 * p;
}
