"""Downstream laws: benchmark accuracy from compute or from loss, and the two-stage N, D -> loss -> accuracy.

One stage: accuracy as a sigmoid of a resource with a chance floor and a
ceiling (benchmark saturation), the ``sigmoid`` law::

    acc = floor + (ceiling - floor) * sigmoid(k (log C - log x0))          # against="C"
    acc = floor + (ceiling - floor) * sigmoid(k (log x0 - log L))          # against="loss"

:func:`fit_accuracy` fits either (a point fit or a bootstrap), with the floor
held at chance where the benchmark has one (``floor=0.25`` for 4-way multiple
choice). Against loss, the law is ``sigmoid(resource="x", decreasing=True)``:
the loss is the generic resource ``x`` (:func:`accuracy_data` builds such
data from ``loss=`` and ``accuracy=``).

Two stages: :func:`two_stage` chains a loss law fitted on (N, D, loss) with an
accuracy-from-loss law fitted on (loss, accuracy). Each stage may be a point
fit, a bootstrap or a posterior (:func:`jaxscale.bayes.sample`); every
stage-1 draw is paired with every stage-2 draw, in one ``jax.vmap`` over both.
What the interval is: the uncertainty of the *curve* (the expected accuracy
at (N, D)) from both stages' parameter draws, assuming the two sets of draws
are independent. It is not an interval for one new model's score, which also
scatters about the curve: ``new_model=True`` adds stage 2's observation
scatter (its scaled training residuals resampled on the log scale, the same
code path as :func:`predict_interval` with ``data=``). The independence
holds when the stages are fitted on independent data (stage 2 on measured
losses). It fails when stage 2 is fitted on stage-1 *predicted* losses (the
observational workflow, :func:`predicted_loss_data`): stage 2's draws are then
conditional on stage 1's point fit, and crossing them with stage-1 draws
ignores the correlation (a stage 2 refitted on each stage-1 draw absorbs much
of its shift, so the stage-1 share is typically overstated; in general the
sign of the error is not known). A paired refit is not implemented. Both
intervals understate when stage 2's losses are themselves noisy (errors in
the predictor are not modelled), when the laws' form is wrong, when a stage
is a point fit (it adds no width) and when a bootstrap of few points
undercovers. See :func:`two_stage`.

:func:`read_observational` reads the benchmark tables of Ruan et al. (2024)
(``Model Size (B)``, ``Pretraining Data Size (T)``, ``FLOPs (1E21)``),
converting units and counting the rows it has to exclude.

Examples
--------
>>> import numpy as np, jaxscale
>>> from jaxscale import downstream
>>> C = np.logspace(20, 24, 9)
>>> truth = downstream.sigmoid_law("C").predict(dict(floor=0.25, ceiling=0.8, k=1.0, x0=1e22), C=C)
>>> fit = downstream.fit_accuracy(downstream.accuracy_data(truth, C=C), floor=0.25)
>>> round(fit.params["ceiling"], 3), round(fit.params["k"], 3)
(0.8, 1.0)
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from collections.abc import Mapping
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from jaxscale import validate
from jaxscale._draws import ParamSource, param_source
from jaxscale.data import ScalingData, read_csv
from jaxscale.errors import ArgumentError, DataError, FitError, LawError
from jaxscale.fit import FitResult, fit, numpy_rng
from jaxscale.laws import Law, get
from jaxscale.laws._registry import COVARIATES
from jaxscale.uncertainty import METHODS as BOOTSTRAP_METHODS, BootstrapResult, bootstrap

#: Chance accuracy of benchmarks in the observational tables whose chance level is well defined
#: (answer options per question). TruthfulQA (MC2 scores a probability mass), GSM8K and HumanEval
#: (generation, chance 0) have none to fix.
CHANCE = {"MMLU": 0.25, "ARC-C": 0.25, "HellaSwag": 0.25, "Winograd": 0.5, "Winogrande": 0.5, "XWinograd": 0.5}

#: Columns of the observational tables (Ruan et al. 2024) and their units.
OBSERVATIONAL_COLUMNS = {
    "N": ("Model Size (B)", 1e9),
    "D": ("Pretraining Data Size (T)", 1e12),
    "C": ("FLOPs (1E21)", 1e21),
}
_STAGE1_COVARIATES = ("N", "D", "C")


# --------------------------------------------------------------------------- data


def sigmoid_law(against: str = "C") -> Law:
    """The accuracy law: ``sigmoid`` increasing in a resource, or decreasing in loss (``against="loss"``).

    >>> from jaxscale import downstream
    >>> downstream.sigmoid_law("loss").options
    (('resource', 'x'), ('decreasing', True))
    """
    if against == "loss":
        return get("sigmoid", resource="x", decreasing=True)
    if against not in COVARIATES:
        raise LawError(f"against must be 'loss' or one of {list(COVARIATES)}; got {against!r}.")
    return get("sigmoid", resource=against)


def _check_accuracy(values: np.ndarray, rows, name: str) -> None:
    bad = np.flatnonzero(~(np.isfinite(values) & (values > 0) & (values <= 1)))
    if bad.size:
        i = bad[0]
        raise DataError(
            f"{name}: row {rows[i]} holds {float(values[i])!r}; an accuracy must be in (0, 1] "
            f"({bad.size} row(s) outside). Rescale percentages to fractions; drop or exclude zero scores "
            f"(a sigmoid on the log scale cannot fit them)."
        )


def accuracy_data(accuracy, *, loss=None, N=None, D=None, C=None, x=None, group=None,
                  name: str = "accuracy") -> ScalingData:
    """Benchmark scores as :class:`~jaxscale.ScalingData`: the target is ``accuracy`` in (0, 1].

    ``loss=`` is the predictor for an accuracy-from-loss law (stored as the
    generic resource ``x``); ``N``, ``D``, ``C`` or ``x`` for a law in a
    resource.

    >>> from jaxscale import downstream
    >>> d = downstream.accuracy_data([0.3, 0.5, 0.7], loss=[3.2, 2.8, 2.4])
    >>> d.target_name, d.covariates["x"].tolist()
    ('accuracy', [3.2, 2.8, 2.4])
    """
    if loss is not None and x is not None:
        raise DataError("accuracy_data: give the predictor once, as loss= or as x=, not both.")
    acc = np.asarray(accuracy, dtype=np.float64)
    if acc.ndim != 1:
        raise DataError(f"accuracy_data: accuracy must be one-dimensional; got shape {acc.shape}.")
    _check_accuracy(acc, np.arange(acc.shape[0]), "accuracy")
    return ScalingData.from_arrays(loss=acc, N=N, D=D, C=C, x=loss if loss is not None else x, group=group,
                                   target_name=name)


class Benchmark(NamedTuple):
    """One benchmark's scores from an observational table (see :func:`read_observational`).

    ``data``: the kept rows as ScalingData (covariates in FLOPs, parameters and
    tokens; target the accuracy; ``group`` the family). ``models``: those rows
    with the model name, family, covariates and accuracy (original row labels
    as the index). ``excluded``: every row left out and why.
    """

    benchmark: str
    data: ScalingData
    models: pd.DataFrame
    excluded: pd.DataFrame

    @property
    def n_excluded(self) -> int:
        return len(self.excluded)

    def report(self) -> str:
        """A line saying what was kept and what was excluded, by reason."""
        reasons = self.excluded["reason"].value_counts().to_dict() if len(self.excluded) else {}
        why = "; ".join(f"{n}: {r}" for r, n in reasons.items())
        return (f"{self.benchmark}: {len(self.models)} rows kept, {self.n_excluded} excluded"
                + (f" ({why})" if why else ""))


def read_observational(source, benchmark: str, *, family: str | None = None,
                       covariates: tuple[str, ...] = ("N", "D", "C"), exclude_zero: bool = False) -> Benchmark:
    """Read a benchmark from an observational-scaling table (Ruan et al. 2024).

    Parameters
    ----------
    source
        A CSV path, a bundled data set's name (``"ruan_base"``, ``"ruan_base_sub_10b"``,
        ``"ruan_instruct"``; see :mod:`jaxscale.datasets`; an existing file of that name
        wins) or a DataFrame with ``Model``, ``Model Family`` and the
        columns of :data:`OBSERVATIONAL_COLUMNS` (billions of parameters,
        trillions of tokens, units of 1e21 FLOPs; converted here).
    benchmark
        The accuracy column, e.g. ``"HellaSwag"``.
    family
        Keep one model family (``"Pythia"``); all rows by default.
    covariates
        The covariates a row must have to be kept.
    exclude_zero
        Exclude rows scoring exactly 0 (counted) instead of raising.

    Rows lacking a required covariate or the score are excluded, counted in
    ``excluded`` (with the reason) and announced with a ``UserWarning``;
    a score outside (0, 1] raises a :class:`~jaxscale.DataError`.
    """
    if isinstance(source, (str, os.PathLike)):
        from jaxscale import datasets

        path = os.fspath(source)
        if datasets.is_dataset(path):  # the table as stored: its units are converted below
            frame, where = datasets.load(path), f"dataset {path}"
        elif not os.path.exists(path):
            raise DataError(f"read_observational: {path!r} is neither an existing file nor a dataset; datasets: "
                            f"{', '.join(n for n in datasets.available() if n.startswith('ruan_'))} (Ruan et al.'s "
                            f"tables), or see jaxscale.datasets.available().")
        else:
            frame, where = read_csv(path).frame, os.path.abspath(path)  # sniffed separator, repeated headers refused
    elif isinstance(source, pd.DataFrame):
        frame, where = source, "DataFrame"
    else:
        raise DataError(f"read_observational: source must be a CSV path, a dataset name or a DataFrame; got "
                        f"{type(source).__name__}.")
    unknown = [c for c in covariates if c not in OBSERVATIONAL_COLUMNS]
    if unknown or not covariates:
        raise DataError(f"covariates must be a non-empty subset of {list(OBSERVATIONAL_COLUMNS)}; got {covariates!r}.")
    needed = ["Model", "Model Family", benchmark] + [OBSERVATIONAL_COLUMNS[c][0] for c in covariates]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise DataError(f"read_observational: column(s) {missing} are not in the table; columns are "
                        f"{list(frame.columns)}.")
    if family is not None:
        families = frame["Model Family"].value_counts()
        if family not in families.index:
            raise DataError(f"family {family!r} is not in the table; families (rows) are {families.to_dict()}.")
        frame = frame[frame["Model Family"] == family]
    values = {}
    for col in [OBSERVATIONAL_COLUMNS[c][0] for c in covariates] + [benchmark]:
        values[col] = pd.to_numeric(frame[col], errors="coerce")
        text = values[col].isna() & frame[col].notna()
        if text.any():
            row = frame.index[text.to_numpy()][0]
            raise DataError(f"column {col!r}: row {row} holds {frame.loc[row, col]!r}, which is not a number.")
    absent = pd.DataFrame({col: v.isna() for col, v in values.items()})
    reason = absent.apply(lambda r: "missing " + ", ".join(r.index[r]) if r.any() else "", axis=1).astype(object)
    if exclude_zero:
        reason[(values[benchmark] == 0) & (reason == "")] = f"{benchmark} is 0"
    keep = frame[reason == ""]
    excluded = pd.DataFrame({"Model": frame.loc[reason != "", "Model"],
                             "Model Family": frame.loc[reason != "", "Model Family"],
                             "reason": reason[reason != ""]})
    if keep.empty:
        raise DataError(f"read_observational: no row of {family or 'the table'} has {benchmark} and "
                        f"{list(covariates)}; {len(excluded)} rows excluded.")
    acc = values[benchmark][keep.index].to_numpy(np.float64)
    _check_accuracy(acc, np.asarray(keep.index), f"column {benchmark!r}")
    models = pd.DataFrame({"Model": keep["Model"], "Model Family": keep["Model Family"]})
    for c in covariates:
        col, unit = OBSERVATIONAL_COLUMNS[c]
        models[c] = values[col][keep.index].to_numpy(np.float64) * unit
    models[benchmark] = acc
    data = ScalingData.from_frame(models, source=where, group="Model Family", score=benchmark,
                                  **{c: c for c in covariates})
    data = dataclasses.replace(data, target_name=benchmark)
    out = Benchmark(benchmark, data, models, excluded)
    if len(excluded):
        warnings.warn(f"read_observational: {out.report()}; see .excluded.", UserWarning, stacklevel=2)
    return out


# --------------------------------------------------------------------------- one stage


def fit_accuracy(
    data,
    *,
    against: str = "C",
    floor: float | None = None,
    ceiling: float | None = None,
    n_resamples: int | None = None,
    key=validate.DEFAULT_KEY,
    starts="grid",
    method: str = "pairs",
    objective: str = "huber",
    **columns,
) -> FitResult | BootstrapResult:
    """Fit accuracy as a sigmoid of a resource (``against="C"``, ``"N"`` ...) or of loss (``against="loss"``).

    Parameters
    ----------
    data
        :class:`~jaxscale.ScalingData` (e.g. from :func:`accuracy_data`), a
        :class:`Benchmark` (:func:`read_observational`), a DataFrame or a CSV path with
        ``**columns`` mapping roles (``score="HellaSwag", C="FLOPs"``). The
        target must be an accuracy in (0, 1]. Against loss, the loss is the
        covariate ``x``.
    against
        The resource the accuracy rises with, or ``"loss"`` (falls with it:
        ``sigmoid(resource="x", decreasing=True)``).
    floor, ceiling
        Hold the floor (chance: 0.25 for 4-way multiple choice, see
        :data:`CHANCE`) or the ceiling at a value in (0, 1); fitted when None.
        A floor must lie below the highest observed accuracy, a ceiling above
        the lowest.
    n_resamples, method, starts
        Without ``n_resamples`` a point fit (:func:`jaxscale.fit`); with it a
        bootstrap (:func:`jaxscale.bootstrap`). ``starts`` as there
        (``"warm"`` for a bootstrap from the point fit).
    key
        Int seed or ``jax.random.key``; default 0; same key, same result.
    objective
        As for :func:`jaxscale.fit` (the residuals are those of log accuracy).

    Examples
    --------
    >>> import numpy as np
    >>> from jaxscale import downstream
    >>> loss = np.linspace(2.2, 3.6, 12)
    >>> acc = downstream.sigmoid_law("loss").predict(dict(floor=0.25, ceiling=0.85, k=8.0, x0=2.7), x=loss)
    >>> res = downstream.fit_accuracy(downstream.accuracy_data(acc, loss=loss), against="loss", floor=0.25)
    >>> round(res.params["x0"], 3), round(res.params["k"], 3)
    (2.7, 8.0)
    """
    law = sigmoid_law(against)
    if n_resamples is not None:
        n_resamples = validate.n_starts(n_resamples, law.n_params, "n_resamples")
        validate.choice(method, "method", BOOTSTRAP_METHODS)
    validate.key_words(key)
    floor = None if floor is None else _unit_interval(floor, "floor")
    ceiling = None if ceiling is None else _unit_interval(ceiling, "ceiling")
    if floor is not None and ceiling is not None and ceiling <= floor:
        raise ArgumentError(f"ceiling={ceiling:g} must be above floor={floor:g}.")
    warm = isinstance(starts, str) and starts == "warm"
    if n_resamples is None and warm:
        raise ArgumentError("starts='warm' applies to a bootstrap; pass n_resamples= or use starts='grid'.")
    data = ScalingData.coerce(data.data if isinstance(data, Benchmark) else data, **columns)
    _check_accuracy(np.asarray(data.y), data.rows, f"data target ({data.target_name})")
    y = np.asarray(data.y)
    fixed = {}
    if floor is not None:
        if floor >= y.max():
            raise FitError(f"floor={floor:g} is at or above the highest observed accuracy {y.max():.4g} "
                           f"(row {data.rows[int(np.argmax(y))]}); the floor (chance level) must lie below the data.")
        fixed["floor"] = floor
    if ceiling is not None:
        if ceiling <= y.min():
            raise FitError(f"ceiling={ceiling:g} is at or below the lowest observed accuracy {y.min():.4g} "
                           f"(row {data.rows[int(np.argmin(y))]}); the ceiling must lie above the data.")
        fixed["ceiling"] = ceiling
    point = fit(law, data, starts="grid" if warm else starts, objective=objective, key=key, fixed=fixed)
    _check_saturation(point, data)
    if n_resamples is None:
        return point
    return bootstrap(law, data, n_resamples, key, method=method, starts=starts, objective=objective, fixed=fixed,
                     point=point)


def _check_saturation(res: FitResult, data: ScalingData) -> None:
    # A floor or ceiling that runs to 0 or 1 (a logit beyond +-36) means the data never bend towards it:
    # it is not identified, and its natural value (exactly 0 or 1) is outside the law's domain.
    for name in ("floor", "ceiling"):
        v = res.params[name]
        if not 0 < v < 1:
            lo, hi = float(np.min(data.y)), float(np.max(data.y))
            raise FitError(
                f"The fitted {name} ran to {v:g}: the {len(data)} accuracies ({lo:.3g} to {hi:.3g}) do not bend "
                f"towards a {name}, so it is not identified. Hold it fixed ({name}=...) or add points nearer it."
            )


def _unit_interval(value, name: str) -> float:
    v = validate.number(value, name)
    if not 0 < v < 1:
        raise ArgumentError(f"{name} must be a number in (0, 1) (an accuracy); got {value!r}.")
    return v


def predict_interval(fit, *, level: float = 0.9, data: ScalingData | None = None, key=validate.DEFAULT_KEY,
                     **covariates) -> pd.DataFrame:
    """Prediction of any fitted law with an interval over its draws: one row per point.

    ``fit``: a FitResult (no interval), BootstrapResult or posterior. Columns:
    the covariates, ``estimate`` (at the point fit), ``median``, ``lo``,
    ``hi`` (equal-tailed, ``level``).

    Without ``data`` the interval is for the law's curve (the expected score
    of a model at those covariates). With ``data`` (the data the fit used,
    checked by fingerprint where the fit records one), it is for
    one new model's score: each draw's log prediction gets
    a log residual of the point fit on ``data`` drawn at random, adding the
    scatter of models about the curve (a bootstrap prediction interval,
    Davison & Hinkley 1997, Sec. 6.3.3). The residuals are scaled by
    ``sqrt(n / (n - p))`` (``p`` free parameters): in-sample residuals are
    smaller than the errors of a new point. ``key`` (int seed or
    ``jax.random.key``; default 0; same key, same result) draws them.

    >>> from jaxscale import downstream
    >>> p = dict(floor=0.25, ceiling=0.8, k=1.0, x0=1e22)
    >>> t = downstream.predict_interval(downstream.param_source(p, law="sigmoid"), C=[1e22])
    >>> t[["estimate", "lo", "hi"]].round(3).values.tolist()
    [[0.525, 0.525, 0.525]]
    """
    level = validate.level(level)
    validate.key_words(key)
    src = fit if isinstance(fit, ParamSource) else param_source(fit)
    law = src.law
    unknown = sorted(set(covariates) - set(law.covariates))
    if unknown:
        raise DataError(f"predict_interval: law {law.name!r} takes covariates {list(law.covariates)}; "
                        f"got unknown {unknown}.")
    cols = _covariate_arrays({c: covariates.get(c) for c in law.covariates}, "predict_interval")
    logx = np.log(np.stack([cols[c] for c in law.covariates], -1))
    theta, n_bad = _theta_draws(src)
    if n_bad:
        warnings.warn(f"predict_interval: {n_bad} draw(s) with non-finite parameters are excluded.",
                      RuntimeWarning, stacklevel=2)
    point = jnp.asarray(_to_fit(law, _point(src)))
    q = jnp.asarray([(1 - level) / 2, 0.5, (1 + level) / 2])
    noise = np.zeros((1, theta.shape[0]))
    if data is not None:
        resid = _scatter_residuals(fit, src, data, key, "predict_interval", "data=")
        noise = _resample(resid, key, (1, theta.shape[0]))
    est, qs = _one_stage_stats(law.log_predict, jnp.asarray(theta), point, jnp.asarray(logx), q, jnp.asarray(noise))
    out = pd.DataFrame(cols)
    lo, median, hi = np.asarray(qs)
    out["estimate"], out["median"], out["lo"], out["hi"] = np.asarray(est), median, lo, hi
    return out


def _fixed_of(fit, src: ParamSource) -> dict:
    """The parameters a fit held fixed: from its settings, a posterior's attrs, or draws that never vary."""
    if isinstance(fit, (FitResult, BootstrapResult)):
        return dict(fit.settings.get("fixed") or {})
    if hasattr(fit, "posterior") and hasattr(fit, "groups"):
        return json.loads(fit.posterior.attrs.get("fixed", "{}") or "{}")
    if src.draws is not None and len(src.draws) > 1:
        return {n: src.point[n] for n in src.law.param_names if np.ptp(src.draws[n].to_numpy(float)) == 0}
    return {}


