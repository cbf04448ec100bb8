r"""Sliced Wasserstein distance: exact 1-D transport along random directions.

.. math:: SW_p(\mu, \nu)^p = \mathbb{E}_{\theta \sim U(S^{d-1})}\, W_p^p(\theta_\#\mu, \theta_\#\nu),

estimated by Monte Carlo over ``n_projections`` directions drawn uniformly on the sphere
(normalised Gaussian vectors).  Each slice is solved exactly by :mod:`.exact_1d`, so the cost is
O(L (n + m) log(n + m)) for L projections, and the estimate is differentiable for torch input.

Max-sliced W_p is the largest 1-D W_p over directions,

.. math:: \max_{\theta \in S^{d-1}} W_p(\theta_\#\mu, \theta_\#\nu) \le W_p(\mu, \nu),

searched from the best of the sampled directions by gradient ascent along great circles of the
sphere (:func:`max_direction`).  Both are lower bounds on W_p (a unit projection is 1-Lipschitz); the
1-D optimal coupling along any direction, applied to the points themselves, is a coupling in R^d,
and its cost (:func:`coupling_cost`) an upper bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from .._backend import is_torch, to_torch
from ..exceptions import InputError
from . import exact_1d

#: Most steps of the max-sliced ascent on the sphere.
MAX_ASCENT_STEPS = 200
#: The ascent has converged once a step this small (an angle, in radians) no longer increases W_p^p.
ASCENT_ANGLE_TOL = 1e-7
#: First step of the ascent (radians); it doubles after a step that increases W_p^p and halves otherwise.
ASCENT_FIRST_ANGLE = 0.1
#: Largest step of the ascent: a quarter turn reaches any direction orthogonal to the current one.
ASCENT_MAX_ANGLE = math.pi / 2


#: Working memory (bytes) of one block: the 1-D solves of a block of projections, or the pairs of coupled points
#: whose distances in R^d are summed at once. Every stage of the sliced and max-sliced methods streams in blocks
#: of this size, so their memory is the points themselves plus O(n + m) per 1-D problem plus this budget.
MEMORY_BUDGET = 1 << 27
#: Working bytes per level of one weighted 1-D solve in float64 (merged levels, sort orders, cumulative masses,
#: staircase indices): measured 82 with tracemalloc, rounded up.  A uniform solve needs 8.
LEVEL_BYTES = 96
#: Below this distance the squares in the plain norm may be subnormal (losing relative precision past one ulp)
#: or vanish, as a distance of 1e-200 would: such distances are recomputed from the coordinates scaled by the largest.
UNSCALED_NORM_MIN = math.sqrt(np.finfo(np.float64).tiny) / np.finfo(np.float64).eps
#: Float64 arrays of d entries held per coupled pair while its distance is taken: both points and their difference.
PAIR_ARRAYS = 3


@dataclass(frozen=True)
class SlicedEstimate:
    transport_cost: Any  # mean over projections of W_p^p
    standard_error: float | None  # of transport_cost (None from a single projection)
    per_projection: Any


def directions(d: int, n_projections: int, seed: int | None) -> np.ndarray:
    """``n_projections`` unit vectors in R^d, uniform on the sphere, shape (d, L)."""
    theta = np.random.default_rng(seed).standard_normal((d, n_projections))
    return theta / np.linalg.norm(theta, axis=0, keepdims=True)


def project(points, theta):
    """The projections of ``points`` (n, d) on the directions ``theta`` (d, L): one row per direction, (L, n)."""
    return theta.T @ points.T


def _slice_costs(x, y, a, b, p: float, theta, uniform: bool):
    """W_p^p along each direction (column) of ``theta``: shape (L,), all slices in one batched pass."""
    return exact_1d.transport_cost(project(x, theta), project(y, theta), a, b, p, uniform=uniform)


def projection_blocks(n_points: int, n_projections: int) -> list[tuple[int, int]]:
    """Blocks of projections whose 1-D solves over ``n_points`` levels fit in MEMORY_BUDGET (one at least)."""
    step = max(1, MEMORY_BUDGET // (LEVEL_BYTES * max(n_points, 1)))
    return [(k, min(k + step, n_projections)) for k in range(0, n_projections, step)]


def pair_blocks(n_pairs: int, d: int) -> list[tuple[int, int]]:
    """Blocks of coupled pairs of points in R^d whose coordinates and differences fit in MEMORY_BUDGET."""
    step = max(1, MEMORY_BUDGET // (PAIR_ARRAYS * np.dtype(np.float64).itemsize * max(d, 1)))
    return [(k, min(k + step, n_pairs)) for k in range(0, n_pairs, step)]


def _needs_graph(*arrays) -> bool:
    import torch

    return torch.is_grad_enabled() and any(is_torch(t) and t.requires_grad for t in arrays)


def _blocked_costs(x, y, a, b, p: float, theta, uniform: bool, blocks, progress: bool):
    """The slices' W_p^p (L,) of torch inputs that need gradients, with no per-direction array kept for the
    backward pass: each block's 1-D solves are rebuilt there and differentiated in the projections, whose
    gradients are folded into the points' gradients in place (``addmm_``), with no (n, d) array per block.

    The gradient is differentiable once: a second derivative (``create_graph=True``) raises instead of
    silently leaving out the slices' curvature; a single block (few directions) keeps the full graph.
    """
    import torch

    class BlockedSlices(torch.autograd.Function):
        @staticmethod
        def forward(ctx, *inputs):
            ctx.save_for_backward(*inputs)
            return _fill_blocks(lambda k0, k1: _slice_costs(*inputs[:4], p, inputs[4][:, k0:k1], uniform), blocks,
                                progress)

        @staticmethod
        def backward(ctx, grad_costs):
            if torch.is_grad_enabled():
                per_block = blocks[0][1] - blocks[0][0]
                raise InputError(
                    f"sliced W over {blocks[-1][1]} directions is computed in {len(blocks)} blocks, whose gradient "
                    "can be differentiated only once; got a request for a second derivative (create_graph=True). "
                    f"Pass at most {per_block} directions per call (n_projections) and average the calls: one "
                    "block keeps its whole graph.")
            points, weights, theta = ctx.saved_tensors[:2], ctx.saved_tensors[2:4], ctx.saved_tensors[4]
            need_points, need_weights = ctx.needs_input_grad[:2], ctx.needs_input_grad[2:4]
            need_theta = ctx.needs_input_grad[4]
            point_grads = [torch.zeros_like(t) if need else None for t, need in zip(points, need_points)]
            weight_grads = [None, None]
            theta_grad = torch.zeros_like(theta) if need_theta else None
            for k0, k1 in blocks:
                with torch.enable_grad():
                    block = theta[:, k0:k1].detach()
                    projected = [project(t.detach(), block).requires_grad_(need or need_theta)
                                 for t, need in zip(points, need_points)]
                    leaves = [t.detach().requires_grad_(need) for t, need in zip(weights, need_weights)]
                    costs = exact_1d.transport_cost(*projected, *leaves, p, uniform=uniform)
                    targets = [t for t in (*projected, *leaves) if t.requires_grad]
                    parts = iter(torch.autograd.grad(costs, targets, grad_costs[k0:k1], allow_unused=True))
                for i, t in enumerate(projected):
                    part = next(parts) if t.requires_grad else None
                    if part is None:
                        continue
                    if need_points[i]:
                        point_grads[i].addmm_(part.T, block.T)
                    if need_theta:
                        theta_grad[:, k0:k1].addmm_(points[i].detach().T, part.T)
                for i, t in enumerate(leaves):
                    part = next(parts) if t.requires_grad else None
                    if part is not None:
                        weight_grads[i] = part if weight_grads[i] is None else weight_grads[i].add_(part)
            return (*point_grads, *weight_grads, theta_grad)

    return BlockedSlices.apply(x, y, a, b, theta)


def solve(x, y, a, b, p: float, theta: np.ndarray, *, uniform: bool, progress: bool = False) -> SlicedEstimate:
    """Monte-Carlo sliced W_p^p over the directions ``theta`` (d, L), by blocks of directions.

    For torch input that needs gradients, in several blocks, the backward pass rebuilds and differentiates one
    block's projections, sort orders and staircase at a time instead of holding them for all directions.
    """
    if is_torch(x):
        theta = to_torch(theta, x) if not is_torch(theta) else theta
    n_proj = theta.shape[1]
    blocks = projection_blocks(x.shape[0] + y.shape[0], n_proj)
    if is_torch(x) and len(blocks) > 1 and _needs_graph(x, y, a, b, theta):
        return _estimate(_blocked_costs(x, y, a, b, p, theta, uniform, blocks, progress))
    return _estimate(_fill_blocks(lambda k0, k1: _slice_costs(x, y, a, b, p, theta[:, k0:k1], uniform), blocks,
                                  progress))


def _fill_blocks(block_costs, blocks, progress: bool):
    """The costs of every block, ``block_costs(k0, k1)``, written into one array allocated after the first block.

    A list of per-block results concatenated at the end would interleave small long-lived allocations with each
    block's large temporary arrays, which pins the freed blocks in the allocator's heap: the process grew by one
    projection's arrays per block (8 MB per block at 10^6 points) instead of reusing them.
    """
    costs = None
    for k0, k1 in tqdm(blocks, desc="sliced", unit="block", disable=not progress, leave=False):
        part = block_costs(k0, k1)
        if len(blocks) == 1:
            return part
        if costs is None:
            costs = part.new_empty((blocks[-1][1],)) if is_torch(part) else np.empty(blocks[-1][1], part.dtype)
        costs[k0:k1] = part
    return costs


def _estimate(costs) -> SlicedEstimate:
    n_proj = costs.shape[0]
    if n_proj == 1:
        return SlicedEstimate(costs.mean(), None, costs)
    spread = float(costs.detach().std()) if is_torch(costs) else float(np.std(costs, ddof=1))
    return SlicedEstimate(costs.mean(), spread / math.sqrt(n_proj), costs)


@dataclass(frozen=True)
class MaxDirection:
    """The end of the max-sliced ascent (NumPy, float64)."""

    theta: np.ndarray  # (d,) unit direction
    transport_cost: float  # W_p^p of the projections on theta
    n_steps: int
    converged: bool  # stopped by ASCENT_ANGLE_TOL (or a zero gradient), not by MAX_ASCENT_STEPS


def _slice(x, y, a, b, p: float, theta: np.ndarray, uniform: bool = False):
    """W_p^p along ``theta`` and its gradient in theta with the monotone coupling held fixed:
    sum_k mass_k p |theta . delta_k|^(p-1) sign(theta . delta_k) delta_k, delta_k = x_i(k) - y_j(k),
    summed over blocks of pairs (:func:`pair_blocks`)."""
    coupling = exact_1d.monotone_coupling(x @ theta, y @ theta, a, b, p, uniform=uniform)
    gradient = np.zeros(x.shape[1])
    for k0, k1 in pair_blocks(coupling.mass.shape[0], x.shape[1]):
        delta = x[coupling.u_index[k0:k1]] - y[coupling.v_index[k0:k1]]
        along = delta @ theta
        slope = coupling.mass[k0:k1] * p * np.sign(along) * (np.abs(along) ** (p - 1) if p != 1 else 1.0)
        gradient += slope @ delta
    return float(coupling.transport_cost), gradient


def max_direction(x, y, a, b, p: float, start: np.ndarray, *, uniform: bool = False) -> MaxDirection:
    """A direction maximising W_p^p of the projections, by ascent from the unit vector ``start``.

    Each step turns theta by an angle along the great circle of the gradient's tangent component
    (the gradient of the 1-D cost with the sorting coupling fixed; W_p^p(theta) is a minimum over
    couplings, so that is its gradient wherever the coupling is unique) and is kept only if W_p^p
    increases, so the cost never decreases from the start's.  NumPy float64 inputs; ``uniform`` as in
    :func:`otdist.solvers.exact_1d.monotone_coupling`.
    """
    theta = start / np.linalg.norm(start)
    cost, gradient = _slice(x, y, a, b, p, theta, uniform)
    angle = ASCENT_FIRST_ANGLE
    for step in range(MAX_ASCENT_STEPS):
        tangent = gradient - (gradient @ theta) * theta
        norm = np.linalg.norm(tangent)
        if not norm > 0:
            return MaxDirection(theta, cost, step, True)
        candidate = math.cos(angle) * theta + math.sin(angle) * (tangent / norm)
        candidate = candidate / np.linalg.norm(candidate)
        candidate_cost, candidate_gradient = _slice(x, y, a, b, p, candidate, uniform)
        if candidate_cost > cost:
            theta, cost, gradient = candidate, candidate_cost, candidate_gradient
            angle = min(2 * angle, ASCENT_MAX_ANGLE)
        else:
            angle /= 2
            if angle < ASCENT_ANGLE_TOL:
                return MaxDirection(theta, cost, step + 1, True)
    return MaxDirection(theta, cost, MAX_ASCENT_STEPS, False)


def coupling_cost(x, y, a, b, p: float, theta: np.ndarray, *, uniform: bool = False) -> float:
    """sum_k mass_k |x_i(k) - y_j(k)|^p for the monotone coupling of the projections on ``theta``:
    the cost of a coupling of the points in R^d, an upper bound on W_p^p.  NumPy float64 inputs; the
    distances are taken by blocks of pairs (:func:`pair_blocks`); ``uniform`` as in
    :func:`otdist.solvers.exact_1d.monotone_coupling`."""
    coupling = exact_1d.monotone_coupling(x @ theta, y @ theta, a, b, p, uniform=uniform)
    distance = np.empty(coupling.mass.shape[0])
    for k0, k1 in pair_blocks(distance.shape[0], x.shape[1]):
        distance[k0:k1] = row_norms(x[coupling.u_index[k0:k1]] - y[coupling.v_index[k0:k1]])
    return float(coupling.mass @ exact_1d.power(distance, p))


def row_norms(delta: np.ndarray) -> np.ndarray:
    """The euclidean norm of each row, without underflow in the squares (rows below UNSCALED_NORM_MIN rescaled)."""
    distance = np.linalg.norm(delta, axis=1)
    small = np.flatnonzero(distance < UNSCALED_NORM_MIN)
    if small.size:
        scale = np.abs(delta[small]).max(axis=1)
        nonzero = scale > 0
        rows, scale = small[nonzero], scale[nonzero]
        distance[rows] = scale * np.linalg.norm(delta[rows] / scale[:, None], axis=1)
    return distance
