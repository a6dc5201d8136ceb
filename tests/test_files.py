"""flatgroove.files.atomic_path: every writer's crash safety, temporary names and errors."""

from __future__ import annotations

import os

import pytest

from flatgroove.files import atomic_path, write_text


def test_a_crash_mid_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    p = tmp_path / "out.mid"
    p.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(p) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("crash")
    assert p.read_bytes() == b"old" and os.listdir(tmp_path) == ["out.mid"]
    with atomic_path(p) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".mid" and tmp != p  # suffix kept (np.savez)
        tmp.write_bytes(b"new")
    assert p.read_bytes() == b"new" and os.listdir(tmp_path) == ["out.mid"]


def test_two_writers_beside_one_name_never_share_a_temporary(tmp_path):
    (tmp_path / "d.tmp").write_text("a user's own file")  # the old fixed temporary name
    with atomic_path(tmp_path / "d") as a, atomic_path(tmp_path / "d") as b:
        assert a != b
        a.write_text("1")
        b.write_text("2")
    assert (tmp_path / "d.tmp").read_text() == "a user's own file"
    assert (tmp_path / "d").read_text() == "1"  # the last to finish (the outer block) wins


def test_errors_name_the_users_path_not_the_temporary(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(OSError) as e, atomic_path(tmp_path / "afile" / "x.mid"):
        pass
    assert e.value.filename == str(tmp_path / "afile" / "x.mid")
    (tmp_path / "folder").mkdir()
    with pytest.raises(IsADirectoryError) as e, atomic_path(tmp_path / "folder"):
        pass
    assert e.value.filename == str(tmp_path / "folder") and "is a folder" in str(e.value)


def test_a_symlink_is_written_through_and_modes_are_kept(tmp_path):
    real = tmp_path / "real.md"
    real.write_text("old")
    os.chmod(real, 0o640)
    (tmp_path / "link.md").symlink_to("real.md")
    write_text(tmp_path / "link.md", "a\r\nb\r\n")
    assert (tmp_path / "link.md").is_symlink()
    assert real.read_bytes() == b"a\r\nb\r\n" and real.stat().st_mode & 0o777 == 0o640


def test_the_writers_refuse_a_folder_by_its_name(tmp_path):
    """MIDI, WAV and PNG writers: a folder where the file goes is one error naming it (the
    writers used to leave '<name>.tmp' behind, or report the temporary's name)."""
    import numpy as np

    from flatgroove.audio import write_wav
    from flatgroove.midi import write_midi
    from flatgroove.plots import piano_roll
    from flatgroove.presets import builtin

    (tmp_path / "d").mkdir()
    g = builtin("rock")
    for write in (lambda p: write_midi([g], p), lambda p: write_wav(p, np.zeros(100)),
                  lambda p: piano_roll(g, p)):
        with pytest.raises(IsADirectoryError) as e:
            write(tmp_path / "d")
        assert e.value.filename == str(tmp_path / "d")
    assert os.listdir(tmp_path) == ["d"] and os.listdir(tmp_path / "d") == []
