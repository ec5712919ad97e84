"""Law uncertainty: a stacked mixture of several laws, weighted by their leave-future-out log score.

Stacking (Yao, Vehtari, Simpson & Gelman 2018, "Using stacking to average Bayesian predictive distributions",
Eq. 4) chooses the weights ``a`` on the simplex that maximise ``sum_p w_p log sum_k a_k p_k(e_p)`` over held-out
predictions ``p``. Here the held-out predictions are the leave-future-out fold forecasts of
:mod:`jaxscale.forecast.calibration`, on folds shared by every law, and ``p_k`` is law ``k``'s calibrated
predictive density of the fold's error, with that fold's own scores left out of its kernel estimate. Unlike
Bayesian model averaging, stacking does not pick the law that fits the training data best, but the mixture that
*forecast* best; a law that fits well and extrapolates badly loses weight.

Solver: L-BFGS from optax, on softmax logits. The objective is concave in ``a`` and smooth, with no
least-squares structure for Levenberg-Marquardt to use, and a handful of unknowns: a job for a quasi-Newton
first-order method. ``a = softmax(theta)`` removes the simplex constraint, and the objective is evaluated in log
space (``logsumexp(log a_k + log p_k)``), so no density is exponentiated and float32 is safe. Plain L-BFGS on
softmax logits is not enough: a long line-search step can drive a deserving law's logit so low that its gradient
vanishes (measured on near-identical laws: 3 of 100 random 8-law problems and 4 of 600 4-law ones ended 1.4e-6 to
2e-3 below the optimum, with ``optax.lbfgs`` stopped on its gradient norm), so
:func:`solve_stacking` stops on the Frank-Wolfe gap, which certifies the optimum, and takes away- and toward-steps
with exact line search when L-BFGS stalls. :func:`solve_stacking` is one problem, pure and jittable; inputs are
padded (pairs to a power of two >= 128, laws to one >= 4, masked) so a session compiles one program per dtype for
most stacks.

Measured against the EM it replaced (kept as :func:`em_weights`, ``method="em"``) in
``benchmarks/bench_stacking.py`` (``benchmarks/results/bench_stacking-cpu.json``; 2-core Xeon VM shared with
other jobs, load average 3-4.5; float64 unless said):

* objective: 240 random problems (2-8 laws, 40-1,000 pairs) and 6 stacks ``[power, broken_power]`` from
  Revisiting backtests: never below EM's by more than 9.3e-11 (EM's own tolerance is 1e-10), up to 2.2e-6 above
  it where near-identical laws make EM stop early; float32 within 1.1e-6 of EM's float64 objective;
* iterations 2-71 against EM's 12-2,000; the answer carries its gap (``info["gap"]``), EM's does not;
* time, the cost: a compiled solve takes 1.3 ms (Revisiting stacks) to 2.8 ms (random, median) against EM's
  0.45 and 2.1 ms; the first solve of a padded shape compiles, 2.6-3.1 s (once per process; the CLI's
  persistent compilation cache keeps it across runs); 200 problems vmapped in one call took 2.4 s against EM's
  0.35 s one at a time, so batching does not pay on a CPU.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.tree_utils as otu

from jaxscale import validate
from jaxscale.errors import DataError
from jaxscale.forecast.calibration import Calibration

#: L-BFGS stops when the Frank-Wolfe gap (a bound on the log score's distance to its maximum) is below this (by
#: dtype), or after ``MAX_ITER`` iterations or ``MAX_RESTARTS`` restarts (see :func:`solve_stacking`).
TOL = {"float64": 1e-10, "float32": 1e-6}
MAX_ITER = 500
MAX_RESTARTS = 20
#: Log densities below the best law's at a pair by more than this are treated as 0 density (also the value of a
#: non-finite one). exp(-1e4) is 0 in every float type, so this changes nothing but keeps infinities out.
FLOOR = -1e4


def stacking_problem(calibrations: Mapping[str, Calibration]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The laws' names, log densities ``(K, P)`` and pair weights ``(P,)`` of a stacking problem.

    Pairs are matched across laws by (fold, training row); pairs that some law could not forecast (its refit of
    that fold failed) are left out for all. Each fold weighs the same, shared by its pairs; weights sum to 1.
    Log densities are relative to the best law's at each pair (so at most 0), non-finite ones set to
    :data:`FLOOR`; a pair no law could score is 0 for all (it carries no information).
    """
    names = list(calibrations)
    keys = [set(zip(c.pairs["fold"].tolist(), c.pairs["row"].tolist())) for c in calibrations.values()]
    common = sorted(set.intersection(*keys)) if keys else []
    if not common:
        raise DataError(f"Stacking {names} needs leave-future-out fold forecasts shared by every law; they share "
                        f"none.")
    logd, weight = [], None
    for c in calibrations.values():
        index = {k: i for i, k in enumerate(zip(c.pairs["fold"].tolist(), c.pairs["row"].tolist()))}
        take = np.array([index[k] for k in common])
        logd.append(c.fold_log_density()[take])
        if weight is None:
            fold = c.pairs["fold"][take]
            weight = 1.0 / np.bincount(fold)[fold]
            weight /= weight.sum()
    return names, relative_log_density(np.stack(logd)), weight


