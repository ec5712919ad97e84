"""Calibrated forecasts: leave-future-out folds, the spread model, stacking, run-aware intervals, robustness."""

import json
import re
import warnings

import numpy as np
import pandas as pd
import pytest

import jaxscale
from jaxscale.errors import ArgumentError, FitError, LawError
from jaxscale.forecast import Calibration, CalibrationUnavailable, Forecast, backtest, calibrate, forecast
from jaxscale.forecast.calibration import fold_cutoffs, weighted_quantile
from jaxscale.forecast.stacking import stacking_weights

POWER = jaxscale.laws.get("power", resource="x")
TRUE = {"E": 0.5, "A": 40.0, "alpha": 0.3}
# 40 training points over 3 decades, 10 held out up to 3x beyond the largest (as in test_forecast.py).
X = np.concatenate([np.logspace(2, 5, 40), np.logspace(5.05, 5.5, 10)])
SPLIT = {"x": 1e5}


def power_data(seed, noise=0.02):
    y = POWER.predict(TRUE, x=X) * np.exp(noise * np.random.default_rng(seed).standard_normal(X.size))
    return {"x": X, "loss": y}


def broken_data(seed, noise=0.02):
    """The loss steepens after a break at x = 3e4, in the top third of the training range: ``power`` is wrong
    beyond it."""
    bp = jaxscale.laws.get("broken_power")
    y = bp.predict({"a": 0.5, "b": 40.0, "c0": 0.3, "c1": 0.15, "d1": 3e4, "f1": 0.3}, x=X)
    return {"x": X, "loss": y * np.exp(noise * np.random.default_rng(seed).standard_normal(X.size))}


def test_fold_cutoffs_follow_the_rules():
    t = np.log(np.arange(1.0, 41.0))
    u = fold_cutoffs(t, n_min=5)
    # at most MAX_FOLDS, increasing, each with >= 5 points at or below it and >= 1 above, and spanning >= half
    assert 2 <= u.size <= 12 and np.all(np.diff(u) > 0)
    below = (t[None, :] <= u[:, None]).sum(1)
    assert np.all(below >= 5) and np.all(below < t.size)
    assert np.all(u - t.min() >= 0.5 * (t.max() - t.min()) - 1e-12)
    assert u[-1] == t[-2]  # the last fold forecasts the largest scale from all the others
    # Repeated scales count once: 3 distinct scales with 4 points each allow only 1 fold with 5 points below.
    with pytest.raises(CalibrationUnavailable, match=r"needs at least 2 internal cutoffs.*12 training points on 3 "
                                                     r"distinct scales allow 1"):
        fold_cutoffs(np.repeat(np.log([1.0, 2.0, 3.0]), 4), n_min=5)


def test_weighted_quantile_matches_repeated_values():
    x, w = np.array([3.0, 1.0, 2.0]), np.array([1.0, 2.0, 1.0])
    rep = np.array([1.0, 1.0, 2.0, 3.0])
    assert weighted_quantile(x, w, 0.5) == pytest.approx(np.quantile(rep, 0.5), abs=0.26)
    assert weighted_quantile(x, w, [0.0, 1.0]).tolist() == [1.0, 3.0]


def test_calibration_measures_noise_and_extrapolation_error():
    data = jaxscale.ScalingData.from_arrays(**power_data(0))
    point = jaxscale.fit(POWER, data, starts=64, key=0)
    cal = calibrate(POWER, data, point.theta, 3, axis="x", options={}, key=0)
    # sigma0 is the data's noise (2%), within the scatter of a robust scale from 50 points (~15%).
    assert 0.014 < cal.sigma0 < 0.026
    # Every pair is a genuine forecast: beyond its fold's cutoff, with the weights of each fold summing to 1/n_folds.
    p = cal.pairs
    cut = np.log([f["cutoff"] for f in cal.folds])
    assert np.all(p["distance"] > 0) and np.allclose(p["distance"], np.log(X[p["row"]]) - cut[p["fold"]])
    n_ok = len(np.unique(p["fold"]))
    assert np.allclose(np.bincount(p["fold"], p["weight"])[np.unique(p["fold"])], 1.0 / n_ok)
    assert np.allclose(p["z"], p["error"] / cal.scale(p["distance"]))
    # The spread grows with the distance and is sigma0 inside the data.
    assert cal.scale(0.0) == pytest.approx(cal.sigma0) and cal.scale(2.0) >= cal.scale(1.0)
    assert np.array_equal(cal.distance([10.0, 1e9]), [0.0, np.log(1e9) - cal.t_max])
    # JSON round trip.
    again = Calibration.from_dict(json.loads(json.dumps(cal.to_dict())))
    assert again.tau == cal.tau and np.array_equal(again.pairs["z"], cal.pairs["z"])


