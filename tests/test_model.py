"""The model family: shapes, the VHP prior's KL, GECO, overfitting, checkpoints."""

import itertools
import math
import re

import numpy as np
import pytest
import torch

from flatgroove.groove import Groove
from flatgroove.model import GrooveVAE, ModelConfig
from flatgroove.model.checkpoint import CheckpointError, load_model, save_checkpoint
from flatgroove.model.prior import VHPPrior, log_normal
from flatgroove.train.config import TrainConfig
from flatgroove.train.constraint import Geco
from flatgroove.train.trainer import Trainer, TrainError

torch.set_num_threads(1)

TINY = {"latent_dim": 4, "enc_hidden": 24, "enc_layers": 1, "dec_hidden": 48, "dec_layers": 1,
        "step_embed": 4, "prior_hidden": 32}


def grooves(n=4, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        hits = (rng.random((32, 9)) < 0.15).astype(np.float32)
        hits[::8, 0] = 1
        vel = rng.uniform(0.3, 1.0, (32, 9))
        off = rng.uniform(-0.3, 0.3, (32, 9))
        out.append(Groove(hits, vel, off, 100.0))
    return out


@pytest.mark.parametrize("variant", ["vae", "vhp", "flat"])
def test_shapes_and_user_api(variant):
    m = GrooveVAE(ModelConfig(variant=variant, **TINY)).eval()
    gs = grooves(3)
    z = m.encode(gs)
    assert z.shape == (3, 4)
    out = m.decode(z, tempo=90)
    assert len(out) == 3 and all(isinstance(g, Groove) and g.tempo == 90 for g in out)
    assert m.f(torch.as_tensor(z)).shape == (3, 864)
    assert len(m.reconstruct(gs)) == 3
    assert m.sample(5, seed=1).shape == (5, 4)
    np.testing.assert_array_equal(m.sample(2, seed=3), m.sample(2, seed=3))
    with pytest.raises(ValueError, match="dimensions"):
        m.decode(np.zeros((1, 5)))


def test_refined_encodings_decode_closer_to_their_grooves_and_leave_the_weights_alone():
    """encode(refine=K): K steps on z from the encoder's mean lower each groove's objective
    (reconstruction + the posterior anchor), each groove independently of its batch; refine=0
    is the mean; no weight moves or keeps a gradient; a negative K is refused."""
    torch.manual_seed(0)
    m = GrooveVAE(ModelConfig(variant="flat", **TINY)).eval()
    gs = grooves(5)
    x = m._features(gs)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    z0, z8 = m.encode(gs), m.encode(gs, refine=8)
    np.testing.assert_array_equal(z0, m.encode(gs, refine=0))
    # each groove on its own: the same code alone as in a batch
    np.testing.assert_allclose(m.encode(gs[2:3], refine=8)[0], z8[2], rtol=1e-4, atol=1e-5)
    with torch.no_grad():
        mu, logvar = m.encoder(x)[:2]
        sd = (0.5 * logvar).exp()

        def objective(z):
            z = torch.as_tensor(z)
            return m.reconstruction(x, *m.decoder(z))["recon"] + 0.5 * ((z - mu) / sd).square().sum(1)

        assert (objective(z8) < objective(z0)).all()
        assert (m.reconstruction(x, *m.decoder(torch.as_tensor(z8)))["recon"]
                < m.reconstruction(x, *m.decoder(torch.as_tensor(z0)))["recon"]).all()
    assert all(torch.equal(v, m.state_dict()[k]) for k, v in before.items())
    assert all(p.grad is None for p in m.parameters())
    # a user's groove comes back closer, and the generation API passes the steps on
    from flatgroove.generate import GenerateError, encode, reconstruct

    np.testing.assert_array_equal(encode(m, gs, refine=8), z8)
    assert len(reconstruct(m, gs[:2], refine=2)) == 2
    with pytest.raises(ValueError, match="refine"):
        m.encode(gs, refine=-1)
    with pytest.raises(GenerateError, match="refine"):
        encode(m, gs, refine=-1)


def test_decoder_depends_on_z_alone():
    """No teacher forcing: decoding is a deterministic function of z."""
    m = GrooveVAE(ModelConfig(**TINY)).eval()
    z = torch.randn(2, 4)
    torch.testing.assert_close(m.f(z), m.f(z))
    assert not torch.allclose(m.f(z[:1]), m.f(z[1:]))


def test_vhp_kl_matches_monte_carlo_reference():
    """With a linear-Gaussian p(z|ζ), p(z) = N(b, AAᵀ + s²I) is known; the importance-sampled
    KL(q(z|x) || p(z)) must match a Monte Carlo estimate with the exact log p(z)."""
    torch.manual_seed(0)
    d = 3
    prior = VHPPrior(d, hidden=16, samples=256)
    A = torch.randn(d, d) * 0.7
    b = torch.randn(d) * 0.3
    s2 = 0.25
    prior.p_z_given = lambda zeta: (zeta @ A.T + b, torch.full_like(zeta, math.log(s2)))
    # Exact posterior q(ζ|z) for the linear-Gaussian model: the IW estimate then has no bias.
    cov_z = A @ A.T + s2 * torch.eye(d)
    post_cov = torch.linalg.inv(torch.eye(d) + A.T @ A / s2)
    post_var = post_cov.diagonal()

    def q_zeta(z):
        mean = (z - b) @ (A / s2) @ post_cov.T
        return mean, post_var.log().expand_as(mean)

    prior.q_zeta_given = q_zeta
    mu, logvar = torch.tensor([[0.2, -0.4, 0.1]]), torch.log(torch.tensor([[0.3, 0.5, 0.2]]))
    z = mu + torch.randn(4000, d) * (0.5 * logvar).exp()
    est = prior.kl(z, mu.expand_as(z), logvar.expand_as(z)).mean()
    exact_logp = torch.distributions.MultivariateNormal(b, cov_z).log_prob(z)
    ref = (log_normal(z, mu, logvar) - exact_logp).mean()
    # The diagonal posterior is an approximation (A is not orthogonal), so the IW bound is
    # slightly loose; 256 samples make the gap small.
    assert est.item() == pytest.approx(ref.item(), abs=0.05)
    assert ref.item() > 0


def test_vhp_log_prob_tightens_with_more_samples():
    torch.manual_seed(1)
    prior = VHPPrior(2, hidden=16)
    z = torch.randn(200, 2)
    lp1 = prior.log_prob(z, samples=1).mean()
    lp64 = prior.log_prob(z, samples=64).mean()
    assert lp64 > lp1  # the IWAE bound rises with K


def test_geco_lambda_rises_while_violated_and_falls_when_satisfied():
    g = Geco(kappa=10.0, nu=0.05, ema=0.5, lam_max=1e9)
    lams = [g.update(20.0) for _ in range(20)]
    assert all(b > a for a, b in itertools.pairwise(lams))
    top = g.lam
    lams = [g.update(2.0) for _ in range(40)]
    assert lams[-1] < top and lams[-1] < lams[10]
    g2 = Geco(kappa=1.0, nu=10.0, lam_max=5.0)
    for _ in range(50):
        g2.update(100.0)
    assert g2.lam == 5.0  # clamped


def _data(n=8, seed=0):
    from flatgroove.groove import stack_features

    return torch.from_numpy(stack_features(grooves(n, seed)))


@pytest.mark.parametrize("variant", ["vae", "vhp", "flat"])
def test_tiny_model_overfits_a_handful_of_grooves(variant, tmp_path):
    x = _data(4)
    # The flatness term competes with reconstruction, so `flat` gets a few more steps.
    tc = TrainConfig(epochs=150 if variant != "flat" else 220, batch_size=4, lr=2e-2, lr_min=7e-3, kappa=5.0, geco_nu=0.01,
                     flat_warmup_epochs=20, flat_ramp_epochs=20, flat_points=4, log_every=1000,
                     checkpoint_every=0, free_bits=0.0, beta=0.01)
    tr = Trainer(ModelConfig(variant=variant, **TINY), tc, x, x, tmp_path, progress=False)
    v = tr.fit()
    assert v["hit_f1"] > 0.97, v
    if variant == "flat":
        assert "flat" in v and math.isfinite(v["flat"])


def test_resume_gives_the_same_state_as_an_uninterrupted_run(tmp_path):
    x, val = _data(24), _data(8, seed=1)
    base = {"epochs": 3, "batch_size": 8, "flat_warmup_epochs": 0.5, "flat_ramp_epochs": 1.0,
            "flat_points": 4, "log_every": 1, "checkpoint_every": 0, "kappa": 40.0}
    mc = ModelConfig(variant="flat", **TINY)
    full = Trainer(mc, TrainConfig(**base), x, val, tmp_path / "full", progress=False)
    full.fit()
    part = Trainer(mc, TrainConfig(**base, max_steps=4), x, val, tmp_path / "part", progress=False)
    part.fit()
    assert part.step == 4 and (tmp_path / "part" / "last.pt").exists()
    resumed = Trainer(mc, TrainConfig(**base), x, val, tmp_path / "part", progress=False)
    resumed.resume()
    assert resumed.step == 4 and resumed.geco.lam == part.geco.lam
    resumed.fit()
    assert resumed.step == full.step == 9
    assert resumed.geco.lam == pytest.approx(full.geco.lam, rel=1e-9)
    for (k, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        torch.testing.assert_close(a, b, msg=k)
    # The log goes on where it stopped: steps 1..9 each once across the two runs.
    import json

    steps = [json.loads(s)["step"] for s in (tmp_path / "part" / "log.jsonl").read_text().splitlines()
             if json.loads(s)["kind"] == "train"]
    assert steps == list(range(1, 10))


def test_weight_decay_shrinks_only_the_encoder_and_decoder_matrices(tmp_path):
    """weight_decay > 0: AdamW decays the encoder's and decoder's weight matrices and nothing
    else (with no gradient, a decayed weight shrinks by lr·wd a step; the rest stay); 0 is Adam;
    a negative value is refused."""
    x = _data(8)
    mc = ModelConfig(variant="flat", **TINY)
    tc = TrainConfig(epochs=1, batch_size=8, checkpoint_every=0, weight_decay=0.5, lr=1e-2)
    tr = Trainer(mc, tc, x, x, tmp_path, progress=False)
    assert isinstance(tr.opt, torch.optim.AdamW)
    decayed = {n for g in tr.opt.param_groups if g["weight_decay"] for p in g["params"]
               for n, q in tr.model.named_parameters() if q is p}
    names = dict(tr.model.named_parameters())
    assert "decoder.rnn.weight_hh_l0" in decayed and "encoder.out.weight" in decayed
    assert not any(n.endswith("bias") or n.startswith("prior.") or n == "decoder.steps" for n in decayed)
    before = {n: p.detach().clone() for n, p in names.items()}
    for p in names.values():  # zero gradients: only the decay moves a weight
        p.grad = torch.zeros_like(p)
    tr.opt.step()
    for n, p in names.items():
        want = before[n] * (1 - 1e-2 * 0.5) if n in decayed else before[n]
        torch.testing.assert_close(p.detach(), want, msg=n)
    assert isinstance(Trainer(mc, TrainConfig(epochs=1, batch_size=8), x, x, tmp_path / "a",
                              progress=False).opt, torch.optim.Adam)
    with pytest.raises(TrainError, match="weight_decay"):
        Trainer(mc, TrainConfig(epochs=1, weight_decay=-1.0), x, x, tmp_path / "b", progress=False)


def test_resume_refuses_another_variant_and_weights_only(tmp_path):
    x = _data(8)
    tc = TrainConfig(epochs=1, batch_size=8, checkpoint_every=0)
    Trainer(ModelConfig(variant="vae", **TINY), tc, x, x, tmp_path, progress=False).fit()
    other = Trainer(ModelConfig(variant="flat", **TINY), tc, x, x, tmp_path, progress=False)
    with pytest.raises(TrainError, match="'vae' run"):
        other.resume()


def test_checkpoint_errors_are_clear_and_nothing_is_overwritten(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_model(bad)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_model(tmp_path / "missing.pt")
    other = tmp_path / "other.pt"
    torch.save({"hello": torch.zeros(1)}, other)
    with pytest.raises(CheckpointError, match="not a flatgroove checkpoint"):
        load_model(other)
    old = tmp_path / "old.pt"
    save_checkpoint(old, {"model_config": {}, "state_dict": {}})
    ck = torch.load(old, weights_only=True)
    ck["version"] = 99
    torch.save(ck, old)
    with pytest.raises(CheckpointError, match="format version 99"):
        load_model(old)
    assert bad.read_bytes() == b"not a checkpoint at all"


def test_checkpoint_round_trip(tmp_path):
    x = _data(8)
    tr = Trainer(ModelConfig(variant="vhp", **TINY), TrainConfig(epochs=1, batch_size=8), x, x,
                 tmp_path, progress=False)
    tr.fit()
    m = load_model(tmp_path)  # a run folder loads its best.pt
    assert m.variant == "vhp" and not m.training
    z = torch.randn(2, 4)
    torch.testing.assert_close(m.f(z), tr.model.eval().f(z))


@pytest.mark.parametrize("proc", [True, False], ids=["umask-from-proc", "umask-set-and-back"])
def test_a_saved_checkpoint_has_the_permissions_of_any_new_file(tmp_path, monkeypatch, proc):
    """Written through a private temporary file, but shared like any file the user writes
    (mkstemp's 0600 left exported models unreadable to a second user of the machine); the
    umask read from /proc where there is one, else by setting it and back."""
    import os

    from flatgroove import files
    from flatgroove.model.checkpoint import save_checkpoint

    if not proc:
        monkeypatch.setattr(files, "_PROC_STATUS", tmp_path / "no-proc")

    old = os.umask(0o022)
    try:
        p = save_checkpoint(tmp_path / "m.pt", {"x": 1})
        assert p.stat().st_mode & 0o777 == 0o644
        os.umask(0o077)
        assert save_checkpoint(tmp_path / "n.pt", {"x": 1}).stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)


def test_export_refuses_weights_that_do_not_fit_and_malformed_checkpoints(tmp_path):
    """An export is loaded before it is written (it wrote models that failed at the user's first
    `sample`); a state_dict that is not a table of tensors is a CheckpointError, not an
    AttributeError."""
    import torch

    from flatgroove.model.checkpoint import (
        CheckpointError,
        export_shipped,
        load_model,
        save_checkpoint,
    )

    src = tmp_path / "small.pt"
    m = load_model("flat")
    cfg = {**m.config.to_dict(), "latent_dim": m.latent_dim + 1}  # weights of another shape
    save_checkpoint(src, {"model_config": cfg, "state_dict": m.state_dict()})
    with pytest.raises(CheckpointError, match="weights do not fit"):
        export_shipped(src, tmp_path / "out.pt", "x")
    assert not (tmp_path / "out.pt").exists()
    save_checkpoint(src, {"model_config": m.config.to_dict(), "state_dict": [torch.zeros(2)]})
    with pytest.raises(CheckpointError, match="not a table of named tensors"):
        load_model(src)


def test_average_is_the_weighted_mean_of_two_models_and_refuses_two_architectures(tmp_path, capsys):
    """`flatgroove average` (the soups of EXPERIMENTS session 26): its ends are A and B, its
    middle the mean of every weight; B's settings and rule; another architecture, a weight outside
    [0, 1] or a missing file is a clear error and writes nothing."""
    from flatgroove.cli import main
    from flatgroove.model.checkpoint import average_checkpoints
    from flatgroove.model.decoding import DecodingRule

    torch.manual_seed(0)
    a, b = GrooveVAE(ModelConfig(variant="flat", **TINY)), GrooveVAE(ModelConfig(variant="flat", **TINY))
    save_checkpoint(tmp_path / "a.pt", {"model_config": a.config.to_dict(), "state_dict": a.state_dict()})
    save_checkpoint(tmp_path / "b.pt", {"model_config": b.config.to_dict(), "state_dict": b.state_dict(),
                                        "kappa": 3.0, "decoding": DecodingRule("threshold", threshold=0.35).to_dict()})
    for w, want in ((0.0, a), (1.0, b)):
        got = load_model(average_checkpoints(tmp_path / "a.pt", tmp_path / "b.pt", tmp_path / f"w{w}.pt", w))
        assert all(torch.equal(got.state_dict()[k], v) for k, v in want.state_dict().items())
    assert main(["average", str(tmp_path / "a.pt"), str(tmp_path / "b.pt"), str(tmp_path / "m.pt"),
                 "--weight", "0.25"]) == 0
    mid = load_model(tmp_path / "m.pt")
    k = next(k for k, v in a.state_dict().items() if v.is_floating_point() and not torch.equal(v, b.state_dict()[k]))
    assert torch.allclose(mid.state_dict()[k], 0.75 * a.state_dict()[k] + 0.25 * b.state_dict()[k], atol=1e-6)
    assert mid.decoding == DecodingRule("threshold", threshold=0.35) and mid.checkpoint_info["kappa"] == 3.0
    other = GrooveVAE(ModelConfig(variant="flat", **{**TINY, "latent_dim": TINY["latent_dim"] + 1}))
    save_checkpoint(tmp_path / "c.pt", {"model_config": other.config.to_dict(), "state_dict": other.state_dict()})
    for args, msg in ((["c.pt"], "different architectures"), (["b.pt", "--weight", "1.5"], "not in \\[0, 1\\]"),
                      (["nothing.pt"], "no such checkpoint")):
        assert main(["average", str(tmp_path / "a.pt"), str(tmp_path / args[0]), str(tmp_path / "x.pt"), *args[1:]]) == 2
        assert re.search(msg, capsys.readouterr().err)
    assert not (tmp_path / "x.pt").exists()
