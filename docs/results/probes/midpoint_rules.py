"""Can a decoding rule bring a line's midpoint nearer the data without losing the grooves or
the evenness? Two families of fixed rules, read on the evaluation's own lines (`study.fixed_pairs`,
600, seed 0), the validation windows and the built-ins, at a model's base threshold θ:

- **tilt β**: each cell's threshold moved by its training marginal, logit θ_c = logit θ −
  β·(logit f_c − mean): β > 0 sounds the cells drummers often play more readily (a prior over
  typical grooves), β < 0 the rare ones (toms, crash);
- **norm γ**: the threshold rises where the latent code is short, θ(z) = θ + γ·max(0, 1 − ‖z‖/ρ),
  ρ the median norm of training encodings. A line's midpoint between far-apart ends is shorter
  than its ends, so it keeps only its confident hits; the ends (the encodings) are read at θ.

Both are functions of z alone, the same for every path, live play and the page (DESIGN's decode(z)).
Prints F1, the heard CV, bunching, changes per line, the midpoint's distance to the nearest
training window and its density against the ends (goal 3's guard, ≥ 0.9), and the rock fill.

    python docs/results/probes/midpoint_rules.py --data ../shared/data/groove \\
        E55=src/flatgroove/presets/flat.pt@0.35 vae=src/flatgroove/presets/vae.pt@0.4
"""
import numpy as np
import torch
from _models import look_inputs, look_parser, named_models

from flatgroove.drums import N_DRUMS
from flatgroove.evaluate import heard as H
from flatgroove.evaluate import metrics as M
from flatgroove.evaluate.study import decoded_lines
from flatgroove.presets import all_builtins


def logit(p):
    return np.log(p / (1 - p))


def main() -> None:
    ap = look_parser(__doc__)
    ap.add_argument("--tilts", default="0,0.1,0.2,0.35,-0.1,-0.2,-0.35", help="β values")
    ap.add_argument("--norms", default="0.1,0.2,0.3,0.45,0.6", help="γ values")
    args = ap.parse_args()
    torch.set_num_threads(1)
    xv, xt, train, real, pairs = look_inputs(args.data, args.pairs)
    lf = logit(train.reshape(-1, 32, N_DRUMS).mean(0).clip(1e-3, 1 - 1e-3))
    lf -= lf.mean()
    gs = all_builtins()
    fill = list(gs).index("rock_fill")
    print("| model | rule | F1 | CV | bunching | changes a line | mid NN | mid density | rock fill |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for name, model, th in named_models(args.models):
        th = float(th)
        rho = float(np.median(np.linalg.norm(model.encode(xt[:4000]), axis=1)))
        zv = model.encode(xv)
        z = torch.from_numpy(zv)
        logits, vel, _ = decoded_lines(model, z[pairs[:, 0]], z[pairs[:, 1]], 17)
        p_line, v_line = torch.sigmoid(logits).numpy(), vel.numpy()
        z_line = M._line(z[pairs[:, 0]], z[pairs[:, 1]], 17).numpy()  # the points decoded_lines decodes
        r_line = np.linalg.norm(z_line, axis=-1) / rho  # (pairs, 17)
        r_rec = np.linalg.norm(zv, axis=1) / rho
        p_rec, _, _ = model.decode_arrays(zv)
        zb = model.encode(list(gs.values()))
        r_bi = np.linalg.norm(zb, axis=1) / rho
        p_bi, _, _ = model.decode_arrays(zb)
        rules = [(f"tilt β {b:g}", b, 0.0) for b in map(float, args.tilts.split(","))]
        rules += [(f"norm γ {g:g}", 0.0, g) for g in map(float, args.norms.split(","))]
        for label, beta, gamma in rules:
            def thresholds(r, th=th, beta=beta, gamma=gamma):  # (n,) code norms → (n, 32, 9)
                lt = logit(th + gamma * np.clip(1 - r, 0, None))
                return 1 / (1 + np.exp(-(lt[..., None, None] - beta * lf)))
            hits = (p_line >= thresholds(r_line)).astype(np.float32)
            ev = H.path_evenness(hits, v_line)
            mid = H.midpoint_figures(hits, train)
            f1 = M.hit_metrics(real, (p_rec >= thresholds(r_rec)).astype(np.float32))["f1"]
            fill_f1 = M.hit_metrics(gs["rock_fill"].hits, (p_bi[fill] >= thresholds(r_bi[fill])).astype(np.float32))["f1"]
            print(f"| {name} | θ {th:g}, {label} | {f1:.3f} | {ev['hit_cv']:.3f} | {ev['hit_bunching']:.3f} | "
                  f"{ev['changes_per_pair']:.1f} | {mid['mid_nn_hamming']:g} | {mid['mid_density_ratio']:.2f} | {fill_f1:.3f} |",
                  flush=True)


if __name__ == "__main__":
    main()
