r"""Intervention comparison: how much compute a treatment saves over a baseline, as an effective-compute multiplier.

:func:`compare` fits one law to two arms of matched training runs (a baseline and a treatment: another data mix,
architecture or learning-rate schedule) and reports, at each budget ``C``, the multiplier ``k(C)`` such that the
treatment trained with ``C`` FLOPs reaches the loss the baseline reaches with ``k(C) x C``: ``k > 1`` means the
treatment is worth ``k`` times its compute, ``k < 1`` that it costs compute.

Design:

* **One joint fit.** The arms are stacked into one data set with an arm covariate (1 for the baseline, ``e`` for
  the treatment: covariates enter as logs, so its log is 0 or 1), and fitted with a joint law (:func:`joint_law`)
  whose parameters are the union of the arms': each shared parameter once, each other one per arm
  (``A[baseline]``, ``A[treatment]``). By default the exponents (``Param.kind == "exponent"``) are shared and the
  coefficients are not: the treatment moves the law up or down, not its slopes. With nothing shared the joint fit
  is the two independent fits at once (the objective separates).
* **Loss at a budget.** For a law of ``N`` and ``D`` each arm's loss at ``C`` is its compute-optimal loss: the
  minimum over ``N`` on ``C = k N D`` (``k = flops_per_token``), by the line search of
  :func:`jaxscale.allocate.line_optimum`, the one :func:`jaxscale.allocate.compute_optimal` uses. A law of ``C``
  alone (``power`` with ``resource="C"``) is evaluated at ``C``. For a law of loss curves across sizes
  (``curve_nd``: ``N`` and the schedule covariates) the loss at ``(N, D)`` is that of the end of a run of ``D``
  tokens under the arm's own schedule (see :func:`end_of_run`).
* **The multiplier** solves ``L_baseline(k C) = L_treatment(C)`` for ``log k`` by bisection on
  ``[-log K_MAX, log K_MAX]`` (both losses decrease with compute); a treatment better than the baseline can ever
  be (below its loss as ``C`` grows without bound, or needing more than :data:`K_MAX` times the compute) gives
  ``k = inf``, one worse than the baseline at ``C / K_MAX`` gives ``k = 0``.
* **Paired bootstrap.** A run of the baseline and a run of the treatment are matched when they share ``(N, D)``
  (within ``match_rtol``; a run's ``D`` is its final checkpoint's) or a label (``match="run"``: the same run name
  in both arms, ``match="group"``: the same group label). All the runs of both arms that match one another form
  one pair (a stratum: reruns join their pair). Each replicate draws as many pairs as there are, with replacement
  (whole runs with all their checkpoints), refits the joint law on them (:func:`jaxscale.uncertainty.refit`: every
  replicate from the point fit's distinct optima, in one batched solve) and recomputes ``k(C)`` at every budget;
  the interval is the equal-tailed ``level`` quantile interval over the replicates that succeeded. A replicate
  whose pairs cannot identify an arm's parameters, whose fit failed, or whose ``k`` cannot be computed is flagged
  and left out, never aborting the others. Replicate ``r`` draws from ``jax.random.fold_in(key, r)``: the same key
  gives the same result.

Runs of either arm that match no run of the other are left out of the fit (with a warning listing them): the
comparison is paired.

Measured (2 CPU cores; ``tests/test_compare.py``): WSD against cosine on the OLMo ladder, ``chinchilla`` on the
final C4 losses of the 20 matched pairs (190M-1B, 0.5-10xC), 200 resamples, 90% intervals: k = 1.18 [1.07, 1.32]
at 1e19 FLOPs, 1.19 [1.09, 1.26] at 1e20, 1.21 [1.02, 1.28] at 1e21, 1.22 [0.91, 1.38] at 1e22 (extrapolated);
with ``shared="none"`` 1.18, 1.19, 1.08, 0.86: the independent fits' exponents disagree off the data. A call takes
~7 s once compiled (the joint fit from the 4,500 grid starts ~4 s, 200 x 16 refits ~3 s) and ~20-30 s in a
fresh process (the solver is compiled for the fit and for the weighted refits). ``curve_nd`` on all 2,294
checkpoints: ~70 s for the joint fit, ~2 s per replicate; its end-of-run covariates are an approximation
(:func:`end_of_run`), so treat its multipliers far from the ladder's runs with care.

>>> from jaxscale.compare import joint_law
>>> joint_law("chinchilla").shared
('alpha', 'beta')
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import json
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from jaxscale import validate
from jaxscale._io import json_safe, text_or_write
from jaxscale._version import __version__
from jaxscale.allocate import AllocationError, line_optimum
from jaxscale.data import ScalingData
from jaxscale.errors import ArgumentError, DataError, FitError, LawError
from jaxscale.fit import FitResult, fit
from jaxscale.laws import Law, Param, get
from jaxscale.uncertainty import AUTO_MAX_STARTS, distinct_optima, refit

#: The two arms, in the order of every result.
ARMS = ("baseline", "treatment")
#: The name of the arm covariate of the joint data (1 for the baseline, e for the treatment).
ARM = "arm"
#: ``shared=`` by name: the parameters of kind ``"exponent"``, or none (independent fits).
SHARED = ("exponents", "none")
#: ``match=``: ``None`` matches runs on (N, D); ``"run"`` and ``"group"`` on those labels.
MATCH = (None, "run", "group")
#: Default relative tolerance of matching on (N, D): runs planned alike differ by a few steps across schedules
#: (on the OLMo ladder the WSD and cosine runs of one size and multiplier differ in D by up to 0.7%).
MATCH_RTOL = 0.01
#: The multiplier is solved in ``[1 / K_MAX, K_MAX]``; beyond it it is reported as 0 or inf.
K_MAX = 1e6
#: Default number of paired-bootstrap resamples.
RESAMPLES = 200
_LOG_K_MAX = float(np.log(K_MAX))
_BISECT_ITERS = 64
#: Schedule covariates :func:`end_of_run` can give a run of D tokens: ``S1_tokens`` scales with D, the annealing
#: areas are interpolated in log D among the arm's runs.
END_OF_RUN = ("S1_tokens", "S2_tokens", "S2_peak")
_FRONTIER_COVARIATES = ("N", "D", "C") + END_OF_RUN


# --------------------------------------------------------------------------- the joint law


@dataclasses.dataclass(frozen=True)
class _JointLogPredict:
    """The base law's log prediction with the parameters of the point's arm (its last covariate: log 0 or 1)."""

    base: Any
    baseline: tuple[int, ...]
    treatment: tuple[int, ...]

    def __call__(self, theta, logx):
        is_treatment = logx[-1] > 0.5
        th = jnp.where(is_treatment, theta[np.asarray(self.treatment)], theta[np.asarray(self.baseline)])
        return self.base(th, logx[:-1])


@dataclasses.dataclass(frozen=True)
class _JointLogPredictJac:
    """The fused form of :class:`_JointLogPredict` (``Law.log_predict_jac``) from the base law's: each point's
    Jacobian plane goes to its arm's copy of a parameter (and to the shared one, for a shared parameter)."""

    base: Any
    baseline: tuple[int, ...]
    treatment: tuple[int, ...]

    def __call__(self, theta, logx):
        is_treatment = logx[-1] > 0.5
        th = tuple(theta[b] if b == t else jnp.where(is_treatment, theta[t], theta[b])
                   for b, t in zip(self.baseline, self.treatment))
        lp, J = self.base(th, logx[:-1])
        planes: list = [None] * len(theta)
        for k, (b, t) in enumerate(zip(self.baseline, self.treatment)):
            if b == t:
                planes[b] = J[k]
            else:
                planes[b] = jnp.where(is_treatment, 0.0, J[k])
                planes[t] = jnp.where(is_treatment, J[k], 0.0)
        return lp, tuple(planes)


