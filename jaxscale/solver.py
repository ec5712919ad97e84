"""Batched Levenberg-Marquardt over many starts, as one compiled computation.

Design (measured on Epoch's Chinchilla protocol, see ``benchmarks/``):

* **Batch-major, blocked.** Starts are processed in blocks of ``block`` rows (64;
  64 rows and 8 iterations per visit measured ~10% faster than 128 and 4) so
  the per-point work arrays ``(block, n_points, P)`` stay in cache.
* **One model evaluation per iteration.** Each iteration evaluates the
  residuals, Jacobian, objective, gradient and Gauss-Newton/IRLS Hessian at the
  trial point; an accepted trial is the next iterate, so nothing is recomputed.
  The Jacobian comes from the law's fused ``log_predict_jac`` when it has one
  (``P`` planes of ``(block, points)``; ~2x faster on CPU), else from
  ``jax.value_and_grad`` of ``log_predict`` vmapped over points and starts.
* **Mixed precision** (``SolverConfig.approach_dtype``): every start solved in
  float32 to loose tolerances, then polished in float64, inside one compiled
  program per chunk.
* **Converged starts stop costing.** Every ``inner`` iterations the batch is
  re-sorted so running starts are contiguous, and only blocks that still hold a
  running start are visited. A fixed-shape ``lax.while_loop`` does all of this
  inside ``jit``: no re-tracing, no host round-trips.
* **Failures are data.** Every start ends with a :class:`Status` code (each
  with a message in :data:`MESSAGES`, after optimistix's ``RESULTS``). A start
  whose objective is not finite is marked ``diverged`` and never moves; a
  trial step that is not finite is rejected (the damping grows), so one bad
  start never poisons the batch; a start that ends with non-finite
  parameters, in fitting coordinates or on the natural scale (``exp(log A)``
  overflowing), is ``nonfinite``, never ``converged``.
* **Memory bound.** Starts are solved in chunks of ``chunk_size`` (one compiled
  shape), so millions of starts run in bounded memory.
* **Replicates.** :func:`solve_chunks` solves ``n`` data sets (bootstrap
  resamples as per-point weights, or new targets) from every start each: start
  ``s`` solves replicate ``s // n_starts`` from ``starts[s % n_starts]``, and a
  chunk carries only the rows of the replicates it touches. A plain fit is one
  replicate.

Huber objectives use Gauss-Newton Hessians ``J^T diag(w) J`` whose weights blend
exact Huber curvature and IRLS (``SolverConfig.eta``), with Marquardt's diagonal
damping.
"""

from __future__ import annotations

import enum
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxscale.laws import Law
from jaxscale.objectives import Objective, value_and_weights


class Status(enum.IntEnum):
    """How a start ended (the solver's result codes; :data:`MESSAGES` says what each means and what to do).

    >>> Status.MAX_ITER.label, int(Status.MAX_ITER), Status(3).label
    ('max_iter', 1, 'nonfinite')
    >>> Status.MAX_ITER.message
    'stopped at max_iter before reaching ftol/xtol: raise max_iter or loosen ftol'
    """

    CONVERGED = 0
    MAX_ITER = 1
    DIVERGED = 2
    NONFINITE = 3
    SKIPPED = 4

    @property
    def label(self) -> str:
        """The lower-case name written in start tables and JSON (``"max_iter"``)."""
        return self.name.lower()

    @property
    def message(self) -> str:
        """What the code means and what to do about it."""
        return MESSAGES[self]


