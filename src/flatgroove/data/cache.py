"""On-disk cache of built windows, keyed by a hash of the source files and the settings.

Writes are atomic (temp file + rename): a crash never leaves a half-written cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from flatgroove.data.windows import META_COLUMNS, WindowSet

CACHE_VERSION = 1


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
        h.update(f.read_bytes())
    return h.hexdigest()


def load(key: str) -> WindowSet | None:
    path = cache_dir() / f"windows-{key}.npz"
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            skipped = [tuple(s.split("\t", 1)) for s in z["skipped"]]
            return WindowSet(
                z["features"],
                z["tempos"],
                z["starts"],
                {c: z[f"meta_{c}"] for c in META_COLUMNS},
                skipped,  # type: ignore[arg-type]
            )
    except Exception:  # noqa: BLE001
        # A damaged cache is rebuilt, never trusted.
        return None


def save(key: str, ws: WindowSet) -> Path:
    d = cache_dir()
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"windows-{key}.npz"
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(
                fh,
                features=ws.features,
                tempos=ws.tempos,
                starts=ws.starts,
                skipped=np.array([f"{a}\t{b}" for a, b in ws.skipped], dtype=str),
                **{f"meta_{c}": ws.meta[c] for c in META_COLUMNS},
            )
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