def relative_log_density(log_density: np.ndarray) -> np.ndarray:
    """Log densities ``(K, P)`` minus each pair's best, non-finite (and far-below) ones at :data:`FLOOR`.

    >>> relative_log_density(np.array([[0.0, -np.inf], [-2.0, -np.inf]])).tolist()
    [[0.0, 0.0], [-2.0, 0.0]]
    """
    L = np.where(np.isfinite(log_density), log_density, -np.inf)
    m = L.max(0, keepdims=True)
    rel = np.where(np.isfinite(m), L - np.where(np.isfinite(m), m, 0.0), 0.0)
    return np.maximum(rel, FLOOR)


def stacking_objective(a: np.ndarray, log_density: np.ndarray, weight: np.ndarray) -> float:
    """``sum_p w_p log sum_k a_k exp(L_kp)`` in float64: the log score the weights ``a`` maximise.

    >>> stacking_objective(np.array([0.5, 0.5]), np.zeros((2, 3)), np.full(3, 1 / 3))
    0.0
    """
    with np.errstate(divide="ignore"):
        la = np.log(np.asarray(a, np.float64))
    x = la[:, None] + np.asarray(log_density, np.float64)
    m = x.max(0)
    return float(np.sum(weight * (m + np.log(np.exp(x - m).sum(0)))))


def stacking_gap(a: np.ndarray, log_density: np.ndarray, weight: np.ndarray) -> float:
    """The Frank-Wolfe gap ``max_k r_k - 1`` of weights ``a`` in float64: 0 at the optimum, and an upper bound on
    how far :func:`stacking_objective` is below its maximum (``r_k = sum_p w_p p_k / mix_p``, its gradient).

    >>> L, w = np.log([[0.9, 0.1], [0.1, 0.9]]), np.array([0.5, 0.5])
    >>> abs(stacking_gap(np.array([0.5, 0.5]), L, w)) < 1e-12, round(stacking_gap(np.array([0.9, 0.1]), L, w), 4)
    (True, 1.561)
    """
    with np.errstate(divide="ignore"):
        x = np.log(np.asarray(a, np.float64))[:, None] + np.asarray(log_density, np.float64)
    m = x.max(0)
    log_mix = m + np.log(np.exp(x - m).sum(0))
    return float(np.max(np.exp(np.asarray(log_density, np.float64) - log_mix) @ weight) - 1.0)


