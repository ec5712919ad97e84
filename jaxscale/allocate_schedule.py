"""Allocation under a learning-rate schedule: compute-optimal N and D for a schedule family, and what annealing gains.

A loss-curve law (``curve_nd``: ``L = E + A/N^alpha + B/S1_tokens^beta - C*S2_peak``; ``tissue`` / ``curve`` for
one run) sees a run through its schedule covariates (:mod:`jaxscale.schedule`), so the loss a run of ``N``
parameters reaches on ``D`` tokens depends on the schedule it was trained under. Two decisions follow:

* :func:`optimal_allocation`: for a budget ``C = k N D`` and a schedule family (``"cosine:final=0.1"``,
  ``"wsd:decay=0.1,final=0.1"``, ``"constant"``, ``"linear"``), the ``N`` and ``D`` whose final checkpoint has the
  lowest predicted loss. Each candidate run has its own schedule: ``D / batch_size`` steps, a warmup (OLMo's
  ``N / batch_size`` steps by default), the family's decay.
* :func:`anneal_gain`: a constant-LR run annealed at a chosen point (a WSD branch decaying linearly from
  ``anneal_at`` tokens over ``decay_tokens``): the loss it gains against continuing at the constant LR to the same
  token count, and against stopping at the branch point.

The schedule covariates of a run's last step are sums over up to ~1e6 optimizer steps; :func:`final_areas` gives
them in closed form (pure JAX, vectorised, differentiable), so the line search of :func:`optimal_allocation`
and the draws of a bootstrap or posterior are as cheap as for ``chinchilla``. With ``x_s = eta_s / peak`` the LR
relative to its peak, warmup ``w`` steps, ``M = T - w`` steps after it and ``lambda`` Tissue et al.'s momentum:

* forward area ``S1 = sum_{s=1..T} x_s``: the warmup gives ``(w - 1)/2``; after it constant ``M + 1``, cosine and
  linear ``(M + 1)(1 + f)/2`` (the cosine terms cancel in pairs), WSD with ``n`` decay steps
  ``M + 1 - (1 - f)(n + 1)/2``;
* annealing area ``S2 = sum_i m_i``, ``m_i = lambda m_{i-1} + d_i`` (``d_i`` the LR drop at step ``i``), which sums
  to ``S2 = (sum_i d_i - R) / (1 - lambda)`` with ``R = sum_i d_i lambda^(T-i+1)``; ``sum d_i = 1 - f`` and ``R`` is
  a geometric sum: linear ``(1-f)/M * G(M)``, WSD ``(1-f)/n * G(n)`` with ``G(n) = lambda (1 - lambda^n)/(1 -
  lambda)``, cosine ``(1-f)/2 * lambda (1 + lambda^M)(1 + lambda) 2 sin^2(pi/2M) / ((1-lambda)^2 + 4 lambda
  sin^2(pi/2M))``.

They are the exact per-step sums of :func:`jaxscale.schedule.covariates` when the step counts are whole numbers
(``tests/test_allocate_schedule.py`` checks them against it to 1e-9), and their smooth continuation otherwise (the
line search moves ``N`` continuously). The multi-power law's quadrature (``mp_*``) has no such closed form:
``multi_power`` is not supported here.

>>> from jaxscale.allocate_schedule import optimal_allocation
>>> p = dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28, C=1e-4)   # illustrative
>>> cos = optimal_allocation(p, 1e21, "cosine:final=0.1", law="curve_nd").table
>>> wsd = optimal_allocation(p, 1e21, "wsd:decay=0.2,final=0.1", law="curve_nd").table
>>> round(float(cos["tokens_per_param"][0]), 1), round(float(wsd["tokens_per_param"][0]), 1)
(87.5, 83.0)
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from jaxscale import schedule as sch, validate
from jaxscale.allocate import Allocation, AllocationError, batched, line_optimum, read_fit, summarise, thetas
from jaxscale.errors import ArgumentError, DataError
from jaxscale.laws import Law

#: The covariates the closed forms give for a run's final checkpoint (``S1`` and ``S2``, in LR x steps, only
#: when the peak LR is known).
COVARIATES = ("N", "D", "S1", "S2", "S1_tokens", "S2_tokens", "S2_peak")
#: The keys of a family spec, besides its kind.
FAMILY_KEYS = ("final", "decay", "peak")
#: Named batch-size rules (tokens per optimizer step as a function of N).
BATCH_RULES = ("olmo",)
_N_GRID = 256


# --------------------------------------------------------------------------------------------------- families
class ScheduleFamily(NamedTuple):
    """A schedule without a length: the shape every run of an allocation is trained with.

    ``kind`` is one of :data:`jaxscale.schedule.KINDS`; ``final`` the last LR as a fraction of the peak (cosine,
    linear, wsd); ``decay`` the fraction of the steps the WSD decay lasts; ``peak`` the peak LR (only laws of
    ``S1``/``S2`` in LR x steps need it). Steps and warmup follow from each run's ``N`` and ``D``.

    >>> from jaxscale.allocate_schedule import ScheduleFamily
    >>> f = ScheduleFamily.parse("wsd:decay=0.2")
    >>> f, str(f)
    (ScheduleFamily(kind='wsd', final=0.1, decay=0.2, peak=None), 'wsd:final=0.1,decay=0.2')
    >>> f.run(steps=1000, warmup=10)
    Schedule(kind='wsd', steps=1000, warmup=10, peak=1.0, final=0.1, decay=0.2)
    """

    kind: str
    final: float = 0.1
    decay: float = 0.1
    peak: float | None = None

    @classmethod
    def parse(cls, text: str, what: str = "schedule") -> ScheduleFamily:
        """A family from ``"kind:key=value,..."`` with keys among :data:`FAMILY_KEYS`, checked.

        >>> from jaxscale.allocate_schedule import ScheduleFamily
        >>> ScheduleFamily.parse("cosine:steps=1000")
        Traceback (most recent call last):
        ...
        jaxscale.errors.ArgumentError: schedule 'cosine:steps=1000': steps follow from each run's D / batch_size; leave steps out of the family (keys: ['final', 'decay', 'peak']).
        """
        shown = f"{what} {text!r}"
        if not isinstance(text, str):
            raise ArgumentError(f"{what} must be a string 'kind:key=value,...'; got {text!r}.")
        kind, _, rest = text.strip().partition(":")
        values: dict = {}
        for item in filter(None, (s.strip() for s in rest.split(","))):
            key, eq, value = (s.strip() for s in item.partition("="))
            if not eq:
                raise ArgumentError(f"{shown}: {item!r} is not key=value.")
            if key in ("steps", "warmup"):
                hint = "D / batch_size" if key == "steps" else "warmup= (default N / batch_size steps)"
                raise ArgumentError(f"{shown}: {key} follow{'s' * (key == 'warmup')} from each run's {hint}; leave "
                                    f"{key} out of the family (keys: {list(FAMILY_KEYS)}).")
            if key not in FAMILY_KEYS:
                raise ArgumentError(f"{shown}: unknown key {key!r}; expected some of {list(FAMILY_KEYS)}.")
            try:
                values[key] = float(value)
            except ValueError:
                raise ArgumentError(f"{shown}: {key} must be a number; got {value!r}.") from None
        return cls(kind.strip(), **values).check(shown)

    @classmethod
    def coerce(cls, spec, what: str = "schedule") -> ScheduleFamily:
        """A family from a ScheduleFamily, a spec string or a mapping of its fields."""
        if isinstance(spec, ScheduleFamily):
            return spec.check(what)
        if isinstance(spec, str):
            return cls.parse(spec, what)
        if isinstance(spec, Mapping):
            unknown = sorted(set(spec) - set(cls._fields))
            if unknown or "kind" not in spec:
                raise ArgumentError(f"{what}: expected a mapping with kind and some of {list(FAMILY_KEYS)}; got "
                                    f"{dict(spec)!r}.")
            return cls(**spec).check(what)
        raise ArgumentError(f"{what} must be a ScheduleFamily, 'kind:key=value,...' (e.g. 'cosine:final=0.1') or a "
                            f"mapping; got {type(spec).__name__}.")

    def check(self, what: str = "schedule") -> ScheduleFamily:
        """This family, or an :class:`~jaxscale.errors.ArgumentError` naming what is wrong."""
        if self.kind not in sch.KINDS:
            raise ArgumentError(f"{what}: unknown kind {self.kind!r}; expected one of {list(sch.KINDS)}.")
        for name in ("final", "decay") + (("peak",) if self.peak is not None else ()):
            validate.number(getattr(self, name), f"{what}: {name}")
        if self.kind != "wsd" and self.decay != 0.1:
            raise ArgumentError(f"{what}: decay applies to wsd only; {self.kind} decays over all steps after warmup.")
        if self.kind == "constant" and self.final != 0.1:
            raise ArgumentError(f"{what}: a constant schedule has no final LR; leave final out.")
        try:
            self.run(steps=10**6, warmup=0, what=what)
        except DataError as e:
            raise ArgumentError(str(e)) from None
        return self

    def run(self, steps: int, warmup: int = 0, what: str = "schedule") -> sch.Schedule:
        """The :class:`~jaxscale.schedule.Schedule` of one run of this family (peak 1 when unknown), checked."""
        peak = 1.0 if self.peak is None else self.peak
        return sch.Schedule(self.kind, steps, warmup, peak, self.final, self.decay).check(what)

    def __str__(self) -> str:
        keys = [] if self.kind == "constant" else [f"final={self.final:g}"]
        keys += [f"decay={self.decay:g}"] if self.kind == "wsd" else []
        keys += [] if self.peak is None else [f"peak={self.peak:g}"]
        return self.kind + (":" + ",".join(keys) if keys else "")


def olmo_batch_size(N):
    """Tokens per step of the OLMo ladder for a model of ``N`` parameters: ``160 (N / 1.08e8)^(2/3)`` sequences,
    halved for 4096-token sequences (``scripts/ladder_peteish.py``, lines 176-182), not rounded to a multiple of
    the batch-size divisor (the ladder rounds 190M's 117 sequences to 128). Pure JAX.

    >>> from jaxscale.allocate_schedule import olmo_batch_size
    >>> round(float(olmo_batch_size(1.0e9)) / 2**20, 3)    # ~1.4M tokens per step for a 1B model
    1.378
    """
    return 160.0 * (N / 108e6) ** (2.0 / 3.0) / 2.0 * 4096.0


def _batch_rule(batch_size) -> tuple[Callable, object]:
    """``(rule N -> tokens per step, its description for settings)``."""
    if isinstance(batch_size, str):
        validate.choice(batch_size, "batch_size", BATCH_RULES)
        return olmo_batch_size, batch_size
    if callable(batch_size):
        return batch_size, getattr(batch_size, "__name__", "callable")
    b = validate.positive(batch_size, "batch_size")
    return (lambda N: jnp.full_like(jnp.asarray(N, float), b)), b


# ------------------------------------------------------------------------------------------------ closed forms
def final_areas(kind: str, steps, warmup, *, final=0.1, decay_steps=0.0, anneal_decay: float = sch.ANNEAL_DECAY):
    """The forward and annealing areas at the last step of a schedule, in closed form (pure JAX, vectorised).

    Parameters
    ----------
    kind
        One of :data:`jaxscale.schedule.KINDS` (static).
    steps, warmup
        The schedule's length ``T`` and warmup ``w`` in steps (arrays broadcast); whole numbers give the exact
        sums of :func:`jaxscale.schedule.covariates`, others their smooth continuation.
    final
        The last LR as a fraction of the peak (cosine, linear, wsd).
    decay_steps
        The WSD decay's length ``n`` in steps (``round(decay * steps)`` for a :class:`~jaxscale.schedule.Schedule`).
    anneal_decay
        Tissue et al.'s ``lambda``.

    Returns
    -------
    tuple
        ``(S1, S2, feasible)``: ``S1`` and ``S2`` with the LR relative to its peak (so ``S2`` is ``S2_peak`` and
        ``S1 x tokens per step`` is ``S1_tokens``), and whether the schedule exists (at least one step after the
        warmup, a WSD decay that starts after it). Where it does not, the areas are meaningless.

    Examples
    --------
    >>> import numpy as np
    >>> from jaxscale.allocate_schedule import final_areas
    >>> from jaxscale.schedule import Schedule, covariates
    >>> s1, s2, ok = final_areas("cosine", 7262, 363)
    >>> cov = covariates(Schedule("cosine", 7262, 363).history(), [7262], peak=1.0)
    >>> bool(np.isclose(s1, cov["S1"][0], rtol=1e-12)), bool(np.isclose(s2, cov["S2"][0], rtol=1e-9)), bool(ok)
    (True, True, True)
    """
    T = jnp.asarray(steps, dtype=float)
    w = jnp.asarray(warmup, dtype=float)
    f = jnp.asarray(final, dtype=float)
    lam = float(anneal_decay)
    M = jnp.maximum(T - w, 1.0)
    feasible = (T - w >= 1.0) & (w >= 0.0)
    # sum_{s=1..w-1} s/w; below one warmup step it runs to -1 at w = 0, where step 0 (at the peak) is not summed
    warm = jnp.where(w >= 1.0, (w - 1.0) / 2.0, w - 1.0)

    def geometric(n):  # sum_{m=1..n} lam^m
        return lam * -jnp.expm1(n * math.log(lam)) / (1.0 - lam)

    if kind == "constant":
        s1, drop, rest = M + 1.0, 0.0, 0.0
    elif kind == "cosine":
        s1, drop = (M + 1.0) * (1.0 + f) / 2.0, 1.0 - f
        half = jnp.sin(jnp.pi / (2.0 * M)) ** 2      # (1 - cos(pi/M)) / 2, without cancellation for large M
        rest = drop / 2.0 * lam * (1.0 + lam ** M) * (1.0 + lam) * 2.0 * half / ((1.0 - lam) ** 2 + 4.0 * lam * half)
    elif kind == "linear":
        s1, drop = (M + 1.0) * (1.0 + f) / 2.0, 1.0 - f
        rest = drop / M * geometric(M)
    elif kind == "wsd":
        n = jnp.asarray(decay_steps, dtype=float)
        s1 = M + 1.0 - (1.0 - f) * jnp.where(n >= 1.0, (n + 1.0) / 2.0, n)
        drop = (1.0 - f) * jnp.clip(n, 0.0, 1.0)
        rest = drop / jnp.maximum(n, 1.0) * geometric(jnp.maximum(n, 1.0))
        feasible = feasible & (T - n >= w) & (n >= 0.0)
    else:
        raise ArgumentError(f"kind: unknown schedule kind {kind!r}; expected one of {list(sch.KINDS)}.")
    s2 = (drop - rest) / (1.0 - lam)
    return s1 + warm, s2, feasible


def _log_covariates(kind, log_n, log_d, b, w, final, n_decay, peak):
    """``({name: log value}, feasible)`` of the final checkpoint of a run of ``e^log_d`` tokens, ``b`` per step."""
    s1, s2, ok = final_areas(kind, jnp.exp(log_d) / b, w, final=final, decay_steps=n_decay)
    fl = lambda v: jnp.log(jnp.maximum(v, sch.FLOOR))  # noqa: E731
    logs = {"N": log_n, "D": log_d, "S1_tokens": fl(s1 * b), "S2_tokens": fl(s2 * b), "S2_peak": fl(s2)}
    if peak is not None:
        logs["S1"], logs["S2"] = fl(s1 * peak), fl(s2 * peak)
    return logs, ok


def _law_inputs(law: Law, what: str, available) -> Callable:
    """``logs dict -> stacked log covariates`` in the law's order; an error naming what the law lacks."""
    missing = [c for c in law.covariates if c not in available]
    if missing:
        hint = ""
        if set(missing) <= {"S1", "S2"}:
            hint = " Give peak= (the peak LR): S1 and S2 are in LR x steps."
        elif "N" in missing:
            hint = " Give N= (the run's parameter count)." if what == "anneal_gain" else \
                " It is a law of one run (no N): use anneal_gain for its runs."
        elif any(sch.is_key(c) for c in missing):
            hint = (f" The closed forms give {[c for c in COVARIATES if c not in ('N', 'D')]} only (the multi-power "
                    f"quadrature mp_* has none); use tissue, curve or curve_nd.")
        shown = missing if len(missing) <= 6 else [*missing[:3], f"... ({len(missing)} in all)"]
        raise AllocationError(f"{what}: law {law.name!r} needs the covariates {shown}, which this allocation "
                              f"does not give (it gives {sorted(available)}).{hint}")
    names = tuple(law.covariates)
    return lambda logs: jnp.stack([logs[c] for c in names])


def _recorded_flops_per_token(fit) -> float | None:
    """The data's FLOPs per token a fit recorded (FitResult, BootstrapResult, fit JSON), or None."""
    found = [getattr(fit, "settings", None), getattr(getattr(fit, "point", None), "settings", None)]
    if isinstance(fit, (str, os.PathLike)) and not os.fspath(fit).endswith(".nc"):
        try:
            with open(fit, "rb") as fh:
                found.append(json.loads(fh.read().decode("utf-8")).get("settings"))
        except (OSError, ValueError, AttributeError):  # read_fit has raised for a damaged file already
            pass
    for settings in found:
        value = settings.get("flops_per_token") if isinstance(settings, Mapping) else None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value) and value > 0:
            return float(value)
    return None


