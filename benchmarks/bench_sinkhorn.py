"""Sinkhorn against POT's log-domain solver and GeomLoss's tensorized backend, in one run.

    python benchmarks/bench_sinkhorn.py            # n = 1000 on every cloud, then n = 4000 uniform
    python benchmarks/bench_sinkhorn.py --small    # n = 1000 only
    python benchmarks/bench_sinkhorn.py --large    # n = 4000 uniform only

Conventions: cost C = |x - y|^2 (p = 2), epsilon = 0.05 on that cost.  GeomLoss uses
|x - y|^2 / 2, so it gets blur = sqrt(epsilon / 2) and its value is doubled.  Clouds (d = 3):
uniform in a cube against a cube shifted by 0.2; N(0, I) against N(0.5 1, I); three tight clusters
against three spread ones; a uniform cube against a copy shifted by 2 (far apart).  Every ratio,
iteration count and error comes from the same process run.  Errors are relative to otdist run
to a marginal tolerance of 1e-11; POT runs with its default threshold 1e-9, at most 2 000
iterations (its iteration count is shown).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import ot
import torch
from geomloss import SamplesLoss

sys.path.insert(0, str(Path(__file__).parent))
import otdist  # noqa: E402
from _timing import best_time  # noqa: E402

EPS = 0.05
POT_MAX_ITER = 2_000
REFERENCE_TOL = 1e-11
REFERENCE_MAX_ITER = 20_000


def clouds(kind: str, n: int, rng: np.random.Generator):
    if kind == "gaussian":
        return rng.normal(size=(n, 3)), rng.normal(size=(n, 3)) + 0.5
    if kind == "clustered":
        return (rng.normal(size=(n, 3)) * 0.1 + rng.integers(0, 3, (n, 1)),
                rng.normal(size=(n, 3)) * 0.3 + rng.integers(0, 3, (n, 1)) * 1.2)
    if kind == "shifted":
        return rng.random((n, 3)), rng.random((n, 3)) + 2.0
    return rng.random((n, 3)), rng.random((n, 3)) + 0.2


def run(kind: str, n: int, dtype, with_pot: bool) -> list[str]:
    rng = np.random.default_rng(n)
    x, y = clouds(kind, n, rng)
    xt, yt = torch.tensor(x, dtype=dtype), torch.tensor(y, dtype=dtype)
    name = f"{kind} n={n} {str(dtype).replace('torch.', '')}"
    lines = []
    reference = otdist.sinkhorn(torch.tensor(x), torch.tensor(y), epsilon=EPS, p=2, tol=REFERENCE_TOL, max_iter=REFERENCE_MAX_ITER,
                                on_unconverged="warn")
    ref = float(reference.transport_cost)
    ours = otdist.sinkhorn(xt, yt, epsilon=EPS, p=2, on_unconverged="warn")
    t_ours = best_time(lambda: otdist.sinkhorn(xt, yt, epsilon=EPS, p=2, on_unconverged="warn"), repeat=3)
    err_ours = abs(float(ours.transport_cost) / ref - 1)
    if with_pot:
        a = np.full(n, 1.0 / n)
        cost = ot.dist(x, y)
        out = {}
        t_pot = best_time(lambda: out.setdefault("r", ot.sinkhorn2(a, a, cost, EPS, method="sinkhorn_log",
                                                                     numItermax=POT_MAX_ITER, log=True)), repeat=1)
        value, log = out["r"]
        lines.append(
            f"| {name} | transport cost vs POT sinkhorn_log | {ours.n_iter} ({'ok' if ours.converged else 'NOT converged'}) | "
            f"{t_ours * 1e3:.0f} ms | {log['niter']} | {t_pot * 1e3:.0f} ms | {t_pot / t_ours:.1f} | {err_ours:.1e} | "
            f"{abs(float(value) / ref - 1):.1e} |"
        )
    # Debiased divergence against GeomLoss tensorized at its default scaling 0.5.
    div_ref = float(otdist.sinkhorn_divergence(torch.tensor(x), torch.tensor(y), epsilon=EPS, p=2, tol=REFERENCE_TOL,
                                               max_iter=REFERENCE_MAX_ITER, on_unconverged="warn"))
    t_div = best_time(lambda: otdist.sinkhorn_divergence(xt, yt, epsilon=EPS, p=2, on_unconverged="warn"), repeat=3)
    err_div = abs(float(otdist.sinkhorn_divergence(xt, yt, epsilon=EPS, p=2, on_unconverged="warn")) / div_ref - 1)
    loss = SamplesLoss("sinkhorn", p=2, blur=math.sqrt(EPS / 2), scaling=0.5, backend="tensorized")
    t_geo = best_time(lambda: loss(xt, yt), repeat=3)
    err_geo = abs(2 * float(loss(xt, yt)) / div_ref - 1)
    lines.append(
        f"| {name} | divergence vs GeomLoss (scaling=0.5) | - | {t_div * 1e3:.0f} ms | - | {t_geo * 1e3:.0f} ms | "
        f"{t_geo / t_div:.1f} | {err_div:.1e} | {err_geo:.1e} |"
    )
    return lines


if __name__ == "__main__":
    small, large = "--small" in sys.argv, "--large" in sys.argv
    print("| clouds | case | otdist iterations | otdist | reference iterations | reference | speed-up | "
          "otdist rel. error | reference rel. error |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    cases = [] if large else [(kind, 1000, dtype) for kind in ("uniform", "gaussian", "clustered", "shifted")
                              for dtype in (torch.float64, torch.float32)]
    if not small:
        cases.append(("uniform", 4000, torch.float64))
    for kind, n, dtype in cases:
        for line in run(kind, n, dtype, with_pot=dtype == torch.float64):
            print(line, flush=True)
