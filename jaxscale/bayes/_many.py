"""Many posteriors in one call (K datasets x chains, vmapped and sharded), and simulation-based calibration."""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from numpyro.diagnostics import effective_sample_size, split_gelman_rubin
from numpyro.infer import Predictive

from jaxscale import validate
from jaxscale.bayes._engine import NutsConfig, compile_chains, latent_sites, unconstrain
from jaxscale.bayes._infer import init_values
from jaxscale.bayes._model import OBS, BayesModel, model
from jaxscale.data import ScalingData
from jaxscale.errors import DataError
from jaxscale.laws import Law, get


@dataclass(frozen=True, eq=False)
class ManyPosteriors:
    """Posteriors of K datasets: ``samples[name]`` has shape ``(K, chains, draws, ...)``.

    ``status`` per dataset: ``ok``; ``divergent`` (kept, but some transitions
    diverged: look before trusting it); ``failed`` (non-finite draws:
    excluded from summaries, as :attr:`failed` lists).
    """

    law: Law
    samples: dict[str, np.ndarray]
    n_divergent: np.ndarray
    ess_bulk: pd.DataFrame
    r_hat: pd.DataFrame | None
    status: np.ndarray
    seconds: float
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def n_datasets(self) -> int:
        return len(self.status)

    @property
    def failed(self) -> np.ndarray:
        """Indices of failed datasets."""
        return np.flatnonzero(self.status == "failed")

    def summary(self, level: float = 0.9) -> pd.DataFrame:
        """Per dataset: ``<param>_median``, ``<param>_lo``, ``<param>_hi`` (equal-tailed ``level``), status."""
        a = (1 - validate.level(level)) / 2
        rows = {}
        for p in self.law.param_names:
            if p not in self.samples:
                continue
            d = self.samples[p].reshape(self.n_datasets, -1)
            rows[f"{p}_median"] = np.median(d, 1)
            rows[f"{p}_lo"] = np.quantile(d, a, 1)
            rows[f"{p}_hi"] = np.quantile(d, 1 - a, 1)
        df = pd.DataFrame(rows)
        df["status"] = self.status
        df["n_divergent"] = self.n_divergent
        return df

    def to_inference_data(self, k: int):
        """Dataset ``k``'s posterior as ArviZ InferenceData (posterior group only)."""
        import arviz as az

        return az.from_dict(posterior={n: v[k] for n, v in self.samples.items()},
                            attrs={"law": self.law.name, "status": str(self.status[k])})


def _pad(datasets: Sequence[ScalingData], law: Law):
    designs = [d.design(law.covariates, law.name) for d in datasets]
    n_max = max(len(y) for _, y in designs)
    K, P = len(designs), len(law.covariates)
    logx = np.ones((K, n_max, P))
    logy = np.zeros((K, n_max))
    mask = np.zeros((K, n_max), bool)
    for k, (lx, ly) in enumerate(designs):
        n = len(ly)
        logx[k, :n], logy[k, :n], mask[k, :n] = lx, ly, True
        logx[k, n:], logy[k, n:] = lx[0], ly[0]  # padding: a real row, masked out of the likelihood
    return logx, logy, mask


def _run_many(m: BayesModel, logx, logy, mask, u0, key, cfg: NutsConfig, num_chains: int, chunk: int, devices,
              unravel):
    """NUTS for K datasets x chains in chunks of ``chunk`` datasets; one compilation for all chunks."""
    K = logx.shape[0]
    run = compile_chains(m, unravel, cfg, devices)
    group = np.zeros(logy.shape, np.int32)
    outs = []
    keys = jax.random.split(key, K * num_chains).reshape(K, num_chains)
    for lo in range(0, K, chunk):
        idx = np.arange(lo, lo + chunk)
        idx[idx >= K] = lo  # fixed shapes: the last chunk repeats its first dataset
        rep = lambda a: np.repeat(np.asarray(a)[idx], num_chains, axis=0)  # noqa: E731
        args = tuple(jnp.asarray(rep(a)) for a in (logx, logy, group, mask))
        out = run(keys[idx].reshape(-1), jnp.asarray(rep(u0)), args)
        out = jax.device_get(out)
        n_keep = min(chunk, K - lo)
        outs.append(jax.tree.map(lambda a: np.asarray(a).reshape((chunk, num_chains) + a.shape[1:])[:n_keep], out))
    return jax.tree.map(lambda *a: np.concatenate(a), *outs)


