"""Derived quantities: pure JAX functions of a law's natural parameters.

Each function here takes a dict of natural parameters (scalars or arrays, as
``FitResult.params`` or one bootstrap/posterior draw) and returns a JAX array,
so it can be vmapped over thousands of draws (``BootstrapResult.derive``).

The allocation formulas are Hoffmann et al. (2022), Eq. 4, for
``L = E + A/N^alpha + B/D^beta`` with ``C = k N D`` (``k`` FLOPs per
parameter per token, 6 by default)::

    G = (alpha A / (beta B))^(1/(alpha+beta)),  a = beta/(alpha+beta),  b = alpha/(alpha+beta)
    N_opt(C) = G (C/k)^a,  D_opt(C) = (C/k)^b / G

>>> import jaxscale, jaxscale.derived as dv
>>> p = jaxscale.published.EPOCH   # Epoch AI (2024)
>>> round(float(dv.exponent_a(p)), 3)
0.513
>>> round(float(dv.tokens_per_param(5.88e23)(p)), 1)
18.3
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from jaxscale import validate
from jaxscale.errors import ArgumentError, LawError

_CHINCHILLA = ("E", "A", "B", "alpha", "beta")


def _positive_array(values, name: str, *, budget: bool = False) -> np.ndarray:
    """``values`` (a number or an array of any shape) as float64, each finite and > 0, shape kept.

    ``budget=True`` words the errors as FLOPs (:func:`jaxscale.validate.budgets`).
    """
    try:
        arr = np.asarray(values)
        # tolist() turns 0-d and NumPy/JAX scalars into Python numbers, which the validators accept.
        items = arr.tolist()
    except (TypeError, ValueError):
        raise ArgumentError(f"{name} must be a number or an array of numbers; got {values!r}.") from None
    if budget:
        return validate.budgets(items, name).reshape(arr.shape)
    if arr.ndim == 0:
        return np.asarray(validate.positive(items, name), dtype=np.float64)
    flat = arr.ravel().tolist()
    if not flat:
        raise ArgumentError(f"{name} must hold at least one value.")
    return np.asarray([validate.positive(v, f"{name}[{i}]") for i, v in enumerate(flat)],
                      dtype=np.float64).reshape(arr.shape)


def _need(p: Mapping, names=_CHINCHILLA, what: str = "this quantity"):
    missing = [n for n in names if n not in p]
    if missing:
        raise LawError(
            f"{what} needs the parameters {list(names)} of a Chinchilla-form law (E + A/N^alpha + B/D^beta); "
            f"missing {missing}. For other laws use jaxscale.derived.loss_at or your own function."
        )


def exponent_a(p: Mapping) -> jnp.ndarray:
    """``a = beta / (alpha + beta)``: N_opt grows as ``C^a``."""
    _need(p, ("alpha", "beta"), "exponent_a")
    return jnp.asarray(p["beta"]) / (jnp.asarray(p["alpha"]) + p["beta"])


def exponent_b(p: Mapping) -> jnp.ndarray:
    """``b = alpha / (alpha + beta)``: D_opt grows as ``C^b``."""
    _need(p, ("alpha", "beta"), "exponent_b")
    return jnp.asarray(p["alpha"]) / (jnp.asarray(p["alpha"]) + p["beta"])


def G(p: Mapping) -> jnp.ndarray:
    """``G = (alpha A / (beta B))^(1/(alpha + beta))`` (Hoffmann Eq. 4)."""
    _need(p, ("A", "B", "alpha", "beta"), "G")
    al, be = jnp.asarray(p["alpha"]), jnp.asarray(p["beta"])
    # log form: A and B can be 1e10 in bootstrap tails
    return jnp.exp((jnp.log(al) + jnp.log(p["A"]) - jnp.log(be) - jnp.log(p["B"])) / (al + be))


def _budget_args(C, flops_per_token):
    return (jnp.asarray(_positive_array(C, "C", budget=True), dtype=float),
            validate.positive(flops_per_token, "flops_per_token"))


def n_opt(C, flops_per_token: float = 6.0) -> Callable[[Mapping], jnp.ndarray]:
    """``N_opt(C) = G (C/k)^a``: a function of the parameters, for budget(s) ``C``.

    Parameters
    ----------
    C
        Training budget(s) in FLOPs: a number or an array, each finite and > 0.
    flops_per_token
        ``k`` in ``C = k N D`` (6 by default), finite and > 0.

    Returns
    -------
    callable
        ``fn(params) -> array`` of the shape of ``C``, named ``"N_opt"``.

    Raises
    ------
    ArgumentError
        When ``C`` or ``flops_per_token`` is not a finite positive number, at construction.

    Examples
    --------
    >>> from jaxscale.published import EPOCH as p
    >>> round(float(n_opt(5.88e23)(p)) / 1e10, 2)
    7.31
    >>> n_opt(-1.0)
    Traceback (most recent call last):
    ...
    jaxscale.errors.ArgumentError: C must be > 0 (a budget in FLOPs); got -1.0.
    """
    C, flops_per_token = _budget_args(C, flops_per_token)

    def fn(p):
        return G(p) * (C / flops_per_token) ** exponent_a(p)

    fn.__name__ = "N_opt"
    fn.index = ("C", np.atleast_1d(np.asarray(C)).tolist())
    return fn


def d_opt(C, flops_per_token: float = 6.0) -> Callable[[Mapping], jnp.ndarray]:
    """``D_opt(C) = (C/k)^b / G``; arguments and errors as :func:`n_opt`."""
    C, flops_per_token = _budget_args(C, flops_per_token)

    def fn(p):
        return (C / flops_per_token) ** exponent_b(p) / G(p)

    fn.__name__ = "D_opt"
    fn.index = ("C", np.atleast_1d(np.asarray(C)).tolist())
    return fn


def tokens_per_param(C, flops_per_token: float = 6.0) -> Callable[[Mapping], jnp.ndarray]:
    """``D_opt(C) / N_opt(C)`` at budget(s) ``C``; arguments and errors as :func:`n_opt`."""
    n, d = n_opt(C, flops_per_token), d_opt(C, flops_per_token)

    def fn(p):
        return d(p) / n(p)

    fn.__name__ = "tokens_per_param"
    fn.index = n.index
    return fn


def loss_at(law, **covariates) -> Callable[[Mapping], jnp.ndarray]:
    """Predicted loss of ``law`` at the given covariates (e.g. ``N=7e10, D=1.4e12``), any law.

    >>> import jaxscale
    >>> f = loss_at(jaxscale.laws.get("chinchilla"), N=7e10, D=1.4e12)
    >>> round(float(f(dict(E=1.6934, A=406.4, B=410.7, alpha=0.3392, beta=0.2849))), 3)
    1.921

    Each covariate the law uses must be finite and > 0: otherwise an :class:`~jaxscale.errors.ArgumentError`
    naming it, at construction.
    """
    from jaxscale.laws import get, log_covariates

    law = get(law)
    covariates = {c: (_positive_array(v, c) if c in law.covariates else v) for c, v in covariates.items()}
    logx = jnp.asarray(log_covariates(law, covariates))
    shape = np.broadcast_shapes(*(np.shape(covariates[c]) for c in law.covariates))
    logx = logx.reshape(-1, len(law.covariates))

    def fn(p):
        _need(p, law.param_names, f"loss_at for law {law.name!r}")
        theta = jnp.stack([q.transform_fn.to_fit(jnp.asarray(p[q.name])) for q in law.params])
        return jnp.exp(jax.vmap(law.log_predict, in_axes=(None, 0))(theta, logx)).reshape(shape)

    fn.__name__ = "loss"
    points = np.broadcast_arrays(*(np.asarray(covariates[c], float) for c in law.covariates))
    fn.index = ("at", [", ".join(f"{c}={v:g}" for c, v in zip(law.covariates, row))
                       for row in zip(*(p.reshape(-1) for p in points))])
    return fn


def chinchilla_set(C, flops_per_token: float = 6.0) -> dict[str, Callable[[Mapping], jnp.ndarray]]:
    """The standard derived quantities of a Chinchilla fit, by name, at budget(s) ``C``."""
    return {
        "a": exponent_a,
        "b": exponent_b,
        "G": G,
        "N_opt": n_opt(C, flops_per_token),
        "D_opt": d_opt(C, flops_per_token),
        "tokens_per_param": tokens_per_param(C, flops_per_token),
    }


__all__ = ["G", "chinchilla_set", "d_opt", "exponent_a", "exponent_b", "loss_at", "n_opt", "tokens_per_param"]
