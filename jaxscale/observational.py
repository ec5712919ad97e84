"""Observational scaling laws (Ruan, Maddison & Hashimoto 2024): capabilities from public models' benchmarks.

The method has three steps, each a function here:

1. :func:`capabilities`: a models x benchmarks accuracy matrix, its missing
   entries imputed, compressed by PCA into a few *capability measures* ``S``
   (the PC scores; ``PC-1`` is "general capability"), with the loadings and
   the shares of variance explained.
2. :func:`compute_efficiency`: within a model family ``f`` the measures are
   linear in log training compute, ``S_m = theta_f log C_m + nu_f`` (their
   Eq. 4); families differ in how efficiently they turn compute into
   capability.
3. :func:`predict_benchmark`: a downstream benchmark as a sigmoid of a linear
   function of the measures, ``acc = b + (1 - b) sigmoid(beta^T S + alpha)``
   with a floor ``b`` in ``[0, floor_max]`` (their Eq. 6 writes the error as
   ``h sigmoid(.)`` with ``h = 1 - b`` in ``[0.8, 1]``). :func:`holdout` fits
   it on the models below a compute cutoff and predicts those above.

What is implemented as in their code (``ryoungj/ObsScaling``, ``utils/data.py``
and ``utils/constants.py``): imputation standardises each benchmark over its
observed entries, fills missing entries with the mean, then alternates a
rank-``impute_rank`` PCA reconstruction (default 1) with replacing the
missing entries by it, and finally clips to ``[0, 1]`` on the accuracy scale;
the capability PCA is then taken on the imputed accuracies, mean-centred and
*not* standardised (``standardize=False``, their App. B.3), and in a
held-out split both the imputation and the PCA are fitted on the training
models only and applied to the test models. Two differences: their loop
stops when the *whole* matrix equals its reconstruction to 1e-4 (which a
rank-1 fit of real data never meets, so it runs its 1000 iterations); here it
stops when the imputed entries change by less than ``tol`` (same fixed
point, fewer iterations). And the sign of each component is fixed so that its
loadings sum to a non-negative number (higher PC-1 is more capable); sklearn
picks signs by another rule, so PC-2 and PC-3 may have the opposite sign of
theirs.

:func:`table` reads Ruan et al.'s benchmark tables (``"ruan_base"`` and the
like, see :mod:`jaxscale.datasets`) into the matrix and each model's family,
parameters, tokens and FLOPs (units converted as in
:data:`jaxscale.downstream.OBSERVATIONAL_COLUMNS`).

Examples
--------
>>> from jaxscale import observational as obs
>>> tab = obs.table("ruan_base", families=obs.PAPER_FAMILIES)
>>> caps = obs.capabilities(tab.matrix, n_components=3)
>>> caps.explained.round(3).tolist()
[0.821, 0.108, 0.042]

References
----------
Ruan, Maddison, Hashimoto (2024). Observational Scaling Laws and the Predictability of Language Model
Performance. NeurIPS 2024, arXiv:2405.10938.
"""

from __future__ import annotations

import os
import warnings
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from jaxscale import validate
from jaxscale.downstream import OBSERVATIONAL_COLUMNS
from jaxscale.errors import ArgumentError, DataError

#: The eight standard benchmarks of the base-model table (their ``ALL_BENCHMARK_METRIC_LIST``).
BENCHMARKS = ("MMLU", "ARC-C", "HellaSwag", "Winograd", "TruthfulQA", "GSM8K", "XWinograd", "HumanEval")
#: The 21 families of base models they evaluated themselves (their ``EVAL_BASE_MODEL_FAMILIES``, which
#: ``load_base_llm_benchmark_eval()`` keeps by default); Mistral and Mixtral have no published FLOPs.
PAPER_FAMILIES = ("Llama-2", "Llama", "Llama-3", "Qwen1.5", "Qwen", "Mistral", "Mixtral", "Yi", "Gemma", "Falcon",
                  "Phi", "Pythia", "BLOOM", "GPT-Neo/J", "OPT", "MPT", "XGLM", "CodeLlama", "StarCoder",
                  "StarCoder2", "DeepSeek-Coder")
#: Their default held-out cutoff: 8.4e22 FLOPs, Llama-2-7B's training compute (README, ``cutoff_threshold=84``).
CUTOFF_FLOPS = 8.4e22
#: Published shares of variance on the base models (Sec. 3.2, Fig. 2: 21 families, 77 models): "the first PC
#: alone explains nearly 80% of the variation", "the top 3 PCs explaining ~97% of the variance".
PUBLISHED_EXPLAINED = {"PC-1": 0.80, "top-3": 0.97}
IMPUTERS = ("pca", "mean", "none")


class ObservationalTable(NamedTuple):
    """An observational benchmark table (see :func:`table`).

    ``matrix``: models x benchmarks accuracies (NaN where a model was not
    evaluated), indexed by model name. ``models``: the same index with
    ``family`` and ``N``, ``D``, ``C`` in parameters, tokens and FLOPs (NaN
    where the table has none).
    """

    matrix: pd.DataFrame
    models: pd.DataFrame


