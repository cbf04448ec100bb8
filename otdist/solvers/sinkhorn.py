r"""Entropic optimal transport: log-domain Sinkhorn with epsilon-scaling, batched, in torch.

Solves  OT_eps(a, b) = min_P <P, C> + eps KL(P || a (x) b)  through its dual

.. math:: \max_{f, g} \sum_i a_i f_i + \sum_j b_j g_j
          - \varepsilon \sum_{ij} a_i b_j \big(e^{(f_i + g_j - C_{ij})/\varepsilon} - 1\big),

epsilon-scaling starts at the scale of the cost and multiplies epsilon by ``scaling`` at each
stage, warm-starting the potentials. Each stage runs cheap matrix-vector Sinkhorn iterations on
the stabilised kernel exp((f_i + g_j - C_ij)/eps), with over-relaxed updates tuned to the observed
rate, absorbing the scalings into (f, g) before they can overflow, and taking an exact log-sum-exp
step ``g <- T_a(f)``, ``f <- T_b(g)`` when a kernel row underflows.  A float64 problem runs its
early iterations on a float32 kernel.  If the warm start of the last stage converges slowly, the
last epsilon is also tried from zero potentials (no scaling) and the faster of the two goes on.

The run stops on the L1 marginal error of the plan it returns: for the pair g, f = T_b(g), whose
row marginals are exact, that is the column error sum_j |sum_i P_ij - b_j|.  At that pair the
semi-dual value ``sum_i a_i T_b(g)_i + sum_j b_j g_j`` is exact to second order in the error.
All tensors carry a leading batch dimension B.

Gradients (envelope theorem): the loop runs without autograd; the returned objective is the
semi-dual evaluated once with autograd on and g fixed, whose gradients in C, a and b are those
of OT_eps at the optimum.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

from ..exceptions import ConvergenceWarning
from .over_relaxation import OverRelaxation, relax

#: At each intermediate epsilon of the scaling schedule, iterate until the marginal error is
#: below STAGE_TOL, or at most STAGE_ITERATIONS times; the intermediate stages together use at
#: most INTERMEDIATE_SHARE of max_iter (the rest of the schedule is skipped).
STAGE_ITERATIONS = 50
STAGE_TOL = 1e-2
INTERMEDIATE_SHARE = 0.5
#: Absorb the scalings u, v into the potentials when |log u| or |log v| exceeds this.
ABSORB_AT = 30.0
#: A float64 problem iterates on a float32 kernel until the marginal error is below this (or stops
#: improving: see ``OverRelaxation.stalled``), then on a float64 kernel.
MIXED_PRECISION_TOL = 1e-5
#: ... as long as epsilon and the largest cost lie in this range (float32's spans about 1e-38 to 3e38).
FLOAT32_RANGE = (1e-30, 1e30)
#: The last stage, warm-started, that has not converged after TRIAL_ITERATIONS is raced against
#: TRIAL_ITERATIONS from zero potentials (no scaling); the run whose observed rate predicts fewer
#: remaining iterations goes on.
TRIAL_ITERATIONS = 50
#: A run whose best error is this many times lower than the other's goes on, whatever the rates
#: predict (a rate measured over few, oscillating iterations can be infinite or far off).
RACE_LEAD = 10.0
#: The error an over-relaxed iteration observes is not that of the pair it would return: the
#: returned pair's error is also computed (two matrix-vector products) every CERTIFY_EVERY iterations.
CERTIFY_EVERY = 16
#: Largest max|C| / eps the solver iterates at: (f_i + g_j - C_ij) / eps must stay finite in
#: float64 (largest about 1.8e308) with |f|, |g| up to a few max|C|.
MAX_COST_OVER_EPSILON = 1e300


@dataclass(frozen=True)
class Potentials:
    f: object  # (B, n)
    g: object  # (B, m)
    epsilon: float
    n_iter: int
    converged: bool
    marginal_error: object  # (B,): L1 marginal error of the plan of (f, g)
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
    """Geometric schedule from ``start`` down to ``eps`` (inclusive), ratio ``scaling``.

    >>> epsilon_schedule(0.05, 2.0, 0.1)  # the last ratio is smaller: 0.2 -> 0.05
    [2.0, 0.2, 0.05]
    >>> epsilon_schedule(0.05, 2.0, 0.0)  # no scaling
    [0.05]
    """
    if scaling <= 0 or start <= eps:
        return [eps]
    stages = int(math.ceil((math.log(start) - math.log(eps)) / -math.log(scaling)))
    return [start * scaling**k for k in range(stages)] + [eps]


def _fill_kernel(out, f, g, cost, eps):
    """out <- exp((f_i + g_j - C_ij) / eps), in place: one fused pass and one exp."""
    return exponent(cost, f.to(out.dtype), g.to(out.dtype), eps, out=out).exp_()


class _Problem:
    """Cost, weights and the one (B, n, m) kernel buffer all runs of a solve share.

    A float32 run keeps a float32 copy of the cost and its float32 kernel as the two halves of the
    float64 buffer (no memory added); a float64 run overwrites them.
    """

    def __init__(self, cost, a, b, symmetric: bool):
        import torch

        self.cost, self.a, self.b, self.symmetric = cost, a, b, symmetric
        self.log_a, self.log_b = safe_log(a), safe_log(b)
        self.scale = float(cost.abs().amax()) if cost.numel() else 0.0
        self.kernel = torch.empty(cost.shape, dtype=cost.dtype, device=cost.device)  # contiguous, for the halves
        self._low_cost = False  # the buffer holds the float32 copy of the cost

    def float32_allowed(self, eps: float) -> bool:
        import torch

        low, high = FLOAT32_RANGE
        return self.cost.dtype == torch.float64 and low <= eps and self.scale <= high

    def views(self, low: bool):
        """(cost, kernel buffer) of a float32 run (``low``) or a run in the cost's own dtype."""
        import torch

        if not low:
            self._low_cost = False
            return self.cost, self.kernel
        halves = self.kernel.view(-1).view(torch.float32).view(2, *self.cost.shape)
        if not self._low_cost:
            halves[0].copy_(self.cost)
            self._low_cost = True
        return halves[0], halves[1]

    def representable(self, eps: float) -> bool:
        return math.isfinite(1.0 / eps) and self.scale <= MAX_COST_OVER_EPSILON * eps


