"""Allocation under a schedule: closed-form areas vs the per-step sums, optima vs brute force, anneal gains, errors."""

import itertools
import json

import numpy as np
import pandas as pd
import pytest

import jaxscale
from jaxscale import allocate as al, allocate_schedule as als
from jaxscale.cli import main
from jaxscale.errors import JaxscaleError
from jaxscale.schedule import ANNEAL_DECAY, Schedule, covariates

# Illustrative curve_nd parameters: Hoffmann et al.'s N and D terms with an annealing term of the ladder's size.
P = dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28, C=1e-4)
CURVE_ND = jaxscale.laws.get("curve_nd")


def _cases():
    for kind, (T, w, f, dec) in itertools.product(
            ("cosine", "constant", "wsd", "linear"),
            itertools.product((2, 3, 57, 1000, 7262, 40000), (0, 1, 5, 363), (0.0, 0.1, 1.0), (0.1, 0.5, 1.0))):
        try:
            Schedule(kind, T, w, 1.0, f, dec).check()
        except JaxscaleError:
            continue
        yield kind, T, w, f, dec


@pytest.mark.parametrize("kind", ["cosine", "constant", "wsd", "linear"])
def test_closed_forms_equal_the_per_step_sums(kind):
    # The closed forms are the exact sums: only float rounding of a cumsum over up to 4e4 steps separates them.
    cases = [c for c in _cases() if c[0] == kind]
    assert len(cases) > 20
    for _, T, w, f, dec in cases:
        cov = covariates(Schedule(kind, T, w, 1.0, f, dec).history(), [T], peak=1.0)
        s1, s2, ok = als.final_areas(kind, T, w, final=f, decay_steps=round(dec * T))
        assert bool(ok)
        np.testing.assert_allclose(float(s1), cov["S1"][0], rtol=1e-10, err_msg=f"{kind} {T} {w} {f} {dec}")
        np.testing.assert_allclose(float(s2), cov["S2"][0] if cov["S2"][0] > 1e-200 else 0.0, rtol=1e-9, atol=1e-9,
                                   err_msg=f"{kind} {T} {w} {f} {dec}")


@pytest.mark.parametrize("spec", ["cosine:final=0.1", "wsd:decay=0.1,final=0.1", "constant", "linear:final=0",
                                  "wsd:decay=0.3,final=0,peak=6e-4"])
def test_schedule_covariates_of_runs_match_their_schedules(spec):
    # Runs of the OLMo ladder's sizes and batch sizes, warmup N / batch (rounded), steps ceil(D / batch).
    N = np.array([190354176, 371262464, 758220288, 1279395840])
    b = np.array([524288, 786432, 1310720, 1572864])
    D = 20 * np.array([0.5, 1, 2, 5]) * N
    peak = 6e-4 if "peak" in spec else None
    t = als.schedule_covariates(spec, N, D, batch_size=lambda n: np.interp(n, N, b))
    fam = als.ScheduleFamily.parse(spec)
    for i in range(len(N)):
        steps, warm = int(np.ceil(D[i] / b[i])), round(N[i] / b[i])
        assert (t["steps"][i], t["warmup"][i]) == (steps, warm)
        plan = fam.run(steps, warm)
        cov = covariates(plan.history(), [steps], tokens_per_step=b[i], peak=plan.peak)
        keys = ["S1_tokens", "S2_tokens", "S2_peak"] + (["S1", "S2"] if peak else [])
        for k in keys:
            want = cov[k][0] if cov[k][0] > 1e-200 else 0.0
            got = t[k][i] if t[k][i] > 1e-200 else 0.0
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-6, err_msg=f"{spec} row {i} {k}")
    assert ("S1" in t) == (peak is not None)


def test_continuous_steps_lie_between_whole_steps():
    # Off whole numbers the closed forms are a smooth continuation: between the neighbouring exact values.
    for kind in ("cosine", "wsd", "linear", "constant"):
        lo, hi, mid = (als.final_areas(kind, T, 100.0, decay_steps=0.1 * T) for T in (5000.0, 5001.0, 5000.5))
        for j in range(2):
            assert min(lo[j], hi[j]) - 1e-9 <= mid[j] <= max(lo[j], hi[j]) + 1e-9


def _brute_force(params, C, spec, k=6.0, batch_size="olmo"):
    """Predicted final loss on a dense log-N grid around the optimum, each run built by schedule_covariates."""
    N = np.exp(np.linspace(np.log(C / k) / 2 - 6.0, np.log(C / k) / 2 + 4.0, 40001))
    D = C / (k * N)
    keep = D > 1.5 * N   # the runs long enough for an OLMo warmup (N tokens) and a decay
    N, D = N[keep], D[keep]
    t = als.schedule_covariates(spec, N, D, batch_size=batch_size, whole_steps=False)
    loss = CURVE_ND.predict(params, **{c: t[c].to_numpy() for c in CURVE_ND.covariates})
    return N, loss


