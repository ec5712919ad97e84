"""Routed (mixture-of-experts) laws and their allocations: moe_clark, moe_granularity, jaxscale.routed."""

import json

import numpy as np
import pandas as pd
import pytest

import jaxscale
from helpers import case
from jaxscale import routed
from jaxscale._draws import ParamSource
from jaxscale.cli import main
from jaxscale.errors import ArgumentError, DataError, LawError

GRAN = dict(c=0.5, a=20.0, g=3.0, b=30.0, alpha=0.12, beta=0.15, gamma=0.6)
CLARK = dict(a=-0.08, b=-0.1, c=0.004, d=2.7)


def _frame_data(law, p, cov, noise=0.0, seed=0):
    y = law.predict(p, **cov)
    if noise:
        y = y * np.exp(noise * np.random.default_rng(seed).standard_normal(y.shape))
    return jaxscale.ScalingData.from_frame(pd.DataFrame({**cov, "y": y}), aliases=False, y="y",
                                           **{c: c for c in cov})


# --- laws ------------------------------------------------------------------------------------------------------

def test_granularity_law_is_the_papers_formula():
    """The LSE form against Eq. 9 written out (exact maths: rtol 1e-12)."""
    law = jaxscale.laws.get("moe_granularity")
    N, D, G = np.array([1e8, 3e9]), np.array([2e9, 1e11]), np.array([1.0, 16.0])
    ref = GRAN["c"] + (GRAN["g"] / G ** GRAN["gamma"] + GRAN["a"]) / N ** GRAN["alpha"] + GRAN["b"] / D ** GRAN["beta"]
    np.testing.assert_allclose(law.predict(GRAN, N=N, D=D, granularity=G), ref, rtol=1e-12)


def test_clark_bounded_transform_limits():
    """E^ = E_start at E = 1, E^ -> E_max for many experts, E^ ~ E in between (Clark et al.'s saturation)."""
    law = jaxscale.laws.get("moe_clark", bounded=True)
    p = dict(a=0.0, b=1.0, c=0.0, d=0.0, E_start=2.0, E_max=300.0)   # then L = E^
    Eh = law.predict(p, N=1e9, experts=np.array([1.0, 32.0, 1e12]))
    np.testing.assert_allclose(Eh[[0, 2]], [2.0, 300.0], rtol=1e-9)
    assert 25.0 < Eh[1] < 32.0
    plain = jaxscale.laws.get("moe_clark")
    np.testing.assert_allclose(plain.predict(dict(a=0.0, b=1.0, c=0.0, d=0.0), N=1e9, experts=32.0), 32.0, rtol=1e-12)


def test_clark_rejects_bad_option():
    with pytest.raises(LawError, match="bounded must be True or False"):
        jaxscale.laws.get("moe_clark", bounded="yes")
    a, b = jaxscale.laws.get("moe_clark", bounded=True), jaxscale.laws.get("moe_clark", bounded=True)
    assert a == b and hash(a) == hash(b) and a != jaxscale.laws.get("moe_clark")


def test_clark_starts_hit_the_least_squares_optimum():
    """log L is linear in (a, b, c, d): the first data-aware start is the exact answer on noise-free data."""
    law, p, cov, _, _ = case("moe_clark")
    data = _frame_data(law, p, cov)
    logx, logy = data.design(law.covariates)
    np.testing.assert_allclose(law.default_starts(logx, logy)[0], [p[k] for k in law.param_names], rtol=1e-9)


@pytest.mark.parametrize("role, column", [("experts", "E"), ("granularity", "G")])
def test_counts_below_one_are_a_data_error_naming_column_and_row(role, column):
    frame = pd.DataFrame({"N": [1e8, 1e9, 1e10], column: [1.0, 0.5, 4.0], "loss": [3.0, 2.8, 2.6]})
    with pytest.raises(DataError, match=rf"{role} \(column '{column}'\) must be >= 1; row 1 .*has 0.5 \(1 row"):
        jaxscale.ScalingData.from_frame(frame, **{role: column})


@pytest.mark.slow  # 5-25 s (machine load): a second compiled law
def test_clark_bounded_recovers_known_parameters():
    law = jaxscale.laws.get("moe_clark", bounded=True)
    p = dict(a=-0.08, b=-0.12, c=0.004, d=2.7, E_start=2.0, E_max=300.0)
    N, E = (m.ravel() for m in np.meshgrid(np.logspace(7, 10, 6), 2.0 ** np.arange(14), indexing="ij"))
    res = jaxscale.fit(law, _frame_data(law, p, dict(N=N, experts=E)))
    for k, v in p.items():
        np.testing.assert_allclose(res.params[k], v, rtol=1e-3, err_msg=k)


# --- CLI -------------------------------------------------------------------------------------------------------

