"""Lipschitz critics for the Kantorovich-Rubinstein dual: W1 = sup_{Lip(f) <= 1} E_P f - E_Q f.

Four ways to keep a network (approximately) 1-Lipschitz:

* ``"clip"`` -- weight clipping to [-c, c] after every step (the original WGAN). Crude: the
  Lipschitz constant is only bounded by an architecture-dependent multiple of c, and clipped
  networks lose capacity (they drift towards simple functions), so the estimate is scaled,
  not calibrated. Kept for fidelity and comparison.
* ``"gp"`` -- gradient penalty lambda E[(|grad f(x_hat)| - 1)^2] on random interpolates (WGAN-GP),
  or its one-sided variant lambda E[max(0, |grad f| - 1)^2]. Soft: not a guarantee.
* ``"spectral"`` -- spectral normalisation of every linear layer
  (``torch.nn.utils.parametrizations.spectral_norm``) with ReLU: 1-Lipschitz up to the power
  iteration's accuracy.
* ``"groupsort"`` -- orthogonal linear layers (``torch.nn.utils.parametrizations.orthogonal``)
  with GroupSort activations: 1-Lipschitz *by construction* (each layer's weight has orthonormal rows
  or columns, up to rounding, and GroupSort permutes coordinates), and gradient-norm preserving.

What is certified.  Only a construction certifies a Lipschitz constant: a gradient norm measured at
some points (:func:`gradient_norms`) certifies nothing about the points in between.  For every kind
here, the product of the layers' spectral norms bounds the constant (the activations are
1-Lipschitz); :func:`otdist.neural.certificate.lipschitz_bound` computes it.  For a 1-Lipschitz f,
E_P f - E_Q f <= W1(P, Q); its value on held-out samples estimates that expectation, so it is below W1
in expectation, not certified below it.  See :mod:`otdist.neural.certificate` for the certified
bounds on the W1 between two given samples.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrizations
from ..exceptions import InputError

CRITICS = ("groupsort", "gp", "spectral", "clip")
DEFAULT_CLIP = 0.01


class GroupSort(nn.Module):
    """Sort the features within groups of ``group_size`` (MaxMin for 2): 1-Lipschitz, norm-preserving."""

    def __init__(self, group_size: int = 2):
        super().__init__()
        self.group_size = group_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        grouped = x.reshape(*shape[:-1], shape[-1] // self.group_size, self.group_size)
        return grouped.sort(dim=-1).values.reshape(shape)


class Critic(nn.Module):
    """An MLP critic ``R^d -> R`` with one of the Lipschitz constructions in ``CRITICS``."""

    def __init__(self, dim: int, kind: str = "groupsort", hidden: int = 128, depth: int = 3):
        super().__init__()
        if kind not in CRITICS:
            raise InputError(f"critic must be one of {', '.join(map(repr, CRITICS))}; got {kind!r}.")
        self.kind = kind
        widths = [dim] + [hidden] * (depth - 1) + [1]
        layers: list[nn.Module] = []
        for k, (w_in, w_out) in enumerate(zip(widths[:-1], widths[1:])):
            linear = nn.Linear(w_in, w_out)
            if kind == "groupsort":
                linear = parametrizations.orthogonal(linear)
            elif kind == "spectral":
                linear = parametrizations.spectral_norm(linear)
            layers.append(linear)
            if k < len(widths) - 2:
                layers.append(GroupSort(2) if kind == "groupsort" else nn.ReLU() if kind == "spectral" else nn.LeakyReLU(0.2))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)

    def clip_(self, c: float) -> None:
        with torch.no_grad():
            for param in self.parameters():
                param.clamp_(-c, c)


def build_critic(dim: int, kind: str, hidden: int, depth: int, generator: torch.Generator) -> Critic:
    """A ``Critic`` initialised from ``generator``, leaving the global random state untouched.

    Module construction draws from torch's global CPU generator (``nn.Linear``'s initialisation, the
    orthogonal and spectral parametrisations), so it runs inside ``torch.random.fork_rng``, whose
    forked state is seeded from ``generator``: the same generator state gives the same critic.
    """
    seed = int(torch.randint(2**62, (1,), generator=generator))
    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(seed)
        return Critic(dim, kind, hidden, depth)


def gradient_penalty(critic: nn.Module, x: torch.Tensor, y: torch.Tensor, *, one_sided: bool = False,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """E[(|grad f(x_hat)| - 1)^2] on x_hat = t x + (1 - t) y, t ~ U(0, 1) (one-sided: only above 1).

    ``generator`` (a CPU ``torch.Generator``) draws t; without it, t comes from torch's global generator.
    """
    n = min(x.shape[0], y.shape[0])
    shape = (n, *([1] * (x.ndim - 1)))
    if generator is None:
        t = torch.rand(shape, device=x.device, dtype=x.dtype)
    else:
        t = torch.rand(shape, generator=generator, dtype=x.dtype).to(x.device)
    x_hat = (t * x[:n] + (1 - t) * y[:n]).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    excess = grad.flatten(1).norm(dim=1) - 1
    if one_sided:
        excess = excess.clamp_min(0)
    return (excess**2).mean()


def gradient_norms(critic: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """|grad f(x_i)| for each row of x."""
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).sum(), x)
    return grad.flatten(1).norm(dim=1)
