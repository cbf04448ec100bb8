"""Network simplex, primal LP and dual LP: against POT and scipy, and against each other."""

import numpy as np
import ot
import pytest
import scipy.stats
import torch
from scipy.spatial.distance import cdist
from hypothesis import given
from hypothesis import strategies as st

import otdist
from tests.conftest import weighted_sample

AGREE = 1e-8  # primal = dual = network simplex, and duality gap, absolute (costs are O(1)-O(100))
LP_METHODS = ["exact", "primal", "dual"]

clouds = st.integers(1, 3).flatmap(lambda d: st.tuples(weighted_sample(d=d, max_size=20), weighted_sample(d=d, max_size=20)))


@given(clouds)
def test_three_solvers_agree_with_certificates(pair):
    (x, a), (y, b) = pair
    results = {m: otdist.transport(x, y, a, b, method=m) for m in LP_METHODS}
    expected = ot.emd2(a / a.sum(), b / b.sum(), cdist(x, y))
    scale = max(1.0, expected)
    for res in results.values():
        assert res.value == pytest.approx(expected, abs=AGREE * scale)
        assert abs(res.duality_gap) <= AGREE * scale
        f, g = res.potentials
        cost = cdist(x, y)
        assert (f[:, None] + g[None, :] - cost).max() <= AGREE * scale
        np.testing.assert_allclose(res.plan.sum(1), a / a.sum(), atol=1e-9)
        np.testing.assert_allclose(res.plan.sum(0), b / b.sum(), atol=1e-9)
        assert res.plan.min() >= 0


@given(clouds)
def test_matches_scipy_wasserstein_distance_nd(pair):
    (x, a), (y, b) = pair
    if x.shape[1] == 1:  # scipy's nd function needs 2-D arrays to take its LP path
        x, y = np.hstack([x, np.zeros_like(x)]), np.hstack([y, np.zeros_like(y)])
    expected = scipy.stats.wasserstein_distance_nd(x, y, a, b)
    # scipy solves the LP with HiGHS at its default tolerances (1e-7): its value can be above the
    # optimum by ~1e-7 of the largest cost (seen: 0.062500005 where the optimum is 0.062499995).
    slack = 1e-7 * max(cdist(x, y).max(), 1e-300) + 1e-12
    for method in LP_METHODS:
        assert otdist.wasserstein(x, y, a, b, method=method) == pytest.approx(expected, rel=1e-7, abs=slack)


@pytest.mark.parametrize("method", ["primal", "dual"])
def test_arc_generation_equals_full_lp(rng, method):
    x, y = rng.normal(size=(40, 2)), rng.normal(size=(35, 2)) + 0.5
    a, b = rng.random(40), rng.random(35)
    full = otdist.transport(x, y, a, b, method=method, generation=False)
    generated = otdist.transport(x, y, a, b, method=method)
    assert generated.value == pytest.approx(full.value, abs=AGREE)
    assert generated.n_iter is not None and generated.converged


@pytest.mark.parametrize("method", LP_METHODS)
@pytest.mark.parametrize("p", [1, 2, 3])
@pytest.mark.parametrize("metric", ["euclidean", "cityblock", "chebyshev"])
def test_translation_is_the_norm_of_the_shift(rng, method, p, metric):
    x = rng.normal(size=(25, 3))
    shift = np.array([0.3, -1.2, 0.5])
    norm = {"euclidean": np.linalg.norm(shift), "cityblock": np.abs(shift).sum(), "chebyshev": np.abs(shift).max()}[metric]
    assert otdist.wasserstein(x, x + shift, p=p, method=method, metric=metric) == pytest.approx(norm, rel=1e-9)


@pytest.mark.parametrize("method", LP_METHODS)
def test_permutation_invariance_and_precomputed_cost(rng, method):
    x, y = rng.normal(size=(20, 2)), rng.normal(size=(15, 2))
    a, b = rng.random(20), rng.random(15)
    perm = rng.permutation(20)
    w = otdist.wasserstein(x, y, a, b, method=method)
    assert otdist.wasserstein(x[perm], y, a[perm], b, method=method) == pytest.approx(w, abs=AGREE)
    res = otdist.transport(u_weights=a, v_weights=b, cost=cdist(x, y), method=method)
    assert res.value == pytest.approx(w, abs=AGREE)


