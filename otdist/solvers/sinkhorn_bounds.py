r"""Certified bounds on the exact transport cost from an entropic solution (dense, one problem).

Upper bound: the entropic plan rounded onto the transport polytope U(a, b) (Altschuler, Weed &
Rigollet, 2017, Algorithm 2): rows scaled down to at most a, columns to at most b, then the missing
mass added as the rank-one coupling of the row and column deficits.  The result is a coupling of a
and b, so its cost is at least the exact OT.

Lower bound: the dual objective of c-transformed potentials, g_j = min_i C_ij - f_i, then
f_i = min_j C_ij - g_j.  Then f_i + g_j <= C_ij for every i, j, so <a, f> + <b, g> <= OT by weak duality.

Both bounds are widened by the floating-point error of the sums that compute them
(ROUNDING_ULPS * (n + m) ulps of max |C|), so that rounding cannot push them past the exact value.
"""

from __future__ import annotations

#: The bounds are widened by this many ulps of max |C| per term of the sums over n + m entries.
ROUNDING_ULPS = 4


def rounded_plan(plan, a, b):
    """The Altschuler-Weed-Rigollet rounding of ``plan`` (n, m) onto the couplings of a (n,) and b (m,)."""
    import torch

    rows = plan.sum(dim=1)
    plan = plan * torch.where(rows > a, a / rows.clamp_min(torch.finfo(plan.dtype).tiny), 1.0)[:, None]
    columns = plan.sum(dim=0)
    plan = plan * torch.where(columns > b, b / columns.clamp_min(torch.finfo(plan.dtype).tiny), 1.0)[None, :]
    row_deficit = (a - plan.sum(dim=1)).clamp_min(0)
    column_deficit = (b - plan.sum(dim=0)).clamp_min(0)
    missing = row_deficit.sum()
    if float(missing) > 0:
        plan = plan + torch.outer(row_deficit, column_deficit) / missing
    return plan


def feasible_dual(f, cost):
    """(f', g') with f'_i + g'_j <= C_ij: the c-transforms g' = min_i C_ij - f_i, f' = min_j C_ij - g'_j."""
    import torch

    f = torch.where(torch.isfinite(f), f, 0.0)
    g = (cost - f[:, None]).amin(dim=0)
    return (cost - g[None, :]).amin(dim=1), g


def bounds(plan, f, cost, a, b) -> tuple[float, float]:
    """(lower, upper) on the exact OT cost min_{P in U(a, b)} <P, C>, in the units of C (float64)."""
    import torch

    plan, f, cost, a, b = (t.detach().to(torch.float64) for t in (plan, f, cost, a, b))
    upper = float((rounded_plan(plan, a, b) * cost).sum())
    f, g = feasible_dual(f, cost)
    lower = float((a * f).sum() + (b * g).sum())
    n, m = cost.shape
    margin = ROUNDING_ULPS * (n + m) * torch.finfo(torch.float64).eps * float(cost.abs().max())
    return lower - margin, upper + margin


def streamed_bounds(cost_rows, n: int, m: int, f, g, a, b, eps: float) -> tuple[float, float]:
    """:func:`bounds` for the plan P_ij = a_i b_j exp((f_i + g_j - C_ij) / eps) of a cost that is not stored.

    ``cost_rows(i0, i1)`` rebuilds rows i0:i1 of C (shape (i1 - i0, m)); f (n,), g (m,), a (n,), b (m,).
    The rounding and the c-transforms are the same as :func:`bounds`, in four passes over blocks of
    rows: row scaling and column sums, the rounded plan's cost and marginals, then the c-transform
    g' = min_i C_ij - f_i, and f' = min_j C_ij - g'_j with the rank-one term of the rounding.
    """
    import torch

    from .online import row_blocks
    from .sinkhorn_ops import safe_log

    f, g, a, b = (t.detach().to(torch.float64) for t in (f, g, a, b))
    log_a, log_b, blocks = safe_log(a), safe_log(b), row_blocks(n, m, a.device, a.shape[0])

    def block(i0, i1):
        cost = cost_rows(i0, i1).detach().to(torch.float64)
        plan = ((f[i0:i1, None] + g[None, :] - cost) / eps + log_a[i0:i1, None] + log_b[None, :]).exp()
        return cost, plan

    tiny = torch.finfo(torch.float64).tiny
    row_scale, columns = torch.ones_like(a), torch.zeros_like(b)
    for i0, i1 in blocks:
        _, plan = block(i0, i1)
        rows = plan.sum(dim=1)
        row_scale[i0:i1] = torch.where(rows > a[i0:i1], a[i0:i1] / rows.clamp_min(tiny), 1.0)
        columns += (row_scale[i0:i1, None] * plan).sum(dim=0)
    column_scale = torch.where(columns > b, b / columns.clamp_min(tiny), 1.0)
    upper, rows, columns, scale = 0.0, torch.zeros_like(a), torch.zeros_like(b), 0.0
    g_dual = torch.full_like(b, torch.inf)
    f_finite = torch.where(torch.isfinite(f), f, 0.0)
    for i0, i1 in blocks:
        cost, plan = block(i0, i1)
        plan = plan * row_scale[i0:i1, None] * column_scale[None, :]
        upper += float((plan * cost).sum())
        rows[i0:i1] = plan.sum(dim=1)
        columns += plan.sum(dim=0)
        g_dual = torch.minimum(g_dual, (cost - f_finite[i0:i1, None]).amin(dim=0))
        scale = max(scale, float(cost.abs().max()))
    row_deficit, column_deficit = (a - rows).clamp_min(0), (b - columns).clamp_min(0)
    missing, lower = float(row_deficit.sum()), float((b * g_dual).sum())
    for i0, i1 in blocks:
        cost = cost_rows(i0, i1).detach().to(torch.float64)
        if missing > 0:
            upper += float(row_deficit[i0:i1] @ (cost @ column_deficit)) / missing
        lower += float((a[i0:i1] * (cost - g_dual[None, :]).amin(dim=1)).sum())
    margin = ROUNDING_ULPS * (n + m) * torch.finfo(torch.float64).eps * scale
    return lower - margin, upper + margin
