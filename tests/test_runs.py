"""Training-log loaders (jaxscale.runs): long and tidy logs, W&B panel exports, and their bad input."""

import numpy as np
import pandas as pd
import pytest

from jaxscale import DataError, ScalingData, datasets, schedule
from jaxscale._io import write_atomic
from jaxscale.runs import read_long, read_wandb

#: OLMo's W&B metric names of the olmo_ladder columns (README: the columns table)
WANDB_NAMES = {"loss_c4": "eval/c4_en-validation/CrossEntropyLoss", "lr": "optim/learning_rate_group0",
               "tokens": "throughput/total_tokens"}
RUNS = ("190M-1xC", "190M-0.5xC")      # logged every 200 and every 50 steps: their lines interleave


@pytest.fixture(scope="module")
def olmo_rows():
    rows = datasets.load("olmo_cosine")
    return rows[rows.run.isin(RUNS)].reset_index(drop=True)


def write_wandb(path, rows, step="Step"):
    """``rows`` (run, step and the WANDB_NAMES columns) written as a W&B panel export: one line per step logged by
    any run, columns ``<run> - <metric>`` plus W&B's ``__MIN``/``__MAX`` (filled with other numbers, so reading
    them would show), an empty cell where a run did not log at that step."""
    steps = np.unique(rows.step)
    header, columns = [step], [steps.astype(str)]
    for run, g in rows.groupby("run", sort=False):
        at = pd.Series(range(len(steps)), index=steps)[g.step.to_numpy()].to_numpy()
        for col, metric in WANDB_NAMES.items():
            for suffix, scale in (("", 1.0), ("__MIN", 0.5), ("__MAX", 2.0)):
                cells = np.full(len(steps), "", dtype=object)
                cells[at] = [repr(float(v) * scale) for v in g[col]]
                header.append(f"{run} - {metric}{suffix}")
                columns.append(cells)
    lines = [",".join(header)] + [",".join(str(c[i]) for c in columns) for i in range(len(steps))]
    write_atomic(path, "\n".join(lines) + "\n")
    return path


def test_wandb_export_reads_back_as_the_long_rows_and_gives_the_same_schedule_covariates(tmp_path, olmo_rows):
    path = write_wandb(tmp_path / "export.csv", olmo_rows)
    frame = read_wandb(path)
    assert list(frame.columns) == ["run", "step", *WANDB_NAMES.values()]
    assert frame.run.tolist() == olmo_rows.run.tolist()          # the same rows, in the same order
    np.testing.assert_array_equal(frame.step, olmo_rows.step)
    for col, metric in WANDB_NAMES.items():
        np.testing.assert_array_equal(frame[metric], olmo_rows[col].astype(float))
    got = ScalingData.from_frame(frame, run="run", step="step", lr=WANDB_NAMES["lr"], D=WANDB_NAMES["tokens"],
                                 loss=WANDB_NAMES["loss_c4"], aliases=False)
    want = ScalingData.from_frame(olmo_rows, run="run", step="step", lr="lr", D="tokens", loss="loss_c4",
                                  aliases=False)
    for key in schedule.KEYS:
        np.testing.assert_array_equal(got.covariates[key], want.covariates[key], err_msg=key)
    assert got.covariates["S1"][-1] > got.covariates["S1"][0]


def test_wandb_underscore_step_and_a_given_step_column(tmp_path, olmo_rows):
    frame = read_wandb(write_wandb(tmp_path / "a.csv", olmo_rows, step="_step"))
    np.testing.assert_array_equal(frame.step, olmo_rows.step)
    frame = read_wandb(write_wandb(tmp_path / "b.csv", olmo_rows, step="trainer/global_step"),
                       step="trainer/global_step", metrics=[WANDB_NAMES["lr"]])
    assert list(frame.columns) == ["run", "step", WANDB_NAMES["lr"]]
    with pytest.raises(DataError, match=r"no step column \(Step or _step\).*give step="):
        read_wandb(tmp_path / "b.csv")
    with pytest.raises(DataError, match=r"no step column 'Step'"):
        read_wandb(tmp_path / "a.csv", step="Step")
    with pytest.raises(DataError, match=r"no metric \['loss'\] in the export"):
        read_wandb(tmp_path / "a.csv", metrics=["loss"])


def test_wandb_empty_cells_are_not_logged_but_nan_is_data(tmp_path):
    path = tmp_path / "e.csv"
    write_atomic(path, "Step,r1 - loss,r1 - lr,r2 - loss\n10,3.0,1e-3,\n20,,,2.9\n30,NaN,,2.8\n")
    frame = read_wandb(path)
    assert frame[["run", "step"]].values.tolist() == [["r1", 10], ["r1", 30], ["r2", 20], ["r2", 30]]
    assert np.isnan(frame.loss[1]) and np.isnan(frame.lr[1]) and frame.lr[0] == 1e-3
    assert np.isnan(frame.lr[2:]).all()           # r2 never logs lr: the column is NaN for its rows


@pytest.mark.parametrize("text,match", [
    ("Step,r1 - loss\n10,3.0\n20,abc\n", r"e\.csv: line 3, column 'r1 - loss': 'abc' is not a number"),
    ("Step,r1 - loss\n10,3.0\n1e1,2.5\n", r"run 'r1' has step 10 on two lines, 2 and 3"),
    ("Step,r1 - loss\n10,3.0\n2.5,2.5\n", r"column 'Step' \(step\) must hold whole numbers >= 0.*line 3 has 2\.5"),
    ("Step,r1 - loss\n10,3.0\nten,2.5\n", r"column 'Step' \(step\): line 3 holds 'ten', which is not a number"),
    ("Step,r1 - loss\n10,3.0\n,2.5\n", r"line 3 has no step"),
    ("Step,loss\n10,3.0\n", r"column 'loss' \(header, line 1\) is not '<run> - <metric>'"),
    ("Step,r1 - loss\n10,3.0,7\n", r"line 2 has 3 fields, the header \(line 1\) 2"),
    ("Step,r1 - loss,r1 - loss\n10,3.0,3.0\n", r"column names repeat"),
    ("Step,r1 - step\n10,3.0\n", r"metric\(s\) \['step'\] would clash"),
    ("", r"is empty"),
])
def test_wandb_bad_input_names_line_and_column(tmp_path, text, match):
    path = tmp_path / "e.csv"
    write_atomic(path, text)
    with pytest.raises(DataError, match=match):
        read_wandb(path)