class _Run:
    """Scaling-form Sinkhorn at one epsilon from potentials (f, g).

    The plan is P = diag(a u) K diag(b v) with K_ij = exp((f_i + g_j - C_ij)/eps): each iteration
    is two matrix-vector products instead of two log-sum-exp passes.  u and v are absorbed into
    f and g (and K rebuilt) whenever |log u| or |log v| exceeds ABSORB_AT (Schmitzer's
    stabilisation); if a kernel row underflows, one exact log-domain step replaces the iteration.
    ``symmetric`` (a = b, C symmetric) uses the averaged update u <- sqrt(u / K(a u)): one product
    per iteration and no oscillation between f and g.  The error each iteration observes is the
    column error of the pair (u, v) before v's update (exact rows when w = 1); a run stops only
    on the error of the returned pair, recomputed by ``certify``.
    """

    def __init__(self, problem: _Problem, f, g, eps: float, omega: float):
        self.problem, self.f, self.g, self.eps = problem, f, g, eps
        self.relax = OverRelaxation(omega, tune=not problem.symmetric)
        self.low = problem.float32_allowed(eps)
        self.iterations, self.final = 0, None
        self._build()

    def _build(self) -> None:
        import torch

        self.cost, self.kernel = self.problem.views(self.low)
        dtype = self.kernel.dtype
        self.a, self.b = self.problem.a.to(dtype), self.problem.b.to(dtype)
        _fill_kernel(self.kernel, self.f, self.g, self.cost, self.eps)
        self.u, self.v = torch.ones_like(self.a), torch.ones_like(self.b)

    def potentials(self):
        """The potentials f + eps log u, g + eps log v, in the potentials' dtype."""
        eps = self.eps
        return self.f + eps * self.u.log().to(self.f.dtype), self.g + eps * self.v.log().to(self.g.dtype)

    def restore(self) -> None:
        """Rebuild the kernel after another run used the buffer."""
        self.f, self.g = self.potentials()
        self._build()

    def step(self) -> float:
        """One iteration; returns the largest error over the batch that it observed."""
        import torch

        K, a, b, u, v, omega = self.kernel, self.a, self.b, self.u, self.v, self.relax.omega
        if self.problem.symmetric:
            Ku = torch.matmul(K, (a * u)[:, :, None])[:, :, 0]
            error = (a * (u * Ku - 1.0).abs()).sum(dim=1)
            new_u = new_v = torch.where(a > 0, (u / Ku).sqrt(), 1.0)
        else:
            Kv = torch.matmul(K, (b * v)[:, :, None])[:, :, 0]
            new_u = torch.where(a > 0, relax(u, 1.0 / Kv, omega), 1.0)
            KTu = torch.matmul((a * new_u)[:, None, :], K)[:, 0, :]
            error = (b * (v * KTu - 1.0).abs()).sum(dim=1)
            new_v = torch.where(b > 0, relax(v, 1.0 / KTu, omega), 1.0)
        self.iterations += 1
        worst = float(error.max())
        worst = worst if math.isfinite(worst) else math.inf
        self.relax.observe(worst)
        log_u, log_v = new_u.log(), new_v.log()
        if not (bool(torch.isfinite(log_u).all()) and bool(torch.isfinite(log_v).all())):
            self._exact_step()
        elif float(log_u.abs().max()) > ABSORB_AT or float(log_v.abs().max()) > ABSORB_AT:
            self.u, self.v = new_u, new_v
            self.restore()
        else:
            self.u, self.v = new_u, new_v
        return worst

    def _exact_step(self) -> None:
        """A kernel row underflowed: g <- T_a(f), f <- T_b(g) by log-sum-exp over C, then rebuild."""
        p, eps = self.problem, self.eps
        f, _ = self.potentials()
        self.g = t_a(f, p.log_a.to(f.dtype), p.cost, eps)
        self.f = t_b(self.g, p.log_b.to(f.dtype), p.cost, eps)
        self._build()

    def to_double(self) -> None:
        if self.low:
            self.f, self.g = self.potentials()
            self.low = False
            self._build()

    def certify(self):
        """The returned pair g' = g + eps log v, f' = T_b(g') and its column error (B,), from K."""
        import torch

        self.to_double()
        eps, a, b, K = self.eps, self.a, self.b, self.kernel
        g = self.g + eps * self.v.log()
        bv = (b * self.v)[:, :, None]
        mass = torch.matmul(K, bv)[:, :, 0]
        if not bool((mass > 0).all() and torch.isfinite(mass).all()):
            f, g, error, row_cost = _semi_dual_pair(g, self.cost, a, b, eps)
            self.final = (f, g, error, None, row_cost)
            return error
        columns = bv[:, :, 0] * torch.matmul((a / mass)[:, None, :], K)[:, 0, :]
        error = (columns - b).abs().sum(dim=1)
        self.final = (self.f - eps * mass.log(), g, error, mass, None)
        return error

    def advance(self, tol: float, limit: int, certify: bool = True) -> bool:
        """Iterate until the returned pair's error is below ``tol`` (with ``certify``; otherwise the
        observed error) or the run has made ``limit`` iterations.  True when below ``tol``."""
        target = tol
        while self.iterations < limit:
            worst = self.step()
            if self.low and (worst <= max(tol, MIXED_PRECISION_TOL) or self.relax.stalled()):
                if worst <= tol and not certify:
                    return True
                self.to_double()
            elif worst <= target or (certify and not self.low and self.iterations % CERTIFY_EVERY == 0):
                if not certify:
                    return True
                certified = float(self.certify().max())
                if certified <= tol:
                    return True
                if worst <= target:
                    target *= tol / certified if math.isfinite(certified) else 0.5
        return False

    def row_cost(self):
        """sum_j P_ij C_ij / a_i of the certified pair (overwrites the kernel)."""
        import torch

        f, g, error, mass, row_cost = self.final
        if self.problem.symmetric or mass is None:
            return None if self.problem.symmetric else row_cost
        bv = (self.b * self.v)[:, :, None]
        return torch.matmul(self.kernel.mul_(self.cost), bv)[:, :, 0] / mass


