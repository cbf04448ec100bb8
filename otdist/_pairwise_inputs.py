"""The datasets of :func:`otdist.pairwise`: read (arrays, a mapping or .npy paths), named and checked."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import _validation as V
from ._backend import is_torch
from ._pairwise_cache import dataset_digest
from .exceptions import InputError, InputTypeError


@dataclass(frozen=True)
class Inputs:
    names: tuple[str, ...]
    column_names: tuple[str, ...]
    data: list  # every dataset, rows then (with others) columns, as (n, d) float64 arrays
    digests: list[str]
    square: bool


def _is_path(item) -> bool:
    return isinstance(item, (str, os.PathLike))


def _load(path) -> np.ndarray:
    file = Path(path)
    if not file.is_file():
        raise InputError(f"{path}: no such file. Pass .npy files of samples, shape (n,) or (n, d).")
    try:
        return np.load(file, allow_pickle=False)
    except (ValueError, EOFError, OSError) as err:
        reason = " ".join(str(err).split())
        raise InputError(f"{path} is not a NumPy .npy array of numbers ({reason}). Save samples with numpy.save.") from None


def _collection(datasets, what: str) -> tuple[list[str], list[str], list]:
    """``(names, labels, raw arrays)``: names for the result, labels for error messages."""
    if isinstance(datasets, Mapping):
        keys = list(datasets)
        return [str(k) for k in keys], [f"{what}[{k!r}]" for k in keys], [datasets[k] for k in keys]
    if _is_path(datasets) or not hasattr(datasets, "__len__"):
        raise InputTypeError(f"{what} must be a sequence of arrays, a mapping name -> array or a sequence of .npy "
                             f"paths; got {type(datasets).__name__}. Wrap a single path or array in a list.")
    items = list(datasets)
    paths = [_is_path(item) for item in items]
    if any(paths) and not all(paths):
        raise InputTypeError(f"{what} mixes paths and arrays (item {paths.index(not paths[0])} differs from item 0). "
                             "Pass only .npy paths or only arrays.")
    if items and all(paths):
        names = [Path(item).stem for item in items]
        return names, [f"{what}[{i}] ({item})" for i, item in enumerate(items)], [_load(item) for item in items]
    return [str(i) for i in range(len(items))], [f"{what}[{i}]" for i in range(len(items))], items


def _validated(raw, label: str) -> np.ndarray:
    points = V.as_points(raw, label)
    if is_torch(points):
        points = points.detach().cpu().double().numpy()
    return np.ascontiguousarray(points, dtype=np.float64)


def read_inputs(datasets, others) -> Inputs:
    names, labels, raw = _collection(datasets, "datasets")
    if not raw:
        raise InputError("datasets must hold at least one dataset; got none. Pass a sequence of sample arrays.")
    column_names = names
    if others is not None:
        column_names, other_labels, other_raw = _collection(others, "others")
        if not other_raw:
            raise InputError("others must hold at least one dataset; got none. Pass sample arrays, or others=None.")
        labels, raw = labels + other_labels, raw + other_raw
    for side in (names, column_names):
        repeated = sorted({n for n in side if side.count(n) > 1})
        if repeated:
            raise InputError(f"dataset names must be distinct; got {', '.join(map(repr, repeated))} more than once "
                             "(.npy files with the same stem?). Rename the files or pass a mapping name -> array.")
    data = [_validated(item, label) for item, label in zip(raw, labels)]
    dim = data[0].shape[1]
    for array, label in zip(data, labels):
        if array.shape[1] != dim:
            raise InputError(f"every dataset must have the same dimension; {label} has d = {array.shape[1]}, "
                             f"{labels[0]} has d = {dim}. Pass samples of one space.")
    return Inputs(tuple(names), tuple(column_names), data, [dataset_digest(a) for a in data], others is None)
