"""otdist's errors and warnings: one small hierarchy, so callers can catch what they mean.

``OTDistError`` is the root.  Bad input raises ``InputError`` (a ``ValueError``), or
``InputTypeError`` (also a ``TypeError``) where Python would raise a TypeError; a problem too
large for the memory guard raises ``MemoryGuardError``.  A solver that fails on valid input raises
``SolverError`` (a ``RuntimeError``), and one that stops before its tolerance ``ConvergenceError``
(or, on request, ``ConvergenceWarning``).

>>> import otdist
>>> issubclass(otdist.InputError, ValueError), issubclass(otdist.ConvergenceError, RuntimeError)
(True, True)
"""


class OTDistError(Exception):
    """Base class of every error otdist raises."""


class InputError(OTDistError, ValueError):
    """An argument has the right type but an invalid value (shape, sign, range, NaN...)."""


class InputTypeError(InputError, TypeError):
    """An argument has the wrong type (a string for an array, a float for an integer...)."""


class MemoryGuardError(InputError):
    """The problem needs more memory than the method's guard allows (``max_size``)."""


class SolverError(OTDistError, RuntimeError):
    """A solver failed on valid input."""


class ConvergenceError(SolverError):
    """An iterative solver stopped at its iteration cap before reaching its tolerance."""


class ConvergenceWarning(UserWarning):
    """An iterative solver stopped before its tolerance and the caller asked for a warning."""


class UnverifiedFileWarning(UserWarning):
    """A file was loaded without checksum verification (it was written before checksums existed)."""


class EstimateWarning(UserWarning):
    """A sample estimate of a non-negative divergence lies more than two standard errors below zero."""
