"""Earth piles: 1-D histograms on positions 0..3 and the optimal plan that moves one onto the other.

The examples are the two pile pairs of :mod:`otdist.experiments.seeds`; for each, the exact plan
(network simplex), W1, and the flows (from, to, mass) that leave their position.
"""

from __future__ import annotations

import numpy as np

from .. import api
from .._io import figure
from ._common import ExperimentResult
from .seeds import PILE_POSITIONS, PILES


def run(progress: bool = False, seed: int = 0) -> ExperimentResult:
    """The plan, W1 and flows of each pile example (deterministic; ``progress``/``seed`` unused)."""
    del progress, seed
    names, w1, moved, totals = [], [], [], []
    info = {"positions": PILE_POSITIONS, "examples": {}}
    for name, (p, q) in PILES.items():
        p, q = np.asarray(p), np.asarray(q)
        res = api.transport(PILE_POSITIONS, PILE_POSITIONS, p, q, method="exact")
        plan = res.plan * p.sum()  # in units of earth
        flows = [(float(PILE_POSITIONS[i]), float(PILE_POSITIONS[j]), float(plan[i, j]))
                 for i, j in zip(*np.nonzero(plan > 1e-12)) if i != j]
        names.append(name)
        w1.append(res.value)
        moved.append(sum(abs(s - t) * m for s, t, m in flows))
        totals.append(float(p.sum()))
        info["examples"][name] = {"p": p, "q": q, "plan": plan, "flows": flows}
    columns = {"example": np.arange(len(names)), "w1": np.array(w1), "earth_x_distance": np.array(moved),
               "total_mass": np.array(totals)}
    info["names"] = names
    return ExperimentResult("earth-piles", columns, info)


def _draw(fig, result: ExperimentResult) -> None:
    positions = result.info["positions"]
    names = result.info["names"]
    for k, name in enumerate(names):
        example = result.info["examples"][name]
        ax = fig.add_subplot(1, len(names), k + 1)
        ax.bar(positions, example["p"], width=0.6, color="C0", alpha=0.8, label="P (from)")
        ax.bar(positions, -np.asarray(example["q"]), width=0.6, color="C1", alpha=0.8, label="Q (to)")
        for s, t, mass in example["flows"]:
            ax.annotate("", xy=(t, 0.15), xytext=(s, 0.15),
                        arrowprops={"arrowstyle": "-|>", "lw": 1 + 1.5 * mass, "color": "k",
                                    "connectionstyle": "arc3,rad=-0.35"})
            ax.text((s + t) / 2, 0.6 + 0.3 * abs(t - s), f"{mass:g}", ha="center", fontsize=9)
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xticks(positions)
        ax.set_title(f"{name}\nW1 = {result.columns['w1'][k]:.4g} "
                     f"({result.columns['earth_x_distance'][k]:g} / {result.columns['total_mass'][k]:g})", fontsize=10)
        ax.set_xlabel("position")
        if k == 0:
            ax.set_ylabel("earth (P up, Q down)")
            ax.legend(fontsize=8, loc="lower left")


def plot(result: ExperimentResult, path):
    return figure(path, _draw, result, figsize=(9.0, 4.2))
