"""Forecast and backtest: predict the big run from the small runs, then check.

Two entry points share one machinery:

* :func:`forecast` fits a law (point fit, bootstrap or posterior) and predicts
  points that have not been run yet. The :class:`Forecast` carries its
  predictive draws and its provenance (data fingerprint, law and options,
  settings, key, split, timestamp, jaxscale version) and is written to JSON
  *before* the run, then loaded and scored with :meth:`Forecast.check` after it.
* :func:`backtest` does both halves at once on data already in hand: it fits
  on the points below a cutoff (``split``), forecasts the held-out points and
  scores the forecast (:class:`BacktestResult`: a tidy table and a summary).
  A backtest is exactly ``forecast(...)`` on the training rows followed by
  ``.check(...)`` on the held-out rows, so the two give identical tables.

Predictive distributions (all on the log scale of the target, where the laws
are fitted; every score is then computed on the natural scale):

* ``method="fit"``: the fit's prediction plus each of the training fit's log
  residuals, scaled by ``sqrt(n / (n - p))`` (``p`` free parameters) because
  in-sample residuals are smaller than out-of-sample errors. One predictive
  draw per training point; no parameter uncertainty. Needs more training
  points than free parameters (``n > p``: at ``n == p`` the fit interpolates
  and the residual "interval" would be the point), as does ``bootstrap``.
* ``method="bootstrap"``: each bootstrap replicate's prediction plus one
  resampled (scaled) training log residual per replicate and point -- a
  bootstrap *predictive* interval, parameter uncertainty and noise together
  (Davison & Hinkley 1997, Sec. 6.3.3). The point forecast is the median over
  replicates of the law's value.
* ``method="bayes"``: the posterior predictive, each posterior draw's
  prediction plus the likelihood's noise (Student-t or Normal on the log
  scale, with that draw's ``sigma`` and ``df``), as in the ``pred_lo`` /
  ``pred_hi`` of :func:`jaxscale.bayes.predict` (the noise is drawn here with
  NumPy, so the two agree up to Monte-Carlo error). The point forecast is the
  posterior median of the law's value, exactly ``bayes.predict``'s ``median``.
  The noise scale is sampled (its prior carries it when the data cannot), so
  ``n == p`` training points are enough here.

Scores per held-out point: ``rel_error = (predicted - actual) / actual``; the
central ``level`` interval ``[lo, hi]`` of the predictive draws and whether it
``covered`` the actual value; ``pinball``, the mean of the pinball (quantile)
losses of ``lo`` at level ``(1 - level) / 2`` and of ``hi`` at
``(1 + level) / 2``; ``crps``, the continuous ranked probability score of the
empirical predictive distribution, ``E|X - y| - E|X - X'| / 2`` (Gneiting &
Raftery 2007). Pinball and CRPS are in the target's units; CRPS reduces to the
absolute error for a point forecast.

Files: :meth:`Forecast.to_json` writes everything :meth:`Forecast.load` needs
(every predictive draw, so a loaded forecast re-scores exactly);
:meth:`BacktestResult.to_json` writes the scores plus the forecast with at
most ``BACKTEST_SAMPLES`` draws per point, and loads as a forecast too. On the
command line: ``jaxscale forecast RUNS.csv --at N=7e10,D=1.4e12 --out
forecast.json`` before the runs, ``jaxscale check forecast.json DONE.csv``
after them; ``jaxscale backtest`` does both on data in hand.

>>> import numpy as np
>>> from jaxscale.forecast import backtest
>>> x = np.logspace(2, 6, 30)
>>> y = 0.5 + 40.0 * x ** -0.3 * np.exp(0.01 * np.random.default_rng(0).standard_normal(30))
>>> bt = backtest("power", {"x": x, "loss": y}, split={"x": 1e5}, starts=64, key=0)
>>> bt.summary["n_train"], bt.summary["n_test"]
(22, 8)
>>> bool(bt.summary["median_abs_rel_error"] < 0.05)
True
>>> list(bt.table.columns)
['row', 'x', 'actual', 'predicted', 'rel_error', 'log_error', 'lo', 'hi', 'covered', 'pinball', 'crps']
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jax
import numpy as np
import pandas as pd

from jaxscale import __version__
from jaxscale.data import COVARIATE_KEYS, LABEL_KEYS, ScalingData
from jaxscale.errors import DataError, FitError, JaxscaleError
from jaxscale.fit import _key_repr, key_data
from jaxscale.laws import Law, get

METHODS = ("fit", "bootstrap", "bayes")
FORECAST_FORMAT = "jaxscale.forecast/1"
BACKTEST_FORMAT = "jaxscale.backtest/1"
#: Most predictive draws per point a backtest's JSON keeps (evenly thinned beyond): every draw of a ``fit`` forecast
#: (one per training point) or a default ``bootstrap`` one (200), 1000 of a default ``bayes`` one's 4000. At ~20
#: bytes a draw that is at most ~20 kB per held-out point.
BACKTEST_SAMPLES = 1000
#: Relative tolerance for matching an actual run to a forecast point by its covariates.
MATCH_RTOL = 1e-9
_ROLE_KEYS = set(COVARIATE_KEYS) | set(LABEL_KEYS) | {"loss", "score", "y"}
_NOISE_TAG = 0x666F7265  # separates the predictive-noise stream from the model's own use of the key


# --------------------------------------------------------------------------- split


def _describe(split) -> str:
    if isinstance(split, Mapping):
        return " and ".join(f"{k} <= {v:g}" for k, v in split.items())
    if isinstance(split, str):
        return f"{split} == 1"
    return "explicit mask"


def _column_values(name: str, data: ScalingData, frame: pd.DataFrame | None, what: str) -> np.ndarray:
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
            bad = next((i for i, v in zip(col.index, col) if not _is_number(v)), None)
            raise DataError(f"{what}: column {name!r} must hold numbers; row {bad} holds {col.loc[bad]!r}.")
        return col.to_numpy(dtype=np.float64)
    have = sorted(data.covariates) + [data.target_name]
    extra = f" or one of the data's columns {list(frame.columns)}" if frame is not None else (
        " (other columns can be used when data is a DataFrame or a CSV path)")
    raise DataError(f"{what}: no column {name!r}; expected one of the roles {have}{extra}.")


def _is_number(v) -> bool:
    try:
        float(v)
        return True
    except (TypeError, ValueError):
        return False


def _split_mask(split, data: ScalingData, frame: pd.DataFrame | None) -> tuple[np.ndarray, dict[str, Any]]:
    """``(train mask over data rows, JSON description)`` of a split; raises DataError on bad input."""
    n = len(data)
    if isinstance(split, Mapping):
        if not split:
            raise DataError("split is an empty mapping; give {column: cutoff}, e.g. split={'C': 1e21}.")
        mask = np.ones(n, bool)
        cutoff = {}
        for name, value in split.items():
            if isinstance(value, bool) or not _is_number(value) or not math.isfinite(float(value)):
                raise DataError(f"split[{name!r}] must be a finite number (train on {name} <= it); got {value!r}.")
            col = _column_values(str(name), data, frame, f"split[{name!r}]")
            bad = np.flatnonzero(~np.isfinite(col.astype(np.float64)))
            if bad.size:
                raise DataError(f"split column {name!r} has a non-finite value in row {data.rows[bad[0]]}; "
                                f"expected numbers in every row.")
            mask &= col <= float(value)
            cutoff[str(name)] = float(value)
        return mask, {"kind": "cutoff", "cutoff": cutoff, "rule": f"train on {_describe(cutoff)}; score the rest"}
    if isinstance(split, str):
        col = _column_values(split, data, frame, f"split={split!r}")
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


def _n_free(law: Law, method: str, kwargs: Mapping[str, Any]) -> int:
    fixed = kwargs.get("fixed") or {}
    n = law.n_params - len([k for k in fixed if k in law.param_names])
    return n + (1 if method != "bayes" and kwargs.get("objective") == "likelihood" else 0)


def _min_train(n_free: int, method: str) -> int:
    """Fewest training points a method can forecast from.

    ``fit`` and ``bootstrap`` build the predictive noise from the training fit's residuals, rescaled by
    ``sqrt(n / (n - p))``: that needs ``n > p``, at least one residual degree of freedom (at ``n == p`` the fit
    interpolates, every residual is ~0 and the "interval" would be the point). ``bayes`` samples the noise scale
    ``sigma`` (its prior carries it when the data cannot), so ``n == p`` still gives a proper predictive interval.
    """
    return n_free if method == "bayes" else n_free + 1


def _too_few(n_train: int, n_free: int, law: Law, method: str) -> str:
    """The shared tail of the too-few-training-points message, or ``""`` when there are enough."""
    if method not in METHODS:  # before counting: the rule depends on the method
        raise FitError(f"method must be one of {list(METHODS)}; got {method!r}.")
    need = _min_train(n_free, method)
    if n_train >= need:
        return ""
    if method == "bayes":
        return (f"law {law.name!r} has {n_free} free parameter(s), so at least {need} training points are needed "
                f"(method='bayes').")
    return (f"law {law.name!r} has {n_free} free parameter(s), and method={method!r} builds its predictive interval "
            f"from the training residuals, which needs at least one residual degree of freedom: at least {need} "
            f"training points (more than {n_free}).")


def _check_counts(split, desc, law, n_train, n_test, n_free, method: str, need_test: bool = True) -> None:
    shown = desc.get("cutoff", split) if desc["kind"] != "mask" else "the mask"
    if tail := _too_few(n_train, n_free, law, method):
        raise DataError(f"split={shown!r} leaves {n_train} training point(s) ({desc['rule']}); {tail}")
    if need_test and n_test == 0:
        raise DataError(f"split={shown!r} holds out no points: all {n_train} are training points ({desc['rule']}); "
                        f"at least 1 held-out point is needed to score a forecast.")


# --------------------------------------------------------------------------- inputs


def _coerce(data, columns: Mapping[str, str]) -> tuple[ScalingData, pd.DataFrame | None]:
    """ScalingData plus the raw frame its rows came from (in the same order), when there is one."""
    if isinstance(data, (str, os.PathLike)):
        path = os.fspath(data)
        return ScalingData.from_frame(frame := _read_csv(path), source=os.path.abspath(path), **columns), frame
    if isinstance(data, pd.DataFrame):
        return ScalingData.from_frame(data, **columns), data
    return ScalingData.coerce(data, **columns), None


def _read_csv(path: str) -> pd.DataFrame:
    if not os.path.exists(path):
        raise DataError(f"No such data file: {path!r}.")
    try:
        return pd.read_csv(path)
    except (ValueError, OSError) as e:  # pandas' parser errors are ValueErrors
        raise DataError(f"Could not read {path!r} as CSV: {e}") from None


def _require_covariates(law: Law, data: ScalingData) -> None:
    missing = [c for c in law.covariates if c not in data.covariates]
    if missing:
        raise DataError(f"Law {law.name!r} needs covariate(s) {list(law.covariates)}; the data lacks {missing} "
                        f"(it has {sorted(data.covariates)}; map a column with e.g. {missing[0]}='column name').")


def _split_kwargs(kwargs: dict[str, Any]) -> tuple[dict[str, str], dict[str, Any]]:
    columns = {k: v for k, v in kwargs.items() if k in _ROLE_KEYS and isinstance(v, str)}
    return columns, {k: v for k, v in kwargs.items() if k not in columns}


def _points(law: Law, at, flops_per_token: float) -> pd.DataFrame:
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
    missing = [c for c in law.covariates if c not in cols]
    if missing:
        raise DataError(f"at lacks {missing}: law {law.name!r} needs {list(law.covariates)}; got {sorted(cols)}.")
    if len(next(iter(cols.values()))) == 0:
        raise DataError("at has no points; give at least one value per covariate.")
    return pd.DataFrame({k: cols[k] for k in COVARIATE_KEYS if k in cols})


# --------------------------------------------------------------------------- predictive draws


def _noise_rng(key) -> np.random.Generator:
    return np.random.default_rng([*key_data(key).tolist(), _NOISE_TAG])


def _log_predict(law: Law, theta: np.ndarray, logx: np.ndarray) -> np.ndarray:
    """Log predictions ``(n_draws, n_points)`` for fitting-coordinate draws ``(n_draws, P)``, vmapped over both.

    Fitting coordinates, not natural values: a fit whose log-parameter ran off to -inf has a natural value of
    exactly 0, which the law's own ``predict`` rejects, yet its predictions are finite.
    """
    f = jax.vmap(jax.vmap(law.log_predict, in_axes=(None, 0)), in_axes=(0, None))
    return np.asarray(f(jax.numpy.asarray(np.atleast_2d(theta)), jax.numpy.asarray(logx)), np.float64)


def _finite_draws(mu: np.ndarray, what: str) -> tuple[np.ndarray, int]:
    good = np.all(np.isfinite(mu), axis=1)
    n_bad = int((~good).sum())
    if not good.any():
        raise FitError(f"Every one of the {len(good)} {what} gives a non-finite prediction at the forecast points.")
    if n_bad:
        warnings.warn(f"{n_bad} of {len(good)} {what} give a non-finite prediction at the forecast points and are "
                      f"excluded from the forecast.", RuntimeWarning, stacklevel=4)
    return good, n_bad


def _scaled_residuals(law: Law, theta: np.ndarray, data: ScalingData, n_free: int) -> np.ndarray:
    logx, logy = data.design(law.covariates, law.name)
    resid = logy - _log_predict(law, theta, logx)[0]
    n = len(resid)
    if n <= n_free:  # _check_counts / forecast() reject this first; never fall back to an unscaled, ~0 residual
        raise FitError(f"{n} training point(s) for {n_free} free parameter(s): residual-based predictive intervals "
                       f"need at least one residual degree of freedom (more than {n_free} points).")
    return resid * math.sqrt(n / (n - n_free))


def _json_safe(value):
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _thin(n: int, samples: bool | int) -> np.ndarray:
    """Indices of the draws to store: all (``True``, or ``samples >= n``) or ``samples`` evenly spaced ones."""
    if samples is True:
        return np.arange(n)
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 2:
        raise DataError(f"samples must be True, False or an integer >= 2 (the most draws to store); got {samples!r}.")
    if samples >= n:
        return np.arange(n)
    return (np.arange(samples) * (n - 1)) // (samples - 1)  # exact integers: 0 and n - 1 included, no repeats


def _dumps(value, level: int = 0) -> str:
    """JSON indented like ``json.dumps(indent=1)``, but a list of numbers stays on one line (draws stay compact)."""
    pad, inner = " " * level, " " * (level + 1)
    if isinstance(value, dict) and value:
        items = (f"{inner}{json.dumps(str(k))}: {_dumps(v, level + 1)}" for k, v in value.items())
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list) and any(isinstance(v, (list, dict)) for v in value):
        return "[\n" + ",\n".join(inner + _dumps(v, level + 1) for v in value) + "\n" + pad + "]"
    return json.dumps(value)


def _write_json(doc: dict[str, Any], path: str | os.PathLike | None) -> str:
    text = _dumps(doc)
    if path is not None:
        with open(path, "w") as fh:
            fh.write(text + "\n")
    return text


def _predictive(law: Law, train: ScalingData, points: pd.DataFrame, method: str, key, resamples: int,
                kwargs: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """``(predicted, log predictive draws (S, n), settings)`` from a model fitted to ``train``."""
    from jaxscale.laws._registry import _log_covariates

    logx = _log_covariates(law, {c: points[c].to_numpy() for c in law.covariates})
    n_free = _n_free(law, method, kwargs)
    rng = _noise_rng(key)
    if method == "fit":
        from jaxscale.fit import fit

        res = fit(law, train, key=key, **kwargs)
        mu = _log_predict(law, res.theta, logx)[0]
        if not np.all(np.isfinite(mu)):
            raise FitError("The fit gives a non-finite prediction at a forecast point.")
        resid = _scaled_residuals(law, res.theta, train, n_free)
        settings = {"fit": res.to_dict(), "residual_scale": "sqrt(n/(n-p))", "n_draws": int(resid.size)}
        return np.exp(mu), mu[None, :] + resid[:, None], settings
    if method == "bootstrap":
        from jaxscale.uncertainty import bootstrap

        if "method" in kwargs:
            raise FitError("Pass the bootstrap's resampling scheme as bootstrap_method= ('pairs', 'residual' or "
                           "'cluster'); method= chooses 'fit', 'bootstrap' or 'bayes'.")
        kw = dict(kwargs)
        kw["method"] = kw.pop("bootstrap_method", "pairs")
        b = bootstrap(law, train, resamples, key, **kw)
        mu = _log_predict(law, b.theta_draws, logx)
        good, n_bad = _finite_draws(mu, "bootstrap replicates")
        mu = mu[good]
        resid = _scaled_residuals(law, b.point.theta, train, n_free)
        samples = mu + resid[rng.integers(0, resid.size, size=mu.shape)]
        settings = {"bootstrap": _json_safe({k: v for k, v in b.to_dict(draws=False).items() if k != "derived"}),
                    "point_fit_params": b.point.params, "residual_scale": "sqrt(n/(n-p))",
                    "n_draws": int(mu.shape[0]), "n_draws_nonfinite": n_bad}
        return np.exp(np.median(mu, axis=0)), samples, settings
    if method == "bayes":
        from jaxscale import bayes
        from jaxscale._draws import param_source

        kw = dict(kwargs)
        kw.setdefault("warn", False)
        idata = bayes.sample(law, train, key=key, **kw)
        src = param_source(idata, law)
        mu = _log_predict(law, law.from_natural({k: src.draws[k].to_numpy(np.float64) for k in law.param_names}), logx)
        post = idata.posterior
        sigma = np.asarray(post["sigma"], np.float64).reshape(-1)
        if post.attrs.get("likelihood", "student_t") == "student_t":
            dfv = (np.asarray(post["df"], np.float64).reshape(-1) if "df" in post
                   else np.full(sigma.shape, float(post.attrs["df_fixed"])))
            noise = rng.standard_t(np.broadcast_to(dfv[:, None], mu.shape))
        else:
            noise = rng.standard_normal(mu.shape)
        good, n_bad = _finite_draws(mu, "posterior draws")
        mu, samples = mu[good], (mu + sigma[:, None] * noise)[good]
        diag = bayes.diagnose(idata)
        attrs = {k: v for k, v in post.attrs.items() if k not in ("created_at",)}
        settings = {"bayes": _json_safe(attrs), "n_draws": int(mu.shape[0]), "n_draws_nonfinite": n_bad,
                    "diagnostics_ok": diag.ok, "diagnostics": list(diag.problems)}
        return np.exp(np.median(mu, axis=0)), samples, settings
    raise FitError(f"method must be one of {list(METHODS)}; got {method!r}.")


# --------------------------------------------------------------------------- scoring


def _pinball(q, y, tau):
    d = y - q
    return np.maximum(tau * d, (tau - 1.0) * d)


def crps_samples(samples: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """CRPS of the empirical distribution of ``samples`` (S, n) at ``actual`` (n,): one value per column.

    ``mean |X - y| - mean |X - X'| / 2`` over all pairs of draws, computed in
    ``O(S log S)`` per column from the sorted draws:
    ``sum_{i<j} (x_(j) - x_(i)) = sum_k (2k - S + 1) x_(k)`` (0-based ranks).

    >>> import numpy as np
    >>> float(crps_samples(np.array([[1.0], [3.0]]), np.array([2.0]))[0])  # (1 + 1)/2 - (2 + 2)/(2 * 4)
    0.5
    """
    x = np.sort(np.asarray(samples, np.float64), axis=0)
    S = x.shape[0]
    spread = ((2.0 * np.arange(S) - S + 1.0)[:, None] * x).sum(0) / S**2
    return np.abs(x - np.asarray(actual)[None, :]).mean(0) - spread


def _score(predicted: np.ndarray, log_samples: np.ndarray, actual: np.ndarray, level: float) -> pd.DataFrame:
    a = (1.0 - level) / 2.0
    qlo, qhi = np.quantile(log_samples, [a, 1.0 - a], axis=0)
    lo, hi = np.exp(qlo), np.exp(qhi)
    return pd.DataFrame({
        "actual": actual,
        "predicted": predicted,
        "rel_error": (predicted - actual) / actual,
        "log_error": np.log(predicted) - np.log(actual),
        "lo": lo,
        "hi": hi,
        "covered": (actual >= lo) & (actual <= hi),
        "pinball": 0.5 * (_pinball(lo, actual, a) + _pinball(hi, actual, 1.0 - a)),
        "crps": crps_samples(np.exp(log_samples), actual),
    })


def _summary(table: pd.DataFrame, n_train: int, level: float, method: str) -> dict[str, Any]:
    err = table["rel_error"].abs()
    return {
        "method": method,
        "level": level,
        "n_train": int(n_train),
        "n_test": len(table),
        "median_abs_rel_error": float(err.median()),
        "mean_abs_rel_error": float(err.mean()),
        "rmse_log": float(np.sqrt(np.mean(table["log_error"] ** 2))),
        "coverage": float(table["covered"].mean()),
        "mean_pinball": float(table["pinball"].mean()),
        "mean_crps": float(table["crps"].mean()),
    }


# --------------------------------------------------------------------------- results


def _check_level(level) -> float:
    from jaxscale.uncertainty import _check_level as check

    return check(level)


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True, eq=False)
class Forecast:
    """Predictions for points not yet run, with their predictive draws and provenance.

    Attributes
    ----------
    law
        The :class:`~jaxscale.laws.Law` forecast with.
    points
        The forecast points (DataFrame of covariates, one row each).
    predicted
        Point forecasts: the fit's prediction, or the median over bootstrap
        replicates / posterior draws of the law's value.
    log_samples
        Predictive draws on the log scale, shape ``(n_draws, n_points)``
        (see the module docstring for how each method makes them).
    level
        Level of the central interval ``table()`` and ``check()`` report.
    method
        ``"fit"``, ``"bootstrap"`` or ``"bayes"``.
    provenance
        What the forecast was made from: ``data_fingerprint`` (SHA-256 of
        the training data), ``data_source``, ``n_train``, ``law`` and
        ``law_options``, ``method``, ``key``, ``split`` (the cutoff or rule, if
        the training rows were selected from larger data), ``settings`` (of
        the fit, bootstrap or sampler), ``timestamp`` (UTC), jaxscale and jax
        versions.
    """

    law: Law
    points: pd.DataFrame
    predicted: np.ndarray
    log_samples: np.ndarray
    level: float
    method: str
    provenance: dict[str, Any] = field(default_factory=dict)

    def interval(self, level: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Central predictive interval ``(lo, hi)`` at ``level`` (the forecast's own by default)."""
        level = self.level if level is None else _check_level(level)
        a = (1.0 - level) / 2.0
        qlo, qhi = np.quantile(self.log_samples, [a, 1.0 - a], axis=0)
        return np.exp(qlo), np.exp(qhi)

    def table(self) -> pd.DataFrame:
        """Forecast points with ``predicted``, ``lo`` and ``hi``."""
        lo, hi = self.interval()
        return self.points.assign(predicted=self.predicted, lo=lo, hi=hi)

    def check(self, actual, *, missing: str = "error", **columns) -> BacktestResult:
        """Score the forecast against what the runs turned out to be.

        Parameters
        ----------
        actual
            The observed targets: an array with one value per forecast point
            (in forecast order), or data (:class:`ScalingData`, DataFrame, CSV
            path or dict of arrays; ``**columns`` maps roles to columns) whose
            rows are matched to forecast points by the law's covariates
            (relative tolerance ``MATCH_RTOL``). A missing ``D`` (or ``C``) is
            derived from ``C = k N D`` with the forecast's own ``k``
            (``provenance["flops_per_token"]``) unless ``flops_per_token=`` is
            given. Rows matching no forecast point are not scored: they are
            counted in ``summary["n_unmatched_rows"]`` and a ``UserWarning``
            says how many.
        missing
            ``"error"`` (default): every forecast point needs exactly one actual
            value. ``"skip"``: forecast points without one are left out of the
            table and counted in ``summary["n_missing"]``.

        Returns
        -------
        BacktestResult
            The same table and summary :func:`backtest` gives.

        Examples
        --------
        Forecast the two largest budgets of the demo data from the six smaller
        ones, then score the forecast once "the runs are done":

        >>> import warnings, jaxscale
        >>> from jaxscale.forecast import forecast
        >>> data = jaxscale.demo_data()
        >>> done = data.subset(data.covariates["C"] > 1.1e21)  # the 24 runs to come
        >>> at = {"N": done.covariates["N"], "C": done.covariates["C"]}  # the planned sizes and budgets
        >>> fc = forecast("chinchilla", data, split={"C": 1.1e21}, at=at, starts=64, key=0)
        >>> res = fc.check(done)  # rows matched to forecast points by (N, D)
        >>> res.summary["n_train"], res.summary["n_test"], int(res.table["covered"].sum())  # 20 of 24 inside 90%
        (72, 24, 20)
        >>> bool(res.summary["median_abs_rel_error"] < 0.02)
        True
        >>> res.table["row"].tolist()[:3] == done.rows[:3].tolist()
        True

        Rows that match no forecast point (here the 72 training runs) are not
        scored, and a warning says so:

        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     whole = fc.check(data)
        >>> whole.summary["n_test"], whole.summary["n_unmatched_rows"]
        (24, 72)
        >>> print(caught[0].message)  # doctest: +ELLIPSIS
        72 of 96 actual rows match no forecast point ...
        """
        if missing not in ("error", "skip"):
            raise DataError(f"missing must be 'error' or 'skip'; got {missing!r}.")
        n = len(self.points)
        extra: dict[str, np.ndarray] = {}
        n_unmatched = 0
        if isinstance(actual, (ScalingData, pd.DataFrame, str, os.PathLike, Mapping)):
            k = self.provenance.get("flops_per_token")
            if not isinstance(actual, ScalingData) and "flops_per_token" not in columns and k is not None:
                columns = {**columns, "flops_per_token": k}  # derive D (or C) as the forecast points were
            data = _coerce(actual, columns)[0]
            idx, n_unmatched = self._match(data)
            have = idx >= 0
            values = np.full(n, np.nan)
            values[have] = data.y[idx[have]]
            rows = np.full(n, None, dtype=object)
            rows[have] = data.rows[idx[have]]
            extra["row"] = rows
            for label in LABEL_KEYS:
                lab = getattr(data, label)
                if lab is not None:
                    col = np.full(n, None, dtype=object)
                    col[have] = lab[idx[have]]
                    extra[label] = col
        else:
            if columns:
                raise DataError("Column mappings apply only when actual is a DataFrame, CSV path or dict.")
            try:
                values = np.asarray(actual, dtype=np.float64).ravel()
            except (TypeError, ValueError):
                raise DataError(f"actual must be numbers (one per forecast point) or data; got {actual!r}.") from None
            if values.shape != (n,):
                raise DataError(f"actual has {values.size} values; expected {n}, one per forecast point "
                                f"(in forecast order). NaN marks a point not run (with missing='skip').")
            have = np.isfinite(values)
            bad = np.flatnonzero(have & (values <= 0))
            if bad.size:
                raise DataError(f"actual value for forecast point {bad[0]} is {values[bad[0]]}; expected > 0.")
        if not have.all() and missing == "error":
            i = int(np.flatnonzero(~have)[0])
            point = ", ".join(f"{c}={self.points[c].iloc[i]:g}" for c in self.law.covariates)
            raise DataError(f"forecast point {i} ({point}) has no actual value ({int((~have).sum())} of {n} missing); "
                            f"pass missing='skip' to score only the points that were run.")
        if not have.any():
            raise DataError("No forecast point has an actual value to score it against.")
        table = self.points[have].reset_index(drop=True)
        for pos, (k, v) in enumerate(extra.items()):  # row, then group, run
            table.insert(pos, k, v[have])
        scores = _score(self.predicted[have], self.log_samples[:, have], values[have], self.level)
        table = pd.concat([table, scores], axis=1)
        summary = _summary(table, self.provenance.get("n_train", -1), self.level, self.method)
        summary["n_missing"] = int((~have).sum())
        if n_unmatched:
            summary["n_unmatched_rows"] = n_unmatched
            warnings.warn(f"{n_unmatched} of {len(data)} actual rows match no forecast point (by "
                          f"{', '.join(self.law.covariates)}, relative tolerance {MATCH_RTOL:g}) and were not scored; "
                          f"summary['n_unmatched_rows'] counts them.", UserWarning, stacklevel=2)
        return BacktestResult(table, summary, self)

    def _match(self, data: ScalingData) -> tuple[np.ndarray, int]:
        """For each forecast point, the index of the one actual row with the same covariates (or -1)."""
        missing = [c for c in self.law.covariates if c not in data.covariates]
        if missing:
            raise DataError(f"actual data lacks {missing}, which identify the forecast points "
                            f"(law {self.law.name!r} uses {list(self.law.covariates)}).")
        pts = self.points[list(self.law.covariates)].to_numpy(np.float64)
        act = np.stack([np.asarray(data.covariates[c], np.float64) for c in self.law.covariates], axis=1)
        idx, used = np.full(len(pts), -1), np.zeros(len(act), bool)
        for lo in range(0, len(pts), 1024):  # chunks bound the (points x rows) comparison's memory
            hit = np.all(np.isclose(pts[lo:lo + 1024, None, :], act[None, :, :], rtol=MATCH_RTOL, atol=0.0), axis=2)
            counts = hit.sum(1)
            if (counts > 1).any():
                i = int(np.flatnonzero(counts > 1)[0])
                raise DataError(f"forecast point {lo + i} matches {int(counts[i])} actual rows "
                                f"({data.rows[np.flatnonzero(hit[i])][:5].tolist()}); each point needs one value.")
            idx[lo:lo + 1024] = np.where(counts == 1, hit.argmax(1), -1)
            used |= hit.any(0)
        return idx, int((~used).sum())

    def to_dict(self, samples: bool | int = True) -> dict[str, Any]:
        """JSON-ready. ``samples``: ``True`` (default) includes every log predictive draw, so that :meth:`load` +
        :meth:`check` reproduce every score exactly; an int ``k`` includes at most ``k`` draws per point (all of them
        when there are no more; otherwise ``k`` evenly spaced ones, the first and last included, so scores agree
        within the Monte-Carlo error of ``k`` draws); ``False`` none (a report, which :meth:`load` refuses)."""
        lo, hi = self.interval()
        out = {
            "format": FORECAST_FORMAT,
            "law": self.law.name,
            "law_options": _json_safe(dict(self.law.options)),
            "method": self.method,
            "level": self.level,
            "points": {c: self.points[c].astype(float).tolist() for c in self.points.columns},
            "predicted": self.predicted.astype(float).tolist(),
            "lo": lo.tolist(),
            "hi": hi.tolist(),
            "provenance": _json_safe(self.provenance),
            "n_draws": int(self.log_samples.shape[0]),
        }
        if samples is not False:
            draws = self.log_samples[_thin(self.log_samples.shape[0], samples)]
            out["n_draws_stored"] = int(draws.shape[0])
            out["log_samples"] = draws.tolist()
        return out

    def to_json(self, path: str | os.PathLike | None = None, samples: bool | int = True) -> str:
        """Serialise :meth:`to_dict` (every draw by default); write it to ``path`` if given.

        Everything :meth:`load` needs is in it: the law and its options, the points, the point forecasts, the level,
        the method, the provenance and the log predictive draws.
        """
        return _write_json(self.to_dict(samples=samples), path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Forecast:
        """Read a forecast written by :meth:`to_json` (or the ``forecast`` of :meth:`BacktestResult.to_json`).

        A forecast stored with fewer draws than it had (``to_json(samples=k)``; ``jaxscale backtest --json`` keeps at
        most ``BACKTEST_SAMPLES``) loads with the stored draws, and its provenance gains
        ``draws_stored = {"kept": k, "of": n}``.

        Examples
        --------
        >>> import os, tempfile, jaxscale
        >>> from jaxscale.forecast import Forecast, forecast
        >>> data = jaxscale.demo_data()
        >>> done = data.subset(data.covariates["C"] > 1.1e21)
        >>> at = {"N": done.covariates["N"], "C": done.covariates["C"]}  # the planned sizes and budgets
        >>> fc = forecast("chinchilla", data, split={"C": 1.1e21}, at=at, starts=64, key=0)
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     _ = fc.to_json(os.path.join(tmp, "forecast.json"))  # written before the runs
        ...     loaded = Forecast.load(os.path.join(tmp, "forecast.json"))
        >>> loaded
        Forecast(chinchilla, fit: 24 points, 72 draws, made ...)
        >>> bool((loaded.log_samples == fc.log_samples).all() and (loaded.predicted == fc.predicted).all())
        True
        >>> loaded.provenance["split"]["cutoff"], loaded.provenance["n_train"]
        ({'C': 1.1e+21}, 72)
        >>> loaded.check(done).summary == fc.check(done).summary  # scored after them: the same numbers
        True
        """
        path = os.fspath(path)
        if not os.path.exists(path):
            raise DataError(f"No such forecast file: {path!r}.")
        try:
            with open(path) as fh:
                doc = json.load(fh)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}: not valid JSON ({e}); expected a file written by Forecast.to_json.") from None
        if isinstance(doc, dict) and doc.get("format") == BACKTEST_FORMAT:
            doc = doc.get("forecast")
        if not isinstance(doc, dict) or doc.get("format") != FORECAST_FORMAT:
            got = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
            raise DataError(f"{path}: not a jaxscale forecast (expected format {FORECAST_FORMAT!r} or "
                            f"{BACKTEST_FORMAT!r}; got {got!r}).")
        if "log_samples" not in doc:
            raise DataError(f"{path}: this forecast was written without its predictive draws (samples=False); "
                            f"it cannot be scored.")
        missing = [k for k in ("law", "method", "level", "points", "predicted") if k not in doc]
        if missing:
            raise DataError(f"{path}: the forecast lacks {missing}; expected a file written by Forecast.to_json.")
        law = get(doc["law"], **doc.get("law_options", {}))
        points = pd.DataFrame({k: np.asarray(v, np.float64) for k, v in doc["points"].items()})
        samples = np.asarray(doc["log_samples"], np.float64)
        predicted = np.asarray(doc["predicted"], np.float64)
        if samples.ndim != 2 or samples.shape[1] != len(points) or predicted.shape != (len(points),):
            raise DataError(f"{path}: log_samples {samples.shape} and predicted {predicted.shape} do not match "
                            f"{len(points)} forecast points.")
        provenance = dict(doc.get("provenance", {}))
        n_draws = doc.get("n_draws", samples.shape[0])
        if samples.shape[0] < n_draws:
            provenance["draws_stored"] = {"kept": int(samples.shape[0]), "of": int(n_draws)}
        return cls(law, points, predicted, samples, float(doc["level"]), doc["method"], provenance)

    def report(self, max_rows: int = 40) -> str:
        """Readable header and :meth:`table` (first ``max_rows`` rows)."""
        prov = self.provenance
        lines = [f"law: {self.law.name}    {self.law.formula}",
                 (f"method: {self.method}; split: {(prov.get('split') or {}).get('rule', 'n/a (all rows)')}; "
                  f"{prov.get('n_train', '?')} training points; {self.log_samples.shape[0]} predictive draws; "
                  f"{100 * self.level:g}% predictive interval [lo, hi]")]
        with pd.option_context("display.width", 160, "display.max_columns", 30):
            lines.append(self.table().head(max_rows).to_string(index=False, float_format=lambda v: f"{v:.5g}"))
        if len(self.points) > max_rows:
            lines.append(f"... {len(self.points) - max_rows} more points (all are in the JSON output)")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"Forecast({self.law.name}, {self.method}: {len(self.points)} points, {self.log_samples.shape[0]} "
                f"draws, made {self.provenance.get('timestamp', '?')})")


