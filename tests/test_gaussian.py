"""W_2 between Gaussians (the Bures–Wasserstein closed form): ``otdist.gaussian.gaussian_w2``,
``method="gaussian"`` and the metric ``"gaussian_w2"``.

Every value is compared with something independent: POT's ``ot.gaussian.bures_wasserstein_distance``
(full rank), the closed form for commuting covariances, the other form of the cross term, an mpmath
evaluation at 50 digits (singular covariances), or a metric axiom.

Tolerances. The terms of W_2² (‖Δm‖², tr Σ1, tr Σ2, twice the cross term) are each computed by
backward-stable float64 operations on d x d matrices, so W_2² carries an absolute error of a few
``d eps`` times the size of those terms, ``scale = ‖Δm‖² + tr Σ1 + tr Σ2``; ``W2SQ_ERROR`` allows 100 of
them (the covariances below have condition numbers up to about 1e3, which eigh's eigenvalue errors and the
square roots of the cross term do not amplify beyond that). W_2 then has an error of at most
``sqrt(W2SQ_ERROR d eps scale)`` at W_2 = 0 and ``W2SQ_ERROR d eps scale / W_2`` elsewhere.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import ot
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import otdist
import otdist.methods.gaussian  # noqa: F401  (registers method="gaussian" and metric "gaussian_w2")
from otdist import registry
from otdist.exceptions import InputError, InputTypeError
from otdist.gaussian import gaussian_w2, psd_sqrt, samples_w2

EPS = np.finfo(np.float64).eps
#: Multiples of ``d eps scale`` allowed on W_2² (see the module docstring).
W2SQ_ERROR = 100
#: The relative agreement with POT asked for at full rank (both compute in float64 through eigh).
POT_RTOL = 1e-10
SEEDS = (0, 1, 2)


def spd(rng, d, condition=1e3):
    """A random SPD matrix with eigenvalues log-uniform in [1, condition]."""
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return (q * np.exp(rng.uniform(0, np.log(condition), size=d))) @ q.T


def scale_of(m1, c1, m2, c2):
    return float(np.sum((np.asarray(m1) - np.asarray(m2)) ** 2) + np.trace(c1) + np.trace(c2))


def w2sq_tol(d, scale):
    return W2SQ_ERROR * d * EPS * scale


def moments(x, w=None):
    return np.average(x, axis=0, weights=w), np.atleast_2d(np.cov(x.T, aweights=w, ddof=1))


# ----------------------------------------------------------------------------- values


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("d", [1, 3, 12])
def test_matches_pot_at_full_rank(seed, d):
    rng = np.random.default_rng(seed)
    m1, m2, c1, c2 = rng.normal(size=d), rng.normal(size=d), spd(rng, d), spd(rng, d)
    expected = float(ot.gaussian.bures_wasserstein_distance(m1, m2, c1, c2))
    assert gaussian_w2(m1, c1, m2, c2) == pytest.approx(expected, rel=POT_RTOL)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("weighted", [False, True])
def test_samples_match_pot_on_fitted_moments(seed, weighted):
    """The method fits means and ddof = 1 covariances (np.cov with aweights for weights), then POT's W_2."""
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(60, 4)), rng.normal(size=(45, 4)) @ rng.normal(size=(4, 4)) + 1.0
    a, b = (rng.uniform(0.1, 2.0, 60), rng.uniform(0.1, 2.0, 45)) if weighted else (None, None)
    (m1, c1), (m2, c2) = moments(x, a), moments(y, b)
    expected = float(ot.gaussian.bures_wasserstein_distance(m1, m2, c1, c2))
    assert otdist.wasserstein(x, y, a, b, p=2, method="gaussian") == pytest.approx(expected, rel=POT_RTOL)
    assert otdist.distance(x, y, metric="gaussian_w2", u_weights=a, v_weights=b) == pytest.approx(expected,
                                                                                                 rel=POT_RTOL)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("rotate", [False, True])
