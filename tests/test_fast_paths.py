"""Every fast path against the plain reference, on the same cases.

The forward pass and the adjoint (input gradient, transposed convolution) each have four
algorithms (``convolution.FORCE_FORWARD_ALGORITHM`` picks one): the dense SIMD micro-kernel,
the planar kernel (channels-first, vectorised along the last dimension), the pointwise
kernel (1x1 layers on channels-first data) and the general gather kernel; the weight
gradient has three (``convolution.FORCE_WEIGHT_ALGORITHM``): dense, planar and gather.
Each test forces one, so all are checked on every case whatever the plan would pick (a
forced algorithm that does not apply falls back to gather), and the results must agree
with the naive reference within the dtype's tolerance.
"""

import itertools
import math

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastconv
import naive
from conftest import assert_close, to_channels_first, to_channels_last
from fastconv import (
    _args,
    _dense,
    _depthwise,
    _kernels,
    _plan,
    _planar,
    _runtime,
    _winograd,
    convolution,
)
from fastconv._simd import lanes_for

ALGORITHMS = ["dense", "planar", "pointwise", "winograd", "gather"]
WEIGHT_ALGORITHMS = ["dense", "planar", "gather"]

CASES = [
    # (nd, n, c_in, c_out, size, kernel, stride, padding, dilation)
    (2, 2, 64, 64, (9, 11), (3, 3), 1, 1, 1),
    (2, 1, 16, 40, (12, 7), (3, 3), 2, ((1, 1), (0, 2)), 1),
    (2, 3, 3, 64, (23, 19), (7, 7), 2, 3, 1),
    (2, 2, 32, 17, (6, 6), (1, 1), 1, 0, 1),
    (2, 1, 24, 33, (10, 13), (3, 5), (1, 2), "same", (2, 1)),
    (1, 4, 32, 32, (50,), (9,), 1, 4, 1),
    (1, 2, 5, 19, (31,), (4,), 3, "full", 2),
    (3, 2, 16, 32, (5, 6, 7), (3, 3, 3), 1, 1, 1),
    (3, 1, 8, 24, (6, 5, 9), (2, 3, 3), (2, 1, 2), ((1, 0), (1, 1), (2, 1)), (1, 2, 1)),
    (2, 1, 48, 16, (4, 4), (3, 3), 1, 0, 1),
    # rows longer than the dense weight gradient's span (pieces of rows, a run each), and
    # runs of whole rows split where a span crosses a plane, with tap rows 2 apart
    (2, 1, 8, 16, (5, 150), (3, 3), 1, 1, 1),
    (3, 2, 8, 16, (3, 7, 20), (3, 3, 3), (1, 1, 1), (1, 2, 1), (1, 2, 1)),
]

GROUPED_CASES = [
    # (nd, n, c_in, c_out, groups, size, kernel, stride, padding, dilation, padding_mode)
    (2, 2, 8, 8, 8, (9, 37), (3, 3), 1, 1, 1, "zeros"),
    (2, 1, 1, 1, 1, (40, 70), (5, 5), 1, 2, 1, "reflect"),
    (2, 2, 6, 9, 3, (11, 45), (3, 4), 1, ((1, 2), (2, 1)), (2, 1), "circular"),
    (2, 2, 6, 9, 3, (11, 45), (3, 4), (2, 1), 1, 1, "replicate"),
    (2, 1, 12, 12, 4, (6, 70), (3, 3), (1, 1), "same", (1, 3), "zeros"),
    (1, 2, 4, 4, 4, (100,), (7,), 1, 3, 1, "zeros"),
    (1, 3, 2, 6, 2, (5,), (3,), 1, "full", 2, "zeros"),
    (3, 2, 4, 4, 2, (5, 6, 33), (3, 3, 3), 1, 1, 1, "zeros"),
    (3, 1, 3, 3, 3, (4, 5, 19), (2, 3, 2), (2, 1, 1), ((1, 0), (0, 2), (1, 1)), 1, "reflect"),
    (2, 2, 8, 8, 8, (4, 5), (3, 7), 1, (1, 3), 1, "zeros"),
    (2, 1, 4, 8, 1, (7, 9), (1, 1), 1, 0, 1, "zeros"),
    (2, 2, 16, 16, 1, (7, 7), (3, 3), 1, 0, 1, "zeros"),
    # output channels per group 4 (a triple and one alone), 5 (a triple and a padded
    # pair) and 8 (a block of six and a padded pair): the planar kernel's channel strips
    (2, 1, 4, 8, 2, (5, 19), (3, 3), 1, 1, 1, "zeros"),
    (2, 1, 6, 10, 2, (6, 20), (3, 3), (2, 1), 1, 1, "reflect"),
    (2, 2, 8, 16, 2, (5, 37), (3, 3), 1, 1, 1, "zeros"),
    # rows of at most two vectors (28 and 14 columns), an odd number of them: triples run
    # on pairs of rows, stride 2 and a dilation between them, then the last row alone
    (2, 2, 8, 8, 2, (11, 28), (3, 3), (2, 1), 1, (2, 1), "zeros"),
    (2, 1, 12, 12, 4, (7, 14), (3, 3), 1, 1, 1, "reflect"),
    # a single input channel's 3x3 filter slides down the tile (_slide_rows3x3): two
    # output channels per input channel, a column dilation, one output row, rows of more
    # than two vectors split over several tasks, a 2-D filter inside a 3-D problem
    (2, 2, 4, 8, 4, (7, 33), (3, 3), 1, 1, 1, "zeros"),
    (2, 1, 6, 6, 6, (9, 40), (3, 3), 1, (1, 2), (1, 2), "reflect"),
    (2, 2, 3, 3, 3, (3, 17), (3, 3), 1, 0, 1, "zeros"),
    (2, 1, 2, 2, 2, (70, 130), (3, 3), 1, 1, 1, "circular"),
    # a single input channel's 5x5 filter in strips: rows of two vectors (28 columns), of
    # one (14; a column dilation, two output channels per input channel, padding only on
    # top) and of three, fewer rows than taps
    (2, 2, 6, 6, 6, (30, 28), (5, 5), 1, 2, 1, "zeros"),
    (2, 1, 4, 8, 4, (17, 14), (5, 5), 1, ((2, 0), (4, 4)), (1, 2), "zeros"),
    (2, 1, 2, 2, 2, (3, 45), (5, 5), 1, 2, 1, "replicate"),
    # depthwise 3x3 over zero padding read in place (_direct_rows3x3): rows of more than
    # four vectors, two padded rows on top and none at the bottom or right, blocks of rows
    # of a tall image, and a 3-D filter whose planes above and below the input are padding
    (2, 1, 3, 3, 3, (6, 70), (3, 3), 1, ((2, 0), (1, 0)), 1, "zeros"),
    (2, 2, 2, 2, 2, (300, 21), (3, 3), 1, 1, 1, "zeros"),
    (3, 1, 2, 2, 2, (3, 5, 18), (1, 3, 3), (2, 1, 1), ((1, 2), (1, 1), (1, 1)), 1, "zeros"),
    (3, 1, 4, 4, 4, (3, 9, 21), (1, 3, 3), 1, (0, 1, 1), 1, "replicate"),
    # strides along the last dimension: tile rows split into column phases (a 3x3 stride-2
    # filter as two phases of 3x2 taps; 5x5: 3 columns; dilation 2 on stride 2: one phase;
    # stride 3 over a dilation of 2: gathered phases; reflected pads), output rows of one
    # and of two vectors (eight and four rows a block, a last partial block), channel
    # blocks and triples on phases, a 1-D and a 3-D problem
    (2, 2, 4, 4, 4, (11, 29), (3, 3), 2, 1, 1, "zeros"),
    (2, 1, 3, 3, 3, (13, 58), (5, 5), (1, 2), 2, 1, "zeros"),
    (2, 1, 2, 2, 2, (9, 40), (3, 3), 2, 2, 2, "zeros"),
    (2, 2, 2, 4, 2, (7, 50), (3, 3), (1, 3), (1, 3), (1, 2), "reflect"),
    (2, 1, 16, 16, 2, (10, 41), (3, 3), 2, 1, 1, "zeros"),
    (2, 1, 8, 10, 2, (6, 90), (3, 2), (2, 2), ((0, 1), (1, 2)), 1, "circular"),
    (1, 2, 3, 3, 3, (301,), (4,), 2, 3, 1, "replicate"),
    (3, 1, 4, 4, 4, (3, 8, 37), (3, 3, 3), (1, 2, 2), 1, 1, "zeros"),
    (2, 1, 2, 2, 2, (40, 25), (3, 3), 2, 1, 1, "zeros"),
]
#: The cases with a stride along the last dimension (the planar kernels' column phases).
STRIDED_ROWS = GROUPED_CASES[-9:]
#: The 5x5 single-input-channel filters.
SINGLE5 = [case for case in GROUPED_CASES if case[2] == case[4] and case[6] == (5, 5)
          and case[7] == 1]


@pytest.fixture(params=ALGORITHMS)
def algorithm(request, monkeypatch):
    monkeypatch.setattr(convolution, "FORCE_FORWARD_ALGORITHM", request.param)
    return request.param


@pytest.mark.parametrize("case", CASES, ids=[f"case{i}" for i in range(len(CASES))])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("channels_last", [False, True])
def test_forward_algorithm_matches_naive(algorithm, case, dtype, channels_last):
    nd, n, c_in, c_out, size, kernel, stride, padding, dilation = case
    rng = np.random.default_rng(7)
    x = rng.standard_normal((n, c_in, *size)).astype(dtype)
    weight = rng.standard_normal((c_out, c_in, *kernel)).astype(dtype)
    bias = rng.standard_normal(c_out).astype(dtype)
    options = {"stride": stride, "padding": padding, "dilation": dilation}
    expected = naive.conv(x, weight, bias, **options)
    data = np.ascontiguousarray(to_channels_last(x)) if channels_last else x
    got = getattr(fastconv, f"conv{nd}d")(data, weight, bias, channels_last=channels_last,
                                          **options)
    if channels_last:
        expected = to_channels_last(expected)
    assert_close(got, expected, c_in * int(np.prod(kernel)), dtype)


@pytest.mark.parametrize("case", CASES, ids=[f"case{i}" for i in range(len(CASES))])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("channels_last", [False, True])
def test_adjoint_algorithm_matches_naive(algorithm, case, dtype, channels_last):
    nd, n, c_in, c_out, size, kernel, _, padding, dilation = case
    rng = np.random.default_rng(11)
    x = rng.standard_normal((n, c_in, *size)).astype(dtype)
    weight = rng.standard_normal((c_out, c_in, *kernel)).astype(dtype)
    options = {"stride": 1, "padding": padding, "dilation": dilation}
    grad = rng.standard_normal(naive.conv(x, weight, **options).shape).astype(dtype)
    expected = naive.conv_input(x.shape, weight, grad, **options)
    shape, grad_arg = x.shape, grad
    if channels_last:
        expected = to_channels_last(expected)
        shape = expected.shape
        grad_arg = np.ascontiguousarray(to_channels_last(grad))
    got = getattr(fastconv, f"conv{nd}d_input")(shape, weight, grad_arg,
                                                channels_last=channels_last, **options)
    assert_close(got, expected, c_out * int(np.prod(kernel)), dtype)
    if isinstance(padding, str):
        return
    transposed = getattr(fastconv, f"conv_transpose{nd}d")(
        grad_arg, weight, padding=padding, dilation=dilation, channels_last=channels_last)
    assert_close(transposed[tuple(slice(0, s) for s in expected.shape)], expected,
                 c_out * int(np.prod(kernel)), dtype)


@pytest.mark.parametrize("case", CASES, ids=[f"case{i}" for i in range(len(CASES))])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("channels_last", [False, True])
def test_weight_algorithm_matches_naive(weight_algorithm, case, dtype, channels_last):
    nd, n, c_in, c_out, size, kernel, stride, padding, dilation = case
    rng = np.random.default_rng(13)
    x = rng.standard_normal((n, c_in, *size)).astype(dtype)
    weight_shape = (c_out, c_in, *kernel)
    options = {"stride": stride, "padding": padding, "dilation": dilation}
    grad = rng.standard_normal(naive.conv(x, np.zeros(weight_shape), **options).shape)
    grad = grad.astype(dtype)
    expected = naive.conv_weight(x, weight_shape, grad, **options)
    data, grad_arg = x, grad
    if channels_last:
        data = np.ascontiguousarray(to_channels_last(x))
        grad_arg = np.ascontiguousarray(to_channels_last(grad))
    got = getattr(fastconv, f"conv{nd}d_backward")(data, np.zeros(weight_shape, dtype),
                                                   grad_arg, needs=("weight", "bias"),
                                                   channels_last=channels_last, **options)
    pixels = n * int(np.prod(grad.shape[2:]))
    assert_close(got[1], expected, pixels, dtype)
    assert_close(got[2], naive.conv_bias(grad, nd), pixels, dtype)


@pytest.mark.parametrize("case", CASES[:4], ids=[f"case{i}" for i in range(4)])
def test_dense_results_do_not_depend_on_thread_count(case, monkeypatch):
    import numba

    monkeypatch.setattr(convolution, "FORCE_FORWARD_ALGORITHM", "dense")
    nd, n, c_in, c_out, size, kernel, stride, padding, dilation = case
    rng = np.random.default_rng(3)
    x = rng.standard_normal((n, c_in, *size)).astype(np.float32)
    weight = rng.standard_normal((c_out, c_in, *kernel)).astype(np.float32)
    conv = getattr(fastconv, f"conv{nd}d")
    options = {"stride": stride, "padding": padding, "dilation": dilation}
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        single = conv(x, weight, **options)
    finally:
        numba.set_num_threads(threads)
    assert conv(x, weight, **options).tobytes() == single.tobytes()
    assert conv(x[1:], weight, **options).tobytes() == single[1:].tobytes()
    monkeypatch.setattr(convolution, "FORCE_WEIGHT_ALGORITHM", "dense")
    grad = rng.standard_normal(single.shape).astype(np.float32)
    weight_grad = getattr(fastconv, f"conv{nd}d_weight")
    try:
        numba.set_num_threads(1)
        single_weight = weight_grad(x, weight.shape, grad, **options)
    finally:
        numba.set_num_threads(threads)
    assert weight_grad(x, weight.shape, grad, **options).tobytes() == single_weight.tobytes()