def test_calibrated_is_the_default_and_records_its_model(tmp_path):
    bt = backtest(POWER, power_data(1), split=SPLIT, starts=64, key=0)
    assert bt.summary["method"] == "calibrated" and bt.forecast.log_samples.shape == (2000, 10)
    cal = bt.provenance["settings"]["calibration"]
    assert cal["axis"] == "x" and cal["n_folds"] >= 2 and cal["n_pairs"] == len(cal["pairs"]["z"])
    assert len(bt.provenance["settings"]["distance"]) == 10
    # The point forecast is the fit's, as with method="fit"; only the interval differs.
    fit = backtest(POWER, power_data(1), split=SPLIT, starts=64, key=0, method="fit")
    assert np.array_equal(bt.table["predicted"], fit.table["predicted"])
    # Scores: interval score and PIT against their definitions, coverage at every standard level.
    t = bt.table
    a = 0.1
    by_hand = (t.hi - t.lo) + 2 / a * np.maximum(t.lo - t.actual, 0) + 2 / a * np.maximum(t.actual - t.hi, 0)
    assert np.allclose(t.interval_score, by_hand) and np.allclose(t.rel_interval_score, by_hand / t.actual)
    draws = bt.forecast.log_samples
    assert np.allclose(t.pit, (draws < np.log(t.actual.to_numpy())).mean(0))
    assert set(bt.summary["coverage_by_level"]) == {"0.5", "0.8", "0.9", "0.95"}
    assert bt.summary["coverage_by_level"]["0.9"] == bt.summary["coverage"]
    # Re-scored from its JSON, the same numbers: the calibration model travels with the forecast.
    bt.forecast.to_json(tmp_path / "fc.json")
    loaded = Forecast.load(tmp_path / "fc.json")
    assert loaded.check(t.actual.to_numpy()).summary == bt.summary
    assert loaded.provenance["settings"]["calibration"]["tau"] == cal["tau"]


def test_same_key_same_calibrated_forecast():
    run = lambda key: backtest(POWER, power_data(2), split=SPLIT, starts=32, key=key)  # noqa: E731
    a, b, c = run(3), run(3), run(4)
    assert np.array_equal(a.forecast.log_samples, b.forecast.log_samples)
    pd.testing.assert_frame_equal(a.table, b.table)
    assert not np.array_equal(a.forecast.log_samples, c.forecast.log_samples)


def test_too_few_scales_fall_back_to_the_bootstrap_with_a_warning():
    d = power_data(0)
    data = {"x": d["x"][:6], "loss": d["loss"][:6]}  # 3 parameters: folds need 5 points below a cutoff
    with warnings.catch_warnings(record=True) as caught:  # the fallback's bootstrap also reports its failed replicates
        warnings.simplefilter("always")
        fc = forecast(POWER, data, at={"x": 1e6}, starts=16, key=0, resamples=50)
    assert any(re.search(r"needs at least 2 internal cutoffs.*Fell back to method='bootstrap'", str(w.message))
               for w in caught), [str(w.message) for w in caught]
    assert fc.provenance["settings"]["fallback"]["method"] == "bootstrap"
    assert any("Fell back" in w for w in fc.provenance["warnings"])


