"""Forecast and backtest: accuracy, calibration, reproducibility, provenance, bad input, CLI."""

import importlib
import json
import os
import warnings

import numpy as np
import pandas as pd
import pytest

import jaxscale
from jaxscale.errors import ArgumentError, DataError, JaxscaleError
from jaxscale.cli import build_parser

from jaxscale.forecast import BACKTEST_SAMPLES, Forecast, backtest, crps_samples, forecast
from jaxscale.forecast._split import check_counts

# demo_data's 8 budgets run from 1e18 to 1e22 FLOPs: this cutoff fits the 6 smallest (72 runs) and holds out the
# 2.7e21 and 1e22 budgets (24 runs), a 3.7x-14x extrapolation in compute.
CUTOFF = {"C": 1.1e21}
# One compiled shape for every chinchilla test in this file; these tests check the residual interval ("fit"): the
# calibrated default has its own tests in test_calibration.py.
FAST = {"starts": 64, "key": 0, "method": "fit"}
POWER = {"E": 0.5, "A": 40.0, "alpha": 0.3}
# 40 training points over 3 decades, 10 held out up to 3x beyond the largest.
X_POWER = np.concatenate([np.logspace(2, 5, 40), np.logspace(5.05, 5.5, 10)])


def power_data(seed, noise=0.02):
    law = jaxscale.laws.get("power", resource="x")
    y = law.predict(POWER, x=X_POWER) * np.exp(noise * np.random.default_rng(seed).standard_normal(X_POWER.size))
    return law, {"x": X_POWER, "loss": y}


def test_point_forecast_recovers_heldout_truth():
    data = jaxscale.demo_data()
    bt = backtest("chinchilla", data, split=CUTOFF, **FAST)
    assert bt.summary["n_train"] == 72 and bt.summary["n_test"] == 24
    assert (bt.table["C"] > 1.1e21).all() and len(set(bt.table["row"])) == 24
    truth = jaxscale.laws.get("chinchilla").predict(jaxscale.HOFFMANN_UNROUNDED, N=bt.table["N"], D=bt.table["D"])
    # The data carry 1% log-normal noise per run; the law fitted to 72 runs, extrapolated 3.7x-14x in compute, should
    # be within about the per-run noise of the noiseless truth: on demo_data seeds 0-4 the worst held-out point is
    # 0.2%-1.4% off. 2% is twice the per-run noise.
    assert np.max(np.abs(bt.table["predicted"] / truth - 1)) < 0.02
    # Against the noisy held-out runs the error is the noise itself: median |rel error| ~ 0.67 sigma = 0.7%.
    assert bt.summary["median_abs_rel_error"] < 0.02
    # The summary is what the table says.
    t = bt.table
    assert bt.summary["rmse_log"] == pytest.approx(float(np.sqrt(np.mean(np.log(t.predicted / t.actual) ** 2))))
    assert bt.summary["coverage"] == pytest.approx(t.covered.mean())
    assert np.all((t.lo < t.predicted) & (t.predicted < t.hi))
    assert np.array_equal(t.covered, (t.actual >= t.lo) & (t.actual <= t.hi))
    assert np.allclose(t.rel_error, (t.predicted - t.actual) / t.actual)


@pytest.mark.slow  # ~10 s: the default suite stays under 10 min; CI runs -m slow
def test_bootstrap_predictive_interval_covers_near_nominal():
    # 40 independent data sets (2% log-normal noise, known law) x 10 held-out points each = 400 predictions.
    # Points of one data set share its fitted parameters, so the coverages are clustered: the per-data-set
    # coverage has SD ~0.12, so the pooled coverage has SE ~0.12 / sqrt(40) = 0.02. Over 100 other data sets the
    # same procedure covered 92.9% (overcovering slightly, as residual-inflated bootstrap intervals do). A band of
    # +-0.06 around the nominal 90% is 3 SE.
    boot, point = [], []
    for rep in range(40):
        law, data = power_data(rep)
        kw = {"split": {"x": 1e5}, "key": rep}
        boot.append(backtest(law, data, method="bootstrap", resamples=200, starts="warm", **kw).table["covered"])
        point.append(backtest(law, data, method="fit", **kw).table["covered"])
    coverage, point_coverage = np.mean(boot), np.mean(point)
    assert abs(coverage - 0.9) < 0.06, coverage
    # The point fit's residual interval ignores parameter uncertainty: it must undercover relative to the bootstrap
    # (measured: 0.78 against 0.93 over 100 data sets).
    assert point_coverage < coverage - 0.05, (point_coverage, coverage)


