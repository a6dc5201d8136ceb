"""Hit F1 on groups of windows (validation unless --split): the fills (the drummers' own, with
their toms' F1 per drum), the beats, rock, and the styles that are under 2 % of the training
windows each; whether drawing rare material more often (E46) reaches it, and whether a flat model
loses fills in general or one built-in pattern's last beat (session 16). Hits at threshold 0.4
(--threshold), or by each model's own rule (--own-rule). Models: shipped names or checkpoint paths."""
import argparse

import numpy as np
import torch

from flatgroove.data import load_dataset
from flatgroove.evaluate.study import reconstruction
from flatgroove.model.checkpoint import load_model
from flatgroove.model.decoding import DecodingRule

# the primary styles under 2 % of the training windows each (EXPERIMENTS E46)
RARE = ["reggae", "country", "pop", "middleeastern", "punk", "blues", "highlife", "soul"]
TOMS = ["LT", "MT", "HT"]  # drums.SHORT_NAMES, as evaluate.study names drum_f1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("models", nargs="+", help="shipped names or checkpoint paths")
    ap.add_argument("--threshold", type=float, default=0.4)
    ap.add_argument("--own-rule", action="store_true", help="each model's own decoding rule instead")
    ap.add_argument("--split", default="validation")
    args = ap.parse_args()
    torch.set_num_threads(1)
    ws = load_dataset("../shared/data/groove", split=args.split, progress=False)
    x = ws.tensors()
    style, beat_type = np.asarray(ws.meta["style"]), np.asarray(ws.meta["beat_type"])
    primary = np.array([s.split("/")[0] for s in style])
    groups = {"fills": beat_type == "fill", "beats": beat_type != "fill", "rock": style == "rock",
              "rare styles": np.isin(primary, RARE)}
    print(args.split, "windows", {k: int(v.sum()) for k, v in groups.items()})
    for spec in args.models:
        model = load_model(spec).eval()
        rule = None if args.own_rule else DecodingRule("threshold", threshold=args.threshold)
        r = {k: reconstruction(model, x[torch.from_numpy(v)], 512, 0, rule) for k, v in groups.items()}
        toms = {t: round(r["fills"]["drum_f1"][t], 3) for t in TOMS}
        print(spec, {k: round(v["hit_f1"], 3) for k, v in r.items()}, "fills' toms", toms)


if __name__ == "__main__":
    main()
