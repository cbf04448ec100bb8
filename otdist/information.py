"""KL and Jensen-Shannon: between histograms, or estimated from samples (``method=``)."""

from __future__ import annotations

import numpy as np

from . import _validation as V
from ._backend import is_torch, scalar_out, to_torch, torch_reference
from .divergences.discrete import js_histograms, kl_histograms
from .exceptions import InputError


_SAMPLE_HINT = "a sample estimator, e.g. otdist.{name}(x, y, method='knn')"


def _histogram_pair(p, q, name: str):
    hint = _SAMPLE_HINT.format(name=name)
    like = torch_reference(p, q)
    p = V.as_histogram(p, "p", estimator_hint=hint)
    q = V.as_histogram(q, "q", estimator_hint=hint)
    V.check_same_length(p, q, ("p", "q"))
    if like is not None:
        p, q = to_torch(p, like), to_torch(q, like)
    return p, q, like


def _in_base(value, base):
    if base is None:
        return value
    V.check_positive(base, "base")
    if base == 1:
        raise InputError("base must be a positive number other than 1; got 1. Use base=2 for bits.")
    return value / np.log(base)


def _sample_divergence(name: str, x, y, method: str, base, options):
    from .divergences import estimators

    return float(_in_base(estimators.point_estimate(name, x, y, method, options), base))


_DIVERGENCE_METHODS = ("histogram", "knn", "classifier", "hist", "kde")


def kl(p, q, *, base: float | None = None, method: str = "histogram", **options):
    r"""Kullback-Leibler divergence KL(p || q) = sum_i p_i log(p_i / q_i).

    ``method="histogram"`` (default): p and q are histograms on a shared support, normalised like
    ``scipy.stats.entropy``; the result is ``+inf`` when some q_i = 0 < p_i.

    Estimators from samples ``(n, d)`` and ``(m, d)`` (a float; :func:`otdist.estimate` adds a
    standard error):

    * ``method="knn"``: k-nearest-neighbour estimator of Wang, Kulkarni & Verdú (option ``k``,
      default 5);
    * ``method="classifier"``: the density ratio D/(1 - D) of a classifier trained on a split of
      the samples (options ``model``, ``test_fraction``, ``seed``), averaged on the held-out part;
    * ``method="hist"``/``"kde"``: plug-in on histograms/Gaussian KDEs of 1-D samples (options
      ``bins``, ``pseudocount`` / ``bandwidth``); biased, see the documentation.

    Examples
    --------
    >>> import otdist
    >>> round(otdist.kl([0.5, 0.5], [0.9, 0.1]), 10)
    0.5108256238
    """
    if V.check_choice(method, _DIVERGENCE_METHODS, "method") != "histogram":
        return _sample_divergence("kl", p, q, method, base, options)
    V.reject_options(options, method)
    p, q, like = _histogram_pair(p, q, "kl")
    return scalar_out(_in_base(kl_histograms(p, q), base), like)


def js(p, q, *, base: float | None = None, method: str = "histogram", **options):
    r"""Jensen-Shannon divergence, ½KL(p‖m) + ½KL(q‖m) with m = (p + q)/2, between histograms.

    Symmetric, in [0, log 2] (in nats), exactly log 2 for disjoint supports, never NaN.
    Equals ``scipy.spatial.distance.jensenshannon(p, q) ** 2``.

    From samples (a float in [0, log 2]; :func:`otdist.estimate` adds a standard error):
    ``method="knn"`` (equal-size samples, option ``k``), ``method="classifier"``
    (log 2 + ½ max_D E_P log D + E_Q log(1 - D), held-out; options ``model`` = ``"logistic"``,
    ``"boosting"`` or ``"mlp"``, ``test_fraction``, ``seed``), ``"hist"``/``"kde"`` (1-D, biased).

    Examples
    --------
    >>> import otdist
    >>> otdist.js([1, 0], [0, 1]) == otdist.js([1, 0], [0, 1], base=2) * __import__("math").log(2)
    True
    """
    if V.check_choice(method, _DIVERGENCE_METHODS, "method") != "histogram":
        return _sample_divergence("js", p, q, method, base, options)
    V.reject_options(options, method)
    p, q, like = _histogram_pair(p, q, "js")
    return scalar_out(_in_base(js_histograms(p, q), base), like)


def js_distance(p, q, *, base: float | None = None, **options):
    """The Jensen-Shannon distance sqrt(JS(p, q)), a metric (scipy's ``jensenshannon``)."""
    value = js(p, q, base=base, **options)
    return value.sqrt() if is_torch(value) else float(np.sqrt(value))
