"""GECO (Rezende & Viola 2018), as used by REWO/VHP (Klushyn et al. 2019): minimise the KL
subject to E[reconstruction] <= κ with a Lagrange multiplier λ updated multiplicatively
from a moving average of the constraint."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class Geco:
    kappa: float
    nu: float = 1e-3
    ema: float = 0.99
    lam: float = 1.0
    lam_min: float = 1e-2
    lam_max: float = 1e3
    c_avg: float | None = None  # moving average of the reconstruction error

    def update(self, recon: float) -> float:
        """Feed one batch's mean reconstruction error; returns the new λ.
        λ rises while the constraint is violated (C̄ > κ) and falls once it holds."""
        if not math.isfinite(recon):
            return self.lam
        self.c_avg = recon if self.c_avg is None else self.ema * self.c_avg + (1 - self.ema) * recon
        step = max(-5.0, min(5.0, self.nu * (self.c_avg - self.kappa)))
        self.lam = min(self.lam_max, max(self.lam_min, self.lam * math.exp(step)))
        return self.lam

    def state(self) -> dict:
        return {"lam": self.lam, "c_avg": self.c_avg if self.c_avg is not None else float("nan")}

    def load(self, s: dict) -> None:
        self.lam = float(s["lam"])
        c = float(s["c_avg"])
        self.c_avg = None if math.isnan(c) else c
