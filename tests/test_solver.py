"""The batched solver's two fast paths: fused Jacobians and mixed precision."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxscale
from helpers import LAW_NAMES, case, synthetic
from jaxscale.errors import ArgumentError
from jaxscale.objectives import make_objective
from jaxscale.solver import MESSAGES, STATUS_NAMES, SolverConfig, Status, _evaluate, flag_nonfinite

FUSED = [n for n in LAW_NAMES if jaxscale.laws.get(n).log_predict_jac is not None]


def _design(name, n_starts=7, seed=0):
    law, p, cov, *_ = case(name)
    logx = jnp.log(jnp.stack([jnp.asarray(cov[c], float) for c in law.covariates], 1))
    theta0 = np.asarray(law.from_natural(p))
    rng = np.random.default_rng(seed)
    # near the truth, and far away as the start grid is (Hoffmann's reaches log A = 25, exponents 0..2)
    theta = np.concatenate([theta0 + 0.1 * rng.normal(size=(n_starts, law.n_params)),
                            law.default_starts()[rng.choice(len(law.default_starts()), n_starts)]])
    return law, jnp.asarray(theta), logx


def test_fused_laws_are_listed():
    assert {"chinchilla", "power"} <= set(FUSED)


@pytest.mark.parametrize("name", FUSED)
def test_fused_jacobian_matches_autodiff(name):
    law, theta, logx = _design(name)
    cols = tuple(theta[:, k:k + 1] for k in range(law.n_params))
    lp, J = law.log_predict_jac(cols, tuple(logx[:, k] for k in range(logx.shape[1])))
    point = jax.value_and_grad(law.log_predict)
    lp_ref, J_ref = jax.vmap(jax.vmap(point, in_axes=(None, 0)), in_axes=(0, None))(theta, logx)
    np.testing.assert_allclose(lp, lp_ref, rtol=1e-13, atol=1e-13)
    assert len(J) == law.n_params
    for k in range(law.n_params):
        np.testing.assert_allclose(J[k], J_ref[..., k], rtol=1e-12, atol=1e-12, err_msg=law.fit_names[k])


@pytest.mark.parametrize("objective", ["huber", "squared", "likelihood"])
@pytest.mark.parametrize("name", FUSED)
def test_solver_evaluation_paths_agree(name, objective):
    """Objective, gradient and Hessian: fused planes == generic (block, points, P) path, with bootstrap weights
    (zeros included) and a fixed parameter."""
    law, theta, logx = _design(name)
    generic = law._replace(log_predict_jac=None)
    logy = jax.vmap(law.log_predict, in_axes=(None, 0))(theta[0] + 0.05, logx)
    obj = make_objective(objective, 1e-3)
    free = jnp.ones(law.n_params).at[0].set(0.0)
    weight = jnp.asarray(np.random.default_rng(1).poisson(1.0, (theta.shape[0], logx.shape[0])), float)
    for w in (None, weight):
        a = _evaluate(law, obj, theta, logx, logy, w, free, 0.1)
        b = _evaluate(generic, obj, theta, logx, logy, w, free, 0.1)
        for x, y, what in zip(a, b, ("f", "g", "H", "log_sigma"), strict=True):
            np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-12 * float(jnp.max(jnp.abs(y))), err_msg=what)


def test_mixed_precision_reaches_the_float64_optimum():
    d = jaxscale.demo_data()
    starts = np.asarray(jaxscale.laws.get("chinchilla").default_starts())[::9]  # 500 grid points, spread out
    pure = jaxscale.fit("chinchilla", d, starts=starts, mixed_precision=False)
    mixed = jaxscale.fit("chinchilla", d, starts=starts, mixed_precision=True)
    assert (pure.settings["mixed_precision"], mixed.settings["mixed_precision"]) == (False, True)
    # The same float64 optimum, to the solver's tolerances (not float32's ~1e-7).
    np.testing.assert_allclose(mixed.objective, pure.objective, rtol=1e-10)
    for k in pure.params:
        np.testing.assert_allclose(mixed.params[k], pure.params[k], rtol=1e-5, err_msg=k)
    assert mixed.n_at_best >= 0.8 * pure.n_at_best
    assert mixed.n_diverged == pure.n_diverged == 0
    assert set(mixed.starts["status"]) <= {"converged", "max_iter"}


@pytest.mark.parametrize("name", FUSED)
def test_mixed_precision_matches_float64_for_every_fused_law(name):
    law, _, data, kw, _ = synthetic(name, noise=0.01)
    logx, logy = data.design(law.covariates, law.name)
    grid = law.default_starts(logx, logy)
    starts = grid[np.random.default_rng(0).choice(len(grid), 256)]
    pure = jaxscale.fit(law, data, starts=starts, mixed_precision=False, **kw)
    mixed = jaxscale.fit(law, data, starts=starts, mixed_precision=True, **kw)
    np.testing.assert_allclose(mixed.objective, pure.objective, rtol=1e-10)
    for k in pure.params:
        np.testing.assert_allclose(mixed.params[k], pure.params[k], rtol=1e-5, err_msg=k)


def test_mixed_precision_default_and_bad_values():
    d = jaxscale.demo_data()
    assert jaxscale.fit("chinchilla", d, starts=64, key=0).settings["mixed_precision"] is False  # few starts
    kaplan = jaxscale.laws.get("kaplan")  # no fused Jacobian: float32 would not pay
    many = np.repeat(kaplan.default_starts(), -(-2048 // len(kaplan.default_starts())), 0)
    assert jaxscale.fit(kaplan, d, starts=many).settings["mixed_precision"] is False
    assert jaxscale.fit("chinchilla", d, starts=64, key=0, dtype="float32").settings["mixed_precision"] is False
    with pytest.raises(ArgumentError, match="mixed_precision=True needs dtype float64"):
        jaxscale.fit("chinchilla", d, starts=64, key=0, dtype="float32", mixed_precision=True)
    with pytest.raises(ArgumentError, match="mixed_precision must be True, False or None; got 'yes'"):
        jaxscale.fit("chinchilla", d, starts=64, key=0, mixed_precision="yes")


@pytest.mark.parametrize("mixed", [False, True])
def test_max_iter_caps_every_start_across_phases(mixed):
    res = jaxscale.fit("chinchilla", jaxscale.demo_data(), starts=64, key=0, max_iter=5, mixed_precision=mixed)
    assert res.starts["n_iter"].max() <= 5
    assert (res.starts["status"] == "max_iter").sum() > 0


def test_start_beyond_float32_range_is_solved_in_float64():
    """A start that overflows float32 is 'diverged' in the float32 phase only: the float64 phase solves it from
    its start, as a pure float64 fit would."""
    d = jaxscale.demo_data()
    law = jaxscale.laws.get("chinchilla")
    starts = np.array([law.from_natural(jaxscale.HOFFMANN_UNROUNDED), [0.5, 1e39, 7.0, 0.3, 0.3]])
    pure = jaxscale.fit(law, d, starts=starts, mixed_precision=False)
    mixed = jaxscale.fit(law, d, starts=starts, mixed_precision=True)
    assert list(mixed.starts["status"]) == list(pure.starts["status"])
    assert mixed.starts["status"][1] != "diverged" and np.isfinite(mixed.starts["objective"][1])
    np.testing.assert_allclose(mixed.objective, pure.objective, rtol=1e-10)


@pytest.mark.slow  # ~10 s: kept out of the default run, in CI's `-m slow`
def test_bootstrap_mixed_precision_default():
    d = jaxscale.demo_data()
    point = jaxscale.fit("chinchilla", d, starts=64, key=0)
    warm = jaxscale.bootstrap("chinchilla", d, 40, key=0, starts="warm", point=point)
    assert warm.settings["mixed_precision"] is False  # warm starts: a float32 phase would only add iterations
    both = jaxscale.bootstrap("chinchilla", d, 40, key=0, starts="warm", point=point, mixed_precision=True)
    assert both.settings["mixed_precision"] is True and both.n_failed == warm.n_failed == 0
    np.testing.assert_allclose(both.summary()["se"], warm.summary()["se"], rtol=1e-3)


def test_solver_config_is_hashable_with_approach_dtype():
    assert hash(SolverConfig(approach_dtype="float32")) != hash(SolverConfig())


def test_status_codes_keep_their_integers_and_explain_themselves():
    """The codes results were written with (0 converged, 1 max_iter, 2 diverged, 4 skipped), plus 3 nonfinite."""
    assert {s.label: int(s) for s in Status} == {"converged": 0, "max_iter": 1, "diverged": 2, "nonfinite": 3,
                                                 "skipped": 4}
    assert STATUS_NAMES == {0: "converged", 1: "max_iter", 2: "diverged", 3: "nonfinite", 4: "skipped"}
    assert set(MESSAGES) == set(Status) and all(Status(k).message == v for k, v in MESSAGES.items())
    assert "raise max_iter" in Status.MAX_ITER.message


def test_flag_nonfinite_checks_coordinates_and_natural_values():
    law = jaxscale.laws.get("chinchilla")
    theta = np.array([[0.5, 6.0, 6.0, 0.3, 0.3],   # fine
                      [0.5, 1e3, 6.0, 0.3, 0.3],   # finite coordinate, A = exp(1e3) = inf
                      [0.5, 6.0, 6.0, np.nan, 0.3],  # NaN coordinate
                      [0.5, 1e3, 6.0, 0.3, 0.3],   # diverged already: keeps its code
                      [-900.0, 6.0, 6.0, 0.3, 0.3]])  # E = exp(-900) = 0 is finite: a law that needs no floor
    status = np.array([Status.CONVERGED, Status.MAX_ITER, Status.CONVERGED, Status.DIVERGED, Status.CONVERGED])
    assert flag_nonfinite(law, theta, status).tolist() == [0, 3, 3, 2, 0]
