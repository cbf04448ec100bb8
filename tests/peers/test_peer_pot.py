"""POT's own test cases for the functions otdist shares with it, ported.

Sources (PythonOT/POT master): ``test/test_ot.py`` (emd/emd2), ``test/test_1d_solver.py``
(emd_1d, wasserstein_1d), ``test/test_bregman.py`` (sinkhorn, sinkhorn2, empirical_sinkhorn,
empirical_sinkhorn_divergence).  Inputs are POT's (same generators and seeds); expected values are
what POT asserts, computed by POT itself.  Conventions adapted, named at each test:

* POT's ``emd2``/``sinkhorn2`` return the transport cost <P, C> (W_p**p); otdist's ``value`` is W_p and
  ``transport_cost`` is <P, C>; ``ot.dist`` defaults to the squared euclidean cost, which is otdist's p = 2.
* POT takes a cost matrix M; otdist takes the points (``cost=M`` only for the exact/LP methods).
  ``ot.utils.dist0(n)`` is the squared cost between the points 0..n-1.
* POT warns (UserWarning) where otdist raises its own error: ``ConvergenceError`` at an iteration cap
  (``on_unconverged="raise"`` is the default), ``InputError`` for invalid arguments; POT's
  AssertionError for mismatched sizes is otdist's ``InputError``.
* POT rejects weights of different total mass; otdist normalises weights, so the port checks the
  normalised problem.
* POT's ``empirical_sinkhorn_divergence`` combines ``sinkhorn2`` values (<P_eps, C>); otdist's
  ``sinkhorn_divergence`` combines the entropic costs OT_eps (``ot.solve(...).value``), as Feydy et al.
"""

from __future__ import annotations

import warnings

import numpy as np
import ot
import pytest
import scipy.sparse as sp
import torch
from numpy.testing import assert_allclose
from scipy.stats import wasserstein_distance

import otdist

LP_METHODS = ("exact", "primal", "dual")


def _dense(plan):
    if sp.issparse(plan):
        return plan.toarray()
    if isinstance(plan, torch.Tensor):
        return (plan.to_dense() if plan.is_sparse else plan).detach().numpy()
    return np.asarray(plan)


def _as_points(n):
    return np.arange(n, dtype=np.float64).reshape(-1, 1)


# ----------------------------------------------------------------------------- test_ot.py


def test_emd_dimension_and_mass_mismatch():
    rng = np.random.RandomState(0)
    x = rng.randn(100, 2)
    m = ot.dist(x, x)
    for method in LP_METHODS:
        with pytest.raises(otdist.InputError):
            otdist.transport(cost=m, u_weights=ot.utils.unif(101), v_weights=ot.utils.unif(101), method=method)
    a = ot.utils.unif(100)
    b = a.copy()
    a[0] = 100
    expected = ot.emd2(a / a.sum(), b, m)  # otdist normalises the weights instead of refusing them
    for method in LP_METHODS:
        assert_allclose(otdist.transport(cost=m, u_weights=a, v_weights=b, method=method).value, expected, rtol=1e-9)


@pytest.mark.parametrize("method", LP_METHODS)
def test_emd2_backends_and_empty_weights(method):
    rng = np.random.RandomState(0)
    x, y = rng.randn(100, 2), rng.randn(100, 2)
    a = ot.utils.unif(100)
    val = ot.emd2(a, a, ot.dist(x, y))
    assert_allclose(otdist.wasserstein(x, y, a, a, p=2, method=method) ** 2, val, rtol=1e-9)
    assert_allclose(otdist.wasserstein(x, y, [], [], p=2, method=method) ** 2, val, rtol=1e-9)
    xt, yt = torch.as_tensor(x), torch.as_tensor(y)
    res = otdist.wasserstein(xt, yt, torch.as_tensor(a), torch.as_tensor(a), p=2, method=method)
    assert res.dtype == torch.float64
    assert_allclose(float(res) ** 2, val, rtol=1e-9)


