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
from .exceptions import InputError

#: Default epsilon when none is given: this fraction of the largest cost.
DEFAULT_RELATIVE_EPSILON = 0.01
#: Default stopping tolerance on the L1 marginal error, per floating-point precision.
DEFAULT_TOL = {"float64": 1e-8, "float32": 1e-4}
DEFAULT_MAX_ITER = 10_000
DEFAULT_SCALING = 0.1
GUARD_ALTERNATIVES = 'backend="geomloss" with pykeops installed, or method="sliced"'
GEOMLOSS_GUARD = 'install pykeops for GeomLoss\'s online backend, or method="sliced"'
BACKENDS = ("torch", "geomloss")


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

        pot, geometry, max_size = self._state
        inputs = geometry.inputs
        V.check_size(inputs.x.shape[0] * geometry.shape[0], geometry.shape[1], max_size, "SinkhornResult.plan", "the potentials")
        plan = core.log_plan(pot, geometry.full().detach(), inputs.a.detach(), inputs.b.detach()).exp()
        plan = plan if inputs.batched else plan[0]
        return plan if inputs.like is not None else plan.cpu().numpy()


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


def _check_options(p, epsilon, relative, scaling, tol, max_iter, max_size, backend, dtype_name):
    p = V.check_order(p)
    if epsilon is None:
        epsilon, relative = DEFAULT_RELATIVE_EPSILON, True
    epsilon = V.check_positive(epsilon, "epsilon")
    scaling = V.check_positive(scaling, "scaling", allow_zero=True)
    if scaling >= 1:
        raise InputError(f"scaling must be in [0, 1) (the ratio between successive epsilons); got {scaling}. Use 0 to disable epsilon-scaling.")
    backend = V.check_choice(backend, BACKENDS, "backend")
    tol = DEFAULT_TOL.get(dtype_name, 1e-8) if tol is None else V.check_positive(tol, "tol")
    max_iter = V.check_positive(max_iter, "max_iter", integer=True)
    max_size = V.check_positive(max_size, "max_size", integer=True)
    return _Options(p, epsilon, bool(relative), scaling, tol, max_iter, max_size, backend)


@dataclass(frozen=True)
class _Options:
    p: float
    epsilon: float
    relative: bool
    scaling: float
    tol: float
    max_iter: int
    max_size: int
    backend: str


def _prepare(x, y, a, b, *options) -> tuple[_Inputs, _Options]:
    """Validated inputs, and the options checked against their floating-point precision."""
    inputs = _inputs(x, y, a, b)
    return inputs, _check_options(*options, str(inputs.x.dtype).replace("torch.", ""))


@dataclass(frozen=True)
class _Geometry:
    """The cost of one (batched) problem: a dense (B, n, m) matrix, or rebuilt by blocks of rows."""

    inputs: _Inputs
    p: float
    metric: Any
    minkowski_p: float | None
    dense: Any = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.inputs.x.shape[1], self.inputs.y.shape[1]

    def rows(self, i0: int, i1: int):
        if self.dense is not None:
            return self.dense[:, i0:i1]
        return ground_cost(self.inputs.x[:, i0:i1], self.inputs.y, self.p, self.metric, minkowski_p=self.minkowski_p)

    def full(self):
        return self.dense if self.dense is not None else self.rows(0, self.shape[0])

    def scale(self) -> float:
        """max C, without building C when it is not stored."""
        from .solvers.online import row_blocks

        if self.dense is not None:
            return float(self.dense.detach().max())
        with _no_grad():
            return max(float(self.rows(i0, i1).max()) for i0, i1 in row_blocks(*self.shape))


def _no_grad():
    import torch

    return torch.no_grad()


def _solve(inputs: _Inputs, opts: _Options, metric, minkowski_p, epsilon: float, relative: bool, cost=None,
           symmetric=False):
    """Potentials and the geometry of one problem, with the backend and memory guard of ``opts``."""
    from .solvers import sinkhorn as core
    from .solvers import sinkhorn_geomloss as gl

    batch, (n, m) = inputs.x.shape[0], (inputs.x.shape[1], inputs.y.shape[1])
    if opts.backend == "geomloss":
        gl.check_supported(opts.p, metric, opts.scaling)
        if not gl.keops_available():
            V.check_size(batch * n, m, opts.max_size, "sinkhorn", GEOMLOSS_GUARD)
        geometry = _Geometry(inputs, opts.p, metric, minkowski_p)
    else:
        V.check_size(batch * n, m, opts.max_size, "sinkhorn", GUARD_ALTERNATIVES)
        if cost is None:
            cost = ground_cost(inputs.x, inputs.y, opts.p, metric, minkowski_p=minkowski_p)
        geometry = _Geometry(inputs, opts.p, metric, minkowski_p, cost if cost.ndim == 3 else cost[None])
    # max C: for a relative epsilon, and as the start of the torch backend's schedule (GeomLoss
    # picks its own), so the row-blocked geometry is not scanned for nothing.
    scale = geometry.scale() if relative or opts.backend == "torch" else None
    eps = epsilon * scale if relative else epsilon
    if eps <= 0:
        raise InputError(
            f"relative epsilon needs a positive cost scale; the largest cost is {scale} (the points coincide, or their "
            "distances underflow). Pass an absolute epsilon with relative=False."
        )
    if opts.backend == "torch":
        pot = core.solve(geometry.dense, inputs.a, inputs.b, eps, symmetric=symmetric, scaling=opts.scaling,
                         eps_start=max(scale, eps), tol=opts.tol, max_iter=opts.max_iter)
        return pot, geometry
    with _no_grad():
        pot = gl.potentials(inputs.x, inputs.y, inputs.a, inputs.b, eps, opts.p, opts.scaling, opts.tol, opts.max_iter,
                            geometry.rows, symmetric)
    if not pot.converged:
        core.warn_unconverged(opts.max_iter, pot.marginal_error, opts.tol, eps, stacklevel=4)
    return pot, geometry


