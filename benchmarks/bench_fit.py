"""Epoch's 4,500-start protocol: jaxscale vs scipy L-BFGS-B, in the same run.

Data: Epoch AI's digitised Chinchilla points (bundled: ``jaxscale.datasets``,
``epoch_chinchilla``), 240 after dropping the 5 highest losses, D = C/(6N). Objective: summed Huber
(delta 1e-3) on log-loss residuals, LSE form. Starts: Hoffmann's 4,500-point
grid, identical for every solver.

Baselines (both with an analytic gradient, one start at a time, as a user
would run them), from :func:`jaxscale.bench.scipy_epoch_fits` (the project's
one scipy baseline, also run by ``jaxscale bench``):

* ``scipy_epoch``: Epoch's notebook objective (``scipy.special.logsumexp`` and
  ``huber``) with L-BFGS-B at scipy's defaults.
* ``scipy_lean``: the same optimiser with a hand-vectorised NumPy objective and
  gradient in one function (the fastest scipy variant we could write).

All must reach the same optimum (objective within 1e-6 relative). Writes JSON
with fits/s for each and the ratios.

Usage::

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_fit.py [--scipy-starts 4500] [--big 4500000] [--host-devices 1]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import pathlib
import platform
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
#: ``--data``: a bundled data set's name or a CSV in Epoch's format (read by :func:`jaxscale.bench.load_data`).
DEFAULT_DATA = "epoch_chinchilla"


def hoffmann_grid():
    # Epoch's loop order: product(alpha, beta, e, a, b) -> our (log_E, log_A, log_B, alpha, beta)
    g = np.array(list(itertools.product(np.arange(0, 2.5, 0.5), np.arange(0, 2.5, 0.5), np.arange(-1, 1.5, 0.5),
                                        np.arange(0, 30, 5), np.arange(0, 30, 5))))
    return g[:, [2, 3, 4, 0, 1]]


def machine_info():
    import jax

    dev = jax.devices()[0]
    return {"python": platform.python_version(), "platform": platform.platform(), "processor": platform.processor(),
            "cpu_count": os.cpu_count(), "jax": jax.__version__, "backend": jax.default_backend(),
            "device": getattr(dev, "device_kind", str(dev)), "n_devices": jax.device_count()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=DEFAULT_DATA,
                    help="a CSV in Epoch's format or a data set's name (default %(default)s)")
    ap.add_argument("--scipy-starts", type=int, default=4500, help="starts for each scipy baseline (a uniform sample of the grid if < 4500)")
    ap.add_argument("--repeats", type=int, default=3, help="timed jaxscale repeats (after one compile run)")
    ap.add_argument("--big", type=int, default=0, help="also run this many random starts (e.g. 4500000 on a GPU)")
    ap.add_argument("--skip-scipy", action="store_true")
    ap.add_argument("--out", default=None, help="JSON path (default benchmarks/results/bench_fit-<backend>.json)")
    ap.add_argument("--host-devices", type=int, default=os.cpu_count(),
                    help="XLA host devices on CPU (starts are sharded over them; default: one per core)")
    args = ap.parse_args(argv)

    from jaxscale._devices import set_host_device_count

    set_host_device_count(args.host_devices)  # before JAX starts its backend
    import jax

    import jaxscale
    from jaxscale import validate
    from jaxscale._io import write_atomic
    from jaxscale.bench import load_data, scipy_epoch_fits

    path = pathlib.Path(args.out or ROOT / "benchmarks" / "results" / f"bench_fit-{jax.default_backend()}.json")
    if args.out is None:
        path.parent.mkdir(parents=True, exist_ok=True)
    validate.output_path(path, "--out")  # before the work, not after it
    data, _ = load_data(args.data)  # the 5 highest losses dropped
    starts = hoffmann_grid()
    np.testing.assert_array_equal(np.sort(starts, 0), np.sort(jaxscale.laws.get("chinchilla").default_starts(), 0))

    t0 = time.perf_counter()
    res = jaxscale.fit("chinchilla", data, starts=starts)
    first = time.perf_counter() - t0
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        res = jaxscale.fit("chinchilla", data, starts=starts)
        times.append(time.perf_counter() - t0)
    steady = float(np.median(times))
    out = {
        "benchmark": "epoch_chinchilla_4500_start_huber",
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine_info(),
        "n_points": len(data),
        "jaxscale": {
            "n_starts": res.n_starts, "seconds_first_call_incl_compile": first, "seconds_steady_median": steady,
            "seconds_all": times, "fits_per_s": res.n_starts / steady, "fits_per_s_incl_compile": res.n_starts / first,
            "best_objective": res.objective, "n_at_best": res.n_at_best, "params": res.params,
            "total_iterations": int(res.starts["n_iter"].sum()), "mixed_precision": res.settings["mixed_precision"],
            "status": res.starts["status"].value_counts().to_dict(),
        },
    }
    print(f"jaxscale: {res.n_starts} starts in {steady:.3f} s steady ({res.n_starts / steady:,.0f} fits/s); "
          f"first call incl. compile {first:.2f} s; objective {res.objective:.10g}; {res.n_at_best} at best")

    # The same protocol with pure float64 trajectories (mixed_precision=False), for the record.
    jaxscale.fit("chinchilla", data, starts=starts, mixed_precision=False)
    t64 = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        r64 = jaxscale.fit("chinchilla", data, starts=starts, mixed_precision=False)
        t64.append(time.perf_counter() - t0)
    out["jaxscale_float64_only"] = {"seconds_steady_median": float(np.median(t64)), "seconds_all": t64,
                                    "fits_per_s": r64.n_starts / float(np.median(t64)),
                                    "best_objective": r64.objective, "n_at_best": r64.n_at_best,
                                    "total_iterations": int(r64.starts["n_iter"].sum())}
    print(f"jaxscale, float64 only: {float(np.median(t64)):.3f} s steady ({r64.n_starts / float(np.median(t64)):,.0f} "
          f"fits/s); objective {r64.objective:.10g}; {r64.n_at_best} at best")

    if not args.skip_scipy:
        N, D, L = data.covariates["N"], data.covariates["D"], data.y
        idx = np.linspace(0, len(starts) - 1, min(args.scipy_starts, len(starts))).round().astype(int)
        for variant in ("lean", "epoch"):
            s = scipy_epoch_fits(N, D, L, starts[idx], variant=variant)
            s["best_objective"] = s.pop("objective")
            s["same_optimum"] = bool(abs(s["best_objective"] - res.objective) <= 1e-6 * res.objective)
            s["ratio_jaxscale_over_scipy"] = out["jaxscale"]["fits_per_s"] / s["fits_per_s"]
            s["ratio_incl_compile"] = out["jaxscale"]["fits_per_s_incl_compile"] / s["fits_per_s"]
            out[f"scipy_{variant}"] = s
            print(f"scipy_{variant}: {s['n_starts']} starts in {s['seconds']:.2f} s ({s['fits_per_s']:.1f} fits/s); "
                  f"objective {s['best_objective']:.10g}; same optimum: {s['same_optimum']}; "
                  f"jaxscale/scipy = {s['ratio_jaxscale_over_scipy']:.1f}x (incl. compile {s['ratio_incl_compile']:.1f}x)")

    if args.big:
        key = jax.random.key(0)
        t0 = time.perf_counter()
        big = jaxscale.fit("chinchilla", data, starts=args.big, key=key, chunk_size=min(args.big, 1 << 20))
        dt = time.perf_counter() - t0
        mem = None
        try:
            mem = jax.devices()[0].memory_stats().get("peak_bytes_in_use")
        except Exception:
            pass
        out["big"] = {"n_starts": args.big, "seconds_incl_compile": dt, "fits_per_s": args.big / dt,
                      "best_objective": big.objective, "n_at_best": big.n_at_best, "peak_device_bytes": mem}
        print(f"big: {args.big:,} random starts in {dt:.2f} s ({args.big / dt:,.0f} fits/s); objective {big.objective:.10g}")

    write_atomic(path, json.dumps(out, indent=2, default=float) + "\n")
    print(f"wrote {path}")
    return out


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
