"""`flatgroove data stats` and `flatgroove data show`: output, and exit status 2 with one clear
`flatgroove: error: ...` line for bad input."""

from __future__ import annotations

import re

import numpy as np
import pytest

from flatgroove.cli import main
from flatgroove.drums import N_DRUMS
from flatgroove.groove import N_STEPS, Groove
from flatgroove.midi import write_midi


def groove(seed: int) -> Groove:
    rng = np.random.default_rng(seed)
    hits = (rng.random((N_STEPS, N_DRUMS)) < 0.2).astype(np.float32)
    hits[0, 0] = hits[16, 0] = 1
    return Groove(hits, hits * 0.8, hits * 0.1, 100.0)


def pulse(bars: int, channel: int = 9, pitch: int = 36) -> list[tuple[int, int, int, int]]:
    return [(q * 480, pitch, 100, channel) for q in range(4 * bars)]


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "grooves"
    write_midi([groove(1), groove(2)], root / "a.mid")
    write_midi([groove(3)], root / "sub" / "b.mid")
    (root / "broken.mid").write_bytes(b"MThd\x00\x00\x00\x06garbage")
    return root


def run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def assert_error(rc, out, err, *parts):
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("flatgroove: error: "), err
    for p in parts:
        assert p in lines[0], (p, lines[0])


def test_show_prints_grids(tmp_path, capsys):
    path = write_midi([groove(1), groove(2)], tmp_path / "two.mid")
    rc, out, err = run(capsys, "data", "show", str(path))
    assert rc == 0 and err == ""
    first = out.splitlines()[0]
    assert re.fullmatch(rf"{re.escape(str(path))}: 4 bars, \d+ drum notes, 100.0 BPM, 2 windows", first)
    assert "bars 1-2  (100 BPM," in out and "bars 3-4  (100 BPM," in out
    assert out.count("\nBD  |8") == 2  # a kick at velocity 0.8 on the first step of each window


def test_show_hop_limit_and_ignored(tmp_path, capsys, mido_file):
    path = mido_file(tmp_path / "band.mid", [pulse(5), pulse(2, channel=0, pitch=60)],
                     names=["Kit", "Piano"])
    rc, out, _ = run(capsys, "data", "show", str(path), "--hop", "1", "--limit", "2")
    assert rc == 0
    assert "5 bars, 20 drum notes, 120.0 BPM, 4 windows" in out
    assert "ignored: non-drum track 'Piano' (8 notes)" in out
    assert "bars 2-3" in out and "bars 3-4" not in out
    assert "... 2 more windows (--limit)" in out


def test_show_td11_map(tmp_path, capsys, mido_file):
    path = mido_file(tmp_path / "tom.mid", [pulse(2, pitch=45)])
    _, gm, _ = run(capsys, "data", "show", str(path))
    _, td, _ = run(capsys, "data", "show", str(path), "--map", "td11")
    assert "LT  |8" in gm and "MT  |8" in td  # velocity 100 -> 8


def test_stats_of_a_folder(folder, capsys):
    rc, out, _ = run(capsys, "data", "stats", str(folder))
    assert rc == 0
    assert f"dataset     {folder}" in out
    assert "files       2 with windows, 1 skipped" in out
    assert "windows     4 (2 bars, 1-bar hop)" in out  # a.mid: 4 bars -> 3, b.mid: 1
    assert re.search(r"^  train\s+\d+$", out, re.MULTILINE)
    assert "kick" in out and "tempo       100-100 BPM" in out
    assert "skipped     1 of 3 files" in out and "broken.mid" in out


def test_stats_no_cache(folder, capsys):
    rc, out, _ = run(capsys, "data", "stats", str(folder), "--no-cache")
    assert rc == 0 and "windows     4" in out


def test_stats_default_path_from_environment(tmp_path, folder, capsys, monkeypatch):
    monkeypatch.setenv("FLATGROOVE_GMD", str(folder))
    rc, out, _ = run(capsys, "data", "stats")
    assert rc == 0 and f"dataset     {folder}" in out
    monkeypatch.setenv("FLATGROOVE_GMD", str(tmp_path / "absent"))
    assert_error(*run(capsys, "data", "stats"), "absent: no such folder")


