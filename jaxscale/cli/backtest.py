"""``jaxscale backtest``: fit below a cutoff, forecast the held-out runs, score the forecast."""

from __future__ import annotations

from jaxscale.cli import forecast_args as fa
from jaxscale.forecast import BACKTEST_SAMPLES, backtest


def add_parser(sub) -> None:
    """``jaxscale backtest RUNS.csv --cutoff C=1e21`` fits the rows with ``C <= 1e21`` (``--cutoff`` is repeatable,
    every condition must hold; ``COLUMN<=VALUE`` is accepted too, quoted for the shell), or ``--train-flag
    COLUMN`` the rows with 1 in a 0/1 column, forecasts the rest and scores the forecast; ``--json OUT`` writes
    the summary, the table and the forecast with at most ``BACKTEST_SAMPLES`` draws per point (a loadable
    forecast)."""
    b = sub.add_parser("backtest", help="fit below a cutoff, forecast the held-out runs, score the forecast",
                       description="Fit below a cutoff, forecast the held-out runs and score the forecast. --json "
                                   f"writes the scores and the forecast with at most {BACKTEST_SAMPLES} predictive "
                                   "draws per point: `jaxscale check OUT.json RUNS.csv` can re-score it.")
    fa.data_and_model(b, True)
    b.add_argument("--csv", metavar="OUT", help="write the scored table as CSV to OUT")


def run(args) -> int:
    res = backtest(fa.law_arg(args), args.data, split=fa.split(args), **fa.options(args))
    print(res.report())
    fa.print_settings(res.forecast, args)
    fa.write(res, args)
    return 0
