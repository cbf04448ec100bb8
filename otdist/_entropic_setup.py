"""The inputs, options, geometry and potentials of :mod:`otdist.entropic`, validated once.

Points (and a ground metric) or a given cost matrix become a batched :class:`Inputs`; every option
is checked into :class:`Options` before any n x m array is built; :func:`resolve` picks the backend
of each problem (``"auto"``: tensorized up to ``max_size`` entries, online above); :func:`potentials`
runs the balanced tensorized (:mod:`otdist.solvers.sinkhorn`), unbalanced (:mod:`otdist.solvers.unbalanced`),
online or KeOps (:mod:`otdist._entropic_online`), multiscale (:mod:`otdist.solvers.multiscale`) or
GeomLoss-started (:mod:`otdist.solvers.sinkhorn_geomloss`) solver and applies the convergence policy.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import numpy as np

from . import _validation as V
from ._backend import compute_dtype, is_torch, numpy_output_dtype, output_dtype, torch_reference
from .cost import ground_cost
from .exceptions import ConvergenceError, ConvergenceWarning, InputError

#: Default epsilon when none is given: this fraction of the cost spread max C - min C.
DEFAULT_RELATIVE_EPSILON = 0.01
#: Default stopping tolerance on the L1 marginal error (balanced) or on the largest change of the
#: potentials over epsilon in one iteration (unbalanced), per floating-point precision.
DEFAULT_TOL = {"float64": 1e-8, "float32": 1e-4}
GUARD_ALTERNATIVES = 'backend="online" (or "auto"), which never stores the cost matrix, or method="sliced"'
GEOMLOSS_GUARD = 'install pykeops for GeomLoss\'s online backend, backend="online", or method="sliced"'
#: "torch" is the older name of "tensorized".
BACKENDS = ("auto", "tensorized", "online", "keops", "multiscale", "geomloss", "torch")
#: Backends that rebuild the cost from the points instead of storing it.
POINT_BACKENDS = ("online", "keops", "multiscale", "geomloss")
ON_UNCONVERGED = ("raise", "warn")


@dataclass(frozen=True)
class Inputs:
    x: Any  # (B, n, d) torch, in the dtype the solver runs in; None for a given cost
    y: Any
    a: Any  # (B, n)
    b: Any
    like: Any  # user's tensor (output type) or None for NumPy
    batched: bool
    out_dtype: Any  # torch dtype (torch input) or NumPy dtype of the results
    cost: Any = None  # (B, n, m) given cost, or None for points

    @property
    def batch(self) -> int:
        return self.a.shape[0]

    @property
    def dtype_name(self) -> str:
        return str(self.a.dtype).replace("torch.", "")

    def self_problem(self, first: bool) -> "Inputs":
        """The problem between x (``first``) or y and itself, for the divergence's debiasing terms."""
        points, weights = (self.x, self.a) if first else (self.y, self.b)
        return Inputs(points, points, weights, weights, self.like, True, self.out_dtype)


