"""Turn a fitted law into decisions: how big a model, how many tokens.

Three questions, each answered for a point fit, a bootstrap or a posterior
(draws give intervals), vectorised with ``jax.vmap`` over budgets and draws:

* :func:`compute_optimal`: for a training budget ``C = k N D``, the ``N`` and
  ``D`` that minimise the loss (Hoffmann et al. 2022). Closed form (Eq. 4) for
  ``chinchilla``; a numerical, differentiable line search for any law of ``N``
  and ``D`` (``kaplan``, your own).
* :func:`inference_optimal`: for a target loss and an expected number of
  inference tokens, the ``N`` and ``D`` that minimise training plus inference
  FLOPs, ``k N D + k_inf N T_inf`` (Sardana & Frankle 2023), and how far that
  over-trains relative to compute-optimal.
* :func:`data_constrained_optimal`: for a budget ``C`` and ``U`` unique tokens,
  ``N``, ``D`` and epochs ``D/U`` under Muennighoff et al.'s (2023) law.

The numerical solves are pure JAX (:func:`line_optimum`): a 256-point grid in
``log N`` brackets the minimum, golden-section search polishes it, and one
implicit Newton step makes the result differentiable (its derivative is the
implicit-function derivative ``-f_u theta / f_uu`` at the optimum). A draw
whose optimum sits on the edge of the search range (no interior optimum), or
whose target loss is out of reach, is flagged as failed and excluded from the
intervals; it never poisons the other draws.

>>> import jaxscale
>>> from jaxscale.published import EPOCH as epoch   # Epoch AI (2024)
>>> out = compute_optimal("chinchilla", epoch, 5.88e23)
>>> round(float(out.table["tokens_per_param"][0]), 2)
18.33
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from jaxscale import validate
from jaxscale._draws import ParamSource, param_source
from jaxscale._io import json_safe, text_or_write
from jaxscale.errors import ArgumentError, JaxscaleError, LawError
from jaxscale.laws import Law, get

_N_GRID = 256
_GOLDEN_ITERS = 80
_BISECT_ITERS = 64
_INVPHI = (np.sqrt(5.0) - 1.0) / 2.0
_LOG_HUGE = 230.0  # log of an effectively infinite N or D (e^230 ~ 1e100)
SOLVERS = ("auto", "closed_form", "numerical")
QUANTITIES = ("N_opt", "D_opt", "L_opt", "tokens_per_param")


class AllocationError(JaxscaleError):
    """An allocation that cannot be computed: a law of the wrong covariates, an unreachable target, no interior
    optimum. (Bad arguments, such as a budget that is not a positive number, are
    :class:`~jaxscale.errors.ArgumentError`.)"""


# --------------------------------------------------------------------------- pure JAX core


def line_optimum(f: Callable, lo, hi, n_grid: int = _N_GRID):
    """Minimise a scalar function of one variable on ``[lo, hi]``; pure JAX, differentiable.

    Grid search brackets the minimum, golden-section search narrows the
    bracket to rounding error, and one Newton step taken from the (gradient-
    stopped) optimum carries the implicit derivative with respect to anything
    ``f`` closes over. Non-finite values of ``f`` count as ``+inf``. Returns
    ``(u, ok)``; ``ok`` is False when the minimum is at an end of the range
    (no interior optimum) or every value is non-finite.

    >>> u, ok = line_optimum(lambda u: (u - 1.25) ** 2, -3.0, 4.0)
    >>> round(float(u), 8), bool(ok)
    (1.25, True)
    """
    safe = lambda u: jnp.where(jnp.isfinite(v := f(u)), v, jnp.inf)
    us = jnp.linspace(lo, hi, n_grid)
    fs = jax.vmap(safe)(us)
    i = jnp.argmin(fs)
    ok = (i > 0) & (i < n_grid - 1) & jnp.isfinite(fs[i])
    a, b = us[jnp.maximum(i - 1, 0)], us[jnp.minimum(i + 1, n_grid - 1)]

    def golden(_, ab):
        a, b = ab
        x1, x2 = b - _INVPHI * (b - a), a + _INVPHI * (b - a)
        left = safe(x1) < safe(x2)
        return jnp.where(left, a, x1), jnp.where(left, x2, b)

    a, b = jax.lax.fori_loop(0, _GOLDEN_ITERS, golden, (a, b))
    u0 = jax.lax.stop_gradient(0.5 * (a + b))
    g = jax.grad(f)(u0)
    h = jax.grad(jax.grad(f))(u0)
    step = jnp.where((h > 0) & jnp.isfinite(g) & jnp.isfinite(h), g / jnp.where(h > 0, h, 1.0), 0.0)
    # At the optimum g ~ 0, so the value stays u0; the derivative is the implicit one.
    u = u0 - (step - jax.lax.stop_gradient(step))
    return u, ok


def _bisect_decreasing(g: Callable, lo, hi):
    """Root of a decreasing function on ``[lo, hi]`` (``g(lo) > 0 > g(hi)``); NaN when there is none."""

    def body(_, ab):
        a, b = ab
        m = 0.5 * (a + b)
        pos = g(m) > 0
        return jnp.where(pos, m, a), jnp.where(pos, b, m)

    a, b = jax.lax.fori_loop(0, _BISECT_ITERS, body, (jnp.asarray(lo, float), jnp.asarray(hi, float)))
    ok = (g(jnp.asarray(lo, float)) > 0) & (g(jnp.asarray(hi, float)) <= 0)
    return jnp.where(ok, 0.5 * (a + b), jnp.nan)


def _covariate_fn(law: Law, what: str, need=("N", "D")) -> Callable:
    """``logx(log_N, log_D[, log_U])`` in the law's covariate order."""
    if tuple(sorted(law.covariates)) != tuple(sorted(need)):
        raise AllocationError(
            f"{what} needs a law of exactly the covariates {list(need)}; law {law.name!r} has "
            f"{list(law.covariates)}. Laws that qualify: {_qualifying(need)}."
        )
    order = [need.index(c) for c in law.covariates]
    return lambda *logs: jnp.stack([logs[i] for i in order])


