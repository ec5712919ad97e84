"""A standard benchmark of jaxscale on the devices JAX sees: ``jaxscale bench``.

Four parts, each optional:

* ``fit``: Epoch AI's protocol (the Chinchilla law, summed Huber with
  delta = 1e-3 on log-loss, Hoffmann's 4,500-start grid) at several numbers
  of starts: fits per second in steady state (median of ``repeats`` calls
  after one compiling call) and including compilation, and whether every size
  reached the same (and, on Epoch's data, the published) optimum. On a CPU,
  scipy's L-BFGS-B on Epoch's own objective, one start at a time, runs beside
  it on a sample of the same starts.
* ``bootstrap``: Epoch's bootstrap (pairs resamples, one warm start each):
  replicates per second.
* ``nuts``: :func:`jaxscale.bayes.sample` on the same data: minimum bulk ESS
  over the law's parameters per second of the whole call (point fit, tracing
  and compilation included, as a user waits for it).
* ``sbc``: :func:`jaxscale.bayes.sbc` on a 30-point design: datasets per
  second, compilation included.

The data are Epoch AI's 240 digitised Chinchilla points, bundled with
jaxscale (:mod:`jaxscale.datasets`, ``epoch_chinchilla``, its 5 highest
losses dropped as Epoch does), unless ``data=`` names another CSV file or
data set; the result says which.

>>> from jaxscale.bench import run_bench
>>> r = run_bench(parts=["fit"], sizes=[16], repeats=1, scipy_starts=0)   # or: jaxscale bench --parts fit ...
>>> s = r.results["fit"]["sizes"][0]
>>> s["n_starts"], s["fits_per_s"] > 0, s["same_optimum"]
(16, True, True)
>>> print(r.table())                                                        # doctest: +ELLIPSIS
jaxscale bench, ...
fit (Epoch's protocol: chinchilla, summed Huber delta=0.001 on log-loss, Hoffmann's grid)
...
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import importlib.metadata
import importlib.util
import json
import os
import pathlib
import platform as _platform
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from jaxscale import validate
from jaxscale._io import json_safe, text_or_write
from jaxscale.errors import ArgumentError

PARTS = ("fit", "bootstrap", "nuts", "sbc")
PLATFORMS = ("cpu", "gpu", "tpu")

#: Epoch AI's 240 points (their CSV, 5 highest losses dropped, D = C / 6N): fingerprint and the optimum of the
#: summed Huber from Hoffmann's grid ("replicate exactly" in Epoch's notebook; tests/test_fit.py checks it).
EPOCH_FINGERPRINT = "5b166f7bbb7e33c199638732c6b11ff8d127593e26170e48fd7e7f7972a957f6"
EPOCH_OPTIMUM = 0.0010182740178
#: The columns of Epoch's CSV, for a file given as ``data=`` (a bundled data set brings its own roles).
EPOCH_COLUMNS = {"N": "Model Size", "C": "Training FLOP", "loss": "loss"}

#: Settings of the default run (~1.5 min on a 2-core CPU) and of ``quick=True`` (a smoke test: ~1 min there,
#: most of it compiling).
DEFAULTS = dict(sizes=(64, 512, 4500), repeats=3, scipy_starts=200, bootstrap_resamples=4000, nuts_chains=4,
                nuts_warmup=1000, nuts_samples=1000, sbc_datasets=32, sbc_draws=400)
QUICK = dict(sizes=(64,), repeats=1, scipy_starts=20, bootstrap_resamples=200, nuts_chains=2, nuts_warmup=150,
             nuts_samples=150, sbc_datasets=4, sbc_draws=50)

#: Relative tolerance for "the same optimum" (as jaxscale.fit's n_at_best).
SAME_RTOL = 1e-6


class BenchError(ArgumentError):
    """A benchmark that cannot run as asked: an unknown device, part or size (an :class:`ArgumentError`)."""


@dataclasses.dataclass(frozen=True)
class BenchResult:
    """The outcome of :func:`run_bench`.

    Attributes
    ----------
    date
        When the run started (UTC, ISO 8601).
    device
        ``platform``, ``device_kind``, ``count`` and the device names used.
    host, versions
        The machine (CPU count and model, memory, OS, load average) and the
        versions of jaxscale, jax, jaxlib, numpyro, arviz, scipy and Python.
    data
        What was fitted: name, source, number of points, fingerprint.
    settings
        Every setting of the run.
    results
        One entry per part (``fit``, ``bootstrap``, ``nuts``, ``sbc``). A part
        that could not run holds ``{"skipped": reason}``; one that failed,
        ``{"error": message}``.
    seconds
        Wall time of the whole run.
    """

    date: str
    device: dict[str, Any]
    host: dict[str, Any]
    versions: dict[str, Any]
    data: dict[str, Any]
    settings: dict[str, Any]
    results: dict[str, Any]
    seconds: float

    @property
    def ok(self) -> bool:
        """No part failed (skipped parts are not failures)."""
        return not any("error" in r for r in self.results.values())

    def headline(self) -> dict[str, Any]:
        """The numbers of the results table: fits/s per size, scipy, bootstrap, NUTS and SBC throughput.

        >>> BenchResult("", {}, {}, {}, {}, {}, {"fit": {"sizes": [{"n_starts": 64, "fits_per_s": 10.0}]}},
        ...             0.0).headline()
        {'fits_per_s': {64: 10.0}}
        """
        out: dict[str, Any] = {}
        fit = self.results.get("fit", {})
        if "sizes" in fit:
            out["fits_per_s"] = {s["n_starts"]: s["fits_per_s"] for s in fit["sizes"]}
        if "fits_per_s" in fit.get("scipy", {}):
            out["scipy_fits_per_s"] = fit["scipy"]["fits_per_s"]
            out["ratio_vs_scipy"] = fit["scipy"]["ratio"]
        for part, key in (("bootstrap", "replicates_per_s"), ("nuts", "ess_per_s"), ("sbc", "datasets_per_s")):
            if key in self.results.get(part, {}):
                out[f"{part}_{key}"] = self.results[part][key]
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of everything."""
        return {"benchmark": "jaxscale bench", **dataclasses.asdict(self)}

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        """Serialise :meth:`to_dict` (NaN and infinities as ``null``); write it atomically to ``path`` if given."""
        path = None if path is None else validate.output_path(path)
        return text_or_write(json.dumps(json_safe(self.to_dict()), indent=2), path)

    def table(self) -> str:
        """Plain-text report."""
        d, v, h = self.device, self.versions, self.host
        lines = [
            f"jaxscale bench, {self.date}: jaxscale {v.get('jaxscale')}, jax {v.get('jax')} (jaxlib {v.get('jaxlib')}),"
            f" numpyro {v.get('numpyro') or '-'}, Python {v.get('python')}",
            f"device: {d.get('platform')} x {d.get('count')} ({d.get('device_kind')}), {self.settings.get('dtype')}",
            f"host: {h.get('cpu_count')} CPUs ({h.get('cpu_model') or h.get('processor') or '?'}), "
            f"{h.get('memory_gib') or '?'} GiB, load average {h.get('load_average_start') or '?'}",
            f"data: {self.data.get('name')}, {self.data.get('n_points')} points",
        ]
        r = self.results
        if "fit" in r:
            lines.append("")
            lines += _fit_lines(r["fit"])
        if "bootstrap" in r:
            b = r["bootstrap"]
            lines.append("")
            if _note(b):
                lines.append(f"bootstrap: {_note(b)}")
            else:
                lines.append(f"bootstrap ({b['n_resamples']:,} pairs resamples x 1 warm start): "
                             f"{b['seconds_steady']:.3g} s steady, {b['replicates_per_s']:,.0f} replicates/s; "
                             f"{b['seconds_first_call']:.3g} s incl. compile ({b['replicates_per_s_incl_compile']:,.0f}"
                             f"/s); {b['n_failed']} failed")
        if "nuts" in r:
            n = r["nuts"]
            lines.append("")
            if _note(n):
                lines.append(f"nuts: {_note(n)}")
            else:
                lines.append(f"nuts ({n['chains']} chains x ({n['warmup']} warmup + {n['samples']} draws), "
                             f"{n['chain_method']}): {n['seconds']:.3g} s incl. point fit and compile; min bulk ESS "
                             f"{n['min_ess_bulk']:.0f} -> {n['ess_per_s']:.1f} ESS/s; max R-hat {n['max_rhat']:.4f}; "
                             f"{n['divergences']} divergences")
        if "sbc" in r:
            s = r["sbc"]
            lines.append("")
            if _note(s):
                lines.append(f"sbc: {_note(s)}")
            else:
                st = ", ".join(f"{k} {v}" for k, v in s["status"].items())
                lines.append(f"sbc ({s['n_datasets']} datasets x 1 chain x ({s['draws']} + {s['draws']}), "
                             f"{s['design_points']}-point design): {s['seconds']:.3g} s incl. compile -> "
                             f"{s['datasets_per_s']:.3g} datasets/s; {st}")
        lines.append("")
        lines.append(f"total {self.seconds:.1f} s")
        return "\n".join(lines)


