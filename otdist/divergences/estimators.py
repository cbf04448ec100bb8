"""Sample estimators of KL and JS behind ``otdist.kl``/``otdist.js``, and standard errors.

``estimate(x, y, ...)`` returns a :class:`DivergenceEstimate`: the point estimate on the full
samples plus a standard error, from

* ``se="split"``: the estimator on ``n_resamples`` disjoint random parts of the samples; the
  spread of the parts, divided by sqrt(n_resamples), estimates the standard error of the
  full-sample value (assuming its variance scales as 1/n).  Works for every estimator.
* ``se="bootstrap"``: the estimator on ``n_resamples`` resamples drawn with replacement.  Not for
  the k-NN estimators, which are undefined on duplicated points.
"""

from __future__ import annotations

import math

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .. import _validation as V
from .._backend import to_numpy
from ..exceptions import EstimateWarning, InputError

#: Methods for samples, per divergence.
SAMPLE_METHODS = {"kl": ("knn", "classifier", "hist", "kde"), "js": ("knn", "classifier", "hist", "kde")}
SE_METHODS = ("split", "bootstrap")
DEFAULT_K = 5
DEFAULT_RESAMPLES = {"split": 5, "bootstrap": 200}


@dataclass(frozen=True)
class DivergenceEstimate:
    """A sample estimate with its standard error.

    Attributes
    ----------
    value
        The estimate on the full samples (what ``otdist.kl``/``otdist.js`` return).
    standard_error
        Its standard error, from ``se_method`` with ``n_resamples`` replicates.
    divergence, method, se_method
        What was estimated, how, and how the error was obtained.
    replicates
        The estimates on the parts or bootstrap resamples.
    extra
        Method-specific details (the classifier's ``train_value`` and held-out standard error).
    """

    value: float
    standard_error: float
    divergence: str
    method: str
    se_method: str
    replicates: np.ndarray = field(repr=False)
    extra: dict[str, Any] = field(default_factory=dict)


def _one_dimensional(x: np.ndarray, name: str, method: str) -> np.ndarray:
    if x.shape[1] != 1:
        raise InputError(
            f'method="{method}" estimates densities of 1-D samples; got {name} with {x.shape[1]} dimensions. '
            'Use method="knn" or method="classifier" for multivariate samples.'
        )
    return x[:, 0]


#: ``estimate`` warns when the value is below -NEGATIVE_WARNING_SE standard errors.
NEGATIVE_WARNING_SE = 2.0
#: Bin rules of ``numpy.histogram_bin_edges``.
BIN_RULES = ("auto", "fd", "doane", "scott", "stone", "rice", "sturges", "sqrt")
BANDWIDTH_RULES = ("scott", "silverman")


@dataclass(frozen=True)
class Estimator:
    """A validated sample estimator: ``run(x, y, seed)`` on (n, d) NumPy samples, ``check(n, m)`` on sizes.

    ``run`` returns a float, except for the classifier (a ClassifierEstimate); ``seed`` (an integer or
    a ``numpy.random.SeedSequence``) is used by the randomised estimators, others ignore it.
    """

    run: Callable[..., Any]
    check: Callable[[int, int], None]
    seed: Any = 0

    def __call__(self, x: np.ndarray, y: np.ndarray, seed=None):
        self.check(len(x), len(y))
        return self.run(x, y, self.seed if seed is None else seed)


def _no_size_check(n: int, m: int) -> None:
    return None


def _bins(bins):
    if isinstance(bins, str):
        return V.check_choice(bins, BIN_RULES, "bins")
    return V.check_positive(bins, "bins", integer=True)


def _bandwidth(bandwidth):
    if isinstance(bandwidth, str):
        return V.check_choice(bandwidth, BANDWIDTH_RULES, "bandwidth")
    return V.check_positive(bandwidth, "bandwidth")