#: What each :class:`Status` means, and the remedy where there is one.
MESSAGES = {
    Status.CONVERGED: "converged: the step and the objective's decrease fell below xtol and ftol",
    Status.MAX_ITER: "stopped at max_iter before reaching ftol/xtol: raise max_iter or loosen ftol",
    Status.DIVERGED: "the objective is not finite at the start (or everywhere it tried): check the data and the starts",
    Status.NONFINITE: "the parameters ran off to non-finite values (e.g. exp(log A) overflowed): give starts nearer "
                      "the data or fix a parameter",
    Status.SKIPPED: "not solved: the resample's points cannot identify the law",
}
#: ``{code: label}`` for every :class:`Status` (``{0: "converged", ...}``).
STATUS_NAMES = {s: s.label for s in Status}
#: Statuses whose optimum is kept (a best fit is chosen among them).
OK_STATUSES = (Status.CONVERGED, Status.MAX_ITER)
# Internal codes of the compiled loop (never reported): a start still iterating, and a padding row.
_RUNNING, _PAD = -1, -2
_LAM_MAX = 1e12
_ROWS_BUDGET = 256 * 2**20


class SolverConfig(NamedTuple):
    """Settings of the batched solver (hashable: each distinct config compiles once).

    ``ftol``: an accepted step whose objective decrease is below
    ``ftol * |f|`` and whose largest coordinate change is below
    ``xtol * (1 + |theta|)`` ends the start as converged. A start whose
    damping reaches 1e12 without a decrease (no descent step exists at working
    precision) is converged too. ``eta`` blends IRLS and exact Huber curvature
    (see :func:`jaxscale.objectives.value_and_weights`); ``None`` picks the
    per-objective default in ``DEFAULT_ETA``.

    ``approach_dtype="float32"`` (mixed precision) first solves every start in
    float32 to loose tolerances (``APPROACH_FTOL``, ``APPROACH_XTOL``), then
    polishes each from where it stopped in the working dtype (float64) to
    ``ftol``/``xtol``: the reported optimum, objective and status are the
    float64 ones. ``max_iter`` caps both phases together. It pays where the law
    has a fused ``log_predict_jac`` (float32 evaluation ~4-6x cheaper on CPU);
    a start that is not finite in float32 is polished from its start.
    """

    objective: Objective = Objective()
    max_iter: int = 400
    ftol: float = 1e-10
    xtol: float = 1e-7
    block: int = 64
    inner: int = 8
    lam0: float = 1e-3
    lam_down: float = 0.3
    lam_up: float = 10.0
    eta: float | None = None
    approach_dtype: str | None = None


#: Tolerances of the float32 approach phase of a mixed-precision solve (measured on
#: Epoch's protocol: 266k float32 + 55k float64 iterations, against 301k float64).
APPROACH_FTOL, APPROACH_XTOL = 1e-6, 1e-4


class SolveOutput(NamedTuple):
    theta: np.ndarray  # (S, P) final fitting coordinates
    objective: np.ndarray  # (S,), inf for diverged starts
    status: np.ndarray  # (S,) int, see Status
    n_iter: np.ndarray  # (S,) LM iterations taken
    log_sigma: np.ndarray  # (S,) profiled log scale (likelihood objective), else 0


class _State(NamedTuple):
    theta: jax.Array
    f: jax.Array
    g: jax.Array
    H: jax.Array
    lam: jax.Array
    status: jax.Array
    n_iter: jax.Array
    log_sigma: jax.Array
    index: jax.Array
    rep: jax.Array  # replicate (row of the per-replicate data) of each start


#: Default curvature blend per objective (measured on Epoch's 4,500-start
#: protocol: huber 0.1 took 300k iterations vs 514k for IRLS; likelihood 0.3
#: took 427k vs 601k; see benchmarks/README.md).
DEFAULT_ETA = {"huber": 0.1, "likelihood": 0.3, "squared": 1.0}


def _eta(cfg: SolverConfig) -> float:
    return DEFAULT_ETA[cfg.objective.name] if cfg.eta is None else float(cfg.eta)