def _scatter_residuals(fit, src: ParamSource, data, key, where: str, what: str) -> np.ndarray:
    """Log residuals of ``src``'s point fit on ``data``, scaled by ``sqrt(n / (n - p))`` (``p`` free parameters).

    The observation scatter of one new point about the curve, for a bootstrap
    prediction interval (Davison & Hinkley 1997, Sec. 6.3.3): shared by
    :func:`predict_interval` (``data=``) and :func:`two_stage` (``new_model=True``).
    """
    data = data.data if isinstance(data, Benchmark) else data
    if not isinstance(data, ScalingData):
        raise DataError(f"{where}: {what} must be the ScalingData the fit used; got {type(data).__name__}.")
    if src.fingerprint is not None and data.fingerprint() != src.fingerprint:
        raise DataError(f"{where}: {what} is not the data the fit used (its fingerprint differs); pass the "
                        f"ScalingData the fit was made on ({len(data)} rows given).")
    law = src.law
    logx_d, logy_d = data.design(law.covariates, law.name)
    point = jnp.asarray(_to_fit(law, _point(src)))
    fitted = np.asarray(jax.vmap(law.log_predict, in_axes=(None, 0))(point, jnp.asarray(logx_d)))
    n_free = law.n_params - len(_fixed_of(fit, src))
    if logy_d.size - n_free <= 0:
        raise FitError(f"{where}: {logy_d.size} points and {n_free} free parameters leave no residual "
                       f"degrees of freedom to scale the scatter by.")
    return (logy_d - fitted) * np.sqrt(logy_d.size / (logy_d.size - n_free))


