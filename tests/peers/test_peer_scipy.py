"""scipy's own test cases for the functions otdist shares with it, ported.

Sources (scipy main): ``scipy/stats/tests/test_stats.py`` classes ``TestWassersteinDistance`` and
``TestWassersteinDistanceND``; ``scipy/stats/tests/test_entropy.py`` class ``TestEntropy`` (the
relative-entropy cases, ``entropy(pk, qk)``); ``scipy/spatial/distance/tests/test_distance.py``
``test_jensenshannon`` and the ``pdist(..., 'jensenshannon')`` cases.  Inputs and expected values
are scipy's; the conventions that differ are adapted and named at each test:

* otdist raises its own ``InputError`` (a ``ValueError``) where scipy returns inf/NaN for
  non-finite input or raises a plain ``ValueError``;
* scipy's ``axis=`` (many histograms at once) becomes one call per histogram;
* ``wasserstein_distance_nd`` is ``otdist.wasserstein`` on (n, d) point clouds, run with every
  exact method ("exact", "primal", "dual").
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import scipy
from numpy.testing import assert_allclose
from scipy.stats import ortho_group

import otdist

METHODS_1D = ("auto", "1d", "exact", "primal", "dual")
METHODS_ND = ("exact", "primal", "dual")


def w1(u, v, uw=None, vw=None, method="auto"):
    return otdist.wasserstein(u, v, uw, vw, method=method)


# ----------------------------------------------------------------------------- TestWassersteinDistance


def _random_problem(rng, nu, nv, ndim):
    """Points and weights drawn as scipy's tests draw them: uniform on [0, 1)."""
    return rng.random(size=(nu, ndim)), rng.random(size=(nv, ndim)), rng.random(size=nu), rng.random(size=nv)


@pytest.mark.parametrize("method", METHODS_1D)
class TestWassersteinDistance:
    def test_simple(self, method):
        assert_allclose(w1([0, 1], [0], [1, 1], [1], method=method), 0.5)
        assert_allclose(w1([0, 1], [0], [3, 1], [1], method=method), 0.25)
        assert_allclose(w1([0, 2], [0], [1, 1], [1], method=method), 1)
        assert_allclose(w1([0, 1, 2], [1, 2, 3], method=method), 1)

    def test_same_distribution(self, method):
        # scipy asserts exact equality with 0; the LP methods are held to the same.
        assert w1([1, 2, 3], [2, 1, 3], method=method) == 0
        assert w1([1, 1, 1, 4], [4, 1], [1, 1, 1, 1], [1, 3], method=method) == 0

    def test_shift(self, method):
        assert_allclose(w1([0], [1], method=method), 1)
        assert_allclose(w1([-5], [5], method=method), 10)
        assert_allclose(w1([1, 2, 3, 4, 5], [11, 12, 13, 14, 15], method=method), 10)
        assert_allclose(w1([4.5, 6.7, 2.1], [4.6, 7, 9.2], [3, 1, 1], [1, 3, 1], method=method), 2.5)

    def test_combine_weights(self, method):
        assert_allclose(
            w1([0, 0, 1, 1, 1, 1, 5], [0, 3, 3, 3, 3, 4, 4], [1] * 7, [1] * 7, method=method),
            w1([5, 0, 1], [0, 4, 3], [1, 2, 4], [1, 2, 4], method=method),
        )

    def test_collapse(self, method):
        u = np.arange(-10, 30, 0.3)
        v = np.zeros_like(u)
        assert_allclose(w1(u, v, method=method), np.mean(np.abs(u)))
        u_weights = np.arange(len(u))
        v_weights = u_weights[::-1]
        assert_allclose(w1(u, v, u_weights, v_weights, method=method), np.average(np.abs(u), weights=u_weights))

    def test_zero_weight(self, method):
        assert_allclose(w1([1, 2, 100000], [1, 1], [1, 1, 0], [1, 1], method=method),
                        w1([1, 2], [1, 1], [1, 1], [1, 1], method=method))

    def test_inf_values(self, method):
        # scipy returns inf (or NaN with a RuntimeWarning); otdist refuses non-finite input.
        for u, v in (([1, 2, np.inf], [1, 1]), ([1, 2, np.inf], [-np.inf, 1]),
                     ([1, -np.inf, np.inf], [1, 1]), ([1, 2, np.inf], [np.inf, 1])):
            with pytest.raises(otdist.InputError):
                w1(u, v, method=method)


