"""Pictures of grooves: a drum piano roll, interpolation paths side by side, a jam session.

matplotlib is imported inside the functions (it is slow to import and only these need it),
and figures are drawn on the Agg canvas directly, without pyplot, so nothing touches a
global backend or leaks figures in a long-running server. PNGs are written atomically.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from itertools import pairwise
from pathlib import Path

import numpy as np

from flatgroove.drums import N_DRUMS, SHORT_NAMES
from flatgroove.files import atomic_path
from flatgroove.groove import N_STEPS, STEPS_PER_BAR, Groove

CMAP = "YlOrRd"  # light = soft, dark red = loud: readable on white and in greyscale
LANE_COLOURS = {"drummer": "#1f5fa8", "machine": "#d2691e"}
_BAR_COLOUR, _BEAT_COLOUR, _ROW_SHADE = "#7a7a7a", "#dddddd", "#f4f4f4"


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str | os.PathLike) -> Path:
    out = Path(path)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return out


def _cmap():
    from matplotlib import colormaps

    # Skip the palest end of the map so that ghost notes stay visible on white.
    base = colormaps[CMAP]
    return lambda v: base(0.25 + 0.75 * np.clip(np.asarray(v, float), 0.0, 1.0))


def _hit_rects(g: Groove, x0: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x (onset in steps, micro-timing included), row (drum) and velocity of every hit."""
    steps, drums = np.nonzero(g.hits)
    x = x0 + steps + g.offsets[steps, drums]
    return x, drums, g.velocities[steps, drums]


def _drum_axis(ax, n_steps: float) -> None:
    ax.set_ylim(-0.5, N_DRUMS - 0.5)
    ax.set_yticks(range(N_DRUMS), SHORT_NAMES, fontsize=8)
    for d in range(0, N_DRUMS, 2):  # alternate row shading guides the eye along a drum
        ax.axhspan(d - 0.5, d + 0.5, color=_ROW_SHADE, zorder=0, lw=0)
    ax.set_xlim(0, n_steps)
    ax.tick_params(axis="y", length=0)


