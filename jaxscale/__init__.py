"""jaxscale: differentiable, batched fitting of neural scaling laws in JAX.

>>> import jaxscale
>>> res = jaxscale.fit("chinchilla", jaxscale.demo_data(), starts=128, key=0)
>>> res.law.name, res.n_starts
('chinchilla', 128)
"""

from jaxscale import _early  # noqa: F401  (Ctrl-C while the CLI imports JAX; see _early.py)
from jaxscale._version import __version__

import warnings as _warnings

# ArviZ >= 0.23 announces its 1.0 refactor on import (once a day): noise for users who never asked for ArviZ
# directly, emitted from a background import thread (bayes) where catch_warnings cannot reach it.
_warnings.filterwarnings("ignore", message=r"\s*ArviZ is undergoing a major refactor", category=FutureWarning)

from jaxscale import _x64  # noqa: F401  (float64 by default; see _x64.py)
from jaxscale import laws
from jaxscale import published
from jaxscale._demo import demo_data
from jaxscale.published import HOFFMANN_UNROUNDED
from jaxscale._devices import set_host_device_count
from jaxscale.data import ScalingData
from jaxscale import datasets
from jaxscale.errors import ArgumentError, DataError, DerivedError, FitError, JaxscaleError, LawError
from jaxscale.fit import FitResult, fit, objective
from jaxscale import derived
from jaxscale.uncertainty import BootstrapResult, Derived, bootstrap
from jaxscale.hypothesis import HypothesisTest, chi2_test, lr_test
from jaxscale import allocate, downstream, isoflop
from jaxscale import sampling
from jaxscale.forecast import BacktestResult, Forecast, backtest
from jaxscale.compare import CompareResult, compare

__all__ = [
    "ArgumentError",
    "BacktestResult",
    "BootstrapResult",
    "CompareResult",
    "Forecast",
    "allocate",
    "backtest",
    "downstream",
    "isoflop",
    "sampling",
    "Derived",
    "DerivedError",
    "HypothesisTest",
    "bootstrap",
    "chi2_test",
    "compare",
    "datasets",
    "derived",
    "lr_test",
    "HOFFMANN_UNROUNDED",
    "DataError",
    "FitError",
    "FitResult",
    "JaxscaleError",
    "LawError",
    "ScalingData",
    "__version__",
    "demo_data",
    "fit",
    "laws",
    "published",
    "objective",
    "report",
    "set_host_device_count",
]


def __getattr__(name: str):
    # report and plot load matplotlib, bayes numpyro and arviz: imported on first use, not by `import jaxscale`.
    if name in ("report", "plot", "bayes"):
        import importlib

        return importlib.import_module(f"jaxscale.{name}")
    raise AttributeError(f"module 'jaxscale' has no attribute {name!r}")
