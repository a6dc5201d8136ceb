"""The probes' model arguments, NAME=CHECKPOINT[@SUFFIX] (the suffix a decoding rule or a
threshold, as each probe says): each checkpoint loaded in eval mode, in the order given."""
from collections.abc import Iterator

from flatgroove.model.checkpoint import load_model


def named_models(specs: list[str]) -> Iterator[tuple[str, object, str]]:
    for spec in specs:
        name, _, rest = spec.partition("=")
        path, _, suffix = rest.partition("@")
        model = load_model(path)
        model.eval()
        yield name, model, suffix


def look_inputs(data: str, pairs: int):
    """What the probes read the evaluation's lines on: the validation and training windows'
    features, the training windows' hits (n, 288) int8, the validation windows' hits, and the
    look's fixed pairs (`study.fixed_pairs`, seed 0)."""
    import numpy as np

    from flatgroove.data import load_dataset
    from flatgroove.drums import N_DRUMS
    from flatgroove.evaluate.study import fixed_pairs

    xv = load_dataset(data, split="validation", progress=False).tensors()
    xt = load_dataset(data, split="train", progress=False).tensors()
    train = (xt[..., :N_DRUMS] > 0.5).numpy()
    return (xv, xt, train.reshape(len(train), -1).astype(np.int8), (xv[..., :N_DRUMS] > 0.5).numpy(),
            fixed_pairs(len(xv), pairs, 0))


def look_parser(doc: str):
    """The argument parser the look probes share: --data, --pairs and NAME=CHECKPOINT@THETA models;
    a probe adds its own options."""
    import argparse

    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--pairs", type=int, default=600)
    ap.add_argument("models", nargs="+", help="NAME=CHECKPOINT@THETA")
    return ap
