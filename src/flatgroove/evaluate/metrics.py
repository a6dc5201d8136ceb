"""Model-agnostic metrics for the paper's claims (DESIGN §5).

Every function takes either plain arrays or a decoder callable ``f(z: (n, d)) -> (n, D)``
(differentiable; for real models D = 864: per step and drum [p, p*v, p*o] flattened).
Nothing here knows about model classes, so the same numbers come out for every variant.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from flatgroove.groove import N_DRUMS, N_STEPS

Decoder = Callable[[torch.Tensor], torch.Tensor]
ArrayLike = np.ndarray | torch.Tensor

# -- helpers --------------------------------------------------------------------------------


def _np(x: ArrayLike) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _pairs(z_a: torch.Tensor, z_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """(pairs, d) views of the endpoints; the flag says a single (d,) pair was given."""
    z_a, z_b = torch.as_tensor(z_a), torch.as_tensor(z_b)
    if z_a.shape != z_b.shape:
        raise ValueError(f"z_a and z_b must have the same shape, got {z_a.shape} and {z_b.shape}")
    single = z_a.dim() == 1
    if single:
        z_a, z_b = z_a[None], z_b[None]
    if z_a.dim() != 2:
        raise ValueError(f"endpoints must be (d,) or (pairs, d), got {tuple(z_a.shape)}")
    return z_a, z_b, single


def _decode(f: Decoder, z: torch.Tensor) -> torch.Tensor:
    """f(z) flattened to (n, D), so decoders returning (n, 32, 9, 3) work too."""
    y = f(z)
    return y.reshape(y.shape[0], -1)


def _decode_batched(f: Decoder, z: torch.Tensor, batch_size: int) -> torch.Tensor:
    with torch.no_grad():
        parts = [_decode(f, z[i : i + batch_size]).cpu() for i in range(0, len(z), batch_size)]
    return torch.cat(parts) if parts else torch.zeros(0, 0)


def _line(z_a: torch.Tensor, z_b: torch.Tensor, n_points: int) -> torch.Tensor:
    """(pairs, n_points, d): evenly spaced points on the straight line, both ends included."""
    t = torch.linspace(0.0, 1.0, n_points, dtype=z_a.dtype, device=z_a.device)
    return z_a[:, None, :] + t[None, :, None] * (z_b - z_a)[:, None, :]


# -- interpolation smoothness ---------------------------------------------------------------


def interpolation_paths(
    f: Decoder,
    z_a: ArrayLike,
    z_b: ArrayLike,
    n_points: int = 17,
    batch_size: int = 1024,
) -> torch.Tensor:
    """Decode the straight line between each pair of encodings: (pairs, n_points, D) on CPU."""
    if n_points < 2:
        raise ValueError("n_points must be at least 2")
    z_a, z_b, _ = _pairs(z_a, z_b)
    z = _line(z_a, z_b, n_points).reshape(-1, z_a.shape[1])
    y = _decode_batched(f, z, batch_size)
    return y.reshape(z_a.shape[0], n_points, -1)


def hits_from_outputs(Y: ArrayLike, threshold: float = 0.5) -> np.ndarray:
    """Binary hits (..., 32, 9) from decoder outputs (..., 864): per step [p(9), p*v(9), p*o(9)],
    as flatgroove.model.decoder.geometry_output lays them out."""
    y = _np(Y)
    y = y.reshape(*y.shape[:-1], N_STEPS, 3, N_DRUMS)
    return (y[..., 0, :] >= threshold).astype(np.int8)


def step_sizes(Y: ArrayLike) -> np.ndarray:
    """d_k = ||y_k - y_{k-1}||: (pairs, n_points - 1) from paths (pairs, n_points, ...)."""
    y = _np(Y).astype(np.float64)
    if y.ndim < 3:
        raise ValueError(f"paths must be (pairs, n_points, D...), got shape {y.shape}")
    y = y.reshape(y.shape[0], y.shape[1], -1)
    return np.linalg.norm(np.diff(y, axis=1), axis=-1)


def smoothness(Y: ArrayLike, min_length: float = 1e-4) -> dict[str, float]:
    """How evenly decoded paths move: CV = std(d)/mean(d) (population std; 0 = perfectly even)
    and max(d)/mean(d), averaged over pairs.

    Pairs whose total length is below `min_length` carry no direction to be even in (and their
    ratios would be float noise), so they are left out and counted in `n_degenerate`.
    """
    d = step_sizes(Y)
    total = d.sum(axis=1)
    keep = total >= min_length
    d = d[keep]
    mean = d.mean(axis=1)
    cv = d.std(axis=1) / mean if len(d) else np.array([np.nan])
    jump = d.max(axis=1) / mean if len(d) else np.array([np.nan])
    return {
        "cv": float(np.mean(cv)),
        "cv_median": float(np.median(cv)),
        "max_over_mean": float(np.mean(jump)),
        "n_pairs": int(keep.sum()),
        "n_degenerate": int((~keep).sum()),
    }


def hit_changes(hits_paths: ArrayLike) -> np.ndarray:
    """Number of cells that flip between consecutive points: (pairs, n_points - 1)."""
    h = _np(hits_paths)
    h = (h.reshape(h.shape[0], h.shape[1], -1) >= 0.5).astype(np.int32)
    return np.abs(np.diff(h, axis=1)).sum(axis=-1)


def abrupt_jump_share(hits_paths: ArrayLike, threshold: float = 1 / 3) -> float:
    """Share of pairs where one step carries more than `threshold` of all hit changes.

    hits_paths: (pairs, n_points, 32, 9) binary. Pairs whose hits never change are left out;
    NaN when no pair changes at all.
    """
    c = hit_changes(hits_paths)
    total = c.sum(axis=1)
    moving = total > 0
    if not moving.any():
        return float("nan")
    abrupt = c[moving].max(axis=1) > threshold * total[moving]
    return float(abrupt.mean())


# -- reconstruction ------------------------------------------------------------------------


def hit_metrics(true_hits: ArrayLike, pred_hits: ArrayLike, threshold: float = 0.5) -> dict:
    """F1, precision, recall and accuracy over all cells (`pred_hits` may be probabilities).

    With no true and no predicted hits the prediction is perfect, so all scores are 1.
    """
    t = _np(true_hits) >= 0.5
    p = _np(pred_hits) >= threshold
    if t.shape != p.shape:
        raise ValueError(f"shapes differ: {t.shape} vs {p.shape}")
    tp = int(np.sum(t & p))
    fp = int(np.sum(~t & p))
    fn = int(np.sum(t & ~p))
    n = t.size
    empty = tp + fp + fn == 0
    precision = 1.0 if empty else (tp / (tp + fp) if tp + fp else 0.0)
    recall = 1.0 if empty else (tp / (tp + fn) if tp + fn else 0.0)
    f1 = 1.0 if empty else 2 * tp / (2 * tp + fp + fn)
    return {
        "f1": f1,
        "precision": precision,
        "recall": recall,
        "accuracy": float(np.sum(t == p) / n) if n else float("nan"),
        "tp": tp,
        "fp": fp,
        "fn": fn,
    }


def mae_on_true_hits(true_vals: ArrayLike, pred_vals: ArrayLike, true_hits: ArrayLike) -> float:
    """Mean |true - pred| over cells with a true hit (silent cells have no velocity or timing)."""
    t, p = _np(true_vals).astype(np.float64), _np(pred_vals).astype(np.float64)
    m = _np(true_hits) >= 0.5
    if not m.any():
        return float("nan")
    return float(np.mean(np.abs(t[m] - p[m])))


# -- pull-back metric and flatness ----------------------------------------------------------


def flatness(G: ArrayLike, eig_floor: float = 1e-12) -> dict[str, float]:
    """Flatness numbers of a batch of metrics G (n, d, d).

    Condition number (median, mean); CV of the magnification factor sqrt(det G), computed from
    the sum of log eigenvalues and rescaled before exponentiating so it cannot overflow; CV of
    tr G; and the normalised flatness error E||G/c^2 - I||_F^2 / d with c^2 = mean tr(G) / d.
    Eigenvalues below `eig_floor` times the largest of their point are clamped there.
    """
    g = torch.as_tensor(_np(G), dtype=torch.float64)
    if g.dim() == 2:
        g = g[None]
    n, d, _ = g.shape
    g = 0.5 * (g + g.transpose(1, 2))  # symmetric up to rounding; eigvalsh reads one triangle
    eig = torch.linalg.eigvalsh(g)
    top = eig[:, -1:].clamp_min(torch.finfo(torch.float64).tiny)
    eig = torch.maximum(eig, top * eig_floor)
    cond = (eig[:, -1] / eig[:, 0]).numpy()
    half_logdet = 0.5 * torch.log(eig).sum(dim=1)
    mf = torch.exp(half_logdet - half_logdet.max())  # CV is scale free
    tr = torch.diagonal(g, dim1=1, dim2=2).sum(dim=1)
    c2 = tr.mean() / d
    err = ((g / c2 - torch.eye(d, dtype=g.dtype)) ** 2).sum(dim=(1, 2)) / d
    return {
        "cond_median": float(np.median(cond)),
        "cond_mean": float(np.mean(cond)),
        "mf_cv": _cv(mf),
        "trace_cv": _cv(tr),
        "log_mf_mean": float(half_logdet.mean()),
        "log_mf_std": float(half_logdet.std(unbiased=False)),
        "flatness_error": float(err.mean()),
        # the mean is carried by a few far-stretched points (EXPERIMENTS E11): the median too
        "flatness_error_median": float(err.median()),
        "c2": float(c2),
        "n": n,
    }


def _cv(x: torch.Tensor) -> float:
    m = x.mean()
    return float(x.std(unbiased=False) / m) if m > 0 else float("nan")


# -- geodesics ------------------------------------------------------------------------------


def curve_length(
    f: Decoder, path: ArrayLike, subdivide: int = 1, batch_size: int = 4096
) -> torch.Tensor:
    """Sum of ||f(z_{k+1}) - f(z_k)|| along latent paths (n_points, d) or (pairs, n_points, d).

    `subdivide` > 1 inserts evenly spaced latent points within each segment, so the length
    approaches that of the decoded piecewise-linear latent curve.
    """
    p = torch.as_tensor(path).detach()
    single = p.dim() == 2
    if single:
        p = p[None]
    pairs, _, d = p.shape
    if subdivide > 1:
        t = torch.arange(subdivide, dtype=p.dtype, device=p.device) / subdivide
        seg = p[:, :-1, None, :] + t[None, None, :, None] * (p[:, 1:] - p[:, :-1])[:, :, None]
        p = torch.cat([seg.reshape(pairs, -1, d), p[:, -1:]], dim=1)
    y = _decode_batched(f, p.reshape(-1, d), batch_size).reshape(pairs, p.shape[1], -1)
    length = (y[:, 1:] - y[:, :-1]).double().norm(dim=-1).sum(dim=1)
    return length[0] if single else length


def _path_energy(f: Decoder, y_a: torch.Tensor, y_b: torch.Tensor, inner: torch.Tensor):
    """Per-pair discrete energy sum ||y_{k+1} - y_k||^2 with the decoded endpoints fixed."""
    pairs, m, d = inner.shape
    y = _decode(f, inner.reshape(-1, d)).reshape(pairs, m, -1)
    y = torch.cat([y_a[:, None], y, y_b[:, None]], dim=1)
    return ((y[:, 1:] - y[:, :-1]) ** 2).sum(dim=(1, 2))


def _geodesic_group(
    f: Decoder,
    z_a: torch.Tensor,
    z_b: torch.Tensor,
    n_points: int,
    steps: int,
    lr: float,
    method: str,
) -> torch.Tensor:
    line = _line(z_a, z_b, n_points).detach()
    with torch.no_grad():
        y_a, y_b = _decode(f, z_a), _decode(f, z_b)
    # Offsets from the line in units of the pair's distance, and each pair's energy relative to
    # its straight line: one learning rate and one tolerance then suit near and far pairs.
    scale = (z_b - z_a).norm(dim=1).clamp_min(1e-12)[:, None, None]
    base = line[:, 1:-1]
    u = torch.zeros_like(base, requires_grad=True)
    with torch.no_grad():
        e0 = _path_energy(f, y_a, y_b, base).clamp_min(1e-30)
    best_e = torch.ones_like(e0)  # the straight line, relative to itself
    best_u = torch.zeros_like(base)

    def closure() -> torch.Tensor:
        with torch.enable_grad():
            e = _path_energy(f, y_a, y_b, base + scale * u) / e0
            loss = e.sum()
            # autograd.grad, not backward(): the decoder's own .grad fields stay untouched.
            (u.grad,) = torch.autograd.grad(loss, u)
        with torch.no_grad():  # keep each pair's best iterate; optimisers can overshoot
            better = e.detach() < best_e
            best_e[better] = e.detach()[better]
            best_u[better] = u.detach()[better]
        return loss.detach()

    if method == "lbfgs":
        opt = torch.optim.LBFGS(
            [u],
            lr=lr,
            max_iter=steps,
            history_size=20,
            line_search_fn="strong_wolfe",
            tolerance_grad=1e-9,
            tolerance_change=1e-10,
        )
        opt.step(closure)
    elif method == "adam":
        opt = torch.optim.Adam([u], lr=lr)
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            closure()
            opt.step()
        closure()
    else:
        raise ValueError(f"method must be 'lbfgs' or 'adam', got {method!r}")
    inner = (base + scale * best_u).detach()
    return torch.cat([z_a[:, None], inner, z_b[:, None]], dim=1)


def discrete_geodesic(
    f: Decoder,
    z_a: ArrayLike,
    z_b: ArrayLike,
    n_points: int = 17,
    steps: int = 200,
    lr: float | None = None,
    method: str = "lbfgs",
    batch_pairs: int = 128,
    subdivide: int = 1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Discrete geodesics: minimise sum_k ||f(z_{k+1}) - f(z_k)||^2 over the interior points,
    endpoints fixed, starting from the straight line; many pairs optimised at once.

    Returns (path, length): (pairs, n_points, d) and (pairs,) for (pairs, d) endpoints, or
    (n_points, d) and a scalar for a single pair. `lr` is in units of the pair's latent distance
    (default 1 for L-BFGS, 0.01 for Adam). Per pair, the lowest-energy iterate is kept, so a
    path is never worse than the straight line in energy.
    """
    if n_points < 3:
        raise ValueError("a geodesic needs at least one interior point (n_points >= 3)")
    z_a, z_b, single = _pairs(z_a, z_b)
    if lr is None:
        lr = 1.0 if method == "lbfgs" else 1e-2
    paths = [
        _geodesic_group(
            f, z_a[i : i + batch_pairs], z_b[i : i + batch_pairs], n_points, steps, lr, method
        )
        for i in range(0, len(z_a), batch_pairs)
    ]
    path = torch.cat(paths)
    length = curve_length(f, path, subdivide=subdivide)
    return (path[0], length[0]) if single else (path, length)


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    x, y = x - x.mean(), y - y.mean()
    den = math.sqrt(float((x * x).sum() * (y * y).sum()))
    return float((x * y).sum() / den) if den > 0 else float("nan")


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks with ties averaged, as Spearman's correlation needs."""
    order = np.argsort(x, kind="mergesort")
    r = np.empty(len(x), np.float64)
    r[order] = np.arange(len(x), dtype=np.float64)
    _, inv, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.bincount(inv, weights=r)
    return sums[inv] / counts[inv]


