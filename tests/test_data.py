"""Bad input: each case gives a clear error naming the column/row/argument."""

import inspect

import numpy as np
import pandas as pd
import pytest

import jaxscale
from jaxscale import DataError, ScalingData
from jaxscale.data import ALIASES, alias_table, mixed_units, read_csv
from jaxscale.errors import ArgumentError


def frame(**over):
    base = {"params": [1e8, 1e9, 1e10, 3e10], "flops": [1e19, 1e20, 1e21, 1e22], "loss": [3.1, 2.7, 2.4, 2.2]}
    base.update(over)
    return pd.DataFrame(base)


def test_aliases_and_derived_tokens():
    d = ScalingData.from_frame(frame())
    np.testing.assert_allclose(d.covariates["D"], d.covariates["C"] / (6 * d.covariates["N"]))
    d8 = ScalingData.from_frame(frame(), flops_per_token=8)
    np.testing.assert_allclose(d8.covariates["D"], d.covariates["D"] * 6 / 8)
    d2 = ScalingData.from_arrays(N=[1e8, 1e9], D=[1e9, 1e10], loss=[3.0, 2.5])
    np.testing.assert_allclose(d2.covariates["C"], [6e17, 6e19])


def test_explicit_mapping_and_labels():
    f = frame(family=["a", "a", "b", "b"])
    d = ScalingData.from_frame(f, N="params", C="flops", loss="loss", group="family")
    assert list(d.group) == ["a", "a", "b", "b"]


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_names_column_and_row(value):
    f = frame(loss=[3.1, value, 2.4, 2.2])
    with pytest.raises(DataError, match=r"loss has 1 non-finite.*row 1"):
        ScalingData.from_frame(f)


@pytest.mark.parametrize("col,role", [("params", "N"), ("flops", "C"), ("loss", "loss")])
@pytest.mark.parametrize("value", [0.0, -1.0])
def test_zero_or_negative(col, role, value):
    vals = frame()[col].tolist()
    vals[2] = value
    name = role if col == role else rf"{role} \(column '{col}'\)"
    with pytest.raises(DataError, match=rf"^{name} must be > 0; row 2 \(0-based row index\) has {value}"):
        ScalingData.from_frame(frame(**{col: vals}))


def test_zero_or_negative_tokens_and_unique():
    with pytest.raises(DataError, match=r"D must be > 0; row 0 \(0-based row index\)"):
        ScalingData.from_arrays(N=[1e8, 1e9], D=[0.0, 1e10], loss=[3.0, 2.5])
    with pytest.raises(DataError, match=r"U must be > 0; row 1 \(0-based row index\)"):
        ScalingData.from_arrays(N=[1e8, 1e9], D=[1e9, 1e10], U=[1e9, -5.0], loss=[3.0, 2.5])


def test_mismatched_lengths():
    with pytest.raises(DataError, match=r"Mismatched lengths: \{'N': 3, 'D': 2, 'loss': 3\}"):
        ScalingData.from_arrays(N=[1e8, 1e9, 1e10], D=[1e9, 1e10], loss=[3.0, 2.5, 2.2])


def test_missing_column():
    with pytest.raises(DataError, match=r"Column 'Model Size' \(mapped to N\) is not in the data; columns are"):
        ScalingData.from_frame(frame(), N="Model Size")
    with pytest.raises(DataError, match="No target column"):
        ScalingData.from_frame(frame().drop(columns="loss"))


def test_ambiguous_column():
    f = frame()
    f["Loss"] = f["loss"]
    with pytest.raises(DataError, match=r"Ambiguous column for loss: \['loss', 'Loss'\]"):
        ScalingData.from_frame(f)
    f["val_loss"] = f["loss"]
    with pytest.raises(DataError, match=r"Ambiguous column for loss: \['loss', 'Loss', 'val_loss'\] all match; "
                                        r"choose one with --col loss=<column> \(Python: loss='<column>'\)"):
        ScalingData.from_frame(f)
    g = pd.DataFrame([[1e8, 1e9, 1e9, 3.0], [1e9, 1e10, 1e10, 2.5]], columns=["n", "tokens", "Train-Tokens", "loss"])
    with pytest.raises(DataError, match=r"Ambiguous column for D: \['tokens', 'Train-Tokens'\]"):
        ScalingData.from_frame(g)
    assert ScalingData.from_frame(g, D="tokens").covariates["D"].tolist() == [1e9, 1e10]


