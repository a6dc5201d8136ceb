"""q(z|x): a 2-layer bidirectional LSTM over the 27 features of each step."""

from __future__ import annotations

import torch
from torch import nn

from flatgroove.groove import N_FEATURES


class Encoder(nn.Module):
    def __init__(self, latent_dim: int, hidden: int = 192, layers: int = 2, dropout: float = 0.0):
        super().__init__()
        self.rnn = nn.LSTM(
            N_FEATURES, hidden, num_layers=layers, batch_first=True, bidirectional=True,
            dropout=dropout if layers > 1 else 0.0,
        )
        self.out = nn.Linear(2 * hidden, 2 * latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, 32, 27) -> mu, logvar (B, d)."""
        _, (h, _) = self.rnn(x)
        # Final states of the last layer, forward and backward: each has read all 32 steps.
        h_last = torch.cat([h[-2], h[-1]], dim=-1)
        mu, logvar = self.out(h_last).chunk(2, dim=-1)
        return mu, logvar.clamp(-12.0, 6.0)
