"""Allocation: published checks, closed form vs numerical, derivatives, draws, bad input, CLI."""

import json
import warnings

import jax
import numpy as np
import pandas as pd
import pytest

import jaxscale
from jaxscale import allocate as al, published
from jaxscale.cli import main
from jaxscale.errors import ArgumentError, JaxscaleError, LawError

# jaxscale.published: Epoch AI 2024 (notebook cells 24-25), Hoffmann unrounded (TeX), Muennighoff, Kaplan Table 2.
EPOCH, HOFFMANN, MUENNIGHOFF, KAPLAN = published.EPOCH, published.HOFFMANN_UNROUNDED, published.MUENNIGHOFF, published.KAPLAN
CHINCHILLA_C = 6 * 1.4e12 * 7e10  # 5.88e23


def test_epoch_and_hoffmann_allocations_match_published():
    # Published values carry 4 significant digits (18.33, 7.31e10, 1.34e12, 59.04): rel 1e-3 covers the rounding.
    t = al.compute_optimal("chinchilla", EPOCH, CHINCHILLA_C).table
    assert t["tokens_per_param"][0] == pytest.approx(18.33, rel=1e-3)
    assert t["N_opt"][0] == pytest.approx(7.31e10, rel=1e-3)
    assert t["D_opt"][0] == pytest.approx(1.34e12, rel=4e-3)  # printed with 3 digits
    h = al.compute_optimal("chinchilla", HOFFMANN, CHINCHILLA_C).table
    assert h["tokens_per_param"][0] == pytest.approx(59.04, rel=1e-3)
    assert h["N_opt"][0] == pytest.approx(4.07e10, rel=2e-3)


@pytest.mark.parametrize("params, a", [(EPOCH, 0.513), (HOFFMANN, 0.4565)])
def test_numerical_scaling_exponent_matches_published(params, a):
    # The slope of log N_opt against log C from the *numerical* solver is the exponent a = beta/(alpha+beta).
    C = np.logspace(20, 26, 7)
    t = al.compute_optimal("chinchilla", params, C, solver="numerical").table
    slope = np.polyfit(np.log(C), np.log(t["N_opt"]), 1)[0]
    assert slope == pytest.approx(a, abs=5e-4)  # published to 3-4 digits
    assert slope == pytest.approx(params["beta"] / (params["alpha"] + params["beta"]), rel=1e-7)


@pytest.mark.parametrize("params", [EPOCH, HOFFMANN])
def test_closed_form_and_numerical_agree(params):
    C = np.logspace(18, 27, 10)
    cf = al.compute_optimal("chinchilla", params, C, solver="closed_form").table
    nu = al.compute_optimal("chinchilla", params, C, solver="numerical").table
    for col in ("N_opt", "D_opt", "L_opt", "tokens_per_param"):
        np.testing.assert_allclose(nu[col], cf[col], rtol=1e-6)  # golden section to ~1e-12 in log N


def test_numerical_solution_is_differentiable():
    # d N_opt / d params through the line search equals the closed form's derivative (implicit Newton step).
    def closed(p):
        return al.allocation_fn("chinchilla", [1e21, 1e24], "N_opt")(p)

    def numerical(p):
        return al.allocation_fn("chinchilla", [1e21, 1e24], "N_opt", solver="numerical")(p)

    p = {k: float(v) for k, v in EPOCH.items()}
    for i in range(2):
        g_c = jax.grad(lambda q, i=i: jax.numpy.log(closed(q)[i]))(p)
        g_n = jax.grad(lambda q, i=i: jax.numpy.log(numerical(q)[i]))(p)
        for k in p:
            assert float(g_n[k]) == pytest.approx(float(g_c[k]), rel=1e-5, abs=1e-9), k


