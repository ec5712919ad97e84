"""The learning-curve estimators M1-M4 of Alabdulmohsin, Neyshabur, Zhai (2022).

Each law is written, like the others, as the log of its prediction for one point with the covariate as a log.
The sign convention is the paper's: the exponent ``c`` is negative (``eps ~ beta x^c``), in all four.

* ``m1``: ``eps = beta x^c``.
* ``m2``: ``eps = eps_inf + beta x^c``. This is jaxscale's ``power`` law (``E + A x^-alpha``) under another name:
  ``m2`` is ``power`` with ``E = eps_inf``, ``A = beta``, ``alpha = -c`` (its parameters keep ``power``'s names).
* ``m3``: ``eps = beta (x^-1 + gamma)^-c``, the form of the authors' code (``methods/m3.py``: no separate
  ``eps_inf``; the limit as x grows is ``beta gamma^-c``, and at ``gamma = 0`` it is M1).
* ``m4``: the implicit law ``(eps - eps_inf) / (eps_0 - eps)^alpha = beta x^c``. Its prediction is the root of
  that equation in ``(eps_inf, eps_0)``, found per point by a fixed number of safeguarded Newton steps (see
  :func:`m4_solve`); the derivatives come from the implicit function theorem (``jax.custom_jvp``), so the law is
  pure, jit/vmap friendly and differentiable to any order.

The authors fit each estimator by alternating least squares on the log of the excess loss; jaxscale fits them as
any law (least squares, Huber by default, on the log of the prediction), and the starts copy the authors' inner
step: for each candidate ``eps_inf, eps_0, alpha`` (or ``gamma``), ``beta, c`` by linear regression.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from jaxscale.errors import DataError, LawError
from jaxscale.laws._catalogue import check_resource, power
from jaxscale.laws._registry import Law, Param, register

REFERENCE = "Alabdulmohsin, Neyshabur, Zhai 2022, NeurIPS, arXiv:2209.06640, Sec. 2"
#: Safeguarded Newton steps of :func:`m4_solve`: from its bracket (a log 2-wide band of the piecewise-linear
#: asymptote) Newton converges quadratically in a handful; 40 leaves room for the bisection fall-backs when alpha
#: is tiny and the bracket wide (tests/test_revisiting.py checks the root against scipy to 1e-12).
M4_STEPS = 40
_C = Param("c", "identity", (-0.5, -0.2, -0.05), prior=(-0.3, 0.5), kind="exponent")


def _slope_fit(u, v):
    """``(intercept, slope)`` of the least-squares line v = a + s u."""
    s, a = np.polyfit(u, v, 1)
    return float(a), float(s)


# --------------------------------------------------------------------------------------------------------- M1
def _m1_log_predict(theta, logx):
    log_beta, c = theta
    return log_beta + c * logx[0]


def _m1_starts(logx, logy):
    a, s = _slope_fit(logx[:, 0], logy)
    med = float(np.median(logx[:, 0]))
    # the least-squares line, and two copies tilted about the median x
    return np.array([(a - ds * med, s + ds) for ds in (0.0, -0.05, 0.05)])


def m1(resource: str = "x") -> Law:
    r"""Alabdulmohsin et al.'s M1: a pure power law, ``eps = beta x^c`` (``c < 0``).

    Parameters ``beta`` (positive; fitted as a log) and ``c`` (the exponent, negative). The default starts hold
    the least-squares line in log-log (the authors' estimator, which is closed form) and two tilted copies.

    References
    ----------
    Alabdulmohsin, Neyshabur, Zhai (2022), *Revisiting Neural Scaling Laws in Language and Vision*, NeurIPS,
    arXiv:2209.06640, Sec. 2 (M1, after Kaplan et al. 2020 and Hestness et al. 2017).

    Examples
    --------
    >>> import jaxscale
    >>> law = jaxscale.laws.get("m1")
    >>> law.predict(dict(beta=2.0, c=-0.5), x=[1.0, 100.0]).round(6).tolist()
    [2.0, 0.2]
    """
    resource = check_resource(resource)
    return Law(
        name="m1",
        log_predict=_m1_log_predict,
        params=(Param("beta", "log", (0.0, 3.0), positive=True, prior=(0.0, 5.0)), _C),
        covariates=(resource,),
        formula=f"eps = beta * {resource}^c",
        reference=REFERENCE,
        starts_fn=_m1_starts,
        options=(("resource", resource),),
    )


# --------------------------------------------------------------------------------------------------------- M2
def m2(resource: str = "x") -> Law:
    r"""Alabdulmohsin et al.'s M2, ``eps = eps_inf + beta x^c``: jaxscale's :func:`~jaxscale.laws.power` law.

    M2 is the saturating power law ``E + A x^-alpha`` exactly, so ``m2`` is ``power`` under the name ``m2``, with
    ``power``'s parameters: ``E = eps_inf``, ``A = beta``, ``alpha = -c``.

    References
    ----------
    Alabdulmohsin, Neyshabur, Zhai (2022), arXiv:2209.06640, Sec. 2 (M2, after Hestness et al. 2017).

    Examples
    --------
    >>> import jaxscale
    >>> law = jaxscale.laws.get("m2")
    >>> law.param_names, law.log_predict is jaxscale.laws.get("power").log_predict
    (('E', 'A', 'alpha'), True)
    """
    return power(resource)._replace(
        name="m2",
        formula=f"eps = eps_inf + beta * {resource}^c   (= power: E = eps_inf, A = beta, alpha = -c)",
        reference=f"{REFERENCE}; the power law of Kaplan et al. 2020",
    )


# --------------------------------------------------------------------------------------------------------- M3
def _m3_log_predict(theta, logx):
    log_beta, c, log_gamma = theta
    return log_beta - c * jnp.logaddexp(-logx[0], log_gamma)


def _m3_starts(logx, logy):
    lx = logx[:, 0]
    rows = []
    # gamma against 1/x at the largest x: the curve saturates inside the data (10), near its end (1) or beyond
    for q in (0.01, 0.1, 1.0, 10.0):
        log_gamma = float(np.log(q) - lx.max())
        u = np.logaddexp(-lx, log_gamma)
        a, s = _slope_fit(u, logy)
        rows.append((a, -s, log_gamma))
    return np.array(rows)


def m3(resource: str = "x") -> Law:
    r"""Alabdulmohsin et al.'s M3: ``eps = beta (x^-1 + gamma)^-c`` (``c < 0``, ``gamma > 0``).

    The form of the authors' code (``revisiting_neural_scaling_laws/methods/m3.py``, whose exponent is this
    ``-c``): a power law for ``x << 1/gamma`` that saturates at ``beta gamma^-c``. Parameters ``beta, gamma``
    (positive; fitted as logs) and ``c``.

    References
    ----------
    Alabdulmohsin, Neyshabur, Zhai (2022), arXiv:2209.06640, Sec. 2 (M3, after Zhai et al. 2022, *Scaling
    Vision Transformers*).

    Examples
    --------
    >>> import jaxscale
    >>> law = jaxscale.laws.get("m3")
    >>> [round(float(v), 4) for v in law.predict(dict(beta=1.0, c=-0.5, gamma=1e-4), x=[1e2, 1e8])]
    [0.1005, 0.01]
    """
    resource = check_resource(resource)
    return Law(
        name="m3",
        log_predict=_m3_log_predict,
        params=(
            Param("beta", "log", (0.0, 3.0), positive=True, prior=(0.0, 5.0)),
            _C,
            Param("gamma", "log", (-15.0, -10.0, -5.0), positive=True, prior=(-10.0, 8.0)),
        ),
        covariates=(resource,),
        formula=f"eps = beta * ({resource}^-1 + gamma)^(-c)",
        reference=REFERENCE,
        starts_fn=_m3_starts,
        options=(("resource", resource),),
    )


# --------------------------------------------------------------------------------------------------------- M4
def _m_inverse(v, alpha):
    # inverse of m(z) = min(z, 0) + alpha max(z, 0), the piecewise-linear asymptote of h(z) + r
    return jnp.where(v < 0, v, v / alpha)


def _m4_residual(z, r, alpha):
    return jax.nn.log_sigmoid(z) - alpha * jax.nn.log_sigmoid(-z) - r


@jax.jit
def _m4_root(r, alpha):
    # jitted so that eager callers (Law.predict) compile the loop once per shape rather than on every call
    log2 = jnp.log(2.0)
    lo, hi = _m_inverse(r - alpha * log2, alpha), _m_inverse(r + log2, alpha)
    z = jnp.clip(_m_inverse(r, alpha), lo, hi)

    def step(_, state):
        z, lo, hi = state
        h = _m4_residual(z, r, alpha)
        lo, hi = jnp.where(h < 0, z, lo), jnp.where(h > 0, z, hi)
        dh = jax.nn.sigmoid(-z) + alpha * jax.nn.sigmoid(z)
        newton = z - h / dh
        # inclusive: at convergence the Newton step rounds onto the bracket's end, and must not bisect away
        inside = (newton >= lo) & (newton <= hi)
        return jnp.where(inside, newton, 0.5 * (lo + hi)), lo, hi

    z, _, _ = jax.lax.fori_loop(0, M4_STEPS, step, (z, lo, hi))
    return z


@jax.custom_jvp
def m4_solve(r, alpha):
    r"""The root ``z`` of ``log sigmoid(z) - alpha log sigmoid(-z) = r`` (``alpha > 0``), elementwise.

    M4's ``(eps - eps_inf) / (eps_0 - eps)^alpha = f`` becomes this with ``eps = eps_inf + b sigmoid(z)``,
    ``b = eps_0 - eps_inf`` and ``r = log f - (1 - alpha) log b``. The left side increases strictly in ``z``, so
    the root is unique. It lies in the bracket where the piecewise-linear asymptote ``m(z) = min(z, 0) +
    alpha max(z, 0)`` is within ``[r - alpha log 2, r + log 2]``; :data:`M4_STEPS` Newton steps from the
    asymptote's root, each replaced by a bisection when it leaves the bracket, find it. Derivatives are those of
    the implicit function theorem, ``dz = (dr + log sigmoid(-z) d alpha) / (sigmoid(-z) + alpha sigmoid(z))``.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> z = m4_solve(jnp.asarray(-1.0), jnp.asarray(0.5))
    >>> float(jnp.abs(jnp.log(jax.nn.sigmoid(z)) - 0.5 * jnp.log(jax.nn.sigmoid(-z)) + 1.0)) < 1e-12
    True
    """
    return _m4_root(r, alpha)


@m4_solve.defjvp
def _m4_solve_jvp(primals, tangents):
    r, alpha = primals
    dr, dalpha = tangents
    z = m4_solve(r, alpha)
    dh = jax.nn.sigmoid(-z) + alpha * jax.nn.sigmoid(z)
    return z, (dr + jax.nn.log_sigmoid(-z) * dalpha) / dh


def _m4_log_predict(theta, logx):
    log_inf, log_0, log_beta, c, log_alpha = theta
    alpha = jnp.exp(log_alpha)
    # log(eps_0 - eps_inf): NaN when eps_0 <= eps_inf, so the solver rejects such a step (a barrier)
    log_b = log_0 + jnp.log(-jnp.expm1(log_inf - log_0))
    r = log_beta + c * logx[0] - (1.0 - alpha) * log_b
    z = m4_solve(r, alpha)
    return jnp.logaddexp(log_inf, log_b + jax.nn.log_sigmoid(z))


def _m4_starts(logx, logy):
    lx, y = logx[:, 0], np.exp(logy)
    lo, hi = float(y.min()), float(y.max())
    rows = []
    for eps_0 in (hi * 1.02, hi * 1.3, hi * 3.0):
        for frac in (0.1, 0.6, 0.95):
            eps_inf = frac * lo
            for alpha in (0.1, 0.5, 1.0, 2.0):
                # the authors' inner step: beta, c by least squares on log g = log beta + c log x
                g = np.log(y - eps_inf) - alpha * np.log(eps_0 - y)
                a, s = _slope_fit(lx, g)
                rows.append((np.log(eps_inf), np.log(eps_0), a, s, np.log(alpha)))
    return np.array(rows)


def _m4_check(values: Mapping[str, float], logy: np.ndarray | None = None) -> None:
    """M4's domain: ``eps_0 > eps_inf``, and the data strictly inside ``(eps_inf, eps_0)`` for a fixed bound."""
    lo, hi = values.get("eps_inf"), values.get("eps_0")
    if lo is not None and hi is not None and np.any(np.asarray(hi) <= np.asarray(lo)):
        raise LawError(f"law 'm4' needs eps_0 > eps_inf (eps_0 is the loss of a random guess, eps_inf the "
                            f"loss in the limit); got eps_inf={np.asarray(lo).tolist()}, "
                            f"eps_0={np.asarray(hi).tolist()}.")
    if logy is None:
        return
    y = np.exp(np.asarray(logy, np.float64))
    for name, bad, side in ((("eps_0"), None if hi is None else y >= hi, ">="),
                            (("eps_inf"), None if lo is None else y <= lo, "<=")):
        if bad is not None and bad.any():
            i = int(np.argmax(bad))
            raise DataError(f"law 'm4' predicts values strictly inside (eps_inf, eps_0), but loss row {i} = "
                            f"{y[i]:.6g} is {side} the fixed {name} = {values[name]:g} ({int(bad.sum())} such "
                            f"rows); fix {name} beyond the data or let it be fitted.")


