"""jaxscale._io: atomic writes (str, bytes, callback), netCDF built in memory, and what failures leave behind."""

import errno
import json
import os
import stat
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from helpers import with_file_size_limit
from jaxscale import _io
from jaxscale._io import WriteError, remove_pending, write_atomic, write_netcdf
from jaxscale.errors import ArgumentError

PAYLOADS = {
    "str": ("é{}\n", "é{}\n".encode()),
    "bytes": (b"\x00\x01", b"\x00\x01"),
    "bytearray": (bytearray(b"ab"), b"ab"),
    "memoryview": (memoryview(b"cd"), b"cd"),
    "callback": (lambda fh: [fh.write(b"e" * 10_000) for _ in range(3)], b"e" * 30_000),
}


@pytest.fixture(autouse=True)
def _nothing_pending():
    yield
    assert not _io._PENDING, "a write left a temporary file registered"


@pytest.mark.parametrize("kind", PAYLOADS)
def test_write_atomic_writes_every_kind_of_data_and_leaves_no_temporary(tmp_path, kind):
    data, want = PAYLOADS[kind]
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    write_atomic(path, data)
    assert path.read_bytes() == want
    assert os.listdir(tmp_path) == ["out.bin"]


def test_new_file_gets_the_umask_default_and_a_replaced_file_keeps_its_mode(tmp_path):
    old = os.umask(0o027)
    try:
        write_atomic(tmp_path / "new.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "new.json").st_mode) == 0o640  # 0666 & ~027, not mkstemp's 0600
    kept = tmp_path / "kept.json"
    kept.write_text("old")
    os.chmod(kept, 0o604)
    write_atomic(kept, "new")
    assert kept.read_text() == "new" and stat.S_IMODE(os.stat(kept).st_mode) == 0o604


def test_a_symlink_stays_a_link_to_the_replaced_file(tmp_path):
    real = tmp_path / "real.json"
    real.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    write_atomic(link, "new")
    assert link.is_symlink() and real.read_text() == "new"
    assert sorted(os.listdir(tmp_path)) == ["link.json", "real.json"]


def test_an_os_error_names_the_target_and_the_cause_in_one_line(tmp_path):
    path = tmp_path / "missing" / "fit.json"
    with pytest.raises(WriteError) as info:
        write_atomic(path, "{}")
    e = info.value
    assert isinstance(e, OSError) and e.errno == errno.ENOENT and e.filename == str(path)
    assert str(e) == f"could not write {str(path)!r}: [Errno {errno.ENOENT}] No such file or directory"
    assert isinstance(e.__cause__, FileNotFoundError)
    assert str(WriteError(errno.EFBIG, "File too large", "out.json")) == \
        "could not write 'out.json': [Errno 27] File too large"


@pytest.mark.parametrize("exc", [ValueError("bad value"), KeyboardInterrupt()], ids=["ValueError", "Ctrl-C"])
def test_an_exception_in_the_callback_propagates_and_leaves_the_old_file(tmp_path, exc):
    path = tmp_path / "out.csv"
    path.write_text("old\n")

    def write(fh):
        fh.write(b"partial" * 5000)
        fh.flush()
        assert len(os.listdir(tmp_path)) == 2  # the temporary file exists, beside the target
        raise exc

    with pytest.raises(type(exc)) as info:
        write_atomic(path, write)
    assert info.value is exc  # not wrapped: only OSError becomes WriteError
    assert path.read_text() == "old\n" and os.listdir(tmp_path) == ["out.csv"]


def test_remove_pending_deletes_the_temporary_files_of_writes_in_flight(tmp_path):
    """What the CLI's Ctrl-C handler calls before ``os._exit(130)``, which skips write_atomic's own cleanup."""
    path = tmp_path / "out.json"
    path.write_text("old")
    seen = []

    def interrupted(fh):
        fh.write(b"{")
        seen.extend(remove_pending())
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomic(path, interrupted)
    assert len(seen) == 1 and os.path.dirname(seen[0]) == str(tmp_path)
    assert os.path.basename(seen[0]).startswith(".out.json.") and seen[0].endswith(".tmp")
    assert os.listdir(tmp_path) == ["out.json"] and path.read_text() == "old"
    assert remove_pending() == []


def test_data_of_another_type_is_an_argument_error(tmp_path):
    with pytest.raises(ArgumentError, match="data must be str, bytes or a callable fn\\(fileobj\\).*got int"):
        write_atomic(tmp_path / "x", 3)
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------------------------------------------------
# netCDF


def _idata():
    az = pytest.importorskip("arviz")
    rng = np.random.default_rng(0)
    idata = az.from_dict(
        posterior={"E": 1.7 + 0.01 * rng.standard_normal((2, 50)), "w": rng.standard_normal((2, 50, 3))},
        sample_stats={"diverging": np.zeros((2, 50), bool), "n_steps": np.full((2, 50), 7)},
        prior={"E": rng.standard_normal((1, 40))},
        observed_data={"loss": np.linspace(2.0, 3.0, 5)},
        attrs={"law": "chinchilla", "jaxscale_version": "0.1.0", "n_runs": 5},
    )
    idata.posterior.attrs["sampling_seconds"] = 1.25
    idata.posterior.attrs["options"] = json.dumps({"likelihood": "normal"})
    return idata


def _assert_same_idata(got, want):
    assert got.groups() == want.groups()
    assert got.attrs == want.attrs
    for g in want.groups():
        assert getattr(got, g).identical(getattr(want, g)), g


def test_write_netcdf_round_trips_every_group_value_and_attribute(tmp_path):
    az = pytest.importorskip("arviz")
    idata = _idata()
    path = tmp_path / "post.nc"
    assert write_netcdf(idata, path) == str(path)
    idata.to_netcdf(str(tmp_path / "arviz.nc"))
    with az.rc_context({"data.load": "eager"}):
        back, theirs = az.from_netcdf(str(path)), az.from_netcdf(str(tmp_path / "arviz.nc"))
    _assert_same_idata(back, idata)
    _assert_same_idata(back, theirs)  # what ArviZ's own writer would have stored
    assert back.sample_stats["diverging"].dtype == bool and back.sample_stats["n_steps"].dtype.kind == "i"
    assert sorted(os.listdir(tmp_path)) == ["arviz.nc", "post.nc"]


def test_write_netcdf_of_an_empty_inference_data_and_of_a_dataset(tmp_path):
    az = pytest.importorskip("arviz")
    xr = pytest.importorskip("xarray")
    write_netcdf(az.InferenceData(), tmp_path / "empty.nc")
    with az.rc_context({"data.load": "eager"}):
        assert az.from_netcdf(str(tmp_path / "empty.nc")).groups() == []
    ds = xr.Dataset({"x": ("d", np.arange(3.0))}, attrs={"a": "b"})
    write_netcdf(ds, tmp_path / "ds.nc")
    with xr.open_dataset(tmp_path / "ds.nc", engine="h5netcdf") as back:
        assert back.load().identical(ds)
    with pytest.raises(ArgumentError, match="write_netcdf writes an arviz.InferenceData .*got dict"):
        write_netcdf({"E": [1.0]}, tmp_path / "bad.nc")


# ---------------------------------------------------------------------------------------------------------------------
# A real failed write: a file-size limit makes write() fail with EFBIG, as a full disk fails with ENOSPC

_LIMIT = 64 * 1024
_WRITER = textwrap.dedent("""
    import importlib.util, json, os, sys
    import numpy as np
    import arviz as az

    # _io.py alone, not the jaxscale package: importing JAX would add ~3 s and nothing to this test
    d, io_py, big = sys.argv[1], sys.argv[2], 256 * 1024
    spec = importlib.util.spec_from_file_location("jaxscale._io", io_py)
    _io = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(_io)
    write_atomic, write_netcdf = _io.write_atomic, _io.write_netcdf
    idata = az.from_dict(posterior={"E": np.random.default_rng(1).standard_normal((2, 40000))})

    def stream(fh):
        for _ in range(256):
            fh.write(b"y" * 1024)

    writes = {"str": lambda: write_atomic(os.path.join(d, "str.txt"), "x" * big),
              "bytes": lambda: write_atomic(os.path.join(d, "bytes.bin"), b"x" * big),
              "callback": lambda: write_atomic(os.path.join(d, "callback.bin"), stream),
              "netcdf": lambda: write_netcdf(idata, os.path.join(d, "post.nc"))}
    out = {}
    for name, write in writes.items():
        try:
            write()
            out[name] = None
        except OSError as e:
            out[name] = [type(e).__name__, e.errno, str(e)]
    print(json.dumps(out), flush=True)
    writes["netcdf"]()  # uncaught: the process must end with a Python traceback, not a crash
""")
_FILES = {"str": "str.txt", "bytes": "bytes.bin", "callback": "callback.bin", "netcdf": "post.nc"}


@pytest.fixture(scope="module")
def failed_writes(tmp_path_factory):
    """One subprocess (importing ArviZ costs ~3 s) tries every kind of write over an existing valid file, past the limit."""
    pytest.importorskip("arviz")
    d = tmp_path_factory.mktemp("fsize")
    for name in ("str", "bytes", "callback"):
        (d / _FILES[name]).write_bytes(f"old {name}\n".encode())
    old = _idata()
    write_netcdf(old, d / "post.nc")
    before = {name: (d / f).read_bytes() for name, f in _FILES.items()}
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "JAX_PLATFORMS": "cpu"}
    argv = with_file_size_limit([sys.executable, "-c", _WRITER, str(d), _io.__file__], _LIMIT)
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    return d, before, proc, old


