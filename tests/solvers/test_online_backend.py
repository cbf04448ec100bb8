"""``backend="online"``: Sinkhorn whose c-transforms rebuild the cost by blocks of rows, against the tensorized solver.

Both solvers stop on the L1 marginal error of the plan they return; at ``tol = 1e-12`` the semi-dual
value is exact to second order and ``<P, C>`` to about tol * max C, so the values agree to 1e-10 in
float64; in float32 (default tol 1e-4) to 1e-4 of the cost scale.
"""

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import otdist
from otdist import _entropic_setup
from otdist.exceptions import ConvergenceWarning, InputError, MemoryGuardError
from otdist.solvers import online
from tests.conftest import assert_same_entropic_solution

AGREEMENT = 1e-10


def _problem(seed, n, m, d, zero=True):
    rng = np.random.default_rng(seed)
    x, y = rng.random((n, d)), rng.random((m, d)) + 0.3
    a, b = rng.random(n) + 0.05, rng.random(m) + 0.05
    if zero:
        a[rng.integers(n)] = 0.0
    return x, y, a, b


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("d", [1, 3])
def test_online_equals_tensorized_in_float64(seed, p, d):
    x, y, a, b = _problem(seed, 120, 90, d)
    kw = dict(p=p, epsilon=0.02, relative=True, tol=1e-12)
    dense = otdist.sinkhorn(x, y, a, b, backend="tensorized", **kw)
    stream = otdist.sinkhorn(x, y, a, b, backend="online", **kw)
    assert stream.converged and stream.marginal_error <= 1e-12
    assert_same_entropic_solution(stream, dense, a, AGREEMENT)


@pytest.mark.parametrize("p", [1, 2])
def test_online_divergence_equals_tensorized(p):
    x, y, a, b = _problem(3, 80, 70, 2)
    kw = dict(p=p, epsilon=0.05, relative=True)
    assert otdist.sinkhorn_divergence(x, y, a, b, backend="online", **kw) == pytest.approx(
        otdist.sinkhorn_divergence(x, y, a, b, backend="tensorized", **kw), abs=AGREEMENT)


def test_online_float32_matches_float64_to_its_tolerance():
    x, y, a, b = _problem(4, 100, 100, 3, zero=False)
    ref = otdist.sinkhorn(x, y, a, b, p=2, epsilon=0.05, backend="tensorized")
    res = otdist.sinkhorn(x.astype(np.float32), y.astype(np.float32), a.astype(np.float32), b.astype(np.float32),
                          p=2, epsilon=0.05, backend="online")
    assert isinstance(res.value, float) and res.converged
    assert res.transport_cost == pytest.approx(ref.transport_cost, abs=1e-4 * 3)  # tol 1e-4 times max C <= 3


def test_online_batches_and_torch_gradients_match_tensorized():
    gen = torch.Generator().manual_seed(5)
    x = torch.rand(2, 40, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    y = torch.rand(2, 30, 2, generator=gen, dtype=torch.float64) + 0.5
    grads = []
    for backend in ("tensorized", "online"):
        res = otdist.sinkhorn(x, y, p=2, epsilon=0.05, tol=1e-12, backend=backend)
        assert res.value.shape == (2,) and res.value.dtype == torch.float64
        (grad,) = torch.autograd.grad((res.entropic_cost + res.transport_cost).sum(), x)
        grads.append(grad)
    torch.testing.assert_close(grads[1], grads[0], rtol=0, atol=1e-9)


def test_auto_goes_online_above_max_size_without_building_the_matrix(monkeypatch):
    """Above ``max_size`` the default backend solves by blocks of rows: no (n, m) cost is ever built."""
    x, y, a, b = _problem(6, 300, 200, 2)
    shapes = []
    real = _entropic_setup.ground_cost

    def spy(u, v, *args, **kwargs):
        shapes.append(u.shape[-2] * v.shape[-2])
        return real(u, v, *args, **kwargs)

    monkeypatch.setattr(_entropic_setup, "ground_cost", spy)
    monkeypatch.setattr(online, "BLOCK_ELEMENTS", 2_000)
    res = otdist.sinkhorn(x, y, a, b, p=2, epsilon=0.05, max_size=10_000, tol=1e-12)
    assert max(shapes) <= 2_000
    monkeypatch.setattr(_entropic_setup, "ground_cost", real)
    ref = otdist.sinkhorn(x, y, a, b, p=2, epsilon=0.05, backend="tensorized", tol=1e-12)
    assert res.value == pytest.approx(ref.value, abs=AGREEMENT)
    with pytest.raises(MemoryGuardError, match='backend="online"'):
        otdist.sinkhorn(x, y, a, b, p=2, epsilon=0.05, max_size=10_000, backend="tensorized")


def test_online_bounds_equal_the_dense_bounds_and_bracket_the_exact_value():
    x, y, a, b = _problem(7, 60, 50, 2)
    exact = otdist.wasserstein(x, y, a, b, p=2, method="exact")
    dense = otdist.transport(x, y, a, b, p=2, method="sinkhorn", epsilon=0.01, backend="tensorized").bounds
    stream = otdist.transport(x, y, a, b, p=2, method="sinkhorn", epsilon=0.01, backend="online").bounds
    assert stream[0] <= exact <= stream[1]
    assert stream == pytest.approx(dense, abs=1e-8)


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 10), m=st.integers(1, 10), p=st.sampled_from([1, 2]),
       max_iter=st.sampled_from([2, 10_000]))