def inputs(x, y, a, b, cost=None, masses: bool = False) -> Inputs:
    """Batched torch inputs; ``masses=True`` keeps the weights' total masses (unbalanced transport)."""
    import torch

    like = torch_reference(x, y, a, b, cost)
    if like is not None:
        dtype, device, out_dtype = compute_dtype(like), like.device, output_dtype(like)
    else:
        out_dtype = numpy_output_dtype(x, y) if cost is None else numpy_output_dtype(cost)
        dtype, device = (torch.float32 if out_dtype.itemsize <= 4 else torch.float64), torch.device("cpu")

    def tensor(t):  # writable C-ordered copies of read-only or strided arrays
        return torch.as_tensor(t if is_torch(t) else np.require(t, requirements="CW")).to(dtype=dtype, device=device)

    if cost is not None:
        if x is not None or y is not None:
            raise InputError("sinkhorn takes points x, y or a cost matrix, not both; got both. "
                             "Pass x=None, y=None with cost=C, or the points without cost.")
        cost = V.as_real_array(cost, "cost")
        if cost.ndim not in (2, 3) or 0 in cost.shape:
            raise InputError(f"cost must be a non-empty (n, m) or (B, n, m) matrix; got shape {tuple(cost.shape)}. "
                             "Pass one row per source point and one column per target point.")
        cost = tensor(V.check_cost_matrix(cost, *cost.shape[-2:], tuple(cost.shape[:-2]), allow_negative=True))
        shape_a, shape_b = tuple(cost.shape[:-1]), (*cost.shape[:-2], cost.shape[-1])
        batched = cost.ndim == 3
    else:
        if x is None or y is None:
            raise InputError("sinkhorn needs the points x and y, or a cost matrix; got x or y None without cost. "
                             "Pass both point sets, or x=None, y=None and cost=C.")
        x, y = V.as_point_batch(x, "x"), V.as_point_batch(y, "y")
        V.check_same_dim(x, y, ("x", "y"))
        x, y = tensor(x), tensor(y)
        shape_a, shape_b = tuple(x.shape[:-1]), tuple(y.shape[:-1])
        batched = x.ndim == 3
    ref = torch.zeros((), dtype=dtype, device=device)
    names = ("the rows of cost", "the columns of cost") if cost is not None else ("x", "y")
    a, b = (_weights(w, shape, name, values, ref, masses).to(dtype=dtype, device=device)
            for w, shape, name, values in ((a, shape_a, "a", names[0]), (b, shape_b, "b", names[1])))
    if not batched:
        x, y, a, b = (None if t is None else t[None] for t in (x, y, a, b))
        cost = None if cost is None else cost[None]
    return Inputs(x, y, a, b, like, batched, out_dtype, cost)


def _weights(w, shape, name: str, values: str, ref, masses: bool):
    """Validated weights, normalised, or (``masses``) scaled back to the total masses given."""
    import torch

    if w is not None and not is_torch(w) and isinstance(w, np.ndarray):
        w = np.ascontiguousarray(w)  # a negative-stride view cannot become a tensor
    normalised = V.as_weight_batch(w, shape, name, values, ref)
    if not masses or w is None:
        return normalised
    raw = w if is_torch(w) else torch.as_tensor(np.asarray(V.as_real_array(w, name), dtype=np.float64))
    if raw.numel() == 0:  # POT's convention: an empty list means uniform weights
        return normalised
    return normalised * raw.to(dtype=ref.dtype, device=ref.device).sum(dim=-1, keepdim=True)


@dataclass(frozen=True)
class Options:
    p: float
    epsilon: float
    relative: bool
    scaling: float
    tol: float
    max_iter: int
    max_size: int
    backend: str
    on_unconverged: str
    reach: float | None = None
    progress: bool = False
    metric: Any = "euclidean"
    minkowski_p: float | None = None

    @property
    def penalty(self) -> float | None:
        """lambda = reach ** p, the weight of each marginal's KL penalty (None: balanced)."""
        return None if self.reach is None else self.reach**self.p


def options(inputs: Inputs, p, epsilon, relative, metric, scaling, tol, max_iter, max_size, backend,
            on_unconverged, reach=None, progress=False, minkowski_p=None) -> Options:
    """Every option checked before any cost is computed; ``tol`` defaults to that of the solver's precision."""
    from .solvers import sinkhorn_geomloss as gl

    p = V.check_order(p)
    relative = V.check_flag(relative, "relative")
    progress = V.check_flag(progress, "progress")
    if epsilon is None:
        epsilon, relative = DEFAULT_RELATIVE_EPSILON, True
    epsilon = V.check_positive(epsilon, "epsilon")
    scaling = V.check_positive(scaling, "scaling", allow_zero=True)
    if scaling >= 1:
        raise InputError(f"scaling must be in [0, 1) (the ratio between successive epsilons); got {scaling}. Use 0 to disable epsilon-scaling.")
    tol = DEFAULT_TOL[inputs.dtype_name] if tol is None else V.check_positive(tol, "tol")
    max_iter = V.check_positive(max_iter, "max_iter", integer=True)
    max_size = V.check_positive(max_size, "max_size", integer=True)
    backend = V.check_choice(backend, BACKENDS, "backend")
    backend = "tensorized" if backend == "torch" else backend
    on_unconverged = V.check_choice(on_unconverged, ON_UNCONVERGED, "on_unconverged")
    if reach is not None:
        reach = V.check_positive(reach, "reach")
    if inputs.cost is not None:
        if p != 1:
            raise InputError(
                f"p only applies to point clouds (the cost d(x, y) ** p); got p={p:g} with a cost matrix, whose "
                "value is the transport cost <P, C> itself. Pass cost=C ** p and leave p at 1, or pass the points.")
        if backend in POINT_BACKENDS:
            raise InputError(f'backend={backend!r} needs the points (it rebuilds the cost from them); got a cost '
                             'matrix. Use backend="tensorized" with cost=..., or pass the points.')
    if backend in POINT_BACKENDS and reach is not None:
        raise InputError(f'backend={backend!r} solves balanced problems only; got reach={reach:g}. '
                         'Use backend="tensorized" for unbalanced transport, or omit reach.')
    if backend == "geomloss":
        gl.check_supported(p, metric, scaling)
    if backend == "keops":
        from .solvers import keops

        keops.check_supported(p, metric, minkowski_p)
    if backend == "multiscale":
        from .solvers import multiscale

        multiscale.check_supported(inputs.x, inputs.y, p, metric)
        if any(t.requires_grad for t in (inputs.x, inputs.y, inputs.a, inputs.b)):
            raise InputError('backend="multiscale" computes no gradients; got inputs that require grad. '
                             'Use backend="online" (or "keops") for gradients, or detach the inputs.')
    return Options(p, epsilon, bool(relative), scaling, tol, max_iter, max_size, backend, on_unconverged, reach,
                   progress, metric, minkowski_p)


