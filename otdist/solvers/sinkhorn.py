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
last epsilon is also tried from zero potentials (no scaling) and the faster of the two goes on;
the warm start never takes more than the iterations the intermediate stages left of their
STAGE_ITERATIONS each, so scaling costs at most STAGE_ITERATIONS per stage over no scaling.
Where the plan nears a permutation (a measure against itself or a near copy) every singular value of
the plan is near 1 and alternating updates crawl; a problem symmetric up to a column permutation runs
the averaged symmetric update instead (linearisation (I - P) / 2, rate <= 1/2), and a nearly symmetric
one starts its last epsilon from the symmetrised problem's solution.

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
from dataclasses import dataclass

from ._lp import PROGRESS_DELAY
from .over_relaxation import OverRelaxation, relax
from .sinkhorn_ops import (SYMMETRY_SHARE, exponent, plan_error, safe_log, semi_dual_pair, symmetric_permutation, t_a,
                           t_b)

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
#: A problem symmetric up to a column permutation within NEAR_SYMMETRY eps starts its last epsilon from
#: the symmetrised problem's solution, within L1 error about 2 NEAR_SYMMETRY = STAGE_TOL of its plan.
NEAR_SYMMETRY = STAGE_TOL / 2


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
    #: The kept pairs of a multiscale solve, which evaluate its values (None: every pair).
    truncation: object = None


