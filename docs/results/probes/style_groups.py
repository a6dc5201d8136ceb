"""Hit F1 (threshold 0.4) on groups of validation windows: the fills, rock, and the styles that
are under 2 % of the training windows each; whether drawing rare material more often (E46)
reaches it. Models: shipped names or checkpoint paths."""
import sys

import numpy as np
import torch

from flatgroove.data import load_dataset
from flatgroove.evaluate.study import reconstruction
from flatgroove.model.checkpoint import load_model
from flatgroove.model.decoding import DecodingRule

# the primary styles under 2 % of the training windows each (EXPERIMENTS E46)
RARE = ["reggae", "country", "pop", "middleeastern", "punk", "blues", "highlife", "soul"]


def main() -> None:
    torch.set_num_threads(1)
    ws = load_dataset("../shared/data/groove", split="validation", progress=False)
    x = ws.tensors()
    style, beat_type = np.asarray(ws.meta["style"]), np.asarray(ws.meta["beat_type"])
    primary = np.array([s.split("/")[0] for s in style])
    groups = {"fills": beat_type == "fill", "rock": style == "rock", "rare styles": np.isin(primary, RARE)}
    rule = DecodingRule("threshold", threshold=0.4)
    print("windows", {k: int(v.sum()) for k, v in groups.items()})
    for spec in sys.argv[1:]:
        model = load_model(spec).eval()
        f1 = {k: round(reconstruction(model, x[torch.from_numpy(v)], 512, 0, rule)["hit_f1"], 3)
              for k, v in groups.items()}
        print(spec, f1)


if __name__ == "__main__":
    main()
