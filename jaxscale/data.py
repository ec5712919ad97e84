"""Validated scaling-law data.

:class:`ScalingData` holds the covariates (N, D, C, U, x), the target (loss or
score) and optional ``group``/``run`` labels as immutable float64 arrays,
checked once on construction so that the fitter never sees a NaN, a
non-positive value or a string. Every check runs before any fitting, and every
message names the column, the row (the file line, for a CSV) and the value.

CSV files are read by :func:`read_csv`: the separator is sniffed (``,``,
``;``, tab or ``|``), header names are stripped and must not repeat, and each
row keeps its file line for messages.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from jaxscale import schedule, validate
from jaxscale._io import read_text
from jaxscale.errors import ArgumentError, DataError

#: Column names recognised for each role when no explicit mapping is given, compared after
#: :func:`normalize_name` (case-insensitive; surrounding space stripped; ``/``, ``-``, ``.`` and spaces count as
#: ``_``). Two columns matching one role is an ambiguity error. The generic resource ``x`` and the ``group`` label
#: are only ever taken from an explicit mapping.
ALIASES: dict[str, tuple[str, ...]] = {
    "N": ("n", "params", "parameters", "model_params", "num_params", "n_params", "model_size",
          "non_embedding_params"),
    "D": ("d", "tokens", "num_tokens", "n_tokens", "train_tokens", "training_tokens", "tokens_seen", "dataset_size"),
    "C": ("c", "flops", "compute", "train_flops", "training_flop", "training_flops", "total_flops"),
    "U": ("u", "unique_tokens"),
    "loss": ("loss", "train_loss", "eval_loss", "val_loss", "validation_loss", "final_loss", "score"),
    # checkpoints of one training run share its seed and schedule: the run role marks them (forecasts and the
    # Bayesian model then treat a run, not a row, as the unit of independence)
    "run": ("run", "run_id", "name"),
    # a checkpoint's optimizer step and learning rate: with them (and run) the schedule covariates of
    # jaxscale.schedule are computed from each run's history
    "step": ("step", "_step", "global_step", "iteration"),
    "lr": ("lr", "learning_rate", "optim_learning_rate_group0"),
    "lr_peak": ("lr_peak", "learning_rate_peak", "peak_lr"),
    "batch_size": ("batch_size", "batch_size_tokens", "batch_size_in_tokens", "tokens_per_step"),
}
#: Covariate roles: parameters N, tokens D, compute C, unique tokens U, a generic resource x, and the resources of
#: the laws of routed models, training precision and inference-time compute (experts per layer, granularity,
#: training precision in bits, post-training quantisation precision in bits, samples drawn per problem). Only
#: the first four are recognised by their usual names; the others are mapped explicitly (``experts="E"``).
COVARIATE_KEYS = ("N", "D", "C", "U", "x", "experts", "granularity", "precision", "precision_post", "samples")
#: Covariates with a floor above 0: a model has at least one expert (1 is dense) and experts at most as wide as
#: the dense feed-forward layer (granularity 1). Rows below are a DataError naming the column and the row.
COVARIATE_MINIMUM = {"experts": 1.0, "granularity": 1.0}
LABEL_KEYS = ("group", "run")
#: Roles that describe a checkpoint's place in its run's learning-rate schedule (see :mod:`jaxscale.schedule`):
#: the optimizer step, the LR at that step, the run's peak LR and its batch size in tokens per step.
SCHEDULE_ROLES = ("step", "lr", "lr_peak", "batch_size")
TARGET_KEYS = ("loss", "score", "y")
#: The per-point weight role (``weight="w"``, ``--col weight=w``): finite, >= 0, not all zero; it multiplies each
#: point's term of the objective (and its log-likelihood). Only ever taken from an explicit mapping: a column
#: called "weights" could as well be a count of model weights.
WEIGHT_KEY = "weight"
#: Separators :func:`read_csv` recognises when it sniffs one.
SEPARATORS = (",", ";", "\t", "|")
_SEP_NAMES = {"\\t": "\t", "tab": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
#: A covariate with a gap wider than this (in decades) between two clusters of its values warns of mixed units.
MIXED_UNITS_DECADES = 4.0
#: The covariates checked for mixed units: counts of parameters, tokens and FLOPs. The generic resource ``x`` is
#: not: its unit is the user's, and a design spread over distant values is legitimate there.
MIXED_UNITS_KEYS = ("N", "D", "C", "U")
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def normalize_name(name) -> str:
    """A column name as alias matching compares it: stripped, lower case, ``/ - .`` and spaces as ``_``.

    >>> normalize_name(" Eval/Loss ")
    'eval_loss'
    """
    return re.sub(r"[/\-. ]", "_", str(name).strip().lower())


def matching_columns(columns, role: str) -> list:
    """The columns among ``columns`` whose names are recognised for ``role`` (see :data:`ALIASES`), in order.

    >>> matching_columns(["Model Size", "Training FLOP", "eval/loss"], "loss")
    ['eval/loss']
    """
    names = set(ALIASES.get(role, ()))
    return [c for c in columns if normalize_name(c) in names]


def alias_table() -> str:
    """The column names recognised for each role, as a Markdown table (the one in :meth:`ScalingData.from_csv`).

    >>> print(alias_table().splitlines()[2])
    | N | n, params, parameters, model_params, num_params, n_params, model_size, non_embedding_params |
    """
    rows = ["| role | recognised column names |", "|---|---|"]
    rows += [f"| {role} | {', '.join(names)} |" for role, names in ALIASES.items()]
    rows.append("| x, group | only by an explicit mapping (--col x=<column>; Python: x='<column>') |")
    return "\n".join(rows)


def _map_hint(role: str) -> str:
    return f"--col {role}=<column> (Python: {role}='<column>')"


def user_stacklevel() -> int:
    """The stack level of the first caller outside jaxscale, so a warning points at the user's line."""
    import sys

    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    return level


class CsvTable(NamedTuple):
    """A CSV file as :func:`read_csv` reads it."""

    frame: Any
    """The rows as a pandas DataFrame, header names stripped."""
    lines: np.ndarray | None
    """The 1-based file line of each row (header = its own line), or None where it could not be told exactly."""
    path: str
    """The path as given."""
    sep: str
    """The separator used (given or sniffed)."""


def _separator(sep) -> str | None:
    if sep is None:
        return None
    if isinstance(sep, str) and sep.lower() in _SEP_NAMES:
        return _SEP_NAMES[sep.lower()]
    if not isinstance(sep, str) or len(sep) != 1 or sep in "\"\r\n":
        raise ArgumentError(f"sep must be one character, e.g. ',' ';' or '\\t' (or 'tab'); got {sep!r}.")
    return sep


