r"""k-nearest-neighbour estimators of KL and JS from samples.

KL (Wang, Kulkarni & Verdú, 2009), from x ~ P (n, d) and y ~ Q (m, d):

.. math:: \widehat{\mathrm{KL}}(P\|Q) = \frac{d}{n}\sum_i \log\frac{\nu_k(i)}{\rho_k(i)} + \log\frac{m}{n-1},

with rho_k(i) the distance from x_i to its k-th neighbour among the other x's and nu_k(i) to its
k-th neighbour among the y's.  JS = ½ KL(P‖M) + ½ KL(Q‖M), M = (P + Q)/2, estimated the same
way with the pooled sample (minus the point itself) as the sample of M.  The pooled sample is a
sample of M only when both parts have the same size: for n ≠ m the larger sample is split at
random (``seed``) into parts no larger than the smaller one, each part is paired with as many
points of the smaller sample, and the estimates are averaged, weighted by the part sizes.

Nothing is clipped: with P = Q the estimates are negative about half the time.  Both estimators
assume independent samples from continuous distributions; a point present in both samples (the
same draws reused, or discrete values) is refused with an error, like a point with k exact
duplicates in its own sample.  Neighbour search uses ``scipy.spatial.cKDTree`` (no n x m matrix).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from ..exceptions import InputError

_DISCRETE_HINT = "add tiny noise (jitter) to discrete-valued samples"


def _kth(tree: cKDTree, points: np.ndarray, k: int, skip_self: bool) -> np.ndarray:
    dist, _ = tree.query(points, k=k + 1 if skip_self else k)
    return dist.reshape(len(points), -1)[:, -1]


def _check_duplicates(rho: np.ndarray, name: str, k: int) -> None:
    zero = int((rho == 0).sum())
    if zero:
        raise InputError(
            f"{zero} points of {name} have {k} or more exact duplicates (zero k-th neighbour distance), "
            f"so the k-NN density estimate is infinite there. Pass a larger k, remove duplicates, or {_DISCRETE_HINT}."
        )


#: Samples are scaled so that their largest |coordinate| lies in [2**(N-1), 2**N): squared distances of
#: up to 2**20 coordinates stay finite, and only differences below 2**-1037 of it underflow when squared.
SCALE_EXPONENT = 500


def _unit_scale(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x and y times the power of two that brings their largest |coordinate| into [2**499, 2**500).

    The estimates depend on ratios of distances only, and a power of two scales exactly (unless the
    coordinates span more than the float64 exponent range), so they are unchanged; and inputs that
    differ by a power of two give the same distances bit for bit, also where the square of a tiny
    coordinate difference would underflow at the given units (a zero distance is a refused duplicate).
    """
    largest = max(float(np.abs(x).max(initial=0.0)), float(np.abs(y).max(initial=0.0)))
    if not 0 < largest < np.inf:
        return x, y
    _, exponent = np.frexp(largest)
    return np.ldexp(x, SCALE_EXPONENT - exponent), np.ldexp(y, SCALE_EXPONENT - exponent)


def check_shared(x: np.ndarray, y: np.ndarray) -> None:
    """Refuse points present in both samples: their zero cross-distances bias the estimates downwards."""
    _refuse_shared(*_unit_scale(x, y))


def _refuse_shared(x: np.ndarray, y: np.ndarray) -> None:
    """:func:`check_shared` on samples already brought to a common scale by :func:`_unit_scale`."""
    nearest, _ = cKDTree(y).query(x, k=1)
    shared = int((nearest == 0).sum())
    if shared:
        raise InputError(
            f"the k-NN estimators need independent samples from continuous distributions; got {shared} point(s) of x "
            "that also appear in y, whose zero distances bias the estimate downwards (far below zero when the samples coincide). "
            f"Pass independent samples (not the same draws in both), or {_DISCRETE_HINT}; a larger k does not help here."
        )


def kl(x: np.ndarray, y: np.ndarray, k: int) -> float:
    x, y = _unit_scale(x, y)
    n, d = x.shape
    m = y.shape[0]
    _refuse_shared(x, y)
    rho = _kth(cKDTree(x), x, k, skip_self=True)
    _check_duplicates(rho, "x", k)
    nu = _kth(cKDTree(y), x, k, skip_self=False)
    return float(d * np.mean(np.log(nu / rho)) + np.log(m / (n - 1)))


def _kl_to_mixture(x: np.ndarray, y: np.ndarray, k: int) -> float:
    """KL(P || (P + Q)/2) with the pooled sample of equal-size x and y, excluding each point itself."""
    n, d = x.shape
    pooled = np.vstack([x, y])
    rho = _kth(cKDTree(x), x, k, skip_self=True)
    _check_duplicates(rho, "the samples", k)
    nu = _kth(cKDTree(pooled), x, k, skip_self=True)
    return float(d * np.mean(np.log(nu / rho)) + np.log((len(pooled) - 1) / (n - 1)))


def _js_equal_sizes(x: np.ndarray, y: np.ndarray, k: int) -> float:
    return 0.5 * (_kl_to_mixture(x, y, k) + _kl_to_mixture(y, x, k))


def js(x: np.ndarray, y: np.ndarray, k: int, seed=0) -> float:
    """JS(P, Q); for n ≠ m the average over parts of the larger sample paired with the smaller one."""
    x, y = _unit_scale(x, y)
    _refuse_shared(x, y)
    if len(x) == len(y):
        return float(_js_equal_sizes(x, y, k))
    small, large = (x, y) if len(x) < len(y) else (y, x)
    rng = np.random.default_rng(seed)
    small = small[rng.permutation(len(small))]
    parts = np.array_split(rng.permutation(len(large)), -(-len(large) // len(small)))
    if min(map(len, parts)) <= k:
        raise InputError(
            f"the k-NN JS estimator splits the larger sample into parts of at most the smaller one's size, which must "
            f"exceed k={k}; got sizes {len(x)} and {len(y)} (smallest part {min(map(len, parts))}). "
            "Pass more samples, equal sizes, or a smaller k."
        )
    values, sizes, start = [], [], 0
    for part in parts:
        paired = small[np.arange(start, start + len(part)) % len(small)]
        start += len(part)
        values.append(_js_equal_sizes(paired, large[part], k))
        sizes.append(len(part))
    return float(np.average(values, weights=sizes))
