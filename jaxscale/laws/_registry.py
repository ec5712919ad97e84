"""The law specification and the registry of named laws."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxscale.errors import LawError

#: Covariates a law may ask for (the roles of :data:`jaxscale.data.COVARIATE_KEYS`). ``x`` is a generic resource
#: chosen by the user.
COVARIATES = ("N", "D", "C", "U", "x", "experts", "granularity", "precision", "precision_post", "samples")


class Transform(NamedTuple):
    """A map between a parameter's fitting coordinate and its natural value.

    Both functions are elementwise and array-generic: JAX arrays (and tracers) go through ``jax.numpy``, anything
    else (NumPy arrays, Python or NumPy scalars) through NumPy, so the same transform serves the solver, the
    samplers and host-side result code. Neither checks the domain (see :meth:`Law.to_fit`).

    Parameters
    ----------
    name
        ``"identity"``, ``"log"`` or ``"logit"``: the value of :attr:`Param.transform`.
    to_natural
        ``to_natural(theta) -> value``: fitting coordinate to natural value (``exp``, ``sigmoid``).
    to_fit
        ``to_fit(value) -> theta``: the inverse (``log``, ``logit``).

    Examples
    --------
    >>> import numpy as np, jax.numpy as jnp
    >>> from jaxscale.laws import LOGIT, TRANSFORMS
    >>> float(LOGIT.to_natural(0.0)), float(LOGIT.to_fit(0.5))
    (0.5, 0.0)
    >>> TRANSFORMS["log"].to_fit(np.array([1.0, np.e])).tolist()
    [0.0, 1.0]
    >>> type(TRANSFORMS["log"].to_natural(jnp.zeros(2))).__module__.startswith("jax")
    True
    """

    name: str
    to_natural: Callable[[Any], Any]
    to_fit: Callable[[Any], Any]


def _is_jax(x) -> bool:
    # Tracers are jax.Array instances too, so jitted and vmapped callers take the jnp branch.
    return isinstance(x, jax.Array)


def _identity(x):
    return x


def _exp(theta):
    if _is_jax(theta):
        return jnp.exp(theta)
    with np.errstate(over="ignore"):
        return np.exp(theta)


def _log(v):
    return jnp.log(v) if _is_jax(v) else np.log(v)


def _sigmoid(theta):
    if _is_jax(theta):
        return jax.nn.sigmoid(theta)
    # exp(-theta) overflows to inf for theta << 0, and 1 / (1 + inf) = 0 is the right limit.
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-np.asarray(theta)))


def _logit(v):
    if _is_jax(v):
        return jnp.log(v) - jnp.log1p(-v)
    return np.log(v) - np.log1p(-v)


IDENTITY = Transform("identity", _identity, _identity)
LOG = Transform("log", _exp, _log)
LOGIT = Transform("logit", _sigmoid, _logit)
#: The transforms by :attr:`Param.transform` name.
TRANSFORMS = {t.name: t for t in (IDENTITY, LOG, LOGIT)}


class Param(NamedTuple):
    """One parameter of a law.

    Parameters
    ----------
    name
        Name on the natural scale, as the law's docstring writes it (``"E"``,
        ``"alpha"``).
    transform
        How the fitting (unconstrained) coordinate maps to the natural value:
        ``"log"`` (natural = exp(theta), positive), ``"logit"`` (natural =
        sigmoid(theta), in (0, 1)) or ``"identity"``.
    grid
        Values of the *fitting* coordinate used to build the default start grid.
    positive
        Whether the natural value must be positive (used for priors and random
        starts; ``"log"`` parameters are always positive).
    prior
        ``(loc, scale)`` of the default Normal prior on the *sampling* scale
        (:func:`jaxscale.bayes.default_priors`): log for positive parameters,
        logit for ``"logit"`` ones, the value itself otherwise. ``None`` derives
        a wide prior from ``grid``.
    kind
        ``"exponent"`` (shared across families by default in a hierarchical
        model) or ``"coefficient"`` (partially pooled by default).
    """

    name: str
    transform: str = "identity"
    grid: tuple[float, ...] = (0.0,)
    positive: bool = False
    prior: tuple[float, float] | None = None
    kind: str = "coefficient"

    @property
    def sampling_transform(self) -> str:
        """``"log"``, ``"logit"`` or ``"identity"``: the scale NUTS samples this parameter on."""
        if self.transform == "logit":
            return "logit"
        if self.transform == "log" or self.positive:
            return "log"
        return "identity"

    @property
    def transform_fn(self) -> Transform:
        """The :class:`Transform` named by :attr:`transform`.

        >>> from jaxscale.laws import Param
        >>> Param("E", "log").transform_fn.name
        'log'
        """
        try:
            return TRANSFORMS[self.transform]
        except KeyError:
            raise LawError(f"Parameter {self.name!r} has transform {self.transform!r}; expected one of "
                           f"{sorted(TRANSFORMS)}.") from None

    @property
    def sampling_transform_fn(self) -> Transform:
        """The :class:`Transform` named by :attr:`sampling_transform`."""
        return TRANSFORMS[self.sampling_transform]

    @property
    def fit_name(self) -> str:
        """Name of the fitting coordinate, e.g. ``log_E`` for a log parameter."""
        return self.name if self.transform == "identity" else f"{self.transform}_{self.name}"


class Law(NamedTuple):
    """A scaling law: a pure JAX function plus everything needed to fit it.

    Parameters
    ----------
    name
        Registry name.
    log_predict
        ``log_predict(theta, logx) -> scalar``: the log of the predicted loss
        (or score) for ONE point. ``theta`` has shape ``(P,)`` in fitting
        coordinates (see :class:`Param`), ``logx`` has shape ``(K,)`` and holds
        the logs of the covariates in the order of ``covariates``. Use
        ``jax.vmap`` for batches; jaxscale vmaps it over points and over starts.
    params
        The parameters, in the order of ``theta``.
    covariates
        Covariates the law needs, a subset of ``("N", "D", "C", "U", "x")``.
    formula, reference
        Shown by ``jaxscale laws`` and in results.
    starts_fn
        Optional ``starts_fn(logx, logy) -> array (S, P)`` giving a data-aware
        default start grid. Without it the grid is the Cartesian product of the
        parameters' ``grid`` values.
    options
        The options the law was built with, as ``(name, value)`` pairs (kept a
        tuple so a Law is hashable and can key compiled solvers).
    log_predict_jac
        Optional fused form for speed: ``log_predict_jac(theta, logx) ->
        (lp, J)`` for a whole block, where ``theta`` is a tuple of ``P`` arrays
        of shape ``(B, 1)``, ``logx`` a tuple of ``K`` arrays of shape
        ``(n,)``, ``lp`` the ``(B, n)`` log predictions and ``J`` a tuple of
        the ``P`` partial derivatives ``d lp / d theta_k``, each ``(B, n)``. It
        must agree with ``log_predict`` and its autodiff Jacobian (the tests
        check every law that has one). Without it the solver uses
        ``jax.value_and_grad`` of ``log_predict``.

    Notes
    -----
    A Law compares and hashes by its fields, and the solver keys its compiled programs by the Law. A factory
    should therefore build its functions once (module-level functions, or frozen dataclasses with the options
    as fields, as ``broken_power`` does) rather than closures per call: then ``get(name, **o) == get(name, **o)``
    and a second fit reuses the first one's compilation.
    """

    name: str
    log_predict: Callable[[Any, Any], Any]
    params: tuple[Param, ...]
    covariates: tuple[str, ...]
    formula: str = ""
    reference: str = ""
    starts_fn: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
    options: tuple[tuple[str, Any], ...] = ()
    log_predict_jac: Callable[[Any, Any], Any] | None = None

    @property
    def param_names(self) -> tuple[str, ...]:
        """Natural-scale parameter names, in fitting order."""
        return tuple(p.name for p in self.params)

    @property
    def fit_names(self) -> tuple[str, ...]:
        """Fitting-coordinate names (``log_A`` ...), in order."""
        return tuple(p.fit_name for p in self.params)

    @property
    def n_params(self) -> int:
        return len(self.params)

    def default_starts(self, logx: np.ndarray | None = None, logy: np.ndarray | None = None) -> np.ndarray:
        """Default start grid, shape ``(S, P)`` in fitting coordinates."""
        if self.starts_fn is not None and logx is not None:
            return np.asarray(self.starts_fn(np.asarray(logx), np.asarray(logy)), dtype=np.float64)
        return np.array(list(itertools.product(*(p.grid for p in self.params))), dtype=np.float64)

    def to_natural(self, theta) -> dict[str, np.ndarray]:
        """Map fitting coordinates ``(..., P)`` to a dict of natural values."""
        theta = np.asarray(theta, dtype=np.float64)
        out = {}
        for i, p in enumerate(self.params):
            out[p.name] = p.transform_fn.to_natural(theta[..., i])
        return out

    def from_natural(self, values: Mapping[str, Any], check: bool = True) -> np.ndarray:
        """Map a dict of natural values (every parameter) to fitting coordinates.

        ``check=False`` skips the domain check: a positive parameter that underflowed to 0 (a posterior draw of
        E) maps to -inf, whose term vanishes while the prediction stays finite, instead of raising.
        """
        unknown = set(values) - set(self.param_names)
        missing = [n for n in self.param_names if n not in values]
        if unknown or missing:
            raise LawError(
                f"Law {self.name!r} has parameters {list(self.param_names)}; "
                f"got unknown {sorted(unknown)} and missing {missing}."
            )
        if check:
            cols = [self.to_fit(p.name, values[p.name]) for p in self.params]
        else:
            with np.errstate(divide="ignore"):
                cols = [p.transform_fn.to_fit(np.asarray(values[p.name], np.float64)) for p in self.params]
        return np.stack(np.broadcast_arrays(*cols), axis=-1)

    def to_fit(self, name: str, value) -> np.ndarray:
        """One parameter's natural value mapped to its fitting coordinate."""
        p = self.params[self.param_names.index(name)]
        v = np.asarray(value, dtype=np.float64)
        if p.transform == "log" and np.any(v <= 0):
            raise LawError(f"Parameter {p.name!r} of law {self.name!r} must be > 0, got {v}.")
        if p.transform == "logit" and np.any((v <= 0) | (v >= 1)):
            raise LawError(f"Parameter {p.name!r} of law {self.name!r} must be in (0, 1), got {v}.")
        return p.transform_fn.to_fit(v)

    def predict(self, params: Mapping[str, Any], **covariates) -> np.ndarray:
        """Predicted loss (natural scale) at the given covariates.

        Examples
        --------
        >>> import jaxscale
        >>> law = jaxscale.laws.get("chinchilla")
        >>> p = dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)
        >>> round(float(law.predict(p, N=70e9, D=1.4e12)), 4)
        1.9366
        """
        import jax

        theta = jnp.asarray(self.from_natural(params))
        logx = log_covariates(self, covariates)
        shape = np.broadcast_shapes(*(np.shape(covariates[c]) for c in self.covariates))
        f = jax.vmap(self.log_predict, in_axes=(None, 0))
        return np.exp(np.asarray(f(theta, jnp.asarray(logx)))).reshape(shape)


