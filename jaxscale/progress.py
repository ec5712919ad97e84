"""What a long run says before and while it runs: one cost line, then a progress bar.

* **The cost line.** Before a run estimated at more than :data:`ANNOUNCE_SECONDS` (60 s) on the current devices,
  :func:`announce` logs ONE record on the ``jaxscale`` logger, level WARNING: how many fits, about how long, and
  how to make it cheaper. A log record, not :func:`warnings.warn`: with no logging configured Python's last-resort
  handler prints it on stderr (a script, a notebook cell), the command line turns it into one ``jaxscale:
  warning: ...`` line (:mod:`jaxscale.cli._runtime`), a user silences it with
  ``logging.getLogger("jaxscale").setLevel(logging.ERROR)``, and test suites that turn warnings into errors
  (``filterwarnings = error``) are not broken by a notice about time. The estimate comes from a rate measured in
  the same process (for :func:`jaxscale.bootstrap`, the point fit it runs first, with JAX's tracing and
  compilation time taken out: :class:`CompileTimer`).
* **The bar.** ``progress=None`` (the default of :func:`jaxscale.bootstrap`, :func:`jaxscale.forecast.forecast`
  and :func:`jaxscale.forecast.backtest`) draws a tqdm bar when the estimate exceeds :data:`BAR_SECONDS` (5 s),
  or, with no estimate, once the run has lasted that long; ``True`` always, ``False`` never; a callable
  ``(done, total)`` is called instead. In a Jupyter kernel with ipywidgets installed the bar is a widget
  (``tqdm.notebook``), otherwise text on stderr (``tqdm.std``: never tqdm's "IProgress not found" warning).

Both thresholds are module constants, read at every call: set them to change what counts as long.

>>> from jaxscale import progress
>>> progress.describe_seconds(9000.0), progress.describe_seconds(75.0)
('2.5 h', '75 s')
>>> progress.announce("bootstrap", 18_000_000, 6500.0, "a rate of 2,800 fits/s", "use fewer resamples")
True
>>> progress.announce("bootstrap", 9_000, 3.0, "a rate of 2,800 fits/s", "use fewer resamples")  # short: silent
False
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import sys
import threading
from collections.abc import Callable, Iterator

import numpy as np

from jaxscale.errors import ArgumentError

#: Runs estimated longer than this (seconds) log one line first, with the estimate and how to make them cheaper.
ANNOUNCE_SECONDS = 60.0
#: With ``progress=None``, a bar is drawn for runs estimated longer than this (seconds), or that last longer.
BAR_SECONDS = 5.0

logger = logging.getLogger("jaxscale")

_COMPILE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration", "/jax/core/compile/jaxpr_to_mlir_module_duration",
                   "/jax/core/compile/backend_compile_duration")  # the last includes reading the persistent cache


def check(progress, name: str = "progress"):
    """``progress`` if it is None, True, False or a callable ``(done, total)``; else an ArgumentError."""
    if progress is None or isinstance(progress, (bool, np.bool_)) or callable(progress):
        return bool(progress) if isinstance(progress, np.bool_) else progress
    raise ArgumentError(f"{name} must be None (a bar when the run is long), True, False or a callable "
                        f"(done, total); got {progress!r}.")


def describe_seconds(seconds: float) -> str:
    """``'75 s'``, ``'19 min'``, ``'2.5 h'``: a duration as the cost line prints it."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def device_label() -> str:
    """The devices runs are sharded over, e.g. ``'cpu (2 devices)'``."""
    import jax

    n = jax.local_device_count()
    return f"{jax.default_backend()} ({n} device{'s' if n != 1 else ''})"


def announce(what: str, n_fits: int, seconds: float | None, basis: str, cheaper: str) -> bool:
    """Log the cost line (see the module docstring) when ``seconds`` exceeds :data:`ANNOUNCE_SECONDS`.

    ``basis`` says what the estimate rests on; ``cheaper`` how to make the run cheaper. Returns whether it logged.
    """
    if seconds is None or not seconds > ANNOUNCE_SECONDS:
        return False
    logger.warning("%s: %s fits, about %s on %s, estimated from %s; to make it cheaper: %s.", what,
                   f"{int(n_fits):,}", describe_seconds(seconds), device_label(), basis, cheaper)
    return True