def test_kaplan_numerical_optimum_beats_a_dense_grid():
    C = 1e22
    t = al.compute_optimal("kaplan", KAPLAN, C).table
    law = jaxscale.laws.get("kaplan")
    N = np.logspace(3, np.log10(C / 6) - 3, 200001)
    L = law.predict(KAPLAN, N=N, D=C / (6 * N))
    i = np.argmin(L)
    assert t["L_opt"][0] <= L[i] * (1 + 1e-12)
    # grid spacing is 1.2e-4 in log10 N: the optimum lies within one step of the grid's best
    assert abs(np.log10(t["N_opt"][0]) - np.log10(N[i])) < 2e-4


def test_line_optimum_flags_an_edge_minimum():
    u, ok = al.line_optimum(lambda u: u, 0.0, 5.0)
    assert not bool(ok)
    u, ok = al.line_optimum(lambda u: (u - 2.0) ** 2, 0.0, 5.0)
    assert bool(ok) and float(u) == pytest.approx(2.0, abs=1e-9)


def _muennighoff_grid_search(C, U):
    """The README's optimal_allocation (huggingface/datablations at 13701315): a grid along k N D = C
    within a factor 3 of the Chinchilla-optimal split of the base law."""
    law = jaxscale.laws.get("data_constrained")
    p = MUENNIGHOFF
    G = ((p["alpha"] * p["A"]) / (p["beta"] * p["B"])) ** (1 / (p["alpha"] + p["beta"]))
    a = p["beta"] / (p["alpha"] + p["beta"])
    n_base = G * (C / 6) ** a
    d_base = C / 6 / n_base
    # Their loop visits (N/i, D*i) then (N*i, D/i) for each i and keeps the first strict minimum; the same order
    # in one vectorised call, and argmin's first-occurrence rule, give the same answer.
    i = np.linspace(1.0001, 3, 500)
    N = np.stack([n_base / i, n_base * i], 1).ravel()
    D = np.stack([d_base * i, d_base / i], 1).ravel()
    L = law.predict(p, N=N, D=D, U=np.minimum(U, D))
    j = int(np.argmin(L))
    return float(L[j]), float(D[j]), float(N[j])


def test_data_constrained_reproduces_muennighoff_example():
    # published_results.md section 4: optimal_allocation(1e22, 25e9) -> 237336955477.55 tokens, 7022364735.88 params
    L_grid, D_grid, N_grid = _muennighoff_grid_search(1e22, 25e9)
    assert N_grid == pytest.approx(7022364735.88, rel=1e-9)  # our law + their search = their number
    assert D_grid == pytest.approx(237336955477.55, rel=1e-9)
    t = al.data_constrained_optimal("data_constrained", MUENNIGHOFF, 1e22, 25e9).table
    # Their grid steps by ~0.4% in N; the continuous optimum is at least as good and within one step.
    assert t["L_opt"][0] <= L_grid * (1 + 1e-12)
    assert t["N_opt"][0] == pytest.approx(N_grid, rel=4e-3)
    assert t["epochs"][0] == pytest.approx(9.49, abs=0.01)


def test_data_constrained_with_plenty_of_data_is_compute_optimal():
    # With U far above D there is no repetition: the optimum is the base law's compute-optimal split.
    t = al.data_constrained_optimal("data_constrained", MUENNIGHOFF, 1e21, 1e15).table
    base = {k: MUENNIGHOFF[k] for k in ("E", "A", "B", "alpha", "beta")}
    c = al.compute_optimal("chinchilla", base, 1e21).table
    # With U >> D the law also caps N at N_opt(U) >> N: no excess-parameter penalty either.
    assert t["N_opt"][0] == pytest.approx(c["N_opt"][0], rel=1e-6)


