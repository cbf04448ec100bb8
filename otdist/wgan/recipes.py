"""Default training settings per dataset: networks, data rescaling, penalty weight, optimiser, steps,
critic steps and batch size.

The 2-D settings start from the WGAN-GP toy code (Gulrajani et al., 2017: three hidden ReLU layers,
a 2-D latent, lambda = 0.1, Adam with beta = (0.5, 0.9), 5 critic steps, data divided by 1.414 for
8 Gaussians, 2.828 for 25 Gaussians and 7.5 for the Swiss roll) and are narrowed and shortened so
that a default CPU run fits its time budget; benchmarks/RESULTS.md records the measurements behind
each choice. The networks train in the rescaled space (data / ``data_scale``); the generator returns
samples in the data's own units and the critic's logged estimate is converted back to them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .models import IMAGES, Architecture


@dataclass(frozen=True)
class Recipe:
    """Everything a default run of one dataset and critic uses besides the ``Config`` fields."""

    steps: int
    architecture: Architecture
    data_scale: float = 1.0
    gp_weight: float = 10.0
    optimiser: str = "adam"
    lr: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.9)
    n_critic: int = 5
    batch_size: int = 256
    #: Both learning rates decay linearly from ``lr`` to 0 at the last step (as in the WGAN-GP image code).
    lr_decay: bool = False


def _points(hidden: int, depth: int = 4) -> Architecture:
    return Architecture(latent_dim=2, generator_hidden=hidden, generator_depth=depth, critic_hidden=hidden,
                        critic_depth=depth)


#: Optimisers of the critics other than gp, as in their papers: (optimiser, learning rate, betas).
CLIP_OPTIMISER = ("rmsprop", 5e-5, (0.0, 0.0))
LIPSCHITZ_OPTIMISER = ("adam", 1e-4, (0.5, 0.9))
#: Settings of the gradient-penalty critic per dataset.
GP_RECIPES = {
    # The toy code's settings at a constant Adam 1e-3 oscillate at the end (8/8 modes at step 3200, 6/8 at
    # 4000, seed 0); decayed linearly to 0 they settle: 8/8, 90% within 3 sigma, W1 ratio 1.22 at 3000
    # steps (seed 0, 151 s), where width 64, lambda = 10, beta_1 = 0 and 12 000 steps gave 66% and 1.99.
    "8gaussians": Recipe(steps=3000, architecture=_points(128), data_scale=1.414, gp_weight=0.1, lr=1e-3,
                         lr_decay=True),
    # Adam 1e-3 forms the grid of modes quickly; decaying it to 0 lets the clusters settle on the centres
    # (seed 0: 18/25 modes, 51% within 3 sigma without the decay; 25/25 and 90% with it).
    "25gaussians": Recipe(steps=7500, architecture=_points(128), data_scale=2.828, gp_weight=0.1, lr=1e-3,
                          lr_decay=True),
    "swissroll": Recipe(steps=6000, architecture=_points(128), data_scale=1.0, gp_weight=0.1, lr=1e-4),
    "digits": Recipe(steps=6000, architecture=IMAGES, gp_weight=10.0, betas=(0.0, 0.9)),
    # Adam 3e-4 with beta_1 = 0.5, decayed to 0. Batches of 128 and 3 critic steps cost 0.11 s per generator
    # step (two threads), against 0.27 s at 256 and 5, so 15 minutes hold 7000 steps instead of about 3000:
    # layout confidence 0.924 / 0.901 / 0.909 (seeds 0 / 1 / 2; 693 s for seed 0 alone), where 4000 steps at
    # 256 and 5 ended at 0.886 / 0.878 (seeds 0 / 1) and need about 18 minutes at 0.27 s per step.
    "flags": Recipe(steps=7000, architecture=IMAGES, gp_weight=10.0, lr=3e-4, lr_decay=True, n_critic=3,
                    batch_size=128),
}
#: Networks and steps of the other critics on 2-D data, with their own optimisers and unscaled data
#: (the settings of their measurements in benchmarks/RESULTS.md).
OTHER_CRITIC_POINTS = _points(64)
OTHER_CRITIC_STEPS = 12000


def recipe(data: str, lipschitz: str) -> Recipe:
    """The default settings for training on ``data`` with the ``lipschitz`` critic."""
    base = GP_RECIPES[data]
    if lipschitz == "gp":
        return base
    optimiser, lr, betas = CLIP_OPTIMISER if lipschitz == "clip" else LIPSCHITZ_OPTIMISER
    if base.architecture is IMAGES:  # the gp recipe's networks and budget, the critic's own optimiser
        return replace(base, optimiser=optimiser, lr=lr, betas=betas, lr_decay=False)
    return Recipe(steps=OTHER_CRITIC_STEPS, architecture=OTHER_CRITIC_POINTS, gp_weight=base.gp_weight,
                  optimiser=optimiser, lr=lr, betas=betas)