@pytest.mark.parametrize("dtype", (torch.float32, torch.float64))
def test_emd_emd2_types_devices(dtype):
    rng = np.random.RandomState(0)
    x, y = rng.randn(100, 2), rng.randn(100, 2)
    a = ot.utils.unif(100)
    m = torch.as_tensor(ot.dist(x, y), dtype=dtype)
    ab = torch.as_tensor(a, dtype=dtype)
    res = otdist.transport(cost=m, u_weights=ab, v_weights=ab, method="exact")
    assert res.plan.dtype == dtype and res.plan.device == m.device
    assert res.value.dtype == dtype and res.value.device == m.device


def test_emd2_gradients():
    # POT: the gradient in the weights is the centred dual potential, and scales with the loss.
    rng = np.random.RandomState(0)
    x, y = rng.randn(100, 2), rng.randn(100, 2)
    a = ot.utils.unif(100)
    m = ot.dist(x, y)
    a1 = torch.tensor(a, requires_grad=True)
    b1 = torch.tensor(a, requires_grad=True)
    m1 = torch.tensor(m, requires_grad=True)
    res = otdist.transport(cost=m1, u_weights=a1, v_weights=b1, method="exact")
    res.value.backward()
    assert a1.grad.shape == a1.shape and b1.grad.shape == b1.shape and m1.grad.shape == m1.shape
    f, g = (t.detach().numpy() for t in res.potentials)
    assert np.allclose(a1.grad.numpy(), f - f.mean())
    assert np.allclose(b1.grad.numpy(), g - g.mean())
    assert np.allclose(m1.grad.numpy(), _dense(res.plan))
    # the potentials are an optimal dual of POT's problem: feasible and with POT's value
    assert (f[:, None] + g[None, :] - m).max() < 1e-8
    assert_allclose(a @ f + a @ g, ot.emd2(a, a, m), rtol=1e-9)
    a2, b2, m2 = (torch.tensor(t, requires_grad=True) for t in (a, a, m))
    (10.0 * otdist.transport(cost=m2, u_weights=a2, v_weights=b2, method="exact").value).backward()
    assert np.allclose(10.0 * a1.grad.numpy(), a2.grad.numpy())
    assert np.allclose(10.0 * b1.grad.numpy(), b2.grad.numpy())
    assert np.allclose(10.0 * m1.grad.numpy(), m2.grad.numpy())


@pytest.mark.parametrize("method", LP_METHODS)
@pytest.mark.parametrize("weights", ("uniform", "empty"))
def test_emd_emd2_identity(method, weights):
    # POT's test_emd_emd2 and test_emd_empty: x to itself, the plan is I/n and the cost 0.
    n = 100
    rng = np.random.RandomState(0)
    x = rng.randn(n, 2)
    u = ot.utils.unif(n)
    w = u if weights == "uniform" else []
    res = otdist.transport(x, x, w, w, p=2, method=method)
    plan = _dense(res.plan)
    assert_allclose(plan, np.eye(n) / n, atol=1e-15)
    assert_allclose(plan.sum(1), u)
    assert_allclose(plan.sum(0), u)
    assert_allclose(res.value, 0, atol=1e-15)


def test_warnings():
    # POT warns when numItermax stops the network simplex; otdist warns with its own
    # ConvergenceWarning (or raises its SolverError), naming max_iter.
    n = 100
    a = ot.datasets.make_1D_gauss(n, m=30, s=5)
    b = ot.datasets.make_1D_gauss(n, m=50, s=10)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            otdist.transport(_as_points(n), _as_points(n), a, b, method="exact", max_iter=1)
        except otdist.SolverError as err:
            assert "max_iter" in str(err)
            return
    assert any(issubclass(w.category, otdist.ConvergenceWarning) and "max_iter" in str(w.message) for w in caught)


def test_dual_variables():
    n, m = 500, 600
    mean1, mean2 = 300, 400
    a = ot.datasets.make_1D_gauss(n, m=mean1, s=5)
    b = ot.datasets.make_1D_gauss(m, m=mean2, s=10)
    x, y = _as_points(n), _as_points(m)
    cost = ot.dist(x, y) ** 0.5  # |x - y|: otdist's p = 1
    res = otdist.transport(x, y, a, b, p=1, method="exact")
    swapped = otdist.transport(y, x, b, a, p=1, method="exact")
    np.testing.assert_array_almost_equal(res.value, swapped.value)
    np.testing.assert_almost_equal(res.value, np.abs(mean1 - mean2))  # closed form for these Gaussians
    np.testing.assert_almost_equal((_dense(res.plan) * cost).sum(), res.transport_cost)
    f, g = res.potentials
    np.testing.assert_almost_equal(a @ f + b @ g, res.transport_cost)  # no duality gap
    assert (f[:, None] + g[None, :] - cost).max() < 1e-8
    np.testing.assert_almost_equal(otdist.wasserstein(x[:, 0], y[:, 0], a, b, method="1d"), np.abs(mean1 - mean2))


