"""Scores of a predictive distribution (given by draws) against what happened.

Per point: the relative and log error of the point forecast; the central ``level`` interval ``[lo, hi]`` and
whether it covered the actual value, also at each of ``COVERAGE_LEVELS``; the pinball loss of its ends; the
interval score (Gneiting & Raftery 2007, Eq. 43), on its own and relative to the actual value; the CRPS of the
draws; and the PIT, the share of draws at or below the actual value (a calibrated forecast's PIT values are
uniform on (0, 1)). Every score is on the natural scale of the target.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

#: Levels whose central-interval coverage every summary reports.
COVERAGE_LEVELS = (0.5, 0.8, 0.9, 0.95)


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


def interval_score(lo, hi, actual, level: float) -> np.ndarray:
    """Interval score of central ``level`` intervals (Gneiting & Raftery 2007, Eq. 43); lower is better.

    ``(hi - lo) + (2 / alpha) (lo - y) 1[y < lo] + (2 / alpha) (y - hi) 1[y > hi]`` with ``alpha = 1 - level``:
    the width, plus a penalty for a miss that grows with its distance. A proper score: the true quantiles
    minimise its expectation.

    >>> round(float(interval_score(1.0, 2.0, 1.5, 0.9)), 9), round(float(interval_score(1.0, 2.0, 2.5, 0.9)), 9)
    (1.0, 11.0)
    """
    lo, hi, y = (np.asarray(v, np.float64) for v in (lo, hi, actual))
    alpha = 1.0 - level
    return (hi - lo) + (2.0 / alpha) * np.maximum(lo - y, 0.0) + (2.0 / alpha) * np.maximum(y - hi, 0.0)


def pit_values(log_samples: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Probability integral transform per point: the share of draws below the actual value, ties counted half.

    >>> import numpy as np
    >>> pit_values(np.log(np.array([[1.0], [2.0], [3.0], [4.0]])), np.array([2.0])).tolist()
    [0.375]
    """
    x = np.asarray(log_samples, np.float64)
    y = np.log(np.asarray(actual, np.float64))[None, :]
    return ((x < y).sum(0) + 0.5 * (x == y).sum(0)) / x.shape[0]


def score(predicted: np.ndarray, log_samples: np.ndarray, actual: np.ndarray, level: float) -> pd.DataFrame:
    """The per-point score table (see the module docstring) of draws ``(S, n)`` against ``actual`` ``(n,)``."""
    a = (1.0 - level) / 2.0
    qlo, qhi = np.quantile(log_samples, [a, 1.0 - a], axis=0)
    lo, hi = np.exp(qlo), np.exp(qhi)
    table = pd.DataFrame({
        "actual": actual,
        "predicted": predicted,
        "rel_error": (predicted - actual) / actual,
        "log_error": np.log(predicted) - np.log(actual),
        "lo": lo,
        "hi": hi,
        "covered": (actual >= lo) & (actual <= hi),
        "pinball": 0.5 * (_pinball(lo, actual, a) + _pinball(hi, actual, 1.0 - a)),
        "interval_score": interval_score(lo, hi, actual, level),
        "crps": crps_samples(np.exp(log_samples), actual),
        "pit": pit_values(log_samples, actual),
    })
    table["rel_interval_score"] = table["interval_score"] / actual
    for lv in COVERAGE_LEVELS:
        b = (1.0 - lv) / 2.0
        qa, qb = np.exp(np.quantile(log_samples, [b, 1.0 - b], axis=0))
        table[coverage_column(lv)] = (actual >= qa) & (actual <= qb)
    return table


def coverage_column(level: float) -> str:
    """Name of the table column that says whether the central ``level`` interval covered the actual value."""
    return f"covered_{100 * level:g}"


def summarise(table: pd.DataFrame, n_train: int, level: float, method: str) -> dict[str, Any]:
    """Summary of a score table: errors, coverage (at ``level`` and each of ``COVERAGE_LEVELS``), mean scores."""
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
        "coverage_by_level": {f"{lv:g}": float(table[coverage_column(lv)].mean()) for lv in COVERAGE_LEVELS},
        "mean_pinball": float(table["pinball"].mean()),
        "mean_interval_score": float(table["interval_score"].mean()),
        "mean_rel_interval_score": float(table["rel_interval_score"].mean()),
        "mean_crps": float(table["crps"].mean()),
    }
