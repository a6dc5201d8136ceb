"""Generation with the shipped models: interpolate, blend, sample, reconstruct, outputs."""

import wave

import numpy as np
import pytest
import symusic
import torch

import flatgroove
from flatgroove.cli import main
from flatgroove.generate import (
    GenerateError,
    blend,
    interpolate,
    line,
    resolve_groove,
    sample,
    slerp,
)
from flatgroove.presets import builtin

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def flat():
    return flatgroove.load_model()


def test_shipped_models_load(flat):
    assert flat.variant == "flat" and not flat.training
    vae = flatgroove.load_model("vae")
    assert vae.variant == "vae"
    assert flat.checkpoint_info["data"]["train_windows"] > 10_000
    f16 = flatgroove.load_model("flat16")  # the d = 16 model that is flat in fact
    assert f16.variant == "flat" and f16.latent_dim == 16 and f16.decoding.kind == "threshold"
    g = f16.reconstruct([builtin("rock")])[0]
    assert g.hits.shape == builtin("rock").hits.shape and g.hits.sum() > 0


def test_interpolate_ends_and_count(flat):
    a, b = builtin("rock"), builtin("funk")
    path = interpolate(flat, a, b, steps=5)
    assert len(path) == 5
    # Both ends are the decodings of the two encodings themselves.
    ra, rb = flat.reconstruct([a, b])
    # (the path is decoded in one batch: velocities and offsets agree to float rounding)
    assert np.array_equal(path[0].hits, ra.hits)
    np.testing.assert_allclose(path[0].velocities, ra.velocities, atol=1e-5)
    np.testing.assert_allclose(path[0].offsets, ra.offsets, atol=1e-5)
    assert np.array_equal(path[-1].hits, rb.hits)
    assert path[0].tempo == a.tempo and path[-1].tempo == b.tempo
    with pytest.raises(GenerateError, match="at least 2"):
        interpolate(flat, a, b, steps=1)
    with pytest.raises(GenerateError, match="unknown interpolation"):
        interpolate(flat, a, b, method="zigzag")