def test_same_key_same_result_other_key_differs():
    law, data = power_data(0)
    run = lambda key: backtest(law, data, split={"x": 1e5}, method="bootstrap", resamples=100, starts="warm",
                               key=key)
    a, b, c = run(7), run(7), run(8)
    pd.testing.assert_frame_equal(a.table, b.table)
    assert np.array_equal(a.forecast.log_samples, b.forecast.log_samples)
    assert not np.allclose(a.table["lo"], c.table["lo"])
    assert a.provenance["key"] == 7 and c.provenance["key"] == 8


def test_crps_and_pinball_match_their_definitions():
    rng = np.random.default_rng(0)
    s = rng.lognormal(size=(57, 4))
    y = np.array([0.5, 1.0, 2.0, 30.0])
    brute = np.abs(s - y).mean(0) - 0.5 * np.abs(s[:, None, :] - s[None, :, :]).mean((0, 1))
    assert np.allclose(crps_samples(s, y), brute, rtol=1e-12)
    # One draw: CRPS is the absolute error.
    assert np.allclose(crps_samples(np.array([[2.0, 3.0]]), np.array([1.0, 5.0])), [1.0, 2.0])
    # Pinball of the table: the mean of the two quantile losses, by hand for one point.
    law, data = power_data(1)
    bt = backtest(law, data, split={"x": 1e5}, level=0.8)
    r = bt.table.iloc[-1]
    pin = lambda q, tau: max(tau * (r.actual - q), (tau - 1) * (r.actual - q))
    assert r.pinball == pytest.approx(0.5 * (pin(r.lo, 0.1) + pin(r.hi, 0.9)), rel=1e-12)
    assert bt.summary["level"] == 0.8


@pytest.mark.parametrize("split,error", [
    ({"N": 1.2e7}, (r"split=\{'N': 12000000.0\} leaves 3 training point\(s\) \(train on N <= 1.2e\+07; score the "
                    r"rest\); law 'chinchilla' has 5 free parameter\(s\), and method='fit' builds its predictive "
                    r"interval from the training residuals, which needs at least one residual degree of freedom: at "
                    r"least 6 training points \(more than 5\)")),
    (np.arange(96) < 4, r"split='the mask' leaves 4 training point\(s\)"),
    ({"C": 1e23}, r"holds out no points: all 96 are training points .* at least 1 held-out point is needed"),
    ({"Q": 1e20}, r"split\['Q'\]: no column 'Q'; expected one of the roles \['C', 'D', 'N', 'loss'\]"),
    ("Training", r"split='Training': no column 'Training'"),
    ({"C": "big"}, r"split\['C'\] must be a finite number \(train on C <= it\); got 'big'"),
    (np.ones(10, bool), r"split mask has shape \(10,\); expected \(96,\), one entry per data row"),
    (np.ones(96, int), r"split mask must be booleans \(True = train\).*got dtype int64"),
    (3.5, r"split must be a mapping \{column: cutoff\}"),
])
def test_bad_split_is_a_clear_error(split, error):
    with pytest.raises(DataError, match=error):
        backtest("chinchilla", jaxscale.demo_data(), split=split, **FAST)


def test_bad_flag_column_and_fixed_parameters_count():
    frame = pd.DataFrame({"x": X_POWER, "loss": power_data(0)[1]["loss"], "Training": [1] * 40 + [0] * 9 + [2]})
    with pytest.raises(DataError, match=r"must hold 0 \(held out\) or 1 \(train\); row 49 holds 2"):
        backtest("power", frame, split="Training", x="x")
    with pytest.raises(DataError, match=r"Law 'power' needs covariate\(s\) \['x'\]; the data lacks \['x'\]"):
        backtest("power", frame, split="Training")  # x is never guessed from a column name
    # Fixing parameters lowers the number of training points needed: 2 points suffice for 1 free parameter.
    bt = backtest("power", frame.iloc[:48], split={"x": 130.0}, fixed={"E": 0.5, "A": 40.0}, x="x", method="fit")
    assert bt.summary["n_train"] == 2 and bt.summary["n_test"] == 46
    with pytest.raises(DataError, match="leaves 2 training point.*3 free parameter"):
        backtest("power", frame.iloc[:48], split={"x": 130.0}, x="x")
    with pytest.raises(ArgumentError, match="method must be one of"):
        backtest("power", frame.iloc[:48], split="Training", method="mcmc", x="x")