@dataclasses.dataclass(frozen=True)
class _JointStarts:
    """The base law's (data-aware) starts on the pooled arms, each arm's copy of a parameter starting alike."""

    base: Law
    columns: tuple[int, ...]

    def __call__(self, logx, logy):
        return self.base.default_starts(np.asarray(logx)[:, :-1], logy)[:, list(self.columns)]


class JointLaw(NamedTuple):
    """A law fitted to two arms at once (see :func:`joint_law`).

    ``law`` is the joint :class:`~jaxscale.laws.Law` (covariates: the base law's and :data:`ARM`); ``base`` the
    law of one arm; ``shared`` the base parameters the arms share; ``index[i]`` the joint column of each base
    parameter for arm ``ARMS[i]``.
    """

    law: Law
    base: Law
    shared: tuple[str, ...]
    index: tuple[tuple[int, ...], tuple[int, ...]]

    def arm_theta(self, theta, arm: str) -> np.ndarray:
        """An arm's base-law fitting coordinates ``(..., P_base)`` from joint ones ``(..., P_joint)``."""
        return np.asarray(theta)[..., list(self.index[ARMS.index(arm)])]

    def arm_params(self, params: Mapping[str, float], arm: str) -> dict[str, float]:
        """An arm's base-law parameters (natural scale) from the joint law's."""
        names = self.law.param_names
        return {p: float(params[names[j]]) for p, j in zip(self.base.param_names, self.index[ARMS.index(arm)])}

    def joint_fixed(self, fixed: Mapping[str, float]) -> dict[str, float]:
        """Base-law fixed values as the joint law's: a parameter that is not shared is fixed in both arms."""
        names = self.law.param_names
        out = {}
        for p, v in fixed.items():
            i = self.base.param_names.index(p)
            for arm in range(2):
                out[names[self.index[arm][i]]] = v
        return out


def shared_names(law, shared="exponents") -> tuple[str, ...]:
    """The parameters of ``law`` that ``shared`` names: ``"exponents"`` (those of kind ``"exponent"``), ``"none"``,
    or a list of parameter names.

    >>> shared_names("chinchilla"), shared_names("chinchilla", "none"), shared_names("chinchilla", ["beta", "E"])
    (('alpha', 'beta'), (), ('E', 'beta'))
    """
    law = get(law)
    if isinstance(shared, str):
        shared = validate.choice(shared, "shared", SHARED)
        return tuple(p.name for p in law.params if shared == "exponents" and p.kind == "exponent")
    if not isinstance(shared, Sequence) or not all(isinstance(s, str) for s in shared):
        raise ArgumentError(f"shared must be 'exponents', 'none' or a list of parameter names of law {law.name!r} "
                            f"({list(law.param_names)}); got {shared!r}.")
    unknown = [s for s in shared if s not in law.param_names]
    if unknown:
        raise ArgumentError(f"shared names {unknown}, not parameters of law {law.name!r}; it has "
                            f"{list(law.param_names)}.")
    return tuple(p for p in law.param_names if p in shared)


def joint_law(law, shared="exponents") -> JointLaw:
    """The law of two arms fitted at once: the shared parameters once, every other one per arm.

    The joint law's covariates are the base law's and :data:`ARM` (1 for a baseline point, ``e`` for a
    treatment point); its parameters are the base law's in order, those not shared renamed ``name[baseline]``,
    then the treatment's copies ``name[treatment]``. Its default starts are the base law's on the pooled data, each
    arm's copy starting where the other's does. Two joint laws built alike compare and hash equal (they share
    compiled solvers). A base law with a fused Jacobian (``log_predict_jac``) gives the joint law one too.

    >>> j = joint_law("chinchilla")
    >>> j.law.param_names
    ('E[baseline]', 'A[baseline]', 'B[baseline]', 'alpha', 'beta', 'E[treatment]', 'A[treatment]', 'B[treatment]')
    >>> j.law.covariates, j.index
    (('N', 'D', 'arm'), ((0, 1, 2, 3, 4), (5, 6, 7, 3, 4)))
    >>> joint_law("chinchilla") == j
    True
    """
    base = get(law)
    names = shared_names(base, shared)
    params: list[Param] = []
    index_b: list[int] = []
    for p in base.params:
        index_b.append(len(params))
        params.append(p if p.name in names else p._replace(name=f"{p.name}[baseline]"))
    index_t = list(index_b)
    for i, p in enumerate(base.params):
        if p.name not in names:
            index_t[i] = len(params)
            params.append(p._replace(name=f"{p.name}[treatment]"))
    columns = tuple(index_b.index(j) if j in index_b else index_t.index(j) for j in range(len(params)))
    shown = ", ".join(names) if names else "nothing"
    joint = Law(
        name=f"{base.name}[arms]",
        log_predict=_JointLogPredict(base.log_predict, tuple(index_b), tuple(index_t)),
        params=tuple(params),
        covariates=(*base.covariates, ARM),
        formula=f"{base.formula} per arm (baseline, treatment); shared: {shown}",
        reference=base.reference,
        starts_fn=_JointStarts(base, columns),
        options=(*base.options, ("shared", names)),
        log_predict_jac=(None if base.log_predict_jac is None else
                         _JointLogPredictJac(base.log_predict_jac, tuple(index_b), tuple(index_t))),
    )
    return JointLaw(joint, base, names, (tuple(index_b), tuple(index_t)))


