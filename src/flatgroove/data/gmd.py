"""The Groove MIDI Dataset (Gillick et al. 2019; v1.0.0, CC BY 4.0): its `info.csv`, the
official train/validation/test split, 4/4 files only, 2-bar windows with a 1-bar hop."""

from __future__ import annotations

import csv
import os
from pathlib import Path

from flatgroove.data import cache
from flatgroove.data.folder import DatasetError, build_windows
from flatgroove.data.windows import WindowSet

SPLITS = ("train", "validation", "test")
REQUIRED_COLUMNS = ("drummer", "style", "beat_type", "time_signature", "midi_filename", "split")


def default_root() -> Path:
    """$FLATGROOVE_GMD, else ../shared/data/groove beside the project checkout."""
    env = os.environ.get("FLATGROOVE_GMD")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for parent in here.parents:
        cand = parent.parent / "shared" / "data" / "groove"
        if cand.exists():
            return cand
    return Path.cwd().parent / "shared" / "data" / "groove"


def read_info(root: Path) -> list[dict[str, str]]:
    info = root / "info.csv"
    if not root.exists():
        raise DatasetError(f"{root}: no such folder (get the Groove MIDI Dataset, see README)")
    if not info.exists():
        raise DatasetError(f"{info}: missing; a Groove MIDI Dataset folder has info.csv at its top")
    if not info.is_file():
        raise DatasetError(f"{info}: not a file")
    try:
        with info.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (UnicodeDecodeError, csv.Error) as e:
        raise DatasetError(f"{info}: not a readable CSV file ({e})") from None
    if not rows:
        raise DatasetError(f"{info}: has no rows")
    missing = [c for c in REQUIRED_COLUMNS if c not in rows[0]]
    if missing:
        raise DatasetError(f"{info}: missing columns {missing}")
    for line, r in enumerate(rows, start=2):  # (line 1: the header)
        empty = [c for c in REQUIRED_COLUMNS if not r.get(c)]
        if empty:
            raise DatasetError(f"{info}: line {line} has no {', '.join(empty)} (a cut or "
                               "hand-edited file?)")
    return rows


def is_gmd(root: str | Path) -> bool:
    return (Path(root) / "info.csv").exists()  # (a folder there is refused by read_info)


def load_gmd(
    root: str | Path | None = None,
    split: str | None = None,
    beat_type: str | None = None,
    drummer: str | None = None,
    style: str | None = None,
    hop_bars: int = 1,
    use_cache: bool = True,
    progress: bool = True,
) -> WindowSet:
    """Windows of the Groove MIDI Dataset, filtered by split, beat/fill, drummer and style.

    All 4/4 files are windowed and cached once; filters apply to the cached set.
    """
    root = Path(root) if root is not None else default_root()
    if split is not None and split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}; choose one of {SPLITS}")
    rows = read_info(root)
    rows = [r for r in rows if r["time_signature"] == "4-4"]
    files = [root / r["midi_filename"] for r in rows]
    settings = {"kind": "gmd", "drum_map": "td11", "hop_bars": hop_bars}
    ws = None
    key = ""
    if use_cache:
        key = _content_key(root, rows, settings)
        ws = cache.load(key)
    if ws is None:
        entries = [
            (f, {"file": r["midi_filename"], "split": r["split"], "drummer": r["drummer"],
                 "style": r["style"], "beat_type": r["beat_type"]})
            for f, r in zip(files, rows)
        ]
        ws = build_windows(entries, "td11", hop_bars, progress)
        if use_cache:
            cache.save(key, ws)
    return ws.filter(split=split, beat_type=beat_type, drummer=drummer, style=style)


def _content_key(root: Path, rows: list[dict[str, str]], settings: dict) -> str:
    # Hash info.csv and every file's bytes: an edited file rebuilds the cache.
    files = [root / "info.csv"] + [root / r["midi_filename"] for r in rows]
    present = [f for f in files if f.exists()]
    return cache.source_key(present, settings)