def m4_check(params: Mapping[str, float], loss=None) -> None:
    """Check M4 parameters (and optionally losses) before use: a clear error instead of a NaN prediction.

    ``eps_0 <= eps_inf`` is a :class:`~jaxscale.errors.LawError`; a loss at or beyond a given ``eps_inf``
    or ``eps_0`` (the law's predictions lie strictly between them) a :class:`~jaxscale.errors.DataError` naming
    the row. :func:`jaxscale.fit` runs the data check for fixed bounds itself (``fixed={"eps_0": 1.0}``).

    Examples
    --------
    >>> m4_check(dict(eps_inf=0.1, eps_0=1.0), loss=[0.5, 0.9])
    >>> m4_check(dict(eps_inf=0.1, eps_0=1.0), loss=[0.5, 1.2])
    Traceback (most recent call last):
    ...
    jaxscale.errors.DataError: law 'm4' predicts values strictly inside (eps_inf, eps_0), but loss row 1 = 1.2 is >= the fixed eps_0 = 1 (1 such rows); fix eps_0 beyond the data or let it be fitted.
    """
    logy = None
    if loss is not None:
        y = np.asarray(loss, np.float64).ravel()
        if not np.all(np.isfinite(y) & (y > 0)):
            raise DataError("m4_check: losses must be finite and > 0.")
        logy = np.log(y)
    _m4_check(params, logy)