def log_covariates(law: Law, covariates: Mapping[str, Any]) -> np.ndarray:
    """The logs of ``law``'s covariates, broadcast together and flattened: shape ``(n, K)`` in law order.

    >>> import jaxscale
    >>> log_covariates(jaxscale.laws.get("power", resource="N"), {"N": [1.0, 10.0]}).round(3).tolist()
    [[0.0], [2.303]]
    """
    missing = [c for c in law.covariates if c not in covariates]
    if missing:
        raise LawError(f"Law {law.name!r} needs covariates {list(law.covariates)}; missing {missing}.")
    arrs = [a.ravel() for a in np.broadcast_arrays(*(np.asarray(covariates[c], dtype=np.float64) for c in law.covariates))]
    for c, a in zip(law.covariates, arrs):
        if not np.all(np.isfinite(a)) or np.any(a <= 0):
            raise LawError(f"Covariate {c!r} must be finite and > 0.")
    return np.log(np.stack(arrs, axis=-1))


_REGISTRY: dict[str, Callable[..., Law]] = {}


def register(law: Law | Callable[..., Law], name: str | None = None, *, overwrite: bool = False):
    """Register a law (or a factory ``f(**options) -> Law``) under ``name``.

    Examples
    --------
    A new law in a few lines: write its log prediction for one point, name its
    parameters, register it.

    >>> import jax.numpy as jnp
    >>> from jaxscale import laws
    >>> def log_predict(theta, logx):
    ...     log_E, log_A, alpha = theta
    ...     return jnp.logaddexp(log_E, log_A - alpha * logx[0])
    >>> my_law = laws.Law(
    ...     name="power_in_N", log_predict=log_predict, covariates=("N",),
    ...     params=(laws.Param("E", "log", (0.0, 1.0)), laws.Param("A", "log", (2.0, 6.0)),
    ...             laws.Param("alpha", grid=(0.2, 0.5))),
    ...     formula="E + A / N^alpha")
    >>> _ = laws.register(my_law, overwrite=True)
    >>> laws.get("power_in_N").param_names
    ('E', 'A', 'alpha')
    >>> laws.unregister("power_in_N")
    """
    if isinstance(law, Law):
        key = name or law.name
        factory = lambda **options: _with_options(law, options)  # noqa: E731
    else:
        key = name or getattr(law, "__name__", None)
        factory = law
    if not key:
        raise LawError("register() needs a name for a law factory.")
    if key in _REGISTRY and not overwrite:
        raise LawError(f"A law named {key!r} is already registered; pass overwrite=True to replace it.")
    _REGISTRY[key] = factory
    return law


