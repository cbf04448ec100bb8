"""Every check of user input, written once.

Each error message says what was expected, what was received and how to fix it.
Solvers never validate: the API layer calls these functions first.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Iterable

import numpy as np

from ._backend import compute_dtype, is_torch, to_numpy, to_torch
from .exceptions import InputError, InputTypeError, MemoryGuardError

_REAL_KINDS = "biuf"


def _first_bad_index(mask: np.ndarray) -> tuple[int, ...]:
    flat = int(np.flatnonzero(mask.ravel())[0])
    return tuple(int(i) for i in np.unravel_index(flat, mask.shape))


def _fmt_index(index: tuple[int, ...]) -> str:
    return str(index[0]) if len(index) == 1 else str(index)


def as_real_array(x: Any, name: str):
    """``x`` as a float64 NumPy array or a floating torch tensor.

    Raises TypeError for non-numeric input (strings, objects, complex numbers)
    and ValueError for ragged nested lists, NaN or infinity.
    """
    if x is None:
        raise InputTypeError(f"{name} must be an array of real numbers; got None.")
    if is_torch(x):
        import torch

        if x.is_complex():
            raise InputTypeError(
                f"{name} must contain real numbers; got a complex tensor ({x.dtype}). "
                "Pass x.real or x.abs() explicitly."
            )
        arr = x.to(compute_dtype(x))
    else:
        if isinstance(x, (str, bytes)):
            raise InputTypeError(f"{name} must be an array of real numbers; got a {type(x).__name__}.")
        try:
            arr = np.asarray(x)
        except (ValueError, TypeError) as exc:
            raise InputError(
                f"{name} must be a rectangular array of real numbers; could not convert it ({exc}). "
                "Check that every row has the same length."
            ) from None
        if arr.dtype.kind not in _REAL_KINDS:
            raise InputTypeError(
                f"{name} must contain real numbers; got dtype {arr.dtype}. "
                "Convert it with np.asarray(values, dtype=float)."
            )
        arr = arr.astype(np.float64, copy=False)
    check_finite(arr, name)
    return arr


def check_finite(arr, name: str) -> None:
    if is_torch(arr):
        import torch

        if bool(torch.isfinite(arr).all()):
            return
        mask = ~torch.isfinite(arr.detach()).cpu().numpy()
        values = arr.detach().cpu().numpy()
    else:
        finite = np.isfinite(arr)
        if finite.all():
            return
        mask, values = ~finite, arr
    index = _first_bad_index(mask)
    raise InputError(
        f"{name} must be finite; got {values[index]} at index {_fmt_index(index)} "
        f"({int(mask.sum())} non-finite entries). Remove or impute NaN/inf values first."
    )


def as_points(x: Any, name: str):
    """Samples as a 2-D ``(n, d)`` array; a 1-D input is ``n`` points on the line."""
    arr = as_real_array(x, name)
    if arr.ndim == 0:
        raise InputError(
            f"{name} must be a 1-D array of values or a 2-D (n, d) array of points; got a scalar. "
            "Wrap it in a list: [value]."
        )
    if arr.ndim > 2:
        raise InputError(
            f"{name} must be a 1-D array of values or a 2-D (n, d) array of points; "
            f"got shape {tuple(arr.shape)}. Reshape it to (n, d)."
        )
    if arr.shape[0] == 0 or (arr.ndim == 2 and arr.shape[1] == 0):
        raise InputError(
            f"{name} must contain at least one point; got shape {tuple(arr.shape)}. "
            "Pass a non-empty sample."
        )
    return arr.reshape(-1, 1) if arr.ndim == 1 else arr


def as_point_batch(x: Any, name: str):
    """Samples as ``(n, d)`` points, or a batch ``(B, n, d)`` of B point clouds."""
    arr = as_real_array(x, name)
    if arr.ndim == 3:
        if 0 in tuple(arr.shape):
            raise InputError(f"{name} must contain at least one point per batch; got shape {tuple(arr.shape)}.")
        return arr
    return as_points(arr, name)


def as_weight_batch(w: Any, shape: tuple, name: str, values_name: str, like=None):
    """Weights for ``shape`` (n,) or (B, n): (n,) or (B, n) arrays, normalised per batch."""
    if len(shape) == 1:
        return as_weights(w, shape[0], name, values_name, like)
    batch, n = shape[0], shape[1]
    if w is None:
        return as_weights(None, n, name, values_name, like).expand(batch, n) if like is not None else np.full((batch, n), 1.0 / n)
    arr = as_real_array(w, name)
    if tuple(arr.shape) == (n,):
        arr = arr[None].expand(batch, n) if is_torch(arr) else np.broadcast_to(arr, (batch, n))
    if tuple(arr.shape) != (batch, n):
        raise InputError(
            f"{name} must have shape ({n},) or ({batch}, {n}) to match {values_name} of shape {tuple(shape)}; "
            f"got shape {tuple(arr.shape)}."
        )
    rows = [as_weights(arr[k], n, f"{name}[{k}]", values_name, like) for k in range(batch)]
    if like is not None:
        import torch

        return torch.stack(rows)
    return np.stack(rows)


def check_same_dim(x, y, names: tuple[str, str] = ("u_values", "v_values")) -> None:
    if x.shape[-1] != y.shape[-1]:
        raise InputError(
            f"{names[0]} and {names[1]} must have the same number of columns (dimension d); "
            f"got {x.shape[-1]} and {y.shape[-1]}. Both samples must live in the same space."
        )
    if x.ndim != y.ndim or (x.ndim == 3 and x.shape[0] != y.shape[0]):
        raise InputError(
            f"{names[0]} and {names[1]} must both be (n, d) point clouds or both (B, n, d) batches with the "
            f"same B; got shapes {tuple(x.shape)} and {tuple(y.shape)}."
        )


def as_weights(w: Any, n: int, name: str, values_name: str, like=None):
    """Non-negative weights of length ``n``, normalised to sum to one.

    ``None`` gives uniform weights. With ``like`` a torch tensor the result is a
    tensor of its dtype and device.
    """
    if w is not None and not isinstance(w, (str, bytes)) and _is_empty(w):
        w = None  # POT's convention: an empty list means uniform weights
    if w is None:
        uniform = np.full(n, 1.0 / n)
        return to_torch(uniform, like) if like is not None and is_torch(like) else uniform
    arr = as_real_array(w, name)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise InputError(
            f"{name} must be a 1-D array with one weight per point of {values_name} (length {n}); "
            f"got shape {tuple(arr.shape)}. Pass one non-negative weight per point."
        )
    values = arr.detach().cpu().numpy() if is_torch(arr) else arr
    if (values < 0).any():
        index = int(np.flatnonzero(values < 0)[0])
        raise InputError(
            f"{name} must be non-negative; got min {values.min():g} at index {index}. "
            "Pass a probability vector (or any non-negative masses) or omit the weights."
        )
    total = float(values.sum())
    if total <= 0:
        raise InputError(
            f"{name} must have a positive sum; got all zeros. "
            "Give at least one point a positive weight or omit the weights."
        )
    if like is not None and is_torch(like) and not is_torch(arr):
        arr = to_torch(arr, like)
    return arr / arr.sum()


def _is_empty(w: Any) -> bool:
    if is_torch(w):
        return w.numel() == 0
    try:
        return np.size(w) == 0
    except (ValueError, TypeError):
        return False


def as_histogram(p: Any, name: str, *, estimator_hint: str):
    """A probability vector: 1-D, non-negative, positive sum; returned normalised."""
    arr = as_real_array(p, name)
    if arr.ndim != 1:
        raise InputError(
            f"{name} must be a 1-D probability vector (histogram on a shared support); "
            f"got an array of shape {tuple(arr.shape)}. For samples (points), use {estimator_hint}."
        )
    if arr.shape[0] == 0:
        raise InputError(f"{name} must be a non-empty probability vector; got length 0.")
    values = arr.detach().cpu().numpy() if is_torch(arr) else arr
    if (values < 0).any():
        index = int(np.flatnonzero(values < 0)[0])
        raise InputError(
            f"{name} must be a probability vector with non-negative entries; got {values[index]:g} "
            f"at index {index}. This looks like raw samples, not a histogram: use {estimator_hint}."
        )
    total = float(values.sum())
    if total <= 0:
        raise InputError(
            f"{name} must have a positive sum; got all zeros. Pass a probability vector."
        )
    return arr / arr.sum()


def check_same_length(p, q, names: tuple[str, str]) -> None:
    if p.shape[0] != q.shape[0]:
        raise InputError(
            f"{names[0]} and {names[1]} must be histograms on the same support (equal length); "
            f"got lengths {p.shape[0]} and {q.shape[0]}. Bin both on the same grid first."
        )


def check_order(p: Any) -> float:
    """The order p of W_p: a real number >= 1."""
    if isinstance(p, bool) or not isinstance(p, numbers.Real):
        raise InputTypeError(f"p must be a real number >= 1 (the order of W_p); got {p!r}.")
    p = float(p)
    if not math.isfinite(p) or p < 1:
        raise InputError(
            f"p must be a finite number >= 1 (W_p is a metric only for p >= 1); got {p}. "
            "Use p=1 for the earth mover's distance or p=2 for the quadratic one."
        )
    return p


def check_positive(value: Any, name: str, *, integer: bool = False, allow_zero: bool = False):
    kind = "an integer" if integer else "a real number"
    ok_type = isinstance(value, numbers.Integral) if integer else isinstance(value, numbers.Real)
    if isinstance(value, bool) or not ok_type:
        cast = "int(...)" if integer else "float(...)"
        raise InputTypeError(
            f"{name} must be {kind}; got {value!r} ({type(value).__name__}). Pass a number, converted with {cast} "
            "if it comes from a string or an array."
        )
    bad = value < 0 if allow_zero else value <= 0
    if bad or not math.isfinite(float(value)):
        bound = ">= 0" if allow_zero else "> 0"
        raise InputError(f"{name} must be {kind} {bound}; got {value!r}. "
                         f"Pass a finite value {bound} or leave {name} at its default.")
    return int(value) if integer else float(value)


def check_flag(value: Any, name: str, meaning: str = "") -> bool:
    """A boolean option (Python or NumPy bool; not 0/1, which usually means a misplaced argument)."""
    if not isinstance(value, (bool, np.bool_)):
        raise InputTypeError(f"{name} must be True or False{meaning}; got {value!r} ({type(value).__name__}).")
    return bool(value)


def check_seed(seed: Any, name: str = "seed"):
    """A random seed: None (fresh entropy) or a non-negative integer."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise InputTypeError(
            f"{name} must be a non-negative integer or None; got {seed!r} ({type(seed).__name__}). "
            "Pass e.g. seed=0 for reproducible results, or seed=None for fresh randomness."
        )
    if seed < 0:
        raise InputError(f"{name} must be a non-negative integer or None; got {seed}. Pass e.g. seed=0.")
    return int(seed)


