"""Observational scaling laws (jaxscale.observational): recovery, reproduction of Ruan et al. (2024), errors."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from jaxscale import ArgumentError, DataError, downstream
from jaxscale import observational as obs


@pytest.fixture(scope="module")
def paper():
    """The 21 families the paper analyses (80 models in the table at the bundled commit; 77 in the paper)."""
    return obs.table("ruan_base", families=obs.PAPER_FAMILIES)


def _low_rank(seed=0, n=60, p=8, rank=2, frac=0.15, noise=0.0):
    rng = np.random.default_rng(seed)
    truth = 0.5 + 0.1 * rng.normal(size=(n, rank)) @ rng.normal(size=(rank, p))
    x = truth + noise * rng.normal(size=truth.shape)
    miss = rng.random(truth.shape) < frac
    miss[np.arange(n), rng.integers(0, p, n)] = False  # keep >= 1 observed value per row
    x[miss] = np.nan
    return truth, x, miss


# --------------------------------------------------------------------------- recovery


def test_imputation_recovers_low_rank_entries():
    """A noiseless rank-2 matrix with 15% of its entries missing: rank-2 PCA imputation fills them exactly.

    Tolerance 1e-6 (absolute, on values of order 0.5): the algorithm's fixed point is the truth, and the loop
    stops when the imputed entries move by less than tol=1e-10 in standard units.
    """
    truth, x, miss = _low_rank()
    caps = obs.capabilities(x, n_components=2, impute_rank=2, clip=None, tol=1e-10, max_iter=20000)
    err = np.abs(caps.imputed.to_numpy() - truth)[miss]
    assert miss.sum() > 50
    assert err.max() < 1e-6
    assert caps.explained.sum() == pytest.approx(1.0, abs=1e-10)
    # the loadings span the truth's column space (centred): principal angles ~ 0
    _, _, vt = np.linalg.svd(truth - truth.mean(axis=0), full_matrices=False)
    overlap = np.linalg.svd(vt[:2] @ caps.loadings.to_numpy(), compute_uv=False)
    np.testing.assert_allclose(overlap, 1.0, atol=1e-8)
    assert caps.missing.to_numpy().sum() == miss.sum()


def test_imputation_with_noise_beats_column_means():
    """With noise (sd 0.01) the imputed entries are within a few noise SDs and far better than mean filling."""
    truth, x, miss = _low_rank(seed=1, noise=0.01)
    pca = obs.capabilities(x, n_components=2, impute_rank=2, clip=None)
    mean = obs.capabilities(x, n_components=2, impute="mean", clip=None)
    rms_pca = np.sqrt(np.mean((pca.imputed.to_numpy() - truth)[miss] ** 2))
    rms_mean = np.sqrt(np.mean((mean.imputed.to_numpy() - truth)[miss] ** 2))
    assert rms_pca < 0.03
    assert rms_pca < 0.2 * rms_mean


def _their_impute(x: np.ndarray, n_components=1, max_iter=1000, tol=1e-4):
    """Ruan et al.'s pca_impute (utils/data.py), line by line in NumPy (sklearn's StandardScaler, SimpleImputer,
    PCA.fit_transform / inverse_transform), including its whole-matrix stopping test."""
    mu, sd = np.nanmean(x, 0), np.nanstd(x, 0)
    z = (x - mu) / sd
    miss = np.isnan(z)
    z = np.where(miss, np.nanmean(z, 0), z)
    for _ in range(max_iter):
        c = z.mean(0)
        _, _, vt = np.linalg.svd(z - c, full_matrices=False)
        inv = (z - c) @ vt[:n_components].T @ vt[:n_components] + c
        if np.allclose(z, inv, atol=tol):
            break
        z[miss] = inv[miss]
    return np.clip(z * sd + mu, 0.0, 1.0)


def test_imputation_matches_their_algorithm(paper):
    """On the paper's table our imputation equals a transcription of theirs (1000 iterations, no early stop).

    Tolerance 1e-6 on accuracies: both iterate the same map; theirs runs 1000 iterations, ours stops at a change
    below 1e-8 standard units, so they differ by the remaining contraction (measured 3e-10).
    """
    caps = obs.capabilities(paper.matrix)
    ref = _their_impute(paper.matrix.to_numpy(np.float64))
    np.testing.assert_allclose(caps.imputed.to_numpy(), ref, atol=1e-6, rtol=0)
    assert 0 < caps.n_iter < 1000


def test_project_reproduces_training_scores(paper):
    """Projecting the fitted models again (gaps re-imputed with the fitted imputer) gives their scores."""
    caps = obs.capabilities(paper.matrix)
    np.testing.assert_allclose(caps.project(paper.matrix).to_numpy(), caps.scores.to_numpy(), atol=1e-6)
    # scores are the centred imputed matrix times the orthonormal loadings
    load = caps.loadings.to_numpy()
    np.testing.assert_allclose(load.T @ load, np.eye(3), atol=1e-12)
    assert (load.sum(axis=0) >= 0).all()


def test_compute_efficiency_recovers_family_lines():
    """Scores exactly linear in log C per family: per-family slopes/intercepts and a shared slope are recovered."""
    rng = np.random.default_rng(2)
    fam = np.repeat(["a", "b", "c"], 5)
    logc = rng.uniform(np.log(1e20), np.log(1e24), fam.size)
    theta = {"a": 0.2, "b": 0.2, "c": 0.2}
    nu = {"a": -11.0, "b": -10.0, "c": -12.0}
    s = np.array([theta[f] * lc + nu[f] for f, lc in zip(fam, logc)])
    index = [f"m{i}" for i in range(fam.size)]
    caps = obs.Capabilities(pd.DataFrame({"PC-1": s}, index=index), None, None, None, None, None, None, 0, None)
    c = pd.Series(np.exp(logc), index=index)
    f = pd.Series(fam, index=index)
    for shared in (False, True):
        eff = obs.compute_efficiency(caps, c, f, shared_slope=shared)
        t = eff.table.xs("PC-1", level="component")
        np.testing.assert_allclose(t["slope"], 0.2, rtol=1e-8)
        np.testing.assert_allclose(t["intercept"], [nu[k] for k in t.index], rtol=1e-8)
        np.testing.assert_allclose(t["r2"], 1.0, atol=1e-10)
    assert eff.equivalent_compute(eff.predict([3e22], "b"), "b")[0] == pytest.approx(3e22, rel=1e-10)
    # family b needs less compute than family c for the same capability: exp((nu_b - nu_c) / theta) times less
    ratio = eff.equivalent_compute([0.0], "c")[0] / eff.equivalent_compute([0.0], "b")[0]
    assert ratio == pytest.approx(np.exp(2.0 / 0.2), rel=1e-8)


def test_predict_benchmark_recovers_sigmoid():
    """Noiseless acc = b + (1 - b) sigmoid(alpha + beta^T S): the fit recovers alpha, beta, b to 1e-6."""
    rng = np.random.default_rng(3)
    s = pd.DataFrame(rng.normal(size=(50, 3)) * [2.0, 1.0, 0.5], columns=["PC-1", "PC-2", "PC-3"])
    alpha, beta, floor = -0.5, np.array([1.5, -0.8, 0.6]), 0.1
    acc = floor + (1 - floor) / (1 + np.exp(-(alpha + s.to_numpy() @ beta)))
    caps = obs.Capabilities(s, pd.DataFrame(index=["x"]), None, None, None, None, None, 0, None)
    fit = obs.predict_benchmark(caps, pd.Series(acc, index=s.index, name="target"))
    assert fit.converged
    assert fit.alpha == pytest.approx(alpha, abs=1e-6)
    np.testing.assert_allclose(fit.beta.to_numpy(), beta, atol=1e-6)
    assert fit.floor == pytest.approx(floor, abs=1e-6)
    assert fit.mse < 1e-14
    # the floor is bounded: data with a 0.3 floor and floor_max=0.2 put the fitted floor at the bound
    acc3 = 0.3 + 0.7 / (1 + np.exp(-(alpha + s.to_numpy() @ beta)))
    bounded = obs.predict_benchmark(caps, acc3)
    assert 0.19 < bounded.floor <= 0.2
    plain = obs.predict_benchmark(caps, acc3, floor_max=0.0)
    assert plain.floor == 0.0 and plain.mse > bounded.mse


# --------------------------------------------------------------------------- reproduction (Ruan et al. 2024)


def test_reproduces_published_variance_shares(paper):
    """Shares of variance of the capability PCA on the paper's 21 families (Ruan et al. 2024, Sec. 3.2, Fig. 2).

    Published (on 77 models): "the first PC alone explains nearly 80% of the variation" and "the top 3 PCs
    explaining ~97% of the variance". Measured here (80 models: the table at the bundled commit holds 3 more in
    those families): PC-1 0.821, top 3 0.970. Tolerances: PC-1 +-0.03 ("nearly 80%" is a rounded statement and
    3 added models move it by about a point); top 3 +-0.01 (the "~97%" is stated to the point).
    """
    caps = obs.capabilities(paper.matrix, n_components=3)
    assert paper.matrix.shape == (80, 8)
    assert caps.explained["PC-1"] == pytest.approx(obs.PUBLISHED_EXPLAINED["PC-1"], abs=0.03)
    assert caps.explained.sum() == pytest.approx(obs.PUBLISHED_EXPLAINED["top-3"], abs=0.01)
    # PC-1 is a weighted average of all benchmarks (all loadings positive), as the paper reads it
    assert (caps.loadings["PC-1"] > 0).all()
    # PC-3 is dominated by HumanEval ("programming", Sec. 3.2)
    assert caps.loadings["PC-3"].abs().idxmax() == "HumanEval"


def test_reproduces_log_linear_compute_to_capability(paper):
    """PC-1 is linear in log training FLOPs within each family "(with R^2>0.9)" (Ruan et al. 2024, Sec. 3.3, Fig. 3).

    Which families their figure shows is not in our source, so we test every family with >= 3 models with
    FLOPs (14; a line through 2 models says nothing): 13 of 14 have R^2 > 0.9 (StarCoder2, 3 models: 0.899).
    Asserted: at least 13 of 14 above 0.9 and none below 0.85.
    """
    caps = obs.capabilities(paper.matrix)
    with pytest.warns(UserWarning, match="5 model\\(s\\) excluded"):
        eff = obs.compute_efficiency(caps, paper.models["C"], paper.models["family"])
    assert eff.excluded["family"].value_counts().to_dict() == {"Mistral": 2, "Mixtral": 2, "Qwen1.5": 1}  # no FLOPs
    t = eff.table.xs("PC-1", level="component")
    r2 = t.loc[t["n_models"] >= 3, "r2"]
    assert len(r2) == 14
    assert (r2 > 0.9).sum() >= 13 and r2.min() > 0.85
    assert (t["slope"] > 0).all()


def test_holdout_split_and_error(paper):
    """Held out by compute at Llama-2-7B's 8.4e22 FLOPs (their default cutoff): GSM8K from the other 7 benchmarks.

    The split reproduces the paper's training set: "47 train / 30 test models" (Sec. 4); the test set here has
    33 (28 above the cutoff + 5 without FLOPs, which their split_data also puts in the test set; the bundled
    table has 3 more models than the paper's). The held-out error is not published for this target; measured:
    RMSE 0.080 (in-sample 0.061). Asserted: the measured figures +-0.005 (deterministic fit; the margin allows
    for BLAS-level differences only).
    """
    res = obs.holdout(paper.matrix.drop(columns="GSM8K"), paper.matrix["GSM8K"], paper.models["C"])
    assert (res.table["split"] == "train").sum() == 47
    assert (res.table["split"] == "test").sum() == 33
    assert np.sqrt(res.mse_test) == pytest.approx(0.080, abs=0.005)
    assert np.sqrt(res.mse_train) == pytest.approx(0.061, abs=0.005)
    assert res.fit.converged
    assert res.table["predicted"].notna().all()


@pytest.mark.slow
def test_holdout_beats_compute_only_sigmoid(paper):
    """The paper's premise: capability measures predict a benchmark beyond the cutoff better than compute alone.

    Same split; baseline jaxscale.downstream.fit_accuracy (the `sigmoid` law in log C) on the training models
    with FLOPs, scored on the 28 test models with FLOPs. Measured RMSE: PCs 0.086, log C 0.186 (GSM8K). Asserted:
    the PC-based error below 0.6 of the compute-only one (a margin of about 25% around the measured 0.46).
    """
    res = obs.holdout(paper.matrix.drop(columns="GSM8K"), paper.matrix["GSM8K"], paper.models["C"])
    t = res.table
    train = t[(t["split"] == "train") & (t["observed"] > 0)]  # the log-scale sigmoid cannot fit a score of 0
    test = t[(t["split"] == "test") & t["C"].notna()]
    fit = downstream.fit_accuracy(downstream.accuracy_data(train["observed"].to_numpy(), C=train["C"].to_numpy()))
    base = fit.law.predict(fit.params, C=test["C"].to_numpy())
    rmse_c = np.sqrt(np.mean((test["observed"].to_numpy() - base) ** 2))
    rmse_pc = np.sqrt(np.mean((test["observed"] - test["predicted"]) ** 2))
    assert rmse_pc < 0.6 * rmse_c


# --------------------------------------------------------------------------- errors


def test_errors_name_the_bad_row_or_column():
    m = pd.DataFrame({"A": [0.5, np.nan, 0.7], "B": [0.4, np.nan, 0.6]}, index=["m1", "m2", "m3"])
    with pytest.raises(DataError, match="model 'm2' has no observed benchmark value"):
        obs.capabilities(m, n_components=1)
    m2 = pd.DataFrame({"A": [0.5, 0.6, 0.7], "B": [np.nan] * 3}, index=["m1", "m2", "m3"])
    with pytest.raises(DataError, match="benchmark 'B' has no observed value"):
        obs.capabilities(m2, n_components=1)
    m3 = pd.DataFrame({"A": [0.5, "n/a", 0.7], "B": [0.4, 0.5, 0.6]}, index=["m1", "m2", "m3"])
    with pytest.raises(DataError, match="column 'A', row 'm2' holds 'n/a', which is not a number"):
        obs.capabilities(m3, n_components=1)
    with pytest.raises(DataError, match="expected a finite number"):
        obs.capabilities([[0.1, np.inf], [0.2, 0.3]], n_components=1)
    with pytest.raises(DataError, match="two-dimensional"):
        obs.capabilities([0.1, 0.2], n_components=1)


def test_errors_on_arguments():
    m = pd.DataFrame({"A": [0.5, 0.6, 0.7], "B": [0.4, np.nan, 0.6]}, index=["m1", "m2", "m3"])
    with pytest.raises(ArgumentError, match="n_components=3 exceeds the number of benchmarks \\(2\\)"):
        obs.capabilities(m, n_components=3)
    with pytest.raises(ArgumentError, match="impute must be one of"):
        obs.capabilities(m, n_components=1, impute="knn")
    with pytest.raises(ArgumentError, match="impute_rank=2 must be below the number of benchmarks"):
        obs.capabilities(m, n_components=1, impute_rank=2)
    with pytest.raises(DataError, match="model 'm2' has no value for 'B'"):
        obs.capabilities(m, n_components=1, impute="none")
    with pytest.raises(ArgumentError, match="clip must be"):
        obs.capabilities(m, n_components=1, clip=(1.0, 0.0))


def test_errors_in_fits(paper):
    caps = obs.capabilities(paper.matrix.drop(columns="GSM8K"))
    with pytest.raises(ArgumentError, match="target 'MMLU' is also a benchmark"):
        obs.predict_benchmark(caps, paper.matrix["MMLU"])
    bad = paper.matrix["GSM8K"].copy()
    bad.iloc[4] = np.nan
    with pytest.raises(DataError, match=f"target of model {bad.index[4]!r} is nan"):
        obs.predict_benchmark(caps, bad)
    with pytest.raises(DataError, match="not in the capability scores"):
        obs.predict_benchmark(caps, pd.Series([0.5], index=["nobody"], name="x"))
    with pytest.raises(ArgumentError, match="components must be among"):
        obs.predict_benchmark(caps, paper.matrix["GSM8K"], components=["PC-9"])
    with pytest.raises(ArgumentError, match="target 'GSM8K' is also a column"):
        obs.holdout(paper.matrix, paper.matrix["GSM8K"], paper.models["C"])
    with pytest.raises(DataError, match="needs models on both sides"):
        obs.holdout(paper.matrix.drop(columns="GSM8K"), paper.matrix["GSM8K"], paper.models["C"], cutoff=1.0)
    with pytest.raises(DataError, match="must have the benchmarks"):
        caps.project(paper.matrix)
    with pytest.raises(DataError, match="compute has no entry for model"):
        obs.compute_efficiency(caps, paper.models["C"].iloc[:10], paper.models["family"])
    with pytest.raises(DataError, match="family\\(ies\\) \\['Nope'\\] are not in the table"):
        obs.table("ruan_base", families=["Nope"])
    with pytest.raises(DataError, match="neither an existing file nor a dataset"):
        obs.table("no_such_table")
    c = paper.models["C"].copy()
    c.iloc[0] = -1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataError, match="expected FLOPs > 0"):
            obs.compute_efficiency(caps, c, paper.models["family"])
