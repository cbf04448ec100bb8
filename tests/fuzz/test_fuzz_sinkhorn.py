"""Fuzz: sinkhorn, sinkhorn_divergence and method="sinkhorn", epsilon from 1e-6 to 1e3 times the cost scale.

Oracles: the sandwich OT_0 <= <P_eps, C> <= OT_eps <= OT_0 + eps min(H(a), H(b)) with OT_0 from POT's
network simplex (valid at every epsilon), and POT's converged log-domain Sinkhorn
(``ot.solve(M, a, b, reg=eps)``: ``value_linear`` = ``transport_cost``, ``value`` = ``entropic_cost``)
where it converges (epsilon >= 5% of the cost scale).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from strategies import (
    Case,
    EPS32,
    EPS64,
    SINKHORN_TOL,
    FLOAT_KINDS,
    cases,
    check_scalar,
    emd_cost,
    entropy,
    euclidean_cost,
    examples,
    pot_entropic,
)

import otdist

ORDERS = st.sampled_from((1, 2))
TINY_TO_HUGE = st.floats(-6, 3).map(lambda e: 10.0 ** e)
#: POT's log-domain Sinkhorn reaches 1e-13 on these small problems from this epsilon up.
POT_CONVERGES = st.floats(np.log10(0.05), 3).map(lambda e: 10.0 ** e)
#: How far <P, C> may move per unit of L1 marginal error, in units of max C (with headroom).
MARGINAL_TO_COST = 4
F64_KINDS = (("numpy", "float64"), ("torch", "float64"))
#: Divergence of a permuted copy, in units of max C - min C (decided bound).
PERMUTED_LOW, PERMUTED_HIGH = -1e-12, 1e-10
#: Below this epsilon / max C, float32 iterations cannot reach their tolerance 1e-4: the exponent
#: (f + g - C) / eps carries a rounding of eps32 max C / eps, so the plan is off by that much
#: (eps32 / 1e-4 = 1.2e-3, with 8x headroom).  There a ConvergenceError is an honest answer; in
#: float64 (n <= 20, the decided range) every epsilon must converge.
FLOAT32_RESOLVABLE = 8 * EPS32 / SINKHORN_TOL["float32"]
#: Rounding of an entropic value, in ulps of epsilon (of the compute precision).
ENTROPIC_ULPS = 4
#: POT's own float64 rounding of OT_eps, in ulps of eps log(n m) + max C, is POT_ULPS + n + m: its plan
#: exp(M / eps + log u + log v) carries the rounding of log u and log v, each a log-sum-exp over m (or n)
#: terms (one ulp per term of the sum), plus that of the exponent and of exp; its KL sums P log(P / a b)
#: with P unnormalised by that rounding, which moves the value at first order (eps per unit of mass).
POT_ULPS = 4


def _solve(case, rel, call):
    """call(), or None where it raises ConvergenceError: the documented answer when the tolerance is not
    reached within max_iter (hard float64 problems at small epsilon, and float32 below
    FLOAT32_RESOLVABLE, where it cannot be reached at all).  Above FLOAT32_RESOLVABLE a float32 problem
    must converge."""
    if case.eps_c != EPS64 and rel >= FLOAT32_RESOLVABLE:
        return call()
    try:
        return call()
    except otdist.ConvergenceError:
        return None


def _epsilon(case, rel: float, p: float, relative: bool):
    """(epsilon passed, the absolute epsilons allowed, max C, whether an InputError is due).

    A relative epsilon is a fraction of the cost scale: max C - min C (documented) or max C.  When
    every cost is equal the plan is a (x) b whatever epsilon: the fraction used as is, or a refusal.
    """
    cost = euclidean_cost(case.x64, case.y64, p)
    c_max = float(cost.max())
    if relative:
        spread = c_max - float(cost.min())
        allowed = {rel * spread, rel * c_max} if spread > 0 else {rel}
        return rel, allowed, c_max, not case.valid
    absolute = rel * c_max if c_max > 0 else rel
    return absolute, {absolute}, c_max, not case.valid


def _slack(case, p, c_max, *values):
    return (MARGINAL_TO_COST * case.sinkhorn_tol * c_max + case.cost_rounding(p)
            + 2 * p * case.eps_out * max(abs(v) for v in values) + case.tiny_out)


def _float16_case(x, y, a) -> Case:
    """A float16 NumPy case, uniform b, as the library sees it in float64."""
    x, y, a = (np.array(t, dtype=np.float16) for t in (x, y, a))
    a64 = a.astype(np.float64)
    return Case("numpy", "float16", x, y, a, None, x.astype(np.float64), y.astype(np.float64), a64 / a64.sum(),
                np.full(len(y), 1.0 / len(y)))


#: Zero-weight rows whose float32 kernel rows, times the cost, overflowed: <P, C> came back NaN.
ZERO_WEIGHT_ROWS = _float16_case(
    [[35.34, -4.418], [0, 0], [0, 0], [0, 35.34], [0, 0], [0, 0], [0, -17.67], [35.34, 0]],
    [[0, 17.67], [0, -35.34], [0, 35.34], [35.34, -4.418], [35.34, -4.418], [35.34, -30.94]],
    [0, 0, 0.1, 1.0, 0, 0, 0.4531, 0])

#: float16 input: the results are rounded to float16 before they become Python floats (value ** 2 and
#: transport_cost then differ by float16's rounding, not float64's).
_X16, _Y16 = (np.array(t, dtype=np.float16)[:, None] for t in ([0.9688, -0.625, 0, -0.625, 0, 0], [0, 0, 0.9688, 0, 0, 0]))
_A16, _B16 = np.array([0, 0, 0, 1, 0, 0], dtype=np.float16), np.array([0, 0, 1, 0, 0, 1], dtype=np.float16)
FLOAT16_ROUNDING = Case("numpy", "float16", _X16, _Y16, _A16, _B16, _X16.astype(np.float64), _Y16.astype(np.float64),
                        _A16.astype(np.float64), _B16.astype(np.float64) / 2)

#: A zero-weight row 100 eps from the only column of positive weight: its kernel row, divided by its
#: denormal float32 mass, overflowed in the columns of zero weight, and inf * 0 made <P, C> NaN.
_XD, _YD = np.zeros((4, 3), dtype=np.float16), np.zeros((5, 3), dtype=np.float16)
_XD[1, 2] = _YD[0, 2] = 0.0005774
_AD, _BD = np.array([0, 0, 0, 1], dtype=np.float16), np.array([0, 0, 0, 0, 1], dtype=np.float16)
ZERO_WEIGHT_COLUMNS = Case("numpy", "float16", _XD, _YD, _AD, _BD, *(t.astype(np.float64) for t in (_XD, _YD, _AD, _BD)))


@settings(max_examples=examples(2))
@given(case=cases(), rel=TINY_TO_HUGE, p=ORDERS, relative=st.booleans())
@example(case=ZERO_WEIGHT_ROWS, rel=10.0 ** -4.21875, p=1, relative=False)
@example(case=ZERO_WEIGHT_COLUMNS, rel=0.01, p=1, relative=False)
@example(case=FLOAT16_ROUNDING, rel=1.0, p=2, relative=False)
def test_sinkhorn_is_sandwiched_between_the_exact_and_the_entropic_bound(case, rel, p, relative):
    epsilon, allowed, c_max, invalid = _epsilon(case, rel, p, relative)
    call = lambda: otdist.sinkhorn(case.x, case.y, case.a, case.b, epsilon=epsilon, p=p, relative=relative)  # noqa: E731
    if invalid:
        with pytest.raises(otdist.InputError):
            call()
        return
    try:
        res = _solve(case, rel, call)
    except otdist.InputError:
        assert relative and allowed == {rel}, "a valid problem was refused"
        return
    if res is None:
        return
    eps = res.epsilon
    # the cost scale is computed in the compute precision
    assert any(abs(eps - e) <= 4 * case.eps_c * e + rel * case.cost_rounding(p) for e in allowed), (eps, allowed)
    tc = check_scalar(res.transport_cost, case.container, case.dtype)
    ec = check_scalar(res.entropic_cost, case.container, case.dtype)
    value = check_scalar(res.value, case.container, case.dtype)
    assert res.converged
    ot0 = emd_cost(case, p)
    bound = ot0 + eps * min(entropy(case.a64), entropy(case.b64))
    # the entropic term eps KL(P || a (x) b) is rounded in proportion to eps
    slack = _slack(case, p, c_max, ot0, bound) + 4 * case.eps_c * eps * (1 + np.log(len(case.a64) * len(case.b64)))
    assert ot0 - slack <= tc, (tc, ot0)
    assert tc <= ec + slack, (tc, ec)
    assert ec <= bound + slack, (ec, bound)
    # value and tc are each rounded to the output precision (half an ulp, eps / 2 relative): value ** p
    # carries p times the relative rounding of value. NumPy scalars are rounded in the arrays' dtype (float16
    # input: float16) before they become Python floats, so that dtype's eps applies.
    rounding = max(case.eps_out, case.eps_array)
    assert abs(value ** p - tc) <= slack + (p + 1) / 2 * rounding * max(value ** p, abs(tc))


@settings(max_examples=examples())
@given(case=cases(kinds=FLOAT_KINDS), rel=POT_CONVERGES, p=ORDERS)
def test_sinkhorn_agrees_with_converged_pot(case, rel, p):
    epsilon, (eps,), c_max, invalid = _epsilon(case, rel, p, False)
    if invalid:
        return
    res = otdist.sinkhorn(case.x, case.y, case.a, case.b, epsilon=epsilon, p=p)
    linear, entropic = pot_entropic(case.x64, case.y64, case.a64, case.b64, p, eps)
    tc = check_scalar(res.transport_cost, case.container, case.dtype)
    ec = check_scalar(res.entropic_cost, case.container, case.dtype)
    # OT_eps carries eps KL, up to eps log(n m) in size, whose rounding counts too (ours and POT's).
    log_nm = np.log(len(case.a64) * len(case.b64)) + 1
    slack = (_slack(case, p, c_max, linear, entropic) + 2 * case.eps_c * eps * log_nm
             + (POT_ULPS + len(case.a64) + len(case.b64)) * EPS64 * (eps * log_nm + c_max))
    assert abs(tc - linear) <= slack, (tc, linear)
    assert abs(ec - entropic) <= slack, (ec, entropic)


@settings(max_examples=examples(2))
@given(case=cases(kinds=F64_KINDS, min_n=1), rel=TINY_TO_HUGE, p=ORDERS, data=st.data())
def test_divergence_of_a_permuted_copy_is_zero(case, rel, p, data):
    perm = np.array(data.draw(st.permutations(range(case.x64.shape[0]))))
    if case.container == "torch":
        perm = torch.as_tensor(perm)
    y = case.x[perm]
    b = None if case.a is None or len(case.a) == 0 else case.a[perm]
    c = euclidean_cost(case.x64, case.x64, p)
    epsilon = rel * c.max() if c.max() > 0 else rel
    if case.a64 is None:
        with pytest.raises(otdist.InputError):
            otdist.sinkhorn_divergence(case.x, y, case.a, b, epsilon=epsilon, p=p)
        return
    value = _solve(case, rel, lambda: otdist.sinkhorn_divergence(case.x, y, case.a, b, epsilon=epsilon, p=p))
    if value is None:
        return
    value = check_scalar(value, case.container, case.dtype)
    spread = c.max() - c.min()
    # Entropic values carry a rounding of a few ulps of epsilon (sum_j b_j = 1 only to rounding).
    rounding = ENTROPIC_ULPS * case.eps_c * epsilon
    assert PERMUTED_LOW * spread - rounding <= value <= PERMUTED_HIGH * spread + rounding, (value, spread)


@settings(max_examples=examples())
@given(case=cases(kinds=FLOAT_KINDS), rel=POT_CONVERGES, p=ORDERS)
def test_divergence_agrees_with_three_converged_pot_problems(case, rel, p):
    epsilon, (eps,), c_max, invalid = _epsilon(case, rel, p, False)
    if invalid:
        return
    value = check_scalar(otdist.sinkhorn_divergence(case.x, case.y, case.a, case.b, epsilon=epsilon, p=p),
                         case.container, case.dtype)
    # S_eps = OT_eps(a, b) - OT_eps(a, a)/2 - OT_eps(b, b)/2 with OT_eps = POT's ``value`` (not sinkhorn2's
    # ``value_linear``, which POT's empirical_sinkhorn_divergence uses).
    xy = pot_entropic(case.x64, case.y64, case.a64, case.b64, p, eps)[1]
    xx = pot_entropic(case.x64, case.x64, case.a64, case.a64, p, eps)[1]
    yy = pot_entropic(case.y64, case.y64, case.b64, case.b64, p, eps)[1]
    oracle = xy - 0.5 * (xx + yy)
    c_all = max(c_max, float(euclidean_cost(case.x64, case.x64, p).max()), float(euclidean_cost(case.y64, case.y64, p).max()))
    log_nm = 2 * np.log(max(len(case.a64), len(case.b64))) + 1
    slack = (2 * _slack(case, p, c_all, xy, xx, yy) + 6 * case.eps_c * eps * log_nm
             + 3 * (POT_ULPS + 2 * max(len(case.a64), len(case.b64))) * EPS64 * (eps * log_nm + c_all))
    assert abs(value - oracle) <= slack, (value, oracle)
    # Laplace (p = 1) and Gaussian (p = 2) kernels are positive definite: S_eps >= 0.
    assert value >= -slack


@settings(max_examples=examples(0.6))
@given(case=cases(kinds=FLOAT_KINDS), rel=POT_CONVERGES, p=ORDERS)
def test_wasserstein_method_sinkhorn_is_the_sinkhorn_value(case, rel, p):
    epsilon, _, c_max, invalid = _epsilon(case, rel, p, False)
    if invalid:
        return
    direct = otdist.sinkhorn(case.x, case.y, case.a, case.b, epsilon=epsilon, p=p)
    through_api = otdist.wasserstein(case.x, case.y, case.a, case.b, p=p, method="sinkhorn", epsilon=epsilon)
    v1 = check_scalar(direct.value, case.container, case.dtype)
    v2 = check_scalar(through_api, case.container, case.dtype)
    # Both solve the same problem to the same tolerance (possibly in different precisions).
    assert abs(v1 ** p - v2 ** p) <= 2 * _slack(case, p, c_max, v1 ** p)


@settings(max_examples=examples(0.6))
@given(case=cases(kinds=FLOAT_KINDS), rel=POT_CONVERGES, p=ORDERS)
def test_distance_passes_weights_and_options_to_the_sinkhorn_divergence(case, rel, p):
    epsilon, _, c_max, invalid = _epsilon(case, rel, p, False)
    if invalid:
        return
    div = otdist.sinkhorn_divergence(case.x, case.y, case.a, case.b, epsilon=epsilon, p=p)
    # distance(x, y, metric=..., **options): the divergence's weights are its options a= and b=.
    via_distance = otdist.distance(case.x, case.y, metric="sinkhorn", a=case.a, b=case.b, epsilon=epsilon, p=p)
    d1 = check_scalar(div, case.container, case.dtype)
    d2 = check_scalar(via_distance, case.container, case.dtype)
    assert abs(d1 - d2) <= 4 * max(case.eps_out, EPS64) * abs(d1) + case.tiny_out
