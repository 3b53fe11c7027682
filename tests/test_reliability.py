"""Reliability: determinism, thread safety, fork safety, 64-bit indexing, compile cache.

Each test pins one guarantee of the reliability issue; the ones that need a fresh process
(fork, cache, read-only install) run a small script in a subprocess with a timeout, so a
crash or hang there fails the test instead of the test run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numba
import numpy as np
import pytest

import fastconv

RNG = np.random.default_rng(1234)

# (name, callable) for every pass, all on one 2-D configuration with groups, stride, dilation
X = RNG.standard_normal((5, 6, 17, 15)).astype(np.float32)
W = RNG.standard_normal((4, 3, 3, 2)).astype(np.float32)
B = RNG.standard_normal(4).astype(np.float32)
OPTIONS = {"stride": (2, 1), "padding": ((1, 2), 1), "dilation": (1, 2), "groups": 2}
Y = fastconv.conv2d(X, W, B, **OPTIONS)
G = RNG.standard_normal(Y.shape).astype(np.float32)
WT = RNG.standard_normal((6, 2, 3, 3)).astype(np.float32)


def _forward(x=X):
    return fastconv.conv2d(x, W, B, **OPTIONS)


def _input(g=G):
    return fastconv.conv2d_input((g.shape[0], *X.shape[1:]), W, g, **OPTIONS)


def _weight():
    return fastconv.conv2d_weight(X, W.shape, G, **OPTIONS)


def _bias():
    return fastconv.conv2d_backward(X, W, G, needs=("bias",), **OPTIONS)[2]


def _fused():
    return np.concatenate([a.ravel() for a in fastconv.conv2d_backward(X, W, G, **OPTIONS)])


def _transposed(x=X):
    return fastconv.conv_transpose2d(x, WT, stride=2, padding=1, output_padding=1, groups=3)


PASSES = {"forward": _forward, "input": _input, "weight": _weight, "bias": _bias,
          "backward": _fused, "transposed": _transposed}


# ------------------------------------------------------------------------- determinism
@pytest.mark.parametrize("name", sorted(PASSES))
def test_bitwise_identical_across_thread_counts(name):
    run = PASSES[name]
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        single = run()
    finally:
        numba.set_num_threads(threads)
    every = run()
    assert every.tobytes() == single.tobytes()


def test_dynamic_scheduling_changes_no_bit_and_restores_the_callers_chunk_size(monkeypatch):
    """Large calls hand their tasks to the threads dynamically (one task per chunk), so
    which thread runs a task varies between calls: the results must not, and the chunk
    size the caller had set must be back after the call."""
    from fastconv import _runtime, convolution

    entered = []
    schedule = _runtime.dynamic_schedule

    def spy():
        entered.append(True)
        return schedule()

    monkeypatch.setattr(_runtime, "dynamic_schedule", spy)
    fastconv.clear_plans()
    x = RNG.standard_normal((4, 16, 40, 40)).astype(np.float32)
    w = RNG.standard_normal((32, 16, 3, 3)).astype(np.float32)
    assert 4 * 32 * 40 * 40 * 16 * 9 >= convolution.DYNAMIC_SCHEDULE_FMAS
    threads, previous = numba.get_num_threads(), numba.set_parallel_chunksize(3)
    try:
        numba.set_num_threads(1)
        y1 = fastconv.conv2d(x, w, padding=1)
        grads1 = fastconv.conv2d_backward(x, w, y1, padding=1)
        numba.set_num_threads(threads)
        for _ in range(3):
            y = fastconv.conv2d(x, w, padding=1)
            grads = fastconv.conv2d_backward(x, w, y1, padding=1)
            assert y.tobytes() == y1.tobytes()
            assert all(a.tobytes() == b.tobytes() for a, b in zip(grads, grads1))
            assert numba.get_parallel_chunksize() == 3
    finally:
        numba.set_num_threads(threads)
        numba.set_parallel_chunksize(previous)
        fastconv.clear_plans()
    assert len(entered) == 8


@pytest.mark.parametrize("name", sorted(PASSES))
def test_bitwise_identical_across_repeated_runs(name):
    run = PASSES[name]
    first = run()
    for _ in range(3):
        assert run().tobytes() == first.tobytes()


@pytest.mark.parametrize(("start", "stop"), [(0, 1), (1, 4), (3, 5), (2, 3)])
def test_batch_invariance_forward(start, stop):
    assert _forward(X[start:stop]).tobytes() == _forward()[start:stop].tobytes()


@pytest.mark.parametrize(("start", "stop"), [(0, 1), (1, 4), (3, 5)])
def test_batch_invariance_input_gradient(start, stop):
    assert _input(G[start:stop]).tobytes() == _input()[start:stop].tobytes()


@pytest.mark.parametrize(("start", "stop"), [(0, 2), (4, 5)])
def test_batch_invariance_transposed(start, stop):
    assert _transposed(X[start:stop]).tobytes() == _transposed()[start:stop].tobytes()


# ------------------------------------------------------------------------- NaN and inf
def _reached(shape, position, kernel, stride, pads, dilation):
    """Boolean mask of outputs whose receptive field contains ``position`` (one 2-D image)."""
    mask = np.zeros(shape, dtype=bool)
    for q0 in range(shape[0]):
        for q1 in range(shape[1]):
            rows = {q0 * stride[0] + t * dilation[0] - pads[0] for t in range(kernel[0])}
            cols = {q1 * stride[1] + t * dilation[1] - pads[1] for t in range(kernel[1])}
            mask[q0, q1] = position[0] in rows and position[1] in cols
    return mask


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_and_inf_reach_exactly_their_receptive_field(bad):
    x = np.ones((1, 1, 9, 8))
    x[0, 0, 4, 3] = bad
    weight = np.ones((1, 1, 3, 3))
    weight[0, 0, 1, 1] = 0.0  # a zero weight must not skip the NaN (0 * inf is NaN too)
    y = fastconv.conv2d(x, weight, stride=(2, 1), padding=(1, 2), dilation=(1, 2))
    reached = _reached(y.shape[2:], (4, 3), (3, 3), (2, 1), (1, 2), (1, 2))
    assert reached.any()
    assert np.isfinite(y[0, 0][~reached]).all()
    assert not np.isfinite(y[0, 0][reached]).any()


def test_nan_in_grad_output_reaches_exactly_its_inputs():
    weight = np.ones((1, 1, 3))
    grad = np.ones((1, 1, 6))
    grad[0, 0, 2] = np.nan
    gx = fastconv.conv1d_input((1, 1, 8), weight, grad)
    assert np.isnan(gx[0, 0, 2:5]).all()
    assert np.isfinite(np.delete(gx[0, 0], [2, 3, 4])).all()


# ------------------------------------------------------------------------- 64-bit indexing
def test_arrays_past_two_to_the_31_elements():
    """Positions beyond 2**31 are addressed correctly (no 32-bit index arithmetic).

    ``np.zeros`` maps zero pages lazily, and the stride keeps the reads sparse, so the
    8 GiB input costs little memory (a page per output) and time.
    """
    length = 2**31 + 2**27
    x = np.zeros((1, 1, length), dtype=np.float32)
    stride = 2**26
    positions = np.arange(0, length - 2, stride)
    x[0, 0, positions + 1] = np.arange(positions.size, dtype=np.float32)
    weight = np.array([[[1.0, 10.0, 100.0]]], dtype=np.float32)
    y = fastconv.conv1d(x, weight, stride=stride)
    np.testing.assert_array_equal(y[0, 0], 10.0 * np.arange(positions.size, dtype=np.float32))
    assert y.shape[-1] > 33  # the last outputs read past element 2**31


# ------------------------------------------------------------------------- concurrency
def test_many_python_threads_at_once():
    expected = {name: run() for name, run in PASSES.items()}
    jobs = [name for name in sorted(PASSES) for _ in range(6)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda name: (name, PASSES[name]()), jobs))
    for name, result in results:
        assert result.tobytes() == expected[name].tobytes(), name


def test_python_threads_running_dynamically_scheduled_calls_at_once():
    """Large calls (dynamic scheduling, zero-padded layout copies from the work-array pool,
    stride phases) from several Python threads at once give each its own exact result, and
    leave every thread's chunk size as it was."""
    big_x = RNG.standard_normal((4, 16, 40, 40)).astype(np.float32)
    big_w = RNG.standard_normal((32, 16, 3, 3)).astype(np.float32)
    big_y = fastconv.conv2d(big_x, big_w, padding=1, stride=2)
    calls = {
        "forward": lambda: fastconv.conv2d(big_x, big_w, padding=1, stride=2),
        "input": lambda: fastconv.conv2d_input(big_x.shape, big_w, big_y, padding=1,
                                               stride=2),
        "transposed": lambda: fastconv.conv_transpose2d(big_x, big_w.swapaxes(0, 1)[:16],
                                                        stride=2, padding=1),
    }
    expected = {name: run() for name, run in calls.items()}

    def job(name):
        result = calls[name]()
        return name, result, numba.get_parallel_chunksize()

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(job, [name for name in sorted(calls) for _ in range(4)]))
    for name, result, chunk in results:
        assert result.tobytes() == expected[name].tobytes(), name
        assert chunk == 0, name