def test_non_numeric_string_names_column_and_row():
    f = frame(params=[1e8, "1e9", "big", 3e10])
    with pytest.raises(DataError, match=r"column 'params' \(N\): row 2 \(0-based row index\) holds 'big', which is not"):
        ScalingData.from_frame(f)


def test_non_numeric_in_csv(tmp_path):
    p = tmp_path / "runs.csv"
    p.write_text("N,D,loss\n1e8,1e9,3.0\n1e9,1e10,n/a?\n")
    with pytest.raises(DataError, match=r"column 'loss' \(loss\): line 3 holds 'n/a\?'"):
        ScalingData.from_csv(p)


def test_constant_covariate_the_law_needs():
    d = ScalingData.from_arrays(N=[1e9] * 6, D=np.logspace(9, 11, 6), loss=np.linspace(3, 2.5, 6))
    with pytest.raises(DataError, match=r"Covariate N is constant \(1e\+09 in every row\); law 'chinchilla' needs it"):
        jaxscale.fit("chinchilla", d, starts=4, key=0)


def test_law_covariate_missing():
    d = ScalingData.from_arrays(N=[1e8, 1e9, 1e10], loss=[3.0, 2.5, 2.2])
    with pytest.raises(DataError, match=r"needs covariate\(s\) \['N', 'D'\]; the data lacks \['D'\]"):
        jaxscale.fit("chinchilla", d)


def test_fewer_points_than_parameters():
    d = ScalingData.from_arrays(N=[1e8, 1e9, 1e10], D=[1e9, 1e10, 3e11], loss=[3.0, 2.5, 2.2])
    with pytest.raises(jaxscale.FitError, match=r"3 points cannot determine 5 free parameters of law 'chinchilla'"):
        jaxscale.fit("chinchilla", d)


def test_duplicate_rows_warn_and_are_kept():
    f = pd.concat([frame(), frame().iloc[[1]]], ignore_index=True)
    with pytest.warns(UserWarning, match=r"1 duplicate row\(s\).*rows \[1\] \(0-based row indices\); keeping them all"):
        d = ScalingData.from_frame(f)
    assert len(d) == 5


def test_unknown_role_and_bad_flops_per_token():
    with pytest.raises(DataError, match="Unknown column role"):
        ScalingData.from_frame(frame(), tokens="flops")
    with pytest.raises(ArgumentError, match="flops_per_token must be > 0; got 0"):
        ScalingData.from_frame(frame(), flops_per_token=0)


def test_missing_file():
    with pytest.raises(DataError, match="No such data file"):
        ScalingData.from_csv("/nonexistent/runs.csv")


def test_drop_top_matches_epoch_rule(epoch_data):
    raw = jaxscale.datasets.load("epoch_chinchilla")
    keep = raw["loss"] < sorted(raw["loss"])[-5]
    assert len(epoch_data) == 240 == int(keep.sum())
    np.testing.assert_array_equal(np.sort(epoch_data.y), np.sort(raw["loss"][keep].to_numpy()))
    with pytest.raises(DataError, match="drop_top needs an integer"):
        epoch_data.drop_top(-1)


def test_filter_and_fingerprint():
    d = ScalingData.from_frame(frame())
    assert len(d.filter(N=(5e8, 2e10))) == 2
    assert d.fingerprint() == ScalingData.from_frame(frame()).fingerprint()
    assert d.fingerprint() != d.subset([0, 1, 2]).fingerprint()
    with pytest.raises(DataError, match="filter: no column 'U'"):
        d.filter(U=(1, None))


