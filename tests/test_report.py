"""jaxscale report: real result files (small fits on Epoch's data) rendered to one page, read back as HTML and in a
headless browser (Debian's chromium; skipped without it unless JAXSCALE_REQUIRE_BROWSER=1)."""

import html.parser
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.image as mpimg  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import jaxscale  # noqa: E402
from jaxscale.allocate import compute_optimal  # noqa: E402
from jaxscale.cli import main  # noqa: E402
from jaxscale.errors import ArgumentError, DataError  # noqa: E402
from jaxscale.forecast import forecast  # noqa: E402

CUTOFF = 1e21
BROWSER = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)


@pytest.fixture(scope="module")
def fit_file(tmp_path_factory):
    """A small fit's JSON (demo data, 16 starts): the cheap file of the default suite's tests."""
    path = tmp_path_factory.mktemp("fit") / "fit.json"
    jaxscale.fit("chinchilla", jaxscale.demo_data(), starts=16, key=0).to_json(path)
    return str(path)


@pytest.fixture(scope="module")
def results(tmp_path_factory, epoch_data):
    """Every kind of result file but a posterior, from small runs on Epoch's 240 points (~15 s in all)."""
    tmp = tmp_path_factory.mktemp("results")
    done = epoch_data.subset(epoch_data.covariates["C"] > CUTOFF)  # the runs "made later"
    fit = jaxscale.fit("chinchilla", epoch_data, starts=16, key=0)
    boot = jaxscale.bootstrap("chinchilla", epoch_data, 50, key=0, starts="warm")
    alloc = compute_optimal("chinchilla", boot, [1e21, 1e22, 1e23, 1e24])
    bt = jaxscale.backtest("chinchilla", epoch_data, split={"C": CUTOFF}, method="fit", starts=16, key=0)
    at = {"N": done.covariates["N"], "C": done.covariates["C"]}
    fc = forecast("chinchilla", epoch_data, split={"C": CUTOFF}, at=at, method="fit", starts=16, key=0)
    check = fc.check(done)
    paths = {k: str(tmp / f"{k}.json") for k in ("fit", "bootstrap", "allocation", "backtest", "forecast", "check")}
    fit.to_json(paths["fit"])
    boot.to_json(paths["bootstrap"])
    alloc.to_json(paths["allocation"])
    bt.to_json(paths["backtest"])
    fc.to_json(paths["forecast"])
    check.to_json(paths["check"])
    objects = {"fit": fit, "bootstrap": boot, "allocation": alloc, "backtest": bt, "forecast": fc, "check": check}
    return paths, objects


@pytest.fixture(scope="module")
def page(results, epoch_data, tmp_path_factory):
    """One report of every default-suite file, with the data they were made from."""
    paths, _ = results
    out = str(tmp_path_factory.mktemp("page") / "report.html")
    jaxscale.report(*paths.values(), out=out, data=epoch_data)
    return out, _read(out)


class _Text(html.parser.HTMLParser):
    """The visible text of a page (scripts and styles left out) and every URL its tags name (an in-page anchor
    ``#...`` or an inline ``data:`` image, such as a colour bar in an SVG, loads nothing)."""

    def __init__(self):
        super().__init__()
        self.text, self.urls, self._skip = [], [], 0

    def handle_starttag(self, tag, attrs):
        self._skip += tag in ("style", "script")
        self.urls += [v for k, v in attrs if k in ("src", "href", "xlink:href", "action", "poster", "data") and v]

    def handle_endtag(self, tag):
        self._skip -= tag in ("style", "script")

    def handle_data(self, data):
        if not self._skip:
            self.text.append(data)


def _parse(text):
    p = _Text()
    p.feed(text)
    return " ".join(" ".join(p.text).split()), p.urls


def _read(path) -> str:
    return pathlib.Path(path).read_text(encoding="utf-8")


def _json(path):
    return json.loads(_read(path))