class Capabilities(NamedTuple):
    """Capability measures of a set of models (see :func:`capabilities`).

    ``scores``: models x ``PC-1..PC-K``. ``loadings``: benchmarks x
    components (orthonormal columns). ``explained``: each component's share
    of the total variance of the (imputed, centred, optionally standardised)
    matrix. ``mean``, ``scale``: what each benchmark was centred and divided
    by before the PCA. ``imputed``: the matrix with its missing entries
    filled (``missing`` marks them). ``n_iter``: imputation iterations.
    """

    scores: pd.DataFrame
    loadings: pd.DataFrame
    explained: pd.Series
    mean: pd.Series
    scale: pd.Series
    imputed: pd.DataFrame
    missing: pd.DataFrame
    n_iter: int
    imputer: Any  # (mu, sd, centre, basis, clip, kind, max_iter, tol): applies the fitted imputation to new rows

    def project(self, matrix) -> pd.DataFrame:
        """Scores of new models (e.g. held-out ones) on these components, imputing their gaps with this fit.

        The new rows' missing entries are imputed with the imputation model
        fitted here (its standardisation and basis), then the rows are centred,
        scaled and projected with these loadings, as their code transforms a
        test set.

        >>> from jaxscale import observational as obs
        >>> tab = obs.table("ruan_base", families=obs.PAPER_FAMILIES)
        >>> caps = obs.capabilities(tab.matrix.iloc[:60])
        >>> new = caps.project(tab.matrix.iloc[60:])
        >>> new.shape, list(new.columns)
        ((20, 3), ['PC-1', 'PC-2', 'PC-3'])
        """
        frame = _matrix(matrix, "project")
        if list(frame.columns) != list(self.loadings.index):
            raise DataError(f"project: the matrix must have the benchmarks {list(self.loadings.index)} in that "
                            f"order; got {list(frame.columns)}.")
        filled, _ = _apply_imputer(self.imputer, frame.to_numpy(np.float64))
        y = (filled - self.mean.to_numpy()) / self.scale.to_numpy()
        return pd.DataFrame(y @ self.loadings.to_numpy(), index=frame.index, columns=self.scores.columns)


# --------------------------------------------------------------------------- reading


def _frame(source, where: str) -> pd.DataFrame:
    if isinstance(source, pd.DataFrame):
        return source
    if isinstance(source, (str, os.PathLike)):
        from jaxscale import datasets
        from jaxscale.data import read_csv

        path = os.fspath(source)
        if datasets.is_dataset(path):
            return datasets.load(path)
        if os.path.exists(path):
            return read_csv(path).frame
        raise DataError(f"{where}: {path!r} is neither an existing file nor a dataset; datasets: "
                        f"{', '.join(n for n in datasets.available() if n.startswith('ruan_'))}.")
    raise DataError(f"{where}: source must be a CSV path, a dataset name or a DataFrame; got {type(source).__name__}.")


def table(source="ruan_base", benchmarks=BENCHMARKS, *, families=None) -> ObservationalTable:
    """Read an observational table (Ruan et al. 2024) into a benchmark matrix and the models' metadata.

    Parameters
    ----------
    source
        A bundled data set's name (``"ruan_base"``, ``"ruan_base_sub_10b"``),
        a CSV path or a DataFrame with ``Model``, ``Model Family``, the
        benchmark columns and the size columns of
        :data:`jaxscale.downstream.OBSERVATIONAL_COLUMNS` (billions of
        parameters, trillions of tokens, 1e21 FLOPs; converted here).
    benchmarks
        The benchmark columns of the matrix (default :data:`BENCHMARKS`).
    families
        Keep only these model families (e.g. :data:`PAPER_FAMILIES`, the 21
        the paper analyses); all by default.

    Returns
    -------
    ObservationalTable
        ``matrix`` (NaN where a model was not evaluated) and ``models``
        (``family``, ``N``, ``D``, ``C``), both indexed by ``Model``.

    Examples
    --------
    >>> from jaxscale import observational as obs
    >>> tab = obs.table("ruan_base", families=obs.PAPER_FAMILIES)
    >>> tab.matrix.shape, int(tab.matrix.isna().sum().sum()), int(tab.models["C"].isna().sum())
    ((80, 8), 6, 5)
    """
    frame = _frame(source, "table")
    benchmarks = list(benchmarks)
    if not benchmarks:
        raise ArgumentError("table: benchmarks must name at least one column.")
    sizes = [col for col, _ in OBSERVATIONAL_COLUMNS.values()]
    missing = [c for c in ["Model", "Model Family", *benchmarks, *sizes] if c not in frame.columns]
    if missing:
        raise DataError(f"table: column(s) {missing} are not in the table; columns are {list(frame.columns)}.")
    if families is not None:
        families = [families] if isinstance(families, str) else list(families)
        known = set(frame["Model Family"])
        unknown = [f for f in families if f not in known]
        if unknown:
            raise DataError(f"table: family(ies) {unknown} are not in the table; families are {sorted(known)}.")
        frame = frame[frame["Model Family"].isin(families)]
    names = frame["Model"].astype(str)
    repeated = names[names.duplicated()]
    if len(repeated):
        raise DataError(f"table: model {repeated.iloc[0]!r} appears more than once.")
    matrix = _matrix(frame[benchmarks].set_axis(names, axis=0), "table", allow_empty_rows=True)
    models = pd.DataFrame({"family": frame["Model Family"].to_numpy()}, index=matrix.index)
    for role, (col, unit) in OBSERVATIONAL_COLUMNS.items():
        models[role] = _numeric(frame[col].set_axis(names, axis=0), col, "table") * unit
    return ObservationalTable(matrix, models)


