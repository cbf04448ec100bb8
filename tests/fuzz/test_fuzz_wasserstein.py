"""Fuzz: wasserstein/transport with the exact methods ("auto", "1d", "exact", "primal", "dual") and "sliced".

Every call on a drawn case either returns a finite value of the promised type that agrees with an
oracle (POT's network simplex ``ot.emd2``, ``ot.wasserstein_1d``, ``scipy.stats.wasserstein_distance``)
or raises otdist's own error -- and then only where the input is invalid.
"""

from __future__ import annotations

import numpy as np
import ot
import pytest
import scipy.sparse as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import wasserstein_distance
from strategies import (
    FLOAT_KINDS,
    LP_RTOL,
    cases,
    check_scalar,
    emd_cost,
    entropy,
    euclidean_cost,
    examples,
    support,
)

import otdist

EXACT_METHODS = ("auto", "exact", "primal", "dual")
#: epsilon / max C of the high-dimensional Sinkhorn case: within float32's reach (see test_fuzz_sinkhorn).
SINKHORN_REL_EPS = 1e-2
ORDERS = st.sampled_from((1, 1.5, 2))


def _cost_tolerance(case, p, oracle):
    """LP accuracy (relative), cost rounding in the compute precision, output rounding of W_p**p."""
    return LP_RTOL * abs(oracle) + case.cost_rounding(p) + 2 * p * case.eps_out * abs(oracle) + case.tiny_out


def _call_or_input_error(case, function):
    if not case.valid:
        with pytest.raises(otdist.InputError):
            function()
        return None
    return function()


@pytest.mark.parametrize("method", EXACT_METHODS)
@settings(max_examples=examples())
@given(case=cases(), p=ORDERS)
def test_exact_methods_agree_with_pot_emd2(method, case, p):
    value = _call_or_input_error(case, lambda: otdist.wasserstein(case.x, case.y, case.a, case.b, p=p, method=method))
    if value is None:
        return
    w = check_scalar(value, case.container, case.dtype)
    oracle = emd_cost(case, p)
    assert w >= 0
    assert abs(w ** p - oracle) <= _cost_tolerance(case, p, oracle), (w ** p, oracle)


@settings(max_examples=examples())
@given(case=cases(dims=(1,)), p=st.sampled_from((1, 1.5, 2, 3)))
def test_one_dimensional_agrees_with_scipy_and_pot_wasserstein_1d(case, p):
    value = _call_or_input_error(case, lambda: otdist.wasserstein(case.x, case.y, case.a, case.b, p=p, method="1d"))
    if value is None:
        return
    w = check_scalar(value, case.container, case.dtype)
    u, v = case.x64[:, 0], case.y64[:, 0]
    # POT returns W_p**p; its own rounding is that of a float64 sum over n + m quantile pieces.
    oracle = float(ot.wasserstein_1d(u, v, case.a64, case.b64, p=p))
    assert abs(w ** p - oracle) <= _cost_tolerance(case, p, oracle), (w ** p, oracle)
    if p == 1:
        reference = wasserstein_distance(u, v, case.a64, case.b64)
        assert abs(w - reference) <= _cost_tolerance(case, 1, reference)


def _dense(plan):
    if sp.issparse(plan):
        return plan.toarray()
    if isinstance(plan, torch.Tensor):
        plan = plan.to_dense() if plan.is_sparse else plan
        return plan.detach().to(torch.float64).numpy()
    return np.asarray(plan, dtype=np.float64)


@pytest.mark.parametrize("method", ("1d", "exact", "primal", "dual"))
@settings(max_examples=examples(0.6))
@given(case=cases(kinds=FLOAT_KINDS), p=ORDERS)
def test_transport_plan_is_feasible_and_its_cost_is_certified(method, case, p):
    if method == "1d" and case.x64.shape[1] != 1:
        with pytest.raises(otdist.InputError):
            otdist.transport(case.x, case.y, case.a, case.b, p=p, method=method)
        return
    res = _call_or_input_error(case, lambda: otdist.transport(case.x, case.y, case.a, case.b, p=p, method=method))
    if res is None:
        return
    oracle = emd_cost(case, p)
    tol = _cost_tolerance(case, p, oracle)
    cost = check_scalar(res.transport_cost, case.container, case.dtype)
    value = check_scalar(res.value, case.container, case.dtype)
    assert abs(cost - oracle) <= tol
    assert abs(value ** p - cost) <= tol
    plan = _dense(res.plan)
    c = euclidean_cost(case.x64, case.y64, p)
    mass_tol = LP_RTOL + 4 * max(case.eps_c, case.eps_array) * max(plan.shape) + case.tiny_out
    assert plan.min() >= -mass_tol
    np.testing.assert_allclose(plan.sum(1), case.a64, atol=mass_tol)
    np.testing.assert_allclose(plan.sum(0), case.b64, atol=mass_tol)
    assert abs((plan * c).sum() - oracle) <= tol + mass_tol * c.max()
    if res.potentials is not None:
        f, g = (np.asarray(_dense(t), dtype=np.float64) for t in res.potentials)
        i, j = support(case.a64), support(case.b64)
        rounding = tol + 2 * case.eps_array * (np.abs(f).max() + np.abs(g).max())
        assert np.all(f[i, None] + g[None, j] <= c[np.ix_(i, j)] + rounding), "potentials violate f_i + g_j <= C_ij"
        assert abs(case.a64 @ f + case.b64 @ g - oracle) <= rounding + mass_tol * np.abs(np.r_[f, g]).max()
    if res.duality_gap is not None:
        assert abs(res.duality_gap) <= tol


