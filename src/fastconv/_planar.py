"""Planar kernels: channels-first convolution vectorised along the last spatial dimension.

An output plane ``out[n, co]`` is a sum of shifted input planes ``src[n, ci]`` scaled by
single weights, one per tap. When a layer has few channels per group (depthwise, small
groups, single-channel images and signals) there is nothing to block over channels, and
this is the fastest formulation: output rows are computed in registers, two rows by a
strip of four SIMD vectors of consecutive columns at a time, with one unaligned vector load
and one fused multiply-add per tap and vector. The data stay in the user's channels-first
layout (no layout copies, no weight packing).

All arrays are C-contiguous, in the canonical channels-first order ``(N, C, D0, D1, D2)``
(1-D and 2-D problems have unit leading dims). Strides, dilations and the padding of
every mode are arbitrary. The kernels compute with unit stride along ``D2``: a stride
there is taken by the tile fill, which splits each input row into column phases (every
``stride``-th padded position, :func:`fastconv._plan.column_phases`), one tile row each,
the phases folded into the filter's taps along ``D0`` (a 3x3 stride-2 filter runs as two
phases of 3x2 taps, one of them zero).

Each task first copies the input rows its block of output rows reads into a small padded
tile (per thread, in cache), evaluating the padding map
(:func:`fastconv._kernels.source_index`) once per copied element at the borders. The
arithmetic then runs on the tile without a single bounds test: every output row reads the
same number of rows at the same offsets, and over-long strips at the end of a row read the
tile's slack and are stored masked. A depthwise 3x3 filter over zero padding skips the tile
on hosts with 32 vector registers: it reads the input's rows in place, making their shifted
taps in registers (:func:`_direct_rows3x3`, :func:`_direct_dots3x3`); the tile's fill was
that memory-bound layer's stall.

Each output element is computed by one task in a fixed order (input channel, tap rows,
then tap columns; bias last), so results do not depend on the number of threads. The
weight gradient splits its reduction into shape-determined chunks summed in order.
"""

from __future__ import annotations

from functools import cache, partial

import numba
import numpy as np
from numba import prange, types
from numba.extending import register_jitable

from ._jit import (
    address_of,
    caller,
    helper,
    inlined,
    kernel,
    kernel_signature,
    serial_twin,
)
from ._kernels import _ZEROS, INDEX_2D, data_type, source_index
from ._plan import (
    DILATION,
    MODE,
    PAD_LOW,
    PLANAR_STRIP_VECTORS,
    STRIDE,
    TAPS,
    ColumnPhases,
    planar_tasks_per_chunk,
    planar_tile_rows,
    planar_tile_width,
)
from ._simd import (
    VECTOR_BITS,
    keep_alive,
    lanes_for,
    prefetch,
    prefetch_l2,
    ptr_of,
    vadd,
    vbroadcast,
    veven_lanes,
    vfma,
    vinterleave_high,
    vinterleave_low,
    vlanes,
    vleading,
    vload,
    vload_between,
    vload_every,
    vload_masked,
    vodd_lanes,
    vreduce_add,
    vslide_down,
    vslide_up,
    vstore,
    vstore_every,
    vstore_leading,
    vstore_masked,
    vzero,
)

#: The padding map, inlined (it runs per border element of every copied row).
_source = inlined(source_index.py_func)

#: Vectors of consecutive output columns a strip keeps in registers, per row.
STRIP_VECTORS = PLANAR_STRIP_VECTORS

#: Whether four leftover output channels of a group run in one strip of 16 accumulators on
#: rows of at most two vectors (:func:`_strip_quad_rows`): with 32 vector registers.
QUAD_STRIPS = VECTOR_BITS >= 512

#: Groups of at most this many input channels fetch each channel's tile rows ahead while
#: the previous channel's are copied (measured: 4 channels, a grouped 3x3 layer: +26% for
#: the whole call; 64, a stem's input-gradient phases: -5% on an AVX2 Zen 3 host, where the
#: copy streamed already, but +10-13% on the AVX-512 Zen 5 one, and a 3-D layer's 32: +6.5%;
#: each kept where it was measured).
PREFETCH_CHANNELS = 64 if VECTOR_BITS >= 512 else 16

#: Output channels of a channel-blocked strip, two vectors of columns each, for layers with
#: many output channels per group: 8 with 32 vector registers (16 accumulators: each pair
#: of tile loads feeds 16 multiply-adds), else 6 (12, as the dense micro-kernel).
CHANNEL_BLOCK = 8 if VECTOR_BITS >= 512 else 6
#: A single input channel's 3x3 filter with unit strides and dilations, zero padding and
#: one padded column on the left (a depthwise layer) slides down the input's own rows, four
#: vectors of columns at a time (:func:`_direct_rows3x3`): no tile is filled, each row is
#: loaded once and its shifted taps are made in registers, and the output is written a
#: whole row after the other. It keeps 29 vectors live: with 32 vector registers only.
DIRECT_SLIDES = VECTOR_BITS >= 512
#: Bytes past the row being read that a direct slide prefetches: the rows after it, then
#: the next task's (consecutive tasks read consecutive memory). The tile fill of the
#: next task's rows, prefetched during a task, still waited on them.
DIRECT_AHEAD_BYTES = 4096
#: Bytes past the row being copied that a single-channel tile fill prefetches (a depthwise
#: 3x3 stride-2 layer: 4 KiB 0.88x, 16 KiB 0.99x of this).
FILL_AHEAD_BYTES = 8192


def pack_channel_blocks(weight: np.ndarray, groups: int) -> np.ndarray:
    """Weights ``(G*Og, Ig, T0, T1, T2)`` as ``(G * (Og // B), Ig, T0, T1, T2, B)`` blocks.

    ``B`` is :data:`CHANNEL_BLOCK`. Block ``g * (Og // B) + b`` holds output channels
    ``g*Og + B*b + [0, B)`` of group ``g``, the ``B`` weights of one (input channel, tap)
    contiguous. The last ``Og % B`` channels of each group are not packed here
    (:func:`pack_channel_triples`).
    """
    out_group = weight.shape[0] // groups
    blocks = out_group // CHANNEL_BLOCK
    taps = weight[0].size
    packed = np.empty((groups * blocks, *weight.shape[1:], CHANNEL_BLOCK), weight.dtype)
    # one assignment of 4-D views, each (input channel, tap) row contiguous in the source (a
    # moveaxis of the 7-D shape copied element by element: 5 us a call, most of a tiny one)
    packed.reshape(groups, blocks, taps, CHANNEL_BLOCK)[...] = weight.reshape(
        groups, out_group, taps)[:, :blocks * CHANNEL_BLOCK].reshape(
        groups, blocks, CHANNEL_BLOCK, taps).transpose(0, 1, 3, 2)
    return packed



def phase_kernel(weight: np.ndarray, phases: ColumnPhases) -> np.ndarray:
    """Weights ``(C, Ig, T0, T1, T2)`` as the column phases' ``(C, Ig, T0 * P, T1, taps)``.

    ``P`` is ``phases.phases`` (phase innermost along ``D0``, as :func:`_fill_tile` lays
    the tile out): tap ``t`` of the real filter goes to ``(phase, column) =
    phases.slots[t]``, the other taps are zeros. One phase with every tap in place (a unit
    stride) is ``weight`` itself.

    Examples
    --------
    >>> from fastconv._plan import column_phases
    >>> phase_kernel(np.array([1.0, 2, 3]).reshape(1, 1, 1, 1, 3), column_phases(3, 2, 1))
    array([[[[[1., 3.]],
    <BLANKLINE>
             [[2., 0.]]]]])
    """
    c, in_group, taps0, taps1, taps2 = weight.shape
    if phases.phases == 1 and phases.slots == tuple((0, t) for t in range(taps2)):
        return weight
    spread = np.zeros((c, in_group, taps0, phases.phases, taps1, phases.taps), weight.dtype)
    for t, (phase, column) in enumerate(phases.slots):
        spread[:, :, :, phase, :, column] = weight[..., t]
    return spread.reshape(c, in_group, taps0 * phases.phases, taps1, phases.taps)


def real_taps(grad: np.ndarray, phases: ColumnPhases) -> np.ndarray:
    """The taps of the real filter in a gradient ``(..., T0 * P, T1, taps)`` of the phases'.

    The inverse of :func:`phase_kernel` on its non-zero taps: ``(..., T0, T1, T2)``.

    Examples
    --------
    >>> from fastconv._plan import column_phases
    >>> real_taps(np.array([1.0, 3, 2, 0]).reshape(1, 2, 1, 2), column_phases(3, 2, 1))
    array([[[[1., 2., 3.]]]])
    """
    if phases.phases == 1 and phases.slots == tuple((0, t) for t in range(grad.shape[-1])):
        return grad
    lead, taps1 = grad.shape[:-3], grad.shape[-2]
    split = grad.reshape(*lead, grad.shape[-3] // phases.phases, phases.phases, taps1,
                         phases.taps)
    return np.stack([split[..., phase, :, column] for phase, column in phases.slots], axis=-1)


#: Output channels of the small channel-blocked strip (four vectors of columns each: 12
#: accumulators) for the channels of a group left over by the channel blocks.
TRIPLE = 3


