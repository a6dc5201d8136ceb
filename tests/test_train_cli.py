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
    from flatgroove.model.checkpoint import load_model
    from flatgroove.model.decoding import DecodingRule

    assert load_model(out / "last.pt").decoding == DecodingRule()
    # the rule the run is heard at is read at validation only: a resumed run may change it
    assert main(args + ["--resume", "--decoding", "threshold:0.4"]) == 0
    assert "resumed" in capsys.readouterr().out
    val = [json.loads(s) for s in (out / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in val if r["kind"] == "val"] == [1, 2]
    assert (out / "best.pt").exists()
    assert load_model(out / "last.pt").decoding == DecodingRule("threshold", threshold=0.4)
    assert load_model(out).decoding.threshold == 0.4  # the folder's best.pt, rewritten at resume
    assert [r["decoding"] for r in val if r["kind"] == "val"][-1] == "threshold:0.4"
    assert main(args + ["--resume", "--decoding", "loud"]) == 2
    assert "decoding: bad decoding rule 'loud'" in capsys.readouterr().err


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


def test_resume_alone_continues_the_runs_own_settings(folder, capsys):
    out = folder / "run"
    base = ["train", "--data", str(folder / "midi"), "--out", str(out), "--device", "cpu"]
    assert main([*base, "--variant", "flat", "--config", str(folder / "tiny.toml"), "--kappa", "40",
                 "--max-steps", "3"]) == 0
    capsys.readouterr()
    # a setting that differs from the run's is refused, naming it; the run is left as it was
    before = (out / "last.pt").read_bytes()
    assert main([*base, "--variant", "flat", "--config", str(folder / "tiny.toml"), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "other training settings: kappa 40.0 (run) vs 30.0 (now)" in err
    assert (out / "last.pt").read_bytes() == before
    # a run saved before a setting existed ran at its default: another value now is refused too
    import torch

    ck = torch.load(out / "last.pt", weights_only=False)
    ck["train_config"].pop("hit_weight")
    torch.save(ck, out / "last.pt")
    (folder / "hit2.toml").write_text(TINY_TOML + "hit_weight = 2.0\n")
    assert main([*base, "--variant", "flat", "--config", str(folder / "hit2.toml"), "--kappa", "40",
                 "--resume"]) == 2
    assert "hit_weight 1.0 (run) vs 2.0 (now)" in capsys.readouterr().err
    # `--resume` alone reads them from the run: the tiny model, κ 40, two epochs
    assert main([*base, "--resume"]) == 0
    saved = json.loads((out / "config.json").read_text())
    assert saved["model"]["latent_dim"] == 4 and saved["train"]["kappa"] == 40.0
    val = [json.loads(s) for s in (out / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in val if r["kind"] == "val"] == [1, 2]


def test_resume_at_max_steps_takes_no_step_more(folder):
    import torch

    out = folder / "run"
    args = ["train", "--variant", "flat", "--data", str(folder / "midi"), "--out", str(out),
            "--config", str(folder / "tiny.toml"), "--device", "cpu", "--max-steps", "3"]
    assert main(args) == 0
    for _ in range(2):
        assert main([*args, "--resume"]) == 0
        ck = torch.load(out / "last.pt", weights_only=False)
        assert ck["progress"]["step"] == 3


@pytest.mark.parametrize("flags,words", [
    (["--batch-size", "0"], "batch_size must be at least 1"),
    (["--epochs", "0"], "epochs must be at least 1"),
    (["--kappa", "nan"], "kappa must be a finite number"),
    (["--time-budget", "inf"], "time_budget_min must be a finite number"),
    (["--threads", "-1"], "threads must be at least 0"),
    (["--latent-dim", "0"], "latent_dim must be >= 1"),
    # κ options that would be ignored: another κ than asked (the later source won, or the
    # option was used only where it was not given)
    (["--kappa", "12", "--kappa-from", "x.pt"], "--kappa and --kappa-from both set κ"),
    (["--kappa-slack", "1.5"], "it needs --kappa-from"),
    (["--kappa-train-slack", "1.2"], "it needs --init-from"),
    (["--kappa-train-slack", "1.2", "--kappa", "3", "--init-from", "x.pt"], "cannot go with --kappa"),
])
def test_bad_training_numbers_are_refused_before_the_data_loads(folder, capsys, flags, words):
    # --data points nowhere: the settings are checked first, so their error is the one shown
    assert main(["train", "--variant", "flat", "--data", str(folder / "nowhere"),
                 "--out", str(folder / "r"), *flags]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


@pytest.mark.parametrize("settings,words", [
    ("weight_decay = -1.0", "weight_decay must be >= 0"),
    ("hit_weight = -2.0", "hit_weight must be >= 0"),
    ("fill_weight = 0.0", "fill_weight must be above 0"),
    ("flat_data_share = 1.5", "flat_data_share must be in [0, 1]"),
    ('drum_weights = { cowbell = 2.0 }', "unknown drums ['cowbell']"),
    ("drum_weights_fills_only = true", "drum_weights_fills_only needs drum_weights"),
    ("vel_weight_off_fills = true", "vel_weight_off_fills needs vel_weight != 1"),
    ("realism_balance = -1.0", "realism_balance must be >= 0"),
    ('flat_loss = "frobenius"\nrealism_weight = 1.0', "need flat_loss = \"stein\""),
])
def test_bad_loss_settings_are_refused_before_the_data_loads(folder, capsys, settings, words):
    # these were checked when the trainer was built, after the data had loaded (minutes on
    # the GMD); now with every other setting, at once
    (folder / "bad.toml").write_text(f"[train]\n{settings}\n")
    assert main(["train", "--variant", "flat", "--data", str(folder / "nowhere"),
                 "--out", str(folder / "r"), "--config", str(folder / "bad.toml")]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


def test_ctrl_c_saves_whole_steps(folder, capsys, monkeypatch):
    import signal

    import torch

    from flatgroove.train.trainer import Trainer

    real, calls = Trainer.train_step, []

    def step_then_ctrl_c(self, idx):
        calls.append(1)
        if len(calls) == 2:  # Ctrl-C lands inside the second step
            signal.raise_signal(signal.SIGINT)
        return real(self, idx)

    monkeypatch.setattr(Trainer, "train_step", step_then_ctrl_c)
    # the handler the run found (SIG_IGN where the suite runs in the background, e.g. under nohup)
    before = signal.getsignal(signal.SIGINT)
    out = folder / "run"
    assert main(["train", "--variant", "flat", "--data", str(folder / "midi"), "--out", str(out),
                 "--config", str(folder / "tiny.toml"), "--device", "cpu"]) == 130
    assert "continue with --resume" in capsys.readouterr().out
    ck = torch.load(out / "last.pt", weights_only=False)
    assert ck["progress"]["step"] == 2 and len(calls) == 2  # the step in progress was finished
    assert signal.getsignal(signal.SIGINT) is before  # handler given back


def test_widening_needs_the_other_sizes_equal(folder, capsys):
    src = folder / "src"
    assert main(["train", "--variant", "vae", "--data", str(folder / "midi"), "--out", str(src),
                 "--config", str(folder / "tiny.toml"), "--device", "cpu", "--max-steps", "1"]) == 0
    wide = folder / "wide.toml"
    wide.write_text(TINY_TOML.replace("dec_hidden = 24\ndec_layers = 1", "dec_hidden = 32\ndec_layers = 2"))
    capsys.readouterr()
    assert main(["train", "--variant", "flat", "--data", str(folder / "midi"), "--out", str(folder / "w"),
                 "--config", str(wide), "--device", "cpu", "--init-from", str(src / "last.pt"),
                 "--max-steps", "1"]) == 2
    err = capsys.readouterr().err
    assert "dec_layers differ" in err and "Traceback" not in err


def test_an_out_that_is_a_file_is_refused_before_the_data_loads(folder, capsys, monkeypatch):
    from flatgroove import data

    monkeypatch.setattr(data, "load_dataset", lambda *a, **k: pytest.fail("the data loaded first"))
    (folder / "afile").write_text("x")
    assert main(["train", "--variant", "flat", "--data", str(folder / "midi"),
                 "--out", str(folder / "afile")]) == 2
    err = capsys.readouterr().err
    assert "afile" in err and "Traceback" not in err
