"""Files jaxscale writes: JSON-safe values, and atomic writes (a reader never sees half a file; a failed write
leaves the old one).

Every file jaxscale writes (JSON, CSV, netCDF, figures, reports) goes through :func:`write_atomic`: the bytes go
to a temporary file beside the target, which is flushed, fsynced and renamed over the target with
:func:`os.replace`, and the directory is fsynced so the rename survives a crash. On any failure (a full disk, a
file-size limit, Ctrl-C) the temporary file is removed and the old target is left as it was. An ``OSError`` comes
back as a :class:`WriteError` (still an ``OSError``) whose one-line message names the target and the cause.

NetCDF goes through :func:`write_netcdf`, which serialises the whole ``InferenceData`` in memory first: HDF5
writing straight to a full disk can crash the interpreter and leave a partial file, a plain write of bytes
cannot.

Temporary files in flight are registered; :func:`remove_pending` deletes them, for a Ctrl-C handler that must
leave at once with ``os._exit`` (which skips the ``finally`` clauses that would otherwise clean up).

>>> import os, pathlib, tempfile
>>> with tempfile.TemporaryDirectory() as tmp:
...     path = os.path.join(tmp, "fit.json")
...     write_atomic(path, '{"E": 1.69}\\n')
...     write_atomic(path, lambda fh: fh.write(b'{"E": 1.7}\\n'))  # a writer that streams
...     pathlib.Path(path).read_text(), os.listdir(tmp)
('{"E": 1.7}\\n', ['fit.json'])
"""

from __future__ import annotations

import errno
import io
import os
import secrets
import stat
from collections.abc import Callable, Mapping
from typing import BinaryIO

import numpy as np

__all__ = ["WriteError", "json_safe", "remove_pending", "write_atomic", "write_netcdf"]

#: Temporary files being written now (absolute paths); see :func:`remove_pending`.
_PENDING: set[str] = set()


class WriteError(OSError):
    """A file could not be written: the message names the target and the cause, in one line.

    An ``OSError`` (``errno``, ``strerror`` and ``filename`` are the cause's), so code that catches ``OSError``
    keeps working; the cause is also its ``__cause__``.

    >>> str(WriteError(27, "File too large", "out.json"))
    "could not write 'out.json': [Errno 27] File too large"
    """

    def __str__(self) -> str:
        cause = f"[Errno {self.errno}] {self.strerror}" if self.errno is not None else (self.strerror or "")
        return f"could not write {self.filename!r}: {cause}"


def remove_pending() -> list[str]:
    """Delete the temporary files of writes in progress; return their paths.

    For a signal handler about to call ``os._exit``: the interrupted write's cleanup will not run. Safe to call
    from a handler (it takes no lock) and when nothing is pending.

    >>> remove_pending()
    []
    """
    removed = []
    for tmp in tuple(_PENDING):
        try:
            os.unlink(tmp)
            removed.append(tmp)
        except FileNotFoundError:
            pass
        except OSError:
            continue
        _PENDING.discard(tmp)
    return removed


def _open_temporary(directory: str, base: str, mode: int) -> tuple[int, str]:
    """A new file beside the target, registered before it exists so an interrupt cannot orphan it."""
    for _ in range(100):
        tmp = os.path.join(directory, f".{base}.{secrets.token_hex(4)}.tmp")
        _PENDING.add(tmp)
        try:
            # os.open applies the umask to ``mode`` (mkstemp would force 0600)
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), mode), tmp
        except FileExistsError:
            _PENDING.discard(tmp)
        except BaseException:
            _PENDING.discard(tmp)
            raise
    raise FileExistsError(errno.EEXIST, "no free temporary file name", directory)


def _fsync_directory(directory: str) -> None:
    if not hasattr(os, "O_DIRECTORY"):  # Windows: a directory cannot be opened, and rename is durable there
        return
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):  # file systems that cannot sync a directory
            raise
    finally:
        os.close(fd)