def _evaluate(law: Law, obj: Objective, theta, logx, logy, weight, free, eta: float = 1.0):
    """Objective, gradient and Gauss-Newton Hessian for a block of starts.

    ``logy`` is ``(n_points,)`` or one row per start; ``weight`` is None or
    per-start point weights (bootstrap counts).
    """
    if law.log_predict_jac is not None:
        return _evaluate_planes(law, obj, theta, logx, logy, weight, free, eta)
    point = jax.value_and_grad(law.log_predict)
    lp, J = jax.vmap(jax.vmap(point, in_axes=(None, 0)), in_axes=(0, None))(theta, logx)
    r = lp - logy
    f, psi, w, log_sigma = value_and_weights(obj, r, eta, weight)
    J = J * free
    if weight is not None:  # points absent from a resample: their Jacobian rows may be NaN
        J = jnp.where((weight > 0)[..., None], J, 0.0)
    g = jnp.einsum("bn,bnp->bp", psi, J)
    H = jnp.einsum("bnp,bnq->bpq", J * w[..., None], J)
    ok = jnp.isfinite(f) & jnp.all(jnp.isfinite(g), -1) & jnp.all(jnp.isfinite(H), (-2, -1))
    return jnp.where(ok, f, jnp.inf), g, H, log_sigma


def _evaluate_planes(law: Law, obj: Objective, theta, logx, logy, weight, free, eta: float):
    """:func:`_evaluate` through the law's fused ``log_predict_jac``.

    The Jacobian stays as ``P`` separate ``(block, n_points)`` planes and the
    gradient and Hessian are unrolled sums over points: no ``(block, n, P)``
    array and no reverse pass. On CPU this is ~2x faster in float64 and ~6x
    in float32 than vmapping ``jax.value_and_grad`` per point (where float32
    gains almost nothing); see benchmarks/README.md.
    """
    P = theta.shape[-1]
    lp, J = law.log_predict_jac(tuple(theta[:, k:k + 1] for k in range(P)),
                                tuple(logx[:, k] for k in range(logx.shape[-1])))
    r = lp - logy
    f, psi, w, log_sigma = value_and_weights(obj, r, eta, weight)
    J = [J[k] * free[k] for k in range(P)]
    if weight is not None:  # points absent from a resample: their Jacobian may be NaN there
        present = weight > 0
        J = [jnp.where(present, j, 0.0) for j in J]
    g = jnp.stack([jnp.sum(psi * j, -1) for j in J], -1)
    rows = [[None] * P for _ in range(P)]
    for i in range(P):
        wj = w * J[i]
        for k in range(i, P):
            rows[i][k] = rows[k][i] = jnp.sum(wj * J[k], -1)
    H = jnp.stack([jnp.stack(row, -1) for row in rows], -2)
    ok = jnp.isfinite(f) & jnp.all(jnp.isfinite(g), -1) & jnp.all(jnp.isfinite(H), (-2, -1))
    return jnp.where(ok, f, jnp.inf), g, H, log_sigma


def _cholesky_solve(A, b):
    """Solve ``A x = b`` for a batch of small SPD matrices, unrolled over P.

    Returns ``(x, ok)``; ``ok`` is False where ``A`` is not positive definite.
    Unrolled elementwise code beats batched LAPACK calls for P <= ~12 on CPU.
    """
    P = A.shape[-1]
    L = [[None] * P for _ in range(P)]
    ok = jnp.ones(A.shape[:-2], dtype=bool)
    for j in range(P):
        s = A[..., j, j] - sum((L[j][k] ** 2 for k in range(j)), jnp.zeros_like(A[..., 0, 0]))
        ok = ok & (s > 0)
        d = jnp.sqrt(jnp.where(s > 0, s, 1.0))
        L[j][j] = d
        for i in range(j + 1, P):
            acc = sum((L[i][k] * L[j][k] for k in range(j)), jnp.zeros_like(d))
            L[i][j] = (A[..., i, j] - acc) / d
    y = []
    for i in range(P):
        acc = sum((L[i][k] * y[k] for k in range(i)), jnp.zeros_like(b[..., 0]))
        y.append((b[..., i] - acc) / L[i][i])
    x = [None] * P
    for i in reversed(range(P)):
        acc = sum((L[k][i] * x[k] for k in range(i + 1, P)), jnp.zeros_like(b[..., 0]))
        x[i] = (y[i] - acc) / L[i][i]
    return jnp.stack(x, -1), ok