@pytest.mark.slow  # ~11 s: two laws' folds; the default suite stays under 10 min, CI runs -m slow
def test_law_list_stacks_by_leave_future_out_score(tmp_path):
    # The truth steepens beyond a break: broken_power extrapolates it, power does not, and stacking says so.
    data = broken_data(0, noise=0.005)
    bt = backtest(["power", "broken_power"], data, split=SPLIT, starts=32, key=0)
    w = bt.forecast.weights
    assert set(w) == {"power", "broken_power"} and sum(w.values()) == pytest.approx(1.0)
    assert w["broken_power"] > w["power"]
    stack = bt.provenance["stacking"]
    assert stack["n_pairs"] > 0 and stack["axis"] == "x" and set(bt.provenance["laws"]) == {"power", "broken_power"}
    assert "laws (stacked by leave-future-out log score): power" in bt.report()
    bt.forecast.to_json(tmp_path / "stack.json")
    doc = json.loads((tmp_path / "stack.json").read_text())
    assert [d["law"] for d in doc["laws"]] == ["power", "broken_power"]
    loaded = Forecast.load(tmp_path / "stack.json")
    assert loaded.weights == w and [law.name for law in loaded.laws] == ["power", "broken_power"]
    assert repr(loaded).startswith("Forecast(power+broken_power, calibrated")


def test_stacking_weights_prefer_the_law_that_forecast_better():
    z = np.random.default_rng(0).standard_normal(60)

    def cal(name, zz):
        pairs = {"fold": np.arange(60) % 3, "row": np.arange(60), "distance": np.ones(60), "error": 0.1 * zz,
                 "z": zz, "weight": np.full(60, 1 / 60)}
        return Calibration(name, "x", 0.0, 1.0, 0.01, 0.1, 0.3, [], pairs)

    w, info = stacking_weights({"a": cal("a", z), "b": cal("b", z)})
    assert w["a"] == pytest.approx(0.5) and info["n_pairs"] == 60  # identical laws share the weight
    w, _ = stacking_weights({"a": cal("a", z), "far": cal("far", 4 * z)})
    assert w["a"] > 0.9


@pytest.mark.parametrize("law,error", [
    (["power", "power"], r"law list names \['power'\] more than once"),
    ([], r"law must be a law name, a Law, or a non-empty list"),
    (["power", "nope"], r"nope"),
])
def test_bad_law_lists_are_clear_errors(law, error):
    with pytest.raises(LawError, match=error):
        backtest(law, power_data(0), split=SPLIT, key=0)


@pytest.mark.parametrize("level", [0.0, 1.0, 1.5, -0.1])
def test_level_outside_zero_one_is_an_error(level):
    with pytest.raises(ArgumentError, match=r"level must be a number strictly between 0 and 1"):
        backtest(POWER, power_data(0), split=SPLIT, key=0, level=level)


def checkpoints(n_runs, per_run=8, seed=0):
    """Checkpoints of ``n_runs`` runs of different sizes: x = tokens seen, one offset per run (its seed)."""
    rng = np.random.default_rng(seed)
    rows = []
    for r in range(n_runs):
        x = np.logspace(2 + 0.3 * r, 3.5 + 0.3 * r, per_run)
        y = POWER.predict(TRUE, x=x) * np.exp(0.02 * rng.standard_normal() + 0.003 * rng.standard_normal(per_run))
        rows += [{"run_id": f"r{r}", "x": v, "loss": w} for v, w in zip(x, y)]
    return pd.DataFrame(rows)


@pytest.mark.slow  # ~8 s: a cluster bootstrap compile; the default suite stays under 10 min, CI runs -m slow
def test_run_column_is_recognised_and_the_bootstrap_resamples_runs():
    frame = checkpoints(5)
    data = jaxscale.ScalingData.from_frame(frame, x="x")  # run_id found without a mapping
    assert data.run is not None and len(set(data.run)) == 5
    fc = forecast(POWER, frame, at={"x": 1e5}, method="bootstrap", resamples=50, starts="warm", key=0, x="x")
    assert fc.provenance["settings"]["bootstrap_method"] == "cluster"
    assert fc.provenance["settings"]["bootstrap"]["method"] == "cluster"