def test_commuting_covariances_closed_form(seed, rotate):
    """Commuting covariances: W_2² = ‖Δm‖² + Σ (√λ1 - √λ2)² in their common eigenbasis."""
    rng = np.random.default_rng(seed)
    d = 6
    lam1, lam2 = rng.uniform(0.1, 10, d), rng.uniform(0.1, 10, d)
    lam1[0] = 0.0  # a singular one: the closed form still holds
    q = np.linalg.qr(rng.normal(size=(d, d)))[0] if rotate else np.eye(d)
    c1, c2 = (q * lam1) @ q.T, (q * lam2) @ q.T
    m1, m2 = rng.normal(size=d), rng.normal(size=d)
    expected = np.sum((m1 - m2) ** 2) + np.sum((np.sqrt(lam1) - np.sqrt(lam2)) ** 2)
    value = gaussian_w2(m1, c1, m2, c2)
    # A singular cov1 costs the sqrt of eigh's rounding on its null space: d sqrt(d eps) relative.
    tol = 1e-12 * scale_of(m1, c1, m2, c2) if not rotate else d * math.sqrt(d * EPS) * scale_of(m1, c1, m2, c2)
    assert abs(value**2 - expected) <= tol


def test_zero_covariance_is_the_distance_to_a_point_mass():
    """N(m1, 0) is a point mass: W_2² = ‖Δm‖² + tr Σ2 exactly (the cross term is 0)."""
    rng = np.random.default_rng(4)
    c2, m1, m2 = spd(rng, 5), rng.normal(size=5), rng.normal(size=5)
    expected = math.sqrt(np.sum((m1 - m2) ** 2) + np.trace(c2))
    assert gaussian_w2(m1, np.zeros((5, 5)), m2, c2) == pytest.approx(expected, rel=1e-14)
    assert gaussian_w2(m2, c2, m1, np.zeros((5, 5))) == pytest.approx(expected, rel=1e-14)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("weighted", [False, True])
def test_nuclear_and_eigen_forms_agree_when_both_apply(seed, weighted):
    rng = np.random.default_rng(seed)
    d, n, m = 5, 80, 50
    x, y = rng.normal(size=(n, d)), rng.normal(size=(m, d)) @ rng.normal(size=(d, d))
    uniform = (np.full(n, 1 / n), np.full(m, 1 / m))
    a, b = (rng.dirichlet(np.ones(n)), rng.dirichlet(np.ones(m))) if weighted else uniform
    eigen, nuclear = samples_w2(x, y, a, b, "eigen") ** 2, samples_w2(x, y, a, b, "nuclear") ** 2
    (m1, c1), (m2, c2) = moments(x, a), moments(y, b)
    assert abs(eigen - nuclear) <= 1e-10 * scale_of(m1, c1, m2, c2)


def _mp_cross_term(x, y):
    """tr (Σ1^{1/2} Σ2 Σ1^{1/2})^{1/2} of the ddof = 1 covariances of x and y, at 50 digits."""
    with mpmath.workdps(50):
        def cov(z):
            z = mpmath.matrix(z.tolist())
            n, d = z.rows, z.cols
            mean = [mpmath.fsum(z[i, j] for i in range(n)) / n for j in range(d)]
            return mpmath.matrix([[mpmath.fsum((z[k, i] - mean[i]) * (z[k, j] - mean[j]) for k in range(n)) / (n - 1)
                                   for j in range(d)] for i in range(d)])

        def sqrt_psd(c):
            lam, vec = mpmath.eigsy(c)
            root = mpmath.diag([mpmath.sqrt(max(v, 0)) for v in lam])
            return vec * root * vec.T

        root = sqrt_psd(cov(x))
        lam, _ = mpmath.eigsy(root * cov(y) * root)
        return float(mpmath.fsum(mpmath.sqrt(max(v, 0)) for v in lam))