# --------------------------------------------------------------------------- loss at a budget


def frontier_kind(law) -> str:
    """How :func:`compare` gets a law's loss at a budget: ``"C"`` (a law of C alone: at C) or ``"N"`` (the
    minimum over N on C = k N D; the law needs N and one of D, C or ``S1_tokens``, and no covariates but those and
    :data:`END_OF_RUN`). Any other law is a :class:`~jaxscale.errors.LawError`.

    >>> import jaxscale
    >>> frontier_kind("chinchilla"), frontier_kind(jaxscale.laws.get("power", resource="C"))
    ('N', 'C')
    """
    law = get(law)
    cov = set(law.covariates)
    if cov == {"C"}:
        return "C"
    if "N" in cov and cov & {"D", "C", "S1_tokens"} and cov <= set(_FRONTIER_COVARIATES):
        return "N"
    raise LawError(f"compare needs a law whose loss at a compute budget is defined: one of N and D (compared on the "
                   f"compute-optimal frontier, e.g. 'chinchilla'), of C alone (e.g. power with resource='C'), or of N "
                   f"and the schedule covariates {list(END_OF_RUN)} ('curve_nd'); law {law.name!r} has covariates "
                   f"{list(law.covariates)}.")


def end_of_run(law, data: ScalingData) -> dict[str, Any]:
    """The end-of-run schedule covariates of an arm, as functions of a run's tokens D (for laws such as
    ``curve_nd``): what a run of D tokens under the arm's schedule ends with.

    From the final checkpoint of each run of ``data``: ``S1_tokens`` (peak-LR tokens) is ``rho x D`` with ``rho``
    the runs' median ``S1_tokens / D`` (the schedule's mean LR relative to its peak, the same for any length);
    ``S2_peak`` and ``S2_tokens`` (annealing areas, which saturate as runs grow longer) are interpolated linearly
    in log D between the runs' values, and held at the shortest and longest run's value outside them. The arm's
    schedule is taken as design, not estimated: the bootstrap keeps these fixed.

    Returns ``{covariate: log rho}`` for ``S1_tokens`` and ``{covariate: (log D knots, log values)}`` for the
    areas (empty for a law without them).
    """
    law = get(law)
    needed = [c for c in law.covariates if c in END_OF_RUN]
    if not needed:
        return {}
    if "D" not in data.covariates:
        raise DataError(f"law {law.name!r}: the end-of-run covariates {needed} of a run of D tokens are read from the "
                        f"arm's runs, which need D (tokens) as well.")
    runs = _runs(data, "arm")
    final = runs.final
    log_d = np.log(data.covariates["D"][final])
    out: dict[str, Any] = {}
    for c in needed:
        log_v = np.log(data.covariates[c][final])
        if c == "S1_tokens":
            out[c] = jnp.asarray(float(np.median(log_v - log_d)))
            continue
        xs, inverse = np.unique(log_d, return_inverse=True)
        ys = np.bincount(inverse.ravel(), weights=log_v) / np.bincount(inverse.ravel())
        if xs.size == 1:
            xs, ys = np.array([xs[0], xs[0] + 1.0]), np.array([ys[0], ys[0]])
        out[c] = (jnp.asarray(xs), jnp.asarray(ys))
    return out


def _logx_at(law: Law, log_n, log_d, log_c, ends):
    cols = []
    for c in law.covariates:
        if c == "N":
            cols.append(log_n)
        elif c == "D":
            cols.append(log_d)
        elif c == "C":
            cols.append(log_c)
        elif c == "S1_tokens":
            cols.append(ends[c] + log_d)
        else:
            xs, ys = ends[c]
            cols.append(jnp.interp(log_d, xs, ys))
    return jnp.stack(cols)


def _log_loss_fn(law: Law, kind: str, flops_per_token: float):
    """``log_loss(theta, log_C, ends)``: an arm's log loss at budget C (NaN without an interior optimum)."""
    log_k = float(np.log(flops_per_token))

    def log_loss(theta, log_c, ends):
        if kind == "C":
            return law.log_predict(theta, jnp.stack([log_c]))
        log_ck = log_c - log_k
        f = lambda u: law.log_predict(theta, _logx_at(law, u, log_ck - u, log_c, ends))  # noqa: E731
        u, ok = line_optimum(f, 0.0, log_ck)
        return jnp.where(ok, f(u), jnp.nan)

    return log_loss


@functools.lru_cache(maxsize=16)
def _multiplier_fn(law: Law, kind: str, flops_per_token: float):
    """Jitted ``(theta_b (R, P), theta_t (R, P), log_C (B,), ends_b, ends_t) -> (log k, log L_b, log L_t)``, each
    ``(R, B)``."""
    log_loss = _log_loss_fn(law, kind, flops_per_token)

    def one(theta_b, theta_t, log_c, ends_b, ends_t):
        target = log_loss(theta_t, log_c, ends_t)
        g = lambda lk: log_loss(theta_b, log_c + lk, ends_b) - target  # noqa: E731  (decreasing in log k)

        def halve(_, ab):
            a, b = ab
            m = 0.5 * (a + b)
            above = g(m) > 0
            return jnp.where(above, m, a), jnp.where(above, b, m)

        lo, hi = jnp.asarray(-_LOG_K_MAX), jnp.asarray(_LOG_K_MAX)
        a, b = jax.lax.fori_loop(0, _BISECT_ITERS, halve, (lo, hi))
        g_lo, g_hi = g(lo), g(hi)
        log_k = jnp.where(g_hi > 0, jnp.inf, jnp.where(g_lo <= 0, -jnp.inf, 0.5 * (a + b)))
        ok = jnp.isfinite(target) & jnp.isfinite(g_lo) & jnp.isfinite(g_hi)
        return jnp.where(ok, log_k, jnp.nan), log_loss(theta_b, log_c, ends_b), target

    over_budgets = jax.vmap(one, in_axes=(None, None, 0, None, None))
    return jax.jit(jax.vmap(over_budgets, in_axes=(0, 0, None, None, None)))


