"""What long runs say: the one-line cost estimate (jaxscale.progress.announce) and progress bars."""

import logging
import sys
import types

import numpy as np
import pytest

import jaxscale
from jaxscale import progress
from jaxscale.cli import main
from jaxscale.errors import ArgumentError


def _records(caplog):
    return [r for r in caplog.records if r.name == "jaxscale"]


def test_a_long_bootstrap_logs_one_line_with_its_fits_estimate_and_remedy(caplog, monkeypatch, capsys):
    monkeypatch.setattr(progress, "ANNOUNCE_SECONDS", 0.0)  # every run counts as long
    d = jaxscale.demo_data()
    with caplog.at_level(logging.WARNING, logger="jaxscale"):
        b = jaxscale.bootstrap("chinchilla", d, 8, key=0, starts=32, chunk_size=64, progress=False)
    (rec,) = _records(caplog)
    line = rec.getMessage()
    assert rec.levelno == logging.WARNING and "\n" not in line
    assert line.startswith("bootstrap of 8 resamples x 32 starts (random(32)): 256 fits, about ")
    assert f"on {progress.device_label()}, estimated from the point fit's " in line
    assert "fits/s (compilation excluded)" in line
    assert line.endswith("to make it cheaper: starts='auto' (the default: the point fit's distinct optima) or "
                         "'warm', fewer resamples, or a GPU.")
    assert b.settings["estimated_seconds"] > 0
    # with point= given there is no measured rate before the run: the first chunk of it is timed instead
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="jaxscale"):
        jaxscale.bootstrap("chinchilla", d, 8, key=0, starts=32, chunk_size=64, progress=False, point=b.point)
    (rec,) = _records(caplog)
    assert "256 fits, about " in rec.getMessage() and "estimated from its first 64 fits (" in rec.getMessage()
    assert capsys.readouterr().err == ""  # progress=False: no bar


def test_a_short_run_is_silent_and_the_threshold_reads_the_module_constant(caplog, capsys):
    with caplog.at_level(logging.WARNING, logger="jaxscale"):
        jaxscale.bootstrap("chinchilla", jaxscale.demo_data(), 8, key=0, starts=32, chunk_size=64)
    assert _records(caplog) == [] and capsys.readouterr().err == ""  # progress=None, estimated << 5 s: no bar


def test_bars_true_always_none_when_long_and_bad_values_are_refused(monkeypatch, capsys):
    d = jaxscale.demo_data()
    jaxscale.bootstrap("chinchilla", d, 8, key=0, starts=32, chunk_size=64, progress=True)
    err = capsys.readouterr().err
    assert "bootstrap (pairs, 32 starts)" in err and "100%" in err and "256/256" in err
    monkeypatch.setattr(progress, "BAR_SECONDS", 0.0)  # every multi-chunk run counts as long
    jaxscale.bootstrap("chinchilla", d, 8, key=0, starts=32, chunk_size=64)
    assert "256/256" in capsys.readouterr().err
    jaxscale.bootstrap("chinchilla", d, 2, key=0, starts=32, chunk_size=64)  # one compiled call: no bar
    assert capsys.readouterr().err == ""
    with pytest.raises(ArgumentError, match=r"progress must be None \(a bar when the run is long\), True, False"):
        jaxscale.bootstrap("chinchilla", d, 8, progress="yes")


def test_the_cli_shows_the_estimate_as_one_jaxscale_warning_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(progress, "ANNOUNCE_SECONDS", 0.0)
    csv = tmp_path / "d.csv"
    jaxscale.demo_data().to_frame()[["N", "D", "loss"]].to_csv(csv, index=False)
    assert main(["bootstrap", str(csv), "-n", "8", "--starts", "32", "--chunk-size", "64", "--no-progress"]) == 0
    err = capsys.readouterr().err.splitlines()
    (line,) = [e for e in err if e.startswith("jaxscale: warning: bootstrap of 8 resamples x 32 starts")]
    assert "256 fits, about " in line and "to make it cheaper: starts='auto'" in line
    assert not [e for e in err if "%|" in e]  # --no-progress


def test_notebook_bars_are_widgets_only_where_ipywidgets_is_installed(monkeypatch):
    from jaxscale.progress import tqdm_class

    assert tqdm_class().__module__ == "tqdm.std"  # no IPython kernel here
    shell = types.SimpleNamespace(config={"IPKernelApp": {}})
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell))
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ipywidgets" else real(name, *a))
    assert tqdm_class().__module__ == "tqdm.std"  # text on stderr, never tqdm's "IProgress not found" warning
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: object() if name == "ipywidgets" else real(name, *a))
    assert tqdm_class().__module__ == "tqdm.notebook"


def test_forecast_hands_progress_to_its_bootstrap():
    x = np.logspace(2, 6, 30)
    y = 0.5 + 40.0 * x ** -0.3 * np.exp(0.01 * np.random.default_rng(0).standard_normal(30))
    seen = []
    jaxscale.forecast.backtest("power", {"x": x, "loss": y}, split={"x": 1e5}, method="bootstrap", resamples=100,
                               starts="warm", key=0, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(100, 100)]
    with pytest.raises(ArgumentError, match="progress must be None"):
        jaxscale.forecast.backtest("power", {"x": x, "loss": y}, split={"x": 1e5}, progress=1)
    with pytest.raises(ArgumentError, match=r"'auto' and 'warm' \(starts at the point fit's optima\) apply to "
                                            r"method='bootstrap'"):
        jaxscale.forecast.backtest("power", {"x": x, "loss": y}, split={"x": 1e5}, starts="auto")


@pytest.mark.slow  # compiles NUTS with host callbacks (never cached): 10-40 s on 2 cores
def test_bayes_feeds_a_progress_callable_from_inside_the_compiled_sampler():
    from jaxscale import bayes

    seen = []
    idata = bayes.sample("chinchilla", jaxscale.demo_data(), key=0, num_chains=2, num_warmup=30, num_samples=20,
                         warn=False, predictive=False, progress=lambda done, total: seen.append((done, total)))
    assert idata.posterior["alpha"].shape == (2, 20)
    totals = {t for _, t in seen}
    assert totals == {100} and seen[-1] == (100, 100) and len(seen) > 10  # ~100 reports per chain, then the end
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
