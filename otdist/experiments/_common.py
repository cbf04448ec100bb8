"""What every experiment returns: named columns of numbers, JSON-safe, with a text table."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import _io
from ..exceptions import InputError


def _jsonable(value: Any) -> Any:
    """Lists and floats for JSON; non-finite floats become the strings "inf", "-inf", "nan"."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in np.asarray(value, dtype=object).tolist()] if isinstance(value, np.ndarray) else [
            _jsonable(v) for v in value]
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else ("nan" if math.isnan(value) else ("inf" if value > 0 else "-inf"))
    if isinstance(value, np.integer):
        return int(value)
    return value


@dataclass(frozen=True)
class ExperimentResult:
    """Columns of equal length (the x axis first), plus free-form ``info``."""

    name: str
    columns: dict[str, np.ndarray]
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: lists of floats, with non-finite values as strings ("inf")."""
        return {"name": self.name, "columns": _jsonable(self.columns), "info": _jsonable(self.info)}

    def save_json(self, path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return _io.write_json(path, self.to_dict())

    def table(self, digits: int = 4) -> str:
        names = list(self.columns)
        width = max(10, *(len(n) for n in names)) + 2
        lines = ["".join(f"{n:>{width}}" for n in names)]
        for i in range(len(next(iter(self.columns.values())))):
            lines.append("".join(f"{float(self.columns[n][i]):>{width}.{digits}g}" for n in names))
        return "\n".join(lines)


#: Resolution of the figures written by the experiments and the WGAN runs.
FIGURE_DPI = 110
#: File formats a figure may be written in (chosen by the path's suffix).
FIGURE_FORMATS = (".png", ".pdf", ".svg")


def check_figure_path(path) -> Path:
    """``path`` as a Path, refused unless its suffix is one of FIGURE_FORMATS."""
    path = Path(path)
    if path.suffix.lower() not in FIGURE_FORMATS:
        raise InputError(f"a figure path must end in {', '.join(FIGURE_FORMATS)}; got {str(path)!r}. "
                         "Change the file name's suffix.")
    return path


def figure(path, plot, *args, figsize=(6.4, 4.2)) -> Path:
    """Draw ``plot(fig, *args)`` into a figure and write it atomically to ``path`` (PNG, PDF or SVG).

    The figure is a ``matplotlib.figure.Figure`` on an Agg canvas: no pyplot, no backend switch,
    nothing left open.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = check_figure_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    plot(fig, *args)
    fig.tight_layout()
    return _io.save_figure(fig, path, dpi=FIGURE_DPI)
