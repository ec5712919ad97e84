"""Ctrl-C while the command line is still importing JAX (1-3 s): one line and exit 130, not a traceback.

``import jaxscale`` imports JAX before any command-line code can run (the package is imported before
``jaxscale.cli``), so the command line's own handler (:mod:`jaxscale.cli._runtime`) comes too late for an early
Ctrl-C. This module is imported first by ``jaxscale/__init__.py`` and installs a minimal handler only when the
process is the command line: the ``jaxscale`` console script, or ``python -m jaxscale.cli`` (whose
``sys.argv[0]`` is ``"-m"`` while the package is imported). Nothing has been written at that point. A program
that imports jaxscale as a library keeps its own SIGINT handling.
"""

from __future__ import annotations

import os
import signal
import sys


def _interrupted(signum, frame) -> None:
    del signum, frame
    os.write(2, b"jaxscale: interrupted (Ctrl-C); nothing was written\n")
    os._exit(130)


def _is_command_line() -> bool:
    argv0 = sys.argv[0] if sys.argv else ""
    return argv0 == "-m" or os.path.basename(argv0) in ("jaxscale", "jaxscale.exe")


if _is_command_line() and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
    signal.signal(signal.SIGINT, _interrupted)
