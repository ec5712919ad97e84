"""Bootstrap throughput and Epoch's reproduction: jaxscale vs scipy on the same resamples, in the same run.

Data: Epoch AI's 240 Chinchilla points (bundled: jaxscale.datasets, epoch_chinchilla), summed
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
3. ``compare`` (``--compare N``, the same N resamples solved three ways): the
   full grid (the reference), ``starts="auto"`` (the default: the point fit's
   distinct optima) and ``"warm"``. Per replicate the relative objective gap
   to the grid's optimum, how many are worse by more than 1e-6 relative, the
   largest parameter difference, and the SEs from each.

Usage::

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_bootstrap.py                     # CPU defaults
    python benchmarks/bench_bootstrap.py --compare 300 --scipy-resamples 0 --grid-resamples 0 --scipy-grid-starts 0 \
        --out benchmarks/results/bench_bootstrap-cpu-compare-auto.json          # auto vs grid (~6 min on 2 cores)
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

from bench_fit import DEFAULT_DATA, hoffmann_grid, machine_info  # noqa: E402

EPOCH_SE = dict(A=124.52232, B=1293.28410, E=0.02566, alpha=0.01540, beta=0.02060)
EPOCH_CI = dict(A=(285.214, 743.626), B=(1042.357, 5810.344), E=(1.769, 1.871), alpha=(0.317, 0.373),
                beta=(0.331, 0.415))


# From a warm start, L-BFGS-B at scipy's default tolerances (pgtol 1e-5) stops at once: Huber gradients with
# delta = 1e-3 are below 1e-5 there, so every "refit" returns the start and the bootstrap SEs would be ~0
# (measured: benchmarks/README.md). These tolerances make it converge to the optimum jaxscale finds.
TIGHT = {"ftol": 1e-15, "gtol": 1e-12, "maxiter": 2000}


def _scipy_on_resamples(boot, data, replicates, starts, variant, options=None):
    from jaxscale.bench import scipy_epoch_fits

    N, D, L = data.covariates["N"], data.covariates["D"], data.y
    total, fits, objs = 0.0, 0, []
    for r in replicates:
        counts, _ = boot.resample(int(r))
        rows = np.repeat(np.arange(len(L)), counts)
        s = scipy_epoch_fits(N[rows], D[rows], L[rows], starts, variant=variant, options=options)
        total += s["seconds"]
        fits += s["n_starts"]
        objs.append(s["objective"])
    return {"seconds": total, "fits": fits, "fits_per_s": fits / total, "best_objectives": objs}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=DEFAULT_DATA,
                    help="a CSV in Epoch's format or a data set's name (default %(default)s)")
    ap.add_argument("--resamples", type=int, default=4000, help="resamples for the warm-start reproduction")
    ap.add_argument("--scipy-resamples", type=int, default=200, help="resamples scipy solves in part 1 (0: skip)")
    ap.add_argument("--grid-resamples", type=int, default=8, help="resamples x 4,500 grid starts in part 2")
    ap.add_argument("--scipy-grid-starts", type=int, default=900, help="scipy grid starts on one resample (0: skip)")
    ap.add_argument("--compare", type=int, default=0,
                    help="part 3: this many resamples solved from the grid, 'auto' and 'warm' (e.g. 300 on CPU: "
                         "1.35M grid fits)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", default=None, help="JSON path (default benchmarks/results/bench_bootstrap-<backend>.json)")
    ap.add_argument("--host-devices", type=int, default=os.cpu_count())
    args = ap.parse_args(argv)

    from jaxscale._devices import set_host_device_count

    set_host_device_count(args.host_devices)
    import jax

    import jaxscale

    from jaxscale.bench import load_data

    data, _ = load_data(args.data)  # the 5 highest losses dropped
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

    # 3. auto and warm vs the full grid on the same resamples.
    if args.compare:
        out["compare"] = _compare(jaxscale, data, point, grid, args.compare, args.seed)

    from jaxscale._io import write_atomic

    path = pathlib.Path(args.out or HERE / "results" / f"bench_bootstrap-{jax.default_backend()}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(out, indent=2, default=float) + "\n")
    print(f"wrote {path}")
    return out


def _compare(jaxscale, data, point, grid, n, seed):
    """Part 3: ``n`` resamples from the full grid (the reference), ``starts="auto"`` and ``"warm"``."""
    names = list(EPOCH_SE)
    runs, seconds = {}, {}
    for label, starts in (("auto", "auto"), ("warm", "warm"), ("grid", grid)):
        t0 = time.perf_counter()
        runs[label] = jaxscale.bootstrap("chinchilla", data, n, key=seed, starts=starts, point=point,
                                         progress=label == "grid")
        seconds[label] = time.perf_counter() - t0
    ref = runs["grid"].replicates
    f_ref = ref["objective"].to_numpy()
    part = {"n_resamples": n, "n_grid_starts": len(grid), "seconds": seconds,
            "auto_starts": runs["auto"].settings["auto_starts"],
            "median_n_at_best_grid": float(ref["n_at_best"].median()),
            "se_grid": {k: float(ref[k].std(ddof=1)) for k in names}}
    for label in ("auto", "warm"):
        r = runs[label].replicates
        gap = (r["objective"].to_numpy() - f_ref) / f_ref  # > 0: worse than the grid's optimum
        theta_diff = np.abs(r[list(point.law.fit_names)].to_numpy() - ref[list(point.law.fit_names)].to_numpy())
        part[label] = {
            "n_starts": runs[label].settings["n_starts"], "fits": n * runs[label].settings["n_starts"],
            "worse_than_grid_by_1e-6": int((gap > 1e-6).sum()),
            "share_worse_than_grid_by_1e-6": float(np.mean(gap > 1e-6)),
            "better_than_grid_by_1e-6": int((gap < -1e-6).sum()),
            "max_relative_objective_gap": float(gap.max()), "min_relative_objective_gap": float(gap.min()),
            "median_abs_relative_objective_gap": float(np.median(np.abs(gap))),
            "max_abs_param_difference": {k: float(np.abs(r[k] - ref[k]).max()) for k in names},
            "max_abs_fit_coordinate_difference": dict(zip(point.law.fit_names, theta_diff.max(0).tolist())),
            "se": {k: float(r[k].std(ddof=1)) for k in names},
            "se_ratio_to_grid": {k: float(r[k].std(ddof=1) / ref[k].std(ddof=1)) for k in names},
        }
        print(f"[3] {label} ({part[label]['n_starts']} starts, {seconds[label]:.1f} s) vs grid ({len(grid)} starts, "
              f"{seconds['grid']:.0f} s) on {n} resamples: worse by > 1e-6 relative on "
              f"{part[label]['worse_than_grid_by_1e-6']} (max relative gap {gap.max():.2e}); max |param diff| "
              + ", ".join(f"{k} {v:.2g}" for k, v in part[label]["max_abs_param_difference"].items()))
    return part


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
