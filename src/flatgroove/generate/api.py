"""The generation API, re-exported by `flatgroove.generate`: encode, reconstruct, sample,
interpolate along the straight line (the flat model's natural path) or slerp, and 2-D blends
of four corners."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from flatgroove.errors import GenerateError
from flatgroove.groove import Groove


def resolve_model(spec: str | os.PathLike | None = None):
    """'flat' (the shipped flat model, default), 'vae' (the shipped baseline), 'flat16' (the
    shipped d = 16 model that is flat in fact), or a checkpoint path / run folder."""
    from flatgroove.model.checkpoint import load_model

    return load_model(spec if spec is not None else "flat")


def resolve_groove(spec: str | os.PathLike | Groove, bar: int = 0) -> Groove:
    """A Groove from a built-in name ('funk') or a MIDI file (2 bars from `bar`, default the first)."""
    from flatgroove.midi import read_groove
    from flatgroove.presets import BUILTIN_NAMES, builtin

    if isinstance(spec, Groove):
        return spec
    s = str(spec)
    # a built-in's name is the built-in, whatever is in the working folder ('rock' there, a
    # folder or an extension-less file, hid it); a MIDI file is named by its suffix or a path
    if s in BUILTIN_NAMES:
        return builtin(s)
    if Path(s).suffix.lower() in (".mid", ".midi") or Path(s).exists():
        g = read_groove(s, bar=bar)
        g.name = Path(s).stem
        return g
    try:
        return builtin(s)
    except ValueError:
        raise GenerateError(
            f"{s!r} is neither a MIDI file nor a built-in groove; built-ins: {', '.join(BUILTIN_NAMES)}"
        ) from None


def line(z_a: np.ndarray, z_b: np.ndarray, steps: int) -> np.ndarray:
    """`steps` points from z_a to z_b, both included: (steps, d)."""
    if steps < 2:
        raise GenerateError("an interpolation needs at least 2 steps (both ends)")
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
    return (1 - t) * z_a[None] + t * z_b[None]


def slerp(z_a: np.ndarray, z_b: np.ndarray, steps: int) -> np.ndarray:
    """Spherical interpolation, the usual path for a N(0, I) prior (the `vae` baseline)."""
    if steps < 2:
        raise GenerateError("an interpolation needs at least 2 steps (both ends)")
    na, nb = np.linalg.norm(z_a), np.linalg.norm(z_b)
    cos = float(np.clip(np.dot(z_a, z_b) / max(na * nb, 1e-12), -1.0, 1.0))
    omega = np.arccos(cos)
    t = np.linspace(0.0, 1.0, steps)[:, None]
    if omega < 1e-6:
        return line(z_a, z_b, steps)
    return ((np.sin((1 - t) * omega) * z_a + np.sin(t * omega) * z_b) / np.sin(omega)).astype(np.float32)


def encode(model, grooves: list[Groove], refine: int = 0) -> np.ndarray:
    """Latent codes (n, d): the encoder's means, or with `refine` > 0 each moved that many steps
    towards the point that decodes closest to its groove (GrooveVAE.refine_latent)."""
    return model.encode(grooves, refine=refine)


def reconstruct(model, grooves: list[Groove], refine: int = 0) -> list[Groove]:
    out = model.reconstruct(grooves, refine=refine)
    for g, src in zip(out, grooves):
        g.name = f"{src.name or 'groove'} (reconstructed)"
    return out


def sample(model, n: int = 4, temperature: float = 1.0, seed: int | None = None,
           tempo: float = 120.0) -> list[Groove]:
    if n < 1:
        raise GenerateError("sample: n must be >= 1")
    if not (math.isfinite(temperature) and temperature > 0):
        raise GenerateError(f"sample: temperature must be a finite number above 0, got {temperature}")
    if seed is not None and not 0 <= seed < 2**63:
        raise GenerateError(f"sample: seed must be a whole number from 0 to 2**63 - 1, got {seed}")
    gs = model.decode(model.sample(n, temperature=temperature, seed=seed), tempo=tempo)
    for i, g in enumerate(gs):
        g.name = f"sample {i + 1}"
    return gs


def interpolate(model, a: Groove, b: Groove, steps: int = 9, method: str = "line",
                refine: int = 0) -> list[Groove]:
    """`steps` grooves from a to b, both ends included; the tempo glides from a's to b's. With
    `refine` > 0 the ends are refined encodings (`encode`): they decode closer to a and b."""
    z = encode(model, [a, b], refine)
    if method == "line":
        path = line(z[0], z[1], steps)
    elif method == "slerp":
        path = slerp(z[0], z[1], steps)
    else:
        raise GenerateError(f"unknown interpolation {method!r}; choose 'line' or 'slerp'")
    alphas = np.linspace(0.0, 1.0, steps)
    tempos = np.linspace(a.tempo, b.tempo, steps)
    out = model.decode(path)  # one batched decode for the whole path
    for i, (g, t, al) in enumerate(zip(out, tempos, alphas)):
        g.tempo = float(t)
        g.name = f"{a.name or 'A'} -> {b.name or 'B'} {i}/{steps - 1} α={al:.2f}"
    return out


def blend(model, corners: list[Groove], grid: int = 3, refine: int = 0) -> list[list[Groove]]:
    """Bilinear 2-D blend: corners [top-left, top-right, bottom-left, bottom-right];
    returns `grid` rows of `grid` grooves (corners encoded as `encode` does, `refine` steps)."""
    if len(corners) != 4:
        raise GenerateError(f"blend needs 4 corner grooves, got {len(corners)}")
    if grid < 2:
        raise GenerateError("blend: grid must be >= 2")
    z = encode(model, corners, refine)
    tempo = float(np.mean([c.tempo for c in corners]))
    rows = []
    for i, v in enumerate(np.linspace(0, 1, grid)):
        left, right = (1 - v) * z[0] + v * z[2], (1 - v) * z[1] + v * z[3]
        pts = line(left.astype(np.float32), right.astype(np.float32), grid)
        row = model.decode(pts, tempo=tempo)
        for j, (g, u) in enumerate(zip(row, np.linspace(0, 1, grid))):
            g.name = f"blend ({i}, {j}) u={u:.2f} v={v:.2f}"
        rows.append(row)
    return rows


def write_outputs(grooves: list[Groove], out: str | os.PathLike | None, wav: str | None = None,
                  png: str | None = None, title: str | None = None, tempo: float | None = None,
                  soundfont: str | os.PathLike | None = None,
                  rows: list[list[Groove]] | None = None,
                  corners: list[str] | None = None) -> list[Path]:
    """The grooves in sequence as MIDI (marker events name each groove), and optionally WAV
    (built-in kit, or `soundfont`: a .sf2 path or 'gm') and a PNG: a piano roll, or for a
    2-D blend (`rows`, with the `corners`' names) the grid. MIDI and WAV share one tempo map: `tempo` throughout, else
    each groove at its own tempo."""
    written = []
    if out:
        from flatgroove.midi import write_midi

        written.append(write_midi(grooves, out, tempo=tempo, markers=True))
    if wav:
        from flatgroove.audio import render_to_wav

        written.append(render_to_wav(grooves, wav, tempo=tempo, soundfont=soundfont))
    if png:
        if rows is not None:
            from flatgroove.plots import blend_grid

            written.append(blend_grid(rows, png, title=title, corners=corners))
        else:
            from flatgroove.plots import piano_roll

            written.append(piano_roll(grooves, png, title=title))
    return written
