"""Which rows a forecast is fitted on: the split (cutoff, 0/1 flag or mask) and how many points each method needs."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from jaxscale.data import ScalingData
from jaxscale.errors import DataError, FitError
from jaxscale.laws import Law

#: The predictive methods, in the order the docs present them; ``calibrated`` is the default.
METHODS = ("calibrated", "fit", "bootstrap", "bayes")


def describe(split) -> str:
    if isinstance(split, Mapping):
        return " and ".join(f"{k} <= {v:g}" for k, v in split.items())
    if isinstance(split, str):
        return f"{split} == 1"
    return "explicit mask"


def column_values(name: str, data: ScalingData, frame: pd.DataFrame | None, what: str) -> np.ndarray:
    """Values of a split column: a covariate role (N, D, C, U, x), the target, or a raw frame column."""
    if name in data.covariates:
        return np.asarray(data.covariates[name])
    if name in ("loss", data.target_name):
        return np.asarray(data.y)
    if frame is not None and name in frame.columns:
        col = frame[name]
        if isinstance(col, pd.DataFrame):
            raise DataError(f"{what}: column {name!r} is ambiguous: it appears more than once in the data.")
        if col.dtype.kind == "b":
            return col.to_numpy()
        if col.dtype.kind not in "iuf":
            bad = next((i for i, v in zip(col.index, col) if not is_number(v)), None)
            raise DataError(f"{what}: column {name!r} must hold numbers; row {bad} holds {col.loc[bad]!r}.")
        return col.to_numpy(dtype=np.float64)
    have = sorted(data.covariates) + [data.target_name]
    extra = f" or one of the data's columns {list(frame.columns)}" if frame is not None else (
        " (other columns can be used when data is a DataFrame or a CSV path)")
    raise DataError(f"{what}: no column {name!r}; expected one of the roles {have}{extra}.")


def is_number(v) -> bool:
    try:
        float(v)
        return True
    except (TypeError, ValueError):
        return False


def split_mask(split, data: ScalingData, frame: pd.DataFrame | None) -> tuple[np.ndarray, dict[str, Any]]:
    """``(train mask over data rows, JSON description)`` of a split; raises DataError on bad input."""
    n = len(data)
    if isinstance(split, Mapping):
        if not split:
            raise DataError("split is an empty mapping; give {column: cutoff}, e.g. split={'C': 1e21}.")
        mask = np.ones(n, bool)
        cutoff = {}
        for name, value in split.items():
            if isinstance(value, bool) or not is_number(value) or not math.isfinite(float(value)):
                raise DataError(f"split[{name!r}] must be a finite number (train on {name} <= it); got {value!r}.")
            col = column_values(str(name), data, frame, f"split[{name!r}]")
            bad = np.flatnonzero(~np.isfinite(col.astype(np.float64)))
            if bad.size:
                raise DataError(f"split column {name!r} has a non-finite value in row {data.rows[bad[0]]}; "
                                f"expected numbers in every row.")
            mask &= col <= float(value)
            cutoff[str(name)] = float(value)
        return mask, {"kind": "cutoff", "cutoff": cutoff, "rule": f"train on {describe(cutoff)}; score the rest"}
    if isinstance(split, str):
        col = column_values(split, data, frame, f"split={split!r}")
        ok = np.isin(col, (0, 1)) | np.isin(col, (False, True))
        if not ok.all():
            i = int(np.flatnonzero(~ok)[0])
            raise DataError(f"split={split!r} names a column that must hold 0 (held out) or 1 (train); "
                            f"row {data.rows[i]} holds {col[i]:g}.")
        return col.astype(bool), {"kind": "flag", "column": split, "rule": f"train on {split} == 1; score {split} == 0"}
    if isinstance(split, (np.ndarray, pd.Series, list, tuple)):
        arr = np.asarray(split)
        if arr.dtype != bool:
            raise DataError(f"split mask must be booleans (True = train), one per data row; got dtype {arr.dtype}. "
                            f"For a 0/1 column pass its name, e.g. split='Training'.")
        if arr.shape != (n,):
            raise DataError(f"split mask has shape {arr.shape}; expected ({n},), one entry per data row.")
        return arr.copy(), {"kind": "mask", "rule": "explicit mask (True = train)"}
    raise DataError(f"split must be a mapping {{column: cutoff}} (train on column <= cutoff), the name of a 0/1 "
                    f"column (1 = train) or a boolean mask; got {type(split).__name__}.")


def n_free(law: Law, method: str, kwargs: Mapping[str, Any]) -> int:
    fixed = kwargs.get("fixed") or {}
    n = law.n_params - len([k for k in fixed if k in law.param_names])
    return n + (1 if method != "bayes" and kwargs.get("objective") == "likelihood" else 0)


def min_train(n_free: int, method: str) -> int:
    """Fewest training points a method can forecast from.

    ``calibrated``, ``fit`` and ``bootstrap`` build the predictive noise from the training fit's residuals, rescaled by
    ``sqrt(n / (n - p))``: that needs ``n > p``, at least one residual degree of freedom (at ``n == p`` the fit
    interpolates, every residual is ~0 and the "interval" would be the point). ``bayes`` samples the noise scale
    ``sigma`` (its prior carries it when the data cannot), so ``n == p`` still gives a proper predictive interval.
    ``calibrated`` also needs enough distinct scales for its leave-future-out folds (see
    :mod:`jaxscale.forecast.calibration`); with fewer it falls back to ``bootstrap`` with a warning.
    """
    return n_free if method == "bayes" else n_free + 1


def too_few(n_train: int, n_free: int, law: Law, method: str) -> str:
    """The shared tail of the too-few-training-points message, or ``""`` when there are enough."""
    if method not in METHODS:  # before counting: the rule depends on the method
        raise FitError(f"method must be one of {list(METHODS)}; got {method!r}.")
    need = min_train(n_free, method)
    if n_train >= need:
        return ""
    if method == "bayes":
        return (f"law {law.name!r} has {n_free} free parameter(s), so at least {need} training points are needed "
                f"(method='bayes').")
    return (f"law {law.name!r} has {n_free} free parameter(s), and method={method!r} builds its predictive interval "
            f"from the training residuals, which needs at least one residual degree of freedom: at least {need} "
            f"training points (more than {n_free}).")


def check_counts(split, desc, law, n_train, n_test, n_free, method: str, need_test: bool = True) -> None:
    shown = desc.get("cutoff", split) if desc["kind"] != "mask" else "the mask"
    if tail := too_few(n_train, n_free, law, method):
        raise DataError(f"split={shown!r} leaves {n_train} training point(s) ({desc['rule']}); {tail}")
    if need_test and n_test == 0:
        raise DataError(f"split={shown!r} holds out no points: all {n_train} are training points ({desc['rule']}); "
                        f"at least 1 held-out point is needed to score a forecast.")




def extrapolation_axis(law: Law, data: ScalingData, split=None, axis: str | None = None) -> str:
    """The covariate forecasts extrapolate along: ``axis`` if given, else the split's cutoff column when it is a
    covariate, else ``C`` when the data has it, else the law's first covariate."""
    if axis is not None:
        if axis not in data.covariates:
            raise DataError(f"axis={axis!r} is not a covariate of the data; expected one of {sorted(data.covariates)}.")
        return axis
    if isinstance(split, Mapping):
        for name in split:
            if name in data.covariates:
                return str(name)
    return "C" if "C" in data.covariates else law.covariates[0]