def check_level(level: Any) -> float:
    """A coverage probability in (0, 1)."""
    if isinstance(level, bool) or not isinstance(level, numbers.Real):
        raise InputTypeError(f"level must be a number in (0, 1), the interval's coverage; got {level!r} "
                             f"({type(level).__name__}). Pass e.g. level=0.95.")
    if not 0.0 < float(level) < 1.0:
        raise InputError(f"level must be in (0, 1), the interval's coverage probability; got {level!r}. "
                         "Pass e.g. level=0.95 (not 95).")
    return float(level)


def as_mean(mean: Any, name: str):
    """A non-empty 1-D vector of reals (the mean of a Gaussian)."""
    arr = as_real_array(mean, name)
    if arr.ndim != 1 or arr.shape[0] == 0:
        raise InputError(
            f"{name} must be a non-empty 1-D vector (a mean of length d); got shape {tuple(arr.shape)}. "
            "Pass x.mean(axis=0) of samples x of shape (n, d)."
        )
    return arr


def as_covariance(cov: Any, name: str, d: int, rtol: float):
    """A (d, d) covariance: symmetric to ``rtol`` relative to its largest entry, PSD to ``-rtol ‖C‖_F``."""
    arr = as_real_array(cov, name)
    if tuple(arr.shape) != (d, d):
        raise InputError(
            f"{name} must be a ({d}, {d}) covariance matrix to match the means of length {d}; got shape "
            f"{tuple(arr.shape)}. Pass np.cov(x, rowvar=False) of samples x of shape (n, {d})."
        )
    values = to_numpy(arr)
    largest = float(np.abs(values).max())
    asymmetry = float(np.abs(values - values.T).max())
    if asymmetry > rtol * largest:
        raise InputError(
            f"{name} must be symmetric (max |C - Cᵀ| <= {rtol:.1e} max |C|); got max |C - Cᵀ| = {asymmetry:.3g} "
            f"with max |C| = {largest:.3g}. Pass (C + C.T) / 2 if the asymmetry is rounding, else check that "
            "C is a covariance matrix."
        )
    check_psd((values + values.T) / 2, name, rtol)
    return arr


