"""Reference values computed independently of the estimators: closed forms and 1-D quadrature."""

from __future__ import annotations

import numpy as np
from scipy import integrate
from scipy.stats import norm

LOG2 = float(np.log(2.0))


def kl_gaussians(mu1, cov1, mu2, cov2) -> float:
    """KL(N(mu1, cov1) || N(mu2, cov2)) in nats."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, float)), np.atleast_1d(np.asarray(mu2, float))
    cov1, cov2 = np.atleast_2d(np.asarray(cov1, float)), np.atleast_2d(np.asarray(cov2, float))
    d = len(mu1)
    inv2 = np.linalg.inv(cov2)
    diff = mu2 - mu1
    _, logdet1 = np.linalg.slogdet(cov1)
    _, logdet2 = np.linalg.slogdet(cov2)
    return float(0.5 * (np.trace(inv2 @ cov1) + diff @ inv2 @ diff - d + logdet2 - logdet1))


def mixture_logpdf(t, centres, sigma: float = 1.0):
    """log density of the equal-weight 1-D mixture of N(c, sigma^2) over ``centres``."""
    t = np.asarray(t, dtype=float)[..., None]
    return np.logaddexp.reduce(norm.logpdf(t, loc=np.asarray(centres, float), scale=sigma), axis=-1) - np.log(len(centres))


def _integrate(integrand, lo: float, hi: float) -> float:
    value, _ = integrate.quad(integrand, lo, hi, limit=400, epsabs=1e-12, epsrel=1e-10)
    return float(value)


def kl_1d(log_p, log_q, lo: float, hi: float) -> float:
    """KL(P||Q) = int p log(p/q) for 1-D log densities, by adaptive quadrature on [lo, hi]."""
    return _integrate(lambda t: np.exp(log_p(t)) * (log_p(t) - log_q(t)), lo, hi)


def js_1d(log_p, log_q, lo: float, hi: float) -> float:
    """JS(P, Q) = ½ KL(P||M) + ½ KL(Q||M), M = (P + Q)/2, by adaptive quadrature on [lo, hi]."""

    def integrand(t):
        lp, lq = log_p(t), log_q(t)
        lm = np.logaddexp(lp, lq) - np.log(2.0)
        return 0.5 * (np.exp(lp) * (lp - lm) + np.exp(lq) * (lq - lm))

    return min(_integrate(integrand, lo, hi), LOG2)


def js_gaussian_shift(mu: float, sigma: float = 1.0) -> float:
    """JS(N(0, sigma^2), N(mu, sigma^2)) by quadrature."""
    lo, hi = min(0.0, mu) - 12 * sigma, max(0.0, mu) + 12 * sigma
    return js_1d(lambda t: norm.logpdf(t, 0.0, sigma), lambda t: norm.logpdf(t, mu, sigma), lo, hi)
