"""`flatgroove evaluate` end to end on tiny models and a folder of built-in grooves."""

import json

import pytest
import torch

from flatgroove.cli import main
from flatgroove.errors import UserError
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
    flat3 = _ckpt(tmp_path / "flat3.pt", "flat", 3)  # a second flat model gets its own claim
    out = tmp_path / "eval"
    doc = tmp_path / "README.md"
    doc.write_text("# x\n<!-- flatgroove:results -->\nold figures\n<!-- /flatgroove:results -->\ntail\n")
    rc = main(["evaluate", vae, flat, flat3, "--data", str(data), "--split", "validation", "--out", str(out),
               "--pairs", "20", "--geodesic-pairs", "4", "--geodesic-steps", "5",
               "--flat-points", "8", "--update", str(doc)])
    assert rc == 0
    text = doc.read_text()
    assert "old figures" not in text and text.endswith("tail\n") and "| flat |" in text
    assert "heard hit-change CV" in text and "threshold 0.5" in text
    assert "**flat** against vae" in text and "**flat3** against vae" in text
    res = json.loads((out / "results.json").read_text())
    assert set(res["models"]) == {"vae", "flat", "flat3"}
    r = res["models"]["flat"]
    assert 0 <= r["reconstruction"]["hit_f1"] <= 1
    assert r["interpolation"]["cv"] >= 0 and r["flatness_mixup"]["cond_median"] >= 1
    assert r["geodesic"]["ratio_mean"] >= 0.99  # a geodesic is never longer than the line
    h = r["heard"]  # heard first: decoded Grooves along the lines
    for k in ("hit_cv", "hit_bunching", "hit_abrupt_share", "grouped_flip_share", "vel_cv", "mid_density_ratio"):
        assert k in h and (h[k] is None or h[k] >= 0)  # untrained decoders may not sound at all (None)
    assert "mid_nn_hamming" in h and h["real_nn_hamming"] >= 0  # against the train split
    assert set(r["builtin_f1"]) == set(all_builtins())
    md = (out / "results.md").read_text()
    assert "| vae |" in md and "| flat |" in md and "| flat3 |" in md
    assert "## The claim: flat against vae" in md and "## The claim: flat3 against vae" in md
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


def test_evaluate_update_needs_markers_before_any_work(tmp_path, capsys):
    data = tmp_path / "d"
    write_midi(list(all_builtins().values()), data / "a.mid")
    doc = tmp_path / "doc.md"
    doc.write_text("no markers here\n")
    assert main(["evaluate", _ckpt(tmp_path / "v.pt", "vae", 2), "--data", str(data), "--out",
                 str(tmp_path / "o"), "--split", "train", "--update", str(doc)]) == 2
    assert "needs one <!-- flatgroove:results -->" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_models_are_named_after_their_run_and_kept_epoch(tmp_path):
    """A run's best.pt / last.pt take the run's name; `train --keep-epochs`'s epochN.pt the run's
    and the epoch's, so two epochs of one run read as two rows, each saying which it is."""
    from types import SimpleNamespace

    from flatgroove.evaluate.cli import _name

    m, taken = SimpleNamespace(variant="flat"), {}
    run = tmp_path / "E52_path64"
    run.mkdir()
    assert _name(str(run), m, taken) == "E52_path64"
    assert _name(str(run / "last.pt"), m, taken) == "E52_path64"
    assert _name(str(run / "epoch2.pt"), m, taken) == "E52_path64_epoch2"
    assert _name(str(tmp_path / "my_flat.pt"), m, taken) == "my_flat"
    taken["E52_path64_epoch2"] = 1
    assert _name(str(run / "epoch2.pt"), m, taken) == "E52_path64_epoch2-2"


def test_the_real_windows_reference_is_every_window_of_the_split():
    import numpy as np

    from flatgroove.evaluate.heard import real_nn_reference

    rng = np.random.default_rng(0)
    train = (rng.random((50, 32, 9)) < 0.2)
    far = ~train[:1].repeat(300, 0)  # every cell flipped: far from every training window
    real = np.concatenate([train[rng.integers(0, 50, 300)], far])  # 300 at 0 cells, 300 far
    d_far = float(np.median(np.abs(far[:1].astype(int) - train.astype(int)).sum((1, 2)).min()))
    assert real_nn_reference(real, train) == d_far / 2  # the median of all 600, not of the first 500 (0)


