"""``jaxscale forecast``: forecast runs not yet made, with a predictive interval; write it to JSON."""

from __future__ import annotations

import numpy as np

from jaxscale.cli import forecast_args as fa
from jaxscale.errors import DataError
from jaxscale.forecast import forecast, points_csv


def add_parser(sub) -> None:
    """``jaxscale forecast RUNS.csv --at N=7e10,D=1.4e12 [--at ...] --out forecast.json`` forecasts runs not yet
    made (``--at-csv FILE`` reads the points from a CSV); ``jaxscale check forecast.json DONE.csv`` scores it
    once they are done."""
    f = sub.add_parser("forecast", help="forecast runs not yet made, with a predictive interval; write it to JSON")
    fa.data_and_model(f, False)
    where = f.add_mutually_exclusive_group(required=True)
    where.add_argument("--at", action="append", type=fa.at_point, default=None, metavar="ROLE=VALUE[,...]",
                       help="a point to forecast, e.g. --at N=7e10,D=1.4e12 (repeatable, the same roles each "
                            "time; give D or C, the other is derived from C = k N D)")
    where.add_argument("--at-csv", metavar="FILE",
                       help="CSV of the points to forecast (covariate columns), or a bundled data set's name")
    f.add_argument("--out", dest="json", metavar="FORECAST.json",
                   help="write the forecast (points, predictive draws, provenance) as JSON; same as --json. "
                        "`jaxscale check` reads it")


def _points(args) -> dict[str, np.ndarray]:
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
