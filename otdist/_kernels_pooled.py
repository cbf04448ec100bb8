"""MMD² of many relabellings of one pooled sample at once, from its kernel matrix (for permutation tests)."""

from __future__ import annotations

import numpy as np

from . import _validation as V
from ._backend import array_out, is_torch
from ._kernels_blocks import BLOCK_ENTRIES
from .exceptions import InputError, InputTypeError


def _check_kernel(K):
    K = V.as_real_array(K, "K")
    if K.ndim != 2 or K.shape[0] != K.shape[1] or K.shape[0] < 2:
        raise InputError(
            f"K must be the square (N, N) kernel matrix of the pooled sample z = [x; y], N >= 2; got shape "
            f"{tuple(K.shape)}. Build it with otdist.kernels.pooled_kernel(x, y, ...).")
    return K


def _check_permutations(permutations, size: int):
    """(B, N) int64 rows, each a permutation of 0..N-1, as a NumPy array."""
    values = permutations.detach().cpu().numpy() if is_torch(permutations) else np.asarray(permutations)
    if values.dtype.kind not in "iu":
        raise InputTypeError(
            f"permutations must be an integer array of shape (B, {size}); got dtype {values.dtype}. Pass e.g. "
            f"np.stack([rng.permutation({size}) for _ in range(B)]).")
    if values.ndim == 1:
        values = values[None]
    if values.ndim != 2 or values.shape[1] != size or values.shape[0] == 0:
        raise InputError(
            f"permutations must have shape (B, {size}), one permutation of the {size} pooled points per row; got "
            f"shape {tuple(np.shape(permutations))}. Stack B >= 1 permutations of range({size}).")
    values = values.astype(np.int64, copy=False)
    valid = (np.sort(values, axis=1) == np.arange(size)).all(axis=1)
    if not valid.all():
        row = int(np.flatnonzero(~valid)[0])
        raise InputError(
            f"every row of permutations must be a permutation of range({size}); row {row} is not (it repeats or "
            "misses an index). Draw rows with rng.permutation(N).")
    return values


def pooled_statistic(K, n: int, permutations, *, unbiased: bool = False):
    r"""MMD² between the two groups of each relabelling of a pooled sample, from its kernel matrix.

    ``K`` is the (N, N) kernel matrix of the pooled sample z = [x; y] (N = n + m), e.g. from
    :func:`otdist.kernels.pooled_kernel`. Row b of ``permutations`` assigns the points ``z[perm[:n]]`` to
    the first group and the other m to the second; the statistic of that row is

    .. math::
        \mathrm{MMD}^2_b = \frac{1}{n^2}\sum_{i,j \in X_b} K_{ij} + \frac{1}{m^2}\sum_{i,j \in Y_b} K_{ij}
                          - \frac{1}{nm}\sum_{i \in X_b, j \in Y_b} (K_{ij} + K_{ji})

    (the biased V-statistic), or the unbiased U-statistic with ``unbiased=True`` (sums over i ≠ j within
    a group, divided by n(n − 1) and m(m − 1)). All B statistics come from one (B, N) × (N, N) matrix
    product per chunk of rows. The identity permutation gives ``mmd(x, y, squared=True)``; with
    ``K = pooled_kernel(x, y, "energy")`` (minus the distance matrix) the statistic is the squared energy
    distance.

    Parameters
    ----------
    K : array or tensor, shape (N, N)
        Kernel matrix of the pooled sample.
    n : int
        Size of the first sample, 1 <= n < N (2 <= n <= N - 2 when ``unbiased``).
    permutations : int array or tensor, shape (B, N) or (N,)
        Each row a permutation of ``range(N)``.
    unbiased : bool
        The U-statistic instead of the V-statistic.

    Returns
    -------
    array or tensor, shape (B,)
        MMD² per row: float64 NumPy for NumPy ``K``, a tensor of K's dtype and device for torch ``K``.

    Examples
    --------
    >>> import numpy as np
    >>> from otdist.kernels import mmd, pooled_kernel, pooled_statistic
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.normal(size=(20, 2)), rng.normal(size=(30, 2)) + 1.0
    >>> K = pooled_kernel(x, y, "gaussian")
    >>> perms = np.stack([np.arange(50)] + [rng.permutation(50) for _ in range(99)])
    >>> stats = pooled_statistic(K, 20, perms)
    >>> stats.shape, bool(np.isclose(stats[0], mmd(x, y, "gaussian", squared=True)))
    ((100,), True)
    """
    like = K
    K = _check_kernel(K)
    size = K.shape[0]
    n = V.check_positive(n, "n", integer=True)
    unbiased = V.check_flag(unbiased, "unbiased", " (the U-statistic instead of the V-statistic)")
    smallest = 2 if unbiased else 1
    if not smallest <= n <= size - smallest:
        raise InputError(
            f"n must leave at least {smallest} point(s) in each group of the {size} pooled points "
            f"({smallest} <= n <= {size - smallest}); got n={n}. Pass the size of the first sample.")
    perms = _check_permutations(permutations, size)
    if is_torch(K):
        import torch

        perms = torch.as_tensor(perms, device=K.device)
        chunks = [_statistics(K, n, perms[s:s + _chunk_rows(size)], unbiased, torch)
                  for s in range(0, perms.shape[0], _chunk_rows(size))]
        return array_out(torch.cat(chunks), like)
    chunks = [_statistics(K, n, perms[s:s + _chunk_rows(size)], unbiased, np)
              for s in range(0, perms.shape[0], _chunk_rows(size))]
    return np.concatenate(chunks)


def _chunk_rows(size: int) -> int:
    return max(1, BLOCK_ENTRIES // size)


def _statistics(K, n: int, perms, unbiased: bool, xp):
    """One chunk of rows: E (B, N) marks the first group; every sum comes from M = E K."""
    batch, size = perms.shape
    m = size - n
    if xp is np:
        rows, first = np.arange(batch)[:, None], np.zeros((batch, size), dtype=K.dtype)
    else:
        rows, first = xp.arange(batch, device=K.device)[:, None], K.new_zeros((batch, size))
    first[rows, perms[:, :n]] = 1.0
    second = 1.0 - first
    product = first @ K
    column_sums = K.sum(0)
    within_x = (product * first).sum(1)
    x_to_y = (product * second).sum(1)
    y_to_x = ((column_sums - product) * first).sum(1)
    within_y = ((column_sums - product) * second).sum(1)
    if not unbiased:
        return within_x / n**2 + within_y / m**2 - (x_to_y + y_to_x) / (n * m)
    diagonal = xp.diagonal(K) if xp is np else K.diagonal()
    trace_x = first @ diagonal
    trace_y = diagonal.sum() - trace_x
    return ((within_x - trace_x) / (n * (n - 1)) + (within_y - trace_y) / (m * (m - 1))
            - (x_to_y + y_to_x) / (n * m))
