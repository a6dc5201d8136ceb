"""On-disk cache of built windows, keyed by a hash of the source files and the settings.

Writes are atomic (temp file + rename): a crash never leaves a half-written cache.
Features are stored sparse (the hits, and the velocity and offset of each): a window is
mostly silent, so the file is ~8x smaller and loads faster than the dense array.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np

from flatgroove.data.windows import META_COLUMNS, WindowSet
from flatgroove.files import atomic_path
from flatgroove.groove import N_DRUMS, N_FEATURES, N_STEPS

CACHE_VERSION = 4  # 2: sparse features; 3: files with no window are listed as skipped;
# 4: note-ons without note-offs are read (midi.close_hanging_notes: one GMD training note)


log = logging.getLogger("flatgroove.data")


def cache_dir() -> Path:
    d = os.environ.get("FLATGROOVE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "flatgroove"
    )
    return Path(d)


def source_key(files: list[Path], settings: dict) -> str:
    """A hash of every source file's bytes, its relative name and the settings."""
    h = hashlib.blake2b(digest_size=16)
    h.update(json.dumps({"v": CACHE_VERSION, **settings}, sort_keys=True).encode())
    for f in files:
        h.update(str(f).encode())
        try:
            h.update(f.read_bytes())
        except OSError as e:  # the window builder skips it and says why; the key notes it
            h.update(f"unreadable: {type(e).__name__}".encode())
    return h.hexdigest()


def _pack(features: np.ndarray) -> dict[str, np.ndarray]:
    """Sparse form of (n, 32, 27) features: flat positions of the hits, their velocities and
    offsets. Dense when the features are not of that form (a hit not 1, a silent cell not 0)."""
    f = np.ascontiguousarray(features, np.float32)
    if f.ndim != 3 or f.shape[1:] != (N_STEPS, N_FEATURES):
        return {"features": f}
    flat = f.reshape(-1)
    hit = np.flatnonzero(f[:, :, :N_DRUMS])  # positions in the (n, 32, 9) hits
    pos = hit // N_DRUMS * N_FEATURES + hit % N_DRUMS  # ... in the (n, 32, 27) features
    vel, off = flat[pos + N_DRUMS], flat[pos + 2 * N_DRUMS]
    exact = (flat[pos] == 1).all() and np.count_nonzero(flat) == (
        len(pos) + np.count_nonzero(vel) + np.count_nonzero(off)
    )
    if not exact:
        return {"features": f}
    itype = np.int32 if flat.size < 2**31 - 2 * N_DRUMS else np.int64
    return {"n_windows": np.array(len(f)), "hit_pos": pos.astype(itype), "hit_vel": vel,
            "hit_off": off}


def _unpack(z) -> np.ndarray:
    f = np.zeros((int(z["n_windows"]), N_STEPS, N_FEATURES), np.float32)
    flat = f.reshape(-1)
    pos = z["hit_pos"]
    flat[pos] = 1.0
    flat[pos + N_DRUMS] = z["hit_vel"]
    flat[pos + 2 * N_DRUMS] = z["hit_off"]
    return f


def load(key: str) -> WindowSet | None:
    path = cache_dir() / f"windows-{key}.npz"
    try:
        if not path.is_file():
            return None
    except OSError:  # an unreadable cache folder: no cache
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            skipped = [tuple(s.split("\t", 1)) for s in z["skipped"]]
            features = z["features"] if "features" in z else _unpack(z)
            return WindowSet(
                features,
                z["tempos"],
                z["starts"],
                {c: z[f"meta_{c}"] for c in META_COLUMNS},
                skipped,  # type: ignore[arg-type]
            )
    except Exception:  # noqa: BLE001
        # A damaged cache is rebuilt, never trusted.
        return None


_warned: set[str] = set()


def save(key: str, ws: WindowSet) -> Path | None:
    """Write the cache; where it cannot be written (a read-only folder, FLATGROOVE_CACHE
    naming a file, a full disk), go on without it: one warning, and None."""
    d = cache_dir()
    try:
        return _save(d, key, ws)
    except OSError as e:
        if str(d) not in _warned:  # once per folder, not once per dataset
            _warned.add(str(d))
            why = e.strerror or type(e).__name__
            log.warning("cannot write the cache in %s (%s); going on without a cache "
                        "(set FLATGROOVE_CACHE to a writable folder)", d, why)
        return None


def _save(d: Path, key: str, ws: WindowSet) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"windows-{key}.npz"
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(
            fh,
            **_pack(ws.features),
            tempos=ws.tempos,
            starts=ws.starts,
            skipped=np.array([f"{a}\t{b}" for a, b in ws.skipped], dtype=str),
            **{f"meta_{c}": ws.meta[c] for c in META_COLUMNS},
        )
    return path
