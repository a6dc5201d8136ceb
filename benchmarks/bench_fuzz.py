"""The MIDI reader against mutated files: N mutated copies of dataset files (byte flips,
truncation, junk, wrong chunk lengths, huge delta times, zero division, tempo 0, running-status
abuse, empty and non-MIDI files) through `read_drums`, `read_groove`, `read_grooves` and the
window builder. Counts clean answers (a groove, or a one-line MidiError naming the file),
tracebacks (any other exception) and hangs (no answer within --timeout), and the peak memory.

    python benchmarks/bench_fuzz.py [--n 2000] [--root PATH] [--seed 0] [--timeout 10]

Files run in a worker process with a memory cap (--mem-mb); a hang or a crash of the worker
is counted and the worker restarted. Without the dataset, synthetic drum files are mutated.
Goal (issue 10): 0 tracebacks, 0 hangs, peak memory a small multiple of a plain file's.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import resource
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from hostile_midi.make_corpus import midi_file, mutate, synthetic_sources


def _worker(conn, mem_mb: int) -> None:
    """Reads paths from `conn`; answers (kind, detail, peak RSS MB) for each."""
    resource.setrlimit(resource.RLIMIT_AS, (mem_mb << 20, mem_mb << 20))
    from flatgroove.midi import MidiError, read_drums, read_groove, read_grooves, window_arrays

    while True:
        path = conn.recv()
        if path is None:
            return
        try:
            out = "groove"
            try:
                part = read_drums(path)
                window_arrays(part)
                read_grooves(path)
                read_groove(path)
            except MidiError as e:
                msg = str(e)
                bad = "\n" in msg or path not in msg
                out = "unclear" if bad else "error"
                detail = msg
            else:
                detail = ""
        except BaseException as e:  # noqa: BLE001 - what we count
            out, detail = "traceback", "".join(traceback.format_exception_only(e)).strip()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        conn.send((out, detail, rss))


class Reader:
    """A worker process, restarted after a hang or crash."""

    def __init__(self, mem_mb: int) -> None:
        self.mem_mb = mem_mb
        self._start()

    def _start(self) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker, args=(child, self.mem_mb), daemon=True)
        self.proc.start()
        self.base = None

    def read(self, path: str, timeout: float) -> tuple[str, str, float]:
        self.conn.send(path)
        if not self.conn.poll(timeout):
            self.proc.kill()
            self.proc.join()
            self._start()
            return "hang", f"no answer in {timeout:g} s", 0.0
        try:
            return self.conn.recv()
        except EOFError:
            code = self.proc.exitcode
            self.proc.join()
            self._start()
            return "crash", f"worker died (exit {code})", 0.0

    def close(self) -> None:
        try:
            self.conn.send(None)
        except OSError:
            pass
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()


def sources(root: Path | None, k: int, seed: int) -> tuple[list[bytes], str]:
    files = sorted(root.rglob("*.mid")) if root is not None and root.is_dir() else []
    if files:
        rnd = random.Random(seed)
        pick = rnd.sample(files, min(k, len(files)))
        return [f.read_bytes() for f in pick], f"{len(pick)} files of {root}"
    return synthetic_sources(k, seed), f"{k} synthetic drum files (no dataset found)"


def main(argv: list[str] | None = None) -> int:
    from flatgroove.data import default_root

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="mutated files")
    ap.add_argument("--sources", type=int, default=30, help="dataset files to mutate")
    ap.add_argument("--root", type=Path, default=None, help="a folder of MIDI files")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds before a file hangs")
    ap.add_argument("--mem-mb", type=int, default=3072, help="address-space cap of the reader")
    ap.add_argument("--show", type=int, default=5, help="print this many examples per kind")
    args = ap.parse_args(argv)
    root = args.root or default_root()
    srcs, what = sources(root, args.sources, args.seed)
    rnd = random.Random(args.seed)
    counts: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}
    peak, slowest = 0.0, (0.0, "")
    reader = Reader(args.mem_mb)
    # The worker's resident memory after reading one plain file: the baseline.
    with tempfile.TemporaryDirectory(prefix="flatgroove-fuzz-") as tmp:
        plain = Path(tmp) / "plain.mid"
        plain.write_bytes(srcs[0] if srcs else midi_file([]))
        base = reader.read(str(plain), 60)[2]
        t_all = time.perf_counter()
        for i in range(args.n):
            data, how = mutate(rnd.choice(srcs), rnd)
            path = Path(tmp) / f"m{i:05d}.mid"
            path.write_bytes(data)
            t0 = time.perf_counter()
            kind, detail, rss = reader.read(str(path), args.timeout)
            dt = time.perf_counter() - t0
            if dt > slowest[0]:
                slowest = (dt, how)
            peak = max(peak, rss)
            counts[kind] += 1
            kinds[how] += 1
            if kind not in ("groove", "error") and len(examples.setdefault(kind, [])) < args.show:
                examples[kind].append(f"[{how}] {detail}")
            elif kind == "error" and len(examples.setdefault(kind, [])) < args.show:
                examples[kind].append(f"[{how}] {detail.replace(str(path), path.name)}")
            path.unlink()
        elapsed = time.perf_counter() - t_all
    reader.close()
    print(f"bench_fuzz: {args.n} mutated files from {what}, seed {args.seed}, "
          f"{elapsed:.1f} s ({elapsed / max(args.n, 1) * 1e3:.1f} ms/file)")
    print(f"  mutations: {', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))}")
    print(f"  read as grooves        {counts['groove']:6d}")
    print(f"  clean one-line errors  {counts['error']:6d}")
    print(f"  unclear errors         {counts['unclear']:6d}")
    print(f"  tracebacks             {counts['traceback']:6d}")
    print(f"  worker crashes         {counts['crash']:6d}")
    print(f"  hangs (> {args.timeout:g} s)        {counts['hang']:6d}")
    print(f"  peak memory of the reader  {peak:.0f} MB (after one plain file: {base:.0f} MB)")
    print(f"  slowest file  {slowest[0] * 1e3:.0f} ms ({slowest[1]})")
    for kind, ex in examples.items():
        for e in ex:
            print(f"  {kind}: {e[:300]}")
    bad = counts["traceback"] + counts["crash"] + counts["hang"] + counts["unclear"]
    print(f"goal: 0 tracebacks, 0 hangs -> {'met' if bad == 0 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
