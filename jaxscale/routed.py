r"""Allocations for routed (mixture-of-experts) models: the granularity, size and tokens for a budget, and the
expert count for a model size.

* :func:`granularity_optimal`: under ``moe_granularity`` (Krajewski et al. 2024), the ``N``, ``D`` and
  granularity ``G`` with the lowest loss at a training budget ``C``.
* :func:`experts_optimal`: under ``moe_clark`` (Clark et al. 2022), the expert count with the lowest loss for a
  dense size ``N``, and the size beyond which routing stops helping.

**Cost model** (:func:`granularity_optimal`). Training FLOPs are

.. math:: C = D \, N \, (k \, f_{act} + r \, G)

with ``k = flops_per_token`` (6: forward and backward), ``f_act = active_fraction`` (the parameters a token
uses over the ``N`` the law counts; 1 counts every parameter, as ``C = 6 N D``) and ``r = router_cost``, the
router's FLOPs per token, per parameter and per unit of granularity. Krajewski et al. count the router: a
router of width ``d_model`` choosing among ``E G`` fine experts costs ``c_r d_model E G`` FLOPs per token and
block against ``c_f 12 d_model^2`` for the dense part, i.e. ``r = c_r E / (12 d_model)`` with ``N ~ 12 d_model^2
n_blocks``; pass that ``r`` for your architecture. With ``router_cost = 0`` a finer granularity is always better
in this law, and the optimum is the top of the range (flagged ``at_edge``). With a constant ``router_cost`` the
optimal ``G`` minimises ``(g/G^gamma + a)^beta (k f_act + r G)^(alpha beta)`` and so does not depend on the budget;
in Krajewski et al.'s accounting ``r`` falls as ``d_model`` grows, which moves the optimum to finer experts at
larger budgets: recompute ``r`` for the size you expect.

For each ``G`` the optimal ``N`` has a closed form (the Chinchilla solution with ``A = g/G^gamma + a``); the
loss is then minimised over ``log G`` by a grid and golden-section search. Every function takes a fit, a
bootstrap, a posterior or a dict of parameters; with draws, the table gives the point estimate and ``draws``
one row per draw and budget.

>>> import jaxscale
>>> p = dict(c=0.5, a=20.0, g=3.0, b=30.0, alpha=0.12, beta=0.15, gamma=0.6)
>>> out = granularity_optimal(p, 1e21, granularity=(1, 64), router_cost=0.05)
>>> round(float(out.table["G_opt"][0]), 2), bool(out.table["at_edge"][0])
(17.86, False)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
import pandas as pd

from jaxscale import validate
from jaxscale._draws import param_source
from jaxscale.errors import ArgumentError, LawError

_GRID = 257
_GOLDEN_ITERS = 60
_INVPHI = (np.sqrt(5.0) - 1.0) / 2.0


class Allocation(NamedTuple):
    """An allocation: ``table`` (one row per budget or size, point estimate), ``draws`` (one row per draw and
    budget, or ``None`` for a point fit) and the ``law`` it was computed under."""

    table: pd.DataFrame
    draws: pd.DataFrame | None
    law: str


def check_range(value, name: str, minimum: float) -> tuple[float, float]:
    """A ``(low, high)`` search range, both finite, ``minimum <= low <= high``: else an ArgumentError naming ``name``.

    >>> check_range((1, 64), "granularity", 1.0)
    (1.0, 64.0)
    """
    try:
        lo, hi = (float(validate.number(v, name)) for v in value)
    except (TypeError, ValueError):
        raise ArgumentError(f"{name} must be a (low, high) pair of numbers; got {value!r}.") from None
    if not minimum <= lo <= hi:
        raise ArgumentError(f"{name} must be a range with {minimum:g} <= low <= high; got {value!r}.")
    return lo, hi


def check_candidates(values, name: str, minimum: float) -> np.ndarray:
    """Candidate values (a non-empty sequence, each finite and >= ``minimum``), sorted."""
    arr = validate.positives(values, name).ravel()
    if np.any(arr < minimum):
        raise ArgumentError(f"{name} must all be >= {minimum:g}; got {arr[arr < minimum][0]!r}.")
    return np.unique(arr)


def minimize_log(f, lo: float, hi: float, shape: tuple[int, ...]) -> np.ndarray:
    """``argmin`` of ``f(log x)`` over ``x`` in ``[lo, hi]`` for each element of a batch: returns ``log x``.

    ``f`` takes an array of ``log x`` broadcast against ``shape + (m,)`` and returns the values, same shape. A
    log-spaced grid brackets the minimum; golden-section search polishes it within the bracket.

    >>> import numpy as np
    >>> round(float(np.exp(minimize_log(lambda u: (u - np.log(3.0)) ** 2, 1.0, 10.0, ()))), 9)
    3.0
    """
    a, b = np.log(lo), np.log(hi)
    if a == b:
        return np.full(shape, a)
    grid = np.linspace(a, b, _GRID)
    vals = f(np.broadcast_to(grid, shape + (_GRID,)))
    i = np.argmin(vals, axis=-1)
    left = grid[np.maximum(i - 1, 0)]
    right = grid[np.minimum(i + 1, _GRID - 1)]
    x1 = right - _INVPHI * (right - left)
    x2 = left + _INVPHI * (right - left)
    f1, f2 = f(x1[..., None])[..., 0], f(x2[..., None])[..., 0]
    for _ in range(_GOLDEN_ITERS):
        lower = f1 < f2  # the minimum is in [left, x2]: drop (x2, right]
        right = np.where(lower, x2, right)
        left = np.where(lower, left, x1)
        x_new = np.where(lower, right - _INVPHI * (right - left), left + _INVPHI * (right - left))
        f_new = f(x_new[..., None])[..., 0]
        x1, x2 = np.where(lower, x_new, x2), np.where(lower, x1, x_new)
        f1, f2 = np.where(lower, f_new, f2), np.where(lower, f1, f_new)
    best = 0.5 * (left + right)
    # the grid's best point wins if the polish drifted off a flat edge
    gbest = grid[i]
    return np.where(f(best[..., None])[..., 0] <= f(gbest[..., None])[..., 0], best, gbest)


def law_source(fit, name: str, law=None):
    """The :class:`~jaxscale._draws.ParamSource` of ``fit``, which must be a fit of law ``name`` (any options); a
    dict of parameters is read under ``law`` (default: ``name`` with its default options)."""
    if isinstance(fit, Mapping):
        src = param_source(fit, name if law is None else law)
    else:
        src = param_source(fit, law)
    if src.law.name != name:
        raise LawError(f"This allocation needs a {name!r} fit; got law {src.law.name!r}.")
    return src


def allocation(solve, src, kind: str) -> Allocation:
    """The :class:`Allocation` of ``solve`` (``{parameter: (n, 1) values} -> {column: (n, B) values}``) at the
    point of ``src`` (a ``ParamSource``), with a row per draw and budget when ``src`` has draws."""
    point = solve({k: [v] for k, v in src.point.items()})
    table = pd.DataFrame({k: v[0] for k, v in point.items()})
    draws = None
    if src.draws is not None:
        cols = src.columns()
        n_draws = len(next(iter(cols.values())))
        out = solve(cols)
        n_rows = next(iter(out.values())).shape[1]
        draws = pd.DataFrame({"draw": np.repeat(np.arange(n_draws), n_rows), **{k: v.ravel() for k, v in out.items()}})
    return Allocation(table, draws, kind)


def _granularity_optimum(p, C, log_G_of, k_act, r):
    """Closed-form N, D and loss at each log G for parameters ``p`` (arrays broadcast (draws, budgets, m))."""
    G = np.exp(log_G_of)
    A = p["g"] * G ** -p["gamma"] + p["a"]
    k = k_act + r * G
    ab = p["alpha"] + p["beta"]
    with np.errstate(over="ignore", under="ignore"):
        N = (p["alpha"] * A / (p["beta"] * p["b"])) ** (1.0 / ab) * (C / k) ** (p["beta"] / ab)
        D = C / (k * N)
        L = p["c"] + A * N ** -p["alpha"] + p["b"] * D ** -p["beta"]
    return N, D, L


def granularity_optimal(fit, budget, *, granularity=(1.0, 64.0), candidates=None, active_fraction: float = 1.0,
                        router_cost: float = 0.0, flops_per_token: float = 6.0) -> Allocation:
    """The compute-optimal size, tokens and granularity under ``moe_granularity`` (Krajewski et al. 2024).

    Parameters
    ----------
    fit
        A ``moe_granularity`` fit, bootstrap, posterior, or dict of its parameters.
    budget
        Training FLOPs: a number or a sequence.
    granularity
        ``(low, high)`` range searched for ``G`` (continuous), ``1 <= low <= high``.
    candidates
        Instead of a range, the granularities to choose among (e.g. ``[1, 2, 4, 8, 16]``).
    active_fraction, router_cost, flops_per_token
        The cost model ``C = D N (flops_per_token * active_fraction + router_cost * G)`` (module docstring).

    Returns
    -------
    Allocation
        ``table`` columns ``budget, N_opt, D_opt, G_opt, L_opt, tokens_per_param, at_edge`` (``at_edge``: the
        optimum is at an end of the range, so the range, not the law, decided it).

    References
    ----------
    Krajewski, Ludziejewski et al. (2024), *Scaling Laws for Fine-Grained Mixture of Experts*, arXiv:2402.07871.

    Examples
    --------
    >>> p = dict(c=0.5, a=20.0, g=3.0, b=30.0, alpha=0.12, beta=0.15, gamma=0.6)
    >>> out = granularity_optimal(p, [1e20, 1e22], candidates=[1, 2, 4, 8, 16, 32], router_cost=0.05)
    >>> out.table["G_opt"].tolist()
    [16.0, 16.0]
    """
    src = law_source(fit, "moe_granularity")
    C = validate.budgets(budget, "budget")
    k_act = validate.positive(flops_per_token, "flops_per_token") * validate.number(
        active_fraction, "active_fraction", minimum=0, maximum=1, open_min=True)
    r = validate.number(router_cost, "router_cost", minimum=0)
    if candidates is not None:
        cands = check_candidates(candidates, "candidates", 1.0)
        lo, hi = float(cands[0]), float(cands[-1])
    else:
        lo, hi = check_range(granularity, "granularity", 1.0)

    def solve(p):
        P = {k: np.asarray(v, float)[:, None, None] for k, v in p.items()}
        Cb = C[None, :, None]

        def loss(u):
            return _granularity_optimum(P, Cb, u, k_act, r)[2]

        n = next(iter(P.values())).shape[0]
        if candidates is not None:
            u_all = np.log(cands)
            vals = loss(np.broadcast_to(u_all, (n, C.size, u_all.size)))
            G = cands[np.argmin(vals, axis=-1)]
        else:
            G = np.exp(minimize_log(loss, lo, hi, (n, C.size)))
        N, D, L = (x[..., 0] for x in _granularity_optimum(P, Cb, np.log(G)[..., None], k_act, r))
        edge = np.isclose(G, lo, rtol=1e-6) | np.isclose(G, hi, rtol=1e-6)
        if lo == hi:
            edge = np.ones_like(edge)
        return {"budget": np.broadcast_to(C, G.shape), "N_opt": N, "D_opt": D, "G_opt": G, "L_opt": L,
                "tokens_per_param": D / N, "at_edge": edge}

    return allocation(solve, src, "moe_granularity")


def _log_experts_hat(E, p, bounded: bool):
    if not bounded:
        return np.log(E)
    gap = np.maximum(1.0 / p["E_start"] - 1.0 / p["E_max"], 1e-12)
    return -np.log(1.0 / (E - 1.0 + 1.0 / gap) + 1.0 / p["E_max"])


def experts_optimal(fit, N, *, experts=(1.0, 512.0), candidates=None, law=None) -> Allocation:
    """The expert count with the lowest loss at each dense size ``N`` under ``moe_clark`` (Clark et al. 2022).

    ``log L`` is linear in ``log E^`` with slope ``b + c log N``, so the best count is an end of the range: the
    largest while routing helps (slope < 0), 1 end otherwise. The size where the slope changes sign,
    ``N_cutoff = exp(-b/c)`` (``inf`` when ``c <= 0``), is in the table: Clark et al. read it as the size past
    which routing no longer improves the loss.

    Parameters
    ----------
    fit
        A ``moe_clark`` fit (bounded or not), bootstrap, posterior, or dict of its parameters.
    N
        Dense model sizes: a number or a sequence, > 0.
    experts
        ``(low, high)`` range of expert counts, ``1 <= low <= high``.
    candidates
        Instead of a range, the expert counts to choose among.
    law
        For a dict of parameters of the bounded law: ``jaxscale.laws.get("moe_clark", bounded=True)``.

    Returns
    -------
    Allocation
        ``table`` columns ``N, experts_opt, L_opt, L_dense`` (loss at ``E = 1``), ``gain`` (``1 - L_opt /
        L_dense``), ``N_cutoff``.

    References
    ----------
    Clark et al. (2022), *Unified Scaling Laws for Routed Language Models*, arXiv:2202.01169.

    Examples
    --------
    >>> out = experts_optimal(dict(a=-0.08, b=-0.1, c=0.004, d=2.7), [1e9, 1e12], experts=(1, 512))
    >>> out.table["experts_opt"].tolist(), round(float(out.table["N_cutoff"][0]) / 1e10, 2)
    ([512.0, 1.0], 7.2)
    """
    src = law_source(fit, "moe_clark", law)
    bounded = dict(src.law.options).get("bounded", False)
    Ns = validate.positives(N, "N").ravel()
    if candidates is not None:
        cands = check_candidates(candidates, "candidates", 1.0)
    else:
        lo, hi = check_range(experts, "experts", 1.0)
        cands = np.unique([lo, hi])

    def solve(p):
        P = {k: np.asarray(v, float)[:, None, None] for k, v in p.items()}
        logN = np.log(Ns)[None, :, None]

        def log_loss(E):
            lEh = _log_experts_hat(E, P, bounded)
            return P["a"] * logN + P["b"] * lEh + P["c"] * logN * lEh + P["d"]

        vals = log_loss(cands[None, None, :])
        i = np.argmin(vals, axis=-1)
        L = np.exp(np.take_along_axis(vals, i[..., None], -1)[..., 0])
        L1 = np.exp(log_loss(np.ones((1, 1, 1)))[..., 0])
        b, c = P["b"][..., 0], P["c"][..., 0]
        with np.errstate(over="ignore", divide="ignore"):
            cut = np.where(c > 0, np.exp(-b / np.where(c > 0, c, 1.0)), np.inf)
        return {"N": np.broadcast_to(Ns, L.shape), "experts_opt": cands[i], "L_opt": L, "L_dense": L1,
                "gain": 1.0 - L / L1, "N_cutoff": np.broadcast_to(cut, L.shape)}

    return allocation(solve, src, "moe_clark")


__all__ = ["Allocation", "experts_optimal", "granularity_optimal"]
