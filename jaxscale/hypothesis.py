"""Tests of published parameter sets against a fit (Epoch AI's analysis).

* :func:`chi2_test`: Wald-type chi-squared statistic of a reference parameter
  vector against the bootstrap covariance,
  ``(theta_ref - theta_hat)^T Sigma^-1 (theta_ref - theta_hat)``, df = number
  of parameters. As Epoch, on the fitting scale (``log A, log B, log E,
  alpha, beta`` for Chinchilla) by default.
* :func:`lr_test`: likelihood-ratio statistic with the free-scale Huber
  likelihood, ``2 (LL_fit - LL_ref)``, where each log-likelihood has its own
  best scale sigma; df = free parameters of the law (sigma is fitted under
  both hypotheses).

p-values use the chi-squared survival function (regularised upper incomplete
gamma), accurate far into the tail (Epoch's 1.7e-49).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from jaxscale import validate
from jaxscale.errors import ArgumentError, FitError


class HypothesisTest(NamedTuple):
    """``statistic``, degrees of freedom ``df``, ``p_value``, and the test's inputs in ``details``."""

    statistic: float
    df: int
    p_value: float
    details: dict

    def __str__(self) -> str:
        return f"statistic {self.statistic:.2f}, df {self.df}, p = {self.p_value:.3g}"


def chi2_sf(x: float, df: int) -> float:
    """Survival function of the chi-squared distribution.

    >>> round(chi2_sf(3.841458820694124, 1), 6)
    0.05
    """
    from jax.scipy.special import gammaincc

    return float(gammaincc(df / 2.0, x / 2.0))


def chi2_test(boot, reference: Mapping[str, float], *, estimate=None, scale: str = "fit") -> HypothesisTest:
    """Chi-squared test of ``reference`` (natural-scale parameters) against a bootstrap.

    Parameters
    ----------
    boot
        A :class:`~jaxscale.uncertainty.BootstrapResult`; its covariance is used.
    reference
        The parameter set to test, e.g. Hoffmann et al.'s values.
    estimate
        The centre: the bootstrap's point fit by default, or another
        :class:`FitResult` / dict of natural parameters (Epoch centred on their
        likelihood fit while bootstrapping the summed-Huber fit).
    scale
        ``"fit"`` (the law's fitting coordinates; Epoch's choice) or ``"natural"``.
    """
    scale = validate.choice(scale, "scale", ("fit", "natural"))
    law = boot.law
    if estimate is None:
        est = dict(boot.point.params)
    elif hasattr(estimate, "params"):
        est = dict(estimate.params)
    else:
        est = dict(estimate)
    cov = boot.cov(scale).to_numpy()
    if scale == "fit":
        d = np.asarray(law.from_natural(dict(reference))) - np.asarray(law.from_natural(est))
    else:
        ref = dict(reference)
        law.from_natural(ref)  # validates the names
        d = np.array([ref[k] - est[k] for k in law.param_names])
    fixed = set(boot.settings.get("fixed") or {})
    free = np.array([n not in fixed for n in law.param_names])  # parameters held fixed are not tested
    dv, cv = d[free], cov[np.ix_(free, free)]
    stat = float(dv @ np.linalg.solve(cv, dv))
    df = int(free.sum())
    return HypothesisTest(stat, df, chi2_sf(stat, df), {"difference": dict(zip(np.array(
        law.fit_names if scale == "fit" else law.param_names)[free].tolist(), dv.tolist())), "scale": scale,
        "n_draws": int(len(boot.draws))})


def lr_test(law, data, reference: Mapping[str, float], *, fit=None, delta: float = 1e-3, **columns) -> HypothesisTest:
    """Likelihood-ratio test of ``reference`` against the maximum-likelihood fit.

    Both log-likelihoods use Epoch's Huber density on log-loss with their own
    best scale. ``fit`` is a :class:`FitResult` with ``objective="likelihood"``
    (fitted from the law's start grid if omitted).
    """
    import jaxscale
    from jaxscale.data import ScalingData
    from jaxscale.fit import FitResult
    from jaxscale.laws import get
    from jaxscale.objectives import make_objective

    law = get(law)
    make_objective("likelihood", delta)
    if fit is not None and not isinstance(fit, FitResult):
        raise ArgumentError(f"fit must be a FitResult from jaxscale.fit(..., objective='likelihood'); got "
                            f"{type(fit).__name__}.")
    data = ScalingData.coerce(data, **columns)
    if fit is None:
        fit = jaxscale.fit(law, data, objective="likelihood", delta=delta)
    if fit.settings["objective"] != "likelihood":
        raise FitError(f"lr_test needs a fit with objective='likelihood'; got {fit.settings['objective']!r}.")
    if fit.n_points != len(data) or fit.fingerprint != data.fingerprint():
        raise FitError("lr_test: the fit was made on different data (its fingerprint differs).")
    ll_fit = -fit.objective
    ll_ref = -jaxscale.objective(law, data, reference, objective="likelihood", delta=fit.settings["delta"])
    stat = 2.0 * (ll_fit - ll_ref)
    df = law.n_params - len(fit.settings.get("fixed") or {})
    return HypothesisTest(stat, df, chi2_sf(max(stat, 0.0), df),
                          {"log_likelihood_fit": ll_fit, "log_likelihood_reference": ll_ref, "n_points": len(data)})


__all__ = ["HypothesisTest", "chi2_sf", "chi2_test", "lr_test"]
