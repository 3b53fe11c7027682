"""Winograd F(2x2, 3x3) kernels: 3x3 stride-1 convolutions in 16 products per 2x2 outputs.

A 2x2 block of outputs of a 3x3 filter reads a 4x4 block of input (a *tile*). Winograd's
minimal filtering algorithm F(2x2, 3x3) computes it as

    Y = A^T [ (G g G^T) * (B^T d B) ] A

with ``g`` the 3x3 filter of one (output, input) channel pair, ``d`` the 4x4 input tile
and ``*`` the element-wise product of two 4x4 matrices: 16 multiplications where the
direct convolution takes 36. Summed over input channels, the 16 element-wise products
become 16 independent matrix products (one per element ``xi`` of the 4x4 transform
domain)

    M[xi][k, p] = sum_c U[xi][k, c] V[xi][c, p]

over output channels ``k``, input channels ``c`` and tiles ``p``, which run on the same
register tiles as the direct kernel (:mod:`fastconv._dense`): 8 tiles x two vectors of
output channels, weights loaded as vectors, inputs broadcast. That is 2.25x fewer
multiply-adds than the direct convolution, for the price of the transforms: of the
weights (``U = G g G^T``, once per call, :func:`transform_weights`), of each tile of input
(``V = B^T d B``: additions only) and of each tile of output (``A^T M A``: additions only).

The matrices (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", 2016)::

    B^T = [1  0 -1  0]     G = [ 1    0    0 ]     A^T = [1  1  1  0]
          [0  1  1  0]         [1/2  1/2  1/2]           [0  1 -1 -1]
          [0 -1  1  0]         [1/2 -1/2  1/2]
          [0  1  0 -1]         [ 0    0    1 ]

Their entries are 0, +-1 and +-1/2: the transforms add at most four numbers of the same
size, and each output sums ``C`` products per element of the transform domain (the
direct kernel sums ``9 C``). Measured against a float64 reference (float32, unit normal
data, 32 to 256 channels), the largest error was 0.11-0.15 of the test suite's tolerance,
against 0.37-0.45 for the direct kernel.

Layout. The transformed weights are ``U[xi][kb][c][j]``: 16 x output-channel blocks of
two vectors x input channels (rounded up to a vector, zeros beyond) x the block's
channels (zeros beyond the last). A task computes ``R`` rows of tiles (``2 R`` output
rows) of one sample: it copies the ``2 R + 2`` input rows it reads into a zero-padded
channels-last tile (vector transposes for channels-first data), transforms every tile
into ``V[xi][p][c]`` (vectors of input channels), then for each block of output channels
runs the 16 matrix products into ``M[xi][p][j]`` (only its first vector when the second
is past the last output channel) and transforms ``M`` into the block's outputs, written in
place through the output's strides (masked for a last, short block; channels-first ones
through transposes of runs of whole output rows, :func:`_copy_runs`).
A dilated filter (dilation ``d``) is a convolution per row and column phase of the output
(rows ``a, a + d, ...`` read input rows ``a - pad + d m``): a task copies its row phase's
input rows, every column, and runs the tiles of each column phase from them, a tile's
pixels ``d`` apart. Every output element is computed by one task, in an order that depends
on the shapes only: results are bitwise the same for any thread count.
"""

from __future__ import annotations

import itertools
import math
from functools import lru_cache
from typing import NamedTuple

import numba
import numpy as np
from numba import njit, prange, types

from . import _jit  # imports _runtime first: a writable cache location before any njit
from ._dense import flat_view
from ._kernels import data_type, transpose_run
from ._runtime import CACHE
from ._simd import (
    VECTOR_BITS,
    lanes_for,
    ptr_of,
    vbroadcast,
    vbroadcast_load,
    vfma,
    vlanes,
    vload,
    vload_every,
    vstore,
    vstore_every,
    vstore_masked,
    vtranspose_copy_window,
    vzero,
)

__all__ = [
    "PREFERRED",
    "ROWS",
    "TILE_P",
    "WinogradPlan",
    "run_winograd",
    "transformed_shape",
    "winograd_plan",
]

#: Tiles per register tile of the matrix products (8 tiles x 2 vectors: 16 accumulators).
TILE_P = 8

#: Whether the plan prefers Winograd over the direct kernel where it applies: with 32
#: vector registers (AVX-512), which the 16 accumulators, two weight vectors and a
#: broadcast need. With 16, the register tile would spill; the kernel stays correct there
#: (tests force it) but is not chosen.
PREFERRED: bool = VECTOR_BITS >= 512

#: Input channels per pass of a register tile over the transformed weights: 128 keeps a
#: block's weights (128 x 32 float32, 16 KiB) in L1 while it meets every tile of a task.
CHANNEL_CHUNK = 128

#: Tiles a task aims at (its rows of tiles times tiles per row): enough to reuse each
#: block of transformed weights over several register tiles.
TASK_TILES = 48

#: Largest transformed input of a task (``16 x tiles x channels``), which the matrix
#: products read once per block of output channels: within L2 with its weights.
TASK_INPUT_BYTES = 512 * 1024

#: Input channels a task copies into its tile at a time (then transforms) when its tile of
#: all of them does not fit the spare memory: the tile of 256 channels took 64 KiB of a
#: thread's scratch, which the workspace of a chunked call (:func:`winograd_plan`) could not
#: spare. Groups of 16, 32 and 64 channels ran the 256-channel 14x14 layer equally fast
#: (in 4 chunks, 6.5-6.8 ms); 128 channels in groups of 64 ran 1-2% slower than in one.
FILL_CHANNELS = 32

#: Fewest blocks of output channels (two vectors each) per chunk of a chunked call. Each
#: chunk transforms the input again: with one block (32 float32 channels) that cost about
#: as much as the Winograd products saved.
MIN_CHUNK_BLOCKS = 2

#: Vectors of padding between the transformed input's rows of the transform domain
#: (``V[xi]``, ``tiles x channels`` each). Without it, with the usual channel counts the
#: rows lie a multiple of 4 KiB apart: the 16 stores of a tile's transform, and the
#: products' reads, then share one set of the L1 cache. Two vectors of padding took the
#: 256-channel 14x14 layer from 5.72 to 5.42 ms (best of 20, 2 threads), the 64- and
#: 128-channel layers' forward and input gradient up 4-8%. Not for a volume's 64 rows
#: (the 3-D forward ran 1% slower with it).
V_PAD = 2

# ``dims`` entries (an int64 array; a tuple argument costs Numba's dispatcher more)
_N, _H, _W, _C, _K, _HO, _WO = 0, 1, 2, 3, 4, 5, 6
_SN, _SH, _SW, _SC = 7, 8, 9, 10  # input element strides: sample, row, column, channel
_ON, _OH, _OW, _OK = 11, 12, 13, 14  # output element strides
_PAD_TOP, _PAD_LEFT = 15, 16
ROWS, _TX, _TY, _BLOCKS, _CP, _KB, _PP, _TILE_SIZE, _V_SIZE = 17, 18, 19, 20, 21, 22, 23, 24, 25
_DH, _DW = 26, 27  # dilations
# volumes (3x3x3 filters): input planes, plane strides, output planes, front pad, tile planes
_D, _SD, _OD, _DO, _PAD_FRONT, _TZ, _STAGE = 28, 29, 30, 31, 32, 33, 34
_VS = 35  # elements between consecutive elements of the transform domain in V
_G = 36  # channels per fill of a task's tile (a multiple of a vector; Cp: all of them)


