"""Reading fits back from files (``jaxscale allocate --fit F``): good files load, damaged ones are one DataError."""

import json

import numpy as np
import pytest

import jaxscale
from jaxscale._draws import param_source
from jaxscale.errors import ArgumentError, DataError, LawError

POINT = {"E": 1.7, "A": 400.0, "B": 410.0, "alpha": 0.34, "beta": 0.28}
DRAWS = {"E": [1.7, 1.8], "A": [400.0, 410.0], "B": [410.0, 400.0], "alpha": [0.34, 0.35], "beta": [0.28, 0.29]}
FIT = {"law": "chinchilla", "params": POINT, "settings": {"law_options": {}}}
BOOT = {"law": "chinchilla", "params": {k: {"estimate": v, "se": 0.1, "ci": [v, v]} for k, v in POINT.items()},
        "draws": DRAWS}


def _write(tmp_path, name, content):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content)
    else:
        path.write_text(json.dumps(content))
    return path


def test_fit_and_bootstrap_files_load(tmp_path):
    src = param_source(str(_write(tmp_path, "fit.json", FIT)))
    assert src.kind == "fit" and src.point == POINT and src.draws is None
    src = param_source(_write(tmp_path, "boot.json", BOOT))  # a PathLike works too
    assert src.kind == "bootstrap" and src.point == POINT
    np.testing.assert_array_equal(src.draws["alpha"], [0.34, 0.35])


def test_a_null_draw_is_read_as_a_failed_draw(tmp_path):
    doc = {**BOOT, "draws": {**DRAWS, "E": [1.7, None]}}
    src = param_source(str(_write(tmp_path, "boot.json", doc)))
    assert np.isnan(src.draws["E"][1]) and src.draws["E"][0] == 1.7


DAMAGED_JSON = {
    "unequal_draws": ({**BOOT, "draws": {**DRAWS, "beta": [0.28]}}, r"equally long; got lengths .*'beta': 1"),
    "missing_draw": ({**BOOT, "draws": {k: v for k, v in DRAWS.items() if k != "beta"}}, r"lacks parameter\(s\) \['beta'\]"),
    "draws_list": ({**BOOT, "draws": [1, 2]}, "'draws' must be a JSON object"),
    "draws_text": ({**BOOT, "draws": {**DRAWS, "A": ["400", "410"]}}, "draws of 'A' must be a list of numbers"),
    "draws_scalar": ({**BOOT, "draws": {**DRAWS, "A": 400.0}}, "draws of 'A' must be a list of numbers"),
    "draws_empty": ({**BOOT, "draws": {k: [] for k in DRAWS}}, "holds no draws"),
    "no_draws": ({k: v for k, v in BOOT.items() if k != "draws"}, "has no 'draws'"),
    "no_estimate": ({**BOOT, "params": {**BOOT["params"], "E": {"se": 0.1}}}, r"params \['E'\] have no 'estimate'"),
    "mixed_params": ({**BOOT, "params": {**BOOT["params"], "E": 1.7}}, "mixes numbers and objects"),
    "params_list": ({**FIT, "params": list(POINT.values())}, "'params' must be a JSON object"),
    "params_missing": ({**FIT, "params": {k: v for k, v in POINT.items() if k != "beta"}}, r"lacks parameters \['beta'\]"),
    "param_null": ({**FIT, "params": {**POINT, "E": None}}, "parameter 'E' is null"),
    "param_nan": ({**FIT, "params": {**POINT, "E": float("nan")}}, "parameter 'E' is nan; expected a finite number"),
    "param_inf": ({**FIT, "params": {**POINT, "A": float("inf")}}, "parameter 'A' is inf"),
    "param_text": ({**FIT, "params": {**POINT, "E": "1.7"}}, "parameter 'E' must be a number; got '1.7'"),
    "param_bool": ({**FIT, "params": {**POINT, "E": True}}, "parameter 'E' must be a number"),
    "settings_null": ({**FIT, "settings": None}, "'settings' must be a JSON object"),
    "settings_list": ({**FIT, "settings": []}, "'settings' must be a JSON object"),
    "options_list": ({**FIT, "settings": {"law_options": ["N"]}}, "'settings.law_options' must be a JSON object"),
    "bad_options": ({**FIT, "law": "power", "settings": {"law_options": {"resource": "Q"}}},
                    "the law options .* do not build law 'power'.*resource must be one of"),
    "unknown_law": ({**FIT, "law": "chinchila"}, r"unknown law 'chinchila'; expected one of \[.*'chinchilla'"),
    "law_not_text": ({**FIT, "law": 3}, "'law' must be a law name"),
    "no_law": ({"params": POINT}, r"an object with 'law' and 'params'\); got keys \['params'\]"),
    "a_list": ([FIT], "got a JSON list"),
}


