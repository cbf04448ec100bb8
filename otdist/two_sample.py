r"""Two-sample tests and confidence intervals on any registered sample metric.

:func:`two_sample_test` asks whether two samples come from the same distribution: it compares the metric
between them with its values over random relabellings of the pooled sample (a permutation test).
:func:`confidence_interval` (from :mod:`otdist._intervals`) puts an interval around the metric's value.

>>> import numpy as np, otdist.two_sample as ts
>>> rng = np.random.default_rng(0)
>>> result = ts.two_sample_test(rng.normal(size=(100, 2)), rng.normal(size=(100, 2)) + 1.0, seed=0)
>>> result.p_value == 1 / 1001
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from . import _validation as V
from . import kernels  # noqa: F401  (registers energy and mmd, the default metric)
from . import registry
from ._intervals import Interval, confidence_interval
from ._two_sample_engines import FAST_METRICS, engine_for, pooled_points, sample_metric

#: Permutations drawn when ``n_permutations=None``, for metrics computed from a pooled matrix or recomputed...
DEFAULT_PERMUTATIONS = 1000
#: ... and for metrics that refit an estimator per permutation (k-NN, classifier, neural critic).
REFIT_PERMUTATIONS = 100
#: A permuted statistic within this fraction of |T| below the observed T counts as a tie (T_perm >= T): far
#: above float64 rounding (1e-16) and the default accuracy of the iterative solvers' values (Sinkhorn's
#: marginals to 1e-10), far below any difference a test can detect. Ties only ever raise the p-value.
TIE_RTOL = 1e-8
#: Entries (permutations x pooled points) of the index array drawn at once.
PERMUTATION_BLOCK = 1 << 22

__all__ = ["TestResult", "two_sample_test", "confidence_interval", "Interval", "permutation_chunks",
           "default_permutations", "DEFAULT_PERMUTATIONS", "REFIT_PERMUTATIONS"]


@dataclass(frozen=True)
class TestResult:
    """The result of :func:`two_sample_test`.

    Attributes
    ----------
    statistic
        The metric between the two samples, in the metric's units (see the test's notes for Sinkhorn).
    p_value
        ``(1 + #{T_perm >= T}) / (1 + n_permutations)``: in (0, 1], never 0.
    null_distribution
        The statistic of each permutation, shape ``(n_permutations,)``, in the metric's units.
    n_permutations
        Permutations drawn.
    metric
        The registered metric's name.
    engine
        How the permutations were computed: ``"pooled kernel"``, ``"projections"``,
        ``"fixed-epsilon sinkhorn"`` or ``"recompute"`` (see :func:`two_sample_test`).
    epsilon
        The Sinkhorn divergence's absolute epsilon, used for the statistic and every permutation (a relative
        one is taken of the pooled sample's cost spread): ``distance(x, y, metric="sinkhorn", epsilon=epsilon)``
        reproduces ``statistic``. None for the other metrics.
    """

    __test__ = False  # not a pytest test class, whatever its name

    statistic: float
    p_value: float
    null_distribution: np.ndarray = field(repr=False, compare=False)
    n_permutations: int
    metric: str
    engine: str
    epsilon: float | None = None


def default_permutations(spec: registry.MetricSpec) -> int:
    """REFIT_PERMUTATIONS for metrics that refit an estimator per permutation, DEFAULT_PERMUTATIONS otherwise."""
    return REFIT_PERMUTATIONS if spec.permutation == "refit" else DEFAULT_PERMUTATIONS


def permutation_chunks(size: int, n_permutations: int, seed) -> Iterator[np.ndarray]:
    """The permutations of ``range(size)`` a test draws, in blocks of rows (int64, each row one permutation).

    Every row comes from ``np.random.default_rng(seed)`` (``Generator.permuted`` on blocks of
    ``PERMUTATION_BLOCK // size`` rows); no global random state is touched.
    """
    rng = np.random.default_rng(seed)
    step = max(1, PERMUTATION_BLOCK // size)
    for start in range(0, n_permutations, step):
        rows = min(step, n_permutations - start)
        yield rng.permuted(np.tile(np.arange(size, dtype=np.int64), (rows, 1)), axis=1)


def p_value(statistic: float, null: np.ndarray) -> float:
    """``(1 + #{null >= statistic}) / (1 + len(null))``, ties within TIE_RTOL * |statistic| included."""
    ties = TIE_RTOL * abs(statistic)
    return float((1 + np.count_nonzero(null >= statistic - ties)) / (1 + null.size))


def two_sample_test(x, y, metric: str = "energy", n_permutations: int | None = None, seed=None,
                    **options) -> TestResult:
    r"""Permutation test of P = Q from samples x ~ P and y ~ Q, with any registered sample metric.

    The statistic T is the metric between x and y. Under P = Q every relabelling of the pooled sample
    z = [x; y] into groups of sizes n and m is as likely as the observed one, so the statistics T_b of B
    random relabellings give the p-value

    .. math:: p = \frac{1 + \#\{b : T_b \ge T\}}{1 + B},

    which is valid at any n and m: P(p <= alpha) <= alpha under P = Q.

    Parameters
    ----------
    x, y
        Samples ``(n, d)`` and ``(m, d)`` (1-D arrays are points on the line), NumPy or torch. Torch input
        is computed in NumPy float64 (a test is not differentiable); the results are floats.
    metric
        A registered sample metric (:func:`otdist.metrics`): ``"energy"``, ``"mmd"``, ``"sliced"``,
        ``"sinkhorn"``, ``"w1"``, ``"wasserstein"``, ``"kl_knn"``, ``"js_knn"``, ``"js_classifier"``, ...
    n_permutations
        B >= 1. Default (``None``): 1000 (``DEFAULT_PERMUTATIONS``), or 100 (``REFIT_PERMUTATIONS``) for
        the metrics that refit an estimator per permutation (``permutation="refit"`` in the registry:
        k-NN, classifier and neural estimates). The smallest p-value is 1 / (B + 1).
    seed
        Seed of ``np.random.default_rng`` for the permutations (:func:`permutation_chunks`); ``None`` for
        fresh randomness. A metric's own ``seed`` option (directions of ``"sliced"``) keeps its default, so
        that every permutation is measured by the same function.
    **options
        The metric's options (``kernel=``, ``bandwidth=`` for MMD; ``epsilon=``, ``p=`` for Sinkhorn; ...).
        Weights are refused: weighted points are not exchangeable.

    Returns
    -------
    TestResult
        ``statistic``, ``p_value``, ``null_distribution``, ``n_permutations``, ``metric``, ``engine``.

    Notes
    -----
    How the B statistics are computed (``TestResult.engine``):

    * energy, MMD (``"pooled kernel"``): one (N, N) kernel matrix of the pooled sample, with the bandwidth
      of the pooled sample, and every permutation's MMD² from matrix products; above
      ``otdist.cost.DEFAULT_MAX_SIZE`` entries, recomputed per permutation in row blocks.
    * sliced W_p, and W_p on the line (``"projections"``): the pooled sample is projected once onto the
      directions and sorted once; each permutation reads its groups' sorted projections off that order.
    * Sinkhorn divergence (``"fixed-epsilon sinkhorn"``): each permutation is solved at one epsilon for
      all of them. A relative epsilon (the default: 1%) is taken of the cost spread of the
      pooled sample, which no relabelling changes, so the statistic is S_eps at that epsilon; it differs
      slightly from ``distance(x, y, metric="sinkhorn")``, whose epsilon is relative to the x-y costs.
    * any other metric, or options a fast path does not read (``"recompute"``): the metric is computed
      again on each permutation; those with ``permutation="refit"`` refit an estimator each time.

    Examples
    --------
    >>> import numpy as np, otdist.two_sample as ts
    >>> rng = np.random.default_rng(1)
    >>> same = ts.two_sample_test(rng.normal(size=50), rng.normal(size=50), metric="mmd", seed=0)
    >>> same.p_value > 0.05, same.null_distribution.shape
    (True, (1000,))
    """
    spec = sample_metric(metric, options)
    if n_permutations is None:
        n_permutations = default_permutations(spec)
    n_permutations = V.check_positive(n_permutations, "n_permutations", integer=True)
    seed = V.check_seed(seed)
    z, n = pooled_points(x, y)
    spec.check(x, y, dict(options))
    if spec.name in FAST_METRICS:
        spec.function(z[:n], z[n:], **options)  # the metric's own checks of its options, before any shortcut
    engine = engine_for(spec, z, n, options)
    observed = float(engine.statistics(np.arange(z.shape[0])[None], n)[0])
    null = np.concatenate([engine.statistics(rows, n) for rows in permutation_chunks(z.shape[0], n_permutations,
                                                                                    seed)])
    return TestResult(float(engine.value(np.array([observed]))[0]), p_value(observed, null),
                      np.asarray(engine.value(null), dtype=np.float64), n_permutations, spec.name, engine.name,
                      engine.epsilon)
