r"""Entropic optimal transport: ``sinkhorn``, ``sinkhorn_divergence`` and ``method="sinkhorn"``.

Conventions, for the cost ``C_ij = d(x_i, y_j) ** p`` and ``eps`` absolute, in the units of C:

* ``transport_cost`` = ``<P_eps, C>`` = POT's ``ot.sinkhorn2`` = ``ot.solve(C, a, b, reg=eps).value_linear``;
  ``value`` = ``transport_cost ** (1/p)``;
* ``entropic_cost`` = ``OT_eps = <P_eps, C> + eps KL(P_eps || a (x) b)`` = ``ot.solve(C, a, b, reg=eps).value``;
* ``sinkhorn_divergence`` = ``OT_eps(a, b) - (OT_eps(a, a) + OT_eps(b, b)) / 2``: no POT counterpart
  (``ot.bregman.empirical_sinkhorn_divergence`` debiases ``<P_eps, C>`` and clips at 0);
* GeomLoss's cost is ``|x - y|^p / p`` (half ours at p = 2) and its epsilon ``blur ** p``: our
  ``eps = p * blur ** p``, and our values are p times GeomLoss's (p = 1, 2).

``relative=True`` (and the default epsilon, 1%) makes ``epsilon`` a fraction of the cost spread
``max C - min C``, which, like the entropic plan, does not change when a constant is added to C.
When every cost is equal the plan is ``a (x) b`` whatever epsilon, and the fraction is used as is.

Reaching ``max_iter`` before the L1 marginal error of the returned plan is below ``tol`` raises
:class:`otdist.ConvergenceError` (``on_unconverged="raise"``, the default) or returns the result with
a :class:`otdist.ConvergenceWarning` (``on_unconverged="warn"``).

Gradients (torch input) flow to the points and weights: by the envelope theorem for ``entropic_cost``
and ``sinkhorn_divergence``; by implicit differentiation of the Sinkhorn fixed point for
``transport_cost`` and ``value``, which are not stationary in the potentials
(:func:`otdist.solvers.online.linear_cost`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from . import _validation as V
from . import registry
from .problem import Problem
from ._backend import array_out, compute_dtype, is_torch, numpy_output_dtype, output_dtype, scalar_out, torch_reference
from ._results import TransportResult
from .cost import DEFAULT_MAX_SIZE, Metric, ground_cost
from .exceptions import ConvergenceError, ConvergenceWarning, InputError

#: Default epsilon when none is given: this fraction of the cost spread max C - min C.
DEFAULT_RELATIVE_EPSILON = 0.01
#: Default stopping tolerance on the L1 marginal error, per floating-point precision.
DEFAULT_TOL = {"float64": 1e-8, "float32": 1e-4}
#: ... for the divergence, whose debiasing cancels the values to far below the value error that
#: DEFAULT_TOL allows (a permuted copy must come out within 1e-12 of the cost spread).
DIVERGENCE_TOL = {"float64": 1e-10, "float32": 1e-4}
DEFAULT_MAX_ITER = 10_000
DEFAULT_SCALING = 0.1
GUARD_ALTERNATIVES = 'backend="geomloss" with pykeops installed, or method="sliced"'
GEOMLOSS_GUARD = 'install pykeops for GeomLoss\'s online backend, or method="sliced"'
BACKENDS = ("torch", "geomloss")
ON_UNCONVERGED = ("raise", "warn")


@dataclass(frozen=True)
class SinkhornResult:
    """Solution of an entropic optimal-transport problem.

    Attributes
    ----------
    value
        ``transport_cost ** (1/p)``: the Sinkhorn approximation of W_p.
    transport_cost
        ``<P_eps, C>``, the cost of the entropic plan (POT's ``sinkhorn2``, ``ot.solve(...).value_linear``).
    entropic_cost
        ``OT_eps = <P_eps, C> + eps KL(P_eps || a (x) b)`` (POT's ``ot.solve(..., reg=eps).value``).
    potentials
        Dual potentials (f, g), shapes (n,) and (m,) (or (B, n), (B, m) for batches).
    epsilon
        The absolute regularisation used.
    n_iter, converged, marginal_error
        Iterations (all epsilon stages), whether the L1 marginal error of the returned plan reached
        ``tol``, and that error.
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
        return _out(core.log_plan(pot, geometry.full().detach(), inputs.a.detach(), inputs.b.detach()).exp(), inputs)


@dataclass(frozen=True)
class _Inputs:
    x: Any  # (B, n, d) torch, in the dtype the solver runs in
    y: Any
    a: Any  # (B, n)
    b: Any
    like: Any  # user's tensor (output type) or None for NumPy
    batched: bool
    out_dtype: Any  # torch dtype (torch input) or NumPy dtype of the results


def _inputs(x, y, a, b) -> _Inputs:
    import torch

    like = torch_reference(x, y, a, b)
    if like is not None:
        dtype, device, out_dtype = compute_dtype(like), like.device, output_dtype(like)
    else:
        out_dtype = numpy_output_dtype(x, y)
        dtype, device = (torch.float32 if out_dtype.itemsize <= 4 else torch.float64), torch.device("cpu")
    x = V.as_point_batch(x, "x")
    y = V.as_point_batch(y, "y")
    V.check_same_dim(x, y, ("x", "y"))
    x, y = (torch.as_tensor(t if is_torch(t) else np.require(t, requirements="CW")).to(dtype=dtype, device=device)
            for t in (x, y))  # writable C-ordered copies of read-only or strided arrays
    ref = torch.zeros((), dtype=dtype, device=device)
    a = V.as_weight_batch(a, tuple(x.shape[:-1]), "a", "x", ref).to(dtype=dtype, device=device)
    b = V.as_weight_batch(b, tuple(y.shape[:-1]), "b", "y", ref).to(dtype=dtype, device=device)
    batched = x.ndim == 3
    if not batched:
        x, y, a, b = x[None], y[None], a[None], b[None]
    return _Inputs(x, y, a, b, like, batched, out_dtype)


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
    on_unconverged: str


def _options(inputs: _Inputs, p, epsilon, relative, metric, scaling, tol, max_iter, max_size, backend,
             on_unconverged) -> _Options:
    """Every option checked before any cost is computed; ``tol`` defaults to that of the solver's precision."""
    from .solvers import sinkhorn_geomloss as gl

    p = V.check_order(p)
    relative = V.check_flag(relative, "relative")
    if epsilon is None:
        epsilon, relative = DEFAULT_RELATIVE_EPSILON, True
    epsilon = V.check_positive(epsilon, "epsilon")
    scaling = V.check_positive(scaling, "scaling", allow_zero=True)
    if scaling >= 1:
        raise InputError(f"scaling must be in [0, 1) (the ratio between successive epsilons); got {scaling}. Use 0 to disable epsilon-scaling.")
    tol = DEFAULT_TOL[str(inputs.x.dtype).replace("torch.", "")] if tol is None else V.check_positive(tol, "tol")
    max_iter = V.check_positive(max_iter, "max_iter", integer=True)
    max_size = V.check_positive(max_size, "max_size", integer=True)
    backend = V.check_choice(backend, BACKENDS, "backend")
    on_unconverged = V.check_choice(on_unconverged, ON_UNCONVERGED, "on_unconverged")
    if backend == "geomloss":
        gl.check_supported(p, metric, scaling)
    return _Options(p, epsilon, bool(relative), scaling, tol, max_iter, max_size, backend, on_unconverged)


def _guard(opts: _Options, inputs: _Inputs, shapes, method: str) -> None:
    """The memory guard, on every n x m problem about to be solved, before any of them is built."""
    from .solvers import sinkhorn_geomloss as gl

    if opts.backend == "geomloss" and gl.keops_available():
        return
    alternatives = GEOMLOSS_GUARD if opts.backend == "geomloss" else GUARD_ALTERNATIVES
    for n, m in shapes:
        V.check_size(inputs.x.shape[0] * n, m, opts.max_size, method, alternatives)


def _geometry(inputs: _Inputs, opts: _Options, metric, minkowski_p):
    """The dense cost (torch backend), or its rows rebuilt on demand (geomloss backend)."""
    from .solvers.online import Geometry

    cost = None if opts.backend == "geomloss" else ground_cost(inputs.x, inputs.y, opts.p, metric, minkowski_p=minkowski_p)
    return Geometry(inputs, partial(ground_cost, p=opts.p, metric=metric, minkowski_p=minkowski_p), cost)


def _absolute_epsilon(opts: _Options, geometry) -> float:
    if not opts.relative:
        return opts.epsilon
    spread = geometry.spread()
    return opts.epsilon * spread if spread > 0 else opts.epsilon


def _potentials(geometry, opts: _Options, eps: float, symmetric: bool = False):
    """Potentials of one problem, with the backend of ``opts``; ``opts.on_unconverged`` applied."""
    import torch

    from .solvers import sinkhorn as core
    from .solvers import sinkhorn_geomloss as gl

    inputs = geometry.inputs
    if opts.backend == "torch":
        with warnings.catch_warnings():  # convergence is reported below, as the caller asked
            warnings.simplefilter("ignore", ConvergenceWarning)
            pot = core.solve(geometry.dense, inputs.a, inputs.b, eps, symmetric=symmetric, scaling=opts.scaling,
                             eps_start=max(geometry.spread(), eps), tol=opts.tol, max_iter=opts.max_iter)
    else:
        with torch.no_grad():
            pot = gl.potentials(inputs.x, inputs.y, inputs.a, inputs.b, eps, opts.p, opts.scaling, opts.tol,
                                opts.max_iter, geometry.rows, symmetric)
    if not pot.converged:
        _unconverged(opts, f"Sinkhorn stopped after {pot.n_iter} iterations (max_iter={opts.max_iter}) with L1 "
                     f"marginal error {float(pot.marginal_error.max()):.3g}", f"epsilon={eps:.3g}")
    return pot


def _unconverged(opts: _Options, what: str, where: str, residual_tol: float | None = None) -> None:
    tol = opts.tol if residual_tol is None else residual_tol
    message = (f"{what} > tol={tol:g} ({where}); it must reach tol. Raise max_iter, increase epsilon or loosen tol, "
               'or pass on_unconverged="warn" to accept the unconverged result with a ConvergenceWarning.')
    if opts.on_unconverged == "raise":
        raise ConvergenceError(message)
    warnings.warn(message, ConvergenceWarning, stacklevel=4)


def _inexact_gradient(opts: _Options, eps: float, residual: float, tol: float) -> None:
    _unconverged(opts, f"the gradient of transport_cost (conjugate gradients on its adjoint system) stopped at "
                 f"relative residual {residual:.3g}", f"epsilon={eps:.3g}", residual_tol=tol)


def _out(t, inputs: _Inputs):
    t = t if inputs.batched else t[0]
    if inputs.like is not None:
        return t.to(inputs.out_dtype)
    arr = t.detach().cpu().numpy().astype(inputs.out_dtype)
    return arr if arr.ndim else float(arr)


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
    on_unconverged: str = "raise",
) -> SinkhornResult:
    r"""Entropic optimal transport between weighted point clouds (log-domain Sinkhorn).

    Solves ``OT_eps = min_P <P, C> + eps KL(P || a (x) b)`` over couplings P of a and b, with
    ``C_ij = d(x_i, y_j) ** p``.  See the module documentation for the correspondence with POT
    (``transport_cost`` is ``ot.sinkhorn2`` = ``ot.solve(C, a, b, reg=eps).value_linear``,
    ``entropic_cost`` is ``ot.solve(C, a, b, reg=eps).value``) and GeomLoss.

    Parameters
    ----------
    x, y
        Points ``(n, d)`` and ``(m, d)``, or batches ``(B, n, d)`` and ``(B, m, d)``; NumPy or torch.
        float32 and float64 are kept; float16/bfloat16 are computed in float32 and integers in the
        default float; results come back in the input's floating dtype.
    a, b
        Weights ``(n,)``/``(m,)`` or ``(B, n)``/``(B, m)``, normalised; uniform when omitted.
    epsilon
        Entropic regularisation, absolute in the units of the cost C = d ** p; ``relative=True``
        makes it a fraction of the cost spread ``max C - min C``. Default: 1% of ``max C - min C``.
    p
        Order: C_ij = d(x_i, y_j) ** p.
    relative
        Interpret ``epsilon`` relative to ``max C - min C`` (as given when every cost is equal).
    metric, minkowski_p
        Ground metric, as in :func:`otdist.transport`; a callable receives one (n, d), (m, d)
        pair per batch element.
    scaling
        epsilon-scaling ratio in [0, 1): epsilon goes from ``max C - min C`` down to ``epsilon``,
        multiplied by ``scaling`` at each stage. 0 disables the annealing.
    tol
        Stop when the L1 marginal error is below ``tol`` (default 1e-8 in float64, 1e-4 in float32).
    max_iter
        Iteration cap.
    max_size
        Memory guard on B * n * m, checked before anything of that size is allocated.
    backend
        ``"torch"`` (default): otdist's solver, to ``tol``, on a dense cost matrix.
        ``"geomloss"``: GeomLoss's epsilon-scaling (euclidean, p = 1 or 2) as a warm start, then
        log-domain iterations to ``tol`` on blocks of rows of the cost; with pykeops installed the
        cost matrix is never stored, for problems beyond ``max_size``.
    on_unconverged
        ``"raise"`` (default): :class:`otdist.ConvergenceError` when ``tol`` is not reached within
        ``max_iter``. ``"warn"``: return the unconverged result with a :class:`otdist.ConvergenceWarning`
        (e.g. in a training loop).

    Returns
    -------
    SinkhornResult
        ``value``, ``transport_cost``, ``entropic_cost``, ``potentials``, ``plan()``, ...  With torch
        input all are differentiable in the points and weights: ``entropic_cost`` by the envelope
        theorem, ``transport_cost`` and ``value`` by implicit differentiation of the Sinkhorn fixed point.

    Raises
    ------
    ConvergenceError
        ``tol`` not reached within ``max_iter`` (with ``on_unconverged="raise"``).
    MemoryGuardError
        The n x m problem exceeds ``max_size``.

    Examples
    --------
    >>> import numpy as np, otdist
    >>> x = np.array([[0.0], [1.0]])
    >>> res = otdist.sinkhorn(x, x + 3.0, epsilon=1e-3)
    >>> round(res.value, 6)
    3.0
    """
    from .solvers import online

    inputs = _inputs(x, y, a, b)
    opts = _options(inputs, p, epsilon, relative, metric, scaling, tol, max_iter, max_size, backend, on_unconverged)
    _guard(opts, inputs, [(inputs.x.shape[1], inputs.y.shape[1])], "sinkhorn")
    geometry = _geometry(inputs, opts, metric, minkowski_p)
    pot = _potentials(geometry, opts, _absolute_epsilon(opts, geometry))
    transport_cost = online.transport_cost(pot, geometry, partial(_inexact_gradient, opts, pot.epsilon))
    entropic = online.entropic_cost(pot, geometry)
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
    on_unconverged: str = "raise",
):
    r"""Debiased Sinkhorn divergence S_eps = OT_eps(a, b) - ½ OT_eps(a, a) - ½ OT_eps(b, b).

    Non-negative, zero if and only if the two measures are equal, and differentiable in the points
    and weights (torch input, envelope theorem). Arguments as in :func:`sinkhorn`; a relative
    ``epsilon`` is a fraction of ``max C - min C`` for the cost between x and y, and the same absolute
    epsilon is used for the three problems. ``tol`` defaults to 1e-10 in float64 (1e-4 in float32):
    the debiased value is a difference of nearly equal terms. The memory guard covers the three
    problems (n x m, n x n, m x m) before any is built.

    POT has no counterpart (``ot.bregman.empirical_sinkhorn_divergence`` debiases ``<P_eps, C>`` and
    clips at 0); GeomLoss's ``SamplesLoss("sinkhorn", p=p, blur=(eps / p) ** (1 / p))`` is ``S_eps / p``
    for p = 1, 2.

    References
    ----------
    Feydy, Séjourné, Vialard, Amari, Trouvé, Peyré, *Interpolating between Optimal Transport and
    MMD using Sinkhorn Divergences*, AISTATS 2019.

    Examples
    --------
    >>> import numpy as np, otdist
    >>> x = np.random.default_rng(0).normal(size=(50, 2))
    >>> abs(otdist.sinkhorn_divergence(x, x[::-1], p=2)) < 1e-9  # a permuted copy
    True
    >>> round(otdist.sinkhorn_divergence(x, x + [1.0, 1.0], p=2), 8)  # a translation by t: |t|^2 at p = 2
    2.0
    """
    from .solvers import online

    inputs = _inputs(x, y, a, b)
    if tol is None:
        tol = DIVERGENCE_TOL[str(inputs.x.dtype).replace("torch.", "")]
    opts = _options(inputs, p, epsilon, relative, metric, scaling, tol, max_iter, max_size, backend, on_unconverged)
    n, m = inputs.x.shape[1], inputs.y.shape[1]
    _guard(opts, inputs, [(n, m), (n, n), (m, m)], "sinkhorn_divergence")
    geometry = _geometry(inputs, opts, metric, minkowski_p)
    eps = _absolute_epsilon(opts, geometry)
    self_x = _Inputs(inputs.x, inputs.x, inputs.a, inputs.a, inputs.like, True, inputs.out_dtype)
    self_y = _Inputs(inputs.y, inputs.y, inputs.b, inputs.b, inputs.like, True, inputs.out_dtype)
    terms = []
    for geom, symmetric in ((geometry, False), (_geometry(self_x, opts, metric, minkowski_p), True),
                            (_geometry(self_y, opts, metric, minkowski_p), True)):
        terms.append(online.entropic_cost(_potentials(geom, opts, eps, symmetric), geom))
    return _out(terms[0] - 0.5 * (terms[1] + terms[2]), inputs)


