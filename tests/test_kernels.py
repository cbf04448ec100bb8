"""Energy distance and MMD (otdist.kernels) against scipy, direct O(nm) formulas and closed forms."""

import doctest

import numpy as np
import pytest
import scipy.stats
from hypothesis import given
from scipy.spatial.distance import cdist, pdist
from scipy.special import gamma, hyp1f1

import otdist
import otdist._kernels_blocks
import otdist._kernels_pooled
import otdist.kernels as K
from otdist.kernels import energy_distance, median_bandwidth, mmd
from tests.conftest import weighted_sample

SEEDS = (0, 1, 2)
#: Agreement asked of two float64 evaluations of the same finite sums (relative to the value's scale).
TIGHT = 1e-12


def _direct_energy_squared(x, y, a=None, b=None):
    """2 E|X - Y| - E|X - X'| - E|Y - Y'| from the full distance matrices."""
    x, y = np.asarray(x, float).reshape(len(x), -1), np.asarray(y, float).reshape(len(y), -1)
    a = np.full(len(x), 1 / len(x)) if a is None else np.asarray(a) / np.sum(a)
    b = np.full(len(y), 1 / len(y)) if b is None else np.asarray(b) / np.sum(b)
    return 2 * a @ cdist(x, y) @ b - a @ cdist(x, x) @ a - b @ cdist(y, y) @ b


def _direct_mmd_squared(kxx, kyy, kxy, a, b):
    return a @ kxx @ a + b @ kyy @ b - 2 * a @ kxy @ b


def _gaussian(x, y, h):
    return np.exp(-cdist(x, y, "sqeuclidean") / (2 * h * h))


def _laplacian(x, y, h):
    return np.exp(-cdist(x, y) / h)


def _polynomial(x, y, h):
    return (x @ y.T / x.shape[1] + 1) ** 3


def _energy_kernel(x, y, h):
    return -cdist(x, y)


REFERENCE_KERNELS = {"gaussian": _gaussian, "laplacian": _laplacian, "polynomial": _polynomial,
                     "energy": _energy_kernel}


# ---------------------------------------------------------------- energy distance: scipy and direct formulas

@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n, m", [(1, 1), (1, 7), (40, 25), (300, 301)])
def test_energy_1d_matches_scipy_with_and_without_weights(seed, n, m):
    rng = np.random.default_rng(seed)
    u, v = rng.normal(size=n), rng.normal(0.5, 2.0, size=m)
    uw, vw = rng.random(n) + 0.01, rng.random(m) + 0.01
    assert energy_distance(u, v) == pytest.approx(scipy.stats.energy_distance(u, v), rel=TIGHT, abs=TIGHT)
    assert energy_distance(u, v, uw, vw) == pytest.approx(
        scipy.stats.energy_distance(u, v, uw, vw), rel=TIGHT, abs=TIGHT)
    assert energy_distance(u[:, None], v[:, None], uw, vw) == pytest.approx(
        scipy.stats.energy_distance(u, v, uw, vw), rel=TIGHT, abs=TIGHT)


@pytest.mark.parametrize("seed", SEEDS)
def test_energy_1d_with_ties_and_zero_weights_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    u, v = rng.integers(0, 5, size=60).astype(float), rng.integers(2, 7, size=45).astype(float)
    uw, vw = rng.integers(0, 3, size=60).astype(float), rng.random(45)
    uw[0] = 1.0
    assert energy_distance(u, v) == pytest.approx(scipy.stats.energy_distance(u, v), rel=TIGHT, abs=TIGHT)
    assert energy_distance(u, v, uw, vw) == pytest.approx(
        scipy.stats.energy_distance(u, v, uw, vw), rel=TIGHT, abs=TIGHT)


@given(weighted_sample(), weighted_sample())
def test_energy_1d_properties(first, second):
    (u, uw), (v, vw) = first, second
    scale = 1.0 + np.abs(np.concatenate([u, v])).max()
    value = energy_distance(u, v, uw, vw)
    assert value == pytest.approx(scipy.stats.energy_distance(u, v, uw, vw), rel=1e-10, abs=1e-12 * scale)
    assert value == energy_distance(v, u, vw, uw) or value == pytest.approx(energy_distance(v, u, vw, uw), rel=1e-14)
    assert energy_distance(u, u, uw, uw) == 0.0


