"""Every bad input of the reliability issue gets its own test.

Each call must raise ``ValueError`` or ``TypeError`` naming the parameter, the value received
and what is allowed, before allocating or compiling anything, and leave its inputs untouched.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

import fastconv

X = np.zeros((2, 4, 8, 7))
W = np.zeros((6, 4, 3, 3))
G = np.zeros((2, 6, 6, 5))  # grad_output of conv2d(X, W)
X1 = np.zeros((1, 2, 5))
W1 = np.zeros((3, 2, 3))

CASES = {
    # stride / dilation / groups
    "stride zero": (lambda: fastconv.conv2d(X, W, stride=0), ValueError, r"stride.*at least 1.*0"),
    "stride tuple zero": (lambda: fastconv.conv2d(X, W, stride=(1, 0)), ValueError,
                          r"stride.*at least 1.*\(1, 0\)"),
    "stride float": (lambda: fastconv.conv2d(X, W, stride=1.5), TypeError,
                     r"stride must be an int or a tuple of 2 ints, got 1\.5"),
    "stride bool": (lambda: fastconv.conv2d(X, W, stride=True), TypeError, r"stride.*True"),
    "stride string": (lambda: fastconv.conv2d(X, W, stride="2"), TypeError, r"stride.*'2'"),
    "dilation zero": (lambda: fastconv.conv2d(X, W, dilation=0), ValueError,
                      r"dilation.*at least 1.*0"),
    "dilation float in tuple": (lambda: fastconv.conv2d(X, W, dilation=(1, 2.0)), TypeError,
                                r"dilation.*\(1, 2\.0\)"),
    "groups zero": (lambda: fastconv.conv2d(X, W, groups=0), ValueError, r"groups.*>= 1.*0"),
    "groups float": (lambda: fastconv.conv2d(X, W, groups=2.0), TypeError, r"groups.*2\.0"),
    # tuple lengths
    "stride length": (lambda: fastconv.conv2d(X, W, stride=(1, 1, 1)), ValueError,
                      r"stride.*2 ints.*\(1, 1, 1\).*length 3"),
    "dilation length": (lambda: fastconv.conv1d(X1, W1, dilation=(1, 1)), ValueError,
                        r"dilation.*length 2"),
    "padding length": (lambda: fastconv.conv2d(X, W, padding=(1, 1, 1)), ValueError,
                       r"padding.*\(1, 1, 1\).*length 3"),
    "output_padding length": (
        lambda: fastconv.conv_transpose2d(X, np.zeros((4, 2, 3, 3)), stride=2,
                                          output_padding=(1,)),
        ValueError, r"output_padding.*length 1"),
    # padding values
    "padding negative": (lambda: fastconv.conv2d(X, W, padding=-1), ValueError,
                         r"padding must not be negative.*-1"),
    "padding negative in tuple": (lambda: fastconv.conv2d(X, W, padding=(1, -2)), ValueError,
                                  r"padding.*negative.*\(1, -2\)"),
    "padding negative pair": (lambda: fastconv.conv2d(X, W, padding=((0, -1), 1)), ValueError,
                              r"padding.*negative"),
    "padding bad pair": (lambda: fastconv.conv2d(X, W, padding=((0, 1, 2), 1)), TypeError,
                         r"padding.*\(low, high\) pairs"),
    "padding unknown string": (lambda: fastconv.conv2d(X, W, padding="causal"), ValueError,
                               r"padding.*'valid', 'same', 'full'.*'causal'"),
    "padding float": (lambda: fastconv.conv2d(X, W, padding=1.0), TypeError, r"padding.*1\.0"),
    "padding_mode unknown": (lambda: fastconv.conv2d(X, W, padding_mode="mirror"), ValueError,
                             r"padding_mode.*'zeros', 'reflect', 'replicate', 'circular'.*"
                             r"'mirror'"),
    "reflect padding too large": (
        lambda: fastconv.conv2d(X, W, padding=(1, 7), padding_mode="reflect"), ValueError,
        r"reflect.*smaller than the input size.*size 7.*padding \(7, 7\)"),
    "reflect padding equal": (
        lambda: fastconv.conv1d(X1, W1, padding=5, padding_mode="reflect"), ValueError,
        r"reflect.*size 5"),
    "circular padding too large": (
        lambda: fastconv.conv1d(X1, W1, padding=6, padding_mode="circular"), ValueError,
        r"circular.*at most the input size.*size 5.*padding \(6, 6\)"),
    "replicate on empty dim": (
        lambda: fastconv.conv1d(np.zeros((1, 2, 0)), W1, padding=2, padding_mode="replicate"),
        ValueError, r"replicate.*empty"),
    # channels and groups
    "groups do not divide c_out": (lambda: fastconv.conv2d(X, np.zeros((5, 2, 3, 3)), groups=2),
                                   ValueError, r"groups=2 must divide the output channels \(5"),
    "c_in mismatch": (lambda: fastconv.conv2d(X, np.zeros((6, 3, 3, 3))), ValueError,
                      r"input channels \(4\) must equal weight.shape\[1\] \* groups = 3 \* 1"),
    "groups do not divide c_in": (
        lambda: fastconv.conv2d(X, np.zeros((6, 1, 3, 3)), groups=3), ValueError,
        r"input channels \(4\).*1 \* 3"),
    "transposed groups": (lambda: fastconv.conv_transpose2d(X, np.zeros((4, 2, 3, 3)), groups=3),
                          ValueError, r"groups=3 must divide the input channels \(4\)"),
    # dims
    "weight ndim": (lambda: fastconv.conv2d(X, np.zeros((6, 4, 3))), ValueError,
                    r"weight must have 4 dims.*\(6, 4, 3\)"),
    "input ndim": (lambda: fastconv.conv2d(np.zeros((8, 7)), W), ValueError,
                   r"x must have 4 dims.*or 3 \(unbatched\).*\(8, 7\)"),
    "input ndim 3d": (lambda: fastconv.conv3d(X[0], np.zeros((6, 4, 3, 3, 3))), ValueError,
                      r"x must have 5 dims"),
    # bias
    "bias 2-D": (lambda: fastconv.conv2d(X, W, np.zeros((6, 1))), ValueError,
                 r"bias must be 1-D.*\(6,\).*\(6, 1\)"),
    "bias length": (lambda: fastconv.conv2d(X, W, np.zeros(5)), ValueError,
                    r"bias.*\(6,\).*\(5,\)"),
    "transposed bias length": (
        lambda: fastconv.conv_transpose2d(X, np.zeros((4, 2, 3, 3)), np.zeros(4)), ValueError,
        r"bias.*\(2,\).*\(4,\)"),
    # kernel larger than padded input
    "kernel too large": (lambda: fastconv.conv2d(X, np.zeros((6, 4, 9, 3))), ValueError,
                         r"dilated kernel.*larger than the padded input.*size 8"),
    "dilated kernel too large": (lambda: fastconv.conv2d(X, W, dilation=(1, 4)), ValueError,
                                 r"dilated kernel.*dilation 4.*span 9.*size 7"),
    # dtypes and non-arrays
    "complex x": (lambda: fastconv.conv2d(X.astype(complex), W), TypeError,
                  r"x has complex dtype complex128"),
    "complex weight": (lambda: fastconv.conv2d(X, W.astype(np.complex64)), TypeError,
                       r"weight has complex dtype"),
    "complex bias": (lambda: fastconv.conv2d(X, W, np.zeros(6, complex)), TypeError,
                     r"bias has complex dtype"),
    "object x": (lambda: fastconv.conv2d(X.astype(object), W), TypeError, r"x has object dtype"),
    "string x": (lambda: fastconv.conv2d(np.full((1, 4, 3, 3), "a"), W), TypeError,
                 r"x has string dtype"),
    "None x": (lambda: fastconv.conv2d(None, W), TypeError, r"x must be an array.*None"),
    "None weight": (lambda: fastconv.conv2d(X, None), TypeError, r"weight must be an array"),
    "ragged x": (lambda: fastconv.conv1d([[1, 2], [3]], W1), ValueError,
                 r"x could not be converted"),
    "longdouble": (lambda: fastconv.conv2d(X.astype(np.longdouble), W), TypeError,
                   r"promote to float128.*float32 or float64"),
    "complex grad_output": (lambda: fastconv.conv2d_input(X.shape, W, G.astype(complex)),
                            TypeError, r"grad_output has complex dtype"),
    # out=
    "out wrong shape": (lambda: fastconv.conv2d(X, W, out=np.empty((2, 6, 6, 6))), ValueError,
                        r"out has shape \(2, 6, 6, 6\) \(expected \(2, 6, 6, 5\)\)"),
    "out wrong dtype": (lambda: fastconv.conv2d(X, W, out=np.empty((2, 6, 6, 5), np.float32)),
                        ValueError, r"out has dtype float32 \(expected float64\)"),
    "out not contiguous": (
        lambda: fastconv.conv2d(X, W, out=np.empty((2, 6, 6, 10))[..., ::2]), ValueError,
        r"out has non-C-contiguous memory"),
    "out Fortran": (lambda: fastconv.conv2d(X, W, out=np.empty((2, 6, 6, 5), order="F")),
                    ValueError, r"out has non-C-contiguous"),
    "out list": (lambda: fastconv.conv2d(X, W, out=[0.0]), ValueError,
                 r"out must be a numpy.ndarray or None, got list"),
    # transposed output_padding
    "output_padding negative": (
        lambda: fastconv.conv_transpose2d(X, np.zeros((4, 2, 3, 3)), stride=2,
                                          output_padding=-1),
        ValueError, r"output_padding must be at least 0.*-1"),
    "output_padding too large": (
        lambda: fastconv.conv_transpose2d(X, np.zeros((4, 2, 3, 3)), stride=2,
                                          output_padding=(1, 2)),
        ValueError, r"output_padding must be smaller than max\(stride, dilation\).*dim 1.*"
                    r"output_padding 2, stride 2, dilation 1"),
    # gradient functions whose arguments do not fit together
    "grad_output shape": (lambda: fastconv.conv2d_input(X.shape, W, np.zeros((2, 6, 6, 6))),
                          ValueError, r"grad_output has shape \(2, 6, 6, 6\).*\(2, 6, 6, 5\)"),
    "grad_output channels": (lambda: fastconv.conv2d_weight(X, W.shape, np.zeros((2, 5, 6, 5))),
                             ValueError, r"grad_output has shape \(2, 5, 6, 5\)"),
    "input_shape channels": (lambda: fastconv.conv2d_input((2, 3, 8, 7), W, G), ValueError,
                             r"input channels \(3\) must equal weight.shape\[1\]"),
    "input_shape ndim": (lambda: fastconv.conv2d_input((8, 7), W, G), ValueError,
                         r"input_shape must have 4 dims"),
    "input_shape type": (lambda: fastconv.conv2d_input("2,4,8,7", W, G), TypeError,
                         r"input_shape must be a tuple of ints"),
    "input_shape negative": (lambda: fastconv.conv2d_input((2, 4, -8, 7), W, G), ValueError,
                             r"input_shape must not have negative sizes"),
    "weight_shape mismatch": (lambda: fastconv.conv2d_weight(X, (6, 2, 3, 3), G), ValueError,
                              r"input channels \(4\) must equal weight_shape\[1\]"),
    "weight_shape ndim": (lambda: fastconv.conv2d_weight(X, (6, 4, 3), G), ValueError,
                          r"weight_shape must have 4 dims"),
    "backward weight mismatch": (
        lambda: fastconv.conv2d_backward(X, np.zeros((6, 4, 3, 2)), G), ValueError,
        r"grad_output has shape \(2, 6, 6, 5\).*\(2, 6, 6, 6\)"),
    "needs unknown": (lambda: fastconv.conv2d_backward(X, W, G, needs=("inputs",)), ValueError,
                      r"needs must be a collection of 'input', 'weight', 'bias'.*'inputs'"),
    "channels_last not bool": (lambda: fastconv.conv2d(X, W, channels_last="yes"), TypeError,
                               r"channels_last must be True or False, got 'yes'"),
    # absurd sizes, refused at once
    "padding 2**62": (lambda: fastconv.conv2d(X, W, padding=2**62), ValueError,
                      r"padding=4611686018427387904 gives a result.*larger than this machine"),
    "kernel 2**32": (lambda: fastconv.conv1d_weight(X1, (3, 2, 2**32), np.zeros((1, 3, 1))),
                     ValueError, r"dilated kernel \(size 4294967296"),
    "huge weight_shape with padding": (
        lambda: fastconv.conv1d_weight(X1, (2**40, 2, 3),
                                       np.broadcast_to(np.zeros(1), (1, 2**40, 3))),
        ValueError, r"weight_shape=\(1099511627776, 2, 3\) gives a result.*larger than this"),
    "huge input_shape": (
        lambda: fastconv.conv1d_input((2**40, 2, 5), W1,
                                      np.broadcast_to(np.zeros(1), (2**40, 3, 3))),
        ValueError, r"input_shape=.*larger than this machine"),
    "transposed huge stride": (
        lambda: fastconv.conv_transpose1d(X1, np.zeros((2, 1, 3)), stride=2**60), ValueError,
        r"stride=1152921504606846976 gives a result.*larger than this machine"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_refused_with_a_clear_message(name):
    call, error, pattern = CASES[name]
    before = [a.copy() for a in (X, W, G, X1, W1)]
    start = time.perf_counter()
    with pytest.raises(error, match=pattern):
        call()
    assert time.perf_counter() - start < 1.0, "validation must not allocate or compile"
    for original, now in zip(before, (X, W, G, X1, W1)):
        np.testing.assert_array_equal(original, now)
