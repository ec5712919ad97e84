"""Inputs of a forecast: the data (and the raw frame a split may name columns of), and the points to forecast."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from jaxscale.data import (COVARIATE_KEYS, LABEL_KEYS, ScalingData, check_derived, matching_columns,
                           read_csv as read_table)
from jaxscale.errors import ArgumentError, DataError
from jaxscale.forecast._split import is_number
from jaxscale.laws import Law
from jaxscale import schedule

_ROLE_KEYS = set(COVARIATE_KEYS) | set(LABEL_KEYS) | {"loss", "score", "y"}


def coerce(data, columns: Mapping[str, Any]) -> tuple[ScalingData, pd.DataFrame | None]:
    """ScalingData plus the raw frame its rows came from (in the same order), when there is one.

    ``data`` may be a CSV path or a bundled data set's name (:func:`jaxscale.datasets.read_table`). ``columns``
    maps roles to columns and may hold ``flops_per_token`` and ``sep`` (the CSV separator; None sniffs it), which
    applies only to a CSV path.
    """
    columns = dict(columns)
    sep = columns.pop("sep", None)
    if isinstance(data, (str, os.PathLike)):
        from jaxscale import datasets  # a CSV path, or a bundled data set's name (an existing path wins)

        return datasets.read_table(data, sep=sep, **columns)
    if sep is not None:
        raise ArgumentError(f"sep applies only when the data is a CSV path; got {type(data).__name__} data.")
    if isinstance(data, pd.DataFrame):
        return ScalingData.from_frame(data, **columns), data
    return ScalingData.coerce(data, **columns), None


def read_csv(path: str | os.PathLike, sep: str | None = None) -> pd.DataFrame:
    """The rows of a CSV file as :func:`jaxscale.data.read_csv` reads them (``sep=None`` sniffs the separator)."""
    return read_table(path, sep=sep).frame


def require_covariates(law: Law, data: ScalingData) -> None:
    """A :class:`DataError` unless ``data`` has every covariate of ``law`` (see :meth:`ScalingData.require`)."""
    data.require(law.covariates, law.name)


def split_kwargs(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(how to read the data: column roles, flops_per_token and sep, the rest: options of the fit)``."""
    columns = {k: v for k, v in kwargs.items()
               if (k in _ROLE_KEYS and isinstance(v, str)) or k in ("flops_per_token", "sep")}
    return columns, {k: v for k, v in kwargs.items() if k not in columns}


def drop_top(data: ScalingData, mask, k: int):
    """``data`` without its ``k`` highest targets (Epoch drops 5), and ``mask`` (or None) restricted to the rest."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise DataError(f"drop_top must be an integer >= 0 (how many of the highest targets to drop); got {k!r}.")
    if not k:
        return data, mask
    kept = data.drop_top(int(k))
    if mask is not None:
        mask = mask[pd.Index(data.rows).get_indexer(kept.rows)]
    return kept, mask


def points(laws: tuple[Law, ...], at, flops_per_token: float) -> pd.DataFrame:
    """Forecast points as a DataFrame of covariates (positive, finite), D or C derived as in ScalingData."""
    if isinstance(at, ScalingData):
        cols = {k: np.asarray(v, np.float64) for k, v in at.covariates.items()}
        if at.step is not None:
            cols["step"] = np.asarray(at.step, np.float64)
    else:
        if isinstance(at, pd.DataFrame):
            at = {c: at[c].to_numpy() for c in at.columns}
        if not isinstance(at, Mapping) or not at:
            raise DataError(f"at must map covariates to values, e.g. at={{'N': 7e10, 'D': 1.4e12}}; got {at!r}.")
        unknown = sorted(str(k) for k in at if k not in COVARIATE_KEYS and not schedule.is_key(k) and k != "step")
        if unknown:
            raise DataError(f"at: {unknown} are not covariates; expected some of {list(COVARIATE_KEYS)}, or the "
                            f"schedule covariates of a planned run (jaxscale.schedule.planned).")
        try:
            arrs = np.broadcast_arrays(*(np.asarray(at[k], dtype=np.float64) for k in at))
        except (TypeError, ValueError) as e:
            raise DataError(f"at: every value must be a number or an array of numbers of one length ({e}).") from None
        cols = {k: a.ravel().copy() for k, a in zip(at, arrs)}
    for k, v in cols.items():
        if k == "step":
            continue
        bad = np.flatnonzero(~np.isfinite(v) | (v <= 0))
        if bad.size:
            raise DataError(f"at: {k} must be finite and > 0; point {bad[0]} has {v[bad[0]]}.")
    derived = None
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        if "D" not in cols and "C" in cols and "N" in cols:
            cols["D"] = cols["C"] / (flops_per_token * cols["N"])
            derived = ("D", f"C / ({flops_per_token:g} N)", ("C", "N"))
        elif "C" not in cols and "N" in cols and "D" in cols:
            cols["C"] = flops_per_token * cols["N"] * cols["D"]
            derived = ("C", f"{flops_per_token:g} N D", ("N", "D"))
    if derived is not None:
        key, formula, inputs = derived
        check_derived(key, formula, cols, inputs, lambda i: f"point {i}", prefix="at: ")
    for law in laws:
        missing = [c for c in law.covariates if c not in cols]
        if missing:
            raise DataError(f"at lacks {missing}: law {law.name!r} needs {list(law.covariates)}; got {sorted(cols)}.")
    if len(next(iter(cols.values()))) == 0:
        raise DataError("at has no points; give at least one value per covariate.")
    order = [*COVARIATE_KEYS, "step", *schedule.KEYS]
    return pd.DataFrame({k: cols[k] for k in order if k in cols})


def points_csv(path: str, columns: Mapping[str, str], sep: str | None = None) -> dict[str, np.ndarray]:
    """Covariate columns of a CSV of forecast points.

    A role's column is the one mapped with ``--col`` (when the CSV has it), else one named as the role itself,
    else one with a usual name (:data:`jaxscale.data.ALIASES`, compared as :func:`jaxscale.data.normalize_name`
    does). ``sep=None`` sniffs the separator. A bundled data set's name reads its table (units in counts), its
    default roles first.
    """
    from jaxscale import datasets  # a CSV path, or a bundled data set's name (an existing path wins)

    table = datasets.csv_table(path, sep=sep, argument="--at-csv")
    if datasets.is_dataset(path):
        columns = {**datasets.info(path).roles, **columns}  # its default roles, --col over them
    frame = table.frame
    found: dict[str, np.ndarray] = {}
    for role in COVARIATE_KEYS:
        names = [str(columns[role]).strip()] if role in columns else []
        names += [c for c in frame.columns if str(c).strip().lower() == role.lower()]
        names += matching_columns(frame.columns, role)
        name = next((n for n in names if n in frame.columns), None)
        if name is not None:
            col = frame[name]
            if col.dtype.kind not in "iuf":
                bad = next((i for i, v in enumerate(col) if not is_number(v)), 0)
                at = f"line {table.lines[bad]}" if table.lines is not None else f"row {bad} (0-based row index)"
                raise DataError(f"--at-csv {path}: column {name!r} ({role}) must hold numbers; {at} holds "
                                f"{col.iloc[bad]!r}.")
            found[role] = col.to_numpy(dtype=np.float64)
    if not found:
        raise DataError(f"--at-csv {path}: no covariate column (N, D, C, U or x) among {list(frame.columns)}; "
                        f"map one with --col ROLE=COLUMN.")
    return found
