"""Cold compile (fresh cache dir) and cached first call of the float32 kernels.

Usage: ``python tools/compile_time.py [--all]``. Runs the same script twice in new processes
that share a new, empty ``NUMBA_CACHE_DIR``: the first compiles, the second loads the cache.
With ``--all`` the script runs every float32 kernel (dense forward in row and window mode,
the small-call dense function, dense weight gradient, planar, pointwise, gather and their
serial twins, weight and bias gradients, the layout copy).
"""

import os
import subprocess
import sys
import tempfile
import time

SCRIPT = r"""
import time
t0 = time.perf_counter()
import numpy as np, fastconv
t1 = time.perf_counter()
x = np.ones((2, 16, 8, 8), np.float32); w = np.ones((16, 16, 3, 3), np.float32)
y = fastconv.conv2d(x, w, padding=1)
t2 = time.perf_counter()
fastconv.conv2d_backward(x, w, y, padding=1)
fastconv.conv2d(np.ones((2, 4, 8, 8), np.float32), np.ones((4, 1, 3, 3), np.float32), groups=4)
fastconv.conv2d_backward(x, w, y, padding=1, needs=("bias",))
t3 = time.perf_counter()
print(f"{t1 - t0:.2f} {t2 - t1:.2f} {t3 - t2:.2f}")
"""


ALL = r"""
import time
t0 = time.perf_counter()
import numpy as np, fastconv
t1 = time.perf_counter()
f = np.float32
x = np.ones((2, 16, 8, 8), f); w = np.ones((16, 16, 3, 3), f)
y = fastconv.conv2d(x, w, padding=1)  # small call: dense in one compiled function
t2 = time.perf_counter()
big = np.ones((4, 32, 40, 40), f); wb = np.ones((32, 32, 3, 3), f)
yb = fastconv.conv2d(big, wb, padding=1)  # dense parallel, row mode, layout copy
fastconv.conv2d(np.ones((4, 3, 64, 64), f), np.ones((32, 3, 7, 7), f), stride=2)  # window
fastconv.conv2d(np.ones((1, 3, 9, 9), f), np.ones((32, 3, 3, 3), f))  # small call
fastconv.conv2d_backward(big, wb, yb, padding=1)  # phases/dense, dense weight, bias
fastconv.conv2d_backward(x, w, y, padding=1)  # small: dense phases, gather weight twin
small = np.ones((1, 4, 8, 8), f)
fastconv.conv2d_backward(small, np.ones((4, 1, 3, 3), f), small, padding=1, groups=4)  # gather
fastconv.conv2d_backward(big, np.ones((32, 1, 3, 3), f), yb, padding=1, groups=32)  # planar
fastconv.conv2d_backward(big, np.ones((24, 32, 1, 1), f), np.ones((4, 24, 40, 40), f))
last = np.ascontiguousarray(big.transpose(0, 2, 3, 1))
fastconv.conv2d_backward(last, wb, np.ascontiguousarray(yb.transpose(0, 2, 3, 1)), padding=1,
                         padding_mode="reflect", channels_last=True)  # gather parallel
fastconv.conv2d_backward(x, w, y, padding=1, needs=("bias",))
t3 = time.perf_counter()
print(f"{t1 - t0:.2f} {t2 - t1:.2f} {t3 - t2:.2f}")
"""


def main():
    """Print the cold and cached timings."""
    script = ALL if "--all" in sys.argv[1:] else SCRIPT
    env = dict(os.environ, NUMBA_CACHE_DIR=tempfile.mkdtemp())
    for label in ("cold", "cached"):
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                                text=True, check=True)
        total = time.perf_counter() - start
        imported, first, rest = result.stdout.split()
        print(f"{label}: import {imported} s, first conv2d call {first} s, the other kernels "
              f"{rest} s, process total {total:.2f} s")


if __name__ == "__main__":
    main()
