"""Over-training (Gadre et al. 2024): train at a chosen token multiplier ``M = D/N``, and forecast top-1 error.

Gadre et al. fit the loss of models trained at several token multipliers ``M`` (20 is compute-optimal-ish, 640
is 32x over-trained) with the ``overtraining`` law, ``L(C, M) = E + (a M^eta + b M^-eta) C^-eta`` (covariates
``N`` and ``D``), and the average top-1 error of the same models against their loss with ``loss_to_error``,
``Err(L) = eps - k exp(-gamma L)`` (covariate ``x``, the loss). This module adds what the rest of jaxscale does
not already do for them:

* :func:`fixed_multiplier`: for budget(s) ``C`` and multiplier(s) ``M``, the run ``N = sqrt(C / (k M))``,
  ``D = M N`` and its predicted loss, with the compute-optimal loss at the same budget and the penalty of
  over-training, over a point fit, a bootstrap or a posterior (draws give intervals, as every allocation).
  The compute-optimal run itself is :func:`jaxscale.allocate.compute_optimal`, which solves any law of ``N``
  and ``D`` numerically; for ``overtraining`` its multiplier is ``M* = (b/a)^(1/(2 eta))`` at every budget.
* :func:`two_stage_error`: the two-stage forecast ``(N, D) -> loss -> error`` through
  :func:`jaxscale.downstream.two_stage` (both stages' draws crossed), given at ``(N, D)`` or at ``(C, M)``,
  with the table's columns named for an error.

Fitting, bootstraps, posteriors, forecasts and the CLI need nothing here: ``jaxscale fit runs.csv --law
overtraining`` and ``jaxscale.fit("loss_to_error", downstream.accuracy_data(err, loss=L, name="error"))`` work
as for any law.

Examples
--------
>>> import jaxscale
>>> from jaxscale import overtraining
>>> p = dict(E=1.84, a=212.0, b=366.0, eta=0.136)   # ~ Gadre et al.'s RedPajama fit, C4 eval loss
>>> t = overtraining.fixed_multiplier(p, C=1e21, M=[20.0, 640.0]).table
>>> [round(float(x), 4) for x in t["L"]], round(float(t["loss_penalty"][1]), 4)
([2.6232, 2.7629], 0.0561)
"""

from __future__ import annotations

import dataclasses
import warnings

import jax.numpy as jnp
import numpy as np

from jaxscale import allocate, downstream, validate
from jaxscale.allocate import Allocation, AllocationError
from jaxscale.errors import ArgumentError

_ERROR_COLUMNS = {"accuracy": "error", "accuracy_median": "error_median", "accuracy_lo": "error_lo",
                  "accuracy_hi": "error_hi"}


