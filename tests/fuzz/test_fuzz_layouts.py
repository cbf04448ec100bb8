"""Fuzz: how an array is laid out never changes a result or leaks a numpy/torch warning.

The same numbers are passed as plain arrays and as read-only, strided (non-contiguous), Fortran-ordered
or broadcast NumPy views, transposed torch tensors, or nested lists; every public function must give
the same value (the oracle is the plain-array call) with no numpy or torch warning (tests run with warnings
as errors); otdist's own soft warning about an estimate's value is the same whatever the layout.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from strategies import examples

import otdist

LAYOUTS = ("read_only", "strided", "fortran", "broadcast", "list")


def _layout(arr: np.ndarray, layout: str):
    if layout == "read_only":
        out = arr.copy()
        out.setflags(write=False)
        return out
    if layout == "strided":
        wide = np.repeat(arr, 2, axis=0)
        return wide[::2]
    if layout == "fortran":
        return np.asfortranarray(arr)
    if layout == "broadcast":  # a read-only view with zero strides along a new axis
        return np.broadcast_to(arr[None], (2, *arr.shape))[0]
    return arr.tolist()


def _torch_transposed(arr: np.ndarray):
    """A non-contiguous tensor: the transpose of a contiguous one, or every other entry."""
    if arr.ndim == 2:
        return torch.as_tensor(np.ascontiguousarray(arr.T)).T
    return torch.as_tensor(np.repeat(arr, 2))[::2]


def _calls(x, y, a, b, p, q):
    return {
        "wasserstein_auto": lambda f: otdist.wasserstein(f(x), f(y), f(a), f(b)),
        "wasserstein_exact": lambda f: otdist.wasserstein(f(x), f(y), f(a), f(b), method="exact"),
        "wasserstein_dual": lambda f: otdist.wasserstein(f(x), f(y), f(a), f(b), method="dual"),
        "wasserstein_sliced": lambda f: otdist.wasserstein(f(x), f(y), f(a), f(b), method="sliced"),
        "transport_exact": lambda f: otdist.transport(f(x), f(y), f(a), f(b), p=2).transport_cost,
        "sinkhorn": lambda f: otdist.sinkhorn(f(x), f(y), f(a), f(b), epsilon=0.5).transport_cost,
        "sinkhorn_divergence": lambda f: otdist.sinkhorn_divergence(f(x), f(y), f(a), f(b), epsilon=0.5),
        "kl": lambda f: otdist.kl(f(p), f(q)),
        "js": lambda f: otdist.js(f(p), f(q)),
        "js_distance": lambda f: otdist.js_distance(f(p), f(q)),
        "kl_knn": lambda f: otdist.kl(f(x), f(y), method="knn", k=2),
        "estimate": lambda f: otdist.estimate(f(x), f(y), "js", "knn", k=2).value,
        "compare": lambda f: otdist.compare(f(x), f(y), metrics=("w1", "sinkhorn"))["w1"],
    }


CALL_NAMES = tuple(_calls(*(np.zeros((1, 1)),) * 6))


def _value_and_warnings(call, convert):
    """The call's value as a float and the categories of otdist's estimate warnings it gave; any other
    warning stays an error."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("error")
        warnings.simplefilter("always", otdist.EstimateWarning)
        value = float(call(convert))
    return value, [w.category for w in caught]


@pytest.mark.parametrize("name", CALL_NAMES)
@settings(max_examples=examples(0.4))
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(15, 20), m=st.integers(15, 20), d=st.integers(1, 3),
       layout=st.sampled_from(LAYOUTS + ("torch_transposed",)))
@example(seed=392748368, n=15, m=15, d=1, layout="read_only")  # the k-NN JS estimate warns: 2 s.e. below 0
def test_every_layout_gives_the_plain_array_result(name, seed, n, m, d, layout):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(n, d)), rng.normal(1.0, 1.0, size=(m, d))
    a, b = rng.random(n) + 0.1, rng.random(m) + 0.1
    p, q = rng.random(n) + 0.01, rng.random(n) + 0.01
    call = _calls(x, y, a, b, p, q)[name]
    convert = _torch_transposed if layout == "torch_transposed" else (lambda arr: _layout(arr, layout))
    try:
        expected, expected_warnings = _value_and_warnings(call, np.array)
    except otdist.OTDistError as err:  # the same refusal, whatever the layout
        with pytest.raises(type(err)):
            call(convert)
        return
    got, got_warnings = _value_and_warnings(call, convert)
    assert got_warnings == expected_warnings
    # torch kernels may sum in another order than NumPy's
    tol = (1e-9 if layout == "torch_transposed" else 1e-12) * (1 + abs(expected))
    assert abs(got - expected) <= tol, (got, expected)


FRESH_PROCESS_SCRIPT = """
import warnings
import numpy as np
import torch
import otdist
warnings.simplefilter("error")
rng = np.random.default_rng(0)
x, y = rng.normal(size=(6, 2)), rng.normal(size=(5, 2))
for arr in (x, y):
    arr.setflags(write=False)
try:
    {call}
except otdist.InputError:  # a refusal is fine; a warning on the way is not
    pass
"""


@pytest.mark.parametrize("call", (
    "otdist.transport(torch.tensor([0.0, 1.0]), torch.tensor([0.5]), method='1d')",
    "otdist.sinkhorn(x, y, epsilon=0.5)",
    "otdist.sinkhorn_divergence(x, y, epsilon=0.5)",
    "otdist.wasserstein(x, y, method='sinkhorn', epsilon=0.5)",
    "otdist.compare(x, y, metrics=('sinkhorn',))",
    "otdist.kl(torch.tensor([0.5 + 1j, 0.5]), [0.5, 0.5])",
    "otdist.wasserstein(torch.tensor([0.5 + 1j, 0.5]), [0.5, 0.5])",
    "otdist.sinkhorn(torch.tensor([[0.5 + 1j], [0.5]]), [[0.5], [1.0]], epsilon=0.1)",
))
def test_no_warning_in_a_fresh_process(call):
    # torch emits some warnings (non-writable arrays, sparse tensors without invariant checks) once
    # per process, so an earlier test may have used them up: the check needs a fresh process.
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", FRESH_PROCESS_SCRIPT.format(call=call)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
