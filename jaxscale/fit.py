"""Multi-start robust fitting: :func:`fit`, the set-up it shares with the bootstrap (:func:`make_problem`), and
:class:`FitResult`."""

from __future__ import annotations

import datetime as _dt
import json
import math
import numbers
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxscale import validate
from jaxscale._io import json_safe, text_or_write
from jaxscale._version import __version__
from jaxscale.data import ScalingData
from jaxscale.errors import ArgumentError, FitError
from jaxscale.laws import Law, check_theta, get
from jaxscale.objectives import Objective, huber_log_normalizer, make_objective, value_and_weights
from jaxscale.solver import MESSAGES, OK_STATUSES, STATUS_NAMES, SolverConfig, Status, chunk_for_memory, solve

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
        coordinates, objective, status (``converged``, ``max_iter``;
        ``diverged``, ``nonfinite``: excluded from the best fit; see
        :class:`jaxscale.solver.Status`) and iterations.
    settings
        Everything needed to rerun the fit.
    fingerprint
        SHA-256 of the data (see :meth:`ScalingData.fingerprint`).
    nuisance
        Extra fitted quantities: ``sigma`` (the Huber scale) for the likelihood
        objective.
    status
        Status of the best start: ``converged`` or ``max_iter``.
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
    status: str = Status.CONVERGED.label

    @property
    def n_converged(self) -> int:
        return int((self.starts["status"] == "converged").sum())

    @property
    def n_diverged(self) -> int:
        """Starts whose objective is not finite (excluded from the best fit)."""
        return int((self.starts["status"] == Status.DIVERGED.label).sum())

    @property
    def n_nonfinite(self) -> int:
        """Starts whose parameters ran off to non-finite values, e.g. ``A = exp(5e3)`` (excluded from the best fit)."""
        return int((self.starts["status"] == Status.NONFINITE.label).sum())

    @property
    def status_counts(self) -> dict[str, int]:
        """Starts per status, e.g. ``{"converged": 250, "max_iter": 6}``."""
        return {k: int(v) for k, v in self.starts["status"].value_counts().sort_index().items()}

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
        if any(p.sampling_transform == "log" and self.params[p.name] == 0 for p in self.law.params):
            # a positive parameter whose fitted log underflowed to 0 on the natural scale (its term vanishes, and
            # the natural-scale check would refuse it): predict from the fitting coordinates, which still hold it
            return _predict_theta(self.law, self.theta, covariates)
        return self.law.predict(self.params, **covariates)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no per-start table): plain numbers, ``None`` where a value is not finite.

        ``status`` is the best start's, ``status_counts`` counts every start's (see
        :class:`jaxscale.solver.Status`).
        """
        out = {
            "law": self.law.name,
            "params": {k: float(v) for k, v in self.params.items()},
            "objective": float(self.objective),
            "status": self.status,
            "n_points": self.n_points,
            "n_starts": self.n_starts,
            "n_at_best": self.n_at_best,
            "n_converged": self.n_converged,
            "n_diverged": self.n_diverged,
            "n_nonfinite": self.n_nonfinite,
            "status_counts": self.status_counts,
            "settings": self.settings,
            "data_fingerprint": self.fingerprint,
            "seconds": self.seconds,
        }
        if self.nuisance:
            out["nuisance"] = {k: float(v) for k, v in self.nuisance.items()}
        return json_safe(out)

    def to_json(self, path: str | None = None, **kwargs) -> str:
        """Serialise :meth:`to_dict` (strict JSON: no NaN or Infinity); write it atomically to ``path`` if given.

        >>> import json, jaxscale
        >>> res = jaxscale.fit("chinchilla", jaxscale.demo_data(), starts=16, key=0)
        >>> json.loads(res.to_json())["status"]
        'converged'
        """
        if path is not None:
            path = validate.output_path(path, "path")
        text = json.dumps(self.to_dict(), **{"indent": 2, **kwargs, "allow_nan": False})
        return text_or_write(text, path)

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
            f"{self.n_at_best}/{self.n_starts} starts at best, {self.n_diverged} diverged, {self.n_nonfinite} "
            f"nonfinite; {self.seconds:.2f} s"
        )
        return "\n".join(lines)

    def __repr__(self) -> str:
        p = ", ".join(f"{k}={v:.6g}" for k, v in self.params.items())
        return f"FitResult({self.law.name}: {p}; objective={self.objective:.6g}, {self.n_at_best}/{self.n_starts} at best)"


def key_data(key) -> np.ndarray:
    """The ``uint32`` words of a key or int seed, on the host (:func:`jaxscale.validate.key_words`).

    An int seed gives ``key_data(jax.random.key(seed))`` without compiling JAX's seeding kernel.

    >>> key_data(7).tolist()
    [0, 7]
    """
    return validate.key_words(key)


def numpy_rng(key) -> np.random.Generator:
    """A NumPy generator seeded from a JAX key (or int seed): same key, same stream.

    Small host-side draws (start points, noise) this way skip compiling JAX's
    threefry kernels, ~0.4 s in a fresh process.

    >>> bool(numpy_rng(3).uniform() == numpy_rng(3).uniform())
    True
    """
    return np.random.default_rng(validate.key_words(key).tolist())


def _is_count(value) -> bool:
    return isinstance(value, (numbers.Integral, np.bool_))


#: The named ``starts`` of :func:`fit`.
START_KINDS = ("grid", "varpro")


def make_starts(law: Law, starts, key, logx, logy, weight=None) -> tuple[np.ndarray, str]:
    """Start points ``(n_starts, P)`` in fitting coordinates and their label (``"grid"``, ``"varpro"``,
    ``"random(n)"``, ``"user"``).

    ``starts`` is ``"grid"`` (the law's default grid), ``"varpro"`` (an exponent grid with the linear coefficients
    solved: :func:`jaxscale.varpro.varpro_starts`, with the per-point ``weight``), an int (that many uniform random
    starts over the grid's box widened by 25% each side, drawn from ``key``) or an array of starts.

    >>> import jaxscale
    >>> law = jaxscale.laws.get("chinchilla")
    >>> theta, label = make_starts(law, 8, 0, *jaxscale.demo_data().design(law.covariates))
    >>> theta.shape, label
    ((8, 5), 'random(8)')
    """
    if isinstance(starts, str):
        if starts not in START_KINDS:
            raise ArgumentError(f"starts must be 'grid', 'varpro', a number of random starts or an array; got "
                                f"{starts!r}.")
        if starts == "varpro":
            from jaxscale.varpro import varpro_starts

            return varpro_starts(law, logx, logy, weight), "varpro"
        return law.default_starts(logx, logy), "grid"
    if _is_count(starts):
        n = validate.n_starts(starts, law.n_params)
        grid = law.default_starts(logx, logy)
        lo, hi = grid.min(0), grid.max(0)
        span = np.maximum(hi - lo, 1.0)
        u = numpy_rng(key).uniform(size=(n, law.n_params))
        return lo - 0.25 * span + 1.5 * span * u, f"random({n})"
    return check_theta(law, starts, "starts"), "user"


class FitProblem(NamedTuple):
    """Everything a fit (or a bootstrap, or a batch of refits) is set up with, checked: see :func:`make_problem`.

    ``logx`` ``(n, K)`` and ``logy`` ``(n,)`` are the design (log covariates in the law's order, log target);
    ``theta0`` ``(S, P)`` the starts in fitting coordinates with fixed parameters already set; ``starts`` their
    label; ``free`` ``(P,)`` 1.0 for a free parameter and 0.0 for a fixed one; ``fixed`` the fixed parameters'
    natural values and ``fixed_theta`` ``(P,)`` their fitting coordinates (NaN where free); ``key`` the key as
    given (recorded in settings); ``n_free`` the parameters fitted (with ``sigma`` for the likelihood);
    ``weight`` ``(n,)`` the data's per-point weights (``ScalingData.weight``), or None.
    """

    law: Law
    data: ScalingData
    logx: np.ndarray
    logy: np.ndarray
    theta0: np.ndarray
    starts: str
    free: np.ndarray
    fixed: dict[str, float]
    fixed_theta: np.ndarray
    objective: Objective
    dtype: Any
    key: Any
    n_free: int
    max_iter: int = 400
    ftol: float = 1e-10
    xtol: float = 1e-7
    chunk_size: int = 65536
    memory_limit: int | None = None
    mixed_precision: bool | None = None
    weight: np.ndarray | None = None

    def config(self, n_solves: int) -> SolverConfig:
        """The solver's settings for ``n_solves`` start-solves (which decides mixed precision, see :func:`fit`)."""
        return SolverConfig(objective=self.objective, max_iter=self.max_iter, ftol=self.ftol, xtol=self.xtol,
                            approach_dtype=approach_dtype(self.law, self.dtype, self.mixed_precision, n_solves))

    def chunk(self, cfg: SolverConfig, starts_per_replicate: int = 0) -> int:
        """Starts per compiled call: ``chunk_size``, lowered to fit ``memory_limit`` when one is given."""
        if self.memory_limit is None:
            return self.chunk_size
        return min(self.chunk_size, chunk_for_memory(self.law.n_params, len(self.data), self.memory_limit, cfg.block,
                                                     jnp.dtype(self.dtype).itemsize, starts_per_replicate))


def make_problem(
    law: str | Law,
    data,
    *,
    starts="grid",
    key=validate.DEFAULT_KEY,
    objective: str = "huber",
    delta: float = 1e-3,
    fixed: Mapping[str, float] | None = None,
    max_iter: int = 400,
    ftol: float = 1e-10,
    xtol: float = 1e-7,
    chunk_size: int = 65536,
    memory_limit: int | None = None,
    dtype=None,
    mixed_precision: bool | None = None,
    overestimate_penalty: float = 1.0,
    **columns,
) -> FitProblem:
    """Check a fit's arguments and set it up, before any solving: the one set-up :func:`fit` and
    :func:`jaxscale.bootstrap` share.

    Every argument is checked first (:mod:`jaxscale.validate`: a bad key, dtype, count, tolerance or fixed value is
    an :class:`~jaxscale.errors.ArgumentError`), then the data are read and the starts built. The arguments are
    those of :func:`fit`.

    Returns
    -------
    FitProblem

    Examples
    --------
    >>> import jaxscale
    >>> from jaxscale.fit import make_problem
    >>> p = make_problem("chinchilla", jaxscale.demo_data(), starts=32, key=0, fixed={"E": 1.7})
    >>> p.theta0.shape, p.starts, p.free.tolist(), p.n_free
    ((32, 5), 'random(32)', [0.0, 1.0, 1.0, 1.0, 1.0], 4)
    """
    law = get(law)
    validate.key_words(key)
    obj = make_objective(objective, delta, overestimate_penalty)
    fixed_values = validate.fixed(law, fixed)
    max_iter = validate.integer(max_iter, "max_iter")
    ftol = validate.number(ftol, "ftol", minimum=0)
    xtol = validate.number(xtol, "xtol", minimum=0)
    chunk_size = validate.integer(chunk_size, "chunk_size")
    memory_limit = None if memory_limit is None else validate.integer(memory_limit, "memory_limit")
    dtype = validate.dtype(dtype)
    approach_dtype(law, dtype, mixed_precision, 0)  # checks mixed_precision against dtype
    if _is_count(starts):
        validate.n_starts(starts, law.n_params)
    elif isinstance(starts, str) and starts not in START_KINDS:
        raise ArgumentError(f"starts must be 'grid', 'varpro', a number of random starts or an array; got "
                            f"{starts!r}.")
    data = ScalingData.coerce(data, **columns)
    logx, logy = data.design(law.covariates, law.name)
    if law.check_fn is not None:
        law.check_fn(fixed_values, logy)
    free = np.array([p.name not in fixed_values for p in law.params], dtype=np.float64)
    fixed_theta = np.array([law.to_fit(p.name, fixed_values[p.name]) if p.name in fixed_values else np.nan
                            for p in law.params])
    theta0, label = make_starts(law, starts, key, logx, logy, data.weight)
    theta0 = np.where(free > 0, theta0, fixed_theta)
    n_free = int(free.sum()) + (1 if obj.name == "likelihood" else 0)
    return FitProblem(law, data, logx, logy, theta0, label, free, fixed_values, fixed_theta, obj, dtype, key, n_free,
                      max_iter, ftol, xtol, chunk_size, memory_limit, mixed_precision, data.weight)


def check_identified(problem: FitProblem, stacklevel: int = 2) -> None:
    """Raise if the data have fewer points than the fit's free parameters; warn if exactly as many (it interpolates).

    Points of weight 0 do not count. ``stacklevel`` is passed to the warning, counted from the caller of this
    function.
    """
    n, n_free, law = len(problem.data), problem.n_free, problem.law
    if problem.weight is not None:
        n = int(np.sum(problem.weight > 0))
    sigma = " (+ sigma)" if problem.objective.name == "likelihood" else ""
    if n < n_free:
        raise FitError(f"{n} points{' of positive weight' if problem.weight is not None else ''} cannot determine {n_free} free parameters of law {law.name!r}{sigma}; need at "
                       f"least {n_free} points.")
    if n == n_free:
        warnings.warn(f"{n} points for {n_free} free parameters of law {law.name!r}: the fit interpolates (every "
                      f"residual ~0), so it says nothing about the noise or how well the law fits. Add points or fix "
                      f"a parameter.", RuntimeWarning, stacklevel=stacklevel + 1)


def fit(
    law: str | Law,
    data,
    *,
    starts="grid",
    objective: str = "huber",
    delta: float = 1e-3,
    key=validate.DEFAULT_KEY,
    fixed: Mapping[str, float] | None = None,
    max_iter: int = 400,
    ftol: float = 1e-10,
    xtol: float = 1e-7,
    chunk_size: int = 65536,
    memory_limit: int | None = None,
    dtype=None,
    mixed_precision: bool | None = None,
    overestimate_penalty: float = 1.0,
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
        grid's box widened by 25% each side, drawn from ``key``), an array
        of shape ``(n_starts, n_params)`` in fitting coordinates
        (``law.fit_names``), or ``"varpro"`` for a law with linear
        coefficients (``chinchilla``): a grid over the exponents only, each
        start's coefficients solved by non-negative least squares
        (:func:`jaxscale.varpro.varpro_starts`).
    objective
        ``"huber"`` (summed Huber on log residuals), ``"squared"`` or
        ``"likelihood"`` (Epoch's Huber likelihood with a free scale).
    delta
        Huber delta (1e-3, as Hoffmann et al.).
    overestimate_penalty
        ``objective="huber"`` only: multiply the Huber term of every point the
        law over-predicts by this factor (> 0; OLMo-core's asymmetric Huber):
        > 1 pulls the curve down towards the lower envelope of the losses
        (OLMo-core suggests 10 for a lower bound); 1 (default) is plain Huber.
    key
        Int seed or ``jax.random.key``; default 0; same key, same result
        (it draws random starts).
    fixed
        Natural-scale values of parameters to hold fixed, e.g.
        ``{"E": 1.87}``: finite and inside each parameter's support.
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

    The data's per-point weights (``ScalingData.weight``, e.g.
    ``weight="w"`` with a DataFrame) multiply each point's term of the
    objective: a weight of 2 is the point counted twice, a weight of 0 keeps
    the point in the data without letting it influence the fit.

    Returns
    -------
    FitResult
        The best start that converged or ran out of iterations with finite
        parameters; starts that diverged or whose parameters ran off to
        non-finite values are flagged in ``starts`` and excluded. If no start
        survives, a :class:`~jaxscale.errors.FitError` says why.

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
    problem = make_problem(law, data, starts=starts, key=key, objective=objective, delta=delta, fixed=fixed,
                           max_iter=max_iter, ftol=ftol, xtol=xtol, chunk_size=chunk_size, memory_limit=memory_limit,
                           dtype=dtype, mixed_precision=mixed_precision, overestimate_penalty=overestimate_penalty,
                           **columns)
    check_identified(problem, stacklevel=2)
    return fit_problem(problem, t0=t0)


def fit_problem(problem: FitProblem, *, t0: float | None = None) -> FitResult:
    """Solve a :class:`FitProblem` from every start and keep the best (the work of :func:`fit`, after its checks).

    ``t0`` (a ``time.perf_counter()`` value) is when the fit started, for ``seconds``.
    """
    t0 = time.perf_counter() if t0 is None else t0
    law, data, theta0 = problem.law, problem.data, problem.theta0
    cfg = problem.config(len(theta0))
    chunk_size = problem.chunk(cfg)
    out = solve(law, theta0, problem.logx, problem.logy, problem.free, cfg, chunk_size=chunk_size,
                dtype=problem.dtype, weight=problem.weight)
    ok = np.isfinite(out.objective) & np.isin(out.status, OK_STATUSES)
    if not ok.any():
        raise FitError(_no_start_left(len(theta0), out.status))
    f_ok = np.where(ok, out.objective, np.inf)
    best = int(np.argmin(f_ok))
    fbest = float(f_ok[best])
    n_at_best = int(np.sum(f_ok <= fbest + AT_BEST_RTOL * abs(fbest)))
    params = {k: float(v) for k, v in law.to_natural(out.theta[best]).items()}
    nuisance = {"sigma": float(np.exp(out.log_sigma[best]))} if problem.objective.name == "likelihood" else {}
    table = _start_table(law, theta0, out)
    settings = {
        "objective": problem.objective.name,
        "delta": problem.objective.delta,
        "overestimate_penalty": problem.objective.overestimate,
        "weighted": problem.weight is not None,
        "starts": problem.starts,
        "n_starts": int(len(theta0)),
        "fixed": dict(problem.fixed),
        "max_iter": problem.max_iter,
        "chunk_size": int(chunk_size),
        "ftol": problem.ftol,
        "xtol": problem.xtol,
        "dtype": jnp.dtype(problem.dtype).name,
        "mixed_precision": cfg.approach_dtype is not None,
        "key": validate.key_repr(problem.key),
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
        status=Status(int(out.status[best])).label,
    )


def _no_start_left(n: int, status: np.ndarray) -> str:
    """Why no start of ``n`` is left: the share of each failure status, with its remedy."""
    parts = []
    for s in (Status.DIVERGED, Status.NONFINITE, Status.SKIPPED):
        k = int(np.sum(status == s))
        if k:
            parts.append(f"{k} of {n} {s.label} ({MESSAGES[s]})")
    return f"All {n} starts diverged: " + "; ".join(parts or ["no start has a finite objective"]) + "."


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
        raise ArgumentError(f"mixed_precision must be True, False or None; got {mixed_precision!r}.")
    if jnp.dtype(dtype) != jnp.float64:
        if mixed_precision:
            raise ArgumentError("mixed_precision=True needs dtype float64 (it polishes a float32 solve in float64).")
        return None
    if mixed_precision is None:
        mixed_precision = law.log_predict_jac is not None and n_solves >= MIXED_MIN_SOLVES
    return "float32" if mixed_precision else None


def objective(
    law: str | Law,
    data,
    params: Mapping[str, float],
    *,
    objective: str = "huber",
    delta: float = 1e-3,
    overestimate_penalty: float = 1.0,
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
    obj = make_objective(objective, delta, overestimate_penalty)
    theta = jnp.asarray(law.from_natural(params))
    data = ScalingData.coerce(data, **columns)
    logx, logy = data.design(law.covariates, law.name)
    lp = jax.vmap(law.log_predict, in_axes=(None, 0))(theta, jnp.asarray(logx))
    weight = None if data.weight is None else jnp.asarray(data.weight)[None, :]
    f, *_ = value_and_weights(obj, (lp - jnp.asarray(logy))[None, :], weight=weight)
    value = float(f[0])
    if not math.isfinite(value):
        raise FitError(f"The objective is not finite at {dict(params)}.")
    return value


__all__ = ["AT_BEST_RTOL", "FitProblem", "FitResult", "check_identified", "fit", "fit_problem", "huber_log_normalizer",
           "make_problem", "make_starts", "objective"]


def _predict_theta(law: Law, theta, covariates) -> np.ndarray:
    """``law``'s prediction at ``covariates`` from fitting coordinates ``theta`` (no trip to the natural scale)."""
    from jaxscale.laws import log_covariates

    logx = log_covariates(law, covariates)
    shape = np.broadcast_shapes(*(np.shape(covariates[c]) for c in law.covariates))
    lp = jax.vmap(law.log_predict, in_axes=(None, 0))(jnp.asarray(theta, jnp.float64), jnp.asarray(logx))
    return np.exp(np.asarray(lp)).reshape(shape)