def pack_channel_triples(weight: np.ndarray, groups: int) -> np.ndarray:
    """The last ``Og % B`` channels of each group as zero-padded blocks of three.

    ``B`` is :data:`CHANNEL_BLOCK`. Returns ``(G * ceil((Og % B) / 3), Ig, T0, T1, T2,
    3)``: block ``g * nb + b`` holds channels ``g*Og + B*(Og // B) + 3*b + [0, 3)`` of
    group ``g`` (zeros past ``Og``), the three weights of one (input channel, tap)
    contiguous. Empty when ``Og % B < 2`` (a single leftover channel runs alone).

    Examples
    --------
    >>> pack_channel_triples(np.ones((6, 2, 1, 1, 1)), 2).shape  # Og = 3: one triple each
    (2, 2, 1, 1, 1, 3)
    >>> pack_channel_triples(np.ones((8, 2, 1, 1, 1)), 2).shape  # Og = 4: two, one padded
    (4, 2, 1, 1, 1, 3)
    """
    out_group = weight.shape[0] // groups
    first = out_group // CHANNEL_BLOCK * CHANNEL_BLOCK
    rest = out_group - first
    blocks = -(-rest // TRIPLE) if rest >= 2 else 0
    taps = weight[0].size
    packed = np.zeros((groups * blocks, *weight.shape[1:], TRIPLE), weight.dtype)
    # a channel at a time, each a strided 3-D assignment (the 7-D moveaxis of a zero-padded
    # copy took 16 us a call for a 32-group layer)
    lanes = packed.reshape(groups, blocks, taps, TRIPLE)
    grouped = weight.reshape(groups, out_group, taps)
    for j in range(rest if blocks else 0):
        lanes[:, j // TRIPLE, :, j % TRIPLE] = grouped[:, first + j]
    return packed


def tile_elements(kernel_shape: tuple[int, ...], geom: np.ndarray, cols: int, row_block: int,
                  dtype: np.dtype) -> int:
    """Elements of one thread's padded input tile in :func:`planar_conv` (its ``tiles`` rows).

    ``kernel_shape`` is ``(C_out, Ig, T0, T1, T2)``, ``geom`` the forward geometry record,
    ``cols`` the output columns and ``row_block`` the output rows per task.

    Examples
    --------
    >>> geom = np.ones((3, 9), np.int64)  # stride and dilation 1 (and the other entries)
    >>> n = tile_elements((64, 4, 1, 3, 3), geom, 28, 28, np.dtype(np.float32))
    >>> n == 4 * 1 * 30 * planar_tile_width(28, 3, 1, lanes_for(np.float32))
    True
    """
    _, in_group, taps0, taps1, _ = kernel_shape
    rows = planar_tile_rows(row_block, int(geom[1, STRIDE]), taps1, int(geom[1, DILATION]))
    return in_group * taps0 * rows * tile_row_layout(kernel_shape, geom, cols, dtype)[0]


def tile_row_layout(kernel_shape: tuple[int, ...], geom: np.ndarray, cols: int,
                    dtype: np.dtype) -> tuple[int, int]:
    """Elements per row of a :func:`planar_conv` tile, and how many of them a task writes.

    The rest of each row is slack that only over-long strips read (and whose results they
    never store): zeros once, it stays zeros. Tiles with the same layout may be reused.

    Examples
    --------
    >>> geom = np.ones((3, 9), np.int64)
    >>> lanes = lanes_for(np.float32)
    >>> tile_row_layout((64, 4, 1, 3, 3), geom, 28, np.dtype(np.float32)) == (
    ...     planar_tile_width(28, 3, 1, lanes), -(-30 // lanes) * lanes)
    True
    """
    taps2, dilation2 = kernel_shape[4], int(geom[2, DILATION])
    lanes = lanes_for(dtype)
    width = planar_tile_width(cols, taps2, dilation2, lanes)
    extent = cols + dilation2 * (taps2 - 1)
    return width, min(width, -(-extent // lanes) * lanes)



@cache
def planar_task_signature(dtype: np.dtype) -> tuple:
    """Argument types of :func:`_planar_conv_tasks`: the data, tables and rows, then the tasks."""
    return (data_type(dtype, 5, layout="C"), data_type(dtype, 5, layout="C"),
            data_type(dtype, 6, layout="C"), data_type(dtype, 6, layout="C"),
            data_type(dtype, 1), data_type(dtype, 5, True, "C"), INDEX_2D, INDEX_2D,
            types.int64, data_type(dtype, 2, True, "C"), types.int64, types.int64,
            types.int64)


#: Argument types :func:`planar_conv` is compiled for (one signature per dtype).
planar_signature = kernel_signature(planar_task_signature, 3)


@cache
def planar_weight_task_signature(dtype: np.dtype) -> tuple:
    """Argument types of :func:`_planar_weight_grad_task`."""
    return (data_type(dtype, 5, layout="C"), data_type(dtype, 5, layout="C"), INDEX_2D,
            types.int64, types.int64, types.boolean, data_type(dtype, 6, True, "C"),
            data_type(dtype, 2, True, "C"), types.int64)


#: Argument types :func:`planar_weight_grad` is compiled for.
planar_weight_grad_signature = kernel_signature(planar_weight_task_signature)


_call_planar_task = caller(planar_task_signature)
_call_planar_weight_task = caller(planar_weight_task_signature)


@inlined
def _zero_run(dst, lo, hi):
    """Write zeros to ``dst[lo:hi]``, a vector at a time.

    Through masked stores whose mask LLVM cannot know: a loop of plain stores of zeros
    became a call to ``memset`` (the stores around it too), a call per tile row of one or
    two vectors (3% of a 7x7 stem's input gradient).
    """
    zeros = vzero(dst)
    for c in range(lo, hi, vlanes(dst)):
        vstore_masked(dst, c, zeros, hi - c)


@inlined
def _inside(first, step, size2, extent):
    """Positions ``[lo, hi)`` of ``[0, extent)`` inside a row of ``size2`` columns.

    Position ``c`` is source column ``c * step + first``.
    """
    lo = min(extent, max(0, -(first // step)))
    return lo, max(lo, min(extent, -((first - size2) // step)))


@inlined
def _pad_row(src, src_off, size2, first, step, inside_lo, inside_hi, mode2, extent, dst,
             width, written):
    """The padded positions of a tile row whose inside ``[inside_lo, written)`` is copied.

    Position ``c`` is source column ``c * step + first``; ``[inside_lo, inside_hi)`` are
    inside the row, ``written`` is past the whole vectors that copied them. Then zeros up
    to ``width``.
    """
    if mode2 == _ZEROS:
        # zero pads: no padding map per element (a row's scalar work cost more than its
        # copy in a depthwise layer's tile fill)
        _zero_run(dst, 0, inside_lo)
        _zero_run(dst, written, width)
    else:
        # np.int64: as _copy_row passes it (one compiled copy of _map_pads)
        _map_pads(src, src_off, size2, first, np.int64(step), inside_lo, inside_hi, mode2,
                  extent, dst)
        _zero_run(dst, extent, width)


@helper
def _map_pads(src, src_off, size2, first, step, inside_lo, inside_hi, mode2, extent, dst):
    """Positions ``[0, inside_lo)`` and ``[inside_hi, extent)`` of a row through the padding map.

    A function of its own, called per row (reflect, replicate and circular pads only): its
    two inlined padding maps, in both tile fills, were 0.5 s of cold compile.
    """
    for c in range(inside_lo):
        s = _source(c * step + first, size2, mode2)
        dst[c] = src[src_off + s] if s >= 0 else 0
    for c in range(inside_hi, extent):
        s = _source(c * step + first, size2, mode2)
        dst[c] = src[src_off + s] if s >= 0 else 0


@helper
def _copy_row(src, src_off, size2, pad2, mode2, extent, dst, width):
    """Copy one source row into ``dst[0:width]``: padded positions ``[0, extent)``, then zeros.

    Position ``c`` holds source column ``c - pad2`` through the padding map: the row as
    over zero pads (:func:`_copy_row_zero_pads`), then, for the other modes, the pads'
    positions through the map.
    """
    _copy_row_zero_pads(src, src_off, size2, pad2, extent, dst, width)
    if mode2 != _ZEROS:
        inside_lo = min(extent, max(pad2, 0))  # a negative pad: the row starts inside
        inside_hi = max(inside_lo, min(extent, size2 + pad2))
        # np.int64: the phase fills' steps are int64 too (a literal would compile a copy)
        _map_pads(src, src_off, size2, -pad2, np.int64(1), inside_lo, inside_hi, mode2,
                  extent, dst)


@inlined
def _copy_row_zero_pads(src, src_off, size2, pad2, extent, dst, written):
    """:func:`_copy_row` of a row padded with zeros: ``written`` columns, whole vectors.

    Each vector of the tile row is one load of the source lanes it holds (the pads' lanes
    masked off: zeros, their memory not touched) and one store at a whole-vector column:
    no separate stores of pads (a masked store of the left pad, a row's unaligned copy and
    its padding map per row had made the fill of a grouped layer's 28-column rows about 15
    cycles a row).
    """
    lanes = vlanes(dst)
    inside_hi = min(extent, size2 + pad2)
    c = 0
    while c < written and (c < pad2 or c + lanes > inside_hi):
        # vectors holding a left pad (or the whole short row)
        vstore(dst, c, vload_between(src, src_off + c - pad2, min(lanes, max(0, pad2 - c)),
                                     max(0, min(lanes, inside_hi - c))))
        c += lanes
    while c + lanes <= inside_hi:
        vstore(dst, c, vload(src, src_off + c - pad2))
        c += lanes
    while c < written:
        vstore(dst, c, vload_masked(src, src_off + c - pad2, inside_hi - c))
        c += lanes


@inlined
def _prefetch_slice(src, plane, s0, first, count, size0, size1, size2):
    """Prefetch ``count`` elements of slice ``s0`` of plane ``plane``, from row ``first``."""
    ahead = ((plane * size0 + s0) * size1 + first) * size2
    for c in range(0, count, vlanes(src)):  # at most a cache line apart
        prefetch(src, ahead + c)


@helper
def _fill_tile(src, plane0, size0, size1, size2, geom, q0, row_lo, span, width, written,
               extent, in_group, taps0, tile):
    """Copy the padded rows ``row_lo*stride1 - pad1 + [0, span)`` of ``in_group`` planes.

    The tile is ``(in_group, taps0, span, width)``: for each input channel of the group and
    each tap along ``D0``, the rows of the source slice that tap reads. The first
    ``written`` columns of each row are written (the padded row, then zeros): ``width`` for
    a fresh tile, or the whole vectors holding the ``extent`` padded columns for a tile
    whose slack is zero already (either way whole vectors). A stride along ``D2`` takes
    :func:`_fill_phase_tile` (a separate copy: this one's rows ran 4-7% slower with the
    phases' bookkeeping in its loops).
    """
    if geom[2, STRIDE] > 1:
        _fill_phase_tile(src, plane0, size0, size1, size2, geom, q0, row_lo, span, width,
                         written, extent, in_group, taps0, tile)
        return
    stride0, dilation0, pad0, mode0 = geom[0, STRIDE], geom[0, DILATION], geom[0, PAD_LOW], \
        geom[0, MODE]
    stride1, pad1, mode1 = geom[1, STRIDE], geom[1, PAD_LOW], geom[1, MODE]
    pad2, mode2 = geom[2, PAD_LOW], geom[2, MODE]
    first = max(0, row_lo * stride1 - pad1)
    count = max(0, min(span, size1 - first)) * size2
    # with zero pads along D1 the rows inside the source are [inside_lo, inside_hi): one
    # offset steps through them (a padding map and its branches per row were most of the
    # fill of a grouped layer's four 28-column channels)
    top = row_lo * stride1 - pad1
    inside_lo = min(span, max(0, -top))
    inside_hi = max(inside_lo, min(span, size1 - top))
    for i in range(in_group):
        for t0 in range(taps0):
            s0 = _source(q0 * stride0 + t0 * dilation0 - pad0, size0, mode0)
            if i + 1 < in_group <= PREFETCH_CHANNELS and s0 >= 0:
                # the next channel's rows (another stream, a plane away) are fetched while
                # these are copied: the copy waited on them
                _prefetch_slice(src, plane0 + i + 1, s0, first, count, size0, size1, size2)
            if mode1 == _ZEROS and mode2 == _ZEROS:
                rows = ((i * taps0 + t0) * span) * width
                for r in range(span if s0 < 0 else inside_lo):
                    _zero_run(ptr_of(tile, rows + r * width), 0, written)
                if s0 < 0:
                    continue
                src_off = (((plane0 + i) * size0 + s0) * size1 + top + inside_lo) * size2
                for r in range(inside_lo, inside_hi):
                    _copy_row_zero_pads(src, src_off, size2, pad2, extent,
                                        ptr_of(tile, rows + r * width), written)
                    src_off += size2
                for r in range(inside_hi, span):
                    _zero_run(ptr_of(tile, rows + r * width), 0, written)
                continue
            for r in range(span):
                dst = ptr_of(tile, ((i * taps0 + t0) * span + r) * width)
                s1 = _source(row_lo * stride1 - pad1 + r, size1, mode1)
                if s0 < 0 or s1 < 0:
                    # a row of padding: vectors of zeros (an element loop had become a
                    # call to memset per row, 9% of a stem's input gradient)
                    _zero_run(dst, 0, written)
                else:
                    src_off = (((plane0 + i) * size0 + s0) * size1 + s1) * size2
                    _copy_row(src, src_off, size2, pad2, mode2, extent, dst, written)


@inlined
def _copy_phase_row(src, src_off, size2, first, step, inside_lo, inside_hi, mode2, extent,
                    dst, width):
    """:func:`_copy_row` of one column phase of a row (``step > 1``).

    Position ``c`` holds source column ``c * step + first``; ``[inside_lo, inside_hi)`` are
    the positions inside the row (:func:`_inside`).
    """
    lanes = vlanes(dst)
    c = inside_lo
    if step == 2:
        # two loads and a shuffle; masked where they would read past the row's last column
        while c < inside_hi:
            at = 2 * c + first
            if at + 2 * lanes <= size2:
                vstore(dst, c, veven_lanes(vload(src, src_off + at),
                                           vload(src, src_off + at + lanes)))
            else:
                ahead = min(size2, at + 2 * (inside_hi - c) - 1) - at
                vstore(dst, c, veven_lanes(vload_masked(src, src_off + at, ahead),
                                           vload_masked(src, src_off + at + lanes,
                                                        ahead - lanes)))
            c += lanes
    else:
        while c < inside_hi:
            vstore(dst, c, vload_every(src, src_off + c * step + first, step, inside_hi - c))
            c += lanes
    _pad_row(src, src_off, size2, first, step, inside_lo, inside_hi, mode2, extent, dst,
             width, c)


@inlined
def _copy_phase_pair(src, src_off, size2, pad2, mode2, extent, dst0, dst1, width):
    """:func:`_copy_phase_row` of both column phases of a row at stride 2, in one pass.

    Position ``c`` of phase ``k`` (row ``dst0`` or ``dst1``) holds source column ``2 * c
    + k - pad2``. Two vectors loaded from an even column hold phase ``pad2 % 2``'s
    positions in their even lanes and the other phase's in their odd lanes (one position
    further when ``pad2`` is odd): each source element is loaded once, not once per phase.
    Loads are masked at the row's end (zeros past it, stored as the pads they stand for).
    ``pad2 >= 0``: the first pass starts at source column 0.
    """
    lanes = vlanes(dst0)
    shift = pad2 % 2
    lo0, hi0 = _inside(-pad2, 2, size2, extent)
    lo1, hi1 = _inside(1 - pad2, 2, size2, extent)
    dst_even, dst_odd = (dst1, dst0) if shift else (dst0, dst1)
    c, hi_even, hi_odd = (lo1, hi1, hi0) if shift else (lo0, hi0, hi1)
    while c < hi_even or c + shift < hi_odd:
        at = 2 * c + shift - pad2  # the source column of even lane 0 (0 on the first pass)
        if at + 2 * lanes <= size2:
            a = vload(src, src_off + at)
            b = vload(src, src_off + at + lanes)
        else:
            a = vload_masked(src, src_off + at, size2 - at)
            b = vload_masked(src, src_off + at + lanes, size2 - at - lanes)
        vstore(dst_even, c, veven_lanes(a, b))
        vstore(dst_odd, c + shift, vodd_lanes(a, b))
        c += lanes
    # written: phase 0's positions up to c + shift, phase 1's up to c (one inlined pad
    # per phase in a loop, not two copies: the fill's cold compile)
    for k in range(2):
        lo, hi = _inside(k - pad2, 2, size2, extent)
        _pad_row(src, src_off, size2, k - pad2, 2, lo, hi, mode2, extent, dst1 if k else dst0,
                 width, c if k else c + shift)


@helper
def _fill_phase_tile(src, plane0, size0, size1, size2, geom, q0, row_lo, span, width,
                     written, extent, in_group, taps0, tile):
    """:func:`_fill_tile` with a stride along ``D2``: each source row as column phases.

    ``taps0`` counts ``geom[0, TAPS]`` taps along ``D0`` times the column phases
    (:func:`fastconv._plan.column_phases`), phase innermost: tile row ``k`` of a source
    row holds its padded positions ``c * stride2 + k``. Two phases at stride 2 (with a
    non-negative pad) come from one pass over the row (:func:`_copy_phase_pair`); other
    strides read the row again per phase, from L1. A single channel's rows are prefetched
    :data:`FILL_AHEAD_BYTES` ahead (into the next task's plane: consecutive tasks read
    consecutive planes), a larger group's next channel a whole slice ahead (as
    :func:`_fill_tile` does).
    """
    stride0, dilation0, pad0, mode0 = geom[0, STRIDE], geom[0, DILATION], geom[0, PAD_LOW], \
        geom[0, MODE]
    stride1, pad1, mode1 = geom[1, STRIDE], geom[1, PAD_LOW], geom[1, MODE]
    stride2, pad2, mode2 = geom[2, STRIDE], geom[2, PAD_LOW], geom[2, MODE]
    taps, phases = geom[0, TAPS], taps0 // geom[0, TAPS]
    step = vlanes(tile)  # at most a cache line
    ahead_elements = FILL_AHEAD_BYTES * 8 // VECTOR_BITS * step
    first = max(0, row_lo * stride1 - pad1)
    count = max(0, min(span, size1 - first)) * size2
    for i in range(in_group):
        for t0 in range(taps):
            s0 = _source(q0 * stride0 + t0 * dilation0 - pad0, size0, mode0)
            if i + 1 < in_group <= PREFETCH_CHANNELS and s0 >= 0:
                _prefetch_slice(src, plane0 + i + 1, s0, first, count, size0, size1, size2)
            if stride2 == 2 and phases == 2 and pad2 >= 0:
                for r in range(span):
                    dst0 = ptr_of(tile, (((i * taps + t0) * 2) * span + r) * width)
                    dst1 = ptr_of(tile, (((i * taps + t0) * 2 + 1) * span + r) * width)
                    s1 = _source(row_lo * stride1 - pad1 + r, size1, mode1)
                    if s0 < 0 or s1 < 0:
                        _zero_run(dst0, 0, written)
                        _zero_run(dst1, 0, written)
                        continue
                    src_off = (((plane0 + i) * size0 + s0) * size1 + s1) * size2
                    if in_group == 1:
                        for c in range(0, size2, step):
                            prefetch(src, src_off + ahead_elements + c)
                    _copy_phase_pair(src, src_off, size2, pad2, mode2, extent, dst0, dst1,
                                     written)
                continue
            for phase in range(phases):
                inside_lo, inside_hi = _inside(phase - pad2, stride2, size2, extent)
                for r in range(span):
                    dst = ptr_of(tile, (((i * taps + t0) * phases + phase) * span + r) * width)
                    s1 = _source(row_lo * stride1 - pad1 + r, size1, mode1)
                    if s0 < 0 or s1 < 0:
                        _zero_run(dst, 0, written)
                        continue
                    src_off = (((plane0 + i) * size0 + s0) * size1 + s1) * size2
                    if in_group == 1 and phase == 0:
                        for c in range(0, size2, step):
                            prefetch(src, src_off + ahead_elements + c)
                    _copy_phase_row(src, src_off, size2, phase - pad2, stride2, inside_lo,
                                    inside_hi, mode2, extent, dst, written)


@inlined
def _store_vector(out, off, vec, bias, count):
    """Store the leading ``count`` lanes of ``vec + bias`` (nothing when ``count <= 0``)."""
    vstore_leading(out, off, vadd(vec, vbroadcast(bias)), count)


@inlined
def _store_row(out, off, count, a0, a1, a2, a3, bias):
    """Store ``count`` (<= 4 vectors) leading columns of a strip, adding ``bias``.

    Whole vectors use plain stores; only a row's last partial vector is stored masked.
    """
    lanes = vlanes(out)
    _store_vector(out, off, a0, bias, count)
    _store_vector(out, off + lanes, a1, bias, count - lanes)
    _store_vector(out, off + 2 * lanes, a2, bias, count - 2 * lanes)
    _store_vector(out, off + 3 * lanes, a3, bias, count - 3 * lanes)


@inlined
def _strip_pair(tile, weights, w_base, in_group, taps0, taps1, taps2, span, width, dilation1,
                dilation2, row_step, row, col, out, out_off, out_step, count, two, bias):
    """Output columns ``[col, col + count)`` of one or (``two``) two rows, four vectors each.

    ``row`` is the tile row of the first output row's first tap; the second output row
    reads ``row_step`` tile rows further.
    """
    lanes = vlanes(tile)
    a0 = vzero(tile)
    a1 = vzero(tile)
    a2 = vzero(tile)
    a3 = vzero(tile)
    b0 = vzero(tile)
    b1 = vzero(tile)
    b2 = vzero(tile)
    b3 = vzero(tile)
    w_off = w_base
    for i in range(in_group):
        for t0 in range(taps0):
            plane = (i * taps0 + t0) * span
            for t1 in range(taps1):
                top = (plane + row + t1 * dilation1) * width + col
                below = top + row_step * width
                for t2 in range(taps2):
                    w = vbroadcast(weights[w_off])
                    w_off += 1
                    off = top + t2 * dilation2
                    a0 = vfma(w, vload(tile, off), a0)
                    a1 = vfma(w, vload(tile, off + lanes), a1)
                    a2 = vfma(w, vload(tile, off + 2 * lanes), a2)
                    a3 = vfma(w, vload(tile, off + 3 * lanes), a3)
                    if two:
                        off = below + t2 * dilation2
                        b0 = vfma(w, vload(tile, off), b0)
                        b1 = vfma(w, vload(tile, off + lanes), b1)
                        b2 = vfma(w, vload(tile, off + 2 * lanes), b2)
                        b3 = vfma(w, vload(tile, off + 3 * lanes), b3)
    _store_row(out, out_off, count, a0, a1, a2, a3, bias)
    if two:
        _store_row(out, out_off + out_step, count, b0, b1, b2, b3, bias)


@inlined
def _strip_narrow(tile, weights, w_base, in_group, taps0, taps1, taps2, span, width,
                  dilation1, dilation2, row_step, row, out, out_off, out_step, cols, rows,
                  across, bias):
    """Rows of at most ``across`` (1 or 2) vectors, ``8 // across`` of them at a time.

    Eight accumulators, as :func:`_strip_pair`, arranged down the rows instead of along
    them (a 28-column row filled two of its four vectors). Output rows ``[0, rows)`` of the
    block are stored; its rows past them repeat the last one (computed, never stored), so
    every tile row read belongs to the task.
    """
    lanes = vlanes(tile)
    step = row_step * width
    last = rows - 1
    # tile offset of accumulator k: row k // across (clamped), vector k % across
    o1 = min(1 // across, last) * step + (1 % across) * lanes
    o2 = min(2 // across, last) * step + (2 % across) * lanes
    o3 = min(3 // across, last) * step + (3 % across) * lanes
    o4 = min(4 // across, last) * step + (4 % across) * lanes
    o5 = min(5 // across, last) * step + (5 % across) * lanes
    o6 = min(6 // across, last) * step + (6 % across) * lanes
    o7 = min(7 // across, last) * step + (7 % across) * lanes
    a0 = vzero(tile)
    a1 = vzero(tile)
    a2 = vzero(tile)
    a3 = vzero(tile)
    a4 = vzero(tile)
    a5 = vzero(tile)
    a6 = vzero(tile)
    a7 = vzero(tile)
    w_off = w_base
    for i in range(in_group):
        for t0 in range(taps0):
            plane = (i * taps0 + t0) * span
            for t1 in range(taps1):
                top = (plane + row + t1 * dilation1) * width
                for t2 in range(taps2):
                    w = vbroadcast(weights[w_off])
                    w_off += 1
                    off = top + t2 * dilation2
                    a0 = vfma(w, vload(tile, off), a0)
                    a1 = vfma(w, vload(tile, off + o1), a1)
                    a2 = vfma(w, vload(tile, off + o2), a2)
                    a3 = vfma(w, vload(tile, off + o3), a3)
                    a4 = vfma(w, vload(tile, off + o4), a4)
                    a5 = vfma(w, vload(tile, off + o5), a5)
                    a6 = vfma(w, vload(tile, off + o6), a6)
                    a7 = vfma(w, vload(tile, off + o7), a7)
    if across == 2:
        _store_vector(out, out_off, a0, bias, cols)
        _store_vector(out, out_off + lanes, a1, bias, cols - lanes)
        for k in range(1, min(rows, 4)):
            v0, v1 = (a2, a3) if k == 1 else (a4, a5) if k == 2 else (a6, a7)
            _store_vector(out, out_off + k * out_step, v0, bias, cols)
            _store_vector(out, out_off + k * out_step + lanes, v1, bias, cols - lanes)
    else:
        _store_vector(out, out_off, a0, bias, cols)
        for k in range(1, min(rows, 8)):
            v = a1 if k == 1 else a2 if k == 2 else a3 if k == 3 else a4 if k == 4 else \
                a5 if k == 5 else a6 if k == 6 else a7
            _store_vector(out, out_off + k * out_step, v, bias, cols)


@inlined
def store_channel(out, off, v0, v1, bias, count):
    """Store the leading ``count`` (<= 2 vectors) columns of ``[v0, v1] + bias`` at ``out[off:]``.

    One output channel's strip (also the pointwise kernel's).
    """
    lanes = vlanes(out)
    _store_vector(out, off, v0, bias, count)
    _store_vector(out, off + lanes, v1, bias, count - lanes)


@helper
def _strip_channels(tile, packed, p_base, in_group, taps0, taps1, taps2, span, width,
                    dilation1, dilation2, row, col, out, out_off, channel_step, count, bias):
    """Output columns ``[col, col + count)`` (two vectors) of one row, six output channels.

    Per tap: two vector loads of the tile, six weight broadcasts, twelve multiply-adds
    (the dense micro-kernel's register tile, on channels-first data). ``packed[p_base:]``
    holds the block's weights, six per (input channel, tap); output channel ``k`` of the
    block is stored ``k * channel_step`` after ``out_off``.
    """
    lanes = vlanes(tile)
    a00, a01, a10, a11 = vzero(tile), vzero(tile), vzero(tile), vzero(tile)
    a20, a21, a30, a31 = vzero(tile), vzero(tile), vzero(tile), vzero(tile)
    a40, a41, a50, a51 = vzero(tile), vzero(tile), vzero(tile), vzero(tile)
    w_off = p_base
    for i in range(in_group):
        for t0 in range(taps0):
            plane = (i * taps0 + t0) * span
            for t1 in range(taps1):
                top = (plane + row + t1 * dilation1) * width + col
                for t2 in range(taps2):
                    off = top + t2 * dilation2
                    x0 = vload(tile, off)
                    x1 = vload(tile, off + lanes)
                    w = vbroadcast(packed[w_off])
                    a00 = vfma(w, x0, a00)
                    a01 = vfma(w, x1, a01)
                    w = vbroadcast(packed[w_off + 1])
                    a10 = vfma(w, x0, a10)
                    a11 = vfma(w, x1, a11)
                    w = vbroadcast(packed[w_off + 2])
                    a20 = vfma(w, x0, a20)
                    a21 = vfma(w, x1, a21)
                    w = vbroadcast(packed[w_off + 3])
                    a30 = vfma(w, x0, a30)
                    a31 = vfma(w, x1, a31)
                    w = vbroadcast(packed[w_off + 4])
                    a40 = vfma(w, x0, a40)
                    a41 = vfma(w, x1, a41)
                    w = vbroadcast(packed[w_off + 5])
                    a50 = vfma(w, x0, a50)
                    a51 = vfma(w, x1, a51)
                    w_off += CHANNEL_BLOCK
    store_channel(out, out_off, a00, a01, bias[0], count)
    store_channel(out, out_off + channel_step, a10, a11, bias[1], count)
    store_channel(out, out_off + 2 * channel_step, a20, a21, bias[2], count)
    store_channel(out, out_off + 3 * channel_step, a30, a31, bias[3], count)
    store_channel(out, out_off + 4 * channel_step, a40, a41, bias[4], count)
    store_channel(out, out_off + 5 * channel_step, a50, a51, bias[5], count)


@helper
def _strip_channels8(tile, packed, p_base, in_group, taps0, taps1, taps2, span, width,
                     dilation1, dilation2, row, col, out, out_off, channel_step, count, bias):
    """:func:`_strip_channels` for blocks of eight output channels (16 accumulators).

    Per tap: two vector loads of the tile, eight weight broadcasts, sixteen multiply-adds.
    """
    lanes = vlanes(tile)
    a00, a01, a10, a11 = vzero(tile), vzero(tile), vzero(tile), vzero(tile)
    a20, a21, a30, a31 = vzero(tile), vzero(tile), vzero(tile), vzero(tile)
    a40, a41, a50, a51 = vzero(tile), vzero(tile), vzero(tile), vzero(tile)
    a60, a61, a70, a71 = vzero(tile), vzero(tile), vzero(tile), vzero(tile)
    w_off = p_base
    for i in range(in_group):
        for t0 in range(taps0):
            plane = (i * taps0 + t0) * span
            for t1 in range(taps1):
                top = (plane + row + t1 * dilation1) * width + col
                for t2 in range(taps2):
                    off = top + t2 * dilation2
                    x0 = vload(tile, off)
                    x1 = vload(tile, off + lanes)
                    w = vbroadcast(packed[w_off])
                    a00 = vfma(w, x0, a00)
                    a01 = vfma(w, x1, a01)
                    w = vbroadcast(packed[w_off + 1])
                    a10 = vfma(w, x0, a10)
                    a11 = vfma(w, x1, a11)
                    w = vbroadcast(packed[w_off + 2])
                    a20 = vfma(w, x0, a20)
                    a21 = vfma(w, x1, a21)
                    w = vbroadcast(packed[w_off + 3])
                    a30 = vfma(w, x0, a30)
                    a31 = vfma(w, x1, a31)
                    w = vbroadcast(packed[w_off + 4])
                    a40 = vfma(w, x0, a40)
                    a41 = vfma(w, x1, a41)
                    w = vbroadcast(packed[w_off + 5])
                    a50 = vfma(w, x0, a50)
                    a51 = vfma(w, x1, a51)
                    w = vbroadcast(packed[w_off + 6])
                    a60 = vfma(w, x0, a60)
                    a61 = vfma(w, x1, a61)
                    w = vbroadcast(packed[w_off + 7])
                    a70 = vfma(w, x0, a70)
                    a71 = vfma(w, x1, a71)
                    w_off += 8
    store_channel(out, out_off, a00, a01, bias[0], count)
    store_channel(out, out_off + channel_step, a10, a11, bias[1], count)
    store_channel(out, out_off + 2 * channel_step, a20, a21, bias[2], count)
    store_channel(out, out_off + 3 * channel_step, a30, a31, bias[3], count)
    store_channel(out, out_off + 4 * channel_step, a40, a41, bias[4], count)
    store_channel(out, out_off + 5 * channel_step, a50, a51, bias[5], count)
    store_channel(out, out_off + 6 * channel_step, a60, a61, bias[6], count)
    store_channel(out, out_off + 7 * channel_step, a70, a71, bias[7], count)


@helper
def _strip_triple(tile, packed, p_base, in_group, taps0, taps1, taps2, span, width,
                  dilation1, dilation2, row, col, out, out_off, channel_step, count, bias,
                  channels):
    """Output columns ``[col, col + count)`` (four vectors) of one row, three output channels.

    Per tap: four vector loads of the tile, three weight broadcasts, twelve multiply-adds
    (a channel at a time would take one load per multiply-add). ``packed[p_base:]`` holds
    the block's weights, three per (input channel, tap); the first ``channels`` (1 to 3)
    are stored, channel ``k`` at ``k * channel_step`` after ``out_off``.
    """
    lanes = vlanes(tile)
    a00, a01, a02, a03 = vzero(tile), vzero(tile), vzero(tile), vzero(tile)
    a10, a11, a12, a13 = vzero(tile), vzero(tile), vzero(tile), vzero(tile)
    a20, a21, a22, a23 = vzero(tile), vzero(tile), vzero(tile), vzero(tile)
    w_off = p_base
    for i in range(in_group):
        for t0 in range(taps0):
            plane = (i * taps0 + t0) * span
            for t1 in range(taps1):
                top = (plane + row + t1 * dilation1) * width + col
                for t2 in range(taps2):
                    # three weights held, one tile vector at a time: 12 accumulators +
                    # 3 weights + 1 operand fill the 16 AVX2 registers without spills
                    off = top + t2 * dilation2
                    w0 = vbroadcast(packed[w_off])
                    w1 = vbroadcast(packed[w_off + 1])
                    w2 = vbroadcast(packed[w_off + 2])
                    x = vload(tile, off)
                    a00 = vfma(w0, x, a00)
                    a10 = vfma(w1, x, a10)
                    a20 = vfma(w2, x, a20)
                    x = vload(tile, off + lanes)
                    a01 = vfma(w0, x, a01)
                    a11 = vfma(w1, x, a11)
                    a21 = vfma(w2, x, a21)
                    x = vload(tile, off + 2 * lanes)
                    a02 = vfma(w0, x, a02)
                    a12 = vfma(w1, x, a12)
                    a22 = vfma(w2, x, a22)
                    x = vload(tile, off + 3 * lanes)
                    a03 = vfma(w0, x, a03)
                    a13 = vfma(w1, x, a13)
                    a23 = vfma(w2, x, a23)
                    w_off += TRIPLE
    _store_row(out, out_off, count, a00, a01, a02, a03, bias[0])
    if channels > 1:
        _store_row(out, out_off + channel_step, count, a10, a11, a12, a13, bias[1])
    if channels > 2:
        _store_row(out, out_off + 2 * channel_step, count, a20, a21, a22, a23, bias[2])


@inlined
def _strip_row_pair(tile, packed, p_base, p_next, in_group, taps0, taps1, taps2, span, width,
                    dilation1, dilation2, row_step, row, out, out_off, out_step,
                    channel_step, count, bias, channels, four):
    """Three (or, with ``four``, four) output channels of two rows of at most two vectors.

    The rows are at most ``count`` (<= two vectors) columns wide: per tap, four vector
    loads of the tile (two per row, the second row ``row_step`` tile rows below the
    first), one weight broadcast per channel and a multiply-add per channel and vector, so
    no lane is spent past the end of a narrow row (28 columns of 16 lanes fill 88% of two
    vectors, 44% of a four-vector strip). ``packed[p_base:]`` holds a triple's weights
    (:func:`pack_channel_triples`), of which the first ``channels`` are stored; with
    ``four`` (a compile-time constant), the first channel of the next triple,
    ``packed[p_next:]``, is the fourth (a group's four leftover channels, packed as a
    triple and a padded one: no multiply-add on the padding). Channel ``k`` of the first
    row is stored ``k * channel_step`` after ``out_off``, the second row ``out_step``
    after the first.
    """
    lanes = vlanes(tile)
    a00, a01, b00, b01 = vzero(tile), vzero(tile), vzero(tile), vzero(tile)
    a10, a11, b10, b11 = vzero(tile), vzero(tile), vzero(tile), vzero(tile)
    a20, a21, b20, b21 = vzero(tile), vzero(tile), vzero(tile), vzero(tile)
    a30, a31, b30, b31 = vzero(tile), vzero(tile), vzero(tile), vzero(tile)
    w_off = 0
    for i in range(in_group):
        for t0 in range(taps0):
            plane = (i * taps0 + t0) * span
            for t1 in range(taps1):
                top = (plane + row + t1 * dilation1) * width
                below = top + row_step * width
                for t2 in range(taps2):
                    off = top + t2 * dilation2
                    low = below + t2 * dilation2
                    w0 = vbroadcast(packed[p_base + w_off])
                    w1 = vbroadcast(packed[p_base + w_off + 1])
                    w2 = vbroadcast(packed[p_base + w_off + 2])
                    x = vload(tile, off)
                    a00 = vfma(w0, x, a00)
                    a10 = vfma(w1, x, a10)
                    a20 = vfma(w2, x, a20)
                    y = vload(tile, off + lanes)
                    a01 = vfma(w0, y, a01)
                    a11 = vfma(w1, y, a11)
                    a21 = vfma(w2, y, a21)
                    u = vload(tile, low)
                    b00 = vfma(w0, u, b00)
                    b10 = vfma(w1, u, b10)
                    b20 = vfma(w2, u, b20)
                    v = vload(tile, low + lanes)
                    b01 = vfma(w0, v, b01)
                    b11 = vfma(w1, v, b11)
                    b21 = vfma(w2, v, b21)
                    if four:
                        w3 = vbroadcast(packed[p_next + w_off])
                        a30 = vfma(w3, x, a30)
                        a31 = vfma(w3, y, a31)
                        b30 = vfma(w3, u, b30)
                        b31 = vfma(w3, v, b31)
                    w_off += TRIPLE
    store_channel(out, out_off, a00, a01, bias[0], count)
    store_channel(out, out_off + out_step, b00, b01, bias[0], count)
    if channels > 1:
        store_channel(out, out_off + channel_step, a10, a11, bias[1], count)
        store_channel(out, out_off + channel_step + out_step, b10, b11, bias[1], count)
    if channels > 2:
        store_channel(out, out_off + 2 * channel_step, a20, a21, bias[2], count)
        store_channel(out, out_off + 2 * channel_step + out_step, b20, b21, bias[2], count)
    if four:
        store_channel(out, out_off + 3 * channel_step, a30, a31, bias[3], count)
        store_channel(out, out_off + 3 * channel_step + out_step, b30, b31, bias[3], count)


@helper
def _strip_triple_rows(tile, packed, p_base, in_group, taps0, taps1, taps2, span, width,
                       dilation1, dilation2, row_step, row, out, out_off, out_step,
                       channel_step, count, bias, channels):
    """:func:`_strip_row_pair` for a triple: twelve accumulators."""
    _strip_row_pair(tile, packed, p_base, p_base, in_group, taps0, taps1, taps2, span, width,
                    dilation1, dilation2, row_step, row, out, out_off, out_step, channel_step,
                    count, bias, channels, False)


@inlined
def _quad_pairs(tile, packed, p_base, p_next, in_group, taps0, taps1, taps2, span, width,
                dilation1, dilation2, row_step, pairs, out, out_off, out_step, channel_step,
                count, bias, src, ahead, ahead_count, ahead_step, ahead_planes):
    """Every row pair of :func:`_strip_quad_rows`, each prefetching its share ahead."""
    for k in range(pairs):
        if ahead_count > 0:
            _prefetch_share(src, ahead, ahead_count, ahead_step, ahead_planes, k, pairs)
        _strip_row_pair(tile, packed, p_base, p_next, in_group, taps0, taps1, taps2, span,
                        width, dilation1, dilation2, row_step, 2 * k * row_step, out,
                        out_off + 2 * k * out_step, out_step, channel_step, count, bias, 3,
                        True)


@helper
def _strip_quad_rows(tile, packed, p_base, p_next, in_group, taps0, taps1, taps2, span,
                     width, dilation1, dilation2, row_step, pairs, out, out_off, out_step,
                     channel_step, count, bias, src, ahead, ahead_count, ahead_step,
                     ahead_planes):
    """:func:`_strip_row_pair` for four channels (16 accumulators: :data:`QUAD_STRIPS`).

    ``pairs`` row pairs from the tile's first row, in one call per task (a call per pair,
    with its 20 arguments, was a tenth of a grouped layer's time). The pairs prefetch, a
    share each, ``ahead_planes`` runs of ``ahead_count`` elements of ``src``,
    ``ahead_step`` apart from ``ahead``: the next task's source rows, which its tile fill
    had waited on. A 3-tap unit-step row of taps is unrolled (a constant count).
    """
    if taps2 == 3 and dilation2 == 1:
        _quad_pairs(tile, packed, p_base, p_next, in_group, taps0, taps1, 3, span, width,
                    dilation1, 1, row_step, pairs, out, out_off, out_step, channel_step,
                    count, bias, src, ahead, ahead_count, ahead_step, ahead_planes)
    else:
        _quad_pairs(tile, packed, p_base, p_next, in_group, taps0, taps1, taps2, span, width,
                    dilation1, dilation2, row_step, pairs, out, out_off, out_step,
                    channel_step, count, bias, src, ahead, ahead_count, ahead_step,
                    ahead_planes)


@helper
def _narrow_strips(tile, weights, w_base, in_group, taps0, taps1, taps2, span, width,
                   dilation1, row_step, rows, cols, out, out_off, out_step, bias):
    """Every :func:`_strip_narrow` block of one output channel (rows of <= 2 vectors).

    For a column step of 1 (a constant in the strips, see :func:`_strip_rows`). Compiled
    once as a function of its own: spliced into :func:`_strip_rows`, its IR (with two
    strips inlined) cost 1.2 s of cold compile to copy.
    """
    if cols <= vlanes(tile):
        for q in range(0, rows, 8):
            _strip_narrow(tile, weights, w_base, in_group, taps0, taps1, taps2, span, width,
                          dilation1, 1, row_step, q * row_step, out,
                          out_off + q * out_step, out_step, cols, min(8, rows - q), 1, bias)
    else:
        for q in range(0, rows, 4):
            _strip_narrow(tile, weights, w_base, in_group, taps0, taps1, taps2, span, width,
                          dilation1, 1, row_step, q * row_step, out,
                          out_off + q * out_step, out_step, cols, min(4, rows - q), 2, bias)


@inlined
def _channel_strips(tile, weights, w_base, in_group, taps0, taps1, taps2, span, width,
                    dilation1, dilation2, row_step, rows, cols, out, out_off, out_step, bias):
    """Every strip of one output channel's ``rows`` x ``cols`` block: rows two at a time."""
    step = STRIP_VECTORS * vlanes(tile)
    for q in range(0, rows - 1, 2):
        for col in range(0, cols, step):
            _strip_pair(tile, weights, w_base, in_group, taps0, taps1, taps2, span, width,
                        dilation1, dilation2, row_step, q * row_step, col, out,
                        out_off + q * out_step + col, out_step, cols - col, True, bias)
    if rows % 2 == 1:
        q = rows - 1
        for col in range(0, cols, step):
            _strip_pair(tile, weights, w_base, in_group, taps0, taps1, taps2, span, width,
                        dilation1, dilation2, row_step, q * row_step, col, out,
                        out_off + q * out_step + col, out_step, cols - col, False, bias)


@helper
def _strip_rows(tile, weights, w_base, in_group, taps0, taps1, taps2, span, width, dilation1,
                dilation2, row_step, rows, cols, out, out_off, out_step, bias):
    """One output channel's block of ``rows`` rows of ``cols`` columns, by :func:`_strip_pair`.

    The rows are ``out_step`` apart from ``out_off``; the tile's first row is the first
    output row's first tap, each next output row ``row_step`` tile rows further.

    One call per channel and task (a call per strip cost more than the strip's 72
    multiply-adds of a depthwise 3x3 layer); a constant tap count (3) lets LLVM unroll the
    innermost loop completely, and the one- and two-row strips are separate copies with no
    branch in their loops. Rows of at most two vectors (or one) run four (or eight) at a
    time (:func:`_strip_narrow`) when the column step is 1, a constant then (each row's taps
    are one pointer and displacements; with a runtime step LLVM spilled a pointer per tap
    and row, and a copy for other steps cost 5 s of cold compile). Compiled once as a
    separate function (inlining every variant into the kernels made them take minutes to
    compile).
    """
    if cols <= 2 * vlanes(tile) and dilation2 == 1:
        _narrow_strips(tile, weights, w_base, in_group, taps0, taps1, taps2, span, width,
                       dilation1, row_step, rows, cols, out, out_off, out_step, bias)
    elif taps2 == 3:
        _channel_strips(tile, weights, w_base, in_group, taps0, taps1, 3, span, width,
                        dilation1, dilation2, row_step, rows, cols, out, out_off, out_step,
                        bias)
    else:
        _channel_strips(tile, weights, w_base, in_group, taps0, taps1, taps2, span, width,
                        dilation1, dilation2, row_step, rows, cols, out, out_off, out_step,
                        bias)


@inlined
def _shifted(tile, off, step):
    """The vectors at ``off``, ``off + step`` and ``off + 2 * step`` of the tile."""
    return vload(tile, off), vload(tile, off + step), vload(tile, off + 2 * step)


@inlined
def _three_taps(w0, w1, w2, x0, x1, x2, acc):
    """``acc + w0 * x0 + w1 * x1 + w2 * x2``, one rounding per term, in that order."""
    return vfma(w2, x2, vfma(w1, x1, vfma(w0, x0, acc)))


@inlined
def _filter3x3(weights, w_base):
    """The nine taps of a 3x3 filter at ``weights[w_base:]``, each broadcast to a vector."""
    return (vbroadcast(weights[w_base]), vbroadcast(weights[w_base + 1]),
            vbroadcast(weights[w_base + 2]), vbroadcast(weights[w_base + 3]),
            vbroadcast(weights[w_base + 4]), vbroadcast(weights[w_base + 5]),
            vbroadcast(weights[w_base + 6]), vbroadcast(weights[w_base + 7]),
            vbroadcast(weights[w_base + 8]))


@inlined
def _walk_row(w, x0, x1, x2, p1, p2):
    """One input row's vector (shifted by tap columns 0, 1, 2) in a walk down the rows.

    It completes the output row two above (``p2``: tap rows 0 and 1 done), continues the
    one above (``p1``: tap row 0 done) and starts its own. Returns ``(completed, p2, p1)``
    for the next row; ``w`` is :func:`_filter3x3`'s nine taps.
    """
    return (_three_taps(w[6], w[7], w[8], x0, x1, x2, p2),
            _three_taps(w[3], w[4], w[5], x0, x1, x2, p1),
            _three_taps(w[0], w[1], w[2], x0, x1, x2, vzero(x0)))


@inlined
def _slide3x3(tile, off, width, dilation2, rows, w, out, out_off, out_step, count, bias, src,
              ahead, ahead_step):
    """``rows`` output rows of two vectors of columns of a 3x3 filter, walking down the tile.

    Each input row is loaded once (three shifted loads per vector) and feeds the three
    output rows that read it: it completes the row two above, continues the one above and
    starts its own, so two partial sums per vector ride along the walk (``p2``: taps rows 0
    and 1 done, ``p1``: row 0 done). Three loads per nine multiply-adds, where a strip of
    rows (:func:`_strip_pair`) loads once per multiply-add. Each output sums its taps in the
    strip's order (tap rows, then tap columns, from zero), so the results are the same bits.
    Input row ``r`` also prefetches ``src[ahead + r * ahead_step:][:ahead_step]``; ``w``
    is :func:`_filter3x3`'s nine taps.
    """
    lanes = vlanes(tile)
    zero = vzero(tile)
    p1a, p1b, p2a, p2b = zero, zero, zero, zero
    # the first two input rows start the walk: their "completed" rows are not stored
    for q in range(-2, rows):
        for k in range(ahead + (q + 2) * ahead_step, ahead + (q + 3) * ahead_step, lanes):
            prefetch(src, k)
        x0, x1, x2 = _shifted(tile, off, dilation2)
        y0, y1, y2 = _shifted(tile, off + lanes, dilation2)
        off += width
        oa, p2a, p1a = _walk_row(w, x0, x1, x2, p1a, p2a)
        ob, p2b, p1b = _walk_row(w, y0, y1, y2, p1b, p2b)
        if q >= 0:
            at = out_off + q * out_step
            _store_vector(out, at, oa, bias, count)
            _store_vector(out, at + lanes, ob, bias, count - lanes)


@helper
def _slide_rows3x3(tile, weights, w_base, width, dilation2, rows, cols, out, out_off,
                   out_step, bias, src, ahead, ahead_count):
    """One output channel's ``rows`` x ``cols`` block of a single-input-channel 3x3 filter.

    Unit row stride and dilation; by :func:`_slide3x3`, two vectors of columns at a time
    (the tile's first row is the first output row's first tap row). The walks prefetch
    ``src[ahead:ahead + ahead_count]`` (the next task's rows), a part per input row of
    every walk: crammed into the first walk, a wide image's prefetches slowed it.
    """
    lanes = vlanes(tile)
    walk = rows + 2  # input rows of a walk
    steps = (cols + 2 * lanes - 1) // (2 * lanes) * walk * lanes  # of all walks, in vectors
    ahead_step = (ahead_count + steps - 1) // steps * lanes
    w = _filter3x3(weights, w_base)
    for col in range(0, cols, 2 * lanes):
        _slide3x3(tile, col, width, dilation2, rows, w, out, out_off + col, out_step,
                  cols - col, bias, src, ahead + col // (2 * lanes) * walk * ahead_step,
                  ahead_step)


@inlined
def _reads_in_place(geom):
    """Whether a depthwise 3x3 filter reads the input's own rows (no tile).

    :func:`_direct_rows3x3` and :func:`_direct_dots3x3`, on 32-register hosts, with unit
    column stride and dilation and zero padding along the rows and columns, one column of
    it on the left (the unit row stride and dilation are the caller's to check).
    """
    return (DIRECT_SLIDES and geom[2, STRIDE] == 1 and geom[2, DILATION] == 1
            and geom[2, PAD_LOW] == 1
            and geom[1, MODE] == _ZEROS and geom[2, MODE] == _ZEROS)


@inlined
def _plane_offset(geom, plane, q0, size0, size1, size2):
    """Offset of the input plane that output plane ``q0`` of channel ``plane`` reads.

    One tap along ``D0``; -1 when that plane is padding.
    """
    s0 = _source(q0 * geom[0, STRIDE] - geom[0, PAD_LOW], size0, geom[0, MODE])
    return (plane * size0 + s0) * size1 * size2 if s0 >= 0 else -1


@inlined
def _row_vector(src, row_off, k, size2, inside):
    """Vector ``k`` of the input row at ``row_off``, zeros outside the row.

    Lanes past its ``size2`` columns or before its start, or the whole vector when the row
    is not ``inside`` the input (a zero pad), are zeros.
    """
    lanes = vlanes(src)
    count = size2 - k * lanes
    if not inside or k < 0 or count <= 0:
        return vzero(src)
    if count >= lanes:
        return vload(src, row_off + k * lanes)
    return vload_masked(src, row_off + k * lanes, count)


@helper
def _direct_rows3x3(src, plane_off, size1, size2, row_lo, row_hi, pad1, weights, w_base, out,
                    out_off, cols, bias):
    """Output rows ``[row_lo, row_hi)`` of a depthwise 3x3 filter, from the input's rows.

    The input plane starts at ``src[plane_off]`` (``size1`` rows of ``size2`` columns; a
    negative ``plane_off``: a plane of zero padding); output row ``q`` reads input rows
    ``q - pad1 + t1`` and output column ``c`` input columns ``c - 1 + t2``, zeros outside.
    The output block starts at ``out[out_off]`` (rows of ``cols``). Four vectors of
    columns walk down the rows as in :func:`_slide3x3` (the same sums in the same order, so
    the same bits as the tile's walk), each input row loaded once, its left and right
    neighbours slid in from the adjacent vectors. The first walk prefetches
    :data:`DIRECT_AHEAD_BYTES` ahead of each row it reads.
    """
    w = _filter3x3(weights, w_base)
    lanes = vlanes(src)
    zero = vzero(src)
    ahead = DIRECT_AHEAD_BYTES * lanes // (VECTOR_BITS // 8)  # elements
    for k in range(0, (cols + lanes - 1) // lanes, 4):
        p1a, p1b, p1c, p1d = zero, zero, zero, zero  # tap row 0 done
        p2a, p2b, p2c, p2d = zero, zero, zero, zero  # tap rows 0 and 1 done
        for r in range(row_lo - pad1, row_hi - pad1 + 2):
            row_off = plane_off + r * size2
            if k == 0 and plane_off >= 0:
                for e in range(0, size2, lanes):
                    prefetch(src, row_off + ahead + e)
            inside = plane_off >= 0 and 0 <= r < size1
            before = _row_vector(src, row_off, k - 1, size2, inside)
            v0 = _row_vector(src, row_off, k, size2, inside)
            v1 = _row_vector(src, row_off, k + 1, size2, inside)
            v2 = _row_vector(src, row_off, k + 2, size2, inside)
            v3 = _row_vector(src, row_off, k + 3, size2, inside)
            after = _row_vector(src, row_off, k + 4, size2, inside)
            l0, l1, l2, l3 = vslide_up(before, v0), vslide_up(v0, v1), vslide_up(v1, v2), \
                vslide_up(v2, v3)
            r0, r1, r2, r3 = vslide_down(v0, v1), vslide_down(v1, v2), vslide_down(v2, v3), \
                vslide_down(v3, after)
            oa, p2a, p1a = _walk_row(w, l0, v0, r0, p1a, p2a)
            ob, p2b, p1b = _walk_row(w, l1, v1, r1, p1b, p2b)
            oc, p2c, p1c = _walk_row(w, l2, v2, r2, p1c, p2c)
            od, p2d, p1d = _walk_row(w, l3, v3, r3, p1d, p2d)
            q = r + pad1 - 2  # the output row this input row completes
            if q >= row_lo:
                at = out_off + (q - row_lo) * cols + k * lanes
                count = cols - k * lanes
                _store_row(out, at, count, oa, ob, oc, od, bias)


@register_jitable
def placed_size(full, start, step):
    """Positions ``start, start + step, ...`` below ``full`` (see :func:`planar_conv`).

    Examples
    --------
    >>> placed_size(56, 0, 1), placed_size(56, 1, 2), placed_size(5, 7, 2)
    (56, 28, 0)
    """
    return max(0, (full - start + step - 1) // step)


#: The placement of a result written to every position of its array.
WHOLE = np.array([[0, 0, 0], [1, 1, 1]], np.int64)
WHOLE.flags.writeable = False


@kernel
def planar_conv(src, weight, packed, packed3, bias, out, geom, place, row_block, tiles,
                task_at):
    """Channels-first convolution (column phases for a stride along the last dimension).

    ``out[n, g*Og + j, q] = bias[g*Og + j] + sum src[n, g*Ig + i, s(q, t)] *
    weight[g*Og + j, i, t]`` over ``i`` and the taps ``t`` whose source ``s`` (through
    the padding map) is not a zero pad. One task computes a block of ``row_block`` rows of
    every output channel of one group.

    Parameters
    ----------
    src : ndarray, shape (N, G*Ig, S0, S1, S2), C-contiguous
        Data read.
    weight : ndarray, shape (G*Og, Ig, T0, T1, T2), C-contiguous
        Kernel; with a stride along ``D2`` the column phases' kernel: ``T0`` is
        ``geom[0, TAPS]`` times the phases (:func:`_fill_tile`), ``T2`` and
        ``geom[2, DILATION]`` its taps and their step.
    packed : ndarray, shape (G * (Og // B), Ig, T0, T1, T2, B), C-contiguous
        The kernel in blocks of :data:`CHANNEL_BLOCK` output channels
        (:func:`pack_channel_blocks`); those channels run a block at a time.
    packed3 : ndarray, shape (G * nb, Ig, T0, T1, T2, 3), C-contiguous
        The channels of each group left over by the channel blocks, in zero-padded
        blocks of three (:func:`pack_channel_triples`), run three at a time; a single
        leftover channel runs alone.
    bias : ndarray, shape (G*Og,)
        Added to every output (zeros when there is no bias).
    out : ndarray, shape (N, G*Og, R0, R1, R2), C-contiguous
        Holds the result at the positions ``place`` gives (each written once).
    geom : ndarray of int64, shape (3, 9)
        Forward geometry record of each dimension (:func:`fastconv._plan.geometry`),
        the last dimension's taps and dilation those of ``weight`` (see above).
    place : ndarray of int64, shape (2, 3)
        Where the result ``(N, G*Og, Q0, Q1, Q2)`` lies in ``out``: output ``q`` along
        each dimension ``k`` at position ``place[0, k] + place[1, k] * q`` (``Q_k`` is
        :func:`placed_size` of ``R_k``). :data:`WHOLE` for all of ``out``; an adjoint's
        stride phase writes every ``stride``-th position of the input gradient in place
        (with a step along ``D2``, each task's rows through a buffer at the end of its
        thread's ``tiles`` row, ``Og * row_block * Q2`` elements).
    row_block : int
        Output rows (along ``Q1``) per task.
    tiles : ndarray, shape (threads, planar_tile_size(...)), C-contiguous
        One padded input tile per thread (``numba.get_thread_id()``), all zeros on entry:
        the tasks write each tile row's leading vectors only, so its slack (read by
        over-long strips, never stored) stays zero without being written again.
    task_at : int
        :data:`planar_task_address` of the dtype.
    """
    batch = out.shape[0]
    rows0 = placed_size(out.shape[2], place[0, 0], place[1, 0])
    rows1 = placed_size(out.shape[3], place[0, 1], place[1, 1])
    cols = placed_size(out.shape[4], place[0, 2], place[1, 2])
    n_tasks = batch * (src.shape[1] // weight.shape[1]) * rows0 * \
        ((rows1 + row_block - 1) // row_block)
    per = planar_tasks_per_chunk(n_tasks, batch * out.shape[1] * rows0 * rows1 * cols
                                 // max(n_tasks, 1) * weight[0].size)
    for chunk in prange((n_tasks + per - 1) // per):
        # the task function, called by address, is compiled once (see _jit.caller); one
        # call runs the chunk's tasks (a call passes ~130 words: on a depthwise 5x5 layer
        # of 28x28 planes, a call per task was a tenth of the time)
        _call_planar_task(task_at, (src, weight, packed, packed3, bias, out, geom, place,
                                    row_block, tiles, np.int64(chunk * per),
                                    np.int64(min(n_tasks, (chunk + 1) * per)),
                                    np.int64(numba.get_thread_id())))


@inlined
def _task_rows(task, n_blocks, rows0, groups, row_block, geom, c_in, size0, size1, size2,
               in_group, used):
    """Offset and element count (0 if none) of the source rows task ``task`` copies.

    For a single input channel and one tap along ``D0``: the rows are adjacent.
    """
    block = task % n_blocks
    rest = task // n_blocks
    q0 = rest % rows0
    rest //= rows0
    plane = (rest // groups) * c_in + (rest % groups) * in_group
    s0 = q0 * geom[0, STRIDE] - geom[0, PAD_LOW]
    first = max(0, block * row_block * geom[1, STRIDE] - geom[1, PAD_LOW])
    count = max(0, min(used, size1 - first)) * size2 if 0 <= s0 < size0 else 0
    return ((plane * size0 + max(s0, 0)) * size1 + first) * size2, count


@inlined
def _prefetch_share(src, at, count, plane_step, planes, part, parts):
    """Prefetch share ``part`` of ``parts`` of ``planes`` runs of ``count`` elements.

    The runs start ``plane_step`` apart from ``at``; a share is whole cache lines.
    """
    lanes = vlanes(src)
    lines = (count + lanes - 1) // lanes
    total = lines * planes
    lo = part * total // parts
    hi = (part + 1) * total // parts
    for k in range(lo, hi):
        plane = k // lines
        prefetch(src, at + plane * plane_step + (k - plane * lines) * lanes)


@helper
def _planar_conv_tasks(src, weight, packed, packed3, bias, out, geom, place, row_block, tiles,
                       first, last, tid):
    """Tasks ``first`` to ``last - 1`` of :func:`planar_conv` on thread ``tid``.

    The kernel's loop body, compiled once and called by address once per chunk of tasks.
    """
    # output channels: c_out computed, c_real written (inter = c_out // c_real interleaved
    # column phases each, see planar_conv)
    batch, c_out, c_real = out.shape[0], weight.shape[0], out.shape[1]
    inter = c_out // c_real
    rows0 = placed_size(out.shape[2], place[0, 0], place[1, 0])
    rows1 = placed_size(out.shape[3], place[0, 1], place[1, 1])
    cols = placed_size(out.shape[4], place[0, 2], place[1, 2])
    c_in, size0, size1, size2 = src.shape[1], src.shape[2], src.shape[3], src.shape[4]
    in_group, taps0, taps1, taps2 = weight.shape[1], weight.shape[2], weight.shape[3], \
        weight.shape[4]
    groups = c_in // in_group
    out_group = c_out // groups
    stride1, dilation1, dilation2 = geom[1, STRIDE], geom[1, DILATION], geom[2, DILATION]
    lanes = vlanes(out)
    extent = cols + dilation2 * (taps2 - 1)
    width = planar_tile_width(cols, taps2, dilation2, lanes)
    kernel_size = in_group * taps0 * taps1 * taps2
    # raw pointers: passing them to helpers costs no reference counting
    src_p = ptr_of(src, 0)
    w_p = ptr_of(weight, 0)
    p_p = ptr_of(packed, 0)
    p3_p = ptr_of(packed3, 0)
    n_blocks = (rows1 + row_block - 1) // row_block
    tile = ptr_of(tiles, tid * tiles.shape[1])
    blocks = out_group // CHANNEL_BLOCK
    triples = packed3.shape[0] // groups
    # a single input channel's 3x3 filter with unit steps over zero padding: a depthwise
    # layer's output channels each slide down the input itself (no tile)
    slides = in_group * taps0 == 1 and taps1 == 3 and taps2 == 3 and stride1 == 1 and \
        dilation1 == 1
    for task in range(first, last):
        out_p = ptr_of(out, 0)
        block = task % n_blocks
        rest = task // n_blocks
        q0 = rest % rows0
        rest //= rows0
        g = rest % groups
        n = rest // groups
        row_lo = block * row_block
        row_hi = min(rows1, row_lo + row_block)
        used = planar_tile_rows(row_hi - row_lo, stride1, taps1, dilation1)
        # output channel j of the group, row q1, column col is at out_p[o_base + j * o_plane +
        # (q1 - row_lo) * o_row + col]: in out itself, or (a step along D2) a buffer whose rows
        # are then spread into out
        full0, full1, full2 = out.shape[2], out.shape[3], out.shape[4]
        spread = place[1, 2] != 1 or inter > 1
        whole = not spread and place[1, 0] == 1 and place[1, 1] == 1 and place[0, 0] == 0 and \
            place[0, 1] == 0 and place[0, 2] == 0
        if spread:
            o_plane, o_row = (row_hi - row_lo) * cols, cols
            out_p = ptr_of(tiles, (tid + 1) * tiles.shape[1] - out_group * o_plane)
            o_base = 0
        else:
            o_plane, o_row = full0 * full1 * full2, place[1, 1] * full2
            o_base = ((((n * c_real + g * out_group) * full0 + place[0, 0] + place[1, 0] * q0)
                       * full1 + place[0, 1] + place[1, 1] * row_lo) * full2 + place[0, 2])
        if slides and blocks == 0 and triples == 0 and whole and _reads_in_place(geom):
            plane_off = _plane_offset(geom, n * c_in + g * in_group, q0, size0, size1, size2)
            for j in range(out_group):
                co = g * out_group + j
                _direct_rows3x3(src_p, plane_off, size1, size2, row_lo, row_hi, geom[1, PAD_LOW],
                                w_p, co * kernel_size, out_p, o_base + j * o_plane, cols,
                                bias[co])
            continue
        # the tile's slack is zeros already (see planar_conv): only the padded rows are written
        _fill_tile(src_p, n * c_in + g * in_group, size0, size1, size2, geom, q0, row_lo,
                   used, width, min(width, (extent + lanes - 1) // lanes * lanes), extent,
                   in_group, taps0, tile)
        # channel blocks innermost: a strip's input columns stay in L1 across the blocks
        for q1 in range(row_lo, row_hi):
            row = (q1 - row_lo) * stride1
            for col in range(0, cols, 2 * lanes):
                for jb in range(blocks):
                    co = g * out_group + jb * CHANNEL_BLOCK
                    p_base = (g * blocks + jb) * kernel_size * CHANNEL_BLOCK
                    out_off = o_base + jb * CHANNEL_BLOCK * o_plane + (q1 - row_lo) * o_row + col
                    if CHANNEL_BLOCK == 8:
                        _strip_channels8(tile, p_p, p_base, in_group, taps0, taps1, taps2, used,
                                         width, dilation1, dilation2, row, col, out_p, out_off,
                                         o_plane, cols - col, ptr_of(bias, co))
                    else:
                        _strip_channels(tile, p_p, p_base, in_group, taps0, taps1, taps2, used,
                                        width, dilation1, dilation2, row, col, out_p, out_off,
                                        o_plane, cols - col, ptr_of(bias, co))
        # rows of at most two vectors go two at a time, two vectors each (a last odd row as
        # any other row); four leftover channels (a triple and a padded one) then run at once
        paired = row_lo if cols > 2 * lanes else row_hi - (row_hi - row_lo) % 2
        quad = QUAD_STRIPS and paired > row_lo and out_group - blocks * CHANNEL_BLOCK == 4
        next_at, next_count = 0, 0
        if quad and taps0 == 1 and task + 1 < batch * groups * rows0 * n_blocks:
            next_at, next_count = _task_rows(task + 1, n_blocks, rows0, groups, row_block, geom,
                                              c_in, size0, size1, size2, in_group, used)
        pairs = (paired - row_lo) // 2
        for jt in range(triples):
            first = blocks * CHANNEL_BLOCK + jt * TRIPLE
            co = g * out_group + first
            p_base = (g * triples + jt) * kernel_size * TRIPLE
            if quad and jt == 0:
                _strip_quad_rows(tile, p3_p, p_base, p_base + kernel_size * TRIPLE, in_group,
                                 taps0, taps1, taps2, used, width, dilation1, dilation2, stride1,
                                 pairs, out_p, o_base + first * o_plane, o_row, o_plane, cols,
                                 ptr_of(bias, co), src_p, next_at, next_count,
                                 size0 * size1 * size2, in_group)
            for q1 in range(row_lo, paired if not quad else row_lo, 2):
                row = (q1 - row_lo) * stride1
                out_off = o_base + first * o_plane + (q1 - row_lo) * o_row
                _strip_triple_rows(tile, p3_p, p_base, in_group, taps0, taps1, taps2, used,
                                   width, dilation1, dilation2, stride1, row, out_p, out_off,
                                   o_row, o_plane, cols, ptr_of(bias, co),
                                   min(TRIPLE, out_group - first))
            for q1 in range(paired, row_hi):
                row = (q1 - row_lo) * stride1
                out_off = o_base + first * o_plane + (q1 - row_lo) * o_row
                for col in range(0, cols, STRIP_VECTORS * lanes):
                    _strip_triple(tile, p3_p, p_base, in_group, taps0, taps1, taps2, used,
                                  width, dilation1, dilation2, row, col, out_p, out_off + col,
                                  o_plane, cols - col, ptr_of(bias, co),
                                  min(TRIPLE, out_group - first))
        # a single input channel's 3x3 filter (depthwise) slides down the tile, fetching the
        # rows of the task after this one (the same thread's next, see planar_conv): its tile
        # fill had waited on them (a depthwise 3x3 layer: 2.4 -> 1.6 ms)
        ahead, ahead_count = 0, 0
        if slides and task + 1 < batch * groups * rows0 * n_blocks:
            ahead, ahead_count = _task_rows(task + 1, n_blocks, rows0, groups, row_block, geom,
                                            c_in, size0, size1, size2, in_group, used)
        for j in range(blocks * CHANNEL_BLOCK + triples * TRIPLE, out_group):
            co = g * out_group + j
            out_off = o_base + j * o_plane
            if slides:
                _slide_rows3x3(tile, w_p, co * kernel_size, width, dilation2, row_hi - row_lo,
                               cols, out_p, out_off, o_row, bias[co], src_p, ahead,
                               ahead_count if j == out_group - 1 else 0)
            else:
                _strip_rows(tile, w_p, co * kernel_size, in_group, taps0, taps1, taps2, used,
                            width, dilation1, dilation2, stride1, row_hi - row_lo, cols, out_p,
                            out_off, o_row, bias[co])
        if spread:
            _spread_rows(out_p, out_group, row_hi - row_lo, cols, inter, ptr_of(out, 0),
                         (((n * c_real + g * out_group // inter) * full0 + place[0, 0]
                           + place[1, 0] * q0) * full1 + place[0, 1] + place[1, 1] * row_lo)
                         * full2 + place[0, 2], full0 * full1 * full2, place[1, 1] * full2,
                         place[1, 2], full2 - place[0, 2])


@helper
def _spread_rows(rows, channels, count, cols, inter, out, out_off, channel_step, row_step,
                 step, limit):
    """Write ``channels`` x ``count`` rows of ``cols`` (C-contiguous at ``rows``) to ``out``.

    Row ``r`` of channel ``c * inter + p`` goes to ``out[out_off + c * channel_step + r *
    row_step + m * step + p]`` for the ``m < cols`` with ``m * step + p < limit``: the
    columns of an adjoint's stride phase, ``step`` apart, or ``inter`` of its column
    phases interleaved (two at a time as whole vectors).
    """
    lanes = vlanes(rows)
    for c in range(channels // inter):
        for r in range(count):
            dst_off = out_off + c * channel_step + r * row_step
            if inter == 2 and step == 2:
                even = (2 * c * count + r) * cols
                odd = even + count * cols
                for m in range(0, cols, lanes):
                    a = vload_masked(rows, even + m, cols - m)
                    b = vload_masked(rows, odd + m, cols - m)
                    vstore_leading(out, dst_off + 2 * m, vinterleave_low(a, b),
                                   limit - 2 * m)
                    vstore_leading(out, dst_off + 2 * m + lanes, vinterleave_high(a, b),
                                   limit - 2 * m - lanes)
                continue
            for p in range(inter):
                src_off = ((c * inter + p) * count + r) * cols
                for m in range(0, cols, lanes):
                    vstore_every(out, dst_off + m * step + p, step,
                                 vload_masked(rows, src_off + m, cols - m),
                                 min(cols - m, placed_size(limit - m * step, p, step)))


@inlined
def _dots8(grad, grad_off, tile, top, offsets, cols, rows, tile_step, acc, src, src_ahead,
           src_step, grad_ahead, grad_step, ahead):
    """Add the dot products of ``rows`` gradient rows with eight shifted tile rows each.

    Gradient row ``r`` is ``grad[grad_off + r * cols:][:cols]``; tap ``k`` reads the tile
    from ``top + r * tile_step + offsets[k]``. Eight independent vector accumulators, kept
    in registers over all the rows (on short rows, loading and storing them per row cost
    as much as the row's multiply-adds), one gradient load per eight FMAs; the masked tail
    reads nothing past ``cols`` in either operand, so data outside the window (even inf)
    never enters. The sums go to ``acc[0:8 * lanes]``. With ``ahead`` (a compile-time
    constant), row ``r`` also prefetches ``src[src_ahead + r * src_step:][:src_step]`` and
    the same part of ``grad`` from ``grad_ahead`` (the next row block's operands).
    """
    lanes = vlanes(tile)
    a0, a1, a2, a3 = vzero(tile), vzero(tile), vzero(tile), vzero(tile)
    a4, a5, a6, a7 = vzero(tile), vzero(tile), vzero(tile), vzero(tile)
    for r in range(rows):
        if ahead:
            _prefetch_part(src, src_ahead, src_step, r)
            _prefetch_part(grad, grad_ahead, grad_step, r)
        g_row = grad_off + r * cols
        t_row = top + r * tile_step
        o0, o1 = t_row + offsets[0], t_row + offsets[1]
        o2, o3 = t_row + offsets[2], t_row + offsets[3]
        o4, o5 = t_row + offsets[4], t_row + offsets[5]
        o6, o7 = t_row + offsets[6], t_row + offsets[7]
        for q in range(0, cols, lanes):
            rest = cols - q
            if rest >= lanes:
                g = vload(grad, g_row + q)
                a0 = vfma(g, vload(tile, o0 + q), a0)
                a1 = vfma(g, vload(tile, o1 + q), a1)
                a2 = vfma(g, vload(tile, o2 + q), a2)
                a3 = vfma(g, vload(tile, o3 + q), a3)
                a4 = vfma(g, vload(tile, o4 + q), a4)
                a5 = vfma(g, vload(tile, o5 + q), a5)
                a6 = vfma(g, vload(tile, o6 + q), a6)
                a7 = vfma(g, vload(tile, o7 + q), a7)
            else:
                g = vload_masked(grad, g_row + q, rest)
                a0 = vfma(g, vload_masked(tile, o0 + q, rest), a0)
                a1 = vfma(g, vload_masked(tile, o1 + q, rest), a1)
                a2 = vfma(g, vload_masked(tile, o2 + q, rest), a2)
                a3 = vfma(g, vload_masked(tile, o3 + q, rest), a3)
                a4 = vfma(g, vload_masked(tile, o4 + q, rest), a4)
                a5 = vfma(g, vload_masked(tile, o5 + q, rest), a5)
                a6 = vfma(g, vload_masked(tile, o6 + q, rest), a6)
                a7 = vfma(g, vload_masked(tile, o7 + q, rest), a7)
    _accumulate(acc, 0, a0)
    _accumulate(acc, lanes, a1)
    _accumulate(acc, 2 * lanes, a2)
    _accumulate(acc, 3 * lanes, a3)
    _accumulate(acc, 4 * lanes, a4)
    _accumulate(acc, 5 * lanes, a5)
    _accumulate(acc, 6 * lanes, a6)
    _accumulate(acc, 7 * lanes, a7)


@inlined
def _dots2(grad, grad_off, tile, top, offsets, cols, rows, tile_step, acc, src, src_ahead,
           src_step, grad_ahead, grad_step, ahead):
    """:func:`_dots8` for two taps (two accumulators per tap, combined in order)."""
    lanes = vlanes(tile)
    a0, a1, b0, b1 = vzero(tile), vzero(tile), vzero(tile), vzero(tile)
    for r in range(rows):
        if ahead:
            _prefetch_part(src, src_ahead, src_step, r)
            _prefetch_part(grad, grad_ahead, grad_step, r)
        g_row = grad_off + r * cols
        t_row = top + r * tile_step
        o0, o1 = t_row + offsets[0], t_row + offsets[1]
        q = 0
        while q + 2 * lanes <= cols:
            g = vload(grad, g_row + q)
            h = vload(grad, g_row + q + lanes)
            a0 = vfma(g, vload(tile, o0 + q), a0)
            a1 = vfma(g, vload(tile, o1 + q), a1)
            b0 = vfma(h, vload(tile, o0 + q + lanes), b0)
            b1 = vfma(h, vload(tile, o1 + q + lanes), b1)
            q += 2 * lanes
        if q + lanes <= cols:
            g = vload(grad, g_row + q)
            a0 = vfma(g, vload(tile, o0 + q), a0)
            a1 = vfma(g, vload(tile, o1 + q), a1)
            q += lanes
        if q < cols:
            rest = cols - q
            h = vload_masked(grad, g_row + q, rest)
            b0 = vfma(h, vload_masked(tile, o0 + q, rest), b0)
            b1 = vfma(h, vload_masked(tile, o1 + q, rest), b1)
    _accumulate(acc, 0, vadd(a0, b0))
    _accumulate(acc, lanes, vadd(a1, b1))


@helper
def _tap_dots8(grad, grad_off, tile, top, offsets, cols, rows, tile_step, acc):
    """:func:`_dots8` without prefetching (compiled once, called per group of taps)."""
    _dots8(grad, grad_off, tile, top, offsets, cols, rows, tile_step, acc, tile, 0, 0, 0, 0,
           False)


@helper
def _tap_dots2(grad, grad_off, tile, top, offsets, cols, rows, tile_step, acc):
    """:func:`_dots2` without prefetching."""
    _dots2(grad, grad_off, tile, top, offsets, cols, rows, tile_step, acc, tile, 0, 0, 0, 0,
           False)


@helper
def _tap_dots8_ahead(grad, grad_off, tile, top, offsets, cols, rows, tile_step, acc, src,
                     src_ahead, src_step, grad_ahead, grad_step):
    """:func:`_dots8` prefetching the next row block's operands as it goes."""
    _dots8(grad, grad_off, tile, top, offsets, cols, rows, tile_step, acc, src, src_ahead,
           src_step, grad_ahead, grad_step, True)


@helper
def _tap_dots2_ahead(grad, grad_off, tile, top, offsets, cols, rows, tile_step, acc, src,
                     src_ahead, src_step, grad_ahead, grad_step):
    """:func:`_dots2` prefetching the next row block's operands as it goes."""
    _dots2(grad, grad_off, tile, top, offsets, cols, rows, tile_step, acc, src, src_ahead,
           src_step, grad_ahead, grad_step, True)


@inlined
def _plane_dots(slides, grad, grad_off, tile, top, offsets, plane_taps, cols, rows, width,
                stride1, dilation2, acc, src, src_ahead, src_step, grad_ahead, grad_step):
    """Every tap's dot products of one input plane's tile (sums at ``acc``, a vector each).

    A 3x3 filter with unit row stride and dilation (``slides``) walks down the tile
    (:func:`_slide_dots`); other filters take eight taps at a time, then two (an odd last
    tap pairs with itself; its copy is not read). The first call prefetches the next row
    block's operands when a step is positive (the ``_ahead`` helpers).
    """
    lanes = vlanes(tile)
    ahead = src_step + grad_step > 0
    if slides and ahead:
        _slide_dots3x3_ahead(grad, grad_off, cols, rows, tile, top, width, dilation2, acc,
                             src, src_ahead, src_step, grad_ahead, grad_step)
    elif slides:
        _slide_dots3x3(grad, grad_off, cols, rows, tile, top, width, dilation2, acc)
    else:
        k = 0
        while k < plane_taps:
            eight = k + 8 <= plane_taps
            at = ptr_of(acc, k * lanes)
            if ahead and eight:
                _tap_dots8_ahead(grad, grad_off, tile, top, ptr_of(offsets, k), cols, rows,
                                 stride1 * width, at, src, src_ahead, src_step, grad_ahead,
                                 grad_step)
            elif ahead:
                _tap_dots2_ahead(grad, grad_off, tile, top, ptr_of(offsets, k), cols, rows,
                                 stride1 * width, at, src, src_ahead, src_step, grad_ahead,
                                 grad_step)
            elif eight:
                _tap_dots8(grad, grad_off, tile, top, ptr_of(offsets, k), cols, rows,
                           stride1 * width, at)
            else:
                _tap_dots2(grad, grad_off, tile, top, ptr_of(offsets, k), cols, rows,
                           stride1 * width, at)
            ahead = False
            k += 8 if eight else 2


@inlined
def _slide_column(grad, g_col, cols, rows, tile, t_col, width, dilation2, count, a00, a01,
                  a02, a10, a11, a12, a20, a21, a22, src, src_ahead, src_step, grad_ahead,
                  grad_step, ahead):
    """One vector of columns of :func:`_slide_dots3x3`, walking down the rows.

    ``count`` lanes (masked loads when fewer than a vector); returns the nine accumulators.
    With ``ahead`` (a compile-time constant), row ``r`` prefetches part ``r`` of the next
    row block's operands (:func:`_prefetch_part`).
    """
    lanes = vlanes(tile)
    zero = vzero(tile)
    g1, g2 = zero, zero  # gradient rows r - 1 and r - 2
    for r in range(rows + 2):
        if ahead:
            _prefetch_part(src, src_ahead, src_step, r)
            _prefetch_part(grad, grad_ahead, grad_step, r)
        t_row = t_col + r * width
        if count >= lanes:
            x0, x1, x2 = _shifted(tile, t_row, dilation2)
            g0 = vload(grad, g_col + r * cols) if r < rows else zero
        else:
            x0 = vload_masked(tile, t_row, count)
            x1 = vload_masked(tile, t_row + dilation2, count)
            x2 = vload_masked(tile, t_row + 2 * dilation2, count)
            g0 = vload_masked(grad, g_col + r * cols, count) if r < rows else zero
        # tile row r is tap row 0 of output row r, 1 of row r - 1 and 2 of row r - 2; a
        # row outside the block adds no product (not even 0 * inf)
        if r < rows:
            a00, a01, a02 = vfma(g0, x0, a00), vfma(g0, x1, a01), vfma(g0, x2, a02)
        if 1 <= r <= rows:
            a10, a11, a12 = vfma(g1, x0, a10), vfma(g1, x1, a11), vfma(g1, x2, a12)
        if r >= 2:
            a20, a21, a22 = vfma(g2, x0, a20), vfma(g2, x1, a21), vfma(g2, x2, a22)
        g2, g1 = g1, g0
    return a00, a01, a02, a10, a11, a12, a20, a21, a22


@inlined
def _slide_dots(grad, grad_off, cols, rows, tile, top, width, dilation2, acc, src, src_ahead,
                src_step, grad_ahead, grad_step, ahead):
    """The nine dot products of a 3x3 filter's weight gradient, one input plane's tile.

    Gradient row ``q`` (``grad[grad_off + q * cols:][:cols]``, ``q < rows``) meets tile
    rows ``q + t1`` from ``top`` (``width`` apart), shifted ``t2 * dilation2``: tap
    ``(t1, t2)``'s sum goes to ``acc[(3 * t1 + t2) * lanes:][:lanes]``. The walk loads
    each tile row once (three shifted loads) and each gradient row once, for the three
    pairs of rows it meets: four loads per nine multiply-adds, where eight-tap dot
    products (:func:`_tap_dots8`) load once per multiply-add. Masked tails read nothing
    past ``cols``. The first vector of columns prefetches as :func:`_slide_column` says.
    """
    lanes = vlanes(tile)
    a00, a01, a02 = vzero(tile), vzero(tile), vzero(tile)
    a10, a11, a12 = vzero(tile), vzero(tile), vzero(tile)
    a20, a21, a22 = vzero(tile), vzero(tile), vzero(tile)
    for c in range(0, cols, lanes):
        a00, a01, a02, a10, a11, a12, a20, a21, a22 = _slide_column(
            grad, grad_off + c, cols, rows, tile, top + c, width, dilation2, cols - c, a00,
            a01, a02, a10, a11, a12, a20, a21, a22, src, src_ahead, src_step, grad_ahead,
            grad_step, ahead and c == 0)
    _accumulate_row(acc, 0, a00, a01, a02)
    _accumulate_row(acc, 3 * lanes, a10, a11, a12)
    _accumulate_row(acc, 6 * lanes, a20, a21, a22)


@helper
def _slide_dots3x3(grad, grad_off, cols, rows, tile, top, width, dilation2, acc):
    """:func:`_slide_dots` without prefetching (compiled once)."""
    _slide_dots(grad, grad_off, cols, rows, tile, top, width, dilation2, acc, tile, 0, 0, 0,
                0, False)


@helper
def _slide_dots3x3_ahead(grad, grad_off, cols, rows, tile, top, width, dilation2, acc, src,
                         src_ahead, src_step, grad_ahead, grad_step):
    """:func:`_slide_dots` prefetching the next row block's operands as it goes."""
    _slide_dots(grad, grad_off, cols, rows, tile, top, width, dilation2, acc, src, src_ahead,
                src_step, grad_ahead, grad_step, True)


@inlined
def _output_lanes(left, mid, right, count):
    """The three shifted vectors of an input row, zeros in lanes past ``count`` outputs."""
    if count >= vlanes(mid):
        return left, mid, right
    return vleading(left, count), vleading(mid, count), vleading(right, count)


@helper
def _direct_dots3x3(grad, grad_off, cols, rows, src, plane_off, first_row, size1, size2, acc,
                    src_ahead, src_step, grad_ahead, grad_step):
    """:func:`_slide_dots` of a depthwise 3x3 filter, from the input's own rows.

    As :func:`_direct_rows3x3` reads them: input row ``first_row + r`` of the plane at
    ``src[plane_off]`` (a negative ``plane_off``: zero padding) is tap row 0 of gradient
    row ``r``, 1 of ``r - 1`` and 2 of ``r - 2``, its columns shifted one left (tap column
    0) and right (2) in registers. Two vectors of columns walk down the rows, so nine
    accumulators and three gradient rows stay in registers; lanes past ``cols`` add no
    product (both factors are zeros there, never ``0 * inf``). The first walk prefetches
    as :func:`_slide_column` says, and :data:`DIRECT_AHEAD_BYTES` of rows ahead of those
    it reads within the block.
    """
    lanes = vlanes(src)
    zero = vzero(src)
    ahead = max(1, DIRECT_AHEAD_BYTES * lanes // (VECTOR_BITS // 8) // max(size2, 1))  # rows
    a00, a01, a02 = zero, zero, zero
    a10, a11, a12 = zero, zero, zero
    a20, a21, a22 = zero, zero, zero
    for k in range(0, (cols + lanes - 1) // lanes, 2):
        count = cols - k * lanes
        g1a, g1b, g2a, g2b = zero, zero, zero, zero  # gradient rows r - 1 and r - 2
        for r in range(rows + 2):
            row = first_row + r
            inside = plane_off >= 0 and 0 <= row < size1
            row_off = plane_off + row * size2
            if k == 0:
                _prefetch_part(src, src_ahead, src_step, r)
                _prefetch_part(grad, grad_ahead, grad_step, r)
                # and the block's rows ahead (the first block of a task was not fetched)
                if r + ahead < rows:
                    _prefetch_part(grad, grad_off + ahead * cols, cols, r)
                if plane_off >= 0 and 0 <= row + ahead < size1:
                    _prefetch_part(src, row_off + ahead * size2, size2, 0)
            before = _row_vector(src, row_off, k - 1, size2, inside)
            v0 = _row_vector(src, row_off, k, size2, inside)
            v1 = _row_vector(src, row_off, k + 1, size2, inside)
            after = _row_vector(src, row_off, k + 2, size2, inside)
            l0, m0, r0 = _output_lanes(vslide_up(before, v0), v0, vslide_down(v0, v1), count)
            l1, m1, r1 = _output_lanes(vslide_up(v0, v1), v1, vslide_down(v1, after),
                                       count - lanes)
            g0a, g0b = zero, zero
            if r < rows:
                at = grad_off + r * cols + k * lanes
                g0a = _row_vector(grad, at, 0, count, True)
                g0b = _row_vector(grad, at, 1, count, True)
                a00, a01, a02 = vfma(g0a, l0, a00), vfma(g0a, m0, a01), vfma(g0a, r0, a02)
                a00, a01, a02 = vfma(g0b, l1, a00), vfma(g0b, m1, a01), vfma(g0b, r1, a02)
            # a row outside the block adds no product (not even 0 * inf)
            if 1 <= r <= rows:
                a10, a11, a12 = vfma(g1a, l0, a10), vfma(g1a, m0, a11), vfma(g1a, r0, a12)
                a10, a11, a12 = vfma(g1b, l1, a10), vfma(g1b, m1, a11), vfma(g1b, r1, a12)
            if r >= 2:
                a20, a21, a22 = vfma(g2a, l0, a20), vfma(g2a, m0, a21), vfma(g2a, r0, a22)
                a20, a21, a22 = vfma(g2b, l1, a20), vfma(g2b, m1, a21), vfma(g2b, r1, a22)
            g2a, g2b, g1a, g1b = g1a, g1b, g0a, g0b
    _accumulate_row(acc, 0, a00, a01, a02)
    _accumulate_row(acc, 3 * lanes, a10, a11, a12)
    _accumulate_row(acc, 6 * lanes, a20, a21, a22)


@inlined
def _prefetch_part(data, first, step, r):
    """Prefetch ``data[first + r * step:][:step]`` (nothing when ``step`` is 0)."""
    for k in range(first + r * step, first + (r + 1) * step, vlanes(data)):
        prefetch_l2(data, k)


@inlined
def _accumulate(acc, off, vec):
    """``acc[off:off + lanes] += vec``."""
    vstore(acc, off, vadd(vload(acc, off), vec))


@inlined
def _accumulate_row(acc, off, a, b, c):
    """:func:`_accumulate` three consecutive vectors (one tap row of sums)."""
    lanes = vlanes(acc)
    _accumulate(acc, off, a)
    _accumulate(acc, off + lanes, b)
    _accumulate(acc, off + 2 * lanes, c)


@inlined
def _row_sum(grad, grad_off, cols, acc):
    """Add the vector partial sums of ``grad[grad_off:grad_off + cols]`` to ``acc[0:lanes]``.

    Two accumulators (even and odd vectors), so the additions do not wait on each other.
    """
    lanes = vlanes(grad)
    a0 = vzero(grad)
    a1 = vzero(grad)
    q = 0
    while q + 2 * lanes <= cols:
        a0 = vadd(a0, vload(grad, grad_off + q))
        a1 = vadd(a1, vload(grad, grad_off + q + lanes))
        q += 2 * lanes
    if q + lanes <= cols:
        a0 = vadd(a0, vload(grad, grad_off + q))
        q += lanes
    if q < cols:
        a1 = vadd(a1, vload_masked(grad, grad_off + q, cols - q))
    vstore(acc, 0, vadd(vload(acc, 0), vadd(a0, a1)))


@kernel
def planar_weight_grad(src, grad_out, geom, row_block, out_block, with_bias, partial_w,
                       partial_b, task_at):
    """Weight gradient (bias gradient fused in) of :func:`planar_conv`.

    ``partial_w[chunk, g*Og + j, i, t] = sum src[n, g*Ig + i, s(q, t)] *
    grad_out[n, g*Og + j, q]`` over the row blocks of ``chunk`` and all columns, skipping
    zero pads. Row blocks are ``(n, q0, block of row_block rows)`` triples in order; each
    task owns one ``(chunk, group, block of out_block output channels)``.

    Parameters
    ----------
    src : ndarray, shape (N, G*Ig, S0, S1, S2), C-contiguous
        Input of the forward convolution.
    grad_out : ndarray, shape (N, G*Og, Q0, Q1, Q2), C-contiguous
        Gradient of the output.
    geom : ndarray of int64, shape (3, 9)
        Forward geometry records, as for :func:`planar_conv`.
    row_block : int
        Output rows per tile.
    out_block : int
        Output channels per task.
    with_bias : bool
        Also fill ``partial_b``.
    partial_w : ndarray, shape (n_chunks, G*Og, Ig, T0, T1, T2)
        Per-chunk partial sums, each element written once; for the column phases' kernel
        (see :func:`planar_conv`) with a stride along ``D2``.
    partial_b : ndarray, shape (n_chunks, G*Og)
        Per-chunk partial bias gradients.
    task_at : int
        :data:`planar_weight_task_address` of the dtype.
    """
    n_chunks, c_out, in_group = partial_w.shape[0], partial_w.shape[1], partial_w.shape[2]
    groups = src.shape[1] // in_group
    n_out_blocks = (c_out // groups + out_block - 1) // out_block
    for task in prange(n_chunks * groups * n_out_blocks):
        # the task function, called by address, is compiled once (see _jit.caller)
        _call_planar_weight_task(task_at, (src, grad_out, geom, row_block, out_block, with_bias,
                                           partial_w, partial_b, np.int64(task)))


@helper
def _planar_weight_grad_task(src, grad_out, geom, row_block, out_block, with_bias, partial_w,
                             partial_b, task):
    """Task ``task`` of :func:`planar_weight_grad` (its loop body, compiled once)."""
    n_chunks, c_out, in_group = partial_w.shape[0], partial_w.shape[1], partial_w.shape[2]
    taps0, taps1, taps2 = partial_w.shape[3], partial_w.shape[4], partial_w.shape[5]
    batch, rows0, rows1, cols = grad_out.shape[0], grad_out.shape[2], grad_out.shape[3], \
        grad_out.shape[4]
    c_in, size0, size1, size2 = src.shape[1], src.shape[2], src.shape[3], src.shape[4]
    groups = c_in // in_group
    out_group = c_out // groups
    stride1, dilation1, dilation2 = geom[1, STRIDE], geom[1, DILATION], geom[2, DILATION]
    lanes = vlanes(src)
    extent = cols + dilation2 * (taps2 - 1)
    width = planar_tile_width(cols, taps2, dilation2, lanes)
    span = planar_tile_rows(row_block, stride1, taps1, dilation1)
    kernel_size = in_group * taps0 * taps1 * taps2
    # a stride along D2: the column phases of a tap along D0 (consecutive tile planes, see
    # _fill_phase_tile) are one plane of taps here, each `span` rows (8 taps per gradient
    # load, not 2 at a time per phase)
    phases = taps0 // geom[0, TAPS]
    plane_taps = phases * taps1 * taps2
    # accumulator slots per (output channel, input channel, tap along D0): the taps along
    # (D1, D2) rounded up to even, as they are taken 8 and then 2 at a time
    plane_slots = plane_taps + plane_taps % 2
    planes = in_group * taps0 // phases
    slots = planes * plane_slots
    n_blocks = (rows1 + row_block - 1) // row_block
    n_units = batch * rows0 * n_blocks
    n_out_blocks = (out_group + out_block - 1) // out_block
    src_p = ptr_of(src, 0)
    grad_p = ptr_of(grad_out, 0)
    ob = task % n_out_blocks
    rest = task // n_out_blocks
    g = rest % groups
    chunk = rest // groups
    j_lo = ob * out_block
    j_hi = min(out_group, j_lo + out_block)
    unit_lo = chunk * n_units // n_chunks
    unit_hi = (chunk + 1) * n_units // n_chunks
    tile_array = np.empty(in_group * taps0 * span * width, dtype=src.dtype)
    tile = ptr_of(tile_array, 0)
    offsets = np.empty(plane_slots, dtype=np.int64)  # tile shift of each (phase, t1, t2) tap
    for k in range(plane_slots):
        last = min(k, plane_taps - 1)
        phase, last = last // (taps1 * taps2), last % (taps1 * taps2)
        offsets[k] = phase * span * width + (last // taps2) * dilation1 * width + \
            (last % taps2) * dilation2
    acc_array = np.zeros((j_hi - j_lo) * slots * lanes, dtype=src.dtype)
    acc = ptr_of(acc_array, 0)
    bias_array = np.zeros((j_hi - j_lo) * lanes, dtype=src.dtype)
    # 3x3 filters with unit row stride and dilation: each tile row is loaded once
    slides = taps1 == 3 and taps2 == 3 and stride1 == 1 and dilation1 == 1 and phases == 1
    # a depthwise one over zero padding reads the input's own rows (no tile)
    direct = slides and in_group * taps0 == 1 and _reads_in_place(geom)
    for unit in range(unit_lo, unit_hi):
        block = unit % n_blocks
        q0 = (unit // n_blocks) % rows0
        n = unit // (n_blocks * rows0)
        row_lo = block * row_block
        row_hi = min(rows1, row_lo + row_block)
        used = planar_tile_rows(row_hi - row_lo, stride1, taps1, dilation1)
        if phases > 1:  # the phase planes `span` rows apart (the taps' offsets say so)
            used = span
        plane_off = -1
        if direct:
            plane_off = _plane_offset(geom, n * c_in + g * in_group, q0, size0, size1, size2)
        else:
            # only the whole vectors holding the padded rows: the dot products read no
            # column past `extent` (masked tails), so the rest of each tile row is never read
            _fill_tile(src_p, n * c_in + g * in_group, size0, size1, size2, geom, q0, row_lo,
                       used, width, min(width, (extent + lanes - 1) // lanes * lanes), extent,
                       in_group, taps0, tile)
        # the first dot products of this row block prefetch the next block's input rows
        # (of its first input channel) and gradient rows (of the first output channel):
        # another sample's, a plane apart, so the fill and the gradient loads had waited
        src_ahead, src_step, grad_ahead, grad_step = 0, 0, 0, 0
        if unit + 1 < unit_hi:
            after = unit + 1
            n_after = after // (n_blocks * rows0)
            row_after = (after % n_blocks) * row_block
            src_ahead, src_count = _task_rows(
                (n_after * groups + g) * rows0 * n_blocks + after % (n_blocks * rows0),
                n_blocks, rows0, groups, row_block, geom, c_in, size0, size1, size2,
                in_group, used)
            grad_ahead = (((n_after * c_out + g * out_group + j_lo) * rows0 +
                           (after // n_blocks) % rows0) * rows1 + row_after) * cols
            parts = (row_hi - row_lo) * lanes
            src_step = (src_count + parts - 1) // parts * lanes
            grad_step = ((min(rows1, row_after + row_block) - row_after) * cols + parts - 1) \
                // parts * lanes
        for j in range(j_lo, j_hi):
            co = g * out_group + j
            grad_off = (((n * c_out + co) * rows0 + q0) * rows1 + row_lo) * cols
            if direct:
                _direct_dots3x3(grad_p, grad_off, cols, row_hi - row_lo, src_p, plane_off,
                                row_lo - geom[1, PAD_LOW], size1, size2,
                                ptr_of(acc, (j - j_lo) * slots * lanes), src_ahead, src_step,
                                grad_ahead, grad_step)
                src_step, grad_step = 0, 0
            # every row of the block in one call per group of taps
            for i in range(in_group if not direct else 0):
                for t0 in range(taps0 // phases):
                    top = (i * taps0 + t0 * phases) * used * width
                    slot = (j - j_lo) * slots + (i * taps0 // phases + t0) * plane_slots
                    _plane_dots(slides, grad_p, grad_off, tile, top, offsets, plane_taps,
                                cols, row_hi - row_lo, width, stride1, dilation2,
                                ptr_of(acc, slot * lanes), src_p, src_ahead, src_step,
                                grad_ahead, grad_step)
                    src_step, grad_step = 0, 0
            if with_bias:  # the block's gradient rows are adjacent: one run
                _row_sum(grad_p, grad_off, (row_hi - row_lo) * cols,
                         ptr_of(bias_array, (j - j_lo) * lanes))
    for j in range(j_lo, j_hi):
        co = g * out_group + j
        grads = partial_w[chunk, co].reshape(kernel_size)
        for plane in range(planes):
            for k in range(plane_taps):
                slot = (j - j_lo) * slots + plane * plane_slots + k
                grads[plane * plane_taps + k] = vreduce_add(vload(acc_array, slot * lanes))
        if with_bias:
            partial_b[chunk, co] = vreduce_add(vload(bias_array, (j - j_lo) * lanes))
    keep_alive(tile_array)
    keep_alive(offsets)
    keep_alive(acc_array)
    keep_alive(bias_array)


@cache
def plane_sums_signature(dtype: np.dtype) -> tuple:
    """Argument types :func:`plane_sums` is compiled for."""
    return (data_type(dtype, 3, layout="C"), data_type(dtype, 2, True, "C"))


@kernel
def plane_sums(planes, partial_sums):
    """Per-channel sums of channels-first data in fixed chunks (a planar bias gradient).

    ``partial_sums[k, c]`` is the sum of ``planes[n, c, p]`` over chunk ``k`` of the flat
    positions ``n * P + p``: chunk ``k`` of ``K`` holds positions ``[k * N * P // K,
    (k + 1) * N * P // K)``. The chunks depend only on the shape (the caller picks ``K``),
    so the sums do not depend on the number of threads; each task owns one
    ``(chunk, channel)`` and reads its runs of the planes with vector additions.

    Parameters
    ----------
    planes : ndarray, shape (N, C, P), C-contiguous
        The data: ``P`` positions per channel plane.
    partial_sums : ndarray, shape (K, C)
        Per-chunk sums, each element written once.
    """
    batch, channels, size = planes.shape
    n_chunks = partial_sums.shape[0]
    total = batch * size
    lanes = vlanes(planes)
    for task in prange(n_chunks * channels):
        c = task % channels
        chunk = task // channels
        at = chunk * total // n_chunks
        end = (chunk + 1) * total // n_chunks
        acc = np.zeros(lanes, planes.dtype)
        while at < end:
            n = at // size
            p = at - n * size
            run = min(end - at, size - p)
            _row_sum(ptr_of(planes, 0), (n * channels + c) * size + p, run, acc)
            at += run
        partial_sums[chunk, c] = vreduce_add(vload(acc, 0))


#: ``dtype -> task_at`` of :func:`planar_conv` (compiles the task once)
planar_task_address = partial(address_of, _planar_conv_tasks, planar_task_signature)
#: ``dtype -> task_at`` of :func:`planar_weight_grad` and its twin
planar_weight_task_address = partial(address_of, _planar_weight_grad_task,
                                     planar_weight_task_signature)

#: :func:`planar_weight_grad` on the calling thread, for small calls
planar_weight_grad_serial = serial_twin(planar_weight_grad, "planar_weight_grad_serial")
#: :func:`plane_sums` on the calling thread, for small calls
plane_sums_serial = serial_twin(plane_sums, "plane_sums_serial")
