r"""Sliced Wasserstein distance: exact 1-D transport along random directions.

.. math:: SW_p(\mu, \nu)^p = \mathbb{E}_{\theta \sim U(S^{d-1})}\, W_p^p(\theta_\#\mu, \theta_\#\nu),

estimated by Monte Carlo over ``n_projections`` directions drawn uniformly on the sphere
(normalised Gaussian vectors).  Each slice is solved exactly by :mod:`.exact_1d`, so the cost is
O(L (n + m) log(n + m)) for L projections, and the estimate is differentiable for torch input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from .._backend import is_torch, to_torch
from . import exact_1d


#: Projected values (points x directions) held at once: 4M float64 = 32 MB.
BLOCK_ELEMENTS = 1 << 22


@dataclass(frozen=True)
class SlicedEstimate:
    transport_cost: Any  # mean over projections of W_p^p
    standard_error: float | None  # of transport_cost (None from a single projection)
    per_projection: Any


def directions(d: int, n_projections: int, seed: int | None) -> np.ndarray:
    """``n_projections`` unit vectors in R^d, uniform on the sphere, shape (d, L)."""
    theta = np.random.default_rng(seed).standard_normal((d, n_projections))
    return theta / np.linalg.norm(theta, axis=0, keepdims=True)


def _slice_costs(x, y, a, b, p: float, theta, uniform: bool):
    """W_p^p along each direction (column) of ``theta``: shape (L,)."""
    px, py = x @ theta, y @ theta  # (n, L), (m, L)
    if uniform:
        sx = px.sort(0).values if is_torch(px) else np.sort(px, axis=0)
        sy = py.sort(0).values if is_torch(py) else np.sort(py, axis=0)
        return exact_1d.power(sx - sy, p).mean(0)
    per = [exact_1d.transport_cost(px[:, k], py[:, k], a, b, p) for k in range(theta.shape[1])]
    if is_torch(x):
        import torch

        return torch.stack(per)
    return np.asarray(per)


def projection_blocks(n_points: int, n_projections: int) -> list[tuple[int, int]]:
    """Blocks of projections whose projected points fit in BLOCK_ELEMENTS entries."""
    step = max(1, BLOCK_ELEMENTS // max(n_points, 1))
    return [(k, min(k + step, n_projections)) for k in range(0, n_projections, step)]


def solve(x, y, a, b, p: float, theta: np.ndarray, *, uniform: bool, progress: bool = False) -> SlicedEstimate:
    """Monte-Carlo sliced W_p^p over the directions ``theta`` (d, L), by blocks of directions."""
    if is_torch(x):
        theta = to_torch(theta, x)
    n_proj = theta.shape[1]
    blocks = projection_blocks(x.shape[0] + y.shape[0], n_proj)
    parts = [_slice_costs(x, y, a, b, p, theta[:, k0:k1], uniform)
             for k0, k1 in tqdm(blocks, desc="sliced", unit="block", disable=not progress, leave=False)]
    if is_torch(x):
        import torch

        costs = torch.cat(parts)
    else:
        costs = np.concatenate(parts)
    if n_proj == 1:
        return SlicedEstimate(costs.mean(), None, costs)
    spread = float(costs.detach().std()) if is_torch(costs) else float(np.std(costs, ddof=1))
    return SlicedEstimate(costs.mean(), spread / math.sqrt(n_proj), costs)
