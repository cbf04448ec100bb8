"""Sliced and max-sliced W_p computed in blocks of bounded memory: the same values, bounds and torch gradients
as in one block, no block above the memory budget, and working memory independent of the dimension d."""

import math
import tracemalloc

import numpy as np
import pytest
import torch

import otdist
import otdist.methods.sliced  # noqa: F401  (registers "sliced" and "max-sliced")
from otdist.solvers import sliced

#: A budget so small that every block holds one projection (or one coupled pair): the most blocks possible.
TINY = 1
#: A budget so large that every stage runs in one block, as an unblocked computation would.
HUGE = 1 << 50
#: Blocks change only the shapes of the matrix products of the projections (d <= 4 terms each, a few ulps) and
#: the order in which the coupled pairs' terms are summed (<= 60 terms of float64, ~1e-14 relative): values and
#: gradients agree to 100 times that.
REL = 1e-12
#: Max-sliced's ascent compares values, so a rounding-level change may move where it stops within
#: ASCENT_ANGLE_TOL = 1e-7 rad of the maximum: O(angle^2) = 1e-14 relative at a smooth maximum.
MAX_REL = 1e-10


def _problem(seed: int, n: int = 40, m: int = 33, d: int = 4):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(n, d)), rng.normal(size=(m, d)) * np.linspace(0.5, 2.0, d) + 0.3
    return x, y, rng.random(n) + 0.1, rng.random(m) + 0.1


def _results(monkeypatch, budget: int, method: str, *args, **options):
    monkeypatch.setattr(sliced, "MEMORY_BUDGET", budget)
    return otdist.transport(*args, method=method, **options)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("p", [1.0, 1.5, 2.0])
@pytest.mark.parametrize("weighted", [False, True])
def test_blocks_leave_the_sliced_value_and_bounds_unchanged(monkeypatch, seed, p, weighted):
    x, y, a, b = _problem(seed, m=40)
    args = (x, y, a, b) if weighted else (x, y)
    one = _results(monkeypatch, HUGE, "sliced", *args, p=p, n_projections=50, seed=seed)
    many = _results(monkeypatch, TINY, "sliced", *args, p=p, n_projections=50, seed=seed)
    assert many.value == pytest.approx(one.value, rel=REL)
    assert many.standard_error == pytest.approx(one.standard_error, rel=REL)
    assert many.bounds == pytest.approx(one.bounds, rel=REL)
    assert one.bounds[0] <= otdist.wasserstein(*args, p=p, method="exact") * (1 + REL) <= one.bounds[1] * (1 + 2 * REL)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("p", [1.0, 2.0])
def test_blocks_leave_max_sliced_unchanged(monkeypatch, seed, p):
    x, y, a, b = _problem(seed)
    one = _results(monkeypatch, HUGE, "max-sliced", x, y, a, b, p=p, n_projections=20, seed=seed)
    many = _results(monkeypatch, TINY, "max-sliced", x, y, a, b, p=p, n_projections=20, seed=seed)
    assert many.value == pytest.approx(one.value, rel=MAX_REL)
    assert many.bounds == pytest.approx(one.bounds, rel=MAX_REL)
    assert one.value <= otdist.wasserstein(x, y, a, b, p=p, method="exact") * (1 + REL)


def _torch_gradients(monkeypatch, budget: int, seed: int, p: float):
    monkeypatch.setattr(sliced, "MEMORY_BUDGET", budget)
    tensors = [torch.tensor(t, requires_grad=True) for t in _problem(seed)]
    value = otdist.wasserstein(*tensors, p=p, method="sliced", n_projections=30, seed=seed)
    return value, torch.autograd.grad(value, tensors)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("p", [1.0, 2.0])
