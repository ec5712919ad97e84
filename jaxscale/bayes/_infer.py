"""Posterior sampling for one dataset -> ArviZ InferenceData; diagnostics, derived quantities, prediction, LOO."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import math
import sys
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from numpyro.infer import Predictive

from jaxscale.bayes._engine import NutsConfig, compile_chains, latent_sites, unconstrain, unravel_fn
from jaxscale import progress as _progress
from jaxscale import validate
from jaxscale._version import __version__
from jaxscale.bayes._model import OBS, BayesModel, build_model
from jaxscale.errors import DerivedError, FitError, LawError
from jaxscale.fit import numpy_rng
from jaxscale.laws import Law, get, log_covariates

#: Thresholds of the diagnostics verdict (Vehtari et al. 2021, arXiv:1903.08008).
RHAT_MAX = 1.01
ESS_MIN = 400


def _host_split(key, n: int) -> np.ndarray:
    """``n`` independent keys' words ``(n, 2) uint32`` from ``key``, derived on the host (NumPy's SeedSequence)."""
    words = validate.key_words(key)
    return np.random.SeedSequence(words.tolist()).generate_state(2 * n, np.uint32).reshape(n, 2)


def _import_arviz_in_background() -> None:
    """Start importing ArviZ (~1.2 s, mostly matplotlib) in a thread: it overlaps XLA's compilation.

    Only the first call in a process does anything; an import error is left
    for the main thread's own ``import arviz`` to raise.
    """
    if "arviz" in sys.modules:
        return

    def target():
        try:
            importlib.import_module("arviz")
        except BaseException:  # noqa: BLE001 -- re-raised by the main thread's import
            pass

    threading.Thread(target=target, name="jaxscale-import-arviz", daemon=True).start()


def _in_thread(fn: Callable[[], Any]) -> Callable[[], Any]:
    """Start ``fn()`` in a thread; returns ``join()``, which re-raises what ``fn`` raised."""
    box: dict[str, Any] = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 -- handed to the caller by join()
            box["error"] = e

    th = threading.Thread(target=target, name="jaxscale-compile", daemon=True)
    th.start()

    def join():
        th.join()
        if "error" in box:
            raise box["error"]
        return box.get("value")

    return join


class _Feed:
    """Chain-iterations reported by the compiled sampler (``tick``, on XLA's threads), handed to a
    ``(done, total)`` callable once it is set (``show``)."""

    def __init__(self, total: int):
        self.total, self.done, self.show = int(total), 0, None
        self._lock = threading.Lock()

    def tick(self, n) -> None:
        with self._lock:
            self.done = min(self.done + int(n), self.total)
            done, show = self.done, self.show
        if show is not None:
            show(done, self.total)

    def finish(self) -> None:
        with self._lock:
            self.done, show = self.total, self.show
        if show is not None:
            show(self.total, self.total)


def _prior_median(d, key) -> np.ndarray:
    return np.median(np.asarray(d.sample(key, (201,))), axis=0)


def init_values(m: BayesModel, init, key, fit_starts=None) -> dict[str, Any]:
    """Constrained start values for every latent site of ``m``, from the point fit (or priors).

    ``init`` is ``"fit"``, ``"prior"`` or a dict of natural values; ``key`` a typed key (prior medians, random
    fit starts); ``fit_starts`` the point fit's ``starts`` (``None``: its default grid).

    ``sigma`` starts at 0.05 (inside the default prior's bulk) whatever the
    fit: the damped Newton to the posterior mode that follows moves it to the
    data's residual scale (the same mode from 0.005 or 0.1 on Epoch's data),
    and this way no prediction needs compiling here.
    """
    law = m.law
    free = [p.name for p in law.params if p.name not in m.fixed]
    keys = (jax.random.fold_in(key, i) for i in range(1, 1_000))
    if isinstance(init, Mapping):
        unknown = set(init) - set(free)
        if unknown:
            raise LawError(f"init names {sorted(unknown)}; the free parameters are {free}.")
        point = {k: float(v) for k, v in init.items()}
        point.update({k: float(_prior_median(m.priors[k], next(keys))) for k in free if k not in point})
    elif init == "fit":
        from jaxscale.fit import fit

        try:
            with warnings.catch_warnings():  # the fit only seeds the chains: that it interpolates (n == p) is fine
                warnings.filterwarnings("ignore", message=r".* the fit interpolates", category=RuntimeWarning)
                if fit_starts is None:
                    res = fit(law, m.data, fixed=m.fixed or None)
                else:
                    res = fit(law, m.data, fixed=m.fixed or None, starts=fit_starts, key=key)
            point = {k: float(res.params[k]) for k in free}
        except FitError as e:
            warnings.warn(f"The point fit failed ({e}); chains start at the prior medians instead.", RuntimeWarning,
                          stacklevel=3)
            point = {k: float(_prior_median(m.priors[k], next(keys))) for k in free}
    elif init == "prior":
        point = {k: float(_prior_median(m.priors[k], next(keys))) for k in free}
    else:
        raise LawError(f"init must be 'fit', 'prior' or a dict of natural values; got {init!r}.")
    values = {}
    G = m.n_groups
    for name in free:
        mode = (m.pooling or {}).get(name, "shared")
        if mode == "shared":
            values[name] = point[name]
        elif mode == "separate":
            values[name] = np.full(G, point[name])
        else:
            values[f"{name}_pop"] = point[name]
            values[f"{name}_tau"] = 0.1
            values[f"{name}_z"] = np.zeros(G)
    if m.run_effect:  # no offsets to start with: the Newton search for the mode moves them
        sd_prior = m.priors["run_sd"]
        values["run_sd"] = 0.02 if bool(sd_prior.support(0.02)) else float(_prior_median(sd_prior, next(keys)))
        values["run_offset"] = np.zeros(m.n_runs)
    sigma_prior = m.priors["sigma"]
    values["sigma"] = 0.05 if bool(sigma_prior.support(0.05)) else float(_prior_median(sigma_prior, next(keys)))
    if m.likelihood == "student_t" and m.df is None:
        values["df"] = 5.0 if bool(m.priors["df"].support(5.0)) else float(_prior_median(m.priors["df"], next(keys)))
    return values


class Diagnostics(NamedTuple):
    """The convergence verdict: per-variable R-hat and ESS, divergences, and what to do.

    ``ok`` is True when every R-hat <= 1.01, every bulk and tail ESS >= 400
    and no transition diverged (Vehtari et al. 2021).
    """

    table: pd.DataFrame
    n_divergent: int
    n_draws: int
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        head = (f"diagnostics: max R-hat {self.table['r_hat'].max():.4f}, min bulk ESS {self.table['ess_bulk'].min():.0f}, "
                f"min tail ESS {self.table['ess_tail'].min():.0f}, divergences {self.n_divergent} of {self.n_draws}")
        if self.ok:
            return head + " -- OK"
        return head + "\n" + "\n".join(f"  WARNING: {p}" for p in self.problems)


def _main_vars(idata) -> list[str]:
    return [v for v in idata.posterior.data_vars if not v.endswith("_z") and v != "run_offset"]


def diagnose(idata, var_names=None, rhat_max: float = RHAT_MAX, ess_min: float = ESS_MIN) -> Diagnostics:
    """R-hat, bulk and tail ESS (ArviZ, rank-normalised) and divergences, with advice.

    Examples
    --------
    >>> import jaxscale
    >>> from jaxscale import bayes
    >>> idata = bayes.sample("chinchilla", jaxscale.demo_data(), key=0, num_warmup=300, num_samples=300, warn=False)
    >>> d = bayes.diagnose(idata)
    >>> sorted(d.table.columns)
    ['ess_bulk', 'ess_tail', 'r_hat']
    """
    import arviz as az

    var_names = list(var_names) if var_names is not None else _main_vars(idata)
    post = idata.posterior[var_names]
    rows = {}
    with np.errstate(invalid="ignore", divide="ignore"):  # a stuck chain gives NaN: flagged below
        r, eb, et = az.rhat(post), az.ess(post, method="bulk"), az.ess(post, method="tail")
    for v in var_names:
        vals = np.atleast_1d(r[v].values), np.atleast_1d(eb[v].values), np.atleast_1d(et[v].values)
        for i in range(vals[0].size):
            label = v if vals[0].size == 1 else f"{v}[{i}]"
            rows[label] = (float(vals[0].ravel()[i]), float(vals[1].ravel()[i]), float(vals[2].ravel()[i]))
    table = pd.DataFrame.from_dict(rows, orient="index", columns=["r_hat", "ess_bulk", "ess_tail"])
    div = int(np.asarray(idata.sample_stats["diverging"]).sum()) if "sample_stats" in idata.groups() else 0
    n_draws = int(post.sizes["chain"] * post.sizes["draw"])
    problems = []
    bad = table.index[~(table["r_hat"] <= rhat_max)].tolist()
    if bad:
        problems.append(f"R-hat > {rhat_max} for {bad}: the chains disagree. Run longer (num_warmup/num_samples), "
                        "check the point fit, or tighten the priors of weakly identified parameters.")
    for col, what in (("ess_bulk", "bulk"), ("ess_tail", "tail")):
        bad = table.index[~(table[col] >= ess_min)].tolist()
        if bad:
            problems.append(f"{what} ESS < {ess_min:.0f} for {bad}: too few effective draws for stable "
                            f"{'means' if what == 'bulk' else 'interval ends'}. Draw more samples or chains.")
    if div:
        problems.append(f"{div} divergent transitions after warmup: the posterior has regions NUTS cannot follow, so it "
                        "may be biased. Raise target_accept_prob (e.g. 0.95-0.99), use the student_t likelihood, or "
                        "tighten the priors (or fix a parameter).")
    return Diagnostics(table, div, n_draws, tuple(problems))


def sample(
    law: str | Law | BayesModel,
    data=None,
    key=validate.DEFAULT_KEY,
    *,
    num_chains: int = 4,
    num_warmup: int = 1000,
    num_samples: int = 1000,
    thinning: int = 1,
    priors: Any = None,
    likelihood: str = "student_t",
    df: float | None = None,
    fixed: Mapping[str, float] | None = None,
    pooling=None,
    run_effect: bool | str = "auto",
    init: Any = "fit",
    fit_starts: Any = 64,
    target_accept_prob: float = 0.95,
    max_tree_depth: int = 10,
    dense_mass: bool = False,
    whiten: bool = True,
    chain_method: str = "auto",
    prior_draws: int = 0,
    predictive: bool = True,
    devices=None,
    warn: bool = True,
    progress=False,
    **columns,
):
    """Sample the posterior of a law with NUTS; returns ArviZ ``InferenceData``.

    All chains run as one compiled computation (one after another or
    vmapped, see ``chain_method``; split across ``devices`` when several are
    given). Chains start from the point fit
    (:func:`jaxscale.fit`, Huber on log-loss): a damped-Newton step from there
    finds the posterior mode, whose Laplace approximation whitens the
    coordinates NUTS works in (the scales and correlations, e.g. log A
    against alpha, are taken out before warmup), and each chain starts at a
    draw of that approximation. A diagonal mass matrix is then adapted.

    Parameters
    ----------
    law, data
        A law name (or Law) and data (:class:`ScalingData`, DataFrame or CSV
        path with ``**columns``), or a :class:`BayesModel` from :func:`model`.
    key
        An int seed in ``[0, 2**64)``, a ``jax.random.key`` or raw ``uint32`` key data
        (:func:`jaxscale.validate.key`); ``None`` or the default is
        :data:`jaxscale.validate.DEFAULT_KEY` (0). Same key, same draws.
    num_chains, num_warmup, num_samples, thinning
        Chains, warmup iterations, kept draws per chain, and thinning.
    priors, likelihood, df, fixed, pooling, run_effect
        As in :func:`model`. ``run_effect`` (``"auto"``: on when the data's
        ``run`` column repeats a label) gives the rows of one training run a
        shared offset on the log scale.
    init
        ``"fit"`` (the point fit), ``"prior"`` (prior medians) or a dict of
        natural values.
    fit_starts
        Starts of that point fit: 64 random starts over the law's grid box
        (drawn from ``key``) by default (on Epoch's data ~40% of them reach
        the best fit), ``"grid"`` for the full grid (4,500 for Chinchilla;
        slower), or an array (see :func:`jaxscale.fit`). The fit only seeds
        the Newton search for the posterior mode.
    target_accept_prob, max_tree_depth, dense_mass
        NUTS settings. 0.95 (smaller steps than NumPyro's 0.8) for the curved
        ridge of E against the B term: on Epoch's 240 points, seeds 0-6 at 0.9
        gave 1-38 divergent transitions in 4 of 7 runs (one chain stuck, R-hat
        1.04), at 0.95 none in 7, for about the same time per run.
    whiten
        Run NUTS in Laplace-whitened coordinates (default) or in NumPyro's
        unconstrained coordinates.
    chain_method
        ``"sequential"`` (chains one after another in one compiled loop),
        ``"vectorized"`` (vmapped, in lockstep) or ``"auto"``: sequential on
        a CPU, where it compiles ~30% faster and no chain waits for another's
        deeper trees; vectorized on accelerators.
    prior_draws
        Draws for the ``prior`` and ``prior_predictive`` groups (0, the
        default: none; Student-t draws need a Gamma sampler that takes ~2 s
        to compile on a CPU). :func:`prior_predictive` gives them alone.
    predictive
        Add the ``posterior_predictive`` and ``log_likelihood`` groups.
    devices
        Devices to split the chains across (e.g. ``jax.devices()``).
    warn
        Warn (with advice) when the diagnostics fail.
    progress
        ``True``: a progress bar of the chains' iterations (tqdm, as
        :func:`jaxscale.bootstrap` draws it), or a callable
        ``(done, total)``; ``False`` (default) or ``None``: none. Off by
        default because the bar is fed from inside the compiled sampler (host
        callbacks, ~100 per chain), and JAX's persistent compilation cache
        does not keep programs with host callbacks: with a bar, every run
        compiles NUTS afresh (~5 s on a CPU) instead of loading it.

    Returns
    -------
    arviz.InferenceData
        Groups ``posterior`` (the law's parameters under their natural names,
        ``sigma``, ``df``; per-family ones with a ``family`` dimension; with a
        run effect ``run_sd`` and ``run_offset`` with a ``run`` dimension),
        ``posterior_predictive`` and ``observed_data`` (``y`` = log target),
        ``log_likelihood``, ``sample_stats``, ``prior``, ``prior_predictive``
        and ``constant_data``. ``attrs`` record the law and the settings
        (``run_effect``: 0 or 1, ``runs``: the run labels as JSON).

    Examples
    --------
    >>> import jaxscale
    >>> from jaxscale import bayes
    >>> idata = bayes.sample("chinchilla", jaxscale.demo_data(), key=0, num_warmup=300, num_samples=300, warn=False)
    >>> idata.posterior["alpha"].shape
    (4, 300)
    """
    t0 = time.perf_counter()
    _import_arviz_in_background()
    if isinstance(law, BayesModel):
        if (data is not None or priors is not None or fixed is not None or pooling is not None or columns
                or not (isinstance(run_effect, str) and run_effect == "auto")):
            raise LawError("Pass either a BayesModel, or a law with data and model options, not both.")
        m = law
    else:
        if data is None:
            raise LawError("sample needs data (ScalingData, a DataFrame or a CSV path).")
        m = build_model(law, data, priors=priors, likelihood=likelihood, df=df, fixed=fixed, pooling=pooling,
                        run_effect=run_effect, stacklevel=3, **columns)
    validate.key_words(key)  # checked now, used on the host below: no JAX seeding kernel to compile
    num_chains = validate.integer(num_chains, "num_chains")
    num_warmup = validate.integer(num_warmup, "num_warmup")
    num_samples = validate.integer(num_samples, "num_samples")
    thinning = validate.integer(thinning, "thinning")
    target_accept_prob = validate.number(target_accept_prob, "target_accept_prob", minimum=0, maximum=1,
                                         open_min=True, open_max=True)
    max_tree_depth = validate.integer(max_tree_depth, "max_tree_depth")
    prior_draws = validate.integer(prior_draws, "prior_draws", minimum=0)
    chain_method = validate.choice(chain_method, "chain_method", ("auto", "sequential", "vectorized"))
    if chain_method == "auto":
        platform = (devices[0] if devices else jax.devices()[0]).platform
        chain_method = "sequential" if platform == "cpu" else "vectorized"
    cfg = NutsConfig(num_warmup, num_samples, thinning, float(target_accept_prob), int(max_tree_depth),
                     bool(dense_mass), bool(whiten), chain_method=chain_method)
    args = tuple(np.asarray(a) for a in m.args)
    sites = latent_sites(m, args)
    progress = _progress.check(progress)
    n_iterations = num_chains * (num_warmup + num_samples * thinning)
    feed = _Feed(n_iterations) if progress else None
    chains = compile_chains(m, unravel_fn(sites), cfg, devices, mean_fn=_mean_fn(m) if predictive else None,
                            tick=None if feed is None else feed.tick)
    # host-side key derivation: NumPy draws (fit starts, predictive noise) need no JAX kernels compiled
    words = _host_split(key, 3 + num_chains)
    k_init, k_ppc, k_prior = words[0], words[1], words[2]
    batch = lambda a: np.broadcast_to(a, (num_chains,) + np.shape(a))  # noqa: E731
    keys, bargs = jax.random.wrap_key_data(words[3:]), tuple(batch(a) for a in args)
    n_latent = sum(int(np.prod(shape, dtype=int)) for shape, _ in sites.values())
    # Trace here, compile NUTS in a thread while the point fit runs: XLA's compiler releases the GIL, and the
    # two compilations overlap on a 2-core CPU (4.6 s for both instead of 5.4-7.2 s one after the other).
    join = _in_thread(chains.lower(keys, batch(np.zeros(n_latent)), bargs))
    try:
        values = init_values(m, init, k_init, fit_starts=fit_starts)
    finally:
        join()
    u0, _ = unconstrain(sites, values)
    with contextlib.ExitStack() as stack:
        if feed is not None:
            feed.show = stack.enter_context(_progress.reporting(progress, f"NUTS ({num_chains} chains)",
                                                                n_iterations, unit="it"))
        out = chains(keys, batch(u0), bargs)
        prior = None
        if prior_draws:
            logx, _, *rest = args
            draw = jax.jit(lambda k: Predictive(m, num_samples=int(prior_draws))(k, logx, None, *rest))
            prior = {k: np.asarray(v) for k, v in draw(jax.random.wrap_key_data(k_prior)).items()}
        out = jax.device_get(out)
        if feed is not None:
            feed.finish()
    idata = _to_inference_data(m, out, args, cfg, k_ppc, prior, predictive)
    idata.posterior.attrs["sampling_seconds"] = round(time.perf_counter() - t0, 3)
    if not bool(np.all(out.laplace_ok)):
        warnings.warn("The Laplace approximation at the mode was not positive definite for some chains; they ran "
                      "unwhitened (slower mixing). Check the point fit or the priors.", RuntimeWarning, stacklevel=2)
    if warn:
        d = diagnose(idata)
        for p in d.problems:
            warnings.warn(p, RuntimeWarning, stacklevel=2)
    return idata


def _law_attrs(m: BayesModel, cfg: NutsConfig | None = None) -> dict[str, Any]:
    attrs = {
        "jaxscale_version": __version__,
        "law": m.law.name,
        "law_options": json.dumps(dict(m.law.options)),
        "law_params": json.dumps(list(m.law.param_names)),
        "likelihood": m.likelihood,
        "df_fixed": -1.0 if m.df is None else float(m.df),
        "fixed": json.dumps(m.fixed),
        "pooling": json.dumps(m.pooling),
        "groups": json.dumps(list(m.groups) if m.groups else None),
        "run_effect": int(m.run_effect),
        "runs": json.dumps(list(m.runs) if m.runs else None),
        "target": m.data.target_name,
        "data_fingerprint": m.data.fingerprint(),
        "inference_library": "numpyro",
    }
    if cfg is not None:
        attrs.update(num_warmup=cfg.num_warmup, num_samples=cfg.num_samples, thinning=cfg.thinning,
                     target_accept_prob=cfg.target_accept_prob, whiten=int(cfg.whiten), chain_method=cfg.chain_method)
    return attrs


def _dims(m: BayesModel, names) -> dict[str, list[str]]:
    dims = {OBS: ["obs"]}
    for n in names:
        if m.run_effect and n == "run_offset":
            dims[n] = ["run"]
        elif m.pooling and (n.endswith("_z") or m.pooling.get(n) in ("separate", "partial")):
            dims[n] = ["family"]
    return dims


def _coords(m: BayesModel, logy) -> dict[str, Any]:
    coords = {"obs": np.arange(np.asarray(logy).shape[0])}
    if m.groups is not None:
        coords["family"] = list(m.groups)
    if m.run_effect:
        coords["run"] = list(m.runs)
    return coords


def _mean_fn(m: BayesModel):
    """``(draw, args) -> log-prediction per row`` for one draw of the model's sites (fixed values filled in).

    With a run effect it includes each row's run offset (``args[4]`` indexes
    the runs): the mean of the row's observation, as the likelihood sees it.
    """

    def mean(draw, args):
        vals = {p: draw[p] if p in draw else jnp.asarray(m.fixed[p]) for p in m.law.param_names}
        mu = m.log_mean(vals, args[0], args[2])
        if m.run_effect:
            mu = mu + draw["run_offset"][args[4]]
        return mu

    return mean


def _lgamma(x) -> np.ndarray:
    return np.vectorize(math.lgamma, otypes=[np.float64])(x)


def _pointwise_log_likelihood(m: BayesModel, flat, mu, logy, mask) -> np.ndarray:
    """The observation site's log density per draw and row (0 on masked rows), as NumPyro computes it."""
    sigma = np.asarray(flat["sigma"], np.float64)[:, None]
    z = (np.asarray(logy)[None, :] - mu) / sigma
    if m.likelihood == "student_t":
        nu = (np.asarray(flat["df"], np.float64) if m.df is None else np.full(sigma.shape[0], m.df))[:, None]
        ll = (_lgamma(0.5 * (nu + 1.0)) - _lgamma(0.5 * nu) - 0.5 * np.log(np.pi * nu) - np.log(sigma)
              - 0.5 * (nu + 1.0) * np.log1p(z * z / nu))
    else:
        ll = -0.5 * np.log(2.0 * np.pi) - np.log(sigma) - 0.5 * z * z
    return np.where(np.asarray(mask, bool)[None, :], ll, 0.0)


