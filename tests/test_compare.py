"""jaxscale.compare: the effective-compute multiplier of a treatment over a baseline (issue 17, item 4).

Every fit here has 20 runs per arm, 4 budgets and the same 100 resamples (as the docstring example of compare),
so one process compiles its programs once (~25 s on 2 cores). The default suite checks the arguments, the joint law,
the matching and a synthetic comparison end to end (library, command line, JSON); the tests on the OLMo ladder's
fits (WSD against cosine, ~1.5 minutes) are slow.
"""

import json
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import jaxscale
from jaxscale import ArgumentError, DataError, LawError
from jaxscale.allocate import compute_optimal
from jaxscale.cli import main
from jaxscale.compare import K_MAX, frontier_kind, joint_law, shared_names

ROLES = dict(N="params", D="tokens", loss="loss_c4", run="run", step="step", lr="lr", lr_peak="lr_peak",
             batch_size="batch_size_tokens")
BUDGETS = [1e19, 1e20, 1e21, 1e22]
RESAMPLES = 100


def _table(name):
    with warnings.catch_warnings():  # olmo_cosine says it drops the one row that is not a ladder run
        warnings.simplefilter("ignore", UserWarning)
        return jaxscale.datasets.read_table(name)[1]


@pytest.fixture(scope="module")
def ladder():
    """The OLMo ladder's cosine runs (without the reruns) and WSD runs (the decay tails, with the constant-LR rows
    they branched off as history), every checkpoint."""
    cos = _table("olmo_cosine")
    cos = cos[~cos["run"].str.endswith("rerun")]
    dec, const = _table("olmo_decay"), _table("olmo_const")
    history = []
    for run, rows in dec.groupby("run", sort=False):
        h = const[(const["size"] == rows["size"].iloc[0]) & (const["step"] < rows["step"].iloc[0])].copy()
        h["run"] = run
        history.append(h)
    cosine = jaxscale.ScalingData.from_frame(cos, aliases=False, **ROLES)
    wsd = jaxscale.ScalingData.from_frame(dec, history=pd.concat(history), aliases=False, **ROLES)
    return cosine, wsd


def _finals(data):
    """Each run's last checkpoint, as a frame of one row per run (N, D, loss, run)."""
    f = data.to_frame()
    return f.loc[f.groupby("run", sort=False)["step"].idxmax(), ["N", "D", "loss", "run"]].reset_index(drop=True)


@pytest.fixture(scope="module")
def wsd_vs_cosine(ladder):
    cosine, wsd = ladder
    return jaxscale.compare("chinchilla", cosine, wsd, at=BUDGETS, final=True, resamples=RESAMPLES, key=0)


# --------------------------------------------------------------------------- the joint law


def test_joint_law_shares_the_exponents_and_keeps_a_coefficient_per_arm():
    j = joint_law("chinchilla")
    assert j.shared == ("alpha", "beta")
    assert j.law.covariates == ("N", "D", "arm")
    names = j.law.param_names
    assert [names[i] for i in j.index[0]] == ["E[baseline]", "A[baseline]", "B[baseline]", "alpha", "beta"]
    assert [names[i] for i in j.index[1]] == ["E[treatment]", "A[treatment]", "B[treatment]", "alpha", "beta"]
    assert joint_law("chinchilla") == j and hash(joint_law("chinchilla")) == hash(j)  # compiled programs reused
    none = joint_law("chinchilla", "none")
    assert none.shared == () and none.law.n_params == 10
    assert joint_law("chinchilla", ["E"]).law.n_params == 9
    assert shared_names("chinchilla", ["beta", "alpha"]) == ("alpha", "beta")  # in the law's order


def test_joint_law_predicts_each_arm_with_its_own_parameters():
    j = joint_law("chinchilla")
    base = jaxscale.laws.get("chinchilla")
    pb = dict(E=1.8, A=400.0, B=410.0, alpha=0.34, beta=0.28)
    pt = dict(E=1.7, A=380.0, B=390.0, alpha=0.34, beta=0.28)
    joint = {**{f"{k}[baseline]": pb[k] for k in "EAB"}, **{f"{k}[treatment]": pt[k] for k in "EAB"},
             "alpha": 0.34, "beta": 0.28}
    N, D = np.array([1e8, 1e9]), np.array([2e9, 2e10])
    both = j.law.predict(joint, N=np.tile(N, 2), D=np.tile(D, 2), arm=np.repeat([1.0, np.e], 2))
    np.testing.assert_allclose(both, np.concatenate([base.predict(pb, N=N, D=D), base.predict(pt, N=N, D=D)]),
                               rtol=1e-12)
    assert j.arm_params(joint, "treatment") == pt


