"""Energy distance and MMD against scipy and GeomLoss, measured in the same run.

    python benchmarks/bench_kernels.py
    python benchmarks/bench_kernels.py --sizes 500 1000 2000 --permutations 1000 --threads 1

On a machine shared with other work, --threads 1 keeps torch's threads from waiting on each other: the
small matrix operations then time what they compute, not the contention.

Every row checks that both sides computed the same number (GeomLoss's SamplesLoss is MMD²/2) before it
reports a time.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import scipy.stats
import torch
from geomloss import SamplesLoss

sys.path.insert(0, str(Path(__file__).parent))
import otdist.kernels as K  # noqa: E402
from _timing import HEADER, best_time, row  # noqa: E402

#: Agreement asked before timing: scipy's 1-D formula to 1e-12; GeomLoss's float64 gaussian MMD² to 1e-9.
SCIPY_RTOL, GEOMLOSS_RTOL = 1e-12, 1e-9


def energy_1d(n: int) -> list[str]:
    rng = np.random.default_rng(0)
    u, v = rng.normal(size=n), rng.normal(1.0, 2.0, size=n)
    uw, vw = rng.random(n), rng.random(n)
    lines = []
    for label, args in (("uniform", (u, v)), ("weighted", (u, v, uw, vw))):
        ours, theirs = K.energy_distance(*args), scipy.stats.energy_distance(*args)
        assert abs(ours - theirs) <= SCIPY_RTOL * theirs, (ours, theirs)
        lines.append(row(f"energy 1-D n={n:.0e} {label} vs scipy.stats.energy_distance",
                         best_time(lambda: K.energy_distance(*args)),
                         best_time(lambda: scipy.stats.energy_distance(*args)), "scipy"))
    return lines


def mmd_against_geomloss(sizes, dims: int = 3, bandwidth: float = 1.0) -> list[str]:
    lines = []
    loss = SamplesLoss("gaussian", blur=bandwidth, backend="tensorized")
    for n in sizes:
        rng = np.random.default_rng(n)
        for dtype in (torch.float64, torch.float32):
            x = torch.tensor(rng.normal(size=(n, dims)), dtype=dtype)
            y = torch.tensor(rng.normal(size=(n, dims)) + 0.3, dtype=dtype)
            ours, theirs = K.mmd(x, y, "gaussian", bandwidth, squared=True), 2 * loss(x, y)
            if dtype == torch.float64:
                assert abs(float(ours) - float(theirs)) <= GEOMLOSS_RTOL * float(ours), (ours, theirs)
            repeat = 3 if n <= 2000 else 1
            lines.append(row(f"MMD² gaussian n=m={n} d={dims} {str(dtype)[6:]} vs SamplesLoss tensorized",
                             best_time(lambda: K.mmd(x, y, "gaussian", bandwidth, squared=True), repeat),
                             best_time(lambda: loss(x, y), repeat), "GeomLoss"))
    return lines


def permutations(n: int, count: int) -> list[str]:
    """count permutation statistics from one pooled matrix, against one mmd() call per permutation."""
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(n, 3)), rng.normal(size=(n, 3)) + 0.2
    z, h = np.vstack([x, y]), K.median_bandwidth(np.vstack([x, y]))
    perms = np.stack([rng.permutation(2 * n) for _ in range(count)])
    pooled = best_time(lambda: K.pooled_statistic(K.pooled_kernel(x, y, "gaussian", h), n, perms), 3)
    sample = perms[: max(1, count // 20)]
    per_call = best_time(lambda: [K.mmd(z[p[:n]], z[p[n:]], "gaussian", h, squared=True) for p in sample], 1)
    return [row(f"{count} permutations, MMD² gaussian n=m={n} d=3: pooled_kernel + pooled_statistic vs mmd() per "
                f"permutation ({len(sample)} timed, scaled x{count / len(sample):g})",
                pooled, per_call * count / len(sample), "mmd() loop")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-1d", type=int, default=1_000_000)
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 1000, 2000])
    parser.add_argument("--permutations", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's own)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(HEADER)
    for line in (*energy_1d(args.n_1d), *mmd_against_geomloss(args.sizes), *permutations(500, args.permutations)):
        print(line, flush=True)


if __name__ == "__main__":
    main()
