"""Bootstrap throughput and Epoch's reproduction: jaxscale vs scipy on the same resamples, in the same run.

Data: Epoch AI's 240 Chinchilla points (../shared/data/epoch_chinchilla), summed
Huber (delta 1e-3) on log-loss, LSE form; pairs resamples.

Parts (each timed, after one compile call where stated):

1. ``warm``: Epoch's protocol, ``--resamples`` (4,000) resamples, one start
   each at the point fit. jaxscale solves all of them; scipy L-BFGS-B (analytic
   gradient, Epoch's notebook objective) solves a sample of the same resamples
   (``--scipy-resamples``) from the same start, on the same rows. Reports the
   SEs and percentile intervals next to Epoch's.
2. ``multistart``: ``--grid-resamples`` resamples x Hoffmann's 4,500-start
   grid. jaxscale fits/s; scipy (the lean NumPy objective, the fastest we could
   write) on ``--scipy-grid-starts`` grid starts of one of the same resamples.
   On an accelerator, ``--grid-resamples 4000`` is the full 18-million-fit
   protocol.
3. ``compare`` (the same resamples): per replicate, does the warm start reach
   the multi-start optimum? And the SEs from each.

Usage::

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_bootstrap.py                     # CPU defaults
    python benchmarks/bench_bootstrap.py --grid-resamples 4000 --scipy-resamples 0   # GPU: full protocol
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_fit import DEFAULT_DATA, hoffmann_grid, machine_info, scipy_runs  # noqa: E402

EPOCH_SE = dict(A=124.52232, B=1293.28410, E=0.02566, alpha=0.01540, beta=0.02060)
EPOCH_CI = dict(A=(285.214, 743.626), B=(1042.357, 5810.344), E=(1.769, 1.871), alpha=(0.317, 0.373),
                beta=(0.331, 0.415))


# From a warm start, L-BFGS-B at scipy's default tolerances (pgtol 1e-5) stops at once: Huber gradients with
# delta = 1e-3 are below 1e-5 there, so every "refit" returns the start and the bootstrap SEs would be ~0
# (measured: benchmarks/README.md). These tolerances make it converge to the optimum jaxscale finds.
TIGHT = {"ftol": 1e-15, "gtol": 1e-12, "maxiter": 2000}


def _scipy_on_resamples(boot, data, replicates, starts, variant, options=None):
    N, D, L = data.covariates["N"], data.covariates["D"], data.y
    total, fits, objs = 0.0, 0, []
    for r in replicates:
        counts, _ = boot.resample(int(r))
        rows = np.repeat(np.arange(len(L)), counts)
        s = scipy_runs(N[rows], D[rows], L[rows], starts, variant, options=options)
        total += s["seconds"]
        fits += s["n_starts"]
        objs.append(s["best_objective"])
    return {"seconds": total, "fits": fits, "fits_per_s": fits / total, "best_objectives": objs}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--resamples", type=int, default=4000, help="resamples for the warm-start reproduction")
    ap.add_argument("--scipy-resamples", type=int, default=200, help="resamples scipy solves in part 1 (0: skip)")
    ap.add_argument("--grid-resamples", type=int, default=8, help="resamples x 4,500 grid starts in part 2")
    ap.add_argument("--scipy-grid-starts", type=int, default=900, help="scipy grid starts on one resample (0: skip)")
    ap.add_argument("--compare", type=int, default=0,
                    help="part 3: this many resamples solved both ways (e.g. 400 on CPU: 1.8M fits)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", default=None, help="JSON path (default benchmarks/results/bench_bootstrap-<backend>.json)")
    ap.add_argument("--host-devices", type=int, default=os.cpu_count())
    args = ap.parse_args(argv)

    from jaxscale._devices import set_host_device_count

    set_host_device_count(args.host_devices)
    import jax

    import jaxscale

    data = jaxscale.ScalingData.from_csv(args.data, N="Model Size", C="Training FLOP", loss="loss").drop_top(5)
    grid = hoffmann_grid()
    point = jaxscale.fit("chinchilla", data, starts=grid)
    out = {"benchmark": "epoch_chinchilla_bootstrap", "date": time.strftime("%Y-%m-%d"), "machine": machine_info(),
           "n_points": len(data), "seed": args.seed}

    # 1. Epoch's protocol: warm starts.
    t0 = time.perf_counter()
    warm = jaxscale.bootstrap("chinchilla", data, args.resamples, key=args.seed, starts="warm", point=point)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    warm = jaxscale.bootstrap("chinchilla", data, args.resamples, key=args.seed, starts="warm", point=point)
    steady = time.perf_counter() - t0
    se, ci = warm.se(), warm.ci(0.95)
    a = warm.derive(jaxscale.derived.exponent_a)
    part1 = {
        "n_resamples": args.resamples, "n_failed": warm.n_failed, "seconds_incl_compile": first,
        "seconds_steady": steady, "fits_per_s": args.resamples / steady,
        "se": se.to_dict(), "se_ratio_to_epoch": {k: se[k] / v for k, v in EPOCH_SE.items()},
        "ci95": {k: [ci.loc[k, "lo"], ci.loc[k, "hi"]] for k in EPOCH_CI}, "epoch_ci95": EPOCH_CI,
        "a": float(a.estimate), "a_sd": float(a.draws.std()),
        "iterations_mean": float(warm.replicates["n_iter"].mean()),
    }
    print(f"[1] warm: {args.resamples} resamples in {steady:.2f} s steady ({args.resamples / steady:,.0f} fits/s), "
          f"{first:.2f} s incl. compile; failed {warm.n_failed}")
    print("    SE / Epoch's SE: " + ", ".join(f"{k} {v:.3f}" for k, v in part1["se_ratio_to_epoch"].items()))
    if args.scipy_resamples:
        reps = np.linspace(0, args.resamples - 1, args.scipy_resamples).round().astype(int)
        ours = warm.replicates.loc[reps, "objective"].to_numpy()
        for label, opts in (("scipy_epoch_default_tol", None), ("scipy_epoch", TIGHT)):
            s = _scipy_on_resamples(warm, data, reps, point.theta[None, :], "epoch", opts)
            s["options"] = opts
            s["same_optimum_share"] = float(np.mean(np.abs(np.array(s["best_objectives"]) - ours) <= 1e-6 * ours))
            s["ratio_jaxscale_over_scipy"] = part1["fits_per_s"] / s["fits_per_s"]
            s["seconds_projected_all"] = args.resamples / s["fits_per_s"]
            del s["best_objectives"]
            part1[label] = s
            print(f"    {label} (Epoch's objective, L-BFGS-B, options {opts}): {s['fits_per_s']:.1f} fits/s on "
                  f"{s['fits']} resamples (all {args.resamples}: ~{s['seconds_projected_all']:.0f} s); same optimum "
                  f"on {100 * s['same_optimum_share']:.0f}%; jaxscale/scipy = {s['ratio_jaxscale_over_scipy']:.1f}x")
    out["warm"] = part1

    # 2. Full multi-start per resample.
    if args.grid_resamples:
        t0 = time.perf_counter()
        multi = jaxscale.bootstrap("chinchilla", data, args.grid_resamples, key=args.seed, starts=grid, point=point)
        dt = time.perf_counter() - t0
        fits = args.grid_resamples * len(grid)
        part2 = {"n_resamples": args.grid_resamples, "n_starts": len(grid), "fits": fits, "seconds_incl_compile": dt,
                 "fits_per_s": fits / dt, "n_failed": multi.n_failed}
        mem = None
        try:
            mem = jax.devices()[0].memory_stats().get("peak_bytes_in_use")
        except Exception:
            pass
        part2["peak_device_bytes"] = mem
        print(f"[2] multistart: {args.grid_resamples} x {len(grid)} = {fits:,} fits in {dt:.2f} s "
              f"({fits / dt:,.0f} fits/s incl. compile)")
        if args.scipy_grid_starts:
            idx = np.linspace(0, len(grid) - 1, args.scipy_grid_starts).round().astype(int)
            s = _scipy_on_resamples(multi, data, [0], grid[idx], "lean")
            s["ratio_jaxscale_over_scipy"] = part2["fits_per_s"] / s["fits_per_s"]
            del s["best_objectives"]
            part2["scipy_lean"] = s
            print(f"    scipy (lean NumPy objective): {s['fits_per_s']:.1f} fits/s on {s['fits']} grid starts of "
                  f"resample 0; jaxscale/scipy = {s['ratio_jaxscale_over_scipy']:.1f}x; all {fits:,} fits would take "
                  f"~{fits / s['fits_per_s'] / 60:.0f} min")
        out["multistart"] = part2

    # 3. Warm vs multi-start on the same resamples.
    if args.compare:
        t0 = time.perf_counter()
        multi = jaxscale.bootstrap("chinchilla", data, args.compare, key=args.seed, starts=grid, point=point,
                                   progress=True)
        dt = time.perf_counter() - t0
        w = warm.replicates.iloc[: args.compare] if args.compare <= args.resamples else jaxscale.bootstrap(
            "chinchilla", data, args.compare, key=args.seed, starts="warm", point=point).replicates
        m = multi.replicates
        gap = (w["objective"].to_numpy() - m["objective"].to_numpy()) / m["objective"].to_numpy()
        worse = gap > 1e-6
        names = list(EPOCH_SE)
        part3 = {
            "n_resamples": args.compare, "seconds_multistart": dt,
            "warm_worse_than_multistart": int(worse.sum()),
            "max_relative_objective_gap": float(gap.max()),
            "max_abs_param_difference": {k: float(np.abs(w[k] - m[k]).max()) for k in names},
            "se_warm": {k: float(w[k].std(ddof=1)) for k in names},
            "se_multistart": {k: float(m[k].std(ddof=1)) for k in names},
            "median_n_at_best_multistart": float(m["n_at_best"].median()),
        }
        print(f"[3] compare on {args.compare} resamples ({dt:.0f} s): warm start worse than the multi-start optimum on "
              f"{int(worse.sum())} (max relative gap {gap.max():.2e}); SE warm vs multi: "
              + ", ".join(f"{k} {part3['se_warm'][k]:.4g}/{part3['se_multistart'][k]:.4g}" for k in names))
        out["compare"] = part3

    path = pathlib.Path(args.out or HERE / "results" / f"bench_bootstrap-{jax.default_backend()}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2, default=float) + "\n")
    print(f"wrote {path}")
    return out


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
