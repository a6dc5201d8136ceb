"""The decode worker: what the engine asks of the model (a mix of latent sources, decoded to
a Groove) and the two workers that answer, off the scheduling path.

`InlineWorker` (simulation) computes at once but reports the result ready after a chosen
virtual latency, so late decodes can be rehearsed deterministically; `ThreadWorker` (live)
runs the model on its own thread, fed by a queue, so inference never delays the scheduler.
"""

from __future__ import annotations

import contextlib
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from flatgroove.groove import Groove


class Model(Protocol):
    latent_dim: int

    def encode(self, grooves: list[Groove]) -> np.ndarray: ...

    def decode(self, z: np.ndarray, tempo: float = 120.0) -> list[Groove]: ...


@dataclass
class Source:
    """One term of z = sum(weight * z_i): a groove to encode, or a latent point."""

    weight: float
    groove: Groove | None = None
    z: np.ndarray | None = None
    key: str | None = None  # cache key for grooves that recur (bank targets)


@dataclass
class DecodeRequest:
    id: int
    bar: int
    sources: list[Source]
    tempo: float
    submitted: float


@dataclass
class DecodeResult:
    id: int
    bar: int
    groove: Groove | None
    z: np.ndarray | None
    ready: float  # when the result was ready (the engine's time source)
    compute_s: float
    error: str | None = None


def run_request(model: Model, req: DecodeRequest, cache: dict[str, np.ndarray]) -> tuple[Groove, np.ndarray]:
    """Encode what needs encoding (one batch), mix, decode."""
    todo = [s for s in req.sources if s.z is None and not (s.key and s.key in cache)]
    if todo:
        zs = np.asarray(model.encode([s.groove for s in todo]), dtype=np.float32)  # type: ignore[misc]
        for s, z in zip(todo, zs):
            if s.key:
                cache[s.key] = z
            s.z = z
    z = np.zeros(model.latent_dim, np.float32)
    for s in req.sources:
        zi = s.z if s.z is not None else cache[s.key]  # type: ignore[index]
        z = z + np.float32(s.weight) * np.asarray(zi, np.float32)
    groove = model.decode(z[None, :], tempo=req.tempo)[0]
    return groove, z


class InlineWorker:
    """For simulation: computes at once, but the result counts as ready `latency` seconds
    (virtual) after the request, so late decodes can be simulated deterministically."""

    def __init__(self, model: Model, latency: float | Callable[[int], float] = 0.0) -> None:
        self.model = model
        self.latency = latency  # seconds, or a function of the bar (0-based)
        self.cache: dict[str, np.ndarray] = {}
        self._pending: list[DecodeResult] = []

    def submit(self, req: DecodeRequest) -> None:
        t = time.perf_counter()
        try:
            g, z = run_request(self.model, req, self.cache)
            err = None
        except Exception as e:  # noqa: BLE001 - a failed decode is reported, the jam goes on
            g, z, err = None, None, f"{type(e).__name__}: {e}"
        lat = self.latency(req.bar) if callable(self.latency) else self.latency
        self._pending.append(DecodeResult(req.id, req.bar, g, z, req.submitted + lat,
                                          time.perf_counter() - t, err))

    def poll(self, now: float) -> list[DecodeResult]:
        ready = [r for r in self._pending if r.ready <= now + 1e-12]
        self._pending = [r for r in self._pending if r.ready > now + 1e-12]
        return ready

    def next_ready(self) -> float | None:
        return min((r.ready for r in self._pending), default=None)

    def warmup(self) -> None:
        pass

    def close(self) -> None:
        pass


class ThreadWorker:
    """For the live jam: model calls run on their own thread, fed by a queue, so inference
    never delays the scheduling thread. Results carry the monotonic time they were ready."""

    def __init__(self, model: Model, wake: threading.Event | None = None) -> None:
        self.model = model
        self.wake = wake
        self.cache: dict[str, np.ndarray] = {}
        self._in: queue.Queue[DecodeRequest | None] = queue.Queue()
        self._out: queue.Queue[DecodeResult] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="flatgroove-decoder", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        # One thread for inference: the other cores are for timing and MIDI. (Only if the
        # model uses torch: importing it here would hold the GIL for seconds.)
        torch = sys.modules.get("torch")
        if torch is not None:
            with contextlib.suppress(Exception):
                torch.set_num_threads(1)
        while True:
            req = self._in.get()
            if req is None:
                return
            t = time.monotonic()
            try:
                g, z = run_request(self.model, req, self.cache)
                err = None
            except Exception as e:  # noqa: BLE001
                g, z, err = None, None, f"{type(e).__name__}: {e}"
            done = time.monotonic()
            self._out.put(DecodeResult(req.id, req.bar, g, z, done, done - t, err))
            if self.wake is not None:
                self.wake.set()

    def warmup(self) -> None:
        """One decode before the clock starts: the first call of a torch model is slow."""
        z = np.zeros((1, self.model.latent_dim), np.float32)
        self.model.decode(z, tempo=120.0)
        self.model.encode([Groove.empty()])

    def submit(self, req: DecodeRequest) -> None:
        self._in.put(req)

    def poll(self, now: float) -> list[DecodeResult]:
        out = []
        while True:
            try:
                out.append(self._out.get_nowait())
            except queue.Empty:
                return out

    def next_ready(self) -> float | None:
        return None

    def close(self) -> None:
        self._in.put(None)
        self._thread.join(timeout=2.0)


__all__ = ["DecodeRequest", "DecodeResult", "InlineWorker", "Model", "Source", "ThreadWorker",
           "run_request"]
