"""The entry points :func:`forecast` and :func:`backtest`, and the forecast they share (one law, or a stack)."""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Sequence

import jax
import numpy as np
import pandas as pd

from jaxscale import validate
from jaxscale._version import __version__
from jaxscale import schedule
from jaxscale.data import COVARIATE_KEYS, ScalingData
from jaxscale.errors import ArgumentError, DataError, FitError, JaxscaleError, LawError
from jaxscale.forecast._inputs import coerce, drop_top, points as make_points, require_covariates, split_kwargs
from jaxscale._io import json_safe
from jaxscale.forecast._predictive import PREDICTIVES, Predictive, Problem, noise_rng, note, warn_user
from jaxscale.forecast._results import BacktestResult, Forecast, now
from jaxscale.forecast._split import METHODS, check_counts, extrapolation_axis, n_free as count_free, split_mask, too_few
from jaxscale.forecast.calibration import REFIT_OPTIONS, CalibrationUnavailable, calibrate, fold_cutoffs
from jaxscale.forecast.stacking import stacking_weights
from jaxscale.laws import Law, get


def resolve_laws(law) -> tuple[Law, ...]:
    """One law (a name or :class:`~jaxscale.laws.Law`), or several for a stacked forecast, each named once.

    >>> [law.name for law in resolve_laws(["chinchilla", "kaplan"])]
    ['chinchilla', 'kaplan']
    """
    items = [law] if isinstance(law, (str, Law)) else law
    if not isinstance(items, Sequence) or not items:
        raise LawError(f"law must be a law name, a Law, or a non-empty list of them (a stack); got {law!r}.")
    laws = tuple(get(x) for x in items)
    names = [x.name for x in laws]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise LawError(f"law list names {repeated} more than once; give each law once (got {names}).")
    return laws


def _checked(laws, method, level, key, resamples, kwargs, progress=None) -> float:
    """The level, after checking every argument a forecast takes (before any data are read or fitted)."""
    from jaxscale import progress as progress_mod
    from jaxscale.objectives import make_objective
    from jaxscale.uncertainty import METHODS as BOOTSTRAP_METHODS, START_KINDS

    method = validate.choice(method, "method", METHODS)
    level = validate.level(level)
    validate.key_words(key)
    validate.integer(resamples, "resamples", minimum=2)
    validate.n_starts(resamples, max(x.n_params for x in laws), "resamples")
    if "bootstrap_method" in kwargs:
        if method not in ("bootstrap", "calibrated"):
            raise ArgumentError(f"bootstrap_method applies to method='bootstrap' only (got method={method!r}).")
        if kwargs["bootstrap_method"] is not None:
            validate.choice(kwargs["bootstrap_method"], "bootstrap_method", BOOTSTRAP_METHODS)
    for x in laws:
        validate.fixed(x, kwargs.get("fixed"))
    if method != "bayes":
        make_objective(kwargs.get("objective", "huber"), kwargs.get("delta", 1e-3))
        validate.dtype(kwargs.get("dtype"))
        starts = kwargs.get("starts", "grid")
        if isinstance(starts, (numbers.Integral, np.bool_)):
            for x in laws:
                validate.n_starts(starts, x.n_params)
        elif isinstance(starts, str):
            kinds = START_KINDS if method == "bootstrap" else ("grid",)
            if starts not in kinds:
                tail = ("" if method == "bootstrap" else
                        "; 'auto' and 'warm' (starts at the point fit's optima) apply to method='bootstrap'")
                raise ArgumentError(f"starts must be one of {list(kinds)}, a number of random starts or an array "
                                    f"for method={method!r}; got {starts!r}{tail}.")
    progress_mod.check(progress)
    return level


