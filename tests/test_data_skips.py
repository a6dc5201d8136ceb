"""`flatgroove data stats` says which files gave no window and why, with counts per reason
(files too short for a window no longer vanish silently)."""

from __future__ import annotations

import re

from flatgroove.cli import main
from flatgroove.midi import write_midi
from flatgroove.presets import builtin


def test_stats_counts_skipped_files_by_reason(tmp_path, capsys, mido_file):
    root = tmp_path / "mine"
    write_midi([builtin("rock"), builtin("funk")], root / "good.mid")
    write_midi([builtin("disco")], root / "also_good.mid")
    for i in range(5):  # one bar of kicks each: too short for a 2-bar window
        mido_file(root / f"short{i}.mid", [[(q * 480, 36, 100, 9) for q in range(4)]])
    (root / "broken.mid").write_bytes(b"MThd\x00\x00\x00\x06garbage")
    assert main(["data", "stats", str(root), "--no-cache"]) == 0
    out = capsys.readouterr().out
    assert "files       2 with windows, 6 skipped" in out
    assert "skipped     6 of 8 files" in out
    assert re.search(r"^\s+5  too short for a window$", out, re.MULTILINE), out
    assert re.search(r"^\s+1  not a", out, re.MULTILINE), out  # the broken file's reason
    assert "short0.mid: too short for a window (1 bar of drums; a window is 2 bars)" in out
    assert "... 2 more" in out  # at most 3 examples per reason
    # The same report from the cache.
    assert main(["data", "stats", str(root)]) == 0
    assert main(["data", "stats", str(root)]) == 0
    assert "skipped     6 of 8 files" in capsys.readouterr().out