def _posterior_predictive(m: BayesModel, flat, mu, key) -> np.ndarray:
    """Replicated log-targets: the law's mean per draw plus the likelihood's noise.

    The noise is drawn with NumPy (seeded from ``key``): JAX's Student-t
    sampler needs a Gamma sampler whose compilation alone takes longer than
    drawing 4,000 x 240 variates.
    """
    rng = numpy_rng(key)
    sigma = np.asarray(flat["sigma"])[:, None]
    if m.likelihood == "student_t":
        dfv = np.asarray(flat["df"])[:, None] if m.df is None else m.df
        noise = rng.standard_t(np.broadcast_to(dfv, mu.shape))
    else:
        noise = rng.standard_normal(mu.shape)
    return mu + sigma * noise


def _to_inference_data(m: BayesModel, out, args, cfg, k_ppc, prior, predictive):
    import arviz as az

    samples = {k: np.asarray(v) for k, v in out.samples.items()}
    C, S = next(iter(samples.values())).shape[:2]
    flat = {k: v.reshape((C * S,) + v.shape[2:]) for k, v in samples.items()}
    logx, logy, group, mask = args[:4]
    groups = {}
    if predictive:
        mu = np.asarray(out.mean, np.float64).reshape(C * S, -1)
        pp = _posterior_predictive(m, flat, mu, k_ppc)
        ll = _pointwise_log_likelihood(m, flat, mu, logy, mask)
        groups["posterior_predictive"] = {OBS: pp.reshape(C, S, -1)}
        groups["log_likelihood"] = {OBS: np.asarray(ll).reshape(C, S, -1)}
    if prior is not None:
        groups["prior"] = {k: v[None] for k, v in prior.items() if k != OBS}
        groups["prior_predictive"] = {OBS: prior[OBS][None]}
    stats = {
        "diverging": np.asarray(out.diverging),
        "n_steps": np.asarray(out.num_steps),
        "tree_depth": np.floor(np.log2(np.maximum(np.asarray(out.num_steps), 1))).astype(int) + 1,
        "acceptance_rate": np.asarray(out.accept_prob),
        "energy": np.asarray(out.energy),
        "lp": -np.asarray(out.potential_energy),
        "step_size": np.asarray(out.step_size),
    }
    const = {f"log_{c}": np.asarray(logx)[:, i] for i, c in enumerate(m.law.covariates)}
    if m.groups is not None:
        const["family_index"] = np.asarray(group)
    if m.run_effect:
        const["run_index"] = np.asarray(args[4])
    coords = _coords(m, logy)
    dims = _dims(m, samples)
    for k in const:
        dims[k] = ["obs"]
    idata = az.from_dict(
        posterior=samples,
        sample_stats=stats,
        observed_data={OBS: np.asarray(logy)},
        constant_data=const,
        coords=coords,
        dims=dims,
        attrs=_law_attrs(m, cfg),
        **groups,
    )
    idata.posterior.attrs.update(_law_attrs(m, cfg))
    return idata


