"""Compiled kernels: parallel ``@njit`` loops, private, no validation.

All kernels run the canonical 3-D, channels-last problem. Arrays arrive as views in
``(N, D0, D1, D2, C)`` order whatever the caller's layout (channels-first data is a
strided view, never a copy), and weights arrive packed by the API layer. Every output
element is computed by exactly one parallel task, in a fixed summation order, so results
do not depend on the number of threads and no two threads ever write the same element.

See :mod:`fastconv._plan` for the geometry records these kernels evaluate.
"""

from __future__ import annotations

from functools import cache, partial

import numpy as np
from numba import from_dtype, prange, types

from ._jit import address_of, caller, helper, kernel, kernel_signature, serial_twin
from ._plan import ADJOINT, DILATION, IN_SIZE, MODE, OUT_SIZE, PAD_HIGH, PAD_LOW, STRIDE, TAPS
from ._plan import SERIAL_MAX_WORK as _SERIAL_MAX_WORK
from ._simd import ptr_of, vlanes, vtranspose_copy, vtranspose_copy_partial

_ZEROS, _REFLECT, _REPLICATE, _CIRCULAR = 0, 1, 2, 3


def data_type(dtype: np.dtype, ndim: int, mutable: bool = False, layout: str = "A") -> types.Array:
    """Numba type of a data array: any strides, any alignment; read-only unless ``mutable``."""
    return types.Array(from_dtype(dtype), ndim, layout, readonly=not mutable, aligned=False)


INDEX_1D = types.Array(types.int64, 1, "C", readonly=True)
#: Numba type of the int64 tables (geometry records, steps) every kernel reads.
INDEX_2D = types.Array(types.int64, 2, "C", readonly=True)


@cache
def gather_task_signature(dtype: np.dtype) -> tuple:
    """Argument types of :func:`_gather_conv_task`: the data, tables and blocks, then the task."""
    return (data_type(dtype, 5), data_type(dtype, 6, layout="C"), data_type(dtype, 1),
            data_type(dtype, 5, True), INDEX_2D, INDEX_1D, types.int64, types.int64,
            types.int64)


#: Argument types :func:`gather_conv` is compiled for (one signature per dtype).
gather_signature = kernel_signature(gather_task_signature)


@cache
def weight_grad_task_signature(dtype: np.dtype) -> tuple:
    """Argument types of :func:`_weight_grad_task`."""
    return (data_type(dtype, 5), data_type(dtype, 5, layout="C"), INDEX_2D, types.int64,
            types.boolean, data_type(dtype, 7, True, "C"), data_type(dtype, 2, True, "C"),
            types.int64)


#: Argument types :func:`weight_grad` is compiled for.
weight_grad_signature = kernel_signature(weight_grad_task_signature)


_call_gather_task = caller(gather_task_signature)
_call_weight_grad_task = caller(weight_grad_task_signature)


@cache
def bias_grad_signature(dtype: np.dtype) -> tuple:
    """Argument types :func:`bias_grad` is compiled for."""
    return (data_type(dtype, 5, layout="C"), types.int64, data_type(dtype, 2, True, "C"))


@helper
def source_index(position, size, mode):
    """Source index of ``position`` in an input of ``size`` padded by ``mode``; -1 for zeros.

    Pads are validated to be smaller than ``size`` (reflect) or at most ``size`` (circular),
    so one reflection or wrap suffices.
    """
    if 0 <= position < size:
        return position
    if mode == _ZEROS:
        return -1
    if mode == _REFLECT:
        return -position if position < 0 else 2 * (size - 1) - position
    if mode == _REPLICATE:
        return 0 if position < 0 else size - 1
    return position + size if position < 0 else position - size


