"""README.md runs as written: its Python blocks in order in one namespace, its Epoch replication in a shell.

Both run in an empty directory, so nothing may depend on the checkout (data come from ``jaxscale.datasets``).
By default the resample and draw counts listed in ``SHRINK`` are cut so that the test stays short; every
replacement must match the README exactly once, so a README edit cannot silently escape the test.
``JAXSCALE_README_FULL=1`` runs every block exactly as written and prints each block's time (the numbers
quoted in the issue notes come from that run).
"""

import os
import pathlib
import re
import shlex
import subprocess
import sys
import time
import warnings

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
FULL = os.environ.get("JAXSCALE_README_FULL", "") not in ("", "0")

#: (text in a README Python block, what the short run executes instead). Counts only: the calls stay the same.
SHRINK = [
    ('bootstrap("chinchilla", data, 4000, key=42)', 'bootstrap("chinchilla", data, 200, key=42)'),
    ('bootstrap("chinchilla", data, 4000, key=42, starts="warm")',
     'bootstrap("chinchilla", data, 200, key=42, starts="warm")'),
    ('bootstrap("chinchilla", data, 1000, key=0)', 'bootstrap("chinchilla", data, 100, key=0)'),
    ("n_resamples=1000, key=0)", "n_resamples=100, key=0)"),
    ('bayes.sbc("chinchilla", design, 200, key=0)', 'bayes.sbc("chinchilla", design, 8, key=0, num_warmup=200, num_samples=200)'),
    ('bayes.sample("chinchilla", data, key=0)', 'bayes.sample("chinchilla", data, key=0, num_warmup=300, num_samples=300)'),
    ('bayes.sample("chinchilla", data, key=0, prior_draws=500)',
     'bayes.sample("chinchilla", data, key=0, prior_draws=100, num_warmup=300, num_samples=300)'),
    ('bayes.sample("kaplan", data, key=0)', 'bayes.sample("kaplan", data, key=0, num_warmup=300, num_samples=300)'),
]


def python_blocks(text: str) -> list[tuple[int, str]]:
    """Every fenced ```python block: (line of its fence, its code)."""
    out = []
    for m in re.finditer(r"^```python\n(.*?)^```", text, flags=re.S | re.M):
        out.append((text[: m.start()].count("\n") + 1, m.group(1)))
    return out


def shrunk(blocks: list[tuple[int, str]]) -> list[tuple[int, str]]:
    joined = "\n".join(code for _, code in blocks)
    for old, _ in SHRINK:
        assert joined.count(old) == 1, f"SHRINK entry {old!r} matches the README's Python {joined.count(old)} times"
    out = []
    for line, code in blocks:
        for old, new in SHRINK:
            code = code.replace(old, new)
        out.append((line, code))
    return out


def test_python_blocks_are_found():
    blocks = python_blocks(README.read_text())
    assert len(blocks) >= 8 and all(code.strip() for _, code in blocks)
    shrunk(blocks)  # every SHRINK entry matches exactly once


@pytest.mark.slow  # ~3 min shrunk: every Python block of the README, in order
def test_readme_python_blocks_run_in_order(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    blocks = python_blocks(README.read_text())
    blocks = blocks if FULL else shrunk(blocks)
    namespace = {"__name__": "__readme__"}
    times = []
    for line, code in blocks:
        t0 = time.perf_counter()
        # a user sees warnings, they do not stop the code (the shrunk NUTS runs may warn about R-hat)
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            try:
                exec(compile(code, f"README.md:{line}", "exec"), namespace)
            except Exception as e:
                raise AssertionError(f"README.md block at line {line} failed: {type(e).__name__}: {e}") from e
        for w in seen:
            print(f"README.md:{line}: {w.category.__name__}: {w.message}", file=sys.stderr)
        times.append((line, time.perf_counter() - t0))
    print("README blocks (line, seconds):", ", ".join(f"{ln}: {s:.1f}" for ln, s in times), file=sys.stderr)
    # what the blocks promise to leave behind
    for name in ("fit.json", "forecast.json"):
        assert (tmp_path / name).exists(), f"the README's Python writes {name}"


def replication_commands(text: str) -> list[str]:
    section = text[text.index("## Reproduce Epoch AI's Chinchilla replication"):]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.S).group(1)
    return [ln for ln in block.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


@pytest.mark.slow  # ~1 min: the 3 commands in a fresh directory
def test_epoch_replication_commands_run_from_any_directory(tmp_path):
    import json

    commands = replication_commands(README.read_text())
    assert len(commands) == 3 and all(c.startswith("jaxscale ") for c in commands)
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAXSCALE_SHARED")}
    env["PATH"] = f"{pathlib.Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    outputs = []
    for command in commands:
        if not FULL:
            command = command.replace("-n 4000", "-n 200")
        done = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=900)
        assert done.returncode == 0, f"{command}\n{done.stderr}"
        outputs.append(done.stdout)
    fit = json.loads((tmp_path / "fit.json").read_text())
    # Epoch's headline (Huber likelihood) estimates; 1e-4 relative covers their printed 7-8 digits
    from jaxscale import published

    for name, value in published.EPOCH.items():
        assert fit["params"][name] == pytest.approx(value, rel=1e-4), name
    boot = json.loads((tmp_path / "boot.json").read_text())
    assert boot["n_failed"] == 0 and boot["settings"]["starts"] == "auto"
    assert shlex.split(commands[2])[:2] == ["jaxscale", "allocate"] and "tokens_per_param" in outputs[2]