def prior_predictive(law, data=None, key=validate.DEFAULT_KEY, num_samples: int = 500, **model_kwargs):
    """Prior and prior-predictive draws on the data's design (ArviZ ``InferenceData``).

    ``prior_predictive.y`` holds simulated log-targets; compare them with
    ``observed_data.y`` (e.g. ``az.plot_ppc(idata, group="prior")``) to see
    what the priors claim before any data.

    Examples
    --------
    >>> import jaxscale, numpy as np
    >>> from jaxscale import bayes
    >>> pp = bayes.prior_predictive("chinchilla", jaxscale.demo_data(), key=0, num_samples=200)
    >>> pp.prior_predictive["y"].shape
    (1, 200, 96)
    """
    import arviz as az

    m = law if isinstance(law, BayesModel) else build_model(law, data, stacklevel=3, **model_kwargs)
    key = validate.key(key)
    num_samples = validate.integer(num_samples, "num_samples")
    logx, logy, *rest = (jnp.asarray(a) for a in m.args)
    pr = Predictive(m, num_samples=num_samples)(key, logx, None, *rest)
    prior = {k: np.asarray(v)[None] for k, v in pr.items() if k != OBS}
    coords = _coords(m, logy)
    return az.from_dict(prior=prior, prior_predictive={OBS: np.asarray(pr[OBS])[None]},
                        observed_data={OBS: np.asarray(logy)}, coords=coords, dims=_dims(m, prior),
                        attrs=_law_attrs(m))


