"""Hostile MIDI input (issue 10, DESIGN §8): a committed corpus of crafted files, each with the
one line the reader must answer, and a bounded property-based fuzz of the reader, the window
builder, the folder loader and the upload endpoint: every bad file is a MidiError naming the
file, never another exception, and memory follows the notes, not the claimed length."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flatgroove.midi import (
    MAX_BARS,
    MidiError,
    read_drums,
    read_groove,
    read_grooves,
    window_arrays,
)
from hostile_midi.make_corpus import (
    corpus,
    expected,
    hit,
    hits,
    midi_file,
    mutate,
    synthetic_sources,
    tempo_event,
    track,
)

CORPUS = Path(__file__).parent / "hostile_midi"
FUZZ = settings(max_examples=60, deadline=2000, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _read_all(path: Path) -> None:
    """Everything the product does with a file: parts, windows, all grooves, the first."""
    part = read_drums(path)
    window_arrays(part)
    read_grooves(path)
    read_groove(path)


# -- the committed corpus ----------------------------------------------------------------------------
def test_corpus_is_what_the_script_writes():
    want = expected()
    made = corpus()
    assert set(want) == set(made)
    for name, (data, msg) in made.items():
        assert (CORPUS / name).read_bytes() == data, f"{name}: rerun make_corpus.py"
        assert want[name] == msg


@pytest.mark.parametrize("name", sorted(expected()))
def test_corpus_file_gives_its_one_line_error(name):
    path = CORPUS / name
    with pytest.raises(MidiError) as e:
        read_groove(path)
    assert str(e.value) == expected()[name].format(path=path)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("name", sorted(set(expected()) - {"one_bar.mid"}))  # 0 windows, no error
def test_corpus_file_in_data_show_is_one_line_and_exit_2(name, capsys):
    from flatgroove.cli import main

    assert main(["data", "show", str(CORPUS / name)]) == 2
    err = capsys.readouterr().err
    assert err == f"flatgroove: error: {expected()[name].format(path=CORPUS / name)}\n"


def test_million_bar_file_in_a_real_process_is_quick_and_one_line():
    """The 101-byte file that once took 89 s and 3 GB: one line, exit 2, small memory."""
    code = ("import resource, sys; from flatgroove.cli import main; "
            "rc = main(['data', 'show', sys.argv[1]]); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(rc)")
    r = subprocess.run([sys.executable, "-c", code, str(CORPUS / "million_bars.mid")],
                       capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert int(r.stdout.split()[-1]) < 1_000_000  # KB: well under 1 GB (was ~3 GB)


def test_folder_skips_and_counts_every_corpus_file(tmp_path):
    from flatgroove.data import load_folder

    good = synthetic_sources(3, seed=1)
    for i, data in enumerate(good):
        (tmp_path / f"good{i}.mid").write_bytes(data)
    for name in expected():
        (tmp_path / name).write_bytes((CORPUS / name).read_bytes())
    ws = load_folder(tmp_path, use_cache=False, progress=False)
    assert len(set(ws.meta["file"])) == 3
    # Every unreadable file is skipped and counted (and so is a 1-bar file: no window).
    assert sorted(Path(f).name for f, _ in ws.skipped) == sorted(expected())


def test_far_note_is_refused_before_allocating(tmp_path):
    """A note at the last allowed bar is read with windows only where notes are."""
    tpq = 48
    ev = hits(8, 42, length=6)
    ev += hit(tpq * 4 * (MAX_BARS - 3), length=6)
    path = tmp_path / "far.mid"
    path.write_bytes(midi_file([track(ev)], tpq=tpq))
    part = read_drums(path)
    assert part.n_bars == MAX_BARS - 1
    feats, starts, _ = window_arrays(part)
    assert len(feats) <= 6  # the windows around the 8 kicks and the far note, not 4095
    assert starts.max() >= MAX_BARS - 4
    g = read_groove(path, bar=0)
    assert g.n_hits > 0
    with pytest.raises(MidiError, match="silent"):
        read_groove(path, bar=100)


def test_tempo_within_range_is_read(tmp_path):
    path = tmp_path / "t.mid"
    ev = [tempo_event(60_000_000 // 90)] + hits(16, 420)
    path.write_bytes(midi_file([track(ev)]))
    assert read_drums(path).tempo == pytest.approx(90, abs=0.01)
    assert read_groove(path).tempo == pytest.approx(90, abs=0.01)


def test_device_file_is_not_read():
    with pytest.raises(MidiError, match="not a regular file"):
        read_drums("/dev/zero")


# -- fuzz ------------------------------------------------------------------------------------------
SOURCES = synthetic_sources(6, seed=3)


@FUZZ
@given(src=st.integers(0, len(SOURCES) - 1), seed=st.integers(0, 2**32 - 1))
def test_mutated_files_give_a_groove_or_one_line_error(tmp_path_factory, src, seed):
    data, how = mutate(SOURCES[src], random.Random(seed))
    path = tmp_path_factory.mktemp("fuzz") / "m.mid"
    path.write_bytes(data)
    try:
        _read_all(path)
    except MidiError as e:
        assert str(e).startswith(f"{path}: "), how
        assert "\n" not in str(e), how
    else:
        g = read_groove(path)
        assert np.isfinite(g.offsets).all() and 20 <= g.tempo <= 400


@FUZZ
@given(data=st.binary(max_size=300))
def test_random_bytes_after_a_header_give_one_line_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "r.mid"
    path.write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0" + data)
    try:
        _read_all(path)
    except MidiError as e:
        assert str(e).startswith(f"{path}: ") and "\n" not in str(e)


@FUZZ
@given(tpq=st.integers(0, 0xFFFF), us=st.integers(0, 0xFFFFFF),
       delta=st.integers(0, 0x0FFFFFFF))
def test_header_tempo_and_delta_extremes(tmp_path_factory, tpq, us, delta):
    ev = [tempo_event(us), (delta, b"\xff\x01\x00")]
    ev += hits(40, 7)
    path = tmp_path_factory.mktemp("fuzz") / "x.mid"
    path.write_bytes(midi_file([track(ev)], tpq=tpq))
    try:
        part = read_drums(path)
    except MidiError as e:
        assert str(e).startswith(f"{path}: ") and "\n" not in str(e)
        return
    assert 0 < tpq < 0x8000 and 20 <= part.tempo <= 400
    assert np.isfinite(part.steps).all() and part.n_bars <= MAX_BARS
    feats, _, tempos = window_arrays(part)
    assert np.isfinite(feats).all() and np.isfinite(tempos).all()