@settings(deadline=None, max_examples=max(20, settings.default.max_examples // 3))
@given(nd=st.integers(1, 3), c_in=st.integers(1, 40), c_out=st.integers(1, 40),
       kernel=st.integers(1, 4), stride=st.integers(1, 3), dilation=st.integers(1, 2),
       low=st.integers(0, 3), high=st.integers(0, 3), extra=st.integers(0, 6),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**31))
def test_dense_matches_naive_on_random_configurations(nd, c_in, c_out, kernel, stride,
                                                      dilation, low, high, extra, dtype,
                                                      seed):
    span = dilation * (kernel - 1) + 1
    size = (max(1, span - low - high) + extra,) * nd
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, c_in, *size)).astype(dtype)
    weight = rng.standard_normal((c_out, c_in) + (kernel,) * nd).astype(dtype)
    options = {"stride": stride, "padding": ((low, high),) * nd, "dilation": dilation}
    expected = naive.conv(x, weight, **options)
    previous = convolution.FORCE_FORWARD_ALGORITHM
    convolution.FORCE_FORWARD_ALGORITHM = "dense"
    try:
        got = getattr(fastconv, f"conv{nd}d")(x, weight, **options)
    finally:
        convolution.FORCE_FORWARD_ALGORITHM = previous
    assert_close(got, expected, c_in * kernel**nd, dtype)


@pytest.fixture(params=WEIGHT_ALGORITHMS)
def weight_algorithm(request, monkeypatch):
    monkeypatch.setattr(convolution, "FORCE_WEIGHT_ALGORITHM", request.param)
    return request.param


