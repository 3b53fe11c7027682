"""Compile every kernel ahead of the first call, in parallel worker processes.

A kernel is compiled the first time a call needs it, and Numba writes the machine code to
its on-disk cache, so later processes load it in well under a second. The first process
pays for the compile: a minute or more for every float32 kernel on one core. On a machine
with several cores, :func:`precompile` compiles the kernels in worker processes at once
(each family of kernels in one process, largest first), which write the cache, then loads
them all into the calling process: run it once after installing (or in an image build)
and no later call compiles anything.

Each family is a few calls of the public functions on small arrays, chosen so that between
them they compile every kernel and task function (and every serial twin) the calls of
this host can run, for one dtype.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import IO, NamedTuple

import numpy as np

from . import _runtime
from .convolution import conv2d, conv2d_backward, conv2d_input, conv3d


def _small_dense(dtype: np.dtype) -> None:
    """Small calls, run whole in one compiled function, and their adjoints (gather twins)."""
    x = np.ones((2, 16, 8, 8), dtype)
    w = np.ones((16, 16, 3, 3), dtype)
    y = conv2d(x, w, padding=1)
    conv2d(np.ones((1, 3, 9, 9), dtype), np.ones((32, 3, 3, 3), dtype))
    conv2d_backward(x, w, y, padding=1)
    conv2d_backward(x, w, y, padding=1, needs=("bias",))  # planar sums' serial twin
    small = np.ones((1, 4, 8, 8), dtype)
    # gather forward and input twins, planar weight gradient twin
    conv2d_backward(small, np.ones((4, 1, 3, 3), dtype), small, padding=1, groups=4)


def _dense(dtype: np.dtype) -> None:
    """The dense drivers: row, window and tiled modes, stride phases (one launch for all)."""
    big = np.ones((4, 32, 40, 40), dtype)
    w = np.ones((32, 32, 3, 3), dtype)
    conv2d(big, w, padding=2, dilation=2)  # tiled mode (undilated: the Winograd kernel)
    conv2d(np.ones((4, 3, 64, 64), dtype), np.ones((32, 3, 7, 7), dtype), stride=2)  # window
    conv2d(np.ones((4, 20, 20, 32), dtype), np.ones((64, 32, 3, 3), dtype),
           channels_last=True)  # window mode reading a channels-last input in place
    # weights the threads pack (row mode): on a channels-last copy of the batch (weights too
    # large to pack whole), and on tiles each task copies (convolution._DensePass._tiled_rows)
    conv2d(np.ones((2, 512, 8, 8), dtype), np.ones((512, 512, 3, 3), dtype), padding=1)
    w256 = np.ones((256, 256, 3, 3), dtype)
    conv2d(np.ones((8, 256, 10, 10), dtype), w256, padding=1)  # tiles: float32
    conv2d(np.ones((8, 192, 8, 8), dtype), np.ones((192, 192, 3, 3), dtype),
           padding=1)  # tiles: float64
    conv2d_backward(big, w, big, padding=2, dilation=2, needs=("input",))  # a stride-1 phase
    wide = np.ones((4, 64, 20, 20), dtype)
    conv2d_input(wide.shape, np.ones((64, 64, 3, 3), dtype), np.ones((4, 64, 10, 10), dtype),
                 stride=2, padding=1)  # stride phases in one launch (job table)


def _winograd(dtype: np.dtype) -> None:
    """The Winograd kernels and their weight transforms (3x3 and 3x3x3 stride-1 layers)."""
    conv2d(np.ones((8, 32, 32, 32), dtype), np.ones((32, 32, 3, 3), dtype), padding=1)
    conv3d(np.ones((4, 16, 16, 16, 16), dtype), np.ones((32, 16, 3, 3, 3), dtype), padding=1)


def _dense_weight(dtype: np.dtype) -> None:
    """The dense weight gradient, with the bias gradient."""
    big = np.ones((4, 32, 40, 40), dtype)
    conv2d_backward(big, np.ones((32, 32, 3, 3), dtype), big, padding=1,
                    needs=("weight", "bias"))


def _planar(dtype: np.dtype) -> None:
    """The planar convolution (a grouped layer's input gradient)."""
    big = np.ones((4, 32, 40, 40), dtype)
    conv2d_backward(big, np.ones((32, 1, 3, 3), dtype), big, padding=1, groups=32,
                    needs=("input",))


def _planar_weight(dtype: np.dtype) -> None:
    """The planar weight gradient and the plane sums (bias gradients)."""
    big = np.ones((4, 32, 40, 40), dtype)
    conv2d_backward(big, np.ones((32, 1, 3, 3), dtype), big, padding=1, groups=32,
                    needs=("weight", "bias"))
    conv2d_backward(big, np.ones((32, 32, 3, 3), dtype), big, padding=1, needs=("bias",))


def _depthwise(dtype: np.dtype) -> None:
    """The depthwise kernels (forward and weight gradient)."""
    x = np.ones((4, 256, 14, 14), dtype)
    w = np.ones((256, 1, 3, 3), dtype)
    conv2d_backward(x, w, np.ones((4, 256, 7, 7), dtype), stride=2, padding=1, groups=256)
    conv2d(x, w, stride=2, padding=1, groups=256)


def _pointwise(dtype: np.dtype) -> None:
    """The pointwise (1x1) kernel, both ways."""
    conv2d_backward(np.ones((4, 32, 40, 40), dtype), np.ones((24, 32, 1, 1), dtype),
                    np.ones((4, 24, 40, 40), dtype))


def _gather(dtype: np.dtype) -> None:
    """The general (gather) kernels: channels-last, reflect-padded, and channels-last sums.

    Large and small calls (the serial twins).
    """
    w = np.ones((32, 32, 3, 3), dtype)
    for x in (np.ones((4, 40, 40, 32), dtype), np.ones((1, 4, 4, 32), dtype)):
        conv2d_backward(x, w, x, padding=1, padding_mode="reflect", channels_last=True)
        conv2d_backward(x, w, x, padding=1, channels_last=True, needs=("bias",))
    x = np.ones((1, 9, 4, 4), dtype)
    conv2d_backward(x, np.ones((9, 9, 3, 3), dtype), x, padding=1, padding_mode="reflect")


#: The families of kernels, the slowest to compile first (each ``name -> calls(dtype)``).
FAMILIES: dict[str, Callable[[np.dtype], None]] = {
    "planar": _planar,
    "dense": _dense,
    "planar_weight": _planar_weight,
    "depthwise": _depthwise,
    "dense_weight": _dense_weight,
    "winograd": _winograd,
    "small": _small_dense,
    "gather": _gather,
    "pointwise": _pointwise,
}


def run_families(names: Sequence[str], dtypes: Sequence[str]) -> dict[str, float]:
    """Run the calls of families ``names`` for every dtype in this process; seconds each."""
    took = {}
    for name in names:
        start = time.perf_counter()
        for dtype in dtypes:
            FAMILIES[name](np.dtype(dtype))
        took[name] = time.perf_counter() - start
    return took


class _Worker(NamedTuple):
    """A worker process, the temporary file its error output goes to, and its start time."""

    process: subprocess.Popen
    errors: IO[str]
    began: float


def _start(name: str, dtypes: Sequence[str]) -> _Worker:
    """Start a worker process compiling family ``name`` for ``dtypes`` into the cache.

    A new interpreter (not :mod:`multiprocessing`, whose spawned workers import the
    caller's main module again).
    """
    code = (f"from fastconv._precompile import run_families; "
            f"run_families([{name!r}], {list(dtypes)!r})")
    errors = tempfile.TemporaryFile("w+")
    process = subprocess.Popen([sys.executable, "-c", code], env=os.environ.copy(),
                               stdout=subprocess.DEVNULL, stderr=errors, text=True)
    return _Worker(process, errors, time.perf_counter())


def _error_output(worker: _Worker) -> str:
    """The error output of a finished worker (its file closed)."""
    worker.errors.seek(0)
    text = worker.errors.read()
    worker.errors.close()
    return text


def _run_workers(dtypes: Sequence[str], jobs: int) -> dict[str, float]:
    """Every family in a worker process, ``jobs`` at a time, in order; seconds each.

    A failed worker stops the others and raises RuntimeError with its error output.
    """
    waiting = list(FAMILIES)
    running: dict[str, _Worker] = {}
    took = {}
    while waiting or running:
        while waiting and len(running) < jobs:
            name = waiting.pop(0)
            running[name] = _start(name, dtypes)
        time.sleep(0.05)
        for name, worker in list(running.items()):
            if worker.process.poll() is None:
                continue
            del running[name]
            took[name] = time.perf_counter() - worker.began
            errors = _error_output(worker)
            if worker.process.returncode != 0:
                for other in running.values():
                    other.process.kill()
                    other.process.wait()
                    _error_output(other)
                raise RuntimeError(f"precompiling the {name!r} kernels failed (exit code "
                                   f"{worker.process.returncode}):\n{errors}")
    return took


def _dtype_name(dtype: object) -> str:
    """``"float32"`` or ``"float64"`` for a dtype-like naming one of them, else ValueError."""
    allowed = ("float32", "float64")
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = None
    if name not in allowed:
        raise ValueError(f"dtypes: {dtype!r} is not one of {allowed}")
    return name


def precompile(dtypes: Sequence[str] = ("float32", "float64"), jobs: int | None = None
               ) -> dict[str, float]:
    """Compile every kernel for ``dtypes`` now (or load it from the cache), in parallel.

    Parameters
    ----------
    dtypes : dtype-like or sequence of dtype-likes, default both
        The dtypes to compile the kernels for: float32, float64 or both (``"float32"``,
        ``numpy.float32`` and ``numpy.dtype("float32")`` alike).
    jobs : int, optional
        Worker processes compiling at once; default the number of cores this process may
        run on. With one job, or when the compile cache is off (see
        :mod:`fastconv._runtime`), everything is compiled in this process.

    Returns
    -------
    dict
        Seconds per family of kernels (each in its worker, or in this process), and
        ``"total"``: the wall time of the whole, loading the kernels into this process
        included.

    Raises
    ------
    ValueError
        For an unknown dtype or a ``jobs`` below 1.
    RuntimeError
        When a worker process fails (its error output is in the message).

    Examples
    --------
    >>> import fastconv
    >>> took = fastconv.precompile(["float32"], jobs=1)  # fast when the cache is filled
    >>> sorted(took) == sorted([*fastconv._precompile.FAMILIES, "total"])
    True
    """
    single = isinstance(dtypes, (str, type, np.dtype))
    dtypes = [_dtype_name(dtype) for dtype in ([dtypes] if single else list(dtypes))]
    if jobs is None:
        jobs = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
            os.cpu_count() or 1)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive int, got {jobs!r}")
    start = time.perf_counter()
    if jobs == 1 or not _runtime.CACHE:
        took = run_families(list(FAMILIES), dtypes)
        took["total"] = time.perf_counter() - start
        return took
    took = _run_workers(dtypes, jobs)
    run_families(list(FAMILIES), dtypes)  # load them all into this process
    took["total"] = time.perf_counter() - start
    return took