def pearson(x: ArrayLike, y: ArrayLike) -> float:
    return _pearson(_np(x).astype(np.float64).ravel(), _np(y).astype(np.float64).ravel())


def spearman(x: ArrayLike, y: ArrayLike) -> float:
    return _pearson(_ranks(_np(x).ravel()), _ranks(_np(y).ravel()))


def geodesic_study(
    f: Decoder,
    z_a: ArrayLike,
    z_b: ArrayLike,
    n_points: int = 17,
    steps: int = 200,
    lr: float | None = None,
    method: str = "lbfgs",
    batch_pairs: int = 128,
    subdivide: int = 1,
) -> dict:
    """Straight line against discrete geodesic for each pair (DESIGN §5).

    ratio = straight length / geodesic length (1 = flat; larger = the straight line detours),
    both measured on the same discretisation. Also the Pearson and Spearman correlation between
    the Euclidean latent distance and the geodesic length (1 = latent distance is decoded
    distance up to scale). Per-pair arrays are returned alongside the summary numbers.
    """
    z_a, z_b, _ = _pairs(z_a, z_b)
    path, geo = discrete_geodesic(
        f, z_a, z_b, n_points, steps, lr, method, batch_pairs, subdivide=subdivide
    )
    straight = curve_length(f, _line(z_a, z_b, n_points), subdivide=subdivide)
    dist = (z_b - z_a).double().norm(dim=1)
    geo_np, straight_np, dist_np = _np(geo), _np(straight), _np(dist)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = straight_np / geo_np
    ok = np.isfinite(ratio)
    return {
        "ratio_mean": float(np.mean(ratio[ok])) if ok.any() else float("nan"),
        "ratio_median": float(np.median(ratio[ok])) if ok.any() else float("nan"),
        "pearson": pearson(dist_np, geo_np),
        "spearman": spearman(dist_np, geo_np),
        "n_pairs": int(ok.sum()),
        "ratios": ratio,
        "latent_distances": dist_np,
        "geodesic_lengths": geo_np,
        "straight_lengths": straight_np,
        "paths": path,
    }


__all__ = [
    "abrupt_jump_share",
    "curve_length",
    "discrete_geodesic",
    "flatness",
    "geodesic_study",
    "hit_changes",
    "hit_metrics",
    "hits_from_outputs",
    "interpolation_paths",
    "mae_on_true_hits",
    "pearson",
    "smoothness",
    "spearman",
    "step_sizes",
]
