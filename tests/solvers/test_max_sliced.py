"""Max-sliced W_p against planted answers (translations, the top eigenvalue of a second moment), the
exact solver it bounds from below, the sliced value it bounds from above, and 1-D W_p."""

import numpy as np
import pytest
import scipy.stats
import torch
from hypothesis import example, given
from hypothesis import strategies as st

import otdist
import otdist.methods.sliced  # noqa: F401  (registers "max-sliced" and "max_sliced")
from otdist import registry
from otdist.solvers.sliced import row_norms
from tests.conftest import weighted_sample

#: The ascent stops at a step of ASCENT_ANGLE_TOL = 1e-7 rad: at an angle phi from a smooth maximum the
#: value is off by O(phi^2) = 1e-14 relative, and float64 sums over ~100 terms add ~1e-14.
PLANTED_REL = 1e-12
#: Rounding of float64 transport costs (sums of <= 60 terms) is ~1e-14 relative; the bounds hold exactly
#: in exact arithmetic, so this margin only absorbs rounding.
BOUND_REL = 1e-10
BOUND_ABS = 1e-12
#: The gradient is linear in the direction, which the ascent finds to ~ASCENT_ANGLE_TOL = 1e-7 rad (a value
#: comparison cannot resolve angles much below sqrt(eps) = 1.5e-8): 100 times that as a relative tolerance.
GRADIENT_REL = 1e-5
#: Central differences with step 1e-6 of a float64 function are accurate to ~1e-10 + the ascent's 1e-14 / 1e-6.
FD_STEP = 1e-6
FD_TOL = 1e-6


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("d", [2, 3, 6])
@pytest.mark.parametrize("p", [1, 2, 3])
def test_translation_gives_the_length_of_the_shift(seed, d, p):
    """W_p(x, x + s) = |s| in R^d, attained by the direction of s: max-sliced finds it exactly."""
    rng = np.random.default_rng(seed)
    x, shift, w = rng.normal(size=(40, d)), rng.normal(size=d) * 3, rng.random(40) + 0.1
    res = otdist.transport(x, x + shift, w, w, p=p, method="max-sliced", n_projections=20, seed=seed)
    assert res.value == pytest.approx(np.linalg.norm(shift), rel=PLANTED_REL)
    assert res.converged and res.method == "max-sliced"
    # The bounds are widened for rounding by 4 ulps per point of diameter ** p before the root.
    assert res.bounds[0] == pytest.approx(np.linalg.norm(shift), rel=BOUND_REL)
    # The coupling that sorts the projections on the shift's direction is the identity: cost |s|^p.
    assert res.bounds[1] == pytest.approx(np.linalg.norm(shift), rel=BOUND_REL)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("d", [2, 4, 8])
def test_point_mass_against_a_cloud_gives_the_top_eigenvalue(seed, d):
    """From a point mass at 0, W_2^2 along theta is sum_j b_j (theta . y_j)^2 = theta' M theta with M the
    weighted second moment of y, so max-sliced W_2 is sqrt(lambda_max(M)): a quadratic on the sphere."""
    rng = np.random.default_rng(10 + seed)
    y = rng.normal(size=(30, d)) * rng.uniform(0.5, 3.0, size=d)
    b = rng.random(30) + 0.05
    moment = (y * (b / b.sum())[:, None]).T @ y
    expected = np.sqrt(np.linalg.eigvalsh(moment)[-1])
    value = otdist.wasserstein(np.zeros((1, d)), y, None, b, p=2, method="max-sliced", n_projections=5, seed=seed)
    assert value == pytest.approx(expected, rel=PLANTED_REL)


#: One point far from the origin in each measure beside seven at it: the certified widening, 4 ulps per point of
#: diameter ** p = 42 ** 2, is 2.5e-11 on a W_2^2 of 0.125, more than BOUND_REL of the value.
FAR_APART = np.array([[41.0, 0.0]] + [[0.0, 0.0]] * 7), np.array([[42.0, 0.0]] + [[0.0, 0.0]] * 7)


