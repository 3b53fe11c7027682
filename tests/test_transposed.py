"""Transposed convolution ``conv_transpose{1,2,3}d``."""

import numpy as np
import pytest

import naive
from conftest import (
    TRANSPOSED_CASES,
    TransposedCase,
    api,
    assert_close,
    layout,
    make_transposed_data,
    to_channels_last,
    tolerance,
)

DTYPES = [pytest.param(np.float32, id="f32"), pytest.param(np.float64, id="f64")]
LAYOUTS = [pytest.param(False, id="cfirst"), pytest.param(True, id="clast")]
NDS = [1, 2, 3]


def _params(cases):
    return [pytest.param(c, id=c.id) for c in cases]


def _case(name, nd):
    return next(c for c in TRANSPOSED_CASES if c.name == name and c.nd == nd)


def _expected(case, x, weight, bias, channels_last, batched=True):
    out = naive.conv_transpose(x, weight, bias, **case.kwargs())
    return to_channels_last(out, batched) if channels_last else out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels_last", LAYOUTS)
@pytest.mark.parametrize("case", _params(TRANSPOSED_CASES))
def test_matches_naive(case, channels_last, dtype, rng):
    x, weight, bias = make_transposed_data(case, rng, dtype)
    got = api("conv_transpose{nd}d", case.nd)(layout(x, channels_last), weight, bias,
                                              **case.kwargs(channels_last))
    assert_close(got, _expected(case, x, weight, bias, channels_last), case.terms, dtype)


def _stride_exceeds_op(case):
    op = naive.as_tuple(case.output_padding, case.nd)
    stride = naive.as_tuple(case.stride, case.nd)
    return all(o < s for o, s in zip(op, stride, strict=True))


@pytest.mark.parametrize("channels_last", LAYOUTS)
@pytest.mark.parametrize(
    "case", _params([c for c in TRANSPOSED_CASES if _stride_exceeds_op(c)])
)
def test_equals_grad_input(case, channels_last, rng):
    """conv_transpose(x, w) == conv_input(out_shape, w, grad_output=x) with the same pads.

    (Only where every output_padding is below the stride: otherwise the extra output rows lie
    outside the forward conv's output and the two calls take differently shaped arguments.)
    """
    x, weight, _ = make_transposed_data(case, rng)
    xa = layout(x, channels_last)
    transposed = api("conv_transpose{nd}d", case.nd)(xa, weight, **case.kwargs(channels_last))
    input_shape = layout(np.empty(case.out_shape), channels_last).shape
    grad_input = api("conv{nd}d_input", case.nd)(
        input_shape, weight, xa, stride=case.stride, padding=case.pads, dilation=case.dilation,
        groups=case.groups, channels_last=channels_last,
    )
    expected = _expected(case, x, weight, None, channels_last)
    assert_close(transposed, expected, case.terms, np.float64)
    assert_close(grad_input, expected, case.terms, np.float64)


@pytest.mark.parametrize("case", _params(TRANSPOSED_CASES))
def test_adjoint_of_forward(case, rng):
    """<conv_transpose(y, w), z> = <y, conv(z, w)> (float64)."""
    y, weight, _ = make_transposed_data(case, rng)
    z = rng.standard_normal(case.out_shape)
    transposed = api("conv_transpose{nd}d", case.nd)(y, weight, **case.kwargs())
    forward = api("conv{nd}d", case.nd)(z, weight, stride=case.stride, padding=case.pads,
                                        dilation=case.dilation, groups=case.groups)
    forward = forward[(slice(None), slice(None)) + tuple(slice(0, n) for n in case.size)]
    magnitude = float(np.vdot(np.abs(y), naive.conv(
        np.abs(z), np.abs(weight), stride=case.stride, padding=case.pads,
        dilation=case.dilation, groups=case.groups,
    )[(slice(None), slice(None)) + tuple(slice(0, n) for n in case.size)]))
    atol = tolerance(np.float64, y.size * case.terms) * magnitude
    lhs, rhs = np.vdot(transposed, z), np.vdot(y, forward)
    assert abs(lhs - rhs) <= atol, (lhs, rhs, atol)


@pytest.mark.parametrize("channels_last", LAYOUTS)
@pytest.mark.parametrize("nd", NDS)
def test_unbatched(nd, channels_last, rng):
    case = _case("everything", nd)
    x, weight, bias = make_transposed_data(case, rng)
    got = api("conv_transpose{nd}d", nd)(layout(x[0], channels_last, batched=False), weight,
                                         bias, **case.kwargs(channels_last))
    expected = _expected(case, x[:1], weight, bias, channels_last)[0]
    assert_close(got, expected, case.terms, np.float64)


@pytest.mark.parametrize("empty", ["batch", "c_in", "c_out"])
@pytest.mark.parametrize("nd", NDS)
def test_empty(nd, empty, rng):
    base = _case("bias", nd)
    counts = dict(batch=dict(n=0), c_in=dict(c_in=0), c_out=dict(c_out=0))[empty]
    case = TransposedCase(**{**base.__dict__, "name": empty, **counts})
    x, weight, bias = make_transposed_data(case, rng)
    got = api("conv_transpose{nd}d", nd)(x, weight, bias, **case.kwargs())
    assert_close(got, _expected(case, x, weight, bias, False), 1, np.float64)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nd", NDS)
def test_out_is_written_and_returned(nd, dtype, rng):
    case = _case("everything", nd)
    x, weight, bias = make_transposed_data(case, rng, dtype)
    out = np.full(case.out_shape, np.nan, dtype)
    got = api("conv_transpose{nd}d", nd)(x, weight, bias, **case.kwargs(), out=out)
    assert got is out
    assert_close(out, _expected(case, x, weight, bias, False), case.terms, dtype)


@pytest.mark.parametrize("nd", NDS)
def test_unusual_inputs_and_promotion(nd, rng):
    """Lists, read-only and negative-stride inputs; int weight promotes to float32 with x."""
    case = _case("everything", nd)
    x, weight, bias = make_transposed_data(case, rng, np.float32)
    w_int = np.round(3 * weight).astype(np.int8)
    xv = np.ascontiguousarray(x[..., ::-1])[..., ::-1]
    xv.setflags(write=False)
    before = xv.copy()
    got = api("conv_transpose{nd}d", nd)(xv, w_int, bias.tolist(), **case.kwargs())
    # a list of Python floats is float64, so the result is float64
    assert got.dtype == np.float64
    assert_close(got, _expected(case, x, w_int, bias, False), case.terms, np.float64)
    np.testing.assert_array_equal(xv, before)
    got = api("conv_transpose{nd}d", nd)(xv, w_int, bias, **case.kwargs())
    assert got.dtype == np.float32
