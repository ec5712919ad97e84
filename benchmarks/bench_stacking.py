"""Stacking weights: optax L-BFGS (``jaxscale.forecast.stacking``, the default) against the EM it replaced.

Both solve the same problem, in the same run: the weights on the simplex that maximise a stack's leave-future-out
log score ``sum_p w_p log sum_k a_k p_k(e_p)`` (:func:`jaxscale.forecast.stacking.stacking_objective`, evaluated
in float64 for both). Baseline: :func:`~jaxscale.forecast.stacking.em_weights` (EM, NumPy float64, stops when an
iteration gains less than 1e-10). Candidate: :func:`~jaxscale.forecast.stacking.lbfgs_weights` (optax L-BFGS on
softmax logits, jitted, inputs padded to a shared shape).

Problems:

* ``random``: ``--problems`` (10) per (laws K, pairs P, kind) for K in 2, 3, 5, 8 and P in 40, 200, 1,000, pair
  weights shared per fold (5 folds). Each law's log density is a Normal log density of the shared errors,
  scaled and shifted per law. ``spread``: each law its own spread and bias (optima on a face of the simplex and
  inside it); ``close``: near-copies of one law (a flat objective: EM's slow case).
* ``real``: the stacks ``[power, broken_power]`` that ``backtest`` builds on ``--real-curves`` (6) Revisiting
  learning curves (NMT, LM, BB; the file's own split; curves too short for broken_power's folds give no stack
  and are skipped), captured where the forecast calls the solver.
* ``batch``: ``--batch`` (200) ``spread`` problems with K = 3, P = 100 in one vmapped, jitted call of
  :func:`~jaxscale.forecast.stacking.solve_stacking`, against EM one problem at a time.

Per solver: seconds per solve (median; L-BFGS after one compiling call per padded shape, whose time is reported
apart), iterations, the objective, its gap to the other solver's (L-BFGS minus EM: >= 0 is as good or better)
and the largest weight difference. L-BFGS runs in float64 and in float32. Writes
``benchmarks/results/bench_stacking-<backend>.json``.

Usage::

    python benchmarks/bench_stacking.py [--problems 10] [--real-curves 6] [--batch 200] [--out PATH]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import pathlib
import sys
import time
import warnings

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
KS, PS, KINDS = (2, 3, 5, 8), (40, 200, 1000), ("spread", "close")


def random_problem(rng: np.random.Generator, K: int, P: int, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Relative log densities ``(K, P)`` and fold-shared pair weights of one synthetic stacking problem."""
    from jaxscale.forecast.stacking import relative_log_density

    e = rng.standard_normal(P)
    if kind == "spread":
        scale, shift = rng.uniform(0.5, 3.0, K), rng.normal(0.0, 1.0, K) * rng.uniform(0, 1, K)
    else:
        scale, shift = 1.0 + 0.02 * rng.standard_normal(K), 0.02 * rng.standard_normal(K)
    z = (e[None, :] * scale[:, None] + shift[:, None]) + 0.3 * rng.standard_normal((K, P))
    logd = -0.5 * z**2 - 0.5 * np.log(2 * np.pi) - np.log(scale)[:, None]
    fold = np.arange(P) % 5
    w = 1.0 / np.bincount(fold)[fold]
    return relative_log_density(logd), w / w.sum()


