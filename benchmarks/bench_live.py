"""Live engine timing over real MIDI ports (JACK's dummy driver, started here and stopped).

A second process plays a drummer into the engine and listens to the machine's output port.
Per tempo it reports
  - how early each bar's pattern is ready before its bar line (decode finished), in beats and
    ms: goal >= 1 beat at 200 BPM;
  - how late the scheduling thread sends notes against their scheduled times;
  - the jitter of notes at the receiving port: |latency - median latency| (the constant part
    is the JACK period), median / p99 / max: goal p99 < 2 ms.

    python benchmarks/bench_live.py [--bars 32] [--bpm 120 200] [--period 64] [--model flat]
                                    [--jack-no-realtime] [--no-realtime]

Uses the shipped model (flatgroove.load_model()) or the one given with --model.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys

import numpy as np

GOAL_READY_BEATS = 1.0
GOAL_JITTER_P99_MS = 2.0


def start_jack(period: int, realtime: bool):
    from flatgroove.live.jack import JackServer, JackUnavailable

    server = JackServer(f"flatgroove-bench-{os.getpid()}", period=period, realtime=realtime)
    try:
        server.start()
    except JackUnavailable as e:
        print(f"bench_live: {e}; nothing to measure")
        return None
    return server


def load(spec: str):  # -> model
    import flatgroove

    m = flatgroove.load_model(None if spec == "flat" else spec)
    return m, f"{spec} (flatgroove.load_model)"


def stats(x: np.ndarray) -> str:
    return f"median {np.median(x):6.2f}  p99 {np.percentile(x, 99):6.2f}  max {x.max():6.2f}"


def match(sent: list, recv: list[tuple[float, list[int]]]) -> tuple[np.ndarray, int]:
    """Latencies (ms) of received messages against their scheduled times. Each message is
    matched to the same bytes sent in order, skipping any the port lost (JACK keeps the order
    of one port's messages, but a starved client can drop some)."""
    by: dict[tuple[int, ...], list[float]] = {}
    for s in sent:
        by.setdefault(tuple(s.message.bytes()), []).append(s.scheduled)
    pos = dict.fromkeys(by, 0)
    lat, matched = [], 0
    for t, b in recv:
        key = tuple(b)
        times, i = by.get(key, []), pos.get(key, 0)
        while i < len(times) and t - times[i] > 0.2:  # that one never arrived
            i += 1
        if i < len(times) and t - times[i] > -0.05:
            lat.append(t - times[i])
            matched += 1
            i += 1
        pos[key] = i
    return np.array(lat) * 1e3, len(sent) - matched


def run_one(model, bpm: float, bars: int, drummer: str, realtime: bool) -> dict:
    from flatgroove.drums import OUTPUT_PITCHES
    from flatgroove.live.controls import ControlMap, load_target
    from flatgroove.live.jack import run_with_peer, start_peer
    from flatgroove.live.session import LiveSession

    spb = 60.0 / bpm
    g = load_target(drummer).groove
    notes = [(4 * 2 * k + t / 4.0, OUTPUT_PITCHES[d], v)
             for k in range(bars // 2) for t, d, v in g.notes()]
    cfg = {"client": "bench-peer", "spb": spb, "notes": notes, "listen_s": (4 * bars + 2) * spb}
    peer = start_peer(cfg)
    try:
        c = ControlMap.load()
        c.mode, c.a = "accompany", 0.5
        ses = LiveSession(model, "bench-peer-in:listen", ["bench-peer-out:drums"], controls=c,
                          bpm=bpm, api="jack", end_bar=bars,
                          keep_history=True, realtime=realtime)
    except BaseException:
        peer.kill()
        raise
    reason, got = run_with_peer(ses, peer, timeout=60)
    eng = ses.engine
    sent = [s for s in eng.scheduler.sent if s.message.type in ("note_on", "note_off")]
    recv = [(t, b) for t, b in got if b[0] & 0xF0 in (0x80, 0x90)]
    lat, lost = match(sent, recv)
    late = np.array([s.time - s.scheduled for s in sent]) * 1e3
    ready = np.array([m[2] for m in eng.ready_margins if m[0] >= 1])
    ready_ms = np.array([m[1] for m in eng.ready_margins if m[0] >= 1]) * 1e3
    prio = next((e.text for e in eng.log if e.text.startswith("scheduling thread")), "")
    return {"bpm": bpm, "reason": reason, "sent": len(sent), "received": len(recv),
            "lost": lost, "lat": lat, "late": late, "ready": ready, "ready_ms": ready_ms,
            "late_bars": sum(1 for b in eng.bar_logs.values() if "late" in b.source),
            "priority": prio}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bars", type=int, default=32, help="bars per tempo (200 for the full run)")
    ap.add_argument("--bpm", type=float, nargs="+", default=[120.0, 200.0])
    ap.add_argument("--period", type=int, default=64, help="JACK period in frames at 48 kHz")
    ap.add_argument("--jack-no-realtime", action="store_true",
                    help="run jackd with --no-realtime (default: -R, real-time threads, as a "
                         "live rig would; on a busy machine a non-real-time server stalls)")
    ap.add_argument("--no-realtime", action="store_true",
                    help="do not raise the scheduling thread's priority")
    ap.add_argument("--model", default="flat", help="flat, vae, or a checkpoint")
    ap.add_argument("--drummer", default="funk", help="built-in groove the drummer plays")
    args = ap.parse_args(argv)
    server = start_jack(args.period, not args.jack_no_realtime)
    if server is None:
        return 0
    try:
        model, label = load(args.model)
        print(f"bench_live: {args.bars} bars per tempo, model {label}, JACK dummy "
              f"{args.period} frames @ 48 kHz ({args.period / 48:.2f} ms period, "
              f"{'no-realtime' if args.jack_no_realtime else 'realtime'}), {os.cpu_count()} CPUs")
        ok = True
        for bpm in args.bpm:
            r = run_one(model, bpm, args.bars, args.drummer, not args.no_realtime)
            jit = np.abs(r["lat"] - np.median(r["lat"]))
            print(f"\n{bpm:.0f} BPM: {r['reason']}; {r['priority']}")
            print(f"  pattern ready before its bar line (beats): {stats(r['ready'])}  "
                  f"min {r['ready'].min():.2f}  (ms: min {r['ready_ms'].min():.0f})  "
                  f"bars repeated as late: {r['late_bars']}")
            print(f"  send lateness vs schedule (ms):          {stats(r['late'])}")
            print(f"  receive latency (ms):                    {stats(r['lat'])}")
            print(f"  receive jitter |lat - median| (ms):      {stats(jit)}")
            print(f"  messages: {r['sent']} sent, {r['received']} received, "
                  f"{r['lost']} not matched (lost)")
            good_ready = r["ready"].min() >= GOAL_READY_BEATS
            good_jit = np.percentile(jit, 99) < GOAL_JITTER_P99_MS
            print(f"  goals: ready >= {GOAL_READY_BEATS:g} beat: {'yes' if good_ready else 'NO'}; "
                  f"jitter p99 < {GOAL_JITTER_P99_MS:g} ms: {'yes' if good_jit else 'NO'}")
            ok &= good_ready and good_jit
        return 0 if ok else 1
    finally:
        with contextlib.suppress(Exception):
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