# --------------------------------------------------------------------------- runs and pairs


class _Runs(NamedTuple):
    labels: np.ndarray     # (n_runs,) str
    codes: np.ndarray      # (n_rows,) run index of each row
    N: np.ndarray          # (n_runs,) or None
    D: np.ndarray          # (n_runs,) final D, or None
    group: np.ndarray      # (n_runs,) str, or None
    final: np.ndarray      # (n_runs,) row of each run's final checkpoint


def _runs(data: ScalingData, arm: str) -> _Runs:
    """The runs of an arm: by its ``run`` labels (rows are checkpoints), else one run per row."""
    n = len(data)
    if data.run is None and data.step is not None:   # checkpoints of one run
        labels, codes = np.array(["run"], dtype=object), np.zeros(n, dtype=np.int64)
    elif data.run is None:
        labels = np.array([f"row {r}" for r in data.rows], dtype=object)
        codes = np.arange(n)
    else:
        raw = np.asarray(data.run).astype(str)
        labels, first, codes = np.unique(raw, return_index=True, return_inverse=True)
        order = np.argsort(first)                          # runs in the order they first appear
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        labels, codes = labels[order].astype(object), rank[codes.ravel()]
    m = len(labels)
    D = data.covariates.get("D")
    if data.step is not None:
        key = data.step
    else:
        key = D if D is not None else np.arange(n, dtype=float)
    order = np.lexsort((np.arange(n), key, codes))        # by run, then key, then row
    last = np.flatnonzero(np.append(codes[order][1:] != codes[order][:-1], True))
    final = order[last]                                   # per run: the last row of its largest key
    N = data.covariates.get("N")
    if N is not None:
        lo, hi = np.full(m, np.inf), np.full(m, -np.inf)
        np.minimum.at(lo, codes, N)
        np.maximum.at(hi, codes, N)
        bad = np.flatnonzero(hi > lo * (1 + 1e-9))
        if bad.size:
            raise DataError(f"{arm}: run {labels[bad[0]]!r} has more than one N ({lo[bad[0]]:.6g} and "
                            f"{hi[bad[0]]:.6g}); every checkpoint of a run has its run's N.")
        N = hi
    if D is not None:
        D = np.full(m, -np.inf)
        np.maximum.at(D, codes, data.covariates["D"])
    group = None
    if data.group is not None:
        g = np.asarray(data.group).astype(str)
        group = g[final].astype(object)
        bad = np.flatnonzero(g != group[codes])
        if bad.size:
            raise DataError(f"{arm}: run {labels[codes[bad[0]]]!r} has more than one group label "
                            f"({group[codes[bad[0]]]!r} and {g[bad[0]]!r}).")
    return _Runs(labels, codes, N, D, group, final)


def _shown_runs(runs: _Runs, idx, match) -> str:
    idx = list(idx)[:4]
    if match is None:
        items = [f"{runs.labels[i]} (N={runs.N[i]:.3g}, D={runs.D[i]:.3g})" for i in idx]
    elif match == "group":
        items = [f"{runs.labels[i]} (group {runs.group[i]!r})" for i in idx]
    else:
        items = [str(runs.labels[i]) for i in idx]
    return ", ".join(items) + (", ..." if len(runs.labels) > 4 else "")


def _match(rb: _Runs, rt: _Runs, match, rtol: float):
    """Strata of matched runs: ``(baseline run indices, treatment run indices)`` per pair, and the unmatched runs
    of each arm."""
    nb, nt = len(rb.labels), len(rt.labels)
    if match is None:
        for arm, r in zip(ARMS, (rb, rt)):
            if r.N is None or r.D is None:
                raise DataError(f"matching runs on (N, D) needs N and D in both arms; the {arm} lacks "
                                f"{'N' if r.N is None else 'D'}. Give it, or match on a label: match='run' or "
                                f"match='group'.")
        tol = float(np.log1p(rtol))
        close = ((np.abs(np.log(rb.N)[:, None] - np.log(rt.N)[None, :]) <= tol)
                 & (np.abs(np.log(rb.D)[:, None] - np.log(rt.D)[None, :]) <= tol))
    else:
        lb, lt = (rb.labels, rt.labels) if match == "run" else (rb.group, rt.group)
        for arm, lab in zip(ARMS, (lb, lt)):
            if lab is None:
                raise DataError(f"match='group' needs a group label in both arms; the {arm} has none (map one: "
                                f"group=<column>).")
        close = np.asarray(lb, dtype=str)[:, None] == np.asarray(lt, dtype=str)[None, :]
    parent = list(range(nb + nt))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in zip(*np.nonzero(close)):
        a, b = find(int(i)), find(nb + int(j))
        if a != b:
            parent[b] = a
    roots = [find(i) for i in range(nb + nt)]
    strata, seen = [], {}
    for i in range(nb):
        if roots[i] not in seen and any(roots[nb + j] == roots[i] for j in range(nt)):
            seen[roots[i]] = len(strata)
            strata.append(([], []))
    for i in range(nb):
        if roots[i] in seen:
            strata[seen[roots[i]]][0].append(i)
    for j in range(nt):
        if roots[nb + j] in seen:
            strata[seen[roots[nb + j]]][1].append(j)
    unmatched_b = [i for i in range(nb) if roots[i] not in seen]
    unmatched_t = [j for j in range(nt) if roots[nb + j] not in seen]
    if not strata:
        how = (f"in (N, D) (within a relative {rtol:g})" if match is None else f"by its {match!r} label")
        raise DataError(f"no run of the treatment matches a baseline run {how}: baseline runs "
                        f"{_shown_runs(rb, range(nb), match)}; treatment runs {_shown_runs(rt, range(nt), match)}. "
                        + ("Match on a label (match='run' or 'group') or raise match_rtol."
                           if match is None else "Give both arms the same labels, or match on (N, D)."))
    return strata, unmatched_b, unmatched_t


