"""Hypothesis strategies and oracles shared by the fuzz suite.

A drawn :class:`Case` holds the inputs exactly as a user passes them (NumPy or torch; int, bool,
float16, bfloat16, float32 or float64; weights omitted, ``[]`` or arrays mixing zeros and masses
from 1e-20 to 1) and the same numbers in float64 after the cast, so that every oracle (scipy, POT,
a closed form) sees what the library sees.  Tolerances are derived here, once, from the precision
the conventions promise: float16/bfloat16/int/bool torch inputs are computed in float32, float64
inputs in float64, and the result is rounded to the output dtype.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import ot
import torch
from hypothesis import reject, settings
from hypothesis import strategies as st
from scipy.spatial.distance import cdist

import otdist

DTYPES = ("int", "bool", "float16", "bfloat16", "float32", "float64")
CONTAINERS = ("numpy", "torch")
#: (container, dtype) pairs a user can build: NumPy has no bfloat16.
KINDS = tuple((c, d) for c in CONTAINERS for d in DTYPES if not (c == "numpy" and d == "bfloat16"))
FLOAT_KINDS = tuple(k for k in KINDS if k[1].startswith("float"))

EPS64 = float(np.finfo(np.float64).eps)
EPS32 = float(np.finfo(np.float32).eps)
OUTPUT_EPS = {"float16": float(np.finfo(np.float16).eps), "bfloat16": 2.0 ** -7, "float32": EPS32, "float64": EPS64}
#: Spacing of the subnormal numbers of each output dtype: the absolute rounding floor near zero.
OUTPUT_TINY = {"float16": 2.0 ** -24, "bfloat16": 2.0 ** -133, "float32": 2.0 ** -149, "float64": 2.0 ** -1074}
#: Above this many coordinates a cloud is drawn from a seeded generator (keeps hypothesis' inputs small).
MAX_DRAWN_COORDINATES = 64
#: Rounding of a length-d distance and of a sum over a plan: a few ulps per term, with headroom
#: for the p-th power and the reductions (64 ulps per coordinate plus a constant).
ULPS_PER_TERM = 64
#: The LP/exact solvers promise agreement with ``ot.emd2`` to this relative accuracy.
LP_RTOL = 1e-9
#: Smallest positive weight drawn, and the exponent range of the log-uniform weights.
TINY_WEIGHT_EXPONENT = -20
#: Coordinates stay in [-COORD_MAX, COORD_MAX], so costs d**p reach about 1e4 for p = 2 in 1-D.
COORD_MAX = 50.0
#: Sinkhorn's default stopping tolerance on the L1 marginal error, per compute precision.
SINKHORN_TOL = {"float64": 1e-8, "float32": 1e-4}


def examples(fraction: float = 1.0, minimum: int = 3) -> int:
    """A share of the active profile's ``max_examples`` ("default" quick, "ci" larger)."""
    return max(minimum, int(settings().max_examples * fraction))


# ----------------------------------------------------------------------------- dtype handling


def torch_dtype(name: str):
    return {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32,
            "float64": torch.float64, "int": torch.int64, "bool": torch.bool}[name]


def numpy_dtype(name: str):
    return {"float16": np.float16, "float32": np.float32, "float64": np.float64, "int": np.int64, "bool": np.bool_}[name]


def cast(values: np.ndarray, container: str, dtype: str):
    """float64 values in the user's container and dtype (ints rounded, bools as value > 0)."""
    values = np.asarray(values, dtype=np.float64)
    if dtype == "int":
        values = np.rint(values)
    elif dtype == "bool":
        values = values > 0
    if container == "numpy":
        return values.astype(numpy_dtype(dtype))
    return torch.as_tensor(values).to(torch_dtype(dtype))


