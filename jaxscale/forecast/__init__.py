"""Forecast and backtest: predict the big run from the small runs, then check.

Two entry points share one machinery:

* :func:`forecast` fits a law (or a stack of laws) and predicts
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
are fitted; every score is then computed on the natural scale), one registry
``PREDICTIVES`` of functions with one signature:

* ``method="calibrated"`` (the default): the fit's prediction with the error
  of extrapolating measured on the training data by leave-future-out folds
  along the extrapolation axis, as a function of the distance beyond the
  data (:mod:`jaxscale.forecast.calibration`): noise, parameter uncertainty
  and extrapolation error together. With too few distinct scales for the
  folds it falls back to ``bootstrap``, with a warning.
* ``method="fit"``: the fit's prediction plus each of the training fit's log
  residuals, scaled by ``sqrt(n / (n - p))`` (``p`` free parameters) because
  in-sample residuals are smaller than out-of-sample errors. One predictive
  draw per training point; no parameter uncertainty, no extrapolation error.
  Needs more training points than free parameters (``n > p``: at ``n == p``
  the fit interpolates and the residual "interval" would be the point), as
  do ``bootstrap`` and ``calibrated``.
* ``method="bootstrap"``: each bootstrap replicate's prediction plus one
  resampled (scaled) training log residual per replicate and point -- a
  bootstrap *predictive* interval, parameter uncertainty and noise together
  (Davison & Hinkley 1997, Sec. 6.3.3). With a ``run`` column (checkpoints of
  runs) whole runs are resampled (``cluster``). The point forecast is the
  median over replicates of the law's value.
* ``method="bayes"``: the posterior predictive, each posterior draw's
  prediction plus the likelihood's noise (Student-t or Normal on the log
  scale, with that draw's ``sigma`` and ``df``) and, with a ``run`` column,
  a new run's offset (the model's per-run effect), as in the ``pred_lo`` /
  ``pred_hi`` of :func:`jaxscale.bayes.predict`. The point forecast is the
  posterior median of the law's value. The noise scale is sampled (its prior
  carries it when the data cannot), so ``n == p`` training points are
  enough here. A posterior that fails its diagnostics is warned about and
  recorded in the provenance.

Several laws (``law=["chinchilla", "power"]``) give a stacked mixture whose
weights maximise the leave-future-out log score
(:mod:`jaxscale.forecast.stacking`); the weights are in ``Forecast.weights``,
its JSON and reports.

Scores per held-out point: ``rel_error = (predicted - actual) / actual``; the
central ``level`` interval ``[lo, hi]`` of the predictive draws and whether it
``covered`` the actual value (and ``covered_50`` ... ``covered_95``);
``pinball``, the mean of the pinball (quantile) losses of ``lo`` at level
``(1 - level) / 2`` and of ``hi`` at ``(1 + level) / 2``; ``interval_score``
(Gneiting & Raftery 2007, Eq. 43) and ``rel_interval_score`` (over the actual
value); ``crps``, the continuous ranked probability score of the empirical
predictive distribution, ``E|X - y| - E|X - X'| / 2``; ``pit``, the share of
draws below the actual value (uniform for a calibrated forecast; see
:func:`jaxscale.plot.calibration`). Pinball, interval score and CRPS are in
the target's units; CRPS reduces to the absolute error for a point forecast.

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
>>> bt = backtest("power", {"x": x, "loss": y}, split={"x": 1e5}, starts=64, key=0)  # method="calibrated"
>>> bt.summary["n_train"], bt.summary["n_test"]
(22, 8)
>>> bool(bt.summary["median_abs_rel_error"] < 0.05)
True
>>> list(bt.table.columns)
['row', 'x', 'actual', 'predicted', 'rel_error', 'log_error', 'lo', 'hi', 'covered', 'pinball', 'interval_score', 'crps', 'pit', 'rel_interval_score', 'covered_50', 'covered_80', 'covered_90', 'covered_95']
"""

from __future__ import annotations

from jaxscale.forecast._api import backtest, forecast, resolve_laws
from jaxscale.forecast._inputs import points_csv
from jaxscale.forecast._json import BACKTEST_FORMAT, FORECAST_FORMAT
from jaxscale.forecast._predictive import PREDICTIVES, Predictive, Problem
from jaxscale.forecast._results import BACKTEST_SAMPLES, MATCH_RTOL, BacktestResult, Forecast
from jaxscale.forecast._scoring import COVERAGE_LEVELS, crps_samples, interval_score, pit_values
from jaxscale.forecast._split import METHODS
from jaxscale.forecast.calibration import Calibration, CalibrationUnavailable, calibrate
from jaxscale.forecast.stacking import stacking_weights

__all__ = ["BACKTEST_FORMAT", "BACKTEST_SAMPLES", "COVERAGE_LEVELS", "FORECAST_FORMAT", "MATCH_RTOL", "METHODS",
           "PREDICTIVES", "BacktestResult", "Calibration", "CalibrationUnavailable", "Forecast", "Predictive", "Problem",
           "backtest", "calibrate", "crps_samples", "forecast", "interval_score", "pit_values", "points_csv",
           "resolve_laws", "stacking_weights"]