@given(weighted_sample(d=2, max_size=10), weighted_sample(d=2, max_size=10), st.sampled_from([1.0, 1.5, 2.0]),
       st.integers(0, 2**16))
@example((FAR_APART[0], np.ones(8)), (FAR_APART[1], np.ones(8)), 2.0, 0)
def test_between_sliced_and_exact(u, v, p, seed):
    """sliced <= max-sliced (a mean of slices is below their largest) <= W_p (unit projections are 1-Lipschitz),
    and the lower bound is the value less the documented rounding widening."""
    (x, a), (y, b) = u, v
    sliced = otdist.wasserstein(x, y, a, b, p=p, method="sliced", n_projections=15, seed=seed)
    res = otdist.transport(x, y, a, b, p=p, method="max-sliced", n_projections=15, seed=seed)
    exact = otdist.wasserstein(x, y, a, b, p=p, method="exact")
    assert sliced <= res.value * (1 + BOUND_REL) + BOUND_ABS
    assert res.value <= exact * (1 + BOUND_REL) + BOUND_ABS
    lower, upper = res.bounds
    diameter = row_norms(np.ptp(np.concatenate([x, y]), axis=0)[None, :])[0]  # no underflow in the squares
    widening = otdist.methods.sliced.ROUNDING_ULPS * (len(x) + len(y)) * np.finfo(float).eps * diameter**p
    assert lower**p == pytest.approx(max(res.value**p - widening, 0.0), rel=BOUND_REL, abs=BOUND_ABS)
    assert exact <= upper * (1 + BOUND_REL) + BOUND_ABS


@given(weighted_sample(), weighted_sample(), st.sampled_from([1.0, 2.0, 3.0]))
def test_equals_w_p_in_one_dimension(u, v, p):
    (x, a), (y, b) = u, v
    value = otdist.wasserstein(x[:, None], y[:, None], a, b, p=p, method="max-sliced", n_projections=2)
    expected = (scipy.stats.wasserstein_distance(x, y, a, b) if p == 1
                else otdist.wasserstein(x, y, a, b, p=p, method="1d"))
    spread = max(np.ptp(np.concatenate([x, y])), 1.0)
    # A W_p^p that is 0 in exact arithmetic can come out as rounding, ~(n + m) eps spread^p, before its root.
    slack = (4 * (x.size + y.size) * np.finfo(float).eps) ** (1 / p) * spread
    assert value == pytest.approx(expected, rel=1e-9, abs=slack)


def test_user_directions_start_the_search(rng):
    x, y = rng.normal(size=(30, 3)), rng.normal(size=(25, 3)) * [3.0, 1.0, 0.5]
    axes = otdist.transport(x, y, p=2, method="max-sliced", projections=np.eye(3))
    along_first_axis = otdist.wasserstein(x[:, 0], y[:, 0], p=2)
    assert axes.value >= along_first_axis * (1 - BOUND_REL)
    assert axes.value <= otdist.wasserstein(x, y, p=2, method="exact") * (1 + BOUND_REL)


def test_gradients_of_the_top_eigenvalue():
    """sqrt(lambda_max(M)), M = sum_j b_j y_j y_j' / sum b: dv/dy_j = b_j (t . y_j) t / (v sum b) and
    dv/db_k = ((t . y_k)^2 - v^2) / (2 v sum b), with t the top eigenvector (envelope theorem)."""
    rng = np.random.default_rng(4)
    y, b = rng.normal(size=(12, 3)) * [2.0, 1.0, 0.5], rng.random(12) + 0.2
    yt, bt = torch.tensor(y, requires_grad=True), torch.tensor(b, requires_grad=True)
    value = otdist.wasserstein(torch.zeros(1, 3, dtype=torch.float64), yt, None, bt, p=2, method="max-sliced")
    grad_y, grad_b = torch.autograd.grad(value, (yt, bt))
    eigenvalues, eigenvectors = np.linalg.eigh((y * (b / b.sum())[:, None]).T @ y)
    v, top = np.sqrt(eigenvalues[-1]), eigenvectors[:, -1]
    np.testing.assert_allclose(float(value.detach()), v, rtol=PLANTED_REL)
    np.testing.assert_allclose(grad_y.numpy(), (b * (y @ top))[:, None] * top / (v * b.sum()), rtol=GRADIENT_REL)
    np.testing.assert_allclose(grad_b.numpy(), ((y @ top) ** 2 - v**2) / (2 * v * b.sum()), rtol=GRADIENT_REL)


