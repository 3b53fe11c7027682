"""Forward convolution ``conv{1,2,3}d`` against the naive reference."""

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
    with_batch,
)

DTYPES = [pytest.param(np.float32, id="f32"), pytest.param(np.float64, id="f64")]
LAYOUTS = [pytest.param(False, id="cfirst"), pytest.param(True, id="clast")]
NDS = [1, 2, 3]


def _case(name, nd):
    return next(c for c in CASES if c.name == name and c.nd == nd)


def _expected(case, x, weight, bias, channels_last, batched=True):
    """Reference in the requested layout, from channels-first data."""
    out = naive.conv(x, weight, bias, **case.kwargs())
    return to_channels_last(out, batched) if channels_last else out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels_last", LAYOUTS)
@pytest.mark.parametrize("case", case_params())
def test_matches_naive(case, channels_last, dtype, rng):
    x, weight, bias, _ = make_data(case, rng, dtype)
    conv = api("conv{nd}d", case.nd)
    got = conv(layout(x, channels_last), weight, bias, **case.kwargs(channels_last))
    assert_close(got, _expected(case, x, weight, bias, channels_last), case.forward_terms, dtype)


@pytest.mark.parametrize("channels_last", LAYOUTS)
@pytest.mark.parametrize("nd", NDS)
def test_unbatched(nd, channels_last, rng):
    case = with_batch(_case("everything", nd), 1)
    x, weight, bias, _ = make_data(case, rng)
    got = api("conv{nd}d", nd)(layout(x[0], channels_last, batched=False), weight, bias,
                               **case.kwargs(channels_last))
    expected = _expected(case, x[:1], weight, bias, channels_last)[0]
    assert_close(got, expected, case.forward_terms, np.float64)


# --------------------------------------------------------------------------- empty


@pytest.mark.parametrize("channels_last", LAYOUTS)
@pytest.mark.parametrize("nd", NDS)
def test_empty_batch(nd, channels_last, rng):
    case = with_batch(_case("everything", nd), 0)
    x, weight, bias, _ = make_data(case, rng)
    got = api("conv{nd}d", nd)(layout(x, channels_last), weight, bias,
                               **case.kwargs(channels_last))
    assert_close(got, _expected(case, x, weight, bias, channels_last), 1, np.float64)
    assert got.shape[0] == 0


@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("channels_last", LAYOUTS)
@pytest.mark.parametrize("nd", NDS)
def test_zero_input_channels(nd, channels_last, groups, with_bias, rng):
    """C_in = 0: every output is the bias (or zero)."""
    size = (5, 4, 3)[:nd]
    x = np.zeros((2, 0) + size)
    weight = np.zeros((4, 0) + (2,) * nd)
    bias = rng.standard_normal(4) if with_bias else None
    got = api("conv{nd}d", nd)(layout(x, channels_last), weight, bias, padding=1, groups=groups,
                               channels_last=channels_last)
    expected = np.broadcast_to(
        (bias if with_bias else np.zeros(4)).reshape((1, 4) + (1,) * nd),
        (2, 4) + tuple(n + 1 for n in size),
    )
    assert_close(got, layout(expected, channels_last), 1, np.float64)


@pytest.mark.parametrize("channels_last", LAYOUTS)
@pytest.mark.parametrize("nd", NDS)
def test_zero_output_channels(nd, channels_last, rng):
    x = rng.standard_normal((2, 3) + (5, 4, 3)[:nd])
    weight = np.zeros((0, 3) + (2,) * nd)
    got = api("conv{nd}d", nd)(layout(x, channels_last), weight, np.zeros(0),
                               channels_last=channels_last)
    expected = np.zeros((2, 0) + (4, 3, 2)[:nd])
    assert_close(got, layout(expected, channels_last), 1, np.float64)


# --------------------------------------------------------------------------- unusual inputs


