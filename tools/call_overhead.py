"""Per-call time of tiny convolutions: fastconv against PyTorch, in the same run.

The case is the one of the call-overhead issue: input ``1x3x8x8`` float32, weight
``8x3x3x3``, ``padding=1``. Each number is the best of ``--repeats`` loops of ``--calls``
calls, in microseconds per call. PyTorch (if installed) runs ``torch.nn.functional.conv2d``
and its two gradient functions on ``torch.from_numpy`` tensors under ``torch.no_grad()``
with two threads.

Usage: ``python tools/call_overhead.py [--calls 1000] [--repeats 5]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

import fastconv


def best_us_per_call(call: Callable[[], object], calls: int, repeats: int) -> float:
    """Shortest of ``repeats`` timings of ``calls`` calls of ``call``, in µs per call.

    Parameters
    ----------
    call : callable
        Function of no arguments to time.
    calls : int
        Calls per timed loop.
    repeats : int
        Timed loops; the fastest counts.

    Returns
    -------
    float
        Microseconds per call of the fastest loop.
    """
    call()  # compile / warm up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            call()
        best = min(best, time.perf_counter() - start)
    return best / calls * 1e6


def fastconv_calls(x: np.ndarray, w: np.ndarray, gy: np.ndarray
                   ) -> dict[str, Callable[[], object]]:
    """The three fastconv calls of the issue, by name."""
    return {
        "conv2d": lambda: fastconv.conv2d(x, w, padding=1),
        "conv2d_input": lambda: fastconv.conv2d_input(x.shape, w, gy, padding=1),
        "conv2d_weight": lambda: fastconv.conv2d_weight(x, w.shape, gy, padding=1),
    }


def torch_calls(x: np.ndarray, w: np.ndarray, gy: np.ndarray
                ) -> dict[str, Callable[[], object]] | None:
    """The same three calls in PyTorch, or None when it is not installed."""
    try:
        import torch
        from torch.nn.grad import conv2d_input, conv2d_weight
    except ImportError:
        return None
    torch.set_num_threads(2)
    tx, tw, tgy = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(gy)

    def no_grad(function: Callable[[], object]) -> Callable[[], object]:
        def run() -> object:
            with torch.no_grad():
                return function()
        return run

    return {
        "conv2d": no_grad(lambda: torch.nn.functional.conv2d(tx, tw, padding=1)),
        "conv2d_input": no_grad(lambda: conv2d_input(x.shape, tw, tgy, padding=1)),
        "conv2d_weight": no_grad(lambda: conv2d_weight(tx, w.shape, tgy, padding=1)),
    }


def main() -> None:
    """Measure and print one line per function: fastconv and PyTorch µs per call."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    options = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 3, 8, 8), dtype=np.float32)
    w = rng.standard_normal((8, 3, 3, 3), dtype=np.float32)
    gy = rng.standard_normal((1, 8, 8, 8), dtype=np.float32)
    ours = fastconv_calls(x, w, gy)
    theirs = torch_calls(x, w, gy) or {}
    print(f"{'function':<15}{'fastconv µs':>13}{'torch µs':>11}{'ratio':>8}")
    for name, call in ours.items():
        mine = best_us_per_call(call, options.calls, options.repeats)
        if name in theirs:
            other = best_us_per_call(theirs[name], options.calls, options.repeats)
            print(f"{name:<15}{mine:>13.1f}{other:>11.1f}{mine / other:>8.2f}")
        else:
            print(f"{name:<15}{mine:>13.1f}{'-':>11}{'-':>8}")


if __name__ == "__main__":
    main()