@pytest.mark.parametrize("spec", ["cosine:final=0.1", "wsd:decay=0.1,final=0.1"])
def test_optimum_matches_a_brute_force_grid(spec):
    C = np.array([1e20, 1e22])
    t = als.optimal_allocation(P, C, spec, law="curve_nd").table
    for i, c in enumerate(C):
        N, loss = _brute_force(P, c, spec)
        j = int(np.argmin(loss))
        assert 0 < j < len(N) - 1                       # an interior minimum of the grid
        assert t["L_opt"][i] <= loss[j] + 1e-12          # no grid point beats the line search
        assert t["L_opt"][i] == pytest.approx(loss[j], rel=1e-9)
        assert t["N_opt"][i] == pytest.approx(N[j], rel=2e-3)   # the grid's spacing is 2.5e-4 in log N
    np.testing.assert_allclose(t["tokens_per_param"], t["D_opt"] / t["N_opt"], rtol=1e-12)
    np.testing.assert_allclose(6 * t["N_opt"] * t["D_opt"], C, rtol=1e-10)


def test_laws_blind_to_the_schedule_give_compute_optimal(tmp_path):
    chin = {k: P[k] for k in ("E", "A", "B", "alpha", "beta")}
    C = [1e20, 1e23]
    # a fit file that recorded its data's FLOPs per token: the allocation uses it
    path = tmp_path / "fit.json"
    path.write_text(json.dumps({"law": "chinchilla", "params": chin, "settings": {"flops_per_token": 8.0}}))
    got = als.optimal_allocation(str(path), C, "wsd:decay=0.2")
    assert got.settings["flops_per_token"] == 8.0
    np.testing.assert_allclose(8 * got.table["N_opt"] * got.table["D_opt"], C, rtol=1e-10)
    ref8 = al.compute_optimal("chinchilla", chin, C, flops_per_token=8.0).table
    # curve_nd without annealing (C -> 0) under a constant LR without warmup: S1_tokens = D, so Chinchilla exactly
    flat = als.optimal_allocation({**P, "C": 1e-300}, C, "constant", law="curve_nd", warmup=0).table
    ref = al.compute_optimal("chinchilla", chin, C).table
    for t, r in ((got.table, ref8), (flat, ref)):
        for col in ("N_opt", "D_opt", "L_opt", "tokens_per_param"):
            np.testing.assert_allclose(t[col], r[col], rtol=1e-6)


def test_draws_give_intervals():
    rng = np.random.default_rng(0)
    draws = pd.DataFrame({k: v * np.exp(0.02 * rng.standard_normal(16)) for k, v in P.items()})
    src = jaxscale._draws.ParamSource(CURVE_ND, P, draws, "bootstrap")
    a = als.optimal_allocation(src, [1e20, 1e22], "cosine:final=0.1", level=0.8)
    t = a.table
    assert a.draws["N_opt"].shape == (16, 2) and (t["n_failed"] == 0).all()
    for q in al.QUANTITIES:
        assert (t[f"{q}_lo"] <= t[q]).all() and (t[q] <= t[f"{q}_hi"]).all() and (t[f"{q}_lo"] < t[f"{q}_hi"]).all()
    rec = json.loads(a.to_json())
    assert rec["kind"] == "optimal_allocation" and rec["settings"]["schedule"] == "cosine:final=0.1"
    assert rec["records"][0]["intervals"]["tokens_per_param"][0] < rec["records"][0]["tokens_per_param"]
    # the gains over draws too
    g = als.anneal_gain(src, 2e10, decay_tokens=2e9, N=1e9)
    assert g.draws["gain"].shape == (16, 1) and g.table["gain_lo"][0] < g.table["gain"][0] < g.table["gain_hi"][0]


def test_anneal_gain_sign_shape_and_bound():
    decay = np.geomspace(1e7, 1e11, 13)
    t = als.anneal_gain(P, 2e10, decay_tokens=decay, N=1e9, law="curve_nd").table
    gain, vs_branch = t["gain"].to_numpy(), t["gain_vs_branch"].to_numpy()
    assert (gain > 0).all() and (vs_branch > gain).all()
    # the gain over a constant run of the same tokens rises while the annealing area fills, then falls as the
    # decay costs forward area; over the branch point it keeps rising (more tokens, and annealed)
    top = int(np.argmax(gain))
    assert 0 < top < len(decay) - 1
    assert (np.diff(gain[:top + 1]) > 0).all() and (np.diff(gain[top:]) < 0).all()
    assert (np.diff(vs_branch) > 0).all()
    # S2_peak <= (1 - final) / (1 - lambda): no anneal gains more than C times that
    assert gain.max() < P["C"] * 0.9 / (1 - ANNEAL_DECAY)
    np.testing.assert_allclose(t["L_constant"] - t["L_annealed"], gain, rtol=1e-12)
    np.testing.assert_allclose(t["end"], 2e10 + decay, rtol=1e-12)
    # decay_fraction is the decay's share of the branch's whole length (OLMo's WSD: the last 10%)
    f = als.anneal_gain(P, 9e9, decay_fraction=0.1, N=1e9, law="curve_nd").table
    assert f["decay_tokens"][0] == pytest.approx(1e9) and f["end"][0] == pytest.approx(1e10)


