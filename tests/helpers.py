"""The law test matrix: for each law, true parameters and a design that identifies them."""

import os
import subprocess

import numpy as np
import pytest

import jaxscale

MUENNIGHOFF = jaxscale.published.MUENNIGHOFF


def _grid(*axes):
    mesh = np.meshgrid(*axes, indexing="ij")
    return [m.ravel() for m in mesh]


def curve_runs(sizes=(1e8,)):
    """Checkpoints (every 50 steps) of runs under cosine, WSD and constant schedules, one set per model size:
    the keyword arguments of ``ScalingData.from_arrays`` but the loss."""
    plans = {"cos": "cosine:steps=3000,warmup=100,peak=1e-3,final=0.1",
             "wsd": "wsd:steps=2000,warmup=100,peak=1e-3,final=0.1,decay=0.2",
             "const": "constant:steps=1500,warmup=100,peak=1e-3"}
    run, step, N, schedule = [], [], [], {}
    for n in sizes:
        for kind, spec in plans.items():
            name = f"{n:.0e}-{kind}"
            schedule[name] = spec
            steps = np.arange(100, jaxscale.schedule.Schedule.parse(spec).steps + 1, 50)
            run += [name] * len(steps)
            step += steps.tolist()
            N += [n] * len(steps)
    step = np.array(step, float)
    return dict(N=np.array(N), D=step * 1e5 * np.sqrt(np.array(N) / 1e8), run=np.array(run), step=step,
                schedule=schedule, batch_size=1e5 * np.sqrt(np.array(N) / 1e8))


def _curve_covariates(law, runs):
    data = jaxscale.ScalingData.from_arrays(loss=np.arange(1.0, len(runs["step"]) + 1), **runs)
    return {c: np.asarray(data.covariates[c]) for c in law.covariates}


def case(name):
    """(law, true natural params, covariates dict, fit kwargs, relative tolerance)."""
    if name in ("tissue", "curve"):
        law = jaxscale.laws.get(name)
        return law, dict(L0=2.5, A=0.8, alpha=0.5, C=2e-3), _curve_covariates(law, curve_runs()), {}, 1e-3
    if name == "multi_power":
        law = jaxscale.laws.get(name)
        p = dict(L0=2.4, A=0.65, alpha=0.43, B=500.0, C=2.0, beta=0.6, gamma=0.6)
        return law, p, _curve_covariates(law, curve_runs()), dict(starts=512, key=0), 2e-2
    if name == "curve_nd":
        law = jaxscale.laws.get(name)
        p = dict(E=1.8, A=400.0, B=1500.0, alpha=0.34, beta=0.3, C=1e-4)
        return law, p, _curve_covariates(law, curve_runs((5e7, 1e8, 2e8, 4e8))), {}, 1e-3
    if name == "chinchilla":
        N, D = _grid(np.logspace(7.5, 10.5, 9), np.logspace(9, 12, 9))
        return jaxscale.laws.get("chinchilla"), dict(jaxscale.HOFFMANN_UNROUNDED), dict(N=N, D=D), {}, 1e-4
    if name == "kaplan":
        N, D = _grid(np.logspace(6, 10, 9), np.logspace(8, 12, 9))
        p = dict(jaxscale.published.KAPLAN)
        return jaxscale.laws.get("kaplan"), p, dict(N=N, D=D), {}, 1e-4
    if name == "power":
        return (jaxscale.laws.get("power", resource="N"), dict(E=1.7, A=400.0, alpha=0.34),
                dict(N=np.logspace(6, 11, 20)), {}, 1e-4)
    if name == "data_constrained":
        N, U, ep = _grid(np.logspace(8, 10, 5), np.logspace(9, 11, 4), np.array([1, 2, 4, 8, 16, 40, 100]))
        fixed = {k: MUENNIGHOFF[k] for k in ("E", "A", "B", "alpha", "beta")}
        return jaxscale.laws.get("data_constrained"), dict(MUENNIGHOFF), dict(N=N, D=U * ep, U=U), dict(fixed=fixed), 1e-3
    if name == "broken_power":
        p = dict(a=0.3, b=20.0, c0=0.05, c1=0.4, d1=1e5, f1=0.3)
        return jaxscale.laws.get("broken_power"), p, dict(x=np.logspace(2, 8, 40)), {}, 1e-3
    if name == "sigmoid":
        p = dict(floor=0.25, ceiling=0.85, k=1.2, x0=1e22)
        return jaxscale.laws.get("sigmoid"), p, dict(C=np.logspace(19, 25, 25)), dict(fixed={"floor": 0.25}), 1e-4
    raise KeyError(name)


LAW_NAMES = [
    "chinchilla",
    "kaplan",
    "power",
    "data_constrained",
    "broken_power",
    "sigmoid",
    "tissue",
    "multi_power",
    "curve_nd",
    "curve",
]
#: Laws of loss curves: their data are checkpoints of runs (see curve_runs).
CURVE_LAWS = ("tissue", "multi_power", "curve_nd", "curve")


def synthetic(name, noise=0.0, seed=0):
    law, p, cov, kw, tol = case(name)
    y = law.predict(p, **cov)
    if noise:
        y = y * np.exp(noise * np.random.default_rng(seed).standard_normal(y.shape))
    if name in CURVE_LAWS:
        data = jaxscale.ScalingData.from_arrays(loss=y, **curve_runs((5e7, 1e8, 2e8, 4e8) if name == "curve_nd"
                                                                     else (1e8,)))
    else:
        data = jaxscale.ScalingData.from_arrays(loss=y, **cov)
    return law, p, data, kw, tol


def with_file_size_limit(argv: list[str], limit: int) -> list[str]:
    """``argv`` run under ``RLIMIT_FSIZE = limit`` bytes: a write past it fails with EFBIG, as on a full disk.

    A launcher sets the limit and ``exec``s the command (the limit survives exec), instead of a ``preexec_fn``:
    forking a process that has started JAX's threads warns, and the suite turns warnings into errors. CPython
    ignores SIGXFSZ, so the write fails instead of the process being killed.
    """
    import sys

    launcher = ("import os, resource, sys; lim = int(sys.argv[1]); "
                "resource.setrlimit(resource.RLIMIT_FSIZE, (lim, lim)); os.execv(sys.argv[2], sys.argv[2:])")
    return [sys.executable, "-c", launcher, str(limit), *argv]


def unprivileged(tmp_path):
    """A command prefix under which permissions hold (root drops CAP_DAC_OVERRIDE), or skip."""
    probe = tmp_path / "probe-ro"
    probe.mkdir()
    probe.chmod(0o500)
    prefix = [] if os.geteuid() != 0 else ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]
    try:
        p = subprocess.run([*prefix, "sh", "-c", f": > '{probe}/x'"], capture_output=True)
    except OSError:
        pytest.skip("running as root without setpriv: permissions cannot be tested")
    if p.returncode == 0:
        pytest.skip("permissions are not enforced here (root without a way to drop CAP_DAC_OVERRIDE)")
    return prefix
