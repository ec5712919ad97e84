"""Laws of training and post-training precision (Kumar et al. 2024, *Scaling Laws for Precision*).

- ``precision``: training in ``P`` bits shrinks the effective parameter count,
  ``N_eff = N (1 - exp(-P / gamma))^parts``, inside a Chinchilla form.
- ``precision_ptq``: a model trained in high precision and quantised afterwards to ``P_post`` bits loses
  ``delta_PTQ = C_T exp(-P_post / gamma_post) D^gamma_D / N^gamma_N``, added to a Chinchilla form.

The paper gives weights, activations and the KV cache their own precisions and constants
(``N_eff = N prod_i (1 - exp(-P_i / gamma_i))``). One ``precision`` column cannot tell the three apart, so
``precision(parts=k)`` is the case where ``k`` of them are trained at the same precision with one shared
``gamma`` (``parts=1``: weights only; ``parts=3``: weights, activations and KV cache alike). The compute-optimal
training precision is :func:`jaxscale.precision.precision_optimal`.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from jaxscale.errors import LawError
from jaxscale.laws._registry import Law, Param, register

_EXP_PRIOR = (float(np.log(0.3)), 0.5)


def _saturation(log_P, log_gamma):
    """``(log(1 - exp(-P/gamma)), d/dlog_gamma of it)``."""
    x = jnp.exp(log_P - log_gamma)
    # d log(1 - e^-x) / d log gamma = -x e^-x / (1 - e^-x) = -x / expm1(x)
    return jnp.log(-jnp.expm1(-x)), -x / jnp.expm1(x)


@dataclasses.dataclass(frozen=True)
class _PrecisionLogPredict:
    parts: int

    def __call__(self, theta, logx):
        log_E, log_A, log_B, alpha, beta, log_gamma = theta
        log_N, log_D, log_P = logx
        log_Neff = log_N + self.parts * _saturation(log_P, log_gamma)[0]
        return jax.nn.logsumexp(jnp.stack([log_E, log_A - alpha * log_Neff, log_B - beta * log_D]))


@dataclasses.dataclass(frozen=True)
class _PrecisionLogPredictJac:
    parts: int

    def __call__(self, theta, logx):
        log_E, log_A, log_B, alpha, beta, log_gamma = theta
        log_N, log_D, log_P = logx
        sat, dsat = _saturation(log_P, log_gamma)
        log_Neff = log_N + self.parts * sat
        t1 = log_A - alpha * log_Neff
        t2 = log_B - beta * log_D
        m = jnp.maximum(jnp.maximum(t1, t2), log_E)
        x0, x1, x2 = jnp.exp(log_E - m), jnp.exp(t1 - m), jnp.exp(t2 - m)
        s = x0 + x1 + x2
        inv = 1.0 / s
        w1, w2 = x1 * inv, x2 * inv
        return m + jnp.log(s), (x0 * inv, w1, w2, -w1 * log_Neff, -w2 * log_D, -w1 * alpha * self.parts * dsat)


def precision(parts: int = 1) -> Law:
    r"""Loss against size, tokens and training precision (Kumar et al. 2024).

    .. math::
        L = E + \frac{A}{N_{\mathrm{eff}}^{\alpha}} + \frac{B}{D^{\beta}}, \qquad
        N_{\mathrm{eff}} = N \left(1 - e^{-P/\gamma}\right)^{k}

    ``P`` (covariate ``precision``) is the training precision in bits (> 0); ``k = parts`` (1, 2 or 3) is how
    many of weights, activations and KV cache are trained at that precision, sharing one ``gamma`` (the paper's
    ``gamma_w, gamma_a, gamma_kv`` tied: one precision column cannot separate them). ``N_eff -> N`` at high
    precision, so the law is Chinchilla's there. Parameters ``E, A, B`` (positive; logs), ``alpha, beta`` and
    ``gamma`` (bits, positive; log). Fused Jacobian.

    References
    ----------
    Kumar, Ankner, Spector, Bordelon, Muennighoff, Paul, Pehlevan, Ré, Raghunathan (2024), *Scaling Laws for
    Precision*, ICLR 2025, arXiv:2411.04330.

    Examples
    --------
    >>> import jaxscale
    >>> law = jaxscale.laws.get("precision")
    >>> p = dict(E=1.7, A=400.0, B=400.0, alpha=0.34, beta=0.28, gamma=2.5)
    >>> [round(float(v), 4) for v in law.predict(p, N=1e8, D=2e9, precision=[4.0, 16.0])]
    [3.5178, 3.4575]
    >>> jaxscale.laws.get("precision", parts=3).formula
    'L = E + A/N_eff^alpha + B/D^beta; N_eff = N (1 - exp(-P/gamma))^3'
    """
    if isinstance(parts, (bool, np.bool_)) or not isinstance(parts, (int, np.integer)) or parts not in (1, 2, 3):
        raise LawError(f"precision: parts must be 1, 2 or 3 (weights, activations, KV cache); got {parts!r}.")
    parts = int(parts)
    power = "" if parts == 1 else f"^{parts}"
    return Law(
        name="precision",
        log_predict=_PrecisionLogPredict(parts),
        params=(
            Param("E", "log", (-0.5, 0.5), positive=True, prior=(0.0, 1.0)),
            Param("A", "log", (3.0, 7.0), positive=True, prior=(6.0, 3.0)),
            Param("B", "log", (3.0, 7.0), positive=True, prior=(7.0, 3.0)),
            Param("alpha", "identity", (0.2, 0.6), positive=True, prior=_EXP_PRIOR, kind="exponent"),
            Param("beta", "identity", (0.2, 0.6), positive=True, prior=_EXP_PRIOR, kind="exponent"),
            Param("gamma", "log", (0.0, float(np.log(3.0))), positive=True, prior=(float(np.log(3.0)), 0.7)),
        ),
        covariates=("N", "D", "precision"),
        formula=f"L = E + A/N_eff^alpha + B/D^beta; N_eff = N (1 - exp(-P/gamma)){power}",
        reference="Kumar et al. 2024, arXiv:2411.04330 (effective parameter count)",
        options=(("parts", parts),),
        log_predict_jac=_PrecisionLogPredictJac(parts),
    )


def _ptq_terms(theta, logx):
    log_E, log_A, log_B, log_C, alpha, beta, gamma_D, gamma_N, log_gpost = theta
    log_N, log_D, log_Pp = logx
    t3 = log_C - jnp.exp(log_Pp - log_gpost) + gamma_D * log_D - gamma_N * log_N
    return log_E, log_A - alpha * log_N, log_B - beta * log_D, t3


def _ptq_log_predict(theta, logx):
    return jax.nn.logsumexp(jnp.stack(_ptq_terms(theta, logx)))


def _ptq_log_predict_jac(theta, logx):
    log_N, log_D, log_Pp = logx
    log_E, t1, t2, t3 = _ptq_terms(theta, logx)
    m = jnp.maximum(jnp.maximum(t1, t2), jnp.maximum(t3, log_E))
    x0, x1, x2, x3 = jnp.exp(log_E - m), jnp.exp(t1 - m), jnp.exp(t2 - m), jnp.exp(t3 - m)
    s = x0 + x1 + x2 + x3
    inv = 1.0 / s
    w1, w2, w3 = x1 * inv, x2 * inv, x3 * inv
    # d t3 / d log gamma_post = P_post / gamma_post
    dpost = jnp.exp(log_Pp - theta[8])
    return m + jnp.log(s), (x0 * inv, w1, w2, w3, -w1 * log_N, -w2 * log_D, w3 * log_D, -w3 * log_N, w3 * dpost)


def precision_ptq() -> Law:
    r"""Loss after post-training quantisation (Kumar et al. 2024).

    .. math::
        L = E + \frac{A}{N^{\alpha}} + \frac{B}{D^{\beta}} + \delta_{PTQ}, \qquad
        \delta_{PTQ} = C_T \, e^{-P_{post}/\gamma_{post}} \, \frac{D^{\gamma_D}}{N^{\gamma_N}}

    for a model trained in high precision and quantised to ``P_post`` bits (covariate ``precision_post``, > 0)
    afterwards. The degradation grows with the tokens seen (``gamma_D > 0``): past some ``D``, more pretraining
    makes the quantised model worse. Parameters ``E, A, B, C_T`` (positive; logs), ``alpha, beta, gamma_D,
    gamma_N`` and ``gamma_post`` (bits, positive; log). Fused Jacobian.

    References
    ----------
    Kumar et al. (2024), *Scaling Laws for Precision*, ICLR 2025, arXiv:2411.04330.

    Examples
    --------
    >>> import jaxscale
    >>> law = jaxscale.laws.get("precision_ptq")
    >>> p = dict(E=1.7, A=400.0, B=400.0, C_T=0.05, alpha=0.34, beta=0.28, gamma_D=0.5, gamma_N=0.5,
    ...          gamma_post=1.0)
    >>> [round(float(v), 4) for v in law.predict(p, N=1e8, D=2e9, precision_post=[3.0, 8.0])]
    [3.4682, 3.4571]
    """
    return Law(
        name="precision_ptq",
        log_predict=_ptq_log_predict,
        params=(
            Param("E", "log", (0.0, 0.5), positive=True, prior=(0.0, 1.0)),
            Param("A", "log", (3.0, 6.0), positive=True, prior=(6.0, 3.0)),
            Param("B", "log", (3.0, 6.0), positive=True, prior=(7.0, 3.0)),
            Param("C_T", "log", (-4.0, -1.0), positive=True, prior=(-3.0, 3.0)),
            Param("alpha", "identity", (0.3, 0.6), positive=True, prior=_EXP_PRIOR, kind="exponent"),
            Param("beta", "identity", (0.3, 0.6), positive=True, prior=_EXP_PRIOR, kind="exponent"),
            Param("gamma_D", "identity", (0.4,), positive=True, prior=_EXP_PRIOR, kind="exponent"),
            Param("gamma_N", "identity", (0.4,), positive=True, prior=_EXP_PRIOR, kind="exponent"),
            Param("gamma_post", "log", (0.0, 1.0), positive=True, prior=(0.0, 1.0)),
        ),
        covariates=("N", "D", "precision_post"),
        formula="L = E + A/N^alpha + B/D^beta + C_T exp(-P_post/gamma_post) D^gamma_D / N^gamma_N",
        reference="Kumar et al. 2024, arXiv:2411.04330 (post-train quantization)",
        log_predict_jac=_ptq_log_predict_jac,
    )


for _factory in (precision, precision_ptq):
    register(_factory)