def _note(part: dict) -> str | None:
    if "skipped" in part:
        return f"skipped: {part['skipped']}"
    if "error" in part:
        return f"FAILED: {part['error']}"
    return None


def _fit_lines(f: dict) -> list[str]:
    if _note(f):
        return [f"fit: {_note(f)}"]
    ref = f.get("reference_objective")
    lines = [f"fit (Epoch's protocol: {f['law']}, summed Huber delta={f['delta']:g} on log-loss, {f['starts']})"]
    head = f"  {'starts':>9}  {'steady s':>9}  {'fits/s':>10}  {'incl. compile':>13}  {'objective':>15}  {'at best':>8}"
    lines.append(head + ("  published optimum" if ref else "  same optimum"))
    for s in f["sizes"]:
        ok = s["matches_reference"] if ref else s["same_optimum"]
        lines.append(f"  {s['n_starts']:>9,}  {s['seconds_steady']:>9.3g}  {s['fits_per_s']:>10,.0f}  "
                     f"{s['fits_per_s_incl_compile']:>13,.0f}  {s['objective']:>15.10g}  {s['n_at_best']:>8,}  "
                     f"{'yes' if ok else 'NO'}")
    sp = f.get("scipy", {})
    if _note(sp):
        lines.append(f"  scipy baseline: {_note(sp)}")
    elif sp:
        lines.append(f"  scipy L-BFGS-B (Epoch's objective, one start at a time), {sp['n_starts']} of the starts: "
                     f"{sp['fits_per_s']:.1f} fits/s; jaxscale at {sp['ratio_at_n_starts']:,} starts is "
                     f"{sp['ratio']:.1f}x; same optimum: {'yes' if sp['same_optimum'] else 'no'}")
    return lines


