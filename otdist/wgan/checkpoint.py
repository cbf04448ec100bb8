"""Checkpoints: plain tensors and numbers only, written atomically, loaded with ``weights_only=True``.

``torch.load(weights_only=True)`` refuses pickles that would construct arbitrary objects, so a
tampered checkpoint cannot run code when it is loaded: otdist reports it as an invalid checkpoint.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from ..exceptions import InputError

CHECKPOINT = "checkpoint.pt"
FORMAT = "otdist-wgan-1"
#: Config fields that may differ between a run and its resumption.
RESUMABLE_CHANGES = ("steps", "resume", "progress", "device", "eval_every", "checkpoint_every", "out")


def save_atomic(state: dict[str, Any], path: Path) -> Path:
    """Write to a temporary file in the same directory, then rename over ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load(path, expected_config: dict[str, Any] | None = None) -> dict[str, Any]:
    """The checkpoint at ``path``; a clear error for anything that is not a plain otdist checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}. Pass the checkpoint.pt written by `otdist wgan train`.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, AttributeError) as err:
        raise InputError(
            f"{path} is not a valid otdist checkpoint: loading it with weights_only=True failed ({err}). "
            "Refusing to unpickle arbitrary objects; use a checkpoint written by otdist."
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise InputError(f"{path} is not an otdist WGAN checkpoint (format {FORMAT!r} expected).")
    if expected_config is not None:
        changed = sorted(k for k, v in state["config"].items()
                         if k not in RESUMABLE_CHANGES and expected_config.get(k) != v)
        if changed:
            details = ", ".join(f"{k}: {state['config'][k]!r} -> {expected_config.get(k)!r}" for k in changed)
            raise InputError(f"cannot resume {path} with a different configuration ({details}). "
                             "Use the same options as the original run, or a new --out directory.")
    return state


def sample(generator: torch.nn.Module, n: int, shape, seed: int = 0) -> np.ndarray:
    device = next(generator.parameters()).device
    noise = torch.randn(n, generator.latent_dim, generator=torch.Generator().manual_seed(seed)).to(device)
    with torch.no_grad():
        out = generator(noise).cpu().numpy()
    return out.reshape(n, *shape)


def load_generator(path) -> Callable[..., np.ndarray]:
    """A callable ``sample(n, seed=0) -> array`` from a checkpoint (samples shaped like the data)."""
    from .models import IMAGES, POINTS, Generator

    state = load(path)
    shape = tuple(state["shape"])
    image = len(shape) > 1
    arch = IMAGES if image else POINTS
    generator = Generator(int(state["latent_dim"]), int(np.prod(shape)), arch.generator_hidden, arch.generator_depth, image)
    generator.load_state_dict(state["generator"])
    generator.eval()

    def sample_fn(n: int, seed: int = 0) -> np.ndarray:
        return sample(generator, int(n), shape, seed)

    return sample_fn
