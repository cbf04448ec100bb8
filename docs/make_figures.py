"""Regenerate the figures embedded in the documentation (docs/figures/*.png and their data).

    python docs/make_figures.py

Each figure is an ``otdist experiment`` run with its default settings and seed 0.
"""

from __future__ import annotations

from pathlib import Path

from otdist import experiments

FIGURES = Path(__file__).parent / "figures"


def main() -> None:
    for name in experiments.EXPERIMENTS:
        module = experiments.get(name)
        result = module.run(seed=0, progress=False)
        module.plot(result, FIGURES / f"{name}.png")
        result.save_json(FIGURES / f"{name}.json")
        print(f"{name}: wrote {FIGURES / name}.png/.json")


if __name__ == "__main__":
    main()