def test_arrays_are_immutable():
    d = ScalingData.from_frame(frame())
    with pytest.raises(ValueError):
        d.y[0] = 1.0


# ---------------------------------------------------------------- CSV edges: header, separator, lines

ROWS = [("1e8", "2e9", "3.1"), ("1e9", "2e10", "2.7"), ("1e10", "2e11", "2.4")]


def write_csv(tmp_path, header, rows=ROWS, sep=",", name="runs.csv"):
    p = tmp_path / name
    p.write_text("\n".join([sep.join(header), *(sep.join(r) for r in rows)]) + "\n")
    return p


@pytest.mark.parametrize("header", [["N", "N", "D", "loss"], ["N", " N ", "D", "loss"]])
def test_repeated_header_names_are_an_error(tmp_path, header):
    p = write_csv(tmp_path, header, [("1e8", "1e8", "2e9", "3.1")])
    with pytest.raises(DataError, match=r"column names repeat in .*runs.csv: \['N'\] \(header, line 1\)"):
        ScalingData.from_csv(p)


def test_repeated_frame_columns_are_an_error():
    g = pd.DataFrame([[1e8, 1e9, 3.0], [1e9, 1e10, 2.5]], columns=["n", "n", "loss"])
    for mapping in ({}, {"N": "n"}):
        with pytest.raises(DataError, match=r"column names repeat in the DataFrame: \['n'\]"):
            ScalingData.from_frame(g, **mapping)


@pytest.mark.parametrize("sep", [",", ";", "\t", "|"], ids=["comma", "semicolon", "tab", "pipe"])
def test_separator_is_sniffed(tmp_path, sep):
    p = write_csv(tmp_path, ["model", "N", "D", "loss"], [(f'"a{sep}b"', *r) for r in ROWS], sep=sep)
    d = ScalingData.from_csv(p)
    assert read_csv(p).sep == sep
    np.testing.assert_allclose(d.covariates["N"], [1e8, 1e9, 1e10])
    np.testing.assert_allclose(ScalingData.from_csv(p, sep=sep).y, d.y)


def test_single_column_suggests_sep(tmp_path):
    p = write_csv(tmp_path, ["N", "D", "loss"], sep=";")
    with pytest.raises(DataError, match=r"single column 'N;D;loss' with separator ','; its header holds ';': "
                                        r"give the separator with --sep ';' \(Python: sep=';'\)"):
        ScalingData.from_csv(p, sep=",")
    assert len(ScalingData.from_csv(write_csv(tmp_path, ["N", "D", "loss"], sep="\t"), sep="tab")) == 3
    with pytest.raises(ArgumentError, match="sep must be one character"):
        ScalingData.from_csv(p, sep=";;")
    p.write_text("N;D;loss\n1e8;2e9;3,1\n1e9;2e10;2,7\n")
    with pytest.raises(DataError, match=r"line 2 holds '3,1', which is not a number \(a decimal comma\? write 3.1\)"):
        ScalingData.from_csv(p)


def test_explicit_mapping_matches_stripped_header(tmp_path):
    p = write_csv(tmp_path, [" N ", " D ", "loss"])
    d = ScalingData.from_csv(p, N="N", D=" D")
    np.testing.assert_allclose(d.covariates["D"], [2e9, 2e10, 2e11])
    f = pd.DataFrame({" N ": [1e8, 1e9], "D": [2e9, 2e10], "loss": [3.1, 2.7]})
    assert ScalingData.from_frame(f, N="N").covariates["N"].tolist() == [1e8, 1e9]