@pytest.mark.parametrize("kwargs,error", [
    (dict(key="abc"), r"key must be an int seed in \[0, 2\*\*64\) or a jax.random.key; got 'abc'"),
    (dict(resamples=1), r"resamples must be an integer >= 2; got 1"),
    (dict(dtype="bogus"), r"dtype must be 'float32' or 'float64'; got 'bogus'"),
    (dict(fixed={"E": np.nan}), r"fixed E must be a finite number; got nan"),
    (dict(starts=99999999999999999999), r"starts=99999999999999999999 needs about .* GiB of host memory"),
    (dict(method="fit", bootstrap_method="pairs"), r"bootstrap_method applies to method='bootstrap' only"),
    (dict(method="bootstrap", bootstrap_method="wild"), r"bootstrap_method must be one of"),
])
def test_bad_arguments_are_rejected_before_the_data_are_read(kwargs, error):
    with pytest.raises(ArgumentError, match=error):  # the data file does not exist: it is never opened
        backtest("power", "no/such/data.csv", split={"x": 1e3}, **kwargs)


def test_residual_intervals_need_a_residual_degree_of_freedom():
    # 3 training points for the 3 free parameters of `power`: the fit interpolates, its residuals are ~0, and a
    # residual-based interval would collapse onto the point. fit and bootstrap refuse; so does forecast() without a
    # split on 3 points.
    law, data = power_data(0)
    three = {"x": X_POWER[2]}  # x <= the 3rd smallest x
    dof = (r"leaves 3 training point\(s\) \(train on x <= .*; score the rest\); law 'power' has 3 free parameter\(s\), "
           r"and method='{}' builds its predictive interval from the training residuals, which needs at least one "
           r"residual degree of freedom: at least 4 training points \(more than 3\)")
    for method in ("fit", "bootstrap"):
        with pytest.raises(DataError, match=dof.format(method)):
            backtest(law, data, split=three, method=method, key=0)
        with pytest.raises(DataError, match=dof.format(method)):
            forecast(law, data, split=three, at={"x": 1e6}, method=method, key=0)
    first3 = {k: v[:3] for k, v in data.items()}
    with pytest.raises(DataError, match=r"^data has 3 point\(s\); law 'power' has 3 free parameter\(s\), and "
                                        r"method='fit' .* at least 4 training points"):
        forecast(law, first3, at={"x": 1e6}, key=0, method="fit")
    # One residual degree of freedom (E fixed: 2 free parameters, 3 points) is enough, and the interval is a real
    # one: measured widths are 1.3%-1.6% of the prediction for seeds 0-2 at 2% noise, against ~1e-12 for the
    # residuals of an interpolation; 0.5% leaves a factor 2.5 margin.
    bt = backtest(law, data, split=three, fixed={"E": 0.5}, key=0, method="fit")
    t = bt.table
    assert bt.summary["n_train"] == 3 and bt.forecast.log_samples.shape == (3, 47)
    assert np.all((t.lo < t.predicted) & (t.predicted < t.hi)) and np.all((t.hi - t.lo) / t.predicted > 0.005)
    # bayes samples its noise scale (the prior carries it when the data cannot), so it keeps n_train >= n_free.
    desc = {"kind": "cutoff", "cutoff": three, "rule": "train on x <= 126"}
    check_counts(three, desc, law, 3, 47, 3, "bayes")  # accepted: no error
    with pytest.raises(DataError, match=r"leaves 2 training point\(s\) .* 3 free parameter\(s\), so at least 3 "
                                        r"training points are needed \(method='bayes'\)"):
        check_counts(three, desc, law, 2, 48, 3, "bayes")


