"""Gradients: ``conv{d}d_input``, ``conv{d}d_weight`` and ``conv{d}d_backward``.

Checked against the naive reference (scatter form, independent of the engine), by float64 central
finite differences of ``L = sum(conv(x, w, b) * g)``, and by the adjoint identities
``<conv(x, w), g> = <x, grad_input> = <w, grad_weight>``.
"""

import itertools
import math

import numpy as np
import pytest

import naive
from conftest import (
    CASES,
    Case,
    api,
    assert_close,
    case_params,
    layout,
    make_data,
    to_channels_last,
    tolerance,
    with_batch,
)

DTYPES = [pytest.param(np.float32, id="f32"), pytest.param(np.float64, id="f64")]
LAYOUTS = [pytest.param(False, id="cfirst"), pytest.param(True, id="clast")]
NDS = [1, 2, 3]
MODES = ["zeros", "reflect", "replicate", "circular"]
PARTS = ("input", "weight", "bias")


def _case(name, nd):
    return next(c for c in CASES if c.name == name and c.nd == nd)


def _cl(a, channels_last, batched=True):
    return to_channels_last(a, batched) if channels_last else a


def _reference(case, x, weight, grad_output):
    """(grad_input, grad_weight, grad_bias) from the naive reference, channels-first."""
    kw = case.kwargs()
    return (naive.conv_input(x.shape, weight, grad_output, **kw),
            naive.conv_weight(x, weight.shape, grad_output, **kw),
            naive.conv_bias(grad_output, case.nd))


