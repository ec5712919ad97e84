"""JSON of forecasts and backtests: JSON-safe values, compact draws, thinning, atomic writes."""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from jaxscale._io import text_or_write
from jaxscale.errors import DataError

FORECAST_FORMAT = "jaxscale.forecast/1"
BACKTEST_FORMAT = "jaxscale.backtest/1"


def thin(n: int, samples: bool | int) -> np.ndarray:
    """Indices of the draws to store: all (``True``, or ``samples >= n``) or ``samples`` evenly spaced ones."""
    if samples is True:
        return np.arange(n)
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 2:
        raise DataError(f"samples must be True, False or an integer >= 2 (the most draws to store); got {samples!r}.")
    if samples >= n:
        return np.arange(n)
    return (np.arange(samples) * (n - 1)) // (samples - 1)  # exact integers: 0 and n - 1 included, no repeats


def dumps(value, level: int = 0) -> str:
    """JSON indented like ``json.dumps(indent=1)``, but a list of numbers stays on one line (draws stay compact)."""
    pad, inner = " " * level, " " * (level + 1)
    if isinstance(value, dict) and value:
        items = (f"{inner}{json.dumps(str(k))}: {dumps(v, level + 1)}" for k, v in value.items())
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list) and any(isinstance(v, (list, dict)) for v in value):
        return "[\n" + ",\n".join(inner + dumps(v, level + 1) for v in value) + "\n" + pad + "]"
    return json.dumps(value)


def write_json(doc: dict[str, Any], path: str | os.PathLike | None) -> str:
    return text_or_write(dumps(doc), path)
