"""Pictures of fits, draws and decisions (matplotlib).

Every function takes results that jaxscale has already computed and draws
them; none fits, resamples or samples anything. The only arithmetic done here is
evaluating a fitted law on a plotting grid (:func:`contours`) and reading
quantiles from draws that exist. Each function returns the ``Axes`` it drew on
(one panel) or the ``Figure`` (several panels), so you can restyle or save it.

``import jaxscale`` does not import this module (nor matplotlib); use
``from jaxscale import plot``.

>>> import matplotlib
>>> matplotlib.use("Agg")
>>> import jaxscale
>>> from jaxscale import plot
>>> data = jaxscale.demo_data()
>>> res = jaxscale.fit("chinchilla", data, starts=32, key=0)
>>> ax = plot.contours(res, data)
>>> ax.get_xlabel()
'training compute C (FLOPs)'
>>> fig = plot.residuals(res, data)
>>> [a.get_xlabel() for a in fig.axes]
['N', 'D']

Fits: :func:`contours`, :func:`residuals`. Decisions: :func:`isoflop`,
:func:`frontier`. Draws: :func:`marginals`, :func:`pairs`,
:func:`prior_posterior`. Checks: :func:`backtest`, :func:`calibration`
(reliability diagram of forecasts), :func:`sbc_ranks`.

Save with :func:`save` rather than ``fig.savefig(path)``: it checks the path
and the format before rendering, renders in memory, and writes the file
atomically (:func:`jaxscale._io.write_atomic`), so a full disk or Ctrl-C
leaves the previous figure intact instead of half a PNG.

>>> import os, tempfile
>>> with tempfile.TemporaryDirectory() as tmp:
...     path = plot.save(fig, os.path.join(tmp, "residuals.png"), dpi=50)
...     os.listdir(tmp)
['residuals.png']
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from jaxscale import validate
from jaxscale._draws import ParamSource, param_source
from jaxscale._io import write_atomic
from jaxscale.data import ScalingData
from jaxscale.errors import ArgumentError, JaxscaleError

__all__ = [
    "PlotError",
    "backtest",
    "calibration",
    "contours",
    "frontier",
    "isoflop",
    "marginals",
    "pairs",
    "prior_posterior",
    "residuals",
    "save",
    "sbc_ranks",
]

_LABELS = {"N": "parameters N", "D": "training tokens D", "C": "training compute C (FLOPs)", "U": "unique tokens U",
           "x": "resource x", "compute": "training compute C (FLOPs)"}


class PlotError(JaxscaleError):
    """A plot was given a result of the wrong kind, or one without what it draws."""


def _new_axes(ax):
    if ax is None:
        _, ax = plt.subplots(figsize=(6.0, 4.5))
    return ax


def _new_axes_row(axes, n: int, what: str, width: float = 4.2):
    if axes is None:
        fig, axes = plt.subplots(1, n, figsize=(width * n, 3.8), squeeze=False)
        return fig, list(axes[0])
    axes = list(np.ravel(axes))
    if len(axes) != n:
        raise PlotError(f"{what} draws {n} panels; got axes= with {len(axes)}.")
    return axes[0].figure, axes


def _source(fit, what: str, law=None) -> ParamSource:
    try:
        return param_source(fit, law)
    except JaxscaleError as e:
        raise PlotError(f"{what}: {e}") from None


def _data(data, what: str) -> ScalingData:
    if isinstance(data, ScalingData):
        return data
    if isinstance(data, pd.DataFrame):
        return ScalingData.from_frame(data)
    raise PlotError(f"{what} needs the data as a ScalingData (or a DataFrame); got {type(data).__name__}.")


def _type_name(obj) -> str:
    return type(obj).__name__


def save(fig, path: str | os.PathLike, **savefig_kwargs) -> str:
    """Write a figure to ``path`` atomically, in the format its suffix names (``.png``, ``.pdf``, ``.svg``, ...).

    The path and the format are checked first, the figure is rendered to memory with
    ``fig.savefig(buffer, format=...)``, and the bytes are written with
    :func:`~jaxscale._io.write_atomic`: readers never see a partial file, and a
    failed write (full disk, Ctrl-C) leaves an existing file as it was.

    Parameters
    ----------
    fig
        A matplotlib ``Figure``, or an ``Axes`` (its figure is saved), as
        every function here returns.
    path
        The file to write; its directory must exist.
    **savefig_kwargs
        Passed to :meth:`matplotlib.figure.Figure.savefig` (``dpi``,
        ``bbox_inches``, ``transparent``, ...). ``format=`` overrides the
        suffix.

    Returns
    -------
    str
        ``path``.

    Raises
    ------
    ArgumentError
        ``path`` cannot be written (see :func:`jaxscale.validate.output_path`),
        or its format is not one matplotlib writes.
    WriteError
        The write itself failed (an ``OSError`` naming the file).

    Examples
    --------
    >>> import os, tempfile
    >>> fig, ax = plt.subplots()
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     save(ax, os.path.join(tmp, "empty.svg")).endswith("empty.svg")
    True
    >>> save(fig, os.path.join(tempfile.gettempdir(), "figure.jpeg2000"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    jaxscale.errors.ArgumentError: path '...figure.jpeg2000' has format 'jpeg2000', which matplotlib cannot write; use one of [...].
    >>> plt.close(fig)
    """
    figure = getattr(fig, "figure", None) if not hasattr(fig, "savefig") else fig
    if figure is None or not hasattr(figure, "savefig"):
        raise ArgumentError(f"save writes a matplotlib Figure or Axes; got {_type_name(fig)}.")
    path = validate.output_path(path, "path")
    fmt = savefig_kwargs.pop("format", None)
    if fmt is None:
        fmt = os.path.splitext(path)[1][1:]
        if not fmt:
            raise ArgumentError(f"path {path!r} has no suffix naming a format; add one (e.g. '.png') or pass "
                                f"format=.")
    supported = figure.canvas.get_supported_filetypes()
    if not isinstance(fmt, str) or fmt.lower() not in supported:
        raise ArgumentError(f"path {path!r} has format {fmt!r}, which matplotlib cannot write; use one of "
                            f"{sorted(supported)}.")
    buf = io.BytesIO()
    figure.savefig(buf, format=fmt.lower(), **savefig_kwargs)
    write_atomic(path, buf.getbuffer())
    return path


# ---------------------------------------------------------------------------------------------------------------------
# Fits: iso-loss contours, residuals


def contours(fit, data=None, *, law=None, ax=None, levels=None, flops_per_token: float = 6.0, frontier: bool = True,
             C_range: tuple[float, float] | None = None, N_range: tuple[float, float] | None = None,
             n_grid: int = 150, cmap: str = "viridis"):
    """Iso-loss contours of a fitted law of ``N`` and ``D`` in the ``(C, N)`` plane, with the data and the frontier.

    ``D = C / (k N)`` with ``k = flops_per_token``. The fit's point estimate
    is drawn (the full-data fit of a bootstrap, the posterior median of a
    posterior); the dashed line is the compute-optimal ``N_opt(C)`` of that
    estimate (:func:`jaxscale.allocate.compute_optimal`). Points are coloured
    by their observed loss on the same scale as the contours.

    Parameters
    ----------
    fit
        A FitResult, BootstrapResult, posterior ``InferenceData``, fit file,
        :class:`~jaxscale._draws.ParamSource`, or a dict of natural parameters
        with ``law=``, of a law whose covariates are exactly ``N`` and ``D``
        (``chinchilla``, ``kaplan``, ...).
    law
        The law's name, for a dict of parameters (e.g. Hoffmann's published
        values); with a fit it only checks that the fit is of this law.
    data
        Optional :class:`~jaxscale.ScalingData` with ``N``, ``C`` and loss.
    levels
        Contour levels (losses) or their number; default 12 levels spanning
        the data's losses (or the grid's).
    C_range, N_range
        Plot limits; default the data's range widened 3x each way (C from
        1e18 to 1e25 without data).
    """
    src = _source(fit, "contours", law)
    law = src.law
    if set(law.covariates) != {"N", "D"}:
        raise PlotError(f"contours draws laws of N and D; law {law.name!r} takes {list(law.covariates)}.")
    d = None if data is None else _data(data, "contours")
    if d is not None:
        missing = [c for c in ("N", "C") if c not in d.covariates]
        if missing:
            raise PlotError(f"contours: the data lacks {missing}; it needs N and C (or N and D) per run.")
    if C_range is None:
        C_range = (1e18, 1e25) if d is None else (d.covariates["C"].min() / 3, d.covariates["C"].max() * 3)
    k = float(flops_per_token)
    lc = np.linspace(np.log10(C_range[0]), np.log10(C_range[1]), n_grid)
    if N_range is None:
        if d is not None:
            N_range = (d.covariates["N"].min() / 3, d.covariates["N"].max() * 3)
        else:  # N between 1/100 and 100x the "20 tokens per parameter" size
            N_range = (np.sqrt(C_range[0] / (k * 20)) / 100, np.sqrt(C_range[1] / (k * 20)) * 100)
    ln = np.linspace(np.log10(N_range[0]), np.log10(N_range[1]), n_grid)
    CC, NN = np.meshgrid(10.0**lc, 10.0**ln)
    L = np.asarray(law.predict(src.point, N=NN.ravel(), D=(CC / (k * NN)).ravel())).reshape(CC.shape)
    ax = _new_axes(ax)
    if levels is None or isinstance(levels, int):
        n = 12 if levels is None else int(levels)
        ref = d.y if d is not None else L[np.isfinite(L)]
        levels = np.quantile(ref, np.linspace(0.02, 0.98, n))
        levels = np.unique(np.round(levels, 3))
    vmin, vmax = float(np.min(levels)), float(np.max(levels))
    cs = ax.contour(CC, NN, L, levels=levels, cmap=cmap, vmin=vmin, vmax=vmax, linewidths=1.0)
    ax.clabel(cs, fmt="%.2f", fontsize=7)
    if d is not None:
        sc = ax.scatter(d.covariates["C"], d.covariates["N"], c=d.y, cmap=cmap, vmin=vmin, vmax=vmax, s=14,
                        edgecolors="k", linewidths=0.3, label="runs", zorder=3)
        ax.figure.colorbar(sc, ax=ax, label="loss")
    if frontier:
        from jaxscale.allocate import compute_optimal

        Cf = 10.0 ** lc
        point_only = ParamSource(law, src.point, None, "params")
        t = compute_optimal(law.name if not law.options else law, point_only, Cf, flops_per_token=k).table
        ax.plot(t["compute"], t["N_opt"], "--", color="crimson", lw=1.5, label="compute-optimal N_opt(C)", zorder=4)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(*C_range)
    ax.set_ylim(*N_range)
    ax.set_xlabel(_LABELS["C"])
    ax.set_ylabel(_LABELS["N"])
    ax.set_title(f"{law.name}: iso-loss contours ({src.kind})", fontsize=10)
    if d is not None or frontier:
        ax.legend(loc="upper left", fontsize=8)
    return ax


def residuals(fit, data, *, law=None, axes=None, title: str | None = None):
    """Log residuals ``log(observed / predicted)`` against each covariate of the law (one panel each).

    Uses the fit's point estimate (``fit`` as for :func:`contours`, a dict of
    parameters with ``law=``). ``title`` replaces the default, which names
    the law, the kind of estimate and the RMS residual. Structure in any panel (a trend, a bend at
    large ``N``) says the law's form misses something that the summed loss
    hides.
    """
    src = _source(fit, "residuals", law)
    d = _data(data, "residuals")
    law = src.law
    missing = [c for c in law.covariates if c not in d.covariates]
    if missing:
        raise PlotError(f"residuals: the data lacks covariate(s) {missing} of law {law.name!r}.")
    cov = {c: d.covariates[c] for c in law.covariates}
    pred = np.asarray(law.predict(src.point, **cov), float)
    r = np.log(d.y) - np.log(pred)
    fig, axes = _new_axes_row(axes, len(law.covariates), "residuals")
    lim = 1.1 * float(np.max(np.abs(r))) if np.all(np.isfinite(r)) and len(r) else 1.0
    for ax, c in zip(axes, law.covariates, strict=True):
        ax.axhline(0.0, color="0.4", lw=0.8)
        ax.scatter(cov[c], r, s=12, alpha=0.8)
        ax.set_xscale("log")
        ax.set_ylim(-lim, lim)
        ax.set_xlabel(c)
    axes[0].set_ylabel("log(observed / predicted)")
    if title is None:
        title = f"{law.name} residuals ({src.kind}; RMS {np.sqrt(np.mean(r ** 2)):.3g})"
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------------------------------
# Decisions: IsoFLOP curves, frontier bands


def isoflop(result, data, *, ax=None, cmap: str = "plasma"):
    """Chinchilla Approach 2: each budget's points, its fitted parabola in ``ln N`` and the parabola's minimum.

    ``result`` is an :class:`~jaxscale.isoflop.IsoFlopResult` and ``data``
    the data it was fitted to (checked by fingerprint). Filled stars mark the
    minima used in the power-law fit; open circles the budgets left out
    (non-convex parabola, minimum outside the sizes trained: see
    ``result.budgets["reason"]``); grey crosses the points in no budget.
    """
    from jaxscale.isoflop import IsoFlopResult

    if not isinstance(result, IsoFlopResult):
        raise PlotError(f"isoflop plots an IsoFlopResult from jaxscale.isoflop.isoflop(); got {_type_name(result)}.")
    d = _data(data, "isoflop")
    if d.fingerprint() != result.fingerprint or len(d) != len(result.points):
        raise PlotError("isoflop: this data is not the data the IsoFlopResult was fitted to (different fingerprint); "
                        "pass the same ScalingData given to isoflop().")
    ax = _new_axes(ax)
    b = result.budgets
    lab = result.points["budget_index"].to_numpy()
    N, y = d.covariates["N"], d.y
    colors = plt.get_cmap(cmap)(np.linspace(0.05, 0.85, max(len(b), 1)))
    for i, row in enumerate(b.itertuples(index=False)):
        sel = lab == i
        ax.scatter(N[sel], y[sel], s=12, color=colors[i], alpha=0.8, label=f"C = {row.budget:.2g}")
        if np.isfinite(row.c2) and row.c2 > 0:
            x = np.linspace(np.log(row.N_min), np.log(row.N_max), 100)
            ax.plot(np.exp(x), row.c0 + row.c1 * x + row.c2 * x**2, color=colors[i], lw=1.0)
        if np.isfinite(row.N_opt) and np.isfinite(row.L_min):
            if row.used:
                ax.scatter([row.N_opt], [row.L_min], marker="*", s=110, color=colors[i], edgecolors="k",
                           linewidths=0.6, zorder=4)
            else:
                ax.scatter([row.N_opt], [row.L_min], marker="o", s=50, facecolors="none", edgecolors=colors[i],
                           zorder=4)
    if (lab < 0).any():
        ax.scatter(N[lab < 0], y[lab < 0], marker="x", s=14, color="0.5", label="ungrouped")
    ax.set_xscale("log")
    ax.set_xlabel(_LABELS["N"])
    ax.set_ylabel("loss")
    ax.set_title(f"IsoFLOP profiles: a = {result.a:.3f}, {int(b['used'].sum())}/{len(b)} budgets used", fontsize=10)
    if len(b) <= 12:
        ax.legend(fontsize=7, ncol=2)
    return ax


def frontier(alloc, *, axes=None, band: bool = True, quantities: Sequence[str] = ("N_opt", "D_opt",
                                                                                   "tokens_per_param")):
    """Compute-optimal ``N_opt(C)``, ``D_opt(C)`` and tokens per parameter, with bands from draws.

    ``alloc`` is an :class:`~jaxscale.allocate.Allocation` from
    :func:`~jaxscale.allocate.compute_optimal` (or
    :func:`~jaxscale.allocate.data_constrained_optimal`) computed from a
    bootstrap or a posterior over a range of budgets; the band is its central
    ``alloc.level`` interval over the draws. A point fit has no draws: pass
    ``band=False`` to draw the lines alone. The tokens-per-parameter panel
    shows Hoffmann et al.'s 20 for reference.
    """
    from jaxscale.allocate import Allocation

    if not isinstance(alloc, Allocation):
        raise PlotError(f"frontier plots an Allocation from jaxscale.allocate.compute_optimal(); got "
                        f"{_type_name(alloc)}.")
    t = alloc.table
    if "compute" not in t.columns:
        raise PlotError(f"frontier draws quantities against compute; this Allocation ({alloc.kind}) is indexed by "
                        f"{list(t.columns[:1])}, not by compute budgets.")
    missing = [q for q in quantities if q not in t.columns]
    if missing:
        raise PlotError(f"frontier: this Allocation ({alloc.kind}) has no {missing}; it has {list(t.columns)}.")
    if band and alloc.draws is None:
        raise PlotError(f"frontier: this Allocation comes from a {alloc.source} and has no draws for a band; "
                        f"compute it from a bootstrap or posterior (compute_optimal(law, boot, C)) "
                        f"or pass band=False.")
    fig, axes = _new_axes_row(axes, len(quantities), "frontier")
    order = np.argsort(t["compute"].to_numpy())
    C = t["compute"].to_numpy()[order]
    for ax, q in zip(axes, quantities, strict=True):
        ax.plot(C, t[q].to_numpy()[order], color="C0", lw=1.6, label=f"estimate ({alloc.source})")
        if band:
            ax.fill_between(C, t[f"{q}_lo"].to_numpy()[order], t[f"{q}_hi"].to_numpy()[order], color="C0", alpha=0.25,
                            lw=0, label=f"{100 * alloc.level:g}% interval")
        if q == "tokens_per_param":
            ax.axhline(20.0, color="0.4", ls=":", lw=1.0, label="20 tokens/param")
        else:
            ax.set_yscale("log")
        ax.set_xscale("log")
        ax.set_xlabel(_LABELS["C"])
        ax.set_ylabel(q)
    axes[0].legend(fontsize=8)
    if "tokens_per_param" in quantities:
        axes[list(quantities).index("tokens_per_param")].legend(fontsize=8)
    fig.suptitle(f"{alloc.law.name}: {alloc.kind.replace('_', '-')} allocation", fontsize=10)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------------------------------
# Draws: marginals, pair plot, prior vs posterior


def _law_of(idata, what: str):
    from jaxscale.bayes._infer import law_of

    try:
        return law_of(idata)
    except JaxscaleError as e:
        raise PlotError(f"{what}: {e}") from None


def _idata(source, what: str):
    """ArviZ InferenceData for draws (a posterior as it is; bootstrap draws as one chain), plus the law."""
    import arviz as az

    if hasattr(source, "posterior") and hasattr(source, "groups"):
        return source, _law_of(source, what)
    src = _source(source, what)
    if src.draws is None:
        raise PlotError(f"{what} needs draws: a BootstrapResult or a posterior from jaxscale.bayes.sample(); this "
                        f"{src.kind} has only a point estimate.")
    post = {k: src.draws[k].to_numpy(float)[None] for k in src.law.param_names}
    return az.from_dict(posterior=post), src.law


def _var_names(law, var_names, idata, what: str) -> list[str]:
    names = list(law.param_names) if var_names is None else list(var_names)
    have = set(idata.posterior.data_vars)
    missing = [n for n in names if n not in have]
    if missing:
        raise PlotError(f"{what}: no draws of {missing}; these draws have {sorted(have)}.")
    return names


def marginals(source, *, var_names=None, hdi_prob: float = 0.9):
    """Marginal densities of the parameters from bootstrap or posterior draws (``arviz.plot_posterior``).

    Bootstrap replicates are shown as one chain. Each panel reports the mean
    and the ``hdi_prob`` highest-density interval.
    """
    import arviz as az

    idata, law = _idata(source, "marginals")
    names = _var_names(law, var_names, idata, "marginals")
    axes = az.plot_posterior(idata, var_names=names, hdi_prob=hdi_prob, textsize=9)
    axes = np.atleast_1d(axes)
    fig = axes.ravel()[0].figure
    fig.suptitle(f"{law.name}: marginals", fontsize=10)
    return fig


def pairs(source, *, var_names=None, kind: str = "scatter"):
    """Pair plot of the parameters' draws (``arviz.plot_pair``): how the exponents and coefficients trade off."""
    import arviz as az

    idata, law = _idata(source, "pairs")
    names = _var_names(law, var_names, idata, "pairs")
    if len(names) < 2:
        raise PlotError(f"pairs needs at least two parameters; got {names}.")
    side = min(2.2 * len(names), 11.0)
    axes = az.plot_pair(idata, var_names=names, kind=kind, marginals=True, textsize=9, figsize=(side, side),
                        scatter_kwargs={"alpha": 0.4, "s": 6})
    fig = np.atleast_1d(axes).ravel()[0].figure
    return fig