def _diagnostics(samples, names, finite, K, C, ess, rhat):
    for n in names:
        v = samples[n]
        if v.ndim != 3:
            continue
        ess[n] = np.array([effective_sample_size(v[k]) if finite[k] else np.nan for k in range(K)])
        if C > 1:
            rhat[n] = np.array([split_gelman_rubin(v[k]) if finite[k] else np.nan for k in range(K)])


def _finish(m: BayesModel, out, seconds: float, settings) -> ManyPosteriors:
    samples = {k: np.asarray(v) for k, v in out.samples.items()}
    K, C = out.diverging.shape[:2]
    names = [n for n in samples if not n.endswith("_z")]
    finite = np.ones(K, bool)
    for v in samples.values():
        finite &= np.all(np.isfinite(v.reshape(K, -1)), 1)
    for n in m.law.param_names:  # a chain that never moved (step size collapsed) is a failure too
        if n in samples and samples[n].ndim == 3:
            finite &= ~np.any(np.ptp(np.nan_to_num(samples[n]), axis=2) == 0, axis=1)
    ess, rhat = {}, {}
    with np.errstate(invalid="ignore", divide="ignore"):
        _diagnostics(samples, names, finite, K, C, ess, rhat)
    n_div = np.asarray(out.diverging).reshape(K, -1).sum(1)
    status = np.where(~finite, "failed", np.where(n_div > 0, "divergent", "ok"))
    if (~finite).any():
        warnings.warn(f"{int((~finite).sum())} of {K} posteriors have non-finite draws or a chain that never moved; "
                      "they are marked 'failed' "
                      "and excluded from summaries.", RuntimeWarning, stacklevel=3)
    return ManyPosteriors(m.law, samples, n_div, pd.DataFrame(ess), pd.DataFrame(rhat) if rhat else None, status,
                          seconds, settings)


def _cfg(num_warmup, num_samples, thinning, target_accept_prob, max_tree_depth):
    target_accept_prob = validate.number(target_accept_prob, "target_accept_prob", minimum=0, maximum=1,
                                         open_min=True, open_max=True)
    return NutsConfig(validate.integer(num_warmup, "num_warmup"), validate.integer(num_samples, "num_samples"),
                      validate.integer(thinning, "thinning"), target_accept_prob,
                      validate.integer(max_tree_depth, "max_tree_depth"), False, True)


