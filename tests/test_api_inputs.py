"""The API layer on the inputs users actually pass: dtypes, POT's conventions, negative costs,
callable metrics, solver options, and gradients checked against finite differences."""

import numpy as np
import ot
import pytest
import scipy.stats
import torch

import otdist
from otdist.problem import pth_root

EXACT_METHODS = ("exact", "primal", "dual")
#: Central differences of a float64 function with step h are accurate to ~h^2 * f''' + eps / h.
FD_STEP = 1e-6
FD_TOL = 1e-6


# ----------------------------------------------------------------------------- POT's conventions


@pytest.mark.parametrize("method", EXACT_METHODS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_negative_costs_match_pot(method, seed):
    """OT is shift-invariant and POT accepts any real cost: so does otdist, and value is <P, C> itself."""
    rng = np.random.default_rng(seed)
    n, m = 7, 5
    cost = rng.normal(size=(n, m)) * 10.0 - 3.0
    a, b = rng.random(n) + 0.1, rng.random(m) + 0.1
    a, b = a / a.sum(), b / b.sum()
    expected = ot.emd2(a, b, cost, numItermax=10**7)
    res = otdist.transport(u_weights=a, v_weights=b, cost=cost, method=method)
    scale = np.abs(cost).max()
    assert res.value == res.transport_cost
    assert abs(res.value - expected) <= 1e-9 * scale
    np.testing.assert_allclose(res.plan.sum(axis=1), a, atol=1e-12)
    np.testing.assert_allclose(res.plan.sum(axis=0), b, atol=1e-12)


def test_cost_with_an_order_is_refused():
    with pytest.raises(otdist.InputError, match="p only applies to point clouds"):
        otdist.transport(cost=np.ones((2, 2)), p=2)


def test_empty_weights_mean_uniform_as_in_pot():
    u, v = [0.0, 1.0, 3.0], [5.0, 6.0, 8.0, 9.0]
    assert otdist.wasserstein(u, v, [], []) == pytest.approx(scipy.stats.wasserstein_distance(u, v), abs=1e-15)
    x, y = np.random.default_rng(0).normal(size=(2, 4, 2))
    assert otdist.wasserstein(x, y, [], [], method="exact") == pytest.approx(
        ot.emd2([], [], ot.dist(x, y, metric="euclidean")), abs=1e-12)


# ----------------------------------------------------------------------------- dtypes


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.bool_])
@pytest.mark.parametrize("method", ["1d", "exact", "dual", "sliced"])
def test_integer_numpy_inputs_are_promoted(dtype, method):
    rng = np.random.default_rng(3)
    u, v = rng.integers(0, 9, size=8), rng.integers(0, 9, size=6)
    if method != "1d":
        u, v = u.reshape(4, 2), v.reshape(3, 2)
    got = otdist.wasserstein(u.astype(dtype), v.astype(dtype), method=method)
    want = otdist.wasserstein(u.astype(dtype).astype(np.float64), v.astype(dtype).astype(np.float64), method=method)
    assert isinstance(got, float) and got == want


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.uint8, torch.bool])
@pytest.mark.parametrize("method", ["1d", "exact", "primal", "sliced"])
def test_integer_tensors_give_the_default_float(dtype, method):
    gen = torch.Generator().manual_seed(4)
    u, v = torch.randint(0, 9, (6,), generator=gen), torch.randint(0, 9, (4,), generator=gen)
    if method != "1d":
        u, v = u.reshape(3, 2), v.reshape(2, 2)
    got = otdist.wasserstein(u.to(dtype), v.to(dtype), method=method)
    want = otdist.wasserstein(u.to(dtype).double(), v.to(dtype).double(), method=method)
    assert got.dtype == torch.get_default_dtype()
    assert float(got) == pytest.approx(float(want), rel=1e-6)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("method", ["1d", "exact", "dual", "sliced"])
def test_half_precision_computed_in_float32_returned_in_input_dtype(dtype, method):
    gen = torch.Generator().manual_seed(5)
    u, v = torch.randn(12, 2, generator=gen), torch.randn(9, 2, generator=gen) + 1.0
    if method == "1d":
        u, v = u[:, 0], v[:, 0]
    half_u = u.to(dtype).requires_grad_(True)
    got = otdist.wasserstein(half_u, v.to(dtype), method=method)
    want = otdist.wasserstein(half_u.detach().float(), v.to(dtype).float(), method=method)
    assert got.dtype == dtype
    assert float(got.detach()) == float(want.to(dtype))  # the float32 answer, rounded once
    got.backward()
    assert half_u.grad.dtype == dtype and bool(torch.isfinite(half_u.grad.float()).all())


