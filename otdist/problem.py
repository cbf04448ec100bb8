"""A transport problem after validation: points or a given cost, normalised weights, output type.

Every exact, LP and sampled method reads its inputs from one :class:`Problem`, built once by
:func:`make_problem`; the helpers below turn a solver's transport cost into W_p safely.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from . import _validation as V
from ._backend import array_out, is_torch, numpy_output_dtype, scalar_out, to_numpy, to_torch, torch_reference
from ._results import TransportResult
from .cost import Metric, check_metric_order, ground_cost
from .exceptions import InputError


@dataclass(frozen=True)
class Problem:
    """Validated inputs of a transport problem (points, normalised weights, ground cost)."""

    x: Any
    y: Any
    a: Any
    b: Any
    p: float
    metric: Metric
    minkowski_p: float | None
    cost: Any  # precomputed cost matrix, or None
    like: Any  # the torch tensor deciding output type/device, or None
    uniform: bool  # equal sizes and uniform weights
    out_dtype: Any = np.float64  # dtype of NumPy array results

    @property
    def shape(self) -> tuple[int, int]:
        return (self.cost.shape if self.x is None else (self.x.shape[0], self.y.shape[0]))

    def numpy_cost(self) -> np.ndarray:
        if self.cost is not None:
            return to_numpy(self.cost)
        with overflow_checked():
            cost = ground_cost(to_numpy(self.x), to_numpy(self.y), self.p, self.metric, minkowski_p=self.minkowski_p)
        check_representable(cost.max(), self.p)
        return cost


def make_problem(u_values, v_values, u_weights, v_weights, p, metric, minkowski_p=None, cost=None) -> Problem:
    p = V.check_order(p)
    like = torch_reference(u_values, v_values, u_weights, v_weights, cost)
    if cost is not None and p != 1:
        raise InputError(
            f"p only applies to point clouds (the cost d(x, y) ** p); got p={p:g} with a precomputed cost, whose value "
            "is the transport cost <P, C> itself. Pass cost=C ** p for the p-th power of a distance matrix and take "
            "value ** (1 / p) yourself, or pass the points with p=..."
        )
    if cost is not None and u_values is None and v_values is None:
        cost = V.as_real_array(cost, "cost")
        if cost.ndim != 2 or 0 in cost.shape:
            raise InputError(
                f"cost must be a non-empty 2-D (n, m) matrix; got shape {tuple(cost.shape)}. "
                "Pass one row per source point and one column per target point."
            )
        n, m = cost.shape
        x = y = None
    else:
        x = V.as_points(u_values, "u_values")
        y = V.as_points(v_values, "v_values")
        V.check_same_dim(x, y)
        if like is not None:
            x, y = to_torch(x, like), to_torch(y, like)
        n, m = x.shape[0], y.shape[0]
    if cost is not None:
        cost = V.check_cost_matrix(cost, n, m, allow_negative=True)
        cost = to_torch(cost, like) if like is not None else cost
    else:
        check_metric_order(metric, p)
    a = V.as_weights(u_weights, n, "u_weights", "u_values", like)
    b = V.as_weights(v_weights, m, "v_weights", "v_values", like)
    uniform = u_weights is None and v_weights is None and n == m
    out_dtype = numpy_output_dtype(u_values, v_values, u_weights, v_weights, cost)
    return Problem(x, y, a, b, p, metric, minkowski_p, cost, like, uniform, out_dtype)


def pth_root(cost, p: float):
    """cost ** (1/p) for a transport cost that may be -0 or a rounding error below zero; for torch, its
    gradient at a zero cost is 0 (a subgradient of W_p there) instead of inf * 0 = NaN."""
    if not is_torch(cost):
        return max(float(cost), 0.0) ** (1.0 / p)
    import torch

    positive = cost > 0
    return torch.where(positive, cost.clamp_min(torch.finfo(cost.dtype).tiny) ** (1.0 / p), cost.new_zeros(()))


def overflow_checked():
    """Overflow inside a solver gives inf, which _check_representable turns into a clear error."""
    return np.errstate(over="ignore", invalid="ignore")


def check_representable(cost, p: float) -> None:
    """A transport cost that overflowed (|x - y| ** p beyond the float range) is refused, never returned."""
    value = float(cost.detach()) if is_torch(cost) else float(cost)
    if not np.isfinite(value):
        raise InputError(
            f"the transport cost overflows the floating-point range (got {value}) with p={p:g}: distances ** p "
            "exceed the largest representable number. Rescale the points (W_p(s x, s y) = s W_p(x, y)) or use a "
            "smaller p."
        )


def transport_result(problem: Problem, cost, plan, potentials, gap, method, *, n_iter=None, converged=True):
    """The result object; ``value`` is W_p = cost ** (1/p), or the transport cost itself when the user gave
    the cost matrix (it may be negative, and it is not a p-th power of a distance)."""
    like = problem.like
    check_representable(cost, problem.p)
    value = cost if problem.p == 1 or problem.cost is not None else pth_root(cost, problem.p)
    if potentials is not None:
        potentials = tuple(array_out(f, like, problem.out_dtype) for f in potentials)
    if plan is not None and not sp.issparse(plan) and not (is_torch(plan) and plan.is_sparse):
        plan = array_out(plan, like, problem.out_dtype)
    return TransportResult(
        value=scalar_out(value, like),
        transport_cost=scalar_out(cost, like),
        plan=plan,
        potentials=potentials,
        duality_gap=None if gap is None else float(gap),
        method=method,
        p=problem.p,
        n_iter=n_iter,
        converged=converged,
    )


def is_uniform(problem: Problem) -> bool:
    a, b = to_numpy(problem.a), to_numpy(problem.b)
    return bool(np.all(a == a[0]) and np.all(b == b[0]))