def _strided_views(kind, x, weight, bias):
    """Views of the given kind holding the same values as ``x``, ``weight``, ``bias``."""
    if kind == "non_contiguous":
        def spread(a):
            big = np.zeros(tuple(2 * s for s in a.shape), a.dtype)
            big[tuple(slice(None, None, 2) for _ in a.shape)] = a
            return big[tuple(slice(None, None, 2) for _ in a.shape)]
        return spread(x), spread(weight), spread(bias)
    if kind == "fortran":
        return np.asfortranarray(x), np.asfortranarray(weight), bias
    if kind == "negative_strides":
        def flip(a):
            return np.ascontiguousarray(a[(slice(None, None, -1),) * a.ndim])[
                (slice(None, None, -1),) * a.ndim]
        return flip(x), flip(weight), flip(bias)
    if kind == "read_only":
        views = [a.copy() for a in (x, weight, bias)]
        for a in views:
            a.setflags(write=False)
        return tuple(views)
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["non_contiguous", "fortran", "negative_strides", "read_only"])
@pytest.mark.parametrize("nd", NDS)
def test_unusual_strides_and_flags(nd, kind, rng):
    case = _case("everything", nd)
    x, weight, bias, _ = make_data(case, rng)
    views = _strided_views(kind, x, weight, bias)
    before = [v.copy() for v in views]
    channels_last = nd == 2  # both layouts see unusual strides somewhere
    xv = to_channels_last(views[0]) if channels_last else views[0]
    got = api("conv{nd}d", nd)(xv, views[1], views[2], **case.kwargs(channels_last))
    assert_close(got, _expected(case, x, weight, bias, channels_last), case.forward_terms,
                 np.float64)
    for view, copy in zip(views, before, strict=True):
        np.testing.assert_array_equal(view, copy)  # inputs are never modified


@pytest.mark.parametrize("channels_last", LAYOUTS)
@pytest.mark.parametrize("nd", NDS)
def test_broadcast_inputs(nd, channels_last, rng):
    """Stride-0 views (``np.broadcast_to``) for x, weight and bias."""
    case = _case("groups2", nd)
    one_sample = rng.standard_normal((1, case.c_in) + case.size)
    x = np.broadcast_to(one_sample, case.x_shape)
    weight = np.broadcast_to(rng.standard_normal((1,) + case.weight_shape[1:]),
                             case.weight_shape)
    bias = np.broadcast_to(np.float64(0.5), (case.c_out,))
    xv = np.moveaxis(x, 1, -1) if channels_last else x
    got = api("conv{nd}d", nd)(xv, weight, bias, **case.kwargs(channels_last))
    expected = _expected(case, np.array(x), np.array(weight), np.array(bias), channels_last)
    assert_close(got, expected, case.forward_terms, np.float64)


@pytest.mark.parametrize("nd", NDS)
def test_array_likes(nd, rng):
    case = _case("bias", nd)
    x, weight, bias, _ = make_data(case, rng)
    got = api("conv{nd}d", nd)(x.tolist(), weight.tolist(), bias.tolist(), **case.kwargs())
    assert_close(got, _expected(case, x, weight, bias, False), case.forward_terms, np.float64)


# --------------------------------------------------------------------------- dtypes


@pytest.mark.parametrize(
    ("x_dtype", "w_dtype", "b_dtype"),
    [
        (np.float32, np.float32, None),
        (np.float64, np.float64, None),
        (np.float32, np.float64, None),
        (np.float64, np.float32, np.float32),
        (np.float32, np.float32, np.float64),
        (np.int8, np.float32, None),
        (np.uint8, np.int16, None),
        (np.int64, np.float32, None),
        (np.int32, np.int32, np.int32),
        (np.bool_, np.float32, None),
        (np.bool_, np.bool_, None),
        (np.float16, np.float16, None),
    ],
    ids=lambda d: None if d is None else np.dtype(d).name,
)
def test_dtype_promotion(x_dtype, w_dtype, b_dtype, rng):
    """Result dtype is ``np.result_type(x, weight[, bias], np.float32)``; values are exact here."""
    x = rng.integers(0, 2 if x_dtype is np.bool_ else 5, (2, 3, 6, 5)).astype(x_dtype)
    weight = rng.integers(0 if w_dtype in (np.bool_, np.uint8) else -3, 2 if w_dtype is np.bool_
                          else 4, (4, 3, 3, 2)).astype(w_dtype)
    bias = None if b_dtype is None else rng.integers(-3, 4, 4).astype(b_dtype)
    arrays = (x, weight) if bias is None else (x, weight, bias)
    expected_dtype = np.result_type(*arrays, np.float32)
    got = api("conv{nd}d", 2)(x, weight, bias, padding=1)
    assert got.dtype == expected_dtype
    assert_close(got, naive.conv(x, weight, bias, padding=1), 3 * 3 * 2, expected_dtype)