@dataclass(frozen=True, eq=False)
class BacktestResult:
    """Scores of a forecast against held-out (or later) data.

    Attributes
    ----------
    table
        One row per scored point: ``row`` (the data's row label) and ``group``
        / ``run`` when the data has them, the covariates, ``actual``,
        ``predicted``, ``rel_error``, ``log_error``, ``lo``, ``hi``,
        ``covered``, ``pinball``, ``crps``.
    summary
        ``n_train``, ``n_test``, ``median_abs_rel_error``,
        ``mean_abs_rel_error``, ``rmse_log`` (root mean squared log error, the
        extrapolation RMSE of Alabdulmohsin et al. 2022), ``coverage`` (share
        of points inside the interval), ``level``, ``mean_pinball``,
        ``mean_crps``, ``n_missing``.
    forecast
        The :class:`Forecast` that was scored (write it with ``to_json``).
    """

    table: pd.DataFrame
    summary: dict[str, Any]
    forecast: Forecast

    @property
    def provenance(self) -> dict[str, Any]:
        return self.forecast.provenance

    def to_dict(self, samples: bool | int = BACKTEST_SAMPLES) -> dict[str, Any]:
        """JSON-ready: ``summary``, ``table`` (records) and ``forecast``, with at most ``samples`` of its predictive
        draws per point (see :meth:`Forecast.to_dict`), so that :meth:`Forecast.load` can read it back."""
        records = [{k: _json_safe(v) for k, v in r.items()} for r in self.table.to_dict(orient="records")]
        return {"format": BACKTEST_FORMAT, "summary": _json_safe(self.summary), "table": records,
                "forecast": self.forecast.to_dict(samples=samples)}

    def to_json(self, path: str | os.PathLike | None = None, samples: bool | int = BACKTEST_SAMPLES) -> str:
        """Serialise :meth:`to_dict`; write it to ``path`` if given. :meth:`Forecast.load` reads its forecast
        (exactly, when it has at most ``samples`` draws: every ``fit`` and default ``bootstrap`` forecast)."""
        return _write_json(self.to_dict(samples=samples), path)

    def report(self, max_rows: int = 40) -> str:
        """Readable table (first ``max_rows`` rows) and summary."""
        s, prov = self.summary, self.provenance
        pct = f"{100 * s['level']:g}%"
        lines = [f"law: {self.forecast.law.name}    {self.forecast.law.formula}",
                 (f"method: {s['method']}; split: {(prov.get('split') or {}).get('rule', 'n/a')}; "
                  f"{s['n_train']} training points, {s['n_test']} scored")]
        cols = [c for c in self.table.columns if c not in ("log_error",)]
        shown = self.table[cols].head(max_rows)
        with pd.option_context("display.width", 160, "display.max_columns", 30):
            lines.append(shown.to_string(index=False, float_format=lambda v: f"{v:.5g}"))
        if len(self.table) > max_rows:
            lines.append(f"... {len(self.table) - max_rows} more rows (all are in the JSON / CSV output)")
        lines.append(f"median |rel error| {s['median_abs_rel_error']:.4g}, mean {s['mean_abs_rel_error']:.4g}, "
                     f"RMSE(log) {s['rmse_log']:.4g}; {pct} interval coverage {s['coverage']:.3f} "
                     f"({int(self.table['covered'].sum())}/{s['n_test']}); mean pinball {s['mean_pinball']:.4g}, "
                     f"mean CRPS {s['mean_crps']:.4g}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        s = self.summary
        return (f"BacktestResult({self.forecast.law.name}, {s['method']}: {s['n_train']} train / {s['n_test']} "
                f"test, median |rel error| {s['median_abs_rel_error']:.3g}, coverage {s['coverage']:.3g})")


# --------------------------------------------------------------------------- entry points


def _make_forecast(law: Law, train: ScalingData, points: pd.DataFrame, *, method, level, key, resamples, kwargs,
                   split_desc, full: ScalingData | None) -> Forecast:
    if isinstance(resamples, bool) or not isinstance(resamples, (int, np.integer)) or resamples < 2:
        raise FitError(f"resamples must be an integer >= 2; got {resamples!r}.")
    if method not in METHODS:
        raise FitError(f"method must be one of {list(METHODS)}; got {method!r}.")
    if key is None:
        raise FitError("key must be an int seed or a JAX key (it seeds the fit's random starts, the resamples or "
                       "the sampler, and the predictive noise); same key, same forecast.")
    if method != "bootstrap" and "bootstrap_method" in kwargs:
        raise FitError(f"bootstrap_method applies to method='bootstrap' only (got method={method!r}).")
    predicted, log_samples, settings = _predictive(law, train, points, method, key, int(resamples), kwargs)
    provenance = {
        "data_fingerprint": train.fingerprint(),
        "data_source": train.source,
        "n_train": len(train),
        "target": train.target_name,
        "flops_per_token": train.flops_per_token,
        "law": law.name,
        "law_options": dict(law.options),
        "method": method,
        "level": level,
        "key": _key_repr(key),
        "resamples": int(resamples) if method == "bootstrap" else None,
        "split": split_desc,
        "settings": settings,
        "timestamp": _now(),
        "jaxscale_version": __version__,
        "jax_version": jax.__version__,
    }
    if full is not None:
        provenance["full_data_fingerprint"] = full.fingerprint()
        provenance["n_data"] = len(full)
    return Forecast(law, points, predicted, log_samples, level, method, _json_safe(provenance))


def forecast(law: str | Law, data, *, at, method: str = "fit", level: float = 0.9, key=0, split=None,
             resamples: int = 200, **kwargs) -> Forecast:
    """Forecast the target at points not yet run, with a predictive interval and provenance.

    Parameters
    ----------
    law
        A law name or :class:`~jaxscale.laws.Law`.
    data
        The runs so far: :class:`ScalingData`, a DataFrame, a CSV path or a
        dict of arrays (roles such as ``N="Model Size"`` among ``**kwargs``
        map columns).
    at
        The points to forecast: a mapping of covariates to values (scalars
        broadcast), a DataFrame of covariate columns, or a ScalingData. A
        missing ``D`` (or ``C``) is derived from ``C = k N D`` as in the data.
    method
        ``"fit"``, ``"bootstrap"`` or ``"bayes"`` (see the module docstring).
    level
        Level of the central predictive interval (0.9).
    key
        Int seed or JAX key: passed as is to :func:`jaxscale.fit` /
        :func:`jaxscale.bootstrap` / :func:`jaxscale.bayes.sample` (so the
        model inside is exactly the one those give with that key) and also
        seeds the predictive noise. Same key, same forecast.
    split
        Optional: fit only the rows a split selects (as in :func:`backtest`),
        recorded in the provenance. Either way ``fit`` and ``bootstrap`` need
        more training points than free parameters, ``bayes`` at least as many.
    resamples
        Bootstrap replicates (``method="bootstrap"``).
    **kwargs
        Column roles, then options of the fit (``starts``, ``objective``,
        ``fixed`` ...), the bootstrap (``bootstrap_method``, ``starts="warm"``
        ...) or the sampler (``num_warmup``, ``num_samples``, ``num_chains``,
        ``likelihood`` ...).

    Examples
    --------
    >>> import numpy as np, jaxscale
    >>> from jaxscale.forecast import Forecast, forecast
    >>> x = np.logspace(2, 5, 20)
    >>> fc = forecast("power", {"x": x, "loss": 0.5 + 40.0 * x ** -0.3}, at={"x": [1e6, 1e7]}, starts=64, key=0)
    >>> list(fc.table().columns)
    ['x', 'predicted', 'lo', 'hi']
    >>> res = fc.check([0.5 + 40.0 * 1e6 ** -0.3, 0.5 + 40.0 * 1e7 ** -0.3])
    >>> bool(res.summary["median_abs_rel_error"] < 1e-4)
    True
    """
    level = _check_level(level)
    law = get(law)
    columns, kwargs = _split_kwargs(kwargs)
    full, frame = _coerce(data, columns)
    _require_covariates(law, full)
    mask, desc = _split_mask(split, full, frame) if split is not None else (None, None)
    return _forecast(law, full, mask, desc, split, at, method=method, level=level, key=key, resamples=resamples,
                     kwargs=kwargs)


def _forecast(law: Law, full: ScalingData, mask, desc, split, at, *, method, level, key, resamples,
              kwargs) -> Forecast:
    """:func:`forecast` after its inputs are parsed: ``mask`` (or None: all rows) selects the training rows."""
    n_free = _n_free(law, method, kwargs)
    if mask is not None:
        desc = dict(desc, n_train=int(mask.sum()), n_rest=int((~mask).sum()))
        _check_counts(split, desc, law, desc["n_train"], desc["n_rest"], n_free, method, need_test=False)
        train = full.subset(mask)
    elif tail := _too_few(len(full), n_free, law, method):
        raise DataError(f"data has {len(full)} point(s); {tail}")
    else:
        train = full
    points = _points(law, at, full.flops_per_token)
    return _make_forecast(law, train, points, method=method, level=level, key=key, resamples=resamples,
                          kwargs=kwargs, split_desc=desc, full=full if mask is not None else None)


def backtest(law: str | Law, data, *, split, method: str = "fit", level: float = 0.9, key=0, resamples: int = 200,
             **kwargs) -> BacktestResult:
    """Fit on the points a split keeps, forecast the held-out points, and score the forecast.

    Parameters
    ----------
    law, data, method, level, key, resamples, **kwargs
        As for :func:`forecast`.
    split
        Which points to fit (the rest are held out and scored):

        * a mapping ``{column: cutoff}``: fit the rows with
          ``column <= cutoff`` (every condition, if several), e.g.
          ``{"C": 1e21}``. ``column`` is a role (``N``, ``D``, ``C``, ``U``,
          ``x``, ``loss``) or, when ``data`` is a DataFrame or CSV path, any
          numeric column of it;
        * the name of a 0/1 (or boolean) column: 1 = fit, 0 = held out, e.g.
          ``"Training"`` in Alabdulmohsin et al.'s benchmark;
        * a boolean array with one entry per row: True = fit.

        A split that leaves no held-out point, or too few training points, is
        a :class:`~jaxscale.DataError`: ``fit`` and ``bootstrap`` need more
        training points than free parameters (their intervals come from the
        training residuals), ``bayes`` at least as many.

    Returns
    -------
    BacktestResult
        ``table`` (one row per held-out point), ``summary`` and ``forecast``.

    Examples
    --------
    >>> import jaxscale
    >>> from jaxscale.forecast import backtest
    >>> bt = backtest("chinchilla", jaxscale.demo_data(), split={"C": 1.1e21}, starts=64, key=0)
    >>> bt.summary["n_train"], bt.summary["n_test"]
    (72, 24)
    >>> list(bt.table.columns)[:5]
    ['row', 'N', 'D', 'C', 'actual']
    >>> bool(bt.summary["median_abs_rel_error"] < 0.02)
    True
    """
    level = _check_level(level)
    law = get(law)
    columns, kwargs = _split_kwargs(kwargs)
    full, frame = _coerce(data, columns)
    _require_covariates(law, full)
    mask, desc = _split_mask(split, full, frame)
    return _backtest(law, full, mask, desc, split, method=method, level=level, key=key, resamples=resamples,
                     kwargs=kwargs)


def _backtest(law, full: ScalingData, mask, desc, split, *, method, level, key, resamples, kwargs) -> BacktestResult:
    _require_covariates(law, full)
    n_train, n_test = int(mask.sum()), int((~mask).sum())
    _check_counts(split, desc, law, n_train, n_test, _n_free(law, method, kwargs), method)
    desc = dict(desc, n_train=n_train, n_test=n_test)
    train, test = full.subset(mask), full.subset(~mask)
    points = pd.DataFrame({k: np.asarray(test.covariates[k]) for k in COVARIATE_KEYS if k in test.covariates})
    fc = _make_forecast(law, train, points, method=method, level=level, key=key, resamples=resamples, kwargs=kwargs,
                        split_desc=desc, full=full)
    res = fc.check(np.asarray(test.y))
    table, pos = res.table, 0
    for name, labels in (("row", test.rows), ("group", test.group), ("run", test.run)):
        if labels is not None:
            table.insert(pos, name, np.asarray(labels))
            pos += 1
    return BacktestResult(table, res.summary, fc)


# --------------------------------------------------------------------------- command line


def _cutoff(text: str) -> tuple[str, float]:
    import argparse

    for sep in ("<=", "="):
        if sep in text:
            name, value = text.split(sep, 1)
            break
    else:
        raise argparse.ArgumentTypeError(f"--cutoff expects COLUMN=VALUE (fit the rows with COLUMN <= VALUE), "
                                         f"e.g. C=1e21; got {text!r}")
    try:
        v = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--cutoff {name}: the value must be a number; got {value!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"--cutoff {name}: the value must be finite; got {value!r}")
    return name.strip(), v


def _at_point(text: str) -> dict[str, float]:
    import argparse

    out: dict[str, float] = {}
    for part in text.split(","):
        if "=" not in part:
            raise argparse.ArgumentTypeError(f"--at expects ROLE=VALUE[,ROLE=VALUE...], e.g. N=7e10,D=1.4e12; "
                                             f"got {text!r}")
        name, value = (t.strip() for t in part.split("=", 1))
        try:
            out[name] = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"--at {name}: the value must be a number; got {value!r}") from None
    if len(out) != len(text.split(",")):
        raise argparse.ArgumentTypeError(f"--at gives a covariate twice: {text!r}")
    return out