def test_cli_fits_moe_granularity_with_a_mapped_granularity_column(tmp_path, capsys):
    """`jaxscale fit data.csv --law moe_granularity --col granularity=G`: noise-free data, truth back (1e-3)."""
    law, p, cov, _, tol = case("moe_granularity")
    csv, out = tmp_path / "moe.csv", tmp_path / "fit.json"
    pd.DataFrame({"N": cov["N"], "D": cov["D"], "G": cov["granularity"],
                  "loss": law.predict(p, **cov)}).to_csv(csv, index=False)
    assert main(["fit", str(csv), "--law", "moe_granularity", "--col", "granularity=G", "--json", str(out)]) == 0
    assert "moe_granularity" in capsys.readouterr().out
    res = json.loads(out.read_text())
    assert res["law"] == "moe_granularity" and res["n_points"] == len(cov["N"])
    for k, v in p.items():
        np.testing.assert_allclose(res["params"][k], v, rtol=tol, err_msg=k)


def test_cli_names_the_missing_granularity_column(tmp_path, capsys):
    csv = tmp_path / "dense.csv"
    pd.DataFrame({"N": [1e8, 1e9, 1e10], "D": [1e9, 1e10, 1e11], "loss": [3.0, 2.8, 2.6]}).to_csv(csv, index=False)
    assert main(["fit", str(csv), "--law", "moe_granularity"]) != 0
    assert "--col granularity=<column>" in capsys.readouterr().err


def test_published_exponents_fixed_leave_the_coefficients_to_fit():
    """With Krajewski et al.'s exponents fixed (published.KRAJEWSKI_EXPONENTS), the coefficients of data made
    with them come back (noise-free: rtol 1e-4, optimizer tolerance). Same design as the CLI test, so the
    compiled solver is shared."""
    law, _, cov, _, _ = case("moe_granularity")
    p = dict(c=0.47, a=18.0, g=2.0, b=30.0, **jaxscale.published.KRAJEWSKI_EXPONENTS)
    res = jaxscale.fit(law, _frame_data(law, p, cov), fixed=jaxscale.published.KRAJEWSKI_EXPONENTS)
    for k in ("c", "a", "g", "b"):
        np.testing.assert_allclose(res.params[k], p[k], rtol=1e-4, err_msg=k)


# --- granularity_optimal ---------------------------------------------------------------------------------------

def _brute_granularity(p, C, Gs, k):
    """Loss minimised over a dense grid of N for each G (D = C / (k(G) N)), then over G."""
    best = (np.inf, None, None)
    for G in Gs:
        N = np.logspace(5, 14, 10001)
        D = C / (k(G) * N)
        L = p["c"] + (p["g"] / G ** p["gamma"] + p["a"]) / N ** p["alpha"] + p["b"] / D ** p["beta"]
        i = np.argmin(L)
        if L[i] < best[0]:
            best = (L[i], G, N[i])
    return best


def test_granularity_optimal_matches_brute_force():
    """Closed-form N and golden-section G against a brute-force grid: its spacing (0.52% in G, 0.1% in N) bounds
    the agreement (rtol 6e-3 on G, 1e-3 on N; 1e-6 on the loss, flat at its optimum); and no neighbour of the
    optimum (G or N moved by 0.1%, D from the budget) has a lower loss."""
    C, r = 1e21, 0.05
    out = routed.granularity_optimal(GRAN, C, granularity=(1, 64), router_cost=r).table
    Gs = np.exp(np.linspace(0, np.log(64), 401))
    L, G, N = _brute_granularity(GRAN, C, Gs, lambda g: 6.0 + r * g)
    np.testing.assert_allclose(out["G_opt"][0], G, rtol=6e-3)
    np.testing.assert_allclose(out["N_opt"][0], N, rtol=1e-3)
    np.testing.assert_allclose(out["L_opt"][0], L, rtol=1e-6)
    np.testing.assert_allclose(6.0 + r * out["G_opt"][0], C / (out["N_opt"][0] * out["D_opt"][0]), rtol=1e-12)
    assert not out["at_edge"][0]
    law = jaxscale.laws.get("moe_granularity")
    for fg, fn in [(1.001, 1.0), (0.999, 1.0), (1.0, 1.001), (1.0, 0.999)]:
        g, n = out["G_opt"][0] * fg, out["N_opt"][0] * fn
        assert law.predict(GRAN, N=n, D=C / ((6.0 + r * g) * n), granularity=g) >= out["L_opt"][0] * (1 - 1e-14)


def test_granularity_optimal_without_router_cost_is_the_finest_allowed():
    out = routed.granularity_optimal(GRAN, [1e19, 1e23], granularity=(1, 32)).table
    np.testing.assert_allclose(out["G_opt"], 32.0, rtol=1e-9)
    assert out["at_edge"].all()
    # the cost per token is then 6 N D exactly
    np.testing.assert_allclose(6 * out["N_opt"] * out["D_opt"], [1e19, 1e23], rtol=1e-12)


