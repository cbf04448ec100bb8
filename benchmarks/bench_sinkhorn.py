"""Sinkhorn against POT's log-domain solver and GeomLoss's tensorized backend, in one run.

    python benchmarks/bench_sinkhorn.py

Conventions: cost C = |x - y|^2 (p = 2), epsilon = 0.05 on that cost.  GeomLoss uses
|x - y|^2 / 2, so it gets blur = sqrt(epsilon / 2) and its value is doubled.
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


def run(n: int, pot_repeat: int) -> list[str]:
    rng = np.random.default_rng(n)
    x, y = rng.random((n, 3)), rng.random((n, 3)) + 0.2
    xt, yt = torch.tensor(x), torch.tensor(y)
    a = np.full(n, 1.0 / n)
    lines = []

    # Transport cost <P_eps, C> against POT sinkhorn_log (default stopping threshold 1e-9).
    cost = ot.dist(x, y)
    pot_value = {}
    t_pot = best_time(lambda: pot_value.setdefault("v", ot.sinkhorn2(a, a, cost, EPS, method="sinkhorn_log")), repeat=pot_repeat)
    t_ours = best_time(lambda: otdist.sinkhorn(xt, yt, epsilon=EPS, p=2), repeat=3)
    converged = otdist.sinkhorn(xt, yt, epsilon=EPS, p=2, tol=1e-13)
    ours = otdist.sinkhorn(xt, yt, epsilon=EPS, p=2)
    ref = float(converged.transport_cost)
    lines.append(
        f"| n={n} transport cost vs POT sinkhorn_log | {t_ours * 1e3:.0f} ms | {t_pot * 1e3:.0f} ms | "
        f"{t_pot / t_ours:.1f} | {abs(float(ours.transport_cost) / ref - 1):.1e} | {abs(float(pot_value['v']) / ref - 1):.1e} |"
    )

    # Debiased divergence against GeomLoss tensorized, default scaling 0.5 and a tighter 0.9.
    reference = float(otdist.sinkhorn_divergence(xt, yt, epsilon=EPS, p=2, tol=1e-13))
    t_ours = best_time(lambda: otdist.sinkhorn_divergence(xt, yt, epsilon=EPS, p=2), repeat=3)
    err_ours = abs(float(otdist.sinkhorn_divergence(xt, yt, epsilon=EPS, p=2)) / reference - 1)
    for scaling in (0.5, 0.9):
        loss = SamplesLoss("sinkhorn", p=2, blur=math.sqrt(EPS / 2), scaling=scaling, backend="tensorized")
        t_geo = best_time(lambda: loss(xt, yt), repeat=3)
        err_geo = abs(2 * float(loss(xt, yt)) / reference - 1)
        lines.append(
            f"| n={n} divergence vs GeomLoss (scaling={scaling}) | {t_ours * 1e3:.0f} ms | {t_geo * 1e3:.0f} ms | "
            f"{t_geo / t_ours:.1f} | {err_ours:.1e} | {err_geo:.1e} |"
        )
    return lines


if __name__ == "__main__":
    print("| case | otdist | reference | speed-up | otdist rel. error | reference rel. error |")
    print("| --- | --- | --- | --- | --- | --- |")
    for n, pot_repeat in ((1000, 2), (4000, 1)):
        for line in run(n, pot_repeat):
            print(line, flush=True)
