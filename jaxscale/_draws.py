"""One view of "a fitted law": its point estimate and, where they exist, its draws.

Decisions (allocation, forecasts) take a point fit, a bootstrap or a posterior
alike. :func:`param_source` turns any of them into a :class:`ParamSource`:
the law, natural-scale point parameters, and natural-scale draws (bootstrap
replicates or posterior draws) or ``None``.

>>> import jaxscale
>>> src = param_source({"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}, law="chinchilla")
>>> src.kind, src.draws is None
('params', True)
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from jaxscale.errors import LawError
from jaxscale.laws import Law, get


class ParamSource(NamedTuple):
    """A law with point parameters and optional draws (all on the natural scale).

    ``point``: the fit's parameters, the bootstrap's full-data fit, or the
    posterior median. ``draws``: a DataFrame with one column per parameter
    (bootstrap replicates or posterior draws), or ``None`` for a point fit.
    ``kind``: ``"fit"``, ``"bootstrap"``, ``"posterior"`` or ``"params"``.
    """

    law: Law
    point: dict[str, float]
    draws: pd.DataFrame | None
    kind: str
    fingerprint: str | None = None

    def columns(self) -> dict[str, np.ndarray]:
        """Draws as ``{name: (n_draws,) array}`` (the point as one draw when there are none)."""
        if self.draws is None:
            return {k: np.asarray([v], float) for k, v in self.point.items()}
        return {k: self.draws[k].to_numpy(float) for k in self.law.param_names}


def _check_params(law: Law, params: Mapping[str, Any], what: str) -> dict[str, float]:
    missing = [n for n in law.param_names if n not in params]
    if missing:
        raise LawError(f"{what} lacks parameters {missing} of law {law.name!r} (it needs {list(law.param_names)}).")
    out = {}
    for n in law.param_names:
        try:
            v = float(params[n])
        except (TypeError, ValueError):
            raise LawError(f"{what}: parameter {n!r} must be a number; got {params[n]!r}.") from None
        if not np.isfinite(v):
            raise LawError(f"{what}: parameter {n!r} is {v}; expected a finite number.")
        out[n] = v
    return out


def _matching(found: Law, wanted, where: str) -> Law:
    """The law a fit was made with; an error if the caller expects another."""
    if wanted is not None:
        w = get(wanted)
        if w.name != found.name or dict(w.options) != dict(found.options):
            raise LawError(f"{where} holds a fit of law {found.name!r} (options {dict(found.options)}), "
                           f"not {w.name!r} (options {dict(w.options)}).")
    return found


def _from_json(path: str, law) -> ParamSource:
    try:
        with open(path) as fh:
            doc = json.load(fh)
    except json.JSONDecodeError as e:
        raise LawError(f"{path}: not valid JSON ({e}); expected the JSON written by `jaxscale fit` or "
                       f"`jaxscale bootstrap --json`.") from None
    if not isinstance(doc, dict) or "params" not in doc or "law" not in doc:
        raise LawError(f"{path}: expected the JSON written by `jaxscale fit` or `jaxscale bootstrap` "
                       f"(with 'law' and 'params'); got keys {sorted(doc) if isinstance(doc, dict) else type(doc)}.")
    options = doc.get("settings", {}).get("law_options", {}) or {}
    law = _matching(get(doc["law"], **options), law, path)
    params = doc["params"]
    if all(isinstance(v, Mapping) for v in params.values()):  # bootstrap JSON
        point = _check_params(law, {k: v["estimate"] for k, v in params.items()}, path)
        draws = doc.get("draws")
        if draws is None:
            raise LawError(f"{path}: this bootstrap JSON has no 'draws'; write it with `jaxscale bootstrap --json` "
                           f"(jaxscale >= 0.2) or pass the BootstrapResult itself.")
        return ParamSource(law, point, pd.DataFrame({k: np.asarray(draws[k], float) for k in law.param_names}),
                           "bootstrap", doc.get("data_fingerprint"))
    return ParamSource(law, _check_params(law, params, path), None, "fit", doc.get("data_fingerprint"))


def param_source(fit, law: str | Law | None = None) -> ParamSource:
    """Normalise a fit to a :class:`ParamSource`.

    ``fit`` may be a :class:`~jaxscale.FitResult`, a
    :class:`~jaxscale.BootstrapResult`, an ArviZ ``InferenceData`` from
    :func:`jaxscale.bayes.sample`, a dict of natural parameters (then ``law``
    is required), or a path to a JSON file written by ``jaxscale fit --json``
    / ``jaxscale bootstrap --json`` or a netCDF file written by
    ``jaxscale bayes --out``. The law is always the one the fit was made
    with; passing ``law`` checks it (a mismatch is a :class:`LawError`),
    except for a dict of parameters, which needs it.
    """
    from jaxscale.fit import FitResult
    from jaxscale.uncertainty import BootstrapResult

    if isinstance(fit, ParamSource):
        _matching(fit.law, law, "this ParamSource")
        return fit
    if isinstance(fit, FitResult):
        _matching(fit.law, law, "this FitResult")
        return ParamSource(fit.law, dict(fit.params), None, "fit", fit.fingerprint)
    if isinstance(fit, BootstrapResult):
        _matching(fit.law, law, "this BootstrapResult")
        return ParamSource(fit.law, dict(fit.point.params), fit.draws[list(fit.law.param_names)].reset_index(drop=True),
                           "bootstrap", fit.point.fingerprint)
    if isinstance(fit, (str, os.PathLike)):
        path = os.fspath(fit)
        if not os.path.exists(path):
            raise LawError(f"fit file {path!r} does not exist.")
        if path.endswith(".nc"):
            import arviz as az

            return param_source(az.from_netcdf(path), law)
        return _from_json(path, law)
    if hasattr(fit, "posterior") and hasattr(fit, "groups"):
        from jaxscale.bayes._infer import _param_draws, law_of

        lw = _matching(law_of(fit), law, "this posterior")
        draws = _param_draws(fit, lw)
        return ParamSource(lw, {k: float(v) for k, v in draws.median().items()}, draws, "posterior",
                           fit.posterior.attrs.get("data_fingerprint"))
    if isinstance(fit, Mapping):
        if law is None:
            raise LawError("A dict of parameters needs law= (e.g. law='chinchilla').")
        lw = get(law)
        return ParamSource(lw, _check_params(lw, fit, "params"), None, "params")
    raise LawError(f"Expected a FitResult, BootstrapResult, ArviZ InferenceData, a dict of parameters or a path to "
                   f"a fit file; got {type(fit).__name__}.")


__all__ = ["ParamSource", "param_source"]
