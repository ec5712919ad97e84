"""One self-contained HTML page from result files: ``jaxscale report FILE ... --out report.html``.

Each file (or result object) gets one section: its parameter table with intervals, its diagnostics, the
matching figures of :mod:`jaxscale.plot`, and its provenance (versions, settings, timestamp, data fingerprint).
Forecasts, backtests and checks open with a *forecast card*: the target run's training compute, tokens and
model size, the metric forecast, the predictive interval (level and method), whether the forecast was made
before the run (its timestamp and training-data fingerprint, compared with a check's time when a check is
given), and how it scored (coverage, interval score, relative error).

The page loads nothing from anywhere: the CSS is inline and every figure an inline SVG, so the file can be
mailed, archived or attached to a model card as it is.

Kinds read (decided by content, not by file name; see :mod:`jaxscale.report._read`): ``fit``
(``jaxscale fit --json``), ``bootstrap`` (``jaxscale bootstrap --json``), ``posterior`` (netCDF of
``jaxscale bayes --out``), ``allocation`` (``jaxscale allocate --json``), ``forecast`` (``jaxscale forecast
--out``), ``backtest`` (``jaxscale backtest --json``) and ``check`` (``jaxscale check --json``). A file of
any other kind, one that cannot be read, or a report path in a missing directory is one error before any
figure is drawn.

Contours and residuals need the runs: pass ``data=`` (``--data``), the data the result was made from; its
fingerprint is checked against the file's, and a figure that cannot be drawn is listed with the reason.

``import jaxscale`` does not import this module (nor matplotlib); ``jaxscale.report`` loads it on first use.
The module is callable: ``jaxscale.report(...)`` is :func:`report`.

>>> import pathlib, tempfile, jaxscale
>>> res = jaxscale.fit("chinchilla", jaxscale.demo_data(), starts=16, key=0)
>>> with tempfile.TemporaryDirectory() as tmp:
...     path = jaxscale.report(res, out=pathlib.Path(tmp) / "report.html")
...     page = pathlib.Path(path).read_text()
>>> f"{res.params['E']:.6g}" in page, "http://" in page or "https://" in page
(True, False)
"""

from __future__ import annotations

import datetime as _dt
import os
import sys
import types

from jaxscale import validate
from jaxscale._io import write_atomic
from jaxscale._version import __version__
from jaxscale.data import ScalingData
from jaxscale.errors import ArgumentError
from jaxscale.report._html import Raw, esc, page
from jaxscale.report._read import KINDS, Input, kind_of, read
from jaxscale.report._sections import BUILDERS, Context, card

__all__ = ["KINDS", "Input", "card", "kind_of", "read", "report"]


def _read_data(data, columns, drop_top: int):
    """The data given for the figures (a ScalingData, DataFrame, CSV path or dataset name), or ``(None, None)``."""
    import pandas as pd

    if data is None:
        given = ([f"column mappings {sorted(columns)}"] if columns else []) + (["drop_top"] if drop_top else [])
        if given:
            raise ArgumentError(f"{' and '.join(given)} apply to the data (data=, --data); no data was given.")
        return None, None
    if isinstance(data, ScalingData):
        d, label = data, data.source
    elif isinstance(data, pd.DataFrame):
        d, label = ScalingData.coerce(data, **columns), "a DataFrame"
    elif isinstance(data, (str, os.PathLike)):
        from jaxscale import datasets

        d, label = datasets.read(data, argument="data", **columns), os.fspath(data)
    else:
        raise ArgumentError(f"data must be a ScalingData, a DataFrame, a CSV path or a dataset name; got "
                            f"{type(data).__name__}.")
    if drop_top:
        d = d.drop_top(drop_top)
        label = f"{label} without its {drop_top} highest targets"
    return d, label


def report(*results, out: str | os.PathLike = "report.html", data=None, level: float = 0.95, drop_top: int = 0,
           title: str | None = None, **columns) -> str:
    """Write one self-contained HTML page with a section for each result; return its path.

    Parameters
    ----------
    *results
        Result files (paths: JSON of ``jaxscale fit`` / ``bootstrap`` / ``allocate`` / ``forecast`` /
        ``backtest`` / ``check``, netCDF of ``jaxscale bayes --out``) or result objects (FitResult,
        BootstrapResult, posterior InferenceData, Allocation, Forecast, BacktestResult), in page order. A
        forecast and the check that scored it, given together, share the check's scores on the forecast's card.
    out
        The HTML file to write (atomically); its directory must exist.
    data
        The data the results were made from, for contours, residuals and the runs behind a forecast or
        backtest: a :class:`~jaxscale.ScalingData`, a DataFrame, a CSV path or a dataset name (``**columns``
        map roles to columns, e.g. ``N="Model Size"``; ``drop_top`` drops the highest targets first, as the fit
        did). Each result's data fingerprint is checked against it; a figure left out says why.
    level
        Level of the posteriors' equal-tailed credible intervals (bootstrap, allocation and forecast files keep
        their own levels).
    title
        The page's title (default ``"jaxscale report"``).

    Returns
    -------
    str
        ``out``.

    Raises
    ------
    ArgumentError
        ``out`` cannot be written, a result file does not exist, or an argument is bad.
    DataError
        A result file cannot be read (not JSON or netCDF, truncated, damaged) or is of a kind the report does
        not read (the message lists those it reads); the data cannot be read.
    """
    if not results:
        raise ArgumentError(f"report needs at least one result file or object; it reads: "
                            f"{', '.join(KINDS)}.")
    out = validate.output_path(out, "out")
    level = validate.level(level)
    drop_top = validate.integer(drop_top, "drop_top", minimum=0)
    inputs: list[Input] = [read(r) for r in results]
    d, label = _read_data(data, columns, drop_top)
    ctx = Context(d, label, level, inputs)
    sections = []
    for i, inp in enumerate(inputs, 1):
        s = BUILDERS[inp.kind](inp, ctx)
        sections.append((f"s{i}", f"{i}. {s.heading}", s.body))
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    given = (f"data given: {label} ({len(d)} rows, fingerprint {d.fingerprint()})" if d is not None
             else "no data given (contours drawn without runs; residuals left out)")
    header = Raw(f'<p class="meta">Written {esc(now)} by jaxscale {esc(__version__)}; {len(inputs)} result(s): '
                 f"{esc(', '.join(i.kind for i in inputs))}; {esc(given)}.</p>")
    write_atomic(out, page(title or "jaxscale report", header, sections))
    return out


class _CallableModule(types.ModuleType):
    """``jaxscale.report`` is this module, and calling it calls :func:`report`."""

    def __call__(self, *results, **kwargs):
        return report(*results, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
