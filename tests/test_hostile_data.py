"""A cache that cannot be written (issue 10, DESIGN §8): a read-only folder, or
FLATGROOVE_CACHE naming a file, means no cache and one warning, never a traceback."""

from __future__ import annotations

import logging
import os

import pytest

from hostile_midi.make_corpus import synthetic_sources


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "mine"
    root.mkdir()
    for i, data in enumerate(synthetic_sources(3, seed=5)):
        (root / f"g{i}.mid").write_bytes(data)
    return root


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_cache_pointing_at_a_file_falls_back_with_one_warning(folder, tmp_path, monkeypatch, caplog):
    from flatgroove.data import cache, load_folder

    f = tmp_path / "not-a-folder"
    f.write_text("x")
    monkeypatch.setenv("FLATGROOVE_CACHE", str(f))
    monkeypatch.setattr(cache, "_warned", set())
    with caplog.at_level(logging.WARNING):
        a = load_folder(folder, progress=False)
        b = load_folder(folder, progress=False)  # again: no second warning
    assert len(a) == len(b) > 0
    w = _warnings(caplog)
    assert len(w) == 1 and str(f) in w[0] and "without a cache" in w[0]
    assert f.read_text() == "x"


def test_read_only_cache_falls_back_with_one_warning(folder, tmp_path, monkeypatch, caplog):
    from flatgroove.data import cache, load_folder

    d = tmp_path / "ro"
    d.mkdir()
    monkeypatch.setenv("FLATGROOVE_CACHE", str(d))
    monkeypatch.setattr(cache, "_warned", set())

    def refuse(*a, **k):  # as a read-only folder answers (root ignores chmod, so fake it)
        raise PermissionError(13, "Permission denied")

    from flatgroove import files

    monkeypatch.setattr(files.tempfile, "mkstemp", refuse)  # every writer's temporary file
    with caplog.at_level(logging.WARNING):
        ws = load_folder(folder, progress=False)
    assert len(ws) > 0 and not list(d.iterdir())
    w = _warnings(caplog)
    assert len(w) == 1 and "Permission denied" in w[0]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_really_read_only_cache_folder(folder, tmp_path, monkeypatch):
    from flatgroove.data import cache, load_folder

    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o500)
    monkeypatch.setenv("FLATGROOVE_CACHE", str(d))
    monkeypatch.setattr(cache, "_warned", set())
    try:
        assert len(load_folder(folder, progress=False)) > 0
    finally:
        d.chmod(0o700)


def test_data_stats_with_a_file_as_cache_is_one_warning(folder, tmp_path, monkeypatch, capsys,
                                                        caplog):
    from flatgroove.cli import main
    from flatgroove.data import cache

    f = tmp_path / "cachefile"
    f.write_text("")
    monkeypatch.setenv("FLATGROOVE_CACHE", str(f))
    monkeypatch.setattr(cache, "_warned", set())
    with caplog.at_level(logging.WARNING):
        assert main(["data", "stats", str(folder)]) == 0
    out = capsys.readouterr()
    assert "windows" in out.out and "Traceback" not in out.err
    assert sum("without a cache" in w for w in _warnings(caplog)) == 1