def as_float64(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().to(torch.float64).cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def compute_eps(container: str, dtype: str) -> float:
    """Unit roundoff of the precision the computation is allowed to use."""
    return EPS64 if dtype == "float64" or (container == "numpy" and dtype in ("int", "bool")) else EPS32


def output_dtype(container: str, dtype: str):
    """None for a Python float (NumPy input); the torch dtype of a 0-d tensor otherwise."""
    if container == "numpy":
        return None
    if dtype in ("int", "bool"):
        return torch.get_default_dtype()
    return torch_dtype(dtype)


def _name(dtype) -> str:
    return "float64" if dtype is None else str(dtype).replace("torch.", "")


def array_dtype_name(container: str, dtype: str) -> str:
    """dtype of array results (plans, potentials): the input's float dtype, ints and bools promoted."""
    if dtype in ("int", "bool"):
        return "float64" if container == "numpy" else _name(torch.get_default_dtype())
    return dtype


def output_eps(container: str, dtype: str) -> float:
    return OUTPUT_EPS[_name(output_dtype(container, dtype))]


def output_tiny(container: str, dtype: str) -> float:
    return OUTPUT_TINY[_name(output_dtype(container, dtype))]


def check_scalar(value, container: str, dtype: str, *, allow_inf: bool = False) -> float:
    """The output convention (float for NumPy, 0-d tensor of the right dtype/device for torch) and finiteness."""
    expected = output_dtype(container, dtype)
    if expected is None:
        assert type(value) is float, f"NumPy input must give a Python float; got {type(value).__name__}"
        number = value
    else:
        assert isinstance(value, torch.Tensor), f"torch input must give a tensor; got {type(value).__name__}"
        assert value.ndim == 0, f"expected a 0-d tensor; got shape {tuple(value.shape)}"
        assert value.dtype == expected, f"expected dtype {expected}; got {value.dtype}"
        assert value.device.type == "cpu"
        number = float(value.detach().to(torch.float64))
    assert not math.isnan(number), "NaN returned"
    assert allow_inf or math.isfinite(number), f"non-finite value {number}"
    return number


# ----------------------------------------------------------------------------- cases


@dataclass
class Case:
    container: str
    dtype: str
    x: Any  # user inputs
    y: Any
    a: Any  # None, [] or an array
    b: Any
    x64: np.ndarray  # what the library sees, in float64
    y64: np.ndarray
    a64: np.ndarray | None  # normalised weights; None when the cast weights sum to zero
    b64: np.ndarray | None

    @property
    def valid(self) -> bool:
        return self.a64 is not None and self.b64 is not None

    @property
    def eps_c(self) -> float:
        return compute_eps(self.container, self.dtype)

    @property
    def eps_out(self) -> float:
        return output_eps(self.container, self.dtype)

    @property
    def eps_array(self) -> float:
        return OUTPUT_EPS[array_dtype_name(self.container, self.dtype)]

    @property
    def tiny_out(self) -> float:
        """Absolute rounding of a scalar or array output near zero (subnormal spacing)."""
        return max(OUTPUT_TINY[_name(output_dtype(self.container, self.dtype))],
                   OUTPUT_TINY[array_dtype_name(self.container, self.dtype)])

    @property
    def sinkhorn_tol(self) -> float:
        """Sinkhorn's default L1 marginal tolerance in the precision of this case."""
        return SINKHORN_TOL["float64" if self.eps_c == EPS64 else "float32"]

    def radius(self) -> float:
        """Bound on |x_i| + |y_j|: cost rounding is relative to it, not to |x_i - y_j|."""
        return float(np.linalg.norm(self.x64, axis=1).max() + np.linalg.norm(self.y64, axis=1).max())

    def cost_rounding(self, p: float) -> float:
        """Absolute rounding bound of one cost entry d(x, y)**p and of a weighted sum of them."""
        d = self.x64.shape[1]
        return ULPS_PER_TERM * (d + 4) * p * self.eps_c * max(self.radius(), 1e-300) ** p


def _weights(draw, n: int, container: str, dtype: str):
    """(user weights, normalised float64 weights or None when they sum to zero)."""
    mode = draw(st.sampled_from(("none", "empty", "array", "array")))
    if mode == "none":
        return None, np.full(n, 1.0 / n)
    if mode == "empty":
        return [], np.full(n, 1.0 / n)
    if dtype == "int":
        raw = np.array(draw(st.lists(st.integers(0, 5), min_size=n, max_size=n)), dtype=float)
    elif dtype == "bool":
        raw = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=float)
    else:
        exponents = draw(st.lists(st.one_of(st.none(), st.floats(TINY_WEIGHT_EXPONENT, 0)), min_size=n, max_size=n))
        raw = np.array([0.0 if e is None else 10.0 ** e for e in exponents])
    user = cast(raw, container, dtype)
    seen = as_float64(user)
    total = seen.sum()
    return user, (seen / total if total > 0 else None)


