"""``jaxscale bootstrap``: bootstrap a fit; SEs and intervals of the parameters and derived quantities."""

from __future__ import annotations

from jaxscale.cli.args import MIXED, budget, common, count, default_budgets, inputs, level, point
from jaxscale.cli.fit import overestimate_penalty
from jaxscale.cli.forecast_args import STARTS_HELP, add_progress, progress, resample_starts
from jaxscale.uncertainty import BOOTSTRAP_STARTS


def add_parser(sub) -> None:
    b = sub.add_parser("bootstrap", help="bootstrap a fit: SEs and intervals of parameters and derived quantities")
    common(b)
    overestimate_penalty(b)
    b.add_argument("-n", "--resamples", type=count("--resamples"), default=1000,
                   help="number of resamples (default 1000)")
    b.add_argument("--method", choices=["pairs", "residual", "cluster"], default=None,
                   help="default: cluster (by run) for checkpoints of runs (data with step and run), else pairs")
    b.add_argument("--cluster", choices=["run", "group"], default=None,
                   help="what --method cluster resamples (default: run if the data has it, else group)")
    b.add_argument("--starts", type=resample_starts, default=BOOTSTRAP_STARTS,
                   help=f"where each resample's fit starts: {STARTS_HELP}. The point fit uses the grid for "
                        f"'auto' and 'warm'")
    b.add_argument("--level", type=level, default=0.95, help="interval level (default 0.95)")
    b.add_argument("--interval", choices=["percentile", "bca"], default="percentile")
    b.add_argument("--compute", type=budget, action="append", default=[], metavar="C",
                   help="budget for N_opt, D_opt, tokens/param (Chinchilla laws; repeatable; default: the data's "
                        "largest C)")
    b.add_argument("--loss-at", action="append", type=point, default=[], metavar="N=..,D=..",
                   help="also report the predicted loss at this point (repeatable)")
    b.add_argument("--chunk-size", type=count("--chunk-size"), default=65536, help="fits per compiled call")
    b.add_argument("--memory-limit", type=count("--memory-limit"), default=None, metavar="BYTES",
                   help="bound the solver's working set")
    add_progress(b)


def _derived(law, data, args) -> dict:
    """The derived quantities to report: Chinchilla's allocation at each budget, and losses at given points."""
    import jaxscale.derived as dv

    derived = {}
    if all(k in law.param_names for k in ("E", "A", "B", "alpha", "beta")):
        derived.update({"a": dv.exponent_a, "b": dv.exponent_b, "G": dv.G})
        for C in default_budgets(args, data):
            for name, fn in (("N_opt", dv.n_opt), ("D_opt", dv.d_opt), ("tokens_per_param", dv.tokens_per_param)):
                derived[f"{name}@C={C:.3g}"] = fn(C, data.flops_per_token)
    for at in args.loss_at:
        label = ",".join(f"{k}={v:.3g}" for k, v in at.items())
        derived[f"loss@{label}"] = dv.loss_at(law, **at)
    return derived


def run(args) -> int:
    import jaxscale

    law, data, fixed = inputs(args)
    derived = _derived(law, data, args)  # its checks come before the resampling
    res = jaxscale.bootstrap(law, data, args.resamples, key=args.seed, method=args.method, starts=args.starts,
                             cluster=args.cluster, objective=args.objective, delta=args.delta, fixed=fixed or None,
                             dtype=args.dtype, chunk_size=args.chunk_size, memory_limit=args.memory_limit,
                             progress=progress(args), mixed_precision=MIXED[args.mixed_precision],
                             overestimate_penalty=args.overestimate_penalty)
    out = res.to_dict(level=args.level, method=args.interval, derived=derived)
    pct = f"{100 * args.level:g}% {args.interval}"
    rows = [(k, v) for k, v in out["params"].items()] + [(k, v) for k, v in out["derived"].items()]
    width = max(len(k) for k, _ in rows)
    print(f"law: {law.name}    {law.formula}")
    print(f"{res.settings['method']} bootstrap, {res.n_resamples} resamples x {res.settings['n_starts']} starts "
          f"({res.settings['starts']}), {res.n_failed} failed; objective {res.settings['objective']}; "
          f"{res.seconds:.1f} s")
    print(f"  {'':<{width}}  {'estimate':>12}  {'se':>11}  {pct + ' interval':>28}")
    for i, (k, v) in enumerate(rows):
        if i == len(out["params"]):
            print("  derived:")
        print(f"  {k:<{width}}  {_num(v['estimate'], 12, '.6g')}  {_num(v['se'], 11, '.4g')}  "
              f"[{_num(v['ci'][0], 12, '.6g')}, {_num(v['ci'][1], 12, '.6g')}]")
    if args.json:
        res.to_json(args.json, level=args.level, method=args.interval, derived=derived)
        print(f"wrote {args.json}")
    return 0


def _num(value, width: int, spec: str) -> str:
    """A number for the table; ``None`` (a value JSON holds as null: no finite estimate) prints as ``nan``."""
    return f"{float('nan') if value is None else value:>{width}{spec}}"
