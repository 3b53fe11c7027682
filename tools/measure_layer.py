"""GFLOP/s of every pass on the 3x3, 64->64, 56x56, batch-8 float32 layer (best of 5).

Usage: ``python tools/measure_layer.py [--channels-last]``.
"""

import sys
import time

import numpy as np

import fastconv


def best_seconds(call, repeats=5):
    """Shortest of ``repeats`` timings of ``call()``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    """Measure and print the table line."""
    channels_last = "--channels-last" in sys.argv[1:]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 64, 56, 56), dtype=np.float32)
    w = rng.standard_normal((64, 64, 3, 3), dtype=np.float32)
    if channels_last:
        x = np.ascontiguousarray(np.moveaxis(x, 1, -1))
    flop = 2 * 8 * 56 * 56 * 64 * 64 * 9
    options = {"padding": 1, "channels_last": channels_last}
    grad = np.ones_like(fastconv.conv2d(x, w, **options))
    fastconv.conv2d_backward(x, w, grad, **options)  # compile everything first
    rates = {
        "forward": flop / best_seconds(lambda: fastconv.conv2d(x, w, **options)),
        "grad_input": flop / best_seconds(lambda: fastconv.conv2d_input(x.shape, w, grad,
                                                                        **options)),
        "grad_weight": flop / best_seconds(lambda: fastconv.conv2d_weight(x, w.shape, grad,
                                                                          **options)),
        "backward(all)": 2 * flop / best_seconds(
            lambda: fastconv.conv2d_backward(x, w, grad, **options), 3),
    }
    cells = "  ".join(f"{name} {rate / 1e9:.1f}" for name, rate in rates.items())
    print(f"channels_last={channels_last}  GFLOP/s: {cells}")


if __name__ == "__main__":
    main()
