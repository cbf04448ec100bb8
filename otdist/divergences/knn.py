r"""k-nearest-neighbour estimators of KL and JS from samples.

KL (Wang, Kulkarni & Verdú, 2009), from x ~ P (n, d) and y ~ Q (m, d):

.. math:: \widehat{\mathrm{KL}}(P\|Q) = \frac{d}{n}\sum_i \log\frac{\nu_k(i)}{\rho_k(i)} + \log\frac{m}{n-1},

with rho_k(i) the distance from x_i to its k-th neighbour among the other x's and nu_k(i) to its
k-th neighbour among the y's.  JS = ½ KL(P‖M) + ½ KL(Q‖M), M = (P + Q)/2, estimated the same
way with the pooled sample (minus the point itself) as the sample of M; it is clipped to
[0, log 2].  Neighbour search uses ``scipy.spatial.cKDTree`` (no n x m matrix).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree
from ..exceptions import InputError

LOG2 = float(np.log(2.0))


def _kth(tree: cKDTree, points: np.ndarray, k: int, skip_self: bool) -> np.ndarray:
    dist, _ = tree.query(points, k=k + 1 if skip_self else k)
    dist = dist.reshape(len(points), -1)
    return dist[:, -1]


def _check_duplicates(rho: np.ndarray, name: str, k: int) -> None:
    zero = int((rho == 0).sum())
    if zero:
        raise InputError(
            f"{zero} points of {name} have {k} or more exact duplicates (zero k-th neighbour distance), "
            "so the k-NN density estimate is infinite there. Pass a larger k, remove duplicates, "
            "or add tiny noise (jitter) to discrete-valued samples."
        )


def kl(x: np.ndarray, y: np.ndarray, k: int) -> float:
    n, d = x.shape
    m = y.shape[0]
    rho = _kth(cKDTree(x), x, k, skip_self=True)
    _check_duplicates(rho, "x", k)
    nu = _kth(cKDTree(y), x, k, skip_self=False)
    nu = np.maximum(nu, np.finfo(float).tiny)  # x_i may coincide with a y point
    return float(d * np.mean(np.log(nu / rho)) + np.log(m / (n - 1)))


def _kl_to_mixture(x: np.ndarray, y: np.ndarray, k: int) -> float:
    """KL(P || (P + Q)/2) with the pooled sample, excluding each point itself."""
    n, d = x.shape
    pooled = np.vstack([x, y])
    rho = _kth(cKDTree(x), x, k, skip_self=True)
    _check_duplicates(rho, "the samples", k)
    nu = _kth(cKDTree(pooled), x, k, skip_self=True)
    return float(d * np.mean(np.log(nu / rho)) + np.log((len(pooled) - 1) / (n - 1)))


def js(x: np.ndarray, y: np.ndarray, k: int) -> float:
    if len(x) != len(y):
        raise InputError(
            f"the k-NN JS estimator pools the samples as a sample of the mixture (P + Q)/2 and needs equal sizes; "
            f"got {len(x)} and {len(y)}. Subsample the larger one."
        )
    value = 0.5 * (_kl_to_mixture(x, y, k) + _kl_to_mixture(y, x, k))
    return float(min(max(value, 0.0), LOG2))
