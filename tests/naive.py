"""Slow, obviously-correct reference implementations for the fastconv tests.

Plain NumPy only: this module never imports fastconv, so a bug in the engine cannot hide in its own
reference. Every function loops over kernel taps and uses NumPy slicing for the rest; everything is
computed in float64, whatever the input dtype, so the reference is (much) more accurate than the
engine under test and the test tolerance measures the engine's rounding alone.

Definitions (channels-first, batched; ``k`` kernel size, ``s`` stride, ``d`` dilation, pads
``(lo, hi)`` per spatial dim, ``xp`` the input padded by ``padding_mode``)::

    out[n, o, p] = bias[o] + sum_{c, t} xp[n, g(o) * Cg + c, p * s + t * d] * w[o, c, t]

The gradients are derived from that sum independently of the engine: grad-input scatters every
product back to the input element it read (then folds the padded border back onto the elements the
padding copied), grad-weight and grad-bias sum over the positions that used the weight. The
transposed convolution is the scatter form of the same sum (the adjoint), with ``output_padding``.
"""

import itertools

import numpy as np

_NP_PAD_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


# --------------------------------------------------------------------------- shape helpers


def as_tuple(value, nd):
    """Return ``value`` (an int or a sequence of ``nd`` ints) as a tuple of ``nd`` ints."""
    if np.ndim(value) == 0:
        return (int(value),) * nd
    value = tuple(int(v) for v in value)
    assert len(value) == nd, (value, nd)
    return value


def conv_output_size(n, k, s=1, lo=0, hi=0, d=1):
    """Output length of a forward conv: ``(n + lo + hi - d * (k - 1) - 1) // s + 1``."""
    return (n + lo + hi - d * (k - 1) - 1) // s + 1


def transposed_output_size(n, k, s=1, lo=0, hi=0, d=1, output_padding=0):
    """Output length of a transposed conv: ``(n - 1) * s - lo - hi + d * (k - 1) + op + 1``."""
    return (n - 1) * s - lo - hi + d * (k - 1) + output_padding + 1