def _sniff(text: str) -> str:
    """The separator among :data:`SEPARATORS` that splits the header into the most columns, the rows agreeing."""
    sample = text[: 1 << 16]
    if len(text) > len(sample):
        sample = sample[: sample.rfind("\n") + 1] or sample
    best, best_score = ",", None
    for sep in SEPARATORS:
        records = [r for r in csv.reader(io.StringIO(sample), delimiter=sep) if not _blank(r)][:50]
        if not records or len(records[0]) < 2:
            continue
        width = len(records[0])
        agree = sum(len(r) == width for r in records[1:]) / max(len(records) - 1, 1)
        if agree < 0.5:
            continue
        score = (agree, width)
        if best_score is None or score > best_score:
            best, best_score = sep, score
    return best


def _blank(record: list[str]) -> bool:
    # pandas skips empty and whitespace-only lines (skip_blank_lines=True)
    return not record or (len(record) == 1 and not record[0].strip())


def read_csv(path: str | os.PathLike, *, sep: str | None = None) -> CsvTable:
    """Read a CSV file of runs, checking its header, and keep each row's file line.

    Parameters
    ----------
    path
        The file (UTF-8 text; a byte-order mark is allowed).
    sep
        The separator: one character (``'tab'`` and ``'\\t'`` mean a tab). ``None`` (default) sniffs it among
        ``,``, ``;``, tab and ``|`` from the first 64 KB: the one that splits the header into the most columns
        with the rows agreeing.

    Returns
    -------
    CsvTable
        ``frame`` (header names stripped of surrounding space), ``lines`` (the 1-based file line of each row:
        the header is line 1 unless blank lines precede it; blank lines are skipped and counted), ``path``,
        ``sep``.

    Raises
    ------
    DataError
        The file is missing, empty or not CSV; a header name repeats (pandas would silently rename the second
        ``N`` to ``N.1``); or the file reads as one column whose name holds another separator (give ``sep``).

    Examples
    --------
    >>> import os, tempfile
    >>> from jaxscale.data import read_csv
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "runs.csv")
    ...     with open(path, "w") as f:
    ...         _ = f.write("N;D;loss\\n1e8;2e9;3.1\\n\\n1e9;2e10;2.6\\n")
    ...     table = read_csv(path)
    >>> table.sep, list(table.frame.columns), table.lines.tolist()
    (';', ['N', 'D', 'loss'], [2, 4])
    """
    sep = _separator(sep)
    shown = os.fspath(path)
    text = read_text(shown, "data file", hint="; save it as UTF-8")
    return parse_csv(text, shown, sep)