def _semi_dual_pair(g, cost, a, b, eps):
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


def solve(cost, a, b, eps: float, *, scaling: float, eps_start: float, tol: float, max_iter: int,
          symmetric: bool = False) -> Potentials:
    """Log-stabilised Sinkhorn with epsilon-scaling on batched (B, n, m) costs; no autograd inside.

    ``eps_start`` is the first epsilon of the schedule (the largest cost).  ``symmetric=True``
    promises a = b and a symmetric cost (OT_eps(a, a)).  Never warns or raises on non-convergence:
    ``converged``, ``marginal_error`` (the L1 marginal error of the plan of the returned (f, g),
    whose rows are exact: f = T_b(g)) and ``n_iter <= max_iter`` let the caller decide.  A
    float64 problem runs its early iterations on a float32 kernel, half the memory traffic per
    iteration; the last iterations, the reported error and the returned potentials are float64.
    """
    import torch

    with torch.no_grad():
        problem = _Problem(cost.detach(), a.detach(), b.detach(), symmetric)
        f, g = torch.zeros_like(problem.a), torch.zeros_like(problem.b)
        if not problem.representable(eps):
            error = plan_error(problem.cost, problem.a, problem.b, f, g, eps)
            return Potentials(f, g, eps, 0, bool((error <= tol).all()), error)
        schedule = epsilon_schedule(eps, eps_start, scaling)
        n_iter, omega, share = 0, 1.0, int(INTERMEDIATE_SHARE * max_iter)
        for stage_eps in schedule[:-1]:
            if n_iter >= share:
                break
            run = _Run(problem, f, g, stage_eps, omega)
            run.advance(max(tol, STAGE_TOL), min(STAGE_ITERATIONS, share - n_iter), certify=False)
            (f, g), omega, n_iter = run.potentials(), run.relax.omega, n_iter + run.iterations
        run, spent = _last_stage(problem, f, g, eps, omega, tol, max_iter - n_iter, warm=n_iter > 0)
        f, g, error = run.final[:3]
        row_cost = run.row_cost()
    return Potentials(f, g, eps, n_iter + spent + run.iterations, bool((error <= tol).all()), error, row_cost)


