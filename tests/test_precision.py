"""Precision laws (Kumar et al. 2024) and the compute-optimal training precision: jaxscale.precision."""

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import jaxscale
from helpers import case
from jaxscale import precision as jprec
from jaxscale._draws import ParamSource
from jaxscale.errors import ArgumentError, DataError, LawError

P = dict(E=1.7, A=400.0, B=400.0, alpha=0.34, beta=0.28, gamma=2.5)
PTQ = dict(E=1.7, A=400.0, B=400.0, C_T=0.05, alpha=0.34, beta=0.28, gamma_D=0.5, gamma_N=0.4, gamma_post=1.0)


def _frame_data(law, p, cov, noise=0.0, seed=0):
    y = law.predict(p, **cov)
    if noise:
        y = y * np.exp(noise * np.random.default_rng(seed).standard_normal(y.shape))
    return jaxscale.ScalingData.from_frame(pd.DataFrame({**cov, "y": y}), aliases=False, y="y",
                                           **{c: c for c in cov})


# --- laws ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("parts", [1, 2, 3])
def test_precision_law_is_chinchilla_with_effective_parameters(parts):
    """L = E + A N_eff^-alpha + B D^-beta with N_eff = N (1 - e^(-P/gamma))^parts (exact maths: rtol 1e-12);
    at high precision it is Chinchilla's law."""
    law = jaxscale.laws.get("precision", parts=parts)
    N, D, bits = np.array([1e8, 1e9, 1e9]), np.array([2e9, 2e10, 2e10]), np.array([3.0, 8.0, 200.0])
    n_eff = N * (1 - np.exp(-bits / P["gamma"])) ** parts
    ref = P["E"] + P["A"] / n_eff ** P["alpha"] + P["B"] / D ** P["beta"]
    np.testing.assert_allclose(law.predict(P, N=N, D=D, precision=bits), ref, rtol=1e-12)
    chin = jaxscale.laws.get("chinchilla").predict({k: P[k] for k in ("E", "A", "B", "alpha", "beta")}, N=N, D=D)
    np.testing.assert_allclose(law.predict(P, N=N, D=D, precision=bits)[2], chin[2], rtol=1e-12)


@pytest.mark.parametrize("parts", [2, 3])
def test_fused_jacobian_matches_autodiff_for_tied_parts(parts):
    """test_solver checks the default parts=1; the tied-parts forms the same way (rtol 1e-12)."""
    law = jaxscale.laws.get("precision", parts=parts)
    _, p, cov, _, _ = case("precision")
    theta = jnp.asarray(law.from_natural(p))[None, :] + jnp.asarray(np.random.default_rng(0).normal(0, 0.1, (3, 6)))
    logx = jnp.log(jnp.stack([jnp.asarray(cov[c]) for c in law.covariates], 1))
    lp, J = law.log_predict_jac(tuple(theta[:, k:k + 1] for k in range(6)), tuple(logx[:, k] for k in range(3)))
    ref_lp, ref_J = jax.vmap(jax.vmap(jax.value_and_grad(law.log_predict), in_axes=(None, 0)), in_axes=(0, None))(
        theta, logx)
    np.testing.assert_allclose(lp, ref_lp, rtol=1e-12)
    for k in range(6):
        np.testing.assert_allclose(J[k], ref_J[..., k], rtol=1e-10, atol=1e-12, err_msg=law.fit_names[k])


def test_ptq_degradation_grows_with_data_until_more_data_hurts():
    """Kumar et al.'s finding, from the law's form: at fixed N and a low post-training precision, the PTQ term
    grows as D^gamma_D, so the quantised loss falls and then rises with D; in 16 bits it only falls."""
    law = jaxscale.laws.get("precision_ptq")
    D = np.logspace(9, 14, 200)
    low = law.predict(PTQ, N=np.full_like(D, 1e8), D=D, precision_post=np.full_like(D, 2.0))
    high = law.predict(PTQ, N=np.full_like(D, 1e8), D=D, precision_post=np.full_like(D, 16.0))
    i = int(np.argmin(low))
    assert 0 < i < len(D) - 1 and np.all(np.diff(low[:i]) < 0) and np.all(np.diff(low[i:]) > 0)
    assert np.all(np.diff(high) < 0)
    delta = low - high
    ref = PTQ["C_T"] * (np.exp(-2.0 / PTQ["gamma_post"]) - np.exp(-16.0 / PTQ["gamma_post"])) * D ** 0.5 / 1e8 ** 0.4
    np.testing.assert_allclose(delta, ref, rtol=1e-9)


def test_precision_bits_must_be_positive():
    frame = pd.DataFrame({"N": [1e8, 1e9, 1e10], "D": [1e9, 1e10, 1e11], "bits": [8.0, 0.0, 4.0],
                          "loss": [3.0, 2.8, 2.6]})
    with pytest.raises(DataError, match=r"precision \(column 'bits'\) must be > 0; row 1 .*has 0.0"):
        jaxscale.ScalingData.from_frame(frame, precision="bits")


@pytest.mark.parametrize("parts", [0, 4, 1.0, True, "3"])
def test_bad_parts(parts):
    with pytest.raises(LawError, match="parts must be 1, 2 or 3"):
        jaxscale.laws.get("precision", parts=parts)