@pytest.mark.parametrize("seed", SEEDS)
def test_rank_deficient_matches_high_precision_reference(seed):
    """n < d: both sample covariances are singular (POT's sqrtm gives NaN there); the nuclear form is exact."""
    rng = np.random.default_rng(seed)
    d, n, m = 10, 4, 6
    x, y = rng.normal(size=(n, d)), rng.normal(size=(m, d)) + 0.5
    (m1, c1), (m2, c2) = moments(x), moments(y)
    expected = np.sum((m1 - m2) ** 2) + np.trace(c1) + np.trace(c2) - 2 * _mp_cross_term(x, y)
    value = otdist.wasserstein(x, y, p=2, method="gaussian")
    assert np.isfinite(value) and value >= 0
    assert abs(value**2 - expected) <= 1e-10 * scale_of(m1, c1, m2, c2)
    # From the singular covariances themselves: finite, within the documented d sqrt(d eps) of the truth.
    from_covariances = gaussian_w2(m1, c1, m2, c2)
    assert np.isfinite(from_covariances)
    assert abs(from_covariances**2 - expected) <= d * math.sqrt(d * EPS) * scale_of(m1, c1, m2, c2)


@pytest.mark.parametrize("seed", SEEDS)
def test_symmetric_and_zero_on_identical(seed):
    rng = np.random.default_rng(seed)
    d = 7
    m1, m2, c1, c2 = rng.normal(size=d), rng.normal(size=d), spd(rng, d), spd(rng, d)
    scale = scale_of(m1, c1, m2, c2)
    assert abs(gaussian_w2(m1, c1, m2, c2) ** 2 - gaussian_w2(m2, c2, m1, c1) ** 2) <= w2sq_tol(d, scale)
    assert gaussian_w2(m1, c1, m1, c1) <= math.sqrt(w2sq_tol(d, 2 * np.trace(c1)))
    x = rng.normal(size=(30, d))
    assert otdist.wasserstein(x, x, p=2, method="gaussian") <= math.sqrt(w2sq_tol(d, 2 * np.trace(moments(x)[1])))


@pytest.mark.parametrize("seed", SEEDS)
def test_translation_gives_the_mean_shift(seed):
    rng = np.random.default_rng(seed)
    d = 6
    c, m1, shift = spd(rng, d), rng.normal(size=d), rng.normal(size=d)
    norm = float(np.linalg.norm(shift))
    tol = w2sq_tol(d, scale_of(m1, c, m1 + shift, c)) / norm
    assert abs(gaussian_w2(m1, c, m1 + shift, c) - norm) <= tol
    x = rng.normal(size=(40, d)) @ rng.normal(size=(d, d))
    tol = w2sq_tol(d, norm**2 + 2 * np.trace(moments(x)[1])) / norm
    for form in ("eigen", "nuclear"):
        assert abs(otdist.wasserstein(x, x + shift, p=2, method="gaussian", form=form) - norm) <= tol


def test_zero_weight_point_is_ignored():
    """A point of weight 0 changes neither the weighted mean nor the reliability-weighted covariance."""
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(20, 3)), rng.normal(size=(25, 3))
    a = rng.uniform(0.5, 1.5, 20)
    with_outlier = np.vstack([x, [[100.0, -50.0, 30.0]]])
    expected = otdist.wasserstein(x, y, a, None, p=2, method="gaussian")
    value = otdist.wasserstein(with_outlier, y, np.append(a, 0.0), None, p=2, method="gaussian")
    assert value == pytest.approx(expected, rel=1e-12)


@st.composite
def gaussians(draw, d):
    mean = draw(hnp.arrays(np.float64, (d,), elements=st.floats(-5, 5)))
    factor = draw(hnp.arrays(np.float64, (d, d), elements=st.floats(-3, 3)))
    return mean, factor @ factor.T + np.eye(d) / 10


