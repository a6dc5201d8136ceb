"""Do the lines' midpoints fall in holes of the latent space? For a flat decoder, distance in y
follows distance in z, so a midpoint far (in z) from every training encoding decodes far from
every training groove: goal 3 would then be a property of where the encodings lie, not of the
decoder. For each model, on the evaluation's lines (`study.fixed_pairs`, 600, seed 0):

- the latent distance from each line's midpoint to the nearest training encoding, against the
  same for the validation encodings themselves (real held-out grooves: the reference);
  both divided by the median of the latter, so models of any scale read alike;
- the same for the points at t = 0.25, and for a random point of the aggregate posterior's
  Gaussian fit (mean and covariance of the training encodings);
- the heard midpoint's Hamming distance to its nearest training window, and to the groove its
  nearest training *encoding* decodes to (is the heard distance the latent one?);
- across pairs, the rank correlation of a midpoint's latent and heard distances to the data (also
  with the ends' latent distance regressed out of both ranks: far-apart ends make both larger), and
  the heard distance of the third of midpoints nearest the encodings against the farthest third.

    python docs/results/probes/midpoint_latent.py --data ../shared/data/groove \\
        E55=src/flatgroove/presets/flat.pt@0.35 vae=src/flatgroove/presets/vae.pt@0.4
"""
import numpy as np
import torch
from _models import look_inputs, look_parser, named_models

from flatgroove.evaluate import heard as H
from flatgroove.evaluate import metrics as M


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = (np.argsort(np.argsort(v)) for v in (a, b))
    return float(np.corrcoef(ra, rb)[0, 1])


def partial_spearman(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
    """a's and b's rank correlation with c's ranks regressed out of both (c: a confounder)."""
    ra, rb, rc = (np.argsort(np.argsort(v)).astype(float) for v in (a, b, c))
    res = [r - np.polyval(np.polyfit(rc, r, 1), rc) for r in (ra, rb)]
    return float(np.corrcoef(*res)[0, 1])


def nearest(q: torch.Tensor, bank: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Each query's distance to its nearest bank row, and that row's index."""
    ds, ix = [], []
    for s in range(0, len(q), 1024):
        d = torch.cdist(q[s : s + 1024], bank)
        v, i = d.min(1)
        ds.append(v)
        ix.append(i)
    return torch.cat(ds).numpy(), torch.cat(ix).numpy()


def main() -> None:
    ap = look_parser(__doc__)
    args = ap.parse_args()
    torch.set_num_threads(1)
    xv, xt, train, _, pairs = look_inputs(args.data, args.pairs)
    rng = np.random.default_rng(0)
    print("| model | real (median, latent) | midpoint ÷ real | t = 0.25 ÷ real | Gaussian draw ÷ real | "
          "mid heard NN | mid heard to its nearest encoding's groove | decoded validation heard NN | "
          "ρ(mid latent, mid heard) | the same, the ends' distance held | mid heard NN, nearest / farthest third in z |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for name, model, th in named_models(args.models):
        th = float(th)
        zt = torch.from_numpy(model.encode(xt))
        zv = torch.from_numpy(model.encode(xv))
        real, _ = nearest(zv, zt)
        scale = float(np.median(real))
        line = M._line(zv[pairs[:, 0]], zv[pairs[:, 1]], 17)
        mid, quarter = line[:, 8], line[:, 4]
        d_mid, i_mid = nearest(mid, zt)
        d_q, _ = nearest(quarter, zt)
        mu, cov = zt.mean(0).numpy(), np.cov(zt.numpy().T)
        draw = torch.from_numpy(rng.multivariate_normal(mu, cov, size=len(pairs)).astype(np.float32))
        d_draw, _ = nearest(draw, zt)
        def hits(z, model=model, th=th):  # the heard hits, (n, 288)
            return (model.decode_arrays(z.numpy())[0] >= th).reshape(len(z), -1).astype(np.int8)
        h_mid = hits(mid)
        nn_heard = H.nearest_hamming(h_mid, train)
        to_own = np.abs(h_mid - hits(zt[i_mid])).sum(1)
        lo, hi = np.quantile(d_mid, [1 / 3, 2 / 3])
        ends = np.linalg.norm((zv[pairs[:, 0]] - zv[pairs[:, 1]]).numpy(), axis=1)
        real_heard = np.median(H.nearest_hamming(hits(zv), train))  # decoded held-out grooves
        print(f"| {name} | {scale:.3g} | {np.median(d_mid) / scale:.2f} | {np.median(d_q) / scale:.2f} | "
              f"{np.median(d_draw) / scale:.2f} | {np.median(nn_heard):g} | {np.median(to_own):g} | {real_heard:g} | "
              f"{spearman(d_mid, nn_heard):.2f} | {partial_spearman(d_mid, nn_heard, ends):.2f} | {np.median(nn_heard[d_mid <= lo]):g} / "
              f"{np.median(nn_heard[d_mid >= hi]):g} |",
              flush=True)


if __name__ == "__main__":
    main()
