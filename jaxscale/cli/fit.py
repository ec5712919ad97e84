"""``jaxscale fit``: fit a law to a CSV of training runs; print the table, write JSON."""

from __future__ import annotations

import argparse

from jaxscale.cli.args import MIXED, common, inputs, positive, starts


def fit_starts(text: str):
    """``--starts`` of ``jaxscale fit``: ``grid``, ``varpro`` or a number of random starts."""
    return "varpro" if text == "varpro" else starts(text)


def overestimate_penalty(f: argparse.ArgumentParser) -> None:
    """The ``--overestimate-penalty`` option (``jaxscale fit`` and ``jaxscale bootstrap``)."""
    f.add_argument("--overestimate-penalty", type=positive("--overestimate-penalty"), default=1.0, metavar="FACTOR",
                   help="--objective huber: multiply the Huber term of every point the law over-predicts by FACTOR "
                        "(> 1 fits the lower envelope of the losses; OLMo-core's asymmetric Huber; default 1)")


def add_parser(sub) -> None:
    f = sub.add_parser("fit", help="fit a law to a CSV of training runs")
    common(f)
    overestimate_penalty(f)
    f.add_argument("--starts", type=fit_starts, default="grid",
                   help="'grid' (default), 'varpro' (an exponent grid, linear coefficients solved: chinchilla) or a "
                        "number of random starts")


def run(args) -> int:
    import jaxscale

    law, data, fixed = inputs(args)
    res = jaxscale.fit(law, data, starts=args.starts, key=args.seed, objective=args.objective, delta=args.delta,
                       fixed=fixed or None, dtype=args.dtype, mixed_precision=MIXED[args.mixed_precision],
                       overestimate_penalty=args.overestimate_penalty)
    print(res.table())
    if args.json:
        res.to_json(args.json)
        print(f"wrote {args.json}")
    return 0