def _writer(data) -> Callable[[BinaryIO], object]:
    if isinstance(data, str):
        raw = data.encode()
        return lambda fh: fh.write(raw)
    if isinstance(data, (bytes, bytearray, memoryview)):
        return lambda fh: fh.write(data)
    if callable(data):
        return data
    from jaxscale.errors import ArgumentError

    raise ArgumentError(f"data must be str, bytes or a callable fn(fileobj) that writes bytes; got "
                        f"{type(data).__name__}.")


def write_atomic(path: str | os.PathLike, data: str | bytes | Callable[[BinaryIO], object]) -> None:
    """Write ``data`` to ``path`` atomically: readers see the old file or the new one, never a part.

    A temporary file in the target's directory is written, flushed and fsynced, then renamed over ``path``
    (:func:`os.replace`) and the directory fsynced. On any failure, ``KeyboardInterrupt`` included, the temporary
    file is removed, ``path`` is untouched and the error propagates.

    Parameters
    ----------
    path
        The target. A symbolic link is followed (the link stays, its target is replaced). An existing FIFO or
        device (``/dev/stdout``) cannot be replaced and is written directly.
    data
        ``str`` (written as UTF-8), ``bytes`` (or ``bytearray``/``memoryview``), or a callback ``fn(fileobj)``
        that writes bytes to the binary file object it is given (and does not close it), for writers that
        stream.

    Raises
    ------
    WriteError
        An ``OSError`` naming ``path`` and the cause (a missing directory, a full disk, a file-size limit).
    ArgumentError
        ``data`` is none of the above.

    Notes
    -----
    The new file keeps the permission bits of the file it replaces; a new file gets the umask's default
    (usually ``0644``), as ``open(path, "w")`` would.

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     write_atomic(os.path.join(tmp, "a.json"), "{}\\n")
    ...     try:
    ...         write_atomic(os.path.join(tmp, "missing", "b.json"), b"{}")
    ...     except OSError as e:
    ...         print(e.strerror, os.listdir(tmp))
    No such file or directory ['a.json']
    """
    write = _writer(data)
    path = os.fspath(path)
    target = os.path.realpath(path) if os.path.islink(path) else path
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise WriteError(e.errno, e.strerror, path) from e
    try:
        if st is not None and not stat.S_ISREG(st.st_mode) and not stat.S_ISDIR(st.st_mode):
            with open(target, "wb") as fh:
                write(fh)
            return
        directory = os.path.dirname(os.path.abspath(target))
        fd, tmp = _open_temporary(directory, os.path.basename(target), 0o666)
    except OSError as e:
        raise WriteError(e.errno, e.strerror, path) from e
    try:
        with os.fdopen(fd, "wb") as fh:
            if st is not None:
                os.fchmod(fh.fileno(), stat.S_IMODE(st.st_mode))
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        _PENDING.discard(tmp)
        _fsync_directory(directory)
    except BaseException as exc:
        if tmp in _PENDING:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            _PENDING.discard(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, WriteError):
            raise WriteError(exc.errno, exc.strerror, path) from exc
        raise


def text_or_write(text: str, path: str | os.PathLike | None) -> str | None:
    """The serialised ``text`` itself when ``path`` is None; else write it atomically there (with a final newline)
    and return None, so that ``res.to_json("fit.json")`` in a REPL prints nothing."""
    if path is None:
        return text
    write_atomic(path, text if text.endswith("\n") else text + "\n")
    return None


