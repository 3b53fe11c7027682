"""``fastconv.precompile`` and ``fastconv compile``: every kernel compiled ahead of the first call.

The cache test compiles the float32 kernels cold in worker processes (about a minute of
CPU on two cores), in a fresh cache directory, then checks in a new process that loading
them compiled nothing and that every kernel this host runs was among them.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastconv
from fastconv.__main__ import main

# In a new process: precompile (loads everything from the cache just filled), then list
# every kernel (parallel function) of this host, and every serial twin, not compiled for
# float32, and every compiled function that missed the cache (it was compiled here).
_CHECK = """
    import importlib, pkgutil
    import numpy as np
    import fastconv
    from fastconv import _dense, _jit
    from numba.core.registry import CPUDispatcher
    took = fastconv.precompile(["float32"], jobs=1)
    assert sorted(took) == sorted([*fastconv._precompile.FAMILIES, "total"]), took
    other_tile = "_p6" if _dense.TILE_P == 8 else "_p8"  # drivers of the other tile size
    missing, compiled_here = [], []
    for info in pkgutil.iter_modules(fastconv.__path__):
        module = importlib.import_module("fastconv." + info.name)
        for name, value in vars(module).items():
            if not isinstance(value, CPUDispatcher) or info.name == "bench":
                continue
            if value.stats.cache_misses:
                compiled_here.append(f"{info.name}.{name}")
            kernel = value.targetoptions.get("parallel") or name.endswith("_serial")
            if (kernel and not name.endswith(other_tile)
                    and (id(value), np.dtype(np.float32)) not in _jit._COMPILED):
                missing.append(f"{info.name}.{name}")
    print("missing", sorted(missing))
    print("compiled here", sorted(compiled_here))
"""


def _run(code: str, env: dict, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **env})


def test_workers_fill_the_cache_with_every_kernel(tmp_path):
    """Worker processes write every float32 kernel to a fresh cache: a new process then
    loads them all (nothing compiled) and no kernel or serial twin of this host is left
    without its float32 version."""
    env = {"NUMBA_CACHE_DIR": str(tmp_path)}
    filled = _run("""
        import fastconv
        took = fastconv.precompile(["float32"], jobs=2)
        print(sorted(took))
    """, env, timeout=900)
    assert filled.returncode == 0, filled.stderr
    assert any(tmp_path.rglob("*.nbi")), "no cache index written"
    check = _run(_CHECK, env, timeout=300)
    assert check.returncode == 0, check.stderr
    assert "missing []" in check.stdout, check.stdout
    assert "compiled here []" in check.stdout, check.stdout


@pytest.mark.parametrize("dtypes, jobs, message", [
    (["float16"], 1, "dtypes: 'float16' is not one of"),
    (["complex"], 1, "dtypes: 'complex'"),
    ([object()], 1, "dtypes: <object object"),
    (["float32", "int32"], 1, "dtypes: 'int32'"),
    (["float32"], 0, "jobs must be a positive int, got 0"),
    (["float32"], True, "jobs must be a positive int, got True"),
    (["float32"], "2", "jobs must be a positive int, got '2'"),
])
def test_precompile_rejects_bad_arguments(dtypes, jobs, message):
    with pytest.raises(ValueError, match=message):
        fastconv.precompile(dtypes, jobs)


def test_precompile_takes_dtype_likes(monkeypatch):
    """A dtype name, a NumPy type or dtype, alone or in a sequence: the same families run."""
    seen = []
    monkeypatch.setattr(fastconv._precompile, "run_families",
                        lambda names, dtypes: seen.append(dtypes) or {})
    for dtypes in ("float32", np.float32, [np.dtype("float32"), "float64"]):
        fastconv.precompile(dtypes, jobs=1)
    assert seen == [["float32"], ["float32"], ["float32", "float64"]]


def test_compile_command_rejects_an_unknown_dtype(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["compile", "--dtype", "float16", "--jobs", "1"])
    assert exit_info.value.code == 2
    assert "float16" in capsys.readouterr().err


def test_compile_command_reports_every_family(capsys):
    """In this process (kernels already compiled or cached by the other tests)."""
    assert main(["compile", "--dtype", "float32", "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in fastconv._precompile.FAMILIES)
    assert "done in" in out


def test_a_failed_worker_stops_the_others_and_raises(monkeypatch):
    """A family the workers do not know fails in its worker (KeyError): RuntimeError with the
    worker's error output, the other workers stopped."""
    families = {"no_such_family": None, "pointwise": None, "gather": None}
    monkeypatch.setattr(fastconv._precompile, "FAMILIES", families)
    with pytest.raises(RuntimeError, match="(?s)'no_such_family' kernels failed.*KeyError"):
        fastconv._precompile._run_workers(["float32"], 2)
