"""jaxscale: differentiable, batched fitting of neural scaling laws in JAX.

>>> import jaxscale
>>> res = jaxscale.fit("chinchilla", jaxscale.demo_data(), starts=128, key=0)
>>> res.law.name, res.n_starts
('chinchilla', 128)
"""

from jaxscale import _early  # noqa: F401  (Ctrl-C while the CLI imports JAX; see _early.py)
from jaxscale._version import __version__

from jaxscale import _x64  # noqa: F401  (float64 by default; see _x64.py)
from jaxscale import laws
from jaxscale._demo import HOFFMANN_UNROUNDED, demo_data
from jaxscale._devices import set_host_device_count
from jaxscale.data import ScalingData
from jaxscale.errors import ArgumentError, DataError, DerivedError, FitError, JaxscaleError, LawError
from jaxscale.fit import FitResult, fit, objective
from jaxscale import derived
from jaxscale.uncertainty import BootstrapResult, Derived, bootstrap
from jaxscale.hypothesis import HypothesisTest, chi2_test, lr_test
from jaxscale import allocate, downstream, isoflop
from jaxscale.forecast import BacktestResult, Forecast, backtest

__all__ = [
    "ArgumentError",
    "BacktestResult",
    "BootstrapResult",
    "Forecast",
    "allocate",
    "backtest",
    "downstream",
    "isoflop",
    "Derived",
    "DerivedError",
    "HypothesisTest",
    "bootstrap",
    "chi2_test",
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
    "objective",
    "set_host_device_count",
]
