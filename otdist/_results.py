"""Result objects: frozen dataclasses with named fields, one type per function."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TransportResult:
    """Solution of a discrete optimal-transport problem.

    Attributes
    ----------
    value
        The distance W_p = (transport_cost) ** (1 / p), the number returned by
        :func:`otdist.wasserstein`.
    transport_cost
        The optimal transport cost <P, C> = sum_ij P_ij C_ij with C_ij = d(x_i, y_j) ** p.
    plan
        The coupling P (n x m): a dense array, or a ``scipy.sparse`` matrix for the
        1-D solver (whose plan has at most n + m - 1 non-zeros). ``None`` when not computed.
    potentials
        Dual potentials (f, g) with f_i + g_j <= C_ij and sum_i a_i f_i + sum_j b_j g_j equal to
        the dual objective; ``None`` when the method has none.
    duality_gap
        primal - dual objective: a certificate of optimality (``None`` without potentials).
    method
        The solver that produced the result.
    p
        The order of the distance.
    n_iter
        Solver iterations, where meaningful.
    converged
        Whether the solver reported success.
    standard_error
        Monte-Carlo standard error of ``value`` for randomised methods (``"sliced"``), else ``None``.
    bounds
        ``(lower, upper)``: certified bounds on the exact W_p between the given weighted point sets (roots
        taken, the lower bound clipped at 0), for the approximate methods that compute them; ``None`` for
        the exact methods (whose ``value`` is exact) and where no certificate is available.
    extra
        Method-specific diagnostics (for ``"sinkhorn"``: ``entropic_cost``, ``marginal_error``,
        ``epsilon``).
    """

    value: Any
    transport_cost: Any
    plan: Any
    potentials: tuple[Any, Any] | None
    duality_gap: float | None
    method: str
    p: float
    n_iter: int | None = None
    converged: bool = True
    standard_error: float | None = None
    bounds: tuple[float, float] | None = None
    extra: dict = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        gap = "None" if self.duality_gap is None else f"{self.duality_gap:.3g}"
        return (
            f"TransportResult(value={float(self.value):.10g}, method={self.method!r}, p={self.p:g}, "
            f"duality_gap={gap}, converged={self.converged}, n_iter={self.n_iter})"
        )
