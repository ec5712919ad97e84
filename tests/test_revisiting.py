"""Alabdulmohsin et al.'s estimators M1-M4 (jaxscale.laws._revisiting): M4's implicit solve, recovery, CLI, bayes,
bad input. The generic law checks (purity, gradients, noise-free recovery) run on m1-m4 in tests/test_laws.py."""

import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from scipy.optimize import brentq

import jaxscale
from jaxscale.cli import main
from jaxscale.errors import DataError, LawError
from jaxscale.laws._revisiting import m4_check, m4_solve

M4_TRUE = dict(eps_inf=0.2, eps_0=1.0, beta=5.0, c=-0.3, alpha=1.5)


def _m4_data(p=M4_TRUE, noise=0.0, n=30, seed=0):
    x = np.logspace(0, 9, n)
    y = jaxscale.laws.get("m4").predict(p, x=x)
    if noise:
        y = y * np.exp(noise * np.random.default_rng(seed).standard_normal(n))
    return x, y


def test_m4_solve_matches_a_scipy_root_to_1e_12():
    """The root of log sigmoid(z) - alpha log sigmoid(-z) = r against brentq (xtol 1e-14) over r in [-40, 40]
    and alpha in [1e-3, 10]: the bracket always holds the root, so 40 safeguarded Newton steps reach it to
    rounding (|dz| <= 1e-12 (1 + |z|), float64)."""
    rs, alphas = np.linspace(-40.0, 40.0, 17), np.array([1e-3, 0.05, 0.5, 1.0, 2.0, 10.0])
    R, A = (m.ravel() for m in np.meshgrid(rs, alphas))
    z = np.asarray(jax.jit(jax.vmap(m4_solve))(jnp.asarray(R), jnp.asarray(A)))

    def h(t, r, a):
        return -np.logaddexp(0.0, -t) + a * np.logaddexp(0.0, t) - r

    for zi, r, a in zip(z, R, A):
        lo, hi = min(r, r / a) - 10.0, max(r, r / a) + 10.0
        ref = brentq(h, lo, hi, args=(r, a), xtol=1e-14, rtol=1e-15, maxiter=500)
        assert abs(zi - ref) <= 1e-12 * (1 + abs(ref)), (r, a, zi, ref)


def test_m4_prediction_solves_the_papers_equation():
    """The predicted eps solves (eps - eps_inf) / (eps_0 - eps)^alpha = beta x^c: against brentq on the equation
    itself, in eps, to rtol 1e-12."""
    law = jaxscale.laws.get("m4")
    for p in (M4_TRUE, dict(eps_inf=0.05, eps_0=0.999, beta=40.0, c=-0.25, alpha=0.3),
              dict(eps_inf=1.5, eps_0=4.0, beta=0.5, c=-0.6, alpha=3.0)):
        x = np.logspace(0, 10, 11)
        eps = law.predict(p, x=x)
        for xi, e in zip(x, eps):
            f = p["beta"] * xi ** p["c"]
            g = lambda v: np.log(v - p["eps_inf"]) - p["alpha"] * np.log(p["eps_0"] - v) - np.log(f)  # noqa: E731
            span = p["eps_0"] - p["eps_inf"]
            ref = brentq(g, p["eps_inf"] + 1e-15 * span, p["eps_0"] - 1e-15 * span, xtol=1e-16, rtol=1e-15)
            assert e == pytest.approx(ref, rel=1e-12)


