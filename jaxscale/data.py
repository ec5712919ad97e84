"""Validated scaling-law data.

:class:`ScalingData` holds the covariates (N, D, C, U, x), the target (loss or
score) and optional ``group``/``run`` labels as immutable float64 arrays,
checked once on construction so that the fitter never sees a NaN, a
non-positive value or a string.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from jaxscale.errors import DataError

#: Column names recognised for each role when no explicit mapping is given,
#: in priority order, compared case-insensitively. The generic resource ``x``
#: is only ever taken from an explicit mapping.
ALIASES: dict[str, tuple[str, ...]] = {
    "N": ("n", "params", "parameters", "model size", "model_size", "num_params", "n_params"),
    "D": ("d", "tokens", "training tokens", "training_tokens", "n_tokens"),
    "C": ("c", "flops", "compute", "training flop", "training flops", "training_flops"),
    "U": ("u", "unique_tokens", "unique tokens"),
    "loss": ("loss", "val_loss", "score"),
    # checkpoints of one training run share its seed and schedule: the run role marks them (forecasts and the
    # Bayesian model then treat a run, not a row, as the unit of independence)
    "run": ("run", "run_id", "name"),
}
COVARIATE_KEYS = ("N", "D", "C", "U", "x")
LABEL_KEYS = ("group", "run")


@dataclass(frozen=True, eq=False)
class ScalingData:
    """Validated data for fitting a scaling law.

    Build it with :meth:`from_frame`, :meth:`from_csv` or :meth:`from_arrays`.

    Attributes
    ----------
    covariates
        Mapping from ``"N"``, ``"D"``, ``"C"``, ``"U"``, ``"x"`` (those present)
        to positive, finite float64 arrays.
    y
        The target: loss (or benchmark score), positive and finite.
    group, run
        Optional labels (model family; training run, for checkpoints).
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
        flops_per_token: float = 6.0,
        target_name: str = "loss",
    ) -> ScalingData:
        """Build from arrays (keyword arguments named after the covariates)."""
        raw = {k: v for k, v in dict(N=N, D=D, C=C, U=U, x=x).items() if v is not None}
        if loss is None:
            raise DataError("from_arrays needs loss=... (the target values: loss or score).")
        arrays = {k: _as_1d(v, k) for k, v in {**raw, "loss": loss}.items()}
        labels = {k: np.asarray(v) for k, v in dict(group=group, run=run).items() if v is not None}
        lengths = {k: len(v) for k, v in {**arrays, **labels}.items()}
        if len(set(lengths.values())) > 1:
            raise DataError(f"Mismatched lengths: {lengths}; every array must have the same length.")
        rows = np.arange(len(arrays["loss"]))
        return cls._build(arrays, labels, rows, flops_per_token, "arrays", target_name)

    @classmethod
    def from_frame(
        cls,
        frame,
        *,
        flops_per_token: float = 6.0,
        source: str = "DataFrame",
        **columns: str,
    ) -> ScalingData:
        """Build from a pandas DataFrame.

        Parameters
        ----------
        frame
            The data, one row per training run (or checkpoint).
        flops_per_token
            k in C = k N D (6 by default).
        **columns
            Mapping from canonical names (``N``, ``D``, ``C``, ``U``, ``x``,
            ``loss``, ``group``, ``run``) to column names, e.g.
            ``N="Model Size", C="Training FLOP"``. Unmapped canonical names are
            looked up among the columns by their usual names (see ``ALIASES``).
        """
        import pandas as pd

        if not isinstance(frame, pd.DataFrame):
            raise DataError(f"from_frame needs a pandas DataFrame; got {type(frame).__name__}.")
        allowed = set(COVARIATE_KEYS) | set(LABEL_KEYS) | {"loss", "score", "y"}
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
        dup = frame.columns[frame.columns.duplicated()].tolist()
        mapping: dict[str, str] = {}
        for key in (*COVARIATE_KEYS, "loss", *LABEL_KEYS):
            if key in columns:
                name = columns[key]
                if name not in frame.columns:
                    raise DataError(
                        f"Column {name!r} (mapped to {key}) is not in the data; columns are {list(frame.columns)}."
                    )
                if name in dup:
                    raise DataError(f"Column {name!r} (mapped to {key}) is ambiguous: it appears more than once.")
                mapping[key] = name
            elif key in ALIASES:
                for alias in ALIASES[key]:
                    hits = [c for c in frame.columns if str(c).strip().lower() == alias]
                    if len(hits) > 1:
                        raise DataError(
                            f"Ambiguous column for {key}: {hits} all match; choose one with {key}=<column>."
                        )
                    if hits:
                        mapping[key] = hits[0]
                        break
        if "loss" not in mapping:
            raise DataError(
                f"No target column: map one with loss=<column> (or score=...); columns are {list(frame.columns)}."
            )
        used = list(mapping.values())
        if len(set(used)) < len(used):
            raise DataError(f"One column is mapped to two roles: {mapping}.")
        arrays = {k: _numeric_column(frame[c], c, k) for k, c in mapping.items() if k not in LABEL_KEYS}
        labels = {k: frame[c].to_numpy() for k, c in mapping.items() if k in LABEL_KEYS}
        for k, v in labels.items():
            missing = np.flatnonzero(pd.isna(v))
            if missing.size:
                raise DataError(f"Column {mapping[k]!r} ({k}) is missing a value in row {int(frame.index[missing[0]])}.")
        rows = np.asarray(frame.index)
        return cls._build(arrays, labels, rows, flops_per_token, source, target_name)

    @classmethod
    def from_csv(cls, path: str | os.PathLike, *, flops_per_token: float = 6.0, **columns: str) -> ScalingData:
        """Read a CSV file and build from it (see :meth:`from_frame`)."""
        import pandas as pd

        path = os.fspath(path)
        if not os.path.exists(path):
            raise DataError(f"No such data file: {path!r}.")
        try:
            frame = pd.read_csv(path)
        except Exception as e:  # pandas raises many types for a malformed file
            raise DataError(f"Could not read {path!r} as CSV: {e}") from None
        return cls.from_frame(frame, flops_per_token=flops_per_token, source=os.path.abspath(path), **columns)

    @classmethod
    def coerce(cls, data, **columns) -> ScalingData:
        """Accept a ScalingData, a DataFrame or a CSV path."""
        if isinstance(data, ScalingData):
            if columns:
                raise DataError("Column mappings apply only when building from a DataFrame or a CSV path.")
            return data
        if isinstance(data, (str, os.PathLike)):
            return cls.from_csv(data, **columns)
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
    def _build(cls, arrays, labels, rows, k, source, target_name) -> ScalingData:
        if not (isinstance(k, (int, float)) and np.isfinite(k) and k > 0):
            raise DataError(f"flops_per_token must be a positive number; got {k!r}.")
        for key, arr in arrays.items():
            name = "loss" if key == "loss" else key
            bad = np.flatnonzero(~np.isfinite(arr))
            if bad.size:
                raise DataError(
                    f"{name} has {bad.size} non-finite value(s) (NaN or inf), first at row {rows[bad[0]]} "
                    f"({arr[bad[0]]}); expected finite numbers."
                )
            bad = np.flatnonzero(arr <= 0)
            if bad.size:
                raise DataError(
                    f"{name} must be > 0; row {rows[bad[0]]} has {arr[bad[0]]} ({bad.size} row(s) <= 0)."
                )
        if arrays["loss"].size == 0:
            raise DataError("The data has no rows.")
        cov = {key: arrays[key] for key in COVARIATE_KEYS if key in arrays}
        if "D" not in cov and "C" in cov and "N" in cov:
            cov["D"] = cov["C"] / (k * cov["N"])
        elif "C" not in cov and "N" in cov and "D" in cov:
            cov["C"] = k * cov["N"] * cov["D"]
        for a in cov.values():
            a.setflags(write=False)
        y = arrays["loss"]
        y.setflags(write=False)
        data = cls(cov, y, labels.get("group"), labels.get("run"), float(k), source, target_name, np.asarray(rows))
        data._warn_duplicates()
        return data

    def _warn_duplicates(self) -> None:
        table = np.column_stack([*(self.covariates[k] for k in sorted(self.covariates)), self.y])
        _, first, counts = np.unique(table, axis=0, return_index=True, return_counts=True)
        if np.any(counts > 1):
            rows = self._index[np.sort(first[counts > 1])].tolist()
            warnings.warn(
                f"{int((counts[counts > 1] - 1).sum())} duplicate row(s) (same covariates and {self.target_name}), "
                f"first copies at rows {rows[:5]}; keeping them all.",
                UserWarning,
                stacklevel=4,
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
                           self.target_name, self._index[index])

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

    def design(self, covariates: Sequence[str], law_name: str = "this law") -> tuple[np.ndarray, np.ndarray]:
        """Log covariates ``(n, K)`` in the given order and the log target ``(n,)``.

        Raises a :class:`DataError` if a covariate is absent or constant.
        """
        missing = [c for c in covariates if c not in self.covariates]
        if missing:
            hint = ""
            if "D" in missing and "C" not in self.covariates:
                hint = " (D can also be derived from C and N: map C=<column>)"
            raise DataError(
                f"Law {law_name!r} needs covariate(s) {list(covariates)}; the data lacks {missing}{hint}. "
                f"It has {sorted(self.covariates)}."
            )
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
        return h.hexdigest()

    def to_frame(self):
        """The data as a pandas DataFrame (covariates, target, labels)."""
        import pandas as pd

        cols: dict[str, Any] = {k: self.covariates[k] for k in COVARIATE_KEYS if k in self.covariates}
        cols[self.target_name] = self.y
        if self.group is not None:
            cols["group"] = self.group
        if self.run is not None:
            cols["run"] = self.run
        return pd.DataFrame(cols, index=self._index)

    def __repr__(self) -> str:
        return f"ScalingData(n={len(self)}, covariates={sorted(self.covariates)}, source={self.source!r})"


def _as_1d(values, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise DataError(f"{name} must be one-dimensional; got shape {arr.shape}.")
    if arr.dtype.kind not in "iuf":
        return _numeric_values(arr, name, np.arange(arr.shape[0]))
    return arr.astype(np.float64)


def _numeric_values(arr: np.ndarray, name: str, rows) -> np.ndarray:
    out = np.empty(arr.shape[0], dtype=np.float64)
    for i, v in enumerate(arr):
        try:
            out[i] = float(v)
        except (TypeError, ValueError):
            raise DataError(f"{name}: row {rows[i]} holds {v!r}, which is not a number.") from None
    return out


def _numeric_column(series, column: str, key: str) -> np.ndarray:
    label = f"column {column!r} ({key})"
    if series.dtype.kind in "iuf":
        return series.to_numpy(dtype=np.float64).copy()
    if series.dtype.kind == "b":
        raise DataError(f"{label} holds booleans; expected numbers.")
    return _numeric_values(series.to_numpy(dtype=object), label, np.asarray(series.index))