@pytest.mark.slow  # ~7 s; the default suite stays under 10 min, CI runs -m slow
def test_few_runs_warn_and_a_single_run_is_an_error():
    with pytest.warns(RuntimeWarning, match=r"cluster bootstrap over 2 runs.*Give at least 3 runs"):
        fc = forecast(POWER, checkpoints(2), at={"x": 1e5}, method="bootstrap", resamples=50, starts="warm", key=0,
                      x="x")
    assert any("2 runs" in w for w in fc.provenance["warnings"])
    with pytest.raises(FitError, match=r"single run \('r0'\): a cluster bootstrap resamples runs and needs at "
                                       r"least 2.*bootstrap_method='pairs'"):
        forecast(POWER, checkpoints(1), at={"x": 1e5}, method="bootstrap", resamples=50, starts="warm", key=0,
                 x="x")


def test_posterior_draws_that_underflowed_predict_in_fitting_coordinates():
    from jaxscale.forecast.calibration import log_predict

    law = jaxscale.laws.get("chinchilla")
    draws = {"E": np.array([0.0, 1.7]), "A": np.array([400.0, 400.0]), "B": np.array([400.0, 400.0]),
             "alpha": np.array([0.34, 0.34]), "beta": np.array([0.28, 0.28])}
    with pytest.raises(LawError, match="must be > 0"):
        law.from_natural({k: v[0] for k, v in draws.items()})  # what crashed before
    mu = log_predict(law, law.from_natural(draws, check=False), np.log([[1e9, 2e10]]))
    assert np.all(np.isfinite(mu)) and mu[0, 0] < mu[1, 0]  # E = 0 drops the floor: a lower, finite prediction


def test_interpolating_fit_and_unidentified_bootstrap_warn():
    d = power_data(0)
    with pytest.warns(RuntimeWarning, match=r"3 points for 3 free parameters of law 'power': the fit interpolates"):
        jaxscale.fit(POWER, {"x": d["x"][:3], "loss": d["loss"][:3]}, starts=16, key=0)
    # 4 points, 3 parameters: most pairs resamples repeat a point and cannot identify the law.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        jaxscale.bootstrap(POWER, {"x": d["x"][:4], "loss": d["loss"][:4]}, 100, key=0, starts="warm")
    text = [str(w.message) for w in caught]
    assert any(r"bootstrap replicates (" in t and "drew too few distinct points" in t for t in text), text


@pytest.mark.slow  # ~1 min each: 20 data sets, three methods each
@pytest.mark.parametrize("kind", ["right", "wrong"])
def test_calibrated_coverage_near_nominal_where_fit_and_bootstrap_collapse(kind):
    # 20 data sets x 10 held-out points. Points of one data set share its fit, so the pooled coverage has an SE of
    # about 0.06 (per-data-set SD ~0.25 / sqrt(20)). Measured over 12 other seeds (2026-12-01): right law
    # calibrated 0.96 / fit 0.78 / bootstrap 0.93; wrong beyond the break 0.91 / 0.39 / 0.58.
    cov = {m: [] for m in ("calibrated", "fit", "bootstrap")}
    for seed in range(20):
        data = power_data(seed) if kind == "right" else broken_data(seed)
        for m in cov:
            extra = {"resamples": 100, "starts": "warm"} if m == "bootstrap" else {"starts": 32}
            bt = backtest(POWER, data, split=SPLIT, method=m, key=seed, **extra)
            cov[m].append(bt.summary["coverage"])
    c = {m: float(np.mean(v)) for m, v in cov.items()}
    assert 0.78 <= c["calibrated"] <= 1.0, c
    if kind == "wrong":  # the law is wrong beyond the break: resampling the fit cannot see it
        assert c["fit"] < 0.5 and c["bootstrap"] < 0.6 and c["calibrated"] > c["bootstrap"] + 0.25, c


