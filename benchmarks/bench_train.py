"""Training step time of vae, vhp and flat, side by side on the same batches, and the cost of
each Jacobian estimator against one decoder forward pass.

    python benchmarks/bench_train.py [--threads 2] [--steps 20] [--batch 64]

Scaling over processes (torchrun + DDP, gloo): samples/s of the trainer's own distributed
step for 1 process x 1 thread, 1 process x 2 threads and N processes x 1 thread, each variant,
and the scaling efficiency (speed-up over 1 x 1 divided by N):

    python benchmarks/bench_train.py --nproc 1,2 [--steps 12] [--batch 64]

Uses real Groove MIDI Dataset windows when the dataset is present, else random grooves.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def scaling_worker(variant: str, threads: int, steps: int, batch: int, result: str) -> None:
    """One process (alone or a torchrun rank): `steps` training steps of the global batch
    through Trainer.train_step (DDP when under torchrun); rank 0 writes the step times."""
    from flatgroove.train import distributed as D

    torch.set_num_threads(threads)
    ctx, _ = D.init("cpu", timeout_s=120)
    with contextlib.redirect_stdout(io.StringIO()):
        pool = torch.cat(batches(steps, batch))
    tc = TrainConfig(batch_size=batch, flat_warmup_epochs=-1.0, flat_ramp_epochs=1e-9)
    tr = Trainer(ModelConfig(variant=variant), tc, pool, pool[:1], "/tmp/fg-bench-train",
                 progress=False, dist=ctx)
    tr.model.train()
    times = []
    for i in range(steps):
        t = time.perf_counter()
        tr.train_step(torch.arange(i * batch, (i + 1) * batch))
        if i >= 2:  # the first steps pay for allocation and oneDNN set-up
            times.append(time.perf_counter() - t)
    if ctx.is_main:
        Path(result).write_text(json.dumps({"times": times, "world": ctx.world}))
    D.close()


def scaling(nprocs: list[int], steps: int, batch: int) -> None:
    here = str(Path(__file__).resolve())
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, global batch {batch}, default "
          f"model sizes, median of {steps - 2} steps (trainer's train_step; DDP over gloo)")
    configs = [("1 proc x 1 thread", 1, 1), ("1 proc x 2 threads", 1, 2)]
    configs += [(f"{n} procs x 1 thread", n, 1) for n in nprocs if n > 1]
    for variant in ("vae", "vhp", "flat"):
        base = None
        for label, n, threads in configs:
            with tempfile.TemporaryDirectory() as tmp:
                res = os.path.join(tmp, "r.json")
                work = [here, "--worker", variant, "--threads", str(threads), "--steps", str(steps),
                        "--batch", str(batch), "--result", res]
                if n > 1:
                    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc-per-node", str(n), *work]
                else:
                    cmd = [sys.executable, *work]
                r = subprocess.run(cmd, env={**env, "OMP_NUM_THREADS": str(threads)},
                                   capture_output=True, text=True, check=False)
                if r.returncode != 0:
                    print(f"{variant:5s} {label:20s} failed:\n{r.stderr[-1500:]}")
                    continue
                times = json.loads(Path(res).read_text())["times"]
            sps = batch / statistics.median(times)
            base = base or sps
            extra = f"  {sps / base:4.2f}x" + (f"  efficiency {sps / base / n:4.0%}" if n > 1 else "")
            print(f"{variant:5s} {label:20s} {sps:8.1f} samples/s{extra}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--nproc", default=None,
                    help="comma-separated process counts, e.g. 1,2: measure scaling over processes")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--result", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        scaling_worker(a.worker, a.threads, a.steps, a.batch, a.result)
        return
    if a.nproc:
        scaling([int(n) for n in a.nproc.split(",")], a.steps if a.steps != 20 else 12, a.batch)
        return
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
