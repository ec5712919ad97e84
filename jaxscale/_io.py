"""Files jaxscale writes: atomically, so a reader never sees half a file and a failed write leaves the old one."""

from __future__ import annotations

import os
import tempfile


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
