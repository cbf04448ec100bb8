r"""Unbalanced entropic optimal transport: log-domain Sinkhorn with KL-relaxed marginals, batched, in torch.

Solves, for masses a, b (not normalised) and lam = reach ** p,

.. math:: \mathrm{UOT}_\varepsilon(a, b) = \min_{P \ge 0} \langle P, C\rangle
          + \varepsilon\,\mathrm{KL}(P \,\|\, a \otimes b)
          + \lambda\,\mathrm{KL}(P\mathbf{1} \,\|\, a) + \lambda\,\mathrm{KL}(P^\top\mathbf{1} \,\|\, b),

with the generalized ``KL(p || q) = sum p log(p / q) - p + q``, through its dual

.. math:: \max_{f, g}\; -\lambda \langle a, e^{-f/\lambda} - 1\rangle - \lambda \langle b, e^{-g/\lambda} - 1\rangle
          - \varepsilon \sum_{ij} a_i b_j \big(e^{(f_i + g_j - C_{ij})/\varepsilon} - 1\big).

Each iteration maximises the dual in f, then in g: ``f = tau T_b(g)``, ``g = tau T_a(f)`` with the
c-transforms of the balanced solver and ``tau = lam / (lam + eps)`` (Chizat, Peyré, Schmitzer &
Vialard, 2018), then, in closed form, along the directions (1, 1) (the total mass) and (1, -1).
The entropic term does not see the second: only the penalties, of curvature 1 / lam, fix it, and
plain Sinkhorn moves along it by a factor about tau ** 2 per iteration, about lam / eps iterations
when lam >> eps; the exact step is the translation-invariant Sinkhorn of Séjourné, Vialard & Peyré
(2022).  Every step maximises the concave dual along some directions, so the dual never decreases.
The plan is ``P_ij = a_i b_j exp((f_i + g_j - C_ij) / eps)``, as in the balanced case.

Convergence: there is no marginal constraint to measure, so a run stops when one iteration changes
the potentials by at most ``tol * eps`` (sup norm): every entry of the plan then changes by a factor
within exp(+-2 tol).  Epsilon-scaling works as in :mod:`otdist.solvers.sinkhorn`.
"""

from __future__ import annotations

import math

from .sinkhorn import (INTERMEDIATE_SHARE, MAX_COST_OVER_EPSILON, STAGE_ITERATIONS, STAGE_TOL, Potentials,
                       epsilon_schedule, progress_bar)
from .sinkhorn_ops import exponent, safe_log, t_a, t_b


def solve(cost, a, b, eps: float, lam: float, *, scaling: float, eps_start: float, tol: float, max_iter: int,
          progress: bool = False) -> Potentials:
    """Potentials (f, g) of the unbalanced problem on batched (B, n, m) costs; no autograd inside.

    ``marginal_error`` of the result is the last iteration's largest change of the potentials over
    epsilon (B,); ``converged`` when it is at most ``tol``.  Never warns or raises on non-convergence.
    """
    import torch

    with torch.no_grad(), progress_bar(progress, max_iter) as bar:
        cost, a, b = cost.detach(), a.detach(), b.detach()
        log_a, log_b = safe_log(a), safe_log(b)
        f, g = torch.zeros_like(a), torch.zeros_like(b)
        scale = float(cost.abs().amax()) if cost.numel() else 0.0
        if not (math.isfinite(1.0 / eps) and scale <= MAX_COST_OVER_EPSILON * eps):
            change = torch.full_like(a[:, 0], math.inf)
            return Potentials(f, g, eps, 0, False, change)
        schedule = epsilon_schedule(eps, eps_start, scaling)
        n_iter, share = 0, int(INTERMEDIATE_SHARE * max_iter)
        for stage_eps in schedule[:-1]:
            if n_iter >= share:
                break
            bar.set_postfix_str(f"epsilon={stage_eps:.3g}", refresh=False)
            f, g, spent, _ = _iterate(cost, log_a, log_b, a, b, f, g, stage_eps, lam, max(tol, STAGE_TOL),
                                      min(STAGE_ITERATIONS, share - n_iter), bar)
            n_iter += spent
        bar.set_postfix_str(f"epsilon={eps:.3g}", refresh=False)
        f, g, spent, change = _iterate(cost, log_a, log_b, a, b, f, g, eps, lam, tol, max(max_iter - n_iter, 1), bar)
    return Potentials(f, g, eps, n_iter + spent, bool((change <= tol).all()), change)


