"""How a permutation test (or a subsampling interval) evaluates one metric on many relabellings of a pooled sample.

An :class:`Engine` takes rows of indices into the pooled sample ``z`` (N, d): the first ``n_first`` columns of
a row pick the first group, the others the second (for a permutation test a row is a permutation of
``range(N)``). It returns each row's statistic in its own ``raw`` units, which are increasing in the metric's
value; ``value`` converts them to the metric's units. The fast engines compute what the registered metric
computes, once for the whole batch:

* ``pooled kernel`` (energy, MMD): one kernel matrix of the pooled sample, every row's MMD² from matrix
  products (:func:`otdist.kernels.pooled_statistic`);
* ``projections`` (sliced W_p, and W_p of points on the line): the pooled sample projected once onto the
  directions; each row's groups gathered from those projections and sorted;
* ``fixed-epsilon sinkhorn``: the Sinkhorn divergence of each row at one epsilon that no relabelling changes
  (the pooled sample's cost spread is computed once). Rows are solved one by one: a batch of Sinkhorn
  problems iterates until its slowest member converges, which measured slower than single solves.

Any other metric (or options a fast engine does not cover) is recomputed row by row (``recompute``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import _validation as V
from . import registry
from ._backend import to_numpy
from .cost import DEFAULT_MAX_SIZE, ground_cost
from .exceptions import InputError

#: Entries (rows x directions x points) of the gathered projections the projection engine holds at once.
PROJECTION_BLOCK = 1 << 22
#: Rows of the pooled cost matrix built at once to find its spread (for the Sinkhorn epsilon).
SPREAD_BLOCK = 1 << 22
#: Options of a transport metric read by the projection engine (any other sends the metric to ``recompute``).
_LINE_METHODS = ("auto", "1d")
_SINKHORN_OPTIONS = ("epsilon", "relative", "p", "ground_metric", "minkowski_p", "scaling", "tol", "max_iter",
                     "max_size", "backend", "on_unconverged", "reach", "progress")


#: The Sinkhorn divergence, whose engine solves every relabelling at one epsilon.
SINKHORN = "sinkhorn"
#: Metrics with a path faster than recomputing (for some of their options).
FAST_METRICS = ("energy", "mmd", "sliced", "w1", "w2", "wasserstein", "sinkhorn")
#: Weight options of the sample metrics: resampling exchanges points, and weighted points are not exchangeable.
WEIGHT_OPTIONS = ("u_weights", "v_weights", "x_weights", "y_weights", "a", "b")


def sample_metric(metric, options: dict) -> registry.MetricSpec:
    """The registered metric ``metric``, refused unless it takes samples and unweighted points."""
    spec = registry.sample_metric(metric, "a two-sample test or interval")
    weights = sorted(set(options) & set(WEIGHT_OPTIONS))
    if weights:
        raise InputError(f"a two-sample test or interval resamples the points themselves, so it takes unweighted "
                         f"samples; got {', '.join(weights)}. Drop the weights, or repeat each point in proportion "
                         "to its weight.")
    return spec


def pooled_points(x, y) -> tuple[np.ndarray, int]:
    """The pooled sample z = [x; y] as float64 NumPy (N, d), and n, the size of x."""
    px, py = V.as_points(x, "x"), V.as_points(y, "y")
    V.check_same_dim(px, py, ("x", "y"))
    return np.concatenate([to_numpy(px), to_numpy(py)]), px.shape[0]


@dataclass(frozen=True)
class Engine:
    """``statistics(rows, n_first) -> raw (B,)``; ``value(raw)`` in the metric's units; ``needs_partition``:
    rows must be whole permutations of the pooled sample (a subsample is refused); ``epsilon``: the absolute
    epsilon of every Sinkhorn divergence it solves (None for the other engines)."""

    name: str
    statistics: Callable[[np.ndarray, int], np.ndarray]
    value: Callable[[np.ndarray], np.ndarray]
    needs_partition: bool = False
    epsilon: float | None = None


def _identity(raw):
    return raw


def recompute(spec, z: np.ndarray, options: dict) -> Engine:
    """The registered metric itself, called on each row's two samples."""

    def statistics(rows, n_first):
        out = np.empty(len(rows))
        for k, row in enumerate(rows):
            value = spec.function(z[row[:n_first]], z[row[n_first:]], **options)
            out[k] = float(value.detach()) if hasattr(value, "detach") else float(value)
        return out

    return Engine("recompute", statistics, _identity)


def _kernel_engine(name: str, z: np.ndarray, n: int, options: dict) -> Engine | None:
    from . import kernels

    if z.shape[0] ** 2 > DEFAULT_MAX_SIZE:
        return None
    if name == "energy":
        kernel, bandwidth = "energy", None
    else:
        kernel, bandwidth = options.get("kernel", "gaussian"), options.get("bandwidth")
    K = kernels.pooled_kernel(z[:n], z[n:], kernel, bandwidth)

    def statistics(rows, n_first):
        return kernels.pooled_statistic(K, n_first, rows)

    return Engine("pooled kernel", statistics, lambda raw: np.sqrt(np.maximum(raw, 0.0)), needs_partition=True)


