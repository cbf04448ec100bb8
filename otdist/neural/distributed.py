"""Multi-process training with torch.distributed (launch with ``torchrun``).

Under ``torchrun --nproc_per_node=N`` every rank calls the same code on the same data: the
critic is wrapped in ``DistributedDataParallel`` (gloo on CPU, nccl on GPU), every rank draws its
minibatches from its own shard of the training samples (``batch_size / N`` each), and DDP
averages the gradients, so each step sees a global batch of ``batch_size`` and the parameters stay
identical on all ranks. Outside ``torchrun`` these helpers are no-ops.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def world() -> tuple[int, int]:
    """(rank, world size); (0, 1) in a single process."""
    if is_distributed():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def shard(n: int, rank: int, size: int) -> torch.Tensor:
    """Indices of this rank's shard of ``n`` samples (strided, so shards differ by at most one)."""
    return torch.arange(rank, n, size)


def wrap(module: torch.nn.Module) -> torch.nn.Module:
    """``module`` in DDP when running distributed, else unchanged."""
    if not is_distributed():
        return module
    device_ids = [module_device(module).index] if module_device(module).type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(module, device_ids=device_ids)


def module_device(module: torch.nn.Module) -> torch.device:
    return next(module.parameters()).device


def init_from_env() -> bool:
    """Initialise the default process group from torchrun's environment (gloo on CPU, nccl on GPU)."""
    import os

    if is_distributed() or "RANK" not in os.environ:
        return is_distributed()
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend)
    return True
