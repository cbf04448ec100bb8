"""The online backends of :mod:`otdist.entropic`: Sinkhorn on c-transforms that never store the cost matrix.

:func:`softmin` builds the c-transforms of a problem (KeOps reductions for ``backend="keops"``, torch
blocks of rows otherwise); :func:`solve` runs :mod:`otdist.solvers.log_sinkhorn` on them, with the
symmetric iteration for a measure against a permuted copy of itself.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import numpy as np

from ._entropic_setup import resolve

#: The online solver computes its first iterations' costs from float32 points while their largest centred
#: coordinate lies in this range: its square (inside every distance) stays within float32's (1e-38 to 3e38).
FLOAT32_COORDINATES = (1e-15, 1e15)


def softmin(geometry, opts):
    """The c-transforms of a problem whose cost is not stored: KeOps (``backend="keops"``) or row blocks."""
    import torch

    from .solvers import online

    inputs, (n, m) = geometry.inputs, geometry.shape
    if resolve(opts, inputs, n, m) == "keops":
        from .solvers import keops

        return keops.KeOpsSoftmin(inputs.x, inputs.y, opts.p, opts.metric, opts.minkowski_p)
    lower = None
    if inputs.x.dtype == torch.float64 and isinstance(opts.metric, str):
        lower = partial(_float32_softmin, geometry)
    return online.BlockSoftmin(lambda i0, i1: geometry.rows(i0, i1).detach(), n, m, inputs.x.dtype, lower)


def _float32_softmin(geometry):
    """The row-block softmin on float32 copies of the points, centred on their common mean (the named ground
    metrics are norms of x - y), for the first iterations of a float64 problem; None where the squared
    coordinates would leave float32's range (distances are computed from them)."""
    import torch

    from .solvers import online

    x, y = geometry.inputs.x.detach(), geometry.inputs.y.detach()
    centre = torch.cat([x, y], dim=1).mean(dim=1, keepdim=True)
    x, y = x - centre, y - centre
    extent = max(float(x.abs().max()), float(y.abs().max()))
    low, high = FLOAT32_COORDINATES
    if not low <= extent <= high:
        return None
    x, y = x.float(), y.float()
    return online.BlockSoftmin(lambda i0, i1: geometry.cost_of(x[:, i0:i1], y), *geometry.shape, torch.float32)


def solve(geometry, opts, eps: float, symmetric: bool):
    """Log-domain Sinkhorn on c-transforms evaluated without the n x m cost (:mod:`otdist.solvers.log_sinkhorn`).

    A measure against a permuted copy of itself (a named, hence symmetric, ground metric) is solved as
    OT_eps(a, a) by the symmetric iteration, its g put in the copy's order: there the plan nears a
    permutation and the alternating iteration crawls.
    """
    from .solvers import log_sinkhorn

    inputs = geometry.inputs
    perm = None if symmetric or not isinstance(opts.metric, str) else _copy_permutation(inputs)
    if perm is not None:
        geometry = type(geometry)(inputs.self_problem(True), geometry.cost_of)
    pot = log_sinkhorn.solve(softmin(geometry, opts), geometry.inputs.a, geometry.inputs.b, eps,
                             scaling=opts.scaling, eps_start=max(_cost_scale(geometry, opts), eps), tol=opts.tol,
                             max_iter=opts.max_iter, symmetric=symmetric or perm is not None, progress=opts.progress)
    return pot if perm is None else replace(pot, g=pot.g.gather(1, perm))


def _cost_scale(geometry, opts) -> float:
    """An upper bound on the largest cost, where epsilon-scaling starts, without a pass over the n x m costs: the
    cost between opposite corners of the points' bounding box (each named metric is a coordinate-wise monotone
    norm of x - y, largest there); the exact spread (one pass) for a callable metric."""
    import torch

    if not isinstance(opts.metric, str):
        return geometry.spread()
    x, y = geometry.inputs.x.detach(), geometry.inputs.y.detach()
    lo = torch.minimum(x.amin(dim=1, keepdim=True), y.amin(dim=1, keepdim=True))
    hi = torch.maximum(x.amax(dim=1, keepdim=True), y.amax(dim=1, keepdim=True))
    return float(geometry.cost_of(lo.double(), hi.double()).max())


def _copy_permutation(inputs):
    """perm (B, m) with y[:, j] = x[:, perm[:, j]] exactly and b[:, j] = a[:, perm[:, j]] within a few ulps
    (:func:`~otdist.solvers.sinkhorn_ops.same_weights`), or None if y is not such a permuted copy of x (rows
    matched by a lexicographic sort, O(n log n d))."""
    import torch

    if inputs.x.shape != inputs.y.shape:
        return None
    from .solvers.sinkhorn_ops import same_weights

    x, y = (t.detach().cpu().numpy() for t in (inputs.x, inputs.y))
    perms = []
    for k in range(x.shape[0]):
        order_x, order_y = np.lexsort(x[k].T[::-1]), np.lexsort(y[k].T[::-1])
        if not np.array_equal(x[k][order_x], y[k][order_y]):
            return None
        perm = np.empty_like(order_y)
        perm[order_y] = order_x
        perms.append(perm)
    perm = torch.as_tensor(np.stack(perms), device=inputs.b.device)
    return perm if same_weights(inputs.a.gather(1, perm), inputs.b) else None