def test_gradients_match_finite_differences_near_a_translation():
    """Near x against x + s the sorting coupling along the maximising direction is unique and the maximum
    smooth: autograd through W_p at that direction equals central differences of the whole search."""
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(6, 2, generator=gen, dtype=torch.float64)
    y = x + torch.tensor([1.5, -0.5], dtype=torch.float64) + 0.05 * torch.randn(6, 2, generator=gen, dtype=torch.float64)
    w = torch.rand(6, generator=gen, dtype=torch.float64) + 0.5

    def value(xx, ww):
        return otdist.wasserstein(xx, y, ww, None, p=2, method="max-sliced")

    xg, wg = x.clone().requires_grad_(True), w.clone().requires_grad_(True)
    grad_x, grad_w = torch.autograd.grad(value(xg, wg), (xg, wg))
    for tensor, grad, fn in ((x, grad_x, lambda t: float(value(t, w))), (w, grad_w, lambda t: float(value(x, t)))):
        numeric = np.zeros(tuple(tensor.shape))
        for index in np.ndindex(*tensor.shape):
            step = torch.zeros_like(tensor)
            step[index] = FD_STEP
            numeric[index] = (fn(tensor + step) - fn(tensor - step)) / (2 * FD_STEP)
        np.testing.assert_allclose(grad.numpy(), numeric, atol=FD_TOL)


def test_torch_in_torch_out():
    x = torch.randn(10, 3, dtype=torch.float32, generator=torch.Generator().manual_seed(0))
    res = otdist.transport(x, x + 1.0, method="max-sliced")
    assert isinstance(res.value, torch.Tensor) and res.value.dtype == torch.float32
    assert float(res.value) == pytest.approx(np.sqrt(3.0), rel=1e-6)  # float32 resolution
    assert all(isinstance(bound, float) for bound in res.bounds)


def test_registered_as_a_metric(rng):
    x, y = rng.normal(size=(20, 2)), rng.normal(size=(15, 2)) + [1.0, 0.0]
    spec = registry.metric("max_sliced")
    assert spec.kind == "distance" and spec.symmetric and spec.zero_on_identical
    assert otdist.distance(x, y, metric="max_sliced") == otdist.wasserstein(x, y, method="max-sliced")
    assert otdist.distance(x, y, metric="max_sliced") == pytest.approx(otdist.distance(y, x, metric="max_sliced"),
                                                                        rel=PLANTED_REL)
    assert otdist.distance(x, x, metric="max_sliced") == 0.0
    assert "max-sliced" in registry.method_names() and not registry.method("max-sliced").exact


@pytest.mark.parametrize(
    "kwargs, options, error, match",
    [
        ({"cost": np.ones((2, 2)), "u_values": None, "v_values": None}, {}, otdist.InputError, "euclidean"),
        ({"metric": "cityblock"}, {}, otdist.InputError, "euclidean ground metric"),
        ({}, {"max_iter": 3}, otdist.InputTypeError, "unexpected option"),
        ({}, {"projections": np.eye(2), "seed": 1}, otdist.InputError, "excludes seed"),
        ({}, {"n_projections": 0}, otdist.InputError, "n_projections"),
    ],
)
def test_invalid_input_is_refused(kwargs, options, error, match):
    args = {"u_values": np.zeros((2, 2)), "v_values": np.ones((2, 2)), **kwargs}
    with pytest.raises(error, match=match):
        otdist.transport(**args, method="max-sliced", **options)
