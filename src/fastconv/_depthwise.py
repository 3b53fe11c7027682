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

A strided layer's input gradient runs here as one stride-1 convolution of the output
gradient spread with zeros (``stride - 1`` between its elements, written into every
stride-th row and column of the tile; :func:`fastconv._plan.spread_adjoint`) with the
flipped kernel. Its multiply-adds on the spread zeros are wasted (three in four at
stride 2), yet on this kernel it ran 1.2-3x faster than one small convolution per stride
phase; the zeros add exact zeros to the sums, so only non-finite weights can tell (an
infinite weight times a spread zero is NaN, as it is already at every zero-padded border).
"""

from __future__ import annotations

import math
from functools import cache, partial

import numpy as np
from numba import prange, types
from numba.extending import register_jitable

from ._jit import address_of, caller, helper, inlined, kernel, kernel_signature
from ._kernels import INDEX_1D, INDEX_2D, data_type, transpose_run
from ._plan import DILATION, PAD_LOW, STRIDE, planar_tile_rows
from ._simd import (
    keep_alive,
    lanes_for,
    ptr_of,
    vadd,
    vfma,
    vlanes,
    vload,
    vload_masked,
    vstore,
    vstore_masked,
    vtranspose_copy,
    vtranspose_copy_partial,
    vzero,
)

#: Output pixels of a register tile (eight accumulators: each weight load feeds eight
#: multiply-adds, each with its own tile load).
PIXELS = 8


def pack_lanes(weight: np.ndarray) -> np.ndarray:
    """Depthwise weights ``(C, 1, T0, T1, T2)`` as ``(ceil(C / L), T0, T1, T2, L)``.

    Block ``b`` holds channels ``b * L + [0, L)`` (zeros past ``C``; ``L``: the vector
    lanes of the dtype), the ``L`` weights of one tap contiguous. Packed by in-register
    transposes (:func:`_pack_blocks`): NumPy's two strided copies took 15-60 us of a 7x7
    depthwise layer's 260 us call.

    Examples
    --------
    >>> from fastconv._simd import lanes_for
    >>> w = np.arange(6.0).reshape(3, 1, 1, 1, 2)
    >>> packed = pack_lanes(w)
    >>> packed.shape == (1, 1, 1, 2, lanes_for(w.dtype))
    True
    >>> packed[0, 0, 0, :, :4]
    array([[0., 2., 4., 0.],
           [1., 3., 5., 0.]])
    """
    lanes = lanes_for(weight.dtype)
    channels, taps = weight.shape[0], math.prod(weight.shape[2:])
    blocks = -(-channels // lanes)
    packed = np.empty((blocks, *weight.shape[2:], lanes), weight.dtype)
    if channels % lanes:  # the lanes past the last channel (whole blocks are all written)
        packed[-1] = 0
    _pack_blocks(np.ascontiguousarray(weight).reshape(channels, taps),
                 packed.reshape(blocks, taps, lanes))
    return packed


@helper
def _pack_blocks(weight, packed):
    """``packed[b, t, l] = weight[b * L + l, t]`` for the channels there are.

    ``weight`` is ``(C, T)``, ``packed`` ``(ceil(C / L), T, L)``, both C-contiguous; the
    lanes past the last channel are left as they are. Each block of channels is a run of
    ``T`` "pixels" (:func:`fastconv._kernels.transpose_run`: in-register transposes).
    """
    lanes = vlanes(packed)
    channels, taps = weight.shape
    for b in range(packed.shape[0]):
        transpose_run(weight, b * lanes * taps, taps, taps, min(lanes, channels - b * lanes),
                      packed, b * taps * lanes, lanes)


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
            INDEX_1D, types.int64, types.int64, types.int64)


@cache
def depthwise_signature(dtype: np.dtype) -> tuple:
    """Argument types :func:`depthwise_conv` is compiled for (one signature per dtype).

    The task function's but its task range, then the tasks per chunk and the task's address.
    """
    return depthwise_task_signature(dtype)[:-2] + (types.int64, types.int64)


_call_depthwise_tasks = caller(depthwise_task_signature)


@register_jitable
def depthwise_tasks(out_shape: tuple, lanes: int, row_block: int) -> int:
    """Tasks of :func:`depthwise_conv` writing planes of ``out_shape`` ``(N, C, Q0, Q1, Q2)``.

    One per sample, block of ``lanes`` channels, ``Q0`` plane and block of ``row_block``
    rows.
    """
    blocks = (out_shape[1] + lanes - 1) // lanes
    return out_shape[0] * blocks * out_shape[2] * ((out_shape[3] + row_block - 1) // row_block)


@kernel
def depthwise_conv(src, packed, bias, out, geom, spread, row_block, per, task_at):
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
        zero padding of at least zero; with a spread, that of the spread source.
    spread : ndarray of int64, shape (4,)
        Along each dimension, the source is read as if ``spread - 1`` zeros lay between
        its elements (``(S - 1) * spread + 1`` of them). Ones for a plain convolution; an
        adjoint's strides to compute its input gradient from the output gradient with the
        flipped kernel (:func:`fastconv._plan.spread_adjoint`). Then the layout: 0,
        ``src`` and ``out`` as above; 1, channels-last, ``(N, S0, S1, S2, C)`` and ``(N,
        Q0, Q1, Q2, C)`` (a plain convolution only): each pixel's ``L`` channels are one
        vector load into the tile and one store out, no transposes.
    row_block : int
        Output rows (along ``Q1``) per task.
    per : int
        Consecutive tasks per iteration of the parallel loop (one allocation of the tile
        and buffers each): :func:`fastconv._plan.depthwise_tasks_per_chunk` of
        :func:`depthwise_tasks`.
    task_at : int
        :data:`depthwise_task_address` of the dtype.
    """
    n_tasks = depthwise_tasks(_planes_shape(out.shape, spread), vlanes(out), row_block)
    for chunk in prange((n_tasks + per - 1) // per):
        # the task function, called by address, is compiled once (see _jit.caller)
        _call_depthwise_tasks(task_at, (src, packed, bias, out, geom, spread, row_block,
                                        np.int64(chunk * per),
                                        np.int64(min(n_tasks, (chunk + 1) * per))))


@register_jitable
def _planes_shape(shape: tuple, spread) -> tuple:
    """``(N, C, D0, D1, D2)`` of data of ``shape``.

    ``shape`` is channels-first, or channels-last ``(N, D0, D1, D2, C)`` when ``spread[3]``
    is 1 (:func:`depthwise_conv`).
    """
    if spread[3] == 1:
        return (shape[0], shape[4], shape[1], shape[2], shape[3])
    return shape


@inlined
def _aligned(array):
    """Elements from ``array``'s start to the first vector-aligned address in it."""
    size = vlanes(array) * array.itemsize
    return (size - array.ctypes.data % size) % size // array.itemsize


@inlined
def _tap_offsets(taps0, taps1, taps2, span, width, dilation1, dilation2, lanes):
    """Tile offset of each tap (along ``D0``, then rows, then columns: the weights' order).

    Tap planes are ``span`` rows of ``width`` pixels of ``lanes`` elements apart.
    """
    offsets = np.empty(taps0 * taps1 * taps2, dtype=np.int64)
    for t in range(offsets.size):
        offsets[t] = ((t // (taps1 * taps2) * span + t // taps2 % taps1 * dilation1) * width
                      + t % taps2 * dilation2) * lanes
    return offsets


@inlined
def _zero_pixels(tile, at, count):
    """Write zeros to ``count`` pixels (``L`` lanes each) at ``tile[at:]``."""
    zero = vzero(tile)
    lanes = vlanes(tile)
    for p in range(count):
        vstore(tile, at + p * lanes, zero)


@helper
def _fill_rows(src, src_off, channel_step, valid, pixels, size2, keep, width, col_step, stage,
               tile, at):
    """Copy ``pixels`` consecutive pixels of ``valid`` channels into tile rows at ``tile[at:]``.

    The source pixels ``src[src_off + l * channel_step + p]`` (channel ``l``) are whole rows
    of ``size2`` columns; pixel ``p`` lands in tile row ``p // size2``, column ``(p % size2)
    * col_step`` (rows ``width`` pixels apart; the caller's ``at`` includes the left
    padding) if its source column is below ``keep`` (the columns the tile holds: the last
    ones of a row may be read by no window). Sixteen (``L``) pixels at a time are
    transposed: straight into the tile when they lie in one row and are all kept, else
    into ``stage`` and then stored one vector per pixel (measured: the stores from the
    stage were a quarter of a 5x5 stride-2 layer's forward); lanes past ``valid`` channels
    are zeros.
    """
    lanes = vlanes(tile)
    row, col = 0, 0  # of pixel p0 (no division per pixel)
    for p0 in range(0, pixels, lanes):
        count = min(lanes, pixels - p0)
        if valid == lanes and col + count <= min(size2, keep):
            to = at + (row * width + col * col_step) * lanes
            if count == lanes:
                vtranspose_copy(src, src_off + p0, channel_step, tile, to, col_step * lanes)
            else:
                vtranspose_copy_partial(src, src_off + p0, channel_step, tile, to,
                                        col_step * lanes, count)
            col += count
            if col == size2:
                row, col = row + 1, 0
            continue
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
            if col < keep:
                vstore(tile, at + (row * width + col * col_step) * lanes,
                       vload(stage, j * lanes))
            col += 1
            if col == size2:
                row, col = row + 1, 0


@inlined
def _fill_pixel_rows(src, src_off, pixel_step, valid, rows, size2, keep, width, tile, at):
    """Copy ``rows`` input rows of channels-last pixels into tile rows at ``tile[at:]``.

    Pixel ``p`` of row ``r`` has its ``valid`` channels at ``src[src_off + (r * size2 + p)
    * pixel_step:]``; the first ``keep`` pixels of each row go to tile row ``r`` (``width``
    pixels apart), one vector each, zeros in the lanes past ``valid``.
    """
    lanes = vlanes(tile)
    for r in range(rows):
        row = src_off + r * size2 * pixel_step
        to = at + r * width * lanes
        if valid == lanes:
            for p in range(keep):
                vstore(tile, to + p * lanes, vload(src, row + p * pixel_step))
        else:
            for p in range(keep):
                vstore(tile, to + p * lanes, vload_masked(src, row + p * pixel_step, valid))


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
def _tile_rows(geom, taps1, row_lo, rows):
    """``(stride0, dilation0, pad0, pad2, used, first_row)`` of a tile of output rows.

    The geometry along ``D0`` and the low pad along ``D2``; the tile rows output rows
    ``[row_lo, row_lo + rows)`` read, and the source row (padded coordinates) of the first.
    """
    stride1, dilation1 = geom[1, STRIDE], geom[1, DILATION]
    return (geom[0, STRIDE], geom[0, DILATION], geom[0, PAD_LOW], geom[2, PAD_LOW],
            planar_tile_rows(rows, stride1, taps1, dilation1),
            row_lo * stride1 - geom[1, PAD_LOW])


@helper
def _fill_tile(src, n, c0, valid, channels, size0, size1, size2, geom, spread, taps0, taps1,
               q0, row_lo, rows, span, width, stage, tile):
    """The tile of output rows ``[row_lo, row_lo + rows)`` of plane ``q0``, channels ``c0 +``.

    For each tap along ``D0`` (planes ``span`` rows of ``width`` pixels apart) the input
    rows those output rows read: rows inside the input get its rows (the padded columns
    around them are zeros already, see :func:`_depthwise_tasks`), the others zeros. A
    source spread with zeros (:func:`_fill_spread_tile`) takes its own copy.
    """
    if spread[0] > 1 or spread[1] > 1 or spread[2] > 1:
        _fill_spread_tile(src, n, c0, valid, channels, size0, size1, size2, geom, spread,
                          taps0, taps1, q0, row_lo, rows, span, width, stage, tile)
        return
    lanes = vlanes(tile)
    stride0, dilation0, pad0, pad2, used, first_row = _tile_rows(geom, taps1, row_lo, rows)
    inside_lo = min(used, max(0, -first_row))
    inside_hi = max(inside_lo, min(used, size1 - first_row))
    keep = min(size2, width - pad2)
    for t0 in range(taps0):
        s0 = q0 * stride0 + t0 * dilation0 - pad0
        plane = t0 * span * width * lanes
        if 0 <= s0 < size0:
            _zero_pixels(tile, plane, inside_lo * width)
            at = plane + (inside_lo * width + pad2) * lanes
            if spread[3] == 1:  # channels-last: a pixel's channels are adjacent
                _fill_pixel_rows(src, ((n * size0 + s0) * size1 + first_row + inside_lo)
                                 * size2 * channels + c0, channels, valid,
                                 inside_hi - inside_lo, size2, keep, width, tile, at)
            else:
                _fill_rows(src, ((n * channels + c0) * size0 + s0) * size1 * size2
                           + (first_row + inside_lo) * size2, size0 * size1 * size2, valid,
                           (inside_hi - inside_lo) * size2, size2, keep, width, 1, stage,
                           tile, at)
            _zero_pixels(tile, plane + inside_hi * width * lanes, (used - inside_hi) * width)
        else:
            _zero_pixels(tile, plane, used * width)


@inlined
def _spread_index(position, spread, size):
    """Index of the element at ``position`` of a source spread with ``spread - 1`` zeros.

    Between each two of its ``size`` elements; -1 for a zero (inserted, or outside).
    """
    if position < 0 or position % spread != 0 or position // spread >= size:
        return -1
    return position // spread


@helper
def _fill_spread_tile(src, n, c0, valid, channels, size0, size1, size2, geom, spread, taps0,
                      taps1, q0, row_lo, rows, span, width, stage, tile):
    """:func:`_fill_tile` of a source spread with zeros: ``spread[d] - 1`` between elements.

    The tile is that of the stride-1 convolution of the spread source (an adjoint's output
    gradient, for its input gradient): a source row lands in every ``spread[1]``-th tile
    row, its pixels in every ``spread[2]``-th column. The other rows are written as zeros
    for each task; the columns between a row's pixels are never written (zeros since the
    tile was allocated), nor are the padded columns.
    """
    lanes = vlanes(tile)
    stride0, dilation0, pad0, pad2, used, first_row = _tile_rows(geom, taps1, row_lo, rows)
    keep = min(size2, (width - pad2 + spread[2] - 1) // spread[2])
    for t0 in range(taps0):
        s0 = _spread_index(q0 * stride0 + t0 * dilation0 - pad0, spread[0], size0)
        plane = t0 * span * width * lanes
        for r in range(used):
            s1 = _spread_index(first_row + r, spread[1], size1)
            at = plane + r * width * lanes
            if s0 < 0 or s1 < 0:
                _zero_pixels(tile, at, width)
            else:
                _fill_rows(src, (((n * channels + c0) * size0 + s0) * size1 + s1) * size2,
                           size0 * size1 * size2, valid, size2, size2, keep, width,
                           spread[2], stage, tile, at + pad2 * lanes)


@inlined
def _slide8(tile, packed, w_off, row_at, weight_at, count, taps2, at, acc):
    """:func:`_pixels8` for eight consecutive pixels of a row, unit column stride and dilation.

    Over ``count`` tap rows (along ``D0``, then ``D1``; all of them but those reading zeros
    spread into the source), tap row ``k`` reading the tile at ``at + row_at[k]`` and its
    weights at ``packed[w_off + weight_at[k]:]``. Its eight input vectors slide one column
    further per tap: a tile load and a weight load per eight multiply-adds
    (:func:`_pixels8` loads a vector per multiply-add). The same sums in the same order.
    """
    lanes = vlanes(tile)
    a0, a1, a2, a3, a4, a5, a6, a7 = acc
    for k in range(count):
        x = at + row_at[k]
        x0, x1, x2, x3 = vload(tile, x), vload(tile, x + lanes), vload(tile, x + 2 * lanes), \
            vload(tile, x + 3 * lanes)
        x4, x5, x6, x7 = vload(tile, x + 4 * lanes), vload(tile, x + 5 * lanes), \
            vload(tile, x + 6 * lanes), vload(tile, x + 7 * lanes)
        w_at = w_off + weight_at[k]
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
def _live_tap_rows(geom, spread, taps1, taps2, row_offsets, lanes, q0, row_lo, live,
                   counts):
    """The tap rows (``t = t0 * taps1 + t1``) each class of output rows reads off spread zeros.

    Output row ``row_lo + r`` of plane ``q0`` is in class ``m = r % spread[1]``; its tap
    row ``t`` reads source position ``q0 * stride0 + t0 * dilation0 - pad0`` along ``D0``
    and ``(row_lo + m) * stride1 + t1 * dilation1 - pad1`` along ``D1``, a spread zero
    unless both are multiples of the spread (the padding stays: its zeros are multiplied
    as everywhere else). Class ``m``'s ``counts[m]`` tap rows, in order, have their tile
    offsets (``row_offsets[t]``) at ``live[2 * m * tap_rows:]`` and their weights' offsets
    at ``live[(2 * m + 1) * tap_rows:]`` (``lanes`` weights per tap).
    """
    tap_rows = live.size // (2 * spread[1])
    for m in range(spread[1]):
        count = 0
        for t in range(tap_rows):
            plane = q0 * geom[0, STRIDE] + t // taps1 * geom[0, DILATION] - geom[0, PAD_LOW]
            row = (row_lo + m) * geom[1, STRIDE] + t % taps1 * geom[1, DILATION] \
                - geom[1, PAD_LOW]
            if plane % spread[0] == 0 and row % spread[1] == 0:
                live[2 * m * tap_rows + count] = row_offsets[t]
                live[(2 * m + 1) * tap_rows + count] = t * taps2 * lanes
                count += 1
        counts[m] = count


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


@inlined
def _write_pixels(buf, pixels, valid, out, out_off, pixel_step):
    """Store ``pixels`` pixels of ``L`` lanes at ``buf`` as channels-last output pixels.

    Pixel ``p``'s first ``valid`` lanes go to ``out[out_off + p * pixel_step:]``.
    """
    lanes = vlanes(buf)
    if valid == lanes:
        for p in range(pixels):
            vstore(out, out_off + p * pixel_step, vload(buf, p * lanes))
    else:
        for p in range(pixels):
            vstore_masked(out, out_off + p * pixel_step, vload(buf, p * lanes), valid)


@inlined
def _row_tiles(tile, packed, w_off, live, counts, classes, tap_rows, taps2, rows, cols,
               pixel_row, buf, bias):
    """A block's ``rows`` x ``cols`` output pixels into ``buf`` by :func:`_slide8`.

    Eight consecutive pixels of a row at a time (past the row's end they read the next
    tile row: computed, then overwritten by the next row's, or in the buffer's slack). Row
    ``r`` takes the ``counts[m]`` tap rows of class ``m = r % classes`` (their tile and
    weight offsets at ``live[(2 * m) * tap_rows:]`` and ``live[(2 * m + 1) * tap_rows:]``,
    :func:`_live_tap_rows`).
    """
    lanes = vlanes(tile)
    z = vzero(buf)
    for r in range(rows):
        m = r % classes
        for c in range(0, cols, PIXELS):
            acc = _slide8(tile, packed, w_off, ptr_of(live, 2 * m * tap_rows),
                          ptr_of(live, (2 * m + 1) * tap_rows), counts[m], taps2,
                          r * pixel_row + c * lanes, (z, z, z, z, z, z, z, z))
            _store_pixels(buf, (r * cols + c) * lanes, lanes, acc, bias)


@helper
def _pixel_tiles(tile, packed, w_off, offsets, taps, pixels, cols, pixel_row, pixel_col, buf,
                 bias):
    """A block's ``pixels`` output pixels (rows of ``cols``) into ``buf`` by :func:`_pixels8`.

    The register tile's eight pixels are the next eight of the block, across rows: their
    tile offsets are walked along the rows (past the block's last pixel they repeat it:
    computed, never written out).
    """
    lanes = vlanes(tile)
    z = vzero(buf)
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
        acc = _pixels8(tile, packed, w_off, offsets, taps, (b0, b1, b2, b3, b4, b5, b6, b7),
                       (z, z, z, z, z, z, z, z))
        _store_pixels(buf, p * lanes, lanes, acc, bias)


@inlined
def _task_origin(task, blocks, rows0, n_blocks, channels_last):
    """Sample, channel block, output plane and row block of :func:`_depthwise_tasks`'s task.

    Numbered row block first; on channels-last data, channel block first: consecutive
    tasks read the adjacent channels of the same pixels (their cache lines, their pages).
    """
    if channels_last:
        rest, b = divmod(task, blocks)
        rest, block = divmod(rest, n_blocks)
        n, q0 = divmod(rest, rows0)
    else:
        rest, block = divmod(task, n_blocks)
        rest, q0 = divmod(rest, rows0)
        n, b = divmod(rest, blocks)
    return n, b, q0, block


@helper
def _depthwise_tasks(src, packed, bias, out, geom, spread, row_block, first, last):
    """Tasks ``first`` to ``last - 1`` of :func:`depthwise_conv` (its loop body, compiled once).

    The tile (zeros where no task writes: the padded columns), the staging block and the
    output block are allocated once per call (per chunk of tasks). Zeroing the padded
    columns row by row instead ran 7-14% slower than zeroing the whole tile once.
    """
    lanes = vlanes(out)
    _, channels, rows0, rows1, cols = _planes_shape(out.shape, spread)
    _, _, size0, size1, size2 = _planes_shape(src.shape, spread)
    channels_last = spread[3] == 1
    taps0, taps1, taps2 = packed.shape[1], packed.shape[2], packed.shape[3]
    stride1, dilation1 = geom[1, STRIDE], geom[1, DILATION]
    stride2, dilation2 = geom[2, STRIDE], geom[2, DILATION]
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
    out_channel = rows0 * rows1 * cols
    taps = taps0 * taps1 * taps2
    offsets_array = _tap_offsets(taps0, taps1, taps2, span, width, dilation1, dilation2, lanes)
    offsets = ptr_of(offsets_array, 0)
    # unit column stride and dilation: rows of pixels slide along the taps (_slide8), from
    # the first tap of each tap row
    slides = stride2 == 1 and dilation2 == 1
    tap_rows = taps0 * taps1
    row_offsets_array = _tap_offsets(taps0, taps1, 1, span, width, dilation1, 0, lanes)
    # the tap rows each output row reads, by its class (row modulo the rows' spread): all
    # of them, or, on a spread source, those not reading spread zeros (set per task)
    classes = spread[1]
    live = np.empty(2 * classes * tap_rows, dtype=np.int64)
    counts = np.empty(classes, dtype=np.int64)
    spread_rows = spread[0] > 1 or spread[1] > 1
    _live_tap_rows(geom, spread, taps1, taps2, row_offsets_array, lanes, 0, 0, live, counts)
    pixel_row = stride1 * width * lanes  # an output row further down
    pixel_col = stride2 * lanes  # an output column further right
    for task in range(first, last):
        n, b, q0, block = _task_origin(task, blocks, rows0, n_blocks, channels_last)
        row_lo = block * row_block
        rows = min(rows1, row_lo + row_block) - row_lo
        c0 = b * lanes
        valid = min(lanes, channels - c0)
        _fill_tile(src_p, n, c0, valid, channels, size0, size1, size2, geom, spread, taps0,
                   taps1, q0, row_lo, rows, span, width, stage, tile)
        bias_v = vload(bias, c0)
        if spread_rows:
            _live_tap_rows(geom, spread, taps1, taps2, row_offsets_array, lanes, q0, row_lo,
                           live, counts)
        if slides and taps2 == 3:
            # a constant tap count: the sliding vectors are renamed, not moved, per tap
            _row_tiles(tile, packed, b * taps * lanes, live, counts, classes, tap_rows, 3,
                       rows, cols, pixel_row, buf, bias_v)
        elif slides:
            _row_tiles(tile, packed, b * taps * lanes, live, counts, classes, tap_rows, taps2,
                       rows, cols, pixel_row, buf, bias_v)
        else:
            _pixel_tiles(tile, packed, b * taps * lanes, offsets, taps, rows * cols, cols,
                         pixel_row, pixel_col, buf, bias_v)
        if channels_last:
            _write_pixels(buf, rows * cols, valid, out_p,
                          ((n * rows0 + q0) * rows1 + row_lo) * cols * channels + c0, channels)
        else:
            _write_out(buf, rows * cols, valid, out_p,
                       ((n * channels + c0) * rows0 + q0) * rows1 * cols + row_lo * cols,
                       out_channel)
    keep_alive(tile_array)
    keep_alive(stage_array)
    keep_alive(buf_array)
    keep_alive(offsets_array)
    keep_alive(row_offsets_array)
    keep_alive(live)
    keep_alive(counts)


@cache
def depthwise_weight_task_signature(dtype: np.dtype) -> tuple:
    """Argument types of :func:`_depthwise_weight_task`."""
    return (data_type(dtype, 5, layout="C"), data_type(dtype, 5, layout="C"), INDEX_2D,
            types.int64, types.int64, data_type(dtype, 6, True, "C"),
            data_type(dtype, 3, True, "C"), types.int64)


#: Argument types :func:`depthwise_weight_grad` is compiled for.
depthwise_weight_grad_signature = kernel_signature(depthwise_weight_task_signature)
_call_depthwise_weight_task = caller(depthwise_weight_task_signature)


@kernel
def depthwise_weight_grad(src, grad_out, geom, row_block, channels_last, partial_w, partial_b,
                          task_at):
    """Weight and bias gradients of :func:`depthwise_conv`, a vector lane per channel.

    ``partial_w[k, b, t, l] = sum src[n, c, s(q, t)] * grad_out[n, c, q]`` and
    ``partial_b[k, b, l] = sum grad_out[n, c, q]`` (channel ``c = b * L + l``) over the
    units of chunk ``k``: ``(n, q0, block of row_block rows)`` triples in order, their
    pixels in order, so the sums depend on the shapes only. Each task owns one
    ``(chunk, channel block)``.

    Parameters
    ----------
    src : ndarray, shape (N, C, S0, S1, S2), C-contiguous
        Input of the forward convolution.
    grad_out : ndarray, shape (N, C, Q0, Q1, Q2), C-contiguous
        Gradient of its output.
    geom : ndarray of int64, shape (3, 9)
        Forward geometry records (zero padding of at least zero).
    row_block : int
        Output rows per unit (bounds the tile).
    channels_last : int
        1: ``src`` and ``grad_out`` are channels-last, ``(N, S0, S1, S2, C)`` and ``(N, Q0,
        Q1, Q2, C)``, read a vector of channels per pixel (the same sums); 0: as above.
    partial_w : ndarray, shape (n_chunks, ceil(C / L), T0, T1, T2, L)
        Per-chunk partial sums, each element written once (zeros past ``C``).
    partial_b : ndarray, shape (n_chunks, ceil(C / L), L)
        Per-chunk partial bias gradients.
    task_at : int
        :data:`depthwise_weight_task_address` of the dtype.
    """
    for task in prange(partial_w.shape[0] * partial_w.shape[1]):
        # the task function, called by address, is compiled once (see _jit.caller)
        _call_depthwise_weight_task(task_at, (src, grad_out, geom, row_block, channels_last,
                                              partial_w, partial_b, np.int64(task)))


@inlined
def _read_grad(grad, grad_off, channel_step, valid, pixels, buf):
    """``pixels`` consecutive pixels of ``valid`` gradient planes into ``buf``, channels-last.

    Pixel ``p``, lane ``l`` at ``buf[p * L + l]`` (zeros for lanes past ``valid``).
    """
    lanes = vlanes(buf)
    for p0 in range(0, pixels, lanes):
        count = min(lanes, pixels - p0)
        if valid == lanes and count == lanes:
            vtranspose_copy(grad, grad_off + p0, channel_step, buf, p0 * lanes, lanes)
        elif valid == lanes:
            vtranspose_copy_partial(grad, grad_off + p0, channel_step, buf, p0 * lanes,
                                    lanes, count)
        else:
            for j in range(count):
                for lane in range(lanes):
                    buf[(p0 + j) * lanes + lane] = \
                        grad[grad_off + lane * channel_step + p0 + j] if lane < valid else 0


@inlined
def _read_grad_pixels(grad, grad_off, pixel_step, valid, pixels, buf):
    """:func:`_read_grad` of channels-last gradient pixels ``pixel_step`` apart.

    Pixel ``p``'s ``valid`` channels at ``grad[grad_off + p * pixel_step:]``: one vector each.
    """
    lanes = vlanes(buf)
    if valid == lanes:
        for p in range(pixels):
            vstore(buf, p * lanes, vload(grad, grad_off + p * pixel_step))
    else:
        for p in range(pixels):
            vstore(buf, p * lanes, vload_masked(grad, grad_off + p * pixel_step, valid))


@inlined
def _tap_dots8(tile, buf, rows, cols, pixel_row, pixel_col, offsets, first, taps, acc, at,
               nine):
    """Add the dot products of eight (``nine``: nine) taps to ``acc[at:]`` (``L`` lanes each).

    Taps ``first .. first + 7`` (or ``+ 8``; past ``taps - 1``, the last one again: its sum
    is not kept): ``sum_p buf[p] * tile[base(p) + offsets[t]]`` over the ``rows`` x
    ``cols`` pixels ``p`` of the block, each gradient vector loaded once for the eight
    taps. ``nine`` (a constant) takes a 3x3 filter in one pass: eight taps, then the ninth
    alone, loaded every gradient vector twice and ran 16 multiply-adds for 9.
    """
    lanes = vlanes(tile)
    last = taps - 1
    o0, o1, o2, o3 = offsets[first], offsets[min(first + 1, last)], \
        offsets[min(first + 2, last)], offsets[min(first + 3, last)]
    o4, o5, o6, o7 = offsets[min(first + 4, last)], offsets[min(first + 5, last)], \
        offsets[min(first + 6, last)], offsets[min(first + 7, last)]
    o8 = offsets[min(first + 8, last)]
    a0, a1, a2, a3 = vload(acc, at), vload(acc, at + lanes), vload(acc, at + 2 * lanes), \
        vload(acc, at + 3 * lanes)
    a4, a5, a6, a7 = vload(acc, at + 4 * lanes), vload(acc, at + 5 * lanes), \
        vload(acc, at + 6 * lanes), vload(acc, at + 7 * lanes)
    a8 = vload(acc, at + 8 * lanes)
    for r in range(rows):
        for c in range(cols):
            g = vload(buf, (r * cols + c) * lanes)
            x = r * pixel_row + c * pixel_col
            a0 = vfma(g, vload(tile, x + o0), a0)
            a1 = vfma(g, vload(tile, x + o1), a1)
            a2 = vfma(g, vload(tile, x + o2), a2)
            a3 = vfma(g, vload(tile, x + o3), a3)
            a4 = vfma(g, vload(tile, x + o4), a4)
            a5 = vfma(g, vload(tile, x + o5), a5)
            a6 = vfma(g, vload(tile, x + o6), a6)
            a7 = vfma(g, vload(tile, x + o7), a7)
            if nine:
                a8 = vfma(g, vload(tile, x + o8), a8)
    vstore(acc, at, a0)
    vstore(acc, at + lanes, a1)
    vstore(acc, at + 2 * lanes, a2)
    vstore(acc, at + 3 * lanes, a3)
    vstore(acc, at + 4 * lanes, a4)
    vstore(acc, at + 5 * lanes, a5)
    vstore(acc, at + 6 * lanes, a6)
    vstore(acc, at + 7 * lanes, a7)
    if nine:
        vstore(acc, at + 8 * lanes, a8)


@helper
def _depthwise_weight_task(src, grad_out, geom, row_block, channels_last, partial_w,
                           partial_b, task):
    """Task ``task`` of :func:`depthwise_weight_grad` (its loop body, compiled once)."""
    lanes = vlanes(src)
    n_chunks, blocks = partial_w.shape[0], partial_w.shape[1]
    taps0, taps1, taps2 = partial_w.shape[2], partial_w.shape[3], partial_w.shape[4]
    layout = (1, 1, 1, channels_last)  # _fill_tile's: no spread, and the layout
    batch, channels, rows0, rows1, cols = _planes_shape(grad_out.shape, layout)
    _, _, size0, size1, size2 = _planes_shape(src.shape, layout)
    stride1, dilation1 = geom[1, STRIDE], geom[1, DILATION]
    stride2, dilation2 = geom[2, STRIDE], geom[2, DILATION]
    chunk, b = task // blocks, task % blocks
    c0 = b * lanes
    valid = min(lanes, channels - c0)
    n_row_blocks = (rows1 + row_block - 1) // row_block
    n_units = batch * rows0 * n_row_blocks
    span = planar_tile_rows(min(row_block, rows1), stride1, taps1, dilation1)
    width = tile_width(cols, taps2, stride2, dilation2)
    tile_array = np.zeros((taps0 * span * width + 1) * lanes, dtype=src.dtype)
    tile = ptr_of(tile_array, _aligned(tile_array))
    stage_array = np.empty(lanes * lanes + lanes, dtype=src.dtype)
    stage = ptr_of(stage_array, _aligned(stage_array))
    buf_array = np.empty((min(row_block, rows1) * cols + 1) * lanes, dtype=src.dtype)
    buf = ptr_of(buf_array, _aligned(buf_array))
    taps = taps0 * taps1 * taps2
    groups8 = (taps + PIXELS - 1) // PIXELS
    acc_array = np.zeros((groups8 * PIXELS + 2) * lanes, dtype=src.dtype)
    acc = ptr_of(acc_array, _aligned(acc_array))
    offsets_array = _tap_offsets(taps0, taps1, taps2, span, width, dilation1, dilation2, lanes)
    offsets = ptr_of(offsets_array, 0)
    bias_acc = vzero(src)
    src_p = ptr_of(src, 0)
    grad_p = ptr_of(grad_out, 0)
    for unit in range(chunk * n_units // n_chunks, (chunk + 1) * n_units // n_chunks):
        block = unit % n_row_blocks
        rest = unit // n_row_blocks
        q0 = rest % rows0
        n = rest // rows0
        row_lo = block * row_block
        rows = min(rows1, row_lo + row_block) - row_lo
        _fill_tile(src_p, n, c0, valid, channels, size0, size1, size2, geom, layout, taps0,
                   taps1, q0, row_lo, rows, span, width, stage, tile)
        if channels_last:
            _read_grad_pixels(grad_p, ((n * rows0 + q0) * rows1 + row_lo) * cols * channels
                              + c0, channels, valid, rows * cols, buf)
        else:
            _read_grad(grad_p, ((n * channels + c0) * rows0 + q0) * rows1 * cols
                       + row_lo * cols, rows0 * rows1 * cols, valid, rows * cols, buf)
        if taps == 9:
            _tap_dots8(tile, buf, rows, cols, stride1 * width * lanes, stride2 * lanes,
                       offsets, 0, taps, acc, 0, True)
        else:
            for first in range(0, taps, PIXELS):
                _tap_dots8(tile, buf, rows, cols, stride1 * width * lanes, stride2 * lanes,
                           offsets, first, taps, acc, first * lanes, False)
        for p in range(rows * cols):
            bias_acc = vadd(bias_acc, vload(buf, p * lanes))
    out_w = ptr_of(partial_w, task * taps * lanes)  # partial_w[chunk, b]
    for t in range(taps):
        vstore(out_w, t * lanes, vload(acc, t * lanes))
    vstore(ptr_of(partial_b, task * lanes), 0, bias_acc)
    keep_alive(tile_array)
    keep_alive(stage_array)
    keep_alive(buf_array)
    keep_alive(acc_array)
    keep_alive(offsets_array)


#: ``dtype -> task_at`` of :func:`depthwise_weight_grad` (compiles the task once)
depthwise_weight_task_address = partial(address_of, _depthwise_weight_task,
                                        depthwise_weight_task_signature)


#: ``dtype -> task_at`` of :func:`depthwise_conv` (compiles the task function once)
depthwise_task_address = partial(address_of, _depthwise_tasks, depthwise_task_signature)