def check_psd(values: np.ndarray, name: str, rtol: float) -> None:
    """Smallest eigenvalue >= -rtol ‖C‖_F, tested by a Cholesky factorisation of C + rtol ‖C‖_F I."""
    largest = float(np.abs(values).max())
    if largest == 0:
        return
    values = values / largest
    norm = float(np.linalg.norm(values))
    shifted = values + rtol * norm * np.eye(values.shape[0])
    try:
        np.linalg.cholesky(shifted)
        return
    except np.linalg.LinAlgError:
        smallest = float(np.linalg.eigvalsh(values)[0])
    if smallest >= -rtol * norm:
        return
    raise InputError(
        f"{name} must be positive semi-definite (smallest eigenvalue >= -{rtol:.1e} ‖C‖_F); got smallest "
        f"eigenvalue {smallest * largest:.3g} with ‖C‖_F = {norm * largest:.3g}. A covariance has no negative "
        "eigenvalues: compute it with np.cov(x, rowvar=False), or clip its eigenvalues at 0."
    )


def check_device(device: Any) -> None:
    """``"auto"`` or a torch device that exists on this machine."""
    import torch

    expected = 'device must be "auto" or a torch device string such as "cpu" or "cuda:0"'
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise InputTypeError(f"{expected}; got {device!r} ({type(device).__name__}). Pass a string.")
    if device == "auto":
        return
    try:
        parsed = torch.device(device)
    except RuntimeError:
        raise InputError(f"{expected}; got {device!r}. Pass a device torch knows, or \"auto\".") from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device={device!r} needs CUDA, which this torch build or machine does not have "
                         '(torch.cuda.is_available() is False). Use device="auto" or "cpu".')
    if parsed.type == "cuda" and parsed.index is not None and parsed.index >= torch.cuda.device_count():
        raise InputError(f"device={device!r} does not exist: this machine has {torch.cuda.device_count()} CUDA "
                         'device(s). Use device="cuda" or a valid index.')
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f'device={device!r} needs Apple MPS, which is not available here. Use device="auto" or "cpu".')


