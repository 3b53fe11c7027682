"""Every fast path against the plain reference, on the same cases.

The forward pass and the adjoint (input gradient, transposed convolution) each have two
algorithms (``convolution.FORCE_FORWARD_ALGORITHM`` picks one): the dense SIMD micro-kernel and the
general gather kernel. Each test forces one, so both are checked on every case whatever the
plan would pick (a forced algorithm that does not apply falls back to gather), and the
results must agree with the naive reference within the dtype's tolerance.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastconv
import naive
from conftest import assert_close, to_channels_last
from fastconv import convolution

ALGORITHMS = ["dense", "gather"]

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
]


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
