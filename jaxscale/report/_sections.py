"""One section of the report per result: its tables, figures, forecast card and provenance."""

from __future__ import annotations

import datetime as _dt
import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from jaxscale.data import ScalingData
from jaxscale.errors import JaxscaleError
from jaxscale.report._html import Raw, esc, figure, interval, items, num, pairs, para, table
from jaxscale.report._read import Input

#: Most rows a table of points (forecast points, scored runs, allocation budgets) shows; the file has them all.
MAX_ROWS = 60
_COVARIATE_WORDS = {"C": ("training compute", "FLOPs"), "D": ("training tokens", "tokens"),
                    "N": ("model size", "parameters"), "U": ("unique tokens", "tokens"), "x": ("resource x", "")}
_METHODS = {
    "calibrated": "the fit's prediction with the error of extrapolating measured by leave-future-out folds on the "
                  "training data (noise, parameter uncertainty and extrapolation error)",
    "fit": "the fit's prediction plus its scaled training residuals (noise only: no parameter uncertainty, no "
           "extrapolation error)",
    "bootstrap": "bootstrap predictive: each replicate's prediction plus a resampled residual (parameter "
                 "uncertainty and noise)",
    "bayes": "posterior predictive: each posterior draw's prediction plus the likelihood's noise",
}
_NOT_RECORDED = "not recorded by the writer"


@dataclass
class Context:
    """What every section may use: the data given (or ``None``), the posterior credible level, all the inputs."""

    data: ScalingData | None
    data_label: str | None
    level: float
    inputs: Sequence[Input] = field(default_factory=list)


@dataclass
class Section:
    kind: str
    heading: str
    body: Raw


# --------------------------------------------------------------------------------------------------- small helpers


def _short(fp) -> str:
    return f"{fp[:12]}..." if isinstance(fp, str) and len(fp) > 12 else str(fp)


def _fp_cell(fp) -> Raw:
    return Raw(f'<span class="fp">{esc(fp)}</span>') if fp else Raw(esc(_NOT_RECORDED))


def _compact(value, limit: int = 240) -> str:
    if isinstance(value, list) and len(value) > 8:
        head = ", ".join(num(v) if isinstance(v, (int, float)) else str(v) for v in value[:3])
        return f"[{head}, ...] ({len(value)} values)"
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _pct(level) -> str:
    return f"{100 * float(level):g}%"


def _parse_time(text):
    if not isinstance(text, str):
        return None
    try:
        t = _dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return t if t.tzinfo is not None else t.replace(tzinfo=_dt.timezone.utc)


def _span(later, earlier) -> str:
    seconds = (later - earlier).total_seconds()
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if abs(seconds) >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def _data_for(fingerprints, ctx: Context):
    """``(data, None)`` when the data given are those a result was made from, else ``(None, why not)``."""
    wanted = [f for f in fingerprints if f]
    if ctx.data is None:
        return None, ("no data given (pass the data the result was made from: --data CSV or dataset name, with "
                      "the same --col and --drop-top-loss; data= in Python)")
    if not wanted:
        return None, "the result records no data fingerprint, so the data given cannot be checked against it"
    have = ctx.data.fingerprint()
    if have in wanted:
        return ctx.data, None
    return None, (f"the data given ({ctx.data_label}, {len(ctx.data)} rows, fingerprint {_short(have)}) are not "
                  f"the data this result was made from (fingerprint {_short(wanted[0])}); pass the same file with "
                  f"the same --col and --drop-top-loss")


def _figures(figs: list[Raw], left_out: list[str]) -> Raw:
    parts = []
    if figs:
        parts.append("<h3>Figures</h3>" + "".join(figs))
    if left_out:
        parts.append("<h3>Figures left out</h3>" + items(left_out, "left-out"))
    return Raw("".join(parts))


def _provenance(rows: list[tuple[str, object]]) -> Raw:
    return Raw(f"<details open><summary>Provenance</summary>{pairs(rows)}</details>")


def _settings_rows(settings: Mapping, skip=()) -> list[tuple[str, object]]:
    rows = []
    for k, v in settings.items():
        if k in skip:
            continue
        if isinstance(v, (Mapping, list)):
            v = _compact(v)
        rows.append((f"settings.{k}", v))
    return rows


def _plot():
    from jaxscale import plot

    return plot


