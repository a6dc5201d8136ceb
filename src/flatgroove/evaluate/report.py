"""Reports of an evaluation: a Markdown table, a JSON file with every figure, and plots."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import torch

# (section, key, column title, format)
COLUMNS = [
    ("reconstruction", "hit_f1", "hit F1", "{:.3f}"),
    ("reconstruction", "hit_accuracy", "hit acc.", "{:.4f}"),
    ("reconstruction", "vel_mae", "vel MAE", "{:.3f}"),
    ("reconstruction", "off_mae", "offset MAE", "{:.3f}"),
    ("reconstruction", "neg_elbo", "−ELBO", "{:.1f}"),
    ("interpolation", "cv", "interp. CV", "{:.3f}"),
    ("interpolation", "max_over_mean", "max/mean step", "{:.2f}"),
    ("interpolation", "abrupt_jump_share", "abrupt jumps", "{:.1%}"),
    ("flatness_mixup", "cond_median", "cond(G) median", "{:.1f}"),
    ("flatness_mixup", "mf_cv", "CV √det G", "{:.2f}"),
    ("flatness_mixup", "trace_cv", "CV tr G", "{:.2f}"),
    ("geodesic", "ratio_mean", "straight/geodesic", "{:.3f}"),
    ("geodesic", "pearson", "dist. corr.", "{:.3f}"),
]


def _fmt(fmt: str, v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return fmt.format(v)


def markdown_table(results: dict[str, dict]) -> str:
    head = "| model | " + " | ".join(c[2] for c in COLUMNS) + " |"
    sep = "|---|" + "|".join("---:" for _ in COLUMNS) + "|"
    rows = [head, sep]
    for name, r in results.items():
        cells = [_fmt(fmt, r.get(sec, {}).get(key)) for sec, key, _, fmt in COLUMNS]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _jsonable(o):
    if isinstance(o, dict):
        return {k: _jsonable(v) for k, v in o.items() if not str(k).startswith("_")}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, float) and not math.isfinite(o):
        return None
    return o


def write_json(results: dict[str, dict], path: str | os.PathLike, settings: dict) -> Path:
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(json.dumps({"settings": settings, "models": _jsonable(results)}, indent=2))
    os.replace(tmp, p)
    return p


def claim_check(results: dict[str, dict], flat: str, vae: str) -> list[str]:
    """The paper's claim, tested: flat vs vae (no tuning on the test split)."""
    f, v = results[flat], results[vae]
    lines = []

    def check(ok: bool, text: str) -> None:
        lines.append(f"- [{'x' if ok else ' '}] {text}")

    cf, cv = f["interpolation"]["cv"], v["interpolation"]["cv"]
    check(cf <= 0.5 * cv, f"interpolation CV at most half: {cf:.3f} vs {cv:.3f} ({cf / cv:.2f}×)")
    kf, kv = f["flatness_mixup"]["cond_median"], v["flatness_mixup"]["cond_median"]
    check(kf < kv, f"median condition number of G closer to 1: {kf:.1f} vs {kv:.1f}")
    rf, rv = f["geodesic"]["ratio_mean"], v["geodesic"]["ratio_mean"]
    check(abs(rf - 1) < abs(rv - 1), f"straight/geodesic length ratio closer to 1: {rf:.3f} vs {rv:.3f}")
    hf, hv = f["reconstruction"]["hit_f1"], v["reconstruction"]["hit_f1"]
    check(hf >= hv - 0.02, f"hit F1 within 0.02: {hf:.3f} vs {hv:.3f}")
    return lines


def interpolation_figure(models: dict[str, object], results: dict[str, dict], x: torch.Tensor,
                         path: str | os.PathLike, n_pairs: int = 1, steps: int = 9) -> list[Path]:
    """Piano rolls of the same test pairs, one panel per model."""
    from flatgroove.generate import interpolate
    from flatgroove.groove import Groove
    from flatgroove.plots import interpolation_rolls

    first = next(iter(results.values()))
    pairs = first["_pairs"][:n_pairs]
    out = []
    for k, (a, b) in enumerate(pairs):
        ga, gb = (Groove.from_features(x[i].numpy(), 120.0) for i in (a, b))
        ga.name, gb.name = f"test {a}", f"test {b}"
        rows = {name: interpolate(m, ga, gb, steps=steps) for name, m in models.items()}
        p = Path(path)
        target = p if n_pairs == 1 else p.with_name(f"{p.stem}-{k}{p.suffix}")
        out.append(interpolation_rolls(rows, target, title=f"test pair {a} → {b}: straight-line paths"))
    return out


def magnification_figure(model, z: np.ndarray, pairs: np.ndarray, path: str | os.PathLike,
                         labels: np.ndarray | None = None, n: int = 60) -> Path:
    """For d = 2 models: log √det G over the latent plane with the data and straight paths."""
    from flatgroove import geometry
    from flatgroove.plots import magnification_map

    lo, hi = np.percentile(z, 1, axis=0) - 0.5, np.percentile(z, 99, axis=0) + 0.5
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], n), np.linspace(lo[1], hi[1], n))
    pts = torch.from_numpy(np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float32))
    G = geometry.metric(model.f, pts)
    log_mf = 0.5 * torch.linalg.eigvalsh(G.double()).clamp_min(1e-30).log().sum(-1)
    paths = [np.stack([z[a], z[b]]) for a, b in pairs[:6]]
    return magnification_map(gx, gy, log_mf.view(n, n).numpy(), z, paths, path,
                             title=f"{model.variant}, d = 2: log magnification factor",
                             point_labels=labels)
