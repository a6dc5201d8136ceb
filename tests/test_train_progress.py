"""The trainer's progress when its output is piped (plain lines with a run ETA, never a
carriage return), the degenerate-model warning, the log trimmed on resume, and the time budget."""

from __future__ import annotations

import io
import json
from types import SimpleNamespace

import torch

from flatgroove.model.config import ModelConfig
from flatgroove.train import distributed as D
from flatgroove.train.config import TrainConfig
from flatgroove.train.trainer import Progress, Trainer

TINY = {"latent_dim": 4, "enc_hidden": 16, "enc_layers": 1, "dec_hidden": 24, "dec_layers": 1,
        "step_embed": 4, "prior_hidden": 16}


def data(n: int = 45) -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    hits = (torch.rand(n, 32, 9, generator=g) < 0.15).float()
    return torch.cat([hits, hits * torch.rand(hits.shape, generator=g),
                      hits * (torch.rand(hits.shape, generator=g) - 0.5)], -1)


def trainer(tmp_path, **tc) -> Trainer:
    x = data()
    cfg = TrainConfig(**{"epochs": 2, "batch_size": 9, "log_every": 2, **tc})
    return Trainer(ModelConfig(variant="vae", **TINY), cfg, x[:40], x[40:], tmp_path / "run")


def test_piped_progress_is_plain_lines_with_a_run_eta(tmp_path, capsys):
    tr = trainer(tmp_path)
    tr.fit()
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = [s for s in err.splitlines() if s.startswith("vae epoch")]
    # a line at every log record (steps 1, 2, 4, 6, 8, 10) and one at each epoch's end
    steps = [s.split(" step ")[1].split()[0] for s in lines if "done" not in s]
    assert steps == ["1/10", "2/10", "4/10", "6/10", "8/10", "10/10"]
    assert sum("done" in s for s in lines) == 2
    assert all("ETA " in s for s in lines)
    assert "ETA 0:00:00" in lines[-1]  # nothing left at the end


def test_progress_on_a_terminal_is_a_bar_with_the_run_eta(tmp_path):
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tr = trainer(tmp_path)
    p = Progress(tr, stream=Tty())
    p.start_epoch()
    tr.step = 1
    p.step({"recon": 1.0, "kl": 2.0, "lam": 1.0})
    p.close()
    out = p.stream.getvalue()
    assert "\r" in out and "run ETA" in out and "recon=1" in out


def test_degenerate_model_warns(tmp_path, capsys):
    tr = trainer(tmp_path, epochs=1)
    with torch.no_grad():  # a decoder that never plays a hit
        tr.model.decoder.head.bias[:9] = -30.0
        tr.model.decoder.head.weight[:9] = 0.0
    tr.tc.lr = tr.tc.lr_min = 0.0
    tr.fit()
    err = capsys.readouterr().err
    assert "warning: the model looks degenerate after epoch 1" in err
    assert "near-silent" in err and "hit F1 0.000" in err
    assert tr.warnings and "--init-from" in tr.warnings[0]
    tr._val_counts = (40, 50, 60)  # a working model: no warning
    assert tr.degenerate({"hit_f1": 0.73, "epoch": 2}) is None


def test_resume_trims_the_log_to_the_checkpoint(tmp_path):
    tr = trainer(tmp_path, epochs=2, log_every=1, checkpoint_every=7)
    tr.fit()
    log = tr.out / "log.jsonl"
    full = log.read_text()
    # As if killed at step 9 after the checkpoint at step 7, mid-line.
    recs = [json.loads(s) for s in full.splitlines()]
    upto9 = [s for s, r in zip(full.splitlines(), recs, strict=True) if r["step"] <= 9
             and not (r["kind"] == "val" and r["epoch"] > 1)]
    log.write_text("\n".join(upto9) + '\n{"hit_bce": 20')
    tr.step, tr.epoch = 7, 1  # where the step-7 checkpoint stands
    assert tr.trim_log() == 3  # steps 8, 9 and the cut line
    kept = [json.loads(s) for s in log.read_text().splitlines()]
    assert [(r["kind"], r["step"]) for r in kept] == [
        ("train", 1), ("train", 2), ("train", 3), ("train", 4), ("train", 5), ("val", 5),
        ("train", 6), ("train", 7)]


