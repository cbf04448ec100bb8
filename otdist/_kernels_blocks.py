"""The computations behind :mod:`otdist.kernels`: kernels, their weighted sums in row blocks, the 1-D CDF formula.

Inputs here are validated already (NumPy float64 arrays, or torch tensors in one compute dtype and device).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
from scipy.spatial.distance import cdist

from . import _validation as V
from ._backend import is_torch, to_numpy, to_torch
from .exceptions import InputError

#: Entries of one block of a kernel or distance matrix (2**22 float64 = 32 MiB): energy and MMD never hold more.
BLOCK_ENTRIES = 2**22
#: The degree of the polynomial kernel (x.y/d + 1) ** 3 of the Kernel Inception Distance.
POLYNOMIAL_DEGREE = 3
#: Kernels with a bandwidth h.
BANDWIDTH_KERNELS = ("gaussian", "laplacian")
KERNELS = (*BANDWIDTH_KERNELS, "energy", "polynomial")


def distances(x, y):
    """|x_i - y_j| from coordinate differences (exactly 0 between a point and its copy); for torch, the
    gradient at a zero distance is 0, never NaN."""
    if is_torch(x):
        import torch

        return torch.cdist(x, y, compute_mode="donot_use_mm_for_euclid_dist")
    return cdist(x, y)


def _gaussian(x, y, h):
    if is_torch(x):
        return (distances(x, y).square() / (-2.0 * h * h)).exp()
    return np.exp(cdist(x, y, "sqeuclidean") / (-2.0 * h * h))


def _laplacian(x, y, h):
    d = distances(x, y)
    return (d / -h).exp() if is_torch(d) else np.exp(d / -h)


def _energy(x, y, h):
    return -distances(x, y)


def _polynomial(x, y, h):
    return (x @ y.T / x.shape[1] + 1.0) ** POLYNOMIAL_DEGREE


_BUILTIN = {"gaussian": _gaussian, "laplacian": _laplacian, "energy": _energy, "polynomial": _polynomial}


def _callable_kernel(kernel: Callable) -> Callable:
    """A user's kernel, its output checked: an (n, m) finite matrix, converted to the inputs' type."""

    def evaluate(x, y, h):
        out = kernel(x, y)
        if is_torch(x) and not is_torch(out):
            out = to_torch(np.asarray(out, dtype=np.float64), x)
        elif not is_torch(x) and is_torch(out):
            out = to_numpy(out)
        elif not is_torch(out):
            out = np.asarray(out, dtype=np.float64)
        expected = (x.shape[0], y.shape[0])
        if tuple(out.shape) != expected:
            raise InputError(
                f"kernel(x, y) must return the {expected[0]} x {expected[1]} matrix of k(x_i, y_j) for x of shape "
                f"{tuple(x.shape)} and y of shape {tuple(y.shape)}; got shape {tuple(out.shape)}. Return one row per "
                "point of x and one column per point of y (it is called on row blocks of the samples).")
        V.check_finite(out, "kernel(x, y)")
        return out

    return evaluate


def kernel_function(kernel) -> Callable[[Any, Any, float | None], Any]:
    """``k(x, y, h)`` for a kernel name or a user's callable ``kernel(x, y)`` (checked by the caller)."""
    return _callable_kernel(kernel) if callable(kernel) else _BUILTIN[kernel]


