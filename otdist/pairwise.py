r"""``otdist.pairwise``: the matrix of a metric between every pair of many datasets.

Each entry is computed once: a metric the registry marks ``symmetric`` solves one triangle, one
marked ``zero_on_identical`` has a zero diagonal without solving it, and the Sinkhorn divergence

.. math:: S_\varepsilon(a, b) = \mathrm{OT}_\varepsilon(a, b) - \tfrac12 \mathrm{OT}_\varepsilon(a, a)
          - \tfrac12 \mathrm{OT}_\varepsilon(b, b)

solves its self terms once per dataset: k self solves and k(k-1)/2 cross solves for k datasets, all
with one absolute epsilon. The solves run on a thread pool in this process, or on a Dask cluster
(``client=``); with ``out=DIR`` each solve is stored as it completes and a second call computes only
the missing ones.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import numpy as np

from . import _validation as V
from . import registry
from ._pairwise_cache import FORMAT, Checkpoint, digest, fingerprint
from ._pairwise_inputs import Inputs as _Inputs, read_inputs as _inputs
from ._pairwise_engine import Job, Outcome, close_client, default_workers, open_client, run_dask, run_threads
from .exceptions import InputError

#: The metric whose self terms are solved once per dataset (its registry function is not called).
SINKHORN = "sinkhorn"
#: Options that would give every pair the same weights: pairwise takes uniformly weighted samples.
WEIGHT_OPTIONS = ("u_weights", "v_weights", "a", "b")
#: What the memory guard suggests for Sinkhorn problems too large to store.
GUARD_ALTERNATIVES = 'subsample the datasets, leave backend at "auto" (it goes online above max_size), or metric="sliced"'


@dataclass(frozen=True)
class PairwiseResult:
    """The matrix of :func:`pairwise` and how it was computed.

    Attributes
    ----------
    matrix
        ``(k, k)``, or ``(k, l)`` with ``others``: ``matrix[i, j] = d(datasets[i], others[j])``.
    names, column_names
        Names of the rows and of the columns (the same without ``others``).
    seconds
        Per entry, the seconds of the solve that produced it (measured where it ran, or read from the
        checkpoint); 0 for an entry mirrored by symmetry or a zero diagonal. For the Sinkhorn
        divergence, the cross solve ``OT(a, b)``; the self solves are in ``self_seconds``.
    converged
        Per entry: every solve behind it reached its tolerance (True for metrics that report nothing
        and raise on failure instead).
    metric
        The registry name of the metric.
    epsilon
        The Sinkhorn divergence's absolute epsilon, used by every pair (None for other metrics).
    self_seconds
        The Sinkhorn divergence's self solves: seconds per row dataset, then per column dataset
        (with ``others``); None for other metrics.
    total_seconds
        Wall-clock time of the whole call.
    solved, cached
        Solves run by this call, and solves read from the checkpoint.
    """

    matrix: np.ndarray
    names: tuple[str, ...]
    column_names: tuple[str, ...]
    seconds: np.ndarray
    converged: np.ndarray
    metric: str
    epsilon: float | None
    self_seconds: np.ndarray | None
    total_seconds: float
    solved: int
    cached: int

    def __array__(self, dtype=None, copy=None):
        return np.array(self.matrix, dtype=dtype, copy=True)


def _cost_spread_bound(data: list, p: float, ground_metric, minkowski_p) -> float:
    """``D ** p`` for D the ground distance between opposite corners of the union of the bounding boxes.

    Every pair's cost spread ``max C - min C`` is at most ``max C <= D ** p``: each metric of
    :data:`otdist.cost.METRICS` is a coordinate-wise monotone norm of ``x - y``, largest over the box
    at ``|x - y| = hi - lo``.
    """
    from .cost import ground_cost

    if callable(ground_metric):
        raise InputError("a relative epsilon is resolved against the cost scale of every pair, which otdist bounds "
                         "for its named ground metrics; got a callable ground_metric. Pass an absolute epsilon with "
                         "relative=False, or a named ground metric.")
    lo = np.min([a.min(axis=0) for a in data], axis=0)
    hi = np.max([a.max(axis=0) for a in data], axis=0)
    return float(np.asarray(ground_cost(lo[None], hi[None], p, ground_metric, minkowski_p=minkowski_p))[0, 0])


def _sinkhorn_options(options: dict, data: list) -> tuple[dict, float]:
    """The options of every term's ``otdist.sinkhorn`` call, with one absolute epsilon and the divergence's tol."""
    from .entropic import DEFAULT_RELATIVE_EPSILON, DIVERGENCE_TOL

    options = registry.ground_metric_options(options)
    epsilon, relative = options.get("epsilon"), options.get("relative", False)
    if epsilon is None:
        epsilon, relative = DEFAULT_RELATIVE_EPSILON, True
    epsilon = V.check_positive(epsilon, "epsilon")
    if V.check_flag(relative, "relative"):
        p = V.check_order(options.get("p", 1))
        spread = _cost_spread_bound(data, p, options.get("metric", "euclidean"), options.get("minkowski_p"))
        epsilon = epsilon * spread if spread > 0 else epsilon
    options.update(epsilon=float(epsilon), relative=False)
    options.setdefault("tol", DIVERGENCE_TOL["float64"])
    return options, float(epsilon)


def self_entropic_cost(x, y, **options) -> float:
    r"""``OT_eps(a, a)`` for the uniform measure a on ``x`` (``y`` is ``x``): ``otdist.sinkhorn(x, x).entropic_cost``.

    The solver recognises the problem as symmetric and runs the averaged symmetric iteration, as
    :func:`otdist.sinkhorn_divergence` does for its self terms, so the value is the divergence's own.
    A self solve that misses its tolerance raises :class:`otdist.ConvergenceError` whatever
    ``on_unconverged`` says (the divergence returns no convergence flag).
    """
    from .entropic import sinkhorn

    return sinkhorn(x, x, **{**options, "on_unconverged": "raise"}).entropic_cost


def _jobs(inputs: _Inputs, spec: registry.MetricSpec, key_parts: tuple) -> tuple[list[Job], list[Job]]:
    """``(self jobs, pair jobs)``: every solve the matrix needs, each once."""
    k = len(inputs.names)
    rows = range(k)
    cols = range(k) if inputs.square else range(k, len(inputs.data))
    pairs = []
    for i in rows:
        for j in cols:
            if inputs.square and ((i == j and spec.zero_on_identical) or (j < i and spec.symmetric)):
                continue
            pairs.append((i, j))
    d = inputs.digests
    pair_jobs = [Job(f"pair-{i}-{j}", "pair", i, j, digest("pair", *key_parts, d[i], d[j])) for i, j in pairs]
    if spec.name != SINKHORN:
        return [], pair_jobs
    needed = sorted({i for pair in pairs for i in pair})
    return [Job(f"self-{i}", "self", i, i, digest("self", *key_parts, d[i])) for i in needed], pair_jobs


def shared_point_pairs(data: list) -> set[tuple[int, int]]:
    """The pairs ``(i, j)``, ``i < j``, of datasets that hold a common point, from one sort of every row.

    Rows are compared by their float64 bytes, ``-0.0`` read as ``0.0``: O(N log N) for N points in all,
    never a distance between datasets.
    """
    if len(data) < 2:
        return set()
    rows = np.ascontiguousarray(np.concatenate(data) + 0.0)
    owner = np.repeat(np.arange(len(data)), [a.shape[0] for a in data])
    keys = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()
    _, row_id = np.unique(keys, return_inverse=True)
    held = np.unique(np.stack([row_id.ravel(), owner], axis=1), axis=0)  # (row, dataset), each once
    starts = np.flatnonzero(np.diff(held[:, 0], prepend=-1))
    owners = {tuple(group) for group in np.split(held[:, 1], starts[1:]) if len(group) > 1}
    return {(int(a), int(b)) for group in owners for k, a in enumerate(group) for b in group[k + 1:]}


def _preflight(inputs: _Inputs, spec: registry.MetricSpec, jobs: list[Job], options: dict) -> None:
    """Every check that needs no solve, before any work is scheduled.

    A metric's preflight depends on the data through the two sample sizes and whether the samples
    share a point (the k-NN estimators refuse shared points; see :attr:`otdist.registry.MetricSpec.preflight`):
    one pair of datasets per distinct (size, size, shared) is checked.
    """
    from .entropic import sinkhorn

    shared = shared_point_pairs(inputs.data)
    seen = set()
    for job in jobs:
        x, y = inputs.data[job.i], inputs.data[job.j]
        key = (x.shape[0], y.shape[0], job.i == job.j or (min(job.i, job.j), max(job.i, job.j)) in shared)
        if key in seen:
            continue
        seen.add(key)
        if spec.name == SINKHORN and options.get("backend") in ("tensorized", "torch"):
            from .cost import DEFAULT_MAX_SIZE

            V.check_size(*key[:2], options.get("max_size", DEFAULT_MAX_SIZE), "pairwise sinkhorn", GUARD_ALTERNATIVES)
        else:
            spec.check(x, y, options)
    if spec.name == SINKHORN and jobs:
        one = inputs.data[jobs[0].i][:1]
        sinkhorn(one, one, **options)  # the options checked on a one-point problem


def _manifest(inputs: _Inputs, metric: str, options: dict, epsilon) -> dict:
    """What identifies a checkpoint: the datasets' contents (not their names), the metric and its options."""
    k = len(inputs.names)
    entries = [{"sha256": d, "shape": list(a.shape)} for d, a in zip(inputs.digests, inputs.data)]
    return json.loads(fingerprint({"format": FORMAT, "metric": metric, "options": options, "epsilon": epsilon,
                                   "datasets": entries[:k], "others": None if inputs.square else entries[k:]},
                                  strict=True))