def test_keep_epochs_keeps_each_epochs_checkpoint(tmp_path):
    """--keep-epochs: every epoch's weights and validation figures stay readable after the run,
    not only the last epoch's and the best reconstruction's."""
    from flatgroove.model.checkpoint import read_checkpoint

    tr = trainer(tmp_path, epochs=3, keep_epochs=True)
    tr.fit()
    kept = [read_checkpoint(tr.out / f"epoch{e}.pt") for e in (1, 2, 3)]
    assert [k["metrics"]["epoch"] for k in kept] == [1, 2, 3]
    assert [k["progress"]["step"] for k in kept] == [5, 10, 15]
    w = [k["state_dict"]["decoder.head.weight"] for k in kept]
    assert not torch.equal(w[0], w[2])  # a copy per epoch, not three names for one file
    assert torch.equal(w[2], read_checkpoint(tr.out / "last.pt")["state_dict"]["decoder.head.weight"])
    off = trainer(tmp_path / "off", epochs=1)
    off.fit()
    assert not list(off.out.glob("epoch*.pt"))  # off by default


def _budget_clock(monkeypatch, epoch=0, epochs=99):
    """A settable clock for TimeBudget and a stand-in trainer (10 steps an epoch)."""
    from flatgroove.train import trainer as T

    now = [0.0]
    monkeypatch.setattr(T.time, "perf_counter", lambda: now[0])
    tr = SimpleNamespace(step=0, epoch=epoch, steps_per_epoch=10, tc=SimpleNamespace(epochs=epochs),
                         dist=D.SINGLE)
    return T.TimeBudget, now, tr


def test_time_budget_sets_the_epochs_from_the_first_steps(monkeypatch):
    """1 s per step, 10 steps per epoch, 100 s budget, 35 s spent at the probe's end: the
    65 s left hold int(65 / (1.1 × 10)) = 5 epochs; then each epoch is checked against the rest."""
    TimeBudget, now, tr = _budget_clock(monkeypatch)
    b = TimeBudget(100.0, 0.0, 0, warmup=5, probe=30)
    for s in range(1, 36):
        now[0], tr.step = 5.0 + s - 5, s
        b.step(tr)
    assert tr.tc.epochs == 5
    now[0], tr.epoch = 50.0, 1
    b.end_epoch(tr)
    assert tr.tc.epochs == 1 + 1  # re-fitted: 50 s left, 50 s an epoch
    assert not b.overruns(True)  # 50 s spent, an epoch takes 50 s: 100 s, not over
    now[0] = 80.0
    assert b.overruns(True)  # 80 + the slowest epoch (50 s) > 100
    assert not b.overruns(False)  # nothing more to run


def test_time_budget_stops_a_run_after_the_epoch_that_fills_it(tmp_path, capsys):
    tr = trainer(tmp_path, epochs=50, time_budget_min=1e-4)
    tr.fit()
    assert tr.epoch == 1 and (tmp_path / "run" / "last.pt").exists()
    assert "time budget: stopping after epoch 1 of 50" in capsys.readouterr().err


def test_time_budget_fits_the_epochs_again_after_the_first_whole_one(monkeypatch):
    """The probe's steps ran fast (0.5 s each: 14 epochs looked to fit), the first whole epoch
    took 20 s: the 80 s then left hold 4 more, so the schedule is set to 5 epochs (and not cut
    short at the 5th of 14)."""
    TimeBudget, now, tr = _budget_clock(monkeypatch)
    b = TimeBudget(100.0, 0.0, 0, warmup=2, probe=5)
    for s in range(1, 8):
        now[0], tr.step = 0.5 * s + 15.0 * (s >= 2), s  # 15 s of start-up first
        b.step(tr)
    assert tr.tc.epochs == int((100 - 18.5) / (1.1 * 0.5 * 10)) == 14  # the probe's guess
    now[0], tr.epoch = 20.0, 1
    b.end_epoch(tr)
    assert tr.tc.epochs == 1 + 4
    now[0], tr.epoch = 50.0, 2
    b.end_epoch(tr)  # only the first whole epoch re-fits
    assert tr.tc.epochs == 5 and not b.overruns(True)  # 50 + the slowest (30 s) <= 100


def test_time_budget_does_not_refit_from_a_resumed_part_of_an_epoch(monkeypatch):
    TimeBudget, now, tr = _budget_clock(monkeypatch, epoch=3, epochs=9)
    b = TimeBudget(100.0, 0.0, 0, whole=False)
    now[0], tr.epoch = 5.0, 4
    b.end_epoch(tr)
    assert tr.tc.epochs == 9
