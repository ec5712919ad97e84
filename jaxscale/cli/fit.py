"""``jaxscale fit``: fit a law to a CSV of training runs; print the table, write JSON."""

from __future__ import annotations

from jaxscale.cli.args import MIXED, common, inputs, starts


def add_parser(sub) -> None:
    f = sub.add_parser("fit", help="fit a law to a CSV of training runs")
    common(f)
    f.add_argument("--starts", type=starts, default="grid", help="'grid' (default) or a number of random starts")


def run(args) -> int:
    import jaxscale

    law, data, fixed = inputs(args)
    res = jaxscale.fit(law, data, starts=args.starts, key=args.seed, objective=args.objective, delta=args.delta,
                       fixed=fixed or None, dtype=args.dtype, mixed_precision=MIXED[args.mixed_precision])
    print(res.table())
    if args.json:
        res.to_json(args.json)
        print(f"wrote {args.json}")
    return 0
