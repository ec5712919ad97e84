"""Laws that installed packages register through the ``jaxscale.laws`` entry-point group.

Each test installs a tiny package into its own site directory: the package and a ``NAME-VERSION.dist-info``
folder with ``METADATA`` and ``entry_points.txt``, which is exactly what ``pip install`` leaves in site-packages
and what :mod:`importlib.metadata` reads, with that directory put on ``sys.path`` (or ``PYTHONPATH`` for the CLI).
A real ``pip install`` of a pyproject.toml project would need setuptools in the environment and seconds of
build per package, and could reach for the network; this needs neither and runs in milliseconds.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

import jaxscale
from jaxscale.laws import _registry

GOOD = '''
import jax.numpy as jnp
from jaxscale.laws import Law, Param


def _log_predict(theta, logx):
    log_E, log_A, alpha = theta
    return jnp.logaddexp(log_E, log_A - alpha * logx[0])


def example_power(resource="N"):
    """L = E + A / R^alpha, in one resource R."""
    return Law(name="example_power", log_predict=_log_predict, covariates=(resource,),
               params=(Param("E", "log", (0.0, 1.0)), Param("A", "log", (2.0, 6.0, 10.0)),
                       Param("alpha", grid=(0.1, 0.5), kind="exponent")),
               formula="L = E + A/R^alpha", reference="a jaxscale test plugin", options=(("resource", resource),))
'''


def write_package(site, dist, module, source, entry_points, version="0.1"):
    """Install ``module`` (its ``__init__.py`` is ``source``) as distribution ``dist`` in ``site``."""
    (site / module).mkdir(parents=True)
    (site / module / "__init__.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = "".join(f"{name} = {value}\n" for name, value in entry_points.items())
    (info / "entry_points.txt").write_text(f"[jaxscale.laws]\n{lines}")


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A site directory on sys.path, the registry forgetting the plugin laws before and after the test."""
    path = tmp_path / "site"
    path.mkdir()
    _registry._reset_plugins()
    before = set(sys.modules)
    monkeypatch.syspath_prepend(str(path))
    yield path
    _registry._reset_plugins()
    for name in set(sys.modules) - before:
        if name.startswith("jaxscale_example"):
            del sys.modules[name]


def test_installed_law_is_available_lazily_and_fits(site):
    write_package(site, "jaxscale-example-law", "jaxscale_example_law", GOOD,
                  {"example_power": "jaxscale_example_law:example_power"})
    assert "example_power" in jaxscale.laws.available()
    assert "jaxscale_example_law" not in sys.modules  # listing reads metadata only
    assert jaxscale.laws.plugins() == {"example_power": _registry.PluginLaw(
        "example_power", "jaxscale_example_law:example_power", "jaxscale-example-law", "0.1")}
    law = jaxscale.laws.get("example_power")
    assert law == jaxscale.laws.get("example_power") and law.covariates == ("N",)
    assert jaxscale.laws.get("example_power", resource="D").covariates == ("D",)
    assert jaxscale.laws.check_plugins() == []

    with pytest.raises(jaxscale.LawError, match="'example_power' is already registered"):
        jaxscale.laws.register(law)
    with pytest.raises(jaxscale.LawError, match="Bad options for the law 'example_power' from package "
                                                "'jaxscale-example-law'.*unexpected keyword argument 'breaks'"):
        jaxscale.laws.get("example_power", breaks=2)


def test_reset_forgets_plugin_laws(site, monkeypatch):
    write_package(site, "jaxscale-example-law", "jaxscale_example_law", GOOD,
                  {"example_power": "jaxscale_example_law:example_power"})
    assert "example_power" in jaxscale.laws.available()
    monkeypatch.undo()  # the package is uninstalled (its directory leaves sys.path)
    _registry._reset_plugins()
    assert "example_power" not in jaxscale.laws.available() and jaxscale.laws.plugins() == {}
    assert set(jaxscale.laws.BUILTIN) <= set(jaxscale.laws.available())


BAD = '''
import jax.numpy as jnp
from jaxscale.laws import Law, Param

not_a_law = 42
PARAMS = (Param("E", "log", (0.0,)), Param("alpha", grid=(0.5,)))


def returns_a_string():
    return "example_power"


def fails():
    raise RuntimeError("no GPU here")


def _lp(theta, logx):
    return jnp.logaddexp(theta[0], -theta[1] * logx[0])


def _law(name="bad", **fields):
    return Law(**{"name": name, "log_predict": _lp, "params": PARAMS, "covariates": ("N",), **fields})


unknown_role = _law(covariates=("tokens",))
vector = _law(log_predict=lambda theta, logx: theta * logx[0])
nan = _law(log_predict=lambda theta, logx: jnp.log(-1.0 - theta[0]))
wrong_name = _law(name="something_else")
bad_transform = _law(params=(Param("E", "exp", (0.0,)), Param("alpha", grid=(0.5,))))
no_grid = _law(params=(Param("E", "log", ()), Param("alpha", grid=(0.5,))))
bad_jac = _law(log_predict_jac=lambda theta, logx: (jnp.zeros(3), (theta[0],)))
raises = _law(log_predict=lambda theta, logx: 1 / 0 + theta[0])
unhashable = _law(options=(("sizes", [1, 2]),))
'''

