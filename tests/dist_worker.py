"""Trains tiny models for tests/test_train_distributed.py: alone (`python dist_worker.py OUT`)
or as one rank under torchrun. Each rank writes OUT/<name>/rank<r>.pt: its final weights and
its λ after every step."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from flatgroove.model.config import ModelConfig
from flatgroove.train import distributed as D
from flatgroove.train.config import TrainConfig
from flatgroove.train.trainer import Trainer

TINY = {"latent_dim": 4, "enc_hidden": 16, "enc_layers": 1, "dec_hidden": 24, "dec_layers": 1,
        "step_embed": 4, "prior_hidden": 16}
# 40 training windows, global batch 9: 5 steps an epoch (9, 9, 9, 9, 4 rows: uneven shards on
# two ranks), 2 epochs = 10 steps; 5 validation windows (2 + 3 on two ranks).
RUNS = {
    "flat": ("flat", {"flat_points": 5, "flat_warmup_epochs": 0.0, "flat_ramp_epochs": 1.0}),
    "stein": ("flat", {"flat_loss": "stein", "flat_exact_points": 3, "flat_warmup_epochs": 0.0,
                       "flat_ramp_epochs": 1.0}),
    "vhp": ("vhp", {}),
    # free bits near the KL: the clamp's side is decided on the global batch's mean
    "vae": ("vae", {"free_bits": 0.03}),
}


def data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(7)
    hits = (torch.rand(45, 32, 9, generator=g) < 0.15).float()
    x = torch.cat([hits, hits * torch.rand(hits.shape, generator=g),
                   hits * (torch.rand(hits.shape, generator=g) - 0.5)], -1)
    return x[:40], x[40:]


def train(out: Path, names: list[str]) -> None:
    torch.set_num_threads(1)
    ctx, device = D.init("cpu", timeout_s=60)
    tx, vx = data()
    for name in names:
        variant, extra = RUNS[name]
        tc = TrainConfig(epochs=2, batch_size=9, log_every=1, kappa=150.0, **extra)
        tr = Trainer(ModelConfig(variant=variant, **TINY), tc, tx, vx, out / name, device=device,
                     progress=False, dist=ctx)
        lams: list[float] = []
        update = tr.geco.update
        tr.geco.update = lambda r, update=update, lams=lams: lams.append(update(r)) or lams[-1]
        tr.fit()
        torch.save({"state_dict": tr.model.state_dict(), "lams": lams, "lam": tr.geco.lam},
                   out / name / f"rank{ctx.rank}.pt")
    D.close()


if __name__ == "__main__":
    train(Path(sys.argv[1]), sys.argv[2].split(",") if len(sys.argv) > 2 else list(RUNS))
