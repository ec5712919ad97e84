"""Training logs as long frames: one row per checkpoint ``(run, step)``, one column per logged metric.

Two layouts are read, both into the same pandas DataFrame: columns ``run`` and ``step`` first, then the metrics;
rows sorted by run (in the order the runs first appear) and by step within a run, with a fresh 0-based index.

:func:`read_long`
    Long-format logs: a row per ``(run, step)`` with a column per metric, or the "tidy" layout with columns
    ``run``, ``step``, ``metric``, ``value`` (a row per logged number), which is pivoted.
:func:`read_wandb`
    The CSV that a Weights & Biases panel exports: a step column and a column ``<run> - <metric>`` per run and
    metric.

Either frame goes to :meth:`ScalingData.from_frame <jaxscale.ScalingData.from_frame>` with the roles of a
checkpoint (``run``, ``step``, ``lr``, and ``loss``); the schedule covariates of each run then come from its
logged learning rates (see :mod:`jaxscale.schedule`).

Examples
--------
>>> import os, tempfile
>>> from jaxscale import ScalingData
>>> from jaxscale.runs import read_wandb
>>> text = '''Step,a - eval/loss,a - eval/loss__MIN,a - eval/loss__MAX,a - optim/lr,b - eval/loss,b - optim/lr
... 100,4.1,4.1,4.1,0.001,4.0,0.002
... 200,3.6,3.6,3.6,0.001,3.5,0.002
... 300,3.4,3.4,3.4,0.0005,,
... '''
>>> with tempfile.TemporaryDirectory() as tmp:
...     path = os.path.join(tmp, "export.csv")
...     with open(path, "w") as f:
...         _ = f.write(text)
...     frame = read_wandb(path)
>>> frame
  run  step  eval/loss  optim/lr
0   a   100        4.1    0.0010
1   a   200        3.6    0.0010
2   a   300        3.4    0.0005
3   b   100        4.0    0.0020
4   b   200        3.5    0.0020
>>> data = ScalingData.from_frame(frame, loss="eval/loss", lr="optim/lr", run="run", step="step")
>>> data.covariates["S1"].round(4).tolist()   # sum of the LR over the steps so far, interpolated between rows
[0.0505, 0.1505, 0.2253, 0.101, 0.301]
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence

import numpy as np

from jaxscale._io import read_text
from jaxscale.data import read_csv
from jaxscale.errors import DataError

__all__ = ["RUN", "STEP", "WANDB_IGNORED", "WANDB_SEPARATOR", "WANDB_STEPS", "read_long", "read_wandb"]

#: The names of the run and step columns of the frames :func:`read_long` and :func:`read_wandb` return.
RUN, STEP = "run", "step"
#: Step columns :func:`read_wandb` looks for when none is given, in this order.
WANDB_STEPS = ("Step", "_step")
#: What separates the run from the metric in a W&B column name (``<run> - <metric>``; split at the first one).
WANDB_SEPARATOR = " - "
#: Suffixes of the W&B columns that hold the min and max over a panel's grouped runs; they are not metrics.
WANDB_IGNORED = ("__MIN", "__MAX")


class _Rows:
    """Names row ``i`` of the source for messages: its file line, else its row index."""

    def __init__(self, frame, lines, shown):
        self.lines = lines
        self.labels = np.asarray(frame.index)
        self.positional = bool(np.array_equal(self.labels, np.arange(len(self.labels))))
        self.shown = shown

    def __call__(self, i) -> str:
        if self.lines is not None:
            return f"line {int(self.lines[i])}"
        if self.positional:
            return f"row {int(i)} (0-based row index)"
        label = self.labels[i]
        return f"row with index label {label.item() if isinstance(label, np.generic) else label!r}"


def _source(source, sep):
    import pandas as pd

    if isinstance(source, pd.DataFrame):
        return source, _Rows(source, None, "the DataFrame")
    if isinstance(source, (str, os.PathLike)):
        table = read_csv(source, sep=sep)
        return table.frame, _Rows(table.frame, table.lines, os.fspath(source))
    raise DataError(f"read_long needs a CSV path or a pandas DataFrame; got {type(source).__name__}.")


def _column(frame, name, role: str, rows: _Rows) -> None:
    if name not in frame.columns:
        raise DataError(f"{rows.shown}: no {role} column {name!r}; its columns are {list(frame.columns)} (give "
                        f"{role}=<column>).")


def _labels(values, col, rows: _Rows) -> np.ndarray:
    import pandas as pd

    values = np.asarray(values, dtype=object)
    missing = np.flatnonzero(pd.isna(values))
    if missing.size:
        raise DataError(f"{rows.shown}: column {col!r} (run) is empty at {rows(missing[0])}; every row needs its run.")
    return values


def _numbers(values, col: str, rows: _Rows, what: str) -> np.ndarray:
    """``values`` as float64 (NaN for a missing cell), or a DataError naming the first cell that is not a number."""
    out = np.empty(len(values))
    for i, v in enumerate(np.asarray(values, dtype=object)):
        if isinstance(v, (bool, np.bool_)):
            raise DataError(f"{rows.shown}: column {col!r} ({what}) holds a boolean at {rows(i)}; expected numbers.")
        try:
            out[i] = np.nan if v is None else float(v)
        except (TypeError, ValueError):
            raise DataError(f"{rows.shown}: column {col!r} ({what}): {rows(i)} holds {v!r}, which is not a "
                            f"number.") from None
    return out


def _steps(values, col: str, rows: _Rows) -> np.ndarray:
    s = _numbers(values, col, rows, "step")
    bad = np.flatnonzero(~np.isfinite(s) | (s < 0) | (s != np.round(s)))
    if bad.size:
        v = s[bad[0]]
        got = "no step" if np.isnan(v) else f"{v:g}"
        raise DataError(f"{rows.shown}: column {col!r} (step) must hold whole numbers >= 0 (optimizer steps); "
                        f"{rows(bad[0])} has {got}.")
    return s.astype(np.int64)


def _first_repeat(*keys) -> tuple[int, int] | None:
    """``(i, j)``: the earliest row ``j`` whose key repeats that of an earlier row ``i``; None if none repeats."""
    import pandas as pd

    frame = pd.DataFrame({f"k{n}": k for n, k in enumerate(keys)})
    dup = np.flatnonzero(frame.duplicated().to_numpy())
    if not dup.size:
        return None
    j = int(dup[0])
    same = np.ones(len(frame), bool)
    for k in keys:
        same &= np.asarray(k) == np.asarray(k)[j]
    return int(np.flatnonzero(same)[0]), j


def _order(runs: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Row order by run (first appearance) then step."""
    import pandas as pd

    codes = pd.factorize(runs)[0]
    return np.lexsort((steps, codes))


