"""The engines that evaluate the solves of :func:`otdist.pairwise`: a thread pool here, or Dask.

A solve is a :class:`Job`: ``function(x, y, **options)`` on two datasets, read as a number by
:func:`evaluate`. ``evaluate`` is a pure module-level function, so Dask can run it on any worker and
run it again when the worker running it dies; its key is derived from the datasets' contents and the
options only, so the same solve has the same key in every run.
"""

from __future__ import annotations

import ast
import multiprocessing
import os
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from tqdm.auto import tqdm

from .exceptions import InputError, InputTypeError

#: Prefix of every Dask key and of the names of the scattered datasets.
KEY_PREFIX = "otdist-pairwise"
#: ``client="local"``: a LocalCluster of this many worker processes at most, one thread each.
LOCAL = "local"
#: The dashboard of a ``client="local"`` cluster: any free port (the default 8787 may be taken).
LOCAL_DASHBOARD = ":0"
#: Hex digits of a dataset's SHA-256 in the name of its scattered copy.
DIGEST_CHARS = 16


@dataclass(frozen=True)
class Job:
    """One solve: datasets ``i`` and ``j`` (indices into the list of every dataset) and its cache name.

    ``key`` is unique within a run (it names the checkpoint file) and ``digest`` identifies the solve
    by content (datasets, metric, options) across runs.
    """

    key: str
    kind: str
    i: int
    j: int
    digest: str


@dataclass(frozen=True)
class Outcome:
    value: float
    converged: bool
    seconds: float


def evaluate(function: Callable[..., Any], x, y, options: dict, field: str | None) -> Outcome:
    """``function(x, y, **options)`` as a float (``getattr(result, field)`` when ``field`` is given), timed.

    The converged flag is the result's ``converged`` attribute where it has one, else True (such
    metrics raise on failure instead).
    """
    start = time.perf_counter()
    result = function(x, y, **options)
    seconds = time.perf_counter() - start
    value = result if field is None else getattr(result, field)
    value = value.detach() if hasattr(value, "detach") else value
    return Outcome(float(value), bool(getattr(result, "converged", True)), seconds)


def run_threads(jobs: list[Job], data: list, solvers: dict, options: dict, max_workers: int,
                progress: bool) -> Iterator[tuple[Job, Outcome]]:
    """Evaluate ``jobs`` on a pool of ``max_workers`` threads; yield each as it completes.

    ``solvers[job.kind]`` is the ``(function, field)`` of :func:`evaluate` for each kind of job.
    """
    if not jobs:
        return
    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        futures = {pool.submit(evaluate, *solvers[job.kind][:1], data[job.i], data[job.j], options,
                               solvers[job.kind][1]): job for job in jobs}
        try:
            for future in tqdm(as_completed(futures), total=len(futures), desc="pairwise", disable=not progress,
                               leave=False):
                yield futures[future], future.result()
        finally:
            for future in futures:
                future.cancel()


def _is_main_test(test: ast.expr) -> bool:
    """``__name__ == "__main__"`` (either way round)."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = (test.left, test.comparators[0])
    return (any(isinstance(s, ast.Name) and s.id == "__name__" for s in sides)
            and any(isinstance(s, ast.Constant) and s.value == "__main__" for s in sides))


def _unguarded_script_call() -> bool:
    """This call comes from the top level of the running script, outside ``if __name__ == "__main__":``."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    frame = sys._getframe()
    while frame is not None and not (frame.f_globals is getattr(main, "__dict__", None)
                                     and frame.f_code.co_name == "<module>"):
        frame = frame.f_back
    if frame is None or not path:
        return False
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError, UnicodeDecodeError):
        return False
    line = frame.f_lineno
    return not any(isinstance(node, ast.If) and _is_main_test(node.test)
                   and node.body[0].lineno <= line <= (node.body[-1].end_lineno or line)
                   for node in ast.walk(tree))


def check_main_guard() -> None:
    """Refuse to start worker processes from a script that each of them would run again on import.

    Worker processes import the calling script; a call at its top level would start a cluster in
    every worker (an error in each, and a cluster that never starts). Checked in the calling script
    (its source) and, where that is not readable, in a process that is importing it.
    """
    importing = getattr(multiprocessing.current_process(), "_inheriting", False)
    if importing or _unguarded_script_call():
        raise InputError(
            'pairwise(client="local") starts worker processes, and each of them imports the script that called it; '
            "got a call at the script's top level, which every worker would run again. Put the call under "
            '`if __name__ == "__main__":` (see docs/scaling.md).')


def _distributed():
    try:
        import dask.distributed as distributed
    except ImportError as err:
        raise ImportError("pairwise(client=...) needs Dask: pip install 'dask[distributed]' "
                          "(or leave client=None to run in this process).") from err
    return distributed


def open_client(client, n_workers: int):
    """``(client, owned)``: a Client as given, one connected to a scheduler address, or a new LocalCluster's."""
    distributed = _distributed()
    if isinstance(client, distributed.Client):
        return client, False
    if not isinstance(client, str):
        raise InputTypeError(f"client must be a dask.distributed.Client, a scheduler address or \"{LOCAL}\"; got "
                             f"{type(client).__name__}. Pass Client(...), 'tcp://host:8786', or leave it None.")
    if client == LOCAL:
        check_main_guard()
        cluster = distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                           dashboard_address=LOCAL_DASHBOARD)
        return distributed.Client(cluster), True
    return distributed.Client(client), True


def close_client(client, owned: bool) -> None:
    if owned:
        cluster = client.cluster
        client.close()
        if cluster is not None:
            cluster.close()


def run_dask(client, jobs: list[Job], data: list, digests: list[str], solvers: dict, options: dict,
             progress: bool) -> Iterator[tuple[Job, Outcome]]:
    """Evaluate ``jobs`` on a Dask cluster; yield each as it completes.

    The datasets a job needs are scattered once to every worker (``broadcast=True``, keyed by their
    contents), so a task carries two keys rather than two arrays, and a worker that dies leaves copies
    on the others. Tasks are pure and keyed by content: the scheduler re-runs those of a dead worker.
    """
    if not jobs:
        return
    distributed = _distributed()
    needed = sorted({job.i for job in jobs} | {job.j for job in jobs})
    run = uuid.uuid4().hex  # a call's data is its own: releasing it never races another call's scatter
    names = {i: f"{KEY_PREFIX}-data-{digests[i][:DIGEST_CHARS]}-{run}" for i in needed}
    scattered = client.scatter({names[i]: data[i] for i in needed}, broadcast=True)
    by_index = {i: scattered[names[i]] for i in needed}
    futures = {}
    for job in jobs:
        function, field = solvers[job.kind]
        future = client.submit(evaluate, function, by_index[job.i], by_index[job.j], options, field,
                               key=f"{KEY_PREFIX}-{job.digest}", pure=True)
        futures[future] = job
    try:
        bar = tqdm(total=len(futures), desc="pairwise", disable=not progress, leave=False)
        with bar:
            for future in distributed.as_completed(futures):
                outcome = future.result()
                bar.update()
                yield futures[future], outcome
    finally:
        for future in futures:
            future.release()
        for future in scattered.values():
            future.release()


def default_workers(max_workers) -> int:
    if max_workers is None:
        return os.cpu_count() or 1
    if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
        raise InputError(f"max_workers must be a positive integer; got {max_workers!r}. Pass e.g. max_workers=4, "
                         "or leave it None for one per CPU core.")
    return max_workers