def _numeric(column: pd.Series, name, where: str) -> pd.Series:
    values = pd.to_numeric(column, errors="coerce").astype(np.float64)
    text = values.isna() & column.notna()
    if text.any():
        row = column.index[text.to_numpy()][0]
        raise DataError(f"{where}: column {name!r}, row {row!r} holds {column[row]!r}, which is not a number.")
    inf = ~np.isfinite(values) & values.notna()
    if inf.any():
        row = column.index[inf.to_numpy()][0]
        raise DataError(f"{where}: column {name!r}, row {row!r} holds {column[row]!r}; expected a finite number.")
    return values


def _matrix(matrix, where: str, *, allow_empty_rows: bool = False) -> pd.DataFrame:
    if isinstance(matrix, pd.DataFrame):
        frame = matrix
    else:
        try:
            arr = np.asarray(matrix, dtype=object)
        except Exception as e:  # ragged lists
            raise DataError(f"{where}: matrix must be a DataFrame or a 2-D array; {e}") from None
        if arr.ndim != 2:
            raise DataError(f"{where}: matrix must be two-dimensional (models x benchmarks); got shape {arr.shape}.")
        frame = pd.DataFrame(arr, columns=[f"benchmark {j}" for j in range(arr.shape[1])])
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise DataError(f"{where}: the matrix is empty (shape {frame.shape}).")
    if frame.columns.duplicated().any():
        raise DataError(f"{where}: benchmark {frame.columns[frame.columns.duplicated()][0]!r} appears twice.")
    out = pd.DataFrame({c: _numeric(frame[c], c, where) for c in frame.columns}, index=frame.index)
    empty = out.columns[out.isna().all(axis=0).to_numpy()]
    if len(empty):
        raise DataError(f"{where}: benchmark {empty[0]!r} has no observed value ({len(empty)} such column(s)); "
                        f"drop it.")
    if not allow_empty_rows:
        rows = out.index[out.isna().all(axis=1).to_numpy()]
        if len(rows):
            raise DataError(f"{where}: model {rows[0]!r} has no observed benchmark value ({len(rows)} such row(s)); "
                            f"drop it.")
    return out


# --------------------------------------------------------------------------- PCA with imputation


def _impute(x: np.ndarray, miss: np.ndarray, rank: int, max_iter: int, tol: float):
    """Their PCA imputation: standardise, mean-fill, then iterate rank-``rank`` reconstructions on the gaps."""
    mu = np.nanmean(x, axis=0)
    sd = np.nanstd(x, axis=0)
    sd = np.where(sd > 0, sd, 1.0)  # sklearn's StandardScaler leaves a constant column unscaled
    z = np.where(miss, 0.0, (x - mu) / sd)
    centre, basis, n_iter = z.mean(axis=0), np.zeros((rank, x.shape[1])), 0
    if miss.any():
        for n_iter in range(1, max_iter + 1):
            centre = z.mean(axis=0)
            _, _, vt = np.linalg.svd(z - centre, full_matrices=False)
            basis = vt[:rank]
            recon = (z - centre) @ basis.T @ basis + centre
            change = np.max(np.abs(recon[miss] - z[miss]))
            z[miss] = recon[miss]
            if change < tol:
                break
        else:
            warnings.warn(f"capabilities: the PCA imputation did not converge in max_iter={max_iter} iterations "
                          f"(last change {change:.2g} > tol={tol:g} in standard units); raise max_iter.",
                          RuntimeWarning, stacklevel=3)
    return z * sd + mu, (mu, sd, centre, basis), n_iter


def _apply_imputer(imputer, x: np.ndarray):
    mu, sd, centre, basis, clip, kind, max_iter, tol = imputer
    miss = np.isnan(x)
    if miss.any() and kind == "none":
        r, c = np.argwhere(miss)[0]
        raise DataError(f"project: entry ({r}, {c}) is missing and the capabilities were fitted with impute='none'.")
    z = np.where(miss, 0.0, (x - mu) / sd)
    if kind == "pca" and miss.any():
        for _ in range(max_iter):
            recon = (z - centre) @ basis.T @ basis + centre
            change = np.max(np.abs(recon[miss] - z[miss]))
            z[miss] = recon[miss]
            if change < tol:
                break
    out = z * sd + mu
    return (out if clip is None else np.clip(out, *clip)), miss


