"""Command line: ``jaxscale fit|bootstrap|bayes|allocate|backtest|forecast|check|demo|laws|bench``.

Parses arguments, calls the library, prints a table and writes JSON. Errors
are one line on stderr with a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from jaxscale.cli import args as cli_args
from jaxscale.cli.args import boot_starts, common, data_args, fixed_params, starts
from jaxscale.errors import JaxscaleError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jaxscale", description="Fit neural scaling laws with batched multi-start JAX solvers.")
    sub = p.add_subparsers(dest="command", required=True)

    f = sub.add_parser("fit", help="fit a law to a CSV of training runs")
    common(f)
    f.add_argument("--starts", type=starts, default="grid", help="'grid' (default) or a number of random starts")

    b = sub.add_parser("bootstrap", help="bootstrap a fit: SEs and intervals of parameters and derived quantities")
    common(b)
    b.add_argument("-n", "--resamples", type=int, default=1000, help="number of resamples (default 1000)")
    b.add_argument("--method", choices=["pairs", "residual", "cluster"], default="pairs")
    b.add_argument("--cluster", choices=["run", "group"], default=None,
                   help="what --method cluster resamples (default: run if the data has it, else group)")
    b.add_argument("--starts", type=boot_starts, default="grid",
                   help="'grid' (default: the full multi-start per resample), 'warm' (one start at the point fit, "
                        "Epoch's way) or a number of random starts")
    b.add_argument("--level", type=float, default=0.95, help="interval level (default 0.95)")
    b.add_argument("--interval", choices=["percentile", "bca"], default="percentile")
    b.add_argument("--compute", type=float, action="append", default=[], metavar="C",
                   help="budget for N_opt, D_opt, tokens/param (Chinchilla laws; repeatable; default: the data's "
                        "largest C)")
    b.add_argument("--loss-at", action="append", type=cli_args.point, default=[], metavar="N=..,D=..",
                   help="also report the predicted loss at this point (repeatable)")
    b.add_argument("--chunk-size", type=int, default=65536, help="fits per compiled call")
    b.add_argument("--memory-limit", type=int, default=None, metavar="BYTES", help="bound the solver's working set")
    b.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: when stderr is a terminal)")

    y = sub.add_parser("bayes", help="sample the posterior with NUTS (NumPyro); ArviZ summary, diagnostics, netCDF")
    data_args(y)
    y.add_argument("--chains", type=int, default=4, help="number of chains (default 4)")
    y.add_argument("--warmup", type=int, default=1000, help="warmup iterations per chain (default 1000)")
    y.add_argument("--samples", type=int, default=1000, help="kept draws per chain (default 1000)")
    y.add_argument("--likelihood", choices=["student_t", "normal"], default="student_t")
    y.add_argument("--df", type=float, default=None, help="fix the Student-t degrees of freedom (default: learned)")
    y.add_argument("--priors", choices=["default", "published"], default="default",
                   help="default weakly-informative priors, or Epoch's Chinchilla estimates widened 3x")
    y.add_argument("--pooling", choices=["partial", "separate"], default=None,
                   help="hierarchical model over the 'group' column")
    y.add_argument("--target-accept", type=float, default=0.95, help="NUTS target acceptance (default 0.95)")
    y.add_argument("--prior-draws", type=int, default=0, help="also store this many prior / prior-predictive draws")
    y.add_argument("--compute", type=float, action="append", default=[], metavar="C",
                   help="budget for N_opt, D_opt, tokens/param credible intervals (Chinchilla laws; repeatable)")
    y.add_argument("--level", type=float, default=0.95, help="credible interval level (default 0.95)")
    y.add_argument("--out", metavar="PATH.nc", help="write the InferenceData as netCDF (ArviZ)")

    d = sub.add_parser("demo", help="fit the embedded synthetic Chinchilla data (no files needed)")
    d.add_argument("--starts", type=starts, default="grid")
    d.add_argument("--json", metavar="OUT")

    sub.add_parser("laws", help="list the law catalogue with formulas")

    a = sub.add_parser("allocate", help="compute-optimal (or inference-aware, or data-constrained) N and D per budget")
    a.add_argument("--fit", required=True, metavar="FILE",
                   help="JSON from `jaxscale fit --json` or `jaxscale bootstrap --json`, or netCDF from `jaxscale bayes --out`")
    a.add_argument("--law", default=None, help="check that the fit is of this law (default: the fit's law)")
    a.add_argument("--compute", type=float, nargs="+", required=True, metavar="C", help="training budget(s) in FLOPs")
    a.add_argument("--flops-per-token", type=float, default=6.0, help="k in C = k N D (default 6)")
    a.add_argument("--inference-tokens", type=float, default=None, metavar="T",
                   help="inference-aware: reach the compute-optimal loss of each budget at the least training + "
                        "inference FLOPs, serving T tokens")
    a.add_argument("--inference-flops-per-token", type=float, default=2.0, help="FLOPs per inference token per "
                   "parameter (default 2)")
    a.add_argument("--unique-tokens", type=float, default=None, metavar="U",
                   help="data-constrained: U unique tokens (law data_constrained)")
    a.add_argument("--level", type=float, default=0.9, help="interval level when the fit has draws (default 0.9)")
    a.add_argument("--json", metavar="OUT", help="write one record per budget as JSON to OUT")

    from jaxscale.cli import forecast as forecast_commands

    forecast_commands.add_parsers(sub)

    from jaxscale.bench import add_bench_parser

    add_bench_parser(sub)
    return p


def _inputs(args):
    import jaxscale

    fixed = fixed_params(args)
    law = jaxscale.laws.get(args.law, **dict(args.law_option))
    data = jaxscale.ScalingData.from_csv(args.data, flops_per_token=args.flops_per_token, **dict(args.col))
    if args.drop_top_loss:
        data = data.drop_top(args.drop_top_loss)
    return law, data, fixed


_MIXED = {"auto": None, "on": True, "off": False}


def _fit(args) -> int:
    import jaxscale

    law, data, fixed = _inputs(args)
    res = jaxscale.fit(law, data, starts=args.starts, key=args.seed, objective=args.objective, delta=args.delta,
                       fixed=fixed or None, dtype=args.dtype, mixed_precision=_MIXED[args.mixed_precision])
    print(res.table())
    if args.json:
        res.to_json(args.json)
        print(f"wrote {args.json}")
    return 0


def _bootstrap(args) -> int:
    import jaxscale
    import jaxscale.derived as dv

    law, data, fixed = _inputs(args)
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    res = jaxscale.bootstrap(law, data, args.resamples, key=args.seed, method=args.method, starts=args.starts,
                             cluster=args.cluster, objective=args.objective, delta=args.delta, fixed=fixed or None,
                             dtype=args.dtype, chunk_size=args.chunk_size, memory_limit=args.memory_limit,
                             progress=progress, mixed_precision=_MIXED[args.mixed_precision])
    derived = {}
    if all(k in law.param_names for k in ("E", "A", "B", "alpha", "beta")):
        budgets = args.compute or [float(np.max(data.covariates["C"]))] if "C" in data.covariates else args.compute
        derived.update({"a": dv.exponent_a, "b": dv.exponent_b, "G": dv.G})
        for C in budgets:
            for name, fn in (("N_opt", dv.n_opt), ("D_opt", dv.d_opt), ("tokens_per_param", dv.tokens_per_param)):
                derived[f"{name}@C={C:.3g}"] = fn(C, data.flops_per_token)
    for point in args.loss_at:
        label = ",".join(f"{k}={v:.3g}" for k, v in point.items())
        derived[f"loss@{label}"] = dv.loss_at(law, **point)
    out = res.to_dict(level=args.level, method=args.interval, derived=derived)
    pct = f"{100 * args.level:g}% {args.interval}"
    rows = [(k, v) for k, v in out["params"].items()] + [(k, v) for k, v in out["derived"].items()]
    width = max(len(k) for k, _ in rows)
    print(f"law: {law.name}    {law.formula}")
    print(f"{args.method} bootstrap, {res.n_resamples} resamples x {res.settings['n_starts']} starts "
          f"({res.settings['starts']}), {res.n_failed} failed; objective {res.settings['objective']}; "
          f"{res.seconds:.1f} s")
    print(f"  {'':<{width}}  {'estimate':>12}  {'se':>11}  {pct + ' interval':>28}")
    for i, (k, v) in enumerate(rows):
        if i == len(out["params"]):
            print("  derived:")
        print(f"  {k:<{width}}  {v['estimate']:>12.6g}  {v['se']:>11.4g}  [{v['ci'][0]:>12.6g}, {v['ci'][1]:>12.6g}]")
    if args.json:
        import json

        with open(args.json, "w") as fh:
            fh.write(json.dumps(out, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


def _bayes(args) -> int:
    import warnings

    import jaxscale.derived as dv
    from jaxscale import bayes

    law, data, fixed = _inputs(args)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the verdict is printed below
        idata = bayes.sample(law, data, key=args.seed, num_chains=args.chains, num_warmup=args.warmup,
                             num_samples=args.samples, priors=args.priors, likelihood=args.likelihood, df=args.df,
                             fixed=fixed or None, pooling=args.pooling, target_accept_prob=args.target_accept,
                             prior_draws=args.prior_draws, warn=False)
    import arviz as az

    names = [v for v in idata.posterior.data_vars if not v.endswith("_z")]
    print(f"law: {law.name}    {law.formula}")
    print(f"NUTS: {args.chains} chains x ({args.warmup} warmup + {args.samples} draws), likelihood {args.likelihood}, "
          f"priors {args.priors}; {idata.posterior.attrs['sampling_seconds']:.1f} s")
    import pandas as pd

    with pd.option_context("display.width", 120, "display.max_columns", 20):
        print(az.summary(idata, var_names=names, hdi_prob=args.level, round_to="none").to_string(float_format="%.6g"))
    budgets = args.compute or ([float(np.max(data.covariates["C"]))] if "C" in data.covariates else [])
    if args.pooling is None and all(k in law.param_names for k in ("E", "A", "B", "alpha", "beta")) and budgets:
        lvl = f"{100 * args.level:g}%"
        print(f"  derived (posterior median, {lvl} equal-tailed credible interval):")
        for C in budgets:
            for name, fn in (("N_opt", dv.n_opt), ("D_opt", dv.d_opt), ("tokens_per_param", dv.tokens_per_param)):
                d = bayes.derive(idata, fn(C, data.flops_per_token), name)
                lo, hi = d.ci(args.level)
                print(f"    {name}@C={C:.3g}: {float(d.estimate):.6g}  [{float(lo):.6g}, {float(hi):.6g}]")
    print(bayes.diagnose(idata))
    if args.out:
        idata.to_netcdf(args.out)
        print(f"wrote {args.out}")
    return 0


def _demo(args) -> int:
    import jaxscale

    data = jaxscale.demo_data()
    print(f"Synthetic data: {len(data)} runs from Hoffmann et al.'s law (unrounded) with 1% noise.")
    res = jaxscale.fit("chinchilla", data, starts=args.starts, key=0)
    print(res.table())
    print("true values:  " + "  ".join(f"{k}={v:.4g}" for k, v in jaxscale.HOFFMANN_UNROUNDED.items()))
    if args.json:
        res.to_json(args.json)
        print(f"wrote {args.json}")
    return 0


def _allocate(args) -> int:
    from jaxscale import allocate as al
    from jaxscale._draws import param_source

    if args.inference_tokens is not None and args.unique_tokens is not None:
        raise JaxscaleError("--inference-tokens and --unique-tokens are separate questions; give one of them.")
    src = param_source(args.fit, args.law)
    C = args.compute
    if args.unique_tokens is not None:
        res = al.data_constrained_optimal(src.law, args.fit, C, args.unique_tokens, args.flops_per_token,
                                          level=args.level)
        cols = ["compute", "N_opt", "D_opt", "L_opt", "tokens_per_param", "epochs"]
        title = f"data-constrained optimum with U = {args.unique_tokens:.3g} unique tokens"
    elif args.inference_tokens is not None:
        base = al.compute_optimal(src.law, src.point, C, args.flops_per_token).table
        res = al.inference_optimal(src.law, args.fit, base["L_opt"].to_numpy(), args.inference_tokens,
                                   flops_per_token=args.flops_per_token,
                                   inference_flops_per_token=args.inference_flops_per_token, level=args.level)
        res.table.insert(0, "compute", np.asarray(C, float))
        res.table.insert(1, "L_opt", base["L_opt"].to_numpy())
        cols = ["compute", "L_opt", "N_opt", "D_opt", "tokens_per_param", "total_flops", "saving", "overtraining_ratio"]
        title = (f"inference-aware: reach each budget's compute-optimal loss, serving {args.inference_tokens:.3g} "
                 f"tokens, at the least training + inference FLOPs")
    else:
        res = al.compute_optimal(src.law, args.fit, C, args.flops_per_token, level=args.level)
        cols = ["compute", "N_opt", "D_opt", "L_opt", "tokens_per_param"]
        title = "compute-optimal allocation"
    print(f"law: {src.law.name}    {src.law.formula}")
    draws = "" if res.draws is None else f", {len(next(iter(res.draws.values())))} draws ({src.kind})"
    print(f"{title}; k = {args.flops_per_token:g} FLOPs per parameter per token{draws}")
    t = res.table
    if res.draws is None:
        print(t[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    else:
        pct = f"{100 * res.level:g}%"
        print(f"(estimate [{pct} interval])")
        lines = {}
        for c in cols:
            if c in res.draws:
                lines[c] = [f"{v:.4g} [{lo:.3g}, {hi:.3g}]" for v, lo, hi in zip(t[c], t[f"{c}_lo"], t[f"{c}_hi"])]
            else:
                lines[c] = [f"{v:.4g}" for v in t[c]]
        import pandas as pd

        print(pd.DataFrame(lines).to_string(index=False))
        if t["n_failed"].any():
            print(f"draws without a solution (excluded): {t['n_failed'].tolist()}")
    if args.json:
        res.to_json(args.json)
        print(f"wrote {args.json}")
    return 0


def _forecast_command(args) -> int:
    from jaxscale.cli import forecast as forecast_commands

    return forecast_commands.run(args)


def _bench(args) -> int:
    from jaxscale.bench import cli_bench

    return cli_bench(args)


def _laws(args) -> int:
    import jaxscale

    del args
    for name in jaxscale.laws.available():
        law = jaxscale.laws.get(name)
        print(f"{name:<17} {law.formula}")
        print(f"{'':<17} params: {', '.join(law.param_names)}; covariates: {', '.join(law.covariates)}; {law.reference}")
    return 0


def _persistent_cache() -> None:
    """Keep compiled solvers across runs (JAX's persistent compilation cache).

    A one-off ``jaxscale fit`` spends most of its time compiling (Epoch's
    4,500-start fit: ~9 s cold, ~3.5 s with the cache, on a 2-core CPU).
    The cache lives in ``$JAXSCALE_CACHE_DIR`` (default
    ``~/.cache/jaxscale/xla``); ``JAXSCALE_CACHE_DIR=off`` turns it off, and a
    ``JAX_COMPILATION_CACHE_DIR`` set by the user is left alone.
    """
    import os

    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return
    path = os.environ.get("JAXSCALE_CACHE_DIR", os.path.join(os.path.expanduser("~"), ".cache", "jaxscale", "xla"))
    if path.lower() in ("", "off", "0", "none"):
        return
    import jax

    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        return  # a read-only home: run without the cache
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from jaxscale._devices import host_device_count_set, set_host_device_count

    if not host_device_count_set():
        # Starts are sharded over devices: one XLA host device per core.
        set_host_device_count()
    if args.command != "bench":  # bench reports compile times: it must compile
        _persistent_cache()
    try:
        commands = {"fit": _fit, "bootstrap": _bootstrap, "bayes": _bayes, "demo": _demo, "laws": _laws,
                    "allocate": _allocate, "backtest": _forecast_command, "forecast": _forecast_command,
                    "check": _forecast_command,
                    "bench": _bench}
        return commands[args.command](args)
    except JaxscaleError as e:
        print(f"jaxscale: error: {e}", file=sys.stderr)
        return 2
    except (OSError, MemoryError) as e:
        print(f"jaxscale: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
