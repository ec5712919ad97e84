"""Predictive distributions: one registry of functions with one signature, ``fn(problem) -> Predictive``.

Every method returns log predictive draws ``(S, n_points)`` on the log scale of the target (where the laws are
fitted), the point forecast and the settings that made them (see the package docstring for what each covers).
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from jaxscale import validate
from jaxscale._io import json_safe
from jaxscale.data import ScalingData
from jaxscale.errors import ArgumentError, FitError
from jaxscale.forecast.calibration import CalibrationUnavailable, calibrate, log_predict
from jaxscale.laws import Law

_NOISE_TAG = 0x666F7265  # separates the predictive-noise stream from the model's own use of the key
_HERE = os.path.dirname(os.path.abspath(__file__))
#: Fewest runs a run-aware interval (cluster bootstrap, per-run effect) is trusted with, without a warning.
MIN_RUNS = 3


class Problem(NamedTuple):
    """What every predictive method gets: the law, the training data, the points (and their log covariates),
    the key, the bootstrap size, the fit / bootstrap / sampler options, the extrapolation axis, the number
    of free parameters, optionally the leave-future-out cutoffs (log axis) shared by several laws, and the
    ``progress`` of the bootstrap or sampler inside (see :func:`jaxscale.bootstrap`)."""

    law: Law
    train: ScalingData
    points: pd.DataFrame
    logx: np.ndarray
    key: Any
    resamples: int
    options: dict[str, Any]
    axis: str
    n_free: int
    cutoffs: np.ndarray | None = None
    progress: Any = None


class Predictive(NamedTuple):
    predicted: np.ndarray  # (n_points,) point forecast, natural scale
    log_samples: np.ndarray  # (S, n_points)
    settings: dict[str, Any]
    calibration: Any = None  # the Calibration of a calibrated forecast (stacking scores laws with it)


def warn_user(message: str, category=RuntimeWarning) -> None:
    """Warn at the first caller outside the forecast package (the user's line)."""
    level, frame = 2, sys._getframe(1)
    while frame is not None and os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == _HERE:
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


def note(settings: dict[str, Any], message: str) -> None:
    """Warn (at the user's line) and record the warning in ``settings["warnings"]``."""
    warn_user(message)
    settings.setdefault("warnings", []).append(message)


def noise_rng(key) -> np.random.Generator:
    """The predictive noise's own NumPy stream from ``key`` (int seed or JAX key), apart from the model's use of it."""
    return np.random.default_rng([*validate.key_words(key).tolist(), _NOISE_TAG])


def finite_draws(mu: np.ndarray, what: str, settings: dict[str, Any]) -> np.ndarray:
    good = np.all(np.isfinite(mu), axis=1)
    n_bad = int((~good).sum())
    if not good.any():
        raise FitError(f"Every one of the {len(good)} {what} gives a non-finite prediction at the forecast points.")
    if n_bad:
        note(settings, f"{n_bad} of {len(good)} {what} give a non-finite prediction at the forecast points and are "
                       f"excluded from the forecast.")
    settings["n_draws_nonfinite"] = n_bad
    return good


def scaled_residuals(law: Law, theta: np.ndarray, data: ScalingData, n_free: int) -> np.ndarray:
    logx, logy = data.design(law.covariates, law.name)
    resid = logy - log_predict(law, theta, logx)[0]
    n = len(resid)
    if n <= n_free:  # check_counts / forecast() reject this first; never fall back to an unscaled, ~0 residual
        raise FitError(f"{n} training point(s) for {n_free} free parameter(s): residual-based predictive intervals "
                       f"need at least one residual degree of freedom (more than {n_free} points).")
    return resid * math.sqrt(n / (n - n_free))


def n_runs(data: ScalingData) -> int:
    """Distinct runs with two or more rows each count; 0 when the data has no run column or one row per run."""
    if data.run is None:
        return 0
    _, counts = np.unique(np.asarray(data.run).astype(str), return_counts=True)
    return int(counts.size) if (counts > 1).any() else 0


def fit_options(options: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in options.items() if k != "bootstrap_method"}


def fit_predictive(problem: Problem) -> Predictive:
    """The point fit's prediction plus each of its scaled training log residuals: noise only."""
    from jaxscale.fit import fit

    law = problem.law
    res = fit(law, problem.train, key=problem.key, **fit_options(problem.options))
    mu = log_predict(law, res.theta, problem.logx)[0]
    if not np.all(np.isfinite(mu)):
        raise FitError("The fit gives a non-finite prediction at a forecast point.")
    resid = scaled_residuals(law, res.theta, problem.train, problem.n_free)
    settings = {"fit": res.to_dict(), "residual_scale": "sqrt(n/(n-p))", "n_draws": int(resid.size)}
    return Predictive(np.exp(mu), mu[None, :] + resid[:, None], settings)


def bootstrap_predictive(problem: Problem) -> Predictive:
    """Each bootstrap replicate's prediction plus one resampled scaled training residual: parameters and noise.

    Checkpoints of one run are not independent: when the data has a ``run`` column (some run with several rows)
    the default resampling is ``cluster`` (whole runs).
    """
    from jaxscale.uncertainty import bootstrap

    law, train, settings = problem.law, problem.train, {}
    if "method" in problem.options:
        raise ArgumentError("Pass the bootstrap's resampling scheme as bootstrap_method= ('pairs', 'residual' or "
                       "'cluster'); method= chooses 'calibrated', 'fit', 'bootstrap' or 'bayes'.")
    kw = dict(problem.options)
    runs = n_runs(train)
    scheme = kw.pop("bootstrap_method", None) or ("cluster" if runs else "pairs")
    if scheme == "cluster":
        n_clusters = runs or len(np.unique(np.asarray(train.run if train.run is not None else
                                                      (train.group if train.group is not None else [])).astype(str)))
        if train.run is not None and n_clusters == 1:
            raise FitError(f"The training data hold a single run ({np.asarray(train.run)[0]!r}): a cluster bootstrap "
                           f"resamples runs and needs at least 2. Pass bootstrap_method='pairs' to treat its "
                           f"checkpoints as independent (the interval is then too narrow), or add runs.")
        if 1 < n_clusters < MIN_RUNS:
            note(settings, f"cluster bootstrap over {n_clusters} runs: each resample is one of only "
                           f"{n_clusters ** n_clusters} run combinations, so the interval shows little more than "
                           f"the spread between these runs, not the uncertainty of a new run. Give at least "
                           f"{MIN_RUNS} runs.")
    kw["method"] = scheme
    if problem.progress is not None:  # else bootstrap's own default
        kw["progress"] = problem.progress
    b = bootstrap(law, train, problem.resamples, problem.key, **kw)
    mu = log_predict(law, b.theta_draws, problem.logx)
    mu = mu[finite_draws(mu, "bootstrap replicates", settings)]
    resid = scaled_residuals(law, b.point.theta, train, problem.n_free)
    samples = mu + resid[noise_rng(problem.key).integers(0, resid.size, size=mu.shape)]
    settings.update({"bootstrap": json_safe({k: v for k, v in b.to_dict(draws=False).items() if k != "derived"}),
                     "bootstrap_method": scheme, "point_fit_params": b.point.params,
                     "residual_scale": "sqrt(n/(n-p))", "n_draws": int(mu.shape[0])})
    return Predictive(np.exp(np.median(mu, axis=0)), samples, settings)


def bayes_predictive(problem: Problem) -> Predictive:
    """The posterior predictive: each draw's prediction plus the likelihood's noise (and a new run's offset)."""
    from jaxscale import bayes
    from jaxscale._draws import param_source

    law, settings = problem.law, {}
    kw = dict(problem.options)
    kw.setdefault("warn", False)
    if problem.progress is not None:  # else the sampler's own default (no bar)
        kw["progress"] = problem.progress
    idata = bayes.sample(law, problem.train, key=problem.key, **kw)
    src = param_source(idata, law)
    # unchecked: a draw whose positive parameter underflowed to 0 still predicts (its term vanishes)
    theta = law.from_natural({k: src.draws[k].to_numpy(np.float64) for k in law.param_names}, check=False)
    mu = log_predict(law, theta, problem.logx)
    post = idata.posterior
    rng = noise_rng(problem.key)
    sigma = np.asarray(post["sigma"], np.float64).reshape(-1)
    if post.attrs.get("likelihood", "student_t") == "student_t":
        dfv = (np.asarray(post["df"], np.float64).reshape(-1) if "df" in post
               else np.full(sigma.shape, float(post.attrs["df_fixed"])))
        noise = rng.standard_t(np.broadcast_to(dfv[:, None], mu.shape))
    else:
        noise = rng.standard_normal(mu.shape)
    offset = bayes.new_run_offsets(idata, rng)[:, None]
    good = finite_draws(mu, "posterior draws", settings)
    mu, samples = mu[good], (mu + offset + sigma[:, None] * noise)[good]
    diag = bayes.diagnose(idata)
    if not diag.ok:
        note(settings, "the posterior failed its diagnostics (" + "; ".join(diag.problems) + "): its predictive "
                       "interval is not trustworthy. Sample longer (num_warmup=, num_samples=), or use "
                       "method='calibrated'.")
    attrs = {k: v for k, v in post.attrs.items() if k not in ("created_at",)}
    settings.update({"bayes": json_safe(attrs), "n_draws": int(mu.shape[0]), "diagnostics_ok": diag.ok,
                     "diagnostics": list(diag.problems), "run_effect": bool(offset.any())})
    return Predictive(np.exp(np.median(mu, axis=0)), samples, settings)


def calibrated_predictive(problem: Problem) -> Predictive:
    """The point fit's prediction with the leave-future-out calibrated error at each point's distance: noise,
    parameter uncertainty and the error of extrapolating (see :mod:`jaxscale.forecast.calibration`)."""
    from jaxscale.fit import fit

    law = problem.law
    if problem.axis not in problem.points:
        raise FitError(f"The forecast points lack the extrapolation axis {problem.axis!r}; give it in at=.")
    res = fit(law, problem.train, key=problem.key, **fit_options(problem.options))
    mu = log_predict(law, res.theta, problem.logx)[0]
    if not np.all(np.isfinite(mu)):
        raise FitError("The fit gives a non-finite prediction at a forecast point.")
    rng = noise_rng(problem.key)
    try:
        cal = calibrate(law, problem.train, res.theta, problem.n_free, axis=problem.axis, options=problem.options,
                        key=int(rng.integers(2**63)), cutoffs=problem.cutoffs)
    except CalibrationUnavailable as e:
        out = bootstrap_predictive(problem._replace(options=fit_options(problem.options)))
        note(out.settings, f"{e} Fell back to method='bootstrap' (parameter uncertainty and noise only; the error "
                           f"of extrapolating is not in the interval).")
        out.settings["fallback"] = {"method": "bootstrap", "reason": str(e)}
        return out
    axis_values = problem.points[problem.axis].to_numpy(np.float64)
    samples = cal.log_samples(mu, axis_values, rng)
    settings = {"fit": res.to_dict(), "calibration": cal.to_dict(), "n_draws": int(samples.shape[0]),
                "distance": cal.distance(axis_values).tolist(), "scale": cal.scale(cal.distance(axis_values)).tolist()}
    return Predictive(np.exp(mu), samples, settings, cal)


PredictiveFn = Callable[[Problem], Predictive]
#: The predictive methods by name; each takes a :class:`Problem` and returns a :class:`Predictive`.
PREDICTIVES: dict[str, PredictiveFn] = {
    "calibrated": calibrated_predictive,
    "fit": fit_predictive,
    "bootstrap": bootstrap_predictive,
    "bayes": bayes_predictive,
}
