"""Datasets of 2-bar windows: the Groove MIDI Dataset and any folder of MIDI files."""

from __future__ import annotations

from pathlib import Path

from flatgroove.data.folder import DatasetError, load_folder
from flatgroove.data.gmd import default_root, is_gmd, load_gmd
from flatgroove.data.windows import WindowSet


def load_dataset(path: str | Path | None = None, **kw) -> WindowSet:
    """The Groove MIDI Dataset if `path` has an info.csv, else every MIDI file under it."""
    root = Path(path) if path is not None else default_root()
    if is_gmd(root):
        return load_gmd(root, **kw)
    folder_kw = {k: v for k, v in kw.items() if k in ("hop_bars", "use_cache", "progress")}
    ws = load_folder(root, **folder_kw)
    if kw.get("split"):
        ws = ws.filter(split=kw["split"])
    return ws


__all__ = ["DatasetError", "WindowSet", "default_root", "load_dataset", "load_folder", "load_gmd"]
