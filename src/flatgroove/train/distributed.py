"""Training on several processes, GPUs and machines: torchrun + DistributedDataParallel.

`torchrun` (torch.distributed.run) starts the processes and sets RANK, WORLD_SIZE and
LOCAL_RANK; `init` joins them into one process group (gloo on CPU, nccl on CUDA) with a
timeout on every collective, so a lost or stuck rank stops the run instead of hanging it.

A distributed run is the same experiment as a one-process run (DESIGN §7): the batch size is
the global batch, rank r takes rows `shard(n, r, W)` of it, the random draws of a step (z's
noise, the mixups and probes, the VHP prior's samples) are drawn for the whole batch on every
rank from the same generator and sliced, and every figure (reconstruction, KL, the flatness
term) is a global one, so GECO's λ is the same on every rank and equal to the single run's.

The gradient: each rank's loss is the global loss in which only its own rows carry gradient
(the others' contributions enter as constants, `with_own_grad`). The sum over ranks of those
gradients is the gradient of the global loss; DDP averages, so each rank scales its loss by W.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

FAULT_ENV = "FLATGROOVE_FAULT"  # "RANK:STEP[:hang]": that rank dies (or hangs) there (tests)


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


SINGLE = DistContext()


def launched() -> bool:
    """True in a process that torchrun started for a run of more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def context_from_env() -> DistContext:
    return DistContext(int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1")),
                       int(os.environ.get("LOCAL_RANK", "0")))


def init(device: str, timeout_s: float = 300.0) -> tuple[DistContext, str]:
    """Join torchrun's process group; returns the context and this rank's device. A process
    not started by torchrun (or a world of one) runs alone: SINGLE, device unchanged."""
    ctx = context_from_env()
    if not ctx.enabled:
        return SINGLE, device
    if device.startswith("cuda"):
        device = f"cuda:{ctx.local_rank}"
        torch.cuda.set_device(ctx.local_rank)
        backend = "nccl"
    else:
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s))
    return ctx, device


def close() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def shard(n: int, rank: int, world: int) -> tuple[int, int]:
    """Rows lo:hi of n that rank takes (contiguous, sizes differ by at most one)."""
    return n * rank // world, n * (rank + 1) // world


def all_sum(t: torch.Tensor) -> torch.Tensor:
    """The sum over ranks of a (detached) tensor."""
    t = t.detach().clone()
    dist.all_reduce(t)
    return t


def with_own_grad(local: torch.Tensor) -> torch.Tensor:
    """The sum over ranks of `local`, with gradient through this rank's part only."""
    return local + (all_sum(local) - local.detach())


def gather_rows(y: torch.Tensor, n: int, ctx: DistContext) -> torch.Tensor:
    """All n rows of a tensor sharded by `shard`; this rank's rows keep their gradient."""
    sizes = [shard(n, r, ctx.world) for r in range(ctx.world)]
    width = max(hi - lo for lo, hi in sizes)
    pad = y.detach()
    if len(pad) < width:
        pad = torch.cat([pad, pad.new_zeros((width - len(pad), *pad.shape[1:]))])
    parts = [torch.empty_like(pad) for _ in range(ctx.world)]
    dist.all_gather(parts, pad.contiguous())
    rows = [p[: hi - lo] for p, (lo, hi) in zip(parts, sizes, strict=True)]
    rows[ctx.rank] = y
    return torch.cat(rows)


def broadcast_object(obj, ctx: DistContext):
    """Rank 0's object on every rank."""
    if not ctx.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def fault(ctx: DistContext) -> tuple[int, str] | None:
    """(step, "kill" | "hang"): where this rank is to fail, for the tests of a crashed or stuck
    rank (FLATGROOVE_FAULT=RANK:STEP[:hang]); None normally."""
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return None
    rank, step, *how = spec.split(":")
    return (int(step), how[0] if how else "kill") if int(rank) == ctx.rank else None


def fail(how: str) -> None:
    if how == "hang":
        while True:
            time.sleep(3600)
    os.kill(os.getpid(), signal.SIGKILL)


def is_collective_failure(e: BaseException) -> bool:
    """An error raised by a collective whose peers stopped, went away or timed out."""
    if isinstance(e, dist.DistError):
        return True
    s = str(e).lower()
    return isinstance(e, RuntimeError) and any(k in s for k in (
        "gloo", "nccl", "connection closed", "connection reset", "timed out", "timeout",
        "broken pipe", "peer"))


class Forward(torch.nn.Module):
    """Holds the model so DDP wraps its parameters; forward runs the trainer's objective, so
    DDP sees one forward per step however the objective calls the model's parts."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, fn, *args):
        return fn(*args)
