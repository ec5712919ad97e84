"""Laws of pass rates: GPT-4's mean log pass rate against compute, and repeated-sampling coverage.

Both are power laws in a transformed target, written as log predictions like every law here:

- ``mlpr``: ``-E[log pass_rate] = alpha * C^(-k)``, so ``log y = log alpha - k log C`` (a straight line in log-log).
- ``coverage``: ``coverage = exp(-A * k^(-beta))`` (Brown et al.'s ``log c = a k^b`` with ``a = -A``, ``b = -beta``),
  so ``log y = -A k^(-beta)``: the fitted residual is the error in log coverage.

The data are built from per-problem pass counts by :mod:`jaxscale.sampling`.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from jaxscale.laws._registry import COVARIATES, Law, Param, register
from jaxscale.laws._catalogue import check_resource


def _mlpr_log_predict(theta, logx):
    log_alpha, k = theta
    return log_alpha - k * logx[0]


def _mlpr_log_predict_jac(theta, logx):
    log_alpha, k = theta
    (log_x,) = logx
    lp = log_alpha - k * log_x
    return lp, (jnp.ones_like(lp), -jnp.broadcast_to(log_x, lp.shape))


def _line_fit(x: np.ndarray, z: np.ndarray) -> tuple[float, float]:
    """Least-squares ``z = c0 - slope * x``: ``(c0, slope)``; a flat line through the mean when x is constant."""
    if x.size < 2 or np.ptp(x) == 0:
        return float(np.mean(z)) if z.size else 0.0, 0.3
    slope, c0 = np.polyfit(x, z, 1)
    return float(c0), float(-slope)


def _mlpr_starts(logx, logy):
    # log y is linear in log x: the regression line plus slopes around it, anchored at the median point.
    lx, ly = logx[:, 0], logy
    _, k0 = _line_fit(lx, ly)
    mx, my = float(np.median(lx)), float(np.median(ly))
    rows = []
    for k in {max(k0, 1e-3), 0.02, 0.1, 0.3, 1.0}:
        for shift in (-0.5, 0.0, 0.5):
            rows.append((my + shift + k * mx, k))
    return np.array(sorted(rows))


def mlpr(resource: str = "C") -> Law:
    r"""Mean log pass rate against compute (OpenAI 2023, GPT-4 technical report, Section 3.1, Fig. 2).

    .. math:: -\mathrm{E}_{P}[\log \mathrm{pass\_rate}(C)] = \alpha \, C^{-k}

    The target is the mean over problems of ``-log`` of each problem's single-sample pass rate (build it from
    pass counts with :func:`jaxscale.sampling.mlpr_data`); ``alpha > 0`` (fitted as a log) and ``k > 0``. The
    report fits it to smaller models' HumanEval pass rates and extrapolates to GPT-4's compute. ``resource``
    picks the covariate (``"C"`` by default; ``"N"`` for model size).

    References
    ----------
    OpenAI (2023), *GPT-4 Technical Report*, arXiv:2303.08774, Section 3.1.

    Examples
    --------
    >>> import jaxscale
    >>> law = jaxscale.laws.get("mlpr")
    >>> round(float(law.predict(dict(alpha=20.0, k=0.1), C=1e10)), 4)
    2.0
    """
    resource = check_resource(resource, COVARIATES)
    return Law(
        name="mlpr",
        log_predict=_mlpr_log_predict,
        params=(
            Param("alpha", "log", (0.0, 2.0, 5.0), positive=True, prior=(2.0, 4.0)),
            Param("k", "identity", (0.02, 0.1, 0.3), positive=True, prior=(float(np.log(0.1)), 1.5), kind="exponent"),
        ),
        covariates=(resource,),
        formula=f"-E[log pass_rate] = alpha * {resource}^(-k)",
        reference="OpenAI 2023, GPT-4 Technical Report, arXiv:2303.08774, Sec. 3.1",
        starts_fn=_mlpr_starts,
        options=(("resource", resource),),
        log_predict_jac=_mlpr_log_predict_jac,
    )


def _coverage_log_predict(theta, logx):
    log_A, beta = theta
    return -jnp.exp(log_A - beta * logx[0])


def _coverage_log_predict_jac(theta, logx):
    log_A, beta = theta
    (log_k,) = logx
    lp = -jnp.exp(log_A - beta * log_k)
    return lp, (lp, -lp * log_k)


def _coverage_n_log_predict(theta, logx):
    log_A, alpha, beta = theta
    return -jnp.exp(log_A - alpha * logx[0] - beta * logx[1])


def _coverage_n_log_predict_jac(theta, logx):
    log_A, alpha, beta = theta
    log_n, log_k = logx
    lp = -jnp.exp(log_A - alpha * log_n - beta * log_k)
    return lp, (lp, -lp * log_n, -lp * log_k)


def _neg_log_log(logy):
    # log(-log y): linear in log k under the law. Coverage of 1 (log y = 0) has no finite value: clip it.
    return np.log(np.clip(-np.asarray(logy), 1e-12, None))


def _coverage_starts(logx, logy):
    z = _neg_log_log(logy)
    c0, b0 = _line_fit(logx[:, 0], z)
    rows = []
    for beta in {max(b0, 1e-3), 0.1, 0.3, 0.7}:
        for shift in (-0.5, 0.0, 0.5):
            rows.append((c0 + (beta - b0) * float(np.median(logx[:, 0])) + shift, beta))
    return np.array(sorted(rows))


def _coverage_n_starts(logx, logy):
    z = _neg_log_log(logy)
    design = np.column_stack([np.ones(len(z)), -logx[:, 0], -logx[:, 1]])
    coef, *_ = np.linalg.lstsq(design, z, rcond=None)
    c0, a0, b0 = (float(v) for v in coef)
    mn, mk = (float(v) for v in np.median(logx, axis=0))
    rows = []
    for alpha in {max(a0, 1e-3), 0.1, 0.5}:
        for beta in {max(b0, 1e-3), 0.1, 0.3}:
            for shift in (-0.5, 0.0, 0.5):
                rows.append((c0 + (alpha - a0) * mn + (beta - b0) * mk + shift, alpha, beta))
    return np.array(sorted(rows))


def coverage(resource: str | None = None) -> Law:
    r"""Coverage (pass@k) against the number of samples k: an exponentiated power law (Brown et al. 2024).

    .. math:: \mathrm{coverage}(k) = \exp(-A \, k^{-\beta})

    Brown et al. write it ``log c = a k^b`` with ``a < 0``, ``b < 0``: here ``A = -a > 0`` (fitted as a log) and
    ``beta = -b > 0``, so coverage rises to 1 as ``k`` grows and ``-log coverage`` is a power law in ``k``
    (Schaeffer et al. 2025). The covariate is ``samples``; the target is the coverage in (0, 1] (build it from
    pass counts with :func:`jaxscale.sampling.coverage_data`).

    ``resource="N"`` (or another covariate) adds a power in model size, for choosing a model and a number of
    samples together (:func:`jaxscale.sampling.cheapest`):

    .. math:: \mathrm{coverage}(N, k) = \exp(-A \, N^{-\alpha} k^{-\beta})

    References
    ----------
    Brown et al. (2024), *Large Language Monkeys: Scaling Inference Compute with Repeated Sampling*,
    arXiv:2407.21787, Section 3 (Eq. 2); Schaeffer et al. (2025), *How Do Large Language Monkeys Get Their
    Power (Laws)?*, arXiv:2502.17578.

    Examples
    --------
    >>> import jaxscale
    >>> law = jaxscale.laws.get("coverage")
    >>> [round(float(c), 4) for c in law.predict(dict(A=2.0, beta=0.5), samples=[1, 4, 100])]
    [0.1353, 0.3679, 0.8187]
    >>> jaxscale.laws.get("coverage", resource="N").covariates
    ('N', 'samples')
    """
    exponent = dict(positive=True, prior=(float(np.log(0.3)), 1.0), kind="exponent")
    if resource is None:
        return Law(
            name="coverage",
            log_predict=_coverage_log_predict,
            params=(Param("A", "log", (-1.0, 0.0, 1.0), positive=True, prior=(0.0, 2.0)),
                    Param("beta", "identity", (0.1, 0.3, 0.7), **exponent)),
            covariates=("samples",),
            formula="coverage = exp(-A * samples^(-beta))",
            reference="Brown et al. 2024, arXiv:2407.21787; Schaeffer et al. 2025, arXiv:2502.17578",
            starts_fn=_coverage_starts,
            log_predict_jac=_coverage_log_predict_jac,
        )
    resource = check_resource(resource, tuple(c for c in COVARIATES if c != "samples"))
    return Law(
        name="coverage",
        log_predict=_coverage_n_log_predict,
        params=(Param("A", "log", (0.0, 3.0, 6.0), positive=True, prior=(2.0, 4.0)),
                Param("alpha", "identity", (0.05, 0.2, 0.5), **exponent),
                Param("beta", "identity", (0.1, 0.3, 0.7), **exponent)),
        covariates=(resource, "samples"),
        formula=f"coverage = exp(-A * {resource}^(-alpha) * samples^(-beta))",
        reference="Brown et al. 2024, arXiv:2407.21787 (with a power in model size)",
        starts_fn=_coverage_n_starts,
        options=(("resource", resource),),
        log_predict_jac=_coverage_n_log_predict_jac,
    )


for _factory in (mlpr, coverage):
    register(_factory)
