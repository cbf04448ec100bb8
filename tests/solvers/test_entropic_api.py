"""The public entropic-OT API: convergence policy, memory guard, gradients, dtypes, options, conventions.

References: POT's ``ot.solve`` (log-domain Sinkhorn run to 1e-14), GeomLoss's ``SamplesLoss``,
scipy's ``cdist``, central finite differences of the returned values, and exact planted answers.
"""

import math
import time

import numpy as np
import ot
import pytest
import torch
from scipy.spatial.distance import cdist

import otdist
from otdist import _entropic_setup as entropic_setup
from otdist.exceptions import ConvergenceError, ConvergenceWarning, MemoryGuardError, OTDistError, SolverError

SEEDS = (0, 1, 2)
#: The divergence of a permuted copy is 0; the solver must return it within this band, times the
#: cost spread max C - min C (float64, tol 1e-8: OT_eps is stationary in the potentials, so its error
#: is second order in the marginal error).
PERMUTED_BAND = (-1e-12, 1e-10)


def _cloud(seed, n=40, d=3):
    return np.random.default_rng(seed).normal(size=(n, d))


def _spread(x, y, p):
    cost = cdist(x, y) ** p
    return cost.max() - cost.min()


# ----------------------------------------------------------------------------- near-equal measures


@pytest.mark.parametrize("p", [1, 2])
def test_divergence_of_a_permuted_copy_reaches_the_solver_and_is_zero(monkeypatch, p):
    from otdist.solvers import sinkhorn as core

    solve, unsymmetric = core.solve, []

    def spy(*args, **kwargs):
        unsymmetric.append(not kwargs.get("symmetric", False))
        return solve(*args, **kwargs)

    monkeypatch.setattr(core, "solve", spy)
    for seed in SEEDS:
        x = _cloud(seed)
        perm = np.random.default_rng(seed + 100).permutation(len(x))
        low, high = (bound * _spread(x, x, p) for bound in PERMUTED_BAND)
        for y in (x[perm], x[::-1], x):  # permuted copies (one a negative-stride view), the same array: no shortcut
            unsymmetric.clear()
            value = otdist.sinkhorn_divergence(x, y, epsilon=0.05, relative=True, p=p)
            assert sum(unsymmetric) == 1  # OT_eps(x, y) was solved as a problem between two measures
            assert low <= value <= high


def test_sinkhorn_of_a_measure_with_itself_converges(rng):
    x = rng.normal(size=(40, 3))
    res = otdist.sinkhorn(x, x, epsilon=0.1)
    assert res.converged and res.marginal_error <= 1e-8
    plan = res.plan()
    np.testing.assert_allclose(plan.sum(axis=0), np.full(40, 1 / 40), atol=1e-8)  # the returned plan's marginals


# ----------------------------------------------------------------------------- convergence policy


def _unconverged_calls():
    x = np.random.default_rng(3).random((30, 2))
    y = np.random.default_rng(4).random((30, 2))
    kw = dict(epsilon=1e-3, max_iter=5, p=2)
    return [
        ("sinkhorn", lambda **o: otdist.sinkhorn(x, y, scaling=0, **kw, **o)),
        ("sinkhorn geomloss", lambda **o: otdist.sinkhorn(x, y, scaling=0.5, backend="geomloss", **kw, **o)),
        ("divergence", lambda **o: otdist.sinkhorn_divergence(x, y, scaling=0, **kw, **o)),
        ("divergence geomloss", lambda **o: otdist.sinkhorn_divergence(x, y, scaling=0.5, backend="geomloss", **kw, **o)),
        ("wasserstein", lambda **o: otdist.wasserstein(x, y, method="sinkhorn", scaling=0, **kw, **o)),
        ("transport", lambda **o: otdist.transport(x, y, method="sinkhorn", scaling=0, **kw, **o)),
    ]