# ----------------------------------------------------------------------------------------- schedule covariates
def schedule_covariates(schedule, N, D, *, batch_size="olmo", warmup=None, peak=None,
                        whole_steps: bool = True) -> pd.DataFrame:
    """The schedule covariates of the final checkpoint of runs of ``N`` parameters on ``D`` tokens under a family.

    Each run has ``steps = D / batch_size`` steps (rounded up to a whole step with ``whole_steps``, as a trainer
    counts them), a warmup of ``warmup`` steps (default ``N / batch_size``, rounded, as the OLMo ladder: a
    warmup of N tokens) and the family's decay; the areas come from :func:`final_areas`, equal to
    :func:`jaxscale.schedule.covariates` of that :class:`~jaxscale.schedule.Schedule` for whole steps.

    Parameters
    ----------
    schedule
        A family: ``"cosine:final=0.1"``, ``"wsd:decay=0.1,final=0.1"``, ``"constant"``, ``"linear:final=0"``,
        or a :class:`ScheduleFamily`.
    N, D
        Parameters and tokens per run (numbers or arrays, broadcast), > 0.
    batch_size
        Tokens per optimizer step: a number, ``"olmo"`` (:func:`olmo_batch_size`) or a function of ``N``.
    warmup
        Warmup steps of every run; default ``N / batch_size``.
    peak
        The peak LR, for ``S1`` and ``S2`` in LR x steps (default the family's; without one they are left out).
    whole_steps
        Round steps, warmup and the WSD decay to whole steps (as :class:`~jaxscale.schedule.Schedule`); without,
        their continuous values are used (as :func:`optimal_allocation` does).

    Returns
    -------
    pandas.DataFrame
        Columns ``N, D, batch_size, steps, warmup`` and the covariates of :data:`COVARIATES`, one row per run;
        pass it as ``at=`` to :func:`jaxscale.forecast` or its columns to ``Law.predict``.

    Examples
    --------
    >>> from jaxscale.allocate_schedule import schedule_covariates
    >>> t = schedule_covariates("cosine:final=0.1", 190354176, 3807379456, batch_size=524288)   # OLMo 190M-1xC
    >>> t[["steps", "warmup"]].to_dict("records")
    [{'steps': 7262.0, 'warmup': 363.0}]
    >>> round(float(t["S1_tokens"][0] / t["D"][0]), 4), round(float(t["S2_peak"][0]), 1)
    (0.5475, 822.7)
    """
    family = ScheduleFamily.coerce(schedule)
    rule, _ = _batch_rule(batch_size)
    N, D = validate.positives(N, "N").ravel(), validate.positives(D, "D").ravel()
    try:
        N, D = np.broadcast_arrays(N, D)
    except ValueError:
        raise ArgumentError(f"N and D must have the same length (or one of them a single value); got "
                            f"{np.size(N)} and {np.size(D)} values.") from None
    peak = family.peak if peak is None else validate.positive(peak, "peak")
    b = np.broadcast_to(np.asarray(rule(jnp.asarray(N)), dtype=float), N.shape)
    bad = np.flatnonzero(~np.isfinite(b) | (b <= 0))
    if bad.size:
        raise ArgumentError(f"batch_size must give a finite number of tokens per step > 0; row {bad[0]} (N = "
                            f"{N[bad[0]]:g}) has {b[bad[0]]!r}.")
    steps = D / b
    w = N / b if warmup is None else np.full(N.shape, validate.number(warmup, "warmup", minimum=0))
    if whole_steps:
        steps = np.where(np.abs(steps - np.round(steps)) <= 1e-9 * steps, np.round(steps), np.ceil(steps))
        w = np.round(w)
    n_decay = family.decay * steps
    n_decay = np.round(n_decay) if whole_steps else n_decay
    # the areas are those of the whole steps trained, steps x batch_size tokens (D itself without whole_steps)
    logs, ok = jax.jit(jax.vmap(lambda n, d, bb, ww, nd: _log_covariates(
        family.kind, jnp.log(n), jnp.log(d), bb, ww, family.final, nd, peak)))(
        jnp.asarray(N), jnp.asarray(steps * b if whole_steps else D), jnp.asarray(b), jnp.asarray(w),
        jnp.asarray(n_decay))
    ok = np.asarray(ok)
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        what = f"the WSD decay ({n_decay[i]:g} steps)" if family.kind == "wsd" else "the schedule"
        raise ArgumentError(f"row {i} (N = {N[i]:g}, D = {D[i]:g}): {what} does not fit in {steps[i]:g} steps after "
                            f"a warmup of {w[i]:g} steps; give more tokens, a larger batch_size or a shorter warmup.")
    cols = {"N": N, "D": D, "batch_size": b, "steps": steps, "warmup": w}
    cols.update({k: np.exp(np.asarray(logs[k])) for k in COVARIATES[2:] if k in logs})
    return pd.DataFrame(cols)


