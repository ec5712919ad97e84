"""JAX's persistent compilation cache for jaxscale: where it lives, and keeping it sound.

A one-off ``jaxscale fit`` spends most of its time compiling, so the command line keeps compiled programs across
runs in JAX's persistent compilation cache. JAX trusts that directory completely, and two kinds of damage were
seen:

* a truncated entry (a full disk, a killed copy) fails to decompress on every read: JAX warns and recompiles, but
  never rewrites the entry, because it only writes keys that are absent;
* an entry whose bytes are another program's (copied over it) deserializes without complaint and then fails
  inside JAX with an ``AssertionError``, or crashes the process.

:func:`enable` therefore checks the directory before JAX reads it. jaxscale keeps a manifest in the cache
directory (``jaxscale-manifest.json``) of each entry's size, modification time, change time, inode and a BLAKE2b
digest of its bytes. An entry whose ``stat`` matches its record is trusted without being read, so a run over a
healthy cache costs one ``scandir`` and one small JSON read. An entry whose ``stat`` differs is hashed: a
different digest means its content is not what was written for its key, and it is removed. An entry not in the
manifest yet (written by a run that did not exit normally, or by a jaxscale without the manifest) is decompressed
in full and removed if that fails; if it succeeds it is recorded. New entries are recorded when the process exits.
Removals are reported in one line, once; JAX then compiles the program again and rewrites the entry, so the next
run is silent. What cannot be caught: an entry not yet in the manifest that is a *valid* executable of another
program (its key is a hash of the program, which only JAX can compute).

Only JAX's public configuration (``jax_compilation_cache_dir``, ``jax_persistent_cache_min_compile_time_secs``)
and the directory's files are used. The one private name touched, JAX's own decompressor, is looked up
defensively, with the same choice (zstd where available, else zlib) made here as a fallback.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import sys
import tempfile
import zlib
from collections.abc import Callable

from jaxscale._io import write_atomic
from jaxscale.errors import ArgumentError
from jaxscale import validate

#: The environment variable naming jaxscale's cache directory.
ENV_VAR = "JAXSCALE_CACHE_DIR"
#: Values of :data:`ENV_VAR` (any case) that turn the cache off.
OFF = ("", "off", "0", "none")
#: The manifest's file name in the cache directory; it must not end in ``-cache`` (JAX's entry suffix).
MANIFEST = "jaxscale-manifest.json"

# jax/_src/lru_cache.py names an entry "<key>-cache", and "<key>-atime" beside it when eviction is on.
_ENTRY_SUFFIX = "-cache"
_ATIME_SUFFIX = "-atime"
_FORMAT = 1
_enabled: set[str] = set()  # directories set up in this process (their exit-time sync is registered)


def default_path() -> str:
    """The cache directory used when :data:`ENV_VAR` is unset: ``~/.cache/jaxscale/xla``.

    >>> default_path().endswith(os.path.join(".cache", "jaxscale", "xla"))
    True
    """
    return os.path.join(os.path.expanduser("~"), ".cache", "jaxscale", "xla")


def _print_warning(message: str) -> None:
    print(f"jaxscale: {message}", file=sys.stderr)


def enable(path: str | os.PathLike | None = None, *, warn_fn: Callable[[str], None] = _print_warning,
           min_compile_time_secs: float = 0.5) -> str | None:
    """Turn on JAX's persistent compilation cache in jaxscale's directory, after repairing it.

    Call it once, before any JAX computation (JAX reads the setting when it first compiles).

    Parameters
    ----------
    path
        The cache directory. ``None`` (the default) reads ``$JAXSCALE_CACHE_DIR``, else :func:`default_path`.
        ``"off"``, ``"0"``, ``"none"`` or ``""`` (any case), here or in the variable, turn the cache off.
    warn_fn
        Called with one line when the cache is disabled (``"compilation cache disabled: <reason>"``) or damaged
        entries were removed. The default prints ``jaxscale: <line>`` to standard error.
    min_compile_time_secs
        Programs that compile faster are not cached (``jax_persistent_cache_min_compile_time_secs``); a value in
        ``$JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS`` takes precedence.

    Returns
    -------
    str or None
        The absolute cache directory now in use; ``None`` when the cache is off, was disabled (``warn_fn`` says
        why) or is JAX's to manage: a ``$JAX_COMPILATION_CACHE_DIR`` or ``jax_compilation_cache_dir`` set by the
        user, or ``jax_enable_compilation_cache`` false, is left alone.

    Notes
    -----
    A directory that cannot be created or written (a read-only home or cache) disables the cache with one
    line, before JAX is told about it, so none of JAX's own cache warnings appear. Damaged entries (see the
    module docstring) are removed, with one line naming them.

    Examples
    --------
    >>> import tempfile
    >>> enable("off") is None
    True
    >>> with tempfile.NamedTemporaryFile() as f:  # a file where the directory would be
    ...     enable(os.path.join(f.name, "xla"), warn_fn=print)  # doctest: +ELLIPSIS
    compilation cache disabled: cannot create '...' (Not a directory); set JAXSCALE_CACHE_DIR to ...
    """
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise ArgumentError(f"path must be a directory path, 'off' or None; got {path!r}.")
    min_compile_time_secs = validate.number(min_compile_time_secs, "min_compile_time_secs", minimum=0)
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return None
    jax = sys.modules.get("jax")
    if jax is not None:
        configured = _config_value(jax, "jax_compilation_cache_dir")
        if configured:
            return configured if configured in _enabled else None
        if _config_value(jax, "jax_enable_compilation_cache") is False:
            return None
    explicit = path is not None or ENV_VAR in os.environ
    raw = os.fspath(path) if path is not None else os.environ.get(ENV_VAR, default_path())
    if not isinstance(raw, str):
        raise ArgumentError(f"path must be a str directory path, 'off' or None; got {path!r}.")
    if raw.strip().lower() in OFF:
        return None
    if "://" in raw and not raw.startswith("file://"):
        directory = raw  # a remote cache (etils' epath): JAX's to check
    else:
        directory = os.path.abspath(os.path.expanduser(raw.removeprefix("file://")))
        problem = _unusable(directory, check_home=not explicit)
        if problem is None:
            problem = _repair(directory, warn_fn)
        if problem is not None:
            warn_fn(f"compilation cache disabled: {problem}; set {ENV_VAR} to a writable directory, or to off.")
            return None
        if directory not in _enabled:
            _enabled.add(directory)
            atexit.register(_sync, directory)
    import jax

    jax.config.update("jax_compilation_cache_dir", directory)
    if not os.environ.get("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"):
        jax.config.update("jax_persistent_cache_min_compile_time_secs", min_compile_time_secs)
    return directory


def _config_value(jax, name: str):
    try:
        return getattr(jax.config, name)
    except AttributeError:
        return None


def _unusable(directory: str, *, check_home: bool) -> str | None:
    """Why ``directory`` cannot hold the cache (it cannot be created, or written), or ``None``."""
    if check_home:
        home = os.path.expanduser("~")
        if not os.path.isdir(home):
            return f"home directory {home!r} does not exist"
    try:
        os.makedirs(directory, exist_ok=True)
    except FileExistsError:
        return f"{directory!r} is not a directory"
    except OSError as e:
        return f"cannot create {directory!r} ({e.strerror or e})"
    # os.access is wrong for root, ACLs and read-only mounts: try the write JAX would make.
    try:
        fd, probe = tempfile.mkstemp(prefix=".jaxscale-probe-", dir=directory)
    except OSError as e:
        return f"{directory!r} is not writable ({e.strerror or e})"
    os.close(fd)
    try:
        os.unlink(probe)
    except OSError as e:
        return f"{directory!r} does not allow removing files ({e.strerror or e})"
    return None


def _repair(directory: str, warn_fn: Callable[[str], None]) -> str | None:
    """Remove damaged entries (one line through ``warn_fn``); a reason to disable the cache, or ``None``."""
    manifest = _read_manifest(directory)
    removed, changed = _scan(directory, manifest, repair=True)
    failed = []
    for name, reason in removed:
        try:
            os.unlink(os.path.join(directory, name))
        except FileNotFoundError:
            pass  # another process removed it first
        except OSError as e:
            failed.append(f"{name} ({e.strerror or e})")
            continue
        try:
            os.unlink(os.path.join(directory, name.removesuffix(_ENTRY_SUFFIX) + _ATIME_SUFFIX))
        except OSError:
            pass  # JAX writes the access-time file only when eviction is on
    if changed or removed:
        _write_manifest(directory, manifest)
    if failed:
        return f"cannot remove damaged entries from {directory!r}: {', '.join(failed)}"
    if removed:
        n = len(removed)
        listed = ", ".join(f"{_short(name)} ({reason})" for name, reason in removed[:3])
        more = f" and {n - 3} more" if n > 3 else ""
        warn_fn(f"compilation cache: removed {n} damaged {'entry' if n == 1 else 'entries'} from {directory}: "
                f"{listed}{more}; {'it' if n == 1 else 'they'} will be recompiled.")
    return None


def _sync(directory: str) -> None:
    """Record the entries written since :func:`enable` (run at exit); never raises, never removes."""
    try:
        manifest = _read_manifest(directory)
        _, changed = _scan(directory, manifest, repair=False)
        if changed:
            _write_manifest(directory, manifest)
    except Exception:  # noqa: BLE001  (at exit, a failed record only means a re-check next run)
        pass


def _scan(directory: str, manifest: dict, *, repair: bool) -> tuple[list[tuple[str, str]], bool]:
    """Bring ``manifest`` up to date with the entries in ``directory``, in place.

    Returns the entries to remove with the reason for each (only when ``repair``; they are dropped from
    ``manifest``) and whether ``manifest`` changed.
    """
    try:
        found = {e.name: e for e in os.scandir(directory) if e.name.endswith(_ENTRY_SUFFIX) and e.is_file()}
    except OSError:
        return [], False
    changed = False
    for name in set(manifest) - set(found):
        del manifest[name]
        changed = True
    removed = []
    decompress = None
    for name, entry in sorted(found.items()):
        try:
            st = entry.stat()
        except OSError:
            continue  # removed meanwhile
        signature = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
        record = manifest.get(name)
        if record is not None and record[:4] == signature:
            continue
        try:
            with open(entry.path, "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            continue
        except OSError as e:
            if repair:  # JAX could not read it either, and would warn on every run
                removed.append((name, f"unreadable: {e.strerror or e}"))
                manifest.pop(name, None)
                changed = True
            continue
        digest = hashlib.blake2b(data, digest_size=16).hexdigest()
        if record is not None:
            if record[4] == digest:
                manifest[name] = signature + [digest]  # copied or touched, same bytes
                changed = True
            elif repair:
                decompress = decompress or _decompressor()
                damage = "not the program written for its key" if _readable(data, decompress) else "truncated"
                removed.append((name, damage))
                del manifest[name]
                changed = True
            continue  # at exit: a changed entry is left for the next run's check
        decompress = decompress or _decompressor()
        if _readable(data, decompress):
            manifest[name] = signature + [digest]
            changed = True
        elif repair:
            removed.append((name, "truncated or unreadable"))
    return removed, changed


def _readable(data: bytes, decompress: Callable[[bytes], bytes]) -> bool:
    """Whether JAX can decompress the entry (4 bytes of compile time, then the executable)."""
    try:
        return len(decompress(data)) > 4
    except Exception:  # noqa: BLE001  (zlib.error, zstd errors, MemoryError: JAX would fail the same way)
        return False


def _decompressor() -> Callable[[bytes], bytes]:
    """JAX's own decompressor, else the same choice JAX makes (zstd where importable, else zlib)."""
    try:
        from jax._src import compilation_cache

        fn = compilation_cache.decompress_executable
        if callable(fn):
            return fn
    except Exception:  # noqa: BLE001  (a private module: any failure means "use the fallback")
        pass
    try:
        from compression import zstd  # Python 3.14+

        return zstd.decompress
    except ImportError:
        pass
    try:
        import zstandard
    except ImportError:
        return zlib.decompress
    return lambda data: zstandard.ZstdDecompressor().decompress(data)


