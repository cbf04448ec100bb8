r"""Kullback-Leibler and Jensen-Shannon divergences between histograms on a shared support.

.. math::

    \mathrm{KL}(p \| q) = \sum_i p_i \log \frac{p_i}{q_i}, \qquad
    \mathrm{JS}(p, q) = \tfrac12 \mathrm{KL}(p \| m) + \tfrac12 \mathrm{KL}(q \| m),\ m = \tfrac{p + q}{2}.

JS is evaluated as ``log 2 - 1/2 sum_i [p_i log((p_i + q_i)/p_i) + q_i log((p_i + q_i)/q_i)]``: each term
vanishes where the supports do not overlap, so disjoint supports give exactly log 2, and the
result is clipped to [0, log 2] so rounding can never produce a negative value (or a NaN in
its square root).  The same code runs on NumPy arrays and torch tensors.
"""

from __future__ import annotations

import math

import numpy as np

from .._backend import is_torch

LOG2 = math.log(2.0)


def _xp(x):
    if is_torch(x):
        import torch

        return torch
    return np


def kl_histograms(p, q):
    """KL(p || q) in nats for normalised histograms; +inf where q_i = 0 < p_i."""
    xp = _xp(p)
    support = p > 0
    if bool((support & (q <= 0)).any()):
        return xp.asarray(math.inf, dtype=p.dtype) if xp is np else p.new_tensor(math.inf)
    log_ratio = xp.log(xp.where(support, p, 1.0)) - xp.log(xp.where(support, q, 1.0))
    return xp.where(support, p * log_ratio, 0.0).sum()


def js_histograms(p, q):
    """JS(p, q) in nats for normalised histograms, in [0, log 2]."""
    xp = _xp(p)
    p_pos, q_pos = p > 0, q > 0
    both = p_pos & q_pos
    safe_p = xp.where(both, p, 1.0)
    safe_q = xp.where(both, q, 1.0)
    log_sum = xp.log(safe_p + safe_q)
    overlap = xp.where(both, p * (log_sum - xp.log(safe_p)) + q * (log_sum - xp.log(safe_q)), 0.0)
    value = LOG2 - 0.5 * overlap.sum()
    return value.clip(0.0, LOG2)
