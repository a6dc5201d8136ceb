"""Reports of an evaluation: a Markdown table, a JSON file with every figure, and plots."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import torch

from flatgroove.errors import UserError
from flatgroove.files import check_writable, write_text

# (section, key, column title, format)
COLUMNS = [
    ("reconstruction", "hit_f1", "hit F1", "{:.3f}"),
    ("reconstruction", "vel_mae", "vel MAE", "{:.3f}"),
    ("reconstruction", "off_mae", "offset MAE", "{:.3f}"),
    ("reconstruction", "neg_elbo", "−ELBO", "{:.1f}"),
    # heard first: decoded Grooves, hits by the decoding rule
    ("heard", "hit_cv", "heard CV", "{:.3f}"),
    ("heard", "hit_bunching", "bunching", "{:.3f}"),
    ("heard", "hit_abrupt_share", "abrupt pairs", "{:.1%}"),
    ("heard", "grouped_flip_share", "grouped flips", "{:.1%}"),
    ("heard", "vel_cv", "vel-weighted CV", "{:.3f}"),
    ("heard", "mid_density_ratio", "mid/ends hits", "{:.2f}"),
    ("heard", "mid_nn_hamming", "mid NN dist.", "{:.1f}"),
    # then the network's output y = [p, p·v, p·o]
    ("interpolation", "cv", "y CV", "{:.3f}"),
    ("flatness_mixup", "cond_median", "cond(G) median", "{:.1f}"),
    ("flatness_mixup", "flatness_error", "flatness err.", "{:.2f}"),
    ("geodesic", "ratio_mean", "straight/geodesic", "{:.3f}"),
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
    return write_text(path, json.dumps({"settings": settings, "models": _jsonable(results)}, indent=2))


START, END = "<!-- flatgroove:results -->", "<!-- /flatgroove:results -->"


def rules_line(results: dict[str, dict]) -> str:
    """Which decoding rule each model was heard with."""
    from flatgroove.model.decoding import DecodingRule

    parts = [f"{n}: {DecodingRule.from_dict(r.get('decoding')).describe()}" for n, r in results.items()]
    return "Decoding rule (how p becomes heard hits): " + "; ".join(parts) + "."


def builtin_table(results: dict[str, dict]) -> str:
    names = list(next(iter(results.values())).get("builtin_f1", {}))
    rows = ["| model | " + " | ".join(names) + " |", "|---|" + "|".join("---:" for _ in names) + "|"]
    for n, r in results.items():
        b = r.get("builtin_f1", {})
        rows.append(f"| {n} | " + " | ".join(_fmt("{:.2f}", b.get(k)) for k in names) + " |")
    return "\n".join(rows)


def check_block(path: str | os.PathLike) -> str:
    """The Markdown file's text (UTF-8, line endings as they are) when it can take a results
    block: one pair of markers, and a folder where the new file can be written. Checked before
    any evaluation, so that the hour's work does not end in a refusal."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: no such file to update")
    try:
        with p.open(encoding="utf-8", newline="") as fh:
            text = fh.read()
    except UnicodeDecodeError as e:
        raise UserError(f"{p}: not UTF-8 text ({e.reason} at byte {e.start}); "
                        "--update writes UTF-8 Markdown") from None
    if text.count(START) != 1 or text.count(END) != 1 or text.index(START) > text.index(END):
        raise UserError(f"{p}: needs one {START} … {END} block to update")
    try:  # the update is written beside it and moved into place
        check_writable(p)
    except OSError as e:
        raise UserError(f"{p}: {e.strerror}") from None
    return text


def update_block(path: str | os.PathLike, block: str) -> Path:
    """Replace the text between the results markers of a Markdown file, atomically, in the
    file's own line endings and mode (through a symlink, to its target)."""
    text = check_block(path)
    a, b = text.index(START) + len(START), text.index(END)
    nl = "\r\n" if "\r\n" in text[:a] else "\n"
    body = ("\n" + block.rstrip() + "\n").replace("\n", nl)
    return write_text(path, text[:a] + body + text[b:])