# ----------------------------------------------------------------------------- TestWassersteinDistanceND


@pytest.mark.parametrize("method", METHODS_ND)
class TestWassersteinDistanceND:
    def test_published_values(self, method):
        # James D. McCaffrey's worked example, as in scipy.
        u = [(1, 1)] * 10 + [(4, 2), (6, 1), (6, 1)]
        v = [(2, 1), (2, 1), (3, 2), (3, 2), (3, 2)] + [(5, 1)] * 7 + [(7, 1)]
        flow = np.array([2.0, 3.0, 5.0, 1.0, 1.0, 1.0])
        dist = np.array([1.00, 5 ** 0.5, 4.00, 2 ** 0.5, 1.00, 1.00])
        assert_allclose(w1(u, v, method=method), np.sum(flow * dist) / np.sum(flow))

    @pytest.mark.parametrize("n_value", (4, 15, 35))
    @pytest.mark.parametrize("ndim", (3, 4, 7))
    @pytest.mark.parametrize("max_repeats", (5, 10))
    def test_same_distribution_nD(self, method, ndim, n_value, max_repeats):
        rng = np.random.default_rng(363836384995579937222333)
        repeats = rng.integers(1, max_repeats, size=n_value, dtype=int)
        u_values = rng.random(size=(n_value, ndim))
        v_values = np.repeat(u_values, repeats, axis=0)
        v_weights = rng.random(np.sum(repeats))
        range_repeat = np.repeat(np.arange(len(repeats)), repeats)
        u_weights = np.bincount(range_repeat, weights=v_weights)
        index = rng.permutation(len(v_weights))
        v_values, v_weights = v_values[index], v_weights[index]
        assert_allclose(w1(u_values, v_values, u_weights, v_weights, method=method), 0, atol=1e-15)

    @pytest.mark.parametrize("nu", (8, 9, 38))
    @pytest.mark.parametrize("nv", (8, 12, 17))
    @pytest.mark.parametrize("ndim", (3, 5, 23))
    def test_collapse_nD(self, method, nu, nv, ndim):
        rng = np.random.default_rng(38573488467338826109)
        u_values = rng.random(size=(nu, ndim))
        v_values = np.zeros((nv, ndim))
        u_weights = rng.random(size=nu)
        v_weights = rng.random(size=nv)
        ref = np.average(np.linalg.norm(u_values, axis=1), weights=u_weights)
        assert_allclose(w1(u_values, v_values, u_weights, v_weights, method=method), ref)

    @pytest.mark.parametrize("nu", (8, 16, 32))
    @pytest.mark.parametrize("nv", (8, 16, 32))
    @pytest.mark.parametrize("ndim", (1, 2, 6))
    def test_zero_weight_nD(self, method, nu, nv, ndim):
        rng = np.random.default_rng(38573488467338826109)
        u_values, v_values, u_weights, v_weights = _random_problem(rng, nu, nv, ndim)
        ref = w1(u_values, v_values, u_weights, v_weights, method=method)
        add_row, nrows = rng.integers(0, nu, size=2)
        add_value = rng.random(size=(nrows, ndim))
        u_values = np.insert(u_values, add_row, add_value, axis=0)
        u_weights = np.insert(u_weights, add_row, np.zeros(nrows), axis=0)
        assert_allclose(w1(u_values, v_values, u_weights, v_weights, method=method), ref)

    def test_inf_values(self, method):
        # scipy returns inf or NaN; otdist refuses non-finite input.
        with pytest.raises(otdist.InputError):
            w1([[1, 1], [2, 1]], [[np.inf, -np.inf]], [1, 1], method=method)
        with pytest.raises(otdist.InputError):
            w1([[np.inf, np.inf]], [[np.inf, -np.inf]], method=method)

    @pytest.mark.parametrize("nu", (10, 15, 20))
    @pytest.mark.parametrize("nv", (10, 15, 20))
    @pytest.mark.parametrize("ndim", (1, 3, 5))
    def test_multi_dim_nD(self, method, nu, nv, ndim):
        rng = np.random.default_rng(2736495738494849509)
        u_values, v_values, u_weights, v_weights = _random_problem(rng, nu, nv, ndim)
        ref = w1(u_values, v_values, u_weights, v_weights, method=method)
        add_dim = rng.integers(0, ndim)
        add_value = rng.random()
        u_values = np.insert(u_values, add_dim, add_value, axis=1)
        v_values = np.insert(v_values, add_dim, add_value, axis=1)
        assert_allclose(w1(u_values, v_values, u_weights, v_weights, method=method), ref)

    @pytest.mark.parametrize("nu", (7, 13, 19))
    @pytest.mark.parametrize("nv", (7, 13, 19))
    @pytest.mark.parametrize("ndim", (2, 4, 7))
    def test_orthogonal_nD(self, method, nu, nv, ndim):
        rng = np.random.default_rng(34746837464536)
        u_values, v_values, u_weights, v_weights = _random_problem(rng, nu, nv, ndim)
        ref = w1(u_values, v_values, u_weights, v_weights, method=method)
        transform = ortho_group(ndim).rvs(random_state=rng)
        shift = rng.random(size=ndim)
        res = w1(u_values @ transform + shift, v_values @ transform + shift, u_weights, v_weights, method=method)
        assert_allclose(res, ref)

    def test_error_code(self, method):
        # scipy raises ValueError('Invalid input values...'); otdist raises InputError (a ValueError).
        rng = np.random.default_rng(52473644737485644836320101)
        with pytest.raises(otdist.InputError):
            w1(rng.random(size=(4, 10, 15)), rng.random(size=(6, 2, 7)), method=method)
        with pytest.raises(otdist.InputError):
            w1(rng.random(size=(15,)), rng.random(size=(3, 15)), method=method)
        with pytest.raises(otdist.InputError):
            w1(rng.random(size=(2, 10)), rng.random(size=(2, 2)), method=method)

    @pytest.mark.parametrize("u_size", [1, 10, 50])
    @pytest.mark.parametrize("v_size", [1, 10, 50])
    def test_optimization_vs_analytical(self, method, u_size, v_size):
        rng = np.random.default_rng(45634745675)
        u_values = rng.random(size=(u_size, 1))
        v_values = rng.random(size=(v_size, 1))
        d1 = scipy.stats.wasserstein_distance(u_values.ravel(), v_values.ravel())
        assert_allclose(w1(u_values, v_values, method=method), d1)
        assert_allclose(w1(u_values.ravel(), v_values.ravel(), method=method), d1)
        u_weights = rng.random(size=u_size)
        v_weights = rng.random(size=v_size)
        d1 = scipy.stats.wasserstein_distance(u_values.ravel(), v_values.ravel(), u_weights, v_weights)
        assert_allclose(w1(u_values, v_values, u_weights, v_weights, method=method), d1)
        assert_allclose(w1(u_values.ravel(), v_values.ravel(), u_weights, v_weights, method=method), d1)


