"""``jaxscale bench``: parse the arguments, call :func:`jaxscale.bench.run_bench`, print the table, write the JSON.

Progress goes to stderr and the table to stdout; ``--json`` is checked before any work (a typo must not cost a
benchmark run) and written atomically.
"""

from __future__ import annotations

import sys

from jaxscale import validate
from jaxscale._io import write_atomic
from jaxscale.bench import PARTS, PLATFORMS, run_bench


def add_parser(sub) -> None:
    """Add the ``bench`` subcommand to the subparsers ``sub``."""
    b = sub.add_parser("bench", help="standard benchmark on the devices JAX sees: fits/s, bootstrap, NUTS ESS/s, SBC",
                       description="Standard benchmark: Epoch's fit protocol at several batch sizes (with scipy beside "
                                   "it on a CPU), bootstrap replicates/s, NUTS ESS/s and SBC datasets/s, with device "
                                   "and version info.")
    b.add_argument("--device", choices=PLATFORMS, default=None, help="platform to run on (default: JAX's default)")
    b.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated parts (default {','.join(PARTS)})")
    b.add_argument("--data", default=None, metavar="CSV",
                   help="a CSV in the format of Epoch's svg_extracted_data.csv, or a bundled data set's name "
                        "(default: Epoch's points, bundled as epoch_chinchilla); its 5 highest losses are dropped")
    b.add_argument("--quick", action="store_true", help="tiny settings: a smoke test")
    b.add_argument("--sizes", default=None, metavar="N,N,..",
                   help="numbers of starts for the fit part (default 64,512,4500; more than 4,500 repeats the grid)")
    b.add_argument("--repeats", type=int, default=None, help="timed calls per size after the compiling one (default 3)")
    b.add_argument("--scipy-starts", type=int, default=None,
                   help="grid starts for the scipy baseline on a CPU (default 200; 0: skip)")
    b.add_argument("--bootstrap-resamples", type=int, default=None, help="warm-started resamples (default 4000)")
    b.add_argument("--nuts-chains", type=int, default=None, help="NUTS chains (default 4)")
    b.add_argument("--nuts-warmup", type=int, default=None, help="NUTS warmup per chain (default 1000)")
    b.add_argument("--nuts-samples", type=int, default=None, help="NUTS draws per chain (default 1000)")
    b.add_argument("--sbc-datasets", type=int, default=None, help="SBC datasets (default 32)")
    b.add_argument("--sbc-draws", type=int, default=None, help="SBC warmup = draws per dataset (default 400)")
    b.add_argument("--dtype", choices=["float64", "float32"], default=None, help="fit and bootstrap dtype")
    b.add_argument("--json", metavar="OUT", help="write everything as JSON to OUT")


def run(args) -> int:
    """Run ``jaxscale bench`` from parsed arguments; 0 when every part ran, 1 when one failed."""
    path = validate.output_path(args.json, "--json") if args.json else None
    res = run_bench(args.parts, device=args.device, data=args.data, quick=args.quick, sizes=args.sizes,
                    repeats=args.repeats, scipy_starts=args.scipy_starts,
                    bootstrap_resamples=args.bootstrap_resamples, nuts_chains=args.nuts_chains,
                    nuts_warmup=args.nuts_warmup, nuts_samples=args.nuts_samples, sbc_datasets=args.sbc_datasets,
                    sbc_draws=args.sbc_draws, dtype=args.dtype,
                    progress=lambda line: print(f"  {line}", file=sys.stderr, flush=True))
    print(res.table())
    if path is not None:
        write_atomic(path, res.to_json() + "\n")
        print(f"wrote {path}")
    return 0 if res.ok else 1
