"""How long the Groove MIDI Dataset takes to become windows: built from MIDI (cold) and read
back from the cache (warm). Median of a few runs, on whatever machine this is.

    python benchmarks/bench_data.py [--root PATH] [--runs 5]

Goals (DESIGN §3: the whole dataset parses in well under a second): cold < 2 s, warm < 0.2 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

GOAL_COLD_S = 2.0
GOAL_WARM_S = 0.2


def median_time(fn, runs: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main(argv: list[str] | None = None) -> int:
    from flatgroove.data import default_root, load_gmd

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=None, help="Groove MIDI Dataset folder")
    ap.add_argument("--runs", type=int, default=5, help="runs per figure (median)")
    args = ap.parse_args(argv)
    root = args.root or default_root()
    if not (root / "info.csv").exists():
        print(f"bench_data: Groove MIDI Dataset not found at {root}; set FLATGROOVE_GMD or --root")
        return 0  # nothing to measure is not a failure

    with tempfile.TemporaryDirectory(prefix="flatgroove-bench-") as tmp:
        os.environ["FLATGROOVE_CACHE"] = tmp  # never touch the user's cache
        load_gmd(root, use_cache=False, progress=False)  # warm the OS file cache and imports

        cold, ws = median_time(lambda: load_gmd(root, use_cache=False, progress=False), args.runs)
        n = len(ws)

        def cold_save():
            for f in Path(tmp).iterdir():
                f.unlink()
            return load_gmd(root, progress=False)

        cold_cached, _ = median_time(cold_save, args.runs)
        warm, ws2 = median_time(lambda: load_gmd(root, progress=False), args.runs)
        assert len(ws2) == n and (ws2.features == ws.features).all(), "cache differs from MIDI"
        size = sum(f.stat().st_size for f in Path(tmp).iterdir())

    counts = ws.split_counts()
    print(f"Groove MIDI Dataset at {root}")
    print(f"windows      {n} ({', '.join(f'{k} {v}' for k, v in counts.items())}), "
          f"{len(set(ws.meta['file']))} files, {len(ws.skipped)} skipped")
    print(f"machine      {os.cpu_count()} CPUs, Python {sys.version.split()[0]}; "
          f"median of {args.runs} runs")
    rows = [
        ("cold", "build from MIDI, no cache", cold, GOAL_COLD_S),
        ("cold+save", "build from MIDI into an empty cache", cold_cached, GOAL_COLD_S),
        ("warm", "load from the cache", warm, GOAL_WARM_S),
    ]
    for name, what, t, goal in rows:
        ok = "ok" if t < goal else "OVER GOAL"
        print(f"{name:<10} {t:7.3f} s  {n / t:10.0f} windows/s   goal < {goal:g} s: {ok}  ({what})")
    print(f"cache file   {size / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