def law_of(idata, law: Law | None = None) -> Law:
    """The law an InferenceData was sampled with (from its ``attrs``), or ``law`` if given."""
    if law is not None:
        return get(law)
    try:
        attrs = idata.posterior.attrs
        name = attrs["law"]
    except (AttributeError, KeyError):
        raise LawError("This InferenceData has no jaxscale law in its attrs; pass law=.") from None
    raw = attrs.get("law_options", "{}")
    try:
        options = json.loads(raw or "{}")
    except (TypeError, ValueError):
        options = None
    if not isinstance(options, dict):
        raise LawError(f"The posterior's law_options attribute must be a JSON object; got {raw!r}.")
    return get(name, **options)


def param_draws(idata, law: Law) -> pd.DataFrame:
    """The posterior draws of ``law``'s parameters, one column each (chain-major), fixed ones filled in.

    A parameter that varies by family is a :class:`~jaxscale.errors.DerivedError` (select a family first); one
    the posterior lacks (and that was not fixed) too.
    """
    post = idata.posterior
    raw = post.attrs.get("fixed", "{}")
    try:
        fixed = json.loads(raw or "{}")
    except (TypeError, ValueError):
        fixed = None
    if not isinstance(fixed, dict):
        raise DerivedError(f"The posterior's 'fixed' attribute must be a JSON object; got {raw!r}.")
    cols = {}
    n = post.sizes["chain"] * post.sizes["draw"]
    for p in law.params:
        if p.name in post:
            v = np.asarray(post[p.name])
            if v.ndim > 2:
                raise DerivedError(f"{p.name!r} varies by family; select one with "
                                   f"idata.posterior.sel(family=...) before deriving quantities.")
            cols[p.name] = v.reshape(-1)
        elif p.name in fixed:
            cols[p.name] = np.full(n, fixed[p.name])
        else:
            raise DerivedError(f"The posterior has no draws of {p.name!r}.")
    return pd.DataFrame(cols)