# --------------------------------------------------------------------------- vs naive


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels_last", LAYOUTS)
@pytest.mark.parametrize("case", case_params())
def test_conv_input_matches_naive(case, channels_last, dtype, rng):
    x, weight, _, grad_output = make_data(case, rng, dtype)
    input_shape = layout(x, channels_last).shape
    got = api("conv{nd}d_input", case.nd)(input_shape, weight, layout(grad_output, channels_last),
                                          **case.kwargs(channels_last))
    expected = naive.conv_input(x.shape, weight, grad_output, **case.kwargs())
    assert_close(got, _cl(expected, channels_last), case.input_terms, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels_last", LAYOUTS)
@pytest.mark.parametrize("case", case_params())
def test_conv_weight_matches_naive(case, channels_last, dtype, rng):
    x, weight, _, grad_output = make_data(case, rng, dtype)
    got = api("conv{nd}d_weight", case.nd)(layout(x, channels_last), weight.shape,
                                           layout(grad_output, channels_last),
                                           **case.kwargs(channels_last))
    expected = naive.conv_weight(x, weight.shape, grad_output, **case.kwargs())
    assert_close(got, expected, case.weight_terms, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels_last", LAYOUTS)
@pytest.mark.parametrize("case", case_params())
def test_backward_matches_naive(case, channels_last, dtype, rng):
    x, weight, _, grad_output = make_data(case, rng, dtype)
    grads = api("conv{nd}d_backward", case.nd)(layout(x, channels_last), weight,
                                               layout(grad_output, channels_last),
                                               **case.kwargs(channels_last))
    assert isinstance(grads, tuple) and len(grads) == 3
    grad_input, grad_weight, grad_bias = _reference(case, x, weight, grad_output)
    assert_close(grads[0], _cl(grad_input, channels_last), case.input_terms, dtype)
    assert_close(grads[1], grad_weight, case.weight_terms, dtype)
    assert_close(grads[2], grad_bias, case.weight_terms, dtype)


NEEDS = [subset for r in range(4) for subset in itertools.combinations(PARTS, r)]
NEEDS.append(("bias", "input"))  # order does not matter


@pytest.mark.parametrize("needs", NEEDS, ids=lambda n: "+".join(n) or "nothing")
@pytest.mark.parametrize("nd", NDS)
def test_backward_needs(nd, needs, rng):
    case = _case("everything", nd)
    x, weight, _, grad_output = make_data(case, rng, np.float32)
    grads = api("conv{nd}d_backward", nd)(x, weight, grad_output, **case.kwargs(), needs=needs)
    assert isinstance(grads, tuple) and len(grads) == 3
    expected = _reference(case, x, weight, grad_output)
    terms = (case.input_terms, case.weight_terms, case.weight_terms)
    for part, got, want, n_terms in zip(PARTS, grads, expected, terms, strict=True):
        if part in needs:
            assert_close(got, want, n_terms, np.float32)
        else:
            assert got is None, part


@pytest.mark.parametrize("shape", [(4, 5, 81, 74), (1, 2, 300, 301), (2, 3, 7, 9),
                                   (0, 3, 7, 9)],
                         ids=["chunks-cross-samples", "single-sample", "serial", "empty-batch"])
@pytest.mark.parametrize("contiguous", [True, False], ids=["contiguous", "strided"])
def test_bias_alone(shape, contiguous, rng):
    """The bias gradient alone (channels-first planes summed in shape-fixed chunks)."""
    x = rng.standard_normal((shape[0], 2, *shape[2:])).astype(np.float32)
    weight = rng.standard_normal((shape[1], 2, 1, 1)).astype(np.float32)
    grad = rng.standard_normal(shape).astype(np.float32)
    if not contiguous:
        grad = np.repeat(grad, 2, axis=-1)[..., ::2]
    got = api("conv{nd}d_backward", 2)(x, weight, grad, needs=("bias",))[2]
    assert_close(got, grad.astype(np.float64).sum(axis=(0, 2, 3)), grad[:, 0].size, np.float32)


@pytest.mark.parametrize("channels_last", LAYOUTS)
@pytest.mark.parametrize("nd", NDS)
def test_unbatched(nd, channels_last, rng):
    case = with_batch(_case("everything", nd), 1)
    x, weight, _, grad_output = make_data(case, rng)
    xu = layout(x[0], channels_last, batched=False)
    gu = layout(grad_output[0], channels_last, batched=False)
    kw = case.kwargs(channels_last)
    grad_input, grad_weight, grad_bias = _reference(case, x, weight, grad_output)
    expected_input = _cl(grad_input, channels_last)[0]
    assert_close(api("conv{nd}d_input", nd)(xu.shape, weight, gu, **kw), expected_input,
                 case.input_terms, np.float64)
    assert_close(api("conv{nd}d_weight", nd)(xu, weight.shape, gu, **kw), grad_weight,
                 case.weight_terms, np.float64)
    grads = api("conv{nd}d_backward", nd)(xu, weight, gu, **kw)
    for got, want in zip(grads, (expected_input, grad_weight, grad_bias), strict=True):
        assert_close(got, want, max(case.input_terms, case.weight_terms), np.float64)


@pytest.mark.parametrize("nd", NDS)
def test_unusual_inputs_not_modified(nd, rng):
    """Read-only, negative-stride, Fortran and broadcast arguments all work and stay unchanged."""
    case = _case("everything", nd)
    x, weight, _, grad_output = make_data(case, rng)
    xv = np.asfortranarray(x)
    wv = np.ascontiguousarray(weight[:, ::-1])[:, ::-1]
    gv = np.broadcast_to(grad_output[:1], grad_output.shape)
    for a in (xv, wv):
        a.setflags(write=False)
    before = [a.copy() for a in (xv, wv, gv)]
    grads = api("conv{nd}d_backward", nd)(xv, wv, gv, **case.kwargs())
    expected = _reference(case, x, weight, np.array(gv))
    terms = (case.input_terms, case.weight_terms, case.weight_terms)
    for got, want, n_terms in zip(grads, expected, terms, strict=True):
        assert_close(got, want, n_terms, np.float64)
    for view, copy in zip((xv, wv, gv), before, strict=True):
        np.testing.assert_array_equal(view, copy)


def test_dtype_promotion(rng):
    """Gradient dtype: result_type of the array arguments and float32."""
    case = _case("basic", 2)
    x, weight, _, grad_output = make_data(case, rng)
    x16, w_int = x.astype(np.float16), np.round(4 * weight).astype(np.int16)
    g32 = grad_output.astype(np.float32)
    got = api("conv{nd}d_input", 2)(x.shape, w_int, g32)
    assert got.dtype == np.float32
    assert_close(got, naive.conv_input(x.shape, w_int, g32), case.input_terms, np.float32)
    got = api("conv{nd}d_weight", 2)(x16, weight.shape, grad_output)
    assert got.dtype == np.float64
    assert_close(got, naive.conv_weight(x16, weight.shape, grad_output), case.weight_terms,
                 np.float64)
    grads = api("conv{nd}d_backward", 2)(x16, w_int, g32)
    assert [g.dtype for g in grads] == [np.float32] * 3


# --------------------------------------------------------------------------- empty


@pytest.mark.parametrize("channels_last", LAYOUTS)
@pytest.mark.parametrize("empty", ["batch", "c_in", "c_out"])
@pytest.mark.parametrize("nd", NDS)
def test_empty(nd, empty, channels_last, rng):
    base = _case("pad1", nd)
    counts = dict(batch=dict(n=0), c_in=dict(c_in=0), c_out=dict(c_out=0))[empty]
    case = Case(**{**base.__dict__, "name": empty, **counts})
    x, weight, _, grad_output = make_data(case, rng)
    xa, ga = layout(x, channels_last), layout(grad_output, channels_last)
    kw = case.kwargs(channels_last)
    grad_input, grad_weight, grad_bias = _reference(case, x, weight, grad_output)
    assert_close(api("conv{nd}d_input", nd)(xa.shape, weight, ga, **kw),
                 _cl(grad_input, channels_last), 1, np.float64)
    assert_close(api("conv{nd}d_weight", nd)(xa, weight.shape, ga, **kw), grad_weight, 1,
                 np.float64)
    grads = api("conv{nd}d_backward", nd)(xa, weight, ga, **kw)
    for got, want in zip(grads, (_cl(grad_input, channels_last), grad_weight, grad_bias),
                         strict=True):
        assert_close(got, want, 1, np.float64)


# --------------------------------------------------------------------------- IEEE specials


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nd", NDS)
def test_nan_propagates_through_zero_weight(nd, dtype, rng):
    """A NaN in grad_output reaches grad_input even through zero weights, and grad_weight."""
    case = _case("everything", nd)
    x, _, _, grad_output = make_data(case, rng, dtype)
    grad_output = grad_output.copy()
    grad_output.reshape(-1)[rng.integers(grad_output.size)] = np.nan
    weight = np.zeros(case.weight_shape, dtype)
    grads = api("conv{nd}d_backward", nd)(x, weight, grad_output, **case.kwargs())
    expected = _reference(case, x, weight, grad_output)
    assert np.isnan(expected[0]).any() and np.isnan(expected[1]).any()
    terms = (case.input_terms, case.weight_terms, case.weight_terms)
    for got, want, n_terms in zip(grads, expected, terms, strict=True):
        assert_close(got, want, n_terms, dtype)


# --------------------------------------------------------------------------- finite differences

_FD_CASES = [
    Case(f"fd-{mode}", n=2, c_in=4, c_out=2, size=(5, 4, 3)[:nd], kernel=(3, 2, 2)[:nd],
         stride=(2, 1, 2)[:nd], padding=((2, 1), (0, 1), (1, 1))[:nd], dilation=(1, 2, 1)[:nd],
         groups=2, bias=True, padding_mode=mode)
    for nd in NDS for mode in MODES
]


def _loss(conv, x, weight, bias, grad_output, kw):
    return float(np.sum(conv(x, weight, bias, **kw) * grad_output))


def _central_differences(f, a, h):
    """Gradient of scalar ``f`` at every element of ``a`` (modified in place, then restored)."""
    grad = np.empty_like(a)
    flat, grad_flat = a.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        saved = flat[i]
        flat[i] = saved + h
        up = f()
        flat[i] = saved - h
        down = f()
        flat[i] = saved
        grad_flat[i] = (up - down) / (2 * h)
    return grad


@pytest.mark.parametrize("case", case_params(_FD_CASES))
def test_finite_differences(case, rng):
    """float64 central differences of ``L = sum(conv(x, w, b) * g)`` against the gradients."""
    x, weight, bias, grad_output = make_data(case, rng)
    kw = case.kwargs()
    conv = api("conv{nd}d", case.nd)

    def loss():
        return _loss(conv, x, weight, bias, grad_output, kw)

    h = 1e-3
    # L is linear in each argument, so the differences have no truncation error: only the
    # rounding in L, amplified by 1 / h, bounded through the sum of |products|.
    magnitude = float(np.sum(naive.conv(np.abs(x), np.abs(weight), np.abs(bias), **kw)
                             * np.abs(grad_output)))
    n_terms = grad_output.size * (case.forward_terms + 1)
    atol = tolerance(np.float64, n_terms) * magnitude / h
    numeric = [_central_differences(loss, a, h) for a in (x, weight, bias)]
    grads = api("conv{nd}d_backward", case.nd)(x, weight, grad_output, **kw)
    for got, want in zip(grads, numeric, strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=atol)


# --------------------------------------------------------------------------- adjoint identities


@pytest.mark.parametrize("channels_last", LAYOUTS)
@pytest.mark.parametrize("case", case_params())
def test_adjoint_identities(case, channels_last, rng):
    """<conv(x, w), g> = <x, conv_input(g)> = <w, conv_weight(x, g)> in float64."""
    x, weight, _, grad_output = make_data(case, rng)
    xa, ga = layout(x, channels_last), layout(grad_output, channels_last)
    kw = case.kwargs(channels_last)
    forward = np.vdot(api("conv{nd}d", case.nd)(xa, weight, **kw), ga)
    via_input = np.vdot(xa, api("conv{nd}d_input", case.nd)(xa.shape, weight, ga, **kw))
    via_weight = np.vdot(weight, api("conv{nd}d_weight", case.nd)(xa, weight.shape, ga, **kw))
    magnitude = float(np.vdot(naive.conv(np.abs(x), np.abs(weight), **case.kwargs()),
                              np.abs(grad_output)))
    atol = tolerance(np.float64, grad_output.size * case.forward_terms) * magnitude
    assert abs(forward - via_input) <= atol, (forward, via_input, atol)
    assert abs(forward - via_weight) <= atol, (forward, via_weight, atol)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("nd", NDS)
def test_folding_adds_padded_contributions(nd, mode, rng):
    """For non-zero padding modes the border of grad_input collects the padded copies' gradients.

    With an all-ones weight and grad_output, grad_input counts how often each input element is
    read; the counts must sum to (outputs x taps), which zero padding does not reach.
    """
    case = Case("count", n=1, c_in=1, c_out=1, size=(4, 3, 3)[:nd], kernel=(3, 2, 3)[:nd],
                padding=((2, 1), (1, 2), (2, 2))[:nd], padding_mode=mode)
    weight = np.ones(case.weight_shape)
    grad_output = np.ones(case.out_shape)
    got = api("conv{nd}d_input", nd)(case.x_shape, weight, grad_output, **case.kwargs())
    expected = naive.conv_input(case.x_shape, weight, grad_output, **case.kwargs())
    assert_close(got, expected, case.input_terms, np.float64)
    reads = math.prod(case.out_size) * math.prod(case.kernel)
    assert (got.sum() == reads) == (mode != "zeros")
