"""Priors: the standard normal, and the VHP hierarchical prior (Klushyn et al. 2019)

    p(z) = ∫ N(z; mu(zeta), sigma²(zeta)) N(zeta; 0, I) dzeta,

learned with a variational q(zeta|z). log p(z) is estimated by importance sampling with
q(zeta|z) as proposal (an IWAE bound that tightens with more samples).
"""

from __future__ import annotations

import math

import torch
from torch import nn

LOG2PI = math.log(2 * math.pi)
LOGVAR_MIN, LOGVAR_MAX = -10.0, 4.0  # the prior's conditionals' log-variances stay in this range


def log_normal(x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Sum over the last axis of log N(x; mu, exp(logvar))."""
    return -0.5 * (LOG2PI + logvar + (x - mu) ** 2 * torch.exp(-logvar)).sum(-1)


def log_std_normal(x: torch.Tensor) -> torch.Tensor:
    return -0.5 * (LOG2PI + x**2).sum(-1)


def kl_std_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma²) || N(0, I)) per dimension, (B, d)."""
    return 0.5 * (mu**2 + logvar.exp() - 1.0 - logvar)


def _mlp(i: int, h: int, o: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(i, h), nn.Tanh(), nn.Linear(h, h), nn.Tanh(), nn.Linear(h, o))


class VHPPrior(nn.Module):
    def __init__(self, latent_dim: int, hidden: int = 256, samples: int = 4):
        super().__init__()
        self.d, self.samples = latent_dim, samples
        self.p_z = _mlp(latent_dim, hidden, 2 * latent_dim)  # p(z | zeta)
        self.q_zeta = _mlp(latent_dim, hidden, 2 * latent_dim)  # q(zeta | z)

    def p_z_given(self, zeta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.p_z(zeta).chunk(2, -1)
        return mu, logvar.clamp(LOGVAR_MIN, LOGVAR_MAX)

    def q_zeta_given(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.q_zeta(z).chunk(2, -1)
        return mu, logvar.clamp(LOGVAR_MIN, LOGVAR_MAX)

    def log_prob(self, z: torch.Tensor, samples: int | None = None,
                 noise: torch.Tensor | None = None) -> torch.Tensor:
        """Importance-sampled estimate of log p(z), (B,). `noise` (k, B, d), if given, is the
        standard normal draw to use (a distributed run slices one drawn for the whole batch)."""
        k = samples or self.samples
        qm, ql = self.q_zeta_given(z)
        if noise is None:
            noise = torch.randn((k, *qm.shape), device=z.device)
        zeta = qm + noise * (0.5 * ql).exp()
        pm, pl = self.p_z_given(zeta)
        log_w = log_normal(z, pm, pl) + log_std_normal(zeta) - log_normal(zeta, qm, ql)
        return torch.logsumexp(log_w, dim=0) - math.log(k)

    def kl(self, z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
           noise: torch.Tensor | None = None) -> torch.Tensor:
        """Single-sample estimate of KL(q(z|x) || p(z)) at z ~ q(z|x), (B,)."""
        return log_normal(z, mu, logvar) - self.log_prob(z, noise=noise)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0):
        """z ~ p(z): zeta ~ N(0, I), then z ~ p(z | zeta), both scaled by the temperature."""
        dev = next(self.parameters()).device
        zeta = torch.randn(n, self.d, generator=generator, device=dev) * temperature
        mu, logvar = self.p_z_given(zeta)
        eps = torch.randn(n, self.d, generator=generator, device=dev)
        return mu + temperature * eps * (0.5 * logvar).exp()


def midpoint_hole_ratio(z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """How far the midpoints of random pairs of codes z (B, d) lie from the other codes, over how
    far a code lies from its nearest other code: mean over B midpoints of the distance to the
    nearest code but their own two ends, ÷ the mean nearest-neighbour distance among the codes.
    Near 1 (the vae's codes: 0.89 at B = 64) a midpoint lies among the codes as a held-out groove
    would; above it (the shipped flat model's: 1.07), in a hole between them. A flat decoder
    carries the data's gaps into the latent space, and a midpoint in a gap decodes far from every
    groove (EXPERIMENTS, session 29). Scale-free; gradient through every code (TrainConfig.code_fill_weight)."""
    b = len(z)
    if b < 3:
        raise ValueError(f"midpoint_hole_ratio needs at least 3 codes, got {b}")
    eye = torch.eye(b, dtype=torch.bool, device=z.device)
    ref = torch.cdist(z, z).masked_fill(eye, float("inf")).min(1).values.mean()
    i = torch.randint(b, (b,), generator=generator).to(z.device)
    j = (i + torch.randint(1, b, (b,), generator=generator).to(z.device)) % b
    ends = torch.zeros(b, b, dtype=torch.bool, device=z.device)  # each midpoint's own two codes
    rows = torch.arange(b, device=z.device)
    ends[rows, i] = ends[rows, j] = True
    return torch.cdist(0.5 * (z[i] + z[j]), z).masked_fill(ends, float("inf")).min(1).values.mean() / ref