def prior_posterior(idata, *, var_names=None, bins: int = 40):
    """Prior and posterior marginals on one axis per parameter (log10 scale for positive parameters).

    ``idata`` must hold a ``prior`` group: sample with
    ``jaxscale.bayes.sample(..., prior_draws=500)``. A posterior much
    narrower than its prior means the data, not the prior, set the value.
    """
    if not (hasattr(idata, "posterior") and hasattr(idata, "groups")):
        raise PlotError(f"prior_posterior plots an ArviZ InferenceData from jaxscale.bayes.sample(); got "
                        f"{_type_name(idata)}.")
    if "prior" not in idata.groups():
        raise PlotError("prior_posterior: this InferenceData has no prior draws; sample with "
                        "jaxscale.bayes.sample(..., prior_draws=500).")
    law = _law_of(idata, "prior_posterior")
    names = _var_names(law, var_names, idata, "prior_posterior")
    missing = [n for n in names if n not in idata.prior.data_vars]
    if missing:
        raise PlotError(f"prior_posterior: the prior group has no draws of {missing}.")
    params = {p.name: p for p in law.params}
    ncol = min(len(names), 3)
    nrow = math.ceil(len(names) / ncol)
    fig, axs = plt.subplots(nrow, ncol, figsize=(4.0 * ncol, 3.0 * nrow), squeeze=False)
    for ax, n in zip(axs.ravel(), names, strict=False):
        pr = np.asarray(idata.prior[n]).ravel()
        po = np.asarray(idata.posterior[n]).ravel()
        logscale = n in params and params[n].transform == "log"
        if logscale:
            pr, po = np.log10(pr[pr > 0]), np.log10(po[po > 0])
        both = np.concatenate([pr, po])
        edges = np.linspace(np.quantile(both, 0.005), np.quantile(both, 0.995), bins + 1)
        ax.hist(pr, bins=edges, density=True, histtype="step", color="0.4", lw=1.2, label="prior")
        # the posterior gets its own fine bins: it is often far narrower than the prior
        ax.hist(po, bins=np.linspace(po.min(), po.max(), bins + 1), density=True, color="C0", alpha=0.6,
                label="posterior")
        ax.set_xlabel(f"log10 {n}" if logscale else n)
        ax.set_yticks([])
    for ax in axs.ravel()[len(names):]:
        ax.set_visible(False)
    axs.ravel()[0].legend(fontsize=8)
    fig.suptitle(f"{law.name}: prior vs posterior", fontsize=10)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------------------------------
