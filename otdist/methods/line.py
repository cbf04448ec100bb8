"""``method="1d"``: the monotone coupling of 1-D samples (quantile functions), with its dual potentials;
and :func:`wasserstein_along_axis`, one 1-D W_p per column of two arrays."""

from __future__ import annotations

import numbers

import numpy as np
import scipy.sparse as sp

from .. import _validation as V
from .._backend import array_out, is_torch, numpy_output_dtype, output_dtype, to_numpy, to_torch, torch_reference
from ..exceptions import InputError, InputTypeError
from ..problem import Problem, check_representable, overflow_checked, pth_root, transport_result
from ..registry import MethodSpec, register_method
from ..solvers import exact_1d
from .._results import TransportResult


def _solve_1d(problem: Problem, need_plan: bool, **options) -> TransportResult:
    V.reject_options(options, "1d")
    if problem.x is None or problem.x.shape[1] != 1 or problem.cost is not None:
        d = "a precomputed cost" if problem.x is None or problem.cost is not None else f"d={problem.x.shape[1]}"
        raise InputError(
            f'method="1d" needs 1-D values (or (n, 1) arrays) and the ground metric |x - y|; got {d}. '
            'Use method="exact" for point clouds or precomputed costs, or "sliced" for a cheap n-D proxy.'
        )
    if callable(problem.metric) or problem.metric not in ("euclidean", "cityblock", "minkowski", "chebyshev"):
        raise InputError(
            f'method="1d" uses the ground metric |x - y|; got metric={problem.metric!r}. '
            'Use p=2 for quadratic costs, or method="exact" for other metrics.'
        )
    u, v = problem.x[:, 0], problem.y[:, 0]
    if not need_plan:
        with overflow_checked():
            cost = exact_1d.transport_cost(u, v, problem.a, problem.b, problem.p, uniform=problem.uniform)
        return transport_result(problem, cost, None, None, None, "1d")
    with overflow_checked():
        coupling = exact_1d.monotone_coupling(u, v, problem.a, problem.b, problem.p)
        a, b = to_numpy(problem.a), to_numpy(problem.b)
        a, b = a / a.sum(), b / b.sum()  # as the staircase's levels: float32 weights sum to 1 in float32 only
        dual = exact_1d.dual_potentials(to_numpy(u), to_numpy(v), a, b, problem.p)
    plan = sparse_plan(coupling, problem)
    gap = dual.transport_cost - (a @ dual.f + b @ dual.g)
    return transport_result(problem, coupling.transport_cost, plan, (dual.f, dual.g), gap, "1d")


def sparse_plan(coupling: exact_1d.Monotone1D, problem: Problem):
    shape = (problem.x.shape[0], problem.y.shape[0])
    if problem.like is not None:
        import torch

        indices = torch.stack([coupling.u_index, coupling.v_index])
        mass = coupling.mass.to(output_dtype(problem.like))
        return torch.sparse_coo_tensor(indices, mass, shape, check_invariants=True).coalesce()
    dtype = np.promote_types(problem.out_dtype, np.float32)  # scipy.sparse has no float16
    plan = sp.coo_matrix((coupling.mass.astype(dtype), (coupling.u_index, coupling.v_index)), shape=shape)
    return plan.tocsr()


# ----------------------------------------------------------------------------- one W_p per column


def _check_axis(axis, ndim: int) -> int:
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise InputTypeError(f"axis must be an integer; got {axis!r} ({type(axis).__name__}). Pass e.g. axis=0.")
    if not -ndim <= axis < ndim:
        raise InputError(f"axis must index a dimension of the {ndim}-D values (-{ndim} <= axis < {ndim}); got "
                         f"axis={axis}. Pass the axis along which the samples run.")
    return int(axis) % ndim


def _column_values(values, name: str, axis: int, like):
    """``values`` with the samples' axis moved last, in the computation's array type."""
    if values.shape[axis] == 0:
        raise InputError(f"{name} must hold at least one sample along axis {axis}; got shape {tuple(values.shape)}. "
                         "Pass non-empty samples.")
    if like is not None:
        values = to_torch(values, like)
    return values.movedim(axis, -1) if is_torch(values) else np.moveaxis(values, axis, -1)