def _resample(resid: np.ndarray, key, shape: tuple[int, ...]) -> np.ndarray:
    """Residuals drawn with replacement into ``shape`` (same key, same draws)."""
    return resid[numpy_rng(key).integers(0, resid.size, size=shape)]


@partial(jax.jit, static_argnums=0)
def _one_stage_stats(log_predict, theta, point, logx, q, noise):
    pred = jnp.exp(jax.vmap(lambda lx: jax.vmap(lambda t: log_predict(t, lx))(theta))(logx) + noise)  # (M, R)
    est = jnp.exp(jax.vmap(lambda lx: log_predict(point, lx))(logx))
    return est, jnp.nanquantile(pred, q, axis=1)


# --------------------------------------------------------------------------- two stages


@dataclasses.dataclass(frozen=True, eq=False)
class TwoStage:
    """Accuracy predicted at new (N, D) through loss, with both stages' uncertainty (see :func:`two_stage`).

    Attributes
    ----------
    table
        One row per (N, D): ``N``, ``D``, ``C`` (``flops_per_token N D``),
        ``loss`` (stage 1 at its point
        estimate), ``loss_median``, ``loss_lo``, ``loss_hi``; ``accuracy``
        (both stages at their point estimates), ``accuracy_median``,
        ``accuracy_lo``, ``accuracy_hi`` (over every pair of draws, each
        with its resampled residual when ``new_model``);
        ``width`` (``accuracy_hi - accuracy_lo``), ``width_stage1`` (the
        curve interval's width with stage 2 held at its point estimate:
        stage 1's uncertainty alone), ``width_stage2`` (stage 1 held:
        stage 2's alone), ``width_scatter`` (both held, the residuals alone:
        0 unless ``new_model``);
        ``var_stage1``, ``var_stage2``: the share of the accuracy variance
        explained by each stage's draws (first-order Sobol indices, in
        [0, 1]; the rest is their interaction and, when ``new_model``, the
        scatter); ``n_nonfinite``: pairs whose prediction is not finite
        (excluded).
    level
        The interval's probability.
    new_model
        Whether the interval is for one new model's score (stage 2's scatter
        added) rather than for the curve.
    loss_law, accuracy_law
        The two laws.
    n_draws, n_excluded
        ``{"stage1": .., "stage2": ..}``: draws used (after thinning to
        ``max_draws``), and draws excluded (failed bootstrap replicates and
        draws with non-finite parameters).
    loss_draws
        Stage-1 loss at each point for each stage-1 draw, ``(n_draws["stage1"], M)``.
    """

    table: pd.DataFrame
    level: float
    loss_law: Law
    accuracy_law: Law
    n_draws: dict[str, int]
    n_excluded: dict[str, int]
    loss_draws: np.ndarray
    new_model: bool = False
    _theta2: np.ndarray = dataclasses.field(repr=False, default=None)
    _noise: np.ndarray = dataclasses.field(repr=False, default=None)

    def accuracy_draws(self) -> np.ndarray:
        """Accuracy for every (stage-2, stage-1) pair of draws at every point, ``(n2 * n1, M)``.

        The draws the table's quantiles are taken over (with the residuals
        when ``new_model``); stage-2 draw ``j`` with stage-1 draw ``i`` is row
        ``j * n1 + i``.
        """
        lp = self.accuracy_law.log_predict
        logl = jnp.log(jnp.asarray(self.loss_draws))
        acc = jax.vmap(lambda t: jax.vmap(jax.vmap(lambda ll: lp(t, ll[None])))(logl))(jnp.asarray(self._theta2))
        noise = np.zeros(acc.shape[:2]) if self._noise is None else self._noise
        return np.exp(np.asarray(acc) + noise[:, :, None]).reshape(-1, self.loss_draws.shape[1])


