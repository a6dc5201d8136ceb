"""Any folder of MIDI files as a dataset (for users who train on their own grooves), and the
window builder that the Groove MIDI Dataset shares."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from pathlib import Path

from tqdm import tqdm

from flatgroove.data import cache
from flatgroove.data.windows import WindowSet
from flatgroove.errors import DatasetError
from flatgroove.midi import MidiError, read_drums, window_arrays

log = logging.getLogger("flatgroove.data")

MIDI_SUFFIXES = (".mid", ".midi", ".MID", ".MIDI")


# a Groove MIDI Dataset file name: 12_funk_92_beat_4-4.mid
GMD_NAME = re.compile(r"\d+_[\w-]+_\d+_(beat|fill)_\d+-\d+\.midi?")


def build_windows(
    entries: Iterable[tuple[Path, dict[str, str]]],
    drum_map: str,
    hop_bars: int = 1,
    progress: bool = True,
) -> WindowSet:
    """Window every file; unreadable files are skipped with a warning, counted at the end."""
    entries = list(entries)
    parts, skipped = [], []
    for path, meta in tqdm(entries, desc="reading MIDI", unit="file", disable=not progress or None, leave=False):
        try:
            part = read_drums(path, drum_map=drum_map)
            feats, starts, tempos = window_arrays(part, hop_bars=hop_bars)
        except MidiError as e:
            log.warning("skipped %s", e)
            skipped.append((str(path), str(e)))
            continue
        if len(feats):
            parts.append((feats, starts, tempos, meta))
        else:  # said, not silently dropped: `data stats` counts the reasons
            why = (f"too short for a window ({part.n_bars} bar{'s' if part.n_bars != 1 else ''} "
                   "of drums; a window is 2 bars)" if part.n_bars < 2 else
                   f"no drum hits in any 2-bar window ({part.n_bars} bars)")
            log.info("skipped %s: %s", path, why)
            skipped.append((str(path), f"{path}: {why}"))
    if skipped:
        log.warning("skipped %d of %d files (see above)", len(skipped), len(entries))
    return WindowSet.concat(parts, skipped)


def midi_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix in MIDI_SUFFIXES and p.is_file())


def load_folder(
    root: str | Path,
    drum_map: str = "gm",
    hop_bars: int = 1,
    use_cache: bool = True,
    progress: bool = True,
    val_fraction: float = 0.1,
) -> WindowSet:
    """Every MIDI file under `root`. Files are assigned to 'train' or 'validation' by a stable
    hash of their relative path (`val_fraction` of them to validation), so a user's own folder
    trains with a held-out set and never leaks windows of one file across splits."""
    import zlib

    root = Path(root)
    if not root.exists():
        raise DatasetError(f"{root}: no such folder")
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder")
    files = midi_files(root)
    if not files:
        raise DatasetError(f"{root}: no MIDI files (*.mid, *.midi) in this folder or below")
    rel = [f.relative_to(root) for f in files]
    if sum(bool(GMD_NAME.fullmatch(r.name)) for r in rel) > len(rel) / 2:
        # read as a plain folder: the GM drum map (not the TD-11's), a hashed split (not the
        # official one, whose test files would train), no test split
        log.warning("%s: these look like Groove MIDI Dataset files, but there is no info.csv "
                    "here; read as a plain MIDI folder (GM drum map, hashed train/validation "
                    "split). Point --data at the dataset's top folder for its own split.", root)
    settings = {"kind": "folder", "drum_map": drum_map, "hop_bars": hop_bars, "val": val_fraction}
    key = cache.source_key([root / r for r in rel], settings) if use_cache else ""
    if use_cache and (ws := cache.load(key)) is not None:
        return ws

    def split_of(r: Path) -> str:
        return "validation" if (zlib.crc32(str(r).encode()) % 1000) < val_fraction * 1000 else "train"

    entries = [
        (root / r, {"file": str(r), "split": split_of(r), "drummer": "", "style": r.parent.name,
                    "beat_type": ""})
        for r in rel
    ]
    ws = build_windows(entries, drum_map, hop_bars, progress)
    if len(ws) == 0:
        raise DatasetError(f"{root}: none of {len(files)} MIDI files gave a 2-bar drum window")
    read = sorted(set(ws.meta["file"].tolist()))
    if val_fraction > 0 and len(read) > 1 and not (ws.meta["split"] == "validation").any():
        # A small folder still gets one held-out file: of the files that gave windows (a
        # corrupt or short file hashed to validation would leave it empty), the lowest hash.
        held = min(read, key=lambda f: zlib.crc32(f.encode()))
        split = ws.meta["split"].astype(object)
        split[ws.meta["file"] == held] = "validation"
        ws.meta["split"] = split.astype(str)
    if use_cache:
        cache.save(key, ws)
    return ws