@given(st.integers(1, 4).flatmap(lambda d: st.tuples(gaussians(d), gaussians(d), gaussians(d))))
def test_triangle_inequality(triple):
    (ma, ca), (mb, cb), (mc, cc) = triple
    d = ma.shape[0]
    scale = scale_of(ma, ca, mc, cc) + scale_of(ma, ca, mb, cb) + scale_of(mb, cb, mc, cc)
    tol = 3 * math.sqrt(w2sq_tol(d, scale))
    assert gaussian_w2(ma, ca, mc, cc) <= gaussian_w2(ma, ca, mb, cb) + gaussian_w2(mb, cb, mc, cc) + tol


# ----------------------------------------------------------------------------- torch


def _sym(a):
    return (a + a.mT) / 2


def test_psd_sqrt_backward_at_repeated_eigenvalues():
    """The Sylvester backward at A = I and at a repeated eigenvalue, against finite differences."""
    repeated = torch.diag(torch.tensor([1.0, 1.0, 3.0, 3.0], dtype=torch.float64))
    for base in (torch.eye(4, dtype=torch.float64), repeated):
        assert torch.autograd.gradcheck(lambda a: psd_sqrt(_sym(a)), (base.clone().requires_grad_(),))
    a = torch.eye(3, dtype=torch.float64, requires_grad=True)
    psd_sqrt(a).sum().backward()
    assert torch.isfinite(a.grad).all()


@pytest.mark.parametrize("covariances", ["identity", "repeated"])
def test_gradcheck_covariances(covariances):
    d = 4
    if covariances == "identity":
        c1, c2 = torch.eye(d), torch.eye(d)
    else:
        c1, c2 = torch.diag(torch.tensor([1.0, 1.0, 2.0, 2.0])), torch.diag(torch.tensor([3.0, 3.0, 3.0, 0.5]))
    m1, m2 = torch.zeros(d), torch.tensor([1.0, -0.5, 0.25, 2.0])  # W_2 > 0: differentiable there
    args = tuple(t.double().requires_grad_() for t in (m1, c1, m2, c2))
    assert torch.autograd.gradcheck(lambda m1, c1, m2, c2: gaussian_w2(m1, _sym(c1), m2, _sym(c2)), args)


def test_gradient_at_a_singular_covariance():
    """cov1 of rank 2 in d = 4, cov2 = I: ∂W_2/∂cov2 = (I - cov1^{1/2}) / (2 W_2) and ∂W_2/∂mean1 =
    (mean1 - mean2) / W_2 in closed form. (Finite differences cannot check this point: the forward's
    cross term carries the square root of eigh's rounding on cov1's null space, about sqrt(d eps), which a
    difference quotient divides by its step.) The gradient is off by the same sqrt(d eps) relative error."""
    q = torch.linalg.qr(torch.tensor(np.random.default_rng(11).normal(size=(4, 4))))[0]
    lam = torch.tensor([2.0, 1.0, 0.0, 0.0], dtype=torch.float64)
    c1, root1 = (q * lam) @ q.T, (q * lam.sqrt()) @ q.T
    m1, m2 = torch.zeros(4, dtype=torch.float64, requires_grad=True), torch.ones(4, dtype=torch.float64)
    c2 = torch.eye(4, dtype=torch.float64, requires_grad=True)
    c1_leaf = c1.clone().requires_grad_()
    w = gaussian_w2(m1, c1_leaf, m2, c2)
    w.backward()
    tol = 10 * math.sqrt(4 * EPS)
    # ‖Δm‖² + tr cov1 + tr cov2 - 2 tr cov1^{1/2}
    assert float(w.detach()) == pytest.approx(math.sqrt(4 + 3 + 4 - 2 * float(lam.sqrt().sum())), rel=tol)
    expected = (torch.eye(4, dtype=torch.float64) - root1) / (2 * w.detach())
    torch.testing.assert_close(c2.grad, expected, rtol=0, atol=tol)
    torch.testing.assert_close(m1.grad, (m1 - m2).detach() / w.detach(), rtol=0, atol=tol)
    assert torch.isfinite(c1_leaf.grad).all()


