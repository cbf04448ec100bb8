"""Energy distance and MMD on torch tensors: output type, agreement with NumPy, gradients."""

import numpy as np
import pytest

import otdist._kernels_blocks
from otdist.kernels import energy_distance, kernel_matrix, mmd

torch = pytest.importorskip("torch")

SEEDS = (0, 1)


def _pair(seed, n=12, m=9, d=2):
    rng = np.random.default_rng(seed)
    shape_x, shape_y = ((n,), (m,)) if d == 1 else ((n, d), (m, d))
    return rng.normal(size=shape_x), rng.normal(size=shape_y) + 0.3, rng.random(n) + 0.1, rng.random(m) + 0.1


CASES = {
    "energy": lambda x, y, a, b: energy_distance(x, y, a, b),
    "gaussian": lambda x, y, a, b: mmd(x, y, "gaussian", 0.9, x_weights=a, y_weights=b),
    "laplacian": lambda x, y, a, b: mmd(x, y, "laplacian", 0.9, x_weights=a, y_weights=b),
    "polynomial": lambda x, y, a, b: mmd(x, y, "polynomial", x_weights=a, y_weights=b),
    "mmd-energy": lambda x, y, a, b: mmd(x, y, "energy", squared=True, x_weights=a, y_weights=b),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("d", [1, 3])
def test_float64_tensors_agree_with_numpy(case, d):
    x, y, a, b = _pair(0, d=d)
    expected = CASES[case](x, y, a, b)
    value = CASES[case](*(torch.tensor(t) for t in (x, y, a, b)))
    assert value.dtype == torch.float64 and value.ndim == 0
    assert float(value) == pytest.approx(expected, rel=1e-12, abs=1e-14)


# float32 and the float32 computation of float16/bfloat16: 1e-5 relative; the result is then rounded to the
# input's dtype (unit roundoff 2**-11 for float16, 2**-8 for bfloat16) and the inputs themselves are rounded.
DTYPES = {torch.float32: 1e-5, torch.float16: 2e-2, torch.bfloat16: 5e-2}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("d", [1, 2])
def test_dtypes_follow_the_input(dtype, d):
    x, y, _, _ = _pair(1, d=d)
    def gaussian(p, q):
        return mmd(p, q, bandwidth=1.0)

    for function, expected in ((energy_distance, energy_distance(x, y)), (gaussian, gaussian(x, y))):
        value = function(torch.tensor(x, dtype=dtype), torch.tensor(y, dtype=dtype))
        assert value.dtype == dtype and value.ndim == 0 and value.device.type == "cpu"
        assert float(value) == pytest.approx(expected, rel=DTYPES[dtype])


def test_integer_tensors_are_computed_in_the_default_float():
    x, y = torch.tensor([[0, 1], [2, 2]]), torch.tensor([[1, 1], [3, 0], [0, 0]])
    value = energy_distance(x, y)
    assert value.dtype == torch.get_default_dtype()
    assert float(value) == pytest.approx(energy_distance(x.numpy(), y.numpy()), rel=1e-6)
    assert type(energy_distance(x.numpy(), y.numpy())) is float and type(mmd(x.numpy(), y.numpy())) is float


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("d", [1, 2])
@pytest.mark.parametrize("seed", SEEDS)
def test_gradients_in_values_and_weights_match_finite_differences(case, d, seed):
    inputs = tuple(torch.tensor(t, requires_grad=True) for t in _pair(seed, n=7, m=6, d=d))
    assert torch.autograd.gradcheck(CASES[case], inputs)


@pytest.mark.parametrize("case", ["energy", "laplacian", "mmd-energy"])
def test_gradient_with_duplicated_points_is_finite_and_matches_central_differences(case):
    """|x - y| has no derivative at x = y; the gradient there is 0, which central differences also give."""
    x, y, a, b = _pair(2, n=6, m=5, d=2)
    x[1], y[2] = x[0], x[3]
    inputs = tuple(torch.tensor(t, requires_grad=True) for t in (x, y, a, b))
    value = CASES[case](*inputs)
    value.backward()
    assert all(torch.isfinite(t.grad).all() for t in inputs)
    assert torch.autograd.gradcheck(CASES[case], inputs)


def test_identical_samples_give_a_zero_value_and_a_zero_gradient():
    for d in (1, 2):
        x = torch.tensor(_pair(3, d=d)[0], requires_grad=True)
        for value in (energy_distance(x, x), mmd(x, x)):
            (grad,) = torch.autograd.grad(value, x)
            assert float(value.detach()) == 0.0 and torch.equal(grad, torch.zeros_like(grad))


@pytest.mark.parametrize("kernel", ["energy", "gaussian"])
def test_row_blocks_recomputed_in_backward_give_the_same_gradients(monkeypatch, kernel):
    x, y, a, b = (torch.tensor(t, requires_grad=True) for t in _pair(4, n=23, m=17, d=3))

    def gradients():
        value = mmd(x, y, kernel, None, x_weights=a, y_weights=b)
        return (value, *torch.autograd.grad(value, (x, y, a, b)))

    whole = gradients()
    monkeypatch.setattr(otdist._kernels_blocks, "BLOCK_ENTRIES", 40)
    blocked = gradients()
    for left, right in zip(whole, blocked):
        torch.testing.assert_close(left, right, rtol=1e-12, atol=1e-14)


def test_unbiased_statistic_gradients_match_finite_differences():
    x, y, _, _ = _pair(5, n=6, m=5, d=2)
    inputs = (torch.tensor(x, requires_grad=True), torch.tensor(y, requires_grad=True))
    assert torch.autograd.gradcheck(lambda p, q: mmd(p, q, "gaussian", 0.8, squared=True, unbiased=True), inputs)


def test_callable_kernels_in_torch_and_numpy():
    x, y, _, _ = _pair(6, d=2)
    expected = mmd(x, y, "laplacian", 1.0)
    tx, ty = torch.tensor(x), torch.tensor(y)
    in_torch = mmd(tx, ty, lambda p, q: torch.exp(-torch.cdist(p, q)))
    from_numpy = mmd(tx, ty, lambda p, q: np.exp(-np.sqrt(((p.numpy()[:, None] - q.numpy()[None]) ** 2).sum(-1))))
    assert float(in_torch) == pytest.approx(expected, rel=1e-12)
    assert float(from_numpy) == pytest.approx(expected, rel=1e-12)
    returns_tensor = mmd(x, y, lambda p, q: torch.exp(-torch.cdist(torch.as_tensor(p), torch.as_tensor(q))))
    assert type(returns_tensor) is float and returns_tensor == pytest.approx(expected, rel=1e-12)


def test_kernel_matrix_is_a_differentiable_tensor():
    x, y, _, _ = _pair(7, d=2)
    tx = torch.tensor(x, dtype=torch.float32, requires_grad=True)
    matrix = kernel_matrix(tx, torch.tensor(y, dtype=torch.float32), "gaussian", 0.5)
    assert matrix.dtype == torch.float32 and matrix.shape == (12, 9) and matrix.requires_grad
    expected = np.exp(-((x[:, None] - y[None]) ** 2).sum(-1) / (2 * 0.25))
    np.testing.assert_allclose(matrix.detach().numpy(), expected, rtol=1e-5, atol=1e-6)
