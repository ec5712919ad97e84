"""The law specification and the registry of named laws.

Laws from other packages
------------------------
An installed package registers laws through the entry-point group ``jaxscale.laws``: each entry is
``name = "module:attr"``, where ``attr`` is a :class:`Law` named ``name`` or a factory ``f(**options) -> Law``
that builds one with no options (as every built-in law does). In the package's ``pyproject.toml``::

    [project.entry-points."jaxscale.laws"]
    saturating = "mypackage.laws:saturating"

After ``pip install mypackage``, ``jaxscale.laws.get("saturating")``, ``jaxscale.fit("saturating", data)`` and
``jaxscale fit DATA.csv --law saturating`` use it, and ``jaxscale laws`` lists it with its package.

* The entry points are read on the first lookup that needs them (:func:`available`, :func:`plugins`, or
  :func:`get` of a name not registered yet), never by ``import jaxscale``; reading them imports no package. A
  law's module is imported when :func:`get` first builds the law, so a broken package breaks only its own laws.
* Everything that can go wrong raises a one-line :class:`~jaxscale.errors.LawError` naming the law, the package
  and the entry point, when the law is used: a module that cannot be imported, an object that is neither a Law
  nor a factory, a factory that fails, or a Law that fails validation (its name must be the entry point's; its
  parameters need known transforms and kinds, finite start grids and priors; its covariates must be known roles;
  ``log_predict`` must give a finite scalar at one point, each parameter at its first grid value and every
  covariate 10, and ``log_predict_jac``, if given, agree with it there).
* A package cannot replace a built-in law, nor a law registered with :func:`register` before the entry points
  are read: such an entry point is ignored, and :func:`check_plugins` (and ``jaxscale laws``, as a warning)
  reports it. Two packages registering one name make that name raise until one is uninstalled.
* :func:`check_plugins` imports and validates every plugin law at once: the check for a plugin's own tests.
"""

from __future__ import annotations

