r"""The 2-Wasserstein distance between Gaussians in closed form (the Bures–Wasserstein distance).

.. math::
    W_2^2\big(\mathcal N(m_1, \Sigma_1), \mathcal N(m_2, \Sigma_2)\big) = \lVert m_1 - m_2 \rVert^2
    + \operatorname{tr}\Sigma_1 + \operatorname{tr}\Sigma_2
    - 2 \operatorname{tr}\big(\Sigma_1^{1/2} \Sigma_2 \Sigma_1^{1/2}\big)^{1/2}

:func:`gaussian_w2` takes the means and covariances; :func:`samples_w2` fits them to two weighted
samples (``method="gaussian"`` of :func:`otdist.wasserstein`). The cross term
``tr (Σ1^{1/2} Σ2 Σ1^{1/2})^{1/2}`` is the sum of the square roots of the eigenvalues of the symmetric
PSD matrix ``Σ1^{1/2} Σ2 Σ1^{1/2}`` (the ``"eigen"`` form), or, for factorisations ``Σ1 = A1ᵀ A1`` and
``Σ2 = A2ᵀ A2``, the nuclear norm ``‖A1 A2ᵀ‖_*`` (the ``"nuclear"`` form: no square root of a rounding
error, exact on singular covariances). Square roots of matrices go through symmetric eigendecompositions
with negative eigenvalues clipped at 0, never through a general matrix square root, so the result is
never complex and never NaN.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from . import _validation as V
from ._backend import is_torch, scalar_out, to_numpy, torch_reference
from .exceptions import InputError
from .problem import pth_root

#: How the cross term is computed from samples: ``"auto"`` picks ``"nuclear"`` when a covariance is
#: singular for its sample size (``min(n, m) <= d``) and ``"eigen"`` otherwise.
FORMS = ("auto", "eigen", "nuclear")
#: In the backward of a matrix square root, eigenvalue pairs with ``√λi + √λj`` below this many
#: ``sqrt(d eps) max √λ`` are the null space of a singular matrix (eigh's absolute eigenvalue error is
#: about ``d eps max λ``): their gradient is 0, the minimum-norm choice.
NULL_ROOT_FACTOR = 2.0


def input_rtol(x) -> float:
    """The relative tolerance on the symmetry and semi-definiteness of a covariance: ``sqrt(eps)`` of the
    input's floating precision (float64 for integer input), half its significant digits."""
    if is_torch(x):
        import torch

        dtype = x.dtype if x.is_floating_point() else torch.get_default_dtype()
        return math.sqrt(torch.finfo(dtype).eps)
    dtype = getattr(x, "dtype", None)
    dtype = np.dtype(dtype) if dtype is not None and np.dtype(dtype).kind == "f" else np.dtype(np.float64)
    return math.sqrt(np.finfo(dtype).eps)


def gaussian_w2(mean1, cov1, mean2, cov2):
    r"""Wasserstein-2 distance between the Gaussians N(mean1, cov1) and N(mean2, cov2).

    .. math::
        W_2^2 = \lVert m_1 - m_2 \rVert^2 + \operatorname{tr}\Sigma_1 + \operatorname{tr}\Sigma_2
        - 2 \operatorname{tr}\big(\Sigma_1^{1/2} \Sigma_2 \Sigma_1^{1/2}\big)^{1/2}

    Returns W_2, not W_2²: the Fréchet Inception Distance (FID) is W_2² between Gaussians fitted with
    ``ddof = 1`` covariances (pytorch-fid), so ``FID = gaussian_w2(m1, C1, m2, C2) ** 2``. POT's
    ``ot.gaussian.bures_wasserstein_distance`` also returns W_2.

    Parameters
    ----------
    mean1, mean2
        Means, 1-D arrays of length d (NumPy or torch).
    cov1, cov2
        Covariances, (d, d): symmetric to ``sqrt(eps)`` relative to their largest entry, and positive
        semi-definite to ``-sqrt(eps) ‖C‖_F`` (eps of the input's precision, :func:`input_rtol`). Singular
        covariances are allowed.

    Returns
    -------
    float or torch.Tensor
        W_2 as a Python float for NumPy input; a 0-d tensor in the input's dtype and on its device for
        torch input, differentiable in the means and covariances (finite gradients at repeated
        eigenvalues, Σ = I included; at W_2 = 0 the gradient is 0). torch work runs in float64.

    Notes
    -----
    A factorisation ``cov1 = F Fᵀ`` (Cholesky; ``F = V Λ^{1/2}`` from a symmetric eigendecomposition when
    ``cov1`` is singular) makes ``Fᵀ cov2 F`` symmetric PSD with the eigenvalues of
    ``cov1^{1/2} cov2 cov1^{1/2}``; the cross term is the sum of their square roots, clipped at 0: one
    factorisation, two products and one symmetric eigenvalue problem of size d, O(d³). On singular
    covariances the cross term carries an error of about ``d sqrt(d eps) ‖C‖`` (the square root of the
    eigensolver's rounding); from samples, :func:`samples_w2` avoids it.

    References
    ----------
    Dowson & Landau, "The Fréchet distance between multivariate normal distributions", J. Multivariate
    Anal. 12 (1982); Peyré & Cuturi, *Computational Optimal Transport* (2019), remark 2.31.

    Examples
    --------
    >>> import numpy as np
    >>> from otdist.gaussian import gaussian_w2
    >>> round(gaussian_w2([0.0, 0.0], np.diag([1.0, 4.0]), [3.0, 4.0], np.diag([4.0, 1.0])), 12)
    5.196152422707
    """
    like = torch_reference(mean1, cov1, mean2, cov2)
    m1, m2 = V.as_mean(mean1, "mean1"), V.as_mean(mean2, "mean2")
    d = m1.shape[0]
    if m2.shape[0] != d:
        raise InputError(
            f"mean1 and mean2 must have the same length (the dimension d of both Gaussians); got {d} and "
            f"{m2.shape[0]}. Both distributions must live in the same space."
        )
    c1, c2 = V.as_covariance(cov1, "cov1", d, input_rtol(cov1)), V.as_covariance(cov2, "cov2", d, input_rtol(cov2))
    # W_2 scales with the data: computed on mean / r and cov / r², it neither overflows nor underflows.
    r = max(*(_max_abs(m) for m in (m1, m2)), *(math.sqrt(_max_abs(c)) for c in (c1, c2))) or 1.0
    m1, m2, c1, c2 = m1 / r, m2 / r, c1 / r / r, c2 / r / r
    if like is not None:
        m1, m2, c1, c2 = (_work_tensor(t, like) for t in (m1, m2, c1, c2))
        c1, c2 = (c1 + c1.mT) / 2, (c2 + c2.mT) / 2
        trace = c1.diagonal().sum() + c2.diagonal().sum()
    else:
        c1, c2 = (c1 + c1.T) / 2, (c2 + c2.T) / 2
        trace = float(np.trace(c1) + np.trace(c2))
    cost = _nonnegative(((m1 - m2) ** 2).sum() + trace - 2 * cross_term(c1, c2))
    return scalar_out(r * pth_root(cost, 2), like)


