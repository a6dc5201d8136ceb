"""Heard metrics on decoded paths, the decoding rule, the Stein flatness loss on the exact G,
and the warm start: small patterns written in code."""

import math
from dataclasses import asdict

import numpy as np
import pytest
import torch

from flatgroove import geometry
from flatgroove.evaluate import heard as H
from flatgroove.model import GrooveVAE, ModelConfig
from flatgroove.model.checkpoint import export_shipped, load_model, save_checkpoint
from flatgroove.model.decoding import DecodingRule, parse_rule
from flatgroove.train.config import TrainConfig
from flatgroove.train.trainer import Trainer, TrainError

torch.set_num_threads(1)
TINY = {"latent_dim": 4, "enc_hidden": 16, "enc_layers": 1, "dec_hidden": 24, "dec_layers": 1,
        "step_embed": 4, "prior_hidden": 16}


def path_from_flip_steps(flip_steps, points=17):
    """One path (1, points, 32, 9): cell k turns on at step flip_steps[k] (None: never)."""
    h = np.zeros((1, points, 32, 9), np.float32)
    for k, s in enumerate(flip_steps):
        if s is not None:
            h[0, s:, k % 32, k // 32] = 1
    return h


# -- decoding rule -----------------------------------------------------------------------

def test_threshold_rule_is_the_plain_threshold():
    p = np.random.default_rng(0).random((5, 32, 9))
    np.testing.assert_array_equal(DecodingRule().hits(p), (p >= 0.5).astype(np.float32))
    np.testing.assert_array_equal(DecodingRule("threshold", 0.3).hits(p), (p >= 0.3).astype(np.float32))


def test_pattern_is_stratified_per_drum_deterministic_and_seeded():
    r = DecodingRule("pattern", low=0.2, high=0.8, seed=3)
    t = r.thresholds
    assert t.shape == (32, 9) and t.min() > 0.2 and t.max() < 0.8
    for d in range(9):  # each drum gets every stratum once: no drum biased loud or quiet
        np.testing.assert_allclose(np.sort(t[:, d]), 0.2 + 0.6 * (np.arange(32) + 0.5) / 32, atol=1e-6)
    np.testing.assert_array_equal(t, DecodingRule("pattern", seed=3).thresholds)
    assert not np.array_equal(t, DecodingRule("pattern", seed=4).thresholds)
    # a cell sounds exactly when p passes its own threshold
    p = np.full((32, 9), 0.5)
    np.testing.assert_array_equal(r.hits(p), (t <= 0.5).astype(np.float32))


def test_count_rule_sounds_the_expected_number_of_the_likeliest_cells():
    rng = np.random.default_rng(4)
    p = rng.random((6, 32, 9)) ** 3
    h = parse_rule("count").hits(p)
    np.testing.assert_array_equal(h.sum((1, 2)), np.rint(p.sum((1, 2))))
    for pi, hi in zip(p, h):  # every sounding cell is at least as likely as every silent one
        assert pi[hi == 1].min() >= pi[hi == 0].max()
    # a blend of two grooves keeps a groove's density, where a threshold sounds their union
    a, b = np.zeros((32, 9)), np.zeros((32, 9))
    a[::4, 0], b[2::4, 0] = 0.9, 0.9
    mid = (a + b) / 2
    assert parse_rule("count").hits(mid).sum() == np.rint(mid.sum()) == 7
    assert DecodingRule("threshold", 0.4).hits(mid).sum() == 16
    with pytest.raises(ValueError, match="no fixed thresholds"):
        _ = parse_rule("count").thresholds


def test_rule_parsing_and_errors():
    assert parse_rule("threshold:0.4") == DecodingRule("threshold", threshold=0.4)
    assert parse_rule("pattern:0.3:0.7:2") == DecodingRule("pattern", low=0.3, high=0.7, seed=2)
    assert parse_rule("count").describe().startswith("count")
    for bad in ("nope", "pattern:x", "threshold:1.5", "pattern:0.8:0.2", "count:3", "pattern:0.2:0.8:-1",
                "threshold:0.4:junk", "pattern:0.2:0.8:1:2"):
        with pytest.raises(ValueError):
            parse_rule(bad)
    with pytest.raises(ValueError, match="unknown decoding rule settings"):
        DecodingRule.from_dict({"kind": "pattern", "colour": 1})


def test_rule_travels_in_the_checkpoint_and_decode_uses_it(tmp_path):
    m = GrooveVAE(ModelConfig(variant="vae", **TINY)).eval()
    save_checkpoint(tmp_path / "a.pt", {"model_config": m.config.to_dict(), "state_dict": m.state_dict()})
    rule = DecodingRule("pattern", low=0.3, high=0.7, seed=5)
    export_shipped(tmp_path / "a.pt", tmp_path / "b.pt", "b", decoding=rule)
    plain, patterned = load_model(tmp_path / "a.pt"), load_model(tmp_path / "b.pt")
    assert plain.decoding == DecodingRule() and patterned.decoding == rule
    z = np.random.default_rng(1).normal(size=(6, 4)).astype(np.float32)
    p = patterned.decode_arrays(z)[0]
    got = np.stack([g.hits for g in patterned.decode(z)])
    np.testing.assert_array_equal(got, rule.hits(p))
    # an explicit threshold overrides the rule
    np.testing.assert_array_equal(np.stack([g.hits for g in patterned.decode(z, threshold=0.5)]),
                                  (p >= 0.5).astype(np.float32))


# -- heard metrics -----------------------------------------------------------------------

def test_even_path_has_zero_cv_and_bunches_less_than_chance():
    h = path_from_flip_steps([s for s in range(1, 17) for _ in range(3)])  # 3 flips every step
    v = np.ones_like(h)
    e = H.path_evenness(h, v)
    assert e["hit_cv"] == pytest.approx(0.0)
    assert e["hit_max_over_mean"] == pytest.approx(1.0)
    assert e["hit_bunching"] < 0.05  # chance placement of 48 flips on 16 steps is far from even
    assert e["hit_abrupt_share"] == 0.0
    assert e["changes_per_pair"] == 48


def test_one_jump_is_abrupt_grouped_and_bunched():
    h = path_from_flip_steps([8] * 6 + [3, 12])  # 6 flips of the kick at one step, then 2 more
    e = H.path_evenness(h, np.ones_like(h))
    assert e["hit_abrupt_share"] == 1.0
    assert e["grouped_flip_share"] == pytest.approx(6 / 8)
    assert e["hit_bunching"] > 1.2
    assert e["hit_max_over_mean"] == pytest.approx(6 / (8 / 16))


def test_grouped_flips_need_same_drum_and_direction():
    h = np.zeros((1, 3, 32, 9), np.float32)
    h[0, 1:, :2, :2] = 1  # at step 1: 2 snare + 2 kick onsets: no group of 4 of one drum
    assert H.grouped_flip_share(h) == 0.0
    h[0, 1:, :4, 0] = 1  # 4 kick onsets at one step
    assert H.grouped_flip_share(h) == pytest.approx(4 / 6)


def test_the_variance_split_tells_one_drums_crowd_from_drums_changing_together():
    """drum_variance_split: 4 kick cells flipping at step 3 and 4 snare cells at step 11 is all
    within-drum variance (the drums change at different steps: negative covariance); one kick
    and one snare cell flipping together at each of 4 steps is within-drum variance no larger
    than chance's and a positive covariance across drums; within + covariance is the total."""
    h = np.zeros((2, 17, 32, 9), np.float32)
    h[0, 4:, :4, 0] = 1  # four kick onsets between points 3 and 4
    h[0, 12:, 4:8, 1] = 1  # four snare onsets between points 11 and 12
    for k, step in enumerate((2, 6, 10, 14)):  # one kick and one snare onset together, four times
        h[1, step + 1:, 8 + k, 0] = 1
        h[1, step + 1:, 8 + k, 1] = 1
    crowd, together = (H.drum_variance_split(h[i:i + 1]) for i in range(2))
    assert crowd["hit_var_within_drum"] > 2 * crowd["hit_var_within_drum_random"]
    assert crowd["hit_cov_across_drums"] < 0
    assert together["hit_var_within_drum"] <= together["hit_var_within_drum_random"] * 1.2
    assert together["hit_cov_across_drums"] > 0
    for split, i in ((crowd, 0), (together, 1)):
        steps = np.abs(np.diff(h[i], axis=0)).sum((1, 2))
        assert split["hit_var_within_drum"] + split["hit_cov_across_drums"] == pytest.approx(steps.var())
    assert set(H.drum_variance_split(h)) <= set(H.path_evenness(h, np.ones_like(h)))


def test_velocity_weighted_change_sees_loudness():
    h = path_from_flip_steps([1, 9])
    v = np.ones_like(h)
    v[..., 0, 0] = 0.1  # the first flip is quiet: the loud one dominates the weighted change
    e = H.path_evenness(h, v)
    assert e["hit_cv"] == pytest.approx(np.std([1, 1] + [0] * 14) / (2 / 16))
    assert e["vel_max_over_mean"] > e["hit_max_over_mean"] - 1e-9
    assert e["vel_max_over_mean"] == pytest.approx(1.0 / (1.1 / 16))


def test_midpoint_figures_and_nearest_hamming():
    rng = np.random.default_rng(0)
    train = (rng.random((50, 32, 9)) < 0.2).astype(np.float32)
    q = train[:3].copy()
    q[0, 0, 0] = 1 - q[0, 0, 0]
    d = H.nearest_hamming(q, train)
    assert d[0] <= 1 and d[1] == 0 and d[2] == 0
    assert (H.nearest_hamming(train[:5], train, exclude_self=True) > 0).all()
    # index: the nearest reference itself, by brute force (a chunk smaller than the queries)
    queries = (rng.random((7, 32, 9)) < 0.2).astype(np.float32)
    dist, at = H.nearest_hamming(queries, train, chunk=3, index=True)
    brute = (queries.reshape(7, 1, -1) != train.reshape(1, 50, -1)).sum(-1)
    assert (dist == brute.min(1)).all() and (brute[np.arange(7), at] == dist).all()
    _, at_self = H.nearest_hamming(train[:5], train, exclude_self=True, index=True)
    assert (at_self != np.arange(5)).all()
    h = np.zeros((2, 5, 32, 9), np.float32)
    h[:, 0, :10, 0] = 1  # ends have 10 and 10 hits, the middle 5
    h[:, -1, 10:20, 0] = 1
    h[:, 2, :5, 0] = 1
    m = H.midpoint_figures(h, train_hits=train)
    assert m["mid_density_ratio"] == pytest.approx(0.5)
    assert m["end_distance"] == 20
    assert "mid_nn_hamming" in m


def test_even_midpoint_bound_is_the_nearest_monotone_hybrid():
    """even_midpoint_bound equals a brute force over every hybrid that flips ⌊share·D⌋ or
    ⌈share·D⌉ of the cells where the ends differ, on small random grooves (odd D included); at
    share 0 it is a's own distance; a one-cell step to a window is found at either count."""
    import math
    from itertools import combinations

    rng = np.random.default_rng(3)
    for _ in range(20):
        a, b = (rng.random(10) < 0.4).astype(np.int8), (rng.random(10) < 0.4).astype(np.int8)
        train = (rng.random((30, 10)) < 0.4).astype(np.int8)
        diff = np.flatnonzero(a != b)
        for share in (0.0, 0.3, 0.5):
            best = np.inf
            for h in {math.floor(share * len(diff)), math.ceil(share * len(diff))}:
                for flip in combinations(diff, h):
                    m = a.copy()
                    m[list(flip)] = b[list(flip)]
                    best = min(best, (train != m).sum(1).min())
            assert H.even_midpoint_bound(a, b, train, share) == best
        assert H.even_midpoint_bound(a, b, train, 0.0) == H.nearest_hamming(a[None], train)[0]
    # D = 1: the halfway groove may be b itself, which is a window (round-half-even would say 1)
    assert H.even_midpoint_bound(np.array([0, 0]), np.array([1, 0]), np.array([[1, 0]])) == 0
    # its chance reference: round(share·D) cells of a ⊕ b taken from b, nothing else changed
    rng = np.random.default_rng(0)
    a, b = (rng.random(288) < 0.3).astype(np.int8), (rng.random(288) < 0.3).astype(np.int8)
    diff = a != b
    for share in (0.0, 0.5, 1.0):
        h = H.random_hybrid(a, b, share, rng)
        assert (h[~diff] == a[~diff]).all() and (h[diff] == b[diff]).sum() == round(share * diff.sum())


# -- Stein flatness on the exact metric -----------------------------------------------------

def test_stein_flatness_is_zero_at_c2_identity_and_sees_collapse():
    eye = torch.eye(5, dtype=torch.float64)
    assert geometry.stein_flatness(3.0 * eye[None].repeat(4, 1, 1))["loss"] == pytest.approx(0.0, abs=1e-5)
    collapsed = eye.clone()
    collapsed[0, 0] = 1e-4
    stretched = eye.clone()
    stretched[0, 0] = 5.0
    c2 = torch.tensor(1.0, dtype=torch.float64)
    lc = float(geometry.stein_flatness(collapsed[None], c2)["loss"])
    ls = float(geometry.stein_flatness(stretched[None], c2)["loss"])
    assert lc == pytest.approx((1e-4 - np.log(1e-4) - 1) / 5, rel=1e-2)  # jitter 1e-6
    assert ls == pytest.approx((5 - np.log(5) - 1) / 5, rel=1e-6)
    assert lc > 3 * ls  # unlike the normalised Frobenius loss, a collapse costs more than a stretch
    fc = float(geometry.exact_flatness(collapsed[None], c2)["loss"])
    fs = float(geometry.exact_flatness(stretched[None], c2)["loss"])
    assert fc < fs


def test_basis_finite_differences_give_the_exact_metric():
    m = GrooveVAE(ModelConfig(variant="flat", **TINY)).double().eval()
    z = torch.randn(3, 4, dtype=torch.float64)
    y = m.f(geometry.basis_fd_inputs(z, 1e-4))
    torch.testing.assert_close(geometry.metric_from_fd(y, 3, 4, 1e-4), geometry.metric(m.f, z),
                               rtol=1e-5, atol=1e-8)


def test_stein_training_lowers_the_loss_and_keeps_gradients_finite(tmp_path):
    x = torch.from_numpy(np.random.default_rng(0).random((16, 32, 27)).astype(np.float32))
    x[..., :9] = (x[..., :9] < 0.2).float()
    tc = TrainConfig(epochs=3, batch_size=8, lr=1e-2, flat_loss="stein", flat_exact_points=3,
                     flat_warmup_epochs=0, flat_ramp_epochs=0.01, flat_weight=5.0, kappa=1e4, val_heard_pairs=0)
    tr = Trainer(ModelConfig(variant="flat", **TINY), tc, x, x[:8], tmp_path, progress=False)
    first = tr.validate()
    assert "heard_cv" not in first
    last = tr.fit()
    assert np.isfinite(last["flat"]) and last["flat"] < first["flat"]
    tr.tc.val_heard_pairs = 8
    v = tr.validate()
    assert 0 <= v["heard_cv"] and 0 <= v["heard_pattern_bunching"]


def test_a_run_is_read_and_exported_at_its_own_decoding_rule(tmp_path, capsys, monkeypatch):
    """TrainConfig.decoding: validation's hit F1 and heard figures read at the run's rule, every
    checkpoint carries it, and `export` ships it unless told otherwise."""
    from flatgroove.cli import main
    from flatgroove.train.trainer import hit_counts

    x = torch.from_numpy(np.random.default_rng(2).random((16, 32, 27)).astype(np.float32))
    x[..., :9] = (x[..., :9] < 0.2).float()
    runs = {}
    for spec in ("threshold", "threshold:0.3"):
        tc = TrainConfig(epochs=1, batch_size=8, decoding=spec, val_heard_pairs=4)
        tr = Trainer(ModelConfig(variant="vae", **TINY), tc, x, x[:8], tmp_path / spec, progress=False)
        runs[spec] = (tr, tr.fit())
    (t5, v5), (t3, v3) = runs["threshold"], runs["threshold:0.3"]
    with torch.no_grad():  # the same weights (same seed), read at each rule
        logits = t3.model.decoder(t3.model.encoder(x[:8])[0])[0]
    torch.testing.assert_close(logits, t5.model.decoder(t5.model.encoder(x[:8])[0])[0])
    low = hit_counts(x[:8], logits, DecodingRule("threshold", threshold=0.3))
    assert low[1] > hit_counts(x[:8], logits)[1]  # the lower threshold sounds more cells
    assert t3._val_counts == low and v3["hit_f1"] != v5["hit_f1"]
    from flatgroove.evaluate import study

    seen, real = [], study.heard_paths
    monkeypatch.setattr(study, "heard_paths", lambda m, a, b, n, rule: seen.append(rule) or real(m, a, b, n, rule))
    assert "heard_cv" in t3.heard_figures() and seen == [DecodingRule("threshold", threshold=0.3), DecodingRule("pattern")]
    t3.tc.decoding, seen[:] = "pattern", []  # heard at the pattern itself: its lines read once
    heard = t3.heard_figures()
    assert seen == [DecodingRule("pattern")] and heard["heard_cv"] == heard["heard_pattern_cv"]
    assert heard["heard_bunching"] == heard["heard_pattern_bunching"]
    t3.tc.decoding = "threshold:0.3"
    assert load_model(tmp_path / "threshold:0.3" / "last.pt").decoding == DecodingRule("threshold", threshold=0.3)
    assert main(["export", str(tmp_path / "threshold:0.3"), str(tmp_path / "m.pt")]) == 0
    assert load_model(tmp_path / "m.pt").decoding.threshold == 0.3
    assert "decoding: threshold 0.3" in capsys.readouterr().out
    assert main(["export", str(tmp_path / "threshold:0.3"), str(tmp_path / "n.pt"), "--decoding", "count"]) == 0
    assert load_model(tmp_path / "n.pt").decoding == DecodingRule("count")
    assert "decoding must be a rule in quotes" in TrainConfig(decoding=0.35).problems()[0]  # a TOML number
    with pytest.raises(TrainError, match="decoding: bad decoding rule 'loud'"):
        Trainer(ModelConfig(variant="vae", **TINY), TrainConfig(decoding="loud"), x, x[:8], tmp_path / "c", progress=False)


# -- warm start ----------------------------------------------------------------------------------

def test_warm_start_loads_encoder_and_decoder_and_sets_kappa_from_training_batches(tmp_path):
    x = torch.from_numpy(np.random.default_rng(1).random((24, 32, 27)).astype(np.float32))
    x[..., :9] = (x[..., :9] < 0.2).float()
    vae = GrooveVAE(ModelConfig(variant="vae", **TINY))
    save_checkpoint(tmp_path / "vae.pt", {"model_config": vae.config.to_dict(), "state_dict": vae.state_dict()})
    tc = TrainConfig(init_from=str(tmp_path / "vae.pt"), kappa_train_slack=1.1, batch_size=8)
    tr = Trainer(ModelConfig(variant="flat", **TINY), tc, x, x[:8], tmp_path / "run", progress=False)
    for k, v in vae.state_dict().items():
        torch.testing.assert_close(tr.model.state_dict()[k], v)
    rec = tr.train_reconstruction()
    assert tr.tc.kappa == pytest.approx(1.1 * rec) and tr.geco.kappa == pytest.approx(1.1 * rec)
    with pytest.raises(TrainError, match="sizes differ"):
        Trainer(ModelConfig(variant="flat", **{**TINY, "enc_hidden": TINY["enc_hidden"] + 4}), tc, x, x[:8],
                tmp_path / "r2", progress=False)
    with pytest.raises(TrainError, match="cannot warm-start"):
        Trainer(ModelConfig(variant="flat", **TINY), TrainConfig(init_from=str(tmp_path / "no.pt")), x,
                x[:8], tmp_path / "r3", progress=False)


def test_warm_start_into_a_smaller_latent_keeps_the_informative_dimensions(tmp_path):
    """d 4 → 2: the two dimensions the encoder uses (KL) survive, in order; the projected
    decoder decodes z exactly as the source decodes z with zeros in the dropped dimensions."""
    x = torch.from_numpy(np.random.default_rng(1).random((24, 32, 27)).astype(np.float32))
    x[..., :9] = (x[..., :9] < 0.2).float()
    torch.manual_seed(0)
    vae = GrooveVAE(ModelConfig(variant="vae", **TINY))
    with torch.no_grad():  # dims 1 and 3 informative (mean far from 0), 0 and 2 at the prior
        vae.encoder.out.weight.zero_()
        vae.encoder.out.bias.copy_(torch.tensor([0.0, 3.0, 0.0, -2.0, 0.0, 0.0, 0.0, 0.0]))
    save_checkpoint(tmp_path / "vae.pt", {"model_config": vae.config.to_dict(), "state_dict": vae.state_dict()})
    tr = Trainer(ModelConfig(variant="flat", **{**TINY, "latent_dim": 2}),
                 TrainConfig(init_from=str(tmp_path / "vae.pt"), batch_size=8), x, x[:8],
                 tmp_path / "run", progress=False)
    assert "[1, 3]" in tr.projection_note
    mu, _ = tr.model.encoder(x[:4])
    torch.testing.assert_close(mu, torch.tensor([[3.0, -2.0]]).expand(4, 2))
    z = torch.randn(5, 2)
    full = torch.zeros(5, 4)
    full[:, [1, 3]] = z
    with torch.no_grad():
        for a, b in zip(tr.model.decoder(z), vae.decoder(full)):
            torch.testing.assert_close(a, b)


def test_warm_start_into_a_larger_latent_starts_at_the_source_and_the_prior(tmp_path):
    """d 4 → 6 from a flat model: the old dimensions encode as before and the new ones empty
    (mean 0) at the source's posterior σ; at z with zeros in the new dimensions the decoder is
    the source's, yet it reads them (a flatness term sees them); the grown VHP prior is the
    source's times an independent normal at the source prior's spread on the new dimensions."""
    x = torch.from_numpy(np.random.default_rng(1).random((24, 32, 27)).astype(np.float32))
    x[..., :9] = (x[..., :9] < 0.2).float()
    torch.manual_seed(0)
    src = GrooveVAE(ModelConfig(variant="flat", **TINY)).eval()
    save_checkpoint(tmp_path / "s.pt", {"model_config": src.config.to_dict(), "state_dict": src.state_dict()})
    tr = Trainer(ModelConfig(variant="flat", **{**TINY, "latent_dim": 6}),
                 TrainConfig(init_from=str(tmp_path / "s.pt"), batch_size=8), x, x[:8],
                 tmp_path / "run", progress=False)
    assert "4 → 6" in tr.grow_note
    m = tr.model.eval()
    with torch.no_grad():
        mu, lv = m.encoder(x[:5])
        mu0, lv0 = src.encoder(x[:5])
        torch.testing.assert_close(mu[:, :4], mu0)
        torch.testing.assert_close(lv[:, :4], lv0)
        assert mu[:, 4:].abs().max() == 0
        # the new posterior σ is the source's typical one, the prior's spread its typical spread
        sig = (0.5 * src.encoder(x)[1]).exp().mean(0).median()
        torch.testing.assert_close((0.5 * lv[:, 4:]).exp(), sig.expand(5, 2), rtol=1e-4, atol=1e-5)
        s = src.prior.sample(2048).std(0).median()
        z = torch.randn(5, 6)
        z0 = z.clone()
        z0[:, 4:] = 0
        for a, b in zip(m.decoder(z0), src.decoder(z[:, :4])):
            torch.testing.assert_close(a, b)
        assert (m.decoder(z)[0] - m.decoder(z0)[0]).abs().max() > 1e-4
        noise = torch.randn(8, 5, 6)
        grown = (0.5 * m.prior.p_z[4].bias[10:]).exp()  # logvar rows of the new dimensions
        torch.testing.assert_close(grown, torch.full((2,), min(float(s), math.exp(1.95))), rtol=0.1, atol=0)
        std = -0.5 * (torch.log(2 * math.pi * grown**2) + (z[:, 4:] / grown) ** 2).sum(-1)
        torch.testing.assert_close(m.prior.log_prob(z, noise=noise),
                                   src.prior.log_prob(z[:, :4], noise=noise[..., :4]) + std)


def test_warm_start_into_a_wider_decoder_decodes_as_the_source(tmp_path):
    """dec_hidden 24 → 40: the new units are read by nobody yet, so the output is the
    source's exactly; and they do learn (their weights out get gradients)."""
    x = torch.from_numpy(np.random.default_rng(1).random((24, 32, 27)).astype(np.float32))
    x[..., :9] = (x[..., :9] < 0.2).float()
    torch.manual_seed(0)
    src = GrooveVAE(ModelConfig(variant="flat", **{**TINY, "dec_layers": 2}))
    save_checkpoint(tmp_path / "s.pt", {"model_config": src.config.to_dict(), "state_dict": src.state_dict()})
    tr = Trainer(ModelConfig(variant="flat", **{**TINY, "dec_layers": 2, "dec_hidden": 40}),
                 TrainConfig(init_from=str(tmp_path / "s.pt"), batch_size=8), x, x[:8],
                 tmp_path / "run", progress=False)
    assert "24 → 40" in tr.widen_note
    z = torch.randn(6, TINY["latent_dim"])
    with torch.no_grad():
        for a, b in zip(tr.model.decoder(z), src.decoder(z)):
            torch.testing.assert_close(a, b)
    logits, _, _ = tr.model.decoder(z)
    logits.square().sum().backward()
    assert tr.model.decoder.head.weight.grad[:, 24:].abs().sum() > 0


def test_the_jam_hears_the_models_rule():
    """The live engine's decode path uses the checkpoint's rule, like evaluation and the CLI."""
    from flatgroove.live.worker import DecodeRequest, Source, run_request

    m = GrooveVAE(ModelConfig(variant="vae", **TINY)).eval()
    m.decoding = DecodingRule("pattern", low=0.3, high=0.7, seed=1)
    z = np.random.default_rng(2).normal(size=4).astype(np.float32)
    g, _ = run_request(m, DecodeRequest(0, 0, [Source(groove=None, z=z, weight=1.0)], 120.0, 0.0), {})
    np.testing.assert_array_equal(g.hits, m.decoding.hits(m.decode_arrays(z)[0][0]))


def test_path_evenness_loss_is_zero_for_even_heard_change_and_high_for_a_jump():
    t = torch.linspace(0, 1, 9)
    even = (0.2 + 0.6 * t)[None, :, None].repeat(2, 1, 5)  # every cell crosses [0.2, 0.8] evenly
    assert float(geometry.path_evenness_loss(even)) < 1e-3
    jump = (t >= 0.5).float()[None, :, None].repeat(2, 1, 5)  # all at one step
    assert float(geometry.path_evenness_loss(jump)) > 5
    # movement outside [low, high] is not heard and does not count
    quiet = (0.05 * t)[None, :, None].repeat(1, 1, 5)
    assert float(geometry.path_evenness_loss(quiet)) == 0.0
    z = torch.randn(6, 3)
    pts = geometry.line_points(z, 4, 5).view(4, 5, 3)
    torch.testing.assert_close(pts[:, 2], 0.5 * (pts[:, 0] + pts[:, 4]))


def test_path_density_loss_charges_inner_points_off_the_ends_line():
    t = torch.linspace(0, 1, 9)[None, :, None]
    a, b = torch.zeros(1, 1, 20), torch.zeros(1, 1, 20)
    a[..., :8], b[..., 8:16] = 0.9, 0.9  # two grooves of 7.2 expected hits each
    blend = (1 - t) * a + t * b  # expected count constant along the line: nothing to charge
    assert float(geometry.path_density_loss(blend)) < 1e-10
    union = torch.maximum((1 - t) * a + t * b, 0.9 * torch.sin(torch.pi * t) * (a + b).clamp(max=0.9))
    dense = geometry.path_density_loss(union.requires_grad_())
    assert float(dense.detach()) > 0.05  # both grooves sound at the midpoint
    dense.backward()
    assert union.grad[:, [0, -1]].abs().sum() == 0 and union.grad[:, 4].sum() > 0  # ends held


def test_heard_evenness_counts_threshold_crossings_the_band_term_calls_smooth():
    """Every cell rising through the band at the same pace crosses the threshold at the same
    step: the band term calls that line even, the heard term (what the MIDI holds) calls it
    one jump; cells crossing one step after another are even to both; movement that crosses
    nothing is not heard."""
    t = torch.linspace(0, 1, 9)
    together = (0.2 + 0.6 * t)[None, :, None].repeat(2, 1, 8)
    assert float(geometry.path_evenness_loss(together)) < 1e-3
    assert float(geometry.path_heard_evenness_loss(together, 0.31, 0.01)) > 5  # one step of 8: CV² 7
    staggered = torch.stack([(t >= (k + 0.5) / 8).float() for k in range(8)], -1)[None].repeat(2, 1, 1)
    assert float(geometry.path_heard_evenness_loss(staggered, 0.35, 0.02)) < 1e-3
    quiet = (0.1 + 0.1 * t)[None, :, None].repeat(1, 1, 8)  # 0.1 → 0.2: under the threshold throughout
    assert float(geometry.path_evenness_loss(quiet, 0.15, 0.65)) > 0
    assert float(geometry.path_heard_evenness_loss(quiet, 0.35, 0.02)) < 1e-3
    # differentiable where a cell is near its threshold
    p = together.clone().requires_grad_(True)
    geometry.path_heard_evenness_loss(p, 0.35, 0.05).backward()
    assert p.grad.abs().sum() > 0


def test_heard_pace_charges_flicker_the_cv_term_rewards():
    """Eight cells flipping one a step is even to both heard terms. Add cells that sound at
    every other step (flicker): the line's steps grow more alike, so the squared CV falls, and
    the pace term, which wants each step to carry an even share of the ends' distance, rises."""
    t = torch.linspace(0, 1, 9)
    staggered = torch.stack([(t >= (k + 0.5) / 8).float() for k in range(8)], -1)[None]
    uneven = staggered.clone()
    uneven[0, 1:5, :3] = 0.0  # three cells held back and flipped together at step 5
    uneven[0, 5:, :3] = 1.0
    flicker = torch.cat([uneven, (torch.arange(9) % 2).float()[None, :, None].repeat(1, 1, 6)], -1)
    cv, pace = geometry.path_heard_evenness_loss, geometry.path_heard_pace_loss
    assert float(cv(staggered, 0.35, 0.02)) < 1e-3 and float(pace(staggered, 0.35, 0.02)) < 1e-3
    assert float(cv(flicker, 0.35, 0.02)) < 0.5 * float(cv(uneven, 0.35, 0.02))
    assert float(pace(flicker, 0.35, 0.02)) > 2 * float(pace(uneven, 0.35, 0.02)) > 0.1
    for term in (cv, pace):  # differentiable; with the ends held, at the inner points only
        p = (0.2 + 0.6 * t)[None, :, None].repeat(2, 1, 8).requires_grad_(True)
        term(p, 0.35, 0.05).backward()
        assert p.grad[:, [0, -1]].abs().sum() > 0 and p.grad[:, 1:-1].abs().sum() > 0
        p.grad = None
        term(p, 0.35, 0.05, hold_ends=True).backward()
        assert p.grad[:, [0, -1]].abs().sum() == 0 and p.grad[:, 1:-1].abs().sum() > 0
    assert TrainConfig(heard_pace=True).problems() == [
        "heard_pace needs heard_weight > 0 (it changes what the heard term charges)"]


def test_heard_per_drum_charges_one_drums_cells_crossing_together_not_drums_crossing_apart():
    """heard_per_drum (E133): the within-drum part of the squared CV. Two drums of four cells
    (cells in (step, drum) order) over 8 steps: each drum's four cells crossing together, at
    steps 1 and 5, costs 7× more than the drums taking turns one cell a step (drum 0 at even
    steps, drum 1 at odd ones), and the full squared CV charges it too; the turns line is even
    to the full CV (one flip every step) but not per drum (each drum rests every other step):
    the per-drum term is its own figure. Differentiable, ends held as the CV term's."""
    t = torch.linspace(0, 1, 9)
    def line(steps_of):  # steps_of[drum][cell]: the step each cell flips at; (1, 9, 4 cells · 2 drums)
        cells = [[(torch.arange(9) > steps_of[d][c]).float() for d in range(2)] for c in range(4)]
        return torch.stack([x for pair in cells for x in pair], -1)[None]  # (step, drum) order
    together = line([[1, 1, 1, 1], [5, 5, 5, 5]])
    turns = line([[0, 2, 4, 6], [1, 3, 5, 7]])
    pd = lambda q, **kw: float(geometry.path_heard_evenness_loss(0.05 + 0.6 * q, 0.35, 0.02, drums=2, **kw))
    full = lambda q: float(geometry.path_heard_evenness_loss(0.05 + 0.6 * q, 0.35, 0.02))
    assert pd(together) > 5 * pd(turns) and full(together) > 10 * full(turns)
    assert full(turns) < 1e-3 < pd(turns)
    p = (0.2 + 0.6 * t)[None, :, None].repeat(2, 1, 8).requires_grad_(True)
    geometry.path_heard_evenness_loss(p, 0.35, 0.05, hold_ends=True, drums=2).backward()
    assert p.grad[:, [0, -1]].abs().sum() == 0 and p.grad[:, 1:-1].abs().sum() > 0
    assert TrainConfig(heard_per_drum=True).problems() == [
        "heard_per_drum needs heard_weight > 0 (it changes what the heard term charges)"]
    assert any("not with heard_pace" in m for m in
               TrainConfig(heard_weight=1.0, heard_pace=True, heard_per_drum=True).problems())


@pytest.mark.parametrize("terms", [{"path_weight": 1.0}, {"density_weight": 4.0},
                                   {"heard_weight": 2.0, "heard_tau": 0.1},
                                   {"heard_weight": 2.0, "heard_pace": True, "heard_hold_ends": True},
                                   {"heard_weight": 2.0, "heard_per_drum": True, "heard_hold_ends": True}])
def test_line_terms_train_alongside_stein(tmp_path, terms):
    x = torch.from_numpy(np.random.default_rng(0).random((16, 32, 27)).astype(np.float32))
    x[..., :9] = (x[..., :9] < 0.2).float()
    tc = TrainConfig(epochs=1, batch_size=8, flat_loss="stein", flat_exact_points=2,
                     path_pairs=3, path_points=5, flat_warmup_epochs=0, flat_ramp_epochs=0.01,
                     val_heard_pairs=0, log_every=1, **terms)
    tr = Trainer(ModelConfig(variant="flat", **TINY), tc, x, x[:8], tmp_path, progress=False)
    v = tr.fit()
    key = next(iter(terms)).removesuffix("_weight")
    assert np.isfinite(v[key]) and v[key] >= 0
    for other in ("path", "heard", "density"):  # each term only when weighted
        assert (other in v) == (f"{other}_weight" in terms)


def test_line_lambda_takes_the_line_terms_out_of_gecos_lambda(tmp_path):
    """line_lambda > 0 multiplies the line terms by that fixed number, not by λ (E152): a risen
    λ then weighs the reconstruction against them, where inside λ both rise together."""
    x = torch.from_numpy(np.random.default_rng(0).random((8, 32, 27)).astype(np.float32))
    x[..., :9] = (x[..., :9] < 0.2).float()
    base = {"epochs": 1, "batch_size": 8, "flat_loss": "stein", "flat_exact_points": 2, "path_pairs": 3,
            "path_points": 5, "flat_warmup_epochs": 0, "flat_ramp_epochs": 0, "val_heard_pairs": 0}

    def heard_share(lam, **kw):  # the loss the heard term adds, the batch's draws the same
        losses = []
        for heard in (0.0, 1e6):  # large: the loss is ~1e3 in float32
            tr = Trainer(ModelConfig(variant="flat", **TINY), TrainConfig(**base, heard_weight=heard, **kw),
                         x, x, tmp_path / f"{lam}{heard}{kw}", progress=False)
            tr.model.eval()  # no dropout: the two trainers decode alike
            tr.geco.lam, tr.step = lam, 1  # past the (zero-length) ramp: the terms in full
            torch.manual_seed(0)
            out = tr.objective(x)
            losses.append(float(out["loss"].detach()))
            heard_term = out.get("heard")
        return losses[1] - losses[0], float(heard_term.detach())

    inside5, h = heard_share(5.0)
    inside10, _ = heard_share(10.0)
    assert h > 0 and inside5 == pytest.approx(1e6 * 5.0 * h, rel=1e-2)
    assert inside10 == pytest.approx(2 * inside5, rel=1e-2)
    fixed5, _ = heard_share(5.0, line_lambda=3.0)
    fixed10, _ = heard_share(10.0, line_lambda=3.0)
    assert fixed5 == pytest.approx(1e6 * 3.0 * h, rel=1e-2) and fixed10 == pytest.approx(fixed5, rel=1e-2)
    assert TrainConfig(line_lambda=-1.0).problems() == ["line_lambda must be >= 0, got -1.0"]


@pytest.mark.parametrize("midpoint", [False, True])
def test_realism_term_sees_every_inner_point_or_the_midpoint(tmp_path, monkeypatch, midpoint):
    """realism_weight trains beside Stein on the lines; realism_midpoint hands the term each
    line's ends and midpoint only (E77), and an even path_points (no midpoint) is refused."""
    x = torch.from_numpy(np.random.default_rng(0).random((16, 32, 27)).astype(np.float32))
    x[..., :9] = (x[..., :9] < 0.2).float()
    tc = TrainConfig(epochs=1, batch_size=8, flat_loss="stein", flat_exact_points=2,
                     path_pairs=3, path_points=5, flat_warmup_epochs=0, flat_ramp_epochs=0.01,
                     val_heard_pairs=0, log_every=1, realism_weight=1.0, realism_bank=6,
                     realism_midpoint=midpoint)
    seen, real = [], geometry.path_realism_loss

    def spy(p, bank, tau=1.0, balance=0.0):
        seen.append((tuple(p.shape), p.detach().clone(), len(bank)))
        return real(p, bank, tau, balance)

    monkeypatch.setattr(geometry, "path_realism_loss", spy)
    tr = Trainer(ModelConfig(variant="flat", **TINY), tc, x, x[:8], tmp_path, progress=False)
    v = tr.fit()
    assert np.isfinite(v["realism"]) and v["realism"] >= 0
    assert seen and all(shape == (3, 3 if midpoint else 5, 32 * 9) and n == 6 for shape, _, n in seen)
    with pytest.raises(TrainError, match="odd path_points"):
        Trainer(ModelConfig(variant="flat", **TINY), TrainConfig(flat_loss="stein", realism_weight=1.0,
                realism_midpoint=True, path_points=4), x, x, tmp_path / "bad", progress=False)


def test_mixup_data_share_puts_that_many_points_on_the_encodings():
    z = torch.randn(5, 3)
    m = geometry.mixup(z, 8, data_share=0.25, generator=torch.Generator().manual_seed(0))
    on_data = [(m[k] - z).abs().sum(1).min().item() < 1e-6 for k in range(8)]
    assert on_data[:2] == [True, True] and sum(on_data) == 2  # a mixup lands on a row by chance only
    with pytest.raises(ValueError, match="data_share"):
        geometry.mixup(z, 8, data_share=1.5)


@pytest.mark.parametrize("key, term", [("off_weight", "off_se"), ("vel_weight", "vel_se"),
                                       ("hit_weight", "hit_bce")])
def test_output_weights_charge_the_loss_not_the_constraint(tmp_path, key, term):
    """loss = KL + λ·(recon + (w − 1)·off_se) (and the same for vel_se and hit_bce): the
    figures (and GECO's recon) are unchanged."""
    x = torch.from_numpy(np.random.default_rng(2).random((8, 32, 27)).astype(np.float32))
    x[..., :9] = (x[..., :9] < 0.3).float()
    outs = []
    for w in (1.0, 5.0):
        torch.manual_seed(0)
        tc = TrainConfig(batch_size=8, lambda_init=3.0, val_heard_pairs=0, **{key: w})
        tr = Trainer(ModelConfig(variant="vhp", **TINY), tc, x, x, tmp_path / str(w), progress=False)
        tr.model.eval()
        torch.manual_seed(1)
        outs.append(tr.objective(x))
    a, b = outs
    torch.testing.assert_close(a["recon"], b["recon"])
    assert b[term] > 0
    torch.testing.assert_close(b["loss"] - a["loss"], 3.0 * 4.0 * a[term])
    for bad in ({key: -1.0}, {"flat_data_share": 2.0}, {"path_weight": 1.0}, {"density_weight": 1.0},
                {"heard_weight": 1.0}, {"heard_weight": -1.0, "flat_loss": "stein"},
                {"path_weight": -1.0, "flat_loss": "stein"}, {"realism_weight": -1.0, "flat_loss": "stein"},
                {"heard_tau": 0.0}, {"heard_threshold": 1.0}):
        with pytest.raises(TrainError, match=next(iter(bad))):
            Trainer(ModelConfig(variant="flat", **TINY), TrainConfig(**bad), x, x, tmp_path / "bad", progress=False)


def test_drum_weights_charge_only_their_drums_hits(tmp_path):
    """drum_weights {high_tom: 3} with hits 2×: loss = KL + λ·(recon + (2 − 1)·hit_bce +
    2·(3 − 1)·(the high tom's cross-entropy)); without weights there is no such term; the
    figures and GECO's recon are unchanged; unknown drums and negative weights are refused by name."""
    import torch.nn.functional as F

    from flatgroove.drums import DRUMS

    x = torch.from_numpy(np.random.default_rng(3).random((8, 32, 27)).astype(np.float32))
    x[..., :9] = (x[..., :9] < 0.3).float()
    ht = DRUMS.index("high_tom")
    outs = []
    for weights in ({}, {"high_tom": 3.0}):
        torch.manual_seed(0)
        tc = TrainConfig(batch_size=8, lambda_init=3.0, val_heard_pairs=0, hit_weight=2.0, drum_weights=weights)
        tr = Trainer(ModelConfig(variant="vhp", **TINY), tc, x, x, tmp_path / str(len(weights)), progress=False)
        tr.model.eval()
        torch.manual_seed(1)
        outs.append(tr.objective(x))
    a, b = outs
    torch.testing.assert_close(a["recon"], b["recon"])
    ht_bce = F.binary_cross_entropy_with_logits(a["logits"][..., ht], x[..., ht], reduction="none").sum(1).mean()
    assert "drum_bce" not in a and ht_bce > 0
    torch.testing.assert_close(b["loss"] - a["loss"], 3.0 * 2.0 * 2.0 * ht_bce)
    for bad, match in (({"cowbell": 2.0}, "cowbell"), ({"crash": -1.0}, ">= 0")):
        with pytest.raises(TrainError, match=match):
            Trainer(ModelConfig(variant="flat", **TINY), TrainConfig(drum_weights=bad), x, x, tmp_path / "bad", progress=False)


def test_conformal_flatness_at_the_data_forgives_scale_only(tmp_path):
    """Stein's loss against each point's own c² (its tr G / d) is zero for any multiple of I and
    never above the loss against one c²; flat_data_conformal puts the data points on their own
    scale (the same draws cost less), and is refused without data points."""
    eye = torch.eye(4, dtype=torch.float64)
    G = torch.stack([5.0 * eye, 1.0 * eye, torch.diag(torch.tensor([2.0, 1.0, 1.0, 0.01], dtype=torch.float64))])
    own = (G.diagonal(dim1=-2, dim2=-1).mean(-1)).view(-1, 1, 1)
    per_own = geometry.stein_flatness(G, own)["per_point"]
    per_one = geometry.stein_flatness(G)["per_point"]
    assert per_own[:2].abs().max() < 1e-5 and per_one[:2].min() > 0.1
    assert per_own[2] > 0.5 and bool((per_own <= per_one + 1e-9).all())
    x = torch.from_numpy(np.random.default_rng(5).random((8, 32, 27)).astype(np.float32))
    x[..., :9] = (x[..., :9] < 0.3).float()
    flat, weights = [], None
    for conformal in (False, True):
        tc = TrainConfig(batch_size=8, val_heard_pairs=0, flat_loss="stein", flat_exact_points=4,
                         flat_data_share=1.0, flat_data_conformal=conformal, flat_ramp_epochs=0.0)
        tr = Trainer(ModelConfig(variant="flat", **TINY), tc, x, x, tmp_path / str(conformal), progress=False)
        weights = weights or tr.model.state_dict()  # one model, measured both ways
        tr.model.load_state_dict(weights)
        tr.model.eval()
        torch.manual_seed(2)
        flat.append(tr.objective(x)["flat"].item())
    assert flat[1] < flat[0]
    with pytest.raises(TrainError, match="flat_data_conformal"):
        Trainer(ModelConfig(variant="flat", **TINY), TrainConfig(flat_loss="stein", flat_data_conformal=True), x, x,
                tmp_path / "bad", progress=False)


def _rows_train_step_hands_on(tr, rows):
    """What one train_step on `rows` hands the objective: (drum_rows, spared, vel_rows)."""
    seen = []
    objective = tr.objective

    def spy(xb, part=None, drum_rows=None, spared=None, vel_rows=None):
        seen.append((drum_rows, spared, vel_rows))
        return objective(xb, part, drum_rows, spared, vel_rows)

    tr.objective = spy
    tr.model.train()
    tr.train_step(rows)
    return seen[0]


def _beats_and_fills(seed: int):
    """Eight random windows, every fourth a fill: (x, meta with their beat types)."""
    x = torch.from_numpy(np.random.default_rng(seed).random((8, 32, 27)).astype(np.float32))
    x[..., :9] = (x[..., :9] < 0.3).float()
    return x, {"style": ["rock"] * 8, "beat_type": ["fill" if i % 4 == 0 else "beat" for i in range(8)]}


def _every_row_and_these(tr, objective_with, rows):
    """The objective on one batch in eval mode, the same draws, charging a row weight on every
    row (None) and on `rows` only: (every, these)."""
    tr.model.eval()
    outs = []
    for r in (None, rows):
        torch.manual_seed(1)
        outs.append(objective_with(r))
    return outs


def test_drum_weights_on_fills_only_charge_only_the_fill_windows(tmp_path):
    """drum_weights_fills_only: the drums' further share is charged on the windows whose beat
    type is "fill" and on no other; train_step hands the objective its rows' labels; without
    drum weights or without beat types it is refused by name."""
    import torch.nn.functional as F

    from flatgroove.drums import DRUMS

    x, meta = _beats_and_fills(4)
    tc = TrainConfig(batch_size=8, lambda_init=3.0, val_heard_pairs=0, drum_weights={"high_tom": 3.0},
                     drum_weights_fills_only=True)
    tr = Trainer(ModelConfig(variant="vhp", **TINY), tc, x, x, tmp_path / "fills", progress=False, train_meta=meta)
    fills = torch.tensor([1.0, 0, 0, 0, 1, 0, 0, 0])
    torch.testing.assert_close(tr._drum_rows, fills)
    every, only = _every_row_and_these(tr, lambda rows: tr.objective(x, None, rows), fills)
    ht = DRUMS.index("high_tom")
    row_bce = F.binary_cross_entropy_with_logits(every["logits"][..., ht], x[..., ht], reduction="none").sum(1)
    # λ · (3 − 1) · the high tom's cross-entropy of the beats (non-fill rows), averaged over the batch
    torch.testing.assert_close(every["loss"] - only["loss"], 3.0 * 2.0 * (row_bce * (1 - fills)).mean())
    drum_rows, _, _ = _rows_train_step_hands_on(tr, torch.tensor([0, 1, 4, 5]))
    torch.testing.assert_close(drum_rows, torch.tensor([1.0, 0, 1, 0]))
    for kw, meta_, match in (({}, meta, "needs drum_weights"), ({"drum_weights": {"crash": 2.0}}, None, "beat type")):
        with pytest.raises(TrainError, match=match):
            Trainer(ModelConfig(variant="flat", **TINY), TrainConfig(drum_weights_fills_only=True, **kw), x, x,
                    tmp_path / "bad", progress=False, train_meta=meta_)


def test_velocity_weight_off_fills_spares_only_the_fill_windows(tmp_path):
    """vel_weight_off_fills (E131): the velocities' extra weight (vel_weight − 1) is charged on the
    windows that are not fills and on no fill; train_step hands the objective its rows' share;
    without a velocity weight or without beat types it is refused by name."""
    x, meta = _beats_and_fills(5)
    tc = TrainConfig(batch_size=8, lambda_init=3.0, val_heard_pairs=0, vel_weight=4.0, vel_weight_off_fills=True)
    tr = Trainer(ModelConfig(variant="vhp", **TINY), tc, x, x, tmp_path / "vel", progress=False, train_meta=meta)
    beats = torch.tensor([0.0, 1, 1, 1, 0, 1, 1, 1])
    torch.testing.assert_close(tr._vel_rows, beats)
    every, off_fills = _every_row_and_these(tr, lambda rows: tr.objective(x, None, None, None, rows), beats)
    torch.testing.assert_close(every["vel_se"], off_fills["vel_se"])  # the same model, the same batch
    fills_se = every["vel_se"] - off_fills["vel_se_w"]  # the fills' velocity error, over the batch
    assert fills_se.item() > 0
    # λ · (4 − 1) · that error: what the fills no longer pay
    torch.testing.assert_close(every["loss"] - off_fills["loss"], 3.0 * 3.0 * fills_se)
    _, _, seen = _rows_train_step_hands_on(tr, torch.tensor([0, 1, 4, 5]))
    torch.testing.assert_close(seen, torch.tensor([0.0, 1, 0, 1]))
    for kw, meta_, match in (({}, meta, "needs vel_weight"), ({"vel_weight": 2.0}, None, "beat type")):
        with pytest.raises(TrainError, match=match):
            Trainer(ModelConfig(variant="flat", **TINY), TrainConfig(vel_weight_off_fills=True, **kw), x, x,
                    tmp_path / "bad", progress=False, train_meta=meta_)


def test_spared_fills_give_no_flatness_point(tmp_path, monkeypatch):
    """flat_spare_fills: every flatness point (mixup or data point) is drawn from the encodings of
    the batch's non-fill windows, and train_step hands the objective the whole batch's fill mask;
    without it every row is drawn from; without beat types, or without the exact-G loss, it is
    refused by name."""
    from flatgroove import geometry

    x = torch.from_numpy(np.random.default_rng(6).random((8, 32, 27)).astype(np.float32))
    x[..., :9] = (x[..., :9] < 0.3).float()
    meta = {"style": ["rock"] * 8, "beat_type": ["fill" if i % 4 == 0 else "beat" for i in range(8)]}
    kw = {"batch_size": 8, "val_heard_pairs": 0, "flat_loss": "stein", "flat_exact_points": 4,
          "flat_data_share": 0.5}
    drawn = []
    mixup = geometry.mixup

    def spy(z, n, eta=0.2, generator=None, data_share=0.0):
        drawn.append(z.detach().clone())
        return mixup(z, n, eta, generator, data_share)

    monkeypatch.setattr(geometry, "mixup", spy)
    for spare in (False, True):
        tc = TrainConfig(flat_spare_fills=spare, **kw)
        tr = Trainer(ModelConfig(variant="flat", **TINY), tc, x, x, tmp_path / f"s{spare}", progress=False,
                     train_meta=meta)
        tr.model.eval()
        mu = tr.model.encoder(x)[0].detach()
        drawn.clear()
        fills = torch.tensor([i % 4 == 0 for i in range(8)])
        tr.objective(x, None, None, fills if spare else None)
        torch.testing.assert_close(drawn[0], mu[~fills] if spare else mu)
    torch.testing.assert_close(tr._fill_mask, fills)
    _, spared, _ = _rows_train_step_hands_on(tr, torch.tensor([0, 1, 4, 5]))
    torch.testing.assert_close(spared, torch.tensor([True, False, True, False]))
    tr.model.eval()  # (the flatness term runs at evaluation whatever its warm-up)
    with pytest.raises(TrainError, match="spared marks 4 rows, the batch has 8"):
        tr.objective(x, None, None, fills[:4])
    for extra, meta_, match in (({}, None, "beat type"), ({"flat_loss": "frobenius"}, meta, "stein")):
        with pytest.raises(TrainError, match=match):
            Trainer(ModelConfig(variant="flat", **TINY), TrainConfig(**{**kw, "flat_spare_fills": True, **extra}),
                    x, x, tmp_path / "bad", progress=False, train_meta=meta_)


def test_focal_share_charges_the_wrong_cells_more(tmp_path):
    """focal_weight w, γ: loss = … + λ·w·Σ (1 − p_t)^γ·BCE; at γ = 0 that is w more of the hits'
    cross-entropy (hit_weight 1 + w); a confidently wrong cell costs more of it than a right one;
    GECO's recon is unchanged; negative settings are refused by name."""
    import torch.nn.functional as F

    x = torch.from_numpy(np.random.default_rng(5).random((8, 32, 27)).astype(np.float32))
    x[..., :9] = (x[..., :9] < 0.3).float()
    outs = {}
    for key, kw in (("plain", {}), ("focal", {"focal_weight": 3.0}), ("g0", {"focal_weight": 3.0, "focal_gamma": 0.0}),
                    ("hit4", {"hit_weight": 4.0})):
        torch.manual_seed(0)
        tc = TrainConfig(batch_size=8, lambda_init=2.0, val_heard_pairs=0, **kw)
        tr = Trainer(ModelConfig(variant="vhp", **TINY), tc, x, x, tmp_path / key, progress=False)
        tr.model.eval()
        torch.manual_seed(1)
        outs[key] = tr.objective(x)
    a, f = outs["plain"], outs["focal"]
    torch.testing.assert_close(a["recon"], f["recon"])
    bce = F.binary_cross_entropy_with_logits(a["logits"], x[..., :9], reduction="none")
    focal = ((1 - torch.exp(-bce)) ** 2 * bce).sum((1, 2)).mean()
    assert "focal_bce" not in a and 0 < focal < bce.sum((1, 2)).mean()
    torch.testing.assert_close(f["loss"] - a["loss"], 2.0 * 3.0 * focal)
    torch.testing.assert_close(outs["g0"]["loss"], outs["hit4"]["loss"])
    # per cell: the share of the cross-entropy kept grows with how wrong the cell is
    kept = (1 - torch.exp(-bce)) ** 2
    hi, lo = bce.quantile(0.9), bce.quantile(0.1)
    assert kept[bce >= hi].min() > kept[bce <= lo].max()
    for bad in ({"focal_weight": -1.0}, {"focal_gamma": -0.5}):
        with pytest.raises(TrainError, match="focal"):
            Trainer(ModelConfig(variant="flat", **TINY), TrainConfig(**bad), x, x, tmp_path / "bad", progress=False)


def test_balanced_draws_favour_rare_styles_and_fills(tmp_path):
    """style_balance 1 draws every style label equally often, fill_weight 4 draws a fill 4× as
    often as a beat of its style; the plain shuffle stays a permutation; without labels, or with
    bad values, the trainer refuses by name."""
    from flatgroove.train.trainer import draw_probabilities

    meta = {"style": np.array(["rock"] * 90 + ["blues/shuffle"] * 10),
            "beat_type": np.array(["beat"] * 80 + ["fill"] * 10 + ["beat"] * 10)}
    p = draw_probabilities(TrainConfig(style_balance=1.0), meta, 100).numpy()
    assert p[:90].sum() == pytest.approx(0.5) and p[90:].sum() == pytest.approx(0.5)
    p = draw_probabilities(TrainConfig(fill_weight=4.0), meta, 100).numpy()
    assert p[85] == pytest.approx(4 * p[0]) and p[95] == pytest.approx(p[0])
    assert draw_probabilities(TrainConfig(), None, 100) is None
    x = torch.from_numpy(np.random.default_rng(4).random((100, 32, 27)).astype(np.float32))
    tc = TrainConfig(style_balance=1.0, batch_size=8, val_heard_pairs=0)
    tr = Trainer(ModelConfig(variant="vae", **TINY), tc, x, x[:8], tmp_path / "a", progress=False, train_meta=meta)
    draws = tr.order(0)
    assert len(draws) == 100 and torch.equal(draws, tr.order(0))  # the same per epoch (resume)
    assert 30 <= int((draws >= 90).sum()) <= 70  # the 10 % style drawn about half the time
    plain = Trainer(ModelConfig(variant="vae", **TINY), TrainConfig(batch_size=8, val_heard_pairs=0),
                    x, x[:8], tmp_path / "b", progress=False).order(0)
    assert torch.equal(plain.sort().values, torch.arange(100))
    for bad, match in (({"style_balance": 0.5}, "style and beat type"), ({"fill_weight": 0.0}, "fill_weight")):
        with pytest.raises(TrainError, match=match):
            Trainer(ModelConfig(variant="vae", **TINY), TrainConfig(**bad), x, x[:8], tmp_path / "c", progress=False)


def test_export_command_packs_a_run_with_its_rule(tmp_path, capsys):
    from flatgroove.cli import main

    m = GrooveVAE(ModelConfig(variant="flat", **TINY))
    save_checkpoint(tmp_path / "run" / "best.pt", {"model_config": m.config.to_dict(), "state_dict": m.state_dict()})
    assert main(["export", str(tmp_path / "run"), str(tmp_path / "m.pt"), "--decoding", "pattern:0.15:0.65"]) == 0
    assert load_model(tmp_path / "m.pt").decoding == DecodingRule("pattern", low=0.15, high=0.65)
    assert main(["export", str(tmp_path / "run"), str(tmp_path / "n.pt"), "--decoding", "loud"]) == 2
    assert "bad decoding rule" in capsys.readouterr().err


def test_the_shipped_recipe_configs_load():
    """The README's recipe: configs/flat-stage*.toml are valid and say what TRAINING.md says."""
    from pathlib import Path

    from flatgroove.train.config import load_config

    root = Path(__file__).resolve().parents[1] / "configs"
    stages = [load_config(root / f"flat-stage{i}.toml") for i in (1, 2, 3)]
    assert all(mc.variant == "flat" and tc.flat_loss == "stein" and tc.lambda_min == 5 for mc, tc in stages)
    assert [tc.flat_weight for _, tc in stages] == [4.0, 16.0, 16.0]
    assert [tc.path_weight for _, tc in stages] == [0.0, 4.0, 16.0]
    mc, tc = load_config(root / "flat16-anneal.toml")  # flat16's CPU stage
    assert (mc.latent_dim, tc.flat_weight, tc.flat_exact_points, tc.lambda_init) == (16, 48.0, 16, 1000.0)


def _named(name: str, tag: str, default, cast=float):
    """The number a config's file name gives after `_TAG` (e.g. `_off4` → 4.0), else default."""
    import re

    m = re.search(rf"_{tag}(\d+(?:\.\d+)?)", name)
    return cast(m.group(1)) if m else default


def test_the_cpu_experiment_configs_load():
    """EXPERIMENTS.md's CPU configs (configs/experiments, E13 on): valid flat continuations
    whose names say their output weights, data share, path and density weights, encoder dropout,
    λ floor and weight decay."""
    import re
    from pathlib import Path

    from flatgroove.train.config import load_config

    files = sorted((Path(__file__).resolve().parents[1] / "configs" / "experiments").glob("*.toml"))
    assert len(files) >= 4
    for f in files:
        mc, tc = load_config(f)
        # a wider decoder (E19) is trained from the vae, so its flatness ramps in; the rest continue
        wide = re.search(r"_wide(\d+)", f.name)
        hidden = wide or re.search(r"_h(\d+)", f.name)
        assert mc.dec_hidden == (int(hidden.group(1)) if hidden else 192), f.name
        assert tc.weight_decay == _named(f.name, "wd", 0.0), f.name
        if "_vae_" in f.name:  # a baseline control (E29): the vae's own loss, nothing flat
            assert mc.variant == "vae" and (tc.beta, tc.free_bits) == (0.2, 16.0), f.name
            continue
        assert (mc.variant, tc.flat_loss, tc.flat_ramp_epochs) == ("flat", "stein", 1.0 if wide else 0.0), f.name
        assert tc.off_weight == _named(f.name, "off", 1.0), f.name
        assert tc.flat_data_share == _named(f.name, "data", 0.0, lambda v: int(v) / 100), f.name
        assert tc.path_weight == _named(f.name, "path", 16.0), f.name
        assert tc.vel_weight == _named(f.name, "vel", 1.0), f.name
        assert tc.density_weight == _named(f.name, "dens", 0.0), f.name
        assert tc.hit_weight == _named(f.name, "hit", 1.0), f.name
        assert mc.dropout == _named(f.name, "drop", 0.0, lambda v: int(v) / 100), f.name
        assert tc.lambda_min == _named(f.name, "lam", 5.0), f.name
        assert tc.style_balance == _named(f.name, "bal", 0.0, lambda v: int(v) / 100), f.name  # E46
        assert tc.fill_weight == _named(f.name, "fill", 1.0), f.name
        assert "_seed" not in f.name or tc.seed == _named(f.name, "seed", None, int), f.name  # E47
        assert tc.focal_weight == _named(f.name, "foc", 0.0), f.name  # E48: focal weight, γ
        assert tc.focal_gamma == _named(f.name, "gam", 2.0), f.name
        toms_crash = _named(f.name, "tomcr", None)  # the toms and the crash weighted (E45)
        assert tc.drum_weights == ({d: toms_crash for d in ("low_tom", "mid_tom", "high_tom", "crash")}
                                   if toms_crash else {}), f.name
        assert tc.drum_weights_fills_only == ("_onfills" in f.name), f.name  # E68
        assert tc.flat_data_conformal == ("_conf_" in f.name), f.name  # E69
        assert tc.realism_weight == _named(f.name, "real", 0.0), f.name  # E74: midpoints to the data
        assert tc.realism_bank == _named(f.name, "bank", 2048, int), f.name  # E75: the bank's size
        assert tc.realism_midpoint == ("_realmid" in f.name), f.name  # E77: on the midpoint alone
        assert tc.realism_balance == _named(f.name, "rbal", 0.0), f.name  # E78: halfway windows
        assert tc.flat_spare_fills == ("_spare" in f.name), f.name  # E81: no flatness points at fills
        assert tc.realism_hybrid == ("_hyb" in f.name), f.name  # E83: the hybrid chain's targets
        assert tc.heard_weight == _named(f.name, "heard", 0.0), f.name  # E89: evenness as heard
        assert tc.hybrid_threshold == _named(f.name, "hthr", 0.0, lambda v: int(v) / 100), f.name  # E93
        assert tc.path_pairs == _named(f.name, "pairs", 4, int), f.name  # E102: lines a batch for the line terms
        assert tc.hybrid_tau == _named(f.name, "htau", 0.0, lambda v: int(v) / 100), f.name  # E104: heard
        assert tc.heard_pace == ("_pace" in f.name), f.name  # E117: the heard term against the ends' pace
        assert tc.heard_hold_ends == ("_hold" in f.name), f.name  # E119: the heard term off the ends
        assert tc.hybrid_bank_levels == _named(f.name, "own", 0, int), f.name  # E127: own order below
        assert tc.vel_weight_off_fills == ("_velspare" in f.name), f.name  # E131: velocities off the fills
        assert tc.heard_per_drum == ("_perdrum" in f.name), f.name  # E133: the heard term within each drum
        assert tc.line_lambda == _named(f.name, "llam", 0.0), f.name  # E152: the line terms outside λ
        assert tc.flat_heard == _named(f.name, "gheard", 0.0), f.name  # E156: G through the hits as heard
        assert tc.flat_fisher == _named(f.name, "gfisher", 0.0), f.name  # E160: the hits' Fisher metric in G
        assert tc.code_fill_weight == _named(f.name, "cfill", 0.0), f.name  # E161: midpoints into the codes


def test_the_gpu_sweep_configs_load():
    """EXPERIMENTS.md E9's configs (configs/gpu): valid, and each says what its name says."""
    import re
    from pathlib import Path

    from flatgroove.train.config import load_config

    gpu = Path(__file__).resolve().parents[1] / "configs" / "gpu"
    files = sorted(gpu.glob("*.toml"))
    assert len(files) == 13
    prepared = sorted((gpu / "round3").glob("*.toml"))  # E19's wider decoders (E27's lease)
    assert len(prepared) == 8
    prepared += sorted((gpu / "round4").glob("*.toml"))  # E27's recipes from E29's vae (E30)
    assert len(prepared) == 8 + 4
    round5 = sorted((gpu / "round5").glob("*.toml"))  # E41's pointer: d = 20–24 with sessions 7–8's terms
    assert len(round5) == 8
    for f in round5:
        _, tc = load_config(f)
        assert tc.weight_decay == _named(f.name, "wd", 0.0), f.name
        assert (tc.vel_weight, tc.density_weight) == (_named(f.name, "vel", 1.0), _named(f.name, "dens", 0.0)), f.name
        assert tc.flat_data_share == _named(f.name, "data", 0.0, lambda v: int(v) / 100), f.name
    prepared += round5
    for f in files + prepared:
        mc, tc = load_config(f)
        assert mc.variant == "flat" and tc.flat_loss == "stein", f.name
        d = re.search(r"_d(\d+)_", f.name)
        if d:
            assert mc.latent_dim == int(d.group(1)), f.name
        w = re.search(r"_w(\d+)", f.name)
        if w:
            assert tc.flat_weight == float(w.group(1)), f.name
        assert mc.dec_hidden == _named(f.name, "h", 192, int), f.name
        assert tc.off_weight == _named(f.name, "off", 1.0), f.name
        assert tc.seed == _named(f.name, "seed", 0, int), f.name


def test_nearest_halfway_is_the_even_midpoint_bound_and_the_chain_is_even_and_monotone():
    """nearest_halfway: holds left's value where left and right agree, right's on half (rounded)
    of the cells where they differ, and lies as near the bank as the exact bound says any such
    groove can (evaluate.heard.even_midpoint_bound); hybrid_chain_targets over 17 points flips
    every differing cell exactly once, no other cell, at most ⌈D/16⌉ a step, ends kept."""
    torch.manual_seed(0)
    cells = 40
    bank = (torch.rand(200, cells) < 0.3).float()
    pr = torch.rand(cells)
    a, b = (torch.rand(12, cells) < 0.3).float(), (torch.rand(12, cells) < 0.3).float()
    h = geometry.nearest_halfway(a, b, bank, pr)
    for r in range(len(a)):
        diff = a[r] != b[r]
        assert (h[r][~diff] == a[r][~diff]).all()
        assert int((h[r] != a[r]).sum()) in {int(diff.sum()) // 2, (int(diff.sum()) + 1) // 2}
        assert int((bank != h[r]).sum(1).min()) == H.even_midpoint_bound(a[r].numpy(), b[r].numpy(), bank.numpy())
    t = geometry.hybrid_chain_targets(a, b, bank, 17, pr)
    torch.testing.assert_close(t[:, 0], a)
    torch.testing.assert_close(t[:, -1], b)
    flips = (t[:, 1:] != t[:, :-1]).float()
    torch.testing.assert_close(flips.sum(1), (a != b).float())  # each differing cell once, no other
    per_step = flips.sum(-1)
    assert (per_step.max(1).values - per_step.min(1).values <= 1).all()  # even, to whole cells
    for points in (6, 2):  # not 2^k + 1, or no inner point
        with pytest.raises(ValueError, match="2\\^k"):
            geometry.hybrid_chain_targets(a, b, bank, points, pr)


def test_the_chain_below_its_bank_levels_keeps_the_decoders_own_order_evenly_timed():
    """bank_levels 1 (E127): the midpoint is still the bank's halfway groove, and every deeper
    halving moves the cells the decoder moves first (largest own time): the chain keeps its
    ends, flips each differing cell once at an even pace, and, within each half, in the order
    own_time gives. Without own_time the option is refused."""
    torch.manual_seed(3)
    cells = 40
    bank = (torch.rand(200, cells) < 0.3).float()
    pr = torch.rand(cells)
    a, b = (torch.rand(6, cells) < 0.3).float(), (torch.rand(6, cells) < 0.3).float()
    own = torch.rand(6, cells)
    t = geometry.hybrid_chain_targets(a, b, bank, 17, pr, own, bank_levels=1)
    torch.testing.assert_close(t[:, 8], geometry.hybrid_chain_targets(a, b, bank, 17, pr)[:, 8])
    flips = (t[:, 1:] != t[:, :-1]).float()
    torch.testing.assert_close(flips.sum(1), (a != b).float())
    per_step = flips.sum(-1)
    assert (per_step.max(1).values - per_step.min(1).values <= 1).all()
    when = flips.argmax(1).float()  # (pairs, cells): the step each differing cell flips at
    for r in range(len(a)):
        for half in (when[r] < 8, when[r] >= 8):
            moving = (a[r] != b[r]) & half
            o, w = own[r][moving], when[r][moving]
            # a cell the decoder moves earlier (larger own time) never flips later in its half
            assert ((o[:, None] > o[None, :]) <= (w[:, None] <= w[None, :])).all()
    with pytest.raises(ValueError, match="own_time"):
        geometry.hybrid_chain_targets(a, b, bank, 17, pr, bank_levels=1)
    assert TrainConfig(hybrid_bank_levels=1).problems() == ["hybrid_bank_levels needs realism_hybrid"]
    assert "hybrid_bank_levels must be >= 0" in TrainConfig(hybrid_bank_levels=-1).problems()[0]


def test_the_own_order_chain_charges_timing_not_order():
    """path_hybrid_loss with bank_levels 1: a line that passes the bank's midpoint and changes
    its cells one at a time, in any order within each half, costs (almost) nothing; the same
    changes crowded into two steps cost more; the bank's whole chain (bank_levels 0) charges
    the even line for its order."""
    torch.manual_seed(4)
    cells, pairs = 16, 3
    bank = (torch.rand(50, cells) < 0.5).float()
    pr = torch.rand(cells)
    a, b = torch.zeros(pairs, cells), torch.ones(pairs, cells)
    first = geometry.hybrid_chain_targets(a, b, bank, 17, pr)[:, 8]  # the bank's midpoint: 8 cells on
    # each line's cells in a random order, the midpoint's 8 first: cell order[r, k] flips at step k
    order = torch.stack([torch.argsort(torch.rand(cells) - 2 * first[r]) for r in range(pairs)])
    step_of = torch.argsort(order, dim=1).float()  # (pairs, cells)
    k = torch.arange(17.0)[None, :, None]
    even = (k > step_of[:, None, :]).float()  # one cell a step
    crowded = (k > 4 + 8 * (step_of[:, None, :] >= 8)).float()  # half at step 4, half at step 12
    p = lambda h: 0.05 + 0.6 * h  # heard at 0.35 as h has it, sure of it (σ(±6) at τ 0.05)
    own = lambda h: float(geometry.path_hybrid_loss(p(h), bank, pr, 0.35, tau=0.05, bank_levels=1))
    assert own(even) < 0.1 and own(crowded) > 1.0
    assert float(geometry.path_hybrid_loss(p(even), bank, pr, 0.35, tau=0.05)) > 1.0


def _three_chains(seed: int):
    """Three lines' hybrid chains (9 points, 30 cells) between random ends, over a random bank."""
    torch.manual_seed(seed)
    cells = 30
    bank = (torch.rand(50, cells) < 0.3).float()
    pr = torch.rand(cells)
    a, b = (torch.rand(3, cells) < 0.3).float(), (torch.rand(3, cells) < 0.3).float()
    return cells, bank, pr, geometry.hybrid_chain_targets(a, b, bank, 9, pr)


def test_path_hybrid_loss_is_zero_on_the_chain_and_holds_the_ends():
    """The hybrid term is the inner points' expected Hamming distance to the chain between the
    line's ends as heard: 0 on the chain itself, positive off it, no gradient to the ends."""
    cells, bank, pr, chain = _three_chains(seed=1)
    assert float(geometry.path_hybrid_loss(chain, bank, pr)) == 0.0
    blend = (0.5 * chain + 0.25).requires_grad_()  # every cell half-sure: 0.25 or 0.75
    loss = geometry.path_hybrid_loss(blend, bank, pr)
    assert float(loss.detach()) == pytest.approx(0.25 * cells)
    loss.backward()
    assert blend.grad[:, [0, -1]].abs().sum() == 0 and blend.grad[:, 1:-1].abs().sum() > 0


def test_the_hybrid_term_counted_as_heard_charges_the_cells_heard_wrong():
    """hybrid tau > 0 (E104): the distance on soft hits σ((p − threshold)/τ). A line whose every
    inner cell is heard as the chain has it (p 0.55 where the chain sounds, 0.15 where it does
    not, at 0.35) costs almost nothing, though in p it costs 0.15–0.45 a cell; the same line with
    one cell a hair over the threshold where the chain is silent costs that cell almost whole."""
    cells, bank, pr, chain = _three_chains(seed=2)
    heard_right = 0.15 + 0.4 * chain
    in_p = float(geometry.path_hybrid_loss(heard_right, bank, pr, 0.35))
    heard = float(geometry.path_hybrid_loss(heard_right, bank, pr, 0.35, tau=0.05))
    assert in_p > 0.15 * cells and heard < 0.02 * cells  # σ(−4) ≈ 0.018 a cell
    wrong = heard_right.clone()
    silent = (chain[0, 4] == 0).nonzero()[0, 0]  # a cell the first line's midpoint leaves silent
    wrong[0, 4, silent] = 0.37
    extra = float(geometry.path_hybrid_loss(wrong, bank, pr, 0.35, tau=0.05)) - heard
    assert extra * 3 * 7 > 0.5  # (the mean over 3 lines' 7 inner points: that cell's share ≈ 0.6)
    assert float(geometry.path_hybrid_loss(chain, bank, pr, 0.4, tau=0.05)) < 1e-3 * cells


def test_realism_hybrid_trains_and_is_refused_where_it_cannot_run(tmp_path, monkeypatch):
    """realism_hybrid hands the lines to path_hybrid_loss (not path_realism_loss) with the bank
    and a fixed cell priority; a point count that is not 2^k + 1, no realism weight, or the
    realism term's own targets beside it are refused by name."""
    x = torch.from_numpy(np.random.default_rng(0).random((16, 32, 27)).astype(np.float32))
    x[..., :9] = (x[..., :9] < 0.2).float()
    kw = {"flat_loss": "stein", "flat_exact_points": 2, "path_pairs": 3, "path_points": 5, "realism_weight": 1.0,
          "realism_bank": 6}
    tc = TrainConfig(epochs=1, batch_size=8, flat_warmup_epochs=0, flat_ramp_epochs=0.01, val_heard_pairs=0,
                     log_every=1, realism_hybrid=True, **kw)
    seen, real = [], geometry.path_hybrid_loss

    def spy(p, bank, priority, threshold=0.4, tau=0.0, bank_levels=0):
        seen.append((tuple(p.shape), len(bank), priority.clone()))
        thresholds.append((threshold, tau, bank_levels))
        return real(p, bank, priority, threshold, tau, bank_levels)

    thresholds = []

    monkeypatch.setattr(geometry, "path_hybrid_loss", spy)
    monkeypatch.setattr(geometry, "path_realism_loss", None)  # must not be called
    tr = Trainer(ModelConfig(variant="flat", **TINY), tc, x, x[:8], tmp_path, progress=False)
    v = tr.fit()
    assert np.isfinite(v["realism"]) and v["realism"] >= 0
    assert seen and all(shape == (3, 5, 32 * 9) and n == 6 for shape, n, _ in seen)
    assert all(torch.equal(pr, seen[0][2]) for _, _, pr in seen)  # one fixed priority
    assert set(thresholds) == {(0.5, 0.0, 0)}  # the ends read at the band's centre, (0.2 + 0.8) / 2
    thresholds.clear()  # or at hybrid_threshold (E93), counted as heard at it (E104), own order below (E127)
    Trainer(ModelConfig(variant="flat", **TINY),
            TrainConfig(**{**asdict(tc), "hybrid_threshold": 0.35, "hybrid_tau": 0.05, "hybrid_bank_levels": 1}),
            x, x[:8], tmp_path / "thr", progress=False).fit()
    assert thresholds and set(thresholds) == {(0.35, 0.05, 1)}
    for extra, match in (({"path_points": 6}, "2\\^k"), ({"path_points": 2}, "2\\^k"),
                         ({"realism_weight": 0.0}, "needs realism_weight"),
                         ({"realism_balance": 1.0}, "targets of its own"),
                         ({"realism_midpoint": True}, "targets of its own"),
                         ({"hybrid_threshold": 1.0}, "hybrid_threshold must be"),
                         ({"hybrid_tau": -0.1}, "hybrid_tau must be")):
        with pytest.raises(TrainError, match=match):
            Trainer(ModelConfig(variant="flat", **TINY), TrainConfig(**{**kw, "realism_hybrid": True, **extra}),
                    x, x, tmp_path / "bad", progress=False)
    for extra in ("hybrid_threshold", "hybrid_tau"):
        with pytest.raises(TrainError, match=f"{extra} needs realism_hybrid"):
            Trainer(ModelConfig(variant="flat", **TINY), TrainConfig(**{**kw, extra: 0.35}),
                    x, x, tmp_path / "bad", progress=False)


def test_path_realism_is_the_soft_nearest_distance_to_the_bank():
    from flatgroove.geometry import path_realism_loss

    rng = np.random.default_rng(0)
    bank = torch.from_numpy((rng.random((64, 288)) < 0.15).astype(np.float32))
    ends = torch.zeros(1, 1, 288)
    on_bank = torch.cat([ends, bank[5].view(1, 1, -1), ends], 1)  # an inner point that is a window
    assert float(path_realism_loss(on_bank, bank)) < 1e-3
    far = 1 - bank[5]
    exact = float((far[None] - bank).abs().sum(-1).min())
    got = float(path_realism_loss(torch.cat([ends, far.view(1, 1, -1), ends], 1), bank))
    assert exact - np.log(64) <= got <= exact  # a soft minimum, within τ log n of the hard one
    p = torch.full((2, 5, 288), 0.3, requires_grad=True)
    path_realism_loss(p, bank).backward()
    assert p.grad[:, 1:-1].abs().sum() > 0 and p.grad[:, [0, -1]].abs().sum() == 0  # inner points only


def test_balanced_realism_draws_a_midpoint_to_the_window_halfway_between_the_ends():
    """Two real windows: one beside end A (2 cells from A, 38 from B) and 6 cells from the
    line's midpoint, one halfway (20 from each end) and 12 from it. Unbalanced, the term pulls
    the midpoint to the nearer one, beside A; balanced (β 1), to the halfway one."""
    from flatgroove.geometry import path_realism_loss

    n = 60
    a, b, half, mid = (torch.zeros(n) for _ in range(4))
    a[:20], b[20:40] = 1, 1
    half[:10], half[20:30] = 1, 1
    near_a = a.clone()
    near_a[18:20] = 0
    mid[:18], mid[20:26] = 1, 1
    assert [float((mid - w).abs().sum()) for w in (near_a, half)] == [6.0, 12.0]
    bank = torch.stack([near_a, half])
    for beta, want in ((0.0, near_a), (1.0, half)):
        line = torch.stack([a, mid, b])[None].clone().requires_grad_()
        path_realism_loss(line, bank, tau=1.0, balance=beta).backward()
        step = -line.grad[0, 1]  # where the term moves the midpoint
        other = half if want is near_a else near_a
        assert float(step @ (want - mid)) > float(step @ (other - mid)), beta
    with pytest.raises(TrainError, match="realism_balance must be >= 0"):
        Trainer(ModelConfig(variant="flat", **TINY), TrainConfig(flat_loss="stein", realism_weight=1.0,
                realism_balance=-1.0), torch.zeros(4, 32, 27), torch.zeros(4, 32, 27), "unused", progress=False)


def test_with_heard_appends_the_hits_as_heard_and_adds_their_metric():
    """flat_heard's geometry (E156): y with weight·σ((p − θ)/τ) per cell appended, so the
    pulled-back metric is the design's G plus weight² times the heard hits' own."""
    from flatgroove.model.decoder import geometry_output, with_heard

    torch.manual_seed(0)
    m = GrooveVAE(ModelConfig(variant="flat", **TINY)).eval()
    logits, vel, off = m.decoder(torch.randn(3, TINY["latent_dim"]))
    y = geometry_output(logits, vel, off)
    yh = with_heard(y, 0.35, 0.05, 2.0)
    assert yh.shape == (3, y.shape[1] + 32 * 9) and torch.equal(yh[:, : y.shape[1]], y)
    want = 2.0 * torch.sigmoid((torch.sigmoid(logits) - 0.35) / 0.05).flatten(1)
    assert torch.allclose(yh[:, y.shape[1]:], want, atol=1e-6)
    # G through it = G_y + 4·J_hᵀJ_h (a sum of squares), at points and columns of basis_fd_inputs
    z = torch.randn(2, TINY["latent_dim"])
    zf = geometry.basis_fd_inputs(z)
    with torch.no_grad():
        yf = m.f(zf)
        heard = with_heard(yf, 0.35, 0.05, 2.0)
    G, Gy = (geometry.metric_from_fd(v, 2, TINY["latent_dim"]) for v in (heard, yf))
    Gh = geometry.metric_from_fd(heard[:, yf.shape[1]:] / 2.0, 2, TINY["latent_dim"])
    assert torch.allclose(G, Gy + 4.0 * Gh, rtol=1e-4, atol=1e-6)
    assert (torch.linalg.eigvalsh(Gh.double()) > -1e-9).all() and Gh.abs().sum() > 0


def test_with_fisher_appends_the_hits_fisher_angle_whose_metric_is_their_fisher_information():
    """flat_fisher's geometry (E160): y with weight·2·arcsin √p per cell appended; the metric
    pulled back through the appended columns is the hits' Fisher information, Jₗᵀ diag(p(1 − p)) Jₗ
    in the logits (checked against autograd's exact Jacobian), and G = G_y + weight²·that."""
    from flatgroove.model.decoder import with_fisher

    torch.manual_seed(0)
    m = GrooveVAE(ModelConfig(variant="flat", **TINY)).eval()
    d = TINY["latent_dim"]
    z = torch.randn(2, d, dtype=torch.float64)
    m = m.double()
    with torch.no_grad():
        y = m.f(z)
        yf = with_fisher(y, 3.0)
    assert yf.shape == (2, y.shape[1] + 32 * 9) and torch.equal(yf[:, : y.shape[1]], y)
    p = y.view(2, 32, 27)[..., :9].flatten(1)
    assert torch.allclose(yf[:, y.shape[1]:], 6.0 * torch.asin(p.sqrt()))
    zf = geometry.basis_fd_inputs(z, 1e-4)
    with torch.no_grad():
        yy = m.f(zf)
        full = with_fisher(yy, 3.0)
    G, Gy = (geometry.metric_from_fd(v, 2, d, 1e-4) for v in (full, yy))
    Gf = geometry.metric_from_fd(full[:, yy.shape[1]:] / 3.0, 2, d, 1e-4)
    assert torch.allclose(G, Gy + 9.0 * Gf, rtol=1e-6, atol=1e-9)
    for i in range(2):  # the Fisher metric from the logits' exact Jacobian
        jl = torch.autograd.functional.jacobian(lambda v: m.decoder(v[None])[0].flatten(), z[i])
        pi = torch.sigmoid(m.decoder(z[i][None])[0].flatten()).detach()
        want = jl.T @ ((pi * (1 - pi))[:, None] * jl)
        assert torch.allclose(Gf[i], want, rtol=1e-4, atol=1e-8), (Gf[i] - want).abs().max()
    assert not torch.allclose(Gf, Gy[..., :, :], rtol=0.1)  # not the design's G under another name


@pytest.mark.parametrize("setting", ["flat_heard", "flat_fisher"])
def test_a_flat_output_setting_changes_the_stein_flatness_term_only_when_set(tmp_path, setting):
    """The trainer pulls the exact G back through with_heard (flat_heard > 0, E156) or
    with_fisher (flat_fisher > 0, E160), and only then; each refused below 0 or off Stein's loss."""
    x = torch.from_numpy(np.random.default_rng(0).random((8, 32, 27)).astype(np.float32))
    x[..., :9] = (x[..., :9] < 0.2).float()
    base = {"epochs": 1, "batch_size": 8, "flat_loss": "stein", "flat_exact_points": 2,
            "flat_warmup_epochs": 0, "flat_ramp_epochs": 0, "val_heard_pairs": 0}

    def flat_term(**kw):
        torch.manual_seed(0)
        tr = Trainer(ModelConfig(variant="flat", **TINY), TrainConfig(**base, **kw), x, x,
                     tmp_path / str(kw), progress=False)
        tr.model.eval()
        tr.step = 1
        torch.manual_seed(1)
        return float(tr.objective(x)["flat"].detach())

    plain, again, on = flat_term(), flat_term(**{setting: 0.0}), flat_term(**{setting: 1.0})
    assert plain == pytest.approx(again, rel=1e-6)
    assert math.isfinite(on) and abs(on - plain) > 1e-4 * abs(plain)
    assert TrainConfig(**{setting: -1.0}).problems() == [f"{setting} must be >= 0, got -1.0"]
    assert TrainConfig(**{setting: 1.0}, flat_loss="frobenius").problems() == [f'{setting} needs flat_loss = "stein"']


def test_midpoint_hole_ratio_reads_holes_between_codes_and_its_gradient_fills_them():
    """prior.midpoint_hole_ratio (E161): near 1 or below for codes that fill a ball, well above
    for two tight clusters (every cross pair's midpoint in the gap between them); scale-free;
    and a gradient step on it brings the clustered codes' ratio down."""
    from flatgroove.model.prior import midpoint_hole_ratio

    g = torch.Generator().manual_seed(0)
    ball = torch.randn(64, 4, generator=g)
    clusters = 0.1 * torch.randn(64, 4, generator=g)
    clusters[:32, 0] += 5.0
    r_ball = float(midpoint_hole_ratio(ball, torch.Generator().manual_seed(1)))
    r_cl = float(midpoint_hole_ratio(clusters, torch.Generator().manual_seed(1)))
    assert r_ball < 1.2 and r_cl > 5 * r_ball, (r_ball, r_cl)
    assert float(midpoint_hole_ratio(7.0 * ball, torch.Generator().manual_seed(1))) == pytest.approx(r_ball, rel=1e-5)
    z = clusters.clone().requires_grad_(True)
    opt = torch.optim.SGD([z], lr=0.05)
    for k in range(20):
        opt.zero_grad()
        midpoint_hole_ratio(z, torch.Generator().manual_seed(k)).backward()
        opt.step()
    assert float(midpoint_hole_ratio(z.detach(), torch.Generator().manual_seed(1))) < 0.8 * r_cl
    with pytest.raises(ValueError, match="at least 3"):
        midpoint_hole_ratio(torch.zeros(2, 4))


def test_code_fill_weight_adds_the_hole_ratio_to_the_loss_only_when_set(tmp_path):
    x = torch.from_numpy(np.random.default_rng(0).random((8, 32, 27)).astype(np.float32))
    x[..., :9] = (x[..., :9] < 0.2).float()
    base = {"epochs": 1, "batch_size": 8, "val_heard_pairs": 0, "flat_warmup_epochs": 5}

    def run(**kw):
        torch.manual_seed(0)
        tr = Trainer(ModelConfig(variant="flat", **TINY), TrainConfig(**base, **kw), x, x,
                     tmp_path / str(kw), progress=False)
        tr.model.eval()
        torch.manual_seed(1)
        return tr.objective(x)

    plain, fill = run(), run(code_fill_weight=3.0)
    assert "code_fill" not in plain and float(fill["code_fill"].detach()) > 0
    assert float(fill["loss"].detach()) == pytest.approx(float(plain["loss"].detach()) + 3.0 * float(fill["code_fill"].detach()), rel=1e-5)
    assert TrainConfig(code_fill_weight=-1.0).problems() == ["code_fill_weight must be >= 0, got -1.0"]
    assert TrainConfig(code_fill_weight=1.0, batch_size=2).problems() == ["code_fill_weight needs batches of at least 3"]
    from flatgroove.train.distributed import DistContext

    with pytest.raises(TrainError, match="single-process"):  # one rank sees only its share of codes
        Trainer(ModelConfig(variant="flat", **TINY), TrainConfig(**base, code_fill_weight=1.0), x, x,
                tmp_path / "ddp", progress=False, dist=DistContext(rank=0, world=2))