def _stage(fit, name: str, what: str) -> ParamSource:
    try:
        return fit if isinstance(fit, ParamSource) else param_source(fit)
    except LawError as e:
        raise LawError(f"{name} ({what}): {e}") from None


def _point(src: ParamSource) -> np.ndarray:
    return np.array([src.point[n] for n in src.law.param_names], dtype=np.float64)


def _theta_draws(src: ParamSource, max_draws: int | None = None) -> tuple[np.ndarray, int]:
    cols = src.columns()
    nat = np.stack([np.asarray(cols[n], np.float64) for n in src.law.param_names], -1)
    ok = np.all(np.isfinite(nat), 1)
    nat = nat[ok]
    if nat.shape[0] == 0:
        raise FitError(f"All {ok.size} draws of law {src.law.name!r} have non-finite parameters.")
    if max_draws is not None and nat.shape[0] > max_draws:
        # Evenly spaced, not random: deterministic, and it thins MCMC chains without a key.
        nat = nat[np.linspace(0, nat.shape[0] - 1, max_draws).round().astype(int)]
    return _to_fit(src.law, nat), int((~ok).sum())


def _to_fit(law: Law, nat: np.ndarray) -> np.ndarray:
    """Natural draws ``(R, P)`` to fitting coordinates, tolerating values rounded onto a bound.

    A bootstrap replicate whose ceiling ran off to a logit of 40 stores a
    natural ceiling of exactly 1.0 (and a log parameter below -745 stores 0);
    clipping by one ulp maps them back to a coordinate with the same
    predictions to float64 precision instead of rejecting the draw.
    """
    tiny, eps = np.finfo(np.float64).tiny, np.finfo(np.float64).epsneg
    cols = []
    for i, p in enumerate(law.params):
        v = np.asarray(nat[..., i], np.float64)
        if p.transform == "logit":
            v = np.clip(v, tiny, 1.0 - eps)
        elif p.transform == "log":
            v = np.maximum(v, tiny)
        cols.append(p.transform_fn.to_fit(v))
    return np.stack(cols, -1)


