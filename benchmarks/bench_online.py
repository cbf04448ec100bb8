"""Online Sinkhorn at scale: otdist's backends against GeomLoss and OTT-JAX, time and peak memory.

    nice -n 10 python benchmarks/bench_online.py [--sizes 10000 30000 100000] [--cap 300] [--seed 0] [--device cpu]

Points uniform in the unit cube, d = 3, float32, cost |x - y|^2 (p = 2), absolute epsilon 0.05,
uniform weights.  Each run is a fresh subprocess (its peak RSS is its own, read from
``resource.getrusage`` right after the solve) killed after ``--cap`` seconds:

* ``tensorized``: ``otdist.sinkhorn(..., backend="tensorized")`` on the dense matrix (only where
  it fits: DENSE_LIMIT entries);
* ``online`` / ``keops``: the log-domain solver of ``backend="online"`` / ``"keops"``
  (:func:`otdist.solvers.log_sinkhorn.solve` on :class:`~otdist.solvers.online.BlockSoftmin` /
  :class:`~otdist.solvers.keops.KeOpsSoftmin`, epsilon-scaling from max C as ``otdist.sinkhorn``),
  then <P, C> by :meth:`KeOpsSoftmin.plan_statistics` (on a GPU: by torch row blocks for ``online``);
  float32 tol 1e-4 (otdist's default);
* ``geomloss-online`` / ``geomloss-tensorized``: ``SamplesLoss("sinkhorn", p=2, blur=sqrt(eps / 2),
  debias=False, potentials=True)`` (its cost is |x - y|^2 / 2: potentials x 2); its fixed
  epsilon schedule (scaling 0.5) sets its iterations;
* ``ott``: OTT-JAX ``PointCloud(x, y, epsilon=eps, batch_size=...)`` (online) and ``Sinkhorn`` with
  threshold 1e-4, when ott-jax is installed.

The L1 marginal error is computed, outside the timed part, from each library's returned potentials
by otdist's KeOps plan statistics (rows and columns; otdist's rows are exact by construction); with
``--device cuda`` the points, weights and solves live on the GPU, the times include a final
synchronisation, the GPU memory peak is read right after the solve, and the error is computed by
torch row blocks on the GPU (KeOps is not needed there).
A run stopped at the cap reports its time per iteration and the total extrapolated to the iterations
its backend needed at the largest size it finished (an estimate, marked as such).
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time

EPS = 0.05
D = 3
TOL = 1e-4
#: otdist's default epsilon-scaling ratio and iteration cap (otdist.entropic).
SCALING, MAX_ITER = 0.1, 10_000
#: Largest n * m the dense solvers are run at (float32: 4 bytes each, several temporaries).
DENSE_LIMIT = 1.5e8
#: OTT-JAX's online row batch.
OTT_BATCH = 1024
BACKENDS = ("tensorized", "online", "keops", "geomloss-online", "geomloss-tensorized", "ott")


class CapReached(Exception):
    pass


def points(n: int, seed: int):
    import numpy as np

    rng = np.random.default_rng(seed)
    return rng.random((n, D), dtype=np.float32), rng.random((n, D), dtype=np.float32)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def plan_sums(x, y, f, g, log_a, log_b):
    """Column sums of P = exp(log_a + log_b + (f + g - C) / eps): KeOps on the CPU, torch row blocks on a GPU."""
    from otdist.cost import ground_cost
    from otdist.solvers import online
    from otdist.solvers.keops import KeOpsSoftmin

    if x.device.type == "cpu":
        return KeOpsSoftmin(x, y, 2, "euclidean").plan_statistics(f, g, log_a, log_b, EPS)[1]
    cost_rows = lambda i0, i1: ground_cost(x[:, i0:i1], y, 2)  # noqa: E731
    return online.plan_statistics(cost_rows, x.shape[1], y.shape[1], log_a, log_b, f, g, EPS, False)[1]


def marginal_error(x, y, f, g, log_a, log_b, target=None) -> float:
    """L1 error of both marginals of P = exp(log_a + log_b + (f + g - C) / eps), by KeOps reductions
    (torch blocks on a GPU), against the weights exp(log_a), exp(log_b) (or the uniform weights,
    ``target="uniform"``)."""
    import torch

    device = x.device if isinstance(x, torch.Tensor) else "cpu"
    x, y = (torch.as_tensor(t, device=device)[None].double() for t in (x, y))
    f, g, log_a, log_b = (torch.as_tensor(t, device=device).double().reshape(1, -1) for t in (f, g, log_a, log_b))
    columns = plan_sums(x, y, f, g, log_a, log_b)
    rows = plan_sums(y, x, g, f, log_b, log_a)
    a, b = (torch.full_like(log_a, 1.0 / log_a.shape[1]), torch.full_like(log_b, 1.0 / log_b.shape[1])) \
        if target == "uniform" else (log_a.exp(), log_b.exp())
    return float((rows - a).abs().sum() + (columns - b).abs().sum())


class Capped:
    """A softmin that raises CapReached once ``cap`` seconds have passed; counts the row passes."""

    def __init__(self, softmin, start: float, cap: float):
        self.softmin, self.start, self.cap, self.passes = softmin, start, cap, 0
        self.shape, self.dtype = softmin.shape, softmin.dtype

    def _check(self):
        if time.perf_counter() - self.start > self.cap:
            raise CapReached

    def rows(self, g, log_b, eps):
        self._check()
        if self.passes:  # progress of a run the parent may kill in the middle of a pass
            print(f"ITERATIONS {self.passes} {time.perf_counter() - self.start:.3f} {peak_rss_mb():.1f}", flush=True)
        self.passes += 1
        return self.softmin.rows(g, log_b, eps)

    def columns(self, f, log_a, eps):
        self._check()
        return self.softmin.columns(f, log_a, eps)


def synchronize(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def peak_gpu(device: str) -> dict:
    """The GPU memory peak so far (read right after a solve, before the marginal check), on a GPU."""
    import torch

    return {"peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20} if device.startswith("cuda") else {}


def run_otdist_online(backend: str, x, y, cap: float, device: str) -> dict:
    import torch

    from otdist.cost import ground_cost
    from otdist.solvers import log_sinkhorn, online
    from otdist.solvers.keops import KeOpsSoftmin

    start = time.perf_counter()
    xt, yt = torch.as_tensor(x, device=device)[None], torch.as_tensor(y, device=device)[None]
    n, m = xt.shape[1], yt.shape[1]
    a, b = torch.full((1, n), 1.0 / n, device=device), torch.full((1, m), 1.0 / m, device=device)
    if backend == "keops":
        softmin = KeOpsSoftmin(xt, yt, 2, "euclidean")
    else:
        softmin = online.BlockSoftmin(lambda i0, i1: ground_cost(xt[:, i0:i1], yt, 2), n, m, torch.float32)
    capped = Capped(softmin, start, cap)
    spread = float(D)  # max C on the unit cube (the solver starts epsilon-scaling there)
    try:
        pot = log_sinkhorn.solve(capped, a, b, EPS, scaling=SCALING, eps_start=spread, tol=TOL, max_iter=MAX_ITER)
    except CapReached:
        wall = time.perf_counter() - start
        return {"capped": True, "wall_s": wall, "iterations": capped.passes, "peak_rss_mb": peak_rss_mb(),
                "s_per_iteration": wall / max(capped.passes, 1), **peak_gpu(device)}
    if backend == "keops" or xt.device.type == "cpu":
        value = KeOpsSoftmin(xt, yt, 2, "euclidean").plan_statistics(pot.f, pot.g, a.log(), b.log(), EPS)[0]
    else:
        cost_rows = lambda i0, i1: ground_cost(xt[:, i0:i1], yt, 2)  # noqa: E731
        value = online.plan_statistics(cost_rows, n, m, a.log(), b.log(), pot.f, pot.g, EPS, False)[0]
    value = float(value)
    wall = time.perf_counter() - start
    out = {"capped": False, "wall_s": wall, "iterations": pot.n_iter, "peak_rss_mb": peak_rss_mb(),
           "transport_cost": value, "otdist_error": float(pot.marginal_error.max()),
           "s_per_iteration": wall / pot.n_iter, **peak_gpu(device)}
    out["marginal_error"] = marginal_error(xt[0], yt[0], pot.f, pot.g, a.log(), b.log())
    return out


def run_tensorized(x, y, device: str) -> dict:
    import torch

    import otdist

    start = time.perf_counter()
    if device != "cpu":
        x, y = torch.as_tensor(x, device=device), torch.as_tensor(y, device=device)
    res = otdist.sinkhorn(x, y, p=2, epsilon=EPS, backend="tensorized", max_size=int(DENSE_LIMIT) + 1, tol=TOL)
    synchronize(device)
    wall = time.perf_counter() - start
    n, m = len(x), len(y)
    out = {"capped": False, "wall_s": wall, "iterations": res.n_iter, "peak_rss_mb": peak_rss_mb(),
           "transport_cost": float(res.transport_cost), "otdist_error": float(res.marginal_error),
           "s_per_iteration": wall / res.n_iter, **peak_gpu(device)}
    f, g = res.potentials
    log_u = [math.log(1.0 / n)] * n, [math.log(1.0 / m)] * m
    out["marginal_error"] = marginal_error(x, y, f, g, *log_u)
    return out


def run_geomloss(backend: str, x, y, device: str) -> dict:
    import torch
    from geomloss import SamplesLoss

    from otdist.solvers.sinkhorn_geomloss import stages

    start = time.perf_counter()
    xt, yt = torch.as_tensor(x, device=device), torch.as_tensor(y, device=device)
    n, m = len(x), len(y)
    a, b = torch.full((n,), 1.0 / n, device=device), torch.full((m,), 1.0 / m, device=device)
    blur, scaling = math.sqrt(EPS / 2), 0.5
    loss = SamplesLoss("sinkhorn", p=2, blur=blur, scaling=scaling, debias=False, potentials=True, backend=backend[9:])
    f, g = loss(a, xt, b, yt)
    synchronize(device)
    wall = time.perf_counter() - start
    rss = peak_rss_mb()
    pts = torch.cat([xt, yt])
    diameter = float((pts.amax(0) - pts.amin(0)).norm())
    out = {"capped": False, "wall_s": wall, "iterations": stages(2, diameter, blur, scaling), "peak_rss_mb": rss,
           "s_per_iteration": None, **peak_gpu(device)}
    out["marginal_error"] = marginal_error(xt, yt, 2 * f, 2 * g, a.log(), b.log())
    return out


def run_ott(x, y) -> dict:
    import jax.numpy as jnp
    from ott.geometry import pointcloud
    from ott.problems.linear import linear_problem
    from ott.solvers.linear import sinkhorn

    start = time.perf_counter()
    geom = pointcloud.PointCloud(jnp.asarray(x), jnp.asarray(y), epsilon=EPS, batch_size=OTT_BATCH)
    out = sinkhorn.Sinkhorn(threshold=TOL, max_iterations=MAX_ITER)(linear_problem.LinearProblem(geom))
    f, g = out.f.block_until_ready(), out.g.block_until_ready()
    wall = time.perf_counter() - start
    rss = peak_rss_mb()
    n_iter = int(out.n_iters)
    result = {"capped": False, "wall_s": wall, "iterations": n_iter, "peak_rss_mb": rss,
              "s_per_iteration": wall / max(n_iter, 1), "converged": bool(out.converged)}
    zeros_a, zeros_b = [0.0] * len(x), [0.0] * len(y)  # OTT's potentials include eps log a, eps log b
    import numpy as np

    result["marginal_error"] = marginal_error(x, y, np.array(f), np.array(g), zeros_a, zeros_b, "uniform")
    return result


def worker(backend: str, n: int, seed: int, cap: float, device: str) -> None:
    x, y = points(n, seed)
    if backend in ("online", "keops"):
        out = run_otdist_online(backend, x, y, cap, device)
    elif backend == "tensorized":
        out = run_tensorized(x, y, device)
    elif backend.startswith("geomloss"):
        out = run_geomloss(backend, x, y, device)
    else:
        out = run_ott(x, y)
    print("RESULT " + json.dumps(out), flush=True)


def launch(backend: str, n: int, seed: int, cap: float, device: str) -> dict:
    cmd = [sys.executable, __file__, "--worker", backend, str(n), str(seed), str(cap), device]
    start = time.perf_counter()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=cap + 60)
    except subprocess.TimeoutExpired as exc:
        out = {"capped": True, "wall_s": time.perf_counter() - start, "killed": True}
        text = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        progress = [line.split() for line in text.splitlines() if line.startswith("ITERATIONS")]
        if progress:
            iterations, seconds, rss = int(progress[-1][1]), float(progress[-1][2]), float(progress[-1][3])
            out.update(iterations=iterations, s_per_iteration=seconds / iterations, peak_rss_mb=rss)
        return out
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    return {"failed": (done.stderr or done.stdout).strip().splitlines()[-1:]}


def ott_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("ott") is not None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 30_000, 100_000])
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--cap", type=float, default=300.0, help="seconds per run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (OTT-JAX runs on its own default device)")
    args = parser.parse_args()
    print(f"device {args.device}")
    print("| n = m | backend | wall (s) | peak RSS (MB) | iterations | s / iteration | L1 marginal error | note |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    full_iterations: dict[str, int] = {}
    for n in args.sizes:
        for backend in args.backends:
            if backend.endswith("tensorized") and n * n > DENSE_LIMIT:
                continue
            if backend == "ott" and not ott_installed():
                print(f"| {n} | ott | - | - | - | - | - | ott-jax is not installed |")
                continue
            r = launch(backend, n, args.seed, args.cap, args.device)
            note = ""
            if "failed" in r:
                print(f"| {n} | {backend} | - | - | - | - | - | failed: {r['failed']} |", flush=True)
                continue
            if r.get("capped"):
                per = r.get("s_per_iteration")
                iters = full_iterations.get(backend)
                if per is not None and iters:
                    note = f"stopped at the {args.cap:.0f} s cap; estimated total {per * iters:.0f} s ({iters} iterations)"
                else:
                    note = f"stopped at the {args.cap:.0f} s cap"
            else:
                full_iterations[backend] = r["iterations"]
                if "converged" in r:
                    note = f"converged={r['converged']}"
            if "peak_gpu_mb" in r:
                note = f"{note}; GPU memory peak {r['peak_gpu_mb']:.0f} MB".lstrip("; ")
            fmt = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
            print(f"| {n} | {backend} | {fmt(r.get('wall_s'), '.1f')} | {fmt(r.get('peak_rss_mb'), '.0f')} | "
                  f"{fmt(r.get('iterations'), 'd')} | {fmt(r.get('s_per_iteration'), '.2f')} | "
                  f"{fmt(r.get('marginal_error'), '.2e')} | {note} |", flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), sys.argv[6])
    else:
        main()