def estimator(divergence: str, method: str, options: dict[str, Any]) -> Estimator:
    """Validate the options of ``method`` (all of them, before anything is computed)."""
    from . import classifier, density1d, knn

    options = dict(options)
    if method == "knn":
        k = V.check_positive(options.pop("k", DEFAULT_K), "k", integer=True)
        seed = V.check_seed(options.pop("seed", 0)) if divergence == "js" else 0
        V.reject_options(options, method)

        def check_knn(n: int, m: int) -> None:
            if min(n, m) <= k:
                raise InputError(f"the k-NN estimator needs more than k={k} samples on each side; got {n} and {m}. "
                                 "Pass more samples or a smaller k.")

        if divergence == "kl":
            return Estimator(lambda x, y, _: knn.kl(x, y, k), check_knn)
        return Estimator(lambda x, y, s: knn.js(x, y, k, s), check_knn, seed)
    if method == "classifier":
        model = V.check_choice(options.pop("model", "logistic"), classifier.MODELS, "model")
        test_fraction = V.check_positive(options.pop("test_fraction", classifier.DEFAULT_TEST_FRACTION), "test_fraction")
        if test_fraction >= 1:
            raise InputError(f"test_fraction must be in (0, 1) (the held-out share of each sample); got {test_fraction}.")
        seed = V.check_seed(options.pop("seed", 0))
        V.reject_options(options, method)

        def check_classifier(n: int, m: int) -> None:
            if min(n, m) * min(test_fraction, 1 - test_fraction) < 2:
                raise InputError(
                    f"the classifier estimator needs at least 2 training and 2 held-out samples per side; got {n} and "
                    f"{m} samples with test_fraction={test_fraction}. Pass more samples."
                )

        return Estimator(lambda x, y, s: classifier.estimate(divergence, x, y, model, test_fraction, s),
                         check_classifier, seed)
    if method == "hist":
        bins = _bins(options.pop("bins", density1d.DEFAULT_BINS))
        pseudocount = V.check_positive(options.pop("pseudocount", 0.0), "pseudocount", allow_zero=True)
        V.reject_options(options, method)
        return Estimator(lambda x, y, _: density1d.histogram_estimate(
            divergence, _one_dimensional(x, "x", method), _one_dimensional(y, "y", method), bins, pseudocount),
            _no_size_check)
    bandwidth = _bandwidth(options.pop("bandwidth", density1d.DEFAULT_BANDWIDTH))
    V.reject_options(options, method)
    return Estimator(lambda x, y, _: density1d.kde_estimate(
        divergence, _one_dimensional(x, "x", method), _one_dimensional(y, "y", method), bandwidth), _no_size_check)


def samples(x, y) -> tuple[np.ndarray, np.ndarray]:
    x, y = V.as_points(x, "x"), V.as_points(y, "y")
    V.check_same_dim(x, y, ("x", "y"))
    return np.asarray(to_numpy(x), dtype=float), np.asarray(to_numpy(y), dtype=float)


def point_estimate(divergence: str, x, y, method: str, options: dict[str, Any]) -> float:
    """What ``otdist.kl``/``otdist.js`` return for ``method`` in SAMPLE_METHODS."""
    function = estimator(divergence, method, options)
    x, y = samples(x, y)
    return _value_of(function(x, y))


def standard_error(function: Callable[..., float], x: np.ndarray, y: np.ndarray, se: str,
                   n_resamples: int, seed) -> tuple[float, np.ndarray]:
    """(standard error, replicates) of ``function(x, y, seed)`` by disjoint parts or by the bootstrap.

    ``seed`` (an integer or a ``numpy.random.SeedSequence``) gives one stream to the split or the
    resampling and one to each replicate's estimator.
    """
    sequence = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    split_seed, *replicate_seeds = sequence.spawn(1 + n_resamples)
    rng = np.random.default_rng(split_seed)
    if se == "split":
        smaller = min(len(x), len(y))
        if smaller < n_resamples:
            raise InputError(
                f'se="split" cuts each sample into n_resamples={n_resamples} disjoint parts, so it needs at least '
                f"{n_resamples} points per sample; got {smaller}. Pass more points, a smaller n_resamples, or "
                'se="bootstrap".'
            )
        parts_x = np.array_split(rng.permutation(len(x)), n_resamples)
        parts_y = np.array_split(rng.permutation(len(y)), n_resamples)
        replicates = np.array([function(x[i], y[j], s) for i, j, s in zip(parts_x, parts_y, replicate_seeds)])
        return _spread(replicates) / math.sqrt(n_resamples), replicates
    replicates = np.array([
        function(x[rng.integers(len(x), size=len(x))], y[rng.integers(len(y), size=len(y))], s) for s in replicate_seeds
    ])
    return _spread(replicates), replicates


