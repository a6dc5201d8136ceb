"""Hit F1 on the real fills, not one built-in pattern: every validation window labelled "fill"
(the drummers' own fills, 1.5 % of the split) against the beats, each model at its own rule (or
--threshold). One hit of the rock fill built-in decides a goal item (E55, session 16); this reads
whether a flat model loses fills in general or that pattern's last beat."""
import argparse

import numpy as np
import torch

from flatgroove.data.gmd import load_gmd
from flatgroove.drums import DRUMS, N_DRUMS
from flatgroove.evaluate.metrics import hit_metrics
from flatgroove.model.checkpoint import load_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("models", nargs="+", help="shipped names or checkpoint paths")
    ap.add_argument("--threshold", type=float, default=None, help="default: each model's own rule")
    ap.add_argument("--split", default="validation")
    args = ap.parse_args()
    torch.set_num_threads(1)
    ws = load_gmd(split=args.split, progress=False)
    x = torch.tensor(ws.features)
    fill = np.asarray(ws.meta["beat_type"]) == "fill"
    toms = [DRUMS.index(d) for d in ("low_tom", "mid_tom", "high_tom")]
    truth = (x[..., :N_DRUMS] > 0.5).numpy()
    print(f"{args.split}: {fill.sum()} fill windows, {(~fill).sum()} beats")
    for name in args.models:
        m = load_model(name).eval()
        thr = args.threshold if args.threshold is not None else m.decoding.thresholds
        with torch.no_grad():
            p = torch.cat([torch.sigmoid(m.decoder(m.encoder(x[s : s + 512])[0])[0])
                           for s in range(0, len(x), 512)]).numpy()
        f = {k: hit_metrics(truth[w], p[w], thr)["f1"] for k, w in (("fills", fill), ("beats", ~fill))}
        tf = hit_metrics(truth[fill][..., toms], p[fill][..., toms],
                         thr if np.isscalar(thr) else np.asarray(thr)[..., toms])["f1"]
        print(f"  {name:40s} fills {f['fills']:.3f}  their toms {tf:.3f}  beats {f['beats']:.3f}")


if __name__ == "__main__":
    main()