def claim_check(results: dict[str, dict], flat: str, vae: str) -> list[str]:
    """The paper's claim, tested: flat vs vae (no tuning on the test split)."""
    f, v = results[flat], results[vae]
    lines = []

    def check(ok: bool, text: str) -> None:
        lines.append(f"- [{'x' if ok else ' '}] {text}")

    fr, vr = f["reconstruction"], v["reconstruction"]
    hf, hv = fr["hit_f1"], vr["hit_f1"]
    check(hf >= hv - 0.02, f"keeps the grooves: hit F1 within 0.02 of the baseline: {hf:.3f} vs {hv:.3f}")
    for k in ("vel_mae", "off_mae"):
        check(fr[k] <= 1.1 * vr[k], f"{k.replace('_', ' ')} within 10 %: {fr[k]:.3f} vs {vr[k]:.3f}")
    bf, bv = f.get("builtin_f1", {}), v.get("builtin_f1", {})
    worse = [n for n in bf if n in bv and bf[n] < bv[n] - 0.05]
    check(not worse, "every built-in reconstructs in its own style (F1 ≥ baseline − 0.05)"
          + (f"; not: {', '.join(worse)}" if worse else ""))
    fh, vh = f["heard"], v["heard"]
    for k, what in (("hit_cv", "heard hit-change CV"), ("hit_bunching", "bunching ratio"),
                    ("vel_cv", "velocity-weighted CV"), ("vel_bunching", "velocity-weighted bunching")):
        check(fh[k] <= 0.8 * vh[k], f"{what} ≤ 0.8× the baseline's: {fh[k]:.3f} vs {vh[k]:.3f} "
              f"({fh[k] / vh[k]:.2f}×)")
    for k, what in (("hit_abrupt_share", "abrupt-pair share"), ("grouped_flip_share", "grouped-flip share"),
                    ("vel_abrupt_share", "velocity-weighted abrupt share")):
        check(fh[k] <= vh[k], f"{what} no larger: {fh[k]:.1%} vs {vh[k]:.1%}")
    m = fh["mid_density_ratio"]
    check(m >= 0.9, f"midpoints are grooves: hits at t = 0.5 ≥ 0.9× the ends: {m:.2f} (baseline {vh['mid_density_ratio']:.2f})")
    if "mid_nn_hamming" in fh and "real_nn_hamming" in fh:
        check(fh["mid_nn_hamming"] <= fh["real_nn_hamming"],
              f"midpoints as close to real training windows as real test windows are: "
              f"{fh['mid_nn_hamming']:.1f} vs {fh['real_nn_hamming']:.1f} cells")
    kf, kd = f["flatness_mixup"]["cond_median"], f["flatness_data"]["cond_median"]
    check(max(kf, kd) <= 10, f"flat in fact: median cond(G) ≤ 10 at mixups and data: {kf:.1f}, {kd:.1f} "
          f"(baseline {v['flatness_mixup']['cond_median']:.0f})")
    e = f["flatness_mixup"]["flatness_error"]
    em = f["flatness_mixup"].get("flatness_error_median")
    med = f"; median over points {em:.2f}" if em is not None else ""
    check(e <= 0.5, f"normalised flatness error ≤ 0.5: {e:.2f}{med} (baseline {v['flatness_mixup']['flatness_error']:.2f})")
    sf, sv = f["flatness_data"].get("trace_share"), v["flatness_data"].get("trace_share")
    if sf and sv:  # a figure to read, not a goal: where the flat metric lives
        lines.append("- where G lives (share of tr G at data encodings, hits / velocities / offsets): "
                     + " / ".join(f"{sf[k]:.0%}" for k in sf) + " (baseline "
                     + " / ".join(f"{sv[k]:.0%}" for k in sv) + ")")
    # the network's output space, second
    cf, cv = f["interpolation"]["cv"], v["interpolation"]["cv"]
    check(cf <= 0.5 * cv, f"(y) interpolation CV at most half: {cf:.3f} vs {cv:.3f} ({cf / cv:.2f}×)")
    if "geodesic" in f and "geodesic" in v:
        rf, rv = f["geodesic"]["ratio_mean"], v["geodesic"]["ratio_mean"]
        check(abs(rf - 1) < abs(rv - 1), f"(y) straight/geodesic length ratio closer to 1: {rf:.3f} vs {rv:.3f}")
    return lines


def interpolation_figure(models: dict[str, object], results: dict[str, dict], x: torch.Tensor,
                         path: str | os.PathLike, n_pairs: int = 1, steps: int = 9,
                         rule=None) -> list[Path]:
    """Piano rolls of the same test pairs, one panel per model, each decoded by the rule the
    tables used (`rule` for every model where --decoding gave one, else each model's own)."""
    from flatgroove.generate import interpolate
    from flatgroove.groove import Groove
    from flatgroove.plots import interpolation_rolls

    first = next(iter(results.values()))
    pairs = first["_pairs"][:n_pairs]
    out = []
    for k, (a, b) in enumerate(pairs):
        ga, gb = (Groove.from_features(x[i].numpy(), 120.0) for i in (a, b))
        ga.name, gb.name = f"test {a}", f"test {b}"
        rows = {}
        for name, m in models.items():
            own = m.decoding
            m.decoding = rule or own
            try:
                rows[name] = interpolate(m, ga, gb, steps=steps)
            finally:
                m.decoding = own
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