def test_no_subcommand_prints_help(capsys):
    rc, out, _ = run(capsys, "data")
    assert rc == 1 and "usage: flatgroove" in out


# -- bad input -----------------------------------------------------------------------------


def test_show_random_bytes(tmp_path, capsys):
    path = tmp_path / "noise.mid"
    path.write_bytes(np.random.default_rng(3).bytes(400))
    assert_error(*run(capsys, "data", "show", str(path)), str(path), "not a readable MIDI file")


def test_show_truncated(tmp_path, capsys):
    good = write_midi([groove(1), groove(2)], tmp_path / "good.mid").read_bytes()
    path = tmp_path / "half.mid"
    path.write_bytes(good[: len(good) // 2])
    assert_error(*run(capsys, "data", "show", str(path)), str(path), "not a readable MIDI file")


def test_show_no_drum_notes(tmp_path, capsys, mido_file):
    path = mido_file(tmp_path / "piano.mid", [pulse(2, 0, 60), pulse(2, 1, 48)])
    assert_error(*run(capsys, "data", "show", str(path)), str(path), "no drum notes")


def test_show_three_four(tmp_path, capsys, mido_file):
    path = mido_file(tmp_path / "waltz.mid", [pulse(3)], time_signature=(3, 4))
    assert_error(
        *run(capsys, "data", "show", str(path)), str(path), "time signature 3/4", "4/4 only"
    )


def test_show_missing_file(tmp_path, capsys):
    path = tmp_path / "gone.mid"
    assert_error(*run(capsys, "data", "show", str(path)), str(path), "no such file")


def test_stats_missing_folder(tmp_path, capsys):
    path = tmp_path / "nowhere"
    assert_error(*run(capsys, "data", "stats", str(path)), str(path), "no such folder")


def test_stats_empty_folder(tmp_path, capsys):
    assert_error(*run(capsys, "data", "stats", str(tmp_path)), str(tmp_path), "no MIDI files")


def test_stats_only_bad_files(tmp_path, capsys, mido_file):
    (tmp_path / "x.mid").write_bytes(b"\x00" * 20)
    mido_file(tmp_path / "w.mid", [pulse(3)], time_signature=(3, 4))
    assert_error(
        *run(capsys, "data", "stats", str(tmp_path), "--no-cache"),
        str(tmp_path), "none of 2 MIDI files gave a 2-bar drum window",
    )


def test_stats_broken_info_csv(tmp_path, capsys):
    (tmp_path / "info.csv").write_text("drummer,style\nd1,funk\n")
    assert_error(*run(capsys, "data", "stats", str(tmp_path)), "info.csv", "missing columns")


@pytest.mark.gmd
def test_stats_of_the_groove_midi_dataset(gmd_root, capsys):
    rc, out, _ = run(capsys, "data", "stats", str(gmd_root))
    assert rc == 0
    assert re.search(r"^  train\s+16537$", out, re.MULTILINE)
    assert re.search(r"^  validation\s+2055$", out, re.MULTILINE)
    assert re.search(r"^  test\s+2084$", out, re.MULTILINE)
    assert "windows     20676 (2 bars, 1-bar hop)" in out
    # The one-bar fills give no 2-bar window: said, with their reason.
    assert "files       640 with windows, 498 skipped" in out
    assert re.search(r"^\s+498  too short for a window$", out, re.MULTILINE)


@pytest.mark.parametrize("flag,value", [("--hop", "0"), ("--hop", "-1"), ("--limit", "-1"), ("--hop", "two")])
def test_show_rejects_a_hop_or_limit_below_one(tmp_path, capsys, flag, value):
    path = write_midi([groove(1), groove(2)], tmp_path / "two.mid")
    with pytest.raises(SystemExit) as e:
        main(["data", "show", str(path), flag, value])
    err = capsys.readouterr().err
    assert e.value.code == 2 and f"argument {flag}" in err and "Traceback" not in err


def test_data_alone_prints_its_own_help(capsys):
    from flatgroove.cli import main

    assert main(["data"]) == 1
    out = capsys.readouterr().out
    assert "usage: flatgroove data" in out and "stats" in out and "show" in out