def _add_model_args(p) -> None:
    """Options shared by ``backtest`` and ``forecast``: how the predictive distribution is made."""
    from jaxscale.cli import _boot_starts

    p.set_defaults(objective=None, delta=None)  # None = not given: --method bayes rejects them when given
    p.add_argument("--method", choices=list(METHODS), default="fit",
                   help="point fit with a residual interval (default), bootstrap predictive interval, or posterior "
                        "predictive (NUTS)")
    p.add_argument("--level", type=float, default=0.9, help="predictive interval level (default 0.9)")
    p.add_argument("--starts", type=_boot_starts, default=None,
                   help="starts of the fit (default 'grid'); for --method bootstrap also 'warm' (the default there)")
    p.add_argument("-n", "--resamples", type=int, default=200, help="bootstrap resamples (default 200)")
    p.add_argument("--bootstrap-method", choices=["pairs", "residual", "cluster"], default="pairs")
    p.add_argument("--warmup", type=int, default=1000, help="NUTS warmup per chain (--method bayes; default 1000)")
    p.add_argument("--samples", type=int, default=1000, help="NUTS draws per chain (--method bayes; default 1000)")
    p.add_argument("--chains", type=int, default=4, help="NUTS chains (--method bayes; default 4)")


def _add_split_args(p, required: bool) -> None:
    how = p.add_mutually_exclusive_group(required=required)
    rest = "score the rest" if required else "default: fit every row"
    how.add_argument("--cutoff", action="append", type=_cutoff, default=None, metavar="COLUMN=VALUE",
                     help=f"fit the rows with COLUMN <= VALUE ({rest}; repeatable: every condition holds); "
                          "COLUMN is a role (N, D, C, U, x) or a CSV column, e.g. --cutoff C=1e21")
    how.add_argument("--train-flag", metavar="COLUMN",
                     help="a 0/1 column: fit the rows with 1" + (", score the rows with 0" if required else "")
                          + " (e.g. Training)")


