r"""Log-domain Sinkhorn with epsilon-scaling on c-transforms that never store the cost matrix.

The solver sees the problem only through a *softmin*, an object with ``shape = (n, m)`` and

* ``rows(g, log_b, eps)``    -> f_i = -eps log sum_j exp(log b_j + (g_j - C_ij) / eps), shape (B, n);
* ``columns(f, log_a, eps)`` -> g_j = -eps log sum_i exp(log a_i + (f_i - C_ij) / eps), shape (B, m);

evaluated block of rows by block of rows in torch (:class:`otdist.solvers.online.BlockSoftmin`), by
KeOps (:mod:`otdist.solvers.keops`), or on the kept pairs of a truncated kernel
(:mod:`otdist.solvers.multiscale`).  Memory is O((n + m) d) plus what the softmin holds at once.

Each iteration is two passes: f = T_b(g), then g' = T_a(f).  The pair (f, g) has exact rows, and
its column sums are b_j exp((g_j - g'_j) / eps): the L1 marginal error of the plan the run returns,
on which it stops.  Both half-steps are over-relaxed, with the relaxation w tuned to the observed
rate (:class:`~otdist.solvers.over_relaxation.OverRelaxation`): where plain Sinkhorn contracts by
1 - delta per iteration, over-relaxation contracts by about 1 - 2 sqrt(delta).  ``symmetric=True``
(a = b, C symmetric: the self terms of the Sinkhorn divergence) runs the averaged update
g <- (g + T(g)) / 2, one pass per iteration.

epsilon-scaling goes from ``eps_start`` down to ``eps`` by the ratio ``scaling``, STAGE_ITERATIONS at
most per intermediate stage, as the tensorized solver (:mod:`otdist.solvers.sinkhorn`).  A float64
problem whose softmin can be lowered to float32 (half the time per pass on a CPU) runs its first
iterations there, until the error is below MIXED_PRECISION_TOL or stalls.
"""

from __future__ import annotations

import math

from .over_relaxation import OverRelaxation
from .sinkhorn import (CERTIFY_EVERY, FLOAT32_RANGE, INTERMEDIATE_SHARE, MIXED_PRECISION_TOL, STAGE_ITERATIONS,
                       STAGE_TOL, Potentials, epsilon_schedule, progress_bar)
from .sinkhorn_ops import safe_log


def solve(softmin, a, b, eps: float, *, scaling: float, eps_start: float, tol: float, max_iter: int,
          symmetric: bool = False, progress: bool = False, g=None) -> Potentials:
    """Potentials of OT_eps(a, b) for the cost behind ``softmin``; batched (B, n), (B, m) weights.

    ``g`` warm-starts the last epsilon (the schedule is then skipped; f = T_b(g) is recomputed).  Never warns or raises on non-convergence: ``converged``,
    ``marginal_error`` (B,) and ``n_iter`` let the caller decide.  No autograd inside.
    """
    import torch

    with torch.no_grad(), progress_bar(progress, max_iter) as bar:
        a, b = a.detach(), b.detach()
        log_a, log_b = safe_log(a), safe_log(b)
        warm = g is not None
        g = torch.zeros_like(b) if g is None else torch.where(torch.isfinite(g), g.detach().to(b.dtype), 0.0)
        schedule = [eps] if warm else epsilon_schedule(eps, eps_start, scaling)
        share, n_iter = int(INTERMEDIATE_SHARE * max_iter), 0
        lowered = _lowered(softmin, b, eps, eps_start)
        for stage_eps in schedule[:-1]:
            if n_iter >= share:
                break
            bar.set_postfix_str(f"epsilon={stage_eps:.3g}", refresh=False)
            run = _Run(lowered or softmin, log_a, log_b, g, stage_eps, symmetric, bar)
            run.advance(max(tol, STAGE_TOL), min(STAGE_ITERATIONS, share - n_iter))
            g, n_iter = run.g.to(b.dtype), n_iter + run.iterations
        bar.set_postfix_str(f"epsilon={eps:.3g}", refresh=False)
        if lowered is not None:
            run = _Run(lowered, log_a, log_b, g, eps, symmetric, bar)
            run.advance(max(tol, MIXED_PRECISION_TOL), max_iter - n_iter, stop_on_stall=True)
            n_iter += run.iterations
            g = run.g.to(b.dtype) if bool(torch.isfinite(run.g).all()) else g
        run = _Run(softmin, log_a, log_b, g, eps, symmetric, bar)
        run.advance(tol, max_iter - n_iter)
        f, g, error = run.pair
    return Potentials(f, g, eps, n_iter + run.iterations, bool((error <= tol).all()), error)


