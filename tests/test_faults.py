"""The fault matrix: bad input, failing writes, Ctrl-C and a damaged compilation cache, driven through the CLI.

Each case asserts the exit code, that stderr is one ``jaxscale: ...`` line (no traceback), what the line names,
and, for writes, that the old file survives and no temporary file is left. Bad-input cases run twice: in-process
through ``main`` (fast, in the default suite) and in a fresh ``python -m jaxscale.cli`` process (``-m slow``);
cases that need real work (a write that fails mid-run, SIGINT, the cache) run only in subprocesses (slow).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from helpers import unprivileged, with_file_size_limit
from jaxscale.cli import main

ROWS = [(1e8, 1e9, 3.0), (1e9, 1e10, 2.6), (1e10, 1e11, 2.3), (2e10, 3e11, 2.2), (5e10, 1e12, 2.1),
        (6e10, 2e12, 2.05), (8e10, 3e12, 2.0)]


def _csv(path, header="N,D,loss", rows=ROWS, sep=","):
    path.write_text(header + "\n" + "\n".join(sep.join(repr(v) for v in r) for r in rows) + "\n")
    return path


@pytest.fixture
def files(tmp_path):
    """The inputs of the matrix, keyed by name: good data and each kind of damage."""
    f = {"csv": _csv(tmp_path / "runs.csv"), "dir": tmp_path, "missing": tmp_path / "nope.csv"}
    f["dup"] = _csv(tmp_path / "dup.csv", "N,N,D,loss", [(n, n, d, y) for n, d, y in ROWS])
    f["colon"] = _csv(tmp_path / "colon.csv", "N:D:loss", [(f"{n}:{d}:{y}",) for n, d, y in ROWS])
    f["tiny_n"] = _csv(tmp_path / "tiny_n.csv", "N,C,loss", [(1e-300 if i == 3 else n, 6 * n * d, y)
                                                             for i, (n, d, y) in enumerate(ROWS)])
    f["huge_d"] = _csv(tmp_path / "huge_d.csv", rows=[(n, 1e300 if i == 2 else d, y) for i, (n, d, y) in enumerate(ROWS)])
    f["no_target"] = _csv(tmp_path / "no_target.csv", "N,D,perplexity")
    f["no_covariates"] = _csv(tmp_path / "no_cov.csv", "size,tokens_used,loss")
    values = {"E": 1.7, "A": 400.0, "B": 410.0, "alpha": 0.34, "beta": 0.28}
    point = {"law": "chinchilla", "params": {k: {"estimate": v, "se": 0.1, "ci": [v - 0.1, v + 0.1]}
                                             for k, v in values.items()}}
    draws = {"E": [1.7, 1.8], "A": [400.0, 410.0], "B": [410.0, 400.0], "alpha": [0.34, 0.35], "beta": [0.28, 0.29]}
    damaged = {
        "unequal_draws": {**point, "draws": {**draws, "beta": [0.28]}},
        "missing_draw": {**point, "draws": {k: v for k, v in draws.items() if k != "beta"}},
        "params_list": {**point, "params": list(values.values()), "draws": draws},
        "settings_null": {**point, "settings": None, "draws": draws},
    }
    for name, doc in damaged.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(doc))
        f[name] = tmp_path / f"{name}.json"
    f["netcdf_as_json"] = tmp_path / "posterior.json"
    f["netcdf_as_json"].write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 4)
    return f


#: (argv, what the one error line must contain). ``{name}`` is a path from the ``files`` fixture.
BAD_INPUT = {
    "bootstrap_negative_budget": (["bootstrap", "{csv}", "-n", "100", "--starts", "warm", "--compute", "-1"],
                                  ["--compute", "> 0"]),
    "bootstrap_zero_budget": (["bootstrap", "{csv}", "--compute", "0"], ["--compute", "> 0"]),
    "bootstrap_nan_budget": (["bootstrap", "{csv}", "--compute", "nan"], ["--compute", "finite"]),
    "bootstrap_bad_level": (["bootstrap", "{csv}", "--level", "1.5"], ["--level", "between 0 and 1"]),
    "bayes_negative_budget": (["bayes", "{csv}", "--compute", "-1"], ["--compute", "> 0"]),
    "bayes_bad_level": (["bayes", "{csv}", "--level", "1.5"], ["--level", "between 0 and 1"]),
    "allocate_bad_level": (["allocate", "--fit", "{unequal_draws}", "--compute", "1e22", "--level", "0"],
                           ["--level"]),
    "huge_seed": (["fit", "{csv}", "--seed", "99999999999999999999999"], ["--seed", "<="]),
    "huge_starts": (["fit", "{csv}", "--starts", "99999999999999999999"], ["starts", "memory"]),
    "fix_nan": (["fit", "{csv}", "--fix", "E=nan"], ["--fix", "E", "finite"]),
    "fix_outside_support": (["fit", "{csv}", "--fix", "alpha=-0.3"], ["--fix", "alpha", "> 0"]),
    "fix_text": (["fit", "{csv}", "--fix", "E=x"], ["--fix", "number"]),
    "json_dir_missing": (["fit", "{missing}", "--json", "{dir}/no/such/dir/fit.json"], ["--json", "does not exist"]),
    "out_is_directory": (["bayes", "{csv}", "--out", "{dir}"], ["--out", "is a directory"]),
    "csv_out_dir_missing": (["backtest", "{csv}", "--cutoff", "N=1e10", "--csv", "{dir}/none/x.csv"],
                            ["--csv", "does not exist"]),
    "duplicate_columns": (["fit", "{dup}"], ["N", "repeat"]),
    "unknown_separator": (["fit", "{colon}"], ["--sep"]),
    "derived_overflow": (["fit", "{tiny_n}"], ["D", "line 5"]),
    "budget_overflow": (["bootstrap", "{huge_d}"], ["C", "line 4"]),
    "no_target_hint": (["fit", "{no_target}"], ["--col loss=", "perplexity"]),
    "no_covariate_hint": (["fit", "{no_covariates}"], ["size", "tokens_used", "--col"]),
    "allocate_unequal_draws": (["allocate", "--fit", "{unequal_draws}", "--compute", "1e22"],
                               ["unequal_draws.json"]),
    "allocate_missing_draw": (["allocate", "--fit", "{missing_draw}", "--compute", "1e22"], ["beta"]),
    "allocate_params_list": (["allocate", "--fit", "{params_list}", "--compute", "1e22"], ["params"]),
    "allocate_settings_null": (["allocate", "--fit", "{settings_null}", "--compute", "1e22"], ["settings"]),
    "allocate_netcdf_named_json": (["allocate", "--fit", "{netcdf_as_json}", "--compute", "1e22"],
                                   ["posterior.json"]),
    "missing_data_file": (["fit", "{missing}"], ["nope.csv"]),
    "argparse_usage": (["fit", "{csv}", "--starts", "many"], ["--starts expects"]),
}


def _argv(template, files):
    return [a.format(**{k: str(v) for k, v in files.items()}) for a in template]


def _one_error_line(stderr: str, expected, warnings_allowed: bool = False) -> str:
    """The one error line; before it, only ``jaxscale: warning:`` lines, where the run may warn."""
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    if warnings_allowed:
        assert all(line.startswith("jaxscale: warning: ") for line in lines[:-1]), stderr
        lines = lines[-1:]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("jaxscale: error: "), stderr
    for text in expected:
        assert text in lines[0], (text, lines[0])
    return lines[0]


def _main(argv) -> int:
    """``main``'s exit code, also when argparse exits while parsing."""
    try:
        return main(argv)
    except SystemExit as e:
        return e.code


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_is_one_line_before_any_work(case, files, capsys):
    template, expected = BAD_INPUT[case]
    assert _main(_argv(template, files)) == 2
    _one_error_line(capsys.readouterr().err, expected)


