"""Training step time of vae, vhp and flat, side by side on the same batches, and the cost of
each Jacobian estimator against one decoder forward pass.

    python benchmarks/bench_train.py [--threads 2] [--steps 20] [--batch 64]

Uses real Groove MIDI Dataset windows when the dataset is present, else random grooves.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from flatgroove import geometry
from flatgroove.model import ModelConfig
from flatgroove.train.config import TrainConfig
from flatgroove.train.trainer import Trainer


def batches(n: int, batch: int) -> list[torch.Tensor]:
    try:
        from flatgroove.data import load_gmd

        x = load_gmd(split="train", progress=False).tensors()
        src = "Groove MIDI Dataset train windows"
    except Exception:  # noqa: BLE001 - any failure to load the dataset means: use random data
        g = torch.Generator().manual_seed(0)
        hits = (torch.rand(n * batch, 32, 9, generator=g) < 0.12).float()
        x = torch.cat([hits, hits * torch.rand(hits.shape, generator=g),
                       hits * (torch.rand(hits.shape, generator=g) - 0.5)], -1)
        src = "random grooves (dataset absent)"
    print(f"data: {src}")
    g = torch.Generator().manual_seed(1)
    idx = torch.randperm(len(x), generator=g)[: n * batch]
    return [x[idx[i * batch : (i + 1) * batch]] for i in range(n)]


def step_times(variant: str, data: list[torch.Tensor]) -> list[float]:
    tc = TrainConfig(flat_warmup_epochs=-1.0, flat_ramp_epochs=1e-9)  # flatness on from step 0
    tr = Trainer(ModelConfig(variant=variant), tc, data[0], data[0], "/tmp/fg-bench-train",
                 progress=False)
    assert variant != "flat" or tr.flat_weight() == tc.flat_weight, "flatness must be on"
    tr.model.train()
    times = []
    for i, x in enumerate(data):
        t = time.perf_counter()
        out = tr.objective(x)
        tr.opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        tr.opt.step()
        if variant != "vae":
            tr.geco.update(out["recon"].item())
        if i >= 2:  # the first steps pay for allocation and oneDNN set-up
            times.append(time.perf_counter() - t)
    return times


def estimator_costs(batch: int, reps: int) -> None:
    from flatgroove.model.vae import GrooveVAE

    m = GrooveVAE(ModelConfig(variant="flat"))
    z = torch.randn(batch, m.latent_dim)
    u = geometry.probes((batch, m.latent_dim))

    def timed(fn) -> float:
        fn()
        ts = []
        for _ in range(reps):
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
        return statistics.median(ts)

    with torch.no_grad():
        base = timed(lambda: m.f(z))
    print(f"\nJacobian-vector products at {batch} points (forward only, no parameter gradient):")
    print(f"  decoder forward           {base * 1e3:8.1f} ms   1.00x")
    for method in ("fd", "dbl", "jvp"):
        ctx = torch.no_grad() if method == "fd" else torch.enable_grad()
        with ctx:
            t = timed(lambda method=method: geometry.jvp(m.f, z, u, method=method,
                                                         create_graph=False))
        print(f"  J·u by {method:<4}               {t * 1e3:8.1f} ms {t / base:6.2f}x")
    t = timed(lambda: geometry.flatness_terms(m.f, z[:16], n_probes=2)["loss"].backward())
    print(f"  flatness loss (16 mixups, 2 probes, fd) forward+backward {t * 1e3:.1f} ms "
          f"{t / base:.2f}x")
    t = timed(lambda: geometry.jacobian(m.f, z[:8]))
    print(f"  exact Jacobian, 8 points (32 double-backward passes) {t * 1e3:.1f} ms")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=64)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    print(f"torch {torch.__version__}, {a.threads} threads, batch {a.batch}, default model sizes")
    data = batches(a.steps + 2, a.batch)
    med = {}
    # Interleave the variants in rounds so drifts in machine load hit all three alike.
    res: dict[str, list[float]] = {v: [] for v in ("vae", "vhp", "flat")}
    chunk = max(2, (a.steps + 2) // 2)
    for r in range(2):
        part = data[r * chunk : (r + 1) * chunk] or data[:chunk]
        for v in res:
            res[v] += step_times(v, part)
    for v, ts in res.items():
        med[v] = statistics.median(ts)
        print(f"{v:5s} step {med[v] * 1e3:7.1f} ms (median of {len(ts)})  "
              f"{a.batch / med[v]:7.1f} samples/s")
    print(f"flat/vae = {med['flat'] / med['vae']:.2f}")
    print(f"vhp/vae = {med['vhp'] / med['vae']:.2f}")
    estimator_costs(a.batch, 5)


if __name__ == "__main__":
    main()
