"""Read a result file (or take a result object) and tell which kind of result it is.

The kind is decided by the content, never by the file name:

* the first bytes are netCDF's (``CDF\\x01``/``\\x02``/``\\x05`` or HDF5's): a ``posterior``
  (``jaxscale bayes --out``);
* otherwise the file must be a JSON object, and
  ``"format": "jaxscale.forecast/1"`` is a ``forecast`` (``jaxscale forecast --out``);
  ``"format": "jaxscale.backtest/1"`` is a ``backtest`` (``jaxscale backtest --json``) when its forecast's
  ``provenance.split`` counts held-out points (``n_test``: the held-out runs were in the data), else a ``check``
  (``jaxscale check --json``: a saved forecast scored against runs made later);
  ``"kind"`` one of the allocation kinds with ``"records"`` is an ``allocation`` (``jaxscale allocate --json``);
  ``"law"`` with ``"params"`` mapping each name to ``{"estimate", "se", "ci"}`` is a ``bootstrap``
  (``jaxscale bootstrap --json``), mapping each name to a number a ``fit`` (``jaxscale fit --json``).

Anything else is an error that lists these kinds.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jaxscale._draws import read_posterior
from jaxscale.errors import ArgumentError, DataError, JaxscaleError

#: The kinds a report reads, each with the command (and method) that writes it.
KINDS = {
    "fit": "jaxscale fit --json",
    "bootstrap": "jaxscale bootstrap --json",
    "posterior": "netCDF of jaxscale bayes --out",
    "allocation": "jaxscale allocate --json",
    "forecast": "jaxscale forecast --out",
    "backtest": "jaxscale backtest --json",
    "check": "jaxscale check --json",
}
ALLOCATION_KINDS = ("compute_optimal", "inference_optimal", "data_constrained_optimal")
_NETCDF_MAGIC = (b"CDF\x01", b"CDF\x02", b"CDF\x05", b"\x89HDF\r\n\x1a\n")


def kinds_text() -> str:
    return ", ".join(f"{k} ({v})" for k, v in KINDS.items())


@dataclass(frozen=True, eq=False)
class Input:
    """One result to report on.

    ``kind``: one of :data:`KINDS`. ``name``: the path, or the object's type for a result passed in memory.
    ``doc``: the JSON document (``None`` for a posterior). ``obj``: the result object when one was passed (the
    ``InferenceData`` for a posterior). ``modified``: the file's modification time (UTC, ISO 8601), if a file.
    """

    kind: str
    name: str
    doc: dict | None
    obj: Any = None
    path: str | None = None
    modified: str | None = None


def kind_of(doc) -> str | None:
    """The kind of a parsed JSON document (see the module docstring), or ``None``.

    >>> kind_of({"law": "chinchilla", "params": {"E": 1.8, "A": 400.0}})
    'fit'
    >>> kind_of({"format": "jaxscale.backtest/1", "forecast": {"provenance": {"split": {"n_test": 3}}}})
    'backtest'
    >>> kind_of({"format": "jaxscale.backtest/1", "forecast": {"provenance": {"split": None}}})
    'check'
    >>> kind_of([1, 2]) is None
    True
    """
    from jaxscale.forecast import BACKTEST_FORMAT, FORECAST_FORMAT

    if not isinstance(doc, Mapping):
        return None
    fmt = doc.get("format")
    if fmt == FORECAST_FORMAT:
        return "forecast"
    if fmt == BACKTEST_FORMAT:
        forecast = doc.get("forecast") if isinstance(doc.get("forecast"), Mapping) else {}
        provenance = forecast.get("provenance") if isinstance(forecast.get("provenance"), Mapping) else {}
        split = provenance.get("split")
        return "backtest" if isinstance(split, Mapping) and "n_test" in split else "check"
    if doc.get("kind") in ALLOCATION_KINDS and "records" in doc:
        return "allocation"
    params = doc.get("params")
    if "law" in doc and isinstance(params, Mapping) and params:
        return "bootstrap" if all(isinstance(v, Mapping) for v in params.values()) else "fit"
    return None


def _describe(doc) -> str:
    if isinstance(doc, Mapping):
        keys = sorted(map(str, doc))
        shown = keys[:8] + (["..."] if len(keys) > 8 else [])
        fmt = f"format {doc['format']!r}, " if "format" in doc else ""
        return f"a JSON object with {fmt}keys {shown}"
    return f"a JSON {type(doc).__name__}"


def _unknown(name: str, what: str) -> DataError:
    return DataError(f"{name}: {what} is not a result jaxscale report reads; it reads: {kinds_text()}.")


def _modified(path: str) -> str:
    t = os.stat(path).st_mtime
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).isoformat(timespec="seconds")


def _check(inp: Input) -> Input:
    """Read the document the way its own loader does, so that a damaged file fails here, before any figure."""
    from jaxscale._draws import param_source
    from jaxscale.forecast import Forecast

    if inp.path is None:
        return inp
    if inp.kind == "fit" or (inp.kind == "bootstrap" and inp.doc.get("draws") is not None):
        param_source(inp.path)
    elif inp.kind == "bootstrap":  # written without its draws: the table alone
        from jaxscale.report._sections import bootstrap_source

        try:
            bootstrap_source(inp)
        except (JaxscaleError, TypeError, ValueError, KeyError) as e:
            raise DataError(f"{inp.path}: not a bootstrap JSON this version reads ({e}); expected the JSON written "
                            f"by `{KINDS['bootstrap']}`.") from None
    elif inp.kind in ("forecast", "backtest", "check"):
        Forecast.load(inp.path)
        if inp.kind != "forecast" and not (isinstance(inp.doc.get("summary"), Mapping)
                                           and isinstance(inp.doc.get("table"), list)):
            raise DataError(f"{inp.path}: this {inp.kind} file lacks its 'summary' or 'table'; expected the JSON "
                            f"written by `{KINDS[inp.kind]}`.")
    elif inp.kind == "allocation":
        records = inp.doc.get("records")
        if not isinstance(records, list) or not records or not all(isinstance(r, Mapping) for r in records):
            raise DataError(f"{inp.path}: 'records' must be a non-empty list of objects (one per budget); expected "
                            f"the JSON written by `{KINDS['allocation']}`.")
        if not isinstance(inp.doc.get("law"), str):
            raise DataError(f"{inp.path}: 'law' must be a law name; expected the JSON written by "
                            f"`{KINDS['allocation']}`.")
    return inp


def read_file(path) -> Input:
    """Read one result file and decide its kind; an unreadable file or an unknown kind is one error naming it."""
    if not isinstance(path, (str, os.PathLike)):
        raise ArgumentError(f"expected a result file path; got {type(path).__name__}.")
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ArgumentError(f"result file {path!r} does not exist.")
    if os.path.isdir(path):
        raise ArgumentError(f"result file {path!r} is a directory; give a result file.")
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e.strerror or e}).") from None
    modified = _modified(path)
    if raw.startswith(_NETCDF_MAGIC):
        return Input("posterior", path, None, read_posterior(path)[0], path, modified)
    if not raw.strip():
        raise DataError(f"{path}: the file is empty; expected a result file: {kinds_text()}.")
    try:
        doc = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise _unknown(path, "a binary file that is neither JSON nor netCDF") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON ({e}; a truncated or hand-edited file?); jaxscale report reads: "
                        f"{kinds_text()}.") from None
    kind = kind_of(doc)
    if kind is None:
        raise _unknown(path, _describe(doc))
    return _check(Input(kind, path, doc, None, path, modified))


def from_object(obj) -> Input:
    """An :class:`Input` from a result object in memory (its JSON document, and the object itself)."""
    from jaxscale.allocate import Allocation
    from jaxscale.fit import FitResult
    from jaxscale.forecast import BacktestResult, Forecast
    from jaxscale.uncertainty import BootstrapResult

    name = type(obj).__name__
    if isinstance(obj, (FitResult, BootstrapResult, Allocation)):
        doc = obj.to_dict()
    elif isinstance(obj, (Forecast, BacktestResult)):
        doc = obj.to_dict()
    elif hasattr(obj, "posterior") and hasattr(obj, "groups"):
        from jaxscale.bayes._infer import law_of

        law_of(obj)
        return Input("posterior", f"posterior ({name})", None, obj)
    else:
        raise ArgumentError(f"report takes result files or FitResult, BootstrapResult, posterior InferenceData, "
                            f"Allocation, Forecast or BacktestResult objects; got {name}.")
    return Input(kind_of(doc), name, json.loads(json.dumps(doc, default=_plain)), obj)


def _plain(value):
    """JSON for the numpy scalars a result's ``to_dict`` may hold (a file never has them)."""
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def read(source) -> Input:
    """A path is read from disk; anything else is taken as a result object."""
    if isinstance(source, (str, os.PathLike)):
        return read_file(source)
    return from_object(source)