@pytest.mark.parametrize("name", DAMAGED_JSON)
def test_damaged_json_is_one_data_error_naming_the_file(tmp_path, name):
    doc, match = DAMAGED_JSON[name]
    path = _write(tmp_path, f"{name}.json", doc)
    with pytest.raises(DataError, match=match) as e:
        param_source(str(path))
    msg = str(e.value)
    assert msg.startswith(str(path)) and "\n" not in msg


DAMAGED_BYTES = {
    "empty.json": (b"", "the file is empty"),
    "blank.json": (b"  \n", "the file is empty"),
    "truncated.json": (json.dumps(BOOT).encode()[:70], r"not valid JSON \(.*truncated"),
    "invalid.json": (b"{'law': 'chinchilla'}", "not valid JSON"),
    "binary.json": (bytes(range(128, 256)), "not a text file"),
    "netcdf.json": (b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 4, "this is a netCDF file .* name it with a .nc extension"),
    "classic.json": (b"CDF\x01" + bytes(64), "this is a netCDF file"),
    "fit.nc": (json.dumps(FIT).encode(), "not a netCDF file .*looks like JSON: name it .json"),
    "empty.nc": (b"", r"not a netCDF file \(it is empty\)"),
    "text.nc": (b"hello world", "not a netCDF file .*starts with b'hello wo'"),
    "damaged.nc": (b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 4, "cannot be read as netCDF .*truncated or damaged"),
}


@pytest.mark.parametrize("name", DAMAGED_BYTES)
def test_damaged_or_misnamed_files_are_one_data_error(tmp_path, name):
    content, match = DAMAGED_BYTES[name]
    path = _write(tmp_path, name, content)
    with pytest.raises(DataError, match=match) as e:
        param_source(str(path))
    assert str(e.value).startswith(str(path)) and "\n" not in str(e.value)


def test_missing_file_and_directory_are_argument_errors(tmp_path):
    with pytest.raises(ArgumentError, match="does not exist"):
        param_source(str(tmp_path / "nope.json"))
    with pytest.raises(ArgumentError, match="is a directory"):
        param_source(str(tmp_path))


def test_a_law_mismatch_stays_a_law_error(tmp_path):
    path = _write(tmp_path, "fit.json", FIT)
    with pytest.raises(LawError, match="holds a fit of law 'chinchilla'"):
        param_source(str(path), law="kaplan")


def test_a_dict_of_parameters_is_checked_as_an_argument(tmp_path):
    with pytest.raises(LawError, match=r"params: parameter 'E' is nan"):
        param_source({**POINT, "E": float("nan")}, law="chinchilla")
    assert param_source({**POINT, "E": np.float32(1.5)}, law="chinchilla").point["E"] == 1.5


def _posterior(attrs, values=POINT):
    az = pytest.importorskip("arviz")
    idata = az.from_dict(posterior={k: np.full((1, 4), v) for k, v in values.items()})
    idata.posterior.attrs.update(attrs)
    return idata


def test_netcdf_posterior_round_trip_and_damage(tmp_path):
    good = tmp_path / "post.nc"
    _posterior({"law": "chinchilla", "law_options": "{}"}).to_netcdf(good)
    src = param_source(str(good))
    assert src.kind == "posterior" and src.point == pytest.approx(POINT) and len(src.draws) == 4
    # the same file cut in half (a copy that stopped early)
    raw = good.read_bytes()
    cut = _write(tmp_path, "cut.nc", raw[: len(raw) // 2])
    with pytest.raises(DataError, match=r"cut.nc: cannot be read as netCDF"):
        param_source(str(cut))
    # a posterior without jaxscale's attributes, with bad options, or without a parameter
    cases = {"plain.nc": ({}, "does not name a jaxscale law"),
             "options.nc": ({"law": "chinchilla", "law_options": "{oops"}, "law_options attribute must be a JSON"),
             "unknown.nc": ({"law": "chinchila"}, "Unknown law 'chinchila'"),
             "nobeta.nc": ({"law": "chinchilla"}, "has no draws of 'beta'")}
    for name, (attrs, match) in cases.items():
        values = {k: v for k, v in POINT.items() if k != "beta"} if name == "nobeta.nc" else POINT
        _posterior(attrs, values).to_netcdf(tmp_path / name)
        with pytest.raises(DataError, match=match):
            param_source(str(tmp_path / name))


def test_cli_allocate_reports_a_damaged_file_on_one_line(tmp_path, capsys):
    from jaxscale.cli import main

    path = _write(tmp_path, "unequal.json", DAMAGED_JSON["unequal_draws"][0])
    assert main(["allocate", "--fit", str(path), "--compute", "1e22"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unequal.json" in err and "equally long" in err


def test_jaxscale_data_error_is_exported():
    assert jaxscale.DataError is DataError
