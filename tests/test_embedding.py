"""fastconv called from users' own Numba code (``@njit`` and ``@njit(parallel=True)``).

Every public function is called from compiled code and compared bitwise with the same call
from Python; value errors raise the exception (type and message) Python raises; type errors
fail at compile time; ``out=`` is reused by a compiled loop without per-call allocation of
the result.

Compiling is the slow part, so a few compiled functions take the options as run-time
arguments and serve many cases (valid and invalid) each.

Compiled code runs the general gather kernels; where the Python level can choose another
algorithm (``convolution.FORCE_FORWARD_ALGORITHM``, ``FORCE_WEIGHT_ALGORITHM``), the
comparison pins it to the gather kernel too.
"""

import warnings

import numpy as np
import pytest
from numba import njit, prange
from numba.core.errors import TypingError
from numba.core.runtime import _nrt_python

import fastconv
from fastconv import (
    _embed,  # noqa: F401  (registers the overloads)
    convolution,
)


@pytest.fixture(autouse=True)
def _python_on_the_gather_kernel(monkeypatch):
    """Compare with Python results computed by the kernels compiled code calls."""
    for name in ("FORCE_FORWARD_ALGORITHM", "FORCE_WEIGHT_ALGORITHM"):
        if hasattr(convolution, name):
            monkeypatch.setattr(convolution, name, "gather")


def _both(function):
    """The function compiled serially and with ``parallel=True`` (each has a prange loop)."""
    return {"njit": njit(function), "parallel": njit(parallel=True)(function)}


