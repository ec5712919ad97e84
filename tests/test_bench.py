"""``jaxscale bench``: report structure, the fit reaching Epoch's optimum, device and input errors, the command.

Tiny settings only: speed itself is measured by the command (benchmarks/README.md), not asserted here.
"""

import argparse
import importlib.util
import json
import math

import jax
import numpy as np
import pytest

import jaxscale
from jaxscale import bench
from jaxscale.bench import EPOCH_OPTIMUM, BenchError, run_bench
from jaxscale.cli import bench as bench_command
from jaxscale.cli import main
from jaxscale.errors import ArgumentError, DataError


@pytest.fixture(scope="module")
def epoch_csv(tmp_path_factory):
    """Epoch's CSV as a file (from the bundled copy), for --data FILE."""
    path = tmp_path_factory.mktemp("epoch") / "svg_extracted_data.csv"
    path.write_bytes(jaxscale.datasets.raw("epoch_chinchilla"))
    return path


@pytest.fixture(scope="module")
def small():
    return run_bench(["fit", "bootstrap"], sizes=[64, 128], repeats=1, scipy_starts=20, bootstrap_resamples=50)


def _positive(x):
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def test_report_structure_and_device_info(small):
    d = json.loads(small.to_json())
    assert set(d) == {"benchmark", "date", "device", "host", "versions", "data", "settings", "results", "seconds"}
    assert d["device"]["platform"] == jax.default_backend() and d["device"]["count"] == len(jax.devices())
    assert d["versions"]["jax"] == jax.__version__ and d["versions"]["jaxscale"] == jaxscale.__version__
    assert d["versions"]["python"].count(".") == 2 and d["host"]["cpu_count"] >= 1
    assert d["data"]["n_points"] == 240 and d["data"]["fingerprint"] == bench.EPOCH_FINGERPRINT
    assert d["settings"]["sizes"] == [64, 128] and d["settings"]["parts"] == ["fit", "bootstrap"]
    assert set(d["results"]) == {"fit", "bootstrap"} and small.ok
    assert _positive(d["seconds"])


def test_fit_reaches_epochs_optimum_at_every_size(small):
    fit = small.results["fit"]
    assert [s["n_starts"] for s in fit["sizes"]] == [64, 128]
    for s in fit["sizes"]:
        for k in ("fits_per_s", "fits_per_s_incl_compile", "seconds_steady", "seconds_first_call"):
            assert _positive(s[k]), (k, s[k])
        assert s["fits_per_s"] == pytest.approx(s["n_starts"] / s["seconds_steady"])
        assert s["objective"] == pytest.approx(EPOCH_OPTIMUM, rel=1e-9)
        assert s["matches_reference"] and s["same_optimum"] and s["n_at_best"] >= 1 and s["n_diverged"] == 0
        assert s["params"]["alpha"] == pytest.approx(0.3473, abs=1e-4)
    sp = fit["scipy"]
    if jax.default_backend() != "cpu":
        assert sp["skipped"].startswith("the scipy baseline runs on a CPU only")
        return
    assert sp["n_starts"] == 20 and _positive(sp["fits_per_s"]) and sp["ratio_at_n_starts"] == 128
    assert sp["ratio"] == pytest.approx(fit["sizes"][1]["fits_per_s"] / sp["fits_per_s"])
    assert sp["objective"] >= EPOCH_OPTIMUM * (1 - 1e-9)  # L-BFGS-B cannot beat the global optimum
    assert small.headline()["fits_per_s"] == {64: fit["sizes"][0]["fits_per_s"], 128: fit["sizes"][1]["fits_per_s"]}


def test_bootstrap_throughput_and_plausible_ses(small):
    b = small.results["bootstrap"]
    assert b["n_resamples"] == 50 and b["n_failed"] == 0 and b["warnings"] == []
    assert _positive(b["replicates_per_s"]) and _positive(b["replicates_per_s_incl_compile"])
    assert 0.005 < b["se"]["alpha"] < 0.05  # Epoch's bootstrap SE is 0.0154


def test_table_names_every_part(small):
    text = small.table()
    assert f"device: {jax.default_backend()} x" in text and "published optimum" in text
    assert "scipy L-BFGS-B" in text or jax.default_backend() != "cpu"
    assert "replicates/s" in text and "NO" not in text


