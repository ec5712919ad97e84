"""Files jaxscale writes: JSON-safe values, and atomic writes (a reader never sees half a file; a failed write
leaves the old one)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping

import numpy as np


def write_atomic(path: str | os.PathLike, data: str | bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory: flush, fsync, ``os.replace``.

    >>> import os, pathlib, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     write_atomic(os.path.join(tmp, "a.json"), "{}\\n")
    ...     pathlib.Path(tmp, "a.json").read_text(), os.listdir(tmp)
    ('{}\\n', ['a.json'])
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def json_safe(value):
    """Plain JSON values: NumPy scalars and arrays as numbers and lists, NaN and infinities as ``null``."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    return str(value)