# ----------------------------------------------------------------------------- test_1d_solver.py


@pytest.mark.parametrize("weighted", (True, False))
def test_emd_1d_emd2_1d(weighted):
    n, m = 20, 30
    rng = np.random.RandomState(0)
    u, v = rng.randn(n, 1), rng.randn(m, 1)
    if weighted:
        w_u = rng.uniform(0.0, 1.0, n)
        w_u /= w_u.sum()
        w_v = rng.uniform(0.0, 1.0, m)
        w_v /= w_v.sum()
        uw, vw = w_u, w_v
    else:
        w_u, w_v, uw, vw = ot.unif(n), ot.unif(m), [], []
    plan_emd, log = ot.emd(w_u, w_v, ot.dist(u, v, metric="sqeuclidean"), log=True)
    res = otdist.transport(u, v, uw, vw, p=2, method="1d")
    assert_allclose(res.transport_cost, log["cost"])
    assert_allclose(otdist.wasserstein(u, v, uw, vw, p=2) ** 2, log["cost"])
    assert_allclose(otdist.wasserstein(u, v, uw, vw, p=1), wasserstein_distance(u[:, 0], v[:, 0], w_u, w_v))
    plan = _dense(res.plan)
    assert_allclose(plan.sum(1), w_u)
    assert_allclose(plan.sum(0), w_v)
    assert_allclose(plan, plan_emd, atol=1e-15)
    with pytest.raises(otdist.InputError):  # POT: ValueError for a non-Minkowski metric
        otdist.wasserstein(u, v, uw, vw, method="1d", metric="cosine")
    with pytest.raises(otdist.InputError):  # POT: AssertionError for 2-D points
        otdist.transport(rng.randn(n, 2), rng.randn(m, 2), [], [], method="1d")


def _pot_1d_histograms(n):
    """POT's 1-D test data: a grid on [0, 5] and two random histograms on it."""
    rng = np.random.RandomState(0)
    x = np.linspace(0, 5, n)
    rho_u, rho_v = np.abs(rng.randn(n)), np.abs(rng.randn(n))
    return x, rho_u / rho_u.sum(), rho_v / rho_v.sum()


def test_wasserstein_1d():
    x, rho_u, rho_v = _pot_1d_histograms(100)
    np.testing.assert_almost_equal(otdist.wasserstein(x, x, rho_u, rho_v, p=1), wasserstein_distance(x, x, rho_u, rho_v))
    np.testing.assert_almost_equal(otdist.wasserstein(x, x + 1, p=2), 1.0)
    # POT's two columns at once (the second is 10x the first): W_2**2 scales by 100.
    res = [otdist.wasserstein(col, col, rho_u, rho_v, p=2) ** 2 for col in (x, 10 * x)]
    np.testing.assert_almost_equal(100 * res[0], res[1], decimal=4)


@pytest.mark.parametrize("dtype", (torch.float32, torch.float64))
def test_wasserstein_1d_type_devices(dtype):
    x, rho_u, rho_v = _pot_1d_histograms(10)
    xb, rho_ub, rho_vb = (torch.as_tensor(t, dtype=dtype) for t in (x, rho_u, rho_v))
    res = otdist.wasserstein(xb, xb, rho_ub, rho_vb, p=1, method="1d")
    assert res.dtype == xb.dtype and res.device == xb.device
    plan = otdist.transport(xb, xb, rho_ub, rho_vb, p=1, method="1d").plan
    assert plan.dtype == xb.dtype and plan.device == xb.device


def test_wasserstein_1d_plan():
    rng = np.random.RandomState(0)
    n, m = 10, 4
    x, y = rng.randn(n, 1), rng.randn(m, 1)
    a = rng.uniform(0, 1, n)
    a /= a.sum()
    b = rng.uniform(0, 1, m)
    b /= b.sum()
    plan_emd = ot.emd(a, b, ot.dist(x, y))
    assert_allclose(_dense(otdist.transport(x, y, a, b, p=2, method="1d").plan), plan_emd, atol=1e-05)