def _lm_iteration(law: Law, cfg: SolverConfig, s: _State, logx, logy, weight, free) -> _State:
    running = s.status == _RUNNING
    P = s.theta.shape[-1]
    eye = jnp.eye(P, dtype=s.theta.dtype)
    diag = jnp.diagonal(s.H, axis1=-2, axis2=-1)
    # Marquardt scaling with a floor, so a parameter with (locally) no
    # curvature still gets a damped, finite step.
    floor = 1e-12 * jnp.max(diag, axis=-1, keepdims=True) + jnp.finfo(s.theta.dtype).tiny
    scale = jnp.maximum(diag, floor)
    A = s.H + (s.lam[:, None] * scale)[..., None] * eye + (1.0 - free) * eye
    step, chol_ok = (_cholesky_solve(A, -s.g) if P <= 12 else (jnp.linalg.solve(A, -s.g[..., None])[..., 0], True))
    step_ok = chol_ok & jnp.all(jnp.isfinite(step), -1)
    step = jnp.where(step_ok[:, None], step, 0.0)
    trial = s.theta + step
    f_t, g_t, H_t, ls_t = _evaluate(law, cfg.objective, trial, logx, logy, weight, free, _eta(cfg))
    accept = running & step_ok & (f_t < s.f)
    small_f = (s.f - f_t) <= cfg.ftol * jnp.abs(f_t)
    small_x = jnp.max(jnp.abs(step), -1) <= cfg.xtol * (1.0 + jnp.max(jnp.abs(s.theta), -1))
    lam = jnp.where(accept, jnp.maximum(s.lam * cfg.lam_down, 1e-12), s.lam * cfg.lam_up)
    done = (accept & small_f & small_x) | (running & ~accept & (lam >= _LAM_MAX))
    n_iter = s.n_iter + running.astype(s.n_iter.dtype)
    spent = running & ~done & (n_iter >= cfg.max_iter)
    pick = lambda new, old: jnp.where(accept.reshape(accept.shape + (1,) * (new.ndim - 1)), new, old)  # noqa: E731
    return _State(
        theta=pick(trial, s.theta),
        f=pick(f_t, s.f),
        g=pick(g_t, s.g),
        H=pick(H_t, s.H),
        lam=jnp.where(running, lam, s.lam),
        status=jnp.where(done, int(Status.CONVERGED), jnp.where(spent, int(Status.MAX_ITER), s.status)),
        n_iter=n_iter,
        log_sigma=pick(ls_t, s.log_sigma),
        index=s.index,
        rep=s.rep,
    )


