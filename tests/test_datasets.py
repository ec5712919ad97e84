"""The bundled data sets (jaxscale.datasets): the bytes, the tables, the defaults, the errors, and the CLI's DATA.

Every data set is checked against its reference copy in ../shared/data byte for byte (the one use of the
``shared_data`` fixture left: skipped where that copy is absent); everything else reads the bundled files only.
"""

import hashlib
import json
import warnings

import numpy as np
import pandas as pd
import pytest

import jaxscale
from jaxscale import datasets, downstream
from jaxscale.bench import EPOCH_OPTIMUM
from jaxscale.cli import main
from jaxscale.errors import ArgumentError, DataError
from jaxscale.forecast._inputs import coerce, points_csv

NAMES = datasets.available()
EXPECTED = ("epoch_chinchilla", "muennighoff", "muennighoff_all", "revisiting_lang", "revisiting_vision", "ruan_base",
            "ruan_base_sub_10b", "ruan_emergent", "ruan_leaderboard_v2", "ruan_instruct", "olmo_cosine", "olmo_const",
            "olmo_decay", "olmo_final")
#: Epoch's "replicate exactly" objective: their notebook's L-BFGS-B from Hoffmann's grid (data README, cell 18).
EPOCH_OBJECTIVE = 0.0010182740346


