"""Scaling-law forms: pure JAX functions plus their specs, and a registry.

>>> import jaxscale
>>> set(jaxscale.laws.BUILTIN) <= set(jaxscale.laws.available())
True
>>> jaxscale.laws.get("chinchilla").formula
'L = E + A/N^alpha + B/D^beta'
"""

from jaxscale.laws._catalogue import broken_power, chinchilla, data_constrained, kaplan, power, sigmoid
from jaxscale.laws._curves import curve, curve_nd, multi_power, tissue
from jaxscale.laws._overtraining import loss_to_error, overtraining
from jaxscale.laws._precision import precision, precision_ptq
from jaxscale.laws._registry import (COVARIATES, IDENTITY, LOG, LOGIT, TRANSFORMS, Law, Param, Transform, available,
                                     check_plugins, check_theta, get, log_covariates, plugins, register,
                                     unregister)
from jaxscale.laws._revisiting import m1, m2, m3, m4
from jaxscale.laws._routed import moe_clark, moe_granularity
from jaxscale.laws._sampling import coverage, mlpr

#: Names of the built-in laws.
BUILTIN = (
    "broken_power",
    "chinchilla",
    "coverage",
    "curve",
    "curve_nd",
    "data_constrained",
    "kaplan",
    "loss_to_error",
    "m1",
    "m2",
    "m3",
    "m4",
    "mlpr",
    "moe_clark",
    "moe_granularity",
    "multi_power",
    "overtraining",
    "power",
    "precision",
    "precision_ptq",
    "sigmoid",
    "tissue",
)

__all__ = [
    "BUILTIN",
    "COVARIATES",
    "IDENTITY",
    "LOG",
    "LOGIT",
    "Law",
    "Param",
    "TRANSFORMS",
    "Transform",
    "available",
    "broken_power",
    "check_plugins",
    "check_theta",
    "chinchilla",
    "coverage",
    "curve",
    "curve_nd",
    "data_constrained",
    "get",
    "kaplan",
    "log_covariates",
    "loss_to_error",
    "m1",
    "m2",
    "m3",
    "m4",
    "mlpr",
    "moe_clark",
    "moe_granularity",
    "multi_power",
    "overtraining",
    "plugins",
    "power",
    "precision",
    "precision_ptq",
    "register",
    "sigmoid",
    "tissue",
    "unregister",
]