@given(weighted_sample(d=2, max_size=15), weighted_sample(d=2, max_size=15))
def test_energy_multivariate_properties(first, second):
    (x, a), (y, b) = first, second
    scale = 1.0 + np.abs(np.concatenate([x, y])).max()
    value = energy_distance(x, y, a, b)
    # The squared value cancels terms of size ~scale: its rounding is ~1e-13 scale, its root's ~sqrt of that.
    assert value**2 == pytest.approx(max(_direct_energy_squared(x, y, a, b), 0.0), abs=1e-12 * scale)
    assert value == pytest.approx(energy_distance(y, x, b, a), abs=np.sqrt(1e-12 * scale))
    assert energy_distance(x, x, a, a) == 0.0


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("d", [2, 5])
def test_energy_multivariate_matches_direct_formula_and_szekely_square(seed, d):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(60, d)), rng.normal(size=(45, d)) * 1.5 + 0.3
    a, b = rng.random(60), rng.random(45)
    direct = _direct_energy_squared(x, y, a, b)
    assert energy_distance(x, y, a, b) == pytest.approx(np.sqrt(direct), rel=TIGHT)
    # Székely's statistic (and dcor.energy_distance) with equal weights: the square of the value.
    szekely = 2 * cdist(x, y).mean() - cdist(x, x).mean() - cdist(y, y).mean()
    assert energy_distance(x, y) ** 2 == pytest.approx(szekely, rel=TIGHT)


def test_energy_row_blocks_give_the_same_value_and_never_exceed_the_block(monkeypatch):
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(37, 3)), rng.normal(size=(29, 3))
    whole = energy_distance(x, y)
    monkeypatch.setattr(otdist._kernels_blocks, "BLOCK_ENTRIES", 64)
    assert energy_distance(x, y) == pytest.approx(whole, rel=TIGHT)
    assert whole == pytest.approx(np.sqrt(_direct_energy_squared(x, y)), rel=TIGHT)
    largest = []

    def recording(p, q):
        largest.append(len(p) * len(q))
        return -cdist(p, q)

    assert mmd(x, y, recording) == pytest.approx(whole, rel=TIGHT)
    assert max(largest) <= 64


def test_energy_uses_distances_not_squared_distances():
    """Equal means, different spreads: energy tells them apart; the squared-distance formula gives 0."""
    x, y = np.array([-1.0, 1.0]), np.array([-2.0, 2.0])
    # E|X - Y| = 2, E|X - X'| = 1, E|Y - Y'| = 2 by hand: energy^2 = 4 - 1 - 2 = 1.
    assert energy_distance(x, y) == pytest.approx(1.0, rel=TIGHT)
    in_the_plane = np.stack([x, 0 * x], axis=1), np.stack([0 * y, y], axis=1)  # the pairwise (not CDF) path
    assert energy_distance(*in_the_plane) == pytest.approx(np.sqrt(_direct_energy_squared(*in_the_plane)), rel=TIGHT)
    assert energy_distance(*in_the_plane) > 0.5
    squared_version = 2 * cdist(x[:, None], y[:, None], "sqeuclidean").mean() \
        - cdist(x[:, None], x[:, None], "sqeuclidean").mean() - cdist(y[:, None], y[:, None], "sqeuclidean").mean()
    assert squared_version == pytest.approx(2 * (x.mean() - y.mean()) ** 2, abs=TIGHT) and abs(squared_version) < TIGHT
    rng = np.random.default_rng(0)
    p, q = rng.normal(size=(50, 2)), rng.normal(size=(40, 2)) + [0.5, -1.0]
    collapsed = (2 * cdist(p, q, "sqeuclidean").mean() - cdist(p, p, "sqeuclidean").mean()
                 - cdist(q, q, "sqeuclidean").mean())
    assert collapsed == pytest.approx(2 * np.sum((p.mean(0) - q.mean(0)) ** 2), rel=1e-10)


