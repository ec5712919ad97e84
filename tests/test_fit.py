import json

import jax
import numpy as np
import pandas as pd
import pytest

import jaxscale
from jaxscale import FitError, LawError
from jaxscale.errors import ArgumentError

# Epoch AI (Besiroglu et al. 2024), data_analysis.ipynb cell 18 "Replicate exactly":
# summed Huber (delta 1e-3) over Hoffmann's 4,500-start grid, 240 points.
EPOCH_HUBER = dict(E=1.817236, A=477.8417, B=2143.8638, alpha=0.347313, beta=0.367183)
EPOCH_HUBER_OBJECTIVE = 0.0010182740
# Epoch's headline estimates (paper Table 1): Huber likelihood with a free scale.
EPOCH_HEADLINE = dict(E=1.81686, A=482.006, B=2085.434, alpha=0.34781, beta=0.36585)


@pytest.fixture(scope="module")
def epoch_huber_fit(epoch_data):
    return jaxscale.fit("chinchilla", epoch_data)


def test_epoch_summed_huber_reproduction(epoch_huber_fit):
    """Each parameter and the objective within 0.1% of Epoch's published values.

    0.1% (the issue's tolerance) is far above float64 round-off and far below
    the bootstrap SEs (e.g. 26% for A); Epoch's scipy run stopped at its default
    tolerance, so agreement to about 1e-4 is all one can ask.
    """
    res = epoch_huber_fit
    assert res.n_points == 240 and res.n_starts == 4500
    for k, v in EPOCH_HUBER.items():
        np.testing.assert_allclose(res.params[k], v, rtol=1e-3, err_msg=k)
    np.testing.assert_allclose(res.objective, EPOCH_HUBER_OBJECTIVE, rtol=1e-3)
    # At least as good as the published optimum (an optimiser may only do better).
    assert res.objective <= 0.0010182740346 * (1 + 1e-9)
    assert res.n_at_best >= 100
    assert res.n_diverged == 0
    # 15 of Hoffmann's 4,500 starts (log B = 25 with one exponent 0) run off to log A ~ 5e3 and an exponent
    # ~1e5: a finite objective, but A = exp(5e3) is not a number; they are flagged, never "converged".
    assert set(res.starts["status"]) <= {"converged", "max_iter", "nonfinite"}
    assert res.n_nonfinite <= 30


def test_epoch_likelihood_reproduction(epoch_data):
    """Epoch's headline estimates (Huber likelihood, free scale) within 0.1%; log sigma = -12.2666."""
    res = jaxscale.fit("chinchilla", epoch_data, objective="likelihood")
    for k, v in EPOCH_HEADLINE.items():
        np.testing.assert_allclose(res.params[k], v, rtol=1e-3, err_msg=k)
    np.testing.assert_allclose(np.log(res.nuisance["sigma"]), -12.2666, atol=1e-3)
    # Epoch's log-likelihood on 240 points: 879.77.
    np.testing.assert_allclose(res.log_likelihood, 879.77, atol=0.01)


def test_epoch_likelihood_of_hoffmann_values(epoch_data):
    """Scale re-fitted per parameter set, as Epoch's LR test: 837.78 (unrounded), 562.25 (rounded)."""
    ll = -jaxscale.objective("chinchilla", epoch_data, jaxscale.HOFFMANN_UNROUNDED, objective="likelihood")
    np.testing.assert_allclose(ll, 837.78, atol=0.01)
    rounded = dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)
    ll_r = -jaxscale.objective("chinchilla", epoch_data, rounded, objective="likelihood")
    np.testing.assert_allclose(ll_r, 562.25, atol=0.01)


def test_muennighoff_objective_at_published_parameters():
    """Summed Huber at the published fit on the 182 runs equals their reported minimum, 0.0158259."""
    from helpers import MUENNIGHOFF

    data = jaxscale.datasets.scaling_data("muennighoff")  # N=params, D=tokens, U=unique_tokens, loss=val_loss
    assert len(data) == 182
    value = jaxscale.objective("data_constrained", data, MUENNIGHOFF)
    np.testing.assert_allclose(value, 0.015825937, rtol=1e-5)
    # Refitting R_D, R_N with the base law fixed can only do as well or better
    # (the datablations README reports 0.0158074 with scipy).
    fixed = {k: MUENNIGHOFF[k] for k in ("E", "A", "B", "alpha", "beta")}
    res = jaxscale.fit("data_constrained", data, fixed=fixed)
    assert res.objective <= value + 1e-12
    assert res.objective == pytest.approx(0.0158074, rel=1e-3)
    for k, v in fixed.items():
        assert res.params[k] == pytest.approx(v, rel=1e-12)