def _fit_figures(src, ctx: Context, fingerprints, flops_per_token: float = 6.0) -> tuple[list[Raw], list[str]]:
    """Contours (with the runs when the data match) and residuals (only with matching data) of a point estimate."""
    plot = _plot()
    figs, left = [], []
    data, why = _data_for(fingerprints, ctx)
    law = src.law
    if set(law.covariates) == {"N", "D"}:
        try:
            ax = plot.contours(src, data, flops_per_token=flops_per_token)
            caption = (f"Iso-loss contours of the {src.kind} estimate with its compute-optimal frontier"
                       + (", and the runs it was fitted to." if data is not None else f"; runs not drawn: {why}."))
            figs.append(figure(ax.figure, caption))
        except plot.PlotError as e:
            left.append(f"contours: {e}")
    else:
        left.append(f"contours: law {law.name!r} takes {list(law.covariates)}; contours are drawn in (C, N) for laws "
                    f"of N and D.")
    if data is None:
        left.append(f"residuals: {why}.")
    else:
        try:
            figs.append(figure(plot.residuals(src, data), "Log residuals of the runs against each covariate."))
        except plot.PlotError as e:
            left.append(f"residuals: {e}")
    return figs, left


def _marginals(source, what: str) -> tuple[list[Raw], list[str]]:
    plot = _plot()
    try:
        with warnings.catch_warnings():
            # ArviZ's plotting calls matplotlib APIs that matplotlib deprecates: not the reader's concern
            warnings.simplefilter("ignore", DeprecationWarning)
            fig = plot.marginals(source)
    except JaxscaleError as e:
        return [], [f"marginals: {e}"]
    width, height = fig.get_size_inches()
    if width > 11.0:  # ArviZ sizes panels for a screen of their own; keep its 9 pt text legible on the page
        fig.set_size_inches(11.0, 1.2 * height * 11.0 / width)
    return [figure(fig, f"Marginal densities of the parameters ({what}), with the mean and 90% highest-density "
                        f"interval.")], []


# --------------------------------------------------------------------------------------------------- fit, bootstrap


def _run_rows(settings: Mapping, doc: Mapping) -> list[tuple[str, object]]:
    first = ["timestamp", "jaxscale_version", "jax_version", "backend"]
    rows = [(k, settings.get(k, _NOT_RECORDED)) for k in first]
    rows += [("data fingerprint", _fp_cell(doc.get("data_fingerprint"))),
             ("data source", settings.get("data_source", _NOT_RECORDED)),
             ("command", settings.get("command", _NOT_RECORDED))]
    return rows + _settings_rows(settings, skip=first + ["data_source", "command"])


def fit_section(inp: Input, ctx: Context) -> Section:
    from jaxscale._draws import param_source

    doc = inp.doc
    src = param_source(inp.obj if inp.obj is not None else inp.path)
    law, settings = src.law, doc.get("settings") or {}
    body = [para(f"{law.name}: {law.formula}. Objective {num(doc.get('objective'))} ({settings.get('objective')}) on "
                 f"{doc.get('n_points')} points; best start {doc.get('status')}.")]
    rows = [(k, v, "") for k, v in doc["params"].items()]
    rows += [(k, v, "nuisance") for k, v in (doc.get("nuisance") or {}).items()]
    body.append("<h3>Parameters</h3>")
    body.append(table(["parameter", "estimate", "note"], rows))
    body.append(para("A point fit has no intervals: bootstrap it (jaxscale bootstrap) or sample its posterior "
                     "(jaxscale bayes) for them.", "meta"))
    counts = doc.get("status_counts") or {}
    diag = [("starts at the best objective (n_at_best)", f"{doc.get('n_at_best')} of {doc.get('n_starts')}"),
            ("best start's status", doc.get("status")),
            *((f"starts {k}", v) for k, v in counts.items()),
            ("starts diverged / non-finite (excluded)", f"{doc.get('n_diverged', 0)} / {doc.get('n_nonfinite', 0)}"),
            ("seconds", doc.get("seconds"))]
    body.append("<h3>Diagnostics</h3>")
    body.append(pairs(diag))
    figs, left = _fit_figures(src, ctx, [doc.get("data_fingerprint")], settings.get("flops_per_token", 6.0))
    body.append(_figures(figs, left))
    body.append(_provenance(_run_rows(settings, doc)))
    return Section("fit", f"fit: {inp.name}", Raw("".join(body)))


def bootstrap_source(inp: Input):
    """The bootstrap's estimate and draws; a file written without its draws (``to_json(draws=False)``) gives
    the estimate alone."""
    from jaxscale._draws import ParamSource, param_source
    from jaxscale.laws import get

    doc = inp.doc
    if inp.obj is not None or doc.get("draws") is not None:
        return param_source(inp.obj if inp.obj is not None else inp.path)
    law = get(doc["law"], **((doc.get("settings") or {}).get("law_options") or {}))
    point = {k: float(v["estimate"]) for k, v in doc["params"].items()}
    return ParamSource(law, point, None, "bootstrap", doc.get("data_fingerprint"))


