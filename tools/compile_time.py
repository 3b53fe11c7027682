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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's benchmarks
from benchmarks.bench_compile import FIRST_CALL, OTHER_KERNELS  # noqa: E402

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


ALL = ("import time\nt0 = time.perf_counter()\nimport numpy as np, fastconv\n"
       "t1 = time.perf_counter()\n" + FIRST_CALL + "t2 = time.perf_counter()\n"
       + OTHER_KERNELS + "t3 = time.perf_counter()\n"
       'print(f"{t1 - t0:.2f} {t2 - t1:.2f} {t3 - t2:.2f}")\n')


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
