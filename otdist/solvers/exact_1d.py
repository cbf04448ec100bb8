r"""Exact Wasserstein distance on the real line, through quantile functions.

For measures on R, the optimal coupling is monotone and

.. math:: W_p(\mu, \nu)^p = \int_0^1 |F_\mu^{-1}(t) - F_\nu^{-1}(t)|^p \, dt,

a sum over the merged cumulative-weight levels of both measures.  Cost: two sorts,
one linear merge of the two sorted level arrays and two ``searchsorted`` -- O((n + m) log(n + m)).
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
    argsort = staticmethod(lambda x: np.argsort(x, kind="stable"))
    sort = staticmethod(lambda x: np.sort(x, kind="stable"))
    cumsum = staticmethod(np.cumsum)
    concat = staticmethod(np.concatenate)
    searchsorted = staticmethod(lambda a, v: np.searchsorted(a, v, side="left"))
    diff0 = staticmethod(lambda x: np.diff(x, prepend=0.0))


class _TorchOps:
    @staticmethod
    def argsort(x):
        import torch

        return torch.argsort(x, stable=True)

    @staticmethod
    def sort(x):
        import torch

        return torch.sort(x, stable=True).values

    cumsum = staticmethod(lambda x: x.cumsum(0))

    @staticmethod
    def concat(xs):
        import torch

        return torch.cat(xs)

    @staticmethod
    def searchsorted(a, v):
        import torch

        return torch.searchsorted(a.contiguous(), v.contiguous(), side="left")

    @staticmethod
    def diff0(x):
        import torch

        return torch.diff(x, prepend=x.new_zeros(1))


def _ops(x):
    return _TorchOps if is_torch(x) else _NumpyOps


def _power(diff, p: float):
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


def transport_cost(u, v, u_weights, v_weights, p: float, *, uniform: bool = False):
    """W_p(u, v) ** p for 1-D values with normalised weights.

    ``uniform=True`` promises equal sizes and uniform weights: then the cost is the mean
    of |sorted(u) - sorted(v)| ** p and only the two sorts are paid.
    """
    ops = _ops(u)
    if uniform:
        return _power(ops.sort(u) - ops.sort(v), p).mean()
    return monotone_coupling(u, v, u_weights, v_weights, p).transport_cost


def monotone_coupling(u, v, u_weights, v_weights, p: float) -> Monotone1D:
    """The optimal (monotone) coupling between two weighted 1-D samples."""
    ops = _ops(u)
    u_order, u_sorted, u_cum = _cumulative(u, u_weights, ops)
    v_order, v_sorted, v_cum = _cumulative(v, v_weights, ops)
    # Both level arrays are sorted: a stable sort of their concatenation is a linear merge.
    levels = ops.sort(ops.concat([u_cum, v_cum]))
    mass = ops.diff0(levels)
    iu = ops.searchsorted(u_cum, levels).clip(max=u.shape[0] - 1)
    iv = ops.searchsorted(v_cum, levels).clip(max=v.shape[0] - 1)
    cost = (mass * _power(u_sorted[iu] - v_sorted[iv], p)).sum()
    return Monotone1D(cost, u_order[iu], v_order[iv], mass)
