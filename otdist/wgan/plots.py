"""Figures of a run: generated samples (scatter or image grid) and the training curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._io import figure
from .data import Dataset

GRID = 8  # images per side of the sample grid


def _draw_samples(fig, samples: np.ndarray, data: Dataset) -> None:
    if not data.is_image:
        ax = fig.add_subplot(1, 1, 1)
        real = data.test
        ax.scatter(real[:, 0], real[:, 1], s=2, color="C0", alpha=0.4, label="real (held out)")
        ax.scatter(samples[:, 0], samples[:, 1], s=2, color="C3", alpha=0.4, label="generated")
        ax.set_aspect("equal")
        ax.legend(loc="upper right", markerscale=4)
        ax.set_title(f"{data.name}: generated vs real")
        return
    n = GRID * GRID
    images = (np.clip(samples[:n], -1, 1) + 1) / 2
    images = images.reshape(n, *data.shape)
    if images.ndim == 4:  # (n, C, H, W) -> (n, H, W, C)
        images = images.transpose(0, 2, 3, 1)
    for k in range(n):
        ax = fig.add_subplot(GRID, GRID, k + 1)
        ax.imshow(images[k], cmap="gray_r" if images.ndim == 3 else None, vmin=0, vmax=1)
        ax.axis("off")


def samples(samples: np.ndarray, data: Dataset, path) -> Path:
    size = (5.0, 5.0) if data.is_image else (5.5, 5.5)
    return figure(path, _draw_samples, samples, data, figsize=size)


def _draw_curves(fig, log, distance_name: str) -> None:
    steps = np.array([r["step"] for r in log])
    estimate = np.array([r["eval_critic_estimate"] for r in log])
    distance = np.array([r["eval_distance"] for r in log])
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(steps, estimate, "o-", color="C0", ms=3, label="critic estimate E_real f - E_fake f (held out)")
    ax.set_xlabel("generator step")
    ax.set_ylabel("critic estimate", color="C0")
    other = ax.twinx()
    other.plot(steps, distance, "s-", color="C3", ms=3, label=distance_name)
    other.set_ylabel(f"{distance_name} to held-out real", color="C3")
    ax.set_title("Critic estimate against an independent distance")
    lines = ax.get_legend_handles_labels()
    more = other.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], loc="upper right", fontsize=8)


def curves(log, distance_name: str, path) -> Path:
    return figure(path, _draw_curves, log, distance_name)
