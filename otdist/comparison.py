"""``otdist.compare``: several distances and divergences between two samples, as one table."""

from __future__ import annotations

import time
from dataclasses import dataclass
from collections.abc import Mapping

from tqdm.auto import tqdm

from . import _validation as V
from . import registry
from .exceptions import InputError, InputTypeError


#: The default rows: exact W1, the Sinkhorn divergence and the k-NN estimates of KL and JS.
DEFAULT_METRICS = ("w1", "sinkhorn", "kl_knn", "js_knn")


def sample_metrics() -> tuple[str, ...]:
    """The registered metrics that take samples (every one of them can be a row of :func:`compare`)."""
    return registry.sample_metric_names()


def _check_names(metrics) -> tuple[str, ...]:
    choices = sample_metrics()
    if isinstance(metrics, str):
        metrics = (metrics,)
    if not isinstance(metrics, (tuple, list)):
        raise InputTypeError(f"metrics must be a metric name or a tuple of names; got {type(metrics).__name__}. "
                             f"Pick from {', '.join(choices)}.")
    for name in metrics:
        registry.sample_metric(name, "compare")
    if not metrics:
        raise InputError(f"metrics must name at least one metric; got an empty sequence. Pick from {', '.join(choices)}.")
    repeated = sorted({m for m in metrics if metrics.count(m) > 1})
    if repeated:
        raise InputError(f"metrics must be distinct; got {', '.join(repeated)} more than once. Name each metric once.")
    return tuple(metrics)


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
        Names of registered sample metrics (:func:`otdist.metrics`; :func:`sample_metrics` lists them):
        ``"w1"``, ``"w2"``, ``"sliced"``, ``"sinkhorn"``, ``"kl_knn"``, ``"js_knn"``, ``"js_classifier"``,
        ``"neural"``, ``"energy"``, ``"mmd"``, ...
    options
        Per-metric keyword options, e.g. ``{"kl_knn": {"k": 10}, "sinkhorn": {"epsilon": 0.1}}``.
    progress
        Show a progress bar over the metrics.

    Every argument, every metric's options and the sample sizes each metric needs are checked
    before the first metric is computed.  Every metric accepts samples of different sizes n ≠ m.

    Examples
    --------
    >>> import numpy as np, otdist
    >>> rng = np.random.default_rng(0)
    >>> table = otdist.compare(rng.normal(size=500), rng.normal(2.0, 1.0, size=500), metrics=("w1", "js_knn"))
    >>> 1.8 < table["w1"] < 2.2
    True
    """
    metrics = _check_names(metrics)
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
        registry.metric(name).check(x, y, dict(options.get(name, {})))
    rows = []
    for name in tqdm(metrics, desc="compare", disable=not progress, leave=False):
        spec = registry.metric(name)
        start = time.perf_counter()
        value = spec.function(x, y, **options.get(name, {}))
        value = value.detach() if hasattr(value, "detach") else value
        rows.append(ComparisonRow(name, float(value), spec.description, time.perf_counter() - start))
    return Comparison(tuple(rows), px.shape[0], py.shape[0], px.shape[1])
