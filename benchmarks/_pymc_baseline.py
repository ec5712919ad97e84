"""PyMC baseline for the Bayesian Chinchilla benchmark (NumPyro NUTS vs PyMC).

Standalone: needs only pymc, arviz, numpy and pandas (no jaxscale import), so
it runs in a separate virtual environment, e.g.::

    python3 -m venv /tmp/pymcvenv && /tmp/pymcvenv/bin/pip install pymc pandas
    jaxscale datasets epoch_chinchilla --csv /tmp/epoch.csv   # Epoch's CSV, bundled with jaxscale
    /tmp/pymcvenv/bin/python benchmarks/_pymc_baseline.py \\
        --data /tmp/epoch.csv \\
        --chains 4 --warmup 1000 --samples 1000 --seed 0 --out result.json

Importable: ``run_pymc(log_N, log_D, log_L, chains, warmup, samples, seed)``
returns the result dict; ``load_epoch(path)`` gives the 240 points.

Data: Epoch AI's digitised Chinchilla points, N = "Model Size",
D = "Training FLOP" / (6 N), loss = "loss", minus the 5 highest losses
(``loss < sorted(loss)[-5]``, ties at the threshold dropped too), order kept:
the same selection as ``jaxscale.datasets.scaling_data("epoch_chinchilla").drop_top(5)``
in tests/conftest.py.

Model (LSE form on log-loss, Student-t noise):

    mu_i     = logsumexp(log_E, log_A - alpha log N_i, log_B - beta log D_i)
    log L_i  ~ StudentT(nu=df, mu=mu_i, sigma=sigma)
    log_E ~ Normal(0, 1)        log_A ~ Normal(6, 3)      log_B ~ Normal(7, 3)
    alpha ~ LogNormal(log 0.3, 0.5)   beta ~ LogNormal(log 0.3, 0.5)
    sigma ~ HalfNormal(0.1)     df ~ 1 + Gamma(alpha=2, beta=0.1)   (rate 0.1)

Sampler: ``pm.sample`` with PyMC's defaults (NUTS, init="jitter+adapt_diag",
target_accept=0.8), initvals at Epoch's point estimate, cores=min(chains, 2),
progressbar off: the baseline a user would pick.

Timing: ``wall_s`` is time.perf_counter around model construction plus
``pm.sample`` (so it includes PyTensor graph rewriting and C compilation,
worker start-up, tuning and drawing). ``sampling_time_s`` is PyMC's own
``idata.sample_stats.attrs["sampling_time"]`` (tuning + drawing only).
Whether compilation is cold or cached depends on PyTensor's compile dir
(``PYTENSOR_FLAGS=base_compiledir=...``); the script reports the dir used.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import platform
import sys
import time

import numpy as np

PARAMS = ("E", "A", "B", "alpha", "beta")

# Epoch's headline estimate (log space), used as the initial point.
INITVALS = {
    "log_E": 0.597,
    "log_A": 6.178,
    "log_B": 7.643,
    "alpha": 0.348,
    "beta": 0.366,
    "sigma": 0.03,
    "df_minus_1": 4.0,
}


def load_epoch(path, drop_top: int = 5, flops_per_token: float = 6.0):
    """Epoch's CSV -> (log_N, log_D, log_L) for the points kept (240 by default)."""
    import pandas as pd

    frame = pd.read_csv(path)
    N = frame["Model Size"].to_numpy(dtype=np.float64)
    C = frame["Training FLOP"].to_numpy(dtype=np.float64)
    L = frame["loss"].to_numpy(dtype=np.float64)
    D = C / (flops_per_token * N)
    if drop_top:
        keep = L < np.sort(L)[-drop_top]
        N, D, L = N[keep], D[keep], L[keep]
    return np.log(N), np.log(D), np.log(L)


def build_model(log_N, log_D, log_L):
    import pymc as pm
    import pytensor.tensor as pt

    log_N = np.asarray(log_N, dtype=np.float64)
    log_D = np.asarray(log_D, dtype=np.float64)
    log_L = np.asarray(log_L, dtype=np.float64)
    with pm.Model() as model:
        log_E = pm.Normal("log_E", mu=0.0, sigma=1.0)
        log_A = pm.Normal("log_A", mu=6.0, sigma=3.0)
        log_B = pm.Normal("log_B", mu=7.0, sigma=3.0)
        alpha = pm.LogNormal("alpha", mu=math.log(0.3), sigma=0.5)
        beta = pm.LogNormal("beta", mu=math.log(0.3), sigma=0.5)
        sigma = pm.HalfNormal("sigma", sigma=0.1)
        df = pm.Deterministic("df", 1.0 + pm.Gamma("df_minus_1", alpha=2.0, beta=0.1))
        mu = pt.logaddexp(pt.logaddexp(log_E, log_A - alpha * log_N), log_B - beta * log_D)
        pm.StudentT("y", nu=df, mu=mu, sigma=sigma, observed=log_L)
        pm.Deterministic("E", pt.exp(log_E))
        pm.Deterministic("A", pt.exp(log_A))
        pm.Deterministic("B", pt.exp(log_B))
    return model


