r"""``backend="geomloss"``: GeomLoss computes the Sinkhorn potentials, otdist the reported values.

GeomLoss (``geomloss.SamplesLoss``) runs epsilon-scaling with one Sinkhorn iteration per stage.
With KeOps installed (``pip install pykeops``) it uses its ``"online"`` backend, which never
stores the n x m cost matrix; otherwise its ``"tensorized"`` backend (dense, like ours).

Conventions: GeomLoss's cost is ``|x - y|^p / p`` (``|x - y|`` for p = 1, ``|x - y|^2 / 2`` for
p = 2) and its epsilon is ``blur ** p``; in otdist's units (C = |x - y|^p) that is eps = p blur^p.
For otdist's epsilon we call it with ``blur = (eps / p) ** (1 / p)`` and multiply its potentials by p.
GeomLoss stops after a fixed schedule, typically with an L1 marginal error of 0.1-1 at epsilon
= 1% of the cost scale, so its potentials are a warm start: log-domain Sinkhorn iterations,
row-blocked (:mod:`otdist.solvers.online`), continue from them until the marginal error is below
``tol``, as with the default backend.
"""

from __future__ import annotations

import importlib.util
import math

from .sinkhorn import Potentials
from ..exceptions import InputError, SolverError

#: Ground metrics and orders GeomLoss's built-in costs support.
SUPPORTED_P = (1, 2)


def keops_available() -> bool:
    return importlib.util.find_spec("pykeops") is not None


def check_supported(p: float, metric, scaling: float) -> None:
    if importlib.util.find_spec("geomloss") is None:
        raise InputError('backend="geomloss" needs the geomloss package; it is not installed. '
                         'Install it (pip install geomloss) or use backend="tensorized".')
    if metric != "euclidean" or p not in SUPPORTED_P:
        raise InputError(
            f'backend="geomloss" supports the euclidean metric with p = 1 or 2 (GeomLoss\'s built-in costs); '
            f"got metric={metric!r}, p={p}. Use backend=\"online\" for other costs."
        )
    if not 0 < scaling < 1:
        raise InputError(
            f'backend="geomloss" needs scaling in (0, 1) (GeomLoss always anneals epsilon); got {scaling}. '
            "Use scaling=0.5 (GeomLoss's default) or closer to 1 for more accuracy."
        )


def stages(p: float, diameter: float, blur: float, scaling: float) -> int:
    """Number of Sinkhorn iterations GeomLoss runs: one per epsilon stage, plus the first."""
    if diameter <= blur:
        return 2
    return 2 + math.ceil(p * math.log(diameter / blur) / (p * math.log(1 / scaling)))


def solve(x, y, a, b, eps: float, p: float, scaling: float):
    """(f, g) detached, for C = |x - y|^p at epsilon ``eps``; batched (B, n, d) inputs.

    Non-finite entries of g (zero weights) are set to 0: g is only a warm start for :func:`potentials`.
    """
    import torch
    from geomloss import SamplesLoss

    with torch.no_grad():
        pts = torch.cat([x, y], dim=1)
        diameter = float((pts.amax(dim=(0, 1)) - pts.amin(dim=(0, 1))).norm()) or 1.0
        blur = eps if p == 1 else math.sqrt(eps / 2)
        backend = "online" if keops_available() else "tensorized"
        try:
            loss = SamplesLoss("sinkhorn", p=int(p), blur=blur, scaling=scaling, diameter=diameter, debias=False,
                               potentials=True, backend=backend)
            f, g = loss(a, x, b, y)
        except Exception as exc:  # GeomLoss and KeOps raise many types (compilation, CUDA, shapes)
            raise SolverError(
                f'backend="geomloss" needs GeomLoss (its {backend!r} backend) to compute the potentials; it failed with '
                f'{type(exc).__name__}: {exc}. Use backend="online", or check the GeomLoss/KeOps installation.'
            ) from exc
    factor = 1.0 if p == 1 else 2.0
    g = factor * g.reshape(b.shape)
    return factor * f.reshape(a.shape), torch.where(torch.isfinite(g), g, 0.0), stages(p, diameter, blur, scaling)


def potentials(x, y, a, b, eps: float, p: float, scaling: float, tol: float, max_iter: int, cost_rows,
               symmetric: bool = False) -> Potentials:
    """GeomLoss's potentials, then log-domain iterations (row-blocked) until the marginal error <= tol."""
    from . import online
    from .sinkhorn import safe_log

    _, g, stage_iterations = solve(x, y, a, b, eps, p, scaling)
    n, m = a.shape[1], b.shape[1]
    budget = max(max_iter - stage_iterations, 1)
    f, g, iters, error = online.refine(cost_rows, n, m, safe_log(a), safe_log(b), g, eps, tol, budget, symmetric)
    return Potentials(f, g, eps, stage_iterations + iters, bool((error <= tol).all()), error)
