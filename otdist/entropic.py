r"""Entropic optimal transport: ``sinkhorn``, ``sinkhorn_divergence`` and ``method="sinkhorn"``.

Conventions (see the Sinkhorn page of the documentation for a table against POT and GeomLoss):

* cost ``C_ij = d(x_i, y_j) ** p`` -- no factor 1/2 (GeomLoss uses ``|x - y|^2 / 2`` for p = 2);
* ``epsilon`` is absolute, in the units of the cost (GeomLoss's ``blur`` is ``epsilon ** (1/p)``);
  with ``relative=True`` it is a fraction of the largest cost ``max C``;
* ``value`` is ``<P_eps, C> ** (1/p)`` and ``transport_cost`` is ``<P_eps, C>`` (POT's ``sinkhorn2``),
  which tend to the exact values as epsilon -> 0; ``entropic_cost`` is
  ``OT_eps = <P_eps, C> + eps KL(P_eps || a (x) b)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


from . import _validation as V
from . import api
from ._backend import scalar_out, torch_reference
from ._results import TransportResult
from .cost import DEFAULT_MAX_SIZE, Metric, ground_cost

#: Default epsilon when none is given: this fraction of the largest cost.
DEFAULT_RELATIVE_EPSILON = 0.01
#: Default stopping tolerance on the L1 marginal error, per floating-point precision.
DEFAULT_TOL = {"float64": 1e-8, "float32": 1e-4}
DEFAULT_MAX_ITER = 10_000
DEFAULT_SCALING = 0.5
GUARD_ALTERNATIVES = 'method="sliced", or subsample the points'


@dataclass(frozen=True)
class SinkhornResult:
    """Solution of an entropic optimal-transport problem.

    Attributes
    ----------
    value
        ``transport_cost ** (1/p)``: the Sinkhorn approximation of W_p.
    transport_cost
        ``<P_eps, C>``, the cost of the entropic plan (POT's ``sinkhorn2``).
    entropic_cost
        ``OT_eps = <P_eps, C> + eps KL(P_eps || a (x) b)``.
    potentials
        Dual potentials (f, g), shapes (n,) and (m,) (or (B, n), (B, m) for batches).
    epsilon
        The absolute regularisation used.
    n_iter, converged, marginal_error
        Iterations (all epsilon stages), whether the L1 marginal error reached ``tol``, and that error.
    """

    value: Any
    transport_cost: Any
    entropic_cost: Any
    potentials: tuple[Any, Any]
    epsilon: float
    p: float
    n_iter: int
    converged: bool
    marginal_error: Any
    _state: tuple = field(repr=False, compare=False, default=())

    def plan(self):
        """The entropic coupling P_eps, computed on demand (n x m, or B x n x m)."""
        from .solvers import sinkhorn as core

        pot, cost, a, b, like, batched = self._state
        plan = core.log_plan(pot, cost.detach(), a.detach(), b.detach()).exp()
        plan = plan if batched else plan[0]
        return plan if like is not None else plan.cpu().numpy()


@dataclass(frozen=True)
class _Inputs:
    x: Any  # (B, n, d) torch
    y: Any
    a: Any  # (B, n)
    b: Any
    like: Any  # user's tensor (output type) or None for NumPy
    batched: bool


def _inputs(x, y, a, b, cost=None) -> _Inputs:
    import torch

    like = torch_reference(x, y, a, b, cost)
    x = V.as_point_batch(x, "x")
    y = V.as_point_batch(y, "y")
    V.check_same_dim(x, y, ("x", "y"))
    ref = like if like is not None else torch.zeros((), dtype=torch.float64)
    x, y = (torch.as_tensor(t, dtype=ref.dtype, device=ref.device) for t in (x, y))
    a = V.as_weight_batch(a, tuple(x.shape[:-1]), "a", "x", ref)
    b = V.as_weight_batch(b, tuple(y.shape[:-1]), "b", "y", ref)
    batched = x.ndim == 3
    if not batched:
        x, y, a, b = x[None], y[None], a[None], b[None]
    return _Inputs(x, y, a, b, like, batched)


def _check_options(p, epsilon, relative, scaling, tol, max_iter, max_size, dtype_name):
    p = V.check_order(p)
    if epsilon is None:
        epsilon, relative = DEFAULT_RELATIVE_EPSILON, True
    epsilon = V.check_positive(epsilon, "epsilon")
    scaling = V.check_positive(scaling, "scaling", allow_zero=True)
    if scaling >= 1:
        raise ValueError(f"scaling must be in [0, 1) (the ratio between successive epsilons); got {scaling}. Use 0 to disable epsilon-scaling.")
    tol = DEFAULT_TOL.get(dtype_name, 1e-8) if tol is None else V.check_positive(tol, "tol")
    max_iter = V.check_positive(max_iter, "max_iter", integer=True)
    max_size = V.check_positive(max_size, "max_size", integer=True)
    return p, epsilon, bool(relative), scaling, tol, max_iter, max_size


def _prepare(x, y, a, b, *options):
    """Validated inputs, and the options checked against their floating-point precision."""
    inputs = _inputs(x, y, a, b)
    return inputs, _check_options(*options, str(inputs.x.dtype).replace("torch.", ""))


def _solve(inputs: _Inputs, p, metric, minkowski_p, epsilon, relative, scaling, tol, max_iter, max_size, cost=None,
           symmetric=False):
    from .solvers import sinkhorn as core

    x, y = inputs.x, inputs.y
    batch, n, m = x.shape[0], x.shape[1], y.shape[1]
    V.check_size(batch * n, m, max_size, "sinkhorn", GUARD_ALTERNATIVES)
    if cost is None:
        cost = ground_cost(x, y, p, metric, minkowski_p=minkowski_p)
    else:
        cost = cost if cost.ndim == 3 else cost[None]
    scale = float(cost.detach().max())
    eps = epsilon * scale if relative else epsilon
    if eps <= 0:
        raise ValueError(f"epsilon must be positive; got {epsilon} relative to a zero cost scale (all points coincide).")
    kwargs = dict(scaling=scaling, eps_start=max(scale, eps), tol=tol, max_iter=max_iter)
    return core.solve(cost, inputs.a, inputs.b, eps, symmetric=symmetric, **kwargs), cost


def _out(t, inputs: _Inputs):
    t = t if inputs.batched else t[0]
    if inputs.like is not None:
        return t
    t = t.detach().cpu().numpy()
    return t if t.ndim else float(t)


def sinkhorn(
    x,
    y,
    a=None,
    b=None,
    *,
    epsilon: float | None = None,
    p: float = 1,
    relative: bool = False,
    metric: Metric = "euclidean",
    minkowski_p: float | None = None,
    scaling: float = DEFAULT_SCALING,
    tol: float | None = None,
    max_iter: int = DEFAULT_MAX_ITER,
    max_size: int = DEFAULT_MAX_SIZE,
) -> SinkhornResult:
    r"""Entropic optimal transport between weighted point clouds (log-domain Sinkhorn).

    Parameters
    ----------
    x, y
        Points ``(n, d)`` and ``(m, d)``, or batches ``(B, n, d)`` and ``(B, m, d)``; NumPy or torch.
    a, b
        Weights ``(n,)``/``(m,)`` or ``(B, n)``/``(B, m)``; uniform when omitted.
    epsilon
        Entropic regularisation, absolute in the units of the cost C = d ** p; ``relative=True``
        makes it a fraction of ``max C``. Default: 1% of ``max C``.
    p
        Order: C_ij = d(x_i, y_j) ** p.
    relative
        Interpret ``epsilon`` relative to the largest cost.
    metric, minkowski_p
        Ground metric, as in :func:`otdist.transport`.
    scaling
        epsilon-scaling ratio in [0, 1): epsilon goes from ``max C`` down to ``epsilon``,
        multiplied by ``scaling`` at each stage. 0 disables the annealing.
    tol
        Stop when the L1 marginal error is below ``tol`` (default 1e-8 in float64, 1e-4 in float32).
    max_iter
        Iteration cap; reaching it gives a :class:`otdist.ConvergenceWarning` with the residual.
    max_size
        Memory guard on B * n * m.

    Returns
    -------
    SinkhornResult
        ``value``, ``transport_cost``, ``entropic_cost``, ``potentials``, ``plan()``, ...

    Examples
    --------
    >>> import numpy as np, otdist
    >>> x = np.array([[0.0], [1.0]])
    >>> res = otdist.sinkhorn(x, x + 3.0, epsilon=1e-3)
    >>> round(res.value, 6)
    3.0
    """
    inputs, (p, epsilon, relative, scaling, tol, max_iter, max_size) = _prepare(
        x, y, a, b, p, epsilon, relative, scaling, tol, max_iter, max_size
    )
    from .solvers import sinkhorn as core

    pot, cost = _solve(inputs, p, metric, minkowski_p, epsilon, relative, scaling, tol, max_iter, max_size)
    transport_cost = core.transport_cost(pot, cost, inputs.a, inputs.b)
    entropic = core.entropic_cost(pot, cost, inputs.a, inputs.b)
    value = transport_cost if p == 1 else transport_cost.clamp_min(0) ** (1.0 / p)
    return SinkhornResult(
        value=_out(value, inputs),
        transport_cost=_out(transport_cost, inputs),
        entropic_cost=_out(entropic, inputs),
        potentials=(_out(pot.f, inputs), _out(pot.g, inputs)),
        epsilon=pot.epsilon,
        p=p,
        n_iter=pot.n_iter,
        converged=pot.converged,
        marginal_error=_out(pot.marginal_error, inputs),
        _state=(pot, cost, inputs.a, inputs.b, inputs.like, inputs.batched),
    )


def sinkhorn_divergence(
    x,
    y,
    a=None,
    b=None,
    *,
    epsilon: float | None = None,
    p: float = 1,
    relative: bool = False,
    metric: Metric = "euclidean",
    minkowski_p: float | None = None,
    scaling: float = DEFAULT_SCALING,
    tol: float | None = None,
    max_iter: int = DEFAULT_MAX_ITER,
    max_size: int = DEFAULT_MAX_SIZE,
):
    r"""Debiased Sinkhorn divergence S_eps = OT_eps(a, b) - ½ OT_eps(a, a) - ½ OT_eps(b, b).

    Non-negative, zero if and only if the two measures are equal, and differentiable in the points
    and weights (torch input). Arguments as in :func:`sinkhorn`; a relative ``epsilon`` is taken
    relative to the largest cost between x and y.

    References
    ----------
    Feydy, Séjourné, Vialard, Amari, Trouvé, Peyré, *Interpolating between Optimal Transport and
    MMD using Sinkhorn Divergences*, AISTATS 2019.

    Examples
    --------
    >>> import numpy as np, otdist
    >>> x = np.random.default_rng(0).normal(size=(50, 2))
    >>> otdist.sinkhorn_divergence(x, x, epsilon=0.1) < 1e-12
    True
    """
    from .solvers import sinkhorn as core

    inputs, (p, epsilon, relative, scaling, tol, max_iter, max_size) = _prepare(
        x, y, a, b, p, epsilon, relative, scaling, tol, max_iter, max_size
    )
    cost_xy = ground_cost(inputs.x, inputs.y, p, metric, minkowski_p=minkowski_p)
    if relative:  # one absolute epsilon for the three problems
        epsilon, relative = epsilon * float(cost_xy.detach().max()), False
    args = (p, metric, minkowski_p, epsilon, relative, scaling, tol, max_iter, max_size)
    # Identical inputs: the symmetric solver for OT(a, b) too, so that S_eps is exactly 0.
    same_measure = inputs.x.shape == inputs.y.shape and bool((inputs.x == inputs.y).all()) and bool((inputs.a == inputs.b).all())
    pot_xy, _ = _solve(inputs, *args, cost=cost_xy, symmetric=same_measure)
    ot_xy = core.entropic_cost(pot_xy, cost_xy, inputs.a, inputs.b)
    halves = []
    for pts, w in ((inputs.x, inputs.a), (inputs.y, inputs.b)):
        same = _Inputs(pts, pts, w, w, inputs.like, True)
        pot, cost = _solve(same, *args, symmetric=True)
        halves.append(core.entropic_cost(pot, cost, w, w))
    return _out(ot_xy - 0.5 * (halves[0] + halves[1]), inputs)


def _sinkhorn_method(problem: api.Problem, need_plan: bool, **options) -> TransportResult:
    """``method="sinkhorn"`` inside ``otdist.wasserstein`` / ``otdist.transport``."""
    allowed = ("epsilon", "relative", "scaling", "tol", "max_iter", "max_size")
    V.reject_options({k: v for k, v in options.items() if k not in allowed}, "sinkhorn")
    if problem.cost is not None:
        raise ValueError('method="sinkhorn" with a precomputed cost is not supported; pass the points instead.')
    result = sinkhorn(problem.x, problem.y, problem.a, problem.b, p=problem.p, metric=problem.metric,
                      minkowski_p=problem.minkowski_p, **options)
    like = problem.like
    return TransportResult(
        value=scalar_out(result.value, like),
        transport_cost=scalar_out(result.transport_cost, like),
        plan=result.plan() if need_plan else None,
        potentials=result.potentials,
        duality_gap=None,
        method="sinkhorn",
        p=problem.p,
        n_iter=result.n_iter,
        converged=result.converged,
        extra={"entropic_cost": result.entropic_cost, "marginal_error": result.marginal_error, "epsilon": result.epsilon},
    )


api.register_solver("sinkhorn", _sinkhorn_method)
api.register_distance("sinkhorn", sinkhorn_divergence)
