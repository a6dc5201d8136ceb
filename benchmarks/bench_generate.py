"""Latency of the shipped model on one CPU thread: encode and decode one groove (median, p99)
and a 16-step interpolation. Goal: decoding one groove under 2 ms, met by 192-unit decoders
(1.2 ms on the 2-core sandbox) and missed by the shipped models' 448-unit ones (11 ms there):
their recurrent weights (3.2 MB a layer in float32) outgrow a 2 MB L2, so each of the 64 steps
reads them from L3 (int8 dynamic quantisation: 9 ms; a hand-written loop: slower). Still far
inside the live engine's bar (bench_live: the pattern is ready ~1.9 beats early at 200 BPM).

    python benchmarks/bench_generate.py [--model flat] [--reps 300]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import flatgroove
from flatgroove.generate import interpolate
from flatgroove.presets import builtin


def timed(fn, reps: int) -> np.ndarray:
    for _ in range(10):  # warm-up: allocations, oneDNN primitive cache
        fn()
    ts = np.empty(reps)
    for i in range(reps):
        t = time.perf_counter()
        fn()
        ts[i] = time.perf_counter() - t
    return ts * 1e3


def line(name: str, ts: np.ndarray) -> None:
    print(f"{name:<34} median {np.median(ts):7.3f} ms   p99 {np.percentile(ts, 99):7.3f} ms")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="flat")
    ap.add_argument("--reps", type=int, default=300)
    a = ap.parse_args()
    torch.set_num_threads(1)
    m = flatgroove.load_model(a.model)
    g, h = builtin("rock"), builtin("funk")
    z = m.encode([g])
    print(f"model {a.model} ({m.variant}, d = {m.latent_dim}), torch {torch.__version__}, 1 thread")
    with torch.inference_mode():
        x = torch.from_numpy(g.to_features())[None]
        zt = torch.from_numpy(z)
        line("encoder forward (tensor)", timed(lambda: m.encoder(x), a.reps))
        line("decoder forward (tensor)", timed(lambda: m.decoder(zt), a.reps))
    line("encode(Groove) -> z", timed(lambda: m.encode([g]), a.reps))
    line("decode(z) -> Groove", timed(lambda: m.decode(z), a.reps))
    line("interpolate 16 steps (Grooves)", timed(lambda: interpolate(m, g, h, steps=16), max(20, a.reps // 10)))


if __name__ == "__main__":
    main()
