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
    if name == "mlpr":
        # compute as a fraction of the target model's, as the GPT-4 report plots it (Fig. 2): MLPR from 25 to 0.8.
        # 17 points: with 13 the noisy draw of synthetic() leaves the near-L1 Huber optimum flat along one line
        return jaxscale.laws.get("mlpr"), dict(alpha=0.8, k=0.25), dict(C=np.logspace(-6, 0, 17)), {}, 1e-4
    if name == "coverage":
        # Brown et al.'s range: 1 to 10,000 samples; coverage from 0.2 to 0.9
        return (jaxscale.laws.get("coverage"), dict(A=1.5, beta=0.25), dict(samples=np.logspace(0, 4, 17)), {},
                1e-4)
    if name == "m1":
        return jaxscale.laws.get("m1"), dict(beta=3.0, c=-0.3), dict(x=np.logspace(3, 9, 20)), {}, 1e-4
    if name == "m2":
        return jaxscale.laws.get("m2"), dict(E=0.3, A=5.0, alpha=0.3), dict(x=np.logspace(3, 9, 25)), {}, 1e-4
    if name == "m3":
        # saturates near x = 1/gamma = 1e7, inside the design
        return jaxscale.laws.get("m3"), dict(beta=2.0, c=-0.4, gamma=1e-7), dict(x=np.logspace(3, 10, 30)), {}, 1e-3
    if name == "m4":
        # from near eps_0 (x = 1) to near eps_inf (x = 1e9): the sigmoid and its power-law tail
        p = dict(eps_inf=0.2, eps_0=1.0, beta=5.0, c=-0.3, alpha=1.5)
        return jaxscale.laws.get("m4"), p, dict(x=np.logspace(0, 9, 30)), {}, 1e-3
    if name == "overtraining":
        # Gadre et al.'s RedPajama fit, rounded; token multipliers 5 to 320 at each size identify a and b apart.
        N, M = _grid(np.logspace(7, 9.5, 6), np.array([5.0, 20.0, 80.0, 320.0]))
        p = dict(E=1.84, a=212.0, b=366.0, eta=0.136)
        return jaxscale.laws.get("overtraining"), p, dict(N=N, D=M * N), {}, 1e-4
    if name == "loss_to_error":
        # Gadre et al.'s 17-task error law on RedPajama, rounded; C4 eval losses 2.4 to 5.5 as their runs span.
        p = dict(eps=0.857, k=2.21, gamma=0.716)
        return jaxscale.laws.get("loss_to_error"), p, dict(x=np.linspace(2.4, 5.5, 16)), {}, 1e-4
    if name == "moe_clark":
        N, E = _grid(np.logspace(7, 10, 6), 2.0 ** np.arange(10))
        return jaxscale.laws.get(name), dict(a=-0.08, b=-0.1, c=0.004, d=2.7), dict(N=N, experts=E), {}, 1e-6
    if name == "moe_granularity":
        N, D, G = _grid(np.logspace(6, 10, 6), np.logspace(8, 12, 6), 2.0 ** np.arange(6))
        p = dict(c=0.5, a=20.0, g=3.0, b=30.0, alpha=0.12, beta=0.15, gamma=0.6)
        return jaxscale.laws.get(name), p, dict(N=N, D=D, granularity=G), {}, 1e-3
    if name == "precision":
        N, D, P = _grid(np.logspace(7, 10, 5), np.logspace(9, 12, 5), np.array([2, 3, 4, 6, 8, 12, 16.0]))
        p = dict(E=1.7, A=400.0, B=400.0, alpha=0.34, beta=0.28, gamma=2.5)
        return jaxscale.laws.get(name), p, dict(N=N, D=D, precision=P), {}, 1e-4
    if name == "precision_ptq":
        N, D, P = _grid(np.logspace(7, 10, 5), np.logspace(9, 12, 5), np.array([2, 3, 4, 6, 8, 16.0]))
        p = dict(E=1.7, A=400.0, B=400.0, C_T=0.05, alpha=0.34, beta=0.28, gamma_D=0.5, gamma_N=0.4, gamma_post=1.0)
        return jaxscale.laws.get(name), p, dict(N=N, D=D, precision_post=P), {}, 1e-3
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
    "mlpr",
    "coverage",
    "m1",
    "m2",
    "m3",
    "m4",
    "overtraining",
    "loss_to_error",
    "moe_clark",
    "moe_granularity",
    "precision",
    "precision_ptq",
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
    elif set(cov) <= {"N", "D", "C", "U", "x"}:
        data = jaxscale.ScalingData.from_arrays(loss=y, **cov)
    else:
        # roles from_arrays has no keyword for (samples, precision, ...) go through a frame mapped explicitly
        import pandas as pd

        frame = pd.DataFrame({**cov, "y": y})
        data = jaxscale.ScalingData.from_frame(frame, aliases=False, y="y", **{c: c for c in cov})
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