def test_joint_fused_jacobian_agrees_with_autodiff():
    j = joint_law("chinchilla")
    rng = np.random.default_rng(0)
    theta = rng.normal([0.5, 6.0, 6.0, 0.3, 0.3, 0.4, 5.0, 6.5], 0.1, (3, 8))
    logx = np.stack([np.log([1e8, 3e8, 1e9, 1e8]), np.log([2e9, 6e9, 2e10, 4e9]), [0.0, 1.0, 0.0, 1.0]], 1)
    lp, J = j.law.log_predict_jac(tuple(jnp.asarray(theta[:, k:k + 1]) for k in range(8)),
                                  tuple(jnp.asarray(logx[:, k]) for k in range(3)))
    auto = jax.vmap(jax.vmap(jax.value_and_grad(j.law.log_predict), in_axes=(None, 0)), in_axes=(0, None))
    lp_auto, J_auto = auto(jnp.asarray(theta), jnp.asarray(logx))
    np.testing.assert_allclose(lp, lp_auto, rtol=1e-12)
    np.testing.assert_allclose(np.stack(J, -1), J_auto, rtol=1e-10, atol=1e-14)


def test_frontier_kinds():
    assert frontier_kind("chinchilla") == "N"
    assert frontier_kind(jaxscale.laws.get("power", resource="C")) == "C"
    assert frontier_kind("curve_nd") == "N"


# --------------------------------------------------------------------------- bad input, before any fitting


@pytest.mark.parametrize("at, message", [
    ([1e20, -1.0], r"at\[1\] must be > 0"),
    (float("inf"), "at must be a finite number"),
    ([], "at must hold at least one budget"),
    ([[1e20, 1e21]], "1-D list"),
])
def test_bad_budgets_are_argument_errors_before_the_data_is_read(at, message):
    with pytest.raises(ArgumentError, match=message):
        jaxscale.compare("chinchilla", None, None, at=at)   # the arms are not even data


@pytest.mark.parametrize("kwargs, message", [
    (dict(shared="coefficients"), "shared must be one of"),
    (dict(shared=["alpha", "gamma"]), r"shared names \['gamma'\], not parameters of law 'chinchilla'"),
    (dict(resamples=1), "resamples must be an integer >= 2"),
    (dict(level=1.0), "level must be a number strictly between 0 and 1"),
    (dict(match="size"), "match must be one of"),
    (dict(key=1.5), "key must be an int seed"),
])
def test_bad_arguments_are_argument_errors(kwargs, message):
    with pytest.raises(ArgumentError, match=message):
        jaxscale.compare("chinchilla", None, None, at=1e20, **kwargs)


def test_law_without_a_loss_at_a_budget_is_a_law_error():
    with pytest.raises(LawError, match=r"law 'power' has covariates \['N'\]"):
        jaxscale.compare(jaxscale.laws.get("power", resource="N"), None, None, at=1e20)
    with pytest.raises(LawError, match=r"law 'tissue' has covariates \['S1', 'S2'\]"):
        jaxscale.compare("tissue", None, None, at=1e20)


def test_arm_without_the_law_covariates_is_a_data_error():
    arm = dict(N=[1e8, 1e9, 1e10], loss=[3.0, 2.6, 2.3])
    with pytest.raises(DataError, match=r"baseline: Law 'chinchilla' needs covariate\(s\) \['N', 'D'\]"):
        jaxscale.compare("chinchilla", arm, arm, at=1e20)