import itertools
import sys
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
    check_fn
        Optional ``check_fn(values, logy) -> None`` for a law whose parameters
        constrain each other or the data (``m4``: ``eps_0 > eps_inf``, losses
        inside ``(eps_inf, eps_0)``): ``values`` maps some parameter names to
        natural values (those of :meth:`predict`, or a fit's fixed ones) and
        ``logy`` holds the log losses or is ``None``. It raises a jaxscale
        error; :meth:`predict` and :func:`jaxscale.fit` call it before any work.

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
    check_fn: Callable[[Mapping[str, Any], np.ndarray | None], None] | None = None

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
        if self.check_fn is not None:
            self.check_fn(params, None)
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
    if isinstance(name, str) and name not in _REGISTRY:
        _discover_plugins()
    if not isinstance(name, str) or name not in _REGISTRY:
        raise LawError(f"Unknown law {name!r}; expected one of {available()}.")
    try:
        return _REGISTRY[name](**options)
    except TypeError as e:
        raise LawError(f"Bad options for law {name!r}: {e}") from None


def unregister(name: str) -> None:
    """Remove a registered law (e.g. one registered in a notebook or a test)."""
    if name not in _REGISTRY:
        _discover_plugins()
    if name not in _REGISTRY:
        raise LawError(f"Unknown law {name!r}; expected one of {available()}.")
    del _REGISTRY[name]


def available() -> list[str]:
    """Names of all registered laws, sorted: the built-in ones, those registered with :func:`register`, and those
    installed packages register (:func:`plugins`; listing them imports nothing of theirs)."""
    _discover_plugins()
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


# Laws from installed packages ---------------------------------------------------------------------------------

#: The entry-point group through which an installed package registers laws (see the module docstring).
ENTRY_POINT_GROUP = "jaxscale.laws"


class PluginLaw(NamedTuple):
    """A law that an installed package registers in the ``jaxscale.laws`` entry-point group.

    Parameters
    ----------
    name
        The law's name: the entry point's name.
    value
        Where the law or its factory lives, ``"module:attr"``.
    package, version
        The distribution that declares the entry point (as ``pip show`` names it).
    """

    name: str
    value: str
    package: str
    version: str


#: Plugin laws read from the entry points, by name; None until first needed (a lookup of a name that is not
#: registered, or :func:`available`), so ``import jaxscale`` reads no package metadata.
_PLUGINS: dict[str, PluginLaw] | None = None
#: Entry points found but not registered (a name that is already taken), as messages for :func:`check_plugins`.
_PLUGIN_PROBLEMS: list[str] = []
#: Where a plugin law's validation evaluates ``log_predict``: each parameter at its first grid value and every
#: covariate at this value (every built-in law is finite there).
_CHECK_COVARIATE = 10.0
_KINDS = ("coefficient", "exponent")


def _where(plugin: PluginLaw) -> str:
    return (f"law {plugin.name!r} from package {plugin.package!r} (entry point '{plugin.name} = {plugin.value}' "
            f"in group {ENTRY_POINT_GROUP!r})")


def _exc(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _preview(x, n: int = 60) -> str:
    text = repr(x)
    return text if len(text) <= n else text[: n - 3] + "..."


class _PluginFactory:
    """The registry entry of a plugin law: imports its entry point on first use, then builds and validates it."""

    def __init__(self, plugin: PluginLaw, entry_point, problem: str | None = None):
        self.plugin = plugin
        self._entry_point = entry_point
        self._problem = problem
        self._object = None
        self._valid: dict[Law, None] = {}  # laws already validated (a factory builds equal laws for equal options)

    def __call__(self, **options) -> Law:
        where = _where(self.plugin)
        if self._problem:
            raise LawError(self._problem)
        if self._object is None:
            try:
                obj = self._entry_point.load()
            except Exception as e:  # a broken package fails its own law only, never the registry
                raise LawError(f"The {where} cannot be imported: {_exc(e)}.") from e
            if not (isinstance(obj, Law) or callable(obj)):
                raise LawError(f"The {where} is {_preview(obj)} ({type(obj).__name__}); expected a jaxscale.laws.Law or a factory "
                               f"f(**options) -> Law.")
            self._object = obj
        obj = self._object
        if isinstance(obj, Law):
            law = _with_options(obj, options)
        else:
            try:
                law = obj(**options)
            except LawError as e:
                raise LawError(f"The {where}: {e}") from None
            except TypeError as e:
                raise LawError(f"Bad options for the {where}: {_exc(e)}.") from e
            except Exception as e:
                raise LawError(f"The {where} failed to build with options {options}: {_exc(e)}.") from e
        try:
            if law in self._valid:
                return law
        except TypeError:  # unhashable: not a valid Law, which validation says below
            pass
        _check_law(law, self.plugin.name, f"The {where}")
        self._valid[law] = None
        return law


def _check_law(law, name: str, where: str) -> None:
    """Raise a one-line LawError starting with ``where`` unless ``law`` is a :class:`Law` jaxscale can fit.

    The checks the built-in laws pass by construction (tests/test_laws.py runs the deeper ones on them): the name,
    parameters with known transforms, kinds, finite start grids and priors, covariates that are known roles, and
    ``log_predict`` giving a finite scalar at one point (and ``log_predict_jac`` agreeing with it there).
    """
    from jaxscale import schedule

    def bad(what: str):
        raise LawError(f"{where} {what}.")

    if not isinstance(law, Law):
        bad(f"gave {_preview(law)} ({type(law).__name__}); expected a jaxscale.laws.Law (the entry point must name a Law or a "
            f"factory f(**options) -> Law)")
    if law.name != name:
        bad(f"built a Law named {law.name!r}; expected {name!r}, the entry point's name (saved fits name their law)")
    if not callable(law.log_predict):
        bad(f"has a log_predict that is not callable ({type(law.log_predict).__name__}); expected "
            f"log_predict(theta, logx) -> scalar")
    params = law.params
    if not isinstance(params, tuple) or not params or not all(isinstance(p, Param) for p in params):
        bad(f"has params {_preview(params)}; expected a non-empty tuple of jaxscale.laws.Param")
    names = [p.name for p in params]
    for p in params:
        if not isinstance(p.name, str) or not p.name or names.count(p.name) > 1:
            bad(f"has parameter names {names}; expected distinct non-empty strings")
        if p.transform not in TRANSFORMS:
            bad(f"has parameter {p.name!r} with transform {p.transform!r}; expected one of {sorted(TRANSFORMS)}")
        if p.kind not in _KINDS:
            bad(f"has parameter {p.name!r} of kind {p.kind!r}; expected one of {list(_KINDS)}")
        try:
            grid = np.asarray(p.grid, dtype=np.float64)
        except (TypeError, ValueError):
            grid = np.array([np.nan])
        if not isinstance(p.grid, tuple) or grid.ndim != 1 or grid.size == 0 or not np.all(np.isfinite(grid)):
            bad(f"has parameter {p.name!r} with grid {_preview(p.grid)}; expected a non-empty tuple of finite "
                f"numbers (fitting coordinates)")
        if p.prior is not None:
            try:
                loc, scale = (float(v) for v in p.prior)
            except (TypeError, ValueError):
                loc, scale = np.nan, np.nan
            if not (np.isfinite(loc) and np.isfinite(scale) and scale > 0):
                bad(f"has parameter {p.name!r} with prior {_preview(p.prior)}; expected None or (loc, scale) with "
                    f"scale > 0")
    known = (*COVARIATES, *schedule.KEYS)
    cov = law.covariates
    if not isinstance(cov, tuple) or not cov or len(set(cov)) < len(cov) or not all(c in known for c in cov):
        roles = [c for c in known if not c.startswith("mp_")] + ["mp_0..."]
        bad(f"has covariates {_preview(cov)}; expected a non-empty tuple of distinct roles from {roles}")
    for field in ("formula", "reference"):
        if not isinstance(getattr(law, field), str):
            bad(f"has a {field} that is a {type(getattr(law, field)).__name__}; expected a string")
    for field in ("starts_fn", "log_predict_jac", "check_fn"):
        if getattr(law, field, None) is not None and not callable(getattr(law, field)):
            bad(f"has a {field} that is not callable; expected None or a function")
    if not isinstance(law.options, tuple):
        bad(f"has options {_preview(law.options)}; expected a tuple of (name, value) pairs")
    try:
        hash(law)
    except TypeError as e:
        bad(f"cannot be hashed ({_exc(e)}); the solver keys its compiled programs by the Law, so its fields and "
            f"options must be hashable (tuples, not lists)")

    theta = jnp.asarray(np.array([p.grid[0] for p in params], dtype=np.float64))
    logx = jnp.asarray(np.full(len(cov), np.log(_CHECK_COVARIATE)))
    at = f"at theta = each parameter's first grid value, every covariate = {_CHECK_COVARIATE:g}"
    try:
        value = np.asarray(law.log_predict(theta, logx))
    except Exception as e:
        bad(f"has a log_predict that raised {_exc(e)} {at}")
    if value.shape != ():
        bad(f"has a log_predict that returned shape {value.shape} for one point {at}; expected a scalar")
    if not np.isfinite(value):
        bad(f"has a log_predict that returned {float(value)} {at}; expected a finite log prediction")
    if law.log_predict_jac is not None:
        try:
            lp, jac = law.log_predict_jac(tuple(jnp.reshape(t, (1, 1)) for t in theta),
                                          tuple(jnp.reshape(v, (1,)) for v in logx))
            lp, jac = np.asarray(lp), [np.asarray(j) for j in jac]
            grad = np.asarray(jax.grad(law.log_predict)(theta, logx))
        except Exception as e:
            bad(f"has a log_predict_jac that raised {_exc(e)} {at}; expected (lp, J) for blocks (see Law)")
        if lp.shape != (1, 1) or len(jac) != len(params) or any(j.shape != (1, 1) for j in jac):
            bad(f"has a log_predict_jac that returned lp of shape {lp.shape} and {len(jac)} partials for a (1, 1) "
                f"block; expected shape (1, 1) and {len(params)} partials of shape (1, 1)")
        if not np.allclose(lp[0, 0], value, rtol=1e-6, atol=1e-9) or not np.allclose(
                [j[0, 0] for j in jac], grad, rtol=1e-5, atol=1e-8):
            bad(f"has a log_predict_jac that disagrees with log_predict and its gradient {at}")


def _plugin_info(entry_point) -> PluginLaw:
    dist = getattr(entry_point, "dist", None)
    package = getattr(dist, "name", None) or "an unknown package"
    version = getattr(dist, "version", None) or ""
    return PluginLaw(entry_point.name, entry_point.value, package, version)


def _discover_plugins() -> None:
    """Register the laws of the installed packages' ``jaxscale.laws`` entry points (once; imports nothing)."""
    global _PLUGINS
    if _PLUGINS is not None:
        return
    _PLUGINS = {}
    from importlib.metadata import entry_points

    try:
        found = list(entry_points(group=ENTRY_POINT_GROUP))
    except Exception as e:  # unreadable package metadata must not break the registry
        _PLUGIN_PROBLEMS.append(f"The installed packages' entry points in group {ENTRY_POINT_GROUP!r} cannot be "
                                f"read: {_exc(e)}.")
        return
    by_name: dict[str, list] = {}
    for ep in found:
        by_name.setdefault(ep.name, []).append(ep)
    builtin = set(getattr(sys.modules.get("jaxscale.laws"), "BUILTIN", ()))
    for name, eps in by_name.items():
        infos = [_plugin_info(ep) for ep in eps]
        if name in _REGISTRY:
            taken = "a built-in law" if name in builtin else "a law registered with jaxscale.laws.register()"
            _PLUGIN_PROBLEMS.extend(f"The {_where(p)} is ignored: {taken} has that name and a package cannot "
                                    f"replace it; rename the entry point." for p in infos)
            continue
        problem = None
        if len(infos) > 1:
            problem = (f"Law {name!r} is registered by several packages "
                       f"({', '.join(repr(p.package) for p in infos)}, entry-point group {ENTRY_POINT_GROUP!r}); "
                       f"uninstall all but one.")
        _REGISTRY[name] = _PluginFactory(infos[0], eps[0], problem)
        _PLUGINS[name] = infos[0]


def _reset_plugins() -> None:
    """Forget the plugin laws read so far: the next lookup reads the entry points again (for tests)."""
    global _PLUGINS
    for name in [n for n, f in _REGISTRY.items() if isinstance(f, _PluginFactory)]:
        del _REGISTRY[name]
    _PLUGINS = None
    _PLUGIN_PROBLEMS.clear()


def plugins() -> dict[str, PluginLaw]:
    """The laws installed packages register (entry-point group ``jaxscale.laws``), by name.

    Reads the packages' metadata and imports none of them: a law's module is imported when :func:`get` first
    builds it. :func:`check_plugins` imports and validates them all.

    Examples
    --------
    >>> import jaxscale
    >>> set(jaxscale.laws.plugins()) <= set(jaxscale.laws.available())
    True
    """
    _discover_plugins()
    return {name: info for name, info in sorted(_PLUGINS.items()) if isinstance(_REGISTRY.get(name), _PluginFactory)}


def check_plugins(*, strict: bool = True) -> list[LawError]:
    """Import, build (with default options) and validate every law that installed packages register.

    Parameters
    ----------
    strict
        Raise the first problem (the default: a plugin author's test), or return them all (``jaxscale laws``
        prints each as a warning).

    Returns
    -------
    list of LawError
        One per problem, each naming the law, its package and its entry point: a module that cannot be imported,
        an object that is not a Law or a factory, a factory that fails with no options, a Law that fails
        validation, or a name that is already taken (a built-in law's: the entry point is ignored).

    Examples
    --------
    >>> import jaxscale
    >>> jaxscale.laws.check_plugins()  # no problems: nothing raised
    []
    """
    _discover_plugins()
    problems = [LawError(message) for message in _PLUGIN_PROBLEMS]
    for name in plugins():
        try:
            get(name)
        except LawError as e:
            problems.append(e)
    if strict and problems:
        raise problems[0]
    return problems