def sample_many(
    law: str | Law,
    datasets: Sequence,
    key=validate.DEFAULT_KEY,
    *,
    num_chains: int = 1,
    num_warmup: int = 500,
    num_samples: int = 500,
    thinning: int = 1,
    priors: Any = None,
    likelihood: str = "student_t",
    df: float | None = None,
    fixed=None,
    init: Any = "fit",
    target_accept_prob: float = 0.9,
    max_tree_depth: int = 8,
    chunk_size: int | None = None,
    devices=None,
) -> ManyPosteriors:
    """NUTS posteriors of K datasets in one compiled, vmapped call.

    Every dataset gets ``num_chains`` chains; all K x chains run in lockstep
    as one batch (split across ``devices``, and in chunks of ``chunk_size``
    datasets, default all). Datasets may differ in size: shorter ones are
    padded with masked rows. One dataset whose chains fail (non-finite draws)
    is marked ``failed``; the others are untouched.

    Parameters
    ----------
    law
        Law name or Law.
    datasets
        A sequence of :class:`ScalingData` (or DataFrames) with the law's covariates.
    key
        Int seed, ``jax.random.key`` or raw key data (:func:`jaxscale.validate.key`; ``None`` is
        :data:`jaxscale.validate.DEFAULT_KEY`). Same key, same draws, whatever the chunking.
    num_chains, num_warmup, num_samples, thinning, target_accept_prob
        NUTS settings per dataset.
    max_tree_depth
        8 (256 leapfrog steps) by default: batched chains move in lockstep, so
        one chain's deep tree costs the whole batch.
    priors, likelihood, df, fixed
        As in :func:`model` (shared by all datasets).
    init
        ``"fit"`` (a 64-start point fit per dataset) or ``"prior"`` (prior medians).

    Examples
    --------
    >>> import jaxscale
    >>> from jaxscale import bayes
    >>> d = jaxscale.demo_data()
    >>> many = bayes.sample_many("chinchilla", [d, d.drop_top(5)], key=0, num_warmup=200, num_samples=200)
    >>> many.samples["alpha"].shape, many.status.tolist()
    ((2, 1, 200), ['ok', 'ok'])
    """
    t0 = time.perf_counter()
    law = get(law)
    if isinstance(datasets, (ScalingData, str)) or not isinstance(datasets, Sequence) or len(datasets) == 0:
        raise DataError("datasets must be a non-empty list of ScalingData (or DataFrames).")
    datasets = [ScalingData.coerce(d) for d in datasets]
    num_chains = validate.integer(num_chains, "num_chains")
    cfg = _cfg(num_warmup, num_samples, thinning, target_accept_prob, max_tree_depth)
    logx, logy, mask = _pad(datasets, law)
    # no run effect here: every dataset is fitted with rows as independent observations
    m = model(law, datasets[0], priors=priors, likelihood=likelihood, df=df, fixed=fixed, run_effect=False)
    key = validate.key(key)
    k_init, k_run = jax.random.split(key)
    example = (jnp.asarray(logx[0]), jnp.asarray(logy[0]), jnp.zeros(logy.shape[1], jnp.int32), jnp.asarray(mask[0]))
    sites = latent_sites(m, example)
    u0 = []
    for k, d in enumerate(datasets):
        mk = m
        if init == "fit":
            mk = model(law, d, priors=priors, likelihood=likelihood, df=df, fixed=fixed, run_effect=False)
        vals = init_values(mk, init, jax.random.fold_in(k_init, k), fit_starts=64)
        u, unravel = unconstrain(sites, vals)
        u0.append(np.asarray(u))
    K = len(datasets)
    chunk = K if chunk_size is None else validate.integer(chunk_size, "chunk_size")
    out = _run_many(m, logx, logy, mask, np.stack(u0), k_run, cfg, num_chains, min(chunk, K), devices, unravel)
    settings = dict(num_chains=num_chains, **cfg._asdict(), init=str(init) if isinstance(init, str) else "dict")
    return _finish(m, out, time.perf_counter() - t0, settings)


@dataclass(frozen=True, eq=False)
class SBCResult:
    """Simulation-based calibration (Talts et al. 2018): truths, ranks and interval coverage.

    ``ranks[name]``: for each dataset, how many posterior draws fall below the
    true value (uniform on ``0..n_draws`` when the posterior is calibrated).
    ``coverage``: the share of datasets whose central ``level`` interval holds
    the truth, per parameter and level, with its binomial standard error.
    """

    truths: pd.DataFrame
    ranks: pd.DataFrame
    coverage: pd.DataFrame
    uniformity: pd.DataFrame
    posteriors: ManyPosteriors
    n_draws: int
    seconds: float

    def pooled_coverage(self) -> pd.Series:
        """Coverage at each level averaged over the parameters."""
        return self.coverage.groupby("level")["coverage"].mean()


def _coverage(truth, draws, levels):
    out = {}
    for lev in levels:
        a = (1 - lev) / 2
        lo, hi = np.quantile(draws, a, axis=1), np.quantile(draws, 1 - a, axis=1)
        out[lev] = (truth >= lo) & (truth <= hi)
    return out


