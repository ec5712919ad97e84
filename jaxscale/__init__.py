"""jaxscale: differentiable, batched fitting of neural scaling laws in JAX.

>>> import jaxscale
>>> res = jaxscale.fit("chinchilla", jaxscale.demo_data(), starts=128, key=0)
>>> res.law.name, res.n_starts
('chinchilla', 128)
"""

__version__ = "0.1.0"

from jaxscale import _x64  # noqa: F401  (float64 by default; see _x64.py)
from jaxscale import laws
from jaxscale._demo import HOFFMANN_UNROUNDED, demo_data
from jaxscale._devices import set_host_device_count
from jaxscale.data import ScalingData
from jaxscale.errors import DataError, DerivedError, FitError, JaxscaleError, LawError
from jaxscale.fit import FitResult, fit, objective
from jaxscale import derived
from jaxscale.uncertainty import BootstrapResult, Derived, bootstrap
from jaxscale.hypothesis import HypothesisTest, chi2_test, lr_test
from jaxscale import allocate, downstream, isoflop
from jaxscale.forecast import BacktestResult, Forecast, backtest

__all__ = [
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
