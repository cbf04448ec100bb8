"""The WGAN's generator (an MLP) and its critic (the KR critics of :mod:`otdist.neural.critics`)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..neural.critics import Critic


@dataclass(frozen=True)
class Architecture:
    latent_dim: int
    generator_hidden: int
    generator_depth: int
    critic_hidden: int
    critic_depth: int


#: Defaults for 2-D toy data and for images (flattened). Toy data: a 2-D latent (as in the WGAN-GP
#: toy experiments) and narrow networks, so that the default budget fits in about 3 CPU minutes.
POINTS = Architecture(latent_dim=2, generator_hidden=64, generator_depth=4, critic_hidden=64, critic_depth=4)
IMAGES = Architecture(latent_dim=64, generator_hidden=256, generator_depth=4, critic_hidden=256, critic_depth=3)


class Generator(nn.Module):
    """MLP from N(0, I_latent) to data space; a final tanh for images (data in [-1, 1])."""

    def __init__(self, latent_dim: int, dim: int, hidden: int, depth: int, image: bool):
        super().__init__()
        self.latent_dim = latent_dim
        widths = [latent_dim] + [hidden] * (depth - 1)
        layers: list[nn.Module] = []
        for w_in, w_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(w_in, w_out), nn.ReLU()]
        layers.append(nn.Linear(widths[-1], dim))
        if image:
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


def build(dim: int, image: bool, lipschitz: str, arch: Architecture) -> tuple[Generator, Critic]:
    generator = Generator(arch.latent_dim, dim, arch.generator_hidden, arch.generator_depth, image)
    critic = Critic(dim, lipschitz, arch.critic_hidden, arch.critic_depth)
    return generator, critic
