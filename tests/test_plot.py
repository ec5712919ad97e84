"""jaxscale.plot: each figure is rendered with Agg and its artists checked against the numbers it should show."""

import types

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PathCollection, PolyCollection  # noqa: E402

import jaxscale  # noqa: E402
from jaxscale import plot  # noqa: E402
from jaxscale._draws import ParamSource  # noqa: E402
from jaxscale.allocate import compute_optimal  # noqa: E402
from jaxscale.bayes._many import SBCResult  # noqa: E402
from jaxscale.isoflop import isoflop  # noqa: E402
from jaxscale.laws import get  # noqa: E402
from jaxscale.plot import PlotError  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def demo():
    return jaxscale.demo_data()


@pytest.fixture(scope="module")
def point_fit(demo):
    return jaxscale.fit("chinchilla", demo, starts=16, key=0)


@pytest.fixture(scope="module")
def draws_source(point_fit):
    """500 draws around the fit (a stand-in for bootstrap draws: the plots only read them)."""
    rng = np.random.default_rng(0)
    p = point_fit.params
    draws = pd.DataFrame({k: v * np.exp(0.01 * rng.standard_normal(500)) for k, v in p.items()})
    return ParamSource(point_fit.law, dict(p), draws, "bootstrap")


def _scatter_offsets(ax):
    return [c.get_offsets() for c in ax.collections if isinstance(c, PathCollection)]


def _span(patch, axis):
    """Data extent of an axvspan/axhspan (a Polygon in older matplotlib, a Rectangle in newer)."""
    if hasattr(patch, "get_x"):
        lo = patch.get_x() if axis == "x" else patch.get_y()
        return lo, lo + (patch.get_width() if axis == "x" else patch.get_height())
    v = patch.get_xy()[:, 0 if axis == "x" else 1]
    return v.min(), v.max()


def _render(fig, tmp_path, name):
    path = tmp_path / f"{name}.png"
    assert plot.save(fig, path, dpi=50) == str(path)
    assert path.stat().st_size > 1000


# ---------------------------------------------------------------------------------------------------------------------
# save: checked, rendered in memory, written atomically