def _expected_numbers(results) -> list[str]:
    """Numbers the page must show, as the report formats them (6 significant digits), read from the results."""
    paths, obj = results
    boot = _json(paths["bootstrap"])
    fc, check, bt = obj["forecast"], obj["check"], obj["backtest"]
    i = int(np.argmax(fc.points["C"].to_numpy()))
    lo, hi = fc.interval()
    alloc = _json(paths["allocation"])["records"][-1]
    return [f"{obj['fit'].params['E']:.6g}", f"{obj['fit'].params['alpha']:.6g}",
            f"{boot['params']['E']['ci'][0]:.6g}", f"{boot['params']['E']['ci'][1]:.6g}",
            f"{fc.predicted[i]:.6g}", f"[{lo[i]:.6g}, {hi[i]:.6g}]",
            f"coverage {check.summary['coverage']:.3f}", f"coverage {bt.summary['coverage']:.3f}",
            f"{alloc['N_opt']:.6g} [{alloc['intervals']['N_opt'][0]:.6g}, {alloc['intervals']['N_opt'][1]:.6g}]"]


@pytest.mark.slow  # shares the ~25 s `results` fixture
def test_each_file_is_read_as_its_kind(results):
    paths, _ = results
    for kind, path in paths.items():
        assert jaxscale.report.read(path).kind == kind


@pytest.mark.slow  # shares the ~25 s `results` fixture
def test_page_has_a_section_per_file_the_numbers_and_no_external_url(page, results):
    _, text = page
    visible, urls = _parse(text)
    assert text.count("<section ") == len(results[0])
    assert all(u.startswith(("#", "data:")) for u in urls), [u[:80] for u in urls if not u.startswith("#")]
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text, re.I)
    assert not re.search(r"url\(\s*['\"]?\s*(https?:)?//", text, re.I) and "@import" not in text
    for number in _expected_numbers(results):
        assert number in visible, number
    assert text.count("<svg") >= 9  # contours, residuals x2, marginals, frontier, forecast, backtest x2, calibration x2


@pytest.mark.slow  # shares the ~25 s `results` fixture
def test_forecast_card_discloses_target_interval_timing_and_score(page, results):
    visible, _ = _parse(page[1])
    fc, check = results[1]["forecast"], results[1]["check"]
    i = int(np.argmax(fc.points["C"].to_numpy()))
    assert visible.count("Forecast card") == 3  # forecast, check, backtest
    target = fc.points.iloc[i]
    for role in ("C", "D", "N"):
        assert f"{role} = {target[role]:.4g}" in visible
    assert "90% central predictive interval" in visible and "method fit" in visible
    assert fc.provenance["timestamp"] in visible and fc.provenance["data_fingerprint"][:12] in visible
    assert "Yes, as recorded: the forecast was written" in visible  # the check was made after it
    assert "as the check recorded it" in visible  # its own checked_at, not the file's modification time
    assert "No: a backtest" in visible
    n_in = int(check.table["covered"].sum())
    assert f"({n_in}/{check.summary['n_test']} runs inside" in visible
    assert f"mean interval score {check.summary['mean_interval_score']:.4g}" in visible


@pytest.mark.slow  # shares the ~25 s `results` fixture
def test_result_objects_are_reported_like_their_files(results, tmp_path):
    paths, objects = results
    kinds = ("fit", "allocation", "check")
    from_objects = _parse(_read(jaxscale.report(*(objects[k] for k in kinds), out=tmp_path / "objects.html")))[0]
    from_files = _parse(_read(jaxscale.report(*(paths[k] for k in kinds), out=tmp_path / "files.html")))[0]
    expected = _expected_numbers(results)
    for number in (expected[0], expected[1], expected[6], expected[8]):
        assert number in from_objects and number in from_files, number
    assert [jaxscale.report.read(objects[k]).kind for k in kinds] == list(kinds)


