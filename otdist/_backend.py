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


def to_torch(x: Any, like):
    """``x`` as a tensor with the dtype and device of the tensor ``like``."""
    import torch

    if is_torch(x):
        return x.to(device=like.device, dtype=like.dtype)
    return torch.as_tensor(np.asarray(x), dtype=like.dtype, device=like.device)


def scalar_out(value: Any, like=None):
    """A Python float for NumPy inputs; a 0-d tensor when ``like`` is a tensor."""
    if like is not None and is_torch(like):
        if is_torch(value):
            return value
        import torch

        return torch.as_tensor(float(value), dtype=like.dtype, device=like.device)
    if is_torch(value):
        return float(value.detach().cpu())
    return float(value)


def array_out(value: Any, like=None):
    """A NumPy array, or a tensor on the device of ``like`` when it is one."""
    if value is None:
        return None
    if like is not None and is_torch(like):
        return value if is_torch(value) else to_torch(value, like)
    return to_numpy(value) if is_torch(value) else value
