"""KL and Jensen-Shannon: between histograms, or estimated from samples (``method=``)."""

from __future__ import annotations

import numpy as np

from . import _validation as V
from . import registry
from ._backend import is_torch, scalar_out, to_torch, torch_reference
from .divergences.discrete import js_histograms, kl_histograms
from .exceptions import InputError


_SAMPLE_HINT = "a sample estimator, e.g. otdist.{name}(x, y, method='knn')"


def _float_reference(like):
    """(compute reference, output reference) for a torch input: float32/float64 are kept; float16 and
    bfloat16 are computed in float32; integers and booleans in torch's default float dtype."""
    if like is None:
        return None, None
    import torch

    if like.dtype in (torch.float32, torch.float64):
        return like, like
    if like.is_floating_point():
        return like.new_empty((), dtype=torch.float32), like
    out = like.new_empty((), dtype=torch.get_default_dtype())
    return out, out


def _histogram_pair(p, q, name: str):
    hint = _SAMPLE_HINT.format(name=name)
    compute, out = _float_reference(torch_reference(p, q))
    p = V.as_histogram(p, "p", estimator_hint=hint)  # validated before any cast (complex input is refused)
    q = V.as_histogram(q, "q", estimator_hint=hint)
    V.check_same_length(p, q, ("p", "q"))
    if compute is not None:
        p, q = to_torch(p, compute), to_torch(q, compute)
    return p, q, out


def _out(value, like):
    """``value`` as a Python float (NumPy input) or a 0-d tensor of the output dtype (torch input)."""
    if like is not None and is_torch(value):
        return value.to(like.dtype)
    return scalar_out(value, like)


def _check_base(base) -> None:
    if base is None:
        return
    V.check_positive(base, "base")
    if base == 1:
        raise InputError("base must be a positive number other than 1; got 1. Use base=2 for bits.")


_DIVERGENCE_METHODS = ("histogram", "knn", "classifier", "hist", "kde")
_HISTOGRAM_FUNCTIONS = {"kl": kl_histograms, "js": js_histograms}


def _divergence(name: str, p, q, base, method: str, options):
    """(value in the computing precision, output reference) of KL or JS, every input checked first."""
    _check_base(base)
    if V.check_choice(method, _DIVERGENCE_METHODS, "method") == "histogram":
        V.reject_options(options, method)
        p, q, like = _histogram_pair(p, q, name)
        value = _HISTOGRAM_FUNCTIONS[name](p, q)
    else:
        from .divergences import estimators

        _, like = _float_reference(torch_reference(p, q))
        value = estimators.point_estimate(name, p, q, method, options)
    return (value if base is None else value / np.log(base)), like


def kl(p, q, *, base: float | None = None, method: str = "histogram", **options):
    r"""Kullback-Leibler divergence KL(p || q) = sum_i p_i log(p_i / q_i).

    ``method="histogram"`` (default): p and q are histograms on a shared support, normalised like
    ``scipy.stats.entropy``; the result is ``+inf`` when some q_i = 0 < p_i.  Torch tensors give a
    0-d tensor: float32/float64 are kept, float16/bfloat16 are computed in float32 and returned in
    their own dtype, integers are computed and returned in torch's default float dtype.

    Estimators from samples ``(n, d)`` and ``(m, d)`` (a float, or a 0-d tensor for torch input;
    not clipped, so an estimate can be negative when P = Q; :func:`otdist.estimate` adds a
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
    return _out(*_divergence("kl", p, q, base, method, options))


def js(p, q, *, base: float | None = None, method: str = "histogram", **options):
    r"""Jensen-Shannon divergence, ½KL(p‖m) + ½KL(q‖m) with m = (p + q)/2, between histograms.

    Symmetric, in [0, log 2] (in nats), exactly log 2 for disjoint supports, never NaN.
    Equals ``scipy.spatial.distance.jensenshannon(p, q) ** 2``.

    From samples (a float, or a 0-d tensor for torch input; not clipped, so an estimate can be
    negative when P = Q; :func:`otdist.estimate` adds a standard error): ``method="knn"``
    (options ``k``, and ``seed`` for the split used when the sizes differ), ``method="classifier"``
    (log 2 + ½ max_D E_P log D + E_Q log(1 - D), held-out; options ``model`` = ``"logistic"``,
    ``"boosting"`` or ``"mlp"``, ``test_fraction``, ``seed``), ``"hist"``/``"kde"`` (1-D, biased).

    Examples
    --------
    >>> import otdist
    >>> otdist.js([1, 0], [0, 1]) == otdist.js([1, 0], [0, 1], base=2) * __import__("math").log(2)
    True
    """
    return _out(*_divergence("js", p, q, base, method, options))


def js_distance(p, q, *, base: float | None = None, method: str = "histogram", **options):
    """The Jensen-Shannon distance sqrt(JS(p, q)), a metric (scipy's ``jensenshannon``).

    Same arguments as :func:`js`.  A sample estimate of JS can fall below zero (with P = Q, about
    half the time); its distance is then reported as 0.  :func:`otdist.estimate` gives the signed
    JS estimate with its standard error.

    Examples
    --------
    >>> import otdist
    >>> round(otdist.js_distance([1.0, 0.0], [0.5, 0.5], base=2), 10)
    0.5579230453
    """
    value, like = _divergence("js", p, q, base, method, options)
    root = value.clamp_min(0.0).sqrt() if is_torch(value) else float(np.sqrt(max(float(value), 0.0)))
    return _out(root, like)


def _sample_metric(function, method: str):
    def estimate(x, y, **options):
        return function(x, y, method=method, **options)

    return estimate


def _sample_preflight(divergence: str, method: str):
    def preflight(x, y, options: dict) -> None:
        from .divergences import estimators, knn

        checked = estimators.estimator(divergence, method, options)
        sx, sy = estimators.samples(x, y)
        checked.check(len(sx), len(sy))
        if method == "knn":
            knn.check_shared(sx, sy)

    return preflight


_HISTOGRAM_GRADIENTS = "values (the histograms)"
for _name, _function, _kind, _text in (
        ("kl", kl, "divergence", "KL(p || q) between histograms on a shared support (nats)"),
        ("js", js, "divergence", "Jensen-Shannon divergence between histograms (nats)"),
        ("js_distance", js_distance, "distance", "Jensen-Shannon distance sqrt(JS) between histograms")):
    registry.register_metric(registry.MetricSpec(
        _name, _function, _text, inputs=("histograms",), kind=_kind, symmetric=_name != "kl",
        gradients=_HISTOGRAM_GRADIENTS, memory="O(n)"))
for _name, _function, _method, _text in (
        ("kl_knn", kl, "knn", "KL(P || Q), k-NN estimator from samples (nats)"),
        ("js_knn", js, "knn", "JS(P, Q), k-NN estimator from samples (nats)"),
        ("js_classifier", js, "classifier", "JS(P, Q), held-out classifier estimator from samples (nats)")):
    registry.register_metric(registry.MetricSpec(
        _name, _sample_metric(_function, _method), _text, kind="divergence", symmetric=False,
        zero_on_identical=_method == "knn", memory="O((n + m) d)", fixed=("method",), permutation="refit",
        preflight=_sample_preflight(_name[:2], _method)))
