"""Dense weight gradient on explicit SIMD register tiles (one group, zero padding).

For every kernel tap ``t`` the weight gradient is a matrix product over output pixels:
``grad_w[:, :, t] = grad_out^T @ x_t``, where row ``p`` of ``x_t`` is the input pixel that
output pixel ``p`` reads through tap ``t``. For one row of taps ``(t0, t1)`` the reduction
entries ``(t2, c_in)`` are flattened, so a layer with few input channels (an RGB stem) still
fills its tiles. A register tile is ``2 * lanes`` output channels by ``IN_TILE`` entries;
per pixel it takes two vector loads of the output gradient, ``IN_TILE`` broadcasts of input
values and ``2 * IN_TILE`` fused multiply-adds.

The input arrives zero-padded (the API layer pads a copy when the layer has padding), so
every output pixel reads inside it: the pixel loops have no bounds tests. It is read through
its strides: channels-last, or channels-first (a pointwise layer's input is then read in
place, with no copy); only the output gradient must be channels-last. A task owns one tap
row and one chunk of output rows; it walks its pixels in spans of at most ``SPAN`` and runs
every (output block, entry tile) pair over a span while the span's data are in cache, so
the input is read from memory once per tap row.

The padded input ``(N, P0, P1, P2, C_in)`` is given as a flat array with its shape and
element strides; the output gradient ``(N, Q0, Q1, Q2, C_out)`` is C-contiguous. Each
element of the partial result ``(chunks, C_out, C_in, T0, T1, T2)`` is one task's
fixed-order sum over its pixels, and the chunks are fixed by the shapes, so results do not
depend on the number of threads.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from numba import prange, types

from ._jit import helper, inlined, kernel
from ._kernels import INDEX_2D, data_type
from ._simd import keep_alive, ptr_of, vbroadcast, vfma, vlanes, vload, vload_masked, vstore

#: Input channels per register tile (with two vectors of output channels: 12 accumulators,
#: which leaves room for the operands in 16 vector registers).
IN_TILE = 6

#: Output pixels per span: a span's data of one tap stay in L1 while every input-channel
#: tile runs over it (rows shorter than this are grouped into one span).
SPAN = 64

#: Bytes of register-tile accumulators a task keeps (bounds its output blocks: they are
#: reloaded for every span, so they must stay in cache next to the span's data; measured
#: best between one block of a 3x3 256-channel layer, 48 KiB, and all four of a 1x1
#: 256 -> 64 layer, 66 KiB).
ACCUMULATOR_BYTES = 72 * 1024


def out_blocks_per_task(c_out: int, row_entries: int, lanes: int, itemsize: int) -> int:
    """Output blocks (``2 * lanes`` channels each) one task of :func:`dense_weight_grad` covers.

    As many as fit :data:`ACCUMULATOR_BYTES` of accumulators, at least one.

    Examples
    --------
    >>> out_blocks_per_task(64, 256, 8, 4)  # 1x1, 256 -> 64: all four blocks
    4
    >>> out_blocks_per_task(256, 768, 8, 4)  # 3x3, 256 -> 256: one of sixteen blocks
    1
    """
    blocks = -(-c_out // (2 * lanes))
    tiles = -(-row_entries // IN_TILE)
    per_block = tiles * IN_TILE * 2 * lanes * itemsize
    return max(1, min(blocks, ACCUMULATOR_BYTES // per_block))


@cache
def dense_weight_grad_signature(dtype: np.dtype) -> tuple:
    """Argument types :func:`dense_weight_grad` is compiled for (one signature per dtype)."""
    return (data_type(dtype, 1, layout="C"), INDEX_2D, data_type(dtype, 5, layout="C"),
            INDEX_2D, data_type(dtype, 6, True, "C"), types.int64)


@inlined
def _tile_span(src, grad, g_rows, x_rows, n_rows, count, c_out, x_step, entries, acc, full,
               co_count):
    """Add one span (``n_rows`` row pieces of ``count`` pixels) to a tile kept in ``acc``.

    The tile (12 vectors) is ``2 * lanes`` output channels (from ``grad[g_rows[r]:]``,
    pixels ``c_out`` apart) by ``IN_TILE`` input entries at offsets ``entries[0:IN_TILE]``
    from ``src[x_rows[r]:]`` (pixels ``x_step`` apart). ``full`` (a constant at each call
    site) selects plain loads of the output gradient; otherwise ``co_count`` lanes are
    loaded masked.
    """
    lanes = vlanes(src)
    e0, e1, e2 = entries[0], entries[1], entries[2]
    e3, e4, e5 = entries[3], entries[4], entries[5]
    a00, a01, a10, a11 = vload(acc, 0), vload(acc, lanes), vload(acc, 2 * lanes), \
        vload(acc, 3 * lanes)
    a20, a21, a30, a31 = vload(acc, 4 * lanes), vload(acc, 5 * lanes), vload(acc, 6 * lanes), \
        vload(acc, 7 * lanes)
    a40, a41, a50, a51 = vload(acc, 8 * lanes), vload(acc, 9 * lanes), vload(acc, 10 * lanes), \
        vload(acc, 11 * lanes)
    for r in range(n_rows):
        g_off = g_rows[r]
        x_off = x_rows[r]
        c0 = ptr_of(src, x_off + e0)
        c1 = ptr_of(src, x_off + e1)
        c2 = ptr_of(src, x_off + e2)
        c3 = ptr_of(src, x_off + e3)
        c4 = ptr_of(src, x_off + e4)
        c5 = ptr_of(src, x_off + e5)
        for p in range(count):
            g = g_off + p * c_out
            x = p * x_step
            if full:
                g0 = vload(grad, g)
                g1 = vload(grad, g + lanes)
            else:
                g0 = vload_masked(grad, g, co_count)
                g1 = vload_masked(grad, g + lanes, co_count - lanes)
            v = vbroadcast(c0[x])
            a00 = vfma(v, g0, a00)
            a01 = vfma(v, g1, a01)
            v = vbroadcast(c1[x])
            a10 = vfma(v, g0, a10)
            a11 = vfma(v, g1, a11)
            v = vbroadcast(c2[x])
            a20 = vfma(v, g0, a20)
            a21 = vfma(v, g1, a21)
            v = vbroadcast(c3[x])
            a30 = vfma(v, g0, a30)
            a31 = vfma(v, g1, a31)
            v = vbroadcast(c4[x])
            a40 = vfma(v, g0, a40)
            a41 = vfma(v, g1, a41)
            v = vbroadcast(c5[x])
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
def dense_weight_grad(src, src_layout, grad, steps, partial, out_blocks):
    """Weight gradient of a one-group convolution from a zero-padded input.

    ``partial[chunk, j, i, t0, t1, t2] = sum grad[n, q0, q1, q2, j] *
    src[n, q0*s0 + t0*d0, q1*s1 + t1*d1, q2*s2 + t2*d2, i]`` over the output rows
    ``(n, q0, q1)`` of ``chunk`` (a fixed split) and all ``q2``, in pixel order.

    Parameters
    ----------
    src : ndarray, 1-D, C-contiguous
        Input of the forward convolution, ``(N, P0, P1, P2, C_in)`` (see `src_layout`),
        zero-padded so that every read is inside, from its element ``(0, 0, 0, 0, 0)`` on.
    src_layout : ndarray of int64, shape (2, 5)
        Shape (row 0) and element strides (row 1, non-negative) of the input.
    grad : ndarray, shape (N, Q0, Q1, Q2, C_out), C-contiguous
        Gradient of its output.
    steps : ndarray of int64, shape (3, 2)
        Stride and dilation of each dimension.
    partial : ndarray, shape (chunks, C_out, C_in, T0, T1, T2), C-contiguous
        Written once per element (in the layout of the weights, so the sum over chunks is
        the gradient itself, with no transposing copy).
    out_blocks : int
        Blocks of ``2 * lanes`` output channels per task (their accumulators stay in
        cache while a span's input is reused for all of them).
    """
    n_chunks, c_out, _, taps0, taps1, _ = partial.shape
    out_tile = 2 * vlanes(src)
    n_out = (c_out + out_tile - 1) // out_tile
    n_groups = (n_out + out_blocks - 1) // out_blocks
    for task in prange(n_chunks * taps0 * taps1 * n_groups):
        # a task of its own function: a parallel compile costs less with a small loop body
        _weight_task(src, src_layout, grad, steps, partial, out_blocks, np.int64(task))


@helper
def _weight_task(src, src_layout, grad, steps, partial, out_blocks, task):
    """Task ``task`` of :func:`dense_weight_grad` (one chunk, tap row and output group)."""
    n_chunks, c_out, _, taps0, taps1, taps2 = partial.shape
    batch, rows0, rows1, cols = grad.shape[0], grad.shape[1], grad.shape[2], grad.shape[3]
    c_in = src_layout[0, 4]
    row_entries = taps2 * c_in
    stride_n, stride0, stride1 = src_layout[1, 0], src_layout[1, 1], src_layout[1, 2]
    stride2, stride_c = src_layout[1, 3], src_layout[1, 4]
    lanes = vlanes(src)
    out_tile = 2 * lanes
    tile_size = IN_TILE * out_tile
    n_out = (c_out + out_tile - 1) // out_tile
    n_groups = (n_out + out_blocks - 1) // out_blocks
    n_tiles = (row_entries + IN_TILE - 1) // IN_TILE
    n_rows = batch * rows0 * rows1
    x_step = steps[2, 0] * stride2
    # a span is a piece of one row (long rows) or several whole rows (short rows)
    piece = min(cols, SPAN)
    rows_per_span = max(1, SPAN // cols)
    src_p = ptr_of(src, 0)
    grad_p = ptr_of(grad, 0)
    group = task % n_groups
    rest = task // n_groups
    t1 = rest % taps1
    rest //= taps1
    t0 = rest % taps0
    chunk = rest // taps0
    ob_lo = group * out_blocks
    ob_hi = min(n_out, ob_lo + out_blocks)
    # offset of each entry (t2, i) from its pixel's first tap column, per tile
    entries_array = np.empty(n_tiles * IN_TILE, dtype=np.int64)
    for e in range(n_tiles * IN_TILE):
        k = min(e, row_entries - 1)
        entries_array[e] = (k // c_in) * steps[2, 1] * stride2 + (k % c_in) * stride_c
    acc_array = np.zeros((ob_hi - ob_lo) * n_tiles * tile_size, dtype=partial.dtype)
    rows_array = np.empty(2 * rows_per_span, dtype=np.int64)
    g_rows = ptr_of(rows_array, 0)
    x_rows = ptr_of(rows_array, rows_per_span)
    row_lo = chunk * n_rows // n_chunks
    row_hi = (chunk + 1) * n_rows // n_chunks
    for first in range(row_lo, row_hi, rows_per_span):
        span_rows = min(rows_per_span, row_hi - first)
        for start in range(0, cols, piece):
            count = min(piece, cols - start)
            for r in range(span_rows):
                row = first + r
                q1 = row % rows1
                q0 = (row // rows1) % rows0
                n = row // (rows1 * rows0)
                s0 = q0 * steps[0, 0] + t0 * steps[0, 1]
                s1 = q1 * steps[1, 0] + t1 * steps[1, 1]
                g_rows[r] = (row * cols + start) * c_out
                x_rows[r] = n * stride_n + s0 * stride0 + s1 * stride1 + start * x_step
            # every (output block, entry tile) pair over the span while it is in cache
            for ob in range(ob_lo, ob_hi):
                co = ob * out_tile
                co_count = min(out_tile, c_out - co)
                for r in range(span_rows):
                    g_rows[r] += co
                for tile in range(n_tiles):
                    entries = ptr_of(entries_array, tile * IN_TILE)
                    acc = ptr_of(acc_array, ((ob - ob_lo) * n_tiles + tile) * tile_size)
                    if co_count == out_tile:
                        _tile_span(src_p, grad_p, g_rows, x_rows, span_rows, count, c_out,
                                   x_step, entries, acc, True, co_count)
                    else:
                        _tile_span(src_p, grad_p, g_rows, x_rows, span_rows, count, c_out,
                                   x_step, entries, acc, False, co_count)
                for r in range(span_rows):
                    g_rows[r] -= co
    for ob in range(ob_lo, ob_hi):
        co = ob * out_tile
        for e in range(row_entries):
            tile, k = e // IN_TILE, e % IN_TILE
            base = ((ob - ob_lo) * n_tiles + tile) * tile_size + k * out_tile
            for lane in range(min(out_tile, c_out - co)):
                partial[chunk, co + lane, e % c_in, t0, t1, e // c_in] = \
                    acc_array[base + lane]
    keep_alive(entries_array)
    keep_alive(rows_array)
