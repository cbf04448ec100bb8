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

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .. import _validation as V
from .._backend import to_numpy
from ..exceptions import InputError

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


def estimator(divergence: str, method: str, options: dict[str, Any]) -> Callable[[np.ndarray, np.ndarray], Any]:
    """Validate the options of ``method`` and return ``f(x, y)`` on (n, d) NumPy samples.

    ``f`` returns a float, except for the classifier (a ClassifierEstimate).
    """
    from . import classifier, density1d, knn

    options = dict(options)
    if method == "knn":
        k = V.check_positive(options.pop("k", DEFAULT_K), "k", integer=True)
        V.reject_options(options, method)

        def run_knn(x, y):
            if min(len(x), len(y)) <= k:
                raise InputError(f"the k-NN estimator needs more than k={k} samples on each side; got {len(x)} and {len(y)}.")
            return getattr(knn, divergence)(x, y, k)

        return run_knn
    if method == "classifier":
        model = V.check_choice(options.pop("model", "logistic"), classifier.MODELS, "model")
        test_fraction = V.check_positive(options.pop("test_fraction", classifier.DEFAULT_TEST_FRACTION), "test_fraction")
        if test_fraction >= 1:
            raise InputError(f"test_fraction must be in (0, 1) (the held-out share of each sample); got {test_fraction}.")
        seed = int(options.pop("seed", 0))
        V.reject_options(options, method)

        def run_classifier(x, y):
            if min(len(x), len(y)) * min(test_fraction, 1 - test_fraction) < 2:
                raise InputError(
                    f"the classifier estimator needs at least 2 training and 2 held-out samples per side; got {len(x)} and "
                    f"{len(y)} samples with test_fraction={test_fraction}. Pass more samples."
                )
            return classifier.estimate(divergence, x, y, model, test_fraction, seed)

        return run_classifier
    if method == "hist":
        bins = options.pop("bins", density1d.DEFAULT_BINS)
        pseudocount = V.check_positive(options.pop("pseudocount", 0.0), "pseudocount", allow_zero=True)
        V.reject_options(options, method)
        return lambda x, y: density1d.histogram_estimate(
            divergence, _one_dimensional(x, "x", method), _one_dimensional(y, "y", method), bins, pseudocount)
    bandwidth = options.pop("bandwidth", density1d.DEFAULT_BANDWIDTH)
    V.reject_options(options, method)
    return lambda x, y: density1d.kde_estimate(
        divergence, _one_dimensional(x, "x", method), _one_dimensional(y, "y", method), bandwidth)


def samples(x, y) -> tuple[np.ndarray, np.ndarray]:
    x, y = V.as_points(x, "x"), V.as_points(y, "y")
    V.check_same_dim(x, y, ("x", "y"))
    return np.asarray(to_numpy(x), dtype=float), np.asarray(to_numpy(y), dtype=float)


def point_estimate(divergence: str, x, y, method: str, options: dict[str, Any]) -> float:
    """What ``otdist.kl``/``otdist.js`` return for ``method`` in SAMPLE_METHODS."""
    x, y = samples(x, y)
    return _value_of(estimator(divergence, method, options)(x, y))


def standard_error(function: Callable[[np.ndarray, np.ndarray], float], x: np.ndarray, y: np.ndarray, se: str,
                   n_resamples: int, seed: int) -> tuple[float, np.ndarray]:
    """(standard error, replicates) of ``function(x, y)`` by disjoint parts or by the bootstrap."""
    rng = np.random.default_rng(seed)
    if se == "split":
        parts_x = np.array_split(rng.permutation(len(x)), n_resamples)
        parts_y = np.array_split(rng.permutation(len(y)), n_resamples)
        replicates = np.array([function(x[i], y[j]) for i, j in zip(parts_x, parts_y)])
        return float(replicates.std(ddof=1) / np.sqrt(n_resamples)), replicates
    replicates = np.array([
        function(x[rng.integers(len(x), size=len(x))], y[rng.integers(len(y), size=len(y))]) for _ in range(n_resamples)
    ])
    return float(replicates.std(ddof=1)), replicates


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
             seed: int = 0, **options) -> DivergenceEstimate:
    """Estimate KL(P‖Q) or JS(P, Q) from samples x ~ P, y ~ Q with a standard error.

    Parameters
    ----------
    x, y
        Samples ``(n, d)`` and ``(m, d)`` (1-D arrays are points on the line).
    divergence
        ``"kl"`` or ``"js"`` (nats).
    method
        ``"knn"`` (option ``k``), ``"classifier"`` (options ``model``: ``"logistic"``, ``"boosting"``
        or ``"mlp"``; ``test_fraction``; ``seed``), ``"hist"`` (``bins``, ``pseudocount``; 1-D) or
        ``"kde"`` (``bandwidth``; 1-D).
    se, n_resamples, seed
        How the standard error is obtained (``"split"``: 5 disjoint parts; ``"bootstrap"``: 200
        resamples), and the seed of the split/resampling.

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
    x, y = samples(x, y)
    function = estimator(divergence, method, options)
    full = function(x, y)
    extra = {}
    if method == "classifier":
        extra = {"train_value": full.train_value, "held_out_standard_error": full.standard_error, "model": full.model}
    error, replicates = standard_error(lambda s, t: _value_of(function(s, t)), x, y, se, n_resamples, seed)
    return DivergenceEstimate(_value_of(full), error, divergence, method, se, replicates, extra)


def _value_of(result) -> float:
    return float(getattr(result, "value", result))
