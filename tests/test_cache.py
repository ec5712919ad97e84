"""The persistent compilation cache (jaxscale/_cache.py): repair of damaged entries, and read-only homes.

The scan is tested in-process on synthetic entries (milliseconds); what JAX then does with the directory is
tested in real processes, each a tiny jitted program (about 1.5 s apiece, most of it importing JAX).
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import pytest

from helpers import unprivileged
from jaxscale import _cache
from jaxscale.errors import ArgumentError

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Two programs with one module name (jit__lambda) and different outputs: the bytes of one copied over the
# other's entry made JAX fail with an AssertionError, or crash.
SCRIPT = textwrap.dedent("""
    import sys
    from jaxscale import _cache
    _cache.enable()
    import jax, jax.numpy as jnp
    hits = []
    jax.monitoring.register_event_listener(
        lambda event, **kw: hits.append(1) if event == "/jax/compilation_cache/cache_hits" else None)
    for n in map(int, sys.argv[1:]):
        f = jax.jit(lambda x: (jnp.cumsum(x) * 2, x.sum()) if n == 3 else (x * 2,))
        print(" ".join(f"{float(v):g}" for a in f(jnp.ones(n, jnp.float32)) for v in a.ravel()))
    print(f"hits={len(hits)}")
""")
EXPECTED = {3: "2 4 6 3", 5: "2 2 2 2 2"}


def run(*ns, cache=None, home=None, prefix=()):
    env = dict(os.environ, JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0", JAX_PLATFORMS="cpu",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    env.pop("JAXSCALE_CACHE_DIR", None)
    if cache is not None:
        env["JAXSCALE_CACHE_DIR"] = str(cache)
    if home is not None:
        env["HOME"] = str(home)
    p = subprocess.run([*prefix, sys.executable, "-c", SCRIPT, *map(str, ns)], capture_output=True, text=True,
                       timeout=300, env=env)
    assert p.returncode == 0, p.stderr
    *results, hits = p.stdout.split("\n")[:-1]
    assert results == [EXPECTED[n] for n in ns], p.stdout
    return int(hits.removeprefix("hits=")), [line for line in p.stderr.splitlines() if line.strip()]


def lambdas(cache):
    return sorted(p.name for p in cache.glob("jit__lambda-*-cache"))


@pytest.fixture(scope="module")
def populated(tmp_path_factory):
    """A cache written by one run of both programs, its two entries, and a pristine copy of it."""
    base = tmp_path_factory.mktemp("populated")
    cache = base / "xla"
    assert run(3, 5, cache=cache) == (0, [])
    entries = lambdas(cache)
    assert len(entries) == 2
    manifest = json.loads((cache / _cache.MANIFEST).read_text())["entries"]
    assert set(manifest) == {p.name for p in cache.glob("*-cache")}, "exit did not record the new entries"
    shutil.copytree(cache, base / "pristine")
    return cache, *entries


def restore(populated):
    """The populated cache, as its run left it (same path: JAX's keys depend on the cache directory)."""
    cache = populated[0]
    shutil.rmtree(cache)
    shutil.copytree(cache.parent / "pristine", cache)  # new inodes and times, same bytes: re-hashed, kept
    return cache


def test_a_truncated_entry_is_removed_once_and_rewritten(populated, tmp_path):
    cache = restore(populated)
    entry = populated[1]
    size = (cache / entry).stat().st_size
    os.truncate(cache / entry, size // 2)
    hits, lines = run(3, 5, cache=cache)
    assert len(lines) == 1 and "removed 1 damaged entry" in lines[0] and "(truncated)" in lines[0], lines
    assert _cache._short(entry) in lines[0]
    assert (cache / entry).stat().st_size > size // 2, "the entry was not rewritten"
    assert run(3, 5, cache=cache) == (hits + 1, [])  # silent, and the rewritten entry is read back


def test_another_programs_bytes_are_removed_before_jax_loads_them(populated, tmp_path):
    cache = restore(populated)
    shutil.copyfile(cache / populated[2], cache / populated[1])
    hits, lines = run(3, 5, cache=cache)  # used to be an AssertionError from JAX, or a segfault
    assert len(lines) == 1 and "not the program written for its key" in lines[0], lines
    assert _cache._short(populated[1]) in lines[0] and hits > 0


def test_a_read_only_cache_dir_disables_the_cache_in_one_line(tmp_path):
    prefix = unprivileged(tmp_path)
    cache = tmp_path / "ro"
    cache.mkdir()
    cache.chmod(0o500)
    hits, lines = run(3, cache=cache, prefix=prefix)
    assert len(lines) == 1 and "compilation cache disabled: " in lines[0] and "not writable" in lines[0], lines
    assert not any(cache.iterdir())


@pytest.mark.parametrize("kind", ["nonexistent", pytest.param("read-only", marks=pytest.mark.slow)])
def test_an_unusable_home_disables_the_cache_in_one_line(tmp_path, kind):
    home, prefix = tmp_path / "home", []
    if kind == "read-only":  # slow: ~1.5 s, and the read-only directory case above covers the same check
        prefix = unprivileged(tmp_path)
        home.mkdir()
        home.chmod(0o500)
    hits, lines = run(3, home=home, prefix=prefix)
    assert len(lines) == 1 and lines[0].startswith("jaxscale: compilation cache disabled: "), lines
    assert hits == 0 and not os.path.exists(home / ".cache")


@pytest.mark.slow  # ~20 s: three CLI fits; the processes above cover the same repair
def test_cli_fit_repairs_a_truncated_entry(tmp_path):
    import pandas as pd

    import jaxscale

    d = jaxscale.demo_data()
    frame = pd.DataFrame({"N": d.covariates["N"], "D": d.covariates["D"], "loss": d.y})
    frame.to_csv(tmp_path / "d.csv", index=False)
    env = dict(os.environ, JAXSCALE_CACHE_DIR=str(tmp_path / "xla"))
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    cmd = [sys.executable, "-m", "jaxscale.cli", "fit", str(tmp_path / "d.csv"), "--starts", "16"]
    runs = []
    for damage in (False, True, False):
        if damage:
            for entry in (tmp_path / "xla").glob("*-cache"):
                os.truncate(entry, entry.stat().st_size // 2)
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
        assert p.returncode == 0, p.stderr
        runs.append(p)
    assert "damaged" in runs[1].stderr and len(runs[1].stderr.splitlines()) == 1, runs[1].stderr
    assert runs[2].stderr == ""


# In-process tests of the scan, on synthetic entries (no JAX configuration is changed).


def entry_bytes(payload: bytes) -> bytes:
    """A cache entry as JAX writes it: 4 bytes of compile time, the executable, compressed as JAX would."""
    raw = b"\0\0\0\1" + payload
    try:
        from jax._src.compilation_cache import compress_executable  # private: guarded
    except ImportError:
        compress_executable = None
    if compress_executable is not None:
        return compress_executable(raw)
    import zlib

    return zlib.compress(raw)  # matches _cache's fallback when no zstd module is importable


@pytest.fixture
def cache(tmp_path):
    d = tmp_path / "xla"
    d.mkdir()
    for i in range(3):
        (d / f"jit_f-{i:064x}-cache").write_bytes(entry_bytes(b"executable %d" % i * 100))
    return d


def repair(d):
    lines = []
    assert _cache._repair(str(d), lines.append) is None
    return lines


def test_a_healthy_cache_is_checked_by_stat_alone(cache, monkeypatch):
    assert repair(cache) == []
    manifest = json.loads((cache / _cache.MANIFEST).read_text())
    assert manifest["format"] == 1 and len(manifest["entries"]) == 3
    def no_entry_reads(path, *args, **kwargs):
        assert not str(path).endswith("-cache"), f"read {path}"
        return open(path, *args, **kwargs)

    monkeypatch.setattr(_cache, "open", no_entry_reads, raising=False)
    assert repair(cache) == []


def test_damaged_entries_are_removed_with_one_line(cache):
    repair(cache)  # records all three
    a, b, c = sorted(cache.glob("*-cache"))
    shutil.copyfile(b, a)  # another entry's bytes
    os.truncate(b, 10)
    (cache / c.name.replace("-cache", "-atime")).write_bytes(b"\0" * 8)
    untracked = cache / f"jit_g-{0:064x}-cache"
    untracked.write_bytes(entry_bytes(b"x" * 1000)[:-5])
    (lines,) = repair(cache)
    assert "removed 3 damaged entries" in lines and "they will be recompiled" in lines
    assert "(not the program written for its key)" in lines and "(truncated)" in lines
    assert "(truncated or unreadable)" in lines
    assert sorted(p.name for p in cache.iterdir()) == sorted([c.name, c.name.replace("-cache", "-atime"),
                                                              _cache.MANIFEST])
    assert repair(cache) == []


def test_an_unreadable_manifest_means_a_full_check(cache):
    (cache / _cache.MANIFEST).write_text("{not json")
    assert repair(cache) == []
    assert len(json.loads((cache / _cache.MANIFEST).read_text())["entries"]) == 3


def test_exit_records_new_entries_and_removes_nothing(cache):
    repair(cache)
    (cache / f"jit_new-{1:064x}-cache").write_bytes(entry_bytes(b"new"))
    half = cache / f"jit_half-{2:064x}-cache"
    half.write_bytes(entry_bytes(b"y" * 1000)[:-5])  # e.g. still being written by another process
    _cache._sync(str(cache))
    entries = json.loads((cache / _cache.MANIFEST).read_text())["entries"]
    assert f"jit_new-{1:064x}-cache" in entries and half.name not in entries and half.exists()


@pytest.mark.parametrize("value", ["off", "OFF", "0", "none", ""])
def test_off_values_turn_the_cache_off_silently(value, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(_cache.ENV_VAR, value)
    assert _cache.enable(warn_fn=pytest.fail) is None
    assert _cache.enable(value, warn_fn=pytest.fail) is None
    assert list(tmp_path.iterdir()) == []


def test_a_users_jax_cache_dir_is_left_alone(monkeypatch, tmp_path):
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "jax"))
    assert _cache.enable(tmp_path / "xla", warn_fn=pytest.fail) is None
    assert list(tmp_path.iterdir()) == []


def test_unusable_directories_give_one_reason(monkeypatch, tmp_path):
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    monkeypatch.delenv(_cache.ENV_VAR, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "missing"))
    lines = []
    assert _cache.enable(warn_fn=lines.append) is None
    (tmp_path / "file").write_text("")
    assert _cache.enable(tmp_path / "file" / "xla", warn_fn=lines.append) is None
    assert _cache.enable(tmp_path / "file", warn_fn=lines.append) is None
    assert [line.split(";")[0] for line in lines] == [
        f"compilation cache disabled: home directory {str(tmp_path / 'missing')!r} does not exist",
        f"compilation cache disabled: cannot create {str(tmp_path / 'file' / 'xla')!r} (Not a directory)",
        f"compilation cache disabled: {str(tmp_path / 'file')!r} is not a directory",
    ]
    assert not (tmp_path / "missing").exists()


def test_bad_arguments_are_argument_errors():
    with pytest.raises(ArgumentError, match="path must be a directory path"):
        _cache.enable(3)
    with pytest.raises(ArgumentError, match="min_compile_time_secs must be >= 0"):
        _cache.enable("off", min_compile_time_secs=-1)