# Checks: backtests, simulation-based calibration


def backtest(result, data=None, *, x: str = "C", ax=None):
    """A backtest: the training points and their range, the held-out points, and the predictive interval.

    ``result`` is a :class:`~jaxscale.BacktestResult` (``jaxscale.backtest``
    or ``Forecast.check``). Each held-out point gets its point forecast
    (open diamond) and its central ``level`` predictive interval (bar);
    points inside their interval are blue, outside red. Pass the full
    ``data`` to draw the training points (grey) and shade the fit region.
    """
    from jaxscale.forecast import BacktestResult

    if not isinstance(result, BacktestResult):
        raise PlotError(f"backtest plots a BacktestResult from jaxscale.backtest() or Forecast.check(); got "
                        f"{_type_name(result)}.")
    t = result.table
    if x not in t.columns:
        cols = [c for c in ("N", "D", "C", "U", "x") if c in t.columns]
        raise PlotError(f"backtest: x={x!r} is not a covariate of this backtest; choose one of {cols}.")
    ax = _new_axes(ax)
    if data is not None:
        d = _data(data, "backtest")
        if x not in d.covariates:
            raise PlotError(f"backtest: the data has no {x!r}; it has {sorted(d.covariates)}.")
        train = ~np.isin(np.asarray(d.rows), t["row"].to_numpy())
        xs = d.covariates[x][train]
        if train.any():
            ax.axvspan(xs.min(), xs.max(), color="0.92", zorder=0, label="fit region")
            ax.scatter(xs, d.y[train], s=10, color="0.45", label=f"training ({int(train.sum())})", zorder=2)
    xv, act, pred = t[x].to_numpy(float), t["actual"].to_numpy(float), t["predicted"].to_numpy(float)
    lo, hi, cov = t["lo"].to_numpy(float), t["hi"].to_numpy(float), t["covered"].to_numpy(bool)
    for mask, color, name in ((cov, "C0", "inside"), (~cov, "C3", "outside")):
        if mask.any():
            ax.errorbar(xv[mask], pred[mask], yerr=[pred[mask] - lo[mask], hi[mask] - pred[mask]], fmt="none",
                        ecolor=color, alpha=0.6, lw=1.2, zorder=3)
            ax.scatter(xv[mask], act[mask], s=22, color=color, zorder=4,
                       label=f"held out, {name} interval ({int(mask.sum())})")
    ax.scatter(xv, pred, marker="D", s=18, facecolors="none", edgecolors="k", lw=0.7, zorder=5, label="forecast")
    ax.set_xscale("log")
    ax.set_xlabel(_LABELS.get(x, x))
    ax.set_ylabel("loss")
    s = result.summary
    ax.set_title(f"{result.forecast.law.name} backtest ({s['method']}): {100 * s['level']:g}% coverage "
                 f"{s['coverage']:.2f}, median |rel err| {s['median_abs_rel_error']:.3g}", fontsize=9)
    ax.legend(fontsize=7)
    return ax


