"""Whole training curves on the OLMo ladder: laws of the loss curve against Chinchilla and a power law in tokens.

Data: the OLMo "peteish" ladder bundled with jaxscale (``jaxscale.datasets.olmo_curves``: the cosine runs without
their ``-rerun`` duplicates, the constant-LR runs, and the WSD decay tails with their constant-LR history; C4 loss).
Sizes 190M-1B at 0.5-10x Chinchilla compute.

Two studies, in one run:

* **Across sizes.** Fit each law on every checkpoint of the 190M-760M runs of all three schedules, forecast every
  checkpoint of the 1B runs. Scored by the median |relative error| on the 1B runs' final losses and on all their
  checkpoints past 10% of training. ``chinchilla (finals)`` is today's baseline: Chinchilla fitted on the final
  losses of the 190M-760M cosine runs only (it cannot see a schedule). ``tissue`` and ``multi_power`` have no N
  term: they are shown side by side, as laws of one size would fare across sizes.
* **Early run.** Per 760M and 1B cosine run: fit the law on the checkpoints up to 30% of the run's tokens, forecast
  its final loss from its planned schedule (cosine to 0.1x peak; steps = ceil(20 m N / batch), warmup =
  round(N / batch), as in the ladder's code). Baseline: ``E + A D^-alpha`` on the same points. Also
  ``curve_nd + smaller``: ``curve_nd`` fitted on the early points together with every finished run of the smaller
  sizes (all schedules).

Every fit is jaxscale's default (Huber on log loss, delta 1e-3, the law's default starts). Times are wall-clock
per fit, compilation included.

Usage::

    python benchmarks/bench_curves.py        # ~2-4 min on a 2-core CPU
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import pathlib
import platform
import time
import warnings

import numpy as np
import pandas as pd

ROOT = pathlib.Path(__file__).resolve().parents[1]
ACROSS = ("curve_nd", "chinchilla", "chinchilla (finals)", "tissue", "multi_power")
EARLY = ("curve", "tissue", "multi_power", "power in D", "curve_nd + smaller")


def machine_info():
    import jax

    dev = jax.devices()[0]
    return {"python": platform.python_version(), "platform": platform.platform(), "processor": platform.processor(),
            "cpu_count": os.cpu_count(), "jax": jax.__version__, "backend": jax.default_backend(),
            "device": getattr(dev, "device_kind", str(dev)), "n_devices": jax.device_count()}


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def across_sizes(jaxscale, rows, data):
    size = rows["size"].to_numpy()
    train, test = data.subset(size != "1B"), data.subset(size == "1B")
    t_rows = rows[size == "1B"]
    final = (t_rows.groupby("run").step.transform("max") == t_rows.step).to_numpy()
    frac = (t_rows.tokens / (20 * t_rows.chinchilla_multiplier * t_rows.params)).to_numpy()
    sched = t_rows.schedule.to_numpy()
    out = {}
    for name in ACROSS:
        if name == "chinchilla (finals)":
            r = rows[(size != "1B") & (rows.schedule == "cosine").to_numpy()]
            r = r[(r.groupby("run").step.transform("max") == r.step).to_numpy()]
            fit_data = jaxscale.ScalingData.from_arrays(N=r.params, D=r.tokens, loss=r.loss_c4)
            res, seconds = _timed(lambda: jaxscale.fit("chinchilla", fit_data))
            pred = res.predict(N=t_rows.params.to_numpy(), D=t_rows.tokens.to_numpy())
        else:
            res, seconds = _timed(lambda: jaxscale.fit(name.split()[0], train))
            pred = res.predict(test)
        err = np.abs(pred / test.y - 1.0)
        entry = {"seconds": seconds, "n_train": int(res.n_points) if hasattr(res, "n_points") else None,
                 "params": {k: float(v) for k, v in res.params.items()},
                 "finals_median": float(np.median(err[final])), "finals_max": float(err[final].max()),
                 "past10_median": float(np.median(err[frac > 0.1])), "past10_max": float(err[frac > 0.1].max())}
        for s in ("cosine", "constant", "wsd"):
            m = sched == s
            entry[f"{s}_finals_median"] = float(np.median(err[m & final]))
            entry[f"{s}_past10_median"] = float(np.median(err[m & (frac > 0.1)]))
        out[name] = entry
        print(f"  {name:<20} finals {100 * entry['finals_median']:.2f}% (max {100 * entry['finals_max']:.2f}%), "
              f"past 10% {100 * entry['past10_median']:.2f}%   {seconds:.1f} s", flush=True)
    return out


def early_run(jaxscale, rows, history, fraction):
    from jaxscale.schedule import Schedule, planned

    roles = jaxscale.datasets.OLMO_CURVE_ROLES
    runs = []
    for run, g in rows[rows.schedule == "cosine"].groupby("run", sort=False):
        size = g["size"].iloc[0]
        if size not in ("760M", "1B"):
            continue
        N, m, b = float(g.params.iloc[0]), float(g.chinchilla_multiplier.iloc[0]), float(g.batch_size_tokens.iloc[0])
        plan = Schedule("cosine", steps=int(np.ceil(20 * m * N / b)), warmup=int(round(N / b)),
                        peak=float(g.lr_peak.iloc[0]), final=0.1)
        early = g[g.tokens <= fraction * 20 * m * N]
        last = g.iloc[-1]
        at = planned(plan, N=N, batch_size=b, steps=[int(last.step)])
        data = jaxscale.ScalingData.from_frame(early, loss="loss_c4", **roles)
        entry = {"run": run, "n_early": len(early), "actual": float(last.loss_c4)}
        for name in EARLY:
            if name == "power in D":
                d = jaxscale.ScalingData.from_arrays(D=early.tokens, loss=early.loss_c4)
                res, seconds = _timed(lambda: jaxscale.fit(jaxscale.laws.get("power", resource="D"), d))
                pred = float(res.predict(D=float(last.tokens)))
            elif name == "curve_nd + smaller":
                order = ("190M", "370M", "760M", "1B")
                smaller = rows[rows["size"].isin(order[:order.index(size)])]
                both = jaxscale.ScalingData.from_frame(
                    pd.concat([smaller, early]), history=history, loss="loss_c4", **roles)
                res, seconds = _timed(lambda: jaxscale.fit("curve_nd", both))
                pred = float(res.predict(**{c: at[c].to_numpy() for c in res.law.covariates})[0])
            else:
                try:
                    res, seconds = _timed(lambda: jaxscale.fit(name, data))
                    pred = float(res.predict(**{c: at[c].to_numpy() for c in res.law.covariates})[0])
                except jaxscale.JaxscaleError as e:  # a failed fit is reported, not hidden
                    entry[name] = {"error": str(e)}
                    continue
            entry[name] = {"predicted": pred, "rel_error": pred / entry["actual"] - 1.0, "seconds": seconds}
        runs.append(entry)
        print("  " + run + "  " + "  ".join(
            f"{n}: {100 * entry[n]['rel_error']:+.2f}%" if "rel_error" in entry[n] else f"{n}: failed"
            for n in EARLY), flush=True)
    summary = {}
    for name in EARLY:
        errs = [abs(r[name]["rel_error"]) for r in runs if "rel_error" in r[name]]
        summary[name] = {"median_abs_rel_error": float(np.median(errs)), "max_abs_rel_error": float(np.max(errs)),
                         "n_runs": len(errs), "n_failed": len(runs) - len(errs),
                         "too_high": int(sum(r[name]["rel_error"] > 0 for r in runs if "rel_error" in r[name])),
                         "seconds_median": float(np.median([r[name]["seconds"] for r in runs
                                                            if "seconds" in r[name]]))}
    return summary, runs


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fraction", type=float, default=0.3, help="early-run: fraction of tokens fitted (0.3)")
    ap.add_argument("--out", default=None, help="JSON path (default benchmarks/results/bench_curves-<backend>.json)")
    args = ap.parse_args(argv)
    import jax

    jax.config.update("jax_enable_x64", True)
    import jaxscale

    warnings.simplefilter("ignore", UserWarning)
    t0 = time.perf_counter()
    rows, history = jaxscale.datasets.olmo_curves_frames()
    data = jaxscale.ScalingData.from_frame(rows, history=history, loss="loss_c4", **jaxscale.datasets.OLMO_CURVE_ROLES)
    print("across sizes: fit 190M-760M (all schedules), forecast 1B")
    across = across_sizes(jaxscale, rows, data)
    print(f"early run: fit the first {args.fraction:.0%} of each 760M / 1B cosine run, forecast its final loss")
    early_summary, early_runs = early_run(jaxscale, rows, history, args.fraction)
    for name, s in early_summary.items():
        print(f"  {name:<20} median |error| {100 * s['median_abs_rel_error']:.2f}% (max "
              f"{100 * s['max_abs_rel_error']:.2f}%), too high in {s['too_high']} of {s['n_runs']}, "
              f"{s['n_failed']} failed")
    out = {
        "benchmark": "bench_curves",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "jaxscale_version": jaxscale.__version__,
        "data": "jaxscale.datasets.olmo_curves_frames(): OLMo peteish ladder, C4 loss",
        "targets": {"across_finals_median": 0.005, "across_past10_median": 0.01, "early_median": 0.007},
        "seconds": time.perf_counter() - t0,
        "across_sizes": across,
        "early_run": {"fraction": args.fraction, "summary": early_summary, "runs": early_runs},
    }
    path = pathlib.Path(args.out or ROOT / "benchmarks" / "results" / f"bench_curves-{jax.default_backend()}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    with open(tmp, "w") as f:
        f.write(json.dumps(out, indent=2, default=float) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