def samples_w2(x, y, a, b, form: str = "auto"):
    r"""W_2 between the Gaussians fitted to two weighted samples (means and ``ddof = 1`` covariances).

    Parameters
    ----------
    x, y
        Validated points, (n, d) and (m, d), NumPy or torch.
    a, b
        Their weights, normalised to sum to 1. The mean is ``Σ a_i x_i`` and the covariance
        ``Σ a_i (x_i - mean)(x_i - mean)ᵀ / (1 - Σ a_i²)``: ``np.cov(x.T, aweights=a, ddof=1)``, the
        unbiased estimate for reliability weights, which is the ``ddof = 1`` covariance for uniform
        weights.
    form
        ``"eigen"``: the two covariances, then :func:`cross_term` (a Cholesky factorisation, two products and
        one symmetric eigenvalue problem of size d), O((n + m) d² + d³).
        ``"nuclear"``: ``tr (Σ1^{1/2} Σ2 Σ1^{1/2})^{1/2} = ‖X̃ Ỹᵀ‖_*`` with ``X̃`` the weighted centred
        samples scaled so that ``Σ1 = X̃ᵀ X̃`` (``(x - mean) / sqrt(n - 1)`` for uniform weights), a sample
        with more than d points replaced by the d x d triangular factor of its QR decomposition:
        O(n m d) and exact on singular covariances. ``"auto"``: ``"nuclear"`` when ``min(n, m) <= d``
        (a covariance is then singular), else ``"eigen"``.

    Returns
    -------
    float or torch.Tensor
        W_2: a float for NumPy input, a float64 0-d tensor for torch input (autograd flows to points and
        weights; at W_2 = 0 the gradient is 0). It is computed on the points divided by their largest
        absolute coordinate and scaled back, so W_2 is accurate where W_2² would overflow or underflow.
    """
    V.check_choice(form, FORMS, "form")
    (n, d), m = x.shape, y.shape[0]
    if is_torch(x):
        x, y, a, b = (_work_tensor(t, x) for t in (x, y, a, b))
    r = max(_max_abs(x), _max_abs(y)) or 1.0
    x, y = x / r, y / r
    factors = []
    for points, weights, name in ((x, a, "u_values"), (y, b, "v_values")):
        factors.append(_centred(points, weights, name))
    if form == "auto":
        form = "nuclear" if min(n, m) <= d else "eigen"
    (mean1, xc, scale1), (mean2, yc, scale2) = factors
    trace = ((xc**2).sum(1) * a).sum() / scale1 + ((yc**2).sum(1) * b).sum() / scale2
    if form == "eigen":
        cross = cross_term(_covariance(xc, a, scale1), _covariance(yc, b, scale2))
    else:
        cross = _nuclear_norm(_row_factor(xc, a, scale1) @ _row_factor(yc, b, scale2).T)
    return r * pth_root(_nonnegative(((mean1 - mean2) ** 2).sum() + trace - 2 * cross), 2)