def bootstrap_section(inp: Input, ctx: Context) -> Section:
    doc = inp.doc
    src = bootstrap_source(inp)
    law, settings = src.law, doc.get("settings") or {}
    ivl = doc.get("interval") or {}
    pct = f"{_pct(ivl.get('level', 0.95))} {ivl.get('method', 'percentile')}"
    body = [para(f"{law.name}: {law.formula}. {doc.get('method')} bootstrap, {doc.get('n_resamples')} resamples "
                 f"x {settings.get('n_starts')} start(s) ({settings.get('starts')}), {doc.get('n_failed')} failed.")]
    rows = [(k, v.get("estimate"), v.get("se"), *(v.get("ci") or [None, None])) for k, v in doc["params"].items()]
    body.append("<h3>Parameters</h3>")
    body.append(table(["parameter", "estimate", "se", f"{pct} lo", f"{pct} hi"], rows))
    derived = doc.get("derived") or {}
    if derived:
        rows = [(k, v.get("estimate"), v.get("se"), *(v.get("ci") or [None, None]), v.get("n_nonfinite"))
                for k, v in derived.items()]
        body.append("<h3>Derived quantities</h3>")
        body.append(table(["quantity", "estimate", "se", f"{pct} lo", f"{pct} hi", "non-finite draws"], rows))
    counts = doc.get("status_counts") or {}
    diag = [("resamples", doc.get("n_resamples")), ("failed (excluded)", doc.get("n_failed")),
            *((f"replicates {k}", v) for k, v in counts.items()),
            ("draws kept", len(src.draws) if src.draws is not None else 0), ("seconds", doc.get("seconds"))]
    body.append("<h3>Diagnostics</h3>")
    body.append(pairs(diag))
    figs, left = _fit_figures(src, ctx, [doc.get("data_fingerprint")], settings.get("flops_per_token", 6.0))
    f2, l2 = (_marginals(src, f"{len(src.draws)} bootstrap replicates") if src.draws is not None else
              ([], ["marginals: the file was written without its draws (write it with draws=True, as `jaxscale "
                    "bootstrap --json` does)."]))
    body.append(_figures(figs + f2, left + l2))
    body.append(_provenance(_run_rows(settings, doc)))
    return Section("bootstrap", f"bootstrap: {inp.name}", Raw("".join(body)))


# --------------------------------------------------------------------------------------------------- posterior


def _posterior_rows(idata, level: float):
    from jaxscale.bayes import diagnose

    diag = diagnose(idata)
    a = (1.0 - level) / 2.0
    post = idata.posterior
    rows = []
    for v in diag.table.index:
        name, _, index = v.partition("[")
        values = np.asarray(post[name], float)
        values = values.reshape(values.shape[0] * values.shape[1], -1)
        x = values[:, int(index.rstrip("]"))] if index else values[:, 0]
        lo, hi = np.quantile(x, [a, 1.0 - a])
        d = diag.table.loc[v]
        rows.append((v, float(np.median(x)), float(np.mean(x)), float(np.std(x, ddof=1)), float(lo), float(hi),
                     float(d["r_hat"]), float(d["ess_bulk"]), float(d["ess_tail"])))
    return rows, diag


def posterior_section(inp: Input, ctx: Context) -> Section:
    from jaxscale._draws import param_source
    from jaxscale.bayes._infer import law_of

    idata = inp.obj
    law = law_of(idata)
    attrs = dict(idata.posterior.attrs)
    chains, draws = idata.posterior.sizes["chain"], idata.posterior.sizes["draw"]
    body = [para(f"{law.name}: {law.formula}. NUTS ({attrs.get('inference_library', 'numpyro')}): {chains} chains "
                 f"x {draws} draws, likelihood {attrs.get('likelihood')}.")]
    rows, diag = _posterior_rows(idata, ctx.level)
    pct = _pct(ctx.level)
    body.append("<h3>Parameters</h3>")
    body.append(table(["parameter", "median", "mean", "sd", f"{pct} lo", f"{pct} hi", "R-hat", "bulk ESS",
                       "tail ESS"], rows, caption=f"{pct} equal-tailed credible intervals"))
    verdict = (Raw('<span class="ok">OK</span>') if diag.ok
               else Raw('<span class="bad">problems</span>: ' + esc(" ".join(diag.problems))))
    body.append("<h3>Diagnostics</h3>")
    body.append(pairs([("max R-hat", float(diag.table["r_hat"].max())),
                       ("min bulk ESS", float(diag.table["ess_bulk"].min())),
                       ("min tail ESS", float(diag.table["ess_tail"].min())),
                       ("divergent transitions", f"{diag.n_divergent} of {diag.n_draws}"),
                       ("verdict (R-hat <= 1.01, ESS >= 400, no divergences)", verdict),
                       ("sampling seconds", attrs.get("sampling_seconds"))]))
    figs, left = [], []
    try:
        src = param_source(idata)
    except JaxscaleError as e:
        left.append(f"contours and residuals: {e}")
    else:
        figs, left = _fit_figures(src, ctx, [attrs.get("data_fingerprint")])
    f2, l2 = _marginals(idata, f"{chains * draws} posterior draws")
    figs, left = figs + f2, left + l2
    if "prior" in idata.groups():
        try:
            figs.append(figure(_plot().prior_posterior(idata), "Prior and posterior marginals."))
        except JaxscaleError as e:
            left.append(f"prior vs posterior: {e}")
    else:
        left.append("prior vs posterior: the file has no prior draws (sample with --prior-draws 500).")
    body.append(_figures(figs, left))
    prov = [("timestamp (created_at)", attrs.get("created_at", _NOT_RECORDED)),
            ("jaxscale_version", attrs.get("jaxscale_version", _NOT_RECORDED)),
            ("arviz_version", attrs.get("arviz_version", _NOT_RECORDED)),
            ("data fingerprint", _fp_cell(attrs.get("data_fingerprint"))),
            ("command", attrs.get("command", _NOT_RECORDED))]
    skip = {"created_at", "jaxscale_version", "arviz_version", "data_fingerprint", "command"}
    prov += [(k, v.item() if hasattr(v, "item") else v) for k, v in attrs.items() if k not in skip]
    body.append(_provenance(prov))
    return Section("posterior", f"posterior: {inp.name}", Raw("".join(body)))


