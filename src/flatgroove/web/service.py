"""What the server does with the model, apart from HTTP: encode, decode, paths, blends,
samples, MIDI bytes and the latent map, with grooves as JSON-ready dicts.

One `Studio` per server. Work takes turns (`FairLock`): request threads and the jam thread
share one model, torch already uses the cores for one call, and one Python thread at a time
avoids a GIL convoy; whoever has asked least lately goes first.
"""

from __future__ import annotations

import contextlib
import contextvars
import heapq
import logging
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from flatgroove.groove import Groove
from flatgroove.web import schemas as S

log = logging.getLogger(__name__)


class ApiError(Exception):
    """A request that cannot be met; becomes an HTTP error with this status and message
    (and `retry_after` seconds, sent as Retry-After, when trying again later will do; `allow`,
    the methods a 405's path takes, sent as Allow)."""

    def __init__(self, status: int, message: str, retry_after: int | None = None,
                 allow: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after
        self.allow = allow


# Who the work at hand is for: (address, connection) of the HTTP request being served, set by
# the server's admission middleware; None for the jam, the map builder, tests and the CLI.
CLIENT: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "flatgroove_client", default=None)


def _r(a: np.ndarray, nd: int = 3) -> list:
    return np.round(np.asarray(a, np.float64), nd).tolist()


def groove_json(g: Groove) -> dict[str, Any]:
    """{name, tempo, hits, velocities, offsets}: 32 x 9 lists (hits as 0/1)."""
    return {
        "name": g.name,
        "tempo": round(float(g.tempo), 3),
        "hits": g.hits.astype(np.int8).tolist(),
        "velocities": _r(g.velocities),
        "offsets": _r(g.offsets),
    }


class FairLock:
    """Turns: one job at a time (a model call, or a request's whole Python work) and the next
    turn to the waiter that ranks first, not to the first that wakes.

    Rank: the recent use of the waiter's client (seconds of turns held, halved every
    HALF_LIFE_S, by address plus by connection) plus the job's expected cost (`cost` units of
    UNIT_S): a client that asked little lately goes before one that floods, and a cheap job
    before an expensive one; then arrival order. Work with no client (the jam) ranks first.
    A turn is re-entrant: a nested `hold` (each chunk of a big batch) is a point where the
    holder gives way to a waiter that ranks before it. At most MAX_WAITING clients' jobs
    wait; one more is refused (503, retry after 1 s) instead of queueing without bound."""

    HALF_LIFE_S = 2.0
    UNIT_S = 1e-3  # expected seconds of one unit of cost (one groove through the model)
    MAX_WAITING = 64

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._owner: int | None = None  # thread holding the turn
        self._queue: list[tuple[float, int]] = []  # (rank, arrival) of waiters, a heap
        self._seq = 0
        self._use: dict[str, tuple[float, float]] = {}  # client key -> (seconds, as of when)
        self._client: tuple[str, str] | None = None  # the holder's
        self._since = 0.0  # when the holder's use was last charged

    def _used(self, key: str, now: float) -> float:
        s, t = self._use.get(key, (0.0, now))
        return s * 0.5 ** ((now - t) / self.HALF_LIFE_S)

    def _charge(self, now: float) -> None:
        c, dt = self._client, now - self._since
        self._since = now
        if c is None:
            return
        for key in c:
            self._use[key] = (self._used(key, now) + dt, now)
        if len(self._use) > 4096:  # forget clients gone quiet
            self._use = {k: v for k, v in self._use.items() if self._used(k, now) > 1e-3}

    def _rank(self, client: tuple[str, str] | None, cost: int, now: float) -> float:
        if client is None:
            return -1.0
        return sum(self._used(k, now) for k in client) + max(cost, 1) * self.UNIT_S

    def waiting(self) -> int:
        return len(self._queue)

    def _wait_turn(self, rank: float) -> None:
        """Queue with `rank` and wait until first and free (holding self._cv)."""
        self._seq += 1
        me = (rank, self._seq)
        heapq.heappush(self._queue, me)
        while self._owner is not None or self._queue[0] != me:
            self._cv.wait()
        heapq.heappop(self._queue)

    def give_way(self, cost: int = 1) -> None:
        """In a turn: let a waiter that ranks first (see above) go, and wait for the turn
        back; `cost`: what comes next. Cheap when nobody does; a no-op outside a turn."""
        me = threading.get_ident()
        with self._cv:
            if self._owner != me:
                return
            now = time.monotonic()
            self._charge(now)
            rank = self._rank(self._client, cost, now)
            if self._queue and self._queue[0][0] < rank:
                mine = self._client
                self._owner = None
                self._cv.notify_all()
                self._wait_turn(rank)
                self._owner, self._client, self._since = me, mine, time.monotonic()

    @contextlib.contextmanager
    def hold(self, cost: int = 1):
        me = threading.get_ident()
        client = CLIENT.get()
        with self._cv:
            nested = self._owner == me
        if nested:  # a point to give way
            self.give_way(cost)
            yield
            return
        with self._cv:
            if client is not None and len(self._queue) >= self.MAX_WAITING:
                raise ApiError(503, f"the server is busy ({len(self._queue)} requests are "
                                    "waiting); try again in a second", retry_after=1)
            self._wait_turn(self._rank(client, cost, time.monotonic()))
            self._owner, self._client, self._since = me, client, time.monotonic()
        try:
            yield
        finally:
            with self._cv:
                self._charge(time.monotonic())
                self._owner, self._client = None, None
                self._cv.notify_all()