def cross_term(c1, c2):
    """``tr (c1^{1/2} c2 c1^{1/2})^{1/2}`` for symmetric PSD ``c1, c2`` (NumPy or torch).

    With any factor ``c1 = F Fᵀ`` (Cholesky; ``V Λ^{1/2}`` from eigh when ``c1`` is singular), ``Fᵀ c2 F``
    is symmetric PSD with the eigenvalues of ``c1^{1/2} c2 c1^{1/2}``: the sum of their square roots.
    """
    if is_torch(c1):
        import torch

        factor, info = torch.linalg.cholesky_ex(c1)
        if int(info) != 0:
            factor = psd_sqrt(c1)
        return psd_sqrt(factor.mT @ c2 @ factor).diagonal().sum()
    try:
        factor = np.linalg.cholesky(c1)
    except np.linalg.LinAlgError:
        lam, vec = np.linalg.eigh(c1)
        factor = vec * np.sqrt(np.clip(lam, 0.0, None))
    inner = factor.T @ c2 @ factor
    return float(np.sqrt(np.clip(np.linalg.eigvalsh((inner + inner.T) / 2), 0.0, None)).sum())


def psd_sqrt(a):
    r"""The symmetric PSD square root of the symmetric part of a torch matrix, negative eigenvalues
    clipped at 0.

    The backward solves the Sylvester equation ``S dS + dS S = dA`` in the eigenbasis of ``A``:
    ``dS_ij = dA_ij / (√λ_i + √λ_j)``, finite at repeated eigenvalues (where autograd through ``eigh``
    divides by ``λ_i - λ_j = 0``); pairs in the null space of a singular ``A`` get 0.
    """
    return _psd_sqrt_function().apply((a + a.mT) / 2)


@functools.lru_cache(maxsize=None)
def _psd_sqrt_function():
    import torch

    class PSDSqrt(torch.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            lam, vec = torch.linalg.eigh(a)
            root = lam.clamp_min(0).sqrt()
            ctx.save_for_backward(root, vec)
            return (vec * root) @ vec.mT

        @staticmethod
        def backward(ctx, grad):
            root, vec = ctx.saved_tensors
            total = root[:, None] + root[None, :]
            floor = NULL_ROOT_FACTOR * math.sqrt(root.shape[0] * torch.finfo(root.dtype).eps) * root.max()
            keep = total > floor
            inverse = torch.where(keep, 1 / torch.where(keep, total, torch.ones_like(total)), torch.zeros_like(total))
            return vec @ ((vec.mT @ grad @ vec) * inverse) @ vec.mT

    return PSDSqrt


# ----------------------------------------------------------------------------- helpers


def _work_tensor(t, like):
    """``t`` as a tensor on ``like``'s device in float64 (float32 on Apple MPS, which has no float64)."""
    import torch

    dtype = torch.float32 if like.device.type == "mps" else torch.float64
    if is_torch(t):
        return t.to(device=like.device, dtype=dtype)
    return torch.as_tensor(np.asarray(t, dtype=np.float64), dtype=dtype, device=like.device)


def _max_abs(values) -> float:
    return float(values.detach().abs().max()) if is_torch(values) else float(np.abs(values).max())


def _nonnegative(value):
    """W_2² clipped at 0 (rounding can take it below); autograd gives 0 below the clip."""
    return value.clamp_min(0) if is_torch(value) else max(float(value), 0.0)


def _centred(points, weights, name: str):
    """(mean, centred points, 1 - Σ a_i²): the weighted mean and the ``ddof = 1`` normaliser."""
    scale = (weights * (1 - weights)).sum()
    if float(to_numpy(scale)) <= 0:
        positive = int((to_numpy(weights) > 0).sum())
        raise InputError(
            f"{name} needs at least two points with positive weight to estimate a covariance (ddof = 1); got "
            f"{weights.shape[0]} point(s), {positive} with positive weight. Pass more points, or use "
            "gaussian_w2(mean1, cov1, mean2, cov2) with covariances you estimated yourself."
        )
    mean = weights @ points
    return mean, points - mean, scale


def _covariance(centred, weights, scale):
    if is_torch(centred):
        cov = (centred * weights[:, None]).T @ centred / scale
        return (cov + cov.T) / 2
    rows = centred * np.sqrt(weights / scale)[:, None]
    return rows.T @ rows


def _row_factor(centred, weights, scale):
    """A with ``Aᵀ A`` the covariance and at most d rows (the R of a QR decomposition for n > d)."""
    if is_torch(centred):
        import torch

        positive = weights > 0
        root = torch.where(positive, weights.clamp_min(torch.finfo(weights.dtype).tiny).sqrt(), weights.new_zeros(()))
        rows = centred * (root / scale.sqrt())[:, None]
        return torch.linalg.qr(rows, mode="reduced")[1] if rows.shape[0] > rows.shape[1] else rows
    rows = centred * np.sqrt(weights / scale)[:, None]
    return np.linalg.qr(rows, mode="r") if rows.shape[0] > rows.shape[1] else rows


def _nuclear_norm(matrix):
    if is_torch(matrix):
        import torch

        return torch.linalg.svdvals(matrix).sum()
    return float(np.linalg.svd(matrix, compute_uv=False).sum())