def _check_names(names: Sequence, taken: Sequence, rows: _Rows) -> None:
    clash = [m for m in names if m in taken]
    if clash:
        raise DataError(f"{rows.shown}: metric(s) {clash} would clash with the columns {list(taken)} of the frame; "
                        f"rename them.")


def read_long(source, *, run: str = "run", step: str = "step", metrics: Sequence[str] | None = None,
              sep: str | None = None):
    """A long-format training log: one row per ``(run, step)``, one column per metric.

    Parameters
    ----------
    source
        A CSV path (read by :func:`jaxscale.data.read_csv`: messages then name file lines) or a pandas DataFrame.
    run, step
        The run and step columns; the result calls them ``run`` and ``step``.
    metrics
        The metric columns to keep (default: every other column). In the tidy layout, the metric names to keep.
    sep
        The CSV separator (default: sniffed).

    Returns
    -------
    pandas.DataFrame
        ``run``, ``step`` (int64), then the metrics; sorted by run (in order of first appearance) and step, with
        a 0-based index. Cells are kept as read (a metric not logged at a step is NaN).

    Notes
    -----
    **The tidy layout.** A source with columns ``metric`` and ``value`` is read as one logged number per row
    (``run, step, metric, value``) and pivoted to a column per metric (in order of first appearance); values must
    be numbers. Any other column is carried along and must hold one value per ``(run, step)``.

    Raises
    ------
    DataError
        A missing column; a step that is not a whole number >= 0 or a run label that is empty (naming the
        line/row); the same ``(run, step)`` twice (tidy: the same ``(run, step, metric)``), naming the run and
        both lines/rows.

    Examples
    --------
    >>> import pandas as pd
    >>> from jaxscale.runs import read_long
    >>> tidy = pd.DataFrame({"run": ["b", "b", "a", "b"], "step": [20, 10, 10, 10],
    ...                      "metric": ["loss", "loss", "loss", "lr"], "value": [2.5, 3.0, 3.1, 1e-3]})
    >>> read_long(tidy)
      run  step  loss     lr
    0   b    10   3.0  0.001
    1   b    20   2.5    NaN
    2   a    10   3.1    NaN
    >>> read_long(tidy.assign(step=10))
    Traceback (most recent call last):
    ...
    jaxscale.errors.DataError: the DataFrame: run 'b' logs metric 'loss' at step 10 twice: row 0 (0-based row index) and row 1 (0-based row index); give each (run, step, metric) once.
    """
    import pandas as pd

    frame, rows = _source(source, sep)
    for name, role in ((run, "run"), (step, "step")):
        _column(frame, name, role, rows)
    if run == step:
        raise DataError(f"run and step name the same column {run!r}.")
    runs = _labels(frame[run], run, rows)
    steps = _steps(frame[step], step, rows)
    tidy = "metric" in frame.columns and "value" in frame.columns
    if not tidy:
        names = [c for c in frame.columns if c not in (run, step)] if metrics is None else list(metrics)
        for m in names:
            _column(frame, m, "metric", rows)
        _check_names(names, (RUN, STEP), rows)
        hit = _first_repeat(runs, steps)
        if hit is not None:
            i, j = hit
            raise DataError(f"{rows.shown}: run {runs[j]!r} has step {steps[j]} twice: {rows(i)} and {rows(j)}; "
                            f"give one row per (run, step).")
        order = _order(runs, steps)
        out = pd.DataFrame({RUN: runs[order], STEP: steps[order]})
        for m in names:
            out[m] = frame[m].to_numpy()[order]
        return out

    labels = frame["metric"].to_numpy(dtype=object)
    missing = np.flatnonzero(pd.isna(labels))
    if missing.size:
        raise DataError(f"{rows.shown}: column 'metric' is empty at {rows(missing[0])}; every row names its metric.")
    labels = np.array([str(v) for v in labels], dtype=object)
    values = _numbers(frame["value"], "value", rows, "value")
    keep = np.ones(len(frame), bool)
    if metrics is not None:
        absent = [m for m in metrics if m not in set(labels)]
        if absent:
            raise DataError(f"{rows.shown}: no metric {absent} in column 'metric'; it holds "
                            f"{list(dict.fromkeys(labels))[:20]}.")
        keep = np.isin(labels, list(metrics))
    hit = _first_repeat(runs[keep], steps[keep], labels[keep])
    if hit is not None:
        i, j = np.flatnonzero(keep)[list(hit)]
        raise DataError(f"{rows.shown}: run {runs[j]!r} logs metric {labels[j]!r} at step {steps[j]} twice: "
                        f"{rows(i)} and {rows(j)}; give each (run, step, metric) once.")
    extras = [c for c in frame.columns if c not in (run, step, "metric", "value")]
    names = list(dict.fromkeys(labels[keep]))
    _check_names(names, (RUN, STEP, *extras), rows)
    codes = pd.factorize(runs)[0]
    pairs, first, pair_of = np.unique(np.stack([codes, steps], axis=1), axis=0, return_index=True,
                                      return_inverse=True)
    pair_of = pair_of.ravel()
    out = pd.DataFrame({RUN: runs[first], STEP: steps[first]})
    for c in extras:
        v = frame[c].to_numpy(dtype=object)
        ref = v[first][pair_of]
        differ = np.flatnonzero(~((ref == v) | (pd.isna(ref) & pd.isna(v))))
        if differ.size:
            j = differ[0]
            i = first[pair_of[j]]
            raise DataError(f"{rows.shown}: column {c!r} differs within run {runs[j]!r} at step {steps[j]}: "
                            f"{rows(i)} has {v[i]!r}, {rows(j)} has {v[j]!r}; a column besides metric and value "
                            f"must hold one value per (run, step).")
        out[c] = frame[c].to_numpy()[first]
    table = np.full((len(pairs), len(names)), np.nan)
    col = {m: k for k, m in enumerate(names)}
    idx = np.flatnonzero(keep)
    table[pair_of[idx], [col[m] for m in labels[idx]]] = values[idx]
    for k, m in enumerate(names):
        out[m] = table[:, k]
    return out                                                 # np.unique sorted the pairs by (run code, step)