def check_choice(value: Any, choices: Iterable[str], name: str) -> str:
    choices = tuple(choices)
    if not isinstance(value, str) or value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise InputError(f"{name} must be one of {listed}; got {value!r}. Pass one of the values listed.")
    return value


def check_cost_matrix(cost: Any, n: int, m: int, batch: tuple = (), *, allow_negative: bool = False):
    """A real, finite cost matrix of shape (*batch, n, m); non-negative unless ``allow_negative``
    (a transport cost may be shifted by a constant, a ground distance may not)."""
    arr = as_real_array(cost, "cost")
    expected = (*tuple(batch), n, m)
    if tuple(arr.shape) != expected:
        raise InputError(
            f"cost must have shape {expected} (batch..., n, m), one row per source point and one column "
            f"per target point; got shape {tuple(arr.shape)}."
        )
    if allow_negative:
        return arr
    values = arr.detach().cpu().numpy() if is_torch(arr) else arr
    if (values < 0).any():
        index = _first_bad_index(values < 0)
        raise InputError(
            f"a ground distance must be non-negative; got {values[index]:g} at index {index}. "
            "Check the sign of your metric, or pass the matrix as cost= to the exact or LP methods, which accept "
            "any real costs."
        )
    return arr


def check_size(n: int, m: int, limit: int, method: str, alternatives: str) -> None:
    """The memory/size guard: refuse problems whose n*m cost matrix is too large."""
    if n * m > limit:
        raise MemoryGuardError(
            f"method={method!r} needs an n x m = {n} x {m} = {n * m:,} cost matrix, above its limit "
            f"of {limit:,} entries. Use a cheaper method ({alternatives}), subsample the points, "
            f"or raise the limit with max_size=... if you have the memory and time."
        )


def reject_options(options: dict, method: str) -> None:
    if options:
        names = ", ".join(sorted(options))
        raise InputTypeError(
            f"method={method!r} got unexpected option(s): {names}. "
            "See the method's page in the documentation for the options it accepts."
        )