def _call(compiled, *args):
    """Call compiled code with every warning (Numba's included) turned into an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return compiled(*args)


# --------------------------------------------------------------------------- compiled callers
def everything(x1, w1, b1, g1, x2, w2, b2, g2, x3, w3, b3, g3, stride, padding, dilation,
               groups, padding_mode, channels_last, needs):
    """Every non-transposed function, 1-D to 3-D, with the options as run-time values."""
    marker = np.zeros(2)
    for i in prange(2):
        marker[i] = i
    options = (stride, padding, dilation, groups, padding_mode, channels_last)
    forward = (
        fastconv.conv1d(x1, w1, b1, *options),
        fastconv.conv2d(x2, w2, b2, stride=stride, padding=padding, dilation=dilation,
                        groups=groups, padding_mode=padding_mode, channels_last=channels_last),
        fastconv.conv3d(x3, w3, bias=b3, stride=stride, padding=padding, dilation=dilation,
                        groups=groups, padding_mode=padding_mode, channels_last=channels_last),
    )
    gradients = (
        fastconv.conv1d_input(x1.shape, w1, g1, *options),
        fastconv.conv1d_weight(x1, w1.shape, g1, *options),
        fastconv.conv1d_backward(x1, w1, g1, *options, needs),
        fastconv.conv2d_input(x2.shape, w2, g2, stride=stride, padding=padding,
                              dilation=dilation, groups=groups, padding_mode=padding_mode,
                              channels_last=channels_last),
        fastconv.conv2d_weight(x2, w2.shape, g2, stride=stride, padding=padding,
                               dilation=dilation, groups=groups, padding_mode=padding_mode,
                               channels_last=channels_last),
        fastconv.conv2d_backward(x2, w2, g2, stride=stride, padding=padding, dilation=dilation,
                                 groups=groups, padding_mode=padding_mode,
                                 channels_last=channels_last, needs=needs),
        fastconv.conv3d_input(x3.shape, w3, g3, *options),
        fastconv.conv3d_weight(x3, w3.shape, g3, *options),
        fastconv.conv3d_backward(x3, w3, g3, *options, needs),
    )
    return forward, gradients, marker


def transpose_all(x1, w1, b1, g1, x2, w2, b2, g2, x3, w3, b3, g3, stride, padding,
                  output_padding, groups, dilation, channels_last, needs, backward_first):
    """Every transposed function, 1-D to 3-D, with the options as run-time values.

    ``backward_first``: the 1-D gradients are also computed before anything else, so that
    invalid options are refused by the validation of the gradients.
    """
    marker = np.zeros(2)
    for i in prange(2):
        marker[i] = i
    options = (stride, padding, output_padding, groups, dilation, channels_last)
    if backward_first:
        fastconv.conv_transpose1d_backward(x1, w1, g1, *options, needs)
    forward = (
        fastconv.conv_transpose1d(x1, w1, b1, *options),
        fastconv.conv_transpose2d(x2, w2, b2, stride=stride, padding=padding,
                                  output_padding=output_padding, groups=groups,
                                  dilation=dilation, channels_last=channels_last),
        fastconv.conv_transpose3d(x3, w3, b3, *options),
    )
    gradients = (
        fastconv.conv_transpose1d_backward(x1, w1, g1, *options, needs),
        fastconv.conv_transpose2d_backward(x2, w2, g2, stride=stride, padding=padding,
                                           output_padding=output_padding, groups=groups,
                                           dilation=dilation, channels_last=channels_last,
                                           needs=needs),
        fastconv.conv_transpose3d_backward(x3, w3, g3, stride, padding, output_padding,
                                           groups, dilation, channels_last, needs=needs),
    )
    return forward, gradients, marker


def steps(field, weight, bias, out, count):
    """``count`` forward calls into ``out`` (the README's time-stepping pattern)."""
    marker = np.zeros(2)
    for i in prange(2):
        marker[i] = i
    for _ in range(count):
        fastconv.conv2d(field, weight, bias, padding=1, out=out)
    return out, marker


def fresh_steps(field, weight, bias, count):
    """``count`` forward calls that each return a new array."""
    marker = np.zeros(2)
    for i in prange(2):
        marker[i] = i
    total = 0.0
    for _ in range(count):
        total += fastconv.conv2d(field, weight, bias, padding=1)[0, 0, 0, 0]
    return total, marker


def variety(x2, w2, b2, x1, w1, x_odd, w_int8, g2, wt2, gt2, xt32, wt32, gt32):
    """Argument forms other than the run-time ints and strings above."""
    marker = np.zeros(2)
    for i in prange(2):
        marker[i] = i
    return (
        fastconv.conv2d(x2, w2, b2, stride=(2, 1), padding=((1, 0), 2), dilation=(1, 2),
                        padding_mode="circular"),
        fastconv.conv1d(x1, w1),
        fastconv.conv2d(x_odd, w_int8, padding=(1, (0, 2))),
        fastconv.conv2d_backward(x2, w2, g2),
        fastconv.conv2d_backward(x2, w2, g2, needs=()),
        fastconv.conv_transpose2d(x2, wt2, stride=2, padding=(1, 0), output_padding=(1, 0)),
        fastconv.conv_transpose2d_backward(x2, wt2, gt2, stride=2, padding=(1, 0),
                                           output_padding=(1, 0)),
        fastconv.conv_transpose2d_backward(x2, wt2, gt2, 2, (1, 0), (1, 0), needs=()),
        fastconv.conv_transpose2d_backward(xt32, wt32, gt32, padding="same", dilation=(2, 1),
                                           channels_last=True),
        fastconv.conv_output_shape((9, 8), 3, stride=2, padding="same"),
        fastconv.conv_output_shape(28, 4, stride=2, padding=1, transposed=True),
        marker,
    )


EVERYTHING = _both(everything)
TRANSPOSE = _both(transpose_all)
STEPS = _both(steps)
FRESH_STEPS = njit(fresh_steps)
VARIETY = njit(variety)
MODES = list(EVERYTHING)


# --------------------------------------------------------------------------- data and reference
def _data(rng, shape, dtype=np.float64):
    return rng.standard_normal(shape).astype(dtype)


def _layout(a, channels_last):
    """Channels-first ``a`` in the requested layout (C-contiguous)."""
    return np.ascontiguousarray(np.moveaxis(a, 1, -1)) if channels_last else a


SIZES = {1: (11,), 2: (7, 6), 3: (5, 4, 6)}
KERNELS = {1: (3,), 2: (3, 2), 3: (2, 3, 2)}


def _arguments(seed, options, channels=(4, 2), kernels=KERNELS, sizes=SIZES, batch=2):
    """x, weight, bias, grad_output for 1-D, 2-D and 3-D (input and output ``channels``).

    ``grad_output`` has the shape of the forward result (any shape if the options are invalid).
    """
    rng = np.random.default_rng(seed)
    stride, padding, dilation, groups, padding_mode, channels_last = options
    c_in, c_out = channels
    args = []
    for d in (1, 2, 3):
        x = _layout(_data(rng, (batch, c_in, *sizes[d])), channels_last)
        weight = _data(rng, (c_out, c_in // groups if groups in (1, 2) else 1, *kernels[d]))
        try:
            shape = getattr(fastconv, f"conv{d}d")(x, weight, **_keywords(options)).shape
        except ValueError:
            shape = x.shape
        args += [x, weight, _data(rng, (c_out,)), _data(rng, shape)]
    return args


def _keywords(options):
    return dict(zip(("stride", "padding", "dilation", "groups", "padding_mode",
                     "channels_last"), options))


def _python_everything(args, options, needs):
    """What :func:`everything` computes, from Python."""
    kwargs = _keywords(options)
    forward, gradients = [], []
    for d in (1, 2, 3):
        x, w, b, _ = args[4 * d - 4:4 * d]
        forward.append(getattr(fastconv, f"conv{d}d")(x, w, b, **kwargs))
    for d in (1, 2, 3):
        x, w, _, g = args[4 * d - 4:4 * d]
        gradients += [
            getattr(fastconv, f"conv{d}d_input")(x.shape, w, g, **kwargs),
            getattr(fastconv, f"conv{d}d_weight")(x, w.shape, g, **kwargs),
            getattr(fastconv, f"conv{d}d_backward")(x, w, g, needs=needs, **kwargs),
        ]
    return tuple(forward), tuple(gradients)


def _transpose_keywords(options):
    return dict(zip(("stride", "padding", "output_padding", "groups", "dilation",
                     "channels_last"), options))


def _transpose_args(seed, options, channels=(4, 6), kernels=KERNELS, sizes=SIZES, batch=2):
    """x, weight (C_in, C_out/groups, *kernel), bias, grad_output for 1-D, 2-D and 3-D.

    ``channels`` are the transposed convolution's input and output channels; grad_output has
    the shape of its result (x's shape if the options are invalid).
    """
    rng = np.random.default_rng(seed)
    groups, channels_last = options[3], options[5]
    c_in, c_out = channels
    args = []
    for d in (1, 2, 3):
        x = _layout(_data(rng, (batch, c_in, *sizes[d])), channels_last)
        weight = _data(rng, (c_in, c_out // groups if groups in (1, 2) else c_out, *kernels[d]))
        try:
            shape = getattr(fastconv, f"conv_transpose{d}d")(
                x, weight, **_transpose_keywords(options)).shape
        except ValueError:
            shape = x.shape
        args += [x, weight, _data(rng, (c_out,)), _data(rng, shape)]
    return args


def _python_transpose(args, options, needs, backward_first=False):
    """What :func:`transpose_all` computes, from Python."""
    kwargs = _transpose_keywords(options)
    if backward_first:
        fastconv.conv_transpose1d_backward(args[0], args[1], args[3], needs=needs, **kwargs)
    forward, gradients = [], []
    for d in (1, 2, 3):
        x, w, b, _ = args[4 * d - 4:4 * d]
        forward.append(getattr(fastconv, f"conv_transpose{d}d")(x, w, b, **kwargs))
    for d in (1, 2, 3):
        x, w, _, g = args[4 * d - 4:4 * d]
        gradients.append(getattr(fastconv, f"conv_transpose{d}d_backward")(
            x, w, g, needs=needs, **kwargs))
    return tuple(forward), tuple(gradients)


def _assert_bitwise(actual, expected):
    """Same type, dtype, shape and bytes (recursing into tuples; None must match None)."""
    if isinstance(expected, tuple):
        assert isinstance(actual, tuple) and len(actual) == len(expected)
        for a, e in zip(actual, expected):
            _assert_bitwise(a, e)
    elif expected is None:
        assert actual is None
    elif isinstance(expected, int):
        assert actual == expected and isinstance(actual, int)
    else:
        assert isinstance(actual, np.ndarray)
        assert actual.dtype == expected.dtype and actual.shape == expected.shape
        assert actual.tobytes() == expected.tobytes()


def _python_error(function, *args):
    with pytest.raises((ValueError, TypeError)) as info:
        function(*args)
    return info.value


def _assert_same_error(compiled, args, expected):
    """The compiled call raises the Python call's exception: same type, same message."""
    with pytest.raises(type(expected)) as info:
        _call(compiled, *args)
    assert type(info.value) is type(expected)
    assert str(info.value) == str(expected)


# --------------------------------------------------------------------------- conv, gradients
OPTIONS = [
    (1, "valid", 1, 1, "zeros", False),
    (2, "same", 1, 1, "zeros", False),
    (1, "full", 2, 1, "zeros", True),
    (3, "same", 1, 2, "reflect", False),
    (2, "same", 2, 1, "replicate", True),
    (1, "same", 1, 2, "circular", True),
]
# one length (one compiled signature); repeats are allowed as in Python
NEEDS = [("input", "weight", "bias"), ("weight", "weight", "weight"), ("bias", "input", "input")]
ALL = NEEDS[0]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("options", OPTIONS, ids=str)
def test_bitwise_equal_to_python(mode, options):
    needs = NEEDS[OPTIONS.index(options) % len(NEEDS)]
    args = _arguments(1, options)
    *results, marker = _call(EVERYTHING[mode], *args, *options, needs)
    _assert_bitwise(tuple(results), _python_everything(args, options, needs))


@pytest.mark.parametrize("shape", [(2, 1, 64), (1, 1, 4000), (3, 2, 50)])
def test_weight_gradient_reductions_follow_numpy(shape):
    """Many rows and few weight tiles split the reduction into chunks that NumPy sums."""
    n, c, length = shape
    options = (1, "valid", 1, 1, "zeros", False)
    args = _arguments(5, options, (c, c), {1: (1,), 2: (1, 1), 3: (1, 1, 1)},
                      {1: (length,), 2: (3, 3), 3: (2, 2, 2)}, batch=n)
    args[3][0, 0, :3] = -0.0  # signed zeros must survive exactly as in NumPy's sums
    *results, marker = _call(EVERYTHING["njit"], *args, *options, ALL)
    _assert_bitwise(tuple(results), _python_everything(args, options, ALL))


@pytest.mark.parametrize(("batch", "channels"), [(0, (4, 2)), (2, (0, 2)), (2, (4, 0))])
def test_empty_batch_and_channels(batch, channels):
    options = OPTIONS[1]
    args = _arguments(6, options, channels, batch=batch)
    *results, marker = _call(EVERYTHING["njit"], *args, *options, ALL)
    _assert_bitwise(tuple(results), _python_everything(args, options, ALL))


ERRORS = [
    (0, "same", 1, 1, "zeros", False),       # stride below 1
    (1, "same", 0, 1, "zeros", False),       # dilation below 1
    (1, "same", 1, 0, "zeros", False),       # groups below 1
    (1, "same", 1, 3, "zeros", False),       # groups not dividing the channels
    (1, "sane", 1, 1, "zeros", False),       # unknown padding string
    (1, "same", 1, 1, "mirror", False),      # unknown padding mode
    (1, "full", 2, 1, "reflect", False),     # reflect pad larger than the input
    (1, "valid", 5, 1, "zeros", False),      # dilated kernel larger than the input
]


@pytest.mark.parametrize("options", ERRORS, ids=str)
def test_errors_match_python(options):
    args = _arguments(2, options)
    expected = _python_error(_python_everything, args, options, ALL)
    _assert_same_error(EVERYTHING["njit"], (*args, *options, ALL), expected)


@pytest.mark.parametrize("problem", ["bias", "grad_output", "needs", "needs-unknown"])
def test_shapes_and_needs_are_checked(problem):
    options, needs = OPTIONS[1], ALL
    args = _arguments(3, options)
    if problem == "bias":
        args[2] = np.zeros(5)  # conv1d bias with 5 values for 2 output channels
    elif problem == "grad_output":
        args[7] = np.ascontiguousarray(args[7][:, :, :-1])  # conv2d grad_output too short
    elif problem == "needs":
        needs = ("input", "weights", "bias")
    else:
        needs = ("everything", "input", "bias")
    expected = _python_error(_python_everything, args, options, needs)
    _assert_same_error(EVERYTHING["njit"], (*args, *options, needs), expected)


# --------------------------------------------------------------------------- transposed
# (stride, padding, output_padding, groups, dilation, channels_last), and the gradients'
# run-time ``needs`` (one length: one compiled signature)
TRANSPOSE_OPTIONS = [
    ((1, "valid", 0, 1, 1, False), ALL),
    ((2, "same", 1, 2, 1, True), ("weight", "weight", "weight")),
    ((2, "same", 0, 1, 2, False), ("bias", "input", "input")),
    ((3, "full", 2, 1, 1, True), ("bias", "bias", "bias")),
    ((1, "valid", 1, 2, 2, False), ("input", "input", "input")),
    ((2, "valid", 1, 1, 3, True), ("weight", "bias", "weight")),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("options", "needs"), TRANSPOSE_OPTIONS, ids=str)
def test_transpose_bitwise(mode, options, needs):
    args = _transpose_args(7, options)
    *results, marker = _call(TRANSPOSE[mode], *args, *options, needs, False)
    _assert_bitwise(tuple(results), _python_transpose(args, options, needs))


@pytest.mark.parametrize(
    ("channels", "sizes", "batch"),
    [((2, 1), {1: (20000,), 2: (100, 200), 3: (1, 5, 4000)}, 2),  # 2, 16 and 10 chunks
     ((3, 4), {1: (3000,), 2: (5, 600), 3: (2, 3, 500)}, 3),  # 3, 15 and 16 chunks
     ((4, 6), SIZES, 0), ((0, 6), SIZES, 2), ((4, 0), SIZES, 2)],
    ids=["one-channel", "channels", "empty-batch", "no-inputs", "no-outputs"],
)
def test_transpose_bias_reductions_follow_numpy(channels, sizes, batch):
    """Large output gradients split the bias sums into chunks that NumPy sums (and empties)."""
    options = (1, "valid", 0, 1, 1, False)
    args = _transpose_args(11, options, channels, {1: (1,), 2: (1, 1), 3: (1, 1, 1)}, sizes,
                           batch)
    if args[3].size:
        args[3][0, 0, :3] = -0.0  # signed zeros must survive exactly as in NumPy's sums
    *results, marker = _call(TRANSPOSE["njit"], *args, *options, ALL, False)
    _assert_bitwise(tuple(results), _python_transpose(args, options, ALL))


@pytest.mark.parametrize("backward_first", [False, True], ids=["transpose", "backward"])
@pytest.mark.parametrize("options", [(2, "same", 2, 1, 1, False), (1, "valid", 0, 3, 1, False),
                                     (2, "full", 0, 1, 0, False), (1, "sane", 0, 1, 1, False),
                                     (0, "same", 0, 1, 1, False)], ids=str)
def test_transpose_errors_match_python(options, backward_first):
    args = _transpose_args(8, options)
    expected = _python_error(_python_transpose, args, options, ALL, backward_first)
    _assert_same_error(TRANSPOSE["njit"], (*args, *options, ALL, backward_first), expected)


@pytest.mark.parametrize("problem", ["grad_output-1d", "grad_output-3d", "needs",
                                     "needs-unknown"])
def test_transpose_gradient_shapes_and_needs_are_checked(problem):
    options, needs = TRANSPOSE_OPTIONS[1][0], ALL
    args = _transpose_args(12, options)
    if problem == "grad_output-1d":
        args[3] = np.ascontiguousarray(args[3][:, :-1])  # one position too few
    elif problem == "grad_output-3d":
        args[11] = np.ascontiguousarray(args[11][:, :, :, :-1])  # one column too few
    elif problem == "needs":
        needs = ("input", "weights", "bias")
    else:
        needs = ("everything", "input", "bias")
    expected = _python_error(_python_transpose, args, options, needs)
    _assert_same_error(TRANSPOSE["njit"], (*args, *options, needs, False), expected)


# --------------------------------------------------------------------------- argument forms
def test_argument_forms():
    rng = np.random.default_rng(9)
    x2, w2, b2 = _data(rng, (2, 3, 9, 8)), _data(rng, (2, 3, 3, 3)), _data(rng, (2,))
    x1, w1 = _data(rng, (3, 12)), _data(rng, (1, 3, 4))  # unbatched 1-D input
    base = _data(rng, (3, 7, 2, 10), np.float32)
    x_odd = base.transpose(2, 0, 1, 3)[:, :, :, ::-2]  # non-contiguous, negative stride
    x_odd.flags.writeable = False
    w_int8 = rng.integers(-3, 4, (3, 3, 3, 2)).astype(np.int8)  # float32 x int8 -> float32
    g2 = _data(rng, fastconv.conv2d(x2, w2).shape)
    wt2 = _data(rng, (3, 2, 3, 2))
    gt2 = _data(rng, fastconv.conv_transpose2d(x2, wt2, stride=2, padding=(1, 0),
                                               output_padding=(1, 0)).shape)
    xt32 = _data(rng, (2, 5, 7, 3), np.float32)  # channels-last
    wt32 = _data(rng, (3, 4, 2, 3), np.float32)
    gt32 = _data(rng, fastconv.conv_transpose2d(xt32, wt32, padding="same", dilation=(2, 1),
                                                channels_last=True).shape, np.float32)
    *results, marker = _call(VARIETY, x2, w2, b2, x1, w1, x_odd, w_int8, g2, wt2, gt2, xt32,
                             wt32, gt32)
    expected = (
        fastconv.conv2d(x2, w2, b2, stride=(2, 1), padding=((1, 0), 2), dilation=(1, 2),
                        padding_mode="circular"),
        fastconv.conv1d(x1, w1),
        fastconv.conv2d(x_odd, w_int8, padding=(1, (0, 2))),
        fastconv.conv2d_backward(x2, w2, g2),
        fastconv.conv2d_backward(x2, w2, g2, needs=()),
        fastconv.conv_transpose2d(x2, wt2, stride=2, padding=(1, 0), output_padding=(1, 0)),
        fastconv.conv_transpose2d_backward(x2, wt2, gt2, stride=2, padding=(1, 0),
                                           output_padding=(1, 0)),
        fastconv.conv_transpose2d_backward(x2, wt2, gt2, 2, (1, 0), (1, 0), needs=()),
        fastconv.conv_transpose2d_backward(xt32, wt32, gt32, padding="same", dilation=(2, 1),
                                           channels_last=True),
        fastconv.conv_output_shape((9, 8), 3, stride=2, padding="same"),
        fastconv.conv_output_shape(28, 4, stride=2, padding=1, transposed=True),
    )
    _assert_bitwise(tuple(results), expected)
    assert results[2].dtype == np.float32
    assert all(gradient.dtype == np.float32 for gradient in results[8])


# --------------------------------------------------------------------------- out=
def _field(seed):
    rng = np.random.default_rng(seed)
    return _data(rng, (1, 3, 8, 8)), _data(rng, (3, 3, 3, 3)), _data(rng, (3,))


@pytest.mark.parametrize("mode", MODES)
def test_out_reused_by_a_compiled_loop(mode):
    field, weight, bias = _field(10)
    out = np.empty_like(field)
    result, marker = _call(STEPS[mode], field, weight, bias, out, 1000)
    assert result is out or np.shares_memory(result, out)
    _assert_bitwise(out, fastconv.conv2d(field, weight, bias, padding=1))


def test_out_aliasing_an_input_is_still_correct():
    field, weight, bias = _field(11)
    expected = fastconv.conv2d(field, weight, bias, padding=1)
    _call(STEPS["njit"], field, weight, bias, field, 1)  # out is the input itself
    _assert_bitwise(field, expected)


def _allocations_per_call(compiled, *args):
    """Numba allocations of one call inside ``compiled``'s loop (the last argument: count)."""
    counts = []
    for count in (10, 30):
        before = _nrt_python.memsys_get_stats_alloc()
        _call(compiled, *args, count)
        counts.append(_nrt_python.memsys_get_stats_alloc() - before)
    assert (counts[1] - counts[0]) % 20 == 0
    return (counts[1] - counts[0]) // 20


def test_out_loop_allocates_no_result():
    """With ``out=`` a call allocates one array less: the result.

    Counted with Numba's allocation statistics. What remains per call is small scratch: the
    packed weights, the bias vector, the geometry record and capacities, and the kernel's
    per-task buffers.
    """
    field, weight, bias = _field(12)
    out = np.empty_like(field)
    enabled = _nrt_python.memsys_stats_enabled()
    _nrt_python.memsys_enable_stats()
    try:
        with_out = _allocations_per_call(STEPS["njit"], field, weight, bias, out)
        without_out = _allocations_per_call(FRESH_STEPS, field, weight, bias)
    finally:
        if not enabled:
            _nrt_python.memsys_disable_stats()
    assert without_out == with_out + 1


# --------------------------------------------------------------------------- compile-time errors
@njit
def _typing_probe_conv2d(x, w, stride, out):
    return fastconv.conv2d(x, w, stride=stride, out=out)


@pytest.mark.parametrize(
    ("x", "w", "stride", "out", "words"),
    [
        (np.zeros((1, 2, 5, 5), np.complex128), np.zeros((1, 2, 3, 3)), 1, None, "complex"),
        (np.zeros((1, 2, 5, 5)), np.zeros((1, 2, 3)), 1, None, "weight must have 4 dims"),
        (np.zeros((2, 5, 5, 5, 5)), np.zeros((1, 2, 3, 3)), 1, None, "x must have 4 dims"),
        (np.zeros((1, 2, 5, 5)), np.zeros((1, 2, 3, 3)), 1.5, None, "stride must be an int"),
        (np.zeros((1, 2, 5, 5)), np.zeros((1, 2, 3, 3)), 1, np.zeros((1, 1, 3, 3), np.float32),
         "out has dtype float32"),
    ],
    ids=["complex", "weight-ndim", "x-ndim", "float-stride", "out-dtype"],
)
def test_type_errors_fail_at_compile_time(x, w, stride, out, words):
    with pytest.raises(TypingError, match=words):
        _call(_typing_probe_conv2d, x, w, stride, out)


@njit
def _typing_probe_transpose_backward(x, w, g, output_padding, needs):
    return fastconv.conv_transpose2d_backward(x, w, g, output_padding=output_padding,
                                              needs=needs)


@pytest.mark.parametrize(
    ("g", "output_padding", "needs", "words"),
    [
        (np.zeros((1, 3, 7, 7)), 1.5, ("input",), "conv_transpose2d_backward in compiled code: "
         "output_padding must be an int"),
        (np.zeros((1, 3, 7)), 0, ("input",), "grad_output must have 4 dims"),
        (np.zeros((1, 3, 7, 7), np.complex64), 0, ("input",), "grad_output has dtype complex"),
        (np.zeros((1, 3, 7, 7)), 0, 1, "needs must be a string or a tuple of strings"),
    ],
    ids=["float-output_padding", "grad_output-ndim", "complex", "int-needs"],
)
def test_transpose_backward_type_errors_fail_at_compile_time(g, output_padding, needs, words):
    x, w = np.zeros((1, 2, 5, 5)), np.zeros((2, 3, 3, 3))
    with pytest.raises(TypingError, match=words):
        _call(_typing_probe_transpose_backward, x, w, g, output_padding, needs)


def test_array_likes_and_read_only_out_fail_at_compile_time():
    @njit
    def with_list(w):
        return fastconv.conv1d([[1.0, 2.0, 3.0]], w)

    with pytest.raises(TypingError, match="x must be a NumPy array"):
        _call(with_list, np.zeros((1, 1, 2)))
    out = np.zeros((1, 1, 3, 3))
    out.flags.writeable = False
    with pytest.raises(TypingError, match="out has read-only memory"):
        _call(_typing_probe_conv2d, np.zeros((1, 2, 5, 5)), np.zeros((1, 2, 3, 3)), 1, out)