def test_argparse_errors_exit_2(files):
    with pytest.raises(SystemExit) as e:
        main(["bootstrap", str(files["csv"]), "--level", "1.5"])
    assert e.value.code == 2


def test_readonly_output_directory_is_refused_first(files, capsys):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only directories")
    ro = files["dir"] / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        assert main(["fit", str(files["missing"]), "--json", str(ro / "fit.json")]) == 2
    finally:
        ro.chmod(0o700)
    _one_error_line(capsys.readouterr().err, ["--json", "not writable"])


def test_an_unexpected_exception_is_one_line_that_says_bug(monkeypatch, capsys):
    import jaxscale.cli.laws

    def broken(args):
        raise RuntimeError("boom")

    monkeypatch.setattr(jaxscale.cli.laws, "run", broken)
    assert main(["laws"]) == 1
    line = _one_error_line(capsys.readouterr().err, ["bug", "RuntimeError: boom", "--debug", "JAXSCALE_DEBUG=1"])
    assert line
    with pytest.raises(RuntimeError, match="boom"):
        main(["laws", "--debug"])
    monkeypatch.setenv("JAXSCALE_DEBUG", "1")
    with pytest.raises(RuntimeError, match="boom"):
        main(["laws"])


def test_warnings_print_as_one_jaxscale_line(monkeypatch, capsys):
    import warnings

    import jaxscale.cli.laws

    def warns(args):
        warnings.warn("something to know\nacross two lines", UserWarning, stacklevel=2)
        return 0

    monkeypatch.setattr(jaxscale.cli.laws, "run", warns)
    assert main(["laws"]) == 0
    err = capsys.readouterr().err
    assert err == "jaxscale: warning: something to know across two lines\n"


