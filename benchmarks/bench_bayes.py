"""Bayesian Chinchilla posterior: wall time including compilation, ESS, and PyMC on the same model; SBC at scale.

Data: Epoch AI's 240 Chinchilla points (bundled: jaxscale.datasets, epoch_chinchilla; --data takes a data
set's name or a CSV in Epoch's format).
Model: jaxscale's default (Student-t on log-loss with learned df and sigma,
default priors; the PyMC script writes the same model out by hand).

Parts:

1. ``posterior``: ``bayes.sample`` with 4 chains x (1,000 warmup + 1,000
   draws), each seed in a fresh Python process, timed from before
   ``import jaxscale`` to the InferenceData (so: imports, ArviZ's included, point fit, tracing,
   XLA compilation, sampling, predictive and log-likelihood groups). Run with
   an empty JAX compilation cache (cold) and, with ``--cache``, again with
   the persistent cache filled by the first run (warm). Reports min bulk and
   tail ESS over E, A, B, alpha, beta, max R-hat, divergences.
2. ``pymc``: the same model in PyMC (``_pymc_baseline.py``), in the same
   run: in-process if ``import pymc`` works, else with ``--pymc-python``.
   ESS per second of both, and the ratio.
3. ``sbc``: ``bayes.sbc`` on ``--sbc-datasets`` datasets simulated from the
   prior on a 30-point Chinchilla design (every other demo point), 1 chain x
   (400 + 400) each, all datasets in one vmapped call: seconds and coverage.

Usage::

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_bayes.py --pymc-python /tmp/pymcvenv/bin/python
    PYTHONPATH=. python3 benchmarks/bench_bayes.py --parts sbc --sbc-datasets 1000     # GPU
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from bench_fit import DEFAULT_DATA, machine_info  # noqa: E402

PARAMS = ("E", "A", "B", "alpha", "beta")

_CHILD = r"""
import time
t0 = time.perf_counter()
import json, sys
import numpy as np
import jaxscale
from jaxscale import bayes
from jaxscale.bench import load_data
d, _ = load_data(sys.argv[1])  # a data set's name or Epoch's CSV; the 5 highest losses dropped
t1 = time.perf_counter()
idata = bayes.sample("chinchilla", d, key=int(sys.argv[2]), num_chains=4, num_warmup=1000, num_samples=1000, warn=False)
t2 = time.perf_counter()
import arviz as az  # already imported by sample() (timed above, in a thread while XLA compiled)
post = idata.posterior[list(sys.argv[3].split(","))]
ess_b, ess_t, rhat = az.ess(post, method="bulk"), az.ess(post, method="tail"), az.rhat(post)
out = dict(
    wall_s=t2 - t0, sample_s=t2 - t1, import_and_load_s=t1 - t0,
    ess_bulk={k: float(ess_b[k]) for k in post.data_vars}, ess_tail={k: float(ess_t[k]) for k in post.data_vars},
    rhat={k: float(rhat[k]) for k in post.data_vars},
    divergences=int(idata.sample_stats["diverging"].values.sum()),
    mean_steps=float(idata.sample_stats["n_steps"].values.mean()),
    medians={k: float(np.median(post[k].values)) for k in post.data_vars},
)
print("RESULT " + json.dumps(out))
"""


def run_child(data: str, seed: int, cache_dir: str | None) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    if cache_dir:
        env["JAX_COMPILATION_CACHE_DIR"] = cache_dir
        env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0.2"
    else:
        env.pop("JAX_COMPILATION_CACHE_DIR", None)
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", _CHILD, data, str(seed), ",".join(PARAMS)], capture_output=True,
                       text=True, env=env)
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-3000:])
    out = json.loads(next(line for line in r.stdout.splitlines() if line.startswith("RESULT "))[7:])
    out["process_wall_s"] = time.perf_counter() - t
    out["min_ess_bulk"] = min(out["ess_bulk"].values())
    out["min_ess_tail"] = min(out["ess_tail"].values())
    out["max_rhat"] = max(out["rhat"].values())
    out["ess_per_s"] = out["min_ess_bulk"] / out["wall_s"]
    return out


def part_posterior(args) -> dict:
    res = {"cold": [], "warm_cache": []}
    for seed in args.seeds:
        r = run_child(args.data, seed, None)
        res["cold"].append(dict(seed=seed, **r))
        print(f"  cold  seed {seed}: {r['wall_s']:.2f} s (sample() {r['sample_s']:.2f} s), min bulk ESS "
              f"{r['min_ess_bulk']:.0f}, min tail ESS {r['min_ess_tail']:.0f}, max R-hat {r['max_rhat']:.4f}, "
              f"{r['divergences']} divergences", flush=True)
    if args.cache:
        with tempfile.TemporaryDirectory() as cache:
            run_child(args.data, args.seeds[0], cache)  # fills the cache
            for seed in args.seeds:
                r = run_child(args.data, seed, cache)
                res["warm_cache"].append(dict(seed=seed, **r))
                print(f"  warm-cache seed {seed}: {r['wall_s']:.2f} s, min bulk ESS {r['min_ess_bulk']:.0f}", flush=True)
    return res


def part_pymc(args, data: str) -> dict | None:
    with tempfile.TemporaryDirectory() as tmp:
        return _pymc(args, _as_file(data, tmp))


def _as_file(data: str, tmp: str) -> str:
    """A CSV path for the PyMC baseline (it runs without jaxscale): a bundled data set is written out as published."""
    import jaxscale

    if not jaxscale.datasets.is_dataset(data):
        return data
    path = pathlib.Path(tmp) / f"{data}.csv"
    path.write_bytes(jaxscale.datasets.raw(data))
    return str(path)


def _pymc(args, data_path: str) -> dict | None:
    try:
        import pymc  # noqa: F401

        from _pymc_baseline import load_epoch, run_pymc

        logN, logD, logL = load_epoch(data_path)
        return run_pymc(logN, logD, logL, chains=4, warmup=1000, samples=1000, seed=0)
    except ImportError:
        pass
    if not args.pymc_python:
        print("  PyMC is not importable and --pymc-python not given: skipped", flush=True)
        return None
    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp) / "pymc.json"
        env = dict(os.environ, PYTENSOR_FLAGS=f"base_compiledir={tmp}/pytensor")  # cold compile, like ours
        r = subprocess.run([args.pymc_python, str(HERE / "_pymc_baseline.py"), "--data", data_path, "--chains", "4",
                            "--warmup", "1000", "--samples", "1000", "--seed", "0", "--out", str(out)],
                           capture_output=True, text=True, env=env)
        if r.returncode != 0:
            print(f"  PyMC failed: {r.stderr[-2000:]}", flush=True)
            return None
        return json.loads(out.read_text())


def part_sbc(args) -> dict:
    import numpy as np

    import jaxscale
    from jaxscale import bayes

    design = jaxscale.demo_data().subset(np.arange(0, 60, 2))
    kw = dict(num_warmup=400, num_samples=400, chunk_size=args.sbc_chunk)
    t = time.perf_counter()
    bayes.sbc("chinchilla", design, 8, key=1, num_warmup=20, num_samples=20)  # compile the simulator
    warm = time.perf_counter() - t
    t = time.perf_counter()
    res = bayes.sbc("chinchilla", design, args.sbc_datasets, key=2026, devices=jax_devices(), **kw)
    secs = time.perf_counter() - t
    cov = res.coverage
    print(cov.to_string(), flush=True)
    print(f"  pooled coverage: {res.pooled_coverage().to_dict()}", flush=True)
    status = {k: int(v) for k, v in zip(*np.unique(res.posteriors.status, return_counts=True))}
    return dict(n_datasets=args.sbc_datasets, seconds=secs, first_small_call_s=warm, settings=kw,
                coverage=cov.to_dict(orient="records"), pooled=res.pooled_coverage().to_dict(),
                uniformity=res.uniformity.to_dict(orient="records"), status=status)


def jax_devices():
    import jax

    return jax.devices()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=DEFAULT_DATA,
                    help="a CSV in Epoch's format or a data set's name (default %(default)s)")
    ap.add_argument("--parts", default="posterior,pymc,sbc")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--cache", action=argparse.BooleanOptionalAction, default=True,
                    help="also time runs with a filled persistent JAX compilation cache")
    ap.add_argument("--pymc-python", default=os.environ.get("PYMC_PYTHON"),
                    help="a Python with pymc installed, if this one has none")
    ap.add_argument("--sbc-datasets", type=int, default=240)
    ap.add_argument("--sbc-chunk", type=int, default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    parts = args.parts.split(",")
    info = machine_info()
    results = {"machine": info, "parts": parts}
    print(f"machine: {info}", flush=True)
    if "posterior" in parts:
        print("posterior: 4 chains x (1000 + 1000), fresh process per seed", flush=True)
        results["posterior"] = part_posterior(args)
    if "pymc" in parts:
        print("pymc: the same model, pm.sample defaults", flush=True)
        pm = part_pymc(args, args.data)
        results["pymc"] = pm
        if pm and "posterior" in results:
            ours = min(r["ess_per_s"] for r in results["posterior"]["cold"])
            results["ess_per_s_ratio_cold_worst_seed"] = ours / pm["ess_per_s"]
            print(f"  PyMC: {pm['wall_s']:.1f} s, min bulk ESS {pm['min_ess_bulk']:.0f}, ESS/s {pm['ess_per_s']:.2f}; "
                  f"jaxscale (cold, worst seed) ESS/s {ours:.1f}: ratio {ours / pm['ess_per_s']:.1f}x", flush=True)
    if "sbc" in parts:
        print(f"sbc: {args.sbc_datasets} datasets", flush=True)
        results["sbc"] = part_sbc(args)
    out = args.out or str(HERE / "results" / f"bench_bayes-{info['backend']}.json")
    pathlib.Path(out).write_text(json.dumps(results, indent=2, default=float) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
