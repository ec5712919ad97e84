"""Bayesian scaling laws: a NumPyro model for any law, NUTS at scale, ArviZ output.

``import jaxscale`` does not import this module (numpyro and arviz load only
when it is used)::

    from jaxscale import bayes
    idata = bayes.sample("chinchilla", data, key=0)      # arviz.InferenceData
    print(bayes.diagnose(idata))

>>> from jaxscale import bayes
>>> sorted(bayes.default_priors(__import__("jaxscale").laws.get("power", resource="N")))
['A', 'E', 'alpha', 'df', 'sigma']
"""

from jaxscale.bayes._infer import (Diagnostics, compare, derive, diagnose, law_of, new_run_offsets, predict,
                                   prior_predictive, sample)
from jaxscale.bayes._many import ManyPosteriors, SBCResult, sample_many, sbc
from jaxscale.bayes._model import BayesModel, model
from jaxscale.bayes._priors import default_priors, published_priors

__all__ = [
    "BayesModel",
    "Diagnostics",
    "ManyPosteriors",
    "SBCResult",
    "compare",
    "default_priors",
    "derive",
    "diagnose",
    "law_of",
    "model",
    "new_run_offsets",
    "predict",
    "prior_predictive",
    "published_priors",
    "sample",
    "sample_many",
    "sbc",
]