def test_streamed_bounds_bracket_the_exact_value_whatever_the_potentials(seed, n, m, p, max_iter):
    x, y, a, b = _problem(seed, n, m, 2, zero=n > 1)
    exact = otdist.wasserstein(x, y, a, b, p=p, method="exact")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        lower, upper = otdist.transport(x, y, a, b, p=p, method="sinkhorn", epsilon=0.05, relative=True,
                                        backend="online", max_iter=max_iter, on_unconverged="warn").bounds
    assert lower <= exact * (1 + 1e-10) + 1e-12 and exact <= upper * (1 + 1e-10) + 1e-12


def test_online_refuses_what_it_cannot_solve():
    x, y, a, b = _problem(8, 5, 4, 2)
    with pytest.raises(InputError, match='backend="tensorized" with cost='):
        otdist.sinkhorn(None, None, cost=np.ones((5, 4)), backend="online")
    with pytest.raises(InputError, match="balanced problems only"):
        otdist.sinkhorn(x, y, reach=1.0, backend="online")


def test_torch_is_the_older_name_of_tensorized():
    x, y, _, _ = _problem(9, 20, 20, 2)
    assert otdist.sinkhorn(x, y, backend="torch").value == otdist.sinkhorn(x, y, backend="tensorized").value


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_permuted_copy_runs_the_symmetric_iteration(seed):
    """x against a permutation of itself: the plan nears a permutation, where alternating updates crawl
    (thousands of iterations at tol 1e-10); solved as OT_eps(a, a) it takes as few as the tensorized solver."""
    rng = np.random.default_rng(seed)
    x, a = rng.normal(size=(20, 2)), rng.random(20) + 0.1
    perm = rng.permutation(20)
    kw = dict(p=2, epsilon=0.1, tol=1e-10)
    dense = otdist.sinkhorn(x, x[perm], a, a[perm], backend="tensorized", **kw)
    stream = otdist.sinkhorn(x, x[perm], a, a[perm], backend="online", **kw)
    assert stream.n_iter <= 2 * dense.n_iter + 10
    assert stream.entropic_cost == pytest.approx(dense.entropic_cost, abs=AGREEMENT)
    assert stream.transport_cost == pytest.approx(dense.transport_cost, abs=1e-8)


@pytest.mark.parametrize("backend", ["tensorized", "online"])
def test_divergence_of_a_weighted_permuted_copy_is_zero(backend):
    """Normalising a[perm] sums in another order: its weights differ from a's by an ulp, which once hid the
    symmetry from the tensorized solver (ConvergenceError at the divergence's tol 1e-10)."""
    rng = np.random.default_rng(12)
    x, a = rng.normal(size=(20, 2)), rng.random(20) + 0.1
    perm = rng.permutation(20)
    value = otdist.sinkhorn_divergence(x, x[perm], a, a[perm], p=2, epsilon=0.1, backend=backend)
    assert abs(value) <= 1e-12 * 2 * np.abs(x).max() ** 2


@pytest.mark.parametrize("scale, offset", [(1e-20, 0.0), (1e20, 0.0), (1e40, 0.0), (1.0, 1e8)])
def test_online_at_extreme_cost_scales_matches_tensorized(scale, offset):
    """A float64 problem runs its first iterations on float32 points only where their squares fit float32's
    range (once the points at 1e20 overflowed there and the run never converged) and after centring them."""
    x, y, a, b = _problem(13, 30, 25, 2)
    x, y = x * scale + offset, y * scale + offset
    kw = dict(p=1, epsilon=0.05, relative=True, tol=1e-10)
    dense = otdist.sinkhorn(x, y, a, b, backend="tensorized", **kw)
    stream = otdist.sinkhorn(x, y, a, b, backend="online", **kw)
    assert stream.converged and stream.n_iter <= 2 * dense.n_iter + 10
    assert stream.transport_cost == pytest.approx(dense.transport_cost, rel=1e-8)


@pytest.mark.parametrize("p", [1, 2])
def test_multiscale_backend_equals_tensorized_through_the_api(p):
    """``backend="multiscale"`` end to end: its values come from the kept pairs (the dropped kernel is below
    e^-10 at the returned potentials, mass below 1e-4 here), so they agree with the dense solver to 1e-6."""
    x, y, a, b = _problem(14, 150, 120, 2)
    kw = dict(p=p, epsilon=0.003, tol=1e-10)
    dense = otdist.sinkhorn(x, y, a, b, backend="tensorized", **kw)
    multi = otdist.sinkhorn(x, y, a, b, backend="multiscale", **kw)
    assert multi.converged
    assert multi.entropic_cost == pytest.approx(dense.entropic_cost, abs=1e-6)
    assert multi.transport_cost == pytest.approx(dense.transport_cost, abs=1e-6)
    assert otdist.sinkhorn_divergence(x, y, a, b, backend="multiscale", **kw) == pytest.approx(
        otdist.sinkhorn_divergence(x, y, a, b, backend="tensorized", **kw), abs=1e-6)
    assert otdist.transport(x, y, a, b, method="sinkhorn", backend="multiscale", **kw).bounds is None


def test_multiscale_refuses_gradients():
    x = torch.rand(20, 2, dtype=torch.float64, requires_grad=True)
    with pytest.raises(InputError, match="computes no gradients"):
        otdist.sinkhorn(x, x.detach() + 1.0, backend="multiscale")
