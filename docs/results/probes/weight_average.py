"""Weight averaging along one fine-tuning trajectory: (1 - a) * A + a * B for checkpoints A and B
of the same architecture (a "model soup"). Kept for the commands EXPERIMENTS.md gives (E57, session
26); the package does it: `flatgroove average A B OUT --weight a` (model.checkpoint.average_checkpoints)."""
import argparse

from flatgroove.model.checkpoint import CheckpointError, average_checkpoints


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("a", help="checkpoint A (weight 1 - a)")
    ap.add_argument("b", help="checkpoint B (weight a)")
    ap.add_argument("out", help="where to write the average")
    ap.add_argument("--weight", type=float, default=0.5, help="B's share a, in [0, 1]")
    args = ap.parse_args()
    try:  # the package checks the weight and the architectures; a bad one is a usage error here
        average_checkpoints(args.a, args.b, args.out, args.weight)
    except (ValueError, CheckpointError) as err:
        ap.error(str(err))
    print(f"{args.out}: {1 - args.weight:.2f} x {args.a} + {args.weight:.2f} x {args.b}")


if __name__ == "__main__":
    main()