# --------------------------------------------------------------------------------------------------- allocation


def _allocation(doc: Mapping):
    """The :class:`~jaxscale.allocate.Allocation` an allocation JSON describes (its table; no draws)."""
    from jaxscale.allocate import Allocation
    from jaxscale.laws import get

    cols: dict[str, list] = {}
    records = doc["records"]
    names = [k for k in records[0] if k not in ("intervals", "n_failed")]
    for r in records:
        for k in names:
            cols.setdefault(k, []).append(np.nan if r.get(k) is None else r[k])
        for q, (lo, hi) in (r.get("intervals") or {}).items():
            cols.setdefault(f"{q}_lo", []).append(np.nan if lo is None else lo)
            cols.setdefault(f"{q}_hi", []).append(np.nan if hi is None else hi)
        if "n_failed" in r:
            cols.setdefault("n_failed", []).append(r["n_failed"])
    t = pd.DataFrame(cols)
    quantities = list((records[0].get("intervals") or {}))
    # The JSON keeps each row's interval, not the draws: an empty set of draws marks that the table has the
    # _lo/_hi columns plot.frontier shades (it reads only those for its band).
    draws = {q: np.empty((0, len(t))) for q in quantities} if quantities else None
    return Allocation(doc["kind"], get(doc["law"]), t, draws, float(doc.get("level", 0.9)), doc.get("source", "?"),
                      doc.get("settings") or {})


def allocation_section(inp: Input, ctx: Context) -> Section:
    del ctx
    doc = inp.doc
    records = doc["records"]
    pct = _pct(doc.get("level", 0.9))
    quantities = list((records[0].get("intervals") or {}))
    names = [k for k in records[0] if k not in ("intervals", "n_failed")]
    body = [para(f"{doc['kind'].replace('_', '-')} allocation of law {doc['law']} from a {doc.get('source')}; "
                 f"{len(records)} row(s)" + (f"; {pct} intervals over its draws." if quantities else
                                             "; a point estimate: no intervals."))]
    header = names + (["draws failed"] if quantities else [])
    rows = []
    for r in records[:MAX_ROWS]:
        row = []
        for k in names:
            if k in quantities:
                lo, hi = r["intervals"][k]
                row.append(f"{num(r.get(k))} {interval(lo, hi)}")
            else:
                row.append(r.get(k))
        if quantities:
            row.append(r.get("n_failed"))
        rows.append(row)
    body.append("<h3>Allocation</h3>")
    body.append(table(header, rows, caption=f"estimate [{pct} interval]" if quantities else None))
    if len(records) > MAX_ROWS:
        body.append(para(f"... {len(records) - MAX_ROWS} more rows in the file.", "meta"))
    figs, left = [], []
    if "compute" not in names:
        left.append(f"frontier: this {doc['kind']} allocation is indexed by {names[:2]}, not by compute budgets.")
    else:
        try:
            alloc = _allocation(doc)
            figs.append(figure(_plot().frontier(alloc, band=alloc.draws is not None),
                               "Compute-optimal N, D and tokens per parameter against the budget"
                               + (f", with the {pct} band of the draws." if quantities else ".")))
        except JaxscaleError as e:
            left.append(f"frontier: {e}")
    body.append(_figures(figs, left))
    settings = doc.get("settings") or {}
    prov = [("kind", doc.get("kind")), ("law", doc.get("law")), ("source (kind of fit)", doc.get("source")),
            ("level", doc.get("level")), *_settings_rows(settings),
            ("timestamp", settings.get("timestamp", _NOT_RECORDED)),
            ("data fingerprint", _fp_cell(settings.get("data_fingerprint"))),
            ("command", settings.get("command", _NOT_RECORDED))]
    body.append(_provenance(prov))
    return Section("allocation", f"allocation: {inp.name}", Raw("".join(body)))


