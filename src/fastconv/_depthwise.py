"""Depthwise convolution vectorised across channels: one vector lane per channel.

A depthwise layer (one input and one output channel per group) on small planes leaves
the planar kernels' vectors of columns mostly idle or busy with bookkeeping: a 7x7 plane
fills 7 of 16 float32 lanes, and a 14x14 one pays a tile fill and a call per 196 pixels.
Here a task takes one sample and a block of ``L`` channels (``L``: the vector lanes) and
copies the input rows its block of output rows reads into a padded channels-last tile
(``L x L`` in-register transposes, :func:`fastconv._simd.vtranspose_copy`). On that tile
every tap of an output pixel is one vector load, multiplied by the tap's ``L`` weights
(one vector: no broadcasts, no shifted loads, and any stride or dilation at the same
cost), eight pixels at a time; the results are transposed back into the channels-first
output.

Each output element is the sum of its taps in the planar kernels' order (taps along
``D0``, then rows, then columns, from zero, one rounding per multiply-add), bias added
last: the same bits as :func:`fastconv._planar.planar_conv`, whatever the thread count.
"""

from __future__ import annotations

from functools import cache, partial

import numpy as np
from numba import prange, types
from numba.extending import register_jitable

from ._jit import address_of, caller, helper, inlined, kernel, kernel_signature
from ._kernels import INDEX_2D, data_type
from ._plan import DILATION, PAD_LOW, STRIDE, depthwise_tasks_per_chunk, planar_tile_rows
from ._simd import (
    keep_alive,
    ptr_of,
    vadd,
    vfma,
    vlanes,
    vload,
    vstore,
    vtranspose_copy,
    vtranspose_copy_partial,
    vzero,
)

#: Output pixels of a register tile (eight accumulators: each weight load feeds eight
#: multiply-adds, each with its own tile load).
PIXELS = 8