def _recorded(fn, problem: Problem) -> Predictive:
    """Run a predictive method; warnings from inside it (failed replicates, diagnostics, few runs) are re-raised
    at the caller's line and recorded in its settings, so the forecast carries them."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn(problem)
    seen = set(out.settings.get("warnings", []))
    for w in caught:
        message = str(w.message)
        if message in seen:  # noted already (and re-raised below)
            continue
        if issubclass(w.category, (RuntimeWarning, UserWarning)):
            note(out.settings, message)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    for message in out.settings.get("warnings", []):
        if message in seen:
            warn_user(message)
    return out


def _problem(law: Law, train: ScalingData, points: pd.DataFrame, method, key, resamples, kwargs, axis,
             cutoffs=None, progress=None) -> Problem:
    from jaxscale.laws._registry import log_covariates

    logx = log_covariates(law, {c: points[c].to_numpy() for c in law.covariates})
    return Problem(law, train, points, logx, key, int(resamples), dict(kwargs), axis, count_free(law, method, kwargs),
                   cutoffs, progress)


def _stack(laws, train, points, method, key, resamples, kwargs, axis, progress=None):
    """Each law's predictive, the stacking weights from their leave-future-out scores, and the mixture."""
    t = np.log(np.asarray(train.covariates[axis], np.float64))
    # Folds shared by every law need enough points below each cutoff for the law with the most parameters; a law
    # the data cannot give folds for gets weight 0 (with the reason), the others are stacked on their folds.
    reasons, usable, cutoffs = {}, list(laws), None
    while usable:
        need = max(count_free(law, method, kwargs) for law in usable) + 2
        try:
            cutoffs = fold_cutoffs(t, need)
            break
        except CalibrationUnavailable as e:
            for law in [x for x in usable if count_free(x, method, kwargs) + 2 == need]:
                reasons[law.name] = str(e)
                usable.remove(law)
    if not usable:
        raise DataError(f"Stacking {[law.name for law in laws]} scores each law's leave-future-out forecasts, but no "
                        f"law gets folds from these data: " + "; ".join(f"{k}: {v}" for k, v in reasons.items()))
    parts, cals = {}, {}
    for law in usable:
        problem = _problem(law, train, points, method, key, resamples, kwargs, axis, cutoffs, progress)
        try:
            pred = _recorded(PREDICTIVES[method], problem)
            cal = pred.calibration
            if cal is None:
                from jaxscale.fit import fit

                point_options = {k: kwargs[k] for k in ("starts", *REFIT_OPTIONS) if k in kwargs}
                if isinstance(point_options.get("starts"), str):  # "auto" / "warm": the bootstrap's point fit
                    point_options["starts"] = "grid"
                theta = fit(law, train, key=key, **point_options).theta
                cal = calibrate(law, train, theta, problem.n_free, axis=axis, options=kwargs,
                                key=int(noise_rng(key).integers(2**63)), cutoffs=cutoffs)
        except JaxscaleError as e:
            reasons[law.name] = str(e)
            continue
        parts[law.name], cals[law.name] = pred, cal
    if not parts:
        raise FitError("No law of the stack could be fitted and calibrated: "
                       + "; ".join(f"{k}: {v}" for k, v in reasons.items()))
    weights, info = stacking_weights(cals) if len(cals) > 1 else ({next(iter(cals)): 1.0}, {"n_pairs": 0})
    weights = {law.name: float(weights.get(law.name, 0.0)) for law in laws}
    rng = noise_rng(key)
    S = max(p.log_samples.shape[0] for p in parts.values())
    counts = dict(zip(parts, rng.multinomial(S, [weights[k] for k in parts])))
    draws = [p.log_samples[rng.choice(p.log_samples.shape[0], counts[k], replace=counts[k] > p.log_samples.shape[0])]
             for k, p in parts.items()]
    predicted = np.exp(sum(weights[k] * np.log(p.predicted) for k, p in parts.items()))
    stacking = {"weights": weights, "reasons": reasons, "n_pairs": info["n_pairs"],
                "cutoffs": np.exp(cutoffs).tolist(), "axis": axis,
                "method": "stacking (Yao et al. 2018) on leave-future-out log scores",
                "solver": info.get("method"), **{k: info[k] for k in ("n_iter", "objective", "gap") if k in info}}
    per_law = {k: p.settings for k, p in parts.items()}
    warned = [f"{k}: {m}" for k, s in per_law.items() for m in s.get("warnings", [])]
    for k, reason in reasons.items():
        warn_user(f"law {k!r} gets weight 0 in the stack: {reason}")
        warned.append(f"{k}: weight 0: {reason}")
    settings = {"n_draws": int(S), "stacked": list(parts), "warnings": warned}
    return predicted, np.concatenate(draws), settings, weights, stacking, per_law