def derive(idata, fn: Callable, name: str | None = None, law: Law | None = None):
    """A derived quantity over the posterior draws, with credible intervals.

    The same functions as :meth:`BootstrapResult.derive` (see
    :mod:`jaxscale.derived`): ``fn(params) -> array``, vmapped over draws.
    Returns a :class:`jaxscale.Derived` whose ``estimate`` is the posterior
    median, ``se()`` the posterior SD and ``ci(level)`` the equal-tailed
    credible interval.

    Examples
    --------
    >>> import jaxscale, jaxscale.derived as dv
    >>> from jaxscale import bayes
    >>> idata = bayes.sample("chinchilla", jaxscale.demo_data(), key=0, num_warmup=300, num_samples=300, warn=False)
    >>> tpp = bayes.derive(idata, dv.tokens_per_param(5.88e23))
    >>> tpp.draws.shape
    (1200,)
    """
    from jaxscale.uncertainty import derive_draws

    law = law_of(idata, law)
    draws = param_draws(idata, law)
    name = name or getattr(fn, "__name__", "derived")

    def no_bca():
        raise DerivedError("BCa intervals are for the bootstrap; posterior draws give equal-tailed credible "
                           "intervals (method='percentile').")

    d = derive_draws(fn, name, draws.median().to_dict(), draws, no_bca)
    finite = d.draws[np.all(np.isfinite(d.draws.reshape(d.draws.shape[0], -1)), 1)]
    return dataclasses.replace(d, estimate=np.median(finite, axis=0))


