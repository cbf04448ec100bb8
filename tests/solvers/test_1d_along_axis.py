"""wasserstein_along_axis: one 1-D W_p per column, checked column by column against scipy (p = 1) and
otdist.wasserstein (any p), with weights, n != m, broadcasting, torch and its gradients."""

import numpy as np
import pytest
import scipy.stats
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import otdist
from otdist.methods.line import wasserstein_along_axis
from tests.conftest import finite_values, positive_weights

#: Both sides sum the same |F^-1 - G^-1|^p terms in float64 (scipy through its CDFs): 1e-12 of the spread.
TOL = 1e-12


@st.composite
def columns(draw, max_rows=12, max_columns=4):
    """(u, v, u_weights, v_weights): (n, k) and (m, k) values, weights of the same shapes."""
    n, m, k = draw(st.integers(1, max_rows)), draw(st.integers(1, max_rows)), draw(st.integers(1, max_columns))
    u = draw(hnp.arrays(np.float64, (n, k), elements=finite_values))
    v = draw(hnp.arrays(np.float64, (m, k), elements=finite_values))
    return (u, v, draw(hnp.arrays(np.float64, (n, k), elements=positive_weights)),
            draw(hnp.arrays(np.float64, (m, k), elements=positive_weights)))


def _tol(u, v):
    return TOL * max(np.ptp(np.concatenate([u.ravel(), v.ravel()])), 1.0)


@given(columns(), st.booleans())
def test_p1_matches_scipy_column_by_column(data, weighted):
    u, v, a, b = data
    a, b = (a, b) if weighted else (None, None)
    out = wasserstein_along_axis(u, v, a, b)
    expected = [scipy.stats.wasserstein_distance(u[:, k], v[:, k], None if a is None else a[:, k],
                                                 None if b is None else b[:, k]) for k in range(u.shape[1])]
    assert isinstance(out, np.ndarray) and out.shape == (u.shape[1],)
    np.testing.assert_allclose(out, expected, rtol=TOL, atol=_tol(u, v))


@given(columns(), st.sampled_from([1.5, 2.0, 3.0]))
def test_any_order_matches_wasserstein_column_by_column(data, p):
    u, v, a, b = data
    out = wasserstein_along_axis(u.T, v.T, a.T, b.T, p=p, axis=1)
    expected = [otdist.wasserstein(u[:, k], v[:, k], a[:, k], b[:, k], p=p) for k in range(u.shape[1])]
    np.testing.assert_allclose(out, expected, rtol=TOL, atol=_tol(u, v))


@pytest.mark.parametrize("p", [1, 2])
def test_three_dimensions_shared_weights_and_broadcasting(rng, p):
    u, v = rng.normal(size=(3, 9, 4)), rng.normal(size=(3, 7, 1)) + 1
    a = rng.random(9)  # one weight vector for every column
    out = wasserstein_along_axis(u, v, a, None, p=p, axis=-2)
    assert out.shape == (3, 4)
    for i, k in np.ndindex(3, 4):
        assert out[i, k] == pytest.approx(otdist.wasserstein(u[i, :, k], v[i, :, 0], a, p=p), rel=TOL)


def test_uniform_equal_sizes_and_one_dimensional_input(rng):
    u, v = rng.normal(size=(50, 3)), rng.exponential(size=(50, 3))
    expected = [scipy.stats.wasserstein_distance(u[:, k], v[:, k]) for k in range(3)]
    np.testing.assert_allclose(wasserstein_along_axis(u, v), expected, rtol=TOL)
    single = wasserstein_along_axis(u[:, 0], v[:, 0])
    assert single.shape == () and float(single) == pytest.approx(expected[0], rel=TOL)


def test_dtypes_follow_the_inputs(rng):
    u, v = rng.normal(size=(5, 2)).astype(np.float32), rng.normal(size=(6, 2)).astype(np.float32)
    assert wasserstein_along_axis(u, v).dtype == np.float32
    out = wasserstein_along_axis(torch.tensor(u), v)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32 and out.shape == (2,)


@pytest.mark.parametrize("p", [1, 2, 1.5])
def test_torch_gradients_match_per_column_wasserstein(p):
    gen = torch.Generator().manual_seed(1)
    u, v = torch.randn(6, 3, generator=gen, dtype=torch.float64), torch.randn(4, 3, generator=gen, dtype=torch.float64)
    a = torch.rand(6, 3, generator=gen, dtype=torch.float64) + 0.1
    ug, ag = u.clone().requires_grad_(True), a.clone().requires_grad_(True)
    out = wasserstein_along_axis(ug, v, ag, None, p=p)
    grad_u, grad_a = torch.autograd.grad(out.sum(), (ug, ag))
    for k in range(3):
        uk, ak = u[:, k].clone().requires_grad_(True), a[:, k].clone().requires_grad_(True)
        ref_u, ref_a = torch.autograd.grad(otdist.wasserstein(uk, v[:, k], ak, p=p), (uk, ak))
        np.testing.assert_allclose(grad_u[:, k], ref_u, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(grad_a[:, k], ref_a, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(
    "u, v, kwargs, error, match",
    [
        (np.ones((3, 2)), np.ones((3, 2)), {"axis": 2}, otdist.InputError, "axis must index"),
        (np.ones((3, 2)), np.ones((3, 2)), {"axis": True}, otdist.InputTypeError, "axis must be an integer"),
        (np.ones((3, 2)), np.ones(3), {}, otdist.InputError, "same number"),
        (np.ones((3, 2)), np.ones((3, 3)), {}, otdist.InputError, "must broadcast"),
        (np.ones((0, 2)), np.ones((3, 2)), {}, otdist.InputError, "at least one sample"),
        (np.ones((3, 2)), np.ones((3, 2)), {"u_weights": np.ones((2, 3))}, otdist.InputError, "shape of u_values"),
        (np.ones((3, 2)), np.ones((3, 2)), {"u_weights": [1.0, -1.0, 1.0]}, otdist.InputError, "non-negative"),
        (np.ones((3, 2)), np.ones((3, 2)), {"v_weights": [[1.0, 0], [1, 0], [1, 0]]}, otdist.InputError,
         r"column \(1,\) sums to 0"),
        (np.ones((3, 2)), np.ones((3, 2)), {"p": 0.5}, otdist.InputError, "p must be"),
        (np.array([[np.nan], [1.0]]), np.ones((3, 1)), {}, otdist.InputError, "finite"),
        (5.0, np.ones(3), {}, otdist.InputError, "same number"),
    ],
)
def test_invalid_input_is_refused(u, v, kwargs, error, match):
    with pytest.raises(error, match=match):
        wasserstein_along_axis(u, v, **kwargs)


def test_passes_over_the_batch_do_not_change_the_values(rng, monkeypatch):
    """NumPy batches are solved in passes of BATCH_ELEMENTS merged levels: 1, 3 or all columns a pass."""
    from otdist.solvers import exact_1d

    u, v, a = rng.normal(size=(8, 2, 5)), rng.normal(size=(6, 2, 5)), rng.random((8, 2, 5))
    whole = wasserstein_along_axis(u, v, a, p=2)
    expected = [[otdist.wasserstein(u[:, i, k], v[:, i, k], a[:, i, k], p=2) for k in range(5)] for i in range(2)]
    for elements in (1, 3 * 14):
        monkeypatch.setattr(exact_1d, "BATCH_ELEMENTS", elements)
        np.testing.assert_array_equal(wasserstein_along_axis(u, v, a, p=2), whole)
    np.testing.assert_allclose(whole, expected, rtol=TOL)