def _covariate_arrays(values: Mapping[str, Any], where: str) -> dict[str, np.ndarray]:
    arrays = {}
    for name, v in values.items():
        if v is None:
            raise DataError(f"{where}: needs {name}= (a number or a 1-D array of positive values).")
        a = np.atleast_1d(np.asarray(v, dtype=np.float64)) if not isinstance(v, str) else None
        if a is None or a.ndim != 1:
            raise DataError(f"{where}: {name} must be a number or a 1-D array; got {v!r}.")
        bad = np.flatnonzero(~np.isfinite(a) | (a <= 0))
        if bad.size:
            raise DataError(f"{where}: {name}[{bad[0]}] is {float(a[bad[0]])!r}; expected finite values > 0.")
        arrays[name] = a
    lengths = {k: len(a) for k, a in arrays.items() if len(a) != 1}
    if len(set(lengths.values())) > 1:
        raise DataError(f"{where}: mismatched lengths {lengths}; give the same number of values for each "
                        f"(or a single value to use at every point).")
    m = max([len(a) for a in arrays.values()] + [1])
    return {k: np.broadcast_to(a, (m,)).copy() for k, a in arrays.items()}


def _check_flops_per_token(flops_per_token) -> float:
    return validate.positive(flops_per_token, "flops_per_token")