def transformed_shape(c_out: int, c_in: int, dtype: np.dtype, volume: bool = False
                      ) -> tuple[int, int, int, int]:
    """Shape of the transformed weights :func:`transform_weights` writes.

    ``(16, blocks of output channels, input channels rounded up to a vector, block)``, a
    block being two vectors of output channels; 64 elements of the transform domain for a
    ``volume`` (3x3x3 filters).

    Examples
    --------
    >>> transformed_shape(64, 3, np.float32) == (16, 2, lanes_for(np.float32), \
2 * lanes_for(np.float32))
    True
    """
    lanes = lanes_for(dtype)
    block = 2 * lanes
    return (64 if volume else 16, -(-c_out // block), -(-c_in // lanes) * lanes, block)


@njit(cache=CACHE, inline="always")
def _g_times(x0, x1, x2):
    """``G x`` of a column of three: the four entries of the transform domain."""
    half = 0.5 * (x0 + x2)
    return x0, half + 0.5 * x1, half - 0.5 * x1, x2


@njit(cache=CACHE, inline="always")
def _g_times_vectors(x0, x1, x2, half):
    """:func:`_g_times` of vectors (``half``: 0.5 in every lane)."""
    mean = (x0 + x2) * half
    middle = x1 * half
    return x0, mean + middle, mean - middle, x2


@njit(cache=CACHE, inline="always")
def _store_vectors(u, at, step, x0, x1, x2, half):
    """Row ``(G x)^T`` of ``U`` of vectors: to ``u[at]``, ``u[at + step]``, ..."""
    y0, y1, y2, y3 = _g_times_vectors(x0, x1, x2, half)
    vstore(u, at, y0)
    vstore(u, at + step, y1)
    vstore(u, at + 2 * step, y2)
    vstore(u, at + 3 * step, y3)


@njit(cache=CACHE, inline="always")
def _transform_block(src, dims, out, kb, cp, step, half):
    """:func:`_transform_task` of 3x3 filters: a vector of output channels at a time.

    Each tap of a vector of filters is a gather (the output channels' stride apart; zeros
    past the last input and output channel), ``G g G^T`` vector operations, the 16 rows of
    ``U`` vector stores.
    """
    lanes = vlanes(out)
    block = 2 * lanes
    c_out, c_in = dims[_W_K], dims[_W_C]
    s_k, s_c = dims[_W_STRIDES], dims[_W_STRIDES + 1]
    s_y, s_x = dims[_W_STRIDES + 3], dims[_W_STRIDES + 4]
    for c in range(cp):
        at = (kb * cp + c) * block
        for h in range(2):
            k0 = kb * block + h * lanes
            count = min(lanes, c_out - k0) if c < c_in else 0
            o = dims[_W_BASE] + k0 * s_k + c * s_c
            # G g, a column of g at a time: the 4x3 intermediate's columns
            a0, a1, a2, a3 = _g_times_vectors(vload_every(src, o, s_k, count),
                                              vload_every(src, o + s_y, s_k, count),
                                              vload_every(src, o + 2 * s_y, s_k, count), half)
            o += s_x
            b0, b1, b2, b3 = _g_times_vectors(vload_every(src, o, s_k, count),
                                              vload_every(src, o + s_y, s_k, count),
                                              vload_every(src, o + 2 * s_y, s_k, count), half)
            o += s_x
            e0, e1, e2, e3 = _g_times_vectors(vload_every(src, o, s_k, count),
                                              vload_every(src, o + s_y, s_k, count),
                                              vload_every(src, o + 2 * s_y, s_k, count), half)
            # (G g) G^T, a row of the intermediate at a time
            q = at + h * lanes
            _store_vectors(out, q, step, a0, b0, e0, half)
            _store_vectors(out, q + 4 * step, step, a1, b1, e1, half)
            _store_vectors(out, q + 8 * step, step, a2, b2, e2, half)
            _store_vectors(out, q + 12 * step, step, a3, b3, e3, half)


@njit(cache=CACHE, inline="always")
def _store_row(u, at, step, x0, x1, x2):
    """Row ``(G x)^T`` of ``U``: entries ``at``, ``at + step``, ... of ``u``."""
    y0, y1, y2, y3 = _g_times(x0, x1, x2)
    u[at] = y0
    u[at + step] = y1
    u[at + 2 * step] = y2
    u[at + 3 * step] = y3


# the weight transform's ``dims`` (:func:`_transform_task`)
_W_K, _W_C, _W_VOLUME, _W_BASE, _W_STRIDES, _W_BLOCKS, _W_CP = 0, 1, 2, 3, 4, 9, 10


@njit(cache=CACHE, inline="always")
def _weight_at(w, dims, k, c, z, y, x):
    """Tap ``(z, y, x)`` of filter ``(k, c)``: the weights are read from their lowest address."""
    return w[dims[_W_BASE] + k * dims[_W_STRIDES] + c * dims[_W_STRIDES + 1]
             + z * dims[_W_STRIDES + 2] + y * dims[_W_STRIDES + 3] + x * dims[_W_STRIDES + 4]]


@njit(cache=CACHE)
def _transform_task(src, dims, u, aux, out, scratch, task, tid):
    """Block ``task`` of output channels of the transformed weights, into ``out``.

    ``U = G g G^T`` of each 3x3 filter ``g`` (of a volume's 3x3x3 filters: ``G`` along each
    of the three axes) of the weights ``src`` (from their lowest-addressed element, signed
    strides in ``dims``, flipped adjoint kernels included). 3x3 filters are transformed a
    vector of output channels at a time (:func:`_transform_block`). A volume's rows of the
    block (64 elements x two vectors of output channels) are made in thread ``tid``'s
    scratch, then copied whole: written one element at a time, the rows (a multiple of 4
    KiB apart) shared the same L1 sets. Zeros past the last input and output channel.
    Launched through
    :func:`_forward`, like the convolution's tasks (``u`` and ``aux`` are not read).
    """
    lanes = vlanes(scratch)
    block = 2 * lanes
    kb, cp, c_out, c_in = task, dims[_W_CP], dims[_W_K], dims[_W_C]
    volume = dims[_W_VOLUME] == 1
    elements = 64 if volume else 16
    step = dims[_W_BLOCKS] * cp * block  # between consecutive elements of the domain
    work = scratch[tid]
    if not volume:
        work[0] = 0.5  # a constant of the weights' type
        _transform_block(src, dims, out, kb, cp, step, vbroadcast(work[0]))
        return
    count = min(block, c_out - kb * block)  # the block's output channels
    rows = work[:64 * block]
    depth = work[64 * block:64 * block + 36]  # a volume's filter, G along its planes
    plane = work[64 * block + 36:64 * block + 84]  # then along its rows
    for e in range(elements * block):
        rows[e] = 0
    for c in range(cp):
        at = (kb * cp + c) * block
        if c >= c_in:
            for xi in range(elements):
                for j in range(block):
                    out[xi * step + at + j] = 0
            continue
        for j in range(count):
            k = kb * block + j
            if volume:
                for y in range(3):
                    for x in range(3):
                        t0, t1, t2, t3 = _g_times(_weight_at(src, dims, k, c, 0, y, x),
                                                  _weight_at(src, dims, k, c, 1, y, x),
                                                  _weight_at(src, dims, k, c, 2, y, x))
                        depth[3 * y + x], depth[9 + 3 * y + x] = t0, t1
                        depth[18 + 3 * y + x], depth[27 + 3 * y + x] = t2, t3
                for z in range(4):
                    for x in range(3):
                        t0, t1, t2, t3 = _g_times(depth[9 * z + x], depth[9 * z + 3 + x],
                                                  depth[9 * z + 6 + x])
                        plane[12 * z + x], plane[12 * z + 3 + x] = t0, t1
                        plane[12 * z + 6 + x], plane[12 * z + 9 + x] = t2, t3
                for z in range(4):
                    for y in range(4):
                        q = 12 * z + 3 * y
                        _store_row(rows, j + (16 * z + 4 * y) * block, block, plane[q],
                                   plane[q + 1], plane[q + 2])
                continue
            # G g, a column of g at a time: the 4x3 intermediate's columns
            a0, a1, a2, a3 = _g_times(_weight_at(src, dims, k, c, 0, 0, 0),
                                      _weight_at(src, dims, k, c, 0, 1, 0),
                                      _weight_at(src, dims, k, c, 0, 2, 0))
            b0, b1, b2, b3 = _g_times(_weight_at(src, dims, k, c, 0, 0, 1),
                                      _weight_at(src, dims, k, c, 0, 1, 1),
                                      _weight_at(src, dims, k, c, 0, 2, 1))
            e0, e1, e2, e3 = _g_times(_weight_at(src, dims, k, c, 0, 0, 2),
                                      _weight_at(src, dims, k, c, 0, 1, 2),
                                      _weight_at(src, dims, k, c, 0, 2, 2))
            # (G g) G^T, a row of the intermediate at a time
            _store_row(rows, j, block, a0, b0, e0)
            _store_row(rows, j + 4 * block, block, a1, b1, e1)
            _store_row(rows, j + 8 * block, block, a2, b2, e2)
            _store_row(rows, j + 12 * block, block, a3, b3, e3)
        for xi in range(elements):
            for j in range(block):
                out[xi * step + at + j] = rows[xi * block + j]


def _lowest_first(weight: np.ndarray) -> tuple[np.ndarray, int, list[int]]:
    """``weight`` with its negative-stride axes reversed, and where its elements are there.

    The element offset of ``weight[0, ..., 0]`` in the reversed view, and the signed
    element strides of ``weight``.
    """
    flips = tuple(slice(None, None, -1) if step < 0 else slice(None) for step in weight.strides)
    strides = [step // weight.itemsize for step in weight.strides]
    base = sum(-step * (n - 1) for step, n in zip(strides, weight.shape) if step < 0)
    return weight[flips], base, strides


def transform_weights(weight: np.ndarray, out: np.ndarray,
                      scratch: np.ndarray | None = None) -> np.ndarray:
    """The transformed weights ``U = G g G^T`` of ``(K, C, 3, 3)`` weights, into ``out``.

    ``out`` has :func:`transformed_shape` (C-contiguous); any strides of ``weight`` (an
    adjoint's flipped kernel view included). ``(K, C, 3, 3, 3)`` weights are transformed
    along each of their three axes. ``scratch``: a row per thread of at least
    ``64 * out.shape[3] + 84`` elements of ``out``'s dtype (allocated when None). Returns
    ``out``.

    Examples
    --------
    >>> w = np.zeros((1, 1, 3, 3)); w[0, 0, 1, 1] = 1.0  # the identity filter
    >>> u = transform_weights(w, np.empty(transformed_shape(1, 1, w.dtype)))
    >>> u[:, 0, 0, 0].reshape(4, 4)
    array([[ 0.  ,  0.  ,  0.  ,  0.  ],
           [ 0.  ,  0.25, -0.25,  0.  ],
           [ 0.  , -0.25,  0.25,  0.  ],
           [ 0.  ,  0.  ,  0.  ,  0.  ]])
    """
    dtype = out.dtype
    lowest, base, strides = _lowest_first(weight)
    volume = weight.ndim == 5
    taps = strides[2:] if volume else [0, *strides[2:]]
    dims = np.array([weight.shape[0], weight.shape[1], int(volume), base, *strides[:2], *taps,
                     out.shape[1], out.shape[2]], np.int64)
    if scratch is None:
        scratch = np.empty((numba.get_num_threads(), 64 * out.shape[3] + 84), dtype)
    _jit.ensure_compiled(_forward, _forward_signature, dtype)
    task_at = _jit.address_of(_transform_task, _task_signature, dtype)
    flat = out.reshape(-1)
    _forward(flat_view(lowest), dims, flat, flat[:0], flat, scratch, out.shape[1], task_at)
    return out


@njit(cache=CACHE)
def _fill_row(src, dims, n, iy, tile, at, width, c0, group, plane=0):
    """Input row ``iy`` of sample ``n``, columns from ``-pad_left``, into ``width`` tile pixels.

    Of the input plane ``plane`` elements from the sample's first, channels ``[c0, c0 +
    group)``: channels-last pixels ``group`` apart at ``tile[at:]``; zeros outside the input
    and in the channels past ``C``.
    """
    c_n, cp = min(group, dims[_C] - c0), group
    row = width * cp
    if iy < 0 or iy >= dims[_H] or c_n <= 0:
        for e in range(row):
            tile[at + e] = 0
        return
    pad = dims[_PAD_LEFT]
    lo = min(width, max(0, pad))  # tile pixels left of the input
    hi = max(lo, min(width, dims[_W] + pad))
    for e in range(lo * cp):
        tile[at + e] = 0
    for e in range(hi * cp, row):
        tile[at + e] = 0
    cols = hi - lo
    if cols <= 0:
        return
    s_c, s_w = dims[_SC], dims[_SW]
    base = n * dims[_SN] + plane + iy * dims[_SH] + (lo - pad) * s_w + c0 * s_c
    src_p, tile_p = ptr_of(src, 0), ptr_of(tile, 0)
    if s_w == 1 and c_n > 1:  # channels-first: vector transposes
        transpose_run(src, base, s_c, cols, c_n, tile, at + lo * cp, cp)
    else:
        for q in range(cols):
            for c in range(c_n):
                tile_p[at + (lo + q) * cp + c] = src_p[base + q * s_w + c * s_c]
    if cp > c_n:
        for q in range(lo, hi):
            for c in range(c_n, cp):
                tile[at + q * cp + c] = 0


@njit(cache=CACHE, inline="always")
def _transform_tile(tile, o, step, v, q, s):
    """``V = B^T d B`` of the 4x4 tile at ``tile[o]`` (pixels ``step`` apart, rows ``row``).

    Lanes of channels: ``d[i][j]`` is the vector at ``o + i * row + j * pixel``, passed as
    ``step = (pixel, row)``; element ``xi`` goes to ``v[q + xi * s]``.
    """
    px, rw = step
    d00 = vload(tile, o)
    d01 = vload(tile, o + px)
    d02 = vload(tile, o + 2 * px)
    d03 = vload(tile, o + 3 * px)
    o1 = o + rw
    d10 = vload(tile, o1)
    d11 = vload(tile, o1 + px)
    d12 = vload(tile, o1 + 2 * px)
    d13 = vload(tile, o1 + 3 * px)
    o2 = o1 + rw
    d20 = vload(tile, o2)
    d21 = vload(tile, o2 + px)
    d22 = vload(tile, o2 + 2 * px)
    d23 = vload(tile, o2 + 3 * px)
    o3 = o2 + rw
    d30 = vload(tile, o3)
    d31 = vload(tile, o3 + px)
    d32 = vload(tile, o3 + 2 * px)
    d33 = vload(tile, o3 + 3 * px)
    # B^T d: rows
    t00, t01, t02, t03 = d00 - d20, d01 - d21, d02 - d22, d03 - d23
    t10, t11, t12, t13 = d10 + d20, d11 + d21, d12 + d22, d13 + d23
    t20, t21, t22, t23 = d20 - d10, d21 - d11, d22 - d12, d23 - d13
    t30, t31, t32, t33 = d10 - d30, d11 - d31, d12 - d32, d13 - d33
    # (B^T d) B: columns
    vstore(v, q, t00 - t02)
    vstore(v, q + s, t01 + t02)
    vstore(v, q + 2 * s, t02 - t01)
    vstore(v, q + 3 * s, t01 - t03)
    vstore(v, q + 4 * s, t10 - t12)
    vstore(v, q + 5 * s, t11 + t12)
    vstore(v, q + 6 * s, t12 - t11)
    vstore(v, q + 7 * s, t11 - t13)
    vstore(v, q + 8 * s, t20 - t22)
    vstore(v, q + 9 * s, t21 + t22)
    vstore(v, q + 10 * s, t22 - t21)
    vstore(v, q + 11 * s, t21 - t23)
    vstore(v, q + 12 * s, t30 - t32)
    vstore(v, q + 13 * s, t31 + t32)
    vstore(v, q + 14 * s, t32 - t31)
    vstore(v, q + 15 * s, t31 - t33)


@njit(cache=CACHE, inline="always")
def _products(u, v, m, ub, vb, mb, c0, c1, cp, lanes):
    """One register tile: ``m[mb:] (+)= sum_c u[ub + c * block] v[vb + p * cp + c]``.

    8 tiles (``p``) x two vectors of output channels over channels ``[c0, c1)``; the
    accumulators start at zero for ``c0 == 0``, else at what ``m`` holds.
    """
    if c0 == 0:
        a00, a01, a10, a11 = vzero(m), vzero(m), vzero(m), vzero(m)
        a20, a21, a30, a31 = vzero(m), vzero(m), vzero(m), vzero(m)
        a40, a41, a50, a51 = vzero(m), vzero(m), vzero(m), vzero(m)
        a60, a61, a70, a71 = vzero(m), vzero(m), vzero(m), vzero(m)
    else:
        a00, a01 = vload(m, mb), vload(m, mb + lanes)
        a10, a11 = vload(m, mb + 2 * lanes), vload(m, mb + 3 * lanes)
        a20, a21 = vload(m, mb + 4 * lanes), vload(m, mb + 5 * lanes)
        a30, a31 = vload(m, mb + 6 * lanes), vload(m, mb + 7 * lanes)
        a40, a41 = vload(m, mb + 8 * lanes), vload(m, mb + 9 * lanes)
        a50, a51 = vload(m, mb + 10 * lanes), vload(m, mb + 11 * lanes)
        a60, a61 = vload(m, mb + 12 * lanes), vload(m, mb + 13 * lanes)
        a70, a71 = vload(m, mb + 14 * lanes), vload(m, mb + 15 * lanes)
    up, vp = ptr_of(u, 0), ptr_of(v, 0)
    for c in range(c0, c1):
        w0 = vload(up, ub + 2 * lanes * c)
        w1 = vload(up, ub + 2 * lanes * c + lanes)
        b = vbroadcast_load(vp, vb + c)
        a00, a01 = vfma(b, w0, a00), vfma(b, w1, a01)
        b = vbroadcast_load(vp, vb + cp + c)
        a10, a11 = vfma(b, w0, a10), vfma(b, w1, a11)
        b = vbroadcast_load(vp, vb + 2 * cp + c)
        a20, a21 = vfma(b, w0, a20), vfma(b, w1, a21)
        b = vbroadcast_load(vp, vb + 3 * cp + c)
        a30, a31 = vfma(b, w0, a30), vfma(b, w1, a31)
        b = vbroadcast_load(vp, vb + 4 * cp + c)
        a40, a41 = vfma(b, w0, a40), vfma(b, w1, a41)
        b = vbroadcast_load(vp, vb + 5 * cp + c)
        a50, a51 = vfma(b, w0, a50), vfma(b, w1, a51)
        b = vbroadcast_load(vp, vb + 6 * cp + c)
        a60, a61 = vfma(b, w0, a60), vfma(b, w1, a61)
        b = vbroadcast_load(vp, vb + 7 * cp + c)
        a70, a71 = vfma(b, w0, a70), vfma(b, w1, a71)
    vstore(m, mb, a00)
    vstore(m, mb + lanes, a01)
    vstore(m, mb + 2 * lanes, a10)
    vstore(m, mb + 3 * lanes, a11)
    vstore(m, mb + 4 * lanes, a20)
    vstore(m, mb + 5 * lanes, a21)
    vstore(m, mb + 6 * lanes, a30)
    vstore(m, mb + 7 * lanes, a31)
    vstore(m, mb + 8 * lanes, a40)
    vstore(m, mb + 9 * lanes, a41)
    vstore(m, mb + 10 * lanes, a50)
    vstore(m, mb + 11 * lanes, a51)
    vstore(m, mb + 12 * lanes, a60)
    vstore(m, mb + 13 * lanes, a61)
    vstore(m, mb + 14 * lanes, a70)
    vstore(m, mb + 15 * lanes, a71)


@njit(cache=CACHE, inline="always")
def _products_one(u, v, m, ub, vb, mb, c0, c1, cp, lanes):
    """:func:`_products` of the first vector of output channels only: 8 accumulators.

    For a block whose second vector is all past the last output channel (its ``m`` entries
    stay unwritten, and its outputs are not stored).
    """
    if c0 == 0:
        a0, a1, a2, a3 = vzero(m), vzero(m), vzero(m), vzero(m)
        a4, a5, a6, a7 = vzero(m), vzero(m), vzero(m), vzero(m)
    else:
        a0, a1 = vload(m, mb), vload(m, mb + 2 * lanes)
        a2, a3 = vload(m, mb + 4 * lanes), vload(m, mb + 6 * lanes)
        a4, a5 = vload(m, mb + 8 * lanes), vload(m, mb + 10 * lanes)
        a6, a7 = vload(m, mb + 12 * lanes), vload(m, mb + 14 * lanes)
    up, vp = ptr_of(u, 0), ptr_of(v, 0)
    for c in range(c0, c1):
        w0 = vload(up, ub + 2 * lanes * c)
        a0 = vfma(vbroadcast_load(vp, vb + c), w0, a0)
        a1 = vfma(vbroadcast_load(vp, vb + cp + c), w0, a1)
        a2 = vfma(vbroadcast_load(vp, vb + 2 * cp + c), w0, a2)
        a3 = vfma(vbroadcast_load(vp, vb + 3 * cp + c), w0, a3)
        a4 = vfma(vbroadcast_load(vp, vb + 4 * cp + c), w0, a4)
        a5 = vfma(vbroadcast_load(vp, vb + 5 * cp + c), w0, a5)
        a6 = vfma(vbroadcast_load(vp, vb + 6 * cp + c), w0, a6)
        a7 = vfma(vbroadcast_load(vp, vb + 7 * cp + c), w0, a7)
    vstore(m, mb, a0)
    vstore(m, mb + 2 * lanes, a1)
    vstore(m, mb + 4 * lanes, a2)
    vstore(m, mb + 6 * lanes, a3)
    vstore(m, mb + 8 * lanes, a4)
    vstore(m, mb + 10 * lanes, a5)
    vstore(m, mb + 12 * lanes, a6)
    vstore(m, mb + 14 * lanes, a7)


@njit(cache=CACHE, inline="always")
def _zero_tail(v, tiles, pp, cp, s, elements):
    """Zeros for the tiles ``[tiles, pp)`` a short last register tile multiplies."""
    for p in range(tiles, pp):
        for xi in range(elements):
            for c in range(cp):
                v[xi * s + p * cp + c] = 0


@njit(cache=CACHE, inline="always")
def _tile_products(u, v, m, kb, p0, dims, elements, lanes):
    """The ``elements`` products of register tile ``p0`` with output-channel block ``kb``.

    Into ``m[xi * TILE_P * block:]``, a channel chunk at a time (:func:`_products`).
    """
    block = 2 * lanes
    cp, kb_n = dims[_CP], dims[_KB]
    s = dims[_VS]
    one = dims[_K] - kb * block <= lanes  # the block's second vector: past the last channel
    for xi in range(elements):
        ub = (xi * kb_n + kb) * cp * block
        for c0 in range(0, cp, CHANNEL_CHUNK):
            if one:
                _products_one(u, v, m, ub, xi * s + p0 * cp, xi * TILE_P * block, c0,
                              min(cp, c0 + CHANNEL_CHUNK), cp, lanes)
            else:
                _products(u, v, m, ub, xi * s + p0 * cp, xi * TILE_P * block, c0,
                          min(cp, c0 + CHANNEL_CHUNK), cp, lanes)


@njit(cache=CACHE, inline="always")
def _store(out, off, step, vec, count):
    """Lanes ``[0, count)`` of ``vec`` to ``out[off + i * step]`` (contiguous for step 1)."""
    if step == 1:
        vstore_masked(out, off, vec, count)
    else:
        vstore_every(out, off, step, vec, count)


@njit(cache=CACHE, inline="always")
def _output_tile(m, q, s, bias, out, off, steps, count, right, below):
    """``Y = A^T M A`` (+ bias) of the tile whose ``M[xi]`` is ``m[q + xi * s]``, into ``out``.

    Lanes of output channels (``count`` of them), stored at ``out[off]``: ``steps`` are the
    elements between channels, between the tile's columns and between its rows; ``right``,
    ``below``: whether its second column and row exist.
    """
    m0, m1, m2, m3 = vload(m, q), vload(m, q + s), vload(m, q + 2 * s), vload(m, q + 3 * s)
    m4, m5, m6, m7 = (vload(m, q + 4 * s), vload(m, q + 5 * s), vload(m, q + 6 * s),
                      vload(m, q + 7 * s))
    m8, m9, m10, m11 = (vload(m, q + 8 * s), vload(m, q + 9 * s), vload(m, q + 10 * s),
                        vload(m, q + 11 * s))
    m12, m13, m14, m15 = (vload(m, q + 12 * s), vload(m, q + 13 * s), vload(m, q + 14 * s),
                          vload(m, q + 15 * s))
    # A^T M: rows
    s00, s01, s02, s03 = m0 + m4 + m8, m1 + m5 + m9, m2 + m6 + m10, m3 + m7 + m11
    s10, s11, s12, s13 = m4 - m8 - m12, m5 - m9 - m13, m6 - m10 - m14, m7 - m11 - m15
    step, right_step, below_step = steps
    _store(out, off, step, s00 + s01 + s02 + bias, count)
    if right:
        _store(out, off + right_step, step, s01 - s02 - s03 + bias, count)
    if below:
        _store(out, off + below_step, step, s10 + s11 + s12 + bias, count)
        if right:
            _store(out, off + below_step + right_step, step, s11 - s12 - s13 + bias, count)


@njit(cache=CACHE, inline="always")
def _copy_runs(stage, out, dims, p0, last, ty0, count, lanes):
    """Register tile ``p0``'s staged outputs, ``count`` channels, to channels-first rows.

    Its tiles ``[p0, last)``: ``stage`` holds their outputs as channels-last pixels of two
    rows of ``2 * TILE_P`` pixels (tile ``p0 + t`` at pixels ``2 t, 2 t + 1``). Each run of
    its tiles in one row of tiles (of a task whose first row of tiles is ``ty0``) is copied
    transposed to the output rows it covers (channels ``dims[_OK]`` apart, pixels adjacent,
    rows ``dims[_OH]`` apart, from ``out[0]``), within the output's last row and column; up
    to ``lanes`` pixels past the staged ones are read, not stored.
    """
    row = 2 * TILE_P * lanes
    tx_n, ho, wo = dims[_TX], dims[_HO], dims[_WO]
    p = p0
    while p < last:  # a run of tiles in one row of tiles
        ty = p // tx_n
        end = min(last, (ty + 1) * tx_n)
        oy, ox = 2 * (ty0 + ty), 2 * (p - ty * tx_n)
        width = min(2 * (end - p), wo - ox)
        at = dims[_OH] * oy + ox
        for i in range(min(2, ho - oy)):
            for c0 in range(0, width, lanes):
                vtranspose_copy_window(stage, i * row + (2 * (p - p0) + c0) * lanes, lanes, out,
                                       at + i * dims[_OH] + c0, dims[_OK], count, width - c0)
        p = end


@njit(cache=CACHE)
def _store_runs(m, q, bias, stage, out, dims, p0, last, ty0, count, lanes):
    """Register tile ``p0``'s outputs through ``stage`` and transposes (:func:`_copy_runs`).

    Its tiles' four vectors (``Y = A^T M A`` plus bias) go to ``stage`` first.
    """
    block = 2 * lanes
    ms = TILE_P * block
    row = 2 * TILE_P * lanes
    for t in range(last - p0):
        _output_tile(m, t * block + q, ms, bias, stage, 2 * t * lanes, (1, lanes, row), lanes,
                     True, True)
    _copy_runs(stage, out, dims, p0, last, ty0, count, lanes)


@njit(cache=CACHE)
def _task(src, dims, u, aux, out, scratch, task, tid):
    """Task ``task``: ``R`` rows of tiles of a sample's row phase, on thread ``tid``'s scratch.

    With dilations ``(dh, dw)``, output rows ``a, a + dh, ...`` (row phase ``a``) and
    columns ``b, b + dw, ...`` (column phase ``b``) are a stride-1 undilated convolution of
    input rows ``a - pad_top + dh * m`` and columns ``b - pad_left + dw * m``. The task
    copies its row phase's input rows (every column) into its tile, then runs the tiles of
    every column phase from it, a tile's pixels ``dw`` apart.
    """
    lanes = vlanes(scratch)
    block = 2 * lanes
    blocks = dims[_BLOCKS]
    dh, dw = dims[_DH], dims[_DW]
    phase, ty0 = task // blocks, (task % blocks) * dims[ROWS]
    n, a = phase // dh, phase % dh
    tx_n = dims[_TX]
    rows = min(dims[ROWS], dims[_TY] - ty0)
    tiles = rows * tx_n
    cp, pp, kb_n = dims[_CP], dims[_PP], dims[_KB]
    work = scratch[tid]
    tile_at, v_at, m_at = 0, dims[_TILE_SIZE], dims[_TILE_SIZE] + dims[_V_SIZE]
    width = dw * (2 * tx_n + 2)  # tile pixels: input columns from -pad_left on
    iy0 = a - dims[_PAD_TOP] + 2 * dh * ty0
    group = dims[_G]
    s = dims[_VS]
    v = work[v_at:]
    _zero_tail(v, tiles, pp, cp, s, 16)
    m = work[m_at:]
    ms = TILE_P * block
    k_n, ho, wo = dims[_K], dims[_HO], dims[_WO]
    steps = (dims[_OK], dw * dims[_OW], dh * dims[_OH])
    # channels-first rows, undilated: a register tile stores its outputs through transposes
    # (runs of pixels of whole rows) instead of a scatter per pixel
    staged = dims[_OW] == 1 and dims[_OK] != 1 and dw == 1 and dh == 1
    stage = work[dims[_STAGE]:]
    for b in range(dw):
        for g0 in range(0, cp, group):
            # the row phase's input rows, channels-last and zero-padded, a group of
            # channels at a time; the plan gives a dilated layer (several column phases,
            # one fill) one group of all of them
            if b == 0:
                for r in range(2 * rows + 2):
                    _fill_row(src, dims, n, iy0 + dh * r, work, tile_at + r * width * group,
                              width, g0, group)
            # every tile's transform: V[xi][p][c]
            for p in range(tiles):
                ty = p // tx_n
                o = tile_at + (2 * ty * width + b + 2 * dw * (p - ty * tx_n)) * group
                for c0 in range(0, min(group, cp - g0), lanes):
                    _transform_tile(work, o + c0, (dw * group, width * group), v,
                                    p * cp + g0 + c0, s)
        for kb in range(kb_n):
            for p0 in range(0, tiles, TILE_P):
                # a register tile's 16 products, then its tiles' outputs (M stays in L1)
                _tile_products(u, v, m, kb, p0, dims, 16, lanes)
                last = min(tiles, p0 + TILE_P)
                for h in range(2):
                    k0 = kb * block + h * lanes
                    count = min(lanes, k_n - k0)
                    if count <= 0:
                        break
                    bias = vload(aux, k0)
                    if staged:
                        _store_runs(m, h * lanes, bias, stage, out[n * dims[_ON] + k0 * dims[_OK]:],
                                    dims, p0, last, ty0, count, lanes)
                        continue
                    for p in range(p0, last):
                        ty = p // tx_n
                        oy = a + 2 * dh * (ty0 + ty)
                        ox = b + 2 * dw * (p - ty * tx_n)
                        if oy >= ho or ox >= wo:  # past a short phase's last output
                            continue
                        off = n * dims[_ON] + oy * dims[_OH] + ox * dims[_OW] + \
                            k0 * dims[_OK]
                        _output_tile(m, (p - p0) * block + h * lanes, ms, bias, out, off,
                                     steps, count, ox + dw < wo, oy + dh < ho)


@njit(cache=CACHE, inline="always")
def _planes_across(m, q, ms, stage, lanes):
    """``A^T`` across the planes of a volume's tile whose ``M[xi]`` is ``m[q + xi * ms]``.

    The two output planes' 16 elements each go to ``stage`` (vectors, plane after plane).
    """
    for e in range(16):
        m0 = vload(m, q + e * ms)
        m1 = vload(m, q + (16 + e) * ms)
        m2 = vload(m, q + (32 + e) * ms)
        m3 = vload(m, q + (48 + e) * ms)
        vstore(stage, e * lanes, m0 + m1 + m2)
        vstore(stage, (16 + e) * lanes, m1 - m2 - m3)


@njit(cache=CACHE)
def _task3(src, dims, u, aux, out, scratch, task, tid):
    """Task ``task`` of a volume: ``R`` rows of tiles of one plane of tiles of one sample.

    F(2x2x2, 3x3x3): a tile is 4x4x4 input pixels (two output planes of 2x2), transformed
    along the rows and columns of each of its four planes (:func:`_transform_tile`, into a
    small stage), then across them: 64 elements of the transform domain, 64 matrix
    products; their outputs are transformed across the planes first, then along rows and
    columns of the two output planes (:func:`_output_tile`).
    """
    lanes = vlanes(scratch)
    block = 2 * lanes
    blocks = dims[_BLOCKS]
    plane_n, ty0 = task // blocks, (task % blocks) * dims[ROWS]
    n, tz = plane_n // dims[_TZ], plane_n % dims[_TZ]
    tx_n = dims[_TX]
    rows = min(dims[ROWS], dims[_TY] - ty0)
    tiles = rows * tx_n
    cp, pp, kb_n = dims[_CP], dims[_PP], dims[_KB]
    work = scratch[tid]
    v_at = dims[_TILE_SIZE]
    m_at = v_at + dims[_V_SIZE]
    stage_at = dims[_STAGE]
    width = 2 * tx_n + 2
    plane_size = (2 * rows + 2) * width * cp
    iy0 = 2 * ty0 - dims[_PAD_TOP]
    for z in range(4):  # the four input planes' rows, channels-last and zero-padded
        iz = 2 * tz - dims[_PAD_FRONT] + z
        for r in range(2 * rows + 2):
            at = z * plane_size + r * width * cp
            if iz < 0 or iz >= dims[_D]:
                for e in range(width * cp):
                    work[at + e] = 0
            else:
                _fill_row(src, dims, n, iy0 + r, work, at, width, 0, cp, iz * dims[_SD])
    s = dims[_VS]
    v = work[v_at:]
    stage = work[stage_at:]
    _zero_tail(v, tiles, pp, cp, s, 64)
    for p in range(tiles):
        ty = p // tx_n
        o = (2 * ty * width + 2 * (p - ty * tx_n)) * cp
        for c0 in range(0, cp, lanes):
            for z in range(4):
                _transform_tile(work, z * plane_size + o + c0, (cp, width * cp), stage,
                                16 * z * lanes, lanes)
            for e in range(16):  # B^T across the planes
                d0 = vload(stage, e * lanes)
                d1 = vload(stage, (16 + e) * lanes)
                d2 = vload(stage, (32 + e) * lanes)
                d3 = vload(stage, (48 + e) * lanes)
                q = p * cp + c0 + e * s
                vstore(v, q, d0 - d2)
                vstore(v, q + 16 * s, d1 + d2)
                vstore(v, q + 32 * s, d2 - d1)
                vstore(v, q + 48 * s, d1 - d3)
    m = work[m_at:]
    ms = TILE_P * block
    k_n, do, ho, wo = dims[_K], dims[_DO], dims[_HO], dims[_WO]
    steps = (dims[_OK], dims[_OW], dims[_OH])
    # channels-first planes: a register tile's outputs go through transposes, a plane's two
    # rows at a time, instead of a scatter per pixel (:func:`_copy_runs`)
    staged = dims[_OW] == 1 and dims[_OK] != 1
    planes = stage[32 * lanes:]  # two planes of two rows of 2 * TILE_P pixels, and slack
    plane_stage = 4 * TILE_P * lanes
    for kb in range(kb_n):
        for p0 in range(0, tiles, TILE_P):
            _tile_products(u, v, m, kb, p0, dims, 64, lanes)
            last = min(tiles, p0 + TILE_P)
            for h in range(2):
                k0 = kb * block + h * lanes
                count = min(lanes, k_n - k0)
                if count <= 0:
                    break
                bias = vload(aux, k0)
                if staged:
                    for p in range(p0, last):
                        _planes_across(m, (p - p0) * block + h * lanes, ms, stage, lanes)
                        for z in range(2):
                            _output_tile(stage, 16 * z * lanes, lanes, bias, planes,
                                         z * plane_stage + 2 * (p - p0) * lanes,
                                         (1, lanes, 2 * TILE_P * lanes), lanes, True, True)
                    for z in range(min(2, do - 2 * tz)):
                        _copy_runs(planes[z * plane_stage:], out[
                            n * dims[_ON] + (2 * tz + z) * dims[_OD] + k0 * dims[_OK]:],
                            dims, p0, last, ty0, count, lanes)
                    continue
                for p in range(p0, last):
                    ty = p // tx_n
                    oz, oy, ox = 2 * tz, 2 * (ty0 + ty), 2 * (p - ty * tx_n)
                    _planes_across(m, (p - p0) * block + h * lanes, ms, stage, lanes)
                    off = n * dims[_ON] + oz * dims[_OD] + oy * dims[_OH] + ox * dims[_OW] + \
                        k0 * dims[_OK]
                    for z in range(min(2, do - oz)):
                        _output_tile(stage, 16 * z * lanes, lanes, bias, out,
                                     off + z * dims[_OD], steps, count, ox + 1 < wo,
                                     oy + 1 < ho)


def _task_signature(dtype: np.dtype) -> tuple:
    """Argument types of :func:`_task`."""
    index = data_type(np.dtype(np.int64), 1, layout="C")
    return (data_type(dtype, 1, layout="C"), index, data_type(dtype, 1, layout="C"),
            data_type(dtype, 1, layout="C"), data_type(dtype, 1, True, "C"),
            data_type(dtype, 2, True, "C"), types.int64, types.int64)


_call_task = _jit.caller(_task_signature)


def _forward_signature(dtype: np.dtype) -> tuple:
    """Argument types of :func:`_forward`: a task's but the last two, the count, the address."""
    return _task_signature(dtype)[:-2] + (types.int64, types.int64)


@njit(parallel=True, cache=CACHE)
def _forward(src, dims, u, aux, out, scratch, tasks, task_at):
    """Tasks ``0 .. tasks - 1`` of the task function at ``task_at``, in parallel."""
    for task in prange(tasks):
        _call_task(task_at, (src, dims, u, aux, out, scratch, np.int64(task),
                             np.int64(numba.get_thread_id())))


class WinogradPlan(NamedTuple):
    """A Winograd call's shapes: ``dims`` for the kernel, the scratch per thread and tiles.

    ``transformed_shape`` is that of the transformed weights of one chunk of output
    channels (``chunk_channels`` of them; all of them when they fit): a call transforms
    the weights of a chunk, then runs its tasks, chunk after chunk.
    """

    dims: np.ndarray
    transformed_shape: tuple[int, int, int, int]
    scratch_shape: tuple[int, int]
    itemsize: int
    chunk_channels: int
    channels: int

    @property
    def chunks(self) -> int:
        """Chunks of output channels, each its own weight transform and run of the tasks."""
        return _ceil_div(self.channels, self.chunk_channels)

    @property
    def workspace_bytes(self) -> int:
        """Bytes of a chunk's transformed weights, the scratch and the padded bias."""
        shape = self.transformed_shape
        return (math.prod(shape) + math.prod(self.scratch_shape) +
                _round_up(self.channels, shape[3])) * self.itemsize


def task_rows(tiles_across: int, tiles_down: int, channels: int, itemsize: int,
              elements: int = 16) -> int:
    """Rows of tiles per task: about :data:`TASK_TILES` tiles, within :data:`TASK_INPUT_BYTES`.

    ``elements``: of the transform domain (16, or 64 for a volume).

    Examples
    --------
    >>> task_rows(28, 28, 64, 4), task_rows(14, 14, 128, 4), task_rows(7, 7, 256, 4)
    (2, 4, 4)
    """
    rows = max(1, min(tiles_down, -(-TASK_TILES // tiles_across)))
    while rows > 1 and elements * _round_up(rows * tiles_across, TILE_P) * channels * \
            itemsize > TASK_INPUT_BYTES:
        rows -= 1
    return rows


def _ceil_div(n: int, m: int) -> int:
    return -(-n // m)


def _round_up(n: int, m: int) -> int:
    return _ceil_div(n, m) * m


def _chunk_blocks(blocks: int) -> list[int]:
    """Blocks of output channels per chunk, from all of them down to :data:`MIN_CHUNK_BLOCKS`.

    One entry per number of chunks that changes the chunk (the last chunk may be shorter).

    Examples
    --------
    >>> _chunk_blocks(8), _chunk_blocks(3), _chunk_blocks(1)
    ([8, 4, 3, 2], [3, 2], [1])
    """
    sizes = []
    for chunks in range(1, blocks + 1):
        size = _ceil_div(blocks, chunks)
        if size < min(blocks, MIN_CHUNK_BLOCKS):
            break
        if not sizes or size != sizes[-1]:
            sizes.append(size)
    return sizes


@lru_cache(maxsize=256)
def winograd_plan(src_shape: tuple[int, ...], src_strides: tuple[int, ...],
                  dest_shape: tuple[int, ...], dest_strides: tuple[int, ...],
                  pad_low: tuple[int, ...], dilation: tuple[int, ...], dtype: np.dtype,
                  threads: int, budget: float = math.inf) -> WinogradPlan | None:
    """The plan of a call on canonical ``(N, D, H, W, C)`` views (strides in bytes), or None.

    ``dest_shape`` is ``(N, Do, Ho, Wo, K)``; ``pad_low`` the (top, left) padding of 3x3
    filters, or the (front, top, left) padding of 3x3x3 ones (a volume, undilated);
    ``dilation`` the 3x3 filter's (each row and column phase its own tiles). Tasks
    take :func:`task_rows` rows of tiles, fewer when the workspace (transformed weights,
    the threads' scratch) would exceed ``budget`` bytes: with a tile of all input channels
    first, then of :data:`FILL_CHANNELS`. When one row does not fit either,
    the output channels go in chunks (:func:`_chunk_blocks`, fewest chunks first), each
    with its own transformed weights: every chunk transforms the input again. None when
    no chunk of :data:`MIN_CHUNK_BLOCKS` blocks fits.

    Examples
    --------
    >>> def planned(budget):
    ...     plan = winograd_plan((8, 1, 28, 28, 128), (401408, 0, 112, 4, 100352),
    ...                          (8, 1, 28, 28, 128), (401408, 0, 112, 4, 100352), (1, 1),
    ...                          (1, 1), np.dtype(np.float32), 2, budget)
    ...     return int(plan.dims[ROWS]), int(plan.dims[_G]), plan.chunks, plan.workspace_bytes
    >>> planned(math.inf)  # rows of tiles per task, channels per fill, chunks, bytes
    (4, 128, 1, 2318848)
    >>> planned(1.7e6), planned(1.4e6), planned(1.0e6)
    ((1, 128, 1, 1479168), (1, 32, 1, 1387008), (1, 128, 2, 954880))
    """
    itemsize = np.dtype(dtype).itemsize
    lanes = lanes_for(dtype)
    n, d, h, w, c = src_shape
    _, do, ho, wo, k = dest_shape
    volume = len(pad_low) == 3
    front, top, left = pad_low if volume else (0, *pad_low)
    dh, dw = (1, 1) if volume else dilation
    # the tiles of a phase (the first phases': at most), a 2x2 block of its outputs each
    tx, ty = _ceil_div(_ceil_div(wo, dw), 2), _ceil_div(_ceil_div(ho, dh), 2)
    tz, planes, elements = (_ceil_div(do, 2), 4, 64) if volume else (1, 1, 16)
    cp = _round_up(c, lanes)
    # all channels in one fill first; a dilated layer's column phases read one fill
    groups = (cp,) if volume or dw > 1 or cp <= FILL_CHANNELS else (cp, FILL_CHANNELS)
    shape = transformed_shape(k, c, dtype, volume)
    s_src = [s // itemsize for s in src_strides]
    s_dest = [s // itemsize for s in dest_strides]
    for blocks in _chunk_blocks(shape[1]):
        chunk = min(k, blocks * shape[3])
        for group, rows in itertools.product(
                groups, range(task_rows(tx, ty, cp, itemsize, elements), 0, -1)):
            pp = _round_up(rows * tx, TILE_P)
            tile_size = planes * (2 * rows + 2) * dw * (2 * tx + 2) * group
            v_stride = pp * cp + (0 if volume else V_PAD * lanes)
            v_size = elements * v_stride
            m_size = elements * TILE_P * 2 * lanes
            # a register tile's output rows (and a volume's tile, then its two planes' rows),
            # with the pixels past them its transposes read
            stage_size = (160 if volume else 64) * lanes
            plan = WinogradPlan(None, (shape[0], blocks, *shape[2:]),
                                (threads, tile_size + v_size + m_size + stage_size), itemsize,
                                chunk, k)
            if plan.workspace_bytes > budget:
                continue
            dims = np.array([n, h, w, c, chunk, ho, wo, s_src[0], s_src[2], s_src[3],
                             s_src[4], s_dest[0], s_dest[2], s_dest[3], s_dest[4], top, left,
                             rows, tx, ty, -(-ty // rows), cp, blocks, pp, tile_size, v_size,
                             dh, dw, d, s_src[1], s_dest[1], do, front, tz,
                             tile_size + v_size + m_size, v_stride, group],
                            np.int64)
            dims.flags.writeable = False
            return plan._replace(dims=dims)
    return None


def run_winograd(plan: WinogradPlan, src: np.ndarray, weight: np.ndarray,
                 bias: np.ndarray | None, out: np.ndarray) -> None:
    """Run a planned call: ``out = conv(src, weight) + bias``.

    ``src`` and ``out``: the canonical views the plan was made for (non-negative strides;
    ``out`` writable in place); ``weight``: ``(K, C, 3, 3)`` or ``(K, C, 3, 3, 3)`` of the
    output's dtype, any strides. A chunk of output channels at a time, it transforms the
    chunk's weights (:func:`transform_weights`) and runs every task on them.
    """
    dtype = out.dtype
    elements, blocks, cp, block = plan.transformed_shape
    channels = plan.channels
    aux = np.zeros(_round_up(channels, block), dtype)
    if bias is not None:
        aux[:channels] = bias
    transformed = np.empty(math.prod(plan.transformed_shape), dtype)
    scratch = np.empty(plan.scratch_shape, dtype)
    _jit.ensure_compiled(_forward, _forward_signature, dtype)
    task_at = _jit.address_of(_task3 if elements == 64 else _task, _task_signature, dtype)
    dims = plan.dims
    tasks = int(dims[_N] * dims[_TZ] * dims[_DH] * dims[_BLOCKS])
    source = flat_view(src)
    for k0 in range(0, channels, plan.chunk_channels):
        k1 = min(channels, k0 + plan.chunk_channels)
        chunk_blocks = _ceil_div(k1 - k0, block)
        u = transformed[:elements * chunk_blocks * cp * block]
        transform_weights(weight[k0:k1], u.reshape(elements, chunk_blocks, cp, block),
                          scratch)  # the tasks' scratch: longer rows than the transform's
        if k1 - k0 != dims[_K]:  # a short last chunk
            dims = dims.copy()
            dims[_K], dims[_KB] = k1 - k0, chunk_blocks
        _forward(source, dims, u, aux[k0:], flat_view(out[..., k0:k1]), scratch, tasks,
                 task_at)
