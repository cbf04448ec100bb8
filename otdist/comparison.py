"""``otdist.compare``: several distances and divergences between two samples, as one table."""

from __future__ import annotations

import time
from dataclasses import dataclass
from collections.abc import Mapping
from typing import Any, Callable

from tqdm.auto import tqdm

from . import _validation as V
from .exceptions import InputError, InputTypeError


def _metrics() -> dict[str, tuple[str, Callable[..., Any]]]:
    from . import api, entropic

    return {
        "w1": ("Wasserstein-1, exact on the samples (1-D: quantiles; else network simplex)",
               lambda x, y, **o: api.wasserstein(x, y, p=1, **o)),
        "w2": ("Wasserstein-2, exact on the samples", lambda x, y, **o: api.wasserstein(x, y, p=2, **o)),
        "sliced": ("sliced Wasserstein-1 (random projections)",
                   lambda x, y, **o: api.wasserstein(x, y, method="sliced", **o)),
        "sinkhorn": ("Sinkhorn divergence S_eps, p = 1 (eps = 1% of max cost)",
                     lambda x, y, **o: entropic.sinkhorn_divergence(x, y, **o)),
        "kl": ("KL(P||Q), k-NN estimator (nats)", lambda x, y, **o: api.kl(x, y, method="knn", **o)),
        "js": ("JS(P, Q), k-NN estimator (nats)", lambda x, y, **o: api.js(x, y, method="knn", **o)),
        "js_classifier": ("JS(P, Q), held-out classifier estimator (nats)",
                          lambda x, y, **o: api.js(x, y, method="classifier", **o)),
        "neural": ("Wasserstein-1, neural KR dual (held-out)",
                   lambda x, y, **o: api.wasserstein(x, y, method="neural", **{"progress": False, **o})),
    }


#: Arguments each metric fixes itself: passing them as options is an error.
_FIXED = {"w1": ("p",), "w2": ("p",), "sliced": ("method",), "kl": ("method",), "js": ("method",),
          "js_classifier": ("method",), "neural": ("method", "p")}


def _preflight(name: str, x, y, options: dict) -> None:
    """Every check of metric ``name`` that needs no computation: options, sample sizes, shared points."""
    import inspect

    from . import entropic
    from .divergences import estimators, knn

    fixed = sorted(set(options) & set(_FIXED.get(name, ())))
    if fixed:
        raise InputError(f"metric {name!r} sets {', '.join(fixed)} itself; got it in options[{name!r}]. "
                         "Drop it, or pick the metric that has the value you want.")
    if name in ("kl", "js", "js_classifier"):
        method = "classifier" if name == "js_classifier" else "knn"
        function = estimators.estimator(name[:2], method, options)
        sx, sy = estimators.samples(x, y)
        function.check(len(sx), len(sy))
        if method == "knn":
            knn.check_shared(sx, sy)
    elif name == "neural":
        from .neural import KRDualEstimator

        KRDualEstimator(**{"progress": False, **options}).check_sizes(V.as_points(x, "x").shape[0],
                                                                      V.as_points(y, "y").shape[0])
    elif name == "sinkhorn":
        try:
            inspect.signature(entropic.sinkhorn_divergence).bind(x, y, **options)
        except TypeError as err:
            raise InputTypeError(f"options[{name!r}] do not fit otdist.sinkhorn_divergence: {err}. "
                                 "See its documentation for the options it accepts.") from None


METRICS = ("w1", "w2", "sliced", "sinkhorn", "kl", "js", "js_classifier", "neural")
DEFAULT_METRICS = ("w1", "sinkhorn", "kl", "js")


@dataclass(frozen=True)
class ComparisonRow:
    metric: str
    value: float
    description: str
    seconds: float