def real_problems(n_curves: int) -> list[dict]:
    """The stacking problems of ``backtest([power, broken_power], ...)`` on ``n_curves`` Revisiting curves."""
    import jaxscale
    from jaxscale.errors import JaxscaleError
    from jaxscale.forecast import _api, backtest
    from jaxscale.forecast.stacking import stacking_problem

    frame = jaxscale.datasets.load("revisiting_lang").drop_duplicates()
    curves = [c for d in ("NMT", "LM", "BB") for c in frame[frame.Domain == d].groupby(["Task", "Model"], sort=True)]
    # Spread over the domains: every k-th curve first, then the ones between (a curve too short for
    # broken_power's folds gives no stack and is skipped).
    k = max(1, len(curves) // max(n_curves, 1))
    order = [i for start in range(k) for i in range(start, len(curves), k)]
    laws = [jaxscale.laws.get("power", resource="x"), jaxscale.laws.get("broken_power", resource="x")]
    captured, original = [], _api.stacking_weights

    def record(calibrations, **kw):
        captured.append(stacking_problem(calibrations))
        return original(calibrations, **kw)

    out = []
    _api.stacking_weights = record  # the forecast's own call, so these are the problems it solves
    try:
        for i in order:
            if sum("L" in o for o in out) >= n_curves:
                break
            (task, model), curve = curves[i]
            captured.clear()
            t0 = time.perf_counter()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    backtest(laws, curve.reset_index(drop=True), split="Training", key=0, x="Seen Examples",
                             loss="Loss")
            except JaxscaleError as e:
                out.append({"curve": f"{task}|{model}", "error": str(e)})
                continue
            if captured:
                _, L, w = captured[0]
                out.append({"curve": f"{task}|{model}", "L": L, "w": w, "backtest_seconds": time.perf_counter() - t0})
    finally:
        _api.stacking_weights = original
    return out


def timed(fn, *args, **kw):
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t0


def compare(L: np.ndarray, w: np.ndarray, compiled: set) -> dict:
    """Both solvers (L-BFGS in float64 and float32) on one problem: times, iterations, objectives, gaps."""
    from jaxscale.forecast import stacking as st

    rec = {"K": int(L.shape[0]), "P": int(L.shape[1])}
    (a_em, it_em), t_em = timed(st.em_weights, L, w)
    f_em = st.stacking_objective(a_em, L, w)
    rec["em"] = {"seconds": t_em, "n_iter": it_em, "objective": f_em}
    for dtype in ("float64", "float32"):
        shape = (*st.padded_shape(*L.shape), dtype)
        if shape not in compiled:  # the first call of a padded shape compiles: timed apart
            _, t_first = timed(st.lbfgs_weights, L, w, dtype=dtype)
            compiled.add(shape)
            rec[f"compile_seconds_{dtype}"] = t_first
        (a, it), t = timed(st.lbfgs_weights, L, w, dtype=dtype)
        f = st.stacking_objective(a, L, w)
        rec[f"lbfgs_{dtype}"] = {"seconds": t, "n_iter": it, "objective": f, "gap_vs_em": f - f_em,
                                 "max_weight_diff": float(np.abs(a - a_em).max())}
    return rec


def summarise(records: list[dict]) -> dict:
    ok = [r for r in records if "em" in r]
    if not ok:
        return {}
    out = {"n_problems": len(ok), "em_seconds_median": float(np.median([r["em"]["seconds"] for r in ok])),
           "em_n_iter": [int(min(r["em"]["n_iter"] for r in ok)), int(max(r["em"]["n_iter"] for r in ok))]}
    for dtype in ("float64", "float32"):
        s = [r[f"lbfgs_{dtype}"] for r in ok]
        gaps = np.array([x["gap_vs_em"] for x in s])
        out[dtype] = {"seconds_median": float(np.median([x["seconds"] for x in s])),
                      "speedup_vs_em_median": float(np.median([r["em"]["seconds"] / r[f"lbfgs_{dtype}"]["seconds"]
                                                               for r in ok])),
                      "n_iter": [int(min(x["n_iter"] for x in s)), int(max(x["n_iter"] for x in s))],
                      "gap_vs_em_min": float(gaps.min()), "gap_vs_em_max": float(gaps.max()),
                      "n_worse_than_em_by_1e-9": int(np.sum(gaps < -1e-9)),
                      "max_weight_diff": float(max(x["max_weight_diff"] for x in s)),
                      "compile_seconds": [round(r[f"compile_seconds_{dtype}"], 3) for r in ok
                                          if f"compile_seconds_{dtype}" in r]}
    return out


def batch(n: int, seed: int) -> dict:
    """``n`` problems in one vmapped call of ``solve_stacking`` against EM one at a time."""
    import jax
    import jax.numpy as jnp

    from jaxscale.forecast import stacking as st

    rng = np.random.default_rng(seed)
    probs = [random_problem(rng, 3, 100, "spread") for _ in range(n)]
    L = np.zeros((n, 4, 128))
    W = np.zeros((n, 128))
    for i, (Li, wi) in enumerate(probs):
        L[i, :3, :100], W[i, :100] = Li, wi
    mask = jnp.arange(4) < 3
    solve = jax.jit(jax.vmap(st.solve_stacking, in_axes=(0, 0, None)))
    args = (jnp.asarray(L), jnp.asarray(W), mask)
    _, first = timed(lambda: jax.block_until_ready(solve(*args)))
    (a, n_iter, _), steady = timed(lambda: jax.block_until_ready(solve(*args)))
    em, t_em = timed(lambda: [st.em_weights(Li, wi) for Li, wi in probs])
    a = np.asarray(a, np.float64)[:, :3]
    gaps = np.array([st.stacking_objective(a[i] / a[i].sum(), *probs[i]) - st.stacking_objective(em[i][0], *probs[i])
                     for i in range(n)])
    return {"n_problems": n, "K": 3, "P": 100, "padded_to": [4, 128], "lbfgs_seconds_first_call": first,
            "lbfgs_seconds": steady, "em_seconds": t_em, "speedup_vs_em": t_em / steady,
            "speedup_vs_em_incl_compile": t_em / first, "lbfgs_n_iter_max": int(np.max(n_iter)),
            "gap_vs_em_min": float(gaps.min()), "gap_vs_em_max": float(gaps.max())}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--problems", type=int, default=10, help="random problems per (K, P, kind) (default 10)")
    ap.add_argument("--real-curves", type=int, default=6, help="Revisiting curves to stack on (default 6; 0 skips)")
    ap.add_argument("--batch", type=int, default=200, help="problems in the vmapped batch (default 200; 0 skips)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="JSON path (default benchmarks/results/bench_stacking-<backend>.json)")
    args = ap.parse_args(argv)

    import jax

    from jaxscale import validate
    from jaxscale._io import json_safe, write_atomic
    from jaxscale.bench import device_info, host_info, versions

    path = pathlib.Path(args.out or ROOT / "benchmarks" / "results" / f"bench_stacking-{jax.default_backend()}.json")
    validate.output_path(path, "--out")  # before the work, not after it
    t_start = time.perf_counter()
    out = {"benchmark": "bench_stacking", "date": dt.date.today().isoformat(),
           "command": "python benchmarks/bench_stacking.py " + " ".join(sys.argv[1:] if argv is None else argv),
           "device": device_info(jax.devices()), "host": host_info(), "versions": versions(),
           "settings": vars(args), "baseline": "em_weights (EM, NumPy float64, tol 1e-10, 2000 iterations at most)"}
    compiled: set = set()
    rng = np.random.default_rng(args.seed)
    records = []
    for kind in KINDS:
        for K in KS:
            for P in PS:
                for i in range(args.problems):
                    rec = compare(*random_problem(rng, K, P, kind), compiled)
                    records.append({"kind": kind, "i": i, **rec})
            print(f"random {kind}: K up to {K} done", flush=True)
    out["random"] = {"summary": summarise(records),
                     "by_kind": {k: summarise([r for r in records if r["kind"] == k]) for k in KINDS},
                     "records": records}
    if args.real_curves:
        real = []
        for prob in real_problems(args.real_curves):
            if "error" in prob:
                real.append(prob)
                continue
            real.append({"curve": prob["curve"], "backtest_seconds": prob["backtest_seconds"],
                         **compare(prob["L"], prob["w"], compiled)})
        out["real"] = {"summary": summarise(real), "records": real}
    if args.batch:
        out["batch"] = batch(args.batch, args.seed + 1)
    out["seconds"] = time.perf_counter() - t_start
    for part in ("random", "real"):
        s = out.get(part, {}).get("summary")
        if s:
            f64 = s["float64"]
            print(f"{part}: {s['n_problems']} problems; EM {1e3 * s['em_seconds_median']:.2f} ms, L-BFGS "
                  f"{1e3 * f64['seconds_median']:.2f} ms per solve (median; compile {f64['compile_seconds']} s); "
                  f"objective gap L-BFGS - EM in [{f64['gap_vs_em_min']:.2e}, {f64['gap_vs_em_max']:.2e}] "
                  f"(float32: [{s['float32']['gap_vs_em_min']:.2e}, {s['float32']['gap_vs_em_max']:.2e}]); "
                  f"iterations EM {s['em_n_iter']}, L-BFGS {f64['n_iter']}")
    if "batch" in out:
        b = out["batch"]
        print(f"batch: {b['n_problems']} problems vmapped in {b['lbfgs_seconds']:.3f} s "
              f"({b['lbfgs_seconds_first_call']:.2f} s incl. compile) vs EM {b['em_seconds']:.2f} s: "
              f"{b['speedup_vs_em']:.2f}x; gap in "
              f"[{b['gap_vs_em_min']:.2e}, {b['gap_vs_em_max']:.2e}]")
    write_atomic(path, json.dumps(json_safe(out), indent=1) + "\n")
    print(f"wrote {path}")
    return out


if __name__ == "__main__":
    main()
