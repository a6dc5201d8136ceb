"""The issue's four goals, checked for every model of one or more `flatgroove evaluate` results
against a reference model (the vae) from the same run or another: prints one row per model and
what it misses. Works on validation quick looks and on the test split alike.

    python docs/results/probes/goals.py /tmp/ev_thr/results.json --ref /tmp/ev_vae/results.json
"""
import argparse
import json


def load(paths):
    models = {}
    for p in paths:
        for name, m in json.load(open(p))["models"].items():
            models[name if name not in models else f"{name} ({p})"] = m
    return models


def misses(m, ref):
    r, h = m["reconstruction"], m["heard"]
    rr, rh = ref["reconstruction"], ref["heard"]
    out = []
    if r["hit_f1"] < rr["hit_f1"] - 0.02:
        out.append(f"F1 {r['hit_f1']:.3f}")
    for k in ("vel_mae", "off_mae"):
        if r[k] > 1.10 * rr[k]:
            out.append(f"{k} {r[k] / rr[k]:.2f}x")
    out += [f"{g} {f - ref['builtin_f1'][g]:+.2f}" for g, f in m["builtin_f1"].items()
            if f < ref["builtin_f1"][g] - 0.05]
    for k in ("hit_cv", "hit_bunching", "vel_cv", "vel_bunching"):
        if h[k] > 0.8 * rh[k]:
            out.append(f"{k} {h[k] / rh[k]:.2f}x")
    for k in ("hit_abrupt_share", "grouped_flip_share", "vel_abrupt_share"):
        if h[k] > rh[k]:
            out.append(f"{k} {h[k]:.3f} > {rh[k]:.3f}")
    if h["mid_density_ratio"] < 0.9:
        out.append(f"mid/ends {h['mid_density_ratio']:.2f}")
    if h["mid_nn_hamming"] > h["real_nn_hamming"]:
        out.append(f"mid NN {h['mid_nn_hamming']:.0f} > {h['real_nn_hamming']:.0f}")
    for k in ("flatness_data", "flatness_mixup"):
        if k in m and m[k]["cond_median"] > 10:
            out.append(f"cond {k[9:]} {m[k]['cond_median']:.1f}")
        if k in m and m[k]["flatness_error_median"] > 0.5:
            out.append(f"err {k[9:]} {m[k]['flatness_error_median']:.2f}")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("results", nargs="+")
    ap.add_argument("--ref", help="results.json holding the reference (default: the inputs)")
    ap.add_argument("--ref-name", default="vae")
    a = ap.parse_args()
    models = load(a.results)
    ref = load([a.ref])[a.ref_name] if a.ref else models[a.ref_name]
    for name, m in models.items():
        r, h = m["reconstruction"], m["heard"]
        cond = "/".join(f"{m[k]['cond_median']:.1f}" for k in ("flatness_mixup", "flatness_data") if k in m)
        print(f"{name}: F1 {r['hit_f1']:.3f} vel/off {r['vel_mae']:.3f}/{r['off_mae']:.3f} "
              f"CV {h['hit_cv']:.3f} bunch {h['hit_bunching']:.3f} grouped {h['grouped_flip_share']:.3f} "
              f"velCV {h['vel_cv']:.3f} velbunch {h['vel_bunching']:.3f} mid {h['mid_density_ratio']:.2f} "
              f"NN {h['mid_nn_hamming']:.0f}/{h['real_nn_hamming']:.0f} cond mix/data {cond}")
        print("   misses:", ", ".join(misses(m, ref)) or "nothing")


if __name__ == "__main__":
    main()