def test_the_interpolation_figure_decodes_with_the_tables_rule(tmp_path, monkeypatch):
    import numpy as np

    from flatgroove.evaluate import report
    from flatgroove.model.checkpoint import load_model
    from flatgroove.model.decoding import parse_rule

    m = load_model(_ckpt(tmp_path / "flat.pt", "flat", 2))
    own = m.decoding
    x = torch.stack([torch.from_numpy(g.to_features()) for g in list(all_builtins().values())[:2]])
    rows_seen = []
    monkeypatch.setattr("flatgroove.plots.interpolation_rolls",
                        lambda rows, target, title="": rows_seen.append(rows) or target)
    results = {"flat": {"_pairs": np.array([[0, 1]])}}
    for rule in (parse_rule("threshold:0.01"), parse_rule("threshold:0.99")):
        report.interpolation_figure({"flat": m}, results, x, tmp_path / "f.png", rule=rule)
    dense, sparse = (sum(g.n_hits for g in r["flat"]) for r in rows_seen)
    assert dense > sparse and m.decoding == own  # each rule heard, the model's own rule kept


@pytest.mark.parametrize("flags,words", [
    (["--pairs", "0"], "--pairs: must be at least 1"),
    (["--flat-points", "0"], "--flat-points: must be at least 1"),
    (["--geodesic-steps", "-1"], "--geodesic-steps: must be at least 1"),
    (["--figures", "-1"], "--figures: must be at least 0"),
    (["--threads", "-1"], "--threads: must be at least 0"),
])
def test_evaluate_numbers_are_usage_errors(tmp_path, capsys, flags, words):
    # these crashed with a traceback after the data had loaded (or, --figures -1, drew 499)
    with pytest.raises(SystemExit) as e:
        main(["evaluate", "vae", "--out", str(tmp_path / "o"), *flags])
    assert e.value.code == 2 and words in capsys.readouterr().err


def test_evaluate_out_that_is_a_file_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    from flatgroove import data

    monkeypatch.setattr(data, "load_dataset", lambda *a, **k: pytest.fail("the data loaded first"))
    (tmp_path / "afile").write_text("x")
    assert main(["evaluate", _ckpt(tmp_path / "v.pt", "vae", 2), "--data", str(tmp_path),
                 "--out", str(tmp_path / "afile")]) == 2
    err = capsys.readouterr().err
    assert "afile" in err and "Traceback" not in err


def test_update_keeps_the_documents_link_line_endings_and_mode(tmp_path):
    import os

    from flatgroove.evaluate.report import END, START, check_block, update_block

    real = tmp_path / "real.md"
    real.write_bytes(f"# Title ≤ κ\r\n{START}\r\nold\r\n{END}\r\ntail\r\n".encode())
    os.chmod(real, 0o640)
    link = tmp_path / "README.md"
    link.symlink_to(real.name)
    update_block(link, "new line one\nnew line two")
    assert link.is_symlink()  # the link stays, its target has the block
    got = real.read_bytes().decode()
    assert "new line one\r\nnew line two\r\n" in got and "old" not in got
    assert got.count("\r\n") == got.count("\n") and got.startswith("# Title ≤ κ\r\n")
    assert (real.stat().st_mode & 0o777) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md", "real.md"]  # no temp left
    latin = tmp_path / "latin.md"
    latin.write_bytes(f"caf\xe9 {START} {END}".encode("latin-1"))
    with pytest.raises(UserError, match="not UTF-8"):
        check_block(latin)


def test_a_plain_folder_has_no_test_split_and_says_which_to_use(tmp_path, capsys):
    data = tmp_path / "d"
    write_midi(list(all_builtins().values()), data / "a.mid")
    assert main(["evaluate", _ckpt(tmp_path / "v.pt", "vae", 2), "--data", str(data),
                 "--out", str(tmp_path / "o")]) == 2
    assert "train and validation splits only (--split validation)" in capsys.readouterr().err