@pytest.mark.slow
def test_bayes_interval_is_proper_at_as_many_points_as_parameters():  # ~15 s: a NUTS compile for 3 points
    law, data = power_data(0)
    # 3 points for 3 parameters: the posterior is mostly the prior and 600 draws fail the diagnostics, which the
    # forecast says (checked in test_bayes_backtest_uses_the_posterior_predictive)
    with pytest.warns(RuntimeWarning, match="the posterior failed its diagnostics"):
        bt = backtest(law, data, split={"x": X_POWER[2]}, method="bayes", key=0, num_warmup=300, num_samples=300,
                      num_chains=2)
    t = bt.table
    assert bt.summary["n_train"] == 3
    # With no residual degree of freedom sigma's posterior is mostly its prior, so the interval is wide, never the
    # point (an interpolation's residuals are ~1e-12): measured widths 20%-270% of the prediction; 2% is the data's
    # own noise, a 10x margin below the narrowest.
    assert np.all((t.hi - t.lo) / t.predicted > 0.02)


def test_forecast_round_trips_through_json_and_checks_like_backtest(tmp_path):
    data = jaxscale.demo_data()
    heldout = data.subset(data.covariates["C"] > 1.1e21)
    # Made "before the runs": only the training rows and the planned (N, C) of the held-out runs are used.
    fc = forecast("chinchilla", data, split=CUTOFF, at={"N": heldout.covariates["N"], "C": heldout.covariates["C"]},
                  **FAST)
    path = tmp_path / "forecast.json"
    fc.to_json(path)
    doc = json.loads(path.read_text())
    prov = doc["provenance"]
    assert doc["format"] == "jaxscale.forecast/1" and doc["law"] == "chinchilla"
    assert prov["data_fingerprint"] == data.subset(data.covariates["C"] <= 1.1e21).fingerprint()
    assert prov["full_data_fingerprint"] == data.fingerprint() and prov["n_train"] == 72
    assert prov["split"]["cutoff"] == {"C": 1.1e21} and prov["key"] == 0 and prov["method"] == "fit"
    assert prov["jaxscale_version"] == jaxscale.__version__ and prov["timestamp"].endswith("+00:00")
    assert prov["settings"]["fit"]["settings"]["starts"] == "random(64)"

    loaded = Forecast.load(path)
    assert np.array_equal(loaded.log_samples, fc.log_samples) and np.array_equal(loaded.predicted, fc.predicted)
    checked = loaded.check(heldout)  # rows matched by (N, D), D derived from C as in the data
    bt = backtest("chinchilla", data, split=CUTOFF, **FAST)
    cols = ["N", "D", "C", "actual", "predicted", "lo", "hi", "covered", "pinball", "crps"]
    pd.testing.assert_frame_equal(checked.table[cols], bt.table[cols], rtol=1e-12)
    assert checked.table["row"].tolist() == bt.table["row"].tolist()
    assert checked.summary == {**bt.summary}
    # a check records when, and on which runs, it was made; a backtest scored its held-out runs as it forecast
    assert checked.checked["actual_fingerprint"] == heldout.fingerprint() and checked.checked["at"]
    assert bt.checked is None and json.loads(checked.to_json())["checked"] == checked.checked
    # Rows that match no forecast point (here the 72 training runs) are counted, not silently dropped.
    with pytest.warns(UserWarning, match=r"^72 of 96 actual rows match no forecast point \(by N, D, relative "
                                         r"tolerance 1e-09\) and were not scored"):
        whole = loaded.check(data)
    assert whole.summary["n_test"] == 24 and whole.summary["n_unmatched_rows"] == 72
    pd.testing.assert_frame_equal(whole.table, checked.table)  # the unmatched rows change nothing else
    N, C, y = (np.r_[a, a[:1]] for a in (heldout.covariates["N"], heldout.covariates["C"], heldout.y))
    with pytest.warns(UserWarning, match="duplicate"):
        twice = jaxscale.ScalingData.from_arrays(N=N, C=C, loss=y)
    with pytest.raises(DataError, match=r"forecast point 0 matches 2 actual rows \(\[0, 24\]\)"):
        loaded.check(twice)

    # Values in forecast order work too; a missing run is an error unless skipped, and is counted.
    values = np.array(heldout.y, dtype=float)
    assert loaded.check(values).summary["coverage"] == bt.summary["coverage"]
    values[3] = np.nan
    with pytest.raises(DataError, match=r"forecast point 3 \(N=.*, D=.*\) has no actual value \(1 of 24 missing\)"):
        loaded.check(values)
    part = loaded.check(values, missing="skip")
    assert part.summary["n_test"] == 23 and part.summary["n_missing"] == 1
    with pytest.raises(DataError, match="actual has 5 values; expected 24"):
        loaded.check(values[:5])
    with pytest.raises(DataError, match="not a jaxscale forecast"):
        (tmp_path / "bad.json").write_text('{"law": "chinchilla"}')
        Forecast.load(tmp_path / "bad.json")


