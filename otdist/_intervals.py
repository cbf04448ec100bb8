r"""Confidence intervals for a metric between two distributions, from samples of each.

Two methods, chosen by the metric:

* ``"jackknife"`` (energy distance, MMD): the unbiased U-statistic of the squared distance, with the
  two-sample jackknife variance (every leave-one-out U-statistic in closed form from the kernel row
  sums) and a normal interval, mapped to the distance by the square root.
* ``"subsampling"`` (every sample metric; the default except for energy and MMD): the metric on
  subsamples of b = ceil(n^(2/3)) points of x and ceil(m^(2/3)) of y, drawn without replacement; the
  law of (T_b - T_n) / sqrt(1/b_x - 1/n + 1/b_y - 1/m) estimates that of (T_n - T) / sqrt(1/n + 1/m)
  (Politis & Romano; the -1/n, -1/m terms correct for subsamples drawn from the samples themselves).
  The bootstrap is not used: at P = Q the plug-in W_p and Sinkhorn estimates sit at the boundary of
  their range, where the bootstrap is inconsistent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from . import _validation as V
from ._two_sample_engines import SINKHORN, engine_for, pooled_points, recompute, sample_metric
from .exceptions import InputError

#: Subsample sizes are ceil(n ** SUBSAMPLE_EXPONENT) (and at most n - 1).
SUBSAMPLE_EXPONENT = 2.0 / 3.0
#: Smallest subsample (per side), hence smallest sample (one more) for ``"subsampling"``.
MIN_SUBSAMPLE = 2
#: Subsamples drawn when ``n_resamples=None``.
DEFAULT_SUBSAMPLES = 200
#: Points per sample needed by the jackknife of a U-statistic (each leave-one-out U-statistic needs 2).
MIN_JACKKNIFE_POINTS = 3
#: Metrics with an unbiased U-statistic (of their square), hence a jackknife interval.
U_STATISTIC_METRICS = ("energy", "mmd")
METHODS = ("jackknife", "subsampling")


@dataclass(frozen=True)
class Interval:
    """A confidence interval for a metric between the distributions of two samples.

    Attributes
    ----------
    value
        The point estimate, in the metric's units: the root of the unbiased U-statistic (clipped at 0) for
        ``"jackknife"``; the metric between the whole samples for ``"subsampling"``.
    standard_error
        Its standard error: for ``"jackknife"`` through the square root (delta method), NaN at a value of 0
        where the root has no derivative; for ``"subsampling"`` the rescaled spread of the subsamples.
    lower, upper
        The interval; the lower end is never below 0 for a distance or divergence.
    level
        Its nominal coverage.
    method
        ``"jackknife"`` or ``"subsampling"``.
    metric
        The registered metric's name.
    epsilon
        The Sinkhorn divergence's absolute epsilon, the same for the samples and every subsample (a
        relative one is taken of the pooled sample's cost spread); ``distance(x, y, metric="sinkhorn",
        epsilon=epsilon)`` reproduces ``value``. None for the other metrics.
    """

    value: float
    standard_error: float
    lower: float
    upper: float
    level: float
    method: str
    metric: str
    epsilon: float | None = None


def _kernel_options(metric: str, options: dict, z: np.ndarray):
    from .kernels import BANDWIDTH_KERNELS, median_bandwidth

    if metric == "energy":
        return "energy", None
    kernel, bandwidth = options.get("kernel", "gaussian"), options.get("bandwidth")
    if bandwidth is None and not callable(kernel) and kernel in BANDWIDTH_KERNELS:
        bandwidth = median_bandwidth(z)
    return kernel, bandwidth


def jackknife_from_sums(row_x: np.ndarray, row_y: np.ndarray, cross_x: np.ndarray,
                        cross_y: np.ndarray) -> tuple[float, float]:
    """The unbiased MMD² U-statistic and its two-sample jackknife standard error, from kernel sums.

    ``row_x[i]`` is the sum of k(x_i, x_j) over j != i, ``row_y`` likewise for y; ``cross_x[i]`` the sum of
    k(x_i, y_j) over j and ``cross_y[j]`` that of k(x_i, y_j) over i. With S_xx the sum of ``row_x``,
    U = S_xx / (n(n-1)) + S_yy / (m(m-1)) - 2 S_xy / (nm). Leaving out x_i removes twice its off-diagonal
    row sum from S_xx and its cross sum from S_xy; the variance is
    (n-1)/n sum_i (U_(-i) - mean)² + (m-1)/m sum_j (U_(-j) - mean)² (Arvesen 1969).
    """
    n, m = row_x.shape[0], row_y.shape[0]
    s_xx, s_yy, s_xy = row_x.sum(), row_y.sum(), cross_x.sum()
    u = s_xx / (n * (n - 1)) + s_yy / (m * (m - 1)) - 2.0 * s_xy / (n * m)
    drop_x = (s_xx - 2.0 * row_x) / ((n - 1) * (n - 2)) + s_yy / (m * (m - 1)) - 2.0 * (s_xy - cross_x) / ((n - 1) * m)
    drop_y = s_xx / (n * (n - 1)) + (s_yy - 2.0 * row_y) / ((m - 1) * (m - 2)) - 2.0 * (s_xy - cross_y) / (n * (m - 1))
    variance = ((n - 1) / n * np.sum((drop_x - drop_x.mean()) ** 2)
                + (m - 1) / m * np.sum((drop_y - drop_y.mean()) ** 2))
    return float(u), float(math.sqrt(variance))


def jackknife_u_statistic(kxx: np.ndarray, kyy: np.ndarray, kxy: np.ndarray) -> tuple[float, float]:
    """:func:`jackknife_from_sums` of the kernel blocks k(x, x), k(y, y) and k(x, y) held whole."""
    return jackknife_from_sums(kxx.sum(1) - np.diagonal(kxx), kyy.sum(1) - np.diagonal(kyy), kxy.sum(1), kxy.sum(0))


def _jackknife(spec, z: np.ndarray, n: int, level: float, options: dict) -> Interval:
    from ._kernels_blocks import kernel_function, kernel_sums

    m = z.shape[0] - n
    if min(n, m) < MIN_JACKKNIFE_POINTS:
        raise InputError(f"the jackknife of the U-statistic needs at least {MIN_JACKKNIFE_POINTS} points per sample; "
                         f"got n={n}, m={m}. Pass larger samples.")
    kernel, bandwidth = _kernel_options(spec.name, options, z)
    k, x, y = kernel_function(kernel), z[:n], z[n:]
    row_x, _, diag_x = kernel_sums(x, x, k, bandwidth, diagonal=True)
    row_y, _, diag_y = kernel_sums(y, y, k, bandwidth, diagonal=True)
    cross_x, cross_y, _ = kernel_sums(x, y, k, bandwidth)
    u, se = jackknife_from_sums(row_x - diag_x, row_y - diag_y, cross_x, cross_y)
    half = norm.ppf(0.5 + level / 2) * se
    root = math.sqrt(max(u, 0.0))
    return Interval(root, se / (2.0 * root) if root > 0 else math.nan, math.sqrt(max(u - half, 0.0)),
                    math.sqrt(max(u + half, 0.0)), level, "jackknife", spec.name)


def subsample_size(n: int) -> int:
    """ceil(n ** SUBSAMPLE_EXPONENT), at least MIN_SUBSAMPLE and at most n - 1."""
    return min(n - 1, max(MIN_SUBSAMPLE, math.ceil(n ** SUBSAMPLE_EXPONENT)))


def _subsampling(spec, z: np.ndarray, n: int, level: float, n_resamples: int, seed, options: dict) -> Interval:

    m = z.shape[0] - n
    if min(n, m) <= MIN_SUBSAMPLE:
        raise InputError(f"subsampling needs more than {MIN_SUBSAMPLE} points per sample; got n={n}, m={m}. "
                         "Pass larger samples.")
    b_x, b_y = subsample_size(n), subsample_size(m)
    spec.check(z[:b_x], z[n:n + b_y], dict(options))
    estimate = None
    if spec.name != SINKHORN:  # the metric itself (its own checks of its options, before any engine): the estimate
        value = spec.function(z[:n], z[n:], **options)
        estimate = float(value.detach()) if hasattr(value, "detach") else float(value)
    engine = engine_for(spec, z, n, options)
    if engine.needs_partition:
        engine = recompute(spec, z, options)
    if estimate is None:  # at the engine's one epsilon, as every subsample (the engine checks the options)
        estimate = float(engine.value(engine.statistics(np.arange(z.shape[0])[None], n))[0])
    rng = np.random.default_rng(seed)
    rows_x = rng.permuted(np.tile(np.arange(n), (n_resamples, 1)), axis=1)[:, :b_x]
    rows_y = n + rng.permuted(np.tile(np.arange(m), (n_resamples, 1)), axis=1)[:, :b_y]
    replicates = np.asarray(engine.value(engine.statistics(np.concatenate([rows_x, rows_y], axis=1), b_x)))
    # T_b - T_n has variance ~ (1/b_x - 1/n) + (1/b_y - 1/m), not 1/b_x + 1/b_y: the subsamples are part of
    # the samples (the finite-population correction of sampling without replacement).
    rate_n, rate_b = 1.0 / math.sqrt(1 / n + 1 / m), 1.0 / math.sqrt(1 / b_x - 1 / n + 1 / b_y - 1 / m)
    roots = rate_b * (replicates - estimate)
    low, high = np.quantile(roots, [0.5 - level / 2, 0.5 + level / 2])
    lower, upper = estimate - high / rate_n, estimate - low / rate_n
    if spec.kind != "statistic":
        lower = max(lower, 0.0)
    spread = float(np.std(replicates, ddof=1)) if n_resamples > 1 else math.nan
    return Interval(estimate, rate_b * spread / rate_n, float(lower), float(upper), level, "subsampling", spec.name,
                    engine.epsilon)


def confidence_interval(x, y, metric: str = "energy", level: float = 0.95, method: str | None = None, seed=None,
                        n_resamples: int | None = None, **options) -> Interval:
    r"""A confidence interval for the metric between the distributions P and Q of two samples.

    Parameters
    ----------
    x, y
        Samples ``(n, d)`` and ``(m, d)`` of P and Q (1-D arrays are points on the line), NumPy or torch
        (computed in NumPy float64).
    metric
        A registered sample metric (:func:`otdist.metrics`).
    level
        Coverage in (0, 1).
    method
        ``"jackknife"`` (energy and MMD only, their default) or ``"subsampling"`` (any sample metric, the
        default for the others); see below.
    seed
        Seed of ``np.random.default_rng`` for the subsamples (``None``: fresh randomness).
    n_resamples
        Subsamples drawn by ``"subsampling"`` (default 200, ``DEFAULT_SUBSAMPLES``); unused by the jackknife.
    **options
        The metric's options (``kernel=``, ``bandwidth=``, ``p=``, ``epsilon=``, ...); no weights.

    Returns
    -------
    Interval
        ``value``, ``standard_error``, ``lower``, ``upper``, ``level``, ``method``, ``metric``.

    Notes
    -----
    ``"jackknife"``: the U-statistic U of MMD² (energy: of the squared energy distance) is unbiased, and its
    jackknife variance is never too small on average (Efron-Stein). The interval ``U ± z se`` is mapped to
    the distance by the square root (clipped at 0). The MMD's median bandwidth is computed once on the
    pooled sample and held fixed. At P = Q, U is degenerate (of order 1/n, not normal) and the interval is
    an approximation there.

    ``"subsampling"`` assumes the estimate converges at the rate sqrt(n m / (n + m)), as W_p does on the line
    and the Sinkhorn divergence and sliced W_p do for P != Q. Where it converges faster (the Sinkhorn
    divergence at P = Q, at rate 1/n), the interval is wider than needed (conservative). The Sinkhorn
    divergence is computed at one epsilon for every subsample: a relative epsilon is taken of the pooled
    sample's cost spread (as in :func:`otdist.two_sample.two_sample_test`).

    Plug-in W_p between samples in dimension d is biased upwards, by a term of order n^(-1/d) that shrinks
    far more slowly than the sqrt(n) fluctuations once d >= 3: the interval then covers the expected
    plug-in value, not W_p, and says nothing of that bias. The Sinkhorn divergence at a fixed epsilon,
    the sliced W_p, energy and MMD do not suffer from it.

    References
    ----------
    Politis, Romano & Wolf, *Subsampling* (1999); Arvesen, "Jackknifing U-statistics", Ann. Math.
    Statist. 40 (1969); Gretton et al., "A kernel two-sample test", JMLR 13 (2012).

    Examples
    --------
    >>> import numpy as np, otdist.two_sample as ts
    >>> rng = np.random.default_rng(0)
    >>> ci = ts.confidence_interval(rng.normal(size=300), rng.normal(1.0, 1.0, size=300), metric="w1", seed=0)
    >>> ci.method, ci.lower < 1.0 < ci.upper
    ('subsampling', True)
    """
    spec = sample_metric(metric, options)
    level = V.check_level(level)
    if method is None:
        method = "jackknife" if spec.name in U_STATISTIC_METRICS else "subsampling"
    V.check_choice(method, METHODS, "method")
    if method == "jackknife" and spec.name not in U_STATISTIC_METRICS:
        raise InputError(f'method="jackknife" needs a U-statistic, which {", ".join(U_STATISTIC_METRICS)} have; got '
                         f'metric={spec.name!r}. Use method="subsampling" (the default for it).')
    seed = V.check_seed(seed)
    if n_resamples is None:
        n_resamples = DEFAULT_SUBSAMPLES
    n_resamples = V.check_positive(n_resamples, "n_resamples", integer=True)
    fewest = math.ceil(round(2 / (1 - level), 9))
    if method == "subsampling" and n_resamples < fewest:
        raise InputError(f"a {level:g} subsampling interval needs at least {fewest} subsamples (one beyond each "
                         f"end); got n_resamples={n_resamples}. Pass n_resamples >= {fewest}, or omit it for "
                         f"{DEFAULT_SUBSAMPLES}.")
    z, n = pooled_points(x, y)
    spec.check(x, y, dict(options))
    if method == "jackknife":  # energy and MMD: their preflight (spec.check) checks every option
        return _jackknife(spec, z, n, level, options)
    return _subsampling(spec, z, n, level, n_resamples, seed, options)