def add_backtest_parser(sub) -> Any:
    """Add ``jaxscale backtest`` to an argparse subparsers object; returns the new parser.

    The split is ``--cutoff COLUMN=VALUE`` (fit the rows with
    ``COLUMN <= VALUE``; repeatable, every condition must hold; ``COLUMN<=VALUE``
    is accepted too, quoted for the shell) or ``--train-flag COLUMN`` (a 0/1
    column: 1 = fit, 0 = held out). COLUMN is a role (N, D, C, U, x) or any
    numeric column of the CSV.

    ``--json OUT`` writes the summary, the scored table and the forecast with
    at most ``BACKTEST_SAMPLES`` (1000) predictive draws per point, so it is
    also a loadable forecast: ``jaxscale check OUT LATER.csv`` (or
    :meth:`Forecast.load`) re-scores it, exactly when the forecast has at most
    that many draws (``fit``; ``bootstrap`` up to ``-n 1000``), within the
    Monte-Carlo error of 1000 draws otherwise (``bayes`` by default).
    """
    from jaxscale.cli import _common

    b = sub.add_parser("backtest", help="fit below a cutoff, forecast the held-out runs, score the forecast",
                       description="Fit below a cutoff, forecast the held-out runs and score the forecast. --json "
                                   f"writes the scores and the forecast with at most {BACKTEST_SAMPLES} predictive "
                                   "draws per point: `jaxscale check OUT.json RUNS.csv` can re-score it.")
    _common(b)
    _add_split_args(b, True)
    _add_model_args(b)
    b.add_argument("--csv", metavar="OUT", help="write the scored table as CSV to OUT")
    return b