def capabilities(matrix, n_components: int = 3, *, impute: str = "pca", impute_rank: int = 1,
                 clip=(0.0, 1.0), standardize: bool = False, max_iter: int = 1000,
                 tol: float = 1e-8) -> Capabilities:
    """Principal capability measures of a models x benchmarks matrix, with missing entries imputed.

    Parameters
    ----------
    matrix
        A DataFrame (rows models, columns benchmarks; NaN where missing) or a
        2-D array. Every row and every column needs an observed value.
    n_components
        Capability measures to keep (``PC-1`` ... ``PC-K``); at most the number
        of benchmarks and of models. The paper uses 3.
    impute
        ``"pca"`` (theirs: iterative rank-``impute_rank`` PCA on the
        standardised matrix, see the module docstring), ``"mean"`` (each
        benchmark's observed mean) or ``"none"`` (a missing entry is an error).
    impute_rank
        Rank of the imputation PCA (theirs: 1); below the number of benchmarks.
    clip
        ``(low, high)`` the imputed matrix is clipped to (accuracies: their
        ``[0, 1]``), or None.
    standardize
        Divide each benchmark by its standard deviation before the capability
        PCA (theirs: False, App. B.3: mean-centred, no scaling).
    max_iter, tol
        Imputation iterations, and the change (in standard units) of the
        imputed entries that counts as converged.

    Returns
    -------
    Capabilities
        ``scores``, ``loadings``, ``explained``, ``mean``, ``scale``,
        ``imputed``, ``missing``, ``n_iter`` and ``project`` for new models.

    Examples
    --------
    A rank-2 matrix with a hole: the hole is filled from the other rows, two
    components explain everything.

    >>> import numpy as np
    >>> from jaxscale import observational as obs
    >>> rng = np.random.default_rng(0)
    >>> truth = rng.normal(size=(30, 2)) @ rng.normal(size=(2, 5))
    >>> x = truth.copy(); x[3, 1] = np.nan
    >>> caps = obs.capabilities(x, n_components=2, impute_rank=2, clip=None)
    >>> round(float(caps.imputed.iloc[3, 1] - truth[3, 1]), 6), round(float(caps.explained.sum()), 6)
    (0.0, 1.0)
    """
    frame = _matrix(matrix, "capabilities")
    n, p = frame.shape
    validate.choice(impute, "impute", IMPUTERS)
    n_components = validate.integer(n_components, "n_components")
    if n_components > p:
        raise ArgumentError(f"capabilities: n_components={n_components} exceeds the number of benchmarks ({p}).")
    if n_components > n:
        raise ArgumentError(f"capabilities: n_components={n_components} exceeds the number of models ({n}).")
    impute_rank = validate.integer(impute_rank, "impute_rank")
    if impute == "pca" and impute_rank >= p:
        raise ArgumentError(f"capabilities: impute_rank={impute_rank} must be below the number of benchmarks ({p}): "
                            f"a full-rank reconstruction leaves every gap at its starting mean.")
    max_iter = validate.integer(max_iter, "max_iter")
    tol = validate.positive(tol, "tol")
    if clip is not None:
        lo, hi = (validate.number(v, "clip") for v in clip)
        if not lo < hi:
            raise ArgumentError(f"capabilities: clip must be (low, high) with low < high; got {tuple(clip)!r}.")
        clip = (lo, hi)
    if not isinstance(standardize, (bool, np.bool_)):
        raise ArgumentError(f"capabilities: standardize must be True or False; got {standardize!r}.")
    if n < 2:
        raise DataError(f"capabilities: need at least 2 models; got {n}.")

    x = frame.to_numpy(np.float64)
    miss = np.isnan(x)
    if impute == "none" and miss.any():
        r, c = np.argwhere(miss)[0]
        raise DataError(f"capabilities: model {frame.index[r]!r} has no value for {frame.columns[c]!r} "
                        f"({int(miss.sum())} missing entries); use impute='pca' or 'mean', or drop them.")
    if impute == "pca":
        filled, model, n_iter = _impute(x, miss, impute_rank, max_iter, tol)
    else:
        mu = np.nanmean(x, axis=0)
        filled, model, n_iter = np.where(miss, mu, x), (mu, np.ones(p), np.zeros(p), np.zeros((0, p))), 0
    if clip is not None:
        filled = np.clip(filled, *clip)

    mean = filled.mean(axis=0)
    scale = filled.std(axis=0) if standardize else np.ones(p)
    if standardize and np.any(scale == 0):
        raise DataError(f"capabilities: benchmark {frame.columns[np.flatnonzero(scale == 0)[0]]!r} is constant; "
                        f"it cannot be standardised.")
    y = (filled - mean) / scale
    _, s, vt = np.linalg.svd(y, full_matrices=False)
    var = s**2
    total = var.sum()
    if total <= 0:
        raise DataError("capabilities: every benchmark is constant across models; there is nothing to decompose.")
    loadings = vt[:n_components].T
    loadings = loadings * np.where(loadings.sum(axis=0) < 0, -1.0, 1.0)
    names = [f"PC-{k + 1}" for k in range(n_components)]
    return Capabilities(
        scores=pd.DataFrame(y @ loadings, index=frame.index, columns=names),
        loadings=pd.DataFrame(loadings, index=frame.columns, columns=names),
        explained=pd.Series(var[:n_components] / total, index=names, name="explained"),
        mean=pd.Series(mean, index=frame.columns, name="mean"),
        scale=pd.Series(scale, index=frame.columns, name="scale"),
        imputed=pd.DataFrame(filled, index=frame.index, columns=frame.columns),
        missing=pd.DataFrame(miss, index=frame.index, columns=frame.columns),
        n_iter=int(n_iter),
        imputer=(*model, clip, impute, max_iter, tol),
    )


# --------------------------------------------------------------------------- compute -> capability


