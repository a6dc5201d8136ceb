"""What a listener hears along a path: metrics on decoded Grooves (hits by the model's decoding
rule, their velocities), not on the network's outputs (DESIGN §5, "heard first").

Model-agnostic: every function takes arrays of decoded paths, hits (pairs, points, 32, 9) in
{0, 1} and velocities of the same shape, so the same numbers come out for every variant and
decoding rule.

- hit-change CV: per pair, the number of cells that flip at each step; std/mean over the steps
  (0 = perfectly even), and max/mean.
- bunching ratio: that CV over the CV the same changes would have if each fell on a uniformly
  random step (Monte Carlo, seeded). Pairs with few changes have a high CV from counting noise
  alone; the ratio removes that bias (1 = as even as chance, < 1 more even than chance).
- abrupt-pair share: pairs where one step carries more than a third of all changes.
- grouped-flip share: flips that come in groups of >= 4 (same drum, same direction, same step).
- where the unevenness lives: per pair, the variance of the changes per step split into each
  drum's own variance (one drum's cells changing together) and the covariance across drums
  (different drums changing at the same steps), against the within-drum variance of the same
  flips on random steps (EXPERIMENTS "Where the bunching lives").
- the same CV, bunching and abrupt share on the velocity-weighted change Σ|Δ(hit·velocity)|.
- midpoint: hits at t = 0.5 over the mean of the ends; Hamming distance to the nearest training
  window, against real windows' own.
"""

from __future__ import annotations

import math

import numpy as np

GROUP = 4  # flips of one drum, one direction, at one step, that count as a group


def _cells(a: np.ndarray) -> np.ndarray:
    """(pairs, points, cells) float64 from (pairs, points, 32, 9) or (pairs, points, cells)."""
    a = np.asarray(a, dtype=np.float64)
    if a.ndim < 3:
        raise ValueError(f"paths must be (pairs, points, ...), got shape {a.shape}")
    return a.reshape(a.shape[0], a.shape[1], -1)