def add_forecast_parser(sub) -> Any:
    """Add ``jaxscale forecast`` to an argparse subparsers object; returns the new parser.

    ``jaxscale forecast RUNS.csv --at N=7e10,D=1.4e12 [--at ...] --out forecast.json`` fits the law to the runs
    (all of them, or those a ``--cutoff`` / ``--train-flag`` keeps), prints the forecast and writes it with every
    predictive draw and its provenance, before the big runs exist; ``jaxscale check`` scores it later. ``--at-csv
    FILE`` reads the points from a CSV instead (covariate columns found as in the data: ``--col``, else the usual
    names; other columns are ignored). Data, law and fit options are those of ``backtest``.
    """
    from jaxscale.cli import _common

    f = sub.add_parser("forecast", help="forecast runs not yet made, with a predictive interval; write it to JSON")
    _common(f)
    where = f.add_mutually_exclusive_group(required=True)
    where.add_argument("--at", action="append", type=_at_point, default=None, metavar="ROLE=VALUE[,...]",
                       help="a point to forecast, e.g. --at N=7e10,D=1.4e12 (repeatable, the same roles each "
                            "time; give D or C, the other is derived from C = k N D)")
    where.add_argument("--at-csv", metavar="FILE", help="CSV of the points to forecast (covariate columns)")
    _add_split_args(f, False)
    _add_model_args(f)
    f.add_argument("--out", dest="json", metavar="FORECAST.json",
                   help="write the forecast (points, predictive draws, provenance) as JSON; same as --json. "
                        "`jaxscale check` reads it")
    return f