def _assemble(inputs: _Inputs, spec, outcomes: dict[str, Outcome], self_jobs, pair_jobs):
    k, n_all = len(inputs.names), len(inputs.data)
    offset = 0 if inputs.square else k
    shape = (k, len(inputs.column_names))
    matrix, seconds, converged = np.zeros(shape), np.zeros(shape), np.ones(shape, dtype=bool)
    selfs = {job.i: outcomes[job.key] for job in self_jobs}
    for job in pair_jobs:
        out = outcomes[job.key]
        value, ok = out.value, out.converged
        if spec.name == SINKHORN:
            value = value - 0.5 * (selfs[job.i].value + selfs[job.j].value)
            ok = ok and selfs[job.i].converged and selfs[job.j].converged
        r, c = job.i, job.j - offset
        matrix[r, c], seconds[r, c], converged[r, c] = value, out.seconds, ok
        if inputs.square and spec.symmetric and r != c:
            matrix[c, r], converged[c, r] = value, ok
    self_seconds = None
    if spec.name == SINKHORN:
        self_seconds = np.array([selfs[i].seconds if i in selfs else 0.0 for i in range(n_all)])
    return matrix, seconds, converged, self_seconds


def pairwise(datasets, others=None, *, metric: str = "sinkhorn", client=None, out=None, progress: bool = False,
             max_workers: int | None = None, force: bool = False, resume: bool | None = None,
             **options) -> PairwiseResult:
    r"""The matrix of ``metric`` between every pair of datasets (or every dataset and every one of ``others``).

    Parameters
    ----------
    datasets
        A sequence of sample arrays ``(n_i, d)`` (1-D: points on the line), a mapping name -> array,
        or a sequence of ``.npy`` paths (named by their stems). Samples are uniformly weighted and
        computed in float64.
    others
        Optional column datasets, in the same forms: the result is ``k x l`` instead of ``k x k``.
    metric
        A registered metric that takes samples (:func:`otdist.metrics`). ``"sinkhorn"`` (default) is
        the Sinkhorn divergence; ``"w1"``, ``"w2"``, ``"sliced"``, ...
    client
        None (default): a pool of ``max_workers`` threads in this process. A
        ``dask.distributed.Client`` or a scheduler address (``"tcp://host:8786"``): the solves run on
        that Dask cluster. ``"local"``: a new ``LocalCluster`` of ``max_workers`` processes (one
        thread each), closed at the end; the calling script needs the ``if __name__ == "__main__":``
        guard.
    out
        Checkpoint directory: each solve is written there as it completes, and a call with the same
        datasets, metric and options computes only the solves missing from it. A directory holding
        results of other inputs is refused.
    progress
        Show a progress bar over the solves.
    max_workers
        Threads (or ``client="local"`` processes); default ``os.cpu_count()``.
    force, resume
        ``force=True`` discards the checkpoint in ``out`` and starts again. ``resume=True`` requires
        a checkpoint of the same inputs in ``out``, ``resume=False`` refuses one; ``None`` (default)
        continues one if there, else starts one.
    **options
        The metric's options (as for :func:`otdist.distance`), the same for every pair. For
        ``"sinkhorn"``, a relative epsilon (the default: 1%) is resolved once, against an upper bound
        of every pair's cost spread ``max C - min C``: ``D ** p`` for ``D`` the ground distance
        between opposite corners of the bounding box of all the datasets; ``tol`` defaults to 1e-10.

    Returns
    -------
    PairwiseResult
        ``matrix`` (also ``np.asarray(result)``), ``names``, per-entry ``seconds`` and ``converged``.

    Raises
    ------
    InputError
        A dataset with NaN, no point or another dimension (named by its name or index), a metric
        that does not take samples, bad options or a checkpoint of other inputs; all before any
        solve is scheduled.

    Examples
    --------
    >>> import numpy as np, otdist
    >>> from otdist.pairwise import pairwise
    >>> rng = np.random.default_rng(0)
    >>> clouds = {"a": rng.normal(size=(50, 2)), "b": rng.normal(size=(60, 2)) + [3.0, 0.0]}
    >>> result = pairwise(clouds, metric="w1")
    >>> result.names, result.matrix.shape, result.solved
    (('a', 'b'), (2, 2), 1)
    >>> bool(result.matrix[0, 1] == result.matrix[1, 0] > 2.5)
    True
    """
    start = time.perf_counter()
    spec = registry.sample_metric(metric, "pairwise")
    given = sorted(set(options) & set(WEIGHT_OPTIONS))
    if given:
        raise InputError(f"pairwise takes uniformly weighted samples; got {', '.join(given)}. Drop the weights, "
                         "or call otdist.distance per pair for weighted samples.")
    force, progress = V.check_flag(force, "force"), V.check_flag(progress, "progress")
    if resume is not None:
        resume = V.check_flag(resume, "resume")
    workers = default_workers(max_workers)
    inputs = _inputs(datasets, others)
    epsilon = None
    if spec.name == SINKHORN:
        from .entropic import sinkhorn

        options, epsilon = _sinkhorn_options(options, inputs.data)
        solvers = {"pair": (sinkhorn, "entropic_cost"), "self": (self_entropic_cost, None)}
    else:
        solvers = {"pair": (spec.function, None)}
    key_parts = (spec.name, fingerprint(options))
    self_jobs, pair_jobs = _jobs(inputs, spec, key_parts)
    jobs = self_jobs + pair_jobs
    _preflight(inputs, spec, jobs, options)

    outcomes: dict[str, Outcome] = {}
    checkpoint = None
    if out is not None:
        manifest = _manifest(inputs, spec.name, options, epsilon)
        checkpoint = Checkpoint.open(out, manifest, force=force, resume=resume)
        for job in jobs:
            stored = checkpoint.load(job)
            if stored is not None:
                outcomes[job.key] = stored
    todo = [job for job in jobs if job.key not in outcomes]
    cached = len(jobs) - len(todo)

    owned = False
    if client is not None and todo:
        client, owned = open_client(client, workers)
    try:
        if client is None:
            stream = run_threads(todo, inputs.data, solvers, options, workers, progress)
        else:
            stream = run_dask(client, todo, inputs.data, inputs.digests, solvers, options, progress)
        for job, outcome in stream:
            outcomes[job.key] = outcome
            if checkpoint is not None:
                checkpoint.store(job, outcome)
    finally:
        close_client(client, owned)

    matrix, seconds, converged, self_seconds = _assemble(inputs, spec, outcomes, self_jobs, pair_jobs)
    return PairwiseResult(matrix, inputs.names, inputs.column_names, seconds, converged, spec.name, epsilon,
                          self_seconds, time.perf_counter() - start, len(todo), cached)


__all__ = ["pairwise", "PairwiseResult"]
