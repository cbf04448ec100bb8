r"""Log-domain Sinkhorn with epsilon-scaling on c-transforms that never store the cost matrix.

The solver sees the problem only through a *softmin*, an object with ``shape = (n, m)`` and

* ``rows(g, log_b, eps)``    -> f_i = -eps log sum_j exp(log b_j + (g_j - C_ij) / eps), shape (B, n);
* ``columns(f, log_a, eps)`` -> g_j = -eps log sum_i exp(log a_i + (f_i - C_ij) / eps), shape (B, m);

evaluated block of rows by block of rows in torch (:class:`otdist.solvers.online.BlockSoftmin`), by
KeOps (:mod:`otdist.solvers.keops`), or on the kept pairs of a truncated kernel
(:mod:`otdist.solvers.multiscale`).  Memory is O((n + m) d) plus what the softmin holds at once.

Each iteration is two passes: f = T_b(g), then g' = T_a(f).  The pair (f, g) has exact rows, and
its column sums are b_j exp((g_j - g'_j) / eps), so the L1 marginal error of the plan the run would
return comes with every iteration, at no extra pass; the run stops on it.  The update is
over-relaxed, g <- g + w (g' - g), with w tuned to the observed rate
(:class:`~otdist.solvers.over_relaxation.OverRelaxation`); the error is that of the returned pair
whatever w.  ``symmetric=True`` (a = b, C symmetric: the self terms of the Sinkhorn divergence) runs
the averaged update g <- (g + T(g)) / 2, one pass per iteration.

epsilon-scaling goes from ``eps_start`` down to ``eps`` by the ratio ``scaling``, STAGE_ITERATIONS at
most per intermediate stage, as the tensorized solver (:mod:`otdist.solvers.sinkhorn`).  A float64
problem whose softmin can be lowered to float32 (half the time per pass on a CPU) runs its first
iterations there, until the error is below MIXED_PRECISION_TOL or stalls.
"""

from __future__ import annotations

import math

from .over_relaxation import OverRelaxation
from .sinkhorn import (INTERMEDIATE_SHARE, MIXED_PRECISION_TOL, STAGE_ITERATIONS, STAGE_TOL, Potentials, epsilon_schedule,
                       progress_bar)
from .sinkhorn_ops import safe_log


def solve(softmin, a, b, eps: float, *, scaling: float, eps_start: float, tol: float, max_iter: int,
          symmetric: bool = False, progress: bool = False, f=None, g=None) -> Potentials:
    """Potentials of OT_eps(a, b) for the cost behind ``softmin``; batched (B, n), (B, m) weights.

    ``f``/``g`` warm-start the last epsilon (the schedule is then skipped; only ``g`` is used, as
    f = T_b(g) is recomputed).  Never warns or raises on non-convergence: ``converged``,
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
        lowered = _lowered(softmin, b)
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
            g, n_iter = run.g.to(b.dtype), n_iter + run.iterations
        run = _Run(softmin, log_a, log_b, g, eps, symmetric, bar)
        run.advance(tol, max(max_iter - n_iter, 1))
        f, g, error = run.pair
    return Potentials(f, g, eps, n_iter + run.iterations, bool((error <= tol).all()), error)


def _lowered(softmin, b):
    """The softmin in float32 for a float64 problem, when it offers one (``lowered()``), else None."""
    import torch

    lower = getattr(softmin, "lowered", None)
    return lower() if lower is not None and b.dtype == torch.float64 else None


class _Run:
    """Iterations at one epsilon from g; ``pair`` is the latest (f = T_b(g), g, column error)."""

    def __init__(self, softmin, log_a, log_b, g, eps: float, symmetric: bool, bar):
        dtype = softmin.dtype if hasattr(softmin, "dtype") else g.dtype
        self.softmin, self.eps, self.symmetric, self.bar = softmin, eps, symmetric, bar
        self.log_a, self.log_b, self.g = log_a.to(dtype), log_b.to(dtype), g.to(dtype)
        self.relax = OverRelaxation(1.0, tune=not symmetric)
        self.iterations, self.pair = 0, None

    def step(self) -> float:
        """One iteration; returns the largest (over the batch) column error of the pair it evaluated."""
        import torch

        eps, g = self.eps, self.g
        f = self.softmin.rows(g, self.log_b, eps)
        target = f if self.symmetric else self.softmin.columns(f, self.log_a, eps)
        ratio = torch.where(torch.isfinite(self.log_b), ((g - target) / eps).exp(), 1.0)
        error = (self.log_b.exp() * (ratio - 1.0).abs()).sum(dim=1)
        self.pair = (f, g, error)
        omega = 0.5 if self.symmetric else self.relax.omega
        step = torch.where(torch.isfinite(target), target - g, 0.0)
        self.g = g + omega * step
        self.iterations += 1
        self.bar.update()
        worst = float(error.max())
        worst = worst if math.isfinite(worst) else math.inf
        self.relax.observe(worst)
        return worst

    def advance(self, tol: float, limit: int, stop_on_stall: bool = False) -> bool:
        """Iterate until the error is below ``tol`` (or stalls, with ``stop_on_stall``) or ``limit`` iterations;
        ``g`` is then the evaluated pair's (not the next update's).  True when below ``tol``."""
        done = False
        while self.iterations < limit:
            worst = self.step()
            if worst <= tol or (stop_on_stall and self.relax.stalled()):
                done = worst <= tol
                break
        if self.pair is not None:
            self.g = self.pair[1]
        return done
