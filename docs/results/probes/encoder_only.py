"""Train the encoder alone (decoder and prior frozen, so the decoder's G(z) does not change) on
the reconstruction of sampled z plus the KL at GECO's cap (1/1000), and report hit F1 at the
mean on 400 validation grooves and cond(G) at their encodings every 500 steps."""
import argparse
import time

import numpy as np
import torch

from flatgroove import geometry
from flatgroove.data.gmd import load_gmd
from flatgroove.drums import N_DRUMS
from flatgroove.evaluate.metrics import flatness, hit_metrics
from flatgroove.model.checkpoint import load_model


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("model")
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--minutes", type=float, default=12)
    ap.add_argument("--off-weight", type=float, default=16.0)
    a = ap.parse_args()
    torch.set_num_threads(1)
    train = torch.tensor(load_gmd(split="train", progress=False).features)
    val = load_gmd(split="validation", progress=False)
    xv = torch.tensor(val.features[np.random.default_rng(0).choice(len(val), 400, replace=False)])
    m = load_model(a.model)
    thr = m.decoding.thresholds
    for n, p in m.named_parameters():
        p.requires_grad_(n.startswith("encoder."))
    opt = torch.optim.Adam(m.encoder.parameters(), lr=a.lr)

    def report(step):
        m.eval()
        with torch.no_grad():
            mu = m.encoder(xv)[0]
            f1 = hit_metrics(xv[..., :N_DRUMS], torch.sigmoid(m.decoder(mu)[0]), thr)["f1"]
        gm = geometry.mixup(mu[:100], 50, 0.2, generator=torch.Generator().manual_seed(0))
        print(f"step {step}: F1 {f1:.3f}, cond(G) data "
              f"{flatness(geometry.metric(m.f, mu[:50]))['cond_median']:.1f} mix "
              f"{flatness(geometry.metric(m.f, gm))['cond_median']:.1f}", flush=True)
        m.train()

    report(0)
    g, step, t0 = torch.Generator().manual_seed(0), 0, time.time()
    while time.time() - t0 < a.minutes * 60:
        b = train[torch.randint(len(train), (64,), generator=g)]
        mu, lv = m.encoder(b)
        z = mu + torch.randn_like(mu) * (0.5 * lv).exp()
        r = m.reconstruction(b, *m.decoder(z))
        loss = (r["hit_bce"] + r["vel_se"] + a.off_weight * r["off_se"]).mean() + m.kl(z, mu, lv).mean() / 1000
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.encoder.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 500 == 0:
            report(step)
    report(step)


if __name__ == "__main__":
    main()
