"""`flatgroove evaluate CKPT [CKPT ...] --data PATH --out DIR`."""

from __future__ import annotations

import argparse
import re
import time
from dataclasses import asdict
from pathlib import Path


def _evaluate(args: argparse.Namespace) -> int:
    import torch

    from flatgroove.data import load_dataset
    from flatgroove.drums import N_DRUMS
    from flatgroove.errors import UserError
    from flatgroove.evaluate import report
    from flatgroove.evaluate.heard import real_nn_reference
    from flatgroove.evaluate.study import StudySettings, run_study
    from flatgroove.files import write_text
    from flatgroove.generate import resolve_model
    from flatgroove.model.decoding import parse_rule

    if args.threads:
        torch.set_num_threads(args.threads)
    # Every checkpoint loads before any work: a wrong third path fails now, not after the
    # first model's study.
    loaded = [(spec, resolve_model(spec)) for spec in args.checkpoints]
    for doc in args.update:  # and every document to update has its markers
        report.check_block(doc)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)  # a file there, or no permission: said before any work
    ws = load_dataset(args.data, split=args.split)
    if len(ws) < 2:
        from flatgroove.data import is_gmd

        hint = ("; a plain MIDI folder has train and validation splits only (--split validation)"
                if not is_gmd(args.data) and args.split == "test" else "")
        raise UserError(f"{args.data}: the {args.split} split has {len(ws)} windows; need at "
                        f"least 2{hint}")
    x = ws.tensors()
    rule = None
    if args.decoding:
        try:
            rule = parse_rule(args.decoding)
        except ValueError as e:
            raise UserError(str(e)) from None
    if args.geodesic_pairs > args.pairs:  # the geodesics run on the study's own pairs
        print(f"note: --geodesic-pairs {args.geodesic_pairs} > --pairs {args.pairs}: "
              f"geodesics on all {args.pairs} pairs")
        args.geodesic_pairs = args.pairs
    s = StudySettings(pairs=args.pairs, geodesic_pairs=args.geodesic_pairs,
                      geodesic_steps=args.geodesic_steps, flat_points=args.flat_points, seed=args.seed,
                      decoding=rule)
    # Realism reference: the training windows, and real windows' own distance to them.
    train_hits = real_nn = None
    if args.split != "train":
        tr = load_dataset(args.data, split="train")
        if len(tr):
            train_hits = (tr.tensors()[..., :N_DRUMS] > 0.5).numpy()
            real_nn = real_nn_reference((x[..., :N_DRUMS] > 0.5).numpy(), train_hits)
    models, results = {}, {}
    for spec, m in loaded:
        name = _name(spec, m, models)
        t = time.perf_counter()
        results[name] = run_study(m, x, s, label=name, train_hits=train_hits, real_nn=real_nn)
        results[name]["seconds"] = time.perf_counter() - t
        models[name] = m
        print(f"{name}: evaluated in {results[name]['seconds']:.0f} s")
    table = report.markdown_table(results)
    md = [f"# Evaluation on the {args.split} split ({len(x)} windows of {args.data})", "", table, "",
          report.rules_line(results), "", "## Built-in grooves: hit F1 of each reconstruction", "",
          report.builtin_table(results), ""]
    # The claim, for every flat model against the (first) vae
    vae = next((n for n in results if results[n]["variant"] == "vae"), None)
    flats = [n for n in results if results[n]["variant"] == "flat"] if vae else []
    claims: list[str] = []
    for flat in flats:
        lines = report.claim_check(results, flat, vae)
        md += [f"## The claim: {flat} against {vae}", ""] + lines + [""]
        claims += ([f"**{flat}** against {vae}:", ""] if len(flats) > 1 else []) + lines + [""]
    claims = claims[:-1]
    figs = report.interpolation_figure(models, results, x, out / "interpolation.png", n_pairs=args.figures,
                                       rule=rule)
    for name, m in models.items():
        if m.latent_dim == 2:
            figs.append(report.magnification_figure(
                m, results[name]["_z"].numpy(), results[name]["_pairs"], out / f"magnification-{name}.png",
                labels=_primary_styles(ws.meta["style"])))
    md += ["## Figures", ""] + [f"![{f.stem}]({f.name})" for f in figs]
    write_text(out / "results.md", "\n".join(md) + "\n")
    report.write_json(results, out / "results.json", {**asdict(s), "split": args.split, "data": str(args.data)})
    print(table)
    if claims:
        print("\n".join(claims))
    block = "\n".join([(f"Measured on the {args.split} split ({len(x)} windows) by `flatgroove evaluate "
                       f"{' '.join(args.checkpoints)}` (seed {args.seed}, {args.pairs} pairs)."), "",
                       table, "", report.rules_line(results), ""] + claims)
    for doc in args.update:
        report.update_block(doc, block)
        print(f"updated the results block in {doc}")
    print(f"wrote {out / 'results.md'}, {out / 'results.json'} and {len(figs)} figures")
    return 0