def _rows(C, M, k: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Budgets and multipliers broadcast together, with ``log N = (log C - log k - log M) / 2`` and ``log D``."""
    C = validate.budgets(C, "C")
    M = validate.positives(M, "M")
    if M.ndim > 1:
        raise ArgumentError(f"M must be a number or a 1-D list of token multipliers; got shape {M.shape}.")
    try:
        C, M = np.broadcast_arrays(C, np.atleast_1d(M))
    except ValueError:
        raise ArgumentError(f"C and M must have the same length (or one of them a single value); C has {C.size} "
                            f"values and M {np.size(M)}.") from None
    log_n = 0.5 * (np.log(C) - np.log(k) - np.log(M))
    return C.astype(float), M.astype(float), log_n, log_n + np.log(M)


def fixed_multiplier(fit, C, M, *, law=None, flops_per_token: float = 6.0, level: float = 0.9) -> Allocation:
    """The run at budget(s) ``C`` with ``M`` tokens per parameter, its loss, and what over-training costs.

    ``N = sqrt(C / (k M))``, ``D = M N`` (``k = flops_per_token``: ``C = k N D``). Rows broadcast over ``C``
    and ``M``.

    Parameters
    ----------
    fit
        A FitResult, BootstrapResult, posterior (:func:`jaxscale.bayes.sample`), a dict of natural parameters
        (with ``law``; ``overtraining`` by default) or a fit file, of a law of exactly ``N`` and ``D``
        (``overtraining``, ``chinchilla``, ...).
    C, M
        Budget(s) in FLOPs and token multiplier(s) ``D/N``, finite and > 0.
    law
        The law of a dict of parameters; checked against the fit's otherwise.
    flops_per_token, level
        ``k`` in ``C = k N D`` (6), and the probability of the intervals over draws.

    Returns
    -------
    Allocation
        ``table`` columns ``compute, M, N, D, L`` (the loss at that run), ``L_opt`` (the compute-optimal loss
        at the same budget, :func:`jaxscale.allocate.compute_optimal`) and ``loss_penalty = L / L_opt - 1``;
        with draws, ``_lo``/``_hi`` for ``L, L_opt, loss_penalty`` and ``n_failed`` (``N`` and ``D`` are fixed
        by ``C`` and ``M``, so they have no interval).

    Examples
    --------
    >>> from jaxscale import overtraining
    >>> t = overtraining.fixed_multiplier(dict(E=1.84, a=212.0, b=366.0, eta=0.136), C=6e20, M=20.0).table
    >>> round(float(t["N"][0]) / 1e9, 3), round(float(t["D"][0]) / 1e9, 2)
    (2.236, 44.72)
    """
    k = validate.positive(flops_per_token, "flops_per_token")
    level = validate.level(level)
    C, M, log_n, log_d = _rows(C, M, k)
    if law is None and isinstance(fit, dict):
        law = "overtraining"
    src = allocate.read_fit(fit, law)
    if tuple(sorted(src.law.covariates)) != ("D", "N"):
        raise AllocationError(f"fixed_multiplier needs a law of exactly the covariates ['N', 'D']; law "
                              f"{src.law.name!r} has {list(src.law.covariates)}.")
    order = [("N", "D").index(c) for c in src.law.covariates]

    def loss_at(theta, ln, ld):
        logs = (ln, ld)
        return src.law.log_predict(theta, jnp.stack([logs[i] for i in order]))

    pt, dr = allocate.batched(loss_at, *allocate.thetas(src), jnp.asarray(log_n), jnp.asarray(log_d))
    with warnings.catch_warnings():
        # Draws with no interior optimum are counted once, by summarise below.
        warnings.simplefilter("ignore", RuntimeWarning)
        opt = allocate.compute_optimal(src.law, src, C, k, level=level)
    point_opt = opt.table["L_opt"].to_numpy()
    point = {"N": np.exp(log_n), "D": np.exp(log_d), "L": np.exp(pt), "L_opt": point_opt,
             "loss_penalty": np.exp(pt) / point_opt - 1.0}
    draws = None
    if dr is not None:
        L, L_opt = np.exp(dr), opt.draws["L_opt"]
        draws = {"L": L, "L_opt": L_opt, "loss_penalty": L / L_opt - 1.0}
    return allocate.summarise("fixed_multiplier", src, {"compute": C, "M": M}, point, draws, level,
                              {"flops_per_token": float(k)})


def two_stage_error(loss_fit, error_fit, *, N=None, D=None, C=None, M=None, flops_per_token: float = 6.0,
                    **kwargs) -> downstream.TwoStage:
    """Top-1 error at new runs through the loss: :func:`jaxscale.downstream.two_stage` for an error law.

    Stage 1 (``loss_fit``) is a law in ``N`` and ``D`` (``overtraining``); stage 2 (``error_fit``) a law of
    the loss as covariate ``x`` (``loss_to_error``, fitted on ``downstream.accuracy_data(err, loss=L,
    name="error")``). Each may be a point fit, a bootstrap or a posterior; every stage-1 draw is crossed with
    every stage-2 draw, so the interval is that of the expected error at the run from both stages' parameter
    uncertainty (``new_model=True`` with ``data=`` adds stage 2's scatter); see
    :func:`jaxscale.downstream.two_stage` for when that interval is and is not right.

    Give the runs as ``N`` and ``D``, or as a budget ``C`` and token multiplier ``M`` (``N = sqrt(C / (k M))``,
    ``D = M N``, ``k = flops_per_token``), not both. Other keyword arguments (``level``, ``max_draws``,
    ``new_model``, ``data``, ``key``) go to :func:`~jaxscale.downstream.two_stage`.

    Returns
    -------
    TwoStage
        As :func:`~jaxscale.downstream.two_stage`, with the table's ``accuracy``, ``accuracy_median``,
        ``accuracy_lo`` and ``accuracy_hi`` named ``error``, ``error_median``, ``error_lo``, ``error_hi``
        (``width*`` and ``var_stage*`` are the error's). ``accuracy_draws()`` returns the error draws.

    Examples
    --------
    >>> from jaxscale import downstream, overtraining
    >>> loss = downstream.param_source(dict(E=1.84, a=212.0, b=366.0, eta=0.136), law="overtraining")
    >>> err = downstream.param_source(dict(eps=0.857, k=2.21, gamma=0.716), law="loss_to_error")
    >>> t = overtraining.two_stage_error(loss, err, C=[1e21, 1e22], M=640.0).table
    >>> [round(float(x), 4) for x in t["error"]]
    [0.5513, 0.4919]
    """
    k = validate.positive(flops_per_token, "flops_per_token")
    by_nd = N is not None or D is not None
    by_cm = C is not None or M is not None
    if by_nd == by_cm:
        raise ArgumentError("two_stage_error: give the runs as N= and D=, or as C= and M=; "
                            f"got {'both' if by_nd else 'neither'}.")
    if by_cm:
        if C is None or M is None:
            raise ArgumentError("two_stage_error: C= and M= go together (a budget and a token multiplier).")
        _, _, log_n, log_d = _rows(C, M, k)
        N, D = np.exp(log_n), np.exp(log_d)
    elif N is None or D is None:
        raise ArgumentError("two_stage_error: N= and D= go together.")
    res = downstream.two_stage(loss_fit, error_fit, N=N, D=D, flops_per_token=k, **kwargs)
    return dataclasses.replace(res, table=res.table.rename(columns=_ERROR_COLUMNS))


__all__ = ["fixed_multiplier", "two_stage_error"]