def test_forecast_bad_points_are_clear_errors():
    data = jaxscale.demo_data()
    with pytest.raises(DataError, match=r"at lacks \['D'\]: law 'chinchilla' needs \['N', 'D'\]"):
        forecast("chinchilla", data, at={"N": 1e10}, **FAST)
    with pytest.raises(DataError, match=r"at: \['tokens'\] are not covariates"):
        forecast("chinchilla", data, at={"N": 1e10, "tokens": 1e12}, **FAST)
    with pytest.raises(DataError, match="at: N must be finite and > 0; point 1 has -1"):
        forecast("chinchilla", data, at={"N": [1e10, -1.0], "D": 1e12}, **FAST)


def test_training_flag_split_on_the_revisiting_benchmark():
    frame = jaxscale.datasets.load("revisiting_lang").drop_duplicates()
    curve = frame[(frame.Domain == "BB") & (frame.Task == "('date', '1-shot')")]
    bt = backtest("power", curve, split="Training", x="Seen Examples", loss="Loss")
    assert bt.summary["n_train"] == 19 and bt.summary["n_test"] == 24  # the file's own split of this curve
    assert bt.table["row"].tolist() == curve.index[curve.Training == 0].tolist()
    assert np.allclose(bt.table["actual"], curve.loc[curve.Training == 0, "Loss"])
    assert bt.provenance["split"] == {"kind": "flag", "column": "Training", "rule": "train on Training == 1; score "
                                      "Training == 0", "n_train": 19, "n_test": 24}


def test_stored_draws_are_capped_evenly_and_load_says_so(tmp_path):
    # A forecast with more draws than a backtest's JSON keeps (a default bayes forecast has 4000): no fit needed.
    law = jaxscale.laws.get("power", resource="x")
    draws = np.log(2.0) + 0.05 * np.random.default_rng(0).standard_normal((3997, 3))
    fc = Forecast(law, pd.DataFrame({"x": [1e6, 1e7, 1e8]}), np.full(3, 2.0), draws, 0.9, "bayes", {"n_train": 40})
    bt = fc.check([2.0, 2.1, 1.9])
    bt.to_json(tmp_path / "bt.json")
    loaded = Forecast.load(tmp_path / "bt.json")  # a backtest's JSON is a loadable forecast
    kept = np.arange(0, 3997, 4)  # 1000 evenly spaced draws of 3997: every 4th, the first and last included
    assert BACKTEST_SAMPLES == 1000 and np.array_equal(loaded.log_samples, draws[kept])
    assert loaded.provenance["draws_stored"] == {"kept": 1000, "of": 3997}
    # Thinned, the interval moves by Monte-Carlo error only: the 5% quantile of 1000 N(0, 0.05) draws has SE
    # ~0.05 * sqrt(0.05 * 0.95 / 1000) / 0.103 = 0.0034 on the log scale; 0.015 is over 4 SE.
    assert np.allclose(np.log(loaded.interval()), np.log(fc.interval()), atol=0.015)
    # The forecast's own JSON keeps every draw, so it re-scores exactly.
    fc.to_json(tmp_path / "fc.json")
    again = Forecast.load(tmp_path / "fc.json")
    assert np.array_equal(again.log_samples, draws) and "draws_stored" not in again.provenance
    assert again.check([2.0, 2.1, 1.9]).summary == bt.summary
    # One draw a line: the file is a few bytes a draw, not one line a number.
    assert len((tmp_path / "fc.json").read_text().splitlines()) < 3997 + 60
    with pytest.raises(DataError, match=r"samples must be True, False or an integer >= 2 .*; got 1"):
        fc.to_json(samples=1)
    fc.to_json(tmp_path / "report.json", samples=False)
    with pytest.raises(DataError, match="written without its predictive draws"):
        Forecast.load(tmp_path / "report.json")