def parse_csv(text: str, shown: str, sep: str | None) -> CsvTable:
    """The CSV ``text`` (already read) as :func:`read_csv` reads a file: the same header checks and file lines;
    ``shown`` names it in messages."""
    import pandas as pd

    if sep is None:
        sep = _sniff(text)
    header, header_line, lines = None, 0, []
    reader = csv.reader(io.StringIO(text), delimiter=sep)
    try:
        while True:
            start = reader.line_num + 1
            try:
                record = next(reader)
            except StopIteration:
                break
            if _blank(record):
                continue
            if header is None:
                header, header_line = record, start
            else:
                lines.append(start)
    except csv.Error as e:
        if header is None:
            raise DataError(f"Could not read {shown!r} as CSV: {e}.") from None
        lines = None  # pandas may still read it; messages then give row indices
    if header is None:
        raise DataError(f"Data file {shown!r} is empty; expected a header line and one row per run.")
    names = [h.strip() for h in header]
    repeats = [n for i, n in enumerate(names) if n and n in names[:i]]
    if repeats:
        raise DataError(f"column names repeat in {shown}: {sorted(set(repeats), key=repeats.index)} (header, line "
                        f"{header_line}); give each column a unique name.")
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep)
    except Exception as e:  # pandas raises many types for a malformed file
        raise DataError(f"Could not read {shown!r} as CSV: {e}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.shape[1] == 1:
        # any punctuation a column name would not hold may be the separator (':' too, not only SEPARATORS)
        other = [c for c in dict.fromkeys(frame.columns[0]) if c != sep and not (c.isalnum() or c in "_.-/()[]% '\"")]
        if other:
            raise DataError(f"{shown} reads as a single column {frame.columns[0]!r} with separator {sep!r}; its "
                            f"header holds {other[0]!r}: give the separator with --sep {other[0]!r} "
                            f"(Python: sep={other[0]!r}).")
    rows = np.asarray(lines) if lines is not None and len(lines) == len(frame) else None
    return CsvTable(frame, rows, shown, sep)


class _Where:
    """Where data rows came from, for messages: file lines (from a CSV) or row indices."""

    def __init__(self, labels, lines=None, lines_of=None):
        self.labels = np.asarray(labels)
        self.lines = lines
        self.file = f"{lines_of} " if lines_of else ""
        self.positional = bool(np.array_equal(self.labels, np.arange(self.labels.shape[0])))

    def one(self, i: int) -> str:
        if self.lines is not None:
            return f"{self.file}line {int(self.lines[i])}"
        if self.positional:
            return f"row {int(i)} (0-based row index)"
        label = self.labels[i]
        return f"row with index label {label.item() if isinstance(label, np.generic) else label!r}"

    def many(self, idx, limit: int = 10) -> str:
        idx = np.asarray(idx, dtype=int)
        more = f" and {idx.size - limit} more" if idx.size > limit else ""
        idx = idx[:limit]
        if self.lines is not None:
            return f"{self.file}lines {np.asarray(self.lines)[idx].tolist()}{more}"
        if self.positional:
            return f"rows {idx.tolist()}{more} (0-based row indices)"
        return f"rows with index labels {self.labels[idx].tolist()}{more}"


def mixed_units(values) -> tuple[np.ndarray, float] | None:
    """Whether a positive column looks like a mix of units, and which rows stand apart.

    The rule: sort the distinct values on a log scale and find the widest gap between neighbours. The column
    looks mixed when that gap exceeds :data:`MIXED_UNITS_DECADES` (a factor 1e4, with no value in between) *and*
    is wider than the spread of the values on either side of it: two tight clusters far apart, as when some model
    sizes are given in billions and the rest in parameters. At least three distinct values are needed. Real
    scaling data spread over many decades fill them (an IsoFLOP grid from 1e7 to 1e11 parameters has no such gap),
    so it does not fire there: no column of the published data sets shipped with the tests has a gap over 1e2.
    :class:`ScalingData` applies it to the given (not derived) N, D, C and U (:data:`MIXED_UNITS_KEYS`) and warns
    once per column, naming the flagged rows.

    Returns
    -------
    tuple or None
        ``(rows, factor)``: a boolean mask of the smaller cluster (by count; the lower one on a tie), and how many
        times larger the other cluster's typical value is (a power of ten; below 1 when the flagged rows are the
        larger ones). None when the column looks consistent.

    Examples
    --------
    >>> rows, factor = mixed_units([1.3e8, 4e8, 1e9, 7.0, 13.0])
    >>> rows.tolist(), factor
    ([False, False, False, True, True], 100000000.0)
    >>> mixed_units(np.logspace(7, 11, 20)) is None
    True
    """
    logv = np.log10(np.asarray(values, dtype=np.float64))
    u = np.unique(logv)
    if u.size < 3:
        return None
    gaps = np.diff(u)
    i = int(np.argmax(gaps))
    if gaps[i] <= MIXED_UNITS_DECADES or gaps[i] <= max(u[i] - u[0], u[-1] - u[i + 1]):
        return None
    low = logv <= u[i]
    flagged = low if low.sum() <= (~low).sum() else ~low
    ratio = np.median(logv[~flagged]) - np.median(logv[flagged])
    return flagged, float(10.0 ** np.round(ratio))


@dataclass(frozen=True, eq=False)
class ScalingData:
    """Validated data for fitting a scaling law.

    Build it with :meth:`from_frame`, :meth:`from_csv` or :meth:`from_arrays`.
    Construction checks, before any work: every target and covariate value is a
    real, finite number > 0 (booleans and complex numbers are refused, in every
    constructor alike); a derived D (or C) is finite and > 0 too; a covariate
    that looks like mixed units (see :func:`mixed_units`) and duplicate rows
    warn. Messages name the column and the file line (CSV) or row index.

    Attributes
    ----------
    covariates
        Mapping from ``"N"``, ``"D"``, ``"C"``, ``"U"``, ``"x"`` (those present)
        to positive, finite float64 arrays.
    y
        The target: loss (or benchmark score), positive and finite.
    group, run
        Optional labels (model family; training run, for checkpoints).
    weight
        Optional per-point weights (finite, >= 0, not all zero): :func:`jaxscale.fit`, the bootstrap and the
        posterior multiply each point's term by its weight (a weight of 2 counts the point twice; a point of
        weight 0 stays in the data but does not influence the fit).
    step
        The optimizer step of each checkpoint, when the rows are checkpoints of runs under a learning-rate
        schedule (their schedule covariates are then in ``covariates``: :meth:`from_frame`).
    flops_per_token
        The k in C = k N D used to derive a missing D or C.
    source
        Where the data came from (for provenance).

    Examples
    --------
    >>> import numpy as np
    >>> from jaxscale import ScalingData
    >>> d = ScalingData.from_arrays(N=[1e8, 1e9, 1e10], C=[1e19, 1e20, 1e21], loss=[3.0, 2.6, 2.3])
    >>> d.covariates["D"]            # derived as C / (6 N)
    array([1.66666667e+10, 1.66666667e+10, 1.66666667e+10])
    """

    covariates: Mapping[str, np.ndarray]
    y: np.ndarray
    group: np.ndarray | None = None
    run: np.ndarray | None = None
    flops_per_token: float = 6.0
    source: str = "arrays"
    target_name: str = "loss"
    _index: np.ndarray = field(default=None, repr=False)
    _columns: tuple | None = field(default=None, repr=False)
    step: np.ndarray | None = None
    _schedule_error: str | None = field(default=None, repr=False)
    weight: np.ndarray | None = None

    # ------------------------------------------------------------------ build
    @classmethod
    def from_arrays(
        cls,
        *,
        loss=None,
        N=None,
        D=None,
        C=None,
        U=None,
        x=None,
        group=None,
        run=None,
        step=None,
        lr=None,
        lr_peak=None,
        batch_size=None,
        schedule=None,
        flops_per_token: float = 6.0,
        target_name: str = "loss",
        weight=None,
    ) -> ScalingData:
        """Build from arrays (keyword arguments named after the covariates).

        Parameters
        ----------
        loss
            The target values (loss or score).
        N, D, C, U, x
            Covariates: any real numeric arrays (every NumPy int and float dtype, lists, numeric strings). A
            missing D (or C) is derived from C = k N D.
        group, run
            Optional labels, one per row.
        weight
            Optional per-point weights, one per row: finite, >= 0 and not all zero (see :attr:`weight`).
        step, lr, lr_peak, batch_size, schedule
            A checkpoint's optimizer step and learning rate, its run's peak LR and tokens per step, and the
            planned schedule(s): see :ref:`schedule covariates <schedule-covariates>` in :meth:`from_frame`.
        flops_per_token
            k in C = k N D (6 by default); a Python or NumPy number > 0.
        target_name
            What the target is called in messages and tables.

        Returns
        -------
        ScalingData
            Messages about a row name its 0-based row index.

        Examples
        --------
        >>> import numpy as np
        >>> from jaxscale import ScalingData
        >>> d = ScalingData.from_arrays(N=np.array([1e8, 1e9], np.float32), D=np.array([2e9, 2e10]),
        ...                             loss=[3.0, 2.6], flops_per_token=np.float32(6.0))
        >>> d.covariates["C"].dtype, d.covariates["C"].tolist()
        (dtype('float64'), [1.2e+18, 1.2e+20])
        >>> ScalingData.from_arrays(N=[1e8, True], D=[2e9, 2e10], loss=[3.0, 2.6])
        Traceback (most recent call last):
        ...
        jaxscale.errors.DataError: N: row 1 (0-based row index) holds True, a boolean; expected numbers.
        """
        k = validate.positive(flops_per_token, "flops_per_token")
        raw = {key: v for key, v in dict(N=N, D=D, C=C, U=U, x=x).items() if v is not None}
        if loss is None:
            raise DataError("from_arrays needs loss=... (the target values: loss or score).")
        given = {key: _asarray(v) for key, v in {**raw, "loss": loss}.items()}
        for key, arr in given.items():
            if arr.ndim != 1:
                raise DataError(f"{key} must be one-dimensional; got shape {arr.shape}.")
        labels = {key: np.asarray(v) for key, v in dict(group=group, run=run).items() if v is not None}
        sched = {key: _asarray(v) for key, v in dict(step=step, lr=lr, lr_peak=lr_peak,
                                                      batch_size=batch_size).items() if v is not None}
        weights = {} if weight is None else {WEIGHT_KEY: _asarray(weight)}
        for key, arr in weights.items():
            if arr.ndim != 1:
                raise DataError(f"{key} must be one-dimensional; got shape {arr.shape}.")
        lengths = {key: len(v) for key, v in {**given, **labels, **sched, **weights}.items()}
        if len(set(lengths.values())) > 1:
            raise DataError(f"Mismatched lengths: {lengths}; every array must have the same length.")
        rows = np.arange(len(given["loss"]))
        where = _Where(rows)
        arrays = {key: _as_float(arr, key, where) for key, arr in given.items()}
        sched = {key: _as_float(arr, key, where) for key, arr in sched.items()}
        w = None if weight is None else _as_float(weights[WEIGHT_KEY], WEIGHT_KEY, where)
        return cls._build(arrays, labels, rows, where, k, "arrays", target_name, {}, None, sched, schedule,
                          weight=w)

    @classmethod
    def from_frame(
        cls,
        frame,
        *,
        flops_per_token: float = 6.0,
        source: str = "DataFrame",
        lines=None,
        lines_of: str | None = None,
        aliases: bool = True,
        schedule=None,
        history=None,
        **columns: str,
    ) -> ScalingData:
        """Build from a pandas DataFrame.

        Parameters
        ----------
        frame
            The data, one row per training run (or checkpoint). Column names
            must not repeat (compared stripped of surrounding space).
        flops_per_token
            k in C = k N D (6 by default); a Python or NumPy number > 0.
        source
            Where the frame came from, for provenance and messages.
        lines
            The file line of each row (:func:`read_csv` gives them): messages
            then say "line 9" instead of a row index.
        lines_of
            What file ``lines`` are lines of, for messages: ``"epoch_chinchilla"``
            makes them say "epoch_chinchilla line 9". None (default) says "line 9".
        aliases
            Look the unmapped roles up among the columns by their usual names
            (default). False maps the given roles only (a bundled data set's
            roles are explicit: :mod:`jaxscale.datasets`).
        schedule
            The planned learning-rate schedule(s) (:class:`jaxscale.schedule.Schedule`, its
            ``"kind:key=value,..."`` string, or a mapping run -> schedule): see below.
        history
            Earlier logged rows of the runs (a DataFrame with the same ``run``, ``step`` and ``lr`` columns),
            used for the LR history only, not as data points: e.g. the constant-LR rows a WSD decay branched
            off. Rows at or after a run's first checkpoint are ignored.
        **columns
            Mapping from canonical names (``N``, ``D``, ``C``, ``U``, ``x``,
            ``loss`` or ``score``, ``group``, ``run``, ``step``, ``lr``,
            ``lr_peak``, ``batch_size``) to column names, e.g.
            ``N="Model Size", C="Training FLOP"``; a name matches a column
            whose stripped name equals it. Unmapped canonical names are looked
            up among the columns by their usual names (:data:`ALIASES`; the
            table is in :meth:`from_csv`); two columns matching one role is an
            error.

        Returns
        -------
        ScalingData
            Messages about a row name its index label (its 0-based row index
            for a default index) or, with ``lines``, its file line.

        Notes
        -----
        .. _schedule-covariates:

        **Checkpoints of runs under a learning-rate schedule.** With a ``step`` column (and ``run``, when there
        is more than one run) every row is a checkpoint, and the data gains the schedule covariates of
        :mod:`jaxscale.schedule` (``S1``, ``S2``, ``S1_tokens``, ``S2_tokens``, ``mp_*``) that the loss-curve laws
        (``tissue``, ``multi_power``, ``curve``, ``curve_nd``) need. They are computed per run from

        - its planned ``schedule`` when given (exact; a row without a ``step`` column is taken at the end of its
          run's schedule, so final losses plus their schedules suffice), else
        - its logged ``lr`` rows (after its ``history`` rows, when given), which must then start at the
          beginning of the run: its first logged step at most 1.5 logging intervals from step 0 (before it the LR is taken to rise linearly from 0; between
          rows it is interpolated linearly, the trapezoid rule).

        Steps must increase within a run (rows are kept in their order), the LR must be finite and >= 0.
        ``lr_peak`` (default: the run's largest LR) and ``batch_size`` (tokens per step; default D / step)
        set the units of ``S1_tokens`` and ``S2_tokens``.

        Examples
        --------
        >>> import pandas as pd
        >>> from jaxscale import ScalingData
        >>> f = pd.DataFrame({"model_params": [1e8, 1e9], "train_tokens": [2e9, 2e10], "eval/loss": [3.1, 2.6]})
        >>> sorted(ScalingData.from_frame(f).covariates)
        ['C', 'D', 'N']
        >>> ScalingData.from_frame(f.rename(columns={"eval/loss": "acc"}))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        jaxscale.errors.DataError: No target column in the DataFrame: its columns are ['model_params', ...'acc']; ...
        """
        import pandas as pd

        k = validate.positive(flops_per_token, "flops_per_token")
        if not isinstance(frame, pd.DataFrame):
            raise DataError(f"from_frame needs a pandas DataFrame; got {type(frame).__name__}.")
        if lines is not None:
            lines = np.asarray(lines)
            if lines.shape != (len(frame),):
                raise ArgumentError(f"lines must give one file line per row ({len(frame)}); got shape {lines.shape}.")
        shown = "the DataFrame" if source == "DataFrame" else source
        mapping, target_name = _resolve_columns(list(frame.columns), dict(columns), shown, aliases)
        rows = np.asarray(frame.index)
        where = _Where(rows, lines, lines_of if lines is not None else None)
        names = {key: key if str(c) == key else f"{key} (column {c!r})" for key, c in mapping.items()}
        arrays = {key: _numeric_column(frame[c], f"column {c!r} ({key})", where)
                  for key, c in mapping.items() if key not in LABEL_KEYS and key not in SCHEDULE_ROLES
                  and key != WEIGHT_KEY}
        w = (None if WEIGHT_KEY not in mapping else
             _numeric_column(frame[mapping[WEIGHT_KEY]], f"column {mapping[WEIGHT_KEY]!r} ({WEIGHT_KEY})", where))
        sched = {key: _numeric_column(frame[c], f"column {c!r} ({key})", where)
                 for key, c in mapping.items() if key in SCHEDULE_ROLES}
        labels = {key: frame[c].to_numpy() for key, c in mapping.items() if key in LABEL_KEYS}
        for key, v in labels.items():
            missing = np.flatnonzero(pd.isna(v))
            if missing.size:
                raise DataError(f"Column {mapping[key]!r} ({key}) is missing a value at {where.one(missing[0])} "
                                f"({missing.size} row(s) missing); every row needs a label.")
        if history is not None:
            history = _history_rows(history, mapping)
        # schedule roles found by their usual names (not mapped, no schedule or history given) are used when they
        # can be: an error in them is kept for a law that needs the schedule covariates (require says it)
        lazy = not (set(columns) & set(SCHEDULE_ROLES)) and schedule is None and history is None
        return cls._build(arrays, labels, rows, where, k, source, target_name, names, tuple(frame.columns), sched,
                          schedule, history, lazy, weight=w)

    @classmethod
    def from_csv(cls, path: str | os.PathLike, *, sep: str | None = None, flops_per_token: float = 6.0,
                 **columns: str) -> ScalingData:
        """Read a CSV file and build from it (see :meth:`from_frame` and :func:`read_csv`).

        Parameters
        ----------
        path
            The CSV file, one row per run (or checkpoint), with a header line.
        sep
            The separator; ``None`` (default) sniffs ``,``, ``;``, tab or ``|``.
        flops_per_token
            k in C = k N D (6 by default).
        **columns
            Roles mapped to columns (``N="Model Size"``); the command line's
            ``--col N="Model Size"``. Header names are stripped, so ``N="N"``
            matches a header ``" N "``.

        Returns
        -------
        ScalingData
            Its messages about a row give the file line (the header is line 1).

        Notes
        -----
        Columns recognised without a mapping (case-insensitive; surrounding
        space stripped; ``/``, ``-``, ``.`` and spaces count as ``_``, so
        ``eval/loss`` is ``eval_loss``), as :func:`alias_table` renders them:

        | role | recognised column names |
        |---|---|
        | N | n, params, parameters, model_params, num_params, n_params, model_size, non_embedding_params |
        | D | d, tokens, num_tokens, n_tokens, train_tokens, training_tokens, tokens_seen, dataset_size |
        | C | c, flops, compute, train_flops, training_flop, training_flops, total_flops |
        | U | u, unique_tokens |
        | loss | loss, train_loss, eval_loss, val_loss, validation_loss, final_loss, score |
        | run | run, run_id, name |
        | step | step, _step, global_step, iteration |
        | lr | lr, learning_rate, optim_learning_rate_group0 |
        | lr_peak | lr_peak, learning_rate_peak, peak_lr |
        | batch_size | batch_size, batch_size_tokens, batch_size_in_tokens, tokens_per_step |
        | x, group | only by an explicit mapping (--col x=<column>; Python: x='<column>') |

        Examples
        --------
        >>> import os, tempfile
        >>> from jaxscale import ScalingData
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = os.path.join(tmp, "runs.csv")
        ...     with open(path, "w") as f:
        ...         _ = f.write(" N ; tokens ;loss\\n1e8;2e9;3.1\\n1e9;2e10;-2.6\\n")
        ...     ScalingData.from_csv(path, N="N")
        Traceback (most recent call last):
        ...
        jaxscale.errors.DataError: loss must be > 0; line 3 has -2.6 (1 row(s) <= 0).
        """
        k = validate.positive(flops_per_token, "flops_per_token")
        table = read_csv(path, sep=sep)
        return cls.from_frame(table.frame, flops_per_token=k, source=os.path.abspath(table.path), lines=table.lines,
                              **columns)

    @classmethod
    def from_dataset(cls, name: str, *, flops_per_token: float = 6.0, **columns) -> ScalingData:
        """A data set bundled with jaxscale, with its default roles: :func:`jaxscale.datasets.scaling_data`.

        ``columns`` map roles to columns over the defaults (``info(name).roles``) and may hold ``exclude`` and
        ``select``; messages about a row name its CSV line (``"epoch_chinchilla line 12"``).

        >>> from jaxscale import ScalingData
        >>> len(ScalingData.from_dataset("epoch_chinchilla").drop_top(5))   # Epoch's 240 points
        240
        """
        from jaxscale.datasets import scaling_data

        return scaling_data(name, flops_per_token=flops_per_token, **columns)

    @classmethod
    def coerce(cls, data, **columns) -> ScalingData:
        """Accept a ScalingData, a DataFrame, a CSV path or a mapping of arrays."""
        if isinstance(data, ScalingData):
            if columns:
                raise DataError("Column mappings apply only when building from a DataFrame or a CSV path.")
            return data
        if isinstance(data, (str, os.PathLike)):
            return cls.from_csv(data, **columns)
        if columns.get("sep") is not None:
            raise ArgumentError(f"sep applies only when reading a CSV path; got {type(data).__name__} data.")
        columns.pop("sep", None)
        try:
            import pandas as pd

            if isinstance(data, pd.DataFrame):
                return cls.from_frame(data, **columns)
        except ImportError:  # pragma: no cover
            pass
        if isinstance(data, Mapping):
            return cls.from_arrays(**{**data, **columns})
        raise DataError(f"Cannot make ScalingData from {type(data).__name__}; give a DataFrame, CSV path or ScalingData.")

    @classmethod
    def _build(cls, arrays, labels, rows, where, k, source, target_name, names, columns, sched=None,
               schedule=None, history=None, lazy=False, weight=None) -> ScalingData:
        if weight is not None:
            check_weight(weight, names.get(WEIGHT_KEY, WEIGHT_KEY), where.one)
            weight.setflags(write=False)
        for key, arr in arrays.items():
            name = names.get(key, key)
            bad = np.flatnonzero(~np.isfinite(arr))
            if bad.size:
                raise DataError(
                    f"{name} has {bad.size} non-finite value(s) (NaN or inf), first at {where.one(bad[0])}: "
                    f"{arr[bad[0]]}; expected finite numbers."
                )
            bad = np.flatnonzero(arr <= 0)
            if bad.size:
                raise DataError(
                    f"{name} must be > 0; {where.one(bad[0])} has {arr[bad[0]]} ({bad.size} row(s) <= 0)."
                )
            lo = COVARIATE_MINIMUM.get(key)
            bad = np.flatnonzero(arr < lo) if lo is not None else bad[:0]
            if bad.size:
                raise DataError(
                    f"{name} must be >= {lo:g}; {where.one(bad[0])} has {arr[bad[0]]} ({bad.size} row(s) < {lo:g})."
                )
        if arrays["loss"].size == 0:
            raise DataError("The data has no rows.")
        cov = {key: arrays[key] for key in COVARIATE_KEYS if key in arrays}
        given = list(cov)
        with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
            if "D" not in cov and "C" in cov and "N" in cov:
                cov["D"] = cov["C"] / (k * cov["N"])
                check_derived("D", f"C / ({k:g} N)", cov, ("C", "N"), where.one)
            elif "C" not in cov and "N" in cov and "D" in cov:
                cov["C"] = k * cov["N"] * cov["D"]
                check_derived("C", f"{k:g} N D", cov, ("N", "D"), where.one)
        for key in (k for k in given if k in MIXED_UNITS_KEYS):
            found = mixed_units(cov[key])
            if found is not None:
                flagged, factor = found
                power = int(round(np.log10(factor)))
                side = f"~1e{power}x smaller" if power >= 0 else f"~1e{-power}x larger"
                warnings.warn(f"{names.get(key, key)} looks like mixed units: {where.many(np.flatnonzero(flagged))} "
                              f"are {side} than the rest; give every value in the same unit.", UserWarning,
                              stacklevel=user_stacklevel())
        step, problem = None, None
        if sched or schedule is not None:
            try:
                step, features = _schedule_covariates(cov, labels.get("run"), dict(sched or {}), schedule, where,
                                                      names, history or {})
                cov.update(features)
            except DataError as e:
                if not lazy:
                    raise
                problem = str(e)
        for a in cov.values():
            a.setflags(write=False)
        y = arrays["loss"]
        y.setflags(write=False)
        data = cls(cov, y, labels.get("group"), labels.get("run"), float(k), source, target_name, np.asarray(rows),
                   columns, step, problem, weight)
        data._warn_duplicates(where)
        return data

    def _warn_duplicates(self, where: _Where) -> None:
        keys = [k for k in sorted(self.covariates) if not schedule.is_key(k)]
        extra = [] if self.step is None else [self.step]   # checkpoints: a duplicate is one within one run
        if self.step is not None and self.run is not None:
            extra.append(np.unique(np.asarray(self.run).astype(str), return_inverse=True)[1].ravel())
        table = np.column_stack([*(self.covariates[k] for k in keys), self.y, *extra])
        _, first, counts = np.unique(table, axis=0, return_index=True, return_counts=True)
        if np.any(counts > 1):
            warnings.warn(
                f"{int((counts[counts > 1] - 1).sum())} duplicate row(s) (same covariates and {self.target_name}), "
                f"first copies at {where.many(np.sort(first[counts > 1]), limit=5)}; keeping them all.",
                UserWarning,
                stacklevel=user_stacklevel(),
            )

    # ------------------------------------------------------------------ use
    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def rows(self) -> np.ndarray:
        """Original row labels (DataFrame index) of the points."""
        return self._index

    def subset(self, index) -> ScalingData:
        """Points selected by a boolean mask or integer index (order kept)."""
        index = np.asarray(index)
        if index.dtype == bool:
            if index.shape != self.y.shape:
                raise DataError(f"Mask has shape {index.shape}; expected {self.y.shape}.")
            index = np.flatnonzero(index)
        take = lambda a: None if a is None else a[index]  # noqa: E731
        cov = {k: v[index] for k, v in self.covariates.items()}
        for a in cov.values():
            a.setflags(write=False)
        y = self.y[index]
        y.setflags(write=False)
        return ScalingData(cov, y, take(self.group), take(self.run), self.flops_per_token, self.source,
                           self.target_name, self._index[index], self._columns, take(self.step),
                           self._schedule_error, take(self.weight))

    def drop_top(self, n: int) -> ScalingData:
        """Drop the ``n`` points with the highest target value (Epoch drops 5).

        Ties at the threshold are dropped too, as in Epoch's
        ``loss < sorted(loss)[-n]``.
        """
        if not isinstance(n, (int, np.integer)) or n < 0:
            raise DataError(f"drop_top needs an integer n >= 0; got {n!r}.")
        if n == 0:
            return self
        if n >= len(self):
            raise DataError(f"drop_top({n}) would drop all {len(self)} points.")
        threshold = np.sort(self.y)[-n]
        return self.subset(self.y < threshold)

    def filter(self, **bounds: tuple[float | None, float | None]) -> ScalingData:
        """Keep points with each named column inside ``(low, high)`` (None = open).

        >>> from jaxscale import ScalingData
        >>> d = ScalingData.from_arrays(N=[1e8, 1e9, 1e10], D=[1e9, 1e10, 1e11], loss=[3.0, 2.6, 2.3])
        >>> len(d.filter(N=(5e8, None)))
        2
        """
        mask = np.ones(len(self), dtype=bool)
        for key, (lo, hi) in bounds.items():
            col = self.y if key in ("loss", "score", "y") else self.covariates.get(key)
            if col is None:
                raise DataError(f"filter: no column {key!r}; have {sorted(self.covariates) + ['loss']}.")
            if lo is not None:
                mask &= col >= lo
            if hi is not None:
                mask &= col <= hi
        return self.subset(mask)

    def require(self, covariates: Sequence[str], law_name: str = "this law") -> None:
        """Raise a :class:`DataError` unless every one of ``covariates`` is present.

        The message lists the covariates the data has and, for data read from
        a DataFrame or a file, that source's columns, with the mapping to add.

        >>> import pandas as pd
        >>> from jaxscale import ScalingData
        >>> d = ScalingData.from_frame(pd.DataFrame({"params": [1e8, 1e9], "toks": [2e9, 2e10], "loss": [3.1, 2.6]}))
        >>> try:
        ...     d.require(["N", "D"], "chinchilla")
        ... except ValueError as e:
        ...     print(str(e).replace("; ", ";\\n").replace(": map", ":\\nmap"))
        Law 'chinchilla' needs covariate(s) ['N', 'D'];
        the data lacks ['D'] (D can also be derived from C and N). It has covariates ['N'];
        the columns of the DataFrame are ['params', 'toks', 'loss']:
        map one with --col D=<column> (Python: D='<column>').
        """
        missing = [c for c in covariates if c not in self.covariates]
        if not missing:
            return
        if self._schedule_error is not None and any(schedule.is_key(c) for c in missing):
            raise DataError(f"Law {law_name!r} needs the schedule covariates of checkpoints, and the data's step and "
                            f"lr columns could not give them: {self._schedule_error}")
        hint = ""
        if "D" in missing and "C" not in self.covariates:
            hint = " (D can also be derived from C and N)"
        have = f"It has covariates {_shown(self.covariates)}"
        if any(schedule.is_key(c) for c in missing):
            hint = (" (the schedule covariates come from checkpoints of runs: map step and lr, or give the "
                    "planned schedule; see ScalingData.from_frame)")
        if self._columns is not None:
            shown = "the DataFrame" if self.source == "DataFrame" else self.source
            have += f"; the columns of {shown} are {list(self._columns)}"
        raise DataError(f"Law {law_name!r} needs covariate(s) {list(covariates)}; the data lacks {missing}{hint}. "
                        f"{have}: map one with {_map_hint(missing[0])}.")

    def design(self, covariates: Sequence[str], law_name: str = "this law") -> tuple[np.ndarray, np.ndarray]:
        """Log covariates ``(n, K)`` in the given order and the log target ``(n,)``.

        Raises a :class:`DataError` if a covariate is absent (see :meth:`require`) or constant.
        """
        self.require(covariates, law_name)
        cols = []
        for c in covariates:
            v = self.covariates[c]
            if np.ptp(v) == 0:
                raise DataError(
                    f"Covariate {c} is constant ({v[0]:g} in every row); law {law_name!r} needs it to vary."
                )
            cols.append(np.log(v))
        return np.stack(cols, axis=1), np.log(self.y)

    def fingerprint(self) -> str:
        """SHA-256 of the validated arrays: identifies the exact data a fit used."""
        h = hashlib.sha256()
        for k in sorted(self.covariates):
            h.update(k.encode())
            h.update(np.ascontiguousarray(self.covariates[k]).tobytes())
        h.update(b"y")
        h.update(np.ascontiguousarray(self.y).tobytes())
        if self.weight is not None:  # unweighted data keep the fingerprint they always had
            h.update(b"weight")
            h.update(np.ascontiguousarray(self.weight).tobytes())
        return h.hexdigest()

    def to_frame(self):
        """The data as a pandas DataFrame (covariates, target, labels)."""
        import pandas as pd

        cols: dict[str, Any] = {k: self.covariates[k] for k in COVARIATE_KEYS if k in self.covariates}
        cols[self.target_name] = self.y
        if self.step is not None:
            cols["step"] = self.step
        if self.group is not None:
            cols["group"] = self.group
        if self.run is not None:
            cols["run"] = self.run
        if self.weight is not None:
            cols[WEIGHT_KEY] = self.weight
        return pd.DataFrame(cols, index=self._index)

    def __repr__(self) -> str:
        return f"ScalingData(n={len(self)}, covariates={_shown(self.covariates)}, source={self.source!r})"


def _shown(covariates) -> list[str]:
    """Covariate names for messages: the multi-power quadrature columns as one ``mp_*``."""
    names = sorted(c for c in covariates if not c.startswith("mp_"))
    return names + (["mp_*"] if len(names) < len(covariates) else [])


def _resolve_columns(available: list, columns: dict, shown: str, aliases: bool = True) -> tuple[dict, str]:
    """``(role -> column, target name)``: explicit mappings (matched stripped), then :data:`ALIASES` (unless
    ``aliases`` is False)."""
    allowed = set(COVARIATE_KEYS) | set(LABEL_KEYS) | set(TARGET_KEYS) | set(SCHEDULE_ROLES) | {WEIGHT_KEY}
    unknown = sorted(set(columns) - allowed)
    if unknown:
        raise DataError(f"Unknown column role(s) {unknown}; expected some of {sorted(allowed)}.")
    target_name = "loss"
    for alias in ("score", "y"):
        if alias in columns:
            if "loss" in columns:
                raise DataError(f"Give the target once: both loss= and {alias}= were mapped.")
            columns["loss"] = columns.pop(alias)
            target_name = alias
    stripped = [str(c).strip() for c in available]
    repeats = [n for i, n in enumerate(stripped) if n in stripped[:i]]
    if repeats:
        raise DataError(f"column names repeat in {shown}: {sorted(set(repeats), key=repeats.index)}; give each "
                        f"column a unique name.")
    mapping: dict[str, Any] = {}
    for key in (*COVARIATE_KEYS, "loss", *LABEL_KEYS, *SCHEDULE_ROLES, WEIGHT_KEY):
        if key not in columns:
            continue
        name = columns[key]
        hits = [c for c in available if c == name]
        if not hits and isinstance(name, str):
            hits = [c for c, s in zip(available, stripped) if s == name.strip()]
        if not hits:
            raise DataError(f"Column {name!r} (mapped to {key}) is not in the data; columns are {list(available)}.")
        mapping[key] = hits[0]
    used = list(mapping.values())
    if len(set(map(str, used))) < len(used):
        raise DataError(f"One column is mapped to two roles: {mapping}.")
    for key in (*COVARIATE_KEYS, "loss", *LABEL_KEYS, *SCHEDULE_ROLES):
        if key in mapping or key not in ALIASES or not aliases:
            continue
        hits = [c for c in matching_columns(available, key) if c not in used]
        if len(hits) > 1:
            raise DataError(f"Ambiguous column for {key}: {hits} all match; choose one with {_map_hint(key)}.")
        if hits:
            mapping[key] = hits[0]
    if "loss" not in mapping:
        raise DataError(f"No target column in {shown}: its columns are {list(available)}; none is a recognised "
                        f"loss name ({', '.join(ALIASES['loss'])}): map one with {_map_hint('loss')}, or a score "
                        f"with --col score=<column>.")
    return mapping, target_name


def check_weight(weight: np.ndarray, name: str, where) -> None:
    """Per-point weights must be finite, >= 0 and not all zero: else a :class:`DataError` naming ``name`` (the
    column) and the first bad row by ``where(i)``.

    >>> check_weight(np.array([1.0, -2.0, 1.0]), "weight (column 'w')", lambda i: f"row {i}")
    Traceback (most recent call last):
    ...
    jaxscale.errors.DataError: weight (column 'w') must be >= 0; row 1 has -2.0 (1 row(s) < 0).
    """
    bad = np.flatnonzero(~np.isfinite(weight))
    if bad.size:
        raise DataError(f"{name} has {bad.size} non-finite value(s) (NaN or inf), first at {where(bad[0])}: "
                        f"{weight[bad[0]]}; weights must be finite and >= 0.")
    bad = np.flatnonzero(weight < 0)
    if bad.size:
        raise DataError(f"{name} must be >= 0; {where(bad[0])} has {weight[bad[0]]} ({bad.size} row(s) < 0).")
    if weight.size and not np.any(weight > 0):
        raise DataError(f"{name} is 0 in every row; at least one point needs a positive weight.")


def check_derived(key: str, formula: str, cov: Mapping[str, np.ndarray], inputs: tuple[str, str], where,
                  prefix: str = "") -> None:
    """A covariate derived from two others (``D = C / (k N)``, ``C = k N D``) must be finite and > 0: else a
    :class:`DataError` naming the first bad row by ``where(i)`` (e.g. ``"line 3"``, ``"point 0"``), the inputs
    there, and that the units are the likely cause. Shared by :class:`ScalingData` and forecast points."""
    v = cov[key]
    bad = np.flatnonzero(~np.isfinite(v) | (v <= 0))
    if bad.size:
        i = bad[0]
        given = ", ".join(f"{c}={cov[c][i]:g}" for c in inputs)
        raise DataError(f"{prefix}{key} derived as {formula} is {v[i]:g} at {where(i)} ({given}; {bad.size} "
                        f"row(s) affected); a derived {key} must be finite and > 0: check the units of "
                        f"{' and '.join(inputs)}, or give {key} itself.")


def _asarray(values) -> np.ndarray:
    # a list goes element by element: np.asarray([1e8, True]) would silently make the True a 1.0
    if not isinstance(values, (list, tuple)):
        try:
            return np.asarray(values)
        except ValueError:  # ragged input: each element is checked (and refused) below
            pass
    return np.asarray(values, dtype=object)


def _as_float(arr: np.ndarray, name: str, where: _Where) -> np.ndarray:
    if arr.dtype.kind == "b":
        raise DataError(f"{name} holds booleans; expected numbers.")
    if arr.dtype.kind == "c":
        raise DataError(f"{name} holds complex numbers; expected real numbers.")
    if arr.dtype.kind in "iuf":
        return arr.astype(np.float64)
    return _numeric_values(arr, name, where)


def _numeric_values(arr: np.ndarray, name: str, where: _Where) -> np.ndarray:
    out = np.empty(arr.shape[0], dtype=np.float64)
    for i, v in enumerate(arr):
        if isinstance(v, (bool, np.bool_)):
            raise DataError(f"{name}: {where.one(i)} holds {v!r}, a boolean; expected numbers.")
        if isinstance(v, (complex, np.complexfloating)):
            raise DataError(f"{name}: {where.one(i)} holds {v!r}, a complex number; expected real numbers.")
        if v is None or type(v).__name__ == "NAType":
            out[i] = np.nan  # reported as missing (non-finite) with the other checks
            continue
        try:
            out[i] = float(v)
        except (TypeError, ValueError):
            hint = ""
            if isinstance(v, str) and re.fullmatch(r"[+-]?\d*,\d+([eE][+-]?\d+)?", v.strip()):
                hint = f" (a decimal comma? write {v.strip().replace(',', '.')})"
            raise DataError(f"{name}: {where.one(i)} holds {v!r}, which is not a number{hint}.") from None
    return out


def _numeric_column(series, label: str, where: _Where) -> np.ndarray:
    kind = series.dtype.kind
    if kind == "b":
        raise DataError(f"{label} holds booleans; expected numbers.")
    if kind == "c":
        raise DataError(f"{label} holds complex numbers; expected real numbers.")
    if kind in "iuf":
        return np.array(series.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
    return _numeric_values(series.to_numpy(dtype=object), label, where)


def _history_rows(frame, mapping) -> dict:
    """Run -> (steps, lrs) of the ``history=`` rows, read with the data's run, step and lr columns."""
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"history must be a DataFrame of earlier rows (run, step, lr); got {type(frame).__name__}.")
    cols = {key: mapping.get(key) for key in ("run", "step", "lr")}
    missing = [f"{key} (column {c!r})" for key, c in cols.items() if c is None or c not in frame.columns]
    if missing:
        raise DataError(f"history lacks {missing}: it needs the data's run, step and lr columns.")
    where = _Where(np.asarray(frame.index))
    out = {}
    for r, g in frame.groupby(cols["run"], sort=False):
        steps = _numeric_column(g[cols["step"]], f"history column {cols['step']!r} (step)", where)
        lr = _numeric_column(g[cols["lr"]], f"history column {cols['lr']!r} (lr)", where)
        schedule.check_run(r, steps, lr, lambda i, g=g: f"history row {g.index.tolist()[i]!r}")
        out[r] = (steps, lr)
    return out


def _schedule_covariates(cov, run, sched, specs, where: _Where, names, history) -> tuple[np.ndarray, dict]:
    """``(step per row, schedule covariates)`` of checkpoints, computed run by run (see :meth:`from_frame`)."""
    from jaxscale import schedule as sch

    n = len(where.labels)   # cov may be empty: a per-run curve needs no N or D
    runs = np.zeros(n, dtype=int) if run is None else run
    order = list(dict.fromkeys(runs.tolist()))
    plans = None if specs is None else sch.parse_many(specs, order)
    step = sched.get("step")
    if step is None and plans is None:
        raise DataError(f"{sorted(sched)} given without a step column: map the optimizer step with "
                        f"{_map_hint('step')}, or give the planned schedule (schedule=...).")
    if "lr" not in sched and plans is None:
        raise DataError(f"The step column needs the learning rate at each step ({_map_hint('lr')}) or the planned "
                        f"schedule (schedule=...) to compute the schedule covariates.")
    if step is None:
        step = np.empty(n)
        for r in order:
            step[runs == r] = plans[r].steps
    out = {key: np.empty(n) for key in sch.KEYS}
    for r in order:
        idx = np.flatnonzero(runs == r)
        shown = "the data" if run is None else r
        at = step[idx]
        lr = sched.get("lr")
        sch.check_run(shown, at, None if lr is None else lr[idx], lambda i: where.one(idx[i]))
        first = lambda key: None if key not in sched else float(sched[key][idx[0]])  # noqa: E731
        for key in ("lr_peak", "batch_size"):
            v = first(key)
            if v is not None and not (np.isfinite(v) and v > 0):
                raise DataError(f"run {shown!r}: {names.get(key, key)} must be finite and > 0; {where.one(idx[0])} "
                                f"has {v!r}.")
        if plans is not None:
            plan = plans[r]
            lr_steps = plan.history(max(int(at[-1]), plan.steps))
            peak = first("lr_peak") or float(plan.peak)
        else:
            log_steps, log_lr = at, lr[idx]
            if r in history:
                h_steps, h_lr = history[r]
                keep = h_steps < at[0]
                log_steps, log_lr = np.concatenate([h_steps[keep], at]), np.concatenate([h_lr[keep], log_lr])
            gaps = np.diff(np.concatenate([[0.0], log_steps]))
            if log_steps.size == 1 or log_steps[0] > 1.5 * gaps[1:].max():
                raise DataError(f"run {shown!r}: its first checkpoint ({where.one(idx[0])}, step {at[0]:g}) comes "
                                f"without the run's earlier history; give the rows from the start of the run, or "
                                f"its planned schedule (schedule=...).")
            lr_steps = sch.history(log_steps, log_lr)
            peak = first("lr_peak")
        per_step = first("batch_size")
        if per_step is None:
            per_step = float(np.median(cov["D"][idx][at > 0] / at[at > 0])) if "D" in cov and np.any(at > 0) else 1.0
        feats = sch.covariates(lr_steps, at.astype(np.int64), tokens_per_step=per_step, peak=peak)
        for key, v in feats.items():
            out[key][idx] = v
    return step, out
