"""`flatgroove train`: train a variant on the Groove MIDI Dataset or any MIDI folder."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path


def _device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        from flatgroove.errors import UserError

        raise UserError("--device cuda: no CUDA device is available here")
    return name


def _train(args: argparse.Namespace) -> int:
    import torch

    from flatgroove.data import load_dataset
    from flatgroove.errors import UserError
    from flatgroove.model.checkpoint import read_checkpoint
    from flatgroove.train import distributed as D
    from flatgroove.train.config import load_config
    from flatgroove.train.trainer import Trainer, TrainError

    if (args.nproc or 1) > 1 and not D.launched():
        return _launch(args)
    # Under torchrun: join the other processes (gloo on CPU, nccl on CUDA); alone otherwise.
    ctx, device = D.init(_device(args.device), args.dist_timeout)
    say = print if ctx.is_main else (lambda *a, **k: None)
    out = Path(args.out)
    try:
        if args.resume and args.config is None and (out / "last.pt").exists():
            # `--resume` alone continues the run with its own settings (saved in it)
            mc, tc = _run_settings(out / "last.pt")
            if args.variant is not None and args.variant != mc.variant:
                raise UserError(f"cannot resume: {out} is a {mc.variant!r} run, not {args.variant!r}")
        else:
            mc, tc = load_config(args.config, variant=args.variant)
        if args.latent_dim is not None:  # through the checks of a fresh ModelConfig
            mc = type(mc).from_dict({**mc.to_dict(), "latent_dim": args.latent_dim})
    except ValueError as e:
        raise UserError(str(e)) from None
    # κ has three sources; two given at once would have one silently win
    if args.kappa is not None and args.kappa_from is not None:
        raise UserError("--kappa and --kappa-from both set κ; give one")
    if args.kappa_slack != 1.0 and args.kappa_from is None:
        raise UserError("--kappa-slack scales --kappa-from's figure; it needs --kappa-from")
    if args.kappa_train_slack is not None:
        if args.kappa is not None or args.kappa_from is not None:
            raise UserError("--kappa-train-slack sets κ from the warm start; it cannot go with "
                            "--kappa or --kappa-from")
        if not (args.init_from or tc.init_from):
            raise UserError("--kappa-train-slack sets κ from the warm model; it needs --init-from")
    for key in ("epochs", "seed", "batch_size", "max_steps", "time_budget_min", "decoding"):
        if getattr(args, key, None) is not None:
            setattr(tc, key, getattr(args, key))
    if args.keep_epochs:
        tc.keep_epochs = True
    if args.kappa is not None:
        tc.kappa = args.kappa
    if args.kappa_from is not None:
        # κ from a baseline run: its best validation reconstruction error (DESIGN §4).
        ck = read_checkpoint(args.kappa_from)
        rec = (ck.get("metrics") or {}).get("recon")
        if rec is None:
            raise UserError(f"{args.kappa_from}: has no validation reconstruction figure for κ")
        tc.kappa = float(rec) * args.kappa_slack
        say(f"κ = {tc.kappa:.3f} (from {args.kappa_from}: val recon {rec:.3f} × {args.kappa_slack})")
    if args.init_from is not None:
        tc.init_from = args.init_from
    if args.kappa_train_slack is not None:
        tc.kappa_train_slack = args.kappa_train_slack
    if args.threads:
        tc.threads = args.threads
    if args.resume:
        tc.init_from = ""  # a resumed run's weights come from its checkpoint, not a warm start
    bad = tc.problems()
    if bad:  # before the data is loaded
        raise UserError("; ".join(bad))
    if tc.threads:
        torch.set_num_threads(tc.threads)
    if out.exists() and (out / "last.pt").exists() and not args.resume:
        raise UserError(f"{out} holds a run already; pass --resume to continue it or choose another --out")
    if ctx.is_main:  # a file there, or no permission: said now, not after the data has loaded
        out.mkdir(parents=True, exist_ok=True)
    data = args.data
    train = load_dataset(data, split="train", progress=ctx.is_main)
    val = load_dataset(data, split="validation", progress=ctx.is_main)
    if len(train) == 0:
        raise UserError(f"{data}: no training windows")
    info = {"path": str(data), "train_windows": len(train), "validation_windows": len(val),
            "bars": 2, "hop_bars": 1}
    try:
        tr = Trainer(mc, tc, train.tensors(), val.tensors(), out, device=device, data_info=info,
                     progress=ctx.is_main, dist=ctx, train_meta=train.meta)
        for note in ("projection_note", "grow_note", "widen_note", "kappa_note"):
            if getattr(tr, note, None) and not args.resume:
                say(getattr(tr, note))
        if args.resume:
            tr.resume()
            say(f"resumed {out} at step {tr.step} (epoch {tr.epoch + 1}, λ = {tr.geco.lam:.4g})")
        on = f" on {ctx.world} processes (global batch {tc.batch_size})" if ctx.enabled else ""
        say(f"training {mc.variant} (d = {mc.latent_dim}) on {len(train)} windows, "
            f"{len(val)} for validation, {tr.steps_per_epoch} steps per epoch{on} -> {out}")
        last = tr.fit()
    except TrainError as e:
        raise UserError(str(e)) from None
    except KeyboardInterrupt:
        if ctx.is_main:
            print(f"\ninterrupted; saved {out / 'last.pt'} (continue with --resume)")
            _print_use(out)
        return 130
    D.close()
    if not ctx.is_main:
        return 0
    print(json.dumps({k: round(v, 5) if isinstance(v, float) else v for k, v in last.items()}))
    _print_use(out)
    return 0


def _run_settings(path: Path):
    """(ModelConfig, TrainConfig) a run was trained with, from its checkpoint."""
    from flatgroove.errors import CheckpointError, UserError
    from flatgroove.model.checkpoint import read_checkpoint
    from flatgroove.model.config import ModelConfig
    from flatgroove.train.config import TrainConfig

    try:
        ck = read_checkpoint(path)
    except CheckpointError as e:
        raise UserError(f"cannot resume: {e}") from None
    if "train_config" not in ck:
        raise UserError(f"cannot resume: {path} holds weights only (no training settings)")
    tc = TrainConfig.from_dict(ck["train_config"])
    tc.max_steps, tc.time_budget_min = 0, 0.0  # where it stopped early: on to its schedule's end
    return ModelConfig.from_dict(ck["model_config"]), tc


def torchrun_args(args: argparse.Namespace) -> list[str]:
    """torchrun's arguments for `flatgroove train --nproc N ...` on this machine: the same
    train command (without --nproc) on N processes, rendezvous on a free local port."""
    argv = []
    for a in args.train_parser._actions:
        if a.dest in ("help", "nproc") or not a.option_strings:
            continue
        v = getattr(args, a.dest, None)
        if v is None or v == a.default:
            continue
        if isinstance(a, argparse._StoreTrueAction):
            argv.append(a.option_strings[0])
        else:
            argv += [a.option_strings[0], str(v)]
    top = ["-v"] if getattr(args, "verbose", False) else []
    return ["--standalone", "--nproc-per-node", str(args.nproc), "-m", "flatgroove", *top,
            "train", *argv]


def refused_by_every_rank(exitcodes: list[int]) -> bool:
    """Whether a distributed run's failed ranks all stopped on a user error: exit code 2 (every
    rank reads the same settings and data), or stopped by torchrun's SIGTERM after a rank that
    exited 2, before refusing it themselves (a race: which comes first depends on the machine)."""
    import signal

    return 2 in exitcodes and all(c in (2, -signal.SIGTERM) for c in exitcodes)


def _launch(args: argparse.Namespace) -> int:
    """Start torchrun's own launcher (torch.distributed.run) for N processes on this machine."""
    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    cmd = torchrun_args(args)
    print("torchrun " + shlex.join(cmd), flush=True)
    try:
        torchrun.run(torchrun.get_args_parser().parse_args(cmd))
    except ChildFailedError as e:
        if refused_by_every_rank([f.exitcode for f in e.failures.values()]):
            # the ranks refused the same settings or data (the error is above): a user error,
            # not a crash to resume
            print("flatgroove: error: the distributed run did not start (see the error above)",
                  file=sys.stderr, flush=True)
            return 2
        why = "; ".join(f"rank {r} exit code {f.exitcode}" + (f" ({f.signal_name()})" if f.exitcode < 0 else "")
                        for r, f in sorted(e.failures.items()))
        print(f"flatgroove: error: the distributed run stopped: {why}; continue it with --resume",
              file=sys.stderr, flush=True)
        return 1
    return 0


