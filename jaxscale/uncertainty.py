"""Bootstrap uncertainty: every resample x every start as one compiled computation.

Data flow::

    data --fit()--> point estimate (and, for starts="auto", the distinct optima of its multi-start)
    key --fold_in(r)--> resample r: point counts (pairs / cluster) or targets (residual)
    (replicates x starts) --solver.solve_chunks (chunked, sharded)--> per-start optima
    --best start per replicate--> draws --> SEs, covariance, percentile / BCa intervals, derive(fn)

A resample is never materialised as a new data set: ``pairs`` and ``cluster``
resamples are integer counts per point (the objective of the resampled data
with repeated points is exactly the count-weighted objective), ``residual``
resamples are new targets on the same design. Replicate ``r`` draws from
``jax.random.fold_in(key, r)``, so results do not depend on chunking or on the
number of devices.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import json
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxscale import progress as _progress
from jaxscale import validate
from jaxscale._io import json_safe, text_or_write
from jaxscale._version import __version__
from jaxscale.data import ScalingData
from jaxscale.errors import ArgumentError, DerivedError, FitError
from jaxscale.fit import AT_BEST_RTOL, FitResult, check_identified, fit_problem, make_problem
from jaxscale.laws import Law, get
from jaxscale.solver import OK_STATUSES, Replicates, SolverConfig, Status, solve_chunks

METHODS = ("pairs", "residual", "cluster")
#: The default ``starts`` of :func:`bootstrap`, of the bootstrap inside :func:`jaxscale.forecast.forecast` and
#: :func:`~jaxscale.forecast.backtest`, and of the command line's ``--starts`` (its help is written from it).
BOOTSTRAP_STARTS = "auto"
#: The named ``starts`` of :func:`bootstrap` (besides a number of random starts or an array of starts).
START_KINDS = ("auto", "warm", "grid")
#: ``starts="auto"``: at most this many distinct optima of the point fit's multi-start (the best ones).
AUTO_MAX_STARTS = 16
#: ``starts="auto"``: two optima are one when their log-predictions at every data point differ by at most this
#: (1e-4 = 0.01% of the target; a tenth of the default Huber delta).
AUTO_PREDICTION_ATOL = 1e-4
#: Share of unidentified replicates above which :func:`bootstrap` warns that its interval is unreliable.
UNIDENTIFIED_WARN = 0.1
INTERVALS = ("percentile", "bca")


_TRACER_ERRORS = (
    jax.errors.ConcretizationTypeError,
    jax.errors.TracerArrayConversionError,
    jax.errors.TracerBoolConversionError,
    jax.errors.TracerIntegerConversionError,
)


# --------------------------------------------------------------------------- resampling


@jax.jit
def _draw_indices(key, reps, n_draw):
    """Indices ``(len(reps), n_draw.shape[0])`` in ``[0, n_draw)`` for replicates ``reps``."""
    size = n_draw.shape[0]
    return jax.vmap(lambda r: jax.random.randint(jax.random.fold_in(key, r), (size,), 0, size))(reps)


class _Resampler:
    """Per-replicate rows for the solver, drawn lazily and reproducibly."""

    def __init__(self, method, key, logy, fitted, codes, n_clusters, weight=None):
        self.method, self.key, self.logy = method, key, logy
        self.fitted, self.codes, self.n_clusters = fitted, codes, n_clusters
        self.weight = weight  # the data's per-point weights: they multiply the resample counts
        self.n = logy.shape[0]
        self._cache = (None, None)

    def draws(self, lo, hi):
        if self._cache[0] == (lo, hi):
            return self._cache[1]
        size = self.n_clusters if self.method == "cluster" else self.n
        idx = np.asarray(_draw_indices(self.key, jnp.arange(lo, hi, dtype=jnp.uint32), jnp.zeros(size)))
        if self.method == "residual":
            resid = self.logy - self.fitted
            out = (self.fitted[None, :] + resid[idx], None)
        else:
            counts = np.zeros((hi - lo, size))
            np.add.at(counts, (np.arange(hi - lo)[:, None], idx), 1.0)
            if self.method == "cluster":
                counts = counts[:, self.codes]
            out = (np.broadcast_to(self.logy, (hi - lo, self.n)), counts)
        self._cache = ((lo, hi), out)
        return out

    def rows(self, lo, hi):
        """What the solver fits for replicates ``lo..hi-1``: the draws, their counts times the data's weights."""
        logy, counts = self.draws(lo, hi)
        return logy, (counts if counts is None or self.weight is None else counts * self.weight)


def _unidentified(counts, logx, n_free):
    """Replicates whose resampled points cannot identify the law.

    A covariate the law needs with fewer than 2 distinct values, or fewer
    distinct points than free parameters: the same conditions a fit on the
    data rejects as bad input (``ScalingData.design``).
    """
    present = counts > 0
    bad = np.zeros(counts.shape[0], bool)
    for j in range(logx.shape[1]):
        _, codes = np.unique(logx[:, j], return_inverse=True)
        onehot = np.zeros((logx.shape[0], codes.max() + 1))
        onehot[np.arange(logx.shape[0]), codes] = 1.0
        bad |= ((present @ onehot) > 0).sum(1) < 2
    _, rows = np.unique(logx, axis=0, return_inverse=True)
    onehot = np.zeros((logx.shape[0], rows.max() + 1))
    onehot[np.arange(logx.shape[0]), rows.ravel()] = 1.0
    bad |= ((present @ onehot) > 0).sum(1) < n_free
    return bad


# --------------------------------------------------------------------------- reduction


