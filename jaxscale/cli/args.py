"""Arguments shared by the commands: column mappings, law options, starts, fixed parameters, checked numbers.

Each ``type=`` here checks its value with :mod:`jaxscale.validate` while the command line is parsed, so a bad
level, budget, seed or count is one ``jaxscale: error:`` line before any data is read or any work is done.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from jaxscale import validate
from jaxscale.errors import ArgumentError, JaxscaleError


def checked(flag: str, check: Callable, what: str = "a number", parse: Callable = float) -> Callable[[str], object]:
    """An argparse ``type`` that parses ``text`` with ``parse`` and checks it with ``check(value, flag)``.

    >>> checked("--level", validate.level)("0.8")
    0.8
    """

    def parse_and_check(text: str):
        try:
            value = parse(text)
        except (ValueError, OverflowError):
            raise argparse.ArgumentTypeError(f"{flag} expects {what}; got {text!r}") from None
        try:
            return check(value, flag)
        except ArgumentError as e:
            raise argparse.ArgumentTypeError(str(e).rstrip(".")) from None

    parse_and_check.__name__ = flag.lstrip("-").replace("-", "_")
    return parse_and_check


def count(flag: str, minimum: int = 1) -> Callable[[str], int]:
    """An integer option ``>= minimum`` (chains, resamples, chunk sizes)."""
    return checked(flag, lambda v, name: validate.integer(v, name, minimum=minimum), f"an integer >= {minimum}", int)


def positive(flag: str) -> Callable[[str], float]:
    """A finite number > 0 (FLOPs per token, token counts)."""
    return checked(flag, validate.positive)


level = checked("--level", validate.level, "a number strictly between 0 and 1, e.g. 0.9")
budget = checked("--compute", lambda v, name: float(validate.budgets(v, name)[0]), "a budget in FLOPs, e.g. 1e21")
seed = checked("--seed", lambda v, name: validate.integer(v, name, minimum=0, maximum=2**64 - 1), "an integer seed", int)


def pair(flag: str, form: str):
    def parse(text: str) -> tuple[str, str]:
        if "=" not in text:
            raise argparse.ArgumentTypeError(f"{flag} expects {form}; got {text!r}")
        name, value = text.split("=", 1)
        return name.strip(), value

    return parse


col = pair("--col", 'ROLE=COLUMN (e.g. N="Model Size")')


def starts(text: str):
    if text == "grid":
        return "grid"
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--starts expects 'grid' or a number of random starts; got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"--starts must be >= 1; got {n}")
    return n


def law_option(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--law-option expects NAME=VALUE; got {text!r}")
    k, v = text.split("=", 1)
    try:
        return k, int(v)
    except ValueError:
        return k, v


def boot_starts(text: str):
    return "warm" if text == "warm" else starts(text)


def point(text: str) -> dict[str, float]:
    out = {}
    for part in text.split(","):
        k, v = pair("--loss-at", "ROLE=VALUE[,ROLE=VALUE] (e.g. N=7e10,D=1.4e12)")(part)
        try:
            out[k] = validate.positive(float(v), f"--loss-at {k}")
        except ValueError:
            raise argparse.ArgumentTypeError(f"--loss-at {k}={v!r}: the value must be a number > 0") from None
    return out


def law_names(text: str) -> list[str]:
    """``--law NAME[,NAME...]``: one law, or several for a stacked forecast."""
    names = [t.strip() for t in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"--law expects a law name or a comma-separated list of them "
                                         f"(e.g. chinchilla,power); got {text!r}")
    return names


def sep(text: str) -> str:
    """``--sep``: the CSV field separator; ``\\t`` may be written for a tab."""
    value = {"\\t": "\t", "tab": "\t"}.get(text, text)
    if len(value) != 1:
        raise argparse.ArgumentTypeError(f"--sep expects one character, e.g. ';' or '\\t'; got {text!r}")
    return value


def data_args(f: argparse.ArgumentParser, law_list: bool = False) -> None:
    f.add_argument("data", help="CSV file, one row per run, or a bundled data set's name (see `jaxscale datasets`; "
                                "an existing file wins)")
    if law_list:
        f.add_argument("--law", type=law_names, default=["chinchilla"],
                       help="law name, or a comma-separated list for a stacked forecast weighted by leave-future-out "
                            "log score, e.g. chinchilla,power (see `jaxscale laws`)")
    else:
        f.add_argument("--law", default="chinchilla", help="law name (see `jaxscale laws`)")
    f.add_argument("--law-option", action="append", type=law_option, default=[], metavar="NAME=VALUE",
                   help="law option, e.g. resource=C for `power`")
    f.add_argument("--col", action="append", type=col, default=[], metavar="ROLE=COLUMN",
                   help="map a role (N, D, C, U, x, loss, group, run, weight) to a column; over a data set's default "
                        "roles (ROLE= with no column unmaps one)")
    f.add_argument("--sep", type=sep, default=None, metavar="CHAR",
                   help="CSV field separator (default: sniffed from the file: comma, semicolon, tab or |)")
    f.add_argument("--drop-top-loss", type=count("--drop-top-loss", 0), default=0, metavar="K",
                   help="drop the K highest losses (Epoch drops 5)")
    f.add_argument("--seed", type=seed, default=validate.DEFAULT_KEY,
                   help=f"seed of the PRNG key (random starts, resamples, draws; default {validate.DEFAULT_KEY})")
    f.add_argument("--flops-per-token", type=positive("--flops-per-token"), default=6.0,
                   help="k in C = k N D (default 6)")
    f.add_argument("--fix", action="append", type=pair("--fix", "PARAM=VALUE"), default=[], metavar="PARAM=VALUE",
                   help="hold a parameter fixed at a natural-scale value")


def common(f: argparse.ArgumentParser, law_list: bool = False) -> None:
    data_args(f, law_list)
    f.add_argument("--objective", choices=["huber", "squared", "likelihood"], default="huber")
    f.add_argument("--delta", type=positive("--delta"), default=1e-3, help="Huber delta (default 1e-3)")
    f.add_argument("--dtype", choices=["float64", "float32"], default=None)
    f.add_argument("--mixed-precision", choices=["auto", "on", "off"], default="auto",
                   help="solve in float32, then polish in float64 (default auto: on for >= 2,048 start-solves of a "
                        "law with a fused Jacobian, e.g. chinchilla's grid)")
    f.add_argument("--json", metavar="OUT", help="write the result as JSON to OUT")


MIXED = {"auto": None, "on": True, "off": False}


def fixed_params(args) -> dict[str, float]:
    """``--fix PARAM=VALUE`` pairs as numbers (their support is checked against the law by the library)."""
    fixed = {}
    for name, value in args.fix:
        try:
            fixed[name] = float(value)
        except ValueError:
            raise JaxscaleError(f"--fix {name}={value!r}: the value must be a number.") from None
    return fixed


def inputs(args):
    """The law, the data and the fixed parameters named by the data arguments, all checked before any fitting."""
    import jaxscale

    law = jaxscale.laws.get(args.law, **dict(args.law_option))
    fixed = validate.fixed(law, fixed_params(args), "--fix")
    columns = dict(args.col)
    if args.sep is not None:
        columns["sep"] = args.sep
    data = jaxscale.datasets.read(args.data, argument="DATA", flops_per_token=args.flops_per_token, **columns)
    if args.drop_top_loss:
        data = data.drop_top(args.drop_top_loss)
    return law, data, fixed


def default_budgets(args, data) -> list[float]:
    """``--compute`` values, else the data's largest C; an unusable default (inf, from an overflowing C) is an
    error naming it."""
    import numpy as np

    if args.compute:
        return list(args.compute)
    if "C" not in data.covariates:
        return []
    largest = float(np.max(data.covariates["C"]))
    if not np.isfinite(largest):
        raise ArgumentError(f"the default budget (the data's largest C) is {largest}; give --compute C.")
    return [largest]


#: Flags whose value is a file jaxscale writes: checked (directory exists and is writable) before any work.
OUTPUT_FLAGS = {"json": "--json", "out": "--out", "csv": "--csv"}


def check_outputs(args) -> None:
    """Every output path of ``args`` can be written, before any work."""
    for dest, flag in OUTPUT_FLAGS.items():
        value = getattr(args, dest, None)
        if value:
            validate.output_path(value, flag)
