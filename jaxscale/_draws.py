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

from jaxscale.errors import ArgumentError, DataError, DerivedError, LawError
from jaxscale.laws import Law, available, get


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


def _check_params(law: Law, params: Mapping[str, Any], what: str, error: type = LawError) -> dict[str, float]:
    """Every parameter of ``law`` as a finite float; ``error`` (a :class:`LawError` for a dict the caller
    passed, a :class:`DataError` for a file) names ``what`` otherwise."""
    missing = [n for n in law.param_names if n not in params]
    if missing:
        raise error(f"{what} lacks parameters {missing} of law {law.name!r} (it needs {list(law.param_names)}).")
    out = {}
    for n in law.param_names:
        v = params[n]
        if v is None:
            raise error(f"{what}: parameter {n!r} is null (not finite when it was written); expected a finite "
                        f"number.")
        try:
            if isinstance(v, (bool, np.bool_, str, bytes)):
                raise TypeError
            v = float(v)
        except (TypeError, ValueError):
            raise error(f"{what}: parameter {n!r} must be a number; got {_preview(params[n])}.") from None
        if not np.isfinite(v):
            raise error(f"{what}: parameter {n!r} is {v}; expected a finite number.")
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


_WRITERS = "`jaxscale fit --json` or `jaxscale bootstrap --json`"
#: The first bytes of a netCDF file: classic (CDF1/2/5) or netCDF-4 (an HDF5 file).
_NETCDF_MAGIC = (b"CDF\x01", b"CDF\x02", b"CDF\x05", b"\x89HDF\r\n\x1a\n")


def _is_netcdf(head: bytes) -> bool:
    return head.startswith(_NETCDF_MAGIC)


def _file_law(path: str, doc: Mapping) -> Law:
    name = doc["law"]
    if not isinstance(name, str):
        raise DataError(f"{path}: 'law' must be a law name (a string); got {_preview(name)}.")
    if name not in available():
        raise DataError(f"{path}: unknown law {name!r}; expected one of {available()} (register a custom law "
                        f"before reading its fit).")
    settings = doc.get("settings", {})
    if not isinstance(settings, Mapping):
        raise DataError(f"{path}: 'settings' must be a JSON object (or absent); got {_preview(settings)}.")
    options = settings.get("law_options") or {}
    if not isinstance(options, Mapping):
        raise DataError(f"{path}: 'settings.law_options' must be a JSON object; got {_preview(options)}.")
    try:
        return get(name, **options)
    except LawError as e:
        raise DataError(f"{path}: the law options {dict(options)} do not build law {name!r}: {e}") from None


def _file_draws(path: str, law: Law, draws) -> pd.DataFrame:
    if not isinstance(draws, Mapping):
        raise DataError(f"{path}: 'draws' must be a JSON object of one list per parameter; got "
                        f"{type(draws).__name__}.")
    missing = [n for n in law.param_names if n not in draws]
    if missing:
        raise DataError(f"{path}: 'draws' lacks parameter(s) {missing} of law {law.name!r} (it needs "
                        f"{list(law.param_names)}).")
    cols = {}
    for n in law.param_names:
        v = draws[n]
        # null stands for a non-finite draw (JSON has no NaN): it is read as NaN and reported as a failed draw.
        if not isinstance(v, list) or not all(v_ is None or (isinstance(v_, (int, float)) and not isinstance(v_, bool))
                                              for v_ in v):
            raise DataError(f"{path}: draws of {n!r} must be a list of numbers (null for a failed draw); got "
                            f"{_preview(v)}.")
        cols[n] = np.asarray([np.nan if v_ is None else v_ for v_ in v], dtype=np.float64)
    lengths = {n: len(c) for n, c in cols.items()}
    if len(set(lengths.values())) > 1:
        raise DataError(f"{path}: the draws of each parameter must be equally long; got lengths {lengths}.")
    if not next(iter(lengths.values())):
        raise DataError(f"{path}: 'draws' holds no draws.")
    return pd.DataFrame(cols)


def _preview(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _from_json(path: str, law) -> ParamSource:
    with open(path, "rb") as fh:
        raw = fh.read()
    if _is_netcdf(raw[:8]):
        raise DataError(f"{path}: this is a netCDF file (as `jaxscale bayes --out` writes), not JSON; name it "
                        f"with a .nc extension.")
    if not raw.strip():
        raise DataError(f"{path}: the file is empty; expected the JSON written by {_WRITERS}.")
    try:
        doc = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text file (not UTF-8); expected the JSON written by {_WRITERS}.") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON ({e}; a truncated or hand-edited file?); expected the JSON "
                        f"written by {_WRITERS}.") from None
    if not isinstance(doc, dict) or "params" not in doc or "law" not in doc:
        got = f"keys {sorted(doc)}" if isinstance(doc, dict) else f"a JSON {type(doc).__name__}"
        raise DataError(f"{path}: expected the JSON written by {_WRITERS} (an object with 'law' and 'params'); "
                        f"got {got}.")
    law = _matching(_file_law(path, doc), law, path)
    params = doc["params"]
    if not isinstance(params, Mapping):
        raise DataError(f"{path}: 'params' must be a JSON object mapping parameter names to values; got "
                        f"{_preview(params)}.")
    nested = [isinstance(v, Mapping) for v in params.values()]
    if params and all(nested):  # bootstrap JSON
        no_estimate = [k for k, v in params.items() if "estimate" not in v]
        if no_estimate:
            raise DataError(f"{path}: params {no_estimate} have no 'estimate'; a bootstrap JSON has "
                            f"{{name: {{'estimate', 'se', 'ci'}}}}.")
        point = _check_params(law, {k: v["estimate"] for k, v in params.items()}, path, DataError)
        if doc.get("draws") is None:
            raise DataError(f"{path}: this bootstrap JSON has no 'draws'; write it with `jaxscale bootstrap --json` "
                            f"(jaxscale >= 0.2) or pass the BootstrapResult itself.")
        return ParamSource(law, point, _file_draws(path, law, doc["draws"]), "bootstrap", doc.get("data_fingerprint"))
    if any(nested):
        raise DataError(f"{path}: 'params' mixes numbers and objects; a fit JSON maps each name to a number, a "
                        f"bootstrap JSON each name to {{'estimate', 'se', 'ci'}}.")
    return ParamSource(law, _check_params(law, params, path, DataError), None, "fit", doc.get("data_fingerprint"))