class _BestPerReplicate:
    """Running reduction of per-start results to the best start of each replicate."""

    def __init__(self, n_rep, n_starts, P):
        self.S0 = n_starts
        self.theta = np.full((n_rep, P), np.nan)
        self.f = np.full(n_rep, np.inf)
        self.status = np.full(n_rep, int(Status.DIVERGED))
        self.n_at_best = np.zeros(n_rep, np.int64)
        self.n_iter = np.zeros(n_rep, np.int64)  # summed over the replicate's starts
        self.log_sigma = np.zeros(n_rep)
        self._pending = None

    def add(self, lo, hi, out):
        idx = np.arange(lo, hi)
        parts = (idx, out.theta, out.objective, out.status, out.n_iter, out.log_sigma)
        if self._pending is not None:
            parts = tuple(np.concatenate([a, b]) for a, b in zip(self._pending, parts))
        idx, theta, f, status, n_iter, ls = parts
        rep = idx // self.S0
        complete = (rep + 1) * self.S0 <= hi  # all of the replicate's starts seen
        self._pending = tuple(a[~complete] for a in parts) if not complete.all() else None
        if not complete.any():
            return
        rep, theta, f, status, n_iter, ls = (a[complete] for a in (rep, theta, f, status, n_iter, ls))
        ok = np.isfinite(f) & np.isin(status, OK_STATUSES)
        f_ok = np.where(ok, f, np.inf)
        order = np.lexsort((f_ok, rep))  # by replicate, best first
        first = np.ones(order.size, bool)
        first[1:] = rep[order][1:] != rep[order][:-1]
        best = order[first]
        r = rep[best]
        self.f[r] = f_ok[best]
        self.theta[r] = theta[best]
        self.log_sigma[r] = ls[best]
        at = np.searchsorted(r, rep)
        skipped, nonfinite = np.zeros(r.size, bool), np.zeros(r.size, bool)
        np.logical_or.at(skipped, at, status == Status.SKIPPED)
        np.logical_or.at(nonfinite, at, status == Status.NONFINITE)
        # no start left: nonfinite if any start ran off to non-finite parameters, else diverged
        failed = np.where(nonfinite, int(Status.NONFINITE), int(Status.DIVERGED))
        st = np.where(np.isfinite(f_ok[best]), status[best], failed)
        self.status[r] = np.where(skipped, int(Status.SKIPPED), st)
        near = f_ok <= self.f[rep] + AT_BEST_RTOL * np.abs(self.f[rep])
        np.add.at(self.n_at_best, rep, near & ok)
        np.add.at(self.n_iter, rep, n_iter)

    def run(self, chunks):
        for lo, hi, out in chunks:
            self.add(lo, hi, out)
        return self