def test_inference_optimal_matches_brute_force_and_limits():
    t = al.inference_optimal("chinchilla", EPOCH, [2.0, 2.0], [0.0, 2e13]).table
    # T_inf = 0: the cheapest model reaching the loss is the compute-optimal one (ratio 1, no saving)
    assert t["overtraining_ratio"][0] == pytest.approx(1.0, rel=1e-5)
    assert t["saving"][0] == pytest.approx(1.0, rel=1e-9)
    # brute force over N on a dense grid, D from the closed form
    p = EPOCH
    N = np.logspace(9.5, 11.5, 400001)
    gap = 2.0 - p["E"] - p["A"] * N ** -p["alpha"]
    ok = gap > 0
    D = (p["B"] / gap[ok]) ** (1 / p["beta"])
    cost = 6 * N[ok] * D + 2 * N[ok] * 2e13
    i = np.argmin(cost)
    assert t["total_flops"][1] <= cost[i] * (1 + 1e-9)
    assert t["N_opt"][1] == pytest.approx(N[ok][i], rel=2e-5)  # grid step 1.2e-5 in log N
    assert t["N_opt"][1] < t["N_opt"][0] and t["saving"][1] > 1.0 and t["overtraining_ratio"][1] > 1.0


def test_inference_optimal_generic_law_uses_root_finding():
    # kaplan has no closed-form D(N, L): the bisection path must satisfy L(N, D) = target.
    t = al.inference_optimal("kaplan", KAPLAN, 2.2, 1e12).table
    law = jaxscale.laws.get("kaplan")
    assert float(law.predict(KAPLAN, N=t["N_opt"][0], D=t["D_opt"][0])) == pytest.approx(2.2, rel=1e-9)


def test_overtraining_of_a_70b_model_on_15t_tokens():
    t = al.overtraining("chinchilla", EPOCH, N=70e9, D=15e12)
    assert t["tokens_per_param"][0] == pytest.approx(214.2857, rel=1e-6)
    c = al.compute_optimal("chinchilla", EPOCH, 6 * 70e9 * 15e12).table
    assert t["overtraining_ratio"][0] == pytest.approx(15e12 / 70e9 / c["tokens_per_param"][0], rel=1e-12)
    assert t["loss_penalty"][0] > 0


# ----------------------------------------------------------------------------- draws


@pytest.fixture(scope="module")
def boot(epoch_data):
    return jaxscale.bootstrap("chinchilla", epoch_data, 200, key=3, starts="warm")


def test_bootstrap_draws_give_intervals(boot):
    C = [1e21, CHINCHILLA_C]
    res = al.compute_optimal(None, boot, C)
    t = res.table
    assert res.draws["N_opt"].shape == (len(boot.draws), 2)
    for col in ("N_opt", "D_opt", "L_opt", "tokens_per_param"):
        assert np.all(t[f"{col}_lo"] < t[col]) and np.all(t[col] < t[f"{col}_hi"])
    # the draws agree with the bootstrap's own derived quantity (same function of the same draws)
    d = boot.derive(jaxscale.derived.tokens_per_param(C))
    np.testing.assert_allclose(res.draws["tokens_per_param"], d.draws, rtol=1e-9)
    again = al.compute_optimal(None, boot, C).table
    pd.testing.assert_frame_equal(t, again)


def test_failed_draws_are_flagged_not_fatal(boot):
    draws = boot.draws.copy()
    draws.loc[0, "E"] = 3.0  # this draw cannot reach loss 2.0 at any size
    src = jaxscale._draws.ParamSource(boot.law, boot.point.params, draws, "bootstrap")
    with pytest.warns(RuntimeWarning, match="1 of 200 draws"):
        res = al.inference_optimal(None, src, 2.0, 1e12)
    t = res.table
    assert int(t["n_failed"][0]) == 1
    assert np.isnan(res.draws["N_opt"][0, 0]) and np.isfinite(res.draws["N_opt"][1:, 0]).all()
    assert np.isfinite(t["N_opt_lo"][0]) and np.isfinite(t["N_opt_hi"][0])