def _expected_norm(delta, s, d):
    """E|W| for W ~ N(delta, s^2 I_d) through the confluent hypergeometric function."""
    return s * np.sqrt(2) * gamma((d + 1) / 2) / gamma(d / 2) * hyp1f1(-0.5, d / 2, -np.sum(delta**2) / (2 * s * s))


def _t_tolerance(estimates, level=1e-3):
    """Two-sided Student-t half-width of the mean of independent estimates at the given level."""
    k = len(estimates)
    return scipy.stats.t.ppf(1 - level / 2, k - 1) * np.std(estimates, ddof=1) / np.sqrt(k)


@pytest.mark.parametrize("d", [1, 3])
def test_energy_between_gaussians_matches_hypergeometric_closed_form(d):
    mu, s1, s2 = np.full(d, 0.7), 1.0, 1.5
    truth = (2 * _expected_norm(mu, np.sqrt(s1**2 + s2**2), d) - _expected_norm(0 * mu, np.sqrt(2) * s1, d)
             - _expected_norm(0 * mu, np.sqrt(2) * s2, d))
    estimates = []
    for seed in range(10):
        rng = np.random.default_rng(seed)
        x, y = rng.normal(size=(300, d)) * s1, rng.normal(size=(300, d)) * s2 + mu
        estimates.append(mmd(x, y, "energy", squared=True, unbiased=True))  # unbiased: its mean is the truth
    assert np.mean(estimates) == pytest.approx(truth, abs=_t_tolerance(estimates))
    assert _expected_norm(np.zeros(1), 2.0, 1) == pytest.approx(2.0 * np.sqrt(2 / np.pi), rel=TIGHT)


# ---------------------------------------------------------------- MMD: closed forms, U-statistic, GeomLoss

@pytest.mark.parametrize("d", [1, 2])
def test_gaussian_mmd_between_gaussians_matches_closed_form(d):
    h, s1, s2, mu = 1.3, 1.0, 0.6, np.full(d, 0.5)

    def expected_kernel(delta, s2_sum):  # E exp(-|W|^2 / 2h^2) for W ~ N(delta, s2_sum I)
        return (h * h / (h * h + s2_sum)) ** (d / 2) * np.exp(-np.sum(delta**2) / (2 * (h * h + s2_sum)))

    truth = (expected_kernel(0 * mu, 2 * s1**2) + expected_kernel(0 * mu, 2 * s2**2)
             - 2 * expected_kernel(mu, s1**2 + s2**2))
    estimates = []
    for seed in range(10):
        rng = np.random.default_rng(100 + seed)
        x, y = rng.normal(size=(250, d)) * s1, rng.normal(size=(250, d)) * s2 + mu
        estimates.append(mmd(x, y, "gaussian", bandwidth=h, squared=True, unbiased=True))
    assert np.mean(estimates) == pytest.approx(truth, abs=_t_tolerance(estimates))


@pytest.mark.parametrize("kernel", ["gaussian", "laplacian", "energy", "polynomial"])
@pytest.mark.parametrize("p", [0.0, 0.3, 0.75])
def test_mmd_of_two_point_measure_against_a_dirac_in_closed_form(kernel, p):
    """P = p δ_0 + (1 - p) δ_t, Q = δ_0: MMD² = (1 - p)² (k(t, t) + k(0, 0) - 2 k(0, t))."""
    h, t = 0.8, np.array([[1.5, -2.0]])
    zero = np.zeros((1, 2))
    k = {"gaussian": lambda: 2 - 2 * np.exp(-6.25 / (2 * h * h)), "laplacian": lambda: 2 - 2 * np.exp(-2.5 / h),
         "energy": lambda: 2 * 2.5, "polynomial": lambda: (6.25 / 2 + 1) ** 3 + 1 - 2}[kernel]()
    truth = (1 - p) ** 2 * k
    bandwidth = h if kernel in ("gaussian", "laplacian") else None
    value = mmd(np.vstack([zero, t]), zero, kernel, bandwidth, squared=True, x_weights=[p, 1 - p])
    assert value == pytest.approx(truth, rel=TIGHT, abs=TIGHT)
    root = mmd(np.vstack([zero, t]), zero, kernel, bandwidth, x_weights=[p, 1 - p])
    assert root == pytest.approx(np.sqrt(truth), rel=TIGHT)


