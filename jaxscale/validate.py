"""Argument checks shared by the Python API and the command line.

Every public entry point checks its arguments here, before any work: a bad level, budget, key, dtype, start
count, fixed value or output path is one :class:`~jaxscale.errors.ArgumentError` (a
:class:`~jaxscale.errors.JaxscaleError`) that names the argument, the value and what was expected. NumPy scalars
are accepted wherever Python numbers are; booleans, complex numbers and strings are not numbers here.

>>> from jaxscale import validate
>>> validate.level(0.9)
0.9
>>> validate.level(1.5)
Traceback (most recent call last):
...
jaxscale.errors.ArgumentError: level must be a number strictly between 0 and 1, e.g. 0.9; got 1.5.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Iterable, Mapping

import numpy as np

from jaxscale.errors import ArgumentError

#: The documented default PRNG key of every randomised entry point (``fit``, ``bootstrap``, ``forecast``,
#: ``backtest``, ``isoflop``, ``bayes.sample``): same key, same result.
DEFAULT_KEY = 0


def _scalar(value):
    """A 0-d NumPy or JAX array as its Python scalar; anything else unchanged."""
    try:
        numeric = np.dtype(value.dtype).kind in "biufc" and np.ndim(value) == 0
    except (AttributeError, TypeError):  # not an array, or a typed PRNG key (no NumPy dtype)
        return value
    return value.item() if numeric else value


def _is_real(value) -> bool:
    value = _scalar(value)
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _is_int(value) -> bool:
    value = _scalar(value)
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def number(value, name: str, *, minimum: float | None = None, maximum: float | None = None,
           open_min: bool = False, open_max: bool = False) -> float:
    """``value`` as a finite float within the given bounds, or an :class:`ArgumentError` naming ``name``.

    >>> number(np.float32(0.5), "delta", minimum=0, open_min=True)
    0.5
    """
    if not _is_real(value) or not np.isfinite(float(_scalar(value))):
        raise ArgumentError(f"{name} must be a finite number; got {value!r}.")
    v = float(_scalar(value))
    if minimum is not None and (v < minimum or (open_min and v == minimum)):
        raise ArgumentError(f"{name} must be {'>' if open_min else '>='} {minimum:g}; got {value!r}.")
    if maximum is not None and (v > maximum or (open_max and v == maximum)):
        raise ArgumentError(f"{name} must be {'<' if open_max else '<='} {maximum:g}; got {value!r}.")
    return v


def positive(value, name: str) -> float:
    """A finite number > 0 (a budget, a token count, FLOPs per token).

    >>> positive(6, "flops_per_token")
    6.0
    """
    return number(value, name, minimum=0, open_min=True)


def integer(value, name: str, *, minimum: int = 1, maximum: int | None = None) -> int:
    """``value`` as an int ``>= minimum`` (and ``<= maximum``); NumPy integers accepted, bools and floats not.

    >>> integer(np.int64(4), "chains")
    4
    """
    if not _is_int(value):
        raise ArgumentError(f"{name} must be an integer >= {minimum}; got {value!r}.")
    v = int(_scalar(value))
    if v < minimum:
        raise ArgumentError(f"{name} must be an integer >= {minimum}; got {v}.")
    if maximum is not None and v > maximum:
        raise ArgumentError(f"{name} must be an integer <= {maximum}; got {v}.")
    return v


def level(value, name: str = "level") -> float:
    """An interval level strictly between 0 and 1.

    >>> level(np.float64(0.95))
    0.95
    """
    if not _is_real(value) or not 0 < float(_scalar(value)) < 1:
        raise ArgumentError(f"{name} must be a number strictly between 0 and 1, e.g. 0.9; got {value!r}.")
    return float(_scalar(value))


def levels(values, name: str = "levels") -> tuple[float, ...]:
    """A non-empty sequence of levels, each checked by :func:`level`.

    >>> levels([0.5, 0.9])
    (0.5, 0.9)
    """
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise ArgumentError(f"{name} must be a sequence of numbers strictly between 0 and 1; got {values!r}.")
    out = tuple(level(v, f"{name}[{i}]") for i, v in enumerate(values))
    if not out:
        raise ArgumentError(f"{name} must hold at least one level.")
    return out


def budgets(values, name: str = "compute") -> np.ndarray:
    """Training budgets (FLOPs): a number or a sequence, each finite and > 0, as a float64 array.

    >>> budgets([1e21, 1e22]).tolist()
    [1e+21, 1e+22]
    >>> budgets(-1.0)
    Traceback (most recent call last):
    ...
    jaxscale.errors.ArgumentError: compute must be > 0 (a budget in FLOPs); got -1.0.
    """
    scalar = np.ndim(values) == 0
    items = [_scalar(values)] if scalar else [_scalar(v) for v in np.asarray(values, dtype=object).ravel()]
    if not items:
        raise ArgumentError(f"{name} must hold at least one budget.")
    out = []
    for i, v in enumerate(items):
        where = name if scalar else f"{name}[{i}]"
        if not _is_real(v) or not np.isfinite(float(v)):
            raise ArgumentError(f"{where} must be a finite number of FLOPs; got {v!r}.")
        if float(v) <= 0:
            raise ArgumentError(f"{where} must be > 0 (a budget in FLOPs); got {v!r}.")
        out.append(float(v))
    return np.asarray(out, dtype=np.float64)


def positives(values, name: str) -> np.ndarray:
    """A number or an array of any shape, every value finite and > 0, as a float64 array of the same shape.

    >>> positives(np.array([[1.0, 2.0]]), "N").shape
    (1, 2)
    """
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError):
        arr = np.asarray(values, dtype=object)
    if arr.dtype.kind not in "iuf" or arr.size == 0:
        raise ArgumentError(f"{name} must be a positive number or an array of them; got {values!r}.")
    arr = arr.astype(np.float64)
    bad = ~np.isfinite(arr) | (arr <= 0)
    if bad.any():
        first = arr.ravel()[np.flatnonzero(bad.ravel())[0]]
        raise ArgumentError(f"{name} must be finite and > 0; got {first!r}"
                            + (f" ({int(bad.sum())} of {arr.size} values)." if arr.size > 1 else "."))
    return arr


def key(value, name: str = "key"):
    """A typed JAX PRNG key from an int seed in ``[0, 2**64)``, a typed key, or raw ``uint32`` key data.

    ``None`` means :data:`DEFAULT_KEY`. Floats, bools and strings are rejected: a seed is an integer.

    >>> import jax
    >>> jax.random.key_data(key(3)).tolist() == jax.random.key_data(jax.random.key(3)).tolist()
    True
    >>> key(1.5)
    Traceback (most recent call last):
    ...
    jaxscale.errors.ArgumentError: key must be an int seed in [0, 2**64) or a jax.random.key; got 1.5.
    """
    import jax

    if value is None:
        value = DEFAULT_KEY
    value = _scalar(value) if _is_int(value) else value
    if _is_int(value):
        if not 0 <= int(value) < 2**64:
            raise ArgumentError(f"{name} must be an int seed in [0, 2**64) or a jax.random.key; got {value!r}.")
        words = np.array([int(value) >> 32, int(value) & 0xFFFFFFFF], dtype=np.uint32)
        return jax.random.wrap_key_data(words)
    dtype = getattr(value, "dtype", None)
    if dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
        if np.shape(value) != ():
            raise ArgumentError(f"{name} must be a single PRNG key; got a batch of shape {np.shape(value)}.")
        return value
    if dtype is not None and np.dtype(dtype) == np.uint32 and np.shape(value) == (2,):
        return jax.random.wrap_key_data(np.asarray(value))
    raise ArgumentError(f"{name} must be an int seed in [0, 2**64) or a jax.random.key; got {value!r}.")


def key_words(value, name: str = "key") -> np.ndarray:
    """The ``uint32`` words of a key (see :func:`key`), on the host, without compiling JAX's seeding kernel.

    >>> key_words(5).tolist()
    [0, 5]
    """
    import jax

    if value is None:
        value = DEFAULT_KEY
    if _is_int(value) and 0 <= int(value) < 2**64:
        return np.array([int(value) >> 32, int(value) & 0xFFFFFFFF], dtype=np.uint32)
    return np.asarray(jax.random.key_data(key(value, name)), dtype=np.uint32).ravel()


def key_repr(value):
    """A key as JSON can hold it: the int seed, or the list of its ``uint32`` words (``None`` stays ``None``).

    >>> key_repr(7), key_repr(np.array([0, 7], np.uint32))
    (7, [0, 7])
    """
    if value is None:
        return None
    if _is_int(value):
        return int(value)
    return key_words(value).tolist()


def dtype(value, name: str = "dtype"):
    """``None`` (float64 when x64 is on, else float32), ``"float32"`` or ``"float64"``, as a ``jnp.dtype``.

    >>> str(dtype("float32"))
    'float32'
    """
    import jax
    import jax.numpy as jnp

    if value is None:
        return jnp.dtype(jnp.float64 if jax.config.jax_enable_x64 else jnp.float32)
    try:
        kind = np.dtype(value).name
    except TypeError:
        kind = None
    if kind not in ("float32", "float64"):
        raise ArgumentError(f"{name} must be 'float32' or 'float64'; got {value!r}.")
    if kind == "float64" and not jax.config.jax_enable_x64:
        raise ArgumentError(f"{name} float64 needs jax_enable_x64 (unset JAX_ENABLE_X64=0, or enable it).")
    return jnp.dtype(kind)


def memory_bytes() -> int:
    """Physical memory of this machine in bytes (a conservative 8 GiB where it cannot be read)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return 8 * 2**30


