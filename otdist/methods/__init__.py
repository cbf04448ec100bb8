"""Transport methods: each module validates a :class:`~otdist.problem.Problem` for its solver and
registers itself in :mod:`otdist.registry`."""

from . import gaussian, line, lp, neural, sliced

__all__ = ["gaussian", "line", "lp", "neural", "sliced"]
