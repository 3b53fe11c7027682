"""Single-channel forward convolution cross-checked against SciPy.

Correspondences (cross-correlation, unit stride and dilation):

* ``scipy.signal.correlate(x, w, mode)``: ``"valid"`` = ``padding="valid"``;
  ``"full"`` = ``padding="full"``; ``"same"`` centres the ``"full"`` result, i.e. pads
  ``(k // 2, k - 1 - k // 2)``, which equals our ``padding="same"`` (extra pad at the end) only
  for odd ``k``.
* ``scipy.ndimage.correlate(x, w, mode)`` places the kernel's origin at ``k // 2``, i.e. the same
  pads ``(k // 2, k - 1 - k // 2)``, and extends the input by ``mode``: ``"mirror"``
  (d c b | a b c d | c b a) is numpy/torch ``reflect``; ``"nearest"`` is ``replicate``;
  ``"wrap"`` is ``circular``; ``"constant"`` (cval 0) is ``zeros``. (ndimage ``"reflect"``
  repeats the edge sample: that is numpy ``"symmetric"``, which fastconv does not offer.)
"""

import math

import numpy as np
import pytest
from scipy import ndimage, signal

from conftest import api, assert_close

SHAPES = {1: [((11,), (1,)), ((11,), (2,)), ((11,), (3,)), ((11,), (4,)), ((10,), (5,))],
          2: [((9, 8), (3, 3)), ((9, 8), (2, 4)), ((7, 9), (1, 5))],
          3: [((6, 5, 7), (3, 2, 3)), ((5, 6, 4), (2, 2, 1))]}
CASES = [pytest.param(nd, size, kernel, id=f"{nd}d-x{size}-k{kernel}".replace(" ", ""))
         for nd, pairs in SHAPES.items() for size, kernel in pairs]
NDIMAGE_MODES = {"constant": "zeros", "mirror": "reflect", "nearest": "replicate",
                 "wrap": "circular"}


def _centred_pads(kernel):
    return tuple((k // 2, k - 1 - k // 2) for k in kernel)


def _conv(x, w, **kwargs):
    """Single-channel, unbatched call: (C=1, *spatial)."""
    return api("conv{nd}d", x.ndim)(x[None], w[None, None], **kwargs)[0]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(("nd", "size", "kernel"), CASES)
def test_signal_correlate(nd, size, kernel, dtype, rng):
    x = rng.standard_normal(size).astype(dtype)
    w = rng.standard_normal(kernel).astype(dtype)
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    n_terms = math.prod(kernel)
    for mode, padding in [("valid", "valid"), ("full", "full"), ("same", _centred_pads(kernel))]:
        expected = signal.correlate(x64, w64, mode=mode, method="direct")
        assert_close(_conv(x, w, padding=padding), expected, n_terms, dtype)
    if all(k % 2 for k in kernel):
        expected = signal.correlate(x64, w64, mode="same", method="direct")
        assert_close(_conv(x, w, padding="same"), expected, n_terms, dtype)


@pytest.mark.parametrize("ndimage_mode", list(NDIMAGE_MODES))
@pytest.mark.parametrize(("nd", "size", "kernel"), CASES)
def test_ndimage_correlate(nd, size, kernel, ndimage_mode, rng):
    x = rng.standard_normal(size)
    w = rng.standard_normal(kernel)
    expected = ndimage.correlate(x, w, mode=ndimage_mode, cval=0.0)
    got = _conv(x, w, padding=_centred_pads(kernel), padding_mode=NDIMAGE_MODES[ndimage_mode])
    assert_close(got, expected, math.prod(kernel), np.float64)
    if all(k % 2 for k in kernel):  # odd kernels: "same" is the centred padding
        got = _conv(x, w, padding="same", padding_mode=NDIMAGE_MODES[ndimage_mode])
        assert_close(got, expected, math.prod(kernel), np.float64)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_signal_correlate_batched_channels(nd, rng):
    """Each (sample, out-channel) is a sum over in-channels of SciPy single-channel results."""
    size, kernel = (8, 7, 6)[:nd], (3, 2, 2)[:nd]
    x = rng.standard_normal((2, 3) + size)
    w = rng.standard_normal((4, 3) + kernel)
    got = api("conv{nd}d", nd)(x, w, padding="full")
    expected = np.array([[sum(signal.correlate(x[n, c], w[o, c], mode="full", method="direct")
                              for c in range(3)) for o in range(4)] for n in range(2)])
    assert_close(got, expected, 3 * math.prod(kernel), np.float64)
