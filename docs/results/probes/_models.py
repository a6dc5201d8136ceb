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