@pytest.mark.slow  # ~10 s: the default suite stays under 10 min; CI runs -m slow
def test_posterior_draws(epoch_data, tmp_path, capsys):
    from jaxscale import bayes

    idata = bayes.sample("chinchilla", epoch_data, key=0, num_chains=2, num_warmup=200, num_samples=200, warn=False)
    res = al.compute_optimal("chinchilla", idata, CHINCHILLA_C, level=0.9)
    # the netCDF route of `jaxscale allocate --fit posterior.nc` gives the same table
    idata.to_netcdf(tmp_path / "post.nc")
    assert main(["allocate", "--fit", str(tmp_path / "post.nc"), "--compute", str(CHINCHILLA_C),
                 "--json", str(tmp_path / "p.json")]) == 0
    assert "400 draws (posterior)" in capsys.readouterr().out
    rec = json.loads((tmp_path / "p.json").read_text())["records"][0]
    assert rec["N_opt"] == pytest.approx(float(res.table["N_opt"][0]), rel=1e-12)
    with pytest.raises(LawError, match="holds a fit of law 'chinchilla'"):
        al.compute_optimal("kaplan", idata, CHINCHILLA_C)
    t = res.table
    assert res.source == "posterior" and res.draws["N_opt"].shape == (400, 1)
    # posterior summaries are medians of the draws (as bayes.derive reports them)
    assert t["N_opt"][0] == pytest.approx(np.median(res.draws["N_opt"][:, 0]), rel=1e-12)
    assert t["tokens_per_param_lo"][0] < t["tokens_per_param"][0] < t["tokens_per_param_hi"][0]


# ----------------------------------------------------------------------------- bad input


def test_bad_input_errors():
    with pytest.raises(ArgumentError, match=r"C\[1\] must be > 0 \(a budget in FLOPs\); got -1.0"):
        al.compute_optimal("chinchilla", EPOCH, [1e21, -1.0])
    for bad in (0.0, -1):
        with pytest.raises(ArgumentError, match=r"^C must be > 0 \(a budget in FLOPs\)"):
            al.compute_optimal("chinchilla", EPOCH, bad)
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ArgumentError, match=r"^C must be a finite number of FLOPs"):
            al.compute_optimal("chinchilla", EPOCH, bad)
    # checked before the fit is read: a missing file is not opened
    with pytest.raises(ArgumentError, match=r"^C must be > 0"):
        al.compute_optimal(None, "no/such/fit.json", -1)
    power = dict(E=1.7, A=400.0, alpha=0.3)
    with pytest.raises(al.AllocationError, match=r"exactly the covariates \['N', 'D'\].*qualify: .*chinchilla.*kaplan"):
        al.compute_optimal("power", power, 1e21)
    with pytest.raises(al.AllocationError, match="cannot be reached at any size"):
        al.inference_optimal("chinchilla", EPOCH, 1.8, 1e12)
    with pytest.raises(ArgumentError, match="inference_tokens must be finite and >= 0"):
        al.inference_optimal("chinchilla", EPOCH, 2.0, -1.0)
    with pytest.raises(al.AllocationError, match=r"needs a law of exactly the covariates \['N', 'D', 'U'\]"):
        al.data_constrained_optimal("chinchilla", EPOCH, 1e21, 1e10)
    with pytest.raises(ArgumentError, match="level must be a number strictly between 0 and 1"):
        al.compute_optimal("chinchilla", EPOCH, 1e21, level=1.5)
    with pytest.raises(LawError, match="lacks parameters"):
        al.compute_optimal("chinchilla", dict(E=1.7), 1e21)
    with pytest.raises(LawError, match="needs law="):
        al.compute_optimal(None, EPOCH, 1e21)
    with pytest.raises(al.AllocationError, match="closed form is for 'chinchilla' only"):
        al.compute_optimal("kaplan", KAPLAN, 1e21, solver="closed_form")
    assert issubclass(al.AllocationError, JaxscaleError)


