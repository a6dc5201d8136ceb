"""The web server under load: requests per second and latency (p50, p99) of /api/interpolate
and /api/decode with 8 concurrent clients on localhost, a normal client's p99 alone and under
a flood of hostile requests (the ratio; goal <= 3), and the rate of jam state updates a page
receives over the WebSocket during a simulated jam.

    python benchmarks/bench_web.py [--model flat|vae|PATH] [--seconds 8] [--clients 8]

The server is `flatgroove serve` in its own process (as a user runs it), on a free port,
without a dataset (the map is not what is measured). Without a shipped or given model, a
model of the default size with random weights stands in: inference costs the same.
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

import numpy as np


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


def _start(model: str, tmp: Path) -> tuple[subprocess.Popen, str]:
    import httpx

    port = _free_port()
    log = open(tmp / "serve.log", "w")  # noqa: SIM115 - the server's lifetime
    proc = subprocess.Popen([sys.executable, "-m", "flatgroove.cli", "serve", "--port", str(port),
                             "--model", model, "--no-data"], stdout=log, stderr=subprocess.STDOUT)
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


def load(url: str, path: str, bodies: list[dict], clients: int, seconds: float) -> dict[str, float]:
    """`clients` threads, each with its own keep-alive connection, posting for `seconds`."""
    import httpx

    lat: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    stop = time.perf_counter() + seconds
    start = threading.Barrier(clients)

    def run(i: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as c:
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


def flood(url: str, requests: list, clients: int, stop: threading.Event) -> dict[str, int]:
    """`clients` threads sending the hostile requests round and round until `stop`."""
    import httpx

    counts = {"sent": 0, "5xx": 0, "failed": 0}
    lock = threading.Lock()

    def run(i: int) -> None:
        k = i
        with httpx.Client(base_url=url, timeout=30) as c:
            while not stop.is_set():
                method, path, kw = requests[k % len(requests)]
                k += clients
                try:
                    r = c.request(method, path, **kw)
                    bad = r.status_code >= 500
                    failed = 0
                except httpx.HTTPError:
                    bad, failed = False, 1
                with lock:
                    counts["sent"] += 1
                    counts["5xx"] += bad
                    counts["failed"] += failed

    ts = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(clients)]
    for t in ts:
        t.start()
    stop.wait()
    for t in ts:
        t.join(60)
    return counts


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
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-web-") as d:
        tmp = Path(d)
        model, what = _model_arg(args.model, tmp)
        env_cpus = os.cpu_count()
        print(f"model       {what}")
        print(f"machine     {env_cpus} CPUs, {args.clients} clients, {args.seconds:g} s per endpoint")
        proc, url = _start(model, tmp)
        try:
            import httpx

            grooves = httpx.get(f"{url}/api/grooves").json()
            d_lat = len(grooves[0]["z"])
            rng = np.random.default_rng(0)
            names = [g["name"] for g in grooves]
            interp = [{"a": {"name": names[i]}, "b": {"name": names[(i + 3) % len(names)]},
                       "steps": 9} for i in range(len(names))]
            decode = [{"z": rng.standard_normal(d_lat).round(4).tolist()} for _ in range(64)]
            for path, bodies in (("/api/interpolate", interp), ("/api/decode", decode)):
                load(url, path, bodies[:2], 2, 0.5)  # warm up
                r = load(url, path, bodies, args.clients, args.seconds)
                print(f"{path:<17} {r['rps']:7.1f} req/s   p50 {r['p50'] * 1000:6.1f} ms   "
                      f"p99 {r['p99'] * 1000:6.1f} ms   max {r['max'] * 1000:6.1f} ms   "
                      f"({r['n']} requests, {r['errors']} errors)")
            # A normal client's /api/decode alone, then under a hostile flood.
            alone = load(url, "/api/decode", decode, 1, args.flood_seconds)
            stop = threading.Event()
            counts: dict[str, int] = {}
            ft = threading.Thread(target=lambda: counts.update(
                flood(url, _hostile_requests(d_lat), args.flood_clients, stop)))
            ft.start()
            time.sleep(0.5)  # the flood is under way
            under = load(url, "/api/decode", decode, 1, args.flood_seconds)
            stop.set()
            ft.join()
            ratio = under["p99"] / alone["p99"]
            print(f"{'flood':<17} normal /api/decode p99 {alone['p99'] * 1000:.1f} ms alone, "
                  f"{under['p99'] * 1000:.1f} ms under a flood of {args.flood_clients} hostile "
                  f"clients ({counts.get('sent', 0)} requests, {counts.get('5xx', 0)} 5xx, "
                  f"{counts.get('failed', 0)} failed connections): ratio {ratio:.2f} "
                  f"(goal <= 3); p50 {alone['p50'] * 1000:.1f} -> {under['p50'] * 1000:.1f} ms")
            w = ws_rate(url, args.ws_seconds)
            print(f"{'/ws/jam':<17} {w['rate']:7.1f} state updates/s   gap p50 {w['gap_p50']:5.1f} ms"
                  f"   p99 {w['gap_p99']:5.1f} ms   {w['notes']:.1f} notes/s   "
                  f"({w['n']} updates over {w['bars']} bars)")
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