# ----------------------------------------------------------------------------------------------------------------------
# Devices, host, versions, data


def available_platforms() -> dict[str, int]:
    """Platforms JAX can run on here, with their device counts, e.g. ``{'cpu': 2}``."""
    import jax

    out = {}
    for p in PLATFORMS:
        try:
            out[p] = len(jax.devices(p))
        except RuntimeError:
            pass
    return out


def select_devices(device: str | None = None) -> list:
    """The devices of platform ``device`` (``"cpu"``, ``"gpu"``, ``"tpu"``; default: JAX's default backend).

    A platform JAX does not have here is a :class:`BenchError` that names
    what was asked for and what JAX sees.

    >>> [d.platform for d in select_devices("cpu")][:1]
    ['cpu']
    """
    import jax

    if device is None:
        return list(jax.devices())
    name = str(device).lower()
    if name not in PLATFORMS:
        raise BenchError(f"unknown device {device!r}; expected one of {', '.join(PLATFORMS)}.")
    try:
        return list(jax.devices(name))
    except RuntimeError:
        seen = ", ".join(f"{n} {p}" for p, n in available_platforms().items()) or "none"
        raise BenchError(f"--device {name} was asked for, but JAX has no {name} devices here; it sees: {seen} "
                         f"(jax {jax.__version__}). Install a jax build for that accelerator, or choose one of "
                         f"those.") from None


def _pin_platform(platform: str):
    """Make ``platform`` JAX's default backend for this process, if nothing has fixed it yet.

    ``jaxscale.fit`` shards over ``jax.local_devices()`` (the default
    backend's); JAX fixes the default backend on first use, so another
    platform can only be benchmarked in a fresh process.
    """
    import jax

    previous = jax.config.read("jax_platform_name")
    jax.config.update("jax_platform_name", platform)
    default = jax.default_backend()
    if default != platform:
        jax.config.update("jax_platform_name", previous)
        raise BenchError(f"JAX's default backend in this process is already {default}, and jaxscale.fit runs on the "
                         f"default backend's devices; benchmark {platform} in a fresh process (the `jaxscale bench "
                         f"--device {platform}` command, or JAX_PLATFORMS={platform}).")


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def versions() -> dict[str, str | None]:
    """Versions of jaxscale, jax, jaxlib, numpyro, arviz, scipy, numpy and Python (None: not installed)."""
    import jax

    from jaxscale._version import __version__

    out = {"jaxscale": __version__, "jax": jax.__version__}
    for dist in ("jaxlib", "numpyro", "arviz", "scipy", "numpy"):
        out[dist] = _version(dist)
    out["python"] = _platform.python_version()
    return out