def test_csv_errors_give_the_file_line(tmp_path):
    p = tmp_path / "runs.csv"
    p.write_text('model,N,D,loss\n\n"two\nlines",1e8,2e9,3.1\n\nb,1e9,2e10,2.7\n   \nc,1e10,2e11,-2.4\n')
    assert read_csv(p).lines.tolist() == [3, 6, 8]
    with pytest.raises(DataError, match=r"^loss must be > 0; line 8 has -2.4"):
        ScalingData.from_csv(p)
    p.write_text("N,D,loss\n1e8,2e9,3.1\n1e9,,2.7\n")
    with pytest.raises(DataError, match=r"D has 1 non-finite value\(s\) \(NaN or inf\), first at line 3: nan"):
        ScalingData.from_csv(p)


def test_frame_errors_give_the_row_index():
    f = frame(loss=[3.1, np.nan, 2.4, 2.2])
    with pytest.raises(DataError, match=r"first at row 1 \(0-based row index\): nan"):
        ScalingData.from_frame(f)
    with pytest.raises(DataError, match=r"first at row with index label 'b': nan"):
        ScalingData.from_frame(f.set_axis(list("abcd")))


# ---------------------------------------------------------------- column names and hints

@pytest.mark.parametrize("role", ["N", "D", "C", "U", "loss", "run"])
def test_every_alias_is_recognised(role):
    for alias in ALIASES[role]:
        column = alias.upper().replace("_", "/")  # case and '/' are ignored
        base = {"N": [1e8, 1e9], "D": [2e9, 2e10], "loss": [3.1, 2.7]}
        base.pop(role, None)
        f = pd.DataFrame({**base, column: ["r1", "r2"] if role == "run" else [5e9, 6e10]})
        d = ScalingData.from_frame(f)
        if role == "run":
            assert d.run.tolist() == ["r1", "r2"], alias
        elif role == "loss":
            assert d.y.tolist() == [5e9, 6e10], alias
        else:
            assert d.covariates[role].tolist() == [5e9, 6e10], alias


def test_export_names_and_table():
    f = pd.DataFrame({"Model-Params": [1e8, 1e9], "tokens.seen": [2e9, 2e10], "eval/loss": [3.1, 2.7]})
    d = ScalingData.from_frame(f)
    assert sorted(d.covariates) == ["C", "D", "N"] and d.y.tolist() == [3.1, 2.7]
    assert alias_table() in inspect.cleandoc(ScalingData.from_csv.__doc__)


def test_missing_target_and_covariate_list_the_columns(tmp_path):
    p = write_csv(tmp_path, ["params", "toks", "acc"])
    with pytest.raises(DataError, match=r"No target column in .*runs.csv: its columns are \['params', 'toks', 'acc'\];"
                                        r" .*map one with --col loss=<column> \(Python: loss='<column>'\)"):
        ScalingData.from_csv(p)
    d = ScalingData.from_csv(p, loss="acc")
    msg = (r"needs covariate\(s\) \['N', 'D'\]; the data lacks \['D'\] .* the columns of .*runs.csv are "
           r"\['params', 'toks', 'acc'\]: map one with --col D=<column> \(Python: D='<column>'\)")
    with pytest.raises(DataError, match=msg):
        d.design(["N", "D"], "chinchilla")
    from jaxscale.forecast._inputs import require_covariates

    with pytest.raises(DataError, match=msg):
        require_covariates(jaxscale.laws.get("chinchilla"), d)


# ---------------------------------------------------------------- derived columns, units, types

def test_derived_column_that_overflows_names_the_row(tmp_path):
    p = write_csv(tmp_path, ["N", "C", "loss"], [("1e8", "1e19", "3.1"), ("1e-300", "1e20", "2.7")])
    with pytest.raises(DataError, match=r"D derived as C / \(6 N\) is inf at line 3 \(C=1e\+20, N=1e-300; 1 row"):
        ScalingData.from_csv(p)
    with pytest.raises(DataError, match=r"C derived as 6 N D is inf at row 1 \(0-based row index\) \(N=1e\+200, "
                                        r"D=1e\+200"):
        ScalingData.from_arrays(N=[1e8, 1e200], D=[1e9, 1e200], loss=[3.0, 2.5])
    with pytest.raises(DataError, match=r"at: D derived as C / \(6 N\) is inf at point 0"):
        from jaxscale.forecast._inputs import points

        points((jaxscale.laws.get("chinchilla"),), {"N": 1e-300, "C": 1e20}, 6.0)


