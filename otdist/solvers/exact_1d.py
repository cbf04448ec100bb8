r"""Exact Wasserstein distance on the real line, through quantile functions.

For measures on R, the optimal coupling is monotone and

.. math:: W_p(\mu, \nu)^p = \int_0^1 |F_\mu^{-1}(t) - F_\nu^{-1}(t)|^p \, dt,

a sum over the merged cumulative-weight levels of both measures.  Cost: two sorts,
and one linear merge of the two sorted level arrays -- O((n + m) log(n + m)).
The same code runs on NumPy arrays and on torch tensors (then it is differentiable in the
values and in the weights).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._backend import is_torch


@dataclass(frozen=True)
class Monotone1D:
    """The monotone coupling as intervals of quantile levels."""

    transport_cost: Any
    u_index: Any  # index into the original u for each interval
    v_index: Any
    mass: Any  # length of each interval = mass moved from u_index to v_index


class _NumpyOps:
    argsort = staticmethod(np.argsort)
    sort = staticmethod(np.sort)
    # kind="stable" on two concatenated sorted runs is a linear merge (timsort).
    merge_order = staticmethod(lambda x: np.argsort(x, kind="stable"))
    cumsum = staticmethod(np.cumsum)
    concat = staticmethod(np.concatenate)
    where = staticmethod(np.where)
    diff0 = staticmethod(lambda x: np.diff(x, prepend=0.0))


class _TorchOps:
    @staticmethod
    def argsort(x):
        import torch

        return torch.argsort(x)

    @staticmethod
    def sort(x):
        import torch

        return torch.sort(x).values

    @staticmethod
    def merge_order(x):
        import torch

        return torch.argsort(x, stable=True)

    cumsum = staticmethod(lambda x: x.cumsum(0))

    @staticmethod
    def concat(xs):
        import torch

        return torch.cat(xs)

    @staticmethod
    def where(cond, a, b):
        import torch

        return torch.where(cond, a, b)

    @staticmethod
    def diff0(x):
        import torch

        return torch.diff(x, prepend=x.new_zeros(1))


def _ops(x):
    return _TorchOps if is_torch(x) else _NumpyOps


def power(diff, p: float):
    """|diff| ** p, with the cheap forms for p = 1 and 2."""
    if p == 1:
        return abs(diff)
    if p == 2:
        return diff * diff
    return abs(diff) ** p


def _cumulative(values, weights, ops):
    order = ops.argsort(values)
    cum = ops.cumsum(weights[order])
    # The last level is exactly 1 so that both level arrays end together.
    cum = cum / cum[-1]
    return order, values[order], cum


def _quantile_index(from_this, count, size):
    """Index of the first cumulative level >= each merged level, from the merge order.

    A level of this measure is its own index (count - 1); a level of the other measure maps to
    the next level of this one (count).  Ties between the two arrays produce zero-mass intervals,
    whose index does not matter.
    """
    index = count - from_this.long() if is_torch(count) else count - from_this
    return index.clip(max=size - 1)


def transport_cost(u, v, u_weights, v_weights, p: float, *, uniform: bool = False):
    """W_p(u, v) ** p for 1-D values with normalised weights.

    ``uniform=True`` promises equal sizes and uniform weights: then the cost is the mean
    of |sorted(u) - sorted(v)| ** p and only the two sorts are paid.
    """
    ops = _ops(u)
    if uniform:
        return power(ops.sort(u) - ops.sort(v), p).mean()
    return monotone_coupling(u, v, u_weights, v_weights, p).transport_cost


def monotone_coupling(u, v, u_weights, v_weights, p: float) -> Monotone1D:
    """The optimal (monotone) coupling between two weighted 1-D samples."""
    ops = _ops(u)
    u_order, u_sorted, u_cum = _cumulative(u, u_weights, ops)
    v_order, v_sorted, v_cum = _cumulative(v, v_weights, ops)
    n = u.shape[0]
    merged = ops.concat([u_cum, v_cum])
    order = ops.merge_order(merged)
    levels = merged[order]
    mass = ops.diff0(levels)
    from_u = order < n
    iu = _quantile_index(from_u, ops.cumsum(from_u), n)
    iv = _quantile_index(~from_u, ops.cumsum(~from_u), v.shape[0])
    cost = (mass * power(u_sorted[iu] - v_sorted[iv], p)).sum()
    return Monotone1D(cost, u_order[iu], v_order[iv], mass)
