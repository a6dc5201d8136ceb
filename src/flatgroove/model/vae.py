"""The recurrent VAE: encoder, decoder, prior, and the reconstruction/KL terms of its three
variants (DESIGN §4). Objectives that combine them live in flatgroove.train."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from flatgroove.drums import N_DRUMS
from flatgroove.errors import GenerateError
from flatgroove.groove import Groove, stack_features
from flatgroove.model.config import ModelConfig
from flatgroove.model.decoder import Decoder, geometry_output
from flatgroove.model.decoding import DecodingRule
from flatgroove.model.encoder import Encoder
from flatgroove.model.prior import VHPPrior, kl_std_normal


class GrooveVAE(nn.Module):
    def __init__(self, config: ModelConfig | None = None):
        super().__init__()
        self.config = config or ModelConfig()
        c = self.config
        self.encoder = Encoder(c.latent_dim, c.enc_hidden, c.enc_layers, c.dropout)
        self.decoder = Decoder(c.latent_dim, c.dec_hidden, c.dec_layers, c.step_embed)
        self.prior = VHPPrior(c.latent_dim, c.prior_hidden, c.prior_samples) if c.variant != "vae" else None
        # How p becomes heard hits; set from the checkpoint (model.decoding), used by decode().
        self.decoding = DecodingRule()

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def variant(self) -> str:
        return self.config.variant

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # -- differentiable parts ------------------------------------------------------------
    def f(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder as a map into the 864-d geometry space y = [p, p·v, p·o]."""
        return geometry_output(*self.decoder(z))

    def reconstruction(self, x: torch.Tensor, logits, vel, off) -> dict[str, torch.Tensor]:
        """Per-sample reconstruction terms: hit BCE (summed over cells) and squared errors of
        velocity and offset on true hits (summed)."""
        hits, tv, to = x[..., :N_DRUMS], x[..., N_DRUMS : 2 * N_DRUMS], x[..., 2 * N_DRUMS :]
        bce = F.binary_cross_entropy_with_logits(logits, hits, reduction="none").sum((1, 2))
        vel_se = (hits * (vel - tv) ** 2).sum((1, 2))
        off_se = (hits * (off - to) ** 2).sum((1, 2))
        return {"hit_bce": bce, "vel_se": vel_se, "off_se": off_se, "recon": bce + vel_se + off_se}

    def kl(self, z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
           noise: torch.Tensor | None = None) -> torch.Tensor:
        """Per-sample KL(q(z|x) || p(z)): analytic for N(0, I), importance-sampled for VHP
        (with the prior's standard normal `noise` (k, B, d) when given)."""
        if self.prior is None:
            return kl_std_normal(mu, logvar).sum(-1)
        return self.prior.kl(z, mu, logvar, noise=noise)

    # -- user API (numpy and Grooves in, numpy and Grooves out) --------------------------
    def _features(self, grooves: Sequence[Groove] | np.ndarray | torch.Tensor) -> torch.Tensor:
        if isinstance(grooves, Groove):
            grooves = [grooves]
        if isinstance(grooves, torch.Tensor):
            x = grooves.float()
        elif isinstance(grooves, np.ndarray):
            x = torch.from_numpy(np.asarray(grooves, np.float32))
        else:
            x = torch.from_numpy(stack_features(list(grooves)))
        if x.dim() == 2:
            x = x.unsqueeze(0)
        return x.to(self.device)

    def encode(self, grooves, batch: int = 512, refine: int = 0) -> np.ndarray:
        """Posterior means (n, d) of grooves (a list of Grooves or features (n, 32, 27)); with
        `refine` > 0, each then moved by that many steps towards the point that decodes closest
        to its groove (`refine_latent`)."""
        if refine < 0:  # the one check of it: the generation API and the CLI pass it through
            raise GenerateError(f"refine must be >= 0 steps, got {refine}")
        x = self._features(grooves)
        out = []
        for s in range(0, len(x), batch):
            with torch.inference_mode():
                mu, logvar = self.encoder(x[s : s + batch])[:2]
            out.append(self.refine_latent(x[s : s + batch], mu, logvar, refine) if refine else mu)
        return torch.cat(out).cpu().numpy() if out else np.zeros((0, self.latent_dim), np.float32)

    def refine_latent(self, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, steps: int = 10,
                      step: float = 0.1, anchor: float = 1.0) -> torch.Tensor:
        """Semi-amortised encoding: `steps` Adam steps on z from the encoder's mean, minimising
        the groove's reconstruction plus anchor · ½‖(z − μ)/σ‖² (the posterior as a prior keeps z
        where the decoder was trained and flattened), each groove's step `step` × the median of
        its own σ; the weights are left untouched. Each groove is refined on its own, whatever
        else is in the batch. 5–10 steps converge (EXPERIMENTS, E38's probe: hit F1 +0.014 for
        `flat`, +0.027 for `vae` on validation)."""
        mu, sd = mu.detach().clone(), (0.5 * logvar.detach()).exp()
        scale = sd.median(dim=1, keepdim=True).values  # z = μ + scale·u: Adam's step in u is `step`
        u = torch.zeros_like(mu, requires_grad=True)
        opt = torch.optim.Adam([u], lr=step)
        with torch.enable_grad():
            for _ in range(steps):
                opt.zero_grad()
                z = mu + scale * u
                loss = self.reconstruction(x, *self.decoder(z))["recon"]
                loss = loss + anchor * 0.5 * (scale * u / sd).square().sum(1)
                # only u is stepped: the weights' gradients are not kept
                (u.grad,) = torch.autograd.grad(loss.sum(), u)
                opt.step()
        return (mu + scale * u).detach()

    @torch.inference_mode()
    def decode_arrays(self, z) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Hit probabilities, velocities, offsets, each (n, 32, 9)."""
        zt = torch.as_tensor(np.asarray(z, np.float32), device=self.device)
        if zt.dim() == 1:
            zt = zt.unsqueeze(0)
        if zt.shape[-1] != self.latent_dim:
            raise ValueError(f"z must have {self.latent_dim} dimensions, got {zt.shape[-1]}")
        logits, vel, off = self.decoder(zt)
        return torch.sigmoid(logits).cpu().numpy(), vel.cpu().numpy(), off.cpu().numpy()

    def decode(self, z, tempo: float = 120.0, threshold: float | None = None) -> list[Groove]:
        """Grooves for latent points z (n, d) or (d,), hits by the model's decoding rule (or,
        if `threshold` is given, a hit where p >= threshold)."""
        p, v, o = self.decode_arrays(z)
        rule = self.decoding if threshold is None else DecodingRule("threshold", threshold=threshold)
        hits = rule.hits(p)
        return [Groove.from_features(np.concatenate([h, vi, oi], axis=-1), tempo=tempo)
                for h, vi, oi in zip(hits, v, o)]

    def reconstruct(self, grooves, threshold: float | None = None, refine: int = 0) -> list[Groove]:
        gs = [grooves] if isinstance(grooves, Groove) else grooves
        z = self.encode(gs, refine=refine)
        tempos = [g.tempo for g in gs] if gs and isinstance(gs[0], Groove) else [120.0] * len(z)
        return [self.decode(zi, tempo=t, threshold=threshold)[0] for zi, t in zip(z, tempos)]

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0, seed: int | None = None) -> np.ndarray:
        """Latent points from the prior (n, d)."""
        g = torch.Generator().manual_seed(seed) if seed is not None else None
        if self.prior is None:
            return (torch.randn(n, self.latent_dim, generator=g) * temperature).numpy()
        self.prior.cpu()
        z = self.prior.sample(n, generator=g, temperature=temperature)
        self.prior.to(self.device)
        return z.cpu().numpy()