def test_granularity_optimal_candidates_and_draws():
    """Candidates restrict the choice; draws give one row per draw and budget, the point as the table."""
    law = jaxscale.laws.get("moe_granularity")
    draws = pd.DataFrame({k: [v, v * 1.05] for k, v in GRAN.items()})
    src = ParamSource(law, dict(GRAN), draws, "bootstrap")
    out = routed.granularity_optimal(src, [1e20, 1e22], candidates=[1, 2, 4, 8, 16, 32, 64], router_cost=0.05)
    assert set(out.table["G_opt"]) <= {1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0}
    assert len(out.draws) == 4 and list(out.draws["draw"]) == [0, 0, 1, 1]
    np.testing.assert_allclose(out.draws["L_opt"][:2], out.table["L_opt"], rtol=1e-12)


@pytest.mark.parametrize("kw, match", [
    (dict(budget=-1.0), "budget must be > 0"),
    (dict(granularity=(0.5, 8)), "granularity must be a range with 1 <= low <= high"),
    (dict(granularity=(8, 2)), "granularity must be a range"),
    (dict(granularity=4.0), r"granularity must be a \(low, high\) pair"),
    (dict(candidates=[0.5, 2]), "candidates must all be >= 1"),
    (dict(router_cost=-1.0), "router_cost must be >= 0"),
    (dict(active_fraction=0.0), "active_fraction must be > 0"),
])
def test_granularity_optimal_bad_arguments(kw, match):
    kw = {"budget": 1e21, **kw}
    with pytest.raises(ArgumentError, match=match):
        routed.granularity_optimal(GRAN, kw.pop("budget"), **kw)


def test_allocation_needs_the_right_law():
    with pytest.raises(LawError, match="needs a 'moe_granularity' fit; got law 'moe_clark'"):
        routed.granularity_optimal(ParamSource(jaxscale.laws.get("moe_clark"), CLARK, None, "params"), 1e21)


# --- experts_optimal -------------------------------------------------------------------------------------------

def test_experts_optimal_ends_and_cutoff():
    """Routing helps below N_cutoff = exp(-b/c) (most experts win) and hurts above it (dense wins)."""
    cut = np.exp(-CLARK["b"] / CLARK["c"])
    out = routed.experts_optimal(CLARK, [cut / 10, cut * 10], experts=(1, 256)).table
    assert out["experts_opt"].tolist() == [256.0, 1.0]
    np.testing.assert_allclose(out["N_cutoff"], cut, rtol=1e-12)
    assert out["gain"][0] > 0 and out["gain"][1] == 0
    law = jaxscale.laws.get("moe_clark")
    np.testing.assert_allclose(out["L_opt"][0], law.predict(CLARK, N=cut / 10, experts=256.0), rtol=1e-12)


def test_experts_optimal_bounded_law_and_candidates():
    bounded = jaxscale.laws.get("moe_clark", bounded=True)
    p = dict(CLARK, E_start=2.0, E_max=300.0)
    out = routed.experts_optimal(p, 1e9, candidates=[1, 8, 64], law=bounded).table
    assert out["experts_opt"].tolist() == [64.0]
    np.testing.assert_allclose(out["L_opt"][0], bounded.predict(p, N=1e9, experts=64.0), rtol=1e-12)
    np.testing.assert_allclose(out["L_dense"][0], bounded.predict(p, N=1e9, experts=1.0), rtol=1e-12)


@pytest.mark.parametrize("kw, match", [
    (dict(N=0.0), "N must be finite and > 0"),
    (dict(experts=(0, 8)), "experts must be a range with 1 <= low"),
    (dict(candidates=[0.5]), "candidates must all be >= 1"),
])
def test_experts_optimal_bad_arguments(kw, match):
    kw = {"N": 1e9, **kw}
    with pytest.raises(ArgumentError, match=match):
        routed.experts_optimal(CLARK, kw.pop("N"), **kw)


# --- Bayes -----------------------------------------------------------------------------------------------------

@pytest.mark.slow  # ~25-30 s on two shared cores: NUTS compiles the model
def test_moe_granularity_posterior_covers_the_truth():
    """1% noise: each true value inside its 99% credible interval (short chains: 2 x 300)."""
    from jaxscale import bayes

    law, p, cov, _, _ = case("moe_granularity")
    data = _frame_data(law, p, cov, noise=0.01)
    post = bayes.sample(law, data, key=0, warn=False, num_chains=2, num_warmup=300, num_samples=300).posterior
    for k, v in p.items():
        lo, hi = np.quantile(post[k].values.ravel(), [0.005, 0.995])
        assert lo < v < hi, (k, lo, v, hi)
