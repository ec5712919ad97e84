"""Every law issue 18 added, through the paths a user takes: `jaxscale laws` lists it with its formula and
reference, `jaxscale fit` on a CSV recovers it (the same optimum as `jaxscale.fit`), and `bayes.sample` gives a
posterior whose predictions bracket the truth. Recovery, gradients and jit/vmap purity are the generic law
tests (tests/test_laws.py, tests/test_solver.py), which run on these laws too."""

import json

import numpy as np
import pytest

import jaxscale
from helpers import synthetic
from jaxscale.cli import main

#: The laws issue 18 added (``m2`` is ``power`` under another name: tested as ``power``).
NEW_LAWS = ["overtraining", "loss_to_error", "mlpr", "coverage", "moe_clark", "moe_granularity", "precision",
            "precision_ptq", "m1", "m3", "m4"]


def test_laws_lists_every_new_law_with_its_formula_and_reference(capsys):
    assert main(["laws"]) == 0
    out = capsys.readouterr().out
    for name in NEW_LAWS:
        law = jaxscale.laws.get(name)
        assert name in jaxscale.laws.BUILTIN
        assert law.formula in out and law.reference in out, name
        assert law.reference.strip(), name


def _cli_args(kw):
    args = []
    for k, v in (kw.get("fixed") or {}).items():
        args += ["--fix", f"{k}={v!r}"]
    if isinstance(kw.get("starts"), int):
        args += ["--starts", str(kw["starts"]), "--seed", str(kw.get("key", 0))]
    return args


@pytest.mark.slow
@pytest.mark.parametrize("name", NEW_LAWS)
def test_the_command_line_fits_it(name, tmp_path):
    law, p, data, kw, tol = synthetic(name)
    frame = data.to_frame()
    path = tmp_path / "runs.csv"
    frame.to_csv(path, index=False)
    roles = [f"{c}={c}" for c in law.covariates] + [f"{data.target_name}={data.target_name}"]
    out = tmp_path / "fit.json"
    argv = ["fit", str(path), "--law", name, *sum((["--col", r] for r in roles), []), *_cli_args(kw),
            "--json", str(out)]
    assert main(argv) == 0
    got = json.loads(out.read_text())["params"]
    lib = jaxscale.fit(law, data, **kw).params
    for k in p:
        assert got[k] == pytest.approx(lib[k], rel=1e-6, abs=1e-12), k
        assert got[k] == pytest.approx(p[k], rel=max(tol, 1e-3) * 10, abs=1e-9), k


@pytest.mark.slow
@pytest.mark.parametrize("name", NEW_LAWS)
def test_bayes_samples_it(name):
    """Short chains on 2% noise: the posterior's median prediction within 1% of the noiseless truth at the median
    design point and within 5% at every one (a point at the edge of the design, pinned by few neighbours, can be
    off by about one point's noise, 2%, or more); the parameters themselves may trade off against one another."""
    law, p, data, kw, _ = synthetic(name, noise=0.02, seed=1)
    post = jaxscale.bayes.sample(law, data, key=0, num_warmup=300, num_samples=200, num_chains=2, warn=False,
                                 fixed=kw.get("fixed"), progress=False)
    cov = {c: np.asarray(data.covariates[c]) for c in law.covariates}
    fixed = kw.get("fixed") or {}
    draws = {k: np.asarray(post.posterior[k]).ravel() for k in law.param_names if k not in fixed}
    picks = np.linspace(0, len(next(iter(draws.values()))) - 1, 60).astype(int)
    preds = np.stack([law.predict({**fixed, **{k: float(v[i]) for k, v in draws.items()}}, **cov) for i in picks])
    assert np.all(np.isfinite(preds))
    truth = law.predict(p, **cov)
    rel = np.abs(np.median(preds, axis=0) / truth - 1)
    assert np.median(rel) < 0.01 and rel.max() < 0.05, (np.median(rel), rel.max())
