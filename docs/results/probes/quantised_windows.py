"""Are the built-ins lost because they are quantised? Hit F1 of each model on validation windows
as played, with the offsets set to 0, and quantised as the built-ins are (offsets 0, velocities
snapped to their four levels), threshold 0.4 (E45)."""
import argparse

import torch

from flatgroove.data import load_dataset
from flatgroove.drums import N_DRUMS
from flatgroove.evaluate.study import reconstruction
from flatgroove.model.checkpoint import load_model
from flatgroove.model.decoding import DecodingRule
from flatgroove.presets.grooves import LEVELS


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("models", nargs="+", help="shipped names or checkpoint paths")
    ap.add_argument("--data", default="../shared/data/groove")
    args = ap.parse_args()
    torch.set_num_threads(2)
    x = load_dataset(args.data, split="validation").tensors()
    hits = x[..., :N_DRUMS]
    untimed = x.clone()
    untimed[..., 2 * N_DRUMS :] = 0
    quantised = untimed.clone()
    levels = torch.tensor(sorted(LEVELS.values()))
    vel = x[..., N_DRUMS : 2 * N_DRUMS]
    quantised[..., N_DRUMS : 2 * N_DRUMS] = levels[(vel[..., None] - levels).abs().argmin(-1)] * hits
    rule = DecodingRule("threshold", threshold=0.4)
    for spec in args.models:
        model = load_model(spec).eval()
        f1 = [reconstruction(model, t, 512, 0, rule)["hit_f1"] for t in (x, untimed, quantised)]
        print(f"{spec}: F1 as played / offsets 0 / quantised {f1[0]:.3f} / {f1[1]:.3f} / {f1[2]:.3f}")


if __name__ == "__main__":
    main()