def test_law_argument_must_match_the_fit(tmp_path):
    fit = jaxscale.fit("chinchilla", jaxscale.demo_data(), starts=32, key=0)
    with pytest.raises(LawError, match="holds a fit of law 'chinchilla'"):
        al.compute_optimal("kaplan", fit, 1e21)
    # A file's own law (with its options) wins; a different law= is an error, never a silent reinterpretation.
    path = tmp_path / "dc.json"
    path.write_text(json.dumps({"law": "data_constrained", "params": MUENNIGHOFF}))
    with pytest.raises(LawError, match="holds a fit of law 'data_constrained'"):
        al.compute_optimal("chinchilla", str(path), 1e21)
    assert jaxscale._draws.param_source(str(path)).law.name == "data_constrained"


def test_numerical_solver_over_draws_and_failed_draws():
    # kaplan has no closed form: the line search runs for every draw x budget.
    rng = np.random.default_rng(0)
    n = 64
    draws = pd.DataFrame({k: v * np.exp(0.05 * rng.standard_normal(n)) for k, v in KAPLAN.items()})
    src = jaxscale._draws.ParamSource(jaxscale.laws.get("kaplan"), KAPLAN, draws, "bootstrap")
    res = al.compute_optimal(None, src, [1e20, 1e22])
    one = al.compute_optimal("kaplan", {k: float(draws[k][5]) for k in KAPLAN}, [1e20, 1e22]).table
    np.testing.assert_allclose(res.draws["N_opt"][5], one["N_opt"], rtol=1e-12)  # each draw solved on its own
    assert (res.table["n_failed"] == 0).all()
    # A draw whose loss grows with N (alpha < 0) has no interior optimum (it is at N = 1): flagged, the rest kept.
    chin = jaxscale.laws.get("chinchilla")
    d = pd.DataFrame([EPOCH] * 8)
    d.loc[3, "alpha"] = -0.1
    src = jaxscale._draws.ParamSource(chin, EPOCH, d, "bootstrap")
    for solver in ("closed_form", "numerical"):
        with pytest.warns(RuntimeWarning, match="1 of 8 draws"):
            r = al.compute_optimal(None, src, 1e22, solver=solver)
        assert int(r.table["n_failed"][0]) == 1 and np.isnan(r.draws["N_opt"][3, 0])
        assert r.table["N_opt_lo"][0] == pytest.approx(r.table["N_opt"][0], rel=1e-9)  # the other 7 are EPOCH
        rec = r.to_dict()["records"][0]
        assert rec["n_failed"] == 1 and json.loads(r.to_json())["records"][0]["N_opt"] == rec["N_opt"]


def test_data_constrained_over_draws():
    draws = pd.DataFrame([MUENNIGHOFF] * 4)
    draws["R_D"] = [5.0, 10.0, 15.387756, 30.0]
    src = jaxscale._draws.ParamSource(jaxscale.laws.get("data_constrained"), MUENNIGHOFF, draws, "bootstrap")
    res = al.data_constrained_optimal(None, src, 1e22, 25e9)
    # more value from repeated data (larger R_D) -> more epochs are worth it
    assert np.all(np.diff(res.draws["epochs"][:, 0]) > 0)
    assert res.draws["epochs"][2, 0] == pytest.approx(res.table["epochs"][0], rel=1e-9)


def test_mismatched_lengths_are_named():
    with pytest.raises(ArgumentError, match="C and unique_tokens must have the same length"):
        al.data_constrained_optimal("data_constrained", MUENNIGHOFF, [1e21, 1e22], [1e9, 1e10, 1e11])
    with pytest.raises(ArgumentError, match="N and D must have the same length"):
        al.overtraining("chinchilla", EPOCH, N=[1e9, 2e9], D=[1e10, 2e10, 3e10])
    with pytest.raises(ArgumentError, match="flops_per_token must be a finite number; got \\[6, 8\\]"):
        al.compute_optimal("chinchilla", EPOCH, 1e21, flops_per_token=[6, 8])
    with pytest.raises(ArgumentError, match="solver must be one of"):
        al.allocation_fn("chinchilla", 1e21, solver="newton")


