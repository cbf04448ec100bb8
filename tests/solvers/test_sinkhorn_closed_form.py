"""Entropic OT between 1-D Gaussians in closed form (Janati, Muzellec, Peyré & Cuturi, 2020), against
otdist's Sinkhorn on a fine quadrature of the two densities.

Janati et al. regularise with 2σ²·KL(π ‖ α⊗β), so their σ² is ε/2 in otdist's units (cost |x − y|², p = 2):

    OT_ε = (m_a − m_b)² + A + B − D + σ²(1 − log 2σ²) + σ² log(D + σ²),  D = sqrt(4AB + σ⁴)

for variances A, B. The KL term does not depend on the grid once the grid resolves the plan (spacing ≪ σ),
so the discretised problem on [−10, 10] with step 0.05 (σ ≥ 0.3 here) differs from the continuous one by
the truncated tails: beyond 6 standard deviations, mass below 1e-8, hence a tolerance of 1e-7 relative.
"""

import numpy as np
import pytest

import otdist

GRID = np.arange(-10.0, 10.0 + 0.025, 0.05)
#: Quadrature error bound (tails beyond 6 standard deviations carry less than 1e-8 of the mass).
QUADRATURE_REL = 1e-7


def janati(ma, var_a, mb, var_b, eps):
    s2 = eps / 2
    d = np.sqrt(4 * var_a * var_b + s2**2)
    return (ma - mb) ** 2 + var_a + var_b - d + s2 * (1 - np.log(2 * s2)) + s2 * np.log(d + s2)


def density(mean, var):
    w = np.exp(-((GRID - mean) ** 2) / (2 * var))
    return w / w.sum()


@pytest.mark.parametrize("ma, var_a, mb, var_b, eps", [
    (0.0, 1.0, 1.0, 2.0, 0.5),
    (0.3, 0.5, -1.0, 1.5, 1.0),
    (0.0, 1.0, 0.0, 1.0, 0.2),
    (-0.5, 0.8, 0.5, 0.8, 2.0),
])
def test_entropic_cost_of_gaussians_matches_the_closed_form(ma, var_a, mb, var_b, eps):
    result = otdist.sinkhorn(GRID, GRID, density(ma, var_a), density(mb, var_b), p=2, epsilon=eps)
    expected = janati(ma, var_a, mb, var_b, eps)
    assert result.entropic_cost == pytest.approx(expected, rel=QUADRATURE_REL)
    # The divergence of a Gaussian from itself is 0; from another, the closed forms combine the same way.
    divergence = otdist.sinkhorn_divergence(GRID, GRID, density(ma, var_a), density(mb, var_b), p=2, epsilon=eps)
    closed = expected - 0.5 * janati(ma, var_a, ma, var_a, eps) - 0.5 * janati(mb, var_b, mb, var_b, eps)
    assert divergence == pytest.approx(closed, rel=QUADRATURE_REL, abs=QUADRATURE_REL * expected)
