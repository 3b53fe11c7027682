"""Dense weight gradient on explicit SIMD register tiles (one group, zero padding).

For every kernel tap ``t`` the weight gradient is a matrix product over output pixels:
``grad_w[:, :, t] = grad_out^T @ x_t``, where row ``p`` of ``x_t`` is the input pixel that
output pixel ``p`` reads through tap ``t``. A task owns one register tile of that product,
``2 * lanes`` output channels by ``IN_TILE`` input channels of one tap, and runs the whole
reduction over pixels in registers: per pixel two vector loads of the output gradient,
``IN_TILE`` broadcasts of input values and ``2 * IN_TILE`` fused multiply-adds. Zero padding
is handled arithmetically: per output row, only the columns whose source lies inside the
input are visited.

Arrays are C-contiguous and channels-last: the input ``(N, S0, S1, S2, C_in)`` and the
output gradient ``(N, Q0, Q1, Q2, C_out)``. The result ``(C_out, C_in, T0, T1, T2)`` is
written once per element; each element is one task's fixed-order sum over pixels, so the
result does not depend on the number of threads.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from numba import prange, types

from ._jit import inlined, kernel
from ._kernels import data_type
from ._plan import DILATION, IN_SIZE, PAD_LOW, STRIDE
from ._simd import ptr_of, vbroadcast, vfma, vlanes, vload, vload_masked, vstore

#: Input channels per register tile (with two vectors of output channels: 12 accumulators,
#: which leaves room for the operands in 16 vector registers).
IN_TILE = 6

#: Output pixels per span: a span's data of one tap stay in L1 while every input-channel
#: tile runs over it.
SPAN = 64

_INDEX_2D = types.Array(types.int64, 2, "C", readonly=True)


@cache
def dense_weight_grad_signature(dtype: np.dtype) -> tuple:
    """Argument types :func:`dense_weight_grad` is compiled for (one signature per dtype)."""
    return (data_type(dtype, 5, layout="C"), data_type(dtype, 5, layout="C"), _INDEX_2D,
            data_type(dtype, 5, True, "C"))


@inlined
def _valid_columns(cols, size, stride, tap_shift):
    """Output columns ``[lo, hi)`` whose source ``q * stride + tap_shift`` is inside the input."""
    lo = max(0, (-tap_shift + stride - 1) // stride)
    hi = min(cols, (size - 1 - tap_shift) // stride + 1) if size - 1 - tap_shift >= 0 else 0
    return lo, max(lo, hi)


@inlined
def _tile_span(src, grad, g_off, x_off, count, c_out, x_step, ci, c_in, acc, full, co_count):
    """Add one span of ``count`` pixels to a register tile kept in ``acc`` (12 vectors).

    The tile is ``2 * lanes`` output channels (from ``grad[g_off:]``, pixels ``c_out``
    apart) by ``IN_TILE`` input channels from ``ci`` (from ``src[x_off:]``, pixels
    ``x_step`` apart; channels past ``c_in`` repeat the last one and are not stored).
    ``full`` (a constant at each call site) selects plain loads of the output gradient;
    otherwise ``co_count`` lanes are loaded masked.
    """
    lanes = vlanes(src)
    c0 = x_off + ci
    c1 = x_off + min(ci + 1, c_in - 1)
    c2 = x_off + min(ci + 2, c_in - 1)
    c3 = x_off + min(ci + 3, c_in - 1)
    c4 = x_off + min(ci + 4, c_in - 1)
    c5 = x_off + min(ci + 5, c_in - 1)
    a00, a01, a10, a11 = vload(acc, 0), vload(acc, lanes), vload(acc, 2 * lanes), \
        vload(acc, 3 * lanes)
    a20, a21, a30, a31 = vload(acc, 4 * lanes), vload(acc, 5 * lanes), vload(acc, 6 * lanes), \
        vload(acc, 7 * lanes)
    a40, a41, a50, a51 = vload(acc, 8 * lanes), vload(acc, 9 * lanes), vload(acc, 10 * lanes), \
        vload(acc, 11 * lanes)
    for p in range(count):
        g = g_off + p * c_out
        x = p * x_step
        if full:
            g0 = vload(grad, g)
            g1 = vload(grad, g + lanes)
        else:
            g0 = vload_masked(grad, g, co_count)
            g1 = vload_masked(grad, g + lanes, co_count - lanes)
        v = vbroadcast(src[c0 + x])
        a00 = vfma(v, g0, a00)
        a01 = vfma(v, g1, a01)
        v = vbroadcast(src[c1 + x])
        a10 = vfma(v, g0, a10)
        a11 = vfma(v, g1, a11)
        v = vbroadcast(src[c2 + x])
        a20 = vfma(v, g0, a20)
        a21 = vfma(v, g1, a21)
        v = vbroadcast(src[c3 + x])
        a30 = vfma(v, g0, a30)
        a31 = vfma(v, g1, a31)
        v = vbroadcast(src[c4 + x])
        a40 = vfma(v, g0, a40)
        a41 = vfma(v, g1, a41)
        v = vbroadcast(src[c5 + x])
        a50 = vfma(v, g0, a50)
        a51 = vfma(v, g1, a51)
    vstore(acc, 0, a00)
    vstore(acc, lanes, a01)
    vstore(acc, 2 * lanes, a10)
    vstore(acc, 3 * lanes, a11)
    vstore(acc, 4 * lanes, a20)
    vstore(acc, 5 * lanes, a21)
    vstore(acc, 6 * lanes, a30)
    vstore(acc, 7 * lanes, a31)
    vstore(acc, 8 * lanes, a40)
    vstore(acc, 9 * lanes, a41)
    vstore(acc, 10 * lanes, a50)
    vstore(acc, 11 * lanes, a51)


@kernel
def dense_weight_grad(src, grad, geom, out):
    """Weight gradient of a one-group, zero-padded convolution (channels-last data).

    ``out[j, i, t0, t1, t2] = sum grad[n, q0, q1, q2, j] * src[n, s0, s1, s2, i]`` over the
    output pixels whose source ``s = q * stride + t * dilation - pad_low`` is inside the
    input, in pixel order. A task owns one tap and ``2 * lanes`` output channels; it walks
    the pixels in spans of at most ``SPAN`` and runs every input-channel tile over a span
    while its data are in cache.

    Parameters
    ----------
    src : ndarray, shape (N, S0, S1, S2, C_in), C-contiguous
        Input of the forward convolution.
    grad : ndarray, shape (N, Q0, Q1, Q2, C_out), C-contiguous
        Gradient of its output.
    geom : ndarray of int64, shape (3, 9)
        Forward geometry record of each dimension (:func:`fastconv._plan.geometry`).
    out : ndarray, shape (C_out, C_in, T0, T1, T2), C-contiguous
        Written once per element.
    """
    c_out, c_in, taps0, taps1, taps2 = out.shape
    batch, rows0, rows1, cols = grad.shape[0], grad.shape[1], grad.shape[2], grad.shape[3]
    size0, size1, size2 = src.shape[1], src.shape[2], src.shape[3]
    lanes = vlanes(src)
    out_tile = 2 * lanes
    tile_size = IN_TILE * out_tile
    n_out = (c_out + out_tile - 1) // out_tile
    n_in = (c_in + IN_TILE - 1) // IN_TILE
    stride2 = geom[2, STRIDE]
    x_step = stride2 * c_in
    src_p = ptr_of(src, 0)
    grad_p = ptr_of(grad, 0)
    for task in prange(taps0 * taps1 * taps2 * n_out):
        ob = task % n_out
        rest = task // n_out
        t2 = rest % taps2
        rest //= taps2
        t1 = rest % taps1
        t0 = rest // taps1
        co = ob * out_tile
        co_count = min(out_tile, c_out - co)
        shift0 = t0 * geom[0, DILATION] - geom[0, PAD_LOW]
        shift1 = t1 * geom[1, DILATION] - geom[1, PAD_LOW]
        shift2 = t2 * geom[2, DILATION] - geom[2, PAD_LOW]
        lo, hi = _valid_columns(cols, geom[2, IN_SIZE], stride2, shift2)
        acc = np.zeros(n_in * tile_size, dtype=out.dtype)
        for n in range(batch):
            for q0 in range(rows0):
                s0 = q0 * geom[0, STRIDE] + shift0
                if s0 < 0 or s0 >= size0:
                    continue
                for q1 in range(rows1):
                    s1 = q1 * geom[1, STRIDE] + shift1
                    if s1 < 0 or s1 >= size1:
                        continue
                    g_row = ((n * rows0 + q0) * rows1 + q1) * cols
                    x_row = ((n * size0 + s0) * size1 + s1) * size2
                    for start in range(lo, hi, SPAN):
                        count = min(SPAN, hi - start)
                        g_off = (g_row + start) * c_out + co
                        x_off = (x_row + start * stride2 + shift2) * c_in
                        for ib in range(n_in):
                            tile = ptr_of(acc, ib * tile_size)
                            if co_count == out_tile:
                                _tile_span(src_p, grad_p, g_off, x_off, count, c_out, x_step,
                                           ib * IN_TILE, c_in, tile, True, co_count)
                            else:
                                _tile_span(src_p, grad_p, g_off, x_off, count, c_out, x_step,
                                           ib * IN_TILE, c_in, tile, False, co_count)
        for ib in range(n_in):
            for k in range(min(IN_TILE, c_in - ib * IN_TILE)):
                for lane in range(co_count):
                    out[co + lane, ib * IN_TILE + k, t0, t1, t2] = \
                        acc[ib * tile_size + k * out_tile + lane]
