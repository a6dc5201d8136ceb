"""The web server under load: requests per second and latency (p50, p99) of /api/interpolate
and /api/decode with 8 concurrent clients on localhost, a normal client's p99 alone and under
a flood of hostile requests (the ratio; goal <= 3), and the rate of jam state updates a page
receives over the WebSocket during a simulated jam.

    python benchmarks/bench_web.py [--model flat|vae|PATH] [--seconds 8] [--clients 8]
                                   [--parts load,flood,ws] [--baseline GIT-REV]

The server is `flatgroove serve` in its own process (as a user runs it), on a free port,
without a dataset (the map is not what is measured). Without a shipped or given model, a
model of the default size with random weights stands in: inference costs the same.

The flood is another program on another machine, as it would be: its own process, its
connections from another loopback address (127.0.0.2; the server tells clients apart by
address), sending without pause and ignoring Retry-After. The normal client posts from
127.0.0.1. `--baseline REV` measures the flood ratio of the server as it was at git revision
REV too (its `src` run from a temporary copy), in the same run, before the current one.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

SHIPPED_NAMES = ("flat", "vae")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _model_arg(spec: str | None, tmp: Path) -> tuple[str, str]:
    """(--model value, description)."""
    from flatgroove.model.checkpoint import SHIPPED, CheckpointError, load_model

    cands = [spec] if spec else list(SHIPPED)
    for c in cands:
        try:
            m = load_model(c)
            return c, f"{c} ({m.variant}, d = {m.latent_dim})"
        except CheckpointError as e:
            if spec:
                raise SystemExit(f"bench_web: {e}") from None
    from flatgroove.model.checkpoint import save_checkpoint
    from flatgroove.model.config import ModelConfig
    from flatgroove.model.vae import GrooveVAE

    cfg = ModelConfig()
    path = save_checkpoint(tmp / "random.pt", {"model_config": cfg.to_dict(),
                                               "state_dict": GrooveVAE(cfg).state_dict()})
    return str(path), f"random weights, default size (d = {cfg.latent_dim}); no shipped model yet"


def _start(model: str, tmp: Path, src: Path | None = None) -> tuple[subprocess.Popen, str]:
    """`flatgroove serve` on a free port; from the source folder `src` if given."""
    import httpx

    port = _free_port()
    log = open(tmp / "serve.log", "w")  # noqa: SIM115 - the server's lifetime
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(src), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    proc = subprocess.Popen([sys.executable, "-m", "flatgroove.cli", "serve", "--port", str(port),
                             "--model", model, "--no-data"], stdout=log, stderr=subprocess.STDOUT,
                            env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/map", timeout=5).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.3)
    proc.kill()
    raise SystemExit(f"bench_web: the server did not start:\n{(tmp / 'serve.log').read_text()}")


def _baseline_src(rev: str, tmp: Path) -> Path:
    """The `src` folder of git revision `rev`, extracted into tmp."""
    repo = Path(__file__).resolve().parents[1]
    out = tmp / "baseline"
    out.mkdir()
    archive = subprocess.run(["git", "-C", str(repo), "archive", rev, "src"],
                             capture_output=True, check=False)
    if archive.returncode != 0:
        raise SystemExit(f"bench_web: --baseline {rev}: {archive.stderr.decode().strip()}")
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive.stdout, check=True)
    return out / "src"


def _client(url: str, address: str | None, timeout: float = 30):
    """An httpx client whose connections come from `address` (a loopback address)."""
    import httpx

    transport = httpx.HTTPTransport(local_address=address) if address else None
    return httpx.Client(base_url=url, timeout=timeout, transport=transport)


def _other_loopback() -> str | None:
    """127.0.0.2 where the system lets a socket bind to it (Linux does), else None."""
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.2", 0))
        return "127.0.0.2"
    except OSError:
        return None


def load(url: str, path: str, bodies: list[dict], clients: int, seconds: float,
         address: str | None = None, spread: bool = False) -> dict[str, float]:
    """`clients` threads, each with its own keep-alive connection, posting for `seconds`,
    from `address`, or with `spread` each from its own loopback address (127.0.0.11, ...:
    so many users, not one client over its limit of requests in flight)."""

    lat: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    stop = time.perf_counter() + seconds
    start = threading.Barrier(clients)

    def run(i: int) -> None:
        with _client(url, f"127.0.0.{11 + i}" if spread else address) as c:
            start.wait()
            k = i
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                r = c.post(path, json=bodies[k % len(bodies)])
                lat[i].append(time.perf_counter() - t0)
                errors[i] += r.status_code != 200
                k += clients

    t0 = time.perf_counter()
    ts = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    wall = time.perf_counter() - t0
    all_lat = np.array([x for li in lat for x in li])
    return {"n": len(all_lat), "rps": len(all_lat) / wall, "p50": float(np.percentile(all_lat, 50)),
            "p99": float(np.percentile(all_lat, 99)), "max": float(all_lat.max()),
            "errors": sum(errors)}


def _hostile_requests(d_lat: int) -> list[tuple[str, str, dict]]:
    """Malformed and hostile requests (issue 10): bad JSON, deep nesting, huge numbers, big
    bodies, a foreign Host or Origin, hostile MIDI uploads, the most expensive valid calls."""
    corpus = Path(__file__).resolve().parents[1] / "tests" / "hostile_midi"
    j = {"content-type": "application/json"}
    out = [
        ("POST", "/api/decode", {"content": "[" * 50_000 + "]" * 50_000, "headers": j}),
        ("POST", "/api/decode", {"content": '{"z": [' + "9" * 4000 + "]}", "headers": j}),
        ("POST", "/api/decode", {"content": '{"point": [1e308, -1e308]}', "headers": j}),
        ("POST", "/api/decode", {"content": "{not json", "headers": j}),
        ("POST", "/api/decode", {"content": "x" * (1 << 20), "headers": j}),
        ("POST", "/api/decode", {"content": "x" * (3 << 20), "headers": j}),
        ("GET", "/api/info", {"headers": {"host": "evil.example"}}),
        ("POST", "/api/sample", {"json": {"n": 1}, "headers": {"origin": "http://evil.example"}}),
        ("POST", "/api/interpolate", {"json": {"a": {"z": [100.0] * d_lat},
                                               "b": {"z": [-100.0] * d_lat}, "steps": 65}}),
        ("POST", "/api/blend", {"json": {"corners": [{"name": "rock"}] * 4, "grid": 8}}),
        ("POST", "/api/sample", {"json": {"n": 32}}),
        ("GET", "/api/grooves/" + "a" * 5000, {}),
    ]
    for f in sorted(corpus.glob("*.mid")):
        out.append(("POST", "/api/encode/midi",
                    {"files": {"file": (f.name, f.read_bytes(), "audio/midi")}}))
    return out


def flood(url: str, d_lat: int, clients: int, stop: Any, address: str | None = None,
          result: Any = None) -> dict[str, int]:
    """`clients` threads sending the hostile requests round and round until `stop`, from
    `address`; run in a process of its own (see _flood_process)."""
    import httpx

    requests = _hostile_requests(d_lat)
    counts = {"sent": 0, "5xx": 0, "429": 0, "failed": 0}
    lock = threading.Lock()

    def run(i: int) -> None:
        k = i
        with _client(url, address) as c:
            while not stop.is_set():
                method, path, kw = requests[k % len(requests)]
                k += clients
                try:
                    r = c.request(method, path, **kw)
                    bad, busy = r.status_code >= 500, r.status_code == 429
                    failed = 0
                except httpx.HTTPError:
                    bad, busy, failed = False, False, 1
                with lock:
                    counts["sent"] += 1
                    counts["5xx"] += bad
                    counts["429"] += busy
                    counts["failed"] += failed

    ts = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(clients)]
    for t in ts:
        t.start()
    stop.wait()
    for t in ts:
        t.join(60)
    if result is not None:
        result.put(counts)
    return counts


def flood_round(url: str, decode: list[dict], d_lat: int, seconds: float, clients: int,
                address: str | None) -> dict[str, Any]:
    """A normal client's /api/decode (from 127.0.0.1) alone, then under a flood from another
    process (from `address`)."""
    import multiprocessing as mp

    load(url, "/api/decode", decode[:2], 1, 0.5, "127.0.0.1")  # warm up
    alone = load(url, "/api/decode", decode, 1, seconds, "127.0.0.1")
    ctx = mp.get_context("spawn")
    stop, result = ctx.Event(), ctx.Queue()
    proc = ctx.Process(target=flood, args=(url, d_lat, clients, stop, address, result))
    proc.start()
    time.sleep(2.0)  # the flood process is up and under way
    under = load(url, "/api/decode", decode, 1, seconds, "127.0.0.1")
    stop.set()
    try:
        counts = result.get(timeout=90)
    except Exception:  # noqa: BLE001 - a flood that did not report: no counts
        counts = {}
    proc.join(30)
    if proc.is_alive():
        proc.kill()
    time.sleep(1.0)  # the server is idle again
    return {"alone": alone, "under": under, "counts": counts,
            "ratio": under["p99"] / alone["p99"]}


def _print_round(label: str, f: dict[str, Any]) -> None:
    a, u, c = f["alone"], f["under"], f["counts"]
    print(f"  {label:<15} p99 {a['p99'] * 1000:6.1f} -> {u['p99'] * 1000:6.1f} ms   ratio "
          f"{f['ratio']:5.2f}   p50 {a['p50'] * 1000:5.1f} -> {u['p50'] * 1000:5.1f} ms   "
          f"normal errors {u['errors']}; flood {c.get('sent', 0)} requests, "
          f"{c.get('429', 0)} x 429, {c.get('5xx', 0)} x 5xx, {c.get('failed', 0)} failed")


def _print_flood(label: str, rounds: list[dict[str, Any]], clients: int) -> None:
    ratio = float(np.median([f["ratio"] for f in rounds]))
    alone = float(np.median([f["alone"]["p99"] for f in rounds])) * 1000
    under = float(np.median([f["under"]["p99"] for f in rounds])) * 1000
    each = ", ".join(f"{f['ratio']:.2f}" for f in rounds)
    print(f"{'flood ' + label:<17} normal /api/decode p99 {alone:.1f} ms alone, {under:.1f} ms "
          f"under a flood of {clients} hostile clients: ratio {ratio:.2f} (goal <= 3; "
          f"median of {len(rounds)} rounds: {each})")


def ws_rate(url: str, seconds: float) -> dict[str, float]:
    """Connect as the page does and count state updates (and notes) per second."""
    from websockets.sync.client import connect

    arrivals, notes, bars = [], 0, set()
    with connect(url.replace("http", "ws") + "/ws/jam", open_timeout=30) as ws:
        # Wait for the jam to run (the first connection starts it).
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            m = json.loads(ws.recv(timeout=10))
            if m.get("type") == "state" and m.get("bar", -1) >= 0:
                break
        t_end = time.perf_counter() + seconds
        ws.send(json.dumps({"type": "a", "value": 0.7}))
        while time.perf_counter() < t_end:
            m = json.loads(ws.recv(timeout=10))
            if m.get("type") != "state":
                continue
            arrivals.append(time.perf_counter())
            notes += len(m.get("notes", []))
            bars.add(m.get("bar"))
    gaps = np.diff(arrivals) * 1000
    return {"rate": (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]), "n": len(arrivals),
            "gap_p50": float(np.percentile(gaps, 50)), "gap_p99": float(np.percentile(gaps, 99)),
            "notes": notes / seconds, "bars": len(bars)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="'flat', 'vae' or a checkpoint (default: shipped)")
    ap.add_argument("--seconds", type=float, default=8.0, help="load per endpoint (default 8 s)")
    ap.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    ap.add_argument("--ws-seconds", type=float, default=6.0, help="WebSocket listening time")
    ap.add_argument("--flood-seconds", type=float, default=6.0,
                    help="a normal client's time alone and under the hostile flood")
    ap.add_argument("--flood-clients", type=int, default=8, help="hostile flooding clients")
    ap.add_argument("--flood-rounds", type=int, default=3,
                    help="alone/under-flood rounds per server (the median ratio is given)")
    ap.add_argument("--parts", default="load,flood,ws",
                    help="what to measure, of load,flood,ws (default all)")
    ap.add_argument("--baseline", default=None, metavar="REV",
                    help="also measure the flood ratio of the server at git revision REV")
    args = ap.parse_args(argv)
    parts = set(args.parts.split(","))

    with tempfile.TemporaryDirectory(prefix="bench-web-") as d:
        tmp = Path(d)
        model, what = _model_arg(args.model, tmp)
        if model in SHIPPED_NAMES:  # a path, so that a baseline's source serves the same model
            from flatgroove.model.checkpoint import shipped_path

            model = str(shipped_path(model))
        env_cpus = os.cpu_count()
        flood_from = _other_loopback()
        print(f"model       {what}")
        print(f"machine     {env_cpus} CPUs, {args.clients} clients, {args.seconds:g} s per endpoint")
        print(f"flood       {args.flood_clients} clients in their own process, from "
              f"{flood_from or '127.0.0.1 (no other loopback address here)'}; "
              f"the normal client from 127.0.0.1; {args.flood_seconds:g} s alone and under it")
        servers: list[tuple[str, subprocess.Popen, str]] = []
        try:
            if "flood" in parts and args.baseline:
                base_proc, base_url = _start(model, tmp, _baseline_src(args.baseline, tmp))
                servers.append((args.baseline[:10], base_proc, base_url))
            proc, url = _start(model, tmp)
            servers.append(("this tree", proc, url))
            import httpx

            grooves = httpx.get(f"{url}/api/grooves").json()
            d_lat = len(grooves[0]["z"])
            rng = np.random.default_rng(0)
            names = [g["name"] for g in grooves]
            interp = [{"a": {"name": names[i]}, "b": {"name": names[(i + 3) % len(names)]},
                       "steps": 9} for i in range(len(names))]
            decode = [{"z": rng.standard_normal(d_lat).round(4).tolist()} for _ in range(64)]
            if "flood" in parts:
                # Round by round, server by server: both under the same background load.
                rounds: dict[str, list] = {label: [] for label, _, _ in servers}
                for k in range(args.flood_rounds):
                    print(f"flood round {k + 1}: normal /api/decode alone -> under the flood")
                    for label, _, u in servers:
                        f = flood_round(u, decode, d_lat, args.flood_seconds, args.flood_clients,
                                        flood_from)
                        rounds[label].append(f)
                        _print_round(label, f)
                for label, _, _ in servers:
                    _print_flood(label, rounds[label], args.flood_clients)
            spread = flood_from is not None  # other loopback addresses can be bound
            for path, bodies in (("/api/interpolate", interp), ("/api/decode", decode)):
                if "load" not in parts:
                    break
                load(url, path, bodies[:2], 2, 0.5, spread=spread)  # warm up
                r = load(url, path, bodies, args.clients, args.seconds, spread=spread)
                print(f"{path:<17} {r['rps']:7.1f} req/s   p50 {r['p50'] * 1000:6.1f} ms   "
                      f"p99 {r['p99'] * 1000:6.1f} ms   max {r['max'] * 1000:6.1f} ms   "
                      f"({r['n']} requests, {r['errors']} errors)")
            if "ws" not in parts:
                return 0
            w = ws_rate(url, args.ws_seconds)
            print(f"{'/ws/jam':<17} {w['rate']:7.1f} state updates/s   gap p50 {w['gap_p50']:5.1f} ms"
                  f"   p99 {w['gap_p99']:5.1f} ms   {w['notes']:.1f} notes/s   "
                  f"({w['n']} updates over {w['bars']} bars)")
        finally:
            for _, p, _ in servers:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