def _stage1(loss_fit, flops_per_token: float) -> ParamSource:
    src1 = _stage(loss_fit, "loss_fit", "stage 1, (N, D) -> loss")
    if not set(src1.law.covariates) <= set(_STAGE1_COVARIATES):
        raise LawError(f"loss_fit (stage 1) must be a loss law in N and D (e.g. 'chinchilla'; C = "
                       f"{flops_per_token:g} N D is also accepted); law {src1.law.name!r} needs covariates "
                       f"{list(src1.law.covariates)}.")
    return src1


def predicted_loss_data(loss_fit, benchmark: Benchmark, *, flops_per_token: float = 6.0) -> ScalingData:
    """Stage-2 data for the observational workflow: each model's score against stage 1's predicted loss.

    The observational tables (:func:`read_observational`) have no loss
    column. This evaluates stage 1 (``loss_fit``, a law in N and D, at its
    point estimate) at every kept model's (N, D) and pairs that predicted
    loss (covariate ``x``) with the score, ready for
    ``fit_accuracy(..., against="loss")``. A loss law fitted on other models'
    data (e.g. Chinchilla's, on MassiveText) makes the predicted loss a
    compute-quality index rather than these models' loss; :func:`two_stage`
    then chains the same stage 1 with the stage-2 fit (see the module
    docstring on what its interval does and does not include).

    ``benchmark`` must have been read with ``covariates`` including N and D.
    Rows keep their labels and families (``group``).

    >>> import jaxscale, pandas as pd
    >>> from jaxscale import downstream
    >>> table = pd.DataFrame({"Model": ["a", "b"], "Model Family": ["f", "f"], "Model Size (B)": [1.0, 10.0],
    ...                       "Pretraining Data Size (T)": [0.3, 0.3], "FLOPs (1E21)": [1.8, 18.0],
    ...                       "HellaSwag": [0.5, 0.7]})
    >>> chin = downstream.param_source(jaxscale.HOFFMANN_UNROUNDED, law="chinchilla")
    >>> d = downstream.predicted_loss_data(chin, downstream.read_observational(table, "HellaSwag"))
    >>> d.covariates["x"].round(3).tolist(), d.y.tolist()
    ([2.274, 2.079], [0.5, 0.7])
    """
    flops_per_token = _check_flops_per_token(flops_per_token)
    src1 = _stage1(loss_fit, flops_per_token)
    if not isinstance(benchmark, Benchmark):
        raise DataError(f"predicted_loss_data: benchmark must be a Benchmark from read_observational; got "
                        f"{type(benchmark).__name__}.")
    models = benchmark.models
    lacking = [c for c in ("N", "D") if c not in models.columns]
    if lacking:
        raise DataError(f"predicted_loss_data: the benchmark was read without {lacking}; read it with "
                        f"covariates including 'N' and 'D'.")
    cols = {"N": models["N"].to_numpy(np.float64), "D": models["D"].to_numpy(np.float64)}
    cols["C"] = flops_per_token * cols["N"] * cols["D"]
    loss = src1.law.predict(src1.point, **{c: cols[c] for c in src1.law.covariates})
    frame = pd.DataFrame({"predicted loss": loss, benchmark.benchmark: models[benchmark.benchmark].to_numpy(),
                          "Model Family": models["Model Family"].to_numpy()}, index=models.index)
    data = ScalingData.from_frame(frame, source=f"{benchmark.benchmark} against {src1.law.name} predicted loss",
                                  x="predicted loss", score=benchmark.benchmark, group="Model Family")
    return dataclasses.replace(data, target_name=benchmark.benchmark)


