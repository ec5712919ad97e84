"""Learning-rate schedules and the schedule covariates of a training run's checkpoints.

A loss-curve law sees a checkpoint through numbers computed from its run's learning-rate history up to that
step. :func:`covariates` computes them, for every checkpoint of one run at once, from the LR at every optimizer
step; that per-step LR comes either from a :class:`Schedule` (the planned schedule: exact) or from the logged
rows of the run by :func:`history` (linear interpolation between logged steps: the trapezoid rule for the areas).

The covariates (all in the papers' units: learning rate x optimizer steps; floored at :data:`FLOOR` so their
logs are finite):

``S1``
    The forward area ``sum_{tau=1..t} eta_tau`` (Tissue et al. 2024; Luo et al.'s ``S1(t) + S_W``: the warmup is
    included).
``S2``
    Tissue et al.'s annealing area ``sum_{i=1..t} m_i`` with ``m_i = lambda m_{i-1} + (eta_{i-1} - eta_i)``
    (``lambda`` = :data:`ANNEAL_DECAY`), counted from the step where the LR first reaches its peak (the warmup's
    rise is not an annealing).
``S1_tokens``, ``S2_tokens``
    The same areas with the LR relative to its peak and each step weighted by its tokens: ``S1_tokens`` is the
    number of "peak-LR tokens", equal to D for a constant LR. Laws across model sizes (``curve_nd``) use these,
    since sizes differ in peak LR and batch size.
``S2_peak``
    ``S2`` with the LR relative to its peak (in steps). Each LR drop adds at most ``1 / (1 - lambda)`` steps'
    worth to ``S2``, so ``S2_peak`` is about ``1000 x`` the fraction of the peak annealed away, for decays
    longer than ~1000 steps, whatever the run's length.
``mp_0`` ... ``mp_{3Q-1}``
    The quadrature of the multi-power law's loss drop (Luo et al. 2025):
    ``sum_{k=w+1..t} (eta_{k-1} - eta_k) G(eta_k^-gamma S_k(t))`` is a sum over the drops of the LR since its
    peak at step ``w``; :func:`covariates` splits ``(w, t]`` into :data:`MP_NODES` = Q bins, finer near ``t``
    (edge j at ``t - (t - w) (j/Q)^2``), and gives per bin its total LR drop ``mp_{3j}`` (exact: the drops
    telescope), the LR at its middle ``mp_{3j+1}`` and the area from its middle to ``t``, ``mp_{3j+2}``. The law
    evaluates G at the bin's middle (the midpoint rule). A rise of the LR after the peak counts as no drop.

Examples
--------
>>> import numpy as np
>>> from jaxscale.schedule import Schedule, covariates
>>> s = Schedule("wsd", steps=1000, warmup=100, peak=1e-3, final=0.1, decay=0.2)
>>> s.lr([50, 500, 1000]).round(6).tolist()
[0.0005, 0.001, 0.0001]
>>> cov = covariates(s.lr(np.arange(1001)), [500, 1000])
>>> cov["S1"].round(4).tolist()      # warmup 0.05 + 0.4 at peak; + 0.3 + the decay, 0.11
[0.4505, 0.8601]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np

from jaxscale.errors import ArgumentError, DataError

#: Schedule kinds :class:`Schedule` knows.
KINDS = ("cosine", "constant", "wsd", "linear")
#: Tissue et al.'s momentum factor lambda of the annealing area S2 (their default, 0.999).
ANNEAL_DECAY = 0.999
#: Number of quadrature bins of the multi-power law's loss drop.
MP_NODES = 24
#: Schedule covariates are floored here so their logs are finite (an area of zero enters as ~0).
FLOOR = 1e-300
#: The names of the schedule covariates :func:`covariates` returns.
MP_KEYS = tuple(f"mp_{i}" for i in range(3 * MP_NODES))
KEYS = ("S1", "S2", "S1_tokens", "S2_tokens", "S2_peak") + MP_KEYS


def is_key(name: str) -> bool:
    """Whether ``name`` is a schedule covariate (computed from the LR history, never given as a column)."""
    return name in KEYS


class Schedule(NamedTuple):
    """A planned learning-rate schedule: linear warmup from 0, then one of :data:`KINDS`.

    Parameters
    ----------
    kind
        ``"cosine"`` (half cosine from ``peak`` to ``final * peak`` over the steps after warmup),
        ``"constant"``, ``"wsd"`` (constant, then linear decay to ``final * peak`` over the last ``decay``
        fraction of ``steps``) or ``"linear"`` (linear from ``peak`` to ``final * peak`` after warmup).
    steps
        Total optimizer steps of the run (the schedule's length); past it the LR stays at its last value.
    warmup
        Steps of the linear warmup from 0 to ``peak``.
    peak
        The peak LR (1.0: areas in units of the peak).
    final
        The final LR as a fraction of ``peak`` (cosine, wsd, linear).
    decay
        The fraction of ``steps`` the WSD decay lasts.

    Examples
    --------
    >>> from jaxscale.schedule import Schedule
    >>> Schedule.parse("cosine:steps=7262,warmup=363,peak=9.727e-4,final=0.1").lr([363, 7262]).round(7).tolist()
    [0.0009727, 9.73e-05]
    """

    kind: str
    steps: int
    warmup: int = 0
    peak: float = 1.0
    final: float = 0.1
    decay: float = 0.1

    def check(self, what: str = "schedule") -> Schedule:
        """This schedule, or a :class:`DataError` naming what is wrong."""
        if self.kind not in KINDS:
            raise DataError(f"{what}: unknown kind {self.kind!r}; expected one of {list(KINDS)}.")
        for name in ("steps", "warmup"):
            v = getattr(self, name)
            if isinstance(v, bool) or not float(v).is_integer() or v < 0:
                raise DataError(f"{what}: {name} must be a whole number >= 0; got {v!r}.")
        if self.steps < 1:
            raise DataError(f"{what}: steps must be >= 1; got {self.steps!r}.")
        if self.warmup >= self.steps:
            raise DataError(f"{what}: warmup ({self.warmup}) must be shorter than steps ({self.steps}).")
        if not (np.isfinite(self.peak) and self.peak > 0):
            raise DataError(f"{what}: peak must be a finite LR > 0; got {self.peak!r}.")
        if not (np.isfinite(self.final) and 0 <= self.final <= 1):
            raise DataError(f"{what}: final must be a fraction of the peak in [0, 1]; got {self.final!r}.")
        if not (np.isfinite(self.decay) and 0 < self.decay <= 1):
            raise DataError(f"{what}: decay must be a fraction of steps in (0, 1]; got {self.decay!r}.")
        if self.kind == "wsd" and self.steps - round(self.decay * self.steps) < self.warmup:
            raise DataError(f"{what}: the WSD decay ({self.decay:g} of {self.steps} steps) starts before the warmup "
                            f"({self.warmup} steps) ends; shorten one of them.")
        return self

    @classmethod
    def parse(cls, text: str, what: str = "schedule") -> Schedule:
        """A schedule from ``"kind:key=value,..."`` (the command line's form), checked.

        >>> from jaxscale.schedule import Schedule
        >>> Schedule.parse("wsd:steps=1000,warmup=10,decay=0.2")
        Schedule(kind='wsd', steps=1000, warmup=10, peak=1.0, final=0.1, decay=0.2)
        >>> Schedule.parse("cosine:steps=100,waramup=3")
        Traceback (most recent call last):
        ...
        jaxscale.errors.DataError: schedule 'cosine:steps=100,waramup=3': unknown key 'waramup'; expected some of ['steps', 'warmup', 'peak', 'final', 'decay'].
        """
        shown = f"{what} {text!r}"
        kind, _, rest = str(text).strip().partition(":")
        values: dict = {}
        for item in filter(None, (s.strip() for s in rest.split(","))):
            key, eq, value = item.partition("=")
            key = key.strip()
            if not eq:
                raise DataError(f"{shown}: {item!r} is not key=value.")
            if key not in cls._fields[1:]:
                raise DataError(f"{shown}: unknown key {key!r}; expected some of {list(cls._fields[1:])}.")
            try:
                number = float(value)
            except ValueError:
                raise DataError(f"{shown}: {key} must be a number; got {value.strip()!r}.") from None
            values[key] = int(number) if key in ("steps", "warmup") and number.is_integer() else number
        if "steps" not in values:
            raise DataError(f"{shown}: give steps=<total optimizer steps>.")
        return cls(kind.strip(), **values).check(shown)

    @classmethod
    def coerce(cls, spec, what: str = "schedule") -> Schedule:
        """A :class:`Schedule` from a Schedule, a ``"kind:key=value"`` string or a mapping of its fields."""
        if isinstance(spec, Schedule):
            return spec.check(what)
        if isinstance(spec, str):
            return cls.parse(spec, what)
        if isinstance(spec, Mapping):
            unknown = sorted(set(spec) - set(cls._fields))
            if unknown:
                raise DataError(f"{what}: unknown field(s) {unknown}; expected some of {list(cls._fields)}.")
            if "kind" not in spec or "steps" not in spec:
                raise DataError(f"{what}: needs kind and steps; got {dict(spec)!r}.")
            return cls(**spec).check(what)
        raise DataError(f"{what}: expected a Schedule, 'kind:key=value,...' or a mapping; got {type(spec).__name__}.")

    def lr(self, step) -> np.ndarray:
        """The LR at ``step`` (array-like), following the schedule; constant after ``steps``."""
        s = np.minimum(np.asarray(step, dtype=np.float64), self.steps)
        peak, low = float(self.peak), float(self.peak) * float(self.final)
        w, T = float(self.warmup), float(self.steps)
        frac = np.clip((s - w) / max(T - w, 1.0), 0.0, 1.0)
        if self.kind == "constant":
            after = np.full_like(s, peak)
        elif self.kind == "cosine":
            after = low + (peak - low) * (1.0 + np.cos(np.pi * frac)) / 2.0
        elif self.kind == "linear":
            after = peak - (peak - low) * frac
        else:  # wsd
            n_decay = float(round(self.decay * T))
            start = T - n_decay
            after = np.where(s <= start, peak, peak - (peak - low) * np.clip((s - start) / max(n_decay, 1.0), 0, 1))
        warm = peak * s / w if w > 0 else np.full_like(s, peak)
        return np.where(s < w, warm, after)

    def history(self, until: int | None = None) -> np.ndarray:
        """The LR at every step ``0 .. until`` (default: ``steps``)."""
        return self.lr(np.arange((self.steps if until is None else int(until)) + 1))


def history(steps: Sequence[float], lr: Sequence[float], until: int | None = None) -> np.ndarray:
    """The LR at every step ``0 .. until`` from a run's logged ``(step, lr)`` rows.

    Between logged steps the LR is interpolated linearly (so the areas are the trapezoid rule over the logged
    rows); before the first logged step it rises linearly from 0 at step 0 (a warmup); after the last it stays.
    ``steps`` must be increasing whole numbers >= 0 (:func:`check_run` checks them).

    >>> from jaxscale.schedule import history
    >>> history([2, 4], [1.0, 0.5]).tolist()
    [0.0, 0.5, 1.0, 0.75, 0.5]
    """
    steps = np.asarray(steps, dtype=np.float64)
    lr = np.asarray(lr, dtype=np.float64)
    last = int(steps[-1]) if until is None else int(until)
    if steps[0] > 0:
        steps, lr = np.concatenate([[0.0], steps]), np.concatenate([[0.0], lr])
    return np.interp(np.arange(last + 1, dtype=np.float64), steps, lr)


def check_run(run, steps: np.ndarray, lr: np.ndarray | None, where) -> None:
    """A :class:`DataError` naming the run and row unless its steps increase and its LRs are finite and >= 0.

    ``where(i)`` names row ``i`` of the run (its file line or row index).
    """
    bad = np.flatnonzero(~np.isfinite(steps) | (steps < 0) | (steps != np.round(steps)))
    if bad.size:
        raise DataError(f"run {run!r}: step must be a whole number >= 0; {where(bad[0])} has "
                        f"{float(steps[bad[0]])!r}.")
    bad = np.flatnonzero(np.diff(steps) <= 0)
    if bad.size:
        raise DataError(f"run {run!r}: steps must increase within a run; {where(bad[0] + 1)} has step "
                        f"{steps[bad[0] + 1]:g} after step {steps[bad[0]]:g} (sort the rows by step; one row per "
                        f"step).")
    if lr is not None:
        bad = np.flatnonzero(~np.isfinite(lr) | (lr < 0))
        if bad.size:
            raise DataError(f"run {run!r}: the learning rate must be finite and >= 0; {where(bad[0])} has "
                            f"{float(lr[bad[0]])!r}.")


def covariates(lr_steps, at, *, tokens_per_step: float = 1.0, peak: float | None = None,
               anneal_decay: float = ANNEAL_DECAY) -> dict[str, np.ndarray]:
    """The schedule covariates (:data:`KEYS`) of the checkpoints at steps ``at`` of one run.

    Parameters
    ----------
    lr_steps
        The LR at every step ``0 .. T`` (:meth:`Schedule.history` or :func:`history`); ``T >= max(at)``.
    at
        Checkpoint steps (whole numbers in ``0 .. T``).
    tokens_per_step
        Tokens per optimizer step (the batch size in tokens), for ``S1_tokens`` and ``S2_tokens``.
    peak
        The peak LR the ``_tokens`` areas are relative to; default the largest LR in ``lr_steps``.
    anneal_decay
        Tissue et al.'s lambda for ``S2``.

    Returns
    -------
    dict
        One float64 array per key of :data:`KEYS`, each of ``len(at)``, every value >= :data:`FLOOR`.
    """
    eta = np.asarray(lr_steps, dtype=np.float64)
    at = np.asarray(at, dtype=np.int64)
    peak = float(np.max(eta)) if peak is None else float(peak)
    if peak <= 0:
        raise DataError("the learning rate is 0 at every step; a schedule needs a peak > 0.")
    area = np.concatenate([[0.0], np.cumsum(eta[1:])])             # area[t] = sum_{tau=1..t} eta_tau
    w = int(np.argmax(eta >= eta.max()))                            # the step where the LR first peaks
    drops = np.zeros_like(eta)
    drops[w + 1:] = eta[w:-1] - eta[w + 1:]                         # eta_{i-1} - eta_i, after the peak
    from scipy.signal import lfilter

    m = lfilter([1.0], [1.0, -float(anneal_decay)], drops)          # m_i = lambda m_{i-1} + drop_i
    s2 = np.cumsum(m)
    out = {"S1": area[at], "S2": s2[at]}
    out["S1_tokens"] = out["S1"] * tokens_per_step / peak
    out["S2_tokens"] = out["S2"] * tokens_per_step / peak
    out["S2_peak"] = out["S2"] / peak
    # the multi-power quadrature: Q bins of (w, t], edge j at t - (t - w) (j / Q)^2 (finer near t)
    q = MP_NODES
    t = at.astype(np.float64)[:, None]
    span = np.maximum(t - w, 0.0)
    edges = t - span * (np.arange(q + 1) / q) ** 2                  # (n, Q+1), decreasing from t to w
    pos = np.arange(eta.size, dtype=np.float64)
    lr_at = lambda s: np.interp(s, pos, eta)  # noqa: E731
    area_at = lambda s: np.interp(s, pos, area)  # noqa: E731
    # drops telescope: the bin (edges[j+1], edges[j]] holds eta(edges[j+1]) - eta(edges[j]) of decrease
    drop = np.maximum(lr_at(edges[:, 1:]) - lr_at(edges[:, :-1]), 0.0)
    mid = (edges[:, 1:] + edges[:, :-1]) / 2.0
    nodes = np.stack([drop, lr_at(mid), area_at(t) - area_at(mid)], axis=2).reshape(len(at), 3 * q)
    for i, key in enumerate(MP_KEYS):
        out[key] = nodes[:, i]
    return {k: np.maximum(v, FLOOR) for k, v in out.items()}


def parse_many(specs, runs: Sequence, what: str = "schedule") -> dict:
    """Run -> :class:`Schedule` from one spec for every run or a mapping run -> spec (every run needs one)."""
    if isinstance(specs, (Schedule, str)) or (isinstance(specs, Mapping) and "kind" in specs):
        one = Schedule.coerce(specs, what)
        return {r: one for r in runs}
    if not isinstance(specs, Mapping):
        raise ArgumentError(f"{what} must be a Schedule, 'kind:key=value,...' or a mapping run -> schedule; got "
                            f"{type(specs).__name__}.")
    missing = [r for r in runs if r not in specs]
    if missing:
        raise DataError(f"{what}: no schedule for run(s) {missing[:5]}; give one per run.")
    return {r: Schedule.coerce(specs[r], f"{what} of run {r!r}") for r in runs}




def planned(plan, *, N: float | None = None, batch_size: float | None = None, steps=None, every: int | None = None,
            start: int = 0):
    """Forecast points for checkpoints of a run that is planned (or still training): its schedule covariates.

    Pass the result as ``at=`` to :func:`jaxscale.forecast`; it has a column per schedule covariate, ``step``,
    ``N`` (when given) and ``D = step x batch_size`` (when ``batch_size``, tokens per step, is given).

    Parameters
    ----------
    plan
        The run's :class:`Schedule` (or its ``"kind:key=value,..."`` string).
    N
        The run's parameter count (for laws across sizes: ``curve_nd``).
    batch_size
        Tokens per optimizer step (D and the ``_tokens`` areas); default 1 (areas in steps, no D).
    steps
        The checkpoint steps to forecast; default the end of the schedule (its final loss).
    every, start
        Instead of ``steps``: every ``every`` steps after ``start`` up to the end (the rest of the curve).

    Examples
    --------
    >>> from jaxscale.schedule import planned
    >>> pts = planned("cosine:steps=7262,warmup=363,peak=9.727e-4", N=1.9e8, batch_size=524288)
    >>> pts[["N", "D", "step"]].to_dict("records")
    [{'N': 190000000.0, 'D': 3807379456.0, 'step': 7262.0}]
    >>> len(planned("wsd:steps=1000", every=100, start=500))
    5
    """
    import pandas as pd

    plan = Schedule.coerce(plan, "plan")
    if steps is not None and every is not None:
        raise ArgumentError("give steps or every (with start), not both.")
    if every is not None:
        if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
            raise ArgumentError(f"every must be a whole number of steps >= 1; got {every!r}.")
        at = np.arange(int(start) + int(every), plan.steps + 1, int(every))
        if at.size == 0 or at[-1] != plan.steps:
            at = np.append(at, plan.steps)
    else:
        at = np.atleast_1d(np.asarray(plan.steps if steps is None else steps, dtype=np.float64))
        bad = np.flatnonzero(~np.isfinite(at) | (at < 1) | (at != np.round(at)))
        if bad.size:
            raise ArgumentError(f"steps must be whole numbers >= 1; got {at[bad[0]]!r}.")
        at = at.astype(np.int64)
    per_step = 1.0 if batch_size is None else float(batch_size)
    if not (np.isfinite(per_step) and per_step > 0):
        raise ArgumentError(f"batch_size must be a finite number of tokens per step > 0; got {batch_size!r}.")
    cov = covariates(plan.history(max(int(at.max()), plan.steps)), at, tokens_per_step=per_step, peak=plan.peak)
    cols: dict = {}
    if N is not None:
        cols["N"] = np.full(at.size, float(N))
    if batch_size is not None:
        cols["D"] = at * per_step
    cols["step"] = at.astype(np.float64)
    return pd.DataFrame({**cols, **cov})
