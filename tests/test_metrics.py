"""Metrics on constructed cases whose answers are known by hand (DESIGN §5)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from flatgroove.evaluate.metrics import (
    abrupt_jump_share,
    curve_length,
    discrete_geodesic,
    flatness,
    geodesic_study,
    hit_metrics,
    hits_from_outputs,
    interpolation_paths,
    mae_on_true_hits,
    pearson,
    smoothness,
    spearman,
    step_sizes,
)
from flatgroove.geometry import metric, mixup

torch.set_num_threads(1)


def linear(A: torch.Tensor):
    return lambda z: z @ A.T


def orthonormal(rows: int, cols: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(rows, cols, generator=g, dtype=torch.float64))
    return q


def bump(z: torch.Tensor) -> torch.Tensor:
    """A surface with a tall Gaussian bump at the origin: straight lines over it detour."""
    return torch.stack([z[:, 0], z[:, 1], 2 * torch.exp(-(z**2).sum(1) / 0.3)], dim=1)


def parabola(z: torch.Tensor) -> torch.Tensor:
    return torch.stack([z[:, 0], z[:, 1], 3 * z[:, 0] ** 2], dim=1)


class LSTMDecoder(nn.Module):
    """z repeated over 32 steps -> LSTM -> Linear: the shape of the real decoders."""

    def __init__(self, d: int = 3, hidden: int = 16, out: int = 5) -> None:
        super().__init__()
        self.lstm = nn.LSTM(d, hidden, batch_first=True)
        self.head = nn.Linear(hidden, out)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h, _ = self.lstm(z[:, None, :].expand(-1, 32, -1))
        return self.head(h).reshape(z.shape[0], -1)


# -- interpolation smoothness ---------------------------------------------------------------


def path_1d(xs: list[float]) -> np.ndarray:
    """A path along the first axis of a 3-D output space."""
    y = np.zeros((len(xs), 3))
    y[:, 0] = xs
    return y


def test_step_sizes() -> None:
    Y = np.stack([path_1d([0, 1, 3]), path_1d([0, -2, -2])])
    np.testing.assert_allclose(step_sizes(Y), [[1, 2], [2, 0]])


def test_even_path_has_cv_zero() -> None:
    Y = path_1d(list(np.linspace(0, 4, 17)))[None]
    s = smoothness(Y)
    assert s["cv"] == pytest.approx(0, abs=1e-12)
    assert s["max_over_mean"] == pytest.approx(1)


def test_one_big_jump_by_hand() -> None:
    # steps 1, 1, 1, 5: mean 2, population std sqrt((1 + 1 + 1 + 9) / 4) = sqrt(3).
    jump = path_1d([0, 1, 2, 3, 8])
    even = path_1d([0, 1, 2, 3, 4])
    flat = path_1d([5, 5, 5, 5, 5])  # no movement: excluded, counted
    s = smoothness(np.stack([jump, even, flat]))
    assert s["n_pairs"] == 2 and s["n_degenerate"] == 1
    assert s["cv"] == pytest.approx((math.sqrt(3) / 2 + 0) / 2)
    assert s["max_over_mean"] == pytest.approx((5 / 2 + 1) / 2)


def test_interpolation_paths_linear_decoder() -> None:
    A = torch.randn(6, 3, generator=torch.Generator().manual_seed(1))
    f = linear(A)
    z_a, z_b = torch.randn(4, 3), torch.randn(4, 3)
    Y = interpolation_paths(f, z_a, z_b, n_points=17, batch_size=10)  # batches split pairs
    assert Y.shape == (4, 17, 6)
    torch.testing.assert_close(Y[:, 0], f(z_a))
    torch.testing.assert_close(Y[:, -1], f(z_b))
    assert smoothness(Y)["cv"] < 1e-5  # a linear map keeps even steps even
    single = interpolation_paths(f, z_a[0], z_b[0], n_points=5)
    assert single.shape == (1, 5, 6)


def test_abrupt_jump_share_by_hand() -> None:
    hits = np.zeros((3, 5, 32, 9), np.int8)
    hits[0, 3:, 0, :4] = 1  # pair 0: four cells switch on in one step -> abrupt
    for k in range(1, 5):  # pair 1: one cell per step, each step 1/4 < 1/3 of changes
        hits[1, k:, k, 1] = 1
    # pair 2 never changes: excluded
    assert abrupt_jump_share(hits) == pytest.approx(0.5)
    assert abrupt_jump_share(hits, threshold=0.2) == pytest.approx(1.0)
    assert math.isnan(abrupt_jump_share(np.zeros((2, 5, 32, 9))))


def test_hits_from_outputs_layout() -> None:
    """The layout of flatgroove.model.decoder.geometry_output: per step [p, p*v, p*o] x 9."""
    import torch

    from flatgroove.model.decoder import geometry_output

    logits = torch.full((2, 32, 9), -10.0)
    logits[1, 4, 2] = 10.0  # a hit at step 4, closed hi-hat
    vel = torch.full((2, 32, 9), 0.9)  # p*v entries are never read as hits
    y = geometry_output(logits, vel, torch.zeros(2, 32, 9)).numpy()
    h = hits_from_outputs(y)
    assert h.shape == (2, 32, 9)
    assert h.sum() == 1 and h[1, 4, 2] == 1


# -- reconstruction ------------------------------------------------------------------------


def test_hit_metrics_by_hand() -> None:
    t = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    p = np.array([0.9, 0.8, 0.1, 0.7, 0, 0, 0, 0])  # tp 2, fn 1, fp 1, tn 4
    m = hit_metrics(t, p)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["accuracy"] == pytest.approx(6 / 8)
    assert hit_metrics(np.zeros(4), np.zeros(4))["f1"] == 1.0
    assert hit_metrics(np.ones(4), np.zeros(4))["f1"] == 0.0


def test_mae_on_true_hits() -> None:
    hits = np.array([[1, 0], [1, 0]])
    true = np.array([[0.5, 0.0], [1.0, 0.0]])
    pred = np.array([[0.7, 0.9], [0.6, 0.9]])  # silent cells must not count
    assert mae_on_true_hits(true, pred, hits) == pytest.approx((0.2 + 0.4) / 2)
    assert math.isnan(mae_on_true_hits(true, pred, np.zeros_like(hits)))


# -- pull-back metric and flatness ----------------------------------------------------------


def test_pullback_linear_is_AtA() -> None:
    A = torch.randn(7, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    z = torch.randn(10, 4, dtype=torch.float64)
    G = metric(linear(A), z, chunk=3)
    assert G.shape == (10, 4, 4)
    torch.testing.assert_close(G, (A.T @ A).expand(10, 4, 4))
    torch.testing.assert_close(metric(linear(A), z[:2], chunk=1), G[:2])


def test_scaled_isometry_is_flat() -> None:
    c = 2.5
    A = c * orthonormal(8, 3)
    G = metric(linear(A), torch.randn(20, 3, dtype=torch.float64))
    r = flatness(G)
    assert r["cond_median"] == pytest.approx(1, abs=1e-9)
    assert r["cond_mean"] == pytest.approx(1, abs=1e-9)
    assert r["mf_cv"] == pytest.approx(0, abs=1e-9)
    assert r["trace_cv"] == pytest.approx(0, abs=1e-9)
    assert r["flatness_error"] == pytest.approx(0, abs=1e-12)
    assert r["c2"] == pytest.approx(c**2)
    assert r["log_mf_mean"] == pytest.approx(3 * math.log(c))


def test_condition_number_is_ratio_of_squared_singular_values() -> None:
    s = torch.tensor([3.0, 1.0, 0.5], dtype=torch.float64)
    A = orthonormal(6, 3, seed=3) @ torch.diag(s) @ orthonormal(3, 3, seed=4).T
    G = metric(linear(A), torch.randn(5, 3, dtype=torch.float64))
    r = flatness(G)
    assert r["cond_median"] == pytest.approx(36.0)
    # one point: c^2 = tr/d, error = sum (s_i^2 / c^2 - 1)^2 / d
    c2 = float((s**2).sum() / 3)
    assert r["flatness_error"] == pytest.approx(float(((s**2 / c2 - 1) ** 2).sum() / 3))


def test_flatness_varying_scale_by_hand_and_no_overflow() -> None:
    d = 4
    scales = np.array([1.0, 2.0])  # G_i = s_i^2 I: MF = s_i^d, tr = d s_i^2
    G = np.stack([s**2 * np.eye(d) for s in scales])
    r = flatness(G)
    mf = scales**d
    tr = d * scales**2
    assert r["mf_cv"] == pytest.approx(mf.std() / mf.mean())
    assert r["trace_cv"] == pytest.approx(tr.std() / tr.mean())
    c2 = tr.mean() / d
    assert r["flatness_error"] == pytest.approx(np.mean((scales**2 / c2 - 1) ** 2))
    assert r["cond_median"] == pytest.approx(1)
    # the median error is robust to one far-stretched point, the mean is not
    G5 = np.stack([np.eye(d)] * 4 + [100.0 * np.eye(d)])
    r5 = flatness(G5)
    c2 = (4 + 100) / 5
    per = (np.array([1, 1, 1, 1, 100]) / c2 - 1) ** 2
    assert r5["flatness_error"] == pytest.approx(per.mean())
    assert r5["flatness_error_median"] == pytest.approx(np.median(per)) and np.median(per) < per.mean()
    # det of 1e150 * I in 4-D overflows float64; the log route does not.
    huge = flatness(G * 1e150)
    assert huge["mf_cv"] == pytest.approx(r["mf_cv"])
    # a singular metric is clamped, not infinite
    sing = flatness(np.diag([1.0, 0.0])[None])
    assert np.isfinite(sing["cond_median"]) and sing["cond_median"] >= 1e11


def test_pullback_lstm_matches_finite_differences() -> None:
    torch.manual_seed(0)
    f = LSTMDecoder().eval()
    z32 = torch.randn(6, 3)
    G32 = metric(f, z32)  # float32 runs through the oneDNN switch
    torch.testing.assert_close(metric(f, z32[:2], chunk=1), G32[:2])

    f64 = f.double()
    z = z32.double()
    G = metric(f64, z, chunk=4)
    eps = 1e-6
    eye = torch.eye(3, dtype=torch.float64)
    with torch.no_grad():
        cols = [(f64(z + eps * e) - f64(z - eps * e)) / (2 * eps) for e in eye]
    J = torch.stack(cols, dim=2)  # (n, D, d)
    torch.testing.assert_close(G, J.transpose(1, 2) @ J, rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(G32, G.float(), rtol=1e-3, atol=1e-5)


def test_mixup() -> None:
    z = torch.tensor([[0.0], [1.0]])
    m = mixup(z, 500, eta=0.2, generator=torch.Generator().manual_seed(0))
    assert m.shape == (500, 1)
    assert m.min() >= -0.2 and m.max() <= 1.2
    assert m.min() < 0 and m.max() > 1  # extrapolation happens
    again = mixup(z, 500, eta=0.2, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(m, again)
    # with two rows, i != j means every mixup is a blend of both, never a copy
    zz = torch.randn(2, 5)
    mm = mixup(zz, 50, eta=0.0, generator=torch.Generator().manual_seed(1))
    a = (mm - zz[0]) @ (zz[1] - zz[0]) / (zz[1] - zz[0]).square().sum()
    torch.testing.assert_close(zz[0] + a[:, None] * (zz[1] - zz[0]), mm)


# -- geodesics ------------------------------------------------------------------------------


def test_curve_length_subdivision_approaches_arc_length() -> None:
    line = torch.linspace(-1, 1, 17, dtype=torch.float64)[:, None] * torch.tensor([1.0, 0.0])
    exact = math.sqrt(37) + math.asinh(6) / 6  # length of y = 3x^2 over [-1, 1]
    coarse = float(curve_length(parabola, line))
    fine = float(curve_length(parabola, line, subdivide=40))
    assert coarse < fine < exact
    assert fine == pytest.approx(exact, rel=1e-5)


def test_geodesic_of_linear_decoder_is_straight() -> None:
    A = torch.randn(5, 3, generator=torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(6)
    z_a, z_b = torch.randn(20, 3, generator=g), torch.randn(20, 3, generator=g)
    r = geodesic_study(linear(A), z_a, z_b, steps=50)
    assert r["ratio_mean"] == pytest.approx(1, abs=1e-3)
    assert np.all(np.abs(r["ratios"] - 1) < 1e-3)
    line = torch.linspace(0, 1, 17)[None, :, None] * (z_b - z_a)[:, None] + z_a[:, None]
    torch.testing.assert_close(r["paths"], line, atol=1e-3, rtol=0)


def test_isometry_geodesic_length_is_latent_distance() -> None:
    g = torch.Generator().manual_seed(7)
    z_a, z_b = torch.randn(30, 3, generator=g), torch.randn(30, 3, generator=g)
    r = geodesic_study(linear(2.0 * orthonormal(6, 3).float()), z_a, z_b, steps=20)
    assert r["pearson"] == pytest.approx(1, abs=1e-6)
    assert r["spearman"] == pytest.approx(1)
    np.testing.assert_allclose(r["geodesic_lengths"], 2 * r["latent_distances"], rtol=1e-5)


@pytest.mark.parametrize("method", ["lbfgs", "adam"])
def test_geodesic_of_curved_decoder_is_shorter(method: str) -> None:
    z_a = torch.tensor([[-1.5, 0.1], [-1.0, 0.2], [-1.0, -1.0]])
    z_b = torch.tensor([[1.5, 0.1], [1.0, -0.1], [1.0, 1.0]])
    r = geodesic_study(bump, z_a, z_b, method=method)
    assert r["ratio_mean"] > 1.01
    assert np.all(r["ratios"] >= 1 - 1e-6)
    path, length = discrete_geodesic(parabola, z_a[2], z_b[2], method=method)
    assert path.shape == (17, 2) and length.dim() == 0
    torch.testing.assert_close(path[[0, -1]], torch.stack([z_a[2], z_b[2]]))
    line = torch.linspace(0, 1, 17)[:, None] * (z_b[2] - z_a[2]) + z_a[2]
    straight = curve_length(parabola, line)
    assert float(straight / length) > 1.003  # the parabolic cylinder is flat, but not in z


def test_geodesics_many_pairs_batched() -> None:
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(4, 32), nn.Tanh(), nn.Linear(32, 64))
    for p in mlp.parameters():
        p.requires_grad_(False)  # the study must not need (or touch) weight gradients
    z_a, z_b = torch.randn(100, 4), torch.randn(100, 4)
    r = geodesic_study(mlp, z_a, z_b, steps=50, batch_pairs=64)
    assert r["n_pairs"] == 100
    assert np.all(r["ratios"] >= 1 - 1e-6) and r["ratio_mean"] > 1
    assert 0 < r["spearman"] <= 1


def test_correlations_by_hand() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0])
    assert pearson(x, 2 * x + 1) == pytest.approx(1)
    assert spearman(x, x**3) == pytest.approx(1)
    assert spearman(x, -x) == pytest.approx(-1)
    # ties: ranks [1.5, 1.5, 3, 4] against [1, 2, 3, 4]
    assert spearman(np.array([1.0, 1.0, 2.0, 3.0]), x) == pytest.approx(
        pearson(np.array([1.5, 1.5, 3, 4]), x)
    )
    assert math.isnan(pearson(np.ones(3), x[:3]))


def test_reconstruction_reports_each_drums_f1():
    """A decoder that adds one kick and drops one snare: F1 per drum by hand; a drum with no
    hits either way has none."""
    from flatgroove.evaluate.study import reconstruction
    from flatgroove.model.decoding import DecodingRule

    x = torch.zeros(1, 32, 27)
    x[0, ::8, 0] = 1  # 4 kicks
    x[0, 4::8, 1] = 1  # 4 snares
    out_hits = x[..., :9].clone()
    out_hits[0, 2, 0] = 1  # one extra kick
    out_hits[0, 4, 1] = 0  # one missed snare

    class Stub:
        def encoder(self, xb):
            return torch.zeros(len(xb), 2), torch.zeros(len(xb), 2)

        def decoder(self, z):
            return (out_hits * 20 - 10).expand(len(z), -1, -1), torch.full((len(z), 32, 9), 0.5), torch.zeros(len(z), 32, 9)

        def reconstruction(self, xb, logits, vel, off):
            return {"recon": torch.zeros(len(xb))}

        def kl(self, z, mu, logvar):
            return torch.zeros(len(z))

    r = reconstruction(Stub(), x, batch=4, seed=0, rule=DecodingRule("threshold", threshold=0.5))
    f = r["drum_f1"]
    assert f["BD"] == pytest.approx(8 / 9) and f["SD"] == pytest.approx(6 / 7) and f["LT"] is None
    assert r["hit_f1"] == pytest.approx(14 / 16)