def _cli(argv):
    """The command's own code (``jaxscale.cli.<command>.run``), without ``main``'s error handling: errors raise."""
    args = build_parser().parse_args(argv)
    return importlib.import_module(f"jaxscale.cli.{args.command}").run(args)


def _runs_csv(tmp_path):
    """demo_data as a CSV with C under another name and no D, split into the runs so far and the 24 to come."""
    frame = jaxscale.demo_data().to_frame().rename(columns={"C": "FLOPs"}).drop(columns="D")
    paths = {name: tmp_path / f"{name}.csv" for name in ("runs", "planned", "done")}
    frame.to_csv(paths["runs"], index=False)
    later = frame[frame.FLOPs > 1.1e21]
    later[["N", "FLOPs"]].to_csv(paths["planned"], index=False)  # what is planned: sizes and budgets, no loss
    later.iloc[::-1].to_csv(paths["done"], index=False)  # what came back, in another order
    return paths


def test_cli_backtest_prints_table_and_writes_json(tmp_path, capsys):
    csv = tmp_path / "runs.csv"
    jaxscale.demo_data().to_frame().rename(columns={"C": "FLOPs"}).drop(columns="D").to_csv(csv, index=False)
    out = tmp_path / "bt.json"
    rc = _cli(["backtest", str(csv), "--law", "chinchilla", "--col", "C=FLOPs", "--cutoff", "FLOPs<=1.1e21",
               "--starts", "64", "--seed", "0", "--method", "fit", "--json", str(out), "--csv", str(tmp_path / "bt.csv")])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "split: train on FLOPs <= 1.1e+21; score the rest; 72 training points, 24 scored" in printed
    assert "90% interval coverage" in printed and "predicted" in printed and "rel_error" in printed
    doc = json.loads(out.read_text())
    assert doc["summary"]["n_train"] == 72 and doc["summary"]["n_test"] == 24 and len(doc["table"]) == 24
    assert doc["forecast"]["provenance"]["split"]["cutoff"] == {"FLOPs": 1.1e21}
    # The CLI's numbers are the library's.
    bt = backtest("chinchilla", jaxscale.demo_data(), split=CUTOFF, **FAST)
    assert doc["summary"]["median_abs_rel_error"] == pytest.approx(bt.summary["median_abs_rel_error"], rel=1e-9)
    assert len(pd.read_csv(tmp_path / "bt.csv")) == 24
    # The JSON is a loadable forecast with every one of its 72 draws (one per training point; the cap is 1000), so
    # re-scoring it against the same CSV gives the same table.
    assert doc["forecast"]["n_draws"] == doc["forecast"]["n_draws_stored"] == 72
    loaded = Forecast.load(out)
    with pytest.warns(UserWarning, match="72 of 96 actual rows match no forecast point"):  # the training runs
        again = loaded.check(str(csv), C="FLOPs")
    assert again.summary == {**doc["summary"], "n_unmatched_rows": 72}
    assert again.table["row"].tolist() == [r["row"] for r in doc["table"]]
    assert np.array_equal(again.table["crps"], [r["crps"] for r in doc["table"]])
    assert out.stat().st_size < 100_000  # 72 x 24 draws at ~20 bytes each, plus the table and provenance


