"""Over-relaxed Sinkhorn updates, with the relaxation tuned to the error the iterations observe.

Over-relaxation of the scaling updates (Thibault, Chizat, Dossal & Papadakis, 2017; Lehmann,
von Renesse, Sambale & Uschmajew, 2021): u <- u^(1 - w) (a / K v)^w.  If plain Sinkhorn
(w = 1) shrinks the error by theta per iteration, w = 2 / (1 + sqrt(1 - theta)) is locally
optimal.  After each change of w, RATE_WINDOW iterations settle, then theta is estimated from
the rate lam observed over the next RATE_WINDOW through Young's relation
(lam + w - 1)^2 = lam w^2 theta, and w is set from it, at most MAX_OVER_RELAXATION.  Above the
optimum the error oscillates with envelope (w - 1)^k, so it need not reach a new best for many
iterations; since over-relaxation is only locally convergent, a run whose error has not
improved its best for PROGRESS_WINDOW iterations and has grown past DIVERGENCE_RATIO times it
halves w - 1 (the estimate may raise it again later).
At or above the optimum the rate is w - 1 whatever theta: a rate within OVERSHOOT (2 - w) of
w - 1 moves w away from 2, multiplying 2 - w by OVERSHOOT_BACKOFF.
"""

from __future__ import annotations

import math

RATE_WINDOW = 4
MAX_OVER_RELAXATION = 1.99
OVERSHOOT = 0.1
OVERSHOOT_BACKOFF = 1.5
PROGRESS_WINDOW = 30
DIVERGENCE_RATIO = 10.0

#: A run has stalled when the best error of its last STALL_WINDOW iterations is above STALL_RATIO
#: times the best before them (a low-precision kernel has reached its rounding floor).
STALL_WINDOW = 20
STALL_RATIO = 0.8


def relax(old, new, omega: float):
    """Over-relaxed scaling update old^(1 - omega) new^omega (omega = 1: plain Sinkhorn)."""
    return new if omega == 1.0 else old ** (1.0 - omega) * new**omega


def tuned_over_relaxation(omega: float, earlier: float, latest: float) -> float:
    """Over-relaxation for the rate of plain Sinkhorn implied by the error falling from ``earlier``
    to ``latest`` in RATE_WINDOW iterations at over-relaxation ``omega`` (unchanged if it did not fall).

    >>> round(tuned_over_relaxation(1.0, 1.0, 0.75 ** RATE_WINDOW), 3)  # plain rate 0.75
    1.333
    >>> round(tuned_over_relaxation(1.9, 1.0, 0.9 ** RATE_WINDOW), 3)  # rate w - 1: at or above the optimum
    1.85
    """
    if not 0.0 < latest < earlier:
        return omega
    rate = (latest / earlier) ** (1.0 / RATE_WINDOW)
    if rate == 0.0:
        return omega
    if omega > 1.0 and rate <= omega - 1.0 + OVERSHOOT * (2.0 - omega):
        return 2.0 - (2.0 - omega) * OVERSHOOT_BACKOFF
    theta = min((rate + omega - 1.0) ** 2 / (rate * omega**2), 1.0)
    return min(2.0 / (1.0 + math.sqrt(1.0 - theta)), MAX_OVER_RELAXATION)


class OverRelaxation:
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
        if len(history) - self.best_at >= PROGRESS_WINDOW and error > DIVERGENCE_RATIO * self.best:
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

    def remaining(self, tol: float) -> float:
        """Iterations to reach ``tol`` at the rate of the best error over the second half of the run."""
        history = self.history
        window = len(history) // 2
        if window < RATE_WINDOW:
            return math.inf
        earlier, latest = min(history[:-window]), min(history[-window:])
        if latest <= tol:
            return 0.0
        if not 0.0 < latest < earlier:
            return math.inf
        return window * math.log(latest / tol) / math.log(earlier / latest)