def _spread(replicates: np.ndarray) -> float:
    """Sample standard deviation of the replicates; +inf when one of them is infinite (a plug-in KL
    with an empty bin), since their spread is then unbounded."""
    if not np.isfinite(replicates).all():
        return math.inf
    return float(replicates.std(ddof=1))


def check_se_options(se: str, n_resamples: int | None, method: str) -> int:
    V.check_choice(se, SE_METHODS, "se")
    if se == "bootstrap" and method == "knn":
        raise InputError(
            'se="bootstrap" resamples with replacement, which duplicates points and makes the k-NN estimators '
            'infinite; got method="knn". Use se="split".'
        )
    n_resamples = DEFAULT_RESAMPLES[se] if n_resamples is None else V.check_positive(n_resamples, "n_resamples", integer=True)
    if n_resamples < 2:
        raise InputError(f"n_resamples must be >= 2 to estimate a spread; got {n_resamples}.")
    return n_resamples


def estimate(x, y, divergence: str = "kl", method: str = "knn", *, se: str = "split", n_resamples: int | None = None,
             seed: int | None = 0, **options) -> DivergenceEstimate:
    """Estimate KL(P‖Q) or JS(P, Q) from samples x ~ P, y ~ Q with a standard error.

    Parameters
    ----------
    x, y
        Samples ``(n, d)`` and ``(m, d)`` (1-D arrays are points on the line).
    divergence
        ``"kl"`` or ``"js"`` (nats).
    method
        ``"knn"`` (option ``k``), ``"classifier"`` (options ``model``: ``"logistic"``, ``"boosting"``
        or ``"mlp"``; ``test_fraction``), ``"hist"`` (``bins``: a number or a rule of
        ``numpy.histogram_bin_edges``; ``pseudocount``; 1-D) or ``"kde"`` (``bandwidth``:
        ``"scott"``, ``"silverman"`` or a factor; 1-D).
    se, n_resamples
        How the standard error is obtained (``"split"``: 5 disjoint parts; ``"bootstrap"``: 200
        resamples).
    seed
        A non-negative integer (or None for fresh entropy).  ``numpy.random.SeedSequence(seed)`` is
        spawned into independent streams: one for the full-sample estimator (the classifier's split
        and model; the k-NN JS split for unequal sizes), one for the split/resampling, one for each
        replicate's estimator.  No global random state is read or changed.

    Returns
    -------
    DivergenceEstimate
        Nothing is clipped: when P = Q the value is negative about half the time.  A value more
        than two standard errors below zero raises an :class:`EstimateWarning`: the estimator's
        assumptions probably fail on these samples.

    Examples
    --------
    >>> import numpy as np, otdist
    >>> rng = np.random.default_rng(0)
    >>> res = otdist.estimate(rng.normal(size=2000), rng.normal(1.0, 1.0, size=2000), "kl")
    >>> abs(res.value - 0.5) < 4 * res.standard_error + 0.05
    True
    """
    divergence = V.check_choice(divergence, tuple(SAMPLE_METHODS), "divergence")
    method = V.check_choice(method, SAMPLE_METHODS[divergence], "method")
    n_resamples = check_se_options(se, n_resamples, method)
    sequence = np.random.SeedSequence(V.check_seed(seed))
    function = estimator(divergence, method, options)
    x, y = samples(x, y)
    function.check(len(x), len(y))
    fit_seed, error_seed = sequence.spawn(2)
    full = function(x, y, fit_seed)
    extra = {}
    if method == "classifier":
        extra = {"train_value": full.train_value, "held_out_standard_error": full.standard_error, "model": full.model}
    error, replicates = standard_error(lambda s, t, r: _value_of(function(s, t, r)), x, y, se, n_resamples, error_seed)
    value = _value_of(full)
    if value < -NEGATIVE_WARNING_SE * error:
        warnings.warn(
            f"the {method} estimate of {divergence.upper()} is {value:.4g}, more than {NEGATIVE_WARNING_SE:g} standard "
            f"errors ({error:.3g}) below zero, which a non-negative divergence cannot be: the estimator's assumptions "
            "probably fail here (too few samples for the dimension, heavy tails, near-duplicate points). "
            "Use more samples or another method.",
            EstimateWarning, stacklevel=2)
    return DivergenceEstimate(value, error, divergence, method, se, replicates, extra)


def _value_of(result) -> float:
    return float(getattr(result, "value", result))