class Efficiency(NamedTuple):
    """Per-family linear fits of the capability measures on log compute (see :func:`compute_efficiency`).

    ``table``: one row per (family, component) with ``slope`` (theta_f, per
    unit of natural-log FLOPs), ``intercept`` (nu_f), ``r2`` (NaN for a
    family of 2 models, which a line fits exactly), ``n_models`` and the
    family's ``log_c_min``/``log_c_max``. ``shared_slope``: one slope per
    component across families (fixed-effects least squares). ``excluded``:
    the models left out and why.
    """

    table: pd.DataFrame
    shared_slope: bool
    excluded: pd.DataFrame

    def predict(self, compute, family: str, component: str = "PC-1") -> np.ndarray:
        """The capability measure of a model of ``family`` trained with ``compute`` FLOPs.

        >>> import numpy as np
        >>> from jaxscale import observational as obs
        >>> tab = obs.table("ruan_base", families=["Pythia", "OPT"])
        >>> eff = obs.compute_efficiency(obs.capabilities(tab.matrix), tab.models["C"], tab.models["family"])
        >>> bool(np.all(np.diff(eff.predict([1e21, 1e22], "Pythia")) > 0))
        True
        """
        row = self._row(family, component)
        c = validate.positives(compute, "compute")
        return row["slope"] * np.log(c) + row["intercept"]

    def equivalent_compute(self, score, family: str, component: str = "PC-1") -> np.ndarray:
        """The FLOPs a model of ``family`` would need to reach capability ``score`` (their Eq. 8, f-equivalent FLOPs).

        >>> from jaxscale import observational as obs
        >>> tab = obs.table("ruan_base", families=["Pythia", "OPT"])
        >>> eff = obs.compute_efficiency(obs.capabilities(tab.matrix), tab.models["C"], tab.models["family"])
        >>> s = eff.predict([3e21], "OPT")
        >>> f"{float(eff.equivalent_compute(s, 'OPT')[0]):.3g}"
        '3e+21'
        """
        row = self._row(family, component)
        if not row["slope"] > 0:
            raise DataError(f"equivalent_compute: {component} does not rise with compute in family {family!r} "
                            f"(slope {row['slope']:.3g}); it cannot be inverted.")
        return np.exp((np.asarray(score, dtype=np.float64) - row["intercept"]) / row["slope"])

    def _row(self, family, component):
        key = (family, component)
        if key not in self.table.index:
            fams = sorted(set(self.table.index.get_level_values(0)))
            comps = sorted(set(self.table.index.get_level_values(1)))
            raise ArgumentError(f"no fit for family {family!r}, component {component!r}; families are {fams}, "
                                f"components {comps}.")
        return self.table.loc[key]


def _aligned(values, index: pd.Index, name: str, where: str, *, numeric: bool = True) -> pd.Series:
    if isinstance(values, pd.Series):
        absent = index.difference(values.index)
        if len(absent):
            raise DataError(f"{where}: {name} has no entry for model {absent[0]!r} ({len(absent)} missing); give a "
                            f"Series indexed like the capability scores.")
        values = values.reindex(index)
    else:
        arr = np.asarray(values, dtype=object)
        if arr.ndim != 1 or len(arr) != len(index):
            raise DataError(f"{where}: {name} must be a Series indexed by model or a 1-D array of {len(index)} "
                            f"values; got shape {arr.shape}.")
        values = pd.Series(arr, index=index)
    return _numeric(values, name, where) if numeric else values