def use_hint(out: Path) -> str | None:
    """How to use a run folder's model (its best.pt, else last.pt), or None if it has none."""
    which = next((n for n in ("best.pt", "last.pt") if (out / n).is_file()), None)
    if which is None:
        return None
    run = shlex.quote(str(out))
    return (f"use the model ({out / which}) with --model {run}, e.g.\n"
            f"  flatgroove interpolate rock funk --model {run} -o path.mid --wav path.wav\n"
            f"  flatgroove jam --simulate rock --model {run} --out session.mid\n"
            f"  flatgroove serve --model {run}")


def _print_use(out: Path) -> None:
    hint = use_hint(out)
    if hint:
        print(hint, flush=True)


def register(sub) -> None:
    p = sub.add_parser("train", help="train a vae, vhp or flat model")
    p.add_argument("--variant", choices=["vae", "vhp", "flat"], default=None,
                   help="model variant (default: the config's, else flat)")
    p.add_argument("--data", default=None, help="Groove MIDI Dataset folder or any MIDI folder")
    p.add_argument("--out", required=True, help="run folder (checkpoints, log.jsonl, config.json)")
    p.add_argument("--config", default=None, help="TOML file with [model] and [train] tables")
    p.add_argument("--epochs", type=int, default=None,
                   help="passes over the training windows (default: the config's)")
    p.add_argument("--batch-size", dest="batch_size", type=int, default=None,
                   help="windows per optimisation step (default: the config's)")
    p.add_argument("--max-steps", dest="max_steps", type=int, default=None,
                   help="stop after this many optimisation steps (a quick trial run)")
    p.add_argument("--time-budget", dest="time_budget_min", type=float, default=None,
                   metavar="MIN", help="fit the run into MIN minutes of wall time: the epoch "
                   "count is set from the first steps' speed, so the schedule ends on time")
    p.add_argument("--latent-dim", dest="latent_dim", type=int, default=None,
                   help="size d of the latent space (default 32; 2 for pictures)")
    p.add_argument("--seed", type=int, default=None, help="random seed (repeatable runs)")
    p.add_argument("--kappa", type=float, default=None, help="reconstruction target (vhp, flat)")
    p.add_argument("--decoding", default=None,
                   help="the rule the run is heard at: threshold[:T], pattern[:LOW:HIGH[:SEED]] or "
                        "count; validation's F1 and heard figures read at it and `export` ships it "
                        "(default: the config's, else threshold 0.5)")
    p.add_argument("--kappa-from", dest="kappa_from", default=None,
                   help="set κ from a baseline run's best validation reconstruction")
    p.add_argument("--kappa-slack", dest="kappa_slack", type=float, default=1.0,
                   help="with --kappa-from: κ = this × the baseline's figure (default 1)")
    p.add_argument("--init-from", dest="init_from", default=None,
                   help="warm start: encoder and decoder weights from this checkpoint (a larger latent_dim is "
                   "projected onto its most informative dimensions, a smaller one grown with new, empty dimensions; "
                   "a wider decoder keeps its function)")
    p.add_argument("--kappa-train-slack", dest="kappa_train_slack", type=float, default=None,
                   help="with --init-from: κ = this × the warm model's reconstruction on training batches")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="where to train (default auto: CUDA if available, else CPU)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out where it stopped")
    p.add_argument("--keep-epochs", dest="keep_epochs", action="store_true",
                   help="keep every epoch's checkpoint as OUT/epochN.pt beside last.pt (to read and "
                        "select a run epoch by epoch)")
    p.add_argument("--nproc", type=int, default=0,
                   help="train on N processes on this machine (starts torchrun; on several "
                        "machines run torchrun yourself, see README: Training at scale)")
    p.add_argument("--dist-timeout", dest="dist_timeout", type=float, default=300.0,
                   help="under torchrun: seconds a rank waits for the others before the run "
                        "stops with an error (default 300)")
    p.set_defaults(func=_train, train_parser=p)
    e = sub.add_parser("export", help="pack a trained run into a small shippable model file "
                                      "(half-precision weights and its decoding rule)")
    e.add_argument("run", help="run folder or checkpoint (best.pt of a folder)")
    e.add_argument("out", help="the model file to write (e.g. my_model.pt)")
    e.add_argument("--name", default=None, help="the model's name in the file (default: the file's stem)")
    e.add_argument("--decoding", default=None,
                   help="how p becomes heard hits for every user of the model: threshold[:T], "
                        "pattern[:LOW:HIGH[:SEED]] or count (default: the run's own, its config's "
                        "`decoding`; threshold 0.5 for a run that predates the setting)")
    e.set_defaults(func=_export)
    av = sub.add_parser("average", help="write the weight average of two checkpoints of one model "
                                        "(a model soup: (1 − w)·A + w·B)")
    av.add_argument("a", help="checkpoint or run folder A (share 1 − w)")
    av.add_argument("b", help="checkpoint or run folder B (share w; the average keeps B's settings and rule)")
    av.add_argument("out", help="the checkpoint to write")
    av.add_argument("--weight", type=float, default=0.5, help="B's share w, in [0, 1] (default 0.5)")
    av.set_defaults(func=_average)


def _export(args: argparse.Namespace) -> int:
    from flatgroove.errors import UserError
    from flatgroove.model.checkpoint import CheckpointError, export_shipped, read_checkpoint
    from flatgroove.model.decoding import DecodingRule, parse_rule

    try:
        rule = parse_rule(args.decoding) if args.decoding else None
        p = export_shipped(args.run, args.out, args.name or Path(args.out).stem, decoding=rule)
    except (ValueError, CheckpointError) as err:
        raise UserError(str(err)) from None
    heard = DecodingRule.from_dict(read_checkpoint(p).get("decoding")).describe()  # as written
    print(f"wrote {p} ({p.stat().st_size / 1e6:.1f} MB, decoding: {heard}); use it with --model {p}")
    return 0


def _average(args: argparse.Namespace) -> int:
    from flatgroove.errors import UserError
    from flatgroove.model.checkpoint import CheckpointError, average_checkpoints

    try:
        p = average_checkpoints(args.a, args.b, args.out, args.weight)
    except (ValueError, CheckpointError) as err:
        raise UserError(str(err)) from None
    print(f"wrote {p}: {1 - args.weight:.2f} × {args.a} + {args.weight:.2f} × {args.b}")
    return 0
