"""``jaxscale backtest``, ``jaxscale forecast`` and ``jaxscale check``: parse the arguments, call
:mod:`jaxscale.forecast`, print the report, write the files."""

from __future__ import annotations

import argparse
import math
from typing import Any

import numpy as np

from jaxscale.cli.args import boot_starts, col, common, fixed_params
from jaxscale.errors import DataError, JaxscaleError
from jaxscale.forecast import BACKTEST_SAMPLES, METHODS, Forecast, backtest, forecast, points_csv


def _cutoff(text: str) -> tuple[str, float]:
    for sep in ("<=", "="):
        if sep in text:
            name, value = text.split(sep, 1)
            break
    else:
        raise argparse.ArgumentTypeError(f"--cutoff expects COLUMN=VALUE (fit the rows with COLUMN <= VALUE), "
                                         f"e.g. C=1e21; got {text!r}")
    try:
        v = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--cutoff {name}: the value must be a number; got {value!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"--cutoff {name}: the value must be finite; got {value!r}")
    return name.strip(), v


def _at_point(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for part in text.split(","):
        if "=" not in part:
            raise argparse.ArgumentTypeError(f"--at expects ROLE=VALUE[,ROLE=VALUE...], e.g. N=7e10,D=1.4e12; "
                                             f"got {text!r}")
        name, value = (t.strip() for t in part.split("=", 1))
        try:
            out[name] = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"--at {name}: the value must be a number; got {value!r}") from None
    if len(out) != len(text.split(",")):
        raise argparse.ArgumentTypeError(f"--at gives a covariate twice: {text!r}")
    return out