def _rows_per_block(m: int) -> int:
    return max(1, BLOCK_ENTRIES // max(m, 1))


def _block_sum(k, h):
    def block(xb, ab, y, b):
        return ab @ (k(xb, y, h) @ b)

    return block


def weighted_sum(x, a, y, b, k, h):
    """sum_ij a_i b_j k(x_i, y_j), computed in row blocks of x so that no more than BLOCK_ENTRIES kernel
    entries exist at once; with torch gradients, each block is recomputed in the backward pass
    (torch.utils.checkpoint) so that the memory stays bounded there too."""
    rows = _rows_per_block(y.shape[0])
    block = _block_sum(k, h)
    starts = range(0, x.shape[0], rows)
    if not is_torch(x):
        return math.fsum(float(block(x[s:s + rows], a[s:s + rows], y, b)) for s in starts)
    import torch

    recompute = len(starts) > 1 and torch.is_grad_enabled() and any(t.requires_grad for t in (x, a, y, b))
    total = x.new_zeros(())
    for s in starts:
        args = (x[s:s + rows], a[s:s + rows], y, b)
        if recompute:
            from torch.utils.checkpoint import checkpoint

            total = total + checkpoint(block, *args, use_reentrant=False)
        else:
            total = total + block(*args)
    return total


def kernel_sums(x, y, k, h, *, diagonal: bool = False):
    """``(row sums (n,), column sums (m,), diagonal (n,) or None)`` of K = k(x, y) for NumPy input, built in row
    blocks of x so that no more than BLOCK_ENTRIES kernel entries exist at once; the diagonal (``y`` is ``x``)
    with ``diagonal=True``. Each row sum is that of a whole row, as ``K.sum(1)`` computes it."""
    n, m = x.shape[0], y.shape[0]
    rows = _rows_per_block(m)
    row_sums, column_sums = np.empty(n), np.zeros(m)
    diag = np.empty(n) if diagonal else None
    for s in range(0, n, rows):
        block = np.asarray(k(x[s:s + rows], y, h), dtype=np.float64)
        row_sums[s:s + rows] = block.sum(axis=1)
        column_sums += block.sum(axis=0)
        if diagonal:
            inside = np.arange(block.shape[0])
            diag[s:s + block.shape[0]] = block[inside, s + inside]
    return row_sums, column_sums, diag


def diagonal_sum(x, k, h):
    """sum_i k(x_i, x_i), in square blocks."""
    rows = max(1, math.isqrt(BLOCK_ENTRIES))
    parts = [k(x[s:s + rows], x[s:s + rows], h).diagonal().sum() for s in range(0, x.shape[0], rows)]
    return sum(parts[1:], parts[0]) if is_torch(x) else math.fsum(float(p) for p in parts)


def _sorted(values, mass):
    if mass is None:
        return np.sort(values), None
    order = np.argsort(values)
    return values[order], mass[order]


def _cdf(in_sample, masses, order):
    """The CDF of one sample at the pooled sorted points: exact counts / size when unweighted."""
    if masses is None:
        counts = np.cumsum(in_sample[:-1])
        return counts / (counts[-1] + in_sample[-1])
    cumulative = np.cumsum(masses[order])
    return cumulative[:-1] / cumulative[-1]


def energy_squared_1d(u, a, v, b):
    """The squared energy distance between weighted samples on the line: 2 * int (F_u - F_v)^2, in O(N log N).

    ``a`` and ``b`` are masses (any positive scale), or None for uniform ones; the CDFs are cumulative
    masses in the pooled sorted order divided by the totals, as in ``scipy.stats.energy_distance``.
    """
    if is_torch(u):
        import torch

        a = torch.ones_like(u) if a is None else a
        b = torch.ones_like(v) if b is None else b
        z, order = torch.sort(torch.cat([u, v]))
        mass_u = torch.cat([a, torch.zeros_like(b)])[order].cumsum(0)
        mass_v = torch.cat([torch.zeros_like(a), b])[order].cumsum(0)
        gap = (mass_u[:-1] / mass_u[-1] - mass_v[:-1] / mass_v[-1]).square()
        return 2.0 * (torch.diff(z) * gap).sum()
    n, m = u.shape[0], v.shape[0]
    (u, a), (v, b) = _sorted(u, a), _sorted(v, b)
    runs = np.concatenate([u, v])
    order = np.argsort(runs, kind="stable")  # two sorted runs: a linear-time merge
    in_u = order < n
    cdf_u = _cdf(in_u, None if a is None else np.concatenate([a, np.zeros(m)]), order)
    cdf_v = _cdf(~in_u, None if b is None else np.concatenate([np.zeros(n), b]), order)
    return 2.0 * float(np.dot(np.diff(runs[order]), np.square(cdf_u - cdf_v)))
