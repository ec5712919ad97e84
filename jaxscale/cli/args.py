"""Arguments shared by the commands: column mappings, law options, starts, fixed parameters."""

from __future__ import annotations

import argparse

from jaxscale.errors import JaxscaleError


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
            out[k] = float(v)
        except ValueError:
            raise argparse.ArgumentTypeError(f"--loss-at {k}={v!r}: the value must be a number") from None
    return out


def law_names(text: str) -> list[str]:
    """``--law NAME[,NAME...]``: one law, or several for a stacked forecast."""
    names = [t.strip() for t in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"--law expects a law name or a comma-separated list of them "
                                         f"(e.g. chinchilla,power); got {text!r}")
    return names


def data_args(f: argparse.ArgumentParser, law_list: bool = False) -> None:
    f.add_argument("data", help="CSV file, one row per run")
    if law_list:
        f.add_argument("--law", type=law_names, default=["chinchilla"],
                       help="law name, or a comma-separated list for a stacked forecast weighted by leave-future-out "
                            "log score, e.g. chinchilla,power (see `jaxscale laws`)")
    else:
        f.add_argument("--law", default="chinchilla", help="law name (see `jaxscale laws`)")
    f.add_argument("--law-option", action="append", type=law_option, default=[], metavar="NAME=VALUE",
                   help="law option, e.g. resource=C for `power`")
    f.add_argument("--col", action="append", type=col, default=[], metavar="ROLE=COLUMN",
                   help="map a role (N, D, C, U, x, loss, group, run) to a column")
    f.add_argument("--drop-top-loss", type=int, default=0, metavar="K", help="drop the K highest losses (Epoch drops 5)")
    f.add_argument("--seed", type=int, default=0, help="seed of the PRNG key (random starts, resamples, draws)")
    f.add_argument("--flops-per-token", type=float, default=6.0, help="k in C = k N D (default 6)")
    f.add_argument("--fix", action="append", type=pair("--fix", "PARAM=VALUE"), default=[], metavar="PARAM=VALUE",
                   help="hold a parameter fixed at a natural-scale value")


def common(f: argparse.ArgumentParser, law_list: bool = False) -> None:
    data_args(f, law_list)
    f.add_argument("--objective", choices=["huber", "squared", "likelihood"], default="huber")
    f.add_argument("--delta", type=float, default=1e-3, help="Huber delta (default 1e-3)")
    f.add_argument("--dtype", choices=["float64", "float32"], default=None)
    f.add_argument("--mixed-precision", choices=["auto", "on", "off"], default="auto",
                   help="solve in float32, then polish in float64 (default auto: on for >= 2,048 start-solves of a "
                        "law with a fused Jacobian, e.g. chinchilla's grid)")
    f.add_argument("--json", metavar="OUT", help="write the result as JSON to OUT")


def fixed_params(args) -> dict[str, float]:
    """``--fix PARAM=VALUE`` pairs as numbers."""
    fixed = {}
    for name, value in args.fix:
        try:
            fixed[name] = float(value)
        except ValueError:
            raise JaxscaleError(f"--fix {name}={value!r}: the value must be a number.") from None
    return fixed