def n_starts(value, n_params: int, name: str = "starts", *, copies: int = 16) -> int:
    """A number of starts (or fits), bounded by what their host-side arrays need.

    Every start keeps about ``copies`` float64 vectors of ``n_params`` values on the host (the start, the optimum,
    their statistics); more starts than half the machine's memory holds are refused before any work.

    >>> n_starts(4096, 5)
    4096
    """
    v = integer(value, name)
    per = 8 * copies * max(int(n_params), 1)
    limit = memory_bytes() // 2 // per
    if v > limit:
        raise ArgumentError(f"{name}={v} needs about {v * per / 2**30:.3g} GiB of host memory; this machine allows "
                            f"at most {limit} (half of {memory_bytes() / 2**30:.3g} GiB).")
    return v


def fixed(law, values: Mapping[str, object] | None, name: str = "fixed") -> dict[str, float]:
    """Fixed parameter values: names of the law's parameters, finite numbers inside each parameter's support.

    >>> import jaxscale
    >>> fixed(jaxscale.laws.get("chinchilla"), {"E": np.float32(1.5)})
    {'E': 1.5}
    >>> fixed(jaxscale.laws.get("chinchilla"), {"alpha": -0.3})
    Traceback (most recent call last):
    ...
    jaxscale.errors.ArgumentError: fixed alpha=-0.3 is outside the support of law 'chinchilla''s parameter alpha: it must be > 0.
    """
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise ArgumentError(f"{name} must map parameter names to numbers, e.g. {{'E': 1.7}}; got {values!r}.")
    unknown = sorted(set(values) - set(law.param_names))
    if unknown:
        raise ArgumentError(f"{name} names unknown parameter(s) {unknown}; law {law.name!r} has "
                            f"{list(law.param_names)}.")
    out = {}
    for p in law.params:
        if p.name not in values:
            continue
        v = _scalar(values[p.name])
        if not _is_real(v) or not np.isfinite(float(v)):
            raise ArgumentError(f"{name} {p.name} must be a finite number; got {v!r}.")
        v = float(v)
        if p.transform == "logit" and not 0 < v < 1:
            raise ArgumentError(f"{name} {p.name}={v:g} is outside the support of law {law.name!r}'s parameter "
                                f"{p.name}: it must be in (0, 1).")
        if (p.transform == "log" or p.positive) and v <= 0:
            raise ArgumentError(f"{name} {p.name}={v:g} is outside the support of law {law.name!r}'s parameter "
                                f"{p.name}: it must be > 0.")
        out[p.name] = v
    return out


def output_path(path, name: str = "output") -> str:
    """A file path jaxscale can write: its directory exists and is writable, and it is not a directory.

    Checked before any work, so a typo in ``--json`` does not cost the run.

    >>> import tempfile, os
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     output_path(os.path.join(tmp, "fit.json")) == os.path.join(tmp, "fit.json")
    True
    """
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise ArgumentError(f"{name} must be a file path; got {path!r}.")
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ArgumentError(f"{name} {path!r} is a directory; give a file path.")
    if not os.path.isdir(directory):
        raise ArgumentError(f"{name} {path!r}: directory {directory!r} does not exist.")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ArgumentError(f"{name} {path!r}: directory {directory!r} is not writable.")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise ArgumentError(f"{name} {path!r} exists and is not writable.")
    return path


def choice(value, name: str, allowed) -> str:
    """``value`` if it is one of ``allowed``, else an error listing them.

    >>> choice("pairs", "method", ("pairs", "residual"))
    'pairs'
    """
    allowed = tuple(allowed)
    if not isinstance(value, str) or value not in allowed:
        raise ArgumentError(f"{name} must be one of {list(allowed)}; got {value!r}.")
    return value