def add_check_parser(sub) -> Any:
    """Add ``jaxscale check`` to an argparse subparsers object; returns the new parser.

    ``jaxscale check forecast.json ACTUAL.csv [--col ROLE=COLUMN ...]`` loads a forecast (from ``jaxscale forecast``
    or ``backtest --json``), matches the CSV's rows to its points by the law's covariates and prints the same
    report as ``backtest``; ``--json`` / ``--csv`` write the result.
    """
    from jaxscale.cli import _col

    c = sub.add_parser("check", help="score a saved forecast against the runs' actual results")
    c.add_argument("forecast", help="forecast JSON from `jaxscale forecast --out` (or `jaxscale backtest --json`)")
    c.add_argument("actual", help="CSV of the finished runs; rows are matched to forecast points by the law's "
                                  "covariates")
    c.add_argument("--col", action="append", type=_col, default=[], metavar="ROLE=COLUMN",
                   help="map a role (N, D, C, U, x, loss, group, run) to a column")
    c.add_argument("--flops-per-token", type=float, default=None,
                   help="k in C = k N D for deriving D or C (default: the forecast's own)")
    c.add_argument("--missing", choices=["error", "skip"], default="error",
                   help="a forecast point without a run is an error (default), or is skipped and counted")
    c.add_argument("--json", metavar="OUT", help="write the scores (and the forecast) as JSON to OUT")
    c.add_argument("--csv", metavar="OUT", help="write the scored table as CSV to OUT")
    return c


