"""Plan layer: pure functions of shapes.

Everything here works on Python integers and tuples (and builds small integer index
tables); nothing touches the data arrays. The public API normalises and validates the
arguments, asks this module for the geometry of a call, and hands the result to the
compiled kernels in :mod:`fastconv._kernels`.

The engine always runs a 3-D problem: 1-D and 2-D convolutions are padded with leading
unit spatial dimensions (:func:`to_3d`).

Index tables
------------
For one spatial dimension, a *tap table* ``table[q, t]`` gives the input position read by
output position ``q`` through kernel tap ``t``, after padding, or ``-1`` when that read
falls on a zero pad::

    p = q * stride + t * dilation - pad_low        # position in the padded input
    table[q, t] = index_map(p)                     # source index, or -1

``index_map`` encodes the padding mode (zeros, reflect, replicate, circular), so the
kernels never build a padded copy of the input. A *gather list* is the same relation in
compressed-row form, keyed by the position the kernel writes: for the forward pass it lists,
for every output position, its ``(source, tap)`` pairs; for the input gradient and the
transposed convolution it lists, for every input position, the ``(output, tap)`` pairs that
read it (the adjoint). One gather kernel runs both.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple

import numpy as np

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


def effective_kernel(kernel: int, dilation: int) -> int:
    """Span of a dilated kernel: ``dilation * (kernel - 1) + 1``.

    Examples
    --------
    >>> effective_kernel(3, 2)
    5
    """
    return dilation * (kernel - 1) + 1


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


def source_index(position: np.ndarray, size: int, mode: str) -> np.ndarray:
    """Map positions in the padded input to source indices (``-1`` for a zero pad).

    Examples
    --------
    >>> source_index(np.arange(-2, 6), 4, "reflect").tolist()
    [2, 1, 0, 1, 2, 3, 2, 1]
    >>> source_index(np.arange(-2, 6), 4, "circular").tolist()
    [2, 3, 0, 1, 2, 3, 0, 1]
    >>> source_index(np.arange(-2, 6), 4, "replicate").tolist()
    [0, 0, 0, 1, 2, 3, 3, 3]
    >>> source_index(np.arange(-2, 6), 4, "zeros").tolist()
    [-1, -1, 0, 1, 2, 3, -1, -1]
    """
    if size == 0:
        return np.full(position.shape, -1, dtype=np.int64)
    if mode == "zeros":
        inside = (position >= 0) & (position < size)
        return np.where(inside, position, -1).astype(np.int64)
    if mode == "replicate":
        return np.clip(position, 0, size - 1).astype(np.int64)
    if mode == "circular":
        return np.mod(position, size).astype(np.int64)
    # reflect (mirror without repeating the edge); pads are validated to be < size
    reflected = np.abs(position)
    reflected = np.where(reflected >= size, 2 * (size - 1) - reflected, reflected)
    return reflected.astype(np.int64)


@lru_cache(maxsize=512)
def tap_table(
    out_size: int, in_size: int, kernel: int, stride: int, dilation: int, pad_low: int, mode: str
) -> np.ndarray:
    """Table ``[out_size, kernel]`` of source indices read by each output and tap.

    Examples
    --------
    >>> tap_table(3, 3, 3, 1, 1, 1, "zeros").tolist()
    [[-1, 0, 1], [0, 1, 2], [1, 2, -1]]
    """
    position = (
        np.arange(out_size, dtype=np.int64)[:, None] * stride
        + np.arange(kernel, dtype=np.int64)[None, :] * dilation
        - pad_low
    )
    table = source_index(position, in_size, mode)
    table.flags.writeable = False
    return table


class GatherList(NamedTuple):
    """Compressed rows of ``(source, tap)`` pairs for every position the kernel writes.

    Row ``r`` is ``entries[start[r]:start[r + 1]]``; each entry is ``(source, tap)``.
    """

    start: np.ndarray
    entries: np.ndarray


def _compress(keys: np.ndarray, sources: np.ndarray, taps: np.ndarray, rows: int) -> GatherList:
    """Group ``(source, tap)`` pairs by ``keys`` (stable, so the order within a row is fixed)."""
    order = np.argsort(keys, kind="stable")
    counts = np.bincount(keys, minlength=rows) if keys.size else np.zeros(rows, np.int64)
    start = np.zeros(rows + 1, dtype=np.int64)
    np.cumsum(counts, out=start[1:])
    entries = np.ascontiguousarray(np.stack([sources[order], taps[order]], axis=1), np.int64)
    start.flags.writeable = False
    entries.flags.writeable = False
    return GatherList(start, entries.reshape(-1, 2))


@lru_cache(maxsize=512)
def forward_list(table_key: tuple) -> GatherList:
    """Gather list of the forward pass: for each output, its valid ``(source, tap)`` pairs.

    ``table_key`` is the argument tuple of :func:`tap_table`.

    Examples
    --------
    >>> fl = forward_list((3, 3, 3, 1, 1, 1, "zeros"))
    >>> fl.start.tolist(), fl.entries.tolist()
    ([0, 2, 5, 7], [[0, 1], [1, 2], [0, 0], [1, 1], [2, 2], [1, 0], [2, 1]])
    """
    table = tap_table(*table_key)
    out_size, kernel = table.shape
    q, t = np.nonzero(table >= 0)
    return _compress(q.astype(np.int64), table[q, t], t.astype(np.int64), out_size)


@lru_cache(maxsize=512)
def adjoint_list(table_key: tuple) -> GatherList:
    """Gather list of the adjoint pass: for each input, the ``(output, tap)`` pairs reading it.

    Examples
    --------
    >>> al = adjoint_list((3, 3, 3, 1, 1, 1, "zeros"))
    >>> al.start.tolist(), al.entries.tolist()
    ([0, 2, 5, 7], [[0, 1], [1, 0], [0, 2], [1, 1], [2, 0], [1, 2], [2, 1]])
    """
    table = tap_table(*table_key)
    in_size = table_key[1]
    q, t = np.nonzero(table >= 0)
    return _compress(table[q, t], q.astype(np.int64), t.astype(np.int64), in_size)


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


def reduction_chunks(rows: int, tiles: int) -> int:
    """Number of fixed chunks the grad-weight reduction over output rows is split into.

    Depends only on shapes (never on the thread count), so the summation order and the
    result are the same on any machine. More chunks only when there are few weight tiles.

    Examples
    --------
    >>> reduction_chunks(448, 36)
    1
    >>> reduction_chunks(1, 1)
    1
    >>> reduction_chunks(4000, 2)
    8
    """
    if tiles >= 16 or rows <= 1:
        return 1
    return int(min(rows, -(-16 // max(tiles, 1))))


def flops(batch: int, out_spatial: tuple[int, ...], c_out: int, c_in_per_group: int,
          kernel: tuple[int, ...]) -> int:
    """Floating-point operations of a forward convolution (2 per multiply-add).

    Examples
    --------
    >>> flops(8, (56, 56), 64, 64, (3, 3))
    1849688064
    """
    return 2 * batch * math.prod(out_spatial) * c_out * c_in_per_group * math.prod(kernel)
