"""Property test over unconstrained configurations, valid or not.

hypothesis draws dims, sizes (zero included), kernel, stride, padding in every form,
dilation, groups (not always dividing the channels), padding_mode, layout and dtype. An
independent validity rule, written from the documented semantics, decides what must happen:
either fastconv raises ``ValueError`` naming a parameter, or it matches the naive reference,
forward and backward.
"""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import naive
from conftest import api, assert_close, to_channels_last

EXAMPLES = settings.default.max_examples
MODES = ["zeros", "reflect", "replicate", "circular"]
NAMES = ("padding", "kernel", "groups", "input channels", "padding_mode", "reflect", "circular")


def _pads(padding, sizes, kernel, stride, dilation):
    """Independent resolution of the padding argument into (low, high) pairs."""
    nd = len(sizes)
    if padding == "valid":
        return [(0, 0)] * nd
    if padding == "full":
        return [(d * (k - 1),) * 2 for k, d in zip(kernel, dilation, strict=True)]
    if padding == "same":
        pairs = []
        for n, k, s, d in zip(sizes, kernel, stride, dilation, strict=True):
            total = max((-(-n // s) - 1) * s + d * (k - 1) + 1 - n, 0)
            pairs.append((total // 2, total - total // 2))
        return pairs
    if isinstance(padding, int):
        return [(padding, padding)] * nd
    return [p if isinstance(p, tuple) else (p, p) for p in padding]


def _valid(c_in, c_out, groups, sizes, kernel, stride, dilation, padding, mode):
    if c_in % groups or c_out % groups:
        return False
    for n, k, d, (lo, hi) in zip(sizes, kernel, dilation,
                                 _pads(padding, sizes, kernel, stride, dilation), strict=True):
        if n + lo + hi < d * (k - 1) + 1:
            return False
        if mode != "zeros" and n == 0 and max(lo, hi) > 0:
            return False
        if mode == "reflect" and max(lo, hi) >= n and max(lo, hi) > 0:
            return False
        if mode == "circular" and max(lo, hi) > n:
            return False
    return True


@st.composite
def configs(draw):
    nd = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 3))
    c_in = draw(st.integers(0, 4))
    c_out = draw(st.integers(1, 4))
    sizes = tuple(draw(st.integers(0, {1: 9, 2: 6, 3: 4}[nd])) for _ in range(nd))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    form = draw(st.sampled_from(["int", "per_dim", "pairs", "valid", "same", "full"]))
    if form == "int":
        padding = draw(st.integers(0, 4))
    elif form == "per_dim":
        padding = tuple(draw(st.integers(0, 4)) for _ in range(nd))
    elif form == "pairs":
        padding = tuple((draw(st.integers(0, 4)), draw(st.integers(0, 4))) for _ in range(nd))
    else:
        padding = form
    mode = draw(st.sampled_from(MODES))
    return (nd, groups, c_in, c_out, sizes, kernel, stride, dilation, padding, mode,
            draw(st.booleans()), draw(st.sampled_from([np.float32, np.float64])))


@settings(deadline=None, max_examples=EXAMPLES)
@given(config=configs(), seed=st.integers(0, 2**32 - 1))
def test_raises_documented_error_or_matches_naive(config, seed):
    (nd, groups, c_in, c_out, sizes, kernel, stride, dilation, padding, mode, channels_last,
     dtype) = config
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, c_in, *sizes)).astype(dtype)
    weight = rng.standard_normal((c_out, c_in // groups, *kernel)).astype(dtype)
    options = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups,
               "padding_mode": mode}
    x_arg = np.ascontiguousarray(to_channels_last(x)) if channels_last else x
    forward = api("conv{nd}d", nd)
    if not _valid(c_in, c_out, groups, sizes, kernel, stride, dilation, padding, mode):
        try:
            forward(x_arg, weight, channels_last=channels_last, **options)
        except ValueError as error:
            assert any(name in str(error) for name in NAMES), str(error)
        else:
            raise AssertionError("an invalid configuration was accepted")
        return
    got = forward(x_arg, weight, channels_last=channels_last, **options)
    expected = naive.conv(x, weight, **options)
    terms = max(1, c_in // groups * int(np.prod(kernel)))
    if channels_last:
        expected = to_channels_last(expected)
    assert_close(got, expected, terms, dtype)
    grad = rng.standard_normal(expected.shape).astype(dtype)
    grad_first = np.moveaxis(grad, -1, 1) if channels_last else grad
    gx, gw, gb = api("conv{nd}d_backward", nd)(x_arg, weight, grad,
                                               channels_last=channels_last, **options)
    expected_gx = naive.conv_input(x.shape, weight, grad_first, **options)
    if channels_last:
        expected_gx = to_channels_last(expected_gx)
    assert_close(gx, expected_gx, max(1, c_out // groups * int(np.prod(kernel)) * 3), dtype)
    rows = max(1, grad_first.size // max(1, c_out))
    assert_close(gw, naive.conv_weight(x, weight.shape, grad_first, **options), rows, dtype)
    assert_close(gb, naive.conv_bias(grad_first, nd), rows, dtype)