def compute_efficiency(caps: Capabilities, compute, family, *, components=None,
                       shared_slope: bool = False) -> Efficiency:
    """Fit each capability measure as linear in log training compute within each model family (their Eq. 4).

    Parameters
    ----------
    caps
        From :func:`capabilities`.
    compute
        Training FLOPs per model: a Series indexed like ``caps.scores`` (e.g.
        ``table(...).models["C"]``) or an array in the same order. NaN marks
        an unknown compute: the model is excluded (counted in ``excluded``,
        with a warning).
    family
        Family label per model, the same way.
    components
        The measures to fit (default all, ``PC-1`` ...).
    shared_slope
        One slope per component for all families, intercepts per family
        (families then differ only in efficiency, a shift in log compute).
        The paper fits a slope per family (False).

    Families with fewer than two models with known compute, or one compute
    value only, cannot identify a per-family slope and are excluded (counted,
    with a warning); with ``shared_slope`` one model suffices.

    Examples
    --------
    >>> from jaxscale import observational as obs
    >>> tab = obs.table("ruan_base", families=["Pythia", "OPT", "Llama-2"])
    >>> eff = obs.compute_efficiency(obs.capabilities(tab.matrix), tab.models["C"], tab.models["family"])
    >>> eff.table.xs("PC-1", level="component")["r2"].round(3).to_dict()
    {'Llama-2': 0.997, 'OPT': 0.978, 'Pythia': 0.988}
    """
    if not isinstance(caps, Capabilities):
        raise ArgumentError(f"compute_efficiency: caps must be Capabilities from capabilities(); got "
                            f"{type(caps).__name__}.")
    if not isinstance(shared_slope, (bool, np.bool_)):
        raise ArgumentError(f"compute_efficiency: shared_slope must be True or False; got {shared_slope!r}.")
    index = caps.scores.index
    c = _aligned(compute, index, "compute", "compute_efficiency")
    fam = _aligned(family, index, "family", "compute_efficiency", numeric=False)
    if fam.isna().any():
        raise DataError(f"compute_efficiency: model {fam.index[fam.isna().to_numpy()][0]!r} has no family.")
    bad = c.notna() & ~(c > 0)
    if bad.any():
        row = c.index[bad.to_numpy()][0]
        raise DataError(f"compute_efficiency: compute of model {row!r} is {float(c[row])!r}; expected FLOPs > 0 (or NaN "
                        f"when unknown).")
    comps = list(caps.scores.columns) if components is None else list(components)
    unknown = [k for k in comps if k not in caps.scores.columns]
    if unknown or not comps:
        raise ArgumentError(f"compute_efficiency: components must be among {list(caps.scores.columns)}; got {comps}.")
    reasons = pd.Series("", index=index, dtype=object)
    reasons[c.isna()] = "no compute"
    known = reasons == ""
    for f, members in c[known].groupby(fam[known]):
        if not shared_slope and (len(members) < 2 or members.nunique() < 2):
            reasons[members.index] = "family has fewer than 2 distinct compute values"
    keep = reasons == ""
    excluded = pd.DataFrame({"family": fam[~keep], "reason": reasons[~keep]})
    if len(excluded):
        counts = excluded["reason"].value_counts().to_dict()
        warnings.warn(f"compute_efficiency: {len(excluded)} model(s) excluded ({counts}); see .excluded.",
                      UserWarning, stacklevel=2)
    if not keep.any():
        raise DataError("compute_efficiency: no model is left to fit (see the warning for why).")
    logc = np.log(c[keep].to_numpy(np.float64))
    f_kept = fam[keep].to_numpy()
    fams = sorted(set(f_kept))
    rows = []
    for k in comps:
        s = caps.scores.loc[keep, k].to_numpy()
        if shared_slope:
            onehot = (f_kept[:, None] == np.asarray(fams)[None, :]).astype(np.float64)
            design = np.column_stack([logc, onehot])
            coef = np.linalg.lstsq(design, s, rcond=None)[0]
            slopes = dict.fromkeys(fams, coef[0])
            inters = dict(zip(fams, coef[1:]))
        else:
            slopes, inters = {}, {}
            for f in fams:
                m = f_kept == f
                slopes[f], inters[f] = np.polyfit(logc[m], s[m], 1)
        for f in fams:
            m = f_kept == f
            resid = s[m] - (slopes[f] * logc[m] + inters[f])
            ss = np.sum((s[m] - s[m].mean()) ** 2)
            dof = m.sum() - (1 if shared_slope else 2)
            r2 = 1 - np.sum(resid**2) / ss if (dof > 0 and ss > 0) else np.nan
            rows.append((f, k, float(slopes[f]), float(inters[f]), float(r2), int(m.sum()),
                         float(logc[m].min()), float(logc[m].max())))
    out = pd.DataFrame(rows, columns=["family", "component", "slope", "intercept", "r2", "n_models",
                                      "log_c_min", "log_c_max"]).set_index(["family", "component"])
    return Efficiency(out, bool(shared_slope), excluded)


# --------------------------------------------------------------------------- capability -> benchmark


class BenchmarkFit(NamedTuple):
    """A benchmark as ``floor + (1 - floor) sigmoid(alpha + beta^T S)`` (see :func:`predict_benchmark`).

    ``beta`` per component, ``alpha``, ``floor`` (in ``[0, floor_max]``),
    ``fitted`` and ``residuals`` on the training models, their ``mse``, and
    ``converged`` (the gradient of the least-squares objective vanished).
    """

    alpha: float
    beta: pd.Series
    floor: float
    floor_max: float
    fitted: pd.Series
    residuals: pd.Series
    mse: float
    converged: bool

    def predict(self, scores) -> np.ndarray:
        """Predicted accuracy from capability scores (a DataFrame with the fitted components, or an array).

        >>> import numpy as np, pandas as pd
        >>> from jaxscale import observational as obs
        >>> fit = obs.BenchmarkFit(0.0, pd.Series([1.0], index=["PC-1"]), 0.25, 0.25, None, None, 0.0, True)
        >>> fit.predict(np.array([[0.0]])).tolist()
        [0.625]
        """
        if isinstance(scores, pd.DataFrame):
            missing = [k for k in self.beta.index if k not in scores.columns]
            if missing:
                raise DataError(f"predict: scores lack component(s) {missing}.")
            s = scores[list(self.beta.index)].to_numpy(np.float64)
        else:
            s = np.asarray(scores, dtype=np.float64)
            if s.ndim != 2 or s.shape[1] != len(self.beta):
                raise DataError(f"predict: scores must have shape (models, {len(self.beta)}); got {s.shape}.")
        z = self.alpha + s @ self.beta.to_numpy()
        return self.floor + (1 - self.floor) * _sig(z)


def _sig(z):
    return 0.5 * (1 + np.tanh(0.5 * z))  # the logistic function without exp overflow