def test_blocks_leave_torch_gradients_unchanged(monkeypatch, seed, p):
    """Checkpointed blocks recompute each block's graph in the backward pass: the same gradients in x, y and the
    weights as the graph of one block."""
    value, gradients = _torch_gradients(monkeypatch, HUGE, seed, p)
    blocked_value, blocked_gradients = _torch_gradients(monkeypatch, TINY, seed, p)
    assert float(blocked_value.detach()) == pytest.approx(float(value.detach()), rel=REL)
    for blocked, reference in zip(blocked_gradients, gradients):
        assert float(reference.abs().max()) > 0
        torch.testing.assert_close(blocked, reference, rtol=REL, atol=REL * float(reference.abs().max()))


def test_torch_graph_holds_no_slice_arrays(monkeypatch):
    """With blocks checkpointed, the autograd graph keeps no projections, sort orders or staircases of the
    directions: besides the inputs it holds the normalised weights (n + m values), the directions (d L) and
    a few scalars, where one block's graph holds several arrays of L (n + m) levels."""
    monkeypatch.setattr(sliced, "MEMORY_BUDGET", TINY)
    x, y, a, b = (torch.tensor(t, requires_grad=True) for t in _problem(1, n=500, m=400))
    inputs = {t.untyped_storage().data_ptr() for t in (x, y, a, b)}
    saved = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in inputs:
            saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    n_projections, scalars = 50, 16
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        value = otdist.wasserstein(x, y, a, b, p=2, method="sliced", n_projections=n_projections)
    value.backward()
    levels = x.shape[0] + y.shape[0]
    assert sum(saved.values()) <= 8 * (levels + x.shape[1] * n_projections + scalars)
    assert torch.isfinite(x.grad).all() and float(x.grad.abs().sum()) > 0


def test_no_block_exceeds_the_budget(monkeypatch):
    """Every block of projections handed to the 1-D solver fits in MEMORY_BUDGET, or holds one projection."""
    x, y, a, b = _problem(0, n=300, m=200)
    budget = 40 * sliced.LEVEL_BYTES * (x.shape[0] + y.shape[0])
    monkeypatch.setattr(sliced, "MEMORY_BUDGET", budget)
    shapes = []
    project = sliced.project

    def recording(points, theta):
        shapes.append(tuple(theta.shape))
        return project(points, theta)

    monkeypatch.setattr(sliced, "project", recording)
    otdist.wasserstein(x, y, a, b, method="sliced", n_projections=100)
    widths = [k for _, k in shapes[::2]]
    assert sum(widths) == 100 and max(widths) == 40  # x and y are projected on the same blocks


def _traced_peak(function) -> int:
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


#: Budget of the memory test: small against the points (n + m) d 8 bytes = 18 MB.
TEST_BUDGET = 1 << 20


@pytest.mark.parametrize("method", ["sliced", "max-sliced"])
def test_working_memory_does_not_grow_with_the_dimension(monkeypatch, method):
    """Beyond the points, the NumPy working memory is one 1-D problem (LEVEL_BYTES per level, twice for the
    coupling it returns) plus the budget, whatever d: no copy of the points, of their coupled pairs or of their
    projections on all directions is made."""
    monkeypatch.setattr(sliced, "MEMORY_BUDGET", TEST_BUDGET)
    rng = np.random.default_rng(3)
    n, m, d = 20_000, 15_000, 64
    x, y, a = rng.normal(size=(n, d)), rng.normal(size=(m, d)) + 0.1, rng.random(n)
    peak = _traced_peak(lambda: otdist.wasserstein(x, y, a, method=method, n_projections=8, seed=0))
    allowed = 2 * sliced.LEVEL_BYTES * (n + m) + 2 * TEST_BUDGET
    assert allowed < x.nbytes + y.nbytes  # the bound would catch one copy of the points
    assert peak <= allowed


@pytest.mark.parametrize("d", [1, 3])
@pytest.mark.parametrize("gap", [5.0100039e-275, 1e-200, 1e-160])
def test_upper_bound_of_tiny_distances_does_not_underflow(d, gap):
    """Point masses at 0 and at y: W_1 = |y| (math.hypot, which scales), which the upper bound must not fall below
    although |y| ** 2 underflows in a plain norm (the bound was 0 for |y| = 5e-275 on the line)."""
    x, y = np.zeros((1, d)), np.full((1, d), gap / np.sqrt(d))
    exact = math.hypot(*y[0])
    lower, upper = otdist.transport(x, y, p=1, method="sliced", n_projections=3, seed=0).bounds
    assert lower <= exact * (1 + REL) and upper >= exact * (1 - REL)
    assert upper == pytest.approx(exact, rel=REL)


