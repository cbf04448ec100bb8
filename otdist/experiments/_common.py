"""What every experiment returns: named columns of numbers, JSON-safe, with a text table."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import _io


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