def _points(draw, n: int, d: int, dtype: str, scale: float) -> np.ndarray:
    if dtype == "bool":
        return np.array(draw(st.lists(st.booleans(), min_size=n * d, max_size=n * d)), dtype=float).reshape(n, d)
    if n * d > MAX_DRAWN_COORDINATES:
        seed = draw(st.integers(0, 2**32 - 1))
        return np.random.default_rng(seed).uniform(-1.0, 1.0, size=(n, d)) * scale
    coords = draw(st.lists(st.floats(-1.0, 1.0), min_size=n * d, max_size=n * d))
    return np.array(coords).reshape(n, d) * scale


@st.composite
def cases(draw, *, max_n: int = 8, dims=(1, 2, 3), kinds=KINDS, weights: bool = True, min_n: int = 1):
    """Two weighted point clouds (n, d), (m, d) with n != m allowed, duplicated points and one-point clouds."""
    container, dtype = draw(st.sampled_from(kinds))
    d = draw(st.sampled_from(dims))
    n, m = draw(st.integers(min_n, max_n)), draw(st.integers(min_n, max_n))
    scale = draw(st.sampled_from((1e-3, 1.0, COORD_MAX))) / math.sqrt(d)
    if dtype == "int":
        scale = max(scale, 3.0)
    x, y = _points(draw, n, d, dtype, scale), _points(draw, m, d, dtype, scale)
    for _ in range(draw(st.integers(0, 2))):  # duplicates within x and across the clouds
        i, j = draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))
        x[i] = x[j]
        k = draw(st.integers(0, m - 1))
        y[k] = x[draw(st.integers(0, n - 1))]
    ux, uy = cast(x, container, dtype), cast(y, container, dtype)
    if weights:
        ua, a64 = _weights(draw, n, container, dtype)
        ub, b64 = _weights(draw, m, container, dtype)
    else:
        ua, ub, a64, b64 = None, None, np.full(n, 1.0 / n), np.full(m, 1.0 / m)
    return Case(container, dtype, ux, uy, ua, ub, as_float64(ux), as_float64(uy), a64, b64)


# ----------------------------------------------------------------------------- oracles


def support(w: np.ndarray) -> np.ndarray:
    """Indices of positive weights: zero-mass points leave every transport quantity unchanged."""
    return np.flatnonzero(w > 0)


def euclidean_cost(x: np.ndarray, y: np.ndarray, p: float) -> np.ndarray:
    """|x_i - y_j|**p from coordinate differences (scipy's cdist), accurate to a few ulps of |x| + |y|.

    Not ``ot.dist``: its |x|^2 + |y|^2 - 2 x.y form loses digits for close points in high dimension.
    """
    return cdist(x, y) ** p


def emd_cost(case: Case, p: float) -> float:
    """min <P, C> with C = |x - y|**p, by POT's network simplex on the support of the weights."""
    i, j = support(case.a64), support(case.b64)
    a, b = case.a64[i], case.b64[j]
    cost = euclidean_cost(case.x64[i], case.y64[j], p)
    return float(ot.emd2(a / a.sum(), b / b.sum(), cost, numItermax=10_000_000))


def entropy(w: np.ndarray) -> float:
    w = w[w > 0]
    return float(-(w * np.log(w)).sum())


def pot_entropic(case_x, case_y, a, b, p: float, epsilon: float):
    """POT's converged log-domain Sinkhorn: (value_linear, value) = (<P, C>, OT_eps)."""
    i, j = support(a), support(b)
    cost = euclidean_cost(case_x[i], case_y[j], p)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        try:
            res = ot.solve(cost, a[i] / a[i].sum(), b[j] / b[j].sum(), reg=epsilon, max_iter=200_000, tol=1e-13)
        except UserWarning:  # POT did not converge: no oracle for this example
            reject()
    return float(res.value_linear), float(res.value)


def is_own_error(err: BaseException) -> bool:
    return isinstance(err, otdist.OTDistError)