def _qualifying(need) -> list[str]:
    from jaxscale.laws import available

    out = []
    for name in available():
        try:
            law = get(name)
        except LawError:  # a factory that needs options: not a candidate by default
            continue
        if tuple(sorted(law.covariates)) == tuple(sorted(need)):
            out.append(name)
    return out


def _chinchilla_closed_form(theta, log_ck):
    _, log_A, log_B, alpha, beta = theta
    log_G = (jnp.log(alpha) + log_A - jnp.log(beta) - log_B) / (alpha + beta)
    log_n = log_G + beta / (alpha + beta) * log_ck
    return log_n, log_ck - log_n


def _compute_optimal_one(law: Law, closed_form: bool):
    logx = _covariate_fn(law, "compute_optimal")

    def solve(theta, log_ck):
        if closed_form:
            log_n, log_d = _chinchilla_closed_form(theta, log_ck)
            ok = jnp.isfinite(log_n) & (log_n > 0.0) & (log_d > 0.0)  # the same range the line search uses
        else:
            f = lambda u: law.log_predict(theta, logx(u, log_ck - u))
            log_n, ok = line_optimum(f, 0.0, log_ck)
            log_d = log_ck - log_n
        log_l = law.log_predict(theta, logx(log_n, log_d))
        return jnp.where(ok, jnp.stack([log_n, log_d, log_l]), jnp.nan)

    return solve


# --------------------------------------------------------------------------- results