def _primary_styles(styles):
    """'funk/groove1' -> 'funk'; None when there is nothing to colour by."""
    import numpy as np

    prim = np.array([s.split("/")[0] for s in styles])
    return prim if (prim != "").any() and len(set(prim.tolist())) > 1 else None


def _name(spec: str, m, taken: dict) -> str:
    p = Path(spec)
    if p.is_dir():
        base = p.name
    elif p.suffix == ".pt" and p.stem in ("best", "last"):
        base = p.parent.name
    elif p.suffix == ".pt" and re.fullmatch(r"epoch\d+", p.stem):  # train --keep-epochs: say whose epoch
        base = f"{p.parent.name}_{p.stem}"
    else:
        base = p.stem
    base = base or m.variant
    name, k = base, 2
    while name in taken:
        name, k = f"{base}-{k}", k + 1
    return name


def register(sub) -> None:
    from flatgroove.cli import nonnegative_int, positive_int

    p = sub.add_parser("evaluate", help="measure models: reconstruction, smoothness, flatness, geodesics")
    p.add_argument("checkpoints", nargs="+", help="checkpoint files, run folders, or flat / vae / flat16")
    p.add_argument("--data", default=None, help="Groove MIDI Dataset folder or any MIDI folder")
    p.add_argument("--split", default="test", help="dataset split to measure on (default test)")
    p.add_argument("--out", required=True, help="folder for results.md, results.json and figures")
    p.add_argument("--pairs", type=positive_int, default=500,
                   help="test pairs for the interpolation study (default 500)")
    p.add_argument("--geodesic-pairs", dest="geodesic_pairs", type=nonnegative_int, default=100,
                   help="pairs for the geodesic study (default 100)")
    p.add_argument("--geodesic-steps", dest="geodesic_steps", type=positive_int, default=100,
                   help="optimisation steps per discrete geodesic (default 100)")
    p.add_argument("--flat-points", dest="flat_points", type=positive_int, default=200,
                   help="latent points where flatness (condition number of G) is measured")
    p.add_argument("--figures", type=nonnegative_int, default=1, help="interpolation figures (test pairs)")
    p.add_argument("--seed", type=int, default=0, help="random seed for pairs and points")
    p.add_argument("--threads", type=nonnegative_int, default=0, help="torch CPU threads (0 = default)")
    p.add_argument("--update", action="append", default=[], metavar="FILE.md",
                   help="also rewrite the results block (between <!-- flatgroove:results --> and "
                        "<!-- /flatgroove:results -->) of this Markdown file; repeatable "
                        "(README.md, the model card)")
    p.add_argument("--decoding", default=None,
                   help="decode every model with this rule instead of its own: threshold[:T], "
                        "pattern[:LOW:HIGH[:SEED]] or count")
    p.set_defaults(func=_evaluate)