def piano_roll(
    grooves: Sequence[Groove] | Groove,
    path: str | os.PathLike,
    title: str | None = None,
    labels: Sequence[str] | None = None,
) -> Path:
    """Grooves in sequence as a drum piano roll: a row per drum (kick at the bottom), x in
    16th steps with micro-timing, colour by velocity; bar lines, with the grooves' own
    2-bar boundaries drawn darker. Returns the PNG's path."""
    gs = [grooves] if isinstance(grooves, Groove) else list(grooves)
    if not gs:
        raise ValueError("piano_roll needs at least one groove")
    if labels is None and any(g.name for g in gs):
        labels = [g.name for g in gs]
    if labels is not None and len(labels) != len(gs):
        raise ValueError(f"{len(labels)} labels for {len(gs)} grooves")
    total = N_STEPS * len(gs)
    fig = _figure(float(np.clip(2.5 + total * 0.17, 7.5, 26.0)), 3.6)
    ax = fig.add_axes((0.055, 0.16, 0.85, 0.66))
    cax = fig.add_axes((0.925, 0.16, 0.012, 0.66))
    _drum_axis(ax, total)
    colour = _cmap()
    for s in range(0, total + 1, 4):
        if s % N_STEPS == 0:
            ax.axvline(s, color="#333333", lw=1.4, zorder=1)
        elif s % STEPS_PER_BAR == 0:
            ax.axvline(s, color=_BAR_COLOUR, lw=0.9, zorder=1)
        else:
            ax.axvline(s, color=_BEAT_COLOUR, lw=0.6, zorder=1)
    for i, g in enumerate(gs):
        x, rows, vel = _hit_rects(g, i * N_STEPS)
        ax.barh(rows, 0.8, left=x, height=0.72, color=colour(vel), edgecolor="#00000055",
                linewidth=0.4, zorder=3)
        if labels is not None:
            ax.text((i + 0.5) * N_STEPS, N_DRUMS - 0.3, f"{labels[i]}  ({g.tempo:.0f} BPM)",
                    ha="center", va="bottom", fontsize=8.5, clip_on=False)
    bars = np.arange(0, total, STEPS_PER_BAR)
    ax.set_xticks(bars, [str(b // STEPS_PER_BAR + 1) for b in bars], fontsize=8)
    ax.set_xlabel("bar", fontsize=9)
    ax.tick_params(axis="x", length=3)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    _colourbar(fig, cax)
    if title:
        fig.suptitle(title, fontsize=11, y=0.985)
    return _save(fig, path)


def _colourbar(fig, cax) -> None:
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import ListedColormap, Normalize

    lut = ListedColormap(_cmap()(np.linspace(0, 1, 256)))
    cb = fig.colorbar(ScalarMappable(Normalize(0, 127), lut), cax=cax)
    cb.set_ticks([1, 32, 64, 96, 127])
    cb.ax.tick_params(labelsize=7)
    cb.set_label("velocity", fontsize=8)


def _velocity_image(g: Groove) -> np.ndarray:
    """(9, 32) velocities with NaN where silent, kick in row 0."""
    img = np.where(g.hits.T > 0, g.velocities.T, np.nan)
    return img.astype(float)


def _card(g: Groove, colour) -> np.ndarray:
    """A groove as a compact (9, 32, 4) RGBA block: a light card (so silence reads as a
    block) with beat guides, hits coloured by velocity, kick in row 0."""
    img = _velocity_image(g)
    hit = ~np.isnan(img)
    block = np.ones((N_DRUMS, N_STEPS, 4))
    block[:, :, :3] = 0.965
    for bar in (0, STEPS_PER_BAR):
        block[:, bar : bar + STEPS_PER_BAR : 4, :3] = 0.91
    block[hit] = colour(img[hit])
    return block


def blend_grid(
    rows: Sequence[Sequence[Groove]],
    path: str | os.PathLike,
    title: str | None = None,
    corners: Sequence[str] | None = None,
) -> Path:
    """A 2-D blend drawn as the grid it is: row i, column j holds the groove at
    (u, v) = (j, i) / (n - 1), each a compact 9x32 card (drums x steps, colour by velocity)
    with its hit count; the four corner grooves are named at the corners."""
    n_rows = len(rows)
    n_cols = max((len(r) for r in rows), default=0)
    if n_rows == 0 or n_cols == 0:
        raise ValueError("blend_grid needs at least one row of grooves")
    colour = _cmap()
    cell_w, cell_h = 2.3, 1.05
    head = 0.55 if title else 0.25
    fig = _figure(0.9 + cell_w * n_cols + 0.7, head + 0.55 + cell_h * n_rows)
    fw, fh = fig.get_figwidth(), fig.get_figheight()
    names = list(corners) if corners is not None and len(corners) == 4 else None
    for i, row in enumerate(rows):
        for j, g in enumerate(row):
            x0 = (0.9 + j * cell_w) / fw
            y0 = 1.0 - (head + (i + 1) * cell_h) / fh
            ax = fig.add_axes((x0, y0 + 0.16 * cell_h / fh, 0.9 * cell_w / fw, 0.66 * cell_h / fh))
            ax.imshow(_card(g, colour), origin="lower", aspect="auto", interpolation="nearest",
                      extent=(-0.5, N_STEPS - 0.5, -0.5, N_DRUMS - 0.5))
            ax.axvline(STEPS_PER_BAR - 0.5, color="white", lw=0.8)
            ax.set_xticks([])
            if j == 0:
                ax.set_yticks(range(N_DRUMS), SHORT_NAMES, fontsize=5)
                ax.tick_params(axis="y", length=0, pad=1)
            else:
                ax.set_yticks([])
            for side in ax.spines.values():
                side.set_visible(False)
            u = j / (n_cols - 1) if n_cols > 1 else 0.0
            v = i / (n_rows - 1) if n_rows > 1 else 0.0
            label = f"u={u:.2f} v={v:.2f}  {g.n_hits} hits"
            corner = {(0, 0): 0, (0, n_cols - 1): 1, (n_rows - 1, 0): 2,
                      (n_rows - 1, n_cols - 1): 3}.get((i, j))
            if names is not None and corner is not None:
                label = f"{names[corner]}  ({g.n_hits} hits)"
            ax.set_title(label, fontsize=7, pad=2,
                         fontweight="bold" if corner is not None else "normal")
    fig.text(0.5, 0.12 / fh, "u: left → right corner      v: top → bottom corner",
             ha="center", fontsize=8, color="#555555")
    if title:
        fig.suptitle(title, fontsize=11, y=1.0 - 0.1 / fh, va="top")
    return _save(fig, path)


def _hit_changes(gs: Sequence[Groove]) -> list[int]:
    return [0] + [int(np.abs(a.hits - b.hits).sum()) for a, b in pairwise(gs)]


def interpolation_rolls(
    rows: Mapping[str, Sequence[Groove]], path: str | os.PathLike, title: str | None = None
) -> Path:
    """Interpolation paths one above another, a panel per variant: each groove of a path is a
    compact 9x32 block (drums x steps, colour by velocity), left to right along the path.
    Above each block: how many hits changed from the previous groove, so an abrupt jump
    (one step carrying most of the change) stands out against an even path."""
    if not rows:
        raise ValueError("interpolation_rolls needs at least one row of grooves")
    if any(len(gs) == 0 for gs in rows.values()):
        raise ValueError("every row needs at least one groove")
    n = max(len(gs) for gs in rows.values())
    gap = 4  # columns of white between blocks
    width = n * (N_STEPS + gap) - gap
    colour = _cmap()
    fig_w = float(np.clip(1.6 + n * 0.95, 6.0, 24.0))
    panel_h = 2.0
    fig = _figure(fig_w, 0.9 + panel_h * len(rows) + (0.35 if title else 0.0))
    top = 1.0 - (0.55 if title else 0.25) / fig.get_figheight()
    bottom = 0.55 / fig.get_figheight()
    h = (top - bottom) / len(rows)
    left, right = 0.9 / fig_w, 1.0 - 0.25 / fig_w
    for r, (name, gs) in enumerate(rows.items()):
        ax = fig.add_axes((left, top - (r + 1) * h + 0.2 * h, right - left, 0.68 * h))
        rgba = np.ones((N_DRUMS, width, 4))
        for k, g in enumerate(gs):
            x0 = k * (N_STEPS + gap)
            rgba[:, x0 : x0 + N_STEPS] = _card(g, colour)
        ax.imshow(rgba, origin="lower", aspect="auto", interpolation="nearest",
                  extent=(-0.5, width - 0.5, -0.5, N_DRUMS - 0.5))
        for k in range(len(gs)):  # the bar line inside each groove
            ax.axvline(k * (N_STEPS + gap) + STEPS_PER_BAR - 0.5, color="white", lw=0.8)
        ax.set_yticks(range(N_DRUMS), SHORT_NAMES, fontsize=6)
        ax.tick_params(axis="y", length=0, pad=1)
        centres = np.arange(len(gs)) * (N_STEPS + gap) + N_STEPS / 2 - 0.5
        alphas = np.linspace(0, 1, len(gs)) if len(gs) > 1 else np.zeros(1)
        ax.set_xticks(centres, [f"{a:.2f}".rstrip("0").rstrip(".") for a in alphas], fontsize=7)
        ax.tick_params(axis="x", length=0, pad=2)
        for k, c in enumerate(_hit_changes(gs)):
            if k:
                ax.text(centres[k], N_DRUMS - 0.35, f"Δ{c}", ha="center",
                        va="bottom", fontsize=6.5, color="#555555", clip_on=False)
        for side in ax.spines.values():
            side.set_visible(False)
        ax.set_ylabel(name, fontsize=10, rotation=0, ha="right", va="center", labelpad=14)
        if r == len(rows) - 1:
            ax.set_xlabel("α along the path   (Δ = hits changed from the previous groove)",
                          fontsize=8)
    if title:
        fig.suptitle(title, fontsize=11, y=1.0 - 0.12 / fig.get_figheight(), va="top")
    return _save(fig, path)


def _bar_notes(annotations: Mapping[int, str] | Sequence[str | None] | None) -> dict[int, str]:
    if annotations is None:
        return {}
    if isinstance(annotations, Mapping):
        return {int(k): str(v) for k, v in annotations.items() if v}
    return {i: str(v) for i, v in enumerate(annotations) if v}


def session_roll(
    drummer: Sequence[Groove | None],
    machine: Sequence[Groove | None],
    path: str | os.PathLike,
    annotations: Mapping[int, str] | Sequence[str | None] | None = None,
    title: str | None = None,
) -> Path:
    """A jam session: a drummer lane above a machine lane, x in bars. Entry k of each list is
    the groove played in bars 2k+1 and 2k+2 (None: that lane rests). `annotations` puts a
    note on a bar (0-based), e.g. {4: "α=0.5", 8: "target: funk"}."""
    lanes = {"drummer": list(drummer), "machine": list(machine)}
    n_bars = 2 * max(len(v) for v in lanes.values()) if any(lanes.values()) else 2
    total = n_bars * STEPS_PER_BAR
    notes = _bar_notes(annotations)
    top_in = 0.15 + (0.45 if notes else 0.0) + (0.4 if title else 0.0)  # margins in inches
    bottom_in, lane_in, gap_in = 0.5, 1.75, 0.25
    fig_h = bottom_in + 2 * lane_in + gap_in + top_in
    fig_w = float(np.clip(2.0 + n_bars * 0.55, 7.5, 26.0))
    fig = _figure(fig_w, fig_h)
    left, width = 0.9 / fig_w, 1.0 - 1.1 / fig_w
    axes = [
        fig.add_axes((left, (bottom_in + (1 - i) * (lane_in + gap_in)) / fig_h, width,
                      lane_in / fig_h))
        for i in range(2)
    ]
    for ax, (lane, gs) in zip(axes, lanes.items()):
        _drum_axis(ax, total)
        ax.set_yticks(range(N_DRUMS), SHORT_NAMES, fontsize=6.5)
        for s in range(0, total + 1, 4):
            c, lw = (_BAR_COLOUR, 0.8) if s % STEPS_PER_BAR == 0 else (_BEAT_COLOUR, 0.4)
            ax.axvline(s, color=c, lw=lw, zorder=1)
        xs, ys, vs = [], [], []
        for k, g in enumerate(gs):
            if g is None:
                # The lane rests: hatch it, so a rest reads differently from an empty groove.
                ax.axvspan(k * N_STEPS, (k + 1) * N_STEPS, facecolor="none", edgecolor="#e2e2e2",
                           hatch="////", lw=0, zorder=0.5)
                continue
            x, rows, vel = _hit_rects(g, k * N_STEPS)
            xs.append(x)
            ys.append(rows)
            vs.append(vel)
        if xs:
            from matplotlib.colors import to_rgba

            vel = np.concatenate(vs)
            rgba = np.tile(to_rgba(LANE_COLOURS[lane]), (len(vel), 1))
            rgba[:, 3] = 0.25 + 0.75 * vel  # loud = opaque, ghost notes faint
            ax.barh(np.concatenate(ys), 0.85, left=np.concatenate(xs), height=0.75, color=rgba,
                    lw=0, zorder=3)
        ax.set_ylabel(lane, fontsize=10, color=LANE_COLOURS[lane], labelpad=6)
        bars = np.arange(0, n_bars, max(1, n_bars // 24))  # at most ~24 bar numbers
        ax.set_xticks(bars * STEPS_PER_BAR, [str(b + 1) for b in bars], fontsize=7.5)
        ax.tick_params(axis="x", length=2, labelbottom=lane == "machine")
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    axes[1].set_xlabel("bar", fontsize=9)
    for bar, text in sorted(notes.items()):
        if 0 <= bar < n_bars:
            x = bar * STEPS_PER_BAR
            for ax in axes:
                ax.axvline(x, color="#2a9d55", lw=1.2, ls="--", zorder=4)
            axes[0].annotate(text, (x, N_DRUMS - 0.5), xytext=(2, 4), textcoords="offset points",
                             fontsize=7.5, color="#1d6e3c", rotation=20, ha="left", va="bottom",
                             annotation_clip=False)
    if title:
        fig.suptitle(title, fontsize=11, y=1.0 - 0.1 / fig_h, va="top")
    return _save(fig, path)


__all__ = ["blend_grid", "interpolation_rolls", "piano_roll", "session_roll"]


def magnification_map(
    grid_x: np.ndarray,
    grid_y: np.ndarray,
    log_mf: np.ndarray,
    points: np.ndarray,
    paths: Sequence[np.ndarray],
    path: str | os.PathLike,
    title: str | None = None,
    point_labels: np.ndarray | None = None,
) -> Path:
    """A d = 2 latent space: log magnification factor √det G as a heat map, the data's
    encodings on top, and straight paths between pairs. A flat space is an even colour."""
    fig = _figure(6.4, 5.6)
    ax = fig.add_subplot(1, 1, 1)
    im = ax.pcolormesh(grid_x, grid_y, log_mf, cmap="viridis", shading="auto")
    cb = fig.colorbar(im, ax=ax)
    cb.set_label("log magnification factor  log √det G")
    if point_labels is not None and len(point_labels):
        from matplotlib import colormaps

        names = sorted(set(point_labels.tolist()))
        cm = colormaps["tab10"]
        for i, n in enumerate(names):
            m = point_labels == n
            ax.scatter(points[m, 0], points[m, 1], s=3, alpha=0.5, color=cm(i % 10), label=n, lw=0)
        if len(names) <= 12:
            ax.legend(fontsize=6, markerscale=3, loc="upper right", framealpha=0.7)
    else:
        ax.scatter(points[:, 0], points[:, 1], s=3, alpha=0.4, color="white", lw=0)
    for p in paths:
        ax.plot(p[:, 0], p[:, 1], color="#ff4040", lw=1.2)
        ax.scatter(p[[0, -1], 0], p[[0, -1], 1], color="#ff4040", s=12, zorder=3)
    ax.set_xlim(grid_x.min(), grid_x.max())
    ax.set_ylim(grid_y.min(), grid_y.max())
    ax.set_xlabel("z₁")
    ax.set_ylabel("z₂")
    ax.set_title(title or "magnification factor", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)
