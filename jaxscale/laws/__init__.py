"""Scaling-law forms: pure JAX functions plus their specs, and a registry.

>>> import jaxscale
>>> set(jaxscale.laws.BUILTIN) <= set(jaxscale.laws.available())
True
>>> jaxscale.laws.get("chinchilla").formula
'L = E + A/N^alpha + B/D^beta'
"""

from jaxscale.laws._catalogue import broken_power, chinchilla, data_constrained, kaplan, power, sigmoid
from jaxscale.laws._curves import curve, curve_nd, multi_power, tissue
from jaxscale.laws._registry import (COVARIATES, IDENTITY, LOG, LOGIT, TRANSFORMS, Law, Param, Transform, available,
                                     check_theta, get, log_covariates, register, unregister)

#: Names of the built-in laws.
BUILTIN = (
    "broken_power",
    "chinchilla",
    "curve",
    "curve_nd",
    "data_constrained",
    "kaplan",
    "multi_power",
    "power",
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
    "check_theta",
    "chinchilla",
    "curve",
    "curve_nd",
    "data_constrained",
    "get",
    "kaplan",
    "log_covariates",
    "multi_power",
    "power",
    "register",
    "sigmoid",
    "tissue",
    "unregister",
]