# ------------------------------------------------------------------------------------------ optimal allocation
def optimal_allocation(fit, C, schedule="cosine:final=0.1", *, law=None, flops_per_token=None,
                       batch_size="olmo", warmup=None, level: float = 0.9) -> Allocation:
    """Compute-optimal ``N``, ``D``, loss and tokens per parameter under a schedule family, per budget ``C``.

    Minimises the predicted loss of the final checkpoint over ``N`` on ``k N D = C``, each run trained under
    ``schedule`` with ``D / batch_size`` steps and a warmup of ``warmup`` steps (default ``N / batch_size``); its
    schedule covariates come from :func:`final_areas` (continuous step counts). The search is the line search
    of :func:`jaxscale.allocate.line_optimum` in ``log N``; a budget whose optimum sits at an end of the range or
    next to runs too short for the schedule (fewer tokens than the warmup needs) has no interior optimum. A law
    of ``N`` and ``D`` only (``chinchilla``) gives :func:`jaxscale.allocate.compute_optimal`'s answer whatever
    the schedule.

    Parameters
    ----------
    fit
        A fit of a law of ``N`` and schedule covariates (``curve_nd``): a :class:`~jaxscale.FitResult`,
        :class:`~jaxscale.BootstrapResult`, posterior, fit file, or a dict of parameters with ``law``.
        Draws give ``level`` intervals, as in :func:`jaxscale.allocate.compute_optimal`.
    C
        Budget(s) in FLOPs.
    schedule
        The family (:class:`ScheduleFamily` or its spec, e.g. ``"wsd:decay=0.1,final=0.1"``).
    law
        The fit's law (required with a dict of parameters; checked otherwise).
    flops_per_token
        ``k``; default the one the fit's data recorded (``ScalingData.flops_per_token``), else 6.
    batch_size, warmup
        As in :func:`schedule_covariates`.

    Returns
    -------
    Allocation
        ``table`` columns ``compute, N_opt, D_opt, L_opt, tokens_per_param`` (with ``_lo``/``_hi`` and
        ``n_failed`` with draws) and, at the point estimate, the optimum's ``batch_size`` and ``steps``.

    Examples
    --------
    >>> from jaxscale.allocate import compute_optimal
    >>> p = dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28, C=1e-4)   # illustrative
    >>> t = optimal_allocation(p, [1e20, 1e22], "cosine:final=0.1", law="curve_nd").table
    >>> [round(float(v), 1) for v in t["tokens_per_param"]]
    [70.9, 108.6]
    >>> chin = compute_optimal("chinchilla", {k: p[k] for k in ("E", "A", "B", "alpha", "beta")}, [1e20, 1e22]).table
    >>> [round(float(v), 1) for v in chin["tokens_per_param"]]   # its N and D terms, blind to the schedule
    [40.1, 62.6]
    """
    C = validate.budgets(C, "C")
    family = ScheduleFamily.coerce(schedule)
    rule, rule_name = _batch_rule(batch_size)
    w_fixed = None if warmup is None else validate.number(warmup, "warmup", minimum=0)
    level = validate.level(level)
    k = None if flops_per_token is None else validate.positive(flops_per_token, "flops_per_token")
    src = read_fit(fit, law)
    k = k or _recorded_flops_per_token(fit) or 6.0
    lw = src.law
    available = [c for c in COVARIATES if family.peak is not None or c not in ("S1", "S2")]
    if "N" not in lw.covariates:
        raise AllocationError(f"optimal_allocation: law {lw.name!r} has no N ({list(lw.covariates)}): it is a law "
                              f"of one run; use anneal_gain for its runs, or a law across sizes (curve_nd).")
    inputs = _law_inputs(lw, "optimal_allocation", available)

    def solve(theta, log_ck):
        def batch(u):
            return rule(jnp.exp(u))

        def f(u):  # log loss of the run of e^u parameters on the budget line
            b, log_d = batch(u), log_ck - u
            w = jnp.exp(u) / b if w_fixed is None else w_fixed
            logs, ok = _log_covariates(family.kind, u, log_d, b, w, family.final, family.decay * jnp.exp(log_d) / b,
                                       family.peak)
            return jnp.where(ok, lw.log_predict(theta, inputs(logs)), jnp.inf)

        u, ok = line_optimum(f, 0.0, log_ck, _N_GRID)
        h = log_ck / (_N_GRID - 1)
        # a minimum next to the runs too short for their warmup is the edge of the feasible range, not an optimum
        ok = ok & jnp.isfinite(f(u - h)) & jnp.isfinite(f(u + h))
        return jnp.where(ok, jnp.stack([u, log_ck - u, f(u), jnp.log(batch(u))]), jnp.nan)

    pt, dr = batched(solve, *thetas(src), jnp.log(C / k))

    def unpack(a):
        n, d, loss = np.exp(a[..., 0]), np.exp(a[..., 1]), np.exp(a[..., 2])
        return {"N_opt": n, "D_opt": d, "L_opt": loss, "tokens_per_param": d / n}

    if not np.all(np.isfinite(pt)):
        bad = C[~np.all(np.isfinite(pt), -1)].tolist()
        raise AllocationError(f"No interior optimum under {family} for budget(s) {bad} at the point estimate of "
                              f"{lw.name!r}: the loss keeps falling towards the end of the range (N = 1, or runs so "
                              f"short their warmup of {'N / batch_size' if w_fixed is None else w_fixed} steps "
                              f"barely fits).")
    point = unpack(pt)
    b = np.exp(pt[:, 3])
    point.update({"batch_size": b, "steps": point["D_opt"] / b})
    settings = {"schedule": str(family), "flops_per_token": float(k), "batch_size": rule_name,
                "warmup": "N / batch_size" if w_fixed is None else w_fixed, "solver": "numerical"}
    return summarise("optimal_allocation", src, {"compute": C}, point, None if dr is None else unpack(dr), level,
                     settings)