def _run_script(code: str, env: dict | None = None, timeout: float = 300,
                prefix: list[str] | None = None) -> subprocess.CompletedProcess:
    command = [*(prefix or []), sys.executable, "-c", textwrap.dedent(code)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def test_forked_child_after_parallel_call():
    """multiprocessing's default start method on Linux forks; the children must work."""
    result = _run_script("""
        import multiprocessing as mp
        import numpy as np
        import fastconv
        x = np.ones((2, 3, 48, 48)); w = np.ones((4, 3, 3, 3))
        parent = fastconv.conv2d(x, w, padding=1)  # large enough for the parallel kernel
        def child(_):
            return fastconv.conv2d(x, w, padding=1).sum()
        with mp.get_context("fork").Pool(2) as pool:
            sums = pool.map(child, range(4), chunksize=1)
        assert all(s == parent.sum() for s in sums), sums
        print("ok")
    """, timeout=180)
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout


# Small calls run on the calling thread and start no threading layer: this call is large
# enough for the parallel gather kernel.
_PARALLEL_CALL = "fastconv.conv1d(np.ones((1, 1, 40000)), np.ones((1, 1, 2)))"


def test_threading_layer_is_thread_and_fork_safe():
    result = _run_script(f"""
        import numba, numpy as np, fastconv
        {_PARALLEL_CALL}
        print(numba.threading_layer())
    """)
    assert result.returncode == 0, result.stderr
    layer = result.stdout.strip()
    if layer != "tbb":
        pytest.skip(f"TBB is not installed here (layer {layer}); fork safety is not guaranteed")


def test_user_choice_of_threading_layer_is_respected():
    result = _run_script(f"""
        import numba, numpy as np, fastconv
        {_PARALLEL_CALL}
        print(numba.threading_layer())
    """, env={"NUMBA_THREADING_LAYER": "workqueue"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "workqueue"


# ------------------------------------------------------------------------- compile cache
_CACHE_SCRIPT = """
    import numpy as np, fastconv
    x = np.arange(2 * 9 * 3, dtype=np.float32).reshape(2, 9, 3)
    y = fastconv.conv1d(x, np.ones((4, 3, 3), np.float32), padding=1, channels_last=True)
    print(float(y.sum()), float(np.abs(y).max()))
"""


def test_concurrent_compiles_share_a_cache_without_corruption(tmp_path):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    command = [sys.executable, "-c", textwrap.dedent(_CACHE_SCRIPT)]
    processes = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outputs = [p.communicate(timeout=600) for p in processes]
    assert all(p.returncode == 0 for p in processes), [err for _, err in outputs]
    assert len({out for out, _ in outputs}) == 1
    again = _run_script(_CACHE_SCRIPT + """
    from fastconv import _dense
    # a call this small runs whole in one compiled function
    stats = [_dense.small_conv.stats]
    print(sum(sum(s.cache_hits.values()) for s in stats),
          sum(sum(s.cache_misses.values()) for s in stats))
    """, env={"NUMBA_CACHE_DIR": str(tmp_path)})
    assert again.returncode == 0, again.stderr
    lines = again.stdout.splitlines()
    assert lines[0] == outputs[0][0].strip()
    hits, misses = map(int, lines[1].split())
    assert hits >= 1 and misses == 0


_KERNELS_SCRIPT = """
    import hashlib
    import numpy as np, fastconv
    from fastconv import _dense, _dense_weight
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 48, 20, 20)).astype(np.float32)
    w = rng.standard_normal((40, 48, 3, 3)).astype(np.float32)
    y = fastconv.conv2d(x, w, padding=1)
    results = (y, *fastconv.conv2d_backward(x, w, y, padding=1))
    print(" ".join(hashlib.sha1(r.tobytes()).hexdigest() for r in results))
    drivers = [*_dense._DRIVERS.values(), *_dense._WDRIVERS.values()]
    functions = [_dense_weight.dense_weight_grad, _dense_weight._weight_task,
                 _dense._tiled_forward, _dense._tiled_task,
                 *(d.kernel for d in drivers), *(d.task for d in drivers)]
    print(sum(sum(f.stats.cache_hits.values()) for f in functions),
          sum(sum(f.stats.cache_misses.values()) for f in functions))
"""


def test_kernels_and_the_tasks_they_call_by_address_load_from_the_cache(tmp_path):
    """Parallel kernels call their task functions by an address taken in Python: in a new
    process both come from the disk cache, and the results are the same bits."""
    env = {"NUMBA_CACHE_DIR": str(tmp_path)}
    first = _run_script(_KERNELS_SCRIPT, env=env, timeout=600)
    assert first.returncode == 0, first.stderr
    again = _run_script(_KERNELS_SCRIPT, env=env)
    assert again.returncode == 0, again.stderr
    digests, counts = again.stdout.splitlines()
    assert digests == first.stdout.splitlines()[0]
    hits, misses = map(int, counts.split())
    assert hits >= 4 and misses == 0


def _read_only_prefix(paths: list[str]) -> list[str] | None:
    """A command prefix running in a mount namespace where ``paths`` are read-only."""
    unshare = shutil.which("unshare")
    if unshare is None or not sys.platform.startswith("linux"):
        return None
    mounts = " && ".join(f"mount --bind {p} {p} && mount -o remount,bind,ro {p}" for p in paths)
    probe = subprocess.run([unshare, "-m", "sh", "-c", f"{mounts} && exec true"],
                           capture_output=True)
    if probe.returncode != 0:
        return None
    return [unshare, "-m", "sh", "-c", f'{mounts} && exec "$0" "$@"']


def test_read_only_install_still_works():
    package = str(Path(fastconv.__file__).parent)
    home = tempfile.mkdtemp()
    prefix = _read_only_prefix([package, home])
    if prefix is None:
        pytest.skip("needs Linux mount namespaces (unshare -m) to make the install read-only")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(HOME=home, XDG_CACHE_HOME=home, TMPDIR=tempfile.mkdtemp())
    command = [*prefix, sys.executable, "-W", "always", "-c", textwrap.dedent(_CACHE_SCRIPT)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr
    assert "FastconvWarning" in result.stderr
    reference = _run_script(_CACHE_SCRIPT)
    assert result.stdout == reference.stdout
