"""Datasets: MIDI folders, the Groove MIDI Dataset (a small fake one, and the real one when
present), bad input, and the on-disk cache."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np
import pytest

from flatgroove.data import (
    DatasetError,
    WindowSet,
    cache,
    folder,
    gmd,
    load_dataset,
    load_folder,
    load_gmd,
)
from flatgroove.drums import N_DRUMS
from flatgroove.groove import N_FEATURES, N_STEPS, STEPS_PER_BAR, Groove
from flatgroove.midi import read_drums, window_arrays, write_midi


def grooves(n: int, seed: int, tempo: float = 100.0) -> list[Groove]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        hits = (rng.random((N_STEPS, N_DRUMS)) < 0.2).astype(np.float32)
        hits[0, 0] = hits[STEPS_PER_BAR, 0] = 1
        out.append(Groove(hits, rng.uniform(0.1, 1, hits.shape), rng.uniform(0, 0.4, hits.shape), tempo))
    return out


def n_windows(path: Path, drum_map: str = "gm") -> int:
    return len(window_arrays(read_drums(path, drum_map=drum_map))[0])


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "cache"
    monkeypatch.setenv("FLATGROOVE_CACHE", str(d))
    return d


@pytest.fixture
def mixed_folder(tmp_path, mido_file) -> tuple[Path, list[Path], list[Path]]:
    """A folder of 4 good files (2-6 bars) and 3 bad ones: noise, 3/4, piano only."""
    root = tmp_path / "mine"
    (root / "rock").mkdir(parents=True)
    (root / "jazz" / "deep").mkdir(parents=True)
    good = [
        write_midi(grooves(1, 1), root / "rock" / "a.mid"),
        write_midi(grooves(3, 2, 140.0), root / "rock" / "b.MID"),
        write_midi(grooves(2, 3), root / "jazz" / "c.midi"),
        write_midi(grooves(2, 4), root / "jazz" / "deep" / "d.mid"),
    ]
    bad = [root / "noise.mid", root / "jazz" / "waltz.mid", root / "rock" / "piano.mid"]
    bad[0].write_bytes(np.random.default_rng(0).bytes(200))
    pulse = [(q * 480, 36, 100, 9) for q in range(12)]
    mido_file(bad[1], [pulse], time_signature=(3, 4))
    mido_file(bad[2], [[(q * 480, 60, 80, 0) for q in range(8)], [(0, 50, 80, 1)]])
    (root / "notes.txt").write_text("not MIDI, not read")
    return root, good, bad


# -- folders -------------------------------------------------------------------------------


def test_an_unreadable_file_is_skipped_not_a_traceback(mixed_folder, cache_dir, monkeypatch):
    root, good, _ = mixed_folder
    real = Path.read_bytes

    def denied(self):
        if self.name == "a.mid":
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", denied)
    ws = load_folder(root, progress=False)  # was: PermissionError from the cache key
    assert len(ws) >= sum(n_windows(f) for f in good[1:])  # the others load


def test_folder_skips_bad_files_with_a_warning(mixed_folder, cache_dir, caplog):
    root, good, bad = mixed_folder
    with caplog.at_level(logging.WARNING, logger="flatgroove.data"):
        ws = load_folder(root, progress=False)
    assert len(ws) == sum(n_windows(f) for f in good) == 1 + 5 + 3 + 3
    assert sorted(Path(f).name for f, _ in ws.skipped) == sorted(f.name for f in bad)
    reasons = dict(ws.skipped)
    assert "not a readable MIDI file" in reasons[str(bad[0])]
    assert "time signature 3/4" in reasons[str(bad[1])]
    assert "no drum notes" in reasons[str(bad[2])]
    assert "skipped 3 of 7 files (see above)" in caplog.text
    assert caplog.text.count("skipped ") == 4
    # Metadata: relative file, style from the parent folder, a split per file.
    assert set(ws.meta["file"]) == {"rock/a.mid", "rock/b.MID", "jazz/c.midi", "jazz/deep/d.mid"}
    assert set(ws.meta["style"]) == {"rock", "jazz", "deep"}
    assert set(ws.meta["split"]) <= {"train", "validation"}
    for f in set(ws.meta["file"]):
        assert len(set(ws.meta["split"][ws.meta["file"] == f])) == 1  # a file stays in one split
    assert ws.tempos[ws.meta["file"] == "rock/b.MID"] == pytest.approx(140.0, abs=0.01)
    # Only the finished cache file is left behind: no temp files.
    assert [p.name for p in cache_dir.iterdir()] == [f"windows-{_key_of(cache_dir)}.npz"]


def _key_of(d: Path) -> str:
    (f,) = d.glob("windows-*.npz")
    return f.name[len("windows-") : -len(".npz")]


def test_folder_validation_fraction(tmp_path, cache_dir):
    for i in range(40):
        write_midi(grooves(1, i), tmp_path / "f" / f"{i:02d}.mid")
    ws = load_folder(tmp_path / "f", progress=False, use_cache=False)
    counts = ws.split_counts()
    assert counts["train"] + counts["validation"] == 40
    assert 0 < counts["validation"] < 12  # about 10%
    assert ws.split_counts() == load_folder(tmp_path / "f", progress=False).split_counts()
    assert len(load_folder(tmp_path / "f", progress=False, val_fraction=0.0).filter(
        split="validation")) == 0


def test_folder_errors(tmp_path, mido_file):
    with pytest.raises(DatasetError, match=r"nowhere: no such folder"):
        load_folder(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("hi")
    with pytest.raises(DatasetError, match=r"empty: no MIDI files \(\*.mid, \*.midi\)"):
        load_folder(tmp_path / "empty")
    f = write_midi(grooves(1, 0), tmp_path / "one.mid")
    with pytest.raises(DatasetError, match=r"one.mid: not a folder"):
        load_folder(f)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.mid").write_bytes(b"MThd")
    mido_file(tmp_path / "bad" / "short.mid", [[(0, 36, 90, 9)]])
    with pytest.raises(DatasetError, match=r"bad: none of 2 MIDI files gave a 2-bar drum window"):
        load_folder(tmp_path / "bad", progress=False, use_cache=False)


def test_load_dataset_reads_a_folder(mixed_folder, cache_dir):
    root = mixed_folder[0]
    ws = load_dataset(root, progress=False)
    assert len(ws) == 12
    val = load_dataset(root, split="validation", progress=False)
    assert set(val.meta["split"]) <= {"validation"}
    assert len(val) == int((ws.meta["split"] == "validation").sum())


# -- a small fake Groove MIDI Dataset ---------------------------------------------------------

COLUMNS = ["drummer", "session", "id", "style", "bpm", "beat_type", "time_signature",
           "midi_filename", "audio_filename", "duration", "split"]


@pytest.fixture
def fake_gmd(tmp_path, mido_file) -> Path:
    """5 rows: three 4/4 files (train beat, validation fill, test beat), one 3/4 row (left out by
    info.csv), one row whose file is missing (skipped)."""
    root = tmp_path / "gmd"
    rows = [
        ("drummer1", "funk/groove1", "beat", "4-4", "drummer1/s1/1_funk.mid", "train", 3),
        ("drummer1", "rock", "fill", "4-4", "drummer1/s1/2_rock.mid", "validation", 1),
        ("drummer2", "jazz-swing", "beat", "4-4", "drummer2/s1/3_jazz.mid", "test", 2),
        ("drummer2", "pop", "beat", "3-4", "drummer2/s1/4_waltz.mid", "train", 1),
        ("drummer3", "funk", "beat", "4-4", "drummer3/s1/5_gone.mid", "train", 0),
    ]
    root.mkdir()
    with (root / "info.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        for i, (dr, style, beat, ts, fn, split, n) in enumerate(rows):
            w.writerow([dr, f"{dr}/s1", f"{dr}/s1/{i}", style, 100, beat, ts, fn, "", 10, split])
            if n:
                # TD-11 pitches: 45 is the mid tom there.
                notes = [(t * 240, 45 if t % 4 else 36, 90, 9) for t in range(8 * 2 * n)]
                (root / fn).parent.mkdir(parents=True, exist_ok=True)
                mido_file(root / fn, [notes], time_signature=(3, 4) if ts == "3-4" else (4, 4))
    return root


def test_fake_gmd_split_filters_and_metadata(fake_gmd, cache_dir):
    ws = load_gmd(fake_gmd, progress=False)
    assert ws.split_counts() == {"train": 5, "validation": 1, "test": 3}
    assert [Path(f).name for f, _ in ws.skipped] == ["5_gone.mid"]
    assert "no such file" in ws.skipped[0][1]
    assert "drummer2/s1/4_waltz.mid" not in set(ws.meta["file"])  # 3-4 rows are left out
    # The TD-11 map: pitch 45 is the mid tom.
    assert ws.hits_per_drum()[5] > 0 and ws.hits_per_drum()[4] == 0
    assert len(load_gmd(fake_gmd, split="train", progress=False)) == 5
    assert len(load_gmd(fake_gmd, beat_type="fill", progress=False)) == 1
    assert len(load_gmd(fake_gmd, drummer="drummer2", progress=False)) == 3
    assert len(load_gmd(fake_gmd, style="funk", progress=False)) == 5  # funk/groove1 -> funk
    assert len(load_gmd(fake_gmd, style="jazz", progress=False)) == 3  # jazz-swing -> jazz
    assert len(load_gmd(fake_gmd, style="jazz-swing", progress=False)) == 3
    assert len(load_gmd(fake_gmd, split="test", drummer="drummer1", progress=False)) == 0
    assert len(load_dataset(fake_gmd, split="validation", progress=False)) == 1
    g = ws.groove(0)
    assert g.name == "drummer1/s1/1_funk.mid@0" and g.tempo == pytest.approx(120.0)


def test_fake_gmd_errors(fake_gmd, tmp_path):
    with pytest.raises(DatasetError, match=r"unknown split 'dev'"):
        load_gmd(fake_gmd, split="dev")
    with pytest.raises(DatasetError, match=r"nowhere: no such folder"):
        load_gmd(tmp_path / "nowhere")
    (fake_gmd / "info.csv").rename(fake_gmd / "info.bak")
    with pytest.raises(DatasetError, match=r"info.csv: missing; a Groove MIDI Dataset folder"):
        load_gmd(fake_gmd)
    (fake_gmd / "info.csv").write_text("drummer,style\nd1,funk\n")
    with pytest.raises(DatasetError, match=r"info.csv: missing columns \['beat_type'"):
        load_gmd(fake_gmd)
    (fake_gmd / "info.csv").write_text(",".join(COLUMNS) + "\n")
    with pytest.raises(DatasetError, match=r"info.csv: has no rows"):
        load_gmd(fake_gmd)
    # a copy cut short: its last row ends after the time signature (a traceback before)
    (fake_gmd / "info.csv").write_text(",".join(COLUMNS) + "\n"
                                       "drummer1,drummer1/s1,drummer1/s1/1,funk,100,beat,4-4\n")
    with pytest.raises(DatasetError, match=r"info.csv: line 2 has no midi_filename, split"):
        load_gmd(fake_gmd)
    (fake_gmd / "info.csv").unlink()
    (fake_gmd / "info.csv").mkdir()
    with pytest.raises(DatasetError, match=r"info.csv: not a file"):
        load_gmd(fake_gmd)


def test_a_small_folder_holds_out_a_file_that_gave_windows(tmp_path, cache_dir):
    """The held-out file of a small folder is chosen among the files that read: a corrupt file
    that hashed to validation (or had the lowest hash) left validation empty and training
    refused the folder."""
    import zlib

    def h(name):
        return zlib.crc32(name.encode()) % 1000

    names = [f"take{i}.mid" for i in range(200)]
    files = [n for n in names if h(n) >= 100][:5]  # none of these hashes to validation
    for i, n in enumerate(files):
        write_midi(grooves(1, i), tmp_path / "f" / n)
    lowest = min(files, key=lambda n: zlib.crc32(n.encode()))
    (tmp_path / "f" / lowest).write_bytes(b"MThd junk")  # the one the old rule held out
    good = [n for n in files if n != lowest]
    ws = load_folder(tmp_path / "f", progress=False, use_cache=False)
    held = set(ws.meta["file"][ws.meta["split"] == "validation"].tolist())
    assert len(held) == 1 and held <= set(good)
    assert set(ws.meta["split"].tolist()) == {"train", "validation"}


def test_gmd_files_without_info_csv_are_read_as_a_folder_with_a_warning(tmp_path, cache_dir, caplog):
    for i, n in enumerate(["1_funk_92_beat_4-4.mid", "2_rock_120_fill_4-4.mid", "3_jazz_140_beat_4-4.mid"]):
        write_midi(grooves(1, i), tmp_path / "drummer1" / "session1" / n)
    with caplog.at_level(logging.WARNING, logger="flatgroove.data"):
        load_dataset(tmp_path, progress=False, use_cache=False)
    assert "look like Groove MIDI Dataset files, but there is no info.csv" in caplog.text
    caplog.clear()
    write_midi(grooves(1, 0), tmp_path / "mine" / "groove.mid")  # a user's own folder: no warning
    with caplog.at_level(logging.WARNING, logger="flatgroove.data"):
        load_dataset(tmp_path / "mine", progress=False, use_cache=False)
    assert "Groove MIDI Dataset" not in caplog.text


# -- the cache -------------------------------------------------------------------------------


def assert_same_windows(a: WindowSet, b: WindowSet) -> None:
    np.testing.assert_array_equal(a.features, b.features)
    np.testing.assert_array_equal(a.tempos, b.tempos)
    np.testing.assert_array_equal(a.starts, b.starts)
    for c in a.meta:
        np.testing.assert_array_equal(a.meta[c], b.meta[c])
    assert a.skipped == b.skipped


def test_second_load_hits_the_cache(mixed_folder, cache_dir, monkeypatch):
    root, _, _ = mixed_folder
    first = load_folder(root, progress=False)

    def no_build(*a, **k):
        raise AssertionError("built again instead of reading the cache")

    monkeypatch.setattr(folder, "build_windows", no_build)
    second = load_folder(root, progress=False)
    assert_same_windows(first, second)
    assert len(second.skipped) == 3
    with pytest.raises(AssertionError, match="built again"):
        load_folder(root, progress=False, hop_bars=2)  # other settings, other key


def test_gmd_second_load_hits_the_cache(fake_gmd, cache_dir, monkeypatch):
    first = load_gmd(fake_gmd, progress=False)
    monkeypatch.setattr(gmd, "build_windows", lambda *a, **k: pytest.fail("cache not used"))
    assert_same_windows(first, load_gmd(fake_gmd, progress=False))
    # Editing info.csv changes the key.
    (fake_gmd / "info.csv").write_text((fake_gmd / "info.csv").read_text().replace("fill", "beat"))
    with pytest.raises(pytest.fail.Exception, match="cache not used"):
        load_gmd(fake_gmd, progress=False)


def test_editing_a_file_changes_the_key(mixed_folder, cache_dir):
    root, good, _ = mixed_folder
    files = folder.midi_files(root)
    settings = {"kind": "folder"}
    key = cache.source_key(files, settings)
    assert cache.source_key(files, settings) == key
    assert cache.source_key(files, {"kind": "folder", "hop_bars": 2}) != key
    before = load_folder(root, progress=False)
    write_midi(grooves(3, 9), good[0])  # 1 groove -> 3 grooves
    assert cache.source_key(files, settings) != key
    after = load_folder(root, progress=False)
    assert len(after) == len(before) + 4
    assert len(list(cache_dir.glob("windows-*.npz"))) == 2


@pytest.mark.parametrize("damage", ["garbage", "truncate"])
def test_corrupt_cache_is_rebuilt(mixed_folder, cache_dir, damage):
    root, _, _ = mixed_folder
    first = load_folder(root, progress=False)
    (path,) = cache_dir.glob("windows-*.npz")
    data = path.read_bytes()
    path.write_bytes(b"not a zip file" if damage == "garbage" else data[: len(data) // 2])
    assert cache.load(_key_of(cache_dir)) is None
    again = load_folder(root, progress=False)
    assert_same_windows(first, again)
    assert_same_windows(first, cache.load(_key_of(cache_dir)))  # and the file is good again
    assert [p.name for p in cache_dir.iterdir()] == [path.name]


def test_failed_save_leaves_no_temp_file(mixed_folder, cache_dir, monkeypatch):
    root, _, _ = mixed_folder

    def disk_full(*a, **k):
        raise OSError("No space left on device")

    monkeypatch.setattr(cache.np, "savez", disk_full)
    assert len(load_folder(root, progress=False)) > 0  # goes on without a cache (a warning)
    assert list(cache_dir.iterdir()) == []


def test_cache_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("FLATGROOVE_CACHE", str(tmp_path / "c"))
    assert cache.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("FLATGROOVE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_dir() == tmp_path / "xdg" / "flatgroove"


# -- WindowSet ---------------------------------------------------------------------------------


def test_windowset_empty_and_tensors(mixed_folder, cache_dir):
    empty = WindowSet.concat([], [("x.mid", "why")])
    assert len(empty) == 0 and empty.features.shape == (0, N_STEPS, N_FEATURES)
    assert empty.split_counts() == {} and empty.skipped == [("x.mid", "why")]
    assert len(empty.filter(split="train")) == 0
    ws = load_folder(mixed_folder[0], progress=False)
    assert ws.filter() is ws  # nothing to filter: no copy
    t = ws.tensors()
    assert tuple(t.shape) == ws.features.shape and str(t.dtype) == "torch.float32"
    assert np.shares_memory(t.numpy(), ws.features)
    assert ws.hits_per_drum().sum() == ws.features[:, :, :N_DRUMS].sum()


# -- the real Groove MIDI Dataset ---------------------------------------------------------------

# What the code produces now (all beat types, 2 bars, 1-bar hop, 4/4 files), and DESIGN §3's
# approximate figures it must stay within 5% of.
GMD_COUNTS = {"train": 16537, "validation": 2055, "test": 2084}
DESIGN_COUNTS = {"train": 17200, "validation": 2060, "test": 2130}


@pytest.fixture(scope="module")
def gmd_all(gmd_root) -> WindowSet:
    return load_gmd(gmd_root, progress=False)


@pytest.mark.gmd
def test_gmd_official_split_counts(gmd_all):
    counts = gmd_all.split_counts()
    assert counts == GMD_COUNTS
    for split, n in counts.items():
        assert abs(n - DESIGN_COUNTS[split]) <= 0.05 * DESIGN_COUNTS[split], split
    # Every file reads; the only ones without a window are the 498 one-bar fills, listed.
    assert len(gmd_all.skipped) == 498
    assert all("too short for a window (1 bar" in why for _, why in gmd_all.skipped)


@pytest.mark.gmd
def test_gmd_windows_are_valid(gmd_all, gmd_root):
    f = gmd_all.features
    hits, vel, off = f[:, :, :N_DRUMS], f[:, :, N_DRUMS : 2 * N_DRUMS], f[:, :, 2 * N_DRUMS :]
    assert f.shape[1:] == (N_STEPS, N_FEATURES) and f.dtype == np.float32
    assert hits.reshape(len(f), -1).any(axis=1).all()  # no empty window
    assert np.isin(hits, (0.0, 1.0)).all()
    on = hits == 1
    assert (vel[on] > 0).all() and (vel[on] <= 1).all()
    assert (np.abs(off[on]) <= 0.5).all()
    assert not vel[~on].any() and not off[~on].any()
    assert (gmd_all.tempos >= 20).all() and (gmd_all.tempos <= 400).all()
    assert (gmd_all.starts >= 0).all()
    # Only 4/4 files; every one that lasts 2.5 bars or more gives windows (many fills are
    # shorter than 2 bars and give none).
    with (gmd_root / "info.csv").open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["time_signature"] == "4-4"]
    have = set(gmd_all.meta["file"])
    assert have <= {r["midi_filename"] for r in rows}
    long = {r["midi_filename"] for r in rows if float(r["duration"]) * float(r["bpm"]) / 240 >= 2.5}
    assert long <= have and len(long) > 450
    # A window is a real Groove.
    g = gmd_all.groove(123)
    assert isinstance(g, Groove) and g.n_hits > 0


@pytest.mark.gmd
def test_gmd_filters(gmd_all, gmd_root):
    test = gmd_all.filter(split="test")
    assert len(test) == GMD_COUNTS["test"] and set(test.meta["split"]) == {"test"}
    beats, fills = gmd_all.filter(beat_type="beat"), gmd_all.filter(beat_type="fill")
    assert len(beats) + len(fills) == len(gmd_all) and len(fills) > 0
    d1 = gmd_all.filter(drummer="drummer1")
    assert 0 < len(d1) < len(gmd_all) and set(d1.meta["drummer"]) == {"drummer1"}
    funk = gmd_all.filter(style="funk")
    assert len(funk) > 0 and all(s.startswith("funk") for s in funk.meta["style"])
    both = gmd_all.filter(split="train", style="rock", beat_type="beat")
    assert len(both) > 0 and set(both.meta["split"]) == {"train"}
    # load_gmd's own filters agree (from the cache).
    assert len(load_gmd(gmd_root, split="validation", progress=False)) == GMD_COUNTS["validation"]
    assert len(load_gmd(gmd_root, drummer="drummer1", progress=False)) == len(d1)


def _windowset(features: np.ndarray) -> WindowSet:
    n = len(features)
    meta = {c: np.array([f"{c}{i}" for i in range(n)], dtype=str) for c in ("file", "split",
            "drummer", "style", "beat_type")}
    return WindowSet(features, np.full(n, 120, np.float32), np.arange(n), meta, [("a", "b\tc")])


@pytest.mark.parametrize("kind", ["sparse", "dense", "empty"])
def test_cache_save_load_is_exact(cache_dir, kind):
    rng = np.random.default_rng(0)
    f = np.zeros((0 if kind == "empty" else 50, N_STEPS, N_FEATURES), np.float32)
    hits = rng.random(f[..., :N_DRUMS].shape) < 0.1
    f[..., :N_DRUMS] = hits
    f[..., N_DRUMS : 2 * N_DRUMS] = hits * rng.integers(1, 128, hits.shape) / 127
    f[..., 2 * N_DRUMS :] = hits * rng.uniform(-0.5, 0.5, hits.shape)
    if kind == "dense":
        f[3, 4, N_DRUMS + 2] = 0.5  # a velocity on a silent cell: not sparse, stored whole
    ws = _windowset(f)
    cache.save("k", ws)
    with np.load(cache_dir / "windows-k.npz") as z:
        assert ("features" in z) == (kind == "dense")
    assert_same_windows(ws, cache.load("k"))
    assert cache.load("other") is None
