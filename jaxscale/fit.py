"""Multi-start robust fitting: :func:`fit` and :class:`FitResult`."""

from __future__ import annotations

import datetime as _dt
import json
import math
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxscale import __version__
from jaxscale.data import ScalingData
from jaxscale.errors import FitError, LawError
from jaxscale.laws import Law, check_theta, get
from jaxscale.objectives import huber_log_normalizer, make_objective, value_and_weights
from jaxscale.solver import STATUS_NAMES, SolverConfig, chunk_for_memory, solve

#: Relative tolerance for counting a start as having reached the best objective.
AT_BEST_RTOL = 1e-6


@dataclass(frozen=True, eq=False)
class FitResult:
    """The outcome of :func:`fit`.

    Attributes
    ----------
    law
        The fitted :class:`~jaxscale.laws.Law`.
    params
        Best parameters on the natural scale, under the law's names.
    theta
        The same in fitting coordinates (``log_A``, ...).
    objective
        Best objective value (for ``likelihood``: the negative log-likelihood).
    n_points, n_starts
        Points fitted and starts tried.
    n_at_best
        Starts whose objective is within a relative ``1e-6`` of the best.
    starts
        Per-start table (pandas DataFrame): initial and final fitting
        coordinates, objective, status (``converged``/``max_iter``/``diverged``)
        and iterations.
    settings
        Everything needed to rerun the fit.
    fingerprint
        SHA-256 of the data (see :meth:`ScalingData.fingerprint`).
    nuisance
        Extra fitted quantities: ``sigma`` (the Huber scale) for the likelihood
        objective.
    """

    law: Law
    params: dict[str, float]
    theta: np.ndarray
    objective: float
    n_points: int
    n_starts: int
    n_at_best: int
    starts: Any
    settings: dict[str, Any]
    fingerprint: str
    nuisance: dict[str, float] = field(default_factory=dict)
    seconds: float = float("nan")

    @property
    def n_converged(self) -> int:
        return int((self.starts["status"] == "converged").sum())

    @property
    def n_diverged(self) -> int:
        return int((self.starts["status"] == "diverged").sum())

    @property
    def log_likelihood(self) -> float | None:
        """Huber log-likelihood at the optimum (``likelihood`` objective only)."""
        return -self.objective if self.settings["objective"] == "likelihood" else None

    def predict(self, data: ScalingData | None = None, **covariates) -> np.ndarray:
        """Predicted loss at the given covariates, or at the points of ``data``.

        >>> import jaxscale
        >>> res = jaxscale.fit("chinchilla", jaxscale.demo_data(), starts=64, key=0)
        >>> bool(abs(res.predict(N=1e9, D=2e10) - 2.58) < 0.05)
        True
        """
        if data is not None:
            covariates = {c: data.covariates[c] for c in self.law.covariates if c in data.covariates}
        return self.law.predict(self.params, **covariates)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no per-start table)."""
        out = {
            "law": self.law.name,
            "params": {k: float(v) for k, v in self.params.items()},
            "objective": float(self.objective),
            "n_points": self.n_points,
            "n_starts": self.n_starts,
            "n_at_best": self.n_at_best,
            "n_converged": self.n_converged,
            "n_diverged": self.n_diverged,
            "settings": self.settings,
            "data_fingerprint": self.fingerprint,
            "seconds": self.seconds,
        }
        if self.nuisance:
            out["nuisance"] = {k: float(v) for k, v in self.nuisance.items()}
        return out

    def to_json(self, path: str | None = None, **kwargs) -> str:
        """Serialise :meth:`to_dict`; write it to ``path`` if given."""
        text = json.dumps(self.to_dict(), indent=2, **kwargs)
        if path is not None:
            with open(path, "w") as fh:
                fh.write(text + "\n")
        return text

    def table(self) -> str:
        """Readable parameter table."""
        width = max(len(n) for n in self.params)
        lines = [f"law: {self.law.name}    {self.law.formula}"]
        for name, value in self.params.items():
            lines.append(f"  {name:<{width}}  {value:.6g}")
        for name, value in self.nuisance.items():
            lines.append(f"  {name:<{width}}  {value:.6g}  (nuisance)")
        lines.append(
            f"objective {self.objective:.10g} ({self.settings['objective']}) on {self.n_points} points; "
            f"{self.n_at_best}/{self.n_starts} starts at best, {self.n_diverged} diverged; {self.seconds:.2f} s"
        )
        return "\n".join(lines)

    def __repr__(self) -> str:
        p = ", ".join(f"{k}={v:.6g}" for k, v in self.params.items())
        return f"FitResult({self.law.name}: {p}; objective={self.objective:.6g}, {self.n_at_best}/{self.n_starts} at best)"


def key_data(key) -> np.ndarray:
    """The ``uint32`` words of a JAX key (or int seed), on the host.

    An int seed gives ``key_data(jax.random.key(seed))`` without compiling
    JAX's seeding kernel.
    """
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool) and 0 <= int(key) < 2**64:
        return np.array([int(key) >> 32, int(key) & 0xFFFFFFFF], dtype=np.uint32)
    k = jax.random.key(int(key)) if isinstance(key, (int, np.integer)) else key
    if jax.dtypes.issubdtype(getattr(k, "dtype", None), jax.dtypes.prng_key):
        k = jax.random.key_data(k)
    return np.asarray(k, dtype=np.uint32).ravel()


def numpy_rng(key) -> np.random.Generator:
    """A NumPy generator seeded from a JAX key (or int seed): same key, same stream.

    Small host-side draws (start points, noise) this way skip compiling JAX's
    threefry kernels, ~0.4 s in a fresh process.
    """
    return np.random.default_rng(key_data(key).tolist())


def make_starts(law: Law, starts, key, logx, logy) -> tuple[np.ndarray, str]:
    if isinstance(starts, str):
        if starts != "grid":
            raise FitError(f"starts must be 'grid', a number of random starts or an array; got {starts!r}.")
        return law.default_starts(logx, logy), "grid"
    if isinstance(starts, (int, np.integer)) and not isinstance(starts, bool):
        if starts < 1:
            raise FitError(f"starts must be >= 1; got {starts}.")
        if key is None:
            raise FitError("Random starts need a PRNG key: pass key=jax.random.key(0) (or an int seed).")
        grid = law.default_starts(logx, logy)
        lo, hi = grid.min(0), grid.max(0)
        span = np.maximum(hi - lo, 1.0)
        u = numpy_rng(key).uniform(size=(int(starts), law.n_params))
        return lo - 0.25 * span + 1.5 * span * u, f"random({int(starts)})"
    return check_theta(law, starts, "starts"), "user"


def _free_mask(law: Law, fixed: Mapping[str, float] | None) -> tuple[np.ndarray, dict[str, float], np.ndarray]:
    fixed = dict(fixed or {})
    unknown = sorted(set(fixed) - set(law.param_names))
    if unknown:
        raise LawError(f"fixed names unknown parameter(s) {unknown}; law {law.name!r} has {list(law.param_names)}.")
    free = np.array([p.name not in fixed for p in law.params], dtype=np.float64)
    values = np.array([law.to_fit(p.name, fixed[p.name]) if p.name in fixed else np.nan for p in law.params])
    return free, {k: float(v) for k, v in fixed.items()}, values


def fit(
    law: str | Law,
    data,
    *,
    starts="grid",
    objective: str = "huber",
    delta: float = 1e-3,
    key=None,
    fixed: Mapping[str, float] | None = None,
    max_iter: int = 400,
    ftol: float = 1e-10,
    xtol: float = 1e-7,
    chunk_size: int = 65536,
    memory_limit: int | None = None,
    dtype=None,
    mixed_precision: bool | None = None,
    **columns,
) -> FitResult:
    """Fit a scaling law from many starts at once.

    Parameters
    ----------
    law
        A registered law name (see :func:`jaxscale.laws.available`) or a Law.
    data
        :class:`ScalingData`, a pandas DataFrame or a CSV path (then
        ``**columns`` maps roles to columns, e.g. ``N="Model Size"``).
    starts
        ``"grid"`` (the law's default grid; Hoffmann's 4,500 points for
        ``chinchilla``), an int (that many uniform random starts over the
        grid's box widened by 25% each side; needs ``key``), or an array of
        shape ``(n_starts, n_params)`` in fitting coordinates
        (``law.fit_names``).
    objective
        ``"huber"`` (summed Huber on log residuals), ``"squared"`` or
        ``"likelihood"`` (Epoch's Huber likelihood with a free scale).
    delta
        Huber delta (1e-3, as Hoffmann et al.).
    key
        PRNG key (or int seed) for random starts. Same key, same result.
    fixed
        Natural-scale values of parameters to hold fixed, e.g.
        ``{"E": 1.87}``.
    max_iter, ftol, xtol
        Solver limits (see :class:`jaxscale.solver.SolverConfig`).
    chunk_size
        Starts solved per compiled call; bounds memory for millions of starts.
    memory_limit
        Optional bound in bytes on the solver's working set: the chunk size is
        lowered to fit it (see :func:`jaxscale.solver.chunk_for_memory`).
    dtype
        ``"float64"`` (default) or ``"float32"``.
    mixed_precision
        Solve every start in float32 first, then polish it from there in
        float64 to the same ``ftol``/``xtol``: the result is a float64
        optimum (objective, parameters and status are float64 ones), found
        ~1.3x faster on Epoch's protocol (benchmarks/README.md). ``None``
        (default): on when ``dtype`` is float64, the law has a fused
        ``log_predict_jac`` (``chinchilla``, ``power``: where float32 pays) and there
        are at least ``MIXED_MIN_SOLVES`` (2,048) starts, enough to repay
        compiling the second phase. ``False``: pure float64 trajectories.

    Returns
    -------
    FitResult

    Examples
    --------
    >>> import jaxscale
    >>> data = jaxscale.demo_data()
    >>> res = jaxscale.fit("chinchilla", data, starts=256, key=0)
    >>> sorted(res.params)
    ['A', 'B', 'E', 'alpha', 'beta']
    >>> bool(abs(res.params["alpha"] - 0.34) < 0.05)
    True
    """
    t0 = time.perf_counter()
    law = get(law)
    data = ScalingData.coerce(data, **columns)
    obj = make_objective(objective, delta)
    _check_solver_args(max_iter, ftol, xtol, chunk_size, memory_limit)
    dtype = _dtype(dtype)
    logx, logy = data.design(law.covariates, law.name)
    free, fixed_values, fixed_theta = _free_mask(law, fixed)
    n_free = int(free.sum()) + (1 if obj.name == "likelihood" else 0)
    if len(data) < n_free:
        raise FitError(
            f"{len(data)} points cannot determine {n_free} free parameters of law {law.name!r}"
            f"{' (+ sigma)' if obj.name == 'likelihood' else ''}; need at least {n_free} points."
        )
    if len(data) == n_free:
        warnings.warn(f"{len(data)} points for {n_free} free parameters of law {law.name!r}: the fit interpolates "
                      f"(every residual ~0), so it says nothing about the noise or how well the law fits. Add points "
                      f"or fix a parameter.", RuntimeWarning, stacklevel=2)
    theta0, start_kind = make_starts(law, starts, key, logx, logy)
    theta0 = np.where(free > 0, theta0, fixed_theta)
    cfg = SolverConfig(objective=obj, max_iter=int(max_iter), ftol=float(ftol), xtol=float(xtol),
                       approach_dtype=approach_dtype(law, dtype, mixed_precision, len(theta0)))
    if memory_limit is not None:
        chunk_size = min(chunk_size, chunk_for_memory(law.n_params, len(data), int(memory_limit), cfg.block,
                                                      jnp.dtype(dtype).itemsize))
    out = solve(law, theta0, logx, logy, free, cfg, chunk_size=int(chunk_size), dtype=dtype)
    ok = np.isfinite(out.objective) & (out.status != 2)
    if not ok.any():
        raise FitError(f"All {len(theta0)} starts diverged (non-finite objective); check the data and the starts.")
    f_ok = np.where(ok, out.objective, np.inf)
    best = int(np.argmin(f_ok))
    fbest = float(f_ok[best])
    n_at_best = int(np.sum(f_ok <= fbest + AT_BEST_RTOL * abs(fbest)))
    params = {k: float(v) for k, v in law.to_natural(out.theta[best]).items()}
    nuisance = {"sigma": float(np.exp(out.log_sigma[best]))} if obj.name == "likelihood" else {}
    table = _start_table(law, theta0, out)
    settings = {
        "objective": obj.name,
        "delta": obj.delta,
        "starts": start_kind,
        "n_starts": int(len(theta0)),
        "fixed": fixed_values,
        "max_iter": int(max_iter),
        "chunk_size": int(chunk_size),
        "ftol": float(ftol),
        "xtol": float(xtol),
        "dtype": jnp.dtype(dtype).name,
        "mixed_precision": cfg.approach_dtype is not None,
        "key": key_repr(key),
        "law_options": dict(law.options),
        "flops_per_token": data.flops_per_token,
        "data_source": data.source,
        "jaxscale_version": __version__,
        "jax_version": jax.__version__,
        "backend": jax.default_backend(),
        "timestamp": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    return FitResult(
        law=law,
        params=params,
        theta=out.theta[best].copy(),
        objective=fbest,
        n_points=len(data),
        n_starts=int(len(theta0)),
        n_at_best=n_at_best,
        starts=table,
        settings=settings,
        fingerprint=data.fingerprint(),
        nuisance=nuisance,
        seconds=time.perf_counter() - t0,
    )


def _check_solver_args(max_iter, ftol, xtol, chunk_size, memory_limit) -> None:
    for name, v in (("max_iter", max_iter), ("chunk_size", chunk_size)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise FitError(f"{name} must be an integer >= 1; got {v!r}.")
    for name, v in (("ftol", ftol), ("xtol", xtol)):
        if not (isinstance(v, (int, float)) and v >= 0):
            raise FitError(f"{name} must be a number >= 0; got {v!r}.")
    if memory_limit is not None and (isinstance(memory_limit, bool) or not isinstance(memory_limit, (int, np.integer))
                                     or memory_limit < 1):
        raise FitError(f"memory_limit must be a positive integer number of bytes; got {memory_limit!r}.")


def _start_table(law: Law, theta0, out):
    import pandas as pd

    cols = {f"start_{n}": theta0[:, i] for i, n in enumerate(law.fit_names)}
    cols.update({n: out.theta[:, i] for i, n in enumerate(law.fit_names)})
    cols["objective"] = out.objective
    cols["status"] = [STATUS_NAMES[int(s)] for s in out.status]
    cols["n_iter"] = out.n_iter
    return pd.DataFrame(cols)


#: With ``mixed_precision=None``, batches of at least this many start-solves use
#: mixed precision: compiling the float32 phase costs ~1.5 s once (per shape), and
#: saves ~0.1 ms per start-solve (measured on Epoch's protocol, benchmarks/README.md).
MIXED_MIN_SOLVES = 2048


def approach_dtype(law: Law, dtype, mixed_precision: bool | None, n_solves: int) -> str | None:
    """The solver's ``approach_dtype`` for ``n_solves`` start-solves in ``dtype`` (see :func:`fit`)."""
    if mixed_precision is not None and not isinstance(mixed_precision, (bool, np.bool_)):
        raise FitError(f"mixed_precision must be True, False or None; got {mixed_precision!r}.")
    if jnp.dtype(dtype) != jnp.float64:
        if mixed_precision:
            raise FitError("mixed_precision=True needs dtype float64 (it polishes a float32 solve in float64).")
        return None
    if mixed_precision is None:
        mixed_precision = law.log_predict_jac is not None and n_solves >= MIXED_MIN_SOLVES
    return "float32" if mixed_precision else None


def _dtype(dtype):
    if dtype is None:
        return jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
    name = jnp.dtype(dtype).name
    if name not in ("float32", "float64"):
        raise FitError(f"dtype must be 'float32' or 'float64'; got {dtype!r}.")
    if name == "float64" and not jax.config.jax_enable_x64:
        raise FitError("dtype float64 needs jax_enable_x64 (unset JAX_ENABLE_X64=0 or enable it).")
    return jnp.dtype(name)


def key_repr(key):
    if key is None:
        return None
    if isinstance(key, (int, np.integer)):
        return int(key)
    try:
        return np.asarray(jax.random.key_data(key)).tolist()
    except Exception:  # a raw uint32 key
        return np.asarray(key).tolist()


def objective(
    law: str | Law,
    data,
    params: Mapping[str, float],
    *,
    objective: str = "huber",
    delta: float = 1e-3,
    **columns,
) -> float:
    """The objective a fit minimises, evaluated at given natural-scale parameters.

    For ``objective="likelihood"`` the scale is profiled (re-fitted) as Epoch
    does before comparing log-likelihoods; the value is the negative
    log-likelihood.

    >>> import jaxscale
    >>> d = jaxscale.demo_data()
    >>> p = dict(E=1.6934, A=406.4, B=410.7, alpha=0.3392, beta=0.2849)
    >>> round(jaxscale.objective("chinchilla", d, p), 3) > 0
    True
    """
    law = get(law)
    data = ScalingData.coerce(data, **columns)
    obj = make_objective(objective, delta)
    logx, logy = data.design(law.covariates, law.name)
    theta = jnp.asarray(law.from_natural(params))
    lp = jax.vmap(law.log_predict, in_axes=(None, 0))(theta, jnp.asarray(logx))
    f, *_ = value_and_weights(obj, (lp - jnp.asarray(logy))[None, :])
    value = float(f[0])
    if not math.isfinite(value):
        raise FitError(f"The objective is not finite at {dict(params)}.")
    return value


__all__ = ["AT_BEST_RTOL", "FitResult", "fit", "huber_log_normalizer", "objective"]