# --------------------------------------------------------------------------------------------------- forecasts


def _forecast(inp: Input):
    from jaxscale.forecast import BacktestResult, Forecast

    if isinstance(inp.obj, Forecast):
        return inp.obj
    if isinstance(inp.obj, BacktestResult):
        return inp.obj.forecast
    return Forecast.load(inp.path)


def _scored(inp: Input):
    """The :class:`~jaxscale.BacktestResult` of a backtest or check input (rebuilt from its JSON)."""
    from jaxscale.forecast import BacktestResult

    if isinstance(inp.obj, BacktestResult):
        return inp.obj
    table = pd.DataFrame(inp.doc["table"])
    for c in table.columns:
        if table[c].dtype == object and c not in ("row", "group", "run"):
            converted = pd.to_numeric(table[c], errors="coerce")
            if converted.notna().sum() == table[c].notna().sum():
                table[c] = converted
    return BacktestResult(table, dict(inp.doc["summary"]), _forecast(inp))


def _same_forecast(a: Mapping, b: Mapping) -> bool:
    pa, pb = a.get("provenance") or {}, b.get("provenance") or {}
    return (pa.get("timestamp") == pb.get("timestamp") and pa.get("data_fingerprint") == pb.get("data_fingerprint")
            and a.get("points") == b.get("points") and a.get("predicted") == b.get("predicted"))


def _forecast_doc(inp: Input) -> Mapping:
    return inp.doc if inp.kind == "forecast" else inp.doc.get("forecast") or {}


def _headline(fc) -> int:
    """The target point the card leads with: the one with the largest compute (else the largest first covariate)."""
    pts = fc.points
    col = "C" if "C" in pts else pts.columns[0]
    return int(np.argmax(pts[col].to_numpy(float)))


def _targets(fc, i: int) -> Raw:
    pts = fc.points
    parts = []
    for c in ("C", "D", "N", "U", "x"):
        if c not in pts:
            continue
        word, unit = _COVARIATE_WORDS[c]
        v = pts[c].to_numpy(float)
        text = f"{word} {c} = {num(v[i], '.4g')} {unit}".rstrip()
        if len(v) > 1:
            text += f" (all targets: {num(v.min(), '.4g')} to {num(v.max(), '.4g')})"
        parts.append(text)
    lead = "the target" if len(pts) == 1 else f"largest-compute target of {len(pts)}"
    return Raw(esc(f"{lead}: ") + "<br>".join(esc(p) for p in parts))


def _in_training(fc, ctx: Context) -> str | None:
    """When the data given are the forecast's training data: how many target points are among its runs."""
    if ctx.data is None or ctx.data.fingerprint() != fc.provenance.get("data_fingerprint"):
        return None
    cov = [c for c in fc.covariates if c in ctx.data.covariates]
    pts = fc.points[cov].to_numpy(float)
    runs = np.stack([ctx.data.covariates[c] for c in cov], axis=1)
    hit = np.all(np.isclose(pts[:, None, :], runs[None, :, :], rtol=1e-9, atol=0.0), axis=2).any(1)
    k = int(hit.sum())
    return (f"{k} of {len(pts)} target point(s) are runs of the training data given: those were not predicted "
            f"in advance." if k else f"none of the {len(pts)} target point(s) is a run of the training data given.")


def _timing(fc, kind: str, check: Input | None, ctx: Context) -> Raw:
    prov = fc.provenance
    made = prov.get("timestamp")
    split = prov.get("split") or {}
    lines = [f"forecast made {made or 'at a time not recorded'}, from {prov.get('n_train', '?')} training runs "
             f"(data fingerprint {_short(prov.get('data_fingerprint'))})"
             + (f", split: {split['rule']}" if split.get("rule") else "") + "."]
    cls = "warn"
    if kind == "backtest":
        lines.insert(0, f"No: a backtest. The {split.get('n_test', '?')} scored runs were in the data when it was "
                        f"made and were held out by the split; it measures how the method extrapolates, not a "
                        f"prediction made in advance.")
    elif check is not None:
        record = (check.doc or {}).get("checked") or getattr(check.obj, "checked", None) or {}
        if record.get("at"):
            checked, where = record["at"], "as the check recorded it"
        else:
            checked = check.modified
            where = "its file modification time: this check JSON records no time of its own"
        t0, t1 = _parse_time(made), _parse_time(checked)
        if t0 is None or t1 is None:
            lines.insert(0, "Cannot tell: " + ("the forecast records no timestamp." if t0 is None else
                                               "the check's time is not known (a result passed in memory)."))
        elif t0 <= t1:
            cls = "ok"
            lines.insert(0, f"Yes, as recorded: the forecast was written {_span(t1, t0)} before the check "
                            f"({checked}, {where}).")
        else:
            cls = "bad"
            lines.insert(0, f"No: the forecast's timestamp is {_span(t0, t1)} after the check ({checked}, {where}).")
    else:
        lines.insert(0, "As recorded: the forecast's timestamp and training-data fingerprint are its record that it "
                        "came before the runs; keep the file unchanged, and score it with jaxscale check once they "
                        "are done.")
    if kind != "backtest" and prov.get("full_data_fingerprint"):
        lines.append(f"Its training runs were split from data of {prov.get('n_data', '?')} runs (fingerprint "
                     f"{_short(prov['full_data_fingerprint'])}): the {split.get('n_rest', '?')} runs the split left "
                     f"out existed when it was made.")
    extra = _in_training(fc, ctx)
    if extra:
        lines.append(extra)
    head, *rest = lines
    return Raw(f'<span class="{cls}">{esc(head)}</span>' + "".join(f"<br>{esc(x)}" for x in rest))


