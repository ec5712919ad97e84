"""The built-in scaling laws.

Every law is written as the *log* of its prediction for one point, with the
covariates passed as logs. Sums of positive terms use ``logsumexp`` so that
float32 stays accurate when N, D or C are 1e9 to 1e25.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from jaxscale.errors import LawError
from jaxscale.laws._registry import COVARIATES, LOGIT, Law, Param, register

# Hoffmann et al. (2022), Appendix D.2: the 4,500-point L-BFGS initialisation grid.
_HOFFMANN_EXP = (0.0, 0.5, 1.0, 1.5, 2.0)
_HOFFMANN_E = (-1.0, -0.5, 0.0, 0.5, 1.0)
_HOFFMANN_AB = (0.0, 5.0, 10.0, 15.0, 20.0, 25.0)
# Default prior of an exponent on its sampling (log) scale: median 0.3, 95% in (0.11, 0.8).
_EXP_PRIOR = (float(np.log(0.3)), 0.5)


def _chinchilla_log_predict(theta, logx):
    log_E, log_A, log_B, alpha, beta = theta
    log_N, log_D = logx
    return jax.nn.logsumexp(jnp.stack([log_E, log_A - alpha * log_N, log_B - beta * log_D]))


def _chinchilla_log_predict_jac(theta, logx):
    # The same LSE, written out over a block so the Jacobian is the softmax
    # weights of the three terms (no reverse pass, no (block, n, P) array).
    log_E, log_A, log_B, alpha, beta = theta
    log_N, log_D = logx
    t1 = log_A - alpha * log_N
    t2 = log_B - beta * log_D
    m = jnp.maximum(jnp.maximum(t1, t2), log_E)
    x0, x1, x2 = jnp.exp(log_E - m), jnp.exp(t1 - m), jnp.exp(t2 - m)
    s = x0 + x1 + x2
    inv = 1.0 / s
    w1, w2 = x1 * inv, x2 * inv
    lp = m + jnp.log(s)
    return lp, (x0 * inv, w1, w2, -w1 * log_N, -w2 * log_D)


def chinchilla() -> Law:
    r"""Chinchilla loss law (Hoffmann et al. 2022, Eq. 2; Approach 3).

    .. math:: L(N, D) = E + A / N^{\alpha} + B / D^{\beta}

    Fitted in log space as ``LSE(log A - alpha log N, log B - beta log D, log E)``
    (Hoffmann Eq. 11). Parameters ``E, A, B`` (positive; fitted as logs) and
    ``alpha, beta``. The default starts are Hoffmann's 4,500-point grid
    (alpha, beta in {0, 0.5, ..., 2}, log E in {-1, ..., 1}, log A, log B in
    {0, 5, ..., 25}).

    References
    ----------
    Hoffmann et al. (2022), *Training Compute-Optimal Large Language Models*,
    arXiv:2203.15556.

    Examples
    --------
    >>> import jaxscale
    >>> law = jaxscale.laws.get("chinchilla")
    >>> law.fit_names
    ('log_E', 'log_A', 'log_B', 'alpha', 'beta')
    >>> law.default_starts().shape
    (4500, 5)
    """
    return Law(
        name="chinchilla",
        log_predict=_chinchilla_log_predict,
        params=(
            Param("E", "log", _HOFFMANN_E, positive=True, prior=(0.0, 1.0)),
            Param("A", "log", _HOFFMANN_AB, positive=True, prior=(6.0, 3.0)),
            Param("B", "log", _HOFFMANN_AB, positive=True, prior=(7.0, 3.0)),
            Param("alpha", "identity", _HOFFMANN_EXP, positive=True, prior=_EXP_PRIOR, kind="exponent"),
            Param("beta", "identity", _HOFFMANN_EXP, positive=True, prior=_EXP_PRIOR, kind="exponent"),
        ),
        covariates=("N", "D"),
        formula="L = E + A/N^alpha + B/D^beta",
        reference="Hoffmann et al. 2022, arXiv:2203.15556, Eq. 2",
        log_predict_jac=_chinchilla_log_predict_jac,
    )


def _kaplan_log_predict(theta, logx):
    log_Nc, log_Dc, log_aN, log_aD = theta
    log_N, log_D = logx
    a_N, a_D = jnp.exp(log_aN), jnp.exp(log_aD)
    return a_D * jnp.logaddexp((a_N / a_D) * (log_Nc - log_N), log_Dc - log_D)


def kaplan() -> Law:
    r"""Kaplan joint law in N and D (Kaplan et al. 2020, Eq. 1.5).

    .. math:: L(N, D) = \left[(N_c/N)^{\alpha_N/\alpha_D} + D_c/D\right]^{\alpha_D}

    Parameters ``N_c, D_c, alpha_N, alpha_D``, all positive and fitted as logs.
    Kaplan's Table 2 fit: alpha_N = 0.076, alpha_D = 0.103, N_c = 6.4e13,
    D_c = 1.8e13 (N counts non-embedding parameters).

    References
    ----------
    Kaplan et al. (2020), *Scaling Laws for Neural Language Models*,
    arXiv:2001.08361.

    Examples
    --------
    >>> import jaxscale
    >>> law = jaxscale.laws.get("kaplan")
    >>> p = dict(N_c=6.4e13, D_c=1.8e13, alpha_N=0.076, alpha_D=0.103)
    >>> round(float(law.predict(p, N=1e9, D=1e10)), 3)
    2.42
    """
    return Law(
        name="kaplan",
        log_predict=_kaplan_log_predict,
        params=(
            Param("N_c", "log", (25.0, 30.0, 35.0), positive=True, prior=(30.0, 5.0)),
            Param("D_c", "log", (25.0, 30.0, 35.0), positive=True, prior=(30.0, 5.0)),
            Param("alpha_N", "log", tuple(np.log([0.03, 0.1, 0.3])), positive=True, prior=(float(np.log(0.1)), 1.0), kind="exponent"),
            Param("alpha_D", "log", tuple(np.log([0.03, 0.1, 0.3])), positive=True, prior=(float(np.log(0.1)), 1.0), kind="exponent"),
        ),
        covariates=("N", "D"),
        formula="L = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D",
        reference="Kaplan et al. 2020, arXiv:2001.08361, Eq. 1.5",
    )


def check_resource(resource: str, allowed=COVARIATES) -> str:
    """``resource`` if it is one of ``allowed`` (a law's ``resource=`` option), else a one-line LawError."""
    if resource not in allowed:
        raise LawError(f"resource must be one of {list(allowed)}; got {resource!r}.")
    return resource


def _power_log_predict(theta, logx):
    log_E, log_A, alpha = theta
    return jnp.logaddexp(log_E, log_A - alpha * logx[0])


def _power_log_predict_jac(theta, logx):
    log_E, log_A, alpha = theta
    (log_x,) = logx
    t1 = log_A - alpha * log_x
    m = jnp.maximum(t1, log_E)
    x0, x1 = jnp.exp(log_E - m), jnp.exp(t1 - m)
    s = x0 + x1
    w1 = x1 / s
    return m + jnp.log(s), (x0 / s, w1, -w1 * log_x)


def _power_starts(logx, logy):
    # The scale of A depends on the units of x: centre it on the data so the
    # grid brackets A/x^alpha ~ (loss - E) at the median x.
    lx = float(np.median(logx[:, 0]))
    ly = float(np.median(logy))
    grid = []
    for log_E in (ly - 3.0, ly - 1.0, ly - 0.3):
        for alpha in (0.05, 0.2, 0.5, 1.0):
            for shift in (-2.0, 0.0, 2.0):
                grid.append((log_E, ly + shift + alpha * lx, alpha))
    return np.array(grid)


def power(resource: str = "x") -> Law:
    r"""Saturating power law in one resource (Kaplan et al. 2020, Eqs. 1.1-1.3 plus a floor).

    .. math:: L(x) = E + A \, x^{-\alpha}

    ``x`` is any one resource: ``N``, ``D``, ``C``, ``U`` or a generic ``x``
    column (inference compute, steps, ...), chosen with ``resource=``.
    Parameters ``E, A`` (positive; fitted as logs) and ``alpha``.

    References
    ----------
    Kaplan et al. (2020), arXiv:2001.08361; Hestness et al. (2017),
    arXiv:1712.00409.

    Examples
    --------
    >>> import jaxscale
    >>> law = jaxscale.laws.get("power", resource="N")
    >>> round(float(law.predict(dict(E=1.7, A=400.0, alpha=0.34), N=1e9)), 4)
    2.0484
    """
    resource = check_resource(resource)
    return Law(
        name="power",
        log_predict=_power_log_predict,
        params=(
            Param("E", "log", (-1.0, 0.0, 1.0), positive=True, prior=(0.0, 1.0)),
            Param("A", "log", (0.0, 5.0, 10.0, 20.0), positive=True, prior=(8.0, 6.0)),
            Param("alpha", "identity", (0.05, 0.3, 1.0), positive=True, prior=(float(np.log(0.3)), 1.0), kind="exponent"),
        ),
        covariates=(resource,),
        formula=f"L = E + A * {resource}^(-alpha)",
        reference="Kaplan et al. 2020, arXiv:2001.08361",
        starts_fn=_power_starts,
        options=(("resource", resource),),
        log_predict_jac=_power_log_predict_jac,
    )


def _effective(log_unique, repeats, r_star):
    # log(U + U R* (1 - exp(-R/R*))) = log U + log1p(-R* expm1(-R/R*))
    return log_unique + jnp.log1p(-r_star * jnp.expm1(-repeats / r_star))


def _data_constrained_log_predict(theta, logx):
    log_E, log_A, log_B, alpha, beta, log_RD, log_RN = theta
    log_N, log_D, log_U = logx
    r_d_star, r_n_star = jnp.exp(log_RD), jnp.exp(log_RN)
    # Repetitions of data beyond the first epoch.
    repeats_d = jnp.maximum(jnp.exp(log_D - log_U) - 1.0, 0.0)
    # U_N: the compute-optimal model size for U unique tokens (Chinchilla
    # Eq. 4 inverted), capped at N; parameters beyond it are "repeated".
    log_G = (jnp.log(alpha) + log_A - jnp.log(beta) - log_B) / (alpha + beta)
    log_UN = jnp.minimum(log_N, log_G + (beta / alpha) * (log_U + log_G))
    repeats_n = jnp.maximum(jnp.exp(log_N - log_UN) - 1.0, 0.0)
    log_Dp = _effective(log_U, repeats_d, r_d_star)
    log_Np = _effective(log_UN, repeats_n, r_n_star)
    return jax.nn.logsumexp(jnp.stack([log_E, log_A - alpha * log_Np, log_B - beta * log_Dp]))


def data_constrained() -> Law:
    r"""Data-constrained scaling law (Muennighoff et al. 2023, Eqs. 5-6).

    .. math::
        L = E + \frac{A}{N'^{\alpha}} + \frac{B}{D'^{\beta}}, \quad
        D' = U_D + U_D R_D^* (1 - e^{-R_D / R_D^*}), \quad
        N' = U_N + U_N R_N^* (1 - e^{-R_N / R_N^*})

    with ``U_D = U`` unique tokens, ``R_D = D/U - 1`` repeated epochs,
    ``U_N = min(N, N_opt(U))`` where ``N_opt(U) = G (U G)^(beta/alpha)`` and
    ``G = (alpha A / (beta B))^(1/(alpha+beta))`` (the compute-optimal model
    size for ``U`` tokens), and ``R_N = N/U_N - 1``. Parameters
    ``E, A, B, alpha, beta, R_D, R_N`` (``R_D``, ``R_N`` are the paper's
    ``R_D*``, ``R_N*``). The paper fits ``R_D, R_N`` with the Chinchilla
    parameters held fixed: pass ``fixed={...}`` to :func:`jaxscale.fit`.

    References
    ----------
    Muennighoff et al. (2023), *Scaling Data-Constrained Language Models*,
    arXiv:2305.16264.

    Examples
    --------
    >>> import jaxscale, numpy as np
    >>> law = jaxscale.laws.get("data_constrained")
    >>> p = dict(E=np.exp(0.6254804), A=np.exp(6.255414), B=np.exp(7.3049974),
    ...          alpha=0.3526596, beta=0.3526596, R_D=15.387756, R_N=5.309743)
    >>> round(float(law.predict(p, N=6.34e9, D=242e9, U=25e9)), 6)
    2.225644
    """
    return Law(
        name="data_constrained",
        log_predict=_data_constrained_log_predict,
        params=(
            Param("E", "log", (0.5,), positive=True, prior=(0.0, 1.0)),
            Param("A", "log", (6.0,), positive=True, prior=(6.0, 3.0)),
            Param("B", "log", (7.0,), positive=True, prior=(7.0, 3.0)),
            Param("alpha", "identity", (0.35,), positive=True, prior=_EXP_PRIOR, kind="exponent"),
            Param("beta", "identity", (0.35,), positive=True, prior=_EXP_PRIOR, kind="exponent"),
            Param("R_D", "log", tuple(np.log([1.0, 5.0, 20.0, 100.0])), positive=True, prior=(float(np.log(15.0)), 1.5)),
            Param("R_N", "log", tuple(np.log([1.0, 5.0, 20.0, 100.0])), positive=True, prior=(float(np.log(5.0)), 1.5)),
        ),
        covariates=("N", "D", "U"),
        formula="L = E + A/N'^alpha + B/D'^beta; D' = U + U R_D (1 - exp(-(D/U - 1)/R_D)), "
        "N' = U_N + U_N R_N (1 - exp(-(N/U_N - 1)/R_N)), U_N = min(N, N_opt(U))",
        reference="Muennighoff et al. 2023, arXiv:2305.16264, Eqs. 5-6",
    )


# Callable values rather than closures: two broken_power laws built with the same breaks then compare and hash
# equal, so the solver's compiled programs (keyed by the Law) are reused instead of recompiled per call.
@dataclasses.dataclass(frozen=True)
class _BrokenPowerLogPredict:
    breaks: int

    def __call__(self, theta, logx):
        breaks = self.breaks
        log_a, log_b, c0 = theta[0], theta[1], theta[2]
        c = theta[3 : 3 + breaks]
        log_d = theta[3 + breaks : 3 + 2 * breaks]
        f = jnp.exp(theta[3 + 2 * breaks : 3 + 3 * breaks])
        lx = logx[0]
        # (1 + (x/d)^(1/f))^(-c f)  ->  -c f softplus((log x - log d)/f)
        bends = jnp.sum(c * f * jax.nn.softplus((lx - log_d) / f))
        return jnp.logaddexp(log_a, log_b - c0 * lx - bends)


@dataclasses.dataclass(frozen=True)
class _BrokenPowerStarts:
    breaks: int

    def __call__(self, logx, logy):
        breaks = self.breaks
        lx = logx[:, 0]
        ly = float(np.median(logy))
        qs = np.quantile(lx, np.linspace(0.2, 0.8, 3))
        rows = []
        for log_a in (ly - 2.0, ly - 0.5):
            for log_b in (ly, ly + 2.0):
                for c0 in (0.0, 0.1, 0.3):
                    for c in (-0.3, 0.3, 1.0):
                        for q in qs:
                            for log_f in (-1.0, 0.0):
                                rows.append(
                                    [log_a, log_b + c0 * float(np.median(lx)), c0]
                                    + [c] * breaks
                                    + list(np.quantile(lx, np.linspace(0.2, 0.8, breaks)) + (q - qs[1]))
                                    + [log_f] * breaks
                                )
        return np.array(rows)


def broken_power(resource: str = "x", breaks: int = 1) -> Law:
    r"""Smoothly broken power law (Caballero et al. 2022, Eq. 1).

    .. math::
        y = a + b\,x^{-c_0} \prod_{i=1}^{n} \left(1 + (x/d_i)^{1/f_i}\right)^{-c_i f_i}

    ``n = breaks`` (1 by default). Parameters ``a, b`` (positive; fitted as
    logs), ``c0``, then ``c1..cn`` (change of slope at each break), ``d1..dn``
    (break locations, positive) and ``f1..fn`` (sharpness, positive).

    References
    ----------
    Caballero, Gupta, Rish, Krueger (2022), *Broken Neural Scaling Laws*,
    arXiv:2210.14891.

    Examples
    --------
    >>> import jaxscale
    >>> law = jaxscale.laws.get("broken_power", breaks=2)
    >>> law.param_names
    ('a', 'b', 'c0', 'c1', 'c2', 'd1', 'd2', 'f1', 'f2')
    """
    resource = check_resource(resource)
    if not isinstance(breaks, (int, np.integer)) or breaks < 1:
        raise LawError(f"broken_power needs an integer breaks >= 1; got {breaks!r}.")
    breaks = int(breaks)
    params = (
        Param("a", "log", (-1.0, 0.5), positive=True, prior=(0.0, 1.0)),
        Param("b", "log", (0.0, 3.0), positive=True, prior=(0.0, 5.0)),
        Param("c0", "identity", (0.0, 0.3), prior=(0.3, 0.5), kind="exponent"),
        *(Param(f"c{i + 1}", "identity", (0.3,), prior=(0.0, 1.0), kind="exponent") for i in range(breaks)),
        *(Param(f"d{i + 1}", "log", (0.0,), positive=True, prior=(10.0, 10.0)) for i in range(breaks)),
        *(Param(f"f{i + 1}", "log", (0.0,), positive=True, prior=(0.0, 1.0)) for i in range(breaks)),
    )

    return Law(
        name="broken_power",
        log_predict=_BrokenPowerLogPredict(breaks),
        params=params,
        covariates=(resource,),
        formula=f"y = a + b {resource}^(-c0) prod_i (1 + ({resource}/d_i)^(1/f_i))^(-c_i f_i), i = 1..{breaks}",
        reference="Caballero et al. 2022, arXiv:2210.14891, Eq. 1",
        starts_fn=_BrokenPowerStarts(breaks),
        options=(("resource", resource), ("breaks", breaks)),
    )


def _sigmoid_log_predict(theta, logx):
    logit_floor, logit_ceiling, log_k, log_x0 = theta
    floor, ceiling = jax.nn.sigmoid(logit_floor), jax.nn.sigmoid(logit_ceiling)
    s = jax.nn.sigmoid(jnp.exp(log_k) * (logx[0] - log_x0))
    return jnp.log(floor + (ceiling - floor) * s)


def _sigmoid_decreasing_log_predict(theta, logx):
    logit_floor, logit_ceiling, log_k, log_x0 = theta
    floor, ceiling = jax.nn.sigmoid(logit_floor), jax.nn.sigmoid(logit_ceiling)
    s = jax.nn.sigmoid(jnp.exp(log_k) * (log_x0 - logx[0]))
    return jnp.log(floor + (ceiling - floor) * s)


def sigmoid(resource: str = "C", decreasing: bool = False) -> Law:
    r"""Sigmoid law for downstream accuracy that saturates (e.g. Ruan et al. 2024).

    .. math::
        \mathrm{acc}(x) = \mathrm{floor} + (\mathrm{ceiling} - \mathrm{floor})\,
        \sigma\!\left(k (\log x - \log x_0)\right)

    ``floor`` is the chance level (fix it with ``fixed={"floor": 0.25}`` for a
    4-way multiple-choice benchmark) and ``ceiling`` the best reachable score,
    both in (0, 1) and fitted as logits; ``k > 0`` is the slope per e-fold of
    the resource and ``x0`` the midpoint. The target column holds the score
    (e.g. accuracy in (0, 1]).

    ``decreasing=True`` flips the slope, for a score that falls as the
    resource grows (accuracy against the model's *loss*, passed as ``x``):

    .. math::
        \mathrm{acc}(L) = \mathrm{floor} + (\mathrm{ceiling} - \mathrm{floor})\,
        \sigma\!\left(k (\log x_0 - \log L)\right)

    where ``x0`` is the loss at the midpoint and ``k`` the slope per e-fold of
    loss. Over the loss range of a benchmark study (say 2 to 4 nats) this is
    close to the sigmoid linear in loss of Bhagia et al. (2024). Its start grid
    and default priors are set for a loss-like ``x`` (``x0`` near 3, steeper
    ``k``); the increasing law is unchanged.

    References
    ----------
    Ruan, Maddison, Hashimoto (2024), *Observational Scaling Laws*,
    arXiv:2405.10938; Gadre et al. (2024), arXiv:2403.08540; Bhagia et al.
    (2024), *Establishing Task Scaling Laws via Compute-Efficient Model
    Ladders*, arXiv:2412.04403.

    Examples
    --------
    >>> import jaxscale
    >>> law = jaxscale.laws.get("sigmoid")
    >>> p = dict(floor=0.25, ceiling=0.9, k=1.0, x0=1e22)
    >>> round(float(law.predict(p, C=1e22)), 3)
    0.575
    >>> by_loss = jaxscale.laws.get("sigmoid", resource="x", decreasing=True)
    >>> p = dict(floor=0.25, ceiling=0.9, k=5.0, x0=3.0)
    >>> [round(float(a), 3) for a in by_loss.predict(p, x=[2.5, 3.0, 3.5])]
    [0.714, 0.575, 0.456]
    """
    resource = check_resource(resource)
    if not isinstance(decreasing, (bool, np.bool_)):
        raise LawError(f"sigmoid: decreasing must be True or False; got {decreasing!r}.")
    if decreasing:
        return _sigmoid_decreasing(resource)
    return Law(
        name="sigmoid",
        log_predict=_sigmoid_log_predict,
        params=(
            Param("floor", "logit", (-2.0,), prior=(-1.5, 1.5)),
            Param("ceiling", "logit", (2.0,), prior=(1.5, 1.5)),
            Param("k", "log", (0.0,), positive=True, prior=(0.0, 1.0), kind="exponent"),
            Param("x0", "log", (50.0,), positive=True, prior=(40.0, 15.0)),
        ),
        covariates=(resource,),
        formula=f"acc = floor + (ceiling - floor) * sigmoid(k (log {resource} - log x0))",
        reference="Ruan et al. 2024, arXiv:2405.10938; Gadre et al. 2024, arXiv:2403.08540",
        starts_fn=_sigmoid_starts,
        options=(("resource", resource),),
    )


def _sigmoid_start_rows(logx, logy, slopes):
    lx = logx[:, 0]
    y = np.exp(logy)
    lo, hi = float(np.clip(y.min(), 1e-3, 0.99)), float(np.clip(y.max(), 0.01, 0.999))
    rows = []
    for fl in (0.5 * lo, 0.9 * lo):
        for ce in (min(0.999, hi * 1.02), min(0.999, 0.5 * (hi + 1.0))):
            for k in slopes:
                for q in np.quantile(lx, (0.25, 0.5, 0.75)):
                    rows.append([LOGIT.to_fit(fl), LOGIT.to_fit(ce), np.log(k), q])
    return np.array(rows)


# Module-level (not closures) so that two sigmoid laws built alike compare equal and share compiled solvers.
def _sigmoid_starts(logx, logy):
    return _sigmoid_start_rows(logx, logy, (0.3, 1.0, 3.0))


def _sigmoid_decreasing_starts(logx, logy):
    # k per e-fold of x: a loss spans a fraction of an e-fold, so scale the
    # slopes by the data's log range (k * span from 1 to 12: gentle to sharp).
    span = max(float(np.ptp(logx[:, 0])), 1e-3)
    return _sigmoid_start_rows(logx, logy, (1.0 / span, 4.0 / span, 12.0 / span))


def _sigmoid_decreasing(resource: str) -> Law:
    return Law(
        name="sigmoid",
        log_predict=_sigmoid_decreasing_log_predict,
        params=(
            Param("floor", "logit", (-2.0,), prior=(-1.5, 1.5)),
            Param("ceiling", "logit", (2.0,), prior=(1.5, 1.5)),
            # k per e-fold of a loss: ~10 takes accuracy from floor to ceiling between losses 4 and 2.
            Param("k", "log", (float(np.log(5.0)),), positive=True, prior=(float(np.log(5.0)), 1.5), kind="exponent"),
            # x0: the midpoint loss, median 3 nats, 95% in (0.4, 22).
            Param("x0", "log", (float(np.log(3.0)),), positive=True, prior=(float(np.log(3.0)), 1.0)),
        ),
        covariates=(resource,),
        formula=f"acc = floor + (ceiling - floor) * sigmoid(k (log x0 - log {resource}))",
        reference="Ruan et al. 2024, arXiv:2405.10938; Bhagia et al. 2024, arXiv:2412.04403",
        starts_fn=_sigmoid_decreasing_starts,
        options=(("resource", resource), ("decreasing", True)),
    )


for _factory in (chinchilla, kaplan, power, data_constrained, broken_power, sigmoid):
    register(_factory)
