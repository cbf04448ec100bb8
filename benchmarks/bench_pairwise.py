"""Pairwise Sinkhorn-divergence matrix: serial against a Dask LocalCluster, and the cost model.

    python benchmarks/bench_pairwise.py                 # timed on 10 of the 40 datasets (a few minutes)
    python benchmarks/bench_pairwise.py --subset 40     # the whole 40 x 40 matrix (tens of minutes)

Datasets: 40 Gaussian clouds of 2000 points in d = 2 (``--datasets``, ``--points``, ``--dim``), each
shifted and scaled at random (seed 0). The metric is the Sinkhorn divergence at p = 2 with epsilon 5%
of the bound on every pair's cost spread, i.e. ``k`` self solves and ``k(k-1)/2`` cross solves.

One thread everywhere: the serial run uses ``max_workers=1`` and one torch/BLAS thread; the workers
(one thread each) inherit ``OMP_NUM_THREADS=MKL_NUM_THREADS=OPENBLAS_NUM_THREADS=1`` from this
script's environment (Dask's nanny sets the same) and the script checks ``torch.get_num_threads()``
in each. The speed-up is measured on ``--subset`` datasets in one run of this script; the full matrix
and a ``--nodes`` cluster are extrapolated with the cost model

    time ~ solves x (mean seconds per solve) / workers

which ignores scheduling (about a millisecond per task in Dask) and the one-off scatter of the
datasets: an estimate, stated as such.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy and torch start their thread pools, here and in the workers

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

RELATIVE_EPSILON = 0.05
P = 2


def datasets(k: int, n: int, d: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {f"cloud{i:02d}": rng.normal(size=(n, d)) * rng.uniform(0.5, 1.5) + rng.normal(scale=2.0, size=d)
            for i in range(k)}


def solves(k: int) -> int:
    """Self solves plus cross solves of the Sinkhorn divergence's k x k matrix."""
    return k + k * (k - 1) // 2


def main() -> None:
    import torch
    from dask.distributed import Client, LocalCluster

    from otdist.pairwise import pairwise

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=40)
    parser.add_argument("--points", type=int, default=2000)
    parser.add_argument("--dim", type=int, default=2)
    parser.add_argument("--subset", type=int, default=10, help="datasets in the timed runs")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--nodes", type=int, default=100, help="workers of the extrapolated cluster")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = datasets(args.datasets, args.points, args.dim)
    subset = dict(list(data.items())[:args.subset])
    # One absolute epsilon for the subset and the full matrix: pairwise's bound on the full set's cost spread.
    union = np.vstack(list(data.values()))
    epsilon = RELATIVE_EPSILON * float(np.linalg.norm(union.max(0) - union.min(0))) ** P
    options = {"epsilon": epsilon, "p": P}

    start = time.perf_counter()
    serial = pairwise(subset, max_workers=1, **options)
    serial_seconds = time.perf_counter() - start

    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        threads = set(client.run(torch.get_num_threads).values())
        pairwise(datasets(2, 50, args.dim, seed=1), client=client, **options)  # workers import torch and otdist
        start = time.perf_counter()
        distributed = pairwise(subset, client=client, **options)
        dask_seconds = time.perf_counter() - start

    per_solve = (serial.seconds.sum() + serial.self_seconds.sum()) / serial.solved
    per_solve_dask = (distributed.seconds.sum() + distributed.self_seconds.sum()) / distributed.solved
    speed_up = serial_seconds / dask_seconds
    full = solves(args.datasets)
    print(f"{args.subset} datasets x {args.points} points, d = {args.dim}, Sinkhorn divergence p = {P}, "
          f"epsilon = {epsilon:.4g} ({RELATIVE_EPSILON:.0%} of the cost-spread bound); {serial.solved} solves")
    print(f"torch threads per worker: {sorted(threads)}; serial: max_workers=1, {torch.get_num_threads()} thread")
    print(f"max |dask - serial| = {np.abs(distributed.matrix - serial.matrix).max():.2e}")
    print("| run | seconds | speed-up |\n| --- | --- | --- |")
    print(f"| serial, 1 thread | {serial_seconds:.1f} | 1.00 |")
    print(f"| LocalCluster({args.workers}), 1 thread each | {dask_seconds:.1f} | {speed_up:.2f} "
          f"({speed_up / args.workers:.0%} of {args.workers}) |")
    print(f"\nmean seconds per solve: {per_solve:.3f} serial, {per_solve_dask:.3f} on the workers "
          f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores: other processes share them)")
    print(f"cost model, {args.datasets} datasets ({full} solves), an estimate:")
    for workers, efficiency in ((1, 1.0), (args.workers, speed_up / args.workers), (args.nodes, 1.0)):
        label = "measured efficiency" if workers == args.workers else "ideal"
        print(f"  {workers:>4} worker(s): {full * per_solve / (workers * efficiency):8.1f} s ({label})")


if __name__ == "__main__":
    main()
