"""``jaxscale laws``: list the law catalogue with formulas, including the laws installed packages register.

A plugin law that cannot be used (its package fails to import, or its law fails validation), or whose name is
taken, is left out of the list with one ``jaxscale: warning:`` line naming its package and entry point.
"""

from __future__ import annotations

from jaxscale.cli._runtime import say


def add_parser(sub) -> None:
    sub.add_parser("laws", help="list the law catalogue with formulas (installed packages' laws too)")


def run(args) -> int:
    import jaxscale

    del args
    for problem in jaxscale.laws.check_plugins(strict=False):
        say("warning", problem)
    plugins = jaxscale.laws.plugins()
    for name in jaxscale.laws.available():
        try:
            law = jaxscale.laws.get(name)
        except jaxscale.LawError:
            if name in plugins:
                continue  # warned above
            raise
        print(f"{name:<17} {law.formula}")
        print(f"{'':<17} params: {', '.join(law.param_names)}; covariates: {', '.join(law.covariates)}; {law.reference}")
        if name in plugins:
            p = plugins[name]
            print(f"{'':<17} from package {p.package} {p.version} (entry point {p.value})")
    return 0
