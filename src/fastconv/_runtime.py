"""Process-wide Numba configuration chosen once, when fastconv is imported.

Threading layer
---------------
Numba picks its threading layer at the first parallel call, for the whole process. What
was seen on this project's machines:

``omp`` (GNU OpenMP, Numba's default pick when TBB is absent)
    Cheapest per call (~1.4 us) and fine with concurrent Python threads, but a child
    process forked after a parallel call is terminated ("fork() called from a process
    already using GNU OpenMP, this is unsafe") -- multiprocessing's default on Linux.
``workqueue``
    Aborts the process when two Python threads run parallel code at once; ~70-84 us a call.
``tbb`` (Intel oneTBB, the PyPI package ``tbb``)
    Safe with concurrent threads and with fork; ~3.7 us a call. Numba only finds the PyPI
    package's library when the environment's ``lib/`` is on the loader path.

fastconv therefore depends on ``tbb`` (on platforms that have wheels), loads its library
by full path so Numba finds it, and selects ``tbb`` -- unless the user already chose a
layer (``NUMBA_THREADING_LAYER`` in the environment, or ``numba.config.THREADING_LAYER``
set before importing fastconv), which is always respected. Without TBB, Numba's default
applies and the README explains the fork limitation.

Scheduling
----------
Numba's default splits the iterations of a parallel loop into one equal share per thread
before the loop starts. On a shared machine the cores do not run at the same speed (measured
here: one of two threads 9-15% slower over a whole 7x7 stem call, the faster one then idle),
so fastconv runs its parallel calls with dynamic scheduling, one task per chunk
(:func:`dynamic_schedule`): a thread takes the next task when it is done with one. The
tasks are coarse (the plans make at least eight per thread; the depthwise kernel four
chunks of tasks, each allocating its tile), so scheduling costs little (3-8% of a depthwise
layer against Numba's default on an idle machine), and every result is computed by one task
in a fixed order either way.

Compile cache
-------------
Kernels are compiled with ``cache=True``. Numba stores the cache next to the module, or
in the user-wide cache directory, or in ``NUMBA_CACHE_DIR``. When none of those is
writable (a read-only install with no writable home), Numba would raise at import; fastconv
instead points Numba at a per-user directory under the system temporary directory, and
if even that fails, compiles without caching. Either way it warns once.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import numba

TBB_LIBRARY = "libtbb.so.12"


class FastconvWarning(UserWarning):
    """Warnings about fastconv's runtime configuration (cache, threading)."""


def _tbb_candidates() -> list[Path]:
    """Places the PyPI ``tbb`` package puts its shared library."""
    prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix}
    return [Path(prefix) / "lib" / TBB_LIBRARY for prefix in prefixes]


def load_tbb() -> bool:
    """Load oneTBB's library globally so Numba's ``tbb`` layer can link to it."""
    for candidate in _tbb_candidates():
        if candidate.exists():
            try:
                ctypes.CDLL(str(candidate), mode=ctypes.RTLD_GLOBAL)
            except OSError:
                continue
            return True
    try:
        ctypes.CDLL(TBB_LIBRARY, mode=ctypes.RTLD_GLOBAL)
    except OSError:
        return False
    return True


def choose_threading_layer() -> str:
    """Select the ``tbb`` threading layer unless the user chose one; return the choice."""
    configured = str(numba.config.THREADING_LAYER)
    if "NUMBA_THREADING_LAYER" in os.environ or configured != "default":
        return configured
    if sys.platform.startswith("linux") and load_tbb():
        numba.config.THREADING_LAYER = "tbb"
        return "tbb"
    return configured


def _numba_can_cache(module_file: str) -> bool:
    """Whether Numba finds a writable cache location for functions of ``module_file``."""
    from numba.core.caching import FunctionCache  # the locator search cache=True runs

    def probe() -> None:  # pragma: no cover - never called, only located
        """Stand-in function whose cache location is probed."""

    probe.__code__ = probe.__code__.replace(co_filename=module_file)
    try:
        FunctionCache(probe)
    except (RuntimeError, OSError):
        return False
    return True


def _writable_directory(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError:
        return False
    return True


def choose_cache(module_file: str) -> bool:
    """Make sure ``cache=True`` cannot fail; return whether kernels are cached."""
    if _numba_can_cache(module_file):
        return True
    user = os.environ.get("USER") or str(os.getuid() if hasattr(os, "getuid") else "user")
    fallback = Path(tempfile.gettempdir()) / f"fastconv-numba-cache-{user}"
    if _writable_directory(fallback):
        numba.config.CACHE_DIR = str(fallback)
        warnings.warn(
            f"fastconv: no writable Numba cache location for {module_file}; caching compiled "
            f"kernels in {fallback}. Set NUMBA_CACHE_DIR to choose another directory.",
            FastconvWarning,
            stacklevel=3,
        )
        return True
    warnings.warn(
        "fastconv: no writable directory for Numba's cache; kernels are compiled in every "
        "new process. Set NUMBA_CACHE_DIR to a writable directory to cache them.",
        FastconvWarning,
        stacklevel=3,
    )
    return False


THREADING_LAYER = choose_threading_layer()
CACHE = choose_cache(str(Path(__file__).with_name("_kernels.py")))


@contextlib.contextmanager
def dynamic_schedule() -> Iterator[None]:
    """Run the parallel loops of the block with dynamic scheduling, one task per chunk.

    Numba's chunk size is per thread; the caller's (its default: 0, equal shares decided
    up front) is restored after the block. Setting it costs a few microseconds, so calls
    too small to run in parallel skip this.
    """
    previous = numba.set_parallel_chunksize(1)
    try:
        yield
    finally:
        numba.set_parallel_chunksize(previous)
