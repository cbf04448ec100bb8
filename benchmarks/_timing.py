"""Timing helper shared by the benchmark scripts: best of k runs, measured in one process."""

from __future__ import annotations

import time
from typing import Callable


def best_time(fn: Callable[[], object], repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def row(name: str, ours: float, theirs: float, label: str) -> str:
    return f"| {name} | {ours * 1e3:.1f} ms | {theirs * 1e3:.1f} ms ({label}) | {theirs / ours:.2f} |"


HEADER = "| case | otdist | reference | speed-up (reference time / otdist time) |\n| --- | --- | --- | --- |"