def test_arms_without_matched_runs_are_a_data_error_naming_them():
    base = dict(N=[1e8, 2e8, 4e8], D=[2e9, 4e9, 8e9], loss=[3.0, 2.8, 2.6])
    other = dict(N=[1.5e8, 3e8, 6e8], D=[2e9, 4e9, 8e9], loss=[3.0, 2.8, 2.6])
    with pytest.raises(DataError, match=r"no run of the treatment matches a baseline run in \(N, D\) \(within a "
                                         r"relative 0.01\): baseline runs row 0 \(N=1e\+08, D=2e\+09\)"):
        jaxscale.compare("chinchilla", base, other, at=1e20)
    with pytest.raises(DataError, match="by its 'run' label"):
        jaxscale.compare("chinchilla", {**base, "run": ["a", "b", "c"]}, {**other, "run": ["x", "y", "z"]}, at=1e20,
                         match="run")
    with pytest.raises(DataError, match="match='group' needs a group label in both arms; the baseline has none"):
        jaxscale.compare("chinchilla", base, other, at=1e20, match="group")


def test_matching_on_labels_or_on_n_and_d_pairs_the_same_ladder_runs(ladder):
    """The ladder's cosine and WSD runs share their names and, within 0.7%, their (N, D); a rerun joins the pair
    of its run (a stratum of both arms' matching runs), and a tolerance below the WSD runs' shortfall in D
    leaves those unmatched."""
    from jaxscale.compare import _match, _runs

    cosine, wsd = ladder
    rb, rt = _runs(cosine, "baseline"), _runs(wsd, "treatment")
    by_nd, _, _ = _match(rb, rt, None, 0.01)
    by_run, _, _ = _match(rb, rt, "run", 0.01)
    assert len(by_nd) == 20 and by_nd == by_run
    assert all(rb.labels[b[0]] == rt.labels[t[0]] for b, t in by_nd)
    strict, unmatched_b, unmatched_t = _match(rb, rt, None, 1e-4)
    assert len(strict) < 20 and len(unmatched_b) == len(unmatched_t) == 20 - len(strict)
    with_rerun = jaxscale.ScalingData.from_frame(_table("olmo_cosine"), aliases=False, **ROLES)
    strata, _, _ = _match(_runs(with_rerun, "baseline"), rt, None, 0.01)
    assert len(strata) == 20 and sum(len(b) == 2 for b, _ in strata) == 4   # 4 sizes x 1xC-rerun


# --------------------------------------------------------------------------- the ladder: WSD against cosine


@pytest.mark.slow
def test_wsd_against_cosine_on_the_olmo_ladder(wsd_vs_cosine):
    res = wsd_vs_cosine
    # every WSD run has a cosine run of its size and Chinchilla multiplier (D within 0.7%)
    assert res.n_pairs == 20 and res.unmatched == {"baseline": [], "treatment": []}
    assert res.settings["n_points"] == {"baseline": 20, "treatment": 20}
    m = res.multiplier
    assert list(m.index) == BUDGETS
    assert np.all(np.isfinite(m[["estimate", "lo", "hi"]].to_numpy()))
    assert np.all((m["lo"] <= m["estimate"]) & (m["estimate"] <= m["hi"]))
    # WSD ends below cosine on all 20 pairs (by 0.02-1.1%): worth more compute than it used, inside the ladder
    inside = m.index <= 1e21
    assert np.all(m["estimate"] > 1.0) and np.all(m["lo"][inside] > 1.0)
    assert res.n_failed < 0.05 * res.n_resamples
    # the multiplier solves L_cosine(k C) = L_wsd(C) on the compute-optimal frontier (allocate's closed form)
    pb, pt = res.params["baseline"], res.params["treatment"]
    assert pb["alpha"] == pt["alpha"] and pb["E"] != pt["E"]
    lt = compute_optimal("chinchilla", pt, BUDGETS).table["L_opt"].to_numpy()
    np.testing.assert_allclose(m["loss_treatment"], lt, rtol=1e-9)
    reached = compute_optimal("chinchilla", pb, m["estimate"].to_numpy() * BUDGETS).table["L_opt"].to_numpy()
    np.testing.assert_allclose(reached, lt, rtol=1e-9)