# ---------------------------------------------------------------- subprocesses: the CLI as users run it


def _cli(*argv, env=None, file_size_limit=None, timeout=600):
    full_env = {**os.environ, "JAXSCALE_CACHE_DIR": "off", **(env or {})}
    command = [sys.executable, "-m", "jaxscale.cli", *argv]
    if file_size_limit is not None:
        command = with_file_size_limit(command, file_size_limit)
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=full_env)


@pytest.mark.slow  # one fresh process (JAX import) per case: ~2 s each
@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_in_a_fresh_process(case, files):
    template, expected = BAD_INPUT[case]
    r = _cli(*_argv(template, files))
    assert r.returncode == 2, r.stderr
    _one_error_line(r.stderr, expected)


def _assert_old_file_survives(path, old: bytes):
    assert path.read_bytes() == old
    leftovers = [p.name for p in path.parent.iterdir() if p.name.startswith(f".{path.name}")]
    assert leftovers == [], leftovers


@pytest.mark.slow  # real fits and a bootstrap in fresh processes
@pytest.mark.parametrize("command", [["fit", "--starts", "16"], ["bootstrap", "-n", "20", "--starts", "warm"]])
def test_a_write_that_fails_leaves_the_old_file(command, files):
    out = files["dir"] / "result.json"
    old = b'{"old": "valid"}\n' * 64  # 1 KiB: bigger than the limit, so it cannot be rewritten in place either
    out.write_bytes(old)
    r = _cli(command[0], str(files["csv"]), *command[1:], "--json", str(out), file_size_limit=512)
    assert r.returncode == 2, r.stderr
    _one_error_line(r.stderr, ["result.json", "too large"], warnings_allowed=True)
    _assert_old_file_survives(out, old)


@pytest.mark.slow  # NUTS in a fresh process
def test_a_netcdf_write_that_fails_does_not_segfault(files):
    out = files["dir"] / "posterior.nc"
    old = b"old posterior" * 100
    out.write_bytes(old)
    r = _cli("bayes", str(files["csv"]), "--chains", "1", "--warmup", "30", "--samples", "30", "--out", str(out),
             file_size_limit=1024)
    assert r.returncode == 2, (r.returncode, r.stderr)
    _one_error_line(r.stderr, ["posterior.nc", "too large"], warnings_allowed=True)
    _assert_old_file_survives(out, old)