@pytest.mark.parametrize("name, call", _unconverged_calls(), ids=[n for n, _ in _unconverged_calls()])
def test_unconverged_raises_by_default_and_warns_on_request(name, call):
    with pytest.raises(ConvergenceError, match=r"max_iter=5.*marginal error [0-9.e+-]+ > tol=1e-(08|10).*epsilon=0\.001.*"
                                               r"Raise max_iter.*on_unconverged=\"warn\""):
        call()
    with pytest.warns(ConvergenceWarning, match="marginal error"):
        result = call(on_unconverged="warn")
    if hasattr(result, "converged"):
        assert not result.converged


# ----------------------------------------------------------------------------- memory guard


def test_memory_guard_refuses_at_once_without_building_a_cost(monkeypatch):
    n = 200_000
    x = np.random.default_rng(0).random((n, 2))

    def no_cost(*args, **kwargs):
        raise AssertionError("a cost matrix was built before the memory guard")

    monkeypatch.setattr(entropic_setup, "ground_cost", no_cost)
    for call in (lambda: otdist.sinkhorn_divergence(x, x + 1.0, backend="tensorized"),
                 lambda: otdist.sinkhorn(x, x + 1.0, backend="tensorized"),
                 lambda: otdist.wasserstein(x, x + 1.0, method="sinkhorn", backend="tensorized")):
        start = time.perf_counter()
        with pytest.raises(MemoryGuardError, match='method="sliced"'):
            call()
        assert time.perf_counter() - start < 1.0


def test_memory_guard_of_the_divergence_covers_its_self_terms(rng, monkeypatch):
    x, y = rng.random((10, 2)), rng.random((100, 2))  # x-y is 1 000 entries, y-y 10 000

    def no_cost(*args, **kwargs):
        raise AssertionError("a cost matrix was built before the memory guard")

    monkeypatch.setattr(entropic_setup, "ground_cost", no_cost)
    with pytest.raises(MemoryGuardError, match="100 x 100"):
        otdist.sinkhorn_divergence(x, y, max_size=5_000, backend="tensorized")


# ----------------------------------------------------------------------------- gradients


def _directional_differences(fn, tensors, directions, step=1e-5):
    """Central differences of the value fn actually returns along each direction, one tensor moved at a time."""
    out = []
    for k, direction in directions:
        values = []
        for sign in (1, -1):
            moved = [u.detach().clone() for u in tensors]
            moved[k] += sign * step * direction
            values.append(float(fn(*moved)))
        out.append((values[0] - values[1]) / (2 * step))
    return out


def _gradient_problem(seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(4, 2, generator=gen, dtype=torch.float64)
    y = torch.rand(3, 2, generator=gen, dtype=torch.float64) + 0.3
    a = torch.rand(4, generator=gen, dtype=torch.float64) + 0.5  # unnormalised: the API normalises them
    b = torch.rand(3, generator=gen, dtype=torch.float64) + 0.5
    return [x, y, a, b]


_KW = dict(epsilon=0.1, tol=1e-13)
QUANTITIES = {
    "value": lambda x, y, a, b, p, be: otdist.sinkhorn(x, y, a, b, p=p, backend=be, **_KW).value,
    "transport_cost": lambda x, y, a, b, p, be: otdist.sinkhorn(x, y, a, b, p=p, backend=be, **_KW).transport_cost,
    "entropic_cost": lambda x, y, a, b, p, be: otdist.sinkhorn(x, y, a, b, p=p, backend=be, **_KW).entropic_cost,
    "divergence": lambda x, y, a, b, p, be: otdist.sinkhorn_divergence(x, y, a, b, p=p, backend=be, **_KW),
    "wasserstein": lambda x, y, a, b, p, be: otdist.wasserstein(x, y, a, b, p=p, method="sinkhorn", backend=be, **_KW),
}


@pytest.mark.parametrize("p, backend, seed, quantities", [(1, "torch", 0, list(QUANTITIES)), (2, "torch", 1, list(QUANTITIES)),
                                                          (2, "geomloss", 2, ["transport_cost", "divergence"])])
def test_gradients_in_points_and_weights_match_finite_differences(p, backend, seed, quantities):
    """Two random directions per tensor (points, unnormalised weights).  Central differences with step h:
    truncation O(h^2) ~ 1e-10, rounding of the converged values (tol 1e-13) ~ 1e-15 / h ~ 1e-10."""
    tensors = _gradient_problem(seed)
    gen = torch.Generator().manual_seed(seed)
    directions = [(k, torch.randn(t.shape, generator=gen, dtype=t.dtype)) for k, t in enumerate(tensors) for _ in range(2)]
    for quantity in quantities:
        fn = QUANTITIES[quantity]
        leaves = [t.clone().requires_grad_() for t in tensors]
        value = fn(*leaves, p, backend)
        assert value.grad_fn is not None, quantity
        grads = torch.autograd.grad(value, leaves)
        expected = _directional_differences(lambda *t: fn(*t, p, backend), tensors, directions)
        got = [float((grads[k] * direction).sum()) for k, direction in directions]
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-8, err_msg=quantity)