def _scores(res, source: str, i_fc: int) -> Raw:
    s = res.summary
    t = res.table
    n_cov = int(np.asarray(t["covered"], bool).sum())
    parts = [f"{_pct(s['level'])} interval coverage {num(s['coverage'], '.3f')} ({n_cov}/{s['n_test']} runs inside; "
             f"nominal {num(s['level'])})",
             f"mean interval score {num(s.get('mean_interval_score'), '.4g')} "
             f"({num(s.get('mean_rel_interval_score'), '.4g')} of the actual value)",
             f"relative error: median |rel error| {num(s.get('median_abs_rel_error'), '.4g')}, mean "
             f"{num(s.get('mean_abs_rel_error'), '.4g')}; RMSE(log) {num(s.get('rmse_log'), '.4g')}; mean CRPS "
             f"{num(s.get('mean_crps'), '.4g')}"]
    by = s.get("coverage_by_level") or {}
    if by:
        parts.append("coverage by level: " + ", ".join(f"{_pct(k)} {num(v, '.3f')}" for k, v in by.items()))
    pts = res.forecast.points
    cols = [c for c in pts.columns if c in t.columns]
    target = pts.iloc[i_fc][cols].to_numpy(float)
    match = np.all(np.isclose(t[cols].to_numpy(float), target[None, :], rtol=1e-9, atol=0.0), axis=1)
    if match.any():
        r = t[match].iloc[0]
        parts.append(f"largest-compute target: actual {num(r['actual'])}, predicted {num(r['predicted'])}, "
                     f"rel error {num(r['rel_error'], '.3g')}, " + ("inside" if bool(r["covered"]) else "outside")
                     + f" its interval {interval(r['lo'], r['hi'])}")
    if s.get("n_missing"):
        parts.append(f"{s['n_missing']} forecast point(s) had no run and were not scored")
    if s.get("n_unmatched_rows"):
        parts.append(f"{s['n_unmatched_rows']} run(s) matched no forecast point")
    return Raw(esc(f"from {source}: ") + "<br>".join(esc(p) for p in parts))


def card(fc, kind: str, scored=None, check: Input | None = None, ctx: Context | None = None) -> Raw:
    """The forecast card: what a report of this scaling claim should disclose (see :mod:`jaxscale.report`)."""
    ctx = ctx or Context(None, None, 0.95)
    prov = fc.provenance
    i = _headline(fc)
    lo, hi = fc.interval()
    target = prov.get("target", "loss")
    laws = " + ".join(f"{law.name} (weight {fc.weights[law.name]:.3f})" for law in fc.laws) if fc.weights \
        else f"{fc.law.name}: {fc.law.formula}"
    settings = prov.get("settings") or {}
    method = f"{fc.method}: {_METHODS.get(fc.method, fc.method)}"
    if "fallback" in settings:
        method += f" (fell back to {settings['fallback'].get('method')}: {settings['fallback'].get('reason')})"
    stored = prov.get("draws_stored")
    draws = f"{fc.log_samples.shape[0]} predictive draws" + (f" (of {stored['of']}, thinned)" if stored else "")
    if scored is not None:
        source = ("this backtest's held-out runs" if kind == "backtest" else
                  f"the check {check.name}" if check is not None and check.name else "the check")
        how = _scores(scored, source, i)
    else:
        how = Raw('<span class="warn">Not checked yet.</span> ' + esc(
            "Once the runs are done: jaxscale check FORECAST.json RUNS.csv --json CHECK.json, then report the "
            "forecast and the check together."))
    rows = [
        ("Target run", _targets(fc, i)),
        ("Evaluated metric", f"{target} (the data's target), predicted by {laws}"),
        ("Point forecast", f"{target} = {num(fc.predicted[i])} at the target"),
        ("Uncertainty", Raw(esc(f"{_pct(fc.level)} central predictive interval {interval(lo[i], hi[i])}; ") +
                            esc(f"method {method}; {draws}."))),
        ("Made before the run?", _timing(fc, kind, check, ctx)),
        ("How it scored", how),
    ]
    warnings = prov.get("warnings") or []
    if warnings:
        rows.append(("Warnings at forecast time", Raw('<span class="warn">' + "<br>".join(esc(w) for w in warnings)
                                                      + "</span>")))
    return Raw(f'<div class="card"><h3>Forecast card</h3>{pairs(rows)}</div>')