def solve_stacking(log_density, weight, law_mask=None, *, max_iter=MAX_ITER, tol=None, max_restarts=MAX_RESTARTS):
    """Stacking weights of one problem by L-BFGS (optax) on softmax logits: pure and jittable; vmap for many.

    It stops when the Frank-Wolfe gap ``max_k r_k - 1`` is below ``tol``: ``r_k = sum_p w_p p_k(e_p) / mix_p``
    is the gradient in ``a``, and at the optimum ``r_k <= 1`` for every law, with equality where ``a_k > 0``; the
    gap bounds how far the log score is below its maximum, so the answer is certified, not merely stalled.
    Softmax logits have one failure mode: a long line-search step drives a law's logit so low that its gradient
    vanishes, though its law deserves weight (or stalls one that deserves none just above 0). When a step makes
    no progress, or the gradient is far smaller than the gap, an away step (shrink the law with the largest
    ``a_k (1 - r_k)``, possibly to 0) and a toward step (grow the law with the largest ``r_k``), each with exact
    line search (the score is concave along them), move the mixture, and L-BFGS restarts from there.

    Parameters
    ----------
    log_density
        ``(K, P)`` log predictive densities of each law at each held-out pair (finite; see
        :func:`relative_log_density`). Its dtype is the computation's.
    weight
        ``(P,)`` pair weights summing to 1 (padding pairs weigh 0).
    law_mask
        ``(K,)`` booleans, False for padding laws (weight exactly 0); default all True.
    max_iter, tol, max_restarts
        Iteration limit, the gap that stops it (default :data:`TOL` for the dtype) and the restart limit.

    Returns
    -------
    (weights, n_iter, gap)
        ``(K,)`` weights on the simplex, L-BFGS iterations, and the Frank-Wolfe gap reached (``<= tol``: converged).

    Examples
    --------
    >>> L = jnp.log(jnp.array([[0.9, 0.1, 0.5], [0.1, 0.9, 0.5]]))
    >>> a, n_iter, gap = jax.jit(solve_stacking)(L, jnp.full(3, 1 / 3))
    >>> np.round(np.asarray(a), 6).tolist(), bool(gap <= TOL[str(a.dtype)])
    ([0.5, 0.5], True)
    """
    L = jnp.asarray(log_density)
    w = jnp.asarray(weight, L.dtype)
    mask = jnp.ones(L.shape[0], bool) if law_mask is None else jnp.asarray(law_mask, bool)
    if tol is None:
        tol = TOL[jnp.dtype(L.dtype).name]
    # A padding law's logit sits at FLOOR and gets no gradient, so its weight is exactly 0 throughout.
    floor = jnp.asarray(FLOOR, L.dtype)

    def log_weights(theta):
        return jax.nn.log_softmax(jnp.where(mask, theta, floor))

    def loss(theta):
        return -jnp.sum(w * jax.nn.logsumexp(log_weights(theta)[:, None] + L, axis=0))

    def gap(theta):
        log_mix = jax.nn.logsumexp(log_weights(theta)[:, None] + L, axis=0)
        log_r = jax.nn.logsumexp(L - log_mix, b=w, axis=1)  # in logs: r_k overflows float32 when mix_p is tiny
        return jnp.expm1(jnp.max(jnp.where(mask, log_r, -jnp.inf)))

    def best_step(u, lam_max):
        # The log score along a + lam d, where mix_p changes by the factor 1 + lam u_p, is concave in lam: bisect
        # the sign of its slope on [0, lam_max], and take lam_max itself if the score still rises there.
        def slope(lam):
            return jnp.sum(w * u / (1 + lam * u))

        def bisect(_, bounds):
            lo, hi = bounds
            mid = (lo + hi) / 2
            rising = slope(mid) > 0
            return jnp.where(rising, mid, lo), jnp.where(rising, hi, mid)

        lo, _ = jax.lax.fori_loop(0, 40, bisect, (jnp.zeros((), L.dtype), lam_max))
        return jnp.where(slope(lam_max) > 0, lam_max, lo)

    def away_and_toward(theta):
        # Away step (Guelat & Marcotte 1986): shrink towards 0 the law that most deserves it (largest a_k (1 - r_k)),
        # possibly all the way; then a toward step: grow the law with the largest r_k. Both with exact line search.
        a = jnp.exp(log_weights(theta))
        index = jnp.arange(L.shape[0])
        q = jnp.exp(jnp.minimum(L - jax.nn.logsumexp(jnp.log(a)[:, None] + L, axis=0), 60.0))  # p_k / mix
        s = jnp.argmax(jnp.where(mask, a * (1 - q @ w), -jnp.inf))
        lam = best_step(1 - q[s], a[s] / jnp.maximum(1 - a[s], jnp.finfo(L.dtype).eps))
        a = jnp.where(index == s, jnp.maximum(a[s] - lam * (1 - a[s]), 0.0), a * (1 + lam))
        q = jnp.exp(jnp.minimum(L - jax.nn.logsumexp(jnp.log(a)[:, None] + L, axis=0), 60.0))
        j = jnp.argmax(jnp.where(mask, q @ w, -jnp.inf))
        lam = best_step(q[j] - 1, jnp.ones((), L.dtype))
        a = (1 - lam) * a + lam * (index == j)
        return jnp.log(jnp.maximum(a, jnp.finfo(L.dtype).tiny ** 0.25))

    opt = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(loss)

    def step(carry):
        theta, state, n_iter, n_restarts = carry
        value, grad = value_and_grad(theta, state=state)
        updates, new_state = opt.update(grad, state, theta, value=value, grad=grad, value_fn=loss)
        new_theta = optax.apply_updates(theta, updates)
        # Stuck: no decrease, or a gradient far smaller than the gap says it should be (a saturated logit).
        g = gap(new_theta)
        stuck = ~(otu.tree_get(new_state, "value") < value)
        stuck |= (otu.tree_norm(otu.tree_get(new_state, "grad")) < g / 100) & (g > tol)

        def restart(_):
            theta_r = away_and_toward(jnp.where(loss(new_theta) <= value, new_theta, theta))
            return theta_r, opt.init(theta_r), n_restarts + 1

        new_theta, new_state, n_restarts = jax.lax.cond(stuck, restart, lambda _: (new_theta, new_state, n_restarts),
                                                        None)
        return new_theta, new_state, n_iter + 1, n_restarts

    def running(carry):
        theta, _, n_iter, n_restarts = carry
        return (gap(theta) > tol) & (n_iter < max_iter) & (n_restarts <= max_restarts)

    theta0 = jnp.zeros(L.shape[0], L.dtype)
    theta, _, n_iter, _ = jax.lax.while_loop(running, step, (theta0, opt.init(theta0), jnp.asarray(0), jnp.asarray(0)))
    return jnp.exp(log_weights(theta)), n_iter, gap(theta)