@pytest.mark.parametrize("backend", ["torch", "geomloss"])
def test_gradients_at_zero_weights_are_the_one_sided_derivatives(backend):
    """Forward differences (step h = 1e-6: error O(h) times the curvature, below 1e-4 relative) at zero
    weights, where mass can only be added."""
    x, y, a, b = _gradient_problem(3)
    a[1], b[1] = 0.0, 0.0
    for quantity in ("transport_cost", "entropic_cost", "divergence"):
        def fn(a_, b_):
            return QUANTITIES[quantity](x, y, a_, b_, 2, backend)

        leaves = [a.clone().requires_grad_(), b.clone().requires_grad_()]
        grads = torch.autograd.grad(fn(*leaves), leaves)
        step = 1e-6
        for k, grad in enumerate(grads):
            moved = [a.clone(), b.clone()]
            moved[k][1] += step
            forward = (float(fn(*moved)) - float(fn(a, b))) / step
            assert float(grad[1]) == pytest.approx(forward, rel=1e-4, abs=1e-7), (quantity, k)


def test_gradient_of_the_transport_cost_in_batches_and_row_blocks(monkeypatch):
    """Batched problems, and the row-blocked (geomloss) geometry with several blocks, give the same gradient
    as one dense problem at a time."""
    from otdist.solvers import online

    gen = torch.Generator().manual_seed(5)
    x = torch.rand(2, 7, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    y = torch.rand(2, 9, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    b = (torch.rand(2, 9, generator=gen, dtype=torch.float64) + 0.2).requires_grad_()
    batched = torch.autograd.grad(otdist.sinkhorn(x, y, None, b, epsilon=0.1, p=2, tol=1e-13).transport_cost.sum(), (x, y, b))
    monkeypatch.setattr(online, "BLOCK_ELEMENTS", 18)  # 2 rows of 9 per block
    blocked = torch.autograd.grad(otdist.sinkhorn(x, y, None, b, epsilon=0.1, p=2, tol=1e-13,
                                                  backend="geomloss").transport_cost.sum(), (x, y, b))
    for k in range(2):
        single = torch.autograd.grad(otdist.sinkhorn(x[k], y[k], None, b[k], epsilon=0.1, p=2, tol=1e-13).transport_cost,
                                     (x, y, b))
        for got_b, got_o, want in zip(batched, blocked, single):
            torch.testing.assert_close(got_b[k], want[k], rtol=1e-7, atol=1e-10)
            torch.testing.assert_close(got_o[k], want[k], rtol=1e-7, atol=1e-10)


# ----------------------------------------------------------------------------- dtypes


def test_torch_results_keep_the_input_dtype(rng):
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        x = torch.tensor(rng.random((20, 2)), dtype=dtype)
        y = torch.tensor(rng.random((15, 2)) + 0.3, dtype=dtype)
        res = otdist.sinkhorn(x, y, epsilon=0.05, p=2)
        outputs = (res.value, res.transport_cost, res.entropic_cost, *res.potentials, res.plan(),
                   otdist.sinkhorn_divergence(x, y, epsilon=0.05, p=2))
        assert all(t.dtype == dtype for t in outputs), dtype
        # computed in float32 (tol 1e-4) on the same rounded points, then rounded to dtype
        ref = otdist.sinkhorn(x.double().numpy(), y.double().numpy(), epsilon=0.05, p=2)
        rel = max(1e-3, float(torch.finfo(dtype).eps))
        assert float(res.transport_cost) == pytest.approx(ref.transport_cost, rel=rel)


def test_integer_inputs_are_promoted(rng):
    x, y = rng.integers(0, 5, (12, 2)), rng.integers(0, 5, (10, 2))
    ref = otdist.sinkhorn(x.astype(float), y.astype(float), epsilon=0.1)
    res = otdist.sinkhorn(torch.tensor(x), torch.tensor(y), epsilon=0.1)
    assert res.value.dtype == torch.get_default_dtype()
    assert float(res.value) == pytest.approx(ref.value, rel=1e-4)
    assert otdist.sinkhorn(x, y, epsilon=0.1).value == pytest.approx(ref.value, rel=1e-12)


def test_numpy_float32_in_gives_float32_arrays_and_python_floats(rng):
    x, y = rng.random((20, 2)).astype(np.float32), rng.random((15, 2)).astype(np.float32)
    res = otdist.sinkhorn(x, y, epsilon=0.05, p=2)
    assert type(res.value) is float and type(res.transport_cost) is float and type(res.entropic_cost) is float
    assert res.potentials[0].dtype == np.float32 and res.plan().dtype == np.float32
    assert type(otdist.sinkhorn_divergence(x, y, epsilon=0.05, p=2)) is float
    ref = otdist.sinkhorn(x.astype(np.float64), y.astype(np.float64), epsilon=0.05, p=2)
    assert res.value == pytest.approx(ref.value, rel=1e-4)  # float32's default tol


# ----------------------------------------------------------------------------- options


BAD_OPTIONS = [
    {"epsilon": 0}, {"epsilon": -1.0}, {"epsilon": math.inf}, {"epsilon": True}, {"epsilon": "0.1"},
    {"relative": "yes"}, {"scaling": 1.0}, {"scaling": -0.5}, {"scaling": "0.1"}, {"tol": 0}, {"tol": math.nan},
    {"max_iter": 0}, {"max_iter": True}, {"max_iter": 2.5}, {"max_size": 0}, {"backend": "gpu"},
    {"on_unconverged": "ignore"}, {"on_unconverged": None},
]


def test_every_option_is_validated_with_an_otdist_error(rng):
    x = rng.random((5, 2))
    calls = (otdist.sinkhorn, otdist.sinkhorn_divergence,
             lambda u, v, **o: otdist.wasserstein(u, v, method="sinkhorn", **o))
    for options in BAD_OPTIONS:
        for call in calls:
            with pytest.raises(OTDistError, match=next(iter(options))):
                call(x, x + 1.0, **options)


# ----------------------------------------------------------------------------- relative epsilon, metric


def test_relative_epsilon_is_a_fraction_of_the_cost_spread(rng):
    """The entropic plan does not change when a constant is added to C; nor does a relative epsilon."""
    x, y = rng.random((12, 2)), rng.random((10, 2)) + 0.2
    res = otdist.sinkhorn(x, y, epsilon=0.05, relative=True)
    assert res.epsilon == pytest.approx(0.05 * _spread(x, y, 1), rel=1e-12)
    shifted = otdist.sinkhorn(x, y, epsilon=0.05, relative=True, metric=lambda u, v: cdist(u, v) + 5.0)
    assert shifted.epsilon == pytest.approx(res.epsilon, rel=1e-12)
    np.testing.assert_allclose(shifted.plan(), res.plan(), atol=1e-9)


def test_equal_costs_give_the_product_plan_for_any_relative_epsilon():
    x = np.zeros((3, 2))
    for y in (x + 1e-200, np.ones((1, 2))):  # costs underflowing to 0; a single target point
        res = otdist.sinkhorn(x, y, epsilon=0.1, relative=True, p=2)
        assert res.value == pytest.approx(float(cdist(x, y).max()), rel=1e-12)
        assert otdist.sinkhorn_divergence(x, y, epsilon=0.1, relative=True, p=2) == pytest.approx(res.transport_cost, rel=1e-9)


def test_callable_metric_is_called_with_two_dimensional_arrays(rng):
    x, y = rng.random((2, 8, 3)), rng.random((2, 6, 3))
    shapes = []

    def manhattan(u, v):
        shapes.append((tuple(u.shape), tuple(v.shape)))
        return (u[:, None, :] - v[None, :, :]).abs().sum(-1)

    res = otdist.sinkhorn(torch.tensor(x), torch.tensor(y), metric=manhattan, epsilon=0.1)
    assert shapes and all(s == ((8, 3), (6, 3)) for s in shapes)
    for k in range(2):
        single = otdist.sinkhorn(x[k], y[k], metric="cityblock", epsilon=0.1)
        assert float(res.value[k]) == pytest.approx(single.value, rel=1e-10)


# ----------------------------------------------------------------------------- GeomLoss backend errors


def test_geomloss_failures_are_otdist_errors(rng, monkeypatch):
    import geomloss

    class Broken:
        def __init__(self, *args, **kwargs):
            pass

        def __call__(self, *args):
            raise RuntimeError("[KeOps] Error during compilation")

    monkeypatch.setattr(geomloss, "SamplesLoss", Broken)
    x = rng.random((10, 2))
    with pytest.raises(SolverError, match='backend="online"'):
        otdist.sinkhorn(x, x + 1.0, backend="geomloss")


# ----------------------------------------------------------------------------- conventions


@pytest.mark.parametrize("seed", SEEDS)
def test_costs_match_pot_solve(seed):
    """transport_cost = ot.solve(...).value_linear (= ot.sinkhorn2), entropic_cost = ot.solve(...).value."""
    rng = np.random.default_rng(seed)
    x, y = rng.random((25, 2)), rng.random((20, 2)) + 0.3
    a, b = rng.random(25) + 0.1, rng.random(20) + 0.1
    a, b = a / a.sum(), b / b.sum()
    eps = 0.05
    reference = ot.solve(cdist(x, y) ** 2, a, b, reg=eps, max_iter=200_000, tol=1e-14)
    res = otdist.sinkhorn(x, y, a, b, epsilon=eps, p=2, tol=1e-12)
    assert res.transport_cost == pytest.approx(reference.value_linear, rel=1e-8)
    assert res.entropic_cost == pytest.approx(reference.value, rel=1e-8)


@pytest.mark.parametrize("p", [1, 2])
def test_conventions_match_geomloss(rng, p):
    """GeomLoss's cost is |x - y|^p / p and its epsilon blur^p: ours is eps = p blur^p and values p times theirs.
    Its fixed annealing schedule (scaling 0.999) stops within 1e-5 of the fixed point here."""
    from geomloss import SamplesLoss

    x, y = torch.tensor(rng.random((20, 2))), torch.tensor(rng.random((15, 2)) + 0.2)
    eps = 0.05
    blur = (eps / p) ** (1 / p)
    ot_eps = SamplesLoss("sinkhorn", p=p, blur=blur, scaling=0.999, debias=False, backend="tensorized")
    res = otdist.sinkhorn(x, y, epsilon=eps, p=p, tol=1e-12)
    assert float(res.entropic_cost) == pytest.approx(p * float(ot_eps(x, y)), rel=1e-5)
    if p == 2:
        divergence = SamplesLoss("sinkhorn", p=p, blur=blur, scaling=0.999, backend="tensorized")
        assert float(otdist.sinkhorn_divergence(x, y, epsilon=eps, p=p, tol=1e-12)) == pytest.approx(
            p * float(divergence(x, y)), rel=1e-5)
