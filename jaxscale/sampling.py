"""Pass@k, mean log pass rate, repeated-sampling coverage: downstream and inference-time compute.

The input is a tidy table of pass counts: one row per (problem, condition) with ``n`` samples drawn and ``c`` of
them correct, where a condition is a model (a label, its size ``N``, its training compute ``C``). :func:`passes`
validates it into :class:`PassCounts`; everything else starts from those counts:

- :func:`pass_at_k`: the unbiased estimator of Chen et al. (2021), ``1 - C(n-c, k) / C(n, k)``, vectorised.
- :func:`mlpr_data`: GPT-4's mean log pass rate ``-E_problems[log pass_rate]`` per condition, as data for the
  ``mlpr`` law (``alpha * C^(-k)``, OpenAI 2023, Section 3.1). A problem never solved has no finite log pass rate:
  ``zero=`` says what to do (see :func:`pass_rates`), and the result counts and names such problems.
- :func:`coverage_data`: coverage (the mean over problems of pass@k) against the number of samples ``k``, as data
  for the ``coverage`` law (``exp(-A k^(-beta))``, Brown et al. 2024).
- :func:`fit_tail`: the distribution of per-problem single-sample success rates, a Beta fitted by maximum
  likelihood to the binomial counts (a beta-binomial likelihood, so unsolved problems count as evidence of a
  small rate, not as zeros). Its left tail ``density ~ p^(a-1)`` sets the aggregate power law
  ``-log pass@k ~ k^(-a)`` (Schaeffer et al. 2025); :meth:`TailFit.pass_at_k` predicts the whole curve.
- :func:`cheapest`: the model size and number of samples that reach a target coverage at the least inference
  compute, from fitted coverage laws.

Examples
--------
>>> import pandas as pd
>>> from jaxscale import sampling
>>> frame = pd.DataFrame({"problem": ["p1", "p2", "p3"] * 2, "model": ["small"] * 3 + ["large"] * 3,
...                       "C": [1e20] * 3 + [1e21] * 3, "n": 100, "c": [3, 40, 0, 20, 90, 1]})
>>> counts = sampling.passes(frame, model="model", C="C")
>>> counts.n_problems, counts.labels
(3, ('small', 'large'))
>>> m = sampling.mlpr_data(counts)
>>> m.table[["model", "mlpr", "unsolved"]].round(3).to_dict("list")
{'model': ['small', 'large'], 'mlpr': [3.24, 2.107], 'unsolved': [1, 0]}
>>> m.unsolved
{'small': ('p3',)}
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from jaxscale import validate
from jaxscale._draws import param_source
from jaxscale.data import ScalingData, read_csv
from jaxscale.errors import ArgumentError, DataError
from jaxscale.laws import get

#: The condition roles of a pass-count table, in the order they label a condition.
CONDITION_KEYS = ("model", "N", "C")
#: How :func:`pass_rates` treats a problem with no pass (c = 0): see its docstring.
ZERO_RULES = ("floor", "pseudocount", "raise")
#: Inference FLOPs per parameter per token processed: a forward pass (Kaplan et al. 2020, Sec. 2.1).
FLOPS_PER_PARAM_TOKEN = 2.0
# The longest pass@k product formed (see pass_at_k): bounds memory at (size of the broadcast) x this.
_BLOCK = 256


class PassCounts(NamedTuple):
    """Validated pass counts: one row per (condition, problem).

    ``frame`` has the condition columns (``model``, ``N``, ``C``: those given), ``problem``, ``n`` (samples, an
    int >= 1) and ``c`` (correct samples, 0 <= c <= n), conditions in first-seen order. ``conditions`` names the
    condition columns; ``source`` says where the table came from.
    """

    frame: pd.DataFrame
    conditions: tuple[str, ...]
    source: str

    @property
    def n_problems(self) -> int:
        """Number of distinct problems."""
        return int(self.frame["problem"].nunique())

    @property
    def labels(self) -> tuple:
        """One label per condition, in order: the model name, else the N or C value (``"all"`` without any)."""
        return tuple(self._groups())

    def _groups(self) -> dict:
        if not self.conditions:
            return {"all": self.frame}
        key = self.conditions[0]
        return {label: part for label, part in self.frame.groupby(key, sort=False)}

    def condition_table(self) -> pd.DataFrame:
        """One row per condition: its columns, ``problems``, ``samples`` (total n) and ``passes`` (total c)."""
        rows = []
        for label, part in self._groups().items():
            row = {k: part[k].iloc[0] for k in self.conditions}
            row.update(problems=len(part), samples=int(part["n"].sum()), passes=int(part["c"].sum()))
            rows.append(row)
        return pd.DataFrame(rows)


def _where(index, lines, source):
    def one(i: int) -> str:
        if lines is not None:
            return f"{source} line {int(lines[i])}"
        label = index[i]
        return f"row {label.item() if isinstance(label, np.generic) else label!r}"
    return one


def _column(frame, name, role, source):
    if name not in frame.columns:
        raise DataError(f"Column {name!r} (the {role}) is not in {source}; its columns are {list(frame.columns)}; "
                        f"name it with {role}=<column>.")
    return frame[name]


def _counts_column(series, label, where) -> np.ndarray:
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
    raw = series.to_numpy()
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise DataError(f"Column {label}: {where(bad[0])} holds {raw[bad[0]]!r}; expected a whole number "
                        f"({bad.size} bad row(s)).")
    bad = np.flatnonzero(values != np.round(values))
    if bad.size:
        raise DataError(f"Column {label}: {where(bad[0])} holds {raw[bad[0]]!r}, not a whole number; counts of "
                        f"samples must be integers ({bad.size} bad row(s)).")
    return values.astype(np.int64)


def passes(frame_or_path, *, problem: str = "problem", n: str = "n", c: str = "c", model: str | None = None,
           N: str | None = None, C: str | None = None, sep: str | None = None) -> PassCounts:
    """Validate a tidy table of pass counts into :class:`PassCounts`.

    Parameters
    ----------
    frame_or_path
        A pandas DataFrame or a CSV path (read by :func:`jaxscale.data.read_csv`; messages then name file lines).
    problem, n, c
        The columns holding the problem id, the number of samples drawn and the number that passed.
    model, N, C
        Optional condition columns: a model label, its parameter count, its training compute. Rows with equal
        conditions belong to one model; without any, all rows are one condition.
    sep
        The CSV separator (sniffed by default).

    Returns
    -------
    PassCounts
        Rows repeating a (condition, problem) pair (batches of samples logged separately) are merged: their
        ``n`` and ``c`` are summed, which is exact for independent samples.

    Raises
    ------
    DataError
        A missing column, or a row whose ``n`` or ``c`` is not a whole number, ``n < 1``, ``c < 0`` or ``c > n``,
        a missing problem id or model label, or an ``N``/``C`` that is not finite and > 0; the message names the
        row (the file line for a CSV) and the column.

    Examples
    --------
    >>> import pandas as pd
    >>> from jaxscale.sampling import passes
    >>> passes(pd.DataFrame({"problem": ["a", "b"], "n": [10, 10], "c": [3, 11]}))
    Traceback (most recent call last):
    ...
    jaxscale.errors.DataError: Column 'c': row 1 has c = 11 > n = 10 (column 'n'); a problem cannot pass more samples than were drawn.
    """
    lines = None
    if isinstance(frame_or_path, (str, os.PathLike)):
        table = read_csv(frame_or_path, sep=sep)
        frame, lines, source = table.frame, table.lines, os.fspath(frame_or_path)
    elif isinstance(frame_or_path, pd.DataFrame):
        if sep is not None:
            raise ArgumentError("sep applies only when reading a CSV path; got a DataFrame.")
        frame, source = frame_or_path, "the DataFrame"
    else:
        raise DataError(f"passes needs a pandas DataFrame or a CSV path; got {type(frame_or_path).__name__}.")
    if len(frame) == 0:
        raise DataError(f"{source} has no rows.")
    roles = {"problem": problem, "n": n, "c": c, "model": model, "N": N, "C": C}
    given = {role: col for role, col in roles.items() if col is not None}
    used = list(given.values())
    if len(set(used)) < len(used):
        raise DataError(f"One column is mapped to two roles: {given}.")
    where = _where(np.asarray(frame.index), lines, source)
    cols = {role: _column(frame, col, role, source) for role, col in given.items()}
    out = {}
    for role in ("problem", "model"):
        if role in cols:
            missing = np.flatnonzero(pd.isna(cols[role]).to_numpy())
            if missing.size:
                raise DataError(f"Column {given[role]!r} ({role}) is empty at {where(missing[0])} "
                                f"({missing.size} row(s)); every row needs one.")
            out[role] = cols[role].to_numpy()
    for role in ("N", "C"):
        if role in cols:
            v = pd.to_numeric(cols[role], errors="coerce").to_numpy(dtype=float)
            bad = np.flatnonzero(~np.isfinite(v) | (v <= 0))
            if bad.size:
                raise DataError(f"Column {given[role]!r} ({role}): {where(bad[0])} holds "
                                f"{cols[role].to_numpy()[bad[0]]!r}; expected a finite number > 0.")
            out[role] = v
    nn = _counts_column(cols["n"], repr(given["n"]), where)
    cc = _counts_column(cols["c"], repr(given["c"]), where)
    bad = np.flatnonzero(nn < 1)
    if bad.size:
        raise DataError(f"Column {given['n']!r}: {where(bad[0])} has n = {nn[bad[0]]}; every problem needs n >= 1 "
                        f"samples ({bad.size} bad row(s)).")
    bad = np.flatnonzero(cc < 0)
    if bad.size:
        raise DataError(f"Column {given['c']!r}: {where(bad[0])} has c = {cc[bad[0]]}; expected c >= 0 "
                        f"({bad.size} bad row(s)).")
    bad = np.flatnonzero(cc > nn)
    if bad.size:
        raise DataError(f"Column {given['c']!r}: {where(bad[0])} has c = {cc[bad[0]]} > n = {nn[bad[0]]} "
                        f"(column {given['n']!r}); a problem cannot pass more samples than were drawn.")
    conditions = tuple(k for k in CONDITION_KEYS if k in out)
    if len(conditions) > 1:
        # one label must mean one model: the same model label with two sizes is a table error, not two models
        key = conditions[0]
        for other in conditions[1:]:
            spread = pd.DataFrame({key: out[key], other: out[other]}).groupby(key, sort=False)[other].nunique()
            if (spread > 1).any():
                raise DataError(f"Condition {spread.index[np.argmax(spread.to_numpy() > 1)]!r} of column "
                                f"{given[key]!r} has more than one {other} (column {given[other]!r}); give each "
                                f"model one value.")
    tidy = pd.DataFrame({**{k: out[k] for k in conditions}, "problem": out["problem"], "n": nn, "c": cc})
    keys = [*conditions, "problem"]
    tidy = tidy.groupby(keys, sort=False, as_index=False)[["n", "c"]].sum()
    return PassCounts(tidy.reset_index(drop=True), conditions, source)


# ----------------------------------------------------------------------------------------------- estimators
def _int_array(value, name: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ArgumentError(f"{name} must hold whole numbers; got {arr.dtype} values.")
    if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
        bad = arr.ravel()[~(np.isfinite(arr.ravel()) & (arr.ravel() == np.round(arr.ravel())))]
        raise ArgumentError(f"{name} must hold whole numbers; got {bad[0].item()!r}.")
    return arr.astype(np.int64)


def pass_at_k(n, c, k) -> np.ndarray:
    """The unbiased pass@k estimator of Chen et al. (2021): ``1 - C(n-c, k) / C(n, k)``, broadcast over n, c, k.

    Computed as Chen et al.'s stable product ``1 - prod_{i=n-c+1}^{n} (1 - k/i)`` (or the equal product over the
    ``k`` terms ``1 - c/(n-j)``, whichever is shorter), summed as logs, so no binomial coefficient is ever formed;
    it is 1 where ``n - c < k``. Where both ``c`` and ``k`` exceed 256 the product is replaced by log-gamma
    differences: the failure probability is then below ``exp(-256^2 / n)``, so pass@k is far from 0 and keeps its
    digits (relative error below ~1e-9 for n up to 1e7); this bounds memory and time at 256 terms per element.

    Parameters
    ----------
    n, c, k
        Samples drawn, samples correct, and the budget: whole numbers with ``0 <= c <= n`` and ``1 <= k <= n``.

    Returns
    -------
    numpy.ndarray
        The estimates, in [0, 1], with the broadcast shape.

    References
    ----------
    Chen et al. (2021), *Evaluating Large Language Models Trained on Code*, arXiv:2107.03374, Section 2.1.

    Examples
    --------
    >>> from jaxscale.sampling import pass_at_k
    >>> pass_at_k(10, 3, [1, 2, 8]).round(4).tolist()
    [0.3, 0.5333, 1.0]
    >>> round(float(pass_at_k(10_000, 1, 100)), 12)
    0.01
    """
    n, c, k = (_int_array(v, name) for v, name in ((n, "n"), (c, "c"), (k, "k")))
    n, c, k = np.broadcast_arrays(n, c, k)
    if np.any(n < 1):
        raise ArgumentError(f"n must be >= 1; got {int(n.min())}.")
    if np.any((c < 0) | (c > n)):
        raise ArgumentError("c must satisfy 0 <= c <= n.")
    if np.any((k < 1) | (k > n)):
        raise ArgumentError(f"k must satisfy 1 <= k <= n (the estimator needs at least k samples); got k in "
                            f"[{int(k.min())}, {int(k.max())}] with n down to {int(n.min())}.")
    certain = n - c < k
    short = np.minimum(c, k)
    long_ = np.maximum(c, k).astype(float)
    nf = n.astype(float)
    terms = np.where(certain | (short > _BLOCK), 0, short)
    j = np.arange(int(terms.max(initial=0)), dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        step = np.log1p(-long_[..., None] / (nf[..., None] - j))
    log_fail = np.array(np.where(j < terms[..., None], step, 0.0).sum(axis=-1), dtype=float)
    many = ~certain & (short > _BLOCK)
    if many.any():
        # More than _BLOCK factors, each below 1 - k/n: the failure probability is below exp(-_BLOCK^2 / n), far
        # from 0 where pass@k could lose digits, so log-gamma differences (relative error ~1e-16 * n log n) do.
        from scipy.special import gammaln

        nm, cm, km = nf[many], c[many].astype(float), k[many].astype(float)
        log_fail[many] = gammaln(nm - cm + 1) - gammaln(nm - cm - km + 1) - gammaln(nm + 1) + gammaln(nm - km + 1)
    return np.where(certain, 1.0, -np.expm1(log_fail))


def pass_rates(counts: PassCounts, zero: str = "floor") -> pd.DataFrame:
    """Per-problem single-sample pass rates (pass@1 = c/n, the unbiased estimator at k = 1).

    Parameters
    ----------
    counts
        From :func:`passes`.
    zero
        What a problem with no pass (c = 0) gets, whose rate c/n = 0 has no finite log:

        - ``"floor"`` (default): ``1 / (2n)``, half a pass, below every rate the n samples could have measured
          (the smallest nonzero one is 1/n); solved problems keep c/n exactly.
        - ``"pseudocount"``: every problem gets ``(c + 0.5) / (n + 1)``, the posterior mean under the Jeffreys
          prior Beta(1/2, 1/2); it shrinks all rates slightly towards 1/2.
        - ``"raise"``: a :class:`DataError` naming the unsolved problems, so that the caller restricts the
          problem set explicitly, as the GPT-4 report did (problems every model solves at least once).

        Either substitute is a guess about a rate below what was measured: the mean log pass rate then depends on
        it, and more so the more problems are unsolved (see :func:`mlpr_data`, which counts them).

    Returns
    -------
    pandas.DataFrame
        ``counts.frame`` plus ``rate`` and ``unsolved`` (c == 0).

    Examples
    --------
    >>> import pandas as pd
    >>> from jaxscale import sampling
    >>> counts = sampling.passes(pd.DataFrame({"problem": ["a", "b"], "n": [50, 50], "c": [5, 0]}))
    >>> sampling.pass_rates(counts)["rate"].tolist()
    [0.1, 0.01]
    >>> sampling.pass_rates(counts, zero="raise")
    Traceback (most recent call last):
    ...
    jaxscale.errors.DataError: 1 problem(s) never passed (c = 0), so their log pass rate is -inf: all: ['b']; restrict the problems or choose zero='floor' or 'pseudocount'.
    """
    zero = validate.choice(zero, "zero", ZERO_RULES)
    f = counts.frame.copy()
    n, c = f["n"].to_numpy(float), f["c"].to_numpy(float)
    unsolved = c == 0
    if zero == "raise" and unsolved.any():
        named = "; ".join(f"{label}: {list(part.loc[part['c'] == 0, 'problem'])[:10]}"
                          for label, part in counts._groups().items() if (part["c"] == 0).any())
        raise DataError(f"{int(unsolved.sum())} problem(s) never passed (c = 0), so their log pass rate is -inf: "
                        f"{named}; restrict the problems or choose zero='floor' or 'pseudocount'.")
    if zero == "pseudocount":
        rate = (c + 0.5) / (n + 1.0)
    else:
        rate = np.where(unsolved, 0.5 / n, c / n)
    f["rate"] = rate
    f["unsolved"] = unsolved
    return f


def _same_problems(counts: PassCounts) -> None:
    groups = counts._groups()
    every = set(counts.frame["problem"])
    for label, part in groups.items():
        missing = every - set(part["problem"])
        if missing:
            raise DataError(f"Condition {label!r} lacks {len(missing)} problem(s) the others have, e.g. "
                            f"{sorted(map(str, missing))[:5]}; a mean over problems compares conditions only on "
                            f"one problem set: restrict the table to shared problems.")


def _scaling_data(table: pd.DataFrame, covariates: Sequence[str], target: str, source: str) -> ScalingData:
    mapping = {k: k for k in covariates}
    if "model" in table:
        mapping["group"] = "model"
    data = ScalingData.from_frame(table, aliases=False, y=target, source=source, **mapping)
    return dataclasses.replace(data, target_name=target)


class MeanLogPassRate(NamedTuple):
    """What :func:`mlpr_data` returns.

    ``data``: one point per condition, target ``mlpr``, covariates those of the conditions (``N``, ``C``), for
    the ``mlpr`` law. ``table``: the conditions with ``mlpr``, ``problems`` and ``unsolved`` (how many problems
    never passed and got the ``zero`` rule's rate). ``unsolved``: condition label -> the ids of those problems
    (conditions without any are left out). ``zero``: the rule used.
    """

    data: ScalingData | None
    table: pd.DataFrame
    unsolved: dict
    zero: str


def mlpr_data(counts: PassCounts, zero: str = "floor") -> MeanLogPassRate:
    """GPT-4's mean log pass rate per condition: ``-mean over problems of log(pass rate)``.

    Parameters
    ----------
    counts
        From :func:`passes`, with a ``C`` (or ``N``) condition column; every condition must have the same
        problems (a mean over different problem sets would not be comparable across conditions).
    zero
        The rule for problems with no pass (:func:`pass_rates`): ``"floor"`` (1/(2n), default),
        ``"pseudocount"`` or ``"raise"``. Nothing is dropped: the problems it applied to are counted in
        ``table["unsolved"]`` and named in ``unsolved``.

    Returns
    -------
    MeanLogPassRate
        ``data`` is None when the counts have no ``N`` or ``C`` column (there is then nothing to fit against).

    References
    ----------
    OpenAI (2023), *GPT-4 Technical Report*, arXiv:2303.08774, Section 3.1 and Figure 2.

    Examples
    --------
    See the module docstring.
    """
    _same_problems(counts)
    rates = pass_rates(counts, zero)
    rows, unsolved = [], {}
    for label, part in rates.groupby(list(counts.conditions), sort=False) if counts.conditions else [("all", rates)]:
        label = label[0] if isinstance(label, tuple) else label
        row = {k: part[k].iloc[0] for k in counts.conditions}
        row.update(mlpr=float(-np.mean(np.log(part["rate"].to_numpy()))), problems=len(part),
                   unsolved=int(part["unsolved"].sum()))
        rows.append(row)
        if row["unsolved"]:
            unsolved[label] = tuple(part.loc[part["unsolved"], "problem"])
    table = pd.DataFrame(rows)
    covariates = [k for k in ("N", "C") if k in counts.conditions]
    data = _scaling_data(table, covariates, "mlpr", f"mean log pass rate of {counts.source}") if covariates else None
    return MeanLogPassRate(data, table, unsolved, zero)


def coverage_data(counts: PassCounts, k=None, *, model=None) -> ScalingData:
    """Coverage against the number of samples: the mean over problems of :func:`pass_at_k`, for each k.

    Parameters
    ----------
    counts
        From :func:`passes`.
    k
        The sample budgets: whole numbers from 1 to the smallest ``n`` of a condition's problems. Default: 1, 2,
        4, ... up to that ``n``.
    model
        Keep one condition only (its label: the model name, else its N or C value). Default: every condition,
        each with its own rows (``group`` labels them; ``N`` is a covariate when given, for
        ``coverage(resource="N")``).

    Returns
    -------
    ScalingData
        Covariate ``samples`` (plus ``N``, ``C`` when the conditions have them), target ``coverage``.

    Raises
    ------
    DataError
        A condition whose problems all have ``c = 0`` (its coverage is 0 at every k, with no finite log); a k
        larger than a condition's smallest n; conditions with different problem sets.

    References
    ----------
    Brown et al. (2024), *Large Language Monkeys*, arXiv:2407.21787, Section 2 (coverage as pass@k).

    Examples
    --------
    >>> import pandas as pd
    >>> from jaxscale import sampling
    >>> counts = sampling.passes(pd.DataFrame({"problem": ["a", "b", "c"], "n": 8, "c": [1, 4, 0]}))
    >>> d = sampling.coverage_data(counts)
    >>> d.covariates["samples"].tolist(), d.y.round(3).tolist()
    ([1.0, 2.0, 4.0, 8.0], [0.208, 0.345, 0.495, 0.667])
    """
    groups = counts._groups()
    if model is not None:
        if model not in groups:
            raise ArgumentError(f"model must be one of the conditions {list(groups)}; got {model!r}.")
        groups = {model: groups[model]}
    else:
        _same_problems(counts)
    rows = []
    for label, part in groups.items():
        n, c = part["n"].to_numpy(), part["c"].to_numpy()
        if not c.any():
            raise DataError(f"Condition {label!r}: no problem ever passed (c = 0 for all {len(part)}), so its "
                            f"coverage is 0 at every k; leave it out.")
        n_min = int(n.min())
        if k is None:
            ks = 2 ** np.arange(int(math.floor(math.log2(n_min))) + 1)
        else:
            ks = _int_array(np.atleast_1d(k), "k")
            if ks.ndim != 1 or np.any(ks < 1) or np.any(ks > n_min):
                raise DataError(f"Condition {label!r}: k must lie in [1, {n_min}] (its smallest n); got "
                                f"{ks.tolist()}.")
        cov = pass_at_k(n[:, None], c[:, None], ks[None, :]).mean(axis=0)
        for kk, y in zip(ks, cov):
            rows.append({**{key: part[key].iloc[0] for key in counts.conditions}, "samples": float(kk),
                         "coverage": float(y)})
    table = pd.DataFrame(rows)
    covariates = ["samples", *(key for key in ("N", "C") if key in counts.conditions)]
    return _scaling_data(table, covariates, "coverage", f"coverage of {counts.source}")


# ----------------------------------------------------------------------------------------------- the tail
class TailFit(NamedTuple):
    """A Beta(a, b) fitted to per-problem single-sample success rates (:func:`fit_tail`).

    ``a`` is the left-tail exponent (density ``~ p^(a-1)`` near 0), hence the predicted exponent of the aggregate
    power law ``-log pass@k ~ k^(-a)``; ``b`` shapes the right side. ``loglik`` is the maximised beta-binomial
    log-likelihood (without the binomial coefficients), ``problems`` the number of problems, ``a_interval`` a
    percentile interval of ``a`` over problem-resampling bootstrap replicates (None without resamples) and
    ``a_draws`` those replicates.
    """

    a: float
    b: float
    loglik: float
    problems: int
    a_interval: tuple[float, float] | None = None
    a_draws: np.ndarray | None = None

    def pass_at_k(self, k) -> np.ndarray:
        """The predicted aggregate pass@k, ``1 - E[(1-p)^k] = 1 - B(a, b+k) / B(a, b)``, at any k > 0.

        >>> from jaxscale.sampling import TailFit
        >>> TailFit(a=1.0, b=1.0, loglik=0.0, problems=1).pass_at_k([1, 3]).tolist()
        [0.5, 0.75]
        """
        from scipy.special import betaln

        k = np.asarray(validate.positives(k, "k"), float)
        return -np.expm1(betaln(self.a, self.b + k) - betaln(self.a, self.b))

    def power_law(self) -> dict[str, float]:
        """The large-k asymptote ``-log pass@k ~ A k^(-beta)`` as ``coverage`` law parameters.

        ``beta = a`` and ``A = Gamma(a+b) / Gamma(b)`` (from ``B(a, b+k) / B(a, b) ~ Gamma(a+b)/Gamma(b) k^(-a)``
        and ``-log(1 - x) ~ x`` as ``x -> 0``).
        """
        A = math.exp(math.lgamma(self.a + self.b) - math.lgamma(self.b))
        return {"A": A, "beta": self.a}


def _beta_binomial_fit(n: np.ndarray, c: np.ndarray, x0=None) -> tuple[float, float, float]:
    from scipy.optimize import minimize
    from scipy.special import betaln, digamma

    def objective(t):
        a, b = np.exp(t)
        ll = np.sum(betaln(c + a, n - c + b)) - len(n) * betaln(a, b)
        ga = np.sum(digamma(c + a)) - np.sum(digamma(n + a + b)) - len(n) * (digamma(a) - digamma(a + b))
        gb = np.sum(digamma(n - c + b)) - np.sum(digamma(n + a + b)) - len(n) * (digamma(b) - digamma(a + b))
        return -ll, -np.array([ga * a, gb * b])

    if x0 is None:
        m = np.clip(np.mean(c / n), 1e-3, 1 - 1e-3)
        x0 = np.log([0.5 * m / (1 - m) + 1e-3, 0.5]) if m < 0.5 else np.log([0.5, 0.5 * (1 - m) / m + 1e-3])
    best = None
    for start in (np.asarray(x0, float), np.log([0.3, 1.0]), np.log([1.0, 5.0])):
        res = minimize(objective, start, jac=True, method="L-BFGS-B", bounds=[(-12.0, 8.0)] * 2)
        if best is None or res.fun < best.fun:
            best = res
    a, b = np.exp(best.x)
    return float(a), float(b), float(-best.fun)


def fit_tail(counts: PassCounts, *, model=None, resamples: int = 0, level: float = 0.9,
             key=validate.DEFAULT_KEY) -> TailFit:
    """Fit a Beta distribution to per-problem success rates by maximum likelihood on the binomial counts.

    Each problem's count is ``c ~ Binomial(n, p)`` with ``p ~ Beta(a, b)`` across problems, so the likelihood of
    a problem is beta-binomial: ``B(c + a, n - c + b) / B(a, b)``. Unsolved problems (c = 0) are not dropped or
    floored: they say that p is probably below about 1/n, which is what pins down the left tail. The fitted
    ``a`` is the tail exponent: Schaeffer et al. (2025) show that ``-log pass@k`` falls as a power law
    ``k^(-b)`` exactly when the density of p behaves as ``p^(b-1)`` near 0, so ``a`` forecasts the exponent
    ``beta`` of the ``coverage`` law from few samples per problem.

    Parameters
    ----------
    counts
        From :func:`passes`.
    model
        The condition to fit (its label); required when the counts have more than one.
    resamples
        Bootstrap replicates over problems (0: none) for ``a_interval``.
    level
        The interval's level.
    key
        Seeds the resampling.

    Returns
    -------
    TailFit

    Notes
    -----
    Schaeffer et al. fit a (scaled) Beta or Kumaraswamy distribution to the estimated per-problem rates; this
    function fits the Beta through the binomial likelihood instead, which uses the unsolved problems. A Beta
    whose left tail is not a power law (a distribution with no mass near 0) shows up as a large ``a`` and a
    coverage curve that bends away from a power law.

    References
    ----------
    Schaeffer et al. (2025), *How Do Large Language Monkeys Get Their Power (Laws)?*, arXiv:2502.17578.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from jaxscale import sampling
    >>> rng = np.random.default_rng(0)
    >>> p = rng.beta(0.4, 2.0, 3000)
    >>> counts = sampling.passes(pd.DataFrame({"problem": range(3000), "n": 100, "c": rng.binomial(100, p)}))
    >>> tail = sampling.fit_tail(counts)
    >>> round(tail.a, 2), round(tail.b, 1)
    (0.4, 2.1)
    """
    groups = counts._groups()
    if model is None:
        if len(groups) > 1:
            raise ArgumentError(f"fit_tail needs model=... to choose one of the conditions {list(groups)}.")
        model = next(iter(groups))
    if model not in groups:
        raise ArgumentError(f"model must be one of the conditions {list(groups)}; got {model!r}.")
    resamples = validate.integer(resamples, "resamples", minimum=0)
    level = validate.level(level)
    part = groups[model]
    n, c = part["n"].to_numpy(float), part["c"].to_numpy(float)
    if not c.any():
        raise DataError(f"Condition {model!r}: no problem ever passed; a distribution of success rates cannot be "
                        f"fitted.")
    if np.all(c == n):
        raise DataError(f"Condition {model!r}: every sample of every problem passed; there is no tail to fit.")
    a, b, ll = _beta_binomial_fit(n, c)
    if resamples == 0:
        return TailFit(a, b, ll, len(n))
    from jaxscale.fit import numpy_rng

    rng = numpy_rng(key)
    draws = np.empty(resamples)
    for r in range(resamples):
        idx = rng.integers(0, len(n), len(n))
        draws[r] = _beta_binomial_fit(n[idx], c[idx], np.log([a, b]))[0]
    lo, hi = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
    return TailFit(a, b, ll, len(n), (float(lo), float(hi)), draws)


# ----------------------------------------------------------------------------------------------- allocation
class SamplingPlan(NamedTuple):
    """What :func:`cheapest` returns.

    ``N``, ``samples``, ``flops``: the cheapest candidate at the point parameters (``flops`` per problem).
    ``table``: one row per candidate model size with ``samples`` and ``flops`` at the point parameters and,
    with draws, their ``_lo``/``_hi`` percentile interval and ``p_best`` (the fraction of draws in which the
    candidate is the cheapest); a candidate that cannot reach the target within ``max_samples`` has infinite
    ``samples`` and ``flops``. ``target``, ``tokens_per_sample``, ``n_draws``: the settings and the draws used.
    """

    N: float
    samples: float
    flops: float
    table: pd.DataFrame
    target: float
    tokens_per_sample: float
    n_draws: int


def _samples_needed(A, beta, target, max_samples):
    # exp(-A k^-beta) >= target  <=>  k >= (A / -log target)^(1/beta)
    with np.errstate(over="ignore", divide="ignore"):
        k = np.ceil(np.maximum((A / -math.log(target)) ** (1.0 / beta), 1.0) - 1e-9)
    return np.where(k > max_samples, np.inf, k)


def cheapest(coverage, target: float, *, tokens_per_sample: float, N=None, max_samples: float = 1e6,
             level: float = 0.9) -> SamplingPlan:
    """The model size and number of samples per problem that reach a target coverage at the least compute.

    Cost model: inference compute per problem = ``k * 2 N * tokens_per_sample`` FLOPs: ``k`` samples, each a
    forward pass of ``2 N`` FLOPs (:data:`FLOPS_PER_PARAM_TOKEN`) per token over ``tokens_per_sample`` tokens
    (prompt plus generation, as processed for each sample). It leaves out attention FLOPs, a prompt shared by
    the k samples (KV-cache reuse), verification and training; add those to ``tokens_per_sample`` where they
    matter. The samples needed are the smallest whole ``k`` with ``coverage(N, k) >= target``.

    Parameters
    ----------
    coverage
        Either a mapping ``{N: fit}`` of per-model fits of the ``coverage`` law (samples only), or one fit of
        ``coverage(resource="N")`` with the candidate sizes in ``N=``. A fit is a :class:`jaxscale.FitResult`,
        a bootstrap, a posterior or a dict of parameters (:func:`jaxscale._draws.param_source`); the draws of
        several per-model fits are paired by index (cycled where counts differ), as they come from independent
        fits.
    target
        The coverage to reach, in (0, 1).
    tokens_per_sample
        Tokens processed per sample, > 0.
    N
        Candidate model sizes, with the joint law.
    max_samples
        Larger k count as unreachable.
    level
        Level of the intervals over draws.

    Returns
    -------
    SamplingPlan

    Examples
    --------
    >>> from jaxscale import sampling
    >>> fits = {8e9: {"A": 1.2, "beta": 0.35}, 7e10: {"A": 0.7, "beta": 0.3}}
    >>> plan = sampling.cheapest(fits, 0.8, tokens_per_sample=500)
    >>> plan.N, plan.samples, f"{plan.flops:.3g}"    # 123 samples of the 8B model beat 46 of the 70B
    (8000000000.0, 123.0, '9.84e+14')
    >>> plan.table["samples"].tolist()
    [123.0, 46.0]
    """
    target = validate.level(target, "target")
    tokens = validate.positive(tokens_per_sample, "tokens_per_sample")
    max_samples = validate.positive(max_samples, "max_samples")
    level = validate.level(level)
    if isinstance(coverage, Mapping) and not _is_params(coverage):
        if N is not None:
            raise ArgumentError("N= goes with one fit of coverage(resource='N'); per-model fits are keyed by N.")
        if not coverage:
            raise ArgumentError("coverage needs at least one model: {N: fit}.")
        sizes = np.array([validate.positive(s, "a model size (key of coverage)") for s in coverage], float)
        sources = [param_source(f, law="coverage") for f in coverage.values()]
        cols = [src.columns() for src in sources]
        n_draws = max(len(c["A"]) for c in cols)
        A = np.stack([np.resize(c["A"], n_draws) for c in cols])
        beta = np.stack([np.resize(c["beta"], n_draws) for c in cols])
        A0 = np.array([src.point["A"] for src in sources])
        b0 = np.array([src.point["beta"] for src in sources])
    else:
        if N is None:
            raise ArgumentError("N= (candidate model sizes) is needed with one fit of coverage(resource='N').")
        sizes = np.asarray(validate.positives(N, "N"), float).ravel()
        src = param_source(coverage, law=get("coverage", resource="N"))
        cols = src.columns()
        n_draws = len(cols["A"])
        A = cols["A"][None, :] * sizes[:, None] ** (-cols["alpha"][None, :])
        beta = np.broadcast_to(cols["beta"][None, :], A.shape)
        A0 = src.point["A"] * sizes ** (-src.point["alpha"])
        b0 = np.full(sizes.shape, src.point["beta"])
    per_flop = FLOPS_PER_PARAM_TOKEN * sizes * tokens
    k0 = _samples_needed(A0, b0, target, max_samples)
    f0 = k0 * per_flop
    table = pd.DataFrame({"N": sizes, "samples": k0, "flops": f0})
    if n_draws > 1:
        kd = _samples_needed(A, beta, target, max_samples)
        fd = kd * per_flop[:, None]
        q = [(1 - level) / 2, (1 + level) / 2]
        table["samples_lo"], table["samples_hi"] = np.quantile(kd, q, axis=1)
        table["flops_lo"], table["flops_hi"] = np.quantile(fd, q, axis=1)
        reachable = np.isfinite(fd).any(axis=0)
        wins = np.zeros(len(sizes))
        np.add.at(wins, np.argmin(fd[:, reachable], axis=0), 1.0)
        table["p_best"] = wins / n_draws
    if not np.isfinite(f0).any():
        raise ArgumentError(f"no candidate reaches coverage {target} within max_samples={max_samples:g} samples; "
                            f"raise max_samples or lower the target.")
    best = int(np.argmin(f0))
    return SamplingPlan(float(sizes[best]), float(k0[best]), float(f0[best]), table, target, tokens, int(n_draws))


def _is_params(mapping: Mapping) -> bool:
    return all(isinstance(k, str) for k in mapping)


__all__ = ["CONDITION_KEYS", "FLOPS_PER_PARAM_TOKEN", "MeanLogPassRate", "PassCounts", "SamplingPlan", "TailFit",
           "ZERO_RULES", "cheapest", "coverage_data", "fit_tail", "mlpr_data", "pass_at_k", "pass_rates", "passes"]

