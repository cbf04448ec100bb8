"""Dispatch, output types and the single entry point."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import otdist


def test_numpy_in_python_float_out(rng):
    x, y = rng.normal(size=(10, 2)), rng.normal(size=(12, 2))
    for method in ["exact", "primal", "dual"]:
        assert type(otdist.wasserstein(x, y, method=method)) is float
    assert type(otdist.wasserstein(x[:, 0], y[:, 0])) is float
    assert type(otdist.kl([0.5, 0.5], [0.4, 0.6])) is float


def test_auto_picks_1d_for_line_data_and_exact_otherwise(rng):
    assert otdist.transport(rng.normal(size=5), rng.normal(size=6)).method == "1d"
    assert otdist.transport(rng.normal(size=(5, 2)), rng.normal(size=(6, 2))).method == "exact"
    assert otdist.transport(rng.normal(size=5), rng.normal(size=6), metric="sqeuclidean").method == "exact"


def test_one_d_and_exact_agree_on_line_data(rng):
    u, v, w = rng.normal(size=30), rng.normal(size=20), rng.random(30)
    for p in [1, 2, 3.5]:
        assert otdist.wasserstein(u, v, w, p=p, method="1d") == pytest.approx(
            otdist.wasserstein(u, v, w, p=p, method="exact"), abs=1e-10
        )


def test_sqeuclidean_metric_is_the_square_of_euclidean_w2(rng):
    x, y = rng.normal(size=(15, 2)), rng.normal(size=(15, 2))
    assert otdist.wasserstein(x, y, metric="sqeuclidean") == pytest.approx(otdist.wasserstein(x, y, p=2) ** 2, rel=1e-10)


def test_transport_result_fields(rng):
    res = otdist.transport(rng.normal(size=(8, 2)), rng.normal(size=(9, 2)), method="dual", p=2)
    assert res.method == "dual" and res.p == 2.0 and res.converged
    assert res.value == pytest.approx(res.transport_cost**0.5, rel=1e-14)
    assert "TransportResult(value=" in repr(res)
    with pytest.raises(AttributeError):
        res.value = 0.0  # frozen
    assert sp.issparse(otdist.transport([0.0, 1.0], [2.0]).plan)


def test_torch_in_torch_out_same_dtype():
    x, y = torch.randn(6, 2, dtype=torch.float32), torch.randn(7, 2, dtype=torch.float32)
    for method in ["exact", "primal", "dual"]:
        res = otdist.transport(x, y, method=method)
        assert isinstance(res.value, torch.Tensor) and res.value.dtype == torch.float32
        assert isinstance(res.plan, torch.Tensor) and res.plan.device == x.device
        assert float(res.value) == pytest.approx(otdist.wasserstein(x.numpy(), y.numpy(), method=method), rel=1e-5)


def test_torch_weight_gradient_is_the_potential():
    torch.manual_seed(1)
    x, y = torch.randn(5, 2, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    a = torch.full((5,), 0.2, dtype=torch.float64, requires_grad=True)
    res = otdist.transport(x, y, a, method="exact")
    res.value.backward()
    f = res.potentials[0]
    # Weights are normalised, so the gradient is f minus its a-weighted mean.
    np.testing.assert_allclose(a.grad.numpy(), (f - (f * a).sum()).detach().numpy(), atol=1e-12)


def test_distance_dispatches(rng):
    x, y = rng.normal(size=10), rng.normal(size=12)
    assert otdist.distance(x, y) == otdist.wasserstein(x, y)
    assert otdist.distance(x, y, metric="wasserstein", p=2, ground_metric="euclidean") == otdist.wasserstein(x, y, p=2)
    assert otdist.distance([0.5, 0.5], [0.2, 0.8], metric="kl") == otdist.kl([0.5, 0.5], [0.2, 0.8])
    assert otdist.distance([0.5, 0.5], [0.2, 0.8], metric="js", base=2) == otdist.js([0.5, 0.5], [0.2, 0.8], base=2)
    with pytest.raises(ValueError, match="metric must be one of"):
        otdist.distance(x, y, metric="hellinger")


def test_wasserstein_along_an_axis_is_scipy_per_slice():
    import scipy.stats

    rng = np.random.default_rng(11)
    u, v = rng.normal(size=(4, 30)), rng.normal(1.0, 2.0, size=(4, 25))
    uw, vw = rng.random(size=(4, 30)), rng.random(size=(4, 25))
    got = otdist.wasserstein(u, v, uw, vw, axis=1)
    expected = [scipy.stats.wasserstein_distance(u[k], v[k], uw[k], vw[k]) for k in range(4)]
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    np.testing.assert_allclose(otdist.wasserstein(u.T, v.T, uw.T, vw.T, axis=0), expected, rtol=1e-12)
    with pytest.raises(otdist.InputError, match="axis= computes 1-D W_p"):
        otdist.wasserstein(u, v, axis=1, method="exact")
    with pytest.raises(otdist.InputError, match="metric='cityblock'"):
        otdist.wasserstein(u, v, axis=1, metric="cityblock")
