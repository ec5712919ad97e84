import json
import subprocess
import sys

import pytest

from jaxscale import datasets
from jaxscale.cli import main


def run(*args):
    return subprocess.run([sys.executable, "-m", "jaxscale.cli", *args], capture_output=True, text=True, timeout=600)


def test_fit_writes_the_documented_json(tmp_path, capsys):
    out = tmp_path / "fit.json"
    csv = tmp_path / "svg_extracted_data.csv"  # Epoch's CSV as a file: DATA as a path, roles mapped with --col
    csv.write_bytes(datasets.raw("epoch_chinchilla"))
    rc = main(["fit", str(csv), "--law", "chinchilla", "--col", "N=Model Size", "--col", "C=Training FLOP",
               "--col", "loss=loss", "--drop-top-loss", "5", "--starts", "grid", "--objective", "huber",
               "--delta", "1e-3", "--json", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "alpha" in printed and "/4500 starts at best" in printed
    res = json.loads(out.read_text())
    assert {"law", "params", "objective", "n_points", "n_starts", "n_at_best", "settings"} <= set(res)
    assert res["law"] == "chinchilla" and res["n_points"] == 240 and res["n_starts"] == 4500
    assert set(res["params"]) == {"E", "A", "B", "alpha", "beta"}
    assert res["params"]["alpha"] == pytest.approx(0.347313, rel=1e-3)
    assert res["objective"] == pytest.approx(0.0010182740, rel=1e-3)


def test_fit_with_random_starts_fixed_param_and_power_law(tmp_path, capsys):
    import numpy as np
    import pandas as pd

    C = np.logspace(18, 23, 12)
    pd.DataFrame({"compute": C, "loss": 1.8 + 40.0 * C**-0.1}).to_csv(tmp_path / "c.csv", index=False)
    rc = main(["fit", str(tmp_path / "c.csv"), "--law", "power", "--law-option", "resource=C",
               "--col", "C=compute", "--starts", "50", "--seed", "1", "--fix", "E=1.8", "--json", str(tmp_path / "o.json")])
    assert rc == 0
    res = json.loads((tmp_path / "o.json").read_text())
    assert res["params"]["E"] == 1.8 and res["params"]["alpha"] == pytest.approx(0.1, rel=1e-5)
    assert res["settings"]["starts"] == "random(50)" and res["settings"]["key"] == 1


def test_demo_runs():
    r = run("demo", "--starts", "64")
    assert r.returncode == 0, r.stderr
    assert "true values" in r.stdout and "alpha" in r.stdout


def test_laws_lists_formulas():
    r = run("laws")
    assert r.returncode == 0
    for name in ("chinchilla", "kaplan", "power", "data_constrained", "broken_power", "sigmoid"):
        assert name in r.stdout
    assert "E + A/N^alpha + B/D^beta" in r.stdout


@pytest.mark.parametrize(
    "args,message",
    [
        (["fit", "/nonexistent.csv"], "DATA '/nonexistent.csv' is neither an existing file nor a dataset"),
        (["fit", "{csv}", "--law", "chinchila"], "Unknown law 'chinchila'"),
        (["fit", "{csv}", "--col", "N=nope"], "Column 'nope' (mapped to N) is not in the data"),
        (["fit", "{csv}", "--fix", "gamma=1"], "--fix names unknown parameter"),
    ],
)
def test_errors_are_one_line_without_traceback(tmp_path, args, message):
    csv = tmp_path / "d.csv"
    csv.write_text("N,D,loss\n1e8,1e9,3.0\n1e9,1e10,2.6\n1e10,1e11,2.3\n2e10,3e11,2.2\n5e10,1e12,2.1\n6e10,2e12,2.05\n")
    r = run(*[a.format(csv=csv) for a in args])
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], r.stderr


def test_bad_option_is_an_argparse_error():
    r = run("fit", "x.csv", "--starts", "many")
    assert r.returncode == 2 and "--starts expects" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow  # ~10 s: kept out of the default run, in CI's `-m slow`
def test_bootstrap_prints_table_and_writes_the_documented_json(tmp_path, capsys):
    out = tmp_path / "boot.json"
    rc = main(["bootstrap", "epoch_chinchilla", "--law", "chinchilla", "--drop-top-loss", "5", "-n", "300",
               "--method", "pairs", "--starts", "warm", "--compute", "5.88e23",
               "--loss-at", "N=7e10,D=1.4e12", "--json", str(out), "--no-progress"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "pairs bootstrap, 300 resamples x 1 starts (warm), 0 failed" in printed
    assert "95% percentile interval" in printed and "tokens_per_param@C=5.88e+23" in printed
    res = json.loads(out.read_text())
    assert {"params", "derived", "n_resamples", "n_failed", "settings"} <= set(res)
    assert res["n_resamples"] == 300 and res["n_failed"] == 0
    assert set(res["params"]) == {"E", "A", "B", "alpha", "beta"}
    for entry in res["params"].values():
        assert set(entry) == {"estimate", "se", "ci"}
    for entry in res["derived"].values():  # a derived quantity also counts the draws where it was not finite
        assert set(entry) == {"estimate", "se", "ci", "n_nonfinite"} and entry["n_nonfinite"] == 0
    for entry in list(res["params"].values()) + list(res["derived"].values()):
        assert entry["ci"][0] <= entry["estimate"] <= entry["ci"][1] and entry["se"] > 0
    assert res["params"]["alpha"]["estimate"] == pytest.approx(0.347313, rel=1e-3)
    assert res["derived"]["a"]["estimate"] == pytest.approx(0.5139, abs=1e-3)
    assert res["derived"]["tokens_per_param@C=5.88e+23"]["estimate"] == pytest.approx(17.9, rel=0.01)
    assert "loss@N=7e+10,D=1.4e+12" in res["derived"]
    assert res["settings"]["method"] == "pairs" and res["settings"]["starts"] == "warm"


def test_bootstrap_cli_errors_are_one_line(tmp_path):
    import numpy as np
    import pandas as pd

    pd.DataFrame({"N": np.logspace(7, 9, 10), "D": np.logspace(9, 11, 10)[::-1], "loss": np.linspace(3, 2.5, 10)}
                 ).to_csv(tmp_path / "d.csv", index=False)
    r = run("bootstrap", str(tmp_path / "d.csv"), "--method", "cluster", "-n", "10")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "needs a 'run' or 'group' column" in r.stderr
    r = run("bootstrap", str(tmp_path / "d.csv"), "-n", "0")
    assert r.returncode == 2 and "--resamples must be an integer >= 1; got 0" in r.stderr


def _demo_csv(tmp_path):
    import jaxscale

    d = jaxscale.demo_data()
    path = tmp_path / "demo.csv"
    import pandas as pd

    pd.DataFrame({"N": d.covariates["N"], "D": d.covariates["D"], "loss": d.y}).to_csv(path, index=False)
    return path


def test_mixed_precision_flag_is_recorded(tmp_path):
    csv, out = _demo_csv(tmp_path), tmp_path / "fit.json"
    assert main(["fit", str(csv), "--starts", "64", "--mixed-precision", "on", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["settings"]["mixed_precision"] is True
    assert main(["fit", str(csv), "--starts", "64", "--mixed-precision", "off", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["settings"]["mixed_precision"] is False


@pytest.mark.slow  # ~10 s: kept out of the default run, in CI's `-m slow`
def test_persistent_compilation_cache(tmp_path):
    """The CLI keeps compiled solvers in $JAXSCALE_CACHE_DIR; 'off' keeps nothing."""
    import os

    csv, cache = _demo_csv(tmp_path), tmp_path / "cache"
    env = dict(os.environ, JAXSCALE_CACHE_DIR=str(cache))
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    cmd = [sys.executable, "-m", "jaxscale.cli", "fit", str(csv), "--starts", "64"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert p.returncode == 0, p.stderr
    assert any(cache.iterdir()), "no compiled program was cached"
    off = tmp_path / "off"
    env["JAXSCALE_CACHE_DIR"] = "off"
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert not off.exists() and sorted(os.listdir(tmp_path)) == ["cache", "demo.csv"]