def two_stage(loss_fit, acc_fit, *, N, D, level: float = 0.9, max_draws: int = 500,
              flops_per_token: float = 6.0, new_model: bool = False, data=None,
              key=validate.DEFAULT_KEY) -> TwoStage:
    """Accuracy at new (N, D) through the loss, with the uncertainty of both stages propagated.

    Parameters
    ----------
    loss_fit
        Stage 1, (N, D) -> loss: a FitResult, BootstrapResult, posterior
        (InferenceData) or anything :func:`jaxscale._draws.param_source`
        takes, of a law in ``N`` and ``D`` (or ``C = flops_per_token N D``),
        e.g. ``"chinchilla"``.
    acc_fit
        Stage 2, loss -> accuracy: the same kinds, of a law whose one
        covariate ``x`` is the loss (:func:`fit_accuracy` with
        ``against="loss"``).
    N, D
        Where to predict: numbers or 1-D arrays of one length (a single value
        is used at every point).
    level
        Probability of the equal-tailed intervals.
    max_draws
        Each stage's draws are thinned (evenly) to at most this many; all
        ``n1 x n2`` pairs are evaluated.
    new_model, data, key
        ``new_model=True`` makes the interval one for a new model's score:
        each pair of draws gets one of stage 2's log residuals on ``data``
        (the ScalingData stage 2 was fitted on; checked by fingerprint where
        the fit records one), drawn with replacement using ``key`` and scaled
        by ``sqrt(n / (n - p))`` (``p`` free parameters), exactly as
        :func:`predict_interval` with ``data=`` and ``key=``. ``key``: int
        seed or ``jax.random.key``; default 0; same key, same result.

    What the interval is. Without ``new_model``: the uncertainty of the
    *curve*, the expected accuracy at (N, D), from both stages' parameter
    draws. Every stage-1 draw is paired with every stage-2 draw, which
    assumes the two sets of draws are independent; the full cross product is
    deterministic and is what the per-stage variance shares need. A point fit
    counts as one draw (its stage adds no width). Failed bootstrap replicates
    are already excluded from the draws (counted in ``n_excluded``), as are
    draws with non-finite parameters. Neither stage adds observation scatter,
    so the curve interval understates the spread of a new model's score. With
    ``new_model`` the scatter added is stage 2's: all of a model's deviation
    from the chained curve when stage 2 was fitted on stage-1 predicted
    losses, but only the accuracy-given-loss part when it was fitted on
    measured losses (a new model's own loss scatter about stage 1 is then
    missing).

    When it is wrong. Independence holds when stage 2 was fitted on losses
    measured independently of stage 1's data. When stage 2 was fitted on
    stage-1 *predicted* losses (:func:`predicted_loss_data`), its draws are
    conditional on stage 1's point fit and correlated with stage 1 through
    the data; crossing them ignores this. A stage 2 refitted on each stage-1
    draw's predicted losses absorbs much of that draw's shift, so near the
    data the stage-1 share is overstated (Pythia HellaSwag through Epoch's
    Chinchilla fit, 12B held out: paired-refit SD 0.001 against 0.006
    crossed); in general the error has no known sign. That paired refit is
    not implemented. Both intervals further understate when stage 2's losses
    are themselves noisy (errors in the predictor are not modelled), when
    either law's form is wrong, and when a bootstrap of few points
    undercovers.

    Examples
    --------
    >>> import numpy as np, jaxscale
    >>> from jaxscale import downstream
    >>> loss = np.linspace(2.0, 3.6, 16)
    >>> acc = downstream.sigmoid_law("loss").predict(dict(floor=0.25, ceiling=0.85, k=8.0, x0=2.7), x=loss)
    >>> acc = acc + 0.01 * np.random.default_rng(0).standard_normal(16)
    >>> stage2 = downstream.fit_accuracy(downstream.accuracy_data(acc, loss=loss), against="loss", floor=0.25,
    ...                                  n_resamples=50, key=0, starts="warm")
    >>> stage1 = downstream.param_source(jaxscale.HOFFMANN_UNROUNDED, law="chinchilla")
    >>> res = downstream.two_stage(stage1, stage2, N=[1e9, 1e10], D=[2e10, 2e11])
    >>> res.table["loss"].round(3).tolist()
    [2.531, 2.106]
    >>> bool((res.table["accuracy_lo"] < res.table["accuracy"]).all()), res.table["width_stage1"].tolist()
    (True, [0.0, 0.0])
    >>> new = downstream.two_stage(stage1, stage2, N=[1e9, 1e10], D=[2e10, 2e11], new_model=True,
    ...                            data=downstream.accuracy_data(acc, loss=loss), key=0)
    >>> bool((new.table["width"] > res.table["width"]).all()), bool((new.table["width_scatter"] > 0).all())
    (True, True)
    """
    level = validate.level(level)
    max_draws = validate.integer(max_draws, "max_draws")
    flops_per_token = _check_flops_per_token(flops_per_token)
    validate.key_words(key)
    if not isinstance(new_model, (bool, np.bool_)):
        raise ArgumentError(f"new_model must be True or False; got {new_model!r}.")
    if not new_model and data is not None:
        raise ArgumentError("two_stage: data= draws a new model's scatter and applies only with new_model=True.")
    if new_model and data is None:
        raise ArgumentError("two_stage: new_model=True needs data= (the ScalingData stage 2 was fitted on: its "
                            "residuals are the scatter of a new model's score about the curve).")
    src1 = _stage1(loss_fit, flops_per_token)
    src2 = _stage(acc_fit, "acc_fit", "stage 2, loss -> accuracy")
    law1, law2 = src1.law, src2.law
    if law2.covariates != ("x",):
        raise LawError(f"acc_fit (stage 2) must map loss to accuracy: a law whose one covariate 'x' is the loss "
                       f"(fit_accuracy(..., against='loss')); law {law2.name!r} has covariates "
                       f"{list(law2.covariates)}.")
    cols = _covariate_arrays({"N": N, "D": D}, "two_stage")
    cols["C"] = flops_per_token * cols["N"] * cols["D"]
    logx = np.log(np.stack([cols[c] for c in law1.covariates], -1))

    th1, bad1 = _theta_draws(src1, max_draws)
    th2, bad2 = _theta_draws(src2, max_draws)
    failed = [getattr(f, "n_failed", 0) if isinstance(f, BootstrapResult) else 0 for f in (loss_fit, acc_fit)]
    if bad1 or bad2:
        warnings.warn(f"two_stage: excluded {bad1} stage-1 and {bad2} stage-2 draw(s) with non-finite parameters.",
                      RuntimeWarning, stacklevel=2)
    p1 = jnp.asarray(_to_fit(law1, _point(src1)))
    p2 = jnp.asarray(_to_fit(law2, _point(src2)))
    q = jnp.asarray([(1 - level) / 2, 0.5, (1 + level) / 2])
    noise = np.zeros((th2.shape[0], th1.shape[0]))
    if new_model:
        # One residual per (stage-2 draw, stage-1 draw) pair, shared across the points (as predict_interval).
        noise = _resample(_scatter_residuals(acc_fit, src2, data, key, "two_stage", "data="), key, noise.shape)
    s = {k: np.asarray(v) for k, v in _two_stage_stats(law1.log_predict, law2.log_predict, jnp.asarray(th1),
                                                        jnp.asarray(th2), p1, p2, jnp.asarray(logx), q,
                                                        jnp.asarray(noise)).items()}
    n_nonfinite = s["n_nonfinite"].astype(int)
    if n_nonfinite.any():
        warnings.warn(f"two_stage: {int(n_nonfinite.sum())} (draw, draw, point) prediction(s) are not finite and "
                      f"are excluded from the intervals (see the n_nonfinite column).", RuntimeWarning, stacklevel=2)
    table = pd.DataFrame({"N": cols["N"], "D": cols["D"], "C": cols["C"]})
    table["loss"] = s["loss"]
    table["loss_median"], table["loss_lo"] = s["loss_q"][:, 1], s["loss_q"][:, 0]
    table["loss_hi"] = s["loss_q"][:, 2]
    table["accuracy"] = s["acc"]
    table["accuracy_median"], table["accuracy_lo"] = s["acc_q"][:, 1], s["acc_q"][:, 0]
    table["accuracy_hi"] = s["acc_q"][:, 2]
    table["width"] = s["acc_q"][:, 2] - s["acc_q"][:, 0]
    table["width_stage1"] = s["s1_q"][:, 1] - s["s1_q"][:, 0]
    table["width_stage2"] = s["s2_q"][:, 1] - s["s2_q"][:, 0]
    table["width_scatter"] = s["sc_q"][:, 1] - s["sc_q"][:, 0]
    table["var_stage1"], table["var_stage2"] = s["var1"], s["var2"]
    table["n_nonfinite"] = n_nonfinite
    return TwoStage(
        table=table,
        level=level,
        loss_law=law1,
        accuracy_law=law2,
        n_draws={"stage1": int(th1.shape[0]), "stage2": int(th2.shape[0])},
        n_excluded={"stage1": int(bad1 + failed[0]), "stage2": int(bad2 + failed[1])},
        loss_draws=s["loss_draws"].T,
        new_model=bool(new_model),
        _theta2=th2,
        _noise=noise,
    )