BAD_CASES = {
    # entry point -> what the error says after "law 'bad' from package 'jaxscale-example-bad' (entry point ...)"
    "jaxscale_example_missing:law": r"cannot be imported: ModuleNotFoundError: No module named "
                                    r"'jaxscale_example_missing'",
    "jaxscale_example_bad:nothere": r"cannot be imported: AttributeError: .*nothere",
    "jaxscale_example_bad:not_a_law": r"is 42 \(int\); expected a jaxscale.laws.Law or a factory",
    "jaxscale_example_bad:returns_a_string": r"gave 'example_power' \(str\); expected a jaxscale.laws.Law",
    "jaxscale_example_bad:fails": r"failed to build with options \{\}: RuntimeError: no GPU here",
    "jaxscale_example_bad:unknown_role": r"has covariates \('tokens',\); expected a non-empty tuple of distinct "
                                         r"roles from \['N', 'D'",
    "jaxscale_example_bad:vector": r"has a log_predict that returned shape \(2,\) for one point .*expected a scalar",
    "jaxscale_example_bad:nan": r"has a log_predict that returned nan at theta = each parameter's first grid value, "
                                r"every covariate = 10",
    "jaxscale_example_bad:wrong_name": r"built a Law named 'something_else'; expected 'bad'",
    "jaxscale_example_bad:bad_transform": r"has parameter 'E' with transform 'exp'; expected one of",
    "jaxscale_example_bad:no_grid": r"has parameter 'E' with grid \(\); expected a non-empty tuple of finite numbers",
    "jaxscale_example_bad:bad_jac": r"has a log_predict_jac that returned lp of shape \(3,\) and 1 partials",
    "jaxscale_example_bad:raises": r"has a log_predict that raised ZeroDivisionError: division by zero",
    "jaxscale_example_bad:unhashable": r"cannot be hashed \(TypeError: unhashable type: 'list'\)",
}


@pytest.mark.parametrize("value, message", BAD_CASES.items(), ids=[v.split(":")[1] for v in BAD_CASES])
def test_broken_plugin_fails_on_use_with_its_package_named(site, value, message):
    write_package(site, "jaxscale-example-bad", "jaxscale_example_bad", BAD, {"bad": value}, version="2.0")
    assert "bad" in jaxscale.laws.available()  # a broken package breaks neither listing nor the other laws
    assert jaxscale.laws.get("chinchilla").name == "chinchilla"
    where = rf"^The law 'bad' from package 'jaxscale-example-bad' \(entry point 'bad = {value}' in group " \
            rf"'jaxscale.laws'\) "
    with pytest.raises(jaxscale.LawError, match=where + message) as info:
        jaxscale.laws.get("bad")
    assert "\n" not in str(info.value)
    with pytest.raises(jaxscale.LawError, match=where + message):
        jaxscale.laws.check_plugins()
    assert [str(e) for e in jaxscale.laws.check_plugins(strict=False)] == [str(info.value)]


def test_jac_that_disagrees_is_caught(site):
    source = BAD + textwrap.dedent('''
        def _jac(theta, logx):
            lp = jnp.logaddexp(theta[0], -theta[1] * logx[0])
            return lp + 1.0, (jnp.ones_like(lp), jnp.ones_like(lp))
        off_by_one = _law(log_predict_jac=_jac)
    ''')
    write_package(site, "jaxscale-example-bad", "jaxscale_example_bad", source, {"bad": "jaxscale_example_bad:off_by_one"})
    with pytest.raises(jaxscale.LawError, match="log_predict_jac that disagrees with log_predict and its gradient"):
        jaxscale.laws.get("bad")


def test_builtin_names_cannot_be_shadowed(site):
    write_package(site, "jaxscale-example-bad", "jaxscale_example_bad", BAD,
                  {"chinchilla": "jaxscale_example_bad:wrong_name"})
    builtin = jaxscale.laws.get("chinchilla")
    assert builtin.formula == "L = E + A/N^alpha + B/D^beta"
    assert "chinchilla" not in jaxscale.laws.plugins() and "jaxscale_example_bad" not in sys.modules
    with pytest.raises(jaxscale.LawError, match=r"^The law 'chinchilla' from package 'jaxscale-example-bad' "
                                                r"\(entry point 'chinchilla = jaxscale_example_bad:wrong_name' in "
                                                r"group 'jaxscale.laws'\) is ignored: a built-in law has that name"):
        jaxscale.laws.check_plugins()