def progress_bar(progress: bool, total: int):
    """A tqdm bar over ``total`` iterations (a no-op unless ``progress``), shown after PROGRESS_DELAY seconds."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="Sinkhorn", unit="it", disable=not progress, leave=False, delay=PROGRESS_DELAY)


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

    def __init__(self, cost, a, b, symmetric: bool, bar=None, perm=None):
        import torch

        self.cost, self.a, self.b, self.symmetric, self.bar = cost, a, b, symmetric, bar
        self.perm = perm  # g[:, perm] = f at the symmetric problem's optimum (None: the identity)
        self.inverse = None if perm is None else torch.argsort(perm)
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
    ``symmetric`` (a = b[:, perm], C[:, :, perm] symmetric) uses the averaged update
    u <- sqrt(u / K(a u)), v = u in column order: one product per iteration, no oscillation between f, g.  The error each iteration observes is the
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
            inverse = self.problem.inverse
            au = a * u if inverse is None else (a * u)[:, inverse]
            Ku = torch.matmul(K, au[:, :, None])[:, :, 0]
            error = (a * (u * Ku - 1.0).abs()).sum(dim=1)
            new_u = torch.where(a > 0, (u / Ku).sqrt(), 1.0)
            new_v = new_u if inverse is None else new_u[:, inverse]
        else:
            Kv = torch.matmul(K, (b * v)[:, :, None])[:, :, 0]
            new_u = torch.where(a > 0, relax(u, 1.0 / Kv, omega), 1.0)
            KTu = torch.matmul((a * new_u)[:, None, :], K)[:, 0, :]
            error = (b * (v * KTu - 1.0).abs()).sum(dim=1)
            new_v = torch.where(b > 0, relax(v, 1.0 / KTu, omega), 1.0)
        self.iterations += 1
        self.problem.bar.update()
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
        if p.symmetric:  # the averaged step f <- (f + T(f)) / 2 in the problem's own order, g[:, perm] = f
            self.f = 0.5 * (f + (self.g if p.perm is None else self.g[:, p.perm]))
            self.g = self.f if p.inverse is None else self.f[:, p.inverse]
        else:
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
            f, g, error, row_cost = semi_dual_pair(g, self.cost, a, b, eps)
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
        """sum_j P_ij C_ij / a_i of the certified pair (overwrites the kernel).

        Each row K_ij b_j v_j is divided by its sum, the row's mass, before it meets the cost: every
        entry is then at most 1.  A row of K near the top of its precision (a zero-weight row's
        potential is unconstrained by the error) times C would overflow, and so would K_ij / mass_i
        in a column of zero weight, which has no share of the mass.
        """
        f, g, error, mass, row_cost = self.final
        if mass is None:
            return row_cost
        shares = self.kernel.mul_((self.b * self.v)[:, None, :]).div_(mass[:, :, None])
        return shares.mul_(self.cost).sum(dim=2)


def solve(cost, a, b, eps: float, *, scaling: float, eps_start: float, tol: float, max_iter: int,
          symmetric: bool = False, progress: bool = False) -> Potentials:
    """Log-stabilised Sinkhorn with epsilon-scaling on batched (B, n, m) costs; no autograd inside.

    ``eps_start`` is the first epsilon of the schedule (the largest cost).  ``symmetric=True``
    promises a = b and a symmetric cost (OT_eps(a, a)); a problem found symmetric up to a permutation of
    its columns (:func:`~otdist.solvers.sinkhorn_ops.symmetric_permutation`: a measure against itself,
    a permuted copy) runs the symmetric iteration too, and one nearly so starts from the symmetrised
    problem's solution: where the plan nears a permutation the alternating iteration crawls.  Never
    warns or raises on non-convergence: ``converged``, ``marginal_error`` (the L1 marginal error of
    the plan of the returned (f, g), whose rows are exact: f = T_b(g)) and ``n_iter <= max_iter`` let
    the caller decide.  A float64 problem runs its early iterations on a float32 kernel; the last
    iterations, the reported error and the returned potentials are float64.  ``progress=True`` shows
    a progress bar over ``max_iter`` iterations once a solve has run PROGRESS_DELAY seconds.
    """
    import torch

    with torch.no_grad(), progress_bar(progress, max_iter) as bar:
        cost, a, b, perm, start = cost.detach(), a.detach(), b.detach(), None, None
        if not symmetric and math.isfinite(1.0 / eps):
            perm, asymmetry = symmetric_permutation(cost, a, b)
            symmetric = asymmetry <= SYMMETRY_SHARE * tol * eps
            if not symmetric and asymmetry <= NEAR_SYMMETRY * eps:
                start = _symmetrised_start(cost, a, perm, eps, scaling=scaling, eps_start=eps_start, tol=tol,
                                           max_iter=max_iter)
            if not symmetric or bool((perm == torch.arange(perm.numel(), device=perm.device)).all()):
                perm = None
        problem = _Problem(cost, a, b, symmetric, bar, perm)
        f, g = torch.zeros_like(problem.a), torch.zeros_like(problem.b)
        if not problem.representable(eps):
            error = plan_error(problem.cost, problem.a, problem.b, f, g, eps)
            return Potentials(f, g, eps, 0, bool((error <= tol).all()), error)
        schedule = [eps] if start else epsilon_schedule(eps, eps_start, scaling)
        (f, g, n_iter), omega, share = start or (f, g, 0), 1.0, int(INTERMEDIATE_SHARE * max_iter)
        for stage_eps in schedule[:-1]:
            if n_iter >= share:
                break
            bar.set_postfix_str(f"epsilon={stage_eps:.3g}", refresh=False)
            run = _Run(problem, f, g, stage_eps, omega)
            run.advance(max(tol, STAGE_TOL), min(STAGE_ITERATIONS, share - n_iter), certify=False)
            (f, g), omega, n_iter = run.potentials(), run.relax.omega, n_iter + run.iterations
        bar.set_postfix_str(f"epsilon={eps:.3g}", refresh=False)
        allowance = max_iter if start else STAGE_ITERATIONS * len(schedule) - n_iter
        run, spent = _last_stage(problem, f, g, eps, omega, tol, max_iter - n_iter, n_iter > 0, allowance)
        f, g, error = run.final[:3]
        row_cost = run.row_cost()
    return Potentials(f, g, eps, n_iter + spent + run.iterations, bool((error <= tol).all()), error, row_cost)


def _symmetrised_start(cost, a, perm, eps: float, **options):
    """``(f, g, iterations)``: OT_eps(a, a) for the symmetrised cost (C' + C'^T) / 2, C' = C[:, :, perm],
    solved by the symmetric iteration, g in C's column order.  A start within about 2 max|C' - C'^T| / eps
    of the plan in L1, near where the alternating iteration crawls (the plan is nearly a permutation)."""
    import torch

    permuted = cost.index_select(2, perm)
    symmetrised = 0.5 * (permuted + permuted.transpose(1, 2))
    del permuted
    pot = solve(symmetrised, a, a, eps, symmetric=True, **options)
    return pot.f, pot.g[:, torch.argsort(perm)], pot.n_iter


def _last_stage(problem: _Problem, f, g, eps: float, omega: float, tol: float, budget: int, warm: bool,
                allowance: int):
    """The last epsilon, warm-started from (f, g) and, if that is slow, raced against a cold start.

    After TRIAL_ITERATIONS of each, the run whose observed rate predicts fewer remaining iterations
    goes on; each time its iterations double, the predictions are compared again (a warm start can
    turn sublinear, and the cold start's prediction then wins).  The warm start runs at most
    ``allowance`` iterations; then the cold start goes on to the end.  So the whole solve takes at
    most STAGE_ITERATIONS per epsilon stage more than a solve without scaling: if the cold start
    finishes, the warm one cost at most ``allowance``; if the warm one does, the cold one stopped
    before its end.  Returns the run that finished, its ``final`` pair certified, and the iterations
    of the other.
    """
    import torch

    budget = max(budget, 1)
    warm_run = run = _Run(problem, f, g, eps, omega)
    if run.advance(tol, min(budget, TRIAL_ITERATIONS, allowance) if warm else budget):
        return run, 0
    if not warm or budget <= run.iterations:
        run.certify()
        return run, 0
    other = _Run(problem, torch.zeros_like(f), torch.zeros_like(g), eps, 1.0)
    if other.advance(tol, min(TRIAL_ITERATIONS, budget - run.iterations)):
        return other, run.iterations
    current = other  # the run whose kernel the buffer holds
    while True:
        if warm_run.iterations >= allowance:
            run, other = other if run is warm_run else run, warm_run
        elif _ahead(other, run, tol):
            run, other = other, run
        if run is not current:
            run.restore()
            current = run
        left = budget - other.iterations
        limit = min(left, 2 * run.iterations, allowance if run is warm_run else left)
        if run.advance(tol, limit):
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