def resolve(opts: Options, inputs: Inputs, n: int, m: int) -> str:
    """The backend that solves one n x m problem: ``"auto"`` is ``"tensorized"`` while the batch of cost
    matrices holds at most ``max_size`` entries (and always for a given cost or with ``reach``), else ``"online"``."""
    if opts.backend != "auto":
        return opts.backend
    if inputs.cost is not None or opts.reach is not None or inputs.batch * n * m <= opts.max_size:
        return "tensorized"
    return "online"


def guard(opts: Options, inputs: Inputs, shapes, method: str) -> None:
    """The memory guard, on every n x m problem about to be solved, before any of them is built."""
    from .solvers import sinkhorn_geomloss as gl

    alternatives = GEOMLOSS_GUARD if opts.backend == "geomloss" else GUARD_ALTERNATIVES
    for n, m in shapes:
        backend = resolve(opts, inputs, n, m)
        if backend == "tensorized" or (backend == "geomloss" and not gl.keops_available()):
            V.check_size(inputs.batch * n, m, opts.max_size, method, alternatives)


def geometry(inputs: Inputs, opts: Options, metric, minkowski_p):
    """The dense cost (tensorized backend; the given one, if any), or its rows rebuilt on demand (the others)."""
    from .solvers.online import Geometry

    if inputs.cost is not None:
        return Geometry(inputs, None, inputs.cost)
    dense = resolve(opts, inputs, inputs.a.shape[1], inputs.b.shape[1]) == "tensorized"
    cost = ground_cost(inputs.x, inputs.y, opts.p, metric, minkowski_p=minkowski_p) if dense else None
    return Geometry(inputs, partial(ground_cost, p=opts.p, metric=metric, minkowski_p=minkowski_p), cost)


def absolute_epsilon(opts: Options, geometry) -> float:
    if not opts.relative:
        return opts.epsilon
    spread = geometry.spread()
    return opts.epsilon * spread if spread > 0 else opts.epsilon


def potentials(geometry, opts: Options, eps: float, symmetric: bool = False):
    """Potentials of one problem, with the solver ``opts`` asks for; ``opts.on_unconverged`` applied."""
    import torch

    from .solvers import sinkhorn as core
    from .solvers import sinkhorn_geomloss as gl
    from .solvers import unbalanced

    inputs = geometry.inputs
    if opts.reach is not None:
        pot = unbalanced.solve(geometry.dense, inputs.a, inputs.b, eps, opts.penalty, scaling=opts.scaling,
                               eps_start=max(geometry.spread(), eps), tol=opts.tol, max_iter=opts.max_iter,
                               progress=opts.progress)
        what = "largest change of the potentials over epsilon"
    elif geometry.dense is not None:
        pot = _balanced(core, geometry, opts, eps, symmetric)
        what = "L1 marginal error"
    elif opts.backend == "multiscale":
        from .solvers import multiscale

        pot, truncation = multiscale.solve(inputs.x, inputs.y, inputs.a, inputs.b, eps, p=opts.p, tol=opts.tol,
                                           max_iter=opts.max_iter, scaling=opts.scaling, progress=opts.progress,
                                           symmetric=symmetric)
        pot = replace(pot, truncation=truncation)
        what = "L1 marginal error on the kept pairs (or a truncation test failed)"
    elif opts.backend != "geomloss":
        from . import _entropic_online

        pot = _entropic_online.solve(geometry, opts, eps, symmetric)
        what = "L1 marginal error"
    else:
        with torch.no_grad():
            pot = gl.potentials(inputs.x, inputs.y, inputs.a, inputs.b, eps, opts.p, opts.scaling, opts.tol,
                                opts.max_iter, geometry.rows, symmetric)
        what = "L1 marginal error"
    if not pot.converged:
        unconverged(opts, f"Sinkhorn stopped after {pot.n_iter} iterations (max_iter={opts.max_iter}) with {what} "
                    f"{float(pot.marginal_error.max()):.3g}", f"epsilon={eps:.3g}")
    return pot