# ----------------------------------------------------------------------------- test_bregman.py


def _cloud(n=100, seed=0):
    return np.random.RandomState(seed).randn(n, 2)


def test_sinkhorn():
    x = _cloud()
    u = ot.utils.unif(100)
    plan = otdist.sinkhorn(x, x, epsilon=1.0, p=2, tol=1e-10).plan()
    assert_allclose(u, plan.sum(1), atol=1e-05)
    assert_allclose(u, plan.sum(0), atol=1e-05)
    with pytest.raises(otdist.ConvergenceError):  # POT: a UserWarning at numItermax=1
        otdist.sinkhorn(x, x, epsilon=1.0, p=2, max_iter=1)


def test_convergence_warning():
    n = 100
    a1 = ot.datasets.make_1D_gauss(n, m=30, s=10)
    a2 = ot.datasets.make_1D_gauss(n, m=40, s=10)
    with pytest.raises(otdist.ConvergenceError):
        otdist.sinkhorn(_as_points(n), _as_points(n), a1, a2, epsilon=1.0, p=2, max_iter=1)
    with pytest.raises(otdist.ConvergenceError):
        otdist.wasserstein(_as_points(n), _as_points(n), a1, a2, p=2, method="sinkhorn", epsilon=1.0, max_iter=1)


def test_not_implemented_method():
    x = _cloud(10, seed=42)
    with pytest.raises(otdist.InputError):
        otdist.wasserstein(x, x, method="new_method")
    with pytest.raises(otdist.InputError):
        otdist.sinkhorn(x, x, epsilon=0.01, backend="new_method")


def test_nan_warning():
    # POT warns about NaN at reg=0; otdist refuses epsilon=0.
    n = 100
    a1 = ot.datasets.make_1D_gauss(n, m=30, s=10)
    a2 = ot.datasets.make_1D_gauss(n, m=40, s=10)
    with pytest.raises(otdist.InputError):
        otdist.sinkhorn(_as_points(n), _as_points(n), a1, a2, epsilon=0, p=2)


def test_sinkhorn_stabilization():
    # POT checks two of its solvers agree at reg=1e-5 on dist0(100) (both underflow to 0.0 there);
    # adapted: otdist's value must be the entropic one, between OT_0 and OT_0 + eps min(H(a), H(b)),
    # or, if its tolerance is not reached within max_iter, a ConvergenceError saying so (never a
    # silently unconverged value).
    n = 100
    a1 = ot.datasets.make_1D_gauss(n, m=30, s=10)
    a2 = ot.datasets.make_1D_gauss(n, m=40, s=10)
    eps = 1e-5
    try:
        res = otdist.sinkhorn(_as_points(n), _as_points(n), a1, a2, epsilon=eps, p=2)
    except otdist.ConvergenceError as err:
        assert "marginal error" in str(err) and "max_iter" in str(err)
        return
    ot0 = ot.emd2(a1, a2, ot.utils.dist0(n))
    entropy = min(-(w * np.log(w)).sum() for w in (a1, a2))
    slack = 1e-6  # POT's atol
    assert ot0 - slack <= res.transport_cost <= res.entropic_cost + slack <= ot0 + eps * entropy + 2 * slack


@pytest.mark.parametrize("batched", (True, False))
def test_sinkhorn_multi_b(batched):
    n = 10
    rng = np.random.RandomState(0)
    x = rng.randn(n, 2)
    u = ot.utils.unif(n)
    b = rng.rand(n, 3)
    b = b / np.sum(b, 0, keepdims=True)
    m = ot.dist(x, x)
    expected = [ot.sinkhorn2(u, b[:, k], m, 0.1, stopThr=1e-10) for k in range(3)]
    if batched:
        xs = np.stack([x] * 3)
        got = otdist.sinkhorn(xs, xs, np.stack([u] * 3), b.T, epsilon=0.1, p=2).transport_cost
    else:
        got = [otdist.sinkhorn(x, x, u, b[:, k], epsilon=0.1, p=2).transport_cost for k in range(3)]
    assert_allclose(got, expected, atol=1e-4)


