import os
import pathlib

import pytest

import jaxscale  # noqa: F401  (enables float64 before any test builds arrays)

# The CLI keeps compiled solvers in a persistent cache; tests call it in-process and must not
# write to the user's home or read programs compiled by another version (test_cli tests the cache).
os.environ.setdefault("JAXSCALE_CACHE_DIR", "off")

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = pathlib.Path(os.environ.get("JAXSCALE_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
    """../shared/data beside the checkout (reference data, never copied into the repo)."""
    if not SHARED_DATA.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the reproductions, but reference data is missing at {SHARED_DATA}")
        pytest.skip(f"reference data not found at {SHARED_DATA} (set JAXSCALE_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def epoch_data(shared_data):
    """Epoch's 245 digitised Chinchilla points minus the 5 highest losses (240)."""
    d = jaxscale.ScalingData.from_csv(
        shared_data / "epoch_chinchilla" / "svg_extracted_data.csv", N="Model Size", C="Training FLOP", loss="loss"
    )
    return d.drop_top(5)