def test_cli_forecast_then_check_is_the_backtest(tmp_path, capsys):
    paths = _runs_csv(tmp_path)
    fc_path, scores = tmp_path / "forecast.json", tmp_path / "scores.json"
    common = ["--law", "chinchilla", "--col", "C=FLOPs", "--starts", "64", "--seed", "0", "--method", "fit"]
    # Before the big runs: fit the runs up to 1.1e21 FLOPs, forecast the planned ones, save the forecast.
    assert _cli(["forecast", str(paths["runs"]), *common, "--cutoff", "FLOPs=1.1e21", "--at-csv",
                 str(paths["planned"]), "--out", str(fc_path)]) == 0
    printed = capsys.readouterr().out
    assert "split: train on FLOPs <= 1.1e+21; score the rest; 72 training points; 72 predictive draws" in printed
    assert f"wrote {fc_path}" in printed
    saved = Forecast.load(fc_path)
    assert len(saved.points) == 24 and saved.provenance["split"]["cutoff"] == {"FLOPs": 1.1e21}
    assert saved.provenance["flops_per_token"] == 6.0 and saved.provenance["n_train"] == 72
    # After them: check the saved forecast against what came back.
    assert _cli(["check", str(fc_path), str(paths["done"]), "--col", "C=FLOPs", "--json", str(scores)]) == 0
    printed = capsys.readouterr().out
    assert "72 training points, 24 scored" in printed and "90% interval coverage" in printed
    doc = json.loads(scores.read_text())
    # Same numbers as the backtest that does both halves at once (the same fit, draws and scores).
    bt = backtest("chinchilla", jaxscale.demo_data(), split=CUTOFF, **FAST)
    assert doc["summary"] == {**bt.summary}
    for col in ("N", "D", "actual", "predicted", "lo", "hi", "crps"):  # rows in forecast order, whatever the CSV's
        assert np.array_equal([r[col] for r in doc["table"]], bt.table[col]), col
    assert [r["row"] for r in doc["table"]] == list(range(23, -1, -1))  # the row labels of the reversed CSV
    # The check's JSON is loadable too.
    assert np.array_equal(Forecast.load(scores).log_samples, saved.log_samples)

    # --at points: the same forecast as the library's.
    assert _cli(["forecast", str(paths["runs"]), *common, "--cutoff", "FLOPs=1.1e21", "--at", "N=7e10,D=1.4e12",
                 "--at", "N=1e9,D=2e10", "--level", "0.8", "--json", str(fc_path)]) == 0
    lib = forecast("chinchilla", jaxscale.demo_data(), split=CUTOFF, at={"N": [7e10, 1e9], "D": [1.4e12, 2e10]},
                   level=0.8, **FAST)
    cli = Forecast.load(fc_path)
    assert np.array_equal(cli.predicted, lib.predicted) and np.array_equal(cli.log_samples, lib.log_samples)
    assert cli.level == 0.8 and cli.points["C"].tolist() == [6 * 7e10 * 1.4e12, 6 * 1e9 * 2e10]