@functools.lru_cache(maxsize=64)
def _compiled(law: Law, cfg: SolverConfig, block: int, weighted: bool = False):
    """The jitted solver for one chunk.

    Inputs: starts ``theta0 (S, P)``, padding mask ``pad (S,)``, the replicate
    row of each start ``rep (S,)``, shared covariates ``logx (n, K)``, and
    per-replicate targets ``logy (R, n)`` and point weights ``weight (R, n)``
    (ignored unless ``weighted``). A plain fit is one replicate.
    """

    def rows(rep, logy, weight):
        return logy[rep], (weight[rep] if weighted else None)

    def solve(theta0, pad, rep, logx, logy, weight, free, n_iter0):
        S, P = theta0.shape
        nb = S // block

        def first(args):
            t, r = args
            return _evaluate(law, cfg.objective, t, logx, *rows(r, logy, weight), free, _eta(cfg))

        f, g, H, ls = jax.lax.map(first, (theta0.reshape(nb, block, P), rep.reshape(nb, block)))
        f, g, H, ls = (a.reshape((S,) + a.shape[2:]) for a in (f, g, H, ls))
        status = jnp.where(pad, _PAD, jnp.where(~jnp.isfinite(f), int(Status.DIVERGED),
                                                jnp.where(n_iter0 >= cfg.max_iter, int(Status.MAX_ITER), _RUNNING)))
        state = _State(
            theta0, f, g, H, jnp.full((S,), cfg.lam0, theta0.dtype), status.astype(jnp.int32),
            n_iter0, ls, jnp.arange(S, dtype=jnp.int32), rep,
        )

        def visit(b, st):
            start = b * block
            sl = jax.tree.map(lambda a: jax.lax.dynamic_slice_in_dim(a, start, block), st)
            ly, wt = rows(sl.rep, logy, weight)  # gathered once per visit
            sl = jax.lax.fori_loop(0, cfg.inner, lambda _, x: _lm_iteration(law, cfg, x, logx, ly, wt, free), sl)
            return jax.tree.map(lambda a, x: jax.lax.dynamic_update_slice_in_dim(a, x, start, 0), st, sl)

        def round_(carry):
            st, it = carry
            running = st.status == _RUNNING
            order = jnp.argsort(~running, stable=True)
            st = jax.tree.map(lambda a: a[order], st)
            n_blocks = (jnp.sum(running) + block - 1) // block
            st = jax.lax.fori_loop(0, n_blocks, visit, st)
            return st, it + cfg.inner

        def more(carry):
            st, it = carry
            return jnp.any(st.status == _RUNNING) & (it < cfg.max_iter)

        state, _ = jax.lax.while_loop(more, round_, (state, jnp.zeros((), jnp.int32)))
        back = jnp.argsort(state.index)
        state = jax.tree.map(lambda a: a[back], state)
        status = jnp.where(state.status == _RUNNING, int(Status.MAX_ITER), state.status)
        return state.theta, state.f, status, state.n_iter, state.log_sigma

    if cfg.approach_dtype is None:
        return jax.jit(solve)
    low = jnp.dtype(cfg.approach_dtype)
    approach = _compiled(law, cfg._replace(approach_dtype=None, ftol=max(cfg.ftol, APPROACH_FTOL),
                                           xtol=max(cfg.xtol, APPROACH_XTOL)), block, weighted)
    polish = _compiled(law, cfg._replace(approach_dtype=None), block, weighted)

    def mixed(theta0, pad, rep, logx, logy, weight, free, n_iter0):
        cast = lambda a: a.astype(low)  # noqa: E731
        theta, _, status, n_iter, _ = approach(cast(theta0), pad, rep, cast(logx), cast(logy), cast(weight),
                                               cast(free), n_iter0)
        lost = (status == int(Status.DIVERGED)) | ~jnp.all(jnp.isfinite(theta), -1)  # e.g. beyond float32's range
        theta = jnp.where(lost[:, None], theta0, theta.astype(theta0.dtype))
        return polish(theta, pad, rep, logx, logy, weight, free, jnp.where(lost, n_iter0, n_iter))

    return jax.jit(mixed)