def _binomial_interval(n: int, p: float, prob: float = 0.99) -> tuple[float, float]:
    """Central ``prob`` interval of a Binomial(n, p) count (exact, from its pmf)."""
    k = np.arange(n + 1)
    logpmf = (np.array([math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) for i in k])
              + k * math.log(p) + (n - k) * math.log1p(-p))
    cdf = np.cumsum(np.exp(logpmf))
    a = (1 - prob) / 2
    return float(k[np.searchsorted(cdf, a)]), float(k[min(np.searchsorted(cdf, 1 - a), n)])


def sbc_ranks(result, *, bins: int | None = None, var_names=None, prob: float = 0.99):
    """Rank histograms of simulation-based calibration (Talts et al. 2018), one panel per parameter.

    With a calibrated posterior each rank is uniform on ``0..n_draws``; the
    grey band is the central ``prob`` range of a bin's count under
    uniformity (exact binomial), so about ``(1 - prob)`` of bins fall
    outside it by chance. A smile means too narrow posteriors, a frown too
    wide, a slope a bias. Datasets whose sampler failed are left out (as in
    the coverage table).
    """
    from jaxscale.bayes._many import SBCResult

    if not isinstance(result, SBCResult):
        raise PlotError(f"sbc_ranks plots an SBCResult from jaxscale.bayes.sbc(); got {_type_name(result)}.")
    names = list(result.ranks.columns) if var_names is None else list(var_names)
    missing = [n for n in names if n not in result.ranks.columns]
    if missing:
        raise PlotError(f"sbc_ranks: no ranks of {missing}; this SBCResult has {list(result.ranks.columns)}.")
    keep = np.asarray(result.posteriors.status) != "failed"
    n = int(keep.sum())
    if n == 0:
        raise PlotError("sbc_ranks: every dataset's sampler failed; there are no ranks to draw.")
    if bins is None:
        bins = int(max(4, min(20, n // 10, result.n_draws + 1)))
    lo, hi = _binomial_interval(n, 1.0 / bins, prob)
    ncol = min(len(names), 3)
    nrow = math.ceil(len(names) / ncol)
    fig, axs = plt.subplots(nrow, ncol, figsize=(3.8 * ncol, 2.8 * nrow), squeeze=False)
    for ax, name in zip(axs.ravel(), names, strict=False):
        r = result.ranks[name].to_numpy()[keep]
        ax.axhspan(lo, hi, color="0.85", lw=0, label=f"{100 * prob:g}% range if uniform")
        ax.axhline(n / bins, color="0.4", lw=0.8)
        ax.hist(r, bins=bins, range=(0, result.n_draws + 1), color="C0", alpha=0.8, edgecolor="white")
        ax.set_xlabel(f"rank of {name}")
        ax.set_xlim(0, result.n_draws + 1)
    for ax in axs.ravel()[len(names):]:
        ax.set_visible(False)
    axs.ravel()[0].set_ylabel("datasets")
    axs.ravel()[0].legend(fontsize=7)
    fig.suptitle(f"SBC ranks: {n} datasets, {result.n_draws} draws each", fontsize=10)
    fig.tight_layout()
    return fig


#: Nominal levels of :func:`calibration`'s line by default: 5%, 10%, ..., 95% and 99%.
CALIBRATION_LEVELS = tuple(np.round(np.append(np.linspace(0.05, 0.95, 19), 0.99), 2).tolist())


def _pit_groups(result) -> dict[str, list[np.ndarray]]:
    """PIT values of each result (or DataFrame), grouped by forecast method (a DataFrame's ``method`` column)."""
    from jaxscale.forecast import BacktestResult

    items = list(result) if isinstance(result, (list, tuple)) else [result]
    if not items:
        raise PlotError("calibration: got an empty list; pass a BacktestResult (jaxscale.backtest or "
                        "Forecast.check), a list of them, or a DataFrame with a 'pit' column.")
    groups: dict[str, list[np.ndarray]] = {}
    for i, item in enumerate(items):
        where = f"item {i} of the list" if len(items) > 1 or isinstance(result, (list, tuple)) else "this result"
        if isinstance(item, BacktestResult):
            table, method = item.table, str(item.summary.get("method", "forecast"))
        elif isinstance(item, pd.DataFrame):
            table, method = item, None
        else:
            raise PlotError(f"calibration plots a BacktestResult from jaxscale.backtest() or Forecast.check(), a "
                            f"list of them, or a DataFrame with a 'pit' column; got {_type_name(item)} "
                            f"({where}).")
        if "pit" not in table.columns:
            raise PlotError(f"calibration: {where} ({_type_name(item)}) has no 'pit' column; compute it with "
                            f"jaxscale.backtest or Forecast.check (jaxscale >= 0.1.0), which score each held-out "
                            f"point's PIT.")
        pit = pd.to_numeric(table["pit"], errors="coerce").to_numpy(float)
        bad = ~(np.isfinite(pit) & (pit >= 0) & (pit <= 1))
        if bad.any():
            j = int(np.flatnonzero(bad)[0])
            raise PlotError(f"calibration: {where} has {int(bad.sum())} 'pit' value(s) that are not numbers in "
                            f"[0, 1] (the first, at position {j}: {table['pit'].iloc[j]}); a PIT is the share "
                            f"of predictive draws below the actual value.")
        if method is None:
            if "method" in table.columns:
                for m, sub in pd.Series(pit).groupby(table["method"].astype(str).to_numpy(), sort=False):
                    groups.setdefault(str(m), []).append(sub.to_numpy())
                continue
            method = "forecast"
        groups.setdefault(method, []).append(pit)
    return groups


def _coverage(pit: np.ndarray, levels) -> np.ndarray:
    """Share of PIT values inside each central interval ``[(1 - l) / 2, (1 + l) / 2]``."""
    lv = np.asarray(levels, float)[:, None]
    return ((pit[None, :] >= (1 - lv) / 2) & (pit[None, :] <= (1 + lv) / 2)).mean(axis=1)


def calibration(result, *, ax=None, levels=None, band: float = 0.95, label: str | None = None):
    """Reliability diagram of forecasts: the observed coverage of central predictive intervals against their level.

    For each nominal level ``l`` the line shows the share of held-out points
    whose PIT (``table["pit"]``, the share of predictive draws below the
    actual value) lies in ``[(1 - l) / 2, (1 + l) / 2]``, i.e. inside the
    central ``l`` interval; dots mark the levels every summary reports (50,
    80, 90, 95%). A calibrated forecast follows the diagonal; below it the
    intervals are too narrow (overconfident), above it too wide. The grey
    band is the central ``band`` range of ``Binomial(n, l) / n``, the
    coverage ``n`` points of a calibrated forecast show by chance (exact
    binomial, as in :func:`sbc_ranks`); points are not independent along
    the line, so judge it as a whole. With few predictive draws (``method=
    "fit"``) the dots can differ a little from ``summary["coverage_by_level"]``,
    which is read from the draws' quantiles instead of the PIT.

    Parameters
    ----------
    result
        A :class:`~jaxscale.BacktestResult` (``jaxscale.backtest`` or
        ``Forecast.check``), a list or tuple of them, or a DataFrame with a
        ``pit`` column (and optionally a ``method`` column). Results of the
        same ``summary["method"]`` are pooled (e.g. one backtest per learning
        curve); each method gets its own line, to compare methods on one
        diagram.
    ax
        Axes to draw on (a new figure by default). Drawing several calls on
        one ``ax`` overlays their lines; the diagonal and a band of the same
        ``n`` are drawn once.
    levels
        Nominal levels of the line, each in (0, 1); default
        ``CALIBRATION_LEVELS`` (0.05, 0.10, ..., 0.95, 0.99).
    band
        Probability of the band, in (0, 1).
    label
        Legend label of the line, in place of ``"<method>: <n> held-out
        points"``; with several methods it prefixes each (``"<label>,
        <method>: ..."``).

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np, pandas as pd, jaxscale
    >>> from jaxscale import plot
    >>> x = np.logspace(2, 6, 30)
    >>> y = 0.5 + 40.0 * x ** -0.3 * np.exp(0.01 * np.random.default_rng(0).standard_normal(30))
    >>> bt = jaxscale.backtest("power", {"x": x, "loss": y}, split={"x": 1e5}, starts=16, key=0, method="fit")
    >>> ax = plot.calibration(bt)
    >>> ax.get_title()
    'calibration: fit, 8 held-out points'
    >>> ax.get_xlabel(), ax.get_ylabel()
    ('nominal coverage', 'observed coverage')

    Four PIT values of 0.1, 0.3, 0.6 and 0.95: the 50% interval [0.25, 0.75]
    holds two of them, the 90% interval [0.05, 0.95] all four:

    >>> ax = plot.calibration(pd.DataFrame({"pit": [0.1, 0.3, 0.6, 0.95]}), levels=[0.5, 0.9])
    >>> line = [ln for ln in ax.get_lines() if ln.get_label().startswith("forecast")][0]
    >>> line.get_label(), line.get_ydata().tolist()
    ('forecast: 4 held-out points', [0.5, 1.0])
    """
    from jaxscale.forecast import COVERAGE_LEVELS

    if levels is None:
        levels = CALIBRATION_LEVELS
    try:
        lv = np.asarray(levels, dtype=float).ravel()
    except (TypeError, ValueError):
        raise PlotError(f"calibration: levels must be numbers in (0, 1); got {levels!r}.") from None
    if lv.size == 0 or not np.all(np.isfinite(lv) & (lv > 0) & (lv < 1)):
        raise PlotError(f"calibration: levels must be nominal coverages strictly between 0 and 1 (e.g. "
                        f"levels=[0.5, 0.8, 0.9]); got {lv.tolist()}.")
    lv = np.unique(lv)
    if not (isinstance(band, (int, float)) and 0 < band < 1):
        raise PlotError(f"calibration: band is the probability of the chance range, in (0, 1) (e.g. band=0.95); "
                        f"got {band!r}.")
    groups = {m: np.concatenate(p) for m, p in _pit_groups(result).items()}
    empty = [m for m, p in groups.items() if p.size == 0]
    if empty:
        raise PlotError(f"calibration: no held-out points to draw (method {empty[0]!r} has an empty 'pit' "
                        f"column); score at least one point with jaxscale.backtest or Forecast.check.")
    ax = _new_axes(ax)
    have = {h.get_label() for h in [*ax.get_lines(), *ax.collections]}
    diag = "calibrated: y = x"
    if diag not in have:
        ax.plot([0.0, 1.0], [0.0, 1.0], ls="--", color="0.4", lw=0.9, label=diag, zorder=2)
    sizes = list(dict.fromkeys(p.size for p in groups.values()))
    for n in sizes:
        name = f"{100 * band:g}% range if calibrated (n = {n})"
        if name in have:
            continue
        lo, hi = np.array([_binomial_interval(n, float(p), band) for p in lv]).T / n
        ax.fill_between(lv, lo, hi, color="0.85", alpha=0.8 if len(sizes) == 1 else 0.4, lw=0, label=name,
                        zorder=1)
    std = np.asarray(COVERAGE_LEVELS, float)
    for method, pit in groups.items():
        text = f"{method}: {pit.size} held-out points"
        if label is not None:
            text = label if len(groups) == 1 else f"{label}, {text}"
        (line,) = ax.plot(lv, _coverage(pit, lv), "-", lw=1.6, label=text, zorder=3)
        ax.scatter(std, _coverage(pit, std), s=28, color=line.get_color(), edgecolors="k", linewidths=0.5,
                   zorder=4, clip_on=False, label="_nolegend_")
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.0)
    ax.set_aspect("equal")
    ax.set_xlabel("nominal coverage")
    ax.set_ylabel("observed coverage")
    if len(groups) == 1:
        ((method, pit),) = groups.items()
        ax.set_title(f"calibration: {method}, {pit.size} held-out points", fontsize=10)
    else:
        ax.set_title(f"calibration: {len(groups)} methods, {sum(p.size for p in groups.values())} held-out "
                     f"points", fontsize=10)
    ax.legend(loc="upper left", fontsize=7)
    return ax