def _solve_replicates(law, theta0, logx, free, cfg, n_rep, rows, weighted, skip, *, chunk_size=65536,
                      dtype=jnp.float64, devices=None, progress=None) -> _BestPerReplicate:
    """Best start of every replicate; with several JAX processes (``jax.distributed``), each solves a share.

    Process ``p`` of ``P`` takes replicates ``[p * ceil(R/P), (p + 1) * ceil(R/P))`` on its local devices;
    the per-replicate bests are then all-gathered, so every process returns the same complete result,
    identical to a single-process run (replicate ``r`` always draws from ``fold_in(key, r)``).
    """
    n_proc, me = jax.process_count(), jax.process_index()
    per = -(-n_rep // n_proc)
    lo, hi = min(me * per, n_rep), min((me + 1) * per, n_rep)
    best = _BestPerReplicate(hi - lo, len(theta0), law.n_params)
    if hi > lo:
        reps = Replicates(hi - lo, lambda a, b: rows(a + lo, b + lo), weighted,
                          None if skip is None else (lambda a, b: skip(a + lo, b + lo)))
        best.run(solve_chunks(law, theta0, logx, free, cfg, reps, chunk_size=chunk_size, dtype=dtype,
                              devices=devices, progress=progress))
    if n_proc == 1:
        return best
    from jax.experimental import multihost_utils

    out = _BestPerReplicate(n_rep, len(theta0), law.n_params)
    for name in ("theta", "f", "status", "n_at_best", "n_iter", "log_sigma"):
        mine = getattr(best, name)
        padded = np.zeros((per,) + mine.shape[1:], mine.dtype)
        padded[: hi - lo] = mine
        every = np.asarray(multihost_utils.process_allgather(padded))
        setattr(out, name, every.reshape((n_proc * per,) + mine.shape[1:])[:n_rep])
    return out


# --------------------------------------------------------------------------- intervals


def percentile_interval(draws, level: float) -> np.ndarray:
    """Equal-tailed percentile interval ``[lo, hi]`` of ``draws`` along axis 0, stacked on a leading axis of 2.

    >>> percentile_interval(np.arange(101.0), 0.5).tolist()
    [25.0, 75.0]
    """
    level = validate.level(level)
    q = 100 * np.array([(1 - level) / 2, (1 + level) / 2])
    return np.percentile(draws, q, axis=0)


def _bca(draws, estimate, jack, level):
    """Efron's bias-corrected and accelerated intervals, column by column.

    ``z0`` from the share of draws below the estimate (ties count half);
    acceleration from the jackknife values ``jack`` (Efron & Tibshirani 1993, 14.3).
    """
    from jax.scipy.special import ndtr, ndtri

    R = draws.shape[0]
    below = (draws < estimate).sum(0) + 0.5 * (draws == estimate).sum(0)
    z0 = np.asarray(ndtri(np.clip(below / R, 0.5 / R, 1 - 0.5 / R)))
    d = jack.mean(0) - jack
    num, den = (d**3).sum(0), 6 * ((d**2).sum(0)) ** 1.5
    acc = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
    out = []
    for z in np.asarray(ndtri(np.array([(1 - level) / 2, (1 + level) / 2]))):
        adj = np.asarray(ndtr(z0 + (z0 + z) / (1 - acc * (z0 + z))))
        out.append([np.percentile(draws[:, j], 100 * adj[j]) for j in range(draws.shape[1])])
    return np.array(out)


def _interval_args(level, method) -> tuple[float, str]:
    return validate.level(level), validate.choice(method, "interval method", INTERVALS)


def _interval(draws, estimate, level, method, jack_fn):
    level, method = _interval_args(level, method)
    if method == "percentile":
        return percentile_interval(draws, level)
    return _bca(draws, estimate, jack_fn(), level)


# --------------------------------------------------------------------------- results


@dataclass(eq=False)
class Derived:
    """A derived quantity: its value at the point estimate and over the draws.

    ``estimate`` and each row of ``draws`` have the quantity's shape (scalar,
    or e.g. one value per compute budget). Non-finite draws are counted in
    ``n_nonfinite`` and excluded from SEs and intervals (with a warning).
    ``index`` labels the values: the budgets ``C`` of :func:`jaxscale.derived.n_opt` and the like, the points
    of :func:`~jaxscale.derived.loss_at`, or the quantity's name for a scalar.

    >>> import jaxscale, jaxscale.derived as dv
    >>> b = jaxscale.bootstrap("chinchilla", jaxscale.demo_data(), 50, key=0, starts="warm")
    >>> t = b.derive(dv.tokens_per_param([1e22, 1e23])).ci(0.9)
    >>> list(t.columns), t.index.name, t.index.tolist()
    (['estimate', 'lo', 'hi'], 'C', [1e+22, 1e+23])
    """

    name: str
    estimate: np.ndarray
    draws: np.ndarray
    n_nonfinite: int
    _jack: Callable[[], np.ndarray] = field(repr=False, default=None)
    index: Any = None

    def _flat(self):
        d = self.draws.reshape(self.draws.shape[0], -1)
        return d[np.all(np.isfinite(d), 1)]

    def se(self) -> np.ndarray:
        """Bootstrap standard error (ddof = 1)."""
        return self._flat().std(0, ddof=1).reshape(self.estimate.shape)

    def interval(self, level: float = 0.95, method: str = "percentile") -> np.ndarray:
        """The interval as an array: ``[lo, hi]`` stacked on a leading axis of 2 (``lo, hi = d.interval()``)."""
        level, method = _interval_args(level, method)
        jack = lambda: self._jack().reshape(-1, self._flat().shape[1])  # noqa: E731
        lohi = _interval(self._flat(), self.estimate.reshape(-1), level, method, jack)
        return lohi.reshape((2,) + self.estimate.shape)

    def ci(self, level: float = 0.95, method: str = "percentile"):
        """A DataFrame, one row per value (indexed by :attr:`index`): ``estimate``, ``lo``, ``hi``.

        ``level`` and ``method`` (``"percentile"`` or ``"bca"``) are in ``.attrs``; :meth:`interval` gives the
        bare array.
        """
        import pandas as pd

        lo, hi = self.interval(level, method)
        if self.index is not None:
            name, labels = self.index
        else:
            name, labels = (None, [self.name]) if self.estimate.ndim == 0 else (None, range(self.estimate.size))
        frame = pd.DataFrame({"estimate": self.estimate.reshape(-1), "lo": lo.reshape(-1), "hi": hi.reshape(-1)},
                             index=pd.Index(list(labels), name=name))
        frame.attrs.update(quantity=self.name, level=float(level), method=method)
        return frame

    def to_dict(self, level: float = 0.95, method: str = "percentile") -> dict[str, Any]:
        """JSON-ready: ``estimate``, ``se`` and ``ci`` (``None`` where a value is not finite)."""
        level, method = _interval_args(level, method)
        lo, hi = self.interval(level, method)
        return json_safe({"estimate": self.estimate.tolist(), "se": self.se().tolist(),
                          "ci": [lo.tolist(), hi.tolist()], "n_nonfinite": self.n_nonfinite})


@dataclass(frozen=True, eq=False)
class BootstrapResult:
    """The outcome of :func:`bootstrap`.

    Attributes
    ----------
    point
        The fit on the full data (:class:`FitResult`): the estimate the
        intervals are around.
    replicates
        One row per resample: ``status`` (``converged``, ``max_iter``: kept;
        ``diverged``, ``unidentified``, ``nonfinite``: failed and excluded),
        best objective, starts at the best, summed iterations, and the best
        parameters (fitting coordinates and natural scale).
    draws
        Natural-scale parameters of the successful replicates (DataFrame).
    n_resamples, n_failed
        Resamples drawn, and those excluded.
    """

    law: Law
    method: str
    point: FitResult
    replicates: Any
    draws: Any
    theta_draws: np.ndarray
    n_resamples: int
    n_failed: int
    settings: dict[str, Any]
    seconds: float
    _jackknife: Callable[[], np.ndarray] = field(repr=False, default=None)
    _sampler: Any = field(repr=False, default=None)
    _cache: dict = field(repr=False, default_factory=dict)

    @property
    def estimate(self) -> dict[str, float]:
        return dict(self.point.params)

    def _scale(self, scale):
        if validate.choice(scale, "scale", ("natural", "fit")) == "natural":
            return self.draws.to_numpy(), np.array(list(self.point.params.values())), list(self.law.param_names)
        return self.theta_draws, np.asarray(self.point.theta), list(self.law.fit_names)

    def se(self, scale: str = "natural"):
        """Bootstrap standard errors (ddof = 1), a pandas Series."""
        import pandas as pd

        d, _, names = self._scale(scale)
        return pd.Series(d.std(0, ddof=1), index=names, name="se")

    def cov(self, scale: str = "natural"):
        """Bootstrap covariance (ddof = 1) on the natural or fitting scale, a DataFrame."""
        import pandas as pd

        d, _, names = self._scale(scale)
        return pd.DataFrame(np.cov(d.T, ddof=1), index=names, columns=names)

    def resample(self, replicate: int):
        """What replicate ``replicate`` fitted: ``(counts, logy)``.

        ``counts`` is how often each data point was drawn (pairs, cluster;
        None for residual), ``logy`` the log-loss targets (resampled for
        residual). Recomputed from the key, for auditing a replicate or
        refitting it elsewhere.
        """
        replicate = validate.integer(replicate, "replicate", minimum=0, maximum=self.n_resamples - 1)
        logy, counts = self._sampler.draws(int(replicate), int(replicate) + 1)
        return (None if counts is None else counts[0].astype(np.int64)), np.array(logy[0])

    def jackknife(self) -> np.ndarray:
        """Leave-one-out fits (one point, or one cluster for ``cluster``), natural scale ``(n, P)``.

        Computed on first use (BCa intervals need it), warm-started from the
        point fit, and cached.
        """
        if "jack" not in self._cache:
            self._cache["jack"] = self._jackknife()
        return self._cache["jack"]

    def ci(self, level: float = 0.95, method: str = "percentile", scale: str = "natural"):
        """Intervals (DataFrame with ``lo``, ``hi``): ``percentile`` or ``bca``."""
        import pandas as pd

        level, method = _interval_args(level, method)
        d, est, names = self._scale(scale)

        def jack():
            j = self.jackknife()
            return j if scale == "natural" else np.asarray(self.law.from_natural(dict(zip(self.law.param_names, j.T))))

        lo, hi = _interval(d, est, level, method, jack)
        return pd.DataFrame({"lo": lo, "hi": hi}, index=names)

    def summary(self, level: float = 0.95, method: str = "percentile"):
        """Estimate, bootstrap mean, SE and interval for every parameter (DataFrame)."""
        import pandas as pd

        level, method = _interval_args(level, method)
        ci = self.ci(level, method)
        return pd.DataFrame({
            "estimate": pd.Series(self.point.params),
            "boot_mean": self.draws.mean(axis=0),
            "se": self.se(),
            f"{method}_{100 * (1 - level) / 2:g}%": ci["lo"],
            f"{method}_{100 * (1 + level) / 2:g}%": ci["hi"],
        })

    def derive(self, fn: Callable[[Mapping[str, jax.Array]], jax.Array], name: str | None = None) -> Derived:
        """A derived quantity over the draws: ``fn(params) -> array``, vmapped.

        ``fn`` is a pure JAX function of a dict of natural parameters (see
        :mod:`jaxscale.derived`) returning a scalar or a 1-D array.

        >>> import jaxscale, jaxscale.derived as dv
        >>> b = jaxscale.bootstrap("chinchilla", jaxscale.demo_data(), 50, key=0, starts="warm")
        >>> a = b.derive(dv.exponent_a)
        >>> a.draws.shape, bool(0.3 < float(a.estimate) < 0.7)
        ((50,), True)
        """
        name = name or getattr(fn, "__name__", "derived")
        return derive_draws(fn, name, self.point.params, self.draws, self.jackknife)

    def to_dict(self, level: float = 0.95, method: str = "percentile", derived: Mapping[str, Callable] | None = None,
                draws: bool = True):
        """JSON-ready: ``{"params": {name: {"estimate", "se", "ci"}}, "derived", "n_resamples", "n_failed", "settings"}``.

        With ``draws`` (default), also ``"draws": {name: [...]}``, the natural-scale parameters of the kept
        replicates, so that ``jaxscale allocate`` can turn the file into intervals. Values that are not finite are
        ``None``; ``status_counts`` says how many replicates failed and why.
        """
        level, method = _interval_args(level, method)
        if derived is not None and not isinstance(derived, Mapping):
            raise ArgumentError(f"derived must map names to functions of the parameters; got {derived!r}.")
        ci = self.ci(level, method)
        se = self.se()
        params = {k: {"estimate": float(v), "se": float(se[k]), "ci": [float(ci.loc[k, "lo"]), float(ci.loc[k, "hi"])]}
                  for k, v in self.point.params.items()}
        out_derived = {}
        for k, fn in (derived or {}).items():
            out_derived[k] = self.derive(fn, k).to_dict(level, method)
        counts = self.replicates["status"].value_counts().to_dict()
        return json_safe({
            "law": self.law.name,
            "method": self.method,
            "params": params,
            "derived": out_derived,
            "n_resamples": self.n_resamples,
            "n_failed": self.n_failed,
            "status_counts": {k: int(v) for k, v in counts.items()},
            "interval": {"level": level, "method": method},
            "settings": self.settings,
            "data_fingerprint": self.point.fingerprint,
            "seconds": self.seconds,
            **({"draws": {k: self.draws[k].astype(float).tolist() for k in self.law.param_names}} if draws else {}),
        })

    def to_json(self, path: str | None = None, **kwargs) -> str:
        """Serialise ``to_dict(**kwargs)`` (strict JSON: no NaN or Infinity); write it atomically to ``path``."""
        if path is not None:
            path = validate.output_path(path, "path")
        text = json.dumps(self.to_dict(**kwargs), indent=2, allow_nan=False)
        return text_or_write(text, path)

    def chi2_test(self, reference: Mapping[str, float], **kwargs):
        """See :func:`jaxscale.hypothesis.chi2_test`."""
        from jaxscale.hypothesis import chi2_test

        return chi2_test(self, reference, **kwargs)

    def __repr__(self) -> str:
        return (f"BootstrapResult({self.law.name}, {self.method}: {self.n_resamples} resamples x "
                f"{self.settings['n_starts']} starts, {self.n_failed} failed)")


def derive_draws(fn, name, point_params, draws_df, jack_fn) -> Derived:
    """A derived quantity ``fn(params)`` at the point estimate and over every draw (vmapped), as a :class:`Derived`.

    ``point_params``: natural parameters of the estimate; ``draws_df``: a DataFrame of natural-parameter draws;
    ``jack_fn()``: the jackknife parameters ``(n, P)`` for BCa intervals (called only for those). Shared by
    :meth:`BootstrapResult.derive` and :func:`jaxscale.bayes.derive`.
    """
    if not callable(fn):
        raise DerivedError(f"derive needs a function of the parameters dict; got {fn!r}.")

    def call(p):
        out = fn(p)
        try:
            return jnp.asarray(out, dtype=float)
        except (TypeError, ValueError) as e:
            raise DerivedError(
                f"derived function {name!r} must return a number or an array of numbers; got {type(out).__name__}: {e}"
            ) from None

    point = {k: jnp.asarray(v) for k, v in point_params.items()}
    try:
        est = np.asarray(call(point))
        draws = {k: jnp.asarray(draws_df[k].to_numpy()) for k in draws_df.columns}
        vals = np.asarray(jax.vmap(call)(draws))
    except DerivedError:
        raise
    except _TRACER_ERRORS as e:
        raise DerivedError(
            f"derived function {name!r} is not a pure JAX function of the parameters (it is vmapped over draws): {e}"
        ) from None
    if est.ndim > 1:
        raise DerivedError(
            f"derived function {name!r} must return a scalar or a 1-D array; got shape {est.shape}."
        )
    if vals.shape[1:] != est.shape:
        raise DerivedError(f"derived function {name!r} returned shape {vals.shape[1:]} on draws but {est.shape} "
                           f"at the estimate; it must return the same shape for every parameter set.")
    bad = ~np.all(np.isfinite(vals.reshape(vals.shape[0], -1)), 1)
    if bad.any():
        warnings.warn(f"derived {name!r}: {int(bad.sum())} of {len(bad)} draws are not finite and are excluded "
                      f"from its SE and intervals.", RuntimeWarning, stacklevel=3)

    def jack():
        j = jack_fn()
        cols = {k: jnp.asarray(j[:, i]) for i, k in enumerate(draws_df.columns)}
        return np.asarray(jax.vmap(call)(cols))

    index = getattr(fn, "index", None)
    if index is not None and len(index[1]) != est.size:
        index = None
    return Derived(name, est, vals, int(bad.sum()), jack, index)


# --------------------------------------------------------------------------- driver


_OPTIMA_BLOCK = 1024  # candidates whose predictions are evaluated per compiled call (one shape per data size)


@functools.lru_cache(maxsize=32)
def _predictions(law: Law):
    """Jitted ``(theta (S, P), logx (n, K)) -> log-predictions (S, n)``."""
    return jax.jit(jax.vmap(jax.vmap(law.log_predict, in_axes=(None, 0)), in_axes=(0, None)))


def _distinct_optima(point: FitResult, logx, max_starts: int, atol: float) -> tuple[np.ndarray, int, bool]:
    """``(optima (k, P) best first, number of candidates, whether the cap stopped the search)``; see
    :func:`distinct_optima`."""
    law = point.law
    table = point.starts
    theta = table[list(law.fit_names)].to_numpy(np.float64)
    f = table["objective"].to_numpy(np.float64)
    ok = (table["status"].isin([Status(s).label for s in OK_STATUSES]).to_numpy() & np.isfinite(f)
          & np.all(np.isfinite(theta), 1))
    order = np.flatnonzero(ok)[np.argsort(f[ok], kind="stable")]
    fn, lx = _predictions(law), jnp.asarray(logx)
    best = np.asarray(point.theta, np.float64)
    kept_theta = [best]
    kept_pred = np.asarray(fn(jnp.asarray(best[None, :]), lx), np.float64)
    for lo in range(0, order.size, _OPTIMA_BLOCK):
        rows = order[lo:lo + _OPTIMA_BLOCK]
        block = np.repeat(best[None, :], _OPTIMA_BLOCK, 0)  # padded: one compiled shape for every block
        block[: rows.size] = theta[rows]
        with np.errstate(invalid="ignore", over="ignore"):
            pred = np.asarray(fn(jnp.asarray(block), lx), np.float64)[: rows.size]
        alive = np.all(np.isfinite(pred), 1)
        while True:
            d = np.abs(pred[:, None, :] - kept_pred[None, :, :]).max(-1)  # (block, kept)
            new = np.flatnonzero(alive & np.all(d > atol, 1))
            if new.size == 0:
                break
            if len(kept_theta) == max_starts:
                return np.stack(kept_theta), int(ok.sum()), True
            i = new[0]  # the best new optimum; the candidates after it are compared with it too
            kept_theta.append(theta[rows[i]])
            kept_pred = np.concatenate([kept_pred, pred[i:i + 1]])
            alive[: i + 1] = False
    return np.stack(kept_theta), int(ok.sum()), False


def distinct_optima(point: FitResult, data, *, max_starts: int = AUTO_MAX_STARTS,
                    atol: float = AUTO_PREDICTION_ATOL, **columns) -> np.ndarray:
    """The distinct local optima a fit's multi-start found, best first: the starts of ``bootstrap(starts="auto")``.

    From the fit's per-start table (``point.starts``), the starts that converged or ran out of iterations with a
    finite objective and finite parameters are taken in order of objective, best first; the fit's optimum is
    kept, and each next one is kept when its log-predictions at the data's points differ from those of every
    optimum kept so far by more than ``atol`` at some point. Predictions, not coordinates: the fitting
    coordinates of one optimum can differ a lot along a flat direction (on Epoch's data the 199 starts that
    send ``E`` to 0 end anywhere from ``log E = -33`` to ``-99``, the same fit), while a real second basin
    predicts differently. At most ``max_starts`` are returned (the best ones).

    Parameters
    ----------
    point
        A :func:`jaxscale.fit` result (its multi-start: with one start there is one optimum).
    data, **columns
        The data it was fitted on (as for :func:`jaxscale.fit`): the points the predictions are compared at.
    max_starts, atol
        The cap (:data:`AUTO_MAX_STARTS`, 16) and the tolerance on log-predictions
        (:data:`AUTO_PREDICTION_ATOL`, 1e-4).

    Returns
    -------
    numpy.ndarray
        ``(k, n_params)`` in fitting coordinates (``law.fit_names``), row 0 the fit's optimum.

    Examples
    --------
    >>> import numpy as np, jaxscale
    >>> from jaxscale.uncertainty import distinct_optima
    >>> data = jaxscale.demo_data()
    >>> res = jaxscale.fit("chinchilla", data, starts=64, key=0)
    >>> optima = distinct_optima(res, data)
    >>> bool(np.array_equal(optima[0], res.theta)), optima.shape[1], 1 <= len(optima) <= 16
    (True, 5, True)
    """
    if not isinstance(point, FitResult):
        raise ArgumentError(f"point must be a FitResult from jaxscale.fit; got {type(point).__name__}.")
    max_starts = validate.integer(max_starts, "max_starts")
    atol = validate.number(atol, "atol", minimum=0)
    data = ScalingData.coerce(data, **columns)
    logx, _ = data.design(point.law.covariates, point.law.name)
    return _distinct_optima(point, logx, max_starts, atol)[0]


def _starts_kind(starts) -> str | None:
    """``"auto"``, ``"warm"`` or ``"grid"`` for a named ``starts``; None for a count or an array (checked later)."""
    if isinstance(starts, str):
        if starts not in START_KINDS:
            raise ArgumentError(f"starts must be one of {list(START_KINDS)}, a number of random starts or an array "
                                f"(n_starts, n_params); got {starts!r}.")
        return starts
    return None


def bootstrap(
    law: str | Law,
    data,
    n_resamples: int,
    key=validate.DEFAULT_KEY,
    *,
    method: str | None = None,
    starts=BOOTSTRAP_STARTS,
    cluster: str | None = None,
    objective: str = "huber",
    delta: float = 1e-3,
    fixed: Mapping[str, float] | None = None,
    max_iter: int = 400,
    ftol: float = 1e-10,
    xtol: float = 1e-7,
    chunk_size: int = 65536,
    memory_limit: int | None = None,
    dtype=None,
    devices=None,
    progress: bool | Callable[[int, int], None] | None = None,
    point: FitResult | None = None,
    mixed_precision: bool | None = None,
    overestimate_penalty: float = 1.0,
    **columns,
) -> BootstrapResult:
    """Bootstrap a scaling-law fit: every resample solved from every start (by default, from every distinct
    optimum of the point fit's multi-start).

    Parameters
    ----------
    law, data, objective, delta, overestimate_penalty, fixed, max_iter, ftol, xtol, dtype, mixed_precision, **columns
        As for :func:`jaxscale.fit` (the data's per-point weights multiply
        the resample counts of ``pairs`` and ``cluster`` resamples and the
        jackknife's; ``residual`` refuses weighted data; ``mixed_precision=None`` counts the
        starts of every resample, and is off for ``starts="auto"`` and
        ``"warm"``: from the point fit's optima a float32 phase only adds
        iterations, 29 instead of 15.5 per fit on Epoch's data).
    n_resamples
        Number of bootstrap resamples (an integer >= 1).
    key
        Int seed or ``jax.random.key``; default 0; same key, same result.
        Replicate ``r`` uses ``fold_in(key, r)``, so the draws are the same for
        any chunking or device count.
    method
        ``"pairs"`` (resample points), ``"residual"`` (resample the point
        fit's log-residuals onto its fitted values) or ``"cluster"`` (resample
        whole runs or groups: for checkpoints of one run, which are not
        independent). ``None`` (default): ``"cluster"`` by run when the rows
        are checkpoints of runs (the data has ``step`` and ``run``: loss
        curves), else ``"pairs"``.
    starts
        Where each resample's fit starts:

        * ``"auto"`` (default, :data:`BOOTSTRAP_STARTS`): the point fit's
          optimum plus every other distinct local optimum its multi-start
          found (:func:`distinct_optima`: optima whose log-predictions differ
          by more than 1e-4 somewhere, at most 16, the best ones), so that a
          resample whose best fit lies in another basin finds it. The point
          fit (or ``point=``) keeps its full multi-start; ``settings``
          record how many starts this chose and from what
          (``settings["auto_starts"]``). On Epoch's data: 9 optima of
          4,500 grid starts, the same optimum as the full grid on every
          resample compared (benchmarks/bench_bootstrap.py --compare 300:
          benchmarks/results/bench_bootstrap-cpu-compare-auto.json), at
          1/500 of the fits.
        * ``"warm"``: the point fit's optimum only (Epoch AI's protocol).
        * ``"grid"``: the law's full start grid for every resample (4,500
          for ``chinchilla``: 18 million fits for 4,000 resamples).
        * an int (random starts, as in :func:`fit`) or an array
          ``(n_starts, n_params)`` in fitting coordinates (e.g. one row,
          Hoffmann's values), for the point fit and every resample.

        The point fit uses the grid for ``"auto"`` and ``"warm"``.
    cluster
        For ``method="cluster"``: ``"run"`` or ``"group"``; by default the
        data's ``run`` column if it has one, else ``group``.
    chunk_size, memory_limit
        Fits per compiled call, or a bound in bytes on the working set.
    devices
        Devices to shard over (all local devices by default).
    progress
        ``None`` (default): a progress bar (tqdm: a widget in a notebook with
        ipywidgets, else text on stderr) when the run takes more than one
        compiled call (``chunk_size`` fits) and is estimated to take more
        than :data:`jaxscale.progress.BAR_SECONDS` (5 s; with ``point=``,
        once it has run that long); ``True`` always; ``False`` never; or a callable ``(done, total)`` called after
        each chunk of fits. Whatever ``progress``, a run estimated at more
        than :data:`jaxscale.progress.ANNOUNCE_SECONDS` (60 s) first logs one
        line (logger ``jaxscale``, level WARNING: on stderr by default) with
        the number of fits, the estimated time and how to make it cheaper.
        The estimate is the fits to come over the point fit's own solve rate
        (fits/s, JAX's tracing and compilation excluded); with ``point=``,
        the rate of the run's first chunk of fits (the line then comes after
        that chunk). It is rough: on Epoch's data grid resamples ran ~2x
        faster than the point fit (larger batches), ``"auto"`` 2-3x slower
        (its starts in other basins take 100-230 iterations). Recorded in
        ``settings["estimated_seconds"]``.
    point
        An existing :func:`fit` of the same law, data, objective and fixed
        parameters to use as the point estimate (otherwise it is fitted
        here); ``starts="auto"`` takes the optima from its per-start table,
        so a cheaper point fit (``starts=64``) gives a cheaper ``auto``.

    Returns
    -------
    BootstrapResult

    Examples
    --------
    >>> import jaxscale
    >>> b = jaxscale.bootstrap("chinchilla", jaxscale.demo_data(), 100, key=0)  # starts="auto"
    >>> b.n_resamples, b.n_failed, b.settings["starts"], b.settings["n_starts"] == b.settings["auto_starts"]["n_optima"]
    (100, 0, 'auto', True)
    >>> list(b.summary().columns)
    ['estimate', 'boot_mean', 'se', 'percentile_2.5%', 'percentile_97.5%']
    """
    t0 = time.perf_counter()
    law = get(law)
    n_resamples = validate.n_starts(n_resamples, law.n_params, "n_resamples")
    if method is not None:
        method = validate.choice(method, "method", METHODS)
    rkey = validate.key(key)
    if cluster is not None:
        if method != "cluster":
            raise ArgumentError(f"cluster={cluster!r} only applies to method='cluster' (got method={method!r}).")
        validate.choice(cluster, "cluster", ("run", "group"))
    if cluster is not None and method is None:
        method = "cluster"
    progress = _progress.check(progress)
    if point is not None and not isinstance(point, FitResult):
        raise ArgumentError(f"point must be a FitResult from jaxscale.fit; got {type(point).__name__}.")
    kind = _starts_kind(starts)
    at_optima = kind in ("auto", "warm")
    k_resample, k_starts = jax.random.split(rkey)
    # The point fit and the replicates share one set-up; "auto" and "warm" replicates start from its optima.
    problem = make_problem(law, data, starts="grid" if at_optima else starts, key=k_starts, objective=objective,
                           delta=delta, fixed=fixed, max_iter=max_iter, ftol=ftol, xtol=xtol, chunk_size=chunk_size,
                           memory_limit=memory_limit, dtype=dtype, mixed_precision=mixed_precision,
                           overestimate_penalty=overestimate_penalty, **columns)
    data, obj, dtype, logx, logy = problem.data, problem.objective, problem.dtype, problem.logx, problem.logy
    free, fixed_values, n_free = problem.free, problem.fixed, problem.n_free
    if method is None:
        method = default_method(data)
    if method == "residual" and problem.weight is not None:
        raise ArgumentError("method='residual' does not take per-point weights (it would move residuals between "
                            "points of different weight); use method='pairs' or 'cluster', or drop the weight "
                            "column.")
    codes, n_clusters, cluster_col = None, 0, None
    if method == "cluster":
        codes, n_clusters, cluster_col = _clusters(data, cluster)
    if point is None:
        check_identified(problem, stacklevel=2)
        with _progress.CompileTimer() as compiling:
            point = fit_problem(problem)
        solve_s = point.seconds - compiling.seconds
    elif (point.law.name, point.law.options, point.fingerprint, point.settings["objective"], point.settings["delta"],
          point.settings.get("overestimate_penalty", 1.0), point.settings.get("fixed", {})) != (
            law.name, law.options, data.fingerprint(), obj.name, obj.delta, obj.overestimate, fixed_values):
        raise FitError("point was fitted with a different law, data (fingerprint, weights included), objective, "
                       "delta, overestimate_penalty or fixed parameters than this bootstrap; refit it or drop "
                       "point=.")
    else:
        solve_s = None  # its time includes compiling, perhaps in another shape: the first chunk is timed instead
    auto = None
    if kind == "auto":
        theta0, n_candidates, capped = _distinct_optima(point, logx, AUTO_MAX_STARTS, AUTO_PREDICTION_ATOL)
        theta0 = np.where(free > 0, theta0, problem.fixed_theta)
        auto = {"n_optima": int(len(theta0)), "from": f"the point fit's {point.n_starts} starts "
                f"({point.settings.get('starts', 'given')})", "n_candidates": n_candidates, "cap_reached": capped,
                "max_starts": AUTO_MAX_STARTS, "prediction_atol": AUTO_PREDICTION_ATOL}
    elif kind == "warm":
        theta0 = point.theta[None, :].copy()
    else:
        theta0 = problem.theta0
    start_kind = kind if at_optima else problem.starts
    # starts at optima sit next to each replicate's optimum: a float32 phase only adds the polish's iterations
    cfg = problem.config(0 if at_optima else n_resamples * len(theta0))
    chunk_size = problem.chunk(cfg, len(theta0))
    n_fits = n_resamples * len(theta0)
    # The run's cost (see jaxscale.progress): from the point fit's solve rate when it ran here, else from the
    # first chunk of the run itself.
    rate = point.n_starts / solve_s if solve_s is not None and solve_s > 0 else None
    estimate = n_fits / rate if rate else None
    what = f"bootstrap of {n_resamples:,} resamples x {len(theta0):,} starts ({start_kind})"
    cheaper = ("fewer resamples, or a GPU" if at_optima else
               f"starts='{BOOTSTRAP_STARTS}' (the default: the point fit's distinct optima) or 'warm', fewer "
               "resamples, or a GPU")
    if rate:
        _progress.announce(what, n_fits, estimate, f"the point fit's {rate:,.0f} fits/s (compilation excluded)",
                           cheaper)

    # from the fitting coordinates: a parameter that ran off to exp(-inf) = 0 (E of a law that needs no floor) has
    # finite predictions, but law.predict would reject its natural value
    fitted = np.asarray(jax.vmap(law.log_predict, in_axes=(None, 0))(jnp.asarray(point.theta), jnp.asarray(logx)),
                        np.float64)
    sampler = _Resampler(method, k_resample, logy, fitted, codes, n_clusters, problem.weight)

    def unidentified(lo, hi):
        return _unidentified(sampler.rows(lo, hi)[1], logx, n_free)

    skip = None if method == "residual" else unidentified
    if progress is None and n_fits <= chunk_size:
        progress = False  # one compiled call: a bar would only jump from 0 to 100%
    with contextlib.ExitStack() as stack:
        show = stack.enter_context(_progress.reporting(progress, f"bootstrap ({method}, {len(theta0):,} starts)",
                                                       n_fits, estimate=estimate))
        if not rate:
            show = stack.enter_context(_progress.FirstChunkEstimate(show, what, cheaper))
        best = _solve_replicates(law, theta0, logx, free, cfg, n_resamples, sampler.rows, method != "residual",
                                 skip, chunk_size=int(chunk_size), dtype=dtype, devices=devices, progress=show)
        if estimate is None and show is not None and getattr(show, "seconds", None) is not None:
            estimate = show.seconds

    with np.errstate(over="ignore"):  # a failed replicate's parameters may overflow; it is flagged below
        natural = law.to_natural(best.theta)
    natural.update({k: np.full(n_resamples, v) for k, v in fixed_values.items()})  # exact, not exp(log(v))
    nat = np.stack([natural[n] for n in law.param_names], -1)
    status = np.array([_replicate_label(s) for s in best.status], dtype=object)
    status[(status != "diverged") & (status != "unidentified") & ~np.all(np.isfinite(nat), 1)] = "nonfinite"
    ok = (status == "converged") | (status == "max_iter")
    n_failed = int((~ok).sum())
    if n_failed:
        kinds = ", ".join(f"{int((status == s).sum())} {s}" for s in ("diverged", "unidentified", "nonfinite")
                          if (status == s).any())
        warnings.warn(f"{n_failed} of {n_resamples} bootstrap replicates failed ({kinds}) and are excluded.",
                      RuntimeWarning, stacklevel=2)
    n_unidentified = int((status == "unidentified").sum())
    if n_unidentified > UNIDENTIFIED_WARN * n_resamples:
        unit = f"{n_clusters} {cluster_col}s" if method == "cluster" else f"{len(data)} points"
        warnings.warn(f"{n_unidentified} of {n_resamples} bootstrap replicates ({n_unidentified / n_resamples:.0%}) "
                      f"drew too few distinct points to identify law {law.name!r} from {unit}: the interval rests "
                      f"on the resamples that happened to be identifiable and is too narrow. Give more "
                      f"{'runs (clusters)' if method == 'cluster' else 'points'}, or fix a parameter.",
                      RuntimeWarning, stacklevel=2)
    if ok.sum() < 2:
        raise FitError(f"Only {int(ok.sum())} of {n_resamples} bootstrap replicates succeeded; need at least 2.")
    import pandas as pd

    table = pd.DataFrame({"status": status, "objective": best.f, "n_at_best": best.n_at_best, "n_iter": best.n_iter})
    for i, n in enumerate(law.fit_names):
        table[n] = best.theta[:, i]
    for i, n in enumerate(law.param_names):
        table[n] = nat[:, i]
    if obj.name == "likelihood":
        table["sigma"] = np.exp(best.log_sigma)
    table.index.name = "replicate"
    draws = pd.DataFrame(nat[ok], columns=list(law.param_names))

    def jackknife():
        return _jackknife(law, logx, logy, point, free, cfg, dtype, devices, codes if method == "cluster" else None,
                          problem.weight)

    settings = dict(point.settings)
    settings.update({
        "method": method,
        "n_resamples": n_resamples,
        "starts": start_kind,
        "n_starts": int(len(theta0)),
        **({"auto_starts": auto} if auto is not None else {}),
        "estimated_seconds": None if estimate is None else round(float(estimate), 3),
        "cluster": cluster_col,
        "key": validate.key_repr(key),
        "chunk_size": int(chunk_size),
        "fixed": dict(fixed_values),
        "mixed_precision": cfg.approach_dtype is not None,
        "jaxscale_version": __version__,
        "timestamp": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    })
    return BootstrapResult(law, method, point, table, draws, best.theta[ok], n_resamples, n_failed, settings,
                           time.perf_counter() - t0, jackknife, sampler)


def _replicate_label(code) -> str:
    """A replicate's status as its tables write it: the solver's label, ``"unidentified"`` for a skipped resample."""
    code = Status(int(code))
    return "unidentified" if code == Status.SKIPPED else code.label


class Refits(NamedTuple):
    """Best optimum of each weighted refit (see :func:`refit`): ``theta`` ``(R, P)`` in fitting coordinates,
    ``objective`` and ``status`` (``"converged"``, ``"max_iter"``; failed: ``"diverged"``, ``"nonfinite"``,
    ``"unidentified"``) per row."""

    theta: np.ndarray
    objective: np.ndarray
    status: np.ndarray

    @property
    def ok(self) -> np.ndarray:
        return (self.status == "converged") | (self.status == "max_iter")


def refit(
    law: str | Law,
    data,
    weights: np.ndarray,
    starts: np.ndarray,
    *,
    objective: str = "huber",
    delta: float = 1e-3,
    fixed: Mapping[str, float] | None = None,
    max_iter: int = 400,
    ftol: float = 1e-10,
    xtol: float = 1e-7,
    dtype=None,
    devices=None,
    overestimate_penalty: float = 1.0,
) -> Refits:
    """Refit one design under many per-point weightings at once: row ``r`` of ``weights`` is one problem.

    Every problem is solved from every row of ``starts`` (fitting coordinates) in one batched, compiled
    computation (the solver's replicates, as the bootstrap's), so leave-out, leave-future-out or reweighted
    fits cost one compiled program however many there are. A problem whose points (weight > 0) cannot
    identify the law (a covariate with fewer than 2 distinct values, or fewer distinct points than free
    parameters) is not solved and is reported ``"unidentified"``. The data's own per-point weights
    (``ScalingData.weight``) multiply every row of ``weights``.

    >>> import numpy as np, jaxscale
    >>> from jaxscale.uncertainty import refit
    >>> data = jaxscale.demo_data()
    >>> point = jaxscale.fit("chinchilla", data, starts=64, key=0)
    >>> w = np.ones((2, len(data)))
    >>> w[1, data.covariates["C"] > 1e21] = 0.0  # the second problem: the smaller budgets only
    >>> r = refit("chinchilla", data, w, point.theta[None, :])
    >>> r.status.tolist(), bool(np.allclose(r.theta[0], point.theta, atol=1e-5))
    (['converged', 'converged'], True)
    """
    problem = make_problem(law, data, starts=starts, objective=objective, delta=delta, fixed=fixed,
                           max_iter=max_iter, ftol=ftol, xtol=xtol, dtype=dtype,
                           overestimate_penalty=overestimate_penalty)
    law, data, logx, logy = problem.law, problem.data, problem.logx, problem.logy
    try:
        weights = np.asarray(weights, np.float64)
    except (TypeError, ValueError):
        raise ArgumentError(f"weights must be an array of numbers, shape (n_problems, {len(data)}); got "
                            f"{type(weights).__name__}.") from None
    if weights.ndim != 2 or weights.shape[1] != len(data):
        raise ArgumentError(f"weights must have shape (n_problems, {len(data)}), one row per problem; got "
                            f"{weights.shape}.")
    if not np.all(np.isfinite(weights) & (weights >= 0)):
        raise ArgumentError("weights must be finite and >= 0.")
    if problem.weight is not None:
        weights = weights * problem.weight
    cfg = SolverConfig(objective=problem.objective, max_iter=problem.max_iter, ftol=problem.ftol, xtol=problem.xtol)
    bad = _unidentified(weights, logx, problem.n_free)
    best = _solve_replicates(law, problem.theta0, logx, problem.free, cfg, len(weights),
                             lambda lo, hi: (np.broadcast_to(logy, (hi - lo, len(logy))), weights[lo:hi]), True,
                             lambda lo, hi: bad[lo:hi], dtype=problem.dtype, devices=devices)
    status = np.array([_replicate_label(s) for s in best.status], dtype=object)
    return Refits(best.theta, best.f, status)


def default_method(data: ScalingData) -> str:
    """The bootstrap a data set gets by default: ``"cluster"`` (by run) for checkpoints of runs, else ``"pairs"``.

    >>> import jaxscale
    >>> jaxscale.uncertainty.default_method(jaxscale.demo_data())
    'pairs'
    """
    return "cluster" if data.step is not None and data.run is not None else "pairs"


def _clusters(data: ScalingData, cluster):
    if cluster is None:
        cluster = "run" if data.run is not None else ("group" if data.group is not None else None)
    if cluster not in ("run", "group"):
        raise FitError(
            "method='cluster' resamples whole runs or groups and needs a 'run' or 'group' column "
            "(e.g. ScalingData.from_frame(df, ..., run='run_id') or --col run=run_id)"
            + (f"; got cluster={cluster!r}." if cluster is not None else "; the data has neither.")
        )
    labels = data.run if cluster == "run" else data.group
    if labels is None:
        raise FitError(f"method='cluster' with cluster={cluster!r} needs a {cluster!r} column; the data has none.")
    _, codes = np.unique(np.asarray(labels).astype(str), return_inverse=True)
    n_clusters = int(codes.max()) + 1
    if n_clusters < 2:
        raise FitError(f"method='cluster' needs at least 2 distinct {cluster!r} values; the data has {n_clusters}.")
    return codes.ravel(), n_clusters, cluster


def _jackknife(law, logx, logy, point, free, cfg, dtype, devices, codes, weight=None):
    """Leave-one-out refits from the point estimate (one per point, or per cluster), under the data's weights."""
    n = logy.shape[0]
    labels = np.arange(n) if codes is None else codes
    m = int(labels.max()) + 1
    weight = np.ones(n) if weight is None else weight

    def rows(lo, hi):  # leave out point (or cluster) lo..hi-1, built per chunk: never an n x n matrix
        return np.broadcast_to(logy, (hi - lo, n)), (labels[None, :] != np.arange(lo, hi)[:, None]) * weight

    best = _solve_replicates(law, point.theta[None, :], logx, free, cfg, m, rows, True, None, dtype=dtype,
                             devices=devices)
    with np.errstate(over="ignore"):  # a failed refit's parameters may overflow; it is excluded below
        nat = law.to_natural(best.theta)
    out = np.stack([nat[k] for k in law.param_names], -1)
    good = np.all(np.isfinite(out), 1)
    if not good.all():
        warnings.warn(f"{int((~good).sum())} of {m} jackknife refits failed and are excluded from the BCa "
                      "acceleration.", RuntimeWarning, stacklevel=3)
    return out[good]


__all__ = ["AUTO_MAX_STARTS", "AUTO_PREDICTION_ATOL", "BOOTSTRAP_STARTS", "BootstrapResult", "Derived", "DerivedError",
           "METHODS", "Refits", "START_KINDS", "bootstrap", "distinct_optima", "refit"]