def chunk_for_memory(
    n_params: int, n_points: int, memory_limit: int, block: int, itemsize: int = 8, starts_per_replicate: int = 0
) -> int:
    """Largest chunk (a multiple of ``block``) whose working set fits ``memory_limit`` bytes.

    Per start: the solver state (theta, gradient, Hessian, scalars) held about
    four times (state, its sorted copy, trial values, outputs). Per block: the
    residual/Jacobian work arrays. With replicates (bootstrap), each start
    also carries ``1/starts_per_replicate`` of a replicate's targets and point
    weights. Raises if one block does not fit.
    """
    from jaxscale.errors import FitError

    per_start = 4 * (n_params * n_params + 2 * n_params + 7) * itemsize
    fixed = 4 * block * n_points * (n_params + 6) * itemsize
    if starts_per_replicate:
        per_start += 2 * n_points * itemsize / starts_per_replicate
        fixed += 4 * n_points * itemsize  # the partial replicates at both ends of a chunk
    need = fixed + block * per_start
    if memory_limit < need:
        raise FitError(
            f"memory_limit={memory_limit} bytes is too small: one block of {block} starts on {n_points} points "
            f"needs about {int(need)} bytes."
        )
    return int((memory_limit - fixed) // per_start // block * block)


def flag_nonfinite(law: Law, theta: np.ndarray, status: np.ndarray) -> np.ndarray:
    """``status`` with :attr:`Status.NONFINITE` where a kept start's parameters are not finite.

    A start counts as kept when it converged or ran out of iterations; its fitting coordinates ``theta`` (``(S, P)``)
    and its natural values (``law.to_natural``) must both be finite: ``log A = 1e3`` is a finite coordinate, but
    ``A = exp(1e3)`` is not a number any prediction or JSON can hold.

    >>> import numpy as np, jaxscale
    >>> law = jaxscale.laws.get("power", resource="N")
    >>> flag_nonfinite(law, np.array([[0.5, 5.0, 0.3], [0.5, 1e3, 0.3]]), np.array([0, 0])).tolist()
    [0, 3]
    """
    theta = np.asarray(theta, np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        natural = law.to_natural(theta)
    finite = np.all(np.isfinite(theta), -1)
    for v in natural.values():
        finite &= np.isfinite(v)
    kept = np.isin(status, OK_STATUSES)
    return np.where(kept & ~finite, int(Status.NONFINITE), status).astype(np.asarray(status).dtype)


class Replicates(NamedTuple):
    """Per-replicate data for :func:`solve_chunks`.

    ``rows(lo, hi)`` returns ``(logy, weight)`` for replicates ``lo..hi-1``:
    arrays of shape ``(hi - lo, n_points)``; ``weight`` may be None (all ones).
    ``skip(lo, hi)``, optional, returns a bool mask of replicates not to solve
    (their starts are reported with status ``skipped``).
    """

    n: int
    rows: object
    weighted: bool = False
    skip: object = None


def _layout(S: int, cfg: SolverConfig, chunk_size: int, devices):
    n_dev = len(devices) if S >= 2 * len(devices) * 8 else 1
    block = int(min(cfg.block, -(-S // (8 * n_dev)) * 8))
    unit = block * n_dev
    chunk = int(max(unit, min(-(-chunk_size // unit) * unit, -(-S // unit) * unit)))
    return n_dev, block, chunk


def solve_chunks(
    law: Law,
    starts: np.ndarray,
    logx: np.ndarray,
    free: np.ndarray,
    cfg: SolverConfig,
    replicates: Replicates,
    *,
    chunk_size: int = 65536,
    dtype=jnp.float64,
    devices=None,
    progress=None,
):
    """Solve ``replicates.n`` problems from every start each, chunk by chunk.

    Start ``s`` of the ``n * len(starts)`` runs replicate ``s // len(starts)``
    from ``starts[s % len(starts)]``: the full multi-start for every
    replicate, with nothing of size ``n * len(starts)`` held in memory. Yields
    ``(lo, hi, SolveOutput)`` for consecutive ranges of ``s``, in order.

    With several devices (all local devices by default) each chunk is split
    over them along the start axis (``jax.shard_map`` over a 1-D mesh); starts
    are dealt round-robin so every device gets a similar mix of easy and hard
    starts. Each start's arithmetic does not depend on the others, so results
    are the same with one device or many, and for any chunk size.
    """
    S0 = starts.shape[0]
    S = replicates.n * S0
    devices = tuple(jax.local_devices() if devices is None else devices)
    # A chunk also holds the targets and weights of the replicates it touches: keep those under
    # _ROWS_BUDGET bytes (with one start per replicate and many points they would dominate).
    n_points = logx.shape[0]
    chunk_size = min(chunk_size, max(1, int(_ROWS_BUDGET // (2 * 8 * n_points))) * S0)
    n_dev, block, chunk = _layout(S, cfg, chunk_size, devices)
    R_c = int(min(replicates.n, chunk // S0 + 2))  # replicate rows any chunk can touch
    fn = _compiled(law, cfg, block, replicates.weighted) if n_dev == 1 else _sharded(
        law, cfg, block, devices, replicates.weighted)
    # Round-robin deal: device d gets starts d, d + n_dev, ... of each chunk.
    deal = np.arange(chunk).reshape(-1, n_dev).T.ravel()
    undeal = np.argsort(deal)
    lx = jnp.asarray(logx, dtype)
    fr = jnp.asarray(free, dtype)
    n_iter0 = jnp.zeros(chunk, jnp.int32)
    for lo in range(0, S, chunk):
        hi = min(lo + chunk, S)
        g = np.arange(lo, lo + chunk)
        g[hi - lo:] = lo  # padding repeats the chunk's first start
        r_lo = lo // S0
        r_hi = min(r_lo + R_c, replicates.n)
        logy, weight = replicates.rows(r_lo, r_hi)
        logy = np.asarray(logy, np.float64).reshape(r_hi - r_lo, n_points)
        weight = np.ones((r_hi - r_lo, 1)) if weight is None else np.asarray(weight, np.float64)
        if r_hi - r_lo < R_c:  # fixed shapes: one compilation for every chunk
            logy = np.concatenate([logy, np.repeat(logy[:1], R_c - (r_hi - r_lo), 0)])
            weight = np.concatenate([weight, np.repeat(weight[:1], R_c - (r_hi - r_lo), 0)])
        rep = g // S0 - r_lo
        pad = np.arange(chunk) >= hi - lo
        skipped = np.zeros(chunk, bool)
        if replicates.skip is not None:
            skipped = np.asarray(replicates.skip(r_lo, r_hi), bool)[rep] & ~pad
        pad = pad | skipped
        res = fn(jnp.asarray(starts[g % S0][deal], dtype), jnp.asarray(pad[deal]), jnp.asarray(rep[deal], jnp.int32),
                 lx, jnp.asarray(logy, dtype), jnp.asarray(weight, dtype), fr, n_iter0)
        theta, f, status, n_iter, ls = (np.asarray(a)[undeal][: hi - lo] for a in res)
        theta = theta.astype(np.float64)
        status = np.where(skipped[: hi - lo], int(Status.SKIPPED), flag_nonfinite(law, theta, status))
        f = np.where(skipped[: hi - lo], np.inf, f)
        yield lo, hi, SolveOutput(theta, f.astype(np.float64), status, n_iter, ls.astype(np.float64))
        if progress is not None:
            progress(hi, S)


def solve(
    law: Law,
    starts: np.ndarray,
    logx: np.ndarray,
    logy: np.ndarray,
    free: np.ndarray,
    cfg: SolverConfig,
    *,
    chunk_size: int = 65536,
    dtype=jnp.float64,
    devices=None,
    progress=None,
    weight: np.ndarray | None = None,
) -> SolveOutput:
    """Solve every start on one data set; see :func:`solve_chunks`. Returns host (NumPy) arrays.

    ``weight`` ``(n_points,)``, optional, multiplies each point's term of the objective (a point of weight 0 does
    not count, even where the law is not finite there).
    """
    logy = np.asarray(logy, np.float64)
    if weight is None:
        reps = Replicates(1, lambda lo, hi: (logy[None], None))
    else:
        w = np.asarray(weight, np.float64)[None]
        reps = Replicates(1, lambda lo, hi: (logy[None], w), weighted=True)
    outs = [out for _, _, out in solve_chunks(law, starts, logx, free, cfg, reps, chunk_size=chunk_size,
                                              dtype=dtype, devices=devices, progress=progress)]
    return SolveOutput(*(np.concatenate(parts) for parts in zip(*outs)))


@functools.lru_cache(maxsize=16)
def _sharded(law: Law, cfg: SolverConfig, block: int, devices: tuple, weighted: bool = False):
    from jax.sharding import Mesh, PartitionSpec

    mesh = Mesh(np.array(devices), ("starts",))
    split, whole = PartitionSpec("starts"), PartitionSpec()
    body = _compiled(law, cfg, block, weighted)
    return jax.jit(jax.shard_map(body, mesh=mesh, in_specs=(split, split, split, whole, whole, whole, whole, split),
                                 out_specs=split, check_vma=False))
