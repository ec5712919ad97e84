"""``jaxscale compare``: the effective-compute multiplier of a treatment over a baseline, from matched runs."""

from __future__ import annotations

import argparse

from jaxscale.cli.args import budget, col, count, fixed_params, law_option, level, pair, positive, seed, sep, starts


def shared(text: str):
    """``--shared``: ``exponents``, ``none`` or a comma-separated list of parameter names."""
    if text in ("exponents", "none"):
        return text
    names = [t.strip() for t in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"--shared expects 'exponents', 'none' or parameter names separated by "
                                         f"commas (e.g. alpha,beta); got {text!r}")
    return names


def add_parser(sub) -> None:
    """``jaxscale compare BASELINE TREATMENT --compute 1e21 [--final] [--out compare.json]``."""
    c = sub.add_parser("compare", help="effective-compute multiplier of a treatment over a baseline (matched runs, "
                                       "paired bootstrap)",
                       description="Fit a law to both arms (shared exponents by default) and report k(C): the "
                                   "treatment at C FLOPs reaches the loss the baseline reaches at k(C) x C, with a "
                                   "paired-bootstrap interval over matched runs.")
    for name in ("baseline", "treatment"):
        c.add_argument(name, metavar=name.upper(),
                       help=f"the {name} arm: a CSV file (one row per run, or checkpoints with a run column) or a "
                            f"bundled data set's name (an existing file wins)")
    c.add_argument("--compute", type=budget, nargs="+", required=True, metavar="C",
                   help="budget(s) in FLOPs, C = k N D")
    c.add_argument("--law", default="chinchilla",
                   help="law of N and D (compared on the compute-optimal frontier), of C alone, or curve_nd "
                        "(default chinchilla; see `jaxscale laws`)")
    c.add_argument("--law-option", action="append", type=law_option, default=[], metavar="NAME=VALUE",
                   help="law option, e.g. resource=C for `power`")
    c.add_argument("--col", action="append", type=col, default=[], metavar="ROLE=COLUMN",
                   help="map a role (N, D, C, loss, group, run, step, lr, ...) to a column, for both arms; over a "
                        "data set's default roles (ROLE= with no column unmaps one)")
    c.add_argument("--sep", type=sep, default=None, metavar="CHAR", help="CSV field separator (default: sniffed)")
    c.add_argument("--flops-per-token", type=positive("--flops-per-token"), default=6.0,
                   help="k in C = k N D (default 6)")
    c.add_argument("--shared", type=shared, default="exponents",
                   help="parameters common to both arms: 'exponents' (default: the law's exponents; coefficients "
                        "per arm), 'none' (independent fits) or names, e.g. alpha,beta")
    c.add_argument("--match", choices=["ND", "run", "group"], default="ND",
                   help="pair runs on (N, D) (default, within --match-rtol; a run's D is its last checkpoint's), "
                        "on equal run labels, or on equal group labels (--col group=COLUMN)")
    c.add_argument("--match-rtol", type=positive("--match-rtol"), default=0.01,
                   help="relative tolerance of matching on (N, D) (default 0.01)")
    c.add_argument("--final", action="store_true", help="fit each run's final row (last checkpoint) only")
    c.add_argument("-n", "--resamples", type=count("--resamples", 2), default=200,
                   help="paired-bootstrap resamples (default 200)")
    c.add_argument("--level", type=level, default=0.9, help="interval level (default 0.9)")
    c.add_argument("--seed", type=seed, default=0, help="seed of the PRNG key (default 0; same seed, same result)")
    c.add_argument("--starts", type=starts, default="grid",
                   help="starts of the joint fit: 'grid' (default: the law's grid) or a number of random starts")
    c.add_argument("--fix", action="append", type=pair("--fix", "PARAM=VALUE"), default=[], metavar="PARAM=VALUE",
                   help="hold a parameter fixed (in both arms) at a natural-scale value")
    c.add_argument("--objective", choices=["huber", "squared", "likelihood"], default="huber")
    c.add_argument("--delta", type=positive("--delta"), default=1e-3, help="Huber delta (default 1e-3)")
    c.add_argument("--dtype", choices=["float64", "float32"], default=None)
    c.add_argument("--out", "--json", dest="json", metavar="FILE",
                   help="write the result (multipliers, intervals, both arms' parameters, pairs, provenance) as "
                        "JSON to FILE")


def run(args) -> int:
    import jaxscale

    law = jaxscale.laws.get(args.law, **dict(args.law_option))
    fixed = fixed_params(args)
    columns = dict(args.col)
    arms = [jaxscale.datasets.read(source, argument=name, sep=args.sep, flops_per_token=args.flops_per_token,
                                   **columns)
            for name, source in (("BASELINE", args.baseline), ("TREATMENT", args.treatment))]
    res = jaxscale.compare(law, *arms, at=args.compute, shared=args.shared, resamples=args.resamples,
                           level=args.level, key=args.seed, match=None if args.match == "ND" else args.match,
                           match_rtol=args.match_rtol, final=args.final, starts=args.starts,
                           objective=args.objective, delta=args.delta, fixed=fixed or None, dtype=args.dtype)
    print(res.table())
    if args.json:
        res.to_json(args.json)
        print(f"wrote {args.json}")
    return 0
