"""Training data for the WGAN, all generated or shipped in a package (nothing is downloaded).

* ``8gaussians``: centres 2 (cos k pi/4, sin k pi/4), sigma = 0.02 (the mode-collapse literature's
  convention);
* ``25gaussians``: centres on the grid {-4, -2, 0, 2, 4}^2, sigma = 0.05;
* ``swissroll``: a 2-D Swiss roll, scaled to about [-2, 2]^2;
* ``digits``: scikit-learn's 1797 handwritten 8x8 digits, scaled to [-1, 1];
* ``flags``: procedural flag-like 3 x 24 x 36 images in six layout classes (horizontal and
  vertical tricolours, Nordic cross, saltire, horizontal stripes, disc on a field) with random
  colours from a palette, in [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from ..exceptions import InputError

DATASETS = ("8gaussians", "25gaussians", "swissroll", "digits", "flags")
FLAG_SHAPE = (3, 24, 36)
FLAG_LAYOUTS = ("horizontal tricolour", "vertical tricolour", "nordic cross", "saltire", "stripes", "disc")
#: RGB palette of the flags, in [0, 1].
FLAG_PALETTE = np.array([
    [0.80, 0.10, 0.15], [1.00, 1.00, 1.00], [0.00, 0.22, 0.55], [0.00, 0.55, 0.27],
    [1.00, 0.80, 0.00], [0.05, 0.05, 0.05], [0.00, 0.60, 0.85], [0.95, 0.45, 0.05],
])
#: Synthetic datasets: how many samples are drawn once per seed for training and for held-out evaluation.
SYNTHETIC_TRAIN, SYNTHETIC_TEST = 50_000, 2_000
FLAGS_TRAIN, FLAGS_TEST = 6_000, 1_000
DIGITS_TEST = 297


@dataclass(frozen=True)
class Dataset:
    """Training and held-out samples, flattened to vectors, and what the metrics need to know."""

    name: str
    train: np.ndarray  # (n, dim) float32
    test: np.ndarray
    shape: tuple[int, ...]  # shape of one sample (2,) or (C, H, W) / (8, 8)
    centres: np.ndarray | None = None  # mixture modes (toy mixtures)
    sigma: float | None = None
    labels_train: np.ndarray | None = field(default=None, repr=False)  # class / layout labels (images)
    labels_test: np.ndarray | None = field(default=None, repr=False)

    @property
    def dim(self) -> int:
        return int(self.train.shape[1])

    @property
    def is_image(self) -> bool:
        return len(self.shape) > 1


def mixture_centres(name: str) -> tuple[np.ndarray, float]:
    if name == "8gaussians":
        angles = np.arange(8) * np.pi / 4
        return 2.0 * np.column_stack([np.cos(angles), np.sin(angles)]), 0.02
    grid = np.array([-4.0, -2.0, 0.0, 2.0, 4.0])
    return np.array([(a, b) for a in grid for b in grid]), 0.05


def _mixture(name: str, n: int, rng: np.random.Generator) -> np.ndarray:
    centres, sigma = mixture_centres(name)
    return centres[rng.integers(len(centres), size=n)] + sigma * rng.normal(size=(n, 2))


def _swiss_roll(n: int, rng: np.random.Generator) -> np.ndarray:
    t = 1.5 * np.pi * (1 + 2 * rng.random(n))
    points = np.column_stack([t * np.cos(t), t * np.sin(t)]) / 7.5
    return points + 0.02 * rng.normal(size=(n, 2))


def sampler(name: str):
    """``draw(n, rng) -> (n, 2)`` fresh points of the 2-D dataset ``name`` (mixtures and the Swiss roll)."""
    if name in ("8gaussians", "25gaussians"):
        return lambda n, rng: _mixture(name, n, rng)
    if name == "swissroll":
        return _swiss_roll
    raise InputError(f"fresh draws exist for the 2-D datasets 8gaussians, 25gaussians and swissroll; got {name!r}.")


def flag_images(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` flags (n, 3, 24, 36) in [0, 1] and their layout labels (indices into FLAG_LAYOUTS)."""
    _, height, width = FLAG_SHAPE
    rows, cols = np.mgrid[0:height, 0:width]
    labels = rng.integers(len(FLAG_LAYOUTS), size=n)
    images = np.empty((n, *FLAG_SHAPE))
    for k, layout in enumerate(labels):
        colours = FLAG_PALETTE[rng.choice(len(FLAG_PALETTE), size=3, replace=False)]
        if layout == 0:
            region = np.minimum(rows * 3 // height, 2)
        elif layout == 1:
            region = np.minimum(cols * 3 // width, 2)
        elif layout == 2:
            region = ((np.abs(rows - height / 2 + 0.5) < 3) | (np.abs(cols - width / 3 + 0.5) < 3)).astype(int)
        elif layout == 3:
            u, v = cols / width, rows / height
            region = ((np.abs(u - v) < 0.09) | (np.abs(u + v - 1) < 0.09)).astype(int)
        elif layout == 4:
            region = (rows * 6 // height) % 2
        else:
            region = ((rows - height / 2 + 0.5) ** 2 + (cols - width / 2 + 0.5) ** 2 < (height / 3.5) ** 2).astype(int)
        images[k] = colours[region].transpose(2, 0, 1)
    return images, labels


def load(name: str, seed: int = 0) -> Dataset:
    """The dataset ``name`` (one of DATASETS); synthetic ones are drawn with ``seed``."""
    if name not in DATASETS:
        raise InputError(f"data must be one of {', '.join(DATASETS)}; got {name!r}.")
    rng = np.random.default_rng(seed)
    as32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
    if name in ("8gaussians", "25gaussians"):
        centres, sigma = mixture_centres(name)
        return Dataset(name, as32(_mixture(name, SYNTHETIC_TRAIN, rng)), as32(_mixture(name, SYNTHETIC_TEST, rng)), (2,),
                       centres, sigma)
    if name == "swissroll":
        return Dataset(name, as32(_swiss_roll(SYNTHETIC_TRAIN, rng)), as32(_swiss_roll(SYNTHETIC_TEST, rng)), (2,))
    if name == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        order = rng.permutation(len(digits.target))
        images = digits.data[order] / 8.0 - 1.0  # pixel values 0..16 -> [-1, 1]
        labels = digits.target[order]
        return Dataset(name, as32(images[DIGITS_TEST:]), as32(images[:DIGITS_TEST]), (8, 8),
                       labels_train=labels[DIGITS_TEST:], labels_test=labels[:DIGITS_TEST])
    images, labels = flag_images(FLAGS_TRAIN + FLAGS_TEST, rng)
    flat = images.reshape(len(images), -1) * 2.0 - 1.0
    return Dataset(name, as32(flat[FLAGS_TEST:]), as32(flat[:FLAGS_TEST]), FLAG_SHAPE,
                   labels_train=labels[FLAGS_TEST:], labels_test=labels[:FLAGS_TEST])