def test_float32_arrays_stay_float32():
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(5, 2)).astype(np.float32), rng.normal(size=(4, 2)).astype(np.float32)
    res = otdist.transport(x, y, method="dual")
    assert isinstance(res.value, float)
    assert res.plan.dtype == np.float32
    assert all(f.dtype == np.float32 for f in res.potentials)
    assert otdist.transport(x, y.astype(np.float64)).plan.dtype == np.float64


# ----------------------------------------------------------------------------- metrics and options


def test_callable_metric_is_called_with_two_dimensional_arrays():
    calls = []

    def euclidean(x, y):
        calls.append((tuple(x.shape), tuple(y.shape)))
        assert x.ndim == 2 and y.ndim == 2
        return torch.cdist(x, y)

    x, y = np.random.default_rng(7).normal(size=(2, 6, 3))
    got = otdist.sinkhorn(x, y, epsilon=0.1, metric=euclidean)
    want = otdist.sinkhorn(x, y, epsilon=0.1, metric="euclidean")
    assert calls and all(shapes == ((6, 3), (6, 3)) for shapes in calls)
    assert got.value == pytest.approx(want.value, rel=1e-12)
    batch = np.stack([x, x + 1.0])
    otdist.sinkhorn(batch, np.stack([y, y]), epsilon=0.1, metric=euclidean)
    assert calls[-1] == ((6, 3), (6, 3))


def test_callable_metric_returning_negative_distances_is_refused():
    with pytest.raises(otdist.InputError, match="ground distance must be non-negative"):
        otdist.wasserstein(np.zeros((2, 2)), np.ones((2, 2)), metric=lambda x, y: -np.ones((2, 2)))


@pytest.mark.parametrize("p", [2, 1.5])
def test_sqeuclidean_with_an_order_is_refused(p):
    with pytest.raises(otdist.InputError, match="already squares the distance"):
        otdist.wasserstein(np.zeros((2, 2)), np.ones((2, 2)), metric="sqeuclidean", p=p)
    with pytest.raises(otdist.InputError, match="already squares the distance"):
        otdist.sinkhorn(np.zeros((2, 2)), np.ones((2, 2)), metric="sqeuclidean", p=p, epsilon=0.1)


@pytest.mark.parametrize(
    "method, options, error",
    [
        ("primal", {"max_rounds": 0}, otdist.InputError),
        ("dual", {"max_rounds": 2.5}, otdist.InputTypeError),
        ("dual", {"generation": "yes"}, otdist.InputTypeError),
        ("exact", {"max_iter": 0}, otdist.InputError),
        ("sliced", {"seed": "a"}, otdist.InputTypeError),
        ("sliced", {"seed": -1}, otdist.InputError),
    ],
)
def test_solver_options_are_validated(method, options, error):
    with pytest.raises(error):
        otdist.wasserstein(np.zeros((3, 2)), np.ones((2, 2)), method=method, **options)


def test_single_projection_has_no_standard_error():
    res = otdist.transport(np.zeros((3, 2)), np.ones((2, 2)), method="sliced", n_projections=1)
    assert res.standard_error is None and np.isfinite(res.value)


# ----------------------------------------------------------------------------- gradients


def _finite_differences(fn, t):
    out = np.zeros(t.shape)
    for index in np.ndindex(*t.shape):
        step = torch.zeros_like(t)
        step[index] = FD_STEP
        out[index] = (fn(t + step) - fn(t - step)) / (2 * FD_STEP)
    return out


