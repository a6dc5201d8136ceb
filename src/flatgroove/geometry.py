"""Riemannian geometry of the decoder: Jacobians, the pull-back metric G(z) = J(z)ᵀJ(z), and
the flatness loss (Chen et al. 2020; DESIGN §4).

`nn.LSTM` on CPU has no fast forward-mode AD, so J·u products come from one of:
  * "fd"   central difference [f(z+εu) - f(z-εu)] / 2ε, batched: two plain forwards;
  * "dbl"  exact J·u by double backward (the vjp of a vjp), works through the LSTM;
  * "jvp"  torch.func.jvp with oneDNN off: exact, but slow on CPU (kept for checks).
benchmarks/bench_train.py measures their cost; "fd" is the training default.
The exact Jacobian (`jacobian`) is for evaluation and tests.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator

import torch

from flatgroove.drums import N_DRUMS
from flatgroove.groove import N_STEPS

Decoder = Callable[[torch.Tensor], torch.Tensor]  # z (n, d) -> y (n, D)
ESTIMATORS = ("fd", "dbl", "jvp")


def jvp(f: Decoder, z: torch.Tensor, u: torch.Tensor, method: str = "fd", eps: float = 1e-2,
        create_graph: bool = True) -> torch.Tensor:
    """J(z)·u for every row, (n, D). Differentiable in the decoder's parameters."""
    if method == "fd":
        # One batched call for both sides keeps the LSTM at one big matmul per step.
        n = z.shape[0]
        y = f(torch.cat([z + eps * u, z - eps * u]))
        return (y[:n] - y[n:]) / (2 * eps)
    if method == "dbl":
        zz = z if z.requires_grad else z.detach().requires_grad_(True)
        with torch.enable_grad():
            y = f(zz)
            w = torch.zeros_like(y, requires_grad=True)
            (g,) = torch.autograd.grad(y, zz, w, create_graph=True)
            (ju,) = torch.autograd.grad(g, w, u, create_graph=create_graph)
        return ju
    if method == "jvp":
        with no_mkldnn():
            return torch.func.jvp(f, (z,), (u,))[1]
    raise ValueError(f"unknown Jacobian estimator {method!r}; choose one of {ESTIMATORS}")


@contextlib.contextmanager
def no_mkldnn() -> Iterator[None]:
    """oneDNN's CPU LSTM has no forward-mode AD (and no vmap rule); the plain kernel has both."""
    with warnings.catch_warnings():
        # Toggling the flag warns about TF32 on Intel GPUs, which is irrelevant here.
        warnings.filterwarnings("ignore", message=".*TF32.*")
        # torch's own JVP decompositions are scripted on first use; not ours to act on.
        warnings.filterwarnings(
            "ignore", message=".*torch.jit.script.*", category=DeprecationWarning
        )
        with torch.backends.mkldnn.flags(enabled=False):
            yield



