"""Arguments and output shared by ``jaxscale backtest``, ``forecast`` and ``check``."""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from jaxscale.cli.args import common, count, fixed_params, level, starts
from jaxscale.errors import JaxscaleError
from jaxscale.forecast import METHODS, Forecast
from jaxscale.uncertainty import BOOTSTRAP_STARTS, START_KINDS


def resample_starts(text: str):
    """``--starts`` of a bootstrap: ``auto``, ``warm``, ``grid`` or a number of random starts."""
    if text in START_KINDS:
        return text
    try:
        return starts(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"--starts expects one of {', '.join(START_KINDS)} or a number of random "
                                         f"starts >= 1; got {text!r}") from None


#: ``--starts`` of a bootstrap, what each choice does (the help of ``bootstrap``, ``backtest`` and ``forecast``).
_KIND_HELP = {"auto": "the point fit's optimum and the other distinct optima its multi-start found, at most 16",
              "warm": "the point fit's optimum only, Epoch's way",
              "grid": "the law's full start grid for every resample: 4,500 for chinchilla, slow"}
STARTS_HELP = ", ".join(f"'{k}' ({'the default: ' if k == BOOTSTRAP_STARTS else ''}{_KIND_HELP[k]})"
                        for k in START_KINDS) + " or a number of random starts"


def add_progress(p, bayes: bool = False) -> None:
    """``--progress`` / ``--no-progress``, the same on every command that runs long loops."""
    if bayes:
        text = ("progress bar of the chains' iterations on stderr (default: off; with it NUTS is compiled on every "
                "run, since JAX's compilation cache does not keep programs that report progress)")
    else:
        text = ("progress bar on stderr (default: when stderr is a terminal and the run is estimated to take more "
                "than a few seconds; --progress: always; --no-progress: never). A run estimated at more than a "
                "minute first prints one line with its cost either way")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None, help=text)


def progress(args):
    """``progress=`` of the library call: None (a bar when the run is long) when stderr is a terminal and neither
    flag was given, False when it is not (a log file gets no bar), else the flag."""
    if args.progress is None:
        return None if sys.stderr.isatty() else False
    return bool(args.progress)

def cutoff(text: str) -> tuple[str, float]:
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


def at_point(text: str) -> dict[str, float]:
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


def add_model_args(p) -> None:
    """Options shared by ``backtest`` and ``forecast``: the laws and how the predictive distribution is made."""
    p.set_defaults(objective=None, delta=None)  # None = not given: --method bayes rejects them when given
    p.add_argument("--method", choices=list(METHODS), default="calibrated",
                   help="calibrated (default: leave-future-out calibrated interval, covers the error of "
                        "extrapolating), fit (residual interval), bootstrap (predictive bootstrap) or bayes "
                        "(posterior predictive, NUTS)")
    p.add_argument("--axis", default=None, metavar="ROLE",
                   help="covariate the forecast extrapolates along (default: the --cutoff column, else C, else "
                        "the law's first covariate)")
    p.add_argument("--level", type=level, default=0.9, help="predictive interval level (default 0.9)")
    p.add_argument("--starts", type=resample_starts, default=None,
                   help="starts of the fit: 'grid' (the default) or a number of random starts; for --method "
                        f"bootstrap, of the point fit and the resamples: {STARTS_HELP}")
    p.add_argument("-n", "--resamples", type=count("--resamples"), default=200, help="bootstrap resamples (default 200)")
    p.add_argument("--bootstrap-method", choices=["pairs", "residual", "cluster"], default=None,
                   help="bootstrap resampling (default: cluster when the data has runs, else pairs)")
    p.add_argument("--warmup", type=count("--warmup"), default=1000, help="NUTS warmup per chain (--method bayes; default 1000)")
    p.add_argument("--samples", type=count("--samples"), default=1000, help="NUTS draws per chain (--method bayes; default 1000)")
    p.add_argument("--chains", type=count("--chains"), default=4, help="NUTS chains (--method bayes; default 4)")
    add_progress(p)


def add_split_args(p, required: bool) -> None:
    how = p.add_mutually_exclusive_group(required=required)
    rest = "score the rest" if required else "default: fit every row"
    how.add_argument("--cutoff", action="append", type=cutoff, default=None, metavar="COLUMN=VALUE",
                     help=f"fit the rows with COLUMN <= VALUE ({rest}; repeatable: every condition holds); "
                          "COLUMN is a role (N, D, C, U, x) or a CSV column, e.g. --cutoff C=1e21")
    how.add_argument("--train-flag", metavar="COLUMN",
                     help="a 0/1 column: fit the rows with 1" + (", score the rows with 0" if required else "")
                          + " (e.g. Training)")


def data_and_model(p, split_required: bool) -> None:
    common(p, law_list=True)
    add_split_args(p, split_required)
    add_model_args(p)


def options(args) -> dict[str, Any]:
    """Keyword arguments of :func:`jaxscale.forecast.forecast` / ``backtest`` from the parsed flags."""
    kw: dict[str, Any] = {"fixed": fixed_params(args) or None, "flops_per_token": args.flops_per_token,
                          "drop_top": args.drop_top_loss, "axis": args.axis, "key": args.seed,
                          "level": args.level, "method": args.method, "resamples": args.resamples,
                          **{k: v for k, v in args.col}, **({"sep": args.sep} if args.sep else {})}
    if args.law_option and len(args.law) > 1:
        raise JaxscaleError(f"--law-option applies to one law; got the list {args.law}.")
    if args.method != "bayes":
        kw["progress"] = progress(args)
    elif args.progress is not None:  # NUTS reports progress only when asked (see add_progress)
        kw["progress"] = args.progress
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
    if args.starts in ("auto", "warm") and args.method != "bootstrap":
        raise JaxscaleError(f"--starts {args.starts} applies to --method bootstrap; give 'grid' or a number of "
                            f"starts.")
    if args.starts is not None:  # else the library's defaults: 'grid' for a fit, BOOTSTRAP_STARTS for a bootstrap
        kw["starts"] = args.starts
    if args.bootstrap_method is not None:
        if args.method not in ("bootstrap", "calibrated"):
            raise JaxscaleError(f"--bootstrap-method applies to --method bootstrap; got --method {args.method}.")
        kw["bootstrap_method"] = args.bootstrap_method
    return kw


def law_arg(args):
    import jaxscale

    if len(args.law) == 1:
        return jaxscale.laws.get(args.law[0], **dict(args.law_option))
    return args.law


def split(args):
    return dict(args.cutoff) if args.cutoff else args.train_flag


def print_settings(fc: Forecast, args) -> None:
    settings = fc.provenance.get("settings", {})
    if args.method == "bootstrap" and "bootstrap" in settings:
        print(f"bootstrap ({settings['bootstrap_method']}): {settings['n_draws']} replicates kept of "
              f"{args.resamples} ({settings['bootstrap']['n_failed']} failed)")
    for message in fc.provenance.get("warnings", []):
        print(f"WARNING: {message}")


def write(res, args) -> None:
    if args.json:
        res.to_json(args.json)
        print(f"wrote {args.json}")
    if getattr(args, "csv", None):
        res.to_csv(args.csv)
        print(f"wrote {args.csv}")
