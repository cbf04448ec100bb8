"""A WGAN whose critic is the Kantorovich-Rubinstein critic of :mod:`otdist.neural` (imports torch).

>>> from otdist import wgan
>>> run = wgan.train(wgan.Config(data="8gaussians", steps=20, eval_every=10, eval_samples=500, out="wgan-doc",
...                              progress=False))
>>> run.sample(5).shape
(5, 2)
"""

from .checkpoint import load_generator
from .data import DATASETS, Dataset, load
from .metrics import evaluate
from .train import DEFAULT_STEPS, Config, Run, TrainingInterrupted, train

__all__ = ["DATASETS", "DEFAULT_STEPS", "Config", "Dataset", "Run", "TrainingInterrupted", "evaluate", "load",
           "load_generator", "train"]
