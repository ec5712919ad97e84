"""Calibration of extrapolated predictive intervals: jaxscale.forecast.backtest's methods on three public data sources.

Every forecast here is an *extrapolation*: each method is fitted on the small end of the data and its predictive
distribution is scored on the held-out large end. Per source and method, pooled over every held-out point of the
source: coverage of the central 50/80/90/95% predictive intervals (a calibrated forecast covers each at its nominal
rate), the mean 90% interval score (Gneiting & Raftery 2007, Eq. 43) over the actual value (``rel_interval_score``:
width plus penalties for misses, lower is better), the mean CRPS (target units; ``mean_rel_crps`` is it over the
actual value), the median |relative error| of the point forecast, wall seconds (compilation included), held-out
points and failed backtests; for stacked forecasts the mean stacking weights too.

Sources (the data sets bundled with jaxscale, ``jaxscale.datasets``; each README describes them):

* ``revisiting`` -- Alabdulmohsin, Neyshabur, Zhai (2022, arXiv:2209.06640): each (Domain, Task, Model) learning
  curve of the NMT, LM, BB and IC domains, fitted on its ``Training == 1`` rows, scored on its ``Training == 0`` rows
  (the file's own split, larger x), law ``power`` (``E + A x^-alpha``, resource ``x = Seen Examples``). Exact
  duplicate rows are dropped first, as in ``bench_backtest.py``. IC has 72 curves (~15,000 held-out points):
  ``--ic-curves K`` runs K of them, ``sorted(Task, Model)[::72 // K][:K]`` -- the default 24 is every 3rd curve --
  and ``--ic-curves 0`` all 72.
* ``chinchilla`` -- Epoch AI's digitised Chinchilla points (Besiroglu et al. 2024, arXiv:2404.10102), law
  ``chinchilla`` with ``N = Model Size``, ``C = Training FLOP`` (``D = C / 6N``), ``loss``, minus the 5 highest
  losses as Epoch's fits drop them (its README; ``drop_top=5``, as tests/conftest.py and ``jaxscale bench`` do):
  three backtests, fitted on ``C <= c`` and scored on ``C > c`` for c = 1e20, 3e20, 1e21 (104 + 63 + 23 held-out
  points, pooled: a point above 1e21 is forecast three times). Starts: the law's default 4,500-point grid
  (Hoffmann's / Epoch's, ``--chinchilla-starts grid``); ``--chinchilla-starts 256`` uses 256 random starts instead.
* ``muennighoff`` -- Muennighoff et al. (2023, arXiv:2305.16264), the 182 runs of their parametric fit, law
  ``data_constrained`` (``N = params``, ``D = tokens``, ``U = unique_tokens``, ``val_loss``) with the base law's
  E, A, B, alpha, beta fixed at the authors' Chinchilla-C4 fit and R_D*, R_N* fitted, as the paper does (and as
  tests/test_fit.py and notebooks/04_allocation.ipynb do): fitted on N <= 4.2465e9 (the second-largest model),
  scored on the 7 runs of the largest model, N = 8.67e9. ``fixed=`` applies to every law of a stack, so in the
  stack ``["data_constrained", "chinchilla"]`` the Chinchilla member is the authors' fixed base law (no free
  parameter, no data-repetition penalty).

Methods (``method=`` of ``backtest``; key 0, level 0.9 throughout):

* ``fit`` -- the point fit's prediction plus its scaled training log residuals (noise only).
* ``bootstrap`` -- pairs bootstrap predictive interval, ``--resamples`` (200) replicates, ``starts="warm"``.
* ``bayes`` -- NUTS posterior predictive; to keep it affordable on a CPU ``--bayes-warmup 300 --bayes-samples 300
  --bayes-chains 2`` (diagnostics often fail at this budget: those warnings are counted, not hidden) and, on
  Revisiting, only ``--bayes-max-curves`` (5) evenly spaced curves per domain (of the curves run; 0 = all).
  ``--skip-bayes`` drops it.
* ``calibrated`` -- the default: the point fit with the leave-future-out calibrated error of extrapolating.
* ``calibrated_stacked`` -- ``method="calibrated"`` with a stack of laws, weighted by leave-future-out log score:
  Revisiting ``[power, broken_power]`` (both in ``x``), Chinchilla ``[chinchilla, kaplan]`` (both in N, D),
  Muennighoff ``[data_constrained, chinchilla]``.

Every backtest runs inside ``try/except JaxscaleError`` (its message is recorded per curve and method; an
unexpected exception is recorded with its traceback and flagged as ``unexpected``) and ``warnings.catch_warnings
(record=True)`` (counted per method, messages kept). Revisiting's per-domain numbers are reported too, and
Chinchilla's per split.

CRPS is computed on the natural scale from the predictive draws, so a heavy-tailed predictive dominates its mean:
bayes's Student-t noise with a small sampled ``df`` gives draws far outside the data (on IC ``inet_5 MiX/L/16`` a
draw of ~2e9 for an error rate of ~0.29, mean CRPS 27 on that curve), which is why bayes's pooled mean CRPS on
Revisiting is orders of magnitude above the others while its interval score is not; the per-point PIT and
rel_error in the JSON allow robust re-pooling.

Targets, per source: pooled 90% coverage in [0.85, 0.95] and 50% coverage in [0.42, 0.58] (checked for every
method; the ones that matter are ``calibrated`` and ``calibrated_stacked``); calibrated mean rel interval score
<= 0.8 x that of the best of fit / bootstrap / bayes; calibrated median |rel error| <= the best of theirs. The last
two compare each baseline on the curves where both it and the calibrated method ran (bayes runs on fewer
Revisiting curves), and pass when they hold against every baseline. Also a warm ``calibrated`` backtest of one
Revisiting curve (the first BB curve, or the first curve run): run twice, the second timed (target <= 5 s).

The JSON (``benchmarks/results/bench_calibration-<backend>.json`` unless ``--out``) holds the date, command,
machine, versions, settings, pooled summaries, targets and one record per (source, curve, method): n_train,
n_test, coverage, means, seconds, warnings, failure text, stacking weights, and the held-out points' rel_error and
PIT, so any pooling can be redone from it.

Usage and run times (2-core CPU VM; every new curve length compiles the solvers anew, which dominates)::

    python benchmarks/bench_calibration.py                                   # everything: ~16 min (955 s measured)
    python benchmarks/bench_calibration.py --methods fit calibrated --sources chinchilla muennighoff   # ~1 min
    python benchmarks/bench_calibration.py --sources revisiting --ic-curves 3 --bayes-max-curves 1     # ~4 min
    python benchmarks/bench_calibration.py --ic-curves 0 --bayes-max-curves 0   # all 92 curves, bayes on all: hours
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import pathlib
import sys
import time
import traceback
import warnings
from collections import Counter

import numpy as np
import pandas as pd

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_backtest import load as load_revisiting, machine_info  # noqa: E402

SOURCES = ("revisiting", "chinchilla", "muennighoff")
METHODS = ("fit", "bootstrap", "bayes", "calibrated", "calibrated_stacked")
BASELINES = ("fit", "bootstrap", "bayes")
DOMAINS = ("NMT", "LM", "BB", "IC")
LEVELS = (50, 80, 90, 95)
CHINCHILLA_CUTOFFS = (1e20, 3e20, 1e21)
# Muennighoff et al.'s base law (Chinchilla fitted on C4; datablations README, notebook cell 7), held fixed.
MUENNIGHOFF_BASE = dict(E=float(np.exp(0.6254804)), A=float(np.exp(6.255414)), B=float(np.exp(7.3049974)),
                        alpha=0.3526596, beta=0.3526596)
TARGETS = {"coverage_90": (0.85, 0.95), "coverage_50": (0.42, 0.58), "interval_score_ratio": 0.8,
           "median_abs_rel_error_ratio": 1.0, "warm_seconds": 5.0}


# ----------------------------------------------------------------------------------------------------------------------
# The cases: one backtest problem each (a curve, or a split of one data set)


def ic_subset(curves: list, k: int) -> list:
    """``k`` of the IC curves, ``curves[::n // k][:k]`` in sorted (Task, Model) order; ``k = 0``: all."""
    if not k or k >= len(curves):
        return curves
    return curves[:: max(1, len(curves) // k)][:k]


def revisiting_cases(args, jaxscale) -> list[dict]:
    frame = load_revisiting(list(DOMAINS))  # revisiting_lang and revisiting_vision
    power = jaxscale.laws.get("power", resource="x")  # one Law object each: solvers compile per law and shape
    broken = jaxscale.laws.get("broken_power", resource="x")
    cases = []
    for domain in DOMAINS:
        curves = list(frame[frame.Domain == domain].groupby(["Task", "Model"], sort=True))
        if domain == "IC":
            curves = ic_subset(curves, args.ic_curves)
        k = len(curves) if not args.bayes_max_curves else min(args.bayes_max_curves, len(curves))
        bayes_at = set(np.linspace(0, len(curves) - 1, k).round().astype(int).tolist()) if k else set()
        for i, ((task, model), curve) in enumerate(curves):
            cases.append({"source": "revisiting", "group": domain, "curve": f"{domain}|{task}|{model}",
                          "data": curve.reset_index(drop=True), "split": "Training", "law": power,
                          "stack": [power, broken], "columns": {"x": "Seen Examples", "loss": "Loss"},
                          "options": {}, "bayes": i in bayes_at})
    return cases


def chinchilla_cases(args, jaxscale) -> list[dict]:
    data = jaxscale.datasets.load("epoch_chinchilla")
    starts = args.chinchilla_starts
    options = {"starts": int(starts)} if starts != "grid" else {}
    return [{"source": "chinchilla", "group": f"C<={c:g}", "curve": f"C<={c:g}", "data": data, "split": {"C": c},
             "law": jaxscale.laws.get("chinchilla"), "stack": ["chinchilla", "kaplan"], "drop_top": 5,
             "columns": {"N": "Model Size", "C": "Training FLOP", "loss": "loss"}, "options": options, "bayes": True}
            for c in CHINCHILLA_CUTOFFS]


def muennighoff_cases(args, jaxscale) -> list[dict]:
    data = jaxscale.datasets.load("muennighoff")
    sizes = np.unique(data["params"].to_numpy())
    cut = float(sizes[-2])
    return [{"source": "muennighoff", "group": f"N<={cut:.4g}", "curve": f"N<={cut:.4g}", "data": data,
             "split": {"N": cut}, "law": jaxscale.laws.get("data_constrained"),
             "stack": ["data_constrained", "chinchilla"],
             "columns": {"N": "params", "D": "tokens", "U": "unique_tokens", "loss": "val_loss"},
             "options": {"fixed": dict(MUENNIGHOFF_BASE)}, "bayes": True}]


CASES = {"revisiting": revisiting_cases, "chinchilla": chinchilla_cases, "muennighoff": muennighoff_cases}


# ----------------------------------------------------------------------------------------------------------------------
# One backtest


def call(case: dict, method: str, args):
    from jaxscale.forecast import backtest

    kw = dict(case["columns"], **case["options"])
    law = case["law"]
    if method == "calibrated_stacked":
        law, m = case["stack"], "calibrated"
    else:
        m = method
    if method == "bootstrap":
        kw["starts"] = "warm"
    if method == "bayes":
        kw.update(num_warmup=args.bayes_warmup, num_samples=args.bayes_samples, num_chains=args.bayes_chains)
    return backtest(law, case["data"], split=case["split"], method=m, level=0.9, key=0, resamples=args.resamples,
                    drop_top=case.get("drop_top", 0), **kw)


def sig(values, digits: int = 6) -> list:
    return [float(f"{v:.{digits}g}") if np.isfinite(v) else None for v in np.asarray(values, np.float64)]


def run_one(case: dict, method: str, args) -> tuple[dict, pd.DataFrame | None]:
    from jaxscale.errors import JaxscaleError

    rec = {"source": case["source"], "group": case["group"], "curve": case["curve"], "method": method}
    t = time.perf_counter()
    table = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            res = call(case, method, args)
        except JaxscaleError as e:  # one failure is recorded and excluded, never the end of the run
            rec["failed"] = f"{type(e).__name__}: {e}"
        except Exception as e:  # not a JaxscaleError: a library bug, recorded with its traceback
            rec["failed"] = f"{type(e).__name__}: {e}"
            rec["unexpected"] = True
            rec["traceback"] = traceback.format_exc()
            print(f"UNEXPECTED {type(e).__name__} in {case['curve']} / {method}:\n{rec['traceback']}", file=sys.stderr)
    rec["seconds"] = time.perf_counter() - t
    rec["n_warnings"] = len(caught)
    rec["warnings"] = sorted({f"{w.category.__name__}: {w.message}"[:400] for w in caught})
    if "failed" in rec:
        return rec, None
    table = res.table
    s = res.summary
    rec.update({"n_train": int(s["n_train"]), "n_test": int(s["n_test"])})
    rec.update(point_metrics(table))
    if res.forecast.weights is not None:
        rec["weights"] = {k: float(v) for k, v in res.forecast.weights.items()}
    prov = res.forecast.provenance
    rec["axis"] = prov.get("axis")
    if prov.get("settings", {}).get("fallback"):
        rec["fallback"] = prov["settings"]["fallback"]
    rec["points"] = {"rel_error": sig(table["rel_error"]), "pit": sig(table["pit"]), "actual": sig(table["actual"])}
    return rec, table


def point_metrics(table: pd.DataFrame) -> dict:
    """Means over a table of held-out points (one curve's, or a pooled one)."""
    out = {"n_points": int(len(table))}
    for lv in LEVELS:
        out[f"coverage_{lv}"] = float(table[f"covered_{lv}"].mean())
    out["mean_rel_interval_score"] = float(table["rel_interval_score"].mean())
    out["mean_crps"] = float(table["crps"].mean())
    out["mean_rel_crps"] = float((table["crps"] / table["actual"].abs()).mean())
    out["median_abs_rel_error"] = float(table["rel_error"].abs().median())
    out["mean_abs_rel_error"] = float(table["rel_error"].abs().mean())
    return out


# ----------------------------------------------------------------------------------------------------------------------
# Pooling and targets


def pool(items: list[tuple[dict, pd.DataFrame | None]], methods) -> dict:
    """Per method: pooled point metrics over every held-out point of ``items``, seconds, failures, warnings."""
    out = {}
    for m in methods:
        mine = [(r, t) for r, t in items if r["method"] == m]
        if not mine:
            continue
        ok = [t for _, t in mine if t is not None]
        d = point_metrics(pd.concat(ok, ignore_index=True)) if ok else {"n_points": 0}
        d.update({"n_backtests": len(mine), "n_failed": sum(t is None for _, t in mine),
                  "n_unexpected": sum(bool(r.get("unexpected")) for r, _ in mine),
                  "seconds": float(sum(r["seconds"] for r, _ in mine)),
                  "n_warnings": int(sum(r["n_warnings"] for r, _ in mine)),
                  "n_fallback": sum("fallback" in r for r, _ in mine)})
        msgs = Counter(w.split(":")[0] + ": " + w.split(": ", 1)[-1][:90] for r, _ in mine for w in r["warnings"])
        d["top_warnings"] = dict(msgs.most_common(5))
        weights = [r["weights"] for r, _ in mine if "weights" in r]
        if weights:
            d["mean_weights"] = {k: float(np.mean([w[k] for w in weights])) for k in weights[0]}
        out[m] = d
    return out


def common(items, a: str, b: str, metric) -> tuple[float, float, int]:
    """``metric`` of methods a and b pooled over the curves where both succeeded."""
    ta = {r["curve"]: t for r, t in items if r["method"] == a and t is not None}
    tb = {r["curve"]: t for r, t in items if r["method"] == b and t is not None}
    both = [c for c in ta if c in tb]
    if not both:
        return float("nan"), float("nan"), 0
    pa, pb = pd.concat([ta[c] for c in both]), pd.concat([tb[c] for c in both])
    return metric(pa), metric(pb), len(both)


def targets(items, pooled: dict) -> dict:
    out = {}
    for key, lv in (("coverage_90", 90), ("coverage_50", 50)):
        lo, hi = TARGETS[key]
        out[key] = {"range": [lo, hi], "by_method": {
            m: {"value": d.get(f"coverage_{lv}"), "pass": bool(lo <= d.get(f"coverage_{lv}", np.nan) <= hi)}
            for m, d in pooled.items()}}
    metrics = {"interval_score": (lambda t: float(t["rel_interval_score"].mean()), TARGETS["interval_score_ratio"],
                                  "mean rel_interval_score <= 0.8 x each baseline's (on the curves both ran)"),
               "median_abs_rel_error": (lambda t: float(t["rel_error"].abs().median()),
                                        TARGETS["median_abs_rel_error_ratio"],
                                        "median |rel_error| <= each baseline's (on the curves both ran)")}
    for name, (fn, bound, rule) in metrics.items():
        for cal in ("calibrated", "calibrated_stacked"):
            if cal not in pooled:
                continue
            per = {}
            for b in BASELINES:
                if b not in pooled:
                    continue
                x, y, n = common(items, cal, b, fn)
                if n:
                    per[b] = {"calibrated": x, "baseline": y, "ratio": x / y if y else float("inf"), "n_curves": n}
            worst = max((v["ratio"] for v in per.values()), default=float("nan"))
            best = min(per, key=lambda b: per[b]["baseline"]) if per else None
            out[f"{cal}_{name}"] = {"rule": rule.replace("calibrated", cal), "bound": bound, "baselines": per,
                                    "best_baseline": best, "worst_ratio": worst,
                                    "pass": bool(per) and bool(worst <= bound)}
    return out


# ----------------------------------------------------------------------------------------------------------------------
# Output


def fmt(v, spec):
    return format(v, spec) if isinstance(v, (int, float)) and np.isfinite(v) else "-"


def print_table(summary: dict, methods) -> None:
    head = (f"{'source / group':<22}{'method':<20}{'pts':>6}{'fail':>5}{'cov50':>7}{'cov80':>7}{'cov90':>7}{'cov95':>7}"
            f"{'relIS90':>9}{'CRPS':>10}{'relCRPS':>9}{'med|re|':>9}{'sec':>8}{'warn':>6}  weights")
    print("Pooled over held-out points; coverage of central 50/80/90/95% predictive intervals; relIS90 = mean 90% "
          "interval score / actual; CRPS in target units; med|re| = median |relative error| of the point forecast")
    print(head)
    print("-" * len(head))
    for src, s in summary.items():
        rows = [(src, s["all"])] + ([(f"  {g}", d) for g, d in s["groups"].items()] if len(s["groups"]) > 1 else [])
        for label, block in rows:
            for m in methods:
                if m not in block:
                    continue
                d = block[m]
                w = " ".join(f"{k}={v:.2f}" for k, v in d.get("mean_weights", {}).items())
                print(f"{label:<22}{m:<20}{d['n_points']:>6}{d['n_failed']:>5}"
                      + "".join(fmt(d.get(f"coverage_{lv}"), ">7.3f") for lv in LEVELS)
                      + f"{fmt(d.get('mean_rel_interval_score'), '>9.4f')}{fmt(d.get('mean_crps'), '>10.5f')}"
                      + f"{fmt(d.get('mean_rel_crps'), '>9.5f')}{fmt(d.get('median_abs_rel_error'), '>9.5f')}"
                      + f"{d['seconds']:>8.1f}{d['n_warnings']:>6}  {w}")
        print()


def print_targets(all_targets: dict, warm: dict | None) -> None:
    print("Targets")
    for src, t in all_targets.items():
        for key in ("coverage_90", "coverage_50"):
            lo, hi = t[key]["range"]
            cells = "  ".join(f"{m} {fmt(v['value'], '.3f')} {'PASS' if v['pass'] else 'fail'}"
                              for m, v in t[key]["by_method"].items())
            print(f"  {src:<12} {key} in [{lo}, {hi}]: {cells}")
        for key, v in t.items():
            if key.startswith("coverage"):
                continue
            per = "  ".join(f"vs {b}: {fmt(x['calibrated'], '.4g')}/{fmt(x['baseline'], '.4g')}="
                            f"{fmt(x['ratio'], '.3f')} ({x['n_curves']} curves)" for b, x in v["baselines"].items())
            print(f"  {src:<12} {key} (ratio <= {v['bound']}): {'PASS' if v['pass'] else 'fail'}  {per}")
    if warm:
        print(f"  warm calibrated backtest of {warm['curve']}: {warm['seconds']:.3f} s (first call "
              f"{warm['first_seconds']:.2f} s), target <= {TARGETS['warm_seconds']} s: "
              f"{'PASS' if warm['pass'] else 'fail'}")


def clean(obj):
    """JSON-safe: NaN and infinities to None (strict JSON), numpy scalars to Python."""
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    return obj


def versions() -> dict:
    import importlib.metadata as md

    out = {}
    for name in ("jaxscale", "jax", "jaxlib", "numpy", "pandas", "numpyro", "arviz"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = None
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sources", nargs="+", default=list(SOURCES), choices=SOURCES)
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--ic-curves", type=int, default=24,
                    help="IC curves to run: sorted(Task, Model)[::72 // K][:K] (default 24: every 3rd); 0 = all 72")
    ap.add_argument("--resamples", type=int, default=200, help="bootstrap replicates (default 200)")
    ap.add_argument("--skip-bayes", action="store_true", help="drop method bayes")
    ap.add_argument("--bayes-max-curves", type=int, default=5,
                    help="bayes on at most K evenly spaced Revisiting curves per domain (default 5; 0 = all)")
    ap.add_argument("--bayes-warmup", type=int, default=300)
    ap.add_argument("--bayes-samples", type=int, default=300)
    ap.add_argument("--bayes-chains", type=int, default=2)
    ap.add_argument("--chinchilla-starts", default="grid",
                    help="'grid' (the law's 4,500-point default grid) or a number of random starts, e.g. 256")
    ap.add_argument("--out", default=None,
                    help="JSON path (default benchmarks/results/bench_calibration-<backend>.json)")
    args = ap.parse_args(argv)
    if args.chinchilla_starts != "grid" and not args.chinchilla_starts.isdigit():
        ap.error("--chinchilla-starts must be 'grid' or a positive integer")
    methods = [m for m in METHODS if m in args.methods and not (m == "bayes" and args.skip_bayes)]

    import jax

    import jaxscale

    t0 = time.perf_counter()
    items: list[tuple[dict, pd.DataFrame | None]] = []
    cases_run = {}
    for src in [s for s in SOURCES if s in args.sources]:
        cases = CASES[src](args, jaxscale)
        cases_run[src] = cases
        for case in cases:
            for m in methods:
                if m == "bayes" and not case["bayes"]:
                    continue
                rec, table = run_one(case, m, args)
                items.append((rec, table))
                print(f"{src:<11} {case['curve']:<40} {m:<19} {rec['seconds']:6.1f}s "
                      + (f"FAILED {rec['failed'][:120]}" if "failed" in rec else
                         f"train {rec['n_train']:>3} test {rec['n_test']:>4} cov90 {rec['coverage_90']:.2f} "
                         f"relIS {rec['mean_rel_interval_score']:.4f} med|re| {rec['median_abs_rel_error']:.4f}"
                         + (f" w {rec['weights']}" if "weights" in rec else "")), file=sys.stderr, flush=True)

    summary, all_targets = {}, {}
    for src in cases_run:
        mine = [(r, t) for r, t in items if r["source"] == src]
        groups = dict.fromkeys(r["group"] for r, _ in mine)
        summary[src] = {"all": pool(mine, methods),
                        "groups": {g: pool([(r, t) for r, t in mine if r["group"] == g], methods) for g in groups}}
        all_targets[src] = targets(mine, summary[src]["all"])
        if src == "revisiting":
            all_targets[src]["by_domain"] = {g: targets([(r, t) for r, t in mine if r["group"] == g],
                                                        summary[src]["groups"][g]) for g in groups}

    warm = None
    if "revisiting" in cases_run:
        cases = cases_run["revisiting"]
        case = next((c for c in cases if c["group"] == "BB"), cases[0])
        first = time.perf_counter()
        try:
            call(case, "calibrated", args)
            first = time.perf_counter() - first
            t = time.perf_counter()
            call(case, "calibrated", args)
            sec = time.perf_counter() - t
            warm = {"curve": case["curve"], "seconds": sec, "first_seconds": first,
                    "target_seconds": TARGETS["warm_seconds"], "pass": bool(sec <= TARGETS["warm_seconds"])}
        except Exception as e:  # recorded, like every other backtest
            warm = {"curve": case["curve"], "failed": f"{type(e).__name__}: {e}", "pass": False, "seconds": np.nan,
                    "first_seconds": np.nan}
    seconds = time.perf_counter() - t0

    print_table(summary, methods)
    print_targets({s: {k: v for k, v in t.items() if k != "by_domain"} for s, t in all_targets.items()}, warm)
    unexpected = [f"{r['curve']} / {r['method']}: {r['failed']}" for r, _ in items if r.get("unexpected")]
    if unexpected:
        print(f"{len(unexpected)} unexpected (non-JaxscaleError) failures: " + "; ".join(unexpected[:5]))
    print(f"{len(items)} backtests in {seconds:.1f} s")

    out = {
        "benchmark": "bench_calibration",
        "date": dt.date.today().isoformat(),
        "command": " ".join(["python", "benchmarks/bench_calibration.py",
                             *(argv if argv is not None else sys.argv[1:])]),
        "machine": machine_info(),
        "versions": versions(),
        "jaxscale_version": jaxscale.__version__,
        "settings": {"sources": list(cases_run), "methods": methods, "level": 0.9, "key": 0,
                     "resamples": args.resamples, "ic_curves": args.ic_curves,
                     "ic_subset_rule": "sorted(Task, Model)[::72 // K][:K]; K = 0: all",
                     "bayes": {"num_warmup": args.bayes_warmup, "num_samples": args.bayes_samples,
                               "num_chains": args.bayes_chains, "max_revisiting_curves_per_domain":
                               args.bayes_max_curves},
                     "chinchilla_starts": args.chinchilla_starts, "chinchilla_drop_top": 5,
                     "chinchilla_cutoffs_C": list(CHINCHILLA_CUTOFFS),
                     "muennighoff_fixed": MUENNIGHOFF_BASE, "targets": TARGETS,
                     "stacks": {"revisiting": ["power", "broken_power"], "chinchilla": ["chinchilla", "kaplan"],
                                "muennighoff": ["data_constrained", "chinchilla"]}},
        "seconds": seconds,
        "summary": summary,
        "targets": all_targets,
        "warm_calibrated": warm,
        "records": [r for r, _ in items],
    }
    path = pathlib.Path(args.out or ROOT / "benchmarks" / "results" / f"bench_calibration-{jax.default_backend()}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    records = out.pop("records")
    head = json.dumps(clean(out), indent=1, default=str, allow_nan=False)
    body = ",\n".join("  " + json.dumps(clean(r), default=str, allow_nan=False) for r in records)
    path.write_text(head[:-2] + ',\n "records": [\n' + body + "\n ]\n}\n")  # one line per record
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