def _iterate(cost, log_a, log_b, a, b, f, g, eps: float, lam: float, tol: float, limit: int, bar):
    """Block-coordinate ascent at one epsilon until an iteration changes (f, g) by at most tol * eps."""
    tau = lam / (lam + eps)
    change = None
    for it in range(1, limit + 1):
        f_new = tau * t_b(g, log_b, cost, eps)
        exact = t_a(f_new, log_a, cost, eps)
        g_new = tau * exact
        shift = _mass_step(a, b, f_new, g_new, exact, eps, lam)
        f_new, g_new = f_new + shift[:, None], g_new + shift[:, None]
        balance = _translation_step(a, b, f_new, g_new, lam)
        f_new, g_new = f_new + balance[:, None], g_new - balance[:, None]
        change = _largest_change(f, f_new, a, eps).maximum(_largest_change(g, g_new, b, eps))
        f, g = f_new, g_new
        bar.update()
        if bool((change <= tol).all()):
            return f, g, it, change
    return f, g, limit, change


def _mass_step(a, b, f, g, t_a_f, eps: float, lam: float):
    """The s (B,) maximising the dual at (f + s, g + s).

    With A = <a, exp(-f/lam)> + <b, exp(-g/lam)> and M = sum_ij P_ij = sum_j b_j exp((g_j - T_a(f)_j)/eps),
    the optimality condition A exp(-s/lam) = 2 M exp(2 s/eps) gives s = (log A - log 2M) / (1/lam + 2/eps).
    """
    import torch

    log_penalty = torch.logaddexp(torch.logsumexp(safe_log(a) - f / lam, dim=1),
                                  torch.logsumexp(safe_log(b) - g / lam, dim=1))
    log_mass = torch.logsumexp(safe_log(b) + (g - t_a_f) / eps, dim=1)
    shift = (log_penalty - math.log(2.0) - log_mass) / (1.0 / lam + 2.0 / eps)
    return torch.where(torch.isfinite(shift), shift, 0.0)


def _translation_step(a, b, f, g, lam: float):
    """The t (B,) maximising the dual at (f + t, g - t), where the entropic term does not change:
    <a, exp(-(f + t)/lam)> = <b, exp(-(g - t)/lam)> gives t = (lam / 2) log(<a, e^(-f/lam)> / <b, e^(-g/lam)>)."""
    import torch

    shift = 0.5 * lam * (torch.logsumexp(safe_log(a) - f / lam, dim=1) - torch.logsumexp(safe_log(b) - g / lam, dim=1))
    return torch.where(torch.isfinite(shift), shift, 0.0)


def _largest_change(old, new, weights, eps: float):
    """max_i |new_i - old_i| / eps over the points of positive weight (B,)."""
    import torch

    return torch.where(weights > 0, (new - old).abs(), 0.0).amax(dim=1) / eps


def objective(pot: Potentials, cost, a, b, lam: float):
    """UOT_eps from the dual at the returned (f, g), held fixed: its gradients in C, a and b are those of
    the optimum's (envelope theorem), and its value equals the primal's at convergence."""
    import torch

    f, g, eps = pot.f.detach(), pot.g.detach(), pot.epsilon
    log_plan = exponent(cost, f + eps * safe_log(a), g + eps * safe_log(b), eps)
    mass = torch.logsumexp(log_plan.flatten(1), dim=1).exp()
    penalty = (a * torch.expm1(-f / lam)).sum(dim=1) + (b * torch.expm1(-g / lam)).sum(dim=1)
    return -lam * penalty - eps * (mass - a.sum(dim=1) * b.sum(dim=1))


def transport_cost(pot: Potentials, cost, a, b):
    """<P, C> of the returned plan, without gradient (the plan is not stationary in the potentials)."""
    import torch

    with torch.no_grad():
        eps = pot.epsilon
        plan = exponent(cost.detach(), pot.f + eps * safe_log(a.detach()), pot.g + eps * safe_log(b.detach()),
                        eps).exp_()
        return (plan * cost.detach()).sum(dim=(1, 2))
