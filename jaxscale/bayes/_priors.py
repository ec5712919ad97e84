"""Priors: per-law defaults on the sampling scale, Epoch's published prior, validation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from numpyro.distributions import constraints

from jaxscale import published
from jaxscale.errors import LawError
from jaxscale.laws import Law, Param, get

class ShiftedGamma(dist.Distribution):
    """``shift + Gamma(concentration, rate)``, with a static support ``(shift, inf)``.

    (A ``TransformedDistribution`` with an affine shift computes its support
    lazily with jnp ops, which leaks tracers when the support is read under
    ``jit``.)

    Examples
    --------
    >>> from jaxscale.bayes._priors import ShiftedGamma
    >>> d = ShiftedGamma(2.0, 0.1, shift=1.0)
    >>> float(d.mean), bool(d.support(0.5)), bool(d.support(1.5))
    (21.0, False, True)
    """

    arg_constraints = {"concentration": constraints.positive, "rate": constraints.positive}
    reparametrized_params = ["concentration", "rate"]

    def __init__(self, concentration, rate, shift: float = 1.0, *, validate_args=None):
        self.concentration, self.rate, self.shift = concentration, rate, float(shift)
        self._base = dist.Gamma(concentration, rate)
        self._support = constraints.greater_than(self.shift)
        super().__init__(batch_shape=self._base.batch_shape, validate_args=validate_args)

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self):
        return self._support

    def sample(self, key, sample_shape=()):
        return self.shift + self._base.sample(key, sample_shape)

    def log_prob(self, value):
        return self._base.log_prob(value - self.shift)

    @property
    def mean(self):
        return self.shift + self._base.mean

    @property
    def variance(self):
        return self._base.variance

    def cdf(self, value):
        return self._base.cdf(value - self.shift)

    def icdf(self, q):
        return self.shift + self._base.icdf(q)


#: Priors of the likelihood's own parameters (log-target scale).
NOISE_PRIORS = {
    # residual scale of log-loss: 95% below 0.2 (Chinchilla's fits leave ~0.01-0.03)
    "sigma": lambda: dist.HalfNormal(0.1),
    # Student-t degrees of freedom: Juarez & Steel's (2010) Gamma(2, 0.1), shifted to df >= 1. With df < 1 the
    # likelihood is unbounded as sigma -> 0 once the curve passes through a few points exactly (n*df < #params):
    # chains (and the Newton warm start) fall into that spike and never leave. The shift moves 0.5% of prior mass.
    "df": lambda: ShiftedGamma(2.0, 0.1, shift=1.0),
}
#: Prior on the spread of a partially pooled parameter across families, on its sampling scale.
TAU_PRIOR = lambda: dist.HalfNormal(0.5)  # noqa: E731
#: Scale of the prior on ``run_sd``, the spread of the per-run offsets of log-loss (checkpoints of one run share one).
#: Runs of one recipe that differ only in seed or data order usually end well under 1% apart in loss; runs that
#: also differ in tuning or data sit a few percent off a fitted law. HalfNormal(0.05) has median 0.034 and 95% of its
#: mass below 0.1 (a 10% level shift per run): it allows all of that, and with few runs (where the data say little)
#: it keeps run_sd at the few-percent scale instead of letting it wander to 20-50% offsets. It is half sigma's
#: scale (0.1): run offsets are one part of what a run-blind fit leaves as residual.
RUN_SD_SCALE = 0.05
#: Prior on ``run_sd`` (log-target scale).
RUN_SD_PRIOR = lambda: dist.HalfNormal(RUN_SD_SCALE)  # noqa: E731

#: Epoch AI's headline estimates and bootstrap SEs (:mod:`jaxscale.published`), the centres and widths of
#: ``priors="published"``.
EPOCH_ESTIMATES = {name: (published.EPOCH[name], published.EPOCH_SE[name]) for name in published.EPOCH}


def _on_sampling_scale(p: Param, loc: float, scale: float) -> dist.Distribution:
    base = dist.Normal(float(loc), float(scale))
    if p.sampling_transform == "log":
        return dist.LogNormal(float(loc), float(scale))
    if p.sampling_transform == "logit":
        return dist.TransformedDistribution(base, dist.transforms.SigmoidTransform())
    return base


def _grid_prior(p: Param) -> tuple[float, float]:
    g = np.asarray(p.grid, dtype=np.float64)
    if p.transform == "identity" and p.positive:
        g = np.log(g[g > 0]) if np.any(g > 0) else np.zeros(1)
    lo, hi = float(g.min()), float(g.max())
    return 0.5 * (lo + hi), max(hi - lo, 2.0)


def default_priors(law: str | Law) -> dict[str, dist.Distribution]:
    """The default (weakly-informative) prior of every parameter of ``law``.

    Each parameter gets a Normal on its *sampling* scale (``Param.prior``):
    a LogNormal for positive parameters, a logit-Normal for ``(0, 1)`` ones, a
    Normal otherwise. The likelihood adds ``sigma ~ HalfNormal(0.1)`` (the
    residual scale of log-loss) and, for Student-t, ``df ~ 1 + Gamma(2, 0.1)``
    (df >= 1 keeps the likelihood bounded as ``sigma -> 0``).

    Examples
    --------
    >>> import jaxscale
    >>> from jaxscale.bayes import default_priors
    >>> pri = default_priors("chinchilla")                  # a name or a Law
    >>> {k: (round(float(v.loc), 3), float(v.scale)) for k, v in pri.items() if k in ("A", "alpha")}
    {'A': (6.0, 3.0), 'alpha': (-1.204, 0.5)}
    """
    law = get(law)
    out = {}
    for p in law.params:
        loc, scale = p.prior if p.prior is not None else _grid_prior(p)
        out[p.name] = _on_sampling_scale(p, loc, scale)
    out.update({k: f() for k, f in NOISE_PRIORS.items()})
    return out


def published_priors(law: Law, widen: float = 3.0) -> dict[str, dist.Distribution]:
    """Epoch AI's Chinchilla estimates as priors, with scales widened ``widen`` times.

    LogNormal priors centred on Epoch's estimates (Besiroglu et al. 2024), with
    log-scale sd = ``widen`` x (bootstrap SE / estimate). Only for ``chinchilla``.
    """
    if law.name != "chinchilla" or set(law.param_names) != set(EPOCH_ESTIMATES):
        raise LawError(f"priors='published' exists only for the 'chinchilla' law (Epoch AI 2024); got {law.name!r}.")
    if not np.isfinite(widen) or widen <= 0:
        raise LawError(f"widen must be a positive number; got {widen!r}.")
    out = default_priors(law)
    for name, (est, se) in EPOCH_ESTIMATES.items():
        out[name] = dist.LogNormal(float(np.log(est)), float(widen * se / est))
    return out


def _excludes(support, points) -> bool:
    try:
        return not bool(np.any(np.asarray(support.check(jnp.asarray(points, dtype=jnp.float64)))))
    except Exception:  # a support we cannot probe: let numpyro complain at sampling time
        return True


def _domain(p: Param) -> tuple[str, list[float]]:
    if p.transform == "logit":
        return "(0, 1)", [-0.5, -1e-9, 0.0, 1.0, 1.5]
    if p.transform == "log" or p.positive:
        return "(0, inf)", [-1.0, -1e-9, 0.0]
    return "the real line", []


def resolve_priors(law: Law, priors: Any = None, fixed: Mapping[str, float] | None = None,
                   likelihood: str = "student_t", extra: tuple[str, ...] = ()) -> dict[str, dist.Distribution]:
    """Defaults, overridden by ``priors``; every override checked for name and support."""
    if priors is None or (isinstance(priors, str) and priors == "default"):
        base, user = default_priors(law), {}
    elif isinstance(priors, str) and priors == "published":
        base, user = published_priors(law), {}
    elif isinstance(priors, Mapping):
        base, user = default_priors(law), dict(priors)
    else:
        raise LawError(f"priors must be None, 'default', 'published' or a dict of numpyro distributions; got {priors!r}.")
    noise = ("sigma", "df") if likelihood == "student_t" else ("sigma",)
    allowed = (*law.param_names, *noise, *extra)
    for name, d in user.items():
        if name == "run_sd" and name not in allowed:
            raise LawError("A prior for 'run_sd' needs the run effect: data with a 'run' column (several rows per "
                           "run) and run_effect=True or 'auto'.")
        if name not in allowed:
            raise LawError(
                f"Prior for {name!r}, but law {law.name!r} has parameters {list(law.param_names)} "
                f"(and the {likelihood} likelihood adds {list(noise)}{', ' + str(list(extra)) if extra else ''})."
            )
        if fixed and name in fixed:
            raise LawError(f"Parameter {name!r} is fixed at {fixed[name]}; it cannot also have a prior.")
        if not isinstance(d, dist.Distribution):
            raise LawError(f"The prior for {name!r} must be a numpyro distribution; got {type(d).__name__}.")
        if d.event_shape != () or d.batch_shape != ():
            raise LawError(f"The prior for {name!r} must be scalar; got batch shape {d.batch_shape} "
                           f"and event shape {d.event_shape}.")
        if d.support.is_discrete:
            raise LawError(f"The prior for {name!r} must be continuous; {type(d).__name__} is discrete.")
        if name in law.param_names:
            domain, outside = _domain(law.params[law.param_names.index(name)])
        elif name in ("sigma", "df", "tau", "run_sd") or name.endswith("_tau"):
            domain, outside = "(0, inf)", [-1.0, -1e-9, 0.0]
        else:
            domain, outside = "the real line", []
        if outside and not _excludes(d.support, outside):
            raise LawError(
                f"The prior for {name!r} has support {d.support}, but {name!r} must lie in {domain} "
                f"(e.g. use dist.LogNormal or dist.HalfNormal for a positive parameter)."
            )
    base.update(user)
    return {k: v for k, v in base.items() if k in (*law.param_names, *noise, *extra) and not (fixed and k in fixed)}