def test_cli_forecast_and_check_errors(tmp_path, capsys, monkeypatch):
    paths = _runs_csv(tmp_path)
    runs = ["forecast", str(paths["runs"]), "--col", "C=FLOPs", "--starts", "64"]
    with pytest.raises(DataError, match=r"--at: every point must give the same covariates; point 1 gives \['N', "
                                        r"'D'\], point 2 gives \['N', 'C'\]"):
        _cli([*runs, "--at", "N=1e9,D=2e10", "--at", "N=1e9,C=1e20"])
    with pytest.raises(SystemExit):
        _cli([*runs, "--at", "N=1e9,D=lots"])
    assert "--at D: the value must be a number; got 'lots'" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # --at or --at-csv is required
        _cli(runs)
    capsys.readouterr()
    with pytest.raises(DataError, match=r"--at-csv .*planned.csv: no covariate column .* among \['loss'\]"):
        pd.DataFrame({"loss": [1.0]}).to_csv(paths["planned"], index=False)
        _cli([*runs, "--at-csv", str(paths["planned"])])
    with pytest.raises(DataError, match="at lacks \\['D'\\]: law 'chinchilla' needs"):
        _cli([*runs, "--at", "N=1e9"])
    with pytest.raises(DataError, match=r"^data has 5 point\(s\); law 'chinchilla' has 5 free parameter\(s\), "
                                        r"and method='fit'"):
        pd.read_csv(paths["runs"]).head(5).to_csv(paths["done"], index=False)
        _cli(["forecast", str(paths["done"]), "--col", "C=FLOPs", "--at", "N=1e9,D=2e10", "--method", "fit"])
    with pytest.raises(DataError, match=r"No such forecast file: .*nope.json"):
        _cli(["check", str(tmp_path / "nope.json"), str(paths["runs"])])
    (tmp_path / "fit.json").write_text('{"params": {}}')
    with pytest.raises(DataError, match=r"fit.json: not a jaxscale forecast \(expected format "
                                        r"'jaxscale.forecast/1' or 'jaxscale.backtest/1'; got None\)"):
        _cli(["check", str(tmp_path / "fit.json"), str(paths["runs"])])
    # Through jaxscale.cli.main (backtest is wired there): a cutoff leaving nothing to score is exit 2 and one
    # line on stderr, no traceback.
    from jaxscale.cli import main

    monkeypatch.setenv("XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))  # main() may set the device count; undone after
    rc = main(["backtest", str(paths["runs"]), "--col", "C=FLOPs", "--cutoff", "FLOPs=1e30"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("jaxscale: error: split={'FLOPs': 1e+30} holds out no points: all 96 are training points")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_cli_backtest_errors(tmp_path, capsys):
    csv = tmp_path / "runs.csv"
    jaxscale.demo_data().to_frame().to_csv(csv, index=False)
    with pytest.raises(DataError, match="holds out no points"):
        _cli(["backtest", str(csv), "--cutoff", "C=1e30"])
    with pytest.raises(JaxscaleError, match="--starts apply to --method calibrated, fit and bootstrap"):
        _cli(["backtest", str(csv), "--cutoff", "C=1e21", "--method", "bayes", "--starts", "10"])
    with pytest.raises(SystemExit):
        _cli(["backtest", str(csv), "--cutoff", "C"])
    assert "--cutoff expects COLUMN=VALUE (fit the rows with COLUMN <= VALUE)" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # a split is required
        _cli(["backtest", str(csv)])


@pytest.mark.slow  # ~10 s: the default suite stays under 10 min; CI runs -m slow
def test_bayes_backtest_uses_the_posterior_predictive(monkeypatch):  # ~10 s, most of it compiling NUTS
    from jaxscale import bayes

    # Keep the posterior the backtest samples (a second bayes.sample with the same key would give the same draws,
    # at the price of another NUTS compile and run), and what it was asked for.
    calls, sample = [], bayes.sample
    monkeypatch.setattr(bayes, "sample", lambda *a, **k: calls.append((a, k, sample(*a, **k))) or calls[-1][2])
    law, data = power_data(0)
    kw = {"num_warmup": 200, "num_samples": 200, "num_chains": 2}
    with warnings.catch_warnings(record=True) as caught:  # 400 draws may fail the ESS >= 400 diagnostics
        warnings.simplefilter("always")
        bt = backtest(law, data, split={"x": 1e5}, method="bayes", key=0, **kw)
    (args, kwargs, idata), = calls
    # A failed diagnosis is warned about once and recorded; a clean one is not.
    said = [str(w.message) for w in caught if "failed its diagnostics" in str(w.message)]
    assert len(said) == (0 if bayes.diagnose(idata).ok else 1), said
    assert bt.provenance["settings"]["diagnostics_ok"] == bayes.diagnose(idata).ok
    assert said == [m for m in bt.provenance["warnings"] if "failed its diagnostics" in m]
    # The model inside is bayes.sample's: the 40 training rows, the key as given, the sampler's settings.
    assert args[0] is law and np.array_equal(args[1].y, data["loss"][:40])
    assert kwargs == {"key": 0, **kw, "warn": False}
    pred = bayes.predict(idata, level=0.9, x=X_POWER[40:])
    # Same draws: the point forecast is bayes.predict's posterior median exactly.
    assert np.allclose(bt.table["predicted"], pred["median"], rtol=1e-12)
    # The interval is the posterior predictive one; its noise is drawn independently here, so the ends agree within
    # Monte-Carlo error of the 5% / 95% quantiles of 400 draws (about 1% of the value at sigma = 2%).
    assert np.allclose(bt.table["lo"], pred["pred_lo"], rtol=0.01)
    assert np.allclose(bt.table["hi"], pred["pred_hi"], rtol=0.01)
    assert bt.provenance["settings"]["n_draws"] == 400
