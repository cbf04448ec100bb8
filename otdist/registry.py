"""The one registry of otdist's transport methods and metrics.

Every transport method (``method=`` of :func:`otdist.transport` / :func:`otdist.wasserstein`) and every
metric (``metric=`` of :func:`otdist.distance`, ``metrics=`` of :func:`otdist.compare`, the CLI, the
two-sample test and pairwise matrices) is registered here, the same way, by the module that implements
it. The API layer reads this registry and imports no solver module.

>>> import otdist
>>> spec = otdist.registry.metric("energy")
>>> spec.symmetric, spec.squared
(True, False)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from . import _validation as V
from .exceptions import InputError, InputTypeError

#: What a metric or method takes: point samples, histograms on a shared support, or a cost matrix.
INPUT_KINDS = ("samples", "histograms", "cost")
#: What a metric returns: a distance (a metric between distributions) or a divergence (may be asymmetric,
#: zero iff equal, no triangle inequality).
VALUE_KINDS = ("distance", "divergence", "statistic")
#: How a permutation test recomputes the metric: ``"pooled"`` from one pooled matrix or kernel, reused by
#: every permutation; ``"recompute"`` solves again per permutation; ``"refit"`` refits an estimator per
#: permutation (expensive: fewer permutations by default).
PERMUTATION_KINDS = ("pooled", "recompute", "refit")


@dataclass(frozen=True)
class MethodSpec:
    """A transport method: ``solver(problem, need_plan, **options) -> TransportResult``."""

    name: str
    solver: Callable[..., Any]
    description: str
    exact: bool
    gradients: str
    memory: str
    #: ``along_axis(u, v, u_weights, v_weights, p=, axis=)``: one value per 1-D slice along ``axis``
    #: (the ``axis=`` of :func:`otdist.wasserstein`), for the methods that batch 1-D problems.
    along_axis: Callable[..., Any] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class MetricSpec:
    """A metric between two samples (or histograms): ``function(x, y, **options) -> float | Tensor``.

    Attributes
    ----------
    name
        The one name used by ``distance``, ``compare``, the CLI, ``two_sample_test`` and ``pairwise``.
    function
        ``function(x, y, **options)``; NumPy in gives a float, torch in a 0-d tensor.
    description
        One line for tables.
    inputs
        A subset of :data:`INPUT_KINDS`.
    kind
        One of :data:`VALUE_KINDS`.
    squared
        True when the value is the square of a distance (e.g. MMD² or W_p^p).
    symmetric
        ``d(x, y) == d(y, x)``: a pairwise matrix computes one triangle.
    zero_on_identical
        ``d(P, P) == 0`` and the metric is exactly 0 (or, for the k-NN estimators, which refuse a sample
        compared with itself, the quantity estimated is 0) on the same sample: a pairwise matrix has a zero
        diagonal without solving it.
    gradients
        Which torch gradients flow: ``"values and weights"``, ``"values"`` or ``"none"``.
    memory
        Peak memory in terms of n, m, d.
    fixed
        Options the metric sets itself; passing them is an error.
    permutation
        One of :data:`PERMUTATION_KINDS`.
    preflight
        ``preflight(x, y, options)``: every check that needs no computation (sizes, options), raising
        otdist's errors; run by ``compare`` and ``pairwise`` before the first metric is computed. It may
        read the data only through the two sample sizes and whether the samples share a point (as the
        k-NN estimators do): ``pairwise`` checks one pair of datasets per such combination.
    """

    name: str
    function: Callable[..., Any]
    description: str
    inputs: tuple[str, ...] = ("samples",)
    kind: str = "distance"
    squared: bool = False
    symmetric: bool = True
    zero_on_identical: bool = True
    gradients: str = "none"
    memory: str = "O(nm)"
    fixed: tuple[str, ...] = ()
    permutation: str = "recompute"
    preflight: Callable[..., None] | None = field(default=None, repr=False)

    def __post_init__(self):
        for kind in self.inputs:
            V.check_choice(kind, INPUT_KINDS, f"inputs of metric {self.name!r}")
        V.check_choice(self.kind, VALUE_KINDS, f"kind of metric {self.name!r}")
        V.check_choice(self.permutation, PERMUTATION_KINDS, f"permutation of metric {self.name!r}")

    def __call__(self, x, y, **options):
        return self.function(x, y, **options)

    def check(self, x, y, options: dict) -> None:
        """The checks of :attr:`preflight`, and options this metric sets itself refused."""
        fixed = sorted(set(options) & set(self.fixed))
        if fixed:
            raise InputError(f"metric {self.name!r} sets {', '.join(fixed)} itself; got it in its options. "
                             "Drop it, or pick the metric that has the value you want.")
        if self.preflight is not None:
            self.preflight(x, y, dict(options))


_METHODS: dict[str, MethodSpec] = {}
_METRICS: dict[str, MetricSpec] = {}


def ground_metric_options(options: dict) -> dict:
    """``ground_metric=`` of a metric call, passed on as the transport functions' ``metric=``."""
    options = dict(options)
    if "metric" in options:
        raise InputError(f"the ground metric of a transport metric is passed as ground_metric=; got metric="
                         f"{options['metric']!r} among its options. Write ground_metric={options['metric']!r}.")
    if "ground_metric" in options:
        options["metric"] = options.pop("ground_metric")
    return options