def _read_manifest(directory: str) -> dict:
    """The manifest's entries (``name -> [size, mtime_ns, ctime_ns, inode, digest]``); ``{}`` if unreadable."""
    try:
        with open(os.path.join(directory, MANIFEST), encoding="utf-8") as fh:
            doc = json.load(fh)
    except (OSError, ValueError):
        return {}
    entries = doc.get("entries") if isinstance(doc, dict) and doc.get("format") == _FORMAT else None
    if not isinstance(entries, dict):
        return {}
    return {k: v for k, v in entries.items()
            if isinstance(v, list) and len(v) == 5 and all(isinstance(x, int) for x in v[:4])
            and isinstance(v[4], str)}


def _write_manifest(directory: str, manifest: dict) -> None:
    text = json.dumps({"format": _FORMAT, "entries": dict(sorted(manifest.items()))}, separators=(",", ":"))
    try:
        write_atomic(os.path.join(directory, MANIFEST), text + "\n")
    except OSError:
        pass  # the entries are re-checked next run


def _short(name: str) -> str:
    """``jit_fit-<64 hex>-cache`` as ``jit_fit-1a2b3c4d``."""
    stem = name.removesuffix(_ENTRY_SUFFIX)
    module, _, key = stem.rpartition("-")
    return f"{module}-{key[:8]}" if module else stem[:24]