def test_anneal_gain_of_one_run_law_in_steps_matches_the_per_step_covariates():
    # tissue sees S1, S2 in LR x steps: with batch_size=1 the positions are steps; compare with Schedule histories
    p = dict(L0=2.5, A=0.6, alpha=0.5, C=1e-3)
    peak, warm, at, n = 3e-4, 200, 6000, 1500
    t = als.anneal_gain(p, at, decay_tokens=n, batch_size=1, warmup=warm, peak=peak, final=0.05, law="tissue").table
    tissue = jaxscale.laws.get("tissue")

    def loss(s):
        cov = covariates(s.history(), [s.steps], peak=peak)
        return float(tissue.predict(p, S1=cov["S1"], S2=cov["S2"])[0])

    assert t["L_branch"][0] == pytest.approx(loss(Schedule("constant", at, warm, peak)), rel=1e-10)
    assert t["L_constant"][0] == pytest.approx(loss(Schedule("constant", at + n, warm, peak)), rel=1e-10)
    assert t["L_annealed"][0] == pytest.approx(loss(Schedule("wsd", at + n, warm, peak, 0.05, n / (at + n))),
                                               rel=1e-10)
    # a schedule-blind law gains nothing over the constant run
    chin = {k: P[k] for k in ("E", "A", "B", "alpha", "beta")}
    assert als.anneal_gain(chin, 2e10, N=1e9, law="chinchilla").table["gain"][0] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("call, match", [
    (lambda: als.ScheduleFamily.parse("cosnie:final=0.1"), "unknown kind 'cosnie'"),
    (lambda: als.ScheduleFamily.parse("cosine:steps=100"), "steps follow from each run's D / batch_size"),
    (lambda: als.ScheduleFamily.parse("wsd:decay=1.5"), "decay must be a fraction"),
    (lambda: als.ScheduleFamily.parse("cosine:decay=0.2"), "decay applies to wsd only"),
    (lambda: als.ScheduleFamily.parse("cosine:final=high"), "final must be a number"),
    (lambda: als.schedule_covariates("wsd", 1e9, 1e9, batch_size=1e6), r"row 0 \(N = 1e\+09, D = 1e\+09\)"),
    (lambda: als.schedule_covariates("cosine", [1e9, -1], 1e10), "N must be finite and > 0"),
    (lambda: als.schedule_covariates("cosine", 1e9, 1e10, batch_size="gpt3"), "batch_size"),
    (lambda: als.optimal_allocation(P, -1.0, law="curve_nd"), "C must be > 0"),
    (lambda: als.optimal_allocation(dict(L0=2.5, A=0.6, alpha=0.5, C=1e-3), 1e21, law="tissue"), "no N"),
    (lambda: als.optimal_allocation(P, 1e21, 42, law="curve_nd"), "schedule must be a ScheduleFamily"),
    (lambda: als.anneal_gain(P, 1e5, N=1e9, law="curve_nd"), "before the warmup"),
    (lambda: als.anneal_gain(P, 1e10, law="curve_nd", batch_size=1e6, warmup=0), r"needs the covariates \['N'\]"),
    (lambda: als.anneal_gain(dict(L0=2.5, A=0.6, alpha=0.5, C=1e-3), 1e4, law="tissue", batch_size=1, warmup=0),
     "Give peak="),
    (lambda: als.anneal_gain(P, 1e10, decay_tokens=1e9, decay_fraction=0.1, N=1e9, law="curve_nd"), "not both"),
    (lambda: als.anneal_gain(P, 1e10, decay_fraction=1.0, N=1e9, law="curve_nd"), r"in \(0, 1\)"),
    (lambda: als.anneal_gain(P, 1e10, law="curve_nd"), "batch_size='olmo' follows from N"),
])
def test_bad_inputs_are_clear_errors(call, match):
    with pytest.raises(JaxscaleError, match=match):
        call()