@pytest.mark.slow  # ~9 s; the default suite stays under 10 min, CI runs -m slow
def test_cli_stacks_a_law_list_and_prints_weights_and_calibration(tmp_path, capsys):
    from jaxscale.cli import main

    pd.DataFrame(broken_data(0, noise=0.005)).to_csv(tmp_path / "runs.csv", index=False)
    out = tmp_path / "bt.json"
    rc = main(["backtest", str(tmp_path / "runs.csv"), "--col", "x=x", "--law", "power,broken_power", "--cutoff",
               "x=1e5", "--starts", "32", "--json", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert "laws (stacked by leave-future-out log score): power 0." in printed and "broken_power" in printed
    assert "coverage by level: 50%" in printed and "interval score" in printed
    doc = json.loads(out.read_text())
    assert [d["law"] for d in doc["forecast"]["laws"]] == ["power", "broken_power"]
    assert sum(d["weight"] for d in doc["forecast"]["laws"]) == pytest.approx(1.0)
    # One law: the calibration model is printed.
    rc = main(["backtest", str(tmp_path / "runs.csv"), "--col", "x=x", "--law", "power", "--cutoff", "x=1e5",
               "--starts", "32"])
    printed = capsys.readouterr().out
    assert rc == 0 and "calibration: " in printed and "leave-future-out folds along x" in printed
    # Bad lists are one line on stderr, exit 2.
    rc = main(["backtest", str(tmp_path / "runs.csv"), "--col", "x=x", "--law", "power,power", "--cutoff", "x=1e5"])
    err = capsys.readouterr().err
    assert rc == 2 and "law list names ['power'] more than once" in err and err.count("\n") == 1
    with pytest.raises(SystemExit) as exit_:
        main(["backtest", str(tmp_path / "runs.csv"), "--col", "x=x", "--level", "1.5", "--cutoff", "x=1e5"])
    assert exit_.value.code == 2 and "--level must be a number strictly between 0 and 1, e.g. 0.9; got 1.5" in capsys.readouterr().err


@pytest.mark.slow  # ~15 s: a NUTS compile
def test_bayes_forecast_of_checkpoints_adds_a_new_runs_offset_and_records_diagnostics():
    frame = checkpoints(5, seed=1)
    kw = {"method": "bayes", "key": 0, "num_warmup": 200, "num_samples": 200, "num_chains": 2, "x": "x"}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fc = forecast(POWER, frame, at={"x": [1e4, 1e5]}, **kw)
        flat = forecast(POWER, frame, at={"x": [1e4, 1e5]}, run_effect=False, **kw)
    s = fc.provenance["settings"]
    assert s["run_effect"] is True and flat.provenance["settings"]["run_effect"] is False
    assert s["bayes"]["run_effect"] == 1
    # A new run's interval holds its own offset (true sd 0.02): wider than the rows-as-independent one.
    width = lambda f: np.log(f.interval()[1] / f.interval()[0])  # noqa: E731
    assert np.all(width(fc) > 1.2 * width(flat)), (width(fc), width(flat))
    # Whatever the sampler said is in the forecast, as warnings were raised.
    raised = {str(w.message) for w in caught}
    assert set(fc.provenance["warnings"]) <= raised
    assert s["diagnostics_ok"] == (not any("failed its diagnostics" in m for m in fc.provenance["warnings"]))


@pytest.mark.slow  # ~6 s
def test_a_law_the_folds_cannot_serve_gets_weight_zero_with_its_reason():
    d = power_data(0)
    data = {"x": d["x"][:36:4], "loss": d["loss"][:36:4]}  # 9 points: folds for 3 parameters, not for 6
    with pytest.warns(RuntimeWarning, match=r"law 'broken_power' gets weight 0 in the stack: leave-future-out "
                                            r"calibration needs at least 2 internal cutoffs, each with at least 8"):
        fc = forecast(["power", "broken_power"], data, at={"x": 1e6}, starts=16, key=0)
    assert fc.weights == {"power": 1.0, "broken_power": 0.0}
    assert "broken_power" in fc.provenance["stacking"]["reasons"] and "(weight 0: " in fc.report()
