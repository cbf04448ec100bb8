r"""Critic families beside the networks of :mod:`otdist.neural.critics`, each 1-Lipschitz by construction.

* ``"linear"`` -- :class:`LinearCritic`, ``f(x) = u . x``: the optimal critic between a distribution and
  its translate (``u`` a unit vector along the translation).  Fitted in closed form: over unit vectors,
  ``u . (mean(x) - mean(y))`` is largest at the normalised mean difference (:func:`mean_difference_critic`).
  A direction estimated from n points per side in d dimensions is off the true mean difference
  delta by an angle whose cosine is about ``1 / sqrt(1 + 2 d / (n |delta|^2))``, so its held-out value
  is attenuated by that factor (0.96 at d = 128, n = 3277).  :func:`corrected_mean_difference_critic`
  divides the attenuation out: ``f(x) = c u . x`` with ``c = |mean(x) - mean(y)| / sqrt(U)`` and U the
  unbiased U-statistic of ``|delta|^2`` (:func:`squared_mean_difference`).  Its Lipschitz constant is
  ``c >= 1`` (computed, not 1), and its held-out value estimates ``|E_P x - E_Q x|`` itself, up to a
  second-order bias of relative size about ``1 / n`` -- a quantity at most W1, with equality between
  translates.
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
#: Largest attenuation correction of the linear critic.  A correction c means that the estimated direction
#: has a cosine of about 1 / c with the mean difference; below 1/2 the direction is mostly noise, and so
#: would be a larger correction (it multiplies the held-out noise by c).
MAX_CORRECTION = 2.0


class LinearCritic(nn.Module):
    """``f(x) = u . x`` with a fixed vector ``u`` (shape (d,)); ``|u|``-Lipschitz (a unit vector unless corrected)."""

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
    return LinearCritic(_unit(x.double().mean(0) - y.double().mean(0)).to(x.dtype))


def _unit(difference: torch.Tensor) -> torch.Tensor:
    """``difference`` normalised (float64; the all-ones direction normalised when it is zero or not finite)."""
    norm = difference.norm()
    if not torch.isfinite(norm) or norm == 0:
        difference, norm = torch.ones_like(difference), torch.tensor(difference.numel() ** 0.5, dtype=torch.float64)
    return difference / norm


def squared_mean_difference(x: torch.Tensor, y: torch.Tensor) -> float:
    r"""Unbiased estimate of ``|E x - E y|^2`` from i.i.d. samples (each of at least 2 points), in float64.

    .. math:: U = |\bar x - \bar y|^2 - \operatorname{tr} S_x / n - \operatorname{tr} S_y / m,

    with S the unbiased sample covariances; equal to the two-sample U-statistic
    ``mean_{i != i'} x_i . x_i' + mean_{j != j'} y_j . y_j' - 2 mean_{i, j} x_i . y_j``.  It can be negative.
    """
    difference, spread = _difference_and_spread(x, y)
    return float(difference.pow(2).sum() - spread)


def _difference_and_spread(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean(x) - mean(y), tr S_x / n + tr S_y / m) in float64."""
    x, y = x.detach().double(), y.detach().double()
    spread = x.var(0, correction=1).sum() / len(x) + y.var(0, correction=1).sum() / len(y)
    return x.mean(0) - y.mean(0), spread


def corrected_mean_difference_critic(x: torch.Tensor, y: torch.Tensor) -> LinearCritic:
    """The linear critic ``c u . x``: u along ``mean(x) - mean(y)``, ``c = |mean(x) - mean(y)| / sqrt(U)``
    with U = :func:`squared_mean_difference` (at most ``MAX_CORRECTION``; ``MAX_CORRECTION`` when U <= 0).

    ``E |mean(x) - mean(y)|^2 = |delta|^2 + tr S_x / n + tr S_y / m``, so c is the inverse of the cosine
    expected between u and delta, and ``c u . delta`` estimates ``|delta|`` without that attenuation.
    The critic is c-Lipschitz (``lipschitz_bound()`` returns c); :mod:`otdist.neural.certificate` divides by it.
    """
    difference, spread = _difference_and_spread(x, y)
    observed = float(difference.pow(2).sum())
    squared = observed - float(spread)
    unit = _unit(difference).to(x.dtype)
    correction = 1.0 if observed == 0 else MAX_CORRECTION
    if squared > observed / MAX_CORRECTION**2:
        correction = (observed / squared) ** 0.5
    return LinearCritic(unit * correction)


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