def test_minkowski_and_callable_metrics(rng):
    x, y = rng.normal(size=(12, 3)), rng.normal(size=(10, 3))
    expected = ot.emd2([], [], cdist(x, y, "minkowski", p=3))
    assert otdist.wasserstein(x, y, metric="minkowski", minkowski_p=3) == pytest.approx(expected, abs=AGREE)
    cost = lambda s, t: np.abs(s[:, None, :] - t[None, :, :]).sum(-1)  # noqa: E731
    assert otdist.wasserstein(x, y, metric=cost) == pytest.approx(otdist.wasserstein(x, y, metric="cityblock"), abs=AGREE)


@given(clouds, st.sampled_from([1.0, 2.0]))
def test_metric_axioms(pair, p):
    (x, a), (y, b) = pair
    z = x[::-1] + 0.5
    w = lambda s, t, ws, wt: otdist.wasserstein(s, t, ws, wt, p=p, method="exact")  # noqa: E731
    assert w(x, y, a, b) == pytest.approx(w(y, x, b, a), abs=AGREE)
    # W_p^p (the LP objective) is 0 up to rounding; its p-th root magnifies that rounding (1e-17 -> 4e-9 for p=2).
    assert w(x, x, a, a) ** p == pytest.approx(0.0, abs=1e-12)
    assert w(x, y, a, b) <= w(x, z, a, a[::-1]) + w(z, y, a[::-1], b) + 1e-9


def test_parallel_lines_planted():
    from otdist.experiments.seeds import parallel_lines

    for theta in [0.0, 0.25, 1.0, 3.0]:
        x, y, p_hist, q_hist = parallel_lines(theta)
        for method in LP_METHODS:
            assert otdist.wasserstein(x, y, method=method) == pytest.approx(theta, abs=1e-12)
        if theta == 0:
            assert otdist.js(p_hist, q_hist) == 0.0 and otdist.kl(p_hist, q_hist) == 0.0
        else:
            assert otdist.js(p_hist, q_hist) == np.log(2) and otdist.kl(p_hist, q_hist) == np.inf


@pytest.mark.parametrize("method", LP_METHODS)
def test_torch_gradients_by_envelope_theorem(method):
    torch.manual_seed(0)
    x = torch.randn(6, 2, dtype=torch.float64, requires_grad=True)
    y = torch.randn(5, 2, dtype=torch.float64)
    w = otdist.wasserstein(x, y, p=2, method=method)
    assert isinstance(w, torch.Tensor)
    w.backward()
    # Finite differences of the exact value (the optimal plan is locally constant).
    eps, xn = 1e-6, x.detach().numpy()
    numeric = np.zeros_like(xn)
    for idx in np.ndindex(*xn.shape):
        for sign in (1, -1):
            shifted = xn.copy()
            shifted[idx] += sign * eps
            numeric[idx] += sign * otdist.wasserstein(shifted, y.numpy(), p=2, method="exact") / (2 * eps)
    np.testing.assert_allclose(x.grad.numpy(), numeric, rtol=1e-5, atol=1e-7)


def test_size_guard_names_cheaper_methods(rng):
    x = rng.normal(size=(50, 2))
    with pytest.raises(ValueError, match='"sinkhorn", "sliced" or "neural"'):
        otdist.wasserstein(x, x, method="dual", max_size=100)


def test_degenerate_problem_where_the_interior_point_method_gives_no_verdict():
    tiny = 1.1920929e-07
    x = np.array([[0.0, tiny], [tiny, tiny], [tiny, tiny], [tiny, tiny]])
    y = np.array([[0.0, 1.0], [5.0, 1.0], [1.0, 1.0], [1.0, 1.0]])
    expected = ot.emd2([], [], cdist(x, y))
    for method in ("primal", "dual"):
        assert otdist.wasserstein(x, y, method=method) == pytest.approx(expected, abs=AGREE)
