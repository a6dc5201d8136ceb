"""Semi-amortised encoding: hit F1 and cross-entropy after K Adam steps on each groove's latent
point, from the encoder's mean, decoder frozen (E38's probe; GrooveVAE.refine_latent, which
`flatgroove reconstruct --refine K` and the other generation commands use). With --anchor 1 the steps
minimise the reconstruction plus ½‖(z − μ)/σ‖² (the encoder's posterior as a prior, so z stays
where the model was trained); with --anchor 0 the reconstruction alone (an over-fitted bound).
400 validation windows, seed 0; each model's own decoding rule; cond(G) at the first 50 points
before and after for the flat variants; the built-ins' F1 at every setting."""
import argparse

import numpy as np
import torch

from flatgroove.data.gmd import load_gmd
from flatgroove.drums import N_DRUMS
from flatgroove.evaluate.metrics import hit_metrics
from flatgroove.geometry import metric
from flatgroove.groove import stack_features
from flatgroove.model.checkpoint import load_model
from flatgroove.presets import all_builtins


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("models", nargs="+")
    ap.add_argument("--anchor", type=float, nargs="+", default=[1.0, 0.0])
    ap.add_argument("--lr", type=float, nargs="+", default=[0.1, 0.3], help="Adam step, in posterior σ")
    ap.add_argument("--steps", type=int, nargs="+", default=[0, 5, 10, 20, 40, 80])
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    val = load_gmd(split="validation", progress=False)
    x = torch.tensor(val.features[np.random.default_rng(0).choice(len(val), 400, replace=False)])
    names, gs = zip(*all_builtins().items())
    xb = torch.from_numpy(stack_features(list(gs)))
    for name in a.models:
        m = load_model(name).eval()
        with torch.no_grad():
            mu, logvar = m.encoder(x)[:2]
            mub, lvb = m.encoder(xb)[:2]
        sd = (0.5 * logvar).exp()
        print(f"{name}: |μ| median {mu.norm(dim=1).median():.2f}, σ median {sd.median():.3f}")
        for anchor in a.anchor:
            for lr in a.lr:
                for k in a.steps:
                    # Adam from the mean is deterministic: K steps from scratch = the first K of more
                    z = m.refine_latent(x, mu, logvar, k, lr, anchor) if k else mu
                    with torch.no_grad():
                        logits, vel, off = m.decoder(z)
                        bce = m.reconstruction(x, logits, vel, off)["hit_bce"].mean().item()
                        hits = torch.tensor(m.decoding.hits(torch.sigmoid(logits).numpy()), dtype=torch.float32)
                        f1 = hit_metrics(x[..., :N_DRUMS], hits, 0.5)["f1"]
                        dist = ((z - mu) / sd).square().sum(1).sqrt().median().item()
                    extra = ""
                    if m.variant != "vae" and k in (a.steps[0], a.steps[-1]):
                        eig = torch.linalg.eigvalsh(metric(m.f, z.detach()[:50]).double())
                        extra = f", cond(G) median {np.median((eig[:, -1] / eig[:, 0]).numpy()):.1f}"
                    # the built-ins: at anchor 1 as `flatgroove reconstruct --refine K` does; at anchor 0
                    # whether any latent point plays them (the decoder's reach, session 15)
                    zb = m.refine_latent(xb, mub, lvb, k, lr, anchor) if k else mub
                    pb = m.decode_arrays(zb.numpy())[0]
                    bf = {n: hit_metrics(g.hits, h)["f1"] for n, g, h in zip(names, gs, m.decoding.hits(pb))}
                    extra += ", built-ins " + " ".join(f"{n} {v:.2f}" for n, v in bf.items())
                    print(f"  anchor {anchor} step {lr}σ K {k}: F1 {f1:.4f}, hit BCE {bce:.2f}, "
                          f"|z − μ|/σ {dist:.2f}{extra}", flush=True)


if __name__ == "__main__":
    main()