def test_tied_parts_laws_compare_equal():
    a, b = jaxscale.laws.get("precision", parts=3), jaxscale.laws.get("precision", parts=np.int64(3))
    assert a == b and hash(a) == hash(b) and a != jaxscale.laws.get("precision")


@pytest.mark.slow  # ~20 s: compiles a second precision law
def test_fit_recovers_tied_parts_with_noise():
    """parts=3 from 1% noise on the helpers' design: E and the exponents within 10% (Monte-Carlo tolerance)."""
    law = jaxscale.laws.get("precision", parts=3)
    _, p, cov, _, _ = case("precision")
    res = jaxscale.fit(law, _frame_data(law, p, cov, noise=0.01))
    for k in ("E", "alpha", "gamma"):
        np.testing.assert_allclose(res.params[k], p[k], rtol=0.1, err_msg=k)


# --- precision_optimal -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("parts", [2, 3])
def test_optimal_precision_is_a_budget_free_multiple_of_gamma(parts):
    """P* = x gamma with e^x - 1 = parts x, whatever the budget and the other constants (exact maths; the
    golden-section search stops at ~1e-8 relative in P on a flat optimum: rtol 1e-6)."""
    law = jaxscale.laws.get("precision", parts=parts)
    x = jprec.optimal_precision_ratio(parts)
    np.testing.assert_allclose(np.expm1(x), parts * x, rtol=1e-12)
    for gamma, other in [(2.5, {}), (4.0, dict(alpha=0.5, B=2000.0))]:
        p = {**P, "gamma": gamma, **other}
        out = jprec.precision_optimal(p, [1e19, 1e22, 1e25], precision=(1, 32), law=law).table
        np.testing.assert_allclose(out["P_opt"], x * gamma, rtol=1e-6)
        assert not out["at_edge"].any()


def test_optimal_precision_matches_brute_force():
    """At the optimum P, the closed-form N against a grid over N with D from the budget (spacing 0.2%: rtol
    2e-3), and the cost C = 6 N D P / 16 holds exactly."""
    law = jaxscale.laws.get("precision", parts=3)
    C = 1e21
    row = jprec.precision_optimal(P, C, law=law).table.iloc[0]
    N = np.logspace(6, 13, 4001)
    D = C / (6.0 * row["P_opt"] / 16.0 * N)
    L = law.predict(P, N=N, D=D, precision=np.full_like(N, row["P_opt"]))
    np.testing.assert_allclose(row["N_opt"], N[np.argmin(L)], rtol=2e-3)
    np.testing.assert_allclose(row["L_opt"], L.min(), rtol=1e-7)
    np.testing.assert_allclose(6.0 * row["N_opt"] * row["D_opt"] * row["P_opt"] / 16.0, C, rtol=1e-12)


def test_weights_only_optimum_is_the_lowest_precision():
    out = jprec.precision_optimal(P, [1e20, 1e23], precision=(3, 16)).table
    np.testing.assert_allclose(out["P_opt"], 3.0, rtol=1e-9)
    assert out["at_edge"].all()


def test_precision_optimal_with_draws_and_candidates():
    law = jaxscale.laws.get("precision", parts=3)
    draws = pd.DataFrame({k: [v, v * 1.1] for k, v in P.items()})
    out = jprec.precision_optimal(ParamSource(law, dict(P), draws, "bootstrap"), 1e21, candidates=[4, 6, 8, 16])
    assert out.table["P_opt"].tolist() == [4.0]   # 1.90 gamma = 4.76 bits: 4 beats 6 here
    assert out.draws["P_opt"].tolist() == [4.0, 6.0]   # gamma 2.75: 5.2 bits, nearer 6


@pytest.mark.parametrize("kw, match", [
    (dict(budget=0.0), "budget must be > 0"),
    (dict(precision=(0, 16)), "precision must be a range of bits with 0 < low"),
    (dict(precision=(16, 4)), "precision must be a range"),
    (dict(candidates=[-4, 8]), "candidates must be finite and > 0"),
    (dict(reference_bits=0), "reference_bits must be > 0"),
])
def test_precision_optimal_bad_arguments(kw, match):
    kw = {"budget": 1e21, **kw}
    with pytest.raises(ArgumentError, match=match):
        jprec.precision_optimal(P, kw.pop("budget"), **kw)


def test_precision_optimal_needs_a_precision_fit():
    with pytest.raises(LawError, match="needs a 'precision' fit; got law 'chinchilla'"):
        jprec.precision_optimal(jaxscale.HOFFMANN_UNROUNDED, 1e21, law="chinchilla")


def test_optimal_precision_ratio_needs_two_parts():
    with pytest.raises(ArgumentError, match="parts must be"):
        jprec.optimal_precision_ratio(1)


# --- Bayes -----------------------------------------------------------------------------------------------------

@pytest.mark.slow  # ~25-30 s on two shared cores: NUTS compiles the model
def test_precision_posterior_covers_the_truth():
    """1% noise: each true value inside its 99% credible interval (short chains: 2 x 300)."""
    from jaxscale import bayes

    law, p, cov, _, _ = case("precision")
    post = bayes.sample(law, _frame_data(law, p, cov, noise=0.01), key=0, warn=False, num_chains=2,
                        num_warmup=300, num_samples=300).posterior
    for k, v in p.items():
        lo, hi = np.quantile(post[k].values.ravel(), [0.005, 0.995])
        assert lo < v < hi, (k, lo, v, hi)