# ----------------------------------------------------------------------------- TestEntropy (relative entropy)


class TestEntropy:
    def test_entropy_positive(self):
        pk = [0.5, 0.2, 0.3]
        qk = [0.1, 0.25, 0.65]
        assert_allclose(otdist.kl(pk, pk), 0.0, atol=1e-16)
        assert -otdist.kl(pk, qk) < 0.0

    def test_entropy_base(self):
        pk = np.ones(16)
        qk = np.where(np.arange(16) < 8, 2.0, 1.0)
        ratio = otdist.kl(pk, qk) / otdist.kl(pk, qk, base=2.0)
        assert abs(ratio - math.log(2.0)) < 1e-5

    def test_entropy_2d(self):
        # scipy reduces along axis 0: one histogram per column here.
        pk = np.array([[0.1, 0.2], [0.6, 0.3], [0.3, 0.5]])
        qk = np.array([[0.2, 0.1], [0.3, 0.6], [0.5, 0.3]])
        assert_allclose([otdist.kl(pk[:, j], qk[:, j]) for j in range(2)], [0.1933259, 0.18609809])

    def test_entropy_2d_zero(self):
        pk = np.array([[0.1, 0.2], [0.6, 0.3], [0.3, 0.5]])
        qk = np.array([[0.0, 0.1], [0.3, 0.6], [0.5, 0.3]])
        assert_allclose([otdist.kl(pk[:, j], qk[:, j]) for j in range(2)], [np.inf, 0.18609809])
        pk = np.array([[0.0, 0.2], [0.6, 0.3], [0.3, 0.5]])
        assert_allclose([otdist.kl(pk[:, j], qk[:, j]) for j in range(2)], [0.17403988, 0.18609809])

    def test_entropy_2d_nondefault_axis(self):
        pk = np.array([[0.1, 0.2], [0.6, 0.3], [0.3, 0.5]])
        qk = np.array([[0.2, 0.1], [0.3, 0.6], [0.5, 0.3]])
        assert_allclose([otdist.kl(pk[i], qk[i]) for i in range(3)], [0.23104906, 0.23104906, 0.12770641])

    def test_entropy_raises_value_error(self):
        # Histograms of different lengths: scipy's broadcasting ValueError, otdist's InputError.
        with pytest.raises(otdist.InputError):
            otdist.kl([0.1, 0.6, 0.3], [0.1, 0.6])
        with pytest.raises(otdist.InputError):
            otdist.kl(np.ones(10), np.ones(11))

    def test_input_validation(self):
        with pytest.raises(otdist.InputError):
            otdist.kl(np.ones(10), np.ones(10), base=-2)


