"""jaxscale.schedule against closed forms and direct sums, and the bad input of run-aware data (each error names
the run and the row or line)."""

import math

import numpy as np
import pandas as pd
import pytest

import jaxscale
from jaxscale import DataError, ScalingData, datasets, schedule as sch
from jaxscale._io import write_atomic
from jaxscale.schedule import ANNEAL_DECAY, Schedule, covariates, history

# Luo et al. (2025)'s multi-power constants of their 400M model (the authors' repository) and its schedule
MP_400M = dict(L0=2.375, A=0.654, alpha=0.429, B=523.425, C=2.025, beta=0.594, gamma=0.635)
MP_SCHEDULES = (Schedule("cosine", steps=24000, warmup=500, peak=3e-4, final=0.1),
                Schedule("wsd", steps=24000, warmup=500, peak=3e-4, final=0.1, decay=0.2))


# ------------------------------------------------------------------------------------------------ schedules
def closed_form(s: Schedule, t: int) -> float:
    t = min(t, s.steps)
    peak, low, w, T = s.peak, s.peak * s.final, s.warmup, s.steps
    if t < w:
        return peak * t / w
    u = (t - w) / (T - w)
    if s.kind == "constant":
        return peak
    if s.kind == "cosine":
        return low + (peak - low) * (1 + math.cos(math.pi * u)) / 2
    if s.kind == "linear":
        return peak - (peak - low) * u
    start = T - round(s.decay * T)                        # wsd
    return peak if t <= start else peak - (peak - low) * (t - start) / (T - start)


@pytest.mark.parametrize("s", [Schedule("cosine", 300, 30, 2e-3, 0.1), Schedule("constant", 300, 30, 2e-3),
                               Schedule("linear", 300, 0, 2e-3, 0.0), Schedule("wsd", 300, 30, 2e-3, 0.1, 0.2),
                               Schedule("wsd", 301, 7, 1.0, 0.0, 0.33)], ids=lambda s: s.kind)
def test_each_kind_follows_its_closed_form(s):
    steps = np.arange(s.steps + 6)                        # past the end the LR stays at its last value
    np.testing.assert_allclose(s.lr(steps), [closed_form(s, int(t)) for t in steps], rtol=1e-13, atol=1e-18)
    np.testing.assert_array_equal(s.history(), s.lr(np.arange(s.steps + 1)))
    assert s.lr(s.warmup) == pytest.approx(s.peak)
    assert s.lr(s.steps) == pytest.approx(s.peak * (1.0 if s.kind == "constant" else s.final))


def test_olmo_cosine_runs_log_exactly_the_planned_lr():
    # olmo_ladder README: cosine to 0.1 x peak with max_steps = ceil(20 m N / batch), warmup round(N / batch)
    rows = datasets.load("olmo_cosine")
    rows = rows[rows.run != "peteish1_eval_final"]
    assert rows.run.nunique() == 24
    for run, g in rows.groupby("run"):
        m, N, b = (float(g[c].iloc[0]) for c in ("chinchilla_multiplier", "params", "batch_size_tokens"))
        s = Schedule("cosine", steps=math.ceil(20 * m * N / b), warmup=round(N / b), peak=float(g.lr_peak.iloc[0]),
                     final=0.1)
        before = g.step < s.steps
        assert before.sum() >= len(g) - 1
        np.testing.assert_allclose(s.lr(g.step[before]), g.lr[before], rtol=1e-12, err_msg=run)


def test_history_interpolates_between_logged_rows():
    lr = history([3, 5, 9], [0.3, 0.6, 0.2], until=11)
    want = [0.0, 0.1, 0.2, 0.3, 0.45, 0.6, 0.5, 0.4, 0.3, 0.2, 0.2, 0.2]   # rise from 0, linear, then flat
    np.testing.assert_allclose(lr, want, rtol=1e-14)
    np.testing.assert_allclose(history([0, 2], [1.0, 0.0]), [1.0, 0.5, 0.0])   # step 0 logged: no rise added
    s = Schedule("linear", 1000, 100, 1e-3, 0.0)
    at = np.array([0, 100, 400, 1000])                    # the kinks of a linear schedule: exact
    np.testing.assert_allclose(history(at, s.lr(at)), s.history(), rtol=1e-12, atol=1e-18)


