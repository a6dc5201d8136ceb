"""f(z): a recurrent decoder whose output is a deterministic, differentiable function of z
alone (no teacher forcing), so the Jacobian J(z) exists everywhere, also between data points.

z sets the LSTM's initial state and is fed, with a learned step embedding, at every step.
"""

from __future__ import annotations

import torch
from torch import nn

from flatgroove.drums import N_DRUMS
from flatgroove.groove import N_STEPS


class Decoder(nn.Module):
    def __init__(self, latent_dim: int, hidden: int = 256, layers: int = 2, step_embed: int = 16):
        super().__init__()
        self.layers, self.hidden = layers, hidden
        self.init = nn.Linear(latent_dim, 2 * layers * hidden)
        self.steps = nn.Parameter(torch.randn(N_STEPS, step_embed) * 0.1)
        self.rnn = nn.LSTM(latent_dim + step_embed, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, 3 * N_DRUMS)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """z (B, d) -> hit logits, velocities in (0, 1), offsets in (-0.5, 0.5); each (B, 32, 9)."""
        b = z.shape[0]
        h0, c0 = torch.tanh(self.init(z)).view(b, 2, self.layers, self.hidden).permute(1, 2, 0, 3)
        inp = torch.cat([z.unsqueeze(1).expand(b, N_STEPS, -1), self.steps.expand(b, -1, -1)], -1)
        out, _ = self.rnn(inp, (h0.contiguous(), c0.contiguous()))
        logits, vel, off = self.head(out).split(N_DRUMS, dim=-1)
        return logits, torch.sigmoid(vel), 0.5 * torch.tanh(off)


def geometry_output(logits: torch.Tensor, vel: torch.Tensor, off: torch.Tensor) -> torch.Tensor:
    """y = [p, p*v, p*o] per step and drum, flattened to (B, 864) (DESIGN §4): a silent cell
    contributes nothing, so distances in y are distances in what is heard."""
    p = torch.sigmoid(logits)
    return torch.cat([p, p * vel, p * off], dim=-1).flatten(1)


def _hit_probs(y: torch.Tensor) -> torch.Tensor:
    """The hit probabilities p (B, 32, 9) inside geometry_output's y (B, 864)."""
    return y.view(len(y), -1, 3 * N_DRUMS)[..., :N_DRUMS]


def with_heard(y: torch.Tensor, threshold: float, tau: float, weight: float) -> torch.Tensor:
    """y (B, 864) from geometry_output with weight·σ((p − threshold)/tau) per cell appended
    (B, 864 + 288): a metric pulled back through it counts a hit's change as it is heard, most
    where p crosses the decoding threshold (TrainConfig.flat_heard)."""
    p = _hit_probs(y)
    return torch.cat([y, weight * torch.sigmoid((p - threshold) / tau).flatten(1)], dim=1)


def with_fisher(y: torch.Tensor, weight: float) -> torch.Tensor:
    """y (B, 864) from geometry_output with weight·2·arcsin √p per cell appended (B, 864 + 288):
    a metric pulled back through it adds weight² × the hits' Fisher information metric,
    Jₗᵀ diag(p(1 − p)) Jₗ in the logits ℓ (TrainConfig.flat_fisher). Equal steps in it are equal
    steps in how well the hits' Bernoulli laws can be told apart, a cell near 0 or 1 counting
    more than it does in p."""
    p = _hit_probs(y)
    return torch.cat([y, weight * 2 * torch.asin(p.clamp(0, 1).sqrt()).flatten(1)], dim=1)
