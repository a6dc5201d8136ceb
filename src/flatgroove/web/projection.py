"""The 2-D latent map: the dataset's encodings projected to the plane.

For d = 2 the map is the latent space itself; otherwise the first two principal components
(numpy SVD) of a subsample of the dataset's encodings. Being linear, the projection keeps
straight latent paths straight on the map, and a map position maps back to a latent point
(on the plane through the mean). Computed once per model and dataset and cached on disk
in the flatgroove cache folder: dataset-derived arrays never go into the repository.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from flatgroove.files import atomic_path

log = logging.getLogger(__name__)

MAP_POINTS = 3000  # a few thousand points: enough for the shape, light for the page
MAP_VERSION = 2  # 2: per-point file, first bar and full style (hover names the window)


@dataclass
class Projection:
    """z -> (x, y) = (z - mean) @ components.T, and back."""

    method: str  # "latent" (d <= 2) or "pca"
    mean: np.ndarray  # (d,)
    components: np.ndarray  # (2, d), orthonormal rows
    explained: list[float] | None = None  # variance ratio of the two axes (pca)

    @classmethod
    def fit(cls, z: np.ndarray) -> Projection:
        z = np.asarray(z, np.float64)
        d = z.shape[1]
        if d <= 2:
            comps = np.eye(2, d)
            return cls("latent", np.zeros(d), comps)
        mean = z.mean(0)
        _, s, vt = np.linalg.svd(z - mean, full_matrices=False)
        var = s**2
        comps = vt[:2]
        # Fix the signs (SVD's are arbitrary) so the map does not flip between runs.
        comps = comps * np.sign(comps[np.arange(2), np.abs(comps).argmax(1)])[:, None]
        explained = [float(v / var.sum()) for v in var[:2]] if var.sum() > 0 else None
        return cls("pca", mean, comps, explained)

    def to_2d(self, z: np.ndarray) -> np.ndarray:
        z = np.atleast_2d(np.asarray(z, np.float64))
        return (z - self.mean) @ self.components.T

    def to_latent(self, p: np.ndarray) -> np.ndarray:
        p = np.asarray(p, np.float64)
        return (self.mean + p @ self.components).astype(np.float32)


@dataclass
class MapData:
    projection: Projection
    points: np.ndarray  # (n, 2) float32, the dataset's subsample
    styles: np.ndarray  # (n,) int index into style_names
    style_names: list[str]
    n_total: int  # windows in the dataset
    dataset: bool
    note: str
    files: np.ndarray | None = None  # (n,) str: the window's file
    bars: np.ndarray | None = None  # (n,) int: the window's first bar in its file (0-based)
    full_styles: np.ndarray | None = None  # (n,) str: the window's style as the data names it


def reach(points: np.ndarray) -> float:
    """How far from the data a map position may be and still decode to something the model
    has seen the like of: twice the 95th percentile of the points' nearest-neighbour
    distances, at least 3 % of the cloud's diagonal (0 with fewer than 2 points). Beyond it
    the decoder extrapolates (dense rolls, silence)."""
    p = np.asarray(points, np.float64).reshape(-1, 2)
    if len(p) < 2:
        return 0.0
    nn = np.empty(len(p))
    for i in range(0, len(p), 512):  # bounded memory: 512 x n distances at a time
        d2 = ((p[i:i + 512, None, :] - p[None, :, :]) ** 2).sum(-1)
        np.fill_diagonal(d2[:, i:i + 512], np.inf)
        nn[i:i + 512] = np.sqrt(d2.min(1))
    diag = float(np.hypot(*(p.max(0) - p.min(0))))
    return float(max(2.0 * np.percentile(nn, 95), 0.03 * diag))


def model_fingerprint(model) -> str:
    """A hash of the model's weights and configuration."""
    h = hashlib.blake2b(digest_size=12)
    h.update(json.dumps(model.config.to_dict(), sort_keys=True).encode())
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().float().numpy().tobytes())
    return h.hexdigest()


def primary_style(style: str) -> str:
    """'funk/groove1' -> 'funk', 'latin-brazilian-samba' -> 'latin' (the Groove MIDI
    Dataset's naming); empty -> 'other'."""
    s = style.split("/")[0].split("-")[0].strip()
    return s or "other"