def _lm(theta, s, y, floor_max: float, n_iter: int = 300):
    """Levenberg-Marquardt on the sum of squared accuracy residuals, from one start.

    In NumPy with the Jacobian in closed form: the problem has a handful of
    parameters and at most a few hundred models, and a jitted JAX solver
    spends seconds compiling for each new (models, components) shape, far
    more than the solve takes.
    """
    free = floor_max > 0

    def parts(t):
        sz = _sig(t[0] + s @ t[1:-1])
        su = _sig(t[-1]) if free else 0.0
        b = floor_max * su
        pred = b + (1 - b) * sz
        dz = (1 - b) * sz * (1 - sz)
        cols = [dz, dz[:, None] * s]
        if free:
            cols.append(((1 - sz) * floor_max * su * (1 - su))[:, None])
        return y - pred, np.column_stack(cols)

    lam = 1e-3
    r, j = parts(theta)
    cost = 0.5 * r @ r
    for _ in range(n_iter):
        a, g = j.T @ j, j.T @ r
        try:
            dt = np.linalg.solve(a + lam * (np.diag(np.diag(a)) + 1e-12 * np.eye(len(g))), g)
        except np.linalg.LinAlgError:
            lam *= 10.0
            continue
        new = theta.copy()
        new[: len(dt)] += dt
        r_new, j_new = parts(new)
        cost_new = 0.5 * r_new @ r_new
        if np.isfinite(cost_new) and cost_new < cost:
            small = cost - cost_new < 1e-15 * max(cost, 1e-300)
            theta, r, j, cost, lam = new, r_new, j_new, cost_new, lam * 0.3
            if small:
                break
        else:
            lam *= 10.0
            if lam > 1e12:
                break
    return theta, cost, float(np.max(np.abs(j.T @ r)))


def predict_benchmark(caps: Capabilities, target, *, components=None, floor_max: float = 0.2) -> BenchmarkFit:
    """Fit a benchmark's accuracy as a sigmoid of a linear function of the capability measures (their Eq. 6).

    ``acc = b + (1 - b) sigmoid(alpha + beta^T S)``, by least squares on the
    accuracy scale (their default ``"ols"`` and ``"sigmoid-parametric"`` with
    the height fixed: the ceiling is 1), with the floor ``b`` restricted to
    ``[0, floor_max]``. Their Eq. 6 writes the error rate as
    ``h sigmoid(.)`` with ``h`` in ``[0.8, 1]``: the same model with
    ``h = 1 - b`` and ``floor_max = 0.2``. ``floor_max=0`` is the plain sigmoid.

    Parameters
    ----------
    caps
        From :func:`capabilities`; the target benchmark must not be one of
        its columns (its value would enter the measures).
    target
        Accuracies in ``[0, 1]``: a Series indexed by model (the models it
        holds are the ones fitted; each must be in ``caps.scores``) or an array
        with one value per row of ``caps.scores``. A NaN is an error.
    components
        The measures used (default all of ``caps``).
    floor_max
        Largest floor allowed, in ``[0, 1)``.

    Examples
    --------
    >>> import numpy as np
    >>> from jaxscale import observational as obs
    >>> tab = obs.table("ruan_base", families=obs.PAPER_FAMILIES)
    >>> caps = obs.capabilities(tab.matrix.drop(columns="GSM8K"))
    >>> fit = obs.predict_benchmark(caps, tab.matrix["GSM8K"])
    >>> round(float(np.sqrt(fit.mse)), 3), fit.converged
    (0.065, True)
    """
    if not isinstance(caps, Capabilities):
        raise ArgumentError(f"predict_benchmark: caps must be Capabilities from capabilities(); got "
                            f"{type(caps).__name__}.")
    floor_max = validate.number(floor_max, "floor_max", minimum=0.0)
    if not floor_max < 1:
        raise ArgumentError(f"predict_benchmark: floor_max must be in [0, 1); got {floor_max!r}.")
    comps = list(caps.scores.columns) if components is None else list(components)
    unknown = [k for k in comps if k not in caps.scores.columns]
    if unknown or not comps:
        raise ArgumentError(f"predict_benchmark: components must be among {list(caps.scores.columns)}; got {comps}.")
    if isinstance(target, pd.Series):
        if target.name is not None and target.name in caps.loadings.index:
            raise ArgumentError(f"predict_benchmark: target {target.name!r} is also a benchmark of the capability "
                                f"measures; refit them without it (capabilities(matrix.drop(columns=...))).")
        absent = target.index.difference(caps.scores.index)
        if len(absent):
            raise DataError(f"predict_benchmark: target model {absent[0]!r} is not in the capability scores.")
        y = _numeric(target, target.name or "target", "predict_benchmark")
    else:
        y = _aligned(target, caps.scores.index, "target", "predict_benchmark")
    bad = y.isna() | (y < 0) | (y > 1)
    if bad.any():
        row = y.index[bad.to_numpy()][0]
        raise DataError(f"predict_benchmark: target of model {row!r} is {float(y[row])!r}; expected an accuracy in [0, 1] "
                        f"({int(bad.sum())} such value(s)); drop those models from the target Series.")
    n_par = len(comps) + 2 if floor_max > 0 else len(comps) + 1
    if len(y) < n_par + 1:
        raise DataError(f"predict_benchmark: {len(y)} model(s) cannot fit {n_par} parameters; need at least "
                        f"{n_par + 1}.")
    s = caps.scores.loc[y.index, comps].to_numpy(np.float64)
    yv = y.to_numpy(np.float64)
    # Starts: ordinary least squares on the logit scale (floor 0), then a few floors.
    eps = 1e-3
    logit = np.log(np.clip(yv, eps, 1 - eps) / (1 - np.clip(yv, eps, 1 - eps)))
    lin = np.linalg.lstsq(np.column_stack([np.ones(len(yv)), s]), logit, rcond=None)[0]
    us = [-4.0, 0.0, 3.0] if floor_max > 0 else [0.0]
    starts = [np.concatenate([lin, [u]]) for u in us] + [np.concatenate([[0.0], 0.01 * np.ones(len(comps)), [us[0]]])]
    runs = [_lm(t, s, yv, floor_max) for t in starts]
    best = int(np.argmin([c if np.isfinite(c) else np.inf for _, c, _ in runs]))
    theta, _, grad = runs[best]
    floor = float(floor_max * _sig(theta[-1])) if floor_max > 0 else 0.0
    out = BenchmarkFit(alpha=float(theta[0]), beta=pd.Series(theta[1:-1], index=comps, name="beta"), floor=floor,
                       floor_max=floor_max, fitted=None, residuals=None, mse=float("nan"),
                       converged=bool(grad < 1e-6 * max(1.0, len(yv))))
    fitted = pd.Series(out.predict(s), index=y.index, name="fitted")
    return out._replace(fitted=fitted, residuals=(y - fitted).rename("residual"),
                        mse=float(np.mean((yv - fitted.to_numpy()) ** 2)))