def m4(resource: str = "x") -> Law:
    r"""Alabdulmohsin et al.'s M4, the implicit law of the paper:

    .. math:: \frac{\varepsilon_x - \varepsilon_\infty}{(\varepsilon_0 - \varepsilon_x)^{\alpha}} = \beta x^{c}

    ``eps_0`` is the loss of a random guess (the curve's start), ``eps_inf`` its limit; between them the curve
    is a sigmoid in log x whose tail is the power law ``eps_inf + beta x^c``. The prediction at each x is the
    root in ``(eps_inf, eps_0)`` (:func:`m4_solve`). Parameters ``eps_inf, eps_0, beta, alpha`` (positive; fitted
    as logs) and ``c`` (negative). ``eps_0 <= eps_inf`` predicts NaN, so a fit never steps there, and
    :meth:`~jaxscale.laws.Law.predict` raises; fixing ``eps_0`` (``fixed={"eps_0": 1.0}``, an error rate) with a
    loss at or above it is a :class:`~jaxscale.errors.DataError`.

    References
    ----------
    Alabdulmohsin, Neyshabur, Zhai (2022), *Revisiting Neural Scaling Laws in Language and Vision*, NeurIPS,
    arXiv:2209.06640, Sec. 2 (estimator M4); the authors' code ``revisiting_neural_scaling_laws/methods/m4.py``.

    Examples
    --------
    >>> import jaxscale
    >>> law = jaxscale.laws.get("m4")
    >>> p = dict(eps_inf=0.2, eps_0=1.0, beta=5.0, c=-0.3, alpha=1.0)
    >>> eps = law.predict(p, x=[1e3, 1e6])
    >>> [round(float(v), 4) for v in eps]
    [0.509, 0.2587]
    >>> [round(float(v), 4) for v in (eps - 0.2) / (1.0 - eps)]  # = beta x^c
    [0.6295, 0.0792]
    """
    resource = check_resource(resource)
    return Law(
        name="m4",
        log_predict=_m4_log_predict,
        params=(
            Param("eps_inf", "log", (-3.0, -1.0), positive=True, prior=(-1.0, 1.5)),
            Param("eps_0", "log", (0.0, 1.0), positive=True, prior=(0.0, 1.0)),
            Param("beta", "log", (0.0, 3.0), positive=True, prior=(0.0, 5.0)),
            _C,
            Param("alpha", "log", (float(np.log(0.5)), 0.0), positive=True, prior=(float(np.log(0.5)), 1.0),
                  kind="exponent"),
        ),
        covariates=(resource,),
        formula=f"(eps - eps_inf) / (eps_0 - eps)^alpha = beta * {resource}^c",
        reference=REFERENCE,
        starts_fn=_m4_starts,
        options=(("resource", resource),),
        check_fn=_m4_check,
    )


for _factory in (m1, m2, m3, m4):
    register(_factory)