def test_cli_writes_json(epoch_csv, tmp_path, capsys):
    out = tmp_path / "bench.json"
    rc = main(["bench", "--parts", "fit", "--data", str(epoch_csv), "--sizes", "64", "--repeats", "1",
               "--scipy-starts", "0", "--json", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "fits/s" in printed and f"wrote {out}" in printed
    d = json.loads(out.read_text())
    assert d["results"]["fit"]["sizes"][0]["n_starts"] == 64
    assert d["results"]["fit"]["scipy"] == {"skipped": "scipy_starts = 0"}
    assert d["settings"]["repeats"] == 1 and d["device"]["platform"] == jax.default_backend()


def _bench_args(*argv):
    sub = argparse.ArgumentParser().add_subparsers(dest="command")
    bench_command.add_parser(sub)
    return sub.choices["bench"].parse_args(list(argv))


def test_command_module_runs_alone_and_checks_its_output_first(tmp_path, capsys, monkeypatch):
    out = tmp_path / "b.json"
    args = _bench_args("--parts", "fit", "--data", "epoch_chinchilla", "--sizes", "64", "--repeats", "0",
                       "--scipy-starts", "0", "--json", str(out))
    assert bench_command.run(args) == 0
    assert json.loads(out.read_text())["results"]["fit"]["sizes"][0]["n_starts"] == 64
    assert [p.name for p in tmp_path.iterdir()] == ["b.json"]  # written atomically: no temporary left
    capsys.readouterr()
    monkeypatch.setattr(bench_command, "run_bench", lambda *a, **k: pytest.fail("ran before checking --json"))
    with pytest.raises(ArgumentError, match="--json .*does not exist"):
        bench_command.run(_bench_args("--parts", "fit", "--json", str(tmp_path / "no" / "b.json")))


MISSING = next((p for p in ("gpu", "tpu") if p not in bench.available_platforms()), None)


@pytest.mark.skipif(MISSING is None, reason="this machine has every platform")
def test_cli_missing_device_is_one_clear_line(capsys):
    rc = main(["bench", "--device", MISSING, "--parts", "fit"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert err.startswith(f"jaxscale: error: --device {MISSING} was asked for, but JAX has no {MISSING} devices")
    assert "it sees: " in err and "cpu" in err


def test_unknown_part_and_bad_settings_are_errors(capsys):
    assert main(["bench", "--parts", "fit,foo"]) == 2
    assert "unknown part 'foo'; expected some of fit, bootstrap, nuts, sbc" in capsys.readouterr().err
    with pytest.raises(BenchError, match="sizes must be numbers of starts >= 1; got '0'"):
        run_bench(["fit"], sizes="64,0")
    with pytest.raises(ArgumentError, match="repeats must be an integer >= 0; got -1"):
        run_bench(["fit"], repeats=-1)
    with pytest.raises(ArgumentError, match="bootstrap_resamples must be an integer >= 2; got 1"):
        run_bench(["fit"], bootstrap_resamples=1)
    with pytest.raises(BenchError, match="unknown device 'npu'"):
        run_bench(["fit"], device="npu")


def test_platform_already_fixed_is_an_error(monkeypatch):
    before = jax.config.read("jax_platform_name")
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    with pytest.raises(BenchError, match="already gpu.*fresh process"):
        run_bench(["fit"], device="cpu")
    assert jax.config.read("jax_platform_name") == before


def test_missing_optional_packages_are_skips_not_crashes(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in ("arviz", "scipy")
                        else real(name, *a))
    res = run_bench(["fit", "nuts"], sizes=[64], repeats=0, scipy_starts=5)
    assert res.results["nuts"] == {"skipped": "arviz not installed (bayes.sample returns ArviZ InferenceData)"}
    assert res.results["fit"]["scipy"]["skipped"].startswith("scipy not installed" if jax.default_backend() == "cpu"
                                                            else "the scipy baseline runs on a CPU only")
    assert res.ok and "nuts: skipped: arviz not installed" in res.table()


def test_data_is_always_epochs_unless_given(epoch_csv, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ../shared anywhere near: the bundled copy is used
    d, info = bench.load_data()
    assert len(d) == 240 and info["fingerprint"] == bench.EPOCH_FINGERPRINT
    assert info["name"].startswith("Epoch AI's") and info["source"] == "dataset epoch_chinchilla"
    from_file, file_info = bench.load_data(epoch_csv)  # --data FILE, Epoch's columns
    assert file_info["fingerprint"] == bench.EPOCH_FINGERPRINT and file_info["source"] == str(epoch_csv)
    other, other_info = bench.load_data("muennighoff")  # --data NAME, that data set's own roles
    assert len(other) == 177 and other_info["name"] == "dataset muennighoff (5 highest losses dropped)"
    with pytest.raises(DataError, match="--data '/nonexistent/svg_extracted_data.csv' is neither an existing file "
                                        "nor a dataset; datasets: epoch_chinchilla, "):
        bench.load_data("/nonexistent/svg_extracted_data.csv")


def test_grid_starts_subsample_and_repeat():
    law = jaxscale.laws.get("chinchilla")
    g = law.default_starts()
    np.testing.assert_array_equal(bench.grid_starts(law, 4500)[0], g)
    sub, kind = bench.grid_starts(law, 64)
    assert sub.shape == (64, 5) and "evenly spaced" in kind and len({tuple(r) for r in sub}) == 64
    big, _ = bench.grid_starts(law, 9001)
    assert big.shape == (9001, 5)
    np.testing.assert_array_equal(big[4500:9000], g)


@pytest.mark.slow
def test_quick_run_of_every_part():
    res = run_bench(quick=True)
    assert res.ok and set(res.results) == {"fit", "bootstrap", "nuts", "sbc"}
    n, s = res.results["nuts"], res.results["sbc"]
    assert n["chains"] == 2 and n["samples"] == 150 and _positive(n["ess_per_s"]) and n["min_ess_bulk"] > 10
    assert n["ess_per_s"] == pytest.approx(n["min_ess_bulk"] / n["seconds"])
    assert s["n_datasets"] == 4 and _positive(s["datasets_per_s"]) and sum(s["status"].values()) == 4
    assert set(res.headline()) >= {"fits_per_s", "bootstrap_replicates_per_s", "nuts_ess_per_s", "sbc_datasets_per_s"}
