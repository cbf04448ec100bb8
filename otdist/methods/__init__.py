"""Transport methods: each module validates a :class:`~otdist.problem.Problem` for its solver and
registers itself in :mod:`otdist.registry`."""

# Registration order is the order ``otdist.registry.methods()`` lists: exact methods first.
from . import line, lp, sliced, gaussian, neural  # noqa: I001

__all__ = ["gaussian", "line", "lp", "neural", "sliced"]
