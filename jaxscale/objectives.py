"""Objectives on log-space residuals ``r = log prediction - log target``.

Each objective is a sum over points of a per-residual penalty, so that L-BFGS
and Levenberg-Marquardt see the same scale as Hoffmann et al. and Epoch AI
(averaging makes the optimiser stop early; Besiroglu et al. 2024).

- ``huber``: ``sum_i huber_delta(r_i)`` with ``huber_delta(r) = r^2/2`` for
  ``|r| <= delta`` else ``delta (|r| - delta/2)`` (``scipy.special.huber``).
- ``squared``: ``sum_i r_i^2``.
- ``likelihood``: Epoch's negative Huber log-likelihood with a free scale,
  ``sum_i [huber_delta(r_i / sigma) + log sigma + log Z(delta)]`` with
  ``Z(delta) = sqrt(2 pi) (1 - 2 Phi(-delta)) + 2 exp(-delta^2/2) / delta``;
  the scale is profiled out (its optimum given the residuals is found exactly
  at every step) and reported as ``sigma``.

``huber`` takes an ``overestimate`` factor (asymmetric Huber, as OLMo-core's
ladder fits: ``overestimate_penalty`` of ``ChinchillaParametricFit`` in
``src/olmo_core/model_ladder/analysis/scaling_laws.py``): a point the law
over-predicts (``r > 0``) has its Huber term multiplied by it, so a factor
> 1 pushes the curve towards the lower envelope of the losses. ``1`` is plain
Huber, exactly.

Per-point weights (``ScalingData.weight``, bootstrap counts) multiply each
point's term, the likelihood's ``log sigma + log Z`` included: a weight of 2
is the same objective as the point given twice.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax.numpy as jnp

from jaxscale import validate
from jaxscale.errors import ArgumentError

OBJECTIVES = ("huber", "squared", "likelihood")


class Objective(NamedTuple):
    """Which objective, its Huber ``delta`` and its ``overestimate`` factor (hashable: keys compiled solvers)."""

    name: str = "huber"
    delta: float = 1e-3
    overestimate: float = 1.0


def make_objective(name: str, delta: float, overestimate: float = 1.0) -> Objective:
    """An :class:`Objective`, its arguments checked (an :class:`~jaxscale.errors.ArgumentError` if bad).

    ``overestimate`` (> 0) multiplies the Huber term of every point the law over-predicts; only the ``huber``
    objective takes one other than 1.

    >>> import numpy as np
    >>> make_objective("huber", np.float32(0.5))
    Objective(name='huber', delta=0.5, overestimate=1.0)
    >>> make_objective("huber", 1e-3, overestimate=10).overestimate
    10.0
    """
    name = validate.choice(name, "objective", OBJECTIVES)
    overestimate = validate.positive(overestimate, "overestimate_penalty")
    if overestimate != 1.0 and name != "huber":
        raise ArgumentError(f"overestimate_penalty={overestimate:g} applies to objective='huber' only; got "
                            f"objective={name!r}.")
    return Objective(name, validate.positive(delta, "delta"), overestimate)


def huber(r, delta, overestimate: float = 1.0):
    """Huber penalty, ``scipy.special.huber(delta, r)``; times ``overestimate`` where ``r > 0``.

    >>> import numpy as np
    >>> np.asarray(huber(np.array([-2e-3, 0.0, 2e-3]), 1e-3, overestimate=10.0)).tolist()
    [1.5e-06, 0.0, 1.5e-05]
    """
    a = jnp.abs(r)
    rho = jnp.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))
    return rho if overestimate == 1.0 else jnp.where(r > 0, overestimate * rho, rho)


def huber_log_normalizer(delta: float) -> float:
    """``log Z(delta)`` of the unit-scale Huber density ``exp(-huber_delta(u)) / Z``."""
    phi_tail = 0.5 * math.erfc(delta / math.sqrt(2.0))  # Phi(-delta)
    return math.log(math.sqrt(2 * math.pi) * (1 - 2 * phi_tail) + 2 * math.exp(-0.5 * delta**2) / delta)


def profile_log_sigma(r, delta, n_newton: int = 6, weight=None):
    """Optimal ``log sigma`` of the Huber likelihood for residuals ``r`` (last axis = points).

    ``h(s) = sum c huber(r e^-s) + (sum c) s`` is convex in ``s`` (``c`` the
    optional per-point ``weight``, e.g. bootstrap counts); start from the
    all-linear-regime solution and take guarded Newton steps.
    """
    import jax

    c = jnp.ones_like(r) if weight is None else weight
    n = c.sum(-1)
    absr = jnp.abs(r) if weight is None else jnp.where(c > 0, jnp.abs(r), 0.0)
    tiny = jnp.finfo(r.dtype).tiny
    s = jnp.log(jnp.maximum(delta * (c * absr).sum(-1) / n, tiny))

    def body(_, s):
        u = absr * jnp.exp(-s)[..., None]
        quad = u <= delta
        psi_u = jnp.where(quad, u * u, delta * u)  # psi(u) u
        h1 = n - (c * psi_u).sum(-1)
        h2 = (c * jnp.where(quad, 2 * u * u, delta * u)).sum(-1)
        return s - h1 / jnp.maximum(h2, 1e-30)

    return jax.lax.fori_loop(0, n_newton, body, s)


def value_and_weights(obj: Objective, r, eta: float = 1.0, weight=None):
    """Objective value, ``psi = d rho / d r`` and curvature weights ``w`` for residuals ``r``.

    Returns ``(f, psi, w, log_sigma)``; the Gauss-Newton Hessian is
    ``J^T diag(w) J`` and the gradient ``J^T psi``. For Huber penalties the
    weight of a residual in the quadratic zone is 1 (its exact curvature); one
    in the linear zone gets ``eta * delta / |r|``: ``eta = 1`` is classical
    IRLS (a majoriser: safe but, like IRLS for L1, slow to converge), and
    ``eta -> 0`` the exact piecewise curvature (fast near the optimum but
    singular far from it). The solver uses a blend (``SolverConfig.eta``).

    ``weight`` (same shape as ``r``, optional) multiplies each point's term:
    integer bootstrap counts give exactly the objective of the resampled data
    with repeated points.
    """
    d = obj.delta
    if obj.name == "likelihood":
        s = profile_log_sigma(r, d, weight=weight)
        n = r.shape[-1] if weight is None else weight.sum(-1)
        inv = jnp.exp(-s)[..., None]
        u = r * inv
        a = jnp.abs(u)
        quad = a <= d
        rho = jnp.where(quad, 0.5 * u * u, d * (a - 0.5 * d))
        psi = jnp.clip(u, -d, d) * inv
        w = jnp.where(quad, 1.0, eta * d / jnp.where(quad, 1.0, a)) * inv * inv
        if weight is not None:
            rho, psi, w = _weigh(weight, rho, psi, w)
        return rho.sum(-1) + n * s + n * huber_log_normalizer(d), psi, w, s
    if obj.name == "squared":
        rho, psi, w = r * r, 2 * r, jnp.full_like(r, 2.0)
    else:  # huber
        a = jnp.abs(r)
        quad = a <= d
        rho = jnp.where(quad, 0.5 * r * r, d * (a - 0.5 * d))
        psi = jnp.clip(r, -d, d)
        w = jnp.where(quad, 1.0, eta * d / jnp.where(quad, 1.0, a))
        if obj.overestimate != 1.0:  # a static factor: plain Huber compiles (and computes) exactly as before
            over = jnp.where(r > 0, obj.overestimate, 1.0)
            rho, psi, w = rho * over, psi * over, w * over
    if weight is not None:
        rho, psi, w = _weigh(weight, rho, psi, w)
    return rho.sum(-1), psi, w, jnp.zeros(r.shape[:-1], r.dtype)


def _weigh(weight, *terms):
    # A point with weight 0 is absent from the resample: it must not count
    # even where the model is NaN there (0 * NaN would poison the sum).
    present = weight > 0
    return tuple(jnp.where(present, t * weight, 0.0) for t in terms)