@pytest.mark.slow
def test_same_key_same_result_and_the_command_line(ladder, wsd_vs_cosine, tmp_path, capsys):
    """The command line on the ladder's final rows gives the library's result exactly: the same matched pairs in
    the same order, the same key, the same draws."""
    cosine, wsd = ladder
    paths = []
    for name, data in (("cosine", cosine), ("wsd", wsd)):
        paths.append(tmp_path / f"{name}.csv")
        _finals(data).to_csv(paths[-1], index=False)
    out = tmp_path / "compare.json"
    rc = main(["compare", str(paths[0]), str(paths[1]), "--compute", *map(str, BUDGETS), "-n", str(RESAMPLES),
               "--out", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "k(C): the treatment at C reaches the loss the baseline reaches at k x C" in printed
    doc = json.loads(out.read_text())
    want = wsd_vs_cosine.to_dict()
    assert doc["kind"] == "compare" and doc["n_pairs"] == 20 and doc["shared"] == ["alpha", "beta"]
    for got, expected in zip(doc["multiplier"], want["multiplier"]):
        for k in ("compute", "estimate", "lo", "hi"):
            assert got[k] == pytest.approx(expected[k], rel=1e-9), k
    assert doc["settings"]["key"] == 0 and doc["settings"]["n_resamples"] == RESAMPLES


@pytest.mark.slow
def test_the_result_reads_and_writes(wsd_vs_cosine, tmp_path):
    res = wsd_vs_cosine
    text = res.table()
    assert "shared by both arms: alpha, beta; 20 matched pairs" in text and "(shared)" in text
    assert repr(res).startswith("CompareResult(chinchilla, shared=['alpha', 'beta'], 20 pairs; k(C) 1e+19: ")
    path = tmp_path / "out.json"
    assert res.to_json(str(path)) is None
    doc = json.loads(path.read_text())
    assert doc == json.loads(res.to_json())
    assert set(doc["params"]) == {"baseline", "treatment"} and len(doc["pairs"]) == 20
    assert all(len(fp) == 64 for fp in doc["settings"]["data_fingerprint"].values())
    assert {"jaxscale_version", "timestamp", "match_rtol", "level", "frontier"} <= set(doc["settings"])
    assert res.draws.shape == (RESAMPLES, 4) and res.replicates["status"].size == RESAMPLES


# --------------------------------------------------------------------------- the sign of k


@pytest.mark.slow
def test_identical_arms_give_a_multiplier_of_one(ladder):
    """The baseline against itself, plus one treatment run that matches nothing (left out, with a warning)."""
    finals = _finals(ladder[0])
    extra = pd.DataFrame({"N": [5e9], "D": [1e11], "loss": [2.5], "run": ["extra"]})
    treatment = pd.concat([finals, extra], ignore_index=True)
    with pytest.warns(UserWarning, match=r"1 run\(s\) match no run of the other arm .*treatment: extra"):
        res = jaxscale.compare("chinchilla", finals, treatment, at=BUDGETS, resamples=RESAMPLES, key=0)
    assert res.unmatched == {"baseline": [], "treatment": ["extra"]}
    m = res.multiplier
    np.testing.assert_allclose(m[["estimate", "lo", "hi"]].to_numpy(), 1.0, atol=1e-6)
    np.testing.assert_allclose(m["loss_baseline"], m["loss_treatment"], rtol=1e-12)


@pytest.mark.slow
def test_a_treatment_with_lower_loss_is_worth_more_compute(ladder):
    finals = _finals(ladder[0])
    lower = finals.assign(loss=0.99 * finals["loss"])
    res = jaxscale.compare("chinchilla", finals, lower, at=BUDGETS, resamples=RESAMPLES, key=0)
    m = res.multiplier
    assert np.all(m["estimate"] > 1.0) and np.all(m["lo"] > 1.0)
    assert np.all(m["loss_treatment"] < m["loss_baseline"])
    assert np.all(m["estimate"] < K_MAX)


def _synthetic(factor):
    """20 runs (5 sizes x 4 token multipliers) of a Chinchilla law, the treatment's losses ``factor`` times the
    baseline's, each with 0.2% noise (the docstring example of compare)."""
    N, tokens_per_param = np.meshgrid([1e8, 2e8, 4e8, 8e8, 1.6e9], [10.0, 20.0, 40.0, 80.0])
    N, D = N.ravel(), (N * tokens_per_param).ravel()
    loss = 1.8 + 400.0 / N**0.34 + 410.0 / D**0.28
    noise = np.exp(np.random.default_rng(0).normal(0.0, 0.002, (2, N.size)))
    return (pd.DataFrame({"N": N, "D": D, "loss": loss * noise[0]}),
            pd.DataFrame({"N": N, "D": D, "loss": factor * loss * noise[1]}))


def test_a_synthetic_comparison_from_the_library_and_the_command_line(tmp_path, capsys):
    """A treatment 2% below the baseline everywhere: k > 1 with the interval above 1; the same key gives the same
    result; the command line and its JSON agree with the library."""
    base, treat = _synthetic(0.98)
    res = jaxscale.compare("chinchilla", base, treat, at=BUDGETS, resamples=RESAMPLES, key=0)
    m = res.multiplier
    assert np.all(m["lo"] > 1.0) and np.all(m["estimate"] < K_MAX)
    assert np.all(m["loss_treatment"] < m["loss_baseline"])
    again = jaxscale.compare("chinchilla", base, treat, at=BUDGETS, resamples=RESAMPLES, key=0)
    np.testing.assert_array_equal(again.draws, res.draws)
    paths = [tmp_path / "base.csv", tmp_path / "treat.csv"]
    base.to_csv(paths[0], index=False)
    treat.to_csv(paths[1], index=False)
    out = tmp_path / "compare.json"
    assert main(["compare", *map(str, paths), "--compute", *map(str, BUDGETS), "-n", str(RESAMPLES),
                 "--out", str(out)]) == 0
    assert "k(C): the treatment at C reaches the loss the baseline reaches at k x C" in capsys.readouterr().out
    doc = json.loads(out.read_text())
    assert doc == json.loads(res.to_json()) | {"settings": doc["settings"], "seconds": doc.get("seconds")}
    for got, want in zip(doc["multiplier"], res.to_dict()["multiplier"]):
        assert got["estimate"] == pytest.approx(want["estimate"], rel=1e-9)


# --------------------------------------------------------------------------- command-line errors


def test_command_line_errors_are_one_line(tmp_path, capsys):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    pd.DataFrame({"N": [1e8, 2e8, 4e8], "D": [2e9, 4e9, 8e9], "loss": [3.0, 2.8, 2.6]}).to_csv(a, index=False)
    pd.DataFrame({"N": [3e8, 6e8, 9e8], "D": [2e9, 4e9, 8e9], "loss": [3.0, 2.8, 2.6]}).to_csv(b, index=False)
    with pytest.raises(SystemExit) as e:
        main(["compare", str(a), str(b), "--compute", "-1e20"])
    assert e.value.code == 2
    assert "--compute" in capsys.readouterr().err
    assert main(["compare", str(a), str(b), "--compute", "1e20"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jaxscale: error: no run of the treatment matches a baseline run in (N, D)")
    assert err.count("\n") == 1
    assert main(["compare", str(a), "nope", "--compute", "1e20"]) == 2
    assert "TREATMENT 'nope' is neither an existing file nor a dataset" in capsys.readouterr().err


# --------------------------------------------------------------------------- loss curves across sizes


@pytest.mark.slow
def test_curve_nd_on_every_checkpoint_of_the_ladder(ladder):
    """curve_nd fitted to every checkpoint of both arms (2,294 rows), each arm's loss at (N, D) the end of a run
    under its own schedule (jaxscale.compare.end_of_run). ~2 minutes on 2 cores."""
    cosine, wsd = ladder
    res = jaxscale.compare("curve_nd", cosine, wsd, at=BUDGETS, resamples=20, key=0)
    assert res.n_pairs == 20 and res.settings["n_points"] == {"baseline": len(cosine), "treatment": len(wsd)}
    ends = res.settings["end_of_run"]
    # the WSD schedule stays at its peak LR for 90% of a run: about 0.93 peak-LR tokens per token, cosine 0.55
    assert ends["treatment"]["S1_tokens"] > ends["baseline"]["S1_tokens"]
    m = res.multiplier
    assert np.all(np.isfinite(m["estimate"])) and np.all((m["lo"] <= m["estimate"]) & (m["estimate"] <= m["hi"]))
    assert m["estimate"][1e20] > 1.0
