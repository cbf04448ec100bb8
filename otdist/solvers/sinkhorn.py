r"""Entropic optimal transport: log-domain Sinkhorn with epsilon-scaling, batched, in torch.

Solves  OT_eps(a, b) = min_P <P, C> + eps KL(P || a (x) b)  through its dual

.. math:: \max_{f, g} \sum_i a_i f_i + \sum_j b_j g_j
          - \varepsilon \sum_{ij} a_i b_j \big(e^{(f_i + g_j - C_{ij})/\varepsilon} - 1\big),

epsilon-scaling starts at the scale of the cost and multiplies epsilon by ``scaling`` at each
stage, warm-starting the potentials. Each stage runs cheap matrix-vector Sinkhorn iterations on
the stabilised kernel exp((f_i + g_j - C_ij)/eps), with over-relaxed updates tuned to the observed
rate, absorbing the scalings into (f, g) before they can overflow (and falling back to an exact
log-sum-exp step ``g <- T_a(f)``, ``f <- T_b(g)`` if a kernel row underflows); the last stage runs
until the L1 marginal error is below ``tol``.  A float64 problem runs its early iterations on a
float32 kernel.  The returned pair satisfies f = T_b(g) to rounding.  All tensors carry a leading
batch dimension B.

Gradients (envelope theorem): the loop runs without autograd; the returned objective is the
semi-dual ``sum_i a_i T_b(g)_i + sum_j b_j g_j`` evaluated once with autograd on and g fixed, whose
gradients in C, a and b are those of OT_eps at the optimum.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

from ..exceptions import ConvergenceWarning

#: At each intermediate epsilon of the scaling schedule, iterate until the marginal error is
#: below STAGE_TOL, or at most STAGE_ITERATIONS times.
STAGE_ITERATIONS = 50
STAGE_TOL = 1e-2
#: Absorb the scalings u, v into the potentials when |log u| or |log v| exceeds this.
ABSORB_AT = 30.0
#: Over-relaxation of the scaling updates (Thibault, Chizat, Dossal & Papadakis, 2017; Lehmann,
#: von Renesse, Sambale & Uschmajew, 2021): u <- u^(1 - w) (a / K v)^w.  If plain Sinkhorn
#: (w = 1) shrinks the error by theta per iteration, w = 2 / (1 + sqrt(1 - theta)) is locally
#: optimal.  After each change of w, RATE_WINDOW iterations settle, then theta is estimated from
#: the rate lam observed over the next RATE_WINDOW through Young's relation
#: (lam + w - 1)^2 = lam w^2 theta, and w is set from it, at most MAX_OVER_RELAXATION.  Since
#: over-relaxation is only locally convergent, a run that has not improved its best error for
#: PROGRESS_WINDOW iterations halves w - 1 (the estimate may raise it again later).
RATE_WINDOW = 4
MAX_OVER_RELAXATION = 1.9
PROGRESS_WINDOW = 30
#: A float64 problem iterates on a float32 kernel until the marginal error is below this (or stops
#: improving: the best of the last STALL_WINDOW iterations is not below STALL_RATIO times the best
#: before them), then on a float64 kernel.
MIXED_PRECISION_TOL = 1e-5
STALL_WINDOW = 20
STALL_RATIO = 0.8
#: ... as long as epsilon and the largest cost lie in this range (float32's spans about 1e-38 to 3e38).
FLOAT32_RANGE = (1e-30, 1e30)


@dataclass(frozen=True)
class Potentials:
    f: object  # (B, n)
    g: object  # (B, m)
    epsilon: float
    n_iter: int
    converged: bool
    marginal_error: object  # (B,)
    #: sum_j P_ij C_ij / a_i for the returned pair, from the final pass (None when not computed).
    row_cost: object = None


def exponent(cost, row, col, eps, out=None):
    """(row_i + col_j - C_ij) / eps as one fused pass over C (``baddbmm`` with a rank-2 product).

    ``row`` (B, n) and ``col`` (B, m) may hold -inf (zero weights): the entries become -inf.
    ``out``: write into this preallocated (B, n, m) tensor instead of a new one.
    """
    import torch

    left = torch.stack([row, torch.ones_like(row)], dim=2)  # (B, n, 2)
    right = torch.stack([torch.ones_like(col), col], dim=1)  # (B, 2, m)
    return torch.baddbmm(cost, left, right, beta=-1.0 / eps, alpha=1.0 / eps, out=out)


def _lse(t, dim):
    import torch

    if t.requires_grad:
        return torch.logsumexp(t, dim=dim)
    top = t.amax(dim=dim, keepdim=True).clamp_min(torch.finfo(t.dtype).min)  # all -inf rows stay -inf
    return t.sub_(top).exp_().sum(dim=dim).log_() + top.squeeze(dim)


def t_b(g, log_b, cost, eps):
    """c-transform of g: f_i = -eps log sum_j b_j exp((g_j - C_ij) / eps)."""
    import torch

    return -eps * _lse(exponent(cost, torch.zeros_like(cost[:, :, 0]), g + eps * log_b, eps), dim=2)


def t_a(f, log_a, cost, eps):
    """c-transform of f: g_j = -eps log sum_i a_i exp((f_i - C_ij) / eps)."""
    import torch

    return -eps * _lse(exponent(cost, f + eps * log_a, torch.zeros_like(cost[:, 0, :]), eps), dim=1)


def safe_log(w):
    import torch

    return torch.where(w > 0, w.clamp_min(torch.finfo(w.dtype).tiny).log(), -math.inf)


def epsilon_schedule(eps: float, start: float, scaling: float) -> list[float]:
    """Geometric schedule from ``start`` down to ``eps`` (inclusive), ratio ``scaling``."""
    if scaling <= 0 or start <= eps:
        return [eps]
    stages = int(math.ceil(math.log(start / eps) / math.log(1.0 / scaling)))
    return [start * scaling**k for k in range(stages)] + [eps]


def _fill_kernel(out, f, g, cost, eps):
    """out <- exp((f_i + g_j - C_ij) / eps), in place: one fused pass and one exp."""
    return exponent(cost, f.to(out.dtype), g.to(out.dtype), eps, out=out).exp_()


def _relax(old, new, omega: float):
    """Over-relaxed scaling update old^(1 - omega) new^omega (omega = 1: plain Sinkhorn)."""
    return new if omega == 1.0 else old ** (1.0 - omega) * new**omega


def tuned_over_relaxation(omega: float, earlier: float, latest: float) -> float:
    """Over-relaxation for the rate of plain Sinkhorn implied by the error falling from ``earlier``
    to ``latest`` in RATE_WINDOW iterations at over-relaxation ``omega`` (unchanged if it did not fall).

    >>> round(tuned_over_relaxation(1.0, 1.0, 0.75 ** RATE_WINDOW), 3)  # plain rate 0.75
    1.333
    >>> round(tuned_over_relaxation(1.333, 1.0, 0.333 ** RATE_WINDOW), 3)  # the rate 1.333 gives there
    1.333
    """
    if not 0.0 < latest < earlier:
        return omega
    rate = (latest / earlier) ** (1.0 / RATE_WINDOW)
    theta = min((rate + omega - 1.0) ** 2 / (rate * omega**2), 1.0)
    return min(2.0 / (1.0 + math.sqrt(1.0 - theta)), MAX_OVER_RELAXATION)


class _OverRelaxation:
    """The over-relaxation of one run of iterations, tuned to the errors it observes."""

    def __init__(self, omega: float, tune: bool):
        self.omega, self.tune = omega, tune
        self.history: list[float] = []
        self.since = 0  # iterations at the current omega
        self.best, self.best_at = math.inf, 0

    def observe(self, error: float) -> float:
        history = self.history
        history.append(error)
        self.since += 1
        if error < self.best:
            self.best, self.best_at = error, len(history)
        if not self.tune:
            return self.omega
        if len(history) - self.best_at >= PROGRESS_WINDOW:
            self._change(1.0 + (self.omega - 1.0) / 2.0)
            self.best_at = len(history)
        elif self.since >= 2 * RATE_WINDOW:
            self._change(tuned_over_relaxation(self.omega, history[-1 - RATE_WINDOW], error))
        return self.omega

    def _change(self, omega: float) -> None:
        self.omega, self.since = omega, 0

    def stalled(self) -> bool:
        """The best error of the last STALL_WINDOW iterations is above STALL_RATIO times the best before them."""
        history = self.history
        return len(history) > STALL_WINDOW and min(history[-STALL_WINDOW:]) > STALL_RATIO * min(history[:-STALL_WINDOW])


def _scaling_iterations(cost, a, b, f, g, eps, tol, budget, K, symmetric=False, until_stalled=False, omega=1.0):
    """Sinkhorn in scaling form on the stabilised kernel K_ij = exp((f_i + g_j - C_ij)/eps).

    The plan is P = diag(a u) K diag(b v): each iteration is two matrix-vector products instead of
    two log-sum-exp passes.  u and v are absorbed into f and g (and K rebuilt) whenever
    |log u| or |log v| exceeds ABSORB_AT, so K never overflows (Schmitzer's stabilisation).
    ``K`` is a preallocated (B, n, m) buffer, of the dtype the iterations run in (``cost`` has the
    same dtype; the potentials f, g keep theirs).  Returns (f, g, u, v, iterations, marginal error,
    over-relaxation) with K left holding the kernel of (f, g): the potentials of the plan are
    f + eps log u and g + eps log v.  ``omega`` is the initial over-relaxation (tuned as it goes).

    ``symmetric=True`` (a = b, C symmetric: the OT_eps(a, a) terms of the divergence) uses the
    averaged update f <- (f + T(f)) / 2, i.e. u <- sqrt(u / K(a u)): one product per iteration and
    no oscillation between f and g.  ``until_stalled=True`` also stops when the error has stopped
    improving (a low-precision kernel has reached its rounding floor; see STALL_WINDOW).
    """
    import torch

    a, b = a.to(K.dtype), b.to(K.dtype)
    _fill_kernel(K, f, g, cost, eps)
    u, v = torch.ones_like(a), torch.ones_like(b)
    error = torch.full(a.shape[:1], math.inf, dtype=a.dtype, device=a.device)
    it, relax = 0, _OverRelaxation(omega, tune=not symmetric)
    while it < budget:
        if symmetric:
            Ku = torch.matmul(K, (a * u)[:, :, None])[:, :, 0]
            error = (a * (u * Ku - 1.0).abs()).sum(dim=1)
            u = v = torch.where(a > 0, (u / Ku).sqrt(), 1.0)
        else:
            Kv = torch.matmul(K, (b * v)[:, :, None])[:, :, 0]
            u = torch.where(a > 0, _relax(u, 1.0 / Kv, omega), 1.0)
            KTu = torch.matmul((a * u)[:, None, :], K)[:, 0, :]
            error = (b * (v * KTu - 1.0).abs()).sum(dim=1)
            v = torch.where(b > 0, _relax(v, 1.0 / KTu, omega), 1.0)
        it += 1
        worst = float(error.max())
        omega = relax.observe(worst)
        if worst <= tol or (until_stalled and relax.stalled()):
            break
        log_u, log_v = u.log(), v.log()
        if not (bool(torch.isfinite(log_u).all()) and bool(torch.isfinite(log_v).all())):
            # A kernel row underflowed: fall back to one exact log-domain step and rebuild.
            g = t_a(f, safe_log(a).to(f.dtype), cost.to(f.dtype), eps)
            f = t_b(g, safe_log(b).to(g.dtype), cost.to(g.dtype), eps)
        elif float(log_u.abs().max()) > ABSORB_AT or float(log_v.abs().max()) > ABSORB_AT:
            f, g = _absorb(f, g, u, v, eps)
        else:
            continue
        _fill_kernel(K, f, g, cost, eps)
        u, v = torch.ones_like(a), torch.ones_like(b)
    return f, g, u, v, it, error.to(f.dtype), omega


def _absorb(f, g, u, v, eps):
    """The potentials f + eps log u, g + eps log v, in the potentials' dtype."""
    return f + eps * u.log().to(f.dtype), g + eps * v.log().to(g.dtype)


def _low_precision(cost, buffer, eps: float, scale: float):
    """float32 copies of the cost and a float32 kernel, both views into the float64 ``buffer``.

    None when the problem is not float64 (it already runs in the cheaper precision), or when
    epsilon or the cost's scale lie outside FLOAT32_RANGE (1 / eps or C would overflow or underflow).
    """
    import torch

    low, high = FLOAT32_RANGE
    if cost.dtype != torch.float64 or not (low <= eps and scale <= high):
        return None
    halves = buffer.view(-1).view(torch.float32).view(2, *cost.shape)
    halves[0].copy_(cost)
    return halves[0], halves[1]


def solve(cost, a, b, eps: float, *, scaling: float, eps_start: float, tol: float, max_iter: int,
          symmetric: bool = False) -> Potentials:
    """Log-stabilised Sinkhorn with epsilon-scaling on batched (B, n, m) costs; no autograd inside.

    ``eps_start`` is the first epsilon of the schedule (the largest cost).  ``symmetric=True``
    promises a = b and a symmetric cost (OT_eps(a, a)).  A float64 problem runs
    its early iterations (the intermediate epsilons, and the last one until the marginal error is
    below MIXED_PRECISION_TOL) on a float32 kernel, half the memory traffic per iteration; the last
    iterations, the reported error and the returned potentials are float64.
    """
    import torch

    with torch.no_grad():
        cost = cost.detach()
        a, b = a.detach(), b.detach()
        log_b = safe_log(b)
        f, g = torch.zeros_like(a), torch.zeros_like(b)
        n_iter = 0
        schedule = epsilon_schedule(eps, eps_start, scaling)
        kernel = torch.empty(cost.shape, dtype=cost.dtype, device=cost.device)  # contiguous: split by _low_precision
        low = _low_precision(cost, kernel, eps, eps_start)
        u, v, run_eps, omega = torch.ones_like(a), torch.ones_like(b), eps, 1.0
        for k, stage_eps in enumerate(schedule):
            last = k == len(schedule) - 1
            budget = max(max_iter - n_iter, 1) if last else min(STAGE_ITERATIONS, max(max_iter - n_iter, 1))
            stage_tol = tol if last else max(tol, STAGE_TOL)
            runs = [] if low is None else [(*low, max(stage_tol, MIXED_PRECISION_TOL), True)]
            if low is None or last:
                runs.append((cost, kernel, stage_tol, False))
            for run_cost, run_kernel, run_tol, until_stalled in runs:
                f, g = _absorb(f, g, u, v, run_eps)
                f, g, u, v, iters, error, omega = _scaling_iterations(
                    run_cost, a, b, f, g, stage_eps, run_tol, budget, run_kernel, symmetric, until_stalled, omega)
                n_iter, budget, run_eps = n_iter + iters, max(budget - iters, 1), stage_eps
        # Exact row marginals for the returned pair: f = T_b(g), from the kernel already in memory.
        f, g, row_cost = _final_pass(kernel, f, g, v, b, log_b, cost, eps, with_row_cost=not symmetric)
        del kernel
        if symmetric:
            g = f
        converged = bool((error <= tol).all())
    if not converged:
        warn_unconverged(max_iter, error, tol, eps, stacklevel=5)
    return Potentials(f, g, eps, n_iter, converged, error, row_cost)


def _final_pass(K, f, g, v, b, log_b, cost, eps, with_row_cost: bool):
    """g' = g + eps log v, f' = T_b(g') and the plan's row costs sum_j P_ij C_ij / a_i (no autograd).

    K holds exp((f_i + g_j - C_ij)/eps) (the row scaling u is not needed: f' replaces it), so
    T_b(g')_i = f_i - eps log (K (b v))_i and the plan's rows are K_ij (b v)_j / (K (b v))_i.  ``K`` is
    overwritten.  If a row of K underflowed to zero, T_b(g') is computed by log-sum-exp over C instead.
    """
    import torch

    g = g + eps * v.log()
    bv = (b * v)[:, :, None]
    mass = torch.matmul(K, bv)[:, :, 0]
    if not bool((mass > 0).all() and torch.isfinite(mass).all()):
        f, row_cost = _final_pass_lse(g, log_b, cost, eps, with_row_cost)
        return f, g, row_cost
    f = f - eps * mass.log()
    if not with_row_cost:
        return f, g, None
    return f, g, torch.matmul(K.mul_(cost), bv)[:, :, 0] / mass


def _final_pass_lse(g, log_b, cost, eps, with_row_cost: bool):
    """f = T_b(g) and the plan's row costs sum_j P_ij C_ij / a_i in one log-sum-exp pass over C.

    With E_ij = exp((g_j + eps log b_j - C_ij) / eps - max_j), the plan's rows are a_i E_ij / sum_j E_ij.
    """
    import torch

    batch, n, m = cost.shape
    z = exponent(cost, torch.zeros_like(cost[:, :, 0]), g + eps * log_b, eps)
    top = z.amax(dim=2, keepdim=True).clamp_min(torch.finfo(z.dtype).min)
    weights = z.sub_(top).exp_()
    total = weights.sum(dim=2)
    f = -eps * (total.log() + top[:, :, 0])
    if not with_row_cost:
        return f, None
    dots = torch.bmm(weights.reshape(batch * n, 1, m), cost.reshape(batch * n, m, 1)).reshape(batch, n)
    return f, dots / total


def warn_unconverged(max_iter: int, error, tol: float, eps: float, stacklevel: int) -> None:
    warnings.warn(
        f"Sinkhorn stopped at max_iter={max_iter} with marginal error {float(error.max()):.3g} > tol={tol:g} "
        f"(epsilon={eps:.3g}); raise max_iter, increase epsilon or loosen tol.",
        ConvergenceWarning,
        stacklevel=stacklevel,
    )


def log_plan(pot: Potentials, cost, a, b):
    """log P_ij = (f_i + g_j - C_ij) / eps + log a_i + log b_j, batched."""
    eps = pot.epsilon
    return exponent(cost, pot.f + eps * safe_log(a), pot.g + eps * safe_log(b), eps)


def entropic_cost(pot: Potentials, cost, a, b):
    """OT_eps through the semi-dual at fixed g: exact value, envelope-theorem gradients.

    Without autograd, f = T_b(g) is already stored in ``pot`` and the value is a dot product.
    """
    g = pot.g.detach()
    if not any(t.requires_grad for t in (cost, a, b)):
        return (a * pot.f).sum(dim=1) + (b * g).sum(dim=1)
    f = t_b(g, safe_log(b), cost, pot.epsilon)
    return (a * f).sum(dim=1) + (b * g).sum(dim=1)


def transport_cost(pot: Potentials, cost, a, b):
    """<P_eps, C> with the plan held fixed (its gradient in C is P_eps)."""
    import torch

    if pot.row_cost is not None and not any(t.requires_grad for t in (cost, a, b)):
        return (a * pot.row_cost).sum(dim=1)
    batch = cost.shape[0]
    with torch.no_grad():
        plan = log_plan(pot, cost.detach(), a.detach(), b.detach()).exp_()
    return torch.bmm(plan.reshape(batch, 1, -1), cost.reshape(batch, -1, 1)).reshape(batch)