def test_mixed_units_warn_once_naming_the_rows(tmp_path):
    N = ["1.3e8", "4e8", "1e9", "3e9", "7", "13"]
    rows = [(n, f"{2e10 * (i + 1):g}", f"{3.0 - 0.1 * i:g}") for i, n in enumerate(N)]
    with pytest.warns(UserWarning, match=r"^N looks like mixed units: lines \[6, 7\] are ~1e8x smaller than the rest; "
                                         r"give every value in the same unit") as record:
        ScalingData.from_csv(write_csv(tmp_path, ["N", "D", "loss"], rows))
    assert len(record) == 1 and record[0].filename == __file__  # points at the caller, not at jaxscale
    with pytest.warns(UserWarning, match=r"N \(column 'params'\) looks like mixed units: rows \[2\] \(0-based row "
                                         r"indices\) are ~1e8x smaller"):
        ScalingData.from_frame(frame(params=[1e8, 1e9, 7.0, 3e10]))
    # the generic resource x has the user's units: a design with two far points is not flagged
    ScalingData.from_arrays(x=[10.0, 30.0, 100.0, 1e7, 1e8], loss=[3.0, 2.9, 2.8, 2.2, 2.1])


def test_mixed_units_rule_is_quiet_on_real_data():
    assert mixed_units(np.geomspace(1e7, 1e11, 40)) is None  # an IsoFLOP grid
    assert mixed_units([1e3, 1e9]) is None  # two values cannot tell
    for d in (jaxscale.demo_data(),):
        assert all(mixed_units(v) is None for v in d.covariates.values())
    for name in jaxscale.datasets.available():  # every published data set bundled with jaxscale
        f = jaxscale.datasets.load(name)
        for c in f.columns:
            v = pd.to_numeric(f[c], errors="coerce").to_numpy(dtype=float)
            v = v[np.isfinite(v) & (v > 0)]
            assert mixed_units(v) is None, (name, c)


BAD_VALUES = {"bool": [True, False, True], "complex": [1e8 + 1j, 1e9, 1e10], "bool dtype": np.array([True] * 3)}


@pytest.mark.parametrize("bad", list(BAD_VALUES), ids=list(BAD_VALUES))
@pytest.mark.parametrize("role", ["N", "loss"])
@pytest.mark.parametrize("build", ["arrays", "frame"])
def test_arrays_and_frames_reject_the_same_types(build, role, bad):
    cols = {"N": [1e8, 1e9, 1e10], "D": [2e9, 2e10, 2e11], "loss": [3.1, 2.7, 2.4], role: BAD_VALUES[bad]}
    kind = "complex" if bad == "complex" else "boolean"
    with pytest.raises(DataError, match=rf"{role}.*(holds|a) {kind}"):
        if build == "arrays":
            ScalingData.from_arrays(**cols)
        else:
            ScalingData.from_frame(pd.DataFrame(cols))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int32, np.int64, np.uint64])
def test_arrays_and_frames_accept_numeric_dtypes(dtype):
    N, D, loss = np.array([1, 10, 100], dtype), np.array([20, 200, 2000], dtype), np.array([3, 2, 1], dtype)
    a = ScalingData.from_arrays(N=N, D=D, loss=loss, flops_per_token=np.float32(6.0))
    f = ScalingData.from_frame(pd.DataFrame({"N": N, "D": D, "loss": loss}), flops_per_token=np.int64(6))
    assert a.fingerprint() == f.fingerprint() and a.covariates["N"].dtype == np.float64
    with pytest.raises(ArgumentError, match="flops_per_token must be a finite number; got True"):
        ScalingData.from_arrays(N=N, D=D, loss=loss, flops_per_token=True)
