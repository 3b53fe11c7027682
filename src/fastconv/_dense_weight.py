"""Dense weight gradient on explicit SIMD register tiles (one group, zero padding).

For every kernel tap ``t`` the weight gradient is a matrix product over output pixels:
``grad_w[:, :, t] = grad_out^T @ x_t``, where row ``p`` of ``x_t`` is the input pixel that
output pixel ``p`` reads through tap ``t``. For one row of taps ``(t0, t1)`` the reduction
entries ``(t2, c_in)`` are flattened, and for a layer with few entries per tap row (an RGB
stem) the entries ``(t1, t2, c_in)`` of every tap row, so its tiles stay full and each
output-gradient load feeds many of them. A register tile is ``2 * lanes`` output channels
by ``IN_TILE`` entries; per pixel it takes two vector loads of the output gradient,
``IN_TILE`` broadcasts of input values and ``2 * IN_TILE`` fused multiply-adds.

The input and the output gradient are read in place, in any layout (non-negative strides).
A task owns one tap row (or all of them) and one chunk of output rows; it walks its pixels
a span at a time (whole rows when they are short, else ``SPAN`` pixels) and copies, for
each span, the input windows its pixels read into a channels-last buffer (zeros in the
padding; a channels-first input through in-register transposes; wide pixels padded to an
odd number of cache lines) and the output gradient of its output blocks into a contiguous
buffer (rows of a wide layer lie a power of two apart, and such strided reads of two
operands contend for the same cache sets: measured 64 against 95 GFLOP/s per core). The
micro-kernel then reads one base offset per pixel plus each tile's fixed entry offsets,
and runs every (entry tile, output block) pair over the span while its data are in cache.
The tasks of the first tap row also sum the packed gradient for the bias. So the call
copies neither operand whole, and needs no more memory than the partial sums.

The input ``(N, I0, I1, I2, C_in)`` and the output gradient ``(N, Q0, Q1, Q2, C_out)`` are
given as flat arrays with their shapes and element strides. Each element of the partial
results ``(chunks, C_out, C_in, T0, T1, T2)`` and ``(chunks, C_out)`` is one task's
fixed-order sum over its pixels, and the chunks are fixed by the shapes, so results do not
depend on the number of threads.
"""

from __future__ import annotations

from functools import cache, partial

import numpy as np
from numba import prange, types
from numba.extending import register_jitable

from ._jit import address_of, caller, helper, inlined, kernel, kernel_signature
from ._kernels import INDEX_2D, data_type, transpose_run
from ._simd import (
    VECTOR_BITS,
    keep_alive,
    lanes_for,
    prefetch_l2,
    ptr_of,
    vadd,
    vbroadcast_load,
    vfma,
    vlanes,
    vload,
    vload_masked,
    vstore,
)

#: Input channels per register tile (with two vectors of output channels: 12 accumulators,
#: which leaves room for the operands in 16 vector registers).
IN_TILE = 6

#: Output pixels per span at most (whole rows when rows are shorter; longer rows are cut
#: into pieces of this many pixels): a span's data stay in L1 while every (entry tile,
#: output block) pair runs over it. Measured best: 64 with 8-lane vectors (against 128 and
#: 192), 128 with 16-lane ones (AVX-512, twice the flops per cycle: +0-14% over 64 on seven
#: of the eight benchmark layers, -3-6% on the stride-2 one; 256 was slower).
SPAN = 128 if VECTOR_BITS >= 512 else 64

#: Bytes of register-tile accumulators a task keeps (bounds its output blocks). A task
#: reads each span's input once for all its blocks, so more blocks cost fewer input reads,
#: while the accumulators, reloaded for every span, should stay in the core's L2 (measured
#: best: four blocks of a 3x3 256-channel layer, 192 KiB).
ACCUMULATOR_BYTES = 192 * 1024

#: A task's entries cover every tap row ``(t1, t2, i)``, not one tap row ``(t2, i)``, when a
#: tap row has fewer entries than this: the output gradient of a pixel (loaded once per
#: task and span) then feeds more tiles, as for an RGB stem's 21 entries per tap row, and
#: each span's windows and gradient are copied once, not once per tap row. 128 as measured
#: with 8-lane vectors; 256 with 16-lane ones (a 3x3 64-channel layer's 192 entries: +6%,
#: a transposed 4x4 32-channel one's 128: +6%, where copies cost twice as much relative
#: to the arithmetic).
MERGED_ROW_ENTRIES = 256 if VECTOR_BITS >= 512 else 128

#: A task covers every tap plane too when it covers every tap row and all the taps have at
#: most this many entries: each span's output gradient is then packed once for all of them
#: (a 3x3x3 16-channel layer's 432 entries: three packings of 32 channels 128 KiB apart
#: cost more than the arithmetic they feed).
MERGED_PLANE_ENTRIES = 2 * MERGED_ROW_ENTRIES


