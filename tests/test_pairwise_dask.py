"""otdist.pairwise on a Dask LocalCluster of two worker processes: the serial matrix, also when a worker
dies mid-run, with the datasets scattered once instead of pickled into every task."""

import dataclasses
import os
import signal
import sys
import threading
import time

import numpy as np
import pytest

distributed = pytest.importorskip("dask.distributed")
cloudpickle = pytest.importorskip("cloudpickle")

import otdist  # noqa: E402
from otdist import registry  # noqa: E402
from otdist.pairwise import pairwise  # noqa: E402

#: Points of each dataset the slow test metric transports (the rest only has to be shipped).
SUBSAMPLE = 40
#: Seconds each solve of the slow metric waits: long enough to catch tasks running on a worker.
DELAY = 0.4
#: Upper bound on the seconds until the scheduler reports a task running (two processes starting torch).
WAIT = 60.0
POLL = 0.05
#: Both matrices come from the same function on the same arrays: equal to rounding.
TOL = 1e-12


def slow_w1(x, y, delay=DELAY):
    time.sleep(delay)
    return otdist.distance(x[:SUBSAMPLE], y[:SUBSAMPLE], metric="w1")


@pytest.fixture(scope="module")
def client():
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this test module
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        with distributed.Client(cluster) as c:
            c.run(__import__, "otdist")  # import torch once per worker, outside the timed tests
            yield c
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


@pytest.fixture
def slow_metric(monkeypatch):
    spec = dataclasses.replace(registry.metric("w1"), name="slow_w1", function=slow_w1, fixed=())
    monkeypatch.setitem(registry._METRICS, "slow_w1", spec)
    return "slow_w1"


def clouds(seed, k, n=30, d=2):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(n, d)) + rng.normal(size=d) for _ in range(k)]


@pytest.mark.parametrize("seed", [0, 1])
def test_dask_matrix_equals_the_serial_one(client, seed):
    data = clouds(seed, k=4)
    for metric, options in (("w1", {}), ("sinkhorn", {"p": 2})):
        on_dask = pairwise(data, metric=metric, client=client, **options)
        serial = pairwise(data, metric=metric, **options)
        np.testing.assert_allclose(on_dask.matrix, serial.matrix, rtol=0, atol=TOL)
        assert on_dask.solved == serial.solved


def _running(client) -> list[str]:
    return [key for keys in client.processing().values() for key in keys]


def _in_background(function):
    box = {}

    def target():
        try:
            box["result"] = function()
        except BaseException as err:  # re-raised in the test thread
            box["error"] = err

    thread = threading.Thread(target=target)
    thread.start()
    return thread, box


def _wait_for_running(client) -> None:
    deadline = time.monotonic() + WAIT
    while not _running(client):
        assert time.monotonic() < deadline, "no pairwise task started on the cluster"
        time.sleep(POLL)


def test_a_worker_killed_mid_run_leaves_the_matrix_complete(client, slow_metric):
    data = clouds(2, k=6)
    thread, box = _in_background(lambda: pairwise(data, metric=slow_metric, client=client))
    _wait_for_running(client)
    victim = next(address for address, keys in client.processing().items() if keys)
    pid = client.run(os.getpid, workers=[victim])[victim]
    os.kill(pid, signal.SIGKILL)  # a crash: the worker's running and queued tasks are lost
    thread.join(WAIT)
    assert not thread.is_alive()
    if "error" in box:
        raise box["error"]
    assert victim not in client.scheduler_info()["workers"]
    serial = pairwise(data, metric="w1")
    np.testing.assert_allclose(box["result"].matrix, serial.matrix, rtol=0, atol=TOL)


def _task_graph(dask_scheduler):
    """Per pairwise task: its dependencies and the size of what the scheduler holds to run it."""
    import pickle

    return {str(ts.key): ([str(dep.key) for dep in ts.dependencies], len(pickle.dumps(ts.run_spec)))
            for ts in dask_scheduler.tasks.values()
            if str(ts.key).startswith("otdist-pairwise-") and "-data-" not in str(ts.key)}


def test_large_datasets_are_scattered_once_not_shipped_with_each_task(client, slow_metric):
    k, n = 4, 20_000
    data = clouds(3, k=k, n=n, d=3)
    thread, box = _in_background(lambda: pairwise(data, metric=slow_metric, client=client))
    _wait_for_running(client)
    graph = client.run_on_scheduler(_task_graph)
    thread.join(WAIT)
    if "error" in box:
        raise box["error"]
    # Tasks already finished when the scheduler was read have been released: at most one per pair remains.
    assert 0 < len(graph) <= k * (k - 1) // 2
    for dependencies, size in graph.values():
        assert len(dependencies) == 2 and all("-data-" in key for key in dependencies)
        assert size < data[0].nbytes / 100  # two keys, a function and options: not the arrays
    np.testing.assert_allclose(box["result"].matrix, pairwise(data, metric=slow_metric, delay=0).matrix,
                               rtol=0, atol=TOL)
