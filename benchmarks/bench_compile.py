"""Compile time: the cold JIT compile of the float32 kernels, and a cached first call.

Both run in a fresh interpreter (``timeraw_*``), timing ``import fastconv`` plus the first
call of every float32 2-D kernel: forward with bias, input gradient, weight and bias
gradient, transposed convolution.
"""

import subprocess
import sys

# The calls whose first run compiles (or loads from the cache) the float32 kernels.
CALLS = """
import numpy as np
import fastconv
x = np.ones((2, 4, 8, 8), np.float32)
w = np.ones((4, 4, 3, 3), np.float32)
b = np.ones(4, np.float32)
y = fastconv.conv2d(x, w, b, padding=1)
fastconv.conv2d_input(x.shape, w, y, padding=1)
fastconv.conv2d_backward(x, w, y, padding=1, needs=("weight", "bias"))
fastconv.conv_transpose2d(x, w, b, stride=2, padding=1)
"""


class _Raw:
    timeout = 900.0
    number = 1
    repeat = (1, 3, 120.0)
    warmup_time = 0.0


class ColdCompile(_Raw):
    def timeraw_cold_compile_float32(self):
        # A fresh, empty NUMBA_CACHE_DIR set inside the timed code, before numba is imported.
        return (
            "import os, shutil, tempfile\n"
            "cache = tempfile.mkdtemp(prefix='fastconv-asv-cold-')\n"
            "os.environ['NUMBA_CACHE_DIR'] = cache\n"
            + CALLS
            + "shutil.rmtree(cache, ignore_errors=True)\n"
        )


class CachedFirstCall(_Raw):
    def setup(self):
        # Fill the compile cache a user has after a first run (wherever NUMBA_CACHE_DIR, or
        # its default next to the installed package, puts it); fast if already filled.
        subprocess.run([sys.executable, "-c", CALLS], check=True)

    def timeraw_cached_first_call_float32(self):
        return CALLS