def signature_preflight(target: Callable[..., Any]) -> Callable[..., None]:
    """A preflight that refuses options ``target(x, y, **options)`` does not accept, before any work."""
    import inspect

    signature = inspect.signature(target)

    def preflight(x, y, options: dict) -> None:
        try:
            signature.bind(x, y, **options)
        except TypeError as err:
            raise InputTypeError(f"these options do not fit {target.__module__}.{target.__qualname__}: {err}. "
                                 "See its documentation for the options it accepts.") from None

    return preflight


def register_method(spec: MethodSpec) -> MethodSpec:
    """Make ``spec.solver`` available as ``transport(..., method=spec.name)``."""
    _METHODS[spec.name] = spec
    return spec


def register_metric(spec: MetricSpec) -> MetricSpec:
    """Make ``spec.function`` available as ``distance(x, y, metric=spec.name)`` and everywhere else."""
    _METRICS[spec.name] = spec
    return spec


def method(name: str) -> MethodSpec:
    """The registered transport method ``name`` (a clear error naming the others otherwise)."""
    V.check_choice(name, tuple(_METHODS), "method")
    return _METHODS[name]


def metric(name: str) -> MetricSpec:
    """The registered metric ``name`` (a clear error naming the others otherwise)."""
    V.check_choice(name, tuple(_METRICS), "metric")
    return _METRICS[name]


def sample_metric_names() -> tuple[str, ...]:
    """The registered metrics that take point samples, in registration order."""
    return tuple(spec.name for spec in _METRICS.values() if "samples" in spec.inputs)


def sample_metric(name: str, caller: str) -> MetricSpec:
    """The registered metric ``name``, refused unless it takes point samples.

    ``caller`` names what asks for it (``"compare"``, ``"pairwise"``, ``"a two-sample test"``) in the error.
    """
    spec = metric(name)
    if "samples" not in spec.inputs:
        takes = " or ".join(spec.inputs)
        raise InputError(f"{caller} takes point samples, so its metric must take samples; got metric={name!r}, which "
                         f"takes {takes}. Pick a sample metric ({', '.join(sample_metric_names())}), or call "
                         f"otdist.distance(p, q, metric={name!r}) on {takes}.")
    return spec


def method_names() -> tuple[str, ...]:
    return tuple(_METHODS)


def metric_names() -> tuple[str, ...]:
    return tuple(_METRICS)


def methods() -> tuple[MethodSpec, ...]:
    """Every registered transport method, in registration order."""
    return tuple(_METHODS.values())


def metrics() -> tuple[MetricSpec, ...]:
    """Every registered metric with what it takes, what it returns, its symmetry, gradients and memory.

    Examples
    --------
    >>> import otdist
    >>> "sinkhorn" in [spec.name for spec in otdist.metrics()]
    True
    """
    return tuple(_METRICS.values())


def format_table() -> str:
    """The registered metrics as a plain-text table (what ``otdist metrics`` prints)."""
    header = ("name", "takes", "returns", "symmetric", "gradients", "memory")
    rows = [(s.name, "/".join(s.inputs), ("squared " if s.squared else "") + s.kind, "yes" if s.symmetric else "no",
             s.gradients, s.memory) for s in metrics()]
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in (header, *rows)]
    descriptions = [f"{s.name}: {s.description}" for s in metrics()]
    return "\n".join(lines + [""] + descriptions)