def _entropic_cost(pot, geometry: _Geometry):
    from .solvers import online
    from .solvers import sinkhorn as core

    a, b = geometry.inputs.a, geometry.inputs.b
    if geometry.dense is not None:
        return core.entropic_cost(pot, geometry.dense, a, b)
    f = online.semi_dual_f(geometry.rows, *geometry.shape, core.safe_log(b), pot.g.detach(), pot.epsilon, _tracks_grad(geometry))
    return (a * f).sum(dim=1) + (b * pot.g.detach()).sum(dim=1)


def _transport_cost(pot, geometry: _Geometry):
    from .solvers import online
    from .solvers import sinkhorn as core

    a, b = geometry.inputs.a, geometry.inputs.b
    if geometry.dense is not None:
        return core.transport_cost(pot, geometry.dense, a, b)
    log_a, log_b = core.safe_log(a.detach()), core.safe_log(b.detach())
    return online.plan_statistics(geometry.rows, *geometry.shape, log_a, log_b, pot.f, pot.g, pot.epsilon,
                                  _tracks_grad(geometry))[0]


def _tracks_grad(geometry: _Geometry) -> bool:
    import torch

    inputs = geometry.inputs
    return torch.is_grad_enabled() and any(t.requires_grad for t in (inputs.x, inputs.y, inputs.a, inputs.b))


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
    backend: str = "torch",
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
    backend
        ``"torch"`` (default): otdist's solver, to ``tol``, on a dense cost matrix.
        ``"geomloss"``: GeomLoss's epsilon-scaling (euclidean, p = 1 or 2) as a warm start, then
        log-domain iterations to ``tol`` on blocks of rows of the cost; with pykeops installed the
        cost matrix is never stored, for problems beyond ``max_size``.

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
    inputs, opts = _prepare(x, y, a, b, p, epsilon, relative, scaling, tol, max_iter, max_size, backend)
    pot, geometry = _solve(inputs, opts, metric, minkowski_p, opts.epsilon, opts.relative)
    transport_cost = _transport_cost(pot, geometry)
    entropic = _entropic_cost(pot, geometry)
    value = transport_cost if opts.p == 1 else transport_cost.clamp_min(0) ** (1.0 / opts.p)
    return SinkhornResult(
        value=_out(value, inputs),
        transport_cost=_out(transport_cost, inputs),
        entropic_cost=_out(entropic, inputs),
        potentials=(_out(pot.f, inputs), _out(pot.g, inputs)),
        epsilon=pot.epsilon,
        p=opts.p,
        n_iter=pot.n_iter,
        converged=pot.converged,
        marginal_error=_out(pot.marginal_error, inputs),
        _state=(pot, geometry, opts.max_size),
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
    backend: str = "torch",
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
    inputs, opts = _prepare(x, y, a, b, p, epsilon, relative, scaling, tol, max_iter, max_size, backend)
    geometry = None
    epsilon = opts.epsilon
    if opts.backend == "torch":
        geometry = _Geometry(inputs, opts.p, metric, minkowski_p, ground_cost(inputs.x, inputs.y, opts.p, metric, minkowski_p=minkowski_p))
    if opts.relative:  # one absolute epsilon for the three problems
        geometry = geometry or _Geometry(inputs, opts.p, metric, minkowski_p)
        epsilon = epsilon * geometry.scale()
    # Identical inputs: the symmetric solver for OT(a, b) too, so that S_eps is exactly 0.
    same_measure = inputs.x.shape == inputs.y.shape and bool((inputs.x == inputs.y).all()) and bool((inputs.a == inputs.b).all())
    dense = geometry.dense if geometry is not None else None
    terms = []
    for pair, symmetric in (((inputs.x, inputs.y, inputs.a, inputs.b), same_measure),
                            ((inputs.x, inputs.x, inputs.a, inputs.a), True),
                            ((inputs.y, inputs.y, inputs.b, inputs.b), True)):
        problem = _Inputs(*pair, inputs.like, True)
        pot, geom = _solve(problem, opts, metric, minkowski_p, epsilon, False, cost=dense, symmetric=symmetric)
        terms.append(_entropic_cost(pot, geom))
        dense = None
    return _out(terms[0] - 0.5 * (terms[1] + terms[2]), inputs)


def _sinkhorn_method(problem: api.Problem, need_plan: bool, **options) -> TransportResult:
    """``method="sinkhorn"`` inside ``otdist.wasserstein`` / ``otdist.transport``."""
    allowed = ("epsilon", "relative", "scaling", "tol", "max_iter", "max_size", "backend")
    V.reject_options({k: v for k, v in options.items() if k not in allowed}, "sinkhorn")
    if problem.cost is not None:
        raise InputError('method="sinkhorn" with a precomputed cost is not supported; pass the points instead.')
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