# ------------------------------------------------------------------------------------------------ anneal gain
def anneal_gain(fit, anneal_at, *, decay_tokens=None, decay_fraction=None, N=None, final: float = 0.1,
                batch_size="olmo", warmup=None, peak=None, law=None, level: float = 0.9) -> Allocation:
    """What annealing a constant-LR run at ``anneal_at`` tokens gains: a WSD branch against staying constant.

    The run trains at a constant LR (after a linear warmup of ``warmup`` steps); the branch decays it linearly
    to ``final x`` the peak from ``anneal_at`` tokens over ``decay_tokens`` (a WSD run of ``anneal_at +
    decay_tokens`` tokens, as OLMo's ladder branches its WSD runs off the constant run). Per row:

    * ``L_branch``: the loss at the branch point (not annealing at all);
    * ``L_constant``: the loss of the constant run continued to the branch's end;
    * ``L_annealed``: the loss at the end of the annealed branch;
    * ``gain = L_constant - L_annealed`` (the same tokens, annealed or not) and
      ``gain_vs_branch = L_branch - L_annealed`` (what the extra decay tokens buy).

    Positions are in tokens; ``batch_size=1`` makes them steps. Rows broadcast over ``anneal_at``,
    ``decay_tokens`` (or ``decay_fraction``) and ``N``. Step counts are continuous (``tokens / batch_size``).

    Parameters
    ----------
    fit
        A fit of ``curve_nd`` (needs ``N``), ``tissue`` / ``curve`` (one run: ``S1``, ``S2`` in LR x steps, so
        ``peak`` and the run's ``batch_size`` are needed) or any law of the covariates :data:`COVARIATES`; as in
        :func:`optimal_allocation`.
    anneal_at
        Tokens at the branch point (after the warmup).
    decay_tokens, decay_fraction
        The decay's length in tokens, or as a fraction of the branch's whole length (OLMo's WSD: the last 10%,
        ``decay_tokens = anneal_at f / (1 - f)``); one of them (default ``decay_fraction=0.1``).
    N
        Parameters of the run (laws of ``N``; also the default warmup and ``batch_size="olmo"``).
    final
        The LR at the end of the decay as a fraction of the peak, in ``[0, 1)``.
    batch_size
        Tokens per step: a number, ``"olmo"`` (needs ``N``) or a function of ``N``.
    warmup
        Warmup steps; default ``N / batch_size``.
    peak
        The peak LR (laws of ``S1``, ``S2``).

    Returns
    -------
    Allocation
        ``table`` columns ``N, anneal_at, decay_tokens, end, L_branch, L_constant, L_annealed, gain,
        gain_vs_branch`` (with ``_lo``/``_hi`` and ``n_failed`` with draws).

    Examples
    --------
    >>> from jaxscale.allocate_schedule import anneal_gain
    >>> p = dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28, C=1e-4)   # illustrative
    >>> t = anneal_gain(p, 2e10, decay_tokens=[2e9, 1e10, 1e11], N=1e9, law="curve_nd").table
    >>> t["gain"].round(4).tolist()      # rises with the decay's length while S2 fills up, then falls
    [0.035, 0.0542, 0.0427]
    >>> t["gain_vs_branch"].round(4).tolist()
    [0.0495, 0.1133, 0.2576]
    """
    level = validate.level(level)
    final = validate.number(final, "final", minimum=0, maximum=1, open_max=True)
    if decay_tokens is not None and decay_fraction is not None:
        raise ArgumentError("give decay_tokens or decay_fraction, not both.")
    at = validate.positives(anneal_at, "anneal_at").ravel()
    if decay_tokens is not None:
        decay = validate.positives(decay_tokens, "decay_tokens").ravel()
    else:
        frac = np.atleast_1d(np.asarray(0.1 if decay_fraction is None else decay_fraction, dtype=float)).ravel()
        bad = ~np.isfinite(frac) | (frac <= 0) | (frac >= 1)
        if bad.any():
            raise ArgumentError(f"decay_fraction must be a fraction of the branch's length in (0, 1); got "
                                f"{frac[bad][0]!r}.")
        decay = None
    sizes = None if N is None else validate.positives(N, "N").ravel()
    rule, rule_name = _batch_rule(batch_size)
    if sizes is None and (isinstance(batch_size, str) or callable(batch_size)):
        raise ArgumentError(f"batch_size={rule_name!r} follows from N; give N= or batch_size= in tokens per step (1 "
                            f"to count anneal_at and decay_tokens in steps).")
    if sizes is None and warmup is None:
        raise ArgumentError("give warmup= (the constant run's warmup steps; 0 for none) or N= (warmup N / "
                            "batch_size steps, as the OLMo ladder).")
    w_fixed = None if warmup is None else validate.number(warmup, "warmup", minimum=0)
    peak = None if peak is None else validate.positive(peak, "peak")
    src = read_fit(fit, law)
    available = [c for c in COVARIATES if not (c == "N" and sizes is None) and not (c in ("S1", "S2") and peak is None)]
    inputs = _law_inputs(src.law, "anneal_gain", available)
    parts = {"anneal_at": at, "decay": decay if decay is not None else frac}
    if sizes is not None:
        parts["N"] = sizes
    try:
        cols = dict(zip(parts, np.broadcast_arrays(*parts.values())))
    except ValueError:
        raise ArgumentError(f"{', '.join(parts)} must have the same length (or a single value); got "
                            f"{[np.size(v) for v in parts.values()]} values.") from None
    at = cols["anneal_at"]
    decay = cols["decay"] if decay is not None else at * cols["decay"] / (1.0 - cols["decay"])
    n_arr = cols.get("N", np.ones_like(at))
    b = np.broadcast_to(np.asarray(rule(jnp.asarray(n_arr)), dtype=float), at.shape)
    if not np.all(np.isfinite(b) & (b > 0)):
        raise ArgumentError(f"batch_size must give a finite number of tokens per step > 0; got {b.tolist()}.")
    w = n_arr / b if w_fixed is None else np.full(at.shape, w_fixed)
    short = np.flatnonzero(at / b - w < 1.0)
    if short.size:
        i = int(short[0])
        raise ArgumentError(f"anneal_at: row {i} branches at {at[i]:g} tokens = {at[i] / b[i]:g} steps, before the "
                            f"warmup of {w[i]:g} steps has ended (+1 step at the peak); anneal later.")
    lw = src.law
    log_n = np.log(n_arr)

    def losses(theta, log_n, at_steps, n_steps, b, w):
        def loss(kind, steps, n_decay):
            logs, _ = _log_covariates(kind, log_n, jnp.log(steps * b), b, w, final, n_decay, peak)
            return jnp.exp(lw.log_predict(theta, inputs(logs)))

        branch = loss("constant", at_steps, 0.0)
        const = loss("constant", at_steps + n_steps, 0.0)
        annealed = loss("wsd", at_steps + n_steps, n_steps)
        return jnp.stack([branch, const, annealed])

    pt, dr = batched(losses, *thetas(src), jnp.asarray(log_n), jnp.asarray(at / b), jnp.asarray(decay / b),
                     jnp.asarray(b), jnp.asarray(w))

    def unpack(a):
        return {"L_branch": a[..., 0], "L_constant": a[..., 1], "L_annealed": a[..., 2],
                "gain": a[..., 1] - a[..., 2], "gain_vs_branch": a[..., 0] - a[..., 2]}

    rows = {"N": n_arr if sizes is not None else np.full(at.shape, np.nan), "anneal_at": at, "decay_tokens": decay,
            "end": at + decay}
    settings = {"final": float(final), "batch_size": rule_name,
                "warmup": "N / batch_size" if w_fixed is None else w_fixed, "peak": peak}
    return summarise("anneal_gain", src, rows, unpack(pt), None if dr is None else unpack(dr), level, settings)


__all__ = ["BATCH_RULES", "COVARIATES", "FAMILY_KEYS", "ScheduleFamily", "anneal_gain", "final_areas",
           "olmo_batch_size", "optimal_allocation", "schedule_covariates"]