class LockedModel:
    """The model's user API behind one FairLock (the jam engine uses this too). Big batches
    run in chunks of CHUNK, each taking its turn, so that the model is shared fairly (a
    hostile flood of large requests costs a normal client little)."""

    CHUNK = 4  # a call's cost is mostly fixed (32 decoder steps): 4 cost about 1.5 x 1

    def __init__(self, model) -> None:
        self.model = model
        self.lock = FairLock()
        self.latent_dim = int(model.latent_dim)

    def encode(self, grooves) -> np.ndarray:
        if not isinstance(grooves, (list, tuple, np.ndarray)):
            grooves = list(grooves)
        out = []
        for i in range(0, max(len(grooves), 1), self.CHUNK):
            part = grooves[i:i + self.CHUNK]
            with self.lock.hold(len(part)):
                out.append(np.asarray(self.model.encode(part), np.float32))
        return np.concatenate(out) if len(out) > 1 else out[0]

    def decode(self, z, tempo: float = 120.0, threshold: float | None = None) -> list[Groove]:
        """Grooves at z; hits by the model's decoding rule unless a threshold is given."""
        z = np.asarray(z, np.float32)
        if z.ndim < 2 or len(z) <= self.CHUNK:
            with self.lock.hold(1 if z.ndim < 2 else len(z)):
                return self.model.decode(z, tempo=tempo, threshold=threshold)
        out: list[Groove] = []
        for i in range(0, len(z), self.CHUNK):
            with self.lock.hold(self.CHUNK):
                out += self.model.decode(z[i:i + self.CHUNK], tempo=tempo, threshold=threshold)
        return out

    def sample(self, n: int, temperature: float = 1.0, seed: int | None = None) -> np.ndarray:
        with self.lock.hold(1):
            return np.asarray(self.model.sample(n, temperature=temperature, seed=seed), np.float32)