def _column_weights(weights, values_shape: tuple, axis: int, name: str, values_name: str, like):
    """Weights of the same shape as their values, or one (n,) vector for every column; unnormalised,
    with the samples' axis moved last."""
    n = values_shape[axis]
    if weights is None:
        return to_torch(np.ones(n), like) if like is not None else np.ones(n)
    arr = V.as_real_array(weights, name)
    if tuple(arr.shape) == values_shape:
        arr = arr.movedim(axis, -1) if is_torch(arr) else np.moveaxis(arr, axis, -1)
    elif tuple(arr.shape) != (n,):
        raise InputError(
            f"{name} must have the shape of {values_name} {values_shape} or be one vector of length {n} shared by "
            f"every column; got shape {tuple(arr.shape)}. Pass one non-negative weight per sample."
        )
    values = to_numpy(arr)
    if (values < 0).any():
        index = tuple(int(i) for i in np.argwhere(values < 0)[0])
        raise InputError(f"{name} must be non-negative; got {values.min():g} at index {index} (samples' axis moved "
                         "last). Pass non-negative masses or omit the weights.")
    empty = values.sum(-1) <= 0
    if empty.any():
        column = tuple(int(i) for i in np.argwhere(empty)[0])
        raise InputError(f"every column of {name} must have a positive sum; column {column} sums to 0. Give each "
                         "column at least one positive weight.")
    return to_torch(arr, like) if like is not None else arr


def wasserstein_along_axis(u_values, v_values, u_weights=None, v_weights=None, *, p: float = 1, axis: int = 0):
    r"""W_p between the 1-D samples of each column of two arrays, every column in one pass.

    .. math:: W_p(\mu_k, \nu_k) = \Big(\int_0^1 |F_{\mu_k}^{-1}(t) - F_{\nu_k}^{-1}(t)|^p \, dt\Big)^{1/p}

    for each index k of the dimensions other than ``axis``: the samples of column k are
    ``u_values[..., :, k...]`` along ``axis``.  All columns are sorted and merged at once, in
    O(K (n + m) log(n + m)) for K columns, without a Python loop over them.

    Parameters
    ----------
    u_values, v_values
        Arrays (NumPy or torch) with n and m samples along ``axis``; their other dimensions broadcast
        against each other.
    u_weights, v_weights
        Non-negative weights, of the same shape as their values or one 1-D vector of length n (m)
        shared by every column; each column is normalised. Uniform when omitted.
    p
        Order p >= 1.
    axis
        The axis along which the samples run.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        One W_p per column: the broadcast shape of the other dimensions (0-d for 1-D input). A NumPy
        array for NumPy input; a tensor in the input's dtype and device for torch input, differentiable
        in the values and the weights.

    Examples
    --------
    >>> import numpy as np
    >>> from otdist.methods.line import wasserstein_along_axis
    >>> u = np.array([[0.0, 0.0], [1.0, 2.0], [3.0, 4.0]])
    >>> wasserstein_along_axis(u, u + [5.0, -1.0])
    array([5., 1.])
    """
    p = V.check_order(p)
    like = torch_reference(u_values, v_values, u_weights, v_weights)
    u, v = V.as_real_array(u_values, "u_values"), V.as_real_array(v_values, "v_values")
    if u.ndim == 0 or u.ndim != v.ndim:
        raise InputError(f"u_values and v_values must be arrays with the same number (>= 1) of dimensions; got "
                         f"{u.ndim} and {v.ndim}. Add the missing axes (np.expand_dims) so that the columns line up.")
    axis = _check_axis(axis, u.ndim)
    u_shape, v_shape = tuple(u.shape), tuple(v.shape)
    u, v = _column_values(u, "u_values", axis, like), _column_values(v, "v_values", axis, like)
    try:
        batch = tuple(np.broadcast_shapes(tuple(u.shape[:-1]), tuple(v.shape[:-1])))
    except ValueError:
        raise InputError(f"the dimensions of u_values and v_values other than axis={axis} must broadcast; got shapes "
                         f"{u_shape} and {v_shape}. Make the columns match.") from None
    a = _column_weights(u_weights, u_shape, axis, "u_weights", "u_values", like)
    b = _column_weights(v_weights, v_shape, axis, "v_weights", "v_values", like)
    expand = (lambda t: t.expand(*batch, t.shape[-1])) if like is not None else (
        lambda t: np.broadcast_to(t, (*batch, t.shape[-1])))
    u, v = expand(u), expand(v)
    a, b = (w if w.ndim == 1 else expand(w) for w in (a, b))  # a shared (n,) vector stays one
    uniform = u_weights is None and v_weights is None and u.shape[-1] == v.shape[-1]
    with overflow_checked():
        cost = exact_1d.transport_cost(u, v, a, b, p, uniform=uniform)
    if cost.numel() if is_torch(cost) else cost.size:
        check_representable(cost.max(), p)
    if p != 1:
        cost = pth_root(cost, p) if is_torch(cost) else np.maximum(cost, 0.0) ** (1.0 / p)
    if like is not None:
        return array_out(cost, like)
    return np.asarray(array_out(cost, None, numpy_output_dtype(u_values, v_values, u_weights, v_weights)))


register_method(MethodSpec("1d", _solve_1d, "exact W_p of 1-D samples through their quantile functions",
                           exact=True, gradients="values and weights", memory="O(n + m)",
                           along_axis=wasserstein_along_axis))
