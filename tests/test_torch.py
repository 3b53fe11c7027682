"""Cross-checks against PyTorch (optional: skipped when torch is not installed).

PyTorch runs in the same dtype as fastconv. In float32 both results carry rounding error, and two
independent errors of one K-term sum add up like one sum of 2K terms, so the comparison uses
``n_terms = 2 * K`` (i.e. the single-result tolerance times sqrt(2)).
"""

import math
import warnings

import numpy as np
import pytest

from conftest import (
    CASES,
    TRANSPOSED_CASES,
    api,
    assert_close,
    layout,
    make_data,
    make_transposed_data,
    to_channels_last,
)

torch = pytest.importorskip("torch")
F = pytest.importorskip("torch.nn.functional")
torch_grad = pytest.importorskip("torch.nn.grad")

_CONV = {1: "conv1d", 2: "conv2d", 3: "conv3d"}
_TORCH_PAD_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate",
                    "circular": "circular"}

# float64 everywhere in channels-first, float32 in channels-last: every case sees both dtypes
# and both layouts across the two tests that use this grid.
FLAVOURS = [pytest.param(np.float64, False, id="f64-cfirst"),
            pytest.param(np.float32, True, id="f32-clast")]


def _flat_pads(pads):
    """F.pad's order: last dim first, (low, high) each."""
    return [p for pair in reversed(pads) for p in pair]


def _tensor(a, requires_grad=False):
    return torch.tensor(np.ascontiguousarray(a), requires_grad=requires_grad)


def _torch_conv(case, x, weight, bias, grad_output=None):
    """Forward (and autograd gradients) in torch: F.pad with the mode, then an unpadded conv."""
    xt, wt = _tensor(x, True), _tensor(weight, True)
    bt = None if bias is None else _tensor(bias, True)
    padded = F.pad(xt, _flat_pads(case.pads), mode=_TORCH_PAD_MODES[case.padding_mode])
    out = getattr(F, _CONV[case.nd])(padded, wt, bt, stride=case.stride, padding=0,
                                     dilation=case.dilation, groups=case.groups)
    if grad_output is None:
        return out.detach().numpy()
    out.backward(_tensor(grad_output))
    return (out.detach().numpy(), xt.grad.numpy(), wt.grad.numpy(),
            None if bias is None else bt.grad.numpy())


def _cl(a, channels_last):
    return to_channels_last(a) if channels_last else a


def _case_params(cases):
    return [pytest.param(c, id=c.id) for c in cases]


@pytest.mark.parametrize(("dtype", "channels_last"), FLAVOURS)
@pytest.mark.parametrize("case", _case_params(CASES))
def test_forward_and_autograd(case, dtype, channels_last, rng):
    x, weight, bias, grad_output = make_data(case, rng, dtype)
    if bias is None:
        bias = rng.standard_normal(case.c_out).astype(dtype)
    expected, grad_x, grad_w, grad_b = _torch_conv(case, x, weight, bias, grad_output)
    xa, ga = layout(x, channels_last), layout(grad_output, channels_last)
    kw = case.kwargs(channels_last)
    assert_close(api("conv{nd}d", case.nd)(xa, weight, bias, **kw), _cl(expected, channels_last),
                 2 * case.forward_terms, dtype)
    grads = api("conv{nd}d_backward", case.nd)(xa, weight, ga, **kw)
    assert_close(grads[0], _cl(grad_x, channels_last), 2 * case.input_terms, dtype)
    assert_close(grads[1], grad_w, 2 * case.weight_terms, dtype)
    assert_close(grads[2], grad_b, 2 * case.weight_terms, dtype)
    assert_close(api("conv{nd}d_input", case.nd)(xa.shape, weight, ga, **kw),
                 _cl(grad_x, channels_last), 2 * case.input_terms, dtype)
    assert_close(api("conv{nd}d_weight", case.nd)(xa, weight.shape, ga, **kw), grad_w,
                 2 * case.weight_terms, dtype)


def _symmetric_zero_padded(case):
    """Cases torch.nn.grad and F.conv accept directly: zero mode, symmetric int padding."""
    return case.padding_mode == "zeros" and all(lo == hi for lo, hi in case.pads)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", _case_params([c for c in CASES if _symmetric_zero_padded(c)]))
