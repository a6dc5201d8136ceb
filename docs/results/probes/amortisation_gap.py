"""The amortisation gap: hit F1 at the encoder's mean vs at a latent point optimised (Adam on the
reconstruction, decoder frozen) for each of 400 validation grooves. An upper bound on what any
encoder could get from this decoder, and an over-fitted one: z* is fitted to each groove."""
import argparse

import numpy as np
import torch

from flatgroove.data.gmd import load_gmd
from flatgroove.drums import N_DRUMS
from flatgroove.evaluate.metrics import hit_metrics
from flatgroove.model.checkpoint import load_model


def f1(model, z, x, thr):
    with torch.no_grad():
        p = torch.sigmoid(model.decoder(z)[0])
    return hit_metrics(x[..., :N_DRUMS], p, thr)["f1"]


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("models", nargs="+")
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    val = load_gmd(split="validation", progress=False)
    x = torch.tensor(val.features[np.random.default_rng(0).choice(len(val), 400, replace=False)])
    for name in a.models:
        m = load_model(name).eval()
        m.requires_grad_(False)
        thr = m.decoding.thresholds
        with torch.no_grad():
            mu = m.encoder(x)[0]
        z = mu.clone().requires_grad_(True)
        # the step scales with the model's latent size (flat16's encodings are ~25x the vae's)
        opt = torch.optim.Adam([z], lr=0.03 * mu.norm(dim=1).median().item() / 4.28)
        for _ in range(a.steps):
            opt.zero_grad()
            m.reconstruction(x, *m.decoder(z))["recon"].mean().backward()
            opt.step()
        with torch.no_grad():
            r0 = m.reconstruction(x, *m.decoder(mu))["recon"].mean().item()
            r1 = m.reconstruction(x, *m.decoder(z))["recon"].mean().item()
        print(f"{name}: F1 at the mean {f1(m, mu, x, thr):.3f} (recon {r0:.1f}), at z* "
              f"{f1(m, z.detach(), x, thr):.3f} (recon {r1:.1f})")


if __name__ == "__main__":
    main()
