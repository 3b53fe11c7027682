"""Property tests: random valid configurations agree with the naive reference.

Every drawn configuration is valid by construction (sizes are drawn after the padding, so the
output exists and reflect/circular pads fit); the number of examples comes from the hypothesis
profile in conftest.py (``dev`` locally, ``ci`` on CI). Shapes stay tiny so each example costs a
few milliseconds once the engine is compiled.
"""

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import naive
from conftest import Case, TransposedCase, api, assert_close, to_channels_last

MODES = ["zeros", "reflect", "replicate", "circular"]
PADDING_FORMS = ["int", "per_dim", "pairs", "valid", "same", "full"]
MAX_SIZE = {1: 12, 2: 7, 3: 5}
EXAMPLES = settings.default.max_examples  # from the loaded profile

seeds = st.integers(0, 2**32 - 1)


def _per_dim_or_int(draw, values):
    """Sometimes give a per-dim tuple whose entries are all equal as a plain int."""
    if len(set(values)) == 1 and draw(st.booleans()):
        return values[0]
    return tuple(values)


@st.composite
def _numeric_padding(draw, nd, form, max_pad=2):
    """(padding argument, pads) for the numeric forms."""
    if form == "int":
        p = draw(st.integers(0, max_pad))
        return p, ((p, p),) * nd
    if form == "per_dim":
        ps = tuple(draw(st.integers(0, max_pad)) for _ in range(nd))
        return ps, tuple((p, p) for p in ps)
    pairs = tuple((draw(st.integers(0, max_pad)), draw(st.integers(0, max_pad)))
                  for _ in range(nd))
    return pairs, pairs


