r"""The c-transforms of an entropic problem as KeOps reductions (``backend="keops"``).

:class:`KeOpsSoftmin` is the softmin of :mod:`otdist.solvers.log_sinkhorn` for point clouds and a
named ground metric: each c-transform

.. math:: f_i = -\varepsilon \log \sum_j \exp\big(\log b_j + (g_j - C_{ij}) / \varepsilon\big),
          \qquad C_{ij} = d(x_i, y_j)^p,

is one KeOps ``LogSumExp`` reduction (pykeops, ``pip install otdist[keops]``): the cost is
recomputed from the points inside the compiled kernel, never stored, in the input's precision
(float32 or float64).  :meth:`KeOpsSoftmin.plan_statistics` gives the transport cost <P, C> and
the column sums of the plan in one more reduction, so that the values of a large problem need
no torch pass over the n x m entries.

Each distinct formula is compiled once by KeOps (g++, ~10-40 s) into its cache (``~/.cache/keops*``)
and reused by later processes.  A formula depends on the cost expression, the dimension d and the
dtype, not on epsilon, p, the sizes or the batch: epsilon and the powers are parameters of the
reduction.  Rows and columns share one formula (the cost is symmetric in its two points), so a
problem compiles at most two formulas: the softmin and the plan's statistics.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import math

from ..exceptions import InputError, SolverError

#: The cost expressions, over KeOps variables X (rows), Y (columns) and parameters Q, R: the
#: distance of each named metric, then raised to Q where p (and for minkowski, its order R)
#: needs a power.
_DISTANCES = {
    "euclidean": "Norm2(X - Y)",
    "cityblock": "Sum(Abs(X - Y))",
    "chebyshev": "Max(Abs(X - Y))",
    "minkowski": "Powf(Sum(Powf(Abs(X - Y), R)), Q)",
}
_SQUARED_DISTANCE = "SqDist(X, Y)"
#: Minkowski orders with their own, cheaper expression (1: cityblock, 2: euclidean).
_MINKOWSKI_NAMED = {1.0: "cityblock", 2.0: "euclidean"}
#: KeOps's max-shifted sum turns (-inf) - (-inf) into NaN when a reduction starts on a zero
#: weight, so zero weights get this share of the dtype's lowest value instead: exp of it,
#: shifted by any attained exponent, is exactly 0.
_ABSENT_SHARE = 0.25


def _pykeops():
    """pykeops, imported with its CUDA notice (printed on import on machines without CUDA) kept off stdout."""
    with contextlib.redirect_stdout(io.StringIO()):
        return importlib.import_module("pykeops.torch")


def keops_available() -> bool:
    """True when pykeops is installed and imports (it compiles formulas with the system's C++ compiler)."""
    if importlib.util.find_spec("pykeops") is None:
        return False
    try:
        _pykeops()
    except (ImportError, OSError):
        return False
    return True


def check_supported(p: float, metric, minkowski_p: float | None) -> None:
    """Raise :class:`~otdist.exceptions.InputError` unless KeOps can express C = d(x, y) ** p.

    The named metrics of :mod:`otdist.cost` are; a callable metric is not.
    """
    from .. import cost

    if not keops_available():
        raise InputError('backend="keops" needs pykeops; it is not installed (or does not import). '
                         'Install it (pip install otdist[keops]) or use backend="online".')
    if callable(metric) or not isinstance(metric, str):
        raise InputError(
            f'backend="keops" supports the named ground metrics {", ".join(cost.METRICS)} (KeOps builds the cost '
            f'from its formula); got metric={metric!r}. Use backend="online" for a callable metric.')
    cost.check_metric_order(metric, p)
    # The metric's own checks (name, minkowski_p), on a single pair of points.
    cost.pairwise_distance([[0.0]], [[0.0]], metric, minkowski_p=minkowski_p)


def cost_formula(p: float, metric: str, minkowski_p: float | None) -> tuple[str, dict[str, float]]:
    """The KeOps expression of C = d(X, Y) ** p and the values of its parameters (Q, R)."""
    if metric == "minkowski" and float(minkowski_p) in _MINKOWSKI_NAMED:
        metric, minkowski_p = _MINKOWSKI_NAMED[float(minkowski_p)], None
    if metric == "sqeuclidean" or (metric == "euclidean" and p == 2):
        return _SQUARED_DISTANCE, {}
    if metric == "minkowski":
        order = float(minkowski_p)
        return _DISTANCES[metric], {"R": order, "Q": p / order}
    if metric == "euclidean" and p != 1:
        return f"Powf({_SQUARED_DISTANCE}, Q)", {"Q": p / 2}
    if p == 1:
        return _DISTANCES[metric], {}
    return f"Powf({_DISTANCES[metric]}, Q)", {"Q": p}


class KeOpsSoftmin:
    """The c-transforms of C_ij = d(x_i, y_j) ** p between batched point clouds, by KeOps.

    Parameters
    ----------
    x, y
        torch points (B, n, d) and (B, m, d), float32 or float64 (the precision of every result).
    p
        Order: C = d ** p.
    metric
        A named ground metric of :mod:`otdist.cost` (``"euclidean"``, ``"sqeuclidean"`` with p = 1,
        ``"cityblock"``, ``"chebyshev"``, ``"minkowski"`` with ``minkowski_p``).
    minkowski_p
        The order of the minkowski norm.

    Notes
    -----
    The points are detached: the solver runs without autograd (:mod:`otdist.solvers.log_sinkhorn`).
    A zero weight (log weight -inf) contributes nothing to a sum, as in the dense solver.
    There is no ``lowered()`` float32 copy for float64 points: KeOps's CPU reductions were measured
    to take the same time per entry in both precisions (benchmarks/RESULTS.md, "Online Sinkhorn"),
    so lowering would only lose precision.
    """

    def __init__(self, x, y, p: float, metric, minkowski_p: float | None = None):
        check_supported(p, metric, minkowski_p)
        self.x, self.y = x.detach().contiguous(), y.detach().contiguous()
        self.p, self.metric, self.minkowski_p = p, metric, minkowski_p
        self.shape = (x.shape[1], y.shape[1])
        self.dtype = x.dtype
        self._cost, self._params = cost_formula(p, metric, minkowski_p)
        self._reductions: dict[str, object] = {}

    def _reduction(self, kind: str):
        """The softmin (``"softmin"``) or plan-statistics (``"plan"``) Genred, built on first use."""
        if kind not in self._reductions:
            genred = _pykeops().Genred
            dim = self.x.shape[-1]
            aliases = [f"X = Vi({dim})", f"Y = Vj({dim})", "H = Vj(1)", "E = Pm(1)"]
            aliases += [f"{name} = Pm(1)" for name in sorted(self._params)]
            exponent = f"H - E * {self._cost}"
            weight = f"Concat({self._cost}, IntCst(1))" if kind == "plan" else None
            self._reductions[kind] = genred(exponent, aliases, reduction_op="LogSumExp", axis=1, formula2=weight)
        return self._reductions[kind]

    def _logsumexp(self, kind: str, outer, inner, shift, eps: float):
        """log sum_j exp(shift_j - C(outer_i, inner_j) / eps) [* (C_ij, 1) for ``"plan"``], (B, len(outer), k)."""
        import torch

        absent = _ABSENT_SHARE * torch.finfo(self.dtype).min
        shift = torch.where(shift == -math.inf, absent, shift).contiguous()[..., None]
        params = [torch.tensor([value], dtype=self.dtype, device=outer.device)
                  for value in (1.0 / eps, *(self._params[name] for name in sorted(self._params)))]
        try:
            return self._reduction(kind)(outer, inner, shift, *params)
        except Exception as exc:  # KeOps raises many types (compiler missing, compilation, memory)
            raise SolverError(
                f'backend="keops" needs KeOps to compile and run its reductions; it failed with {type(exc).__name__}: '
                f'{exc}. Use backend="online", or check the pykeops installation (a C++ compiler is required).'
            ) from exc

    def rows(self, g, log_b, eps: float):
        """f_i = -eps log sum_j exp(log_b_j + (g_j - C_ij) / eps), shape (B, n)."""
        return -eps * self._logsumexp("softmin", self.x, self.y, log_b + g / eps, eps)[..., 0]

    def columns(self, f, log_a, eps: float):
        """g_j = -eps log sum_i exp(log_a_i + (f_i - C_ij) / eps), shape (B, m)."""
        return -eps * self._logsumexp("softmin", self.y, self.x, log_a + f / eps, eps)[..., 0]

    def plan_statistics(self, f, g, log_a, log_b, eps: float):
        """(<P, C> (B,), column sums of P (B, m)) for P_ij = exp(log_a_i + log_b_j + (f_i + g_j - C_ij) / eps).

        One reduction over i per column j gives log sum_i exp(log_a_i + (f_i - C_ij) / eps) * (C_ij, 1),
        max-shifted inside KeOps; adding log_b_j + g_j / eps before the exponential keeps every
        intermediate finite.
        """
        import torch

        logs = self._logsumexp("plan", self.y, self.x, log_a + f / eps, eps)
        column_log = log_b + g / eps
        present = log_b > -math.inf
        cost = torch.where(present[..., None], (column_log[..., None] + logs).exp(), 0.0)
        return cost[..., 0].sum(dim=1), cost[..., 1]