def test_line_and_slerp():
    za, zb = np.array([1.0, 0.0], np.float32), np.array([0.0, 1.0], np.float32)
    ln = line(za, zb, 3)
    np.testing.assert_allclose(ln[1], [0.5, 0.5])
    sl = slerp(za, zb, 3)
    np.testing.assert_allclose(np.linalg.norm(sl, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(sl[[0, -1]], ln[[0, -1]], atol=1e-6)


def test_blend_corners(flat):
    names = ["rock", "funk", "disco", "hiphop"]
    rows = blend(flat, [builtin(n) for n in names], grid=3)
    assert len(rows) == 3 and all(len(r) == 3 for r in rows)
    rec = flat.reconstruct([builtin(n) for n in names])
    for (i, j), r in zip([(0, 0), (0, 2), (2, 0), (2, 2)], rec):
        assert np.array_equal(rows[i][j].hits, r.hits)
    with pytest.raises(GenerateError, match="4 corner"):
        blend(flat, [builtin("rock")] * 3)


def test_sample_is_seeded(flat):
    a, b = sample(flat, 3, seed=7), sample(flat, 3, seed=7)
    assert all(x == y for x, y in zip(a, b))
    with pytest.raises(GenerateError):
        sample(flat, 2, temperature=0)


def _bars(path):
    s = symusic.Score(str(path), ttype="quarter")
    end = max(n.time for t in s.tracks for n in t.notes)
    return s, end / 4.0


def test_cli_interpolate_writes_midi_wav_png(tmp_path, capsys):
    out, wav, png = tmp_path / "p.mid", tmp_path / "p.wav", tmp_path / "p.png"
    rc = main(["interpolate", "rock", "funk", "--steps", "4", "-o", str(out), "--wav", str(wav),
               "--png", str(png), "--tempo", "100"])
    assert rc == 0
    s, bars = _bars(out)
    assert s.tempos[0].qpm == pytest.approx(100.0, rel=1e-3)
    assert 6 < bars <= 8  # 4 grooves x 2 bars
    with wave.open(str(wav)) as w:
        frames = w.readframes(w.getnframes())
        seconds = w.getnframes() / w.getframerate()
    assert 8 * 2.4 <= seconds <= 8 * 2.4 + 2.0  # 8 bars at 100 BPM, plus the decay tail
    assert np.abs(np.frombuffer(frames, np.int16)).max() > 1000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "BD" in capsys.readouterr().out  # the grids were printed


def test_cli_blend_sample_reconstruct(tmp_path):
    assert main(["blend", "rock", "funk", "disco", "hiphop", "--grid", "2", "-q", "-o",
                 str(tmp_path / "b.mid")]) == 0
    assert _bars(tmp_path / "b.mid")[1] <= 8
    assert main(["sample", "--n", "2", "--seed", "1", "-q", "-o", str(tmp_path / "s.mid"),
                 "--model", "vae"]) == 0
    assert main(["reconstruct", "shuffle", "-q", "-o", str(tmp_path / "r.mid")]) == 0
    assert main(["interpolate", "shuffle", "funk", "--refine", "3", "--steps", "3", "-q",
                 "-o", str(tmp_path / "i.mid")]) == 0
    assert main(["encode", "rock", "--save", str(tmp_path / "z.npy")]) == 0
    assert np.load(tmp_path / "z.npy").shape == (1, flatgroove.load_model().latent_dim)  # the default flat model's
    assert main(["encode", "rock", "--model", "vae", "--save", str(tmp_path / "z.npy")]) == 0
    assert np.load(tmp_path / "z.npy").shape == (1, 32)


def test_refined_encodings_bring_the_builtins_back_closer(flat):
    """`--refine 10` (E38's probe: validation F1 +0.014): the shipped flat model's
    reconstructions of the built-ins come back closer to them on average, none further than a
    hit or two."""
    from flatgroove.evaluate.metrics import hit_metrics
    from flatgroove.generate import reconstruct
    from flatgroove.presets import all_builtins

    gs = list(all_builtins().values())
    plain, refined = reconstruct(flat, gs), reconstruct(flat, gs, refine=10)
    f0 = np.array([hit_metrics(g.hits, r.hits)["f1"] for g, r in zip(gs, plain)])
    f1 = np.array([hit_metrics(g.hits, r.hits)["f1"] for g, r in zip(gs, refined)])
    assert f1.mean() > f0.mean() and (f1 > f0 - 0.03).all(), (f0, f1)


def test_midi_file_input(tmp_path, flat):
    from flatgroove.midi import write_midi

    write_midi([builtin("disco"), builtin("rock")], tmp_path / "in.mid")
    g = resolve_groove(str(tmp_path / "in.mid"))
    assert np.array_equal(g.hits, builtin("disco").hits)
    g2 = resolve_groove(str(tmp_path / "in.mid"), bar=2)
    assert np.array_equal(g2.hits, builtin("rock").hits)


def test_bad_inputs_give_clear_errors(tmp_path, capsys):
    assert main(["interpolate", "rock", "polka"]) == 2
    assert "neither a MIDI file nor a built-in groove" in capsys.readouterr().err
    piano = tmp_path / "piano.mid"
    sc = symusic.Score(480)
    t1, t2 = symusic.Track("piano", 0, False), symusic.Track("bass", 33, False)
    t1.notes.append(symusic.Note(0, 480, 60, 100))
    t2.notes.append(symusic.Note(0, 480, 40, 100))
    sc.tracks.extend([t1, t2])
    sc.dump_midi(str(piano))
    assert main(["interpolate", str(piano), "rock"]) == 2
    assert "no drum notes" in capsys.readouterr().err
    waltz = tmp_path / "waltz.mid"
    sc = symusic.Score(480)
    sc.time_signatures.append(symusic.TimeSignature(0, 3, 4))
    t = symusic.Track("drums", 0, True)
    t.notes.append(symusic.Note(0, 120, 36, 100))
    sc.tracks.append(t)
    sc.dump_midi(str(waltz))
    assert main(["interpolate", str(waltz), "rock"]) == 2
    assert "3/4" in capsys.readouterr().err
    notckpt = tmp_path / "model.pt"
    notckpt.write_bytes(b"\x00garbage")
    assert main(["sample", "--model", str(notckpt)]) == 2
    assert "not a readable checkpoint" in capsys.readouterr().err


def test_outputs_that_cannot_be_written_are_refused_before_the_model_loads(tmp_path, capsys, monkeypatch):
    """A folder where the MIDI, WAV or PNG goes, or a file where its folder goes: one line naming
    the user's path, before any work (they used to fail after generating, some with a traceback,
    some naming '<name>.tmp', one leaving it behind)."""
    import flatgroove.generate as gen

    monkeypatch.setattr(gen, "resolve_model", lambda *a: pytest.fail("the model loaded first"))
    (tmp_path / "d").mkdir()
    (tmp_path / "afile").write_text("x")
    for flag, path in (("-o", tmp_path / "d"), ("--wav", tmp_path / "d"), ("--png", tmp_path / "d"),
                       ("-o", tmp_path / "afile" / "x.mid")):
        assert main(["sample", "--n", "1", "-q", flag, str(path)]) == 2
        err = capsys.readouterr().err
        assert str(path) in err and "Traceback" not in err and ".tmp" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "d"]


def test_sample_numbers_out_of_range_are_clear_errors(capsys):
    with pytest.raises(GenerateError, match="temperature must be a finite number above 0"):
        sample(None, 1, temperature=float("inf"))
    with pytest.raises(GenerateError, match="seed must be a whole number from 0"):
        sample(None, 1, seed=2**64)
    with pytest.raises(SystemExit):  # the command line: a usage error, not an overflow
        main(["sample", "--seed", "-3"])
    assert "--seed: must be at least 0" in capsys.readouterr().err


def test_a_builtin_name_is_the_builtin_whatever_is_in_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rock").mkdir()
    (tmp_path / "funk").write_text("not midi")
    assert resolve_groove("rock").name == builtin("rock").name
    assert np.array_equal(resolve_groove("funk").hits, builtin("funk").hits)


def test_encode_save_says_the_file_it_wrote(tmp_path, capsys):
    assert main(["encode", "rock", "--save", str(tmp_path / "codes")]) == 0
    assert f"wrote {tmp_path / 'codes.npy'}" in capsys.readouterr().out
    assert np.load(tmp_path / "codes.npy").shape == (1, flatgroove.load_model().latent_dim)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["codes.npy"]
