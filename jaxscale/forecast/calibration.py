"""Leave-future-out calibration: how far off a forecast is, as a function of how far it extrapolates.

A fit's residuals say how noisy the data are *inside* the range it was fitted on; the error of a forecast
beyond that range is larger, and grows with the distance. This module measures that growth on the training
data itself, by leave-future-out validation along the extrapolation axis (Bürkner, Gabry & Vehtari 2020, who
refit on the past and score the future), and turns it into a predictive distribution with distance-normalised
split-conformal scores (Lei et al. 2018, Sec. 5.2: scores divided by a fitted spread).

Estimator, step by step (``t = log`` of the axis, e.g. compute ``C`` or seen examples ``x``):

1. **Folds.** Internal cutoffs ``u_k`` at distinct training scales, each leaving at least ``p + 2`` training
   points at or below it (``p`` free parameters) and at least one above; of those, the ones whose fitted span
   ``u_k - t_min`` is at least ``SPAN_FRACTION`` of the full span (a fit on a sliver of the data extrapolates
   worse than the final fit will, and would dominate), unless that leaves fewer than ``MIN_FOLDS``; at most
   ``MAX_FOLDS``, spread evenly over ``t``.
2. **Refits.** The law is refitted on the points ``t <= u_k`` of every fold at once: one batched, compiled solve
   (:func:`jaxscale.uncertainty.refit`, from the final fit's optimum plus ``FOLD_STARTS - 1`` random starts).
3. **Errors.** Each fold forecasts its future points ``t_j > u_k``: log error ``e = log y_j - log f_k(x_j)`` at
   distance ``h = t_j - u_k``. Every fold carries weight 1, shared by its pairs.
4. **Spread model.** ``sigma(h)^2 = sigma0^2 + tau^2 h^2``: ``sigma0`` is the final fit's noise (root mean
   square of its log residuals times ``sqrt(n / (n - p))``), ``tau`` the growth of the extrapolation error
   per unit of log distance, by weighted maximum likelihood of ``e ~ Normal(0, sigma(h))``. A slope error in
   log-log space grows linearly with the distance, hence the form.
5. **Scores.** ``z = e / sigma(h)`` per pair; their weighted distribution, made symmetric (``z`` and ``-z``)
   and smoothed by a Gaussian kernel (Silverman's bandwidth with the number of folds as the sample size: a
   fold's pairs share its refit's error), is the shape of the error: it keeps heavy tails, and makes the level
   right where the spread model is only roughly right. Symmetric, because a sign the folds share need not carry
   over: folds cut before a change of slope all err one way, and the final fit, which saw the change, need
   not (measured on a power law fitted across a break inside the data: signed scores covered 64% at 90%).
6. **Forecast.** At a point at distance ``h* = max(0, t* - t_max)`` beyond the training data, the predictive
   draws are ``log f(x*) + sigma(h*) z``, ``z`` drawn from step 5, ``f`` the final fit.

What it covers: noise, parameter uncertainty (each fold's refit has its own, and on fewer points than the final
fit, so this part errs wide) and the error of extrapolating as it grew inside the data. What it cannot cover: a
change of regime beyond every scale in the data (the folds never saw it), and distances far beyond the folds'
largest ``h``, where ``sigma(h)`` is itself extrapolated linearly. Assumptions: the error at a distance depends
on the distance, not on where it starts; folds are exchangeable.

Minimum data: ``MIN_FOLDS`` (2) folds and ``MIN_PAIRS`` (3) fold-forecast pairs, which needs at least
3 distinct scales of the axis with ``p + 2`` training points at or below the third largest. With less,
:class:`CalibrationUnavailable` says why, and ``method="calibrated"`` falls back to the bootstrap predictive
interval with a warning (recorded in the forecast's provenance).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from jaxscale.data import ScalingData
from jaxscale.errors import DataError
from jaxscale.laws import Law

MIN_FOLDS = 2
MIN_PAIRS = 3
MAX_FOLDS = 12
SPAN_FRACTION = 0.5
#: Distances relative to the fitted span (``h / (cutoff - t_min)``) instead of in log units of the axis. Off: on
#: Revisiting (44 curves) and Epoch's points (3 splits) it covered less (90%: BB 0.68 vs 0.73, Chinchilla 0.89 vs
#: 0.94; 50%: Chinchilla 0.34 vs 0.44) at about the same interval score (2026-12-01, /tmp study, not kept).
RELATIVE = False
FOLD_STARTS = 32
#: The fit's options the fold refits take (the rest of a forecast's options belong to the bootstrap or sampler).
REFIT_OPTIONS = ("objective", "delta", "fixed", "max_iter", "ftol", "xtol", "dtype")
#: Predictive draws per point of a calibrated forecast.
N_DRAWS = 2000
MODEL = "log y = log f(x) + sigma(h) z;  sigma(h)^2 = sigma0^2 + tau^2 h^2;  h = max(0, log(axis / cutoff))"


class CalibrationUnavailable(DataError):
    """The training data have too few distinct scales along the axis for leave-future-out folds."""


def log_predict(law: Law, theta: np.ndarray, logx: np.ndarray) -> np.ndarray:
    """Log predictions ``(n_draws, n_points)`` for fitting-coordinate draws ``(n_draws, P)``, vmapped over both.

    Fitting coordinates, not natural values: a fit whose log-parameter ran off to -inf has a natural value of
    exactly 0, which the law's own ``predict`` rejects, yet its predictions are finite.
    """
    f = jax.vmap(jax.vmap(law.log_predict, in_axes=(None, 0)), in_axes=(0, None))
    return np.asarray(f(jax.numpy.asarray(np.atleast_2d(theta)), jax.numpy.asarray(logx)), np.float64)


def noise_scale(residuals: np.ndarray, n_free: int) -> float:
    """Noise scale of log residuals: their root mean square times ``sqrt(n / (n - p))`` for the fit's own
    degrees of freedom (the scale of ``method="fit"``'s residual draws). Not a robust scale: a Huber fit with a
    small delta is nearly an L1 fit, whose residuals bunch at 0, and their median understates the noise."""
    n = residuals.size
    return float(np.sqrt(np.mean(residuals**2)) * math.sqrt(n / max(n - n_free, 1)))


def fold_cutoffs(t: np.ndarray, n_min: int, max_folds: int = MAX_FOLDS,
                 span_fraction: float = SPAN_FRACTION) -> np.ndarray:
    """Log-axis cutoffs of the leave-future-out folds (step 1 of the module docstring), increasing.

    >>> import numpy as np
    >>> fold_cutoffs(np.log(np.arange(1.0, 11.0)), n_min=3).round(3).tolist()  # spans >= half of log(10)
    [1.386, 1.609, 1.792, 1.946, 2.079, 2.197]
    """
    u = np.unique(t)
    below = np.searchsorted(np.sort(t), u, side="right")
    eligible = u[(below >= n_min) & (below < t.size) & (u > t.min())]
    if eligible.size < MIN_FOLDS:
        raise CalibrationUnavailable(
            f"leave-future-out calibration needs at least {MIN_FOLDS} internal cutoffs, each with at least {n_min} "
            f"training points at or below it and one above; the {t.size} training points on {u.size} distinct "
            f"scales allow {eligible.size}. Give points on at least {MIN_FOLDS + 1} scales, with {n_min} at or "
            f"below the third largest.")
    wide = eligible[eligible - t.min() >= span_fraction * (t.max() - t.min())]
    if wide.size >= MIN_FOLDS:
        eligible = wide
    if eligible.size > max_folds:
        targets = np.linspace(eligible[0], eligible[-1], max_folds)
        eligible = np.unique(eligible[np.abs(eligible[None, :] - targets[:, None]).argmin(1)])
    return eligible


def weighted_quantile(x: np.ndarray, w: np.ndarray, q) -> np.ndarray:
    """Quantiles of the distribution putting weight ``w`` on ``x`` (interpolated between midpoints)."""
    order = np.argsort(x)
    x, w = x[order], w[order]
    cdf = (np.cumsum(w) - 0.5 * w) / w.sum()
    return np.interp(q, cdf, x)


def _fit_tau(e: np.ndarray, h: np.ndarray, w: np.ndarray, sigma0: float) -> float:
    """Weighted ML of ``tau`` in ``e ~ Normal(0, sqrt(sigma0^2 + tau^2 h^2))``: a grid, then golden section."""
    s0 = max(sigma0, 1e-12)

    def nll(log_tau):
        v = s0**2 + np.exp(2.0 * log_tau) * h**2
        return float(np.sum(w * (0.5 * np.log(v) + 0.5 * e**2 / v)))

    grid = np.linspace(math.log(1e-8), math.log(1e2), 201)
    vals = np.array([nll(g) for g in grid])
    i = int(np.argmin(vals))
    a, b = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
    g = (math.sqrt(5.0) - 1.0) / 2.0
    c, d = b - g * (b - a), a + g * (b - a)
    for _ in range(60):
        if nll(c) < nll(d):
            b = d
        else:
            a = c
        c, d = b - g * (b - a), a + g * (b - a)
    return float(math.exp(0.5 * (a + b))) if i > 0 else 0.0


@dataclass(frozen=True, eq=False)
class Calibration:
    """The fitted extrapolation-error model of one law on one training set (see the module docstring).

    Attributes
    ----------
    law
        Name of the law.
    axis
        The covariate the folds cut along.
    t_min, t_max
        Smallest and largest ``log(axis)`` of the training points.
    sigma0, tau
        The spread model ``sigma(h)^2 = sigma0^2 + tau^2 h^2``.
    bandwidth
        Kernel bandwidth of the score distribution.
    folds
        One record per fold: ``cutoff`` (on the axis' own scale), ``n_train``, ``n_forecast``, ``status``.
    pairs
        Arrays over the fold-forecast pairs: ``fold``, ``row`` (index into the training data), ``distance``
        ``h``, ``error`` ``e``, ``z``, ``weight``.
    """

    law: str
    axis: str
    t_min: float
    t_max: float
    sigma0: float
    tau: float
    bandwidth: float
    folds: list[dict[str, Any]]
    pairs: dict[str, np.ndarray]
    relative: bool = RELATIVE

    def distance(self, axis_values) -> np.ndarray:
        """``h* = max(0, log(value) - t_max)``, how far beyond the training data a point lies in log units, over
        the training span ``t_max - t_min`` when ``relative``."""
        h = np.maximum(np.log(np.asarray(axis_values, np.float64)) - self.t_max, 0.0)
        return h / (self.t_max - self.t_min) if self.relative else h

    def scale(self, h) -> np.ndarray:
        """``sigma(h)``, the spread of the log forecast error at log distance ``h``."""
        h = np.asarray(h, np.float64)
        return np.sqrt(max(self.sigma0, 1e-12) ** 2 + (self.tau * h) ** 2)

    def draws(self, rng: np.random.Generator, n: int = N_DRAWS) -> np.ndarray:
        """``n`` draws of the normalised score ``z`` (kernel-smoothed weighted scores)."""
        p = self.pairs
        idx = rng.choice(p["z"].size, size=n, p=p["weight"] / p["weight"].sum())
        sign = np.where(rng.random(n) < 0.5, -1.0, 1.0)
        return sign * p["z"][idx] + self.bandwidth * rng.standard_normal(n)

    def log_samples(self, log_mean: np.ndarray, axis_values: np.ndarray, rng: np.random.Generator,
                    n: int = N_DRAWS) -> np.ndarray:
        """Predictive draws ``(n, n_points)`` on the log scale around the law's log prediction ``log_mean``."""
        z = self.draws(rng, n)
        return np.asarray(log_mean)[None, :] + self.scale(self.distance(axis_values))[None, :] * z[:, None]

    def fold_log_density(self) -> np.ndarray:
        """Log predictive density of each pair's error under the model, its own fold's scores left out of the
        kernel estimate (as a score of genuinely held-out errors, for stacking)."""
        p = self.pairs
        z, w, fold = p["z"], p["weight"], p["fold"]
        z_all, w, fold_all = np.concatenate([z, -z]), np.concatenate([w, w]), np.concatenate([fold, fold])
        k = -0.5 * ((z[:, None] - z_all[None, :]) / self.bandwidth) ** 2
        other = fold[:, None] != fold_all[None, :]
        wk = np.where(other, w[None, :], 0.0)
        norm = wk.sum(1)
        k = np.where(other, k, -np.inf)
        m = np.max(k, axis=1, keepdims=True)
        m = np.where(np.isfinite(m), m, 0.0)
        dens = (wk * np.exp(k - m)).sum(1) / np.where(norm > 0, norm, 1.0)
        with np.errstate(divide="ignore"):
            logd = m[:, 0] + np.log(dens) - np.log(self.bandwidth * math.sqrt(2 * math.pi))
        return logd - np.log(self.scale(p["distance"]))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the model, its parameters, the folds and every pair (distance, error, score, weight)."""
        return {
            "model": MODEL,
            "law": self.law,
            "axis": self.axis,
            "axis_range": [math.exp(self.t_min), math.exp(self.t_max)],
            "relative_distance": self.relative,
            "sigma0": self.sigma0,
            "tau": self.tau,
            "bandwidth": self.bandwidth,
            "n_folds": len(self.folds),
            "n_pairs": int(self.pairs["z"].size),
            "folds": self.folds,
            "pairs": {k: v.tolist() for k, v in self.pairs.items()},
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Calibration:
        """Rebuild from :meth:`to_dict` (a forecast's provenance)."""
        pairs = {k: np.asarray(v, np.int64 if k in ("fold", "row") else np.float64) for k, v in doc["pairs"].items()}
        lo, hi = doc["axis_range"]
        return cls(doc["law"], doc["axis"], math.log(lo), math.log(hi), float(doc["sigma0"]), float(doc["tau"]),
                   float(doc["bandwidth"]), list(doc["folds"]), pairs, bool(doc.get("relative_distance", False)))


def calibrate(law: Law, train: ScalingData, theta: np.ndarray, n_free: int, *, axis: str, options: Mapping[str, Any],
              key, cutoffs: np.ndarray | None = None, relative: bool | None = None) -> Calibration:
    """Fit the extrapolation-error model of ``law`` (fitted at ``theta`` on ``train``) by leave-future-out folds.

    ``options`` are the fit's (``objective``, ``delta``, ``fixed``, ``max_iter``, ``ftol``, ``xtol``,
    ``dtype``; others are ignored); ``cutoffs`` (log axis) overrides step 1, so that several laws share folds.
    Raises :class:`CalibrationUnavailable` when the data allow too few folds or pairs.

    >>> import numpy as np, jaxscale
    >>> from jaxscale.forecast.calibration import calibrate
    >>> x = np.logspace(2, 5, 24)
    >>> y = 0.5 + 40.0 * x ** -0.3 * np.exp(0.01 * np.random.default_rng(0).standard_normal(24))
    >>> data = jaxscale.ScalingData.from_arrays(loss=y, x=x)
    >>> point = jaxscale.fit("power", data, starts=64, key=0)
    >>> cal = calibrate(point.law, data, point.theta, 3, axis="x", options={}, key=0)
    >>> len(cal.folds), bool(0.005 < cal.sigma0 < 0.02)
    (11, True)
    """
    from jaxscale import validate
    from jaxscale.fit import make_starts
    from jaxscale.uncertainty import refit

    validate.key_words(key)
    if axis not in train.covariates:
        raise DataError(f"axis {axis!r} is not a covariate of the training data; it has {sorted(train.covariates)}.")
    logx, logy = train.design(law.covariates, law.name)
    t = np.log(np.asarray(train.covariates[axis], np.float64))
    resid = logy - log_predict(law, theta, logx)[0]
    sigma0 = noise_scale(resid, n_free)
    u = fold_cutoffs(t, n_free + 2) if cutoffs is None else np.asarray(cutoffs, np.float64)
    weights = (t[None, :] <= u[:, None]).astype(np.float64)
    starts = np.concatenate([np.atleast_2d(theta), make_starts(law, FOLD_STARTS - 1, key, logx, logy)[0]])
    fit_opts = {k: options[k] for k in REFIT_OPTIONS if options.get(k) is not None}
    r = refit(law, train, weights, starts, **fit_opts)
    ok = r.ok
    mu = log_predict(law, np.where(ok[:, None], r.theta, theta), logx)  # failed folds are masked out below
    future = (t[None, :] > u[:, None]) & ok[:, None] & np.all(np.isfinite(mu), 1, keepdims=True)
    fold, row = np.nonzero(future)
    folds = [{"cutoff": float(math.exp(c)), "n_train": int(weights[k].sum()), "n_forecast": int(future[k].sum()),
              "status": str(r.status[k])} for k, c in enumerate(u)]
    n_ok = len(np.unique(fold))
    if n_ok < MIN_FOLDS or fold.size < MIN_PAIRS:
        bad = ", ".join(f"{f['status']} at {axis} <= {f['cutoff']:.4g}" for f in folds if f["status"] not in
                        ("converged", "max_iter"))
        raise CalibrationUnavailable(
            f"leave-future-out calibration of law {law.name!r} needs {MIN_FOLDS} folds with forecasts and "
            f"{MIN_PAIRS} fold-forecast pairs; got {n_ok} folds and {fold.size} pairs"
            + (f" (failed refits: {bad})" if bad else "") + ".")
    e = logy[row] - mu[fold, row]
    relative = RELATIVE if relative is None else bool(relative)
    h = t[row] - u[fold]
    if relative:
        h = h / (u[fold] - t.min())
    per_fold = np.bincount(fold, minlength=len(u)).astype(np.float64)
    w = 1.0 / (per_fold[fold] * n_ok)
    tau = _fit_tau(e, h, w, sigma0)
    z = e / np.sqrt(max(sigma0, 1e-12) ** 2 + (tau * h) ** 2)
    n_eff = float(n_ok)  # a fold's pairs share its refit's error: the folds, not the pairs, are the sample
    q25, q75 = weighted_quantile(z, w, [0.25, 0.75])
    sd = math.sqrt(float(np.sum(w * (z - np.sum(w * z)) ** 2)))
    spread = min(sd, (q75 - q25) / 1.349) if q75 > q25 else sd
    bandwidth = max(0.9 * spread * n_eff ** (-0.2), 1e-3)
    pairs = {"fold": fold.astype(np.int64), "row": row.astype(np.int64), "distance": h, "error": e, "z": z,
             "weight": w}
    return Calibration(law.name, axis, float(t.min()), float(t.max()), sigma0, tau, float(bandwidth), folds, pairs,
                       relative)


__all__ = ["REFIT_OPTIONS", "MAX_FOLDS", "MIN_FOLDS", "MIN_PAIRS", "MODEL", "N_DRAWS", "SPAN_FRACTION", "Calibration",
           "CalibrationUnavailable", "calibrate", "fold_cutoffs", "log_predict", "noise_scale", "weighted_quantile"]