@st.composite
def conv_configs(draw):
    """A valid forward/backward configuration, plus layout, dtype and batching."""
    nd = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 3))
    c_in = groups * draw(st.sampled_from([1, 1, 2, 2, 0]))
    c_out = groups * draw(st.sampled_from([1, 1, 2, 2, 0]))
    n = draw(st.integers(0, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    mode = draw(st.sampled_from(MODES))
    form = draw(st.sampled_from(PADDING_FORMS))
    extents = [d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True)]
    if form in ("int", "per_dim", "pairs"):
        padding, pads = draw(_numeric_padding(nd, form))
        min_sizes = []
        for (lo, hi), extent in zip(pads, extents, strict=True):
            need = max(1, extent - lo - hi)
            if mode == "reflect":
                need = max(need, lo + 1, hi + 1)
            elif mode == "circular":
                need = max(need, lo, hi)
            min_sizes.append(need)
    else:
        padding = form
        # "same"/"full" pads are at most extent - 1: an input of extent elements always fits
        min_sizes = [1 if form == "same" and mode in ("zeros", "replicate") else e
                     for e in extents]
    size = tuple(draw(st.integers(m, max(m, MAX_SIZE[nd]))) for m in min_sizes)
    case = Case(
        "drawn", n=n, c_in=c_in, c_out=c_out, size=size, kernel=kernel,
        stride=_per_dim_or_int(draw, stride), padding=padding,
        dilation=_per_dim_or_int(draw, dilation), groups=groups, bias=draw(st.booleans()),
        padding_mode=mode,
    )
    unbatched = n == 1 and draw(st.booleans())
    channels_last = draw(st.booleans())
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    return case, channels_last, dtype, unbatched


def _arrange(a, channels_last, unbatched):
    """Channels-first batched array -> the drawn layout and batching (C-contiguous)."""
    if channels_last:
        a = to_channels_last(a)
    return np.ascontiguousarray(a[0] if unbatched else a)


def _data(case, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(case.x_shape).astype(dtype)
    weight = rng.standard_normal(case.weight_shape).astype(dtype)
    bias = rng.standard_normal(case.c_out).astype(dtype) if case.bias else None
    grad_output = rng.standard_normal(case.out_shape).astype(dtype)
    return x, weight, bias, grad_output


@settings(deadline=None, max_examples=EXAMPLES)
@given(config=conv_configs(), seed=seeds)
def test_forward_matches_naive(config, seed):
    case, channels_last, dtype, unbatched = config
    x, weight, bias, _ = _data(case, dtype, seed)
    expected = naive.conv(x, weight, bias, **case.kwargs())
    got = api("conv{nd}d", case.nd)(_arrange(x, channels_last, unbatched), weight, bias,
                                    **case.kwargs(channels_last))
    assert_close(got, _arrange(expected, channels_last, unbatched), case.forward_terms, dtype)


@settings(deadline=None, max_examples=EXAMPLES)
@given(config=conv_configs(), seed=seeds)
def test_backward_matches_naive(config, seed):
    case, channels_last, dtype, unbatched = config
    x, weight, _, grad_output = _data(case, dtype, seed)
    kw = case.kwargs()
    expected = (naive.conv_input(x.shape, weight, grad_output, **kw),
                naive.conv_weight(x, weight.shape, grad_output, **kw),
                naive.conv_bias(grad_output, case.nd))
    xa = _arrange(x, channels_last, unbatched)
    ga = _arrange(grad_output, channels_last, unbatched)
    kw = case.kwargs(channels_last)
    grads = api("conv{nd}d_backward", case.nd)(xa, weight, ga, **kw)
    assert_close(grads[0], _arrange(expected[0], channels_last, unbatched), case.input_terms,
                 dtype)
    assert_close(grads[1], expected[1], case.weight_terms, dtype)
    assert_close(grads[2], expected[2], case.weight_terms, dtype)
    # the single-purpose functions agree with the fused pass
    assert_close(api("conv{nd}d_input", case.nd)(xa.shape, weight, ga, **kw),
                 _arrange(expected[0], channels_last, unbatched), case.input_terms, dtype)
    assert_close(api("conv{nd}d_weight", case.nd)(xa, weight.shape, ga, **kw), expected[1],
                 case.weight_terms, dtype)


@st.composite
def transposed_configs(draw):
    """A valid transposed configuration, plus layout, dtype and batching."""
    nd = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 3))
    c_in = groups * draw(st.sampled_from([1, 1, 2, 2, 0]))
    c_out = groups * draw(st.sampled_from([1, 1, 2, 2, 0]))
    n = draw(st.integers(0, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1))
                           for s, d in zip(stride, dilation, strict=True))
    form = draw(st.sampled_from(PADDING_FORMS))
    if form in ("int", "per_dim", "pairs"):
        padding, pads = draw(_numeric_padding(nd, form))
    else:
        padding, pads = form, None
    min_sizes = []
    for i in range(nd):
        k, s, d, op = kernel[i], stride[i], dilation[i], output_padding[i]
        # (in - 1) * s - lo - hi + d * (k - 1) + op + 1 >= 1
        cut = sum(pads[i]) if pads else (2 * d * (k - 1) if form == "full" else 0)
        min_sizes.append(1 + -(-max(0, cut - d * (k - 1) - op) // s))
    size = tuple(draw(st.integers(m, m + 3)) for m in min_sizes)
    case = TransposedCase(
        "drawn", n=n, c_in=c_in, c_out=c_out, size=size, kernel=kernel,
        stride=_per_dim_or_int(draw, stride), padding=padding,
        output_padding=_per_dim_or_int(draw, output_padding),
        dilation=_per_dim_or_int(draw, dilation), groups=groups, bias=draw(st.booleans()),
    )
    unbatched = n == 1 and draw(st.booleans())
    channels_last = draw(st.booleans())
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    return case, channels_last, dtype, unbatched


@settings(deadline=None, max_examples=EXAMPLES)
@given(config=transposed_configs(), seed=seeds)
def test_transposed_matches_naive(config, seed):
    case, channels_last, dtype, unbatched = config
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(case.x_shape).astype(dtype)
    weight = rng.standard_normal(case.weight_shape).astype(dtype)
    bias = rng.standard_normal(case.c_out).astype(dtype) if case.bias else None
    expected = naive.conv_transpose(x, weight, bias, **case.kwargs())
    got = api("conv_transpose{nd}d", case.nd)(_arrange(x, channels_last, unbatched), weight,
                                              bias, **case.kwargs(channels_last))
    assert_close(got, _arrange(expected, channels_last, unbatched), case.terms, dtype)


@settings(deadline=None, max_examples=EXAMPLES)
@given(config=transposed_configs(), seed=seeds)
def test_transposed_gradients_match_naive(config, seed):
    """``conv_transpose{d}d_backward``: input, weight and bias gradients."""
    case, channels_last, dtype, unbatched = config
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(case.x_shape).astype(dtype)
    weight = rng.standard_normal(case.weight_shape).astype(dtype)
    grad = rng.standard_normal(case.out_shape).astype(dtype)
    grad_x, grad_w, grad_b = naive.conv_transpose_backward(x, weight, grad, **case.kwargs())
    got = api("conv_transpose{nd}d_backward", case.nd)(
        _arrange(x, channels_last, unbatched), weight, _arrange(grad, channels_last, unbatched),
        **case.kwargs(channels_last))
    positions = case.n * math.prod(case.size)
    assert_close(got[0], _arrange(grad_x, channels_last, unbatched),
                 (case.c_out // case.groups) * math.prod(case.kernel), dtype)
    assert_close(got[1], grad_w, positions, dtype)
    assert_close(got[2], grad_b, case.n * math.prod(case.out_size), dtype)