def test_m4_gradient_and_hessian_match_finite_differences():
    """First and second derivatives of the log prediction in every fitting coordinate (the implicit function
    theorem through custom_jvp) against central differences of the value and of the gradient, float64, h = 1e-5:
    rtol 1e-6 for the gradient, 1e-5 for the Hessian (truncation error ~h^2 times third derivatives)."""
    law = jaxscale.laws.get("m4")
    theta = jnp.asarray(law.from_natural(M4_TRUE))
    logx = jnp.array([[0.0], [5.0], [18.0]])  # near eps_0, mid-curve, on the power-law tail
    over_x = functools.partial(jax.vmap, in_axes=(None, 0))
    f = jax.jit(jax.vmap(over_x(law.log_predict), in_axes=(0, None)))  # (thetas, logx) -> (T, n)
    g = jax.jit(jax.vmap(over_x(jax.grad(law.log_predict)), in_axes=(0, None)))
    H = np.asarray(jax.jit(over_x(jax.hessian(law.log_predict)))(theta, logx))
    h = 1e-5
    plus, minus = theta + h * jnp.eye(law.n_params), theta - h * jnp.eye(law.n_params)
    fd = (np.asarray(f(plus, logx)) - np.asarray(f(minus, logx))) / (2 * h)  # (P, n)
    np.testing.assert_allclose(np.asarray(g(theta[None], logx))[0], fd.T, rtol=1e-6, atol=1e-10)
    fd2 = (np.asarray(g(plus, logx)) - np.asarray(g(minus, logx))) / (2 * h)  # (P, n, P)
    np.testing.assert_allclose(H, fd2.transpose(1, 0, 2), rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("name, p, x", [
    pytest.param("m1", dict(beta=3.0, c=-0.3), np.logspace(3, 9, 20), marks=pytest.mark.slow),
    pytest.param("m3", dict(beta=2.0, c=-0.4, gamma=1e-7), np.logspace(3, 10, 30), marks=pytest.mark.slow),
    ("m4", M4_TRUE, np.logspace(0, 9, 30)),
], ids=["m1", "m3", "m4"])
def test_recovers_parameters_from_noisy_curves(name, p, x):
    """0.5% multiplicative noise on a 20-30 point curve: every parameter within 10% (m4's alpha and eps_inf are
    the least determined; measured errors are 0.2-4%)."""
    law = jaxscale.laws.get(name)
    y = law.predict(p, x=x) * np.exp(0.005 * np.random.default_rng(1).standard_normal(x.size))
    res = jaxscale.fit(law, jaxscale.ScalingData.from_arrays(x=x, loss=y))
    for k, v in p.items():
        assert res.params[k] == pytest.approx(v, rel=0.1), k


def test_m2_is_the_power_law():
    """m2 is jaxscale's power law under another name: the same function, the same fit."""
    m2, power = jaxscale.laws.get("m2"), jaxscale.laws.get("power")
    assert m2.log_predict is power.log_predict and m2.params == power.params and m2.name == "m2"
    p = dict(E=0.3, A=5.0, alpha=0.3)
    x = np.logspace(3, 9, 7)
    np.testing.assert_array_equal(m2.predict(p, x=x), power.predict(p, x=x))


def test_cli_fit_m4(tmp_path, capsys):
    x, y = _m4_data()
    csv = tmp_path / "curve.csv"
    pd.DataFrame({"examples": x, "error": y}).to_csv(csv, index=False)
    out = tmp_path / "fit.json"
    rc = main(["fit", str(csv), "--law", "m4", "--col", "x=examples", "--col", "loss=error", "--fix", "eps_0=1.0",
               "--json", str(out)])
    assert rc == 0
    assert "eps_inf" in capsys.readouterr().out
    res = json.loads(out.read_text())
    assert res["law"] == "m4" and res["params"]["eps_0"] == 1.0
    for k, v in M4_TRUE.items():
        assert res["params"][k] == pytest.approx(v, rel=1e-4), k


def test_cli_fit_m4_loss_above_fixed_eps_0_is_one_line(tmp_path, capsys):
    x, y = _m4_data()
    csv = tmp_path / "curve.csv"
    pd.DataFrame({"examples": x, "error": y}).to_csv(csv, index=False)
    rc = main(["fit", str(csv), "--law", "m4", "--col", "x=examples", "--col", "loss=error", "--fix", "eps_0=0.7"])
    err = capsys.readouterr().err
    assert rc != 0 and "eps_0" in err and "row 0" in err and "Traceback" not in err


@pytest.mark.slow
def test_bayes_m1_posterior_covers_the_truth():
    """A short NUTS run (2 chains x 200) on a noisy M1 curve: the 95% interval of each parameter holds the truth."""
    bayes = pytest.importorskip("jaxscale.bayes")
    x = np.logspace(3, 9, 20)
    p = dict(beta=3.0, c=-0.3)
    y = jaxscale.laws.get("m1").predict(p, x=x) * np.exp(0.01 * np.random.default_rng(2).standard_normal(20))
    post = bayes.sample("m1", jaxscale.ScalingData.from_arrays(x=x, loss=y), key=0, warn=False, num_chains=2,
                        num_warmup=200, num_samples=200).posterior
    for k, v in p.items():
        lo, hi = np.quantile(post[k].values, [0.025, 0.975])
        assert lo < v < hi, (k, lo, hi)


# --- bad input -----------------------------------------------------------------------------------------------------
def test_predict_with_eps_0_not_above_eps_inf_is_a_law_error():
    law = jaxscale.laws.get("m4")
    with pytest.raises(LawError, match=r"eps_0 > eps_inf.*eps_inf=0.5, eps_0=0.5"):
        law.predict(dict(M4_TRUE, eps_inf=0.5, eps_0=0.5), x=[10.0])


@pytest.mark.parametrize("fixed, match", [
    ({"eps_0": 0.7}, r"loss row 0 = 0.76\d* is >= the fixed eps_0 = 0.7 \(\d+ such rows\)"),
    ({"eps_inf": 0.3}, r"is <= the fixed eps_inf = 0.3"),
])
def test_fit_with_a_fixed_bound_inside_the_data_is_a_data_error(fixed, match):
    x, y = _m4_data()
    with pytest.raises(DataError, match=match):
        jaxscale.fit("m4", jaxscale.ScalingData.from_arrays(x=x, loss=y), fixed=fixed)


def test_fit_with_fixed_bounds_in_the_wrong_order_is_a_law_error():
    x, y = _m4_data()
    with pytest.raises(LawError, match="eps_0 > eps_inf"):
        jaxscale.fit("m4", jaxscale.ScalingData.from_arrays(x=x, loss=y), fixed={"eps_inf": 2.0, "eps_0": 1.5})


def test_m4_check_names_the_row_and_rejects_bad_losses():
    with pytest.raises(DataError, match="row 2"):
        m4_check(dict(eps_inf=0.1, eps_0=1.0), loss=[0.5, 0.6, 0.05])
    with pytest.raises(DataError, match="finite and > 0"):
        m4_check(dict(eps_inf=0.1, eps_0=1.0), loss=[0.5, np.nan])


@pytest.mark.slow
def test_broken_power_reproduces_caballero_addition_fit():
    """broken_power on the first 14 points of Caballero et al.'s published 4-digit addition curve returns their
    published fit (jaxscale.published.CABALLERO_ADDITION_BNSL) within 2% in every parameter. Not exactly: they fit
    least squares on log(y + 1), jaxscale Huber on log y, which moves the optimum (measured: 1.0% in a, < 0.8% in
    the rest); their extrapolation RMSLE on the last 3 points is reached within 10% (0.0109 vs 0.0113 measured)."""
    pub = jaxscale.published
    x, y = (np.array(pub.CABALLERO_ADDITION[k]) for k in ("x", "loss"))
    res = jaxscale.fit("broken_power", jaxscale.ScalingData.from_arrays(x=x[:14], loss=y[:14]))
    for k, v in pub.CABALLERO_ADDITION_BNSL.items():
        assert res.params[k] == pytest.approx(v, rel=0.02), k
    law = jaxscale.laws.get("broken_power")
    rmsle = lambda p: float(np.sqrt(np.mean(np.log(law.predict(p, x=x[14:]) / y[14:]) ** 2)))  # noqa: E731
    assert rmsle(res.params) == pytest.approx(rmsle(pub.CABALLERO_ADDITION_BNSL), rel=0.1)
