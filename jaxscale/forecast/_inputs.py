"""Inputs of a forecast: the data (and the raw frame a split may name columns of), and the points to forecast."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from jaxscale.data import ALIASES, COVARIATE_KEYS, LABEL_KEYS, ScalingData
from jaxscale.errors import DataError
from jaxscale.forecast._split import is_number
from jaxscale.laws import Law

_ROLE_KEYS = set(COVARIATE_KEYS) | set(LABEL_KEYS) | {"loss", "score", "y"}


def coerce(data, columns: Mapping[str, str]) -> tuple[ScalingData, pd.DataFrame | None]:
    """ScalingData plus the raw frame its rows came from (in the same order), when there is one."""
    if isinstance(data, (str, os.PathLike)):
        path = os.fspath(data)
        return ScalingData.from_frame(frame := read_csv(path), source=os.path.abspath(path), **columns), frame
    if isinstance(data, pd.DataFrame):
        return ScalingData.from_frame(data, **columns), data
    return ScalingData.coerce(data, **columns), None


def read_csv(path: str) -> pd.DataFrame:
    if not os.path.exists(path):
        raise DataError(f"No such data file: {path!r}.")
    try:
        return pd.read_csv(path)
    except (ValueError, OSError) as e:  # pandas' parser errors are ValueErrors
        raise DataError(f"Could not read {path!r} as CSV: {e}") from None


def require_covariates(law: Law, data: ScalingData) -> None:
    missing = [c for c in law.covariates if c not in data.covariates]
    if missing:
        raise DataError(f"Law {law.name!r} needs covariate(s) {list(law.covariates)}; the data lacks {missing} "
                        f"(it has {sorted(data.covariates)}; map a column with e.g. {missing[0]}='column name').")


def split_kwargs(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(how to read the data: column roles and flops_per_token, the rest: options of the fit)``."""
    columns = {k: v for k, v in kwargs.items() if (k in _ROLE_KEYS and isinstance(v, str)) or k == "flops_per_token"}
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
    else:
        if isinstance(at, pd.DataFrame):
            at = {c: at[c].to_numpy() for c in at.columns}
        if not isinstance(at, Mapping) or not at:
            raise DataError(f"at must map covariates to values, e.g. at={{'N': 7e10, 'D': 1.4e12}}; got {at!r}.")
        unknown = sorted(str(k) for k in at if k not in COVARIATE_KEYS)
        if unknown:
            raise DataError(f"at: {unknown} are not covariates; expected some of {list(COVARIATE_KEYS)}.")
        try:
            arrs = np.broadcast_arrays(*(np.asarray(at[k], dtype=np.float64) for k in at))
        except (TypeError, ValueError) as e:
            raise DataError(f"at: every value must be a number or an array of numbers of one length ({e}).") from None
        cols = {k: a.ravel().copy() for k, a in zip(at, arrs)}
    for k, v in cols.items():
        bad = np.flatnonzero(~np.isfinite(v) | (v <= 0))
        if bad.size:
            raise DataError(f"at: {k} must be finite and > 0; point {bad[0]} has {v[bad[0]]}.")
    if "D" not in cols and "C" in cols and "N" in cols:
        cols["D"] = cols["C"] / (flops_per_token * cols["N"])
    elif "C" not in cols and "N" in cols and "D" in cols:
        cols["C"] = flops_per_token * cols["N"] * cols["D"]
    for law in laws:
        missing = [c for c in law.covariates if c not in cols]
        if missing:
            raise DataError(f"at lacks {missing}: law {law.name!r} needs {list(law.covariates)}; got {sorted(cols)}.")
    if len(next(iter(cols.values()))) == 0:
        raise DataError("at has no points; give at least one value per covariate.")
    return pd.DataFrame({k: cols[k] for k in COVARIATE_KEYS if k in cols})


def points_csv(path: str, columns: Mapping[str, str]) -> dict[str, np.ndarray]:
    """Covariate columns of a CSV of forecast points: mapped with ``--col`` (when the CSV has that column), else by their usual
    names (``ALIASES``), else named as the role itself."""
    frame = read_csv(path)
    found: dict[str, np.ndarray] = {}
    for role in COVARIATE_KEYS:
        names = [columns[role]] if role in columns else []
        names += [c for a in (role.lower(), *ALIASES.get(role, ())) for c in frame.columns
                  if str(c).strip().lower() == a]
        name = next((n for n in names if n in frame.columns), None)
        if name is not None:
            col = frame[name]
            if col.dtype.kind not in "iuf":
                bad = next((i for i, v in zip(col.index, col) if not is_number(v)), col.index[0])
                raise DataError(f"--at-csv {path}: column {name!r} ({role}) must hold numbers; row {bad} holds "
                                f"{col.loc[bad]!r}.")
            found[role] = col.to_numpy(dtype=np.float64)
    if not found:
        raise DataError(f"--at-csv {path}: no covariate column (N, D, C, U or x) among {list(frame.columns)}; "
                        f"map one with --col ROLE=COLUMN.")
    return found