# ----------------------------------------------------------------------------- jensenshannon


def test_jensenshannon():
    assert math.isclose(otdist.js_distance([1.0, 0.0, 0.0], [0.0, 1.0, 0.0], base=2.0), 1.0)
    assert math.isclose(otdist.js_distance([1.0, 0.0], [0.5, 0.5]), 0.46450140402245893)
    assert math.isclose(otdist.js_distance([1.0, 0.0, 0.0], [1.0, 0.0, 0.0]), 0.0)
    # scipy's axis=0 pairs single-entry histograms (distance 0); axis=1 the one row.
    p_rows, q_rows = np.array([[1.0, 2.0]]), np.array([[0.5, 1.5]])
    for j in range(2):
        assert_allclose(otdist.js_distance(p_rows[:, j], q_rows[:, j]), 0.0, atol=1.5e-7)
    assert_allclose(otdist.js_distance(p_rows[0], q_rows[0]), 0.0649045, atol=1.5e-7)
    a = np.array([[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]])
    b = np.array([[13, 14, 15, 16], [17, 18, 19, 20], [21, 22, 23, 24]])
    assert_allclose([otdist.js_distance(a[:, j], b[:, j]) for j in range(4)],
                    [0.1954288, 0.1447697, 0.1138377, 0.0927636], atol=1.5e-7)
    assert_allclose([otdist.js_distance(a[i], b[i]) for i in range(3)],
                    [0.1402339, 0.0399106, 0.0201815], atol=1.5e-7)


SCIPY_DISTANCE_DATA = os.path.join(os.path.dirname(scipy.__file__), "spatial", "tests", "data")


@pytest.mark.parametrize("dtype, rtol", ((np.float64, 1e-11), (np.float32, 1e-8)))
def test_pdist_jensenshannon_random(dtype, rtol):
    # scipy's pdist(X, 'jensenshannon') against its stored reference, pair by pair.
    try:
        x = np.loadtxt(os.path.join(SCIPY_DISTANCE_DATA, "pdist-double-inp.txt"))
        expected = np.loadtxt(os.path.join(SCIPY_DISTANCE_DATA, "pdist-jensenshannon-ml.txt"))
    except OSError:
        pytest.skip("this scipy installation ships without its test data")
    x = x.astype(dtype)
    pairs = [(i, j) for i in range(len(x)) for j in range(i + 1, len(x))]
    got = np.array([otdist.js_distance(x[i], x[j]) for i, j in pairs])
    assert_allclose(got, expected, rtol=rtol)
