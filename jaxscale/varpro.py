"""Variable projection (VarPro) for laws whose coefficients enter linearly once the exponents are fixed.

``chinchilla``, ``L = E + A N^-alpha + B D^-beta``, is linear in ``(E, A, B)`` for fixed ``(alpha, beta)``: the
best coefficients for given exponents are a (non-negative) linear least-squares problem, solved exactly, so only
the exponents remain to search (Golub & Pereyra 1973). Two uses:

* :func:`varpro_starts` (``jaxscale.fit(..., starts="varpro")``): a grid over the exponents only, each point's
  coefficients solved, as starts for the usual Levenberg-Marquardt fit of the robust objective. On Epoch's data
  256 such starts reach the optimum of Hoffmann's 4,500-point grid (``benchmarks/bench_varpro.py``).
* :func:`fit_varpro`: the projected least-squares fit itself (exponent grid, then Nelder-Mead on the projected
  objective). Its objective is least squares on *relative* residuals ``(prediction - L) / L`` (a linear problem;
  the first-order form of the log residual), not Huber on log residuals: a different estimator, close to the
  Huber fit where no point is an outlier.

A law takes part once its linear structure is declared with :func:`declare_linear` (``chinchilla`` is declared
here): which parameters are coefficients, which exponents, and the basis whose columns the coefficients multiply.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from jaxscale import validate
from jaxscale.data import ScalingData
from jaxscale.errors import ArgumentError, FitError
from jaxscale.laws import Law, get


class LinearForm(NamedTuple):
    """How a law's natural prediction is linear in some of its parameters.

    ``prediction = basis_fn(exponents, logx) @ coefficients``: ``basis_fn`` maps exponents ``(G, E)`` (natural
    values, in the order of ``exponents``) and log covariates ``(n, K)`` to the basis ``(G, n, len(coefficients))``;
    the coefficients must be >= 0. ``grid`` gives each exponent's default search values (natural scale).
    """

    coefficients: tuple[str, ...]
    exponents: tuple[str, ...]
    basis_fn: Callable[[np.ndarray, np.ndarray], np.ndarray]
    grid: tuple[tuple[float, ...], ...]


#: Declared linear structures, by law name (see :func:`declare_linear`).
LINEAR_FORMS: dict[str, LinearForm] = {}
#: A coefficient solved as 0 starts at this fraction of the target's median (its log must be finite).
COEFFICIENT_FLOOR = 1e-6


def declare_linear(name: str, form: LinearForm) -> None:
    """Declare that law ``name`` is linear in ``form.coefficients`` given ``form.exponents``."""
    LINEAR_FORMS[name] = form


def linear_form(law: Law) -> LinearForm:
    """The declared :class:`LinearForm` of ``law``, checked against its parameters; an ArgumentError if none."""
    form = LINEAR_FORMS.get(law.name)
    if form is None:
        raise ArgumentError(f"Law {law.name!r} declares no linear coefficients, so it has no variable projection; "
                            f"laws that do: {sorted(LINEAR_FORMS)}.")
    if set(form.coefficients) | set(form.exponents) != set(law.param_names):
        raise ArgumentError(f"The linear form of {law.name!r} names {form.coefficients + form.exponents}; the law "
                            f"has {law.param_names}.")
    return form


def _chinchilla_basis(exponents, logx):
    alpha, beta = exponents[:, 0, None], exponents[:, 1, None]
    ones = np.ones((exponents.shape[0], logx.shape[0]))
    return np.stack([ones, np.exp(-alpha * logx[:, 0]), np.exp(-beta * logx[:, 1])], -1)


declare_linear("chinchilla", LinearForm(("E", "A", "B"), ("alpha", "beta"), _chinchilla_basis,
                                        (tuple(np.linspace(0.05, 2.0, 16)),) * 2))


def nnls_small(X: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Batched non-negative least squares ``min_c sum_i w_i (X_i c - 1)^2, c >= 0`` for a few columns.

    ``X`` is ``(G, n, k)`` (``k <= 6``), ``w`` ``(n,)``. Exact: the optimum is the unconstrained solution on its
    support, so every support is solved and the best feasible one kept. Returns ``(c (G, k), sse (G,))``.

    >>> X = np.array([[[1.0, 0.0], [0.0, 1.0]]])
    >>> c, sse = nnls_small(X, np.ones(2))
    >>> c.round(12).tolist(), sse.round(12).tolist()
    ([[1.0, 1.0]], [0.0])
    """
    G, n, k = X.shape
    # unit-norm columns: the normal equations of a basis such as (1, N^-alpha, D^-beta) are badly scaled otherwise
    scale = np.sqrt(np.einsum("gnk,n->gk", X * X, w))
    scale = np.where(scale > 0, scale, 1.0)
    X = X / scale[:, None, :]
    best_c = np.zeros((G, k))
    best = np.full(G, float(np.sum(w)))  # c = 0
    Xw = X * w[None, :, None]
    for size in range(1, k + 1):
        for cols in itertools.combinations(range(k), size):
            S = list(cols)
            A = np.einsum("gni,gnj->gij", Xw[..., S], X[..., S])
            b = Xw[..., S].sum(1)
            with np.errstate(all="ignore"):
                try:
                    c = np.linalg.solve(A + 1e-14 * np.trace(A, axis1=1, axis2=2)[:, None, None] * np.eye(size),
                                        b[..., None])[..., 0]
                except np.linalg.LinAlgError:
                    continue
                r = np.einsum("gni,gi->gn", X[..., S], c) - 1.0
                sse = np.sum(w * r * r, 1)
            ok = np.all(c >= 0, 1) & np.all(np.isfinite(c), 1) & np.isfinite(sse) & (sse < best)
            best = np.where(ok, sse, best)
            full = np.zeros((G, k))
            full[:, S] = c
            best_c = np.where(ok[:, None], full, best_c)
    return best_c / scale, best