class CompileTimer:
    """Seconds JAX spent tracing, lowering and compiling (or reading compiled programs from the persistent
    cache) in this thread while the ``with`` block ran: what to take out of a wall time to get a solve rate.

    >>> import jax, jax.numpy as jnp
    >>> with CompileTimer() as t:
    ...     _ = jax.jit(lambda x: x * 2.0 + 1.0)(jnp.ones(3)).block_until_ready()
    >>> t.seconds > 0
    True
    """

    def __init__(self):
        self.seconds = 0.0
        self._thread = threading.get_ident()

    def _listen(self, event, duration, **kwargs):
        del kwargs
        if event in _COMPILE_EVENTS and threading.get_ident() == self._thread:
            self.seconds += float(duration)

    def __enter__(self):
        import jax

        self._thread = threading.get_ident()
        jax.monitoring.register_event_duration_secs_listener(self._listen)
        return self

    def __exit__(self, *exc):
        import jax

        jax.monitoring.unregister_event_duration_listener(self._listen)
        return False


class FirstChunkEstimate:
    """The cost line from the run itself, when nothing measured before it: a ``(done, total)`` callable for the
    solver that, after the first chunk of fits, estimates the whole run from that chunk's rate (tracing and
    compilation excluded, :class:`CompileTimer`) and announces it (:func:`announce`) before the rest runs. It then hands
    every call on to ``show`` (a bar or the user's callable, or None). Use it as a context manager around the run.
    """

    def __init__(self, show, what: str, cheaper: str):
        self.show, self.what, self.cheaper = show, what, cheaper
        self._timer = CompileTimer()
        self._t0 = None
        self.seconds = None  # the estimate, once the first chunk is done

    def __enter__(self):
        import time

        self._timer.__enter__()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self._stop()
        return False

    def _stop(self):
        if self._t0 is not None:
            self._timer.__exit__()

    def __call__(self, done: int, total: int) -> None:
        if self._t0 is not None:
            import time

            elapsed = time.perf_counter() - self._t0
            self._stop()
            self._t0 = None
            solving = elapsed - self._timer.seconds
            if 0 < done < total and solving > 0:
                self.seconds = elapsed + (total - done) * solving / done
                announce(self.what, total, self.seconds,
                         f"its first {int(done):,} fits ({done / solving:,.0f} fits/s, compilation excluded)",
                         self.cheaper)
        if self.show is not None:
            self.show(done, total)


def tqdm_class():
    """``tqdm.notebook.tqdm`` in a Jupyter kernel that has ipywidgets, else ``tqdm.std.tqdm`` (text on stderr)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    if shell is not None and "IPKernelApp" in getattr(shell, "config", {}) and importlib.util.find_spec("ipywidgets"):
        from tqdm.notebook import tqdm
    else:
        from tqdm.std import tqdm
    return tqdm


class Bar:
    """A tqdm bar driven as a ``(done, total)`` callable (what the solver calls after each chunk).

    ``delay``: draw nothing until the run has lasted that many seconds (a run that ends sooner leaves no trace).
    """

    def __init__(self, desc: str, total: int, unit: str = "fit", delay: float = 0.0):
        self._bar = tqdm_class()(total=int(total), desc=desc, unit=unit, unit_scale=True, delay=float(delay),
                                  file=sys.stderr, dynamic_ncols=True, leave=True)

    def __call__(self, done: int, total: int) -> None:
        if self._bar.total != total:
            self._bar.total = int(total)
        self._bar.update(int(done) - self._bar.n)

    def close(self) -> None:
        self._bar.close()


@contextlib.contextmanager
def reporting(progress, desc: str, total: int, *, unit: str = "fit",
              estimate: float | None = None) -> Iterator[Callable[[int, int], None] | None]:
    """The ``(done, total)`` callable to hand the solver for ``progress`` (see the module docstring), or None; a
    bar it makes is closed when the block ends.

    >>> with reporting(False, "bootstrap", 100) as show:
    ...     show is None
    True
    >>> seen = []
    >>> with reporting(lambda done, total: seen.append(done), "bootstrap", 100) as show:
    ...     show(100, 100)
    >>> seen
    [100]
    """
    progress = check(progress)
    if progress is False or (progress is None and estimate is not None and estimate <= BAR_SECONDS):
        yield None
        return
    if callable(progress) and progress is not True:
        yield progress
        return
    bar = Bar(desc, total, unit, delay=BAR_SECONDS if progress is None and estimate is None else 0.0)
    try:
        yield bar
    finally:
        bar.close()


__all__ = ["ANNOUNCE_SECONDS", "BAR_SECONDS", "Bar", "CompileTimer", "FirstChunkEstimate", "announce", "check",
           "describe_seconds", "device_label", "logger", "reporting", "tqdm_class"]