def predict(idata, level: float = 0.95, key=0, law: Law | None = None, **covariates) -> pd.DataFrame:
    """Posterior prediction at new covariates: median, credible and predictive intervals (natural scale).

    ``lo``/``hi``: the credible interval of the law's value (uncertainty of
    the parameters); ``pred_lo``/``pred_hi``: the posterior predictive
    interval of a new run's target (adds the fitted noise, Student-t or
    Normal on the log scale, and, when the posterior has a run effect, a
    new run's offset ``u_new ~ Normal(0, run_sd)`` per draw: see
    :func:`new_run_offsets`; the points are then the checkpoints of one new
    run, sharing that draw's offset).

    Examples
    --------
    >>> import jaxscale
    >>> from jaxscale import bayes
    >>> idata = bayes.sample("chinchilla", jaxscale.demo_data(), key=0, num_warmup=300, num_samples=300, warn=False)
    >>> df = bayes.predict(idata, N=[1e9, 7e10], D=[2e10, 1.4e12])
    >>> list(df.columns)
    ['N', 'D', 'median', 'lo', 'hi', 'pred_lo', 'pred_hi']
    """
    level = validate.level(level)
    k = validate.key(key)
    law = law_of(idata, law)
    logx = jnp.asarray(log_covariates(law, covariates))
    draws = param_draws(idata, law)
    theta = jnp.asarray(law.from_natural({k: draws[k].to_numpy() for k in law.param_names}))
    mu = np.asarray(jax.vmap(lambda t: jax.vmap(law.log_predict, in_axes=(None, 0))(t, logx))(theta))
    post = idata.posterior
    sigma = np.asarray(post["sigma"]).reshape(-1)
    lik = post.attrs.get("likelihood", "student_t")
    if lik == "student_t":
        dfv = np.asarray(post["df"]).reshape(-1) if "df" in post else np.full(sigma.shape, post.attrs["df_fixed"])
        noise = np.asarray(jax.random.t(k, jnp.asarray(dfv)[:, None], mu.shape))
    else:
        noise = np.asarray(jax.random.normal(k, mu.shape))
    ynew = mu + sigma[:, None] * noise
    if "run_sd" in post:  # its own stream: without a run effect the draws are what they always were
        ynew = ynew + new_run_offsets(idata, np.random.default_rng([*validate.key_words(k).tolist(), 1]))[:, None]
    a = (1.0 - level) / 2.0
    shape = np.broadcast_shapes(*(np.shape(covariates[c]) for c in law.covariates))
    cols = {c: np.broadcast_to(np.asarray(covariates[c], float), shape).ravel() for c in law.covariates}
    cols.update(
        median=np.exp(np.median(mu, 0)),
        lo=np.exp(np.quantile(mu, a, 0)),
        hi=np.exp(np.quantile(mu, 1 - a, 0)),
        pred_lo=np.exp(np.quantile(ynew, a, 0)),
        pred_hi=np.exp(np.quantile(ynew, 1 - a, 0)),
    )
    return pd.DataFrame(cols)