def _identified(weights, logx, n_free) -> np.ndarray:
    """Per row of ``weights``: whether the weighted points identify a law of ``n_free`` parameters (every
    covariate with 2 distinct values, at least ``n_free`` distinct points)."""
    present = (weights > 0).T

    def distinct(codes):
        hit = np.zeros((int(codes.max()) + 1, present.shape[1]), bool)
        np.logical_or.at(hit, codes, present)
        return hit.sum(0)

    ok = np.ones(weights.shape[0], bool)
    for j in range(logx.shape[1]):
        ok &= distinct(np.unique(logx[:, j], return_inverse=True)[1].ravel()) >= 2
    return ok & (distinct(np.unique(logx, axis=0, return_inverse=True)[1].ravel()) >= n_free)


# --------------------------------------------------------------------------- result


@dataclass(eq=False)
class CompareResult:
    """The outcome of :func:`compare`.

    Attributes
    ----------
    multiplier
        DataFrame indexed by budget ``compute`` (FLOPs): ``estimate`` (``k(C)`` at the joint fit), ``lo`` and
        ``hi`` (the ``level`` paired-bootstrap interval), ``loss_baseline`` and ``loss_treatment`` (each arm's
        loss at ``C`` at the fit: compute-optimal for a law of N and D) and ``n_failed`` (replicates without a
        multiplier at that budget). ``inf`` (``0``): the baseline cannot reach the treatment's loss (reaches it at
        any compute) within :data:`K_MAX`.
    params
        ``{"baseline": {...}, "treatment": {...}}``: each arm's parameters of the law (natural scale).
    fit
        The joint fit (:class:`~jaxscale.FitResult` of :func:`joint_law`'s law on the stacked arms).
    draws
        ``(resamples, budgets)`` multipliers of every replicate (NaN where it failed).
    replicates
        Per replicate: ``status`` (``converged``, ``max_iter``; failed: ``diverged``, ``nonfinite``,
        ``unidentified``) and the objective.
    pairs
        The matched pairs: the runs of each arm in it, with N and D (a pair's first baseline run's).
    unmatched
        ``{"baseline": [...], "treatment": [...]}``: runs matched by no run of the other arm (left out).
    n_pairs, level, settings, seconds
        Number of pairs, the interval level, the settings and provenance, the time taken.
    """

    law: Law
    shared: tuple[str, ...]
    multiplier: pd.DataFrame
    params: dict[str, dict[str, float]]
    fit: FitResult
    draws: np.ndarray
    replicates: pd.DataFrame
    pairs: pd.DataFrame
    unmatched: dict[str, list[str]]
    level: float
    settings: dict[str, Any] = field(default_factory=dict)
    seconds: float = float("nan")

    @property
    def n_pairs(self) -> int:
        return int(len(self.pairs))

    @property
    def n_resamples(self) -> int:
        return int(self.draws.shape[0])

    @property
    def n_failed(self) -> int:
        """Replicates whose fit failed (their multipliers are excluded at every budget)."""
        return int((~self.replicates["status"].isin(["converged", "max_iter"])).sum())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the multiplier per budget, both arms' parameters, the pairs, settings and provenance;
        ``None`` where a value is not finite (a multiplier of 0 or inf is ``None`` with its ``bound``)."""
        records = []
        for c, row in self.multiplier.iterrows():
            rec = {"compute": float(c)}
            for k in ("estimate", "lo", "hi"):
                v = float(row[k])
                rec[k] = v
                if v == np.inf or v == 0.0:
                    rec.setdefault("bounds", {})[k] = "above K_MAX" if v == np.inf else "below 1/K_MAX"
            rec.update(loss_baseline=float(row["loss_baseline"]), loss_treatment=float(row["loss_treatment"]),
                       n_failed=int(row["n_failed"]))
            records.append(rec)
        pairs = [{"baseline": list(r.baseline), "treatment": list(r.treatment), "N": r.N, "D": r.D}
                 for r in self.pairs.itertuples()]
        return json_safe({
            "kind": "compare",
            "law": self.law.name,
            "formula": self.law.formula,
            "shared": list(self.shared),
            "level": self.level,
            "multiplier": records,
            "params": self.params,
            "n_pairs": self.n_pairs,
            "pairs": pairs,
            "unmatched": self.unmatched,
            "n_resamples": self.n_resamples,
            "n_failed": self.n_failed,
            "objective": self.fit.objective,
            "settings": self.settings,
            "seconds": self.seconds,
        })

    def to_json(self, path: str | None = None, **kwargs) -> str | None:
        """Serialise :meth:`to_dict` (strict JSON: no NaN or Infinity); write it atomically to ``path`` if given."""
        if path is not None:
            path = validate.output_path(path, "path")
        text = json.dumps(self.to_dict(), **{"indent": 2, **kwargs, "allow_nan": False})
        return text_or_write(text, path)

    def table(self) -> str:
        """Readable summary: the multiplier per budget with its interval, then both arms' parameters."""
        s = self.settings
        pct = f"{100 * self.level:g}%"
        how = (f"(N, D) within {s['match_rtol']:g}" if s["match"] is None else f"their {s['match']!r} label")
        lines = [f"law: {self.law.name}    {self.law.formula}",
                 f"shared by both arms: {', '.join(self.shared) or 'nothing (independent fits)'}; {self.n_pairs} "
                 f"matched pairs of runs (on {how})"
                 + (f"; unmatched, left out: {sum(map(len, self.unmatched.values()))} runs" if any(
                     self.unmatched.values()) else ""),
                 f"k(C): the treatment at C reaches the loss the baseline reaches at k x C ({pct} paired-bootstrap "
                 f"interval, {self.n_resamples} resamples, {self.n_failed} failed)"]
        m = self.multiplier
        rows = pd.DataFrame({
            "compute": [f"{c:.4g}" for c in m.index],
            "k": [f"{v:.4g}" for v in m["estimate"]],
            f"{pct} interval": [f"[{lo:.4g}, {hi:.4g}]" for lo, hi in zip(m["lo"], m["hi"])],
            "loss_baseline": [f"{v:.5g}" for v in m["loss_baseline"]],
            "loss_treatment": [f"{v:.5g}" for v in m["loss_treatment"]],
        })
        lines += ["  " + line for line in rows.to_string(index=False).splitlines()]
        width = max(len(n) for n in self.law.param_names)
        lines.append(f"  {'':<{width}}  {'baseline':>12}  {'treatment':>12}")
        for n in self.law.param_names:
            mark = "  (shared)" if n in self.shared else ""
            lines.append(f"  {n:<{width}}  {self.params['baseline'][n]:>12.6g}  {self.params['treatment'][n]:>12.6g}"
                         f"{mark}")
        lines.append(f"objective {self.fit.objective:.8g} ({s['objective']}) on {self.fit.n_points} points; "
                     f"{self.seconds:.1f} s")
        return "\n".join(lines)

    def __repr__(self) -> str:
        ks = ", ".join(f"{c:.3g}: {v:.3g} [{lo:.3g}, {hi:.3g}]" for c, v, lo, hi in
                       zip(self.multiplier.index, self.multiplier["estimate"], self.multiplier["lo"],
                           self.multiplier["hi"]))
        return (f"CompareResult({self.law.name}, shared={list(self.shared)}, {self.n_pairs} pairs; k(C) {ks}; "
                f"{100 * self.level:g}% intervals over {self.n_resamples} resamples)")


