"""Warnings raised by otdist."""


class ConvergenceWarning(UserWarning):
    """An iterative solver stopped at its iteration cap before reaching its tolerance."""
