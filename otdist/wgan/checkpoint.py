"""Checkpoints: plain tensors and numbers only, checksummed, written atomically, loaded with ``weights_only=True``.

A checkpoint is the ``torch.save`` of a dict behind the SHA-256 header of :mod:`otdist._io`, so a
flipped or truncated byte is refused on load with a clear error. ``torch.load(weights_only=True)``
refuses pickles that would construct arbitrary objects, so a tampered checkpoint cannot run code
when it is loaded: otdist reports it as an invalid checkpoint. Checkpoints written before the
checksum existed load with an :class:`~otdist.UnverifiedFileWarning`.
"""

from __future__ import annotations

import io
import pickle
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .. import _io
from ..exceptions import InputError

CHECKPOINT = "checkpoint.pt"
FORMAT = "otdist-wgan-1"
#: Config fields that may differ between a run and its resumption.
RESUMABLE_CHANGES = ("steps", "resume", "progress", "device", "eval_every", "checkpoint_every", "eval_samples", "out")
#: Keys every checkpoint holds (``train`` needs them all to resume, ``load_generator`` the first four).
GENERATOR_KEYS = ("format", "shape", "latent_dim", "generator")
TRAINING_KEYS = ("config", "step", "critic", "generator_optimizer", "critic_optimizer", "torch_rng", "stream_rng",
                 "log", "seconds")
#: What ``torch.save`` files begin with (a zip archive): the only format a checkpoint without checksum may have.
ZIP_MAGIC = b"PK\x03\x04"


def save_atomic(state: dict[str, Any], path: Path) -> Path:
    """Serialise ``state`` with ``torch.save`` and write it, checksummed, in one rename over ``path``."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return _io.write_checksummed(path, buffer.getvalue())


def _deserialise(payload: bytes, path: Path) -> Any:
    try:
        return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, AttributeError, ValueError) as err:
        reason = " ".join(str(err).split())
        raise InputError(
            f"{path} is not a valid otdist checkpoint: loading it with weights_only=True failed ({reason}). "
            "Refusing to unpickle arbitrary objects; use a checkpoint written by otdist."
        ) from None


def _check_keys(state: dict[str, Any], keys: tuple[str, ...], path: Path) -> None:
    missing = [k for k in keys if k not in state]
    if missing:
        raise InputError(f"{path} is an incomplete otdist WGAN checkpoint: it lacks {', '.join(map(repr, missing))}. "
                         "Use a checkpoint.pt written by `otdist wgan train` of this version.")


def load(path, expected_config: dict[str, Any] | None = None, *, for_training: bool = False) -> dict[str, Any]:
    """The checkpoint at ``path``; a clear error for anything that is not an intact otdist checkpoint.

    ``for_training`` also requires the optimiser and RNG states that resuming needs;
    ``expected_config`` refuses a checkpoint whose configuration differs outside ``RESUMABLE_CHANGES``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}. Pass the checkpoint.pt written by `otdist wgan train`.")
    payload, verified = _io.read_checksummed(path)
    if not verified:
        if not payload.startswith(ZIP_MAGIC):
            raise InputError(f"{path} is not an otdist checkpoint: it has neither otdist's checksum header nor "
                             "torch.save's format. Pass the checkpoint.pt written by `otdist wgan train`.")
        warnings.warn(f"{path} has no checksum (written by an earlier otdist): it is loaded without verifying "
                      "its integrity. Save it again (resume and finish the run) to add one.",
                      _io.UnverifiedFileWarning, stacklevel=2)
    state = _deserialise(payload, path)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise InputError(f"{path} is not an otdist WGAN checkpoint (format {FORMAT!r} expected). "
                         "Pass the checkpoint.pt written by `otdist wgan train`.")
    _check_keys(state, GENERATOR_KEYS + (TRAINING_KEYS if for_training else ()), path)
    if expected_config is not None:
        saved = state["config"]
        if not isinstance(saved, dict):
            raise InputError(f"{path} holds no configuration dict; it cannot be resumed. Start a new run.")
        changed = sorted(k for k in saved
                         if k not in RESUMABLE_CHANGES and expected_config.get(k) != saved.get(k))
        if changed:
            details = ", ".join(f"{k}: {saved.get(k)!r} -> {expected_config.get(k)!r}" for k in changed)
            raise InputError(f"cannot resume {path} with a different configuration ({details}). "
                             "Use the same options as the original run, or a new --out directory.")
    return state


def load_weights(module: torch.nn.Module, weights: Any, what: str, path) -> None:
    """``module.load_state_dict(weights)``, with a one-line error when the architectures differ."""
    if not isinstance(weights, dict):
        raise InputError(f"{path}: the {what} weights are a {type(weights).__name__}, not a state dict. "
                         "Use a checkpoint written by otdist.")
    try:
        module.load_state_dict(weights)
    except RuntimeError as err:
        reason = " ".join(str(err).split())
        raise InputError(
            f"{path} holds a {what} of another architecture than this otdist builds ({reason}). "
            "Use a checkpoint written by this version of otdist with the same data and critic."
        ) from None


def sample(generator: torch.nn.Module, n: int, shape, seed: int = 0) -> np.ndarray:
    device = next(generator.parameters()).device
    noise = torch.randn(n, generator.latent_dim, generator=torch.Generator().manual_seed(seed)).to(device)
    with torch.no_grad():
        out = generator(noise).cpu().numpy()
    return out.reshape(n, *shape)


def _positive_ints(value: Any, what: str, path) -> tuple[int, ...]:
    values = tuple(value) if isinstance(value, (list, tuple)) else (value,)
    if not values or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values):
        raise InputError(f"{path}: {what} must be positive integers; got {value!r}. Use a checkpoint written by otdist.")
    return values


def _generator_architecture(state: dict[str, Any], legacy, path) -> tuple[int, int, float]:
    """(hidden width, depth, output scale) of the checkpoint's generator; ``legacy`` for checkpoints without them."""
    spec = state.get("architecture")
    if spec is None:
        return legacy.generator_hidden, legacy.generator_depth, 1.0
    try:
        hidden, depth = _positive_ints([spec["generator_hidden"], spec["generator_depth"]], "the generator's widths", path)
        scale = float(spec["scale"])
    except (KeyError, TypeError, ValueError):
        raise InputError(f"{path}: the architecture entry must hold generator_hidden, generator_depth and scale; "
                         f"got {spec!r}. Use a checkpoint written by otdist.") from None
    if not (np.isfinite(scale) and scale > 0):
        raise InputError(f"{path}: the generator's output scale must be a positive number; got {scale!r}. "
                         "Use a checkpoint written by otdist.")
    return hidden, depth, scale


def load_generator(path) -> Callable[..., np.ndarray]:
    """A callable ``sample(n, seed=0) -> array`` from a checkpoint (samples shaped like the data)."""
    from .models import IMAGES, LEGACY_POINTS, Generator

    state = load(path)
    shape = _positive_ints(state["shape"], "shape", path)
    (latent_dim,) = _positive_ints(state["latent_dim"], "latent_dim", path)
    image = len(shape) > 1
    hidden, depth, scale = _generator_architecture(state, IMAGES if image else LEGACY_POINTS, path)
    with torch.random.fork_rng(devices=[]):  # initialisation draws from the global generator
        generator = Generator(latent_dim, int(np.prod(shape)), hidden, depth, image, scale)
    load_weights(generator, state["generator"], "generator", path)
    generator.eval()

    def sample_fn(n: int, seed: int = 0) -> np.ndarray:
        return sample(generator, int(n), shape, seed)

    return sample_fn