@register_jitable
def tap_rows_per_task(c_in: int, taps1: int, taps2: int) -> int:
    """Tap rows ``t1`` one task of :func:`dense_weight_grad` covers (all of them, or one).

    Examples
    --------
    >>> tap_rows_per_task(3, 7, 7), tap_rows_per_task(128, 3, 3)
    (7, 1)
    """
    return taps1 if taps2 * c_in < MERGED_ROW_ENTRIES else 1


@register_jitable
def tap_planes_per_task(c_in: int, taps0: int, taps1: int, taps2: int) -> int:
    """Tap planes ``t0`` one task of :func:`dense_weight_grad` covers (all of them, or one).

    Examples
    --------
    >>> tap_planes_per_task(16, 3, 3, 3), tap_planes_per_task(64, 3, 3, 3)
    (3, 1)
    """
    merged = tap_rows_per_task(c_in, taps1, taps2) == taps1
    return taps0 if merged and taps0 * taps1 * taps2 * c_in <= MERGED_PLANE_ENTRIES else 1


@register_jitable
def _entry_offset(entry: int, c_in: int, taps1: int, taps2: int, plane_step: int,
                  row_step: int, tap_step: int) -> int:
    """Element offset of entry ``(t0, t1, t2, i)`` (flattened) from its pixel's first tap.

    ``taps1``: the tap rows of a plane; channels are adjacent.
    """
    per_row = taps2 * c_in
    per_plane = taps1 * per_row
    rest = entry % per_row
    return (entry // per_plane) * plane_step + (entry % per_plane // per_row) * row_step + \
        (rest // c_in) * tap_step + rest % c_in


def out_blocks_per_task(c_out: int, row_entries: int, lanes: int, itemsize: int) -> int:
    """Output blocks (``2 * lanes`` channels each) one task of :func:`dense_weight_grad` covers.

    As few groups of blocks as :data:`ACCUMULATOR_BYTES` of accumulators allow, split as
    evenly as they can be (9 blocks by at most 4 are 3 + 3 + 3, not 4 + 4 + 1: the tasks
    of a call then take about the same time).

    Examples
    --------
    >>> out_blocks_per_task(64, 256, 8, 4)  # 1x1, 256 -> 64: all four blocks
    4
    >>> out_blocks_per_task(256, 768, 8, 4)  # 3x3, 256 -> 256: four of sixteen blocks
    4
    >>> out_blocks_per_task(144, 768, 8, 4)  # 3x3, 256 -> 144: three of nine blocks
    3
    """
    blocks = -(-c_out // (2 * lanes))
    tiles = -(-row_entries // IN_TILE)
    per_block = tiles * IN_TILE * 2 * lanes * itemsize
    most = max(1, min(blocks, ACCUMULATOR_BYTES // per_block))
    return -(-blocks // -(-blocks // most))


def task_split(c_in: int, c_out: int, taps: tuple[int, int, int], lanes: int,
               itemsize: int) -> tuple[int, int]:
    """Output blocks per task and tasks per reduction chunk of :func:`dense_weight_grad`.

    Examples
    --------
    >>> task_split(128, 64, (1, 3, 3), 8, 4)  # 3x3, 128 -> 64: 3 tap rows x 1 group
    (4, 3)
    >>> task_split(3, 64, (1, 7, 7), 8, 4)  # RGB stem: all 7 tap rows in each task
    (4, 1)
    >>> task_split(16, 32, (3, 3, 3), 16, 4)  # 3x3x3, 16 -> 32: all 27 taps in each task
    (1, 1)
    """
    tap_rows = tap_rows_per_task(c_in, taps[1], taps[2])
    tap_planes = tap_planes_per_task(c_in, *taps)
    out_blocks = out_blocks_per_task(c_out, tap_planes * tap_rows * taps[2] * c_in, lanes,
                                     itemsize)
    blocks = -(-c_out // (2 * lanes))
    groups = -(-blocks // out_blocks)
    return out_blocks, (taps[0] // tap_planes) * (taps[1] // tap_rows) * groups


@cache
def weight_task_signature(dtype: np.dtype) -> tuple:
    """Argument types of :func:`_weight_task`: the data, tables and split, then the task."""
    return (data_type(dtype, 1, layout="C"), INDEX_2D, data_type(dtype, 1, layout="C"),
            INDEX_2D, INDEX_2D,
            data_type(dtype, 6, True, "C"), data_type(dtype, 2, True, "C"), types.int64,
            types.int64)


#: Argument types :func:`dense_weight_grad` is compiled for (one signature per dtype).
dense_weight_grad_signature = kernel_signature(weight_task_signature)
_call_weight_task = caller(weight_task_signature)


@inlined
def _tile_span(src, x_pixels, pixels, entries, grad, acc):
    """Add one span of ``pixels`` output pixels to a tile kept in ``acc``.

    The tile (12 vectors) is ``2 * lanes`` output channels by ``IN_TILE`` input entries.
    Pixel ``p`` reads its entries at ``src[x_pixels[p] + entries[k]]`` (``k < IN_TILE``:
    one base offset per pixel, whatever row it is in, and fixed offsets) and its output
    gradient from the packed span ``grad``, ``2 * lanes`` elements per pixel (contiguous,
    so its cache lines never compete with the input's for the same cache sets, as pixels
    a power of two apart do). One loop over the whole span: a loop per row paid its
    set-up (a fifth of the time on 14- to 56-pixel rows) once per row.
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
    g = 0
    for p in range(pixels):
        x = x_pixels[p]
        g0 = vload(grad, g)
        g1 = vload(grad, g + lanes)
        g += 2 * lanes
        v = vbroadcast_load(src, x + e0)
        a00 = vfma(v, g0, a00)
        a01 = vfma(v, g1, a01)
        v = vbroadcast_load(src, x + e1)
        a10 = vfma(v, g0, a10)
        a11 = vfma(v, g1, a11)
        v = vbroadcast_load(src, x + e2)
        a20 = vfma(v, g0, a20)
        a21 = vfma(v, g1, a21)
        v = vbroadcast_load(src, x + e3)
        a30 = vfma(v, g0, a30)
        a31 = vfma(v, g1, a31)
        v = vbroadcast_load(src, x + e4)
        a40 = vfma(v, g0, a40)
        a41 = vfma(v, g1, a41)
        v = vbroadcast_load(src, x + e5)
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
def dense_weight_grad(src, src_layout, grad, grad_layout, steps, partial, partial_bias,
                      out_blocks, task_at):
    """Weight (and bias) gradient of a one-group, zero-padded convolution.

    ``partial[chunk, j, i, t0, t1, t2] = sum grad[n, q0, q1, q2, j] *
    x[n, q0*s0 + t0*d0 - p0, q1*s1 + t1*d1 - p1, q2*s2 + t2*d2 - p2, i]`` over the output
    rows ``(n, q0, q1)`` of ``chunk`` (a fixed split) and all ``q2``, in pixel order, where
    ``x`` is the input read as zero outside its extent.

    Parameters
    ----------
    src : ndarray, 1-D
        Memory of the input ``(N, I0, I1, I2, C_in)`` (see `src_layout`) from its element
        ``(0, 0, 0, 0, 0)`` on, in any layout.
    src_layout : ndarray of int64, shape (2, 5)
        Shape (row 0) and element strides (row 1, non-negative) of the input.
    grad : ndarray, 1-D
        Memory of the gradient of the output, ``(N, Q0, Q1, Q2, C_out)``, any layout.
    grad_layout : ndarray of int64, shape (2, 5)
        Its shape and element strides (non-negative).
    steps : ndarray of int64, shape (3, 3)
        Stride, dilation and low zero padding of each dimension.
    partial : ndarray, shape (chunks, C_out, C_in, T0, T1, T2), C-contiguous
        Written once per element (in the layout of the weights, so the sum over chunks is
        the gradient itself, with no transposing copy).
    partial_bias : ndarray, shape (chunks, C_out) or (chunks, 0), C-contiguous
        ``partial_bias[chunk, j] = sum grad[n, q0, q1, q2, j]`` over the same pixels, in
        pixel order, written by the tasks of the first tap row from the output gradient
        they pack anyway; with no columns, no bias gradient is computed.
    out_blocks : int
        Blocks of ``2 * lanes`` output channels per task (their accumulators stay in
        cache while a span's input is reused for all of them).
    task_at : int
        :data:`weight_task_address` of the dtype.
    """
    n_chunks, c_out, c_in, taps0, taps1, taps2 = partial.shape
    out_tile = 2 * vlanes(src)
    n_out = (c_out + out_tile - 1) // out_tile
    n_groups = (n_out + out_blocks - 1) // out_blocks
    rows = taps1 // tap_rows_per_task(c_in, taps1, taps2)
    planes = taps0 // tap_planes_per_task(c_in, taps0, taps1, taps2)
    for task in prange(n_chunks * planes * rows * n_groups):
        # the task function, called by address, is compiled once (see _jit.caller)
        _call_weight_task(task_at, (src, src_layout, grad, grad_layout, steps, partial,
                                    partial_bias, out_blocks, np.int64(task)))


@register_jitable
def task_work(c_in: int, taps: tuple[int, int, int], cols: int, steps1: tuple[int, int],
              steps2: tuple[int, int], lanes: int, blocks: int) -> tuple[int, int, int, int]:
    """Elements of a :func:`dense_weight_grad` task's work arrays.

    The span's input windows (of all its tap planes, :func:`plane_window` elements each),
    the entry offsets (int64), the span's output gradient and the accumulators of
    ``blocks`` output blocks, for an output row of ``cols`` pixels with ``(stride,
    dilation)`` ``steps1`` along the rows and ``steps2`` along the columns (the task's
    pixel positions, 2 * SPAN int64, and bias sums come on top).

    Examples
    --------
    >>> task_work(32, (1, 4, 4), 28, (2, 1), (2, 1), 16, 2)  # transposed 4x4: weight grad
    (29696, 516, 8192, 33024)
    """
    out_tile = 2 * lanes
    planes = tap_planes_per_task(c_in, *taps)
    merged = tap_rows_per_task(c_in, taps[1], taps[2])
    n_entries = -(-planes * merged * taps[2] * c_in // IN_TILE) * IN_TILE
    window = planes * plane_window(c_in, merged, taps[2], cols, steps1, steps2, out_tile)
    return window, n_entries, blocks * SPAN * out_tile, blocks * n_entries * out_tile


@register_jitable
def plane_window(c_in: int, merged: int, taps2: int, cols: int, steps1: tuple[int, int],
                 steps2: tuple[int, int], out_tile: int) -> int:
    """Elements of a span's input windows of one tap plane (see :func:`task_work`).

    At most ``span_rows`` runs of one row each, of :func:`window_rows` rows of ``width``
    pixels of :func:`padded_channels` elements.
    """
    width = (min(cols, SPAN) - 1) * steps2[0] + (taps2 - 1) * steps2[1] + 1
    span_rows = SPAN // cols if cols <= SPAN else 2
    return span_rows * window_rows(1, merged, steps1[0], steps1[1]) * width * \
        padded_channels(c_in, out_tile)


@register_jitable
def window_rows(length: int, merged: int, stride1: int, dilation1: int) -> int:
    """Input rows a run of ``length`` adjacent output rows reads with ``merged`` tap rows.

    Row ``a * stride1 + u * dilation1`` for output row ``a`` and tap row ``u`` (from the
    run's first): the windows' rows, each copied once for all the output rows reading it.

    Examples
    --------
    >>> window_rows(2, 3, 1, 1), window_rows(1, 3, 1, 2), window_rows(4, 1, 1, 1)
    (4, 5, 4)
    """
    return (length - 1) * stride1 + (merged - 1) * dilation1 + 1


def task_scratch_bytes(c_in: int, c_out: int, taps: tuple[int, int, int], cols: int,
                       steps1: tuple[int, int], stride2: int, dilation2: int,
                       dtype: np.dtype) -> int:
    """Bytes one running task of :func:`dense_weight_grad` allocates (its work arrays).

    ``steps1``: stride and dilation along the rows.
    """
    lanes = lanes_for(dtype)
    out_blocks, _ = task_split(c_in, c_out, taps, lanes, dtype.itemsize)
    window, entries, grad, acc = task_work(c_in, taps, cols, steps1, (stride2, dilation2),
                                           lanes, out_blocks)
    return ((window + grad + acc + out_blocks * 2 * lanes) * dtype.itemsize
            + (entries + 2 * SPAN) * 8)


@register_jitable
def padded_channels(c_in: int, line: int) -> int:
    """Channel stride of a packed input window (``c_in``, or more when it is wide).

    A pixel wider than a ``line``-element cache line is padded to an odd number of lines:
    pixels a power of two apart compete for the same cache sets.

    Examples
    --------
    >>> padded_channels(3, 16), padded_channels(16, 16), padded_channels(128, 16)
    (3, 16, 144)
    >>> padded_channels(100, 16)
    112
    """
    if c_in <= line:
        return c_in
    padded = (c_in + line - 1) // line * line
    return padded + line if (padded // line) % 2 == 0 else padded


@helper
def _weight_task(src, src_layout, grad, grad_layout, steps, partial, partial_bias, out_blocks,
                 task):
    """Task ``task`` of :func:`dense_weight_grad` (a chunk, tap plane(s) and row(s), blocks)."""
    n_chunks, c_out, c_in, taps0, taps1, taps2 = partial.shape
    rows0, rows1, cols = grad_layout[0, 1], grad_layout[0, 2], grad_layout[0, 3]
    merged = tap_rows_per_task(c_in, taps1, taps2)
    planes = tap_planes_per_task(c_in, taps0, taps1, taps2)
    row_entries = planes * merged * taps2 * c_in
    lanes = vlanes(src)
    out_tile = 2 * lanes
    tile_size = IN_TILE * out_tile
    n_out = (c_out + out_tile - 1) // out_tile
    n_groups = (n_out + out_blocks - 1) // out_blocks
    n_rows = grad_layout[0, 0] * rows0 * rows1
    group = task % n_groups
    rest = task // n_groups
    t1 = rest % (taps1 // merged)
    rest //= taps1 // merged
    t0 = rest % (taps0 // planes) * planes
    chunk = rest // (taps0 // planes)
    ob_lo = group * out_blocks
    ob_hi = min(n_out, ob_lo + out_blocks)
    # each span's input windows are copied, zero-padded, into a channels-last buffer of
    # rows of `width` pixels of `c_pad`, a part of `plane_size` elements per tap plane: a
    # run of whole output rows of one plane (a single piece of a row otherwise) takes the
    # rows from its first window's on, one per input row its windows read, in order (tap
    # row u of run row a is row a * s1 + u * d1)
    c_pad = padded_channels(c_in, out_tile)
    width = (min(cols, SPAN) - 1) * steps[2, 0] + (taps2 - 1) * steps[2, 1] + 1
    row_stride = width * c_pad
    # runs grow while their rows overlap or abut (they never take more rows than pieces do)
    runs_grow = steps[1, 0] <= window_rows(1, merged, 1, steps[1, 1])
    # a span is whole rows when they are shorter than SPAN (windows are then copied once)
    span = cols * (SPAN // cols) if cols <= SPAN else SPAN
    steps1, steps2 = (steps[1, 0], steps[1, 1]), (steps[2, 0], steps[2, 1])
    window_size, n_entries, grad_size, acc_size = task_work(
        c_in, (taps0, taps1, taps2), cols, steps1, steps2, lanes, ob_hi - ob_lo)
    plane_size = plane_window(c_in, merged, taps2, cols, steps1, steps2, out_tile)
    n_tiles = n_entries // IN_TILE
    window_array = np.empty(window_size, dtype=partial.dtype)
    window = ptr_of(window_array, 0)
    # offset of each entry (u, t2, i) of each tile from its pixel's first tap (entries past
    # the last one read the last one again: their sums are never stored)
    entries_array = np.empty(n_entries, dtype=np.int64)
    for e in range(n_entries):
        entries_array[e] = _entry_offset(min(e, row_entries - 1), c_in, merged, taps2,
                                         plane_size, steps[1, 1] * row_stride,
                                         steps[2, 1] * c_pad)
    grad_array = np.empty(grad_size, dtype=partial.dtype)
    acc_array = np.zeros(acc_size, dtype=partial.dtype)
    pixel_array = np.empty(2 * SPAN, dtype=np.int64)
    x_pixels = ptr_of(pixel_array, 0)
    g_pixels = ptr_of(pixel_array, SPAN)
    # the tasks of the first tap row also sum the output gradient for the bias
    sums_bias = partial_bias.shape[1] > 0 and t0 == 0 and t1 == 0
    bias_array = np.zeros((ob_hi - ob_lo) * out_tile, dtype=partial.dtype)
    # the chunk's pixels in order, a span at a time
    pixel_lo = (chunk * n_rows // n_chunks) * cols
    pixel_hi = ((chunk + 1) * n_rows // n_chunks) * cols
    for first in range(pixel_lo, pixel_hi, span):
        pixels = min(span, pixel_hi - first)
        row, col = first // cols, first % cols
        # the run of output rows being gathered: its first row (n, q0, q1), piece start and
        # length, rows so far and where its window rows start
        run_n, run_q0, run_q1, run_start, run_count, run_rows, run_at = 0, 0, 0, 0, 0, 0, 0
        x_row = 0
        g_row = 0
        for p in range(pixels):
            if p == 0 or col == cols:
                if col == cols:
                    row += 1
                    col = 0
                n, q0, q1 = _output_row(row, rows0, rows1)
                count = min(cols - col, pixels - p)
                if (runs_grow and run_rows > 0 and count == cols and run_count == cols
                        and n == run_n and q0 == run_q0 and q1 == run_q1 + run_rows):
                    run_rows += 1
                else:
                    if run_rows > 0:
                        _pack_run(src, src_layout, steps, run_n, run_q0, run_q1, run_rows,
                                  t0, planes, plane_size, t1, merged, run_start, run_count,
                                  taps2, c_pad, width, ptr_of(window, run_at * row_stride))
                        run_at += window_rows(run_rows, merged, steps[1, 0], steps[1, 1])
                    run_n, run_q0, run_q1, run_start, run_count, run_rows = \
                        n, q0, q1, col, count, 1
                x_row = (run_at + (run_rows - 1) * steps[1, 0]) * row_stride - \
                    run_start * steps[2, 0] * c_pad
                g_row = n * grad_layout[1, 0] + q0 * grad_layout[1, 1] + q1 * grad_layout[1, 2]
            x_pixels[p] = x_row + col * steps[2, 0] * c_pad
            g_pixels[p] = g_row + col * grad_layout[1, 3]
            col += 1
        _pack_run(src, src_layout, steps, run_n, run_q0, run_q1, run_rows, t0, planes,
                  plane_size, t1, merged, run_start, run_count, taps2, c_pad, width,
                  ptr_of(window, run_at * row_stride))
        _pack_grad(grad, g_pixels, pixels, c_out, grad_layout[1, 4], ob_lo, ob_hi, grad_array)
        if sums_bias:
            _sum_packed(grad_array, pixels, bias_array)
        # the next span's operands are fetched into L2 while this span's products run
        _prefetch_span(src, src_layout, grad, grad_layout, steps, first + pixels,
                       min(span, pixel_hi - first - pixels), t0, planes, t1, merged, taps2,
                       ob_lo * out_tile, min(c_out, ob_hi * out_tile))
        for tile in range(n_tiles):
            for ob in range(ob_hi - ob_lo):
                _tile_span(window, x_pixels, pixels, ptr_of(entries_array, tile * IN_TILE),
                           ptr_of(grad_array, ob * pixels * out_tile),
                           ptr_of(acc_array, (ob * n_tiles + tile) * tile_size))
    # entry (tap t of this task's `run`, input channel i) of lane `lane` goes to weight
    # (output channel, i, first tap + t): a weight row at a time, each input channel's taps
    # adjacent, when those runs are at least a vector long (a store per element, not a
    # scatter of `2 * lanes` elements a weight row apart, which on a 4x4 32-channel layer's
    # rows 2 KiB apart fought over two cache sets: -6%); shorter runs (one tap row of a 3x3
    # filter) a lane after the other, reading the accumulators in order rather than
    # gathering them 16 KiB apart (+2-2.6% on the 3x3 layers' weight gradients)
    taps = taps0 * taps1 * taps2
    lane_step = c_in * taps
    run = planes * merged * taps2
    first_tap = (t0 * taps1 + t1) * taps2
    entry_step = c_in * out_tile
    sums = ptr_of(partial, chunk * c_out * lane_step + first_tap)
    acc = ptr_of(acc_array, 0)
    for ob in range(ob_lo, ob_hi):
        co = ob * out_tile
        block = (ob - ob_lo) * n_tiles * tile_size
        live = min(out_tile, c_out - co)
        if run >= lanes:
            for lane in range(live):
                for i in range(c_in):
                    source = block + i * out_tile + lane
                    dest = (co + lane) * lane_step + i * taps
                    for t in range(run):
                        sums[dest + t] = acc[source + t * entry_step]
            continue
        for i in range(c_in):
            for t in range(run):
                source = block + t * entry_step + i * out_tile
                dest = co * lane_step + i * taps + t
                for lane in range(live):
                    sums[dest + lane * lane_step] = acc[source + lane]
    if sums_bias:
        for co in range(ob_lo * out_tile, min(c_out, ob_hi * out_tile)):
            partial_bias[chunk, co] = bias_array[co - ob_lo * out_tile]
    keep_alive(window_array)
    keep_alive(acc_array)
    keep_alive(entries_array)
    keep_alive(grad_array)
    keep_alive(pixel_array)


#: ``dtype -> task_at`` of :func:`dense_weight_grad` (compiles the task once)
weight_task_address = partial(address_of, _weight_task, weight_task_signature)


@helper
def _pack_run(src, src_layout, steps, n, q0, q1, length, t0, planes, plane_size, t1, merged,
              start, count, taps2, c_pad, width, dest):
    """:func:`_pack_rows` of tap planes ``t0 .. t0 + planes - 1``, ``plane_size`` apart."""
    for v in range(planes):
        _pack_rows(src, src_layout, steps, n, q0, q1, length, t0 + v, t1, merged, start,
                   count, taps2, c_pad, width, ptr_of(dest, v * plane_size))


@inlined
def _pack_rows(src, src_layout, steps, n, q0, q1, length, t0, t1, merged, start, count, taps2,
               c_pad, width, dest):
    """Copy the input windows of a run of output rows into ``dest``, each input row once.

    The run: ``length`` output rows ``(n, q0, q1 + a)`` from column ``start`` on for
    ``count`` pixels (whole rows when ``length > 1``), with tap rows ``t1 .. t1 + merged -
    1``. Row ``a * s1 + u * d1`` of ``dest`` (``width * c_pad`` elements each; see
    :func:`window_rows`) holds the input pixels tap row ``u`` of output row ``a`` reads,
    ``c_pad`` elements apart, channels contiguous, zeros outside the input; rows no window
    reads are left as they are.
    """
    sizes0, sizes1, sizes2, c_in = src_layout[0, 1], src_layout[0, 2], src_layout[0, 3], \
        src_layout[0, 4]
    stride_c = src_layout[1, 4]
    stride1, dilation1 = steps[1, 0], steps[1, 1]
    i0 = q0 * steps[0, 0] + t0 * steps[0, 1] - steps[0, 2]
    i1_first = q1 * stride1 + t1 * dilation1 - steps[1, 2]
    # the input columns [lo, hi) of the window lie inside the input; the rest are zeros
    first, used, lo, hi = _window_columns(start, count, taps2, steps, sizes2)
    stride2 = src_layout[1, 3]
    for r in range(window_rows(length, merged, stride1, dilation1)):
        if not _row_read(r, length, merged, stride1, dilation1):
            continue
        i1 = i1_first + r
        at = r * width * c_pad
        # a row outside the input is all zeros: no column of it lies inside
        inside = 0 <= i0 < sizes0 and 0 <= i1 < sizes1
        row_lo, row_hi = (lo, hi) if inside else (used, used)
        for d in range(at, at + row_lo * c_pad):
            dest[d] = 0.0
        for d in range(at + row_hi * c_pad, at + used * c_pad):
            dest[d] = 0.0
        if inside:
            base = n * src_layout[1, 0] + i0 * src_layout[1, 1] + i1 * src_layout[1, 2] + \
                (first + lo) * stride2
            _copy_window(src, base, hi - lo, stride2, stride_c, c_in, dest, at + lo * c_pad,
                         c_pad)


@register_jitable
def _row_read(r: int, length: int, merged: int, stride1: int, dilation1: int) -> bool:
    """Whether window row ``r`` is ``a * stride1 + u * dilation1`` for a run row and tap row.

    Examples
    --------
    >>> [_row_read(r, 1, 3, 1, 2) for r in range(5)]  # one row, tap rows 2 apart
    [True, False, True, False, True]
    """
    for u in range(merged):
        a = r - u * dilation1
        if 0 <= a < length * stride1 and a % stride1 == 0:
            return True
    return False


@register_jitable
def _output_row(row: int, rows0: int, rows1: int) -> tuple[int, int, int]:
    """Sample and output rows ``(n, q0, q1)`` of flat output row ``row``.

    Examples
    --------
    >>> _output_row(7, 2, 3)  # sample 1, plane 0, row 1
    (1, 0, 1)
    """
    return row // (rows1 * rows0), (row // rows1) % rows0, row % rows1


@register_jitable
def _window_columns(start: int, count: int, taps2: int, steps, sizes2: int
                    ) -> tuple[int, int, int, int]:
    """The input columns output columns ``[start, start + count)`` read along the last axis.

    ``(first, used, lo, hi)``: the window starts at input column ``first`` (negative in
    the low padding) and spans ``used`` columns, of which ``[lo, hi)`` (from ``first``) lie
    inside the input's ``sizes2`` columns.

    Examples
    --------
    >>> import numpy as np
    >>> steps = np.array([[1, 1, 1], [1, 1, 1], [2, 1, 1]])  # stride 2, padding 1
    >>> [int(v) for v in _window_columns(0, 4, 3, steps, 8)]  # 4 columns of 8, 3 taps
    [-1, 9, 1, 9]
    """
    first = start * steps[2, 0] - steps[2, 2]
    used = (count - 1) * steps[2, 0] + (taps2 - 1) * steps[2, 1] + 1
    lo = min(used, max(0, -first))
    return first, used, lo, max(lo, min(used, sizes2 - first))


@helper
def _prefetch_span(src, src_layout, grad, grad_layout, steps, first, pixels, t0, planes, t1,
                   merged, taps2, co_lo, co_hi):
    """Prefetch into L2 what :func:`_weight_task` packs for the span of ``pixels`` at ``first``.

    The input windows of tap planes ``t0 .. t0 + planes - 1`` and rows ``t1 .. t1 + merged
    - 1`` (their columns inside the input)
    and the output gradient's channels ``[co_lo, co_hi)``, row piece by row piece; nothing
    when ``pixels <= 0``. Channels-first data are rows of channels far apart, each one a
    few cache lines that the core would otherwise wait for one after another.
    """
    for v in range(planes):
        _prefetch_windows(src, src_layout, grad_layout, steps, first, pixels, t0 + v, t1,
                          merged, taps2)
    rows0, rows1, cols = grad_layout[0, 1], grad_layout[0, 2], grad_layout[0, 3]
    p = 0
    while p < pixels:
        row, col = (first + p) // cols, (first + p) % cols
        count = min(cols - col, pixels - p)
        n, q0, q1 = _output_row(row, rows0, rows1)
        base = n * grad_layout[1, 0] + q0 * grad_layout[1, 1] + q1 * grad_layout[1, 2]
        _prefetch_block(grad, base, col, col + count, grad_layout[1, 3], co_lo, co_hi,
                        grad_layout[1, 4])
        p += count


@helper
def _prefetch_windows(src, src_layout, grad_layout, steps, first, pixels, t0, t1, merged,
                      taps2):
    """Prefetch into L2 the input windows of tap plane ``t0`` of :func:`_prefetch_span`."""
    sizes0, sizes1, sizes2 = src_layout[0, 1], src_layout[0, 2], src_layout[0, 3]
    rows0, rows1, cols = grad_layout[0, 1], grad_layout[0, 2], grad_layout[0, 3]
    p = 0
    plane = -1  # (sample, input plane) of the row piece before
    last = -1  # the last input row fetched in that plane, while rows are skipped
    while p < pixels:
        row, col = (first + p) // cols, (first + p) % cols
        count = min(cols - col, pixels - p)
        n, q0, q1 = _output_row(row, rows0, rows1)
        i0 = q0 * steps[0, 0] + t0 * steps[0, 1] - steps[0, 2]
        # whole rows of one plane with undilated tap rows: each piece's input rows are a
        # run, and those the pieces before fetched are skipped
        skips = count == cols and steps[1, 1] == 1
        if not skips or n * sizes0 + i0 != plane:
            plane = n * sizes0 + i0
            last = -1
        left, _, lo, hi = _window_columns(col, count, taps2, steps, sizes2)
        if 0 <= i0 < sizes0 and lo < hi:
            for u in range(merged):
                i1 = q1 * steps[1, 0] + (t1 + u) * steps[1, 1] - steps[1, 2]
                if max(0, last + 1) <= i1 < sizes1:
                    if skips:
                        last = i1
                    base = n * src_layout[1, 0] + i0 * src_layout[1, 1] + i1 * src_layout[1, 2]
                    _prefetch_block(src, base, left + lo, left + hi, src_layout[1, 3], 0,
                                    src_layout[0, 4], src_layout[1, 4])
        p += count


@inlined
def _prefetch_block(mem, base, lo, hi, pixel_step, c_lo, c_hi, channel_step):
    """Prefetch into L2 pixels ``[lo, hi)`` x channels ``[c_lo, c_hi)`` of a row at ``base``.

    Channels-last rows are one run from the first element to the last; channels-first ones
    a run per channel; other layouts are not prefetched.
    """
    if channel_step == 1:
        _prefetch_run(mem, base + lo * pixel_step + c_lo, base + (hi - 1) * pixel_step + c_hi)
    elif pixel_step == 1:
        for c in range(c_lo, c_hi):
            _prefetch_run(mem, base + c * channel_step + lo, base + c * channel_step + hi)


@inlined
def _prefetch_run(mem, start, stop):
    """Prefetch into L2 every cache line of ``mem[start:stop]`` (``start < stop``)."""
    line = vlanes(mem)  # elements a step: a cache line with 512-bit vectors, half of one below
    for k in range(start, stop, line):
        prefetch_l2(mem, k)
    prefetch_l2(mem, stop - 1)


@inlined
def _copy_window(src, base, pixels, stride2, stride_c, c_in, dest, at, c_pad):
    """``dest[at + w * c_pad + c] = src[base + w * stride2 + c * stride_c]``, vectorised.

    Channels-last rows (``stride_c == 1``) are copied a vector at a time; channels-first
    ones (``stride2 == 1``) by :func:`fastconv._kernels.transpose_run` (in-register
    transposes, short edges included).
    """
    lanes = vlanes(dest)
    src_p, dest_p = ptr_of(src, 0), ptr_of(dest, 0)  # no negative-index checks per element
    if stride_c == 1:
        full = c_in - c_in % lanes
        for w in range(pixels):
            o = base + w * stride2
            d = at + w * c_pad
            for c in range(0, full, lanes):
                vstore(dest_p, d + c, vload(src_p, o + c))
            for c in range(full, c_in):
                dest_p[d + c] = src_p[o + c]
    elif stride2 == 1:
        transpose_run(src_p, base, stride_c, pixels, c_in, dest_p, at, c_pad)
    else:
        for c in range(c_in):
            o = base + c * stride_c
            for w in range(pixels):
                dest_p[at + w * c_pad + c] = src_p[o + w * stride2]


@helper
def _pack_grad(grad, g_pixels, pixels, c_out, stride_c, ob_lo, ob_hi, packed):
    """Copy a span's output gradient of blocks ``[ob_lo, ob_hi)`` into ``packed``.

    Span pixel ``p``'s channels start at ``grad[g_pixels[p]]``, ``stride_c`` apart.
    ``packed[ob - ob_lo, p, :]`` holds the ``2 * lanes`` channels of block ``ob`` at that
    pixel; channels past ``c_out`` are zeros (their products are never stored).
    """
    lanes = vlanes(packed)
    out_tile = 2 * lanes
    for ob in range(ob_lo, ob_hi):
        co = ob * out_tile
        valid = min(out_tile, c_out - co)
        dest = (ob - ob_lo) * pixels * out_tile
        if stride_c == 1 and valid == out_tile:
            for p in range(pixels):
                g = g_pixels[p] + co
                vstore(packed, dest + p * out_tile, vload(grad, g))
                vstore(packed, dest + p * out_tile + lanes, vload(grad, g + lanes))
        elif stride_c == 1:
            for p in range(pixels):
                g = g_pixels[p] + co
                vstore(packed, dest + p * out_tile, vload_masked(grad, g, valid))
                vstore(packed, dest + p * out_tile + lanes,
                       vload_masked(grad, g + lanes, valid - lanes))
        else:  # channels-first: each run of adjacent pixels as an input window is copied
            p0 = 0
            while p0 < pixels:
                p1 = p0 + 1
                while p1 < pixels and g_pixels[p1] == g_pixels[p1 - 1] + 1:
                    p1 += 1
                _copy_window(grad, g_pixels[p0] + co * stride_c, p1 - p0, 1, stride_c, valid,
                             packed, dest + p0 * out_tile, out_tile)
                p0 = p1
            for lane in range(valid, out_tile):
                for p in range(pixels):
                    packed[dest + p * out_tile + lane] = 0.0


@inlined
def _sum_packed(packed, pixels, sums):
    """Add the pixels of a span packed by :func:`_pack_grad` to ``sums``.

    ``packed`` holds the ``pixels`` pixels of each output block after those of the block
    before; block ``b`` adds into ``sums[b * 2 * lanes : (b + 1) * 2 * lanes]``.
    """
    lanes = vlanes(packed)
    out_tile = 2 * lanes
    blocks = sums.shape[0] // out_tile
    for b in range(blocks):
        s0 = vload(sums, b * out_tile)
        s1 = vload(sums, b * out_tile + lanes)
        at = b * pixels * out_tile
        for _ in range(pixels):
            s0 = vadd(s0, vload(packed, at))
            s1 = vadd(s1, vload(packed, at + lanes))
            at += out_tile
        vstore(sums, b * out_tile, s0)
        vstore(sums, b * out_tile + lanes, s1)