def _f(x):
    x = float(x)
    return x if math.isfinite(x) else None


def run_pymc(log_N, log_D, log_L, chains=4, warmup=1000, samples=1000, seed=0) -> dict:
    """Build the model, sample with PyMC NUTS and summarise. Returns a JSON-able dict."""
    import arviz as az
    import pymc as pm
    import pytensor

    cores = min(chains, 2)
    t0 = time.perf_counter()
    model = build_model(log_N, log_D, log_L)
    t_model = time.perf_counter() - t0
    with model:
        idata = pm.sample(
            draws=samples,
            tune=warmup,
            chains=chains,
            cores=cores,
            random_seed=seed,
            initvals=dict(INITVALS),
            progressbar=False,
        )
    wall = time.perf_counter() - t0

    post = idata.posterior
    ss = idata.sample_stats
    ess_bulk = az.ess(idata, var_names=list(PARAMS), method="bulk")
    ess_tail = az.ess(idata, var_names=list(PARAMS), method="tail")
    rhat = az.rhat(idata, var_names=list(PARAMS))
    bulk = {p: _f(ess_bulk[p]) for p in PARAMS}
    tail = {p: _f(ess_tail[p]) for p in PARAMS}
    min_bulk = min(v for v in bulk.values() if v is not None)
    sampling_time = ss.attrs.get("sampling_time")
    sampling_time = None if sampling_time is None else float(sampling_time)
    n_steps = ss["n_steps"].values if "n_steps" in ss else None

    return {
        "backend": "pymc",
        "n_points": int(np.asarray(log_L).shape[0]),
        "chains": chains,
        "cores": cores,
        "warmup": warmup,
        "samples": samples,
        "seed": seed,
        "init": "jitter+adapt_diag (PyMC default) around Epoch initvals",
        "initvals": dict(INITVALS),
        "wall_s": wall,
        "model_build_s": t_model,
        "sampling_time_s": sampling_time,
        "tuning_steps": ss.attrs.get("tuning_steps"),
        "ess_bulk": bulk,
        "ess_tail": tail,
        "rhat": {p: _f(rhat[p]) for p in PARAMS},
        "min_ess_bulk": min_bulk,
        "min_ess_tail": min(v for v in tail.values() if v is not None),
        "max_rhat": max(_f(rhat[p]) for p in PARAMS),
        "ess_per_s": min_bulk / wall,
        "ess_per_sampling_s": None if not sampling_time else min_bulk / sampling_time,
        "divergences": int(ss["diverging"].values.sum()),
        "mean_accept": _f(ss["acceptance_rate"].values.mean()) if "acceptance_rate" in ss else None,
        "mean_tree_depth": _f(ss["tree_depth"].values.mean()) if "tree_depth" in ss else None,
        "max_treedepth_hits": int(ss["reached_max_treedepth"].values.sum()) if "reached_max_treedepth" in ss else None,
        "grad_evals_draws": None if n_steps is None else int(n_steps.sum()),
        "median": {p: _f(post[p].median()) for p in PARAMS},
        "mean": {p: _f(post[p].mean()) for p in PARAMS},
        "sd": {p: _f(post[p].std()) for p in PARAMS},
        "median_sigma": _f(post["sigma"].median()),
        "median_df": _f(post["df"].median()),
        "versions": {
            "pymc": pm.__version__,
            "pytensor": pytensor.__version__,
            "arviz": az.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
        "pytensor_linker": str(pytensor.config.linker),
        "pytensor_cxx": str(pytensor.config.cxx),
        "pytensor_compiledir": str(pytensor.config.compiledir),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True,
                    help="Epoch's CSV, e.g. written by `jaxscale datasets epoch_chinchilla --csv epoch.csv`")
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=1000)
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--drop-top", type=int, default=5)
    ap.add_argument("--out", default=None, help="write the JSON here (always printed to stdout)")
    args = ap.parse_args(argv)

    log_N, log_D, log_L = load_epoch(args.data, drop_top=args.drop_top)
    res = run_pymc(log_N, log_D, log_L, args.chains, args.warmup, args.samples, args.seed)
    res["data"] = os.path.abspath(args.data)
    res["command"] = " ".join([sys.executable, *sys.argv])
    text = json.dumps(res, indent=2)
    if args.out:
        pathlib.Path(args.out).write_text(text + "\n")
    print(text)
    return res


if __name__ == "__main__":
    main()