def test_multi_power_is_refused_with_the_reason():
    mp = jaxscale.laws.get("multi_power")
    p = dict(L0=2.4, A=0.65, alpha=0.43, B=523.0, C=2.0, beta=0.6, gamma=0.6)
    with pytest.raises(al.AllocationError, match="multi-power"):
        als.anneal_gain(p, 1e4, law=mp, batch_size=1, warmup=0, peak=3e-4)


def test_cli_allocate_with_a_schedule(tmp_path, capsys):
    fit = tmp_path / "fit.json"
    fit.write_text(json.dumps({"law": "curve_nd", "params": P}))
    out = tmp_path / "alloc.json"
    assert main(["allocate", "--fit", str(fit), "--compute", "1e20", "1e22", "--schedule", "wsd:decay=0.1",
                 "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "under wsd:final=0.1,decay=0.1" in text and "tokens_per_param" in text
    rec = json.loads(out.read_text())
    ref = als.optimal_allocation(P, [1e20, 1e22], "wsd:decay=0.1", law="curve_nd").table
    np.testing.assert_allclose([r["N_opt"] for r in rec["records"]], ref["N_opt"], rtol=1e-12)
    for argv, match in ((["--schedule", "cosine", "--unique-tokens", "1e10"], "separate questions"),
                        (["--warmup", "100"], "give --schedule too"),
                        (["--schedule", "cosine:steps=5"], "steps follow"),
                        (["--schedule", "cosine", "--batch-size", "-3"], "--batch-size must be > 0")):
        try:  # checked by the parser (exit 2) or by the command (return 2)
            code = main(["allocate", "--fit", str(fit), "--compute", "1e21", *argv])
        except SystemExit as e:
            code = e.code
        assert code == 2
        err = capsys.readouterr().err
        assert match in err and err.count("\n") == 1, err


# ------------------------------------------------------------------------------------------ the OLMo ladder
@pytest.fixture(scope="module")
def ladder_fit():
    """curve_nd on every checkpoint of the 190M-760M runs of all three schedules (as benchmarks/bench_curves.py)."""
    data = jaxscale.datasets.olmo_curves()
    return jaxscale.fit("curve_nd", data.subset(data.covariates["N"] < 1e9))


@pytest.mark.slow
def test_ladder_cosine_against_wsd_optimum(ladder_fit):
    C = 1e21
    t = {s: als.optimal_allocation(ladder_fit, C, s).table for s in ("cosine:final=0.1", "wsd:decay=0.1,final=0.1")}
    for spec, tab in t.items():
        N, loss = _brute_force(ladder_fit.params, C, spec)
        assert tab["L_opt"][0] == pytest.approx(loss.min(), rel=1e-9)
        assert tab["N_opt"][0] == pytest.approx(N[np.argmin(loss)], rel=2e-3)
    # each family's optimum beats the other's (N, D) trained under it
    for spec, other in itertools.permutations(t):
        cov = als.schedule_covariates(spec, t[other]["N_opt"], t[other]["D_opt"], whole_steps=False)
        there = CURVE_ND.predict(ladder_fit.params, **{c: cov[c].to_numpy() for c in CURVE_ND.covariates})[0]
        assert t[spec]["L_opt"][0] < there


@pytest.mark.slow
def test_ladder_anneal_gain_against_the_measured_wsd_runs(ladder_fit):
    """The ladder's WSD runs branch off its constant runs: measured gain = constant loss - WSD loss at the same
    step. Once the decay is long enough for the annealing area to fill (>= 3000 steps) the fit's prediction is
    within 25%; shorter decays gain more than Tissue et al.'s lambda = 0.999 lets the law predict."""
    const, decay = jaxscale.datasets.load("olmo_const"), jaxscale.datasets.load("olmo_decay")
    rows = []
    for run, g in decay.groupby("run", sort=False):
        c = const[const["size"] == g["size"].iloc[0]].sort_values("step")
        N, b = float(g.params.iloc[0]), float(g.batch_size_tokens.iloc[0])
        T = int(np.ceil(20 * g.chinchilla_multiplier.iloc[0] * N / b))
        n = round(0.1 * T)
        last = g.sort_values("step").iloc[-1]
        measured = float(np.interp(last.step, c.step, c.loss_c4)) - float(last.loss_c4)
        pred = als.anneal_gain(ladder_fit, (T - n) * b, decay_tokens=n * b, N=N, batch_size=b, warmup=round(N / b))
        rows.append((run, n, measured, float(pred.table["gain"][0])))
    r = pd.DataFrame(rows, columns=["run", "decay_steps", "measured", "predicted"])
    assert (r.measured > 0).all() and (r.predicted > 0).all()
    long = r[r.decay_steps >= 3000]
    assert len(long) >= 8
    assert (np.abs(long.predicted / long.measured - 1) < 0.25).all(), long
