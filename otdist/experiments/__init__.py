"""Experiments behind the classic figures: each returns data, and has a plot helper."""

from .seeds import format_table, parallel_lines, parallel_lines_curves, plot_parallel_lines, seed_rows

__all__ = ["format_table", "parallel_lines", "parallel_lines_curves", "plot_parallel_lines", "seed_rows"]
