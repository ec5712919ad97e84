"""``jaxscale datasets [NAME]``: list the bundled data sets, or show one's source, license, citation and roles."""

from __future__ import annotations

from jaxscale import datasets


def add_parser(sub) -> None:
    d = sub.add_parser("datasets", help="list the bundled data sets (every DATA argument takes their names)",
                       description="List the data sets bundled with jaxscale, or show one: its source repository, "
                                   "commit, license, citation, default roles and caveats. Every DATA argument takes "
                                   "a data set's name as well as a CSV file (an existing file wins), e.g. "
                                   "`jaxscale fit epoch_chinchilla --drop-top-loss 5`.")
    d.add_argument("name", nargs="?", default=None, help="a data set to describe (default: list them all)")
    d.add_argument("--readme", action="store_true", help="print the data set's full README instead")
    d.add_argument("--csv", metavar="OUT", help="write the data set's CSV file, byte for byte as published, to OUT")


def run(args) -> int:
    from jaxscale._io import write_atomic
    from jaxscale.errors import ArgumentError

    if args.name is None:
        if args.readme or args.csv:
            raise ArgumentError("--readme and --csv need a data set NAME; see `jaxscale datasets`.")
        print(datasets.overview())
        print("\n`jaxscale datasets NAME` shows one; a DATA argument takes a name (an existing file of that name "
              "wins).")
        return 0
    info = datasets.info(args.name)
    print(info.readme if args.readme else info.summary())
    if args.csv:
        write_atomic(args.csv, datasets.raw(args.name))
        print(f"wrote {args.csv}")
    return 0
