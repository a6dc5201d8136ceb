"""Training at scale on CPU with gloo: a run on 2 processes under torchrun is the same
experiment as a run on one (weights, λ on every rank, log), a 2-node rehearsal on 127.0.0.1
too; a killed or stuck rank stops the run with an error instead of a hang, and --resume (on 1
or 2 processes) reaches the uninterrupted run's weights. Tiny models, small data."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from flatgroove.cli import main
from flatgroove.midi import write_midi
from flatgroove.presets import all_builtins

HERE = Path(__file__).parent
BOUND = 240  # s: a hung launch fails the test instead of stalling CI (not a timing claim)

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
batch_size = 9
flat_points = 5
flat_warmup_epochs = 0.0
flat_ramp_epochs = 1.0
log_every = 1
checkpoint_every = 3
"""


def child_env(**extra: str) -> dict:
    e = {k: v for k, v in os.environ.items() if k != "FLATGROOVE_FAULT"}
    return {**e, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE.parent / "src"), **extra}


def torchrun(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", *args],
                          env=child_env(**env), capture_output=True, text=True, timeout=BOUND,
                          check=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=False)["state_dict"]


def max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def log(path: Path) -> list[dict]:
    return [json.loads(s) for s in path.read_text().splitlines()]


def assert_same_log(a: list[dict], b: list[dict]) -> None:
    """The same records (kinds, steps, keys in order) with the same figures up to float
    rounding; only the wall-clock `elapsed` differs."""
    assert [(r["kind"], r["step"], list(r)) for r in a] == [(r["kind"], r["step"], list(r)) for r in b]
    for ra, rb in zip(a, b, strict=True):
        for k, va in ra.items():
            if k == "elapsed":
                continue
            if isinstance(va, float) and not math.isnan(va):
                assert va == pytest.approx(rb[k], rel=1e-4, abs=1e-6), (ra["kind"], ra["step"], k)
            elif not isinstance(va, float):
                assert va == rb[k], (ra["kind"], ra["step"], k)


# -- the trainer under torchrun: every variant, λ on each rank --------------------------------

def test_two_processes_on_two_nodes_match_one(tmp_path):
    """Two torchrun agents (--nnodes 2, one process each) meet at a c10d rendezvous on
    127.0.0.1, as two machines would, and train vae, vhp, flat and flat with the Stein loss for
    10 steps: the same weights, λ and log as one process."""
    sys.path.insert(0, str(HERE))
    try:
        import dist_worker
    finally:
        sys.path.remove(str(HERE))
    one, two = tmp_path / "one", tmp_path / "two"
    rdzv = ["--nnodes", "2", "--nproc-per-node", "1", "--rdzv-backend", "c10d",
            "--rdzv-endpoint", f"127.0.0.1:{free_port()}", "--rdzv-id", "rehearsal",
            str(HERE / "dist_worker.py"), str(two)]
    nodes = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", *rdzv],
                              env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    try:
        res = [p.communicate(timeout=BOUND) for p in nodes]
    finally:
        for p in nodes:
            p.kill()
    assert [p.returncode for p in nodes] == [0, 0], res[0][1][-2000:] + res[1][1][-2000:]
    threads = torch.get_num_threads()
    try:
        dist_worker.train(one, list(dist_worker.RUNS))
    finally:
        torch.set_num_threads(threads)
    for name in dist_worker.RUNS:
        s = torch.load(one / name / "rank0.pt")
        r0, r1 = torch.load(two / name / "rank0.pt"), torch.load(two / name / "rank1.pt")
        assert max_diff(s["state_dict"], r0["state_dict"]) < 1e-5, name
        assert max_diff(r0["state_dict"], r1["state_dict"]) == 0.0, name  # DDP keeps ranks in step
        if name != "vae":
            assert len(s["lams"]) == 10 and len(set(s["lams"])) > 5  # λ moves every step
            assert r0["lams"] == r1["lams"], name  # identical on every rank, every step
            assert r0["lams"] == pytest.approx(s["lams"], rel=1e-6), name
        assert_same_log(log(one / name / "log.jsonl"), log(two / name / "log.jsonl"))
    # The flatness term was on in the flat runs, and the validation figures came back whole.
    fl = log(two / "flat" / "log.jsonl")
    assert all(r["flat_weight"] > 0 for r in fl if r["kind"] == "train")
    assert [r["step"] for r in fl if r["kind"] == "val"] == [5, 10]
    assert "heard_cv" in fl[-1] and "flat" in fl[-1]


# -- the CLI under torchrun: a MIDI folder, the run folder --------------------------------------

@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """40 training windows (5 steps of a global batch of 9: 4 + 5 rows and 2 + 2 on two
    ranks) and 5 validation windows."""
    d = tmp_path_factory.mktemp("dist")
    gs = list(all_builtins().values())
    for i in range(9):
        write_midi([gs[(i + k) % len(gs)] for k in range(3)], d / "midi" / f"take{i}.mid")
    (d / "tiny.toml").write_text(TINY_TOML)
    return d