def _quiet(name, **columns):
    """``scaling_data``, with the warnings it gives (documented exclusions, duplicate rows) returned beside it."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = datasets.scaling_data(name, **columns)
    return data, [str(w.message) for w in caught]


def test_the_issue_names_every_data_set():
    assert NAMES == EXPECTED


@pytest.mark.parametrize("name", NAMES)
def test_bundled_bytes_equal_the_reference_copy(name, shared_data):
    info = datasets.info(name)
    reference = shared_data / info.folder / info.file
    if not reference.is_file():
        pytest.skip(f"no reference copy at {reference}")
    data = datasets.raw(name)
    assert hashlib.sha256(reference.read_bytes()).hexdigest() == info.sha256
    assert data == reference.read_bytes()


@pytest.mark.parametrize("name", NAMES)
def test_load_matches_info(name):
    info = datasets.info(name)
    assert hashlib.sha256(datasets.raw(name)).hexdigest() == info.sha256
    frame = datasets.load(name)
    assert frame.shape == (info.rows, len(info.columns)) and tuple(frame.columns) == info.columns
    stored = datasets.load(name)
    frame.iloc[:, :] = frame.iloc[::-1].to_numpy()  # a fresh copy each call: changing one leaves the next as stored
    assert datasets.load(name).equals(stored) and not stored.equals(frame)
    assert len(datasets.load(name)) == info.rows
    assert set(info.roles.values()) <= set(info.columns) and set(info.targets) <= set(info.columns)
    assert set(info.scale) <= set(info.columns)
    # the README states the facts: name, file, checksum, source commit and license
    for fact in (info.name, info.file, info.sha256, info.commit, info.license.split(" ")[0]):
        assert fact in info.readme, fact
    assert (info.no_target is None) == ("loss" in info.roles)


@pytest.mark.parametrize("name", NAMES)
def test_scaling_data_with_the_default_roles(name):
    info = datasets.info(name)
    if "loss" not in info.roles:
        with pytest.raises(DataError, match=f"dataset '{name}' has no default target: .* Map one of "
                                            f"{info.targets[0]}, .*--col score=<column>"):
            datasets.scaling_data(name)
        return
    data, said = _quiet(name)
    excluded = 1 if name == "olmo_cosine" else 0  # the documented exclusion (info.exclusion)
    assert (info.exclusion is None) == (excluded == 0)
    assert len(data) == info.rows - excluded
    assert {k for k in info.roles if k in ("N", "D", "C", "U", "x")} <= set(data.covariates)
    assert data.source == f"dataset {name}" + (f", 1 of {info.rows} rows excluded" if excluded else "")
    frame = datasets.load(name)
    if excluded:
        frame = frame[frame["run"] != "peteish1_eval_final"]
        assert [m for m in said if "excluded" in m] == [
            f"dataset olmo_cosine: 1 of 2460 rows excluded (lines [2461]) by its documented rule, {info.exclusion}; "
            f"exclude=False keeps every row."]
    else:
        assert not [m for m in said if "excluded" in m]
    np.testing.assert_array_equal(data.y, frame[info.roles["loss"]].to_numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert jaxscale.ScalingData.from_dataset(name).fingerprint() == data.fingerprint()


def test_from_dataset_is_scaling_data():
    a = jaxscale.ScalingData.from_dataset("muennighoff", flops_per_token=6.0)
    b = datasets.scaling_data("muennighoff")
    assert a.fingerprint() == b.fingerprint() and a.source == b.source == "dataset muennighoff"


def test_epoch_defaults_derive_tokens_and_drop_nothing():
    data = datasets.scaling_data("epoch_chinchilla")
    frame = datasets.load("epoch_chinchilla")
    assert len(data) == 245 and len(data.drop_top(5)) == 240  # Epoch's rule is the user's to apply
    np.testing.assert_allclose(data.covariates["D"], frame["Training FLOP"] / (6 * frame["Model Size"]))


def test_ruan_units_become_counts_and_incomplete_rows_are_announced():
    frame = datasets.load("ruan_base")
    lacking = frame.index[frame[["Model Size (B)", "Pretraining Data Size (T)", "FLOPs (1E21)", "MMLU"]]
                          .isna().any(axis=1)]
    data, said = _quiet("ruan_base", score="MMLU")
    kept = frame.drop(index=lacking)
    assert len(data) == len(kept) == 123 and len(lacking) == 25
    np.testing.assert_allclose(data.covariates["N"], kept["Model Size (B)"] * 1e9)
    np.testing.assert_allclose(data.covariates["D"], kept["Pretraining Data Size (T)"] * 1e12)
    np.testing.assert_allclose(data.covariates["C"], kept["FLOPs (1E21)"] * 1e21)
    assert data.group.tolist() == kept["Model Family"].tolist() and data.target_name == "score"
    lines = (lacking + 2).tolist()  # header on line 1
    assert said == [f"dataset ruan_base: 25 of 148 rows excluded (lines {lines[:10]} and 15 more) by its documented "
                    f"rule, {datasets.info('ruan_base').exclusion}; exclude=False keeps every row."]
    assert data.source == "dataset ruan_base, 25 of 148 rows excluded"
    # the rule follows the mapping: N alone is known for every base model
    n_only, said = _quiet("ruan_base", score="MMLU", D=None, C=None)
    assert len(n_only) == 148 and sorted(n_only.covariates) == ["N"] and said == []


def test_excluded_rows_are_errors_naming_their_line_when_kept():
    with pytest.raises(DataError, match=r"D \(column 'tokens'\) has 1 non-finite value\(s\) \(NaN or inf\), first at "
                                        r"olmo_cosine line 2461"):
        datasets.scaling_data("olmo_cosine", exclude=False)
    with pytest.raises(DataError, match=r"D \(column 'Pretraining Data Size \(T\)'\) has 25 non-finite value\(s\) .* "
                                        r"first at ruan_base line 14"):
        datasets.scaling_data("ruan_base", score="MMLU", exclude=False)
    with pytest.raises(DataError, match=r"loss \(column 'HumanEval'\) must be > 0; ruan_base line \d+ has 0.0"), \
            pytest.warns(UserWarning, match="36 of 148 rows excluded"):  # 25 lack D and C, 11 more HumanEval
        datasets.scaling_data("ruan_base", score="HumanEval")


def test_mappings_override_the_defaults():
    # a target replaces the default loss; the default roles stay
    acc, _ = _quiet("olmo_cosine", score="acc_hellaswag")
    assert acc.target_name == "score" and len(acc) == 2459 and sorted(acc.covariates) == ["C", "D", "N"]
    # None unmaps a default role (C is then derived as 6 N D)
    no_c, _ = _quiet("olmo_const", C=None)
    np.testing.assert_allclose(no_c.covariates["C"], 6 * no_c.covariates["N"] * no_c.covariates["D"])
    # a column given another role leaves the role it had
    by_step, _ = _quiet("olmo_decay", x="tokens", N=None, C=None)
    assert sorted(by_step.covariates) == ["x"]
    final = datasets.scaling_data("olmo_final", loss="bpb_hellaswag_v1")
    assert len(final) == 5729 and final.run is not None and len(np.unique(final.run)) == 20
    with pytest.raises(DataError, match=r"Column 'nope' \(mapped to N\) is not in the data"):
        datasets.scaling_data("epoch_chinchilla", N="nope")


def test_select_keeps_one_curve_with_its_file_lines():
    curve = datasets.scaling_data("revisiting_vision", select={"Task": "inet_5", "Model": "ViT/B/16"})
    frame = datasets.load("revisiting_vision")
    rows = frame[(frame.Task == "inet_5") & (frame.Model == "ViT/B/16")]
    assert len(curve) == len(rows) > 0 and curve.source.startswith("dataset revisiting_vision (select ")
    np.testing.assert_array_equal(curve.covariates["x"], rows["Seen Examples"].to_numpy())
    with pytest.raises(DataError, match="select: dataset 'revisiting_vision' has no column 'task'"):
        datasets.scaling_data("revisiting_vision", select={"task": "inet_5"})
    with pytest.raises(DataError, match=r"select \{'Task': 'inet_6'\} matches no row .* 'Task' holds \["):
        datasets.scaling_data("revisiting_vision", select={"Task": "inet_6"})
    with pytest.raises(ArgumentError, match="select must map columns"):
        datasets.scaling_data("revisiting_vision", select="inet_5")


def test_tables_without_covariates_say_how_to_get_them():
    with pytest.raises(DataError, match="dataset 'ruan_emergent' has no default target: it holds task scores keyed "
                                        "by Model only, with no N, D or C: merge it with ruan_base"):
        datasets.scaling_data("ruan_emergent")
    with pytest.raises(DataError, match="dataset 'ruan_leaderboard_v2' maps no covariate .*merge it with ruan_base"):
        datasets.scaling_data("ruan_leaderboard_v2", score="leaderboard_bbh")


def test_unknown_names_list_the_data_sets():
    listed = ", ".join(EXPECTED)
    for call in (datasets.load, datasets.info, datasets.raw, datasets.scaling_data):
        with pytest.raises(DataError, match=f"No dataset named 'epoch'; datasets: {listed}."):
            call("epoch")


def test_a_damaged_file_is_a_clear_error(monkeypatch):
    good = datasets._stored_bytes
    monkeypatch.setattr(datasets, "_stored_bytes", lambda spec: good(spec)[:-40])
    with pytest.raises(DataError, match=r"dataset 'muennighoff': its bundled file datablations/"
                                        r"datablations_parametric_fit_182runs.csv.xz is damaged \(.*\); reinstall"):
        datasets.load("muennighoff")
    flipped = bytearray(good(datasets._registry.BY_NAME["epoch_chinchilla"]))
    import lzma

    text = bytearray(lzma.decompress(bytes(flipped)))
    text[100] ^= 1  # one flipped bit, recompressed: the archive is valid, the checksum is not
    monkeypatch.setattr(datasets, "_stored_bytes", lambda spec: lzma.compress(bytes(text)))
    with pytest.raises(DataError, match=r"is damaged: the SHA-256 of its 23224 bytes is [0-9a-f]{64}, expected "
                                        r"193478df"):
        datasets.scaling_data("epoch_chinchilla")


def test_read_resolves_a_path_first_then_a_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert len(datasets.read("epoch_chinchilla")) == 245
    (tmp_path / "epoch_chinchilla").write_text("N,D,loss\n1e8,1e9,3.0\n1e9,1e10,2.6\n1e10,1e11,2.3\n")
    mine = datasets.read("epoch_chinchilla")  # a file of that name wins
    assert len(mine) == 3 and mine.source == str(tmp_path / "epoch_chinchilla")
    assert not datasets.is_dataset("epoch_chinchilla")
    with pytest.raises(DataError, match="^DATA 'nope' is neither an existing file nor a dataset; datasets: "
                                        f"{', '.join(EXPECTED)}.$"):
        datasets.read("nope", argument="DATA")
    with pytest.raises(ArgumentError, match="sep applies to a CSV file; 'muennighoff' is a bundled dataset"):
        datasets.read("muennighoff", sep=";")
    with pytest.raises(ArgumentError, match="select apply to a bundled dataset"):
        datasets.read("epoch_chinchilla", select={"N": 1})


def test_forecast_inputs_take_names():
    with pytest.warns(UserWarning, match="690 duplicate row"):  # the file's own repeats (its README)
        data, frame = coerce("revisiting_lang", {"x": "Seen Examples", "sep": None})
    assert len(data) == len(frame) == 1399 and "Training" in frame.columns  # a split may name a column
    at = points_csv("ruan_base_sub_10b", {})
    assert set(at) == {"N", "D", "C"} and np.nanmax(at["N"]) > 1e9  # the default roles, in counts
    with pytest.raises(DataError, match="--at-csv 'nope' is neither an existing file nor a dataset"):
        points_csv("nope", {})


def test_read_observational_takes_a_name(tmp_path):
    path = tmp_path / "base.csv"
    path.write_bytes(datasets.raw("ruan_base"))
    with pytest.warns(UserWarning, match="25 excluded"):
        by_name = downstream.read_observational("ruan_base", "HellaSwag", family=None)
    with pytest.warns(UserWarning, match="25 excluded"):
        by_path = downstream.read_observational(path, "HellaSwag")
    assert by_name.data.fingerprint() == by_path.data.fingerprint() and by_name.data.source == "dataset ruan_base"
    with pytest.raises(DataError, match="read_observational: 'ruan' is neither an existing file nor a dataset"):
        downstream.read_observational("ruan", "HellaSwag")


# --------------------------------------------------------------------------- command line


def test_cli_lists_and_describes(tmp_path, capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    for name in EXPECTED:
        info = datasets.info(name)
        assert any(line.split()[:2] == [name, str(info.rows)] for line in out.splitlines()), name
    assert "N=Model Size, C=Training FLOP, loss=loss" in out
    assert main(["datasets", "ruan_base"]) == 0
    out = capsys.readouterr().out
    info = datasets.info("ruan_base")
    for fact in (info.repo, info.commit, info.license, info.citation, "Model Size (B) x 1e+09", info.exclusion):
        assert fact in out, fact
    assert main(["datasets", "olmo_final", "--readme"]) == 0
    assert capsys.readouterr().out.strip() == datasets.info("olmo_final").readme.strip()
    out_csv = tmp_path / "epoch.csv"
    assert main(["datasets", "epoch_chinchilla", "--csv", str(out_csv)]) == 0
    assert out_csv.read_bytes() == datasets.raw("epoch_chinchilla")


def test_cli_unknown_dataset_is_one_line(capsys):
    assert main(["datasets", "epoch"]) == 2
    err = capsys.readouterr().err
    assert err == f"jaxscale: error: No dataset named 'epoch'; datasets: {', '.join(EXPECTED)}.\n"


def test_cli_fit_by_name_reaches_epochs_objective(tmp_path, capsys):
    out = tmp_path / "fit.json"
    assert main(["fit", "epoch_chinchilla", "--drop-top-loss", "5", "--starts", "64", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["n_points"] == 240 and res["settings"]["data_source"] == "dataset epoch_chinchilla"
    # the optimum the fit and bench tests pin (jaxscale.bench.EPOCH_OPTIMUM), at or just below Epoch's own stop
    assert res["objective"] == pytest.approx(EPOCH_OPTIMUM, rel=1e-9)
    assert EPOCH_OBJECTIVE * (1 - 2e-8) <= res["objective"] <= EPOCH_OBJECTIVE
    capsys.readouterr()


def test_cli_data_neither_file_nor_name_fails_before_any_work(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(jaxscale, "fit", lambda *a, **k: pytest.fail("fitted before checking DATA"))
    assert main(["fit", "epoch_chinchila", "--json", str(tmp_path / "f.json")]) == 2
    err = capsys.readouterr().err
    assert err == (f"jaxscale: error: DATA 'epoch_chinchila' is neither an existing file nor a dataset; datasets: "
                   f"{', '.join(EXPECTED)}.\n")
    assert not (tmp_path / "f.json").exists()


def test_cli_existing_file_beats_the_name(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "epoch_chinchilla").write_text("N,D,loss\n1e8,1e9,3.0\n1e9,1e10,-2.6\n")
    assert main(["fit", "epoch_chinchilla"]) == 2
    assert capsys.readouterr().err == "jaxscale: error: loss must be > 0; line 3 has -2.6 (1 row(s) <= 0).\n"


def test_cli_col_overrides_a_default_role(capsys):
    from jaxscale.cli import build_parser
    from jaxscale.cli.args import inputs

    assert main(["fit", "olmo_final"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jaxscale: error: dataset 'olmo_final' has no default target: its loss_c4 and loss_pile "
                          "are broken") and "Map one of bpb_hellaswag_v1, " in err
    args = build_parser().parse_args(["fit", "olmo_final", "--col", "loss=bpb_hellaswag_v1", "--col", "C="])
    _, data, _ = inputs(args)  # what `jaxscale fit` would fit: the default N, D, run, with --col over them
    frame = datasets.load("olmo_final")
    np.testing.assert_array_equal(data.y, frame["bpb_hellaswag_v1"].to_numpy())
    np.testing.assert_allclose(data.covariates["C"], 6.0 * frame["params"] * frame["tokens"].astype(float))  # derived
    assert data.run.tolist() == frame["run"].tolist()


def test_scaling_data_frame_round_trip():
    data = datasets.scaling_data("muennighoff_all")
    frame = datasets.load("muennighoff_all")
    assert data.to_frame()["U"].tolist() == pd.to_numeric(frame["unique_tokens"]).astype(float).tolist()
