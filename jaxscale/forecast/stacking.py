"""Law uncertainty: a stacked mixture of several laws, weighted by their leave-future-out log score.

Stacking (Yao, Vehtari, Simpson & Gelman 2018, "Using stacking to average Bayesian predictive distributions",
Eq. 4) chooses the weights ``a`` on the simplex that maximise ``sum_p w_p log sum_k a_k p_k(e_p)`` over held-out
predictions ``p``. Here the held-out predictions are the leave-future-out fold forecasts of
:mod:`jaxscale.forecast.calibration`, on folds shared by every law, and ``p_k`` is law ``k``'s calibrated
predictive density of the fold's error, with that fold's own scores left out of its kernel estimate. Unlike
Bayesian model averaging, stacking does not pick the law that fits the training data best, but the mixture that
*forecast* best; a law that fits well and extrapolates badly loses weight.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from jaxscale.forecast.calibration import Calibration


def stacking_weights(calibrations: Mapping[str, Calibration], n_iter: int = 2000,
                     tol: float = 1e-10) -> tuple[dict[str, float], dict[str, int]]:
    """Stacking weights of the laws (EM on the mixture weights; monotone, to ``tol`` in the objective).

    Pairs are matched across laws by (fold, training row); pairs that some law could not forecast (its refit of
    that fold failed) are left out for all. Returns ``(weights, info)``; ``info`` counts the pairs used.

    >>> import numpy as np
    >>> from jaxscale.forecast.calibration import Calibration
    >>> def cal(name, z):
    ...     n = len(z)
    ...     pairs = {"fold": np.arange(n) % 2, "row": np.arange(n), "distance": np.ones(n), "error": 0.1 * z,
    ...              "z": z, "weight": np.full(n, 1.0 / n)}
    ...     return Calibration(name, "x", 0.0, 1.0, 0.01, 0.1, 0.3, [], pairs)
    >>> z = np.random.default_rng(0).standard_normal(40)
    >>> w, info = stacking_weights({"good": cal("good", z), "bad": cal("bad", z + 3.0 * np.sign(z))})
    >>> w["good"] > 0.9, info["n_pairs"]
    (True, 40)
    """
    names = list(calibrations)
    keys = [set(zip(c.pairs["fold"].tolist(), c.pairs["row"].tolist())) for c in calibrations.values()]
    common = set.intersection(*keys) if keys else set()
    if not common:
        raise ValueError("The laws share no leave-future-out fold forecasts to stack on.")
    logd, weight = [], None
    for c in calibrations.values():
        index = {k: i for i, k in enumerate(zip(c.pairs["fold"].tolist(), c.pairs["row"].tolist()))}
        take = np.array([index[k] for k in sorted(common)])
        logd.append(c.fold_log_density()[take])
        if weight is None:
            fold = c.pairs["fold"][take]
            per = np.bincount(fold)
            weight = 1.0 / per[fold]
            weight /= weight.sum()
    L = np.stack(logd)  # (K, P)
    L = np.where(np.isfinite(L), L, -1e300)
    m = L.max(0, keepdims=True)
    D = np.exp(L - m)  # scaled per pair: the weights do not depend on the scale
    a = np.full(len(names), 1.0 / len(names))
    prev = -np.inf
    for _ in range(n_iter):
        mix = a @ D
        obj = float(np.sum(weight * np.log(np.maximum(mix, 1e-300))))
        a = a * ((D / np.maximum(mix, 1e-300)) @ weight)
        a /= a.sum()
        if obj - prev < tol:
            break
        prev = obj
    return dict(zip(names, a.tolist())), {"n_pairs": len(common)}


__all__ = ["stacking_weights"]