def _cli_kwargs(args, fixed) -> dict[str, Any]:
    kw: dict[str, Any] = {"fixed": fixed or None}
    if args.method == "bayes":
        given = [f"--{n}" for n, v in (("objective", args.objective), ("delta", args.delta), ("dtype", args.dtype))
                 if v is not None]
        if args.starts is not None:
            given.append("--starts")
        if given:
            raise JaxscaleError(f"{', '.join(given)} apply to --method fit and bootstrap; --method bayes samples the "
                                f"posterior (set --warmup, --samples, --chains).")
        kw.update(num_warmup=args.warmup, num_samples=args.samples, num_chains=args.chains)
        return kw
    kw.update(objective=args.objective or "huber", delta=1e-3 if args.delta is None else args.delta, dtype=args.dtype)
    if args.method == "bootstrap":
        kw.update(starts="warm" if args.starts is None else args.starts, bootstrap_method=args.bootstrap_method)
    else:
        if args.starts == "warm":
            raise JaxscaleError("--starts warm applies to --method bootstrap; give 'grid' or a number of starts.")
        kw["starts"] = "grid" if args.starts is None else args.starts
    return kw


def _cli_inputs(args):
    """``(law, data, frame, mask or None, split description or None, split, fit kwargs)`` of backtest / forecast."""
    from jaxscale.cli import _fixed

    fixed = _fixed(args)
    law = get(args.law, **dict(args.law_option))
    frame = _read_csv(args.data)
    data = ScalingData.from_frame(frame, flops_per_token=args.flops_per_token, source=os.path.abspath(args.data),
                                  **dict(args.col))
    _require_covariates(law, data)
    split = dict(args.cutoff) if args.cutoff else args.train_flag
    mask, desc = _split_mask(split, data, frame) if split is not None else (None, None)
    if args.drop_top_loss:
        kept = data.drop_top(args.drop_top_loss)
        if mask is not None:
            mask = mask[pd.Index(data.rows).get_indexer(kept.rows)]
            desc = dict(desc, rule=f"{desc['rule']} (after dropping the {args.drop_top_loss} highest losses)")
        data = kept
    return law, data, frame, mask, desc, split, _cli_kwargs(args, fixed)


