r"""The compute-optimal training precision under the ``precision`` law (Kumar et al. 2024).

**Cost model.** Training compute grows with the bits of the arithmetic:

.. math:: C = k \, N \, D \, \frac{P}{P_{ref}}

with ``k = flops_per_token`` (6) and ``P_ref = reference_bits`` (16), so that 16-bit training costs the usual
``6 N D`` and 8-bit training half of it (Kumar et al. take compute proportional to ``N D P``; the
normalisation is ours and does not move the optimum).

For each ``P`` the optimal ``N`` has a closed form (the Chinchilla solution with ``A`` replaced by
``A (1 - e^{-P/gamma})^{-k alpha}``); the loss is then minimised over ``log P`` by a grid and golden-section
search. Substituting the optimum shows that the best ``P`` minimises ``P / (1 - e^{-P/gamma})^parts``: it does
not depend on the budget, nor on ``E, A, B, alpha, beta``, only on ``gamma`` and on how many of weights,
activations and KV cache share the precision (``parts``). With ``parts = 1`` that function increases with ``P``,
so the lowest precision in the range is optimal (``at_edge``); with ``parts = k > 1`` the optimum is
``P* = x gamma`` where ``e^x - 1 = k x`` (``x = 1.2564`` for ``k = 2``, ``1.9038`` for ``k = 3``).

>>> p = dict(E=1.7, A=400.0, B=400.0, alpha=0.34, beta=0.28, gamma=4.0)
>>> import jaxscale
>>> fit = jaxscale.laws.get("precision", parts=3)
>>> out = precision_optimal(p, [1e20, 1e23], law=fit)
>>> [round(float(v), 3) for v in out.table["P_opt"]]
[7.615, 7.615]
"""

from __future__ import annotations

import numpy as np

from jaxscale import validate
from jaxscale.errors import ArgumentError
from jaxscale.routed import Allocation, allocation, check_candidates, check_range, law_source, minimize_log


def _precision_optimum(p, C, log_P, parts, k, ref):
    P = np.exp(log_P)
    with np.errstate(over="ignore", under="ignore", divide="ignore"):
        f = (-np.expm1(-P / p["gamma"])) ** parts
        A = p["A"] * f ** -p["alpha"]
        kp = k * P / ref
        ab = p["alpha"] + p["beta"]
        N = (p["alpha"] * A / (p["beta"] * p["B"])) ** (1.0 / ab) * (C / kp) ** (p["beta"] / ab)
        D = C / (kp * N)
        L = p["E"] + A * N ** -p["alpha"] + p["B"] * D ** -p["beta"]
    return N, D, L


def precision_optimal(fit, budget, *, precision=(2.0, 16.0), candidates=None, law=None,
                      flops_per_token: float = 6.0, reference_bits: float = 16.0) -> Allocation:
    """The compute-optimal training precision, size and tokens at each budget under ``precision``.

    Parameters
    ----------
    fit
        A ``precision`` fit, bootstrap, posterior, or a dict of its parameters (then ``law`` says which
        ``precision`` law, e.g. ``jaxscale.laws.get("precision", parts=3)``; default ``parts=1``).
    budget
        Training FLOPs at ``reference_bits``: a number or a sequence.
    precision
        ``(low, high)`` range of training precisions in bits, ``0 < low <= high``.
    candidates
        Instead of a range, the precisions to choose among (e.g. ``[4, 6, 8, 16]``).
    law
        The law, for a dict of parameters.
    flops_per_token, reference_bits
        The cost model ``C = flops_per_token N D P / reference_bits`` (module docstring).

    Returns
    -------
    Allocation
        ``table`` columns ``budget, P_opt, N_opt, D_opt, L_opt, tokens_per_param, at_edge``.

    References
    ----------
    Kumar et al. (2024), *Scaling Laws for Precision*, ICLR 2025, arXiv:2411.04330.

    Examples
    --------
    >>> p = dict(E=1.7, A=400.0, B=400.0, alpha=0.34, beta=0.28, gamma=4.0)
    >>> precision_optimal(p, 1e21, candidates=[4, 8, 16]).table["P_opt"].tolist()   # parts=1: lowest wins
    [4.0]
    """
    src = law_source(fit, "precision", law)
    parts = dict(src.law.options)["parts"]
    C = validate.budgets(budget, "budget")
    k = validate.positive(flops_per_token, "flops_per_token")
    ref = validate.positive(reference_bits, "reference_bits")
    if candidates is not None:
        cands = check_candidates(candidates, "candidates", 0.0)
        lo, hi = float(cands[0]), float(cands[-1])
    else:
        lo, hi = check_range(precision, "precision", 0.0)
        if lo <= 0:
            raise ArgumentError(f"precision must be a range of bits with 0 < low <= high; got {precision!r}.")

    def solve(p):
        P = {name: np.asarray(v, float)[:, None, None] for name, v in p.items()}
        Cb = C[None, :, None]

        def loss(u):
            return _precision_optimum(P, Cb, u, parts, k, ref)[2]

        n = next(iter(P.values())).shape[0]
        if candidates is not None:
            u_all = np.log(cands)
            bits = cands[np.argmin(loss(np.broadcast_to(u_all, (n, C.size, u_all.size))), axis=-1)]
        else:
            bits = np.exp(minimize_log(loss, lo, hi, (n, C.size)))
        N, D, L = (x[..., 0] for x in _precision_optimum(P, Cb, np.log(bits)[..., None], parts, k, ref))
        edge = np.isclose(bits, lo, rtol=1e-6) | np.isclose(bits, hi, rtol=1e-6)
        return {"budget": np.broadcast_to(C, bits.shape), "P_opt": bits, "N_opt": N, "D_opt": D, "L_opt": L,
                "tokens_per_param": D / N, "at_edge": edge}

    return allocation(solve, src, "precision")


def optimal_precision_ratio(parts: int) -> float:
    """``x = P*/gamma`` solving ``e^x - 1 = parts * x`` (``parts >= 2``): the budget-free optimum of the module
    docstring, by Newton's method.

    >>> round(optimal_precision_ratio(3), 4)
    1.9038
    """
    parts = validate.integer(parts, "parts", minimum=2)
    x = np.log(parts) + 1.0
    for _ in range(50):
        x -= (np.expm1(x) - parts * x) / (np.exp(x) - parts)
    return float(x)


__all__ = ["optimal_precision_ratio", "precision_optimal"]