def _cache_path(key: str) -> Path:
    from flatgroove.data.cache import cache_dir

    return cache_dir() / f"web-map-{key}.npz"


def _save(path: Path, m: MapData) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(
            fh,
            points=m.points,
            styles=m.styles,
            style_names=np.array(m.style_names, dtype=str),
            n_total=np.array(m.n_total),
            mean=m.projection.mean,
            components=m.projection.components,
            explained=np.array(m.projection.explained or [], np.float64),
            method=np.array(m.projection.method),
            note=np.array(m.note),
            files=np.asarray(m.files if m.files is not None else [], dtype=str),
            bars=np.asarray(m.bars if m.bars is not None else [], np.int64),
            full_styles=np.asarray(m.full_styles if m.full_styles is not None else [], dtype=str),
        )


def _load(path: Path) -> MapData | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            ex = [float(x) for x in z["explained"]]
            proj = Projection(str(z["method"]), z["mean"], z["components"], ex or None)
            return MapData(proj, z["points"], z["styles"], [str(s) for s in z["style_names"]],
                           int(z["n_total"]), True, str(z["note"]), z["files"], z["bars"],
                           z["full_styles"])
    except Exception as e:  # noqa: BLE001 - a bad cache file is rebuilt, not fatal
        log.warning("ignoring unreadable map cache %s (%s)", path, e)
        return None


def build_map(
    model,
    encode: Callable[[np.ndarray], np.ndarray],
    builtin_z: np.ndarray,
    dataset: str | os.PathLike | None,
    max_points: int = MAP_POINTS,
    seed: int = 0,
) -> MapData:
    """The map for `model` over the dataset at `dataset` (None: no dataset, the built-ins
    alone). `encode` maps features (n, 32, 27) to z (n, d) (the caller's model lock)."""
    ws = None
    note = ""
    if dataset is not None:
        from flatgroove.data import load_dataset

        try:
            ws = load_dataset(dataset, progress=False)
            if len(ws) == 0:
                note, ws = f"the dataset at {dataset} has no 2-bar windows", None
        except Exception as e:  # noqa: BLE001 - no dataset: the map still shows the built-ins
            note, ws = f"no dataset ({str(e)[:200]})", None
    if ws is None:
        proj = Projection.fit(builtin_z if len(builtin_z) >= 2 else np.zeros((2, model.latent_dim)))
        return MapData(proj, np.zeros((0, 2), np.float32), np.zeros(0, np.int32), [], 0, False,
                       (note or "no dataset") + "; the map shows the built-in grooves only")

    h = hashlib.blake2b(digest_size=12)
    h.update(json.dumps({"v": MAP_VERSION, "n": max_points, "seed": seed}).encode())
    h.update(model_fingerprint(model).encode())
    h.update(np.ascontiguousarray(ws.features).tobytes())
    h.update("\n".join(ws.meta["style"].tolist()).encode())
    path = _cache_path(h.hexdigest())
    if path.exists():
        cached = _load(path)
        if cached is not None:
            return cached

    rng = np.random.default_rng(seed)
    n = len(ws)
    idx = np.sort(rng.choice(n, size=min(n, max_points), replace=False))
    z = encode(ws.features[idx])
    proj = Projection.fit(z)
    styles = np.array([primary_style(s) for s in ws.meta["style"][idx]])
    names, inv = np.unique(styles, return_inverse=True)
    # Most common styles first, so their colours are the distinct ones of the palette.
    order = np.argsort(-np.bincount(inv), kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    what = "latent space (d = 2)" if proj.method == "latent" else "PCA of the encodings"
    m = MapData(
        proj,
        proj.to_2d(z).astype(np.float32),
        rank[inv].astype(np.int32),
        [str(names[i]) for i in order],
        n,
        True,
        f"{len(idx)} of {n} dataset windows, {what}",
        np.asarray(ws.meta["file"][idx], dtype=str),
        np.asarray(ws.starts[idx], np.int64),
        np.asarray(ws.meta["style"][idx], dtype=str),
    )
    try:
        _save(path, m)
    except OSError as e:
        log.warning("could not cache the map at %s (%s)", path, e)
    return m
