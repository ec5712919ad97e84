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
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax.numpy as jnp

from jaxscale import validate

OBJECTIVES = ("huber", "squared", "likelihood")


class Objective(NamedTuple):
    """Which objective and its Huber ``delta`` (hashable: keys compiled solvers)."""

    name: str = "huber"
    delta: float = 1e-3


def make_objective(name: str, delta: float) -> Objective:
    """An :class:`Objective`, its arguments checked (an :class:`~jaxscale.errors.ArgumentError` if bad).

    >>> import numpy as np
    >>> make_objective("huber", np.float32(0.5))
    Objective(name='huber', delta=0.5)
    """
    name = validate.choice(name, "objective", OBJECTIVES)
    return Objective(name, validate.positive(delta, "delta"))


def huber(r, delta):
    """Huber penalty, ``scipy.special.huber(delta, r)``."""
    a = jnp.abs(r)
    return jnp.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


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
    if weight is not None:
        rho, psi, w = _weigh(weight, rho, psi, w)
    return rho.sum(-1), psi, w, jnp.zeros(r.shape[:-1], r.dtype)


def _weigh(weight, *terms):
    # A point with weight 0 is absent from the resample: it must not count
    # even where the model is NaN there (0 * NaN would poison the sum).
    present = weight > 0
    return tuple(jnp.where(present, t * weight, 0.0) for t in terms)
