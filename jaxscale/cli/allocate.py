"""``jaxscale allocate``: compute-optimal (or inference-aware, data-constrained, schedule-aware) N and D per budget."""

from __future__ import annotations

from jaxscale import validate
from jaxscale.cli.args import budget, checked, level, positive
from jaxscale.errors import ArgumentError


def _batch_size(text: str):
    return text if text == "olmo" else positive("--batch-size")(text)


def _nonnegative(flag: str):
    return checked(flag, lambda v, name: validate.number(v, name, minimum=0))


def add_parser(sub) -> None:
    a = sub.add_parser("allocate",
                       help="compute-optimal (or inference-aware, data-constrained, schedule-aware) N and D per "
                            "budget")
    a.add_argument("--fit", required=True, metavar="FILE",
                   help="JSON from `jaxscale fit --json` or `jaxscale bootstrap --json`, or netCDF from "
                        "`jaxscale bayes --out`")
    a.add_argument("--law", default=None, help="check that the fit is of this law (default: the fit's law)")
    a.add_argument("--compute", type=budget, nargs="+", required=True, metavar="C",
                   help="training budget(s) in FLOPs")
    a.add_argument("--flops-per-token", type=positive("--flops-per-token"), default=6.0,
                   help="k in C = k N D (default 6)")
    a.add_argument("--inference-tokens", type=positive("--inference-tokens"), default=None, metavar="T",
                   help="inference-aware: reach the compute-optimal loss of each budget at the least training + "
                        "inference FLOPs, serving T tokens")
    a.add_argument("--inference-flops-per-token", type=positive("--inference-flops-per-token"), default=2.0,
                   help="FLOPs per inference token per parameter (default 2)")
    a.add_argument("--unique-tokens", type=positive("--unique-tokens"), default=None, metavar="U",
                   help="data-constrained: U unique tokens (law data_constrained)")
    a.add_argument("--schedule", default=None, metavar="SPEC",
                   help="schedule-aware: every run trained under this family, e.g. cosine:final=0.1 or "
                        "wsd:decay=0.1,final=0.1 (a fit of a law of N and schedule covariates: curve_nd)")
    a.add_argument("--batch-size", type=_batch_size, default="olmo", metavar="B",
                   help="with --schedule: tokens per optimizer step, or 'olmo' (the OLMo ladder's rule in N; default)")
    a.add_argument("--warmup", type=_nonnegative("--warmup"), default=None, metavar="STEPS",
                   help="with --schedule: warmup steps of every run (default N / batch size, as OLMo)")
    a.add_argument("--level", type=level, default=0.9, help="interval level when the fit has draws (default 0.9)")
    a.add_argument("--json", metavar="OUT", help="write one record per budget as JSON to OUT")


def _table(res, cols) -> str:
    import pandas as pd

    t = res.table
    if res.draws is None:
        return t[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}")
    lines = {}
    for c in cols:
        if c in res.draws:
            lines[c] = [f"{v:.4g} [{lo:.3g}, {hi:.3g}]" for v, lo, hi in zip(t[c], t[f"{c}_lo"], t[f"{c}_hi"])]
        else:
            lines[c] = [f"{v:.4g}" for v in t[c]]
    return f"(estimate [{100 * res.level:g}% interval])\n" + pd.DataFrame(lines).to_string(index=False)


def run(args) -> int:
    import numpy as np

    from jaxscale import allocate as al
    from jaxscale.allocate import read_fit

    asked = [f for f, v in (("--inference-tokens", args.inference_tokens), ("--unique-tokens", args.unique_tokens),
                            ("--schedule", args.schedule)) if v is not None]
    if len(asked) > 1:
        raise ArgumentError(f"{' and '.join(asked)} are separate questions; give one of them.")
    if args.schedule is None and (args.warmup is not None or args.batch_size != "olmo"):
        raise ArgumentError("--batch-size and --warmup describe the runs of --schedule; give --schedule too.")
    src = read_fit(args.fit, args.law)
    C = args.compute
    if args.schedule is not None:
        from jaxscale.allocate_schedule import optimal_allocation

        res = optimal_allocation(args.fit, C, args.schedule, law=args.law, flops_per_token=args.flops_per_token,
                                 batch_size=args.batch_size, warmup=args.warmup, level=args.level)
        cols = ["compute", "N_opt", "D_opt", "L_opt", "tokens_per_param", "steps"]
        warm = "N / batch size" if args.warmup is None else f"{args.warmup:g}"
        title = (f"compute-optimal allocation under {res.settings['schedule']} (batch size {args.batch_size}, warmup "
                 f"{warm} steps)")
    elif args.unique_tokens is not None:
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
    print(_table(res, cols))
    if res.draws is not None and res.table["n_failed"].any():
        print(f"draws without a solution (excluded): {res.table['n_failed'].tolist()}")
    if args.json:
        res.to_json(args.json)
        print(f"wrote {args.json}")
    return 0