@pytest.mark.parametrize("kernel", ["gaussian", "laplacian", "energy", "polynomial"])
@pytest.mark.parametrize("seed", SEEDS)
def test_weighted_v_statistic_matches_direct_matrices(kernel, seed):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(30, 3)), rng.normal(size=(20, 3)) + 0.4
    a, b = rng.random(30), rng.random(20)
    h = 0.9
    ref = REFERENCE_KERNELS[kernel]
    truth = _direct_mmd_squared(ref(x, x, h), ref(y, y, h), ref(x, y, h), a / a.sum(), b / b.sum())
    bandwidth = h if kernel in ("gaussian", "laplacian") else None
    assert mmd(x, y, kernel, bandwidth, squared=True, x_weights=a, y_weights=b) == pytest.approx(truth, rel=TIGHT)


@pytest.mark.parametrize("kernel", ["gaussian", "laplacian", "energy", "polynomial", "callable"])
def test_unbiased_u_statistic_matches_a_loop(kernel):
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(9, 2)), rng.normal(size=(7, 2)) + 0.5
    h = 0.7
    if kernel == "callable":
        def k(p, q):
            return np.exp(-cdist(p, q, "cityblock"))
        kernel_arg, bandwidth = k, None
    else:
        def k(p, q):
            return REFERENCE_KERNELS[kernel](p, q, h)
        kernel_arg, bandwidth = kernel, (h if kernel in ("gaussian", "laplacian") else None)
    n, m = len(x), len(y)
    within_x = sum(k(x[i:i + 1], x[j:j + 1])[0, 0] for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    within_y = sum(k(y[i:i + 1], y[j:j + 1])[0, 0] for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    across = sum(k(x[i:i + 1], y[j:j + 1])[0, 0] for i in range(n) for j in range(m)) / (n * m)
    value = mmd(x, y, kernel_arg, bandwidth, squared=True, unbiased=True)
    assert value == pytest.approx(within_x + within_y - 2 * across, rel=1e-11, abs=TIGHT)


def test_unbiased_statistic_can_be_negative_and_the_biased_one_cannot():
    rng = np.random.default_rng(11)
    signs = []
    for _ in range(20):
        x, y = rng.normal(size=(15, 2)), rng.normal(size=(15, 2))
        signs.append(mmd(x, y, squared=True, unbiased=True) < 0)
        assert mmd(x, y, squared=True) >= 0
    assert any(signs)


@pytest.mark.parametrize("seed", SEEDS)
def test_mmd_with_energy_kernel_is_the_energy_distance(seed):
    rng = np.random.default_rng(seed)
    u, v, uw, vw = rng.normal(size=35), rng.normal(size=50) + 0.2, rng.random(35), rng.random(50)
    # 1-D: energy_distance uses the CDF formula, mmd all pairs.
    assert mmd(u, v, "energy", x_weights=uw, y_weights=vw) == pytest.approx(
        scipy.stats.energy_distance(u, v, uw, vw), rel=1e-11)
    x, y = rng.normal(size=(35, 3)), rng.normal(size=(50, 3))
    assert mmd(x, y, "energy") == pytest.approx(energy_distance(x, y), rel=TIGHT)


@pytest.mark.parametrize("kernel", ["gaussian", "laplacian", "energy"])
@pytest.mark.parametrize("seed", SEEDS)
def test_geomloss_returns_half_the_squared_mmd(kernel, seed):
    torch = pytest.importorskip("torch")
    geomloss = pytest.importorskip("geomloss")
    rng = np.random.default_rng(seed)
    n, m, h = 40, 55, 0.8
    x, y = rng.normal(size=(n, 3)), rng.normal(size=(m, 3)) + 0.3
    bandwidth = None if kernel == "energy" else h
    ours = mmd(x, y, kernel, bandwidth, squared=True)
    theirs = float(geomloss.SamplesLoss(kernel, blur=h, backend="tensorized")(torch.tensor(x), torch.tensor(y)))
    # GeomLoss's distances are sqrt(max(|x - y|^2, 1e-8)), of x / blur and y / blur for the laplacian kernel, so a
    # point is 1e-4 away from itself: k(x, x) is exp(-1e-4) (laplacian) or -1e-4 (energy) instead of 1 or 0,
    # which lowers 2 * loss by (k(0) - k(x, x)) (1/n + 1/m). The gaussian kernel uses unclamped squared distances.
    shift = {"gaussian": 0.0, "laplacian": 1 - np.exp(-1e-4), "energy": 1e-4}[kernel]
    assert 2 * theirs + shift * (1 / n + 1 / m) == pytest.approx(ours, rel=1e-9)


# ---------------------------------------------------------------- the median heuristic

def test_median_bandwidth_is_the_median_pairwise_distance(rng):
    x, y = rng.normal(size=(40, 3)), rng.normal(size=(30, 3))
    z = np.vstack([x, y])
    assert median_bandwidth(z) == np.median(pdist(z))
    assert mmd(x, y) == mmd(x, y, bandwidth=float(np.median(pdist(z))))


def test_median_bandwidth_subsamples_with_its_own_seed_and_leaves_the_global_rng_alone():
    z = np.random.default_rng(5).normal(size=(K.MEDIAN_MAX_POINTS + 500, 2))
    chosen = np.random.default_rng(K.MEDIAN_SEED).choice(len(z), K.MEDIAN_MAX_POINTS, replace=False)
    state = np.random.get_state()[1].copy()
    assert median_bandwidth(z) == np.median(pdist(z[chosen]))
    assert median_bandwidth(z) == median_bandwidth(z)
    assert np.array_equal(np.random.get_state()[1], state)


def test_median_bandwidth_of_coinciding_points():
    assert median_bandwidth(np.zeros((5, 2))) == K.DEGENERATE_BANDWIDTH
    assert median_bandwidth([3.0]) == K.DEGENERATE_BANDWIDTH
    z = np.array([0.0] * 6 + [1.0, 4.0])  # 15 of 28 pairs coincide: the median of the 13 others
    pairs = pdist(z[:, None])
    assert np.median(pairs) == 0
    assert median_bandwidth(z) == np.median(pairs[pairs > 0])
    assert mmd(np.zeros(4), np.zeros(3)) == 0.0


# ---------------------------------------------------------------- registry

def test_registered_metrics():
    energy, kernel = otdist.registry.metric("energy"), otdist.registry.metric("mmd")
    flags = (energy.kind, energy.symmetric, energy.zero_on_identical, energy.permutation)
    assert flags == ("distance", True, True, "pooled")
    assert energy.gradients == "values and weights" and not energy.squared
    assert (kernel.kind, kernel.squared, kernel.permutation) == ("distance", False, "pooled")
    rng = np.random.default_rng(0)
    x, y, w = rng.normal(size=(20, 2)), rng.normal(size=(15, 2)), rng.random(20)
    assert otdist.distance(x, y, metric="energy", u_weights=w) == energy_distance(x, y, w)
    assert otdist.distance(x, y, metric="mmd", kernel="laplacian") == mmd(x, y, "laplacian")
    with pytest.raises(otdist.InputError, match="sets squared"):
        otdist.distance(x, y, metric="mmd", squared=True)
    with pytest.raises(otdist.InputTypeError, match="unexpected option"):
        otdist.distance(x, y, metric="energy", p=2)
    with pytest.raises(otdist.InputError, match="kernel must be one of"):
        otdist.distance(x, y, metric="mmd", kernel="cosine")


@pytest.mark.parametrize("module", [K, otdist._kernels_pooled])
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("call", [
    lambda x, y: otdist.kernels.energy_distance(x * 1e200, y * 1e200),
    lambda x, y: otdist.kernels.mmd(x * 1e200, y * 1e200),
    lambda x, y: otdist.kernels.mmd(x * 1e120, y * 1e120, kernel="polynomial"),
    lambda x, y: otdist.kernels.mmd(x, y, bandwidth=1e-300),
])
def test_overflowing_kernel_sums_are_refused_not_nan(call):
    rng = np.random.default_rng(3)
    with pytest.raises(otdist.InputError, match="not representable"):
        call(rng.normal(size=(20, 2)), rng.normal(size=(15, 2)))
