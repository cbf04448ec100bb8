r"""The log-domain operations of entropic transport on dense batched (B, n, m) costs, and the values of a solution.

The c-transforms ``T_a``, ``T_b`` and the exponent (f_i + g_j - C_ij) / eps are shared by the balanced
(:mod:`otdist.solvers.sinkhorn`) and unbalanced (:mod:`otdist.solvers.unbalanced`) solvers; given their
potentials, :func:`log_plan`, :func:`entropic_cost` and :func:`transport_cost` are what the API reports.
"""

from __future__ import annotations

import math

#: A problem whose cost is symmetric (up to a column permutation) within this share of tol * epsilon
#: is solved by the symmetric iteration (see :func:`symmetric_permutation`).
SYMMETRY_SHARE = 0.01
#: Weights equal within this many ulps of the largest weight are the same measure's: normalising a
#: permuted copy sums in another order and can move each weight by an ulp or two.
WEIGHT_ULPS = 8
#: Entries per batch element compared at once by that check (two temporaries of this size).
ASYMMETRY_BLOCK = 2**20


def exponent(cost, row, col, eps, out=None):
    """(row_i + col_j - C_ij) / eps as one fused pass over C (``baddbmm`` with a rank-2 product).

    ``row`` (B, n) and ``col`` (B, m) may hold -inf (zero weights): the entries become -inf.
    ``out``: write into this preallocated (B, n, m) tensor instead of a new one.
    """
    import torch

    left = torch.stack([row, torch.ones_like(row)], dim=2)  # (B, n, 2)
    right = torch.stack([torch.ones_like(col), col], dim=1)  # (B, 2, m)
    return torch.baddbmm(cost, left, right, beta=-1.0 / eps, alpha=1.0 / eps, out=out)


def lse(t, dim):
    import torch

    if t.requires_grad:
        return torch.logsumexp(t, dim=dim)
    top = t.amax(dim=dim, keepdim=True).clamp_min(torch.finfo(t.dtype).min)  # all -inf rows stay -inf
    return t.sub_(top).exp_().sum(dim=dim).log_() + top.squeeze(dim)


def t_b(g, log_b, cost, eps):
    """c-transform of g: f_i = -eps log sum_j b_j exp((g_j - C_ij) / eps)."""
    import torch

    return -eps * lse(exponent(cost, torch.zeros_like(cost[:, :, 0]), g + eps * log_b, eps), dim=2)


def t_a(f, log_a, cost, eps):
    """c-transform of f: g_j = -eps log sum_i a_i exp((f_i - C_ij) / eps)."""
    import torch

    return -eps * lse(exponent(cost, f + eps * log_a, torch.zeros_like(cost[:, 0, :]), eps), dim=1)


def safe_log(w):
    import torch

    return torch.where(w > 0, w.clamp_min(torch.finfo(w.dtype).tiny).log(), -math.inf)


def semi_dual_pair(g, cost, a, b, eps):
    """f = T_b(g) and the column error of its plan by log-sum-exp over C (a row underflowed in K).

    The plan's rows are a_i softmax_j((g_j - C_ij)/eps + log b_j): finite whatever the rounding of
    the exponent, which at tiny eps can exceed 1 and make exp((f_i + g_j - C_ij)/eps) meaningless.
    """
    import torch

    z = exponent(cost, torch.zeros_like(cost[:, :, 0]), g + eps * safe_log(b), eps)
    top = z.amax(dim=2, keepdim=True).clamp_min(torch.finfo(z.dtype).min)
    weights = z.sub_(top).exp_()
    total = weights.sum(dim=2)
    columns = torch.matmul((a / total)[:, None, :], weights)[:, 0, :]
    batch, n, m = cost.shape
    dots = torch.bmm(weights.reshape(batch * n, 1, m), cost.reshape(batch * n, m, 1)).reshape(batch, n)
    return -eps * (total.log() + top[:, :, 0]), g, (columns - b).abs().sum(dim=1), dots / total


def plan_error(cost, a, b, f, g, eps):
    """L1 marginal error sum_i |P 1 - a|_i + sum_j |P^T 1 - b|_j of P = a b exp((f + g - C)/eps), by log-sum-exp."""
    import torch

    log_plan = (f[:, :, None] + g[:, None, :] - cost) / eps + safe_log(a)[:, :, None] + safe_log(b)[:, None, :]
    log_plan = torch.nan_to_num(log_plan, nan=-math.inf)
    rows, columns = torch.logsumexp(log_plan, dim=2).exp(), torch.logsumexp(log_plan, dim=1).exp()
    return (rows - a).abs().sum(dim=1) + (columns - b).abs().sum(dim=1)


def log_plan(pot, cost, a, b):
    """log P_ij = (f_i + g_j - C_ij) / eps + log a_i + log b_j, batched."""
    eps = pot.epsilon
    return exponent(cost, pot.f + eps * safe_log(a), pot.g + eps * safe_log(b), eps)


