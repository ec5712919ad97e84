"""Command line: ``jaxscale COMMAND``, one of :data:`COMMANDS` (fit, bootstrap, bayes, allocate, backtest, forecast,
compare, check, report, demo, laws, bench, datasets).

One module per command (``jaxscale/cli/<command>.py``), each with ``add_parser(sub)`` and ``run(args) -> int``;
they parse and call the library, print and write. :mod:`jaxscale.cli._runtime` runs them: an expected error is one
line ``jaxscale: error: ...`` and exit 2, an unexpected one a line saying it is a bug (``--debug`` or
``JAXSCALE_DEBUG=1`` shows the traceback) and exit 1, Ctrl-C one line and exit 130; warnings print as
``jaxscale: warning: ...``. Every output path is checked before any work.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys

from jaxscale.cli import _runtime

#: The commands, in the order ``jaxscale --help`` lists them; each is the module ``jaxscale.cli.<name>``.
COMMANDS = ("fit", "bootstrap", "bayes", "allocate", "backtest", "forecast", "compare", "check", "report", "demo",
            "laws", "bench", "datasets")


class _Parser(argparse.ArgumentParser):
    """argparse, with its usage errors as one ``jaxscale: error:`` line (exit 2)."""

    def error(self, message: str):
        m = re.match(r"argument (\S+): (.*)", message)
        if m and any(m.group(2).startswith(flag) for flag in m.group(1).split("/")):
            message = m.group(2)  # "argument --level: --level must ..." names the flag once
        _runtime.say("error", f"{message} (see `{self.prog} --help`)")
        self.exit(2)


def _command(name: str):
    return importlib.import_module(f"jaxscale.cli.{name}")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="jaxscale", description="Fit neural scaling laws with batched multi-start JAX solvers.",
                epilog="Exit codes: 0 done, 2 bad input or a file that cannot be read or written, 1 an internal "
                       "error (a bug), 130 interrupted. --debug (or JAXSCALE_DEBUG=1) shows tracebacks.")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error (also JAXSCALE_DEBUG=1)")
    sub = p.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        _command(name).add_parser(sub)
    for parser in sub.choices.values():
        parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                            help="show the traceback of an error (also JAXSCALE_DEBUG=1)")
    return p


def _prepare(args) -> None:
    """Everything decided before any work: output paths writable, devices, the compilation cache."""
    from jaxscale._cache import enable
    from jaxscale._devices import host_device_count_set, set_host_device_count
    from jaxscale.cli.args import check_outputs

    check_outputs(args)
    if not host_device_count_set():
        set_host_device_count()  # starts are sharded over devices: one XLA host device per core
    if args.command != "bench":  # bench reports compile times: it must compile
        enable(warn_fn=lambda message: _runtime.say("warning", message))


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = _runtime.debug_requested(argv)
    args = build_parser().parse_args(argv)
    command = _command(args.command)

    def prepare_and_run(args) -> int:
        _prepare(args)
        return command.run(args)

    return _runtime.run(prepare_and_run, args, debug=debug)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