def _wandb_records(path, sep: str):
    shown = os.fspath(path)
    text = read_text(shown, "W&B export")
    reader = csv.reader(io.StringIO(text), delimiter=sep)
    records, lines = [], []
    try:
        while True:
            start = reader.line_num + 1
            try:
                record = next(reader)
            except StopIteration:
                break
            if record and any(cell.strip() for cell in record):
                records.append([cell.strip() for cell in record])
                lines.append(start)
    except csv.Error as e:
        raise DataError(f"Could not read {shown!r} as CSV: line {reader.line_num}: {e}.") from None
    if not records:
        raise DataError(f"W&B export {shown!r} is empty; expected a header line.")
    width = len(records[0])
    for record, line in zip(records[1:], lines[1:]):
        if len(record) != width:
            raise DataError(f"{shown}: line {line} has {len(record)} fields, the header (line {lines[0]}) {width}.")
    return shown, records[0], records[1:], lines


def read_wandb(path: str | os.PathLike, *, step: str | None = None, metrics: Sequence[str] | None = None,
               sep: str = ","):
    """A Weights & Biases panel export (CSV) as a long frame: one row per ``(run, step)``, one column per metric.

    Parameters
    ----------
    path
        The exported CSV: a step column and one column ``<run> - <metric>`` per run and metric.
    step
        The step column (default: the first of :data:`WANDB_STEPS`, ``Step`` or ``_step``, in the header).
    metrics
        The metrics to keep (default: all).
    sep
        The field separator (W&B writes commas).

    Returns
    -------
    pandas.DataFrame
        As :func:`read_long` returns: ``run``, ``step`` (int64), then one float64 column per metric (in header
        order); runs in header order, steps sorted within a run.

    Notes
    -----
    - A column name is split at its first :data:`WANDB_SEPARATOR` (``" - "``) into run and metric, so a run's
      name must not hold ``" - "``; a metric's may.
    - Columns ending in ``__MIN`` or ``__MAX`` (:data:`WANDB_IGNORED`) hold the range over the runs W&B grouped
      into one line; they are ignored.
    - An empty cell means the run did not log that metric at that step: a line where a run has no value for any
      metric is not a row of that run (W&B writes one line per step of any run). A cell that says ``NaN`` is a
      logged NaN and stays one.

    Raises
    ------
    DataError
        No step column; a column that is not ``<run> - <metric>``; a step that is not a whole number >= 0; a
        non-empty cell that is not a number (naming its line and column); one run at one step on two lines.

    Examples
    --------
    >>> import os, tempfile
    >>> from jaxscale.runs import read_wandb
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "export.csv")
    ...     with open(path, "w") as f:
    ...         _ = f.write("Step,r1 - loss\\n10,3.2\\n20,n/a\\n")
    ...     read_wandb(path)
    Traceback (most recent call last):
    ...
    jaxscale.errors.DataError: ...export.csv: line 3, column 'r1 - loss': 'n/a' is not a number (an empty cell means not logged).
    """
    import pandas as pd

    shown, header, records, lines = _wandb_records(path, sep)
    repeats = [h for i, h in enumerate(header) if h in header[:i]]
    if repeats:
        raise DataError(f"{shown}: column names repeat in the header (line {lines[0]}): {sorted(set(repeats))}.")
    if step is None:
        step = next((s for s in WANDB_STEPS if s in header), None)
        if step is None:
            raise DataError(f"{shown}: no step column ({' or '.join(WANDB_STEPS)}) in the header (line {lines[0]}); "
                            f"give step=<column>; its columns are {header[:10]}.")
    elif step not in header:
        raise DataError(f"{shown}: no step column {step!r} in the header (line {lines[0]}); its columns are "
                        f"{header[:10]}.")
    cells = np.array(records, dtype=object).reshape(len(records), len(header))
    rows = _Rows(pd.DataFrame(index=range(len(records))), np.asarray(lines[1:]), shown)
    s_col = header.index(step)
    steps = _steps([np.nan if c == "" else c for c in cells[:, s_col]], step, rows)
    columns = []                                               # (header index, run, metric)
    for k, name in enumerate(header):
        if k == s_col or name.endswith(WANDB_IGNORED):
            continue
        run, found, metric = name.partition(WANDB_SEPARATOR)
        if not found or not run.strip() or not metric.strip():
            raise DataError(f"{shown}: column {name!r} (header, line {lines[0]}) is not '<run>{WANDB_SEPARATOR}"
                            f"<metric>' as W&B exports name them (the step column is {step!r}).")
        columns.append((k, run.strip(), metric.strip()))
    names = list(dict.fromkeys(m for _, _, m in columns))
    if metrics is not None:
        absent = [m for m in metrics if m not in names]
        if absent:
            raise DataError(f"{shown}: no metric {absent} in the export; it has {names[:20]}.")
        names = [m for m in names if m in set(metrics)]
        columns = [c for c in columns if c[2] in set(names)]
    _check_names(names, (RUN, STEP), rows)
    parts = []
    for run in dict.fromkeys(r for _, r, _ in columns):
        mine = [(k, m) for k, r, m in columns if r == run]
        logged = np.zeros(len(records), bool)
        values = {}
        for k, m in mine:
            col = cells[:, k]
            have = col != ""
            v = np.full(len(records), np.nan)
            for i in np.flatnonzero(have):
                try:
                    v[i] = float(col[i])
                except ValueError:
                    raise DataError(f"{shown}: line {lines[1 + i]}, column {header[k]!r}: {col[i]!r} is not a number "
                                    f"(an empty cell means not logged).") from None
            values[m] = v
            logged |= have
        idx = np.flatnonzero(logged)
        idx = idx[np.argsort(steps[idx], kind="stable")]
        repeat = np.flatnonzero(np.diff(steps[idx]) == 0)
        if repeat.size:
            i, j = sorted(idx[repeat[0]:repeat[0] + 2])
            raise DataError(f"{shown}: run {run!r} has step {steps[i]} on two lines, {lines[1 + i]} and "
                            f"{lines[1 + j]}; give one line per step.")
        part = pd.DataFrame({RUN: np.full(idx.size, run, dtype=object), STEP: steps[idx]})
        for m in names:
            part[m] = values[m][idx] if m in values else np.nan
        parts.append(part)
    if not parts:
        raise DataError(f"{shown}: no '<run>{WANDB_SEPARATOR}<metric>' columns besides the step column {step!r}.")
    return pd.concat(parts, ignore_index=True)
