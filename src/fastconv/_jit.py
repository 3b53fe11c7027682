"""The one place where Numba compilation options are chosen.

Every compiled function in fastconv is declared with :func:`kernel` (parallel loops) or
:func:`helper` (serial code inlined into kernels), so the options below hold everywhere:

``cache=True``
    Compiled machine code is written next to the module (or to ``NUMBA_CACHE_DIR``) so a
    second process pays no compile time; :mod:`fastconv._runtime` makes sure a read-only
    install degrades to another directory or to no cache, with a warning.
``fastmath={"contract"}``
    Only lets LLVM fuse ``a * b + c`` into one FMA instruction. No reassociation (results
    stay bitwise reproducible and independent of the thread count), and NaN/inf keep
    IEEE semantics (``0 * nan`` is ``nan``).
``error_model="numpy"``
    Division by zero gives inf/nan like NumPy instead of raising (kernels never divide
    by data, but this removes the checks from generated code).
``nogil=True``
    Kernels release the GIL, so Python threads calling fastconv run concurrently.
"""

from __future__ import annotations

import threading
import types

from numba import njit

from ._runtime import CACHE

FASTMATH = frozenset({"contract"})

_COMMON = {"cache": CACHE, "fastmath": set(FASTMATH), "error_model": "numpy", "nogil": True}


_COMPILE_LOCK = threading.Lock()
_COMPILED: set[tuple] = set()  # (dispatcher id, dtype) pairs already compiled


def kernel(function):
    """Compile ``function`` as a parallel fastconv kernel (``prange`` loops run on all cores).

    Call it through :func:`ensure_compiled`, which compiles one explicit signature per
    dtype, whose array types (``'A'`` layout, read-only inputs, unaligned) accept every
    layout, and then stops the dispatcher from specialising: a Fortran-ordered, read-only
    or broadcast input reuses the same machine code instead of paying for a new compile.
    """
    return njit(parallel=True, **_COMMON)(function)


def ensure_compiled(dispatcher, signature_of, dtype) -> None:
    """Compile ``signature_of(dtype)`` of a :func:`kernel` (or load it from the cache) once."""
    key = (id(dispatcher), dtype)
    if key in _COMPILED:
        return
    signature = signature_of(dtype)
    with _COMPILE_LOCK:
        if signature not in dispatcher.signatures:
            dispatcher.disable_compile(False)
            try:
                dispatcher.compile(signature)
            finally:
                dispatcher.disable_compile(True)
        _COMPILED.add(key)


def serial_twin(dispatcher, name: str):
    """The Python function of a :func:`kernel` compiled again without parallel loops.

    ``prange`` runs as ``range`` on the calling thread, which for small problems costs less
    than waking the thread pool (a lot less when other processes keep the cores busy). The
    arithmetic of each task, and so every result, is the same as the kernel's. The twin is
    a separate function named ``name`` so the on-disk caches of the two do not mix.
    """
    function = dispatcher.py_func
    twin = types.FunctionType(function.__code__, function.__globals__, name,
                              function.__defaults__, function.__closure__)
    twin.__qualname__ = name
    twin.__module__ = function.__module__
    twin.__doc__ = f"Serial twin of :func:`{function.__name__}` (same arguments and results)."
    return njit(**_COMMON)(twin)


def helper(function):
    """Compile ``function`` as a serial helper called from kernels."""
    return njit(inline="never", **_COMMON)(function)


def inlined(function):
    """Compile ``function`` as a serial helper inlined into each caller (hot inner code).

    Numba does not inline calls between separately compiled functions, so a helper called
    per tap or per vector strip pays a real call; this one is spliced into the caller's IR.
    """
    return njit(inline="always", **_COMMON)(function)