def _forecast_rows(prov: Mapping, inp: Input) -> list[tuple[str, object]]:
    split = prov.get("split") or {}
    settings = prov.get("settings") or {}
    rows = [("timestamp", prov.get("timestamp", _NOT_RECORDED)),
            ("jaxscale_version", prov.get("jaxscale_version", _NOT_RECORDED)),
            ("jax_version", prov.get("jax_version", _NOT_RECORDED)),
            ("training data fingerprint", _fp_cell(prov.get("data_fingerprint"))),
            ("full data fingerprint", _fp_cell(prov.get("full_data_fingerprint"))),
            ("data source", prov.get("data_source", _NOT_RECORDED)),
            ("training runs", prov.get("n_train")), ("runs in the data", prov.get("n_data", prov.get("n_train"))),
            ("split", split.get("rule", "none (all rows)")),
            ("command", prov.get("command", _NOT_RECORDED))]
    for k in ("target", "law", "law_options", "method", "level", "key", "resamples", "axis", "flops_per_token"):
        if k in prov:
            rows.append((k, _compact(prov[k]) if isinstance(prov[k], (Mapping, list)) else prov[k]))
    cal = settings.get("calibration")
    if cal:
        rows.append(("calibration", f"{cal.get('n_folds')} leave-future-out folds along {cal.get('axis')}, "
                                    f"{cal.get('n_pairs')} fold forecasts; sigma0 {num(cal.get('sigma0'), '.4g')}, "
                                    f"tau {num(cal.get('tau'), '.4g')}"))
    for k, v in settings.items():
        if k not in ("calibration", "fit", "warnings"):
            rows.append((f"settings.{k}", _compact(v) if isinstance(v, (Mapping, list)) else v))
    if "stacking" in prov:
        rows.append(("stacking", _compact(prov["stacking"])))
    if inp.modified:
        rows.append(("file modified", inp.modified))
    return rows


def _fit_params(settings: Mapping) -> Raw:
    fit = settings.get("fit")
    if not isinstance(fit, Mapping) or not isinstance(fit.get("params"), Mapping):
        return Raw("")
    p = fit["params"]
    rows = [(k, v) for k, v in p.items()]
    return Raw("<h3>Fit on the training runs</h3>" + table(["parameter", "estimate"], rows) +
               para(f"{fit.get('n_at_best')} of {fit.get('n_starts')} starts at the best objective; status "
                    f"{fit.get('status')}.", "meta"))


def _training_mask(data: ScalingData, prov: Mapping):
    """Which runs of ``data`` the forecast was fitted to: all of them for its training data, the rows its cutoff
    keeps for the full data it was split from, else ``None`` (a split on a column the data do not carry)."""
    if data.fingerprint() == prov.get("data_fingerprint"):
        return np.ones(len(data), bool)
    cutoff = (prov.get("split") or {}).get("cutoff")
    if not isinstance(cutoff, Mapping) or not all(k in data.covariates for k in cutoff):
        return None
    mask = np.ones(len(data), bool)
    for k, v in cutoff.items():
        mask &= data.covariates[k] <= float(v)
    return mask if int(mask.sum()) == prov.get("n_train") else None


def _forecast_figure(fc, ctx: Context) -> tuple[list[Raw], list[str]]:
    import matplotlib.pyplot as plt

    prov = fc.provenance
    data, why = _data_for([prov.get("data_fingerprint"), prov.get("full_data_fingerprint")], ctx)
    x = prov.get("axis") if prov.get("axis") in fc.points else fc.points.columns[0]
    xv = fc.points[x].to_numpy(float)
    lo, hi = fc.interval()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    if data is not None and x in data.covariates:
        train = _training_mask(data, prov)
        if train is None:
            ax.scatter(data.covariates[x], data.y, s=10, color="0.55", label=f"runs in the data ({len(data)})",
                       zorder=2)
        else:
            ax.scatter(data.covariates[x][train], data.y[train], s=10, color="0.45",
                       label=f"training runs ({int(train.sum())})", zorder=2)
            if (~train).any():
                ax.scatter(data.covariates[x][~train], data.y[~train], s=14, facecolors="none", edgecolors="0.35",
                           label=f"other runs in the data ({int((~train).sum())})", zorder=2)
    ax.errorbar(xv, fc.predicted, yerr=[fc.predicted - lo, hi - fc.predicted], fmt="none", ecolor="C0", alpha=0.7,
                lw=1.2, zorder=3)
    ax.scatter(xv, fc.predicted, marker="D", s=20, color="C0", zorder=4,
               label=f"forecast, {_pct(fc.level)} interval ({len(xv)})")
    ax.set_xscale("log")
    ax.set_xlabel(x)
    ax.set_ylabel(prov.get("target", "loss"))
    ax.set_title(f"{fc.law.name} forecast ({fc.method})", fontsize=10)
    ax.legend(fontsize=8)
    caption = "Point forecasts and predictive intervals at the target points" + (
        ", with the runs of the data." if data is not None else f"; runs not drawn: {why}.")
    return [figure(fig, caption)], []


