"""``jaxscale bayes``: sample the posterior with NUTS (NumPyro); ArviZ summary, diagnostics, netCDF."""

from __future__ import annotations

from jaxscale import validate
from jaxscale.cli.args import budget, checked, count, data_args, default_budgets, inputs, level, positive
from jaxscale.cli.forecast_args import add_progress


def add_parser(sub) -> None:
    y = sub.add_parser("bayes", help="sample the posterior with NUTS (NumPyro); ArviZ summary, diagnostics, netCDF")
    data_args(y)
    y.add_argument("--chains", type=count("--chains"), default=4, help="number of chains (default 4)")
    y.add_argument("--warmup", type=count("--warmup"), default=1000, help="warmup iterations per chain (default 1000)")
    y.add_argument("--samples", type=count("--samples"), default=1000, help="kept draws per chain (default 1000)")
    y.add_argument("--likelihood", choices=["student_t", "normal"], default="student_t")
    y.add_argument("--df", type=positive("--df"), default=None,
                   help="fix the Student-t degrees of freedom (default: learned)")
    y.add_argument("--priors", choices=["default", "published"], default="default",
                   help="default weakly-informative priors, or Epoch's Chinchilla estimates widened 3x")
    y.add_argument("--pooling", choices=["partial", "separate"], default=None,
                   help="hierarchical model over the 'group' column")
    y.add_argument("--target-accept", type=checked("--target-accept", validate.level), default=0.95,
                   help="NUTS target acceptance, in (0, 1) (default 0.95)")
    y.add_argument("--prior-draws", type=count("--prior-draws", 0), default=0,
                   help="also store this many prior / prior-predictive draws")
    y.add_argument("--compute", type=budget, action="append", default=[], metavar="C",
                   help="budget for N_opt, D_opt, tokens/param credible intervals (Chinchilla laws; repeatable)")
    y.add_argument("--level", type=level, default=0.95, help="credible interval level (default 0.95)")
    y.add_argument("--out", metavar="PATH.nc", help="write the InferenceData as netCDF (ArviZ)")
    add_progress(y, bayes=True)


def run(args) -> int:
    import warnings

    import numpy as np
    import pandas as pd

    import jaxscale.derived as dv
    from jaxscale import bayes
    from jaxscale._io import write_netcdf

    law, data, fixed = inputs(args)
    chinchilla = args.pooling is None and all(k in law.param_names for k in ("E", "A", "B", "alpha", "beta"))
    derived = []
    for C in default_budgets(args, data) if chinchilla else []:
        for name, fn in (("N_opt", dv.n_opt), ("D_opt", dv.d_opt), ("tokens_per_param", dv.tokens_per_param)):
            derived.append((f"{name}@C={C:.3g}", fn(C, data.flops_per_token)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the verdict is printed below
        idata = bayes.sample(law, data, key=args.seed, num_chains=args.chains, num_warmup=args.warmup,
                             num_samples=args.samples, priors=args.priors, likelihood=args.likelihood, df=args.df,
                             fixed=fixed or None, pooling=args.pooling, target_accept_prob=args.target_accept,
                             prior_draws=args.prior_draws, warn=False, progress=bool(args.progress))
    import arviz as az

    names = [v for v in idata.posterior.data_vars if not v.endswith("_z")]
    print(f"law: {law.name}    {law.formula}")
    print(f"NUTS: {args.chains} chains x ({args.warmup} warmup + {args.samples} draws), likelihood {args.likelihood}, "
          f"priors {args.priors}; {idata.posterior.attrs['sampling_seconds']:.1f} s")
    with np.errstate(all="ignore"), pd.option_context("display.width", 120, "display.max_columns", 20):
        print(az.summary(idata, var_names=names, hdi_prob=args.level, round_to="none").to_string(float_format="%.6g"))
    if derived:
        print(f"  derived (posterior median, {100 * args.level:g}% equal-tailed credible interval):")
    for label, fn in derived:
        d = bayes.derive(idata, fn, label)
        lo, hi = d.interval(args.level)
        print(f"    {label}: {float(d.estimate):.6g}  [{float(lo):.6g}, {float(hi):.6g}]")
    print(bayes.diagnose(idata))
    if args.out:
        write_netcdf(idata, args.out)
        print(f"wrote {args.out}")
    return 0
