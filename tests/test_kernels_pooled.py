"""Pooled kernel matrices and batched permutation statistics; every error path of otdist.kernels."""

import numpy as np
import pytest
from scipy.spatial.distance import cdist

import otdist
import otdist._kernels_blocks
from otdist.kernels import energy_distance, kernel_matrix, median_bandwidth, mmd, pooled_kernel, pooled_statistic

SEEDS = (0, 1, 2)


def _samples(seed, n=25, m=18, d=2):
    rng = np.random.default_rng(seed)
    return rng, rng.normal(size=(n, d)), rng.normal(size=(m, d)) + 0.5


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("unbiased", [False, True])
@pytest.mark.parametrize("kernel", ["gaussian", "laplacian", "energy", "polynomial"])
def test_each_permutation_gives_the_mmd_of_its_relabelled_samples(seed, unbiased, kernel):
    rng, x, y = _samples(seed)
    z, n = np.vstack([x, y]), len(x)
    perms = np.stack([np.arange(len(z))] + [rng.permutation(len(z)) for _ in range(6)])
    stats = pooled_statistic(pooled_kernel(x, y, kernel), n, perms, unbiased=unbiased)
    h = median_bandwidth(z) if kernel in ("gaussian", "laplacian") else None
    expected = [mmd(z[p[:n]], z[p[n:]], kernel, h, squared=True, unbiased=unbiased) for p in perms]
    np.testing.assert_allclose(stats, expected, rtol=1e-10, atol=1e-13)
    assert stats[0] == pytest.approx(mmd(x, y, kernel, squared=True, unbiased=unbiased), rel=1e-10, abs=1e-13)


def test_energy_kernel_gives_the_squared_energy_distance():
    rng, x, y = _samples(3, d=1)
    stats = pooled_statistic(pooled_kernel(x, y, "energy"), len(x), np.arange(len(x) + len(y)))
    assert stats.shape == (1,)
    assert stats[0] == pytest.approx(energy_distance(x[:, 0], y[:, 0]) ** 2, rel=1e-12)


def test_chunks_of_permutations_give_the_same_statistics(monkeypatch):
    rng, x, y = _samples(4)
    K = pooled_kernel(x, y)
    perms = np.stack([rng.permutation(len(K)) for _ in range(30)])
    whole = pooled_statistic(K, len(x), perms, unbiased=True)
    monkeypatch.setattr(otdist._kernels_pooled, "BLOCK_ENTRIES", 3 * len(K))
    # Matrix products of other shapes sum in another order: rounding of N^2 / n^2 kernel entries of size <= 1.
    np.testing.assert_allclose(pooled_statistic(K, len(x), perms, unbiased=True), whole, rtol=0, atol=1e-13)


def test_torch_kernel_gives_torch_statistics():
    torch = pytest.importorskip("torch")
    rng, x, y = _samples(5)
    perms = np.stack([rng.permutation(len(x) + len(y)) for _ in range(8)])
    expected = pooled_statistic(pooled_kernel(x, y), len(x), perms)
    K = pooled_kernel(torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32))
    assert K.dtype == torch.float32 and K.shape == (len(x) + len(y),) * 2
    stats = pooled_statistic(K, len(x), torch.as_tensor(perms))
    assert stats.dtype == torch.float32 and stats.shape == (8,)
    # float32 kernel entries (relative error 6e-8) summed over N^2 / n^2 terms: 1e-5 of the kernel's scale.
    np.testing.assert_allclose(stats.numpy(), expected, atol=1e-5)


def test_kernel_matrix_matches_direct_formulas():
    _, x, y = _samples(6)
    h = 0.7
    np.testing.assert_allclose(kernel_matrix(x, y, "gaussian", h), np.exp(-cdist(x, y, "sqeuclidean") / (2 * h * h)),
                               rtol=1e-14)
    np.testing.assert_allclose(kernel_matrix(x, y, "laplacian", h), np.exp(-cdist(x, y) / h), rtol=1e-14)
    np.testing.assert_allclose(kernel_matrix(x, y, "energy"), -cdist(x, y), rtol=1e-14)
    np.testing.assert_allclose(kernel_matrix(x, y, "polynomial"), (x @ y.T / 2 + 1) ** 3, rtol=1e-14)


# ---------------------------------------------------------------- errors

def _x_y():
    return _samples(7)[1:]


