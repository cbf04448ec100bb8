r"""Energy distance and maximum mean discrepancy (MMD) between two samples.

For probability measures P, Q and a kernel k, the squared MMD is

.. math::
    \mathrm{MMD}_k^2(P, Q) = \mathbb{E}\,k(X, X') + \mathbb{E}\,k(Y, Y') - 2\,\mathbb{E}\,k(X, Y),
    \qquad X, X' \sim P,\ Y, Y' \sim Q,

and with k(x, y) = -|x - y| it is the squared energy distance 2E|X - Y| - E|X - X'| - E|Y - Y'|.
Values are the roots (MMD, energy distance) unless a name or option says squared. The helpers
:func:`median_bandwidth`, :func:`kernel_matrix`, :func:`pooled_kernel` and :func:`pooled_statistic`
serve permutation tests: one pooled kernel matrix, every permutation's statistic from matrix products.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import pdist

from . import _validation as V
from . import registry
from ._backend import array_out, is_torch, scalar_out, to_numpy, to_torch, torch_reference
from ._kernels_blocks import (BANDWIDTH_KERNELS, KERNELS, diagonal_sum, energy_squared_1d, kernel_function,
                              weighted_sum)
from ._kernels_pooled import pooled_statistic
from .cost import DEFAULT_MAX_SIZE
from .exceptions import InputError, InputTypeError
from .problem import pth_root

#: The median heuristic looks at the pairwise distances of at most this many pooled points.
MEDIAN_MAX_POINTS = 1000
#: Seed of the subsample the median heuristic draws above MEDIAN_MAX_POINTS (np.random.default_rng).
MEDIAN_SEED = 0
#: Bandwidth of the median heuristic when all pooled points coincide (every kernel value is then 1, and the
#: MMD of two samples of the same single point is 0 whatever the bandwidth).
DEGENERATE_BANDWIDTH = 1.0

__all__ = ["energy_distance", "mmd", "median_bandwidth", "kernel_matrix", "pooled_kernel", "pooled_statistic",
           "KERNELS"]


def _samples(x, y, x_weights, y_weights, names: tuple[str, str, str, str]):
    """(like, x, y, a, b): validated (n, d) and (m, d) points and normalised weights, torch when any input is."""
    like = torch_reference(x, y, x_weights, y_weights)
    x, y = V.as_points(x, names[0]), V.as_points(y, names[1])
    V.check_same_dim(x, y, names[:2])
    if like is not None:
        x, y = to_torch(x, like), to_torch(y, like)
    a = V.as_weights(x_weights, x.shape[0], names[2], names[0], like)
    b = V.as_weights(y_weights, y.shape[0], names[3], names[1], like)
    return like, x, y, a, b


def _squared_energy(x, a, y, b, masses):
    """2 E|X - Y| - E|X - X'| - E|Y - Y'|: the CDF formula on the line, row blocks of distances otherwise."""
    if x.shape[1] == 1:
        return energy_squared_1d(x[:, 0], masses[0], y[:, 0], masses[1])
    k = kernel_function("energy")
    within = weighted_sum(x, a, x, a, k, None) + weighted_sum(y, b, y, b, k, None)
    return within - 2.0 * weighted_sum(x, a, y, b, k, None)


def _finite(value, what: str):
    """``value``, or a clear error where the kernel sums overflowed or underflowed to NaN."""
    number = float(value.detach()) if is_torch(value) else float(value)
    if not np.isfinite(number):
        raise InputError(f"{what} is not representable in floating point for these inputs (got {number}): the "
                         "distances or kernel values overflow, or the bandwidth is too small for the points' scale. "
                         "Rescale the points (and the bandwidth with them), or choose a bandwidth near the "
                         "distances between points.")
    return value


def energy_distance(u_values, v_values, u_weights=None, v_weights=None):
    r"""Energy distance between two weighted samples, on the line or in R^d.

    .. math::
        D(P, Q) = \big(2\,\mathbb{E}|X - Y| - \mathbb{E}|X - X'| - \mathbb{E}|Y - Y'|\big)^{1/2},

    the root of the V-statistic over the samples (weights as probabilities). In 1-D it equals
    ``scipy.stats.energy_distance`` (same arguments), computed as √2 times the L2 distance between the
    two CDFs in O(N log N). For (n, d) point clouds, the distance sums run over row blocks, so memory
    stays O(block · (n + m)). Székely's energy distance (and ``dcor.energy_distance``) is the square
    of this value; GeomLoss's ``SamplesLoss("energy")`` is half the square.

    The Euclidean distance, not its square, is what makes D a metric between distributions: with
    |x - y|² the same formula collapses to 2|E X - E Y|² and cannot tell apart two distributions with
    equal means.

    Parameters
    ----------
    u_values, v_values : array or tensor, shape (n,) / (m,) or (n, d) / (m, d)
        The samples; 1-D inputs are points on the line.
    u_weights, v_weights : array or tensor, optional
        Non-negative weights, one per point (normalised); uniform by default.

    Returns
    -------
    float or 0-d tensor
        A float for NumPy input; for torch input a tensor of the input's dtype and device (float16 and
        bfloat16 computed in float32), differentiable in the values and the weights (gradient 0 where
        two points coincide, and at a zero distance).

    References
    ----------
    Székely & Rizzo, "Energy statistics: a class of statistics based on distances", J. Stat. Plan.
    Inference 143 (2013).

    Examples
    --------
    >>> import otdist.kernels as K
    >>> round(K.energy_distance([0.7, 7.4, 2.4, 6.8], [1.4, 8.0], [2.1, 4.2, 7.4, 8.0], [7.6, 8.8]), 10)
    0.8800334098
    """
    names = ("u_values", "v_values", "u_weights", "v_weights")
    like, x, y, a, b = _samples(u_values, v_values, u_weights, v_weights, names)
    masses = (None if u_weights is None else a, None if v_weights is None else b)
    with np.errstate(all="ignore"):  # a non-finite sum is refused by _finite
        squared = _finite(_squared_energy(x, a, y, b, masses), "the energy distance")
    return scalar_out(pth_root(squared, 2), like)


def _check_kernel(kernel):
    if callable(kernel):
        return kernel
    if not isinstance(kernel, str):
        raise InputTypeError(f"kernel must be one of {', '.join(map(repr, KERNELS))} or a callable kernel(x, y) -> "
                             f"(n, m) matrix; got {kernel!r} ({type(kernel).__name__}).")
    return V.check_choice(kernel, KERNELS, "kernel")


def _check_bandwidth(kernel, bandwidth):
    """The bandwidth given (checked), or None for the median heuristic."""
    if kernel not in BANDWIDTH_KERNELS or callable(kernel):
        if bandwidth is not None:
            raise InputError(f"bandwidth only applies to kernel='gaussian' or 'laplacian'; got bandwidth={bandwidth!r} "
                             f"with kernel={kernel!r}. Drop bandwidth, or pick a kernel that has one.")
        return None
    return None if bandwidth is None else V.check_positive(bandwidth, "bandwidth")


def median_bandwidth(z) -> float:
    r"""The median heuristic: the median Euclidean distance between distinct points of the sample z.

    Above ``MEDIAN_MAX_POINTS`` = 1000 points, the median is taken over a subsample of 1000 points drawn
    without replacement by ``np.random.default_rng(MEDIAN_SEED)`` (no global random state). When more
    than half of the pairs coincide (median 0), the median of the non-zero distances is used; when every
    point coincides (or z has one point), ``DEGENERATE_BANDWIDTH`` = 1.0, which changes no MMD since all
    kernel values are then 1. A torch input is read without its gradient: the bandwidth is a constant.

    Parameters
    ----------
    z : array or tensor, shape (N,) or (N, d)
        The pooled sample (for a two-sample statistic: both samples together).

    Returns
    -------
    float

    Examples
    --------
    >>> from otdist.kernels import median_bandwidth
    >>> median_bandwidth([0.0, 1.0, 3.0])
    2.0
    """
    points = to_numpy(V.as_points(z, "z"))
    if points.shape[0] > MEDIAN_MAX_POINTS:
        chosen = np.random.default_rng(MEDIAN_SEED).choice(points.shape[0], MEDIAN_MAX_POINTS, replace=False)
        points = points[chosen]
    pairs = pdist(points)
    positive = pairs[pairs > 0]
    if positive.size == 0:
        return DEGENERATE_BANDWIDTH
    median = float(np.median(pairs))
    return median if median > 0 else float(np.median(positive))


def _resolve_bandwidth(kernel, bandwidth, x, y):
    bandwidth = _check_bandwidth(kernel, bandwidth)
    if bandwidth is None and not callable(kernel) and kernel in BANDWIDTH_KERNELS:
        return median_bandwidth(np.concatenate([to_numpy(x), to_numpy(y)]))
    return bandwidth


def _check_unbiased(squared, unbiased):
    squared = V.check_flag(squared, "squared", " (MMD² instead of MMD)")
    unbiased = V.check_flag(unbiased, "unbiased", " (the U-statistic of MMD²)")
    if unbiased and not squared:
        raise InputError("unbiased=True gives the U-statistic of MMD², which can be negative and has no square root; "
                         "got squared=False. Pass squared=True with unbiased=True, or drop unbiased.")
    return squared, unbiased


def mmd(x, y, kernel="gaussian", bandwidth=None, squared=False, unbiased=False, *, x_weights=None, y_weights=None):
    r"""Maximum mean discrepancy between two samples, for a kernel k.

    .. math::
        \mathrm{MMD}^2 = \sum_{i,j} a_i a_j k(x_i, x_j) + \sum_{i,j} b_i b_j k(y_i, y_j)
                         - 2 \sum_{i,j} a_i b_j k(x_i, y_j)

    (the biased V-statistic, weights a = 1/n and b = 1/m by default). Returns MMD, its root, by default
    (0 where rounding takes the V-statistic below 0); MMD² with ``squared=True``; the unbiased U-statistic
    of MMD² with ``squared=True, unbiased=True`` (sums over i ≠ j within each sample, divided by n(n − 1)
    and m(m − 1); it can be negative).

    Kernels: ``"gaussian"`` exp(-|x - y|²/(2h²)), ``"laplacian"`` exp(-|x - y|/h), ``"energy"`` -|x - y|
    (then MMD is :func:`energy_distance`, though computed from all pairs, also in 1-D), ``"polynomial"``
    (xᵀy/d + 1)³ (the Kernel Inception Distance), or a callable ``kernel(x, y)`` returning the (n, m)
    matrix of k(x_i, y_j) for row blocks of the samples (symmetric, positive definite for MMD to be a
    metric). The bandwidth h defaults to :func:`median_bandwidth` of the pooled sample. GeomLoss's
    ``SamplesLoss(kernel, blur=h)`` uses the same kernels with σ = h and returns MMD²/2 (its laplacian and
    energy values are lower by about 1e-4 (1/n + 1/m): it puts a point 1e-4 away from itself).

    Parameters
    ----------
    x, y : array or tensor, shape (n,) / (m,) or (n, d) / (m, d)
        The samples.
    kernel : str or callable
        One of ``KERNELS`` or a callable.
    bandwidth : float, optional
        h > 0 for the gaussian and laplacian kernels (an error for the others).
    squared, unbiased : bool
        See above; ``unbiased=True`` needs ``squared=True``, unweighted samples and n, m >= 2.
    x_weights, y_weights : array or tensor, optional
        Non-negative weights (normalised) for the V-statistic.

    Returns
    -------
    float or 0-d tensor
        As for :func:`energy_distance`; differentiable in the points and weights (not the bandwidth).

    References
    ----------
    Gretton, Borgwardt, Rasch, Schölkopf & Smola, "A kernel two-sample test", JMLR 13 (2012).

    Examples
    --------
    >>> from otdist.kernels import energy_distance, mmd
    >>> x, y = [[0.0, 0.0], [1.0, 0.0]], [[0.0, 2.0], [1.0, 1.0]]
    >>> abs(mmd(x, y, kernel="energy") - energy_distance(x, y)) < 1e-12
    True
    """
    kernel = _check_kernel(kernel)
    squared, unbiased = _check_unbiased(squared, unbiased)
    _check_bandwidth(kernel, bandwidth)
    if unbiased and (x_weights is not None or y_weights is not None):
        raise InputError("unbiased=True is the U-statistic of unweighted samples; got weights. Drop the weights, or "
                         "use the weighted V-statistic (unbiased=False).")
    like, x, y, a, b = _samples(x, y, x_weights, y_weights, ("x", "y", "x_weights", "y_weights"))
    n, m = x.shape[0], y.shape[0]
    if unbiased and min(n, m) < 2:
        raise InputError(f"the unbiased MMD² needs at least 2 points per sample; got n={n}, m={m}. "
                         "Use the V-statistic (unbiased=False) or more points.")
    h = _resolve_bandwidth(kernel, bandwidth, x, y)
    k = kernel_function(kernel)
    with np.errstate(all="ignore"):  # a non-finite sum is refused by _finite
        within_x, within_y = weighted_sum(x, a, x, a, k, h), weighted_sum(y, b, y, b, k, h)
        value = within_x + within_y - 2.0 * weighted_sum(x, a, y, b, k, h)
        if unbiased:
            value = value + (within_x - diagonal_sum(x, k, h) / n) / (n - 1) \
                + (within_y - diagonal_sum(y, k, h) / m) / (m - 1)
        value = _finite(value, "the MMD")
    return scalar_out(value if squared else pth_root(value, 2), like)


def kernel_matrix(x, y, kernel="gaussian", bandwidth=None, *, max_size: int = DEFAULT_MAX_SIZE):
    """The (n, m) matrix of k(x_i, y_j), for the kernels of :func:`mmd`.

    The gaussian and laplacian kernels need ``bandwidth`` here (e.g. ``median_bandwidth(z)``).
    Refused above ``max_size`` entries (``otdist.cost.DEFAULT_MAX_SIZE`` = 25 million by default).

    Returns
    -------
    array or tensor, shape (n, m)
        float64 NumPy for NumPy input; for torch input a tensor of the input's dtype and device,
        differentiable in x and y.

    Examples
    --------
    >>> from otdist.kernels import kernel_matrix
    >>> kernel_matrix([[0.0], [3.0]], [[0.0], [4.0]], "energy")
    array([[-0., -4.],
           [-3., -1.]])
    """
    kernel = _check_kernel(kernel)
    h = _check_bandwidth(kernel, bandwidth)
    if h is None and not callable(kernel) and kernel in BANDWIDTH_KERNELS:
        raise InputError(f"kernel={kernel!r} needs a bandwidth here; got bandwidth=None. Pass bandwidth=h > 0, e.g. "
                         "otdist.kernels.median_bandwidth(z) of the pooled sample, or use pooled_kernel(x, y).")
    like, x, y, _, _ = _samples(x, y, None, None, ("x", "y", "x_weights", "y_weights"))
    return _matrix(x, y, kernel, h, max_size, like)


def _matrix(x, y, kernel, h, max_size, like):
    max_size = V.check_positive(max_size, "max_size", integer=True)
    V.check_size(x.shape[0], y.shape[0], max_size, "kernel_matrix", "mmd(x, y), which works in row blocks")
    return array_out(kernel_function(kernel)(x, y, h), like)


def pooled_kernel(x, y, kernel="gaussian", bandwidth=None, *, max_size: int = DEFAULT_MAX_SIZE):
    """The (n + m, n + m) kernel matrix of the pooled sample z = [x; y], with the bandwidth :func:`mmd` uses.

    With ``bandwidth=None`` the gaussian and laplacian kernels take ``median_bandwidth(z)``, computed
    once, so that the matrix serves every permutation of :func:`pooled_statistic` with the statistic's
    own bandwidth. ``kernel="energy"`` gives minus the distance matrix (the squared energy distance in
    :func:`pooled_statistic`).

    Examples
    --------
    >>> from otdist.kernels import pooled_kernel
    >>> pooled_kernel([0.0], [3.0], "energy")
    array([[-0., -3.],
           [-3., -0.]])
    """
    kernel = _check_kernel(kernel)
    like, x, y, _, _ = _samples(x, y, None, None, ("x", "y", "x_weights", "y_weights"))
    h = _resolve_bandwidth(kernel, bandwidth, x, y)
    if like is None:
        z = np.concatenate([x, y])
    else:
        import torch

        z = torch.cat([x, y])
    return _matrix(z, z, kernel, h, max_size, like)


def _energy_preflight(x, y, options: dict) -> None:
    V.reject_options({k: v for k, v in options.items() if k not in ("u_weights", "v_weights")}, "energy")


def _mmd_metric(x, y, u_weights=None, v_weights=None, **options):
    return mmd(x, y, x_weights=u_weights, y_weights=v_weights, **options)


def _mmd_preflight(x, y, options: dict) -> None:
    V.reject_options({k: v for k, v in options.items() if k not in ("kernel", "bandwidth", "u_weights", "v_weights")},
                     "mmd")
    kernel = _check_kernel(options.get("kernel", "gaussian"))
    _check_bandwidth(kernel, options.get("bandwidth"))


registry.register_metric(registry.MetricSpec(
    "energy", energy_distance, "energy distance (scipy's convention: the root of 2E|X-Y| - E|X-X'| - E|Y-Y'|)",
    kind="distance", symmetric=True, zero_on_identical=True, gradients="values and weights",
    memory="O(n log n) in 1-D; O(block·(n+m)) else", permutation="pooled", preflight=_energy_preflight))
registry.register_metric(registry.MetricSpec(
    "mmd", _mmd_metric, "maximum mean discrepancy MMD (root of the V-statistic; gaussian kernel, median bandwidth)",
    kind="distance", squared=False, symmetric=True, zero_on_identical=True, gradients="values and weights",
    memory="O(block·(n+m))", fixed=("squared", "unbiased"), permutation="pooled", preflight=_mmd_preflight))
