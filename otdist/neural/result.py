"""The result of :meth:`otdist.neural.KRDualEstimator.fit`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass(frozen=True)
class KRResult:
    """Result of :meth:`KRDualEstimator.fit`.

    Attributes
    ----------
    value
        Cross-fitted held-out estimate of W1: a float for NumPy input; for torch input a 0-d
        tensor of the input's dtype and device, differentiable in x and y (see the module notes).
        Not clipped: it can be negative, within a few standard errors when P = Q.
    standard_error
        Standard error of ``value`` from the held-out critic values.
    fold_x, fold_y
        The fold (0 .. n_folds - 1) in which each point of x and y was held out.
    train_value
        Mean dual objective of the critics on their own training samples (optimistic).
    history
        Per-step training objective of each fold, shape (n_folds, steps run) padded with NaN.
    lipschitz_estimate
        Largest gradient norm of the critics on held-out samples and interpolates between them: a
        diagnostic, which certifies nothing (see ``lipschitz_bound``).
    critic
        The first fold's trained critic (an ``nn.Module``); ``critics`` holds all of them.
    device, seconds
        Where it trained and how long it took.
    families
        The critic family selected in each fold (``"linear"``, ``"anchor"``, or a network kind).
    lower_bound
        Certified lower bound on the W1 between the given samples (the empirical measures): the
        fold-averaged critic's objective on all of them over ``lipschitz_bound``, widened for float64
        rounding.  Not a bound on the population W1, and not the mean of ``fold_values``.
    upper_bound
        Certified upper bound on the same empirical W1: the R^d cost of the cheaper of two couplings of
        the samples (monotone along the mean difference, and along the averaged critic's values).
    lipschitz_bound
        Upper bound on the Lipschitz constant of the fold-averaged critic, computed from its weights.
    """

    value: float
    standard_error: float
    train_value: float
    history: np.ndarray
    lipschitz_estimate: float
    critic: torch.nn.Module
    critics: tuple = field(repr=False)
    fold_values: tuple
    device: str
    seconds: float
    fold_x: np.ndarray = field(repr=False, default=None)
    fold_y: np.ndarray = field(repr=False, default=None)
    families: tuple = ()
    lower_bound: float = -math.inf
    upper_bound: float = math.inf
    lipschitz_bound: float = math.inf

    def plot_history(self, ax=None):
        """Plot the training objective per step on ``ax`` (a new figure's axes when omitted, without
        touching pyplot's state); returns the axes."""
        if ax is None:
            from matplotlib.figure import Figure

            ax = Figure().add_subplot()
        for k, curve in enumerate(self.history):
            ax.plot(curve, label=f"fold {k}", lw=1)
        ax.axhline(float(self.value), color="k", ls="--", label="held-out estimate")
        ax.set_xlabel("step")
        ax.set_ylabel("E_P f - E_Q f (training batch)")
        ax.legend()
        return ax