def _cv(s: np.ndarray) -> np.ndarray:
    """Per row std/mean (population std); NaN where the mean is 0."""
    m = s.mean(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(m > 0, s.std(axis=1) / np.where(m > 0, m, 1), np.nan)


def random_placement_cv(change: np.ndarray, draws: int = 64, seed: int = 0) -> np.ndarray:
    """Per pair, the expected CV of the step totals if every nonzero per-cell change (step,
    cell) of that pair fell on a uniformly random step instead: (pairs,). change is
    (pairs, steps, cells) of magnitudes >= 0. Monte Carlo with a fixed seed."""
    rng = np.random.default_rng(seed)
    pairs, steps, _ = change.shape
    out = np.full(pairs, np.nan)
    for i in range(pairs):
        m = change[i][change[i] > 0]
        if m.size == 0:
            continue
        where = rng.integers(0, steps, (draws, m.size)) + steps * np.arange(draws)[:, None]
        tot = np.bincount(where.ravel(), np.tile(m, draws), minlength=draws * steps)
        out[i] = np.nanmean(_cv(tot.reshape(draws, steps)))
    return out


def _evenness(change: np.ndarray, prefix: str, seed: int) -> dict[str, float]:
    """CV, max/mean, bunching and abrupt share of per-(pair, step, cell) change magnitudes."""
    s = change.sum(axis=2)  # (pairs, steps)
    moving = s.sum(axis=1) > 0
    s, change = s[moving], change[moving]
    if not len(s):
        nan = float("nan")
        return {f"{prefix}cv": nan, f"{prefix}max_over_mean": nan, f"{prefix}bunching": nan,
                f"{prefix}abrupt_share": nan, f"{prefix}n_pairs": 0}
    cv = _cv(s)
    ref = random_placement_cv(change, seed=seed)
    mean = s.mean(axis=1)
    return {
        f"{prefix}cv": float(np.nanmean(cv)),
        f"{prefix}max_over_mean": float(np.mean(s.max(axis=1) / mean)),
        # A ratio of means: stable where single pairs have a tiny reference.
        f"{prefix}bunching": float(np.nanmean(cv) / np.nanmean(ref)),
        f"{prefix}random_cv": float(np.nanmean(ref)),
        f"{prefix}abrupt_share": float(np.mean(s.max(axis=1) > s.sum(axis=1) / 3)),
        f"{prefix}n_pairs": len(s),
    }


def grouped_flip_share(hits: np.ndarray, group: int = GROUP) -> float:
    """Share of all flips that come in groups of >= `group` flips of the same drum in the same
    direction at the same step. hits (pairs, points, 32, 9) binary."""
    h = np.asarray(hits, dtype=np.int8)
    d = np.diff(h, axis=1)  # (pairs, steps, 32, 9) in {-1, 0, 1}
    on = (d > 0).sum(axis=2)  # (pairs, steps, 9): onsets per drum and step
    off = (d < 0).sum(axis=2)
    total = on.sum() + off.sum()
    if total == 0:
        return float("nan")
    grouped = on[on >= group].sum() + off[off >= group].sum()
    return float(grouped / total)


def drum_variance_split(hits: np.ndarray) -> dict[str, float]:
    """Mean over pairs of the changes-per-step variance, split: Σ_d Var_k(s_k,d) (each drum's
    own, `hit_var_within_drum`), its value for the same flips on uniformly random steps
    (Σ_d n_d/K · (1 − 1/K), `hit_var_within_drum_random`), and the rest, the covariance across
    drums (`hit_cov_across_drums`, 0 on random steps). hits (pairs, points, 32, 9) binary."""
    h = np.asarray(hits, dtype=np.float64)
    per_drum = np.abs(np.diff(h, axis=1)).sum(axis=2)  # (pairs, steps, drums)
    steps = per_drum.shape[1]
    within = per_drum.var(axis=1).sum(axis=1)
    total = per_drum.sum(axis=2).var(axis=1)
    n = per_drum.sum(axis=1)  # (pairs, drums)
    return {"hit_var_within_drum": float(within.mean()),
            "hit_var_within_drum_random": float((n / steps * (1 - 1 / steps)).sum(axis=1).mean()),
            "hit_cov_across_drums": float((total - within).mean())}


def path_evenness(hits: np.ndarray, velocities: np.ndarray, seed: int = 0) -> dict[str, float]:
    """Every evenness figure of decoded paths: hits and velocities (pairs, points, 32, 9)."""
    h = _cells(hits)
    hv = h * _cells(velocities)
    flips = np.abs(np.diff(h, axis=1))
    out = _evenness(flips, "hit_", seed)
    out["changes_per_pair"] = float(flips.sum(axis=(1, 2)).mean())
    out["grouped_flip_share"] = grouped_flip_share(hits)
    out.update(drum_variance_split(hits))
    out.update(_evenness(np.abs(np.diff(hv, axis=1)), "vel_", seed))
    return out


def nearest_hamming(query: np.ndarray, reference: np.ndarray, chunk: int = 512,
                    exclude_self: bool = False, index: bool = False):
    """Per query groove, the Hamming distance (cells) of its hits to the nearest reference
    groove. query (n, 32, 9), reference (m, 32, 9), both binary. With exclude_self, a query
    that is itself in the reference (distance 0 at the same index) is matched to the next.
    With index, (distances, the nearest reference's index per query)."""
    q = np.asarray(query, np.float32).reshape(len(query), -1)
    r = np.asarray(reference, np.float32).reshape(len(reference), -1)
    rn = r.sum(1)
    out = np.empty(len(q))
    at = np.empty(len(q), np.int64)
    for s in range(0, len(q), chunk):
        qc = q[s : s + chunk]
        dist = qc.sum(1)[:, None] + rn[None, :] - 2 * qc @ r.T
        if exclude_self:
            idx = np.arange(s, s + len(qc))
            dist[np.arange(len(qc)), idx] = np.inf
        at[s : s + chunk] = dist.argmin(1)
        out[s : s + chunk] = dist[np.arange(len(qc)), at[s : s + chunk]]
    return (out, at) if index else out


def real_nn_reference(real_hits: np.ndarray, train_hits: np.ndarray) -> float:
    """Goal 3's line: the median distance (cells) of the split's real windows to their nearest
    training window, over every window of the split. (A slice such as the first 500 is not a
    sample: the split's files come in drummer-and-session order, and on test the first 500
    gave 18 cells where all 2,084 give 15.)"""
    return float(np.median(nearest_hamming(real_hits, train_hits)))


def even_midpoint_bound(a: np.ndarray, b: np.ndarray, train: np.ndarray, share: float = 0.5) -> float:
    """The least Hamming distance (cells) to a training window of any groove that an even,
    monotone line from a to b could hold after flipping a share of the D cells where a and b
    differ (⌊share·D⌋ or ⌈share·D⌉ of them, and none of the others): goal 3's midpoint distance
    for a line that meets goal 2 perfectly can be no smaller. Exact: such a hybrid holds a's
    value where a = b and b's on h cells of a ⊕ b of its choosing, so its distance to w is
    #{a = b, w ≠ a} + |k_w − h|, k_w the cells of a ⊕ b where w agrees with b, least over both
    h. a, b (cells,) and train (m, cells), 0/1 (docs/results/probes/even_midpoint_bound.py)."""
    a, b = np.asarray(a).reshape(-1), np.asarray(b).reshape(-1)
    train = np.asarray(train).reshape(len(train), -1)
    diff = a != b
    k = (train[:, diff] == b[diff]).sum(1)
    common = (train[:, ~diff] != a[~diff]).sum(1)
    lo, hi = math.floor(share * int(diff.sum())), math.ceil(share * int(diff.sum()))
    return float((common + np.maximum(lo - k, 0) + np.maximum(k - hi, 0)).min())


def random_hybrid(a: np.ndarray, b: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """even_midpoint_bound's chance reference: a with round(share·D) of the D cells where a and
    b differ taken from b, which ones drawn from rng, and nothing else changed. a, b (cells,), 0/1."""
    a, b = np.asarray(a).reshape(-1), np.asarray(b).reshape(-1)
    diff = np.flatnonzero(a != b)
    flip = rng.choice(diff, round(share * len(diff)), replace=False)
    out = a.copy()
    out[flip] = b[flip]
    return out


def midpoint_figures(hits: np.ndarray, train_hits: np.ndarray | None = None,
                     real_ends: np.ndarray | None = None, real_nn: float | None = None) -> dict:
    """Hits at the middle point of each path against its ends, and the midpoint's distance to
    the nearest training window. hits (pairs, points, 32, 9); real_ends (pairs, 2, 32, 9) the
    true grooves at the ends (for the decoded-vs-real end distance)."""
    h = np.asarray(hits, np.float32)
    mid = h[:, h.shape[1] // 2]
    ends = 0.5 * (h[:, 0].sum((1, 2)) + h[:, -1].sum((1, 2)))
    out = {"mid_density_ratio": float(mid.sum() / max(ends.sum(), 1e-9)),
           "end_distance": float(np.abs(h[:, 0] - h[:, -1]).sum((1, 2)).mean())}
    if real_ends is not None:
        re = np.asarray(real_ends, np.float32)
        out["real_end_distance"] = float(np.abs(re[:, 0] - re[:, 1]).sum((1, 2)).mean())
        out["end_distance_ratio"] = out["end_distance"] / max(out["real_end_distance"], 1e-9)
    if train_hits is not None:
        out["mid_nn_hamming"] = float(np.median(nearest_hamming(mid, train_hits)))
        if real_nn is not None:
            out["real_nn_hamming"] = float(real_nn)
    return out