class Studio:
    """The model, the built-in grooves and their codes, and the latent map (lazily)."""

    def __init__(
        self,
        model,
        model_source: str = "",
        dataset: str | os.PathLike | None = None,
        upload_limit: int = 1 << 20,
    ) -> None:
        from flatgroove.presets import all_builtins

        self.model = LockedModel(model)
        self.raw_model = model
        self.model_source = str(model_source)
        self.dataset = dataset
        self.upload_limit = upload_limit
        self.builtins: dict[str, Groove] = all_builtins()
        self.builtin_z: dict[str, np.ndarray] = dict(
            zip(self.builtins, self.model.encode(list(self.builtins.values())))
        )
        self._map = None
        self._map_lock = threading.Lock()
        self._reach: tuple[Any, float] | None = None

    @property
    def latent_dim(self) -> int:
        return self.model.latent_dim

    # -- the map -----------------------------------------------------------------------------
    def map_data(self):
        """Built on first use (encodes a few thousand windows), then cached in memory and on
        disk; concurrent first calls wait for one build."""
        with self._map_lock:
            if self._map is None:
                from flatgroove.web.projection import build_map

                self._map = build_map(
                    self.raw_model,
                    self.model.encode,
                    np.stack(list(self.builtin_z.values())),
                    self.dataset,
                )
            return self._map

    def warm(self) -> threading.Thread:
        """Build the map on a background thread, so the page's first look is quick."""
        t = threading.Thread(target=self._warm, name="flatgroove-map", daemon=True)
        t.start()
        return t

    def _warm(self) -> None:
        try:
            self.map_data()
        except Exception as e:  # noqa: BLE001 - the request that needs the map will say why
            log.warning("could not build the latent map: %s", e)

    def to_2d(self, z: np.ndarray) -> list[list[float]]:
        return _r(self.map_data().projection.to_2d(z), 4)

    def from_point(self, p: tuple[float, float]) -> np.ndarray:
        return self.map_data().projection.to_latent(np.asarray(p, np.float64))

    def info(self) -> dict[str, Any]:
        from flatgroove.drums import DRUMS, OUTPUT_PITCHES, SHORT_NAMES

        cfg = self.raw_model.config
        ck = getattr(self.raw_model, "checkpoint_info", {}) or {}
        return {
            "model": {
                "variant": cfg.variant,
                "latent_dim": self.latent_dim,
                "source": self.model_source,
                "name": ck.get("name") or Path(self.model_source).stem or cfg.variant,
            },
            "builtins": list(self.builtins),
            "drums": list(DRUMS),
            "short_names": list(SHORT_NAMES),
            "output_pitches": [int(p) for p in OUTPUT_PITCHES],
            "steps": 32,
            "limits": {
                "upload_bytes": self.upload_limit,
                "interpolate_steps": S.MAX_STEPS,
                "blend_grid": S.MAX_GRID,
                "samples": S.MAX_SAMPLES,
                "midi_grooves": S.MAX_MIDI_GROOVES,
            },
        }

    def map_json(self) -> dict[str, Any]:
        from flatgroove.web.projection import reach

        m = self.map_data()
        b = self.builtin_json()
        pts = np.concatenate([m.points.reshape(-1, 2), np.array([x["point"] for x in b]).reshape(-1, 2)])
        lo, hi = (pts.min(0), pts.max(0)) if len(pts) else (np.zeros(2), np.ones(2))
        if self._reach is None or self._reach[0] is not m:
            # The data the decoder knows: the dataset's windows, or the built-ins without one.
            known = m.points if len(m.points) >= 2 else np.array([x["point"] for x in b])
            self._reach = (m, reach(known))
        windows = None
        if m.files is not None and len(m.files) == len(m.points):
            files, fi = np.unique(m.files, return_inverse=True)
            styles, si = np.unique(m.full_styles, return_inverse=True)
            windows = {"files": files.tolist(), "file": fi.astype(int).tolist(),
                       "bar": np.asarray(m.bars, int).tolist(),
                       "styles": styles.tolist(), "style": si.astype(int).tolist()}
        return {
            "method": m.projection.method,
            "explained": m.projection.explained,
            "dataset": m.dataset,
            "note": m.note,
            "n_total": m.n_total,
            "points": _r(m.points, 3),
            "styles": m.styles.astype(int).tolist(),
            "style_names": m.style_names,
            "builtins": [{"name": x["name"], "point": x["point"]} for x in b],
            "bounds": [float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])],
            "reach": round(self._reach[1], 4),
            "windows": windows,
        }

    # -- grooves and latent points -------------------------------------------------------------
    def builtin_json(self) -> list[dict[str, Any]]:
        names = list(self.builtins)
        pts = self.to_2d(np.stack([self.builtin_z[n] for n in names]))
        return [
            {"name": n, "groove": groove_json(self.builtins[n]), "z": _r(self.builtin_z[n], 5),
             "point": p}
            for n, p in zip(names, pts)
        ]

    def grooves_json(self, gs: list[Groove]) -> list[dict[str, Any]]:
        """groove_json of each, giving way (see FairLock) every CHUNK grooves."""
        out = []
        for i, g in enumerate(gs):
            if i and i % LockedModel.CHUNK == 0:
                self.model.lock.give_way(LockedModel.CHUNK)
            out.append(groove_json(g))
        return out

    def builtin(self, name: str) -> Groove:
        from flatgroove.presets import builtin

        try:
            return builtin(name)
        except ValueError as e:
            raise ApiError(404, str(e)) from None

    def check_z(self, z: list[float] | np.ndarray) -> np.ndarray:
        a = np.asarray(z, np.float32)
        if a.shape != (self.latent_dim,):
            raise ApiError(422, f"z must have {self.latent_dim} numbers (the model's latent size), "
                                f"got {a.size}")
        return a

    def resolve(self, ref: S.GrooveRef) -> tuple[np.ndarray, float, str, Groove | None]:
        """(z, tempo, label, groove or None) of a groove reference."""
        if ref.name is not None:
            g = self.builtin(ref.name)
            z = self.builtin_z.get(g.name)
            if z is None:
                z = self.model.encode([g])[0]
            return z, ref.tempo or g.tempo, g.name, g
        if ref.groove is not None:
            g = ref.groove.to_groove()
            return self.model.encode([g])[0], ref.tempo or g.tempo, g.name or "groove", g
        if ref.z is not None:
            return self.check_z(ref.z), ref.tempo or 120.0, "z", None
        assert ref.point is not None
        p = ref.point
        return self.from_point(p), ref.tempo or 120.0, f"map ({p[0]:.2f}, {p[1]:.2f})", None

    def encoded(self, g: Groove) -> dict[str, Any]:
        z = self.model.encode([g])[0]
        rec = self.model.decode(z[None], tempo=g.tempo)[0]
        rec.name = f"{g.name or 'groove'} (reconstructed)"
        return {"groove": groove_json(g), "z": _r(z, 5), "point": self.to_2d(z)[0],
                "reconstruction": groove_json(rec)}

    def encode_request(self, req: S.EncodeRequest) -> dict[str, Any]:
        if req.name is not None:
            return self.encoded(self.builtin(req.name))
        assert req.groove is not None
        return self.encoded(req.groove.to_groove())

    def encode_midi(self, data: bytes, filename: str, bar: int) -> dict[str, Any]:
        """An uploaded MIDI file: its 2 bars from `bar` (0-based), encoded."""
        from flatgroove.midi import MidiError, check_header, groove_at, read_drums

        if len(data) > self.upload_limit:
            raise ApiError(413, f"the file is {len(data) / 1e6:.2f} MB; the limit is "
                                f"{self.upload_limit / 1e6:.2f} MB")
        if len(data) < 14 or not data.startswith(b"MThd"):
            raise ApiError(422, f"{filename or 'the upload'} is not a MIDI file "
                                "(it does not start with 'MThd')")
        shown = Path(filename).name[:80] or "upload"
        stem = Path(shown).stem or "upload"
        try:
            check_header(data, shown)  # a non-MIDI upload is answered before it touches disk
            with tempfile.TemporaryDirectory(prefix="flatgroove-upload-") as d:
                path = Path(d) / "upload.mid"
                path.write_bytes(data)
                try:
                    part = read_drums(path)
                    g = groove_at(part, bar)  # work bounded by the notes of those bars
                    bars = part.n_bars
                except MidiError as e:
                    raise MidiError(str(e).replace(str(path), shown)) from None
        except MidiError as e:
            raise ApiError(422, str(e)) from None
        g.name = stem if bar == 0 else f"{stem} bars {bar + 1}-{bar + 2}"
        out = self.encoded(g)
        out["bars"] = bars
        return out

    def decode_request(self, req: S.DecodeRequest) -> dict[str, Any]:
        if req.z is not None:
            z = self.check_z(req.z)
            label = "z"
        else:
            assert req.point is not None
            z = self.from_point(req.point)
            label = f"map ({req.point[0]:.2f}, {req.point[1]:.2f})"
        g = self.model.decode(z[None], tempo=req.tempo, threshold=req.threshold)[0]
        g.name = req.name or label
        return {"groove": groove_json(g), "z": _r(z, 5), "point": self.to_2d(z)[0]}

    def interpolate(self, req: S.InterpolateRequest) -> tuple[list[Groove], np.ndarray]:
        from flatgroove.generate import line, slerp

        za, ta, na, _ = self.resolve(req.a)
        zb, tb, nb, _ = self.resolve(req.b)
        path = (line if req.method == "line" else slerp)(za, zb, req.steps)
        # One batched decode (the path is one forward pass); the tempo glides from a's to b's.
        gs = self.model.decode(np.asarray(path, np.float32), tempo=float(ta))
        for i, (g, t) in enumerate(zip(gs, np.linspace(ta, tb, req.steps))):
            g.tempo = float(t)
            g.name = f"{na} -> {nb} {i}/{req.steps - 1}"
        return gs, path

    def interpolate_json(self, req: S.InterpolateRequest) -> dict[str, Any]:
        gs, path = self.interpolate(req)
        return {"grooves": self.grooves_json(gs), "z": _r(path, 5),
                "points": self.to_2d(path), "method": req.method}

    def blend(self, req: S.BlendRequest) -> dict[str, Any]:
        from flatgroove.generate import line

        refs = [self.resolve(c) for c in req.corners]
        z = [r[0] for r in refs]
        tempo = req.tempo or float(np.mean([r[1] for r in refs]))
        rows, zs = [], []
        for i, v in enumerate(np.linspace(0.0, 1.0, req.grid)):
            left = ((1 - v) * z[0] + v * z[2]).astype(np.float32)
            right = ((1 - v) * z[1] + v * z[3]).astype(np.float32)
            pts = line(left, right, req.grid)
            row = self.model.decode(pts, tempo=tempo)
            for j, g in enumerate(row):
                g.name = f"blend ({i}, {j})"
            rows.append(self.grooves_json(row))
            zs.append(pts)
        zz = np.stack(zs)
        return {"rows": rows, "z": _r(zz, 5),
                "points": [self.to_2d(r) for r in zz], "corners": [r[2] for r in refs]}

    def sample(self, req: S.SampleRequest) -> dict[str, Any]:
        z = self.model.sample(req.n, temperature=req.temperature, seed=req.seed)
        gs = self.model.decode(z, tempo=req.tempo)
        for i, g in enumerate(gs):
            g.name = f"sample {i + 1}" if req.seed is None else f"sample {req.seed}.{i + 1}"
        return {"grooves": self.grooves_json(gs), "z": _r(z, 5), "points": self.to_2d(z)}

    def midi_bytes(self, req: S.MidiRequest) -> bytes:
        from flatgroove.midi import write_midi

        if req.grooves is not None:
            gs = [g.to_groove() for g in req.grooves]
        else:
            assert req.path is not None
            gs, _ = self.interpolate(req.path)
        with tempfile.TemporaryDirectory(prefix="flatgroove-midi-") as d:
            out = write_midi(gs, Path(d) / "out.mid", tempo=req.tempo)
            return out.read_bytes()