def test_wandb_missing_file():
    with pytest.raises(DataError, match="No such W&B export"):
        read_wandb("nowhere/export.csv")


def test_long_csv_is_sorted_by_run_then_step_keeping_run_order(tmp_path, olmo_rows):
    shuffled = olmo_rows.sample(frac=1.0, random_state=0)
    path = tmp_path / "long.csv"
    write_atomic(path, shuffled.to_csv(index=False))
    frame = read_long(path, metrics=["loss_c4", "lr"])
    first = list(dict.fromkeys(shuffled.run))
    want = shuffled.assign(code=shuffled.run.map(first.index)).sort_values(["code", "step"])
    assert list(frame.columns) == ["run", "step", "loss_c4", "lr"]
    assert frame.run.tolist() == want.run.tolist() and frame.step.tolist() == want.step.tolist()
    np.testing.assert_array_equal(frame.loss_c4, want.loss_c4)
    assert frame.index.tolist() == list(range(len(frame)))
    renamed = read_long(olmo_rows.rename(columns={"run": "name", "step": "_step"}), run="name", step="_step")
    assert list(renamed.columns[:2]) == ["run", "step"] and len(renamed.columns) == len(olmo_rows.columns)


def test_tidy_layout_pivots_to_the_long_frame(olmo_rows):
    wide = olmo_rows[["run", "step", "loss_c4", "lr"]]
    tidy = wide.melt(id_vars=["run", "step"], var_name="metric", value_name="value")
    tidy = tidy.sample(frac=1.0, random_state=1).assign(size="190M")
    frame = read_long(tidy)
    first = list(dict.fromkeys(tidy.run))
    want = wide.assign(code=wide.run.map(first.index)).sort_values(["code", "step"], kind="stable")
    assert sorted(frame.columns[3:]) == ["loss_c4", "lr"] and frame.columns[2] == "size"
    assert frame.run.tolist() == want.run.tolist() and frame.step.tolist() == want.step.tolist()
    for m in ("loss_c4", "lr"):
        np.testing.assert_array_equal(frame[m], want[m])
    only = read_long(tidy, metrics=["lr"])
    assert list(only.columns) == ["run", "step", "size", "lr"]


def long_frame(**over):
    base = {"run": ["a", "a", "b"], "step": [10, 20, 10], "loss": [3.0, 2.8, 3.1]}
    base.update(over)
    return pd.DataFrame(base)


def test_long_bad_input(tmp_path):
    with pytest.raises(DataError, match=r"run 'a' has step 10 twice: row 0 \(0-based row index\) and row 1"):
        read_long(long_frame(step=[10, 10, 10]))
    path = tmp_path / "d.csv"
    write_atomic(path, "run,step,loss\na,10,3.0\nb,10,3.1\na,10,2.8\n")
    with pytest.raises(DataError, match=r"d\.csv: run 'a' has step 10 twice: line 2 and line 4"):
        read_long(path)
    write_atomic(path, "run,step,loss\na,10,3.0\na,x10,3.1\n")
    with pytest.raises(DataError, match=r"column 'step' \(step\): line 3 holds 'x10', which is not a number"):
        read_long(path)
    write_atomic(path, long_frame(step=[10, -5, 10]).to_csv(index=False))
    with pytest.raises(DataError, match=r"must hold whole numbers >= 0 \(optimizer steps\); line 3 has -5"):
        read_long(path)
    with pytest.raises(DataError, match=r"no step column 'iteration'; its columns are \['run', 'step', 'loss'\]"):
        read_long(long_frame(), step="iteration")
    with pytest.raises(DataError, match=r"no run column 'run'"):
        read_long(long_frame().drop(columns="run"))
    with pytest.raises(DataError, match=r"no metric column 'acc'"):
        read_long(long_frame(), metrics=["acc"])
    with pytest.raises(DataError, match=r"column 'run' \(run\) is empty at row 1"):
        read_long(long_frame(run=["a", None, "b"]))
    with pytest.raises(DataError, match=r"needs a CSV path or a pandas DataFrame; got list"):
        read_long([1, 2])


def test_tidy_bad_input():
    tidy = pd.DataFrame({"run": ["a", "a", "a"], "step": [10, 10, 20], "metric": ["loss", "loss", "loss"],
                         "value": [3.0, 2.9, 2.8]})
    with pytest.raises(DataError, match=r"run 'a' logs metric 'loss' at step 10 twice: row 0 .* and row 1"):
        read_long(tidy)
    with pytest.raises(DataError, match=r"column 'value' \(value\): row 1 .* holds 'high', which is not a number"):
        read_long(tidy.assign(value=[3.0, "high", 2.8], step=[10, 15, 20]))
    with pytest.raises(DataError, match=r"column 'seed' differs within run 'a' at step 10: row 0 .* has 1, row 1"):
        read_long(tidy.assign(metric=["loss", "lr", "loss"], seed=[1, 2, 1]))
    with pytest.raises(DataError, match=r"no metric \['acc'\] in column 'metric'"):
        read_long(tidy, metrics=["acc"])