# ----------------------------------------------------------------------------- CLI


@pytest.mark.slow  # ~10 s: kept out of the default run, in CI's `-m slow`
def test_cli_allocate_from_fit_and_bootstrap_json(tmp_path, capsys):
    csv = "epoch_chinchilla"  # the bundled data set (jaxscale datasets); --col as its default roles
    cols = ["--col", "N=Model Size", "--col", "C=Training FLOP", "--col", "loss=loss", "--drop-top-loss", "5"]
    assert main(["fit", str(csv), *cols, "--starts", "64", "--json", str(tmp_path / "fit.json")]) == 0
    assert main(["bootstrap", str(csv), *cols, "-n", "100", "--starts", "warm",
                 "--json", str(tmp_path / "boot.json")]) == 0
    capsys.readouterr()
    assert main(["allocate", "--fit", str(tmp_path / "fit.json"), "--compute", "1e22", "5.88e23",
                 "--json", str(tmp_path / "a.json")]) == 0
    out = json.loads((tmp_path / "a.json").read_text())
    assert [r["compute"] for r in out["records"]] == [1e22, 5.88e23]
    assert {"compute", "N_opt", "D_opt", "L_opt", "tokens_per_param"} <= set(out["records"][0])
    assert "intervals" not in out["records"][0]
    fit = json.loads((tmp_path / "fit.json").read_text())
    expect = al.compute_optimal("chinchilla", fit["params"], 5.88e23).table
    assert out["records"][1]["tokens_per_param"] == pytest.approx(expect["tokens_per_param"][0], rel=1e-12)
    assert main(["allocate", "--fit", str(tmp_path / "boot.json"), "--compute", "5.88e23", "--level", "0.8",
                 "--json", str(tmp_path / "b.json")]) == 0
    printed = capsys.readouterr().out
    assert "100 draws (bootstrap)" in printed and "80% interval" in printed
    rec = json.loads((tmp_path / "b.json").read_text())["records"][0]
    lo, hi = rec["intervals"]["tokens_per_param"]
    assert lo < rec["tokens_per_param"] < hi
    assert main(["allocate", "--fit", str(tmp_path / "fit.json"), "--compute", "1e22",
                 "--inference-tokens", "1e13"]) == 0
    assert "overtraining_ratio" in capsys.readouterr().out


def test_cli_allocate_errors_are_one_line(tmp_path, capsys):
    path = tmp_path / "fit.json"
    path.write_text(json.dumps({"law": "chinchilla", "params": EPOCH}))
    assert main(["allocate", "--fit", str(path), "--compute", "1e22", "--unique-tokens", "1e10"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "['N', 'D', 'U']" in err
    assert main(["allocate", "--fit", str(tmp_path / "missing.json"), "--compute", "1e22"]) == 2
    assert "does not exist" in capsys.readouterr().err
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:  # the budget is checked as an argument: by the parser (exit 2) or by the command (return 2)
            code = main(["allocate", "--fit", str(path), "--compute", "0"])
        except SystemExit as e:
            code = e.code
    assert code == 2 and "must be > 0" in capsys.readouterr().err


def test_allocation_json_is_written_atomically(tmp_path):
    res = al.compute_optimal("chinchilla", EPOCH, [1e22, 5.88e23])
    res.to_json(tmp_path / "a.json")
    doc = json.loads((tmp_path / "a.json").read_text())
    assert [r["compute"] for r in doc["records"]] == [1e22, 5.88e23] and doc["level"] == 0.9
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
    prov = doc["settings"]  # what it was made from, and when
    assert prov["n_draws"] == 0 and prov["jaxscale_version"] == jaxscale.__version__ and prov["timestamp"]
    with pytest.raises(ArgumentError, match="path .*: directory .* does not exist"):
        res.to_json(tmp_path / "no" / "a.json")
