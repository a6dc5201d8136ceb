// Grooves drawn as step grids: one row per drum, one column per 16th; a hit's height and
// brightness follow its velocity and it sits off the grid line by its micro-timing offset.

export const SHORT = ["BD", "SD", "HH", "OH", "LT", "MT", "HT", "CR", "RD"];
export const DRUM_COLORS = [
  "#ff8a3d", "#ff5d73", "#f5d547", "#e9b949", "#b692ff", "#a07cf7", "#8b68ee", "#38d6c4", "#4fb3ff",
];

function fit(canvas) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || canvas.width;
  const h = canvas.clientHeight || canvas.height;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return [ctx, w, h];
}

// A short signature of what is drawn (tests and the page compare grids by it).
export function signature(g) {
  if (!g) return "empty";
  let n = 0;
  let h = 7;
  for (let s = 0; s < 32; s++) {
    for (let d = 0; d < 9; d++) {
      if (g.hits[s][d]) {
        n += 1;
        h = (h * 31 + s * 9 + d + Math.round(g.velocities[s][d] * 16) * 997) % 1000003;
      }
    }
  }
  return `${n}:${h}`;
}

// opts: { labels (row names), playStep (-1: none), half (0/1 highlighted bar, null: none),
//         dim (draw faded) }
export function drawGrid(canvas, g, opts = {}) {
  const [ctx, w, h] = fit(canvas);
  const labels = opts.labels !== false;
  const lw = labels ? 26 : 0;
  const pad = 2;
  const cw = (w - lw - pad) / 32;
  const rh = (h - 2 * pad) / 9;
  ctx.clearRect(0, 0, w, h);
  // Beats shaded alternately, bar line strong: read like a drum machine.
  for (let b = 0; b < 8; b++) {
    ctx.fillStyle = b % 2 ? "rgba(255,255,255,0.035)" : "rgba(255,255,255,0.065)";
    ctx.fillRect(lw + b * 4 * cw, pad, 4 * cw, h - 2 * pad);
  }
  if (opts.half === 0 || opts.half === 1) {
    ctx.fillStyle = "rgba(245,213,71,0.07)";
    ctx.fillRect(lw + opts.half * 16 * cw, pad, 16 * cw, h - 2 * pad);
  }
  ctx.strokeStyle = "rgba(255,255,255,0.06)";
  ctx.lineWidth = 1;
  for (let r = 1; r < 9; r++) {
    ctx.beginPath();
    ctx.moveTo(lw, pad + r * rh + 0.5);
    ctx.lineTo(w, pad + r * rh + 0.5);
    ctx.stroke();
  }
  ctx.strokeStyle = "rgba(233,230,223,0.35)";
  ctx.beginPath();
  ctx.moveTo(lw + 16 * cw + 0.5, pad);
  ctx.lineTo(lw + 16 * cw + 0.5, h - pad);
  ctx.stroke();
  if (labels) {
    ctx.font = `600 ${Math.max(8, Math.min(11, rh * 0.62))}px ui-monospace, "DejaVu Sans Mono", monospace`;
    ctx.textBaseline = "middle";
    for (let r = 0; r < 9; r++) {
      ctx.fillStyle = DRUM_COLORS[r];
      ctx.globalAlpha = 0.85;
      ctx.fillText(SHORT[r], 2, pad + (r + 0.5) * rh);
    }
    ctx.globalAlpha = 1;
  }
  if (opts.playStep >= 0) {
    ctx.fillStyle = "rgba(233,230,223,0.16)";
    ctx.fillRect(lw + opts.playStep * cw, pad, cw, h - 2 * pad);
  }
  canvas.dataset.signature = signature(g);
  if (!g) return;
  const alpha = opts.dim ? 0.45 : 1;
  for (let s = 0; s < 32; s++) {
    for (let d = 0; d < 9; d++) {
      if (!g.hits[s][d]) continue;
      const v = g.velocities[s][d];
      const off = g.offsets[s][d];
      const bh = rh * (0.3 + 0.62 * v);
      const x = lw + (s + off) * cw + cw * 0.12;
      const y = pad + d * rh + (rh - bh) / 2;
      ctx.globalAlpha = alpha * (0.35 + 0.65 * v);
      ctx.fillStyle = DRUM_COLORS[d];
      const bw = Math.max(1.5, cw * 0.76);
      const rad = Math.min(3, bw / 2, bh / 2);
      ctx.beginPath();
      if (ctx.roundRect) ctx.roundRect(x, y, bw, bh, rad);
      else ctx.rect(x, y, bw, bh);
      ctx.fill();
    }
  }
  ctx.globalAlpha = 1;
}

// A groove's name as shown ("bossa_nova" -> "bossa nova").
export const nice = (name) => (name || "").replaceAll("_", " ");

// Fill a <select> with the built-in grooves, after a disabled first option `placeholder`
// that stands for a groove not among them (a map point, an uploaded file).
export function fillGrooveSelect(sel, names, placeholder) {
  sel.innerHTML = "";
  const custom = document.createElement("option");
  custom.value = "";
  custom.textContent = placeholder;
  custom.disabled = true;
  sel.appendChild(custom);
  for (const n of names) {
    const o = document.createElement("option");
    o.value = n;
    o.textContent = nice(n);
    sel.appendChild(o);
  }
}
