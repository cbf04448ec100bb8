r"""Certified bounds on the empirical W1 between two samples from a set of trained critics.

Lower bound.  For any function F with Lipschitz constant at most L, Kantorovich-Rubinstein duality
between the two empirical measures gives

.. math:: \frac{1}{L}\Big(\frac1n \sum_i F(x_i) - \frac1m \sum_j F(y_j)\Big) \le W_1(\hat P_n, \hat Q_m).

F is the fold-averaged critic (1/K) sum_k f_k, whose Lipschitz constant is at most the mean of the
critics' bounds; L is computed from the critics' weights in float64 (:func:`lipschitz_bound`), so the
certificate does not rest on a gradient norm measured at some points, which certifies nothing.  It
holds for every critic family.  GroupSort critics with orthonormal weights, anchor critics and unit
linear critics are 1-Lipschitz by construction (L = 1 up to float64 rounding when every fold selected
one of them, and F is then 1-Lipschitz too); a corrected linear critic ``c u . x`` has L = c >= 1
(:func:`otdist.neural.families.corrected_mean_difference_critic`), and "gp"/"clip" critics the product
of their layers' spectral norms.  It bounds the W1 between the *given samples*; an
average of per-fold held-out values is no such bound (each is an estimate of E_P f_k - E_Q f_k).

Upper bound.  The R^d cost (1/n) sum |x_i - y_sigma(i)| of any coupling is at least the empirical
W1; two couplings are priced: the monotone coupling of the projections on the mean difference, and
the monotone coupling of the fold-averaged critic's values.  No upper bound is certified for the
population W1.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from ..solvers import exact_1d, sliced

#: Relative allowance for float64 rounding in the critics' evaluation and the sums of the lower bound
#: (accumulated error of sums of at most ~1e6 terms and dot products of length ~1e3, with margin).
ROUNDING_ALLOWANCE = 1e-9


def lipschitz_bound(critic: nn.Module) -> float:
    """An upper bound on the critic's Lipschitz constant, computed in float64.

    The critic's own ``lipschitz_bound()`` where it has one; otherwise the product of the spectral norms
    of its ``nn.Linear`` layers' weights (the activations of :class:`~otdist.neural.critics.Critic` are
    1-Lipschitz).
    """
    own = getattr(critic, "lipschitz_bound", None)
    if own is not None:
        return float(own())
    bound = 1.0
    with torch.no_grad():
        for layer in critic.modules():
            if isinstance(layer, nn.Linear):
                bound *= float(torch.linalg.matrix_norm(layer.weight.double(), ord=2))
    return bound


def critic_values(critics, points: torch.Tensor) -> np.ndarray:
    """(K, n) values of each critic on ``points``, evaluated by a float64 CPU copy of the critic."""
    points = points.detach().to("cpu", torch.float64)
    with torch.no_grad():
        return np.stack([copy.deepcopy(c).to("cpu", torch.float64).eval()(points).numpy() for c in critics])


def certify(critics, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float, float]:
    """(lower, upper, lipschitz): certified bounds on the empirical W1 between the uniform samples x and y,
    and the Lipschitz bound of the fold-averaged critic."""
    fx, fy = critic_values(critics, x).mean(0), critic_values(critics, y).mean(0)
    lipschitz = float(np.mean([lipschitz_bound(c) for c in critics]))
    slack = ROUNDING_ALLOWANCE * float(np.abs(fx).max() + np.abs(fy).max())
    lower = (float(fx.mean() - fy.mean()) - slack) / lipschitz
    xs, ys = x.detach().to("cpu", torch.float64).numpy(), y.detach().to("cpu", torch.float64).numpy()
    a, b = np.full(len(xs), 1.0 / len(xs)), np.full(len(ys), 1.0 / len(ys))
    costs = []
    difference = xs.mean(0) - ys.mean(0)
    if np.linalg.norm(difference) > 0:
        costs.append(sliced.coupling_cost(xs, ys, a, b, 1.0, difference / np.linalg.norm(difference)))
    by_critic = exact_1d.monotone_coupling(fx, fy, a, b, 1.0)
    costs.append(float(by_critic.mass @ np.linalg.norm(xs[by_critic.u_index] - ys[by_critic.v_index], axis=1)))
    upper = min(costs) * (1 + ROUNDING_ALLOWANCE)
    return lower, upper, lipschitz
