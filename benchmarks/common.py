"""Shared pieces of the asv suite: the case list and problem set-up, from ``fastconv.bench``.

The helpers are loaded from this source tree's ``src/fastconv/bench.py`` when it exists, so
that every commit asv benchmarks (including commits from before ``fastconv.bench`` existed,
or with an older copy of it) runs exactly the same cases through the same harness; only the
installed fastconv under test changes. ``bench.py`` uses fastconv's public API only.

Set ``FASTCONV_BENCH_SMOKE=1`` for a CI smoke run (``tools/ci_bench.sh``): every case is
shrunk (batch 1, spatial sizes / 4), the parameter lists keep a subset of the cases that
covers every code path (``FASTCONV_BENCH_SMOKE=all``: every case), and track benchmarks time
one round. Without it the suite runs the full case list of the issue at full size.
"""

import importlib.util
import os
import sys
from pathlib import Path

_MODULE = "_fastconv_bench_from_source"


def _load_bench():
    """The ``fastconv.bench`` module: this tree's copy if present, else the installed one."""
    if _MODULE in sys.modules:
        return sys.modules[_MODULE]
    source = Path(__file__).resolve().parents[1] / "src" / "fastconv" / "bench.py"
    if not source.is_file():
        from fastconv import bench as installed

        return installed
    spec = importlib.util.spec_from_file_location(_MODULE, source)
    module = importlib.util.module_from_spec(spec)
    sys.modules[_MODULE] = module  # dataclasses resolve their module through sys.modules
    spec.loader.exec_module(module)
    return module


bench = _load_bench()

CASES = bench.benchmark_cases()
"""Case name -> Case (shrunk when FASTCONV_BENCH_SMOKE is set)."""

EXTRA_CASES = {case.name: case for case in getattr(bench, "EXTRA_CASES", ())}
"""Layers beyond the case list (``fastconv.bench.EXTRA_CASES``), timed by ``Extra``."""

PASSES = list(bench.PASSES)

# Subsets for the float64, thread-count and peak-memory benchmarks.
FLOAT64_CASES = ["conv3x3_64", "depthwise3x3_256", "image5x5", "conv1d_k9"]
THREAD_CASES = ["conv3x3_64", "conv1x1_256to64", "depthwise3x3_256"]
LARGEST_CASES = ["stem7x7s2", "depthwise3x3_256", "conv3x3_64", "conv3d_3x3x3"]

# Rounds of the interleaved (ours, peer, ours, peer, ...) timing in track_* benchmarks, and
# the minimum seconds of one timing sample.
ROUNDS, MIN_SAMPLE = 5, 0.02

SMOKE = os.environ.get(bench.SMOKE_ENV, "") not in ("", "0")
if SMOKE:
    # CI smoke run: every benchmark runs, on a subset of the cases that covers every code
    # path (2-D dense, depthwise, single-channel/SciPy, 1-D, 3-D, transposed), once each.
    # FASTCONV_BENCH_SMOKE=all keeps every case (shrunk).
    if os.environ[bench.SMOKE_ENV] != "all":
        keep = ["conv3x3_64", "depthwise3x3_256", "image5x5", "conv1d_k9", "conv3d_3x3x3",
                "transposed4x4s2"]
        CASES = {name: CASES[name] for name in keep}
        FLOAT64_CASES, THREAD_CASES = ["image5x5"], ["conv3x3_64"]
        LARGEST_CASES = ["depthwise3x3_256"]
        EXTRA_CASES = {name: case for name, case in EXTRA_CASES.items()
                       if name == "dw3x3s2_256"}
    EXTRA_CASES = {name: case.smoke() for name, case in EXTRA_CASES.items()}
    ROUNDS, MIN_SAMPLE = 1, 0.0
    # Import the installed peers once, in asv's forkserver parent, not in every benchmark.
    bench.available_peers()

#: Layers timed on channels-last data too (``ChannelsLast``): dense, and layers whose
#: kernels need channels-first planes (their channels-last data are copied to planes).
CHANNELS_LAST_CASES = [name for name in ("conv3x3_64", "depthwise3x3_256", "grouped3x3_g32",
                                         "stem7x7s2") if name in CASES]

ALL_CASES = list(CASES)
CONV_CASES = [name for name, case in CASES.items() if not case.transposed]
TRANSPOSED_CASES = [name for name, case in CASES.items() if case.transposed]


def prepare(case, pass_name, dtype="float32", threads=None, peers=()):
    """Build and warm up (JIT-compile) one problem, or skip the benchmark.

    Parameters
    ----------
    case : str
        Case name.
    pass_name : str
        ``forward``, ``grad_input`` or ``grad_weight``.
    dtype : str
        ``float32`` or ``float64``.
    threads : int, optional
        Thread count (fastconv and PyTorch); None keeps the default (all cores).
    peers : tuple of str
        Peers whose calls to build; each is required (the benchmark skips without it).

    Returns
    -------
    Problem

    Raises
    ------
    NotImplementedError
        The benchmark does not apply here (asv shows it as skipped): the thread count is
        not available, a required peer is not installed or does not compute this case, or
        the fastconv under test lacks a function the pass needs.
    """
    try:
        bench.set_threads(threads)
    except ValueError as error:
        raise NotImplementedError(str(error)) from error
    try:
        problem = bench.make_problem(CASES[case] if case in CASES else EXTRA_CASES[case],
                                     pass_name, dtype, peers)
    except AttributeError as error:  # an old fastconv without this function
        raise NotImplementedError(f"fastconv lacks it: {error}") from error
    for peer in peers:
        if peer not in problem.peers:
            raise NotImplementedError(f"{peer} is not installed or does not compute {case}")
    problem.ours()  # JIT compile (or load from cache) here, never inside the timed call
    for call in problem.peers.values():
        call()
    return problem


def prepare_channels_last(case, pass_name):
    """Build and warm up one pass of ``case`` on channels-last arrays; return its call.

    The same operands' shapes as :func:`prepare` (standard-normal float32 data), laid out
    ``(N, *spatial, C)`` and passed with ``channels_last=True``; the grad-weight pass
    computes the weight and bias gradients, as the channels-first one does.
    """
    import numpy as np

    import fastconv

    spec = CASES[case]
    ndim = len(spec.spatial)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((spec.batch, *spec.spatial, spec.in_channels), dtype=np.float32)
    weight = rng.standard_normal(spec.weight_shape, dtype=np.float32)
    options = {"stride": spec.stride, "padding": spec.padding, "dilation": spec.dilation,
               "groups": spec.groups, "channels_last": True}
    conv = getattr(fastconv, f"conv{ndim}d")
    grad = rng.standard_normal(conv(x, weight, **options).shape, dtype=np.float32)
    calls = {
        "forward": lambda: conv(x, weight, **options),
        "grad_input": lambda: getattr(fastconv, f"conv{ndim}d_input")(x.shape, weight, grad,
                                                                     **options),
        "grad_weight": lambda: getattr(fastconv, f"conv{ndim}d_backward")(
            x, weight, grad, needs=("weight", "bias"), **options),
    }
    call = calls[pass_name]
    call()  # JIT compile (or load from cache) here, never inside the timed call
    return call
