"""The public distance API: validation, then dispatch to a registered method, then output conversion.

Methods and metrics live in :mod:`otdist.registry`; this module imports no solver.
"""

from __future__ import annotations

from . import _validation as V
from . import registry
from ._results import TransportResult
from .cost import Metric
from .divergences.discrete import LOG2
from .exceptions import InputError
from .information import js, js_distance, kl
from .problem import Problem, make_problem


def _resolve(method: str, problem: Problem) -> str:
    V.check_choice(method, ("auto", *registry.method_names()), "method")
    if method != "auto":
        return method
    is_line = problem.x is not None and problem.x.shape[1] == 1 and problem.cost is None
    if is_line and not callable(problem.metric) and problem.metric != "sqeuclidean":
        return "1d"
    return "exact"


# ----------------------------------------------------------------------------- public API


def transport(
    u_values=None,
    v_values=None,
    u_weights=None,
    v_weights=None,
    *,
    p: float = 1,
    method: str = "auto",
    metric: Metric = "euclidean",
    minkowski_p: float | None = None,
    cost=None,
    **options,
) -> TransportResult:
    r"""Solve the optimal-transport problem and return the plan, potentials and a certificate.

    Parameters
    ----------
    u_values, v_values
        Samples: 1-D arrays of values or ``(n, d)`` / ``(m, d)`` point clouds (NumPy or torch).
        May be ``None`` when ``cost`` is given.
    u_weights, v_weights
        Non-negative masses (normalised to probability vectors); uniform when omitted.
    p
        Order of the distance; the cost is ``C_ij = d(x_i, y_j) ** p``.
    method
        ``"1d"`` (monotone coupling), ``"exact"`` (network simplex), ``"primal"`` / ``"dual"``
        (the linear program in primal / dual form with HiGHS), ``"auto"``, and the approximate methods
        ``"sinkhorn"``, ``"sliced"``, ``"max-sliced"``, ``"gaussian"`` and ``"neural"``
        (``otdist.registry.methods()`` lists every method).
    metric
        Ground metric: ``"euclidean"``, ``"sqeuclidean"``, ``"cityblock"``, ``"chebyshev"``,
        ``"minkowski"`` (with ``minkowski_p``) or a callable ``metric(x, y) -> (n, m) array``.
    cost
        A precomputed cost matrix ``C`` (n, m), used as is (methods ``"exact"``, ``"primal"``,
        ``"dual"``). Any finite real entries are accepted, negative ones included, as in POT; ``value``
        is then the transport cost ``<P, C>`` itself (no p-th root), and ``p`` must be left at 1.
    **options
        Solver options: ``max_size`` (memory guard on n*m), ``max_iter`` (exact),
        ``generation`` and ``max_rounds`` (primal/dual), ``n_projections`` and ``seed`` (sliced,
        max-sliced), or ``projections`` (an (L, d) array of directions, rows normalised, instead of
        ``n_projections`` and ``seed``);
        ``progress=True`` shows a progress bar (primal and dual after a second of solving, sliced).

    Returns
    -------
    TransportResult
        ``value`` (W_p), ``transport_cost`` (<P, C>), ``plan``, ``potentials`` (f, g),
        ``duality_gap`` (primal - dual), ``method``, ``n_iter``, ``converged``, and for the
        approximate methods that certify it ``bounds`` = (lower, upper) on the exact W_p.
        Arrays follow the inputs: NumPy float32 in gives float32 plan and potentials, torch in gives
        tensors in the input's dtype and device.

    Examples
    --------
    >>> import otdist
    >>> res = otdist.transport([[0.0, 0.0], [1.0, 0.0]], [[0.0, 1.0], [1.0, 1.0]], method="dual")
    >>> round(res.value, 12), res.duality_gap < 1e-8
    (1.0, True)
    """
    problem = make_problem(u_values, v_values, u_weights, v_weights, p, metric, minkowski_p, cost)
    return registry.method(_resolve(method, problem)).solver(problem, True, **options)


