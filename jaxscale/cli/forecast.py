"""``jaxscale forecast``: forecast runs not yet made, with a predictive interval; write it to JSON."""

from __future__ import annotations

import numpy as np

from jaxscale.cli import forecast_args as fa
from jaxscale.errors import DataError
from jaxscale.forecast import forecast, points_csv
from jaxscale.schedule import planned


def add_parser(sub) -> None:
    """``jaxscale forecast RUNS.csv --at N=7e10,D=1.4e12 [--at ...] --out forecast.json`` forecasts runs not yet
    made (``--at-csv FILE`` reads the points from a CSV; ``--plan SCHEDULE`` the checkpoints of a run under a
    planned LR schedule); ``jaxscale check forecast.json DONE.csv`` scores it once they are done."""
    f = sub.add_parser("forecast", help="forecast runs not yet made, with a predictive interval; write it to JSON")
    fa.data_and_model(f, False)
    where = f.add_mutually_exclusive_group(required=True)
    where.add_argument("--at", action="append", type=fa.at_point, default=None, metavar="ROLE=VALUE[,...]",
                       help="a point to forecast, e.g. --at N=7e10,D=1.4e12 (repeatable, the same roles each "
                            "time; give D or C, the other is derived from C = k N D)")
    where.add_argument("--at-csv", metavar="FILE",
                       help="CSV of the points to forecast (covariate columns), or a bundled data set's name")
    where.add_argument("--plan", metavar="KIND:KEY=VALUE,...",
                       help="forecast checkpoints of a run under this planned LR schedule (laws of loss curves: "
                            "curve, tissue, multi_power, curve_nd), e.g. cosine:steps=81352,warmup=813,"
                            "peak=5.154e-4,final=0.1; the final step by default (--plan-every for the curve)")
    f.add_argument("--plan-n", type=float, default=None, metavar="N",
                   help="--plan: the run's parameter count (for curve_nd)")
    f.add_argument("--plan-batch", type=float, default=None, metavar="TOKENS",
                   help="--plan: tokens per optimizer step (gives D and the token areas)")
    f.add_argument("--plan-every", type=int, default=None, metavar="STEPS",
                   help="--plan: forecast every STEPS steps to the end (the rest of the curve), after --plan-start")
    f.add_argument("--plan-start", type=int, default=0, metavar="STEP", help="--plan: first step of --plan-every")
    f.add_argument("--out", dest="json", metavar="FORECAST.json",
                   help="write the forecast (points, predictive draws, provenance) as JSON; same as --json. "
                        "`jaxscale check` reads it")


def _points(args):
    if args.plan is not None:
        return planned(args.plan, N=args.plan_n, batch_size=args.plan_batch, every=args.plan_every,
                       start=args.plan_start)
    plan_only = [name for name, v in (("--plan-n", args.plan_n), ("--plan-batch", args.plan_batch),
                                      ("--plan-every", args.plan_every)) if v is not None]
    if plan_only:
        raise DataError(f"{', '.join(plan_only)} only apply with --plan.")
    if not args.at:
        return points_csv(args.at_csv, dict(args.col), sep=args.sep)
    names = list(args.at[0])
    for i, point in enumerate(args.at[1:], 1):
        if sorted(point) != sorted(names):
            raise DataError(f"--at: every point must give the same covariates; point 1 gives {names}, point "
                            f"{i + 1} gives {list(point)}.")
    return {k: np.array([point[k] for point in args.at]) for k in names}


def run(args) -> int:
    fc = forecast(fa.law_arg(args), args.data, at=_points(args), split=fa.split(args), **fa.options(args))
    print(fc.report())
    fa.print_settings(fc, args)
    fa.write(fc, args)
    return 0
