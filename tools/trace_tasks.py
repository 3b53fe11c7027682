"""Per-thread timeline of a window-mode dense forward call, to see whether work is balanced.

Usage: ``python tools/trace_tasks.py C_IN C_OUT SIZE BATCH KERNEL STRIDE [CHUNK]``, e.g.
``python tools/trace_tasks.py 3 64 229 8 7 2`` (the RGB stem on a pre-padded input) or
``python tools/trace_tasks.py 64 64 58 8 3 1``.

Runs the window-mode driver's tasks (``fastconv._dense._wtask_p6``) from a traced copy of
the driver that stamps each task with the CPU's cycle counter, on a channels-last input,
and prints per call: GFLOP/s, the tasks each thread ran, how busy each thread was between
the first start and the last end, and when it started and finished (millions of cycles).
``CHUNK`` is Numba's parallel chunk size for the run (default 0: equal shares decided up
front; fastconv's calls use 1, see ``fastconv._runtime.dynamic_schedule``). Only hosts
whose tile is 6 pixels (AVX2) have this driver.
"""

import sys
import time

import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange
from numba.core import types
from numba.extending import intrinsic

import fastconv
from fastconv import _dense, _jit


@intrinsic
def _cycles(typingctx):
    """The CPU's cycle counter (``llvm.readcyclecounter``)."""
    def codegen(context, builder, signature, args):
        fn = builder.module.declare_intrinsic("llvm.readcyclecounter",
                                              fnty=ir.FunctionType(ir.IntType(64), []))
        return builder.call(fn, [])
    return types.int64(), codegen


@njit(parallel=True)
def _traced(x, wp, aux, out, dims, stride, dilation, pad_low, scr, fscr, group, log, task_at):
    ntile = (dims[0] * dims[8] * dims[9] * dims[10] + 5) // 6
    for task in prange((ntile + group - 1) // group):
        tid = np.int64(numba.get_thread_id())
        start = _cycles()
        _dense._call_window_task(task_at, (x, wp, aux, out, dims, stride, dilation, pad_low,
                                           scr, fscr, group, np.int64(task), tid))
        log[task, 0] = tid
        log[task, 1] = start
        log[task, 2] = _cycles()


def main() -> None:
    """Trace six calls and print one line per call."""
    c_in, c_out, size, batch, taps, stride = (int(v) for v in sys.argv[1:7])
    numba.set_parallel_chunksize(int(sys.argv[7]) if len(sys.argv) > 7 else 0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, size, size, c_in), dtype=np.float32)
    w = rng.standard_normal((c_out, c_in, taps, taps), dtype=np.float32)
    rows = (size - taps) // stride + 1
    out = np.empty((batch, rows, rows, c_out), np.float32)
    flops = 2 * batch * rows * rows * c_out * c_in * taps * taps
    captured = {}
    run_dense = _dense.run_dense

    def capture(plan, xv, wp, bias, o):
        captured["call"] = (plan, xv, wp, o)
        return run_dense(plan, xv, wp, bias, o)

    _dense.run_dense = capture
    fastconv.conv2d(x, w, stride=stride, channels_last=True, out=out)
    _dense.run_dense = run_dense
    plan, xv, wp, o = captured["call"]
    if not plan.window or _dense.TILE_P != 6:
        raise SystemExit("this layer does not run the 6-pixel window-mode driver here")
    args = (_dense.flat_view(xv), wp, plan.zero_aux, _dense.flat_view(o), _dense._layout(xv, o),
            plan.stride, plan.dilation, plan.pad_low, np.empty(plan.scratch_shape, np.int64),
            np.empty(plan.data_scratch_shape, o.dtype), plan.group)
    tiles = (o.size // o.shape[-1] + 5) // 6
    log = np.zeros(((tiles + plan.group - 1) // plan.group, 3), np.int64)
    task_at = _jit.address_of(_dense._wtask_p6, _dense._window_task_signature, o.dtype)
    _traced(*args, log, task_at)
    for _ in range(6):
        start = time.perf_counter()
        _traced(*args, log, task_at)
        seconds = time.perf_counter() - start
        first, last = log[:, 1].min(), log[:, 2].max()
        span = last - first
        parts = []
        for tid in np.unique(log[:, 0]):
            mine = log[log[:, 0] == tid]
            busy = (mine[:, 2] - mine[:, 1]).sum() / span
            parts.append(f"thread {tid}: {len(mine)} tasks, busy {busy:.2f}, "
                         f"{(mine[:, 1].min() - first) / 1e6:.2f}-"
                         f"{(mine[:, 2].max() - first) / 1e6:.2f}")
        print(f"{flops / seconds / 1e9:5.0f} GFLOP/s, {span / 1e6:.1f} Mcycles; "
              + "; ".join(parts))


if __name__ == "__main__":
    main()
