"""Checkpoints: weights, full config, κ, data settings and a format version in one file,
written atomically and read with `weights_only=True` (no pickled code runs on load)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from flatgroove.errors import CheckpointError
from flatgroove.files import atomic_path
from flatgroove.model.config import ModelConfig
from flatgroove.model.decoding import DecodingRule
from flatgroove.model.vae import GrooveVAE

FORMAT = "flatgroove-checkpoint"
FORMAT_VERSION = 1
SHIPPED = {"flat": "flat.pt", "vae": "vae.pt", "flat16": "flat16.pt"}


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write atomically: a crash mid-write leaves the previous file intact."""
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, "version": FORMAT_VERSION, **payload}, tmp)
    return Path(path)


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint")
    if path.is_dir():
        for name in ("best.pt", "last.pt"):
            if (path / name).exists():
                return read_checkpoint(path / name)
        raise CheckpointError(f"{path}: a folder without best.pt or last.pt")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch.load raises many types on bad files
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(e).__name__}: {str(e)[:120]})") from None
    if not isinstance(ck, dict) or ck.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a flatgroove checkpoint")
    if ck.get("version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {ck.get('version')}, this flatgroove reads {FORMAT_VERSION}"
        )
    for key in ("model_config", "state_dict"):
        if key not in ck:
            raise CheckpointError(f"{path}: checkpoint lacks {key!r}")
    sd = ck["state_dict"]
    if not isinstance(sd, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                           for k, v in sd.items()):
        raise CheckpointError(f"{path}: its state_dict is not a table of named tensors")
    if not isinstance(ck["model_config"], dict):
        raise CheckpointError(f"{path}: its model_config is not a table of settings")
    return ck


def model_from_checkpoint(ck: dict[str, Any], path: str = "checkpoint") -> GrooveVAE:
    try:
        cfg = ModelConfig.from_dict(ck["model_config"])
        model = GrooveVAE(cfg)
        state = {k: v.float() if v.is_floating_point() else v for k, v in ck["state_dict"].items()}
        model.load_state_dict(state)
    except (ValueError, RuntimeError, TypeError) as e:
        raise CheckpointError(f"{path}: weights do not fit the model ({str(e)[:200]})") from None
    try:
        model.decoding = DecodingRule.from_dict(ck.get("decoding"))
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"{path}: bad decoding rule ({e})") from None
    model.eval()
    model.checkpoint_info = {k: ck.get(k) for k in ("kappa", "data", "metrics", "train_config", "name")}
    return model


def shipped_path(name: str) -> Path:
    return Path(__file__).resolve().parent.parent / "presets" / SHIPPED[name]


def load_model(path: str | os.PathLike | None = None, device: str = "cpu") -> GrooveVAE:
    """A ready model in eval mode. `path` may be a checkpoint file, a run folder, or the name
    of a shipped model ('flat', 'vae', 'flat16'); None loads the shipped flat model."""
    if path is None:
        path = "flat"
    if str(path) in SHIPPED:
        p = shipped_path(str(path))
        if not p.exists():
            raise CheckpointError(f"the shipped {path!r} model is missing from this install ({p})")
        path = p
    ck = read_checkpoint(path)
    return model_from_checkpoint(ck, str(path)).to(device)


def export_shipped(src: str | os.PathLike, dst: str | os.PathLike, name: str,
                   decoding: DecodingRule | None = None) -> Path:
    """Copy a trained model's weights (half precision, no optimiser) for shipping in the
    package, with the decoding rule every user of the model will hear."""
    ck = read_checkpoint(src)
    sd = {k: v.half() if v.is_floating_point() else v for k, v in ck["state_dict"].items()}
    keep = {k: ck.get(k) for k in ("model_config", "kappa", "data", "metrics", "train_config", "decoding")}
    if decoding is not None:
        keep["decoding"] = decoding.to_dict()
    payload = {**keep, "state_dict": sd, "name": name}
    # what a user will load, loaded before it is written: weights that do not fit the model or
    # a decoding rule that cannot decode are refused here, not at the user's first `sample`
    model_from_checkpoint(payload, str(src))
    return save_checkpoint(dst, payload)


def average_checkpoints(a: str | os.PathLike, b: str | os.PathLike, dst: str | os.PathLike,
                        weight: float = 0.5) -> Path:
    """Write the weight average (1 − weight)·A + weight·B of two checkpoints of one architecture
    (a "model soup"). Fine-tunes of one start sit in one basin, so the average is a model, not
    noise: a cheap way to read the trade between two runs (EXPERIMENTS, session 26's soups).
    The average takes B's config, κ, data settings and decoding rule; it carries no
    optimiser or RNG state (a model to read, evaluate or fine-tune from, not a run to resume)."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"the weight {weight} is not in [0, 1] (B's share of the average)")
    ca, cb = read_checkpoint(a), read_checkpoint(b)
    if ca["model_config"] != cb["model_config"] or ca["state_dict"].keys() != cb["state_dict"].keys():
        raise CheckpointError(f"{a} and {b} are different architectures; only one model's weights average")
    sa, sb = ca["state_dict"], cb["state_dict"]
    if any(sa[k].shape != sb[k].shape for k in sb):
        raise CheckpointError(f"{a} and {b} have tensors of different shapes")
    mixed = {k: torch.lerp(sa[k].float(), sb[k].float(), weight) if sb[k].is_floating_point() else sb[k]
             for k in sb}
    keep = {k: cb[k] for k in ("model_config", "train_config", "kappa", "data", "decoding") if k in cb}
    payload = {**keep, "state_dict": mixed}
    model_from_checkpoint(payload, str(b))  # loads, as export checks, before it is written
    return save_checkpoint(dst, payload)
