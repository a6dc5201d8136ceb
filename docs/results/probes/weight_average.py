"""Weight averaging along one fine-tuning trajectory: (1 - a) * A + a * B for checkpoints A and B
of the same architecture (a "model soup"; fine-tunes of one run usually sit in one basin, so the
average is a model, not noise). Writes a checkpoint that `flatgroove evaluate` reads like any
other, with B's config, κ and decoding rule, so a quick look prices each mix on validation."""
import argparse

import torch

from flatgroove.model.checkpoint import read_checkpoint, save_checkpoint


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("a", help="checkpoint A (weight 1 - a)")
    ap.add_argument("b", help="checkpoint B (weight a)")
    ap.add_argument("out", help="where to write the average")
    ap.add_argument("--weight", type=float, default=0.5, help="B's share a, in [0, 1]")
    args = ap.parse_args()
    if not 0.0 <= args.weight <= 1.0:
        ap.error("--weight must lie in [0, 1]")
    ca, cb = read_checkpoint(args.a), read_checkpoint(args.b)
    if ca["model_config"] != cb["model_config"]:
        ap.error("A and B are different architectures")
    sa, sb = ca["state_dict"], cb["state_dict"]
    mixed = {
        k: torch.lerp(sa[k].float(), sb[k].float(), args.weight) if sb[k].is_floating_point() else sb[k]
        for k in sb
    }
    # no optimiser, progress or RNG state: the average is a model to read, not a run to resume
    keep = {k: cb[k] for k in ("model_config", "train_config", "kappa", "data", "decoding") if k in cb}
    save_checkpoint(args.out, {**keep, "state_dict": mixed})
    print(f"{args.out}: {1 - args.weight:.2f} x {args.a} + {args.weight:.2f} x {args.b}")


if __name__ == "__main__":
    main()
