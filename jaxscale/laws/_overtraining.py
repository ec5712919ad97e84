"""The over-training laws of Gadre et al. (2024): loss in (N, D) through (C, M), and top-1 error from loss.

Gadre et al. write the loss of a model of ``N`` parameters trained on ``D = M N`` tokens, ``C = 6 N D`` FLOPs,
as a power of compute at a fixed token multiplier ``M``::

    L(C, M) = E + (a M^eta + b M^-eta) C^-eta

Substituting ``M = D/N`` and ``C = 6 N D`` gives ``L = E + a 6^-eta N^-2eta + b 6^-eta D^-2eta``: a Chinchilla
law with ``alpha = beta = 2 eta``, ``A = a 6^-eta`` and ``B = b 6^-eta``. Both laws are written here in
``(N, D)`` (the covariates every fit, bootstrap, allocation and CLI path already has), in log space, so ``M``
and ``C`` are never formed and cannot overflow.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxscale.laws._registry import LOGIT, Law, Param, register

_LOG6 = float(np.log(6.0))


def _overtraining_log_predict(theta, logx):
    log_E, log_a, log_b, log_eta = theta
    eta = jnp.exp(log_eta)
    log_N, log_D = logx
    # a M^eta C^-eta = a 6^-eta N^-2eta; b M^-eta C^-eta = b 6^-eta D^-2eta.
    return jax.nn.logsumexp(jnp.stack([log_E, log_a - eta * (_LOG6 + 2.0 * log_N),
                                       log_b - eta * (_LOG6 + 2.0 * log_D)]))


def _overtraining_log_predict_jac(theta, logx):
    # The LSE over a block: the Jacobian is the softmax weights of the three terms (as chinchilla's).
    log_E, log_a, log_b, log_eta = theta
    eta = jnp.exp(log_eta)
    log_N, log_D = logx
    u1, u2 = _LOG6 + 2.0 * log_N, _LOG6 + 2.0 * log_D
    t1, t2 = log_a - eta * u1, log_b - eta * u2
    m = jnp.maximum(jnp.maximum(t1, t2), log_E)
    x0, x1, x2 = jnp.exp(log_E - m), jnp.exp(t1 - m), jnp.exp(t2 - m)
    inv = 1.0 / (x0 + x1 + x2)
    w1, w2 = x1 * inv, x2 * inv
    return m + jnp.log(x0 + x1 + x2), (x0 * inv, w1, w2, -eta * (w1 * u1 + w2 * u2))


def overtraining() -> Law:
    r"""Over-training loss law (Gadre et al. 2024), in the token multiplier ``M = D/N`` and ``C = 6ND``.

    .. math::
        L(C, M) = E + \left(a M^{\eta} + b M^{-\eta}\right) C^{-\eta}
               = E + a\,6^{-\eta} N^{-2\eta} + b\,6^{-\eta} D^{-2\eta}

    Covariates ``N`` and ``D`` (``M`` and ``C`` are formed inside, in log space). At a fixed ``M`` the
    reducible loss is a power law in compute with exponent ``eta``, the same for every ``M`` (the paper's
    observation that over-trained models scale in parallel). It is the Chinchilla law with
    ``alpha = beta = 2 eta``, ``A = a 6^-eta``, ``B = b 6^-eta``; its compute-optimal multiplier is
    ``M* = (b/a)^(1/(2 eta))`` at every budget. Parameters ``E, a, b, eta``, all positive and fitted as logs.

    References
    ----------
    Gadre et al. (2024), *Language models scale reliably with over-training and on downstream tasks*,
    arXiv:2403.08540; their code fits ``alpha N^b + beta 6^(b/2) (M N)^b + E``
    (github.com/mlfoundations/scaling, ``scaling/laws.py``), i.e. ``b = -2 eta``, ``alpha = a 6^-eta``,
    ``beta = b``.

    Examples
    --------
    >>> import jaxscale
    >>> law = jaxscale.laws.get("overtraining")
    >>> law.param_names
    ('E', 'a', 'b', 'eta')
    >>> p = dict(E=1.7, a=300.0, b=400.0, eta=0.17)
    >>> chin = dict(E=1.7, A=300.0 * 6 ** -0.17, B=400.0 * 6 ** -0.17, alpha=0.34, beta=0.34)
    >>> bool(abs(law.predict(p, N=1e9, D=2e10) - jaxscale.laws.get("chinchilla").predict(chin, N=1e9, D=2e10)) < 1e-12)
    True
    """
    return Law(
        name="overtraining",
        log_predict=_overtraining_log_predict,
        params=(
            Param("E", "log", (-1.0, 0.0, 0.5, 1.0), positive=True, prior=(0.0, 1.0)),
            Param("a", "log", (0.0, 5.0, 10.0, 15.0, 20.0), positive=True, prior=(7.0, 3.0)),
            Param("b", "log", (0.0, 5.0, 10.0, 15.0, 20.0), positive=True, prior=(7.0, 3.0)),
            # eta is half Chinchilla's exponents (~0.3): median 0.15, 95% in (0.04, 0.6).
            Param("eta", "log", tuple(np.log([0.05, 0.15, 0.3, 0.6])), positive=True,
                  prior=(float(np.log(0.15)), 0.7), kind="exponent"),
        ),
        covariates=("N", "D"),
        formula="L = E + (a M^eta + b M^-eta) C^-eta, M = D/N, C = 6 N D",
        reference="Gadre et al. 2024, arXiv:2403.08540 (loss law in C and M)",
        log_predict_jac=_overtraining_log_predict_jac,
    )


def _loss_to_error_log_predict(theta, logx):
    logit_eps, log_k, log_gamma = theta
    log_eps = jax.nn.log_sigmoid(logit_eps)
    # log(eps - k e^(-gamma L)) = log eps + log(1 - e^u), u = log k - gamma L - log eps; no error below 0 (u >= 0).
    u = log_k - jnp.exp(log_gamma + logx[0]) - log_eps
    ok = u < 0.0
    safe = jnp.where(ok, u, -1.0)  # keeps the gradient of the discarded branch finite
    return jnp.where(ok, log_eps + jnp.log(-jnp.expm1(safe)), jnp.nan)


def _loss_to_error_starts(logx, logy):
    # Through the median point: k = (eps - err_med) e^(gamma L_med), for a few floors eps above every error.
    loss = np.exp(logx[:, 0])
    err = np.exp(logy)
    l_med, e_med, e_max = float(np.median(loss)), float(np.median(err)), float(np.max(err))
    span = max(float(np.ptp(loss)), 1e-3)
    rows = []
    for eps in (min(0.999, 1.02 * e_max), min(0.999, 0.5 * (e_max + 1.0)), min(0.999, 0.1 * e_max + 0.9)):
        for gamma in (0.5 / span, 2.0 / span, 6.0 / span):
            gap = max(eps - e_med, 1e-3)
            rows.append([LOGIT.to_fit(eps), np.log(gap) + gamma * l_med, np.log(gamma)])
    return np.array(rows)


def loss_to_error() -> Law:
    r"""Average top-1 error as an exponential decay in loss (Gadre et al. 2024).

    .. math:: \mathrm{Err}(L) = \epsilon - k \exp(-\gamma L)

    The covariate is the loss, passed as the generic resource ``x`` (as ``sigmoid(resource="x",
    decreasing=True)``; :func:`jaxscale.downstream.accuracy_data` with ``loss=`` builds such data), so the law
    is a stage 2 for :func:`jaxscale.downstream.two_stage`. ``eps`` (in (0, 1), fitted as a logit) is the
    error as the loss grows without bound (random chance); ``k > 0`` and ``gamma > 0`` (fitted as logs).
    Where ``k exp(-gamma L) >= eps`` the predicted error would be <= 0: the law is NaN there (a start or a step
    that lands there is rejected by the solver).

    References
    ----------
    Gadre et al. (2024), arXiv:2403.08540; their code fits ``E - a exp(-b L)``
    (github.com/mlfoundations/scaling, ``scaling/shared.py``, ``fit_ds``).

    Examples
    --------
    >>> import jaxscale
    >>> law = jaxscale.laws.get("loss_to_error")
    >>> [round(float(e), 4) for e in law.predict(dict(eps=0.8, k=5.0, gamma=1.0), x=[2.5, 4.0])]
    [0.3896, 0.7084]
    """
    return Law(
        name="loss_to_error",
        log_predict=_loss_to_error_log_predict,
        params=(
            Param("eps", "logit", (1.0, 2.0), prior=(1.5, 1.5)),
            Param("k", "log", (0.0, 2.0), positive=True, prior=(1.0, 2.0)),
            Param("gamma", "log", (0.0,), positive=True, prior=(0.0, 1.0), kind="exponent"),
        ),
        covariates=("x",),
        formula="Err = eps - k exp(-gamma x), x = loss",
        reference="Gadre et al. 2024, arXiv:2403.08540 (error law in loss)",
        starts_fn=_loss_to_error_starts,
    )


for _factory in (overtraining, loss_to_error):
    register(_factory)
