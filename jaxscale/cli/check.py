"""``jaxscale check``: score a saved forecast against the runs' actual results."""

from __future__ import annotations

from typing import Any

from jaxscale.cli import forecast_args as fa
from jaxscale.cli.args import col, positive
from jaxscale.forecast import Forecast


def add_parser(sub) -> None:
    c = sub.add_parser("check", help="score a saved forecast against the runs' actual results")
    c.add_argument("forecast", help="forecast JSON from `jaxscale forecast --out` (or `jaxscale backtest --json`)")
    c.add_argument("actual", help="CSV of the finished runs, or a bundled data set's name (see `jaxscale datasets`); "
                                  "rows are matched to forecast points by the law's covariates")
    c.add_argument("--col", action="append", type=col, default=[], metavar="ROLE=COLUMN",
                   help="map a role (N, D, C, U, x, loss, group, run) to a column")
    c.add_argument("--flops-per-token", type=positive("--flops-per-token"), default=None,
                   help="k in C = k N D for deriving D or C (default: the forecast's own)")
    c.add_argument("--missing", choices=["error", "skip"], default="error",
                   help="a forecast point without a run is an error (default), or is skipped and counted")
    c.add_argument("--json", metavar="OUT", help="write the scores (and the forecast) as JSON to OUT")
    c.add_argument("--csv", metavar="OUT", help="write the scored table as CSV to OUT")


def run(args) -> int:
    fc = Forecast.load(args.forecast)
    columns: dict[str, Any] = dict(args.col)
    if args.flops_per_token is not None:
        columns["flops_per_token"] = args.flops_per_token
    res = fc.check(args.actual, missing=args.missing, **columns)
    print(res.report())
    if res.summary.get("n_missing"):
        print(f"{res.summary['n_missing']} forecast point(s) had no run and were skipped")
    if res.summary.get("n_unmatched_rows"):
        print(f"{res.summary['n_unmatched_rows']} row(s) of {args.actual} matched no forecast point and were not "
              f"scored")
    fa.write(res, args)
    return 0