def train_args(folder: Path, out: Path) -> list[str]:
    return ["train", "--variant", "flat", "--data", str(folder / "midi"), "--out", str(out),
            "--config", str(folder / "tiny.toml"), "--device", "cpu"]


@pytest.fixture(scope="module")
def single(folder):
    """The uninterrupted one-process run."""
    out = folder / "single"
    threads = torch.get_num_threads()
    try:
        assert main(train_args(folder, out)) == 0
    finally:
        torch.set_num_threads(threads)
    return out


def test_killed_rank_stops_the_run_and_resume_continues(folder, single):
    """`flatgroove train --nproc 2` (torchrun's launcher, standalone): rank 1 dies (SIGKILL)
    after step 7; the run stops with an error, the last checkpoint is at step 6 and the log,
    the same as one process's so far, has reached step 7. --resume on one process reaches the
    uninterrupted run's weights, and the log then holds every step once."""
    crashed = folder / "crashed"
    r = subprocess.run([sys.executable, "-m", "flatgroove", *train_args(folder, crashed),
                        "--nproc", "2", "--dist-timeout", "30"], env=child_env(FLATGROOVE_FAULT="1:7"),
                       capture_output=True, text=True, check=False, timeout=BOUND)
    assert r.returncode == 1, r.stderr[-3000:]
    assert "torchrun --standalone --nproc-per-node 2 -m flatgroove train" in r.stdout
    assert "on 2 processes (global batch 9)" in r.stdout
    assert r.stdout.count("training flat") == 1  # rank 0 alone speaks
    assert "the distributed run stopped: " in r.stderr and "rank 1 exit code -9 (SIGKILL)" in r.stderr
    got, want = log(crashed / "log.jsonl"), log(single / "log.jsonl")
    assert max(x["step"] for x in got) == 7
    assert_same_log(want[: len(got)], got)
    assert torch.load(crashed / "last.pt", weights_only=False)["progress"]["step"] == 6
    threads = torch.get_num_threads()
    try:
        assert main([*train_args(folder, crashed), "--resume"]) == 0
    finally:
        torch.set_num_threads(threads)
    assert max_diff(weights(single / "last.pt"), weights(crashed / "last.pt")) < 1e-5
    assert [(x["kind"], x["step"]) for x in log(crashed / "log.jsonl")] == [
        (x["kind"], x["step"]) for x in want]


def test_nproc_with_a_user_error_is_a_user_error_not_a_crash_to_resume(folder, tmp_path):
    # every rank refuses the missing folder (exit 2): said once as that, exit 2, no --resume advice
    r = subprocess.run([sys.executable, "-m", "flatgroove", "train", "--variant", "flat", "--data",
                        str(tmp_path / "nowhere"), "--out", str(tmp_path / "r"), "--nproc", "2"],
                       env=child_env(), capture_output=True, text=True, check=False, timeout=BOUND)
    assert r.returncode == 2, r.stderr[-2000:]
    assert "nowhere: no such folder" in r.stderr and "--resume" not in r.stderr


@pytest.mark.parametrize(("codes", "user"), [([2, 2], True), ([2, -15], True), ([-15, 2], True),
                                            ([2, -9], False), ([1, 2], False), ([-15, -15], False), ([1], False)])
def test_a_refusal_is_told_from_a_crash_whichever_rank_stops_first(codes, user):
    """Every failed rank exited 2, or was stopped by torchrun's SIGTERM after one did (the race
    the test above meets on a busy machine): a user error. A rank killed otherwise (SIGKILL), a
    crash (1), or SIGTERMs with no refusal: a run to resume."""
    from flatgroove.train.cli import refused_by_every_rank

    assert refused_by_every_rank(codes) is user


def test_nproc_starts_torchrun_with_the_same_command(folder):
    from flatgroove.cli import build_parser

    args = build_parser().parse_args([*train_args(folder, folder / "r"), "--nproc", "3",
                                      "--seed", "5", "--resume"])
    from flatgroove.train.cli import torchrun_args

    assert torchrun_args(args) == [
        "--standalone", "--nproc-per-node", "3", "-m", "flatgroove", "train", "--variant", "flat",
        "--data", str(folder / "midi"), "--out", str(folder / "r"), "--config",
        str(folder / "tiny.toml"), "--seed", "5", "--device", "cpu", "--resume"]


@pytest.mark.slow
def test_stuck_rank_times_out_with_a_clear_error(folder):
    """Rank 1 hangs: rank 0's next collective times out (--dist-timeout 3) and the run stops
    with an error naming the way on, not a hang."""
    out = folder / "stuck"
    r = torchrun("--standalone", "--nproc-per-node", "2", "-m", "flatgroove",
                 *train_args(folder, out), "--dist-timeout", "3",
                 FLATGROOVE_FAULT="1:4:hang")
    assert r.returncode != 0
    assert "rank 0 of 2: lost the other processes at step 4" in r.stderr
    assert "--resume" in r.stderr
