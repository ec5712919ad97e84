"""Chinchilla Approaches 1 and 2: compute-optimal allocation without a loss law.

Hoffmann et al. (2022) estimate ``N_opt ∝ C^a`` and ``D_opt ∝ C^b`` three ways.
Approach 3 fits a parametric law (:func:`jaxscale.fit`,
:mod:`jaxscale.derived`); this module gives the two that need no law:

* **Approach 2, IsoFLOP profiles** (:func:`isoflop`). Runs are grouped by
  compute budget. In each budget the final loss is fitted by a parabola in
  ``x = ln N``, ``L ≈ c0 + c1 x + c2 x²``, whose vertex is ``N_opt``; then
  ``ln N_opt`` and ``ln D_opt`` (``D_opt = C/(k N_opt)``) are regressed on
  ``ln C`` across budgets. The parabola is fitted to the loss itself, not to
  log-loss, as Hoffmann did (their Fig. 3 fits loss against log N).
* **Approach 1, envelope of training curves** (:func:`envelope`). From
  per-checkpoint losses of several runs, the run with the lowest loss at
  each compute ``C`` on a log grid gives ``N_opt(C)``; ``ln N_opt`` and
  ``ln D_opt`` are regressed on ``ln C``.

Both return a result with the exponents ``a`` and ``b`` (each fitted by its
own regression, as Hoffmann reports them), the coefficients ``k_N``, ``k_D``
of ``N_opt = k_N C^a`` and ``D_opt = k_D C^b``, and bootstrap draws computed
in one vectorised JAX computation (resample ``r`` uses
``jax.random.fold_in(key, r)``, so the same key gives the same result).
:func:`compare_approaches` puts them next to Approach 3 from any fit.

>>> import jaxscale
>>> from jaxscale.isoflop import isoflop
>>> res = isoflop(jaxscale.demo_data(), n_resamples=200, key=0)
>>> len(res.budgets), int(res.budgets["used"].sum()), round(res.a, 2)
(8, 8, 0.46)
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from jaxscale import validate
from jaxscale._io import json_safe, text_or_write
from jaxscale.data import ScalingData, read_csv
from jaxscale.errors import ArgumentError, DataError, FitError
from jaxscale.uncertainty import percentile_interval

RESAMPLE_METHODS = ("pairs", "subsample")
EXCLUDE_MODES = ("resample", "budget")


# --------------------------------------------------------------------------- shared helpers


def _check_common(level, n_resamples, key):
    """``(level, n_resamples, typed key)``, checked: the arguments :func:`isoflop` and :func:`envelope` share."""
    level = validate.level(level)
    n_resamples = validate.integer(n_resamples, "n_resamples", minimum=0)
    if n_resamples:
        # each resample keeps its four coefficients and flags on the host
        validate.n_starts(n_resamples, 4, "n_resamples")
    return level, n_resamples, validate.key(key)


def _load(data, label, role: str, default: str):
    """``(ScalingData, labels or None)``: ``label`` is ``default`` (the data's own labels), a column, or an array."""
    if isinstance(data, ScalingData):
        if isinstance(label, str) and label == default:
            return data, getattr(data, default)
        if isinstance(label, str):
            raise DataError(
                f"{role}={label!r}: a column name needs a DataFrame or CSV path as data; for a ScalingData use "
                f"{role}={default!r} (its {default} labels) or an array of labels."
            )
        arr = np.asarray(label)
        if arr.shape != (len(data),):
            raise DataError(f"{role} labels have shape {arr.shape}; expected one per point, ({len(data)},).")
        return data, arr
    if isinstance(data, (str, os.PathLike)):
        path = os.fspath(data)
        if not os.path.exists(path):
            raise DataError(f"No such data file: {path!r}.")
        data = read_csv(path).frame  # sniffed separator, repeated headers refused
    if isinstance(data, pd.DataFrame):
        if isinstance(label, str) and label in data.columns:
            sd = ScalingData.coerce(data.drop(columns=[label]))
            col = data[label].to_numpy()
            missing = np.flatnonzero(pd.isna(col))
            if missing.size:
                raise DataError(f"Column {label!r} ({role}) is missing a value in row {data.index[missing[0]]}.")
            return sd, col
        if isinstance(label, str) and label != default:
            raise DataError(f"{role}={label!r} is not a column of the data; columns are {list(data.columns)}.")
        return _load(ScalingData.coerce(data), label, role, default)
    return _load(ScalingData.coerce(data), label, role, default)


def _need_nc(data: ScalingData, what: str):
    missing = [c for c in ("N", "C") if c not in data.covariates]
    if missing:
        raise DataError(
            f"{what} needs model size N and compute C (or tokens D, from which C = k N D); the data lacks "
            f"{missing} and has {sorted(data.covariates)}."
        )


def _line(x, y, v):
    """Weighted least-squares line ``y = c + s x`` (weights ``v``): ``(s, c, ok)``."""
    sw = v.sum()
    x, y = jnp.where(v > 0, x, 0.0), jnp.where(v > 0, y, 0.0)  # a NaN at weight 0 must not poison the sums
    xm = (v * x).sum() / jnp.where(sw > 0, sw, 1.0)
    ym = (v * y).sum() / jnp.where(sw > 0, sw, 1.0)
    dx = jnp.where(v > 0, x - xm, 0.0)
    dy = jnp.where(v > 0, y - ym, 0.0)
    sxx = (v * dx**2).sum()
    ok = (sw >= 2) & (sxx > 0)
    s = (v * dx * dy).sum() / jnp.where(ok, sxx, 1.0)
    return jnp.where(ok, s, jnp.nan), jnp.where(ok, ym - s * xm, jnp.nan), ok


def _map(fn, xs, n_items_per_rep: int):
    """``jax.lax.map`` in vmapped batches sized to keep each batch under ~2**22 array elements."""
    batch = int(max(1, min(xs.shape[0], 2**22 // max(1, n_items_per_rep))))
    return jax.lax.map(fn, xs, batch_size=batch)


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, eq=False)
class AllocationFit:
    """Exponents of ``N_opt = k_N C^a`` and ``D_opt = k_D C^b`` with bootstrap draws.

    Attributes
    ----------
    approach
        ``"isoflop"`` (Approach 2) or ``"envelope"`` (Approach 1).
    a, b
        Exponents, each from its own least-squares line in log-log space.
    log_k_N, log_k_D
        Natural-log intercepts of those lines (``k_N = exp(log_k_N)``).
    draws
        One row per kept resample: ``a``, ``b``, ``log_k_N``, ``log_k_D``.
    n_resamples, n_failed
        Resamples drawn, and those excluded (see each function for why).
    level
        Default interval level (0.8: Hoffmann's 10th-90th percentiles).
    """

    approach: str
    a: float
    b: float
    log_k_N: float
    log_k_D: float
    draws: pd.DataFrame
    n_resamples: int
    n_failed: int
    level: float
    settings: dict[str, Any]
    fingerprint: str

    @property
    def k_N(self) -> float:
        return float(np.exp(self.log_k_N))

    @property
    def k_D(self) -> float:
        return float(np.exp(self.log_k_D))

    @property
    def estimate(self) -> dict[str, float]:
        return {"a": self.a, "b": self.b, "log_k_N": self.log_k_N, "log_k_D": self.log_k_D}

    def _draws(self, name: str) -> np.ndarray:
        validate.choice(name, "quantity", list(self.estimate))
        if len(self.draws) == 0:
            raise FitError(
                f"no bootstrap draws ({self.n_resamples} resamples, {self.n_failed} failed): rerun with "
                f"n_resamples > 0 for intervals."
            )
        return self.draws[name].to_numpy()

    def ci(self, name: str = "a", level: float | None = None) -> np.ndarray:
        """Percentile interval ``[lo, hi]`` of ``name`` (``a``, ``b``, ``log_k_N``, ``log_k_D``)."""
        level = validate.level(self.level if level is None else level)
        return percentile_interval(self._draws(name), level)

    def se(self, name: str = "a") -> float:
        """Bootstrap standard error (ddof = 1)."""
        d = self._draws(name)
        return float(d.std(ddof=1)) if d.size > 1 else float("nan")

    def summary(self, level: float | None = None) -> pd.DataFrame:
        """Estimate, SE and percentile interval of ``a``, ``b``, ``log_k_N``, ``log_k_D`` (DataFrame)."""
        level = validate.level(self.level if level is None else level)
        rows = {}
        for k, v in self.estimate.items():
            if len(self.draws):
                lo, hi = self.ci(k, level)
                rows[k] = {"estimate": v, "se": self.se(k), "lo": lo, "hi": hi}
            else:
                rows[k] = {"estimate": v, "se": np.nan, "lo": np.nan, "hi": np.nan}
        out = pd.DataFrame.from_dict(rows, orient="index")
        out.attrs["level"] = level
        return out

    def n_opt(self, C) -> np.ndarray:
        """``N_opt = k_N C^a`` at budget(s) ``C``."""
        return np.exp(self.log_k_N + self.a * np.log(np.asarray(C, float)))

    def d_opt(self, C) -> np.ndarray:
        """``D_opt = k_D C^b`` at budget(s) ``C``."""
        return np.exp(self.log_k_D + self.b * np.log(np.asarray(C, float)))

    def band(self, C, level: float | None = None) -> pd.DataFrame:
        """``N_opt`` and ``D_opt`` at budgets ``C`` with bootstrap percentile bands (DataFrame).

        >>> import jaxscale
        >>> from jaxscale.isoflop import isoflop
        >>> band = isoflop(jaxscale.demo_data(), n_resamples=100, key=0).band([1e21, 1e24])
        >>> band.columns.tolist()
        ['C', 'N_opt', 'D_opt', 'N_lo', 'N_hi', 'D_lo', 'D_hi']
        >>> bool((band["N_lo"] < band["N_opt"]).all() and (band["N_opt"] < band["N_hi"]).all())
        True
        """
        level = validate.level(self.level if level is None else level)
        lc = np.log(validate.budgets(C, "C"))
        out = {"C": np.exp(lc), "N_opt": self.n_opt(np.exp(lc)), "D_opt": self.d_opt(np.exp(lc))}
        for q, (a, lk) in {"N": ("a", "log_k_N"), "D": ("b", "log_k_D")}.items():
            draws = np.exp(self._draws(lk)[:, None] + self._draws(a)[:, None] * lc[None, :])
            out[f"{q}_lo"], out[f"{q}_hi"] = percentile_interval(draws, level)
        return pd.DataFrame(out)

    def _base_dict(self, level, draws: bool):
        level = validate.level(self.level if level is None else level)
        s = self.summary(level)
        out = {
            "approach": self.approach,
            **{k: {"estimate": s.loc[k, "estimate"], "se": s.loc[k, "se"], "ci": [s.loc[k, "lo"], s.loc[k, "hi"]]}
               for k in s.index},
            "k_N": self.k_N,
            "k_D": self.k_D,
            "interval": {"level": level, "method": "percentile"},
            "n_resamples": self.n_resamples,
            "n_failed": self.n_failed,
            "settings": self.settings,
            "data_fingerprint": self.fingerprint,
        }
        if draws:
            out["draws"] = {k: self.draws[k].tolist() for k in self.draws.columns}
        return out

    def to_json(self, path: str | None = None, **kwargs) -> str:
        """Serialise ``to_dict(**kwargs)`` (strict JSON: ``null`` for values that are not finite); write it
        atomically to ``path`` if given."""
        if path is not None:
            path = validate.output_path(path, "path")
        text = json.dumps(self.to_dict(**kwargs), indent=2, allow_nan=False)
        return text_or_write(text, path)


@dataclass(frozen=True, eq=False)
class IsoFlopResult(AllocationFit):
    """The outcome of :func:`isoflop` (Approach 2).

    ``budgets`` has one row per budget: ``budget`` (C), ``n_points``,
    ``n_distinct_N``, ``N_min``, ``N_max``, the parabola ``c0``, ``c1``,
    ``c2`` in ``x = ln N`` (``L = c0 + c1 x + c2 x²``), ``N_opt``,
    ``D_opt = C/(k N_opt)``, ``L_min``, ``convex``, ``in_range``, ``used``
    (in the power-law fit), ``reason`` (why not) and ``n_resample_fail`` (in
    how many resamples this budget's parabola failed). ``points`` maps every
    data row to its budget (``-1``: ungrouped); ``ungrouped`` lists those rows.
    """

    budgets: pd.DataFrame = None
    points: pd.DataFrame = None
    ungrouped: np.ndarray = field(default=None)

    def to_dict(self, level: float | None = None, draws: bool = False) -> dict[str, Any]:
        """JSON-ready summary (``draws=True`` adds the bootstrap draws)."""
        out = self._base_dict(level, draws)
        out["budgets"] = self.budgets.to_dict(orient="records")
        out["ungrouped_rows"] = self.ungrouped.tolist()
        return json_safe(out)

    def __repr__(self) -> str:
        return (f"IsoFlopResult(a={self.a:.4f}, b={self.b:.4f}, budgets used {int(self.budgets['used'].sum())}/"
                f"{len(self.budgets)}, {len(self.ungrouped)} points ungrouped, {self.n_resamples} resamples, "
                f"{self.n_failed} failed)")


@dataclass(frozen=True, eq=False)
class EnvelopeResult(AllocationFit):
    """The outcome of :func:`envelope` (Approach 1).

    ``grid`` has one row per grid compute ``C``: ``n_covering`` (runs whose
    checkpoints span it), ``run`` (the winner), ``N_opt``, ``D_opt``,
    ``L_min``, ``interior`` (the winner is neither the smallest nor the
    largest model size trained) and ``used`` (in the power-law fit). ``runs``
    has one row per run: ``N``, ``n_checkpoints``, ``C_min``, ``C_max``,
    ``n_wins`` (used grid points it wins). ``n_sizes``: distinct model sizes
    winning used grid points (the number of steps ``K`` of the staircase).
    """

    grid: pd.DataFrame = None
    runs: pd.DataFrame = None
    n_sizes: int = 0

    def to_dict(self, level: float | None = None, draws: bool = False) -> dict[str, Any]:
        """JSON-ready summary (``draws=True`` adds the bootstrap draws)."""
        out = self._base_dict(level, draws)
        out["runs"] = self.runs.to_dict(orient="records")
        out["grid_points_used"] = int(self.grid["used"].sum())
        out["n_sizes"] = self.n_sizes
        return json_safe(out)

    def __repr__(self) -> str:
        return (f"EnvelopeResult(a={self.a:.4f}, b={self.b:.4f}, {len(self.runs)} runs, {self.n_sizes} winning sizes, "
                f"{int(self.grid['used'].sum())}/{len(self.grid)} grid points used, {self.n_resamples} resamples, "
                f"{self.n_failed} failed)")


# --------------------------------------------------------------------------- Approach 2: grouping


def group_budgets(C, *, tol: float = 0.1, min_points: int = 5) -> np.ndarray:
    """Group compute values into budgets: integer labels, ``-1`` for ungrouped points.

    The rule (``budgets="auto"`` in :func:`isoflop`): among the points not
    yet grouped, the window ``[log10 C_i, log10 C_i + tol]`` holding the most
    points becomes a budget (ties: the narrower spread, then the lower C);
    repeat until the best window holds fewer than ``min_points`` points. So
    every budget's points lie within ``tol`` dex of each other, the densest
    clusters are taken first, and sparse points between clusters stay
    ungrouped. Labels are numbered by increasing compute.

    >>> group_budgets([1e19, 1.1e19, 0.95e19, 1e20, 1.05e20, 0.9e20, 3e21], min_points=3).tolist()
    [0, 0, 0, 1, 1, 1, -1]
    """
    lc = np.log10(np.asarray(C, float))
    n = lc.size
    order = np.argsort(lc, kind="stable")
    s = lc[order]
    ends = np.searchsorted(s, s + tol * (1 + 1e-12) + 1e-12, side="right")
    free = np.ones(n, bool)
    labels = np.full(n, -1)
    groups = []
    idx = np.arange(n)
    while free.any():
        cum = np.concatenate([[0], np.cumsum(free)])
        counts = np.where(free, cum[ends] - cum[idx], 0)
        last_free = np.maximum.accumulate(np.where(free, idx, -1))
        span = np.where(free, s[last_free[ends - 1]] - s, np.inf)
        best = np.lexsort((idx, span, -counts))[0]
        if counts[best] < min_points:
            break
        members = idx[best:ends[best]][free[best:ends[best]]]
        free[members] = False
        groups.append(order[members])
    for g, members in enumerate(sorted(groups, key=lambda m: lc[m].mean())):
        labels[members] = g
    return labels


def _budget_values(budgets) -> np.ndarray:
    """Budgets given as numbers (FLOPs): each finite and > 0, none repeated; checked before the data are read."""
    if np.ndim(budgets) > 1:
        raise ArgumentError(f"budgets must be 'auto', a column/label name, or a 1-D array of compute values; got an "
                            f"array of shape {np.shape(budgets)}.")
    arr = validate.budgets(budgets, "budgets")
    if np.unique(arr).size < arr.size:
        raise ArgumentError(f"budgets has repeated values: {arr.tolist()}.")
    return arr


def _budget_labels(data: ScalingData, budgets, labels, tol, min_points):
    """``(label per point (-1 ungrouped), budget C per group or NaN for "geometric mean", rule text)``."""
    lcC = np.log10(data.covariates["C"])
    if isinstance(budgets, str) and budgets == "auto":
        lab = group_budgets(data.covariates["C"], tol=tol, min_points=min_points)
        return lab, np.full(lab.max() + 1, np.nan), f"auto (densest windows of {tol:g} dex, >= {min_points} points)"
    if labels is not None:
        codes, uniq = pd.factorize(pd.Series(labels), sort=True)
        values = np.full(len(uniq), np.nan)
        if np.asarray(uniq).dtype.kind in "iuf":
            values = np.asarray(uniq, float)
            bad = np.flatnonzero(~(np.isfinite(values) & (values > 0)))
            if bad.size:
                raise DataError(
                    f"budgets={budgets!r}: budget labels must be positive compute values (or non-numeric names); "
                    f"{uniq[bad[0]]!r} is not."
                )
        return np.asarray(codes), values, f"labels {budgets!r}"
    arr = np.sort(_budget_values(budgets))
    dist = np.abs(lcC[:, None] - np.log10(arr)[None, :])
    near = dist.argmin(1)
    lab = np.where(dist[np.arange(lcC.size), near] <= tol / 2 * (1 + 1e-12), near, -1)
    return lab, arr, f"nearest of {arr.size} given budgets within {tol / 2:g} dex"


# --------------------------------------------------------------------------- Approach 2: kernel


def _profiles(w, u, y, lnc, seg, uid, ubud, m, s, lnC_nom, nominal, B: int, U: int):
    """Weighted parabola of loss in ``u = (ln N - m)/s`` per budget, closed form; ``w``: point weights."""
    S = [jax.ops.segment_sum(w * u**k, seg, B) for k in range(5)]
    T = [jax.ops.segment_sum(w * y * u**k, seg, B) for k in range(3)]
    present = w > 0
    distinct = jax.ops.segment_sum(jax.ops.segment_max(present.astype(u.dtype), uid, U), ubud, B)
    umin = jax.ops.segment_min(jnp.where(present, u, jnp.inf), seg, B)
    umax = jax.ops.segment_max(jnp.where(present, u, -jnp.inf), seg, B)
    solvable = distinct >= 3
    # Cramer's rule on the 3x3 normal equations: cheaper to compile than a batched LU, and well conditioned
    # because u is standardised per budget
    M = [[S[0], S[1], S[2]], [S[1], S[2], S[3]], [S[2], S[3], S[4]]]

    def det(m):
        return (m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
                + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]))

    dm = det(M)
    solvable = solvable & (jnp.abs(dm) > 0)
    dm = jnp.where(solvable, dm, 1.0)
    q = jnp.stack([det([[T[i] if j == c else M[i][j] for j in range(3)] for i in range(3)]) / dm for c in range(3)], -1)
    q0, q1, q2 = q[:, 0], q[:, 1], q[:, 2]
    convex = solvable & (q2 > 0) & jnp.all(jnp.isfinite(q), -1)
    ustar = -q1 / (2 * jnp.where(convex, q2, 1.0))
    in_range = convex & (ustar >= umin) & (ustar <= umax)
    lnN = jnp.where(convex, m + s * ustar, jnp.nan)
    lmin = jnp.where(convex, q0 - q1**2 / (4 * jnp.where(convex, q2, 1.0)), jnp.nan)
    lnC = jnp.where(nominal, lnC_nom, jax.ops.segment_sum(w * lnc, seg, B) / jnp.where(S[0] > 0, S[0], 1.0))
    return {"q": q, "lnN": lnN, "lmin": lmin, "lnC": lnC, "convex": convex, "in_range": in_range, "distinct": distinct}


def _iso_lines(prof, used, lnk, exclude: str):
    ok = prof["in_range"]
    v = (used & ok).astype(prof["lnC"].dtype) if exclude == "budget" else used.astype(prof["lnC"].dtype)
    x = prof["lnC"]
    lnN = jnp.where(used & ok, prof["lnN"], 0.0)
    a, ca, ok_a = _line(x, lnN, v)
    b, cb, ok_b = _line(x, x - lnk - lnN, v)
    failed = ~(ok_a & ok_b)
    if exclude == "resample":
        failed = failed | jnp.any(used & ~ok)
    return jnp.stack([a, b, ca, cb]), failed, used & ~ok


def _iso_boot(key, reps, arrs, used, lnk, starts, sizes, nsub, *, B, U, method, exclude):
    n = arrs["u"].shape[0]
    seg = arrs["seg"]

    def one(r):
        kr = jax.random.fold_in(key, r)
        if method == "pairs":
            idx = starts[seg] + jax.random.randint(kr, (n,), 0, sizes[seg])
            w = jnp.zeros(n, arrs["u"].dtype).at[idx].add(1.0)
        else:
            order = jnp.argsort(seg + jax.random.uniform(kr, (n,)))
            rank = jnp.zeros(n, jnp.int32).at[order].set(jnp.arange(n, dtype=jnp.int32)) - starts[seg]
            w = (rank < nsub[seg]).astype(arrs["u"].dtype)
        prof = _profiles(w, B=B, U=U, **arrs)
        return _iso_lines(prof, used, lnk, exclude)

    return _map(one, reps, n * 8 + B * 32)


_iso_boot_jit = jax.jit(_iso_boot, static_argnames=("B", "U", "method", "exclude"))
_profiles_jit = jax.jit(_profiles, static_argnames=("B", "U"))


# --------------------------------------------------------------------------- Approach 2: driver


def isoflop(
    data,
    *,
    budgets="auto",
    tol: float = 0.1,
    level: float = 0.8,
    n_resamples: int = 1000,
    key=validate.DEFAULT_KEY,
    min_points: int = 5,
    resample: str = "pairs",
    fraction: float = 0.8,
    exclude: str = "budget",
) -> IsoFlopResult:
    """Chinchilla Approach 2: IsoFLOP parabolas, their minima, and ``N_opt ∝ C^a``, ``D_opt ∝ C^b``.

    Parameters
    ----------
    data
        A :class:`~jaxscale.ScalingData` (or DataFrame / CSV path) with ``N``
        and ``C`` (or ``D``: then ``C = k N D``) and the final loss per run.
    budgets
        How points are grouped into compute budgets:

        * ``"auto"``: by :func:`group_budgets`: greedy densest windows whose
          points' ``log10 C`` lie within ``tol`` dex of each other, each with
          at least ``min_points`` points; sparse points between windows are
          left ungrouped (listed in ``result.ungrouped``). Budget value: the
          geometric mean of its points' C.
        * an array of budgets (FLOPs): each point joins the nearest budget if
          its ``log10 C`` is within ``tol/2`` dex (a window ``tol`` wide, as
          for ``"auto"``); others are ungrouped.
        * a label name: ``"group"`` (the data's ``group`` labels), ``"C"``
          (each distinct C is a budget: exact synthetic designs), or a column
          of a DataFrame/CSV ``data``. Numeric labels are the budget values;
          other labels use the geometric mean of C.
    tol
        Window width in dex (``log10`` units), see ``budgets``.
    level
        Default level of the percentile intervals (0.8 = Hoffmann's 10th-90th).
    n_resamples
        Bootstrap resamples (0: none).
    key
        Int seed or ``jax.random.key``; default 0; same key, same result.
    min_points
        Fewest points a budget needs for its parabola (at least 3). Budgets
        below it are flagged, as are those with fewer than 3 distinct N, a
        non-convex parabola or a minimum outside their sampled N range; no
        flagged budget enters the power-law fit.
    resample
        ``"pairs"``: within each budget, draw its points with replacement (a
        stratified pairs bootstrap). ``"subsample"``: within each budget, keep
        ``round(fraction * n)`` points without replacement (Hoffmann's "80% of
        the data" variant; such subsamples vary less than the estimator does
        across data sets, so these intervals are narrower than a bootstrap's,
        by about ``sqrt((1 - f)/f)`` = 0.5 at f = 0.8).
    exclude
        What a failed parabola (not convex, minimum outside the resampled N
        range, fewer than 3 distinct N) does within a resample. ``"budget"``
        (default): that budget is flagged and left out of that resample's
        line fit, the same rule as for the full data, so the bootstrap
        resamples the estimator as defined; the resample fails (and is
        excluded, counted in ``n_failed``) only if fewer than 2 budgets
        remain. ``"resample"``: any failed budget excludes the whole
        resample. With many small budgets that conditions the intervals on
        rare resamples (on Epoch's digitised Chinchilla data, 16 budgets, it
        excluded 837 of 1000). Either way ``budgets["n_resample_fail"]``
        counts each budget's failures.

    Notes
    -----
    The parabola ``L = c0 + c1 x + c2 x²`` in ``x = ln N`` is fitted to the
    loss (not log-loss) by closed-form least squares, as Hoffmann fitted loss
    against log N. A parabola only approximates a profile: for
    ``L = E + A/N^α + B/D^β`` the third derivative at the optimum shifts the
    vertex by about ``(α - β) m4 / (6 m2)`` in ``ln N`` (``m2``, ``m4``: second
    and fourth central moments of ``ln N`` about the optimum), so ``N_opt``
    and ``k_N`` carry a small bias that depends on how wide and how centred
    each budget's sizes are; ``a`` is unbiased when every budget spans the
    same range of ``ln(N/N_opt)``. Points within a budget whose C differs
    (digitised data) are fitted as if at the same C.

    ``D_opt = C_budget / (k N_opt)``; ``b`` is fitted by its own regression
    (so ``a + b = 1`` up to rounding here; in :func:`envelope` ``D`` comes
    from the data).

    >>> import jaxscale
    >>> res = isoflop(jaxscale.demo_data(), n_resamples=100, key=0)
    >>> lo, hi = res.ci("a")                  # 10th and 90th percentiles (level=0.8)
    >>> round(res.a, 3), bool(lo < 0.4565 < hi), round(res.a + res.b, 12)
    (0.457, True, 1.0)
    >>> row = res.budgets.iloc[0]
    >>> float(row["budget"]), int(row["n_points"]), bool(row["used"]), f"{row['N_opt']:.3g}"
    (1e+18, 12, True, '1.02e+08')
    """
    level, n_resamples, rkey = _check_common(level, n_resamples, key)
    tol = validate.positive(tol, "tol")
    min_points = validate.integer(min_points, "min_points", minimum=3)
    resample = validate.choice(resample, "resample", RESAMPLE_METHODS)
    exclude = validate.choice(exclude, "exclude", EXCLUDE_MODES)
    fraction = validate.number(fraction, "fraction", minimum=0, open_min=True, maximum=1)
    if not isinstance(budgets, str):
        _budget_values(budgets)
    if isinstance(budgets, str) and budgets not in ("auto", "C"):
        data, labels = _load(data, budgets, "budgets", "group")
        if labels is None:
            raise DataError(f"budgets={budgets!r}: the data has no {budgets} labels; build it with "
                            f"group=<column>, or use budgets='auto' or an array of budgets.")
    else:
        data = ScalingData.coerce(data)
        labels = data.covariates["C"] if isinstance(budgets, str) and budgets == "C" and "C" in data.covariates \
            else None
    _need_nc(data, "isoflop")
    k = data.flops_per_token
    lab, values, rule = _budget_labels(data, budgets, labels, tol, min_points)

    B = int(values.size)
    grouped = np.flatnonzero(lab >= 0)
    order = grouped[np.argsort(lab[grouped], kind="stable")]
    seg = lab[order]
    N = data.covariates["N"][order]
    C = data.covariates["C"][order]
    y = data.y[order]
    lnN = np.log(N)
    sizes = np.bincount(seg, minlength=B)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    if order.size == 0:
        raise FitError(f"No point falls in any budget ({rule}); {len(data)} points, log10 C from "
                       f"{np.log10(data.covariates['C']).min():.3f} to {np.log10(data.covariates['C']).max():.3f}.")
    for g in np.flatnonzero(~np.isfinite(values) & (sizes > 0)):
        if np.ptp(C[seg == g]) == 0:  # one exact compute value: use it, not a rounded geometric mean
            values[g] = C[seg == g][0]
    m = np.zeros(B)
    s = np.ones(B)
    for g in np.flatnonzero(sizes):
        xs = lnN[seg == g]
        m[g] = xs.mean()
        s[g] = xs.std() if xs.std() > 0 else 1.0
    _, uid = np.unique(np.stack([seg, lnN]), axis=1, return_inverse=True)
    uid = uid.ravel()
    ubud = np.zeros(uid.max() + 1, np.int64)
    ubud[uid] = seg
    nominal = np.isfinite(values)
    arrs = {"u": (lnN - m[seg]) / s[seg], "y": y, "lnc": np.log(C), "seg": seg, "uid": uid, "ubud": ubud, "m": m,
            "s": s, "lnC_nom": np.log(np.where(nominal, values, 1.0)), "nominal": nominal}
    arrs = {kk: jnp.asarray(v) for kk, v in arrs.items()}
    U = int(ubud.size)
    prof = {kk: np.asarray(v) for kk, v in _profiles_jit(jnp.ones(order.size), B=B, U=U, **arrs).items()}

    lnNmin = np.full(B, np.nan)
    lnNmax = np.full(B, np.nan)
    for g in np.flatnonzero(sizes):
        lnNmin[g], lnNmax[g] = lnN[seg == g].min(), lnN[seg == g].max()
    reasons = []
    for g in range(B):
        if sizes[g] == 0:
            reasons.append("no points")
        elif sizes[g] < min_points:
            reasons.append(f"too few points ({sizes[g]} < min_points={min_points})")
        elif prof["distinct"][g] < 3:
            reasons.append(f"fewer than 3 distinct N ({int(prof['distinct'][g])})")
        elif not prof["convex"][g]:
            reasons.append(f"not convex (curvature {prof['q'][g, 2] / s[g] ** 2:.3g} <= 0)")
        elif not prof["in_range"][g]:
            reasons.append(f"minimum N={np.exp(prof['lnN'][g]):.4g} outside sampled range "
                           f"[{np.exp(lnNmin[g]):.4g}, {np.exp(lnNmax[g]):.4g}]")
        else:
            reasons.append("")
    used = np.array([r == "" for r in reasons])
    if used.sum() < 2:
        detail = "; ".join(f"budget {np.exp(prof['lnC'][g]) if sizes[g] else values[g]:.3g}: {reasons[g]}"
                           for g in range(B) if reasons[g]) or "no budgets"
        raise FitError(
            f"isoflop needs at least 2 usable budgets; {int(used.sum())} of {B} usable ({rule}, "
            f"{len(data) - order.size} points ungrouped). Why: {detail}."
        )

    n_ungrouped = len(data) - order.size
    if not used.all() or n_ungrouped:
        flagged = "; ".join(f"C={values[g] if nominal[g] else np.exp(prof['lnC'][g]):.3g}: {reasons[g]}"
                            for g in range(B) if reasons[g])
        rows_out = np.asarray(data.rows)[lab < 0].tolist()
        rows_text = f" (rows {rows_out[:10]}{' ...' if n_ungrouped > 10 else ''})" if n_ungrouped else ""
        warnings.warn(
            f"isoflop: {int((~used).sum())} of {B} budgets flagged and left out of the power-law fit"
            f"{' (' + flagged + ')' if flagged else ''}; {n_ungrouped} of {len(data)} points in no budget{rows_text}. "
            f"See result.budgets and result.ungrouped.", UserWarning, stacklevel=2)
    q2 = prof["q"][:, 2] / s**2
    q1 = prof["q"][:, 1] / s - 2 * q2 * m
    q0 = prof["q"][:, 0] - prof["q"][:, 1] * m / s + q2 * m**2
    lnk = float(np.log(k))
    pt, _, _ = _iso_lines({kk: jnp.asarray(v) for kk, v in prof.items()}, jnp.asarray(used), lnk, "budget")
    a, b, ca, cb = (float(v) for v in np.asarray(pt))

    cols = ["a", "b", "log_k_N", "log_k_D"]
    fail_counts = np.zeros(B, np.int64)
    n_failed = 0
    draws = pd.DataFrame({c: np.zeros(0) for c in cols})
    if n_resamples:
        nsub = np.round(fraction * sizes).astype(np.int64)
        out, failed, bfail = _iso_boot_jit(
            rkey, jnp.arange(n_resamples, dtype=jnp.uint32), arrs, jnp.asarray(used), lnk,
            jnp.asarray(starts), jnp.asarray(sizes), jnp.asarray(nsub), B=B, U=U, method=resample, exclude=exclude)
        out, failed, bfail = np.asarray(out), np.asarray(failed), np.asarray(bfail)
        failed = failed | ~np.all(np.isfinite(out), 1)
        fail_counts = bfail.sum(0)
        n_failed = int(failed.sum())
        draws = pd.DataFrame(out[~failed], columns=cols)
        if n_failed:
            worst = np.argsort(-fail_counts)[: min(3, B)]
            per = ", ".join(f"C={np.exp(prof['lnC'][g]):.3g}: {fail_counts[g]}" for g in worst if fail_counts[g])
            warnings.warn(
                f"isoflop: {n_failed} of {n_resamples} resamples excluded (a budget's parabola not convex, its "
                f"minimum outside the resampled N range, or < 3 distinct N; exclude={exclude!r}). Failures by "
                f"budget: {per}.", RuntimeWarning, stacklevel=2)

    lnC = prof["lnC"]
    table = pd.DataFrame({
        "budget": np.where(nominal, values, np.exp(lnC)),
        "n_points": sizes,
        "n_distinct_N": prof["distinct"].astype(np.int64),
        "N_min": np.exp(lnNmin),
        "N_max": np.exp(lnNmax),
        "c0": np.where(sizes >= 3, q0, np.nan),
        "c1": np.where(sizes >= 3, q1, np.nan),
        "c2": np.where(sizes >= 3, q2, np.nan),
        "N_opt": np.exp(prof["lnN"]),
        "D_opt": np.exp(lnC - lnk - prof["lnN"]),
        "L_min": prof["lmin"],
        "convex": prof["convex"].astype(bool),
        "in_range": prof["in_range"].astype(bool),
        "used": used,
        "reason": reasons,
        "n_resample_fail": fail_counts.astype(np.int64),
    })
    table.loc[prof["distinct"] < 3, ["c0", "c1", "c2", "N_opt", "D_opt", "L_min"]] = np.nan
    points = pd.DataFrame({"budget_index": lab, "budget": np.where(lab >= 0, table["budget"].to_numpy()[lab], np.nan)},
                          index=data.rows)
    settings = {"budgets": rule, "tol": tol, "min_points": int(min_points), "resample": resample, "fraction": fraction,
                    "exclude": exclude, "key": validate.key_repr(key), "flops_per_token": k,
                    "parabola": "loss vs ln N"}
    return IsoFlopResult("isoflop", a, b, ca, cb, draws, n_resamples, n_failed, level, settings, data.fingerprint(),
                         budgets=table, points=points, ungrouped=np.asarray(data.rows)[lab < 0])


# --------------------------------------------------------------------------- Approach 1


def _env_one(present, Lg, lnDg, lnNr, lnG, interior_only):
    cover = jnp.isfinite(Lg) & present[:, None]
    ncov = cover.sum(0)
    Lm = jnp.where(cover, Lg, jnp.inf)
    win = jnp.argmin(Lm, 0)
    cols = jnp.arange(Lg.shape[1])
    lnNw = lnNr[win]
    lnDw = lnDg[win, cols]
    nmin = jnp.min(jnp.where(present, lnNr, jnp.inf))
    nmax = jnp.max(jnp.where(present, lnNr, -jnp.inf))
    interior = (lnNw > nmin) & (lnNw < nmax)
    use = (ncov >= 2) & (interior | (not interior_only))
    v = use.astype(lnG.dtype)
    a, ca, ok_a = _line(lnG, jnp.where(use, lnNw, 0.0), v)
    b, cb, ok_b = _line(lnG, jnp.where(use, lnDw, 0.0), v)
    spread = jnp.max(jnp.where(use, lnNw, -jnp.inf)) > jnp.min(jnp.where(use, lnNw, jnp.inf))
    return jnp.stack([a, b, ca, cb]), ~(ok_a & ok_b & spread), {"ncov": ncov, "win": win, "interior": interior, "use": use,
                                                                    "lmin": Lm[win, cols], "lnD": lnDw}


def _env_boot(key, reps, Lg, lnDg, lnNr, lnG, interior_only):
    P = Lg.shape[0]

    def one(r):
        idx = jax.random.randint(jax.random.fold_in(key, r), (P,), 0, P)
        present = jnp.zeros(P, bool).at[idx].set(True)
        out, failed, _ = _env_one(present, Lg, lnDg, lnNr, lnG, interior_only)
        return out, failed

    return _map(one, reps, Lg.size * 6)


_env_boot_jit = jax.jit(_env_boot, static_argnames=("interior_only",))
_env_one_jit = jax.jit(_env_one, static_argnames=("interior_only",))


def envelope(
    data,
    *,
    run="run",
    n_grid: int = 250,
    level: float = 0.8,
    n_resamples: int = 1000,
    key=validate.DEFAULT_KEY,
    interior_only: bool = True,
) -> EnvelopeResult:
    """Chinchilla Approach 1: the lower envelope of training curves.

    Parameters
    ----------
    data
        Per-checkpoint data: one row per (run, checkpoint) with the model
        size ``N``, tokens seen so far ``D`` (or compute so far ``C``; the
        other follows from ``C = k N D``) and the loss there.
    run
        The training-run labels: ``"run"`` (the data's ``run`` labels), a
        column of a DataFrame/CSV ``data``, or an array with one label per row.
        A run has one model size; several runs may share one (e.g. different
        schedule lengths, as in Hoffmann's Approach 1).
    n_grid
        Points of the log-spaced compute grid, spanning the compute covered
        by at least two runs.
    level, n_resamples, key
        As in :func:`isoflop`. The bootstrap resamples whole runs with
        replacement (a cluster bootstrap); a resample's envelope is taken over
        the distinct runs drawn.
    interior_only
        Use only grid points won by neither the smallest nor the largest
        model size trained (in a resample: drawn). There the true optimum may
        lie outside the sizes trained, so the envelope is censored and would
        flatten the fitted slope. This is the analogue of Approach 2's
        "minimum inside the sampled N range".

    Notes
    -----
    Each run's loss is interpolated linearly in ``ln C`` between its
    checkpoints (and ``ln D`` likewise); a run covers only
    ``[C_first, C_last]`` of its own checkpoints, nothing is extrapolated. At
    each grid compute with at least two covering runs, the lowest
    interpolated loss picks ``N_opt`` (that run's ``N``) and ``D_opt`` (its
    interpolated tokens), so:

    * ``N_opt`` can only take the model sizes trained: the envelope is a
      staircase. For a Chinchilla-form loss the switch from one size to the
      next happens at ``C ∝ N^(1/a)``, so with sizes evenly spaced in
      ``ln N`` the steps have equal width in ``ln C``, and least squares
      through ``K`` complete steps gives ``a (1 - 1/K²)`` instead of ``a``
      (the within-step sawtooth has slope ``-a``; ``Cov(ln C, sawtooth)/Var``
      is ``-a/K²``). ``n_sizes`` reports ``K``; with 6 steps the bias is
      -2.8% of ``a``. The run bootstrap draws fewer sizes (K smaller), so
      its distribution leans low;
    * loss is convex in ``ln C`` along a run, so linear interpolation
      overstates it between sparse checkpoints, favouring runs with denser
      checkpoints near that compute;
    * ``a + b = 1`` exactly only if ``C = k N D`` in the data.

    >>> import numpy as np, jaxscale
    >>> p = jaxscale.HOFFMANN_UNROUNDED
    >>> N = np.repeat(np.logspace(7.5, 10, 12), 30)
    >>> D = np.tile(np.logspace(8, 12, 30), 12)
    >>> L = p["E"] + p["A"] / N ** p["alpha"] + p["B"] / D ** p["beta"]
    >>> d = jaxscale.ScalingData.from_arrays(N=N, D=D, loss=L, run=N)
    >>> res = envelope(d, n_resamples=100, key=0)
    >>> round(res.a, 2), round(res.a + res.b, 12), len(res.runs)
    (0.45, 1.0, 12)
    """
    level, n_resamples, rkey = _check_common(level, n_resamples, key)
    n_grid = validate.integer(n_grid, "n_grid", minimum=2)
    if not isinstance(interior_only, (bool, np.bool_)):
        raise ArgumentError(f"interior_only must be True or False; got {interior_only!r}.")
    data, labels = _load(data, run, "run", "run")
    if labels is None:
        raise DataError(
            "envelope needs a training-run label per checkpoint: build the data with run=<column> "
            "(e.g. ScalingData.from_frame(df, run='run_id')), pass run=<column> with a DataFrame, or run=<array>."
        )
    _need_nc(data, "envelope")
    k = data.flops_per_token
    codes, names = pd.factorize(pd.Series(labels), sort=True)
    lnC = np.log(data.covariates["C"])
    lnD = np.log(data.covariates["D"]) if "D" in data.covariates else lnC - np.log(k) - np.log(data.covariates["N"])
    lnN = np.log(data.covariates["N"])
    rows = np.asarray(data.rows)
    P = len(names)
    lnNr = np.zeros(P)
    curves = []
    for r in range(P):
        idx = np.flatnonzero(codes == r)
        if np.ptp(lnN[idx]) > 1e-9:
            raise DataError(f"run {names[r]!r} has more than one model size N (rows {rows[idx][:5].tolist()}: "
                            f"N = {np.exp(lnN[idx][:5]).tolist()}); a run is one model's training curve.")
        o = idx[np.argsort(lnC[idx], kind="stable")]
        dup = np.flatnonzero(np.diff(lnC[o]) == 0)
        if dup.size:
            raise DataError(f"run {names[r]!r} has two checkpoints at the same compute C={np.exp(lnC[o[dup[0]]]):.6g} "
                            f"(rows {rows[o[dup[0]]]}, {rows[o[dup[0] + 1]]}); expected one loss per checkpoint.")
        lnNr[r] = lnN[idx[0]]
        curves.append(o)
    ends = sorted([(lnC[o[0]], 1) for o in curves] + [(lnC[o[-1]], -1) for o in curves], key=lambda t: (t[0], -t[1]))
    cover, lo, hi = 0, None, None
    for x, d in ends:
        cover += d
        if cover >= 2 and lo is None:
            lo = x
        if d == -1 and cover == 1:
            hi = x
    if lo is None or hi is None or hi <= lo:
        raise DataError(f"envelope needs compute covered by at least two runs' checkpoints; the {P} run(s) "
                        f"never overlap in C (each run spans [C_first, C_last] of its own checkpoints).")
    lnG = np.linspace(lo, hi, int(n_grid))
    Lg = np.full((P, lnG.size), np.inf)
    lnDg = np.zeros((P, lnG.size))
    for r, o in enumerate(curves):
        inside = (lnG >= lnC[o[0]]) & (lnG <= lnC[o[-1]])
        Lg[r, inside] = np.interp(lnG[inside], lnC[o], data.y[o])
        lnDg[r, inside] = np.interp(lnG[inside], lnC[o], lnD[o])
    args = (jnp.asarray(Lg), jnp.asarray(lnDg), jnp.asarray(lnNr), jnp.asarray(lnG))
    pt, failed, info = _env_one_jit(jnp.ones(P, bool), *args, interior_only=bool(interior_only))
    info = {kk: np.asarray(v) for kk, v in info.items()}
    use = info["use"].astype(bool)
    if bool(failed):
        n_sizes = np.unique(lnNr[info["win"][use]]).size if use.any() else 0
        raise FitError(
            f"envelope: the power-law fit needs at least 2 grid points won by at least 2 different model sizes; "
            f"{int(use.sum())} of {lnG.size} grid points usable (covered by >= 2 runs"
            f"{' and won by an interior model size' if interior_only else ''}), won by {n_sizes} size(s). "
            f"Train more model sizes{' or pass interior_only=False' if interior_only else ''}."
        )
    a, b, ca, cb = (float(v) for v in np.asarray(pt))
    cols = ["a", "b", "log_k_N", "log_k_D"]
    n_failed = 0
    draws = pd.DataFrame({c: np.zeros(0) for c in cols})
    if n_resamples:
        out, bad = _env_boot_jit(rkey, jnp.arange(n_resamples, dtype=jnp.uint32), *args,
                                 interior_only=bool(interior_only))
        out, bad = np.asarray(out), np.asarray(bad)
        bad = bad | ~np.all(np.isfinite(out), 1)
        n_failed = int(bad.sum())
        draws = pd.DataFrame(out[~bad], columns=cols)
        if n_failed:
            warnings.warn(
                f"envelope: {n_failed} of {n_resamples} run resamples excluded (fewer than 2 usable grid points or "
                f"a single winning model size among the runs drawn).", RuntimeWarning, stacklevel=2)
    win = info["win"]
    grid = pd.DataFrame({
        "C": np.exp(lnG),
        "n_covering": info["ncov"].astype(np.int64),
        "run": np.where(info["ncov"] > 0, np.asarray(names, dtype=object)[win], None),
        "N_opt": np.where(info["ncov"] > 0, np.exp(lnNr[win]), np.nan),
        "D_opt": np.where(info["ncov"] > 0, np.exp(info["lnD"]), np.nan),
        "L_min": np.where(info["ncov"] > 0, info["lmin"], np.nan),
        "interior": info["interior"].astype(bool),
        "used": use,
    })
    runs = pd.DataFrame({
        "run": np.asarray(names, dtype=object),
        "N": np.exp(lnNr),
        "n_checkpoints": [o.size for o in curves],
        "C_min": [np.exp(lnC[o[0]]) for o in curves],
        "C_max": [np.exp(lnC[o[-1]]) for o in curves],
        "n_wins": np.bincount(win[use], minlength=P),
    })
    n_sizes = int(np.unique(lnNr[win[use]]).size)
    settings = {"run": run if isinstance(run, str) else "array", "n_grid": int(n_grid), "interior_only": bool(interior_only),
                    "resample": "cluster (runs)", "key": validate.key_repr(key), "flops_per_token": k,
                    "interpolation": "loss and ln D linear in ln C between checkpoints"}
    return EnvelopeResult("envelope", a, b, ca, cb, draws, n_resamples, n_failed, level, settings, data.fingerprint(),
                          grid=grid, runs=runs, n_sizes=n_sizes)


# --------------------------------------------------------------------------- comparison


def compare_approaches(*results: AllocationFit, approach3=None, law=None, level: float = 0.8) -> pd.DataFrame:
    """Approach 1/2 exponents next to Approach 3's, with percentile intervals (DataFrame).

    ``results``: :class:`EnvelopeResult` / :class:`IsoFlopResult` objects.
    ``approach3``: anything :func:`jaxscale._draws.param_source` accepts (a
    FitResult, BootstrapResult, posterior, fit file, or a dict of Chinchilla
    parameters with ``law="chinchilla"``); its ``a = β/(α+β)``,
    ``b = α/(α+β)``, with intervals from its draws when it has any.

    >>> import jaxscale
    >>> iso = isoflop(jaxscale.demo_data(), n_resamples=100, key=0)
    >>> t = compare_approaches(iso, approach3=jaxscale.HOFFMANN_UNROUNDED, law="chinchilla")
    >>> t.index.tolist(), [round(x, 3) for x in t["a"]]
    (['Approach 2 (IsoFLOP)', 'Approach 3 (params)'], [0.457, 0.457])
    """
    level = validate.level(level)
    names = {"envelope": "Approach 1 (envelope)", "isoflop": "Approach 2 (IsoFLOP)"}
    rows = {}
    for r in results:
        if not isinstance(r, AllocationFit):
            raise FitError(f"compare_approaches takes EnvelopeResult/IsoFlopResult objects positionally; got "
                           f"{type(r).__name__} (pass a Chinchilla fit as approach3=...).")
        s = r.summary(level)
        rows[names[r.approach]] = {"a": r.a, "a_lo": s.loc["a", "lo"], "a_hi": s.loc["a", "hi"], "b": r.b,
                                   "b_lo": s.loc["b", "lo"], "b_hi": s.loc["b", "hi"], "n_draws": len(r.draws)}
    if approach3 is not None:
        from jaxscale import derived as dv
        from jaxscale._draws import param_source

        src = param_source(approach3, law)
        pa = float(dv.exponent_a(src.point))
        pb = float(dv.exponent_b(src.point))
        row = {"a": pa, "a_lo": np.nan, "a_hi": np.nan, "b": pb, "b_lo": np.nan, "b_hi": np.nan, "n_draws": 0}
        if src.draws is not None:
            cols = src.columns()
            da, db = np.asarray(dv.exponent_a(cols)), np.asarray(dv.exponent_b(cols))
            ok = np.isfinite(da) & np.isfinite(db)
            (row["a_lo"], row["a_hi"]) = percentile_interval(da[ok], level)
            (row["b_lo"], row["b_hi"]) = percentile_interval(db[ok], level)
            row["n_draws"] = int(ok.sum())
        rows[f"Approach 3 ({src.kind})"] = row
    if not rows:
        raise FitError("compare_approaches needs at least one result or approach3=...")
    out = pd.DataFrame.from_dict(rows, orient="index")
    out["n_draws"] = out["n_draws"].astype(np.int64)
    out.attrs["level"] = level
    return out


__all__ = [
    "AllocationFit",
    "EnvelopeResult",
    "IsoFlopResult",
    "compare_approaches",
    "envelope",
    "group_budgets",
    "isoflop",
]