def test_blocked_backward_returns_no_points_sized_array_per_block(monkeypatch):
    """The backward pass differentiates each block in its projections (L_block, n) and folds them into one
    gradient buffer per input, instead of asking autograd for an (n, d) gradient of the points per block."""
    monkeypatch.setattr(sliced, "MEMORY_BUDGET", TINY)
    x, y, a, b = (torch.tensor(t, requires_grad=True) for t in _problem(2, n=60, m=50, d=5))
    shapes = []
    grad = torch.autograd.grad

    def recording(outputs, inputs, *args, **kwargs):
        parts = grad(outputs, inputs, *args, **kwargs)
        shapes.extend(tuple(part.shape) for part in parts if part is not None)
        return parts

    monkeypatch.setattr(torch.autograd, "grad", recording)
    otdist.wasserstein(x, y, a, b, p=2, method="sliced", n_projections=12, seed=0).backward()
    assert shapes and tuple(x.shape) not in shapes and tuple(y.shape) not in shapes
    assert torch.isfinite(x.grad).all() and float(x.grad.abs().max()) > 0


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("uniform", [True, False])
def test_blocks_leave_the_direction_gradient_unchanged(monkeypatch, seed, uniform):
    """Directions given as a tensor that needs gradients (a learned slicing): the blocked backward pass gives
    the same gradient in theta (and in the points) as the graph of one block."""
    n = 40
    x, y, a, b = _problem(seed, n=n, m=n if uniform else 33)
    if uniform:
        a = b = np.full(n, 1.0 / n)
    theta0 = sliced.directions(x.shape[1], 9, seed)

    def gradients(budget):
        monkeypatch.setattr(sliced, "MEMORY_BUDGET", budget)
        tensors = [torch.tensor(t, requires_grad=True) for t in (x, y, theta0)]
        weights = [torch.tensor(w / w.sum()) for w in (a, b)]
        cost = sliced.solve(tensors[0], tensors[1], *weights, 2.0, tensors[2], uniform=uniform).transport_cost
        return cost, torch.autograd.grad(cost, tensors)

    value, reference = gradients(HUGE)
    blocked_value, blocked = gradients(TINY)
    assert float(blocked_value.detach()) == pytest.approx(float(value.detach()), rel=REL)
    for part, expected in zip(blocked, reference):
        assert float(expected.abs().max()) > 0
        torch.testing.assert_close(part, expected, rtol=REL, atol=REL * float(expected.abs().max()))


def test_blocked_second_derivative_raises_instead_of_dropping_curvature(monkeypatch):
    """The blocked backward pass runs on detached tensors: a Hessian through it would silently leave out the
    slices' curvature (|H|_1 = 87.7 instead of 90.3 for W_3 plus a quadratic), so asking for a differentiable
    gradient raises; in one block (the graph kept) the second derivative is available and nonzero."""
    x, y, a, b = _problem(4, n=30, m=30, d=3)

    def hessian_norm(budget):
        monkeypatch.setattr(sliced, "MEMORY_BUDGET", budget)
        xt = torch.tensor(x, requires_grad=True)
        value = otdist.wasserstein(xt, torch.tensor(y), p=3, method="sliced", n_projections=6, seed=0)
        (gradient,) = torch.autograd.grad(value + 0.5 * (xt**2).sum(), xt, create_graph=True)
        (hessian,) = torch.autograd.grad((gradient**2).sum(), xt)
        return float(hessian.abs().sum())

    assert hessian_norm(HUGE) > 0
    with pytest.raises(otdist.InputError, match="second derivative.*at most 1 directions per call"):
        hessian_norm(TINY)
