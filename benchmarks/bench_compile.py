"""Compile time: the cold JIT compile of the float32 kernels, and a cached first call.

All run in a fresh interpreter (``timeraw_*``), timing ``import fastconv`` plus the first
call of every float32 2-D pass (forward with bias, input gradient, weight and bias
gradient, transposed convolution) on small arrays, or, for ``cold_compile_all``, calls that
between them compile every float32 kernel (``python tools/compile_time.py --all`` runs the
same calls and times their parts).
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

#: The first of the calls compiling every float32 kernel: a small layer, which runs whole in
#: one compiled function (what a new user's first call compiles).
FIRST_CALL = """
f = np.float32
x = np.ones((2, 16, 8, 8), f); w = np.ones((16, 16, 3, 3), f)
y = fastconv.conv2d(x, w, padding=1)  # small call: dense in one compiled function
"""

#: The rest: dense forward in row and window mode with the layout copy, the small-call
#: function's other shapes, phases, dense weight gradient, gather and its serial twin,
#: planar, pointwise, weight and bias gradients (bias alone: planar sums and channels-last).
OTHER_KERNELS = """
big = np.ones((4, 32, 40, 40), f); wb = np.ones((32, 32, 3, 3), f)
yb = fastconv.conv2d(big, wb, padding=1)  # Winograd F(2x2, 3x3)
fastconv.conv2d(big, wb, padding=2, dilation=2)  # dense parallel, tiled mode
fastconv.conv2d_input(big.shape, wb, yb, padding=2, dilation=2)  # phases/dense
fastconv.conv3d(np.ones((4, 16, 16, 16, 16), f), np.ones((32, 16, 3, 3, 3), f),
                padding=1)  # Winograd F(2x2x2, 3x3x3)
fastconv.conv2d(np.ones((4, 3, 64, 64), f), np.ones((32, 3, 7, 7), f), stride=2)  # window
fastconv.conv2d(np.ones((1, 3, 9, 9), f), np.ones((32, 3, 3, 3), f))  # small call
fastconv.conv2d_backward(big, wb, yb, padding=1)  # phases/winograd, dense weight, bias
fastconv.conv2d_backward(x, w, y, padding=1)  # small: dense phases, gather weight twin
small = np.ones((1, 4, 8, 8), f)
fastconv.conv2d_backward(small, np.ones((4, 1, 3, 3), f), small, padding=1,
                         groups=4)  # small: gather forward and input twins, planar weight twin
wide = np.ones((4, 64, 20, 20), f)
fastconv.conv2d_input(wide.shape, np.ones((64, 64, 3, 3), f), np.ones((4, 64, 10, 10), f),
                      stride=2, padding=1)  # dense stride phases in one launch (job table)
fastconv.conv2d_backward(big, np.ones((32, 1, 3, 3), f), yb, padding=1, groups=32)  # planar
fastconv.conv2d_backward(big, np.ones((24, 32, 1, 1), f), np.ones((4, 24, 40, 40), f))
last = np.ascontiguousarray(big.transpose(0, 2, 3, 1))
fastconv.conv2d_backward(last, wb, np.ascontiguousarray(yb.transpose(0, 2, 3, 1)), padding=1,
                         padding_mode="reflect", channels_last=True)  # gather parallel
fastconv.conv2d_backward(x, w, y, padding=1, needs=("bias",))  # planar sums' serial twin
fastconv.conv2d_backward(big, wb, yb, padding=1, needs=("bias",))  # planar sums, parallel
fastconv.conv2d_backward(last, wb, np.ascontiguousarray(yb.transpose(0, 2, 3, 1)), padding=1,
                         channels_last=True, needs=("bias",))  # channels-last bias, parallel
dw = np.ones((4, 256, 14, 14), f)
fastconv.conv2d_backward(dw, np.ones((256, 1, 3, 3), f), np.ones((4, 256, 7, 7), f),
                         stride=2, padding=1, groups=256)  # depthwise forward kernel's weight
fastconv.conv2d(dw, np.ones((256, 1, 3, 3), f), stride=2, padding=1, groups=256)  # depthwise
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

    def timeraw_cold_compile_all_float32(self):
        # the float32 kernels of tools/compile_time.py --all (the target: under a minute), in
        # a fresh, empty cache. Four kernels short of every one (the window driver on
        # channels-last input, the layout copy, two serial twins):
        # Precompile.timeraw_cold_precompile_float32 compiles them all
        return (
            "import os, shutil, tempfile\n"
            "cache = tempfile.mkdtemp(prefix='fastconv-asv-cold-')\n"
            "os.environ['NUMBA_CACHE_DIR'] = cache\n"
            "import numpy as np\nimport fastconv\n"
            + FIRST_CALL
            + OTHER_KERNELS
            + "shutil.rmtree(cache, ignore_errors=True)\n"
        )


class Precompile(_Raw):
    def timeraw_cold_precompile_float32(self):
        # every float32 kernel (fastconv.precompile's families: a superset of the calls of
        # cold_compile_all_float32), compiled in this process, in a fresh, empty cache
        return _FRESH_CACHE + "fastconv.precompile(['float32'], jobs=1)\n" + _REMOVE_CACHE

    def timeraw_cold_precompile_parallel_float32(self):
        # the same, one worker process per core (fastconv compile)
        return _FRESH_CACHE + "fastconv.precompile(['float32'])\n" + _REMOVE_CACHE


_FRESH_CACHE = ("import os, shutil, tempfile\n"
                "cache = tempfile.mkdtemp(prefix='fastconv-asv-cold-')\n"
                "os.environ['NUMBA_CACHE_DIR'] = cache\n"
                "import fastconv\n")
_REMOVE_CACHE = "shutil.rmtree(cache, ignore_errors=True)\n"


class CachedFirstCall(_Raw):
    def setup(self):
        # Fill the compile cache a user has after a first run (wherever NUMBA_CACHE_DIR, or
        # its default next to the installed package, puts it); fast if already filled.
        subprocess.run([sys.executable, "-c", CALLS], check=True)

    def timeraw_cached_first_call_float32(self):
        return CALLS