def _grouped_problem(case, dtype, seed):
    nd, n, c_in, c_out, groups, size, kernel, stride, padding, dilation, mode = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c_in, *size)).astype(dtype)
    weight = rng.standard_normal((c_out, c_in // groups, *kernel)).astype(dtype)
    bias = rng.standard_normal(c_out).astype(dtype)
    options = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups,
               "padding_mode": mode}
    grad = rng.standard_normal(naive.conv(x, weight, **options).shape).astype(dtype)
    return nd, x, weight, bias, grad, options


@pytest.mark.parametrize("case", GROUPED_CASES,
                         ids=[f"grouped{i}" for i in range(len(GROUPED_CASES))])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_grouped_and_padded_cases_match_naive(algorithm, weight_algorithm, case, dtype):
    nd, x, weight, bias, grad, options = _grouped_problem(case, dtype, 5)
    reduction = weight.shape[1] * int(np.prod(weight.shape[2:]))
    got = getattr(fastconv, f"conv{nd}d")(x, weight, bias, **options)
    assert_close(got, naive.conv(x, weight, bias, **options), reduction, dtype)
    grad_input = getattr(fastconv, f"conv{nd}d_input")(x.shape, weight, grad, **options)
    fan_out = weight.shape[0] // options["groups"] * int(np.prod(weight.shape[2:]))
    assert_close(grad_input, naive.conv_input(x.shape, weight, grad, **options), fan_out, dtype)
    grad_weight, grad_bias = getattr(fastconv, f"conv{nd}d_backward")(
        x, weight, grad, needs=("weight", "bias"), **options)[1:]
    pixels = grad.shape[0] * int(np.prod(grad.shape[2:]))
    assert_close(grad_weight, naive.conv_weight(x, weight.shape, grad, **options), pixels, dtype)
    assert_close(grad_bias, naive.conv_bias(grad, nd), pixels, dtype)


@pytest.mark.parametrize("case", GROUPED_CASES[:5], ids=[f"grouped{i}" for i in range(5)])
def test_planar_results_do_not_depend_on_thread_count(case, monkeypatch):
    import numba

    monkeypatch.setattr(convolution, "FORCE_FORWARD_ALGORITHM", "planar")
    monkeypatch.setattr(convolution, "FORCE_WEIGHT_ALGORITHM", "planar")
    nd, x, weight, bias, grad, options = _grouped_problem(case, np.float32, 9)

    def passes(batch):
        return (getattr(fastconv, f"conv{nd}d")(x[batch], weight, bias, **options),
                getattr(fastconv, f"conv{nd}d_input")(x[batch].shape, weight, grad[batch],
                                                      **options),
                getattr(fastconv, f"conv{nd}d_weight")(x[batch], weight.shape, grad[batch],
                                                       **options))

    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        single = passes(slice(None))
    finally:
        numba.set_num_threads(threads)
    for one, many in zip(single, passes(slice(None))):
        assert one.tobytes() == many.tobytes()
    assert passes(slice(1, None))[0].tobytes() == single[0][1:].tobytes()


@pytest.mark.parametrize("case", GROUPED_CASES[:10] + STRIDED_ROWS + SINGLE5,
                         ids=[f"grouped{i}" for i in range(10)]
                         + [f"strided{i}" for i in range(len(STRIDED_ROWS))]
                         + [f"single5x5_{i}" for i in range(len(SINGLE5))])
def test_planar_results_do_not_depend_on_rows_per_task(case, monkeypatch):
    """The planar forward kernel's tasks each copy the input rows their output rows read
    (their own and the neighbours' halo) into a padded tile; whatever the rows per task,
    every output is the same sum, bit for bit, and matches the naive reference. (Whole
    planes per task run rows of at most two vectors in blocks of four or eight rows.)"""
    monkeypatch.setattr(convolution, "FORCE_FORWARD_ALGORITHM", "planar")
    nd, x, weight, bias, grad, options = _grouped_problem(case, np.float32, 13)
    conv = getattr(fastconv, f"conv{nd}d")
    conv_input = getattr(fastconv, f"conv{nd}d_input")
    results = []
    for rows in (1, 2, 3, 7, 1 << 30):
        monkeypatch.setattr(_plan, "planar_row_block", lambda *args, rows=rows: min(rows, args[1]))
        convolution.clear_plans()
        results.append((conv(x, weight, bias, **options),
                        conv_input(x.shape, weight, grad, **options)))
    convolution.clear_plans()
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert a.tobytes() == b.tobytes()
    reduction = weight.shape[1] * int(np.prod(weight.shape[2:]))
    assert_close(results[0][0], naive.conv(x, weight, bias, **options), reduction, np.float32)


DEPTHWISE_CASES = [
    # (nd, n, channels, size, kernel, stride, padding, dilation): the channel-vector kernel
    # (_depthwise): whole blocks of lanes and a partial one (20 and 17 channels: the
    # scalar copies), 7x7 planes, strides and dilations along each dimension, padding
    # wider than the filter's reach on one side, none on the other, a 1-D and a 3-D
    # problem (taps along D0), fewer output pixels than a register tile; enough tasks of a
    # row or two for several to share a tile (pad rows of one are input rows of another)
    (2, 2, 32, (7, 7), (7, 7), 1, 3, 1),
    (2, 3, 64, (20, 20), (5, 5), 1, 2, 1),
    (2, 2, 20, (14, 13), (3, 3), 2, 1, 1),
    (2, 1, 17, (11, 30), (5, 5), (1, 2), ((2, 0), (4, 1)), (2, 1)),
    (2, 3, 16, (9, 9), (3, 5), (3, 1), (1, 2), 1),
    (2, 1, 48, (3, 3), (3, 3), 1, 0, 1),
    (2, 1, 16, (6, 40), (7, 3), 1, ((6, 6), (0, 0)), 1),
    (1, 2, 24, (50,), (9,), 2, 4, 1),
    (3, 1, 16, (4, 6, 7), (3, 3, 3), (1, 2, 1), 1, (2, 1, 1)),
    # the last input column read by no window, beside a padded first column (which it must
    # not overwrite), and a stride wider than a register tile of pixels
    (2, 1, 16, (9, 15), (3, 3), 2, ((1, 0), (1, 0)), 1),
    (2, 1, 16, (5, 40), (3, 3), (1, 13), ((1, 1), (2, 0)), 1),
    # a stride-2 layer whose input gradient the shape's own choice runs on the spread
    # output gradient
    (2, 1, 96, (14, 14), (3, 3), 2, 1, 1),
]


def _depthwise_problem(case, dtype, seed):
    nd, n, channels, size, kernel, stride, padding, dilation = case
    return _grouped_problem((nd, n, channels, channels, channels, size, kernel, stride,
                             padding, dilation, "zeros"), dtype, seed)


@pytest.mark.parametrize("case", DEPTHWISE_CASES,
                         ids=[f"depthwise{i}" for i in range(len(DEPTHWISE_CASES))])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_depthwise_kernel_matches_naive_and_planar(case, dtype, monkeypatch):
    """The channel-vector depthwise kernel (forward, and the adjoint: a stride-1 one's
    phase, a strided one's spread output gradient) against the naive reference, and bit
    for bit against the planar kernel (the same sums in the same order) where that one
    needs no column phases."""
    nd, x, weight, bias, grad, options = _depthwise_problem(case, dtype, 17)
    conv = getattr(fastconv, f"conv{nd}d")
    conv_input = getattr(fastconv, f"conv{nd}d_input")
    calls = []
    run = convolution._DepthwisePass.__call__
    monkeypatch.setattr(convolution._DepthwisePass, "__call__",
                        lambda *args: calls.append(1) or run(*args))
    results = {}
    for forced in ("depthwise", "planar"):
        monkeypatch.setattr(convolution, "FORCE_FORWARD_ALGORITHM", forced)
        convolution.clear_plans()
        results[forced] = conv(x, weight, bias, **options)
    assert len(calls) == 1
    convolution.clear_plans()
    taps = int(np.prod(weight.shape[2:]))
    assert_close(results["depthwise"], naive.conv(x, weight, bias, **options), taps, dtype)
    if np.all(np.atleast_1d(options["stride"])[-1:] == 1):
        assert results["depthwise"].tobytes() == results["planar"].tobytes()
    monkeypatch.setattr(convolution, "FORCE_FORWARD_ALGORITHM", "depthwise")
    got = conv_input(x.shape, weight, grad, **options)
    convolution.clear_plans()
    assert len(calls) == 2
    expected = naive.conv_input(x.shape, weight, grad, **options)
    assert_close(got, expected, taps, dtype)
    if case == DEPTHWISE_CASES[-1]:
        monkeypatch.setattr(convolution, "FORCE_FORWARD_ALGORITHM", None)
        got = conv_input(x.shape, weight, grad, **options)
        convolution.clear_plans()
        assert len(calls) == 3
        assert_close(got, expected, taps, dtype)


@pytest.mark.parametrize("case", DEPTHWISE_CASES,
                         ids=[f"depthwise{i}" for i in range(len(DEPTHWISE_CASES))])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_depthwise_weight_gradient_matches_naive(case, dtype, monkeypatch):
    """The channel-vector weight and bias gradients against the naive reference, the same
    bits on one thread as on all of them."""
    import numba

    nd, x, weight, _, grad, options = _depthwise_problem(case, dtype, 23)
    monkeypatch.setattr(convolution, "FORCE_WEIGHT_ALGORITHM", "depthwise")
    calls = []
    run = convolution._DepthwiseWeightPass.__call__
    monkeypatch.setattr(convolution._DepthwiseWeightPass, "__call__",
                        lambda *args: calls.append(1) or run(*args))
    backward = getattr(fastconv, f"conv{nd}d_backward")
    convolution.clear_plans()
    grad_weight, grad_bias = backward(x, weight, grad, needs=("weight", "bias"), **options)[1:]
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        convolution.clear_plans()
        single = backward(x, weight, grad, needs=("weight", "bias"), **options)[1:]
    finally:
        numba.set_num_threads(threads)
        convolution.clear_plans()
    assert len(calls) == 2
    pixels = grad.shape[0] * int(np.prod(grad.shape[2:]))
    assert_close(grad_weight, naive.conv_weight(x, weight.shape, grad, **options), pixels, dtype)
    assert_close(grad_bias, naive.conv_bias(grad, nd), pixels, dtype)
    assert single[0].tobytes() == grad_weight.tobytes()
    assert single[1].tobytes() == grad_bias.tobytes()


@pytest.mark.parametrize("case", DEPTHWISE_CASES[:4],
                         ids=[f"depthwise{i}" for i in range(4)])
def test_depthwise_results_do_not_depend_on_rows_per_task(case, monkeypatch):
    """Whatever the rows per task and the tasks per chunk (and so the tile reused across
    tasks with other pad rows, or, for a strided layer's input gradient, other rows of
    spread zeros), every output is the same sum, bit for bit."""
    monkeypatch.setattr(convolution, "FORCE_FORWARD_ALGORITHM", "depthwise")
    nd, x, weight, bias, grad, options = _depthwise_problem(case, np.float32, 19)
    conv = getattr(fastconv, f"conv{nd}d")
    conv_input = getattr(fastconv, f"conv{nd}d_input")
    results = []
    for rows, per in itertools.product((1, 2, 3, 1 << 30), (1, 1 << 30)):
        monkeypatch.setattr(_plan, "depthwise_row_block", lambda *args, rows=rows:
                            min(rows, args[0]))
        monkeypatch.setattr(_plan, "depthwise_tasks_per_chunk", lambda tasks, _, per=per:
                            min(per, tasks))
        convolution.clear_plans()
        results.append((conv(x, weight, bias, **options),
                        conv_input(x.shape, weight, grad, **options)))
    convolution.clear_plans()
    for other in results[1:]:
        assert other[0].tobytes() == results[0][0].tobytes()
        assert other[1].tobytes() == results[0][1].tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("channels, kernel", [(16, (3, 3)), (20, (7, 7)), (3, (5,)),
                                               (40, (2, 3, 4)), (33, (1, 1))])
def test_depthwise_weights_pack_into_lane_blocks(channels, kernel, dtype):
    """Packed depthwise weights: block ``b``, tap ``t``, lane ``l`` is channel ``b * L + l``'s
    tap ``t``, zeros past the last channel (whole and partial blocks of lanes and taps)."""
    lanes = lanes_for(dtype)
    weight = np.random.default_rng(5).standard_normal((channels, 1, *kernel)).astype(dtype)
    full = (1,) * (3 - len(kernel)) + kernel
    blocks = -(-channels // lanes)
    padded = np.zeros((blocks * lanes, *full), dtype)
    padded[:channels] = weight.reshape(channels, *full)
    expected = np.moveaxis(padded.reshape(blocks, lanes, *full), 1, -1)
    got = _depthwise.pack_lanes(weight.reshape(channels, 1, *full))
    assert got.shape == expected.shape
    assert got.tobytes() == np.ascontiguousarray(expected).tobytes()


def test_depthwise_layers_choose_channel_vectors():
    """Small-plane, strided and wide-filter depthwise layers run across channels; wide
    unit-stride 3x3 ones and layers with fewer channels than lanes stay planar."""
    def forward(x_shape, kernel, stride=1):
        channels = x_shape[1]
        return fastconv.explain(x_shape, (channels, 1, *kernel), stride=stride,
                                padding=kernel[0] // 2, groups=channels)[0].algorithm

    assert forward((8, 384, 14, 14), (7, 7)) == "depthwise"
    assert forward((8, 768, 7, 7), (3, 3)) == "depthwise"
    assert forward((8, 256, 56, 56), (3, 3), 2) == "depthwise"
    assert forward((8, 96, 56, 56), (7, 7)) == "depthwise"
    assert forward((8, 96, 56, 56), (3, 3)) == "planar"
    assert forward((8, 8, 28, 28), (7, 7)) == "planar"
    # strided input gradients on the spread output gradient, except filters wider than
    # three taps per phase on rows longer than two vectors
    def adjoint(x_shape, kernel, stride):
        channels = x_shape[1]
        return fastconv.explain(x_shape, (channels, 1, *kernel), stride=stride,
                                padding=kernel[0] // 2, groups=channels)[1].algorithm

    assert adjoint((8, 576, 14, 14), (3, 3), 2) == "spread/depthwise"
    assert adjoint((8, 240, 28, 28), (5, 5), 2) == "spread/depthwise"
    assert adjoint((8, 64, 57, 57), (3, 3), 3) == "spread/depthwise"
    assert adjoint((8, 192, 28, 28), (7, 7), 2) == "spread/depthwise"
    assert adjoint((8, 96, 56, 56), (7, 7), 2) == "phases/planar"
    assert adjoint((8, 8, 56, 56), (3, 3), 2) == "phases/planar"
    # weight gradients: output rows of at most one and a half vectors
    assert fastconv.explain((8, 960, 7, 7), (960, 1, 3, 3), padding=1,
                            groups=960)[2].algorithm == "depthwise"
    assert fastconv.explain((8, 384, 14, 14), (384, 1, 3, 3), padding=1,
                            groups=384)[2].algorithm == "depthwise"
    assert fastconv.explain((8, 144, 28, 28), (144, 1, 3, 3), padding=1,
                            groups=144)[2].algorithm == "planar"


@pytest.mark.parametrize("value", [np.inf, np.nan])
@pytest.mark.parametrize("padding", [0, 1])
@pytest.mark.parametrize("stride", [1, 2])
def test_planar_border_data_never_leaks(value, padding, stride, monkeypatch):
    """Tile slack and masked tails read nothing outside each output's window, and neither
    does a depthwise filter sliding down the input's own rows (zero padding of one), nor
    the column phases of a stride along the rows."""
    monkeypatch.setattr(convolution, "FORCE_FORWARD_ALGORITHM", "planar")
    monkeypatch.setattr(convolution, "FORCE_WEIGHT_ALGORITHM", "planar")
    x = np.ones((1, 2, 6, 21 - padding))
    x[:, :, :, -1] = value  # read only by the last output column (no padding on the right)
    weight = np.ones((2, 1, 3, 3))
    options = {"groups": 2, "padding": ((padding, padding), (padding, 0)),
               "stride": (1, stride)}
    got = fastconv.conv2d(x, weight, **options)
    assert np.isfinite(got[..., :-1]).all()
    assert not np.isfinite(got[..., -1]).any()
    grad = np.zeros(got.shape)
    grad[..., :-1] = 1.0
    grad_weight = fastconv.conv2d_weight(x, weight.shape, grad, **options)
    assert np.isfinite(grad_weight[..., :2]).all()
    assert not np.isfinite(grad_weight[..., 2]).any()


@settings(deadline=None, max_examples=max(20, settings.default.max_examples // 3))
@given(nd=st.integers(1, 3), groups=st.integers(1, 4), in_group=st.integers(1, 3),
       out_group=st.integers(1, 9), kernel=st.integers(1, 5), stride=st.integers(1, 2),
       last_stride=st.integers(1, 3), dilation=st.integers(1, 2), low=st.integers(0, 2),
       high=st.integers(0, 2), extra=st.integers(0, 40),
       mode=st.sampled_from(["zeros", "reflect", "replicate", "circular"]),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**31))
def test_planar_matches_naive_on_random_configurations(nd, groups, in_group, out_group, kernel,
                                                       stride, last_stride, dilation, low,
                                                       high, extra, mode, dtype, seed):
    span = dilation * (kernel - 1) + 1
    size = (max(1, span - low - high, low + 1, high + 1) + extra % 7,) * (nd - 1) \
        + (max(1, span - low - high, low + 1, high + 1) + extra,)
    case = (nd, 2, groups * in_group, groups * out_group, groups, size, (kernel,) * nd,
            (stride,) * (nd - 1) + (last_stride,), ((low, high),) * nd, dilation, mode)
    nd, x, weight, bias, grad, options = _grouped_problem(case, dtype, seed)
    previous = convolution.FORCE_FORWARD_ALGORITHM, convolution.FORCE_WEIGHT_ALGORITHM
    convolution.FORCE_FORWARD_ALGORITHM = convolution.FORCE_WEIGHT_ALGORITHM = "planar"
    try:
        got = getattr(fastconv, f"conv{nd}d")(x, weight, bias, **options)
        grad_weight = getattr(fastconv, f"conv{nd}d_weight")(x, weight.shape, grad, **options)
        grad_input = getattr(fastconv, f"conv{nd}d_input")(x.shape, weight, grad, **options)
    finally:
        convolution.FORCE_FORWARD_ALGORITHM, convolution.FORCE_WEIGHT_ALGORITHM = previous
    assert_close(got, naive.conv(x, weight, bias, **options), in_group * kernel**nd, dtype)
    pixels = grad.shape[0] * int(np.prod(grad.shape[2:]))
    assert_close(grad_weight, naive.conv_weight(x, weight.shape, grad, **options), pixels, dtype)
    # replicated and reflected pads send several outputs to one edge input: up to
    # (kernel + low + high) per dimension
    assert_close(grad_input, naive.conv_input(x.shape, weight, grad, **options),
                 out_group * (kernel + low + high)**nd, dtype)


@settings(deadline=None, max_examples=max(20, settings.default.max_examples // 3))
@given(nd=st.integers(1, 3), channels=st.integers(1, 40), kernel=st.integers(1, 7),
       stride=st.integers(1, 3), last_stride=st.integers(1, 4), dilation=st.integers(1, 2),
       low=st.integers(0, 4), high=st.integers(0, 4), extra=st.integers(0, 30),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**31))
def test_depthwise_matches_naive_on_random_configurations(nd, channels, kernel, stride,
                                                          last_stride, dilation, low, high,
                                                          extra, dtype, seed):
    """The channel-vector depthwise kernel's forward and weight gradient (and the input
    gradient: a stride-1 one's phase, a strided one's spread output gradient, where the
    pads are within the filter's reach) on random zero-padded depthwise layers: any
    channel count (partial lane blocks), stride, dilation and padding."""
    span = dilation * (kernel - 1) + 1
    size = (max(1, span - low - high) + extra % 5,) * (nd - 1) + \
        (max(1, span - low - high) + extra,)
    case = (nd, 2, channels, size, (kernel,) * nd, (stride,) * (nd - 1) + (last_stride,),
            ((low, high),) * nd, dilation)
    nd, x, weight, bias, grad, options = _depthwise_problem(case, dtype, seed)
    previous = convolution.FORCE_FORWARD_ALGORITHM, convolution.FORCE_WEIGHT_ALGORITHM
    convolution.FORCE_FORWARD_ALGORITHM = convolution.FORCE_WEIGHT_ALGORITHM = "depthwise"
    try:
        got = getattr(fastconv, f"conv{nd}d")(x, weight, bias, **options)
        grad_weight = getattr(fastconv, f"conv{nd}d_weight")(x, weight.shape, grad, **options)
        grad_input = getattr(fastconv, f"conv{nd}d_input")(x.shape, weight, grad, **options)
    finally:
        convolution.FORCE_FORWARD_ALGORITHM, convolution.FORCE_WEIGHT_ALGORITHM = previous
    taps = kernel**nd
    assert_close(got, naive.conv(x, weight, bias, **options), taps, dtype)
    pixels = grad.shape[0] * int(np.prod(grad.shape[2:]))
    assert_close(grad_weight, naive.conv_weight(x, weight.shape, grad, **options), pixels, dtype)
    assert_close(grad_input, naive.conv_input(x.shape, weight, grad, **options), taps, dtype)


@settings(deadline=None, max_examples=max(20, settings.default.max_examples // 3))
@given(nd=st.integers(1, 3), groups=st.integers(1, 3), in_group=st.integers(1, 12),
       out_group=st.integers(1, 12), kernel=st.integers(1, 5), stride=st.integers(1, 4),
       dilation=st.integers(1, 3), low=st.integers(0, 6), high=st.integers(0, 6),
       extra=st.integers(0, 9), channels_last=st.booleans(),
       algorithm=st.sampled_from(["dense", "planar"]),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**31))
def test_stride_phases_match_naive_on_random_configurations(nd, groups, in_group, out_group,
                                                            kernel, stride, dilation, low,
                                                            high, extra, channels_last,
                                                            algorithm, dtype, seed):
    """Adjoints split into stride phases: strides above the kernel (empty phases), dilations
    sharing factors with the stride, pads beyond the kernel span (offset gradients)."""
    span = dilation * (kernel - 1) + 1
    size = (max(1, span - low - high) + extra,) * nd
    rng = np.random.default_rng(seed)
    x_shape = (2, groups * in_group, *size)
    weight = rng.standard_normal((groups * out_group, in_group) + (kernel,) * nd).astype(dtype)
    options = {"stride": stride, "padding": ((low, high),) * nd, "dilation": dilation,
               "groups": groups}
    grad = rng.standard_normal(naive.conv(np.zeros(x_shape), weight, **options).shape)
    grad = grad.astype(dtype)
    expected = naive.conv_input(x_shape, weight, grad, **options)
    shape, grad_arg = x_shape, grad
    if channels_last:
        expected = to_channels_last(expected)
        shape = expected.shape
        grad_arg = np.ascontiguousarray(to_channels_last(grad))
    previous = convolution.FORCE_FORWARD_ALGORITHM
    convolution.FORCE_FORWARD_ALGORITHM = algorithm
    try:
        got = getattr(fastconv, f"conv{nd}d_input")(shape, weight, grad_arg,
                                                    channels_last=channels_last, **options)
    finally:
        convolution.FORCE_FORWARD_ALGORITHM = previous
    assert_close(got, expected, out_group * kernel**nd, dtype)


@pytest.mark.parametrize(("part_bytes", "samples"), [(1, 1), (15000, 2)])
def test_planar_stride_phases_run_part_of_the_batch_at_a_time(part_bytes, samples,
                                                             monkeypatch):
    """Planar stride phases run every phase on a part of the batch (its output gradient
    within ``_PHASE_SOURCE_BYTES``) before the next part: one sample or two at a time,
    a last smaller part included, the same bits as the whole batch at once."""
    rng = np.random.default_rng(61)
    x_shape = (5, 3, 19, 22)
    weight = rng.standard_normal((16, 3, 7, 7)).astype(np.float32)
    options = {"stride": 2, "padding": 3}
    grad = rng.standard_normal(naive.conv(np.zeros(x_shape), weight, **options).shape)
    grad = grad.astype(np.float32)
    assert fastconv.explain(x_shape, weight.shape, **options)[1].algorithm == "phases/planar"
    whole = fastconv.conv2d_input(x_shape, weight, grad, **options)
    monkeypatch.setattr(convolution, "_PHASE_SOURCE_BYTES", part_bytes)
    fastconv.clear_plans()
    parts = fastconv.conv2d_input(x_shape, weight, grad, **options)
    fastconv.clear_plans()
    assert max(1, part_bytes // grad[0].nbytes) == samples  # 7040 bytes a sample
    assert parts.tobytes() == whole.tobytes()
    assert_close(parts, naive.conv_input(x_shape, weight, grad, **options), 16 * 16,
                 np.float32)


POINTWISE_CASES = [
    # (nd, n, c_in, c_out, groups, size): output channels per group 6, 7, 13, 17 (full and
    # partial six-channel blocks), pixel counts that end in partial vectors
    (2, 2, 32, 17, 1, (6, 6)),
    (2, 1, 12, 14, 2, (5, 9)),
    (1, 3, 5, 6, 1, (37,)),
    (3, 2, 9, 13, 1, (3, 4, 5)),
    (2, 2, 8, 24, 4, (4, 33)),
    (2, 1, 3, 6, 3, (1, 1)),
]


@pytest.mark.parametrize("case", POINTWISE_CASES,
                         ids=[f"pointwise{i}" for i in range(len(POINTWISE_CASES))])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pointwise_matches_naive(case, dtype, monkeypatch):
    """The pointwise kernel (forward, and the input gradient of a 1x1 layer) and the dense
    weight gradient reading channels-first input in place."""
    monkeypatch.setattr(convolution, "FORCE_FORWARD_ALGORITHM", "pointwise")
    monkeypatch.setattr(convolution, "FORCE_WEIGHT_ALGORITHM", "dense")
    nd, n, c_in, c_out, groups, size = case
    rng = np.random.default_rng(17)
    x = rng.standard_normal((n, c_in, *size)).astype(dtype)
    weight = rng.standard_normal((c_out, c_in // groups) + (1,) * nd).astype(dtype)
    bias = rng.standard_normal(c_out).astype(dtype)
    grad = rng.standard_normal((n, c_out, *size)).astype(dtype)
    options = {"groups": groups}
    got = getattr(fastconv, f"conv{nd}d")(x, weight, bias, **options)
    assert_close(got, naive.conv(x, weight, bias, **options), c_in // groups, dtype)
    assert_close(getattr(fastconv, f"conv{nd}d")(x, weight, **options),
                 naive.conv(x, weight, **options), c_in // groups, dtype)
    grad_input = getattr(fastconv, f"conv{nd}d_input")(x.shape, weight, grad, **options)
    assert_close(grad_input, naive.conv_input(x.shape, weight, grad, **options),
                 c_out // groups, dtype)
    grad_weight, grad_bias = getattr(fastconv, f"conv{nd}d_backward")(
        x, weight, grad, needs=("weight", "bias"), **options)[1:]
    pixels = n * int(np.prod(size))
    assert_close(grad_weight, naive.conv_weight(x, weight.shape, grad, **options), pixels,
                 dtype)
    assert_close(grad_bias, naive.conv_bias(grad, nd), pixels, dtype)


def test_pointwise_is_chosen_and_results_do_not_depend_on_thread_count():
    import numba

    rng = np.random.default_rng(19)
    x = rng.standard_normal((3, 40, 9, 23)).astype(np.float32)
    weight = rng.standard_normal((30, 40, 1, 1)).astype(np.float32)
    plans = fastconv.explain(x.shape, weight.shape)
    assert [p.algorithm for p in plans[:2]] == ["pointwise", "phases/pointwise"]
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        single = fastconv.conv2d(x, weight), fastconv.conv2d_input(x.shape, weight, x[:, :30])
    finally:
        numba.set_num_threads(threads)
    assert fastconv.conv2d(x, weight).tobytes() == single[0].tobytes()
    assert fastconv.conv2d(x[1:], weight).tobytes() == single[0][1:].tobytes()
    assert fastconv.conv2d_input(x.shape, weight, x[:, :30]).tobytes() == single[1].tobytes()
    # channels-last data, a padded or strided 1x1 layer take other kernels
    assert fastconv.explain(x.shape, weight.shape, padding=1)[0].algorithm != "pointwise"
    assert fastconv.explain(x.shape, weight.shape, stride=2)[0].algorithm != "pointwise"


@settings(deadline=None, max_examples=max(20, settings.default.max_examples // 3))
@given(nd=st.integers(1, 3), groups=st.integers(1, 3), in_group=st.integers(1, 20),
       out_group=st.integers(1, 20), size=st.integers(1, 40), n=st.integers(1, 3),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**31))
def test_pointwise_matches_naive_on_random_configurations(nd, groups, in_group, out_group, size,
                                                          n, dtype, seed):
    rng = np.random.default_rng(seed)
    shape = (size,) + (1 + size % 5,) * (nd - 1)
    x = rng.standard_normal((n, groups * in_group, *shape)).astype(dtype)
    weight = rng.standard_normal((groups * out_group, in_group) + (1,) * nd).astype(dtype)
    bias = rng.standard_normal(groups * out_group).astype(dtype)
    grad = rng.standard_normal((n, groups * out_group, *shape)).astype(dtype)
    previous = convolution.FORCE_FORWARD_ALGORITHM
    convolution.FORCE_FORWARD_ALGORITHM = "pointwise"
    try:
        got = getattr(fastconv, f"conv{nd}d")(x, weight, bias, groups=groups)
        grad_input = getattr(fastconv, f"conv{nd}d_input")(x.shape, weight, grad, groups=groups)
    finally:
        convolution.FORCE_FORWARD_ALGORITHM = previous
    assert_close(got, naive.conv(x, weight, bias, groups=groups), in_group, dtype)
    assert_close(grad_input, naive.conv_input(x.shape, weight, grad, groups=groups), out_group,
                 dtype)


def test_work_arrays_are_reused_and_keep_results_exact(monkeypatch):
    """Padded and layout copies come from the work-array pool: a second call (reusing the
    arrays and their zero borders) and a call after clearing give identical results. (One
    block of 16 output channels: the row-mode kernel, which reads a padded copy; window-mode
    layers copy into per-task tiles instead.)"""
    from fastconv import _workspace

    monkeypatch.setattr(_workspace, "MIN_BYTES", 0)
    monkeypatch.setattr(convolution, "FORCE_FORWARD_ALGORITHM", "dense")
    monkeypatch.setattr(convolution, "FORCE_WEIGHT_ALGORITHM", "dense")
    rng = np.random.default_rng(23)
    x = rng.standard_normal((2, 16, 9, 11)).astype(np.float32)
    weight = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    grad = rng.standard_normal((2, 16, 9, 11)).astype(np.float32)

    def passes(scale):
        return fastconv.conv2d_backward(x * scale, weight, grad * scale, padding=1)

    fastconv.clear_plans()
    first = passes(1.0)
    assert _workspace._idle_bytes > 0
    passes(-3.0)  # other values through the same work arrays
    again = passes(1.0)
    for a, b in zip(first, again):
        assert a.tobytes() == b.tobytes()
    expected = naive.conv_weight(x, weight.shape, grad, padding=1)
    assert_close(again[1], expected, 2 * 9 * 11, np.float32)
    fastconv.clear_plans()
    assert _workspace._idle_bytes == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(2, 19, 301), (1, 64, 256), (3, 3, 1000), (1, 1, 7),
                                   (2, 17, 16)])
def test_channels_last_copy_is_an_exact_transpose(shape, dtype):
    """The vectorised layout copy (square blocks transposed in registers, scalar edges), of
    whole planes and of a slab of each plane (channel and sample strides of their own)."""
    from fastconv import _jit, _kernels

    _jit.ensure_compiled(_kernels.channels_last_copy, _kernels.channels_last_signature,
                         np.dtype(dtype))
    whole = np.random.default_rng(29).standard_normal((*shape[:2], shape[2] + 9)).astype(dtype)
    low = np.zeros(3, np.int64)
    low.flags.writeable = False
    for src in (np.ascontiguousarray(whole[:, :, :shape[2]]), whole[:, :, 5:5 + shape[2]]):
        dst = np.full((shape[0], 1, 1, shape[2], shape[1]), np.nan, dtype)
        planes = src[:, :, None, None, :]
        planes.flags.writeable = False
        _kernels.channels_last_copy(planes, dst, low)
        assert np.array_equal(dst[:, 0, 0], src.transpose(0, 2, 1))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("shape", "low", "high"), [
    ((2, 19, 3, 5, 37), (1, 2, 3), (0, 1, 2)),
    ((1, 8, 1, 14, 14), (0, 1, 1), (0, 1, 1)),
    ((3, 3, 1, 1, 40), (0, 0, 4), (0, 0, 0)),
    ((2, 16, 4, 3, 9), (2, 0, 0), (1, 0, 0)),
    ((1, 5, 2, 2, 8), (0, 0, 0), (0, 2, 0)),
])
def test_channels_last_copy_into_a_padded_buffer(shape, low, high, dtype):
    """The layout copy writes the interior of a larger buffer (a row at a time) exactly and
    leaves its margins alone; planes with sample and channel strides of their own too."""
    from fastconv import _jit, _kernels

    _jit.ensure_compiled(_kernels.channels_last_copy, _kernels.channels_last_signature,
                         np.dtype(dtype))
    n, c, *spatial = shape
    rng = np.random.default_rng(37)
    whole = rng.standard_normal((n + 1, c + 2, *spatial)).astype(dtype)
    margins = np.array(low, np.int64)
    margins.flags.writeable = False
    for planes in (np.ascontiguousarray(whole[:n, :c]), whole[1:, 2:]):
        planes.flags.writeable = False
        padded = [s + lo + hi for s, lo, hi in zip(spatial, low, high)]
        dst = np.full((n, *padded, c), -7.0, dtype)
        _kernels.channels_last_copy(planes, dst, margins)
        interior = (slice(None), *(slice(lo, lo + s) for lo, s in zip(low, spatial)))
        assert np.array_equal(dst[interior], planes.transpose(0, 2, 3, 4, 1))
        dst[interior] = -7.0
        assert (dst == -7.0).all()


@pytest.mark.parametrize(("conv", "spatial", "options"), [
    (fastconv.conv1d, (401,), {"padding": "same", "dilation": 2}),
    (fastconv.conv2d, (19, 23), {"padding": ((2, 0), (1, 3))}),
    (fastconv.conv2d, (30, 29), {"padding": 1, "stride": 2}),
    (fastconv.conv3d, (10, 11, 12), {"padding": (1, 1, 2), "dilation": (1, 1, 2)}),
])
def test_zero_padded_copies_are_bitwise_the_kernels_own_padding(conv, spatial, options,
                                                                 monkeypatch):
    """A padded channels-first input is copied to channels-last with zero margins, and the
    kernel reads every window in place; a channels-last input is read with the kernel's own
    zero handling. Same arithmetic, so bitwise the same, forward and input gradient (whose
    stride phases read one padded copy together); the padded copy must really be made.
    (One block of 16 channels each way: the row-mode kernel, which reads such copies;
    window-mode layers copy per task, see test_tiled_mode_is_bitwise_the_copied_input.)"""
    monkeypatch.setattr(convolution, "FORCE_FORWARD_ALGORITHM", "dense")
    made = []
    padded_copy = convolution._padded_copy

    def spy(*args):
        copy = padded_copy(*args)
        made.append(copy is not None)
        return copy

    monkeypatch.setattr(convolution, "_padded_copy", spy)
    rng = np.random.default_rng(41)
    x = rng.standard_normal((8, 16, *spatial)).astype(np.float32)
    weight = rng.standard_normal((16, 16, *(3,) * len(spatial))).astype(np.float32)
    first = conv(x, weight, **options)
    assert made and all(made)
    last = conv(np.ascontiguousarray(to_channels_last(x)), weight, channels_last=True,
                **options)
    assert np.ascontiguousarray(to_channels_last(first)).tobytes() == last.tobytes()
    grad = rng.standard_normal(first.shape).astype(np.float32)
    conv_input = getattr(fastconv, f"{conv.__name__}_input")
    made.clear()
    grad_input = conv_input(x.shape, weight, grad, **options)
    assert made and all(made)
    grad_input_last = conv_input(to_channels_last(x).shape, weight,
                                 np.ascontiguousarray(to_channels_last(grad)),
                                 channels_last=True, **options)
    assert np.ascontiguousarray(to_channels_last(grad_input)).tobytes() == \
        grad_input_last.tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dense_weight_gradient_of_channels_first_views(dtype, monkeypatch):
    """The dense weight gradient packs a channels-first output gradient a run of adjacent
    pixels at a time through in-register transposes: runs cut by a cropped view's rows,
    pixels at a stride (runs of one), channel counts that are no multiple of a vector."""
    monkeypatch.setattr(convolution, "FORCE_WEIGHT_ALGORITHM", "dense")
    rng = np.random.default_rng(53)
    x = rng.standard_normal((3, 12, 17, 26)).astype(dtype)
    weight_shape = (37, 12, 3, 3)
    wide = rng.standard_normal((3, 37, 19, 60)).astype(dtype)
    for grad in (wide[:, :, 1:-1, 3:29], wide[:, :, 1:-1, ::2][..., :26],
                 np.ascontiguousarray(wide[:, :, 1:-1, 3:29])):
        got = fastconv.conv2d_weight(x, weight_shape, grad, padding=1)
        assert_close(got, naive.conv_weight(x, weight_shape, grad, padding=1),
                     3 * 17 * 26, dtype)


def test_zero_padded_copy_of_planes_with_gaps(monkeypatch):
    """Channels-first planes whose pixels are not adjacent (every other column of a wider
    array) are copied into the padded buffer by NumPy, not the transposing kernel: the
    result is still the convolution."""
    monkeypatch.setattr(convolution, "FORCE_FORWARD_ALGORITHM", "dense")
    rng = np.random.default_rng(47)
    wide = rng.standard_normal((8, 20, 19, 46)).astype(np.float32)
    x = wide[..., ::2]
    weight = rng.standard_normal((24, 20, 3, 3)).astype(np.float32)
    assert convolution._adjacent_planes(x[:, :, None]) is None
    assert_close(fastconv.conv2d(x, weight, padding=1), naive.conv(x, weight, padding=1),
                 20 * 9, np.float32)
    assert_close(fastconv.conv2d(np.ascontiguousarray(x), weight, padding=1),
                 naive.conv(x, weight, padding=1), 20 * 9, np.float32)


def test_huge_padding_is_left_to_the_kernel(monkeypatch):
    """A padding that would make the copy much larger than the input is not copied: the
    kernel handles it (and the result is still the convolution)."""
    monkeypatch.setattr(convolution, "FORCE_FORWARD_ALGORITHM", "dense")
    rng = np.random.default_rng(43)
    x = rng.standard_normal((2, 16, 6, 6)).astype(np.float32)
    weight = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    windows = ((0, 1), (-20, 26), (-20, 26))
    assert convolution._padded_copy(x.transpose(0, 2, 3, 1)[:, None], [windows], 1e12) is None
    result = fastconv.conv2d(x, weight, padding=20)
    assert_close(result, naive.conv(x, weight, padding=20), 16 * 9, np.float32)


@pytest.mark.parametrize("batch", [1, 3, 9])
def test_dense_results_do_not_depend_on_layout_or_copy_parts(batch, monkeypatch):
    """Channels-first data is copied to channels-last a part of the batch at a time; the
    kernel's arithmetic is the same, so both layouts give bitwise identical results."""
    monkeypatch.setattr(convolution, "FORCE_FORWARD_ALGORITHM", "dense")
    monkeypatch.setattr(convolution, "FORCE_WEIGHT_ALGORITHM", "dense")
    rng = np.random.default_rng(31)
    x = rng.standard_normal((batch, 20, 9, 13)).astype(np.float32)
    weight = rng.standard_normal((24, 20, 3, 3)).astype(np.float32)
    options = {"padding": 1, "stride": (1, 2)}
    first = fastconv.conv2d(x, weight, **options)
    last = fastconv.conv2d(np.ascontiguousarray(to_channels_last(x)), weight,
                           channels_last=True, **options)
    assert np.ascontiguousarray(to_channels_last(first)).tobytes() == last.tobytes()
    grad = rng.standard_normal(first.shape).astype(np.float32)
    grad_input = fastconv.conv2d_input(x.shape, weight, grad, **options)
    grad_input_last = fastconv.conv2d_input(
        to_channels_last(x).shape, weight, np.ascontiguousarray(to_channels_last(grad)),
        channels_last=True, **options)
    assert np.ascontiguousarray(to_channels_last(grad_input)).tobytes() == \
        grad_input_last.tobytes()
    assert_close(fastconv.conv2d_weight(x, weight.shape, grad, **options),
                 naive.conv_weight(x, weight.shape, grad, **options),
                 batch * int(np.prod(grad.shape[2:])), np.float32)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", ["row", "window"])
@pytest.mark.parametrize("tile", [6, 8])
@pytest.mark.parametrize("c_out", [3, 8, 20, 37])
def test_dense_staged_channels_first_output_is_bitwise_the_channels_last_one(dtype, mode, tile,
                                                                           c_out):
    """Channels-first outputs are staged per task and written through in-register
    transposes (tasks spanning samples, ragged pixel and channel edges), a stride phase's
    strided target a channel at a time along each row; staged, unstaged (one element at a
    time) and channels-last outputs hold the same bits."""
    import numba

    from fastconv import _dense

    rng = np.random.default_rng(37)
    batch, c_in, size = 3, 5, (2, 9, 23)
    x = rng.standard_normal((batch, *size, c_in)).astype(dtype)
    weight = rng.standard_normal((c_out, c_in, 1, 3, 3)).astype(dtype)
    bias = rng.standard_normal(c_out).astype(dtype)
    packed = _dense.pack_weights(weight)
    out_shape = (batch, *size, c_out)
    geometry = ((1, 1, 1), (1, 1, 1), (0, 1, 1))
    expected = np.empty(out_shape, dtype)
    planes = np.full((batch, c_out, *size), np.nan, dtype)
    view = planes.transpose(0, 2, 3, 4, 1)
    wide = np.full((batch, c_out, size[0], 2 * size[1], 2 * size[2]), np.nan, dtype)
    phase = wide[:, :, :, ::2, ::2].transpose(0, 2, 3, 4, 1)
    assert _dense.stages_output(view) and not _dense.stages_output(expected)
    # strided pixels: staged and written a channel at a time along each row, or from the
    # lane buffer when the plan reserved no stage (staged=False below)
    assert _dense.stages_output(phase)
    for threads in (1, numba.get_num_threads()):
        for group in (1, 3, None):
            for staged in (True, False):
                def plan(out, staged=staged, group=group, threads=threads):
                    return _dense.dense_plan(x.shape, packed.shape, out.shape, np.dtype(dtype),
                                             *geometry, tile, group, mode, threads, staged)
                _dense.run_dense(plan(expected), x, packed, bias, expected)
                planes[...] = np.nan
                _dense.run_dense(plan(view), x, packed, bias, view)
                assert np.ascontiguousarray(view).tobytes() == expected.tobytes()
                # a stride phase's target: every other row and column of larger planes
                wide[...] = np.nan
                _dense.run_dense(plan(phase), x, packed, bias, phase)
                assert np.ascontiguousarray(phase).tobytes() == expected.tobytes()
                assert np.isnan(wide[:, :, :, 1::2]).all() and np.isnan(wide[..., 1::2]).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", [
    # (batch, c_in, c_out, size, kernel, stride, dilation, pad_low)
    (1, 3, 8, (1, 8, 8), (1, 3, 3), (1, 1, 1), (1, 1, 1), (0, 1, 1)),
    (2, 5, 37, (1, 6, 7), (1, 2, 3), (1, 2, 1), (1, 1, 2), (0, 0, 2)),
    (1, 2, 3, (3, 4, 5), (2, 2, 2), (1, 1, 1), (1, 1, 1), (1, 1, 1)),
    (3, 1, 1, (1, 1, 9), (1, 1, 4), (1, 1, 3), (1, 1, 1), (0, 0, 2)),
])
def test_small_dense_call_is_bitwise_the_dense_driver(case, dtype):
    """A small call runs layout copies, packing and the serial driver in one compiled
    function; on strided views (a channels-first input, a flipped kernel, a channels-first
    output) it gives the bits of the dense driver on contiguous arrays."""
    from fastconv import _dense

    batch, c_in, c_out, size, kernel, stride, dilation, pad_low = case
    rng = np.random.default_rng(41)
    planes = rng.standard_normal((batch, c_in, *size)).astype(dtype)
    x = planes.transpose(0, 2, 3, 4, 1)
    stored = rng.standard_normal((c_in, c_out, *kernel)).astype(dtype)
    weight = np.swapaxes(stored[:, :, ::-1, ::-1, ::-1], 0, 1)  # an adjoint's view
    bias = rng.standard_normal(c_out).astype(dtype)
    out_size = tuple((n + 2 * p - d * (k - 1) - 1) // s + 1 for n, p, d, k, s in
                     zip(size, pad_low, dilation, kernel, stride))
    call = _dense.small_call(x.shape, weight.shape, (batch, *out_size, c_out),
                             np.dtype(dtype), stride, dilation, pad_low)
    assert call is not None
    for b in (bias, None):
        expected = np.empty((batch, *out_size, c_out), dtype)
        _dense.dense_forward(np.ascontiguousarray(x), _dense.pack_weights(weight), b, expected,
                             stride, dilation, pad_low)
        out = np.full((batch, c_out, *out_size), np.nan, dtype)
        _dense.run_small(call, x, weight, b, out.transpose(0, 2, 3, 4, 1))
        assert np.ascontiguousarray(out.transpose(0, 2, 3, 4, 1)).tobytes() == \
            expected.tobytes()


@pytest.mark.parametrize("batch", [1, 5])
def test_dense_stride_phases_share_one_layout_copy(batch, monkeypatch):
    """A channels-first stride-2 input gradient copies each part of the batch to
    channels-last once for all its dense phases; it matches the naive reference and, bit
    for bit, the channels-last call (whose phases read the gradient in place)."""
    rng = np.random.default_rng(43)
    x_shape = (batch, 24, 23, 26)
    weight = rng.standard_normal((40, 24, 3, 4)).astype(np.float32)
    options = {"stride": 2, "padding": (1, 2)}
    out = naive.conv(np.zeros(x_shape), weight, **options)
    grad = rng.standard_normal(out.shape).astype(np.float32)
    plan = fastconv.explain(x_shape, weight.shape, **options)[1]
    assert plan.algorithm == "phases/dense"
    got = fastconv.conv2d_input(x_shape, weight, grad, **options)
    assert_close(got, naive.conv_input(x_shape, weight, grad, **options), 40 * 6, np.float32)
    last = fastconv.conv2d_input(to_channels_last(np.zeros(x_shape)).shape, weight,
                                 np.ascontiguousarray(to_channels_last(grad)),
                                 channels_last=True, **options)
    assert np.ascontiguousarray(to_channels_last(got)).tobytes() == last.tobytes()


def _spy_weight_passes(monkeypatch) -> list:
    """The weight-gradient passes planned from now on (a list filled as they are made)."""
    passes = []
    weight_pass = convolution._weight_pass

    def spy(*args):
        made = weight_pass(*args)
        passes.append(made)
        return made

    monkeypatch.setattr(convolution, "_weight_pass", spy)
    return passes


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("x_shape", "weight_shape", "options"), [
    ((1, 3, 8, 8), (3, 3, 3, 3), {"padding": 1}),  # a tiny call (3 -> 3 channels)
    ((2, 4, 9, 7), (4, 1, 3, 3), {"padding": 1, "groups": 4}),
    ((1, 2, 5, 11), (6, 1, 2, 3), {"padding": ((1, 0), (2, 2)), "groups": 2,
                                   "padding_mode": "reflect"}),
])
def test_small_planar_weight_gradient_runs_its_serial_twin(x_shape, weight_shape, options,
                                                           dtype, monkeypatch):
    """A small call whose shape chose the planar weight gradient keeps it, on the calling
    thread (its serial twin): the same tasks as the parallel kernel, so the same bits, and
    the naive reference's values, the bias gradient too."""
    rng = np.random.default_rng(61)
    x = rng.standard_normal(x_shape).astype(dtype)
    weight = rng.standard_normal(weight_shape).astype(dtype)
    grad = rng.standard_normal(naive.conv(x, weight, **options).shape).astype(dtype)
    passes = _spy_weight_passes(monkeypatch)
    serial = fastconv.conv2d_backward(x, weight, grad, needs=("weight", "bias"), **options)
    assert passes[-1].kernel is _planar.planar_weight_grad_serial
    monkeypatch.setattr(_kernels, "SERIAL_MAX_WORK", 0)  # the same plan, the parallel kernel
    convolution.clear_plans()
    parallel = fastconv.conv2d_backward(x, weight, grad, needs=("weight", "bias"), **options)
    assert passes[-1].kernel is _planar.planar_weight_grad
    for a, b in zip(serial[1:], parallel[1:]):
        assert a.tobytes() == b.tobytes()
    reduction = grad.shape[0] * math.prod(grad.shape[2:])
    assert_close(serial[1], naive.conv_weight(x, weight_shape, grad, **options), reduction,
                 dtype)
    assert_close(serial[2], grad.sum(axis=(0, 2, 3), dtype=np.float64), reduction, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_small_weight_gradient_prefers_planar_to_gather(dtype, monkeypatch):
    """A small channels-first call whose shape chose the dense weight gradient (no serial
    driver: float64's wider blocks, 3 -> 8 channels) runs the planar kernel's serial twin,
    not the gather kernel's; the naive reference's values."""
    rng = np.random.default_rng(62)
    x = rng.standard_normal((1, 3, 8, 8)).astype(dtype)
    weight = rng.standard_normal((8, 3, 3, 3)).astype(dtype)
    grad = rng.standard_normal((1, 8, 8, 8)).astype(dtype)
    passes = _spy_weight_passes(monkeypatch)
    convolution.clear_plans()
    got = fastconv.conv2d_backward(x, weight, grad, needs=("weight", "bias"), padding=1)
    assert passes[-1].kernel is _planar.planar_weight_grad_serial
    assert_close(got[1], naive.conv_weight(x, weight.shape, grad, padding=1), 64, dtype)
    assert_close(got[2], grad.sum(axis=(0, 2, 3), dtype=np.float64), 64, dtype)


def _launched_job_kinds(monkeypatch) -> list[list[int]]:
    """Record the kinds (0 row, 1 window, 2 tiled) of every job table run.

    Jobs run at once, so none may flush a stride phase's stage by blending into the other
    phases' elements (stage layout 2, see ``_dense._flush_stage``): a race.
    """
    kinds = []
    run_jobs = _dense.run_jobs

    def spy(table, *args):
        kinds.append(table.jobs[:, _dense._J_KIND].tolist())
        for dims in (_dense._J_DIMS, _dense._J_LAST_DIMS):
            assert 2 not in table.jobs[:, dims + 17]
        return run_jobs(table, *args)

    monkeypatch.setattr(_dense, "run_jobs", spy)
    return kinds


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("route", "batch"), [("tiled", 3), ("copied", 5), ("parts", 5),
                                              ("self-packed", 2)])
def test_dense_stride_phases_run_in_one_launch(route, batch, dtype, monkeypatch):
    """The dense stride phases of a channels-first adjoint run in one launch per part of the
    batch (a job table): tiled (every phase's tasks copy their own input rows, the whole
    batch at once) when the phases' packed weights fit the spare memory, else on a
    channels-last copy, part by part (tables shifted to the next part, a new one for a last
    smaller part), with window- and row-mode (self-packing) jobs. Each route matches the
    naive reference and, bit for bit, the channels-last call (one launch per phase)."""
    rng = np.random.default_rng(59)
    block = _dense.block_size(dtype)
    x_shape = (batch, 2 * block + 3, 29, 28)  # two channel blocks and a partial one
    weight = rng.standard_normal((37, x_shape[1], 3, 3)).astype(dtype)
    bias = rng.standard_normal(x_shape[1]).astype(dtype)
    options = {"stride": 2, "padding": 1}
    grad = rng.standard_normal((batch, 37, 15, 14)).astype(dtype)
    if route != "tiled":
        monkeypatch.setattr(convolution, "_TILED_PHASE_BYTES", 0)
    if route == "parts":  # spare memory for two samples' copy: parts of 2, 2, 1
        sample = math.prod(grad.shape[1:]) * grad.itemsize
        monkeypatch.setattr(_plan, "EXTRA_MEMORY", 0.0)
        monkeypatch.setattr(convolution, "_spare_bytes", lambda *args: 2.5 * sample)
    if route == "self-packed":
        monkeypatch.setattr(_dense, "SELF_PACK_BYTES", 0)
    kinds = _launched_job_kinds(monkeypatch)
    got = fastconv.conv2d_input(x_shape, weight, grad, **options)
    kind, tables = {"tiled": (2, 1), "copied": (1, None), "parts": (1, 3),
                    "self-packed": (0, None)}[route]
    assert kinds and all(table == [kind] * 4 for table in kinds)
    assert tables is None or len(kinds) == tables
    assert_close(got, naive.conv_input(x_shape, weight, grad, **options), 37 * 4, dtype)
    last = fastconv.conv2d_input(to_channels_last(np.zeros(x_shape)).shape, weight,
                                 np.ascontiguousarray(to_channels_last(grad)),
                                 channels_last=True, **options)
    assert np.ascontiguousarray(to_channels_last(got)).tobytes() == last.tobytes()
    with _runtime.dynamic_schedule():  # the slices of the jobs handed out one at a time
        assert fastconv.conv2d_input(x_shape, weight, grad, **options).tobytes() == \
            got.tobytes()
    # the transposed convolution (the same adjoint) adds its bias in every phase
    kinds.clear()
    y = fastconv.conv_transpose2d(grad, weight, bias, output_padding=(0, 1), **options)
    assert kinds and all(table == [kind] * 4 for table in kinds)
    assert_close(y, naive.conv_input(x_shape, weight, grad, **options)
                 + bias[:, None, None], 37 * 4, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tiled_stride_phases_keep_their_job_table(dtype, monkeypatch):
    """The tiled stride phases plan their job table once per layout of the operands: later
    calls of the same shapes (new arrays, new weights, another bias) run it moved to their
    own arrays and packed weights, and another layout (a strided output gradient) plans
    its own; every result matches the naive reference."""
    rng = np.random.default_rng(61)
    block = _dense.block_size(dtype)
    x_shape = (3, 2 * block + 3, 29, 28)
    options = {"stride": 2, "padding": 1}
    built = []
    job_table = _dense.job_table

    def spy(calls):
        built.append(len(calls))
        return job_table(calls)

    monkeypatch.setattr(_dense, "job_table", spy)
    kinds = _launched_job_kinds(monkeypatch)
    convolution.clear_plans()
    wide = rng.standard_normal((3, 2 * 37, 15, 14)).astype(dtype)
    for grad in [rng.standard_normal((3, 37, 15, 14)).astype(dtype) for _ in range(3)] + [
            wide[:, ::2]]:
        weight = rng.standard_normal((37, x_shape[1], 3, 3)).astype(dtype)
        got = fastconv.conv2d_input(x_shape, weight, grad, **options)
        assert_close(got, naive.conv_input(x_shape, weight, grad, **options), 37 * 4, dtype)
        bias = rng.standard_normal(x_shape[1]).astype(dtype)
        y = fastconv.conv_transpose2d(grad, weight, bias, output_padding=(0, 1), **options)
        assert_close(y, naive.conv_input(x_shape, weight, grad, **options)
                     + bias[:, None, None], 37 * 4, dtype)
    assert kinds and all(table == [2] * 4 for table in kinds)
    # eight calls, two passes (input gradient, transposed), two layouts of the gradient
    assert len(kinds) == 8 and built == [4] * 4


def packed_reference(w: np.ndarray, block: int) -> np.ndarray:
    """The dense kernels' packed weights, element by element: ``packed[b, k0, k1, k2, c, j]
    = w[b * block + j, c, k0, k1, k2]``, zeros past the output channels."""
    c_out, c_in, k0, k1, k2 = w.shape
    blocks = -(-c_out // block)
    packed = np.zeros((blocks, k0, k1, k2, c_in, block), w.dtype)
    for b, j in itertools.product(range(blocks), range(block)):
        if b * block + j < c_out:
            packed[b, ..., j] = np.moveaxis(w[b * block + j], 0, -1)
    return packed


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(40, 24, 1, 3, 3), (19, 5, 1, 1, 9), (16, 7, 2, 3, 3),
                                   (20, 6, 1, 2, 2), (33, 4, 1, 1, 3), (16, 3, 1, 7, 7)])
def test_a_thread_packs_a_weight_block_as_pack_weights_does(shape, dtype):
    """``_dense._pack_block`` (in-register transposes when a channel pair's taps are adjacent
    elements, element by element otherwise) writes exactly ``pack_weights``'s block, for
    C-contiguous weights, the flipped and transposed view of a stride-1 adjoint, a stride
    phase's view, weights strided along the channels or along one tap axis, full and partial
    blocks, and nothing past the block."""
    from fastconv import _dense

    rng = np.random.default_rng(7)
    wide = rng.standard_normal((shape[0], 2 * shape[1], *shape[2:])).astype(dtype)
    w = np.ascontiguousarray(wide[:, :shape[1]])
    views = [w, w.transpose(1, 0, 2, 3, 4)[:, :, ::-1, ::-1, ::-1],
             w.transpose(1, 0, 2, 3, 4)[:, :, :, ::-2, ::-2], wide[:, ::2],
             np.ascontiguousarray(w[..., ::-1]), w[:, :, :, ::2]]
    # blocks of two vectors, and of one on hosts with one-vector tiles
    lanes = _dense.block_size(dtype) // 2
    for view, kb_size in itertools.product(views, (2 * lanes, lanes) if _dense.NARROW else
                                           (2 * lanes,)):
        if view.size == 0:
            continue
        src, desc = _dense.weight_source(view, np.dtype(dtype), kb_size)
        expected = packed_reference(view, kb_size)
        assert _dense.pack_weights(view, kb_size).tobytes() == expected.tobytes()
        block = expected[0].size
        for kb in range(expected.shape[0]):
            got = np.full(block + 64, 7, dtype)
            _dense._pack_block(src, desc, kb, got)
            assert got[:block].tobytes() == expected[kb].tobytes()
            assert (got[block:] == 7).all()


@pytest.mark.skipif(not _dense.NARROW, reason="no one-vector tiles on this host")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("c_out", [1, 3, -1, 0])
def test_one_vector_blocks_are_bitwise_the_two_vector_ones(c_out, dtype):
    """Layers with at most one vector of output channels run one-vector tiles (``_ntile8``)
    on weights packed in one-vector blocks, packed ahead or by the threads: the same sums
    in the same order as the two-vector tiles, so the same bits, into channels-last,
    staged channels-first and stride-phase outputs, with interior, border and tail tiles."""
    lanes = _dense.block_size(dtype) // 2
    c_out = lanes + c_out if c_out <= 0 else c_out  # lanes - 1 and lanes
    rng = np.random.default_rng(59)
    batch, c_in, size = 2, 7, (2, 9, 13)
    x = rng.standard_normal((batch, *size, c_in)).astype(dtype)
    weight = rng.standard_normal((c_out, c_in, 2, 3, 3)).astype(dtype)
    bias = rng.standard_normal(c_out).astype(dtype)
    geometry = ((1, 1, 1), (1, 1, 2), (1, 1, 2))
    out_size = (size[0] + 1, size[1], size[2])
    assert _dense.packed_shape(c_out, c_in, (2, 3, 3), np.dtype(dtype))[-1] == lanes
    wide = _dense.pack_weights(weight)
    narrow = _dense.pack_weights(weight, lanes)
    narrow_source = _dense.weight_source(weight, np.dtype(dtype), lanes)
    expected = np.empty((batch, *out_size, c_out), dtype)
    plan = _dense.dense_plan(x.shape, wide.shape, expected.shape, np.dtype(dtype), *geometry,
                             None, None, "row", 2)
    _dense.run_dense(plan, x, wide, bias, expected)
    planes = np.empty((batch, c_out, *out_size), dtype)
    wider = np.empty((batch, c_out, out_size[0], 2 * out_size[1], 2 * out_size[2]), dtype)
    targets = [np.empty_like(expected), planes.transpose(0, 2, 3, 4, 1),
               wider[:, :, :, ::2, ::2].transpose(0, 2, 3, 4, 1)]
    for out, (weights, self_pack) in itertools.product(
            targets, ((narrow, False), (narrow_source, True))):
        out[...] = np.nan
        for threads, group in ((1, 1), (2, None)):
            plan = _dense.dense_plan(x.shape, narrow.shape, out.shape, np.dtype(dtype),
                                     *geometry, None, group, None, threads,
                                     _dense.stages_output(out), self_pack)
            _dense.run_dense(plan, x, weights, bias, out)
            assert np.ascontiguousarray(out).tobytes() == expected.tobytes()
    with pytest.raises(ValueError, match="row mode"):
        _dense.dense_plan(x.shape, narrow.shape, expected.shape, np.dtype(dtype), *geometry,
                          None, None, "window", 2)


TILED_ROW_CASES = [
    # (nd, n, c_in, c_out, size, kernel, stride, padding, dilation)
    (2, 2, 20, 37, (13, 11), (3, 3), 1, 1, 1),  # a short last block of rows
    (2, 2, 16, 40, (12, 100), (3, 3), 1, 1, 1),  # several groups of pixel tiles a task
    (2, 3, 24, 16, (12, 9), (3, 4), 2, (1, 2), 1),
    (1, 3, 16, 40, (120,), (5,), 1, "same", 2),
    (3, 2, 12, 20, (5, 6, 7), (3, 2, 3), (1, 2, 1), 1, 1),
]


class _SelfPackingLayer:
    """A layer of :data:`TILED_ROW_CASES` whose weights the threads would pack themselves.

    On a channels-first input, dense: its forward pass and stride-1 input gradient (a
    forward pass of the adjoint), with bias, by one thread or two, and the naive references;
    :meth:`spy` records the plans one of ``_dense``'s run functions gets.
    """

    def __init__(self, case, dtype, seed, monkeypatch):
        nd, n, c_in, c_out, size, kernel, stride, padding, dilation = case
        monkeypatch.setattr(convolution, "FORCE_FORWARD_ALGORITHM", "dense")
        monkeypatch.setattr(_winograd, "PREFERRED", False)  # explain: the dense kernel too
        monkeypatch.setattr(_dense, "SELF_PACK_BYTES", 0)
        monkeypatch.setattr(_plan, "EXTRA_MEMORY", 4.0)  # room for these small calls' tiles
        self.monkeypatch, self.dtype, self.kernel = monkeypatch, dtype, kernel
        rng = np.random.default_rng(seed)
        self.x = rng.standard_normal((n, c_in, *size)).astype(dtype)
        self.weight = rng.standard_normal((c_out, c_in, *kernel)).astype(dtype)
        self.bias = rng.standard_normal(c_out).astype(dtype)
        self.options = {"stride": stride, "padding": padding, "dilation": dilation}
        self.conv = getattr(fastconv, f"conv{nd}d")
        self.conv_input = getattr(fastconv, f"conv{nd}d_input")
        self.unit = {"padding": padding, "dilation": dilation}  # a stride-1 adjoint
        self.grad = rng.standard_normal(
            naive.conv(self.x, self.weight, **self.unit).shape).astype(dtype)

    def spy(self, name: str) -> list:
        """The plans each later call of ``_dense.<name>`` gets, in order."""
        plans, run = [], getattr(_dense, name)

        def spy(*args):
            plans.append(args[0])
            return run(*args)

        self.monkeypatch.setattr(_dense, name, spy)
        return plans

    def forward(self) -> np.ndarray:
        return self.conv(self.x, self.weight, self.bias, **self.options)

    def results(self, threads: int) -> list[np.ndarray]:
        """Both passes on ``threads`` threads, planned afresh."""
        convolution.clear_plans()
        previous = numba.get_num_threads()
        numba.set_num_threads(threads)
        try:
            return [self.forward(),
                    self.conv_input(self.x.shape, self.weight, self.grad, **self.unit)]
        finally:
            numba.set_num_threads(previous)
            convolution.clear_plans()

    def explained(self) -> str:
        """What :func:`fastconv.explain` says of the forward pass."""
        return fastconv.explain(self.x.shape, self.weight.shape, **self.options,
                                dtype=self.dtype)[0].detail

    def assert_naive(self, got: list[np.ndarray]) -> None:
        nd = self.x.ndim - 2
        expected = naive.conv(self.x, self.weight, **self.options) \
            + self.bias.reshape(-1, *[1] * nd)
        taps = math.prod(self.kernel)
        assert_close(got[0], expected, self.x.shape[1] * taps, self.dtype)
        assert_close(got[1], naive.conv_input(self.x.shape, self.weight, self.grad, **self.unit),
                     self.weight.shape[0] * taps, self.dtype)


@pytest.mark.parametrize("case", TILED_ROW_CASES,
                         ids=[f"case{i}" for i in range(len(TILED_ROW_CASES))])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tiled_rows_are_bitwise_the_copied_input(case, dtype, monkeypatch):
    """Weights the threads pack themselves, on a channels-first input: tasks that copy the
    input rows of their block of output rows into a tile and run one channel block on it
    (one launch, no channels-last copy of the batch) give bitwise the results of the row-mode
    kernel on the batch's channels-last copy, and match the naive reference, forward and
    stride-1 input gradient (a forward pass of the adjoint), with bias, with one thread and
    two."""
    layer = _SelfPackingLayer(case, dtype, 61, monkeypatch)
    monkeypatch.setattr(_plan, "tiles_beat_parts", lambda *args: True)
    monkeypatch.setattr(convolution, "PACKED_TILES_BYTES", 0)  # not the weights packed whole
    tiled = layer.spy("run_tiled_rows")
    monkeypatch.setattr(convolution, "TILED_ROWS", False)
    copied = layer.results(2)
    assert not tiled
    explained = layer.explained()
    monkeypatch.setattr(convolution, "TILED_ROWS", True)
    assert "copied to channels-last" in explained  # fastconv.explain reports the route
    assert "runs one block of output channels on it" in layer.explained()
    for threads in (2, 1):
        got = layer.results(threads)
        assert len(tiled) == 2 * (3 - threads)  # both passes, every call
        for a, b in zip(got, copied):
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
    layer.assert_naive(got)


@pytest.mark.parametrize("case", TILED_ROW_CASES,
                         ids=[f"case{i}" for i in range(len(TILED_ROW_CASES))])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_packed_tiles_are_bitwise_the_copied_input(case, dtype, monkeypatch):
    """Weights the threads would pack themselves, packed whole when they fit the spare
    memory, on a channels-first input: tasks that copy the input rows of their block of
    output rows into a tile and run every channel block on it give bitwise the results of
    the row-mode kernel on the batch's channels-last copy, and match the naive reference,
    forward and stride-1 input gradient, with bias, with one thread and two."""
    layer = _SelfPackingLayer(case, dtype, 62, monkeypatch)
    monkeypatch.setattr(convolution, "TILED_ROWS", False)  # the other route: the copies
    monkeypatch.setattr(convolution, "PACKED_TILES_FILL", 0)  # whatever the tiles' fill
    tiled = layer.spy("run_tiled")
    monkeypatch.setattr(convolution, "PACKED_TILES_BYTES", 0)
    copied = layer.results(2)
    explained = {False: layer.explained()}
    assert not tiled
    monkeypatch.setattr(convolution, "PACKED_TILES_BYTES", 4 << 20)
    taken = []
    for threads in (2, 1):
        before = len(tiled)
        got = layer.results(threads)
        taken.append(len(tiled) - before)
        for a, b in zip(got, copied):
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
    # the route runs the passes whose weights pack in blocks of two vectors (narrow layers'
    # one-vector blocks run in row mode) and that are not small: one or both, every call
    assert taken[0] >= 1 and taken[0] == taken[1]
    explained[True] = layer.explained()  # fastconv.explain reports the route the call takes
    before = len(tiled)
    layer.forward()
    forward_tiled = len(tiled) > before
    assert "channels-last" in explained[False] and "tile;" not in explained[False]
    assert ("tile; output" in explained[True]
            and "weights packed in blocks" in explained[True]) == forward_tiled
    layer.assert_naive(got)


def test_packed_tiles_fit_the_spare_memory(monkeypatch):
    """The weights packed whole, the tiles and the scratch of a call never exceed its spare
    memory: as it shrinks, the plan stages two tiles at a time, then takes smaller tiles,
    then gives way to the other routes; nor do its tasks leave many tile slots idle."""
    monkeypatch.setattr(_dense, "SELF_PACK_BYTES", 0)
    dtype = np.dtype(np.float32)
    x = np.zeros((8, 64, 28, 28), dtype)
    weight = np.zeros((128, 64, 3, 3), dtype)
    dest = np.zeros((8, 128, 14, 14), dtype)
    src, out = (a.transpose(0, 2, 3, 1)[:, None] for a in (x, dest))
    data = _args.data_shape("x", x.shape, 2, False)
    spec = _args.conv_spec(2, data, weight.shape, 2, 1, 1, 1, "zeros")
    seen = []
    for extra in np.linspace(0.6, 0.0, 61):
        monkeypatch.setattr(_plan, "EXTRA_MEMORY", float(extra))
        run = convolution._DensePass(spec, dtype, src.shape, out.shape)
        plan = run._packed_tiles(src, weight, out)
        packed = math.prod(run.packed_shape) * dtype.itemsize
        if plan is None:
            seen.append(None)
            continue
        spare = convolution._spare_bytes(src, out, weight.nbytes, packed)
        assert _dense.job_scratch_bytes([plan], dtype) <= spare
        assert _dense.tile_fill(plan) >= convolution.PACKED_TILES_FILL
        seen.append((plan.group, int(plan.sdims[11])))
    assert seen[0] is not None and seen[-1] is None
    groups = [entry[0] for entry in seen if entry is not None]
    rows = [entry[1] for entry in seen if entry is not None]
    assert groups[0] > 2 and groups[-1] == 2  # two tiles staged at a time before smaller tiles
    assert rows[-1] < rows[0]
    assert seen.index(None) == len(seen) - seen[::-1].count(None)  # None only at the end


SELF_PACK_CASES = [
    # (nd, n, c_in, c_out, size, kernel, stride, padding, dilation)
    (2, 2, 20, 37, (9, 11), (3, 3), 1, 1, 1),
    (2, 1, 24, 16, (12, 9), (3, 4), 2, (1, 2), 1),
    (1, 3, 16, 19, (40,), (5,), 1, "same", 2),
    (3, 1, 12, 20, (5, 6, 7), (3, 2, 3), 1, 1, 1),
]


@pytest.mark.parametrize("case", SELF_PACK_CASES,
                         ids=[f"case{i}" for i in range(len(SELF_PACK_CASES))])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_threads_packing_their_weight_blocks_is_bitwise_the_packed_path(case, dtype,
                                                                         monkeypatch):
    """Large weights are read in place by the row-mode dense kernel, each thread packing the
    channel block its tasks need, with tasks numbered block first; smaller ones are packed
    once per call, tasks numbered pixel group first (or block first when the input fits L2).
    The summation order is the same, so all give bitwise identical results, with one or two
    threads, for forward and adjoint (flipped, transposed and stride-phase views of the
    weights), channels first and last, and weights that are strided, read-only or of
    another dtype (converted first)."""
    from fastconv import _dense

    nd, n, c_in, c_out, size, kernel, stride, padding, dilation = case
    monkeypatch.setattr(convolution, "FORCE_FORWARD_ALGORITHM", "dense")
    rng = np.random.default_rng(53)
    x = rng.standard_normal((n, c_in, *size)).astype(dtype)
    wide = rng.standard_normal((c_out, 2 * c_in, *kernel)).astype(dtype)
    options = {"stride": stride, "padding": padding, "dilation": dilation}
    conv = getattr(fastconv, f"conv{nd}d")
    conv_input = getattr(fastconv, f"conv{nd}d_input")
    grad = rng.standard_normal(naive.conv(x, wide[:, :c_in], **options).shape).astype(dtype)
    read_only = np.array(wide[:, :c_in])
    read_only.flags.writeable = False
    weights = {"contiguous": np.ascontiguousarray(wide[:, :c_in]),
               "strided": wide[:, ::2], "read-only": read_only,
               "other dtype": wide[:, :c_in].astype(np.float32 if dtype == np.float64
                                                   else np.float64)}

    def results(self_pack_bytes, l2_bytes, threads):
        monkeypatch.setattr(_dense, "SELF_PACK_BYTES", self_pack_bytes)
        monkeypatch.setattr(_dense, "_L2_BYTES", l2_bytes)
        convolution.clear_plans()
        _dense.dense_plan.cache_clear()
        previous = numba.get_num_threads()
        numba.set_num_threads(threads)
        try:
            out = []
            for weight in weights.values():
                out.append(conv(x, weight, **options))
                out.append(conv_input(x.shape, weight, grad, **options))
                last = conv(np.ascontiguousarray(to_channels_last(x)), weight,
                            channels_last=True, **options)
                out.append(last)
            return [np.asarray(r) for r in out]
        finally:
            numba.set_num_threads(previous)
            convolution.clear_plans()
            _dense.dense_plan.cache_clear()

    packed = results(1 << 40, 0, 2)  # packed once, pixel group first
    for self_pack_bytes, l2_bytes, threads in [(0, 0, 2), (0, 0, 1), (1 << 40, 1 << 40, 2)]:
        other = results(self_pack_bytes, l2_bytes, threads)
        for a, b in zip(packed, other):
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
    reduction = int(np.prod(kernel))
    for index, weight in enumerate(weights.values()):
        cast = weight.astype(packed[3 * index].dtype)
        assert_close(packed[3 * index], naive.conv(x, cast, **options), c_in * reduction,
                     packed[3 * index].dtype)
        assert_close(packed[3 * index + 1], naive.conv_input(x.shape, cast, grad, **options),
                     c_out * reduction, packed[3 * index + 1].dtype)


def _planned_dense_problem(case, seed, monkeypatch):
    """``(nd, x, weight, bias, options)`` of a dense-kernel case (float32), the dense
    algorithm forced and no call small enough to skip the planned passes."""
    from fastconv import _dense

    nd, n, c_in, c_out, size, kernel, stride, padding, dilation = case
    monkeypatch.setattr(convolution, "FORCE_FORWARD_ALGORITHM", "dense")
    monkeypatch.setattr(_dense, "_SERIAL_MAX_FMAS", 0)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c_in, *size)).astype(np.float32)
    weight = rng.standard_normal((c_out, c_in, *kernel)).astype(np.float32)
    bias = rng.standard_normal(c_out).astype(np.float32)
    return nd, x, weight, bias, {"stride": stride, "padding": padding, "dilation": dilation}


TILED_CASES = [
    # (nd, n, c_in, c_out, size, kernel, stride, padding, dilation)
    (2, 2, 16, 40, (12, 13), (3, 3), 1, 1, 1),
    (2, 1, 10, 20, (15, 17), (3, 3), 1, 2, 2),
    (2, 2, 3, 32, (23, 19), (7, 7), 2, 3, 1),
    (2, 1, 9, 17, (11, 10), (3, 4), (2, 1), ((1, 2), (3, 0)), 1),
    (1, 3, 8, 24, (70,), (5,), 1, 2, 1),
    (1, 2, 12, 20, (61,), (9,), 2, "same", 1),
    (3, 2, 6, 18, (5, 6, 9), (3, 3, 3), 1, 1, 1),
    (3, 1, 8, 20, (6, 5, 7), (2, 3, 3), (2, 1, 1), ((1, 0), (1, 1), (2, 1)), (1, 1, 2)),
    (1, 2, 32, 16, (61,), (9,), 1, 4, 1),  # a single full channel block
    (3, 2, 5, 16, (5, 6, 9), (3, 3, 3), 1, 1, 1),
]


@pytest.mark.parametrize("case", TILED_CASES, ids=[f"case{i}" for i in range(len(TILED_CASES))])
def test_tiled_mode_is_bitwise_the_copied_input(case, monkeypatch):
    """Window-mode and single-block layers on channels-first data read the input in place:
    each task copies the rows its block of output rows (or, with one row, columns) reads
    into its own padded tile. Whatever the block size, with one or two threads, the results
    are bit for bit those of the channels-last input and of the batch-part layout copies,
    and match the naive reference."""
    import numba

    from fastconv import _dense

    # the cases have one or at least two channel blocks of 16 (window mode) with 8-lane
    # vectors: as many of this host's blocks
    nd, n, c_in, c_out, *rest = case
    case = (nd, n, c_in, c_out * _dense.block_size(np.float32) // 16, *rest)
    nd, x, weight, bias, options = _planned_dense_problem(case, 61, monkeypatch)
    c_in, kernel = x.shape[1], weight.shape[2:]
    conv = getattr(fastconv, f"conv{nd}d")
    tiled = []
    run_tiled = _dense.run_tiled

    def spy(*args):
        tiled.append(args[0].sdims[11])  # rows (or columns) per task
        run_tiled(*args)

    monkeypatch.setattr(_dense, "run_tiled", spy)

    def result(tile_bytes, threads=2, allowed=True):
        monkeypatch.setattr(_dense, "_TILE_BYTES", tile_bytes)
        _dense.tiled_plan.cache_clear()
        if not allowed:
            monkeypatch.setattr(_dense, "tiled_plan", lambda *args: None)
        convolution.clear_plans()
        previous = numba.get_num_threads()
        numba.set_num_threads(threads)
        try:
            return conv(x, weight, bias, **options)
        finally:
            numba.set_num_threads(previous)
            convolution.clear_plans()

    small = result(1)  # one row (or column) per task
    assert tiled and max(tiled) == 1
    tiled.clear()
    default = result(160 * 1024)
    assert tiled
    single = result(160 * 1024, threads=1)
    channels_last = np.moveaxis(conv(np.ascontiguousarray(to_channels_last(x)), weight, bias,
                                     channels_last=True, **options), -1, 1)
    copied = result(160 * 1024, allowed=False)
    expected = np.ascontiguousarray(channels_last).tobytes()
    for got in (small, default, single, copied):
        assert got.tobytes() == expected
    assert_close(default, naive.conv(x, weight, bias, **options),
                 c_in * int(np.prod(kernel)), np.float32)


@pytest.mark.parametrize("case", TILED_CASES, ids=[f"case{i}" for i in range(len(TILED_CASES))])
def test_tiled_mode_reads_channels_last_input(case, monkeypatch):
    """A channels-last input whose windows read padding goes through the per-task tiles
    too, when the layer has at least two output channel blocks
    (:func:`fastconv._dense.tiles_channels_last`): each task copies its input rows, one
    contiguous run per row, into a zero-padded tile. Whatever the block size, forward and
    input gradient, the results are bit for bit those of window mode reading the input in
    place (gathering the border windows), and match the naive reference."""
    from fastconv import _dense

    nd, n, c_in, c_out, *rest = case
    case = (nd, n, c_in, c_out * _dense.block_size(np.float32) // 16, *rest)
    nd, x, weight, bias, options = _planned_dense_problem(case, 67, monkeypatch)
    c_in, c_out, kernel = x.shape[1], weight.shape[0], weight.shape[2:]
    x_last = np.ascontiguousarray(to_channels_last(x))
    before = x_last.copy()
    grad = np.random.default_rng(68).standard_normal(
        naive.conv(x, weight, **options).shape).astype(np.float32)
    grad_last = np.ascontiguousarray(to_channels_last(grad))
    conv = getattr(fastconv, f"conv{nd}d")
    conv_input = getattr(fastconv, f"conv{nd}d_input")
    tiled = []
    run_tiled = _dense.run_tiled

    def spy(plan, *args):
        tiled.append((plan.sdims[11], plan.sdims[23]))  # rows per task, pixel step
        run_tiled(plan, *args)

    monkeypatch.setattr(_dense, "run_tiled", spy)
    plan_tiles = _dense.tiled_plan

    def results(tile_bytes, allowed=True):
        """Forward and input gradient, and the forward's tiled calls."""
        monkeypatch.setattr(_dense, "_TILE_BYTES", tile_bytes)
        monkeypatch.setattr(_dense, "tiled_plan", plan_tiles if allowed else
                            lambda *args, **kwargs: None)
        plan_tiles.cache_clear()
        convolution.clear_plans()
        tiled.clear()
        try:
            forward = conv(x_last, weight, bias, channels_last=True, **options)
            forward_tiled = list(tiled)
            return (forward, conv_input(x_last.shape, weight, grad_last, channels_last=True,
                                        **options)), forward_tiled
        finally:
            convolution.clear_plans()

    in_place, none = results(160 * 1024, allowed=False)
    (small, one_row), (default, rows) = results(1), results(160 * 1024)
    packed = _dense.packed_shape(c_out, c_in, _plan.to_3d(kernel, 1), np.dtype(np.float32))
    # every case's windows read padding: the tiles copy runs of c_in channels per pixel
    tiles = _dense.tiles_channels_last(packed, np.dtype(np.float32))
    assert none == [] and one_row == ([(1, c_in)] if tiles else [])
    assert len(rows) == tiles and all(step == c_in for _, step in rows)
    for got, want in zip(small + default, in_place + in_place):
        assert got.tobytes() == want.tobytes()
    np.testing.assert_array_equal(x_last, before)
    assert_close(np.moveaxis(default[0], -1, 1), naive.conv(x, weight, bias, **options),
                 c_in * int(np.prod(kernel)), np.float32)
    assert_close(np.moveaxis(default[1], -1, 1), naive.conv_input(x.shape, weight, grad,
                                                                  **options),
                 c_out * int(np.prod(kernel)), np.float32)


SLAB_CASES = [
    # (nd, n, c_in, c_out, size, kernel, stride, padding, dilation)
    (3, 2, 8, 12, (9, 5, 6), (3, 3, 3), 1, 1, 1),
    (3, 1, 8, 8, (11, 4, 5), (3, 2, 2), (2, 1, 1), ((2, 1), (0, 0), (1, 1)), (2, 1, 1)),
    (2, 2, 16, 20, (13, 9), (5, 3), 1, ((4, 0), (1, 1)), 1),
    (1, 3, 8, 16, (40,), (7,), 3, 2, 1),
]


@pytest.mark.parametrize("case", SLAB_CASES, ids=[f"case{i}" for i in range(len(SLAB_CASES))])
def test_dense_slabs_of_rows_are_bitwise_the_whole_sample(case, monkeypatch):
    """A channels-first sample larger than the call's spare memory is copied to channels-last
    a slab of rows at a time (each slab with the input rows its outputs read and the low
    padding left before it); each output's arithmetic is unchanged, so the results are bit
    for bit those of whole samples, forward and adjoint, and match the naive reference."""

    # row-mode layers (kernel rows longer than half a block of 16 channels) with 8-lane
    # vectors: their input channels scale with this host's block. Layers the tiled mode
    # takes (one channel block) copy through slabs when it is not allowed
    nd, n, c_in, *rest = case
    case = (nd, n, c_in * _dense.block_size(np.float32) // 16, *rest)
    nd, x, weight, bias, options = _planned_dense_problem(case, 59, monkeypatch)
    monkeypatch.setattr(_dense, "tiled_plan", lambda *args, **kwargs: None)
    c_in, c_out, kernel = x.shape[1], weight.shape[0], weight.shape[2:]
    rng = np.random.default_rng(60)
    grad = rng.standard_normal(naive.conv(x, weight, **options).shape).astype(np.float32)
    conv = getattr(fastconv, f"conv{nd}d")
    conv_input = getattr(fastconv, f"conv{nd}d_input")

    def results(extra):
        monkeypatch.setattr(_plan, "EXTRA_MEMORY", extra)
        convolution.clear_plans()
        try:
            return conv(x, weight, bias, **options), conv_input(x.shape, weight, grad, **options)
        finally:
            convolution.clear_plans()

    calls = []
    original = convolution._DensePass._run_slabs

    def spy(self, *args):
        ran = original(self, *args)
        calls.append(ran)
        return ran

    monkeypatch.setattr(convolution._DensePass, "_run_slabs", spy)
    whole = results(100.0)
    assert not calls
    slabs = results(1e-3)
    assert calls and all(calls)  # slabs in every pass that copies (multi-phase adjoints don't)
    for a, b in zip(whole, slabs):
        assert a.tobytes() == b.tobytes()
    reduction = int(np.prod(kernel))
    assert_close(slabs[0], naive.conv(x, weight, bias, **options), c_in * reduction,
                 np.float32)
    assert_close(slabs[1], naive.conv_input(x.shape, weight, grad, **options),
                 c_out * reduction, np.float32)


@pytest.mark.parametrize("dilation", [(1, 1, 1), (1, 2, 3), (2, 1, 2)])
@pytest.mark.parametrize("stride", [(1, 1, 1), (1, 2, 1)])
def test_dense_window_mode_in_place_is_bitwise_row_mode(dilation, stride):
    """Window mode reads interior tiles' windows in place (a kernel row, or with a dilation
    along the last dimension a tap, at a time) and gathers border tiles' windows; row mode
    reads rows in place per channel block. Same arithmetic: the same bits, and the naive
    reference's values."""
    from fastconv import _dense

    rng = np.random.default_rng(61)
    x = rng.standard_normal((2, 5, 11, 30, 7)).astype(np.float32)
    weight = rng.standard_normal((37, 7, 2, 3, 3)).astype(np.float32)
    bias = rng.standard_normal(37).astype(np.float32)
    pad_low = (1, 2, 1)
    sizes = [(n + 2 * p - d * (k - 1) - 1) // s + 1
             for n, p, d, k, s in zip(x.shape[1:4], pad_low, dilation, weight.shape[2:], stride)]
    results = {}
    for mode in ("row", "window"):
        out = np.empty((2, *sizes, 37), np.float32)
        _dense.dense_forward(x, _dense.pack_weights(weight), bias, out, stride, dilation,
                             pad_low, mode=mode)
        results[mode] = out
    assert results["row"].tobytes() == results["window"].tobytes()
    expected = naive.conv(x.transpose(0, 4, 1, 2, 3), weight, bias, stride=stride,
                          padding=tuple((p, p) for p in pad_low), dilation=dilation)
    assert_close(results["window"], expected.transpose(0, 2, 3, 4, 1), 7 * 18, np.float32)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", ["row", "window"])
def test_read_only_inputs_and_weights_are_read_in_place(monkeypatch, dtype, mode):
    """A read-only channels-last input and read-only weights reach the dense drivers as they
    are (no copy), give the writeable arrays' result bit for bit, and compile no second
    version of a driver or task function. (The window-mode layer reads padding with two
    channel blocks: its input reaches the tiled driver, whose tasks copy its rows.)"""
    from fastconv import _dense

    c_in = {"row": 256, "window": 32}[mode]  # small weights run in window mode
    rng = np.random.default_rng(61)
    x = rng.standard_normal((2, 13, 11, c_in)).astype(dtype)
    weight = rng.standard_normal((48, c_in, 3, 3)).astype(dtype)
    options = {"padding": 1, "channels_last": True}
    monkeypatch.setattr(convolution, "FORCE_FORWARD_ALGORITHM", "dense")
    if mode == "row":  # and reads the weights in place
        monkeypatch.setattr(_dense, "SELF_PACK_BYTES", 0)
    convolution.clear_plans()
    _dense.dense_plan.cache_clear()
    writeable = fastconv.conv2d(x, weight, **options)
    read_only_x, read_only_w = x.copy(), weight.copy()
    read_only_x.flags.writeable = read_only_w.flags.writeable = False
    seen, seen_plans = [], []
    run_dense = _dense.run_dense

    def spy(plan, x_view, wp, bias, out):
        seen.append((x_view, wp))
        seen_plans.append(plan)
        return run_dense(plan, x_view, wp, bias, out)

    run_tiled = _dense.run_tiled

    def spy_tiled(plan, x_view, wp, bias, out):
        seen.append((x_view, wp))
        return run_tiled(plan, x_view, wp, bias, out)

    monkeypatch.setattr(_dense, "run_dense", spy)
    monkeypatch.setattr(_dense, "run_tiled", spy_tiled)
    try:
        read_only = fastconv.conv2d(read_only_x, read_only_w, **options)
    finally:
        convolution.clear_plans()
        _dense.dense_plan.cache_clear()
    assert all(plan.window == (mode == "window") for plan in seen_plans)
    assert read_only.tobytes() == writeable.tobytes()
    assert seen and all(np.shares_memory(x_view, read_only_x) for x_view, _ in seen)
    if mode == "row":
        assert all(np.shares_memory(wp[0], read_only_w) for _, wp in seen)
    drivers = [*_dense._DRIVERS.values(), *_dense._WDRIVERS.values()]
    for function in [*(f for d in drivers for f in (d.kernel, d.task)), _dense._tiled_forward,
                     _dense._tiled_task]:
        kinds = [signature[0].dtype for signature in function.signatures]
        assert len(kinds) == len(set(kinds)), function


ON_PLANES_CASES = [
    # (nd, n, c_in, c_out, groups, size, kernel, stride, padding, padding_mode)
    (2, 2, 32, 32, 32, (13, 11), (3, 3), 1, 1, "zeros"),  # depthwise
    (2, 2, 24, 24, 24, (15, 14), (5, 5), 2, 2, "zeros"),  # strided depthwise
    (2, 2, 16, 24, 4, (12, 9), (3, 3), 1, 1, "zeros"),  # grouped
    (2, 1, 8, 12, 1, (10, 11), (3, 3), 1, 1, "reflect"),  # a padding mode
    (1, 3, 12, 12, 12, (40,), (7,), 1, 3, "circular"),
    (3, 2, 8, 16, 8, (5, 6, 7), (3, 3, 3), (1, 2, 1), 1, "zeros"),
]


@pytest.mark.parametrize("case", ON_PLANES_CASES,
                         ids=[f"case{i}" for i in range(len(ON_PLANES_CASES))])
@pytest.mark.parametrize("layout", ["channels_last", "strided"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layers_only_planes_run_fast_copy_other_layouts_to_planes(case, layout, dtype,
                                                                  monkeypatch):
    """Depthwise, grouped and padding-mode layers run on channels-first planes; data in
    another layout (channels-last, or a channels-first view that is not C-contiguous) is
    copied to planes and the results back (channels-last data through the transposing
    kernel), instead of taking the gather kernel. Forward,
    input and weight gradients, transposed convolution: bit for bit the results of
    C-contiguous channels-first data, matching the naive reference; the inputs are left
    as they were."""
    nd, n, c_in, c_out, groups, size, kernel, stride, padding, mode = case
    rng = np.random.default_rng(71)
    x = rng.standard_normal((n, c_in, *size)).astype(dtype)
    weight = rng.standard_normal((c_out, c_in // groups, *kernel)).astype(dtype)
    bias = rng.standard_normal(c_out).astype(dtype)
    options = {"stride": stride, "padding": padding, "groups": groups, "padding_mode": mode}
    expected = naive.conv(x, weight, bias, **options)
    grad = rng.standard_normal(expected.shape).astype(dtype)
    conv = getattr(fastconv, f"conv{nd}d")
    backward = getattr(fastconv, f"conv{nd}d_backward")
    transpose = getattr(fastconv, f"conv_transpose{nd}d")
    transpose_backward = getattr(fastconv, f"conv_transpose{nd}d_backward")
    t_options = {"stride": stride, "padding": padding, "groups": groups}
    t_weight = rng.standard_normal((c_out, c_in // groups, *kernel)).astype(dtype)

    def results(arrange, restore, channels_last):
        """Forward, input and weight gradients, then (zero padding) the transposed
        convolution of ``grad`` and its input and weight gradients; data in channels-first
        order (``restore``), inputs in the layout ``arrange`` makes."""
        arranged = [arrange(a) for a in (x, grad)]
        before = [a.copy() for a in arranged]
        layout_option = {"channels_last": channels_last}
        grad_input, grad_weight = backward(arranged[0], weight, arranged[1], **options,
                                           **layout_option)[:2]
        got = [restore(conv(arranged[0], weight, bias, **options, **layout_option)),
               restore(grad_input), grad_weight]
        if mode == "zeros":
            t_out = transpose(arranged[1], t_weight, **t_options, **layout_option)
            t_grad = arrange(rng.standard_normal(restore(t_out).shape).astype(dtype))
            t_input, t_weight_grad = transpose_backward(arranged[1], t_weight, t_grad,
                                                        **t_options, **layout_option)[:2]
            got += [restore(t_out), restore(t_input), t_weight_grad]
        for a, b in zip(arranged, before):
            np.testing.assert_array_equal(a, b)
        return [np.asarray(a) for a in got]

    state = rng.bit_generator.state  # the same transposed-gradient draw for both layouts
    planes = results(np.ascontiguousarray, lambda a: a, False)
    rng.bit_generator.state = state
    called = []
    on_planes = convolution._PassOnPlanes.__call__
    on_planes_weight = convolution._WeightPassOnPlanes.__call__

    def spy(self, *args):
        called.append(type(self).__name__)
        return on_planes(self, *args)

    def spy_weight(self, *args):
        called.append(type(self).__name__)
        return on_planes_weight(self, *args)

    monkeypatch.setattr(convolution._PassOnPlanes, "__call__", spy)
    monkeypatch.setattr(convolution._WeightPassOnPlanes, "__call__", spy_weight)
    convolution.clear_plans()
    rng.bit_generator.state = state
    # the layout copies of channels-last data through the transposing kernel, whatever
    # their size, and of the forward and adjoint passes a sample at a time (no spare
    # memory: a quarter of the batch per part)
    monkeypatch.setattr(convolution, "_LAYOUT_KERNEL_MIN", 0)
    monkeypatch.setattr(_plan, "EXTRA_MEMORY", 0)
    if layout == "channels_last":
        other = results(lambda a: np.ascontiguousarray(to_channels_last(a)),
                        lambda a: np.moveaxis(a, -1, 1), True)
    else:  # every other element of a wider array along the last dimension
        def strided(a):
            wide = np.zeros((*a.shape[:-1], 2 * a.shape[-1]), a.dtype)
            wide[..., ::2] = a
            return wide[..., ::2]

        other = results(strided, lambda a: a, False)
    convolution.clear_plans()
    # the passes explain says run on copies as planes went through them (the others ran
    # the gather kernel, or, on channels-last data, the depthwise kernel in place)
    last = layout == "channels_last"
    explained = {"channels_last": last, "contiguous": last}

    def shape_of(a):
        return to_channels_last(a).shape if last else a.shape

    plans = list(fastconv.explain(shape_of(x), weight.shape, **options, **explained))
    if mode == "zeros":
        plans += fastconv.explain(shape_of(grad), t_weight.shape, transposed=True,
                                  **t_options, **explained)
    copied = ["copied to channels-first planes" in p.detail for p in plans]
    assert ("_PassOnPlanes" in called) == any(c for c, p in zip(copied, plans)
                                              if p.name != "grad_weight")
    assert ("_WeightPassOnPlanes" in called) == any(c for c, p in zip(copied, plans)
                                                    if p.name == "grad_weight")
    for index, (got, want) in enumerate(zip(other, planes)):
        assert got.tobytes() == np.ascontiguousarray(want).tobytes(), index
    reduction = (c_in // groups) * int(np.prod(kernel))
    assert_close(planes[0], expected, reduction, dtype)
    assert_close(planes[1], naive.conv_input(x.shape, weight, grad, **options),
                 (c_out // groups) * int(np.prod(kernel)), dtype)
    assert_close(planes[2], naive.conv_weight(x, weight.shape, grad, **options),
                 n * int(np.prod(expected.shape[2:])), dtype)


CHANNELS_LAST_DEPTHWISE_CASES = [
    # (nd, n, channels, size, kernel, stride, padding, dilation)
    (2, 2, 32, (13, 11), (3, 3), 1, 1, 1),
    (2, 3, 40, (15, 14), (5, 5), 2, 2, 1),  # a short last block of channels
    (2, 2, 48, (7, 7), (7, 7), 1, 3, 1),
    (2, 1, 32, (20, 17), (3, 3), (1, 2), (2, 1), 2),
    (1, 3, 36, (50,), (9,), 1, 4, 1),
    (3, 2, 32, (6, 5, 7), (3, 3, 3), (1, 2, 1), 1, 1),
]


def _layouts_run(monkeypatch, pass_class):
    """A list that records ``channels_last`` of every ``pass_class`` pass called."""
    seen = []
    run = pass_class.__call__

    def spy(self, *args):
        seen.append(self.channels_last)
        return run(self, *args)

    monkeypatch.setattr(pass_class, "__call__", spy)
    return seen


@pytest.mark.parametrize("case", CHANNELS_LAST_DEPTHWISE_CASES,
                         ids=[f"case{i}" for i in range(len(CHANNELS_LAST_DEPTHWISE_CASES))])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_depthwise_forward_reads_channels_last_in_place(case, dtype, monkeypatch):
    """A depthwise forward convolution on C-contiguous channels-last data runs the depthwise
    kernel on the data in place (a pixel's channels are one vector: no transposes, no
    copies), bit for bit the channels-first result, matching the naive reference; the
    input is left as it was, and ``out=`` is written in place. So does a stride-1 layer's
    input gradient (the forward convolution of the output gradient, flipped kernel), and
    the weight gradient where the depthwise kernel takes it on channels-first data."""
    nd, n, channels, size, kernel, stride, padding, dilation = case
    lanes = lanes_for(dtype)
    channels = channels * lanes // 16  # at least a vector of channels on any host
    rng = np.random.default_rng(73)
    x = rng.standard_normal((n, channels, *size)).astype(dtype)
    weight = rng.standard_normal((channels, 1, *kernel)).astype(dtype)
    bias = rng.standard_normal(channels).astype(dtype)
    options = {"stride": stride, "padding": padding, "dilation": dilation,
               "groups": channels}
    conv = getattr(fastconv, f"conv{nd}d")
    monkeypatch.setattr(_plan, "SERIAL_MAX_WORK", 0)  # no small-call route
    convolution.clear_plans()
    planes = conv(x, weight, bias, **options)
    x_last = np.ascontiguousarray(to_channels_last(x))
    before = x_last.copy()
    seen = _layouts_run(monkeypatch, convolution._DepthwisePass)
    convolution.clear_plans()
    last = conv(x_last, weight, bias, channels_last=True, **options)
    out = np.full(last.shape, np.nan, dtype)
    into = conv(x_last, weight, bias, channels_last=True, out=out, **options)
    convolution.clear_plans()
    assert seen == [True, True] and into is out
    np.testing.assert_array_equal(x_last, before)
    for got in (last, out):
        assert np.ascontiguousarray(to_channels_first(got)).tobytes() == planes.tobytes()
    assert_close(planes, naive.conv(x, weight, bias, **options), int(np.prod(kernel)), dtype)
    grad = rng.standard_normal(planes.shape).astype(dtype)
    conv_input = getattr(fastconv, f"conv{nd}d_input")
    grad_planes = conv_input(x.shape, weight, grad, **options)
    grad_last = np.ascontiguousarray(to_channels_last(grad))
    seen.clear()
    convolution.clear_plans()
    got = conv_input(x_last.shape, weight, grad_last, channels_last=True, **options)
    convolution.clear_plans()
    assert True in seen if np.prod(stride) == 1 else True not in seen
    assert np.ascontiguousarray(to_channels_first(got)).tobytes() == grad_planes.tobytes()
    assert_close(grad_planes, naive.conv_input(x.shape, weight, grad, **options),
                 int(np.prod(kernel)), dtype)
    # the weight gradient: in place where the depthwise kernel runs it on channels-first
    # data too (small planes), else on copies as planes; the same bits either way
    backward = getattr(fastconv, f"conv{nd}d_backward")
    wanted = ("weight", "bias")
    weight_planes = backward(x, weight, grad, needs=wanted, **options)[1:]
    in_place = _layouts_run(monkeypatch, convolution._DepthwiseWeightPass)
    convolution.clear_plans()
    weight_last = backward(x_last, weight, grad_last, needs=wanted, channels_last=True,
                           **options)[1:]
    convolution.clear_plans()
    on_planes = fastconv.explain(x.shape, weight.shape, **options)[2].algorithm
    assert (True in in_place) == (on_planes == "depthwise")
    for got, want in zip(weight_last, weight_planes):
        assert got.tobytes() == want.tobytes()
    np.testing.assert_array_equal(x_last, before)
    assert_close(weight_planes[0], naive.conv_weight(x, weight.shape, grad, **options),
                 n * int(np.prod(planes.shape[2:])), dtype)
