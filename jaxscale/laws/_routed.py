"""Laws of routed (mixture-of-experts) language models.

- ``moe_clark``: Clark et al. (2022), a bilinear law in ``log N`` and ``log E`` (experts), written for ``log L``
  directly, optionally with their saturating transform of the expert count (``bounded=True``).
- ``moe_granularity``: Krajewski et al. (2024), a Chinchilla form whose parameter term shrinks with the
  granularity ``G`` of the experts.

Both take their covariates as logs, like every law here; the compute allocations built on them are in
:mod:`jaxscale.routed`. The expert count and the granularity must be >= 1: :class:`~jaxscale.ScalingData`
rejects rows below that (naming the column and the row) before any fit.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxscale.errors import LawError
from jaxscale.laws._registry import Law, Param, register

_EXP_PRIOR = (float(np.log(0.3)), 0.5)


# --- Clark et al. (2022) ----------------------------------------------------------------------------------------

def _saturated_log_experts(log_E, log_start, log_max):
    # Clark et al.'s E-hat: 1/E^ = 1/(E - 1 + (1/E_start - 1/E_max)^-1) + 1/E_max, so E^ = E_start at E = 1 (a
    # dense model) and E^ -> E_max as E grows. An E_max below E_start has no meaning; the clamp keeps it finite.
    inv_gap = jnp.maximum(jnp.exp(-log_start) - jnp.exp(-log_max), 1e-12)
    inner = jnp.expm1(log_E) + 1.0 / inv_gap
    return -jnp.log(1.0 / inner + jnp.exp(-log_max))


def _clark_log_predict(theta, logx):
    a, b, c, d = theta
    log_N, log_E = logx
    return a * log_N + b * log_E + c * log_N * log_E + d


def _clark_bounded_log_predict(theta, logx):
    a, b, c, d, log_start, log_max = theta
    log_N, log_E = logx
    log_Eh = _saturated_log_experts(log_E, log_start, log_max)
    return a * log_N + b * log_Eh + c * log_N * log_Eh + d


def _clark_starts(logx, logy):
    # log L is linear in (a, b, c, d): the least-squares plane is the exact optimum of the squared objective and
    # a good start for the robust ones; a few neighbours guard against an ill-conditioned design.
    log_N, log_E = logx[:, 0], logx[:, 1]
    X = np.stack([log_N, log_E, log_N * log_E, np.ones_like(log_N)], axis=1)
    coef = np.linalg.lstsq(X, logy, rcond=None)[0]
    rows = [coef]
    my, mN = float(np.median(logy)), float(np.median(log_N))
    for a in (-0.1, -0.05):
        for b in (-0.1, 0.0):
            rows.append([a, b, 0.0, my - a * mN])
    return np.array(rows)


def _clark_bounded_starts(logx, logy):
    base = _clark_starts(logx, logy)
    rows = [list(r) + [s, m] for r in base for s in np.log([1.5, 4.0]) for m in np.log([64.0, 512.0])]
    return np.array(rows)


def moe_clark(bounded: bool = False) -> Law:
    r"""Routed language models: loss against dense size and expert count (Clark et al. 2022, Eq. 1).

    .. math:: \log L(N, E) = a \log N + b \log \hat E + c \log N \log \hat E + d

    ``N`` is the parameter count of the dense model the routed one is built on (the parameters a token sees),
    ``E`` the number of experts (covariate ``experts``, >= 1; 1 is the dense model). The law is written for
    ``log L`` directly: it is linear in ``a, b, c, d`` (all on the natural scale, logs natural). With
    ``bounded=False`` (the default) ``E^ = E``; no fused Jacobian (autodiff of this linear form was as fast:
    0.69 s against 1.19 s for 256 starts on 2,000 points). ``bounded=True`` uses the paper's saturating transform, with
    two more parameters ``E_start < E_max``:

    .. math:: \frac{1}{\hat E} = \frac{1}{E - 1 + (1/E_{start} - 1/E_{max})^{-1}} + \frac{1}{E_{max}}

    so that ``E^ = E_start`` at ``E = 1`` and ``E^ -> E_max`` for many experts. ``b + c log N`` is the slope of
    ``log L`` in ``log E^``: routing helps while it is negative, i.e. below ``N = exp(-b/c)``
    (:func:`jaxscale.routed.experts_optimal` reports it).

    References
    ----------
    Clark et al. (2022), *Unified Scaling Laws for Routed Language Models*, ICML, arXiv:2202.01169.

    Examples
    --------
    >>> import jaxscale
    >>> law = jaxscale.laws.get("moe_clark")
    >>> p = dict(a=-0.08, b=-0.1, c=0.004, d=2.7)
    >>> [round(float(v), 4) for v in law.predict(p, N=1e9, experts=[1.0, 64.0])]
    [2.8353, 2.6406]
    >>> jaxscale.laws.get("moe_clark", bounded=True).param_names
    ('a', 'b', 'c', 'd', 'E_start', 'E_max')
    """
    if not isinstance(bounded, (bool, np.bool_)):
        raise LawError(f"moe_clark: bounded must be True or False; got {bounded!r}.")
    params = (
        Param("a", "identity", (-0.1, -0.05), prior=(-0.08, 0.1), kind="exponent"),
        Param("b", "identity", (-0.1, 0.0), prior=(-0.1, 0.2), kind="exponent"),
        Param("c", "identity", (0.0, 0.01), prior=(0.0, 0.05), kind="exponent"),
        Param("d", "identity", (0.0, 2.0), prior=(2.0, 3.0)),
    )
    reference = "Clark et al. 2022, arXiv:2202.01169, Eq. 1"
    if not bounded:
        return Law(
            name="moe_clark",
            log_predict=_clark_log_predict,
            params=params,
            covariates=("N", "experts"),
            formula="log L = a log N + b log E + c log N log E + d",
            reference=reference,
            starts_fn=_clark_starts,
            options=(("bounded", False),),
        )
    return Law(
        name="moe_clark",
        log_predict=_clark_bounded_log_predict,
        params=params + (
            Param("E_start", "log", tuple(np.log([1.5, 4.0])), positive=True, prior=(float(np.log(2.0)), 1.0)),
            Param("E_max", "log", tuple(np.log([64.0, 512.0])), positive=True, prior=(float(np.log(300.0)), 1.5)),
        ),
        covariates=("N", "experts"),
        formula="log L = a log N + b log E^ + c log N log E^ + d; "
                "1/E^ = 1/(E - 1 + (1/E_start - 1/E_max)^-1) + 1/E_max",
        reference="Clark et al. 2022, arXiv:2202.01169, Eq. 1 with the bounded E^",
        starts_fn=_clark_bounded_starts,
        options=(("bounded", True),),
    )


# --- Krajewski et al. (2024) ------------------------------------------------------------------------------------

def _granularity_log_predict(theta, logx):
    log_c, log_a, log_g, log_b, alpha, beta, gamma = theta
    log_N, log_D, log_G = logx
    # c + (g / G^gamma + a) / N^alpha + b / D^beta as one LSE of four positive terms.
    return jax.nn.logsumexp(jnp.stack([log_c, log_a - alpha * log_N, log_g - gamma * log_G - alpha * log_N,
                                       log_b - beta * log_D]))


def _granularity_log_predict_jac(theta, logx):
    log_c, log_a, log_g, log_b, alpha, beta, gamma = theta
    log_N, log_D, log_G = logx
    t1 = log_a - alpha * log_N
    t2 = log_g - gamma * log_G - alpha * log_N
    t3 = log_b - beta * log_D
    m = jnp.maximum(jnp.maximum(t1, t2), jnp.maximum(t3, log_c))
    x0, x1, x2, x3 = jnp.exp(log_c - m), jnp.exp(t1 - m), jnp.exp(t2 - m), jnp.exp(t3 - m)
    s = x0 + x1 + x2 + x3
    inv = 1.0 / s
    w1, w2, w3 = x1 * inv, x2 * inv, x3 * inv
    return m + jnp.log(s), (x0 * inv, w1, w2, w3, -(w1 + w2) * log_N, -w3 * log_D, -w2 * log_G)


def moe_granularity() -> Law:
    r"""Fine-grained mixture of experts: loss against size, tokens and granularity (Krajewski et al. 2024, Eq. 9).

    .. math:: L(N, D, G) = c + \left(\frac{g}{G^{\gamma}} + a\right) \frac{1}{N^{\alpha}} + \frac{b}{D^{\beta}}

    ``N`` counts the model's (non-embedding) parameters, ``D`` its training tokens and ``G`` (covariate
    ``granularity``, >= 1) how finely each expert is split: ``G = d_ff / d_expert``, 1 for experts the size of
    the dense feed-forward layer. The paper fits it at a fixed expansion rate (total over active expert
    parameters). Parameters ``c, a, g, b`` (positive; fitted as logs) and the exponents ``alpha, beta, gamma``.
    Fitted in log space as ``LSE(log c, log a - alpha log N, log g - gamma log G - alpha log N,
    log b - beta log D)``, with a fused Jacobian. The compute-optimal ``N, D, G`` at a budget is
    :func:`jaxscale.routed.granularity_optimal`.

    References
    ----------
    Krajewski, Ludziejewski et al. (2024), *Scaling Laws for Fine-Grained Mixture of Experts*, ICML,
    arXiv:2402.07871.

    Examples
    --------
    >>> import jaxscale
    >>> law = jaxscale.laws.get("moe_granularity")
    >>> p = dict(c=0.5, a=20.0, g=3.0, b=30.0, alpha=0.12, beta=0.15, gamma=0.6)
    >>> [round(float(v), 4) for v in law.predict(p, N=1e9, D=2e10, granularity=[1.0, 8.0])]
    [3.2681, 3.0902]
    """
    return Law(
        name="moe_granularity",
        log_predict=_granularity_log_predict,
        params=(
            Param("c", "log", (-1.0, 0.0), positive=True, prior=(0.0, 1.0)),
            Param("a", "log", (1.0, 4.0), positive=True, prior=(3.0, 3.0)),
            Param("g", "log", (0.0, 2.0), positive=True, prior=(1.0, 3.0)),
            Param("b", "log", (2.0, 5.0), positive=True, prior=(4.0, 3.0)),
            Param("alpha", "identity", (0.1, 0.4), positive=True, prior=_EXP_PRIOR, kind="exponent"),
            Param("beta", "identity", (0.1, 0.4), positive=True, prior=_EXP_PRIOR, kind="exponent"),
            Param("gamma", "identity", (0.3, 1.0), positive=True, prior=(float(np.log(0.5)), 0.7), kind="exponent"),
        ),
        covariates=("N", "D", "granularity"),
        formula="L = c + (g/G^gamma + a)/N^alpha + b/D^beta",
        reference="Krajewski et al. 2024, arXiv:2402.07871, Eq. 9",
        log_predict_jac=_granularity_log_predict_jac,
    )


for _factory in (moe_clark, moe_granularity):
    register(_factory)
