"""Transposed convolution ``conv_transpose{1,2,3}d``."""

import math

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


# --------------------------------------------------------------------------- gradients
def _gradient_terms(case):
    """Most products summed into one element of ``(grad_x, grad_weight, grad_bias)``."""
    return ((case.c_out // case.groups) * math.prod(case.kernel),
            case.n * math.prod(case.size), case.n * math.prod(case.out_size))


def _naive_gradients(case, x, weight, grad, channels_last):
    grad_x, grad_w, grad_b = naive.conv_transpose_backward(x, weight, grad, **case.kwargs())
    return (to_channels_last(grad_x) if channels_last else grad_x), grad_w, grad_b


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels_last", LAYOUTS)
@pytest.mark.parametrize("case", _params(TRANSPOSED_CASES))
def test_backward_matches_naive(case, channels_last, dtype, rng):
    x, weight, _ = make_transposed_data(case, rng, dtype)
    grad = rng.standard_normal(case.out_shape).astype(dtype)
    got = api("conv_transpose{nd}d_backward", case.nd)(
        layout(x, channels_last), weight, layout(grad, channels_last),
        **case.kwargs(channels_last))
    expected = _naive_gradients(case, x, weight, grad, channels_last)
    for part, want, terms in zip(got, expected, _gradient_terms(case), strict=True):
        assert_close(part, want, terms, dtype)


@pytest.mark.parametrize("case", _params(TRANSPOSED_CASES))
def test_backward_adjoint_identities(case, rng):
    """<conv_transpose(x, w) + b, g> - <b, sum g> = <x, grad_x> = <w, grad_w> (float64)."""
    x, weight, _ = make_transposed_data(case, rng)
    bias = rng.standard_normal(case.c_out)
    grad = rng.standard_normal(case.out_shape)
    transpose = api("conv_transpose{nd}d", case.nd)
    grad_x, grad_w, grad_b = api("conv_transpose{nd}d_backward", case.nd)(
        x, weight, grad, **case.kwargs())
    inner = np.vdot(transpose(x, weight, bias, **case.kwargs()), grad) - np.vdot(bias, grad_b)
    magnitude = float(np.vdot(naive.conv_transpose(np.abs(x), np.abs(weight), **case.kwargs()),
                              np.abs(grad)))
    atol = tolerance(np.float64, grad.size * case.terms) * magnitude
    for other in (np.vdot(x, grad_x), np.vdot(weight, grad_w)):
        assert abs(inner - other) <= atol, (inner, other, atol)


@pytest.mark.parametrize("needs", [(), ("input",), ("weight",), ("bias",), ("weight", "bias"),
                                   ("input", "bias")], ids=lambda n: "+".join(n) or "nothing")
def test_backward_needs(needs, rng):
    """Each gradient is computed only when asked for, and equals the one computed with all."""
    case = _case("everything", 2)
    x, weight, _ = make_transposed_data(case, rng, np.float32)
    grad = rng.standard_normal(case.out_shape).astype(np.float32)
    backward = api("conv_transpose{nd}d_backward", 2)
    every = backward(x, weight, grad, **case.kwargs())
    got = backward(x, weight, grad, **case.kwargs(), needs=needs)
    for name, part, full in zip(("input", "weight", "bias"), got, every, strict=True):
        if name in needs:
            np.testing.assert_array_equal(part, full)
        else:
            assert part is None


@pytest.mark.parametrize("channels_last", LAYOUTS)
@pytest.mark.parametrize("nd", NDS)
def test_backward_unbatched_and_strided(nd, channels_last, rng):
    """Unbatched arrays, and a grad_output that is a strided view, in both layouts."""
    case = _case("everything", nd)
    x, weight, _ = make_transposed_data(case, rng, np.float32)
    grad = rng.standard_normal(case.out_shape).astype(np.float32)
    wide = np.zeros((*grad.shape[:-1], 2 * grad.shape[-1]), np.float32)
    wide[..., ::2] = grad
    view = to_channels_last(wide)[..., ::2, :] if channels_last else wide[..., ::2]
    kwargs = case.kwargs(channels_last)
    got = api("conv_transpose{nd}d_backward", nd)(layout(x, channels_last), weight, view,
                                                  **kwargs)
    expected = _naive_gradients(case, x, weight, grad, channels_last)
    for part, want, terms in zip(got, expected, _gradient_terms(case), strict=True):
        assert_close(part, want, terms, np.float32)
    single = api("conv_transpose{nd}d_backward", nd)(
        layout(x[0], channels_last, batched=False), weight,
        layout(grad[0], channels_last, batched=False), **kwargs)
    expected = _naive_gradients(case, x[:1], weight, grad[:1], channels_last)
    assert_close(single[0], expected[0][0], _gradient_terms(case)[0], np.float32)
    for part, want, terms in zip(single[1:], expected[1:], _gradient_terms(case)[1:],
                                 strict=True):
        assert_close(part, want, terms, np.float32)


@pytest.mark.parametrize("channels_last", LAYOUTS)
def test_backward_bias_of_large_gradient(channels_last, rng):
    """A bias gradient summed in several shape-fixed chunks on every thread (both layouts)."""
    x = rng.standard_normal((4, 4, 40, 37)).astype(np.float32)
    weight = rng.standard_normal((4, 5, 3, 3)).astype(np.float32)
    grad = rng.standard_normal((4, 5, 80, 74)).astype(np.float32)
    _, grad_w, grad_b = api("conv_transpose{nd}d_backward", 2)(
        layout(x, channels_last), weight, layout(grad, channels_last), stride=2, padding=1,
        output_padding=1, channels_last=channels_last, needs=("weight", "bias"))
    assert_close(grad_b, grad.astype(np.float64).sum(axis=(0, 2, 3)), grad[:, 0].size,
                 np.float32)
    expected = naive.conv_transpose_backward(x, weight, grad, stride=2, padding=1,
                                             output_padding=1)[1]
    assert_close(grad_w, expected, x[:, 0].size, np.float32)


@pytest.mark.parametrize("channels_last", LAYOUTS)
@pytest.mark.parametrize("empty", ["batch", "c_in", "c_out"])
@pytest.mark.parametrize("nd", NDS)
def test_backward_empty(nd, empty, channels_last, rng):
    """Empty batches and channel counts give empty (or zero) gradients of the right shapes."""
    base = _case("bias", nd)
    counts = dict(batch=dict(n=0), c_in=dict(c_in=0), c_out=dict(c_out=0))[empty]
    case = TransposedCase(**{**base.__dict__, "name": empty, **counts})
    x, weight, _ = make_transposed_data(case, rng)
    grad = rng.standard_normal(case.out_shape)
    got = api("conv_transpose{nd}d_backward", nd)(
        layout(x, channels_last), weight, layout(grad, channels_last),
        **case.kwargs(channels_last))
    expected = _naive_gradients(case, x, weight, grad, channels_last)
    for part, want in zip(got, expected, strict=True):
        assert_close(part, want, 1, np.float64)


def test_backward_bad_arguments(rng):
    case = _case("everything", 2)
    x, weight, _ = make_transposed_data(case, rng)
    grad = rng.standard_normal(case.out_shape)
    backward = api("conv_transpose{nd}d_backward", 2)
    with pytest.raises(ValueError, match=r"grad_output has shape \(2, 6, 8, 15\)"):
        backward(x, weight, grad[:, :, :-1], **case.kwargs())
    with pytest.raises(ValueError, match="needs"):
        backward(x, weight, grad, **case.kwargs(), needs=("input", "gradient"))
    with pytest.raises(ValueError, match=r"weight.shape\[0\]"):
        backward(x[:, :3], weight, grad, **case.kwargs())
    with pytest.raises(ValueError, match="output_padding"):
        backward(x, weight, grad, **{**case.kwargs(), "output_padding": 5})
    with pytest.raises(TypeError, match="grad_output"):
        backward(x, weight, grad.astype(complex), **case.kwargs())
