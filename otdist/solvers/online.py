r"""The geometry of an entropic problem, and its quantities evaluated block of rows by block of rows.

:class:`Geometry` holds the cost of a batched problem: a dense matrix (``backend="tensorized"``) or the
points from which blocks of rows are rebuilt on demand (the other backends).

Given dual potentials (f, g) of an entropic problem, the quantities the API reports -- the
c-transform ``T_b(g)`` (hence OT_eps through the semi-dual), the plan's transport cost
``<P_eps, C>`` and its marginal error -- are sums over rows of ``C``.  These helpers compute them
block of rows by block of rows, rebuilding each block of C from the points, so memory stays
O(BLOCK_ELEMENTS) whatever n and m.  With autograd on, each block is checkpointed
(``torch.utils.checkpoint``): the backward pass recomputes the block instead of keeping it.

``<P_eps, C>`` is not stationary in (f, g), so the envelope theorem does not give its gradient:
:func:`linear_cost` differentiates the Sinkhorn fixed point implicitly (one conjugate-gradient
solve of the adjoint system in the backward pass, see :meth:`LinearCostProblem.adjoint`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch.autograd.function import once_differentiable

from ..exceptions import InputError
from .sinkhorn_ops import exponent, safe_log

#: Entries of C materialised at once (4M float64 = 32 MB).
BLOCK_ELEMENTS = 1 << 22
#: The same on a GPU (64M float32 = 256 MB), where each block costs a few kernel launches: small blocks
#: would leave the device waiting on the launches.
CUDA_BLOCK_ELEMENTS = 1 << 26

CostRows = Callable[[int, int], object]  # (i0, i1) -> C[:, i0:i1, :] of shape (B, i1 - i0, m)


@dataclass(frozen=True)
class Geometry:
    """The cost of one batched problem: a dense (B, n, m) matrix, or rebuilt by blocks of rows.

    ``inputs`` holds the points ``x`` (B, n, d), ``y`` (B, m, d) and weights ``a``, ``b``;
    ``cost_of(x, y)`` computes the cost between two batches of points.
    """

    inputs: Any
    cost_of: Callable
    dense: Any = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.inputs.a.shape[1], self.inputs.b.shape[1]

    @property
    def leaves(self) -> tuple:
        """The tensors the cost is computed from: the dense cost, or the points."""
        return (self.dense,) if self.dense is not None else (self.inputs.x, self.inputs.y)

    def leaf_rows(self, i0: int, i1: int, *leaves):
        return leaves[0][:, i0:i1] if self.dense is not None else self.cost_of(leaves[0][:, i0:i1], leaves[1])

    def rows(self, i0: int, i1: int):
        return self.leaf_rows(i0, i1, *self.leaves)

    def full(self):
        return self.rows(0, self.shape[0])

    def spread(self) -> float:
        """max C - min C, without building C when it is not stored."""
        with torch.no_grad():
            a = self.inputs.a
            blocks = [self.dense] if self.dense is not None else \
                (self.rows(i0, i1) for i0, i1 in row_blocks(*self.shape, a.device, a.shape[0]))
            lows, highs = torch.stack([torch.stack([c.min(), c.max()]) for c in blocks]).double().unbind(dim=1)
            lows, highs = lows.tolist(), highs.tolist()
        if not math.isfinite(max(highs)):
            raise InputError(
                f"the cost between the points must be finite; its largest entry overflows to {max(highs)}. "
                "Rescale the points (the plan of a rescaled problem is the same with epsilon rescaled alike)."
            )
        return max(highs) - min(lows)

    def tracks_grad(self) -> bool:
        inputs = self.inputs
        return torch.is_grad_enabled() and any(t.requires_grad for t in (inputs.a, inputs.b, *self.leaves))


def entropic_cost(pot, geometry: Geometry):
    """OT_eps through the semi-dual at fixed g: exact value, envelope-theorem gradients.

    The semi-dual's gradient in b_j is g_j - eps; at a zero weight b_j its log b_j term gives none
    and g_j is not determined by the plan, so there the gradient is set to T_a(f)_j - eps, the
    one-sided derivative (mass can only be added).
    """
    from . import sinkhorn_ops as core

    a, b = geometry.inputs.a, geometry.inputs.b
    g = pot.g.detach()
    if geometry.dense is not None:
        value = core.entropic_cost(pot, geometry.dense, a, b)
    else:
        f = semi_dual_f(geometry.rows, *geometry.shape, safe_log(b), g, pot.epsilon, geometry.tracks_grad())
        value = (a * f).sum(dim=1) + (b * g).sum(dim=1)
    if b.requires_grad and torch.is_grad_enabled() and bool((b == 0).any()):
        with torch.no_grad():
            exact = c_transform_a(geometry.rows, *geometry.shape, safe_log(a), pot.f, pot.epsilon)
            correction = torch.where(b == 0, exact - pot.epsilon - g, 0.0)
        value = value + ((b - b.detach()) * correction).sum(dim=1)
    return value


def transport_cost(pot, geometry: Geometry, on_inexact: Callable):
    """<P_eps, C>; with autograd on, its exact gradient (:func:`linear_cost`), ``on_inexact`` as there."""
    from . import sinkhorn_ops as core

    a, b = geometry.inputs.a, geometry.inputs.b
    if geometry.tracks_grad():
        problem = LinearCostProblem(geometry.leaf_rows, *geometry.shape, pot.f.detach(), pot.g.detach(), pot.epsilon,
                                    cache=geometry.dense is not None, on_inexact=on_inexact)
        return linear_cost(problem, a, b, *geometry.leaves)
    if geometry.dense is not None:
        return core.transport_cost(pot, geometry.dense, a, b)
    return plan_statistics(geometry.rows, *geometry.shape, safe_log(a), safe_log(b), pot.f, pot.g, pot.epsilon, False)[0]


def row_blocks(n: int, m: int, device=None, batch: int = 1) -> list[tuple[int, int]]:
    """Row ranges whose (batch, rows, m) blocks hold at most BLOCK_ELEMENTS entries each
    (CUDA_BLOCK_ELEMENTS on a GPU ``device``)."""
    budget = CUDA_BLOCK_ELEMENTS if device is not None and torch.device(device).type == "cuda" else BLOCK_ELEMENTS
    step = max(1, budget // max(batch * m, 1))
    return [(i, min(i + step, n)) for i in range(0, n, step)]


def _blockwise(fn, n: int, m: int, differentiable: bool, like=None) -> list:
    from torch.utils.checkpoint import checkpoint
    blocks = row_blocks(n, m, *(() if like is None else (like.device, like.shape[0])))
    if differentiable and len(blocks) > 1:
        return [checkpoint(fn, i0, i1, use_reentrant=False) for i0, i1 in blocks]
    return [fn(i0, i1) for i0, i1 in blocks]


def semi_dual_f(cost_rows: CostRows, n: int, m: int, log_b, g, eps: float, differentiable: bool):
    """f_i = -eps log sum_j b_j exp((g_j - C_ij) / eps), shape (B, n)."""
    def block(i0, i1):
        return -eps * torch.logsumexp(log_b[:, None, :] + (g[:, None, :] - cost_rows(i0, i1)) / eps, dim=2)

    return torch.cat(_blockwise(block, n, m, differentiable, g), dim=1)


def c_transform_a(cost_rows: CostRows, n: int, m: int, log_a, f, eps: float):
    """g_j = -eps log sum_i a_i exp((f_i - C_ij) / eps), shape (B, m), accumulated over row blocks."""
    acc = None
    for i0, i1 in row_blocks(n, m, f.device, f.shape[0]):
        block = torch.logsumexp(log_a[:, i0:i1, None] + (f[:, i0:i1, None] - cost_rows(i0, i1)) / eps, dim=1)
        acc = block if acc is None else torch.logaddexp(acc, block)
    return -eps * acc


def refine(cost_rows: CostRows, n: int, m: int, log_a, log_b, g, eps: float, tol: float, max_iter: int,
           symmetric: bool = False):
    """Log-domain Sinkhorn from g until the L1 marginal error is below ``tol`` (no autograd).

    Each iteration is two row-blocked passes: f = T_b(g), then g' = T_a(f); with f = T_b(g) the
    rows of the plan are exact and its column sums are b_j exp((g_j - g'_j) / eps), which gives
    the error for free.  ``symmetric=True`` (a = b, C symmetric) uses one pass and the averaged
    update g <- (g + T(g)) / 2.  Returns (f, g, iterations, error) with f = T_b(g).
    """
    if symmetric:
        for it in range(1, max_iter + 1):
            f = semi_dual_f(cost_rows, n, m, log_b, g, eps, False)
            error = (log_b.exp() * (((f - g) / eps).exp() - 1).abs()).sum(dim=1)
            if bool((error <= tol).all()) or it == max_iter:
                return f, g, it, error
            g = 0.5 * (g + f)
    for it in range(1, max_iter + 1):
        f = semi_dual_f(cost_rows, n, m, log_b, g, eps, False)
        g_next = c_transform_a(cost_rows, n, m, log_a, f, eps)
        error = (log_b.exp() * (((g - g_next) / eps).exp() - 1).abs()).sum(dim=1)
        if bool((error <= tol).all()) or it == max_iter:
            return f, g, it, error
        g = g_next


class BlockSoftmin:
    """The c-transforms of a batched problem, row block by row block (:mod:`otdist.solvers.log_sinkhorn`).

    ``cost_rows(i0, i1)`` rebuilds rows i0:i1 of C; ``lower`` (optional) builds the same softmin on
    float32 copies of the points, for the first iterations of a float64 problem.
    """

    def __init__(self, cost_rows: CostRows, n: int, m: int, dtype, lower: Callable | None = None):
        self.cost_rows, self.shape, self.dtype, self._lower = cost_rows, (n, m), dtype, lower

    def rows(self, g, log_b, eps: float):
        shift = (g / eps + log_b)[:, None, :]
        out = [torch.logsumexp(torch.sub(shift, self.cost_rows(i0, i1), alpha=1.0 / eps), dim=2)
               for i0, i1 in row_blocks(*self.shape, g.device, g.shape[0])]
        return -eps * torch.cat(out, dim=1)

    def columns(self, f, log_a, eps: float):
        shift, acc = (f / eps + log_a)[:, :, None], None
        for i0, i1 in row_blocks(*self.shape, f.device, f.shape[0]):
            block = torch.logsumexp(torch.sub(shift[:, i0:i1], self.cost_rows(i0, i1), alpha=1.0 / eps), dim=1)
            acc = block if acc is None else torch.logaddexp(acc, block)
        return -eps * acc

    def lowered(self) -> "BlockSoftmin | None":
        return None if self._lower is None else self._lower()


def plan_statistics(cost_rows: CostRows, n: int, m: int, log_a, log_b, f, g, eps: float, differentiable: bool):
    """(<P, C>, column sums of P) for P_ij = a_i b_j exp((f_i + g_j - C_ij) / eps).

    The plan is held fixed (detached) so that the gradient of <P, C> in C is P, as for the dense
    solver; the column sums carry no gradient.
    """

    def block(i0, i1):
        cost = cost_rows(i0, i1)
        log_p = (f[:, i0:i1, None] + g[:, None, :] - cost.detach()) / eps + log_a[:, i0:i1, None] + log_b[:, None, :]
        plan = log_p.exp()
        return (plan * cost).sum(dim=(1, 2)), plan.sum(dim=1).detach()

    pieces = _blockwise(block, n, m, differentiable, f)
    return sum(c for c, _ in pieces), sum(col for _, col in pieces)


class Kernel:
    """K_ij = exp((f_i + g_j - C_ij) / eps) of a batched problem, applied to vectors row block by row block.

    ``cache=True`` builds K and C once (the dense geometry, where C is already in memory); otherwise
    each product rebuilds the blocks of C from ``cost_rows``.
    """

    def __init__(self, cost_rows: CostRows, n: int, m: int, f, g, eps: float, cache: bool):
        self.cost_rows, self.f, self.g, self.eps = cost_rows, f, g, eps
        self.blocks = [(0, n)] if cache else row_blocks(n, m, f.device, f.shape[0])
        self._cached = [self._block(0, n)] if cache else None

    def _block(self, i0: int, i1: int):
        with torch.no_grad():
            cost = self.cost_rows(i0, i1).detach()
            return i0, i1, exponent(cost, self.f[:, i0:i1], self.g, self.eps).exp_(), cost

    def pieces(self):
        """(i0, i1, K[:, i0:i1], C[:, i0:i1]) for each block of rows."""
        return iter(self._cached) if self._cached is not None else (self._block(i0, i1) for i0, i1 in self.blocks)

    def apply(self, v, with_cost: bool = False):
        """sum_j K_ij v_j (or sum_j K_ij C_ij v_j), shape (B, n)."""
        out = [torch.matmul(k * c if with_cost else k, v[:, :, None])[:, :, 0] for _, _, k, c in self.pieces()]
        return torch.cat(out, dim=1)

    def apply_t(self, u, with_cost: bool = False):
        """sum_i u_i K_ij (or sum_i u_i K_ij C_ij), shape (B, m)."""
        return sum(torch.matmul(u[:, None, i0:i1], k * c if with_cost else k)[:, 0, :] for i0, i1, k, c in self.pieces())


def _conjugate_gradient(operator, rhs, precondition, size, tol: float, max_iter: int):
    """Preconditioned CG for the symmetric positive semi-definite ``operator``, batched over rows.

    Returns (solution, the largest L1 residual relative to ``size`` (B,), the scale of the terms of ``rhs``).
    """
    x = torch.zeros_like(rhs)
    r = rhs.clone()
    z = precondition * r
    direction, rz = z.clone(), (r * z).sum(dim=1)
    size = size.clamp_min(torch.finfo(rhs.dtype).tiny)
    relative = r.abs().sum(dim=1) / size
    for _ in range(max_iter):
        if float(relative.max()) <= tol:
            break
        product = operator(direction)
        curvature = (direction * product).sum(dim=1)
        step = torch.where(curvature > 0, rz / curvature.clamp_min(torch.finfo(rhs.dtype).tiny), 0.0)
        x += step[:, None] * direction
        r -= step[:, None] * product
        z = precondition * r
        rz_next = (r * z).sum(dim=1)
        direction = z + torch.where(rz > 0, rz_next / rz.clamp_min(torch.finfo(rhs.dtype).tiny), 0.0)[:, None] * direction
        rz = rz_next
        relative = r.abs().sum(dim=1) / size
    return x, float(relative.max())


#: The adjoint system of the implicit gradient is solved until its residual is below
#: machine epsilon ** ADJOINT_TOL_EXPONENT of its right-hand side (float64: 2e-12, float32: 6e-6) ...
ADJOINT_TOL_EXPONENT = 0.75
#: ... in at most ADJOINT_ITERATIONS_PER_COLUMN * m + ADJOINT_EXTRA_ITERATIONS conjugate-gradient
#: steps (exact arithmetic needs at most m).
ADJOINT_ITERATIONS_PER_COLUMN = 2
ADJOINT_EXTRA_ITERATIONS = 50


@dataclass(frozen=True)
class LinearCostProblem:
    """<P_eps, C> for the potentials (f, g) of a solved entropic problem, and what its gradient needs.

    ``leaf_rows(i0, i1, *leaves)`` builds rows i0:i1 of C from the tensors C depends on (the dense
    cost itself, or the points); ``on_inexact(residual, tol)`` is called when the adjoint system
    stops above its tolerance.
    """

    leaf_rows: Callable
    n: int
    m: int
    f: object
    g: object
    eps: float
    cache: bool
    on_inexact: Callable

    def kernel(self, leaves, g=None) -> Kernel:
        return Kernel(lambda i0, i1: self.leaf_rows(i0, i1, *leaves), self.n, self.m, self.f,
                      self.g if g is None else g, self.eps, self.cache)

    def value(self, a, b, leaves):
        return (a * self.kernel(leaves).apply(b, with_cost=True)).sum(dim=1)

    def adjoint(self, a, b, leaves):
        """Gradients of <P_eps, C> in a and b, and the multipliers (lam_f, lam_g) of its gradient in C.

        Implicit differentiation of the fixed point sum_j P_ij = a_i, sum_i P_ij = b_j: with the
        row-stochastic Q = P / a and c = column sums of P o C, lam_g solves the (PSD, kernel = constants)
        system  (diag(b) - P^T Q) lam_g = c - P^T (Q o C) 1  by conjugate gradients preconditioned
        by diag(b); then lam_f = (Q o C) 1 - Q lam_g, dL/da = lam_f, dL/db_j = sum_i a_i K_ij (C_ij - lam_f_i)
        and dL/dC_ij = P_ij (1 + (lam_f_i + lam_g_j - C_ij) / eps).  Zero-weight columns use the exact
        c-transform g_j = T_a(f)_j, so that their gradient is the one-sided derivative.
        """
        g = self.g
        if bool((b == 0).any()):
            exact = c_transform_a(lambda i0, i1: self.leaf_rows(i0, i1, *leaves), self.n, self.m, safe_log(a), self.f,
                                  self.eps)
            g = torch.where(b > 0, g, exact)
        kernel = self.kernel(leaves, g)
        row_cost = kernel.apply(b, with_cost=True)
        column_cost, transported = kernel.apply_t(a, with_cost=True), kernel.apply_t(a * row_cost)
        rhs = b * (column_cost - transported)
        size = (b * (column_cost.abs() + transported.abs())).sum(dim=1)

        active = (b > 0).to(b.dtype)

        def centred(v):  # the constants are the kernel of the exact system: keep them out of the iterates
            return v - active * (v * active).sum(dim=1, keepdim=True) / active.sum(dim=1, keepdim=True)

        def schur(v):
            v = centred(v)
            return centred(b * v - b * kernel.apply_t(a * kernel.apply(b * v)))

        tol = torch.finfo(a.dtype).eps ** ADJOINT_TOL_EXPONENT
        budget = ADJOINT_ITERATIONS_PER_COLUMN * self.m + ADJOINT_EXTRA_ITERATIONS
        precondition = torch.where(b > 0, 1.0 / b.clamp_min(torch.finfo(b.dtype).tiny), 0.0)
        lam_g, residual = _conjugate_gradient(schur, centred(rhs), precondition, size, tol, budget)
        lam_g = centred(lam_g)
        if residual > tol:
            self.on_inexact(residual, tol)
        lam_f = row_cost - kernel.apply(b * lam_g)
        grad_b = column_cost - kernel.apply_t(a * lam_f)
        return lam_f, grad_b, lam_g, kernel


class _LinearCost(torch.autograd.Function):
    """<P_eps, C>: the value from the potentials, the exact implicit gradient (LinearCostProblem.adjoint)."""

    @staticmethod
    def forward(ctx, problem, a, b, *leaves):
        ctx.problem = problem
        ctx.save_for_backward(a, b, *leaves)
        return problem.value(a, b, leaves)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        problem = ctx.problem
        a, b, *leaves = ctx.saved_tensors
        lam_f, grad_b, lam_g, kernel = problem.adjoint(a, b, leaves)
        wanted = [k for k, need in enumerate(ctx.needs_input_grad[3:]) if need]
        leaf_grads = [None] * len(leaves)
        if wanted:
            detached = [leaf.detach().requires_grad_(k in wanted) for k, leaf in enumerate(leaves)]
            for i0, i1, k, cost in kernel.pieces():
                plan = a[:, i0:i1, None] * k * b[:, None, :]
                weight = plan * (1 + (lam_f[:, i0:i1, None] + lam_g[:, None, :] - cost) / problem.eps)
                with torch.enable_grad():
                    rows = problem.leaf_rows(i0, i1, *detached)
                    got = torch.autograd.grad(rows, [detached[k] for k in wanted], grad[:, None, None] * weight)
                for k, value in zip(wanted, got):
                    leaf_grads[k] = value if leaf_grads[k] is None else leaf_grads[k] + value
        return None, grad[:, None] * lam_f, grad[:, None] * grad_b, *leaf_grads


def linear_cost(problem: LinearCostProblem, a, b, *leaves):
    """<P_eps, C> (B,), differentiable in a, b and ``leaves`` with the exact implicit gradient."""
    return _LinearCost.apply(problem, a, b, *leaves)
