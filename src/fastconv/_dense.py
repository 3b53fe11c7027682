"""Dense direct convolution, forward pass, on explicit SIMD micro-kernels.

Layouts:

- input ``x``: ``(N, I0, I1, I2, C_in)``, **not** padded, channels contiguous and pixels
  along ``I2`` adjacent (a channels-last array or a spatial slice of one; see
  :func:`accepts_input`), other strides free;
- packed weights ``wp``: ``(KBn, K0, K1, K2, C_in, KB)``, C-contiguous, made by
  :func:`pack_weights` from ``(C_out, C_in, K0, K1, K2)``, with ``KBn = ceil(C_out / KB)``
  and the output channels zero-padded to ``KBn * KB``;
- output ``out``: ``(N, O0, O1, O2, C_out)``, any non-negative strides: channels-last is
  written with vector stores; the channels-first view of an ``(N, C_out, O0, O1, O2)``
  array is staged per task and written through in-register transposes (see
  :func:`_stage_layout`); anything else (a strided stride phase) element by element
  through a lane buffer.

1-D and 2-D convolutions use unit leading spatial dimensions. The output
extent is taken from ``out``; stride, dilation and low padding are given per
spatial dimension, and zero padding (low and high) is handled inside the kernel.

The work is split into register tiles of ``TILE_P`` consecutive output pixels
(in flattened ``(n, o0, o1, o2)`` order, so rows do not leave ragged tails) by
``KB = 2 * lanes`` output channels. A tile keeps ``2 * TILE_P`` vector
accumulators in registers; per step it loads two weight vectors and broadcasts
one input scalar per pixel (``2 * TILE_P`` FMAs); a layer with at most one vector of
output channels runs, on :data:`NARROW` hosts, blocks of one vector (``KB = lanes``) and
tiles of ``TILE_P`` pixels x one vector: no multiply-add on a half-empty block, and the
same sums in the same order. The packed weights of one
kernel row (``K2`` taps x ``C_in``) are contiguous, and so is the input a pixel
needs for it when its window is inside the input along the last dimension and
the dilation there is 1: the micro-kernel then runs ``K2 * C_in`` steps per
kernel row on one pointer per pixel (with a dilation, ``K2`` runs of ``C_in``
steps, still in place, for tiles whose windows are inside the input). Zero
padding is handled by the pointer: a pixel's row in the padding reads a zero
buffer, and a row cut by the border (or dilated along the last dimension, at
the borders) is first gathered, with zeros, into a small
per-thread scratch span. Interior, border and tail tiles therefore run the same
micro-kernel. In "window mode" (small weights, see :func:`window_mode`) a tile runs
all output-channel blocks in turn over its pixels' windows: read in place, a kernel
row at a time, when they lie inside the input, else gathered once (zeros in the
padding) into scratch.

Tasks are distributed with one flat ``prange`` (small problems run whole on the
calling thread, see :func:`small_conv`). Every output element is produced by exactly
one task with a fixed summation order (``k0, k1, k2``, then input channels ascending, one fused
multiply-add per step, bias added last), so results are bitwise identical for
any thread count, task order, tile size and mode.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache, lru_cache
from typing import NamedTuple

import numba
import numpy as np
from numba import njit, prange, types

from . import _jit  # imports _runtime first: a writable cache location before any njit
from ._kernels import data_type, transpose_run
from ._runtime import CACHE
from ._simd import (
    VECTOR_BITS,
    lanes_for,
    pointer_at,
    prefetch_l2,
    ptr_of,
    vadd,
    vbroadcast_load,
    vfma,
    vlanes,
    vload,
    vload_masked,
    vstore,
    vtranspose_copy,
    vtranspose_copy_partial,
    vtranspose_interleave,
    vtranspose_spread,
    vzero,
)

__all__ = [
    "NARROW",
    "TILE_P",
    "DensePlan",
    "block_size",
    "conv_dense",
    "dense_forward",
    "dense_plan",
    "is_small",
    "output_shape",
    "pack_weights",
    "pack_weights_as",
    "run_dense",
    "run_small",
    "small_call",
    "stages_output",
]

#: Output pixels per register tile, chosen from the host vector width: 8 with 32
#: vector registers (AVX-512: 16 accumulators), 6 with 16 (AVX/AVX2, SSE, NEON:
#: 12 accumulators).
TILE_P: int = 8 if VECTOR_BITS >= 512 else 6

#: Whether a layer with at most one vector of output channels runs one-vector blocks in
#: row mode (``_ntile8``: 8 pixels x ``lanes`` channels, 8 accumulators, see
#: :func:`packed_shape`): with 32 vector registers. With 16, a one-vector tile of six
#: pixels would have too few accumulators to hide the latency of its multiply-adds.
NARROW: bool = TILE_P == 8


def block_size(dtype: np.dtype | type | str) -> int:
    """Return the output-channel block ``KB`` of a register tile: two vectors of `dtype`.

    Parameters
    ----------
    dtype : dtype-like
        ``float32`` or ``float64``.

    Returns
    -------
    int
        ``2 * lanes_for(dtype)`` (32 for float32 and 16 for float64 with AVX-512;
        16 and 8 with AVX2).
    """
    return 2 * lanes_for(dtype)


def pack_weights(w: np.ndarray, lanes_block: int | None = None) -> np.ndarray:
    """Pack dense weights for :func:`dense_forward`.

    Parameters
    ----------
    w : ndarray, shape (C_out, C_in, K0, K1, K2)
        Weights (cross-correlation convention, as in PyTorch), float32 or float64.
    lanes_block : int, optional
        Output-channel block ``KB``. Defaults to :func:`block_size` of ``w.dtype``,
        which is what :func:`dense_forward` requires.

    Returns
    -------
    ndarray, shape (KBn, K0, K1, K2, C_in, KB)
        C-contiguous packed weights, ``KBn = ceil(C_out / KB)``; output channels
        ``>= C_out`` are zero. ``packed[b, k0, k1, k2, c, j] == w[b * KB + j, c, k0, k1, k2]``.
    """
    w = np.asarray(w)
    if w.ndim != 5:
        raise ValueError(f"weights must have shape (C_out, C_in, K0, K1, K2), got {w.shape}")
    kb = block_size(w.dtype) if lanes_block is None else int(lanes_block)
    if kb <= 0:
        raise ValueError("lanes_block must be positive")
    return pack_weights_as(w, w.dtype, kb)


def pack_weights_as(w: np.ndarray, dtype: np.dtype, kb: int,
                    out: np.ndarray | None = None) -> np.ndarray:
    """:func:`pack_weights` of ``w.astype(dtype)`` with block ``kb``, without checks.

    Parameters
    ----------
    w : ndarray, shape (C_out, C_in, K0, K1, K2)
        Weights of any real dtype and any strides.
    dtype : numpy.dtype
        Dtype of the packed weights (values are cast as by ``astype``).
    kb : int
        Output-channel block, positive.
    out : ndarray, optional
        Memory of the result: a C-contiguous array of `dtype` and as many elements
        (whatever its contents), written whole; a new array by default.

    Returns
    -------
    ndarray, shape (KBn, K0, K1, K2, C_in, KB)
        As :func:`pack_weights` (a view of `out` when given).
    """
    c_out, c_in, k0, k1, k2 = w.shape
    full, rest = divmod(c_out, kb)
    shape = (full + (rest > 0), k0, k1, k2, c_in, kb)
    packed = np.empty(shape, dtype=dtype) if out is None else out.reshape(shape)
    if full:
        packed[:full] = w[:full * kb].reshape(full, kb, c_in, k0, k1, k2).transpose(
            0, 3, 4, 5, 2, 1)
    if rest:
        packed[full, ..., :rest] = (w[full * kb:] if full else w).transpose(2, 3, 4, 1, 0)
        packed[full, ..., rest:] = 0
    return packed


def output_shape(
    in_spatial: tuple[int, int, int],
    kernel: tuple[int, int, int],
    stride: tuple[int, int, int],
    dilation: tuple[int, int, int],
    pad_low: tuple[int, int, int],
    pad_high: tuple[int, int, int],
) -> tuple[int, int, int]:
    """Return the output spatial extent of a convolution (0 where the window does not fit).

    Parameters
    ----------
    in_spatial, kernel, stride, dilation, pad_low, pad_high : tuple of 3 int
        Per spatial dimension.

    Returns
    -------
    tuple of 3 int
        ``(I + pl + ph - d * (K - 1) - 1) // s + 1``, clipped at 0.
    """
    out = []
    for i, k, s, d, lo, hi in zip(in_spatial, kernel, stride, dilation, pad_low, pad_high):
        span = i + lo + hi - d * (k - 1)
        out.append(max(0, (span - 1) // s + 1) if span > 0 else 0)
    return tuple(out)


# ----------------------------------------------------------------------------------------------
# tile helpers (compiled into the kernels). They take raw pointers (``CPointer``), not arrays:
# passing an array to a jitted function costs two atomic reference-count updates, which at one
# call per pixel and tap cost more than the micro-kernel itself.


@njit(cache=CACHE, inline="always")
def _decode(q, oshape):
    """Return ``(n, o0, o1, o2)`` of flat output pixel `q`."""
    o2 = q % oshape[2]
    r = q // oshape[2]
    o1 = r % oshape[1]
    r //= oshape[1]
    o0 = r % oshape[0]
    return (r // oshape[0], o0, o1, o2)


@njit(cache=CACHE, inline="always")
def _advance(pos, step, oshape):
    """Return the position `step` flat pixels after `pos` (no division when step < O2)."""
    n, o0, o1, o2 = pos
    o2 += step
    while o2 >= oshape[2]:
        o2 -= oshape[2]
        o1 += 1
        if o1 == oshape[1]:
            o1 = 0
            o0 += 1
            if o0 == oshape[0]:
                o0 = 0
                n += 1
    return (n, o0, o1, o2)


@njit(cache=CACHE)
def _pixel_meta(sp, pos, npix, ptile, ishape, oshape, kshape, geom, lay):
    """Fill the tile scratch `sp` with each pixel's virtual input origin and output offset.

    `pos` = ``(n, o0, o1, o2)`` of the tile's first pixel (see :func:`_decode`); `lay` =
    ``(xsN, xs0, xs1, osN, os0, os1, os2, osK)``, element strides of the input (its last
    spatial stride is ``C_in`` and its channel stride 1) and of the output.

    Layout of `sp` (int64, ``6 * ptile``): ``sp[0*P + p]`` input offset of the pixel's
    window origin (may be virtual), ``sp[1*P + p] .. sp[3*P + p]`` its spatial origin per
    dimension (``o * s - pad_low``), ``sp[4*P + p]`` the per-row source code written by
    :func:`_row_sources`, ``sp[5*P + p]`` the output offset of the pixel's channel 0.
    Pixels ``>= npix`` (a short last tile) repeat the first pixel's window and are never
    stored: their accumulators are discarded, and the tile reads in place whenever its
    pixels' windows do (a call whose windows all lie inside the input never gathers:
    :func:`_windows_inside`).

    Returns whether the whole window of every pixel ``< npix`` lies inside the input.
    """
    i0n, i1n, i2n, cn = ishape
    o0n, o1n, o2n, _ = oshape
    xsn, xs0, xs1, osn, os0, os1, os2, _ = lay
    e0 = (kshape[0] - 1) * geom[1][0]
    e1 = (kshape[1] - 1) * geom[1][1]
    e2 = (kshape[2] - 1) * geom[1][2]
    s0, s1, s2 = geom[0]
    p0, p1, p2 = geom[2]
    n, o0, o1, o2 = pos
    if npix == ptile and o2 + ptile <= o2n:
        # a full tile in one output row (most tiles): steps from the first pixel, one test
        v0 = o0 * s0 - p0
        v1 = o1 * s1 - p1
        v2 = o2 * s2 - p2
        x_at = n * xsn + v0 * xs0 + v1 * xs1 + v2 * cn
        o_at = n * osn + o0 * os0 + o1 * os1 + o2 * os2
        for p in range(ptile):
            sp[p] = x_at + p * s2 * cn
            sp[ptile + p] = v0
            sp[2 * ptile + p] = v1
            sp[3 * ptile + p] = v2 + p * s2
            sp[5 * ptile + p] = o_at + p * os2
        last2 = v2 + (ptile - 1) * s2
        return not (v0 < 0 or v0 + e0 >= i0n or v1 < 0 or v1 + e1 >= i1n or v2 < 0
                    or last2 + e2 >= i2n)
    interior = True
    for p in range(ptile):
        if p < npix:
            v0 = o0 * s0 - p0
            v1 = o1 * s1 - p1
            v2 = o2 * s2 - p2
            sp[p] = n * xsn + v0 * xs0 + v1 * xs1 + v2 * cn
            sp[ptile + p] = v0
            sp[2 * ptile + p] = v1
            sp[3 * ptile + p] = v2
            sp[5 * ptile + p] = n * osn + o0 * os0 + o1 * os1 + o2 * os2
            if v0 < 0 or v0 + e0 >= i0n or v1 < 0 or v1 + e1 >= i1n or v2 < 0 or v2 + e2 >= i2n:
                interior = False
            o2 += 1
            if o2 == o2n:
                o2 = 0
                o1 += 1
                if o1 == o1n:
                    o1 = 0
                    o0 += 1
                    if o0 == o0n:
                        o0 = 0
                        n += 1
        else:
            sp[p] = sp[0]
            sp[ptile + p] = sp[ptile]
            sp[2 * ptile + p] = sp[2 * ptile]
            sp[3 * ptile + p] = sp[3 * ptile]
            sp[5 * ptile + p] = sp[5 * ptile]
    return interior


@njit(cache=CACHE)
def _windows_inside(ishape, oshape, kshape, geom):
    """Whether every output pixel's window lies inside the input: no padding is read.

    Shapes and ``geom`` as :func:`_pixel_meta` takes them (spatial sizes first). Then no
    tile gathers windows, and a plan reserves no scratch for them (:func:`dense_plan`).
    """
    stride, dilation, pad_low = geom
    for a in range(3):
        if pad_low[a] != 0 or (oshape[a] - 1) * stride[a] + (kshape[a] - 1) * dilation[a] \
                >= ishape[a]:
            return False
    return True


@njit(cache=CACHE, inline="always")
def _copy_span(dst, src, n, lanes):
    """Copy `n` elements from pointer `src` to scratch pointer `dst`, whole vectors only.

    The last vector is a masked load (nothing past ``src[n]`` is read) stored whole, so up to
    ``lanes - 1`` elements past ``dst[n]`` get zeros: callers fill scratch in ascending order
    (a later span overwrites the spill) and the scratch rows have that much slack. Masked
    stores are avoided: on some CPUs (AMD Zen) they cost tens of cycles each.
    """
    j = 0
    while j + lanes <= n:
        vstore(dst, j, vload(src, j))
        j += lanes
    if j < n:
        vstore(dst, j, vload_masked(src, j, n - j))


@njit(cache=CACHE, inline="always")
def _zero_span(dst, n, lanes):
    """Zero `n` elements at scratch pointer `dst` (and up to ``lanes - 1`` past them)."""
    z = vzero(dst)
    for j in range(0, n, lanes):
        vstore(dst, j, z)


@njit(cache=CACHE, inline="always")
def _row_sources(xp, fp, sp, ptile, interior, a0, a1, rowoff, ishape, k2n, d2):
    """Choose, for each pixel, where its input for one kernel row (k0, k1) is read from.

    A kernel row of a pixel is ``K2`` taps x ``C_in`` channels; the micro-kernel
    reads it as one contiguous span of ``K2 * C_in`` elements, from one of:
    the input itself (window inside the input along dim 2 and unit dilation:
    code = element offset >= 0), the zero buffer (row in the padding: code -1), or a
    copy gathered here into this thread's float scratch ``fp[p * K2 * C_in:]``, with
    zeros for taps in the padding (code -2).
    Codes go to ``sp[4*P + p]``. Returns the number of pixels not reading zeros.
    """
    i0n, i1n, i2n, cn = ishape
    span = k2n * cn
    nvalid = 0
    for p in range(ptile):
        i0 = sp[ptile + p] + a0
        i1 = sp[2 * ptile + p] + a1
        v2 = sp[3 * ptile + p]
        code = -1
        if interior or (0 <= i0 < i0n and 0 <= i1 < i1n):
            base = sp[p] + rowoff
            if d2 == 1 and (interior or (v2 >= 0 and v2 + k2n - 1 < i2n)):
                code = base
            else:
                dst = ptr_of(fp, p * span)
                for k2 in range(k2n):
                    i2 = v2 + k2 * d2
                    if 0 <= i2 < i2n:
                        _copy_span(
                            ptr_of(dst, k2 * cn), ptr_of(xp, base + k2 * d2 * cn), cn, vlanes(xp)
                        )
                    else:
                        _zero_span(ptr_of(dst, k2 * cn), cn, vlanes(xp))
                code = -2
            nvalid += 1
        sp[4 * ptile + p] = code
    return nvalid


@njit(cache=CACHE, inline="always")
def _src(xp, zp, fp, code, off):
    """Pointer for a source code of :func:`_row_sources` (`off`: the pixel's scratch offset)."""
    if code >= 0:
        return ptr_of(xp, code)
    if code == -1:
        return zp
    return ptr_of(fp, off)


@njit(cache=CACHE)
def _gather_windows(xp, fp, sp, ptile, npix, ishape, kshape, geom, lay):
    """Copy each pixel's whole window (K0 x K1 x K2 x C_in, zeros in the padding) to `fp`.

    Pixel ``p`` goes to ``fp[p * win : (p + 1) * win]`` in the packed-weight
    order (k0, k1, k2, c), so the window-mode micro-kernel runs one contiguous
    loop of ``win`` steps per output-channel block. Pixels ``>= npix`` get zeros.
    """
    i0n, i1n, i2n, cn = ishape
    k0n, k1n, k2n, _ = kshape
    d0, d1, d2 = geom[1]
    span = k2n * cn
    win = k0n * k1n * span
    lanes = vlanes(xp)
    for p in range(ptile):
        dst = ptr_of(fp, p * win)
        if p >= npix:
            _zero_span(dst, win, lanes)
            continue
        v0 = sp[ptile + p]
        v1 = sp[2 * ptile + p]
        v2 = sp[3 * ptile + p]
        cols_inside = d2 == 1 and v2 >= 0 and v2 + k2n - 1 < i2n
        for k0 in range(k0n):
            i0 = v0 + k0 * d0
            for k1 in range(k1n):
                i1 = v1 + k1 * d1
                rdst = ptr_of(dst, (k0 * k1n + k1) * span)
                if not (0 <= i0 < i0n and 0 <= i1 < i1n):
                    _zero_span(rdst, span, lanes)
                    continue
                rowbase = sp[p] + k0 * d0 * lay[1] + k1 * d1 * lay[2]
                if cols_inside:
                    _copy_span(rdst, ptr_of(xp, rowbase), span, lanes)
                    continue
                for k2 in range(k2n):
                    i2 = v2 + k2 * d2
                    if 0 <= i2 < i2n:
                        _copy_span(
                            ptr_of(rdst, k2 * cn), ptr_of(xp, rowbase + k2 * d2 * cn), cn, lanes
                        )
                    else:
                        _zero_span(ptr_of(rdst, k2 * cn), cn, lanes)


@njit(cache=CACHE, inline="always")
def _store_px(op, tb, off, v0, v1, nk, lanes, osk):
    """Store the two vectors of one pixel's output-channel block, up to `nk` channels.

    Channels at element stride `osk`: whole-vector stores when it is 1 (channels-last
    output) and the block is full, else the lanes go through the lane buffer `tb` one
    element at a time (channels-first output written in place with no layout copy, or a
    partial last block: masked stores cost tens of cycles on some CPUs).
    """
    if osk == 1 and nk >= 2 * lanes:
        vstore(op, off, v0)
        vstore(op, off + lanes, v1)
    else:
        vstore(tb, 0, v0)
        vstore(tb, lanes, v1)
        for j in range(min(nk, 2 * lanes)):
            op[off + j * osk] = tb[j]


@njit(cache=CACHE, inline="always")
def _store_px1(op, tb, off, v0, nk, lanes, osk):
    """Store the vector of one pixel's one-vector channel block (:func:`_store_px`'s twin)."""
    if osk == 1 and nk >= lanes:
        vstore(op, off, v0)
    else:
        vstore(tb, 0, v0)
        for j in range(min(nk, lanes)):
            op[off + j * osk] = tb[j]


@njit(cache=CACHE)
def _flush_stage(op, st, qa, qb, cs, c_lo, oshape, lay, kind):
    """Write a task's staged outputs into an output whose channels are not contiguous.

    The stage `st` holds flat output pixels ``[qa, qb)`` channels-last, ``cs`` channels per
    pixel starting at output channel `c_lo`; the output has shape `oshape` (per sample;
    ``oshape[3]`` channels) and element strides ``lay[3:8]`` (sample, three spatial axes,
    channel). `kind` is the stage layout (:func:`_stage_layout`): 1, channels-first planes
    (a sample's pixels consecutive in each plane): blocks of ``lanes`` pixels x ``lanes``
    channels are transposed in registers and written as whole vectors (a short last block
    overlapping the one before it), the channels past the last whole vector one element at
    a time; 2, any pixel strides (a stride phase of a channels-first array, say): a
    channel at a time, along each output row, except pixels at stride 2 (a stride-2
    phase), which go ``lanes`` x ``lanes`` at a time through in-register transposes blended
    into every other element (:func:`fastconv._simd.vtranspose_interleave`): the elements in
    between, another phase's, are read and written back, so the caller must not have them
    written by anything else meanwhile (phases run one launch after another); 3, as 2 but
    accessing no other element (phases running at once, :func:`run_jobs`): pixels at
    stride 2 through masked stores (:func:`fastconv._simd.vtranspose_spread`).
    """
    lanes = vlanes(st)
    kn = oshape[3]
    o1n, o2n = oshape[1], oshape[2]
    ppi = oshape[0] * o1n * o2n
    osn, os0, os1, os2, osk = lay[3], lay[4], lay[5], lay[6], lay[7]
    c_n = min(cs, kn - c_lo)
    full_c = c_n - c_n % lanes
    q = qa
    while q < qb:
        n = q // ppi
        if kind == 1:
            end = min(qb, (n + 1) * ppi)
            cnt = end - q
            full_p = cnt - cnt % lanes
            src = (q - qa) * cs
            dst = n * osn + c_lo * osk + q - n * ppi
            # a short last block of pixels overlaps the block before it (the same values
            # written twice, all this task's)
            done = cnt if cnt >= lanes else 0
            for c in range(0, full_c, lanes):
                for j in range(0, full_p, lanes):
                    vtranspose_copy(st, src + j * cs + c, cs, op, dst + c * osk + j, osk)
                if full_p < done:
                    j = cnt - lanes
                    vtranspose_copy(st, src + j * cs + c, cs, op, dst + c * osk + j, osk)
            for c in range(full_c):
                for j in range(done, cnt):
                    op[dst + c * osk + j] = st[src + j * cs + c]
            for c in range(full_c, c_n):
                for j in range(cnt):
                    op[dst + c * osk + j] = st[src + j * cs + c]
        else:
            r = q - n * ppi
            o2 = r % o2n
            r //= o2n
            end = min(qb, q + o2n - o2)  # the rest of this output row
            cnt = end - q
            src = (q - qa) * cs
            dst = n * osn + (r // o1n) * os0 + (r % o1n) * os1 + o2 * os2 + c_lo * osk
            # pixels at stride 2 (a stride-2 phase): blocks of `lanes` pixels x `lanes`
            # channels through in-register transposes, blended into every other element.
            # Blocks followed by another pixel of this row: the element after a block's
            # last pixel is then one between two of its pixels (another phase's, which no
            # task of this launch writes), read and written back unchanged. The row's last
            # block, overlapping the one before it, too unless the row is the last of its
            # plane: the element after the row's last pixel is then another phase's as
            # well (the next column, or the first of the next row), inside the plane
            blend = os2 == 2 and kind == 2
            full_p = (cnt - 1) // lanes * lanes if blend and cnt > lanes else 0
            last_row = r % o1n == o1n - 1
            done = cnt if blend and cnt >= lanes and not last_row else full_p
            # layout 3: masked stores touch no element in between, nor the one after
            spread = os2 == 2 and kind == 3
            if spread:
                full_p = cnt - cnt % lanes
                done = cnt if cnt >= lanes else full_p
            for c in range(0, full_c, lanes):
                for j in range(0, full_p, lanes):
                    if spread:
                        vtranspose_spread(st, src + j * cs + c, cs, op, dst + c * osk + 2 * j,
                                          osk)
                    else:
                        vtranspose_interleave(st, src + j * cs + c, cs, op,
                                              dst + c * osk + 2 * j, osk)
                if full_p < done:
                    j = cnt - lanes
                    if spread:
                        vtranspose_spread(st, src + j * cs + c, cs, op, dst + c * osk + 2 * j,
                                          osk)
                    else:
                        vtranspose_interleave(st, src + j * cs + c, cs, op,
                                              dst + c * osk + 2 * j, osk)
            for c in range(c_n):
                for j in range(done if c < full_c else 0, cnt):
                    op[dst + c * osk + j * os2] = st[src + j * cs + c]
        q = end


#: Entries of a weight description (``wdesc``, see :func:`_block_weights`): blocks, taps (3),
#: input channels, block size, output channels, then where element ``[0, 0, 0, 0, 0]`` of the
#: ``(C_out, C_in, K0, K1, K2)`` weights is in ``wsrc`` and the element strides of those five
#: axes, then how the tasks get their weights: 0: each thread packs its block from ``wsrc``
#: (tasks numbered channel block first); 1 or 2: ``wsrc`` is :func:`pack_weights`'s layout
#: (C-contiguous), read in place, tasks numbered pixel group (1) or channel block (2) first.
_WDESC = 14


@njit(cache=CACHE, inline="always")
def _block_elements(wdesc):
    """Elements of one channel block of packed weights: ``K0 * K1 * K2 * C_in * KB``."""
    return wdesc[1] * wdesc[2] * wdesc[3] * wdesc[4] * wdesc[5]


@njit(cache=CACHE, inline="always")
def _held_weights(wdesc):
    """Elements at the front of each thread's float scratch row that hold a packed block.

    None (0) when the weights come packed; else one block, rounded up to whole 64-byte lines
    (16 elements) so the data after it stays aligned as before.
    """
    if wdesc[13] != 0:
        return 0
    return (_block_elements(wdesc) + 15) // 16 * 16


@njit(cache=CACHE, inline="always")
def _tap_step(wdesc):
    """Element step between consecutive taps (flat ``k0, k1, k2`` order), when it is +-1.

    0 when the taps are not one run of adjacent elements (a stride phase's view of the
    weights, or weights strided along a tap axis). Axes of one tap do not count.
    """
    step = 0
    run = 1
    for axis in range(2, -1, -1):
        taps = wdesc[1 + axis]
        if taps > 1:
            s = wdesc[10 + axis]
            if step == 0:
                if s != 1 and s != -1:
                    return 0
                step = s
            if s != step * run:
                return 0
            run *= taps
    return step if step != 0 else 1


@njit(cache=CACHE)
def _pack_block(wsrc, wdesc, kb, dst):
    """Write channel block `kb` of the weights in :func:`pack_weights`'s layout to ``dst[0:]``.

    ``dst[((k0 * K1 + k1) * K2 + k2) * C_in * KB + c * KB + j] = w[kb * KB + j, c, k0, k1, k2]``
    with zeros for output channels ``>= C_out``. When the taps of an output and input channel
    are one run of adjacent elements (C-contiguous weights, and their flipped, transposed
    view in a stride-1 adjoint), a full block moves a lanes x lanes square at a time
    through in-register transposes (``lanes`` output channels x ``lanes`` adjacent taps; a
    last square overlapping the one before it covers the taps left over, and fewer taps
    than lanes, 3x3 with 16 lanes, are one partial square): 1.5-7x faster than element by
    element on one thread (the larger the block, the more reading the weights from memory
    bounds both). Other blocks are written in
    order, a row of ``KB`` channels at a time, gathered from ``KB`` source rows.
    """
    k0n, k1n, k2n, c_in, kbs, c_out = wdesc[1], wdesc[2], wdesc[3], wdesc[4], wdesc[5], wdesc[6]
    s_k, s_c, s0, s1, s2 = wdesc[8], wdesc[9], wdesc[10], wdesc[11], wdesc[12]
    first = kb * kbs
    live = max(0, min(kbs, c_out - first))
    wp = ptr_of(wsrc, 0)  # a pointer: no negative-index wraparound per element
    lanes = vlanes(wsrc)
    taps = k0n * k1n * k2n
    step = _tap_step(wdesc)
    if live == kbs and step != 0:
        # square (j, t): rows of `lanes` adjacent source taps t0 .. t0 + lanes - 1 of output
        # channel j, stored as `lanes` destination rows (one per tap) of `lanes` channels;
        # fewer taps than lanes (3x3 with 16 lanes) are one partial square
        row = c_in * kbs  # destination step from one tap to the next
        for c in range(c_in):
            for jg in range(0, kbs, lanes):
                origin = wdesc[7] + (first + jg) * s_k + c * s_c  # tap 0 of channel j = jg
                at = c * kbs + jg
                if taps < lanes:
                    if step == 1:
                        vtranspose_copy_partial(wp, origin, s_k, dst, at, row, taps)
                    else:
                        vtranspose_copy_partial(wp, origin - taps + 1, s_k, dst,
                                                at + (taps - 1) * row, -row, taps)
                    continue
                t0 = 0
                while t0 < taps:
                    t0 = min(t0, taps - lanes)
                    if step == 1:
                        vtranspose_copy(wp, origin + t0, s_k, dst, at + t0 * row, row)
                    else:  # the lowest address holds the square's last tap
                        last = t0 + lanes - 1
                        vtranspose_copy(wp, origin - last, s_k, dst, at + last * row, -row)
                    t0 += lanes
        return
    d = 0
    for k0 in range(k0n):
        for k1 in range(k1n):
            for k2 in range(k2n):
                tap = wdesc[7] + first * s_k + k0 * s0 + k1 * s1 + k2 * s2
                for c in range(c_in):
                    src = tap + c * s_c
                    for j in range(live):
                        dst[d + j] = wp[src + j * s_k]
                    for j in range(live, kbs):
                        dst[d + j] = 0
                    d += kbs


@njit(cache=CACHE, inline="always")
def _block_weights(wsrc, wdesc, kb, fscr, row, tag):
    """Pointer ``p`` to packed weights with block `kb` at ``p[kb * block:]`` (row-mode tasks).

    ``(wsrc, wdesc)`` describe the ``(C_out, C_in, K0, K1, K2)`` weights (:data:`_WDESC`).
    Packed weights (``wdesc[13] != 0``) are read in place. Otherwise each thread packs the
    block its task needs into the front of its float scratch row (``fscr`` from element
    `row`) and records the block in ``tag[0]``; the next task of the same block (tasks are
    numbered block first) reuses it. So no packed copy of all the weights is made.
    """
    if wdesc[13] != 0:
        return ptr_of(wsrc, wdesc[7])
    if tag[0] != kb:
        _pack_block(wsrc, wdesc, kb, ptr_of(fscr, row))
        tag[0] = kb
    return ptr_of(fscr, row - kb * _block_elements(wdesc))


# ----------------------------------------------------------------------------------------------
# micro-kernels: one register tile of P pixels x 2 vectors (KB = 2 * lanes channels), written
# out by hand for P = 6 and 8 (the accumulators must be distinct local variables to live in
# registers). `_tileP(xp, wpp, bp, zp, op, sp, fp, tb, kb, pos, npix, ishape, oshape, kshape,
# geom, lay)` computes the `npix <= P` output pixels starting at `pos` = (n, o0, o1, o2) (flat
# order) for output channels [kb * KB, kb * KB + KB) from pointers to the input, packed weights,
# padded bias, zero buffer, output, this thread's int scratch (`sp`, see _pixel_meta), float
# scratch (`fp`) and lane buffer (`tb`, see _store_px); ishape = (I0, I1, I2, C_in), oshape =
# (O0, O1, O2, C_out), kshape = (K0, K1, K2, KB), geom = (stride, dilation, pad_low), lay = the
# element strides (see _pixel_meta). `_wtileP` is the window-mode variant (all channel blocks).
#
# drivers: one flat prange over row-mode tasks: a group of `group` consecutive pixel tiles x one
# channel block, the tiles of a group walked in order (positions advanced without divisions).
# With packed weights, tasks are numbered group first: consecutive tiles share one block of
# packed weights (hot in L1/L2) while the group's input stays in L2 across the channel blocks.
# Large weights are packed by the threads themselves, a block at a time (see _block_weights),
# and the tasks numbered block first: a thread's consecutive tasks share its packed block
# while the input streams through once per block. Window mode (_w*) has one
# channel-block slot (a task covers all blocks). Each task is a function of its own (_taskP,
# _wtaskP) that the drivers' prange bodies call: small problems run the row-mode tasks on the
# calling thread (small_conv), which avoids waking the thread pool (costly on a busy machine).
# Scratch rows are indexed by numba.get_thread_id().
# `x` and `out` are flat views starting at element (0, 0, 0, 0, 0); `dims` holds the shapes and
# element strides (see _layout).


@cache
def _driver_arguments(dtype: np.dtype, window: bool) -> tuple:
    """Types of the arguments the drivers and their task functions share, for ``dtype``.

    ``x, wsrc, wdesc`` (row mode) or ``x, wp`` (window mode), then ``aux, out, dims,
    stride, dilation, pad_low, scr, fscr, group``: everything but ``out`` and the scratch is
    read-only (writeable arrays are accepted for read-only parameters).
    """
    index = np.dtype(np.int64)
    weights = ((data_type(dtype, 6, layout="C"),) if window
               else (data_type(dtype, 1, layout="C"), data_type(index, 1, layout="C")))
    triple = types.UniTuple(types.int64, 3)
    return (data_type(dtype, 1, layout="C"), *weights, data_type(dtype, 1, layout="C"),
            data_type(dtype, 1, True, "C"), data_type(index, 1, layout="C"), triple, triple,
            triple, data_type(index, 2, True, "C"), data_type(dtype, 2, True, "C"), types.int64)


def _row_task_signature(dtype: np.dtype) -> tuple:
    """Argument types of the row-mode task functions: the drivers', then task and thread."""
    return _driver_arguments(dtype, False) + (types.int64, types.int64)


def _window_task_signature(dtype: np.dtype) -> tuple:
    """Argument types of the window-mode task functions."""
    return _driver_arguments(dtype, True) + (types.int64, types.int64)


#: Argument types of the row-mode drivers: the shared ones, then the task's address.
_row_driver_signature = _jit.kernel_signature(_row_task_signature, 2)
#: Argument types of the window-mode drivers.
_window_driver_signature = _jit.kernel_signature(_window_task_signature, 2)


_call_row_task = _jit.caller(_row_task_signature)
_call_window_task = _jit.caller(_window_task_signature)


# --- generated tiles and drivers: begin (tools/gen_dense_tiles.py; do not edit)


@njit(cache=CACHE)
def _tile6(xp, wpp, bp, zp, op, sp, fp, tb, kb, pos, npix, ishape, oshape, kshape, geom, lay):
    """Output pixels at ``pos`` (``npix <= 6`` of them) x channel block `kb` (row mode)."""
    kn = oshape[3]
    k0n, k1n, k2n, kbs = kshape
    d0, d1, d2 = geom[1]
    xs0, xs1, osk = lay[1], lay[2], lay[7]
    lanes = vlanes(xp)
    interior = _pixel_meta(sp, pos, npix, 6, ishape, oshape, kshape, geom, lay)
    a00 = vzero(xp)
    a01 = vzero(xp)
    a10 = vzero(xp)
    a11 = vzero(xp)
    a20 = vzero(xp)
    a21 = vzero(xp)
    a30 = vzero(xp)
    a31 = vzero(xp)
    a40 = vzero(xp)
    a41 = vzero(xp)
    a50 = vzero(xp)
    a51 = vzero(xp)
    # the micro-kernel walks one kernel row (K2 taps x C_in, contiguous in the packed
    # weights) per pixel pointer: see _row_sources
    span = k2n * ishape[3]
    direct = interior
    wo = kb * k0n * k1n * span * kbs
    for k0 in range(k0n):
        for k1 in range(k1n):
            rowoff = k0 * d0 * xs0 + k1 * d1 * xs1
            if direct:
                x0 = ptr_of(xp, sp[0] + rowoff)
                x1 = ptr_of(xp, sp[1] + rowoff)
                x2 = ptr_of(xp, sp[2] + rowoff)
                x3 = ptr_of(xp, sp[3] + rowoff)
                x4 = ptr_of(xp, sp[4] + rowoff)
                x5 = ptr_of(xp, sp[5] + rowoff)
                nv = 6
            else:
                nv = _row_sources(xp, fp, sp, 6, interior, k0 * d0, k1 * d1, rowoff,
                                  ishape, k2n, d2)
                x0 = _src(xp, zp, fp, sp[24], 0)
                x1 = _src(xp, zp, fp, sp[25], span)
                x2 = _src(xp, zp, fp, sp[26], 2 * span)
                x3 = _src(xp, zp, fp, sp[27], 3 * span)
                x4 = _src(xp, zp, fp, sp[28], 4 * span)
                x5 = _src(xp, zp, fp, sp[29], 5 * span)
            if nv > 0:
                w = wo
                if d2 == 1 or not direct:  # one contiguous span per pixel
                    for c in range(span):
                        w0 = vload(wpp, w)
                        w1 = vload(wpp, w + lanes)
                        b = vbroadcast_load(x0, c)
                        a00 = vfma(b, w0, a00)
                        a01 = vfma(b, w1, a01)
                        b = vbroadcast_load(x1, c)
                        a10 = vfma(b, w0, a10)
                        a11 = vfma(b, w1, a11)
                        b = vbroadcast_load(x2, c)
                        a20 = vfma(b, w0, a20)
                        a21 = vfma(b, w1, a21)
                        b = vbroadcast_load(x3, c)
                        a30 = vfma(b, w0, a30)
                        a31 = vfma(b, w1, a31)
                        b = vbroadcast_load(x4, c)
                        a40 = vfma(b, w0, a40)
                        a41 = vfma(b, w1, a41)
                        b = vbroadcast_load(x5, c)
                        a50 = vfma(b, w0, a50)
                        a51 = vfma(b, w1, a51)
                        w += kbs
                else:  # dilated taps read in place: K2 runs of C_in
                    for k2 in range(k2n):
                        first = k2 * d2 * ishape[3]
                        for c in range(first, first + ishape[3]):
                            w0 = vload(wpp, w)
                            w1 = vload(wpp, w + lanes)
                            b = vbroadcast_load(x0, c)
                            a00 = vfma(b, w0, a00)
                            a01 = vfma(b, w1, a01)
                            b = vbroadcast_load(x1, c)
                            a10 = vfma(b, w0, a10)
                            a11 = vfma(b, w1, a11)
                            b = vbroadcast_load(x2, c)
                            a20 = vfma(b, w0, a20)
                            a21 = vfma(b, w1, a21)
                            b = vbroadcast_load(x3, c)
                            a30 = vfma(b, w0, a30)
                            a31 = vfma(b, w1, a31)
                            b = vbroadcast_load(x4, c)
                            a40 = vfma(b, w0, a40)
                            a41 = vfma(b, w1, a41)
                            b = vbroadcast_load(x5, c)
                            a50 = vfma(b, w0, a50)
                            a51 = vfma(b, w1, a51)
                            w += kbs
            wo += span * kbs
    nk = kn - kb * kbs
    b0 = vload(bp, kb * kbs)
    b1 = vload(bp, kb * kbs + lanes)
    _store_px(op, tb, sp[30] + kb * kbs * osk, vadd(a00, b0), vadd(a01, b1), nk, lanes, osk)
    if npix > 1:
        _store_px(op, tb, sp[31] + kb * kbs * osk, vadd(a10, b0), vadd(a11, b1), nk, lanes, osk)
    if npix > 2:
        _store_px(op, tb, sp[32] + kb * kbs * osk, vadd(a20, b0), vadd(a21, b1), nk, lanes, osk)
    if npix > 3:
        _store_px(op, tb, sp[33] + kb * kbs * osk, vadd(a30, b0), vadd(a31, b1), nk, lanes, osk)
    if npix > 4:
        _store_px(op, tb, sp[34] + kb * kbs * osk, vadd(a40, b0), vadd(a41, b1), nk, lanes, osk)
    if npix > 5:
        _store_px(op, tb, sp[35] + kb * kbs * osk, vadd(a50, b0), vadd(a51, b1), nk, lanes, osk)


@njit(cache=CACHE)
def _tile8(xp, wpp, bp, zp, op, sp, fp, tb, kb, pos, npix, ishape, oshape, kshape, geom, lay):
    """Output pixels at ``pos`` (``npix <= 8`` of them) x channel block `kb` (row mode)."""
    kn = oshape[3]
    k0n, k1n, k2n, kbs = kshape
    d0, d1, d2 = geom[1]
    xs0, xs1, osk = lay[1], lay[2], lay[7]
    lanes = vlanes(xp)
    interior = _pixel_meta(sp, pos, npix, 8, ishape, oshape, kshape, geom, lay)
    a00 = vzero(xp)
    a01 = vzero(xp)
    a10 = vzero(xp)
    a11 = vzero(xp)
    a20 = vzero(xp)
    a21 = vzero(xp)
    a30 = vzero(xp)
    a31 = vzero(xp)
    a40 = vzero(xp)
    a41 = vzero(xp)
    a50 = vzero(xp)
    a51 = vzero(xp)
    a60 = vzero(xp)
    a61 = vzero(xp)
    a70 = vzero(xp)
    a71 = vzero(xp)
    # the micro-kernel walks one kernel row (K2 taps x C_in, contiguous in the packed
    # weights) per pixel pointer: see _row_sources
    span = k2n * ishape[3]
    direct = interior
    wo = kb * k0n * k1n * span * kbs
    for k0 in range(k0n):
        for k1 in range(k1n):
            rowoff = k0 * d0 * xs0 + k1 * d1 * xs1
            if direct:
                x0 = ptr_of(xp, sp[0] + rowoff)
                x1 = ptr_of(xp, sp[1] + rowoff)
                x2 = ptr_of(xp, sp[2] + rowoff)
                x3 = ptr_of(xp, sp[3] + rowoff)
                x4 = ptr_of(xp, sp[4] + rowoff)
                x5 = ptr_of(xp, sp[5] + rowoff)
                x6 = ptr_of(xp, sp[6] + rowoff)
                x7 = ptr_of(xp, sp[7] + rowoff)
                nv = 8
            else:
                nv = _row_sources(xp, fp, sp, 8, interior, k0 * d0, k1 * d1, rowoff,
                                  ishape, k2n, d2)
                x0 = _src(xp, zp, fp, sp[32], 0)
                x1 = _src(xp, zp, fp, sp[33], span)
                x2 = _src(xp, zp, fp, sp[34], 2 * span)
                x3 = _src(xp, zp, fp, sp[35], 3 * span)
                x4 = _src(xp, zp, fp, sp[36], 4 * span)
                x5 = _src(xp, zp, fp, sp[37], 5 * span)
                x6 = _src(xp, zp, fp, sp[38], 6 * span)
                x7 = _src(xp, zp, fp, sp[39], 7 * span)
            if nv > 0:
                w = wo
                if d2 == 1 or not direct:  # one contiguous span per pixel
                    for c in range(span):
                        w0 = vload(wpp, w)
                        w1 = vload(wpp, w + lanes)
                        b = vbroadcast_load(x0, c)
                        a00 = vfma(b, w0, a00)
                        a01 = vfma(b, w1, a01)
                        b = vbroadcast_load(x1, c)
                        a10 = vfma(b, w0, a10)
                        a11 = vfma(b, w1, a11)
                        b = vbroadcast_load(x2, c)
                        a20 = vfma(b, w0, a20)
                        a21 = vfma(b, w1, a21)
                        b = vbroadcast_load(x3, c)
                        a30 = vfma(b, w0, a30)
                        a31 = vfma(b, w1, a31)
                        b = vbroadcast_load(x4, c)
                        a40 = vfma(b, w0, a40)
                        a41 = vfma(b, w1, a41)
                        b = vbroadcast_load(x5, c)
                        a50 = vfma(b, w0, a50)
                        a51 = vfma(b, w1, a51)
                        b = vbroadcast_load(x6, c)
                        a60 = vfma(b, w0, a60)
                        a61 = vfma(b, w1, a61)
                        b = vbroadcast_load(x7, c)
                        a70 = vfma(b, w0, a70)
                        a71 = vfma(b, w1, a71)
                        w += kbs
                else:  # dilated taps read in place: K2 runs of C_in
                    for k2 in range(k2n):
                        first = k2 * d2 * ishape[3]
                        for c in range(first, first + ishape[3]):
                            w0 = vload(wpp, w)
                            w1 = vload(wpp, w + lanes)
                            b = vbroadcast_load(x0, c)
                            a00 = vfma(b, w0, a00)
                            a01 = vfma(b, w1, a01)
                            b = vbroadcast_load(x1, c)
                            a10 = vfma(b, w0, a10)
                            a11 = vfma(b, w1, a11)
                            b = vbroadcast_load(x2, c)
                            a20 = vfma(b, w0, a20)
                            a21 = vfma(b, w1, a21)
                            b = vbroadcast_load(x3, c)
                            a30 = vfma(b, w0, a30)
                            a31 = vfma(b, w1, a31)
                            b = vbroadcast_load(x4, c)
                            a40 = vfma(b, w0, a40)
                            a41 = vfma(b, w1, a41)
                            b = vbroadcast_load(x5, c)
                            a50 = vfma(b, w0, a50)
                            a51 = vfma(b, w1, a51)
                            b = vbroadcast_load(x6, c)
                            a60 = vfma(b, w0, a60)
                            a61 = vfma(b, w1, a61)
                            b = vbroadcast_load(x7, c)
                            a70 = vfma(b, w0, a70)
                            a71 = vfma(b, w1, a71)
                            w += kbs
            wo += span * kbs
    nk = kn - kb * kbs
    b0 = vload(bp, kb * kbs)
    b1 = vload(bp, kb * kbs + lanes)
    _store_px(op, tb, sp[40] + kb * kbs * osk, vadd(a00, b0), vadd(a01, b1), nk, lanes, osk)
    if npix > 1:
        _store_px(op, tb, sp[41] + kb * kbs * osk, vadd(a10, b0), vadd(a11, b1), nk, lanes, osk)
    if npix > 2:
        _store_px(op, tb, sp[42] + kb * kbs * osk, vadd(a20, b0), vadd(a21, b1), nk, lanes, osk)
    if npix > 3:
        _store_px(op, tb, sp[43] + kb * kbs * osk, vadd(a30, b0), vadd(a31, b1), nk, lanes, osk)
    if npix > 4:
        _store_px(op, tb, sp[44] + kb * kbs * osk, vadd(a40, b0), vadd(a41, b1), nk, lanes, osk)
    if npix > 5:
        _store_px(op, tb, sp[45] + kb * kbs * osk, vadd(a50, b0), vadd(a51, b1), nk, lanes, osk)
    if npix > 6:
        _store_px(op, tb, sp[46] + kb * kbs * osk, vadd(a60, b0), vadd(a61, b1), nk, lanes, osk)
    if npix > 7:
        _store_px(op, tb, sp[47] + kb * kbs * osk, vadd(a70, b0), vadd(a71, b1), nk, lanes, osk)


@njit(cache=CACHE)
def _ntile8(xp, wpp, bp, zp, op, sp, fp, tb, kb, pos, npix, ishape, oshape, kshape, geom, lay):
    """Output pixels at ``pos`` (``npix <= 8`` of them) x one-vector block `kb` (row mode)."""
    kn = oshape[3]
    k0n, k1n, k2n, kbs = kshape
    d0, d1, d2 = geom[1]
    xs0, xs1, osk = lay[1], lay[2], lay[7]
    lanes = vlanes(xp)
    interior = _pixel_meta(sp, pos, npix, 8, ishape, oshape, kshape, geom, lay)
    a00 = vzero(xp)
    a10 = vzero(xp)
    a20 = vzero(xp)
    a30 = vzero(xp)
    a40 = vzero(xp)
    a50 = vzero(xp)
    a60 = vzero(xp)
    a70 = vzero(xp)
    # the micro-kernel walks one kernel row (K2 taps x C_in, contiguous in the packed
    # weights) per pixel pointer: see _row_sources
    span = k2n * ishape[3]
    direct = interior
    wo = kb * k0n * k1n * span * kbs
    for k0 in range(k0n):
        for k1 in range(k1n):
            rowoff = k0 * d0 * xs0 + k1 * d1 * xs1
            if direct:
                x0 = ptr_of(xp, sp[0] + rowoff)
                x1 = ptr_of(xp, sp[1] + rowoff)
                x2 = ptr_of(xp, sp[2] + rowoff)
                x3 = ptr_of(xp, sp[3] + rowoff)
                x4 = ptr_of(xp, sp[4] + rowoff)
                x5 = ptr_of(xp, sp[5] + rowoff)
                x6 = ptr_of(xp, sp[6] + rowoff)
                x7 = ptr_of(xp, sp[7] + rowoff)
                nv = 8
            else:
                nv = _row_sources(xp, fp, sp, 8, interior, k0 * d0, k1 * d1, rowoff,
                                  ishape, k2n, d2)
                x0 = _src(xp, zp, fp, sp[32], 0)
                x1 = _src(xp, zp, fp, sp[33], span)
                x2 = _src(xp, zp, fp, sp[34], 2 * span)
                x3 = _src(xp, zp, fp, sp[35], 3 * span)
                x4 = _src(xp, zp, fp, sp[36], 4 * span)
                x5 = _src(xp, zp, fp, sp[37], 5 * span)
                x6 = _src(xp, zp, fp, sp[38], 6 * span)
                x7 = _src(xp, zp, fp, sp[39], 7 * span)
            if nv > 0:
                w = wo
                if d2 == 1 or not direct:  # one contiguous span per pixel
                    for c in range(span):
                        w0 = vload(wpp, w)
                        b = vbroadcast_load(x0, c)
                        a00 = vfma(b, w0, a00)
                        b = vbroadcast_load(x1, c)
                        a10 = vfma(b, w0, a10)
                        b = vbroadcast_load(x2, c)
                        a20 = vfma(b, w0, a20)
                        b = vbroadcast_load(x3, c)
                        a30 = vfma(b, w0, a30)
                        b = vbroadcast_load(x4, c)
                        a40 = vfma(b, w0, a40)
                        b = vbroadcast_load(x5, c)
                        a50 = vfma(b, w0, a50)
                        b = vbroadcast_load(x6, c)
                        a60 = vfma(b, w0, a60)
                        b = vbroadcast_load(x7, c)
                        a70 = vfma(b, w0, a70)
                        w += kbs
                else:  # dilated taps read in place: K2 runs of C_in
                    for k2 in range(k2n):
                        first = k2 * d2 * ishape[3]
                        for c in range(first, first + ishape[3]):
                            w0 = vload(wpp, w)
                            b = vbroadcast_load(x0, c)
                            a00 = vfma(b, w0, a00)
                            b = vbroadcast_load(x1, c)
                            a10 = vfma(b, w0, a10)
                            b = vbroadcast_load(x2, c)
                            a20 = vfma(b, w0, a20)
                            b = vbroadcast_load(x3, c)
                            a30 = vfma(b, w0, a30)
                            b = vbroadcast_load(x4, c)
                            a40 = vfma(b, w0, a40)
                            b = vbroadcast_load(x5, c)
                            a50 = vfma(b, w0, a50)
                            b = vbroadcast_load(x6, c)
                            a60 = vfma(b, w0, a60)
                            b = vbroadcast_load(x7, c)
                            a70 = vfma(b, w0, a70)
                            w += kbs
            wo += span * kbs
    nk = kn - kb * kbs
    b0 = vload(bp, kb * kbs)
    _store_px1(op, tb, sp[40] + kb * kbs * osk, vadd(a00, b0), nk, lanes, osk)
    if npix > 1:
        _store_px1(op, tb, sp[41] + kb * kbs * osk, vadd(a10, b0), nk, lanes, osk)
    if npix > 2:
        _store_px1(op, tb, sp[42] + kb * kbs * osk, vadd(a20, b0), nk, lanes, osk)
    if npix > 3:
        _store_px1(op, tb, sp[43] + kb * kbs * osk, vadd(a30, b0), nk, lanes, osk)
    if npix > 4:
        _store_px1(op, tb, sp[44] + kb * kbs * osk, vadd(a40, b0), nk, lanes, osk)
    if npix > 5:
        _store_px1(op, tb, sp[45] + kb * kbs * osk, vadd(a50, b0), nk, lanes, osk)
    if npix > 6:
        _store_px1(op, tb, sp[46] + kb * kbs * osk, vadd(a60, b0), nk, lanes, osk)
    if npix > 7:
        _store_px1(op, tb, sp[47] + kb * kbs * osk, vadd(a70, b0), nk, lanes, osk)


@njit(cache=CACHE)
def _wtile6(xp, wpp, bp, zp, op, sp, fp, tb, pos, npix, ishape, oshape, kshape, geom,
             lay):
    """Window mode: output pixels at ``pos`` (``npix <= 6``), all channel blocks."""
    kn = oshape[3]
    k0n, k1n, k2n, kbs = kshape
    osk = lay[7]
    lanes = vlanes(xp)
    interior = _pixel_meta(sp, pos, npix, 6, ishape, oshape, kshape, geom, lay)
    win = k0n * k1n * k2n * ishape[3]
    # a full tile of windows inside the input is read in place, one segment of
    # contiguous values per kernel row (k0, k1): K2 x C_in, or C_in per tap k2 with a
    # dilation along the last dimension; any other tile's windows are first gathered
    # (zeros in the padding) into one segment each
    if interior:
        base = xp
        step0 = geom[1][0] * lay[1]
        step1 = geom[1][1] * lay[2]
        step2 = geom[1][2] * ishape[3]
        n0 = k0n
        n1 = k1n
        n2 = 1 if geom[1][2] == 1 else k2n
        seg = win // (n0 * n1 * n2)
        o0 = sp[0]
        o1 = sp[1]
        o2 = sp[2]
        o3 = sp[3]
        o4 = sp[4]
        o5 = sp[5]
    else:
        _gather_windows(xp, fp, sp, 6, npix, ishape, kshape, geom, lay)
        base = fp
        step0 = 0
        step1 = 0
        step2 = 0
        seg = win
        n0 = 1
        n1 = 1
        n2 = 1
        o0 = 0
        o1 = win
        o2 = 2 * win
        o3 = 3 * win
        o4 = 4 * win
        o5 = 5 * win
    for kb in range((kn + kbs - 1) // kbs):
        a00 = vzero(xp)
        a01 = vzero(xp)
        a10 = vzero(xp)
        a11 = vzero(xp)
        a20 = vzero(xp)
        a21 = vzero(xp)
        a30 = vzero(xp)
        a31 = vzero(xp)
        a40 = vzero(xp)
        a41 = vzero(xp)
        a50 = vzero(xp)
        a51 = vzero(xp)
        w = kb * win * kbs
        for k0 in range(n0):
            for k1 in range(n1):
                for k2 in range(n2):
                    off = k0 * step0 + k1 * step1 + k2 * step2
                    x0 = ptr_of(base, o0 + off)
                    x1 = ptr_of(base, o1 + off)
                    x2 = ptr_of(base, o2 + off)
                    x3 = ptr_of(base, o3 + off)
                    x4 = ptr_of(base, o4 + off)
                    x5 = ptr_of(base, o5 + off)
                    for c in range(seg):
                        w0 = vload(wpp, w)
                        w1 = vload(wpp, w + lanes)
                        b = vbroadcast_load(x0, c)
                        a00 = vfma(b, w0, a00)
                        a01 = vfma(b, w1, a01)
                        b = vbroadcast_load(x1, c)
                        a10 = vfma(b, w0, a10)
                        a11 = vfma(b, w1, a11)
                        b = vbroadcast_load(x2, c)
                        a20 = vfma(b, w0, a20)
                        a21 = vfma(b, w1, a21)
                        b = vbroadcast_load(x3, c)
                        a30 = vfma(b, w0, a30)
                        a31 = vfma(b, w1, a31)
                        b = vbroadcast_load(x4, c)
                        a40 = vfma(b, w0, a40)
                        a41 = vfma(b, w1, a41)
                        b = vbroadcast_load(x5, c)
                        a50 = vfma(b, w0, a50)
                        a51 = vfma(b, w1, a51)
                        w += kbs
        nk = kn - kb * kbs
        b0 = vload(bp, kb * kbs)
        b1 = vload(bp, kb * kbs + lanes)
        _store_px(op, tb, sp[30] + kb * kbs * osk, vadd(a00, b0), vadd(a01, b1), nk, lanes, osk)
        if npix > 1:
            _store_px(op, tb, sp[31] + kb * kbs * osk, vadd(a10, b0), vadd(a11, b1), nk, lanes, osk)
        if npix > 2:
            _store_px(op, tb, sp[32] + kb * kbs * osk, vadd(a20, b0), vadd(a21, b1), nk, lanes, osk)
        if npix > 3:
            _store_px(op, tb, sp[33] + kb * kbs * osk, vadd(a30, b0), vadd(a31, b1), nk, lanes, osk)
        if npix > 4:
            _store_px(op, tb, sp[34] + kb * kbs * osk, vadd(a40, b0), vadd(a41, b1), nk, lanes, osk)
        if npix > 5:
            _store_px(op, tb, sp[35] + kb * kbs * osk, vadd(a50, b0), vadd(a51, b1), nk, lanes, osk)


@njit(cache=CACHE)
def _wtile8(xp, wpp, bp, zp, op, sp, fp, tb, pos, npix, ishape, oshape, kshape, geom,
             lay):
    """Window mode: output pixels at ``pos`` (``npix <= 8``), all channel blocks."""
    kn = oshape[3]
    k0n, k1n, k2n, kbs = kshape
    osk = lay[7]
    lanes = vlanes(xp)
    interior = _pixel_meta(sp, pos, npix, 8, ishape, oshape, kshape, geom, lay)
    win = k0n * k1n * k2n * ishape[3]
    # a full tile of windows inside the input is read in place, one segment of
    # contiguous values per kernel row (k0, k1): K2 x C_in, or C_in per tap k2 with a
    # dilation along the last dimension; any other tile's windows are first gathered
    # (zeros in the padding) into one segment each
    if interior:
        base = xp
        step0 = geom[1][0] * lay[1]
        step1 = geom[1][1] * lay[2]
        step2 = geom[1][2] * ishape[3]
        n0 = k0n
        n1 = k1n
        n2 = 1 if geom[1][2] == 1 else k2n
        seg = win // (n0 * n1 * n2)
        o0 = sp[0]
        o1 = sp[1]
        o2 = sp[2]
        o3 = sp[3]
        o4 = sp[4]
        o5 = sp[5]
        o6 = sp[6]
        o7 = sp[7]
    else:
        _gather_windows(xp, fp, sp, 8, npix, ishape, kshape, geom, lay)
        base = fp
        step0 = 0
        step1 = 0
        step2 = 0
        seg = win
        n0 = 1
        n1 = 1
        n2 = 1
        o0 = 0
        o1 = win
        o2 = 2 * win
        o3 = 3 * win
        o4 = 4 * win
        o5 = 5 * win
        o6 = 6 * win
        o7 = 7 * win
    for kb in range((kn + kbs - 1) // kbs):
        a00 = vzero(xp)
        a01 = vzero(xp)
        a10 = vzero(xp)
        a11 = vzero(xp)
        a20 = vzero(xp)
        a21 = vzero(xp)
        a30 = vzero(xp)
        a31 = vzero(xp)
        a40 = vzero(xp)
        a41 = vzero(xp)
        a50 = vzero(xp)
        a51 = vzero(xp)
        a60 = vzero(xp)
        a61 = vzero(xp)
        a70 = vzero(xp)
        a71 = vzero(xp)
        w = kb * win * kbs
        for k0 in range(n0):
            for k1 in range(n1):
                for k2 in range(n2):
                    off = k0 * step0 + k1 * step1 + k2 * step2
                    x0 = ptr_of(base, o0 + off)
                    x1 = ptr_of(base, o1 + off)
                    x2 = ptr_of(base, o2 + off)
                    x3 = ptr_of(base, o3 + off)
                    x4 = ptr_of(base, o4 + off)
                    x5 = ptr_of(base, o5 + off)
                    x6 = ptr_of(base, o6 + off)
                    x7 = ptr_of(base, o7 + off)
                    for c in range(seg):
                        w0 = vload(wpp, w)
                        w1 = vload(wpp, w + lanes)
                        b = vbroadcast_load(x0, c)
                        a00 = vfma(b, w0, a00)
                        a01 = vfma(b, w1, a01)
                        b = vbroadcast_load(x1, c)
                        a10 = vfma(b, w0, a10)
                        a11 = vfma(b, w1, a11)
                        b = vbroadcast_load(x2, c)
                        a20 = vfma(b, w0, a20)
                        a21 = vfma(b, w1, a21)
                        b = vbroadcast_load(x3, c)
                        a30 = vfma(b, w0, a30)
                        a31 = vfma(b, w1, a31)
                        b = vbroadcast_load(x4, c)
                        a40 = vfma(b, w0, a40)
                        a41 = vfma(b, w1, a41)
                        b = vbroadcast_load(x5, c)
                        a50 = vfma(b, w0, a50)
                        a51 = vfma(b, w1, a51)
                        b = vbroadcast_load(x6, c)
                        a60 = vfma(b, w0, a60)
                        a61 = vfma(b, w1, a61)
                        b = vbroadcast_load(x7, c)
                        a70 = vfma(b, w0, a70)
                        a71 = vfma(b, w1, a71)
                        w += kbs
        nk = kn - kb * kbs
        b0 = vload(bp, kb * kbs)
        b1 = vload(bp, kb * kbs + lanes)
        _store_px(op, tb, sp[40] + kb * kbs * osk, vadd(a00, b0), vadd(a01, b1), nk, lanes, osk)
        if npix > 1:
            _store_px(op, tb, sp[41] + kb * kbs * osk, vadd(a10, b0), vadd(a11, b1), nk, lanes, osk)
        if npix > 2:
            _store_px(op, tb, sp[42] + kb * kbs * osk, vadd(a20, b0), vadd(a21, b1), nk, lanes, osk)
        if npix > 3:
            _store_px(op, tb, sp[43] + kb * kbs * osk, vadd(a30, b0), vadd(a31, b1), nk, lanes, osk)
        if npix > 4:
            _store_px(op, tb, sp[44] + kb * kbs * osk, vadd(a40, b0), vadd(a41, b1), nk, lanes, osk)
        if npix > 5:
            _store_px(op, tb, sp[45] + kb * kbs * osk, vadd(a50, b0), vadd(a51, b1), nk, lanes, osk)
        if npix > 6:
            _store_px(op, tb, sp[46] + kb * kbs * osk, vadd(a60, b0), vadd(a61, b1), nk, lanes, osk)
        if npix > 7:
            _store_px(op, tb, sp[47] + kb * kbs * osk, vadd(a70, b0), vadd(a71, b1), nk, lanes, osk)



@njit(cache=CACHE)
def _task_p6(x, wsrc, wdesc, aux, out, dims, stride, dilation, pad_low, scr, fscr, group, task,
             tid):
    """Task `task` of the row-mode drivers of 6-pixel tiles, on thread `tid`'s scratch.

    The weights are ``(wsrc, wdesc)`` (see :func:`_block_weights`). Tasks are numbered
    pixel group first when ``wdesc[13] == 1`` (packed weights; a group's input stays in
    L2 across the channel blocks), else channel block first (a thread's consecutive tasks
    share one block of weights, which it packs itself when ``wdesc[13] == 0``).
    """
    ishape = (dims[1], dims[2], dims[3], dims[4])
    oshape = (dims[8], dims[9], dims[10], dims[11])
    lay = (dims[5], dims[6], dims[7], dims[12], dims[13], dims[14], dims[15], dims[16])
    nblk, kbs = wdesc[0], wdesc[5]
    kshape = (wdesc[1], wdesc[2], wdesc[3], wdesc[5])
    geom = (stride, dilation, pad_low)
    xp = ptr_of(x, 0)
    bp = ptr_of(aux, 0)
    zp = ptr_of(aux, nblk * kbs)
    op = ptr_of(out, 0)
    fsz = fscr.shape[1]
    sp = ptr_of(scr, tid * scr.shape[1])
    held = _held_weights(wdesc)
    fp = ptr_of(fscr, tid * fsz + held)
    tb = ptr_of(fscr, tid * fsz + fsz - kbs)
    m = dims[0] * oshape[0] * oshape[1] * oshape[2]
    ntile = (m + 5) // 6
    if wdesc[13] == 1:
        g = task // nblk
        kb = task - g * nblk
    else:
        ngroups = (ntile + group - 1) // group
        kb = task // ngroups
        g = task - kb * ngroups
    wpp = _block_weights(wsrc, wdesc, kb, fscr, tid * fsz,
                         ptr_of(scr, tid * scr.shape[1] + scr.shape[1] - 1))
    # staged output (see _stage_layout): tiles store channels-last into scratch, the task then
    # writes them into the output channel by channel. `unit` is 1 when staged (dims[17], the
    # stage layout, is 1 or 2): the stage's channel stride, read from the array so that it
    # is no compile-time literal (a literal would compile the tiles a second time)
    unit = min(dims[17], 1)
    cs = kbs
    slen = group * 6 * cs
    span = kshape[2] * ishape[3]
    # scratch past the gathered spans: none when every window lies inside the input (a
    # tiled task's tile, a zero-padded copy), since no tile gathers then (_pixel_meta)
    gather = 0 if _windows_inside(ishape, oshape, kshape, geom) else 6 * span + 16
    room = fsz - held - kbs - gather
    t0 = g * group
    q0 = t0 * 6
    qa = q0
    pos = _decode(q0, oshape)
    if unit == 1 and room >= slen:
        ppi = oshape[0] * oshape[1] * oshape[2]
        slay = (lay[0], lay[1], lay[2], ppi * cs, oshape[1] * oshape[2] * cs, oshape[2] * cs, cs,
                unit)
        soshape = (oshape[0], oshape[1], oshape[2], nblk * kbs)
        soff = tid * fsz + fsz - kbs - slen
        c_lo = kb * kbs
        top = ptr_of(fscr, soff - qa * cs - c_lo)
        for _ in range(t0, min(t0 + group, ntile)):
            _tile6(xp, wpp, bp, zp, top, sp, fp, tb, kb, pos, min(6, m - q0), ishape,
                   soshape, kshape, geom, slay)
            q0 += 6
            pos = _advance(pos, 6, oshape)
        _flush_stage(op, ptr_of(fscr, soff), qa, min(q0, m), cs, c_lo, oshape, lay, dims[17])
    else:
        for _ in range(t0, min(t0 + group, ntile)):
            _tile6(xp, wpp, bp, zp, op, sp, fp, tb, kb, pos, min(6, m - q0), ishape,
                   oshape, kshape, geom, lay)
            q0 += 6
            pos = _advance(pos, 6, oshape)


@njit(parallel=True, cache=CACHE)
def _forward_p6(x, wsrc, wdesc, aux, out, dims, stride, dilation, pad_low, scr, fscr, group,
                task_at):
    ntile = (dims[0] * dims[8] * dims[9] * dims[10] + 5) // 6
    for task in prange((ntile + group - 1) // group * wdesc[0]):
        # the task function runs at address task_at (compiled once: see _jit.caller); int64
        # task and thread ids: the prange index is unsigned
        _call_row_task(task_at, (x, wsrc, wdesc, aux, out, dims, stride, dilation, pad_low,
                                scr, fscr, group, np.int64(task),
                                np.int64(numba.get_thread_id())))


@njit(cache=CACHE)
def _wtask_p6(x, wp, aux, out, dims, stride, dilation, pad_low, scr, fscr, group, task, tid):
    """Task `task` of the window-mode drivers of 6-pixel tiles, on thread `tid`'s scratch."""
    ishape = (dims[1], dims[2], dims[3], dims[4])
    oshape = (dims[8], dims[9], dims[10], dims[11])
    lay = (dims[5], dims[6], dims[7], dims[12], dims[13], dims[14], dims[15], dims[16])
    nblk, kbs = wp.shape[0], wp.shape[5]
    kshape = (wp.shape[1], wp.shape[2], wp.shape[3], wp.shape[5])
    geom = (stride, dilation, pad_low)
    xp = ptr_of(x, 0)
    bp = ptr_of(aux, 0)
    zp = ptr_of(aux, nblk * kbs)
    op = ptr_of(out, 0)
    fsz = fscr.shape[1]
    sp = ptr_of(scr, tid * scr.shape[1])
    held = 0
    fp = ptr_of(fscr, tid * fsz + held)
    tb = ptr_of(fscr, tid * fsz + fsz - kbs)
    m = dims[0] * oshape[0] * oshape[1] * oshape[2]
    ntile = (m + 5) // 6
    g = task
    wpp = ptr_of(wp, 0)
    # staged output (see _stage_layout): tiles store channels-last into scratch, the task then
    # writes them into the output channel by channel. `unit` is 1 when staged (dims[17], the
    # stage layout, is 1 or 2): the stage's channel stride, read from the array so that it
    # is no compile-time literal (a literal would compile the tiles a second time)
    unit = min(dims[17], 1)
    cs = nblk * kbs
    slen = group * 6 * cs
    span = kshape[0] * kshape[1] * kshape[2] * ishape[3]
    # scratch past the gathered spans: none when every window lies inside the input (a
    # tiled task's tile, a zero-padded copy), since no tile gathers then (_pixel_meta)
    gather = 0 if _windows_inside(ishape, oshape, kshape, geom) else 6 * span + 16
    room = fsz - held - kbs - gather
    t0 = g * group
    q0 = t0 * 6
    qa = q0
    pos = _decode(q0, oshape)
    if unit == 1 and room >= slen:
        ppi = oshape[0] * oshape[1] * oshape[2]
        slay = (lay[0], lay[1], lay[2], ppi * cs, oshape[1] * oshape[2] * cs, oshape[2] * cs, cs,
                unit)
        soshape = (oshape[0], oshape[1], oshape[2], nblk * kbs)
        soff = tid * fsz + fsz - kbs - slen
        c_lo = unit - 1
        top = ptr_of(fscr, soff - qa * cs - c_lo)
        for _ in range(t0, min(t0 + group, ntile)):
            _wtile6(xp, wpp, bp, zp, top, sp, fp, tb, pos, min(6, m - q0), ishape,
                    soshape, kshape, geom, slay)
            q0 += 6
            pos = _advance(pos, 6, oshape)
        _flush_stage(op, ptr_of(fscr, soff), qa, min(q0, m), cs, c_lo, oshape, lay, dims[17])
    else:
        for _ in range(t0, min(t0 + group, ntile)):
            _wtile6(xp, wpp, bp, zp, op, sp, fp, tb, pos, min(6, m - q0), ishape,
                    oshape, kshape, geom, lay)
            q0 += 6
            pos = _advance(pos, 6, oshape)


@njit(parallel=True, cache=CACHE)
def _wforward_p6(x, wp, aux, out, dims, stride, dilation, pad_low, scr, fscr, group,
                 task_at):
    ntile = (dims[0] * dims[8] * dims[9] * dims[10] + 5) // 6
    for task in prange((ntile + group - 1) // group):
        # the task function runs at address task_at (compiled once: see _jit.caller); int64
        # task and thread ids: the prange index is unsigned
        _call_window_task(task_at, (x, wp, aux, out, dims, stride, dilation, pad_low,
                                   scr, fscr, group, np.int64(task),
                                   np.int64(numba.get_thread_id())))


@njit(cache=CACHE)
def _task_p8(x, wsrc, wdesc, aux, out, dims, stride, dilation, pad_low, scr, fscr, group, task,
             tid):
    """Task `task` of the row-mode drivers of 8-pixel tiles, on thread `tid`'s scratch.

    The weights are ``(wsrc, wdesc)`` (see :func:`_block_weights`). Tasks are numbered
    pixel group first when ``wdesc[13] == 1`` (packed weights; a group's input stays in
    L2 across the channel blocks), else channel block first (a thread's consecutive tasks
    share one block of weights, which it packs itself when ``wdesc[13] == 0``).
    """
    ishape = (dims[1], dims[2], dims[3], dims[4])
    oshape = (dims[8], dims[9], dims[10], dims[11])
    lay = (dims[5], dims[6], dims[7], dims[12], dims[13], dims[14], dims[15], dims[16])
    nblk, kbs = wdesc[0], wdesc[5]
    kshape = (wdesc[1], wdesc[2], wdesc[3], wdesc[5])
    geom = (stride, dilation, pad_low)
    xp = ptr_of(x, 0)
    bp = ptr_of(aux, 0)
    zp = ptr_of(aux, nblk * kbs)
    op = ptr_of(out, 0)
    fsz = fscr.shape[1]
    sp = ptr_of(scr, tid * scr.shape[1])
    held = _held_weights(wdesc)
    fp = ptr_of(fscr, tid * fsz + held)
    tb = ptr_of(fscr, tid * fsz + fsz - kbs)
    m = dims[0] * oshape[0] * oshape[1] * oshape[2]
    ntile = (m + 7) // 8
    if wdesc[13] == 1:
        g = task // nblk
        kb = task - g * nblk
    else:
        ngroups = (ntile + group - 1) // group
        kb = task // ngroups
        g = task - kb * ngroups
    wpp = _block_weights(wsrc, wdesc, kb, fscr, tid * fsz,
                         ptr_of(scr, tid * scr.shape[1] + scr.shape[1] - 1))
    narrow = kbs == vlanes(xp)  # one-vector blocks (_ntile)
    # staged output (see _stage_layout): tiles store channels-last into scratch, the task then
    # writes them into the output channel by channel. `unit` is 1 when staged (dims[17], the
    # stage layout, is 1 or 2): the stage's channel stride, read from the array so that it
    # is no compile-time literal (a literal would compile the tiles a second time)
    unit = min(dims[17], 1)
    cs = kbs
    slen = group * 8 * cs
    span = kshape[2] * ishape[3]
    # scratch past the gathered spans: none when every window lies inside the input (a
    # tiled task's tile, a zero-padded copy), since no tile gathers then (_pixel_meta)
    gather = 0 if _windows_inside(ishape, oshape, kshape, geom) else 8 * span + 16
    room = fsz - held - kbs - gather
    t0 = g * group
    q0 = t0 * 8
    qa = q0
    pos = _decode(q0, oshape)
    if unit == 1 and room >= slen:
        ppi = oshape[0] * oshape[1] * oshape[2]
        slay = (lay[0], lay[1], lay[2], ppi * cs, oshape[1] * oshape[2] * cs, oshape[2] * cs, cs,
                unit)
        soshape = (oshape[0], oshape[1], oshape[2], nblk * kbs)
        soff = tid * fsz + fsz - kbs - slen
        c_lo = kb * kbs
        top = ptr_of(fscr, soff - qa * cs - c_lo)
        for _ in range(t0, min(t0 + group, ntile)):
            if narrow:
                _ntile8(xp, wpp, bp, zp, top, sp, fp, tb, kb, pos, min(8, m - q0), ishape,
                        soshape, kshape, geom, slay)
            else:
                _tile8(xp, wpp, bp, zp, top, sp, fp, tb, kb, pos, min(8, m - q0), ishape,
                       soshape, kshape, geom, slay)
            q0 += 8
            pos = _advance(pos, 8, oshape)
        _flush_stage(op, ptr_of(fscr, soff), qa, min(q0, m), cs, c_lo, oshape, lay, dims[17])
    else:
        for _ in range(t0, min(t0 + group, ntile)):
            if narrow:
                _ntile8(xp, wpp, bp, zp, op, sp, fp, tb, kb, pos, min(8, m - q0), ishape,
                        oshape, kshape, geom, lay)
            else:
                _tile8(xp, wpp, bp, zp, op, sp, fp, tb, kb, pos, min(8, m - q0), ishape,
                       oshape, kshape, geom, lay)
            q0 += 8
            pos = _advance(pos, 8, oshape)


@njit(parallel=True, cache=CACHE)
def _forward_p8(x, wsrc, wdesc, aux, out, dims, stride, dilation, pad_low, scr, fscr, group,
                task_at):
    ntile = (dims[0] * dims[8] * dims[9] * dims[10] + 7) // 8
    for task in prange((ntile + group - 1) // group * wdesc[0]):
        # the task function runs at address task_at (compiled once: see _jit.caller); int64
        # task and thread ids: the prange index is unsigned
        _call_row_task(task_at, (x, wsrc, wdesc, aux, out, dims, stride, dilation, pad_low,
                                scr, fscr, group, np.int64(task),
                                np.int64(numba.get_thread_id())))


@njit(cache=CACHE)
def _wtask_p8(x, wp, aux, out, dims, stride, dilation, pad_low, scr, fscr, group, task, tid):
    """Task `task` of the window-mode drivers of 8-pixel tiles, on thread `tid`'s scratch."""
    ishape = (dims[1], dims[2], dims[3], dims[4])
    oshape = (dims[8], dims[9], dims[10], dims[11])
    lay = (dims[5], dims[6], dims[7], dims[12], dims[13], dims[14], dims[15], dims[16])
    nblk, kbs = wp.shape[0], wp.shape[5]
    kshape = (wp.shape[1], wp.shape[2], wp.shape[3], wp.shape[5])
    geom = (stride, dilation, pad_low)
    xp = ptr_of(x, 0)
    bp = ptr_of(aux, 0)
    zp = ptr_of(aux, nblk * kbs)
    op = ptr_of(out, 0)
    fsz = fscr.shape[1]
    sp = ptr_of(scr, tid * scr.shape[1])
    held = 0
    fp = ptr_of(fscr, tid * fsz + held)
    tb = ptr_of(fscr, tid * fsz + fsz - kbs)
    m = dims[0] * oshape[0] * oshape[1] * oshape[2]
    ntile = (m + 7) // 8
    g = task
    wpp = ptr_of(wp, 0)
    # staged output (see _stage_layout): tiles store channels-last into scratch, the task then
    # writes them into the output channel by channel. `unit` is 1 when staged (dims[17], the
    # stage layout, is 1 or 2): the stage's channel stride, read from the array so that it
    # is no compile-time literal (a literal would compile the tiles a second time)
    unit = min(dims[17], 1)
    cs = nblk * kbs
    slen = group * 8 * cs
    span = kshape[0] * kshape[1] * kshape[2] * ishape[3]
    # scratch past the gathered spans: none when every window lies inside the input (a
    # tiled task's tile, a zero-padded copy), since no tile gathers then (_pixel_meta)
    gather = 0 if _windows_inside(ishape, oshape, kshape, geom) else 8 * span + 16
    room = fsz - held - kbs - gather
    t0 = g * group
    q0 = t0 * 8
    qa = q0
    pos = _decode(q0, oshape)
    if unit == 1 and room >= slen:
        ppi = oshape[0] * oshape[1] * oshape[2]
        slay = (lay[0], lay[1], lay[2], ppi * cs, oshape[1] * oshape[2] * cs, oshape[2] * cs, cs,
                unit)
        soshape = (oshape[0], oshape[1], oshape[2], nblk * kbs)
        soff = tid * fsz + fsz - kbs - slen
        c_lo = unit - 1
        top = ptr_of(fscr, soff - qa * cs - c_lo)
        for _ in range(t0, min(t0 + group, ntile)):
            _wtile8(xp, wpp, bp, zp, top, sp, fp, tb, pos, min(8, m - q0), ishape,
                    soshape, kshape, geom, slay)
            q0 += 8
            pos = _advance(pos, 8, oshape)
        _flush_stage(op, ptr_of(fscr, soff), qa, min(q0, m), cs, c_lo, oshape, lay, dims[17])
    else:
        for _ in range(t0, min(t0 + group, ntile)):
            _wtile8(xp, wpp, bp, zp, op, sp, fp, tb, pos, min(8, m - q0), ishape,
                    oshape, kshape, geom, lay)
            q0 += 8
            pos = _advance(pos, 8, oshape)


@njit(parallel=True, cache=CACHE)
def _wforward_p8(x, wp, aux, out, dims, stride, dilation, pad_low, scr, fscr, group,
                 task_at):
    ntile = (dims[0] * dims[8] * dims[9] * dims[10] + 7) // 8
    for task in prange((ntile + group - 1) // group):
        # the task function runs at address task_at (compiled once: see _jit.caller); int64
        # task and thread ids: the prange index is unsigned
        _call_window_task(task_at, (x, wp, aux, out, dims, stride, dilation, pad_low,
                                   scr, fscr, group, np.int64(task),
                                   np.int64(numba.get_thread_id())))


# --- generated tiles and drivers: end


class Driver(NamedTuple):
    """A parallel driver, the task function its loop calls by address, and their types."""

    kernel: Callable[..., None]
    task: Callable[..., None]
    signature: Callable[[np.dtype], tuple]
    task_signature: Callable[[np.dtype], tuple]

    def __call__(self, *arguments) -> None:
        """Run the driver on ``arguments`` (all but the task's address, which it adds)."""
        dtype = arguments[0].dtype
        _jit.ensure_compiled(self.kernel, self.signature, dtype)
        self.kernel(*arguments, _jit.address_of(self.task, self.task_signature, dtype))


_DRIVERS = {6: Driver(_forward_p6, _task_p6, _row_driver_signature, _row_task_signature),
            8: Driver(_forward_p8, _task_p8, _row_driver_signature, _row_task_signature)}
_WDRIVERS = {6: Driver(_wforward_p6, _wtask_p6, _window_driver_signature,
                       _window_task_signature),
             8: Driver(_wforward_p8, _wtask_p8, _window_driver_signature,
                       _window_task_signature)}


# ----------------------------------------------------------------------------------------------
# tiled mode: window-mode layers on a channels-first input with no layout copy of the batch.
# Each task takes a block of output rows of one output plane of one sample, copies the input
# rows they read (all columns, zero padding included) into its thread's small channels-last
# tile, and runs the window-mode task function (called by address) on that sub-problem: the
# convolution of the tile with no padding, whose output is the block of rows of the real
# output, through its strides. The input is read once, inside the
# parallel tasks, instead of by a copy launch per part of the batch before them. A
# channels-last input whose windows read padding takes the same route
# (:func:`tiles_channels_last`): its rows are plain copies, and no tile gathers windows.


@njit(cache=CACHE)
def _fill_tile_rows(src, sdims, n, i0, i1, col0, nrows, tile, at):
    """Copy input rows ``i1 .. i1 + nrows`` of plane ``i0`` of sample ``n`` into ``tile[at:]``.

    `src` is the input (flat, from element ``[0, 0, 0, 0, 0]``); ``sdims`` starts ``C, I0,
    I1, I2, sN, sC, s0, s1, W``: channels, spatial sizes, element strides and the tile's
    row width ``W`` (pixels), whose pixel 0 is input column ``col0``; ``sdims[23]`` is the
    last spatial stride: 1 (channels-first: each row's pixels go through in-register
    transposes, :func:`fastconv._kernels.transpose_run`) or ``C`` (channels-last, channel
    stride 1: each row's pixels are one contiguous copy). Tile rows are ``W`` pixels x
    ``C`` channels, channels-last; rows and columns outside the input are zeros.
    """
    c_n, i0n, i1n, i2n = sdims[0], sdims[1], sdims[2], sdims[3]
    s_n, s_c, s0, s1, width = sdims[4], sdims[5], sdims[6], sdims[7], sdims[8]
    lanes = vlanes(tile)
    row = width * c_n
    lead = min(width, max(0, -col0))  # tile pixels left of the input
    first = max(0, col0)  # input columns [first, first + cols) go to tile pixels lead + ...
    cols = max(0, min(i2n, col0 + width) - first)
    s2 = sdims[23]
    src_p, tile_p = ptr_of(src, 0), ptr_of(tile, 0)
    for r in range(nrows):
        dst = at + r * row
        i1r = i1 + r
        if i0 < 0 or i0 >= i0n or i1r < 0 or i1r >= i1n:
            _zero_span(ptr_of(tile, dst), row, lanes)
            continue
        base = n * s_n + i0 * s0 + i1r * s1 + first * s2
        _zero_span(ptr_of(tile, dst), lead * c_n, lanes)
        out = dst + lead * c_n
        if s2 == 1:
            transpose_run(src, base, s_c, cols, c_n, tile, out, c_n)
        else:
            for e in range(cols * c_n):
                tile_p[out + e] = src_p[base + e]
        for e in range(out + cols * c_n, dst + row):
            tile[e] = 0


@njit(cache=CACHE)
def _tiled_origin(sdims, task):
    """Sample, output plane, first output row and first output column of tiled task `task`."""
    blocks = sdims[12]
    block = task % blocks
    rest = task // blocks
    r0 = block * sdims[11] if sdims[13] == 1 else 0
    c0 = block * sdims[11] if sdims[13] == 2 else 0
    return rest // sdims[10], rest % sdims[10], r0, c0


@njit(cache=CACHE, inline="always")
def _prefetch_tiled_part(src, sdims, stride, task, part, parts, lanes):
    """Prefetch (into L2) part ``part`` of ``parts`` of the rows task ``task`` copies.

    The input rows :func:`_tiled_task` copies for task ``task``: of a channels-first input,
    those of channels ``[part * C // parts, (part + 1) * C // parts)``; of a channels-last
    one, part ``part`` of its rows. One prefetch per ``lanes`` elements (at most a cache
    line apart).
    """
    n, o0, r0, c0 = _tiled_origin(sdims, task)
    col0 = c0 * stride[2] - sdims[18]
    first = max(0, col0)
    cols = min(sdims[3], col0 + sdims[8]) - first
    if cols <= 0:
        return
    s2 = sdims[23]
    if s2 != 1:  # channels-last: a row's pixels are one run
        rows = sdims[14] * sdims[15]
        for q in range(part * rows // parts, (part + 1) * rows // parts):
            i0 = o0 * stride[0] - sdims[16] + q // sdims[15]
            i1 = r0 * stride[1] - sdims[17] + q % sdims[15]
            if i0 < 0 or i0 >= sdims[1] or i1 < 0 or i1 >= sdims[2]:
                continue
            at = n * sdims[4] + i0 * sdims[6] + i1 * sdims[7] + first * s2
            for e in range(0, cols * s2, lanes):
                prefetch_l2(src, at + e)
            prefetch_l2(src, at + cols * s2 - 1)
        return
    for c in range(part * sdims[0] // parts, (part + 1) * sdims[0] // parts):
        for p in range(sdims[14]):
            i0 = o0 * stride[0] - sdims[16] + p
            if i0 < 0 or i0 >= sdims[1]:
                continue
            for r in range(sdims[15]):
                i1 = r0 * stride[1] - sdims[17] + r
                if i1 < 0 or i1 >= sdims[2]:
                    continue
                at = n * sdims[4] + c * sdims[5] + i0 * sdims[6] + i1 * sdims[7] + first
                for e in range(0, cols, lanes):
                    prefetch_l2(src, at + e)
                prefetch_l2(src, at + cols - 1)


@njit(cache=CACHE, inline="always")
def _fill_task_tile(src, sdims, stride, n, o0, r0, c0, tile):
    """Copy the input rows a tiled task at ``(n, o0, r0, c0)`` reads into ``tile``.

    Every tile plane's rows (see :func:`_fill_tile_rows`; zeros outside the input).
    """
    planes, rows_in = sdims[14], sdims[15]
    for p in range(planes):
        _fill_tile_rows(src, sdims, n, o0 * stride[0] - sdims[16] + p,
                        r0 * stride[1] - sdims[17], c0 * stride[2] - sdims[18], rows_in, tile,
                        p * rows_in * sdims[8] * sdims[0])


@njit(cache=CACHE)
def _tiled_task(src, sdims, wp, aux, out, dims, last_dims, stride, dilation, scr, fscr, tiles,
                group, task, tid, window_at):
    """Task `task` of :func:`_tiled_forward` on thread `tid`'s scratch and tile.

    ``sdims`` as :func:`_fill_tile_rows`, then ``N, O0, B, blocks, axis, tile planes, tile
    rows, pad0, pad1, pad2, osN, os0, os1, os2`` (and the pixel stride, 23): each task
    covers a block of ``B`` output rows (``axis`` 1) or columns (``axis`` 2, when there is
    one row) of one output plane of one sample; ``dims`` / ``last_dims`` describe the
    sub-problem of a full / the last (shorter) block for the window-mode task (its tile as
    the input, its block of the output through the output's strides). While it computes,
    the task prefetches the input of task ``task + 1``, the thread's likely next one: a job
    table runs consecutive tasks per thread, and so does a parallel launch (the threading
    layers give each thread a contiguous range of iterations, with TBB's work stealing
    too: seen with 2 threads, tasks 0-27 on one and 28-55 on the other).
    """
    blocks = sdims[12]
    n, o0, r0, c0 = _tiled_origin(sdims, task)
    d = dims if task % blocks < blocks - 1 else last_dims
    tile = tiles[tid]
    _fill_task_tile(src, sdims, stride, n, o0, r0, c0, tile)
    sub = out[n * sdims[19] + o0 * sdims[20] + r0 * sdims[21] + c0 * sdims[22]:]
    ntile = (d[9] * d[10] + TILE_P - 1) // TILE_P  # the block's output rows x columns
    calls = (ntile + group - 1) // group
    # the input of this thread's likely next task, a part before each call, reaches L2
    # while this one computes
    ahead = task + 1
    if ahead >= sdims[9] * sdims[10] * blocks:
        ahead = -1
    for g in range(calls):
        if ahead >= 0:
            _prefetch_tiled_part(src, sdims, stride, ahead, g, calls, vlanes(tile))
        _call_window_task(window_at, (tile, wp, aux, sub, d, stride, dilation, (0, 0, 0), scr,
                                      fscr, group, np.int64(g), tid))


@njit(parallel=True, cache=CACHE)
def _tiled_forward(src, sdims, wp, aux, out, dims, last_dims, stride, dilation, scr, fscr, tiles,
                   group, window_at, task_at):
    for task in prange(sdims[9] * sdims[10] * sdims[12]):
        _call_tiled_task(task_at, (src, sdims, wp, aux, out, dims, last_dims, stride, dilation,
                                   scr, fscr, tiles, group, np.int64(task),
                                   np.int64(numba.get_thread_id()), window_at))


def _tiled_task_signature(dtype: np.dtype) -> tuple:
    """Argument types of :func:`_tiled_task`."""
    index = np.dtype(np.int64)
    triple = types.UniTuple(types.int64, 3)
    return (data_type(dtype, 1, layout="C"), data_type(index, 1, layout="C"),
            data_type(dtype, 6, layout="C"), data_type(dtype, 1, layout="C"),
            data_type(dtype, 1, True, "C"), data_type(index, 1, layout="C"),
            data_type(index, 1, layout="C"), triple, triple,
            data_type(index, 2, True, "C"), data_type(dtype, 2, True, "C"),
            data_type(dtype, 2, True, "C"), types.int64, types.int64, types.int64, types.int64)


_tiled_forward_signature = _jit.kernel_signature(_tiled_task_signature, 2)
_call_tiled_task = _jit.caller(_tiled_task_signature)


@njit(cache=CACHE)
def _tiled_row_task(src, sdims, wsrc, wdesc, aux, out, dims, last_dims, stride, dilation, scr,
                    fscr, tiles, group, task, tid, row_at):
    """Task `task` of :func:`_tiled_row_forward`: one channel block of a tiled task's rows.

    Tasks are numbered channel block first, then as :func:`_tiled_task`'s: a thread's
    consecutive tasks share the block of weights it packed itself (:func:`_block_weights`).
    Each copies the input rows of its block of output rows into the thread's tile, as
    :func:`_tiled_task` does, and runs the row-mode task on the tile (``dims`` /
    ``last_dims``) for its channel block, every group of pixel tiles in turn.
    """
    per_block = sdims[9] * sdims[10] * sdims[12]
    kb = task // per_block
    rest = task - kb * per_block
    n, o0, r0, c0 = _tiled_origin(sdims, rest)
    d = dims if rest % sdims[12] < sdims[12] - 1 else last_dims
    tile = tiles[tid]
    _fill_task_tile(src, sdims, stride, n, o0, r0, c0, tile)
    sub = out[n * sdims[19] + o0 * sdims[20] + r0 * sdims[21] + c0 * sdims[22]:]
    ntile = (d[0] * d[8] * d[9] * d[10] + TILE_P - 1) // TILE_P
    ngroups = (ntile + group - 1) // group
    for g in range(ngroups):
        _call_row_task(row_at, (tile, wsrc, wdesc, aux, sub, d, stride, dilation, (0, 0, 0),
                                scr, fscr, group, np.int64(kb * ngroups + g), tid))


@njit(parallel=True, cache=CACHE)
def _tiled_row_forward(src, sdims, wsrc, wdesc, aux, out, dims, last_dims, stride, dilation,
                       scr, fscr, tiles, group, row_at, task_at):
    for task in prange(wdesc[0] * sdims[9] * sdims[10] * sdims[12]):
        _call_tiled_row_task(task_at, (src, sdims, wsrc, wdesc, aux, out, dims, last_dims,
                                       stride, dilation, scr, fscr, tiles, group,
                                       np.int64(task), np.int64(numba.get_thread_id()),
                                       row_at))


def _tiled_row_task_signature(dtype: np.dtype) -> tuple:
    """Argument types of :func:`_tiled_row_task`."""
    index = np.dtype(np.int64)
    triple = types.UniTuple(types.int64, 3)
    return (data_type(dtype, 1, layout="C"), data_type(index, 1, layout="C"),
            data_type(dtype, 1, layout="C"), data_type(index, 1, layout="C"),
            data_type(dtype, 1, layout="C"), data_type(dtype, 1, True, "C"),
            data_type(index, 1, layout="C"), data_type(index, 1, layout="C"), triple, triple,
            data_type(index, 2, True, "C"), data_type(dtype, 2, True, "C"),
            data_type(dtype, 2, True, "C"), types.int64, types.int64, types.int64, types.int64)


_tiled_row_forward_signature = _jit.kernel_signature(_tiled_row_task_signature, 2)
_call_tiled_row_task = _jit.caller(_tiled_row_task_signature)


# ----------------------------------------------------------------------------------------------
# job tables: several planned row- and window-mode calls (a strided adjoint's stride phases on
# one part of the batch) in one parallel launch. Each thread runs its share of every job's
# tasks, job after job: the same tasks, on the same threads' scratch, as one launch per job
# (so the same results), without a launch and its Python preparation per job. The arrays are
# passed by address (Python holds them for the call): one int64 row per job (_J_* columns).

_J_KIND, _J_TASKS, _J_GROUP = 0, 1, 2  # kind: 0 row, 1 window, 2 tiled mode
_J_X, _J_W, _J_OUT = 3, 5, 7  # (address, elements) of the flat input, weights, output
_J_GEOMETRY = 9  # stride, dilation, pad_low
_J_DIMS = 18  # the drivers' ``dims`` (:func:`_layout`)
_J_WDESC = _J_DIMS + 18  # row mode: the weights' description (:data:`_WDESC`)
_J_WSHAPE = _J_WDESC + _WDESC  # window and tiled mode: the packed weights' shape
_J_LAST_DIMS = _J_WSHAPE + 6  # tiled mode: ``last_dims`` and ``sdims`` (:func:`_tiled_task`)
_J_SDIMS = _J_LAST_DIMS + 18
_J_COLUMNS = _J_SDIMS + 24


@njit(cache=CACHE)
def _run_job(jobs, j, aux, scr, fscr, tiles, first, stop, tid, row_at, window_at, tiled_at):
    """Tasks ``first .. stop - 1`` of job ``j`` of a :func:`_jobs_forward` table."""
    job = jobs[j]
    x = numba.carray(pointer_at(job[_J_X], aux), (job[_J_X + 1],))
    out = numba.carray(pointer_at(job[_J_OUT], aux), (job[_J_OUT + 1],))
    w = pointer_at(job[_J_W], aux)
    dims = job[_J_DIMS:_J_DIMS + 18]
    g = _J_GEOMETRY
    stride = (job[g], job[g + 1], job[g + 2])
    dilation = (job[g + 3], job[g + 4], job[g + 5])
    pad_low = (job[g + 6], job[g + 7], job[g + 8])
    group = job[_J_GROUP]
    if job[_J_KIND] == 0:
        wsrc = numba.carray(w, (job[_J_W + 1],))
        wdesc = job[_J_WDESC:_J_WDESC + _WDESC]
        scr[tid, scr.shape[1] - 1] = -1  # no channel block of this job's weights packed yet
        for task in range(first, stop):
            _call_row_task(row_at, (x, wsrc, wdesc, aux, out, dims, stride, dilation, pad_low,
                                    scr, fscr, group, task, tid))
        return
    s = _J_WSHAPE
    wp = numba.carray(w, (job[s], job[s + 1], job[s + 2], job[s + 3], job[s + 4], job[s + 5]))
    if job[_J_KIND] == 1:
        for task in range(first, stop):
            _call_window_task(window_at, (x, wp, aux, out, dims, stride, dilation, pad_low,
                                          scr, fscr, group, task, tid))
        return
    last_dims = job[_J_LAST_DIMS:_J_SDIMS]
    sdims = job[_J_SDIMS:_J_COLUMNS]
    for task in range(first, stop):
        _call_tiled_task(tiled_at, (x, sdims, wp, aux, out, dims, last_dims, stride, dilation,
                                    scr, fscr, tiles, group, task, tid, window_at))


@njit(parallel=True, cache=CACHE)
def _jobs_forward(jobs, aux, scr, fscr, tiles, slices, row_at, window_at, tiled_at):
    """Run every job of the table ``jobs``, a slice of each job's tasks per iteration.

    Iteration ``t`` of ``slices`` runs tasks ``n * t // slices`` to ``n * (t + 1) //
    slices`` of each job of ``n`` tasks, job after job: equal shares decided up front give
    each thread consecutive slices (a launch of each job alone would give it the same
    tasks); handed out one at a time (:func:`fastconv._runtime.dynamic_schedule`), the
    slices even out a slower core.
    """
    for t in prange(slices):
        tid = np.int64(numba.get_thread_id())
        for j in range(jobs.shape[0]):
            n = jobs[j, _J_TASKS]
            first, stop = n * t // slices, n * (t + 1) // slices
            if first < stop:
                _run_job(jobs, j, aux, scr, fscr, tiles, first, stop, tid, row_at,
                         window_at, tiled_at)


def _jobs_signature(dtype: np.dtype) -> tuple:
    """Argument types of :func:`_jobs_forward`."""
    index = np.dtype(np.int64)
    return (data_type(index, 2, layout="C"), data_type(dtype, 1, layout="C"),
            data_type(index, 2, True, "C"), data_type(dtype, 2, True, "C"),
            data_type(dtype, 2, True, "C"), types.int64, types.int64, types.int64, types.int64)


#: Slices of every job per thread in a job table's launch (see :func:`_jobs_forward`).
_JOB_SLICES = 4


def _address(a: np.ndarray) -> tuple[int, int]:
    """Address and element extent of the memory of ``a`` (non-negative strides)."""
    return a.ctypes.data, _extent(a) if a.size else 0


class JobTable(NamedTuple):
    """Planned calls for one launch of :func:`_jobs_forward` (from :func:`job_table`)."""

    #: one row per call (the ``_J_*`` columns), arrays by address
    jobs: np.ndarray
    #: ``aux`` of calls without bias (zeros), and the output channels (bias values)
    zero_aux: np.ndarray
    c_out: int
    #: shapes of the per-thread integer and floating-point scratch and input tiles
    scratch_shape: tuple[int, int]
    data_scratch_shape: tuple[int, int]
    tiles_shape: tuple[int, int]


def _job_row(plan: DensePlan | TiledPlan, x: np.ndarray,
             wp: np.ndarray | tuple[np.ndarray, np.ndarray], out: np.ndarray) -> np.ndarray:
    """The :func:`_jobs_forward` row of one planned call (see :func:`job_table`)."""
    row = np.zeros(_J_COLUMNS, np.int64)
    row[_J_X:_J_X + 2] = _address(x)
    row[_J_OUT:_J_OUT + 2] = _address(out)
    row[_J_GROUP] = plan.group
    if isinstance(plan, TiledPlan):
        sdims = plan.sdims
        row[:_J_TASKS + 1] = 2, sdims[9] * sdims[10] * sdims[12]
        row[_J_W:_J_W + 2] = wp.ctypes.data, wp.size
        row[_J_GEOMETRY:_J_GEOMETRY + 6] = (*plan.stride, *plan.dilation)
        row[_J_DIMS:_J_WDESC] = plan.dims
        row[_J_WSHAPE:_J_LAST_DIMS] = wp.shape
        row[_J_LAST_DIMS:_J_SDIMS] = plan.last_dims
        row[_J_SDIMS:] = sdims
        return row
    if plan.driver not in (_DRIVERS[TILE_P], _WDRIVERS[TILE_P]) or plan.empty or plan.bias_only:
        raise ValueError(f"fastconv internal: job tables run live calls of {TILE_P}-pixel tiles")
    tiles = -(-math.prod(out.shape[:4]) // TILE_P)
    row[_J_GEOMETRY:_J_DIMS] = (*plan.stride, *plan.dilation, *plan.pad_low)
    row[_J_DIMS:_J_WDESC] = _layout(x, out)
    if plan.window:
        row[:_J_TASKS + 1] = 1, -(-tiles // plan.group)
        row[_J_W:_J_W + 2] = wp.ctypes.data, wp.size
        row[_J_WSHAPE:_J_LAST_DIMS] = wp.shape
        return row
    if isinstance(wp, np.ndarray):
        wp = (wp.reshape(-1), packed_description(wp.shape, plan.c_out, plan.block_major))
    row[:_J_TASKS + 1] = 0, -(-tiles // plan.group) * wp[1][0]
    row[_J_W:_J_W + 2] = wp[0].ctypes.data, wp[0].size
    row[_J_WDESC:_J_WSHAPE] = wp[1]
    return row


def job_table(calls: list[tuple[DensePlan | TiledPlan, np.ndarray,
                                np.ndarray | tuple[np.ndarray, np.ndarray], np.ndarray]]
              ) -> JobTable:
    """The job table of planned calls ``(plan, x, wp, out)`` (run by :func:`run_jobs`).

    Each call as :func:`run_dense` (a plan neither empty nor bias-only, of this host's tile
    :data:`TILE_P`) or :func:`run_tiled` takes it; all have the same output channels. The
    table holds the arrays' addresses: the caller keeps them alive while it runs the table.
    """
    plans = [plan for plan, *_ in calls]
    dtype = calls[0][3].dtype
    zero_aux = np.zeros(max(plan.zero_aux.shape[0] for plan in plans), dtype)
    zero_aux.flags.writeable = False
    _jit.ensure_compiled(_jobs_forward, _jobs_signature, dtype)
    jobs = np.stack([_job_row(*call) for call in calls])
    # jobs run at once: a stride phase's staged flush must touch no other phase's elements
    for stage in (_J_DIMS + 17, _J_LAST_DIMS + 17):
        jobs[jobs[:, stage] == 2, stage] = 3
    return JobTable(jobs, zero_aux, plans[0].c_out, *_job_scratch_shapes(plans))


def _job_scratch_shapes(plans: list[DensePlan | TiledPlan]) -> tuple[tuple[int, int], ...]:
    """The integer and float scratch and the tiles of one launch of ``plans`` (the largest)."""
    tiles = [plan.tiles_shape for plan in plans if isinstance(plan, TiledPlan)]
    return (tuple(map(max, zip(*(plan.scratch_shape for plan in plans)))),
            tuple(map(max, zip(*(plan.data_scratch_shape for plan in plans)))),
            tuple(map(max, zip(*tiles))) if tiles else (1, 0))


def job_scratch_bytes(plans: list[DensePlan | TiledPlan], dtype: np.dtype) -> int:
    """Bytes of a table of ``plans`` and of the scratch :func:`run_jobs` allocates for it.

    The table (its rows and zero ``aux``), the launch's scratch, ``aux`` with a bias, and
    the copy of the rows a launch on other arrays makes: an upper bound of what a
    :func:`run_tiled` call of one plan allocates too.
    """
    ints, floats, tiles = _job_scratch_shapes(plans)
    return (8 * math.prod(ints) + 2 * 8 * len(plans) * _J_COLUMNS
            + dtype.itemsize * (math.prod(floats) + math.prod(tiles)
                                + 2 * max(p.zero_aux.shape[0] for p in plans)))


def run_jobs(table: JobTable, bias: np.ndarray | None, x_shift: int = 0,
             out_shift: int = 0, w_shift: int = 0) -> None:
    """Run the calls of a :func:`job_table` in one parallel launch.

    The results are bitwise those of one :func:`run_dense` (or :func:`run_tiled`) per
    call. ``x_shift``, ``out_shift`` and ``w_shift`` (bytes) move every call's input,
    output and weights: the table of one part of a batch runs another part of the same
    shapes and strides, and a table kept from an earlier call runs this call's arrays.
    """
    jobs = table.jobs
    if x_shift or out_shift or w_shift:
        jobs = jobs.copy()
        jobs[:, _J_X] += x_shift
        jobs[:, _J_OUT] += out_shift
        jobs[:, _J_W] += w_shift
    aux = table.zero_aux
    if bias is not None:
        aux = np.zeros(aux.shape, aux.dtype)
        aux[:table.c_out] = bias
    dtype = aux.dtype
    _jobs_forward(jobs, aux, np.empty(table.scratch_shape, np.int64),
                  np.empty(table.data_scratch_shape, dtype), np.empty(table.tiles_shape, dtype),
                  _JOB_SLICES * numba.get_num_threads(),
                  _jit.address_of(_DRIVERS[TILE_P].task, _row_task_signature, dtype),
                  _jit.address_of(_WDRIVERS[TILE_P].task, _window_task_signature, dtype),
                  _jit.address_of(_tiled_task, _tiled_task_signature, dtype))


#: the row-mode task function of this host's tile, run by :func:`small_conv`
_SMALL_TASK = {6: _task_p6, 8: _task_p8}[TILE_P]


@njit(cache=CACHE)
def small_conv(x, w, bias, out, dims, wdesc, task_at):
    """A whole small dense convolution in one compiled call, on the calling thread.

    For calls whose Python-side preparation (layout copies, weight packing, scratch) costs
    more than their arithmetic: the input is copied to channels-last and zero-padded (so
    every tile reads its windows in place), the weights are packed (:func:`pack_weights`
    layout) and the row-mode tasks of this host's tile run one after another into a
    channels-last result, which is then copied to `out`, all in compiled loops. The
    micro-kernel and its summation order are those of :func:`run_dense`, so results are
    bitwise identical to the other paths.

    Parameters
    ----------
    x : ndarray, shape (N, I0, I1, I2, C_in), any strides
    w : ndarray, shape (C_out, C_in, K0, K1, K2), any strides (a flipped view for adjoints)
    bias : ndarray, shape (C_out,) or (0,) for none
    out : ndarray, shape (N, O0, O1, O2, C_out), any non-overlapping strides
    dims : ndarray of int64
        :func:`_layout_of` of C-contiguous arrays of the zero-padded input (the windows the
        outputs read, ``(N, E0, E1, E2, C_in)``) and of `out`, then the small row-mode
        :class:`DensePlan`'s stride, dilation and low padding (3 each: zeros, the padding
        is in the copy), tiles per task, scratch row lengths (int, float), ``aux`` length
        and channel block, then the convolution's low padding (3; see :func:`small_call`).
        One array: each argument of a compiled call costs its dispatcher time.
    wdesc : ndarray of int64
        :func:`packed_description` of the packed weights' shape.
    task_at : int
        Address of :data:`_SMALL_TASK` (:func:`fastconv._jit.address_of`), called per task.
    """
    stride = (dims[18], dims[19], dims[20])
    dilation = (dims[21], dims[22], dims[23])
    pad_low = (dims[24], dims[25], dims[26])
    group, ssz, fsz, aux_size, kbs = dims[27], dims[28], dims[29], dims[30], dims[31]
    p0, p1, p2 = dims[32], dims[33], dims[34]
    n, i0n, i1n, i2n, c_in = x.shape
    e0n, e1n, e2n = dims[1], dims[2], dims[3]
    c_out, _, k0n, k1n, k2n = w.shape
    nblk = (c_out + kbs - 1) // kbs
    # the input positions the windows read, at their place in the zero-padded copy
    xc = np.zeros((n, e0n, e1n, e2n, c_in), out.dtype)
    for a in range(n):
        for i0 in range(max(0, -p0), min(i0n, e0n - p0)):
            for i1 in range(max(0, -p1), min(i1n, e1n - p1)):
                for i2 in range(max(0, -p2), min(i2n, e2n - p2)):
                    for c in range(c_in):
                        xc[a, i0 + p0, i1 + p1, i2 + p2, c] = x[a, i0, i1, i2, c]
    wp = np.zeros((nblk, k0n, k1n, k2n, c_in, kbs), out.dtype)
    for k in range(c_out):
        for c in range(c_in):
            for k0 in range(k0n):
                for k1 in range(k1n):
                    for k2 in range(k2n):
                        wp[k // kbs, k0, k1, k2, c, k % kbs] = w[k, c, k0, k1, k2]
    aux = np.zeros(aux_size, out.dtype)
    for k in range(bias.shape[0]):
        aux[k] = bias[k]
    oc = np.empty(out.shape, out.dtype)
    scr = np.empty((1, ssz), np.int64)
    fscr = np.empty((1, fsz), out.dtype)
    ntile = (n * out.shape[1] * out.shape[2] * out.shape[3] + TILE_P - 1) // TILE_P
    for task in range((ntile + group - 1) // group * nblk):
        _call_row_task(task_at, (xc.reshape(-1), wp.reshape(-1), wdesc, aux, oc.reshape(-1),
                                 dims, stride, dilation, pad_low, scr, fscr, group,
                                 np.int64(task), np.int64(0)))
    for a in range(n):
        for o0 in range(out.shape[1]):
            for o1 in range(out.shape[2]):
                for o2 in range(out.shape[3]):
                    for k in range(c_out):
                        out[a, o0, o1, o2, k] = oc[a, o0, o1, o2, k]


#: below this many multiply-adds a call is small: planned for one thread and, through
#: small_call / small_conv, run on the calling thread (no parallel launch)
_SERIAL_MAX_FMAS = 1 << 18
_GROUP_INPUT_BYTES = 256 * 1024
#: bound on a task's staged outputs (channels-first output, see _stage_layout)
_STAGE_BYTES = 32 * 1024
_KBS = {"f": block_size(np.float32), "d": block_size(np.float64)}
_NTHREADS_MAX = numba.config.NUMBA_NUM_THREADS
#: the L2 cache size the task order assumes (per core; 512 KiB on Zen 3, more on most others)
_L2_BYTES = 512 * 1024


def _host_l2_bytes(path: str = "/sys/devices/system/cpu/cpu0/cache/index2/size") -> int:
    """Bytes of the host's per-core L2 cache (from Linux's sysfs), else :data:`_L2_BYTES`.

    Examples
    --------
    >>> _host_l2_bytes("/no/such/file") == _L2_BYTES
    True
    """
    try:
        with open(path) as file:
            text = file.read().strip()
        units = {"K": 1 << 10, "M": 1 << 20}
        return int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)
    except (OSError, ValueError, IndexError):
        return _L2_BYTES


#: Packed weights larger than this are packed by the row-mode threads themselves, a channel
#: block at a time (see :func:`self_packs`); smaller ones are packed once per call and run
#: in window mode, which wants them in L2 with two input tiles: the host's L2 less those,
#: at least 256 KiB (a 1 MiB L2: 704 KiB, so a 3x3 128-channel layer's 576 KiB are packed,
#: +2-3% forward and input gradient against self-packing on this project's Zen 5 host).
SELF_PACK_BYTES = max(256 * 1024, _host_l2_bytes() - 2 * 160 * 1024)  # two _TILE_BYTES


def _round_up(n: int, m: int) -> int:
    return -(-n // m) * m


def _hashable(v: object) -> object:
    """``v`` as a tuple when it is a sequence (plans are cached on their arguments)."""
    return v if isinstance(v, (tuple, int)) else tuple(v)


def _triple(v, name: str) -> tuple[int, int, int]:
    t = tuple(map(int, v))
    if len(t) != 3:
        raise ValueError(f"{name} must have 3 entries, got {v!r}")
    return t


class DensePlan(NamedTuple):
    """Everything :func:`run_dense` needs besides the arrays (see :func:`dense_plan`)."""

    #: driver to call
    driver: Driver
    #: length of the ``aux`` vector (padded bias, then zeros read by padding taps)
    aux_size: int
    #: output channels (bias values copied into ``aux``)
    c_out: int
    #: shapes of the per-thread integer and floating-point scratch
    scratch_shape: tuple[int, int]
    data_scratch_shape: tuple[int, int]
    stride: tuple[int, int, int]
    dilation: tuple[int, int, int]
    pad_low: tuple[int, int, int]
    #: consecutive pixel tiles per task
    group: int
    #: nothing to compute (``out`` is empty)
    empty: bool
    #: no reduction (``C_in == 0`` or an empty input): ``out`` is the bias
    bias_only: bool
    #: ``aux`` of every call without bias (zeros; the drivers only read ``aux``)
    zero_aux: np.ndarray
    #: window mode (the driver takes packed weights); else row mode (a weight description)
    window: bool = False
    #: row-mode tasks numbered channel block first (else pixel group first)
    block_major: bool = False


@lru_cache(maxsize=256)
def dense_plan(
    x_shape: tuple[int, ...],
    wp_shape: tuple[int, ...],
    out_shape: tuple[int, ...],
    dtype: np.dtype,
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
    pad_low: tuple[int, ...],
    tile: int | None,
    group: int | None,
    mode: str | None,
    nthreads: int,
    staged: bool = False,
    self_pack: bool = False,
) -> DensePlan:
    """Check the shapes and parameters of a :func:`dense_forward` call and plan it (cached).

    Parameters
    ----------
    x_shape, wp_shape, out_shape : tuple of int
        Shapes of the input (5-D), packed weights (6-D) and output (5-D).
    dtype : numpy.dtype
        float32 or float64.
    stride, dilation, pad_low, tile, group, mode
        As :func:`dense_forward` (hashable: tuples, ints, strings or None).
    nthreads : int
        Threads a parallel call would use (``numba.get_num_threads()``).
    staged : bool
        Whether the output has the layout :func:`stages_output` accepts (channels-first
        planes): the plan then reserves per-thread scratch for staged tiles and bounds the
        tiles per task so a task's stage stays in L1.
    self_pack : bool
        Whether row-mode calls pass the weights unpacked (:func:`weight_source`): each
        thread's float scratch then starts with room for one packed channel block.

    Returns
    -------
    DensePlan
        The driver and its parameters; a pure function of the arguments.
    """
    if len(x_shape) != 5 or len(wp_shape) != 6 or len(out_shape) != 5:
        raise ValueError("x and out must be 5-D (N, S0, S1, S2, C) and wp 6-D")
    nblk, k0, k1, k2, c_in, kbs = wp_shape
    block = _KBS[dtype.char]
    narrow = NARROW and kbs == block // 2
    if kbs != block and not narrow:
        allowed = f"{block} or {block // 2}" if NARROW else f"{block}"
        raise ValueError(f"wp must be packed with lanes_block={allowed}, got {kbs}")
    c_out = out_shape[4]
    if x_shape[4] != c_in or x_shape[0] != out_shape[0] or c_out > nblk * kbs:
        raise ValueError(f"inconsistent shapes x{x_shape}, wp{wp_shape}, out{out_shape}")
    stride = _triple(stride, "stride")
    dilation = _triple(dilation, "dilation")
    pad_low = _triple(pad_low, "pad_low")
    if min(stride) < 1 or min(dilation) < 1 or min(pad_low) < 0:
        raise ValueError("stride and dilation must be >= 1 and pad_low >= 0")
    out_size = math.prod(out_shape)
    # aux = [bias zero-padded to nblk * KB | zeros read by padding taps (K2 * C_in)]
    aux_size = nblk * kbs + k2 * c_in  # window mode reads no zeros from aux
    empty = out_size == 0
    bias_only = not empty and (c_in == 0 or math.prod(x_shape) == 0)
    # shared by the calls of this plan (the drivers only read ``aux``)
    zero_aux = np.zeros(aux_size, dtype=dtype)
    zero_aux.flags.writeable = False
    if empty or bias_only:
        return DensePlan(_DRIVERS[TILE_P], aux_size, c_out, (0, 0), (0, 0), stride, dilation,
                         pad_low, 1, empty, bias_only, zero_aux)
    ptile = TILE_P if tile is None else tile
    if ptile not in _DRIVERS:
        raise ValueError(f"tile must be one of {sorted(_DRIVERS)}")
    if mode is None:
        mode = "window" if not narrow and window_mode(wp_shape, dtype) else "row"
    if mode not in ("row", "window"):
        raise ValueError(f"mode must be 'row' or 'window', got {mode!r}")
    window = mode == "window"
    if narrow and (window or ptile != TILE_P):
        raise ValueError(f"weights packed in one-vector blocks (lanes_block={kbs}) run in "
                         f"row mode with tile={TILE_P}, got mode={mode!r}, tile={ptile}")
    # per-thread scratch rows, padded to whole cache lines (no false sharing between threads)
    scratch_shape = (_NTHREADS_MAX, _round_up(6 * ptile, 8) + 8)
    span = k0 * k1 * k2 * c_in if window else k2 * c_in
    fmas = out_size * c_in * k0 * k1 * k2
    nthreads = 1 if fmas <= _SERIAL_MAX_FMAS else nthreads
    ntile = -(-(out_size // c_out) // ptile)
    nslots = 1 if window else nblk
    if group is None:
        if window:
            group = 16
        else:
            per_tile = k0 * k1 * ptile * stride[2] * c_in * dtype.itemsize
            group = _GROUP_INPUT_BYTES // per_tile
    group = min(max(1, int(group)), ntile)
    if nthreads > 1:  # keep >= 8 tasks per thread for load balance
        group = max(1, min(group, ntile * nslots // (8 * nthreads)))
    stage = 0
    if staged:  # a task's staged outputs stay within _STAGE_BYTES (L1)
        stage_channels = nblk * kbs if window else kbs
        group = max(1, min(group, _STAGE_BYTES // (ptile * stage_channels * dtype.itemsize)))
    group = _balanced_group(ntile, group, nslots, nthreads)
    if staged:
        stage = group * ptile * stage_channels
    # gathered spans (and the spill of their last vector), the stage, then the lane buffer of
    # channels-first stores (one channel block)
    block = k0 * k1 * k2 * c_in * kbs
    held = 0 if window or not self_pack else _round_up(block, 16)
    # a thread packing its own block keeps it for consecutive tasks: block first. Packed
    # weights go block first too when the call's input and a block fit L2 together (the
    # input is then read from L2 for every block), else group first (a group's input stays
    # in L2 across the blocks, while the weights stream)
    block_major = not window and (
        self_pack or (math.prod(x_shape) + block) * dtype.itemsize <= _L2_BYTES)
    inside = _windows_inside(x_shape[1:4] + (c_in,), out_shape[1:], wp_shape[1:4] + (kbs,),
                             (stride, dilation, pad_low))
    gather = 0 if inside else ptile * span + 16
    data_scratch_shape = (_NTHREADS_MAX, held + _round_up(gather + stage + kbs,
                                                          64 // dtype.itemsize) + 16)
    drivers = _WDRIVERS if window else _DRIVERS
    return DensePlan(drivers[ptile], aux_size, c_out, scratch_shape, data_scratch_shape, stride,
                     dilation, pad_low, group, False, False, zero_aux, window, block_major)


def _balanced_group(ntile: int, group: int, nslots: int, nthreads: int) -> int:
    """Tiles per task at most ``group``, evened out so the tasks split evenly over threads.

    The groups of tiles (times ``nslots`` channel blocks) are rounded up to a multiple of
    ``nthreads`` when that needs at most one more group per thread, and the tiles spread
    evenly over them (17 tasks of 24 tiles kept one of two threads waiting a seventeenth of
    a launch; 18 tasks of 22 tiles do not).

    Examples
    --------
    >>> _balanced_group(392, 24, 1, 2), _balanced_group(392, 24, 2, 2), _balanced_group(7, 3, 1, 1)
    (22, 24, 3)
    """
    groups = -(-ntile // group)
    if nthreads <= 1:
        return group
    step = nthreads // math.gcd(nslots, nthreads)
    groups = -(-groups // step) * step
    return max(1, -(-ntile // groups))


#: The cost of a tiled task besides its tiles and its input rows, in the units of
#: :func:`_block_size` (vector multiply-adds): the call, the tile's setup, the last flush.
_TASK_COST = 2000


def _block_size(extent: int, largest: int, pixels: int, tile_fmas: int, first_elements: int,
                step_elements: int) -> int:
    """Output rows (or columns) per tiled task, at most ``largest``: the cheapest split.

    A task of ``r`` rows of ``pixels`` output pixels runs whole tiles of :data:`TILE_P`
    pixels (a short last tile costs a full one), each ``tile_fmas`` vector multiply-adds;
    it copies ``first_elements + (r - 1) * step_elements`` input elements (an element
    copied taken as one multiply-add), and costs :data:`_TASK_COST` besides.
    Of the sizes that cost least in all, the smallest: its tasks are the most even (8 rows
    of 56 pixels each rather than 9, with a last task of 2).

    Examples
    --------
    With 8-pixel tiles, a stride phase of a transposed 4x4 stride-2 layer (28 x 28 outputs,
    64 -> 32 channels) splits its rows 14 + 14 (49 whole tiles each) rather than 21 + 7
    (74 and 25 tiles, the last of each short); a 3x3 layer of 56 x 56 outputs splits them
    into blocks of 8 rather than 9 (six of 9, and one of 2):

    >>> [_block_size(28, 21, 28, 4096, 3712, 1856), _block_size(56, 9, 56, 18432, 11136,
    ...                                                         3712)] if TILE_P == 8 else [14, 8]
    [14, 8]
    """
    def task(rows: int) -> int:
        return (-(-rows * pixels // TILE_P) * tile_fmas + first_elements
                + (rows - 1) * step_elements + _TASK_COST)

    def cost(size: int) -> int:
        blocks = -(-extent // size)
        return (blocks - 1) * task(size) + task(extent - (blocks - 1) * size)

    return min(range(1, largest + 1), key=lambda size: (cost(size), size))


class TiledPlan(NamedTuple):
    """Everything :func:`run_tiled` needs besides the arrays (see :func:`tiled_plan`)."""

    #: the ``sdims`` argument of the tiled tasks (see :func:`_tiled_task`)
    sdims: np.ndarray
    #: the window-mode task's ``dims`` for a full and for the last block of rows
    dims: np.ndarray
    last_dims: np.ndarray
    stride: tuple[int, int, int]
    dilation: tuple[int, int, int]
    group: int
    scratch_shape: tuple[int, int]
    data_scratch_shape: tuple[int, int]
    tiles_shape: tuple[int, int]
    #: ``aux`` of calls without bias, its length and the output channels
    zero_aux: np.ndarray
    c_out: int


#: Bytes of a tiled task's input tile at most (it and the window task's scratch stay in L2).
_TILE_BYTES = 160 * 1024


@lru_cache(maxsize=256)
def tiled_plan(x_shape: tuple[int, ...], x_strides: tuple[int, ...], wp_shape: tuple[int, ...],
               out_shape: tuple[int, ...], out_strides: tuple[int, ...], dtype: np.dtype,
               stride: tuple[int, int, int], dilation: tuple[int, int, int],
               pad_low: tuple[int, int, int], nthreads: int,
               packed: bool = False, tile_bytes: int | None = None,
               self_pack: bool = False, group: int | None = None) -> TiledPlan | None:
    """Plan a tiled call (:func:`run_tiled`), or None where tiled mode does not apply.

    It applies to the weights :func:`tiles_apply` takes (with ``packed``) and an input of
    ``(N, I0, I1, I2, C)`` whose last spatial dimension is unit-stride (the channels-last
    view of a channels-first array) or whose pixels along it are ``C`` contiguous channels
    (a channels-last array, :func:`tiles_channels_last`), with non-negative strides
    (``x_strides`` and ``out_strides`` in bytes). Each task covers a block of output rows
    (along ``O1``) of one output plane of one sample: at most as many as keep its input tile
    within ``tile_bytes`` (default :data:`_TILE_BYTES`) and leave eight tasks per thread,
    and of those sizes the cheapest (:func:`_block_size`: whole tiles of pixels, even
    tasks). With ``self_pack``: for weights the threads pack themselves
    (:func:`self_packs`; ``wp_shape`` is then the packed shape they stand for), a plan of
    :func:`run_tiled_rows`, which runs the row-mode task on each tile, one channel block per
    task. ``group`` bounds the tiles of a window-mode call (:func:`dense_plan`; each task
    runs its tiles a group at a time, so it bounds the scratch a group's outputs are staged
    in).
    """
    item = dtype.itemsize
    xs = [v // item for v in x_strides]
    os = [v // item for v in out_strides]
    # the last spatial stride: 1 (channels-first), else that of a channels-last input
    pixel_step = 1 if xs[3] == 1 else x_shape[4]
    channels_last = xs[4] == 1 and (xs[3] == x_shape[4] or x_shape[3] == 1)
    applies = self_packs(wp_shape, dtype) if self_pack else tiles_apply(wp_shape, dtype, packed)
    if (not applies or (xs[3] != 1 and not channels_last)
            or min(xs) < 0 or min(os) < 0
            or math.prod(out_shape) == 0 or math.prod(x_shape) == 0):
        return None
    n, i0n, i1n, i2n, c_in = x_shape
    _, k0n, k1n, k2n, _, kbs = wp_shape
    _, o0n, o1n, o2n, c_out = out_shape
    planes = (k0n - 1) * dilation[0] + 1
    width = (o2n - 1) * stride[2] + (k2n - 1) * dilation[2] + 1
    row_bytes = planes * width * c_in * item

    def rows_in(rows: int) -> int:
        return (rows - 1) * stride[1] + (k1n - 1) * dilation[1] + 1

    # blocks of output rows, or of columns when there is a single row (1-D layers)
    axis = 1 if o1n > 1 else 2
    extent = o1n if axis == 1 else o2n

    def bytes_of(size: int) -> int:
        if axis == 1:
            return rows_in(size) * row_bytes
        return rows_in(1) * planes * ((size - 1) * stride[2] + (k2n - 1) * dilation[2] + 1) \
            * c_in * item

    if tile_bytes is None:
        tile_bytes = _TILE_BYTES
    largest = extent
    while largest > 1 and bytes_of(largest) > tile_bytes:
        largest = max(1, min(largest - 1, largest * tile_bytes // bytes_of(largest)))
    slots = wp_shape[0] if self_pack else 1  # tasks per block of output rows
    while largest > 1 and n * o0n * -(-extent // largest) * slots < 8 * nthreads:
        largest = (largest + 1) // 2
    # a task's tile multiply-adds (vector ones: one channel block, or all of them in window
    # mode) and the elements of one of its input rows
    tile_fmas = TILE_P * k0n * k1n * k2n * c_in * (1 if self_pack else wp_shape[0]) * 2
    size = _block_size(extent, largest, o2n if axis == 1 else 1, tile_fmas,
                       bytes_of(1) // item, (bytes_of(2) - bytes_of(1)) // item)
    blocks = -(-extent // size)
    last = extent - (blocks - 1) * size
    if axis == 2:
        width = (size - 1) * stride[2] + (k2n - 1) * dilation[2] + 1
    tile_rows = rows_in(size if axis == 1 else 1)
    sub_x = (1, planes, tile_rows, width, c_in)
    sub_x_strides = _c_strides(sub_x, item)
    sub_out = (1, 1, size, o2n, c_out) if axis == 1 else (1, 1, 1, size, c_out)
    last_out = (1, 1, last, o2n, c_out) if axis == 1 else (1, 1, 1, last, c_out)
    plan = dense_plan(sub_x, wp_shape, sub_out, dtype, stride, dilation, (0, 0, 0), None,
                      group, "row" if self_pack else "window", 1,
                      _stage_layout(sub_out, tuple(os)) != 0, self_pack)
    dims = _layout_of(sub_x, sub_x_strides, sub_out, out_strides, item)
    last_dims = _layout_of(sub_x, sub_x_strides, last_out, out_strides, item)
    sdims = np.array((c_in, i0n, i1n, i2n, xs[0], xs[4], xs[1], xs[2], width, n, o0n, size,
                      blocks, axis, planes, tile_rows, *pad_low, *os[:4], pixel_step),
                     np.int64)
    sdims.flags.writeable = False
    tile = planes * tile_rows * width * c_in + 2 * _KBS[dtype.char]
    return TiledPlan(sdims, dims, last_dims, stride, dilation, plan.group, plan.scratch_shape,
                     plan.data_scratch_shape, (_NTHREADS_MAX, tile), plan.zero_aux, c_out)


def tile_fill(plan: TiledPlan) -> float:
    """The fraction of its tiles' pixel slots a tiled call computes outputs for.

    Each task runs whole tiles of :data:`TILE_P` pixels over its block of output rows; a
    short last tile per task leaves slots idle (multiply-adds for no output).
    """
    blocks = int(plan.sdims[12])
    full, last = (int(d[8] * d[9] * d[10]) for d in (plan.dims, plan.last_dims))
    slots = (blocks - 1) * -(-full // TILE_P) + -(-last // TILE_P)
    return ((blocks - 1) * full + last) / (slots * TILE_P)


def _bias_aux(plan: DensePlan | TiledPlan, bias: np.ndarray | None,
              dtype: np.dtype) -> np.ndarray:
    """The drivers' ``aux`` for a call of ``plan``: its ``zero_aux`` with ``bias`` in front."""
    if bias is None:
        return plan.zero_aux
    aux = np.zeros(plan.zero_aux.shape[0], dtype=dtype)
    aux[:plan.c_out] = bias
    return aux


def run_tiled(plan: TiledPlan, x: np.ndarray, wp: np.ndarray, bias: np.ndarray | None,
              out: np.ndarray) -> None:
    """Run a planned tiled call: ``x`` and ``out`` of the planned shapes, strides and dtype.

    ``wp``: the packed weights (:func:`pack_weights`); the results are bitwise those of
    :func:`run_dense` on a channels-last copy of ``x``.
    """
    dtype = out.dtype
    aux = _bias_aux(plan, bias, dtype)
    _jit.ensure_compiled(_tiled_forward, _tiled_forward_signature, dtype)
    window_at = _jit.address_of(_WDRIVERS[TILE_P].task, _window_task_signature, dtype)
    task_at = _jit.address_of(_tiled_task, _tiled_task_signature, dtype)
    _tiled_forward(flat_view(x), plan.sdims, wp, aux, flat_view(out), plan.dims,
                   plan.last_dims, plan.stride, plan.dilation,
                   np.empty(plan.scratch_shape, np.int64),
                   np.empty(plan.data_scratch_shape, dtype), np.empty(plan.tiles_shape, dtype),
                   plan.group, window_at, task_at)


def run_tiled_rows(plan: TiledPlan, x: np.ndarray, source: tuple[np.ndarray, np.ndarray],
                   bias: np.ndarray | None, out: np.ndarray) -> None:
    """Run a self-packing tiled call (:func:`tiled_plan` with ``self_pack``).

    ``source``: the :func:`weight_source` of the weights; the results are bitwise those of
    :func:`run_dense` on a channels-last copy of ``x`` with the same weights.
    """
    dtype = out.dtype
    aux = _bias_aux(plan, bias, dtype)
    scratch = np.empty(plan.scratch_shape, np.int64)
    scratch[:, -1] = -1  # the channel block each thread holds packed: none yet
    _jit.ensure_compiled(_tiled_row_forward, _tiled_row_forward_signature, dtype)
    row_at = _jit.address_of(_DRIVERS[TILE_P].task, _row_task_signature, dtype)
    task_at = _jit.address_of(_tiled_row_task, _tiled_row_task_signature, dtype)
    _tiled_row_forward(flat_view(x), plan.sdims, *source, aux, flat_view(out), plan.dims,
                       plan.last_dims, plan.stride, plan.dilation, scratch,
                       np.empty(plan.data_scratch_shape, dtype), np.empty(plan.tiles_shape, dtype),
                       plan.group, row_at, task_at)


def packed_shape(c_out: int, c_in: int, kernel: tuple[int, int, int],
                 dtype: np.dtype) -> tuple[int, ...]:
    """Shape of :func:`pack_weights`'s packing of ``(c_out, c_in, *kernel)`` weights.

    Examples
    --------
    Blocks of :func:`block_size` output channels (two vectors), or of one vector for a
    layer with at most that many output channels that runs in row mode, on hosts with
    one-vector tiles (:data:`NARROW`): a two-vector block would be half zeros, and so
    would half of its multiply-adds.

    Examples
    --------
    >>> f = np.dtype(np.float32)
    >>> block = block_size(f)  # 16 with 8-lane vectors (AVX2), 32 with AVX-512
    >>> packed_shape(40, 16, (1, 3, 3), f) == (-(-40 // block), 1, 3, 3, 16, block)
    True
    >>> narrow = packed_shape(block // 2, 32, (3, 3, 3), f)[-1]
    >>> narrow == (block // 2 if NARROW else block)
    True
    """
    block = block_size(dtype)
    shape = (-(-c_out // block), *kernel, c_in, block)
    if NARROW and c_out <= block // 2 and not window_mode(shape, dtype):
        return (1, *kernel, c_in, block // 2)
    return shape


def self_packs(wp_shape: tuple[int, ...], dtype: np.dtype) -> bool:
    """Whether a pass gives the row-mode drivers unpacked weights (:func:`weight_source`).

    Large weights (packed, more than :data:`SELF_PACK_BYTES`): a packed copy would add their
    size to the call's memory, and each pixel group would stream all of them from L3;
    instead each thread packs the channel block it works on, and the tasks go block by
    block (the input, smaller, streams instead). Smaller weights are packed once per call.

    Examples
    --------
    >>> f = np.dtype(np.float32)
    >>> self_packs((16, 3, 3, 1, 256, 16), f), self_packs((4, 3, 3, 1, 64, 16), f)
    (True, False)
    """
    return math.prod(wp_shape) * dtype.itemsize > SELF_PACK_BYTES


def window_mode(wp_shape: tuple[int, ...], dtype: np.dtype, packed: bool = False) -> bool:
    """Whether :func:`dense_plan` runs weights of `wp_shape` in window mode by default.

    Window mode runs every channel block of a tile in turn, so the per-tile work (pixel
    positions, border checks, gathering windows that cross the border) is done once, not
    once per block, and the windows of interior tiles are read in place (a kernel row, or
    with a dilation along the last dimension a tap, at a time). It takes packed weights,
    which must be small (not :func:`self_packs`, unless ``packed``: the caller packs them
    anyway); with them and at least two channel
    blocks it is as fast or faster than row mode on the benchmark layers (3x3 with 16 to
    64 channels, dilated, 3-D, 1-D, the RGB stem, transposed). With one block there is
    nothing to share: then it pays off only when kernel rows are short (``K2 * C_in`` at
    most one vector).

    Examples
    --------
    >>> f = np.dtype(np.float32)
    >>> window_mode((4, 7, 7, 1, 3, 16), f), window_mode((1, 3, 3, 1, 64, 16), f)
    (True, False)
    >>> window_mode((4, 3, 3, 1, 64, 16), f), window_mode((16, 3, 3, 1, 256, 16), f)
    (True, False)
    """
    if not packed and self_packs(wp_shape, dtype):
        return False
    nblk, _, _, k2, c_in, kbs = wp_shape
    return nblk > 1 or k2 * c_in <= kbs // 2


def tiles_apply(wp_shape: tuple[int, ...], dtype: np.dtype, packed: bool = False) -> bool:
    """Whether tiled mode (:func:`tiled_plan`) runs packed weights of `wp_shape`.

    Window-mode weights (:func:`window_mode`; ``packed``: the caller packs them whatever
    their size), and a single full channel block too: with one block window mode is as
    fast as row mode, and the tiles spare the layout copy of the batch (a 1-D layer of 32
    channels, kernel 9: forward 365 -> 400 GFLOP/s).

    Examples
    --------
    >>> f = np.dtype(np.float32)
    >>> block = block_size(f)
    >>> tiles_apply((1, 1, 1, 9, 32, block), f), tiles_apply((1, 1, 1, 9, 32, block // 2), f)
    (True, False)
    """
    one_block = wp_shape[0] == 1 and wp_shape[5] == _KBS[dtype.char] and (
        packed or not self_packs(wp_shape, dtype))
    return one_block or window_mode(wp_shape, dtype, packed)


def tiles_channels_last(wp_shape: tuple[int, ...], dtype: np.dtype, packed: bool = False
                        ) -> bool:
    """Whether tiled mode runs a channels-last input whose windows read padding.

    The window-mode kernel reads a channels-last input in place, but a tile of pixels whose
    windows reach into the padding first gathers its windows (zeros included): two of the
    seven tiles of each 56-pixel row of a padded 3x3 layer. Tiled mode instead copies each
    task's input rows, one contiguous run per row, into a zero-padded tile, and no tile
    gathers. That pays off from two output channel blocks on (each copied input value then
    feeds more arithmetic); with one block the copies cost more than the gathers they
    spare. Measured with 2 threads, channels-last, padding 1, against window mode in place
    (median of 16 interleaved pairs): forward 3x3 64->64 at 56x56 +6.8%, 128->128 at 28x28
    +3.7%, 5x5 64->64 at 28x28 +7.5%, 32->64 +12%, 16->64 +13.5%, 48->48 +10%; 32->32
    (one block) +0%, 64->32 (one block) -4%.

    Examples
    --------
    >>> f = np.dtype(np.float32)
    >>> block = block_size(f)
    >>> tiles_channels_last((2, 1, 3, 3, 64, block), f), tiles_channels_last(
    ...     (1, 1, 3, 3, 64, block), f)
    (True, False)
    """
    return wp_shape[0] >= 2 and tiles_apply(wp_shape, dtype, packed)


def is_small(x_shape: tuple[int, ...], wp_shape: tuple[int, ...],
             out_shape: tuple[int, ...]) -> bool:
    """Whether a call of these shapes is small (at most ``_SERIAL_MAX_FMAS`` multiply-adds).

    :func:`dense_plan` sizes such a call's tasks for one thread, so its plan does not
    depend on the thread count; :func:`small_call` runs it whole on the calling thread.
    """
    return math.prod(out_shape) * math.prod(wp_shape[1:5]) <= _SERIAL_MAX_FMAS


class SmallCall(NamedTuple):
    """What :func:`small_conv` needs besides the arrays (see :func:`small_call`)."""

    #: the ``dims`` argument of :func:`small_conv`
    dims: np.ndarray
    #: the bias argument of calls without bias
    no_bias: np.ndarray
    #: the ``wdesc`` argument of :func:`small_conv`
    wdesc: np.ndarray
    #: the ``task_at`` argument of :func:`small_conv` (the row-mode task's address)
    task_at: int


def small_call(x_shape: tuple[int, ...], w_shape: tuple[int, ...], out_shape: tuple[int, ...],
               dtype: np.dtype, stride: tuple[int, int, int], dilation: tuple[int, int, int],
               pad_low: tuple[int, int, int]) -> SmallCall | None:
    """Plan a call of :func:`small_conv` (unpacked weights of `w_shape`), or None.

    None when the call is not small (:func:`is_small`), or computes nothing or only the
    bias: those take :func:`run_dense`.
    """
    block = _KBS[dtype.char]
    wp_shape = (-(-w_shape[0] // block), *w_shape[2:], w_shape[1], block)
    if not is_small(x_shape, wp_shape, out_shape):
        return None
    # the input is copied into a zero-padded buffer holding exactly the windows the outputs
    # read: every tile then reads its windows in place (no border handling per tile)
    padded = (x_shape[0], *(((o - 1) * s + (k - 1) * d + 1) for o, s, k, d in zip(
        out_shape[1:4], stride, w_shape[2:], dilation)), x_shape[4])
    plan = dense_plan(padded, wp_shape, out_shape, dtype, stride, dilation, (0, 0, 0), None,
                      None, "row", 1)
    # an empty input computes only the bias (the padded shape would not say so)
    if plan.empty or plan.bias_only or min(x_shape) == 0:
        return None
    item = dtype.itemsize
    layout = _layout_of(padded, _c_strides(padded, item), out_shape,
                        _c_strides(out_shape, item), item)
    dims = np.array((*layout, *plan.stride, *plan.dilation, *plan.pad_low, plan.group,
                     plan.scratch_shape[1],
                     plan.data_scratch_shape[1], plan.aux_size, block, *pad_low), np.int64)
    dims.flags.writeable = False
    no_bias = np.zeros(0, dtype)
    no_bias.flags.writeable = False
    return SmallCall(dims, no_bias, packed_description(wp_shape, w_shape[0]),
                     _jit.address_of(_SMALL_TASK, _row_task_signature, dtype))


def _c_strides(shape: tuple[int, ...], item: int) -> tuple[int, ...]:
    """Byte strides of a C-contiguous array of `shape`."""
    strides, step = [], item
    for extent in reversed(shape):
        strides.append(step)
        step *= extent
    return tuple(reversed(strides))


def run_small(call: SmallCall, x: np.ndarray, w: np.ndarray, bias: np.ndarray | None,
              out: np.ndarray) -> None:
    """Run a planned :func:`small_conv` (arrays of the planned shapes and dtype; no checks)."""
    small_conv(x, w, call.no_bias if bias is None else bias, out, call.dims, call.wdesc,
               call.task_at)


def accepts_input(x: np.ndarray) -> bool:
    """Whether :func:`run_dense` reads `x` in place (else it needs a channels-last copy).

    The kernels need each pixel's channels contiguous and consecutive pixels along the last
    spatial dimension adjacent (element strides ``C`` and 1 there, e.g. a channels-last array
    or a slice of one along the spatial dims); the other strides are free but positive.
    Read-only arrays are read in place too (the drivers take read-only inputs).
    """
    item = x.itemsize
    strides = x.strides
    return (strides[4] == item and (strides[3] == x.shape[4] * item or x.shape[3] == 1)
            and min(strides[:3]) >= 0)


def flat_view(a: np.ndarray) -> np.ndarray:
    """A 1-D view of the memory `a` spans, starting at its first element (non-negative strides).

    Returns the array itself flattened when it is C-contiguous, else a strided view made by
    :func:`numpy.lib.stride_tricks.as_strided` (same buffer, nothing copied).
    """
    if a.flags.c_contiguous:
        return a.reshape(-1)
    if a.ndim == 5 and a.transpose(0, 4, 1, 2, 3).flags.c_contiguous:  # channels-first data
        return a.transpose(0, 4, 1, 2, 3).reshape(-1)
    return np.lib.stride_tricks.as_strided(a, shape=(_extent(a),), strides=(a.itemsize,),
                                           writeable=a.flags.writeable)


def _extent(a: np.ndarray) -> int:
    """Elements from the first to the last element of ``a`` (non-negative strides)."""
    return 1 + sum((n - 1) * s for n, s in zip(a.shape, a.strides)) // a.itemsize


def _layout(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """The ``dims`` argument of the drivers: shapes and element strides of `x` and `out`.

    An int64 array (a tuple argument would cost Numba's dispatcher more than the rest of a
    small call), cached per distinct shapes and strides.
    """
    return _layout_of(x.shape, x.strides, out.shape, out.strides, x.itemsize)


@lru_cache(maxsize=256)
def _layout_of(x_shape: tuple[int, ...], x_strides: tuple[int, ...],
               out_shape: tuple[int, ...], out_strides: tuple[int, ...],
               item: int) -> np.ndarray:
    xs = [s // item for s in x_strides]
    os = [s // item for s in out_strides]
    staged = _stage_layout(out_shape, tuple(os))
    dims = np.array((*x_shape, *xs[:3], *out_shape[1:], *os, staged), np.int64)
    dims.flags.writeable = False
    return dims


def _stage_layout(out_shape: tuple[int, ...], out_strides: tuple[int, ...]) -> int:
    """How the drivers stage an output of this shape and these element strides.

    0: not staged (channels contiguous: tiles store whole vectors); 1: channels-first
    planes, each sample's pixels ``(O0, O1, O2)`` consecutive elements of one plane per
    channel (the channels-last view of an ``(N, C, O0, O1, O2)`` array or of a batch slice
    of one); 2: channels at a stride of their own, pixels at any strides (a stride phase of
    a channels-first array). A staged task's tiles store to per-thread scratch with whole
    vectors and the task then writes its pixels into the output a channel at a time
    (:func:`_flush_stage`: through in-register transposes for planes), instead of one
    element of every channel per pixel.

    Examples
    --------
    >>> _stage_layout((2, 1, 4, 5, 3), (60, 20, 5, 1, 20))
    1
    >>> _stage_layout((2, 1, 4, 5, 3), (240, 240, 40, 2, 80))
    2
    >>> _stage_layout((2, 1, 4, 5, 3), (60, 60, 15, 3, 1))
    0
    """
    if out_shape[4] < 2 or out_strides[4] == 1:
        return 0
    pixels = 1
    for extent, step in zip(out_shape[3:0:-1], out_strides[3:0:-1]):
        if extent > 1 and step != pixels:
            return 2
        pixels *= extent
    return 1 if out_strides[4] >= pixels > 1 else 2


def stages_output(out: np.ndarray) -> bool:
    """Whether :func:`run_dense` stages `out` (channels not contiguous, see :func:`_stage_layout`).

    Pass it as ``staged`` to :func:`dense_plan` for calls writing `out`.
    """
    item = out.itemsize
    return _stage_layout(out.shape, tuple(s // item for s in out.strides)) > 0


def scratch_bytes(plan: DensePlan) -> int:
    """Bytes :func:`run_dense` allocates for a call of `plan` (scratch and padded bias)."""
    item = plan.zero_aux.itemsize
    return (math.prod(plan.scratch_shape) * 8 + math.prod(plan.data_scratch_shape) * item
            + plan.aux_size * item)


@lru_cache(maxsize=256)
def packed_description(wp_shape: tuple[int, ...], c_out: int,
                       block_major: bool = False) -> np.ndarray:
    """The ``wdesc`` of packed weights of `wp_shape` (:data:`_WDESC`): read in place.

    ``c_out`` is the number of real output channels; ``block_major`` numbers the tasks
    channel block first. Read-only and cached.
    """
    nblk, k0, k1, k2, c_in, kbs = wp_shape
    desc = np.array((nblk, k0, k1, k2, c_in, kbs, c_out, 0, 0, 0, 0, 0, 0,
                     2 if block_major else 1), np.int64)
    desc.flags.writeable = False
    return desc


@lru_cache(maxsize=256)
def _source_description(shape: tuple[int, ...], steps: tuple[int, ...], first: int,
                        kbs: int) -> np.ndarray:
    c_out, c_in, k0, k1, k2 = shape
    desc = np.array((-(-c_out // kbs), k0, k1, k2, c_in, kbs, c_out, first, *steps, 0), np.int64)
    desc.flags.writeable = False
    return desc


def weight_source(w: np.ndarray, dtype: np.dtype,
                  block: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(wsrc, wdesc)``: weights the row-mode drivers pack themselves, a block per thread.

    Parameters
    ----------
    w : ndarray, shape (C_out, C_in, K0, K1, K2)
        Weights with any strides, negative ones included (the flipped and transposed views
        of adjoint passes), read in place (read-only ones too) when they have `dtype`; else
        a converted copy is read.
    dtype : numpy.dtype
        The computation's dtype.
    block : int, optional
        Output channels per block (:func:`packed_shape`'s last entry); default
        :func:`block_size`.

    Returns
    -------
    tuple of ndarray
        A 1-D view of the memory `w` spans, from its lowest address, and its description
        (:data:`_WDESC`: shape, position of ``w[0, 0, 0, 0, 0]`` and element strides).

    Examples
    --------
    >>> w = np.arange(24.0, dtype=np.float32).reshape(2, 3, 1, 2, 2)[:, :, :, ::-1]
    >>> src, desc = weight_source(w, np.dtype(np.float32))
    >>> src.shape, desc[7:13].tolist()
    ((24,), [2, 12, 4, 4, -2, 1])
    """
    item = dtype.itemsize
    block = _KBS[dtype.char] if block is None else block
    if w.size == 0:  # nothing to read (such calls compute only the bias)
        return np.zeros(0, dtype), _source_description(w.shape, (0,) * 5, 0, block)
    if w.dtype != dtype or any(step % item for step in w.strides):
        w = np.array(w, dtype=dtype, order="C")
    steps = tuple(step // item for step in w.strides)
    low = sum((n - 1) * step for n, step in zip(w.shape, steps) if step < 0)
    high = sum((n - 1) * step for n, step in zip(w.shape, steps) if step > 0)
    lowest = w[tuple(slice(n - 1, n) if step < 0 else slice(0, 1)
                     for n, step in zip(w.shape, steps))]
    src = np.lib.stride_tricks.as_strided(lowest, shape=(max(high - low + 1, 0),),
                                          strides=(item,))
    return src, _source_description(w.shape, steps, -low, block)


def run_dense(plan: DensePlan, x: np.ndarray, wp: np.ndarray | tuple[np.ndarray, np.ndarray],
              bias: np.ndarray | None, out: np.ndarray) -> None:
    """Run a planned :func:`dense_forward` call on arrays the plan was made for; no checks.

    Parameters
    ----------
    plan : DensePlan
        From :func:`dense_plan` with these arrays' shapes and dtype.
    x : ndarray, shape (N, I0, I1, I2, C_in)
        Input, read in place when :func:`accepts_input` (caller's duty).
    wp : ndarray or tuple
        C-contiguous packed weights, as :func:`dense_forward`, or, for a row-mode plan made
        with ``self_pack``, the :func:`weight_source` of unpacked weights.
    bias : ndarray, shape (C_out,), or None
        Bias per output channel, any float dtype (cast to ``out``'s).
    out : ndarray, shape (N, O0, O1, O2, C_out)
        Output with non-negative strides and no overlapping elements (any layout: a
        channels-first array's channels-last view is written in place).
    """
    if plan.empty:
        return
    aux = _bias_aux(plan, bias, out.dtype)
    if plan.bias_only:
        out[...] = aux[:plan.c_out]
        return
    scratch = np.empty(plan.scratch_shape, dtype=np.int64)
    data_scratch = np.empty(plan.data_scratch_shape, dtype=out.dtype)
    if plan.window:
        plan.driver(flat_view(x), wp, aux, flat_view(out), _layout(x, out), plan.stride,
                    plan.dilation, plan.pad_low, scratch, data_scratch, plan.group)
        return
    if isinstance(wp, np.ndarray):
        wp = (wp.reshape(-1), packed_description(wp.shape, plan.c_out, plan.block_major))
    scratch[:, -1] = -1  # the channel block each thread holds packed: none yet
    plan.driver(flat_view(x), *wp, aux, flat_view(out), _layout(x, out), plan.stride,
                plan.dilation, plan.pad_low, scratch, data_scratch, plan.group)


def dense_forward(
    x: np.ndarray,
    wp: np.ndarray,
    bias: np.ndarray | None,
    out: np.ndarray,
    stride: tuple[int, int, int],
    dilation: tuple[int, int, int],
    pad_low: tuple[int, int, int],
    tile: int | None = None,
    group: int | None = None,
    mode: str | None = None,
) -> np.ndarray:
    """Compute a dense forward convolution into `out` with the SIMD micro-kernel.

    ``out[n, o0, o1, o2, k] = bias[k] + sum_{k0, k1, k2, c} w[k, c, k0, k1, k2] *
    x[n, o0*s0 - pl0 + k0*d0, o1*s1 - pl1 + k1*d1, o2*s2 - pl2 + k2*d2, c]``,
    where input positions outside ``x`` count as zero.

    Parameters
    ----------
    x : ndarray, shape (N, I0, I1, I2, C_in)
        Channels-last input, C-contiguous, float32 or float64, not padded.
    wp : ndarray, shape (KBn, K0, K1, K2, C_in, KB)
        Weights packed by :func:`pack_weights` with the default block
        (``KB == block_size(x.dtype)``), or, on :data:`NARROW` hosts and in row mode, with
        one-vector blocks (``KB == block_size(x.dtype) // 2``), same dtype as `x`.
    bias : ndarray, shape (C_out,), or None
        Bias per output channel; None means zero.
    out : ndarray, shape (N, O0, O1, O2, C_out)
        C-contiguous output, same dtype as `x`; every element is overwritten.
        ``C_out <= KBn * KB``.
    stride, dilation, pad_low : tuple of 3 int
        Per spatial dimension (stride and dilation >= 1, pad_low >= 0). High
        padding is implied by the extent of `out`.
    tile : int, optional
        Pixels per register tile, 6 or 8; defaults to :data:`TILE_P`
        (both are correct on any host; the default is the fast one).
    group : int, optional
        Consecutive pixel tiles per task (see the drivers). The default
        sizes a row-mode group's input to about 256 KiB (window mode: 16 tiles),
        capped to keep at least 8 tasks per thread. Every choice gives bitwise
        identical results.
    mode : {'row', 'window'}, optional
        Row mode: a task runs one output-channel block over its tiles, the
        micro-kernel one kernel row (``K2 * C_in`` steps) at a time, reading the
        input in place. Window mode: a tile runs every block in turn, reading its
        windows in place (a kernel row at a time) when they lie inside the input
        and the last dimension is undilated, else first copying them (zeros in the
        padding) to scratch and running ``K0 * K1 * K2 * C_in`` steps. The default
        is :func:`window_mode`. Both give bitwise identical results.

    Returns
    -------
    ndarray
        `out`.
    """
    dt = x.dtype
    kbs = _KBS.get(dt.char) if dt.kind == "f" else None
    if kbs is None:
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    if x.ndim != 5 or wp.ndim != 6 or out.ndim != 5:
        raise ValueError("x and out must be 5-D (N, S0, S1, S2, C) and wp 6-D")
    if wp.dtype != dt or out.dtype != dt:
        raise TypeError("x, wp and out must have the same dtype")
    if not (x.flags.c_contiguous and wp.flags.c_contiguous and out.flags.c_contiguous):
        raise ValueError("x, wp and out must be C-contiguous")
    plan = dense_plan(x.shape, wp.shape, out.shape, dt, _hashable(stride), _hashable(dilation),
                      _hashable(pad_low), tile, group, mode, numba.get_num_threads())
    if bias is not None and not plan.empty:
        bias = np.asarray(bias, dtype=dt).reshape(-1)[:plan.c_out]
    run_dense(plan, x, wp, bias, out)
    return out


def conv_dense(
    x: np.ndarray,
    w: np.ndarray,
    bias: np.ndarray | None = None,
    stride: tuple[int, int, int] = (1, 1, 1),
    dilation: tuple[int, int, int] = (1, 1, 1),
    pad_low: tuple[int, int, int] = (0, 0, 0),
    pad_high: tuple[int, int, int] | None = None,
) -> np.ndarray:
    """Pack the weights, allocate the output and run :func:`dense_forward`.

    Parameters
    ----------
    x : ndarray, shape (N, I0, I1, I2, C_in)
        Channels-last input, float32 or float64 (made C-contiguous if needed).
    w : ndarray, shape (C_out, C_in, K0, K1, K2)
        Weights, cast to the dtype of `x`.
    bias : ndarray, shape (C_out,), optional
        Bias per output channel.
    stride, dilation, pad_low : tuple of 3 int
        Per spatial dimension.
    pad_high : tuple of 3 int, optional
        High zero padding per dimension; defaults to `pad_low`.

    Returns
    -------
    ndarray, shape (N, O0, O1, O2, C_out)
        The channels-last output.
    """
    x = np.ascontiguousarray(x)
    w = np.asarray(w, dtype=x.dtype)
    pad_high = pad_low if pad_high is None else pad_high
    o = output_shape(x.shape[1:4], w.shape[2:5], stride, dilation, pad_low, pad_high)
    out = np.empty((x.shape[0], *o, w.shape[0]), dtype=x.dtype)
    return dense_forward(x, pack_weights(w), bias, out, stride, dilation, pad_low)