# --------------------------------------------------------------------------- out=


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels_last", LAYOUTS)
@pytest.mark.parametrize("nd", NDS)
def test_out_is_written_and_returned(nd, channels_last, dtype, rng):
    case = _case("everything", nd)
    x, weight, bias, _ = make_data(case, rng, dtype)
    expected = _expected(case, x, weight, bias, channels_last)
    out = np.full(expected.shape, np.nan, dtype)
    got = api("conv{nd}d", nd)(layout(x, channels_last), weight, bias,
                               **case.kwargs(channels_last), out=out)
    assert got is out
    assert_close(out, expected, case.forward_terms, dtype)


@pytest.mark.parametrize("nd", NDS)
def test_out_may_alias_input(nd, rng):
    """``out=x`` with an output shaped like x: the result is still the conv of the original x."""
    case = Case("alias", n=2, c_in=3, c_out=3, size=(6, 5, 4)[:nd], kernel=(3,) * nd,
                padding="same", bias=True, padding_mode="reflect")
    x, weight, bias, _ = make_data(case, rng)
    expected = naive.conv(x, weight, bias, **case.kwargs())
    got = api("conv{nd}d", nd)(x, weight, bias, **case.kwargs(), out=x)
    assert got is x
    assert_close(x, expected, case.forward_terms, np.float64)


# --------------------------------------------------------------------------- IEEE specials


def _with_specials(a, rng, value, count=1):
    a = a.copy()
    flat = a.reshape(-1)
    flat[rng.choice(flat.size, count, replace=False)] = value
    return a


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case_name", ["basic", "pad1", "reflect", "circular", "everything"])
@pytest.mark.parametrize("nd", NDS)
def test_nan_input_with_zero_weight_propagates(nd, case_name, dtype, rng):
    """0 * NaN = NaN: a zero weight never skips a NaN input."""
    case = _case(case_name, nd)
    x, _, bias, _ = make_data(case, rng, dtype)
    x = _with_specials(x, rng, np.nan)
    weight = np.zeros(case.weight_shape, dtype)
    got = api("conv{nd}d", nd)(x, weight, bias, **case.kwargs())
    expected = naive.conv(x, weight, bias, **case.kwargs())
    assert np.isnan(expected).any() and not np.isnan(expected).all()
    assert_close(got, expected, case.forward_terms, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("where", ["x_inf", "x_nan", "weight_nan", "weight_inf", "bias_nan"])
@pytest.mark.parametrize("nd", NDS)
def test_nan_and_inf_propagate(nd, where, dtype, rng):
    case = _case("everything", nd)
    x, weight, bias, _ = make_data(case, rng, dtype)
    if where.startswith("x"):
        x = _with_specials(x, rng, np.inf if where.endswith("inf") else np.nan)
        weight = np.abs(weight)  # inf * positive weights: +inf, not inf - inf = nan
    elif where.startswith("weight"):
        weight = _with_specials(weight, rng, np.inf if where.endswith("inf") else np.nan)
    else:
        bias = _with_specials(bias, rng, np.nan)
    got = api("conv{nd}d", nd)(x, weight, bias, **case.kwargs())
    expected = naive.conv(x, weight, bias, **case.kwargs())
    assert not np.isfinite(expected).all()
    assert_close(got, expected, case.forward_terms, dtype)


# --------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("nd", NDS)
def test_repeatable_and_batch_invariant(nd, rng):
    """Bitwise: repeated calls agree, and conv(x)[a:b] == conv(x[a:b])."""
    case = with_batch(_case("everything", nd), 5)
    x, weight, bias, _ = make_data(case, rng, np.float32)
    conv = api("conv{nd}d", nd)
    full = conv(x, weight, bias, **case.kwargs())
    np.testing.assert_array_equal(conv(x, weight, bias, **case.kwargs()), full)
    np.testing.assert_array_equal(conv(x[1:4], weight, bias, **case.kwargs()), full[1:4])