def sbc(
    law: str | Law,
    design,
    n_datasets: int,
    key=validate.DEFAULT_KEY,
    *,
    levels: Sequence[float] = (0.5, 0.9),
    n_bins: int = 20,
    num_warmup: int = 500,
    num_samples: int = 500,
    num_chains: int = 1,
    priors: Any = None,
    likelihood: str = "student_t",
    df: float | None = None,
    fixed=None,
    init: Any = "prior",
    target_accept_prob: float = 0.9,
    max_tree_depth: int = 8,
    chunk_size: int | None = None,
    devices=None,
) -> SBCResult:
    """Simulation-based calibration: simulate from the prior, sample each posterior, rank the truth.

    For each of ``n_datasets`` draws of the parameters from the prior, a
    dataset is simulated on ``design``'s covariates (its targets are not
    used) and its posterior sampled (:func:`sample_many`). If the sampler
    and model are right, each truth's rank among its posterior draws is
    uniform and every central ``level`` interval holds the truth in a share
    ``level`` of the datasets, up to binomial noise (SE sqrt(l(1-l)/K)).

    Returns an :class:`SBCResult`. ``uniformity`` holds a chi-squared test of
    the rank histogram (``n_bins`` bins) per parameter.

    Examples
    --------
    >>> import jaxscale
    >>> from jaxscale import bayes
    >>> res = bayes.sbc("chinchilla", jaxscale.demo_data(), 8, key=0, num_warmup=150, num_samples=150)
    >>> sorted(res.coverage["level"].unique().tolist())
    [0.5, 0.9]
    """
    t0 = time.perf_counter()
    law = get(law)
    n_datasets = validate.integer(n_datasets, "n_datasets")
    levels = validate.levels(levels)
    n_bins = validate.integer(n_bins, "n_bins")
    num_chains = validate.integer(num_chains, "num_chains")
    design = ScalingData.coerce(design)
    m = model(law, design, priors=priors, likelihood=likelihood, df=df, fixed=fixed, run_effect=False)
    key = validate.key(key)
    k_sim, k_run, k_init = jax.random.split(key, 3)
    logx, _, group, mask = (jnp.asarray(a) for a in m.args)
    sim = Predictive(m, num_samples=n_datasets)(k_sim, logx, None, group, mask)
    ys = np.asarray(sim[OBS])
    truths = {k: np.asarray(v) for k, v in sim.items() if k != OBS and np.ndim(v) == 1}
    cfg = _cfg(num_warmup, num_samples, 1, target_accept_prob, max_tree_depth)
    sites = latent_sites(m, m.args)
    u0 = []
    for k in range(n_datasets):
        mk = m
        if init == "fit":
            d = ScalingData.from_arrays(**{c: np.exp(np.asarray(logx)[:, i]) for i, c in enumerate(law.covariates)},
                                        loss=np.exp(ys[k]))
            mk = model(law, d, priors=priors, likelihood=likelihood, df=df, fixed=fixed)
        vals = init_values(mk, init, jax.random.fold_in(k_init, k), fit_starts=64)
        u, unravel = unconstrain(sites, vals)
        u0.append(np.asarray(u))
    K = n_datasets
    X = np.broadcast_to(np.asarray(logx), (K,) + logx.shape)
    M = np.broadcast_to(np.asarray(mask), (K,) + mask.shape)
    chunk = K if chunk_size is None else min(validate.integer(chunk_size, "chunk_size"), K)
    out = _run_many(m, X, ys, M, np.stack(u0), k_run, cfg, num_chains, chunk, devices, unravel)
    post = _finish(m, out, time.perf_counter() - t0, dict(cfg._asdict()))
    keep = post.status != "failed"
    ranks, cov_rows, uni_rows = {}, [], []
    for name, truth in truths.items():
        draws = post.samples[name].reshape(K, -1)
        ranks[name] = (draws < truth[:, None]).sum(1)
        cov = _coverage(truth[keep], draws[keep], levels)
        for lev in levels:
            c = float(cov[lev].mean())
            cov_rows.append(dict(param=name, level=lev, coverage=c, se=float(np.sqrt(lev * (1 - lev) / keep.sum())),
                                 n=int(keep.sum())))
        hist = np.histogram(ranks[name][keep], bins=n_bins, range=(0, draws.shape[1] + 1))[0]
        expected = keep.sum() / n_bins
        stat = float(((hist - expected) ** 2 / expected).sum())
        from jaxscale.hypothesis import chi2_sf

        uni_rows.append(dict(param=name, chi2=stat, df=n_bins - 1, p_value=float(chi2_sf(stat, n_bins - 1))))
    return SBCResult(pd.DataFrame(truths), pd.DataFrame(ranks), pd.DataFrame(cov_rows), pd.DataFrame(uni_rows), post,
                     int(post.samples[next(iter(truths))].shape[1] * post.samples[next(iter(truths))].shape[2]),
                     time.perf_counter() - t0)