def test_a_name_from_two_packages_is_refused(site, monkeypatch):
    entry = {"example_power": "jaxscale_example_law:example_power"}
    write_package(site / "a", "jaxscale-example-law", "jaxscale_example_law", GOOD, entry)
    write_package(site / "b", "jaxscale-example-fork", "jaxscale_example_fork", GOOD, entry)
    monkeypatch.syspath_prepend(str(site / "b"))
    monkeypatch.syspath_prepend(str(site / "a"))
    with pytest.raises(jaxscale.LawError, match=r"Law 'example_power' is registered by several packages "
                                                r"\('jaxscale-example-law', 'jaxscale-example-fork'"):
        jaxscale.laws.get("example_power")


def cli(site, *args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
               JAXSCALE_CACHE_DIR="off")
    return subprocess.run([sys.executable, "-m", "jaxscale.cli", *args], capture_output=True, text=True, timeout=300,
                          env=env, cwd=site)


def test_cli_lists_plugin_laws_with_their_package_and_warns_about_broken_ones(site):
    write_package(site, "jaxscale-example-law", "jaxscale_example_law", GOOD,
                  {"example_power": "jaxscale_example_law:example_power"})
    write_package(site, "jaxscale-example-bad", "jaxscale_example_bad", BAD,
                  {"bad": "jaxscale_example_bad:not_a_law", "kaplan": "jaxscale_example_bad:wrong_name"}, version="2.0")
    r = cli(site, "laws")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    i = next(i for i, line in enumerate(lines) if line.startswith("example_power "))
    assert lines[i].split() == ["example_power", "L", "=", "E", "+", "A/R^alpha"]
    assert "a jaxscale test plugin" in lines[i + 1]
    assert lines[i + 2].split() == ["from", "package", "jaxscale-example-law", "0.1", "(entry", "point",
                                    "jaxscale_example_law:example_power)"]
    assert "chinchilla" in r.stdout and not any(line.startswith("bad ") for line in lines)
    warnings = r.stderr.splitlines()
    assert len(warnings) == 2, r.stderr
    assert warnings[0].startswith("jaxscale: warning: The law 'kaplan' from package 'jaxscale-example-bad'")
    assert "is ignored: a built-in law has that name" in warnings[0]
    assert warnings[1].startswith("jaxscale: warning: The law 'bad' from package 'jaxscale-example-bad'")
    assert "is 42 (int); expected a jaxscale.laws.Law or a factory" in warnings[1]


def write_runs(path):
    """A CSV of 12 runs on L = 1.9 + 900 / D^0.3."""
    D = np.logspace(8, 11, 12)
    path.write_text("tokens,loss\n" + "".join(f"{float(d)!r},{float(1.9 + 900.0 / d**0.3)!r}\n" for d in D))
    return path


FIT_ARGS = ("--law", "example_power", "--law-option", "resource=D", "--col", "D=tokens", "--col", "loss=loss")


def test_plugin_law_fits_with_jaxscale_fit_and_the_fit_command(site):
    """Both recover the truth; the command runs in-process, which reuses the compiled solver (the subprocess run
    is ``test_cli_fits_a_plugin_law_in_a_fresh_process``, under -m slow)."""
    from jaxscale.cli import main

    write_package(site, "jaxscale-example-law", "jaxscale_example_law", GOOD,
                  {"example_power": "jaxscale_example_law:example_power"})
    csv = write_runs(site / "runs.csv")
    data = jaxscale.ScalingData.from_frame(pd.read_csv(csv), D="tokens", loss="loss")
    res = jaxscale.fit(jaxscale.laws.get("example_power", resource="D"), data)
    np.testing.assert_allclose([res.params[k] for k in ("E", "A", "alpha")], [1.9, 900.0, 0.3], rtol=1e-4)
    out = site / "fit.json"
    assert main(["fit", str(csv), *FIT_ARGS, "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["law"] == "example_power"
    np.testing.assert_allclose([res["params"][k] for k in ("E", "A", "alpha")], [1.9, 900.0, 0.3], rtol=1e-4)


@pytest.mark.slow  # ~5 s of CPU: a fresh interpreter imports jaxscale and compiles the fit
def test_cli_fits_a_plugin_law_in_a_fresh_process(site):
    write_package(site, "jaxscale-example-law", "jaxscale_example_law", GOOD,
                  {"example_power": "jaxscale_example_law:example_power"})
    r = cli(site, "fit", write_runs(site / "runs.csv").name, *FIT_ARGS, "--json", "fit.json")
    assert r.returncode == 0, r.stderr
    res = json.loads((site / "fit.json").read_text())
    assert res["law"] == "example_power"
    np.testing.assert_allclose([res["params"][k] for k in ("E", "A", "alpha")], [1.9, 900.0, 0.3], rtol=1e-4)
