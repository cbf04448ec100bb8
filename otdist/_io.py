"""Files written by otdist: atomically, and with a checksum where a corrupt file must be refused.

Every file goes through :func:`atomic_open`: the content is written to a temporary file in the
destination's directory, flushed and fsync'd, then renamed over the destination (``os.replace``,
atomic on POSIX and Windows), and the directory entry is fsync'd. A reader therefore sees either
the old file or the complete new one, never a partial write; if anything fails, the temporary file
is removed and the old file is left as it was.

Checksummed files (:func:`write_checksummed`) carry a header ``otdist-sha256\\n<64 hex digits>\\n``
followed by the payload, so the file is still written by one rename. :func:`read_checksummed`
verifies the SHA-256 of the payload and refuses a mismatch (a flipped or truncated byte).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import secrets
from pathlib import Path
from typing import IO, Any, Iterator

import numpy as np

from .exceptions import InputError, UnverifiedFileWarning

#: First bytes of a checksummed file, then the hex SHA-256 of the payload and a newline.
CHECKSUM_MAGIC = b"otdist-sha256\n"
DIGEST_HEX_LENGTH = 64
HEADER_LENGTH = len(CHECKSUM_MAGIC) + DIGEST_HEX_LENGTH + 1
#: Permissions asked for new files; the process umask is applied by the OS, as for ``open``.
NEW_FILE_MODE = 0o666
#: Attempts at a fresh temporary name before giving up (names carry 64 random bits).
TEMP_NAME_ATTEMPTS = 16


def temp_prefix(path: Path) -> str:
    """Temporary files for ``path`` are named ``.<name>.<random>.tmp`` in the same directory."""
    return f".{path.name}."


def _create_temp(path: Path) -> tuple[int, Path]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(TEMP_NAME_ATTEMPTS):
        tmp = path.with_name(f"{temp_prefix(path)}{secrets.token_hex(8)}.tmp")
        try:
            return os.open(tmp, flags, NEW_FILE_MODE), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file next to {path} after {TEMP_NAME_ATTEMPTS} attempts.")


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable; not every platform can open a directory (Windows), which is fine."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file to write; on success it replaces ``path`` in one rename.

    Parameters
    ----------
    path
        Destination. Its directory must exist.
    mode
        ``"wb"`` (bytes) or ``"w"`` (UTF-8 text, newlines written as given).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "hello.txt"
    >>> with atomic_open(target, "w") as fh:
    ...     _ = fh.write("hello")
    >>> target.read_text()
    'hello'
    """
    if mode not in ("w", "wb"):
        raise InputError(f'mode must be "w" or "wb"; got {mode!r}. Use "wb" for bytes, "w" for text.')
    path = Path(path)
    fd, tmp = _create_temp(path)
    try:
        text = {"encoding": "utf-8", "newline": ""} if mode == "w" else {}
        with os.fdopen(fd, mode, **text) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(path.parent)


def write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as fh:
        fh.write(data)
    return Path(path)


def write_text(path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_open(path, "w") as fh:
        fh.write(text)
    return Path(path)


def write_json(path, data: Any) -> Path:
    """Write ``data`` as indented JSON (no NaN or infinity literals) atomically."""
    return write_text(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


def save_npy(path, array: np.ndarray) -> Path:
    """``numpy.save`` to exactly ``path`` (no ``.npy`` appended), atomically."""
    with atomic_open(path, "wb") as fh:
        np.save(fh, np.asarray(array), allow_pickle=False)
    return Path(path)


def save_figure(figure, path, *, dpi: float) -> Path:
    """Render a ``matplotlib.figure.Figure`` to ``path`` atomically; the format is the file's suffix."""
    path = Path(path)
    buffer = io.BytesIO()
    figure.savefig(buffer, format=path.suffix.lstrip(".").lower() or "png", dpi=dpi)
    return write_bytes(path, buffer.getvalue())


def _digest(payload: bytes) -> bytes:
    return hashlib.sha256(payload).hexdigest().encode("ascii")


def write_checksummed(path, payload: bytes) -> Path:
    """Write the checksum header and ``payload`` to ``path`` atomically (one rename)."""
    with atomic_open(path, "wb") as fh:
        fh.write(CHECKSUM_MAGIC + _digest(payload) + b"\n")
        fh.write(payload)
    return Path(path)


def read_checksummed(path) -> tuple[bytes, bool]:
    """``(payload, verified)`` of a file written by :func:`write_checksummed`.

    A file without the header (written before checksums existed) is returned whole with
    ``verified=False``; the caller decides whether it may be used. A header whose checksum does not
    match the payload raises :class:`~otdist.exceptions.InputError`.
    """
    path = Path(path)
    data = path.read_bytes()
    if not data.startswith(CHECKSUM_MAGIC):
        return data, False
    stored = data[len(CHECKSUM_MAGIC):HEADER_LENGTH - 1]
    payload = data[HEADER_LENGTH:]
    if data[HEADER_LENGTH - 1:HEADER_LENGTH] != b"\n" or _digest(payload) != stored:
        raise InputError(
            f"{path} is corrupt: the SHA-256 checksum stored in its header does not match its content "
            f"({len(data)} bytes read). The file was changed or truncated after it was written; "
            "use an intact copy or write it again."
        )
    return payload, True


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
    return save_figure(fig, path, dpi=FIGURE_DPI)