# --------------------------------------------------------------------------- held out


class Holdout(NamedTuple):
    """A held-out prediction (see :func:`holdout`).

    ``table``: per model ``split`` ("train"/"test"), ``C``, ``observed``,
    ``predicted``. ``mse_train``, ``mse_test``, ``mae_test`` on the accuracy
    scale. ``capabilities`` and ``fit``: fitted on the training models only.
    """

    table: pd.DataFrame
    mse_train: float
    mse_test: float
    mae_test: float
    capabilities: Capabilities
    fit: BenchmarkFit


def holdout(matrix, target, compute, *, cutoff: float = CUTOFF_FLOPS, n_components: int = 3,
            floor_max: float = 0.2, **capability_options) -> Holdout:
    """Fit on the models trained with at most ``cutoff`` FLOPs, predict the target of those above.

    As in their code: the split comes first, then the imputation and the PCA
    are fitted on the training models and applied to the test models
    (:meth:`Capabilities.project`), then :func:`predict_benchmark` on the
    training models. A model with unknown compute (NaN) goes to the test set,
    as in their ``split_data``. A model without an observed target (NaN) is
    predicted (``table``) but enters neither the fit nor the errors.

    Parameters
    ----------
    matrix
        The benchmark matrix (a DataFrame indexed by model), without the target.
    target
        The target accuracy per model (a Series indexed like ``matrix``).
    compute
        Training FLOPs per model (a Series indexed like ``matrix``; NaN = unknown).
    cutoff
        The largest training compute in the training set (default Llama-2-7B's, 8.4e22).
    n_components, floor_max, capability_options
        As for :func:`capabilities` and :func:`predict_benchmark`.

    Examples
    --------
    >>> from jaxscale import observational as obs
    >>> tab = obs.table("ruan_base", families=obs.PAPER_FAMILIES)
    >>> res = obs.holdout(tab.matrix.drop(columns="GSM8K"), tab.matrix["GSM8K"], tab.models["C"])
    >>> res.table["split"].value_counts().to_dict()
    {'train': 47, 'test': 33}
    """
    frame = _matrix(matrix, "holdout")
    cutoff = validate.positive(cutoff, "cutoff")
    if isinstance(target, pd.Series) and target.name in frame.columns:
        raise ArgumentError(f"holdout: target {target.name!r} is also a column of the matrix; drop it from the "
                            f"matrix (its held-out values would enter the capability measures).")
    y = _aligned(target, frame.index, "target", "holdout")
    c = _aligned(compute, frame.index, "compute", "holdout")
    train = (c <= cutoff).to_numpy()
    if train.sum() == 0 or train.all():
        raise DataError(f"holdout: cutoff {cutoff:.3g} FLOPs puts {int(train.sum())} of {len(train)} models in the "
                        f"training set; it needs models on both sides.")
    caps = capabilities(frame[train], n_components, **capability_options)
    fit = predict_benchmark(caps, y[train].dropna(), floor_max=floor_max)
    test_scores = caps.project(frame[~train])
    pred = pd.Series(np.nan, index=frame.index)
    pred[train] = fit.predict(caps.scores)
    pred[~train] = fit.predict(test_scores)
    tab = pd.DataFrame({"split": np.where(train, "train", "test"), "C": c, "observed": y, "predicted": pred},
                       index=frame.index)
    test = tab[~train].dropna(subset=["observed"])
    if test.empty:
        raise DataError("holdout: no test model has an observed target.")
    err = test["observed"] - test["predicted"]
    return Holdout(tab, fit.mse, float(np.mean(err**2)), float(np.mean(np.abs(err))), caps, fit)


__all__ = [
    "BENCHMARKS",
    "CUTOFF_FLOPS",
    "PAPER_FAMILIES",
    "PUBLISHED_EXPLAINED",
    "BenchmarkFit",
    "Capabilities",
    "Efficiency",
    "Holdout",
    "ObservationalTable",
    "capabilities",
    "compute_efficiency",
    "holdout",
    "predict_benchmark",
    "table",
]
