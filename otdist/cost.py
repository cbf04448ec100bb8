"""Ground costs between point clouds.

The cost of moving a unit of mass from x to y is ``d(x, y) ** p`` where d is the
ground metric and p the order of W_p.  NumPy inputs use ``scipy.spatial.distance.cdist``;
torch inputs use ``torch.cdist`` so that the cost is differentiable in the points.
"""

from __future__ import annotations

from typing import Any, Callable, Union

import numpy as np
from scipy.spatial.distance import cdist

from ._backend import is_torch, to_numpy, to_torch
from ._validation import check_choice, check_cost_matrix, check_order
from .exceptions import InputError

Metric = Union[str, Callable[[Any, Any], Any]]

METRICS = ("euclidean", "sqeuclidean", "cityblock", "minkowski", "chebyshev")

#: Largest cost matrix (entries) the dense solvers build by default: 25 million
#: float64 entries = 200 MB.
DEFAULT_MAX_SIZE = 25_000_000


def _minkowski_order(metric: str, minkowski_p: float | None) -> float:
    if metric == "minkowski":
        if minkowski_p is None:
            raise InputError(
                "metric='minkowski' needs the order of the norm; got none. "
                "Pass minkowski_p=3 (or any value >= 1)."
            )
        return check_order(minkowski_p)
    if minkowski_p is not None:
        raise InputError(
            f"minkowski_p only applies to metric='minkowski'; got metric={metric!r} with "
            f"minkowski_p={minkowski_p}. Drop minkowski_p or use metric='minkowski'."
        )
    return {"euclidean": 2.0, "cityblock": 1.0, "chebyshev": float("inf")}.get(metric, 2.0)


def squared_euclidean(x, y):
    """|x_i - y_j|^2 for torch (..., n, d) and (..., m, d) in one matrix product.

    The points are centred on their common mean first, which keeps the cancellation in
    |x|^2 + |y|^2 - 2 x.y small when the clouds sit far from the origin.
    """
    import torch

    centre = torch.cat([x, y], dim=-2).mean(dim=-2, keepdim=True).detach()
    x, y = x - centre, y - centre
    ones_x, ones_y = torch.ones_like(x[..., :1]), torch.ones_like(y[..., :1])
    left = torch.cat([x, (x * x).sum(-1, keepdim=True), ones_x], dim=-1)
    right = torch.cat([-2.0 * y, ones_y, (y * y).sum(-1, keepdim=True)], dim=-1)
    out = torch.matmul(left, right.transpose(-1, -2))
    return out.clamp_min_(0.0) if not out.requires_grad else out.clamp_min(0.0)


def check_metric_order(metric: Metric, p: float) -> None:
    """Refuse ``metric="sqeuclidean"`` with p != 1: the cost would be |x - y| ** (2p)."""
    if isinstance(metric, str) and metric == "sqeuclidean" and p != 1:
        raise InputError(
            f"metric='sqeuclidean' already squares the distance, so p={p:g} would give the cost |x - y|^{2 * p:g}; "
            "got both. For W2 pass metric='euclidean' with p=2 (cost |x - y|^2), or keep metric='sqeuclidean' with p=1."
        )


def _callable_distance(metric: Callable, x, y):
    """A user's metric, always called with 2-D (n, d) and (m, d) arrays: once per batch element."""
    if x.ndim == 3:
        rows = [_callable_distance(metric, xb, yb) for xb, yb in zip(x, y)]
        import torch

        return torch.stack(rows) if is_torch(rows[0]) else np.stack(rows)
    out = metric(x, y)
    if is_torch(x) and not is_torch(out):
        out = to_torch(np.asarray(out, dtype=np.float64), x)
    elif not is_torch(x) and is_torch(out):
        out = to_numpy(out)
    return check_cost_matrix(out, x.shape[-2], y.shape[-2])


def pairwise_distance(x, y, metric: Metric = "euclidean", *, minkowski_p: float | None = None):
    """Matrix of ground distances d(x_i, y_j) between the rows of x (n, d) and y (m, d).

    ``x`` and ``y`` may also be batches (B, n, d) and (B, m, d); a callable ``metric`` is still called
    with one (n, d), (m, d) pair at a time.
    """
    if callable(metric):
        return _callable_distance(metric, x, y)
    check_choice(metric, METRICS, "metric")
    order = _minkowski_order(metric, minkowski_p)
    if is_torch(x):
        import torch

        if metric == "sqeuclidean":
            return squared_euclidean(x, y)
        # Direct differences, not the |x|^2 + |y|^2 - 2xy expansion: a point and its copy are exactly 0 apart.
        return torch.cdist(x, y, p=order, compute_mode="donot_use_mm_for_euclid_dist")
    if metric == "minkowski":
        return cdist(x, y, "minkowski", p=order)
    return cdist(x, y, metric)


def ground_cost(x, y, p: float, metric: Metric = "euclidean", *, minkowski_p: float | None = None):
    """The transport cost matrix C_ij = d(x_i, y_j) ** p."""
    check_metric_order(metric, p)
    if p == 2 and metric == "euclidean" and is_torch(x):
        return squared_euclidean(x, y)
    dist = pairwise_distance(x, y, metric, minkowski_p=minkowski_p)
    if p == 1:
        return dist
    if p == 2 and not is_torch(dist):
        return np.square(dist)
    return dist**p
