"""What keeps a training run from touching the process around it: signals, RNG state, train mode."""

from __future__ import annotations

import contextlib
import signal
from typing import Any

import torch


class InterruptFlag:
    """Turns SIGINT/SIGTERM into a flag checked between steps (main thread only)."""

    def __init__(self):
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __enter__(self):
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        except ValueError:  # not in the main thread: no handlers
            self._previous.clear()
        return self

    def _handle(self, signum, frame):
        self.requested = True

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)



class PrivateRNG:
    """The run's own torch RNG state, swapped into the global generator only inside ``with``.

    The gradient penalty draws its interpolation weights from torch's global generator; entering
    swaps the run's state in (CPU, and the CUDA device's when training there), leaving swaps the
    caller's state back, so a run neither changes nor depends on the caller's RNG.
    """

    def __init__(self, cpu_state: torch.Tensor, device: torch.device, seed: int):
        self.cpu_state = cpu_state
        self.cuda = device if device.type == "cuda" else None
        self.cuda_state = torch.Generator(device=device).manual_seed(seed).get_state() if self.cuda else None
        self._saved: tuple[torch.Tensor, torch.Tensor | None] | None = None

    def __enter__(self):
        saved_cuda = torch.cuda.get_rng_state(self.cuda) if self.cuda else None
        self._saved = (torch.get_rng_state(), saved_cuda)
        torch.set_rng_state(self.cpu_state)
        if self.cuda:
            torch.cuda.set_rng_state(self.cuda_state, self.cuda)
        return self

    def __exit__(self, *exc):
        saved_cpu, saved_cuda = self._saved
        self.cpu_state = torch.get_rng_state()
        torch.set_rng_state(saved_cpu)
        if self.cuda:
            self.cuda_state = torch.cuda.get_rng_state(self.cuda)
            torch.cuda.set_rng_state(saved_cuda, self.cuda)


@contextlib.contextmanager
def evaluating(*modules: torch.nn.Module):
    """Eval mode and no gradients (spectral normalisation's power iteration runs only in train mode)."""
    modes = [m.training for m in modules]
    try:
        for m in modules:
            m.eval()
        with torch.no_grad():
            yield
    finally:
        for m, mode in zip(modules, modes):
            m.train(mode)