@pytest.mark.parametrize("form", ["eigen", "nuclear"])
def test_gradcheck_samples_and_weights(form):
    rng = np.random.default_rng(6)
    x, y = torch.tensor(rng.normal(size=(5, 3))), torch.tensor(rng.normal(size=(6, 3)) + 1.0)
    a, b = torch.tensor(rng.uniform(0.5, 1.5, 5)), torch.tensor(rng.uniform(0.5, 1.5, 6))
    args = tuple(t.requires_grad_() for t in (x, y, a, b))
    assert torch.autograd.gradcheck(
        lambda x, y, a, b: otdist.wasserstein(x, y, a, b, p=2, method="gaussian", form=form), args)


def test_gradcheck_rank_deficient_samples():
    """n < d: singular covariances, differentiable in the points through the nuclear form."""
    rng = np.random.default_rng(7)
    x = torch.tensor(rng.normal(size=(4, 8)), requires_grad=True)
    y = torch.tensor(rng.normal(size=(5, 8)), requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, y: otdist.wasserstein(x, y, p=2, method="gaussian"), (x, y))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_torch_in_torch_out(dtype):
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(30, 3)), rng.normal(size=(20, 3))
    expected = otdist.wasserstein(x, y, p=2, method="gaussian")
    xt = torch.tensor(x, dtype=dtype, requires_grad=True)
    value = otdist.wasserstein(xt, torch.tensor(y, dtype=dtype), p=2, method="gaussian")
    assert value.dtype == dtype and value.shape == () and value.device == xt.device
    # Work runs in float64; float32 rounds the O(1) inputs and the result by eps / 2 each, and W_2 ~ 1 here
    # amplifies them by no more than the 100 allowed.
    rtol = 100 * float(torch.finfo(dtype).eps) if dtype == torch.float32 else 1e-12
    assert float(value.detach()) == pytest.approx(expected, rel=rtol)
    value.backward()
    assert xt.grad.dtype == dtype and torch.isfinite(xt.grad).all()
    m, c = torch.zeros(3, dtype=dtype), torch.eye(3, dtype=dtype)
    w = gaussian_w2(m, c, m + 1, 2 * c)
    assert w.dtype == dtype and w.shape == ()
    assert float(w) == pytest.approx(math.sqrt(3 + 3 * (math.sqrt(2) - 1) ** 2), rel=rtol)


