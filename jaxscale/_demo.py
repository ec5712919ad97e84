"""An embedded synthetic dataset: Hoffmann et al.'s published law plus noise."""

from __future__ import annotations

import numpy as np

from jaxscale.data import ScalingData
from jaxscale.published import HOFFMANN_UNROUNDED



def demo_data(n_budgets: int = 8, per_budget: int = 12, noise: float = 0.01, seed: int = 0) -> ScalingData:
    """IsoFLOP-style synthetic runs from Hoffmann's unrounded law.

    ``n_budgets`` compute budgets from 1e18 to 1e22 FLOPs, ``per_budget``
    model sizes each (D = C / 6N), and multiplicative log-normal noise of
    relative size ``noise`` on the loss. Deterministic for a given ``seed``.

    >>> import jaxscale
    >>> d = jaxscale.demo_data()
    >>> len(d), sorted(d.covariates)
    (96, ['C', 'D', 'N'])
    """
    rng = np.random.default_rng(seed)
    budgets = np.logspace(18, 22, n_budgets)
    C, N = [], []
    for c in budgets:
        n_opt = (c / 6 / 20) ** 0.5
        for n in n_opt * np.logspace(-1.2, 1.2, per_budget):
            C.append(c)
            N.append(n)
    C, N = np.array(C), np.array(N)
    D = C / (6 * N)
    p = HOFFMANN_UNROUNDED
    loss = p["E"] + p["A"] / N ** p["alpha"] + p["B"] / D ** p["beta"]
    loss = loss * np.exp(noise * rng.standard_normal(loss.shape))
    data = ScalingData.from_arrays(N=N, C=C, loss=loss)
    return ScalingData(data.covariates, data.y, source="jaxscale.demo_data", _index=data.rows)