def test_sinkhorn_empty():
    x = _cloud()
    u = ot.utils.unif(100)
    plan = otdist.sinkhorn(x, x, [], [], epsilon=1.0, p=2, tol=1e-10).plan()
    assert_allclose(u, plan.sum(1), atol=1e-05)
    assert_allclose(u, plan.sum(0), atol=1e-05)


@pytest.mark.parametrize("container", ("numpy", "torch"))
def test_sinkhorn_variants(container):
    x = _cloud()
    u = ot.utils.unif(100)
    expected = ot.sinkhorn(u, u, ot.dist(x, x), 1, method="sinkhorn_log", stopThr=1e-10)
    points = torch.as_tensor(x) if container == "torch" else x
    plan = otdist.sinkhorn(points, points, epsilon=1.0, p=2, tol=1e-10).plan()
    assert_allclose(_dense(plan), expected, atol=1e-05)


@pytest.mark.parametrize("p, metric", ((2, "sqeuclidean"), (1, "euclidean")))
def test_empirical_sinkhorn(p, metric):
    n = 10
    a, b = ot.unif(n), ot.unif(n)
    x_s = np.reshape(1.0 * np.arange(n), (n, 1))
    x_t = np.reshape(1.0 * np.arange(0, n), (n, 1))
    m = ot.dist(x_s, x_t, metric=metric)
    for reg in (1.0, 0.1):
        expected = ot.sinkhorn(a, b, m, reg)
        res = otdist.sinkhorn(x_s, x_t, epsilon=reg, p=p)
        plan = res.plan()
        assert_allclose(plan.sum(1), expected.sum(1), atol=1e-05)
        assert_allclose(plan.sum(0), expected.sum(0), atol=1e-05)
    assert_allclose(otdist.sinkhorn(x_s, x_t, epsilon=1.0, p=p).transport_cost, ot.sinkhorn2(a, b, m, 1), atol=1e-05)


@pytest.mark.parametrize("p, metric", ((2, "sqeuclidean"), (1, "euclidean")))
def test_geomloss_solver(p, metric):
    # POT compares its GeomLoss wrapper's plan with its own (atol 1e-3); so does otdist's backend.
    n = 10
    x_s = np.reshape(1.0 * np.arange(n), (n, 1))
    x_t = np.reshape(1.0 * np.arange(0, n), (n, 1))
    expected = ot.sinkhorn(ot.unif(n), ot.unif(n), ot.dist(x_s, x_t, metric=metric), 1)
    plan = otdist.sinkhorn(x_s, x_t, epsilon=1.0, p=p, backend="geomloss").plan()
    assert_allclose(plan, expected, atol=1e-03)


def _divergence_inputs():
    n = 10
    a = np.linspace(1, n, n)
    a /= a.sum()
    b = ot.unif(n)
    x_s = np.reshape(np.arange(n, dtype=np.float64), (n, 1))
    x_t = np.reshape(np.arange(0, n * 2, 2, dtype=np.float64), (n, 1))
    return a, b, x_s, x_t


def test_empirical_sinkhorn_divergence():
    a, b, x_s, x_t = _divergence_inputs()

    def ot_eps(u, v, wu, wv):
        return ot.solve(ot.dist(u, v), wu, wv, reg=1.0, max_iter=100_000, tol=1e-12).value

    expected = ot_eps(x_s, x_t, a, b) - 0.5 * ot_eps(x_s, x_s, a, a) - 0.5 * ot_eps(x_t, x_t, b, b)
    got = otdist.sinkhorn_divergence(x_s, x_t, a, b, epsilon=1.0, p=2)
    got_torch = otdist.sinkhorn_divergence(*(torch.as_tensor(t) for t in (x_s, x_t, a, b)), epsilon=1.0, p=2)
    assert_allclose(float(got_torch), got, atol=1e-05)
    assert_allclose(got, expected, atol=1e-05)


def test_empirical_sinkhorn_divergence_gradient():
    ab, bb, xs, xt = (torch.tensor(t, requires_grad=True) for t in _divergence_inputs())
    otdist.sinkhorn_divergence(xs, xt, ab, bb, epsilon=1.0, p=2).backward()
    for t in (ab, bb, xs, xt):
        assert t.grad is not None and bool(torch.isfinite(t.grad).all())