def _points_table(fc) -> Raw:
    t = fc.table()
    shown = t.head(MAX_ROWS)
    out = table(list(shown.columns), shown.itertuples(index=False),
                caption=f"forecast points: predicted {fc.provenance.get('target', 'loss')} and the "
                        f"{_pct(fc.level)} interval [lo, hi]")
    more = para(f"... {len(t) - MAX_ROWS} more points in the file.", "meta") if len(t) > MAX_ROWS else ""
    return Raw(out + more)


def forecast_section(inp: Input, ctx: Context) -> Section:
    fc = _forecast(inp)
    mine = _forecast_doc(inp)
    checks = [c for c in ctx.inputs if c.kind == "check" and _same_forecast(_forecast_doc(c), mine)]
    check = checks[-1] if checks else None
    body = [card(fc, "forecast", _scored(check) if check is not None else None, check, ctx)]
    if check is not None:
        body.append(para(f"Scored by the check {check.name} given alongside (its section has the per-run scores).",
                         "meta"))
    body.append("<h3>Forecast points</h3>")
    body.append(_points_table(fc))
    body.append(_fit_params(fc.provenance.get("settings") or {}))
    figs, left = _forecast_figure(fc, ctx)
    body.append(_figures(figs, left))
    body.append(_provenance(_forecast_rows(fc.provenance, inp)))
    return Section("forecast", f"forecast: {inp.name}", Raw("".join(body)))


def scored_section(inp: Input, ctx: Context) -> Section:
    """A backtest, or a check of a saved forecast: card, scores, scored runs, backtest and calibration figures."""
    plot = _plot()
    res = _scored(inp)
    fc = res.forecast
    body = [card(fc, inp.kind, res, inp if inp.kind == "check" else None, ctx)]
    if inp.kind == "check":
        mine = _forecast_doc(inp)
        same = [f.name for f in ctx.inputs if f.kind == "forecast" and _same_forecast(f.doc, mine)]
        body.append(para(f"The forecast it scores is in this file; the forecast file given alongside: {same[0]}."
                         if same else "The forecast it scores is in this file (its card is above).", "meta"))
    s = res.summary
    rows = [(k, ", ".join(f"{_pct(lv)} {num(c, '.3f')}" for lv, c in v.items()) if k == "coverage_by_level"
             else _compact(v) if isinstance(v, (Mapping, list)) else v) for k, v in s.items()]
    body.append("<h3>Scores</h3>")
    body.append(pairs(rows))
    cols = [c for c in ("row", "group", "run", *fc.points.columns, "actual", "predicted", "rel_error", "lo", "hi",
                        "covered", "interval_score", "crps", "pit") if c in res.table.columns]
    shown = res.table[cols].head(MAX_ROWS)
    body.append("<h3>Scored runs</h3>")
    body.append(table(cols, shown.itertuples(index=False), caption=f"{_pct(s['level'])} interval [lo, hi]"))
    if len(res.table) > MAX_ROWS:
        body.append(para(f"... {len(res.table) - MAX_ROWS} more rows in the file.", "meta"))
    body.append(_fit_params(fc.provenance.get("settings") or {}))
    figs, left = [], []
    data = None
    if inp.kind == "backtest":
        data, why = _data_for([fc.provenance.get("full_data_fingerprint")], ctx)
        if data is None:
            left.append(f"training runs and fit region in the backtest figure: {why}.")
    x = fc.provenance.get("axis") if fc.provenance.get("axis") in res.table.columns else fc.points.columns[0]
    try:
        figs.append(figure(plot.backtest(res, data, x=x).figure,
                           "Held-out runs (inside their interval blue, outside red), the forecasts (diamonds) and "
                           "their intervals."))
    except JaxscaleError as e:
        left.append(f"backtest: {e}")
    try:
        figs.append(figure(plot.calibration(res).figure,
                           "Calibration: the observed coverage of central predictive intervals against their level."))
    except JaxscaleError as e:
        left.append(f"calibration: {e}")
    body.append(_figures(figs, left))
    body.append(_provenance(_forecast_rows(fc.provenance, inp)))
    return Section(inp.kind, f"{inp.kind}: {inp.name}", Raw("".join(body)))


BUILDERS = {"fit": fit_section, "bootstrap": bootstrap_section, "posterior": posterior_section,
            "allocation": allocation_section, "forecast": forecast_section, "backtest": scored_section,
            "check": scored_section}
