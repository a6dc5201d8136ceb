"""Commands check what they can before working, and say how to go on afterwards."""

from __future__ import annotations

import pytest

from flatgroove.cli import main
from flatgroove.midi import write_midi
from flatgroove.presets import all_builtins


def test_evaluate_checks_every_checkpoint_before_any_work(tmp_path, capsys):
    missing = tmp_path / "runs" / "typo" / "best.pt"
    out = tmp_path / "eval"
    # The dataset is missing too: the checkpoints are checked first, all of them, so the
    # third path's error comes before any data is read or any model is studied.
    rc = main(["evaluate", "flat", "vae", str(missing), "--data", str(tmp_path / "no-data"),
               "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2
    assert str(missing) in err and "no-data" not in err
    assert not out.exists()


def test_train_says_how_to_use_the_run(tmp_path, capsys, monkeypatch):
    from flatgroove.train import cli as train_cli
    from flatgroove.train.trainer import Trainer

    assert train_cli.use_hint(tmp_path) is None  # nothing saved yet: nothing to suggest
    gs = list(all_builtins().values())
    for i in range(4):
        write_midi(gs[i:] + gs[:i], tmp_path / "midi" / f"take{i}.mid")
    run = tmp_path / "runs" / "mine"

    def interrupted(self):
        run.mkdir(parents=True, exist_ok=True)
        (run / "last.pt").write_bytes(b"")  # what the trainer saves on Ctrl-C
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "fit", interrupted)
    rc = main(["train", "--variant", "vae", "--data", str(tmp_path / "midi"), "--out", str(run),
               "--latent-dim", "2", "--device", "cpu"])
    out, err = capsys.readouterr()
    assert rc == 130, err
    assert "continue with --resume" in out
    assert f"--model {run}" in out and "flatgroove interpolate" in out
    (run / "best.pt").write_bytes(b"")
    assert "best.pt" in train_cli.use_hint(run)


@pytest.mark.parametrize("argv, says", [
    (["sample", "--bar", "2"], "unrecognized arguments: --bar"),
])
def test_removed_options_are_refused(argv, says, capsys):
    with pytest.raises(SystemExit):
        main(argv)
    assert says in capsys.readouterr().err