def test_nn_grad_functions(case, dtype, rng):
    """conv{d}d_input / conv{d}d_weight against torch.nn.grad with torch's own padding."""
    x, weight, bias, grad_output = make_data(case, rng, dtype)
    padding = tuple(lo for lo, _ in case.pads)
    kw = dict(stride=case.stride, padding=padding, dilation=case.dilation, groups=case.groups)
    name = _CONV[case.nd]
    forward = getattr(F, name)(_tensor(x), _tensor(weight), None if bias is None
                               else _tensor(bias), **kw).numpy()
    grad_x = getattr(torch_grad, name + "_input")(x.shape, _tensor(weight), _tensor(grad_output),
                                                  **kw).numpy()
    grad_w = getattr(torch_grad, name + "_weight")(_tensor(x), weight.shape,
                                                   _tensor(grad_output), **kw).numpy()
    assert_close(api("conv{nd}d", case.nd)(x, weight, bias, **kw), forward,
                 2 * case.forward_terms, dtype)
    assert_close(api("conv{nd}d_input", case.nd)(x.shape, weight, grad_output, **kw), grad_x,
                 2 * case.input_terms, dtype)
    assert_close(api("conv{nd}d_weight", case.nd)(x, weight.shape, grad_output, **kw), grad_w,
                 2 * case.weight_terms, dtype)


def _torch_transposed(case, x, weight, bias):
    """F.conv_transpose with padding 0 and the output_padding, then the (asymmetric) crop."""
    out = getattr(F, "conv_transpose" + _CONV[case.nd][-2:])(
        _tensor(x), _tensor(weight), None if bias is None else _tensor(bias),
        stride=case.stride, padding=0, output_padding=case.output_padding, groups=case.groups,
        dilation=case.dilation,
    ).numpy()
    crop = tuple(slice(lo, n - hi) for (lo, hi), n in zip(case.pads, out.shape[2:], strict=True))
    return out[(slice(None), slice(None)) + crop]


@pytest.mark.parametrize(("dtype", "channels_last"), FLAVOURS)
@pytest.mark.parametrize("case", _case_params(TRANSPOSED_CASES))
def test_conv_transpose(case, dtype, channels_last, rng):
    x, weight, bias = make_transposed_data(case, rng, dtype)
    expected = _torch_transposed(case, x, weight, bias)
    got = api("conv_transpose{nd}d", case.nd)(layout(x, channels_last), weight, bias,
                                              **case.kwargs(channels_last))
    assert_close(got, _cl(expected, channels_last), 2 * case.terms, dtype)


@pytest.mark.parametrize("case", _case_params(
    [c for c in TRANSPOSED_CASES if all(lo == hi for lo, hi in c.pads)]))
def test_conv_transpose_symmetric_padding(case, rng):
    """Where torch's own symmetric ``padding`` argument applies, use it directly."""
    x, weight, bias = make_transposed_data(case, rng)
    expected = getattr(F, "conv_transpose" + _CONV[case.nd][-2:])(
        _tensor(x), _tensor(weight), None if bias is None else _tensor(bias),
        stride=case.stride, padding=tuple(lo for lo, _ in case.pads),
        output_padding=case.output_padding, groups=case.groups, dilation=case.dilation,
    ).numpy()
    got = api("conv_transpose{nd}d", case.nd)(x, weight, bias, **case.kwargs())
    assert_close(got, expected, case.terms, np.float64)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_torch_same_padding(nd, rng):
    """padding="same" at stride 1 equals torch's own "same" (extra padding at the end)."""
    x = rng.standard_normal((2, 3) + (7, 6, 5)[:nd])
    weight = rng.standard_normal((4, 3) + (3, 4, 2)[:nd])
    with warnings.catch_warnings():  # torch warns that even kernels need a padded copy
        warnings.simplefilter("ignore", UserWarning)
        expected = getattr(F, _CONV[nd])(_tensor(x), _tensor(weight), padding="same",
                                          dilation=(1, 2, 1)[:nd]).numpy()
    got = api("conv{nd}d", nd)(x, weight, padding="same", dilation=(1, 2, 1)[:nd])
    assert_close(got, expected, 3 * math.prod(weight.shape[2:]), np.float64)
