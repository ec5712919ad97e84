"""The notebooks in notebooks/: stored stripped with a parameter cell (fast), and each runs top to bottom (slow).

The slow tests execute a temporary copy of each notebook with nbclient in a fresh ``python3`` kernel, working
directory a fresh temporary one (the notebooks read the data sets bundled with jaxscale, so they run from any
directory), at the settings that ``JAXSCALE_NOTEBOOK_SCALE`` selects ("small" unless set). A cell that raises,
including a failed ``assert`` on a published number, fails the test; the executed copy is left in pytest's
temporary directory for inspection.
"""

import json
import pathlib
import shutil
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
EXPECTED = ["01_quickstart", "02_bayesian", "03_uncertainty_at_scale", "04_allocation", "05_forecast_and_downstream",
            "06_downstream_and_inference", "07_training_curves"]
CELL_TIMEOUT = 600  # seconds per cell: generous, the slowest cell takes ~30 s on a 2-core CPU


def _load(path: pathlib.Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def test_the_notebooks_are_there():
    assert set(EXPECTED) <= {p.stem for p in NOTEBOOKS}, f"missing notebooks in {NOTEBOOK_DIR}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stripped_and_has_a_parameter_cell(path):
    nb = _load(path)
    assert nb["nbformat"] == 4
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    assert nb["cells"][0]["cell_type"] == "markdown" and _source(nb["cells"][0]).startswith("# ")
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    for i, cell in enumerate(code):
        # Outputs are not stored in git: execute a copy, never the file (see test_notebook_runs).
        assert cell.get("outputs") == [], f"{path.name}: code cell {i} has stored outputs; strip them"
        assert cell.get("execution_count") is None, f"{path.name}: code cell {i} has an execution count"
        assert "execution" not in cell.get("metadata", {}), f"{path.name}: code cell {i} has execution timings"
    tagged = [i for i, c in enumerate(code) if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert tagged == [0], f"{path.name}: the first code cell, and only it, must be tagged 'parameters'"
    assert "JAXSCALE_NOTEBOOK_SCALE" in _source(code[0])
    # The host-device split must come before any JAX computation: in the setup cell right after the parameters.
    assert "jaxscale.set_host_device_count()" in _source(code[1])
    # The data come with jaxscale (jaxscale.datasets): no path beside the checkout, so any directory will do.
    for i, cell in enumerate(code):
        assert "shared/data" not in _source(cell) and "JAXSCALE_SHARED_DATA" not in _source(cell), (path.name, i)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")  # silences jupyter_core's path-migration DeprecationWarning
    copy = tmp_path / path.name
    shutil.copyfile(path, copy)
    nb = nbformat.read(copy, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})  # any directory will do
    t0 = time.perf_counter()
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as e:
        pytest.fail(f"{path.name} failed (executed copy: {copy}):\n{e}", pytrace=False)
    finally:
        nbformat.write(nb, copy)
    print(f"\n{path.name}: {time.perf_counter() - t0:.0f} s")
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