@helper
def _forward_pairs(geom, dim, q, pairs):
    """Fill ``pairs`` with the ``(source, tap)`` pairs output ``q`` reads; return the count."""
    size, mode = geom[dim, IN_SIZE], geom[dim, MODE]
    dilation = geom[dim, DILATION]
    base = q * geom[dim, STRIDE] - geom[dim, PAD_LOW]
    count = 0
    for t in range(geom[dim, TAPS]):
        source = source_index(base + t * dilation, size, mode)
        if source >= 0:
            pairs[count, 0] = source
            pairs[count, 1] = t
            count += 1
    return count


@helper
def _preimage(geom, dim, i, k):
    """Candidate ``k`` (0..2) of unpadded positions that the padding maps onto input ``i``.

    Returns an interval ``(low, high)`` of positions, empty when ``low > high``.
    """
    size, mode = geom[dim, IN_SIZE], geom[dim, MODE]
    lowest = -geom[dim, PAD_LOW]
    highest = size - 1 + geom[dim, PAD_HIGH]
    low, high = 1, 0
    if k == 0:
        low, high = i, i
        if mode == _REPLICATE and i == 0:
            low = lowest
        if mode == _REPLICATE and i == size - 1:
            high = highest
    elif mode == _REFLECT:
        if k == 1 and i > 0:
            low, high = -i, -i
        elif k == 2 and i < size - 1:
            low, high = 2 * (size - 1) - i, 2 * (size - 1) - i
    elif mode == _CIRCULAR:
        low = high = i - size if k == 1 else i + size
    return max(low, lowest), min(high, highest)