@dataclass(eq=False)
class Allocation:
    """Allocation table(s) with intervals from draws.

    ``table``: one row per budget (or target), the estimate of each
    quantity and, where draws exist, ``<name>_lo`` / ``<name>_hi`` (central
    ``level`` interval over the successful draws) and ``n_failed``. The
    estimate is the value at the fit's parameters for a point fit or a
    bootstrap (the full-data fit), and the median of each quantity's draws for
    a posterior (as :func:`jaxscale.bayes.derive`; so there
    ``tokens_per_param`` need not equal ``D_opt / N_opt`` exactly).
    ``draws``: ``{name: (n_draws, n_rows) array}`` (NaN where a draw failed),
    or ``None`` for a point fit.

    >>> a = compute_optimal("chinchilla", dict(E=1.82, A=482.0, B=2085.0, alpha=0.348, beta=0.366), [1e22, 1e24])
    >>> [round(r["tokens_per_param"], 1) for r in a.to_dict()["records"]]
    [20.3, 18.1]
    """

    kind: str
    law: Law
    table: pd.DataFrame
    draws: dict[str, np.ndarray] | None
    level: float
    source: str
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: one record per row with the point values and ``intervals`` where draws exist.

        A value that is not finite is ``None``; ``n_failed`` counts the draws with no solution for that row.
        """
        names = [c for c in self.table.columns if not c.endswith(("_lo", "_hi")) and c != "n_failed"]
        records = []
        for _, row in self.table.iterrows():
            rec = {k: float(row[k]) for k in names}
            if self.draws is not None:
                rec["intervals"] = {k: [float(row[f"{k}_lo"]), float(row[f"{k}_hi"])] for k in self.draws}
                rec["n_failed"] = int(row["n_failed"])
            records.append(rec)
        return json_safe({"kind": self.kind, "law": self.law.name, "source": self.source, "level": self.level,
                          "settings": self.settings, "records": records})

    def to_json(self, path: str | None = None) -> str:
        """Serialise :meth:`to_dict` (strict JSON: no NaN or Infinity); write it atomically to ``path`` if given."""
        if path is not None:
            path = validate.output_path(path, "path")
        text = json.dumps(self.to_dict(), indent=2, allow_nan=False)
        return text_or_write(text, path)

    def __repr__(self) -> str:
        return f"Allocation({self.kind}, {self.law.name}, {len(self.table)} rows, source={self.source})\n{self.table}"


def read_fit(fit, law=None) -> ParamSource:
    """A fit's law, point estimate and draws (if any), from anything :func:`jaxscale._draws.param_source` takes:
    a FitResult, BootstrapResult, posterior, a dict of parameters (with ``law``) or a fit file (JSON, netCDF).

    ``law``, when given, must be the fit's (a mismatch is a :class:`~jaxscale.errors.LawError`).

    >>> read_fit(dict(E=1.82, A=482.0, B=2085.0, alpha=0.348, beta=0.366), "chinchilla").kind
    'params'
    """
    return param_source(fit, law)


def _source(law, fit) -> ParamSource:
    return read_fit(fit, law)


def _broadcast(**arrays) -> list[np.ndarray]:
    try:
        return np.broadcast_arrays(*arrays.values())
    except ValueError:
        shapes = ", ".join(f"{k} has {np.shape(v)[0]} values" for k, v in arrays.items())
        raise ArgumentError(f"{' and '.join(arrays)} must have the same length (or one of them a single value); "
                            f"{shapes}.") from None


def _scalar(value, name: str) -> float:
    """A single finite number > 0 (a one-element array is unwrapped)."""
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(()).item()
    return validate.positive(value, name)


def _budgets(values, name: str = "C") -> np.ndarray:
    """Training budgets in FLOPs: a number or a 1-D list, each finite and > 0 (:func:`jaxscale.validate.budgets`)."""
    if np.ndim(values) > 1:
        raise ArgumentError(f"{name} must be a number or a 1-D list of budgets; got an array of shape "
                            f"{np.shape(values)}.")
    return validate.budgets(values, name)


def thetas(src: ParamSource):
    """``(point, draws)``: the source's parameters on the law's fitting scale, ``(n_params,)`` and
    ``(n_draws, n_params)`` (``None`` without draws), ready for ``law.log_predict`` and :func:`batched`.

    >>> p, d = thetas(read_fit(dict(E=1.82, A=482.0, B=2085.0, alpha=0.348, beta=0.366), "chinchilla"))
    >>> p.shape, d is None
    ((5,), True)
    """
    point = jnp.asarray(src.law.from_natural(src.point))
    draws = None if src.draws is None else jnp.asarray(src.law.from_natural(src.columns()))
    return point, draws


def _numbers(values, name: str) -> np.ndarray:
    try:
        arr = np.atleast_1d(np.asarray(values, dtype=float))
    except (TypeError, ValueError):
        raise ArgumentError(f"{name} must be a number or a 1-D list of numbers; got {values!r}.") from None
    if arr.ndim != 1 or arr.size == 0:
        raise ArgumentError(f"{name} must be a number or a 1-D list of numbers; got shape {arr.shape}.")
    return arr


def _positive(values, name: str) -> np.ndarray:
    arr = _numbers(values, name)
    bad = ~np.isfinite(arr) | (arr <= 0)
    if bad.any():
        raise ArgumentError(f"{name} must be finite and > 0; got {arr[bad].tolist()} at position(s) "
                            f"{np.flatnonzero(bad).tolist()}.")
    return arr


def summarise(kind, src, rows: dict[str, np.ndarray], point: dict[str, np.ndarray], draws, level, settings):
    """Build the :class:`Allocation` of ``kind``: the point values, and ``level`` intervals over the successful draws.

    ``rows`` are the input columns (budgets, targets), ``point`` and ``draws`` the computed ones (``draws``:
    ``{name: (n_draws, n_rows)}``, NaN where a draw failed, or ``None``); ``settings`` go into the result with
    the source's provenance. A draw that failed in some row is excluded from that row's intervals, with one
    warning. (The allocations of :mod:`jaxscale.allocate_schedule` are built with it too.)

    >>> src = read_fit(dict(E=1.82, A=482.0, B=2085.0, alpha=0.348, beta=0.366), "chinchilla")
    >>> summarise("example", src, {"compute": [1e21]}, {"N_opt": [1e9]}, None, 0.9, {}).table.to_dict("records")
    [{'compute': 1e+21, 'N_opt': 1000000000.0}]
    """
    table = pd.DataFrame(rows)
    for k, v in point.items():
        table[k] = v
    out_draws = None
    if draws is not None:
        out_draws = {k: np.asarray(v) for k, v in draws.items()}
        failed = ~np.all(np.stack([np.isfinite(v) for v in out_draws.values()]), axis=0)  # (n_draws, n_rows)
        a = (1.0 - level) / 2.0
        for k, v in out_draws.items():
            v = np.where(failed, np.nan, v)
            out_draws[k] = v
            ok_any = np.any(~failed, axis=0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                table[f"{k}_lo"] = np.where(ok_any, np.nanquantile(v, a, axis=0), np.nan)
                table[f"{k}_hi"] = np.where(ok_any, np.nanquantile(v, 1 - a, axis=0), np.nan)
        table["n_failed"] = failed.sum(0)
        if src.kind == "posterior":  # posterior summaries are medians of the draws, as in bayes.derive
            for k, v in out_draws.items():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    table[k] = np.nanmedian(v, axis=0)
        n_bad = int(failed.any(1).sum())
        if n_bad:
            warnings.warn(f"{kind}: {n_bad} of {failed.shape[0]} draws have no solution for some row (optimum on the "
                          f"edge of the search range, or target out of reach); they are excluded from the intervals "
                          f"(see the n_failed column).", RuntimeWarning, stacklevel=3)
    settings = {**settings, **_provenance(src)}
    return Allocation(kind, src.law, table, out_draws, level, src.kind, settings)


def _provenance(src) -> dict[str, Any]:
    """What an allocation was made from and when: the source's draws and data fingerprint, the law's options,
    versions and a timestamp (as a fit records them), so a report or an auditor can trace it."""
    import datetime as _dt

    import jax

    from jaxscale._version import __version__

    return {"law_options": dict(src.law.options), "n_draws": 0 if src.draws is None else int(len(src.draws)),
            "data_fingerprint": src.fingerprint, "jaxscale_version": __version__, "jax_version": jax.__version__,
            "timestamp": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}


def batched(fn, point_theta, draw_theta, *row_args):
    """Evaluate ``fn(theta, *row)`` for the point and every draw, vmapped over rows then draws (compiled).

    Returns ``(point, draws)``: ``fn``'s output stacked over the rows, and over the draws then the rows
    (``None`` when ``draw_theta`` is).

    >>> import jax.numpy as jnp
    >>> pt, dr = batched(lambda th, x: th[0] * x, jnp.ones(1), None, jnp.arange(3.0))
    >>> pt.tolist(), dr
    ([0.0, 1.0, 2.0], None)
    """
    over_rows = jax.vmap(fn, in_axes=(None,) + (0,) * len(row_args))
    f = jax.jit(over_rows)
    pt = np.asarray(f(point_theta, *row_args))
    dr = None if draw_theta is None else np.asarray(jax.jit(jax.vmap(over_rows, in_axes=(0,) + (None,) * len(row_args)))(
        draw_theta, *row_args))
    return pt, dr


# --------------------------------------------------------------------------- compute-optimal


def compute_optimal(law, fit, C, flops_per_token: float = 6.0, *, level: float = 0.9,
                    solver: str = "auto") -> Allocation:
    """Compute-optimal ``N``, ``D``, loss and tokens per parameter for training budget(s) ``C``.

    Minimises ``L(N, D)`` on ``k N D = C`` (``k = flops_per_token``). For
    ``chinchilla`` the closed form of Hoffmann et al. (2022, Eq. 4) is used,
    ``N_opt = G (C/k)^a``, ``a = beta/(alpha+beta)``; for any other law of
    exactly ``N`` and ``D`` (``kaplan``, or a registered law) a numerical line
    search in ``log N`` (:func:`line_optimum`). ``solver="numerical"`` forces
    the line search for ``chinchilla`` too.

    Parameters
    ----------
    law
        Law name or Law; ``None`` to take the fit's.
    fit
        A :class:`~jaxscale.FitResult`, :class:`~jaxscale.BootstrapResult`,
        ArviZ posterior (from :func:`jaxscale.bayes.sample`), a dict of
        natural parameters, or a path to a JSON / netCDF file written by the
        CLI. Draws (bootstrap, posterior) give ``level`` intervals.
    C
        Budget(s) in FLOPs, > 0.

    Returns
    -------
    Allocation
        ``table`` columns ``compute, N_opt, D_opt, L_opt, tokens_per_param``
        (+ ``_lo``/``_hi`` and ``n_failed`` with draws).

    Examples
    --------
    >>> hoffmann = dict(E=1.6934, A=406.40, B=410.70, alpha=0.33917084, beta=0.2849083)  # unrounded
    >>> t = compute_optimal("chinchilla", hoffmann, [5.88e23]).table
    >>> round(float(t["tokens_per_param"][0]), 1), round(float(t["N_opt"][0]) / 1e10, 2)
    (59.0, 4.07)
    """
    C = _budgets(C)
    k = _scalar(flops_per_token, "flops_per_token")
    level = validate.level(level)
    solver = validate.choice(solver, "solver", SOLVERS)
    src = _source(law, fit)
    closed = src.law.name == "chinchilla" and solver != "numerical"
    if solver == "closed_form" and src.law.name != "chinchilla":
        raise AllocationError(f"The closed form is for 'chinchilla' only; law {src.law.name!r} needs "
                              f"solver='numerical' (or 'auto').")
    fn = _compute_optimal_one(src.law, closed)
    pt, dr = batched(fn, *thetas(src), jnp.log(C / k))

    def unpack(a):
        n, d, lo = np.exp(a[..., 0]), np.exp(a[..., 1]), np.exp(a[..., 2])
        return {"N_opt": n, "D_opt": d, "L_opt": lo, "tokens_per_param": d / n}

    point = unpack(pt)
    if not np.all(np.isfinite(pt)):
        bad = C[~np.all(np.isfinite(pt), -1)].tolist()
        raise AllocationError(f"No interior compute-optimal allocation for budget(s) {bad} at the point estimate "
                              f"of {src.law.name!r}: the loss keeps falling towards N = 1 or D = 1 on k N D = C.")
    settings = {"flops_per_token": float(k), "solver": "closed_form" if closed else "numerical"}
    return summarise("compute_optimal", src, {"compute": C}, point, None if dr is None else unpack(dr), level,
                      settings)


def overtraining(law, fit, N, D, flops_per_token: float = 6.0) -> pd.DataFrame:
    """How far a planned run ``(N, D)`` is from compute-optimal at its own training compute.

    Returns ``N, D, compute, tokens_per_param`` and the compute-optimal
    ``tokens_per_param_opt`` at ``C = k N D``, their ratio
    ``overtraining_ratio`` (> 1: more tokens per parameter than
    compute-optimal), and the loss penalty ``L / L_opt - 1``. Point estimate only.

    >>> from jaxscale.published import EPOCH as epoch   # Epoch AI (2024)
    >>> t = overtraining("chinchilla", epoch, N=70e9, D=15e12)
    >>> round(float(t["tokens_per_param"][0]))
    214
    """
    N, D = _broadcast(N=_positive(N, "N"), D=_positive(D, "D"))
    k = _scalar(flops_per_token, "flops_per_token")
    src = _source(law, fit)
    C = k * N * D
    opt = compute_optimal(src.law, src.point, C, k).table
    L = src.law.predict(src.point, N=N, D=D)
    return pd.DataFrame({
        "N": N, "D": D, "compute": C, "tokens_per_param": D / N,
        "tokens_per_param_opt": opt["tokens_per_param"].to_numpy(),
        "overtraining_ratio": (D / N) / opt["tokens_per_param"].to_numpy(),
        "L": L, "loss_penalty": L / opt["L_opt"].to_numpy() - 1.0,
    })


def allocation_fn(law, C, quantity: str = "N_opt", flops_per_token: float = 6.0, solver: str = "auto") -> Callable:
    """A pure JAX function ``params -> (n_budgets,)`` of one compute-optimal quantity, differentiable.

    ``quantity`` is ``"N_opt"``, ``"D_opt"``, ``"L_opt"`` or ``"tokens_per_param"``. Works with
    :meth:`jaxscale.BootstrapResult.derive`, :func:`jaxscale.bayes.derive` and ``jax.grad``.

    >>> import jax
    >>> f = allocation_fn("kaplan", 1e22, "N_opt")
    >>> p = dict(N_c=6.4e13, D_c=1.8e13, alpha_N=0.076, alpha_D=0.103)
    >>> round(float(f(p)[0]) / 1e10, 3)
    2.344
    """
    solver = validate.choice(solver, "solver", SOLVERS)
    quantity = validate.choice(quantity, "quantity", QUANTITIES)
    log_ck = jnp.log(jnp.asarray(_budgets(C)) / _scalar(flops_per_token, "flops_per_token"))
    lw = get(law)
    names = QUANTITIES
    one = _compute_optimal_one(lw, lw.name == "chinchilla" and solver != "numerical")

    def fn(p):
        cols = [q.transform_fn.to_fit(jnp.asarray(p[q.name], dtype=float)) for q in lw.params]
        out = jax.vmap(one, in_axes=(None, 0))(jnp.stack(cols), log_ck)
        if quantity == "tokens_per_param":
            return jnp.exp(out[:, 1] - out[:, 0])
        return jnp.exp(out[:, names.index(quantity)])

    fn.__name__ = quantity
    return fn


# --------------------------------------------------------------------------- inference-aware


def _irreducible_log(law: Law, logx_fn, theta):
    return law.log_predict(theta, logx_fn(jnp.asarray(_LOG_HUGE), jnp.asarray(_LOG_HUGE)))


def _inference_one(law: Law, k: float, k_inf: float):
    logx = _covariate_fn(law, "inference_optimal")
    closed = law.name == "chinchilla"

    def tokens_for(theta, u, log_target):
        """log D with L(e^u, D) = target; NaN if unreachable at this N."""
        if closed:
            log_E, log_A, log_B, alpha, beta = theta
            gap = jnp.exp(log_target) - jnp.exp(log_E) - jnp.exp(log_A - alpha * u)
            return jnp.where(gap > 0, (log_B - jnp.log(jnp.where(gap > 0, gap, 1.0))) / beta, jnp.nan)
        return _bisect_decreasing(lambda v: law.log_predict(theta, logx(u, v)) - log_target, 0.0, _LOG_HUGE)

    def solve(theta, log_target, log_tinf):
        def log_cost(u):
            v = tokens_for(theta, u, log_target)
            # log(k N D + k_inf N T) = u + log(k D + k_inf T)
            return u + jnp.logaddexp(jnp.log(k) + v, jnp.log(k_inf) + log_tinf)

        reachable = _irreducible_log(law, logx, theta) < log_target
        u, ok = line_optimum(log_cost, 0.0, 80.0)
        v = tokens_for(theta, u, log_target)
        ok = ok & reachable & jnp.isfinite(v)
        return jnp.where(ok, jnp.stack([u, v]), jnp.nan)

    return solve


def inference_optimal(law, fit, target_loss, inference_tokens, *, flops_per_token: float = 6.0,
                      inference_flops_per_token: float = 2.0, level: float = 0.9) -> Allocation:
    """Cheapest ``(N, D)`` reaching ``target_loss`` when the model will serve ``inference_tokens``.

    Minimises ``k N D + k_inf N T_inf`` (training plus inference FLOPs; ``k =
    6``, ``k_inf = 2`` by default) subject to ``L(N, D) = target_loss``
    (Sardana & Frankle 2023, arXiv:2401.00448). Columns ``N_opt, D_opt,
    tokens_per_param, train_flops, inference_flops, total_flops``. Rows broadcast over
    ``target_loss`` and ``inference_tokens``. Besides the optimum, each row
    reports the compute-optimal model reaching the same loss (``*_loss_opt``:
    the ``T_inf = 0`` solution) with its total cost under the same inference
    demand, the saving ``total_flops_loss_opt / total_flops``, and the
    over-training ratio: tokens per parameter divided by the compute-optimal
    tokens per parameter at the same training compute.

    Raises if the target is at or below the law's irreducible loss (the loss
    as N, D grow without bound) at the point estimate; draws for which it is
    out of reach are flagged and excluded.

    Examples
    --------
    >>> from jaxscale.published import EPOCH as epoch   # Epoch AI (2024)
    >>> t = inference_optimal("chinchilla", epoch, 2.0, [0.0, 2e13]).table
    >>> bool(t["N_opt"][1] < t["N_opt"][0])  # serving 20T tokens: a smaller model, trained longer
    True
    >>> round(float(t["overtraining_ratio"][0]), 3), round(float(t["tokens_per_param"][1]))
    (1.0, 254)
    """
    target, tinf = _broadcast(target_loss=_positive(target_loss, "target_loss"),
                              inference_tokens=_numbers(inference_tokens, "inference_tokens"))
    if not np.all(np.isfinite(tinf)) or np.any(tinf < 0):
        raise ArgumentError(f"inference_tokens must be finite and >= 0; got {tinf.tolist()}.")
    k = _scalar(flops_per_token, "flops_per_token")
    k_inf = _scalar(inference_flops_per_token, "inference_flops_per_token")
    level = validate.level(level)
    src = _source(law, fit)
    pt_theta, dr_theta = thetas(src)
    logx = _covariate_fn(src.law, "inference_optimal")
    floor = float(np.exp(_irreducible_log(src.law, logx, pt_theta)))
    low = target <= floor
    if low.any():
        raise AllocationError(
            f"target_loss {target[low].tolist()} is at or below the irreducible loss {floor:.6g} of the fitted "
            f"{src.law.name!r} law (its loss as N and D grow without bound): it cannot be reached at any size.")
    fn = _inference_one(src.law, float(k), float(k_inf))
    # T_inf = 0 gives the loss-matched compute-optimal model; log(0) is handled as -inf by logaddexp.
    log_t, log_tinf = jnp.log(target), jnp.log(jnp.where(tinf > 0, tinf, 0.0))
    pt, dr = batched(fn, pt_theta, dr_theta, log_t, log_tinf)
    pt0, dr0 = batched(fn, pt_theta, dr_theta, log_t, jnp.full_like(log_t, -jnp.inf))
    opt_fn = _compute_optimal_one(src.law, src.law.name == "chinchilla")

    def unpack(a, a0, theta_batch):
        n, d = np.exp(a[..., 0]), np.exp(a[..., 1])
        n0, d0 = np.exp(a0[..., 0]), np.exp(a0[..., 1])
        train = k * n * d
        total = train + k_inf * n * tinf
        total0 = k * n0 * d0 + k_inf * n0 * tinf
        log_train = np.where(np.isfinite(train), np.log(np.where(train > 0, train, 1.0)), np.nan)
        opt = np.asarray(jax.vmap(jax.vmap(opt_fn, in_axes=(None, 0)), in_axes=(0, 0))(
            theta_batch, jnp.asarray(np.nan_to_num(log_train - np.log(k), nan=1.0))))
        tpp_opt = np.where(np.isfinite(log_train), np.exp(opt[..., 1] - opt[..., 0]), np.nan)
        return {"N_opt": n, "D_opt": d, "tokens_per_param": d / n, "train_flops": train, "inference_flops": k_inf * n * tinf,
                "total_flops": total, "N_loss_opt": n0, "D_loss_opt": d0, "total_flops_loss_opt": total0,
                "saving": total0 / total, "overtraining_ratio": (d / n) / tpp_opt}

    point = unpack(pt[None], pt0[None], pt_theta[None])
    point = {key: v[0] for key, v in point.items()}
    if not np.all(np.isfinite(pt)):
        raise AllocationError("No interior inference-optimal allocation at the point estimate for rows "
                              f"{np.flatnonzero(~np.all(np.isfinite(pt), -1)).tolist()}.")
    draws = None if dr is None else unpack(dr, dr0, dr_theta)
    settings = {"flops_per_token": float(k), "inference_flops_per_token": float(k_inf)}
    return summarise("inference_optimal", src, {"target_loss": target, "inference_tokens": tinf}, point, draws,
                      level, settings)


# --------------------------------------------------------------------------- data-constrained


def _data_constrained_one(law: Law):
    logx = _covariate_fn(law, "data_constrained_optimal", need=("N", "D", "U"))

    def solve(theta, log_ck, log_u):
        def f(u):
            log_d = log_ck - u
            return law.log_predict(theta, logx(u, log_d, jnp.minimum(log_u, log_d)))

        u, ok = line_optimum(f, 0.0, log_ck)
        log_d = log_ck - u
        log_l = f(u)
        return jnp.where(ok, jnp.stack([u, log_d, log_l]), jnp.nan)

    return solve


def data_constrained_optimal(law, fit, C, unique_tokens, flops_per_token: float = 6.0, *,
                             level: float = 0.9) -> Allocation:
    """Optimal ``N``, ``D`` and epochs for budget(s) ``C`` with ``unique_tokens`` of data.

    Minimises Muennighoff et al.'s (2023) data-constrained loss on ``k N D =
    C`` with ``U = min(unique_tokens, D)`` (fresh data is used first). Rows
    broadcast over ``C`` and ``unique_tokens``. The law must have covariates
    ``N, D, U`` (``data_constrained``). Reports ``epochs = D/U`` besides the
    usual columns; the minimum is searched over all ``N`` on the budget line
    (Muennighoff et al.'s README searches within a factor 3 of the
    Chinchilla-optimal ``N``).

    Examples
    --------
    >>> import numpy as np
    >>> p = dict(E=np.exp(0.6254804), A=np.exp(6.255414), B=np.exp(7.3049974), alpha=0.3526596,
    ...          beta=0.3526596, R_D=15.387756, R_N=5.309743)   # Muennighoff et al. (2023)
    >>> t = data_constrained_optimal("data_constrained", p, 1e22, 25e9).table
    >>> round(float(t["epochs"][0]), 1)
    9.5
    """
    C, U = _broadcast(C=_budgets(C), unique_tokens=_positive(unique_tokens, "unique_tokens"))
    k = _scalar(flops_per_token, "flops_per_token")
    level = validate.level(level)
    src = _source(law, fit)
    fn = _data_constrained_one(src.law)
    pt, dr = batched(fn, *thetas(src), jnp.log(C / k), jnp.log(U))

    def unpack(a):
        n, d, lo = np.exp(a[..., 0]), np.exp(a[..., 1]), np.exp(a[..., 2])
        return {"N_opt": n, "D_opt": d, "L_opt": lo, "tokens_per_param": d / n, "epochs": d / U}

    if not np.all(np.isfinite(pt)):
        raise AllocationError("No interior data-constrained optimum at the point estimate for rows "
                              f"{np.flatnonzero(~np.all(np.isfinite(pt), -1)).tolist()}.")
    return summarise("data_constrained_optimal", src, {"compute": C, "unique_tokens": U}, unpack(pt),
                      None if dr is None else unpack(dr), level, {"flops_per_token": float(k)})


__all__ = ["Allocation", "AllocationError", "allocation_fn", "batched", "compute_optimal", "data_constrained_optimal",
           "inference_optimal", "line_optimum", "overtraining", "read_fit", "summarise", "thetas"]