@pytest.mark.parametrize("bandwidth", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_bandwidths(bandwidth):
    x, y = _x_y()
    with pytest.raises(otdist.InputError, match="bandwidth must be a real number > 0"):
        mmd(x, y, bandwidth=bandwidth)


def test_bandwidth_of_the_wrong_type_or_for_a_kernel_without_one():
    x, y = _x_y()
    with pytest.raises(otdist.InputTypeError, match="bandwidth must be a real number"):
        mmd(x, y, bandwidth="1.0")
    for kernel in ("energy", "polynomial", lambda p, q: p @ q.T):
        with pytest.raises(otdist.InputError, match="bandwidth only applies to"):
            mmd(x, y, kernel, bandwidth=1.0)


def test_unknown_kernels():
    x, y = _x_y()
    with pytest.raises(otdist.InputError, match="kernel must be one of 'gaussian'"):
        mmd(x, y, "rbf")
    with pytest.raises(otdist.InputTypeError, match="or a callable"):
        mmd(x, y, 3)


def test_callable_kernels_of_the_wrong_shape_or_with_nan():
    x, y = _x_y()
    with pytest.raises(otdist.InputError, match=r"kernel\(x, y\) must return the 25 x 25 matrix"):
        mmd(x, y, lambda p, q: np.ones((len(p), len(q) + 1)))
    with pytest.raises(otdist.InputError, match="must be finite"):
        mmd(x, y, lambda p, q: np.full((len(p), len(q)), np.nan))


def test_squared_and_unbiased_options():
    x, y = _x_y()
    with pytest.raises(otdist.InputError, match="has no square root"):
        mmd(x, y, unbiased=True)
    with pytest.raises(otdist.InputError, match="got weights"):
        mmd(x, y, squared=True, unbiased=True, x_weights=np.ones(len(x)))
    with pytest.raises(otdist.InputError, match="at least 2 points per sample"):
        mmd(x[:1], y, squared=True, unbiased=True)
    with pytest.raises(otdist.InputTypeError, match="squared must be True or False"):
        mmd(x, y, squared=1)
    with pytest.raises(otdist.InputTypeError, match="unbiased must be True or False"):
        mmd(x, y, squared=True, unbiased="yes")


@pytest.mark.parametrize("function", [energy_distance, mmd])
def test_bad_samples_and_weights(function):
    x, y = _x_y()
    weights = "u_weights" if function is energy_distance else "x_weights"
    with pytest.raises(otdist.InputError, match="same number of columns"):
        function(x, y[:, :1])
    with pytest.raises(otdist.InputError, match="must be finite"):
        function(np.vstack([x, [np.nan, 0.0]]), y)
    with pytest.raises(otdist.InputError, match="at least one point"):
        function(np.zeros((0, 2)), y)
    with pytest.raises(otdist.InputTypeError, match="real numbers"):
        function(["a", "b"], ["c"])
    with pytest.raises(otdist.InputError, match="non-negative"):
        function(x, y, **{weights: -np.ones(len(x))})
    with pytest.raises(otdist.InputError, match="one weight per point"):
        function(x, y, **{weights: np.ones(len(x) + 1)})


def test_kernel_matrix_and_pooled_kernel_errors():
    x, y = _x_y()
    with pytest.raises(otdist.InputError, match="needs a bandwidth here"):
        kernel_matrix(x, y, "gaussian")
    with pytest.raises(otdist.MemoryGuardError, match="above its limit"):
        kernel_matrix(x, y, "energy", max_size=100)
    with pytest.raises(otdist.MemoryGuardError, match="above its limit"):
        pooled_kernel(x, y, max_size=100)


def test_pooled_statistic_errors():
    x, y = _x_y()
    K, size, n = pooled_kernel(x, y), len(x) + len(y), len(x)
    with pytest.raises(otdist.InputError, match="square"):
        pooled_statistic(K[:, 1:], n, np.arange(size))
    with pytest.raises(otdist.InputTypeError, match="integer array"):
        pooled_statistic(K, n, np.arange(size, dtype=float))
    with pytest.raises(otdist.InputError, match=f"shape \\(B, {size}\\)"):
        pooled_statistic(K, n, np.arange(size - 1))
    repeated = np.arange(size)
    repeated[3] = 4
    with pytest.raises(otdist.InputError, match="row 1 is not"):
        pooled_statistic(K, n, np.stack([np.arange(size), repeated]))
    with pytest.raises(otdist.InputError, match="n must leave at least 1"):
        pooled_statistic(K, size, np.arange(size))
    with pytest.raises(otdist.InputError, match="n must leave at least 2"):
        pooled_statistic(K, size - 1, np.arange(size), unbiased=True)
    with pytest.raises(otdist.InputTypeError, match="n must be an integer"):
        pooled_statistic(K, 2.5, np.arange(size))
