"""The worked examples every OT course starts with, as data.

* Earth piles on positions 0..3: P = (3, 2, 1, 4) against Q = (1, 2, 4, 3) moves 5 units of
  earth x distance out of a total mass of 10 (W1 = 0.5); A = (5, 2, 2, 5) against B = (3, 3, 5, 3)
  also needs 5 units, out of 14 (W1 = 5/14).
* Parallel lines: P uniform on {0} x [0, 1], Q uniform on {theta} x [0, 1]. W1 = |theta| while, for
  theta != 0, the supports are disjoint: JS = log 2 and KL = +inf.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import api
from .._io import figure

PILE_POSITIONS = np.arange(4.0)
PILES = {
    "piles P vs Q": ((3.0, 2.0, 1.0, 4.0), (1.0, 2.0, 4.0, 3.0)),
    "piles A vs B": ((5.0, 2.0, 2.0, 5.0), (3.0, 3.0, 5.0, 3.0)),
}
#: Points per segment in the discretised parallel-lines example.
LINE_POINTS = 16


@dataclass(frozen=True)
class Row:
    """One example with its distances computed by every exact method."""

    name: str
    w1_exact: float
    w1_primal: float
    w1_dual: float
    kl: float
    js: float


def parallel_lines(theta: float, n: int = LINE_POINTS):
    """Points of the two segments and their histograms on the union of both supports."""
    t = (np.arange(n) + 0.5) / n
    x = np.column_stack([np.zeros(n), t])
    y = np.column_stack([np.full(n, float(theta)), t])
    support, inverse = np.unique(np.vstack([x, y]), axis=0, return_inverse=True)
    inverse = inverse.ravel()
    p = np.bincount(inverse[:n], minlength=len(support)).astype(float)
    q = np.bincount(inverse[n:], minlength=len(support)).astype(float)
    return x, y, p, q


def _row(name, x, y, a, b, p_hist, q_hist) -> Row:
    w1 = {m: api.wasserstein(x, y, a, b, method=m) for m in ("exact", "primal", "dual")}
    return Row(name, w1["exact"], w1["primal"], w1["dual"], api.kl(p_hist, q_hist), api.js(p_hist, q_hist))


def seed_rows(thetas=(0.0, 0.5, 1.0)) -> list[Row]:
    rows = []
    positions = PILE_POSITIONS[:, None]
    for name, (p, q) in PILES.items():
        rows.append(_row(name, positions, positions, p, q, p, q))
    for theta in thetas:
        x, y, p_hist, q_hist = parallel_lines(theta)
        rows.append(_row(f"parallel lines theta={theta:g}", x, y, None, None, p_hist, q_hist))
    return rows


def format_table(rows: list[Row]) -> str:
    header = f"{'example':<28}{'W1 exact':>11}{'W1 primal':>11}{'W1 dual':>11}{'KL':>11}{'JS':>11}"
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r.name:<28}{r.w1_exact:>11.6f}{r.w1_primal:>11.6f}{r.w1_dual:>11.6f}{r.kl:>11.6f}{r.js:>11.6f}"
        )
    return "\n".join(lines)


def parallel_lines_curves(thetas) -> dict[str, np.ndarray]:
    """W1, KL and JS of the parallel-lines example over a grid of theta."""
    thetas = np.asarray(thetas, dtype=float)
    out = {"theta": thetas, "w1": [], "kl": [], "js": []}
    for theta in thetas:
        x, y, p_hist, q_hist = parallel_lines(theta)
        out["w1"].append(api.wasserstein(x, y))
        out["kl"].append(api.kl(p_hist, q_hist))
        out["js"].append(api.js(p_hist, q_hist))
    return {k: np.asarray(v) for k, v in out.items()}


def _draw_parallel_lines(fig, curves: dict[str, np.ndarray]) -> None:
    ax = fig.add_subplot(1, 1, 1)
    theta = curves["theta"]
    ax.plot(theta, curves["w1"], label="W1 = |θ|", lw=2)
    ax.plot(theta, curves["js"], label="JS (→ log 2 for θ ≠ 0)", lw=2)
    kl = curves["kl"]
    finite = np.isfinite(kl)
    ax.plot(theta[finite], kl[finite], "o", color="C2", label="KL (finite)")
    top = max(float(np.max(curves["w1"])), np.log(2)) * 1.15
    ax.plot(theta[~finite], np.full((~finite).sum(), top), "^", color="C2", label="KL = +∞")
    ax.axhline(np.log(2), color="grey", ls=":", lw=1)
    ax.set_xlabel("θ (horizontal distance between the lines)")
    ax.set_ylabel("divergence")
    ax.set_title("Parallel lines: W1 grows with θ, JS and KL saturate")
    ax.legend(loc="lower right")


def plot_parallel_lines(curves: dict[str, np.ndarray], path) -> Path:
    """Write the W1 / JS / KL vs theta figure to ``path`` (PNG, PDF or SVG), atomically."""
    return figure(path, _draw_parallel_lines, curves, figsize=(6.4, 4.0))
