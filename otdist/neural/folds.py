"""Cross-fitting folds for two samples that may share points.

Each sample is split into balanced random folds, except that a point present in both samples is
held out in the same fold in both: the j-th copy of a value in y takes the fold of its j-th copy
in x (copies in random order).  With independent samples from continuous distributions no point
is shared and the folds are plain random splits.
"""

from __future__ import annotations

import numpy as np


def _occurrences(ids: np.ndarray, stride: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(order, key): the points sorted by id, in random order within an id, and id * stride + occurrence rank."""
    order = np.lexsort((rng.random(len(ids)), ids))
    sorted_ids = ids[order]
    occurrence = np.arange(len(ids)) - np.searchsorted(sorted_ids, sorted_ids, side="left")
    return order, sorted_ids.astype(np.int64) * stride + occurrence


def _balanced(n: int, n_folds: int, rng: np.random.Generator) -> np.ndarray:
    fold = np.empty(n, dtype=np.int64)
    fold[rng.permutation(n)] = np.arange(n) * n_folds // n
    return fold


def make_folds(x: np.ndarray, y: np.ndarray, n_folds: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Fold of each point of x and y: balanced random folds, except that the j-th copy in y of a
    point of x is held out in the fold of the j-th copy in x (copies in random order)."""
    fold_x = _balanced(len(x), n_folds, rng)
    _, ids = np.unique(np.vstack([x, y]), axis=0, return_inverse=True)
    ids = ids.reshape(-1)
    order_x, key_x = _occurrences(ids[: len(x)], len(ids), rng)
    order_y, key_y = _occurrences(ids[len(x):], len(ids), rng)
    _, in_x, in_y = np.intersect1d(key_x, key_y, assume_unique=True, return_indices=True)
    if len(in_y) == 0:
        return fold_x, _balanced(len(y), n_folds, rng)
    fold_y = np.full(len(y), -1, dtype=np.int64)
    fold_y[order_y[in_y]] = fold_x[order_x[in_x]]
    counts = np.bincount(fold_y[fold_y >= 0], minlength=n_folds)
    free = rng.permutation(np.flatnonzero(fold_y < 0))
    for index in free:  # fill the emptiest fold first
        k = int(np.argmin(counts))
        fold_y[index], counts[k] = k, counts[k] + 1
    return fold_x, fold_y