def new_run_offsets(idata, rng) -> np.ndarray:
    """One offset of a new training run per posterior draw, ``u_new ~ Normal(0, run_sd)`` (log scale).

    With a run effect (:func:`model`'s ``run_effect``) the rows of one run
    share an offset ``u_run``; a run the model has not seen gets a fresh one.
    A forecast for a new run adds ``u_new[d]`` to draw ``d``'s
    log-prediction at every point of that run, on top of the likelihood's
    noise, as :func:`predict`'s ``pred_lo`` / ``pred_hi`` do.

    Parameters
    ----------
    idata
        ArviZ ``InferenceData`` from :func:`sample` (its ``posterior`` group is read).
    rng
        A ``numpy.random.Generator`` (used as given), an int seed or a JAX key
        (through :func:`jaxscale.fit.numpy_rng`).

    Returns
    -------
    numpy.ndarray
        Shape ``(chains * draws,)``, in the order of
        ``idata.posterior[name].values.reshape(-1)`` (chain-major, like
        :func:`derive`'s draws). Zeros when the posterior has no ``run_sd``;
        then nothing is drawn from ``rng``, so its stream is left as it was.

    Examples
    --------
    >>> import arviz as az, numpy as np
    >>> from jaxscale import bayes
    >>> post = az.from_dict(posterior={"sigma": np.full((2, 500), 0.01), "run_sd": np.full((2, 500), 0.02)})
    >>> u = bayes.new_run_offsets(post, np.random.default_rng(0))
    >>> u.shape, bool(0.015 < u.std() < 0.025)
    ((1000,), True)
    >>> bayes.new_run_offsets(az.from_dict(posterior={"sigma": np.full((1, 3), 0.01)}), 0)
    array([0., 0., 0.])
    """
    post = idata.posterior
    if "run_sd" not in post:
        return np.zeros(int(post.sizes["chain"] * post.sizes["draw"]))
    sd = np.asarray(post["run_sd"], np.float64).reshape(-1)
    rng = rng if isinstance(rng, np.random.Generator) else numpy_rng(rng)
    return sd * rng.standard_normal(sd.shape)