def _lowered(softmin, b, eps: float, eps_start: float):
    """The softmin in float32 for a float64 problem, when it offers one (``lowered()``) and epsilon and the
    cost scale (``eps_start``) lie in float32's range, else None."""
    import torch

    low, high = FLOAT32_RANGE
    lower = getattr(softmin, "lowered", None)
    if lower is None or b.dtype != torch.float64 or not (low <= eps and eps_start <= high):
        return None
    return lower()


class _Run:
    """Iterations at one epsilon from g; ``pair`` is the latest certified (f = T_b(g), g, column error).

    Over-relaxed (successive over-relaxation of both half-steps, w tuned to the observed rate):
    f <- f + w (T_b(g) - f), g <- g + w (T_a(f) - g).  The pair (f, g) then has exact column sums
    b_j exp((g_j - T_a(f)_j) / eps), but not exact rows: the column error it observes guides the run,
    which stops only on the error of the pair (T_b(g), g), computed (two passes) when the observed error
    is below the target or every CERTIFY_EVERY iterations.  With w = 1 the two coincide at no extra pass.
    The symmetric problem runs g <- (g + T(g)) / 2, certified alike.
    """

    def __init__(self, softmin, log_a, log_b, g, eps: float, symmetric: bool, bar):
        dtype = softmin.dtype if hasattr(softmin, "dtype") else g.dtype
        self.softmin, self.eps, self.symmetric, self.bar = softmin, eps, symmetric, bar
        self.log_a, self.log_b, self.g, self.f = log_a.to(dtype), log_b.to(dtype), g.to(dtype), None
        self.relax = OverRelaxation(1.0, tune=not symmetric)
        self.iterations, self.pair = 0, None

    def _error(self, g, target):
        import torch

        ratio = torch.where(torch.isfinite(self.log_b), ((g - target) / self.eps).exp(), 1.0)
        return (self.log_b.exp() * (ratio - 1.0).abs()).sum(dim=1)

    def step(self) -> float:
        """One iteration; returns the largest (over the batch) error it observed."""
        import torch

        eps, g, omega = self.eps, self.g, self.relax.omega
        exact = self.softmin.rows(g, self.log_b, eps)
        if self.symmetric:
            error, target = self._error(g, exact), exact
            self.pair, omega = (exact, g, error), 0.5
        else:
            f = exact if self.f is None or omega == 1.0 else self.f + omega * (exact - self.f)
            target = self.softmin.columns(f, self.log_a, eps)
            error = self._error(g, target)
            self.f = f
            self.pair = (exact, g, error) if omega == 1.0 else None
        self.g = g + omega * torch.where(torch.isfinite(target), target - g, 0.0)
        self.iterations += 1
        self.bar.update()
        worst = float(error.max())
        worst = worst if math.isfinite(worst) else math.inf
        self.relax.observe(worst)
        return worst

    def certify(self) -> float:
        """The pair (T_b(g), g) and its column error, two passes (none if the last step left it)."""
        if self.pair is None:
            f = self.softmin.rows(self.g, self.log_b, self.eps)
            error = self._error(self.g, f if self.symmetric else self.softmin.columns(f, self.log_a, self.eps))
            self.pair = (f, self.g, error)
        worst = float(self.pair[2].max())
        return worst if math.isfinite(worst) else math.inf

    def advance(self, tol: float, limit: int, stop_on_stall: bool = False) -> bool:
        """Iterate until the certified error is below ``tol`` (or the run stalls, with ``stop_on_stall``) or
        ``limit`` iterations; ``g`` is then the certified pair's.  True when below ``tol``."""
        target, done = tol, False
        while self.iterations < limit and not done:
            worst = self.step()
            if stop_on_stall and self.relax.stalled():
                break
            if worst <= target or self.iterations % CERTIFY_EVERY == 0:
                certified = self.certify()
                done = certified <= tol
                if not done and worst <= target:
                    target *= tol / certified if math.isfinite(certified) else 0.5
        self.certify()
        self.g, self.f = self.pair[1], None
        return done
