"""NumPy <-> torch handling: outputs follow the type and device of the inputs.

torch is imported only when a torch tensor is actually passed in, so that
``import otdist`` and the NumPy code paths stay fast.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def is_torch(x: Any) -> bool:
    """True when ``x`` is a torch tensor (checked without importing torch)."""
    return type(x).__module__.split(".")[0] == "torch" and hasattr(x, "detach")


def torch_reference(*arrays: Any):
    """The first torch tensor among ``arrays`` (it decides device and dtype)."""
    for a in arrays:
        if a is not None and is_torch(a):
            return a
    return None


def to_numpy(x: Any) -> np.ndarray:
    """A float64 NumPy copy of an array or tensor (detached, on the CPU)."""
    if is_torch(x):
        return x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def compute_dtype(like):
    """The floating dtype torch work runs in for inputs like ``like``.

    float32/float64 stay as they are; float16/bfloat16 run in float32 (their range and precision
    are too small for the solvers); integer and bool tensors run in torch's default float.
    """
    import torch

    if not like.is_floating_point():
        return torch.get_default_dtype()
    if like.dtype in (torch.float16, torch.bfloat16):
        return torch.float32
    return like.dtype


def output_dtype(like):
    """The dtype of results for inputs like the tensor ``like``: its own if floating, else the default."""
    import torch

    return like.dtype if like.is_floating_point() else torch.get_default_dtype()


def _nonempty(a: Any) -> bool:
    """Whether ``a`` holds any value (False for what cannot be read as an array: validation reports it)."""
    try:
        return np.size(a) > 0
    except (ValueError, TypeError):
        return False


def numpy_output_dtype(*arrays: Any) -> np.dtype:
    """The dtype of NumPy array results: the floating dtypes of the inputs combined (float64 for
    integers, bools and Python lists), as ``np.result_type`` would."""
    dtypes = []
    for a in arrays:
        if a is None or is_torch(a):
            continue
        dtype = getattr(a, "dtype", None)
        if dtype is not None and np.dtype(dtype).kind == "f":
            dtypes.append(np.dtype(dtype))
        elif _nonempty(a):
            dtypes.append(np.dtype(np.float64))
    return np.result_type(*dtypes) if dtypes else np.dtype(np.float64)


def to_torch(x, like):
    """``x`` as a tensor on the device of ``like``, in the dtype torch work runs in (compute_dtype)."""
    import torch

    dtype = compute_dtype(like)
    if is_torch(x):
        return x.to(device=like.device, dtype=dtype)
    return torch.as_tensor(np.require(x, requirements="CW"), dtype=dtype, device=like.device)


def scalar_out(value: Any, like=None):
    """A Python float for NumPy inputs; a 0-d tensor in the output dtype of ``like`` when it is a tensor."""
    if like is not None and is_torch(like):
        import torch

        if not is_torch(value):
            value = torch.as_tensor(float(value), dtype=torch.float64, device=like.device)
        return value.to(dtype=output_dtype(like))
    if is_torch(value):
        return float(value.detach().cpu())
    return float(value)


def array_out(value: Any, like=None, dtype=None):
    """A tensor in the output dtype of ``like`` when it is one, else a NumPy array of ``dtype``
    (float64 by default)."""
    if value is None:
        return None
    if like is not None and is_torch(like):
        import torch

        if not is_torch(value):
            value = torch.as_tensor(np.asarray(value), device=like.device)
        return value.to(dtype=output_dtype(like))
    array = to_numpy(value) if is_torch(value) else np.asarray(value)
    return array.astype(dtype or np.float64, copy=False)


def resolve_device(device: str, *tensors: Any):
    """The torch device to run on: that of the first tensor not on the CPU, else ``device``
    (``"auto"``: CUDA when available).  ``device`` was checked by ``_validation.check_device``."""
    import torch

    for t in tensors:
        if is_torch(t) and t.device.type != "cpu":
            return t.device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