def _last_stage(problem: _Problem, f, g, eps: float, omega: float, tol: float, budget: int, warm: bool):
    """The last epsilon, warm-started from (f, g) and, if that is slow, raced against a cold start.

    After TRIAL_ITERATIONS of each, the run whose observed rate predicts fewer remaining iterations
    goes on; each time its iterations double, the predictions are compared again (a warm start can
    turn sublinear, and the cold start's prediction then wins).  Returns the run that finished,
    its ``final`` pair certified, and the iterations of the other.
    """
    import torch

    budget = max(budget, 1)
    run = _Run(problem, f, g, eps, omega)
    if run.advance(tol, min(budget, TRIAL_ITERATIONS) if warm else budget):
        return run, 0
    if not warm or budget <= run.iterations:
        run.certify()
        return run, 0
    other = _Run(problem, torch.zeros_like(f), torch.zeros_like(g), eps, 1.0)
    if other.advance(tol, min(TRIAL_ITERATIONS, budget - run.iterations)):
        return other, run.iterations
    current = other  # the run whose kernel the buffer holds
    while True:
        if _ahead(other, run, tol):
            run, other = other, run
        if run is not current:
            run.restore()
            current = run
        left = budget - other.iterations
        if run.advance(tol, min(left, 2 * run.iterations)):
            return run, other.iterations
        if run.iterations >= left:
            run.certify()
            return run, other.iterations


def _ahead(first: _Run, second: _Run, tol: float) -> bool:
    """Whether ``first`` should go on rather than ``second``: its best error is RACE_LEAD times lower,
    or (neither that far ahead) its observed rate predicts fewer remaining iterations."""
    best_first, best_second = first.relax.best, second.relax.best
    if best_first * RACE_LEAD < best_second:
        return True
    if best_second * RACE_LEAD < best_first:
        return False
    return first.relax.remaining(tol) < second.relax.remaining(tol)


def warn_unconverged(max_iter: int, error, tol: float, eps: float, stacklevel: int) -> None:
    """ConvergenceWarning for a solve that stopped at ``max_iter`` above ``tol`` (for callers that warn)."""
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