def _quantile_weights(n: int, m: int):
    """W_p^p of two uniform samples of sizes n, m sorted: sum_k w_k |u[i_k] - v[j_k]|^p over the merged
    quantile levels k/(nm) (integers, so the pieces are exact)."""
    levels = np.union1d(np.arange(n + 1) * m, np.arange(m + 1) * n)
    starts = levels[:-1]
    return starts // m, starts // n, np.diff(levels) / (n * m)


def _projection_engine(z: np.ndarray, theta: np.ndarray, p: float) -> Engine:
    from .solvers.exact_1d import power

    projected = (z @ theta).T.copy()  # (L, N): every row's groups are gathered from these, never re-projected
    n_dirs, size = projected.shape

    def statistics(rows, n_first):
        rows = np.asarray(rows)
        n, m = n_first, rows.shape[1] - n_first
        if n != m:
            i_x, i_y, weights = _quantile_weights(n, m)
        step = max(1, PROJECTION_BLOCK // (n_dirs * size))
        out = []
        for s in range(0, rows.shape[0], step):
            block = rows[s:s + step]
            xs, ys = np.sort(projected[:, block[:, :n]], axis=2), np.sort(projected[:, block[:, n:]], axis=2)
            if n == m:
                costs = power(xs - ys, p).mean(axis=2)
            else:
                costs = (power(xs[:, :, i_x] - ys[:, :, i_y], p) * weights).sum(axis=2)
            out.append(costs.mean(axis=0))
        return np.concatenate(out)

    return Engine("projections", statistics, lambda raw: np.maximum(raw, 0.0) ** (1.0 / p))


def _sliced_engine(z: np.ndarray, options: dict) -> Engine | None:
    from .methods import sliced as sliced_method
    from .solvers import sliced

    if set(options) - {"p", "n_projections", "seed", "progress"}:
        return None
    theta = sliced.directions(z.shape[1], options.get("n_projections", sliced_method.DEFAULT_PROJECTIONS),
                              options.get("seed", sliced_method.DEFAULT_SEED))
    return _projection_engine(z, theta, float(options.get("p", 1)))


def _line_engine(name: str, z: np.ndarray, options: dict) -> Engine | None:
    """Exact W_p of points on the line (the quantile coupling), for w1, w2 and wasserstein."""
    allowed = {"p"} if name == "wasserstein" else set()
    if z.shape[1] != 1 or set(options) - allowed - {"method", "ground_metric"}:
        return None
    if options.get("method", "auto") not in _LINE_METHODS or options.get("ground_metric", "euclidean") != "euclidean":
        return None
    p = {"w1": 1.0, "w2": 2.0}.get(name, float(options.get("p", 1)))
    return _projection_engine(z, np.ones((1, 1)), p)


def pooled_spread(z: np.ndarray, p: float, metric, minkowski_p) -> float:
    """max C - min C over every pair of the pooled sample (C = d ** p), by blocks of rows."""
    step = max(1, SPREAD_BLOCK // z.shape[0])
    low, high = np.inf, -np.inf
    for s in range(0, z.shape[0], step):
        block = to_numpy(ground_cost(z[s:s + step], z, p, metric, minkowski_p=minkowski_p))
        low, high = min(low, float(block.min())), max(high, float(block.max()))
    return high - low


def _sinkhorn_engine(z: np.ndarray, options: dict) -> Engine | None:
    from . import entropic
    from .entropic import DEFAULT_RELATIVE_EPSILON

    if set(options) - set(_SINKHORN_OPTIONS):
        return None
    options = dict(options)
    options.pop("progress", None)  # one bar per permutation would bury the output
    epsilon, relative = options.pop("epsilon", None), V.check_flag(options.pop("relative", False), "relative")
    if epsilon is None:
        epsilon, relative = DEFAULT_RELATIVE_EPSILON, True
    epsilon = V.check_positive(epsilon, "epsilon")
    if relative:
        spread = pooled_spread(z, V.check_order(options.get("p", 1)), options.get("ground_metric", "euclidean"),
                               options.get("minkowski_p"))
        epsilon = epsilon * spread if spread > 0 else epsilon
    if "ground_metric" in options:
        options["metric"] = options.pop("ground_metric")
    def statistics(rows, n_first):
        return np.array([entropic.sinkhorn_divergence(z[row[:n_first]], z[row[n_first:]], epsilon=epsilon,
                                                      relative=False, **options) for row in rows], dtype=np.float64)

    return Engine("fixed-epsilon sinkhorn", statistics, _identity, epsilon=float(epsilon))


def engine_for(spec, z: np.ndarray, n: int, options: dict) -> Engine:
    """The fastest engine that computes ``spec``'s statistic with ``options``; ``recompute`` otherwise."""
    name = spec.name
    fast = None
    if name in ("energy", "mmd"):
        fast = _kernel_engine(name, z, n, options)
    elif name == "sliced":
        fast = _sliced_engine(z, options)
    elif name in ("w1", "w2", "wasserstein"):  # on the line
        fast = _line_engine(name, z, options)
    elif name == SINKHORN:
        fast = _sinkhorn_engine(z, options)
    return fast if fast is not None else recompute(spec, z, options)