def _interval(log_k: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Equal-tailed quantile interval of multipliers per budget from their logs ``(R, B)`` (NaN: failed, left
    out; +-inf: beyond K_MAX, kept, as sentinels past the bracket so quantiles between them stay defined)."""
    sentinel = np.where(np.isposinf(log_k), _LOG_K_MAX + 1, np.where(np.isneginf(log_k), -_LOG_K_MAX - 1, log_k))
    a = (1.0 - level) / 2.0
    lo, hi = np.full(log_k.shape[1], np.nan), np.full(log_k.shape[1], np.nan)
    for j in range(log_k.shape[1]):
        v = sentinel[:, j][~np.isnan(sentinel[:, j])]
        if v.size:
            lo[j], hi[j] = np.quantile(v, [a, 1.0 - a])

    def back(x):
        with np.errstate(over="ignore"):
            return np.where(x > _LOG_K_MAX, np.inf, np.where(x < -_LOG_K_MAX, 0.0, np.exp(x)))

    return back(lo), back(hi)


def _exp(log_k):
    with np.errstate(over="ignore"):
        return np.exp(log_k)


# --------------------------------------------------------------------------- compare


def compare(
    law,
    baseline,
    treatment,
    *,
    at,
    shared="exponents",
    resamples: int = RESAMPLES,
    level: float = 0.9,
    key=validate.DEFAULT_KEY,
    match: str | None = None,
    match_rtol: float = MATCH_RTOL,
    final: bool = False,
    starts="grid",
    objective: str = "huber",
    delta: float = 1e-3,
    fixed: Mapping[str, float] | None = None,
    max_iter: int = 400,
    dtype=None,
    **columns,
) -> CompareResult:
    """Effective-compute multiplier of a treatment over a baseline, with a paired-bootstrap interval.

    Fits ``law`` to both arms at once (parameters in ``shared`` common to both, the others per arm) and solves,
    at each budget ``C`` of ``at``, for ``k(C)`` with ``L_baseline(k C) = L_treatment(C)``: the treatment at ``C``
    reaches the loss the baseline reaches at ``k(C) x C`` (``k > 1``: the treatment saves compute). Each arm's
    loss at ``C`` is its compute-optimal loss (minimised over ``N`` with ``D = C / (k N)``) for a law of N and D,
    the law at ``C`` for a law of C alone. See the module docstring (:mod:`jaxscale.compare`) for the method.

    Parameters
    ----------
    law
        A law name or :class:`~jaxscale.laws.Law` of N and D (``chinchilla``, ``kaplan``), of C alone (``power``
        with ``resource="C"``), or of N and the schedule covariates (``curve_nd``, on checkpoints of runs; each
        arm's runs then give its end-of-run covariates: :func:`end_of_run`).
    baseline, treatment
        The two arms: :class:`~jaxscale.ScalingData`, DataFrames or CSV paths (``**columns`` maps roles to
        columns for both). Rows are runs, or checkpoints of runs with a ``run`` label.
    at
        Budget(s) in FLOPs, finite and > 0 (``C = k N D``, ``k`` the arms' ``flops_per_token``).
    shared
        ``"exponents"`` (default: the parameters of kind ``"exponent"``, e.g. chinchilla's ``alpha`` and
        ``beta``; the coefficients ``E, A, B`` per arm), ``"none"`` (two independent fits) or a list of parameter
        names.
    resamples
        Paired-bootstrap resamples (an integer >= 2; default :data:`RESAMPLES`).
    level
        The interval level, strictly between 0 and 1.
    key
        Int seed or ``jax.random.key``: the same key gives the same result.
    match
        How runs are paired: ``None`` (default) on ``(N, D)``, equal within a relative ``match_rtol`` (a run's D
        is its final checkpoint's); ``"run"`` on equal run labels in both arms; ``"group"`` on equal group
        labels (map a column: ``group="size_and_length"``).
    match_rtol
        Relative tolerance of matching on (N, D) (default :data:`MATCH_RTOL`, 1%).
    final
        Fit only each run's final row (its last checkpoint) instead of every row.
    starts, objective, delta, fixed, max_iter, dtype
        As for :func:`jaxscale.fit`, for the joint fit (``fixed`` names the law's parameters: a fixed parameter
        is fixed in both arms). Each replicate starts from the joint fit's distinct optima.

    Returns
    -------
    CompareResult

    Raises
    ------
    ArgumentError
        A budget that is not finite and > 0, a bad level, key, count or ``shared`` (before any data is read).
    LawError
        A law whose loss at a budget is not defined here (e.g. ``power`` in N alone, ``tissue``).
    DataError
        An arm without the law's covariates, or arms with no matched runs (the message lists runs of each).
    ~jaxscale.allocate.AllocationError
        The joint fit has no compute-optimal loss at a budget (its loss keeps falling towards N = 1 or D = 1).

    Examples
    --------
    A treatment that lowers every loss by 2% (with 0.2% noise on each run) is worth more compute than it used:

    >>> import numpy as np, jaxscale
    >>> N, tokens_per_param = np.meshgrid([1e8, 2e8, 4e8, 8e8, 1.6e9], [10.0, 20.0, 40.0, 80.0])
    >>> N, D = N.ravel(), (N * tokens_per_param).ravel()
    >>> loss = 1.8 + 400.0 / N**0.34 + 410.0 / D**0.28
    >>> noise = np.exp(np.random.default_rng(0).normal(0.0, 0.002, (2, N.size)))
    >>> baseline = jaxscale.ScalingData.from_arrays(N=N, D=D, loss=loss * noise[0])
    >>> treatment = jaxscale.ScalingData.from_arrays(N=N, D=D, loss=0.98 * loss * noise[1])
    >>> res = jaxscale.compare("chinchilla", baseline, treatment, at=[1e19, 1e20, 1e21, 1e22], resamples=100)
    >>> res.n_pairs, res.shared
    (20, ('alpha', 'beta'))
    >>> k = res.multiplier
    >>> bool(np.all(k["estimate"] > 1.2)), bool(np.all((k["lo"] <= k["estimate"]) & (k["estimate"] <= k["hi"])))
    (True, True)
    """
    t0 = time.perf_counter()
    law = get(law)
    C = validate.budgets(at, "at")
    if np.ndim(at) > 1:
        raise ArgumentError(f"at must be a budget or a 1-D list of budgets; got an array of shape {np.shape(at)}.")
    level = validate.level(level)
    resamples = validate.integer(resamples, "resamples", minimum=2)
    rkey = validate.key(key)
    if match is not None:
        validate.choice(match, "match", ("run", "group"))
    match_rtol = validate.number(match_rtol, "match_rtol", minimum=0, maximum=0.5)
    if not isinstance(final, (bool, np.bool_)):
        raise ArgumentError(f"final must be True or False; got {final!r}.")
    joint = joint_law(law, shared)
    kind = frontier_kind(law)
    fixed_base = validate.fixed(law, fixed)

    arms = {}
    for arm, data in zip(ARMS, (baseline, treatment)):
        try:
            d = ScalingData.coerce(data, **columns)
        except DataError as e:
            raise DataError(f"{arm}: {e}") from None
        try:
            d.require(law.covariates, law.name)
        except DataError as e:
            raise DataError(f"{arm}: {e}") from None
        arms[arm] = d
    kb, kt = arms["baseline"].flops_per_token, arms["treatment"].flops_per_token
    if kb != kt:
        raise ArgumentError(f"the arms differ in flops_per_token ({kb:g} and {kt:g}); C = k N D needs one k.")
    runs = {arm: _runs(d, arm) for arm, d in arms.items()}
    strata, unmatched_b, unmatched_t = _match(runs["baseline"], runs["treatment"], match, match_rtol)
    unmatched = {"baseline": [str(runs["baseline"].labels[i]) for i in unmatched_b],
                 "treatment": [str(runs["treatment"].labels[j]) for j in unmatched_t]}
    if unmatched_b or unmatched_t:
        shown = "; ".join(f"{arm}: {', '.join(v[:6])}{', ...' if len(v) > 6 else ''}"
                          for arm, v in unmatched.items() if v)
        warnings.warn(f"compare: {len(unmatched_b) + len(unmatched_t)} run(s) match no run of the other arm and are "
                      f"left out of the paired comparison ({shown}).", UserWarning, stacklevel=2)

    # the joint data: the matched runs' rows of both arms (each run's final row only with final=True)
    parts, stratum_of_row, run_labels = [], [], []
    for a, arm in enumerate(ARMS):
        r = runs[arm]
        stratum_of_run = np.full(len(r.labels), -1)
        for s, members in enumerate(strata):
            stratum_of_run[members[a]] = s
        keep = stratum_of_run[r.codes] >= 0
        if final:
            keep &= np.isin(np.arange(len(arms[arm])), r.final)
        rows = np.flatnonzero(keep)
        parts.append(arms[arm].subset(rows))
        stratum_of_row.append(stratum_of_run[r.codes[rows]])
        run_labels.append(np.array([f"{arm}:{r.labels[c]}" for c in r.codes[rows]], dtype=object))
    arms_used = dict(zip(ARMS, parts))
    stratum_of_row = np.concatenate(stratum_of_row)
    run_labels = np.concatenate(run_labels)
    cov = {c: np.concatenate([p.covariates[c] for p in parts]) for c in law.covariates}
    cov[ARM] = np.concatenate([np.ones(len(parts[0])), np.full(len(parts[1]), np.e)])
    y = np.concatenate([p.y for p in parts])
    step = (np.concatenate([p.step for p in parts]) if all(p.step is not None for p in parts) else None)
    for a in (*cov.values(), y):
        a.setflags(write=False)
    source = f"compare(baseline: {arms['baseline'].source}; treatment: {arms['treatment'].source})"
    data = ScalingData(cov, y, None, run_labels, kb, source, arms["baseline"].target_name, np.arange(len(y)), None,
                       step, None)

    ends = {arm: end_of_run(law, arms_used[arm]) for arm in ARMS}
    fixed_joint = joint.joint_fixed(fixed_base)
    k_resample, k_starts = jax.random.split(rkey)
    point = fit(joint.law, data, starts=starts, key=k_starts, objective=objective, delta=delta,
                fixed=fixed_joint or None, max_iter=max_iter, dtype=dtype, mixed_precision=False)
    # the paired bootstrap: replicate r draws the pairs from fold_in(key, r)
    n_pairs = len(strata)
    idx = np.asarray(jax.vmap(lambda r: jax.random.randint(jax.random.fold_in(k_resample, r), (n_pairs,), 0,
                                                           n_pairs))(jnp.arange(resamples, dtype=jnp.uint32)))
    counts = np.zeros((resamples, n_pairs))
    np.add.at(counts, (np.arange(resamples)[:, None], idx), 1.0)
    weights = counts[:, stratum_of_row]
    logx_all = np.log(np.stack([cov[c] for c in law.covariates], 1))
    is_t = cov[ARM] > 1.5
    n_fixed = len(fixed_base)
    identified = np.ones(resamples, bool)
    for rows in (~is_t, is_t):
        identified &= _identified(weights[:, rows], logx_all[rows], law.n_params - n_fixed)
    optima = distinct_optima(point, data, max_starts=AUTO_MAX_STARTS)
    # padded to a power of two (repeating the optima): few compiled shapes across calls, at most 2x the solves
    starts_r = optima[np.arange(1 << (len(optima) - 1).bit_length()) % len(optima)]
    status = np.full(resamples, "unidentified", dtype=object)
    obj = np.full(resamples, np.nan)
    theta = np.full((resamples, joint.law.n_params), np.nan)
    if identified.any():
        refits = refit(joint.law, data, weights[identified], starts_r, objective=objective, delta=delta,
                       fixed=fixed_joint or None, max_iter=max_iter, dtype=dtype)
        status[identified], obj[identified], theta[identified] = refits.status, refits.objective, refits.theta
    ok = (status == "converged") | (status == "max_iter")
    ok &= np.all(np.isfinite(theta), axis=1)
    # the joint fit (row 0) and every replicate in one call (failed ones as NaN: their multipliers are NaN)
    thetas = np.concatenate([point.theta[None, :], np.where(ok[:, None], theta, np.nan)])
    lk, lb, lt = (np.asarray(v) for v in _multiplier_fn(law, kind, float(kb))(
        jnp.asarray(joint.arm_theta(thetas, "baseline")), jnp.asarray(joint.arm_theta(thetas, "treatment")),
        jnp.log(jnp.asarray(C)), ends["baseline"], ends["treatment"]))
    lk_pt, lb_pt, lt_pt, log_k = lk[0], lb[0], lt[0], lk[1:]
    for arm, lv in (("baseline", lb_pt), ("treatment", lt_pt)):
        if not np.all(np.isfinite(lv)):
            raise AllocationError(f"compare: no loss at budget(s) {C[~np.isfinite(lv)].tolist()} for the {arm} at the "
                                  f"joint fit: no interior compute-optimal N (the fitted loss keeps falling towards "
                                  f"N = 1 or D = 1 on k N D = C).")
    n_bad = int((~ok).sum())
    if n_bad:
        kinds = ", ".join(f"{int((status[~ok] == s).sum())} {s}" for s in np.unique(status[~ok].astype(str)))
        warnings.warn(f"compare: {n_bad} of {resamples} bootstrap replicates failed ({kinds}) and are excluded.",
                      RuntimeWarning, stacklevel=2)
    if ok.sum() < 2:
        raise FitError(f"compare: only {int(ok.sum())} of {resamples} bootstrap replicates succeeded; need at least 2 "
                       f"(more matched pairs, or fix a parameter).")
    lo, hi = _interval(log_k, level)
    table = pd.DataFrame({"estimate": _exp(lk_pt), "lo": lo, "hi": hi, "loss_baseline": np.exp(lb_pt),
                          "loss_treatment": np.exp(lt_pt), "n_failed": np.isnan(log_k).sum(0)},
                         index=pd.Index(C, name="compute"))
    replicates = pd.DataFrame({"status": status, "objective": obj})
    replicates.index.name = "replicate"
    rb, rt = runs["baseline"], runs["treatment"]
    pairs = pd.DataFrame({
        "baseline": [tuple(str(rb.labels[i]) for i in b) for b, _ in strata],
        "treatment": [tuple(str(rt.labels[j]) for j in t) for _, t in strata],
        "N": [float(rb.N[b[0]]) if rb.N is not None else np.nan for b, _ in strata],
        "D": [float(rb.D[b[0]]) if rb.D is not None else np.nan for b, _ in strata],
    })
    settings = {
        "law": law.name,
        "law_options": dict(law.options),
        "shared": list(joint.shared),
        "match": match,
        "match_rtol": match_rtol,
        "final": bool(final),
        "frontier": "law at C" if kind == "C" else "compute-optimal: minimum over N on C = k N D",
        "flops_per_token": float(kb),
        "n_resamples": resamples,
        "resample_starts": int(len(optima)),
        "level": level,
        "key": validate.key_repr(key),
        "k_max": K_MAX,
        "objective": point.settings["objective"],
        "delta": point.settings["delta"],
        "starts": point.settings["starts"],
        "n_starts": point.n_starts,
        "fixed": dict(fixed_base),
        "dtype": point.settings["dtype"],
        "n_points": {arm: len(p) for arm, p in zip(ARMS, parts)},
        "data_fingerprint": {arm: d.fingerprint() for arm, d in arms.items()},
        "data_source": {arm: d.source for arm, d in arms.items()},
        "end_of_run": {arm: {c: (float(np.exp(v)) if np.ndim(v) == 0 else [np.exp(np.asarray(v[0])).tolist(),
                                                                             np.exp(np.asarray(v[1])).tolist()])
                             for c, v in e.items()} for arm, e in ends.items()},
        "jaxscale_version": __version__,
        "jax_version": jax.__version__,
        "backend": jax.default_backend(),
        "timestamp": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    params = {arm: joint.arm_params(point.params, arm) for arm in ARMS}
    return CompareResult(law, joint.shared, table, params, point, _exp(log_k), replicates, pairs, unmatched, level,
                         settings, time.perf_counter() - t0)


__all__ = ["ARM", "ARMS", "CompareResult", "END_OF_RUN", "JointLaw", "K_MAX", "MATCH_RTOL", "RESAMPLES", "SHARED",
           "compare", "end_of_run", "frontier_kind", "joint_law", "shared_names"]
