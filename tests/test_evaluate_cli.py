"""`flatgroove evaluate` end to end on tiny models and a folder of built-in grooves."""

import json

import torch

from flatgroove.cli import main
from flatgroove.midi import write_midi
from flatgroove.model import GrooveVAE, ModelConfig
from flatgroove.model.checkpoint import save_checkpoint
from flatgroove.presets import all_builtins

torch.set_num_threads(1)


def _ckpt(path, variant, d):
    torch.manual_seed(0)
    cfg = ModelConfig(variant=variant, latent_dim=d, enc_hidden=16, enc_layers=1, dec_hidden=24,
                      dec_layers=1, step_embed=4, prior_hidden=16)
    save_checkpoint(path, {"model_config": cfg.to_dict(), "state_dict": GrooveVAE(cfg).state_dict()})
    return str(path)


def test_evaluate_writes_table_json_and_figures(tmp_path):
    data = tmp_path / "grooves"
    gs = list(all_builtins().values())
    for i in range(6):  # several files, each a few grooves long, so both splits have windows
        write_midi(gs[i:] + gs[:i], data / f"set{i}.mid")
    vae, flat = _ckpt(tmp_path / "vae.pt", "vae", 2), _ckpt(tmp_path / "flat.pt", "flat", 2)
    out = tmp_path / "eval"
    rc = main(["evaluate", vae, flat, "--data", str(data), "--split", "train", "--out", str(out),
               "--pairs", "20", "--geodesic-pairs", "4", "--geodesic-steps", "5",
               "--flat-points", "8"])
    assert rc == 0
    res = json.loads((out / "results.json").read_text())
    assert set(res["models"]) == {"vae", "flat"}
    r = res["models"]["flat"]
    assert 0 <= r["reconstruction"]["hit_f1"] <= 1
    assert r["interpolation"]["cv"] >= 0 and r["flatness_mixup"]["cond_median"] >= 1
    assert r["geodesic"]["ratio_mean"] >= 0.99  # a geodesic is never longer than the line
    md = (out / "results.md").read_text()
    assert "| vae |" in md and "| flat |" in md and "The claim" in md
    for f in ("interpolation.png", "magnification-vae.png", "magnification-flat.png"):
        assert (out / f).read_bytes()[:4] == b"\x89PNG"


def test_evaluate_rejects_a_non_checkpoint(tmp_path, capsys):
    bad = tmp_path / "x.pt"
    bad.write_text("hello")
    data = tmp_path / "d"
    write_midi(list(all_builtins().values()), data / "a.mid")
    assert main(["evaluate", str(bad), "--data", str(data), "--out", str(tmp_path / "o"),
                 "--split", "train"]) == 2
    assert "not a readable checkpoint" in capsys.readouterr().err