@helper
def _adjoint_pairs(geom, dim, i, pairs):
    """Fill ``pairs`` with the ``(output, tap)`` pairs that read input ``i``; return the count."""
    stride, dilation = geom[dim, STRIDE], geom[dim, DILATION]
    pad_low, last = geom[dim, PAD_LOW], geom[dim, OUT_SIZE] - 1
    count = 0
    for k in range(3):
        low, high = _preimage(geom, dim, i, k)
        if low > high:
            continue
        for t in range(geom[dim, TAPS]):
            # outputs q with low <= q * stride + t * dilation - pad_low <= high
            first = max(0, -((t * dilation - pad_low - low) // stride))
            final = min(last, (high + pad_low - t * dilation) // stride)
            for q in range(first, final + 1):
                pairs[count, 0] = q
                pairs[count, 1] = t
                count += 1
    return count


@helper
def position_pairs(geom, dim, position, pairs):
    """Pairs of the written ``position`` along ``dim``: forward or adjoint per the geometry."""
    if geom[dim, ADJOINT]:
        return _adjoint_pairs(geom, dim, position, pairs)
    return _forward_pairs(geom, dim, position, pairs)


@kernel
def gather_conv(src, packed, bias, out, geom, capacity, col_block, group_block, task_at):
    """Compiled core of forward, input-gradient and transposed convolution.

    ``out[n, q0, q1, q2, g*Og + j] = bias[g*Og + j] + sum src[n, s0, s1, s2, g*Ig + i] *
    packed[g, t0, t1, t2, i, j]`` over the ``(s, t)`` pairs of each written position (see
    :func:`position_pairs`) and over ``i``, in that fixed order.

    Parameters
    ----------
    src : ndarray, shape (N, S0, S1, S2, G*Ig)
        Data read (the input, or the output gradient), any strides.
    packed : ndarray, shape (G, T0, T1, T2, Ig, Og), C-contiguous
        Weights packed for this pass.
    bias : ndarray, shape (G*Og,)
        Added to every output (zeros when there is no bias).
    out : ndarray, shape (N, Q0, Q1, Q2, G*Og)
        Written once per element, any strides.
    geom : ndarray of int64, shape (3, 9)
        Geometry record of each dimension (:func:`fastconv._plan.geometry`).
    capacity : ndarray of int64, shape (3,)
        Most pairs one position can have, per dimension.
    col_block : int
        Output positions along the last dimension computed by one task.
    group_block : int
        Groups computed by one task (many for depthwise and small groups, so a task's
        fixed costs are shared; the pairs of a position are found once for all of them).
    task_at : int
        :data:`gather_task_address` of the dtype.
    """
    n_col_blocks = (out.shape[3] + col_block - 1) // col_block
    n_group_blocks = (packed.shape[0] + group_block - 1) // group_block
    n_tasks = out.shape[0] * out.shape[1] * out.shape[2] * n_col_blocks * n_group_blocks
    for task in prange(n_tasks):
        # the task function, called by address, is compiled once (see _jit.caller)
        _call_gather_task(task_at, (src, packed, bias, out, geom, capacity, col_block,
                                    group_block, np.int64(task)))


@helper
def _gather_conv_task(src, packed, bias, out, geom, capacity, col_block, group_block, task):
    """Task ``task`` of :func:`gather_conv` (its loop body, compiled once)."""
    rows0, rows1, cols = out.shape[1], out.shape[2], out.shape[3]
    groups, in_group, out_group = packed.shape[0], packed.shape[4], packed.shape[5]
    n_col_blocks = (cols + col_block - 1) // col_block
    n_group_blocks = (groups + group_block - 1) // group_block
    # dimension indices as run-time values: literal ones would compile the pair helpers
    # once per dimension
    dim0 = geom.shape[0] - 3
    g_start = (task % n_group_blocks) * group_block
    rest = task // n_group_blocks
    col_start = (rest % n_col_blocks) * col_block
    rest //= n_col_blocks
    q1 = rest % rows1
    rest //= rows1
    q0 = rest % rows0
    n = rest // rows0
    n_cols = min(col_block, cols - col_start)
    g_stop = min(groups, g_start + group_block)
    pairs0 = np.empty((capacity[0], 2), dtype=np.int64)
    pairs1 = np.empty((capacity[1], 2), dtype=np.int64)
    pairs2 = np.empty((capacity[2], 2), dtype=np.int64)
    count0 = position_pairs(geom, dim0, q0, pairs0)
    count1 = position_pairs(geom, dim0 + 1, q1, pairs1)
    acc = np.zeros((col_block, group_block * out_group), dtype=out.dtype)
    for c in range(n_cols):
        count2 = position_pairs(geom, dim0 + 2, col_start + c, pairs2)
        for g in range(g_start, g_stop):
            # plain indexing: a slice per iteration costs reference counting, which
            # dominates when groups are small (depthwise)
            base = (g - g_start) * out_group
            for e0 in range(count0):
                s0 = pairs0[e0, 0]
                t0 = pairs0[e0, 1]
                for e1 in range(count1):
                    s1 = pairs1[e1, 0]
                    t1 = pairs1[e1, 1]
                    for e2 in range(count2):
                        s2 = pairs2[e2, 0]
                        t2 = pairs2[e2, 1]
                        for i in range(in_group):
                            value = src[n, s0, s1, s2, g * in_group + i]
                            for j in range(out_group):
                                acc[c, base + j] += value * packed[g, t0, t1, t2, i, j]
    for c in range(n_cols):
        for k in range((g_stop - g_start) * out_group):
            channel = g_start * out_group + k
            out[n, q0, q1, col_start + c, channel] = acc[c, k] + bias[channel]


@helper
def _row_range(chunk, n_chunks, n_rows):
    """Rows ``[lo, hi)`` of reduction chunk ``chunk`` (a fixed split of ``n_rows``)."""
    return chunk * n_rows // n_chunks, (chunk + 1) * n_rows // n_chunks


@helper
def _sum_rows(grad_out, row_lo, row_hi, channel_lo, acc):
    """Add ``grad_out`` over flat rows ``[row_lo, row_hi)`` into ``acc`` (bias gradient)."""
    rows0, rows1, cols = grad_out.shape[1], grad_out.shape[2], grad_out.shape[3]
    for row in range(row_lo, row_hi):
        q1 = row % rows1
        q0 = (row // rows1) % rows0
        n = row // (rows1 * rows0)
        for q2 in range(cols):
            for j in range(acc.shape[0]):
                acc[j] += grad_out[n, q0, q1, q2, channel_lo + j]


@kernel
def weight_grad(src, grad_out, geom, in_block, with_bias, partial_w, partial_b, task_at):
    """Compiled core of the weight gradient, with the bias gradient fused in.

    ``partial_w[chunk, g, t0, t1, t2, i, j] = sum src[n, s0, s1, s2, g*Ig + i] *
    grad_out[n, q0, q1, q2, g*Og + j]`` over the output rows of ``chunk`` (rows are
    ``(n, q0, q1)`` triples) and all ``q2``, where ``s`` is the source each ``(q, t)`` reads
    (:func:`source_index`), skipping zero pads. Each task owns one
    ``(chunk, g, t0, t1, t2, i-block)`` tile.

    Parameters
    ----------
    src : ndarray, shape (N, S0, S1, S2, G*Ig)
        Input of the forward convolution, any strides.
    grad_out : ndarray, shape (N, Q0, Q1, Q2, G*Og)
        Gradient of the output, any strides.
    geom : ndarray of int64, shape (3, 9)
        Forward geometry record of each dimension (:func:`fastconv._plan.geometry`).
    in_block : int
        Input channels per task.
    with_bias : bool
        Also fill ``partial_b[chunk, g*Og + j]`` (tasks with tap 0 and the first block).
    partial_w : ndarray, shape (n_chunks, G, T0, T1, T2, Ig, Og)
        Per-chunk partial sums, each element written once.
    partial_b : ndarray, shape (n_chunks, G*Og)
        Per-chunk partial bias gradients.
    task_at : int
        :data:`weight_grad_task_address` of the dtype.
    """
    n_in_blocks = max(1, (partial_w.shape[5] + in_block - 1) // in_block)
    n_tasks = partial_w.shape[0] * partial_w.shape[1] * partial_w.shape[2] * \
        partial_w.shape[3] * partial_w.shape[4] * n_in_blocks
    for task in prange(n_tasks):
        # the task function, called by address, is compiled once (see _jit.caller)
        _call_weight_grad_task(task_at, (src, grad_out, geom, in_block, with_bias, partial_w,
                                         partial_b, np.int64(task)))


@helper
def _weight_grad_task(src, grad_out, geom, in_block, with_bias, partial_w, partial_b, task):
    """Task ``task`` of :func:`weight_grad` (its loop body, compiled once)."""
    n_chunks, groups = partial_w.shape[0], partial_w.shape[1]
    taps0, taps1, taps2 = partial_w.shape[2], partial_w.shape[3], partial_w.shape[4]
    in_group, out_group = partial_w.shape[5], partial_w.shape[6]
    rows0, rows1, cols = grad_out.shape[1], grad_out.shape[2], grad_out.shape[3]
    n_rows = grad_out.shape[0] * rows0 * rows1
    n_in_blocks = max(1, (in_group + in_block - 1) // in_block)
    ib = task % n_in_blocks
    rest = task // n_in_blocks
    t2 = rest % taps2
    rest //= taps2
    t1 = rest % taps1
    rest //= taps1
    t0 = rest % taps0
    rest //= taps0
    g = rest % groups
    chunk = rest // groups
    row_lo, row_hi = _row_range(chunk, n_chunks, n_rows)
    i_lo = ib * in_block
    i_hi = min(in_group, i_lo + in_block)
    acc = np.zeros((in_block, out_group), dtype=partial_w.dtype)
    for row in range(row_lo, row_hi):
        q1 = row % rows1
        q0 = (row // rows1) % rows0
        n = row // (rows1 * rows0)
        s0 = source_index(q0 * geom[0, STRIDE] + t0 * geom[0, DILATION] - geom[0, PAD_LOW],
                          geom[0, IN_SIZE], geom[0, MODE])
        s1 = source_index(q1 * geom[1, STRIDE] + t1 * geom[1, DILATION] - geom[1, PAD_LOW],
                          geom[1, IN_SIZE], geom[1, MODE])
        if s0 < 0 or s1 < 0:
            continue
        base2 = t2 * geom[2, DILATION] - geom[2, PAD_LOW]
        for q2 in range(cols):
            s2 = source_index(q2 * geom[2, STRIDE] + base2, geom[2, IN_SIZE], geom[2, MODE])
            if s2 < 0:
                continue
            grad_row = grad_out[n, q0, q1, q2, g * out_group:(g + 1) * out_group]
            for i in range(i_lo, i_hi):
                value = src[n, s0, s1, s2, g * in_group + i]
                acc_row = acc[i - i_lo]
                for j in range(out_group):
                    acc_row[j] += value * grad_row[j]
    for i in range(i_lo, i_hi):
        for j in range(out_group):
            partial_w[chunk, g, t0, t1, t2, i, j] = acc[i - i_lo, j]
    if with_bias and ib == 0 and t0 == 0 and t1 == 0 and t2 == 0:
        bias_acc = np.zeros(out_group, dtype=partial_b.dtype)
        _sum_rows(grad_out, row_lo, row_hi, g * out_group, bias_acc)
        for j in range(out_group):
            partial_b[chunk, g * out_group + j] = bias_acc[j]


@kernel
def bias_grad(grad_out, groups, partial_b):
    """Compiled bias gradient alone, with the same chunking and order as :func:`weight_grad`.

    Parameters
    ----------
    grad_out : ndarray, shape (N, Q0, Q1, Q2, G*Og)
        Gradient of the output, any strides.
    groups : int
        Number of groups (one task per chunk and group, as in :func:`weight_grad`).
    partial_b : ndarray, shape (n_chunks, G*Og)
        Per-chunk partial sums, written once.
    """
    n_chunks = partial_b.shape[0]
    out_group = partial_b.shape[1] // groups if groups > 0 else 0
    n_rows = grad_out.shape[0] * grad_out.shape[1] * grad_out.shape[2]
    for task in prange(n_chunks * groups):
        g = task % groups
        chunk = task // groups
        row_lo, row_hi = _row_range(chunk, n_chunks, n_rows)
        bias_acc = np.zeros(out_group, dtype=partial_b.dtype)
        _sum_rows(grad_out, row_lo, row_hi, g * out_group, bias_acc)
        for j in range(out_group):
            partial_b[chunk, g * out_group + j] = bias_acc[j]


#: Below this many multiply-adds (or additions, for the bias gradient) a call runs the
#: serial twin of its kernel on the calling thread instead of waking the thread pool.
SERIAL_MAX_WORK = _SERIAL_MAX_WORK



#: ``dtype -> task_at`` of :func:`gather_conv` and its twin (compiles the task once)
gather_task_address = partial(address_of, _gather_conv_task, gather_task_signature)
#: ``dtype -> task_at`` of :func:`weight_grad` and its twin
weight_grad_task_address = partial(address_of, _weight_grad_task, weight_grad_task_signature)


gather_conv_serial = serial_twin(gather_conv, "gather_conv_serial")
weight_grad_serial = serial_twin(weight_grad, "weight_grad_serial")
bias_grad_serial = serial_twin(bias_grad, "bias_grad_serial")


# ---------------------------------------------------------------------------- layout copies


@cache
def channels_last_signature(dtype: np.dtype) -> tuple:
    """Argument types :func:`channels_last_copy` is compiled for."""
    return (data_type(dtype, 5), data_type(dtype, 5, True, "C"), INDEX_1D)


@helper
def transpose_run(src, base, channel_step, pixels, channels, dst, at, pixel_step):
    """``dst[at + w * pixel_step + c] = src[base + c * channel_step + w]``, vectorised.

    A run of ``pixels`` adjacent pixels of channels-first data (``channels`` rows
    ``channel_step`` apart) to channels-last pixels ``pixel_step`` apart, for ``w <
    pixels`` and ``c < channels``. Blocks of ``lanes`` channels x ``lanes`` pixels are
    transposed in registers (:func:`fastconv._simd.vtranspose_copy`); a run's last block,
    when it is short, overlaps the block before it (the same values written twice) or,
    for runs shorter than a vector, reads and writes only its pixels
    (:func:`fastconv._simd.vtranspose_copy_partial`): a 14-pixel row is one partial block,
    not 14 x ``lanes`` single elements. Channels past the last whole vector (all of an RGB
    image's) are copied one element at a time.
    """
    lanes = vlanes(dst)
    full_c = channels - channels % lanes
    full_p = pixels - pixels % lanes
    for c in range(0, full_c, lanes):
        s = base + c * channel_step
        d = at + c
        for w in range(0, full_p, lanes):
            vtranspose_copy(src, s + w, channel_step, dst, d + w * pixel_step, pixel_step)
        if full_p < pixels:
            if pixels >= lanes:
                w = pixels - lanes
                vtranspose_copy(src, s + w, channel_step, dst, d + w * pixel_step, pixel_step)
            else:
                vtranspose_copy_partial(src, s, channel_step, dst, d, pixel_step, pixels)
    # pointers: no negative-index wraparound per element (arrays would check each index)
    src_p, dst_p = ptr_of(src, 0), ptr_of(dst, 0)
    for c in range(full_c, channels):
        s = base + c * channel_step
        for w in range(pixels):
            dst_p[at + w * pixel_step + c] = src_p[s + w]


#: Pixels per task of :func:`channels_last_copy`.
LAYOUT_BLOCK = 256


@kernel
def channels_last_copy(src, dst, low):
    """``dst[n, low[0] + i0, low[1] + i1, low[2] + i2, c] = src[n, c, i0, i1, i2]``.

    Channels-first planes to channels-last pixels, into the interior of a larger
    destination when ``low`` or the destination's extents leave margins (a zero-padded
    copy: the margins are left as they are), each run of pixels by :func:`transpose_run`
    (in-register transposes of square blocks). Without margins the planes are copied as
    flat runs of pixels, with them a row (``I2`` pixels) at a time.

    Parameters
    ----------
    src : ndarray, shape (N, C, I0, I1, I2)
        Channels-first data whose pixels are adjacent (unit pixel stride, rows and planes
        of rows consecutive), any non-negative sample and channel strides (a slab of each
        plane, for example).
    dst : ndarray, shape (N, E0, E1, E2, C), C-contiguous
        ``E >= low + I`` per spatial dimension; the interior is written once per element.
    low : ndarray, shape (3,), int64
        Low margin per spatial dimension.
    """
    batch, channels, i0n, i1n, i2n = src.shape
    e0n, e1n, e2n = dst.shape[1], dst.shape[2], dst.shape[3]
    flat = low[0] == 0 and low[1] == 0 and low[2] == 0 and e1n == i1n and e2n == i2n
    # a run is a whole plane (no margins) or one row
    run = i0n * i1n * i2n if flat else i2n
    runs = 1 if flat else i0n * i1n
    n_blocks = (run + LAYOUT_BLOCK - 1) // LAYOUT_BLOCK
    sample_step = src.strides[0] // src.itemsize
    channel_step = src.strides[1] // src.itemsize
    src_p = ptr_of(src, 0)
    dst_p = ptr_of(dst, 0)
    for task in prange(batch * runs * n_blocks):
        n = task // (runs * n_blocks)
        r = task // n_blocks - n * runs
        p_lo = (task % n_blocks) * LAYOUT_BLOCK
        p_hi = min(run, p_lo + LAYOUT_BLOCK)
        s_base = n * sample_step + r * run
        i0 = r // i1n
        first = ((low[0] + i0) * e1n + low[1] + r - i0 * i1n) * e2n + low[2]
        d_base = (n * e0n * e1n * e2n + first) * channels
        transpose_run(src_p, s_base + p_lo, channel_step, p_hi - p_lo, channels, dst_p,
                      d_base + p_lo * channels, channels)