@pytest.mark.parametrize("kind", list(_FILES))
def test_a_write_past_a_file_size_limit_is_an_error_that_leaves_the_old_file(failed_writes, kind):
    d, before, proc, _ = failed_writes
    assert proc.stdout, proc.stderr
    result = json.loads(proc.stdout.splitlines()[0])[kind]
    path = os.path.join(d, _FILES[kind])
    assert result == ["WriteError", errno.EFBIG, f"could not write {path!r}: [Errno {errno.EFBIG}] File too large"]
    assert (d / _FILES[kind]).read_bytes() == before[kind]
    assert sorted(os.listdir(d)) == sorted(_FILES.values())  # no temporary file left


def test_the_failed_netcdf_write_ends_the_process_cleanly(failed_writes):
    d, _, proc, old = failed_writes
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])  # negative: killed by a signal
    last = proc.stderr.strip().splitlines()[-1]
    assert last == f"jaxscale._io.WriteError: could not write {str(d / 'post.nc')!r}: [Errno 27] File too large"
    assert "Exception ignored" not in proc.stderr and "Segmentation fault" not in proc.stderr
    az = pytest.importorskip("arviz")
    with az.rc_context({"data.load": "eager"}):
        _assert_same_idata(az.from_netcdf(str(d / "post.nc")), old)


def test_to_json_with_a_path_writes_and_returns_none(tmp_path):
    """In a REPL ``res.to_json("fit.json")`` prints nothing: a path means write, no path means return the text."""
    import json

    import jaxscale
    from jaxscale import allocate

    data = jaxscale.demo_data()
    fit = jaxscale.fit("chinchilla", data, starts=16, key=0)
    boot = jaxscale.bootstrap("chinchilla", data, 8, key=0, starts="warm", point=fit)
    alloc = allocate.compute_optimal("chinchilla", boot, [1e22])
    for name, res in {"fit": fit, "boot": boot, "alloc": alloc}.items():
        path = tmp_path / f"{name}.json"
        assert res.to_json(path) is None
        assert json.loads(path.read_text()) == json.loads(res.to_json())


def test_arviz_refactor_announcement_is_filtered_for_users():
    import subprocess
    import sys

    code = ("import warnings, jaxscale\n"
            "warnings.warn('\\nArviZ is undergoing a major refactor to improve flexibility', FutureWarning)\n"
            "warnings.warn('another FutureWarning stays visible', FutureWarning)\n")
    out = subprocess.run([sys.executable, "-W", "default", "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "major refactor" not in out.stderr and "another FutureWarning stays visible" in out.stderr
