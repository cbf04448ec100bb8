r"""Entropic optimal transport: ``sinkhorn``, ``sinkhorn_divergence`` and ``method="sinkhorn"``.

Conventions, for the cost ``C_ij = d(x_i, y_j) ** p`` and ``eps`` absolute, in the units of C:

* ``transport_cost`` = ``<P_eps, C>`` = POT's ``ot.sinkhorn2`` = ``ot.solve(C, a, b, reg=eps).value_linear``;
  ``value`` = ``transport_cost ** (1/p)``;
* ``entropic_cost`` = ``OT_eps = <P_eps, C> + eps KL(P_eps || a (x) b)`` = ``ot.solve(C, a, b, reg=eps).value``;
* ``sinkhorn_divergence`` = ``OT_eps(a, b) - (OT_eps(a, a) + OT_eps(b, b)) / 2``: no POT counterpart
  (``ot.bregman.empirical_sinkhorn_divergence`` debiases ``<P_eps, C>`` and clips at 0);
* GeomLoss's cost is ``|x - y|^p / p`` (half ours at p = 2) and its epsilon ``blur ** p``: our
  ``eps = p * blur ** p``, and our values are p times GeomLoss's (p = 1, 2).

``cost=C`` (with ``x = y = None``) solves the problem on a given (n, m) or (B, n, m) cost matrix, any
real entries, as POT's ``ot.sinkhorn(a, b, C, eps)`` for histograms on a shared support; ``value`` is
then ``<P_eps, C>`` itself (no root).

``reach=rho`` relaxes each marginal constraint to a penalty ``lam KL(. || .)`` with ``lam = rho ** p``
(:mod:`otdist.solvers.unbalanced`); the weights are then masses, not normalised.  ``entropic_cost`` and
``value`` are the whole objective ``UOT_eps = <P, C> + eps KL(P || a (x) b) + lam KL(P 1 || a) +
lam KL(P^T 1 || b)`` (generalized KL), since a plan of mass other than 1 has no W_p.  POT:
``ot.unbalanced.sinkhorn_unbalanced(a, b, C, eps, reg_m=lam)`` (``reg_type="kl"``) is the plan;
GeomLoss (half cost at p = 2): ``blur = (eps / p) ** (1 / p)``, ``reach = (lam / p) ** (1 / p)``.

``relative=True`` (and the default epsilon, 1%) makes ``epsilon`` a fraction of the cost spread
``max C - min C``, which, like the entropic plan, does not change when a constant is added to C.
When every cost is equal the plan is ``a (x) b`` whatever epsilon, and the fraction is used as is.

Reaching ``max_iter`` before the L1 marginal error of the returned plan is below ``tol`` (unbalanced:
before an iteration changes the potentials by at most ``tol * eps``) raises
:class:`otdist.ConvergenceError` (``on_unconverged="raise"``, the default) or returns the result with
a :class:`otdist.ConvergenceWarning` (``on_unconverged="warn"``).

Gradients (torch input) flow to the points and weights: by the envelope theorem for ``entropic_cost``
and ``sinkhorn_divergence``; by implicit differentiation of the Sinkhorn fixed point for
``transport_cost`` and ``value``, which are not stationary in the potentials
(:func:`otdist.solvers.online.linear_cost`).  Unbalanced: ``value`` and ``entropic_cost`` by the
envelope theorem; ``transport_cost`` carries no gradient.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import _entropic_setup as S
from . import registry
from ._entropic_method import sinkhorn_method
from .cost import DEFAULT_MAX_SIZE, Metric

#: ... for the divergence, whose debiasing cancels the values to far below the value error that
#: the default tolerance allows (a permuted copy must come out within 1e-12 of the cost spread).
DIVERGENCE_TOL = {"float64": 1e-10, "float32": 1e-4}
#: The fraction of the cost spread (max C - min C) used as epsilon when none is given.
DEFAULT_RELATIVE_EPSILON = S.DEFAULT_RELATIVE_EPSILON
DEFAULT_MAX_ITER = 10_000
DEFAULT_SCALING = 0.1


@dataclass(frozen=True)
class SinkhornResult:
    """Solution of an entropic optimal-transport problem.

    Attributes
    ----------
    value
        ``transport_cost ** (1/p)``: the Sinkhorn approximation of W_p; ``transport_cost`` itself for a
        given cost matrix; ``entropic_cost`` with ``reach`` (unbalanced).
    transport_cost
        ``<P_eps, C>``, the cost of the entropic plan (POT's ``sinkhorn2``, ``ot.solve(...).value_linear``).
    entropic_cost
        ``OT_eps = <P_eps, C> + eps KL(P_eps || a (x) b)`` (POT's ``ot.solve(..., reg=eps).value``);
        with ``reach``, the unbalanced objective, its two marginal penalties included.
    potentials
        Dual potentials (f, g), shapes (n,) and (m,) (or (B, n), (B, m) for batches).
    epsilon
        The absolute regularisation used.
    n_iter, converged, marginal_error
        Iterations (all epsilon stages), whether the L1 marginal error of the returned plan reached
        ``tol``, and that error (unbalanced: the last iteration's largest change of the potentials over
        epsilon).
    reach
        The marginal relaxation of an unbalanced problem, or None.
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
    reach: float | None = None
    _state: tuple = field(repr=False, compare=False, default=())

    def plan(self):
        """The entropic coupling P_eps, computed on demand (n x m, or B x n x m)."""
        from . import _validation as V
        from .solvers import sinkhorn_ops as core

        pot, geometry, max_size = self._state
        inputs = geometry.inputs
        V.check_size(inputs.batch * geometry.shape[0], geometry.shape[1], max_size, "SinkhornResult.plan", "the potentials")
        return S.out(core.log_plan(pot, geometry.full().detach(), inputs.a.detach(), inputs.b.detach()).exp(), inputs)


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
    backend: str = "auto",
    on_unconverged: str = "raise",
    cost=None,
    reach: float | None = None,
    progress: bool = False,
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
        ``None`` (both) with ``cost``.
        float32 and float64 are kept; float16/bfloat16 are computed in float32 and integers in the
        default float; results come back in the input's floating dtype.
    a, b
        Weights ``(n,)``/``(m,)`` or ``(B, n)``/``(B, m)``, normalised (masses, kept as given, with
        ``reach``); uniform (total mass 1) when omitted.
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
        Stop when the L1 marginal error is below ``tol`` (default 1e-8 in float64, 1e-4 in float32);
        with ``reach``, when an iteration changes the potentials by at most ``tol * epsilon``.
    max_iter
        Iteration cap.
    max_size
        The most cost entries (B * n * m) the tensorized backend may hold: ``"auto"`` goes online
        above it, ``"tensorized"`` refuses (checked before anything of that size is allocated).
    backend
        ``"auto"`` (default): ``"tensorized"`` while the cost matrix holds at most ``max_size``
        entries (always for a given ``cost`` or with ``reach``), ``"online"`` above.
        ``"tensorized"`` (``"torch"`` is its older name): otdist's solver on the dense cost matrix.
        ``"online"``: log-domain Sinkhorn whose c-transforms rebuild the cost block of rows by block
        of rows from the points (memory O((n + m) d) plus one block), to the same ``tol``.
        ``"keops"``: the same on KeOps reductions (``pip install otdist[keops]``).
        ``"multiscale"``: coarse-to-fine epsilon-scaling with kernel truncation, for d <= 3
        (:mod:`otdist.solvers.multiscale`).
        ``"geomloss"``: GeomLoss's epsilon-scaling (euclidean, p = 1 or 2) as a warm start, then
        log-domain iterations to ``tol`` on blocks of rows of the cost.
    on_unconverged
        ``"raise"`` (default): :class:`otdist.ConvergenceError` when ``tol`` is not reached within
        ``max_iter``. ``"warn"``: return the unconverged result with a :class:`otdist.ConvergenceWarning`
        (e.g. in a training loop).
    cost
        A given cost matrix ``(n, m)`` or ``(B, n, m)``, any real entries (e.g. histograms on a shared
        support, as POT's ``ot.sinkhorn(a, b, C, eps)``), instead of points: ``x = y = None``, ``p = 1``,
        backend ``"tensorized"``; ``value`` is ``<P_eps, C>``. A relative epsilon is a fraction of ``max C - min C``.
    reach
        Unbalanced transport: each marginal constraint becomes the penalty ``reach ** p * KL``
        (generalized KL) and ``value`` the whole objective; see the module documentation. Backend
        ``"tensorized"`` only. ``None`` (default): balanced.
    progress
        Show a progress bar (tqdm) over the iterations once a solve has run a second.

    Returns
    -------
    SinkhornResult
        ``value``, ``transport_cost``, ``entropic_cost``, ``potentials``, ``plan()``, ...  With torch
        input all are differentiable in the points and weights: ``entropic_cost`` by the envelope
        theorem, ``transport_cost`` and ``value`` by implicit differentiation of the Sinkhorn fixed point.

    Raises
    ------
    InputError
        Invalid inputs or options (e.g. ``reach <= 0``, points and ``cost`` together).
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
    from .solvers import unbalanced

    inputs = S.inputs(x, y, a, b, cost, masses=reach is not None)
    opts = S.options(inputs, p, epsilon, relative, metric, scaling, tol, max_iter, max_size, backend, on_unconverged,
                     reach, progress, minkowski_p)
    S.guard(opts, inputs, [(inputs.a.shape[1], inputs.b.shape[1])], "sinkhorn")
    geometry = S.geometry(inputs, opts, metric, minkowski_p)
    pot = S.potentials(geometry, opts, S.absolute_epsilon(opts, geometry))
    if opts.reach is not None:
        transport_cost = unbalanced.transport_cost(pot, geometry.dense, inputs.a, inputs.b)
        entropic = value = unbalanced.objective(pot, geometry.dense, inputs.a, inputs.b, opts.penalty)
    else:
        transport_cost = S.transport_cost(pot, geometry, opts)
        entropic = S.entropic_cost(pot, geometry)
        root = opts.p == 1 or inputs.cost is not None
        value = transport_cost if root else transport_cost.clamp_min(0) ** (1.0 / opts.p)
    return SinkhornResult(
        value=S.out(value, inputs),
        transport_cost=S.out(transport_cost, inputs),
        entropic_cost=S.out(entropic, inputs),
        potentials=(S.out(pot.f, inputs), S.out(pot.g, inputs)),
        epsilon=pot.epsilon,
        p=opts.p,
        n_iter=pot.n_iter,
        converged=pot.converged,
        marginal_error=S.out(pot.marginal_error, inputs),
        reach=opts.reach,
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
    backend: str = "auto",
    on_unconverged: str = "raise",
    reach: float | None = None,
    progress: bool = False,
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

    With ``reach`` (unbalanced, weights as masses), ``S = UOT_eps(a, b) - ½ UOT_eps(a, a) - ½ UOT_eps(b, b)
    + (eps / 2) (m(a) - m(b))^2`` (Séjourné, Feydy, Vialard, Trouvé & Peyré, 2019), GeomLoss's debiased
    value with ``reach=(reach ** p / p) ** (1 / p)``, times p.

    References
    ----------
    Séjourné, Feydy, Vialard, Trouvé, Peyré, *Sinkhorn Divergences for Unbalanced Optimal Transport*,
    arXiv:1910.12958, 2019.

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
    from .solvers import unbalanced

    inputs = S.inputs(x, y, a, b, masses=reach is not None)
    if tol is None:
        tol = DIVERGENCE_TOL[inputs.dtype_name]
    opts = S.options(inputs, p, epsilon, relative, metric, scaling, tol, max_iter, max_size, backend, on_unconverged,
                     reach, progress, minkowski_p)
    n, m = inputs.a.shape[1], inputs.b.shape[1]
    S.guard(opts, inputs, [(n, m), (n, n), (m, m)], "sinkhorn_divergence")
    geometry = S.geometry(inputs, opts, metric, minkowski_p)
    eps = S.absolute_epsilon(opts, geometry)
    terms = []
    for geom, symmetric in ((geometry, False), (S.geometry(inputs.self_problem(True), opts, metric, minkowski_p), True),
                            (S.geometry(inputs.self_problem(False), opts, metric, minkowski_p), True)):
        pot = S.potentials(geom, opts, eps, symmetric)
        if opts.reach is None:
            terms.append(S.entropic_cost(pot, geom))
        else:
            terms.append(unbalanced.objective(pot, geom.dense, geom.inputs.a, geom.inputs.b, opts.penalty))
    value = terms[0] - 0.5 * (terms[1] + terms[2])
    if opts.reach is not None:
        value = value + 0.5 * eps * (inputs.a.sum(dim=1) - inputs.b.sum(dim=1)) ** 2
    return S.out(value, inputs)


def _divergence_metric(x, y, u_weights=None, v_weights=None, **options):
    """``distance(x, y, metric="sinkhorn", ...)``: the weights as ``u_weights``/``v_weights`` or ``a``/``b``."""
    from .exceptions import InputError

    a, b = options.pop("a", None), options.pop("b", None)
    if (a is not None and u_weights is not None) or (b is not None and v_weights is not None):
        raise InputError("the weights of the sinkhorn metric are given once, as u_weights/v_weights or as a/b; "
                         "got both. Pass one of the two names.")
    a, b = u_weights if a is None else a, v_weights if b is None else b
    return sinkhorn_divergence(x, y, a, b, **registry.ground_metric_options(options))


def _divergence_preflight(x, y, options: dict) -> None:
    """Options :func:`sinkhorn_divergence` does not accept refused before any metric of a comparison runs."""
    options = dict(options)
    for weights, name in (("u_weights", "a"), ("v_weights", "b")):
        if weights in options and name not in options:
            options[name] = options.pop(weights)
    registry.signature_preflight(sinkhorn_divergence)(x, y, registry.ground_metric_options(options))


def absolute_epsilon(x, y, epsilon: float | None = None, relative: bool = False, p: float = 1,
                     ground_metric: Metric = "euclidean", minkowski_p: float | None = None) -> float:
    """The absolute epsilon :func:`sinkhorn_divergence` uses between x and y with these options.

    ``epsilon=None`` is ``DEFAULT_RELATIVE_EPSILON`` (1%) of the cost spread ``max C - min C`` of the x-y
    cost ``C = d(x, y) ** p``; a relative epsilon is that fraction of it (the fraction itself when every
    cost is equal); an absolute one is returned as given. The spread is found by blocks of rows, never
    building C. ``distance(x, y, metric="sinkhorn", epsilon=e)`` then reproduces the default value.
    ``two_sample_test`` and ``pairwise`` resolve a relative epsilon against other spreads (the pooled
    sample; a bound over all the datasets) and report theirs as ``result.epsilon``.

    Examples
    --------
    >>> from otdist.entropic import absolute_epsilon
    >>> absolute_epsilon([[0.0], [1.0]], [[3.0]])  # costs 3 and 2: 1% of their spread 1
    0.01
    """
    inputs = S.inputs(x, y, None, None, masses=False)
    opts = S.options(inputs, p, epsilon, relative, ground_metric, DEFAULT_SCALING, None, DEFAULT_MAX_ITER,
                     DEFAULT_MAX_SIZE, "online", "raise", None, False, minkowski_p)
    return float(S.absolute_epsilon(opts, S.geometry(inputs, opts, ground_metric, minkowski_p)))


registry.register_method(registry.MethodSpec(
    "sinkhorn", sinkhorn_method, "entropic OT (log-domain Sinkhorn); value from the entropic plan's <P, C>",
    exact=False, gradients="values and weights", memory="O(nm), or O((n + m) d) online"))
registry.register_metric(registry.MetricSpec(
    "sinkhorn", _divergence_metric, "Sinkhorn divergence S_eps (debiased entropic OT; eps = 1% of the cost range)",
    kind="divergence", gradients="values and weights", memory="O(nm), or O((n + m) d) online",
    preflight=_divergence_preflight))