def pack_lanes(weight: np.ndarray, lanes: int) -> np.ndarray:
    """Depthwise weights ``(C, 1, T0, T1, T2)`` as ``(ceil(C / lanes), T0, T1, T2, lanes)``.

    Block ``b`` holds channels ``b * lanes + [0, lanes)`` (zeros past ``C``), the
    ``lanes`` weights of one tap contiguous.

    Examples
    --------
    >>> w = np.arange(6.0).reshape(3, 1, 1, 1, 2)
    >>> pack_lanes(w, 4)[0, 0, 0]
    array([[0., 2., 4., 0.],
           [1., 3., 5., 0.]])
    """
    channels = weight.shape[0]
    blocks = -(-channels // lanes)
    padded = np.zeros((blocks * lanes, *weight.shape[2:]), weight.dtype)
    padded[:channels] = weight[:, 0]
    return np.ascontiguousarray(
        padded.reshape(blocks, lanes, *weight.shape[2:]).transpose(0, 2, 3, 4, 1))


def pack_bias(bias: np.ndarray, lanes: int) -> np.ndarray:
    """``bias`` zero-padded to whole blocks of ``lanes`` channels.

    Examples
    --------
    >>> pack_bias(np.ones(3), 4)
    array([1., 1., 1., 0.])
    """
    padded = np.zeros(-(-bias.shape[0] // lanes) * lanes, bias.dtype)
    padded[:bias.shape[0]] = bias
    return padded


@register_jitable
def tile_width(cols: int, taps2: int, stride2: int, dilation2: int) -> int:
    """Tile columns (pixels of ``L`` lanes) a row of ``cols`` output columns reads.

    Examples
    --------
    >>> tile_width(7, 7, 1, 1), tile_width(14, 5, 2, 1)
    (13, 31)
    """
    return (cols - 1) * stride2 + (taps2 - 1) * dilation2 + 1


@cache
def depthwise_task_signature(dtype: np.dtype) -> tuple:
    """Argument types of :func:`_depthwise_tasks`: the data and rows, then the task range."""
    return (data_type(dtype, 5, layout="C"), data_type(dtype, 5, layout="C"),
            data_type(dtype, 1, layout="C"), data_type(dtype, 5, True, "C"), INDEX_2D,
            types.int64, types.int64, types.int64)


#: Argument types :func:`depthwise_conv` is compiled for (one signature per dtype).
depthwise_signature = kernel_signature(depthwise_task_signature, 2)
_call_depthwise_tasks = caller(depthwise_task_signature)


@kernel
def depthwise_conv(src, packed, bias, out, geom, row_block, task_at):
    """Depthwise convolution ``out[n, c, q] = bias[c] + sum_t src[n, c, s(q, t)] * w[c, t]``.

    Over the taps ``t`` whose source ``s`` is inside the input (zero padding). One task
    computes a block of ``row_block`` rows (along ``Q1``) of one output plane ``(n, q0)``
    of a block of ``L`` channels.

    Parameters
    ----------
    src : ndarray, shape (N, C, S0, S1, S2), C-contiguous
        Data read.
    packed : ndarray, shape (ceil(C / L), T0, T1, T2, L), C-contiguous
        The kernel in blocks of ``L`` channels (:func:`pack_lanes`).
    bias : ndarray, shape (ceil(C / L) * L,)
        Added to every output (:func:`pack_bias`; zeros when there is no bias).
    out : ndarray, shape (N, C, Q0, Q1, Q2), C-contiguous
        Written once per element.
    geom : ndarray of int64, shape (3, 9)
        Forward geometry record of each dimension (:func:`fastconv._plan.geometry`),
        zero padding of at least zero.
    row_block : int
        Output rows (along ``Q1``) per task.
    task_at : int
        :data:`depthwise_task_address` of the dtype.
    """
    lanes = vlanes(out)
    batch, channels, rows0, rows1 = out.shape[0], out.shape[1], out.shape[2], out.shape[3]
    blocks = (channels + lanes - 1) // lanes
    n_tasks = batch * blocks * rows0 * ((rows1 + row_block - 1) // row_block)
    per = depthwise_tasks_per_chunk(n_tasks)
    for chunk in prange((n_tasks + per - 1) // per):
        # the task function, called by address, is compiled once (see _jit.caller)
        _call_depthwise_tasks(task_at, (src, packed, bias, out, geom, row_block,
                                        np.int64(chunk * per),
                                        np.int64(min(n_tasks, (chunk + 1) * per))))


@inlined
def _aligned(array):
    """Elements from ``array``'s start to the first vector-aligned address in it."""
    size = vlanes(array) * array.itemsize
    return (size - array.ctypes.data % size) % size // array.itemsize


@inlined
def _zero_pixels(tile, at, count):
    """Write zeros to ``count`` pixels (``L`` lanes each) at ``tile[at:]``."""
    zero = vzero(tile)
    lanes = vlanes(tile)
    for p in range(count):
        vstore(tile, at + p * lanes, zero)


@inlined
def _fill_rows(src, src_off, channel_step, valid, pixels, size2, width, stage, tile, at):
    """Copy ``pixels`` consecutive pixels of ``valid`` channels into tile rows at ``tile[at:]``.

    The source pixels ``src[src_off + l * channel_step + p]`` (channel ``l``) are whole rows
    of ``size2`` columns; pixel ``p`` lands in tile row ``p // size2``, column ``p % size2``
    (rows ``width`` pixels apart; the caller's ``at`` includes the left padding). Sixteen
    (``L``) pixels at a time are transposed into ``stage`` and then stored one vector per
    pixel; lanes past ``valid`` channels are zeros.
    """
    lanes = vlanes(tile)
    row, col = 0, 0  # of pixel p0 + j (no division per pixel)
    for p0 in range(0, pixels, lanes):
        count = min(lanes, pixels - p0)
        if valid == lanes:
            if count == lanes:
                vtranspose_copy(src, src_off + p0, channel_step, stage, 0, lanes)
            else:
                vtranspose_copy_partial(src, src_off + p0, channel_step, stage, 0, lanes,
                                        count)
        else:
            for j in range(count):
                for lane in range(lanes):
                    stage[j * lanes + lane] = \
                        src[src_off + lane * channel_step + p0 + j] if lane < valid else 0
        for j in range(count):
            vstore(tile, at + (row * width + col) * lanes, vload(stage, j * lanes))
            col += 1
            if col == size2:
                row, col = row + 1, 0


@inlined
def _pixels8(tile, packed, w_off, offsets, taps, bases, acc):
    """``acc[i] += sum_t tile[bases[i] + offsets[t]] * packed[w_off + t * L]``, ``t < taps``.

    Eight output pixels, each at its own tile offset: a weight load per eight
    multiply-adds, each with its own tile load. The taps' offsets come from a table: with
    offsets computed in the loop, LLVM kept a pointer per pixel and unrolled tap and
    spilled them (a 7x7 depthwise layer ran at 17% of the FMA peak).
    """
    lanes = vlanes(tile)
    b0, b1, b2, b3, b4, b5, b6, b7 = bases
    a0, a1, a2, a3, a4, a5, a6, a7 = acc
    for t in range(taps):
        w = vload(packed, w_off + t * lanes)
        x = offsets[t]
        a0 = vfma(vload(tile, b0 + x), w, a0)
        a1 = vfma(vload(tile, b1 + x), w, a1)
        a2 = vfma(vload(tile, b2 + x), w, a2)
        a3 = vfma(vload(tile, b3 + x), w, a3)
        a4 = vfma(vload(tile, b4 + x), w, a4)
        a5 = vfma(vload(tile, b5 + x), w, a5)
        a6 = vfma(vload(tile, b6 + x), w, a6)
        a7 = vfma(vload(tile, b7 + x), w, a7)
    return a0, a1, a2, a3, a4, a5, a6, a7


@inlined
def _slide8(tile, packed, w_off, row_offsets, tap_rows, taps2, at, acc):
    """:func:`_pixels8` for eight consecutive pixels of a row, unit column stride and dilation.

    Tap row ``t`` (of ``tap_rows``: along ``D0``, then ``D1``) reads the tile at
    ``at + row_offsets[t]``. Its eight input vectors slide one column further per tap: a
    tile load and a weight load per eight multiply-adds (:func:`_pixels8` loads a vector
    per multiply-add). The same sums in the same order.
    """
    lanes = vlanes(tile)
    a0, a1, a2, a3, a4, a5, a6, a7 = acc
    for t in range(tap_rows):
        x = at + row_offsets[t]
        x0, x1, x2, x3 = vload(tile, x), vload(tile, x + lanes), vload(tile, x + 2 * lanes), \
            vload(tile, x + 3 * lanes)
        x4, x5, x6, x7 = vload(tile, x + 4 * lanes), vload(tile, x + 5 * lanes), \
            vload(tile, x + 6 * lanes), vload(tile, x + 7 * lanes)
        w_at = w_off + t * taps2 * lanes
        for t2 in range(taps2):
            w = vload(packed, w_at + t2 * lanes)
            a0 = vfma(x0, w, a0)
            a1 = vfma(x1, w, a1)
            a2 = vfma(x2, w, a2)
            a3 = vfma(x3, w, a3)
            a4 = vfma(x4, w, a4)
            a5 = vfma(x5, w, a5)
            a6 = vfma(x6, w, a6)
            a7 = vfma(x7, w, a7)
            x0, x1, x2, x3, x4, x5, x6 = x1, x2, x3, x4, x5, x6, x7
            x7 = vload(tile, x + (PIXELS + t2) * lanes)
    return a0, a1, a2, a3, a4, a5, a6, a7


@inlined
def _next_pixel(base, col, cols, pixel_col, row_back, more):
    """Tile offset and column of the output pixel after the one at ``base`` (column ``col``).

    ``pixel_col`` and ``row_back`` step to the next column, and from a row's last column
    to the next row's first. Without ``more`` pixels in the block: the same pixel.
    """
    if not more:
        return base, col
    return (base + row_back, 0) if col + 1 == cols else (base + pixel_col, col + 1)


@inlined
def _store_pixels(buf, at, lanes, acc, bias):
    """Store the eight pixels ``acc + bias`` at ``buf[at:]``, ``lanes`` elements apart."""
    a0, a1, a2, a3, a4, a5, a6, a7 = acc
    vstore(buf, at, vadd(a0, bias))
    vstore(buf, at + lanes, vadd(a1, bias))
    vstore(buf, at + 2 * lanes, vadd(a2, bias))
    vstore(buf, at + 3 * lanes, vadd(a3, bias))
    vstore(buf, at + 4 * lanes, vadd(a4, bias))
    vstore(buf, at + 5 * lanes, vadd(a5, bias))
    vstore(buf, at + 6 * lanes, vadd(a6, bias))
    vstore(buf, at + 7 * lanes, vadd(a7, bias))


@inlined
def _write_out(buf, pixels, valid, out, out_off, channel_step):
    """Transpose ``pixels`` pixels of ``L`` lanes at ``buf`` into ``valid`` output planes.

    Pixel ``p``, lane ``l`` goes to ``out[out_off + l * channel_step + p]``.
    """
    lanes = vlanes(buf)
    p = 0
    if valid == lanes:
        while p + lanes <= pixels:
            vtranspose_copy(buf, p * lanes, lanes, out, out_off + p, channel_step)
            p += lanes
    for lane in range(valid):
        for q in range(p, pixels):
            out[out_off + lane * channel_step + q] = buf[q * lanes + lane]


@helper
def _depthwise_tasks(src, packed, bias, out, geom, row_block, first, last):
    """Tasks ``first`` to ``last - 1`` of :func:`depthwise_conv` (its loop body, compiled once).

    The tile (zeros where no task writes: the padded columns), the staging block and the
    output block are allocated once per call (per chunk of tasks). Zeroing the padded
    columns row by row instead ran 7-14% slower than zeroing the whole tile once.
    """
    lanes = vlanes(out)
    channels, rows0, rows1, cols = out.shape[1], out.shape[2], out.shape[3], out.shape[4]
    size0, size1, size2 = src.shape[2], src.shape[3], src.shape[4]
    taps0, taps1, taps2 = packed.shape[1], packed.shape[2], packed.shape[3]
    stride0, dilation0, pad0 = geom[0, STRIDE], geom[0, DILATION], geom[0, PAD_LOW]
    stride1, dilation1, pad1 = geom[1, STRIDE], geom[1, DILATION], geom[1, PAD_LOW]
    stride2, dilation2, pad2 = geom[2, STRIDE], geom[2, DILATION], geom[2, PAD_LOW]
    blocks = (channels + lanes - 1) // lanes
    n_blocks = (rows1 + row_block - 1) // row_block
    span = planar_tile_rows(min(row_block, rows1), stride1, taps1, dilation1)
    width = tile_width(cols, taps2, stride2, dilation2)
    # every pixel of the tile and the buffers starts a cache line (float32 with AVX-512):
    # the loads of the multiply-adds never straddle two
    tile_array = np.zeros((taps0 * span * width + PIXELS + 2) * lanes, dtype=out.dtype)
    tile = ptr_of(tile_array, _aligned(tile_array))
    stage_array = np.empty(lanes * lanes + lanes, dtype=out.dtype)
    stage = ptr_of(stage_array, _aligned(stage_array))
    buf_array = np.empty((min(row_block, rows1) * cols + PIXELS + 1) * lanes, dtype=out.dtype)
    buf = ptr_of(buf_array, _aligned(buf_array))
    src_p = ptr_of(src, 0)
    out_p = ptr_of(out, 0)
    in_channel = size0 * size1 * size2
    out_channel = rows0 * rows1 * cols
    # tile offset of each tap (along D0, rows, then columns: the weights' order)
    taps = taps0 * taps1 * taps2
    offsets_array = np.empty(taps, dtype=np.int64)
    offsets = ptr_of(offsets_array, 0)
    for t in range(taps):
        offsets[t] = ((t // (taps1 * taps2) * span + t // taps2 % taps1 * dilation1) * width
                      + t % taps2 * dilation2) * lanes
    # unit column stride and dilation: rows of pixels slide along the taps (_slide8)
    slides = stride2 == 1 and dilation2 == 1
    tap_rows = taps0 * taps1
    row_offsets_array = np.empty(tap_rows, dtype=np.int64)
    row_offsets = ptr_of(row_offsets_array, 0)
    for t in range(tap_rows):
        row_offsets[t] = (t // taps1 * span + t % taps1 * dilation1) * width * lanes
    pixel_row = stride1 * width * lanes  # an output row further down
    pixel_col = stride2 * lanes  # an output column further right
    for task in range(first, last):
        block = task % n_blocks
        rest = task // n_blocks
        q0 = rest % rows0
        rest //= rows0
        b = rest % blocks
        n = rest // blocks
        row_lo = block * row_block
        rows = min(rows1, row_lo + row_block) - row_lo
        used = planar_tile_rows(rows, stride1, taps1, dilation1)
        c0 = b * lanes
        valid = min(lanes, channels - c0)
        # the tile rows inside the input get its rows (the padded columns around them are
        # zeros already), the others zeros
        first_row = row_lo * stride1 - pad1
        inside_lo = min(used, max(0, -first_row))
        inside_hi = max(inside_lo, min(used, size1 - first_row))
        for t0 in range(taps0):
            s0 = q0 * stride0 + t0 * dilation0 - pad0
            plane = t0 * span * width * lanes
            if 0 <= s0 < size0:
                _zero_pixels(tile, plane, inside_lo * width)
                _fill_rows(src_p, ((n * channels + c0) * size0 + s0) * size1 * size2
                           + (first_row + inside_lo) * size2, in_channel, valid,
                           (inside_hi - inside_lo) * size2, size2, width, stage, tile,
                           plane + (inside_lo * width + pad2) * lanes)
                _zero_pixels(tile, plane + inside_hi * width * lanes,
                             (used - inside_hi) * width)
            else:
                _zero_pixels(tile, plane, used * width)
        bias_v = vload(bias, c0)
        pixels = rows * cols
        z = vzero(buf)
        if slides:
            # eight consecutive pixels of a row at a time (past the row's end they read the
            # next tile row: computed, then overwritten by the next row's, or in the slack)
            for r in range(rows):
                for c in range(0, cols, PIXELS):
                    acc = _slide8(tile, packed, b * taps * lanes, row_offsets, tap_rows,
                                  taps2, (r * stride1 * width + c) * lanes,
                                  (z, z, z, z, z, z, z, z))
                    _store_pixels(buf, (r * cols + c) * lanes, lanes, acc, bias_v)
            pixels = 0  # done
        # tile offsets of the register tile's eight pixels, walked along the rows (past
        # the block's last pixel, they repeat it: computed, never written out)
        base, col = 0, 0
        row_back = pixel_row - (cols - 1) * pixel_col
        for p in range(0, pixels, PIXELS):
            b0 = base
            base, col = _next_pixel(base, col, cols, pixel_col, row_back, p + 1 < pixels)
            b1 = base
            base, col = _next_pixel(base, col, cols, pixel_col, row_back, p + 2 < pixels)
            b2 = base
            base, col = _next_pixel(base, col, cols, pixel_col, row_back, p + 3 < pixels)
            b3 = base
            base, col = _next_pixel(base, col, cols, pixel_col, row_back, p + 4 < pixels)
            b4 = base
            base, col = _next_pixel(base, col, cols, pixel_col, row_back, p + 5 < pixels)
            b5 = base
            base, col = _next_pixel(base, col, cols, pixel_col, row_back, p + 6 < pixels)
            b6 = base
            base, col = _next_pixel(base, col, cols, pixel_col, row_back, p + 7 < pixels)
            b7 = base
            base, col = _next_pixel(base, col, cols, pixel_col, row_back, True)
            bases = (b0, b1, b2, b3, b4, b5, b6, b7)
            z = vzero(buf)
            acc = (z, z, z, z, z, z, z, z)
            acc = _pixels8(tile, packed, b * taps * lanes, offsets, taps, bases, acc)
            _store_pixels(buf, p * lanes, lanes, acc, bias_v)
        _write_out(buf, rows * cols, valid, out_p,
                   ((n * channels + c0) * rows0 + q0) * rows1 * cols + row_lo * cols,
                   out_channel)
    keep_alive(tile_array)
    keep_alive(stage_array)
    keep_alive(buf_array)
    keep_alive(offsets_array)
    keep_alive(row_offsets_array)


#: ``dtype -> task_at`` of :func:`depthwise_conv` (compiles the task function once)
depthwise_task_address = partial(address_of, _depthwise_tasks, depthwise_task_signature)