def make_forecast(laws: tuple[Law, ...], train: ScalingData, points: pd.DataFrame, *, method: str, level: float,
                  key, resamples: int, kwargs, split_desc, full: ScalingData | None, axis: str,
                  progress=None) -> Forecast:
    """The forecast of ``laws`` fitted on ``train`` at ``points`` (inputs already checked), with provenance."""
    extra = {}
    if len(laws) == 1:
        pred = _recorded(PREDICTIVES[method], _problem(laws[0], train, points, method, key, resamples, kwargs, axis,
                                                       progress=progress))
        predicted, log_samples, settings, weights = pred.predicted, pred.log_samples, pred.settings, None
    else:
        predicted, log_samples, settings, weights, stacking, per_law = _stack(laws, train, points, method, key,
                                                                             resamples, kwargs, axis, progress)
        extra = {"stacking": stacking, "laws": per_law}
    law = laws[0]
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
        "key": validate.key_repr(key),
        "resamples": int(resamples) if method in ("bootstrap", "calibrated") else None,
        "axis": axis,
        "split": split_desc,
        "settings": settings,
        **extra,
        "warnings": list(settings.get("warnings", [])),
        "timestamp": now(),
        "jaxscale_version": __version__,
        "jax_version": jax.__version__,
    }
    if full is not None:
        provenance["full_data_fingerprint"] = full.fingerprint()
        provenance["n_data"] = len(full)
    return Forecast(law, points, predicted, log_samples, level, method, json_safe(provenance), laws, weights)


def _inputs(laws, data, split, columns, drop):
    full, frame = coerce(data, columns)
    for x in laws:
        require_covariates(x, full)
    mask, desc = split_mask(split, full, frame) if split is not None else (None, None)
    full, mask = drop_top(full, mask, drop)
    if drop and desc is not None:
        desc = dict(desc, rule=f"{desc['rule']} (after dropping the {drop} highest targets)")
    return full, mask, desc


def _check_train(laws, n_train, method, kwargs, what: str) -> None:
    for x in laws:
        if tail := too_few(n_train, count_free(x, method, kwargs), x, method):
            raise DataError(f"{what}; {tail}")