# ------------------------------------------------------------------------------------------------ covariates
def direct_areas(eta, lam=ANNEAL_DECAY):
    """S1 and S2 by their definitions: a running sum, and Tissue et al.'s recursion counted from the peak."""
    w = int(np.flatnonzero(eta == eta.max())[0])
    s1, s2, m = [0.0], [0.0], 0.0
    for i in range(1, len(eta)):
        s1.append(s1[-1] + eta[i])
        m = lam * m + (eta[i - 1] - eta[i]) if i > w else 0.0
        s2.append(s2[-1] + m)
    return np.array(s1), np.array(s2)


@pytest.mark.parametrize("name", ["wsd", "cosine", "bumpy"])
def test_s1_and_s2_equal_their_direct_sums(name):
    rng = np.random.default_rng(0)
    if name == "bumpy":       # rises after the peak too: they count as negative drops in S2
        eta = Schedule("cosine", 3000, 200, 1e-3, 0.1).history() * (1 + 0.05 * rng.standard_normal(3001))
        eta[:200] = np.linspace(0, 1e-3, 200)
        eta = np.abs(eta)
    else:
        eta = Schedule(name, 3000, 200, 1e-3, 0.1, 0.3).history()
    at = np.array([1, 150, 200, 201, 1500, 2100, 2999, 3000])
    cov = covariates(eta, at, tokens_per_step=4096.0, peak=2e-3)
    s1, s2 = direct_areas(eta)
    np.testing.assert_allclose(cov["S1"], s1[at], rtol=1e-12)
    np.testing.assert_allclose(cov["S2"], np.maximum(s2[at], sch.FLOOR), rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(cov["S1_tokens"], s1[at] * 4096 / 2e-3, rtol=1e-12)
    np.testing.assert_allclose(cov["S2_peak"], np.maximum(s2[at] / 2e-3, sch.FLOOR), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(cov["S2_tokens"], np.maximum(s2[at] * 4096 / 2e-3, sch.FLOOR), rtol=1e-9, atol=1e-9)
    assert all(np.all(v >= sch.FLOOR) for v in cov.values()) and set(cov) == set(sch.KEYS)


def exact_multi_power(p, eta, t):
    """Luo et al.'s Eq. 5 summed step by step over the LR drops after the peak (no quadrature)."""
    area = np.concatenate([[0.0], np.cumsum(eta[1:])])
    w = int(np.argmax(eta >= eta.max()))
    k = np.arange(w + 1, t + 1)
    s_k = area[t] - area[k - 1]                            # S_k(t) = sum_{tau=k..t} eta_tau
    g = 1 - (p["C"] * eta[k] ** -p["gamma"] * s_k + 1) ** -p["beta"]
    return p["L0"] + p["A"] * area[t] ** -p["alpha"] - p["B"] * np.sum((eta[k - 1] - eta[k]) * g)


@pytest.mark.parametrize("s", MP_SCHEDULES, ids=lambda s: s.kind)
def test_multi_power_quadrature_matches_the_per_step_sum(s):
    at = np.array([600, 3000, 12000, 18000, 19500, 21000, 23000, 24000])
    law = jaxscale.laws.get("multi_power")
    eta = s.history()
    got = np.asarray(law.predict(MP_400M, **covariates(eta, at)))
    want = np.array([exact_multi_power(MP_400M, eta, int(t)) for t in at])
    np.testing.assert_allclose(got, want, rtol=1e-4)
    assert want[-1] < want[2] - 0.05                       # the anneal's drop is there to be integrated


@pytest.mark.parametrize("run", ["190M-1xC-rerun", "1B-1xC", "760M-2xC"])
def test_covariates_from_logged_rows_agree_with_the_planned_schedule(run):
    # Stated tolerance, past 10% of training: S1 within 1% (the rows miss the warmup's kink), S2 and S2_peak
    # within 0.1% of their final values, and the tissue and multi_power losses within 0.2%.
    rows = datasets.load("olmo_cosine")
    g = rows[rows.run == run]
    m, N, b = (float(g[c].iloc[0]) for c in ("chinchilla_multiplier", "params", "batch_size_tokens"))
    plan = Schedule("cosine", steps=math.ceil(20 * m * N / b), warmup=round(N / b), peak=float(g.lr_peak.iloc[0]),
                    final=0.1)
    at = g.step.to_numpy()
    late = at >= 0.1 * plan.steps
    planned = covariates(plan.history(at[-1]), at, tokens_per_step=b, peak=plan.peak)
    logged = covariates(history(at, g.lr.to_numpy()), at, tokens_per_step=b, peak=plan.peak)
    np.testing.assert_allclose(logged["S1"][late], planned["S1"][late], rtol=1e-2)
    for key in ("S2", "S2_peak"):
        np.testing.assert_allclose(logged[key][late], planned[key][late], atol=1e-3 * planned[key][-1])
    tissue = dict(L0=2.5, A=0.5, alpha=0.5, C=1e-3 * plan.peak / 3e-4)
    for law, p in ((jaxscale.laws.get("tissue"), tissue), (jaxscale.laws.get("multi_power"), MP_400M)):
        np.testing.assert_allclose(np.asarray(law.predict(p, **logged))[late],
                                   np.asarray(law.predict(p, **planned))[late], rtol=2e-3, err_msg=law.name)
    data = ScalingData.from_frame(g, aliases=False, run="run", step="step", lr="lr", batch_size="batch_size_tokens",
                                  lr_peak="lr_peak", loss="loss_c4")
    for key in sch.KEYS:                                   # from_frame computes the logged covariates
        np.testing.assert_array_equal(data.covariates[key], logged[key], err_msg=key)


# ------------------------------------------------------------------------------------------------ bad input
def runs(**over):
    base = {"run": ["a", "a", "a", "b", "b", "b"], "step": [100, 200, 300, 100, 200, 300],
            "lr": [1e-3, 1e-3, 5e-4, 2e-3, 1e-3, 5e-4], "loss": [4.0, 3.5, 3.2, 4.1, 3.6, 3.3]}
    base.update(over)
    return pd.DataFrame(base)


ROLES = dict(run="run", step="step", lr="lr", loss="loss")


def test_steps_not_increasing_name_the_run_and_the_row(tmp_path):
    with pytest.raises(DataError, match=r"^run 'b': steps must increase within a run; row 5 \(0-based row index\) "
                                        r"has step 200 after step 300"):
        ScalingData.from_frame(runs(step=[100, 200, 300, 100, 300, 200]), **ROLES)
    with pytest.raises(DataError, match=r"run 'a': steps must increase.*row 1 .* has step 100 after step 100"):
        ScalingData.from_frame(runs(step=[100, 100, 300, 100, 200, 300]), **ROLES)
    path = tmp_path / "runs.csv"
    write_atomic(path, runs(step=[100, 300, 200, 100, 200, 300]).to_csv(index=False))
    with pytest.raises(DataError, match=r"run 'a': steps must increase within a run; line 4 has step 200 after "
                                        r"step 300"):
        ScalingData.from_csv(path, **ROLES)
    with pytest.raises(DataError, match=r"run 'a': step must be a whole number >= 0; row 1 .* has 150.5"):
        ScalingData.from_frame(runs(step=[100, 150.5, 300, 100, 200, 300]), **ROLES)
    with pytest.raises(DataError, match=r"steps must increase.*row 2 \(0-based row index\)"):
        ScalingData.from_arrays(step=[1, 3, 2], lr=[1.0, 1.0, 1.0], loss=[3.0, 2.9, 2.8])


@pytest.mark.parametrize("bad", [-1e-4, np.nan, np.inf])
def test_negative_or_non_finite_lr_names_the_run_and_the_row(bad):
    lr = [1e-3, 1e-3, 5e-4, 2e-3, bad, 5e-4]
    with pytest.raises(DataError, match=rf"^run 'b': the learning rate must be finite and >= 0; row 4 \(0-based row "
                                        rf"index\) has {bad!r}"):
        ScalingData.from_frame(runs(lr=lr), **ROLES)
    with pytest.raises(DataError, match=r"run 'b': the learning rate must be finite"):
        ScalingData.from_frame(runs(lr=lr), schedule="constant:steps=300", **ROLES)   # checked with a plan too


def test_a_checkpoint_without_its_history_names_the_run_and_the_row():
    late = runs(step=[100, 200, 300, 5000, 5100, 5200])
    with pytest.raises(DataError, match=r"^run 'b': its first checkpoint \(row 3 \(0-based row index\), step 5000\) "
                                        r"comes without the run's earlier history; give the rows from the start"):
        ScalingData.from_frame(late, **ROLES)
    with pytest.raises(DataError, match=r"run 'a': its first checkpoint \(row with index label 0, step 100\)"):
        ScalingData.from_frame(runs().iloc[[0, 3, 4, 5]], **ROLES)   # one row alone cannot tell
    earlier = pd.DataFrame({"run": "b", "step": np.arange(100, 5000, 100), "lr": 2e-3})
    with_history = ScalingData.from_frame(late, history=earlier, **ROLES)
    planned = ScalingData.from_frame(late, schedule={"a": "cosine:steps=300,peak=1e-3", "b": "constant:steps=5200,"
                                                     "peak=2e-3"}, **ROLES)
    assert with_history.covariates["S1"][3] == pytest.approx(2e-3 * 4950.5, rel=1e-3)
    assert planned.covariates["S1"][3] == pytest.approx(2e-3 * 5000, rel=1e-12)


@pytest.mark.parametrize("spec,match", [
    ("cosin:steps=100", r"schedule 'cosin:steps=100': unknown kind 'cosin'; expected one of \['cosine', 'constant', "
                        r"'wsd', 'linear'\]"),
    ("cosine:steps=100,warmup=100", r"warmup \(100\) must be shorter than steps \(100\)"),
    ("wsd:steps=1000,warmup=950,decay=0.1", r"the WSD decay \(0.1 of 1000 steps\) starts before the warmup \(950 "
                                            r"steps\) ends"),
    ("cosine:steps=100,warmpu=3", r"unknown key 'warmpu'; expected some of \['steps', 'warmup', 'peak', 'final', "
                                  r"'decay'\]"),
    ("cosine:warmup=3", r"give steps=<total optimizer steps>"),
    ("cosine:steps=1e3,peak=high", r"peak must be a number; got 'high'"),
    ("cosine:steps=100,final=2", r"final must be a fraction of the peak in \[0, 1\]"),
    ("cosine:steps=10.5", r"steps must be a whole number >= 0; got 10.5"),
    ({"kind": "wsd", "steps": 100, "decay_frac": 0.2}, r"unknown field\(s\) \['decay_frac'\]"),
    (["cosine"], r"schedule must be a Schedule, 'kind:key=value,...' or a mapping run -> schedule; got list"),
])
def test_bad_schedule_specs(spec, match):
    with pytest.raises(jaxscale.errors.JaxscaleError, match=match):
        ScalingData.from_frame(runs(), schedule=spec, **ROLES)


def test_per_run_specs_name_the_run():
    with pytest.raises(DataError, match=r"schedule of run 'b' 'linear:steps=300,warmup=400': warmup \(400\) must be "
                                        r"shorter than steps \(300\)"):
        ScalingData.from_frame(runs(), schedule={"a": "constant:steps=300", "b": "linear:steps=300,warmup=400"},
                               **ROLES)
    with pytest.raises(DataError, match=r"no schedule for run\(s\) \['b'\]; give one per run"):
        ScalingData.from_frame(runs(), schedule={"a": "constant:steps=300"}, **ROLES)


def test_history_rows_are_checked():
    late = runs(step=[100, 200, 300, 5000, 5100, 5200])
    with pytest.raises(DataError, match=r"history lacks \[\"lr \(column 'lr'\)\"\]: it needs the data's run, step and "
                                        r"lr columns"):
        ScalingData.from_frame(late, history=pd.DataFrame({"run": ["b"], "step": [100]}), **ROLES)
    with pytest.raises(DataError, match=r"history lacks \[\"run \(column 'name'\)\"\]"):
        ScalingData.from_frame(late.rename(columns={"run": "name"}), history=pd.DataFrame({"run": ["b"], "step": [100],
                                                                                         "lr": [1e-3]}),
                               **{**ROLES, "run": "name"})
    with pytest.raises(DataError, match=r"history must be a DataFrame of earlier rows"):
        ScalingData.from_frame(late, history={"run": ["b"]}, **ROLES)
    bad = pd.DataFrame({"run": "b", "step": [100, 300, 200], "lr": 1e-3}, index=[7, 8, 9])
    with pytest.raises(DataError, match=r"run 'b': steps must increase within a run; history row 9 has step 200"):
        ScalingData.from_frame(late, history=bad, **ROLES)
    with pytest.raises(DataError, match=r"run 'b': the learning rate must be finite and >= 0; history row 8"):
        ScalingData.from_frame(late, history=bad.assign(step=[100, 200, 300], lr=[1e-3, -1.0, 1e-3]), **ROLES)


def test_roles_found_by_name_defer_their_errors_to_a_curve_law():
    # not mapped, so not asked for: a plain (N, D) law still gets its data; a curve law gets the reason
    frame = runs(step=[100, 300, 200, 100, 200, 300]).assign(N=1e8, D=lambda f: f.step * 1e6)
    data = ScalingData.from_frame(frame)
    assert "S1" not in data.covariates and len(data) == 6
    with pytest.raises(DataError, match=r"needs the schedule covariates.*run 'a': steps must increase.*row 2"):
        data.require(["S1", "S2"], "tissue")