def project(law: Law, exponents: np.ndarray, logx: np.ndarray, logy: np.ndarray, weight=None):
    """Best non-negative coefficients for each row of ``exponents`` ``(G, E)`` and the projected objective.

    The objective is ``sum_i w_i ((prediction_i - L_i) / L_i)^2`` (relative residuals). Returns
    ``(coefficients (G, C), objective (G,))``.
    """
    form = linear_form(law)
    y = np.exp(np.asarray(logy, np.float64))
    X = form.basis_fn(np.asarray(exponents, np.float64), np.asarray(logx, np.float64)) / y[None, :, None]
    w = np.ones_like(y) if weight is None else np.asarray(weight, np.float64)
    return nnls_small(X, w)


def _theta(law: Law, form: LinearForm, exponents, coefs, logy) -> np.ndarray:
    floor = COEFFICIENT_FLOOR * float(np.median(np.exp(logy)))
    values = {n: np.maximum(coefs[:, i], floor) for i, n in enumerate(form.coefficients)}
    values.update({n: exponents[:, i] for i, n in enumerate(form.exponents)})
    return np.stack([p.transform_fn.to_fit(np.asarray(values[p.name], np.float64)) for p in law.params], -1)


def exponent_grid(form: LinearForm, n_grid: int | None = None) -> np.ndarray:
    """The exponent grid ``(G, E)``: the form's default values, or ``n_grid`` per exponent over the same range."""
    axes = form.grid if n_grid is None else tuple(tuple(np.linspace(min(g), max(g), n_grid)) for g in form.grid)
    return np.array(list(itertools.product(*axes)), np.float64)


def varpro_starts(law: Law, logx: np.ndarray, logy: np.ndarray, weight=None, *, n_grid: int | None = None,
                  keep: int | None = None) -> np.ndarray:
    """Starts ``(S, P)`` in fitting coordinates: an exponent grid, each point's coefficients solved (:func:`project`).

    ``n_grid`` values per exponent (default: the form's grid, 16 for ``chinchilla``: 256 starts); ``keep`` keeps
    only the best that many by projected objective.

    >>> import jaxscale
    >>> law = jaxscale.laws.get("chinchilla")
    >>> varpro_starts(law, *jaxscale.demo_data().design(law.covariates)).shape
    (256, 5)
    """
    form = linear_form(law)
    ex = exponent_grid(form, None if n_grid is None else validate.integer(n_grid, "n_grid", minimum=2))
    coefs, f = project(law, ex, logx, logy, weight)
    theta = _theta(law, form, ex, coefs, logy)
    if keep is not None:
        keep = validate.integer(keep, "keep")
        theta = theta[np.argsort(f, kind="stable")[:keep]]
    return theta


class VarproResult(NamedTuple):
    """:func:`fit_varpro`'s optimum: natural ``params``, the projected relative least-squares ``objective``,
    ``theta`` (fitting coordinates), grid points tried and ``seconds``."""

    params: dict
    objective: float
    theta: np.ndarray
    n_grid_points: int
    seconds: float


def fit_varpro(law: str | Law, data, *, n_grid: int | None = None, refine: bool = True, **columns) -> VarproResult:
    """Fit a law with declared linear coefficients by variable projection (least squares on relative residuals).

    The projected objective ``min_{c >= 0} sum_i w_i ((prediction_i - L_i) / L_i)^2`` is searched over an
    exponent grid, then (``refine``) minimised from the best grid point by Nelder-Mead; the data's weights count.
    This is not the Huber fit of :func:`jaxscale.fit` (see the module docstring).

    >>> import jaxscale
    >>> r = fit_varpro("chinchilla", jaxscale.demo_data())
    >>> bool(abs(r.params["alpha"] - 0.34) < 0.05), sorted(r.params)
    (True, ['A', 'B', 'E', 'alpha', 'beta'])
    """
    t0 = time.perf_counter()
    law = get(law)
    form = linear_form(law)
    data = ScalingData.coerce(data, **columns)
    logx, logy = data.design(law.covariates, law.name)
    ex = exponent_grid(form, None if n_grid is None else validate.integer(n_grid, "n_grid", minimum=2))
    coefs, f = project(law, ex, logx, logy, data.weight)
    i = int(np.argmin(f))
    best_ex, best_f = ex[i], float(f[i])
    if refine:
        from scipy.optimize import minimize

        def projected(e):
            if np.any(e <= 0):
                return np.inf
            return float(project(law, e[None, :], logx, logy, data.weight)[1][0])

        opt = minimize(projected, best_ex, method="Nelder-Mead", options={"xatol": 1e-8, "fatol": 1e-14,
                                                                         "maxiter": 4000})
        if np.isfinite(opt.fun) and opt.fun <= best_f:
            best_ex, best_f = np.asarray(opt.x), float(opt.fun)
    c, f1 = project(law, best_ex[None, :], logx, logy, data.weight)
    if not np.isfinite(f1[0]):
        raise FitError(f"Variable projection found no finite fit of law {law.name!r}.")
    theta = _theta(law, form, best_ex[None, :], c, logy)[0]
    params = {n: float(c[0, i]) for i, n in enumerate(form.coefficients)}
    params.update({n: float(best_ex[i]) for i, n in enumerate(form.exponents)})
    params = {n: params[n] for n in law.param_names}
    return VarproResult(params, float(f1[0]), theta, len(ex), time.perf_counter() - t0)


__all__ = ["LINEAR_FORMS", "LinearForm", "VarproResult", "declare_linear", "fit_varpro", "linear_form",
           "nnls_small", "project", "varpro_starts"]