def compare(idatas: Mapping[str, Any], ic: str = "loo", **kwargs) -> pd.DataFrame:
    """Rank models by expected log predictive density (PSIS-LOO through ArviZ).

    ``idatas`` maps a label to an InferenceData from :func:`sample` (each
    needs its ``log_likelihood`` group, i.e. ``predictive=True``) fitted to the
    same data. Returns ArviZ's comparison table (``elpd_loo``, ``p_loo``,
    ``elpd_diff``, ``weight``, ``se``, ``dse``, ``warning`` ...), best first.

    Examples
    --------
    >>> import jaxscale
    >>> from jaxscale import bayes
    >>> d = jaxscale.demo_data()
    >>> kw = dict(key=0, num_warmup=300, num_samples=300, warn=False)
    >>> table = bayes.compare({"student_t": bayes.sample("chinchilla", d, **kw),
    ...                        "normal": bayes.sample("chinchilla", d, likelihood="normal", **kw)})
    >>> sorted(table.index)
    ['normal', 'student_t']
    """
    import arviz as az

    if not isinstance(idatas, Mapping) or len(idatas) < 2:
        raise LawError("compare needs a dict of at least two labelled InferenceData objects.")
    fps = {}
    for label, idata in idatas.items():
        if "log_likelihood" not in idata.groups():
            raise LawError(f"{label!r} has no log_likelihood group; sample it with predictive=True.")
        fps[label] = idata.posterior.attrs.get("data_fingerprint")
    if len({v for v in fps.values() if v is not None}) > 1:
        raise LawError(f"compare needs models fitted to the same data; the data fingerprints differ: {fps}.")
    with warnings.catch_warnings():
        # ArviZ warns when Pareto k is high; that verdict is in the table's "warning" column.
        warnings.simplefilter("ignore", UserWarning)
        return az.compare(dict(idatas), ic=ic, **kwargs)
