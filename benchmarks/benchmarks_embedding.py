"""fastconv called from users' own Numba code: the per-call cost without Python in the loop.

One case: 1000 convolutions of a 1x3x8x8 image with 3x3 filters (3 -> 3 channels, padding 1,
float64) into the same ``out=`` buffer, either from a loop compiled with ``@njit`` or from a
Python ``for`` loop. The compiled loop pays no Python overhead per call (argument parsing,
validation in Python, array wrapping), which dominates a convolution this small.
"""

import numpy as np
from numba import njit

import fastconv

try:  # the overloads exist from the embedding issue on; older commits skip this file
    from fastconv import _embed  # noqa: F401
except ImportError:  # pragma: no cover - commits before the embedding issue
    _embed = None

CALLS = 1000


@njit
def _compiled_loop(x, weight, bias, out, calls):
    for _ in range(calls):
        fastconv.conv2d(x, weight, bias, padding=1, out=out)
    return out


def _python_loop(x, weight, bias, out, calls):
    for _ in range(calls):
        fastconv.conv2d(x, weight, bias, padding=1, out=out)
    return out


class TinyConvolutions:
    """1000 tiny ``conv2d(..., out=buf)`` calls: from an ``@njit`` loop or from Python."""

    params = ["njit loop", "python loop"]
    param_names = ["caller"]
    timeout = 600

    def setup(self, caller):
        if _embed is None:
            raise NotImplementedError("fastconv cannot be called from compiled code here")
        rng = np.random.default_rng(0)
        self.x = rng.standard_normal((1, 3, 8, 8))
        self.weight = rng.standard_normal((3, 3, 3, 3))
        self.bias = rng.standard_normal(3)
        self.out = np.empty((1, 3, 8, 8))
        self.loop = _compiled_loop if caller == "njit loop" else _python_loop
        self.loop(self.x, self.weight, self.bias, self.out, 1)  # compile and warm up

    def time_1000_calls(self, caller):
        self.loop(self.x, self.weight, self.bias, self.out, CALLS)
