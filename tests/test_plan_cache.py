"""The call-plan cache (``convolution._PLANS``) changes speed, never behaviour.

A call whose key (shapes, dtypes and the other arguments with their exact types) was seen
skips validation and planning. These tests check that values validation tells apart never
share a key, that refused arguments are refused again (with the same message) however often
they come, and that results are bitwise the same with and without a cached plan. They also
check that the serial twins of the kernels, which small calls run, give the parallel
kernels' results bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastconv
from fastconv import _dense, _kernels, convolution

RNG = np.random.default_rng(99)
X = RNG.standard_normal((2, 4, 9, 8)).astype(np.float32)
W = RNG.standard_normal((6, 4, 3, 3)).astype(np.float32)
B = RNG.standard_normal(6).astype(np.float32)
G = RNG.standard_normal((2, 6, 9, 8)).astype(np.float32)  # grad_output with padding=1


@pytest.fixture(autouse=True)
def fresh_plans():
    convolution.clear_plans()
    yield
    convolution.clear_plans()


def _message(call):
    """Type and message of the exception ``call()`` raises."""
    with pytest.raises((TypeError, ValueError)) as info:
        call()
    return type(info.value), str(info.value)


# (function, valid keyword arguments, equal-but-differently-typed value that must be refused)
REFUSED_AFTER_VALID = [
    (lambda **k: fastconv.conv2d(X, W, **k), {"stride": 1}, {"stride": True}),
    (lambda **k: fastconv.conv2d(X, W, **k), {"stride": (1, 1)}, {"stride": (1, True)}),
    (lambda **k: fastconv.conv2d(X, W, **k), {"stride": (1, 1)}, {"stride": (1, 1.0)}),
    (lambda **k: fastconv.conv2d(X, W, **k), {"padding": 1}, {"padding": 1.0}),
    (lambda **k: fastconv.conv2d(X, W, **k), {"padding": ((1, 1), 1)},
     {"padding": ((1, np.float64(1)), 1)}),
    (lambda **k: fastconv.conv2d(X, W, **k), {"dilation": 1}, {"dilation": np.float32(1)}),
    (lambda **k: fastconv.conv2d(X, W, **k), {"groups": 1}, {"groups": np.True_}),
    (lambda **k: fastconv.conv2d(X, W, **k), {"channels_last": False}, {"channels_last": 0}),
    (lambda **k: fastconv.conv2d_input(**k), {"input_shape": X.shape, "weight": W,
                                              "grad_output": G, "padding": 1},
     {"input_shape": (2, 4, 9, 8.0), "weight": W, "grad_output": G, "padding": 1}),
    (lambda **k: fastconv.conv2d_weight(**k), {"x": X, "weight_shape": W.shape,
                                               "grad_output": G, "padding": 1},
     {"x": X, "weight_shape": (6, 4, 3, True), "grad_output": G, "padding": 1}),
    (lambda **k: fastconv.conv_transpose2d(X, W.transpose(1, 0, 2, 3), **k),
     {"output_padding": 0}, {"output_padding": False}),
]


@pytest.mark.parametrize("case", range(len(REFUSED_AFTER_VALID)))
def test_a_cached_plan_does_not_accept_an_equal_value_of_another_type(case):
    call, valid, refused = REFUSED_AFTER_VALID[case]
    expected = _message(lambda: call(**refused))  # refused before anything is cached
    convolution.clear_plans()
    call(**valid)
    call(**valid)  # now planned from the cache
    assert convolution._PLANS, "the valid call must have been cached"
    assert _message(lambda: call(**refused)) == expected


def test_a_refused_call_is_refused_every_time_with_the_same_message():
    first = _message(lambda: fastconv.conv2d(X, W, stride=0))
    for _ in range(3):
        assert _message(lambda: fastconv.conv2d(X, W, stride=0)) == first
    fastconv.conv2d(X, W, stride=1)
    assert _message(lambda: fastconv.conv2d(X, W, stride=0)) == first


def test_out_is_checked_on_every_call_of_a_cached_plan():
    out = np.empty((2, 6, 7, 6), np.float32)
    fastconv.conv2d(X, W, out=out)
    fastconv.conv2d(X, W, out=out)
    with pytest.raises(ValueError, match=r"out has shape \(2, 6, 7, 7\) \(expected"):
        fastconv.conv2d(X, W, out=np.empty((2, 6, 7, 7), np.float32))
    with pytest.raises(ValueError, match=r"out has dtype float64 \(expected float32\)"):
        fastconv.conv2d(X, W, out=np.empty((2, 6, 7, 6)))
    with pytest.raises(ValueError, match="out must be a numpy.ndarray or None, got list"):
        fastconv.conv2d(X, W, out=[0.0])
    readonly = np.empty((2, 6, 7, 6), np.float32)
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match="read-only memory"):
        fastconv.conv2d(X, W, out=readonly)


EQUAL_ARGUMENTS = [
    {"stride": 1}, {"stride": np.int64(1)}, {"stride": (1, 1)}, {"stride": [1, 1]},
    {"stride": (np.int32(1), 1)}, {"padding": 1}, {"padding": (1, 1)}, {"padding": [(1, 1), 1]},
    {"padding": "same"}, {"groups": np.uint8(1)}, {"channels_last": np.False_},
]


def test_equal_arguments_of_any_accepted_type_give_the_same_bits():
    expected = fastconv.conv2d(X, W, B, stride=1, padding=1).tobytes()
    for arguments in EQUAL_ARGUMENTS:
        options = {"stride": 1, "padding": 1} | arguments
        for _ in range(2):  # planned, then from the cache
            assert fastconv.conv2d(X, W, B, **options).tobytes() == expected, arguments


def test_dtypes_and_shapes_are_part_of_the_key():
    fastconv.conv2d(X, W, B, padding=1)
    assert fastconv.conv2d(X, W, B.astype(np.float64), padding=1).dtype == np.float64
    assert fastconv.conv2d(X.astype(np.float64), W, padding=1).dtype == np.float64
    assert fastconv.conv2d(X[:1], W, padding=1).shape == (1, 6, 9, 8)
    with pytest.raises(ValueError, match="bias must be 1-D"):
        fastconv.conv2d(X, W, B[:5], padding=1)
    with pytest.raises(TypeError, match="complex"):
        fastconv.conv2d(X.astype(np.complex64), W, padding=1)


class _ArrayLike:
    """An array-like (``__array__``) that is not an ndarray."""

    def __init__(self, array):
        self.array = array

    def __array__(self, dtype=None, copy=None):
        return self.array


def _all_passes(x, w, g):
    options = {"padding": 1, "stride": 1}
    return [
        fastconv.conv2d(x, w, B, **options),
        fastconv.conv2d(np.moveaxis(np.asarray(x), 1, -1).copy(), w, B, channels_last=True,
                        **options),
        fastconv.conv2d_input(X.shape, w, g, **options),
        fastconv.conv2d_weight(x, W.shape, g, **options),
        *[r for r in fastconv.conv2d_backward(x, w, g, **options) if r is not None],
        fastconv.conv2d_backward(x, w, g, needs="bias", **options)[2],
        fastconv.conv_transpose2d(g, w, B[:4], padding=1),
    ]


def test_cached_uncached_and_array_like_calls_give_the_same_bits():
    first = _all_passes(X, W, G)
    cached = _all_passes(X, W, G)
    # array-likes that are not ndarrays have no key: planned and validated on every call
    convolution.clear_plans()
    like = _all_passes(_ArrayLike(X), _ArrayLike(W), _ArrayLike(G))
    assert not convolution._PLANS
    for a, b, c in zip(first, cached, like):
        assert a.tobytes() == b.tobytes() == c.tobytes()


def test_forced_algorithm_is_part_of_the_key(monkeypatch):
    fastconv.conv2d(X, W, padding=1)  # a small call: the plan picks the serial dense call
    monkeypatch.setattr(convolution, "FORCE_FORWARD_ALGORITHM", "gather")
    fastconv.conv2d(X, W, padding=1)
    monkeypatch.setattr(convolution, "FORCE_FORWARD_ALGORITHM", "planar")
    fastconv.conv2d(X, W, padding=1)
    passes = {type(plan.run).__name__ for plan in convolution._PLANS.values()}
    assert passes == {"_DensePass", "_GatherPass", "_PlanarPass"}


def test_the_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(convolution, "_PLAN_LIMIT", 3)
    for n in range(1, 7):
        fastconv.conv1d(np.ones((1, 1, 4 + n)), np.ones((1, 1, 3)))
    assert len(convolution._PLANS) == 3


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", [(5, 4), (23, 19)])
def test_serial_twins_give_the_parallel_kernels_bits(monkeypatch, dtype, size):
    x = RNG.standard_normal((3, 6, *size)).astype(dtype)
    w = RNG.standard_normal((8, 3, 3, 2)).astype(dtype)
    options = {"stride": (2, 1), "padding": ((1, 2), 1), "dilation": (1, 2), "groups": 2,
               "padding_mode": "reflect"}
    g = RNG.standard_normal(fastconv.conv2d(x, w, **options).shape).astype(dtype)

    def run():
        convolution.clear_plans()
        return [fastconv.conv2d(x, w, **options),
                *fastconv.conv2d_backward(x, w, g, **options),
                fastconv.conv2d_backward(x, w, g, needs="bias", **options)[2],
                fastconv.conv_transpose2d(g, w, groups=2, stride=2)]

    monkeypatch.setattr(_kernels, "SERIAL_MAX_WORK", 0)
    parallel = run()
    monkeypatch.setattr(_kernels, "SERIAL_MAX_WORK", 2**62)
    serial = run()
    for a, b in zip(parallel, serial):
        assert a.tobytes() == b.tobytes()


def test_dense_plan_is_cached_and_refuses_like_dense_forward():
    x = np.zeros((1, 1, 4, 4, 3), np.float32)
    packed = _dense.pack_weights(np.zeros((8, 3, 1, 3, 3), np.float32))
    out = np.zeros((1, 1, 2, 2, 8), np.float32)
    _dense.dense_forward(x, packed, None, out, (1, 1, 1), (1, 1, 1), (0, 0, 0))
    before = _dense.dense_plan.cache_info().hits
    _dense.dense_forward(x, packed, None, out, [1, 1, 1], (1, 1, 1), (0, 0, 0))
    assert _dense.dense_plan.cache_info().hits == before + 1
    for _ in range(2):
        with pytest.raises(ValueError, match="stride and dilation must be >= 1"):
            _dense.dense_forward(x, packed, None, out, (1, 0, 1), (1, 1, 1), (0, 0, 0))
