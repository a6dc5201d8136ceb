"""The README's main job: `flatgroove demo` on the embedded default (shipped model, built-ins)."""

import wave

import numpy as np
import symusic

from flatgroove.cli import main


def test_demo_writes_the_session(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "bar  32" in out and "mode -> morph" in out
    assert "notes left hanging: 0" in out
    s = symusic.Score(str(tmp_path / "session.mid"))
    names = [t.name.lower() for t in s.tracks]
    assert len(s.tracks) == 2 and any("drummer" in n for n in names) and any("machine" in n for n in names)
    assert all(len(t.notes) > 50 for t in s.tracks)
    with wave.open(str(tmp_path / "session.wav")) as w:
        seconds = w.getnframes() / w.getframerate()
        audio = np.frombuffer(w.readframes(w.getnframes()), np.int16)
    assert 32 * 4 * 60 / 104 <= seconds <= 32 * 4 * 60 / 104 + 3  # 32 bars at 104 BPM + tail
    assert np.abs(audio).max() > 1000
    assert (tmp_path / "session.png").read_bytes()[:4] == b"\x89PNG"
