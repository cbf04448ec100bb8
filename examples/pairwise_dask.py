"""A Sinkhorn-divergence matrix between five point clouds, in this process and on a Dask cluster.

Dask starts worker processes that import this script again: everything that starts a cluster (or
calls pairwise with client=) sits under the ``if __name__ == "__main__":`` guard.
"""

import tempfile

import numpy as np

from otdist.pairwise import pairwise


def clouds() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {f"shift {t:.1f}": rng.normal(size=(60, 2)) + [t, 0.0] for t in (0.0, 0.5, 1.0, 1.5, 2.0)}


def main() -> None:
    from dask.distributed import Client, LocalCluster

    data = clouds()
    with tempfile.TemporaryDirectory() as out:
        serial = pairwise(data, epsilon=0.1, out=out)
        again = pairwise(data, epsilon=0.1, out=out)  # read back from the checkpoint: nothing solved
        print(f"in process: {serial.solved} solves (5 self + 10 cross); again: {again.solved} solved, "
              f"{again.cached} read from {out}")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        on_dask = pairwise(data, epsilon=0.1, client=client)
    print(f"max |dask - serial| = {np.abs(on_dask.matrix - serial.matrix).max():.1e}")
    width = max(map(len, serial.names))
    for name, row in zip(serial.names, serial.matrix):
        print(f"{name:>{width}}  " + "  ".join(f"{v:6.3f}" for v in row))


if __name__ == "__main__":
    main()
