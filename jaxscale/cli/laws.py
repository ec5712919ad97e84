"""``jaxscale laws``: list the law catalogue with formulas."""

from __future__ import annotations


def add_parser(sub) -> None:
    sub.add_parser("laws", help="list the law catalogue with formulas")


def run(args) -> int:
    import jaxscale

    del args
    for name in jaxscale.laws.available():
        law = jaxscale.laws.get(name)
        print(f"{name:<17} {law.formula}")
        print(f"{'':<17} params: {', '.join(law.param_names)}; covariates: {', '.join(law.covariates)}; {law.reference}")
    return 0
