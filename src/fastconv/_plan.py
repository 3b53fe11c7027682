"""Plan layer: pure functions of shapes.

Everything here works on Python integers and tuples (and builds a (3, 9) integer
geometry record); nothing touches the data arrays. The public API normalises and validates the
arguments, asks this module for the geometry of a call, and hands the result to the
compiled kernels in :mod:`fastconv._kernels`.

The engine always runs a 3-D problem: 1-D and 2-D convolutions are padded with leading
unit spatial dimensions (:func:`to_3d`).

Geometry
--------
Along one spatial dimension, output position ``q`` reads, through kernel tap ``t``, the
position ``r = q * stride + t * dilation - pad_low`` of the unpadded input; the padding mode
maps ``r`` to a source index, or to nothing (a zero pad). The kernels evaluate that map
arithmetically from a small integer *geometry* record per dimension (:func:`geometry`),
so no index table, padded copy or zero-inserted copy of any array is ever built: extra
memory stays O(threads x tile) whatever the sizes.

The forward pass enumerates, for an output ``q``, its ``(source, tap)`` pairs. The input
gradient and the transposed convolution run the *adjoint*: for an input position ``i``,
the ``(output, tap)`` pairs that read it, found by inverting the padding map (a few
candidate positions, or an interval at a replicated edge) and solving for ``q`` per tap.
One gather kernel runs both.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba.extending import register_jitable

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
PADDING_STRINGS = ("valid", "same", "full")

Pair = tuple[int, int]


def to_3d(values: tuple[int, ...], fill: int) -> tuple[int, int, int]:
    """Left-pad a per-dimension tuple to three dimensions with ``fill``.

    Examples
    --------
    >>> to_3d((5,), 1)
    (1, 1, 5)
    """
    return (fill,) * (3 - len(values)) + tuple(values)


@register_jitable
def effective_kernel(kernel: int, dilation: int) -> int:
    """Span of a dilated kernel: ``dilation * (kernel - 1) + 1``.

    Examples
    --------
    >>> effective_kernel(3, 2)
    5
    """
    return dilation * (kernel - 1) + 1


@register_jitable
def conv_out_size(size: int, kernel: int, stride: int, pads: Pair, dilation: int) -> int:
    """Output length of a convolution: ``(size + lo + hi - d*(k-1) - 1) // stride + 1``.

    Returns zero or less when the dilated kernel does not fit the padded input; the
    caller validates.

    Examples
    --------
    >>> conv_out_size(56, 3, 1, (1, 1), 1)
    56
    >>> conv_out_size(224, 7, 2, (3, 3), 1)
    112
    """
    span = size + pads[0] + pads[1] - effective_kernel(kernel, dilation)
    return span // stride + 1 if span >= 0 else 0


@register_jitable
def transpose_out_size(
    size: int, kernel: int, stride: int, pads: Pair, dilation: int, output_padding: int
) -> int:
    """Output length of a transposed convolution.

    ``(size - 1) * stride - lo - hi + dilation * (kernel - 1) + output_padding + 1``.

    Examples
    --------
    >>> transpose_out_size(28, 4, 2, (1, 1), 1, 0)
    56
    """
    return (size - 1) * stride - pads[0] - pads[1] + dilation * (kernel - 1) + output_padding + 1


@register_jitable
def same_pads(size: int, kernel: int, stride: int, dilation: int) -> Pair:
    """Pads of ``padding="same"`` for any stride (the TensorFlow/JAX rule).

    The output has ``ceil(size / stride)`` positions; the total pad is split with the
    extra one at the end.

    Examples
    --------
    >>> same_pads(5, 3, 1, 1)
    (1, 1)
    >>> same_pads(6, 3, 2, 1)
    (0, 1)
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + effective_kernel(kernel, dilation) - size, 0)
    return (total // 2, total - total // 2)


@register_jitable
def full_pads(kernel: int, dilation: int) -> Pair:
    """Pads of ``padding="full"``: ``dilation * (kernel - 1)`` on both sides.

    Examples
    --------
    >>> full_pads(3, 2)
    (4, 4)
    """
    extent = dilation * (kernel - 1)
    return (extent, extent)


def resolve_pads(
    padding: str | tuple[Pair, ...],
    sizes: tuple[int, ...],
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
) -> tuple[Pair, ...]:
    """Turn a normalised padding (a string or per-dimension pairs) into per-dimension pairs.

    ``sizes`` are the input sizes of the forward convolution the pads belong to.

    Examples
    --------
    >>> resolve_pads("same", (10, 10), (3, 4), (1, 1), (1, 1))
    ((1, 1), (1, 2))
    >>> resolve_pads(((1, 2),), (8,), (3,), (1,), (1,))
    ((1, 2),)
    """
    if padding == "valid":
        return tuple((0, 0) for _ in sizes)
    if padding == "same":
        return tuple(
            same_pads(n, k, s, d) for n, k, s, d in zip(sizes, kernel, stride, dilation)
        )
    if padding == "full":
        return tuple(full_pads(k, d) for k, d in zip(kernel, dilation))
    return tuple(padding)


MODE_CODES = {"zeros": 0, "reflect": 1, "replicate": 2, "circular": 3}

# Fields of a geometry record (one row of int64 per spatial dimension).
ADJOINT, IN_SIZE, OUT_SIZE, TAPS, STRIDE, DILATION, PAD_LOW, PAD_HIGH, MODE = range(9)
GEOMETRY_FIELDS = 9


def geometry(adjoint: bool, in_size: int, out_size: int, kernel: int, stride: int,
             dilation: int, pads: Pair, mode: str) -> tuple[int, ...]:
    """Geometry record of one spatial dimension of a convolution.

    ``in_size`` and ``out_size`` are the forward convolution's input and output sizes;
    ``adjoint`` selects the pass that writes input positions (input gradient, transposed
    convolution) instead of output positions.

    Examples
    --------
    >>> geometry(False, 56, 56, 3, 1, 1, (1, 1), "zeros")
    (0, 56, 56, 3, 1, 1, 1, 1, 0)
    """
    return (int(adjoint), in_size, out_size, kernel, stride, dilation, pads[0], pads[1],
            MODE_CODES[mode])


UNIT_GEOMETRY = (1, 1, 1, 1, 1, 0, 0, 0)


def geometry_table(adjoint: bool, in_sizes: tuple[int, ...], out_sizes: tuple[int, ...],
                   kernel: tuple[int, ...], stride: tuple[int, ...], dilation: tuple[int, ...],
                   pads: tuple[Pair, ...], mode: str) -> np.ndarray:
    """Geometry records of the three canonical dims as an ``int64`` array of shape (3, 9).

    Missing leading dims (1-D and 2-D problems) are unit dims.

    Examples
    --------
    >>> geometry_table(False, (8,), (6,), (3,), (1,), (1,), ((0, 0),), "zeros")[:, 1:4]
    array([[1, 1, 1],
           [1, 1, 1],
           [8, 6, 3]])
    """
    rows = [(int(adjoint), *UNIT_GEOMETRY)] * (3 - len(in_sizes))
    rows += [
        geometry(adjoint, n, o, k, s, d, p, mode)
        for n, o, k, s, d, p in zip(in_sizes, out_sizes, kernel, stride, dilation, pads)
    ]
    return np.array(rows, dtype=np.int64).reshape(3, GEOMETRY_FIELDS)


def pair_capacity(record: tuple[int, ...] | np.ndarray) -> int:
    """Upper bound on the ``(position, tap)`` pairs one written position can have.

    The forward pass has at most one pair per tap. The adjoint has at most one per tap
    and candidate padded position: three candidates for reflect and circular padding, and
    at a replicated edge every output whose window covers the replicated pad.

    Examples
    --------
    >>> pair_capacity(geometry(False, 56, 56, 3, 1, 1, (1, 1), "zeros"))
    3
    >>> pair_capacity(geometry(True, 56, 28, 3, 2, 1, (1, 1), "circular"))
    9
    >>> pair_capacity(geometry(True, 10, 14, 3, 1, 1, (3, 3), "replicate"))
    24
    """
    adjoint, _, out_size, taps, stride, _, low, high, mode = (int(v) for v in record)
    if not adjoint or mode == MODE_CODES["zeros"]:
        return taps
    if mode == MODE_CODES["replicate"]:
        span = low + high + 1
        return taps * min(out_size, -(-span // stride) + 1)
    return 3 * taps


@register_jitable
def output_block(out_cols: int, channels: int, itemsize: int, other_tasks: int) -> int:
    """Columns of output computed by one parallel task.

    Large enough to amortise the task overhead, small enough that the accumulator tile
    (``block * channels`` values) stays in L1, and small enough to leave at least 16 tasks.

    Examples
    --------
    >>> output_block(56, 64, 4, 448)
    56
    >>> output_block(16000, 32, 4, 4)
    128
    """
    budget = max(1, 16384 // max(1, channels * itemsize))
    block = min(out_cols, budget, 256) if out_cols else 1
    while block > 8 and other_tasks * math.ceil(out_cols / block) < 16:
        block //= 2
    return max(block, 1)


@register_jitable
def group_block(groups: int, out_group: int, in_group: int) -> int:
    """Groups computed by one gather task.

    One group per task when a group has enough channels to fill vector loops; otherwise
    enough groups that a task handles about 64 output channels, so small groups (depthwise:
    one channel each) do not pay a task's fixed costs per channel.

    Examples
    --------
    >>> group_block(1, 64, 64)
    1
    >>> group_block(256, 1, 1)
    64
    >>> group_block(32, 4, 4)
    16
    """
    if out_group * max(in_group, 1) >= 64:
        return 1
    return max(1, min(groups, 64 // max(out_group, 1)))


@register_jitable
def gather_blocks(batch: int, rows0: int, rows1: int, cols: int, groups: int, in_group: int,
                  out_group: int, itemsize: int) -> tuple[int, int]:
    """``(col_block, group_block)`` of one gather task, from the written array's shape.

    Examples
    --------
    >>> gather_blocks(8, 1, 56, 56, 1, 64, 64, 4)
    (56, 1)
    >>> gather_blocks(8, 1, 56, 56, 256, 1, 1, 4)
    (56, 64)
    """
    groups_per_task = group_block(groups, out_group, in_group)
    other_tasks = batch * rows0 * rows1 * -(-groups // groups_per_task)
    columns = output_block(cols, groups_per_task * out_group, itemsize, other_tasks)
    return columns, groups_per_task


@register_jitable
def reduction_chunks(rows: int, tiles: int, work: float = math.inf) -> int:
    """Number of fixed chunks the grad-weight reduction over output rows is split into.

    Depends only on shapes (never on the thread count), so the summation order and the
    result are the same on any machine. More chunks only when there are few weight tiles,
    and one for a call of at most :data:`SERIAL_MAX_WORK` multiply-adds (``work``): it runs
    on the calling thread, and chunks only feed threads.

    Examples
    --------
    >>> reduction_chunks(448, 36)
    1
    >>> reduction_chunks(1, 1)
    1
    >>> reduction_chunks(4000, 2)
    8
    >>> reduction_chunks(8, 9), reduction_chunks(8, 9, work=13824)
    (2, 1)
    """
    if tiles >= 16 or rows <= 1 or work <= SERIAL_MAX_WORK:
        return 1
    return int(min(rows, -(-16 // max(tiles, 1))))


#: Positions of a channel per chunk of a channels-first bias gradient (see
#: :func:`plane_sum_chunks`).
PLANE_SUM_CHUNK = 1 << 13


def plane_sum_chunks(positions: int, channels: int) -> int:
    """Number of fixed chunks the per-channel sums of channels-first data are split into.

    ``positions`` counts the elements of one channel (batch times spatial sizes). Chunks of
    about :data:`PLANE_SUM_CHUNK` positions (at most 16), one for a call of at most
    :data:`SERIAL_MAX_WORK` additions; like :func:`reduction_chunks`, a function of the
    shape only, so the sums are the same on any machine.

    Examples
    --------
    >>> plane_sum_chunks(8 * 56 * 56, 32)
    4
    >>> plane_sum_chunks(4096 * 4096, 1), plane_sum_chunks(64, 3)
    (16, 1)
    """
    if positions * channels <= SERIAL_MAX_WORK:
        return 1
    return int(min(16, max(1, -(-positions // PLANE_SUM_CHUNK))))


#: Large layout and padding copies are made this many parts of the batch at a time.
COPY_PARTS = 4


def copy_samples(batch: int, sample_bytes: int = 0, spare_bytes: float = 0) -> int:
    """Samples per part when a pass copies a batch's operand part by part.

    About a quarter of the batch (one sample when the batch is smaller than four), so a
    copy adds at most about a quarter of the operand to the memory a call holds; more, up
    to the whole batch in one part, when copies of ``sample_bytes`` per sample fit in
    ``spare_bytes`` (fewer parts: fewer kernel launches, each with more work to share).

    Examples
    --------
    >>> copy_samples(8), copy_samples(2), copy_samples(1), copy_samples(10)
    (2, 1, 1, 3)
    >>> copy_samples(8, 100, 450), copy_samples(8, 100, 1e9)
    (4, 8)
    """
    quarter = max(1, -(-batch // COPY_PARTS))
    if sample_bytes <= 0:
        return quarter
    fits = min(batch, int(spare_bytes // sample_bytes))
    if fits <= quarter:
        return quarter
    return -(-batch // -(-batch // fits))  # the parts as even as they can be


#: What one more part of the batch costs a dense pass that copies its input in parts (a
#: launch: waking the threads, the last tasks' tail, each thread packing its channel blocks
#: again), and the rate at which a thread copies input rows into its tiles; measured on the
#: Zen 4 host (3x3 256 -> 256 channels at 14x14, batch 8, four parts: 9-11% of the call; a
#: layout copy: 30-37 GB/s).
PART_SECONDS = 2e-4
TILE_COPY_BYTES_PER_SECOND = 30e9


def tiles_beat_parts(parts: int, blocks: int, input_bytes: int) -> bool:
    """Whether a pass copies its input rows into per-task tiles rather than in parts.

    For a dense pass whose threads pack their own channel blocks of weights: tiles copy the
    input once per block (``blocks`` times) in one launch; parts copy it once, at the cost
    of a launch per part. Examples (3x3, float32; the time with tiles against parts, in
    an interleaved A/B on the Zen 4 host):

    >>> tiles_beat_parts(4, 8, 8 * 256 * 14 * 14 * 4)  # 256 -> 256 at 14x14: 0.95-0.98
    True
    >>> tiles_beat_parts(4, 8, 8 * 128 * 28 * 28 * 4)  # stride 2, 128 -> 256: 0.96-1.03
    False
    >>> tiles_beat_parts(4, 8, 4 * 256 * 56 * 56 * 4)  # 256 -> 256 at 56x56: 1.11
    False
    >>> tiles_beat_parts(1, 16, 8 * 128 * 14 * 14 * 4)  # 128 -> 512 at 14x14: 1.04
    False
    """
    return (blocks - 1) * input_bytes / TILE_COPY_BYTES_PER_SECOND < (parts - 1) * PART_SECONDS


def read_window(out_size: int, taps: int, stride: int, dilation: int,
                pad_low: int) -> tuple[int, int]:
    """The input positions ``[first, stop)`` the outputs of one axis read.

    They may lie outside the input (``first < 0``: low padding; ``stop`` past the
    input's extent: high padding).

    Examples
    --------
    >>> read_window(56, 3, 1, 1, 1), read_window(112, 7, 2, 1, 3), read_window(4, 1, 2, 1, 0)
    ((-1, 57), (-3, 226), (0, 7))
    """
    first = -pad_low
    return first, first + (out_size - 1) * stride + (taps - 1) * dilation + 1


def pad_margins(windows: tuple[tuple[int, int], ...], in_sizes: tuple[int, ...]
                ) -> tuple[tuple[int, int], ...]:
    """Zero margins (low, high) per axis an input copy needs to hold every read window.

    ``windows`` are :func:`read_window` results, one per axis of ``in_sizes``.

    Examples
    --------
    >>> pad_margins(((-1, 57), (-3, 226), (0, 7)), (56, 224, 8))
    ((1, 1), (3, 2), (0, 0))
    """
    return tuple((max(0, -first), max(0, stop - size))
                 for (first, stop), size in zip(windows, in_sizes))


def widest_margins(margins: list[tuple[tuple[int, int], ...]]) -> tuple[tuple[int, int], ...]:
    """Per axis, the largest low and high margins of several :func:`pad_margins` results.

    Examples
    --------
    >>> widest_margins([((1, 0), (0, 2)), ((0, 1), (1, 0))])
    ((1, 1), (1, 2))
    """
    return tuple((max(lo for lo, _ in axis), max(hi for _, hi in axis))
                 for axis in zip(*margins))


#: A zero-padded input copy is made only while it is at most this much larger than the
#: input (huge paddings of small inputs are left to the kernels' own zero handling).
PAD_COPY_GROWTH = 2.0


def slab_rows(out_rows: int, stride: int, dilation: int, taps: int, fit_rows: int) -> int:
    """Output rows per slab when a pass copies each sample's input a slab of rows at a time.

    The input rows a slab of ``R`` output rows reads, ``(R - 1) * stride + (taps - 1) *
    dilation + 1``, must fit ``fit_rows``; at least one output row per slab, and the slabs
    as even as they can be. ``out_rows`` (one slab) when the whole sample fits.

    Examples
    --------
    >>> slab_rows(32, 1, 1, 3, 20), slab_rows(32, 1, 1, 3, 100), slab_rows(32, 2, 1, 7, 3)
    (16, 32, 1)
    """
    rows = max(1, (fit_rows - 1 - (taps - 1) * dilation) // stride + 1)
    if rows >= out_rows:
        return out_rows
    slabs = -(-out_rows // rows)
    return -(-out_rows // slabs)


#: Output-gradient bytes per reduction chunk of the dense weight gradient at most: every tap
#: row's task re-reads its chunk, which should then come from cache.
WEIGHT_CHUNK_BYTES = 2 * 1024 * 1024


def dense_weight_chunks(rows: int, tiles: int, grad_bytes: int, operand_bytes: int = 0,
                        weight_bytes: int = 0, held_bytes: int = 0) -> int:
    """Number of reduction chunks of the dense weight gradient (shape-determined).

    As many as :func:`reduction_chunks` gives, and at least one per
    :data:`WEIGHT_CHUNK_BYTES` of output gradient; but when there are several, their
    partial sums (``weight_bytes`` each), with the running tasks' work arrays
    (``held_bytes``) while they run and then the summed result, may take at most the
    result and :data:`EXTRA_MEMORY` of the operands (``operand_bytes``) and the result,
    so a layer with large weights and small images gets fewer chunks (one, whose sum is
    the result itself). More than four are rounded down to a multiple of four, so that the
    tasks (chunks x tasks per chunk) split evenly over 2 or 4 threads (9 tasks kept one of
    two threads waiting a ninth of the call).

    Examples
    --------
    >>> dense_weight_chunks(896, 7, 8 * 64 * 112 * 112 * 4)  # 7x7 stem: gradient 25.7 MB
    12
    >>> dense_weight_chunks(112, 144, 8 * 256 * 14 * 14 * 4)
    1
    >>> dense_weight_chunks(112, 12, 1605632, 3211264, 2359296)  # 3x3 256 -> 256 at 14x14
    1
    """
    chunks = max(reduction_chunks(rows, tiles), min(rows, -(-grad_bytes // WEIGHT_CHUNK_BYTES)))
    if chunks > 1 and weight_bytes:
        spare = (EXTRA_MEMORY * (operand_bytes + weight_bytes) + weight_bytes
                 - max(held_bytes, weight_bytes))
        chunks = max(1, min(chunks, int(spare // weight_bytes)))
    return chunks - chunks % 4 if chunks > 4 else chunks


#: Memory a pass may allocate beyond its operands and results, as a fraction of them.
EXTRA_MEMORY = 0.25


def _applicable(padding_mode: str, groups: int, c_in: int, c_out: int,
                planar_layout: bool) -> tuple[bool, bool]:
    """Whether the dense and the planar kernels can run a (non-empty) convolution at all."""
    dense = dense_applicable(padding_mode, groups, c_in, c_out)
    planar = planar_layout and c_in > 0 and c_out > 0
    return dense, planar


def _pointwise_applicable(kernel: tuple[int, ...], stride: tuple[int, ...], padded: bool,
                          planar: bool) -> bool:
    """Whether the pointwise kernel can run a convolution the planar kernel can run."""
    return planar and not padded and all(k == 1 for k in kernel) and all(s == 1 for s in stride)


def _forced_choice(forced: str, dense: bool, planar: bool, pointwise: bool = False,
                   depthwise: bool = False) -> str:
    """A forced algorithm where it applies, else the gather kernel (which always does)."""
    applies = {"dense": dense, "planar": planar, "pointwise": pointwise,
               "depthwise": depthwise, "gather": True}
    return forced if applies.get(forced, False) else "gather"


def depthwise_applicable(padding_mode: str, groups: int, c_in: int, c_out: int,
                         planar: bool, pads_nonnegative: bool) -> bool:
    """Whether the channel-vector depthwise kernel can run a convolution.

    One input and one output channel per group, zero padding of at least zero, data the
    planar kernel can run (channels-first).

    Examples
    --------
    >>> depthwise_applicable("zeros", 96, 96, 96, True, True)
    True
    >>> depthwise_applicable("zeros", 96, 96, 192, True, True)
    False
    """
    return (planar and padding_mode == "zeros" and pads_nonnegative
            and groups == c_in == c_out)


def depthwise_preferred(channels: int, kernel: tuple[int, ...], stride: tuple[int, ...],
                        cols: int, lanes: int) -> bool:
    """Whether a depthwise layer runs faster vectorised across channels than along rows.

    The planar kernel fills its vectors along an output row and walks 3x3 and 5x5 filters
    down the rows at unit stride; across channels (``lanes`` of them per vector), every
    tap is one vector load and one multiply-add at any stride, but the layout changes
    cost two transposes per element. Measured here (AVX-512, float32, batch 8), the
    channel vectors won on rows of at most two vectors (7x7 planes 5x, 14x14 1.7-2.8x,
    28x28 5x5 1.45x), with a stride along the rows (1.1-2.8x) and with filters wider than
    three taps (7x7 on 56x56 planes 1.7x; 5x5 on 56x56 and 112x112 planes equal to a
    planar walk of five tap rows, which was dropped for its compile time); the planar
    walk keeps wider unit-stride rows of 3x3 filters (56x56: 1.9x). Fewer channels than
    lanes leave lanes idle.

    Examples
    --------
    >>> depthwise_preferred(384, (7, 7), (1, 1), 14, 16)
    True
    >>> depthwise_preferred(96, (3, 3), (1, 1), 56, 16)
    False
    >>> depthwise_preferred(8, (3, 3), (2, 2), 28, 16)
    False
    """
    if channels < lanes:
        return False
    return stride[-1] > 1 or kernel[-1] > 3 or cols <= 2 * lanes


def spread_adjoint(in_size: int, out_size: int, kernel: int, stride: int, dilation: int,
                   pads: Pair) -> tuple[int, Pair]:
    """The adjoint along one dimension as a stride-1 convolution of a spread gradient.

    Input-gradient position ``x`` of a forward convolution (sizes ``in_size`` ->
    ``out_size``) sums ``w[t] * g[q]`` over ``q * stride + t * dilation - pad_low == x``: a
    stride-1 convolution with the flipped kernel of the output gradient spread with
    ``stride - 1`` zeros between its elements (``(out_size - 1) * stride + 1`` of them),
    padded by ``(kernel - 1) * dilation - pad_low`` below. Returns that size and the pads
    (low, high) giving ``in_size`` outputs.

    Examples
    --------
    >>> spread_adjoint(14, 7, 3, 2, 1, (1, 1))  # a 3x3 stride-2 layer's 14 -> 7 columns
    (13, (1, 2))
    """
    size = (out_size - 1) * stride + 1
    low = (kernel - 1) * dilation - pads[0]
    return size, (low, in_size - 1 + (kernel - 1) * dilation - low - (size - 1))


def depthwise_spread_preferred(kernel: tuple[int, ...], stride: tuple[int, ...], cols: int,
                               lanes: int) -> bool:
    """Whether a strided depthwise adjoint runs as one convolution of the spread gradient.

    The depthwise kernel (:func:`depthwise_preferred`) then computes every input-gradient
    position with every tap, the zeros spread between the gradient's elements included
    (``prod(stride)`` times the useful multiply-adds), instead of one convolution per
    stride phase on the planar kernel, each on small planes with a strided write.
    Measured here (AVX-512, float32, interleaved against the phases): 3x3 and 5x5 stride-2
    layers 1.2-2.6x faster (16 to 672 channels, 14x14 to 112x112 inputs), stride 3
    2.8-3.1x, a 3-D 3x3x3 stride-2 layer 1.9x, 7x7 stride 2 1.55x on 28x28 inputs but
    0.91x on 56x56 ones: filters wider than three taps per phase (``kernel > 3 *
    stride``) keep the phases unless the input-gradient rows (``cols``) fit two vectors.

    Examples
    --------
    >>> depthwise_spread_preferred((3, 3), (2, 2), 56, 16)
    True
    >>> [depthwise_spread_preferred((7, 7), (2, 2), cols, 16) for cols in (56, 28)]
    [False, True]
    """
    return all(k <= 3 * s for k, s in zip(kernel, stride)) or cols <= 2 * lanes


def forward_algorithm(padding_mode: str, groups: int, c_in: int, c_out: int,
                      kernel: tuple[int, ...], stride: tuple[int, ...], channel_block: int,
                      planar_layout: bool, forced: str | None = None,
                      padded: bool = True, cols: int = 0, pads_nonnegative: bool = True,
                      lanes: int = 0) -> str:
    """Algorithm of a forward convolution: dense, pointwise, depthwise, planar or gather.

    Data in channels-first layout (``planar_layout``: both arrays C-contiguous as
    ``(N, C, *spatial)``, or single-channel) of a pointwise layer (1x1 kernel, unit strides,
    not ``padded``) with at least six output channels per group take the pointwise kernel
    (a matrix product on the data in place). The dense micro-kernel needs zero padding and
    one group; it pays off when a pixel's reduction (``C_in * taps``) is long enough to
    amortise a register tile and the output channels fill at least half a channel block,
    but not when they fill exactly half of it on channels-first data whose output rows
    (``cols``) are at least a vector long: a one-vector tile spends a broadcast load per
    multiply-add, and the planar kernel ran such layers 1.03-1.37x faster (five layers with
    16 output channels, 2-D, 3-D and an input gradient's phase, AVX-512).
    Otherwise channels-first data take the planar kernel, vectorised along the last
    dimension (depthwise, small groups, single-channel images; any padding mode and
    stride: :func:`column_phases`), except depthwise layers over zero padding that run
    faster with a vector lane per channel (``lanes`` of them, :func:`depthwise_preferred`;
    ``pads_nonnegative``: no pad crops the input). Everything else takes the gather
    kernel. ``forced`` (tests, benchmarks) picks an algorithm when it applies, else the
    gather kernel.

    Examples
    --------
    >>> forward_algorithm("zeros", 1, 64, 64, (3, 3), (1, 1), 16, False)
    'dense'
    >>> forward_algorithm("zeros", 1, 256, 64, (1, 1), (1, 1), 16, True, padded=False)
    'pointwise'
    >>> forward_algorithm("zeros", 256, 256, 256, (3, 3), (1, 1), 16, True)
    'planar'
    >>> forward_algorithm("reflect", 1, 1, 1, (5, 5), (1, 1), 16, True)
    'planar'
    >>> forward_algorithm("zeros", 256, 256, 256, (3, 3), (2, 2), 16, True)
    'planar'
    >>> forward_algorithm("zeros", 256, 256, 256, (3, 3), (1, 1), 16, False)
    'gather'
    >>> [forward_algorithm("zeros", 1, 64, 16, (3, 3), (1, 1), 32, True, cols=c)
    ...  for c in (14, 28)]
    ['dense', 'planar']
    >>> forward_algorithm("zeros", 384, 384, 384, (7, 7), (1, 1), 16, True, cols=14, lanes=16)
    'depthwise'
    """
    dense, planar = _applicable(padding_mode, groups, c_in, c_out, planar_layout)
    pointwise = _pointwise_applicable(kernel, stride, padded, planar)
    depthwise = depthwise_applicable(padding_mode, groups, c_in, c_out, planar,
                                     pads_nonnegative)
    if forced is not None:
        return _forced_choice(forced, dense, planar, pointwise, depthwise)
    if depthwise and lanes and depthwise_preferred(c_in, kernel, stride, cols, lanes):
        return "depthwise"
    if pointwise and c_out // groups >= 6:
        return "pointwise"
    # a pointwise layer on channels-first data with few outputs per group: the dense path's
    # layout copy of the input costs more than the planar kernel's lack of a channel block
    pointwise_layer = planar and math.prod(kernel) == 1
    one_vector = planar and 2 * c_out == channel_block and 2 * cols >= channel_block
    if dense and c_in * math.prod(kernel) >= 16 and 2 * c_out >= channel_block and \
            not pointwise_layer and not one_vector:
        return "dense"
    return "planar" if planar else "gather"


def adjoint_algorithm(padding_mode: str, groups: int, c_in: int, c_out: int,
                      kernel: tuple[int, ...], stride: tuple[int, ...], channel_block: int,
                      planar_layout: bool, forced: str | None = None,
                      padded: bool = True, cols: int = 0, pads_nonnegative: bool = True,
                      lanes: int = 0) -> str:
    """Algorithm of an input gradient (or transposed convolution) of a forward convolution.

    With zero padding the adjoint splits into stride phases (:func:`adjoint_phases`), each
    a stride-1 forward convolution of the output gradient with a flipped subset of the
    taps and the channel axes swapped within each group. The phases run on the dense or
    planar kernel (as :func:`forward_algorithm` chooses for one phase, returned here);
    when neither applies, or with another padding mode, the gather kernel inverts the
    padding map and stride in one pass. Arguments describe the forward convolution
    (``c_in`` is what the adjoint writes; ``padded``: whether it has any padding, which a
    1x1 stride-1 adjoint then has too; ``cols``: a phase's output row length). The
    channel-vector depthwise kernel (``lanes``, ``pads_nonnegative``: those of a stride-1
    adjoint) runs stride-1 adjoints as their one phase, and strided ones (``"spread"``)
    as one stride-1 convolution of the gradient spread with zeros
    (:func:`spread_adjoint`, :func:`depthwise_spread_preferred`).

    Examples
    --------
    >>> adjoint_algorithm("zeros", 1, 64, 64, (3, 3), (1, 1), 16, False)
    'dense'
    >>> adjoint_algorithm("zeros", 1, 128, 256, (3, 3), (2, 2), 16, False)
    'dense'
    >>> adjoint_algorithm("zeros", 32, 128, 128, (3, 3), (1, 1), 16, True)
    'planar'
    >>> adjoint_algorithm("reflect", 1, 64, 64, (3, 3), (1, 1), 16, False)
    'gather'
    >>> adjoint_algorithm("zeros", 576, 576, 576, (3, 3), (2, 2), 16, True, lanes=16)
    'spread'
    """
    if padding_mode != "zeros":
        return "gather"
    phase_kernel = tuple(-(-k // s) for k, s in zip(kernel, stride))
    unit = all(s == 1 for s in stride)
    if (not unit and lanes and forced in (None, "depthwise")
            and depthwise_applicable(padding_mode, groups, c_in, c_out, planar_layout,
                                     pads_nonnegative)
            and (forced == "depthwise"
                 or (c_in >= lanes
                     # the input-gradient rows (a phase's cols times the stride: rounded up)
                     and depthwise_spread_preferred(kernel, stride, cols * stride[-1],
                                                    lanes)))):
        return "spread"
    return forward_algorithm(padding_mode, groups, c_out, c_in, phase_kernel,
                             (1,) * len(kernel), channel_block, planar_layout,
                             None if forced == "depthwise" and not unit else forced, padded,
                             cols, pads_nonnegative, lanes if unit else 0)


class Phase(NamedTuple):
    """One stride phase of an adjoint along one dimension (see :func:`adjoint_phases`)."""

    #: First input position of the phase; the phase is positions ``start + stride * m``.
    start: int
    #: Number of positions ``m`` (inside the input).
    count: int
    #: Forward taps contributing, in the order the phase's forward kernel uses them.
    taps: tuple[int, ...]
    #: First output-gradient position read (the phase convolution's source begins there).
    offset: int
    #: Low zero padding of the phase convolution.
    pad_low: int
    #: Dilation of the phase convolution.
    dilation: int


def adjoint_phases(in_size: int, out_size: int, kernel: int, stride: int, dilation: int,
                   pad_low: int) -> tuple[Phase, ...]:
    """Split the adjoint of a zero-padded 1-D convolution into stride-1 forward convolutions.

    Input position ``i = start + stride * m`` receives ``grad[q] * w[t]`` for the taps with
    ``q * stride + t * dilation - pad_low = i``, i.e. ``q = m + (start + pad_low - t *
    dilation) / stride`` where that is an integer. Taken in decreasing ``t`` these offsets
    increase by a constant step, so each phase is a forward convolution (stride 1) of the
    gradient with those taps, reversed: no zero insertion, no wasted multiply-adds.

    Examples
    --------
    >>> adjoint_phases(5, 5, 3, 1, 1, 1)
    (Phase(start=0, count=5, taps=(2, 1, 0), offset=0, pad_low=1, dilation=1),)
    >>> [p.taps for p in adjoint_phases(8, 4, 3, 2, 1, 1)]
    [(1,), (2, 0)]
    >>> adjoint_phases(8, 4, 3, 2, 1, 1)[1]
    Phase(start=1, count=4, taps=(2, 0), offset=0, pad_low=0, dilation=1)
    """
    phases = []
    for start in range(stride):
        count = max(0, -(-(in_size - start) // stride))
        taps = tuple(t for t in reversed(range(kernel))
                     if (start + pad_low - t * dilation) % stride == 0)
        first = (start + pad_low - taps[0] * dilation) // stride if taps else out_size
        if first >= out_size:  # every read is past the gradient's end: the phase is zero
            phases.append(Phase(start, count, (), 0, 0, 1))
            continue
        step = (taps[0] - taps[1]) * dilation // stride if len(taps) > 1 else 1
        offset = max(0, first)
        phases.append(Phase(start, count, taps, offset, offset - first, step))
    return tuple(phases)


#: Below this many multiply-adds a call runs serial code on the calling thread (waking the
#: thread pool costs more than the arithmetic).
SERIAL_MAX_WORK = 1 << 15


def small_call_algorithm(algorithm: str, work: int, forced: str | None = None,
                         serial_dense: bool = True, dense_applies: bool = False,
                         serial_planar: bool = False, planar_applies: bool = False) -> str:
    """The algorithm a call of ``work`` multiply-adds per sample runs, given the shape's choice.

    Per sample, so that a sample's result never depends on the batch it came in.

    Below :data:`SERIAL_MAX_WORK` the parallel-only kernels give way to serial code: the
    dense micro-kernel wherever it applies (``dense_applies``, see :func:`dense_applicable`)
    and has a serial driver (``serial_dense``: the dense forward has one, the dense weight
    gradient does not), even with few channels, because its vector tiles beat scalar code
    on any channel count; the planar kernel where it has a serial twin (``serial_planar``:
    the planar weight gradient) and the shape chose it, or chose the dense one while the
    planar one applies (``planar_applies``: channels-first data; with ``serial_dense``
    false, the dense kernel has no serial driver): its
    vector dot products beat the gather kernel's scalar loops (a tiny 3->8 channel layer's
    weight gradient: 10.4 -> 7.9 us a call in float32, 11.4 -> 7 us in float64, where the
    shape chose the dense kernel); else the gather kernel's serial twin. A forced
    algorithm (tests) is kept.

    Examples
    --------
    >>> small_call_algorithm("planar", 1728)
    'gather'
    >>> small_call_algorithm("planar", 1728, dense_applies=True)
    'dense'
    >>> small_call_algorithm("dense", 1728)
    'dense'
    >>> small_call_algorithm("dense", 1728, serial_dense=False)
    'gather'
    >>> small_call_algorithm("planar", 1728, serial_dense=False, serial_planar=True)
    'planar'
    >>> small_call_algorithm("dense", 1728, serial_dense=False, serial_planar=True,
    ...                      planar_applies=True)
    'planar'
    >>> small_call_algorithm("planar", 10**9)
    'planar'
    """
    if forced is not None or work > SERIAL_MAX_WORK:
        return algorithm
    if serial_dense and (algorithm == "dense" or dense_applies):
        return "dense"
    if serial_planar and (algorithm == "planar" or planar_applies and algorithm == "dense"):
        return "planar"
    return "gather"


def winograd_applicable(padding_mode: str, groups: int, c_in: int, c_out: int,
                        kernel: tuple[int, ...], stride: tuple[int, ...],
                        dilation: tuple[int, ...]) -> bool:
    """Whether the Winograd F(2x2, 3x3) kernel (or F(2x2x2, 3x3x3)) can run a convolution.

    A 2-D 3x3 filter at unit stride, any dilation (each row and column phase of the output
    a convolution of its own), or a 3-D 3x3x3 filter at unit stride and dilation; zero
    padding (any pads) and one group.

    Examples
    --------
    >>> winograd_applicable("zeros", 1, 64, 64, (3, 3), (1, 1), (2, 2))
    True
    >>> winograd_applicable("zeros", 1, 64, 64, (3, 3), (2, 2), (1, 1))
    False
    >>> winograd_applicable("zeros", 1, 64, 64, (3, 3, 3), (1, 1, 1), (1, 1, 1))
    True
    >>> winograd_applicable("zeros", 1, 64, 64, (3, 3, 3), (1, 1, 1), (2, 2, 2))
    False
    """
    if tuple(kernel) == (3, 3, 3):
        return (dense_applicable(padding_mode, groups, c_in, c_out)
                and tuple(stride) == tuple(dilation) == (1, 1, 1))
    return (dense_applicable(padding_mode, groups, c_in, c_out) and tuple(kernel) == (3, 3)
            and tuple(stride) == (1, 1) and len(dilation) == 2)


#: Largest transformed weights (``16 x C_in x C_out`` elements) the plan prefers Winograd
#: for: every task reads them once. Measured here (2 threads, batch 8, against the direct
#: kernel): 4 MiB (256 -> 256 channels, float32) 1.25-1.44x and 8 MiB (float64) 1.45x,
#: but 16 MiB (512 -> 512 channels at 7x7, float32) 0.72-0.75x, read from memory by each
#: of the 16 tasks.
WINOGRAD_MAX_WEIGHT_BYTES = 8 << 20


#: Fewest input and output channels the plan prefers Winograd for (and a vector of each):
#: the transforms cost additions per input and output element, which the products over
#: enough channels amortise.
WINOGRAD_MIN_CHANNELS = 16


def winograd_preferred(c_in: int, c_out: int, lanes: int, itemsize: int,
                       volume: bool = False) -> bool:
    """Whether a layer the Winograd kernel can run runs faster on it than on the direct one.

    Winograd F(2x2, 3x3) takes 2.25x fewer multiply-adds (F(2x2x2, 3x3x3), a ``volume``,
    3.375x); its transforms cost additions per input and output element, which at least
    :data:`WINOGRAD_MIN_CHANNELS` input and output channels, and a vector (``lanes``) of
    each, amortise. Measured here (AVX-512, 2 threads, against the kernel the plan ran
    before; forced Winograd, best of 10 interleaved), float32: 3x3 16 -> 16 at 56x56
    (batch 8) 1.12x, 32 -> 16 1.43x, 16 -> 32 1.56x, 32 -> 24 1.66x, 64 -> 16 at 28x28 1.40x;
    3x3x3 at 32^3 (batch 2) 16 -> 16 1.17x, 32 -> 16 1.22x; but 32 -> 8 0.79x, 8 -> 16
    0.52x, 3x3x3 32 -> 8 0.66x and 8 -> 16 0.58x. float64 (8 lanes): 16 -> 16 1.36x, but
    8 -> 8 0.82x, 3x3x3 8 -> 8 0.70x and 16 -> 8 0.90x. (With 16 output channels, one
    vector, the products skip the register tile's second vector, and since the outputs'
    transposed stores the 3x3x3 16 -> 32 forward runs 1.41x faster than with a scatter per
    pixel.) Transformed weights (16 or 64 elements per channel pair) beyond
    :data:`WINOGRAD_MAX_WEIGHT_BYTES` are not preferred.

    Examples
    --------
    >>> winograd_preferred(64, 64, 16, 4), winograd_preferred(16, 16, 16, 4)
    (True, True)
    >>> winograd_preferred(512, 512, 16, 4), winograd_preferred(16, 16, 8, 8)
    (False, True)
    >>> winograd_preferred(32, 8, 16, 4, volume=True), winograd_preferred(16, 8, 8, 8)
    (False, False)
    """
    elements = 64 if volume else 16
    return (min(c_in, c_out) >= max(lanes, WINOGRAD_MIN_CHANNELS)
            and elements * c_in * c_out * itemsize <= WINOGRAD_MAX_WEIGHT_BYTES)


def dense_applicable(padding_mode: str, groups: int, c_in: int, c_out: int) -> bool:
    """Whether the dense micro-kernel can run a convolution (or its stride phases) at all.

    Examples
    --------
    >>> dense_applicable("zeros", 1, 3, 8), dense_applicable("reflect", 1, 3, 8)
    (True, False)
    """
    return padding_mode == "zeros" and groups == 1 and c_in > 0 and c_out > 0


def weight_algorithm(padding_mode: str, groups: int, c_in: int, c_out: int, cols: int,
                     channel_block: int, planar_layout: bool,
                     forced: str | None = None, kernel: tuple[int, ...] = (),
                     stride: tuple[int, ...] = (), pads_nonnegative: bool = True,
                     lanes: int = 0) -> str:
    """Algorithm of a weight gradient: dense, depthwise, planar or gather.

    One zero-padded group with at least half a channel block of output channels takes the
    dense register tiles (a matrix product per tap over pixels). Otherwise channels-first
    data take the planar kernel (vector dot products along rows, any stride:
    :func:`column_phases`) when a group is small (at most 64 channel pairs) or rows are
    long (``cols``, at least 512); everything else the gather kernel. Depthwise layers
    whose output rows fill at most one and a half vectors (``lanes``; ``kernel``,
    ``stride`` and the pads as for :func:`depthwise_preferred`) take the gradient with a
    vector lane per channel: measured (AVX-512, float32, 3x3 filters in one pass of nine
    taps), 1.5x the planar one on 7x7 planes, 1.7-2.1x on 14x14 outputs (3x3, 5x5, 7x7,
    stride 1 and 2), 1.03-1.16x on 16 and 17 columns, but 0.82-1.12x on 28 columns,
    where the planar dot products run on whole rows.

    Examples
    --------
    >>> weight_algorithm("zeros", 1, 64, 64, 56, 16, True)
    'dense'
    >>> weight_algorithm("zeros", 256, 256, 256, 56, 16, True)
    'planar'
    >>> weight_algorithm("reflect", 1, 64, 64, 56, 16, True)
    'gather'
    >>> weight_algorithm("reflect", 1, 1, 1, 1024, 16, True)
    'planar'
    >>> weight_algorithm("zeros", 960, 960, 960, 7, 16, True, None, (3, 3), (1, 1), True, 16)
    'depthwise'
    """
    dense, planar = _applicable(padding_mode, groups, c_in, c_out, planar_layout)
    depthwise = depthwise_applicable(padding_mode, groups, c_in, c_out, planar,
                                     pads_nonnegative)
    if forced is not None:
        return _forced_choice(forced, dense, planar, depthwise=depthwise)
    if depthwise and lanes and depthwise_preferred(c_in, kernel, stride, cols, lanes) and \
            2 * cols <= 3 * lanes:
        return "depthwise"
    if dense and 2 * c_out >= channel_block:
        return "dense"
    small = (c_in // max(groups, 1)) * (c_out // max(groups, 1)) <= 64
    return "planar" if planar and (small or cols >= 512) else "gather"


#: Vectors of consecutive output columns a planar strip keeps in registers, per row.
PLANAR_STRIP_VECTORS = 4


@register_jitable
def planar_tile_width(cols: int, taps: int, dilation: int, lanes: int) -> int:
    """Elements per row of a planar kernel's padded tile, rounded up to whole vectors.

    The window of ``cols`` outputs plus the slack an over-long strip reads.

    Examples
    --------
    >>> planar_tile_width(56, 3, 1, 8)
    96
    """
    needed = cols + dilation * (taps - 1) + PLANAR_STRIP_VECTORS * lanes
    return (needed + lanes - 1) // lanes * lanes


@register_jitable
def planar_tile_rows(rows: int, stride: int, taps: int, dilation: int) -> int:
    """Input rows a block of ``rows`` output rows reads (along ``D1``).

    Examples
    --------
    >>> planar_tile_rows(56, 1, 3, 1)
    58
    """
    return (rows - 1) * stride + dilation * (taps - 1) + 1


def planar_row_block(tasks_per_block: int, rows: int, cols: int, row_bytes: int,
                     halo: int = 0, tile_bytes: int = 1 << 17, min_tasks: int = 64) -> int:
    """Output rows per task of the planar kernels.

    About 4096 outputs per task amortise its fixed costs, and at least ``4 * halo`` rows
    (``halo``: the input rows a task's tile holds beyond its own, ``(taps - 1) *
    dilation``) keep the rows its neighbours copy again within a quarter of its own; all
    within a padded input tile of at most ``tile_bytes`` (``row_bytes`` per output row).
    Fewer rows when that would leave fewer than ``min_tasks`` tasks (``tasks_per_block``
    tasks for each block of rows).

    Examples
    --------
    >>> planar_row_block(1, 1024, 1024, 4128), planar_row_block(1, 1024, 1024, 4128, 4)
    (4, 16)
    >>> planar_row_block(2048, 56, 56, 384)
    56
    >>> planar_row_block(1, 1024, 8, 96)
    16
    >>> planar_row_block(1, 112, 112, 49152, 3), planar_row_block(1, 112, 112, 49152, 3,
    ...                                                           1 << 19, 16)
    (1, 5)
    """
    wanted = max(4096 // max(cols, 1), 4 * halo)
    block = max(1, min(rows, wanted, tile_bytes // max(row_bytes, 1)))
    while block > 1 and tasks_per_block * -(-rows // block) < min_tasks:
        block = (block + 1) // 2
    return block


#: Bytes of a depthwise task's channels-last tile at most (with its output block, in L2;
#: measured: 64 KiB and 96 KiB equal on 7x7 filters over 56x56 planes).
DEPTHWISE_TILE_BYTES = 96 * 1024


def depthwise_row_block(rows: int, stride: int, halo: int, row_bytes: int, tasks: int,
                        threads: int) -> int:
    """Output rows per task of the channel-vector depthwise kernel.

    As many as keep the tile (``(block - 1) * stride + halo + 1`` rows of ``row_bytes``)
    within :data:`DEPTHWISE_TILE_BYTES`, fewer where ``tasks`` (per row block) would
    leave a thread fewer than eight.

    Examples
    --------
    >>> depthwise_row_block(14, 1, 6, 20 * 64, 192, 2)
    14
    >>> depthwise_row_block(56, 1, 6, 62 * 64, 48, 2)
    18
    """
    fit = max(1, (DEPTHWISE_TILE_BYTES // max(row_bytes, 1) - halo - 1) // stride + 1)
    block = min(rows, fit)
    while block > 1 and tasks * -(-rows // block) < 8 * threads:
        block = (block + 1) // 2
    return block


#: Chunks of depthwise tasks per thread (see :func:`depthwise_tasks_per_chunk`).
DEPTHWISE_CHUNKS_PER_THREAD = 4


def depthwise_tasks_per_chunk(tasks: int, threads: int) -> int:
    """Consecutive depthwise tasks run by one iteration of the kernel's parallel loop.

    One call of the task function, which allocates and zeroes its tile and buffers, per
    chunk: :data:`DEPTHWISE_CHUNKS_PER_THREAD` chunks per thread (handed out dynamically),
    at least one task each. Results do not depend on the chunks (each task writes its own
    outputs, and reuses the tile only where it rewrites it). Measured (2 threads): 64 chunks
    per call -> 8 took a 7x7 layer on 7x7 planes (768 channels) from 186 to 158 us and
    one on 14x14 planes from 277 to 248 us; 8 and 16 chunks per thread were 2-7% slower
    than 4 on nine depthwise layers (forward and input gradient, dynamic scheduling);
    allocating and zeroing them per task was a tenth of a 7x7 layer's time on 14x14
    planes.

    Examples
    --------
    >>> depthwise_tasks_per_chunk(192, 2), depthwise_tasks_per_chunk(20, 8)
    (24, 1)
    """
    return max(1, tasks // (DEPTHWISE_CHUNKS_PER_THREAD * max(threads, 1)))


#: Multiply-adds a chunk of planar tasks (one parallel-loop iteration) should hold at least:
#: an iteration costs about a microsecond of scheduling (measured: 2048 one-plane tasks of a
#: depthwise 3x3 layer, 28k multiply-adds each, spent 0.23 ms of a 3.2 ms call on it; in
#: chunks of nine, 0.11 ms).
PLANAR_CHUNK_FMAS = 1 << 18


@register_jitable
def planar_tasks_per_chunk(tasks: int, task_fmas: int) -> int:
    """Consecutive planar tasks run by one iteration of the kernel's parallel loop.

    Enough for :data:`PLANAR_CHUNK_FMAS` multiply-adds, while leaving at least 64 chunks
    (dynamic scheduling evens the threads out with them); the tasks of a chunk run on one
    thread in order, so a task may prefetch the next one's data.

    Examples
    --------
    >>> planar_tasks_per_chunk(2048, 28224), planar_tasks_per_chunk(64, 28224)
    (9, 1)
    >>> planar_tasks_per_chunk(4096, 1 << 20)
    1
    """
    per = max(1, PLANAR_CHUNK_FMAS // max(task_fmas, 1))
    return max(1, min(per, tasks // 64))


def planar_out_block(out_group: int, accumulator_bytes: int) -> int:
    """Output channels per weight-gradient task, keeping its accumulators within 64 KiB.

    Each block of a group copies the group's input tile again, so fewer, larger blocks
    save fills. Measured (AVX-512, float32, 2 threads; 32 KiB before): 8x8-channel groups
    at stride 2 (256 channels, 56x56 input) 4.9-5.2 -> 4.0-4.6 ms, at stride 1 (28x28)
    1.33-1.37 -> 1.17-1.31 ms, 4x16 at stride 2 0.94-0.96 -> 0.83-0.86 ms; 4x16 and 2x32
    at stride 1 unchanged within noise.

    Examples
    --------
    >>> planar_out_block(1, 1152)
    1
    >>> planar_out_block(64, 2304)
    28
    """
    return max(1, min(out_group, (1 << 16) // max(accumulator_bytes, 1)))


class ColumnPhases(NamedTuple):
    """How the planar kernels run a convolution strided along the last dimension.

    Tile row ``k`` of an input row (``k < phases``) holds the padded positions ``c *
    stride + k`` for ``c = 0, 1, ...``: tap ``t`` (padded position ``j * stride + t *
    dilation`` for output column ``j``) then reads phase ``slots[t][0]`` at column ``j +
    slots[t][1] * step``, unit stride. The kernels see a filter of ``taps`` columns
    ``step`` apart per phase (zero where no tap lands), the phases folded into the taps
    along ``D0``: one tile row per phase and input row.
    """

    #: Tile rows per input row (each written from every ``stride``-th padded position).
    phases: int
    #: Columns of the filter the kernels run (per phase).
    taps: int
    #: Column step of that filter (its dilation).
    step: int
    #: ``(phase, column)`` of each tap of the real filter, in tap order.
    slots: tuple[tuple[int, int], ...]


def column_phases(taps: int, stride: int, dilation: int) -> ColumnPhases:
    """Split a filter strided along the last dimension into unit-stride column phases.

    Tap ``t`` reads padded position ``j * stride + t * dilation``: phase ``(t * dilation)
    % stride``, column ``j + (t * dilation) // stride``. The phases are numbered by that
    remainder, so as many are kept as the largest remainder needs (all of them used when
    the dilation is 1); the column offsets share their greatest common divisor as the
    filter's step. A unit stride gives the filter back unchanged (one phase).

    Examples
    --------
    >>> column_phases(3, 1, 2)
    ColumnPhases(phases=1, taps=3, step=2, slots=((0, 0), (0, 1), (0, 2)))
    >>> column_phases(3, 2, 1)  # phase 0: taps 0 and 2; phase 1: tap 1
    ColumnPhases(phases=2, taps=2, step=1, slots=((0, 0), (1, 0), (0, 1)))
    >>> column_phases(3, 2, 2)  # every tap on an even position
    ColumnPhases(phases=1, taps=3, step=1, slots=((0, 0), (0, 1), (0, 2)))
    >>> column_phases(1, 4, 1)
    ColumnPhases(phases=1, taps=1, step=1, slots=((0, 0),))
    """
    if stride == 1:
        return ColumnPhases(1, taps, dilation, tuple((0, t) for t in range(taps)))
    places = [divmod(t * dilation, stride) for t in range(taps)]
    step = math.gcd(*(column for column, _ in places)) or 1
    return ColumnPhases(max(phase for _, phase in places) + 1,
                        max(column for column, _ in places) // step + 1, step,
                        tuple((phase, column // step) for column, phase in places))