def entropic_cost(pot, cost, a, b):
    """OT_eps through the semi-dual at fixed g: exact value, envelope-theorem gradients.

    Without autograd, f = T_b(g) is already stored in ``pot`` and the value is a dot product.
    """
    g = pot.g.detach()
    if not any(t.requires_grad for t in (cost, a, b)):
        return (a * pot.f).sum(dim=1) + (b * g).sum(dim=1)
    f = t_b(g, safe_log(b), cost, pot.epsilon)
    return (a * f).sum(dim=1) + (b * g).sum(dim=1)


def transport_cost(pot, cost, a, b):
    """<P_eps, C> with the plan held fixed (its gradient in C is P_eps)."""
    import torch

    if pot.row_cost is not None and not any(t.requires_grad for t in (cost, a, b)):
        return (a * pot.row_cost).sum(dim=1)
    batch = cost.shape[0]
    with torch.no_grad():
        plan = log_plan(pot, cost.detach(), a.detach(), b.detach()).exp_()
    return torch.bmm(plan.reshape(batch, 1, -1), cost.reshape(batch, -1, 1)).reshape(batch)


def symmetric_permutation(cost, a, b):
    """``(pi, asymmetry)``: a column permutation with ``b[:, pi] == a`` and max |C[:, :, pi] - C[:, :, pi]^T|
    over the batch, the least of the candidates (the identity, then each row's cheapest column, or where
    rows share their cheapest column, :func:`_nearest_matching`); ``(None, inf)`` if no candidate permutes b
    into a.  O(B n m) time, O(B ASYMMETRY_BLOCK) memory.

    Where the asymmetry is 0, OT_eps(a, b) is OT_eps(a, a) for the cost C[:, :, pi] with g[:, pi] = f,
    which the averaged symmetric iteration solves.  Perturbing the cost by dC moves the plan's L1
    marginals by at most about 2 max|dC| / eps: an asymmetry up to SYMMETRY_SHARE tol eps leaves the
    error of the returned pair within SYMMETRY_SHARE of ``tol``.
    """
    import torch

    batch, n, m = cost.shape
    if n != m or n == 0:
        return None, math.inf
    candidates = [torch.arange(m, device=cost.device)]
    nearest = cost.argmin(dim=2)
    if bool((nearest == nearest[:1]).all()):
        row_counts = torch.bincount(nearest[0], minlength=m)
        if int(row_counts.max()) == 1:
            candidates.append(nearest[0])
        else:
            column_group = nearest[0, cost[0].argmin(dim=0)]
            if torch.equal(row_counts, torch.bincount(column_group, minlength=m)):
                candidates.append(_nearest_matching(nearest[0], column_group, a, b))
    found, least = None, math.inf
    for pi in candidates:
        if not same_weights(b[:, pi], a):
            continue
        asymmetry = _asymmetry(cost, pi)
        if asymmetry < least:
            found, least = pi, asymmetry
        if least == 0.0:
            break
    return found, least


def _nearest_matching(row_group, column_group, a, b):
    """The rows' cheapest columns with repeated points shared out, a permutation.

    Rows with the same cheapest column (copies of one point, all picking its first copy) form a group, and so
    do the columns whose cheapest row lies in that group (``column_group``, as many as the rows, checked by the
    caller); within a group, rows and columns are paired in order of weight (ties broken by the weights of the
    later problems of the batch, then by index).  For a permuted copy with repeated points this is the
    permutation; for other problems it is one more candidate, scored like the others.
    """
    import torch

    pi = torch.empty_like(row_group)
    pi[_group_order(row_group, a)] = _group_order(column_group, b)
    return pi


def _group_order(group, weights):
    """Indices sorted by group, then by the weights (B, n) of batch element 0, 1, ..., then by index."""
    import torch

    order = torch.arange(group.shape[0], device=group.device)
    for key in (*weights.flip(0), group):
        order = order[torch.sort(key[order], stable=True).indices]
    return order


def same_weights(u, v) -> bool:
    """Whether the weights u and v (same shape) agree within WEIGHT_ULPS ulps of their largest entry."""
    import torch

    if u.shape != v.shape:
        return False
    scale = float(torch.maximum(u.abs().amax(), v.abs().amax())) if u.numel() else 0.0
    return float((u - v).abs().amax()) <= WEIGHT_ULPS * torch.finfo(u.dtype).eps * scale if u.numel() else True


def _asymmetry(cost, pi) -> float:
    """max |C'_ik - C'_ki| with C' = C[:, :, pi], by blocks of rows of at most ASYMMETRY_BLOCK entries."""
    n = cost.shape[1]
    rows, worst = max(1, ASYMMETRY_BLOCK // n), 0.0
    for start in range(0, n, rows):
        block = cost[:, start:start + rows].index_select(2, pi)
        mirror = cost[:, :, pi[start:start + rows]].transpose(1, 2)
        worst = max(worst, float((block - mirror).abs().amax()))
    return worst