def test_numpy_in_float_out():
    value = gaussian_w2(np.zeros(2, dtype=np.float32), np.eye(2, dtype=np.float32), [0.0, 3.0], np.eye(2))
    assert type(value) is float and value == pytest.approx(3.0, rel=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_in_cuda_out():
    x = torch.randn(50, 4, generator=torch.Generator().manual_seed(0)).cuda()
    value = otdist.wasserstein(x, x + 1.0, p=2, method="gaussian")
    assert value.device == x.device and float(value) == pytest.approx(2.0, rel=1e-10)


# ----------------------------------------------------------------------------- errors


def test_registered():
    spec = registry.metric("gaussian_w2")
    assert (spec.kind, spec.symmetric, spec.zero_on_identical, spec.squared, spec.permutation) == (
        "distance", True, True, False, "recompute")
    assert registry.method("gaussian").exact is False


@pytest.mark.parametrize("kwargs, match", [
    ({"p": 1}, "p=2 only"),
    ({"p": 2, "metric": "cityblock"}, "euclidean ground metric"),
    ({"p": 1, "metric": "sqeuclidean"}, "euclidean ground metric"),
    ({"p": 2, "form": "svd"}, "form must be one of"),
])
def test_method_refuses(kwargs, match):
    x = np.random.default_rng(0).normal(size=(5, 2))
    with pytest.raises(InputError, match=match):
        otdist.wasserstein(x, x + 1, method="gaussian", **kwargs)


def test_method_refuses_cost_and_unknown_options():
    with pytest.raises(InputError, match="precomputed cost"):
        otdist.transport(cost=np.ones((3, 3)), method="gaussian")
    with pytest.raises(InputTypeError, match="unexpected option"):
        otdist.wasserstein(np.ones((3, 2)), np.zeros((3, 2)), p=2, method="gaussian", n_projections=3)


@pytest.mark.parametrize("n, weights", [(1, None), (4, [0.0, 0.0, 2.0, 0.0])])
def test_one_point_has_no_covariance(n, weights):
    x = np.arange(2.0 * n).reshape(n, 2)
    with pytest.raises(InputError, match="at least two points with positive weight"):
        otdist.wasserstein(x, np.ones((3, 2)), weights, None, p=2, method="gaussian")


def test_metric_preflight_and_fixed_options():
    x, y = np.ones((1, 2)), np.zeros((3, 2))
    spec = registry.metric("gaussian_w2")
    with pytest.raises(InputError, match="at least two points"):
        spec.check(x, y, {})
    with pytest.raises(InputError, match="euclidean ground metric"):
        spec.check(y, y, {"ground_metric": "cityblock"})
    with pytest.raises(InputError, match="sets p itself"):
        otdist.distance(y, y, metric="gaussian_w2", p=1)


@pytest.mark.parametrize("args, match", [
    (([0.0, 0.0], np.eye(2), [0.0], np.eye(1)), "same length"),
    (([[0.0, 0.0]], np.eye(2), [0.0, 0.0], np.eye(2)), "1-D vector"),
    (([0.0, 0.0], np.eye(3), [0.0, 0.0], np.eye(2)), r"\(2, 2\) covariance"),
    (([0.0, 0.0], [[1.0, 0.5], [0.4, 1.0]], [0.0, 0.0], np.eye(2)), "must be symmetric"),
    (([0.0, 0.0], np.eye(2), [0.0, 0.0], [[1.0, 2.0], [2.0, 1.0]]), "positive semi-definite"),
    (([0.0, np.nan], np.eye(2), [0.0, 0.0], np.eye(2)), "finite"),
    (([0.0, 0.0], np.diag([1.0, np.inf]), [0.0, 0.0], np.eye(2)), "finite"),
])
def test_gaussian_w2_refuses(args, match):
    with pytest.raises(InputError, match=match):
        gaussian_w2(*args)


def test_tolerances_accept_rounding():
    """Asymmetry and negative eigenvalues at the level of float64 rounding are accepted (and clipped)."""
    c = np.diag([1.0, 0.0])
    c_noisy = c + np.array([[0.0, 1e-17], [0.0, -1e-17]])
    assert gaussian_w2([0.0, 0.0], c_noisy, [0.0, 0.0], c) <= math.sqrt(w2sq_tol(2, 2.0))


@pytest.mark.parametrize("scale", [1e-200, 1e150])
@pytest.mark.parametrize("form", ["eigen", "nuclear"])
def test_homogeneous_where_w2_squared_leaves_the_float_range(scale, form):
    """W_2(s x, s y) = s W_2(x, y), also where W_2² underflows (s = 1e-200) and where products of two
    covariances overflow (s = 1e150: entries of Σ1 Σ2 near 1e600)."""
    rng = np.random.default_rng(9)
    x, y = rng.normal(size=(20, 3)), rng.normal(size=(15, 3)) + 1.0
    expected = scale * otdist.wasserstein(x, y, p=2, method="gaussian", form=form)
    assert otdist.wasserstein(x * scale, y * scale, p=2, method="gaussian", form=form) == pytest.approx(expected,
                                                                                                          rel=1e-12)
    c = np.diag([1.0, 4.0])
    assert gaussian_w2([0.0, 0.0], c * scale, [0.0, 0.0], 4 * c * scale) == pytest.approx(math.sqrt(5 * scale),
                                                                                          rel=1e-14)


def test_unrepresentable_transport_cost_refused():
    x = np.random.default_rng(10).normal(size=(10, 2)) * 1e200
    with pytest.raises(InputError, match="overflows"):
        otdist.transport(x, -x, p=2, method="gaussian")