def test_save_writes_the_format_its_suffix_names(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([1, 2], [3, 4])
    heads = {"png": b"\x89PNG", "pdf": b"%PDF", "svg": b"<?xml"}
    for fmt, head in heads.items():
        plot.save(ax if fmt == "svg" else fig, tmp_path / f"f.{fmt.upper() if fmt == 'pdf' else fmt}")
    assert (tmp_path / "f.png").read_bytes().startswith(heads["png"])
    assert (tmp_path / "f.PDF").read_bytes().startswith(heads["pdf"])
    assert (tmp_path / "f.svg").read_bytes().startswith(heads["svg"])
    plot.save(fig, tmp_path / "figure", format="png")  # format= overrides (here: supplies) the suffix
    assert (tmp_path / "figure").read_bytes().startswith(heads["png"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.PDF", "f.png", "f.svg", "figure"]


def test_save_checks_the_path_and_format_before_rendering(tmp_path):
    from jaxscale.errors import ArgumentError

    fig, _ = plt.subplots()
    with pytest.raises(ArgumentError, match=r"path .*/nowhere/f.png': directory .* does not exist"):
        plot.save(fig, tmp_path / "nowhere" / "f.png")
    with pytest.raises(ArgumentError, match=r"is a directory"):
        plot.save(fig, tmp_path)
    with pytest.raises(ArgumentError, match=r"has format 'docx', which matplotlib cannot write; use one of \[.*'png'"):
        plot.save(fig, tmp_path / "f.docx")
    with pytest.raises(ArgumentError, match=r"has no suffix naming a format; add one \(e.g. '.png'\) or pass format="):
        plot.save(fig, tmp_path / "figure")
    with pytest.raises(ArgumentError, match="save writes a matplotlib Figure or Axes; got dict"):
        plot.save({}, tmp_path / "f.png")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_render_leaves_the_old_figure(tmp_path):
    path = tmp_path / "f.png"
    path.write_bytes(b"old figure")
    fig, _ = plt.subplots()
    with pytest.raises(TypeError):
        plot.save(fig, path, not_a_savefig_option=1)
    assert path.read_bytes() == b"old figure" and [p.name for p in tmp_path.iterdir()] == ["f.png"]


def test_contours_draw_the_law_the_data_and_the_frontier(point_fit, demo, tmp_path):
    levels = [2.3, 2.5, 2.8, 3.2]
    ax = plot.contours(point_fit, demo, levels=levels)
    _render(ax.figure, tmp_path, "contours")
    cs = [c for c in ax.collections if hasattr(c, "levels")]
    assert len(cs) == 1 and np.allclose(cs[0].levels, levels)
    # every contour vertex lies where the fitted law equals its level (grid interpolation: 1% in loss)
    for level, paths in zip(cs[0].levels, [c.get_paths() for c in [cs[0]]][0], strict=True):
        v = paths.vertices
        assert len(v) > 10
        C, N = v[:, 0], v[:, 1]
        L = point_fit.law.predict(point_fit.params, N=N, D=C / (6 * N))
        np.testing.assert_allclose(L, level, rtol=1e-2)
    (pts,) = _scatter_offsets(ax)
    np.testing.assert_allclose(pts[:, 0], demo.covariates["C"])
    np.testing.assert_allclose(pts[:, 1], demo.covariates["N"])
    (line,) = [ln for ln in ax.get_lines() if ln.get_label().startswith("compute-optimal")]
    C, N = line.get_data()
    np.testing.assert_allclose(N, compute_optimal("chinchilla", point_fit, C).table["N_opt"], rtol=1e-10)
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert ax.get_xlim() == pytest.approx((demo.covariates["C"].min() / 3, demo.covariates["C"].max() * 3))
    assert ax.get_xlabel() == "training compute C (FLOPs)" and ax.get_ylabel() == "parameters N"


def test_contours_without_data_uses_default_range_and_an_axes_given(point_fit):
    fig, ax = plt.subplots()
    out = plot.contours(point_fit, ax=ax, frontier=False)
    assert out is ax
    assert ax.get_xlim() == pytest.approx((1e18, 1e25))
    assert not ax.get_lines() and not _scatter_offsets(ax)


def test_contours_reject_a_law_not_of_N_and_D(demo):
    res = jaxscale.fit(get("power", resource="N"), demo, starts=8, key=0)
    with pytest.raises(PlotError, match=r"laws of N and D; law 'power' takes \['N'\]"):
        plot.contours(res, demo)


def test_residuals_one_panel_per_covariate_with_log_residuals(point_fit, demo, tmp_path):
    fig = plot.residuals(point_fit, demo)
    _render(fig, tmp_path, "residuals")
    assert [a.get_xlabel() for a in fig.axes] == ["N", "D"]
    expect = np.log(demo.y / point_fit.predict(demo))
    for ax, c in zip(fig.axes, ["N", "D"], strict=True):
        (pts,) = _scatter_offsets(ax)
        np.testing.assert_allclose(pts[:, 0], demo.covariates[c])
        np.testing.assert_allclose(pts[:, 1], expect, atol=1e-12)
    assert fig.axes[0].get_ylabel() == "log(observed / predicted)"


def test_residuals_name_the_missing_covariate(point_fit):
    only_n = jaxscale.ScalingData.from_arrays(N=[1e8, 1e9, 1e10], loss=[3.0, 2.6, 2.3])
    with pytest.raises(PlotError, match=r"lacks covariate\(s\) \['D'\]"):
        plot.residuals(point_fit, only_n)


def test_isoflop_stars_at_the_minima_of_used_budgets(demo, tmp_path):
    res = isoflop(demo, n_resamples=10, key=0)
    ax = plot.isoflop(res, demo)
    _render(ax.figure, tmp_path, "isoflop")
    b = res.budgets
    stars = [c for c in ax.collections if isinstance(c, PathCollection) and len(c.get_offsets()) == 1]
    got = np.array(sorted(tuple(c.get_offsets()[0]) for c in stars))
    want = np.array(sorted(zip(b["N_opt"], b["L_min"], strict=True)))
    np.testing.assert_allclose(got, want)
    assert len(ax.get_lines()) == int(((b["c2"] > 0) & np.isfinite(b["c2"])).sum())
    # each parabola passes through its minimum's neighbourhood: its lowest point is L_min
    for line, row in zip(ax.get_lines(), b.itertuples(), strict=True):
        assert line.get_ydata().min() == pytest.approx(row.L_min, abs=2e-3)
    n_points = sum(len(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection)) - len(stars)
    assert n_points == len(demo)
    assert f"a = {res.a:.3f}" in ax.get_title()


def test_isoflop_bad_inputs(demo, point_fit):
    res = isoflop(demo, n_resamples=0, key=0)
    with pytest.raises(PlotError, match="IsoFlopResult"):
        plot.isoflop(point_fit, demo)
    with pytest.raises(PlotError, match="not the data the IsoFlopResult was fitted to"):
        plot.isoflop(res, demo.subset(np.arange(50)))


def test_frontier_bands_are_the_allocation_intervals(draws_source, tmp_path):
    C = np.logspace(19, 25, 13)
    alloc = compute_optimal("chinchilla", draws_source, C, level=0.8)
    fig = plot.frontier(alloc)
    _render(fig, tmp_path, "frontier")
    assert [a.get_ylabel() for a in fig.axes] == ["N_opt", "D_opt", "tokens_per_param"]
    t = alloc.table
    for ax, q in zip(fig.axes, ["N_opt", "D_opt", "tokens_per_param"], strict=True):
        line = ax.get_lines()[0]
        np.testing.assert_allclose(line.get_xdata(), C)
        np.testing.assert_allclose(line.get_ydata(), t[q])
        (band,) = [c for c in ax.collections if isinstance(c, PolyCollection)]
        ys = band.get_paths()[0].vertices[:, 1]
        assert ys.min() == pytest.approx(t[f"{q}_lo"].min()) and ys.max() == pytest.approx(t[f"{q}_hi"].max())
        assert "80% interval" in [h.get_label() for h in ax.get_legend_handles_labels()[0]] or q == "D_opt"
    ref = [ln for ln in fig.axes[2].get_lines() if ln.get_label() == "20 tokens/param"]
    assert len(ref) == 1 and ref[0].get_ydata()[0] == 20.0


def test_frontier_needs_draws_for_a_band(point_fit):
    alloc = compute_optimal("chinchilla", point_fit, [1e21, 1e22, 1e23])
    with pytest.raises(PlotError, match="has no draws for a band.*band=False"):
        plot.frontier(alloc)
    fig = plot.frontier(alloc, band=False)
    assert not [c for a in fig.axes for c in a.collections if isinstance(c, PolyCollection)]
    with pytest.raises(PlotError, match="Allocation from jaxscale.allocate.compute_optimal"):
        plot.frontier(alloc.table)


def test_marginals_and_pairs_from_draws(draws_source, tmp_path):
    fig = plot.marginals(draws_source)
    _render(fig, tmp_path, "marginals")
    titles = [a.get_title() for a in fig.axes if a.get_visible() and a.get_title()]
    assert titles == ["E", "A", "B", "alpha", "beta"]
    fig = plot.pairs(draws_source, var_names=["alpha", "beta", "E"])
    _render(fig, tmp_path, "pairs")
    scatters = [c for a in fig.axes for c in a.collections if isinstance(c, PathCollection)]
    assert len(scatters) == 3  # one per pair of three parameters
    offsets = {tuple(np.round(s.get_offsets()[:2, 0], 12)) for s in scatters}
    assert tuple(np.round(draws_source.draws["alpha"][:2], 12)) in offsets


def test_marginals_and_pairs_need_draws(point_fit, draws_source):
    with pytest.raises(PlotError, match="marginals needs draws.*fit has only a point estimate"):
        plot.marginals(point_fit)
    with pytest.raises(PlotError, match="pairs needs draws"):
        plot.pairs(point_fit)
    with pytest.raises(PlotError, match=r"no draws of \['gamma'\]"):
        plot.marginals(draws_source, var_names=["gamma"])
    with pytest.raises(PlotError, match="marginals: Expected a FitResult"):
        plot.marginals([1, 2, 3])


def _law_attrs():
    return {"law": "chinchilla", "law_options": "{}"}


def test_prior_posterior_overlays_both(tmp_path, draws_source):
    import arviz as az

    rng = np.random.default_rng(1)
    post = {k: draws_source.draws[k].to_numpy()[None] for k in draws_source.law.param_names}
    prior = {"E": np.exp(rng.normal(0.5, 0.5, (1, 300))), "A": np.exp(rng.normal(6, 1, (1, 300))),
             "B": np.exp(rng.normal(6, 1, (1, 300))), "alpha": np.abs(rng.normal(0.3, 0.1, (1, 300))),
             "beta": np.abs(rng.normal(0.3, 0.1, (1, 300)))}
    idata = az.from_dict(posterior=post, prior=prior)
    idata.posterior.attrs.update(_law_attrs())
    fig = plot.prior_posterior(idata)
    _render(fig, tmp_path, "prior_posterior")
    visible = [a for a in fig.axes if a.get_visible()]
    assert [a.get_xlabel() for a in visible] == ["log10 E", "log10 A", "log10 B", "alpha", "beta"]
    for ax in visible:
        labels = [p.get_label() for p in ax.patches if p.get_label() in ("prior", "posterior")]
        assert sorted(set(labels)) == ["posterior", "prior"]
    # the posterior histogram spans the posterior draws (of log10 A here)
    ax = visible[1]
    bars = [p for p in ax.patches if type(p).__name__ == "Rectangle"]
    assert len(bars) == 40
    lA = np.log10(draws_source.draws["A"])
    assert bars[0].get_x() == pytest.approx(lA.min())
    assert bars[-1].get_x() + bars[-1].get_width() == pytest.approx(lA.max())
    assert sum(b.get_height() * b.get_width() for b in bars) == pytest.approx(1.0)  # a density


def test_prior_posterior_needs_prior_draws(draws_source):
    import arviz as az

    idata = az.from_dict(posterior={k: draws_source.draws[k].to_numpy()[None] for k in draws_source.law.param_names},
                         )
    with pytest.raises(PlotError, match="no jaxscale law in its attrs"):
        plot.marginals(idata)
    idata.posterior.attrs.update(_law_attrs())
    with pytest.raises(PlotError, match="no prior draws; sample with .*prior_draws=500"):
        plot.prior_posterior(idata)
    with pytest.raises(PlotError, match="InferenceData"):
        plot.prior_posterior(draws_source)


def test_backtest_shows_fit_region_held_out_points_and_intervals(demo, tmp_path):
    bt = jaxscale.backtest("chinchilla", demo, split={"C": 1.1e21}, starts=16, key=0)
    ax = plot.backtest(bt, demo)
    _render(ax.figure, tmp_path, "backtest")
    t = bt.table
    train = demo.covariates["C"] <= 1.1e21
    (span,) = [p for p in ax.patches if p.get_label() == "fit region"]
    x0, x1 = _span(span, "x")
    assert x0 == pytest.approx(demo.covariates["C"][train].min())
    assert x1 == pytest.approx(demo.covariates["C"][train].max())
    labels = {c.get_label(): c for c in ax.collections if isinstance(c, PathCollection)}
    assert len(labels[f"training ({int(train.sum())})"].get_offsets()) == train.sum()
    held = [c for lab, c in labels.items() if lab.startswith("held out")]
    actual = np.concatenate([c.get_offsets()[:, 1] for c in held])
    assert sorted(actual) == pytest.approx(sorted(t["actual"]))
    inside = [c for lab, c in labels.items() if "inside" in lab]
    assert sum(len(c.get_offsets()) for c in inside) == int(t["covered"].sum())
    np.testing.assert_allclose(labels["forecast"].get_offsets()[:, 1], t["predicted"])
    # error bars span lo..hi
    segs = np.concatenate([lc.get_segments() for lc in ax.collections if type(lc).__name__ == "LineCollection"])
    assert sorted(s[:, 1].min() for s in segs) == pytest.approx(sorted(t["lo"]))
    assert sorted(s[:, 1].max() for s in segs) == pytest.approx(sorted(t["hi"]))
    assert "90% coverage" in ax.get_title()


def test_backtest_bad_inputs(demo, point_fit):
    bt = jaxscale.backtest("chinchilla", demo, split={"C": 1.1e21}, starts=8, key=0)
    with pytest.raises(PlotError, match=r"x='U' is not a covariate of this backtest; choose one of \['N', 'D', 'C'\]"):
        plot.backtest(bt, x="U")
    with pytest.raises(PlotError, match="BacktestResult"):
        plot.backtest(point_fit)


def _sbc_result(ranks, n_draws, status=None):
    ranks = pd.DataFrame(ranks)
    K = len(ranks)
    post = types.SimpleNamespace(status=np.array(["ok"] * K if status is None else status))
    return SBCResult(pd.DataFrame({c: np.zeros(K) for c in ranks}), ranks, pd.DataFrame(), pd.DataFrame(), post,
                     n_draws, 1.0)


def test_sbc_rank_histograms_and_uniform_band(tmp_path):
    rng = np.random.default_rng(0)
    ranks = {"alpha": rng.integers(0, 101, 200), "beta": rng.integers(0, 101, 200)}
    status = ["ok"] * 190 + ["failed"] * 10
    res = _sbc_result(ranks, 100, status)
    fig = plot.sbc_ranks(res, bins=10)
    _render(fig, tmp_path, "sbc")
    visible = [a for a in fig.axes if a.get_visible()]
    assert [a.get_xlabel() for a in visible] == ["rank of alpha", "rank of beta"]
    for ax, name in zip(visible, ["alpha", "beta"], strict=True):
        heights = [p.get_height() for p in ax.patches if not p.get_label().startswith("99%")]
        want = np.histogram(ranks[name][:190], bins=10, range=(0, 101))[0]
        np.testing.assert_array_equal(heights, want)
        (band,) = [p for p in ax.patches if p.get_label().startswith("99% range")]
        y0, y1 = _span(band, "y")
        # Binomial(190, 0.1): mean 19, sd 4.1; the exact 99% range is about 9..30
        assert 8 <= y0 <= 10 and 29 <= y1 <= 31
    assert "190 datasets, 100 draws each" in fig._suptitle.get_text()


def test_sbc_bad_inputs():
    with pytest.raises(PlotError, match="SBCResult"):
        plot.sbc_ranks({"alpha": [1, 2]})
    res = _sbc_result({"alpha": [1, 2, 3]}, 10, ["failed"] * 3)
    with pytest.raises(PlotError, match="every dataset's sampler failed"):
        plot.sbc_ranks(res)
    with pytest.raises(PlotError, match=r"no ranks of \['beta'\]"):
        plot.sbc_ranks(_sbc_result({"alpha": [1, 2, 3]}, 10), var_names=["beta"])


def test_binomial_interval_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    lo, hi = plot._binomial_interval(190, 0.1, 0.99)
    assert (lo, hi) == (stats.binom.ppf(0.005, 190, 0.1), stats.binom.ppf(0.995, 190, 0.1))


@pytest.mark.slow
def test_plots_from_real_bootstrap_posterior_and_sbc(demo, tmp_path):
    """End to end on real draws: a bootstrap, a NUTS posterior with prior draws, an SBC study (about 2 minutes)."""
    from jaxscale import bayes

    boot = jaxscale.bootstrap("chinchilla", demo, 100, key=0, starts="warm")
    fig = plot.frontier(compute_optimal("chinchilla", boot, np.logspace(19, 25, 20)))
    _render(fig, tmp_path, "boot_frontier")
    assert len(plot.marginals(boot).axes) >= 5
    half = demo.subset(np.arange(0, 96, 2))
    idata = bayes.sample("chinchilla", half, key=0, num_chains=2, num_warmup=300, num_samples=300, prior_draws=300,
                         warn=False)
    fig = plot.prior_posterior(idata)
    assert len([a for a in fig.axes if a.get_visible()]) == 5
    ax = plot.contours(idata, half)
    assert "posterior" in ax.get_title()
    post_alloc = compute_optimal("chinchilla", idata, np.logspace(20, 24, 9))
    fig = plot.frontier(post_alloc)
    assert fig.axes[0].get_lines()[0].get_label() == "estimate (posterior)"
    sbc = bayes.sbc("chinchilla", demo.subset(np.arange(0, 60, 2)), 24, key=0, num_warmup=100, num_samples=100)
    fig = plot.sbc_ranks(sbc)
    _render(fig, tmp_path, "sbc_real")
    assert fig.axes[0].get_xlabel().startswith("rank of")


def test_import_jaxscale_does_not_load_plot():
    """``jaxscale.plot`` (and pyplot) load only when asked for."""
    import subprocess
    import sys

    code = "import sys, jaxscale; print('jaxscale.plot' in sys.modules, 'matplotlib.pyplot' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_published_parameters_plot_with_law(demo):
    """A dict of published parameters needs law=; with it, contours and residuals draw that law."""
    hoffmann = jaxscale.HOFFMANN_UNROUNDED
    with pytest.raises(PlotError, match="needs law="):
        plot.contours(hoffmann, demo)
    ax = plot.contours(hoffmann, demo, law="chinchilla", levels=[2.5])
    (cs,) = [c for c in ax.collections if hasattr(c, "levels")]
    v = cs.get_paths()[0].vertices
    np.testing.assert_allclose(get("chinchilla").predict(hoffmann, N=v[:, 1], D=v[:, 0] / (6 * v[:, 1])), 2.5,
                               rtol=1e-2)
    fig = plot.residuals(hoffmann, demo, law="chinchilla", title="published")
    assert fig._suptitle.get_text() == "published"
    # demo data are Hoffmann's law with 1% noise: residuals are that noise
    (pts,) = _scatter_offsets(fig.axes[0])
    assert 0.005 < np.sqrt(np.mean(pts[:, 1] ** 2)) < 0.015
    with pytest.raises(PlotError, match="holds a fit of law 'chinchilla'.*not 'kaplan'"):
        plot.residuals(jaxscale.fit("chinchilla", demo, starts=8, key=0), demo, law="kaplan")


# ---------------------------------------------------------------------------------------------------------------------
# calibration: reliability diagram of forecasts' PIT values


@pytest.fixture(scope="module")
def small_backtest():
    """A real backtest, fast: a power law in x, 22 training and 8 held-out points, residual predictive."""
    x = np.logspace(2, 6, 30)
    y = 0.5 + 40 * x**-0.3 * np.exp(0.01 * np.random.default_rng(0).standard_normal(30))
    return jaxscale.backtest("power", {"x": x, "loss": y}, split={"x": 1e5}, starts=16, key=0, method="fit")


def _with_pit(bt, pit, method=None):
    """The backtest with other PIT values (and method): a real BacktestResult with a chosen table."""
    from jaxscale.forecast import BacktestResult

    table = pd.DataFrame({"pit": np.asarray(pit, float)})
    return BacktestResult(table, {**bt.summary, "method": method or bt.summary["method"], "n_test": len(table)},
                          bt.forecast)


def _hand_coverage(pit, levels):
    pit = np.asarray(pit, float)
    return np.array([np.mean([(1 - lv) / 2 <= p <= (1 + lv) / 2 for p in pit]) for lv in levels])


def _lines_by_label(ax):
    return {ln.get_label(): ln for ln in ax.get_lines()}


def _band_edges(coll, xs):
    v = coll.get_paths()[0].vertices
    lo = [v[np.isclose(v[:, 0], x), 1].min() for x in xs]
    hi = [v[np.isclose(v[:, 0], x), 1].max() for x in xs]
    return np.array(lo), np.array(hi)


def test_calibration_of_a_real_backtest_is_its_pit_coverage(small_backtest, tmp_path):
    bt = small_backtest
    ax = plot.calibration(bt)
    _render(ax.figure, tmp_path, "calibration")
    pit = bt.table["pit"].to_numpy()
    levels = np.array(plot.CALIBRATION_LEVELS)
    assert np.allclose(levels, np.append(np.linspace(0.05, 0.95, 19), 0.99))
    lines = _lines_by_label(ax)
    line = lines["fit: 8 held-out points"]
    np.testing.assert_allclose(line.get_xdata(), levels)
    np.testing.assert_allclose(line.get_ydata(), _hand_coverage(pit, levels))
    diag = lines["calibrated: y = x"]
    assert list(diag.get_xdata()) == [0.0, 1.0] and list(diag.get_ydata()) == [0.0, 1.0]
    (dots,) = _scatter_offsets(ax)  # the levels every summary reports, on the line
    np.testing.assert_allclose(dots[:, 0], [0.5, 0.8, 0.9, 0.95])
    np.testing.assert_allclose(dots[:, 1], _hand_coverage(pit, [0.5, 0.8, 0.9, 0.95]))
    (band,) = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert band.get_label() == "95% range if calibrated (n = 8)"
    assert ax.get_xlabel() == "nominal coverage" and ax.get_ylabel() == "observed coverage"
    assert ax.get_xlim() == (0.0, 1.0) and ax.get_ylim() == (0.0, 1.0)
    assert ax.get_title() == "calibration: fit, 8 held-out points"
    assert "fit: 8 held-out points" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_calibration_band_is_the_exact_binomial_range(tmp_path):
    stats = pytest.importorskip("scipy.stats")
    pit = np.random.default_rng(3).uniform(size=48)
    levels = [0.1, 0.3, 0.5, 0.8, 0.9, 0.95, 0.99]
    ax = plot.calibration(pd.DataFrame({"pit": pit}), levels=levels, band=0.9)
    (band,) = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert band.get_label() == "90% range if calibrated (n = 48)"
    lo, hi = _band_edges(band, levels)
    np.testing.assert_allclose(lo, stats.binom.ppf(0.05, 48, levels) / 48)
    np.testing.assert_allclose(hi, stats.binom.ppf(0.95, 48, levels) / 48)
    line = _lines_by_label(ax)["forecast: 48 held-out points"]
    np.testing.assert_allclose(line.get_ydata(), _hand_coverage(pit, levels))
    # uniform PIT: the calibrated line stays inside (or on the edge of) the chance band at every level
    assert np.all((line.get_ydata() >= lo - 1e-12) & (line.get_ydata() <= hi + 1e-12))


def test_calibration_pools_results_of_one_method(small_backtest):
    rng = np.random.default_rng(1)
    parts = [rng.uniform(size=k) for k in (8, 12, 5)]
    ax = plot.calibration([_with_pit(small_backtest, p) for p in parts], levels=[0.5, 0.9])
    (line,) = [ln for ln in ax.get_lines() if ln.get_label().startswith("fit")]
    assert line.get_label() == "fit: 25 held-out points"
    np.testing.assert_allclose(line.get_ydata(), _hand_coverage(np.concatenate(parts), [0.5, 0.9]))
    (band,) = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert band.get_label().endswith("(n = 25)")
    assert ax.get_title() == "calibration: fit, 25 held-out points"


def test_calibration_draws_one_line_per_method(small_backtest):
    rng = np.random.default_rng(2)
    fit_a, fit_b, cal = rng.uniform(size=10), rng.uniform(size=6), rng.uniform(0.2, 0.8, size=16)
    results = (_with_pit(small_backtest, fit_a), _with_pit(small_backtest, cal, "calibrated"),
               _with_pit(small_backtest, fit_b))
    ax = plot.calibration(results, levels=[0.2, 0.5, 0.8])
    lines = _lines_by_label(ax)
    assert sorted(lines) == ["calibrated: 16 held-out points", "calibrated: y = x", "fit: 16 held-out points"]
    np.testing.assert_allclose(lines["fit: 16 held-out points"].get_ydata(),
                               _hand_coverage(np.concatenate([fit_a, fit_b]), [0.2, 0.5, 0.8]))
    np.testing.assert_allclose(lines["calibrated: 16 held-out points"].get_ydata(),
                               _hand_coverage(cal, [0.2, 0.5, 0.8]))
    assert lines["fit: 16 held-out points"].get_color() != lines["calibrated: 16 held-out points"].get_color()
    assert len(_scatter_offsets(ax)) == 2
    assert len([c for c in ax.collections if isinstance(c, PolyCollection)]) == 1  # same n: one band
    assert ax.get_title() == "calibration: 2 methods, 32 held-out points"
    # a DataFrame's method column groups the same way; different n give a band each
    frame = pd.DataFrame({"pit": np.concatenate([fit_a, cal]), "method": ["fit"] * 10 + ["calibrated"] * 16})
    ax = plot.calibration(frame, levels=[0.5], label="chinchilla")
    assert {"chinchilla, fit: 10 held-out points", "chinchilla, calibrated: 16 held-out points"} <= set(
        _lines_by_label(ax))
    bands = sorted(c.get_label() for c in ax.collections if isinstance(c, PolyCollection))
    assert bands == ["95% range if calibrated (n = 10)", "95% range if calibrated (n = 16)"]


def test_calibration_on_a_given_axes_overlays_without_repeating_the_reference(small_backtest):
    fig, ax = plt.subplots()
    pit = np.linspace(0.02, 0.98, 8)
    out = plot.calibration(_with_pit(small_backtest, pit), ax=ax, label="power")
    assert out is ax
    plot.calibration(pd.DataFrame({"pit": pit[::-1]}), ax=ax, label="chinchilla")
    labels = [ln.get_label() for ln in ax.get_lines()]
    assert labels == ["calibrated: y = x", "power", "chinchilla"]
    assert len([c for c in ax.collections if isinstance(c, PolyCollection)]) == 1


def test_calibration_bad_inputs(small_backtest, point_fit):
    with pytest.raises(PlotError, match="calibration plots a BacktestResult.*got FitResult"):
        plot.calibration(point_fit)
    with pytest.raises(PlotError, match=r"got dict \(item 1 of the list\)"):
        plot.calibration([small_backtest, {"pit": [0.5]}])
    with pytest.raises(PlotError, match="empty list"):
        plot.calibration([])
    from jaxscale.forecast import BacktestResult

    no_pit = BacktestResult(small_backtest.table.drop(columns="pit"), small_backtest.summary, small_backtest.forecast)
    with pytest.raises(PlotError, match="has no 'pit' column; compute it with jaxscale.backtest or Forecast.check"):
        plot.calibration(no_pit)
    with pytest.raises(PlotError, match=r"DataFrame\) has no 'pit' column"):
        plot.calibration(pd.DataFrame({"actual": [1.0]}))
    with pytest.raises(PlotError, match="no held-out points to draw"):
        plot.calibration(pd.DataFrame({"pit": np.array([], float)}))
    with pytest.raises(PlotError, match=r"not numbers in \[0, 1\]"):
        plot.calibration(pd.DataFrame({"pit": [0.2, 1.5]}))
    with pytest.raises(PlotError, match=r"not numbers in \[0, 1\]"):
        plot.calibration(pd.DataFrame({"pit": [0.2, np.nan]}))
    for bad in ([0.5, 1.0], [0.0, 0.5], [], [0.5, np.nan]):
        with pytest.raises(PlotError, match=r"levels must be nominal coverages strictly between 0 and 1"):
            plot.calibration(small_backtest, levels=bad)
    with pytest.raises(PlotError, match="levels must be numbers"):
        plot.calibration(small_backtest, levels=["a"])
    with pytest.raises(PlotError, match=r"band is the probability .* in \(0, 1\)"):
        plot.calibration(small_backtest, band=95)