@pytest.mark.slow  # a bootstrap interrupted at several moments: compiling, solving
@pytest.mark.parametrize("delay", [0.3, 1.5, 4.0, 8.0])  # importing JAX, tracing and compiling, solving
def test_ctrl_c_exits_130_at_once_and_writes_nothing(delay, files):
    out = files["dir"] / "boot.json"
    proc = subprocess.Popen([sys.executable, "-m", "jaxscale.cli", "bootstrap", str(files["csv"]), "-n", "3000",
                             "--json", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "JAXSCALE_CACHE_DIR": "off"})
    time.sleep(delay)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"SIGINT at {delay} s was not honoured within 120 s")
    waited = time.monotonic() - sent
    if proc.returncode == 0:
        pytest.fail(f"finished before SIGINT at {delay} s; raise -n")
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == ["jaxscale: interrupted (Ctrl-C); nothing was written"], err
    assert not out.exists() and not [p for p in files["dir"].iterdir() if p.name.startswith(".boot.json")]
    assert waited < 5.0, f"took {waited:.1f} s to honour Ctrl-C"


@pytest.mark.slow  # three fresh processes sharing one cache
def test_a_corrupted_cache_entry_is_removed_once(files, tmp_path):
    cache = tmp_path / "xla"
    args = ("fit", str(files["csv"]), "--starts", "8")
    first = _cli(*args, env={"JAXSCALE_CACHE_DIR": str(cache)})
    assert first.returncode == 0, first.stderr
    entries = sorted(p for p in cache.rglob("*") if p.is_file() and p.stat().st_size > 1000)
    assert entries, "the first run cached nothing"
    victim = entries[0]
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    second = _cli(*args, env={"JAXSCALE_CACHE_DIR": str(cache)})
    assert second.returncode == 0, second.stderr
    warnings_ = [line for line in second.stderr.splitlines() if line.startswith("jaxscale: warning:")]
    assert len(warnings_) == 1 and "cache" in warnings_[0], second.stderr
    assert "Traceback" not in second.stderr
    third = _cli(*args, env={"JAXSCALE_CACHE_DIR": str(cache)})
    assert third.returncode == 0 and "cache" not in third.stderr, third.stderr
    def untimed(text):
        return re.sub(r"[\d.]+ s$", "", text, flags=re.M)

    assert untimed(third.stdout) == untimed(first.stdout)  # the same fit, from the repaired cache


@pytest.mark.slow  # a fresh process with a read-only HOME
def test_a_readonly_home_disables_the_cache_in_one_line(files, tmp_path):
    prefix = unprivileged(tmp_path)  # root ignores permissions: drop CAP_DAC_OVERRIDE, or skip
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(0o500)
    try:
        env = {k: v for k, v in os.environ.items() if k != "JAXSCALE_CACHE_DIR"}
        r = subprocess.run([*prefix, sys.executable, "-m", "jaxscale.cli", "fit", str(files["csv"]), "--starts", "8"],
                           capture_output=True, text=True, timeout=600, env={**env, "HOME": str(home)})
    finally:
        home.chmod(0o700)
    assert r.returncode == 0, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("jaxscale: warning: compilation cache disabled:"), r.stderr


@pytest.mark.slow  # a fresh process without root's permission override
def test_a_readonly_output_directory_is_refused_before_work_in_a_fresh_process(files, tmp_path):
    prefix = unprivileged(tmp_path)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        r = subprocess.run([*prefix, sys.executable, "-m", "jaxscale.cli", "fit", str(files["missing"]), "--json",
                            str(ro / "fit.json")], capture_output=True, text=True, timeout=600,
                           env={**os.environ, "JAXSCALE_CACHE_DIR": "off"})
    finally:
        ro.chmod(0o700)
    assert r.returncode == 2, r.stderr
    _one_error_line(r.stderr, ["--json", "not writable"])  # the missing data file is not reached
