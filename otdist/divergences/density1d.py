r"""Plug-in KL and JS between 1-D samples through density estimates: histograms and Gaussian KDE.

Both are *biased* and meant for quick looks at 1-D data, not for inference:

* ``"hist"``: both samples are binned on shared edges (``numpy.histogram_bin_edges`` of the pooled
  sample with the rule ``bins``: Freedman-Diaconis ``"fd"`` by default, or a number of bins), and
  the histogram divergence is computed.  The bin width trades bias (wide bins blur differences:
  KL and JS are underestimated) against variance (narrow bins leave empty cells: KL becomes
  ``inf`` when Q has an empty bin where P has mass; ``pseudocount`` adds that many counts to every
  bin to keep it finite, at the price of more bias).
* ``"kde"``: Gaussian kernel density estimates (``scipy.stats.gaussian_kde``, bandwidth rule
  ``bandwidth``: ``"scott"``, ``"silverman"`` or a factor), integrated on a grid
  covering both samples plus four bandwidths.  Smoothing inflates both densities' spread, which
  biases KL and JS downwards (by O(h^2)).
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import trapezoid
from scipy.stats import gaussian_kde

from .discrete import js_histograms, kl_histograms
from ..exceptions import InputError

#: Grid points for integrating the KDE divergences; margin in bandwidths around the samples.
KDE_GRID = 4096
KDE_MARGIN = 4.0
DEFAULT_BINS = "fd"
DEFAULT_BANDWIDTH = "scott"


def _bin_edges(values: np.ndarray, bins) -> np.ndarray:
    try:
        return np.histogram_bin_edges(values, bins=bins)
    except (ValueError, MemoryError):
        raise InputError(
            f"bins={bins!r} asks for more bins than can be allocated for these samples: their interquartile range "
            f"({np.subtract(*np.percentile(values, [75, 25])):.3g}) is tiny next to their range ({np.ptp(values):.3g}), "
            "as for nearly constant samples with a few outliers. Pass an integer number of bins, or bins='sturges'."
        ) from None


def histogram_estimate(divergence: str, x: np.ndarray, y: np.ndarray, bins=DEFAULT_BINS,
                       pseudocount: float = 0.0) -> float:
    edges = _bin_edges(np.concatenate([x, y]), bins)
    p = np.histogram(x, edges)[0] + pseudocount
    q = np.histogram(y, edges)[0] + pseudocount
    p, q = p / p.sum(), q / q.sum()
    return float(kl_histograms(p, q) if divergence == "kl" else js_histograms(p, q))


def _kde(sample: np.ndarray, name: str, bandwidth):
    message = (f'method="kde" needs at least two distinct values in {name}, with a variance above the float '
               f"range's floor, to choose a bandwidth; got {len(sample)} value(s) with spread {np.ptp(sample):g}. "
               'Pass more samples, rescale them, or use method="hist" or "knn".')
    if len(sample) < 2 or np.ptp(sample) == 0:
        raise InputError(message)
    try:
        return gaussian_kde(sample, bw_method=bandwidth)
    except np.linalg.LinAlgError:  # the variance underflowed to zero
        raise InputError(message) from None


def kde_estimate(divergence: str, x: np.ndarray, y: np.ndarray, bandwidth=DEFAULT_BANDWIDTH) -> float:
    kp, kq = _kde(x, "x", bandwidth), _kde(y, "y", bandwidth)
    width = KDE_MARGIN * float(np.sqrt(max(kp.covariance[0, 0], kq.covariance[0, 0])))
    grid = np.linspace(min(x.min(), y.min()) - width, max(x.max(), y.max()) + width, KDE_GRID)
    log_p, log_q = kp.logpdf(grid), kq.logpdf(grid)
    if divergence == "kl":
        return float(max(trapezoid(np.exp(log_p) * (log_p - log_q), grid), 0.0))
    log_m = np.logaddexp(log_p, log_q) - np.log(2.0)
    integrand = 0.5 * (np.exp(log_p) * (log_p - log_m) + np.exp(log_q) * (log_q - log_m))
    return float(min(max(trapezoid(integrand, grid), 0.0), np.log(2.0)))
