r"""Critic families beside the networks of :mod:`otdist.neural.critics`, each 1-Lipschitz by construction.

* ``"linear"`` -- :class:`LinearCritic`, ``f(x) = u . x`` with a unit vector ``u``: the optimal critic
  between a distribution and its translate (``u`` along the translation).  Fitted in closed form: over
  unit vectors, ``u . (mean(x) - mean(y))`` is largest at the normalised mean difference.
* ``"anchor"`` -- :class:`AnchorCritic`, ``f(x) = s min_j (|x - z_j| + g_j)`` with ``s`` = +1 or -1:
  a minimum of 1-Lipschitz functions is 1-Lipschitz, so any anchors ``z_j`` and offsets ``g_j`` give a
  1-Lipschitz critic.  It holds the radial critics ``+-|x - c|`` that are optimal between scaled copies of
  a symmetric distribution, where the mean difference is zero and a linear critic sees nothing; it is the
  c-concave form of the optimal empirical potential, with a few anchors instead of one per point.

Each critic's :meth:`lipschitz_bound` is a computed upper bound on its Lipschitz constant (in float64):
``|u|`` for the linear critic, 1 for the anchor critic.  See :func:`otdist.neural.critics.lipschitz_bound`.
"""

from __future__ import annotations

import torch
from torch import nn

FAMILIES = ("linear", "anchor")
#: Anchors of an :class:`AnchorCritic`.
DEFAULT_ANCHORS = 8
#: Initial spread of the anchors around the pooled mean, as a fraction of the samples' spread.
ANCHOR_JITTER = 0.1


class LinearCritic(nn.Module):
    """``f(x) = u . x`` with a fixed unit vector ``u`` (shape (d,))."""

    kind = "linear"

    def __init__(self, direction: torch.Tensor):
        super().__init__()
        self.register_buffer("direction", direction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.direction.to(x.dtype)

    def lipschitz_bound(self) -> float:
        return float(self.direction.double().norm())


class AnchorCritic(nn.Module):
    """``f(x) = sign * min_j (|x - z_j| + g_j)`` with trainable anchors ``z_j`` (k, d) and offsets ``g_j``."""

    kind = "anchor"

    def __init__(self, anchors: torch.Tensor, sign: float):
        super().__init__()
        self.anchors = nn.Parameter(anchors.clone())
        self.offsets = nn.Parameter(torch.zeros(len(anchors), dtype=anchors.dtype, device=anchors.device))
        self.sign = float(sign)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        anchors, offsets = self.anchors.to(x.dtype), self.offsets.to(x.dtype)
        with torch.no_grad():
            distance = torch.cdist(x, anchors, compute_mode="donot_use_mm_for_euclid_dist")
            nearest = (distance + offsets).argmin(dim=1)
        return self.sign * ((x - anchors[nearest]).norm(dim=1) + offsets[nearest])

    @staticmethod
    def lipschitz_bound() -> float:
        return 1.0


def mean_difference_critic(x: torch.Tensor, y: torch.Tensor) -> LinearCritic:
    """The linear critic along ``mean(x) - mean(y)`` (any unit vector when the means coincide)."""
    difference = x.double().mean(0) - y.double().mean(0)
    norm = difference.norm()
    if not torch.isfinite(norm) or norm == 0:
        difference, norm = torch.ones_like(difference), torch.tensor(difference.numel() ** 0.5, dtype=torch.float64)
    return LinearCritic((difference / norm).to(x.dtype))


def anchor_critic(x: torch.Tensor, y: torch.Tensor, generator: torch.Generator,
                  n_anchors: int = DEFAULT_ANCHORS) -> AnchorCritic:
    """An :class:`AnchorCritic` with its anchors near the pooled mean of x and y, and the sign under which
    ``E_x f - E_y f`` is positive at the start: ``-|z - c|`` when y is the more spread sample."""
    pooled = torch.cat([x, y])
    centre = pooled.mean(0)
    spread = float((pooled - centre).pow(2).sum(1).mean().sqrt())
    noise = torch.randn(n_anchors, x.shape[1], generator=generator).to(x.device, x.dtype)
    anchors = centre + ANCHOR_JITTER * spread / x.shape[1] ** 0.5 * noise
    anchors[0] = centre
    radius = lambda z: torch.cdist(z, centre[None]).mean()  # noqa: E731
    sign = 1.0 if float(radius(x)) >= float(radius(y)) else -1.0
    return AnchorCritic(anchors, sign)
