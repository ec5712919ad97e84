"""Laws of the loss curve: a checkpoint's loss from its run's learning-rate schedule (:mod:`jaxscale.schedule`).

Each is written as the log of its prediction for one checkpoint, like the other laws; the schedule covariates
arrive as logs too (floored at :data:`jaxscale.schedule.FLOOR`, so an area of zero enters as ``exp(-690)``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxscale import schedule
from jaxscale.laws._registry import Law, Param, register

# the smallest prediction a log is taken of: a parameter set that predicts a loss <= 0 (the annealing term larger
# than the rest) gets a finite, very poor fit instead of a NaN
_TINY = 1e-30
# the forward (power-law) part L0 + A S1^-alpha that tissue and multi_power share
_FORWARD = (
    Param("L0", "log", (0.5, 1.0), positive=True, prior=(1.0, 1.0)),
    Param("A", "log", (-1.0, 0.0), positive=True, prior=(0.0, 2.0)),
    Param("alpha", "identity", (0.3, 0.6), positive=True, prior=(float(np.log(0.5)), 0.7), kind="exponent"),
)


def _log_minus(log_pos, neg):
    """``log(exp(log_pos) - neg)``, clamped at :data:`_TINY` (see above)."""
    return log_pos + jnp.log(jnp.maximum(-jnp.expm1(jnp.log(jnp.maximum(neg, _TINY)) - log_pos), _TINY))


# ----------------------------------------------------------------------------------------------------- tissue
def _tissue_log_predict(theta, logx):
    log_L0, log_A, alpha, log_C = theta
    log_S1, log_S2 = logx
    pos = jnp.logaddexp(log_L0, log_A - alpha * log_S1)
    return _log_minus(pos, jnp.exp(log_C + log_S2))


def _tissue_starts(logx, logy):
    ly, y = float(np.median(logy)), np.exp(logy)
    ls1, ls2 = float(np.median(logx[:, 0])), float(np.max(logx[:, 1]))
    grid = []
    for floor in (0.5, 0.8, 0.95):
        L0 = floor * float(y.min())
        for alpha in (0.2, 0.5, 1.0):
            log_A = float(np.log(max(np.exp(ly) - L0, 1e-3 * L0))) + alpha * ls1
            for frac in (0.003, 0.03, 0.1):
                grid.append((np.log(L0), log_A, alpha, np.log(frac * float(y.min())) - ls2))
    return np.array(grid)


def tissue() -> Law:
    r"""The scaling law with LR annealing of Tissue et al. (2024), for the checkpoints of one run (or runs of
    one model size).

    .. math:: L(s) = L_0 + A\,S_1^{-\alpha} - C\,S_2

    ``S1`` is the forward area (sum of the LR over the steps so far) and ``S2`` the annealing area with momentum
    ``lambda = 0.999`` (:mod:`jaxscale.schedule`), both in the paper's units (LR x steps), so published
    constants apply as they are. Parameters ``L0, A, C`` (positive; fitted as logs) and ``alpha``.

    References
    ----------
    Tissue, Wang, Wang (2024), *Scaling Law with Learning Rate Annealing*, arXiv:2408.11029, Eq. 1.

    Examples
    --------
    >>> import jaxscale
    >>> law = jaxscale.laws.get("tissue")
    >>> round(float(law.predict(dict(L0=2.5, A=0.5, alpha=0.5, C=1e-3), S1=16.0, S2=100.0)), 4)
    2.525
    """
    return Law(
        name="tissue",
        log_predict=_tissue_log_predict,
        params=(
            *_FORWARD,
            Param("C", "log", (-8.0, -5.0), positive=True, prior=(-6.0, 3.0)),
        ),
        covariates=("S1", "S2"),
        formula="L = L0 + A*S1^(-alpha) - C*S2",
        reference="Tissue, Wang, Wang 2024, arXiv:2408.11029, Eq. 1",
        starts_fn=_tissue_starts,
    )


# ------------------------------------------------------------------------------------------------ multi_power
def _loss_drop(log_C, beta, gamma, nodes):
    """``sum_j drop_j G(eta_j^-gamma S_j)``, ``G(x) = 1 - (C x + 1)^-beta``, from the logs of the quadrature."""
    log_drop, log_eta, log_area = nodes[0::3], nodes[1::3], nodes[2::3]
    z = log_C - gamma * log_eta + log_area
    g = -jnp.expm1(-beta * jax.nn.softplus(z))        # 1 - (1 + e^z)^-beta, stable for any z
    return jnp.sum(jnp.exp(log_drop) * g)


def _multi_power_log_predict(theta, logx):
    log_L0, log_A, alpha, log_B, log_C, log_beta, gamma = theta
    log_S1, nodes = logx[0], logx[1:]
    pos = jnp.logaddexp(log_L0, log_A - alpha * log_S1)
    return _log_minus(pos, jnp.exp(log_B) * _loss_drop(log_C, jnp.exp(log_beta), gamma, nodes))


def _multi_power_starts(logx, logy):
    y = np.exp(logy)
    ly, ls1 = float(np.median(logy)), float(np.median(logx[:, 0]))
    nodes = logx[:, 1:]
    total_drop = float(np.max(np.exp(nodes[:, 0::3]).sum(axis=1)))
    log_drop_scale = float(np.log(max(total_drop, 1e-12)))
    # centre C so that C * eta^-gamma * S ~ 1 where the LR has dropped
    weight = np.exp(nodes[:, 0::3])
    z = -0.6 * nodes[:, 1::3] + nodes[:, 2::3]
    z_typ = float(np.sum(weight * z) / max(weight.sum(), 1e-300)) if weight.sum() > 0 else 0.0
    grid = []
    for floor in (0.7, 0.9):
        L0 = floor * float(y.min())
        for alpha in (0.3, 0.6):
            log_A = float(np.log(max(np.exp(ly) - L0, 1e-3 * L0))) + alpha * ls1
            for frac in (0.03, 0.1):
                for shift in (-2.0, 0.0, 2.0):
                    grid.append((np.log(L0), log_A, alpha, np.log(frac * float(y.min())) - log_drop_scale,
                                 -z_typ + shift, np.log(0.6), 0.6))
    return np.array(grid)


def multi_power() -> Law:
    r"""The multi-power law of Luo et al. (2025): a whole loss curve under any LR schedule.

    .. math::
        L(t) = L_0 + A\,(S_1(t) + S_W)^{-\alpha} - B \sum_{k=1}^{t} (\eta_{k-1} - \eta_k)\,
        G(\eta_k^{-\gamma} S_k(t)), \qquad G(x) = 1 - (C x + 1)^{-\beta}

    with ``S_k(t)`` the LR area from step ``k`` to ``t``. ``S1 + S_W`` is the covariate ``S1`` (the warmup's
    area included); the sum over LR drops is the quadrature ``mp_*`` of :mod:`jaxscale.schedule` (24 bins,
    finer near ``t``). Units are the paper's (LR x steps), so the published constants apply as they are.
    Parameters ``L0, A, B, C, beta`` (positive; fitted as logs) and ``alpha, gamma``.

    References
    ----------
    Luo, Wen, Wang, Liu, Li, Lyu (2025), *A Multi-Power Law for Loss Curve Prediction Across Learning Rate
    Schedules*, ICLR 2025, arXiv:2503.12811, Eq. 5. The constants in the authors' repository (25M, 100M, 400M
    models) were fitted on curves that are not public; this law's quadrature is checked
    against the exact per-step sum with them (``tests/test_schedule.py``).

    Examples
    --------
    >>> import numpy as np, jaxscale
    >>> from jaxscale.schedule import Schedule, covariates
    >>> cov = covariates(Schedule("cosine", steps=24000, warmup=500, peak=3e-4).history(), [12000, 24000])
    >>> p = dict(L0=2.375, A=0.654, alpha=0.429, B=523.425, C=2.025, beta=0.594, gamma=0.635)  # their 400M
    >>> jaxscale.laws.get("multi_power").predict(p, **cov).round(3).tolist()
    [2.719, 2.6]
    """
    return Law(
        name="multi_power",
        log_predict=_multi_power_log_predict,
        params=(
            *_FORWARD,
            Param("B", "log", (5.0, 7.0), positive=True, prior=(6.0, 3.0)),
            Param("C", "log", (0.0, 1.0), positive=True, prior=(0.5, 2.0)),
            Param("beta", "log", (float(np.log(0.6)),), positive=True, prior=(float(np.log(0.6)), 0.7),
                  kind="exponent"),
            Param("gamma", "identity", (0.6,), positive=True, prior=(float(np.log(0.6)), 0.7), kind="exponent"),
        ),
        covariates=("S1", *schedule.MP_KEYS),
        formula="L = L0 + A*S1^(-alpha) - B*sum_k (eta_{k-1} - eta_k) (1 - (C eta_k^-gamma S_k(t) + 1)^-beta)",
        reference="Luo et al. 2025, ICLR, arXiv:2503.12811, Eq. 5",
        starts_fn=_multi_power_starts,
    )


# --------------------------------------------------------------------------------------------------- curve_nd
def _curve_nd_log_predict(theta, logx):
    log_E, log_A, log_B, alpha, beta, log_C = theta
    log_N, log_S1, log_S2 = logx
    pos = jax.nn.logsumexp(jnp.stack([log_E, log_A - alpha * log_N, log_B - beta * log_S1]))
    return _log_minus(pos, jnp.exp(log_C + log_S2))


def _curve_nd_starts(logx, logy):
    y = np.exp(logy)
    ls2 = float(np.max(logx[:, 2]))
    grid = []
    for log_E in (-0.5, 0.0, 0.5):
        for log_A in (0.0, 5.0, 10.0, 15.0):
            for log_B in (0.0, 5.0, 10.0, 15.0):
                for exp in (0.2, 0.5):
                    for frac in (0.01, 0.05):
                        grid.append((log_E, log_A, log_B, exp, exp, np.log(frac * float(y.min())) - ls2))
    return np.array(grid)


def curve_nd() -> Law:
    r"""A law of loss curves across model sizes: Chinchilla's N term with the LR-annealing law's data terms.

    .. math:: L(N, t) = E + A / N^{\alpha} + B / S_1^{\beta} - C\,S_2

    ``S1`` is ``S1_tokens``, the number of "peak-LR tokens" (D for a constant LR: the law is Chinchilla's there)
    and ``S2`` is ``S2_peak``, Tissue et al.'s annealing area with the LR relative to its peak
    (:mod:`jaxscale.schedule`), which saturates at about 1000 x the fraction of the peak annealed away,
    whatever the run's length. Tissue et al. (Sec. 5) extend their law to model sizes with the N term of
    Chinchilla in the same way; OLMo's ladder code fits Chinchilla's N term with an LR-dependent data term.
    Parameters ``E, A, B, C`` (positive; fitted as logs) and ``alpha, beta``.

    References
    ----------
    Hoffmann et al. (2022), arXiv:2203.15556, Eq. 2; Tissue, Wang, Wang (2024), arXiv:2408.11029, Eq. 1 and
    Sec. 5.

    Examples
    --------
    >>> import jaxscale
    >>> law = jaxscale.laws.get("curve_nd")
    >>> law.covariates
    ('N', 'S1_tokens', 'S2_peak')
    """
    return Law(
        name="curve_nd",
        log_predict=_curve_nd_log_predict,
        params=(
            Param("E", "log", (-0.5, 0.0, 0.5), positive=True, prior=(0.0, 1.0)),
            Param("A", "log", (0.0, 5.0, 10.0), positive=True, prior=(6.0, 3.0)),
            Param("B", "log", (0.0, 5.0, 10.0), positive=True, prior=(7.0, 3.0)),
            Param("alpha", "identity", (0.3, 0.6), positive=True, prior=(float(np.log(0.3)), 0.5), kind="exponent"),
            Param("beta", "identity", (0.3, 0.6), positive=True, prior=(float(np.log(0.3)), 0.5), kind="exponent"),
            Param("C", "log", (-8.0, -5.0), positive=True, prior=(-7.0, 3.0)),
        ),
        covariates=("N", "S1_tokens", "S2_peak"),
        formula="L = E + A/N^alpha + B/S1^beta - C*S2   (S1 = peak-LR tokens, S2 = annealing area / peak LR)",
        reference="Hoffmann et al. 2022, arXiv:2203.15556; Tissue et al. 2024, arXiv:2408.11029, Sec. 5",
        starts_fn=_curve_nd_starts,
    )


def curve() -> Law:
    r"""The default law of one run's loss curve: :func:`tissue` (Tissue et al. 2024), under the name ``curve``.

    It is the better of ``tissue`` and ``multi_power`` on the early-run benchmark (``benchmarks/bench_curves.py``:
    fit a run's checkpoints up to 30% of its tokens with its planned schedule, forecast its final loss; on the
    OLMo ladder's 760M and 1B cosine runs ``tissue`` was the more accurate and the more robust of the two).

    >>> import jaxscale
    >>> jaxscale.laws.get("curve").formula
    'L = L0 + A*S1^(-alpha) - C*S2'
    """
    return tissue()._replace(name="curve")


for _factory in (tissue, multi_power, curve_nd, curve):
    register(_factory)
