"""A stand-in model with the real model's interface, for trying the jam and benchmarking the
engine before (or without) a trained model. It is not musical beyond its prototypes:
encode is a fixed random projection of the features; decode blends the built-in grooves,
weighted by how close z lies to each one's code, and thresholds the hits."""

from __future__ import annotations

import numpy as np

from flatgroove.groove import N_FEATURES, N_STEPS, Groove


class ToyModel:
    def __init__(self, latent_dim: int = 16, seed: int = 0) -> None:
        from flatgroove.presets import all_builtins

        self.latent_dim = latent_dim
        rng = np.random.default_rng(seed)
        self.P = (rng.standard_normal((N_STEPS * N_FEATURES, latent_dim)) / 8.0).astype(np.float32)
        self.protos = list(all_builtins().values())
        self.x = np.stack([g.to_features() for g in self.protos])  # (k, 32, 27)
        self.pz = self.encode(self.protos)
        d = ((self.pz[:, None] - self.pz[None]) ** 2).sum(-1)
        self.tau = float(np.median(d[d > 0])) / 4.0

    def encode(self, grooves: list[Groove]) -> np.ndarray:
        x = np.stack([g.to_features().reshape(-1) for g in grooves])
        return (x @ self.P).astype(np.float32)

    def decode(self, z: np.ndarray, tempo: float = 120.0) -> list[Groove]:
        z = np.atleast_2d(np.asarray(z, np.float32))
        d = ((z[:, None, :] - self.pz[None]) ** 2).sum(-1)  # (n, k)
        w = np.exp(-(d - d.min(1, keepdims=True)) / self.tau)
        w /= w.sum(1, keepdims=True)
        feats = np.einsum("nk,kst->nst", w, self.x)
        hits = feats[..., :9]
        # Velocities and offsets of the mixture are averages over prototypes that hit there.
        den = np.maximum(hits, 1e-6)
        feats[..., 9:18] /= den
        feats[..., 18:] /= den
        return [Groove.from_features(f, tempo=float(tempo)) for f in feats]


__all__ = ["ToyModel"]