@partial(jax.jit, static_argnums=(0, 1))
def _two_stage_stats(lp1, lp2, th1, th2, p1, p2, logx, q, noise):
    lo_hi = q[jnp.array([0, 2])]

    def acc_of(t2, logl, e=0.0):
        return jnp.exp(lp2(t2, logl[None]) + e)

    def per_point(lx):
        logl = jax.vmap(lambda t: lp1(t, lx))(th1)  # (n1,)
        logl_p = lp1(p1, lx)
        # noise (n2, n1): a stage-2 residual per pair of draws (zeros for the curve).
        acc = jax.vmap(lambda t2, e2: jax.vmap(lambda ll, e: acc_of(t2, ll, e))(logl, e2))(th2, noise)  # (n2, n1)
        acc = jnp.where(jnp.isfinite(acc), acc, jnp.nan)
        only1 = jax.vmap(lambda ll: acc_of(p2, ll))(logl)
        only2 = jax.vmap(lambda t2: acc_of(t2, logl_p))(th2)
        scatter = acc_of(p2, logl_p, noise.ravel())
        total = jnp.nanvar(acc)
        safe_total = jnp.where(total > 0, total, 1.0)

        def share(v):
            return jnp.where(total > 0, v / safe_total, jnp.nan)

        return {
            "loss": jnp.exp(logl_p),
            "loss_draws": jnp.exp(logl),
            "loss_q": jnp.nanquantile(jnp.exp(logl), q),
            "acc": acc_of(p2, logl_p),
            "acc_q": jnp.nanquantile(acc, q),
            "s1_q": jnp.nanquantile(only1, lo_hi),
            "s2_q": jnp.nanquantile(only2, lo_hi),
            "sc_q": jnp.nanquantile(scatter, lo_hi),
            # Law of total variance: Var_i E_j[acc] / Var[acc] is the share due to stage-1 draws alone.
            "var1": share(jnp.nanvar(jnp.nanmean(acc, axis=0))),
            "var2": share(jnp.nanvar(jnp.nanmean(acc, axis=1))),
            "n_nonfinite": jnp.sum(jnp.isnan(acc)),
        }

    return jax.lax.map(per_point, logx)


__all__ = [
    "CHANCE",
    "OBSERVATIONAL_COLUMNS",
    "Benchmark",
    "TwoStage",
    "accuracy_data",
    "fit_accuracy",
    "param_source",
    "predict_interval",
    "predicted_loss_data",
    "read_observational",
    "sigmoid_law",
    "two_stage",
]