def jacobian(f: Decoder, z: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """Exact J(z), (n, D, d), by d double-backward passes per chunk of points."""
    out = []
    d = z.shape[1]
    for s in range(0, z.shape[0], chunk):
        zc = z[s : s + chunk].detach().requires_grad_(True)
        with torch.enable_grad():
            y = f(zc)
            w = torch.zeros_like(y, requires_grad=True)
            (g,) = torch.autograd.grad(y, zc, w, create_graph=True)
            cols = []
            for k in range(d):
                e = torch.zeros_like(zc)
                e[:, k] = 1.0
                (c,) = torch.autograd.grad(g, w, e, retain_graph=k < d - 1)
                cols.append(c)
        out.append(torch.stack(cols, dim=-1).detach())
    return torch.cat(out)


def metric(f: Decoder, z: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """Exact pull-back metric G(z) = JᵀJ, (n, d, d)."""
    j = jacobian(f, z, chunk)
    return j.transpose(1, 2) @ j


def channel_trace_shares(j: torch.Tensor) -> dict[str, float]:
    """Where the metric lives: each output channel's share of Σ tr G over the points, from
    J (n, 864, d) of y = [p, p·v, p·o] (32 steps × 3 channels × 9 drums). A decoder that
    fills the directions its hits leave collapsed with offsets, which cost next to nothing in
    the reconstruction, shows it here (EXPERIMENTS E13)."""
    sq = j.detach().double().pow(2).view(j.shape[0], N_STEPS, 3, N_DRUMS, j.shape[-1]).sum((0, 1, 3, 4))
    sq = sq / sq.sum().clamp_min(1e-300)
    return dict(zip(("hits", "velocities", "offsets"), sq.tolist()))


def probes(shape: tuple[int, ...], generator: torch.Generator | None = None,
           device: torch.device | str = "cpu") -> torch.Tensor:
    """Rademacher probes: isotropic (E[uuᵀ] = I) with lower variance than Gaussians."""
    r = torch.randint(0, 2, shape, generator=generator, device=device)
    return r.to(torch.float32) * 2 - 1


def fd_inputs(z: torch.Tensor, n_probes: int, eps: float = 1e-2,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Probes u (k, n, d) and the 2·k·n decoder inputs [z + εu; z − εu] whose outputs give
    J·u by central differences. Lets a caller decode them in one call with other rows."""
    n, d = z.shape
    u = probes((n_probes, n, d), generator, z.device)
    zz, uu = z.repeat(n_probes, 1), u.reshape(-1, d)
    return u, torch.cat([zz + eps * uu, zz - eps * uu])


def flatness_from_jvp(ju: torch.Tensor, u: torch.Tensor, c2: torch.Tensor | None = None
                      ) -> dict[str, torch.Tensor]:
    """Unbiased random-probe estimates from J·u products ju (k, n, D) of probes u (k, n, d):

        tr G             = E ‖Ju‖²
        ‖G - c²I‖²_F     = E[((Ju)·(Jv) - c² u·v)²],  u, v independent,

    averaged over all ordered pairs of the k probes (a U-statistic, still unbiased).
    c² defaults to the batch mean of tr(G)/d, held constant (stop-gradient).
    Returns per-point `trace`, `frob` and the normalised `loss` = mean ‖G/c² - I‖²_F / d.
    """
    k, _, d = u.shape
    if k < 2:
        raise ValueError("n_probes must be >= 2 (the Frobenius estimate needs two independent probes)")
    trace = (ju**2).sum(-1).mean(0)  # (n,)
    if c2 is None:
        c2 = (trace.mean() / d).detach()
    dots = torch.einsum("kni,lni->kln", ju, ju)  # (Ju_k)·(Ju_l)
    udots = torch.einsum("kni,lni->kln", u, u)
    off = ~torch.eye(k, dtype=torch.bool, device=u.device)
    frob = ((dots - c2 * udots) ** 2)[off].mean(0)  # (n,)
    # Dividing by c⁴ makes the loss blind to the decoder's overall scale, so it cannot be
    # lowered by shrinking the output, and its weight means the same for any data.
    loss = frob.mean() / (c2**2 + 1e-12) / d
    return {"trace": trace, "frob": frob, "c2": c2, "loss": loss}


def flatness_terms(f: Decoder, z: torch.Tensor, n_probes: int = 2, method: str = "fd",
                   eps: float = 1e-2, generator: torch.Generator | None = None,
                   c2: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """`flatness_from_jvp` at each z (n, d) with J·u from the chosen estimator."""
    if n_probes < 2:
        raise ValueError("n_probes must be >= 2 (the Frobenius estimate needs two independent probes)")
    n, d = z.shape
    u = probes((n_probes, n, d), generator, z.device)
    ju = jvp(f, z.repeat(n_probes, 1), u.reshape(-1, d), method, eps).view(n_probes, n, -1)
    return flatness_from_jvp(ju, u, c2)


def basis_fd_inputs(z: torch.Tensor, eps: float = 1e-2) -> torch.Tensor:
    """The 2·d·n decoder inputs [z + εe_k; z − εe_k] (k-major) whose outputs give every column
    of J(z) by central differences: the exact metric at a few points, in one decoder call."""
    n, d = z.shape
    e = torch.eye(d, dtype=z.dtype, device=z.device)
    zz = z[None].expand(d, n, d) + eps * e[:, None, :]
    zm = z[None].expand(d, n, d) - eps * e[:, None, :]
    return torch.cat([zz.reshape(-1, d), zm.reshape(-1, d)])


def metric_from_fd(y: torch.Tensor, n: int, d: int, eps: float = 1e-2) -> torch.Tensor:
    """G = JᵀJ (n, d, d) from the outputs y (2·d·n, D) of `basis_fd_inputs`."""
    half = d * n
    j = ((y[:half] - y[half:]) / (2 * eps)).view(d, n, -1)  # column k of J at point i
    return torch.einsum("kni,lni->nkl", j, j)


def stein_flatness(G: torch.Tensor, c2: torch.Tensor | None = None, jitter: float = 1e-6
                   ) -> dict[str, torch.Tensor]:
    """Scale-free distance of metrics G (n, d, d) from c²I, in log-eigenvalue terms:

        L = [tr(G/c²) − log det(G/c²) − d] / d = mean_i (x_i − log x_i − 1),  x_i = λ_i/c²,

    (Stein's loss; the KL between N(0, c²I) and N(0, G), ×2/d). Unlike ‖G/c² − I‖²_F / d,
    which charges a collapsed direction (x → 0) at most 1 and a stretched one (x = 5) 16, this
    grows without bound as a direction collapses (x = 1e-4 costs 8.2, x = 5 costs 2.4), so it
    sees the near-null directions that make cond(G) large. c² defaults to the batch mean of
    tr G / d, held constant, so it also pulls every point's scale to one c²: flat, not only
    conformal. c² may also be one per point, shape (n, 1, 1): each measured against its own
    scale, that point's term is conformal. log det by Cholesky: no eigen-decomposition, stable
    gradients."""
    d = G.shape[-1]
    trace = G.diagonal(dim1=-2, dim2=-1).sum(-1)
    if c2 is None:
        c2 = (trace.mean() / d).detach()
    eye = torch.eye(d, dtype=G.dtype, device=G.device)
    gn = G / (c2 + 1e-20) + jitter * eye
    logdet = 2 * torch.linalg.cholesky(gn).diagonal(dim1=-2, dim2=-1).log().sum(-1)
    per = (gn.diagonal(dim1=-2, dim2=-1).sum(-1) - logdet - d) / d
    return {"trace": trace, "c2": c2, "loss": per.mean(), "per_point": per}


def line_points(z: torch.Tensor, pairs: int, points: int,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """(pairs·points, d): `points` evenly spaced points (ends included) on straight lines
    between `pairs` random pairs of different rows of z, pair-major."""
    m, d = z.shape
    if m < 2:
        raise ValueError("need at least two encodings for a line")
    i = torch.randint(0, m, (pairs,), generator=generator)
    j = (i + torch.randint(1, m, (pairs,), generator=generator)) % m
    i, j = i.to(z.device), j.to(z.device)
    t = torch.linspace(0, 1, points, dtype=z.dtype, device=z.device)
    return (z[i][:, None] + t[None, :, None] * (z[j] - z[i])[:, None]).reshape(-1, d)


def path_evenness_loss(p: torch.Tensor, low: float = 0.2, high: float = 0.8,
                       eps: float = 1e-2) -> torch.Tensor:
    """How unevenly straight lines move in what is heard: hit probabilities p (pairs, points,
    cells) along lines; per step s_k = Σ_cells |Δ clip(p, low, high)|, which is (high − low)
    times the expected number of hits that flip at step k under a threshold pattern spread over
    [low, high] (flatgroove.model.decoding). Returns the mean over pairs of s's squared CV:
    0 when every step changes what is heard by the same amount."""
    return _steps_cv2(p.clamp(low, high), eps)


def soft_heard(p: torch.Tensor, threshold: float, tau: float) -> torch.Tensor:
    """Hits as heard at a threshold, made differentiable: σ((p − threshold)/τ)."""
    return torch.sigmoid((p - threshold) / tau)


def path_heard_evenness_loss(p: torch.Tensor, threshold: float = 0.35, tau: float = 0.05,
                             eps: float = 1e-2, hold_ends: bool = False, drums: int = 0) -> torch.Tensor:
    """path_evenness_loss on the hits as heard: soft hits σ((p − threshold)/τ) at the decoding
    rule's threshold, so s_k is ≈ the number of hits that flip at step k (goal 2's heard CV
    itself, per pair, squared). The band term counts flips under a spread of thresholds and
    sees a cell that hovers inside the band (and a flicker at the threshold) as smooth.
    hold_ends: no gradient through the lines' ends (reconstructions: the term may only place
    the inner points' changes, not move the ends towards each other).
    drums > 0 (cells in (step, drum) order, drum fastest): only the within-drum part of the
    squared CV, Σ_d Var_k(s_k,d) / mean_k(s_k)², s_k,d one drum's flips at step k. The flat
    models' drums already cross at complementary steps (negative covariance across drums); what
    is left over chance is one drum's cells crossing together (EXPERIMENTS E133)."""
    q = _held(soft_heard(p, threshold, tau), hold_ends)
    if not drums:
        return _steps_cv2(q, eps)
    per_drum = _step_changes(q, drums)  # (pairs, steps, drums)
    mean = per_drum.sum(-1).mean(1)
    return (per_drum.var(1, unbiased=False).sum(-1) / (mean**2 + eps)).mean()


def _held(q: torch.Tensor, hold_ends: bool) -> torch.Tensor:
    """q (pairs, points, cells) with its first and last points detached when hold_ends."""
    if not hold_ends:
        return q
    return torch.cat([q[:, :1].detach(), q[:, 1:-1], q[:, -1:].detach()], 1)


def path_heard_pace_loss(p: torch.Tensor, threshold: float = 0.35, tau: float = 0.05,
                         eps: float = 1.0, hold_ends: bool = False) -> torch.Tensor:
    """path_heard_evenness_loss with each step's heard flips s_k charged against an even share
    of the ends' heard distance, D/K (D = Σ_cells |q_end − q_start|, detached), not against the
    line's own mean: mean over pairs of mean_k (s_k − D/K)² / ((D/K)² + eps). Σ s_k ≥ D, equal
    when every cell moves one way, so a cell that sounds for a few steps and falls silent again
    (flicker) is charged here, where the squared CV rewards it by raising the mean: the CV term
    placed the changes better than chance only by putting flicker back (EXPERIMENTS E107).
    eps (cells²) keeps a line between near-identical ends from dividing by nothing. With the
    ends free it brings them nearer each other (EXPERIMENTS E117–E118: F1 −0.026 at 128);
    hold_ends as path_heard_evenness_loss."""
    q = _held(soft_heard(p, threshold, tau), hold_ends)
    s = _step_changes(q)
    pace = ((q[:, -1] - q[:, 0]).abs().sum(-1) / s.shape[1]).detach()  # (pairs,)
    return (((s - pace[:, None]) ** 2).mean(1) / (pace**2 + eps)).mean()


def _step_changes(q: torch.Tensor, drums: int = 0) -> torch.Tensor:
    """Σ_cells |Δq| per step, (pairs, steps); q (pairs, points, cells). drums > 0 (cells in
    (step, drum) order, drum fastest): per drum, (pairs, steps, drums)."""
    d = (q[:, 1:] - q[:, :-1]).abs()
    if drums:
        return d.view(*d.shape[:2], -1, drums).sum(2)
    return d.sum(-1)


def _steps_cv2(q: torch.Tensor, eps: float) -> torch.Tensor:
    """Mean over pairs of the squared CV of Σ_cells |Δq| per step; q (pairs, points, cells)."""
    s = _step_changes(q)
    mean = s.mean(1)
    return (s.var(1, unbiased=False) / (mean**2 + eps)).mean()


def path_density_loss(p: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """How far straight lines' inner points stray from their ends' density: hit probabilities
    p (pairs, points, cells) along lines; the expected hit count c(t) = Σ p against the line
    between the ends' counts (held fixed: the ends are reconstructions, not this term's), as a
    mean squared relative excess over the inner points. A midpoint that sounds both ends'
    grooves at once (the flat models' midpoints carry 1.2× their ends' hits) is far from any
    real groove (EXPERIMENTS E33)."""
    c = p.sum(-1)
    t = torch.linspace(0, 1, p.shape[1], dtype=p.dtype, device=p.device)
    ends = c[:, [0, -1]].detach()
    line = ends[:, :1] + t * (ends[:, 1:] - ends[:, :1])
    return (((c - line) / (line + eps)) ** 2)[:, 1:-1].mean()


def path_realism_loss(p: torch.Tensor, bank: torch.Tensor, tau: float = 1.0,
                      balance: float = 0.0) -> torch.Tensor:
    """How far straight lines' inner points lie from real grooves: hit probabilities p
    (pairs, points, cells), bank (n, cells) of training windows' hits (0/1). Per inner point the
    expected Hamming distance to each bank window, Σ p(1 − w) + (1 − p)w, soft-minimised over
    the bank (τ cells), averaged, in cells. Goal 3 measures the decoded midpoint's distance to
    its nearest training window; the density term matches only its hit count.

    balance β > 0 charges each window, for the point at t, β·|(1 − t)·d(w, A) − t·d(w, B)|
    more (A, B the line's ends, held fixed): the point is drawn to real grooves that lie where
    it lies between its ends (a midpoint to one as far from A as from B). Drawn to the nearest
    real groove alone, a point steps towards whichever end that groove is nearer, and the line's
    changes bunch (EXPERIMENTS E74b, E75)."""
    inner = p[:, 1:-1]
    w = bank.to(inner.dtype)
    d = inner.sum(-1, keepdim=True) + w.sum(-1) - 2 * inner @ w.T  # (pairs, inner points, n)
    if balance > 0:
        ends = p[:, [0, -1]].detach()
        de = ends.sum(-1, keepdim=True) + w.sum(-1) - 2 * ends @ w.T  # (pairs, 2, n)
        t = torch.linspace(0, 1, p.shape[1], dtype=p.dtype, device=p.device)[1:-1, None]
        d = d + balance * ((1 - t) * de[:, :1] - t * de[:, 1:]).abs()
    return (-tau * torch.logsumexp(-d / tau, dim=-1)).mean()


def nearest_halfway(left: torch.Tensor, right: torch.Tensor, bank: torch.Tensor,
                    priority: torch.Tensor) -> torch.Tensor:
    """Per row, the groove halfway between left and right (each (rows, cells), 0/1) that lies
    nearest a bank window (n, cells): it holds left's value where the two agree and right's on
    h = ⌊D/2⌋ or ⌈D/2⌉ of the D cells where they differ, chosen as the nearest window w* has them
    (w* minimises #{agree, w ≠ left} + the distance of k_w to {⌊D/2⌋ … ⌈D/2⌉}, as
    evaluate.heard.even_midpoint_bound); where w* takes right's value on more or fewer cells
    than that, the cells of lowest `priority` (cells,) are moved. Every input is 0/1 (floating
    point) and nothing here is differentiated."""
    w = bank.to(left.device, left.dtype)
    diff = (left != right).to(left.dtype)
    # per row and window: the differing cells where w agrees with right, the agreeing ones where
    # w differs from left
    k = (diff * right) @ w.T + (diff * (1 - right)) @ (1 - w).T
    common = ((1 - diff) * (1 - left)) @ w.T + ((1 - diff) * left) @ (1 - w).T
    d = diff.sum(-1, keepdim=True)
    lo, hi = torch.floor(d / 2), torch.ceil(d / 2)
    best = (common + (lo - k).clamp_min(0) + (k - hi).clamp_min(0)).argmin(-1)  # (rows,)
    wb = w[best]
    takes_r = diff * (wb == right).to(left.dtype)  # the differing cells w* has as right has them
    k_best = takes_r.sum(-1)
    excess = (k_best - k_best.clamp(lo[:, 0], hi[:, 0])).long()  # > 0: too many right cells
    pr = priority.to(left.device, left.dtype).expand_as(diff)
    big = pr.max() + 1
    for r in torch.nonzero(excess).flatten().tolist():
        e = int(excess[r])
        if e > 0:  # back to left on the lowest-priority cells that took right's value
            key = torch.where(takes_r[r] > 0, pr[r], big)
            takes_r[r, torch.topk(key, e, largest=False).indices] = 0
        else:  # right's value on the lowest-priority differing cells that kept left's
            key = torch.where((diff[r] > 0) & (takes_r[r] == 0), pr[r], big)
            takes_r[r, torch.topk(key, -e, largest=False).indices] = 1
    return left * (1 - takes_r) + right * takes_r


def own_order_halfway(left: torch.Tensor, right: torch.Tensor, own_time: torch.Tensor,
                      priority: torch.Tensor) -> torch.Tensor:
    """Per row, the groove halfway between left and right (each (rows, cells), 0/1) that moves
    the ⌊D/2⌋ differing cells the decoder itself moves first: those of largest own_time (rows,
    cells), the share of the line's inner points at which the cell already sounds as at its
    far end (path_hybrid_loss); ties go to the higher `priority` (cells,). Nothing here is
    differentiated."""
    diff = left != right
    key = torch.where(diff, own_time + 1e-4 * priority.to(own_time), torch.full_like(own_time, -1.0))
    rank = torch.argsort(torch.argsort(key, dim=-1, descending=True, stable=True), dim=-1, stable=True)
    takes_r = (diff & (rank < torch.div(diff.sum(-1, keepdim=True), 2, rounding_mode="floor"))).to(left.dtype)
    return left * (1 - takes_r) + right * takes_r


def hybrid_chain_targets(a: torch.Tensor, b: torch.Tensor, bank: torch.Tensor, points: int,
                         priority: torch.Tensor, own_time: torch.Tensor | None = None,
                         bank_levels: int = 0) -> torch.Tensor:
    """Targets for a straight line's points from groove a to groove b (each (pairs, cells),
    0/1) that are even, monotone and near real grooves: the midpoint is the halfway groove
    nearest the bank (nearest_halfway), each quarter point the one halfway between its
    neighbours, and so on (points − 1 a power of two). Each cell flips at most once along the
    chain, each halving flips half of what is left (⌊⌋ or ⌈⌉), so the changes per step differ by at
    most one cell; and an even line's midpoint can lie this near the data (a median of 4
    cells on validation, real windows' own 14; docs/results/probes/even_midpoint_bound.py).
    bank_levels k > 0 (with own_time (pairs, cells)): the first k halvings as above, every
    deeper one by the decoder's own order (own_order_halfway): the bank decides the midpoint's
    groove, the decoder only the even timing of the changes it already makes (EXPERIMENTS E127).
    Returns (pairs, points, cells), ends a and b."""
    steps = points - 1
    if steps < 2 or steps & (steps - 1):
        raise ValueError(f"a hybrid chain needs 2^k + 1 points (k ≥ 1: an inner point), got {points}")
    out = torch.empty(a.shape[0], points, a.shape[1], dtype=a.dtype, device=a.device)
    out[:, 0], out[:, -1] = a, b
    if bank_levels and own_time is None:
        raise ValueError("bank_levels > 0 needs the decoder's own_time")
    step, level = steps, 0
    while step > 1:
        lo = torch.arange(0, steps, step, device=a.device)
        left, right = out[:, lo].reshape(-1, a.shape[1]), out[:, lo + step].reshape(-1, a.shape[1])
        if bank_levels and level >= bank_levels:
            own = own_time[:, None].expand(-1, len(lo), -1).reshape(-1, a.shape[1])
            half = own_order_halfway(left, right, own, priority)
        else:
            half = nearest_halfway(left, right, bank, priority)
        out[:, lo + step // 2] = half.view(a.shape[0], len(lo), -1)
        step, level = step // 2, level + 1
    return out


def path_hybrid_loss(p: torch.Tensor, bank: torch.Tensor, priority: torch.Tensor,
                     threshold: float = 0.4, tau: float = 0.0, bank_levels: int = 0) -> torch.Tensor:
    """Goal 3's realism meant not to unsettle goal 2 (EXPERIMENTS E83–E86): hit probabilities p
    (pairs, points, cells) along straight lines are drawn, at every inner point, to the hybrid
    chain (hybrid_chain_targets) between the line's own ends as heard (p ≥ threshold, detached;
    the trainer passes the centre of the evenness term's band): expected Hamming distance
    Σ p(1 − h) + (1 − p)h, in cells, averaged. The realism term draws each point to a real
    groove, which also differs from both ends where they agree; a hybrid only ever flips a cell
    of A ⊕ B, once, at an even pace. (Measured: it sits on the realism term's trade, E83–E86.)
    tau > 0 measures the distance on the hits as heard, soft hits σ((p − threshold)/τ) (E104): in
    p, a cell heard right still pays its distance from 0 or 1, and one heard wrong by a hair pays
    little more than one heard right by a hair; heard, the charge is where the ear hears it.
    bank_levels k > 0: the chain's halvings below the k-th follow the line's own order (each
    cell's own time: the share of inner points heard, softly, as at the far end), so the term
    asks the decoder to even out the timing of its changes, not to reorder them (E127)."""
    with torch.no_grad():
        ends = (p[:, [0, -1]] >= threshold).to(p.dtype)
        own = None
        if bank_levels:
            q = soft_heard(p[:, 1:-1], threshold, tau or 0.05)
            own = (q - ends[:, :1]).abs().mean(1)  # (pairs, cells)
        target = hybrid_chain_targets(ends[:, 0], ends[:, 1], bank, p.shape[1], priority, own, bank_levels)
    inner, h = p[:, 1:-1], target[:, 1:-1]
    if tau > 0:
        inner = soft_heard(inner, threshold, tau)
    return (inner * (1 - h) + (1 - inner) * h).sum(-1).mean()


def exact_flatness(G: torch.Tensor, c2: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Exact counterparts of `flatness_terms` from metrics G (n, d, d)."""
    d = G.shape[-1]
    trace = G.diagonal(dim1=-2, dim2=-1).sum(-1)
    if c2 is None:
        c2 = trace.mean() / d
    eye = torch.eye(d, dtype=G.dtype, device=G.device)
    frob = ((G - c2 * eye) ** 2).sum((-2, -1))
    return {"trace": trace, "frob": frob, "c2": c2, "loss": frob.mean() / c2**2 / d}


def mixup(z: torch.Tensor, n: int, eta: float = 0.2, generator: torch.Generator | None = None,
          data_share: float = 0.0) -> torch.Tensor:
    """n latent mixups (1-α) z_i + α z_j of two different rows, α ~ U(-η, 1+η): points between
    and a little beyond the data, where interpolation paths run. The first round(n·data_share)
    points are rows of z themselves (α = 0): the data encodings, where grooves are decoded."""
    m = z.shape[0]
    if m < 2:
        raise ValueError("need at least two encodings to mix")
    if not 0.0 <= data_share <= 1.0:
        raise ValueError(f"data_share must be in [0, 1], got {data_share}")
    i = torch.randint(0, m, (n,), generator=generator)
    j = (i + torch.randint(1, m, (n,), generator=generator)) % m  # j != i
    a = torch.rand(n, 1, generator=generator, dtype=z.dtype) * (1 + 2 * eta) - eta
    a[: round(n * data_share)] = 0.0
    i, j, a = i.to(z.device), j.to(z.device), a.to(z.device)  # a CPU generator serves any device
    return (1 - a) * z[i] + a * z[j]


def magnification(G: torch.Tensor) -> torch.Tensor:
    """√det G per point, computed from log-eigenvalues for stability."""
    ev = torch.linalg.eigvalsh(G).clamp_min(1e-30)
    return torch.exp(0.5 * ev.log().sum(-1))