def _sinkhorn_method(problem: Problem, need_plan: bool, **options) -> TransportResult:
    """``method="sinkhorn"`` inside ``otdist.wasserstein`` / ``otdist.transport``."""
    allowed = ("epsilon", "relative", "scaling", "tol", "max_iter", "max_size", "backend", "on_unconverged")
    V.reject_options({k: v for k, v in options.items() if k not in allowed}, "sinkhorn")
    if problem.cost is not None:
        raise InputError('method="sinkhorn" with a precomputed cost is not supported; pass the points instead.')
    result = sinkhorn(problem.x, problem.y, problem.a, problem.b, p=problem.p, metric=problem.metric,
                      minkowski_p=problem.minkowski_p, **options)
    like = problem.like

    def array(t):
        return t if like is None else array_out(t, like)

    return TransportResult(
        value=scalar_out(result.value, like),
        transport_cost=scalar_out(result.transport_cost, like),
        plan=array(result.plan()) if need_plan else None,
        potentials=(array(result.potentials[0]), array(result.potentials[1])),
        duality_gap=None,
        method="sinkhorn",
        p=problem.p,
        n_iter=result.n_iter,
        converged=result.converged,
        extra={"entropic_cost": scalar_out(result.entropic_cost, like), "marginal_error": float(result.marginal_error),
               "epsilon": result.epsilon},
    )


def _divergence_metric(x, y, u_weights=None, v_weights=None, **options):
    return sinkhorn_divergence(x, y, u_weights, v_weights, **registry.ground_metric_options(options))


registry.register_method(registry.MethodSpec(
    "sinkhorn", _sinkhorn_method, "entropic OT (log-domain Sinkhorn); value from the entropic plan's <P, C>",
    exact=False, gradients="values and weights", memory="O(nm), or O((n + m) d) online"))
registry.register_metric(registry.MetricSpec(
    "sinkhorn", _divergence_metric, "Sinkhorn divergence S_eps (debiased entropic OT; eps = 1% of the cost range)",
    kind="divergence", gradients="values and weights", memory="O(nm), or O((n + m) d) online"))