def _balanced(core, geometry, opts: Options, eps: float, symmetric: bool):
    """The balanced solver on C - min C when C has negative entries (the plan is the same, the potentials
    shift by min C): a kernel exp(-C / eps) that would overflow at the first iteration is never built."""
    cost, inputs = geometry.dense, geometry.inputs
    shift = min(float(cost.detach().min()), 0.0)
    with warnings.catch_warnings():  # convergence is reported by the caller, as it asked
        warnings.simplefilter("ignore", ConvergenceWarning)
        pot = core.solve(cost.detach() - shift if shift else cost, inputs.a, inputs.b, eps, symmetric=symmetric,
                         scaling=opts.scaling, eps_start=max(geometry.spread(), eps), tol=opts.tol,
                         max_iter=opts.max_iter, progress=opts.progress)
    if not shift:
        return pot
    row_cost = None if pot.row_cost is None else pot.row_cost + shift
    return replace(pot, f=pot.f + shift, row_cost=row_cost)


def entropic_cost(pot, geometry):
    """OT_eps of solved potentials: on the kept pairs of a multiscale solve, else over every pair."""
    from .solvers import online

    if pot.truncation is not None:
        return pot.truncation.entropic_cost(pot, geometry.inputs.a, geometry.inputs.b)
    return online.entropic_cost(pot, geometry)


def transport_cost(pot, geometry, opts: Options):
    """<P_eps, C> of solved potentials (differentiable with autograd on, except multiscale)."""
    from .solvers import online

    if pot.truncation is not None:
        return pot.truncation.transport_cost(pot, geometry.inputs.a, geometry.inputs.b)
    inputs = geometry.inputs
    if geometry.dense is None and not geometry.tracks_grad() and resolve(opts, inputs, *geometry.shape) == "keops":
        from .solvers import keops
        from .solvers.sinkhorn_ops import safe_log

        softmin = keops.KeOpsSoftmin(inputs.x, inputs.y, opts.p, opts.metric, opts.minkowski_p)
        return softmin.plan_statistics(pot.f, pot.g, safe_log(inputs.a), safe_log(inputs.b), pot.epsilon)[0]
    return online.transport_cost(pot, geometry, partial(inexact_gradient, opts, pot.epsilon))


def unconverged(opts: Options, what: str, where: str, residual_tol: float | None = None) -> None:
    tol = opts.tol if residual_tol is None else residual_tol
    message = (f"{what} > tol={tol:g} ({where}); it must reach tol. Raise max_iter, increase epsilon or loosen tol, "
               'or pass on_unconverged="warn" to accept the unconverged result with a ConvergenceWarning.')
    if opts.on_unconverged == "raise":
        raise ConvergenceError(message)
    warnings.warn(message, ConvergenceWarning, stacklevel=5)


def inexact_gradient(opts: Options, eps: float, residual: float, tol: float) -> None:
    unconverged(opts, f"the gradient of transport_cost (conjugate gradients on its adjoint system) stopped at "
                f"relative residual {residual:.3g}", f"epsilon={eps:.3g}", residual_tol=tol)


def out(t, inputs: Inputs):
    t = t if inputs.batched else t[0]
    if inputs.like is not None:
        return t.to(inputs.out_dtype)
    arr = t.detach().cpu().numpy().astype(inputs.out_dtype)
    return arr if arr.ndim else float(arr)
