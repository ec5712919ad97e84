"""How every command runs: one-line errors and warnings, Ctrl-C, exit codes.

Exit codes: 0 done; 2 an expected error (bad input or arguments, a file that cannot be read or written; one line
``jaxscale: error: ...``); 1 an unexpected exception, which is a bug (one line saying so; ``--debug`` or
``JAXSCALE_DEBUG=1`` shows the traceback); 130 interrupted by Ctrl-C (one line; nothing is written, because
every output goes through :func:`jaxscale._io.write_atomic` and its temporary files are removed).

Ctrl-C is honoured at once even while XLA compiles or runs, when Python's own handler cannot run (the main
thread is inside C++ and, in a garbage-collection callback, JAX swallows ``KeyboardInterrupt``): the signal is
also written to a wakeup pipe that a small thread watches, and either path ends the process with
``os._exit(130)``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import warnings

from jaxscale import _io
from jaxscale.errors import JaxscaleError

INTERRUPTED = 130


def debug_requested(argv) -> bool:
    """``--debug`` anywhere on the command line, or ``JAXSCALE_DEBUG`` set to anything but ``0``/empty."""
    return "--debug" in (argv or ()) or os.environ.get("JAXSCALE_DEBUG", "") not in ("", "0")


def one_line(text) -> str:
    """A message on one line (multi-line library messages are joined)."""
    return " ".join(str(text).split())


def say(kind: str, message) -> None:
    print(f"jaxscale: {kind}: {one_line(message)}", file=sys.stderr, flush=True)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    del category, filename, lineno, file, line
    say("warning", message)


@contextlib.contextmanager
def library_logs():
    """Warnings logged by the libraries underneath (ArviZ, JAX, NumPyro) as one ``jaxscale: warning:`` line each.

    ``Logger.handle`` is replaced for the duration, not the loggers' handlers: ArviZ is imported lazily and adds
    its own handler when it is, after a command has started.
    """
    original = logging.Logger.handle

    def handle(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            say("warning" if record.levelno < logging.ERROR else "error", record.getMessage())

    logging.Logger.handle = handle
    try:
        yield
    finally:
        logging.Logger.handle = original


def _abort() -> None:
    try:
        os.write(2, b"jaxscale: interrupted (Ctrl-C); nothing was written\n")
        _io.remove_pending()
    finally:
        os._exit(INTERRUPTED)


@contextlib.contextmanager
def interruptible():
    """Ctrl-C ends the process at once with exit 130 and one line (see the module docstring)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)

    def watch():
        try:
            data = os.read(read_fd, 64)
        except OSError:
            return
        if data and signal.SIGINT in data:
            _abort()

    previous_handler = signal.signal(signal.SIGINT, lambda signum, frame: _abort())
    previous_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    watcher = threading.Thread(target=watch, name="jaxscale-sigint", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        signal.set_wakeup_fd(previous_fd)
        signal.signal(signal.SIGINT, previous_handler)
        os.close(write_fd)  # the watcher's read returns b"" and it exits
        watcher.join(timeout=1.0)
        os.close(read_fd)


def run(command, args, *, debug: bool = False) -> int:
    """Run ``command(args)`` with the CLI's error, warning and interrupt handling; return the exit code."""
    with warnings.catch_warnings(), interruptible(), library_logs():
        warnings.simplefilter("default")
        warnings.showwarning = _show_warning
        try:
            return command(args)
        except JaxscaleError as e:
            if debug:
                raise
            say("error", e)
            return 2
        except BrokenPipeError:
            # The reader went away (``jaxscale laws | head``): stop quietly, as Unix tools do.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 1
        except MemoryError as e:
            if debug:
                raise
            say("error", f"out of memory{': ' + str(e) if str(e) else ''}; try fewer starts or resamples, or "
                         f"--memory-limit")
            return 2
        except OSError as e:
            if debug:
                raise
            say("error", e)
            return 2
        except KeyboardInterrupt:
            say("error", "interrupted (Ctrl-C); nothing was written")
            return INTERRUPTED
        except Exception as e:  # noqa: BLE001 -- the last line of defence: never a traceback on the CLI
            if debug:
                raise
            say("error", f"internal error (this is a bug in jaxscale, please report it): {type(e).__name__}: {e}. "
                         f"Rerun with --debug (or JAXSCALE_DEBUG=1) for the traceback.")
            return 1