_solve = jax.jit(solve_stacking)


def padded_shape(n_laws: int, n_pairs: int) -> tuple[int, int]:
    """The shape :func:`lbfgs_weights` pads a problem to: powers of two, at least 4 laws and 128 pairs.

    >>> padded_shape(3, 130)
    (4, 256)
    """
    return max(4, 1 << (int(n_laws) - 1).bit_length()), max(128, 1 << (int(n_pairs) - 1).bit_length())


def lbfgs_weights(log_density: np.ndarray, weight: np.ndarray, *, dtype=None, max_iter: int = MAX_ITER,
                  tol: float | None = None) -> tuple[np.ndarray, int]:
    """:func:`solve_stacking` on one problem, padded to a shared shape; weights in float64 and iterations.

    >>> w, n_iter = lbfgs_weights(np.log([[0.9, 0.1, 0.5], [0.1, 0.9, 0.5]]), np.full(3, 1 / 3))
    >>> w.round(6).tolist()
    [0.5, 0.5]
    """
    dt = validate.dtype(dtype)
    K, P = log_density.shape
    Kp, Pp = padded_shape(K, P)
    L = np.zeros((Kp, Pp))
    L[:K, :P] = log_density
    w = np.zeros(Pp)
    w[:P] = weight
    tol = TOL[dt.name] if tol is None else validate.positive(tol, "tol")
    a, n_iter, _ = _solve(jnp.asarray(L, dt), jnp.asarray(w, dt), jnp.arange(Kp) < K, max_iter=max_iter,
                          tol=jnp.asarray(tol, dt))
    a = np.asarray(a, np.float64)[:K]
    return a / a.sum(), int(n_iter)