def forecast(law, data, *, at, method: str = "calibrated", level: float = 0.9, key=validate.DEFAULT_KEY, split=None,
             resamples: int = 200, axis: str | None = None, drop_top: int = 0, progress=None, **kwargs) -> Forecast:
    """Forecast the target at points not yet run, with a predictive interval and provenance.

    Parameters
    ----------
    law
        A law name or :class:`~jaxscale.laws.Law`, or a list of them: a
        stacked mixture weighted by each law's leave-future-out log score
        (:mod:`jaxscale.forecast.stacking`; the weights are in ``weights``).
    data
        The runs so far: :class:`ScalingData`, a DataFrame, a CSV path or a
        dict of arrays (roles such as ``N="Model Size"`` among ``**kwargs``
        map columns, and ``flops_per_token=``). A column named ``run``,
        ``run_id`` or ``name`` marks checkpoints of one run.
    at
        The points to forecast: a mapping of covariates to values (scalars
        broadcast), a DataFrame of covariate columns, or a ScalingData. A
        missing ``D`` (or ``C``) is derived from ``C = k N D`` as in the data.
    method
        ``"calibrated"`` (default: leave-future-out calibrated, covers the
        error of extrapolating), ``"fit"``, ``"bootstrap"`` or ``"bayes"``
        (see the package docstring).
    level
        Level of the central predictive interval (0.9).
    key
        Int seed or ``jax.random.key``; default 0; same key, same result.
        Passed as is to :func:`jaxscale.fit` / :func:`jaxscale.bootstrap` /
        :func:`jaxscale.bayes.sample` (so the model inside is exactly the one
        those give with that key); it also seeds the predictive noise and the
        calibration folds' starts.
    split
        Optional: fit only the rows a split selects (as in :func:`backtest`),
        recorded in the provenance. Either way ``calibrated``, ``fit`` and
        ``bootstrap`` need more training points than free parameters,
        ``bayes`` at least as many.
    resamples
        Bootstrap replicates (``method="bootstrap"``, and the fallback of
        ``calibrated``).
    axis
        The covariate the forecast extrapolates along (calibration and
        stacking folds): by default the split's cutoff column when it is a
        covariate, else ``C`` when the data has it, else the law's first
        covariate.
    drop_top
        Drop the ``drop_top`` highest targets first (Epoch drops 5).
    progress
        Progress of the long loops inside: the bootstrap's resamples
        (``method="bootstrap"``, and ``calibrated``'s fallback), as for
        :func:`jaxscale.bootstrap` (``None``, the default: a bar when the run
        is estimated to take more than a few seconds; ``True``; ``False``; a
        callable ``(done, total)``), and the sampler's iterations
        (``method="bayes"``: only with ``True`` or a callable, see
        :func:`jaxscale.bayes.sample`). The fit and the calibration's
        leave-future-out refits are one batched solve each, with no bar.
    **kwargs
        Column roles, then options of the fit (``starts``, ``objective``,
        ``fixed`` ...), the bootstrap (``bootstrap_method``, ``starts``:
        ``"auto"`` by default there, :data:`jaxscale.uncertainty.BOOTSTRAP_STARTS`,
        or ``"warm"``, ``"grid"`` ...) or the sampler (``num_warmup``,
        ``num_samples``, ``num_chains``, ``likelihood``, ``run_effect`` ...).

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
    laws = resolve_laws(law)
    columns, kwargs = split_kwargs(kwargs)
    level = _checked(laws, method, level, key, resamples, kwargs, progress)
    full, mask, desc = _inputs(laws, data, split, columns, drop_top)
    if mask is not None:
        desc = dict(desc, n_train=int(mask.sum()), n_rest=int((~mask).sum()))
        for x in laws:
            check_counts(split, desc, x, desc["n_train"], desc["n_rest"], count_free(x, method, kwargs), method,
                         need_test=False)
        train = full.subset(mask)
    else:
        _check_train(laws, len(full), method, kwargs, f"data has {len(full)} point(s)")
        train = full
    points = make_points(laws, at, full.flops_per_token)
    axis = extrapolation_axis(laws[0], train, split, axis)
    return make_forecast(laws, train, points, method=method, level=level, key=key, resamples=resamples,
                         kwargs=kwargs, split_desc=desc, full=full if mask is not None else None, axis=axis,
                         progress=progress)


def backtest(law, data, *, split, method: str = "calibrated", level: float = 0.9, key=validate.DEFAULT_KEY,
             resamples: int = 200, axis: str | None = None, drop_top: int = 0, progress=None,
             **kwargs) -> BacktestResult:
    """Fit on the points a split keeps, forecast the held-out points, and score the forecast.

    Parameters
    ----------
    law, data, method, level, key, resamples, axis, drop_top, progress, **kwargs
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
        a :class:`~jaxscale.DataError`: ``calibrated``, ``fit`` and
        ``bootstrap`` need more training points than free parameters (their
        noise comes from the training residuals), ``bayes`` at least as many.

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
    laws = resolve_laws(law)
    columns, kwargs = split_kwargs(kwargs)
    level = _checked(laws, method, level, key, resamples, kwargs, progress)
    full, mask, desc = _inputs(laws, data, split, columns, drop_top)
    n_train, n_test = int(mask.sum()), int((~mask).sum())
    for x in laws:
        check_counts(split, desc, x, n_train, n_test, count_free(x, method, kwargs), method)
    desc = dict(desc, n_train=n_train, n_test=n_test)
    train, test = full.subset(mask), full.subset(~mask)
    points = pd.DataFrame({k: np.asarray(test.covariates[k]) for k in COVARIATE_KEYS if k in test.covariates})
    if test.step is not None:  # checkpoints of runs: their step and schedule covariates, from the whole history
        points["step"] = np.asarray(test.step, np.float64)
        for k in schedule.KEYS:
            points[k] = np.asarray(test.covariates[k])
    axis = extrapolation_axis(laws[0], train, split, axis)
    fc = make_forecast(laws, train, points, method=method, level=level, key=key, resamples=resamples, kwargs=kwargs,
                       split_desc=desc, full=full, axis=axis, progress=progress)
    res = fc.check(np.asarray(test.y))
    table, pos = res.table, 0
    for name, labels in (("row", test.rows), ("group", test.group), ("run", test.run)):
        if labels is not None:
            table.insert(pos, name, np.asarray(labels))
            pos += 1
    return BacktestResult(table, res.summary, fc)
