"""``jaxscale report``: one self-contained HTML page (tables, figures, forecast cards, provenance) from result files."""

from __future__ import annotations

from jaxscale.cli.args import col, count, level, positive, sep


def add_parser(sub) -> None:
    r = sub.add_parser(
        "report", help="one self-contained HTML page from result files: tables, figures, forecast cards, provenance",
        description="One HTML page with a section per FILE: fit, bootstrap (JSON of `jaxscale fit|bootstrap "
                    "--json`), posterior (netCDF of `jaxscale bayes --out`), allocation (`jaxscale allocate "
                    "--json`), forecast (`jaxscale forecast --out`), backtest (`jaxscale backtest --json`) or check "
                    "(`jaxscale check --json`); the kind is read from the content. Inline CSS and SVG: the page "
                    "loads nothing from anywhere.")
    r.add_argument("files", nargs="+", metavar="FILE", help="result files, in page order")
    r.add_argument("--out", default="report.html", metavar="HTML", help="the page to write (default report.html)")
    r.add_argument("--data", default=None, metavar="DATA",
                   help="the data the results were made from (CSV or data set name), for contours, residuals and the "
                        "runs behind forecasts and backtests; checked against each file's data fingerprint")
    r.add_argument("--col", action="append", type=col, default=[], metavar="ROLE=COLUMN",
                   help="map a role (N, D, C, U, x, loss, group, run) to a column of --data")
    r.add_argument("--sep", type=sep, default=None, metavar="CHAR", help="CSV field separator of --data")
    r.add_argument("--drop-top-loss", type=count("--drop-top-loss", 0), default=0, metavar="K",
                   help="drop the K highest losses of --data, as the fit did (Epoch drops 5)")
    r.add_argument("--flops-per-token", type=positive("--flops-per-token"), default=None,
                   help="k in C = k N D for --data (default 6)")
    r.add_argument("--level", type=level, default=0.95,
                   help="credible level of posterior intervals (default 0.95; other files keep their own levels)")
    r.add_argument("--title", default=None, help="the page's title (default 'jaxscale report')")


def run(args) -> int:
    import jaxscale

    columns = dict(args.col)
    if args.sep is not None:
        columns["sep"] = args.sep
    if args.flops_per_token is not None:
        columns["flops_per_token"] = args.flops_per_token
    path = jaxscale.report(*args.files, out=args.out, data=args.data, level=args.level,
                           drop_top=args.drop_top_loss, title=args.title, **columns)
    print(f"wrote {path} ({len(args.files)} section(s))")
    return 0