@pytest.mark.parametrize("method", ["1d", "exact", "primal", "dual", "sliced"])
@pytest.mark.parametrize("p", [1, 2, 1.5])
def test_gradients_match_finite_differences(method, p):
    """Gradients in the points and in the unnormalised weights (random, so the dual is not degenerate)."""
    gen = torch.Generator().manual_seed(8)
    d = 1 if method == "1d" else 2
    x = torch.randn(5, d, generator=gen, dtype=torch.float64)
    y = torch.randn(4, d, generator=gen, dtype=torch.float64) + 0.5
    w = torch.rand(5, generator=gen, dtype=torch.float64) + 0.5
    v = torch.rand(4, generator=gen, dtype=torch.float64) + 0.5

    def value(xx, ww):
        return otdist.wasserstein(xx, y, ww, v, p=p, method=method)

    xg, wg = x.clone().requires_grad_(True), w.clone().requires_grad_(True)
    grad_x, grad_w = torch.autograd.grad(value(xg, wg), (xg, wg))
    np.testing.assert_allclose(grad_x, _finite_differences(lambda t: float(value(t, w)), x), atol=FD_TOL)
    np.testing.assert_allclose(grad_w, _finite_differences(lambda t: float(value(x, t)), w), atol=FD_TOL)


@pytest.mark.parametrize("method", ["1d", "exact", "dual", "sliced"])
def test_gradient_at_identical_measures_is_finite(method):
    """W_p is not differentiable where it is 0: the gradient returned there is 0, a subgradient, never NaN."""
    x = torch.tensor([[0.0], [1.0], [3.0]], dtype=torch.float64, requires_grad=True)
    value = otdist.wasserstein(x, x.detach().clone(), p=2, method=method)
    (grad,) = torch.autograd.grad(value, x)
    assert float(value.detach()) == 0.0 and bool((grad == 0).all())


def test_root_of_a_rounding_error_below_zero_is_zero():
    assert pth_root(-1e-18, 2.0) == 0.0
    t = torch.tensor(-1e-18, dtype=torch.float64, requires_grad=True)
    root = pth_root(t, 2.0)
    root.backward()
    assert float(root.detach()) == 0.0 and float(t.grad) == 0.0


@pytest.mark.parametrize("method", ["1d", "exact", "primal", "dual", "sliced"])
def test_overflowing_costs_are_refused_not_returned(method):
    """scipy returns inf here; otdist refuses a result it cannot represent, with the fix in the message."""
    u, v = np.array([[1e308], [0.0]]), np.array([[-1e308], [1.0]])
    with pytest.raises(otdist.InputError, match="overflows the floating-point range"):
        otdist.wasserstein(u, v, method=method)
    with pytest.raises(otdist.InputError, match="overflows"):
        otdist.wasserstein([0.0, 1e10], [0.0, 2.0], p=40, method="1d" if method == "1d" else "exact")


def test_sliced_progress_bar_and_blocks_do_not_change_the_value(capsys, monkeypatch):
    from otdist.solvers import sliced

    x, y = np.random.default_rng(9).normal(size=(2, 50, 3))
    whole = otdist.transport(x, y, method="sliced", n_projections=40)
    monkeypatch.setattr(sliced, "MEMORY_BUDGET", 7 * sliced.LEVEL_BYTES * 100)  # blocks of 7 directions
    blocked = otdist.transport(x, y, method="sliced", n_projections=40, progress=True)
    assert blocked.value == pytest.approx(whole.value, rel=1e-14)
    assert blocked.standard_error == pytest.approx(whole.standard_error, rel=1e-12)
    assert "sliced" in capsys.readouterr().err


@pytest.mark.parametrize("method", ["primal", "dual"])
def test_lp_progress_bar_after_its_delay(method, capsys, monkeypatch):
    from otdist.solvers import _lp

    x, y = np.random.default_rng(10).normal(size=(2, 30, 2))
    quiet = otdist.transport(x, y, method=method)
    monkeypatch.setattr(_lp, "PROGRESS_DELAY", 0.0)
    shown = otdist.transport(x, y, method=method, progress=True)
    assert "LP arc generation" in capsys.readouterr().err
    assert shown.value == quiet.value
    with pytest.raises(otdist.InputTypeError, match="progress must be True or False"):
        otdist.transport(x, y, method=method, progress="yes")


def test_numpy_weights_with_negative_strides_next_to_tensors():
    # Reversed NumPy weights (a negative stride) beside torch points: torch.as_tensor refuses negative strides.
    import torch

    rng = np.random.default_rng(8)
    x = rng.normal(size=(6, 2))
    a = np.arange(1.0, 7.0)[::-1]
    expected = otdist.wasserstein(x, x + 1.0, a.copy(), method="exact")
    got = otdist.wasserstein(torch.tensor(x), torch.tensor(x + 1.0), a, method="exact")
    assert float(got) == pytest.approx(expected, rel=1e-12)