def read_posterior(path: str):
    """The posterior netCDF written by ``jaxscale bayes --out``, as ArviZ InferenceData, with the law it names
    (``(idata, law)``); a file that is not one, or is damaged, is a :class:`DataError` saying so."""
    with open(path, "rb") as fh:
        head = fh.read(8)
    if not _is_netcdf(head):
        what = "it is empty" if not head else ("it looks like JSON: name it .json" if head.lstrip()[:1] in (b"{", b"[")
                                               else f"it starts with {head!r}")
        raise DataError(f"{path}: not a netCDF file ({what}); expected the netCDF written by `jaxscale bayes --out`.")
    import arviz as az

    try:
        idata = az.from_netcdf(path)
    except Exception as e:  # noqa: BLE001 -- netCDF/HDF5 readers raise OSError, ValueError, KeyError ... on damage
        raise DataError(f"{path}: cannot be read as netCDF ({type(e).__name__}: {e}); a truncated or damaged "
                        f"file?") from None
    if "posterior" not in idata.groups():
        raise DataError(f"{path}: this netCDF file has no 'posterior' group; expected the file written by "
                        f"`jaxscale bayes --out`.")
    from jaxscale.bayes._infer import law_of

    try:
        return idata, law_of(idata)
    except LawError as e:
        raise DataError(f"{path}: the posterior does not name a jaxscale law it can build ({e}); expected the "
                        f"netCDF written by `jaxscale bayes --out`.") from None


def _from_netcdf(path: str, law) -> ParamSource:
    from jaxscale.bayes._infer import param_draws

    idata, found = read_posterior(path)
    lw = _matching(found, law, path)
    try:
        draws = param_draws(idata, lw)
    except DerivedError as e:
        raise DataError(f"{path}: {e}") from None
    return _posterior_source(idata, lw, draws)


def _posterior_source(idata, law: Law, draws: pd.DataFrame) -> ParamSource:
    return ParamSource(law, {k: float(v) for k, v in draws.median().items()}, draws, "posterior",
                       idata.posterior.attrs.get("data_fingerprint"))


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

    A path that does not exist is an :class:`~jaxscale.errors.ArgumentError`; a damaged file (empty,
    truncated, not JSON or not netCDF as its name says, missing or malformed ``law``, ``params``,
    ``settings`` or ``draws``, draws of unequal length, a parameter that is null or not finite, an unknown
    law) is one :class:`~jaxscale.errors.DataError` naming the file and what is wrong. In a bootstrap file's
    ``draws``, ``null`` is a non-finite draw: it is read as NaN (and reported as a failed draw downstream).

    Examples
    --------
    >>> import json, os, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "fit.json")
    ...     with open(path, "w") as fh:
    ...         _ = fh.write(json.dumps({"law": "power", "settings": {"law_options": {"resource": "N"}},
    ...                                  "params": {"E": 1.7, "A": 400.0, "alpha": 0.3}}))
    ...     src = param_source(path)
    >>> src.kind, src.law.covariates, src.point["alpha"]
    ('fit', ('N',), 0.3)
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
            raise ArgumentError(f"fit file {path!r} does not exist.")
        if os.path.isdir(path):
            raise ArgumentError(f"fit file {path!r} is a directory; give the JSON or netCDF file.")
        try:
            if path.endswith(".nc"):
                return _from_netcdf(path, law)
            return _from_json(path, law)
        except OSError as e:
            raise DataError(f"{path}: cannot be read ({e.strerror or e}).") from None
    if hasattr(fit, "posterior") and hasattr(fit, "groups"):
        from jaxscale.bayes._infer import law_of, param_draws

        lw = _matching(law_of(fit), law, "this posterior")
        return _posterior_source(fit, lw, param_draws(fit, lw))
    if isinstance(fit, Mapping):
        if law is None:
            raise LawError("A dict of parameters needs law= (e.g. law='chinchilla').")
        lw = get(law)
        return ParamSource(lw, _check_params(lw, fit, "params"), None, "params")
    raise LawError(f"Expected a FitResult, BootstrapResult, ArviZ InferenceData, a dict of parameters or a path to "
                   f"a fit file; got {type(fit).__name__}.")


__all__ = ["ParamSource", "param_source"]
