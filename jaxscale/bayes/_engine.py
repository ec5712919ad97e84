"""NUTS for many chains of many datasets as one compiled computation.

NumPyro's functional HMC API (``numpyro.infer.hmc.hmc``) with
``potential_fn_gen`` makes the potential a function of the model's arguments,
so one chain is a pure function ``(key, z0, args) -> draws``. ``jax.vmap``
runs any number of chains of any number of datasets (same shapes) in lockstep,
and ``jax.shard_map`` splits that batch across devices.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from numpyro.handlers import seed, trace
from numpyro.infer.hmc import hmc
from numpyro.infer.util import constrain_fn, potential_energy
from numpyro.distributions.transforms import biject_to


#: With a progress feed (``build(..., tick=)``), the host hears from each chain this many times.
TICKS = 100


class NutsConfig(NamedTuple):
    num_warmup: int
    num_samples: int
    thinning: int = 1
    target_accept_prob: float = 0.8
    max_tree_depth: int = 10
    dense_mass: bool = True
    whiten: bool = True
    n_newton: int = 25
    init_scale: float = 1.0
    chain_method: str = "vectorized"


class Draws(NamedTuple):
    """Per chain: constrained samples (incl. deterministic sites) and sampler statistics."""

    samples: dict
    diverging: jnp.ndarray
    num_steps: jnp.ndarray
    accept_prob: jnp.ndarray
    energy: jnp.ndarray
    potential_energy: jnp.ndarray
    step_size: jnp.ndarray
    laplace_ok: jnp.ndarray
    mean: Any = None  # per draw the model's mean (log-prediction) at every row, when asked for


def latent_sites(model, args) -> dict:
    """``{name: (shape, transform)}`` for every unobserved sample site.

    The model is traced abstractly (``jax.make_jaxpr``): running it eagerly
    would compile every primitive one by one, seconds on a CPU.
    """
    found = {}

    def probe(*a):
        tr = trace(seed(model, jax.random.key(0))).get_trace(*a)  # the key made inside: nothing compiled eagerly
        for name, site in tr.items():
            if site["type"] == "sample" and not site["is_observed"]:
                found[name] = (tuple(jnp.shape(site["value"])), biject_to(site["fn"].support))
        return 0.0

    jax.make_jaxpr(probe)(*args)
    return found


def unravel_fn(sites: dict):
    """``unravel(u) -> {site: value}`` for flat unconstrained vectors of ``sites``.

    The layout is ``ravel_pytree``'s: sites in sorted order, each flattened.
    """
    names = sorted(sites)
    sizes = [int(np.prod(sites[n][0], dtype=int)) for n in names]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int).tolist()

    def unravel(u):
        return {n: u[offsets[i]:offsets[i + 1]].reshape(sites[n][0]) for i, n in enumerate(names)}

    return unravel


def unconstrain(sites: dict, values: dict):
    """Constrained values (one per latent site) -> flat unconstrained vector, and its ``unravel``.

    The transforms run as one small jitted function rather than op by op
    (each eager op would compile on its own).
    """
    names = sorted(sites)

    def flatten(vals):
        return jnp.concatenate([jnp.reshape(sites[n][1].inv(jnp.broadcast_to(vals[n], sites[n][0])), (-1,))
                                for n in names])

    vals = {n: np.asarray(values[n], dtype=np.float64) for n in names}
    return np.asarray(jax.jit(flatten)(vals)), unravel_fn(sites)


def _laplace(flat_potential, u0, args, n_newton: int):
    """Posterior mode by damped Newton from ``u0``, and ``L`` with ``L L^T`` = inverse Hessian there.

    Returns ``(u_map, L, ok)``. Where the Hessian is not positive definite
    its eigenvalues are floored, and where anything is non-finite ``L`` falls
    back to the identity (``ok`` is False): NUTS still runs, only slower.
    """
    f = lambda u: flat_potential(u, args)  # noqa: E731
    value_and_grad = jax.value_and_grad(f)
    P = u0.shape[0]
    eye = jnp.eye(P, dtype=u0.dtype)

    def hessian(u):
        # central differences of the gradient: compiles to the gradient code
        # vmapped, much smaller than forward-over-reverse autodiff
        h = 1e-4 * jnp.maximum(jnp.abs(u), 1.0)
        g = jax.vmap(lambda d: value_and_grad(u + d)[1])(jnp.concatenate([jnp.diag(h), -jnp.diag(h)]))
        H = (g[:P] - g[P:]).T / (2.0 * h)
        return 0.5 * (H + H.T)

    def newton(_, carry):
        u, fu, mu, _ = carry
        g, H = value_and_grad(u)[1], hessian(u)
        step = jnp.linalg.solve(H + mu * jnp.diag(jnp.maximum(jnp.abs(jnp.diag(H)), 1e-12)), g)
        cand = u - step
        fc = f(cand)
        better = jnp.isfinite(fc) & (fc < fu) & jnp.all(jnp.isfinite(cand))
        return (jnp.where(better, cand, u), jnp.where(better, fc, fu),
                jnp.where(better, jnp.maximum(mu / 10.0, 1e-9), jnp.minimum(mu * 10.0, 1e9)), H)

    # The Hessian used for whitening is the one at the start of the last
    # iteration: at convergence that is the mode (one copy of it to compile).
    u, _, _, H = lax.fori_loop(0, n_newton, newton, (u0, f(u0), jnp.asarray(1e-3, u0.dtype), eye))
    lam, V = jnp.linalg.eigh(H)
    ok = jnp.all(jnp.isfinite(lam)) & jnp.all(jnp.isfinite(u)) & (lam[-1] > 0)
    # Floor the curvature at 1/2^2: no whitened direction wider than 2 units of
    # the unconstrained scale (priors are O(1) there). A flat direction (a
    # funnel's scale parameter, a weakly identified coefficient) would
    # otherwise get a huge scale and start its chains in the far tails.
    lam = jnp.maximum(lam, jnp.maximum(lam[-1] * 1e-10, 0.25))
    L = V / jnp.sqrt(lam)
    L = jnp.where(ok, L, eye)
    return jnp.where(jnp.all(jnp.isfinite(u)), u, u0), L, ok


def build(model, cfg: NutsConfig, unravel, mean_fn=None, tick=None):
    """``run(keys, u0, args) -> Draws`` for a batch of chains (leading axis on all three).

    ``u0`` is the flat unconstrained start (``unravel`` maps it to the model's
    latent dict). With ``cfg.whiten`` NUTS runs in ``w``, ``u = u_map + L w``,
    where ``u_map`` and ``L`` come from a Laplace approximation at the mode
    found from ``u0``: the posterior's scales and correlations (log A against
    alpha is ~0.999 on Chinchilla's data) are taken out before warmup starts,
    and chains start at ``w ~ N(0, init_scale^2 I)``, i.e. spread like the posterior.

    The chains are vmapped *inside* the scan over iterations, so the scan's
    carry is batched from the start: the batched NUTS kernel is traced once,
    not once per fixed-point pass of the scan's batching rule.

    ``mean_fn(draw, args)``, if given, maps one draw (constrained sites) to
    the model's mean at every row; ``Draws.mean`` then holds it per draw
    (computed here, in the same compiled program, rather than in another).

    ``tick(n)``, if given, is called on the host (``jax.debug.callback``) every :data:`TICKS`-th of the
    iterations with ``n``, the chain-iterations done since the last call: a progress bar's feed. The program then
    holds host callbacks, which JAX's persistent compilation cache does not keep: it compiles on every run.
    """

    # One jitted potential: NUTS evaluates it at several code sites, and a jit
    # is traced once and reused at each of them (a plain function would be
    # retraced, with the model, at every site).
    potential = jax.jit(lambda z, args: potential_energy(model, args, {}, z))
    flat_potential = lambda u, args: potential(unravel(u), args)  # noqa: E731

    def potential_fn_gen(args, shift, L):
        return lambda w: flat_potential(shift + L @ w, args)

    init_kernel, sample_kernel = hmc(potential_fn_gen=potential_fn_gen, algo="NUTS")

    def init_one(key, w0, margs):
        return init_kernel(w0, cfg.num_warmup, dense_mass=cfg.dense_mass, target_accept_prob=cfg.target_accept_prob,
                           max_tree_depth=cfg.max_tree_depth, regularize_mass_matrix=not cfg.whiten,
                           model_args=margs, rng_key=key)

    def step_one(state, margs):
        return sample_kernel(state, model_args=margs)

    def chains(keys, u0, args, batched: bool):
        # batched: a leading chain axis on every argument, chains vmapped *inside* the scan (below); else one chain
        vm = jax.vmap if batched else (lambda f, **_: f)
        P = u0.shape[-1]
        k = vm(jax.random.split)(keys)
        k_init, k_nuts = k[..., 0], k[..., 1]
        if cfg.whiten:
            shift, L, ok = vm(lambda u, a: _laplace(flat_potential, u, a, cfg.n_newton))(u0, args)
            w0 = cfg.init_scale * vm(lambda kk: jax.random.normal(kk, (P,), u0.dtype))(k_init)
        else:
            shift, L, ok = u0, jnp.broadcast_to(jnp.eye(P, dtype=u0.dtype), u0.shape + (P,)), jnp.ones(u0.shape[:-1], bool)
            w0 = jnp.zeros_like(u0)
        margs = (tuple(args), shift, L)
        state = vm(init_one)(k_nuts, w0, margs)

        def step(state, i):
            state = vm(step_one)(state, margs)
            if tick is not None:
                lax.cond(i % every == every - 1, lambda: jax.debug.callback(tick, every * width), lambda: None)
            return state, (state.z, state.diverging, state.num_steps, state.accept_prob, state.energy,
                           state.potential_energy, state.adapt_state.step_size)

        # One scan over warmup and sampling: a single copy of the NUTS kernel to compile.
        n_total = cfg.num_warmup + cfg.num_samples * cfg.thinning
        every = max(1, -(-n_total // TICKS))
        width = u0.shape[0] if batched else 1  # chains advanced by one step
        _, out = lax.scan(step, state, None if tick is None else jnp.arange(n_total), length=n_total)
        keep = slice(cfg.num_warmup + cfg.thinning - 1, None, cfg.thinning)
        # scan stacks iterations first: (iteration, chain, ...) -> (chain, iteration, ...)
        w, div, steps, acc, energy, pe, eps = jax.tree.map(
            lambda a: jnp.swapaxes(a[keep], 0, 1) if batched else a[keep], out)
        u = shift[..., None, :] + jnp.einsum("...ij,...sj->...si", L, w)
        constrain = lambda uu, a: constrain_fn(model, tuple(a), {}, unravel(uu), return_deterministic=True)  # noqa: E731
        samples = vm(jax.vmap(constrain, in_axes=(0, None)))(u, args)
        mean = None if mean_fn is None else vm(jax.vmap(mean_fn, in_axes=(0, None)))(samples, args)
        return Draws(samples, div, steps, acc, energy, pe, eps, ok, mean)

    def run(keys, u0, args):
        if cfg.chain_method == "sequential":
            # one chain after another: no lockstep (each chain builds only its own trees) and no batching of
            # NUTS's while loops, which traces and compiles ~30% faster; the better choice on a CPU
            return lax.map(lambda a: chains(*a, batched=False), (keys, u0, tuple(args)))
        return chains(keys, u0, tuple(args), batched=True)

    return run


class Chains:
    """``chains(keys, u0, args) -> Draws`` over a leading batch axis, jitted once and reusable.

    With several ``devices`` the batch is padded to a multiple of their count
    and split across them (``shard_map``: each device runs its own loop, so a
    slow chain on one device does not hold up the others). :meth:`compile`
    compiles ahead of time (e.g. in a thread while the point fit runs).
    """

    def __init__(self, model, unravel, cfg: NutsConfig, devices=None, mean_fn=None, tick=None):
        fn = build(model, cfg, unravel, mean_fn, tick)
        self.devices = tuple(devices) if devices else (jax.devices()[0],)
        n_dev = len(self.devices)
        if n_dev == 1:
            self._jfn = jax.jit(fn)
        else:
            from jax.sharding import Mesh, PartitionSpec

            mesh = Mesh(np.array(self.devices), ("batch",))
            spec = PartitionSpec("batch")
            self._jfn = jax.jit(jax.shard_map(fn, mesh=mesh, in_specs=(spec, spec, spec), out_specs=spec,
                                              check_vma=False))
        self._compiled = None

    def _pad(self, keys, u0, args):
        n, n_dev = keys.shape[0], len(self.devices)
        if n_dev == 1:
            return keys, u0, tuple(args)
        take = np.concatenate([np.arange(n), np.zeros((-n) % n_dev, int)])
        return jax.tree.map(lambda a: a[take], (keys, u0, tuple(args)))

    def lower(self, keys, u0, args):
        """Trace for these shapes (values are not used); returns a function that compiles.

        Tracing runs the NumPyro model under its handlers, whose stack is
        global: trace in one thread only. The returned ``compile()`` is pure
        XLA and may run in another thread while this one works.
        """
        lowered = self._jfn.lower(*self._pad(keys, u0, args))

        def compile_():
            self._compiled = lowered.compile()
            return self

        return compile_

    def __call__(self, keys, u0, args):
        n = keys.shape[0]
        padded = self._pad(keys, u0, args)
        fn = self._compiled if self._compiled is not None else self._jfn
        out = fn(*padded)
        return out if len(self.devices) == 1 else jax.tree.map(lambda a: a[:n], out)


def compile_chains(model, unravel, cfg: NutsConfig, devices=None, mean_fn=None, tick=None) -> Chains:
    """Build :class:`Chains` for ``model`` (see there)."""
    return Chains(model, unravel, cfg, devices, mean_fn, tick)