def host_info() -> dict[str, Any]:
    """CPU count and model, memory, OS and load average of this machine."""
    info: dict[str, Any] = {"cpu_count": os.cpu_count(), "processor": _platform.processor(),
                            "machine": _platform.machine(), "platform": _platform.platform(), "cpu_model": None,
                            "memory_gib": None}
    try:
        text = pathlib.Path("/proc/cpuinfo").read_text()
        info["cpu_model"] = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                                  if line.startswith("model name")), None)
        kb = next(int(line.split()[1]) for line in pathlib.Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
        info["memory_gib"] = round(kb / 2**20, 1)
    except (OSError, StopIteration, ValueError):
        pass
    try:
        info["load_average_start"] = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        info["load_average_start"] = None
    return info


def device_info(devices: Sequence) -> dict[str, Any]:
    """Platform, kind, count and names of ``devices``, and a GPU's memory."""
    d0 = devices[0]
    out = {"platform": d0.platform, "device_kind": getattr(d0, "device_kind", str(d0)), "count": len(devices),
           "devices": [str(d) for d in devices]}
    stats = _memory_stats(d0)
    if stats and "bytes_limit" in stats:
        out["memory_gib"] = round(stats["bytes_limit"] / 2**30, 1)
    return out


def _memory_stats(device) -> dict | None:
    try:
        return device.memory_stats()
    except Exception:  # noqa: BLE001  (CPU devices raise or return None, depending on the jaxlib)
        return None


def load_data(data=None):
    """The benchmark's data and a description of it.

    ``data``: None for Epoch AI's points (the bundled ``epoch_chinchilla``), a
    path to a CSV in Epoch's format (``Model Size``, ``Training FLOP``,
    ``loss``), a bundled data set's name (its default roles; an existing file
    of that name wins), or a :class:`ScalingData` (used as given). From a file
    or a data set the 5 highest losses are dropped, as Epoch does.
    """
    import jaxscale
    from jaxscale import datasets

    if isinstance(data, jaxscale.ScalingData):
        d, name = data, "user data"
    else:
        source = "epoch_chinchilla" if data is None else os.fspath(data)
        columns = {} if datasets.is_dataset(source) else EPOCH_COLUMNS
        d = datasets.read(source, argument="--data", **columns).drop_top(5)
        name = (f"dataset {source} (5 highest losses dropped)" if datasets.is_dataset(source)
                else "user CSV (5 highest losses dropped)")
    fp = d.fingerprint()
    if fp == EPOCH_FINGERPRINT:
        name = "Epoch AI's Chinchilla points (5 highest losses dropped)"
    return d, {"name": name, "source": str(d.source), "n_points": len(d), "fingerprint": fp}


# ----------------------------------------------------------------------------------------------------------------------
# The parts


def grid_starts(law, n: int) -> tuple[np.ndarray, str]:
    """``n`` starts from the law's default grid: the grid itself, an even subsample, or copies of it (n > grid)."""
    g = law.default_starts()
    if n == len(g):
        return g, f"the {len(g):,}-point grid"
    if n < len(g):
        return g[np.linspace(0, len(g) - 1, n).round().astype(int)], f"{n:,} evenly spaced points of the grid"
    reps = -(-n // len(g))
    return np.tile(g, (reps, 1))[:n], f"the {len(g):,}-point grid repeated to {n:,} starts"


def _bench_fit(data, sizes, repeats, dtype, reference, log) -> tuple[dict, Any]:
    import jaxscale

    law = jaxscale.laws.get("chinchilla")
    rows, best_res = [], None
    for n in sizes:
        starts, kind = grid_starts(law, n)
        t0 = time.perf_counter()
        res = jaxscale.fit(law, data, starts=starts, dtype=dtype)
        first = time.perf_counter() - t0
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            res = jaxscale.fit(law, data, starts=starts, dtype=dtype)
            times.append(time.perf_counter() - t0)
        steady = float(np.median(times)) if times else first
        row = {"n_starts": n, "starts": kind, "seconds_first_call": first, "seconds_steady": steady,
               "seconds_all": times, "fits_per_s": n / steady, "fits_per_s_incl_compile": n / first,
               "objective": res.objective, "n_at_best": res.n_at_best, "n_diverged": res.n_diverged,
               "total_iterations": int(res.starts["n_iter"].sum()), "params": res.params,
               "mixed_precision": bool(res.settings.get("mixed_precision", False))}
        rows.append(row)
        log(f"fit: {n:,} starts: {steady:.3g} s steady ({n / steady:,.0f} fits/s), {first:.3g} s incl. compile; "
            f"objective {res.objective:.10g}, {res.n_at_best} at best")
        if best_res is None or res.n_starts >= best_res.n_starts:
            best_res = res
    best = min(r["objective"] for r in rows)
    for r in rows:
        r["same_optimum"] = bool(r["objective"] <= best * (1 + SAME_RTOL))
        if reference is not None:
            r["matches_reference"] = bool(abs(r["objective"] - reference) <= SAME_RTOL * reference)
    out = {"law": "chinchilla", "objective_name": "huber", "delta": 1e-3, "starts": "Hoffmann's grid",
           "repeats": repeats, "reference_objective": reference, "sizes": rows}
    return out, best_res


#: The scipy baselines: ``epoch`` is Epoch's notebook objective (``scipy.special.logsumexp`` and ``huber``),
#: ``lean`` the same objective and gradient hand-vectorised in NumPy in one function (the fastest scipy variant
#: we could write).
SCIPY_VARIANTS = ("epoch", "lean")


def scipy_epoch_fits(N, D, L, starts, delta: float = 1e-3, *, variant: str = "epoch",
                     options: dict | None = None) -> dict[str, Any]:
    """Epoch's fit with scipy, one start at a time: L-BFGS-B (scipy's defaults), analytic gradient.

    The one scipy baseline of the project: ``jaxscale bench`` runs it in a fresh process,
    ``benchmarks/bench_fit.py`` imports it.

    Parameters
    ----------
    N, D, L
        Parameters, tokens and losses of the training runs.
    starts
        ``(n, 5)`` starts in jaxscale's coordinates ``(log_E, log_A, log_B, alpha, beta)``.
    delta
        The Huber threshold on log-loss residuals (Epoch's 1e-3).
    variant
        ``"epoch"`` (Epoch's notebook objective) or ``"lean"`` (see :data:`SCIPY_VARIANTS`).
    options
        Passed to :func:`scipy.optimize.minimize` (e.g. ``{"maxiter": 100}``).

    Returns
    -------
    dict
        ``n_starts``, ``seconds``, ``fits_per_s``, ``objective`` (the best), ``n_at_best`` (within
        :data:`SAME_RTOL` of it), ``best_theta`` and ``variant``.

    Examples
    --------
    >>> import jaxscale
    >>> d = jaxscale.demo_data()
    >>> r = scipy_epoch_fits(d.covariates["N"], d.covariates["D"], d.y, [[0.5, 6.0, 6.0, 0.3, 0.3]])
    >>> r["n_starts"], bool(r["objective"] < 0.05)
    (1, True)
    """
    from scipy.optimize import minimize
    from scipy.special import huber, logsumexp

    variant = validate.choice(variant, "variant", SCIPY_VARIANTS)
    delta = validate.positive(delta, "delta")
    starts = np.asarray(starts, dtype=float)
    if starts.ndim != 2 or starts.shape[1] != 5:
        raise ArgumentError(f"starts must be an (n, 5) array of (log_E, log_A, log_B, alpha, beta); got shape "
                            f"{starts.shape}.")
    lN, lD, lL = np.log(N), np.log(D), np.log(L)
    ones = np.ones(len(lN))

    def grad(psi, w):
        return np.array([(psi * w[2]).sum(), (psi * w[0]).sum(), (psi * w[1]).sum(),
                         -(psi * w[0] * lN).sum(), -(psi * w[1] * lD).sum()])

    def fun(p):
        e, a, b, al, be = p
        pre = logsumexp([a - al * lN, b - be * lD, e * ones], axis=0)
        return np.sum(huber(delta, pre - lL))

    def jac(p):
        e, a, b, al, be = p
        t = np.array([a - al * lN, b - be * lD, e * ones])
        pre = logsumexp(t, axis=0)
        return grad(np.clip(pre - lL, -delta, delta), np.exp(t - pre))

    def fun_and_jac(p):
        e, a, b, al, be = p
        t = np.stack([a - al * lN, b - be * lD, np.full_like(lN, e)])
        m = t.max(0)
        ex = np.exp(t - m)
        S = ex.sum(0)
        r = m + np.log(S) - lL
        ar = np.abs(r)
        f = np.where(ar <= delta, 0.5 * r * r, delta * (ar - 0.5 * delta)).sum()
        return f, grad(np.clip(r, -delta, delta), ex / S)

    if variant == "epoch":
        def call(p0):
            return minimize(fun, p0, jac=jac, method="L-BFGS-B", options=options)
    else:
        def call(p0):
            return minimize(fun_and_jac, p0, jac=True, method="L-BFGS-B", options=options)

    t0 = time.perf_counter()
    runs = [call(p0) for p0 in starts]
    dt = time.perf_counter() - t0
    fs = np.array([r.fun for r in runs])
    i = int(np.argmin(fs))
    return {"variant": variant, "n_starts": len(fs), "seconds": dt, "fits_per_s": len(fs) / dt,
            "objective": float(fs[i]), "n_at_best": int(np.sum(fs <= fs[i] * (1 + SAME_RTOL))),
            "best_theta": runs[i].x.tolist()}


def _scipy_child(path: str) -> None:
    z = np.load(path)
    print(json.dumps(scipy_epoch_fits(z["N"], z["D"], z["L"], z["starts"])))


def _scipy_in_fresh_process(data, starts) -> dict[str, Any]:
    # A fresh process with one BLAS thread: OpenBLAS's threads made L-BFGS-B ~6x slower on a busy 2-core VM
    # (12 vs 80 fits/s), and its thread count is read once, when the library loads.
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "scipy_input.npz"
        np.savez(path, N=data.covariates["N"], D=data.covariates["D"], L=data.y, starts=starts)
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
                   JAX_PLATFORMS="cpu")
        env["PYTHONPATH"] = os.pathsep.join([str(pathlib.Path(__file__).resolve().parents[1])]
                                            + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        code = "import sys; from jaxscale.bench import _scipy_child; _scipy_child(sys.argv[1])"
        r = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        tail = (r.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"the scipy baseline's process failed: {tail}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def _bench_scipy(data, fit_out, n_starts, platform) -> dict:
    if platform != "cpu":
        return {"skipped": f"the scipy baseline runs on a CPU only (this run is on {platform})"}
    if importlib.util.find_spec("scipy") is None:
        return {"skipped": "scipy not installed (pip install scipy, or the dev extra)"}
    import jaxscale

    starts, kind = grid_starts(jaxscale.laws.get("chinchilla"), n_starts)
    out = _scipy_in_fresh_process(data, starts)
    out.update(starts=kind, process="fresh Python process, OPENBLAS_NUM_THREADS=1")
    ref = max(fit_out["sizes"], key=lambda r: (r["n_starts"] == 4500, r["n_starts"]))
    out["ratio_at_n_starts"] = ref["n_starts"]
    out["ratio"] = ref["fits_per_s"] / out["fits_per_s"]
    out["ratio_incl_compile"] = ref["fits_per_s_incl_compile"] / out["fits_per_s"]
    best = min(r["objective"] for r in fit_out["sizes"])
    out["same_optimum"] = bool(abs(out["objective"] - best) <= SAME_RTOL * best)
    return out


def _bench_bootstrap(data, n, point, devices, dtype, log) -> dict:
    import jaxscale

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if point is None:
            point = jaxscale.fit("chinchilla", data, dtype=dtype)
        kw = dict(key=42, starts="warm", point=point, devices=devices, dtype=dtype)
        t0 = time.perf_counter()
        jaxscale.bootstrap("chinchilla", data, n, **kw)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        b = jaxscale.bootstrap("chinchilla", data, n, **kw)
        steady = time.perf_counter() - t0
    log(f"bootstrap: {n:,} warm resamples: {steady:.3g} s steady ({n / steady:,.0f}/s), {first:.3g} s incl. compile")
    return {"n_resamples": n, "method": "pairs", "starts": "warm (one start at the point fit)", "key": 42,
            "seconds_first_call": first, "seconds_steady": steady, "replicates_per_s": n / steady,
            "replicates_per_s_incl_compile": n / first, "n_failed": b.n_failed,
            "iterations_mean": float(b.replicates["n_iter"].mean()), "se": b.se().to_dict(),
            "warnings": [str(w.message) for w in caught]}


def _bench_nuts(data, chains, warmup, samples, devices, log) -> dict:
    if importlib.util.find_spec("numpyro") is None:
        return {"skipped": "numpyro not installed"}
    if importlib.util.find_spec("arviz") is None:
        return {"skipped": "arviz not installed (bayes.sample returns ArviZ InferenceData)"}
    import arviz as az

    from jaxscale import bayes

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        idata = bayes.sample("chinchilla", data, key=0, num_chains=chains, num_warmup=warmup, num_samples=samples,
                             devices=devices, warn=False)
        secs = time.perf_counter() - t0
        names = ["E", "A", "B", "alpha", "beta"]
        post = idata.posterior[names]
        ess, rhat = az.ess(post, method="bulk"), az.rhat(post)
    ess = {k: float(ess[k]) for k in names}
    out = {"chains": chains, "warmup": warmup, "samples": samples, "key": 0,
           "chain_method": idata.posterior.attrs.get("chain_method", "auto"), "devices": len(devices),
           "seconds": secs, "ess_bulk": ess, "min_ess_bulk": min(ess.values()),
           "ess_per_s": min(ess.values()) / secs, "max_rhat": max(float(rhat[k]) for k in names),
           "divergences": int(idata.sample_stats["diverging"].values.sum()),
           "mean_steps": float(idata.sample_stats["n_steps"].values.mean()) if "n_steps" in idata.sample_stats
           else None, "warnings": [str(w.message) for w in caught]}
    log(f"nuts: {secs:.3g} s, min bulk ESS {out['min_ess_bulk']:.0f}, {out['ess_per_s']:.1f} ESS/s")
    return out


def _bench_sbc(n, draws, devices, log) -> dict:
    if importlib.util.find_spec("numpyro") is None:
        return {"skipped": "numpyro not installed"}
    import jaxscale
    from jaxscale import bayes

    design = jaxscale.demo_data().subset(np.arange(0, 60, 2))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        res = bayes.sbc("chinchilla", design, n, key=2026, num_warmup=draws, num_samples=draws, devices=devices)
        secs = time.perf_counter() - t0
    names, counts = np.unique(res.posteriors.status, return_counts=True)
    status = {str(k): int(v) for k, v in zip(names, counts, strict=True)}
    log(f"sbc: {n} datasets in {secs:.3g} s ({n / secs:.3g}/s)")
    return {"n_datasets": n, "draws": draws, "warmup": draws, "chains": 1, "design_points": len(design),
            "key": 2026, "devices": len(devices), "seconds": secs, "datasets_per_s": n / secs, "status": status,
            "pooled_coverage": {str(k): float(v) for k, v in res.pooled_coverage().items()},
            "warnings": [str(w.message) for w in caught]}


def _guard(fn, *args):
    # A benchmark that fails in one part still reports the others (a GPU run is often a one-off).
    try:
        return fn(*args)
    except Exception as e:  # noqa: BLE001
        return {"error": f"{type(e).__name__}: {e}"}


# ----------------------------------------------------------------------------------------------------------------------
# Entry point


def _parse_parts(parts) -> list[str]:
    if isinstance(parts, str):
        parts = parts.split(",")
    parts = [p.strip() for p in parts if p.strip()]
    bad = [p for p in parts if p not in PARTS]
    if bad or not parts:
        what = f"unknown part {bad[0]!r}" if bad else "no part given"
        raise BenchError(f"{what}; expected some of {', '.join(PARTS)} (comma-separated).")
    return [p for p in PARTS if p in parts]


def _parse_sizes(sizes) -> list[int]:
    if isinstance(sizes, str):
        sizes = sizes.split(",")
    out = []
    for s in sizes:
        try:
            n = int(s)
        except (TypeError, ValueError):
            n = 0
        if n < 1 or (isinstance(s, float) and s != n):
            raise BenchError(f"sizes must be numbers of starts >= 1; got {s!r}.")
        out.append(n)
    if not out:
        raise BenchError("sizes must hold at least one number of starts.")
    return out


def run_bench(
    parts: Iterable[str] | str = PARTS,
    *,
    device: str | None = None,
    data=None,
    quick: bool = False,
    sizes: Iterable[int] | str | None = None,
    repeats: int | None = None,
    scipy_starts: int | None = None,
    bootstrap_resamples: int | None = None,
    nuts_chains: int | None = None,
    nuts_warmup: int | None = None,
    nuts_samples: int | None = None,
    sbc_datasets: int | None = None,
    sbc_draws: int | None = None,
    dtype: str | None = None,
    progress=None,
) -> BenchResult:
    """Run the standard benchmark; see the module docstring for what each part measures.

    Parameters
    ----------
    parts
        Any of ``"fit"``, ``"bootstrap"``, ``"nuts"``, ``"sbc"`` (a list or
        a comma-separated string); all by default.
    device
        ``"cpu"``, ``"gpu"`` or ``"tpu"``; default JAX's default backend. All
        its devices are used (the solver shards starts over them); NUTS
        uses one, as :func:`jaxscale.bayes.sample` does by default.
    data
        None (Epoch AI's points, bundled), a CSV path in Epoch's format, a
        bundled data set's name or a :class:`ScalingData` (see :func:`load_data`).
    quick
        Tiny settings for a smoke test (:data:`QUICK`); explicit arguments
        still win.
    sizes, repeats
        Numbers of starts for ``fit`` (default 64, 512, 4,500; above 4,500
        the grid is repeated) and timed calls per size after the compiling
        one.
    scipy_starts
        Grid starts for the scipy baseline (CPU only; 0 skips it).
    bootstrap_resamples
        Warm-started pairs resamples (default 4,000, Epoch's protocol).
    nuts_chains, nuts_warmup, nuts_samples
        NUTS settings (default 4 x (1,000 + 1,000)).
    sbc_datasets, sbc_draws
        SBC datasets and warmup = kept draws per dataset (default 32, 400).
    dtype
        ``"float64"`` (default) or ``"float32"`` for ``fit`` and ``bootstrap``.
    progress
        A callable taking one line of progress text (e.g. ``print``).

    Returns
    -------
    BenchResult
    """
    import jax

    t_start = time.perf_counter()
    parts = _parse_parts(parts)
    cfg = dict(QUICK if quick else DEFAULTS)
    given = dict(sizes=sizes, repeats=repeats, scipy_starts=scipy_starts, bootstrap_resamples=bootstrap_resamples,
                 nuts_chains=nuts_chains, nuts_warmup=nuts_warmup, nuts_samples=nuts_samples,
                 sbc_datasets=sbc_datasets, sbc_draws=sbc_draws)
    cfg.update({k: v for k, v in given.items() if v is not None})
    cfg["sizes"] = _parse_sizes(cfg["sizes"])
    cfg["repeats"] = validate.integer(cfg["repeats"], "repeats", minimum=0)
    cfg["scipy_starts"] = validate.integer(cfg["scipy_starts"], "scipy_starts", minimum=0)
    cfg["bootstrap_resamples"] = validate.integer(cfg["bootstrap_resamples"], "bootstrap_resamples", minimum=2)
    for k in ("nuts_chains", "nuts_warmup", "nuts_samples", "sbc_datasets", "sbc_draws"):
        cfg[k] = validate.integer(cfg[k], k)
    if dtype is not None:
        dtype = validate.choice(dtype, "dtype", ("float64", "float32"))
    devices = select_devices(device)
    plat = devices[0].platform
    if device is not None:
        _pin_platform(plat)
    log = progress or (lambda line: None)
    date = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    host = host_info()
    d, data_info = load_data(data)
    reference = EPOCH_OPTIMUM if data_info["fingerprint"] == EPOCH_FINGERPRINT else None
    dtype_name = dtype or ("float64" if jax.config.jax_enable_x64 else "float32")
    settings = {"parts": parts, "quick": bool(quick), "dtype": dtype_name,
                "xla_flags": os.environ.get("XLA_FLAGS", ""), **cfg}
    results: dict[str, Any] = {}
    with jax.default_device(devices[0]):
        point = None
        if "fit" in parts:
            out = _guard(_bench_fit, d, cfg["sizes"], cfg["repeats"], dtype, reference, log)
            if isinstance(out, tuple):
                out, point = out
                out["scipy"] = (_guard(_bench_scipy, d, out, cfg["scipy_starts"], plat) if cfg["scipy_starts"]
                                else {"skipped": "scipy_starts = 0"})
                if "fits_per_s" in out["scipy"]:
                    s = out["scipy"]
                    log(f"scipy: {s['n_starts']} starts, {s['fits_per_s']:.1f} fits/s; jaxscale {s['ratio']:.1f}x")
                stats = _memory_stats(devices[0])
                if stats and "peak_bytes_in_use" in stats:
                    out["peak_device_bytes"] = int(stats["peak_bytes_in_use"])
            results["fit"] = out
        if "bootstrap" in parts:
            results["bootstrap"] = _guard(_bench_bootstrap, d, cfg["bootstrap_resamples"], point, devices, dtype, log)
        if "nuts" in parts:
            results["nuts"] = _guard(_bench_nuts, d, cfg["nuts_chains"], cfg["nuts_warmup"], cfg["nuts_samples"],
                                     devices[:1], log)
        if "sbc" in parts:
            results["sbc"] = _guard(_bench_sbc, cfg["sbc_datasets"], cfg["sbc_draws"], devices, log)
    try:
        host["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        pass
    return BenchResult(date=date, device=device_info(devices), host=host, versions=versions(), data=data_info,
                       settings=settings, results=results, seconds=time.perf_counter() - t_start)