def test_same_key_same_result_and_different_key_differs():
    d = jaxscale.demo_data()
    a = jaxscale.fit("chinchilla", d, starts=64, key=jax.random.key(3))
    b = jaxscale.fit("chinchilla", d, starts=64, key=jax.random.key(3))
    c = jaxscale.fit("chinchilla", d, starts=64, key=jax.random.key(4))
    pd.testing.assert_frame_equal(a.starts, b.starts)
    assert a.params == b.params
    assert not np.allclose(a.starts["start_alpha"], c.starts["start_alpha"])


def test_chunking_gives_identical_results():
    d = jaxscale.demo_data()
    a = jaxscale.fit("chinchilla", d, starts=300, key=1)
    b = jaxscale.fit("chinchilla", d, starts=300, key=1, chunk_size=128)
    pd.testing.assert_frame_equal(a.starts, b.starts)


def test_memory_limit_chunks_and_too_small_budget_errors():
    d = jaxscale.demo_data()
    a = jaxscale.fit("chinchilla", d, starts=300, key=1)
    b = jaxscale.fit("chinchilla", d, starts=300, key=1, memory_limit=2_500_000)
    assert b.settings["chunk_size"] < 300
    pd.testing.assert_frame_equal(a.starts, b.starts)
    with pytest.raises(FitError, match=r"memory_limit=1000 bytes is too small: one block of 64 starts"):
        jaxscale.fit("chinchilla", d, starts=300, key=1, memory_limit=1000)


def test_float32_fit_is_correct():
    d = jaxscale.demo_data()
    r64 = jaxscale.fit("chinchilla", d)
    r32 = jaxscale.fit("chinchilla", d, dtype="float32")
    assert r32.settings["dtype"] == "float32"
    for k in ("E", "alpha", "beta"):
        np.testing.assert_allclose(r32.params[k], r64.params[k], rtol=2e-3, err_msg=k)
    np.testing.assert_allclose(r32.objective, r64.objective, rtol=1e-3)


def _linear_law():
    """A deliberately fragile law: log(a + b log x) is NaN wherever a + b log x <= 0."""
    import jax.numpy as jnp

    return jaxscale.laws.Law(
        name="test_linear_log", log_predict=lambda t, lx: jnp.log(t[0] + t[1] * lx[0]),
        params=(jaxscale.laws.Param("a", grid=(1.0, 5.0)), jaxscale.laws.Param("b", grid=(-0.05, 0.0))),
        covariates=("x",))


def test_diverged_starts_are_flagged_and_excluded():
    x = np.logspace(1, 8, 30)
    d = jaxscale.ScalingData.from_arrays(x=x, loss=4.0 - 0.1 * np.log(x))
    law = _linear_law()
    # b = -10 makes every prediction negative: the objective is NaN at the start.
    bad = np.array([[1.0, -10.0], [-5.0, 0.0]])
    good = np.array([[3.0, 0.0], [5.0, -0.05]])
    res = jaxscale.fit(law, d, starts=np.concatenate([bad, good]))
    assert list(res.starts["status"][:2]) == ["diverged", "diverged"]
    assert np.all(np.isinf(res.starts["objective"][:2]))
    assert res.n_diverged == 2 and np.isfinite(res.objective)
    np.testing.assert_allclose([res.params["a"], res.params["b"]], [4.0, -0.1], rtol=1e-6)
    with pytest.raises(FitError, match="All 2 starts diverged"):
        jaxscale.fit(law, d, starts=bad)


def test_trial_steps_into_nan_are_rejected_not_propagated():
    """A start near the NaN region: full LM steps overshoot into it, get rejected, and the start still converges."""
    x = np.logspace(1, 8, 30)
    d = jaxscale.ScalingData.from_arrays(x=x, loss=4.0 - 0.2 * np.log(x))  # close to the boundary at large x
    res = jaxscale.fit(_linear_law(), d, starts=np.array([[1.0, 0.0], [6.0, -0.3]]))
    assert res.n_diverged == 0
    np.testing.assert_allclose([res.params["a"], res.params["b"]], [4.0, -0.2], rtol=1e-6)


def test_max_iter_status_is_reported():
    res = jaxscale.fit("chinchilla", jaxscale.demo_data(), starts=16, key=0, max_iter=2)
    assert (res.starts["status"] == "max_iter").sum() > 0
    from jaxscale.solver import SolverConfig

    assert res.starts["n_iter"].max() <= SolverConfig().inner  # whole rounds of `inner` iterations