def _level(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--level expects a number in (0, 1), e.g. 0.9; got {text!r}") from None
    if not 0.0 < v < 1.0:
        raise argparse.ArgumentTypeError(f"--level must be in (0, 1), e.g. 0.9; got {text}")
    return v


def _add_model_args(p) -> None:
    """Options shared by ``backtest`` and ``forecast``: the laws and how the predictive distribution is made."""
    p.set_defaults(objective=None, delta=None)  # None = not given: --method bayes rejects them when given
    p.add_argument("--method", choices=list(METHODS), default="calibrated",
                   help="calibrated (default: leave-future-out calibrated interval, covers the error of "
                        "extrapolating), fit (residual interval), bootstrap (predictive bootstrap) or bayes "
                        "(posterior predictive, NUTS)")
    p.add_argument("--axis", default=None, metavar="ROLE",
                   help="covariate the forecast extrapolates along (default: the --cutoff column, else C, else "
                        "the law's first covariate)")
    p.add_argument("--level", type=_level, default=0.9, help="predictive interval level (default 0.9)")
    p.add_argument("--starts", type=boot_starts, default=None,
                   help="starts of the fit (default 'grid'); for --method bootstrap also 'warm' (the default there)")
    p.add_argument("-n", "--resamples", type=int, default=200, help="bootstrap resamples (default 200)")
    p.add_argument("--bootstrap-method", choices=["pairs", "residual", "cluster"], default=None,
                   help="bootstrap resampling (default: cluster when the data has runs, else pairs)")
    p.add_argument("--warmup", type=int, default=1000, help="NUTS warmup per chain (--method bayes; default 1000)")
    p.add_argument("--samples", type=int, default=1000, help="NUTS draws per chain (--method bayes; default 1000)")
    p.add_argument("--chains", type=int, default=4, help="NUTS chains (--method bayes; default 4)")


def _add_split_args(p, required: bool) -> None:
    how = p.add_mutually_exclusive_group(required=required)
    rest = "score the rest" if required else "default: fit every row"
    how.add_argument("--cutoff", action="append", type=_cutoff, default=None, metavar="COLUMN=VALUE",
                     help=f"fit the rows with COLUMN <= VALUE ({rest}; repeatable: every condition holds); "
                          "COLUMN is a role (N, D, C, U, x) or a CSV column, e.g. --cutoff C=1e21")
    how.add_argument("--train-flag", metavar="COLUMN",
                     help="a 0/1 column: fit the rows with 1" + (", score the rows with 0" if required else "")
                          + " (e.g. Training)")


def _data_and_model(p, split_required: bool) -> None:
    common(p, law_list=True)
    _add_split_args(p, split_required)
    _add_model_args(p)


def add_parsers(sub) -> None:
    """Add ``backtest``, ``forecast`` and ``check`` to an argparse subparsers object.

    ``jaxscale backtest RUNS.csv --cutoff C=1e21`` fits the rows with ``C <= 1e21`` (``--cutoff`` is repeatable,
    every condition must hold; ``COLUMN<=VALUE`` is accepted too, quoted for the shell), or ``--train-flag
    COLUMN`` the rows with 1 in a 0/1 column, forecasts the rest and scores the forecast; ``--json OUT`` writes
    the summary, the table and the forecast with at most ``BACKTEST_SAMPLES`` draws per point (a loadable
    forecast). ``jaxscale forecast RUNS.csv --at N=7e10,D=1.4e12 [--at ...] --out forecast.json`` forecasts runs
    not yet made (``--at-csv FILE`` reads the points from a CSV); ``jaxscale check forecast.json DONE.csv`` scores
    a saved forecast once they are done.
    """
    b = sub.add_parser("backtest", help="fit below a cutoff, forecast the held-out runs, score the forecast",
                       description="Fit below a cutoff, forecast the held-out runs and score the forecast. --json "
                                   f"writes the scores and the forecast with at most {BACKTEST_SAMPLES} predictive "
                                   "draws per point: `jaxscale check OUT.json RUNS.csv` can re-score it.")
    _data_and_model(b, True)
    b.add_argument("--csv", metavar="OUT", help="write the scored table as CSV to OUT")

    f = sub.add_parser("forecast", help="forecast runs not yet made, with a predictive interval; write it to JSON")
    _data_and_model(f, False)
    where = f.add_mutually_exclusive_group(required=True)
    where.add_argument("--at", action="append", type=_at_point, default=None, metavar="ROLE=VALUE[,...]",
                       help="a point to forecast, e.g. --at N=7e10,D=1.4e12 (repeatable, the same roles each "
                            "time; give D or C, the other is derived from C = k N D)")
    where.add_argument("--at-csv", metavar="FILE", help="CSV of the points to forecast (covariate columns)")
    f.add_argument("--out", dest="json", metavar="FORECAST.json",
                   help="write the forecast (points, predictive draws, provenance) as JSON; same as --json. "
                        "`jaxscale check` reads it")

    c = sub.add_parser("check", help="score a saved forecast against the runs' actual results")
    c.add_argument("forecast", help="forecast JSON from `jaxscale forecast --out` (or `jaxscale backtest --json`)")
    c.add_argument("actual", help="CSV of the finished runs; rows are matched to forecast points by the law's "
                                  "covariates")
    c.add_argument("--col", action="append", type=col, default=[], metavar="ROLE=COLUMN",
                   help="map a role (N, D, C, U, x, loss, group, run) to a column")
    c.add_argument("--flops-per-token", type=float, default=None,
                   help="k in C = k N D for deriving D or C (default: the forecast's own)")
    c.add_argument("--missing", choices=["error", "skip"], default="error",
                   help="a forecast point without a run is an error (default), or is skipped and counted")
    c.add_argument("--json", metavar="OUT", help="write the scores (and the forecast) as JSON to OUT")
    c.add_argument("--csv", metavar="OUT", help="write the scored table as CSV to OUT")


def _options(args) -> dict[str, Any]:
    """Keyword arguments of :func:`jaxscale.forecast.forecast` / ``backtest`` from the parsed flags."""
    kw: dict[str, Any] = {"fixed": fixed_params(args) or None, "flops_per_token": args.flops_per_token,
                          "drop_top": args.drop_top_loss, "axis": args.axis, "key": args.seed,
                          "level": args.level, "method": args.method, "resamples": args.resamples,
                          **{k: v for k, v in args.col}}
    if args.law_option and len(args.law) > 1:
        raise JaxscaleError(f"--law-option applies to one law; got the list {args.law}.")
    if args.method == "bayes":
        given = [f"--{n}" for n, v in (("objective", args.objective), ("delta", args.delta), ("dtype", args.dtype))
                 if v is not None]
        given += ["--starts"] if args.starts is not None else []
        given += ["--bootstrap-method"] if args.bootstrap_method is not None else []
        if given:
            raise JaxscaleError(f"{', '.join(given)} apply to --method calibrated, fit and bootstrap; --method bayes "
                                f"samples the posterior (set --warmup, --samples, --chains).")
        kw.update(num_warmup=args.warmup, num_samples=args.samples, num_chains=args.chains)
        return kw
    kw.update(objective=args.objective or "huber", delta=1e-3 if args.delta is None else args.delta, dtype=args.dtype)
    if args.method == "bootstrap":
        kw["starts"] = "warm" if args.starts is None else args.starts
    elif args.starts == "warm":
        raise JaxscaleError("--starts warm applies to --method bootstrap; give 'grid' or a number of starts.")
    else:
        kw["starts"] = "grid" if args.starts is None else args.starts
    if args.bootstrap_method is not None:
        if args.method not in ("bootstrap", "calibrated"):
            raise JaxscaleError(f"--bootstrap-method applies to --method bootstrap; got --method {args.method}.")
        kw["bootstrap_method"] = args.bootstrap_method
    return kw


def _law_arg(args):
    import jaxscale

    if len(args.law) == 1:
        return jaxscale.laws.get(args.law[0], **dict(args.law_option))
    return args.law


def _split(args):
    return dict(args.cutoff) if args.cutoff else args.train_flag


def _print_settings(fc: Forecast, args) -> None:
    settings = fc.provenance.get("settings", {})
    if args.method == "bootstrap" and "bootstrap" in settings:
        print(f"bootstrap ({settings['bootstrap_method']}): {settings['n_draws']} replicates kept of "
              f"{args.resamples} ({settings['bootstrap']['n_failed']} failed)")
    for message in fc.provenance.get("warnings", []):
        print(f"WARNING: {message}")


def _write(res, args) -> None:
    if args.json:
        res.to_json(args.json)
        print(f"wrote {args.json}")
    if getattr(args, "csv", None):
        from jaxscale._io import write_atomic

        write_atomic(args.csv, res.table.to_csv(index=False))
        print(f"wrote {args.csv}")


def _run_backtest(args) -> int:
    res = backtest(_law_arg(args), args.data, split=_split(args), **_options(args))
    print(res.report())
    _print_settings(res.forecast, args)
    _write(res, args)
    return 0


def _run_forecast(args) -> int:
    if args.at:
        names = list(args.at[0])
        for i, point in enumerate(args.at[1:], 1):
            if sorted(point) != sorted(names):
                raise DataError(f"--at: every point must give the same covariates; point 1 gives {names}, point "
                                f"{i + 1} gives {list(point)}.")
        at = {k: np.array([point[k] for point in args.at]) for k in names}
    else:
        at = points_csv(args.at_csv, dict(args.col))
    fc = forecast(_law_arg(args), args.data, at=at, split=_split(args), **_options(args))
    print(fc.report())
    _print_settings(fc, args)
    if args.json:
        fc.to_json(args.json)
        print(f"wrote {args.json}")
    return 0


def _run_check(args) -> int:
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
    _write(res, args)
    return 0


def run(args) -> int:
    """Run ``backtest``, ``forecast`` or ``check`` from parsed arguments."""
    return {"backtest": _run_backtest, "forecast": _run_forecast, "check": _run_check}[args.command](args)