def _print_settings(provenance, args) -> None:
    settings = provenance.get("settings", {})
    if args.method == "bootstrap":
        print(f"bootstrap: {settings['n_draws']} replicates kept of {args.resamples} "
              f"({settings['bootstrap']['n_failed']} failed)")
    if args.method == "bayes" and not settings.get("diagnostics_ok", True):
        print("WARNING: the sampler's diagnostics failed: " + "; ".join(settings["diagnostics"]))


def cli_backtest(args) -> int:
    """Run ``jaxscale backtest`` from parsed arguments: print the table and summary, write JSON / CSV."""
    law, data, _, mask, desc, split, kwargs = _cli_inputs(args)
    res = _backtest(law, data, mask, desc, split, method=args.method, level=args.level, key=args.seed,
                    resamples=args.resamples, kwargs=kwargs)
    print(res.report())
    _print_settings(res.provenance, args)
    if args.json:
        res.to_json(args.json)
        print(f"wrote {args.json}")
    if args.csv:
        res.table.to_csv(args.csv, index=False)
        print(f"wrote {args.csv}")
    return 0


def _at_csv(path: str, columns: Mapping[str, str]) -> dict[str, np.ndarray]:
    """Covariate columns of a points CSV: mapped with ``--col`` (when the CSV has that column), else by their usual
    names (``ALIASES``), else named as the role itself."""
    from jaxscale.data import ALIASES

    frame = _read_csv(path)
    found: dict[str, np.ndarray] = {}
    for role in COVARIATE_KEYS:
        names = [columns[role]] if role in columns else []
        names += [c for a in (role.lower(), *ALIASES.get(role, ())) for c in frame.columns
                  if str(c).strip().lower() == a]
        name = next((n for n in names if n in frame.columns), None)
        if name is not None:
            col = frame[name]
            if col.dtype.kind not in "iuf":
                bad = next((i for i, v in zip(col.index, col) if not _is_number(v)), col.index[0])
                raise DataError(f"--at-csv {path}: column {name!r} ({role}) must hold numbers; row {bad} holds "
                                f"{col.loc[bad]!r}.")
            found[role] = col.to_numpy(dtype=np.float64)
    if not found:
        raise DataError(f"--at-csv {path}: no covariate column (N, D, C, U or x) among {list(frame.columns)}; "
                        f"map one with --col ROLE=COLUMN.")
    return found


def cli_forecast(args) -> int:
    """Run ``jaxscale forecast`` from parsed arguments: print the forecast, write it (loadable) to ``--out``."""
    law, data, _, mask, desc, split, kwargs = _cli_inputs(args)
    level = _check_level(args.level)
    if args.at:
        names = list(args.at[0])
        for i, point in enumerate(args.at[1:], 1):
            if sorted(point) != sorted(names):
                raise DataError(f"--at: every point must give the same covariates; point 1 gives {names}, point "
                                f"{i + 1} gives {list(point)}.")
        at = {k: np.array([point[k] for point in args.at]) for k in names}
    else:
        at = _at_csv(args.at_csv, dict(args.col))
    fc = _forecast(law, data, mask, desc, split, at, method=args.method, level=level, key=args.seed,
                   resamples=args.resamples, kwargs=kwargs)
    print(fc.report())
    _print_settings(fc.provenance, args)
    if args.json:
        fc.to_json(args.json)
        print(f"wrote {args.json}")
    return 0


def cli_check(args) -> int:
    """Run ``jaxscale check`` from parsed arguments: load a forecast, score it against a CSV, print the report."""
    fc = Forecast.load(args.forecast)
    columns: dict[str, Any] = dict(args.col)
    if args.flops_per_token is not None:
        columns["flops_per_token"] = args.flops_per_token
    res = fc.check(args.actual, missing=args.missing, **columns)
    print(res.report())
    if res.summary.get("n_missing"):
        print(f"{res.summary['n_missing']} forecast point(s) had no run and were skipped")
    if res.summary.get("n_unmatched_rows"):
        print(f"{res.summary['n_unmatched_rows']} row(s) of {args.actual} matched no forecast point and were not "
              f"scored")
    if args.json:
        res.to_json(args.json)
        print(f"wrote {args.json}")
    if args.csv:
        res.table.to_csv(args.csv, index=False)
        print(f"wrote {args.csv}")
    return 0


__all__ = ["BACKTEST_SAMPLES", "METHODS", "BacktestResult", "Forecast", "add_backtest_parser", "add_check_parser",
           "add_forecast_parser", "backtest", "cli_backtest", "cli_check", "cli_forecast", "crps_samples", "forecast"]
