"""Results: :class:`Forecast` (points, predictive draws, provenance; JSON) and :class:`BacktestResult` (scores)."""

from __future__ import annotations

import datetime as _dt
import json
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from jaxscale.data import LABEL_KEYS, ScalingData
from jaxscale.errors import DataError
from jaxscale.forecast._inputs import coerce
from jaxscale._io import json_safe, text_or_write
from jaxscale.forecast._json import BACKTEST_FORMAT, FORECAST_FORMAT, thin, write_json
from jaxscale.forecast._scoring import COVERAGE_LEVELS, coverage_column, score, summarise
from jaxscale.laws import Law, get
from jaxscale import schedule, validate

#: Most predictive draws per point a backtest's JSON keeps (evenly thinned beyond): every draw of a ``fit`` forecast
#: (one per training point) or a default ``bootstrap`` one (200), 1000 of a default ``bayes`` (4000) or
#: ``calibrated`` (2000) one. At ~20 bytes a draw that is at most ~20 kB per held-out point.
BACKTEST_SAMPLES = 1000
#: Relative tolerance for matching an actual run to a forecast point by its covariates.
MATCH_RTOL = 1e-9


def now() -> str:
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
        ``"calibrated"``, ``"fit"``, ``"bootstrap"`` or ``"bayes"``.
    provenance
        What the forecast was made from: ``data_fingerprint`` (SHA-256 of
        the training data), ``data_source``, ``n_train``, ``law`` and
        ``law_options``, ``method``, ``key``, ``split`` (the cutoff or rule, if
        the training rows were selected from larger data), ``settings`` (of
        the fit, bootstrap or sampler; for ``calibrated`` the calibration
        model: its parameters, folds and fold-forecast pairs, and each
        point's distance and spread), ``warnings`` (every warning the forecast
        raised), ``timestamp`` (UTC), jaxscale and jax versions; for several
        laws, ``stacking`` and ``laws`` (each law's own settings).
    laws
        Every law of a stacked forecast (``law`` is the first), else ``(law,)``.
    weights
        Stacking weight per law name (``None`` for one law).
    """

    law: Law
    points: pd.DataFrame
    predicted: np.ndarray
    log_samples: np.ndarray
    level: float
    method: str
    provenance: dict[str, Any] = field(default_factory=dict)
    laws: tuple[Law, ...] = ()
    weights: dict[str, float] | None = None

    def __post_init__(self):
        if not self.laws:
            object.__setattr__(self, "laws", (self.law,))

    @property
    def covariates(self) -> tuple[str, ...]:
        """The covariates that identify a forecast point: every law's, in order; for checkpoints under a schedule
        (laws of loss curves) N and D, and the step, where the points have them, instead of the schedule covariates
        (a planned schedule's areas and a logged run's differ by the quadrature)."""
        cov = tuple(dict.fromkeys(c for law in self.laws for c in law.covariates))
        if any(schedule.is_key(c) for c in cov):
            plain = tuple(c for c in cov if not schedule.is_key(c))
            ident = tuple(c for c in ("N", "D") if c in self.points.columns and c not in plain)
            if ident:
                return plain + ident
        return cov

    def interval(self, level: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Central predictive interval ``(lo, hi)`` at ``level`` (the forecast's own by default)."""
        level = self.level if level is None else validate.level(level)
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
        >>> res.summary["n_train"], res.summary["n_test"], int(res.table["covered"].sum())  # 24 of 24 inside 90%
        (72, 24, 24)
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
            data = coerce(actual, columns)[0]
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
            point = ", ".join(f"{c}={self.points[c].iloc[i]:g}" for c in self.covariates)
            raise DataError(f"forecast point {i} ({point}) has no actual value ({int((~have).sum())} of {n} missing); "
                            f"pass missing='skip' to score only the points that were run.")
        if not have.any():
            raise DataError("No forecast point has an actual value to score it against.")
        table = self.points[have].reset_index(drop=True)
        for pos, (k, v) in enumerate(extra.items()):  # row, then group, run
            table.insert(pos, k, v[have])
        scores = score(self.predicted[have], self.log_samples[:, have], values[have], self.level)
        table = pd.concat([table, scores], axis=1)
        summary = summarise(table, self.provenance.get("n_train", -1), self.level, self.method)
        summary["n_missing"] = int((~have).sum())
        # when it was scored, and on what: the record that the forecast (timestamped) came first
        checked = {"at": now(), "actual_fingerprint": data.fingerprint() if extra else None}
        if n_unmatched:
            summary["n_unmatched_rows"] = n_unmatched
            warnings.warn(f"{n_unmatched} of {len(data)} actual rows match no forecast point (by "
                          f"{', '.join(self.covariates)}, relative tolerance {MATCH_RTOL:g}) and were not scored; "
                          f"summary['n_unmatched_rows'] counts them.", UserWarning, stacklevel=2)
        return BacktestResult(table, summary, self, checked)

    def _match(self, data: ScalingData) -> tuple[np.ndarray, int]:
        """For each forecast point, the index of the one actual row with the same covariates (or -1)."""
        missing = [c for c in self.covariates if c not in data.covariates]
        if missing:
            raise DataError(f"actual data lacks {missing}, which identify the forecast points "
                            f"(the forecast's laws use {list(self.covariates)}).")
        pts = self.points[list(self.covariates)].to_numpy(np.float64)
        act = np.stack([np.asarray(data.covariates[c], np.float64) for c in self.covariates], axis=1)
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
            "law_options": json_safe(dict(self.law.options)),
            "method": self.method,
            "level": self.level,
            "points": {c: self.points[c].astype(float).tolist() for c in self.points.columns},
            "predicted": self.predicted.astype(float).tolist(),
            "lo": lo.tolist(),
            "hi": hi.tolist(),
            "provenance": json_safe(self.provenance),
            "n_draws": int(self.log_samples.shape[0]),
        }
        if self.weights is not None:
            out["laws"] = [{"law": law.name, "law_options": json_safe(dict(law.options)),
                            "weight": self.weights[law.name]} for law in self.laws]
        if samples is not False:
            draws = self.log_samples[thin(self.log_samples.shape[0], samples)]
            out["n_draws_stored"] = int(draws.shape[0])
            out["log_samples"] = draws.tolist()
        return out

    def to_json(self, path: str | os.PathLike | None = None, samples: bool | int = True) -> str:
        """Serialise :meth:`to_dict` (every draw by default); write it to ``path`` if given.

        Everything :meth:`load` needs is in it: the law and its options, the points, the point forecasts, the level,
        the method, the provenance and the log predictive draws.
        """
        return write_json(self.to_dict(samples=samples), path)

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
        Forecast(chinchilla, calibrated: 24 points, 2000 draws, made ...)
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
        laws = tuple(get(d["law"], **d.get("law_options", {})) for d in doc.get("laws", ())) or (law,)
        weights = {d["law"]: float(d["weight"]) for d in doc["laws"]} if "laws" in doc else None
        return cls(law, points, predicted, samples, float(doc["level"]), doc["method"], provenance, laws, weights)

    def report(self, max_rows: int = 40) -> str:
        """Readable header and :meth:`table` (first ``max_rows`` rows)."""
        prov = self.provenance
        lines = describe_forecast(self)
        lines.append(f"method: {self.method}; split: {(prov.get('split') or {}).get('rule', 'n/a (all rows)')}; "
                     f"{prov.get('n_train', '?')} training points; {self.log_samples.shape[0]} predictive draws; "
                     f"{100 * self.level:g}% predictive interval [lo, hi]")
        table = self.table()
        shown = table[[c for c in table.columns if not c.startswith("mp_")]]  # the quadrature nodes are not for reading
        with pd.option_context("display.width", 160, "display.max_columns", 30):
            lines.append(shown.head(max_rows).to_string(index=False, float_format=lambda v: f"{v:.5g}"))
        if len(self.points) > max_rows:
            lines.append(f"... {len(self.points) - max_rows} more points (all are in the JSON output)")
        return "\n".join(lines)

    def __repr__(self) -> str:
        name = "+".join(law.name for law in self.laws)
        return (f"Forecast({name}, {self.method}: {len(self.points)} points, {self.log_samples.shape[0]} "
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
    checked
        For :meth:`Forecast.check`: ``at`` (UTC time of the check) and ``actual_fingerprint`` (of the actual
        runs, when they were data), the record that the timestamped forecast came first; ``None`` for a
        :func:`backtest`, whose held-out runs were scored with the forecast.
    """

    table: pd.DataFrame
    summary: dict[str, Any]
    forecast: Forecast
    checked: dict[str, Any] | None = None

    @property
    def provenance(self) -> dict[str, Any]:
        return self.forecast.provenance

    def to_dict(self, samples: bool | int = BACKTEST_SAMPLES) -> dict[str, Any]:
        """JSON-ready: ``summary``, ``table`` (records) and ``forecast``, with at most ``samples`` of its predictive
        draws per point (see :meth:`Forecast.to_dict`), so that :meth:`Forecast.load` can read it back."""
        records = [{k: json_safe(v) for k, v in r.items()} for r in self.table.to_dict(orient="records")]
        out = {"format": BACKTEST_FORMAT, "summary": json_safe(self.summary), "table": records,
               "forecast": self.forecast.to_dict(samples=samples)}
        if self.checked is not None:
            out["checked"] = self.checked
        return out

    def to_json(self, path: str | os.PathLike | None = None, samples: bool | int = BACKTEST_SAMPLES) -> str:
        """Serialise :meth:`to_dict`; write it to ``path`` if given. :meth:`Forecast.load` reads its forecast
        (exactly, when it has at most ``samples`` draws: every ``fit`` and default ``bootstrap`` forecast)."""
        return write_json(self.to_dict(samples=samples), path)

    def to_csv(self, path: str | os.PathLike | None = None) -> str:
        """The scored :attr:`table` as CSV; written atomically to ``path`` if given."""
        return text_or_write(self.table.to_csv(index=False), path)

    def report(self, max_rows: int = 40) -> str:
        """Readable table (first ``max_rows`` rows) and summary."""
        s, prov = self.summary, self.provenance
        pct = f"{100 * s['level']:g}%"
        lines = describe_forecast(self.forecast)
        lines.append(f"method: {s['method']}; split: {(prov.get('split') or {}).get('rule', 'n/a')}; "
                     f"{s['n_train']} training points, {s['n_test']} scored")
        hidden = {"log_error", "rel_interval_score", *(coverage_column(lv) for lv in COVERAGE_LEVELS)}
        cols = [c for c in self.table.columns if c not in hidden and not str(c).startswith("mp_")]
        shown = self.table[cols].head(max_rows)
        with pd.option_context("display.width", 160, "display.max_columns", 30):
            lines.append(shown.to_string(index=False, float_format=lambda v: f"{v:.5g}"))
        if len(self.table) > max_rows:
            lines.append(f"... {len(self.table) - max_rows} more rows (all are in the JSON / CSV output)")
        lines.append(f"median |rel error| {s['median_abs_rel_error']:.4g}, mean {s['mean_abs_rel_error']:.4g}, "
                     f"RMSE(log) {s['rmse_log']:.4g}; {pct} interval coverage {s['coverage']:.3f} "
                     f"({int(self.table['covered'].sum())}/{s['n_test']}); mean pinball {s['mean_pinball']:.4g}, "
                     f"mean CRPS {s['mean_crps']:.4g}, mean interval score {s['mean_interval_score']:.4g} "
                     f"({s['mean_rel_interval_score']:.4g} of the actual value)")
        lines.append("coverage by level: " + ", ".join(f"{100 * float(k):g}% {v:.3f}"
                                                      for k, v in s["coverage_by_level"].items()))
        return "\n".join(lines)

    def __repr__(self) -> str:
        s = self.summary
        name = "+".join(law.name for law in self.forecast.laws)
        return (f"BacktestResult({name}, {s['method']}: {s['n_train']} train / {s['n_test']} "
                f"test, median |rel error| {s['median_abs_rel_error']:.3g}, coverage {s['coverage']:.3g})")


def describe_forecast(fc: Forecast) -> list[str]:
    """Header lines of a report: the law (or the stacked laws with their weights), and any fallback."""
    if fc.weights is None:
        lines = [f"law: {fc.law.name}    {fc.law.formula}"]
    else:
        lines = ["laws (stacked by leave-future-out log score): " + ", ".join(
            f"{law.name} {fc.weights[law.name]:.3f}" for law in fc.laws)]
        for law in fc.laws:
            reason = fc.provenance.get("stacking", {}).get("reasons", {}).get(law.name)
            lines.append(f"  {law.name}: {law.formula}" + (f"  (weight 0: {reason})" if reason else ""))
    settings = fc.provenance.get("settings") or {}
    if "fallback" in settings:
        lines.append(f"fell back to method={settings['fallback']['method']!r}: {settings['fallback']['reason']}")
    cal = settings.get("calibration")
    if cal:
        lines.append(f"calibration: {cal['n_folds']} leave-future-out folds along {cal['axis']}, {cal['n_pairs']} "
                     f"fold forecasts; sigma(h) = sqrt({cal['sigma0']:.3g}^2 + ({cal['tau']:.3g} h)^2), "
                     f"h = log({cal['axis']} / {cal['axis_range'][1]:.4g})")
    return lines
