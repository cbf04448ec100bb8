"""The WGAN's generator (an MLP) and its critic (the KR critics of :mod:`otdist.neural.critics`)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..neural.critics import Critic


@dataclass(frozen=True)
class Architecture:
    """Widths and depths (linear layers) of both networks, and the latent dimension."""

    latent_dim: int
    generator_hidden: int
    generator_depth: int
    critic_hidden: int
    critic_depth: int


#: Images (flattened): a 64-D latent and a tanh output (data in [-1, 1]). The 2-D datasets' networks
#: are chosen per dataset in :mod:`otdist.wgan.recipes`.
IMAGES = Architecture(latent_dim=64, generator_hidden=256, generator_depth=4, critic_hidden=256, critic_depth=3)
#: The toy networks of checkpoints written before the 2-D architectures were chosen per dataset.
LEGACY_POINTS = Architecture(latent_dim=2, generator_hidden=64, generator_depth=4, critic_hidden=64, critic_depth=4)


class Generator(nn.Module):
    """MLP from N(0, I_latent) to data space; a final tanh for images (data in [-1, 1]).

    The network works in a rescaled data space; ``forward`` returns ``scale`` times its output, in the
    data's own units (``scale`` is kept out of the state dict: it is part of the architecture).
    """

    def __init__(self, latent_dim: int, dim: int, hidden: int, depth: int, image: bool, scale: float = 1.0):
        super().__init__()
        self.latent_dim = latent_dim
        self.scale = float(scale)
        widths = [latent_dim] + [hidden] * (depth - 1)
        layers: list[nn.Module] = []
        for w_in, w_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(w_in, w_out), nn.ReLU()]
        layers.append(nn.Linear(widths[-1], dim))
        if image:
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out = self.net(z)
        return out if self.scale == 1.0 else out * self.scale


def build(dim: int, image: bool, lipschitz: str, arch: Architecture, scale: float = 1.0) -> tuple[Generator, Critic]:
    generator = Generator(arch.latent_dim, dim, arch.generator_hidden, arch.generator_depth, image, scale)
    critic = Critic(dim, lipschitz, arch.critic_hidden, arch.critic_depth)
    return generator, critic