def write_netcdf(idata, path: str | os.PathLike, *, compress: bool = True) -> str:
    """Write an ArviZ ``InferenceData`` (or an xarray ``Dataset``/``DataTree``) to a netCDF-4 file, atomically.

    The file is built in memory (h5netcdf on an ``io.BytesIO``, laid out as ``InferenceData.to_netcdf`` lays it
    out: one HDF5 group per InferenceData group, the InferenceData's attributes on the root), then written with
    :func:`write_atomic`. So a full disk is an ordinary :class:`WriteError` and the old file stays, where HDF5
    writing to the disk itself can crash the interpreter and leave half a file. Memory needed: the file's size.

    Parameters
    ----------
    idata
        The draws: ``arviz.InferenceData``, ``xarray.Dataset`` or ``xarray.DataTree``.
    path
        The ``.nc`` file; read it back with ``arviz.from_netcdf(path)``.
    compress
        zlib-compress numeric and boolean variables, as ``InferenceData.to_netcdf`` does by default.

    Returns
    -------
    str
        ``path``.

    Examples
    --------
    >>> import os, tempfile, numpy as np, arviz as az
    >>> idata = az.from_dict(posterior={"E": np.full((2, 10), 1.69)}, attrs={"law": "chinchilla"})
    >>> with tempfile.TemporaryDirectory() as tmp, az.rc_context({"data.load": "eager"}):
    ...     back = az.from_netcdf(write_netcdf(idata, os.path.join(tmp, "post.nc")))
    >>> back.groups(), back.attrs["law"], back.posterior.identical(idata.posterior)
    (['posterior'], 'chinchilla', True)
    """
    import xarray as xr

    buf = io.BytesIO()
    if isinstance(idata, (xr.Dataset, xr.DataTree)):
        idata.to_netcdf(buf, engine="h5netcdf")
    elif hasattr(idata, "groups") and hasattr(idata, "attrs") and callable(idata.groups):
        _idata_to_buffer(idata, buf, compress)
    else:
        from jaxscale.errors import ArgumentError

        raise ArgumentError(f"write_netcdf writes an arviz.InferenceData or an xarray Dataset/DataTree; got "
                            f"{type(idata).__name__}.")
    write_atomic(path, buf.getbuffer())
    return os.fspath(path)


def _compressible(dtype) -> bool:
    if dtype.kind == "V":
        return bool(dtype.fields) and all(_compressible(item) for item, _ in dtype.fields.values())
    return dtype.kind in "biufcS"


def _idata_to_buffer(idata, buf: io.BytesIO, compress: bool) -> None:
    """The layout of ``arviz.InferenceData.to_netcdf`` (ArviZ 0.23), into ``buf``."""
    import xarray as xr

    mode = "w"
    if idata.attrs:
        xr.Dataset(attrs=idata.attrs).to_netcdf(buf, mode=mode, engine="h5netcdf", group="/")
        mode = "a"
    for group in idata.groups():
        data = getattr(idata, group)
        encoding = {name: {"zlib": True} for name, v in data.variables.items() if _compressible(v.dtype)} \
            if compress else None
        data.to_netcdf(buf, mode=mode, group=group, engine="h5netcdf", encoding=encoding)
        mode = "a"
    if mode == "w":  # an empty InferenceData: an empty netCDF-4 file
        import h5netcdf

        h5netcdf.File(buf, mode="w").close()


def read_text(path: str | os.PathLike, what: str, hint: str = "") -> str:
    """The UTF-8 text of the file ``path`` (a byte-order mark dropped, newlines kept as written), or a
    :class:`~jaxscale.errors.DataError` naming it as ``what`` ("data file", "W&B export"): missing, a directory,
    not UTF-8 (``hint`` is appended), unreadable."""
    from jaxscale.errors import DataError

    shown = os.fspath(path)
    if not os.path.exists(shown):
        raise DataError(f"No such {what}: {shown!r}.")
    if os.path.isdir(shown):
        raise DataError(f"{what[0].upper()}{what[1:]} {shown!r} is a directory; give the CSV file.")
    try:
        with open(shown, encoding="utf-8-sig", newline="") as f:
            return f.read()
    except UnicodeDecodeError as e:
        raise DataError(f"Could not read {shown!r}: byte {e.start} is not UTF-8 text{hint}.") from None
    except OSError as e:
        raise DataError(f"Could not read {shown!r}: {e.strerror or e}.") from None


def json_safe(value):
    """Plain JSON values: NumPy scalars and arrays as numbers and lists, NaN and infinities as ``null``.

    >>> json_safe({"E": np.float32(1.5), "se": float("nan"), "n": np.arange(2)})
    {'E': 1.5, 'se': None, 'n': [0, 1]}
    """
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
