"""``jaxscale demo``: fit the embedded synthetic Chinchilla data (no files needed)."""

from __future__ import annotations

from jaxscale.cli.args import starts


def add_parser(sub) -> None:
    d = sub.add_parser("demo", help="fit the embedded synthetic Chinchilla data (no files needed)")
    d.add_argument("--starts", type=starts, default="grid")
    d.add_argument("--json", metavar="OUT", help="write the fit as JSON to OUT")


def run(args) -> int:
    import jaxscale

    data = jaxscale.demo_data()
    print(f"Synthetic data: {len(data)} runs from Hoffmann et al.'s law (unrounded) with 1% noise.")
    res = jaxscale.fit("chinchilla", data, starts=args.starts, key=0)
    print(res.table())
    print("true values:  " + "  ".join(f"{k}={v:.4g}" for k, v in jaxscale.HOFFMANN_UNROUNDED.items()))
    if args.json:
        res.to_json(args.json)
        print(f"wrote {args.json}")
    return 0