def wasserstein(
    u_values,
    v_values,
    u_weights=None,
    v_weights=None,
    *,
    p: float = 1,
    method: str = "auto",
    metric: Metric = "euclidean",
    minkowski_p: float | None = None,
    axis: int | None = None,
    **options,
):
    r"""Wasserstein distance W_p between two weighted samples.

    .. math:: W_p(\mu, \nu) = \Big(\min_{\gamma \in \Pi(a, b)} \sum_{ij} \gamma_{ij}\, d(x_i, y_j)^p\Big)^{1/p}

    Same argument order and semantics as ``scipy.stats.wasserstein_distance`` for 1-D input
    (weights are normalised); 2-D inputs ``(n, d)`` are point clouds. Returns W_p, never W_p^p.

    Parameters
    ----------
    u_values, v_values
        Samples: 1-D arrays or ``(n, d)`` and ``(m, d)`` point clouds, NumPy or torch.
    u_weights, v_weights
        Non-negative weights; uniform when omitted.
    p
        Order p >= 1.
    method
        ``"auto"`` (``"1d"`` for 1-D input, else ``"exact"``), ``"1d"``, ``"exact"``,
        ``"primal"``, ``"dual"``, and the approximate methods registered by other modules.
    metric, minkowski_p, **options
        See :func:`transport`.
    axis
        Batched 1-D distances, scipy-style: with ``axis=k`` every 1-D slice of the arrays along axis
        ``k`` is one sample, and the result holds one W_p per slice (an array, or a tensor for torch
        input), all solved at once by the 1-D method. The other axes broadcast; weights have the
        values' shape or are one 1-D vector shared by every slice.

    Returns
    -------
    float or torch.Tensor
        A Python float for NumPy input; a 0-d tensor on the input's device and in its dtype for
        torch input, differentiable in values and weights (exact and LP methods through the optimal
        dual potentials; at W_p = 0, where W_p is not differentiable, the gradient is 0).

    Notes
    -----
    Where otdist deliberately differs from its peers:

    * weights are normalised to probability vectors (POT requires equal masses); ``[]`` means uniform
      weights, as in POT;
    * NaN and infinite values are refused with an error, and so is a distance that overflows the
      floating-point range, where ``scipy.stats.wasserstein_distance`` returns ``nan`` or ``inf``;
    * integer and bool inputs are computed in float64 (NumPy) or torch's default float; float16 and
      bfloat16 tensors are computed in float32 and the result returned in the input's dtype.

    References
    ----------
    Villani, *Optimal Transport: Old and New* (2009); Peyré & Cuturi, *Computational Optimal
    Transport* (2019).

    Examples
    --------
    >>> import otdist
    >>> otdist.wasserstein([0, 1, 3], [5, 6, 8])
    5.0
    >>> round(otdist.wasserstein([0, 1, 2, 3], [0, 1, 2, 3], [3, 2, 1, 4], [1, 2, 4, 3]), 12)
    0.5
    """
    if axis is not None:
        return _along_axis(u_values, v_values, u_weights, v_weights, p, method, metric, minkowski_p, axis, options)
    problem = make_problem(u_values, v_values, u_weights, v_weights, p, metric, minkowski_p)
    return registry.method(_resolve(method, problem)).solver(problem, False, **options).value


def _along_axis(u_values, v_values, u_weights, v_weights, p, method, metric, minkowski_p, axis, options):
    """``wasserstein(..., axis=k)``: one 1-D W_p per slice, through the 1-D method's batched solver."""
    if method not in ("auto", "1d") or metric != "euclidean" or minkowski_p is not None or options:
        given = [f"method={method!r}"] if method not in ("auto", "1d") else []
        given += [f"metric={metric!r}"] if metric != "euclidean" else []
        given += [f"minkowski_p={minkowski_p!r}"] if minkowski_p is not None else []
        given += [f"{name}=..." for name in options]
        raise InputError(
            f"axis= computes 1-D W_p along an axis with the ground metric |x - y| (method \"1d\", no options); got "
            f"{', '.join(given)}. Drop them, or drop axis= to compare point clouds.")
    return registry.method("1d").along_axis(u_values, v_values, u_weights, v_weights, p=p, axis=axis)


def _wasserstein_metric(p: float | None):
    def function(x, y, u_weights=None, v_weights=None, **options):
        options = registry.ground_metric_options(options)
        return wasserstein(x, y, u_weights, v_weights, **(options if p is None else {"p": p, **options}))

    return function


_W_GRADIENTS = "values and weights"
registry.register_metric(registry.MetricSpec(
    "wasserstein", _wasserstein_metric(None), "Wasserstein W_p of two weighted samples (any method=, p=)",
    inputs=("samples",), zero_on_identical=False, gradients=_W_GRADIENTS, memory="O(nm) for the exact methods"))
registry.register_metric(registry.MetricSpec(
    "w1", _wasserstein_metric(1), "Wasserstein-1, exact on the samples (1-D: quantiles; else network simplex)",
    inputs=("samples",), gradients=_W_GRADIENTS, memory="O(nm); O(n + m) in 1-D", fixed=("p",)))
registry.register_metric(registry.MetricSpec(
    "w2", _wasserstein_metric(2), "Wasserstein-2, exact on the samples", inputs=("samples",), gradients=_W_GRADIENTS,
    memory="O(nm); O(n + m) in 1-D", fixed=("p",)))


def distance(a, b, /, metric: str = "wasserstein", **kwargs):
    """One entry point for every registered metric: ``distance(a, b, metric=...)``.

    ``metric`` is a name from :func:`otdist.metrics` (``"wasserstein"``, ``"w1"``, ``"sinkhorn"``,
    ``"energy"``, ``"mmd"``, ``"kl"``, ``"js"``, ...). For the transport metrics the ground metric is
    passed as ``ground_metric=``.

    Examples
    --------
    >>> import otdist
    >>> otdist.distance([0.0, 1.0], [2.0, 3.0], metric="wasserstein", p=2)
    2.0
    """
    spec = registry.metric(metric)
    spec.check(a, b, kwargs)
    return spec.function(a, b, **kwargs)


__all__ = ["wasserstein", "transport", "kl", "js", "js_distance", "distance", "LOG2"]