@pytest.mark.slow  # shares the ~25 s `results` fixture
def test_figures_that_need_the_data_are_left_out_with_the_reason(results, epoch_data, tmp_path):
    paths, _ = results
    out = jaxscale.report(paths["fit"], paths["backtest"], out=tmp_path / "nodata.html")
    visible, _ = _parse(_read(out))
    assert "Figures left out" in visible and "residuals: no data given" in visible
    other = epoch_data.drop_top(1)  # not the data the fit was made from
    out = jaxscale.report(paths["fit"], out=tmp_path / "other.html", data=other)
    visible, _ = _parse(_read(out))
    assert f"fingerprint {other.fingerprint()[:12]}" in visible
    assert "are not the data this result was made from" in visible


def _write(path, content):
    with open(path, "wb") as fh:
        fh.write(content)
    return str(path)


@pytest.fixture
def bad_files(fit_file, tmp_path):
    fit = pathlib.Path(fit_file).read_bytes()
    return {
        "missing": (str(tmp_path / "nope.json"), ArgumentError, "does not exist"),
        "truncated": (_write(tmp_path / "cut.json", fit[: len(fit) // 2]), DataError, "not valid JSON"),
        "empty": (_write(tmp_path / "empty.json", b""), DataError, "empty"),
        "unknown": (_write(tmp_path / "other.json", b'{"rows": [1, 2]}'), DataError, "it reads: fit"),
        "netcdf": (_write(tmp_path / "post.nc", b"CDF\x01" + bytes(40)), DataError, "cannot be read as netCDF"),
    }


def test_bad_inputs_are_one_error_before_any_work(fit_file, bad_files, tmp_path):
    out = tmp_path / "r.html"
    for name, (path, error, words) in bad_files.items():
        with pytest.raises(error, match=words):
            jaxscale.report(fit_file, path, out=out)
        assert not out.exists(), name
    with pytest.raises(DataError, match="allocation .*backtest .*check"):
        jaxscale.report(bad_files["unknown"][0], out=out)
    with pytest.raises(ArgumentError, match="directory .* does not exist"):
        jaxscale.report(fit_file, out=tmp_path / "no" / "r.html")
    with pytest.raises(ArgumentError, match="at least one result"):
        jaxscale.report(out=out)


@pytest.mark.slow  # shares the ~25 s `results` fixture
def test_cli_writes_the_page(results, tmp_path, capsys):
    paths, objects = results
    out = tmp_path / "cli.html"
    rc = main(["report", paths["fit"], paths["backtest"], "--data", "epoch_chinchilla", "--drop-top-loss", "5",
               "--out", str(out)])
    assert rc == 0 and f"wrote {out}" in capsys.readouterr().out
    visible, _ = _parse(out.read_text())
    assert f"{objects['fit'].params['E']:.6g}" in visible and "Figures left out" not in visible


def test_cli_reports_bad_input_in_one_line(fit_file, bad_files, tmp_path, capsys):
    for path, _, words in bad_files.values():
        rc = main(["report", path, "--out", str(tmp_path / "bad.html")])
        err = capsys.readouterr().err
        assert rc == 2 and err.startswith("jaxscale: error:") and err.count("\n") == 1, err
        assert words.split()[0] in err
    assert main(["report", fit_file, "--out", str(tmp_path / "missing" / "r.html")]) == 2
    assert "--out" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:  # a usage error: argparse's exit 2
        main(["report", "--out", str(tmp_path / "bad.html")])
    assert e.value.code == 2 and "FILE" in capsys.readouterr().err
    assert not (tmp_path / "bad.html").exists()


def test_import_jaxscale_does_not_load_the_report_or_matplotlib():
    code = ("import sys, jaxscale; assert 'matplotlib' not in sys.modules and 'jaxscale.report' not in sys.modules; "
            "r = jaxscale.report; assert callable(r) and r.report and 'matplotlib' not in sys.modules; "
            "assert callable(jaxscale.plot.calibration) and callable(jaxscale.bayes.sample)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr


# --------------------------------------------------------------------------------------------------- in a browser


def _browser() -> str:
    if BROWSER is None:
        if os.environ.get("JAXSCALE_REQUIRE_BROWSER") == "1":
            pytest.fail("JAXSCALE_REQUIRE_BROWSER=1 but no chromium on PATH (apt-get install chromium)")
        pytest.skip("no headless browser (apt-get install chromium; JAXSCALE_REQUIRE_BROWSER=1 makes this fail)")
    return BROWSER


def render(path, tmp_path) -> tuple[np.ndarray, str]:
    """Screenshot (RGB array) and rendered DOM of ``path`` in headless chromium."""
    url = "file://" + os.path.abspath(path)
    base = [_browser(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
            "--disable-background-networking", f"--user-data-dir={tmp_path / 'profile'}"]
    png = tmp_path / "shot.png"
    shot = subprocess.run([*base, f"--screenshot={png}", "--window-size=1200,3000", url], capture_output=True,
                          text=True, timeout=180)
    assert png.exists(), shot.stderr[-2000:]
    dom = subprocess.run([*base, "--dump-dom", url], capture_output=True, text=True, timeout=180)
    assert dom.returncode == 0 and "<section" in dom.stdout, dom.stderr[-2000:]
    return mpimg.imread(str(png))[..., :3], dom.stdout


def _not_blank(image: np.ndarray) -> None:
    rgb = np.round(image.reshape(-1, 3) * 255).astype(np.int64)
    colours, counts = np.unique(rgb[:, 0] << 16 | rgb[:, 1] << 8 | rgb[:, 2], return_counts=True)
    background = 1.0 - counts.max() / counts.sum()
    assert len(colours) > 200 and background > 0.1, (len(colours), background)


def test_a_fit_page_renders_in_a_headless_browser(fit_file, tmp_path):
    out = jaxscale.report(fit_file, out=tmp_path / "fit.html")
    image, dom = render(out, tmp_path)
    _not_blank(image)
    visible, _ = _parse(dom)
    E = _json(fit_file)["params"]["E"]
    assert f"{E:.6g}" in visible and "Provenance" in visible


@pytest.mark.slow  # shares the ~25 s `results` fixture
def test_page_renders_in_a_headless_browser(page, results, tmp_path):
    image, dom = render(page[0], tmp_path)
    _not_blank(image)
    visible, _ = _parse(dom)
    for number in _expected_numbers(results):
        assert number in visible, number
    assert "Forecast card" in visible and "Made before the run?" in visible


@pytest.mark.slow
def test_posterior_and_calibrated_forecast_render_in_a_headless_browser(epoch_data, tmp_path):
    from jaxscale import bayes
    from jaxscale._io import write_netcdf

    idata = bayes.sample("chinchilla", epoch_data, key=0, num_chains=2, num_warmup=150, num_samples=150, warn=False)
    post = write_netcdf(idata, tmp_path / "post.nc")
    done = epoch_data.subset(epoch_data.covariates["C"] > CUTOFF)
    fc = forecast("chinchilla", epoch_data, split={"C": CUTOFF}, at={"N": done.covariates["N"],
                                                                    "C": done.covariates["C"]}, starts=16, key=0)
    fc.to_json(tmp_path / "fc.json")
    fc.check(done).to_json(tmp_path / "check.json")
    out = jaxscale.report(post, tmp_path / "fc.json", tmp_path / "check.json", out=tmp_path / "post.html",
                          data=epoch_data)
    assert jaxscale.report.read(post).kind == "posterior"
    d = bayes.diagnose(idata)
    image, dom = render(out, tmp_path)
    _not_blank(image)
    visible, urls = _parse(dom)
    assert all(u.startswith(("#", "data:")) for u in urls)
    assert f"{float(d.table['r_hat'].max()):.6g}" in visible and f"{d.n_divergent} of {d.n_draws}" in visible
    median_E = float(np.median(np.asarray(idata.posterior["E"])))
    assert f"{median_E:.6g}" in visible
    i = int(np.argmax(fc.points["C"].to_numpy()))
    lo, hi = fc.interval()
    assert f"[{lo[i]:.6g}, {hi[i]:.6g}]" in visible and "method calibrated" in visible