@pytest.mark.parametrize("method", ("exact", "primal", "dual"))
@settings(max_examples=examples(0.6))
@given(n=st.integers(1, 7), m=st.integers(1, 7), seed=st.integers(0, 2**32 - 1), shift=st.floats(0, 1e4))
def test_negative_user_cost_is_accepted_and_value_is_the_transport_cost(method, n, m, seed, shift):
    # Decided convention: a user cost matrix may have negative entries for the exact/LP methods;
    # value is then the transport cost itself.  POT's network simplex flags some negative costs as
    # infeasible, so the oracle solves C - min C and adds min C back (the plan has mass one).
    rng = np.random.default_rng(seed)
    cost = rng.uniform(-1e4, 1e4, size=(n, m))
    cost[0, 0] = -shift - 1.0
    a, b = rng.random(n) + 1e-3, rng.random(m) + 1e-3
    res = otdist.transport(None, None, a, b, method=method, cost=cost)
    oracle = float(ot.emd2(a / a.sum(), b / b.sum(), cost - cost.min())) + cost.min()
    value = check_scalar(res.value, "numpy", "float64")
    tol = LP_RTOL * np.abs(cost).max()
    assert abs(check_scalar(res.transport_cost, "numpy", "float64") - oracle) <= tol
    assert abs(value - oracle) <= tol


@settings(max_examples=examples())
@given(case=cases(dims=(1, 2, 3)), p=ORDERS, n_projections=st.integers(1, 30), seed=st.integers(0, 2**31))
def test_sliced_is_at_most_wasserstein_and_exact_in_one_dimension(case, p, n_projections, seed):
    value = _call_or_input_error(case, lambda: otdist.wasserstein(
        case.x, case.y, case.a, case.b, p=p, method="sliced", n_projections=n_projections, seed=seed))
    if value is None:
        return
    sw = check_scalar(value, case.container, case.dtype)
    oracle = emd_cost(case, p)
    tol = _cost_tolerance(case, p, oracle)
    # Each projection is 1-Lipschitz, so W_p of every slice is at most W_p: SW_p**p <= W_p**p.
    assert sw ** p <= oracle + tol
    if case.x64.shape[1] == 1:  # every direction is +-1: the slices are the measures themselves
        assert abs(sw ** p - oracle) <= tol


@pytest.mark.parametrize("d", (64, 512))
@pytest.mark.parametrize("method", ("exact", "sliced", "sinkhorn"))
@settings(max_examples=examples(0.2))
@given(case=st.data())
def test_high_dimension(d, method, case):
    case = case.draw(cases(dims=(d,), max_n=4, kinds=FLOAT_KINDS))
    c_max = float(euclidean_cost(case.x64, case.y64, 1).max())
    options = {"epsilon": SINKHORN_REL_EPS * c_max if c_max > 0 else 1.0} if method == "sinkhorn" else {}
    try:
        value = _call_or_input_error(case, lambda: otdist.wasserstein(case.x, case.y, case.a, case.b, method=method,
                                                                      **options))
    except otdist.ConvergenceError:
        # Sinkhorn's documented answer where tol is not reached within max_iter: a plan within e^(-27) of a
        # permutation (two points per side, cost gaps of 27 epsilon) converges at a rate within 1e-11 of 1.
        assert method == "sinkhorn"
        return
    if value is None:
        return
    w = check_scalar(value, case.container, case.dtype)
    oracle = emd_cost(case, 1)
    tol = _cost_tolerance(case, 1, oracle)
    if method == "exact":
        assert abs(w - oracle) <= tol
    elif method == "sliced":
        assert w <= oracle + tol
    else:  # OT_0 <= <P_eps, C> <= OT_0 + eps min(H(a), H(b)), with eps = SINKHORN_REL_EPS max C
        marginal = 4 * case.sinkhorn_tol * c_max
        slack = tol + marginal + SINKHORN_REL_EPS * c_max * min(entropy(case.a64), entropy(case.b64))
        assert oracle - tol - marginal <= w <= oracle + slack