def same_pads(n, k, s, d):
    """TF/JAX "same": ``out = ceil(n / s)``, total pad split with the extra at the end."""
    out = -(-n // s)
    total = max((out - 1) * s + d * (k - 1) + 1 - n, 0)
    return (total // 2, total - total // 2)


def resolve_pads(padding, in_spatial, kernel, stride=1, dilation=1):
    """Return one ``(lo, hi)`` pair per spatial dim for any padding form of a forward conv."""
    nd = len(in_spatial)
    stride, dilation = as_tuple(stride, nd), as_tuple(dilation, nd)
    if isinstance(padding, str):
        if padding == "valid":
            return tuple((0, 0) for _ in range(nd))
        if padding == "full":
            return tuple((d * (k - 1),) * 2 for k, d in zip(kernel, dilation, strict=True))
        if padding == "same":
            return tuple(
                same_pads(n, k, s, d)
                for n, k, s, d in zip(in_spatial, kernel, stride, dilation, strict=True)
            )
        raise ValueError(padding)
    if np.ndim(padding) == 0:
        return tuple((int(padding),) * 2 for _ in range(nd))
    assert len(padding) == nd, (padding, nd)
    return tuple(
        (int(p), int(p)) if np.ndim(p) == 0 else (int(p[0]), int(p[1])) for p in padding
    )


def transposed_pads(padding, in_spatial, kernel, stride=1, dilation=1):
    """Pads of a transposed conv: those of the forward conv it is the adjoint of.

    For "same" that forward conv has input size ``in * stride``.
    """
    nd = len(in_spatial)
    if padding == "same":
        stride = as_tuple(stride, nd)
        in_spatial = tuple(n * s for n, s in zip(in_spatial, stride, strict=True))
    return resolve_pads(padding, in_spatial, kernel, stride, dilation)


def conv_output_shape(input_size, kernel_size, stride=1, padding=0, dilation=1, *,
                      transposed=False, output_padding=0):
    """Output spatial size; an int for an int ``input_size``, else a tuple."""
    scalar = np.ndim(input_size) == 0
    in_spatial = (int(input_size),) if scalar else tuple(input_size)
    nd = len(in_spatial)
    kernel = as_tuple(kernel_size, nd)
    stride, dilation = as_tuple(stride, nd), as_tuple(dilation, nd)
    if transposed:
        op = as_tuple(output_padding, nd)
        pads = transposed_pads(padding, in_spatial, kernel, stride, dilation)
        out = tuple(
            transposed_output_size(n, k, s, lo, hi, d, o)
            for n, k, s, (lo, hi), d, o in zip(in_spatial, kernel, stride, pads, dilation, op,
                                               strict=True)
        )
    else:
        pads = resolve_pads(padding, in_spatial, kernel, stride, dilation)
        out = tuple(
            conv_output_size(n, k, s, lo, hi, d)
            for n, k, s, (lo, hi), d in zip(in_spatial, kernel, stride, pads, dilation,
                                            strict=True)
        )
    return out[0] if scalar else out


def receptive_field(layers):
    """Return ``(size, jump)`` of a stack of ``(kernel, stride, dilation)`` layers (1-D, ints)."""
    size, jump = 1, 1
    for layer in layers:
        kernel, stride, dilation = (tuple(layer) + (1, 1))[:3]
        size += dilation * (kernel - 1) * jump
        jump *= stride
    return size, jump


# --------------------------------------------------------------------------- internals


def _f64(a):
    return np.array(a, dtype=np.float64)  # a private copy: the caller's array is never touched


def _to_first(a, channels_last):
    return np.moveaxis(a, -1, 1) if channels_last else a


def _to_last(a, channels_last):
    return np.moveaxis(a, 1, -1) if channels_last else a


def _shape_to_first(shape, channels_last):
    shape = tuple(shape)
    return (shape[0], shape[-1]) + shape[1:-1] if channels_last else shape


def _taps(kernel):
    return itertools.product(*(range(k) for k in kernel))


def _window(tap, dilation, stride, out_spatial):
    """Slices of the padded input read by kernel tap ``tap`` for every output position."""
    return tuple(
        slice(t * d, t * d + s * (o - 1) + 1, s) if o > 0 else slice(0, 0)
        for t, d, s, o in zip(tap, dilation, stride, out_spatial, strict=True)
    )


def _pad(x, pads, padding_mode):
    """Pad the spatial dims of a channels-first batched array, as ``nn.ConvNd`` does."""
    return np.pad(x, [(0, 0), (0, 0), *pads], mode=_NP_PAD_MODES[padding_mode])


def _fold(grad_padded, in_spatial, pads, padding_mode):
    """Adjoint of ``_pad``: add every padded element's gradient to the element it copied.

    The padding is a gather ``xp = x[src]`` per axis, with ``src = np.pad(arange(n))`` (``-1`` for
    zero padding), so its adjoint is a scatter-add through the same index map.
    """
    grad = grad_padded
    for axis, (n, (lo, hi)) in enumerate(zip(in_spatial, pads, strict=True), start=2):
        if padding_mode == "zeros":
            src = np.pad(np.arange(n), (lo, hi), mode="constant", constant_values=-1)
        else:
            src = np.pad(np.arange(n), (lo, hi), mode=_NP_PAD_MODES[padding_mode])
        moved = np.moveaxis(grad, axis, 0)
        folded = np.zeros((n,) + moved.shape[1:])
        keep = src >= 0
        np.add.at(folded, src[keep], moved[keep])
        grad = np.moveaxis(folded, 0, axis)
    return grad


def _contract(a, b):
    """Contract ``a`` (N, A, *S) with a matrix ``b`` (B, A) -> (N, B, *S) by explicit products.

    Written as multiply-then-sum (no BLAS), so ``0 * nan`` and ``0 * inf`` are really evaluated.
    """
    spatial = (1,) * (a.ndim - 2)
    return (a[:, None] * b.reshape(b.shape + spatial)[None]).sum(axis=2)


class _Geometry:
    """Resolved conv parameters for a channels-first batched input shape and a weight shape."""

    def __init__(self, x_shape, w_shape, stride, padding, dilation, groups):
        self.nd = len(w_shape) - 2
        nd = self.nd
        self.n, self.c_in = x_shape[:2]
        self.in_spatial = tuple(x_shape[2:])
        self.c_out = w_shape[0]
        self.kernel = tuple(w_shape[2:])
        self.stride, self.dilation = as_tuple(stride, nd), as_tuple(dilation, nd)
        self.groups = groups
        assert self.c_in == w_shape[1] * groups and self.c_out % groups == 0
        self.cg_in, self.cg_out = self.c_in // groups, self.c_out // groups
        self.pads = resolve_pads(padding, self.in_spatial, self.kernel, self.stride, self.dilation)
        self.padded = tuple(n + lo + hi for n, (lo, hi) in zip(self.in_spatial, self.pads,
                                                                strict=True))
        self.out_spatial = tuple(
            conv_output_size(n, k, s, lo, hi, d)
            for n, k, s, (lo, hi), d in zip(self.in_spatial, self.kernel, self.stride, self.pads,
                                            self.dilation, strict=True)
        )
        assert min(self.out_spatial, default=1) >= 1, "kernel larger than padded input"

    def groups_slices(self):
        for g in range(self.groups):
            yield (slice(g * self.cg_in, (g + 1) * self.cg_in),
                   slice(g * self.cg_out, (g + 1) * self.cg_out))

    def windows(self):
        for tap in _taps(self.kernel):
            yield tap, _window(tap, self.dilation, self.stride, self.out_spatial)


def _prepare(x, nd, channels_last):
    """Batched channels-first float64 copy of ``x`` and whether it was unbatched."""
    x = _f64(x)
    unbatched = x.ndim == nd + 1
    if unbatched:
        x = x[None]
    return _to_first(x, channels_last), unbatched


def _finish(a, unbatched, channels_last):
    a = _to_last(a, channels_last)
    return a[0] if unbatched else a


# --------------------------------------------------------------------------- public reference


def conv(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros",
         channels_last=False):
    """Forward N-D cross-correlation (``torch.nn.functional.conv{d}d`` semantics), float64."""
    w = _f64(weight)
    nd = w.ndim - 2
    x, unbatched = _prepare(x, nd, channels_last)
    geo = _Geometry(x.shape, w.shape, stride, padding, dilation, groups)
    xp = _pad(x, geo.pads, padding_mode)
    out = np.zeros((geo.n, geo.c_out) + geo.out_spatial)
    for tap, window in geo.windows():
        patch = xp[(slice(None), slice(None)) + window]  # (N, C_in, *out)
        for ci, co in geo.groups_slices():
            out[:, co] += _contract(patch[:, ci], w[(co, slice(None)) + tap])
    if bias is not None:
        out += _f64(bias).reshape((-1,) + (1,) * nd)
    return _finish(out, unbatched, channels_last)


def conv_input(input_shape, weight, grad_output, stride=1, padding=0, dilation=1, groups=1,
               padding_mode="zeros", channels_last=False):
    """Gradient of ``sum(conv(x, weight) * grad_output)`` with respect to ``x`` (scatter form)."""
    w = _f64(weight)
    nd = w.ndim - 2
    input_shape = tuple(input_shape)
    unbatched = len(input_shape) == nd + 1
    if unbatched:
        input_shape = (1,) + input_shape
    x_shape = _shape_to_first(input_shape, channels_last)
    go, _ = _prepare(grad_output, nd, channels_last)
    geo = _Geometry(x_shape, w.shape, stride, padding, dilation, groups)
    assert go.shape == (geo.n, geo.c_out) + geo.out_spatial, (go.shape, geo.out_spatial)
    grad_padded = np.zeros((geo.n, geo.c_in) + geo.padded)
    for tap, window in geo.windows():
        for ci, co in geo.groups_slices():
            w_tap = w[(co, slice(None)) + tap]  # (cg_out, cg_in)
            grad_padded[(slice(None), ci) + window] += _contract(go[:, co], w_tap.T)
    grad = _fold(grad_padded, geo.in_spatial, geo.pads, padding_mode)
    return _finish(grad, unbatched, channels_last)


def conv_weight(x, weight_shape, grad_output, stride=1, padding=0, dilation=1, groups=1,
                padding_mode="zeros", channels_last=False):
    """Gradient of ``sum(conv(x, weight) * grad_output)`` with respect to ``weight``."""
    weight_shape = tuple(weight_shape)
    nd = len(weight_shape) - 2
    x, _ = _prepare(x, nd, channels_last)
    go, _ = _prepare(grad_output, nd, channels_last)
    geo = _Geometry(x.shape, weight_shape, stride, padding, dilation, groups)
    assert go.shape == (geo.n, geo.c_out) + geo.out_spatial, (go.shape, geo.out_spatial)
    xp = _pad(x, geo.pads, padding_mode)
    grad = np.zeros(weight_shape)
    reduce_axes = (0,) + tuple(range(3, 3 + nd))
    for tap, window in geo.windows():
        patch = xp[(slice(None), slice(None)) + window]
        for ci, co in geo.groups_slices():
            products = go[:, co][:, :, None] * patch[:, ci][:, None]  # (N, cg_out, cg_in, *out)
            grad[(co, slice(None)) + tap] = products.sum(axis=reduce_axes)
    return grad


def conv_bias(grad_output, nd, channels_last=False):
    """Gradient of ``sum(conv(x, weight, bias) * grad_output)`` with respect to ``bias``."""
    go, _ = _prepare(grad_output, nd, channels_last)
    return go.sum(axis=(0,) + tuple(range(2, go.ndim)))


def _transposed_geometry(in_spatial, kernel, stride, padding, output_padding, dilation):
    """Scatter buffer shape and output crop of a transposed conv (channels-first spatial)."""
    nd = len(kernel)
    stride, dilation = as_tuple(stride, nd), as_tuple(dilation, nd)
    op = as_tuple(output_padding, nd)
    pads = transposed_pads(padding, in_spatial, kernel, stride, dilation)
    full = tuple((i - 1) * s + d * (k - 1) + 1
                 for i, s, d, k in zip(in_spatial, stride, dilation, kernel, strict=True))
    out_spatial = tuple(transposed_output_size(i, k, s, lo, hi, d, o)
                        for i, k, s, (lo, hi), d, o in zip(in_spatial, kernel, stride, pads,
                                                           dilation, op, strict=True))
    assert min(out_spatial, default=1) >= 1
    buffer = tuple(max(f, lo + o) for f, (lo, _), o in zip(full, pads, out_spatial, strict=True))
    crop = tuple(slice(lo, lo + o) for (lo, _), o in zip(pads, out_spatial, strict=True))
    return stride, dilation, buffer, crop


def conv_transpose(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                   dilation=1, channels_last=False):
    """Transposed conv (``conv_transpose{d}d``) in scatter form; weight is (C_in, C_out/g, *k)."""
    w = _f64(weight)
    nd = w.ndim - 2
    x, unbatched = _prepare(x, nd, channels_last)
    n, c_in = x.shape[:2]
    in_spatial, kernel = x.shape[2:], w.shape[2:]
    assert c_in == w.shape[0] and c_in % groups == 0
    cg_in, cg_out = c_in // groups, w.shape[1]
    stride, dilation, buffer, crop = _transposed_geometry(in_spatial, kernel, stride, padding,
                                                          output_padding, dilation)
    scattered = np.zeros((n, cg_out * groups) + buffer)
    for tap in _taps(kernel):
        window = _window(tap, dilation, stride, in_spatial)
        for g in range(groups):
            ci = slice(g * cg_in, (g + 1) * cg_in)
            co = slice(g * cg_out, (g + 1) * cg_out)
            w_tap = w[(ci, slice(None)) + tap]  # (cg_in, cg_out)
            scattered[(slice(None), co) + window] += _contract(x[:, ci], w_tap.T)
    out = scattered[(slice(None), slice(None)) + crop]
    if bias is not None:
        out = out + _f64(bias).reshape((-1,) + (1,) * nd)
    return _finish(out, unbatched, channels_last)


def conv_transpose_backward(x, weight, grad_output, stride=1, padding=0, output_padding=0,
                            groups=1, dilation=1, channels_last=False):
    """Gradients of ``sum(conv_transpose(x, weight, bias) * grad_output)``, float64.

    Returns ``(grad_x, grad_weight, grad_bias)``: each tap's scatter ``buffer[window] +=
    x @ w_tap`` differentiated directly (a gather of ``grad_output`` through the same window).
    """
    w = _f64(weight)
    nd = w.ndim - 2
    x, unbatched = _prepare(x, nd, channels_last)
    go, _ = _prepare(grad_output, nd, channels_last)
    n, c_in = x.shape[:2]
    in_spatial, kernel = x.shape[2:], w.shape[2:]
    cg_in, cg_out = c_in // groups, w.shape[1]
    stride, dilation, buffer, crop = _transposed_geometry(in_spatial, kernel, stride, padding,
                                                          output_padding, dilation)
    grad_buffer = np.zeros((n, cg_out * groups) + buffer)
    grad_buffer[(slice(None), slice(None)) + crop] = go
    grad_x, grad_w = np.zeros_like(x), np.zeros_like(w)
    spatial_axes = tuple(range(2, 2 + nd))
    for tap in _taps(kernel):
        window = _window(tap, dilation, stride, in_spatial)
        for g in range(groups):
            ci = slice(g * cg_in, (g + 1) * cg_in)
            co = slice(g * cg_out, (g + 1) * cg_out)
            gathered = grad_buffer[(slice(None), co) + window]  # (n, cg_out, *in_spatial)
            grad_x[:, ci] += _contract(gathered, w[(ci, slice(None)) + tap])
            products = x[:, ci, None] * gathered[:, None]  # (n, cg_in, cg_out, *in_spatial)
            grad_w[(ci, slice(None)) + tap] = products.sum(axis=(0,) + tuple(
                a + 1 for a in spatial_axes))
    grad_b = go.sum(axis=(0,) + spatial_axes)
    return _finish(grad_x, unbatched, channels_last), grad_w, grad_b