def test_start_grid_of_wrong_shape():
    d = jaxscale.demo_data()
    with pytest.raises(LawError, match=r"starts must have shape \(n_starts, 5\) for law 'chinchilla'.*got shape \(3, 4\)"):
        jaxscale.fit("chinchilla", d, starts=np.zeros((3, 4)))
    with pytest.raises(LawError, match=r"got shape \(2, 5, 1\)"):
        jaxscale.fit("chinchilla", d, starts=np.zeros((2, 5, 1)))
    with pytest.raises(ArgumentError, match="starts must be 'grid'"):
        jaxscale.fit("chinchilla", d, starts="sobol")
    with pytest.raises(ArgumentError, match=r"starts must be an integer >= 1; got 0"):
        jaxscale.fit("chinchilla", d, starts=0)
    # a start count bounded by host memory, not numpy's "Maximum allowed dimension exceeded"
    with pytest.raises(ArgumentError, match=r"starts=99999999999999999999 needs about .* GiB of host memory"):
        jaxscale.fit("chinchilla", d, starts=99999999999999999999)


def test_random_starts_default_to_key_0():
    """Random starts without a key use the documented default key 0 (same key, same result)."""
    from jaxscale.fit import make_problem

    d = jaxscale.demo_data()
    default = make_problem("chinchilla", d, starts=16)
    np.testing.assert_array_equal(default.theta0, make_problem("chinchilla", d, starts=16, key=0).theta0)
    typed = make_problem("chinchilla", d, starts=16, key=jax.random.key(0))
    np.testing.assert_array_equal(default.theta0, typed.theta0)
    assert not np.array_equal(default.theta0, make_problem("chinchilla", d, starts=16, key=1).theta0)


@pytest.mark.parametrize("key", ["abc", 1.5, True, 2**64, -1, np.zeros(3, np.uint32)])
def test_bad_keys_are_rejected_before_any_work(key):
    with pytest.raises(ArgumentError, match=r"key must be an int seed in \[0, 2\*\*64\) or a jax.random.key"):
        jaxscale.fit("chinchilla", jaxscale.demo_data(), key=key)


@pytest.mark.parametrize("fixed, error", [
    ({"E": -1.0}, r"fixed E=-1 is outside the support of law 'chinchilla''s parameter E: it must be > 0"),
    ({"E": "x"}, r"fixed E must be a finite number; got 'x'"),
    ({"E": np.nan}, r"fixed E must be a finite number; got nan"),
    ({"alpha": -0.3}, r"fixed alpha=-0.3 is outside the support .* it must be > 0"),
    ({"gamma": 1.0}, r"fixed names unknown parameter\(s\) \['gamma'\]"),
])
def test_fixed_parameter_bad_value(fixed, error):
    with pytest.raises(ArgumentError, match=error):
        jaxscale.fit("chinchilla", jaxscale.demo_data(), fixed=fixed)


def test_numpy_scalars_are_accepted():
    """np.float32 delta and NumPy fixed values are numbers like any other (set-up only: no solve needed)."""
    from jaxscale.fit import make_problem

    p = make_problem("chinchilla", jaxscale.demo_data(), delta=np.float32(1e-3), fixed={"E": np.float32(1.5)},
                     max_iter=np.int64(50))
    assert p.objective.delta == float(np.float32(1e-3)) and p.fixed == {"E": 1.5} and p.max_iter == 50
    assert p.free.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0] and np.all(p.theta0[:, 0] == np.log(1.5))


def test_bad_settings():
    d = jaxscale.demo_data()
    with pytest.raises(ArgumentError, match=r"objective must be one of \['huber', 'squared', 'likelihood'\]; got 'l1'"):
        jaxscale.fit("chinchilla", d, objective="l1")
    with pytest.raises(ArgumentError, match="delta must be > 0; got 0"):
        jaxscale.fit("chinchilla", d, delta=0)
    with pytest.raises(ArgumentError, match="dtype must be 'float32' or 'float64'; got 'bogus'"):
        jaxscale.fit("chinchilla", d, dtype="bogus")
    with pytest.raises(ArgumentError, match="dtype must be"):
        jaxscale.fit("chinchilla", d, dtype="int32")
    with pytest.raises(ArgumentError, match="max_iter must be an integer >= 1; got 0"):
        jaxscale.fit("chinchilla", d, max_iter=0)
    with pytest.raises(ArgumentError, match="ftol must be a finite number; got nan"):
        jaxscale.fit("chinchilla", d, ftol=float("nan"))
    with pytest.raises(ArgumentError, match="memory_limit must be an integer >= 1; got -5"):
        jaxscale.fit("chinchilla", d, memory_limit=-5)


