"""Can a decoding rule that reads a groove *in context* bring a line's midpoint nearer the data?
Session 28's rules (`midpoint_rules.py`) set each cell's threshold on its own; here each cell is
decided with the rest of the groove, by the model's own encoder: decode z, read what is heard,
encode it again and decode that, z' = μ(x(z)), and sound p_γ = (1 − γ)·p(z) + γ·p(z') at the base
threshold θ. The encoder was trained on real grooves, so p(z') is the decoder's answer for the
real groove nearest the heard one: at a flickering midpoint it should keep the cells that belong
together. Two readings of x(z): "hard", the heard hits [h, h·v, h·o] as the encoder saw them in
training; "soft", [p, p·v, p·o] (continuous in z, so the line's changes cannot jump with a flip).
Still a function of z alone (DESIGN's decode(z); the jam would pay one encode and one decode more).

Read on the evaluation's own lines (`study.fixed_pairs`, 600, seed 0), the validation windows and
the rock fill, as `midpoint_rules.py`: F1, heard CV, bunching, changes a line, the midpoint's
distance to the nearest training window and its density against the ends, the rock fill.

    python docs/results/probes/reencode_rule.py --data ../shared/data/groove \\
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


def reencoded(model, p, v, o, th, soft):
    """p(z') for z' the encoding of what z decodes to (hard: the heard hits; soft: p itself)."""
    h = p if soft else (p >= th).astype(np.float32)
    x = np.concatenate([h, h * v, h * o], axis=-1).reshape(-1, p.shape[-2], 3 * N_DRUMS)
    p2, _, _ = model.decode_arrays(model.encode(x, batch=2048))
    return p2.reshape(p.shape)


def main() -> None:
    ap = look_parser(__doc__)
    ap.add_argument("--gammas", default="0,0.25,0.5,0.75,1", help="γ values, the re-encoded share")
    args = ap.parse_args()
    torch.set_num_threads(1)
    xv, _, train, real, pairs = look_inputs(args.data, args.pairs)
    fill = all_builtins()["rock_fill"]
    print("| model | rule | F1 | CV | bunching | changes a line | mid NN | mid density | rock fill |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for name, model, th in named_models(args.models):
        th = float(th)
        z = torch.from_numpy(model.encode(xv))
        logits, vel, off = decoded_lines(model, z[pairs[:, 0]], z[pairs[:, 1]], 17)
        line = torch.sigmoid(logits).numpy(), vel.numpy(), off.numpy()
        rec = model.decode_arrays(z.numpy())
        bi = model.decode_arrays(model.encode([fill]))
        for soft in (False, True):
            again = [reencoded(model, *arrs, th, soft) for arrs in (line, rec, bi)]
            for g in map(float, args.gammas.split(",")):
                if g == 0 and soft:
                    continue
                (pl, vl, _), (pr, _, _), (pb, _, _) = line, rec, bi
                mix = [((1 - g) * a + g * b >= th).astype(np.float32) for a, b in zip((pl, pr, pb), again)]
                ev = H.path_evenness(mix[0], vl)
                mid = H.midpoint_figures(mix[0], train)
                f1 = M.hit_metrics(real, mix[1])["f1"]
                fill_f1 = M.hit_metrics(fill.hits[None], mix[2])["f1"]
                label = "θ alone" if g == 0 else f"{'soft' if soft else 'hard'} γ {g:g}"
                print(f"| {name} | θ {th:g}, {label} | {f1:.3f} | {ev['hit_cv']:.3f} | {ev['hit_bunching']:.3f} | "
                      f"{ev['changes_per_pair']:.1f} | {mid['mid_nn_hamming']:g} | {mid['mid_density_ratio']:.2f} | "
                      f"{fill_f1:.3f} |", flush=True)


if __name__ == "__main__":
    main()