@dataclass(frozen=True)
class Comparison:
    """The result of :func:`compare`: one row per metric, in the order asked."""

    rows: tuple[ComparisonRow, ...]
    n_x: int
    n_y: int
    dim: int

    def __getitem__(self, metric: str) -> float:
        for row in self.rows:
            if row.metric == metric:
                return row.value
        raise KeyError(f"{metric!r} is not in this comparison; it has {', '.join(r.metric for r in self.rows)}.")

    def to_dict(self) -> dict[str, float]:
        """``{metric: value}``."""
        return {row.metric: row.value for row in self.rows}

    def to_pandas(self):
        """A ``pandas.DataFrame`` with columns metric, value, description, seconds."""
        try:
            import pandas as pd
        except ImportError as err:
            raise ImportError("Comparison.to_pandas needs pandas: pip install pandas (or use .to_dict()).") from err
        return pd.DataFrame([row.__dict__ for row in self.rows])

    def __repr__(self) -> str:
        width = max(len(r.metric) for r in self.rows)
        lines = [f"Comparison of samples x: ({self.n_x}, {self.dim}) and y: ({self.n_y}, {self.dim})",
                 f"{'metric':<{width}}  {'value':>12}  {'seconds':>8}  description"]
        for r in self.rows:
            lines.append(f"{r.metric:<{width}}  {r.value:>12.6g}  {r.seconds:>8.2f}  {r.description}")
        return "\n".join(lines)


def compare(x, y, metrics=DEFAULT_METRICS, *, options: dict[str, dict] | None = None,
            progress: bool = False) -> Comparison:
    """Compute several distances/divergences between samples x ~ P and y ~ Q.

    Parameters
    ----------
    x, y
        Samples ``(n, d)`` and ``(m, d)`` (1-D arrays are points on the line).
    metrics
        Names from ``otdist.comparison.METRICS``: ``"w1"``, ``"w2"``, ``"sliced"``, ``"sinkhorn"``,
        ``"kl"``, ``"js"`` (k-NN), ``"js_classifier"``, ``"neural"``.
    options
        Per-metric keyword options, e.g. ``{"kl": {"k": 10}, "sinkhorn": {"epsilon": 0.1}}``.
    progress
        Show a progress bar over the metrics.

    Every argument, every metric's options and the sample sizes each metric needs are checked
    before the first metric is computed.  Every metric accepts samples of different sizes n ≠ m.

    Examples
    --------
    >>> import numpy as np, otdist
    >>> rng = np.random.default_rng(0)
    >>> table = otdist.compare(rng.normal(size=500), rng.normal(2.0, 1.0, size=500), metrics=("w1", "js"))
    >>> 1.8 < table["w1"] < 2.2
    True
    """
    table = _metrics()
    if isinstance(metrics, str):
        metrics = (metrics,)
    if not isinstance(metrics, (tuple, list)):
        raise InputTypeError(f"metrics must be a metric name or a tuple of names; got {type(metrics).__name__}. "
                             f"Pick from {', '.join(METRICS)}.")
    metrics = tuple(V.check_choice(m, METRICS, "metric") for m in metrics)
    if not metrics:
        raise InputError(f"metrics must name at least one metric; got an empty sequence. Pick from {', '.join(METRICS)}.")
    repeated = sorted({m for m in metrics if metrics.count(m) > 1})
    if repeated:
        raise InputError(f"metrics must be distinct; got {', '.join(repeated)} more than once. Name each metric once.")
    options = dict(options or {})
    unknown = sorted(set(options) - set(metrics))
    if unknown:
        raise InputError(f"options given for metrics not being computed: {', '.join(unknown)}; computing {', '.join(metrics)}. "
                         "Add them to metrics or drop their options.")
    for name, given in options.items():
        if not isinstance(given, Mapping):
            raise InputTypeError(f"options[{name!r}] must be a dict of keyword options; got {type(given).__name__}. "
                                 f'Write options={{"{name}": {{...}}}}.')
    px, py = V.as_points(x, "x"), V.as_points(y, "y")
    V.check_same_dim(px, py, ("x", "y"))
    for name in metrics:
        _preflight(name, x, y, dict(options.get(name, {})))
    rows = []
    for name in tqdm(metrics, desc="compare", disable=not progress, leave=False):
        description, function = table[name]
        start = time.perf_counter()
        value = function(x, y, **options.get(name, {}))
        value = value.detach() if hasattr(value, "detach") else value
        rows.append(ComparisonRow(name, float(value), description, time.perf_counter() - start))
    return Comparison(tuple(rows), px.shape[0], py.shape[0], px.shape[1])
