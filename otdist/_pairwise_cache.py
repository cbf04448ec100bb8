"""The checkpoint directory of :func:`otdist.pairwise` (``out=DIR``).

``DIR/pairwise.json`` describes the inputs (each dataset's SHA-256 of dtype, shape and bytes, the
metric, its options and the resolved epsilon); ``DIR/solves/<key>.json`` holds one solve each,
written atomically (:mod:`otdist._io`) as soon as it completes. A run with the same inputs reads the
solves already there and computes only the others; a directory describing other inputs is refused.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from . import _io
from ._pairwise_engine import Job, Outcome
from .exceptions import InputError, InputTypeError

FORMAT = "otdist-pairwise-1"
MANIFEST = "pairwise.json"
SOLVES = "solves"


def dataset_digest(array: np.ndarray) -> str:
    """SHA-256 of an array's dtype, shape and C-ordered bytes."""
    array = np.ascontiguousarray(array)
    digest = hashlib.sha256(f"{array.dtype.str}|{array.shape}|".encode())
    digest.update(array.tobytes())
    return digest.hexdigest()


def _plain(value: Any, name: str, strict: bool) -> Any:
    """``value`` as JSON data; anything else is refused (``strict``) or written as its repr."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value).hex()
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{name}[{i}]", strict) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {str(k): _plain(v, f"{name}[{k!r}]", strict) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if strict:
        raise InputTypeError(f"out= records the options in the checkpoint, so they must be numbers, strings, booleans "
                             f"or lists of them; got a {type(value).__name__} for {name}. Pass a named option "
                             "(e.g. a ground metric by name), or run without out=.")
    return repr(value)


def fingerprint(value: Any, *, strict: bool = False) -> str:
    """A canonical JSON text of ``value`` (floats exactly, as hex)."""
    return json.dumps(_plain(value, "options", strict), sort_keys=True)


def digest(*parts: Any) -> str:
    return hashlib.sha256(fingerprint(list(parts)).encode()).hexdigest()


class Checkpoint:
    """The solves of one set of inputs in ``directory``; see :meth:`open`."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.solves = directory / SOLVES

    @classmethod
    def open(cls, directory, manifest: dict, *, force: bool, resume: bool | None) -> "Checkpoint":
        """Check ``directory`` against ``manifest`` and prepare it.

        ``resume=None`` continues a checkpoint of the same inputs or starts one; ``resume=True``
        requires one, ``resume=False`` refuses one. A checkpoint of other inputs is refused unless
        ``force=True``, which deletes its solves and starts again.
        """
        if force and resume:
            raise InputError("force=True discards the checkpoint and resume=True continues it; got both. Pass one.")
        directory = Path(directory)
        if directory.exists() and not directory.is_dir():
            raise InputError(f"out={str(directory)!r} is a file; a checkpoint is a directory. Choose another path.")
        ckpt = cls(directory)
        saved = ckpt._saved_manifest()
        stale = saved is None and any(ckpt.solves.glob("*.json"))
        if force:
            ckpt._clear()
        elif stale:
            raise InputError(f"{ckpt.solves} holds solves but {directory / MANIFEST} is missing, so their inputs are "
                             "unknown. Pass force=True (--force) to discard them, or choose a new directory.")
        elif saved is not None and saved != manifest:
            raise InputError(f"{directory} holds pairwise results of other inputs ({_differences(saved, manifest)} "
                             "differ). Pass a new directory, or force=True (--force) to discard them.")
        elif saved is None and resume:
            raise InputError(f"resume=True but {directory} holds no pairwise checkpoint ({MANIFEST} is missing). "
                             "Drop resume to start one there, or pass the directory of the run to continue.")
        elif saved is not None and resume is False:
            raise InputError(f"{directory} already holds a pairwise checkpoint of these inputs and resume=False. "
                             "Pass resume=True (--resume) to continue it, force=True (--force) to start again, "
                             "or a new directory.")
        ckpt.solves.mkdir(parents=True, exist_ok=True)
        if saved != manifest or force:
            _io.write_json(directory / MANIFEST, manifest)
        return ckpt

    def _saved_manifest(self) -> dict | None:
        path = self.directory / MANIFEST
        if not path.is_file():
            return None
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as err:
            raise InputError(f"{path} is not a pairwise checkpoint manifest ({err}). Pass force=True (--force) to "
                             "start again there, or choose a new directory.") from None
        if not isinstance(saved, dict) or saved.get("format") != FORMAT:
            raise InputError(f"{path} is not a pairwise checkpoint (format {FORMAT!r} expected). Pass force=True "
                             "(--force) to start again there, or choose a new directory.")
        return saved

    def _clear(self) -> None:
        for path in self.solves.glob("*.json"):
            path.unlink()
        manifest = self.directory / MANIFEST
        if manifest.is_file():
            manifest.unlink()

    def _path(self, job: Job) -> Path:
        return self.solves / f"{job.key}.json"

    def load(self, job: Job) -> Outcome | None:
        """The stored outcome of ``job``, or None if it has not completed."""
        path = self._path(job)
        if not path.is_file():
            return None
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
            if entry["digest"] != job.digest:
                raise ValueError("it belongs to another solve")
            return Outcome(float.fromhex(entry["value"]), bool(entry["converged"]), float(entry["seconds"]))
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as err:
            raise InputError(f"{path} is not a solve of this checkpoint ({err}). Delete it to compute it again, "
                             "or pass force=True (--force) to start again.") from None

    def store(self, job: Job, outcome: Outcome) -> None:
        seconds = outcome.seconds if math.isfinite(outcome.seconds) else 0.0
        _io.write_json(self._path(job), {"digest": job.digest, "value": float(outcome.value).hex(),
                                         "converged": outcome.converged, "seconds": seconds})


def _differences(saved: dict, manifest: dict) -> str:
    keys = sorted(set(saved) | set(manifest))
    return ", ".join(k for k in keys if saved.get(k) != manifest.get(k)) or "the formats"