def test_starts_running_off_to_infinity_are_nonfinite_not_converged(tmp_path):
    """log A = 1e3 is a finite start, but exp(1e3) = inf: such a start is flagged and never the best fit."""
    d = jaxscale.demo_data()
    with pytest.raises(FitError, match=r"All 4 starts diverged: 4 of 4 nonfinite \(the parameters ran off to "
                                       r"non-finite values"):
        jaxscale.fit("chinchilla", d, starts=np.full((4, 5), 1e3))
    law = jaxscale.laws.get("chinchilla")
    good = law.from_natural(jaxscale.HOFFMANN_UNROUNDED)
    res = jaxscale.fit(law, d, starts=np.concatenate([np.full((2, 5), 1e3), good[None]]))
    assert list(res.starts["status"]) == ["nonfinite", "nonfinite", "converged"]
    assert res.n_nonfinite == 2 and res.n_diverged == 0 and res.status == "converged"
    assert res.status_counts == {"converged": 1, "nonfinite": 2}
    assert all(np.isfinite(v) for v in res.params.values())
    res.to_json(tmp_path / "fit.json")
    text = (tmp_path / "fit.json").read_text()
    assert "Infinity" not in text and "NaN" not in text
    doc = json.loads(text)
    assert doc["status"] == "converged" and doc["status_counts"]["nonfinite"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["fit.json"]  # written atomically: no temporary left behind


def test_result_json_and_predict(tmp_path, epoch_huber_fit, epoch_data):
    res = epoch_huber_fit
    res.to_json(tmp_path / "fit.json")
    out = json.loads((tmp_path / "fit.json").read_text())
    assert out["law"] == "chinchilla"
    assert set(out["params"]) == {"E", "A", "B", "alpha", "beta"}
    assert out["n_points"] == 240 and out["n_starts"] == 4500
    assert out["settings"]["objective"] == "huber" and out["settings"]["delta"] == 1e-3
    assert out["data_fingerprint"] == epoch_data.fingerprint()
    pred = res.predict(epoch_data)
    assert pred.shape == (240,)
    # Summed Huber of log residuals recomputed by hand equals the reported objective.
    r = np.log(pred) - np.log(epoch_data.y)
    a = np.abs(r)
    hub = np.where(a <= 1e-3, 0.5 * r * r, 1e-3 * (a - 0.5e-3)).sum()
    np.testing.assert_allclose(hub, res.objective, rtol=1e-9)


_SHARD_SCRIPT = """
import sys, numpy as np, jax, jaxscale
res = jaxscale.fit("chinchilla", jaxscale.demo_data(), starts=600, key=5)
cols = list(res.law.fit_names) + ["objective", "n_iter"]
np.save(sys.argv[1], res.starts[cols].to_numpy())
print(jax.local_device_count())
"""


@pytest.mark.slow  # ~10 s: kept out of the default run, in CI's `-m slow`
def test_sharded_over_host_devices_gives_identical_results(tmp_path):
    """Starts sharded over 2 XLA host devices: bit-identical per-start results to 1 device."""
    import os
    import subprocess
    import sys

    outs = {}
    for n in (1, 2):
        env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={n}")
        path = tmp_path / f"starts_{n}.npy"
        r = subprocess.run([sys.executable, "-c", _SHARD_SCRIPT, str(path)], env=env, capture_output=True, text=True,
                           timeout=600)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == str(n)
        outs[n] = np.load(path)
    np.testing.assert_array_equal(outs[1], outs[2])


def test_set_host_device_count_edits_xla_flags(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_foo=1 --xla_force_host_platform_device_count=8")
    jaxscale.set_host_device_count(3)
    import os

    assert os.environ["XLA_FLAGS"] == "--xla_cpu_foo=1 --xla_force_host_platform_device_count=3"
    with pytest.raises(ValueError, match="needs an integer n >= 1"):
        jaxscale.set_host_device_count(0)


def test_numpy_rng_is_seeded_by_the_key_words():
    """Host-side draws: an int seed and jax.random.key(seed) give the same stream; another key another stream."""
    from jaxscale.fit import key_data, numpy_rng

    for seed in (0, 7, 2**40 + 3):
        np.testing.assert_array_equal(key_data(seed), np.asarray(jax.random.key_data(jax.random.key(seed))))
        np.testing.assert_array_equal(numpy_rng(seed).uniform(size=4), numpy_rng(jax.random.key(seed)).uniform(size=4))
    assert not np.array_equal(numpy_rng(1).uniform(size=4), numpy_rng(2).uniform(size=4))
