"""Multiscale Sinkhorn: the n = 1e5, eps = 0.005 run and the agreement with the online solver.

Points uniform in the unit cube, d = 3, cost |x - y|^2, absolute epsilon, uniform weights.

    python benchmarks/bench_multiscale.py large --n 100000 --eps 0.005 --seed 0
    python benchmarks/bench_multiscale.py agree --n 20000 --eps 0.005 --seed 0
    python benchmarks/bench_multiscale.py kept --n 20000 --seed 0      # kept fraction against epsilon
    python benchmarks/bench_multiscale.py large --n 1000000 --device cuda   # on a GPU (peak GPU memory too)

Each prints one line of JSON: wall time (and the process's CPU time for the solve, less sensitive to other
load on a shared machine), peak RSS (``resource.getrusage``, the whole process), the kept
fraction of the pairs, iterations, the returned marginal error and the truncation's bounds, with the UTC
start time and the load averages (1, 5, 15 min) before and after, so that a timing on a shared machine
can be judged.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import time

import torch

from otdist.solvers import log_sinkhorn, multiscale, online
from otdist.solvers._clusters import pair_cost


def clouds(n: int, d: int, seed: int, dtype):
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(1, n, d, generator=gen, dtype=torch.float64).to(dtype)
    y = torch.rand(1, n, d, generator=gen, dtype=torch.float64).to(dtype)
    w = torch.full((1, n), 1.0 / n, dtype=dtype)
    return x, y, w, w.clone()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_multiscale(x, y, a, b, eps, args):
    start, cpu = time.perf_counter(), time.process_time()
    pot, trunc = multiscale.solve(x, y, a, b, eps, p=2.0, tol=args.tol, max_iter=args.max_iter, scaling=args.scaling)
    solve_s, cpu_s = time.perf_counter() - start, time.process_time() - cpu
    values = {"entropic_cost": float(trunc.entropic_cost(pot, a, b)),
              "transport_cost": float(trunc.transport_cost(pot, a, b))}
    mass, cost = trunc.dropped(pot)
    return pot, {"solve_s": round(solve_s, 1), "solve_cpu_s": round(cpu_s, 1), "values_s": round(time.perf_counter() - start - solve_s, 1),
                 "n_iter": pot.n_iter, "converged": pot.converged, "marginal_error": float(pot.marginal_error.max()),
                 "kept_fraction": round(trunc.kept_fraction, 4), "refinements": trunc.refinements,
                 "dropped_mass_bound": mass, "dropped_cost_bound": cost, **values}


def run_online(x, y, a, b, eps, args):
    start = time.perf_counter()
    cost_rows = lambda i0, i1: pair_cost(x[0, i0:i1], y[0], 2.0, x[0].mean(dim=0))[None]  # noqa: E731
    soft = online.BlockSoftmin(cost_rows, x.shape[1], y.shape[1], x.dtype)
    pot = log_sinkhorn.solve(soft, a, b, eps, scaling=args.scaling, eps_start=3.0, tol=args.tol, max_iter=args.max_iter)
    f = soft.rows(pot.g, b.log(), eps)
    entropic = float((a.double() * f.double()).sum() + (b.double() * pot.g.double()).sum())
    transport = float(online.plan_statistics(cost_rows, x.shape[1], y.shape[1], a.log(), b.log(), pot.f, pot.g, eps,
                                             False)[0])
    return {"solve_s": round(time.perf_counter() - start, 1), "n_iter": pot.n_iter, "converged": pot.converged,
            "marginal_error": float(pot.marginal_error.max()), "entropic_cost": entropic, "transport_cost": transport}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("large", "agree", "kept"))
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--eps", type=float, default=0.005)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tol", type=float, default=1e-4)
    parser.add_argument("--scaling", type=float, default=0.5)
    parser.add_argument("--max-iter", type=int, default=2000)
    parser.add_argument("--float64", action="store_true", help="float64 points (default float32)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dtype = torch.float64 if args.float64 else torch.float32
    x, y, a, b = (t.to(args.device) for t in clouds(args.n, 3, args.seed, dtype))
    row = {"mode": args.mode, "n": args.n, "eps": args.eps, "seed": args.seed, "dtype": str(dtype), "tol": args.tol,
           "device": args.device, "threads": args.threads,
           "started_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
           "load_before": [round(v, 2) for v in os.getloadavg()]}
    if args.mode == "kept":
        for eps in (0.05, 0.02, 0.01, 0.005, 0.002):
            _, result = run_multiscale(x, y, a, b, eps, args)
            print(json.dumps({**row, "eps": eps, **result}), flush=True)
        return
    _, result = run_multiscale(x, y, a, b, args.eps, args)
    row.update(multiscale=result, peak_rss_mb=round(peak_rss_mb(), 1))
    if x.is_cuda:
        row.update(peak_gpu_mb=round(torch.cuda.max_memory_allocated() / 2**20, 1))
    if args.mode == "agree":
        reference = run_online(x, y, a, b, args.eps, args)
        row.update(online=reference, relative_difference={
            key: abs(result[key] - reference[key]) / abs(reference[key]) for key in ("entropic_cost", "transport_cost")})
    row.update(load_after=[round(v, 2) for v in os.getloadavg()])
    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
