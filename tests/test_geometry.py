"""Jacobian estimators against the exact autograd Jacobian, and the flatness loss."""

import pytest
import torch
from torch import nn

from flatgroove import geometry
from flatgroove.model.decoder import Decoder, geometry_output

torch.set_num_threads(1)


class SmallLSTMDecoder(nn.Module):
    """z -> LSTM over 8 steps -> 6 outputs per step: a curved decoder like the real one."""

    def __init__(self, d=3):
        super().__init__()
        torch.manual_seed(0)
        self.inp = nn.Linear(d, 8)
        self.rnn = nn.LSTM(8, 16, batch_first=True)
        self.out = nn.Linear(16, 6)

    def forward(self, z):
        h, _ = self.rnn(torch.tanh(self.inp(z)).unsqueeze(1).expand(-1, 8, -1))
        return self.out(h).flatten(1)


def test_exact_jacobian_matches_finite_differences_through_lstm():
    f = SmallLSTMDecoder().double()
    z = torch.randn(4, 3, dtype=torch.float64)
    J = geometry.jacobian(f, z)
    assert J.shape == (4, 48, 3)
    eps = 1e-6
    for k in range(3):
        e = torch.zeros(3, dtype=torch.float64)
        e[k] = eps
        fd = (f(z + e) - f(z - e)) / (2 * eps)
        torch.testing.assert_close(J[:, :, k], fd.detach(), rtol=1e-5, atol=1e-7)


def test_exact_metric_of_linear_map_is_AtA():
    A = torch.randn(10, 3, dtype=torch.float64)
    G = geometry.metric(lambda z: z @ A.T, torch.randn(5, 3, dtype=torch.float64))
    torch.testing.assert_close(G, (A.T @ A).expand(5, 3, 3))


@pytest.mark.parametrize("method", ["fd", "dbl", "jvp"])
def test_jvp_estimators_match_exact(method):
    f = SmallLSTMDecoder()
    z, u = torch.randn(6, 3), torch.randn(6, 3)
    exact = torch.einsum("nij,nj->ni", geometry.jacobian(f, z), u)
    est = geometry.jvp(f, z, u, method=method, eps=1e-3)
    torch.testing.assert_close(est.detach(), exact, rtol=2e-2, atol=2e-3)


@pytest.mark.parametrize("method", ["fd", "dbl"])
def test_probe_estimates_of_trace_and_frobenius_are_unbiased(method):
    """Averaged over many probes, the estimates agree with exact tr G and ‖G − c²I‖²_F."""
    f = SmallLSTMDecoder()
    z = torch.randn(5, 3)
    G = geometry.metric(f, z)
    ex = geometry.exact_flatness(G)
    g = torch.Generator().manual_seed(0)
    runs = [geometry.flatness_terms(f, z, n_probes=8, method=method, eps=1e-3, generator=g,
                                    c2=ex["c2"]) for _ in range(200)]
    trace = torch.stack([r["trace"] for r in runs]).mean(0).detach()
    frob = torch.stack([r["frob"] for r in runs]).mean(0).detach()
    # Statistical tolerance: 200 x 56 probe pairs; relative error of a mean of this many
    # Rademacher products stays well inside 10% for these small metrics.
    torch.testing.assert_close(trace, ex["trace"], rtol=0.05, atol=1e-6)
    torch.testing.assert_close(frob, ex["frob"], rtol=0.10, atol=1e-6)


def test_flatness_loss_zero_for_scaled_isometry_and_positive_otherwise():
    d = 4
    Q, _ = torch.linalg.qr(torch.randn(20, d, dtype=torch.float64))
    z = torch.randn(16, d, dtype=torch.float64)
    iso = geometry.flatness_terms(lambda x: 3.0 * x @ Q.T, z, n_probes=4, eps=1e-3)
    assert iso["loss"].item() < 1e-10
    assert iso["c2"].item() == pytest.approx(9.0, rel=1e-6)
    A = Q * torch.tensor([1.0, 2.0, 0.5, 1.0], dtype=torch.float64)
    bent = geometry.flatness_terms(lambda x: x @ A.T, z, n_probes=4, eps=1e-3)
    assert bent["loss"].item() > 0.05
    G = geometry.metric(lambda x: x @ A.T, z)
    assert geometry.exact_flatness(G)["loss"].item() > 0.05


def test_flatness_loss_has_gradients_for_the_real_decoder():
    dec = Decoder(4, hidden=16, layers=1, step_embed=4)
    f = lambda z: geometry_output(*dec(z))
    out = geometry.flatness_terms(f, torch.randn(8, 4), n_probes=2)
    out["loss"].backward()
    grads = [p.grad for p in dec.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert sum(g.abs().sum() for g in grads) > 0


def test_mixup_range():
    z = torch.stack([torch.zeros(2), torch.ones(2)])
    m = geometry.mixup(z, 1000, eta=0.2, generator=torch.Generator().manual_seed(0))
    assert m.min() >= -0.2 - 1e-6 and m.max() <= 1.2 + 1e-6
    assert m.min() < -0.1 and m.max() > 1.1  # goes a little beyond the data


def test_unknown_estimator():
    with pytest.raises(ValueError, match="unknown Jacobian estimator"):
        geometry.jvp(lambda z: z, torch.zeros(1, 2), torch.zeros(1, 2), method="magic")


def test_channel_trace_shares_say_which_channel_moves():
    """y = [p, p·v, p·o] per step: a map that moves offsets twice as far as hits puts 4/5 of
    tr G in the offsets."""
    def f(z):  # z (n, 2) -> y (n, 864)
        y = torch.zeros(z.shape[0], 32, 27)
        y[:, 3, 0] = z[:, 0]  # a hit probability at step 3, kick
        y[:, 5, 18 + 2] = 2 * z[:, 1]  # an offset at step 5, drum 2
        return y.flatten(1)

    j = geometry.jacobian(f, torch.zeros(3, 2))
    s = geometry.channel_trace_shares(j)
    assert s == pytest.approx({"hits": 0.2, "velocities": 0.0, "offsets": 0.8})
