r"""Row-blocked evaluation of entropic quantities without storing the n x m cost matrix.

Given dual potentials (f, g) of an entropic problem, the quantities the API reports -- the
c-transform ``T_b(g)`` (hence OT_eps through the semi-dual), the plan's transport cost
``<P_eps, C>`` and its marginal error -- are sums over rows of ``C``.  These helpers compute them
block of rows by block of rows, rebuilding each block of C from the points, so memory stays
O(BLOCK_ELEMENTS) whatever n and m.  With autograd on, each block is checkpointed
(``torch.utils.checkpoint``): the backward pass recomputes the block instead of keeping it.
"""

from __future__ import annotations

from typing import Callable

#: Entries of C materialised at once (4M float64 = 32 MB).
BLOCK_ELEMENTS = 1 << 22

CostRows = Callable[[int, int], object]  # (i0, i1) -> C[:, i0:i1, :] of shape (B, i1 - i0, m)


def row_blocks(n: int, m: int) -> list[tuple[int, int]]:
    step = max(1, BLOCK_ELEMENTS // max(m, 1))
    return [(i, min(i + step, n)) for i in range(0, n, step)]


def _blockwise(fn, n: int, m: int, differentiable: bool) -> list:
    from torch.utils.checkpoint import checkpoint

    blocks = row_blocks(n, m)
    if differentiable and len(blocks) > 1:
        return [checkpoint(fn, i0, i1, use_reentrant=False) for i0, i1 in blocks]
    return [fn(i0, i1) for i0, i1 in blocks]


def semi_dual_f(cost_rows: CostRows, n: int, m: int, log_b, g, eps: float, differentiable: bool):
    """f_i = -eps log sum_j b_j exp((g_j - C_ij) / eps), shape (B, n)."""
    import torch

    def block(i0, i1):
        return -eps * torch.logsumexp(log_b[:, None, :] + (g[:, None, :] - cost_rows(i0, i1)) / eps, dim=2)

    return torch.cat(_blockwise(block, n, m, differentiable), dim=1)


def c_transform_a(cost_rows: CostRows, n: int, m: int, log_a, f, eps: float):
    """g_j = -eps log sum_i a_i exp((f_i - C_ij) / eps), shape (B, m), accumulated over row blocks."""
    import torch

    acc = None
    for i0, i1 in row_blocks(n, m):
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

    pieces = _blockwise(block, n, m, differentiable)
    return sum(c for c, _ in pieces), sum(col for _, col in pieces)
