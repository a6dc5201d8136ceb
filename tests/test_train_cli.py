"""`flatgroove train` from the command line: a short run, resume, and clear errors."""

import json

import pytest

from flatgroove.cli import main
from flatgroove.midi import write_midi
from flatgroove.presets import all_builtins

TINY_TOML = """
[model]
latent_dim = 4
enc_hidden = 16
enc_layers = 1
dec_hidden = 24
dec_layers = 1
step_embed = 4
prior_hidden = 16

[train]
epochs = 2
batch_size = 8
flat_points = 4
flat_warmup_epochs = 0.0
"""


@pytest.fixture()
def folder(tmp_path):
    gs = list(all_builtins().values())
    for i in range(8):
        write_midi(gs[i:] + gs[:i], tmp_path / "midi" / f"take{i}.mid")
    (tmp_path / "tiny.toml").write_text(TINY_TOML)
    return tmp_path


def test_train_runs_and_resumes(folder, capsys):
    out = folder / "run"
    args = ["train", "--variant", "flat", "--data", str(folder / "midi"), "--out", str(out),
            "--config", str(folder / "tiny.toml"), "--device", "cpu"]
    assert main(args + ["--max-steps", "3"]) == 0
    assert (out / "last.pt").exists() and (out / "config.json").exists()
    saved = json.loads((out / "config.json").read_text())
    assert saved["model"]["latent_dim"] == 4 and saved["train"]["flat_points"] == 4
    # A second start without --resume refuses to overwrite the run.
    assert main(args) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(args + ["--resume"]) == 0
    assert "resumed" in capsys.readouterr().out
    val = [json.loads(s) for s in (out / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in val if r["kind"] == "val"] == [1, 2]
    assert (out / "best.pt").exists()


def test_train_errors(folder, capsys):
    assert main(["train", "--data", str(folder / "nowhere"), "--out", str(folder / "r")]) == 2
    assert "no such folder" in capsys.readouterr().err
    empty = folder / "empty"
    empty.mkdir()
    assert main(["train", "--data", str(empty), "--out", str(folder / "r")]) == 2
    assert "no MIDI files" in capsys.readouterr().err
    bad = folder / "bad.toml"
    bad.write_text("[model]\nwidth = 3\n")
    assert main(["train", "--data", str(folder / "midi"), "--out", str(folder / "r"),
                 "--config", str(bad)]) == 2
    assert "unknown model settings" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: unknown variant
        main(["train", "--variant", "gan", "--out", str(folder / "r")])
    # Resuming a vae run as flat is refused and leaves the run untouched.
    run = folder / "vae-run"
    base = ["train", "--data", str(folder / "midi"), "--out", str(run), "--config",
            str(folder / "tiny.toml"), "--max-steps", "2"]
    assert main([*base, "--variant", "vae"]) == 0
    before = (run / "last.pt").read_bytes()
    assert main([*base, "--variant", "flat", "--resume"]) == 2
    assert "'vae' run" in capsys.readouterr().err
    assert (run / "last.pt").read_bytes() == before