def em_weights(log_density: np.ndarray, weight: np.ndarray, *, n_iter: int = 2000,
               tol: float = 1e-10) -> tuple[np.ndarray, int]:
    """The previous solver, kept as the reference: EM on the mixture weights, in NumPy float64.

    Monotone; stops when an iteration raises the objective by less than ``tol``, which on a flat objective
    is before the optimum. Returns the weights and the iterations run.

    >>> w, n_iter = em_weights(np.log([[0.9, 0.1, 0.5], [0.1, 0.9, 0.5]]), np.full(3, 1 / 3))
    >>> w.round(6).tolist()
    [0.5, 0.5]
    """
    D = np.exp(relative_log_density(log_density))  # scaled per pair: the weights do not depend on the scale
    a = np.full(D.shape[0], 1.0 / D.shape[0])
    prev = -np.inf
    it = 0
    for it in range(1, n_iter + 1):
        mix = a @ D
        obj = float(np.sum(weight * np.log(np.maximum(mix, 1e-300))))
        a = a * ((D / np.maximum(mix, 1e-300)) @ weight)
        a /= a.sum()
        if obj - prev < tol:
            break
        prev = obj
    return a, it


#: Solvers of one problem: ``(log_density, weight, dtype) -> (weights, n_iter)``.
SOLVERS = {"lbfgs": lambda L, w, dtype: lbfgs_weights(L, w, dtype=dtype),
           "em": lambda L, w, dtype: em_weights(L, w)}


def stacking_weights(calibrations: Mapping[str, Calibration], *, method: str = "lbfgs",
                     dtype=None) -> tuple[dict[str, float], dict[str, object]]:
    """Stacking weights of the laws: the mixture of their leave-future-out forecasts with the best log score.

    Parameters
    ----------
    calibrations
        Law name -> its :class:`~jaxscale.forecast.calibration.Calibration` on the shared folds (see
        :func:`stacking_problem` for how pairs are matched).
    method
        ``"lbfgs"`` (default: optax L-BFGS, see the module docstring) or ``"em"`` (the previous EM solver,
        float64 NumPy, kept as a reference).
    dtype
        Of the L-BFGS computation: ``"float32"``, ``"float64"`` or None (float64 when x64 is on).

    Returns
    -------
    (weights, info)
        Law name -> weight (they sum to 1); ``info`` holds ``n_pairs``, ``method``, ``n_iter``, the log score
        ``objective`` and the Frank-Wolfe ``gap`` (its distance to the optimum is at most this), in float64.

    Examples
    --------
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
    method = validate.choice(method, "method", tuple(SOLVERS))
    names, L, weight = stacking_problem(calibrations)
    if len(names) == 1:
        a, n_iter = np.ones(1), 0
    else:
        a, n_iter = SOLVERS[method](L, weight, dtype)
    info = {"n_pairs": int(weight.size), "method": method, "n_iter": n_iter,
            "objective": stacking_objective(a, L, weight), "gap": stacking_gap(a, L, weight)}
    return dict(zip(names, a.tolist())), info


__all__ = ["FLOOR", "MAX_ITER", "MAX_RESTARTS", "SOLVERS", "TOL", "em_weights", "lbfgs_weights", "padded_shape",
           "relative_log_density", "solve_stacking", "stacking_gap", "stacking_objective", "stacking_problem",
           "stacking_weights"]
