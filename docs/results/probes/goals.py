"""The issue's four goals, checked for every model of one or more `flatgroove evaluate` results
against a reference model (the vae) from the same run or another, by the evaluation's own claim
check: prints one row per model and what it misses. Works on validation quick looks and on the
test split alike.

    python docs/results/probes/goals.py /tmp/ev_thr/results.json --ref /tmp/ev_vae/results.json
"""
import argparse
import json
from pathlib import Path

from flatgroove.evaluate.report import claim_check


def load(paths):
    models = {}
    for p in paths:
        for name, m in json.loads(Path(p).read_text())["models"].items():
            models[name if name not in models else f"{name} ({p})"] = m
    return models


def misses(m, ref):
    """The goals `flatgroove evaluate`'s own claim check (evaluate.report.claim_check) finds
    unmet, the output-space (y) figures left out: they are not the issue's goals."""
    lines = claim_check({"model": m, "ref": ref}, "model", "ref")
    return [line[6:] for line in lines if line.startswith("- [ ]") and not line[6:].startswith("(y)")]


def row(name, m, ref, rule):
    """One row of EXPERIMENTS.md's quick-look tables."""
    r, h, fm, fd = m["reconstruction"], m["heard"], m["flatness_mixup"], m["flatness_data"]
    worst = [w for w in sorted((f - ref["builtin_f1"][g], g) for g, f in m["builtin_f1"].items())[:3]
             if w[0] < -0.03]
    share = "/".join(f"{100 * v:.0f}" for v in fd["trace_share"].values())
    return (f"| {name} | {rule} | {r['hit_f1']:.3f} ({r['hit_precision']:.3f} / {r['hit_recall']:.3f}) | "
            f"{r['vel_mae']:.3f} / {r['off_mae']:.3f} | {h['hit_cv']:.3f} | {h['hit_bunching']:.3f} | "
            f"{100 * h['grouped_flip_share']:.1f} % | {h['vel_cv']:.3f} | {h['vel_bunching']:.3f} | "
            f"{h['mid_density_ratio']:.2f} | {h['mid_nn_hamming']:.0f} | "
            + ", ".join(f"{g.replace('_', ' ')} {d:+.2f}".replace("-", "−") for d, g in worst)
            + f" | {fm['cond_median']:.1f} / {fd['cond_median']:.1f} | "
            f"{fm['flatness_error']:.2f} ({fm['flatness_error_median']:.2f}) | {share} % |")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("results", nargs="+")
    ap.add_argument("--ref", help="results.json holding the reference (default: the inputs)")
    ap.add_argument("--ref-name", default="vae")
    ap.add_argument("--rows", metavar="RULE", help="print EXPERIMENTS.md table rows, this rule")
    a = ap.parse_args()
    models = load(a.results)
    ref = load([a.ref])[a.ref_name] if a.ref else models[a.ref_name]
    if a.rows:
        for name, m in models.items():
            print(row(name, m, ref, a.rows))
        return
    for name, m in models.items():
        r, h = m["reconstruction"], m["heard"]
        cond = "/".join(f"{m[k]['cond_median']:.1f}" for k in ("flatness_mixup", "flatness_data") if k in m)
        print(f"{name}: F1 {r['hit_f1']:.3f} vel/off {r['vel_mae']:.3f}/{r['off_mae']:.3f} "
              f"CV {h['hit_cv']:.3f} bunch {h['hit_bunching']:.3f} grouped {h['grouped_flip_share']:.3f} "
              f"velCV {h['vel_cv']:.3f} velbunch {h['vel_bunching']:.3f} mid {h['mid_density_ratio']:.2f} "
              f"NN {h['mid_nn_hamming']:.0f}/{h['real_nn_hamming']:.0f} cond mix/data {cond}")
        print("   misses:", "\n           ".join(misses(m, ref)) or "nothing")


if __name__ == "__main__":
    main()