def _with_options(law: Law, options: Mapping[str, Any]) -> Law:
    if options:
        raise LawError(f"Law {law.name!r} takes no options; got {sorted(options)}.")
    return law


def get(name: str | Law, **options) -> Law:
    """Return the registered law ``name``, built with ``options``.

    Examples
    --------
    >>> import jaxscale
    >>> jaxscale.laws.get("chinchilla").param_names
    ('E', 'A', 'B', 'alpha', 'beta')
    >>> jaxscale.laws.get("power", resource="C").covariates
    ('C',)
    """
    if isinstance(name, Law):
        if options:
            raise LawError("Options can only be given with a law name, not a Law object.")
        return name
    if not isinstance(name, str) or name not in _REGISTRY:
        raise LawError(f"Unknown law {name!r}; expected one of {available()}.")
    try:
        return _REGISTRY[name](**options)
    except TypeError as e:
        raise LawError(f"Bad options for law {name!r}: {e}") from None


def unregister(name: str) -> None:
    """Remove a registered law (e.g. one registered in a notebook or a test)."""
    if name not in _REGISTRY:
        raise LawError(f"Unknown law {name!r}; expected one of {available()}.")
    del _REGISTRY[name]


def available() -> list[str]:
    """Names of all registered laws, sorted."""
    return sorted(_REGISTRY)


def check_theta(law: Law, theta: Sequence[float] | np.ndarray, what: str = "starts") -> np.ndarray:
    """Validate a start grid: a 2-D array with one column per law parameter."""
    arr = np.asarray(theta, dtype=np.float64)
    if arr.ndim == 1 and arr.shape[0] == law.n_params:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != law.n_params:
        raise LawError(
            f"{what} must have shape (n_starts, {law.n_params}) for law {law.name!r} "
            f"(columns {list(law.fit_names)}); got shape {arr.shape}."
        )
    if arr.shape[0] < 1:
        raise LawError(f"{what} must contain at least one start; got shape {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise LawError(f"{what} row {bad[0]} column {law.fit_names[bad[1]]!r} is not finite.")
    return arr
